//! Group SOP (群SOP): a calendar of posts for a kind of group or one group. When a post is due,
//! each owner of the target groups gets a WeCom mass-message task for their groups
//! (`add_msg_template` with `chat_id_list`), which they confirm in WeCom; a reminder follows if
//! they have not sent it in time, and completion is read back from WeCom.

use crate::platform::TenantId;
use crate::platform::refusal::{Refusal, Refuse};
use serde::{Deserialize, Serialize};

use super::client::{Content, WecomApi};
use super::groups::{self, KINDS};
use crate::platform::db::{Db, DbError, sql};

#[derive(Debug, thiserror::Error)]
pub enum SopError {
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error(transparent)]
    Db(#[from] DbError),
}

impl Refuse for SopError {
    fn refusal(&self) -> Refusal {
        match self {
            SopError::Db(_) => Refusal::Internal,
            _ => Refusal::Invalid,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPost {
    pub name: String,
    /// Every active group of this kind…
    #[serde(default)]
    pub group_kind: Option<String>,
    /// …or this one group.
    #[serde(default)]
    pub chat_id: Option<String>,
    /// UTC ms.
    pub due_at: i64,
    pub content: Content,
    /// Remind the owner this long after the task if it is not sent (default 60).
    #[serde(default)]
    pub remind_after_minutes: Option<i64>,
    /// Repeat every this many days (7: every week on the same weekday and time); when a post is
    /// released, its next date joins the calendar.
    #[serde(default)]
    pub repeat_every_days: Option<i64>,
}

#[derive(Debug, Clone, Serialize, PartialEq, sqlx::FromRow)]
pub struct Task {
    pub id: i64,
    pub post_id: i64,
    pub owner: String,
    pub chat_ids: String,
    pub msgid: Option<String>,
    pub status: super::tasks::GuideTaskStatus,
    pub error: Option<String>,
    pub created_at: i64,
    pub reminded_at: Option<i64>,
    pub completed_at: Option<i64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Post {
    pub id: i64,
    pub name: String,
    pub group_kind: Option<String>,
    pub chat_id: Option<String>,
    pub due_at: i64,
    pub content: Content,
    pub remind_after_ms: i64,
    pub repeat_every_days: Option<i64>,
    pub released_at: Option<i64>,
    pub tasks: Vec<Task>,
}

pub async fn create(db: &Db, tenant: TenantId, n: NewPost, now: i64) -> Result<i64, SopError> {
    let bad = |field, reason: &str| SopError::Invalid {
        field,
        reason: reason.to_owned(),
    };
    if n.name.trim().is_empty() {
        return Err(bad("name", "is empty"));
    }
    match (&n.group_kind, &n.chat_id) {
        (Some(k), None) if KINDS.contains(&k.as_str()) => {}
        (Some(k), None) => {
            return Err(bad(
                "group_kind",
                &format!("{k:?} is not one of {}", KINDS.join(", ")),
            ));
        }
        (None, Some(c)) if !c.trim().is_empty() => {}
        _ => return Err(bad("group_kind", "give group_kind or chat_id, one of them")),
    }
    n.content.check("content").map_err(|r| SopError::Invalid {
        field: "content",
        reason: r,
    })?;
    let remind = n.remind_after_minutes.unwrap_or(60);
    if !(1..=7 * 24 * 60).contains(&remind) {
        return Err(bad("remind_after_minutes", "must be 1 … 10080"));
    }
    if n.repeat_every_days.is_some_and(|d| !(1..=365).contains(&d)) {
        return Err(bad("repeat_every_days", "must be 1 … 365"));
    }
    let mut tx = db.begin().await?;
    let id = tx.reserve_ids("sop_post", 1).await?;
    tx.execute(
        &sql("INSERT INTO sop_posts (id, tenant_id, name, group_kind, chat_id, due_at, content, remind_after_ms, repeat_days, created_at) \
              VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
            .bind(id)
            .bind(tenant)
            .bind(n.name.trim())
            .bind(n.group_kind)
            .bind(n.chat_id)
            .bind(n.due_at)
            .bind(serde_json::to_string(&n.content).unwrap_or_default())
            .bind(remind * 60_000)
            .bind(n.repeat_every_days)
            .bind(now),
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// Posts due between `from` and `to`, with their tasks.
pub async fn calendar(db: &Db, tenant: TenantId, from: i64, to: i64) -> Result<Vec<Post>, DbError> {
    #[allow(clippy::type_complexity)]
    let rows: Vec<(i64, String, Option<String>, Option<String>, i64, String, i64, Option<i64>, Option<i64>)> = db
        .fetch_all(
            &sql("SELECT id, name, group_kind, chat_id, due_at, content, remind_after_ms, released_at, repeat_days FROM sop_posts \
                  WHERE tenant_id = $1 AND due_at >= $2 AND due_at < $3 ORDER BY due_at, id")
                .bind(tenant)
                .bind(from)
                .bind(to),
        )
        .await?;
    let tasks: Vec<Task> = db
        .fetch_all(
            &sql("SELECT t.id, t.post_id, t.owner, t.chat_ids, t.msgid, t.status, t.error, t.created_at, t.reminded_at, t.completed_at \
                  FROM sop_tasks t JOIN sop_posts p ON p.id = t.post_id \
                  WHERE t.tenant_id = $1 AND p.due_at >= $2 AND p.due_at < $3 ORDER BY t.owner")
                .bind(tenant)
                .bind(from)
                .bind(to),
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| Post {
            id: r.0,
            name: r.1,
            group_kind: r.2,
            chat_id: r.3,
            due_at: r.4,
            content: serde_json::from_str(&r.5).unwrap_or_default(),
            remind_after_ms: r.6,
            repeat_every_days: r.8,
            released_at: r.7,
            tasks: tasks.iter().filter(|t| t.post_id == r.0).cloned().collect(),
        })
        .collect())
}

/// Hands due posts to group owners; returns tasks handed to WeCom.
pub async fn release_due(
    db: &Db,
    api: &WecomApi,
    tenant: TenantId,
    now: i64,
) -> Result<usize, DbError> {
    #[allow(clippy::type_complexity)]
    let due: Vec<(i64, Option<String>, Option<String>, i64, Option<i64>)> = db
        .fetch_all(
            &sql("SELECT id, group_kind, chat_id, due_at, repeat_days FROM sop_posts WHERE tenant_id = $1 AND released_at IS NULL AND due_at <= $2 ORDER BY due_at")
                .bind(tenant)
                .bind(now),
        )
        .await?;
    for (post, kind, chat, due_at, repeat) in due {
        let targets = groups::active_by_owner(db, tenant, kind.as_deref(), chat.as_deref()).await?;
        let mut tx = db.begin().await?;
        // Claimed first: a second tick (or server) that read the same post finds it taken.
        let claimed = tx
            .execute(
                &sql("UPDATE sop_posts SET released_at = $3 WHERE tenant_id = $1 AND id = $2 AND released_at IS NULL")
                    .bind(tenant)
                    .bind(post)
                    .bind(now),
            )
            .await?;
        if claimed == 0 {
            continue;
        }
        for (owner, chats) in targets {
            let id = tx.reserve_ids("sop_task", 1).await?;
            tx.execute(
                &sql("INSERT INTO sop_tasks (id, tenant_id, post_id, owner, chat_ids, status, created_at) VALUES ($1, $2, $3, $4, $5, 'pending', $6) \
                      ON CONFLICT (post_id, owner) DO NOTHING")
                    .bind(id)
                    .bind(tenant)
                    .bind(post)
                    .bind(owner)
                    .bind(serde_json::to_string(&chats).unwrap_or_default())
                    .bind(now),
            )
            .await?;
        }
        if let Some(days) = repeat.filter(|d| *d > 0) {
            // The next date after now (dates missed while nothing ran are skipped, not sent late).
            let step = days * 86_400_000;
            let next = due_at + step * ((now - due_at).div_euclid(step) + 1);
            let id = tx.reserve_ids("sop_post", 1).await?;
            tx.execute(
                &sql("INSERT INTO sop_posts (id, tenant_id, name, group_kind, chat_id, due_at, content, remind_after_ms, repeat_days, created_at) \
                      SELECT $2, tenant_id, name, group_kind, chat_id, $3, content, remind_after_ms, repeat_days, $4 FROM sop_posts WHERE id = $1")
                    .bind(post)
                    .bind(id)
                    .bind(next)
                    .bind(now),
            )
            .await?;
        }
        tx.commit().await?;
    }
    // Tasks written but not yet handed over (now, or before a crash).
    let pending: Vec<(i64, String, String, String)> = db
        .fetch_all(
            &sql("SELECT t.id, t.owner, t.chat_ids, p.content FROM sop_tasks t JOIN sop_posts p ON p.id = t.post_id \
                  WHERE t.tenant_id = $1 AND t.status = 'pending' ORDER BY t.id")
                .bind(tenant),
        )
        .await?;
    let mut handed = 0;
    for (id, owner, chats, content) in pending {
        if !super::tasks::claim(db, super::tasks::Tasks::Sop, tenant, id).await? {
            continue;
        }
        let chats: Vec<String> = serde_json::from_str(&chats).unwrap_or_default();
        let content: Content = serde_json::from_str(&content).unwrap_or_default();
        let q = match api
            .add_msg_template("group", &owner, &[], &chats, &content)
            .await
        {
            Ok((msgid, _)) => {
                handed += 1;
                sql("UPDATE sop_tasks SET status = 'assigned', msgid = $2 WHERE tenant_id = $3 AND id = $1")
                    .bind(id)
                    .bind(msgid).bind(tenant)
            }
            // WeCom may have made the task: left `sending` for `tasks::reconcile`.
            Err(e @ super::client::WecomError::Transport { .. }) => {
                sql("UPDATE sop_tasks SET error = $2 WHERE tenant_id = $3 AND id = $1")
                    .bind(id)
                    .bind(e.to_string())
                    .bind(tenant)
            }
            Err(e) => sql("UPDATE sop_tasks SET status = 'failed', error = $2 WHERE tenant_id = $3 AND id = $1")
                .bind(id)
                .bind(e.to_string()).bind(tenant),
        };
        db.execute(&q).await?;
    }
    Ok(handed)
}

/// Reads back which tasks were sent; reminds owners past the post's reminder time once.
/// Returns (completed, reminded).
pub async fn follow_up(
    db: &Db,
    api: &WecomApi,
    tenant: TenantId,
    now: i64,
) -> Result<(usize, usize), DbError> {
    let open: Vec<(i64, String, String, i64, Option<i64>, i64)> = db
        .fetch_all(
            &sql("SELECT t.id, t.owner, t.msgid, t.created_at, t.reminded_at, p.remind_after_ms FROM sop_tasks t JOIN sop_posts p ON p.id = t.post_id \
                  WHERE t.tenant_id = $1 AND t.status = 'assigned' AND t.msgid IS NOT NULL")
                .bind(tenant),
        )
        .await?;
    let (mut done, mut reminded) = (0, 0);
    for (id, owner, msgid, created, reminded_at, remind_after) in open {
        let results = match api.get_groupmsg_send_result(&msgid, &owner).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, task = id, "SOP task result not read; will retry");
                continue;
            }
        };
        if !results.is_empty() && results.iter().all(|r| r.status != 0) {
            db.execute(
                &sql("UPDATE sop_tasks SET status = 'sent', completed_at = $2 WHERE tenant_id = $3 AND id = $1")
                    .bind(id)
                    .bind(now).bind(tenant),
            )
            .await?;
            done += 1;
        } else if reminded_at.is_none() && now >= created + remind_after {
            if let Err(e) = api.remind_groupmsg_send(&msgid).await {
                tracing::warn!(error = %e, task = id, "SOP reminder not sent; will retry");
                continue;
            }
            db.execute(
                &sql("UPDATE sop_tasks SET reminded_at = $2 WHERE tenant_id = $3 AND id = $1")
                    .bind(id)
                    .bind(now)
                    .bind(tenant),
            )
            .await?;
            reminded += 1;
        }
    }
    Ok((done, reminded))
}
