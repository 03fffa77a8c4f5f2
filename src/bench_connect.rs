//! `siyu bench --suite connect`: WeCom callbacks over HTTP against the local sandbox.
//! - Callbacks acknowledged per second: each one signature-checked, decrypted, parsed, stored in
//!   the inbox and queued (the acknowledgement WeCom waits for), and the time until the queue has
//!   done all of their work (customers, contacts, tags, welcome messages).
//! - A burst of 1,000 adds through a live code: the time from posting each add to the sandbox
//!   receiving its `send_welcome_msg` (p50, p99, max), against the welcome_code's 20 s.

use siyu::platform::TenantId;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::bench::{BenchArgs, scratch};
use siyu::app::{App, AppSettings};
use siyu::connect::events::{CallbackEvent, Envelope};
use siyu::connect::live_codes::{self, GuideSlot, NewLiveCode, Welcome};
use siyu::connect::service::CorpSettings;
use siyu::platform::access;
use siyu::platform::clock::now_ms;
use siyu::platform::crypto::FieldCipher;
use siyu_wecom_sandbox::{Sandbox, SandboxCorp};

struct Setup {
    url: String,
    app: App,
    tenant: TenantId,
    wecom: Sandbox,
    state: String,
    stop: tokio::sync::oneshot::Sender<()>,
}

async fn setup(db: siyu::platform::db::Db, cipher: &FieldCipher) -> anyhow::Result<Setup> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = App::build(
        db.clone(),
        cipher.clone(),
        AppSettings::local(format!("http://{addr}")),
    )
    .await?;
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let served = app.clone();
    tokio::spawn(async move {
        let _ = siyu_web::serve(listener, served, async {
            let _ = rx.await;
        })
        .await;
    });
    let tenant = access::create_tenant(&db, "bench-connect").await?.id;
    let wecom = Sandbox::start(SandboxCorp::default()).await?;
    let corp = wecom.corp().clone();
    let c = app
        .connect
        .configure(
            tenant,
            CorpSettings {
                corp_id: corp.corp_id,
                secret: corp.secret,
                token: corp.token,
                encoding_aes_key: corp.encoding_aes_key,
                base_url: Some(wecom.url().to_owned()),
            },
            now_ms(),
        )
        .await?;
    let code = live_codes::create(
        &db,
        &c.api,
        tenant,
        NewLiveCode {
            name: "bench".into(),
            source: "channel".into(),
            source_id: None,
            tag_ids: vec![],
            welcome: Welcome {
                content: siyu::connect::client::Content {
                    text: "欢迎！".into(),
                    attachments: vec![],
                },
                by_time: vec![],
            },
            guides: vec![GuideSlot {
                userid: "guide".into(),
                weekdays: vec![],
                from: None,
                to: None,
                daily_cap: None,
            }],
            backup_userid: "backup".into(),
        },
        now_ms(),
        480,
    )
    .await?;
    Ok(Setup {
        url: format!("http://{addr}/callbacks/wecom/{tenant}"),
        app,
        tenant,
        wecom,
        state: code.state,
        stop,
    })
}

/// Posts sealed callbacks over `concurrency` clients; returns seconds and each one's post time.
async fn post_all(
    url: &str,
    sealed: Vec<(String, String)>,
    concurrency: usize,
) -> anyhow::Result<(f64, Vec<i64>)> {
    let sealed = Arc::new(sealed);
    let next = Arc::new(AtomicUsize::new(0));
    let started_at = Arc::new(std::sync::Mutex::new(vec![0i64; sealed.len()]));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (sealed, next, started_at, client, url) = (
            sealed.clone(),
            next.clone(),
            started_at.clone(),
            client.clone(),
            url.to_owned(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((q, body)) = sealed.get(i) else {
                    return Ok::<_, anyhow::Error>(());
                };
                if let Ok(mut s) = started_at.lock() {
                    s[i] = now_ms();
                }
                let r = client
                    .post(format!("{url}?{q}"))
                    .body(body.clone())
                    .send()
                    .await?;
                let st = r.status();
                let text = r.text().await?;
                anyhow::ensure!(
                    st.is_success() && text == "success",
                    "callback answered {st}: {text}"
                );
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    let secs = start.elapsed().as_secs_f64();
    let times = started_at.lock().map(|v| v.clone()).unwrap_or_default();
    Ok((secs, times))
}

async fn drained(app: &App, tenant: TenantId, timeout: Duration) -> anyhow::Result<()> {
    app.connect
        .wait_drained(tenant, timeout)
        .await
        .map_err(|n| anyhow::anyhow!("{n} callbacks unfinished after {timeout:?}"))
}

fn pct(sorted: &[i64], p: usize) -> i64 {
    sorted
        .get((sorted.len() * p / 100).min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or(0)
}

pub async fn run(a: &BenchArgs) -> anyhow::Result<()> {
    let cipher = FieldCipher::new(&[9u8; 32]);
    let mut backends = vec!["sqlite"];
    if a.postgres.is_some() {
        backends.push("postgres");
    }
    println!(
        "| WeCom callbacks over HTTP ({} adds, {} clients) | backend | acknowledged/s (verify, decrypt, parse, store, queue) | all work done/s (customer, contact, welcome, tags) | burst of {} adds: welcome p50 ms | p99 ms | max ms | welcomes sent |",
        a.callbacks, a.concurrency, a.burst
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    for b in backends {
        let s = scratch(b, a.postgres.as_deref()).await?;
        let w = setup(s.db.clone(), &cipher).await?;
        // Throughput: adds without a welcome code, so the measure is the callback path.
        let now = now_ms() / 1000;
        let sealed: Vec<(String, String)> = (0..a.callbacks)
            .map(|i| {
                let env = Envelope {
                    corp_id: w.wecom.corp().corp_id.clone(),
                    create_time: now,
                    event: CallbackEvent::ContactAdded {
                        userid: "guide".into(),
                        external_userid: format!("wmT{i}"),
                        state: Some(w.state.clone()),
                        welcome_code: None,
                        half: false,
                    },
                };
                w.wecom.seal(&env, now)
            })
            .collect();
        let t0 = Instant::now();
        let (ack_secs, _) = post_all(&w.url, sealed, a.concurrency).await?;
        drained(&w.app, w.tenant, Duration::from_secs(600)).await?;
        let all_secs = t0.elapsed().as_secs_f64();

        // The burst: adds with welcome codes, all at once.
        let mut codes = Vec::with_capacity(a.burst);
        let mut sealed = Vec::with_capacity(a.burst);
        let now = now_ms() / 1000;
        for i in 0..a.burst {
            let env = w
                .wecom
                .customer_adds("guide", &format!("wmB{i}"), None, Some(&w.state));
            if let CallbackEvent::ContactAdded {
                welcome_code: Some(c),
                ..
            } = &env.event
            {
                codes.push(c.clone());
            }
            sealed.push(w.wecom.seal(&env, now));
        }
        let (_, posted) = post_all(&w.url, sealed, a.burst.min(200)).await?;
        drained(&w.app, w.tenant, Duration::from_secs(120)).await?;
        let sent = w.wecom.welcomes_accepted();
        let mut lat: Vec<i64> = codes
            .iter()
            .zip(&posted)
            .filter_map(|(c, t)| sent.get(c).map(|s| s - t))
            .collect();
        lat.sort_unstable();
        println!(
            "| | {b} | {:.0} | {:.0} | {} | {} | {} | {}/{} |",
            a.callbacks as f64 / ack_secs,
            a.callbacks as f64 / all_secs,
            pct(&lat, 50),
            pct(&lat, 99),
            lat.last().copied().unwrap_or(0),
            lat.len(),
            a.burst
        );
        let _ = w.stop.send(());
        s.finish().await.context("dropping the scratch database")?;
    }
    Ok(())
}
