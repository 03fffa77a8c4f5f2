//! The test server runs what `siyu serve` runs: the same writers and background loops, since
//! both are built by `App::build` and started by `Workers::start`. `/readyz` lists them.

use crate::common;
use std::time::{Duration, Instant};

use serde_json::Value;
use siyu::app::workers::{LOOPS, WRITERS};

use common::{Backend, TestServer};

/// `siyu serve` as a child process, killed when dropped.
struct Served(std::process::Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn readyz(base: &str) -> Option<Value> {
    let r = reqwest::get(format!("{base}/readyz")).await.ok()?;
    if !r.status().is_success() {
        return None;
    }
    r.json().await.ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_test_server_starts_the_workers_siyu_serve_starts() {
    let dir = tempfile::tempdir().expect("tmp");
    // A free port, given back just before the server takes it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let _served = Served(
        std::process::Command::new(env!("CARGO_BIN_EXE_siyu"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .env(
                "SIYU_DATABASE_URL",
                format!("sqlite://{}", dir.path().join("siyu.db").display()),
            )
            .env("SIYU_SECRET_KEY", hex::encode([42u8; 32]))
            .env("SIYU_DATA_DIR", dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start siyu serve"),
    );
    let base = format!("http://127.0.0.1:{port}");
    let until = Instant::now() + Duration::from_secs(30);
    let served = loop {
        if let Some(v) = readyz(&base).await {
            break v;
        }
        assert!(Instant::now() < until, "siyu serve did not answer /readyz");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let s = TestServer::start(Backend::Sqlite).await;
    let tested = readyz(&s.base).await.expect("the test server's /readyz");
    assert_eq!(tested, served, "the test server and siyu serve differ");
    assert_eq!(served["ready"], true, "{served}");
    // And that is every loop there is, each once.
    let loops: Vec<&str> = served["loops"]
        .as_array()
        .expect("loops")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(loops, LOOPS);
    let writers: Vec<&str> = served["writers"]
        .as_array()
        .expect("writers")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(writers, WRITERS);
}
