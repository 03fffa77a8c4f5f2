//! Upgrading a database whose phone hashes were keyed by one key for every tenant (before
//! migration 21): afterwards each tenant's hashes are its own, lookups still find everyone, and
//! no opt-out is lost, not even one whose number the tenant keeps nowhere.

use crate::common;
use siyu::know::CustomerId;
use siyu::platform::TenantId;
use std::sync::Arc;

use common::{Backend, TestDb, cipher};
use siyu::channels::sms::log::LogProvider;
use siyu::engage::outbox::{Address, NewMessage, Outbox, enqueue};
use siyu::engage::policy::Purpose;
use siyu::know::identity::{Identity, IdentityKind};
use siyu::platform::db::{Db, sql};
use siyu::platform::lookup_rekey::LEGACY_PREFIX;
use siyu::platform::migrate::migrate;

const A: &str = "13800000001"; // a customer of both brands
const B: &str = "13800000002"; // brand 1 texted it; no identity
const U: &str = "13800000003"; // unsubscribed at brand 1, kept nowhere
const C: &str = "13800000004"; // a card texted a code to it; the message is gone
const F: &str = "13800000005"; // never seen before the upgrade

/// 04:00 UTC is noon in Shanghai, outside the default quiet hours.
const NOON: i64 = 1_799_121_600_000;

async fn run(db: &Db, q: &str, args: &[&str]) {
    let mut s = sql(q);
    for a in args {
        s.push_arg(a.to_string());
    }
    db.execute(&s).await.unwrap_or_else(|e| panic!("{q}: {e}"));
}

async fn strings(db: &Db, q: &str) -> Vec<String> {
    let rows: Vec<(String,)> = db.fetch_all(&sql(q)).await.expect(q);
    rows.into_iter().map(|r| r.0).collect()
}

/// The data of a database before migration 21, as the old code wrote it.
async fn before_the_upgrade(db: &Db) {
    let c = cipher();
    let old = |p: &str| c.legacy_lookup_hash(p);
    for t in [1, 2] {
        run(
            db,
            &format!("INSERT INTO tenants (id, name, created_at) VALUES ({t}, 'brand-{t}', 0)"),
            &[],
        )
        .await;
        run(
            db,
            &format!("INSERT INTO customers (id, tenant_id, created_at) VALUES ({t}0, {t}, 0)"),
            &[],
        )
        .await;
        run(
            db,
            &format!("INSERT INTO identities (tenant_id, ikey, kind, customer_id, value_enc, first_seen) VALUES ({t}, $1, 'phone', {t}0, $2, 0)"),
            &[&format!("phone:{}", old(A)), &c.encrypt(A)],
        )
        .await;
    }
    run(
        db,
        "INSERT INTO outbox (id, tenant_id, channel, purpose, address_hash, address_enc, content, content_hash, parts, \
         dedupe_key, status, not_before, created_at, sent_at) VALUES (1000, 1, 'sms', 'marketing', $1, $2, 'hi', 'c', 1, 'k1', 'sent', 0, 0, 5)",
        &[&old(B), &c.encrypt(B)],
    )
    .await;
    for p in [A, B, U] {
        run(
            db,
            "INSERT INTO unsubscribes (tenant_id, channel, address_hash, source, created_at) VALUES (1, 'sms', $1, 'api', 0)",
            &[&old(p)],
        )
        .await;
    }
    run(
        db,
        "INSERT INTO unsubscribes (tenant_id, channel, address_hash, source, created_at) VALUES (1, 'wecom', 'wmEXTERNAL', 'api', 0)",
        &[],
    )
    .await;
    run(
        db,
        "INSERT INTO sms_replies (id, tenant_id, provider, address_hash, content, unsubscribed, received_at) VALUES (1, 1, 'log', $1, 'TD', 1, 0)",
        &[&old(B)],
    )
    .await;
    run(
        db,
        "INSERT INTO otp_codes (tenant_id, address_hash, purpose, code_hash, tries, expires_at, created_at, locked_until) \
         VALUES (1, $1, 'card', 'x', 5, 9, 0, 9999999999999), (1, $2, 'card', 'y', 0, 9999999999999, 0, 0)",
        &[&old(B), &old(A)],
    )
    .await;
    for p in [B, C] {
        run(
            db,
            "INSERT INTO otp_card_numbers (tenant_id, card_id, address_hash, created_at) VALUES (1, 7, $1, 0)",
            &[&old(p)],
        )
        .await;
    }
    run(
        db,
        "INSERT INTO rate_counters (tenant_id, scope, subject, window_start, n) VALUES (0, 'otp_phone', $1, 0, 3), (1, 'otp_card', '7', 0, 2)",
        &[&old(B)],
    )
    .await;
}

async fn the_upgrade_rekeys_every_tenant_and_keeps_every_opt_out(backend: Backend) {
    let tdb = TestDb::migrated_to(backend, 20).await;
    let db = &tdb.db;
    let c = cipher();
    if backend == Backend::Postgres {
        // A database made with a language-aware collation (zh_CN is usual for a brand here)
        // sorts ':' and ';' another way than bytes do: the upgrade must not depend on it.
        for (table, column) in [("identities", "ikey"), ("unsubscribes", "address_hash")] {
            run(
                db,
                &format!(
                    "ALTER TABLE {table} ALTER COLUMN {column} TYPE TEXT COLLATE \"zh-x-icu\""
                ),
                &[],
            )
            .await;
        }
    }
    before_the_upgrade(db).await;
    // Migration 21 and those after it.
    let after = siyu::platform::migrate::MIGRATIONS
        .iter()
        .filter(|m| m.0 >= 21)
        .count();
    assert_eq!(
        migrate(db, &c).await.expect("upgrade"),
        after,
        "{backend:?}"
    );

    let (one, two) = (c.lookup(TenantId::new(1)), c.lookup(TenantId::new(2)));
    // One number, two brands: two unrelated hashes, neither the shared one.
    assert_eq!(
        strings(db, "SELECT ikey FROM identities ORDER BY tenant_id").await,
        vec![
            format!("phone:{}", one.hash(A)),
            format!("phone:{}", two.hash(A))
        ],
        "{backend:?}"
    );
    assert_ne!(one.hash(A), two.hash(A));
    assert_eq!(
        strings(db, "SELECT address_hash FROM outbox").await,
        vec![one.hash(B)]
    );
    let mut unsubscribed = strings(
        db,
        "SELECT address_hash FROM unsubscribes WHERE channel = 'sms'",
    )
    .await;
    unsubscribed.sort();
    let mut expected = vec![
        one.hash(A),
        one.hash(B),
        format!("{LEGACY_PREFIX}{}", c.legacy_lookup_hash(U)),
    ];
    expected.sort();
    assert_eq!(unsubscribed, expected, "{backend:?}");
    assert_eq!(
        strings(
            db,
            "SELECT address_hash FROM unsubscribes WHERE channel = 'wecom'"
        )
        .await,
        vec!["wmEXTERNAL".to_owned()],
        "a WeCom contact's id is not a hash"
    );
    assert_eq!(
        strings(db, "SELECT address_hash FROM sms_replies").await,
        vec![one.hash(B)]
    );
    assert_eq!(
        strings(db, "SELECT address_hash FROM otp_codes").await,
        vec![one.hash(B)],
        "a lockout stays; a code waiting to be typed (hashed the old way) is asked for again"
    );
    // The re-keyed unsubscribes keep their number now.
    let mut kept: Vec<String> = strings(
        db,
        "SELECT address_enc FROM unsubscribes WHERE channel = 'sms' AND address_enc IS NOT NULL",
    )
    .await
    .iter()
    .map(|e| c.decrypt(e).expect("decrypts"))
    .collect();
    kept.sort();
    assert_eq!(kept, vec![A.to_owned(), B.to_owned()]);
    assert_eq!(
        strings(db, "SELECT address_hash FROM otp_card_numbers").await,
        vec![one.hash(B)],
        "a number kept nowhere is dropped from the card's list"
    );
    assert_eq!(
        strings(db, "SELECT scope FROM rate_counters").await,
        vec!["otp_card".to_owned()]
    );

    // Lookups find the customer with each brand's own key.
    let phone = Identity::new(IdentityKind::Phone, A, None).expect("phone");
    for t in [TenantId::new(1), TenantId::new(2)] {
        let found = siyu::know::customers::find_by_identity(db, &c, t, &phone)
            .await
            .expect("lookup");
        assert_eq!(found, Some(CustomerId::new(t.get() * 10)), "{backend:?}");
    }

    // Sending: the opt-outs hold, re-keyed (A) or kept under the old key (U); F is sent.
    let ob = Outbox::new(
        db.clone(),
        c.clone(),
        Arc::new(LogProvider::new(db.clone())),
    );
    let msg = |i: i64, p: &str| NewMessage {
        tenant_id: TenantId::new(1),
        purpose: Purpose::Marketing,
        customer_id: None,
        address: Address::of_phone(&c, &one, p),
        content: format!("【茶】第{i}条 拒收请回复R"),
        template_code: None,
        template_params: vec![],
        dedupe_key: format!("after-{i}"),
        campaign_id: None,
        variant: None,
        not_before: NOON,
    };
    enqueue(db, &[msg(1, A), msg(2, U), msg(3, F)], NOON)
        .await
        .expect("enqueue");
    ob.drain(NOON).await.expect("drain");
    let states: Vec<(String, String, Option<String>)> = db
        .fetch_all(&sql(
            "SELECT dedupe_key, status, reason FROM outbox WHERE dedupe_key LIKE 'after-%' ORDER BY dedupe_key",
        ))
        .await
        .expect("states");
    assert_eq!(
        states,
        vec![
            (
                "after-1".into(),
                "suppressed".into(),
                Some("unsubscribed".into())
            ),
            (
                "after-2".into(),
                "suppressed".into(),
                Some("unsubscribed".into())
            ),
            ("after-3".into(), "sent".into(), None),
        ],
        "{backend:?}"
    );

    // Done once: a second start changes nothing.
    assert_eq!(migrate(db, &c).await.expect("again"), 0);
    assert_eq!(
        strings(db, "SELECT ikey FROM identities WHERE tenant_id = 1").await,
        vec![format!("phone:{}", one.hash(A))]
    );
}
on_each_backend!(the_upgrade_rekeys_every_tenant_and_keeps_every_opt_out);
