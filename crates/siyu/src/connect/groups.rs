//! Customer groups (社群): synced from WeCom and kept current by callbacks, with every member's
//! stints (joined, left) so retention by join cohort can be read back at any time.

use crate::platform::TenantId;
use crate::platform::refusal::{Refusal, Refuse};
use std::collections::{HashMap, HashSet};

use serde::Serialize;

use super::client::{GroupChat, WecomApi, WecomError};
use super::live_codes::local_day;
use crate::platform::db::{Db, DbError, sql};

/// Group kinds operators treat differently.
pub const KINDS: [&str; 4] = ["general", "category", "flash", "vip"];

#[derive(Debug, thiserror::Error)]
pub enum GroupError {
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("group {0} not found")]
    NotFound(String),
    #[error(transparent)]
    Wecom(#[from] WecomError),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl Refuse for GroupError {
    fn refusal(&self) -> Refusal {
        match self {
            GroupError::NotFound(_) => Refusal::NotFound("not_found"),
            GroupError::Db(_) => Refusal::Internal,
            GroupError::Wecom(_) => Refusal::Upstream("wecom"),
            _ => Refusal::Invalid,
        }
    }
}

/// External contacts' ids start with "wm" or "wo"; employees' do not. Callbacks name members
/// without their type, so this decides it until the next sync.
fn member_type_of(id: &str) -> i64 {
    if id.starts_with("wm") || id.starts_with("wo") {
        2
    } else {
        1
    }
}

/// Stores a group as WeCom describes it, and reconciles its members: a member WeCom lists
/// without an open stint here joined at WeCom's join_time; an open stint WeCom no longer lists
/// ended `now`.
pub async fn store_snapshot(
    db: &Db,
    tenant: TenantId,
    g: &GroupChat,
    now: i64,
) -> Result<(), DbError> {
    db.execute(
        &sql("INSERT INTO wecom_groups (tenant_id, chat_id, name, owner, kind, created_at, synced_at) VALUES ($1, $2, $3, $4, 'general', $5, $6) \
              ON CONFLICT (tenant_id, chat_id) DO UPDATE SET name = excluded.name, owner = excluded.owner, synced_at = excluded.synced_at")
            .bind(tenant)
            .bind(g.chat_id.as_str())
            .bind(g.name.as_str())
            .bind(g.owner.as_str())
            .bind(g.create_time * 1000)
            .bind(now),
    )
    .await?;
    let open: Vec<(String,)> = db
        .fetch_all(
            &sql("SELECT member_id FROM wecom_group_members WHERE tenant_id = $1 AND chat_id = $2 AND left_at IS NULL")
                .bind(tenant)
                .bind(g.chat_id.as_str()),
        )
        .await?;
    let open: HashSet<String> = open.into_iter().map(|r| r.0).collect();
    let listed: HashSet<&str> = g.member_list.iter().map(|m| m.userid.as_str()).collect();
    for m in &g.member_list {
        if !open.contains(&m.userid) {
            open_stint(
                db,
                tenant,
                &g.chat_id,
                &m.userid,
                m.member_type,
                Some(m.join_scene),
                m.join_time * 1000,
            )
            .await?;
        }
    }
    for gone in open.iter().filter(|m| !listed.contains(m.as_str())) {
        close_stint(db, tenant, &g.chat_id, gone, now, None).await?;
    }
    Ok(())
}

/// Fetches a group from WeCom and stores it.
pub async fn sync_group(
    db: &Db,
    api: &WecomApi,
    tenant: TenantId,
    chat_id: &str,
    now: i64,
) -> Result<(), GroupError> {
    let g = api.groupchat_get(chat_id).await?;
    store_snapshot(db, tenant, &g, now).await?;
    Ok(())
}

/// Syncs every group of the corp; returns how many.
pub async fn sync_all(
    db: &Db,
    api: &WecomApi,
    tenant: TenantId,
    now: i64,
) -> Result<usize, GroupError> {
    let ids = api.groupchat_list().await?;
    for id in &ids {
        sync_group(db, api, tenant, id, now).await?;
    }
    Ok(ids.len())
}

async fn open_stint(
    db: &Db,
    tenant: TenantId,
    chat: &str,
    member: &str,
    member_type: i64,
    scene: Option<i64>,
    at: i64,
) -> Result<(), DbError> {
    let open: Option<(i64,)> = db
        .fetch_optional(
            &sql("SELECT id FROM wecom_group_members WHERE tenant_id = $1 AND chat_id = $2 AND member_id = $3 AND left_at IS NULL")
                .bind(tenant)
                .bind(chat)
                .bind(member),
        )
        .await?;
    if open.is_some() {
        return Ok(());
    }
    let mut tx = db.begin().await?;
    let id = tx.reserve_ids("group_member", 1).await?;
    tx.execute(
        &sql("INSERT INTO wecom_group_members (id, tenant_id, chat_id, member_id, member_type, join_scene, joined_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(id)
            .bind(tenant)
            .bind(chat)
            .bind(member)
            .bind(member_type)
            .bind(scene)
            .bind(at),
    )
    .await?;
    tx.commit().await
}

async fn close_stint(
    db: &Db,
    tenant: TenantId,
    chat: &str,
    member: &str,
    at: i64,
    scene: Option<i64>,
) -> Result<(), DbError> {
    db.execute(
        &sql("UPDATE wecom_group_members SET left_at = $4, quit_scene = $5 WHERE tenant_id = $1 AND chat_id = $2 AND member_id = $3 AND left_at IS NULL")
            .bind(tenant)
            .bind(chat)
            .bind(member)
            .bind(at)
            .bind(scene),
    )
    .await?;
    Ok(())
}

async fn known(db: &Db, tenant: TenantId, chat: &str) -> Result<bool, DbError> {
    let r: Option<(String,)> = db
        .fetch_optional(
            &sql("SELECT chat_id FROM wecom_groups WHERE tenant_id = $1 AND chat_id = $2")
                .bind(tenant)
                .bind(chat),
        )
        .await?;
    Ok(r.is_some())
}

/// A `change_external_chat` update. Members named in the callback join or leave at its time;
/// when WeCom does not name them, or the group is new here, the group is synced instead.
#[allow(clippy::too_many_arguments)]
pub async fn apply_update(
    db: &Db,
    api: &WecomApi,
    tenant: TenantId,
    chat_id: &str,
    detail: &str,
    members: &[String],
    join_scene: Option<i64>,
    quit_scene: Option<i64>,
    at: i64,
    now: i64,
) -> Result<(), GroupError> {
    if !known(db, tenant, chat_id).await? {
        // The sync lists current members with their own join times; a del_member callback
        // for a group first seen now has nothing to close.
        return sync_group(db, api, tenant, chat_id, now).await;
    }
    match (detail, members.is_empty()) {
        ("add_member", false) => {
            for m in members {
                open_stint(db, tenant, chat_id, m, member_type_of(m), join_scene, at).await?;
            }
            Ok(())
        }
        ("del_member", false) => {
            for m in members {
                close_stint(db, tenant, chat_id, m, at, quit_scene).await?;
            }
            Ok(())
        }
        _ => sync_group(db, api, tenant, chat_id, now).await,
    }
}

/// `quit_scene` of stints ended because the group was dismissed: they did not leave, so
/// retention treats them as unobserved from then on, not as lost.
pub const DISMISSED: i64 = -1;

pub async fn dismiss(db: &Db, tenant: TenantId, chat_id: &str, at: i64) -> Result<(), DbError> {
    db.execute(
        &sql("UPDATE wecom_group_members SET left_at = $3, quit_scene = -1 WHERE tenant_id = $1 AND chat_id = $2 AND left_at IS NULL")
            .bind(tenant)
            .bind(chat_id)
            .bind(at),
    )
    .await?;
    db.execute(
        &sql("UPDATE wecom_groups SET dismissed_at = $3 WHERE tenant_id = $1 AND chat_id = $2")
            .bind(tenant)
            .bind(chat_id)
            .bind(at),
    )
    .await?;
    Ok(())
}

pub async fn set_kind(
    db: &Db,
    tenant: TenantId,
    chat_id: &str,
    kind: &str,
) -> Result<(), GroupError> {
    if !KINDS.contains(&kind) {
        return Err(GroupError::Invalid {
            field: "kind",
            reason: format!("{kind:?} is not one of {}", KINDS.join(", ")),
        });
    }
    let n = db
        .execute(
            &sql("UPDATE wecom_groups SET kind = $3 WHERE tenant_id = $1 AND chat_id = $2")
                .bind(tenant)
                .bind(chat_id)
                .bind(kind),
        )
        .await?;
    if n == 0 {
        return Err(GroupError::NotFound(chat_id.to_owned()));
    }
    Ok(())
}

#[derive(Debug, Clone, Serialize, PartialEq, sqlx::FromRow)]
pub struct GroupRow {
    pub chat_id: String,
    pub name: String,
    pub owner: String,
    pub kind: String,
    pub created_at: i64,
    pub dismissed_at: Option<i64>,
    /// Customers (external members) in the group now.
    pub customers: i64,
    /// Customers who ever joined.
    pub joined: i64,
}

pub async fn list(db: &Db, tenant: TenantId) -> Result<Vec<GroupRow>, DbError> {
    db.fetch_all(
        &sql("SELECT g.chat_id, g.name, g.owner, g.kind, g.created_at, g.dismissed_at, \
                     COUNT(CASE WHEN m.left_at IS NULL AND m.id IS NOT NULL THEN 1 END) AS customers, \
                     COUNT(DISTINCT m.member_id) AS joined \
              FROM wecom_groups g LEFT JOIN wecom_group_members m \
                ON m.tenant_id = g.tenant_id AND m.chat_id = g.chat_id AND m.member_type = 2 \
              WHERE g.tenant_id = $1 GROUP BY g.chat_id, g.name, g.owner, g.kind, g.created_at, g.dismissed_at ORDER BY g.created_at, g.chat_id")
            .bind(tenant),
    )
    .await
}

/// Active groups of a kind (or one group), by owner: SOP targets.
pub async fn active_by_owner(
    db: &Db,
    tenant: TenantId,
    kind: Option<&str>,
    chat_id: Option<&str>,
) -> Result<HashMap<String, Vec<String>>, DbError> {
    let rows: Vec<(String, String)> = db
        .fetch_all(
            &sql("SELECT owner, chat_id FROM wecom_groups WHERE tenant_id = $1 AND dismissed_at IS NULL \
                  AND ($2 IS NULL OR kind = $2) AND ($3 IS NULL OR chat_id = $3) ORDER BY chat_id")
                .bind(tenant)
                .bind(kind)
                .bind(chat_id),
        )
        .await?;
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for (owner, chat) in rows {
        out.entry(owner).or_default().push(chat);
    }
    Ok(out)
}

/// One join cohort: the members who joined in a local week, and how many of them were still in
/// their group 1, 2, … weeks after they joined.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Cohort {
    /// Monday 00:00 local time of the join week, UTC ms.
    pub week_start: i64,
    pub joined: i64,
    /// Index k-1 holds week k; None until every member of the cohort is k weeks in.
    pub retained: Vec<Option<i64>>,
    /// retained ÷ the members observed that long: stints ended by a dismissal before week k
    /// are neither kept nor lost.
    pub rate: Vec<Option<f64>>,
}

const WEEK: i64 = 7 * 86_400_000;

/// The retention table of member stints (joined, left). A stint is retained at week k when it
/// had not ended k weeks after it began. A cell is filled once the whole cohort week is k weeks
/// old, so a partly observed week never shows as loss.
/// A stint: joined, left, and whether it ended because the group was dismissed.
pub type Stint = (i64, Option<i64>, bool);

pub fn retention_table(stints: &[Stint], now: i64, weeks: usize, offset_min: i64) -> Vec<Cohort> {
    let mut by_week: std::collections::BTreeMap<i64, Vec<Stint>> = Default::default();
    for &(joined, left, dismissed) in stints {
        let day = local_day(joined, offset_min);
        // Days since the Monday (1970-01-01 was a Thursday: day 0 is weekday 3 counting Monday = 0).
        let monday = day - (day + 3).rem_euclid(7);
        let start = monday * 86_400_000 - offset_min * 60_000;
        by_week
            .entry(start)
            .or_default()
            .push((joined, left, dismissed));
    }
    by_week
        .into_iter()
        .map(|(start, members)| {
            let mut retained = Vec::with_capacity(weeks);
            let mut rate = Vec::with_capacity(weeks);
            for k in 1..=weeks as i64 {
                if start + WEEK + k * WEEK > now {
                    retained.push(None);
                    rate.push(None);
                    continue;
                }
                let kept = |s: &&Stint| s.1.is_none_or(|l| l > s.0 + k * WEEK);
                let n = members.iter().filter(kept).count() as i64;
                // Stints cut short by a dismissal are not losses: out of the share from then on.
                let unobserved = members.iter().filter(|s| s.2 && !kept(s)).count();
                retained.push(Some(n));
                rate.push(
                    (members.len() > unobserved)
                        .then(|| n as f64 / (members.len() - unobserved) as f64),
                );
            }
            Cohort {
                week_start: start,
                joined: members.len() as i64,
                retained,
                rate,
            }
        })
        .collect()
}

/// Retention of customers (external members) in groups of a kind, or all groups.
pub async fn retention(
    db: &Db,
    tenant: TenantId,
    kind: Option<&str>,
    now: i64,
    weeks: usize,
    offset_min: i64,
) -> Result<Vec<Cohort>, DbError> {
    let rows: Vec<(i64, Option<i64>, Option<i64>)> = db
        .fetch_all(
            &sql(
                "SELECT m.joined_at, m.left_at, m.quit_scene FROM wecom_group_members m JOIN wecom_groups g \
                    ON g.tenant_id = m.tenant_id AND g.chat_id = m.chat_id \
                  WHERE m.tenant_id = $1 AND m.member_type = 2 AND ($2 IS NULL OR g.kind = $2)",
            )
            .bind(tenant)
            .bind(kind),
        )
        .await?;
    let stints: Vec<Stint> = rows
        .into_iter()
        .map(|(j, l, q)| (j, l, q == Some(DISMISSED)))
        .collect();
    Ok(retention_table(&stints, now, weeks, offset_min))
}

/// The groups a customer is in now (as a WeCom contact of the brand), by name.
pub async fn groups_of(
    db: &Db,
    tenant: TenantId,
    customer: crate::know::CustomerId,
) -> Result<Vec<(String, String)>, DbError> {
    db.fetch_all(
        &sql(
            "SELECT DISTINCT g.name, g.kind FROM wecom_group_members m \
             JOIN wecom_groups g ON g.tenant_id = m.tenant_id AND g.chat_id = m.chat_id \
             WHERE m.tenant_id = $1 AND m.left_at IS NULL AND g.dismissed_at IS NULL AND m.member_id IN \
             (SELECT external_userid FROM wecom_contacts WHERE tenant_id = $1 AND customer_id = $2) \
             ORDER BY g.name",
        )
        .bind(tenant)
        .bind(customer),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2024-06-17 00:00 Beijing (a Monday).
    const MON: i64 = 1_718_553_600_000;
    const DAY: i64 = 86_400_000;

    #[test]
    fn cohorts_start_on_local_mondays_and_fill_only_when_whole() {
        let stints = vec![
            (MON + DAY, None, false),                     // in week 1 cohort, stays
            (MON + 6 * DAY, Some(MON + 10 * DAY), false), // leaves 4 days in: lost by week 1
            (MON + 7 * DAY, Some(MON + 30 * DAY), false), // next cohort, leaves after 23 days
        ];
        let now = MON + 5 * WEEK;
        let t = retention_table(&stints, now, 4, 480);
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].week_start, MON);
        assert_eq!(t[0].joined, 2);
        assert_eq!(t[0].retained, vec![Some(1), Some(1), Some(1), Some(1)]);
        assert_eq!(t[1].week_start, MON + WEEK);
        assert_eq!(t[1].retained, vec![Some(1), Some(1), Some(1), None]);
        assert_eq!(t[1].rate[3], None);
    }

    #[test]
    fn a_dismissal_is_not_counted_as_members_leaving() {
        // Both stay ten days; then the group is dismissed under one of them.
        let stints = vec![(MON, None, false), (MON, Some(MON + 10 * DAY), true)];
        let t = retention_table(&stints, MON + 6 * WEEK, 3, 480);
        assert_eq!(t[0].retained, vec![Some(2), Some(1), Some(1)]);
        assert_eq!(t[0].rate, vec![Some(1.0), Some(1.0), Some(1.0)]);
        // Had they left on their own, it would be a loss.
        let left = vec![(MON, None, false), (MON, Some(MON + 10 * DAY), false)];
        assert_eq!(
            retention_table(&left, MON + 6 * WEEK, 3, 480)[0].rate[1],
            Some(0.5)
        );
    }
}
