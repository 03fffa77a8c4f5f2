//! The customer list in the console (客户列表), over HTTP with the console session, on both
//! backends: filtered by lifecycle stage through the audience index, paged with the filter kept,
//! and saved as a segment.

use crate::common;
use reqwest::StatusCode;
use siyu::platform::access::{self, Role};
use siyu::platform::db::sql;

use common::{Backend, TestServer};

/// The list's total as the page says it (`共 60`), or -1 when the page shows none.
fn filter_total(page: &str) -> i64 {
    page.split("id=\"filter-total\">")
        .nth(1)
        .and_then(|r| r.split('<').next())
        .and_then(|t| t.split_whitespace().last())
        .and_then(|n| n.parse().ok())
        .unwrap_or(-1)
}

/// The customer list filtered by lifecycle stage through the audience index: every customer is
/// in exactly one stage, so the filtered totals add up to the whole list; the pager keeps the
/// filter; the filtered people save as a segment whose snapshot holds them all; a value the page
/// never offered matches nobody rather than failing.
async fn the_customer_list_filters_and_saves_its_people(backend: Backend) {
    let s = TestServer::start(backend).await;
    let c = common::no_redirects();
    let (tenant, key) = common::tenant_with_key(s.db(), "茶小铺", Role::Admin).await;
    access::create_user(
        s.db(),
        tenant,
        "ops",
        "ops",
        "a-long-password",
        Role::Operator,
    )
    .await
    .expect("user");
    let ops = common::console_session(&c, &s, "茶小铺", "ops", "a-long-password").await;
    common::make_customers(&s, &key, 5, 60).await;
    let all = filter_total(&common::console_page(&c, &s, &ops, "/console/customers").await);
    assert_eq!(all, 60, "the brand has exactly the 60 customers made here");
    let mut sum = 0;
    let mut some_stage = None;
    for stage in siyu::know::rfm::ALL_STAGES {
        let page = common::console_page(
            &c,
            &s,
            &ops,
            &format!("/console/customers?stage={}", stage.as_str()),
        )
        .await;
        let n = filter_total(&page);
        assert!(n >= 0, "{page}");
        if n > 50 {
            // A second page keeps the filter.
            assert!(
                page.contains(&format!("page=2&#38;stage={}", stage.as_str())),
                "{page}"
            );
        }
        if n > 0 && some_stage.is_none() {
            some_stage = Some((stage.as_str(), n));
        }
        sum += n;
    }
    assert_eq!(sum, all, "every customer is in one stage");
    let (stage, n) = some_stage.expect("a stage with people");
    let (st, to, _) = common::console_form(
        &c,
        &s,
        &ops,
        "/console/customers/segment",
        &[("tag", ""), ("stage", stage), ("class", "")],
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert!(to.starts_with("/console/segments/"), "{to}");
    let (size,): (i64,) = s
        .db()
        .fetch_one(&sql("SELECT size FROM segment_snapshots WHERE tenant_id = $1").bind(tenant))
        .await
        .expect("snapshot");
    assert_eq!(size, n, "the snapshot holds the filtered people");
    let page = common::console_page(&c, &s, &ops, "/console/customers?class=not-a-class").await;
    assert_eq!(filter_total(&page), 0, "{page}");
    // Nothing chosen is not "everyone"; another brand's tag is refused.
    let (st, _, refused) = common::console_form(
        &c,
        &s,
        &ops,
        "/console/customers/segment",
        &[("tag", ""), ("stage", ""), ("class", "")],
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(
        refused.contains("请先在列表上选择筛选条件"),
        "a page in Chinese: {refused}"
    );
    let (other, _) = common::tenant_with_key(s.db(), "别家", Role::Admin).await;
    let foreign = siyu::know::tags::create(
        s.db(),
        other,
        "兴趣",
        "别家的标签",
        None,
        siyu::platform::clock::now_ms(),
    )
    .await
    .expect("tag");
    let (st, _, _) = common::console_form(
        &c,
        &s,
        &ops,
        "/console/customers/segment",
        &[
            ("tag", foreign.id.to_string().as_str()),
            ("stage", ""),
            ("class", ""),
        ],
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    // A manual tag put on everyone of that stage, then taken off again.
    let vip = siyu::know::tags::create(
        s.db(),
        tenant,
        "人工",
        "重点跟进",
        None,
        siyu::platform::clock::now_ms(),
    )
    .await
    .expect("tag");
    let vip_id = vip.id.to_string();
    let (st, to, _) = common::console_form(
        &c,
        &s,
        &ops,
        "/console/customers/tag",
        &[
            ("tag", ""),
            ("stage", stage),
            ("class", ""),
            ("apply_tag", vip_id.as_str()),
            ("action", "add"),
        ],
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let page = common::console_page(&c, &s, &ops, &to).await;
    assert!(
        page.contains(&format!("已给 {n} 位客户打上「重点跟进」")),
        "{page}"
    );
    let tagged =
        common::console_page(&c, &s, &ops, &format!("/console/customers?tag={vip_id}")).await;
    assert_eq!(
        filter_total(&tagged),
        n,
        "the tag's filter finds the same people"
    );
    let (st, to, _) = common::console_form(
        &c,
        &s,
        &ops,
        "/console/customers/tag",
        &[
            ("tag", vip_id.as_str()),
            ("stage", ""),
            ("class", ""),
            ("apply_tag", vip_id.as_str()),
            ("action", "remove"),
        ],
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert!(
        common::console_page(&c, &s, &ops, &to)
            .await
            .contains(&format!("已从 {n} 位客户去掉「重点跟进」"))
    );
    let tagged =
        common::console_page(&c, &s, &ops, &format!("/console/customers?tag={vip_id}")).await;
    assert_eq!(filter_total(&tagged), 0);
    // A crafted notice link names only what the store holds.
    let page = common::console_page(
        &c,
        &s,
        &ops,
        "/console/customers?tagged=999&tag_name=424242",
    )
    .await;
    assert!(!page.contains("batch-notice"), "{page}");

    // A search is its own list: filters given with it are not applied (nor shown chosen).
    let page = common::console_page(
        &c,
        &s,
        &ops,
        &format!("/console/customers?q=%2311&stage={stage}"),
    )
    .await;
    assert!(
        !page.contains(&format!("value=\"{stage}\" selected")),
        "{page}"
    );
}
on_each_backend!(the_customer_list_filters_and_saves_its_people);

/// The list filtered by the channel bought in and the member tier: each choice counts exactly
/// its people (one bought in both channels), the two together their overlap, the pager keeps a
/// tier written in Chinese, and the filtered people save as a segment named by the choice.
async fn the_customer_list_filters_by_channel_and_tier(backend: Backend) {
    let s = TestServer::start(backend).await;
    let c = common::no_redirects();
    let (tenant, _) = common::tenant_with_key(s.db(), "茶小铺", Role::Admin).await;
    access::create_user(
        s.db(),
        tenant,
        "ops",
        "ops",
        "a-long-password",
        Role::Operator,
    )
    .await
    .expect("user");
    let now = siyu::platform::clock::now_ms();
    let sale = |no: &str, phone: &str, channel: &str| {
        let mut o = common::store_order(no, &[phone], 10_000, now - 86_400_000);
        o.channel = channel.into();
        o
    };
    common::store(
        s.db(),
        tenant,
        vec![
            sale("T-1", "13900000001", "tmall"),
            sale("T-2", "13900000002", "tmall"),
            sale("T-3", "13900000003", "tmall"),
            sale("S-1", "13900000003", "store"),
            sale("S-2", "13900000004", "store"),
        ],
    )
    .await;
    for (no, tier) in [("T-3", "金卡"), ("S-2", "银卡")] {
        let customer = common::order_owner(s.db(), tenant, no).await;
        s.db()
            .execute(
                &sql("INSERT INTO members (tenant_id, customer_id, member_no, joined_via, joined_at, tier) VALUES ($1, $2, $3, 'store', $4, $5)")
                    .bind(tenant)
                    .bind(customer)
                    .bind(format!("M-{no}"))
                    .bind(now)
                    .bind(tier),
            )
            .await
            .expect("member");
    }
    let ops = common::console_session(&c, &s, "茶小铺", "ops", "a-long-password").await;
    for (query, want) in [
        ("channel=tmall", 3),
        ("channel=store", 2),
        ("tier=%E9%87%91%E5%8D%A1", 1),
        ("channel=store&tier=%E9%87%91%E5%8D%A1", 1),
        ("channel=tmall&tier=%E9%93%B6%E5%8D%A1", 0),
        ("channel=jd", 0),
    ] {
        let page = common::console_page(&c, &s, &ops, &format!("/console/customers?{query}")).await;
        assert_eq!(filter_total(&page), want, "{query} ({backend:?})");
    }
    let page =
        common::console_page(&c, &s, &ops, "/console/customers?tier=%E9%87%91%E5%8D%A1").await;
    assert!(
        page.contains("<option value=\"金卡\" selected>金卡</option>"),
        "{page}"
    );
    assert!(page.contains("<option value=\"tmall\">天猫</option>"));
    assert!(
        page.contains("name=\"tier\" value=\"金卡\""),
        "the save and batch forms carry the tier"
    );
    let (st, to, _) = common::console_form(
        &c,
        &s,
        &ops,
        "/console/customers/segment",
        &[("channel", "store"), ("tier", "")],
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let id: i64 = to
        .trim_start_matches("/console/segments/")
        .parse()
        .expect("a segment's page");
    let (name, size): (String, i64) = s
        .db()
        .fetch_one(
            &sql("SELECT s.name, n.size FROM segments s JOIN segment_snapshots n ON n.segment_id = s.id WHERE s.tenant_id = $1 AND s.id = $2")
                .bind(tenant)
                .bind(id),
        )
        .await
        .expect("segment");
    assert!(name.starts_with("门店 · "), "{name}");
    assert_eq!(size, 2, "both store buyers");
}
on_each_backend!(the_customer_list_filters_by_channel_and_tier);

/// The list sorted by spend, pages of 20, with a channel filter: each page holds exactly the
/// people a plain sort of what was stored puts there, the pager and the jump keep the order and
/// the size, and a sort the page never offered falls back to newest first.
async fn the_customer_list_sorts_and_pages(backend: Backend) {
    let s = TestServer::start(backend).await;
    let c = common::no_redirects();
    let (tenant, _) = common::tenant_with_key(s.db(), "茶小铺", Role::Admin).await;
    access::create_user(
        s.db(),
        tenant,
        "ops",
        "ops",
        "a-long-password",
        Role::Operator,
    )
    .await
    .expect("user");
    let now = siyu::platform::clock::now_ms();
    // 25 buyers: #i spends i × ¥37 (two orders for the odd ones), in store when i % 3 == 0.
    let mut orders = Vec::new();
    let mut spend: Vec<(String, i64, bool)> = Vec::new();
    for i in 1..=25i64 {
        let phone = format!("1360000{i:04}");
        let mut total = 0;
        for k in 0..(1 + i % 2) {
            let amount = i * 3_700 / (1 + i % 2);
            let mut o = common::store_order(
                &format!("O-{i}-{k}"),
                &[&phone],
                amount,
                now - (30 - i) * 86_400_000,
            );
            o.channel = if i % 3 == 0 {
                "store".into()
            } else {
                "tmall".into()
            };
            total += amount;
            orders.push(o);
        }
        spend.push((format!("O-{i}-0"), total, i % 3 == 0));
    }
    common::store(s.db(), tenant, orders).await;
    siyu::know::profile::recompute_all(s.db(), tenant, now)
        .await
        .expect("figures");
    let mut want: Vec<(i64, i64, bool)> = Vec::new();
    for (no, total, in_store) in &spend {
        want.push((
            common::order_owner(s.db(), tenant, no).await,
            *total,
            *in_store,
        ));
    }
    want.sort_by(|a, b| b.1.cmp(&a.1).then(b.0.cmp(&a.0)));
    let ops = common::console_session(&c, &s, "茶小铺", "ops", "a-long-password").await;
    let ids_on = |page: &str| -> Vec<i64> {
        page.split("<tr class=\"customer-row\"><td><a href=\"/console/customers/")
            .skip(1)
            .filter_map(|r| r.split('"').next()?.parse().ok())
            .collect()
    };
    let everyone: Vec<i64> = want.iter().map(|w| w.0).collect();
    let p1 = common::console_page(&c, &s, &ops, "/console/customers?sort=spend&size=20").await;
    assert_eq!(ids_on(&p1), everyone[..20].to_vec(), "{backend:?}");
    assert!(
        p1.contains("page=2&#38;sort=spend&#38;size=20"),
        "the pager keeps order and size"
    );
    assert!(
        p1.contains("id=\"jump\"") && p1.contains("name=\"sort\" value=\"spend\""),
        "{p1}"
    );
    let p2 =
        common::console_page(&c, &s, &ops, "/console/customers?page=2&sort=spend&size=20").await;
    assert_eq!(ids_on(&p2), everyone[20..].to_vec());
    let store: Vec<i64> = want.iter().filter(|w| w.2).map(|w| w.0).collect();
    let page =
        common::console_page(&c, &s, &ops, "/console/customers?channel=store&sort=spend").await;
    assert_eq!(ids_on(&page), store, "the filter and the order together");
    // A sort never offered: newest first, as without one.
    let newest = common::console_page(&c, &s, &ops, "/console/customers?size=20").await;
    let odd = common::console_page(&c, &s, &ops, "/console/customers?sort=price&size=20").await;
    assert_eq!(ids_on(&odd), ids_on(&newest));
    let mut by_id = everyone.clone();
    by_id.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(ids_on(&newest), by_id[..20].to_vec());
}
on_each_backend!(the_customer_list_sorts_and_pages);

/// The 360 shows what the brand did with a customer (membership, coupons held, the messages
/// sent and where each stands, the WeCom guide and groups) and lets an operator give a coupon
/// and put on a tag from there; a viewer may do neither, and a crafted link says nothing.
async fn the_360_shows_what_the_brand_did_and_acts_on_it(backend: Backend) {
    let s = TestServer::start(backend).await;
    let c = common::no_redirects();
    let (tenant, key) = common::tenant_with_key(s.db(), "茶小铺", Role::Admin).await;
    for (user, role) in [("ops", Role::Operator), ("viewer", Role::Viewer)] {
        access::create_user(s.db(), tenant, user, user, "a-long-password", role)
            .await
            .expect("user");
    }
    let ops = common::console_session(&c, &s, "茶小铺", "ops", "a-long-password").await;
    let viewer = common::console_session(&c, &s, "茶小铺", "viewer", "a-long-password").await;
    let id = common::make_customers(&s, &key, 9, 1).await[0];
    let now = siyu::platform::clock::now_ms();
    let (st, t) = common::send(&c, reqwest::Method::POST, &s.url("/api/v1/coupon-templates"), &key,
        Some(serde_json::json!({"name": "老客回归券", "kind": "amount_off", "value": 2_000, "valid_days": 30, "total": 10, "claim_via": "api"}))).await;
    assert_eq!(st, StatusCode::CREATED, "{t}");
    let template = t["id"].as_i64().expect("template");
    let tag = siyu::know::tags::create(s.db(), tenant, "兴趣", "爱喝绿茶", None, now)
        .await
        .expect("tag");
    // A message held by quiet hours, and a WeCom guide with a group.
    s.db()
        .execute(
            &sql("INSERT INTO outbox (id, tenant_id, channel, purpose, customer_id, address_hash, address_enc, content, content_hash, parts, dedupe_key, status, not_before, created_at) \
                  VALUES (9001, $1, 'sms', 'marketing', $2, 'h', 'x', '【茶小铺】好久不见', 'c', 1, 'd-9001', 'queued', $3, $4)")
                .bind(tenant)
                .bind(id)
                .bind(now + 3_600_000)
                .bind(now),
        )
        .await
        .expect("message");
    s.db()
        .execute(
            &sql("INSERT INTO wecom_contacts (tenant_id, external_userid, userid, customer_id, added_at) VALUES ($1, 'wm360', 'ba_li', $2, $3)")
                .bind(tenant)
                .bind(id)
                .bind(now),
        )
        .await
        .expect("contact");
    siyu::connect::groups::store_snapshot(
        s.db(),
        tenant,
        &siyu::connect::client::GroupChat {
            chat_id: "wr360".into(),
            name: "绿茶爱好者群".into(),
            owner: "ba_li".into(),
            create_time: now / 1000,
            member_list: vec![siyu::connect::client::ChatMember {
                userid: "wm360".into(),
                member_type: 2,
                join_time: now / 1000,
                join_scene: 3,
            }],
        },
        now,
    )
    .await
    .expect("group");

    let path = format!("/console/customers/{id}");
    let page = common::console_page(&c, &s, &ops, &path).await;
    assert!(page.contains("还不是会员"), "{page}");
    assert!(
        page.contains(&format!(
            "等待免打扰时段结束（至 {}）",
            siyu::platform::clock::format_local(now + 3_600_000)
        )) && page.contains("短信 · 营销"),
        "{page}"
    );
    assert!(
        page.contains("ba_li") && page.contains("绿茶爱好者群"),
        "{page}"
    );
    assert!(
        !common::console_page(&c, &s, &viewer, &path)
            .await
            .contains("id=\"grant-coupon\"")
    );

    // A coupon and a tag from the page; each says what it did, checked against the store.
    let (st, _, _) = common::console_form(
        &c,
        &s,
        &viewer,
        &format!("{path}/coupons"),
        &[("template_id", template.to_string())],
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, to, _) = common::console_form(
        &c,
        &s,
        &ops,
        &format!("{path}/coupons"),
        &[("template_id", template.to_string())],
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let page = common::console_page(&c, &s, &ops, &to).await;
    assert!(
        page.contains("已发给这位客户一张「老客回归券」") && page.contains("可使用"),
        "{page}"
    );
    let (st, to, _) = common::console_form(
        &c,
        &s,
        &ops,
        &format!("{path}/tags"),
        &[("tag_id", tag.id.to_string())],
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let page = common::console_page(&c, &s, &ops, &to).await;
    assert!(
        page.contains("已打上「爱喝绿茶」") && page.contains("兴趣/爱喝绿茶"),
        "{page}"
    );
    let (held,): (i64,) = s
        .db()
        .fetch_one(
            &sql("SELECT COUNT(*) FROM coupons WHERE tenant_id = $1 AND customer_id = $2")
                .bind(tenant)
                .bind(id),
        )
        .await
        .expect("coupons");
    assert_eq!(held, 1);
    // A crafted link says nothing: the customer holds no such coupon or tag.
    let page = common::console_page(&c, &s, &ops, &format!("{path}?granted=999&tagged=999")).await;
    assert!(!page.contains("customer-notice"), "{page}");

    // Notes: kept with who wrote them; one too long is refused with what was typed kept; a
    // viewer may not write one.
    let notes = format!("{path}/notes");
    let (st, to, _) =
        common::console_form(&c, &s, &ops, &notes, &[("body", "喜欢明前龙井，周末来店")]).await;
    assert_eq!(
        (st, to.as_str()),
        (StatusCode::SEE_OTHER, format!("{path}#notes").as_str())
    );
    let long = "茶".repeat(501);
    let (st, _, page) =
        common::console_form(&c, &s, &ops, &notes, &[("body", long.as_str())]).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(
        page.contains("备注：请写 1 到 500 个字") && page.contains(&long),
        "the typed note is kept"
    );
    let (st, _, _) = common::console_form(&c, &s, &viewer, &notes, &[("body", "x")]).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let page = common::console_page(&c, &s, &ops, &path).await;
    assert!(
        page.contains("喜欢明前龙井，周末来店") && page.contains(" · ops</span>"),
        "{page}"
    );
    // The API reads and writes the same notes; an empty one is refused naming the field.
    let api_notes = s.url(&format!("/api/v1/customers/{id}/notes"));
    let (st, made) = common::send(
        &c,
        reqwest::Method::POST,
        &api_notes,
        &key,
        Some(serde_json::json!({"body": "门店系统：已回访"})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{made}");
    let (st, bad) = common::send(
        &c,
        reqwest::Method::POST,
        &api_notes,
        &key,
        Some(serde_json::json!({"body": "  "})),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(
        bad["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("body:")),
        "{bad}"
    );
    let (_, listed) = common::send(&c, reqwest::Method::GET, &api_notes, &key, None).await;
    let bodies: Vec<&str> = listed["notes"]
        .as_array()
        .expect("notes")
        .iter()
        .filter_map(|n| n["body"].as_str())
        .collect();
    assert_eq!(bodies, ["门店系统：已回访", "喜欢明前龙井，周末来店"]);
    // A second record of the same person, with a note of its own: once an order names both
    // phones, OneID merges them and the survivor's page holds both notes.
    let other = common::make_customers(&s, &key, 8, 1).await[0];
    common::console_form(
        &c,
        &s,
        &ops,
        &format!("/console/customers/{other}/notes"),
        &[("body", "怕打扰，只发短信")],
    )
    .await;
    let phones: Vec<(String,)> = s
        .db()
        .fetch_all(&sql("SELECT value_enc FROM identities WHERE tenant_id = $1 AND kind = 'phone' AND customer_id IN ($2, $3)").bind(tenant).bind(id).bind(other))
        .await
        .expect("phones");
    assert_eq!(phones.len(), 2);
    let plain: Vec<String> = phones
        .iter()
        .map(|(enc,)| s.cipher.decrypt(enc).expect("phone"))
        .collect();
    common::store(
        s.db(),
        tenant,
        vec![common::store_order(
            "BOTH-1",
            &[&plain[0], &plain[1]],
            100,
            now,
        )],
    )
    .await;
    let survivor = common::order_owner(s.db(), tenant, "BOTH-1").await;
    let page = common::console_page(&c, &s, &ops, &format!("/console/customers/{survivor}")).await;
    assert!(
        page.contains("喜欢明前龙井，周末来店") && page.contains("怕打扰，只发短信"),
        "{page}"
    );
}
on_each_backend!(the_360_shows_what_the_brand_did_and_acts_on_it);

/// Members in the console: 60 members, paged 50 and 10; each tier card lists its members; a
/// search by member number or store finds them; the pager keeps the search.
async fn members_are_paged_and_found(backend: Backend) {
    let s = TestServer::start(backend).await;
    let c = common::no_redirects();
    let (tenant, key) = common::tenant_with_key(s.db(), "茶小铺", Role::Admin).await;
    access::create_user(
        s.db(),
        tenant,
        "ops",
        "ops",
        "a-long-password",
        Role::Operator,
    )
    .await
    .expect("user");
    let ops = common::console_session(&c, &s, "茶小铺", "ops", "a-long-password").await;
    let ids = common::make_customers(&s, &key, 5, 60).await;
    let now = siyu::platform::clock::now_ms();
    for (i, id) in ids.iter().enumerate() {
        s.db()
            .execute(
                &sql("INSERT INTO members (tenant_id, customer_id, member_no, joined_via, store_id, joined_at, tier) VALUES ($1, $2, $3, 'store', $4, $5, $6)")
                    .bind(tenant)
                    .bind(*id)
                    .bind(format!("M{i:04}"))
                    .bind(if i % 4 == 0 { "SH-01" } else { "BJ-02" })
                    .bind(now - i as i64 * 60_000)
                    .bind(if i < 7 { "金卡" } else { "银卡" }),
            )
            .await
            .expect("member");
    }
    let rows = |page: &str| page.matches("class=\"member-row\"").count();
    let total = |page: &str| -> String {
        page.split("id=\"member-total\">")
            .nth(1)
            .and_then(|r| r.split('<').next())
            .unwrap_or_default()
            .to_owned()
    };
    let p1 = common::console_page(&c, &s, &ops, "/console/members").await;
    assert_eq!(
        (rows(&p1), total(&p1).as_str()),
        (50, "共 60 · 1/2"),
        "{backend:?}"
    );
    let p2 = common::console_page(&c, &s, &ops, "/console/members?page=2").await;
    assert_eq!(rows(&p2), 10);
    assert!(
        p1.contains("href=\"/console/members?tier=%E9%87%91%E5%8D%A1\""),
        "a tier card lists its members"
    );
    let gold = common::console_page(&c, &s, &ops, "/console/members?tier=%E9%87%91%E5%8D%A1").await;
    assert_eq!((rows(&gold), total(&gold).as_str()), (7, "共 7 · 1/1"));
    let found = common::console_page(&c, &s, &ops, "/console/members?q=M0012").await;
    assert!(rows(&found) == 1 && found.contains(">M0012<"), "{found}");
    let store = common::console_page(&c, &s, &ops, "/console/members?q=SH-01").await;
    assert_eq!(total(&store), "共 15 · 1/1");
    let both = common::console_page(
        &c,
        &s,
        &ops,
        "/console/members?q=SH-01&tier=%E9%87%91%E5%8D%A1",
    )
    .await;
    assert_eq!(rows(&both), 2, "M0000 and M0004");
}
on_each_backend!(members_are_paged_and_found);
