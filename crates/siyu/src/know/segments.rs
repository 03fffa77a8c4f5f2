//! Saved segments (人群包): a named rule, counted live by the audience index, and snapshots:
//! the members at one moment, frozen for a campaign to send to.

use crate::platform::Fen;
use crate::platform::TenantId;
use crate::platform::refusal::{Refusal, Refuse};
use futures_util::TryStreamExt;
use roaring::RoaringBitmap;
use serde::Serialize;

use super::report::plain_yuan;
use super::rule::{Rule, RuleError};
use crate::platform::db::{Db, DbError, DbResult, sql};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct SegmentRow {
    pub id: i64,
    pub name: String,
    #[serde(skip)]
    pub rule: String,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl SegmentRow {
    pub fn rule(&self) -> Result<Rule, RuleError> {
        let v: serde_json::Value = serde_json::from_str(&self.rule).map_err(|e| RuleError {
            path: "$".into(),
            reason: e.to_string(),
        })?;
        Rule::from_json(&v)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SegmentError {
    #[error("name: {0}")]
    Name(String),
    #[error("a segment named {0:?} exists already")]
    Exists(String),
    #[error("segment {0} not found")]
    NotFound(i64),
    #[error("snapshot {0} not found")]
    SnapshotNotFound(i64),
    #[error("{0}")]
    Rule(#[from] RuleError),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl Refuse for SegmentError {
    fn refusal(&self) -> Refusal {
        match self {
            SegmentError::NotFound(_) | SegmentError::SnapshotNotFound(_) => {
                Refusal::NotFound("not_found")
            }
            SegmentError::Exists(_) => Refusal::Conflict("exists"),
            SegmentError::Rule(r) => r.refusal(),
            SegmentError::Name(_) => Refusal::Invalid,
            SegmentError::Db(_) => Refusal::Internal,
        }
    }
}

fn check_name(name: &str) -> Result<String, SegmentError> {
    let n = name.trim();
    if n.is_empty() || n.chars().count() > 60 || n.chars().any(char::is_control) {
        return Err(SegmentError::Name(
            "must be 1–60 characters without control characters".into(),
        ));
    }
    Ok(n.to_owned())
}

const COLS: &str = "id, name, rule, created_by, created_at, updated_at";

pub async fn list(db: &Db, tenant: TenantId) -> DbResult<Vec<SegmentRow>> {
    db.fetch_all(
        &sql(format!(
            "SELECT {COLS} FROM segments WHERE tenant_id = $1 ORDER BY updated_at DESC, id DESC"
        ))
        .bind(tenant),
    )
    .await
}

pub async fn get(db: &Db, tenant: TenantId, id: i64) -> Result<SegmentRow, SegmentError> {
    db.fetch_optional(
        &sql(format!(
            "SELECT {COLS} FROM segments WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant)
        .bind(id),
    )
    .await?
    .ok_or(SegmentError::NotFound(id))
}

async fn name_taken(db: &Db, tenant: TenantId, name: &str, except: i64) -> DbResult<bool> {
    let row: Option<(i64,)> = db
        .fetch_optional(
            &sql("SELECT id FROM segments WHERE tenant_id = $1 AND name = $2 AND id <> $3")
                .bind(tenant)
                .bind(name)
                .bind(except),
        )
        .await?;
    Ok(row.is_some())
}

pub async fn create(
    db: &Db,
    tenant: TenantId,
    name: &str,
    rule: &Rule,
    by: &str,
    now: i64,
) -> Result<SegmentRow, SegmentError> {
    let name = check_name(name)?;
    rule.check()?;
    if name_taken(db, tenant, &name, 0).await? {
        return Err(SegmentError::Exists(name));
    }
    let mut tx = db.begin().await?;
    let id = tx.reserve_ids("segment", 1).await?;
    let row = tx
        .fetch_one(
            &sql(format!(
                "INSERT INTO segments (id, tenant_id, name, rule, created_by, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLS}"
            ))
            .bind(id)
            .bind(tenant)
            .bind(name)
            .bind(rule.to_json().to_string())
            .bind(by)
            .bind(now)
            .bind(now),
        )
        .await?;
    tx.commit().await?;
    Ok(row)
}

pub async fn update(
    db: &Db,
    tenant: TenantId,
    id: i64,
    name: Option<&str>,
    rule: Option<&Rule>,
    now: i64,
) -> Result<SegmentRow, SegmentError> {
    let old = get(db, tenant, id).await?;
    let name = match name {
        Some(n) => check_name(n)?,
        None => old.name,
    };
    if name_taken(db, tenant, &name, id).await? {
        return Err(SegmentError::Exists(name));
    }
    let rule_text = match rule {
        Some(r) => {
            r.check()?;
            r.to_json().to_string()
        }
        None => old.rule,
    };
    db.execute(
        &sql("UPDATE segments SET name = $1, rule = $2, updated_at = $3 WHERE tenant_id = $4 AND id = $5")
            .bind(name)
            .bind(rule_text)
            .bind(now)
            .bind(tenant)
            .bind(id),
    )
    .await?;
    get(db, tenant, id).await
}

pub async fn delete(db: &Db, tenant: TenantId, id: i64) -> Result<(), SegmentError> {
    get(db, tenant, id).await?;
    db.execute(
        &sql("DELETE FROM segments WHERE tenant_id = $1 AND id = $2")
            .bind(tenant)
            .bind(id),
    )
    .await?;
    Ok(())
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct SnapshotRow {
    pub id: i64,
    pub segment_id: i64,
    pub size: i64,
    pub taken_by: String,
    pub taken_at: i64,
}

/// Freezes a segment's members (as the audience index has them now).
pub async fn take_snapshot(
    db: &Db,
    tenant: TenantId,
    segment: &SegmentRow,
    members: &RoaringBitmap,
    by: &str,
    now: i64,
) -> Result<SnapshotRow, SegmentError> {
    let mut blob = Vec::with_capacity(members.serialized_size());
    members
        .serialize_into(&mut blob)
        .map_err(|e| DbError::from(sqlx::Error::Io(e)))?;
    let mut tx = db.begin().await?;
    let id = tx.reserve_ids("snapshot", 1).await?;
    let row = tx
        .fetch_one(
            &sql(
                "INSERT INTO segment_snapshots (id, tenant_id, segment_id, rule, size, members, taken_by, taken_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id, segment_id, size, taken_by, taken_at",
            )
            .bind(id)
            .bind(tenant)
            .bind(segment.id)
            .bind(segment.rule.as_str())
            .bind(members.len() as i64)
            .bind(blob)
            .bind(by)
            .bind(now),
        )
        .await?;
    tx.commit().await?;
    Ok(row)
}

pub async fn snapshots(db: &Db, tenant: TenantId, segment: i64) -> DbResult<Vec<SnapshotRow>> {
    db.fetch_all(
        &sql(
            "SELECT id, segment_id, size, taken_by, taken_at FROM segment_snapshots \
             WHERE tenant_id = $1 AND segment_id = $2 ORDER BY taken_at DESC, id DESC",
        )
        .bind(tenant)
        .bind(segment),
    )
    .await
}

/// A snapshot with its segment's name, as a campaign's audience is picked from them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedSnapshot {
    pub id: i64,
    /// The segment's name, or `#id` when the segment was deleted since.
    pub segment: String,
    pub size: i64,
    pub taken_at: i64,
}

/// The tenant's latest snapshots, newest first, with their segments' names.
pub async fn recent_snapshots(
    db: &Db,
    tenant: TenantId,
    limit: i64,
) -> DbResult<Vec<NamedSnapshot>> {
    let rows: Vec<(i64, i64, Option<String>, i64, i64)> = db
        .fetch_all(
            &sql(
                "SELECT s.id, s.segment_id, g.name, s.size, s.taken_at FROM segment_snapshots s \
                 LEFT JOIN segments g ON g.tenant_id = s.tenant_id AND g.id = s.segment_id \
                 WHERE s.tenant_id = $1 ORDER BY s.taken_at DESC, s.id DESC LIMIT $2",
            )
            .bind(tenant)
            .bind(limit),
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, segment_id, name, size, taken_at)| NamedSnapshot {
            id,
            segment: name.unwrap_or_else(|| format!("#{segment_id}")),
            size,
            taken_at,
        })
        .collect())
}

/// How many people a snapshot froze, without reading its members; `None` when the tenant has no
/// such snapshot.
pub async fn snapshot_size(db: &Db, tenant: TenantId, id: i64) -> DbResult<Option<i64>> {
    let row: Option<(i64,)> = db
        .fetch_optional(
            &sql("SELECT size FROM segment_snapshots WHERE tenant_id = $1 AND id = $2")
                .bind(tenant)
                .bind(id),
        )
        .await?;
    Ok(row.map(|(n,)| n))
}

/// A snapshot's members.
pub async fn snapshot_members(
    db: &Db,
    tenant: TenantId,
    snapshot: i64,
) -> Result<(SnapshotRow, RoaringBitmap), SegmentError> {
    let row: Option<(i64, i64, i64, String, i64, Vec<u8>)> = db
        .fetch_optional(
            &sql(
                "SELECT id, segment_id, size, taken_by, taken_at, members FROM segment_snapshots \
                 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant)
            .bind(snapshot),
        )
        .await?;
    let (id, segment_id, size, taken_by, taken_at, blob) =
        row.ok_or(SegmentError::SnapshotNotFound(snapshot))?;
    let members = RoaringBitmap::deserialize_from(&blob[..])
        .map_err(|e| DbError::from(sqlx::Error::Io(e)))?;
    Ok((
        SnapshotRow {
            id,
            segment_id,
            size,
            taken_by,
            taken_at,
        },
        members,
    ))
}

/// Customers read per statement and per piece of a streamed export.
const EXPORT_CHUNK: usize = 1_000;

/// The columns of a members export, as the API writes them (for programs).
pub const EXPORT_HEADER: [&str; 8] = [
    "customer_id",
    "name",
    "phone",
    "stage",
    "rfm_class",
    "orders",
    "spend_yuan",
    "last_order",
];

/// The same columns as a Chinese operator reads them in Excel.
pub const EXPORT_HEADER_ZH: [&str; 8] = [
    "客户ID",
    "姓名",
    "手机号",
    "生命周期",
    "RFM 分类",
    "订单数",
    "消费金额（元）",
    "最近购买",
];

fn csv_error(e: impl std::fmt::Display) -> SegmentError {
    DbError::from(sqlx::Error::Io(std::io::Error::other(e.to_string()))).into()
}

/// Members as CSV for an operator, under `header` ([`EXPORT_HEADER`] or
/// [`EXPORT_HEADER_ZH`]): id, name, phone (masked unless `unmask`), stage, RFM class,
/// purchases, spend in yuan and last purchase in China time, after a BOM so that Excel reads
/// UTF-8 Chinese.
///
/// Sent as a stream of pieces, one per [`EXPORT_CHUNK`] customers: a large segment
/// is never held whole, and the next piece is read only when the client has taken the last.
/// A store error ends the stream with an error, so the download fails rather than looks whole.
pub fn export_stream(
    db: Db,
    cipher: crate::platform::crypto::FieldCipher,
    tenant: TenantId,
    members: RoaringBitmap,
    unmask: bool,
    header: &'static [&'static str; 8],
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static {
    let ids: std::sync::Arc<[i64]> = members.iter().map(i64::from).collect();
    // None: the head is still to send; Some(i): the chunk from position i.
    futures_util::stream::try_unfold(None::<usize>, move |at| {
        let (db, cipher, ids) = (db.clone(), cipher.clone(), ids.clone());
        async move {
            let start = match at {
                None => return Ok(Some((export_head(header)?, Some(0)))),
                Some(i) if i >= ids.len() => return Ok(None),
                Some(i) => i,
            };
            let end = (start + EXPORT_CHUNK).min(ids.len());
            let rows = export_rows(&db, &cipher, tenant, &ids[start..end], unmask).await?;
            Ok(Some((rows, Some(end))))
        }
    })
    .map_err(move |e: SegmentError| {
        tracing::error!(tenant = %tenant, error = %e, "a segment export stopped");
        std::io::Error::other(e.to_string())
    })
}

fn export_head(header: &[&str; 8]) -> Result<Vec<u8>, SegmentError> {
    let mut w = csv::Writer::from_writer(b"\xEF\xBB\xBF".to_vec());
    w.write_record(header).map_err(csv_error)?;
    w.into_inner().map_err(csv_error)
}

/// The rows of one chunk of customers, in id order.
async fn export_rows(
    db: &Db,
    cipher: &crate::platform::crypto::FieldCipher,
    tenant: TenantId,
    chunk: &[i64],
    unmask: bool,
) -> Result<Vec<u8>, SegmentError> {
    use crate::platform::clock::format_local;
    type Row = (
        i64,
        Option<String>,
        Option<i64>,
        Option<Fen>,
        Option<i64>,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let mut q = sql(format!(
        "SELECT c.id, c.display_name, s.order_count, s.spend, s.last_order_at, s.rfm_class, s.stage, \
         (SELECT i.value_enc FROM identities i WHERE i.tenant_id = c.tenant_id AND i.customer_id = c.id \
          AND i.kind = 'phone' ORDER BY i.first_seen LIMIT 1) \
         FROM customers c LEFT JOIN customer_stats s ON s.tenant_id = c.tenant_id AND s.customer_id = c.id \
         WHERE c.tenant_id = $1 AND c.id IN ({}) ORDER BY c.id",
        crate::platform::db::list_placeholders(chunk.len(), 2)
    ))
    .bind(tenant);
    for id in chunk {
        q.push_arg(*id);
    }
    let rows: Vec<Row> = db.fetch_all(&q).await?;
    let mut w = csv::Writer::from_writer(Vec::with_capacity(rows.len() * 80));
    for (id, name, count, spend, last, class, stage, phone) in rows {
        let phone = phone
            .map(|enc| {
                super::customers::show_identity(cipher, "phone", "", Some(&enc), unmask).value
            })
            .unwrap_or_default();
        let class = class
            .as_deref()
            .and_then(super::rfm::RfmClass::parse)
            .map(|c| c.zh().to_owned())
            .unwrap_or_default();
        let stage = stage
            .as_deref()
            .and_then(super::rfm::Stage::parse)
            .unwrap_or(super::rfm::Stage::Prospect);
        w.write_record([
            id.to_string(),
            inert(name.unwrap_or_default()),
            phone,
            stage.zh().to_owned(),
            class,
            count.unwrap_or(0).to_string(),
            plain_yuan(spend.unwrap_or(Fen::ZERO)),
            last.map(format_local).unwrap_or_default(),
        ])
        .map_err(csv_error)?;
    }
    w.into_inner().map_err(csv_error)
}

/// Buyer names come from outside: see [`crate::platform::spreadsheet::inert`].
fn inert(s: String) -> String {
    crate::platform::spreadsheet::inert(&s).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exported_text_never_runs_as_a_formula() {
        assert_eq!(inert("=HYPERLINK(\"x\")".into()), "'=HYPERLINK(\"x\")");
        assert_eq!(inert("张三".into()), "张三");
        assert_eq!(plain_yuan(Fen::new(-1_050)), "-10.50");
        assert_eq!(plain_yuan(Fen::new(123_456)), "1234.56");
    }
}
