//! Exports as the platforms write them: every file of `tests/fixtures/exports/` imports to the
//! result written beside it by hand (`<name>.expected.json`), on both backends. A row that real
//! exports carry — a status nobody reads yet, a closed order refunded in full, a masked phone
//! without a buyer id — is kept, and channel GMV counts what it should.

use crate::common;
use siyu::platform::TenantId;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use siyu::know::import::presets::preset;
use siyu::know::import::{ImportOptions, TextEncoding, import_file};
use siyu::platform::db::sql;

use common::{Backend, TestDb, cipher};

fn corpus() -> Vec<(PathBuf, Value)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/exports");
    let mut out = Vec::new();
    for dir in std::fs::read_dir(&root).expect("corpus directory") {
        let dir = dir.expect("entry").path();
        if !dir.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&dir).expect("platform directory") {
            let f = f.expect("entry").path();
            let name = f
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("")
                .to_owned();
            if let Some(stem) = name.strip_suffix(".expected.json") {
                let text = std::fs::read_to_string(&f).expect("expected file");
                let want: Value = serde_json::from_str(&text).expect("expected JSON");
                out.push((dir.join(format!("{stem}.csv")), want));
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(out.len() >= 7, "the corpus has a file per platform");
    out
}

async fn every_export_imports_to_its_expected_result(backend: Backend) {
    let tdb = TestDb::new(backend).await;
    let work = tempfile::tempdir().expect("tmp");
    for (n, (file, want)) in corpus().into_iter().enumerate() {
        let tenant = TenantId::new(100 + n as i64);
        let name = file.display().to_string();
        // The importer writes rejected rows beside the input: import a copy.
        let copy = work.path().join(file.file_name().expect("name"));
        std::fs::copy(&file, &copy).expect("copy");
        let p = preset(want["preset"].as_str().expect("preset")).expect("known preset");
        let s = import_file(
            &tdb.db,
            &cipher(),
            tenant,
            &copy,
            &ImportOptions::new(p),
            None,
        )
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        let encoding = match s.encoding {
            Some(TextEncoding::Gb18030) => "gb18030",
            _ => "utf8",
        };
        assert_eq!(encoding, want["encoding"], "{name}");
        assert_eq!(json!(s.read), want["read"], "{name}: rows read");
        let rejected: Vec<Value> = s
            .errors
            .iter()
            .map(|e| json!({"line": e.line, "column": e.column}))
            .collect();
        assert_eq!(
            json!(rejected),
            want["rejected"],
            "{name}: rejected rows {:#?}",
            s.errors
        );
        assert_eq!(json!(s.unknown_texts), want["unknown_statuses"], "{name}");
        assert_eq!(
            json!(s.unlinked),
            want["unlinked_orders"],
            "{name}: unlinked buyers' orders"
        );

        // What the store holds.
        let rows: Vec<(String, String, i64, i64, i64, i64)> = tdb
            .db
            .fetch_all(
                &sql(
                    "SELECT o.order_no, o.status, o.amount, o.refund_amount, o.buyer_unlinked, \
                     (SELECT COUNT(*) FROM order_lines l WHERE l.tenant_id = o.tenant_id AND l.order_id = o.id) \
                     FROM orders o WHERE o.tenant_id = $1 ORDER BY o.order_no",
                )
                .bind(tenant),
            )
            .await
            .expect("orders");
        assert_eq!(json!(rows.len()), want["orders"], "{name}: orders kept");
        let got: BTreeMap<String, Value> = rows
            .iter()
            .map(|(no, status, amount, refund, unlinked, lines)| {
                (
                    no.clone(),
                    json!({"order_no": no, "status": status, "amount": amount, "refund_amount": refund,
                           "lines": lines, "unlinked": *unlinked == 1}),
                )
            })
            .collect();
        for o in want["order_details"].as_array().expect("order_details") {
            let no = o["order_no"].as_str().expect("order_no");
            assert_eq!(got.get(no), Some(o), "{name}: order {no}");
        }
        let mut by_status: BTreeMap<&str, i64> = [
            "paid",
            "shipped",
            "completed",
            "refunded",
            "closed",
            "pending",
            "unknown",
        ]
        .into_iter()
        .map(|s| (s, 0))
        .collect();
        for (_, status, ..) in &rows {
            *by_status.entry(status.as_str()).or_default() += 1;
        }
        assert_eq!(
            json!(by_status),
            want["by_status"],
            "{name}: orders by status"
        );
        let o = siyu::know::report::overview(&tdb.db, tenant)
            .await
            .expect("overview");
        assert_eq!(json!(o.gmv), want["gmv_fen"], "{name}: GMV");
        let (customers,): (i64,) = tdb
            .db
            .fetch_one(
                &sql("SELECT COUNT(DISTINCT customer_id) FROM orders WHERE tenant_id = $1")
                    .bind(tenant),
            )
            .await
            .expect("customers");
        assert_eq!(
            json!(customers),
            want["customers"],
            "{name}: customers after OneID"
        );
    }
}
on_each_backend!(every_export_imports_to_its_expected_result);
