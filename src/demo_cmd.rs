//! `siyu demo`: write the demo brand's exports, import them, report, serve.

use siyu::know::CustomerId;
use siyu::platform::Fen;
use siyu::platform::TenantId;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use siyu::know::import::parse_ahead;
use siyu::know::report::{Overview, overview, yuan};
use siyu::platform::access::{self, Role};
use siyu::platform::config::Settings;
use siyu::platform::runtime::open;
use siyu_demo::write_exports;

use crate::{print_summary, progress_bar, serve};

pub const DEMO_TENANT: &str = "demo";
pub const DEMO_PASSWORD: &str = "siyu-demo";

#[derive(Args)]
pub struct DemoArgs {
    /// How many people the brand has (up to 10,000,000).
    #[arg(long, default_value_t = 50_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    customers: u64,
    /// Exit after the report instead of serving the console.
    #[arg(long)]
    no_serve: bool,
    /// Address to serve on.
    #[arg(long)]
    listen: Option<String>,
    /// Seed for the generator: the same seed writes the same exports.
    #[arg(long, default_value_t = 618)]
    seed: u64,
    /// Where to write the export files (default: DATA_DIR/demo).
    #[arg(long)]
    dir: Option<PathBuf>,
}

pub async fn run(s: &Settings, a: DemoArgs) -> anyhow::Result<()> {
    let (db, cipher) = open(s).await?;
    let tenant = match access::find_tenant(&db, DEMO_TENANT).await? {
        Some(t) => t,
        None => access::create_tenant(&db, DEMO_TENANT).await?,
    };
    for (user, name, role) in [
        ("admin", "管理员", Role::Admin),
        ("ops", "运营", Role::Operator),
    ] {
        match access::create_user(&db, tenant.id, user, name, DEMO_PASSWORD, role).await {
            Ok(_) | Err(access::AccessError::UserExists(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let key = access::create_api_key(&db, tenant.id, "demo", Role::Admin).await?;

    let dir = a.dir.clone().unwrap_or_else(|| s.data_dir.join("demo"));
    let pb = progress_bar(a.customers, "writing exports");
    pb.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg:>18} [{bar:36}] {pos}/{len} people {elapsed}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let (dir2, n, seed, pb2) = (dir.clone(), a.customers, a.seed, pb.clone());
    let files =
        tokio::task::spawn_blocking(move || write_exports(&dir2, n, seed, |i| pb2.set_position(i)))
            .await?
            .with_context(|| format!("writing demo exports to {}", dir.display()))?;
    pb.finish_and_clear();

    let started = std::time::Instant::now();
    let mut rows = 0;
    let parsed = parse_ahead(
        &cipher,
        tenant.id,
        files.iter().map(|f| (f.path.clone(), f.options.clone())),
    );
    for (f, parsing) in files.iter().zip(parsed) {
        let pb = progress_bar(0, f.platform);
        let summary = parsing.store(&db, Some(&pb)).await?;
        pb.finish_and_clear();
        rows += summary.read;
        print_summary(&summary);
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "imported {rows} rows in {secs:.1} s ({:.0} rows/s)\n",
        rows as f64 / secs.max(1e-9)
    );

    let o = overview(&db, tenant.id).await?;
    print_report(&o);
    layering_report(&db, tenant.id).await?;
    convert_report(&db, &cipher, tenant.id).await?;
    crate::demo_activities::activities_report(&db, &cipher, tenant.id).await?;
    let public_url = s
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", a.listen.as_deref().unwrap_or(&s.listen)));
    acquire_report(&db, &cipher, tenant.id, &public_url).await?;
    crate::demo_connect::connect_report(&db, &cipher, tenant.id).await?;
    // Kept answering while the console runs: the server syncs the shop from it.
    let _shop = crate::demo_sync::sync_report(&db, &cipher, tenant.id).await?;

    if a.no_serve {
        db.close().await;
        return Ok(());
    }
    let listen = a.listen.unwrap_or_else(|| s.listen.clone());
    // The demo's customers pay with the local provider, which takes no money.
    let mut s = s.clone();
    s.payment_provider = Some(siyu::convert::payments::LOCAL_DEMO.into());
    // Its Youzan shop answers from the local sandbox.
    s.marketplace_allow_api_base = true;
    serve(db, cipher, &listen, &s, |addr| {
        println!("\nConsole 控制台: http://{addr}/console");
        println!("  品牌 brand: {DEMO_TENANT}   用户 user: admin (sees full phones) or ops   密码 password: {DEMO_PASSWORD}");
        println!("API key for this run: {key}");
        println!("  curl -H 'Authorization: Bearer {key}' http://{addr}/api/v1/customers?per_page=3");
        println!("Ctrl-C to stop.");
    })
    .await
}

pub fn print_report(o: &Overview) {
    let pct = |r: f64| format!("{:.1}%", r * 100.0);
    println!("Siyu demo brand — 客户归一报告 / who the customers are");
    println!(
        "  buyer records across channels 各渠道买家记录  {:>10}",
        o.buyer_records
    );
    println!(
        "  people after OneID            归一后的客户    {:>10}",
        o.people
    );
    println!(
        "    (a buyer known only by a masked phone or one platform's buyer id cannot be linked to their other channels)"
    );
    println!(
        "  bought in 2+ channels         跨渠道购买      {:>10}",
        o.multi_channel_people
    );
    println!(
        "  merges                        合并次数        {:>10}",
        o.merges
    );
    println!(
        "  orders                        订单            {:>10}",
        o.orders
    );
    println!(
        "  GMV (net of refunds)          GMV            {:>14}",
        yuan(o.gmv)
    );
    println!(
        "  repeat-purchase rate online   线上复购率      {:>10}  ({} of {} buyers)",
        pct(o.online.rate),
        o.online.repeat_buyers,
        o.online.buyers
    );
    println!(
        "  repeat-purchase rate stores   门店复购率      {:>10}  ({} of {} buyers)",
        pct(o.store.rate),
        o.store.repeat_buyers,
        o.store.buyers
    );
    println!("  GMV by channel 分渠道:");
    for c in &o.channels {
        println!(
            "    {:<8} {:>8} orders {:>8} buyers {:>16}",
            c.channel,
            c.orders,
            c.buyers,
            yuan(c.gmv)
        );
    }
}

/// The demo brand's layering: figures and RFM recomputed, rule tags and saved segments the
/// operations team would start with, and their sizes from the audience index.
async fn layering_report(db: &siyu::platform::db::Db, tenant: TenantId) -> anyhow::Result<()> {
    use serde_json::json;
    use siyu::know::audience::{Audiences, sql as rule_sql};
    use siyu::know::rfm::{ALL_CLASSES, ALL_STAGES};
    use siyu::know::rule::Rule;
    use siyu::know::{segments, tags};
    use siyu::platform::clock::now_ms;

    let now = now_ms();
    // What follows any import (`siyu import` does the same).
    siyu::workflows::import_finished(db, tenant, now).await?;
    let rule_tags = [
        (
            "天猫复购",
            json!({"and": [{"channel": ["tmall"]}, {"orders": {"count": {"min": 2}}}]}),
        ),
        ("高价值", json!({"rfm": {"class": ["important_value"]}})),
    ];
    for (name, rule) in &rule_tags {
        match tags::create(db, tenant, "规则", name, Some(&Rule::from_json(rule)?), now).await {
            Ok(_) | Err(tags::TagError::Exists { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let saved = [
        (
            "天猫高客单沉默客户（未加企微）",
            json!({"and": [
                {"channel": ["tmall"]},
                {"orders": {"count": {"min": 2}, "aov": {"min": 30000}, "last_order_days": {"min": 90, "max": 180}}},
                {"not": {"identity": ["external_userid"]}}
            ]}),
        ),
        (
            "门店休眠老客",
            json!({"and": [{"channel": ["store"]}, {"stage": ["dormant", "churned"]}, {"orders": {"count": {"min": 2}}}]}),
        ),
        (
            "新客待复购",
            json!({"and": [{"stage": ["new"]}, {"orders": {"count": {"max": 1}}}]}),
        ),
    ];
    for (name, rule) in &saved {
        match segments::create(db, tenant, name, &Rule::from_json(rule)?, "demo", now).await {
            Ok(_) | Err(segments::SegmentError::Exists(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let audiences = Audiences::new(db.clone());
    let started = std::time::Instant::now();
    audiences.rebuild(tenant).await?;
    let built = started.elapsed().as_secs_f64();
    let (classes, stages, total) = audiences
        .read(tenant, |ix| {
            (ix.class_sizes(), ix.stage_sizes(), ix.universe.len())
        })
        .await?;
    println!("\n分层 / layering (audience index of {total} customers built in {built:.2} s)");
    println!("  RFM classes RFM 八类客户:");
    for (c, n) in ALL_CLASSES.iter().zip(classes) {
        println!("    {:<8} {:<20} {n:>8}", c.zh(), c.en());
    }
    println!("  lifecycle stages 生命周期:");
    for (st, n) in ALL_STAGES.iter().zip(stages) {
        println!("    {:<8} {:<20} {n:>8}", st.zh(), st.en());
    }
    println!("  rule tags 规则标签:");
    for t in tags::list(db, tenant).await? {
        let n = audiences
            .read(tenant, |ix| ix.tag(t.id).map_or(0, |b| b.len()))
            .await?;
        println!("    {}/{:<20} {n:>8}", t.group_name, t.name);
    }
    println!("  saved segments 人群 (index count vs the same rule as SQL):");
    for seg in segments::list(db, tenant).await? {
        let rule = seg.rule()?;
        let t = std::time::Instant::now();
        let n = audiences.count(tenant, &rule).await?;
        let index_ms = t.elapsed().as_secs_f64() * 1000.0;
        let t = std::time::Instant::now();
        let m = rule_sql::count(db, tenant, &rule, now_ms()).await?;
        let sql_ms = t.elapsed().as_secs_f64() * 1000.0;
        anyhow::ensure!(n == m, "segment {}: index {n}, SQL {m}", seg.name);
        println!(
            "    {:<24} {n:>8}   index {index_ms:.2} ms, SQL {sql_ms:.1} ms",
            seg.name
        );
    }
    Ok(())
}

/// The demo brand's members and coupons: repeat store buyers join in store (with a welcome
/// gift of points), tiers are reviewed, and the dormant store regulars get a coupon from a
/// snapshot of their segment; a third of them come back and use it.
async fn convert_report(
    db: &siyu::platform::db::Db,
    cipher: &siyu::platform::crypto::FieldCipher,
    tenant: TenantId,
) -> anyhow::Result<()> {
    use serde_json::json;
    use siyu::convert::coupons::{self, TemplateInput, UseOn};
    use siyu::convert::members::{self, JoinRequest, JoinedVia};
    use siyu::convert::points::{self, Change, PointsSettings};
    use siyu::convert::tiers;
    use siyu::know::audience::Audiences;
    use siyu::know::identity::Identity;
    use siyu::know::phone::Phone;
    use siyu::know::segments;
    use siyu::platform::clock::now_ms;
    use siyu::platform::db::sql;

    let now = now_ms();
    let settings: PointsSettings = serde_json::from_value(json!({
        "points_per_yuan": 1, "expire_days": 365,
        "tiers": {"basis": "spend", "window_days": 365, "tiers": [
            {"name": "银卡", "min": 0},
            {"name": "金卡", "min": 200_000, "points_multiplier_pct": 150, "benefits": ["生日礼", "包邮"]},
            {"name": "黑金", "min": 800_000, "points_multiplier_pct": 200, "benefits": ["专属导购", "新品试用"]}
        ]}
    }))?;
    points::save_settings(db, tenant, &settings, now).await?;

    // Store buyers with two or more store orders join in their store.
    let rows: Vec<(i64, Option<String>, Option<String>)> = db
        .fetch_all(
            &sql(
                "SELECT o.customer_id, MIN(o.store_id), \
                 (SELECT i.value_enc FROM identities i WHERE i.tenant_id = o.tenant_id AND i.customer_id = o.customer_id \
                  AND i.kind = 'phone' ORDER BY i.first_seen LIMIT 1) \
                 FROM orders o WHERE o.tenant_id = $1 AND o.channel = 'store' AND o.status IN ('paid','shipped','completed') \
                 GROUP BY o.tenant_id, o.customer_id HAVING count(*) >= 2 ORDER BY o.customer_id LIMIT 3000",
            )
            .bind(tenant),
        )
        .await?;
    let mut joined = 0;
    let mut ids = Vec::new();
    for (_, store, enc) in rows {
        let Some(phone) = enc
            .and_then(|e| cipher.decrypt(&e).ok())
            .and_then(|p| Phone::parse(&p).ok())
        else {
            continue;
        };
        let req = JoinRequest {
            identity: Identity::Phone(phone),
            via: JoinedVia::Store,
            store_id: Some(store.unwrap_or_else(|| "S-001".into())),
            birthday_month: None,
            display_name: None,
        };
        let (m, new) = members::join(db, cipher, tenant, &req, now).await?;
        if new {
            joined += 1;
            points::apply(
                db,
                tenant,
                m.customer_id,
                &Change::Adjust { points: 100 },
                "入会礼 welcome gift",
                now,
            )
            .await?;
        }
        ids.push(m.customer_id);
    }
    tiers::review(db, tenant, Some(&ids), false, now).await?;
    let by_tier: Vec<(Option<String>, i64)> = db
        .fetch_all(&sql("SELECT tier, count(*) FROM members WHERE tenant_id = $1 GROUP BY tier ORDER BY tier").bind(tenant))
        .await?;

    // A coupon for the dormant store regulars, from a snapshot of their segment.
    let template = match coupons::templates(db, tenant)
        .await?
        .into_iter()
        .find(|t| t.name == "老客回店满300减30")
    {
        Some(t) => t,
        None => {
            let input: TemplateInput = serde_json::from_value(json!({
                "name": "老客回店满300减30", "kind": "amount_off", "value": 3_000, "threshold": 30_000,
                "valid_days": 30, "per_customer": 1, "total": 5_000, "channels": ["store"]
            }))?;
            coupons::create_template(db, tenant, &input, now).await?
        }
    };
    let audiences = Audiences::new(db.clone());
    let mut issued = 0;
    if let Some(seg) = segments::list(db, tenant)
        .await?
        .into_iter()
        .find(|s| s.name == "门店休眠老客")
    {
        let members_now = audiences.members(tenant, &seg.rule()?).await?;
        let snap = segments::take_snapshot(db, tenant, &seg, &members_now, "demo", now).await?;
        let (_, frozen) = segments::snapshot_members(db, tenant, snap.id).await?;
        let list: Vec<CustomerId> = frozen.iter().map(|c| CustomerId::new(c.into())).collect();
        let g = coupons::grant(
            db,
            tenant,
            template.id,
            &list,
            &format!("snapshot:{}", snap.id),
            now,
        )
        .await?;
        issued = g.granted.len();
        // A third come back to their store and use it.
        for (n, c) in g.granted.iter().enumerate().filter(|(n, _)| n % 3 == 0) {
            let u = UseOn {
                code: c.code.clone(),
                order_ref: format!("store:BACK-{}", c.id),
                amount: Fen::new(32_000 + (n as i64 % 7) * 4_000),
                channel: Some("store".into()),
                store_id: None,
            };
            coupons::redeem(db, tenant, &u, "demo", now).await?;
        }
    }
    let r = coupons::report(db, tenant, template.id, now).await?;
    println!("\n转化 / convert");
    println!("  store regulars joined as members 门店老客入会      {joined:>8}");
    for (tier, n) in by_tier {
        println!(
            "    tier 等级 {:<10} {n:>8}",
            tier.unwrap_or_else(|| "-".into())
        );
    }
    println!(
        "  coupon 优惠券 {}: issued to the 门店休眠老客 snapshot {issued}, redeemed {}, order GMV {}, discount {}",
        template.name,
        r.redeemed,
        siyu::know::report::yuan(r.order_gmv),
        siyu::know::report::yuan(r.discount)
    );
    Ok(())
}

/// Acquire: an SMS recall campaign to the dormant store regulars, two versions of the text and
/// a 10% hold-out, sent through the outbox (the `log` provider) at the first time the contact
/// policy allows; customers' clicks and orders in the next day are simulated, and the report is
/// read as an operator would read it.
async fn acquire_report(
    db: &siyu::platform::db::Db,
    cipher: &siyu::platform::crypto::FieldCipher,
    tenant: TenantId,
    public_url: &str,
) -> anyhow::Result<()> {
    use siyu::acquire::campaigns::{self, NewCampaign, VariantSpec};
    use siyu::acquire::report;
    use siyu::channels::sms::log::LogProvider;
    use siyu::engage::outbox::Outbox;
    use siyu::engage::policy;
    use siyu::know::audience::Audiences;
    use siyu::know::segments;
    use siyu::platform::clock::now_ms;
    use siyu::platform::db::sql;

    let now = now_ms();
    let segs = segments::list(db, tenant).await?;
    let seg = segs
        .iter()
        .find(|s| s.name == "门店休眠老客")
        .or(segs.first())
        .context("the demo's segments are missing")?;
    let members = Audiences::new(db.clone())
        .members(tenant, &seg.rule()?)
        .await?;
    let snap = segments::take_snapshot(db, tenant, seg, &members, "demo", now).await?;
    // Sent at the first moment outside quiet hours, as the outbox would.
    let pol = policy::load(db, tenant).await?;
    let send_at = pol.quiet_until(now).unwrap_or(now);
    let (c, content) = campaigns::create(
        db,
        tenant,
        &NewCampaign {
            name: format!("门店老客召回 {}", segs.len()),
            snapshot_id: snap.id,
            variants: vec![
                VariantSpec {
                    name: "A".into(),
                    content: "【茶小铺】好久不见，20元回归券已放入您的账户 {link} 拒收请回复R"
                        .into(),
                    weight: 1,
                },
                VariantSpec {
                    name: "B".into(),
                    content: "【茶小铺】您常买的明前龙井到店了，老客专享价 {link} 拒收请回复R"
                        .into(),
                    weight: 1,
                },
            ],
            holdout_percent: 10,
            seed: Some(format!("demo-{}", snap.id)),
            target_url: Some("https://shop.example.cn/huigui".into()),
            template_code: None,
            exclude_phones: vec![],
            forbidden_words: vec![],
            cost_per_part: Some(Fen::new(5)),
            window_days: Some(7),
            scheduled_at: Some(send_at),
        },
        public_url.chars().count() + 11,
        now,
    )
    .await?;
    let launched = campaigns::launch(db, cipher, public_url, tenant, c.id, now).await?;
    let outbox = Outbox::new(
        db.clone(),
        cipher.clone(),
        std::sync::Arc::new(LogProvider::new(db.clone())),
    );
    let started = std::time::Instant::now();
    let sent = outbox.drain(send_at).await?;
    let secs = started.elapsed().as_secs_f64();

    // The day after: some recipients click, some of those buy; B's text works better, and the
    // hold-out buys a little on its own. Deterministic, so every run reads the same.
    let recipients: Vec<(i64, String, Option<i64>)> = db
        .fetch_all(
            &sql("SELECT r.customer_id, r.variant, l.id FROM campaign_recipients r \
                  LEFT JOIN links l ON l.tenant_id = r.tenant_id AND l.campaign_id = r.campaign_id AND l.customer_id = r.customer_id \
                  WHERE r.tenant_id = $1 AND r.campaign_id = $2 AND r.outcome IN ('queued', 'control') ORDER BY r.customer_id")
                .bind(tenant)
                .bind(c.id),
        )
        .await?;
    let mut tx = db.begin().await?;
    for (cust, variant, link) in &recipients {
        let roll = (*cust as u64).wrapping_mul(2_654_435_761) % 1000;
        let (click, buy) = match variant.as_str() {
            "A" => (120, 30),
            "B" => (160, 55),
            _ => (0, 12),
        };
        let hours = 1 + (roll % 20) as i64;
        if let Some(link) = link
            && roll < click
        {
            let id = tx.reserve_ids("click", 1).await?;
            tx.execute(
                &sql("INSERT INTO clicks (id, tenant_id, link_id, visitor, ip_hash, user_agent, at) VALUES ($1, $2, $3, $4, '', 'demo', $5)")
                    .bind(id)
                    .bind(tenant)
                    .bind(*link)
                    .bind(format!("demo{cust}"))
                    .bind(send_at + hours * 3_600_000 - 1_800_000),
            )
            .await?;
        }
        if roll < buy {
            siyu::convert::payments::insert_paid_order(
                &mut tx,
                tenant,
                CustomerId::new(*cust),
                &format!("SY-RC{}-{cust}", c.id),
                "LJ-250",
                "明前龙井 250g",
                1,
                Fen::new(25_800),
                send_at + hours * 3_600_000,
            )
            .await?;
        }
    }
    tx.commit().await?;

    let r = report::campaign_report(db, tenant, c.id).await?;
    let yuan = |f: Fen| f.get() as f64 / 100.0;
    println!(
        "\n拉新召回 / acquire — SMS recall to {:?} (snapshot of {})",
        seg.name, snap.size
    );
    println!(
        "  content checks 文案检查: A {} chars / {} part(s), B {} chars / {} part(s)",
        content[0].chars, content[0].parts, content[1].chars, content[1].parts
    );
    println!(
        "  launch 发送名单: {} queued, {} hold-out, {} without phone, {} unsubscribed",
        launched.queued, launched.control, launched.no_phone, launched.unsubscribed
    );
    println!(
        "  outbox 发件箱: {} sent, {} held by the contact policy, in {secs:.2} s (send time {})",
        sent.sent,
        sent.suppressed,
        chrono::DateTime::from_timestamp_millis(send_at + 8 * 3_600_000)
            .map(|t| t.format("%Y-%m-%d %H:%M China time").to_string())
            .unwrap_or_default()
    );
    println!(
        "  {:<8} {:>8} {:>7} {:>7} {:>8} {:>10} {:>9} {:>7}",
        "variant", "eligible", "sent", "clicks", "buyers", "GMV ¥", "cost ¥", "ROI"
    );
    for v in r.variants.iter().chain(std::iter::once(&r.total)) {
        println!(
            "  {:<8} {:>8} {:>7} {:>7} {:>8} {:>10.2} {:>9.2} {:>7}",
            v.variant,
            v.eligible,
            v.sent,
            v.clicks,
            v.buyers,
            yuan(v.gmv),
            yuan(v.cost),
            v.roi
                .map(|x| format!("{x:.1}"))
                .unwrap_or_else(|| "-".into())
        );
    }
    if let Some(ab) = &r.ab {
        println!("  A/B 结论: {}", ab.verdict_zh.replace('\n', "\n    "));
        println!("  A/B verdict: {}", ab.verdict_en.replace('\n', "\n    "));
    }
    Ok(())
}
