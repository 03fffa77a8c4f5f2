//! `siyu bench --suite acquire`: tracking-link redirects per second with click logging on,
//! side by side with nginx answering the same 302 (when nginx is installed), both driven by the
//! same keep-alive load generator; and outbox throughput: a campaign's messages rendered with
//! their tracking links and checked (the launch), then decided by the contact policy and handed
//! to the `log` provider (the dispatch).

use siyu::platform::TenantId;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::Context;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use roaring::RoaringBitmap;

use crate::bench::{BenchArgs, scratch};
use siyu::acquire::campaigns::{self, NewCampaign, VariantSpec};
use siyu::app::{App, AppSettings};
use siyu::channels::sms::log::LogProvider;
use siyu::engage::outbox::Outbox;
use siyu::engage::policy::{self, ContactPolicy};
use siyu::platform::access;
use siyu::platform::clock::now_ms;
use siyu::platform::crypto::FieldCipher;
use siyu::platform::db::{sql, values_placeholders};

const TARGET: &str = "https://shop.example.cn/huigui";

/// GETs `path` `requests` times over `concurrency` keep-alive connections; every answer must
/// be a 302. Returns the seconds taken.
async fn load(
    addr: std::net::SocketAddr,
    path: &str,
    requests: u64,
    concurrency: usize,
    label: &str,
) -> anyhow::Result<f64> {
    let next = Arc::new(AtomicU64::new(0));
    let pb = crate::progress_bar(requests, label);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (next, path, pb) = (next.clone(), path.to_string(), pb.clone());
        tasks.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            let (mut send, conn) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= requests {
                    return Ok::<_, anyhow::Error>(());
                }
                let req = hyper::Request::get(path.as_str())
                    .header(hyper::header::HOST, "bench")
                    .header(hyper::header::USER_AGENT, "siyu-bench")
                    .body(Empty::<Bytes>::new())?;
                send.ready().await?;
                let resp = send.send_request(req).await?;
                let status = resp.status();
                resp.into_body().collect().await?;
                anyhow::ensure!(status.as_u16() == 302, "redirect answered {status}");
                if n % 4_096 == 0 {
                    pb.set_position(n);
                }
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    pb.finish_and_clear();
    Ok(start.elapsed().as_secs_f64())
}

/// nginx on a free port with `return 302` and an access log (it logs each click too).
struct Nginx {
    child: std::process::Child,
    bin: &'static str,
    dir: std::path::PathBuf,
    _dir: crate::bench::TempDir,
    addr: std::net::SocketAddr,
}

fn start_nginx(workers: usize) -> anyhow::Result<Nginx> {
    let bin = ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .context("nginx is not installed (apt-get install nginx)")?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let dir = std::env::temp_dir().join(format!("siyu-bench-nginx-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("logs"))?;
    let conf = format!(
        "worker_processes {workers};\nerror_log {d}/logs/error.log;\npid {d}/nginx.pid;\n\
         events {{ worker_connections 1024; }}\n\
         http {{\n  access_log {d}/logs/access.log combined buffer=64k;\n  keepalive_requests 1000000;\n\
         client_body_temp_path {d}; proxy_temp_path {d}; fastcgi_temp_path {d}; uwsgi_temp_path {d}; scgi_temp_path {d};\n\
         server {{ listen 127.0.0.1:{port}; location /t/ {{ return 302 {TARGET}; }} }}\n}}\n",
        d = dir.display()
    );
    std::fs::write(dir.join("nginx.conf"), conf)?;
    let child = std::process::Command::new(bin)
        .args([
            "-p",
            &dir.display().to_string(),
            "-c",
            &dir.join("nginx.conf").display().to_string(),
            "-g",
            "daemon off;",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .context("starting nginx")?;
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse()?;
    for _ in 0..100 {
        if std::net::TcpStream::connect(addr).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Ok(Nginx {
        child,
        bin,
        dir: dir.clone(),
        _dir: crate::bench::TempDir(dir),
        addr,
    })
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // `-s stop` ends the workers too; killing the master alone would leave them running.
        let stopped = std::process::Command::new(self.bin)
            .args([
                "-p",
                &self.dir.display().to_string(),
                "-c",
                &self.dir.join("nginx.conf").display().to_string(),
                "-s",
                "stop",
            ])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !stopped {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

async fn redirects(a: &BenchArgs, cipher: &FieldCipher) -> anyhow::Result<()> {
    let s = scratch("sqlite", None).await?;
    let t = access::create_tenant(&s.db, "bench").await?;
    let app = App::build(
        s.db.clone(),
        cipher.clone(),
        AppSettings::local("http://127.0.0.1"),
    )
    .await?;
    let tracker = app.links.clone();
    let mut tx = s.db.begin().await?;
    let link = siyu::acquire::links::create_in(
        &mut tx,
        t.id,
        &[siyu::acquire::links::NewLink {
            target: TARGET.into(),
            channel: "sms".into(),
            ..Default::default()
        }],
        now_ms(),
    )
    .await?
    .remove(0);
    tx.commit().await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(siyu_web::serve(listener, app, async {
        let _ = stop_rx.await;
    }));
    let path = format!("/t/{}", link.code);
    // Warm the code into memory and the connections up.
    load(addr, &path, 2_000, a.concurrency, "warm-up").await?;
    let siyu_secs = load(addr, &path, a.requests, a.concurrency, "siyu /t/").await?;
    tracker.flush().await;
    let (clicks,): (i64,) =
        s.db.fetch_one(&sql("SELECT COUNT(*) FROM clicks WHERE link_id = $1").bind(link.id))
            .await?;
    let dropped = tracker.dropped.load(Ordering::Relaxed);
    println!(
        "| redirects over HTTP/1.1 keep-alive: {} requests by {} connections, load generator in the same process | server | seconds | redirects/s | clicks stored | clicks dropped |",
        a.requests, a.concurrency
    );
    println!("|---|---|---:|---:|---:|---:|");
    let siyu_rate = a.requests as f64 / siyu_secs;
    println!(
        "| `GET /t/{{code}}` → 302, click logged | siyu | {siyu_secs:.2} | {siyu_rate:.0} | {} | {dropped} |",
        clicks - 2_000
    );
    let nginx = match start_nginx(2) {
        Ok(n) => {
            load(n.addr, &path, 2_000, a.concurrency, "warm-up").await?;
            let secs = load(n.addr, &path, a.requests, a.concurrency, "nginx").await?;
            let rate = a.requests as f64 / secs;
            println!(
                "| `return 302`, access log on (2 workers) | nginx | {secs:.2} | {rate:.0} | (access log) | |"
            );
            println!("| ratio siyu / nginx | | | {:.2}× | | |", siyu_rate / rate);
            Some(n)
        }
        Err(e) => {
            println!("| nginx: skipped ({e:#}) | | | | | |");
            None
        }
    };
    // The same two servers under wrk, a load generator in its own process written in C, so the
    // client's cost is small and not inside the measured process.
    match wrk(addr, &path, a.concurrency, 10).await {
        None => println!("\nwrk: skipped (not installed; apt-get install wrk)"),
        Some(run) => {
            let (n, rate) = run?;
            tracker.flush().await;
            let (after,): (i64,) = s
                .db
                .fetch_one(&sql("SELECT COUNT(*) FROM clicks WHERE link_id = $1").bind(link.id))
                .await?;
            let stored = after - clicks;
            println!(
                "\n| redirects under wrk (1 thread, {} connections, 10 s, keep-alive) | server | requests | redirects/s | clicks stored |",
                a.concurrency
            );
            println!("|---|---|---:|---:|---:|");
            println!(
                "| `GET /t/{{code}}` → 302, click logged | siyu | {n} | {rate:.0} | {stored} |"
            );
            if let Some(ng) = &nginx
                && let Some(Ok((nn, nrate))) = wrk(ng.addr, &path, a.concurrency, 10).await
            {
                println!(
                    "| `return 302`, access log on (2 workers) | nginx | {nn} | {nrate:.0} | (access log) |"
                );
                println!("| ratio siyu / nginx | | | {:.2}× | |", rate / nrate);
            }
        }
    }
    drop(nginx);
    let _ = stop_tx.send(());
    let _ = server.await;
    s.finish().await?;
    Ok(())
}

/// Runs wrk against `addr` for `secs` seconds: (requests, requests per second); None when wrk
/// is not installed.
async fn wrk(
    addr: std::net::SocketAddr,
    path: &str,
    connections: usize,
    secs: u64,
) -> Option<anyhow::Result<(u64, f64)>> {
    let url = format!("http://{addr}{path}");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("wrk")
            .args([
                "-t1",
                &format!("-c{connections}"),
                &format!("-d{secs}s"),
                &url,
            ])
            .output()
    })
    .await
    .ok()?;
    let out = match out {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => return Some(Err(e.into())),
    };
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let parse = || -> anyhow::Result<(u64, f64)> {
        anyhow::ensure!(out.status.success(), "wrk failed: {text}");
        anyhow::ensure!(!text.contains("Non-2xx"), "wrk saw error answers: {text}");
        let requests = text
            .lines()
            .find_map(|l| {
                l.trim()
                    .split_once(" requests in ")
                    .map(|(n, _)| n.trim().to_owned())
            })
            .and_then(|n| n.parse().ok())
            .context("no request count in wrk's output")?;
        let rate = text
            .lines()
            .find_map(|l| l.strip_prefix("Requests/sec:"))
            .and_then(|r| r.trim().parse().ok())
            .context("no Requests/sec in wrk's output")?;
        Ok((requests, rate))
    };
    Some(parse())
}

/// A fresh database with `a.messages` customers, each with a phone, in one snapshot, and a
/// two-variant campaign to them ready to launch.
async fn campaign_ready(
    a: &BenchArgs,
    backend: &str,
    cipher: &FieldCipher,
) -> anyhow::Result<(crate::bench::Scratch, TenantId, i64, i64)> {
    let s = scratch(backend, a.postgres.as_deref()).await?;
    let t = access::create_tenant(&s.db, "bench").await?;
    let n = a.messages as i64;
    let pb = crate::progress_bar(n as u64, &format!("{backend} customers"));
    let lookup = cipher.lookup(t.id);
    for chunk in (1..=n).collect::<Vec<_>>().chunks(5_000) {
        let mut tx = s.db.begin().await?;
        let mut q = sql(format!(
            "INSERT INTO customers (id, tenant_id, created_at) VALUES {}",
            values_placeholders(chunk.len(), 3, 1)
        ));
        for &i in chunk {
            q.push_arg(i);
            q.push_arg(t.id);
            q.push_arg(0i64);
        }
        tx.execute(&q).await?;
        let mut q = sql(format!(
            "INSERT INTO identities (tenant_id, ikey, kind, customer_id, value_enc, first_seen) VALUES {}",
            values_placeholders(chunk.len(), 6, 1)
        ));
        for &i in chunk {
            let phone = format!("13{i:09}");
            q.push_arg(t.id);
            q.push_arg(format!("phone:{}", lookup.hash(&phone)));
            q.push_arg("phone");
            q.push_arg(i);
            q.push_arg(cipher.encrypt(&phone));
            q.push_arg(0i64);
        }
        tx.execute(&q).await?;
        tx.commit().await?;
        pb.inc(chunk.len() as u64);
    }
    pb.finish_and_clear();
    let members: RoaringBitmap = (1..=n as u32).collect();
    let mut blob = Vec::new();
    members.serialize_into(&mut blob)?;
    s.db.execute(
        &sql("INSERT INTO segment_snapshots (id, tenant_id, segment_id, rule, size, members, taken_by, taken_at) VALUES (1, $1, 1, 'all', $2, $3, 'bench', 0)")
            .bind(t.id)
            .bind(n)
            .bind(blob),
    )
    .await?;
    // No quiet hours, so the run measures sending at any hour; caps and dedupe still apply.
    policy::save(
        &s.db,
        t.id,
        &ContactPolicy {
            quiet_start_minute: 0,
            quiet_end_minute: 0,
            ..ContactPolicy::default()
        },
    )
    .await?;
    let now = now_ms();
    let (c, _) = campaigns::create(
        &s.db,
        t.id,
        &NewCampaign {
            name: "bench".into(),
            snapshot_id: 1,
            variants: vec![
                VariantSpec {
                    name: "A".into(),
                    content: "【茶小铺】好久不见，20元回归券已到账 {link} 拒收请回复R".into(),
                    weight: 1,
                },
                VariantSpec {
                    name: "B".into(),
                    content: "【茶小铺】新茶到店，老客专享价 {link} 拒收请回复R".into(),
                    weight: 1,
                },
            ],
            holdout_percent: 0,
            seed: Some("bench".into()),
            target_url: Some(TARGET.into()),
            template_code: None,
            exclude_phones: vec![],
            forbidden_words: vec![],
            cost_per_part: None,
            window_days: None,
            scheduled_at: Some(now),
        },
        30,
        now,
    )
    .await?;
    Ok((s, t.id, c.id, now))
}

/// Launch, then dispatch: each stage timed alone. Returns (launch s, dispatch s, messages
/// sent, CPU s of the process, CPU s of SQLite's threads).
async fn outbox_in_stages(
    a: &BenchArgs,
    backend: &str,
    cipher: &FieldCipher,
) -> anyhow::Result<(f64, f64, u64, f64, f64)> {
    let (s, tenant, campaign, now) = campaign_ready(a, backend, cipher).await?;
    let (cpu0, sqlite0) = crate::bench::cpu_seconds();
    let started = Instant::now();
    let launched =
        campaigns::launch(&s.db, cipher, "https://s.tea.cn", tenant, campaign, now).await?;
    let launch_secs = started.elapsed().as_secs_f64();
    let ob = Outbox::new(
        s.db.clone(),
        cipher.clone(),
        Arc::new(LogProvider::new(s.db.clone())),
    );
    let started = Instant::now();
    let r = ob.drain(now).await?;
    let send_secs = started.elapsed().as_secs_f64();
    let (cpu1, sqlite1) = crate::bench::cpu_seconds();
    every_message_logged_once(&s, backend, launched.queued, r.sent).await?;
    s.finish().await?;
    Ok((
        launch_secs,
        send_secs,
        r.sent,
        cpu1 - cpu0,
        sqlite1 - sqlite0,
    ))
}

/// Launch and dispatch as the server runs them: on SQLite each chunk is sent in the transaction
/// that writes it; on PostgreSQL the dispatcher is woken as each chunk commits and sends it
/// while the next is written. Returns the seconds from the launch's start until the last
/// message was handed to the provider.
async fn outbox_overlapped(
    a: &BenchArgs,
    backend: &str,
    cipher: &FieldCipher,
) -> anyhow::Result<(f64, u64, f64, f64)> {
    let (s, tenant, campaign, now) = campaign_ready(a, backend, cipher).await?;
    let ob = Outbox::new(
        s.db.clone(),
        cipher.clone(),
        Arc::new(LogProvider::new(s.db.clone())),
    );
    // The outbox as the server runs it: with `log`, each chunk is sent in the transaction
    // that writes it, and the dispatcher is there for anything left queued.
    ob.spawn(std::time::Duration::from_millis(100));
    let (cpu0, sqlite0) = crate::bench::cpu_seconds();
    let started = Instant::now();
    let launched = campaigns::launch_then(
        &s.db,
        cipher,
        "https://s.tea.cn",
        tenant,
        campaign,
        now,
        Some(&ob),
    )
    .await?;
    let r = ob
        .settled(launched.queued, std::time::Duration::from_secs(600))
        .await
        .ok_or_else(|| {
            anyhow::anyhow!("{backend}: the dispatcher did not send the launch in 10 minutes")
        })?;
    let secs = started.elapsed().as_secs_f64();
    let (cpu1, sqlite1) = crate::bench::cpu_seconds();
    every_message_logged_once(&s, backend, launched.queued, r.sent).await?;
    s.finish().await?;
    Ok((secs, r.sent, cpu1 - cpu0, sqlite1 - sqlite0))
}

async fn every_message_logged_once(
    s: &crate::bench::Scratch,
    backend: &str,
    queued: u64,
    sent: u64,
) -> anyhow::Result<()> {
    let (logged,): (i64,) = s.db.fetch_one(&sql("SELECT COUNT(*) FROM sms_log")).await?;
    let (distinct,): (i64,) =
        s.db.fetch_one(&sql("SELECT COUNT(DISTINCT outbox_id) FROM sms_log"))
            .await?;
    anyhow::ensure!(
        logged as u64 == queued && distinct == logged && sent == queued,
        "{backend}: {queued} queued, {sent} sent, {logged} logged ({distinct} distinct)"
    );
    Ok(())
}

async fn outbox(a: &BenchArgs, backend: &str, cipher: &FieldCipher) -> anyhow::Result<()> {
    let n = a.messages;
    let (launch_secs, send_secs, sent, cpu, sqlite_cpu) =
        outbox_in_stages(a, backend, cipher).await?;
    let (together, sent_together, cpu2, sqlite_cpu2) =
        outbox_overlapped(a, backend, cipher).await?;
    println!(
        "| {backend} | {n} | {launch_secs:.2} | {:.0} | {send_secs:.2} | {:.0} | {:.0} | {cpu:.1} / {sqlite_cpu:.1} | {together:.2} | **{:.0}** | {cpu2:.1} / {sqlite_cpu2:.1} |",
        n as f64 / launch_secs,
        sent as f64 / send_secs,
        sent as f64 / (launch_secs + send_secs),
        sent_together as f64 / together,
    );
    Ok(())
}

pub async fn run(a: &BenchArgs) -> anyhow::Result<()> {
    let cipher = FieldCipher::new(&[9u8; 32]);
    redirects(a, &cipher).await?;
    println!();
    println!(
        "| outbox: a campaign to {} customers, each message with its own tracking link | backend | messages | launch alone s (render, check, link, enqueue) | launched/s | dispatch alone s (policy, log provider, record) | dispatched/s | in stages, end to end/s | CPU s: process / sqlx's SQLite threads | launch and dispatch together s | **together, end to end/s** | CPU s: process / sqlx's SQLite threads |",
        a.messages
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut backends = vec!["sqlite"];
    if a.postgres.is_some() {
        backends.push("postgres");
    }
    for b in backends {
        print!("| ");
        outbox(a, b, &cipher).await?;
    }
    Ok(())
}
