//! `siyu bench --suite flash`: flash-sale attempts per second over HTTP on loopback, with the
//! stock counted in this process's memory and, in the same run, in Redis by a Lua
//! check-and-decrement (the usual alternative). Both paths are otherwise the same server: the
//! customer token is checked, successes are made durable by the same group-commit writer before
//! the answer, and afterwards the store is counted to prove that nothing was oversold.

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
use siyu::interfaces;
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
}

/// One run: a fresh store and server, `a.attempts` attempts by `a.concurrency` connections.
async fn run_once(
    a: &BenchArgs,
    backend: &str,
    redis: Option<&str>,
    cipher: &FieldCipher,
) -> anyhow::Result<FlashRun> {
    let s = scratch(backend, a.postgres.as_deref()).await?;
    let t = access::create_tenant(&s.db, "bench").await?;
    let settings = AppSettings {
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
                price: 9_900,
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
    let server = tokio::spawn(interfaces::serve(listener, app, async {
        let _ = stop_rx.await;
    }));

    // Tokens are minted before the clock starts: a customer's page already holds one.
    let tokens: Arc<Vec<String>> = Arc::new(
        (0..a.customers.min(a.attempts))
            .map(|i| {
                cipher.customer_token(CustomerClaim {
                    tenant_id: t.id,
                    customer_id: 1 + i as i64,
                    issued_at: 0,
                    expires_at: now + 3_600_000,
                })
            })
            .collect(),
    );
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
    lat.sort_by(f32::total_cmp);
    let p99 = lat
        .get(lat.len().saturating_sub(1).min(lat.len() * 99 / 100))
        .copied()
        .unwrap_or(0.0) as f64
        * 1000.0;
    s.finish().await?;
    Ok(FlashRun {
        gate,
        attempts: a.attempts,
        secs,
        sold: counts[0],
        sold_out: counts[1],
        limited: counts[2],
        p99_ms: p99,
    })
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
        let mem = run_once(a, b, None, &cipher).await?;
        print_row(b, &mem);
        match &a.redis {
            Some(url) => match run_once(a, b, Some(url), &cipher).await {
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
