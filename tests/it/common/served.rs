//! The real `siyu serve` binary, started as an operator would: a database URL, a data
//! directory and a secret key in its environment.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The secret key every served binary is started with (tests sign customer tokens with it).
pub const SECRET: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

pub fn siyu(db_url: &str, data_dir: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_siyu"));
    c.env("SIYU_DATABASE_URL", db_url)
        .env("SIYU_DATA_DIR", data_dir)
        .env("SIYU_SECRET_KEY", SECRET)
        .env("SIYU_LOG", "warn")
        .env_remove("SIYU_PAYMENT_PROVIDER")
        .stdin(Stdio::null());
    c
}

/// Starts `siyu serve` on a free port and returns the child and its base URL.
pub async fn start(db_url: &str, data_dir: &std::path::Path) -> (Child, String) {
    start_with_env(db_url, data_dir, &[]).await
}

/// [`start`] with more `SIYU_*` settings in its environment.
pub async fn start_with_env(
    db_url: &str,
    data_dir: &std::path::Path,
    env: &[(&str, &str)],
) -> (Child, String) {
    let mut child = siyu(db_url, data_dir)
        .envs(env.iter().copied())
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

/// Creates a tenant with the CLI and returns its API key.
pub async fn tenant_key(db_url: &str, dir: &std::path::Path, name: &str) -> String {
    let out = siyu(db_url, dir)
        .args(["tenant", "create", name])
        .output()
        .await
        .expect("tenant create");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.split("store it now): ").nth(1))
        .expect("API key printed")
        .trim()
        .to_owned()
}
