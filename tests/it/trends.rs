//! The overview's date range (经营趋势), on both backends: the daily GMV, orders, new customers
//! and WeCom adds of a range and of the period before it agree with a plain fold over what was
//! stored, day by day in the brand's days (an order at 23:30 in Shanghai counts on that day);
//! the console page, its JSON and the API say the same; a bad range is refused in Chinese with
//! what was typed kept.

use crate::common;
use chrono::{FixedOffset, TimeZone};
use reqwest::StatusCode;
use siyu::know::orders::OrderStatus;
use siyu::measure::trends::{DateRange, Totals, trends};
use siyu::platform::access::{self, Role};
use siyu::platform::db::sql;
use siyu::platform::{Fen, TenantId};
use std::collections::{BTreeMap, HashMap, HashSet};

use common::{
    Backend, TestServer, console_page, console_session, no_redirects, store, store_order,
    tenant_with_key,
};

const PASSWORD: &str = "a-long-password";
const SHANGHAI: i64 = 8 * 60;
const MINUTE: i64 = 60_000;

fn shanghai() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("offset")
}

/// `2026-11-03 23:30` in Shanghai, as UTC ms.
fn local(y: i32, m: u32, d: u32, h: u32, min: u32) -> i64 {
    shanghai()
        .with_ymd_and_hms(y, m, d, h, min, 0)
        .single()
        .expect("time")
        .timestamp_millis()
}

fn local_day(ms: i64) -> String {
    shanghai()
        .timestamp_millis_opt(ms)
        .single()
        .expect("time")
        .date_naive()
        .to_string()
}

struct Sale {
    no: String,
    phone: String,
    at: i64,
    amount: i64,
    refund: i64,
    status: OrderStatus,
}

/// Orders over 2026-10-15 … 2026-11-14 Shanghai time, several on the edges of days, some
/// cancelled, some partly refunded, by 12 people.
fn sales() -> Vec<Sale> {
    let mut out = Vec::new();
    for i in 0..90u32 {
        let day = 15 + (i * 7) % 31; // 15 … 45 → October 15 … November 14
        let (m, d) = if day <= 31 { (10, day) } else { (11, day - 31) };
        // Every fifth order near midnight on either side, the rest in the afternoon.
        let (h, min) = match i % 5 {
            0 => (23, 30),
            1 => (0, 10),
            _ => (14, (i * 11) % 60),
        };
        out.push(Sale {
            no: format!("T-{i}"),
            phone: format!("1390000{:04}", (i * 5) % 12),
            at: local(2026, m, d, h, min),
            amount: 1_000 + i as i64 * 37,
            refund: if i % 9 == 0 { 500 } else { 0 },
            status: if i % 11 == 3 {
                OrderStatus::Closed
            } else {
                OrderStatus::Completed
            },
        });
    }
    out
}

/// (external user, added at, deleted at) of WeCom contacts.
fn contacts() -> Vec<(String, i64, Option<i64>)> {
    (0..40u32)
        .map(|i| {
            let day = 18 + (i * 3) % 28;
            let (m, d) = if day <= 31 { (10, day) } else { (11, day - 31) };
            let added = local(2026, m, d, if i % 4 == 0 { 23 } else { 10 }, 45);
            let deleted = (i % 6 == 0).then_some(added + (i as i64 % 5) * 86_400_000 + 30 * MINUTE);
            (format!("wm-{i}"), added, deleted)
        })
        .collect()
}

/// The figures of `range` computed from the inputs alone: no SQL, no shared code.
fn reference(
    sales: &[Sale],
    contacts: &[(String, i64, Option<i64>)],
    range: &DateRange,
) -> (BTreeMap<String, [i64; 5]>, Totals) {
    let (lo, hi) = (range.start_ms(), range.end_ms());
    let inside = |t: i64| lo <= t && t < hi;
    let mut days: BTreeMap<String, [i64; 5]> = BTreeMap::new();
    let mut d = range.from;
    while d <= range.to {
        days.insert(d.to_string(), [0; 5]);
        d = d.succ_opt().expect("next day");
    }
    let bought = |s: &&Sale| s.status != OrderStatus::Closed;
    let mut first: HashMap<&str, i64> = HashMap::new();
    for s in sales.iter().filter(bought) {
        let f = first.entry(s.phone.as_str()).or_insert(s.at);
        *f = (*f).min(s.at);
    }
    let mut buyers = HashSet::new();
    for s in sales.iter().filter(bought).filter(|s| inside(s.at)) {
        let day = days.get_mut(&local_day(s.at)).expect("a day of the range");
        day[0] += s.amount - s.refund;
        day[1] += 1;
        buyers.insert(s.phone.as_str());
    }
    for at in first.values().filter(|t| inside(**t)) {
        days.get_mut(&local_day(*at)).expect("a day")[2] += 1;
    }
    for (_, added, deleted) in contacts {
        if inside(*added) {
            let day = days.get_mut(&local_day(*added)).expect("a day");
            day[3] += 1;
            day[4] += 1;
        }
        if let Some(t) = deleted.filter(|t| inside(*t)) {
            days.get_mut(&local_day(t)).expect("a day")[4] -= 1;
        }
    }
    let sum = |k: usize| days.values().map(|d| d[k]).sum::<i64>();
    let totals = Totals {
        gmv: Fen::new(sum(0)),
        orders: sum(1),
        buyers: buyers.len() as i64,
        new_customers: sum(2),
        wecom_adds: sum(3),
        wecom_net_adds: sum(4),
    };
    (days, totals)
}

async fn fill(s: &TestServer, tenant: TenantId) {
    let records = sales()
        .iter()
        .map(|x| {
            let mut r = store_order(&x.no, &[&x.phone], x.amount, x.at);
            r.refund_amount = Fen::new(x.refund);
            r.status = x.status;
            r
        })
        .collect();
    store(s.db(), tenant, records).await;
    siyu::know::profile::recompute_all(s.db(), tenant, siyu::platform::clock::now_ms())
        .await
        .expect("customer stats");
    for (who, added, deleted) in contacts() {
        s.db()
            .execute(
                &sql("INSERT INTO wecom_contacts (tenant_id, external_userid, userid, added_at, deleted_at) VALUES ($1, $2, 'guide-1', $3, $4)")
                    .bind(tenant)
                    .bind(who)
                    .bind(added)
                    .bind(deleted),
            )
            .await
            .expect("contact");
    }
}

async fn a_range_reads_as_the_plain_sums_of_its_days(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (tenant, key) = tenant_with_key(s.db(), "趋势铺", Role::Admin).await;
    fill(&s, tenant).await;
    let range = DateRange::parse("2026-11-01", "2026-11-14", SHANGHAI).expect("range");
    let t = trends(s.db(), tenant, range).await.expect("trends");
    let (days, current) = reference(&sales(), &contacts(), &range);
    let (before_days, previous) = reference(&sales(), &contacts(), &range.previous());
    assert_eq!(t.current, current, "{backend:?}");
    assert_eq!(t.previous, previous, "{backend:?}");
    assert!(
        current.orders > 0 && previous.orders > 0 && current.wecom_net_adds != current.wecom_adds
    );
    assert_eq!(
        (t.previous_from.as_str(), t.previous_to.as_str()),
        ("2026-10-18", "2026-10-31")
    );
    for (got, want) in [(&t.days, &days), (&t.previous_days, &before_days)] {
        let got: BTreeMap<String, [i64; 5]> = got
            .iter()
            .map(|d| {
                (
                    d.day.clone(),
                    [
                        d.gmv.get(),
                        d.orders,
                        d.new_customers,
                        d.wecom_adds,
                        d.wecom_net_adds,
                    ],
                )
            })
            .collect();
        assert_eq!(&got, want, "{backend:?}");
    }

    // The console shows the range's figures, draws them from the same JSON, and the API agrees.
    let c = no_redirects();
    access::create_user(s.db(), tenant, "ops", "运营", PASSWORD, Role::Operator)
        .await
        .expect("user");
    let ops = console_session(&c, &s, "趋势铺", "ops", PASSWORD).await;
    let page = console_page(
        &c,
        &s,
        &ops,
        "/console/overview?from=2026-11-01&to=2026-11-14",
    )
    .await;
    assert!(
        page.contains(&format!("id=\"kpi-orders\">{}<", current.orders)),
        "{page}"
    );
    assert!(page.contains(&format!("id=\"kpi-buyers\">{}<", current.buyers)));
    assert!(page.contains("对比上一周期 2026-10-18 至 2026-10-31"));
    assert!(page.contains("value=\"2026-11-01\"") && page.contains("value=\"2026-11-14\""));
    let json: serde_json::Value = c
        .get(s.url("/console/api/overview/trends?from=2026-11-01&to=2026-11-14"))
        .header("cookie", &ops)
        .send()
        .await
        .expect("json")
        .json()
        .await
        .expect("json body");
    assert_eq!(json, serde_json::to_value(&t).expect("value"));
    let api: serde_json::Value = c
        .get(s.url("/api/v1/reports/trends?from=2026-11-01&to=2026-11-14"))
        .bearer_auth(&key)
        .send()
        .await
        .expect("api")
        .json()
        .await
        .expect("api body");
    assert_eq!(api, json);
}
on_each_backend!(a_range_reads_as_the_plain_sums_of_its_days);

async fn a_bad_range_is_refused_in_chinese_and_kept(backend: Backend) {
    let s = TestServer::start(backend).await;
    let c = no_redirects();
    let (tenant, key) = tenant_with_key(s.db(), "趋势铺", Role::Admin).await;
    access::create_user(s.db(), tenant, "ops", "运营", PASSWORD, Role::Operator)
        .await
        .expect("user");
    let ops = console_session(&c, &s, "趋势铺", "ops", PASSWORD).await;

    let r = c
        .get(s.url("/console/overview?from=2026-13-01&to=2026-12-01"))
        .header("cookie", &ops)
        .send()
        .await
        .expect("page");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let page = r.text().await.expect("text");
    assert!(page.contains("开始日期：“2026-13-01”不是日期"), "{page}");
    assert!(
        page.contains("value=\"2026-13-01\""),
        "what was typed is kept"
    );
    assert!(
        page.contains("id=\"kpi-gmv\""),
        "the last 30 days are shown instead"
    );

    let r = c
        .get(s.url("/console/api/overview/trends?from=2026-12-02&to=2026-12-01"))
        .header("cookie", &ops)
        .send()
        .await
        .expect("json");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let v: serde_json::Value = r.json().await.expect("body");
    assert_eq!(v["error"], "开始日期：晚于结束日期");

    let r = c
        .get(s.url("/api/v1/reports/trends?from=2020-01-01&to=2026-12-01"))
        .bearer_auth(&key)
        .send()
        .await
        .expect("api");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let v: serde_json::Value = r.json().await.expect("body");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("to:")),
        "{v}"
    );

    // With no range, the last 30 days, ending on the brand's today.
    let v: serde_json::Value = c
        .get(s.url("/api/v1/reports/trends"))
        .bearer_auth(&key)
        .send()
        .await
        .expect("api")
        .json()
        .await
        .expect("body");
    let today = local_day(siyu::platform::clock::now_ms());
    assert_eq!(
        (v["to"].as_str(), v["days"].as_array().map(Vec::len)),
        (Some(today.as_str()), Some(30))
    );

    // The chart's script is served, gzipped for a browser, and cached by its versioned path.
    let r = c
        .get(s.url("/console/assets/echarts-5.6.0.min.js"))
        .header("accept-encoding", "gzip, deflate")
        .send()
        .await
        .expect("script");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()
            .get("content-encoding")
            .and_then(|v| v.to_str().ok()),
        Some("gzip")
    );
    let plain = c
        .get(s.url("/console/assets/echarts-5.6.0.min.js"))
        .send()
        .await
        .expect("script")
        .bytes()
        .await
        .expect("bytes");
    assert!(plain.len() > 1_000_000 && plain.starts_with(b"\n/*\n* Licensed to the Apache"));
}
on_each_backend!(a_bad_range_is_refused_in_chinese_and_kept);
