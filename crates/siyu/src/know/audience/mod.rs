//! The audience index engine: one [`TenantIndex`] per tenant, built from the store on first use
//! and kept current after every write, while the store stays the source of truth. Writers tell
//! it which customers changed; it reloads exactly those customers from the store, so a repeated
//! or late notice is harmless. Rule tags are re-evaluated after each change.

use crate::know::CustomerId;
use crate::platform::TenantId;
mod changes;
mod load;
mod rebuild;
mod rule_tags;
mod schedule;
pub mod sql;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use roaring::RoaringBitmap;

use super::rule::Rule;
use crate::platform::clock::now_ms;
use crate::platform::db::Db;
use crate::platform::refusal::{Refusal, Refuse};
use load::{Scope, load_facts};

pub use index::{Facts, IndexSize, Query, StatsFact, TenantIndex};
pub use load::build_index;
pub use rebuild::{rebuild_versions, request_rebuild};

// The index, its bins and the day arithmetic are the crate `siyu-audience` (no store, no
// tenants); this module loads the index from the store and keeps it current.
pub use siyu_audience::{bins, day_start, event_window_start, index, local_day};

/// Customer ids in the index are u32; the store's ids are far below that.
fn id32(id: i64) -> Option<u32> {
    u32::try_from(id).ok()
}

#[derive(Debug, thiserror::Error)]
pub enum AudienceError {
    #[error(transparent)]
    Db(#[from] crate::platform::db::DbError),
    #[error("the audience index of tenant {0} is not available")]
    Unavailable(TenantId),
}

impl Refuse for AudienceError {
    fn refusal(&self) -> Refusal {
        match self {
            AudienceError::Db(_) => Refusal::Internal,
            AudienceError::Unavailable(_) => Refusal::Unavailable("unavailable"),
        }
    }
}

struct Slot {
    /// Held while the index is built or changed from the store, so reloads apply in order.
    maint: Arc<tokio::sync::Mutex<()>>,
    index: RwLock<Option<TenantIndex>>,
    /// Rule tags: (tag id, rule), loaded with the index and after tag changes.
    rule_tags: RwLock<Vec<(i64, Rule)>>,
    /// One rebuild at a time.
    rebuilding: tokio::sync::Mutex<()>,
    /// While a rebuild reads the store, the customers changed meanwhile; reloaded into the new
    /// index once it is in place.
    pending: Mutex<Option<Vec<i64>>>,
    /// What reads of the store may have seen, as the event writer's group numbers (see
    /// [`Audiences::events_written`]): the whole index as of the last build, and customers
    /// reloaded since, each as of its reload.
    covered: Mutex<Covered>,
}

#[derive(Default)]
struct Covered {
    all: u64,
    customers: HashMap<i64, u64>,
    /// The latest group counted.
    counted: u64,
}

/// Every tenant's audience index. Cheap to share (`Arc`).
pub struct Audiences {
    db: Db,
    slots: Mutex<HashMap<TenantId, Arc<Slot>>>,
    /// Event writer groups begun (see [`Audiences::begin_write`]).
    writes_begun: AtomicU64,
}

/// What a write changed for some customers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Orders, identities, tags, attributes: reload everything about them (and recompute
    /// their purchase figures when `orders` is set).
    Customers { orders: bool },
}

/// What an event writer's group did to one tenant, for the index.
#[derive(Debug, Default, Clone)]
pub struct EventsWritten {
    /// Customers created, merged or given identities: more than their events changed, so the
    /// index reloads them whole (their new events with them).
    pub reshaped: Vec<i64>,
    /// Customers were merged: their orders moved, so purchase figures are recomputed.
    pub merged: bool,
    /// The events stored for every other customer, which the index counts on top.
    pub events: Vec<StoredEvent>,
}

/// An event just stored, as the index counts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub customer: CustomerId,
    pub kind: String,
    /// When it happened (UTC milliseconds).
    pub at: i64,
}

async fn owned_lock(slot: Arc<Slot>) -> tokio::sync::OwnedMutexGuard<()> {
    Arc::clone(&slot.maint).lock_owned().await
}

impl Audiences {
    pub fn new(db: Db) -> Arc<Audiences> {
        Arc::new(Audiences {
            db,
            slots: Mutex::new(HashMap::new()),
            writes_begun: AtomicU64::new(0),
        })
    }

    fn slot_entry(&self, tenant: TenantId) -> Arc<Slot> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots
            .entry(tenant)
            .or_insert_with(|| {
                Arc::new(Slot {
                    maint: Arc::new(tokio::sync::Mutex::new(())),
                    index: RwLock::new(None),
                    rule_tags: RwLock::new(Vec::new()),
                    rebuilding: tokio::sync::Mutex::new(()),
                    pending: Mutex::new(None),
                    covered: Mutex::default(),
                })
            })
            .clone()
    }

    /// The slot with its index built; the caller holds the maintenance lock.
    async fn built(
        &self,
        tenant: TenantId,
    ) -> Result<(Arc<Slot>, tokio::sync::OwnedMutexGuard<()>), AudienceError> {
        let slot = self.slot_entry(tenant);
        let lock = owned_lock(Arc::clone(&slot)).await;
        let missing = slot
            .index
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .is_none();
        if missing {
            let started = std::time::Instant::now();
            let ix = build_index(&self.db, tenant, now_ms(), |_, _| {}).await?;
            let rules = super::tags::rule_tags(&self.db, tenant).await?;
            tracing::info!(
                tenant = %tenant,
                customers = ix.universe.len(),
                ms = started.elapsed().as_millis() as u64,
                "audience index built"
            );
            *slot.index.write().unwrap_or_else(|p| p.into_inner()) = Some(ix);
            self.cover_all(&slot);
            *slot.rule_tags.write().unwrap_or_else(|p| p.into_inner()) = rules;
        }
        Ok((slot, lock))
    }

    /// Runs `f` on the tenant's index.
    pub async fn read<R>(
        &self,
        tenant: TenantId,
        f: impl FnOnce(&TenantIndex) -> R,
    ) -> Result<R, AudienceError> {
        let mut slot = self.slot_entry(tenant);
        let ready = slot
            .index
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .is_some();
        if !ready {
            // First use: build under the maintenance lock (a reader never waits on a writer's
            // reload otherwise).
            let (built, _lock) = self.built(tenant).await?;
            slot = built;
        }
        let guard = slot.index.read().unwrap_or_else(|p| p.into_inner());
        match guard.as_ref() {
            Some(ix) => Ok(f(ix)),
            None => Err(AudienceError::Unavailable(tenant)),
        }
    }

    /// Counts a rule's members now.
    pub async fn count(&self, tenant: TenantId, rule: &Rule) -> Result<u64, AudienceError> {
        let now = now_ms();
        self.read(tenant, |ix| ix.query(now).count(rule)).await
    }

    /// A rule's members now.
    pub async fn members(
        &self,
        tenant: TenantId,
        rule: &Rule,
    ) -> Result<RoaringBitmap, AudienceError> {
        let now = now_ms();
        self.read(tenant, |ix| ix.query(now).members(rule)).await
    }

    /// The index as a whole now covers every group begun so far.
    fn cover_all(&self, slot: &Slot) {
        let mut c = slot.covered.lock().unwrap_or_else(|p| p.into_inner());
        c.all = self.writes_begun.load(Ordering::SeqCst);
        c.customers.clear();
    }
}
