//! Unsubscribes kept under the lookup key every tenant shared before 0021, because the number
//! was kept nowhere to re-key them (`platform::lookup_rekey`). The outbox meets the number
//! itself only when it sends, so that is where these are checked: a marketing message to such a
//! number is suppressed as unsubscribed.
//!
//! No such row is written after the migration, so the set read once per process stays true.

use crate::platform::TenantId;
use std::collections::{HashMap, HashSet};

use crate::engage::policy::Purpose;
use crate::platform::crypto::FieldCipher;
use crate::platform::db::{DbResult, Reader, sql};
use crate::platform::lookup_rekey::LEGACY_PREFIX;

/// Each tenant's legacy unsubscribed hashes (without the prefix).
#[derive(Debug, Default)]
pub(super) struct LegacyUnsubscribes {
    by_tenant: HashMap<TenantId, HashSet<String>>,
}

impl LegacyUnsubscribes {
    pub(super) async fn read(reader: &mut Reader<'_>) -> DbResult<LegacyUnsubscribes> {
        // The prefix by `substr`, not a range of text: a range's ends sort another way under
        // a database's language-aware collation. Read once per process.
        let rows: Vec<(TenantId, String)> = reader
            .fetch_all(&sql(
                "SELECT tenant_id, address_hash FROM unsubscribes WHERE channel = 'sms' \
                 AND substr(address_hash, 1, 3) = 'v1:'",
            ))
            .await?;
        let mut by_tenant: HashMap<TenantId, HashSet<String>> = HashMap::new();
        for (tenant, hash) in rows {
            if let Some(h) = hash.strip_prefix(LEGACY_PREFIX) {
                by_tenant.entry(tenant).or_default().insert(h.to_owned());
            }
        }
        Ok(LegacyUnsubscribes { by_tenant })
    }

    /// Whether a marketing message to `phone` must be suppressed by a legacy unsubscribe. Costs
    /// a hash only for a tenant that has such rows.
    pub(super) fn suppresses(
        &self,
        cipher: &FieldCipher,
        tenant: TenantId,
        purpose: &str,
        phone: &str,
    ) -> bool {
        purpose == Purpose::Marketing.as_str()
            && self
                .by_tenant
                .get(&tenant)
                .is_some_and(|set| set.contains(&cipher.legacy_lookup_hash(phone)))
    }
}
