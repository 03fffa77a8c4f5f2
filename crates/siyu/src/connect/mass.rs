//! Mass messages to customers (群发) through their guides: an audience from a segment snapshot
//! or tags, each customer reached through the guide who added them last, one WeCom task per
//! guide (`add_msg_template`), results read back, reminders sent. WeCom lets a customer receive
//! one mass message a day; Siyu's contact policy (quiet hours, the weekly marketing cap) applies
//! on top.

use crate::platform::TenantId;
use crate::platform::refusal::{Refusal, Refuse};
use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::client::{Content, WecomApi};
use super::live_codes::local_day;
use super::tasks::GuideTaskStatus;
use crate::engage::policy::{self, Facts, Purpose, Verdict};
use crate::know::segments;
use crate::platform::db::{Db, DbError, sql};

/// WeCom: each customer receives at most this many mass messages from the corp per day.
pub const WECOM_PER_CUSTOMER_PER_DAY: i64 = 1;

#[derive(Debug, thiserror::Error)]
pub enum MassError {
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("mass message {0} not found")]
    NotFound(i64),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl Refuse for MassError {
    fn refusal(&self) -> Refusal {
        match self {
            MassError::NotFound(_) => Refusal::NotFound("not_found"),
            MassError::Db(_) => Refusal::Internal,
            _ => Refusal::Invalid,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Audience {
    #[serde(default)]
    pub snapshot_id: Option<i64>,
    /// Customers with any of these tags.
    #[serde(default)]
    pub tag_ids: Vec<i64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewMass {
    pub name: String,
    pub audience: Audience,
    pub content: Content,
    /// marketing (the default) or service.
    #[serde(default)]
    pub purpose: Option<String>,
    /// Not before this time (UTC ms); default now.
    #[serde(default)]
    pub not_before: Option<i64>,
    #[serde(default)]
    pub remind_after_minutes: Option<i64>,
}

pub async fn create(db: &Db, tenant: TenantId, n: NewMass, now: i64) -> Result<i64, MassError> {
    let bad = |field, reason: String| MassError::Invalid { field, reason };
    if n.name.trim().is_empty() {
        return Err(bad("name", "is empty".into()));
    }
    if n.audience.snapshot_id.is_none() == n.audience.tag_ids.is_empty() {
        return Err(bad(
            "audience",
            "give snapshot_id or tag_ids, one of them".into(),
        ));
    }
    if let Some(s) = n.audience.snapshot_id {
        segments::snapshot_members(db, tenant, s)
            .await
            .map_err(|e| bad("audience.snapshot_id", e.to_string()))?;
    }
    n.content.check("content").map_err(|r| bad("content", r))?;
    let purpose = n.purpose.unwrap_or_else(|| "marketing".into());
    if !matches!(
        Purpose::parse(&purpose),
        Some(Purpose::Marketing | Purpose::Service)
    ) {
        return Err(bad(
            "purpose",
            format!("{purpose:?} is not marketing or service"),
        ));
    }
    let remind = n.remind_after_minutes.unwrap_or(120);
    if !(1..=7 * 24 * 60).contains(&remind) {
        return Err(bad("remind_after_minutes", "must be 1 … 10080".into()));
    }
    let mut tx = db.begin().await?;
    let id = tx.reserve_ids("mass_message", 1).await?;
    tx.execute(
        &sql("INSERT INTO mass_messages (id, tenant_id, name, audience, content, purpose, remind_after_ms, status, not_before, created_at) \
              VALUES ($1, $2, $3, $4, $5, $6, $7, 'scheduled', $8, $9)")
            .bind(id)
            .bind(tenant)
            .bind(n.name.trim())
            .bind(serde_json::to_string(&n.audience).unwrap_or_default())
            .bind(serde_json::to_string(&n.content).unwrap_or_default())
            .bind(purpose)
            .bind(remind * 60_000)
            .bind(n.not_before.unwrap_or(now))
            .bind(now),
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

async fn audience_customers(
    db: &Db,
    tenant: TenantId,
    a: &Audience,
) -> Result<HashSet<i64>, MassError> {
    if let Some(s) = a.snapshot_id {
        let (_, members) = segments::snapshot_members(db, tenant, s)
            .await
            .map_err(|e| MassError::Invalid {
                field: "audience.snapshot_id",
                reason: e.to_string(),
            })?;
        return Ok(members.iter().map(i64::from).collect());
    }
    let mut out = HashSet::new();
    for t in &a.tag_ids {
        let rows: Vec<(i64,)> = db
            .fetch_all(
                &sql("SELECT customer_id FROM customer_tags WHERE tenant_id = $1 AND tag_id = $2")
                    .bind(tenant)
                    .bind(*t),
            )
            .await?;
        out.extend(rows.into_iter().map(|r| r.0));
    }
    Ok(out)
}

/// One recipient of a mass message as its release decides them.
struct Decision {
    customer: i64,
    ext: String,
    /// The guide who added them last, among those still holding them.
    guide: String,
    /// `assigned`, or why not: `unsubscribed`, `daily_limit`, `capped`.
    status: &'static str,
}

/// How each customer of the audience with a WeCom contact is decided now (unsubscribes, WeCom's
/// one mass message a day, the weekly marketing cap), in a fixed order so that each guide's parts
/// are the same on every run. Customers with no contact are not in it.
async fn decide(
    db: &Db,
    tenant: TenantId,
    customers: &HashSet<i64>,
    purpose: Purpose,
    pol: &policy::ContactPolicy,
    now: i64,
) -> Result<Vec<Decision>, MassError> {
    let rows: Vec<(i64, String, String, i64)> = db
        .fetch_all(
            &sql(
                "SELECT customer_id, external_userid, userid, added_at FROM wecom_contacts \
                  WHERE tenant_id = $1 AND deleted_at IS NULL AND customer_id IS NOT NULL",
            )
            .bind(tenant),
        )
        .await?;
    let mut via: HashMap<i64, (String, String, i64)> = HashMap::new();
    for (c, ext, guide, at) in rows {
        if customers.contains(&c) && via.get(&c).is_none_or(|v| at > v.2) {
            via.insert(c, (ext, guide, at));
        }
    }
    let day = local_day(now, pol.utc_offset_minutes);
    let today: Vec<(String, i64)> = db
        .fetch_all(
            &sql("SELECT external_userid, COUNT(*) FROM mass_recipients WHERE tenant_id = $1 AND day = $2 AND status IN ('assigned', 'sent') GROUP BY external_userid")
                .bind(tenant)
                .bind(day),
        )
        .await?;
    let today: HashMap<String, i64> = today.into_iter().collect();
    let week: Vec<(i64, i64)> = db
        .fetch_all(
            // The weekly cap counts marketing only.
            &sql("SELECT r.customer_id, COUNT(*) FROM mass_recipients r JOIN mass_messages m ON m.tenant_id = r.tenant_id AND m.id = r.mass_id \
                  WHERE r.tenant_id = $1 AND r.created_at > $2 AND r.status IN ('assigned', 'sent') AND m.purpose = 'marketing' GROUP BY r.customer_id")
                .bind(tenant)
                .bind(now - 7 * 86_400_000),
        )
        .await?;
    let week: HashMap<i64, i64> = week.into_iter().collect();
    // Customers who asked not to get mass messages on WeCom (by external_userid, which is a
    // pseudonymous id, not personal data like a phone).
    let opted_out: Vec<(String,)> = db
        .fetch_all(
            &sql(
                "SELECT address_hash FROM unsubscribes WHERE tenant_id = $1 AND channel = 'wecom'",
            )
            .bind(tenant),
        )
        .await?;
    let opted_out: HashSet<String> = opted_out.into_iter().map(|r| r.0).collect();
    let mut order: Vec<(i64, (String, String, i64))> = via.into_iter().collect();
    order.sort_by(|x, y| (&x.1.1, &x.1.0).cmp(&(&y.1.1, &y.1.0)));
    Ok(order
        .into_iter()
        .map(|(c, (ext, guide, _))| {
            let status = if opted_out.contains(ext.as_str()) {
                "unsubscribed"
            } else if today.get(&ext).copied().unwrap_or(0) >= WECOM_PER_CUSTOMER_PER_DAY {
                "daily_limit"
            } else {
                let facts = Facts {
                    unsubscribed: false,
                    sent_this_week: week.get(&c).copied().unwrap_or(0),
                    duplicate: false,
                };
                match pol.decide(purpose, now, facts) {
                    Verdict::Suppress(s) => s.as_str(),
                    _ => "assigned",
                }
            };
            Decision {
                customer: c,
                ext,
                guide,
                status,
            }
        })
        .collect())
}

/// Who a mass message would reach if it were released now: the audience, those with no WeCom
/// contact, each decision counted, and when quiet hours would hold a marketing message until.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Reach {
    pub audience: usize,
    pub no_contact: usize,
    /// `assigned` (handed to a guide to send), `unsubscribed`, `daily_limit`, `capped`.
    pub decided: std::collections::BTreeMap<&'static str, usize>,
    pub held_until: Option<i64>,
}

/// [`Reach`] of an audience for a message of `purpose` released at `at` (the same decisions the
/// release makes, nothing written).
pub async fn reach(
    db: &Db,
    tenant: TenantId,
    audience: &Audience,
    purpose: Purpose,
    at: i64,
) -> Result<Reach, MassError> {
    let pol = policy::load(db, tenant).await.map_err(|e| match e {
        policy::PolicyError::Db(d) => MassError::Db(d),
        other => MassError::Invalid {
            field: "policy",
            reason: other.to_string(),
        },
    })?;
    let customers = audience_customers(db, tenant, audience).await?;
    let held_until = (purpose == Purpose::Marketing)
        .then(|| pol.quiet_until(at))
        .flatten();
    let decisions = decide(
        db,
        tenant,
        &customers,
        purpose,
        &pol,
        held_until.unwrap_or(at),
    )
    .await?;
    let mut decided = std::collections::BTreeMap::new();
    for d in &decisions {
        *decided.entry(d.status).or_insert(0) += 1;
    }
    Ok(Reach {
        audience: customers.len(),
        no_contact: customers.len() - decisions.len(),
        decided,
        held_until,
    })
}

/// Releases mass messages that are due: decides each recipient and hands each guide a task (or
/// several, of at most WeCom's 10,000 customers each). Returns tasks handed to WeCom.
pub async fn release_due(
    db: &Db,
    api: &WecomApi,
    tenant: TenantId,
    now: i64,
) -> Result<usize, MassError> {
    release_due_in_parts(db, api, tenant, now, super::client::MAX_TASK_CONTACTS).await
}

/// [`release_due`] with the most customers one task may carry.
pub async fn release_due_in_parts(
    db: &Db,
    api: &WecomApi,
    tenant: TenantId,
    now: i64,
    per_task: usize,
) -> Result<usize, MassError> {
    let per_task = per_task.max(1);
    let due: Vec<(i64, String, String, String)> = db
        .fetch_all(
            &sql("SELECT id, audience, content, purpose FROM mass_messages WHERE tenant_id = $1 AND status = 'scheduled' AND not_before <= $2 ORDER BY id")
                .bind(tenant)
                .bind(now),
        )
        .await?;
    if due.is_empty() {
        return release_pending(db, api, tenant).await;
    }
    let pol = policy::load(db, tenant).await.map_err(|e| match e {
        policy::PolicyError::Db(d) => MassError::Db(d),
        other => MassError::Invalid {
            field: "policy",
            reason: other.to_string(),
        },
    })?;
    let offset = pol.utc_offset_minutes;
    for (id, audience, _content, purpose) in due {
        let purpose = Purpose::parse(&purpose).unwrap_or(Purpose::Marketing);
        if purpose == Purpose::Marketing
            && let Some(until) = pol.quiet_until(now)
        {
            // Quiet hours: hold the whole message, as the outbox holds SMS.
            db.execute(
                &sql("UPDATE mass_messages SET not_before = $2 WHERE tenant_id = $3 AND id = $1")
                    .bind(id)
                    .bind(until)
                    .bind(tenant),
            )
            .await?;
            continue;
        }
        let audience: Audience = serde_json::from_str(&audience).unwrap_or_default();
        let customers = audience_customers(db, tenant, &audience).await?;
        let decisions = decide(db, tenant, &customers, purpose, &pol, now).await?;
        let day = local_day(now, offset);
        let mut tx = db.begin().await?;
        // Claimed first, in the same transaction: another tick that read it finds it taken.
        let claimed = tx
            .execute(
                &sql("UPDATE mass_messages SET status = 'released', released_at = $3 WHERE tenant_id = $1 AND id = $2 AND status = 'scheduled'")
                    .bind(tenant)
                    .bind(id)
                    .bind(now),
            )
            .await?;
        if claimed == 0 {
            continue;
        }
        #[allow(clippy::type_complexity)]
        let mut decided: Vec<(i64, &str, &str, &'static str, Option<i64>)> =
            Vec::with_capacity(decisions.len());
        // (guide, part) → (task id, recipients)
        let mut parts: HashMap<(String, i64), (i64, i64)> = HashMap::new();
        let mut per_guide: HashMap<&str, i64> = HashMap::new();
        for d in &decisions {
            let task = if d.status == "assigned" {
                let n = per_guide.entry(d.guide.as_str()).or_default();
                let part = *n / per_task as i64;
                *n += 1;
                let key = (d.guide.clone(), part);
                if !parts.contains_key(&key) {
                    let task = tx.reserve_ids("mass_task", 1).await?;
                    parts.insert(key.clone(), (task, 0));
                }
                let slot = parts.entry(key).or_insert((0, 0));
                slot.1 += 1;
                Some(slot.0)
            } else {
                None
            };
            decided.push((d.customer, d.ext.as_str(), d.guide.as_str(), d.status, task));
        }
        for ((sender, part), (task, n)) in &parts {
            tx.execute(
                &sql("INSERT INTO mass_tasks (id, tenant_id, mass_id, sender, part, recipients, status, created_at) VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7) \
                      ON CONFLICT (mass_id, sender, part) DO NOTHING")
                    .bind(*task)
                    .bind(tenant)
                    .bind(id)
                    .bind(sender.as_str())
                    .bind(*part)
                    .bind(*n)
                    .bind(now),
            )
            .await?;
        }
        for (c, ext, guide, status, task) in decided {
            tx.execute(
                &sql("INSERT INTO mass_recipients (tenant_id, mass_id, customer_id, external_userid, sender, task_id, status, day, created_at) \
                      VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (mass_id, external_userid) DO NOTHING")
                    .bind(tenant)
                    .bind(id)
                    .bind(c)
                    .bind(ext)
                    .bind(guide)
                    .bind(task)
                    .bind(status)
                    .bind(day)
                    .bind(now),
            )
            .await?;
        }
        let without_contact = customers.len() - decisions.len();
        let mut a = serde_json::to_value(&audience).unwrap_or_default();
        a["size"] = json!(customers.len());
        a["without_contact"] = json!(without_contact);
        tx.execute(
            &sql("UPDATE mass_messages SET audience = $3 WHERE tenant_id = $1 AND id = $2")
                .bind(tenant)
                .bind(id)
                .bind(a.to_string()),
        )
        .await?;
        tx.commit().await?;
    }
    release_pending(db, api, tenant).await
}

/// Hands tasks written but not yet in WeCom to their guides.
async fn release_pending(db: &Db, api: &WecomApi, tenant: TenantId) -> Result<usize, MassError> {
    let pending: Vec<(i64, i64, String, String)> = db
        .fetch_all(
            &sql("SELECT t.id, t.mass_id, t.sender, m.content FROM mass_tasks t JOIN mass_messages m ON m.id = t.mass_id \
                  WHERE t.tenant_id = $1 AND t.status = 'pending' ORDER BY t.id")
                .bind(tenant),
        )
        .await?;
    let mut handed = 0;
    for (task, mass, sender, content) in pending {
        if !super::tasks::claim(db, super::tasks::Tasks::Mass, tenant, task).await? {
            continue;
        }
        let content: Content = serde_json::from_str(&content).unwrap_or_default();
        let ext: Vec<(String,)> = db
            .fetch_all(
                &sql("SELECT external_userid FROM mass_recipients WHERE tenant_id = $3 AND mass_id = $1 AND task_id = $2 AND status = 'assigned' ORDER BY external_userid")
                    .bind(mass)
                    .bind(task).bind(tenant),
            )
            .await?;
        let ext: Vec<String> = ext.into_iter().map(|r| r.0).collect();
        match api
            .add_msg_template("single", &sender, &ext, &[], &content)
            .await
        {
            Ok((msgid, failed)) => {
                handed += 1;
                let mut tx = db.begin().await?;
                tx.execute(
                    &sql("UPDATE mass_tasks SET status = 'assigned', msgid = $2 WHERE tenant_id = $3 AND id = $1")
                        .bind(task)
                        .bind(msgid).bind(tenant),
                )
                .await?;
                for f in failed {
                    tx.execute(
                        &sql("UPDATE mass_recipients SET status = 'refused' WHERE tenant_id = $3 AND mass_id = $1 AND external_userid = $2")
                            .bind(mass)
                            .bind(f).bind(tenant),
                    )
                    .await?;
                }
                tx.commit().await?;
            }
            Err(e @ super::client::WecomError::Transport { .. }) => {
                // WeCom may have made the task: left `sending` for `tasks::reconcile`.
                db.execute(
                    &sql("UPDATE mass_tasks SET error = $2 WHERE tenant_id = $3 AND id = $1")
                        .bind(task)
                        .bind(e.to_string())
                        .bind(tenant),
                )
                .await?;
            }
            Err(e) => {
                let mut tx = db.begin().await?;
                tx.execute(
                    &sql("UPDATE mass_tasks SET status = 'failed', error = $2 WHERE tenant_id = $3 AND id = $1")
                        .bind(task)
                        .bind(e.to_string()).bind(tenant),
                )
                .await?;
                // Not reached: they no longer count toward the daily limit or the weekly cap.
                tx.execute(
                    &sql("UPDATE mass_recipients SET status = 'failed' WHERE tenant_id = $3 AND mass_id = $1 AND task_id = $2 AND status = 'assigned'")
                        .bind(mass)
                        .bind(task).bind(tenant),
                )
                .await?;
                tx.commit().await?;
            }
        }
    }
    Ok(handed)
}

/// Reads back each guide's sends; reminds guides past the reminder time once.
/// Returns (tasks completed, reminders sent).
pub async fn follow_up(
    db: &Db,
    api: &WecomApi,
    tenant: TenantId,
    now: i64,
) -> Result<(usize, usize), MassError> {
    #[allow(clippy::type_complexity)]
    let open: Vec<(i64, i64, String, String, i64, Option<i64>, i64)> = db
        .fetch_all(
            &sql("SELECT t.id, t.mass_id, t.sender, t.msgid, t.created_at, t.reminded_at, m.remind_after_ms FROM mass_tasks t \
                  JOIN mass_messages m ON m.id = t.mass_id WHERE t.tenant_id = $1 AND t.status = 'assigned' AND t.msgid IS NOT NULL")
                .bind(tenant),
        )
        .await?;
    let (mut done, mut reminded) = (0, 0);
    for (task, mass, sender, msgid, created, reminded_at, remind_after) in open {
        let results = match api.get_groupmsg_send_result(&msgid, &sender).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, task, "mass-message result not read; will retry");
                continue;
            }
        };
        let mut tx = db.begin().await?;
        let mut sent = 0;
        for r in &results {
            let status = match r.status {
                1 => "sent",
                2 => "not_contact",
                3 => "limit",
                _ => continue,
            };
            sent += i64::from(r.status == 1);
            if let Some(ext) = &r.external_userid {
                tx.execute(
                    &sql("UPDATE mass_recipients SET status = $3 WHERE tenant_id = $4 AND mass_id = $1 AND external_userid = $2")
                        .bind(mass)
                        .bind(ext.as_str())
                        .bind(status).bind(tenant),
                )
                .await?;
            }
        }
        let finished = !results.is_empty() && results.iter().all(|r| r.status != 0);
        tx.execute(
            &sql("UPDATE mass_tasks SET sent = $2, status = $3, completed_at = $4 WHERE tenant_id = $5 AND id = $1")
                .bind(task)
                .bind(sent)
                .bind(if finished {
                    GuideTaskStatus::Done
                } else {
                    GuideTaskStatus::Assigned
                })
                .bind(finished.then_some(now)).bind(tenant),
        )
        .await?;
        tx.commit().await?;
        if finished {
            done += 1;
        } else if reminded_at.is_none() && now >= created + remind_after {
            if let Err(e) = api.remind_groupmsg_send(&msgid).await {
                tracing::warn!(error = %e, task, "mass-message reminder not sent; will retry");
                continue;
            }
            db.execute(
                &sql("UPDATE mass_tasks SET reminded_at = $2 WHERE tenant_id = $3 AND id = $1")
                    .bind(task)
                    .bind(now)
                    .bind(tenant),
            )
            .await?;
            reminded += 1;
        }
    }
    Ok((done, reminded))
}

#[derive(Debug, Clone, Serialize, PartialEq, sqlx::FromRow)]
pub struct GuideTask {
    pub sender: String,
    /// 0, or 1, 2 … for a guide with more customers than one WeCom task takes.
    pub part: i64,
    pub msgid: Option<String>,
    pub recipients: i64,
    pub sent: i64,
    pub status: GuideTaskStatus,
    pub error: Option<String>,
    pub reminded_at: Option<i64>,
    pub completed_at: Option<i64>,
}

crate::platform::text_enum::text_enum! {
    /// A mass message is `scheduled` until its time comes and it is `released` to the guides.
    pub enum MassStatus {
        Scheduled = "scheduled",
        Released = "released",
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MassView {
    pub id: i64,
    pub name: String,
    pub purpose: String,
    pub status: MassStatus,
    pub audience: serde_json::Value,
    pub content: Content,
    pub not_before: i64,
    pub released_at: Option<i64>,
    /// Recipients by status: assigned, sent, capped, daily_limit, refused, not_contact, limit.
    pub recipients: HashMap<String, i64>,
    /// Completion by guide.
    pub tasks: Vec<GuideTask>,
}

pub async fn get(db: &Db, tenant: TenantId, id: i64) -> Result<MassView, MassError> {
    #[allow(clippy::type_complexity)]
    let row: Option<(String, String, MassStatus, String, String, i64, Option<i64>)> = db
        .fetch_optional(
            &sql("SELECT name, purpose, status, audience, content, not_before, released_at FROM mass_messages WHERE tenant_id = $1 AND id = $2")
                .bind(tenant)
                .bind(id),
        )
        .await?;
    let r = row.ok_or(MassError::NotFound(id))?;
    let counts: Vec<(String, i64)> = db
        .fetch_all(
            &sql("SELECT status, COUNT(*) FROM mass_recipients WHERE tenant_id = $2 AND mass_id = $1 GROUP BY status")
                .bind(id).bind(tenant),
        )
        .await?;
    let tasks: Vec<GuideTask> = db
        .fetch_all(
            &sql("SELECT sender, part, msgid, recipients, sent, status, error, reminded_at, completed_at FROM mass_tasks WHERE tenant_id = $2 AND mass_id = $1 ORDER BY sender, part")
                .bind(id).bind(tenant),
        )
        .await?;
    Ok(MassView {
        id,
        name: r.0,
        purpose: r.1,
        status: r.2,
        audience: serde_json::from_str(&r.3).unwrap_or_default(),
        content: serde_json::from_str(&r.4).unwrap_or_default(),
        not_before: r.5,
        released_at: r.6,
        recipients: counts.into_iter().collect(),
        tasks,
    })
}

pub async fn list(db: &Db, tenant: TenantId) -> Result<Vec<MassView>, MassError> {
    let ids: Vec<(i64,)> = db
        .fetch_all(
            &sql("SELECT id FROM mass_messages WHERE tenant_id = $1 ORDER BY id DESC LIMIT 50")
                .bind(tenant),
        )
        .await?;
    let mut out = Vec::with_capacity(ids.len());
    for (id,) in ids {
        out.push(get(db, tenant, id).await?);
    }
    Ok(out)
}
