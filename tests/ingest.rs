//! The group-commit writer answers every request, even when the database fails under it, and
//! keeps serving afterwards.

mod common;

use siyu::know::events::EventInput;
use siyu::know::ingest::{EventWriter, IngestError};

use common::{Backend, TestDb, cipher};

fn events(prefix: &str, n: usize) -> Vec<siyu::know::events::Event> {
    let now = siyu::platform::clock::now_ms();
    (0..n)
        .map(|i| {
            let input: EventInput = serde_json::from_value(serde_json::json!({
                "id": format!("{prefix}-{i}"), "type": "visit", "timestamp": now,
                "identities": [{"kind": "phone", "value": "13800138000"}]
            }))
            .expect("event json");
            input.check(now).expect("valid event")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_answered_and_the_writer_goes_on() {
    let tdb = TestDb::new(Backend::Sqlite).await;
    let writer = EventWriter::start(tdb.db.clone(), cipher(), None);
    let ok = writer.write(1, events("a", 10)).await.expect("stored");
    assert_eq!((ok.stored, ok.duplicates), (10, 0));

    // The database goes away under the writer: each waiting request gets an error, none hangs.
    tdb.db.close().await;
    let mut tasks = Vec::new();
    for k in 0..5 {
        let w = writer.clone();
        tasks.push(tokio::spawn(async move {
            w.write(1 + k % 2, events(&format!("b{k}"), 5)).await
        }));
    }
    for t in tasks {
        let r = tokio::time::timeout(std::time::Duration::from_secs(10), t)
            .await
            .expect("answered in time")
            .expect("join");
        assert!(matches!(r, Err(IngestError::Store(_))), "{r:?}");
    }
    // The writer itself is still there to answer.
    let r = writer.write(1, events("c", 1)).await;
    assert!(matches!(r, Err(IngestError::Store(_))), "{r:?}");
}
