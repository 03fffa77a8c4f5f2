//! `siyu bench --suite overview`: the console's overview of a date range on a brand of a
//! million customers (about 2.4 million orders over two years, a third of them WeCom contacts),
//! over HTTP with a signed-in console session, on SQLite and PostgreSQL.
//!
//! The data is generated inside each database by the same integer formulas as the audience
//! suite. The month is asked 21 times, longer ranges 5, and the median is the figure; the run checks that the
//! page's order count equals a plain SQL count of the range, and that both backends agree.

use std::time::Instant;

use anyhow::Context;

use crate::bench::{BenchArgs, median, percentile, scratch};
use crate::bench_audience::{h, seq};
use siyu::app::{App, AppSettings};
use siyu::measure::trends::DateRange;
use siyu::platform::TenantId;
use siyu::platform::access::{self, Role};
use siyu::platform::clock::now_ms;
use siyu::platform::crypto::FieldCipher;
use siyu::platform::db::{Backend, Db, sql};

const DAY: i64 = 86_400_000;
const CHUNK: i64 = 250_000;
const PASSWORD: &str = "bench-password-1";
const SHANGHAI: i64 = 8 * 60;
/// Requests per figure for the month (the goal's range) and for the longer ranges.
const RUNS: usize = 21;
const RUNS_LONG: usize = 5;

/// The goal: the overview of a date range answers in 200 ms at a million customers.
const GOAL_MS: f64 = 200.0;

/// Orders (1–4 per customer over the last two years, one in twenty closed, one in fifteen
/// partly refunded), first purchases, WeCom contacts (a third, one in ten of them lost) and
/// OneID merges (one in twenty).
async fn generate(db: &Db, tenant: TenantId, n: i64, now: i64, label: &str) -> anyhow::Result<()> {
    let b = db.backend();
    let pb = crate::progress_bar(
        n as u64,
        &format!("{label}: generating customers and orders"),
    );
    let mut lo = 1;
    while lo <= n {
        let hi = (lo + CHUNK - 1).min(n);
        let (with, from) = seq(b, lo, hi);
        let mut tx = db.begin().await?;
        tx.execute(&sql(format!(
            "{with}INSERT INTO customers (id, tenant_id, created_at) SELECT x, {tenant}, 0 FROM {from}"
        )))
        .await?;
        tx.execute(&sql(format!(
            "{with}INSERT INTO orders (id, tenant_id, channel, order_no, customer_id, status, ordered_at, amount, \
             refund_amount, source, updated_at, buyer_unlinked) \
             SELECT x * 4 + j, {tenant}, CASE (x * 7 + j) % 6 WHEN 0 THEN 'tmall' WHEN 1 THEN 'jd' WHEN 2 THEN 'douyin' \
             WHEN 3 THEN 'pdd' WHEN 4 THEN 'youzan' ELSE 'store' END, CAST(x * 4 + j AS TEXT), x, \
             CASE WHEN (x + j) % 20 = 0 THEN 'closed' ELSE 'completed' END, \
             {now} - (({h1} + j * 2654435761) % {secs730}) * 1000, 3000 + ({h2} + j * 97) % 60000, \
             CASE WHEN (x + j) % 15 = 0 THEN 1000 ELSE 0 END, 'bench', {now}, 0 \
             FROM {from} CROSS JOIN (SELECT 0 AS j UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3) js \
             WHERE j <= {h3} % 4",
            secs730 = 730 * DAY / 1000,
            h1 = h(1),
            h2 = h(2),
            h3 = h(3),
        )))
        .await?;
        tx.execute(&sql(format!(
            "{with}INSERT INTO wecom_contacts (tenant_id, external_userid, userid, customer_id, added_at, deleted_at) \
             SELECT {tenant}, 'wm' || CAST(x AS TEXT), 'guide-' || CAST(x % 50 AS TEXT), x, \
             {now} - ({h4} % {secs365}) * 1000, \
             CASE WHEN x % 10 = 0 THEN {now} - ({h4} % {secs365}) * 1000 + ({h5} % {secs30}) * 1000 END \
             FROM {from} WHERE x % 3 = 0",
            secs365 = 365 * DAY / 1000,
            secs30 = 30 * DAY / 1000,
            h4 = h(4),
            h5 = h(5),
        )))
        .await?;
        tx.execute(&sql(format!(
            "{with}INSERT INTO customer_merges (tenant_id, kept_id, merged_id, via_kind, merged_at) \
             SELECT {tenant}, x, {n} + x, 'phone', 0 FROM {from} WHERE x % 20 = 0"
        )))
        .await?;
        tx.commit().await?;
        pb.set_position(hi as u64);
        lo = hi + 1;
    }
    pb.finish_and_clear();
    let pb = crate::progress_bar(0, &format!("{label}: first purchases, analysing"));
    db.execute(&sql(format!(
        "INSERT INTO customer_stats (tenant_id, customer_id, first_order_at, repurchase_at, last_order_at, \
         order_count, spend, window_orders, window_spend, r_score, f_score, m_score, rfm_class, stage, computed_at) \
         SELECT {tenant}, customer_id, MIN(ordered_at), NULL, MAX(ordered_at), COUNT(*), SUM(amount), COUNT(*), \
         SUM(amount), 3, 3, 3, 'general_value', 'active', {now} FROM orders WHERE tenant_id = {tenant} \
         AND status = 'completed' GROUP BY customer_id"
    )))
    .await?;
    // What a DBA runs after a bulk load (autovacuum does it in time on a live store): fresh
    // statistics, and on PostgreSQL a visibility map so the covering index is read alone.
    match b {
        Backend::Postgres => db.execute(&sql("VACUUM ANALYZE")).await?,
        Backend::Sqlite => db.execute(&sql("ANALYZE")).await?,
    };
    pb.finish_and_clear();
    Ok(())
}

/// Median and p95 of `runs` requests of `path`, in ms, and the last page's text.
async fn time_get(
    c: &reqwest::Client,
    base: &str,
    cookie: &str,
    path: &str,
    runs: usize,
) -> anyhow::Result<(f64, f64, String)> {
    let mut times = Vec::with_capacity(runs);
    let mut text = String::new();
    for _ in 0..runs {
        let t = Instant::now();
        let r = c
            .get(format!("{base}{path}"))
            .header("cookie", cookie)
            .send()
            .await?;
        anyhow::ensure!(r.status().is_success(), "{path} answered {}", r.status());
        text = r.text().await?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    Ok((median(times.clone()), percentile(times, 95), text))
}

/// The number in `id="kpi-orders">N<` of an overview page.
fn kpi_orders(page: &str) -> Option<i64> {
    let at = page.find("id=\"kpi-orders\">")? + "id=\"kpi-orders\">".len();
    page[at..].split('<').next()?.parse().ok()
}

pub async fn run(a: &BenchArgs) -> anyhow::Result<()> {
    let n = a.customers as i64;
    let now = now_ms();
    let cipher = FieldCipher::new(&[9u8; 32]);
    let mut backends = vec!["sqlite"];
    if a.postgres.is_some() {
        backends.push("postgres");
    }
    println!("| measurement | backend | median ms | p95 ms | goal |");
    println!("|---|---|---:|---:|---|");
    let mut seen: Option<Vec<i64>> = None;
    for b in &backends {
        let s = scratch(b, a.postgres.as_deref()).await?;
        let t = access::create_tenant(&s.db, "bench").await?;
        access::create_user(&s.db, t.id, "ops", "运营", PASSWORD, Role::Operator).await?;
        let started = Instant::now();
        generate(&s.db, t.id, n, now, b).await?;
        let (orders,): (i64,) =
            s.db.fetch_one(&sql("SELECT COUNT(*) FROM orders WHERE tenant_id = $1").bind(t.id))
                .await?;
        println!(
            "| generate {n} customers, {orders} orders | {b} | {:.1} s | | |",
            started.elapsed().as_secs_f64()
        );

        let app = App::build(
            s.db.clone(),
            cipher.clone(),
            AppSettings::local("http://127.0.0.1"),
        )
        .await
        .context("building the app")?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(siyu_web::serve(listener, app, async {
            let _ = stop_rx.await;
        }));
        let c = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let login = c
            .post(format!("{base}/console/login"))
            .form(&[
                ("tenant", "bench"),
                ("username", "ops"),
                ("password", PASSWORD),
            ])
            .send()
            .await?;
        let cookie = login
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("siyu_session="))
            .and_then(|v| v.split(';').next())
            .context("no console session")?
            .to_owned();

        let mut counts = Vec::new();
        for days in [30, 90, 365] {
            let r = DateRange::last_days(days, now, SHANGHAI);
            let q = format!("from={}&to={}", r.from, r.to);
            let runs = if days == 30 { RUNS } else { RUNS_LONG };
            let (med, p95, page) =
                time_get(&c, &base, &cookie, &format!("/console/overview?{q}"), runs).await?;
            let shown = kpi_orders(&page).context("the page shows no order count")?;
            let (want,): (i64,) = s
                .db
                .fetch_one(
                    &sql("SELECT COUNT(*) FROM orders WHERE tenant_id = $1 AND status = 'completed' AND ordered_at >= $2 AND ordered_at < $3")
                        .bind(t.id)
                        .bind(r.start_ms())
                        .bind(r.end_ms()),
                )
                .await?;
            anyhow::ensure!(
                shown == want,
                "{b}: the overview of the last {days} days shows {shown} orders, the store holds {want}"
            );
            counts.push(shown);
            let goal = if days == 30 {
                format!("≤ {GOAL_MS:.0} ms")
            } else {
                "—".into()
            };
            println!(
                "| overview page (HTML), last {days} days with the period before, {shown} orders in range | {b} | {med:.1} | {p95:.1} | {goal} |"
            );
            let (med, p95, _) = time_get(
                &c,
                &base,
                &cookie,
                &format!("/console/api/overview/trends?{q}"),
                runs,
            )
            .await?;
            println!(
                "| trend JSON (the chart's data), last {days} days | {b} | {med:.1} | {p95:.1} | — |"
            );
        }
        match &seen {
            None => seen = Some(counts),
            Some(prev) => anyhow::ensure!(
                prev == &counts,
                "{b} counts {counts:?} orders per range, another backend {prev:?}"
            ),
        }
        let _ = stop_tx.send(());
        let _ = server.await;
        s.finish().await?;
    }
    Ok(())
}
