//! What a campaign brought back, per variant and in total: sent, delivered, clicks, recalled
//! (joined the private domain: became a member or added a guide on WeCom), orders and GMV in
//! the attribution window, cost and ROI, the time series at 3, 6, 12 and 24 hours after send,
//! and the A/B read of the variants against the hold-out group.
//!
//! Everyone is counted from their own send time; the hold-out group (sent nothing) and anyone
//! the policy held back count from the launch, so arms are compared like for like (intent to
//! treat): a variant is judged on everyone assigned to it who could be reached.

use crate::know::CustomerId;
use crate::platform::Fen;
use crate::platform::TenantId;
use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

use super::campaigns::{self, CONTROL, Campaign, CampaignError, LaunchReport};
use crate::know::customers;
use crate::know::orders::PURCHASE_STATUSES;
use crate::measure::abtest::{self, Analysis, Arm};
use crate::platform::db::{Db, Value};
use crate::platform::spreadsheet::inert;

/// Hours after send at which the time series is read.
pub const SERIES_HOURS: [i64; 4] = [3, 6, 12, 24];
const HOUR: i64 = 3_600_000;
/// Exposed customers per arm before the A/B read calls anything.
pub const MIN_PER_ARM: u64 = 100;

#[derive(Debug, Clone, Serialize, Default, PartialEq)]
pub struct Point {
    pub hours: i64,
    pub clicks: i64,
    pub recalled: i64,
    pub orders: i64,
    pub gmv: Fen,
}

#[derive(Debug, Clone, Serialize, Default, PartialEq)]
pub struct VariantReport {
    pub variant: String,
    /// Assigned and reachable (for control: would have been sent).
    pub eligible: i64,
    pub sent: i64,
    pub delivered: i64,
    /// Held back by the contact policy (capped, unsubscribed since, duplicate text).
    pub suppressed: i64,
    pub parts: i64,
    pub clicks: i64,
    /// Recipients who clicked at least once.
    pub visitors: i64,
    pub recalled: i64,
    /// recalled / eligible.
    pub recall_rate: f64,
    pub buyers: i64,
    pub orders: i64,
    /// Fen, net of refunds.
    pub gmv: Fen,
    /// Fen: billable parts × cost per part.
    pub cost: Fen,
    /// GMV / cost (投入产出比); none when nothing was spent.
    pub roi: Option<f64>,
    /// GMV per eligible recipient, fen.
    pub gmv_per_recipient: f64,
    pub series: Vec<Point>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CampaignReport {
    pub campaign: Campaign,
    pub launch: LaunchReport,
    pub total: VariantReport,
    pub variants: Vec<VariantReport>,
    /// Buyers per eligible recipient, each variant against control (or the first variant).
    pub ab: Option<Analysis>,
}

struct Recipient {
    variant: String,
    /// When the window opens for them.
    t0: i64,
}

/// The report of one campaign, read now.
pub async fn campaign_report(
    db: &Db,
    tenant: TenantId,
    id: i64,
) -> Result<CampaignReport, CampaignError> {
    let c = campaigns::get(db, tenant, id).await?;
    let launch = campaigns::launch_report(db, tenant, id).await?;
    let opened = c.launched_at.unwrap_or(c.scheduled_at).max(c.scheduled_at);
    let window = c.window_days * 86_400_000;
    let rows: Vec<(CustomerId, String, String)> = db
        .fetch_all(
            &crate::platform::db::sql(
                "SELECT customer_id, variant, outcome FROM campaign_recipients WHERE tenant_id = $1 AND campaign_id = $2 \
                 AND outcome IN ('queued', 'control')",
            )
            .bind(tenant)
            .bind(id),
        )
        .await?;
    let mut people: HashMap<CustomerId, Recipient> = rows
        .into_iter()
        .map(|(cust, variant, _)| {
            (
                cust,
                Recipient {
                    variant,
                    t0: opened,
                },
            )
        })
        .collect();
    let mut by_variant: BTreeMap<String, VariantReport> = BTreeMap::new();
    for v in c
        .variants
        .iter()
        .map(|v| v.name.clone())
        .chain((c.holdout_percent > 0).then(|| CONTROL.to_string()))
    {
        by_variant.insert(
            v.clone(),
            VariantReport {
                variant: v,
                series: SERIES_HOURS
                    .iter()
                    .map(|&hours| Point {
                        hours,
                        ..Point::default()
                    })
                    .collect(),
                ..VariantReport::default()
            },
        );
    }
    for r in people.values() {
        if let Some(v) = by_variant.get_mut(&r.variant) {
            v.eligible += 1;
        }
    }
    let sent: Vec<(Option<CustomerId>, String, i64, Option<i64>)> = db
        .fetch_all(
            &crate::platform::db::sql(
                "SELECT customer_id, status, parts, sent_at FROM outbox WHERE tenant_id = $1 AND campaign_id = $2",
            )
            .bind(tenant)
            .bind(id),
        )
        .await?;
    for (cust, status, parts, sent_at) in sent {
        let Some(p) = cust.and_then(|c| people.get_mut(&c)) else {
            continue;
        };
        let Some(v) = by_variant.get_mut(&p.variant) else {
            continue;
        };
        match status.as_str() {
            "sent" | "delivered" | "undelivered" => {
                v.sent += 1;
                v.parts += parts;
                if status == "delivered" {
                    v.delivered += 1;
                }
                if let Some(at) = sent_at {
                    p.t0 = at;
                }
            }
            "suppressed" => v.suppressed += 1,
            _ => {}
        }
    }
    let in_window = |p: &Recipient, at: i64| at >= p.t0 && at < p.t0 + window;
    let slot = |p: &Recipient, at: i64| SERIES_HOURS.iter().position(|&h| at < p.t0 + h * HOUR);
    // Clicks on the campaign's links.
    let clicks: Vec<(Option<CustomerId>, i64)> = db
        .fetch_all(
            &crate::platform::db::sql(
                "SELECT l.customer_id, k.at FROM clicks k JOIN links l ON l.id = k.link_id \
                 WHERE l.tenant_id = $1 AND l.campaign_id = $2 AND k.tenant_id = $1",
            )
            .bind(tenant)
            .bind(id),
        )
        .await?;
    let mut clicked: HashSet<CustomerId> = HashSet::new();
    for (cust, at) in clicks {
        let Some(cust) = cust else { continue };
        let Some(p) = people.get(&cust) else { continue };
        let Some(v) = by_variant.get_mut(&p.variant) else {
            continue;
        };
        v.clicks += 1;
        if clicked.insert(cust) {
            v.visitors += 1;
        }
        if let Some(i) = slot(p, at) {
            for pt in &mut v.series[i..] {
                pt.clicks += 1;
            }
        }
    }
    // A recipient that OneID has since found to be another customer record of the same person
    // (merged into it) is that customer now: what the person did after the send (joined, added
    // a guide, ordered) is stored under the id they have now, and counts for the recipient.
    let recorded: Vec<CustomerId> = people.keys().copied().collect();
    let recipients_of =
        customers::recorded_behind(customers::surviving_ids(db, tenant, &recorded).await?);
    let ids: Vec<Value> = recipients_of.keys().map(|&c| Value::from(c)).collect();
    let mut tx = db.begin().await?;
    // The recipient an outcome at `at` of the person now `cust` counts for: the first whose
    // window holds it, so a person recorded twice among the recipients counts once.
    let recipient_for = |cust: CustomerId, at: i64| -> Option<CustomerId> {
        recipients_of
            .get(&cust)?
            .iter()
            .copied()
            .find(|r| people.get(r).is_some_and(|p| in_window(p, at)))
    };
    // Recalled: joined as a member, or added a guide (a `contact_added` event), in the window.
    let joined: Vec<(CustomerId, i64)> = tx
        .fetch_in(
            "SELECT customer_id, joined_at FROM members WHERE tenant_id = $1 AND customer_id",
            &[tenant.into()],
            ids.clone(),
        )
        .await?;
    let contacts: Vec<(CustomerId, i64)> = tx
        .fetch_in(
            "SELECT customer_id, occurred_at FROM events WHERE tenant_id = $1 AND type = 'contact_added' AND customer_id",
            &[tenant.into()],
            ids.clone(),
        )
        .await?;
    let mut recalled_at: HashMap<CustomerId, i64> = HashMap::new();
    for (cust, at) in joined.into_iter().chain(contacts) {
        if let Some(r) = recipient_for(cust, at) {
            let e = recalled_at.entry(r).or_insert(at);
            *e = (*e).min(at);
        }
    }
    for (cust, at) in recalled_at {
        let p = &people[&cust];
        if let Some(v) = by_variant.get_mut(&p.variant) {
            v.recalled += 1;
            if let Some(i) = slot(p, at) {
                for pt in &mut v.series[i..] {
                    pt.recalled += 1;
                }
            }
        }
    }
    let orders: Vec<(CustomerId, i64, Fen, Fen)> = tx
        .fetch_in(
            &format!(
                "SELECT customer_id, ordered_at, amount, refund_amount FROM orders WHERE tenant_id = $1 \
                 AND status IN {PURCHASE_STATUSES} AND customer_id"
            ),
            &[tenant.into()],
            ids,
        )
        .await?;
    drop(tx);
    let mut buyers: HashSet<CustomerId> = HashSet::new();
    for (person, at, amount, refund) in orders {
        let Some(cust) = recipient_for(person, at) else {
            continue;
        };
        let p = &people[&cust];
        let Some(v) = by_variant.get_mut(&p.variant) else {
            continue;
        };
        let net = amount - refund;
        v.orders += 1;
        v.gmv += net;
        // A person, however many records they were recorded under, is one buyer.
        if buyers.insert(person) {
            v.buyers += 1;
        }
        if let Some(i) = slot(p, at) {
            for pt in &mut v.series[i..] {
                pt.orders += 1;
                pt.gmv += net;
            }
        }
    }
    let mut total = VariantReport {
        variant: "total".into(),
        series: SERIES_HOURS
            .iter()
            .map(|&hours| Point {
                hours,
                ..Point::default()
            })
            .collect(),
        ..VariantReport::default()
    };
    for v in by_variant.values_mut() {
        v.cost = c.cost_per_part * v.parts;
        finish(v);
        if v.variant == CONTROL {
            continue;
        }
        total.eligible += v.eligible;
        total.sent += v.sent;
        total.delivered += v.delivered;
        total.suppressed += v.suppressed;
        total.parts += v.parts;
        total.clicks += v.clicks;
        total.visitors += v.visitors;
        total.recalled += v.recalled;
        total.buyers += v.buyers;
        total.orders += v.orders;
        total.gmv += v.gmv;
        total.cost += v.cost;
        for (t, p) in total.series.iter_mut().zip(&v.series) {
            t.clicks += p.clicks;
            t.recalled += p.recalled;
            t.orders += p.orders;
            t.gmv += p.gmv;
        }
    }
    finish(&mut total);
    // Variants in the order the operator wrote them, control last.
    let mut variants = Vec::new();
    for v in &c.variants {
        if let Some(r) = by_variant.remove(&v.name) {
            variants.push(r);
        }
    }
    variants.extend(by_variant.remove(CONTROL));
    let ab = (variants.len() >= 2).then(|| {
        let treated = 100 - c.holdout_percent;
        let weight_sum: u32 = c.variants.iter().map(|v| v.weight).sum::<u32>().max(1);
        let arms: Vec<Arm> = variants
            .iter()
            .map(|v| Arm {
                name: v.variant.clone(),
                n: v.eligible as u64,
                x: v.buyers as u64,
                weight: if v.variant == CONTROL {
                    c.holdout_percent as f64
                } else {
                    let w = c
                        .variants
                        .iter()
                        .find(|s| s.name == v.variant)
                        .map_or(1, |s| s.weight);
                    treated as f64 * w as f64 / weight_sum as f64
                },
            })
            .collect();
        let control = variants.iter().position(|v| v.variant == CONTROL);
        abtest::analyse(&arms, control, 0.05, MIN_PER_ARM)
    });
    Ok(CampaignReport {
        campaign: c,
        launch,
        total,
        variants,
        ab,
    })
}

fn finish(v: &mut VariantReport) {
    if v.eligible > 0 {
        v.recall_rate = v.recalled as f64 / v.eligible as f64;
        v.gmv_per_recipient = v.gmv.get() as f64 / v.eligible as f64;
    }
    v.roi = (v.cost > Fen::ZERO).then(|| v.gmv.get() as f64 / v.cost.get() as f64);
}

/// The report as CSV: one row per variant and the total, money in yuan, under the columns'
/// codes (for systems).
pub fn campaign_csv(r: &CampaignReport) -> String {
    campaign_csv_headed(r, &CAMPAIGN_COLUMNS, false)
}

/// The same CSV under Chinese column names (for the console's download in zh-CN).
pub fn campaign_csv_zh(r: &CampaignReport) -> String {
    campaign_csv_headed(r, &CAMPAIGN_COLUMNS_ZH, true)
}

const CAMPAIGN_COLUMNS_ZH: [&str; 23] = [
    "文案版本",
    "目标人数",
    "已发送",
    "已送达",
    "被规则拦下",
    "短信条数",
    "点击次数",
    "点击人数",
    "召回人数（入会或加企微）",
    "召回率",
    "购买人数",
    "订单数",
    "成交金额（元）",
    "成本（元）",
    "ROI",
    "3 小时内点击",
    "6 小时内点击",
    "12 小时内点击",
    "24 小时内点击",
    "3 小时内成交（元）",
    "6 小时内成交（元）",
    "12 小时内成交（元）",
    "24 小时内成交（元）",
];

const CAMPAIGN_COLUMNS: [&str; 23] = [
    "variant",
    "eligible",
    "sent",
    "delivered",
    "suppressed",
    "parts",
    "clicks",
    "visitors",
    "recalled",
    "recall_rate",
    "buyers",
    "orders",
    "gmv_yuan",
    "cost_yuan",
    "roi",
    "clicks_3h",
    "clicks_6h",
    "clicks_12h",
    "clicks_24h",
    "gmv_3h_yuan",
    "gmv_6h_yuan",
    "gmv_12h_yuan",
    "gmv_24h_yuan",
];

fn campaign_csv_headed(r: &CampaignReport, columns: &[&str; 23], zh: bool) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record(columns);
    let yuan = crate::know::report::plain_yuan;
    let rows = r.variants.iter().map(|v| (v, false));
    for (v, total) in rows.chain(std::iter::once((&r.total, true))) {
        // The total row is the last, whatever a variant is called; it leaves the hold-out out.
        let name = match (zh, total, v.variant.as_str()) {
            (true, true, _) => "合计（不含对照组）",
            (true, false, CONTROL) => "对照组",
            (_, _, n) => n,
        };
        let mut rec = vec![
            inert(name).into_owned(),
            v.eligible.to_string(),
            v.sent.to_string(),
            v.delivered.to_string(),
            v.suppressed.to_string(),
            v.parts.to_string(),
            v.clicks.to_string(),
            v.visitors.to_string(),
            v.recalled.to_string(),
            format!("{:.4}", v.recall_rate),
            v.buyers.to_string(),
            v.orders.to_string(),
            yuan(v.gmv),
            yuan(v.cost),
            v.roi.map(|x| format!("{x:.2}")).unwrap_or_default(),
        ];
        rec.extend(v.series.iter().map(|p| p.clicks.to_string()));
        rec.extend(v.series.iter().map(|p| yuan(p.gmv)));
        let _ = w.write_record(&rec);
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}
