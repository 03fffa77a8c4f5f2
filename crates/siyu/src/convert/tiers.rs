//! Member tiers (会员等级): by spend or by points earned in a rolling window. A member moves up
//! as soon as they qualify and down only at the daily review, so a refund in the middle of the
//! day does not take a tier away before the customer has had a chance to buy again.

use crate::know::CustomerId;
use crate::platform::TenantId;
use serde::{Deserialize, Serialize};

use crate::know::orders::PURCHASE_STATUSES;
use std::collections::HashMap;

use crate::platform::db::{Db, DbError, Tx, list_placeholders, sql};

const DAY_MS: i64 = 86_400_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// Spend in fen (paid less refunded) in the window.
    #[default]
    Spend,
    /// Points earned in the window.
    Points,
}

/// One tier: from `min` (fen or points) up, with its benefits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    pub name: String,
    pub min: i64,
    /// Points earned are multiplied by this percentage (100 = as earned).
    #[serde(default = "hundred")]
    pub points_multiplier_pct: i64,
    /// What the tier gives, shown to guides and customers.
    #[serde(default)]
    pub benefits: Vec<String>,
}

fn hundred() -> i64 {
    100
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TierSettings {
    pub basis: Basis,
    pub window_days: i64,
    /// In ascending order of `min`; the first usually has `min` 0.
    pub tiers: Vec<Tier>,
}

impl Default for TierSettings {
    fn default() -> Self {
        TierSettings {
            basis: Basis::Spend,
            window_days: 365,
            tiers: Vec::new(),
        }
    }
}

impl TierSettings {
    /// Names the field that is wrong.
    pub fn check(&self) -> Result<(), String> {
        if !(1..=3_650).contains(&self.window_days) {
            return Err("window_days: must be 1–3650".into());
        }
        for (i, t) in self.tiers.iter().enumerate() {
            let name = t.name.trim();
            if name.is_empty() || name.chars().count() > 20 {
                return Err(format!("tiers[{i}].name: must be 1–20 characters"));
            }
            if t.min < 0 {
                return Err(format!("tiers[{i}].min: must not be negative"));
            }
            if !(0..=1_000).contains(&t.points_multiplier_pct) {
                return Err(format!("tiers[{i}].points_multiplier_pct: must be 0–1000"));
            }
            if i > 0 && self.tiers[i - 1].min >= t.min {
                return Err(format!(
                    "tiers[{i}].min: must be above the tier before ({})",
                    self.tiers[i - 1].min
                ));
            }
            if self.tiers[..i].iter().any(|o| o.name.trim() == name) {
                return Err(format!("tiers[{i}].name: {name} appears twice"));
            }
        }
        Ok(())
    }

    /// The highest tier `value` reaches, by its position.
    pub fn tier_for(&self, value: i64) -> Option<usize> {
        self.tiers.iter().rposition(|t| value >= t.min)
    }

    pub fn rank(&self, name: Option<&str>) -> Option<usize> {
        name.and_then(|n| self.tiers.iter().position(|t| t.name == n))
    }
}

/// A member's tier now and the figure it rests on.
#[derive(Debug, Clone, Serialize)]
pub struct TierChange {
    pub customer_id: CustomerId,
    pub from: Option<String>,
    pub to: Option<String>,
    pub value: i64,
}

/// Members reviewed per transaction: the tenant lock and SQLite's writer are held for one
/// chunk at a time.
const REVIEW_CHUNK: usize = 1_000;

/// The qualifying figure of each member of a chunk, in one statement (absent: 0).
async fn values_of(
    tx: &mut Tx,
    tenant: TenantId,
    customers: &[CustomerId],
    s: &TierSettings,
    now: i64,
) -> Result<HashMap<CustomerId, i64>, DbError> {
    let since = now - s.window_days * DAY_MS;
    let head = match s.basis {
        Basis::Spend => format!(
            "SELECT customer_id, CAST(COALESCE(SUM(amount - refund_amount), 0) AS BIGINT) FROM orders \
             WHERE tenant_id = $1 AND ordered_at >= $2 AND status IN {PURCHASE_STATUSES}"
        ),
        Basis::Points => {
            "SELECT customer_id, CAST(COALESCE(SUM(delta), 0) AS BIGINT) FROM points_entries \
             WHERE tenant_id = $1 AND created_at >= $2 AND kind = 'earn'"
                .to_owned()
        }
    };
    let mut q = sql(format!(
        "{head} AND customer_id IN ({}) GROUP BY customer_id",
        list_placeholders(customers.len(), 3)
    ))
    .bind(tenant)
    .bind(since);
    for c in customers {
        q.push_arg(*c);
    }
    Ok(tx
        .fetch_all::<(CustomerId, i64)>(&q)
        .await?
        .into_iter()
        .collect())
}

/// Reviews members' tiers: up whenever they qualify, down only when `allow_down` (the daily
/// review). `customers: None` reviews every member. Returns the changes.
pub async fn review(
    db: &Db,
    tenant: TenantId,
    customers: Option<&[CustomerId]>,
    allow_down: bool,
    now: i64,
) -> Result<Vec<TierChange>, DbError> {
    let s = super::points::settings(db, tenant).await?.tiers;
    if s.tiers.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<CustomerId> = match customers {
        None => db
            .fetch_all::<(CustomerId,)>(
                &sql("SELECT customer_id FROM members WHERE tenant_id = $1 ORDER BY customer_id")
                    .bind(tenant),
            )
            .await?
            .into_iter()
            .map(|(c,)| c)
            .collect(),
        Some(ids) => ids.to_vec(),
    };
    let mut changes = Vec::new();
    for chunk in ids.chunks(REVIEW_CHUNK) {
        let mut tx = db.begin().await?;
        tx.lock_tenant(tenant).await?;
        changes.extend(review_in(&mut tx, tenant, chunk, &s, allow_down, now).await?);
        tx.commit().await?;
    }
    Ok(changes)
}

/// [`review`] of one chunk of customers, their tiers read under the caller's tenant lock.
async fn review_in(
    tx: &mut Tx,
    tenant: TenantId,
    customers: &[CustomerId],
    s: &TierSettings,
    allow_down: bool,
    now: i64,
) -> Result<Vec<TierChange>, DbError> {
    let members: Vec<(CustomerId, Option<String>)> = tx
        .fetch_in(
            "SELECT customer_id, tier FROM members WHERE tenant_id = $1 AND customer_id",
            &[tenant.into()],
            customers.iter().map(|i| (*i).into()).collect(),
        )
        .await?;
    if members.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<CustomerId> = members.iter().map(|(c, _)| *c).collect();
    let values = values_of(tx, tenant, &ids, s, now).await?;
    let mut changes = Vec::new();
    for (c, current) in members {
        let value = values.get(&c).copied().unwrap_or(0);
        let target = s.tier_for(value);
        let have = s.rank(current.as_deref());
        let next = match (have, target) {
            (Some(h), Some(t)) if t > h => Some(t),
            (Some(h), t) if allow_down && t.is_none_or(|t| t < h) => t,
            (Some(h), _) => Some(h),
            (None, t) => t,
        };
        let to = next.map(|i| s.tiers[i].name.clone());
        if to != current {
            tx.execute(
                &sql("UPDATE members SET tier = $1, tier_since = $2 WHERE tenant_id = $3 AND customer_id = $4")
                    .bind(to.clone())
                    .bind(now)
                    .bind(tenant)
                    .bind(c),
            )
            .await?;
            changes.push(TierChange {
                customer_id: c,
                from: current,
                to,
                value,
            });
        }
    }
    Ok(changes)
}

/// The points multiplier of a member's tier (100 without tiers).
pub fn multiplier(s: &TierSettings, tier: Option<&str>) -> i64 {
    s.rank(tier)
        .map_or(100, |i| s.tiers[i].points_multiplier_pct)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiers() -> TierSettings {
        TierSettings {
            basis: Basis::Spend,
            window_days: 365,
            tiers: vec![
                Tier {
                    name: "银卡".into(),
                    min: 0,
                    points_multiplier_pct: 100,
                    benefits: vec![],
                },
                Tier {
                    name: "金卡".into(),
                    min: 100_000,
                    points_multiplier_pct: 150,
                    benefits: vec!["生日礼".into()],
                },
                Tier {
                    name: "黑金".into(),
                    min: 500_000,
                    points_multiplier_pct: 200,
                    benefits: vec![],
                },
            ],
        }
    }

    #[test]
    fn the_highest_tier_reached() {
        let s = tiers();
        assert!(s.check().is_ok());
        assert_eq!(s.tier_for(0), Some(0));
        assert_eq!(s.tier_for(99_999), Some(0));
        assert_eq!(s.tier_for(100_000), Some(1));
        assert_eq!(s.tier_for(9_000_000), Some(2));
        assert_eq!(multiplier(&s, Some("金卡")), 150);
        assert_eq!(multiplier(&s, None), 100);
    }

    #[test]
    fn settings_name_what_is_wrong() {
        let mut s = tiers();
        s.tiers[2].min = 100_000;
        assert!(s.check().is_err_and(|e| e.starts_with("tiers[2].min")));
        let mut s = tiers();
        s.tiers[1].name = "银卡".into();
        assert!(s.check().is_err_and(|e| e.starts_with("tiers[1].name")));
    }
}
