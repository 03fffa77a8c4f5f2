//! The audience index engine: one [`TenantIndex`] per tenant, built from the store on first use
//! and kept current after every write, while the store stays the source of truth. Writers tell
//! it which customers changed; it reloads exactly those customers from the store, so a repeated
//! or late notice is harmless. Rule tags are re-evaluated after each change.

pub mod bins;
pub mod index;
pub mod sql;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use roaring::RoaringBitmap;

use super::orders::PURCHASE_STATUSES;
use super::rfm::{DAY_MS, RfmClass, Stage};
use super::rule::{MAX_EVENT_DAYS, Rule};
use crate::platform::clock::now_ms;
use crate::platform::db::{Db, DbResult, Value, list_placeholders, sql};
pub use index::{Facts, IndexSize, Query, StatsFact, TenantIndex};

const CHINA_OFFSET_MS: i64 = 8 * 3_600_000;

/// The day number (days since 1970-01-01) of a UTC millisecond time in China.
pub fn local_day(ms: i64) -> i32 {
    (ms + CHINA_OFFSET_MS).div_euclid(DAY_MS) as i32
}

/// The first millisecond of a China day.
pub fn day_start(day: i32) -> i64 {
    i64::from(day) * DAY_MS - CHINA_OFFSET_MS
}

/// The earliest event time a rule of `days` days can see at `now`.
pub fn event_window_start(days: u32, now: i64) -> i64 {
    day_start(local_day(now) - (days as i32 - 1))
}

/// Customer ids in the index are u32; the store's ids are far below that.
fn id32(id: i64) -> Option<u32> {
    u32::try_from(id).ok()
}

/// Ids in one load: a range of ids (a build) or a list (a refresh).
enum Scope<'a> {
    Range(i64, i64),
    Ids(&'a [i64]),
}

impl Scope<'_> {
    /// `column` restricted to the scope, with its parameters numbered from `first`.
    fn clause(&self, column: &str, first: usize) -> (String, Vec<Value>) {
        match self {
            Scope::Range(lo, hi) => (
                format!("{column} >= ${first} AND {column} < ${}", first + 1),
                vec![(*lo).into(), (*hi).into()],
            ),
            Scope::Ids(ids) => (
                format!("{column} IN ({})", list_placeholders(ids.len(), first)),
                ids.iter().map(|i| Value::from(*i)).collect(),
            ),
        }
    }
}

async fn fetch<T: crate::platform::db::Row>(
    db: &Db,
    head: &str,
    tenant: i64,
    extra: &[Value],
    scope: &Scope<'_>,
    column: &str,
    tail: &str,
) -> DbResult<Vec<T>> {
    let (clause, args) = scope.clause(column, 2 + extra.len());
    let mut q = sql(format!("{head} AND {clause}{tail}")).bind(tenant);
    for v in extra.iter().cloned().chain(args) {
        q.push_arg(v);
    }
    db.fetch_all(&q).await
}

/// (customer, text) rows of a query restricted to the scope by `customer_id`.
async fn pairs(
    db: &Db,
    head: &str,
    tenant: i64,
    scope: &Scope<'_>,
) -> DbResult<Vec<(u32, String)>> {
    let rows: Vec<(i64, String)> = fetch(db, head, tenant, &[], scope, "customer_id", "").await?;
    Ok(rows
        .into_iter()
        .filter_map(|(c, v)| Some((id32(c)?, v)))
        .collect())
}

/// Loads what the index holds about the customers in `scope`.
async fn load_facts(db: &Db, tenant: i64, scope: &Scope<'_>, now: i64) -> DbResult<Facts> {
    let mut f = Facts::default();
    let rows: Vec<(i64,)> = fetch(
        db,
        "SELECT id FROM customers WHERE tenant_id = $1 AND merged_into IS NULL",
        tenant,
        &[],
        scope,
        "id",
        "",
    )
    .await?;
    f.customers = rows.into_iter().filter_map(|r| id32(r.0)).collect();
    type StatsRow = (i64, i64, i64, i64, i64, i64, i64, String, String);
    let rows: Vec<StatsRow> = fetch(
        db,
        "SELECT customer_id, order_count, spend, last_order_at, r_score, f_score, m_score, rfm_class, stage \
         FROM customer_stats WHERE tenant_id = $1",
        tenant,
        &[],
        scope,
        "customer_id",
        "",
    )
    .await?;
    for (id, count, spend, last, r, fs, m, class, stage) in rows {
        let (Some(id), Some(class), Some(stage)) =
            (id32(id), RfmClass::parse(&class), Stage::parse(&stage))
        else {
            tracing::warn!(customer = id, "skipping unreadable purchase figures");
            continue;
        };
        f.stats.push((
            id,
            StatsFact {
                order_count: count,
                spend,
                last_order_at: last,
                r: r as u8,
                f: fs as u8,
                m: m as u8,
                class,
                stage,
            },
        ));
    }
    let rows: Vec<(i64, i64)> = fetch(
        db,
        "SELECT customer_id, tag_id FROM customer_tags WHERE tenant_id = $1",
        tenant,
        &[],
        scope,
        "customer_id",
        "",
    )
    .await?;
    f.tags = rows
        .into_iter()
        .filter_map(|(c, t)| Some((id32(c)?, t)))
        .collect();
    f.kinds = pairs(
        db,
        "SELECT DISTINCT customer_id, kind FROM identities WHERE tenant_id = $1",
        tenant,
        scope,
    )
    .await?;
    f.tiers = pairs(
        db,
        "SELECT customer_id, tier FROM members WHERE tenant_id = $1 AND tier IS NOT NULL",
        tenant,
        scope,
    )
    .await?;
    f.channels = pairs(
        db,
        &format!(
            "SELECT DISTINCT customer_id, channel FROM orders WHERE tenant_id = $1 AND status IN {PURCHASE_STATUSES}"
        ),
        tenant,
        scope,
    )
    .await?;
    let rows: Vec<(i64, Option<String>, Option<String>)> = fetch(
        db,
        &format!(
            "SELECT DISTINCT o.customer_id, l.category, l.sku FROM orders o \
             JOIN order_lines l ON l.order_id = o.id \
             WHERE o.tenant_id = $1 AND o.status IN {PURCHASE_STATUSES}"
        ),
        tenant,
        &[],
        scope,
        "o.customer_id",
        "",
    )
    .await?;
    for (c, cat, sku) in rows {
        let Some(c) = id32(c) else { continue };
        if let Some(cat) = cat {
            f.categories.push((c, cat));
        }
        if let Some(sku) = sku {
            f.skus.push((c, sku));
        }
    }
    let rows: Vec<(i64, String, String, Option<i64>)> = fetch(
        db,
        "SELECT customer_id, name, value, num FROM customer_attributes WHERE tenant_id = $1",
        tenant,
        &[],
        scope,
        "customer_id",
        "",
    )
    .await?;
    f.attrs = rows
        .into_iter()
        .filter_map(|(c, n, v, x)| Some((id32(c)?, n, v, x)))
        .collect();
    f.events = load_events(db, tenant, scope, now).await?;
    Ok(f)
}

async fn load_events(
    db: &Db,
    tenant: i64,
    scope: &Scope<'_>,
    now: i64,
) -> DbResult<Vec<(u32, String, i64)>> {
    let rows: Vec<(i64, String, i64)> = fetch(
        db,
        "SELECT customer_id, type, occurred_at FROM events WHERE tenant_id = $1 AND occurred_at >= $2",
        tenant,
        &[event_window_start(MAX_EVENT_DAYS, now).into()],
        scope,
        "customer_id",
        "",
    )
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(c, t, at)| Some((id32(c)?, t, at)))
        .collect())
}

/// Ids per build query: one roaring container's worth at a time, times four.
const BUILD_STEP: i64 = 1 << 18;
/// Ids per refresh query.
const REFRESH_CHUNK: usize = 2_000;

/// Builds a tenant's index from the store; `progress` hears (ids done, ids in all).
pub async fn build_index(
    db: &Db,
    tenant: i64,
    now: i64,
    mut progress: impl FnMut(u64, u64),
) -> DbResult<TenantIndex> {
    let (lo, hi): (Option<i64>, Option<i64>) = db
        .fetch_one(&sql("SELECT min(id), max(id) FROM customers WHERE tenant_id = $1").bind(tenant))
        .await?;
    let mut ix = TenantIndex::default();
    let (Some(lo), Some(hi)) = (lo, hi) else {
        return Ok(ix);
    };
    let mut at = lo;
    while at <= hi {
        let next = at.saturating_add(BUILD_STEP);
        let facts = load_facts(db, tenant, &Scope::Range(at, next), now).await?;
        ix.insert(facts);
        progress((next.min(hi + 1) - lo) as u64, (hi + 1 - lo) as u64);
        at = next;
    }
    Ok(ix)
}

#[derive(Debug, thiserror::Error)]
pub enum AudienceError {
    #[error(transparent)]
    Db(#[from] crate::platform::db::DbError),
    #[error("the audience index of tenant {0} is not available")]
    Unavailable(i64),
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
    slots: Mutex<HashMap<i64, Arc<Slot>>>,
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
    pub customer: i64,
    pub kind: String,
    /// When it happened (UTC milliseconds).
    pub at: i64,
}

impl Audiences {
    pub fn new(db: Db) -> Arc<Audiences> {
        Arc::new(Audiences {
            db,
            slots: Mutex::new(HashMap::new()),
            writes_begun: AtomicU64::new(0),
        })
    }

    fn slot_entry(&self, tenant: i64) -> Arc<Slot> {
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
        tenant: i64,
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
                tenant,
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

    /// Builds the index of every tenant now (at start), rather than on first use.
    pub async fn warm(&self) -> Result<(), AudienceError> {
        let tenants: Vec<(i64,)> = self
            .db
            .fetch_all(&sql("SELECT id FROM tenants ORDER BY id"))
            .await?;
        for (t,) in tenants {
            self.built(t).await?;
        }
        Ok(())
    }

    /// Runs `f` on the tenant's index.
    pub async fn read<R>(
        &self,
        tenant: i64,
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
    pub async fn count(&self, tenant: i64, rule: &Rule) -> Result<u64, AudienceError> {
        let now = now_ms();
        self.read(tenant, |ix| ix.query(now).count(rule)).await
    }

    /// A rule's members now.
    pub async fn members(&self, tenant: i64, rule: &Rule) -> Result<RoaringBitmap, AudienceError> {
        let now = now_ms();
        self.read(tenant, |ix| ix.query(now).members(rule)).await
    }

    /// Brings the index up to date with the store for these customers after a committed write.
    pub async fn changed(
        &self,
        tenant: i64,
        customers: &[i64],
        change: Change,
    ) -> Result<(), AudienceError> {
        if customers.is_empty() {
            return Ok(());
        }
        let (slot, _lock) = self.built(tenant).await?;
        let now = now_ms();
        let mut ids: Vec<i64> = customers.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let Change::Customers { orders } = change;
        self.reload_locked(tenant, &slot, &ids, orders, now).await?;
        self.refresh_rule_tags_locked(tenant, &slot, now).await
    }

    /// Numbers an event writer's group before it begins writing; the number goes with the
    /// group's events to [`Self::events_written`].
    pub fn begin_write(&self) -> u64 {
        self.writes_begun.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// The index as a whole now covers every group begun so far.
    fn cover_all(&self, slot: &Slot) {
        let mut c = slot.covered.lock().unwrap_or_else(|p| p.into_inner());
        c.all = self.writes_begun.load(Ordering::SeqCst);
        c.customers.clear();
    }

    /// Brings the index up to date with an event writer's committed group: reshaped customers
    /// are reloaded whole, and the events of the others counted on top. Each stored event is
    /// counted once, by its writer, instead of reloading every event of its customer: a reload
    /// costs what the customer ever did in the window, and an active customer's every new
    /// event paid that again.
    ///
    /// `write` is the group's number from [`Self::begin_write`]. A read of the store since
    /// that group began may have seen its events already: an index built or a customer
    /// reloaded since then (by another group's answer, a tag change, a rebuild) is not
    /// counted on but reloaded, which is always right. So is a customer the index does not
    /// hold (created by another process).
    pub async fn events_written(
        &self,
        tenant: i64,
        written: &EventsWritten,
        write: u64,
    ) -> Result<(), AudienceError> {
        if written.reshaped.is_empty() && written.events.is_empty() {
            return Ok(());
        }
        let (slot, _lock) = self.built(tenant).await?;
        let now = now_ms();
        if !written.reshaped.is_empty() {
            self.reload_locked(tenant, &slot, &written.reshaped, written.merged, now)
                .await?;
        }
        let events = &written.events;
        let mut ids: Vec<i64> = events.iter().map(|e| e.customer).collect();
        ids.sort_unstable();
        ids.dedup();
        let seen: Vec<i64> = {
            let mut c = slot.covered.lock().unwrap_or_else(|p| p.into_inner());
            if c.all >= write || write < c.counted {
                // Built since the group began, or a group out of order (a second writer):
                // reload, which is right in any case.
                ids.clone()
            } else {
                // Groups come in order: a reload before this one began matters to none.
                c.counted = write;
                c.customers.retain(|_, w| *w >= write);
                ids.iter()
                    .copied()
                    .filter(|id| c.customers.contains_key(id))
                    .collect()
            }
        };
        if let Some(p) = slot
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_mut()
        {
            // A rebuild is reading the store: it reloads these once the new index is in place.
            p.extend_from_slice(&ids);
        }
        let since = event_window_start(MAX_EVENT_DAYS, now);
        let reload: Vec<i64> = {
            let mut w = slot.index.write().unwrap_or_else(|p| p.into_inner());
            let Some(ix) = w.as_mut() else {
                return Ok(());
            };
            let counted_on = |c: i64| {
                id32(c).filter(|i| ix.universe.contains(*i) && seen.binary_search(&c).is_err())
            };
            let reload = ids
                .iter()
                .copied()
                .filter(|c| counted_on(*c).is_none())
                .collect();
            let counted: Vec<(u32, &str, i64)> = events
                .iter()
                .filter(|e| e.at >= since)
                .filter_map(|e| Some((counted_on(e.customer)?, e.kind.as_str(), e.at)))
                .collect();
            ix.add_events(&counted);
            reload
        };
        if !reload.is_empty() {
            self.reload_locked(tenant, &slot, &reload, false, now)
                .await?;
        }
        // Once per group, however the customers came up to date.
        self.refresh_rule_tags_locked(tenant, &slot, now).await
    }

    /// Reloads these customers whole from the store (sorted, distinct ids); the caller holds
    /// the slot's lock.
    async fn reload_locked(
        &self,
        tenant: i64,
        slot: &Slot,
        ids: &[i64],
        orders: bool,
        now: i64,
    ) -> Result<(), AudienceError> {
        if let Some(p) = slot
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_mut()
        {
            p.extend_from_slice(ids);
        }
        // Until a customer's reload is in the index, counting events on top of it could be
        // wrong either way: a later group's events reload it (and so does a failed reload).
        self.cover(slot, ids, u64::MAX);
        for chunk in ids.chunks(REFRESH_CHUNK) {
            // Customers merged into these are gone: take them out too.
            let merged: Vec<(i64,)> = self
                .db
                .fetch_in(
                    "SELECT id FROM customers WHERE tenant_id = $1 AND merged_into",
                    &[tenant.into()],
                    chunk.iter().map(|id| (*id).into()).collect(),
                )
                .await?;
            if orders {
                super::profile::recompute_customers(&self.db, tenant, chunk, now).await?;
            }
            let facts = load_facts(&self.db, tenant, &Scope::Ids(chunk), now).await?;
            let gone: RoaringBitmap = chunk
                .iter()
                .copied()
                .chain(merged.into_iter().map(|r| r.0))
                .filter_map(id32)
                .collect();
            {
                let mut w = slot.index.write().unwrap_or_else(|p| p.into_inner());
                if let Some(ix) = w.as_mut() {
                    ix.remove(&gone);
                    ix.insert(facts);
                }
            }
            // These reads may have seen any group begun by now.
            self.cover(slot, chunk, self.writes_begun.load(Ordering::SeqCst));
        }
        Ok(())
    }

    /// Notes that reads of these customers may have seen writer groups up to `upto`.
    fn cover(&self, slot: &Slot, ids: &[i64], upto: u64) {
        let mut c = slot.covered.lock().unwrap_or_else(|p| p.into_inner());
        for id in ids {
            c.customers.insert(*id, upto);
        }
    }

    /// Rebuilds a tenant's index from the store (after a bulk change such as an import or the
    /// daily recompute).
    ///
    /// The old index keeps answering and taking changes while the new one is read from the
    /// store (minutes for millions of customers), so writers never wait for a rebuild; the
    /// customers changed meanwhile are reloaded into the new index once it is in place.
    pub async fn rebuild(&self, tenant: i64) -> Result<(), AudienceError> {
        self.rebuild_then(tenant, async {}).await
    }

    /// [`Self::rebuild`], running `meanwhile` after the store was read and before the new index
    /// replaces the old one (tests use it to write in that window).
    pub async fn rebuild_then(
        &self,
        tenant: i64,
        meanwhile: impl std::future::Future<Output = ()>,
    ) -> Result<(), AudienceError> {
        let slot = self.slot_entry(tenant);
        let _one = slot.rebuilding.lock().await;
        *slot.pending.lock().unwrap_or_else(|p| p.into_inner()) = Some(Vec::new());
        let now = now_ms();
        let built = build_index(&self.db, tenant, now, |_, _| {}).await;
        meanwhile.await;
        let pending = {
            let _lock = owned_lock(Arc::clone(&slot)).await;
            let pending = slot
                .pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take()
                .unwrap_or_default();
            let mut ix = built?;
            ix.prune_events(local_day(now) - MAX_EVENT_DAYS as i32);
            *slot.index.write().unwrap_or_else(|p| p.into_inner()) = Some(ix);
            self.cover_all(&slot);
            *slot.rule_tags.write().unwrap_or_else(|p| p.into_inner()) =
                super::tags::rule_tags(&self.db, tenant).await?;
            pending
        };
        // Also refreshes the rule tags.
        self.changed(tenant, &pending, Change::Customers { orders: false })
            .await?;
        if pending.is_empty() {
            self.refresh_rule_tags(tenant).await?;
        }
        Ok(())
    }

    /// Re-reads the tenant's rule tags (after one is created, changed or deleted) and brings
    /// their members up to date.
    pub async fn rule_tags_changed(&self, tenant: i64) -> Result<(), AudienceError> {
        let (slot, _lock) = self.built(tenant).await?;
        let rules = super::tags::rule_tags(&self.db, tenant).await?;
        let live: Vec<i64> = rules.iter().map(|r| r.0).collect();
        {
            let mut w = slot.index.write().unwrap_or_else(|p| p.into_inner());
            let old: Vec<i64> = slot
                .rule_tags
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .map(|r| r.0)
                .collect();
            if let Some(ix) = w.as_mut() {
                for id in old.into_iter().filter(|id| !live.contains(id)) {
                    ix.drop_tag(id);
                }
            }
        }
        *slot.rule_tags.write().unwrap_or_else(|p| p.into_inner()) = rules;
        self.refresh_rule_tags_locked(tenant, &slot, now_ms()).await
    }

    /// Tag membership changed by hand (already stored): reload those customers' tags.
    pub async fn tags_changed(&self, tenant: i64, customers: &[i64]) -> Result<(), AudienceError> {
        self.changed(tenant, customers, Change::Customers { orders: false })
            .await
    }

    /// Evaluates each rule tag, stores who joined and left it, and applies that to the index.
    async fn refresh_rule_tags_locked(
        &self,
        tenant: i64,
        slot: &Slot,
        now: i64,
    ) -> Result<(), AudienceError> {
        let rules = slot
            .rule_tags
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for (tag_id, rule) in rules {
            let (add, remove) = {
                let r = slot.index.read().unwrap_or_else(|p| p.into_inner());
                let Some(ix) = r.as_ref() else { return Ok(()) };
                let want = ix.query(now).members(&rule);
                let empty = RoaringBitmap::new();
                let have = ix.tag(tag_id).unwrap_or(&empty);
                (&want - have, have - &want)
            };
            if add.is_empty() && remove.is_empty() {
                continue;
            }
            super::tags::apply_rule_tag(&self.db, tenant, tag_id, &add, &remove, now).await?;
            let mut w = slot.index.write().unwrap_or_else(|p| p.into_inner());
            if let Some(ix) = w.as_mut() {
                ix.set_tag(tag_id, &add, &remove);
            }
        }
        Ok(())
    }
}

async fn owned_lock(slot: Arc<Slot>) -> tokio::sync::OwnedMutexGuard<()> {
    Arc::clone(&slot.maint).lock_owned().await
}

impl Audiences {
    /// At start: recomputes purchase figures for tenants whose figures are missing or more than
    /// a day old (windows move with time), then builds every tenant's index.
    pub async fn prepare(&self) -> Result<(), AudienceError> {
        let tenants: Vec<(i64,)> = self
            .db
            .fetch_all(&sql("SELECT id FROM tenants ORDER BY id"))
            .await?;
        let now = now_ms();
        for (t,) in tenants {
            let (_, model) = super::profile::settings(&self.db, t).await?;
            if model.is_none_or(|m| now - m.computed_at > DAY_MS) {
                super::profile::recompute_all(&self.db, t, now).await?;
            }
            self.built(t).await?;
        }
        Ok(())
    }

    /// Once a day, at 04:00 China time: recompute every tenant's figures and rebuild its index.
    pub fn spawn_daily(self: &Arc<Self>) {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                let now = now_ms();
                let today = day_start(local_day(now)) + 4 * 3_600_000;
                let next = if today > now { today } else { today + DAY_MS };
                let wait = u64::try_from(next - now).unwrap_or(0);
                tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
                if me.db.is_closed() {
                    return;
                }
                if let Err(e) = me.recompute_everyone().await {
                    tracing::error!(error = %e, "daily recompute failed");
                }
            }
        });
    }

    /// Every hour: rule tags whose rules look at time windows (days since a purchase, events in
    /// the last N days) follow the clock even when nothing is written.
    pub fn spawn_hourly_rule_tags(self: &Arc<Self>) {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(3_600));
            tick.tick().await;
            loop {
                tick.tick().await;
                if me.db.is_closed() {
                    return;
                }
                let tenants: Vec<i64> = {
                    let slots = me.slots.lock().unwrap_or_else(|p| p.into_inner());
                    slots.keys().copied().collect()
                };
                for t in tenants {
                    if let Err(e) = me.refresh_rule_tags(t).await {
                        tracing::error!(tenant = t, error = %e, "rule tag refresh failed");
                    }
                }
            }
        });
    }

    /// Brings the tenant's rule tags up to date with its index now.
    pub async fn refresh_rule_tags(&self, tenant: i64) -> Result<(), AudienceError> {
        let (slot, _lock) = self.built(tenant).await?;
        self.refresh_rule_tags_locked(tenant, &slot, now_ms()).await
    }

    async fn recompute_everyone(&self) -> Result<(), AudienceError> {
        let tenants: Vec<(i64,)> = self
            .db
            .fetch_all(&sql("SELECT id FROM tenants ORDER BY id"))
            .await?;
        for (t,) in tenants {
            super::profile::recompute_all(&self.db, t, now_ms()).await?;
            self.rebuild(t).await?;
        }
        Ok(())
    }
}

/// Asks every running server to rebuild the tenant's index (after a bulk write such as an
/// import in another process): bumps the tenant's rebuild version.
pub async fn request_rebuild(db: &Db, tenant: i64) -> DbResult<()> {
    db.execute(
        &sql(
            "INSERT INTO audience_rebuilds (tenant_id, version, requested_at) VALUES ($1, 1, $2) \
             ON CONFLICT (tenant_id) DO UPDATE SET version = audience_rebuilds.version + 1, \
             requested_at = excluded.requested_at",
        )
        .bind(tenant)
        .bind(now_ms()),
    )
    .await?;
    Ok(())
}

/// Rebuild versions now, per tenant: read before building, so that a request made during the
/// build is acted on after it.
pub async fn rebuild_versions(db: &Db) -> DbResult<HashMap<i64, i64>> {
    let rows: Vec<(i64, i64)> = db
        .fetch_all(&sql("SELECT tenant_id, version FROM audience_rebuilds"))
        .await?;
    Ok(rows.into_iter().collect())
}

impl Audiences {
    /// Every `every`: rebuilds the tenants whose rebuild version moved past `seen` (the versions
    /// read before this process built its indexes).
    pub fn spawn_rebuild_watch(
        self: &Arc<Self>,
        every: std::time::Duration,
        mut seen: HashMap<i64, i64>,
    ) {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                if me.db.is_closed() {
                    return;
                }
                let now = match rebuild_versions(&me.db).await {
                    Ok(v) => v,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read rebuild requests");
                        continue;
                    }
                };
                for (tenant, version) in now {
                    if version > seen.get(&tenant).copied().unwrap_or(0) {
                        tracing::info!(tenant, "rebuilding the audience index on request");
                        match me.rebuild(tenant).await {
                            Ok(()) => {
                                seen.insert(tenant, version);
                            }
                            Err(e) => {
                                tracing::error!(tenant, error = %e, "audience rebuild failed")
                            }
                        }
                    }
                }
            }
        });
    }
}
