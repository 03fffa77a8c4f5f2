//! The demo's last chapter: orders keep arriving by themselves. The brand's Youzan mall (a local
//! sandbox of 有赞云's open API, on this machine) is connected as a shop, and its orders since
//! the exports were taken are synced: most from customers the brand already knows (OneID joins
//! them by phone), some from buyers no identity names yet (kept, counted, linked later).

use siyu::know::shops::{self, NewShop};
use siyu::platform::TenantId;
use siyu::platform::clock::now_ms;
use siyu::platform::crypto::FieldCipher;
use siyu::platform::db::{Db, sql};
use siyu::workflows::sync::{SyncLimits, sync_shop};
use siyu_marketplace_sandbox::{Platform, Sandbox, Shop, generate};

/// Syncs the demo's Youzan shop and prints what came in. The sandbox is handed back so that it
/// keeps answering while the console runs (the server syncs the shop every five minutes).
pub async fn sync_report(
    db: &Db,
    cipher: &FieldCipher,
    tenant: TenantId,
) -> anyhow::Result<Sandbox> {
    // Phones of customers the brand already has, as its mall's buyers would give them.
    let rows: Vec<(String,)> = db
        .fetch_all(
            &sql(
                "SELECT value_enc FROM identities WHERE tenant_id = $1 AND kind = 'phone' \
                 AND value_enc IS NOT NULL ORDER BY ikey LIMIT 150",
            )
            .bind(tenant),
        )
        .await?;
    let phones: Vec<String> = rows
        .into_iter()
        .filter_map(|(enc,)| cipher.decrypt(&enc).ok())
        .collect();
    let now = now_ms();
    let start = now - 6 * 3_600_000;
    let unidentified = 40;
    let mut orders = generate(
        Platform::Youzan,
        phones.len() + unidentified,
        42,
        start,
        now - 120_000,
    );
    for (i, o) in orders.iter_mut().enumerate() {
        o.order_no = format!("E{}{:05}", 20_241_205, i);
        match phones.get(i) {
            Some(p) => {
                o.phone = Some(p.clone());
                o.buyer_id = None;
            }
            // A buyer who gave no phone the brand can read, and no open id.
            None => {
                o.phone = Some("138****0000".into());
                o.buyer_id = None;
            }
        }
    }
    let shop = Shop::new(Platform::Youzan, orders);
    let sandbox = Sandbox::start(shop.clone()).await?;
    let id = shops::connect(
        db,
        cipher,
        tenant,
        &NewShop {
            platform: "youzan".into(),
            shop_ref: shop.shop_ref.clone(),
            name: "有赞微商城".into(),
            app_key: shop.app_key.clone(),
            app_secret: shop.app_secret.clone(),
            access_token: None,
            refresh_token: None,
            token_expires_at: None,
            api_base: Some(sandbox.base.clone()),
            sync_from: start - 60_000,
        },
        true,
        now,
    )
    .await?;
    // A rerun of the demo reads the shop again from the start: its orders update, never double.
    shops::rewind(db, tenant, id, start - 60_000).await?;
    let limits = SyncLimits {
        allow_api_base: true,
        ..SyncLimits::default()
    };
    let run = sync_shop(db, cipher, None, tenant, id, &limits).await?;
    let (known, unlinked): (i64, i64) = db
        .fetch_one(
            &sql(
                "SELECT CAST(COALESCE(SUM(CASE WHEN o.buyer_unlinked = 0 AND EXISTS (SELECT 1 FROM orders p \
                 WHERE p.tenant_id = o.tenant_id AND p.customer_id = o.customer_id AND p.channel <> 'youzan') \
                 THEN 1 ELSE 0 END), 0) AS BIGINT), CAST(COALESCE(SUM(o.buyer_unlinked), 0) AS BIGINT) \
                 FROM orders o WHERE o.tenant_id = $1 AND o.channel = 'youzan' AND o.source = 'sync'",
            )
            .bind(tenant),
        )
        .await?;
    println!("\n订单自动同步 / orders arriving by themselves");
    println!(
        "  有赞微商城 (a local sandbox of 有赞云's open API): {} orders read in {} calls ({} new, {} updated), token asked with the app's secret",
        run.summary.read, run.calls, run.summary.imported, run.summary.updated
    );
    println!(
        "  {known} from customers the brand already knew from other channels (joined by phone); {unlinked} from buyers no identity names yet (kept and counted in 有赞 GMV, linked when one appears)"
    );
    println!(
        "  while the console runs the shop is synced every 5 minutes: 概览 → 渠道数据接入 shows it"
    );
    Ok(sandbox)
}
