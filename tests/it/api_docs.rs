//! The API's OpenAPI document against the running server: it is served without a key, its
//! reference page lists every operation, and every operation it names is routed with its method
//! (each answers a call without a key with 401, not 404 or 405).

use crate::common::{Backend, TestServer};
use reqwest::StatusCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_is_served() {
    let s = TestServer::start(Backend::Sqlite).await;
    let c = reqwest::Client::new();
    let doc: serde_json::Value = c
        .get(s.url("/api/v1/openapi.json"))
        .send()
        .await
        .expect("document")
        .json()
        .await
        .expect("json");
    assert_eq!(doc["openapi"], "3.1.0");
    let page = c
        .get(s.url("/api/docs"))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    let mut ops = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, _) in item.as_object().expect("operations") {
            ops += 1;
            assert!(
                page.contains(&format!("<code>{path}</code>")),
                "{path} on the reference page"
            );
            let concrete = path
                .replace("{id}", "1")
                .replace("{snapshot}", "1")
                .replace("{prefix}", "sy_abc")
                .replace("{code}", "ABC123")
                .replace("{chat_id}", "wrabc");
            let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let r = c
                .request(m, s.url(&concrete))
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .expect("call");
            assert_eq!(
                r.status(),
                StatusCode::UNAUTHORIZED,
                "{method} {path} is routed and asks for a key"
            );
        }
    }
    assert!(ops > 120, "{ops} operations");
}
