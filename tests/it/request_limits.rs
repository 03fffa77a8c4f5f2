//! Request limits per route class, on a real server behind a named proxy: one address or one
//! API key that calls too fast is told to wait, others go on; a class with every request slot
//! taken answers "busy" at once.

use crate::common;
use common::{Backend, TestServer, tenant_with_key};
use reqwest::StatusCode;
use serde_json::Value;
use siyu::platform::access::Role;
use siyu::platform::config::RequestLimitSettings;
use tokio::io::AsyncWriteExt;

fn tight() -> RequestLimitSettings {
    RequestLimitSettings {
        customer_per_second: 1,
        customer_burst: 5,
        console_per_second: 1,
        console_burst: 5,
        api_per_second: 1,
        api_burst: 5,
        api_in_flight: 1,
        ..RequestLimitSettings::default()
    }
}

async fn start(backend: Backend) -> TestServer {
    TestServer::start_with(backend, |s| {
        s.limits = tight();
        // The test client stands in for a proxy on this machine that names each client.
        s.trusted_proxies = Some("127.0.0.1, ::1".into());
    })
    .await
}

async fn get_from(c: &reqwest::Client, url: &str, address: &str) -> reqwest::Response {
    c.get(url)
        .header("x-forwarded-for", address)
        .send()
        .await
        .expect("request")
}

async fn an_address_that_calls_too_fast_waits_and_others_do_not(backend: Backend) {
    let s = start(backend).await;
    let c = reqwest::Client::new();
    // This test's loopback is a trusted proxy: /metrics is not answered through it.
    let r = c.get(s.url("/metrics")).send().await.expect("metrics");
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "{backend:?}");
    let page = s.url("/h5/v1/gifts");
    for i in 0..5 {
        let r = get_from(&c, &page, "203.0.113.9").await;
        assert_eq!(
            r.status(),
            StatusCode::UNAUTHORIZED,
            "call {i} reaches the page"
        );
    }
    let r = get_from(&c, &page, "203.0.113.9").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .expect("text")
        .parse()
        .expect("seconds");
    assert!((1..=2).contains(&wait), "{wait}");
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["error"]["code"], "too_many_requests");

    let r = get_from(&c, &page, "203.0.113.10").await;
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "another address goes on"
    );
    let r = get_from(&c, &s.url("/console/login"), "203.0.113.9").await;
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "the console has a budget of its own"
    );
    // The console's refusal is a sentence a person reads.
    for _ in 0..5 {
        get_from(&c, &s.url("/console/login"), "203.0.113.11").await;
    }
    let r = get_from(&c, &s.url("/console/login"), "203.0.113.11").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.text().await.expect("text").contains("操作过于频繁"));

    // Within a second the address has earned a call back.
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let r = get_from(&c, &page, "203.0.113.9").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}
on_each_backend!(an_address_that_calls_too_fast_waits_and_others_do_not);

async fn each_api_key_has_its_own_rate(backend: Backend) {
    let s = start(backend).await;
    let (_, busy) = tenant_with_key(s.db(), "busy", Role::Admin).await;
    let (_, calm) = tenant_with_key(s.db(), "calm", Role::Admin).await;
    let c = reqwest::Client::new();
    let url = s.url("/api/v1/tags");
    let call = |key: String, from: &'static str| {
        let c = c.clone();
        let url = url.clone();
        async move {
            c.get(&url)
                .bearer_auth(key)
                .header("x-forwarded-for", from)
                .send()
                .await
                .expect("request")
                .status()
        }
    };
    // One key used from many addresses: the key is counted.
    let addresses = [
        "198.51.100.1",
        "198.51.100.2",
        "198.51.100.3",
        "198.51.100.4",
        "198.51.100.5",
    ];
    for from in addresses {
        assert_eq!(call(busy.clone(), from).await, StatusCode::OK);
    }
    assert_eq!(
        call(busy.clone(), "198.51.100.6").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(call(calm.clone(), "198.51.100.7").await, StatusCode::OK);
    // Made-up keys from one address: the address is counted, so fresh keys buy nothing.
    for i in 0..5 {
        let st = call(format!("sy_made_up_{i}"), "198.51.100.8").await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        call("sy_made_up_y".into(), "198.51.100.8").await,
        StatusCode::TOO_MANY_REQUESTS
    );
}
on_each_backend!(each_api_key_has_its_own_rate);

async fn a_full_class_answers_busy_at_once(backend: Backend) {
    let s = start(backend).await;
    let (_, key) = tenant_with_key(s.db(), "brand", Role::Admin).await;
    // A client that sends half a body and keeps the only API slot while it waits for the rest.
    let addr = s.base.trim_start_matches("http://").to_owned();
    let mut slow = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let head = format!(
        "POST /api/v1/orders HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {key}\r\n\
         content-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"orders\": ["
    );
    slow.write_all(head.as_bytes()).await.expect("write");
    slow.flush().await.expect("flush");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    let c = reqwest::Client::new();
    let r = c
        .get(s.url("/api/v1/tags"))
        .bearer_auth(&key)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.headers().contains_key("retry-after"));
    let r = c.get(s.url("/healthz")).send().await.expect("health");
    assert_eq!(r.status(), StatusCode::OK, "other classes are not held up");

    drop(slow);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let r = c
        .get(s.url("/api/v1/tags"))
        .bearer_auth(&key)
        .send()
        .await
        .expect("request");
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "the slot is free once the slow client leaves"
    );
}
on_each_backend!(a_full_class_answers_busy_at_once);

/// A customer page's client that sends half a body is cut off when its class's time is up: it
/// is answered 400 and its slot is given back, so the class's last slot is free again.
async fn half_a_body_loses_its_slot_when_its_time_is_up(backend: Backend) {
    use tokio::io::AsyncReadExt;
    let s = TestServer::start_with(backend, |s| {
        s.limits = RequestLimitSettings {
            customer_in_flight: 1,
            // 0 is read as the shortest deadline there is, one second.
            public_body_seconds: 0,
            ..RequestLimitSettings::default()
        };
    })
    .await;
    let addr = s.base.trim_start_matches("http://").to_owned();
    let mut slow = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let head = format!(
        "POST /h5/v1/cards/NOSUCHCARD/otp HTTP/1.1\r\nhost: {addr}\r\n\
         content-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"phone\": "
    );
    slow.write_all(head.as_bytes()).await.expect("write");
    slow.flush().await.expect("flush");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let c = reqwest::Client::new();
    let r = c.get(s.url("/healthz")).send().await.expect("health");
    assert_eq!(
        r.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "{backend:?}: the half body holds the only customer slot"
    );

    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), slow.read(&mut answer))
        .await
        .expect("answered when the body's time was up")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 400"), "{backend:?}: {answer}");
    let r = c.get(s.url("/healthz")).send().await.expect("health");
    assert_eq!(r.status(), StatusCode::OK, "{backend:?}: the slot is free");
}
on_each_backend!(half_a_body_loses_its_slot_when_its_time_is_up);

/// An export uploaded over the cap (256 MiB) is refused with 413 once the cap is passed, as the
/// body streams in, rather than kept on disk or in memory whole; nothing is imported.
#[tokio::test]
async fn an_export_over_the_upload_cap_is_refused_as_it_streams() {
    use tokio::io::AsyncReadExt;
    let s = TestServer::start(Backend::Sqlite).await;
    let (tenant, key) = tenant_with_key(s.db(), "茶小铺", Role::Admin).await;
    let addr = s.base.trim_start_matches("http://").to_owned();
    let mut conn = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    const CAP: usize = 256 * 1024 * 1024;
    let declared = CAP + 1024 * 1024;
    let head = format!(
        "POST /api/v1/import/orders?preset=tmall HTTP/1.1\r\nhost: {addr}\r\n\
         authorization: Bearer {key}\r\ncontent-type: text/csv\r\ncontent-length: {declared}\r\n\r\n"
    );
    conn.write_all(head.as_bytes()).await.expect("head");
    let (mut rd, mut wr) = conn.into_split();
    let writer = tokio::spawn(async move {
        let chunk = vec![b'1'; 1024 * 1024];
        let mut sent = 0usize;
        while sent < declared {
            // The server stops reading once it has refused: the rest may not go.
            if wr.write_all(&chunk).await.is_err() {
                break;
            }
            sent += chunk.len();
        }
        sent
    });
    let mut answer = Vec::new();
    let mut buf = vec![0u8; 4096];
    let read = tokio::time::timeout(std::time::Duration::from_secs(120), async {
        loop {
            let n = rd.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
            if answer.windows(10).any(|w| w == b"too_large\"") {
                break;
            }
        }
    })
    .await;
    assert!(read.is_ok(), "answered within two minutes");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("at most 256 MiB"), "{answer}");
    let sent = writer.await.expect("writer");
    assert!(sent > CAP, "refused only past the cap: {sent}");
    let (runs,): (i64,) = s
        .db()
        .fetch_one(
            &siyu::platform::db::sql("SELECT COUNT(*) FROM import_runs WHERE tenant_id = $1")
                .bind(tenant),
        )
        .await
        .expect("runs");
    assert_eq!(runs, 0, "nothing imported");
}

/// Two exports importing take the server's two upload turns: a third is told the server is busy
/// (503 `uploads_busy`) at once, and a turn is given back when an upload ends, even one whose
/// client went away mid-body.
#[tokio::test]
async fn a_third_upload_waits_for_a_turn() {
    let s = TestServer::start(Backend::Sqlite).await;
    let (_, key) = tenant_with_key(s.db(), "茶小铺", Role::Admin).await;
    let addr = s.base.trim_start_matches("http://").to_owned();
    let mut held = Vec::new();
    for _ in 0..siyu::app::UPLOAD_TURNS {
        let mut conn = tokio::net::TcpStream::connect(&addr)
            .await
            .expect("connect");
        let head = format!(
            "POST /api/v1/import/orders?preset=tmall HTTP/1.1\r\nhost: {addr}\r\n\
             authorization: Bearer {key}\r\ncontent-type: text/csv\r\ncontent-length: 100000\r\n\r\n订单编号"
        );
        conn.write_all(head.as_bytes()).await.expect("head");
        conn.flush().await.expect("flush");
        held.push(conn);
    }
    let c = reqwest::Client::new();
    let upload = || {
        c.post(s.url("/api/v1/import/orders?preset=tmall"))
            .bearer_auth(&key)
            .body("订单编号,订单创建时间\n")
            .send()
    };
    // The held uploads take their turns as their heads arrive; wait until both are taken.
    let mut busy = None;
    for _ in 0..50 {
        let r = upload().await.expect("upload");
        if r.status() == StatusCode::SERVICE_UNAVAILABLE {
            busy = Some(r.json::<Value>().await.expect("json"));
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let busy = busy.expect("a third upload is refused while two are under way");
    assert_eq!(busy["error"]["code"], "uploads_busy", "{busy}");
    // One client goes away: its turn comes back and the next upload is taken.
    drop(held.pop());
    let mut taken = None;
    for _ in 0..50 {
        let r = upload().await.expect("upload");
        if r.status() != StatusCode::SERVICE_UNAVAILABLE {
            taken = Some(r.status());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let taken = taken.expect("a turn is given back when an upload's client goes away");
    assert!(
        taken.is_success() || taken == StatusCode::BAD_REQUEST,
        "read as an export, not refused as busy: {taken}"
    );
}
