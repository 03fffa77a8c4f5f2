//! `siyu bench`: order import rows/s and event ingestion events/s, on SQLite and PostgreSQL.
//!
//! Each run uses fresh databases (a temporary SQLite file; a temporary PostgreSQL database that
//! is dropped afterwards) so numbers are comparable run to run. Build with `--release`.

use std::time::Instant;

use anyhow::Context;
use clap::Args;
use serde_json::json;

use siyu::app::{App, AppSettings};
use siyu::know::import::parse_ahead;
use siyu::platform::access::{self, Role};
use siyu::platform::config::Settings;
use siyu::platform::crypto::FieldCipher;
use siyu::platform::db::{ConnectOptions, Db};
use siyu::platform::migrate::migrate;
use siyu_demo::write_exports;

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Suite {
    /// Order import and event ingestion.
    Ingest,
    /// The audience index against SQL on synthetic customers.
    Audience,
    /// Flash-sale attempts over HTTP, stock in memory against a Redis Lua script.
    Flash,
    /// Tracking-link redirects (against nginx) and outbox throughput.
    Acquire,
    /// WeCom callbacks per second and welcome-message latency under a burst of adds.
    Connect,
    /// Marketplace order sync against each platform's sandbox.
    Sync,
    /// Flash-sale attempts' p99 alone and while 200 connections sign in to the console.
    LoginFlood,
    /// The console's overview of a date range on synthetic customers and orders.
    Overview,
}

#[derive(Args)]
pub struct BenchArgs {
    /// What to measure.
    #[arg(long, value_enum, default_value_t = Suite::Ingest)]
    suite: Suite,
    /// Synthetic customers for the audience and overview suites.
    #[arg(long, default_value_t = 1_000_000)]
    pub customers: u64,
    /// Audience suite: measure the index only (SQLite store, no SQL counts).
    #[arg(long)]
    pub index_only: bool,
    /// Order rows to import (about; the demo generator decides the exact count).
    #[arg(long, default_value_t = 1_000_000)]
    rows: u64,
    /// Events to post over HTTP.
    #[arg(long, default_value_t = 200_000)]
    events: u64,
    /// Events per request.
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Flash suite: attempts to make.
    #[arg(long, default_value_t = 400_000)]
    pub attempts: u64,
    /// Flash suite: units for sale.
    #[arg(long, default_value_t = 10_000)]
    pub stock: u64,
    /// Login-flood suite: alone/flooded pairs to run per backend. One p99 on this machine
    /// moves by up to half from run to run; the suite's figure is the median of the pairs.
    #[arg(long, default_value_t = 5)]
    pub pairs: usize,
    /// Flash suite: Redis to compare against (a Lua check-and-decrement).
    #[arg(
        long,
        env = "SIYU_BENCH_REDIS_URL",
        default_value = "redis://127.0.0.1:6379/"
    )]
    pub redis: Option<String>,
    /// Acquire suite: redirects to request.
    #[arg(long, default_value_t = 300_000)]
    pub requests: u64,
    /// Acquire suite: campaign messages to launch and send.
    #[arg(long, default_value_t = 200_000)]
    pub messages: u64,
    /// Connect suite: callbacks to post for the throughput figure. Above 8,000 the work is paced
    /// by WeCom's per-API limit (each add reads the contact), not by Siyu.
    #[arg(long, default_value_t = 5_000)]
    pub callbacks: usize,
    /// Connect suite: adds in the welcome-latency burst.
    #[arg(long, default_value_t = 1_000)]
    pub burst: usize,
    /// Sync suite: orders in each sandbox shop.
    #[arg(long, default_value_t = 100_000)]
    pub sync_orders: usize,
    /// Sync suite: only these platforms (`tmall`, `jd`, `pdd`, `douyin`, `youzan`; repeat the
    /// flag), every platform when none is named.
    #[arg(long = "platform")]
    pub sync_platforms: Vec<String>,
    /// PostgreSQL server to measure as well (a temporary database is created there).
    #[arg(long, env = "SIYU_BENCH_POSTGRES_URL")]
    pub postgres: Option<String>,
}

/// A database that lives for one measurement.
pub struct Scratch {
    pub db: Db,
    drop_pg: Option<(String, String)>,
    _dir: Option<tempfile_dir::Dir>,
}

pub use tempfile_dir::Dir as TempDir;

mod tempfile_dir {
    /// A directory removed when dropped (the bench needs no more than this).
    pub struct Dir(pub std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

pub async fn scratch(backend: &str, pg_admin: Option<&str>) -> anyhow::Result<Scratch> {
    let tag = format!(
        "{}_{}",
        std::process::id(),
        siyu::platform::crypto::random_token(6)
            .to_lowercase()
            .replace(['-', '_'], "x")
    );
    if backend == "sqlite" {
        let dir = std::env::temp_dir().join(format!("siyu-bench-{tag}"));
        std::fs::create_dir_all(&dir)?;
        let db = Db::connect(
            &format!("sqlite://{}", dir.join("bench.db").display()),
            &ConnectOptions::default(),
        )
        .await?;
        // Empty: the data steps have nothing to re-key, whatever the key.
        migrate(&db, &FieldCipher::new(&[0u8; 32])).await?;
        Ok(Scratch {
            db,
            drop_pg: None,
            _dir: Some(tempfile_dir::Dir(dir)),
        })
    } else {
        let admin = pg_admin.context("no PostgreSQL URL")?;
        let name = format!("siyu_bench_{tag}");
        let a = Db::connect(admin, &ConnectOptions { max_connections: 1 }).await?;
        a.execute_script(&format!("CREATE DATABASE {name}")).await?;
        a.close().await;
        let base = admin
            .rsplit_once('/')
            .map(|(b, _)| b.to_owned())
            .context("PostgreSQL URL needs a database")?;
        let db = Db::connect(
            &format!("{base}/{name}"),
            &ConnectOptions {
                max_connections: 16,
            },
        )
        .await?;
        // Empty: the data steps have nothing to re-key, whatever the key.
        migrate(&db, &FieldCipher::new(&[0u8; 32])).await?;
        Ok(Scratch {
            db,
            drop_pg: Some((admin.to_owned(), name)),
            _dir: None,
        })
    }
}

impl Scratch {
    pub async fn finish(self) -> anyhow::Result<()> {
        self.db.close().await;
        if let Some((admin, name)) = self.drop_pg {
            let a = Db::connect(&admin, &ConnectOptions { max_connections: 1 }).await?;
            a.execute_script(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await?;
            a.close().await;
        }
        Ok(())
    }
}

/// CPU seconds used so far by the whole process and by SQLite's worker threads (sqlx runs each
/// SQLite connection on its own thread), from `/proc` (Linux; zeros elsewhere). Threads that
/// ended are counted in the process total only.
pub fn cpu_seconds() -> (f64, f64) {
    // utime and stime are fields 14 and 15 of `stat`, counted after the `(comm)` field.
    fn ticks(stat: &str) -> Option<(String, u64)> {
        let open = stat.find('(')?;
        let close = stat.rfind(')')?;
        let comm = stat.get(open + 1..close)?.to_owned();
        let mut rest = stat.get(close + 2..)?.split(' ');
        let utime: u64 = rest.nth(11)?.parse().ok()?;
        let stime: u64 = rest.next()?.parse().ok()?;
        Some((comm, utime + stime))
    }
    const TICK: f64 = 0.01; // USER_HZ is 100 on Linux
    let total = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| ticks(&s))
        .map_or(0.0, |(_, t)| t as f64 * TICK);
    let mut sqlite = 0.0;
    if let Ok(dir) = std::fs::read_dir("/proc/self/task") {
        for e in dir.flatten() {
            if let Some((comm, t)) = std::fs::read_to_string(e.path().join("stat"))
                .ok()
                .and_then(|s| ticks(&s))
                && comm.starts_with("sqlx-sqlite")
            {
                sqlite += t as f64 * TICK;
            }
        }
    }
    (total, sqlite)
}

/// What an import run measured: rows, wall seconds, CPU seconds of the process and of SQLite's
/// threads.
pub struct ImportRun {
    rows: u64,
    secs: f64,
    cpu: f64,
    sqlite_cpu: f64,
}

async fn bench_import(
    backend: &str,
    pg: Option<&str>,
    files: &[siyu_demo::DemoFile],
    cipher: &FieldCipher,
) -> anyhow::Result<ImportRun> {
    let s = scratch(backend, pg).await?;
    let t = access::create_tenant(&s.db, "bench").await?;
    let (cpu0, sqlite0) = cpu_seconds();
    let start = Instant::now();
    let mut rows = 0;
    let parsed = parse_ahead(
        cipher,
        t.id,
        files.iter().map(|f| (f.path.clone(), f.options.clone())),
    );
    for (f, parsing) in files.iter().zip(parsed) {
        let pb = crate::progress_bar(0, &format!("{backend} {}", f.platform));
        let sum = parsing.store(&s.db, Some(&pb)).await?;
        pb.finish_and_clear();
        anyhow::ensure!(
            sum.rejected == 0,
            "bench rows were rejected: {:?}",
            sum.errors
        );
        rows += sum.read;
    }
    let secs = start.elapsed().as_secs_f64();
    let (cpu1, sqlite1) = cpu_seconds();
    s.finish().await?;
    Ok(ImportRun {
        rows,
        secs,
        cpu: cpu1 - cpu0,
        sqlite_cpu: sqlite1 - sqlite0,
    })
}

async fn bench_ingest(
    group_events: usize,
    backend: &str,
    pg: Option<&str>,
    a: &BenchArgs,
    cipher: &FieldCipher,
) -> anyhow::Result<(u64, f64, f64)> {
    let s = scratch(backend, pg).await?;
    let t = access::create_tenant(&s.db, "bench").await?;
    let key = access::create_api_key(&s.db, t.id, "bench", Role::Admin).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let app = App::build(
        s.db.clone(),
        cipher.clone(),
        AppSettings {
            event_group_size: group_events,
            // The suite measures ingestion, not the per-key rate (held by the request-limit
            // tests): at the default 200 requests a second one key sends 20,000 events a
            // second, and a brand that pushes faster raises `[limits] api_per_second`.
            limits: siyu::platform::config::RequestLimitSettings {
                api_per_second: 1_000_000,
                api_burst: 1_000_000,
                ..Default::default()
            },
            ..AppSettings::local(format!("http://{addr}"))
        },
    )
    .await?;
    let server = tokio::spawn(siyu_web::serve(listener, app, async {
        let _ = stop_rx.await;
    }));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(a.concurrency)
        .build()?;
    let url = format!("http://{addr}/api/v1/events");
    let requests = a.events.div_ceil(a.batch as u64);
    let next = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let now = siyu::platform::clock::now_ms();
    let pb = crate::progress_bar(requests, &format!("{backend} ingest"));
    pb.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg:>18} [{bar:36}] {pos}/{len} requests {elapsed}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    // Request bodies are built before the clock starts: the measurement is the server's work
    // (and the sending), not the load generator's JSON building.
    let bodies: std::sync::Arc<Vec<hyper::body::Bytes>> = std::sync::Arc::new(
        (0..requests)
            .map(|r| {
                let events: Vec<_> = (0..a.batch as u64)
                    .map(|i| {
                        let n = r * a.batch as u64 + i;
                        json!({"id": format!("ev-{n}"), "type": "page_view", "timestamp": now - (n % 86_400_000) as i64,
                               "channel": "mall", "touchpoint": "sms",
                               "identities": [{"kind": "phone", "value": format!("139{:08}", n % 50_000)}],
                               "properties": {"path": "/p/1"}})
                    })
                    .collect();
                hyper::body::Bytes::from(json!({"events": events}).to_string())
            })
            .collect(),
    );
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..a.concurrency {
        let (client, url, key, next, pb, bodies) = (
            client.clone(),
            url.clone(),
            key.clone(),
            next.clone(),
            pb.clone(),
            bodies.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let r = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(body) = bodies.get(r as usize) else {
                    return Ok::<_, anyhow::Error>(latencies);
                };
                let t0 = Instant::now();
                let resp = client
                    .post(&url)
                    .bearer_auth(&key)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.clone())
                    .send()
                    .await?;
                anyhow::ensure!(
                    resp.status() == reqwest::StatusCode::ACCEPTED,
                    "ingest answered {}",
                    resp.status()
                );
                latencies.push(t0.elapsed().as_secs_f64() * 1000.0);
                pb.inc(1);
            }
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await??);
    }
    let secs = start.elapsed().as_secs_f64();
    pb.finish_and_clear();
    let _ = stop_tx.send(());
    let _ = server.await;
    let (stored,): (i64,) =
        s.db.fetch_one(&siyu::platform::db::sql("SELECT COUNT(*) FROM events"))
            .await?;
    anyhow::ensure!(
        stored as u64 == requests * a.batch as u64,
        "stored {stored} events, expected {}",
        requests * a.batch as u64
    );
    let p99 = percentile(lat, 99);
    s.finish().await?;
    Ok((stored as u64, secs, p99))
}

pub async fn run(_s: &Settings, a: BenchArgs) -> anyhow::Result<()> {
    if a.suite == Suite::Audience {
        return crate::bench_audience::run(&a).await;
    }
    if a.suite == Suite::Flash {
        return crate::bench_flash::run(&a).await;
    }
    if a.suite == Suite::Acquire {
        return crate::bench_acquire::run(&a).await;
    }
    if a.suite == Suite::Connect {
        return crate::bench_connect::run(&a).await;
    }
    if a.suite == Suite::Sync {
        return crate::bench_sync::run(&a).await;
    }
    if a.suite == Suite::Overview {
        return crate::bench_overview::run(&a).await;
    }
    if a.suite == Suite::LoginFlood {
        return crate::bench_flash::run_login_flood(&a).await;
    }
    let cipher = FieldCipher::new(&[9u8; 32]);
    let dir = std::env::temp_dir().join(format!("siyu-bench-files-{}", std::process::id()));
    let _cleanup = tempfile_dir::Dir(dir.clone());
    // The demo writes about 2.7 order rows per person.
    let people = (a.rows as f64 / 2.7).ceil() as u64;
    let pb = crate::progress_bar(people, "writing exports");
    let (d, pb2) = (dir.clone(), pb.clone());
    let files =
        tokio::task::spawn_blocking(move || write_exports(&d, people, 1, |i| pb2.set_position(i)))
            .await??;
    pb.finish_and_clear();
    let mut backends = vec!["sqlite"];
    if a.postgres.is_some() {
        backends.push("postgres");
    }
    println!("| measurement | backend | amount | seconds | rate |");
    println!("|---|---|---:|---:|---:|");
    for b in &backends {
        let r = bench_import(b, a.postgres.as_deref(), &files, &cipher).await?;
        println!(
            "| order import (12 exports of 6 platforms, OneID, encryption) | {b} | {} rows | {:.2} | {:.0} rows/s (CPU {:.1} s, of which on sqlx's SQLite threads {:.1} s) |",
            r.rows,
            r.secs,
            r.rows as f64 / r.secs,
            r.cpu,
            r.sqlite_cpu
        );
    }
    for b in &backends {
        // Group commit against one transaction per request, in the same run.
        for (mode, group) in [
            ("one transaction per request", 0),
            ("group commit", siyu::know::ingest::GROUP_EVENTS),
        ] {
            let (n, secs, p99) = bench_ingest(group, b, a.postgres.as_deref(), &a, &cipher).await?;
            println!(
                "| event ingestion over HTTP, batches of {}, {} in flight, durable before 202, {mode} | {b} | {n} events | {secs:.2} | {:.0} events/s (p99 {p99:.1} ms per batch) |",
                a.batch,
                a.concurrency,
                n as f64 / secs
            );
        }
    }
    Ok(())
}

/// The middle figure of several runs (the upper middle of an even count); 0 for none.
pub(crate) fn median(v: Vec<f64>) -> f64 {
    percentile(v, 50)
}

/// The figure `p` per cent of the way up the sorted figures (the last for 100); 0 for none.
pub(crate) fn percentile(mut v: Vec<f64>, p: usize) -> f64 {
    v.sort_by(f64::total_cmp);
    let at = (v.len() * p / 100).min(v.len().saturating_sub(1));
    v.get(at).copied().unwrap_or(0.0)
}
