//! Connect over HTTP on every backend, against the local WeCom sandbox: the callback URL is
//! verified; an add through a channel live code is tagged (here and in WeCom), welcomed with its
//! welcome_code and attributed within a second; retries, foreign states, deletions, expired
//! tokens and malformed callbacks are handled; a group timeline from callbacks reproduces a
//! retention table worked out by hand; SOP posts and mass messages reach guides, are reminded
//! and completed; a lapsed buyer who adds a guide is in the WeCom audiences at once.

use crate::common;
use siyu::platform::TenantId;
use std::time::{Duration, Instant};

use base64::Engine;
use rand::{Rng, SeedableRng};
use reqwest::{Method as M, StatusCode};
use serde_json::{Value, json};
use siyu::connect::client::{ChatMember, GroupChat};
use siyu::connect::crypto::CallbackCrypto;
use siyu::connect::events::{CallbackEvent, DeletedBy, Envelope};
use siyu::platform::access::Role;
use siyu::platform::clock::now_ms;
use siyu::platform::db::sql;
use siyu_wecom_sandbox::{Sandbox, SandboxCorp};

use common::{Backend, TestServer, send, tenant_with_key};

struct World {
    s: TestServer,
    wecom: Sandbox,
    key: String,
    tenant: TenantId,
    callback: String,
    c: reqwest::Client,
}

async fn world(backend: common::Backend) -> World {
    let s = TestServer::start(backend).await;
    let (tenant, key) = tenant_with_key(s.db(), "brand", Role::Admin).await;
    let wecom = Sandbox::start(SandboxCorp::default())
        .await
        .expect("sandbox");
    let c = reqwest::Client::new();
    let corp = wecom.corp().clone();
    let (st, v) = send(
        &c,
        M::PUT,
        &s.url("/api/v1/wecom"),
        &key,
        Some(
            json!({"corp_id": corp.corp_id, "secret": corp.secret, "token": corp.token,
                    "encoding_aes_key": corp.encoding_aes_key, "base_url": wecom.url()}),
        ),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let callback = v["callback_url"].as_str().expect("callback_url").to_owned();
    assert_eq!(callback, s.url(&format!("/callbacks/wecom/{tenant}")));
    // No quiet hours, so mass messages go out whatever the hour the test runs.
    let (st, v) = send(&c, M::PUT, &s.url("/api/v1/contact-policy"), &key,
        Some(json!({"marketing_per_week": 2, "quiet_start_minute": 0, "quiet_end_minute": 0, "dedupe_hours": 24}))).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    World {
        s,
        wecom,
        key,
        tenant,
        callback,
        c,
    }
}

impl World {
    async fn api(&self, m: M, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        send(&self.c, m, &self.s.url(path), &self.key, body).await
    }

    /// Asserts that the request is refused with a 400 whose message names `field` first.
    async fn rejects(&self, m: M, path: &str, body: Value, field: &str) {
        let (st, bad) = self.api(m, path, Some(body)).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{bad}");
        let msg = bad["error"]["message"].as_str().expect("msg");
        assert!(msg.starts_with(&format!("{field}:")), "{bad}");
    }

    async fn deliver(&self, env: &Envelope) {
        let (st, body) = self
            .wecom
            .deliver(&self.callback, env)
            .await
            .expect("deliver");
        assert_eq!((st, body.as_str()), (200, "success"), "{env:?}");
    }

    async fn tag(&self, name: &str) -> i64 {
        let (st, v) = self
            .api(
                M::POST,
                "/api/v1/tags",
                Some(json!({"group": "渠道", "name": name})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        v["id"].as_i64().expect("tag id")
    }

    async fn code(&self, name: &str, tag: i64, guides: Value, backup: &str) -> Value {
        let (st, v) = self
            .api(
                M::POST,
                "/api/v1/live-codes",
                Some(json!({
                    "name": name, "source": "store", "source_id": 12, "tag_ids": [tag],
                    "welcome": {"text": "欢迎来到门店，送您一张 20 元券", "attachments": [
                        {"msgtype": "miniprogram", "miniprogram": {"title": "领券", "pic_media_id": "MEDIA", "appid": "wxmall", "page": "/coupon"}}]},
                    "guides": guides, "backup_userid": backup
                })),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        v
    }

    async fn customer_by(&self, identity: &str) -> i64 {
        let (st, v) = self
            .api(
                M::GET,
                &format!("/api/v1/customers?identity={identity}"),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{identity}: {v}");
        v["id"].as_i64().expect("customer id")
    }

    async fn customer(&self, external_userid: &str) -> Option<Value> {
        let (st, v) = self
            .api(
                M::GET,
                &format!("/api/v1/customers?identity=external_userid:{external_userid}"),
                None,
            )
            .await;
        (st == StatusCode::OK).then_some(v)
    }

    /// The welcome messages WeCom accepted, once there are `n` (they go out on a lane of their
    /// own, beside the inbox [`settle`](Self::settle) waits for, and a refused token is
    /// refreshed and the call made again).
    async fn welcomed(&self, n: usize) -> Vec<siyu_wecom_sandbox::Call> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let calls = self.wecom.calls("send_welcome_msg");
            if calls.iter().filter(|c| c.errcode == 0).count() >= n || Instant::now() > deadline {
                return calls;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn settle(&self) {
        // The callback queue is asynchronous; wait until the inbox has nothing unfinished.
        if let Err(n) = self
            .s
            .app
            .connect
            .wait_drained(self.tenant, Duration::from_secs(10))
            .await
        {
            let errors: Vec<(String, Option<String>)> = self
                .s
                .db()
                .fetch_all(&sql(
                    "SELECT event, error FROM wecom_inbox WHERE done_at IS NULL",
                ))
                .await
                .expect("inbox");
            panic!("{n} callbacks unfinished after 10 s: {errors:?}");
        }
    }
}

fn welcome_code(env: &Envelope) -> String {
    match &env.event {
        CallbackEvent::ContactAdded {
            welcome_code: Some(c),
            ..
        } => c.clone(),
        e => panic!("not an add: {e:?}"),
    }
}

async fn an_add_through_a_live_code_is_welcomed_tagged_and_attributed_within_a_second(
    backend: Backend,
) {
    let w = world(backend).await;
    // WeCom checks the callback URL when it is saved: the decrypted echostr comes back.
    let (st, echo) = w.wecom.verify_url(&w.callback).await.expect("verify");
    assert_eq!(
        (st, echo.as_str()),
        (200, "sandbox-echo-1616140317555161061")
    );

    let tag = w.tag("门店新客").await;
    let code = w
        .code("静安店活码", tag, json!([{"userid": "guide_a"}]), "guide_b")
        .await;
    let state = code["state"].as_str().expect("state").to_owned();
    assert!(state.len() <= 30, "{state}");
    let code_id = code["id"].as_i64().expect("id");
    assert_eq!(code["serving"], json!(["guide_a"]));
    let way = w.wecom.calls("add_contact_way");
    assert_eq!(way.len(), 1);
    assert_eq!(way[0].body["state"], state.as_str());
    assert_eq!(way[0].body["user"], json!(["guide_a"]));
    // The code's tag is mirrored in WeCom.
    let corp_tag = w.wecom.calls("add_corp_tag");
    assert_eq!(corp_tag.len(), 1);
    assert_eq!(corp_tag[0].body["tag"][0]["name"], "门店新客");

    // The customer scans and adds guide_a.
    let env = w
        .wecom
        .customer_adds("guide_a", "wmCUST1", Some("ounion-1"), Some(&state));
    let started = Instant::now();
    w.deliver(&env).await;
    let deadline = started + Duration::from_secs(1);
    let (customer, welcomed, marked) = loop {
        let customer = w.customer("wmCUST1").await;
        let tagged = customer.as_ref().is_some_and(|c| {
            c["tags"]
                .as_array()
                .is_some_and(|t| t.iter().any(|x| x["id"] == tag))
        });
        let welcomed = w.wecom.calls("send_welcome_msg");
        let marked = w.wecom.calls("mark_tag");
        if tagged && !welcomed.is_empty() && !marked.is_empty() {
            break (customer.expect("customer"), welcomed, marked);
        }
        assert!(
            Instant::now() < deadline,
            "{backend:?}: not done within a second: customer {customer:?}, welcome {welcomed:?}, mark_tag {marked:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(welcomed.len(), 1);
    assert_eq!(welcomed[0].errcode, 0, "{:?}", welcomed[0]);
    assert_eq!(
        welcomed[0].body["welcome_code"],
        welcome_code(&env).as_str()
    );
    assert_eq!(
        welcomed[0].body["text"]["content"],
        "欢迎来到门店，送您一张 20 元券"
    );
    assert_eq!(welcomed[0].body["attachments"][0]["msgtype"], "miniprogram");
    assert_eq!(marked[0].errcode, 0, "{:?}", marked[0]);
    assert_eq!(marked[0].body["userid"], "guide_a");
    assert_eq!(marked[0].body["external_userid"], "wmCUST1");
    let in_wecom: Vec<String> = w
        .wecom
        .contact_tags("guide_a", "wmCUST1")
        .into_iter()
        .collect();
    assert_eq!(
        in_wecom.len(),
        1,
        "the contact carries the code's tag in WeCom"
    );
    assert_eq!(marked[0].body["add_tag"], json!(in_wecom));
    // The unionid WeCom gave joined the customer's identities.
    let ids: Vec<String> = customer["identities"]
        .as_array()
        .expect("ids")
        .iter()
        .map(|i| i["kind"].as_str().unwrap_or("").to_owned())
        .collect();
    assert!(
        ids.contains(&"unionid".to_owned()) && ids.contains(&"external_userid".to_owned()),
        "{ids:?}"
    );
    // The touchpoint is recorded for attribution.
    w.settle().await;
    let cust = customer["id"].as_i64().expect("id");
    let (n,): (i64,) = w.s.db().fetch_one(&sql("SELECT COUNT(*) FROM events WHERE tenant_id = $1 AND customer_id = $2 AND type = 'contact_added' AND touchpoint = $3 AND channel = 'wecom'")
        .bind(w.tenant).bind(cust).bind(format!("live_code:{code_id}"))).await.expect("events");
    assert_eq!(n, 1, "{backend:?}");

    // WeCom retries the same callback: acknowledged, nothing done twice.
    w.deliver(&env).await;
    w.settle().await;
    assert_eq!(w.wecom.calls("send_welcome_msg").len(), 1);

    // A state Siyu did not make is a foreign code: the contact is kept, nothing is sent for it.
    w.deliver(
        &w.wecom
            .customer_adds("guide_a", "wmCUST2", None, Some("crm-legacy-77")),
    )
    .await;
    // An expired token is refreshed and the call made again.
    let issued = w.wecom.token_issues();
    w.wecom.expire_tokens();
    w.deliver(
        &w.wecom
            .customer_adds("guide_a", "wmCUST3", None, Some(&state)),
    )
    .await;
    w.settle().await;
    assert!(w.customer("wmCUST2").await.is_some());
    assert!(w.wecom.token_issues() > issued);
    let welcomes = w.welcomed(2).await;
    assert_eq!(
        welcomes.iter().filter(|c| c.errcode == 0).count(),
        2,
        "{welcomes:?}"
    );

    // The customer deletes the guide.
    w.deliver(&Envelope {
        corp_id: w.wecom.corp().corp_id.clone(),
        create_time: now_ms() / 1000,
        event: CallbackEvent::ContactDeleted {
            userid: "guide_a".into(),
            external_userid: "wmCUST1".into(),
            by: DeletedBy::Customer,
        },
    })
    .await;
    w.settle().await;
    let (st, codes) = w.api(M::GET, "/api/v1/live-codes", None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(codes[0]["adds"], 2, "{codes}");
    assert_eq!(codes[0]["deletions"], 1);
    assert_eq!(codes[0]["net"], 1);
    assert_eq!(codes[0]["welcomes_sent"], 2);

    // Bad input is refused with a reason, never a 500.
    let (q, body) = w.wecom.seal(&env, now_ms() / 1000);
    let bad_sig = q.replacen("msg_signature=", "msg_signature=0", 1);
    let r =
        w.c.post(format!("{}?{bad_sig}", w.callback))
            .body(body.clone())
            .send()
            .await
            .expect("post");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.expect("text").contains("msg_signature"));
    let (old_q, old_body) = w.wecom.seal(&env, now_ms() / 1000 - 3600);
    let r =
        w.c.post(format!("{}?{old_q}", w.callback))
            .body(old_body)
            .send()
            .await
            .expect("post");
    assert_eq!(
        r.status(),
        StatusCode::BAD_REQUEST,
        "an hour-old timestamp is a replay"
    );
    let r =
        w.c.post(s_url(&w, "/callbacks/wecom/999999"))
            .body(body)
            .send()
            .await
            .expect("post");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}
on_each_backend!(an_add_through_a_live_code_is_welcomed_tagged_and_attributed_within_a_second);

fn s_url(w: &World, p: &str) -> String {
    w.s.url(p)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_bytes_never_panic_the_callback_endpoint() {
    let backend = Backend::Sqlite;
    let w = world(backend).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let (good_q, good_body) = w.wecom.seal(
        &w.wecom.customer_adds("g", "wmX", None, None),
        now_ms() / 1000,
    );
    for i in 0..400 {
        let len = rng.random_range(0..600);
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        // A third of the cases flip bytes in a valid callback; a third are random bodies with
        // random timestamps; a third carry a valid signature over random ciphertext.
        let query = if i % 3 == 2 {
            // A valid signature over garbage ciphertext: reaches decryption and its checks.
            let corp = w.wecom.corp();
            let c = CallbackCrypto::new(&corp.token, &corp.encoding_aes_key, &corp.corp_id)
                .expect("crypto");
            let junk: String = base64::engine::general_purpose::STANDARD.encode(&bytes);
            let ts = (now_ms() / 1000).to_string();
            let sig = c.signature(&ts, "n", &junk);
            bytes = format!("<xml><Encrypt><![CDATA[{junk}]]></Encrypt></xml>").into_bytes();
            format!("msg_signature={sig}&timestamp={ts}&nonce=n")
        } else if i % 3 == 0 {
            bytes = good_body.clone().into_bytes();
            for _ in 0..rng.random_range(1..8) {
                let at = rng.random_range(0..bytes.len());
                bytes[at] = rng.random();
            }
            good_q.clone()
        } else {
            let ts: String = (0..rng.random_range(0..12))
                .map(|_| char::from(rng.random_range(b'0'..=b'z')))
                .collect();
            format!("msg_signature=abc&timestamp={ts}&nonce=1")
        };
        let r =
            w.c.post(format!("{}?{query}", w.callback))
                .body(bytes)
                .send()
                .await
                .expect("post");
        assert!(
            r.status() == StatusCode::BAD_REQUEST || r.status() == StatusCode::OK,
            "case {i}: {}",
            r.status()
        );
    }
    // Still serving.
    let (st, body) = w
        .wecom
        .deliver(&w.callback, &w.wecom.customer_adds("g", "wmY", None, None))
        .await
        .expect("deliver");
    assert_eq!((st, body.as_str()), (200, "success"));
}

const DAY: i64 = 86_400_000;
const WEEK: i64 = 7 * DAY;

/// Monday 00:00 Beijing time of the week `weeks_ago` weeks before now.
fn monday_weeks_ago(weeks_ago: i64) -> i64 {
    let local = now_ms() + 8 * 3_600_000;
    let day = local.div_euclid(DAY);
    let monday = day - (day + 3).rem_euclid(7);
    (monday - 7 * weeks_ago) * DAY - 8 * 3_600_000
}

async fn a_group_timeline_from_callbacks_reproduces_the_retention_table(backend: Backend) {
    let w = world(backend).await;
    let w1 = monday_weeks_ago(9);
    let w2 = w1 + WEEK;
    w.wecom.put_group(GroupChat {
        chat_id: "wrVIP1".into(),
        name: "VIP 福利群".into(),
        owner: "guide_a".into(),
        create_time: (w1 - DAY) / 1000,
        member_list: vec![ChatMember {
            userid: "guide_a".into(),
            member_type: 1,
            join_time: (w1 - DAY) / 1000,
            join_scene: 0,
        }],
    });
    let corp = w.wecom.corp().corp_id.clone();
    w.deliver(&Envelope {
        corp_id: corp,
        create_time: (w1 - DAY) / 1000,
        event: CallbackEvent::ChatCreated {
            chat_id: "wrVIP1".into(),
        },
    })
    .await;
    w.settle().await;
    // (member, joined, left) — worked out by hand below.
    let timeline: Vec<(&str, i64, Option<i64>)> = vec![
        ("wmA", w1 + DAY, None),
        ("wmB", w1 + 2 * DAY, Some(w1 + 5 * DAY)),
        ("wmC", w1 + 3 * DAY, Some(w1 + 13 * DAY)),
        ("wmD", w1 + 4 * DAY, Some(w1 + 24 * DAY)),
        ("wmE", w1 + 6 * DAY, Some(w1 + 36 * DAY)),
        ("wmF", w2 + DAY / 2, None),
        ("wmG", w2 + DAY, Some(w2 + 9 * DAY)),
    ];
    let mut moves: Vec<(i64, &str, bool)> = Vec::new();
    for (m, j, l) in &timeline {
        moves.push((*j, m, true));
        if let Some(l) = l {
            moves.push((*l, m, false));
        }
    }
    moves.sort();
    for (at, m, join) in moves {
        let env = if join {
            w.wecom.join_group("wrVIP1", &[m], at / 1000)
        } else {
            w.wecom.leave_group("wrVIP1", &[m], at / 1000)
        };
        w.deliver(&env).await;
    }
    w.settle().await;
    // By hand, week k keeps a member whose stay outlasted k weeks:
    //   cohort 1 (A B C D E; stays ∞, 3, 10, 20, 30 days): weeks 1–4 keep 4, 3, 2, 2 of 5
    //   cohort 2 (F G; stays ∞, 8 days):                    weeks 1–4 keep 2, 1, 1, 1 of 2
    let (st, table) = w
        .api(M::GET, "/api/v1/groups/retention?weeks=4", None)
        .await;
    assert_eq!(st, StatusCode::OK, "{table}");
    assert_eq!(
        table,
        json!([
            {"week_start": w1, "joined": 5, "retained": [4, 3, 2, 2], "rate": [0.8, 0.6, 0.4, 0.4]},
            {"week_start": w2, "joined": 2, "retained": [2, 1, 1, 1], "rate": [1.0, 0.5, 0.5, 0.5]},
        ]),
        "{backend:?}"
    );
    // Group kinds filter the table; the group list counts current and past customers.
    let (st, _) = w
        .api(
            M::PUT,
            "/api/v1/groups/wrVIP1/kind",
            Some(json!({"kind": "vip"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let (_, vip) = w
        .api(M::GET, "/api/v1/groups/retention?weeks=4&kind=vip", None)
        .await;
    assert_eq!(vip, table);
    let (_, flash) = w
        .api(M::GET, "/api/v1/groups/retention?weeks=4&kind=flash", None)
        .await;
    assert_eq!(flash, json!([]));
    w.rejects(
        M::PUT,
        "/api/v1/groups/wrVIP1/kind",
        json!({"kind": "gold"}),
        "kind",
    )
    .await;
    let (_, groups) = w.api(M::GET, "/api/v1/groups", None).await;
    assert_eq!(groups[0]["customers"], 2, "{groups}");
    assert_eq!(groups[0]["joined"], 7);
    assert_eq!(groups[0]["kind"], "vip");
    // Dismissing the group ends every stint.
    w.deliver(&Envelope {
        corp_id: w.wecom.corp().corp_id.clone(),
        create_time: now_ms() / 1000,
        event: CallbackEvent::ChatDismissed {
            chat_id: "wrVIP1".into(),
        },
    })
    .await;
    w.settle().await;
    let (_, groups) = w.api(M::GET, "/api/v1/groups", None).await;
    assert_eq!(groups[0]["customers"], 0);
    assert!(groups[0]["dismissed_at"].is_i64());
}
on_each_backend!(a_group_timeline_from_callbacks_reproduces_the_retention_table);

async fn sop_posts_and_mass_messages_reach_guides_and_are_followed_up(backend: Backend) {
    let w = world(backend).await;
    let tag = w.tag("活码客户").await;
    let code = w
        .code(
            "官网活码",
            tag,
            json!([{"userid": "guide_a", "daily_cap": 1}, {"userid": "guide_c"}]),
            "guide_b",
        )
        .await;
    let state = code["state"].as_str().expect("state").to_owned();
    // guide_a reaches its cap of one add a day: the contact way drops it from the rota.
    w.deliver(&w.wecom.customer_adds("guide_a", "wmM1", None, Some(&state)))
        .await;
    w.settle().await;
    let config_id = code["config_id"].as_str().expect("config_id");
    assert_eq!(w.wecom.contact_way_users(config_id), vec!["guide_c"]);
    w.deliver(&w.wecom.customer_adds("guide_c", "wmM2", None, Some(&state)))
        .await;
    w.settle().await;

    // A group SOP post for VIP groups.
    w.wecom.put_group(GroupChat {
        chat_id: "wrSOP1".into(),
        name: "VIP群".into(),
        owner: "guide_a".into(),
        create_time: now_ms() / 1000,
        member_list: vec![],
    });
    let (st, _) = w.api(M::POST, "/api/v1/groups/sync", None).await;
    assert_eq!(st, StatusCode::OK);
    let (st, _) = w
        .api(
            M::PUT,
            "/api/v1/groups/wrSOP1/kind",
            Some(json!({"kind": "vip"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, bad) = w.api(M::POST, "/api/v1/sop-posts", Some(json!({"name": "x", "group_kind": "gold", "due_at": now_ms(), "content": {"text": "t"}}))).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{bad}");
    let (st, _) = w.api(M::POST, "/api/v1/sop-posts", Some(json!({"name": "周三会员日", "group_kind": "vip", "due_at": now_ms() - 1000,
        "content": {"text": "今晚 8 点会员日，满 300 减 50", "attachments": [{"msgtype": "image", "image": {"media_id": "M1"}}]}, "remind_after_minutes": 30,
        "repeat_every_days": 7}))).await;
    assert_eq!(st, StatusCode::CREATED);

    // A mass message to the code's customers, through the guide who holds each.
    let (st, _) = w
        .api(
            M::POST,
            "/api/v1/mass-messages",
            Some(json!({"name": "新品上市", "audience": {"tag_ids": [tag]},
        "content": {"text": "新品到店，来店试用"}})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let (st, r) = w.api(M::POST, "/api/v1/connect/tick", None).await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(r["sop_tasks_assigned"], 1, "{r}");
    assert_eq!(r["mass_tasks_assigned"], 2, "{r}");
    let groupmsg = w.wecom.calls("add_msg_template");
    let sop = groupmsg
        .iter()
        .find(|c| c.body["chat_type"] == "group")
        .expect("sop task");
    assert_eq!(sop.body["sender"], "guide_a");
    assert_eq!(sop.body["chat_id_list"], json!(["wrSOP1"]));
    let singles: Vec<_> = groupmsg
        .iter()
        .filter(|c| c.body["chat_type"] == "single")
        .collect();
    assert_eq!(singles.len(), 2);
    for c in &singles {
        let want = if c.body["sender"] == "guide_a" {
            json!(["wmM1"])
        } else {
            json!(["wmM2"])
        };
        assert_eq!(c.body["external_userid"], want, "{:?}", c.body);
    }

    // A customer who opts out of WeCom mass messages is left out, and says why.
    let (st, _) = w
        .api(
            M::POST,
            "/api/v1/wecom/unsubscribes",
            Some(json!({"external_userid": "wmM1"})),
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    w.rejects(
        M::POST,
        "/api/v1/wecom/unsubscribes",
        json!({"external_userid": ""}),
        "external_userid",
    )
    .await;
    // A second mass message the same day: WeCom's one-a-day limit holds it back for both. The
    // console's preview, asked first, says what the release then does.
    let audience = siyu::connect::mass::Audience {
        snapshot_id: None,
        tag_ids: vec![tag],
    };
    let reach = siyu::connect::mass::reach(
        w.s.db(),
        w.tenant,
        &audience,
        siyu::engage::policy::Purpose::Marketing,
        now_ms(),
    )
    .await
    .expect("reach");
    assert_eq!(
        (reach.audience, reach.no_contact, reach.held_until),
        (2, 0, None)
    );
    let (_, second) = w.api(M::POST, "/api/v1/mass-messages", Some(json!({"name": "再推一次", "audience": {"tag_ids": [tag]}, "content": {"text": "再来一条"}}))).await;
    w.api(M::POST, "/api/v1/connect/tick", None).await;
    let (_, v) = w
        .api(
            M::GET,
            &format!("/api/v1/mass-messages/{}", second["id"]),
            None,
        )
        .await;
    assert_eq!(
        v["recipients"],
        json!({"daily_limit": 1, "unsubscribed": 1}),
        "{v}"
    );
    assert_eq!(
        v["recipients"],
        json!(reach.decided),
        "the preview said the same"
    );
    assert_eq!(v["tasks"], json!([]));

    // Half an hour on, nothing sent: both SOP owner and guides are reminded once.
    let later = now_ms() + 2 * 3_600_000 + 60_000;
    let r = w.s.app.connect.tick(later).await.expect("tick");
    assert_eq!((r.sop_reminders, r.mass_reminders), (1, 2), "{r:?}");
    let r = w.s.app.connect.tick(later + 60_000).await.expect("tick");
    assert_eq!(
        (r.sop_reminders, r.mass_reminders),
        (0, 0),
        "reminded once: {r:?}"
    );
    assert_eq!(w.wecom.reminders().len(), 3);

    // The guides send in WeCom; the next round reads completion back.
    for g in ["guide_a", "guide_b", "guide_c"] {
        for m in w.wecom.tasks_of(g) {
            w.wecom.guide_sends(&m);
        }
    }
    let r = w.s.app.connect.tick(later + 120_000).await.expect("tick");
    assert_eq!(
        (r.sop_tasks_completed, r.mass_tasks_completed),
        (1, 2),
        "{r:?}"
    );
    let (_, list) = w.api(M::GET, "/api/v1/mass-messages", None).await;
    let first = list
        .as_array()
        .expect("list")
        .iter()
        .find(|m| m["name"] == "新品上市")
        .expect("first");
    assert_eq!(first["recipients"], json!({"sent": 2}), "{first}");
    let by_guide: Vec<(String, i64, String)> = first["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .map(|t| {
            (
                t["sender"].as_str().unwrap_or("").to_owned(),
                t["sent"].as_i64().unwrap_or(-1),
                t["status"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        by_guide,
        vec![
            ("guide_a".into(), 1, "done".into()),
            ("guide_c".into(), 1, "done".into())
        ]
    );
    let (_, cal) = w.api(M::GET, "/api/v1/sop-posts", None).await;
    assert_eq!(cal[0]["tasks"][0]["status"], "sent", "{cal}");
    // The weekly post's next date is on the calendar, a week after the first.
    assert_eq!(cal.as_array().expect("calendar").len(), 2, "{cal}");
    assert_eq!(
        cal[1]["due_at"].as_i64().expect("due") - cal[0]["due_at"].as_i64().expect("due"),
        7 * 86_400_000
    );
    assert_eq!(cal[1]["released_at"], Value::Null);
}
on_each_backend!(sop_posts_and_mass_messages_reach_guides_and_are_followed_up);

async fn a_callback_whose_work_fails_is_kept_and_retried(backend: Backend) {
    let w = world(backend).await;
    let tag = w.tag("重试标签").await;
    let code = w
        .code("重试活码", tag, json!([{"userid": "guide_a"}]), "guide_b")
        .await;
    let state = code["state"].as_str().expect("state").to_owned();
    let mut env = w
        .wecom
        .customer_adds("guide_a", "wmRETRY", None, Some(&state));
    if let CallbackEvent::ContactAdded { welcome_code, .. } = &mut env.event {
        *welcome_code = None;
    }
    // WeCom is busy through all of mark_tag's attempts: the work fails after the callback
    // was acknowledged.
    w.wecom.busy_next(4);
    w.deliver(&env).await;
    let until = Instant::now() + Duration::from_secs(10);
    let error = loop {
        let row: Option<(Option<String>,)> = w.s.db()
            .fetch_optional(&sql("SELECT error FROM wecom_inbox WHERE tenant_id = $1 AND done_at IS NULL AND error IS NOT NULL").bind(w.tenant))
            .await
            .expect("inbox");
        if let Some((Some(e),)) = row {
            break e;
        }
        assert!(Instant::now() < until, "the failure was not recorded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        error.contains("mark_tag") && error.contains("-1"),
        "{error}"
    );
    assert!(w.wecom.contact_tags("guide_a", "wmRETRY").is_empty());
    // A minute on, the sweep does the work again, and it is done once.
    let r = w.s.app.connect.tick(now_ms() + 61_000).await.expect("tick");
    assert_eq!(r.callbacks_retried, 1, "{r:?}");
    w.settle().await;
    assert_eq!(w.wecom.contact_tags("guide_a", "wmRETRY").len(), 1);
    let (adds,): (i64,) =
        w.s.db()
            .fetch_one(
                &sql("SELECT CAST(COALESCE(SUM(adds), 0) AS BIGINT) FROM live_code_daily WHERE tenant_id = $1")
                    .bind(w.tenant),
            )
            .await
            .expect("daily");
    assert_eq!(
        adds, 1,
        "{backend:?}: the guide's count is not doubled by the retry"
    );
}
on_each_backend!(a_callback_whose_work_fails_is_kept_and_retried);

async fn a_card_batch_code_shows_on_the_landing_page_and_records_the_claimants_contact(
    backend: Backend,
) {
    let w = world(backend).await;
    let (st, t) = w.api(M::POST, "/api/v1/coupon-templates",
        Some(json!({"name": "包裹卡20元券", "kind": "amount_off", "value": 2_000, "valid_days": 30, "total": 100, "claim_via": "card"}))).await;
    assert_eq!(st, StatusCode::CREATED, "{t}");
    let (st, b) = w.api(M::POST, "/api/v1/card-batches",
        Some(json!({"name": "天猫12月包裹卡", "channel": "tmall", "coupon_template_id": t["id"], "size": 5}))).await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    let batch = b["batch"]["id"].as_i64().expect("batch id");
    let tag = w.tag("包裹卡客户").await;
    // A code for a batch that does not exist is refused, naming the field.
    w.rejects(
        M::POST,
        "/api/v1/live-codes",
        json!({"name": "x", "source": "card_batch", "source_id": 999_999,
        "welcome": {"text": "hi"}, "guides": [{"userid": "g"}], "backup_userid": "b"}),
        "source_id",
    )
    .await;
    let (st, code) = w.api(M::POST, "/api/v1/live-codes", Some(json!({"name": "包裹卡活码", "source": "card_batch", "source_id": batch,
        "tag_ids": [tag], "welcome": {"text": "欢迎，券已到账"}, "guides": [{"userid": "eba_chen"}], "backup_userid": "ba_zhao"}))).await;
    assert_eq!(st, StatusCode::CREATED, "{code}");
    let (_, report) = w
        .api(M::GET, &format!("/api/v1/card-batches/{batch}"), None)
        .await;
    assert_eq!(
        report["batch"]["contact_qr_url"], code["qr_code"],
        "{report}"
    );

    // A buyer known by their WeChat unionid claims a card in a WeChat session…
    let (st, v) = w
        .api(
            M::POST,
            "/api/v1/events",
            Some(json!({"events": [{"id": "mp-login-1", "type": "mp_login",
        "identities": [{"kind": "unionid", "value": "ounionCARD"}], "timestamp": now_ms()}]})),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    let buyer = w.customer_by("unionid:ounionCARD").await;
    let card: (String,) =
        w.s.db()
            .fetch_one(
                &sql("SELECT code FROM cards WHERE batch_id = $1 ORDER BY id LIMIT 1").bind(batch),
            )
            .await
            .expect("card");
    let token = common::customer_token(&w.s, w.tenant, buyer);
    let (st, v) = common::send_as_customer(
        &w.c,
        M::POST,
        &w.s.url(&format!("/h5/v1/cards/{}/claim", card.0)),
        &token,
        Some(json!({})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["contact_qr_url"], code["qr_code"]);
    // …then adds the guide through the QR the page showed: one customer, the card's contact.
    let state = code["state"].as_str().expect("state");
    w.deliver(
        &w.wecom
            .customer_adds("eba_chen", "wmCARD", Some("ounionCARD"), Some(state)),
    )
    .await;
    w.settle().await;
    assert_eq!(
        w.customer_by("external_userid:wmCARD").await,
        buyer,
        "OneID joins the add to the claimant"
    );
    let (_, report) = w
        .api(M::GET, &format!("/api/v1/card-batches/{batch}"), None)
        .await;
    assert_eq!(report["total"]["claimed"], 1, "{report}");
    assert_eq!(report["total"]["contacts"], 1, "{backend:?}: {report}");

    // Stopped, the code's QR leaves the batch's landing page; its figures stay.
    let (st, stopped) = w
        .api(
            M::POST,
            &format!("/api/v1/live-codes/{}/stop", code["id"]),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{stopped}");
    assert!(stopped["disabled_at"].is_i64(), "{stopped}");
    let (_, report) = w
        .api(M::GET, &format!("/api/v1/card-batches/{batch}"), None)
        .await;
    assert!(report["batch"]["contact_qr_url"].is_null(), "{report}");
    assert_eq!(report["total"]["contacts"], 1, "{report}");
}
on_each_backend!(a_card_batch_code_shows_on_the_landing_page_and_records_the_claimants_contact);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_cannot_point_wecom_calls_inside_the_network_unless_the_server_allows_it() {
    let tdb = common::TestDb::new(Backend::Sqlite).await;
    let cipher = common::cipher();
    let connect = siyu::connect::service::Connect::start(
        tdb.db.clone(),
        cipher.clone(),
        siyu::know::ingest::EventWriter::start(tdb.db.clone(), cipher, None),
        None,
    );
    let tenant = siyu::platform::access::create_tenant(&tdb.db, "brand")
        .await
        .expect("tenant")
        .id;
    let corp = SandboxCorp::default();
    let settings = |base: Option<&str>| siyu::connect::service::CorpSettings {
        corp_id: corp.corp_id.clone(),
        secret: corp.secret.clone(),
        token: corp.token.clone(),
        encoding_aes_key: corp.encoding_aes_key.clone(),
        base_url: base.map(str::to_owned),
    };
    let refused = connect
        .configure(tenant, settings(Some("http://169.254.169.254")), now_ms())
        .await;
    assert!(
        matches!(
            &refused,
            Err(siyu::connect::service::ConnectError::Invalid {
                field: "base_url",
                ..
            })
        ),
        "{:?}",
        refused.err()
    );
    // WeCom itself is always allowed; a bad key is refused naming its field.
    assert!(
        connect
            .configure(tenant, settings(None), now_ms())
            .await
            .is_ok()
    );
    let mut bad = settings(None);
    bad.encoding_aes_key = "too-short".into();
    assert!(matches!(
        connect.configure(tenant, bad, now_ms()).await,
        Err(siyu::connect::service::ConnectError::Invalid {
            field: "encoding_aes_key",
            ..
        })
    ));
    connect.allow_any_base_url();
    assert!(
        connect
            .configure(tenant, settings(Some("http://127.0.0.1:9")), now_ms())
            .await
            .is_ok()
    );
}

async fn a_guide_with_more_customers_than_one_task_takes_gets_several(backend: Backend) {
    let w = world(backend).await;
    let tag = w.tag("大号客户").await;
    let code = w
        .code("电商大号", tag, json!([{"userid": "eba_big"}]), "ba_zhao")
        .await;
    let state = code["state"].as_str().expect("state").to_owned();
    for i in 0..3 {
        w.deliver(
            &w.wecom
                .customer_adds("eba_big", &format!("wmBIG{i}"), None, Some(&state)),
        )
        .await;
    }
    w.settle().await;
    let (st, _) = w
        .api(
            M::POST,
            "/api/v1/mass-messages",
            Some(json!({"name": "大促预告", "audience": {"tag_ids": [tag]},
        "content": {"text": "双12 预告"}, "purpose": "service"})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    // WeCom takes 10,000 customers a task; here two, so three customers make two parts.
    let corp = w.s.app.connect.corp(w.tenant).await.expect("corp");
    let handed =
        siyu::connect::mass::release_due_in_parts(w.s.db(), &corp.api, w.tenant, now_ms(), 2)
            .await
            .expect("release");
    assert_eq!(handed, 2);
    let sizes: Vec<usize> = w
        .wecom
        .calls("add_msg_template")
        .iter()
        .map(|c| c.body["external_userid"].as_array().map_or(0, Vec::len))
        .collect();
    assert_eq!(sizes, vec![2, 1], "{backend:?}");
    let (_, list) = w.api(M::GET, "/api/v1/mass-messages", None).await;
    let parts: Vec<(i64, i64)> = list[0]["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .map(|t| {
            (
                t["part"].as_i64().unwrap_or(-1),
                t["recipients"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    assert_eq!(parts, vec![(0, 2), (1, 1)]);
}
on_each_backend!(a_guide_with_more_customers_than_one_task_takes_gets_several);

async fn a_task_whose_answer_was_lost_is_found_in_wecom_not_sent_twice(backend: Backend) {
    let w = world(backend).await;
    let tag = w.tag("丢包客户").await;
    let code = w
        .code("丢包活码", tag, json!([{"userid": "guide_l"}]), "ba_zhao")
        .await;
    let state = code["state"].as_str().expect("state").to_owned();
    w.deliver(
        &w.wecom
            .customer_adds("guide_l", "wmLOST", None, Some(&state)),
    )
    .await;
    w.settle().await;
    let (st, m) = w
        .api(
            M::POST,
            "/api/v1/mass-messages",
            Some(json!({"name": "回访", "audience": {"tag_ids": [tag]},
        "content": {"text": "您好"}, "purpose": "service"})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    // WeCom makes the task, but its answer never arrives.
    w.wecom.lose_answers(1);
    let r = w.s.app.connect.tick(now_ms()).await.expect("tick");
    assert_eq!(r.mass_tasks_assigned, 0, "{r:?}");
    let (_, v) = w
        .api(M::GET, &format!("/api/v1/mass-messages/{}", m["id"]), None)
        .await;
    assert_eq!(v["tasks"][0]["status"], "sending", "{v}");
    assert_eq!(w.wecom.tasks_of("guide_l").len(), 1);
    // A minute on, the task is found in WeCom's list and adopted, not made again.
    let r = w.s.app.connect.tick(now_ms() + 61_000).await.expect("tick");
    assert_eq!(
        (r.tasks_adopted, r.tasks_handed_again),
        (1, 0),
        "{backend:?}: {r:?}"
    );
    let (_, v) = w
        .api(M::GET, &format!("/api/v1/mass-messages/{}", m["id"]), None)
        .await;
    assert_eq!(v["tasks"][0]["status"], "assigned", "{v}");
    assert_eq!(
        v["tasks"][0]["msgid"],
        json!(w.wecom.tasks_of("guide_l")[0])
    );
    assert_eq!(w.wecom.tasks_of("guide_l").len(), 1, "never sent twice");
}
on_each_backend!(a_task_whose_answer_was_lost_is_found_in_wecom_not_sent_twice);

on_each_backend!(a_lapsed_buyer_who_adds_a_guide_is_in_the_wecom_audiences_at_once);
/// The WeCom entry point: a marketplace buyer of 200 days ago scans a store's live code. The
/// add finds the buyer by the unionid WeCom gives, and the audiences count them as a WeCom
/// contact carrying the code's tag as soon as the callback is handled; having bought nothing,
/// they stay among the lapsed.
async fn a_lapsed_buyer_who_adds_a_guide_is_in_the_wecom_audiences_at_once(
    backend: common::Backend,
) {
    let w = world(backend).await;
    let at = now_ms() - 200 * 86_400_000;
    let (st, v) = w
        .api(
            M::POST,
            "/api/v1/orders",
            Some(json!({"orders": [{"channel": "miniprogram", "order_no": "MP-1", "status": "completed",
                "ordered_at": at, "amount": 19_900,
                "identities": [{"kind": "phone", "value": "13800001111"}, {"kind": "unionid", "value": "ounion-lapsed"}]}]})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let buyer = w.customer_by("unionid:ounion-lapsed").await;
    let tag = w.tag("门店新客").await;
    let code = w
        .code("静安店活码", tag, json!([{"userid": "guide_a"}]), "guide_b")
        .await;
    let state = code["state"].as_str().expect("state").to_owned();
    let count = |rule: Value| {
        let w = &w;
        async move {
            let (st, v) = w
                .api(
                    M::POST,
                    "/api/v1/audience/count",
                    Some(json!({ "rule": rule })),
                )
                .await;
            assert_eq!(st, StatusCode::OK, "{v}");
            v["count"].as_i64().expect("count")
        }
    };
    let contacts = json!({"identity": ["external_userid"]});
    let tagged = json!({"tags": {"any": [tag]}});
    let lapsed = json!({"orders": {"last_order_days": {"min": 90}}});
    assert_eq!(count(contacts.clone()).await, 0, "{backend:?}");
    assert_eq!(count(tagged.clone()).await, 0, "{backend:?}");
    assert_eq!(count(lapsed.clone()).await, 1, "{backend:?}");

    let env = w
        .wecom
        .customer_adds("guide_a", "wmLAPSED", Some("ounion-lapsed"), Some(&state));
    w.deliver(&env).await;
    w.settle().await;
    assert_eq!(
        w.customer_by("external_userid:wmLAPSED").await,
        buyer,
        "{backend:?}: the add is the buyer, found by unionid"
    );
    assert_eq!(
        count(contacts).await,
        1,
        "{backend:?}: counted as a WeCom contact"
    );
    assert_eq!(
        count(tagged).await,
        1,
        "{backend:?}: carries the code's tag"
    );
    assert_eq!(
        count(lapsed).await,
        1,
        "{backend:?}: an add is not a purchase"
    );
}
