//! The demo's activities chapter: one flash sale, group buy, bargain and gift for points run on
//! the demo brand as its customers would, paid with the local provider (which takes no money),
//! and what each did.

use siyu::know::CustomerId;
use siyu::platform::Fen;
use siyu::platform::TenantId;
/// Runs one of each activity on the demo brand as customers would, and reports what happened.
pub async fn activities_report(
    db: &siyu::platform::db::Db,
    cipher: &siyu::platform::crypto::FieldCipher,
    tenant: TenantId,
) -> anyhow::Result<()> {
    use siyu::convert::flash::{FlashError, FlashSales, SaleInput};
    use siyu::convert::payments::Payments;
    use siyu::convert::{bargain, gifts, group_buy};
    use siyu::know::identity::{Identity, IdentityKind};
    use siyu::platform::clock::now_ms;
    use siyu::platform::db::sql;

    let now = now_ms();
    let payments = Payments::local(db.clone());
    let customers: Vec<(CustomerId,)> = db
        .fetch_all(&sql("SELECT id FROM customers WHERE tenant_id = $1 AND merged_into IS NULL ORDER BY id LIMIT 1000").bind(tenant))
        .await?;
    let customers: Vec<CustomerId> = customers.into_iter().map(|r| r.0).collect();
    anyhow::ensure!(
        customers.len() >= 60,
        "the demo needs at least 60 customers"
    );
    println!("\n活动 / activities");

    // Flash sale: everyone tries at once for a fifth as many units; most pay, the rest expire.
    let flash = FlashSales::new(db.clone());
    let stock = (customers.len() / 5) as i64;
    let sale = flash
        .create(
            tenant,
            &SaleInput {
                name: "双12 面霜秒杀".into(),
                sku: "CREAM-50".into(),
                title: "修护面霜 50ml".into(),
                price: Fen::new(9_900),
                original_price: Some(Fen::new(29_900)),
                stock,
                per_customer: 1,
                starts_at: now - 1_000,
                ends_at: now + 3_600_000,
                pay_minutes: 15,
            },
            now,
        )
        .await?;
    let mut tasks = Vec::new();
    for chunk in customers.chunks(customers.len().div_ceil(32)) {
        let (flash, chunk) = (flash.clone(), chunk.to_vec());
        tasks.push(tokio::spawn(async move {
            let mut won = Vec::new();
            for c in chunk {
                match flash.attempt(tenant, sale.id, c, 1, now_ms()).await {
                    Ok(o) => won.push(o),
                    Err(FlashError::SoldOut | FlashError::LimitReached(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(won)
        }));
    }
    let mut won = Vec::new();
    for t in tasks {
        won.extend(t.await??);
    }
    let mut paid = 0;
    for (n, o) in won.iter().enumerate() {
        if n % 10 < 7 {
            flash.pay(&payments, tenant, o.id, None, now_ms()).await?;
            paid += 1;
        }
    }
    // The payment window passes for the others.
    let expired = flash.expire_due(now_ms() + 15 * 60_000 + 1).await?;
    let after = flash.get(tenant, sale.id).await?;
    let left = flash.left(tenant, sale.id).await?;
    println!(
        "  flash sale 秒杀 {}: {} customers tried for {stock} units; {} reserved, {paid} paid, {expired} expired back to stock; sold {} + left {left} = stock {}",
        sale.name,
        customers.len(),
        won.len(),
        after.sold,
        after.stock
    );
    anyhow::ensure!(
        after.sold + left == after.stock,
        "flash sale stock does not add up"
    );

    // Group buy: 3-person teams; two in three fill, the rest run out of time and are refunded.
    let g = group_buy::create(
        db,
        tenant,
        &group_buy::GroupBuyInput {
            name: "3人团 茶礼盒".into(),
            sku: "TEA-BOX".into(),
            title: "明前龙井礼盒".into(),
            price: Fen::new(12_900),
            original_price: Some(Fen::new(19_900)),
            team_size: 3,
            team_minutes: 60,
            starts_at: now - 1_000,
            ends_at: now + 86_400_000,
            // 15 teams of 3 at most: every seat the demo takes, and no more.
            stock: Some(45),
            per_customer: 1,
        },
        now,
    )
    .await?;
    let (mut full, mut open) = (0, 0);
    for (n, trio) in customers.chunks(3).take(15).enumerate() {
        let t = group_buy::open_team(db, &payments, tenant, g.id, trio[0], now_ms()).await?;
        let friends = if n % 3 == 2 { &trio[1..2] } else { &trio[1..] };
        let mut last = t;
        for &f in friends {
            last = group_buy::join_team(db, &payments, tenant, last.id, f, now_ms()).await?;
        }
        if last.status == siyu::convert::group_buy::TeamStatus::Full {
            full += 1;
        } else {
            open += 1;
        }
    }
    let swept =
        group_buy::sweep(db, &payments, Some(tenant), now_ms() + 61 * 60_000, 60_000).await?;
    println!(
        "  group buy 拼团 {}: {} teams opened, {full} full (orders made), {open} short of members: {} cancelled, {} payments refunded",
        g.name,
        full + open,
        swept.teams_cancelled,
        swept.refunds
    );

    // Bargain: 10 customers share; friends (new phones) help and become members.
    let item = bargain::create_item(
        db,
        tenant,
        &bargain::ItemInput {
            name: "砍到9.9 面膜".into(),
            sku: "MASK-5".into(),
            title: "补水面膜 5片".into(),
            price: Fen::new(19_900),
            floor_price: Fen::new(990),
            assists: 5,
            bargain_hours: 24,
            stock: 100,
            starts_at: now - 1_000,
            ends_at: now + 86_400_000,
        },
        now,
    )
    .await?;
    let run = item.id % 1_000;
    let (mut helpers, mut reached, mut bought) = (0, 0, 0);
    for (n, &c) in customers.iter().skip(100).take(10).enumerate() {
        let b = bargain::start(db, tenant, item.id, c, now_ms()).await?;
        let friends = if n % 2 == 0 { 5 } else { 3 };
        for f in 0..friends {
            let phone = format!("137{run:03}{n:02}{f:03}");
            let helper = Identity::new(IdentityKind::Phone, &phone, None)?;
            // A generated phone may belong to the starter or an earlier helper: refused, skipped.
            match bargain::assist(db, cipher, tenant, b.id, helper, None, now_ms()).await {
                Ok(out) => helpers += usize::from(out.helper_joined),
                Err(bargain::BargainError::Refused(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let b = bargain::get(db, tenant, b.id).await?;
        if b.status == siyu::convert::bargain::BargainStatus::Reached {
            reached += 1;
            bargain::buy(db, &payments, tenant, b.id, None, now_ms()).await?;
            bought += 1;
        }
    }
    println!(
        "  bargain 砍价 {}: 10 started, {helpers} helpers joined as members, {reached} reached ¥9.90, {bought} bought",
        item.name
    );

    // Gifts: members with enough points race for a thermos.
    let gift = gifts::create(
        db,
        tenant,
        &gifts::GiftInput {
            name: "保温杯".into(),
            kind: gifts::GiftKind::Goods,
            template_id: None,
            points: 100,
            stock: 20,
            per_customer: 1,
        },
        now,
    )
    .await?;
    let members: Vec<(CustomerId,)> = db
        .fetch_all(&sql("SELECT customer_id FROM members WHERE tenant_id = $1 AND source IS NULL ORDER BY customer_id LIMIT 60").bind(tenant))
        .await?;
    let (mut got, mut refused) = (0, 0);
    for (m,) in &members {
        match gifts::redeem(db, tenant, gift.id, *m, now_ms()).await {
            Ok(_) => got += 1,
            Err(gifts::GiftError::Refused(_) | gifts::GiftError::Points(_)) => refused += 1,
            Err(e) => return Err(e.into()),
        }
    }
    println!(
        "  gifts 积分兑换 {}: {} members tried, {got} redeemed (stock {}), {refused} refused (out of stock or short of points)",
        gift.name,
        members.len(),
        gift.stock
    );
    Ok(())
}
