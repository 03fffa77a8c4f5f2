//! The tenant's own readings of order status texts (`import.status_map`). A text an export
//! writes that Siyu does not know keeps its order as `unknown`; once the tenant names the text's
//! status here, every order carrying it is re-read. The map also overrides a built-in reading
//! (JD's "锁定" is an after-sale lock at some shops, a risk hold at others).

use crate::platform::TenantId;
use std::collections::BTreeMap;

use foldhash::HashMap;
use serde::Serialize;

use crate::know::orders::{OrderStatus, normalise_status};
use crate::platform::db::{Db, DbResult, sql};
use crate::platform::refusal::{Refusal, Refuse};
use crate::platform::tenant_settings;

/// The setting's name.
pub const SETTING: &str = "import.status_map";
/// Longer texts are cut: a status cell is a few words, anything longer is not one.
pub const MAX_TEXT_CHARS: usize = 64;
const MAX_ENTRIES: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum StatusMapError {
    #[error("status_map: a status text is empty")]
    EmptyText,
    #[error(
        "status_map[{text:?}]: {status:?} is not one of pending, paid, shipped, completed, refunded, closed"
    )]
    NotAStatus { text: String, status: String },
    #[error("status_map: at most {MAX_ENTRIES} texts")]
    TooMany,
    #[error("status_map: {0}")]
    Db(#[from] crate::platform::db::DbError),
}

impl Refuse for StatusMapError {
    fn refusal(&self) -> Refusal {
        match self {
            StatusMapError::Db(_) => Refusal::Internal,
            _ => Refusal::Invalid,
        }
    }
}

/// Texts as the tenant wrote them, each with the status it reads as.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusMap {
    written: BTreeMap<String, OrderStatus>,
    by_key: HashMap<String, OrderStatus>,
}

impl StatusMap {
    /// Checks a map as the tenant gives it: text → status name (`paid`, or a platform wording
    /// Siyu reads, such as "交易成功"). `unknown` is not a reading.
    pub fn new<I, S>(entries: I) -> Result<StatusMap, StatusMapError>
    where
        I: IntoIterator<Item = (S, S)>,
        S: AsRef<str>,
    {
        let mut map = StatusMap::default();
        for (text, status) in entries {
            let (text, status) = (text.as_ref().trim(), status.as_ref().trim());
            if text.is_empty() {
                return Err(StatusMapError::EmptyText);
            }
            let read = OrderStatus::parse(status)
                .filter(|s| *s != OrderStatus::Unknown)
                .ok_or_else(|| StatusMapError::NotAStatus {
                    text: text.to_owned(),
                    status: status.to_owned(),
                })?;
            map.written.insert(cut(text), read);
            map.by_key.insert(normalise_status(text), read);
            if map.written.len() > MAX_ENTRIES {
                return Err(StatusMapError::TooMany);
            }
        }
        Ok(map)
    }

    /// Reads a status cell: the tenant's reading, else Siyu's, else `unknown`. The text comes
    /// back with the status, to be kept with the order, so that a later map re-reads it (and can
    /// override Siyu's own reading).
    pub fn read(&self, text: &str) -> (OrderStatus, Option<String>) {
        let kept = Some(cut(text.trim()));
        if let Some(s) = self.by_key.get(&normalise_status(text)) {
            return (*s, kept);
        }
        (
            OrderStatus::parse(text).unwrap_or(OrderStatus::Unknown),
            kept,
        )
    }

    /// The entries as written, in text order.
    pub fn entries(&self) -> impl Iterator<Item = (&str, OrderStatus)> {
        self.written.iter().map(|(t, s)| (t.as_str(), *s))
    }

    pub fn is_empty(&self) -> bool {
        self.written.is_empty()
    }
}

fn cut(text: &str) -> String {
    text.chars().take(MAX_TEXT_CHARS).collect()
}

/// The tenant's map (empty when never saved).
pub async fn load(db: &Db, tenant: TenantId) -> DbResult<StatusMap> {
    let saved: Option<BTreeMap<String, String>> = tenant_settings::get(db, tenant, SETTING).await?;
    // A saved map was checked when saved; one that no longer reads is treated as empty.
    Ok(saved
        .and_then(|m| StatusMap::new(m.iter().map(|(a, b)| (a.as_str(), b.as_str()))).ok())
        .unwrap_or_default())
}

/// Saves the map and re-reads every order whose status came from a text; returns how many
/// orders changed status (the caller brings the buyers' figures up to date).
pub async fn save(db: &Db, tenant: TenantId, map: &StatusMap, now: i64) -> DbResult<u64> {
    let doc: BTreeMap<&str, &str> = map.entries().map(|(t, s)| (t, s.as_str())).collect();
    tenant_settings::put(db, tenant, SETTING, &doc, now).await?;
    reread(db, tenant, map).await
}

/// Re-reads the status of every order that carries a status text (every imported order, and
/// synced orders whose platform code the client did not know), by the map.
pub async fn reread(db: &Db, tenant: TenantId, map: &StatusMap) -> DbResult<u64> {
    let texts: Vec<(String, String)> = db
        .fetch_all(
            &sql("SELECT DISTINCT status_text, status FROM orders \
                 WHERE tenant_id = $1 AND status_text IS NOT NULL")
            .bind(tenant),
        )
        .await?;
    let mut changed = 0;
    for (text, was) in texts {
        let (now_reads, _) = map.read(&text);
        if now_reads.as_str() != was {
            changed += db
                .execute(
                    &sql("UPDATE orders SET status = $1 \
                         WHERE tenant_id = $2 AND status_text = $3 AND status = $4")
                    .bind(now_reads.as_str())
                    .bind(tenant)
                    .bind(text)
                    .bind(was),
                )
                .await?;
        }
    }
    Ok(changed)
}

/// The status texts no one reads yet, with how many orders carry each, most first (what the
/// console asks the tenant to read).
pub async fn waiting(db: &Db, tenant: TenantId) -> DbResult<Vec<(String, i64)>> {
    let mut rows: Vec<(String, i64)> = db
        .fetch_all(
            &sql(
                "SELECT status_text, COUNT(*) FROM orders \
                 WHERE tenant_id = $1 AND status = 'unknown' AND status_text IS NOT NULL GROUP BY status_text",
            )
            .bind(tenant),
        )
        .await?;
    rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(rows)
}

/// A status text the tenant's orders carry, with how it reads now and how many orders carry it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct StatusText {
    pub text: String,
    pub status: String,
    pub orders: i64,
    /// Whether the tenant's map names it (else Siyu reads it, or it is unknown).
    pub mapped: bool,
}

/// Every status text on the tenant's orders, unknown ones first, then by how many orders.
pub async fn texts(db: &Db, tenant: TenantId, map: &StatusMap) -> DbResult<Vec<StatusText>> {
    let rows: Vec<(String, String, i64)> = db
        .fetch_all(
            &sql("SELECT status_text, status, COUNT(*) FROM orders \
                 WHERE tenant_id = $1 AND status_text IS NOT NULL GROUP BY status_text, status")
            .bind(tenant),
        )
        .await?;
    let mut out: Vec<StatusText> = rows
        .into_iter()
        .map(|(text, status, orders)| StatusText {
            mapped: map.by_key.contains_key(&normalise_status(&text)),
            text,
            status,
            orders,
        })
        .collect();
    out.sort_by(|a, b| {
        (b.status == "unknown", b.orders, &a.text).cmp(&(a.status == "unknown", a.orders, &b.text))
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tenants_reading_comes_first_then_siyus_then_unknown() {
        let map = StatusMap::new([("售后中", "paid"), ("锁定", "closed")]).expect("a map");
        assert_eq!(
            map.read("售后中"),
            (OrderStatus::Paid, Some("售后中".into()))
        );
        // Written with spaces or full width, the map still names it.
        assert_eq!(map.read(" 售后 中 ").0, OrderStatus::Paid);
        assert_eq!(map.read("锁定").0, OrderStatus::Closed);
        assert_eq!(
            map.read("交易成功"),
            (OrderStatus::Completed, Some("交易成功".into()))
        );
        // Written literally, "unknown" is unknown, and mappable.
        assert_eq!(map.read("unknown").0, OrderStatus::Unknown);
        assert_eq!(
            map.read("待成团"),
            (OrderStatus::Unknown, Some("待成团".into()))
        );
        let long = "很".repeat(100);
        assert_eq!(
            map.read(&long).1.map(|t| t.chars().count()),
            Some(MAX_TEXT_CHARS)
        );
    }

    #[test]
    fn a_map_names_real_statuses_only() {
        assert!(matches!(
            StatusMap::new([("售后中", "unknown")]),
            Err(StatusMapError::NotAStatus { .. })
        ));
        assert!(matches!(
            StatusMap::new([("售后中", "sold")]),
            Err(StatusMapError::NotAStatus { .. })
        ));
        assert!(matches!(
            StatusMap::new([(" ", "paid")]),
            Err(StatusMapError::EmptyText)
        ));
        // A platform wording is a reading too.
        assert_eq!(
            StatusMap::new([("售后中", "交易成功")])
                .expect("a map")
                .read("售后中")
                .0,
            OrderStatus::Completed
        );
    }
}
