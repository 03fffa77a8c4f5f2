//! A launch's outcome counts (queued, control, no phone, duplicate, excluded, unsubscribed).

use crate::platform::TenantId;
use serde::Serialize;

use super::*;
use crate::platform::db::{Db, sql};

/// What a launch decided for the audience.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct LaunchReport {
    pub audience: u64,
    /// Written to the outbox (the policy may still cap or defer them when sending).
    pub queued: u64,
    /// Eligible, and held out on purpose.
    pub control: u64,
    pub no_phone: u64,
    /// The number already chosen for another customer in this campaign.
    pub duplicate: u64,
    pub excluded: u64,
    pub unsubscribed: u64,
}

/// The launch's outcome counts, from the recipients recorded.
pub async fn launch_report(
    db: &Db,
    tenant: TenantId,
    id: i64,
) -> Result<LaunchReport, CampaignError> {
    let rows: Vec<(String, i64)> = db
        .fetch_all(
            &sql("SELECT outcome, COUNT(*) FROM campaign_recipients WHERE tenant_id = $1 AND campaign_id = $2 GROUP BY outcome")
                .bind(tenant)
                .bind(id),
        )
        .await?;
    let mut r = LaunchReport::default();
    for (outcome, n) in rows {
        let n = n as u64;
        r.audience += n;
        match outcome.as_str() {
            "queued" => r.queued = n,
            "control" => r.control = n,
            "no_phone" => r.no_phone = n,
            "duplicate" => r.duplicate = n,
            "excluded" => r.excluded = n,
            "unsubscribed" => r.unsubscribed = n,
            _ => {}
        }
    }
    Ok(r)
}
