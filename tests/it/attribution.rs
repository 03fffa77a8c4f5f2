//! Reports credit what a person did after a touch reached them, even when OneID later finds the
//! touched customer record to be a newer record of someone already known and merges it away:
//! the person's orders then sit under the older record, and still count for the touch, once.

use crate::common;
use siyu::acquire::{cards, report};
use siyu::platform::Fen;
use siyu::platform::TenantId;
use siyu::platform::clock::now_ms;
use siyu::platform::db::sql;

use common::{Backend, TestDb, order_owner as owner, store_order as order};

const DAY: i64 = 86_400_000;

async fn store(db: &siyu::platform::db::Db, tenant: TenantId, o: siyu::know::orders::OrderRecord) {
    common::store(db, tenant, vec![o]).await;
}

on_each_backend!(a_touched_record_merged_away_still_gets_its_persons_orders);
async fn a_touched_record_merged_away_still_gets_its_persons_orders(backend: Backend) {
    let tdb = TestDb::new(backend).await;
    let db = &tdb.db;
    let tenant = siyu::platform::access::create_tenant(db, "brand")
        .await
        .expect("tenant")
        .id;
    let now = now_ms();
    let touched_at = now - 5 * DAY;
    // The person as two records: the older from a phone they used years ago, the newer (the
    // one the campaign and the card reached) from their current phone.
    store(
        db,
        tenant,
        order("OLD-1", &["13800000001"], 10_000, now - 400 * DAY),
    )
    .await;
    store(
        db,
        tenant,
        order("NEW-1", &["13900000002"], 20_000, now - 30 * DAY),
    )
    .await;
    let (older, newer) = (
        owner(db, tenant, "OLD-1").await,
        owner(db, tenant, "NEW-1").await,
    );
    assert!(older < newer);

    // A campaign reached the newer record; a card was claimed by it (its coupon redeemed).
    db.execute(
        &sql("INSERT INTO campaigns (id, tenant_id, name, snapshot_id, variants, holdout_percent, seed, \
              cost_per_part, window_days, status, scheduled_at, launched_at, created_at) \
              VALUES (1, $1, '回购', 1, '[{\"name\":\"a\",\"content\":\"hi\"}]', 0, 's', 5, 7, 'launched', $2, $2, $2)")
            .bind(tenant)
            .bind(touched_at),
    )
    .await
    .expect("campaign");
    db.execute(
        &sql("INSERT INTO campaign_recipients (tenant_id, campaign_id, customer_id, variant, outcome) \
              VALUES ($1, 1, $2, 'a', 'queued')")
            .bind(tenant)
            .bind(newer),
    )
    .await
    .expect("recipient");
    db.execute(
        &sql("INSERT INTO card_batches (id, tenant_id, name, channel, coupon_template_id, variants, size, \
              cost_per_card, window_days, created_at) VALUES (1, $1, '包裹卡', 'tmall', 1, '[{\"name\":\"a\"}]', 1, 30, 7, $2)")
            .bind(tenant)
            .bind(touched_at),
    )
    .await
    .expect("batch");
    db.execute(
        &sql("INSERT INTO cards (id, tenant_id, batch_id, code, variant, scans, first_scan, customer_id, claimed_at, coupon_id) \
              VALUES (1, $1, 1, 'CARD0001', 'a', 1, $2, $3, $2, 77)")
            .bind(tenant)
            .bind(touched_at)
            .bind(newer),
    )
    .await
    .expect("card");
    db.execute(
        &sql("INSERT INTO coupons (id, tenant_id, template_id, customer_id, code, status, source, granted_at, \
              valid_from, valid_until, redeemed_at, order_ref, order_amount, discount) \
              VALUES (77, $1, 1, $2, 'CPN77', 'redeemed', 'card', $3, $3, $4, $3, 'AFTER-1', 29900, 2000)")
            .bind(tenant)
            .bind(newer)
            .bind(touched_at)
            .bind(now + 30 * DAY),
    )
    .await
    .expect("coupon");

    // After the touch the person buys under the older record; then one order names both phones
    // and OneID merges the newer record into the older one, moving everything with it.
    store(
        db,
        tenant,
        order("AFTER-1", &["13800000001"], 29_900, touched_at + DAY),
    )
    .await;
    store(
        db,
        tenant,
        order(
            "BOTH-1",
            &["13800000001", "13900000002"],
            5_000,
            now - 20 * DAY,
        ),
    )
    .await;
    let (merged_into,): (Option<i64>,) = db
        .fetch_one(
            &sql("SELECT merged_into FROM customers WHERE tenant_id = $1 AND id = $2")
                .bind(tenant)
                .bind(newer),
        )
        .await
        .expect("merged");
    assert_eq!(
        merged_into,
        Some(older),
        "{backend:?}: the newer record merged away"
    );

    // One buyer, one order after the touch (BOTH-1 came before it, NEW-1 and OLD-1 long before).
    let r = report::campaign_report(db, tenant, 1)
        .await
        .expect("report");
    let a = r
        .variants
        .iter()
        .find(|v| v.variant == "a")
        .expect("variant a");
    assert_eq!(
        (a.eligible, a.buyers, a.orders, a.gmv),
        (1, 1, 1, Fen::new(29_900)),
        "{backend:?}: {a:?}"
    );

    let b = cards::batch_report(db, tenant, 1)
        .await
        .expect("card report");
    let v = b
        .variants
        .iter()
        .find(|v| v.variant == "a")
        .expect("variant a");
    assert_eq!(
        (
            v.claimed,
            v.buyers,
            v.orders,
            v.gmv,
            v.coupons_used,
            v.coupon_cost
        ),
        (1, 1, 1, Fen::new(29_900), 1, Fen::new(2_000)),
        "{backend:?}: {v:?}"
    );
}
