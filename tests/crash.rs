//! Nothing acknowledged is lost: the server is killed with SIGKILL while clients post events,
//! restarted, and every event that got a 202 is there. On every backend. (A process crash: the
//! OS keeps its page cache, so power loss is not what this covers; see README on durability.)

mod common;

use std::collections::HashSet;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use common::{TestDb, backends};

const SECRET: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn siyu(db_url: &str, data_dir: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_siyu"));
    c.env("SIYU_DATABASE_URL", db_url)
        .env("SIYU_DATA_DIR", data_dir)
        .env("SIYU_SECRET_KEY", SECRET)
        .env("SIYU_LOG", "warn")
        .stdin(Stdio::null());
    c
}

/// Starts `siyu serve` on a free port and returns the child and its base URL.
async fn start(db_url: &str, data_dir: &std::path::Path) -> (Child, String) {
    let mut child = siyu(db_url, data_dir)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start siyu serve");
    let out = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(out).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("server started in time")
        .expect("read stdout")
        .expect("a banner line");
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .expect("address in banner")
        .to_owned();
    (child, format!("http://{addr}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_events_survive_sigkill() {
    for backend in backends() {
        let tdb = TestDb::new(backend).await;
        let dir = tempfile::tempdir().expect("tmp");
        let out = siyu(&tdb.url, dir.path())
            .args(["tenant", "create", "crash"])
            .output()
            .await
            .expect("tenant create");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let key = stdout
            .lines()
            .find_map(|l| l.split("store it now): ").nth(1))
            .expect("API key printed")
            .trim()
            .to_owned();

        let (mut child, base) = start(&tdb.url, dir.path()).await;
        let acked: Arc<Mutex<HashSet<String>>> = Arc::default();
        let refused: Arc<Mutex<Vec<String>>> = Arc::default();
        let client = reqwest::Client::new();
        let mut tasks = Vec::new();
        for w in 0..8 {
            let (client, base, key, acked, refused) = (
                client.clone(),
                base.clone(),
                key.clone(),
                acked.clone(),
                refused.clone(),
            );
            tasks.push(tokio::spawn(async move {
                for b in 0.. {
                    let ids: Vec<String> = (0..50).map(|i| format!("w{w}-b{b}-{i}")).collect();
                    let events: Vec<_> = ids
                        .iter()
                        .map(|id| json!({"id": id, "type": "visit", "timestamp": siyu::platform::clock::now_ms(),
                                         "identities": [{"kind": "phone", "value": format!("136{:08}", (w * 1000 + b) % 5000)}]}))
                        .collect();
                    match client.post(format!("{base}/api/v1/events")).bearer_auth(&key).json(&json!({"events": events})).send().await {
                        Ok(r) if r.status() == reqwest::StatusCode::ACCEPTED => acked.lock().expect("lock").extend(ids),
                        // An answer other than 202 while the server is up is a failure, not the kill.
                        Ok(r) => {
                            let line = format!("{}: {}", r.status(), r.text().await.unwrap_or_default());
                            refused.lock().expect("lock").push(line);
                            return;
                        }
                        Err(_) => return, // the server is gone
                    }
                }
            }));
        }
        // Kill the server without warning once a good amount of work has been acknowledged.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while acked.lock().expect("lock").len() < 2_000 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        child.start_kill().expect("SIGKILL");
        let _ = child.wait().await;
        for t in tasks {
            let _ = t.await;
        }
        let refused = refused.lock().expect("lock").clone();
        assert!(
            refused.is_empty(),
            "{backend:?}: requests refused before the kill: {refused:?}"
        );
        let acked = acked.lock().expect("lock").clone();
        assert!(
            acked.len() >= 2_000,
            "{backend:?}: only {} events were acknowledged before the kill",
            acked.len()
        );

        // Restart: the server comes back and every acknowledged event is stored.
        let (_child, base) = start(&tdb.url, dir.path()).await;
        let r = client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .expect("health");
        assert!(r.status().is_success());
        let stored: Vec<(String,)> = tdb
            .db
            .fetch_all(&siyu::platform::db::sql("SELECT event_key FROM events"))
            .await
            .expect("events");
        let stored: HashSet<String> = stored.into_iter().map(|r| r.0).collect();
        let lost: Vec<&String> = acked
            .iter()
            .filter(|id| !stored.contains(*id))
            .take(5)
            .collect();
        assert!(
            lost.is_empty(),
            "{backend:?}: acknowledged events lost after SIGKILL: {lost:?}"
        );
        eprintln!(
            "{backend:?}: {} acknowledged, {} stored after SIGKILL",
            acked.len(),
            stored.len()
        );
    }
}
