//! The receipt of each import (and, later, each sync run): what was read, what came in, what was
//! kept with an unknown status or an unlinked buyer, and every rejected row with its reason, as a
//! file the console can hand back.

use crate::platform::TenantId;
use serde::Serialize;

use super::FileSummary;
use super::rows::RowError;
use crate::platform::crypto::FieldCipher;
use crate::platform::db::{Db, DbResult, sql};

/// The rejected rows file is kept up to this size; a larger one is cut at a row boundary and
/// the full file stays beside the input.
pub const MAX_REJECTED_BYTES: usize = 8 << 20;

/// One run, as listed.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Receipt {
    pub id: i64,
    pub source: String,
    pub name: String,
    pub started_at: i64,
    pub finished_at: i64,
    #[sqlx(rename = "read_rows")]
    pub read: i64,
    pub imported: i64,
    pub updated: i64,
    pub unknown_status: i64,
    pub unlinked: i64,
    pub rejected: i64,
    pub customers_created: i64,
    pub customers_merged: i64,
    /// Each status text nobody has read yet, with how many orders carry it (JSON object).
    pub unknown_texts: String,
    /// The first rejections with line, column and reason (JSON array).
    pub errors: String,
    pub has_rejected_file: bool,
}

/// Records the receipt of one imported file; `rejected_csv` is the rejected rows file's text,
/// kept encrypted (its rows hold phones and names as the export wrote them).
#[allow(clippy::too_many_arguments)]
pub async fn record(
    db: &Db,
    cipher: &FieldCipher,
    tenant: TenantId,
    source: &str,
    s: &FileSummary,
    started_at: i64,
    finished_at: i64,
    rejected_csv: Option<String>,
) -> DbResult<i64> {
    let errors: &[RowError] = &s.errors;
    let (id,): (i64,) = db
        .fetch_one(
            &sql(
                "INSERT INTO import_runs (tenant_id, source, name, started_at, finished_at, read_rows, imported, \
                 updated, unknown_status, unlinked, rejected, customers_created, customers_merged, \
                 unknown_texts, errors, rejected_csv) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) RETURNING id",
            )
            .bind(tenant)
            .bind(source)
            .bind(s.file.as_str())
            .bind(started_at)
            .bind(finished_at)
            .bind(s.read as i64)
            .bind(s.imported as i64)
            .bind(s.updated as i64)
            .bind(s.unknown_status as i64)
            .bind(s.unlinked as i64)
            .bind(s.rejected as i64)
            .bind(s.customers_created as i64)
            .bind(s.customers_merged as i64)
            .bind(serde_json::to_string(&s.unknown_texts).unwrap_or_else(|_| "{}".into()))
            .bind(serde_json::to_string(errors).unwrap_or_else(|_| "[]".into()))
            .bind(rejected_csv.map(|t| cipher.encrypt(&cut_at_row(t)))),
        )
        .await?;
    Ok(id)
}

/// The text cut to [`MAX_REJECTED_BYTES`] at the end of a line.
fn cut_at_row(mut text: String) -> String {
    if text.len() > MAX_REJECTED_BYTES {
        // Searched as bytes: a line break is always a character boundary, the cut point may not be.
        let end = text.as_bytes()[..MAX_REJECTED_BYTES]
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |i| i + 1);
        text.truncate(end);
    }
    text
}

const COLUMNS: &str = "id, source, name, started_at, finished_at, read_rows, imported, updated, \
     unknown_status, unlinked, rejected, customers_created, customers_merged, unknown_texts, errors, \
     CASE WHEN rejected_csv IS NULL THEN FALSE ELSE TRUE END AS has_rejected_file";

/// The tenant's latest runs, newest first.
pub async fn list(db: &Db, tenant: TenantId, limit: i64) -> DbResult<Vec<Receipt>> {
    db.fetch_all(
        &sql(format!(
            "SELECT {COLUMNS} FROM import_runs WHERE tenant_id = $1 ORDER BY id DESC LIMIT $2"
        ))
        .bind(tenant)
        .bind(limit),
    )
    .await
}

/// One run of the tenant's.
pub async fn get(db: &Db, tenant: TenantId, id: i64) -> DbResult<Option<Receipt>> {
    db.fetch_optional(
        &sql(format!(
            "SELECT {COLUMNS} FROM import_runs WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant)
        .bind(id),
    )
    .await
}

/// The rejected rows file of one run: `None` when the run is not the tenant's, `Some(None)`
/// when it rejected nothing.
pub async fn rejected_file(
    db: &Db,
    cipher: &FieldCipher,
    tenant: TenantId,
    id: i64,
) -> DbResult<Option<Option<String>>> {
    let row: Option<(Option<String>,)> = db
        .fetch_optional(
            &sql("SELECT rejected_csv FROM import_runs WHERE tenant_id = $1 AND id = $2")
                .bind(tenant)
                .bind(id),
        )
        .await?;
    // A file that no longer decrypts (the server's secret changed) is answered as empty.
    Ok(row.map(|(enc,)| enc.map(|e| cipher.decrypt(&e).unwrap_or_default())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_rejected_file_is_cut_at_a_row() {
        let row = "12,订单付款时间,bad date,x\n";
        let text = row.repeat(MAX_REJECTED_BYTES / row.len() + 10);
        let cut = cut_at_row(text);
        assert!(cut.len() <= MAX_REJECTED_BYTES);
        assert!(cut.ends_with('\n'));
        assert_eq!(cut.len() % row.len(), 0, "whole rows only");
        assert_eq!(cut_at_row("a\nb\n".into()), "a\nb\n");
        // Chinese rows: the byte limit falls inside a character, the cut does not.
        let row = "12,订单付款时间,日期不对,张三\n";
        let cut = cut_at_row(row.repeat(MAX_REJECTED_BYTES / row.len() + 10));
        assert!(cut.len() <= MAX_REJECTED_BYTES && cut.ends_with('\n'));
        assert_eq!(cut.len() % row.len(), 0);
    }
}
