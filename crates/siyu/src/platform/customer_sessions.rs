//! Customer sessions: the tokens a customer's own pages (H5, the mini-program) act with.
//!
//! A token is signed (`FieldCipher::customer_token`) and names the customer's token version;
//! raising the version (`revoke`) ends every token issued before it. Checking the version costs a
//! store read, so each server remembers a customer's version for [`VERSION_TTL_MS`]: a revocation
//! is immediate on the server that made it and reaches the others within that time.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::platform::access::{AccessError, Actor, audit};
use crate::platform::crypto::{CustomerClaim, FieldCipher};
use crate::platform::db::{Db, DbError, sql};
use crate::platform::refusal::{Refusal, Refuse};

/// How long a server believes a customer's token version without asking the store.
pub const VERSION_TTL_MS: i64 = 10_000;
/// The longest a token may live: a link in a message stays good for a week at most.
pub const LONGEST_MS: i64 = 7 * 86_400_000;
/// How long a session opened by claiming a card lasts.
pub const CARD_CLAIM_MS: i64 = 86_400_000;
/// Remembered versions before the memory is cleared (bounds a flood of distinct customers).
const REMEMBERED: usize = 200_000;

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("the token is invalid, expired or signed out; open the link again")]
    Invalid,
    #[error("no customer {0}")]
    NoCustomer(i64),
    #[error(transparent)]
    Access(#[from] AccessError),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// The web layer answers [`SessionError::Invalid`] as 401 itself (`h5::CustomerCaller`); as a
/// refusal elsewhere it is a rejected proof.
impl Refuse for SessionError {
    fn refusal(&self) -> Refusal {
        match self {
            SessionError::Invalid => Refusal::Rejected("unauthorized"),
            SessionError::NoCustomer(_) => Refusal::NotFound("not_found"),
            SessionError::Access(e) => e.refusal(),
            SessionError::Db(_) => Refusal::Internal,
        }
    }
}

/// Issues, checks and revokes customer tokens.
pub struct CustomerSessions {
    cipher: FieldCipher,
    /// (tenant, customer) → (version, when it was read).
    versions: Mutex<HashMap<(i64, i64), (i64, i64)>>,
}

impl std::fmt::Debug for CustomerSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CustomerSessions(..)")
    }
}

impl CustomerSessions {
    pub fn new(cipher: FieldCipher) -> CustomerSessions {
        CustomerSessions {
            cipher,
            versions: Mutex::new(HashMap::new()),
        }
    }

    /// A token for the customer's pages, good until `expires_at` (at most [`LONGEST_MS`] away)
    /// or until their sessions are revoked.
    pub async fn issue(
        &self,
        db: &Db,
        tenant: i64,
        customer: i64,
        expires_at: i64,
        now: i64,
    ) -> Result<String, SessionError> {
        let version = self.read_version(db, tenant, customer, now).await?;
        Ok(self.cipher.customer_token(CustomerClaim {
            tenant_id: tenant,
            customer_id: customer,
            version,
            expires_at: expires_at.min(now + LONGEST_MS),
        }))
    }

    /// The claim of a genuine, unexpired token whose version is still the customer's.
    pub async fn verify(
        &self,
        db: &Db,
        token: &str,
        now: i64,
    ) -> Result<CustomerClaim, SessionError> {
        let claim = self
            .cipher
            .verify_customer_token(token.trim(), now)
            .ok_or(SessionError::Invalid)?;
        let remembered = self
            .lock()
            .get(&(claim.tenant_id, claim.customer_id))
            .filter(|(_, at)| now - at < VERSION_TTL_MS)
            .map(|(v, _)| *v);
        let version = match remembered {
            Some(v) => v,
            None => {
                match self
                    .read_version(db, claim.tenant_id, claim.customer_id, now)
                    .await
                {
                    Ok(v) => v,
                    Err(SessionError::NoCustomer(_)) => return Err(SessionError::Invalid),
                    Err(e) => return Err(e),
                }
            }
        };
        if version == claim.version {
            Ok(claim)
        } else {
            Err(SessionError::Invalid)
        }
    }

    /// Ends every token the customer holds (a lost phone, a forwarded link, on request).
    pub async fn revoke(
        &self,
        db: &Db,
        tenant: i64,
        customer: i64,
        actor: Actor<'_>,
    ) -> Result<(), SessionError> {
        let n = db
            .execute(
                &sql("UPDATE customers SET token_version = token_version + 1 WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant)
                    .bind(customer),
            )
            .await?;
        if n == 0 {
            return Err(SessionError::NoCustomer(customer));
        }
        self.lock().remove(&(tenant, customer));
        audit(
            db,
            tenant,
            actor,
            "customer_sessions_revoked",
            &format!("customer {customer}"),
        )
        .await?;
        Ok(())
    }

    async fn read_version(
        &self,
        db: &Db,
        tenant: i64,
        customer: i64,
        now: i64,
    ) -> Result<i64, SessionError> {
        let row: Option<(i64,)> = db
            .fetch_optional(
                &sql("SELECT token_version FROM customers WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant)
                    .bind(customer),
            )
            .await?;
        let (version,) = row.ok_or(SessionError::NoCustomer(customer))?;
        let mut versions = self.lock();
        if versions.len() >= REMEMBERED {
            versions.clear();
        }
        versions.insert((tenant, customer), (version, now));
        Ok(version)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(i64, i64), (i64, i64)>> {
        // A panic while holding the map leaves it consistent (plain inserts), so go on with it.
        self.versions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
