//! What live codes brought: adds, deletions (either side), net contacts and welcomes per code,
//! and a customer's WeCom relationships with the codes they came through.

use std::collections::HashMap;

use serde::Serialize;

use super::list;
use crate::platform::TenantId;
use crate::platform::db::{Db, DbError, sql};

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CodeStats {
    pub id: i64,
    pub name: String,
    pub source: String,
    pub state: String,
    pub qr_code: String,
    pub serving: Vec<String>,
    /// The default welcome text.
    pub welcome: String,
    pub adds: i64,
    pub deletions: i64,
    pub net: i64,
    pub welcomes_sent: i64,
    pub welcomes_failed: i64,
    /// When it was stopped; none while it adds people.
    pub disabled_at: Option<i64>,
}

/// Adds, deletions (either side) and net contacts per code, and its welcome messages.
pub async fn stats(db: &Db, tenant: TenantId) -> Result<Vec<CodeStats>, DbError> {
    let codes = list(db, tenant).await?;
    let counts: Vec<(i64, i64, i64)> = db
        .fetch_all(
            &sql("SELECT code_id, COUNT(*), COUNT(deleted_at) FROM wecom_contacts WHERE tenant_id = $1 AND code_id IS NOT NULL GROUP BY code_id")
                .bind(tenant),
        )
        .await?;
    let welcomes: Vec<(i64, String, i64)> = db
        .fetch_all(
            &sql("SELECT code_id, result, COUNT(*) FROM welcome_messages WHERE tenant_id = $1 AND code_id IS NOT NULL GROUP BY code_id, result")
                .bind(tenant),
        )
        .await?;
    let counts: HashMap<i64, (i64, i64)> =
        counts.into_iter().map(|(c, a, d)| (c, (a, d))).collect();
    Ok(codes
        .into_iter()
        .map(|c| {
            let (adds, deletions) = counts.get(&c.id).copied().unwrap_or((0, 0));
            let w = |ok: bool| {
                welcomes
                    .iter()
                    .filter(|(id, r, _)| *id == c.id && (r == "sent") == ok)
                    .map(|x| x.2)
                    .sum()
            };
            CodeStats {
                id: c.id,
                name: c.name,
                source: c.source,
                state: c.state,
                qr_code: c.qr_code,
                serving: c.serving,
                welcome: c.welcome.content.text,
                adds,
                deletions,
                net: adds - deletions,
                welcomes_sent: w(true),
                welcomes_failed: w(false),
                disabled_at: c.disabled_at,
            }
        })
        .collect())
}

/// A customer's WeCom relationships with the brand's staff: the staff member (the guide who
/// owns them), when added, the live code it came through, and when it ended if it did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct ContactOf {
    pub userid: String,
    pub added_at: i64,
    pub code_name: Option<String>,
    pub deleted_at: Option<i64>,
}

pub async fn contacts_of(
    db: &Db,
    tenant: TenantId,
    customer: crate::know::CustomerId,
) -> Result<Vec<ContactOf>, DbError> {
    db.fetch_all(
        &sql(
            "SELECT w.userid, w.added_at, l.name AS code_name, w.deleted_at FROM wecom_contacts w \
             LEFT JOIN live_codes l ON l.tenant_id = w.tenant_id AND l.id = w.code_id \
             WHERE w.tenant_id = $1 AND w.customer_id = $2 ORDER BY w.added_at DESC",
        )
        .bind(tenant)
        .bind(customer),
    )
    .await
}
