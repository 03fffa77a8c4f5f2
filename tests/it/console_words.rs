//! Every console page speaks Chinese to a Chinese user: a crawl from the overview through every
//! console link, signed in as an admin of a brand with data on each page, fails on any visible
//! ASCII word that is not a number, an id, an address or one of a short list of names the trade
//! writes in Latin letters (GMV, RFM, SKU …). A code word (`tmall`, `vip`, `contact_added`,
//! `siyu:lc:1`) shown to a person fails it.

use std::collections::{BTreeSet, VecDeque};

use crate::common::{self, Backend, TestServer, no_redirects};
use serde_json::{Value, json};
use siyu::platform::TenantId;
use siyu::platform::access::{self, Role};

/// Names written in Latin letters in Chinese operations teams' own words, and the names of the
/// fields WeCom's and the platforms' admin pages print (an operator copies them across).
const ALLOWED: &[&str] = &[
    // The product's name.
    "Siyu",
    "GMV",
    "RFM",
    "R",
    "F",
    "M",
    "SKU",
    "SOP",
    "POS",
    "CSV",
    "GBK",
    "PDF",
    "PNG",
    "SVG",
    "QR",
    // An A/B test's versions.
    "A",
    "B",
    "C",
    "A/B",
    "API",
    "H5",
    "ID",
    "OneID",
    "UTC",
    "VIP",
    "CorpID",
    "Secret",
    "Token",
    "EncodingAESKey",
    "AppKey",
    "AppSecret",
    "kdt_id",
    // The language switch names the other language in that language.
    "English",
    // The seeded brand's ids: its WeCom staff (the names WeCom knows them by) and its admin's
    // sign-in name.
    "ba_li",
    "ba_zhao",
    "admin",
];

/// The visible text of a page: text between tags and the attributes a person reads, without
/// scripts, styles and comments.
fn visible_text(html: &str) -> String {
    let mut out = String::new();
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        out.push_str(&rest[..lt]);
        out.push(' ');
        rest = &rest[lt..];
        let lower = rest.get(..9).unwrap_or(rest).to_ascii_lowercase();
        let skip_to = if rest.starts_with("<!--") {
            Some("-->")
        } else if lower.starts_with("<script") {
            Some("</script>")
        } else if lower.starts_with("<style") {
            Some("</style>")
        } else {
            None
        };
        if let Some(end) = skip_to {
            let at = rest.find(end).map_or(rest.len(), |i| i + end.len());
            rest = &rest[at..];
            continue;
        }
        let gt = rest.find('>').map_or(rest.len(), |i| i + 1);
        let tag = &rest[..gt];
        for attr in ["placeholder=\"", "title=\"", "alt=\"", "aria-label=\""] {
            if let Some(i) = tag.find(attr) {
                let v = &tag[i + attr.len()..];
                out.push_str(v.split('"').next().unwrap_or(""));
                out.push(' ');
            }
        }
        rest = &rest[gt..];
        // A coupon code is an id whatever its letters (ten of them may spell no digit).
        if tag.contains("class=\"coupon-code\"") {
            rest = &rest[rest.find('<').unwrap_or(rest.len())..];
        }
    }
    out.push_str(rest);
    unescape(&out)
}

/// HTML's character references, as a browser reads them (`&amp;`, `&#38;`, `&#x27;` …).
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let end = rest.find(';').filter(|e| *e <= 10);
        let decoded = end.and_then(|e| {
            let name = &rest[1..e];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "nbsp" => Some(' '),
                _ => name
                    .strip_prefix("#x")
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .or_else(|| name.strip_prefix('#').and_then(|d| d.parse().ok()))
                    .and_then(char::from_u32),
            };
            c.map(|c| (c, e + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The ASCII words of a text a Chinese reader would not understand.
fn code_words(text: &str) -> Vec<String> {
    let word_char = |c: char| c.is_ascii_alphanumeric() || "_:.-/@+=?&%#".contains(c);
    // A placeholder an operator types into a message ({link}) is the message's syntax.
    let mut plain = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('{') {
        plain.push_str(&rest[..i]);
        match rest[i..].find('}') {
            Some(j)
                if rest[i + 1..i + j]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_') =>
            {
                rest = &rest[i + j + 1..];
            }
            _ => {
                plain.push('{');
                rest = &rest[i + 1..];
            }
        }
    }
    plain.push_str(rest);
    plain
        .split(|c: char| !word_char(c))
        .filter(|w| !(w.contains("://") || w.starts_with('/')))
        .map(|w| w.trim_matches(|c: char| ".:-/=".contains(c)))
        .filter(|w| w.chars().any(|c| c.is_ascii_alphabetic()))
        .filter(|w| {
            // An id: digits in it, or an API key's prefix (sy_…).
            let id_like =
                (w.chars().any(|c| c.is_ascii_digit()) && !w.contains(':')) || w.starts_with("sy_");
            // A time zone as the policy writes it: UTC+08:00.
            let offset = w
                .strip_prefix("UTC")
                .is_some_and(|o| o.chars().all(|c| c.is_ascii_digit() || "+-:".contains(c)));
            !(id_like || offset || ALLOWED.contains(w))
        })
        .map(str::to_owned)
        .collect()
}

/// The console pages a page links to.
fn console_links(html: &str) -> Vec<String> {
    html.split("href=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .map(unescape)
        .filter(|h| h.starts_with("/console/"))
        .filter(|h| {
            let path = h.split(['?', '#']).next().unwrap_or("");
            !(path.starts_with("/console/lang/")
                || path == "/console/logout"
                || path.starts_with("/console/assets/")
                || [".csv", ".pdf", ".png", ".svg", ".json"]
                    .iter()
                    .any(|x| path.ends_with(x)))
        })
        .map(|h| h.split('#').next().unwrap_or("").to_owned())
        .collect()
}

/// Sends `body` to the API as the brand's admin key; the answer, which must be a success.
async fn api(s: &TestServer, key: &str, method: reqwest::Method, path: &str, body: Value) -> Value {
    let body = Some(body).filter(|b| !b.is_null());
    let (st, v) = common::send(&reqwest::Client::new(), method, &s.url(path), key, body).await;
    assert!(st.is_success(), "{path}: {st} {v}");
    v
}

/// Something on every page: a segment and its snapshot, an SMS campaign launched to it, a card
/// batch, the template's coupons issued, each kind of activity, a VIP group with an SOP post,
/// and a mass message, beside what [`crate::console_e2e::seed`] made.
async fn fill_every_page(s: &TestServer, tenant: &str) {
    use reqwest::Method as M;
    let (t,): (i64,) = s
        .db()
        .fetch_one(&siyu::platform::db::sql("SELECT id FROM tenants WHERE name = $1").bind(tenant))
        .await
        .expect("tenant");
    let key = access::create_api_key(s.db(), TenantId::new(t), "巡检", Role::Admin)
        .await
        .expect("key");
    let now = siyu::platform::clock::now_ms();
    let seg = api(
        s,
        &key,
        M::POST,
        "/api/v1/segments",
        json!({"name": "全部客户", "rule": {"and": []}}),
    )
    .await;
    let snap = api(
        s,
        &key,
        M::POST,
        &format!("/api/v1/segments/{}/snapshots", seg["id"]),
        Value::Null,
    )
    .await;
    let templates = api(s, &key, M::GET, "/api/v1/coupon-templates", Value::Null).await;
    let template = &templates["templates"][0]["template"]["id"];
    api(
        s,
        &key,
        M::POST,
        &format!("/api/v1/coupon-templates/{template}/issue"),
        json!({"snapshot_id": snap["id"]}),
    )
    .await;
    let campaign = api(s, &key, M::POST, "/api/v1/campaigns", json!({
        "name": "老客召回", "snapshot_id": snap["id"], "holdout_percent": 20, "seed": "t",
        "target_url": "https://shop.example.cn/back",
        "variants": [{"name": "A", "content": "【品牌甲】老朋友，回归券已到账 {link} 拒收请回复R"}]
    })).await;
    api(
        s,
        &key,
        M::POST,
        &format!("/api/v1/campaigns/{}/launch", campaign["campaign"]["id"]),
        Value::Null,
    )
    .await;
    api(s, &key, M::POST, "/api/v1/card-batches", json!({"name": "双11包裹卡", "channel": "tmall", "coupon_template_id": template, "size": 20})).await;
    api(
        s,
        &key,
        M::POST,
        "/api/v1/flash-sales",
        json!({"name": "限时秒杀", "sku": "TEA", "title": "茶礼盒", "price": 9_900,
        "stock": 10, "per_customer": 1, "starts_at": now - 1_000, "ends_at": now + 86_400_000}),
    )
    .await;
    api(s, &key, M::POST, "/api/v1/group-buys", json!({"name": "3人团", "sku": "TEA", "title": "茶礼盒", "price": 6_900,
        "original_price": 12_900, "team_size": 3, "team_minutes": 60, "starts_at": now - 1_000, "ends_at": now + 86_400_000})).await;
    api(s, &key, M::POST, "/api/v1/bargain-items", json!({"name": "砍价0元领", "sku": "MASK", "title": "面膜", "price": 19_900,
        "floor_price": 990, "assists": 5, "stock": 10, "starts_at": now - 1_000, "ends_at": now + 86_400_000})).await;
    api(
        s,
        &key,
        M::POST,
        "/api/v1/gifts",
        json!({"name": "保温杯", "kind": "goods", "points": 100, "stock": 3}),
    )
    .await;
    api(
        s,
        &key,
        M::PUT,
        "/api/v1/groups/wrE2E/kind",
        json!({"kind": "vip"}),
    )
    .await;
    api(
        s,
        &key,
        M::POST,
        "/api/v1/sop-posts",
        json!({"name": "周三会员日", "group_kind": "vip", "due_at": now + 86_400_000,
        "content": {"text": "今晚 8 点会员日"}, "repeat_every_days": 7}),
    )
    .await;
    let tag = api(
        s,
        &key,
        M::POST,
        "/api/v1/tags",
        json!({"name": "新品关注"}),
    )
    .await;
    api(
        s,
        &key,
        M::POST,
        "/api/v1/mass-messages",
        json!({"name": "新品上市", "audience": {"tag_ids": [tag["id"]]},
        "content": {"text": "新品到店，来店试用"}}),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_console_page_speaks_chinese() {
    let s = TestServer::start(Backend::Sqlite).await;
    let (tenant, user, password) = crate::console_e2e::seed(&s).await;
    fill_every_page(&s, &tenant).await;
    let c = no_redirects();
    let cookie = common::console_session(&c, &s, &tenant, &user, &password).await;

    let mut queue = VecDeque::from(["/console/overview".to_owned()]);
    let mut seen = BTreeSet::new();
    // Each path once with each query shape, so that paging does not walk every page.
    let mut shapes = BTreeSet::new();
    let mut found = Vec::new();
    while let Some(url) = queue.pop_front() {
        let path = url.split('?').next().unwrap_or("").to_owned();
        let keys: Vec<&str> = url
            .split_once('?')
            .map(|(_, q)| {
                q.split('&')
                    .map(|kv| kv.split('=').next().unwrap_or(""))
                    .collect()
            })
            .unwrap_or_default();
        if !seen.insert(url.clone()) || !shapes.insert(format!("{path}?{keys:?}")) {
            continue;
        }
        let r = c
            .get(s.url(&url))
            .header("cookie", &cookie)
            .send()
            .await
            .expect("page");
        let status = r.status();
        let html = r.text().await.expect("text");
        assert!(
            status.is_success() || status.is_redirection(),
            "{url}: {status}"
        );
        for w in code_words(&visible_text(&html)) {
            found.push(format!("{url}: {w}"));
        }
        queue.extend(console_links(&html));
        assert!(seen.len() < 400, "the crawl does not end: {seen:?}");
    }
    // Every page, the segment's and the customers' too.
    for page in [
        "/console/segments/1",
        "/console/customers/1",
        "/console/connect",
        "/console/activities",
    ] {
        assert!(
            seen.contains(page),
            "the crawl did not reach {page}: {seen:?}"
        );
    }
    // The builder's own options (a script the crawl does not read) name events in Chinese too.
    let builder = common::console_page(&c, &s, &cookie, "/console/segments/new").await;
    assert!(
        builder.contains(r#"{"label":"添加企微好友","value":"contact_added"}"#)
            || builder.contains(r#"{"value":"contact_added","label":"添加企微好友"}"#),
        "the builder names the seeded WeCom add in Chinese"
    );
    found.sort();
    found.dedup();
    assert!(
        found.is_empty(),
        "{} code words on {} pages:\n{}",
        found.len(),
        seen.len(),
        found.join("\n")
    );
}

#[test]
fn code_words_are_told_from_numbers_ids_and_names() {
    let t = visible_text(
        "<p title=\"tmall\">GMV ¥1,299.00 订单 T-1 <b>vip</b></p><script>var general=1</script>\
         <td class=\"coupon-code\">CWKGWEEHRW</td>\
         <a href=\"/x\">http://127.0.0.1:8080/callbacks/wecom/1</a> siyu:lc:3 contact_added 点击 {link} 领取",
    );
    assert_eq!(
        code_words(&t),
        vec!["tmall", "vip", "siyu:lc:3", "contact_added"]
    );
}
