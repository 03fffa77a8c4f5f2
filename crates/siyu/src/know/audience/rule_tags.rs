//! Rule tags: re-reading a tenant's tag rules, evaluating each against the index, and storing
//! who joined and left.

use crate::know::CustomerId;
use crate::platform::TenantId;
use roaring::RoaringBitmap;

use super::*;
use crate::platform::clock::now_ms;

impl Audiences {
    /// Re-reads the tenant's rule tags (after one is created, changed or deleted) and brings
    /// their members up to date.
    pub async fn rule_tags_changed(&self, tenant: TenantId) -> Result<(), AudienceError> {
        let (slot, _lock) = self.built(tenant).await?;
        let rules = crate::know::tags::rule_tags(&self.db, tenant).await?;
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
    pub async fn tags_changed(
        &self,
        tenant: TenantId,
        customers: &[CustomerId],
    ) -> Result<(), AudienceError> {
        self.changed(tenant, customers, Change::Customers { orders: false })
            .await
    }

    /// Evaluates each rule tag, stores who joined and left it, and applies that to the index.
    pub(super) async fn refresh_rule_tags_locked(
        &self,
        tenant: TenantId,
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
            crate::know::tags::apply_rule_tag(&self.db, tenant, tag_id, &add, &remove, now).await?;
            let mut w = slot.index.write().unwrap_or_else(|p| p.into_inner());
            if let Some(ix) = w.as_mut() {
                ix.set_tag(tag_id, &add, &remove);
            }
        }
        Ok(())
    }

    /// Brings the tenant's rule tags up to date with its index now.
    pub async fn refresh_rule_tags(&self, tenant: TenantId) -> Result<(), AudienceError> {
        let (slot, _lock) = self.built(tenant).await?;
        self.refresh_rule_tags_locked(tenant, &slot, now_ms()).await
    }
}
