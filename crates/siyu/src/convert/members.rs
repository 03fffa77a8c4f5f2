//! Members (会员): a customer who joined, by phone, by a WeChat identity or in a store, with a
//! member number. Joining is idempotent: the same person joining again gets the same number.

use crate::know::CustomerId;
use crate::platform::TenantId;
use crate::platform::refusal::{Refusal, Refuse};
use serde::Serialize;

use crate::know::identity::{Identity, IdentityKind};
use crate::know::oneid::{self, IdentityRecord};
use crate::platform::crypto::FieldCipher;
use crate::platform::db::{Db, DbError, sql};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JoinedVia {
    Phone,
    Wechat,
    Store,
}

impl JoinedVia {
    pub fn as_str(self) -> &'static str {
        match self {
            JoinedVia::Phone => "phone",
            JoinedVia::Wechat => "wechat",
            JoinedVia::Store => "store",
        }
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Member {
    pub customer_id: CustomerId,
    pub member_no: String,
    pub joined_via: String,
    pub store_id: Option<String>,
    pub birthday_month: Option<i64>,
    pub joined_at: i64,
    pub tier: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum MemberError {
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("customer {0} is not a member")]
    NotMember(CustomerId),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl Refuse for MemberError {
    fn refusal(&self) -> Refusal {
        match self {
            MemberError::Invalid { .. } => Refusal::Invalid,
            MemberError::NotMember(_) => Refusal::NotFound("not_a_member"),
            MemberError::Db(_) => Refusal::Internal,
        }
    }
}

/// A request to join.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    /// Who: a phone for `phone` and `store`, a unionid or openid for `wechat`.
    pub identity: Identity,
    pub via: JoinedVia,
    pub store_id: Option<String>,
    pub birthday_month: Option<i64>,
    pub display_name: Option<String>,
}

impl JoinRequest {
    /// Names the field that does not fit the way of joining.
    pub fn check(&self) -> Result<(), MemberError> {
        let kind = self.identity.kind();
        let ok = match self.via {
            JoinedVia::Phone => kind == IdentityKind::Phone,
            JoinedVia::Wechat => matches!(kind, IdentityKind::Unionid | IdentityKind::Openid),
            JoinedVia::Store => kind == IdentityKind::Phone,
        };
        if !ok {
            return Err(MemberError::Invalid {
                field: "identity",
                reason: format!(
                    "joining by {} needs {}",
                    self.via.as_str(),
                    match self.via {
                        JoinedVia::Wechat => "a unionid or openid",
                        _ => "a phone",
                    }
                ),
            });
        }
        if self.via == JoinedVia::Store && self.store_id.as_deref().is_none_or(str::is_empty) {
            return Err(MemberError::Invalid {
                field: "store_id",
                reason: "joining in a store needs the store".into(),
            });
        }
        if let Some(m) = self.birthday_month
            && !(1..=12).contains(&m)
        {
            return Err(MemberError::Invalid {
                field: "birthday_month",
                reason: format!("{m} is not a month (1–12)"),
            });
        }
        Ok(())
    }
}

const COLS: &str = "customer_id, member_no, joined_via, store_id, birthday_month, joined_at, tier";

pub async fn get(db: &Db, tenant: TenantId, customer: CustomerId) -> Result<Member, MemberError> {
    db.fetch_optional(
        &sql(format!(
            "SELECT {COLS} FROM members WHERE tenant_id = $1 AND customer_id = $2"
        ))
        .bind(tenant)
        .bind(customer),
    )
    .await?
    .ok_or(MemberError::NotMember(customer))
}

/// Joins (or finds) the member for the request's person: the identity resolves through OneID
/// (creating the customer if new), the member number becomes an identity of the customer too.
/// Returns the member and whether they joined just now.
pub async fn join(
    db: &Db,
    cipher: &FieldCipher,
    tenant: TenantId,
    req: &JoinRequest,
    now: i64,
) -> Result<(Member, bool), MemberError> {
    req.check()?;
    let mut tx = db.begin().await?;
    tx.lock_tenant(tenant).await?;
    let lookup = cipher.lookup(tenant);
    let record = IdentityRecord {
        identities: vec![req.identity.key(cipher, &lookup)],
        name: req.display_name.clone(),
    };
    let (owners, _) = oneid::resolve(&mut tx, tenant, &[record], now).await?;
    let customer = owners
        .first()
        .copied()
        .flatten()
        .ok_or_else(|| MemberError::Invalid {
            field: "identity",
            reason: "names no one".into(),
        })?;
    let existing: Option<Member> = tx
        .fetch_optional(
            &sql(format!(
                "SELECT {COLS} FROM members WHERE tenant_id = $1 AND customer_id = $2"
            ))
            .bind(tenant)
            .bind(customer),
        )
        .await?;
    if let Some(m) = existing {
        tx.commit().await?;
        return Ok((m, false));
    }
    // A number the brand's own data already uses (imported member numbers) is skipped: taking
    // it would merge the new member with whoever holds it.
    let (member_no, no_identity) = loop {
        let n = tx.reserve_ids("member", 1).await?;
        let no = format!("M{n:08}");
        let identity =
            Identity::new(IdentityKind::MemberNo, &no, None).map_err(|e| MemberError::Invalid {
                field: "member_no",
                reason: e.to_string(),
            })?;
        let taken: Option<(i64,)> = tx
            .fetch_optional(
                &sql("SELECT customer_id FROM identities WHERE tenant_id = $1 AND ikey = $2")
                    .bind(tenant)
                    .bind(identity.lookup_key(&lookup)),
            )
            .await?;
        if taken.is_none() {
            break (no, identity);
        }
    };
    oneid::resolve(
        &mut tx,
        tenant,
        &[IdentityRecord {
            identities: vec![
                req.identity.key(cipher, &lookup),
                no_identity.key(cipher, &lookup),
            ],
            name: None,
        }],
        now,
    )
    .await?;
    let m: Member = tx
        .fetch_one(
            &sql(format!(
                "INSERT INTO members (tenant_id, customer_id, member_no, joined_via, store_id, birthday_month, joined_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLS}"
            ))
            .bind(tenant)
            .bind(customer)
            .bind(member_no)
            .bind(req.via.as_str())
            .bind(req.store_id.clone())
            .bind(req.birthday_month)
            .bind(now),
        )
        .await?;
    tx.commit().await?;
    Ok((m, true))
}
