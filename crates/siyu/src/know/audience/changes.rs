//! Keeping the index current after committed writes: changed customers reloaded whole, and an
//! event writer's group counted on top unless a read may already have seen it.

use crate::know::CustomerId;
use crate::platform::TenantId;
use std::sync::atomic::Ordering;

use roaring::RoaringBitmap;

use super::*;
use crate::know::rule::MAX_EVENT_DAYS;
use crate::platform::clock::now_ms;

/// Ids per refresh query.
pub(super) const REFRESH_CHUNK: usize = 2_000;

impl Audiences {
    /// Brings the index up to date with the store for these customers after a committed write.
    pub async fn changed(
        &self,
        tenant: TenantId,
        customers: &[CustomerId],
        change: Change,
    ) -> Result<(), AudienceError> {
        if customers.is_empty() {
            return Ok(());
        }
        let (slot, _lock) = self.built(tenant).await?;
        let now = now_ms();
        let mut ids: Vec<i64> = customers.iter().map(|c| c.get()).collect();
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
        tenant: TenantId,
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
        let mut ids: Vec<i64> = events.iter().map(|e| e.customer.get()).collect();
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
                .filter_map(|e| Some((counted_on(e.customer.get())?, e.kind.as_str(), e.at)))
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
    pub(super) async fn reload_locked(
        &self,
        tenant: TenantId,
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
                let customers: Vec<CustomerId> =
                    chunk.iter().map(|&c| CustomerId::new(c)).collect();
                crate::know::profile::recompute_customers(&self.db, tenant, &customers, now)
                    .await?;
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
    pub(super) fn cover(&self, slot: &Slot, ids: &[i64], upto: u64) {
        let mut c = slot.covered.lock().unwrap_or_else(|p| p.into_inner());
        for id in ids {
            c.customers.insert(*id, upto);
        }
    }
}
