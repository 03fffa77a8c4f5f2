//! Behaviour events pushed by other systems: idempotent by the sender's id, resolved to customers.

use crate::know::CustomerId;
use crate::platform::TenantId;
use serde::Deserialize;
use serde_json::Value as Json;

use super::audience::{EventsWritten, StoredEvent};
use super::identity::{Identity, IdentityInput};
use super::oneid::{self, IdentityRecord};
use crate::platform::crypto::{FieldCipher, TenantLookup};
use foldhash::HashSet;

use crate::platform::db::{DbResult, MAX_BINDS, Tx, sql, values_placeholders};

/// Largest batch `POST /api/v1/events` takes.
pub const MAX_BATCH: usize = 1000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventInput {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub identities: Vec<IdentityInput>,
    #[serde(default)]
    pub properties: Option<Json>,
    /// UTC milliseconds, or an RFC 3339 string.
    pub timestamp: Json,
    #[serde(default)]
    pub channel: Option<String>,
    #[serde(default)]
    pub touchpoint: Option<String>,
}

/// A checked event ready to store.
#[derive(Debug, Clone)]
pub struct Event {
    pub key: String,
    pub kind: String,
    pub identities: Vec<Identity>,
    pub properties: String,
    pub occurred_at: i64,
    pub channel: Option<String>,
    pub touchpoint: Option<String>,
}

/// A field-level problem with one input item.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ItemError {
    pub field: String,
    pub reason: String,
}

fn item_err(field: &str, reason: impl Into<String>) -> ItemError {
    ItemError {
        field: field.to_owned(),
        reason: reason.into(),
    }
}

fn check_name(field: &str, v: &str, max: usize) -> Result<String, ItemError> {
    let v = v.trim();
    if v.is_empty()
        || v.len() > max
        || !v
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(&b))
    {
        return Err(item_err(
            field,
            format!("{v:?} must be 1–{max} of a-z, 0-9, _ . : -"),
        ));
    }
    Ok(v.to_owned())
}

/// Earliest and latest times accepted (2000-01-01 and now + 1 day): protects reports from
/// seconds-for-milliseconds mistakes.
fn check_time(field: &str, t: &Json, now: i64) -> Result<i64, ItemError> {
    let ms = match t {
        Json::Number(n) => n
            .as_i64()
            .ok_or_else(|| item_err(field, "must be whole UTC milliseconds"))?,
        Json::String(s) => chrono::DateTime::parse_from_rfc3339(s)
            .map_err(|_| {
                item_err(
                    field,
                    format!("{s:?} is not RFC 3339 (e.g. 2024-06-18T10:01:02+08:00)"),
                )
            })?
            .timestamp_millis(),
        _ => {
            return Err(item_err(
                field,
                "must be UTC milliseconds or an RFC 3339 string",
            ));
        }
    };
    if !(946_684_800_000..=now + 86_400_000).contains(&ms) {
        return Err(item_err(
            field,
            format!("{ms} is outside 2000-01-01 … now+1 day (milliseconds, not seconds?)"),
        ));
    }
    Ok(ms)
}

impl EventInput {
    pub fn check(self, now: i64) -> Result<Event, ItemError> {
        let key = self.id.trim().to_owned();
        if key.is_empty() || key.chars().count() > 128 || key.chars().any(char::is_control) {
            return Err(item_err(
                "id",
                "must be 1–128 characters without control characters",
            ));
        }
        let kind = check_name("type", &self.kind, 64)?;
        let occurred_at = check_time("timestamp", &self.timestamp, now)?;
        let mut identities = Vec::with_capacity(self.identities.len());
        for (i, id) in self.identities.iter().enumerate() {
            identities.push(
                id.parse()
                    .map_err(|e| item_err(&format!("identities[{i}]"), e.to_string()))?,
            );
        }
        let properties = match self.properties {
            None | Some(Json::Null) => "{}".to_owned(),
            Some(p @ Json::Object(_)) => p.to_string(),
            Some(_) => return Err(item_err("properties", "must be an object")),
        };
        if properties.len() > 16 * 1024 {
            return Err(item_err("properties", "larger than 16 KiB"));
        }
        let channel = self
            .channel
            .as_deref()
            .map(|c| check_name("channel", c, 32))
            .transpose()?;
        let touchpoint = self
            .touchpoint
            .as_deref()
            .map(|c| check_name("touchpoint", c, 64))
            .transpose()?;
        Ok(Event {
            key,
            kind,
            identities,
            properties,
            occurred_at,
            channel,
            touchpoint,
        })
    }
}

#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct EventOutcome {
    pub stored: u64,
    pub duplicates: u64,
}

const EVENT_COLS: usize = 10;

/// A checked event with its identities keyed (phones hashed and encrypted), which takes CPU
/// best spent before the write lock is taken.
#[derive(Debug, Clone)]
pub struct KeyedEvent {
    pub event: Event,
    pub identities: IdentityRecord,
}

impl KeyedEvent {
    pub fn new(event: Event, cipher: &FieldCipher, lookup: &TenantLookup) -> KeyedEvent {
        let identities = IdentityRecord {
            identities: event
                .identities
                .iter()
                .map(|i| i.key(cipher, lookup))
                .collect(),
            name: None,
        };
        KeyedEvent { event, identities }
    }
}

/// Stores events inside the caller's transaction, which holds the tenant lock. Returns, per
/// event, whether it was stored (`false`: its id was seen before, here or earlier), and the
/// customers the stored events belong to.
pub async fn store_events_in(
    tx: &mut Tx,
    tenant_id: TenantId,
    events: &[&KeyedEvent],
    now: i64,
) -> DbResult<(Vec<bool>, EventsWritten)> {
    // A duplicate changes nothing: drop ids already stored (and repeats within the batch)
    // before their identities can create or merge customers.
    let rows: Vec<(String,)> = tx
        .fetch_in(
            "SELECT event_key FROM events WHERE tenant_id = $1 AND event_key",
            &[tenant_id.into()],
            events.iter().map(|e| e.event.key.as_str().into()).collect(),
        )
        .await?;
    let known: HashSet<String> = rows.into_iter().map(|r| r.0).collect();
    let mut in_batch: HashSet<&str> =
        HashSet::with_capacity_and_hasher(events.len(), Default::default());
    let flags: Vec<bool> = events
        .iter()
        .map(|e| !known.contains(&e.event.key) && in_batch.insert(e.event.key.as_str()))
        .collect();
    let fresh: Vec<&KeyedEvent> = events
        .iter()
        .zip(&flags)
        .filter(|(_, f)| **f)
        .map(|(e, _)| *e)
        .collect();
    if fresh.is_empty() {
        return Ok((vec![false; events.len()], EventsWritten::default()));
    }
    let keyed: Vec<&IdentityRecord> = fresh.iter().map(|e| &e.identities).collect();
    let (owners, rs) = oneid::resolve(tx, tenant_id, &keyed, now).await?;
    let first = tx.reserve_ids("event", fresh.len() as i64).await?;
    let idx: Vec<usize> = (0..fresh.len()).collect();
    let stored = tx
        .execute_each(idx.chunks(MAX_BINDS / EVENT_COLS).map(|batch| {
            let mut q = sql(format!(
                "INSERT INTO events (id, tenant_id, event_key, customer_id, type, channel, touchpoint, occurred_at, received_at, properties) \
                 VALUES {} ON CONFLICT (tenant_id, event_key) DO NOTHING",
                values_placeholders(batch.len(), EVENT_COLS, 1)
            ));
            for &i in batch {
                let e = &fresh[i].event;
                q.push_arg(first + i as i64);
                q.push_arg(tenant_id);
                q.push_arg(e.key.as_str());
                q.push_arg(owners[i]);
                q.push_arg(e.kind.as_str());
                q.push_arg(e.channel.as_deref());
                q.push_arg(e.touchpoint.as_deref());
                q.push_arg(e.occurred_at);
                q.push_arg(now);
                q.push_arg(e.properties.as_str());
            }
            q
        }))
        .await?;
    debug_assert_eq!(
        stored as usize,
        fresh.len(),
        "under the tenant lock every fresh event is new"
    );
    let events = fresh
        .iter()
        .zip(&owners)
        .filter_map(|(e, owner)| {
            let customer = (*owner)?;
            let counted = rs.reshaped.binary_search(&customer).is_err();
            counted.then(|| StoredEvent {
                customer: CustomerId::new(customer),
                kind: e.event.kind.clone(),
                at: e.event.occurred_at,
            })
        })
        .collect();
    let touched = EventsWritten {
        merged: rs.customers_merged > 0,
        reshaped: rs.reshaped,
        events,
    };
    Ok((flags, touched))
}
