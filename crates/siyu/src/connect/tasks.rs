//! Mass-message tasks (SOP posts and mass messages) whose creation answer was lost: the call
//! went out, the connection dropped, and WeCom may or may not have made the task. They stay
//! `sending`; a minute later WeCom's own list (`get_groupmsg_list_v2`) says whether a task
//! by that guide exists that Siyu does not know. If so it is adopted, otherwise the handover
//! is tried again. Never sent twice, never lost.

use crate::platform::TenantId;
use std::collections::HashSet;

use super::client::WecomApi;
use crate::platform::db::{Db, DbError, sql};

crate::platform::text_enum::text_enum! {
    /// Where a guide's task stands in WeCom: `pending` (not yet handed over), `sending` (the
    /// call went out; its answer may be lost), `assigned` (in the guide's list), then `sent`
    /// (an SOP post) or `done` (a mass message, every recipient answered for), or `failed`.
    pub enum GuideTaskStatus {
        Pending = "pending",
        Sending = "sending",
        Assigned = "assigned",
        Sent = "sent",
        Done = "done",
        Failed = "failed",
    }
}

/// The two tables of guide tasks.
#[derive(Debug, Clone, Copy)]
pub enum Tasks {
    Mass,
    Sop,
}

impl Tasks {
    fn table(self) -> &'static str {
        match self {
            Tasks::Mass => "mass_tasks",
            Tasks::Sop => "sop_tasks",
        }
    }
}

/// Claims a task before WeCom is called (`pending` → `sending`), so no task is handed over
/// twice; false when another round has it. A lost answer leaves it `sending` for [`reconcile`].
pub async fn claim(db: &Db, tasks: Tasks, tenant: TenantId, id: i64) -> Result<bool, DbError> {
    let n = db
        .execute(
            &sql(format!(
                "UPDATE {} SET status = 'sending' WHERE tenant_id = $1 AND id = $2 AND status = 'pending'",
                tasks.table()
            ))
            .bind(tenant)
            .bind(id),
        )
        .await?;
    Ok(n > 0)
}

/// Returns (adopted, retried).
pub async fn reconcile(
    db: &Db,
    api: &WecomApi,
    tenant: TenantId,
    now: i64,
) -> Result<(usize, usize), DbError> {
    let known: Vec<(String,)> = db
        .fetch_all(
            &sql(
                "SELECT msgid FROM mass_tasks WHERE tenant_id = $1 AND msgid IS NOT NULL \
                  UNION SELECT msgid FROM sop_tasks WHERE tenant_id = $1 AND msgid IS NOT NULL",
            )
            .bind(tenant),
        )
        .await?;
    let mut known: HashSet<String> = known.into_iter().map(|r| r.0).collect();
    let (mut adopted, mut retried) = (0, 0);
    // Constant table and column names, never input.
    for (tasks, who, chat_type) in [
        (Tasks::Mass, "sender", "single"),
        (Tasks::Sop, "owner", "group"),
    ] {
        let table = tasks.table();
        let rows: Vec<(i64, String, i64)> = db
            .fetch_all(
                &sql(format!(
                    "SELECT id, {who}, created_at FROM {table} WHERE tenant_id = $1 AND status = 'sending' AND created_at < $2 ORDER BY id"
                ))
                .bind(tenant)
                .bind(now - 60_000),
            )
            .await?;
        for (id, guide, created) in rows {
            let ids = match api
                .groupmsg_ids_since(chat_type, &guide, created / 1000 - 60, now / 1000 + 60)
                .await
            {
                Ok(ids) => ids,
                Err(e) => {
                    tracing::warn!(error = %e, task = id, "lost task not looked up; will retry");
                    continue;
                }
            };
            let q = match ids.into_iter().find(|m| !known.contains(m)) {
                Some(msgid) => {
                    known.insert(msgid.clone());
                    adopted += 1;
                    sql(format!(
                        "UPDATE {table} SET status = 'assigned', msgid = $3, error = NULL WHERE tenant_id = $1 AND id = $2 AND status = 'sending'"
                    ))
                    .bind(tenant)
                    .bind(id)
                    .bind(msgid)
                }
                None => {
                    retried += 1;
                    sql(format!(
                        "UPDATE {table} SET status = 'pending' WHERE tenant_id = $1 AND id = $2 AND status = 'sending'"
                    ))
                    .bind(tenant)
                    .bind(id)
                }
            };
            db.execute(&q).await?;
        }
    }
    Ok((adopted, retried))
}
