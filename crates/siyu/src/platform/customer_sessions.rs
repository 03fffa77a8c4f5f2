//! Customer sessions: the tokens a customer's own pages (H5, the mini-program) act with.
//!
//! A token is signed (`FieldCipher::customer_token`) and says when it was issued. Signing a
//! customer out everywhere (`revoke`) records the moment; tokens issued before it stop working.
//! Revocations are rare, so each server holds all of the last week's in memory and reads the new
//! ones at most every [`REFRESH_MS`]: checking a token on a flash sale's hot path reads nothing
//! from the store, a revocation is immediate on the server that made it and reaches the others
//! within that time.

use crate::know::CustomerId;
use crate::platform::TenantId;
use std::collections::HashMap;
use std::sync::Mutex;

use crate::platform::access::{AccessError, Actor, audit};
use crate::platform::crypto::{CustomerClaim, FieldCipher};
use crate::platform::db::{Db, DbError, sql};
use crate::platform::refusal::{Refusal, Refuse};

/// How often a server reads the revocations made elsewhere.
pub const REFRESH_MS: i64 = 10_000;
/// The longest a token may live: a link in a message stays good for a week at most. A
/// revocation older than this has no token left to stop.
pub const LONGEST_MS: i64 = 7 * 86_400_000;
/// How long a session opened by claiming a card lasts.
pub const CARD_CLAIM_MS: i64 = 86_400_000;
/// Re-read this far back on each refresh: a revocation committed late by a slow transaction
/// carries an earlier time than ones already read.
const COMMIT_SLACK_MS: i64 = 60_000;

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("the token is invalid, expired or signed out; open the link again")]
    Invalid,
    #[error(transparent)]
    Access(#[from] AccessError),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// The web layer answers [`SessionError::Invalid`] as 401 itself (`h5::session`); as a refusal
/// elsewhere it is a rejected proof.
impl Refuse for SessionError {
    fn refusal(&self) -> Refusal {
        match self {
            SessionError::Invalid => Refusal::Rejected("unauthorized"),
            SessionError::Access(e) => e.refusal(),
            SessionError::Db(_) => Refusal::Internal,
        }
    }
}

#[derive(Default)]
struct Revoked {
    /// (tenant, customer) → signed out at (UTC ms).
    at: HashMap<(TenantId, CustomerId), i64>,
    /// When the store was last read; `None` before the first read.
    read_at: Option<i64>,
}

/// Issues, checks and revokes customer tokens.
pub struct CustomerSessions {
    cipher: FieldCipher,
    revoked: Mutex<Revoked>,
    /// One request reads the store at a time; the others go on with what is held.
    reading: tokio::sync::Mutex<()>,
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
            revoked: Mutex::new(Revoked::default()),
            reading: tokio::sync::Mutex::new(()),
        }
    }

    /// A token for the customer's pages, good until `expires_at` (at most [`LONGEST_MS`] away)
    /// or until the customer is signed out everywhere.
    pub fn issue(
        &self,
        tenant: TenantId,
        customer: CustomerId,
        expires_at: i64,
        now: i64,
    ) -> String {
        self.cipher.customer_token(CustomerClaim {
            tenant_id: tenant,
            customer_id: customer,
            issued_at: now,
            expires_at: expires_at.min(now + LONGEST_MS),
        })
    }

    /// The claim of a genuine, unexpired token issued after the customer's last revocation.
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
        self.refresh(db, now).await?;
        let revoked_at = self
            .lock()
            .at
            .get(&(claim.tenant_id, claim.customer_id))
            .copied();
        // A token issued in the revocation's own millisecond is refused too.
        match revoked_at {
            Some(at) if claim.issued_at <= at => Err(SessionError::Invalid),
            _ => Ok(claim),
        }
    }

    /// Signs the customer out everywhere (a lost phone, a forwarded link, on request): every
    /// token issued before now stops working.
    pub async fn revoke(
        &self,
        db: &Db,
        tenant: TenantId,
        customer: CustomerId,
        now: i64,
        actor: Actor<'_>,
    ) -> Result<(), SessionError> {
        db.execute(
            &sql("INSERT INTO customer_session_revocations (tenant_id, customer_id, revoked_at) VALUES ($1, $2, $3) \
                  ON CONFLICT (tenant_id, customer_id) DO UPDATE SET revoked_at = excluded.revoked_at")
                .bind(tenant)
                .bind(customer)
                .bind(now),
        )
        .await?;
        // What no token can outlive is forgotten, here rather than in a loop of its own.
        db.execute(
            &sql("DELETE FROM customer_session_revocations WHERE revoked_at < $1")
                .bind(now - LONGEST_MS),
        )
        .await?;
        self.lock().at.insert((tenant, customer), now);
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

    /// Reads the revocations made since the last read, if that was [`REFRESH_MS`] ago. One
    /// request reads; the others meanwhile go on with what is held (except before the very first
    /// read, which they wait for). A failed read is logged and tried again at the next refresh.
    async fn refresh(&self, db: &Db, now: i64) -> Result<(), SessionError> {
        let read_at = self.lock().read_at;
        if read_at.is_some_and(|at| now - at < REFRESH_MS) {
            return Ok(());
        }
        let _reading = match (read_at, self.reading.try_lock()) {
            (_, Ok(guard)) => guard,
            (Some(_), Err(_)) => return Ok(()),
            (None, Err(_)) => self.reading.lock().await,
        };
        let since = match self.lock().read_at {
            Some(at) if now - at < REFRESH_MS => return Ok(()), // another request just read
            Some(at) => at - COMMIT_SLACK_MS,
            None => now - LONGEST_MS,
        };
        let read = db
            .fetch_all(
                &sql("SELECT tenant_id, customer_id, revoked_at FROM customer_session_revocations WHERE revoked_at >= $1")
                    .bind(since),
            )
            .await;
        let rows: Vec<(TenantId, CustomerId, i64)> = match (read, read_at) {
            (Ok(rows), _) => rows,
            // Before the first read there is nothing to go on with.
            (Err(e), None) => return Err(e.into()),
            (Err(e), Some(_)) => {
                tracing::warn!(error = %e, "reading customer-session revocations failed; trying again in 10 s");
                self.lock().read_at = Some(now);
                return Ok(());
            }
        };
        let mut revoked = self.lock();
        for (tenant, customer, at) in rows {
            let held = revoked.at.entry((tenant, customer)).or_insert(at);
            *held = (*held).max(at);
        }
        revoked.at.retain(|_, at| *at >= now - LONGEST_MS);
        revoked.read_at = Some(now);
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Revoked> {
        // Plain inserts cannot leave the map half-changed, so a panic elsewhere does not spoil it.
        self.revoked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
