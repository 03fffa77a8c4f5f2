//! Approval before a large send (审批, maker-checker): a brand may set a size from which a
//! campaign's launch waits until a second person approves it. The one who asked to send it may
//! not approve it. Every launch path (the console, the API) goes through the gate in
//! [`super::launch_then`].

use crate::platform::TenantId;
use crate::platform::db::{Db, DbError, sql};
use crate::platform::tenant_settings;

use super::{Campaign, CampaignError, invalid};
use crate::platform::access::{self, AccessError};

/// Each step of an approval is in the audit log: a check that leaves no trace checks nothing.
async fn audited(
    db: &Db,
    tenant: TenantId,
    by: &str,
    action: &str,
    subject: &str,
) -> Result<(), CampaignError> {
    access::audit(db, tenant, by, action, subject)
        .await
        .map_err(|e| match e {
            AccessError::Db(d) => CampaignError::Db(d),
            other => invalid("audit", other.to_string()),
        })
}
use crate::know::segments;

/// The tenant setting: launches of at least this many people wait for approval.
pub const SETTING: &str = "acquire.approval_from";

/// The brand's approval size, if it set one.
pub async fn threshold(db: &Db, tenant: TenantId) -> Result<Option<i64>, DbError> {
    tenant_settings::get::<i64>(db, tenant, SETTING).await
}

/// Sets (or, with `None`, lifts) the approval size; `by` is written to the audit log.
pub async fn set_threshold(
    db: &Db,
    tenant: TenantId,
    from: Option<i64>,
    by: &str,
    now: i64,
) -> Result<(), CampaignError> {
    if from.is_some_and(|n| n < 1) {
        return Err(invalid(
            "approval_from",
            "must be at least 1 person, or none",
        ));
    }
    tenant_settings::put(db, tenant, SETTING, &from, now).await?;
    let subject = from.map_or_else(|| "none".to_owned(), |n| n.to_string());
    audited(db, tenant, by, "approval.size", &subject).await
}

/// Who asked to send a campaign and who approved it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct Approval {
    pub asked_by: Option<String>,
    pub asked_at: Option<i64>,
    pub approved_by: Option<String>,
    pub approved_at: Option<i64>,
}

pub async fn of(db: &Db, tenant: TenantId, id: i64) -> Result<Approval, CampaignError> {
    db.fetch_optional(
        &sql("SELECT approval_asked_by AS asked_by, approval_asked_at AS asked_at, approved_by, approved_at \
              FROM campaigns WHERE tenant_id = $1 AND id = $2")
            .bind(tenant)
            .bind(id),
    )
    .await?
    .ok_or(CampaignError::NotFound(id))
}

/// Whether a launch of `c` must wait: its audience reaches the brand's approval size and nobody
/// has approved it. `Some((audience, size))` when it waits.
pub async fn waits(
    db: &Db,
    tenant: TenantId,
    c: &Campaign,
) -> Result<Option<(i64, i64)>, CampaignError> {
    let Some(from) = threshold(db, tenant).await? else {
        return Ok(None);
    };
    let audience = segments::snapshot_size(db, tenant, c.snapshot_id)
        .await?
        .unwrap_or(0);
    if audience < from || c.approval.approved_by.is_some() {
        return Ok(None);
    }
    Ok(Some((audience, from)))
}

/// Records that `by` asked to send the campaign (the first ask stands).
pub async fn ask(
    db: &Db,
    tenant: TenantId,
    id: i64,
    by: &str,
    now: i64,
) -> Result<(), CampaignError> {
    let asked = db
        .execute(
            &sql(
                "UPDATE campaigns SET approval_asked_by = $3, approval_asked_at = $4 \
                  WHERE tenant_id = $1 AND id = $2 AND approval_asked_by IS NULL",
            )
            .bind(tenant)
            .bind(id)
            .bind(by)
            .bind(now),
        )
        .await?;
    if asked > 0 {
        audited(
            db,
            tenant,
            by,
            "campaign.ask_approval",
            &format!("campaign:{id}"),
        )
        .await?;
    }
    Ok(())
}

/// `by` approves the campaign: someone must have asked, and it may not be `by`. Whether this
/// call approved it (two admins pressing at once: one does).
pub async fn approve(
    db: &Db,
    tenant: TenantId,
    id: i64,
    by: &str,
    now: i64,
) -> Result<bool, CampaignError> {
    let a = of(db, tenant, id).await?;
    match a.asked_by.as_deref() {
        None => Err(invalid("approval", "nobody asked to send it yet")),
        Some(asker) if asker == by => Err(invalid(
            "approval",
            "the one who asked to send it may not approve it (a second person must)",
        )),
        Some(_) => {
            let approved = db
                .execute(
                    &sql("UPDATE campaigns SET approved_by = $3, approved_at = $4 \
                          WHERE tenant_id = $1 AND id = $2 AND approved_by IS NULL")
                    .bind(tenant)
                    .bind(id)
                    .bind(by)
                    .bind(now),
                )
                .await?
                > 0;
            if approved {
                audited(
                    db,
                    tenant,
                    by,
                    "campaign.approve",
                    &format!("campaign:{id}"),
                )
                .await?;
            }
            Ok(approved)
        }
    }
}
