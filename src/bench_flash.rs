//! `siyu bench --suite flash`: flash-sale attempts per second over HTTP on loopback, with the
//! stock counted in this process's memory and, in the same run, in Redis by a Lua
//! check-and-decrement (the usual alternative). Both paths are otherwise the same server: the
//! customer token is checked, successes are made durable by the same group-commit writer before
//! the answer, and afterwards the store is counted to prove that nothing was oversold.

use siyu::know::CustomerId;
use siyu::platform::Fen;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::Context;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

use crate::bench::{BenchArgs, scratch};
use siyu::app::{App, AppSettings, FlashGate};
use siyu::convert::flash::SaleInput;
use siyu::platform::access;
use siyu::platform::clock::now_ms;
use siyu::platform::crypto::{CustomerClaim, FieldCipher};
use siyu::platform::db::sql;

pub struct FlashRun {
    pub gate: &'static str,
    pub attempts: u64,
    pub secs: f64,
    pub sold: u64,
    pub sold_out: u64,
    pub limited: u64,
    pub p99_ms: f64,
    /// Console sign-ins completed while the attempts ran (the login-flood suite).
    pub logins: u64,
    pub logins_refused: u64,
}

/// One run: a fresh store and server, `a.attempts` attempts by `a.concurrency` connections,
/// while `logins` connections sign in to the console over and over (none: no flood).
pub(crate) async fn run_once(
    a: &BenchArgs,
    backend: &str,
    redis: Option<&str>,
    cipher: &FieldCipher,
    logins: usize,
) -> anyhow::Result<FlashRun> {
    let s = scratch(backend, a.postgres.as_deref()).await?;
    let t = access::create_tenant(&s.db, "bench").await?;
    if logins > 0 {
        access::create_user(
            &s.db,
            t.id,
            "ops",
            "运营",
            FLOOD_PASSWORD,
            access::Role::Operator,
        )
        .await?;
    }
    let settings = AppSettings {
        // The flood comes through a proxy on this machine that names each client, so that no
        // sign-in budget refuses it before the password is checked.
        trusted_proxies: (logins > 0).then(|| "127.0.0.1".to_owned()),
        // Every sign-in of the flood in flight at once, each waiting its turn for a password
        // check, rather than answered "busy" by the console's slots.
        limits: siyu::platform::config::RequestLimitSettings {
            console_in_flight: 4_096,
            ..Default::default()
        },
        flash_gate: redis.map(|url| FlashGate {
            url: url.to_owned(),
            prefix: format!("siyu:bench:{}", siyu::platform::crypto::random_token(6)),
        }),
        ..AppSettings::local("http://127.0.0.1")
    };
    let app = App::build(s.db.clone(), cipher.clone(), settings)
        .await
        .context("building the app (connecting to Redis?)")?;
    let now = now_ms();
    let sale = app
        .flash
        .create(
            t.id,
            &SaleInput {
                name: "bench".into(),
                sku: "SKU".into(),
                title: "bench".into(),
                price: Fen::new(9_900),
                original_price: None,
                stock: a.stock as i64,
                per_customer: 1,
                starts_at: now - 1_000,
                ends_at: now + 3_600_000,
                pay_minutes: 30,
            },
            now,
        )
        .await?;
    let gate = app.flash.gate_name();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(siyu_web::serve(listener, app, async {
        let _ = stop_rx.await;
    }));

    // Tokens are minted before the clock starts: a customer's page already holds one.
    let tokens: Arc<Vec<String>> = Arc::new(
        (0..a.customers.min(a.attempts))
            .map(|i| {
                cipher.customer_token(CustomerClaim {
                    tenant_id: t.id,
                    customer_id: CustomerId::new(1 + i as i64),
                    issued_at: 0,
                    expires_at: now + 3_600_000,
                })
            })
            .collect(),
    );
    let flooding = Arc::new(std::sync::atomic::AtomicBool::new(logins > 0));
    let flood: Vec<_> = (0..logins)
        .map(|i| tokio::spawn(sign_in_again_and_again(addr, i, flooding.clone())))
        .collect();
    if logins > 0 {
        // Let the flood fill the password checks before the clock starts.
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let path = format!("/h5/v1/flash-sales/{}/attempts", sale.id);
    let next = Arc::new(AtomicU64::new(0));
    let pb = crate::progress_bar(a.attempts, &format!("{gate} attempts"));
    pb.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg:>18} [{bar:36}] {pos}/{len} attempts {elapsed}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..a.concurrency {
        let (tokens, next, path, pb) = (tokens.clone(), next.clone(), path.clone(), pb.clone());
        let total = a.attempts;
        tasks.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            let (mut send, conn) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            let mut counts = [0u64; 3]; // created, sold out, limit reached
            let mut lat = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= total {
                    return Ok::<_, anyhow::Error>((counts, lat));
                }
                let token = &tokens[(n as usize * 7_919) % tokens.len()];
                let req = hyper::Request::post(path.as_str())
                    .header(hyper::header::HOST, "bench")
                    .header(hyper::header::CONTENT_TYPE, "application/json")
                    .header("x-siyu-customer", token.as_str())
                    .body(Full::new(Bytes::from_static(b"{\"quantity\":1}")))?;
                let t0 = Instant::now();
                send.ready().await?;
                let resp = send.send_request(req).await?;
                let status = resp.status();
                let body = resp.into_body().collect().await?.to_bytes();
                lat.push(t0.elapsed().as_secs_f32());
                match status.as_u16() {
                    201 => counts[0] += 1,
                    409 if body.windows(8).any(|w| w == b"sold_out") => counts[1] += 1,
                    409 if body.windows(13).any(|w| w == b"limit_reached") => counts[2] += 1,
                    _ => anyhow::bail!(
                        "attempt answered {status}: {}",
                        String::from_utf8_lossy(&body)
                    ),
                }
                if n % 1_024 == 0 {
                    pb.set_position(n);
                }
            }
        }));
    }
    let mut counts = [0u64; 3];
    let mut lat: Vec<f32> = Vec::new();
    for t in tasks {
        let (c, l) = t.await??;
        for i in 0..3 {
            counts[i] += c[i];
        }
        lat.extend(l);
    }
    let secs = start.elapsed().as_secs_f64();
    pb.finish_and_clear();
    flooding.store(false, Ordering::Relaxed);
    let (mut signed_in, mut refused) = (0u64, 0u64);
    for f in flood {
        let (ok, no) = f.await??;
        signed_in += ok;
        refused += no;
    }
    let _ = stop_tx.send(());
    let _ = server.await;

    // Zero oversell, counted in the store: reservations, the sale's own count, and the answers.
    let (stored,): (i64,) =
        s.db.fetch_one(&sql("SELECT COUNT(*) FROM flash_orders WHERE sale_id = $1").bind(sale.id))
            .await?;
    let (sold,): (i64,) =
        s.db.fetch_one(&sql("SELECT sold FROM flash_sales WHERE id = $1").bind(sale.id))
            .await?;
    anyhow::ensure!(
        stored as u64 == counts[0] && sold as u64 == counts[0] && sold as u64 <= a.stock,
        "{gate}: {} successes answered, {stored} stored, sold {sold}, stock {}",
        counts[0],
        a.stock
    );
    let p99 = crate::bench::percentile(lat.into_iter().map(f64::from).collect(), 99) * 1000.0;
    s.finish().await?;
    Ok(FlashRun {
        gate,
        attempts: a.attempts,
        secs,
        sold: counts[0],
        sold_out: counts[1],
        limited: counts[2],
        p99_ms: p99,
        logins: signed_in,
        logins_refused: refused,
    })
}

const FLOOD_PASSWORD: &str = "flood-password";

/// One connection signing in with the right password until told to stop, each time from another
/// address: every attempt runs the Argon2 check. Returns (signed in, refused).
async fn sign_in_again_and_again(
    addr: std::net::SocketAddr,
    worker: usize,
    go_on: Arc<std::sync::atomic::AtomicBool>,
) -> anyhow::Result<(u64, u64)> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let body = format!("tenant=bench&username=ops&password={FLOOD_PASSWORD}");
    let (mut ok, mut no) = (0u64, 0u64);
    let mut n = 0usize;
    while go_on.load(Ordering::Relaxed) {
        // 198.18.0.0/15 is set aside for benchmarks: 131,072 addresses, each used rarely.
        let k = (worker * 7_919 + n * 200) % 131_072;
        n += 1;
        let from = format!("198.{}.{}.{}", 18 + k / 65_536, (k / 256) % 256, k % 256);
        let req = hyper::Request::post("/console/login")
            .header(hyper::header::HOST, "bench")
            .header(
                hyper::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header("x-forwarded-for", from)
            .body(Full::new(Bytes::from(body.clone())))?;
        send.ready().await?;
        let resp = send.send_request(req).await?;
        let status = resp.status();
        resp.into_body().collect().await?;
        if status == hyper::StatusCode::SEE_OTHER {
            ok += 1;
        } else {
            no += 1;
        }
    }
    Ok((ok, no))
}

pub async fn run(a: &BenchArgs) -> anyhow::Result<()> {
    let cipher = FieldCipher::new(&[9u8; 32]);
    let mut backends = vec!["sqlite"];
    if a.postgres.is_some() {
        backends.push("postgres");
    }
    println!(
        "| flash sale over HTTP: {} attempts by {} connections, stock {}, {} customers, 1 each | backend | stock gate | seconds | attempts/s | sold | sold out | limit | p99 ms |",
        a.attempts,
        a.concurrency,
        a.stock,
        a.customers.min(a.attempts)
    );
    println!("|---|---|---|---:|---:|---:|---:|---:|---:|");
    for b in &backends {
        let mem = run_once(a, b, None, &cipher, 0).await?;
        print_row(b, &mem);
        // `--redis ""` says: no Redis to compare against.
        match a.redis.as_deref().filter(|url| !url.is_empty()) {
            Some(url) => match run_once(a, b, Some(url), &cipher, 0).await {
                Ok(red) => {
                    print_row(b, &red);
                    println!(
                        "| ratio memory / Redis Lua | {b} | | | {:.2}× | | | | |",
                        (mem.attempts as f64 / mem.secs) / (red.attempts as f64 / red.secs)
                    );
                }
                Err(e) => println!("| Redis Lua: skipped ({e:#}) | {b} | | | | | | | |"),
            },
            None => println!("| Redis Lua: skipped (no --redis URL) | {b} | | | | | | | |"),
        }
    }
    Ok(())
}

fn print_row(backend: &str, r: &FlashRun) {
    println!(
        "| attempts, durable before success | {backend} | {} | {:.2} | {:.0} | {} | {} | {} | {:.1} |",
        r.gate,
        r.secs,
        r.attempts as f64 / r.secs,
        r.sold,
        r.sold_out,
        r.limited,
        r.p99_ms
    );
}

/// `siyu bench --suite login-flood`: the flash-sale attempts' p99 alone, then while 200
/// connections sign in to the console as fast as they can (each sign-in an Argon2 check), in
/// `--pairs` alternated pairs. The password checks run on threads of their own in the idle
/// scheduling class, so the attempts should hardly notice; the goal is a p99 at most twice the
/// one without the flood, read on the median of the pairs' ratios. Sign-ins still in flight
/// when the attempts end are counted when they finish.
pub async fn run_login_flood(a: &BenchArgs) -> anyhow::Result<()> {
    const FLOOD: usize = 200;
    let cipher = FieldCipher::new(&[9u8; 32]);
    let mut backends = vec!["sqlite"];
    if a.postgres.is_some() {
        backends.push("postgres");
    }
    println!(
        "| flash attempts while the console is flooded with sign-ins: {} attempts by {} connections | backend | sign-ins at once | seconds | attempts/s | p99 ms | sign-ins done | refused | p99 × alone |",
        a.attempts, a.concurrency
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for b in &backends {
        let mut ratios = Vec::new();
        for _ in 0..a.pairs.max(1) {
            let alone = run_once(a, b, None, &cipher, 0).await?;
            let flooded = run_once(a, b, None, &cipher, FLOOD).await?;
            for (label, r, n) in [("alone", &alone, 0), ("flooded", &flooded, FLOOD)] {
                println!(
                    "| attempts {label} | {b} | {n} | {:.2} | {:.0} | {:.1} | {} | {} | {:.2} |",
                    r.secs,
                    r.attempts as f64 / r.secs,
                    r.p99_ms,
                    r.logins,
                    r.logins_refused,
                    r.p99_ms / alone.p99_ms.max(f64::MIN_POSITIVE)
                );
            }
            ratios.push(flooded.p99_ms / alone.p99_ms.max(f64::MIN_POSITIVE));
        }
        println!(
            "| p99 × alone, median of {} pairs (goal ≤ 2×) | {b} | {FLOOD} | | | | | | **{:.2}** |",
            ratios.len(),
            crate::bench::median(ratios)
        );
    }
    Ok(())
}
