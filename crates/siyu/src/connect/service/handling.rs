//! A callback's work: contacts added, edited, deleted or not transferred, recorded on the
//! customer's timeline; a live code's tags, guide count and card; group and tag changes.

use crate::know::CustomerId;
use crate::platform::TenantId;
use std::sync::Arc;

use serde_json::json;

use super::*;
use crate::connect::events::CallbackEvent;
use crate::connect::groups;
use crate::connect::live_codes::{self, LiveCode, local_day};
use crate::know::audience::AudienceError;
use crate::know::customers;
use crate::know::events::Event;
use crate::know::identity::{Identity, IdentityKind};
use crate::know::tags;
use crate::platform::clock::now_ms;
use crate::platform::db::{DbError, sql};

pub(super) fn group_err(e: groups::GroupError) -> ConnectError {
    match e {
        groups::GroupError::Wecom(w) => ConnectError::Wecom(w),
        groups::GroupError::Db(d) => ConnectError::Db(d),
        other => ConnectError::Invalid {
            field: "group",
            reason: other.to_string(),
        },
    }
}

impl Connect {
    /// The live code a `state` names, from memory after the first time.
    pub(super) async fn code_by_state(
        &self,
        tenant: TenantId,
        state: &str,
    ) -> Result<Option<Arc<LiveCode>>, DbError> {
        let k = (tenant, state.to_owned());
        if let Some(c) = self.codes.read().unwrap_or_else(|p| p.into_inner()).get(&k) {
            return Ok(Some(c.clone()));
        }
        let Some(code) = live_codes::by_state(&self.db, tenant, state).await? else {
            return Ok(None);
        };
        let code = Arc::new(code);
        self.codes
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(k, code.clone());
        Ok(Some(code))
    }

    /// Drops cached codes (after a code changes).
    pub fn forget_codes(&self) {
        self.codes
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    pub(super) async fn handle(&self, job: &Job) -> Result<(), ConnectError> {
        let tenant = job.tenant;
        let corp = self.corp(tenant).await?;
        let api = &corp.api;
        let now = now_ms();
        let at = job.env.create_time.saturating_mul(1000);
        match &job.env.event {
            CallbackEvent::ContactAdded {
                userid,
                external_userid,
                state,
                half,
                ..
            } => {
                let code = match state {
                    Some(s) => self.code_by_state(tenant, s).await?,
                    None => None,
                };
                let details = match api.get_external_contact(external_userid).await {
                    Ok(d) => Some(d),
                    Err(e) => {
                        tracing::warn!(error = %e, "external contact details not read; recording the add without them");
                        None
                    }
                };
                let unionid = details.as_ref().and_then(|d| d.unionid.clone());
                let customer = self
                    .record_event(
                        job,
                        "contact_added",
                        external_userid,
                        unionid.as_deref(),
                        json!({"userid": userid, "state": state, "live_code_id": code.as_ref().map(|c| c.id),
                               "foreign_state": state.is_some() && code.is_none(), "half": half}),
                        Some(code.as_ref().map(|c| c.touchpoint()).unwrap_or_else(|| "wecom".into())),
                    )
                    .await?;
                // Counted for the guide's daily cap only when the relationship becomes active
                // (not again for the full add after a half add, nor for a retry).
                let before: Option<(Option<i64>,)> = self
                    .db
                    .fetch_optional(
                        &sql("SELECT deleted_at FROM wecom_contacts WHERE tenant_id = $1 AND external_userid = $2 AND userid = $3")
                            .bind(tenant)
                            .bind(external_userid.as_str())
                            .bind(userid.as_str()),
                    )
                    .await?;
                let newly = before.is_none_or(|(deleted,)| deleted.is_some());
                self.db
                    .execute(
                        &sql("INSERT INTO wecom_contacts (tenant_id, external_userid, userid, customer_id, code_id, state, added_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                              ON CONFLICT (tenant_id, external_userid, userid) DO UPDATE SET customer_id = excluded.customer_id, code_id = excluded.code_id, \
                              state = excluded.state, added_at = excluded.added_at, deleted_at = NULL, deleted_by = NULL")
                            .bind(tenant)
                            .bind(external_userid.as_str())
                            .bind(userid.as_str())
                            .bind(customer)
                            .bind(code.as_ref().map(|c| c.id))
                            .bind(state.clone())
                            .bind(at),
                    )
                    .await?;
                if let (Some(code), Some(customer)) = (code, customer) {
                    self.apply_code(&corp, &code, customer, userid, external_userid, newly, now)
                        .await?;
                }
            }
            CallbackEvent::ContactEdited {
                userid,
                external_userid,
            } => {
                let unionid = api
                    .get_external_contact(external_userid)
                    .await
                    .ok()
                    .and_then(|d| d.unionid);
                self.record_event(
                    job,
                    "contact_edited",
                    external_userid,
                    unionid.as_deref(),
                    json!({"userid": userid}),
                    None,
                )
                .await?;
            }
            CallbackEvent::ContactDeleted {
                userid,
                external_userid,
                by,
            } => {
                self.db
                    .execute(
                        &sql("UPDATE wecom_contacts SET deleted_at = $4, deleted_by = $5 WHERE tenant_id = $1 AND external_userid = $2 AND userid = $3 AND deleted_at IS NULL")
                            .bind(tenant)
                            .bind(external_userid.as_str())
                            .bind(userid.as_str())
                            .bind(at)
                            .bind(by.as_str()),
                    )
                    .await?;
                self.record_event(
                    job,
                    "contact_deleted",
                    external_userid,
                    None,
                    json!({"userid": userid, "by": by}),
                    None,
                )
                .await?;
            }
            CallbackEvent::TransferFailed {
                userid,
                external_userid,
                reason,
            } => {
                self.record_event(
                    job,
                    "contact_transfer_failed",
                    external_userid,
                    None,
                    json!({"userid": userid, "reason": reason}),
                    None,
                )
                .await?;
            }
            CallbackEvent::ChatCreated { chat_id } => {
                groups::sync_group(&self.db, api, tenant, chat_id, now)
                    .await
                    .map_err(group_err)?;
            }
            CallbackEvent::ChatUpdated {
                chat_id,
                detail,
                join_scene,
                quit_scene,
                members,
            } => {
                groups::apply_update(
                    &self.db,
                    api,
                    tenant,
                    chat_id,
                    detail,
                    members,
                    *join_scene,
                    *quit_scene,
                    at,
                    now,
                )
                .await
                .map_err(group_err)?;
            }
            CallbackEvent::ChatDismissed { chat_id } => {
                groups::dismiss(&self.db, tenant, chat_id, at).await?
            }
            CallbackEvent::TagChanged {
                id,
                tag_type,
                change_type,
            } => {
                // A mirrored tag deleted in WeCom is made again the next time a code needs it.
                if change_type == "delete" && tag_type == "tag" {
                    self.db
                        .execute(
                            &sql(
                                "DELETE FROM wecom_tags WHERE tenant_id = $1 AND wecom_tag_id = $2",
                            )
                            .bind(tenant)
                            .bind(id.as_str()),
                        )
                        .await?;
                }
            }
            CallbackEvent::Other { .. } => {}
        }
        Ok(())
    }

    /// The code's work on a new contact: its tags here and in WeCom, the guide's count for the
    /// day (and the rota that follows from it), and the package card the customer claimed.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn apply_code(
        &self,
        corp: &Corp,
        code: &LiveCode,
        customer: CustomerId,
        userid: &str,
        external_userid: &str,
        newly: bool,
        now: i64,
    ) -> Result<(), ConnectError> {
        let source = format!("wecom:{}", code.touchpoint());
        let mut tagged = false;
        for id in &code.tag_ids {
            match tags::get(&self.db, corp.tenant, *id).await {
                Ok(tag) => {
                    match tags::tag_customers(
                        &self.db,
                        corp.tenant,
                        &tag,
                        &[customer],
                        &source,
                        now,
                    )
                    .await
                    {
                        Ok(_) => tagged = true,
                        Err(e) => tracing::warn!(error = %e, tag = id, "live-code tag not applied"),
                    }
                }
                Err(e) => tracing::warn!(error = %e, tag = id, "live-code tag is gone"),
            }
        }
        if tagged && let Some(audiences) = &self.audiences {
            match audiences.tags_changed(corp.tenant, &[customer]).await {
                Ok(()) => {}
                // The index is still being built, from the store that already holds the tag.
                Err(AudienceError::Unavailable(_)) => {}
                // Kept and retried: the tag is stored once, and the index is told again.
                Err(AudienceError::Db(e)) => return Err(ConnectError::Db(e)),
            }
        }
        if newly {
            live_codes::count_add(
                &self.db,
                corp.tenant,
                code.id,
                local_day(now, corp.offset_min),
                userid,
            )
            .await?;
            // The cached code may hold an old rota; read it fresh.
            let fresh = live_codes::get(&self.db, corp.tenant, code.id).await;
            if let Ok(fresh) = fresh
                && let Err(e) =
                    live_codes::rotate(&self.db, &corp.api, &fresh, now, corp.offset_min).await
            {
                tracing::warn!(error = %e, code = code.id, "live-code rota not updated; the next tick retries");
            }
        }
        let wecom_tags = live_codes::wecom_tag_ids(&self.db, corp.tenant, &code.tag_ids).await?;
        if !wecom_tags.is_empty() {
            corp.api
                .mark_tag(userid, external_userid, &wecom_tags, &[])
                .await?;
        }
        if code.source == "card_batch"
            && let Some(batch) = code.source_id
        {
            self.db
                .execute(
                    &sql("UPDATE cards SET contact_at = $4 WHERE tenant_id = $1 AND batch_id = $2 AND customer_id = $3 AND contact_at IS NULL")
                        .bind(corp.tenant)
                        .bind(batch)
                        .bind(customer)
                        .bind(now),
                )
                .await?;
        }
        Ok(())
    }

    /// Records a contact event on the customer's timeline (creating or merging the customer by
    /// external_userid and unionid); returns the customer.
    pub(super) async fn record_event(
        &self,
        job: &Job,
        kind: &str,
        external_userid: &str,
        unionid: Option<&str>,
        properties: serde_json::Value,
        touchpoint: Option<String>,
    ) -> Result<Option<CustomerId>, ConnectError> {
        let bad = |e: crate::know::identity::IdentityError| ConnectError::Invalid {
            field: "ExternalUserID",
            reason: e.to_string(),
        };
        let ext =
            Identity::new(IdentityKind::ExternalUserid, external_userid, None).map_err(bad)?;
        let mut identities = vec![ext.clone()];
        if let Some(u) = unionid
            && let Ok(u) = Identity::new(IdentityKind::Unionid, u, None)
        {
            identities.push(u);
        }
        let event = Event {
            key: format!("wecom:{}", job.key),
            kind: kind.into(),
            identities,
            properties: properties.to_string(),
            occurred_at: job.env.create_time.saturating_mul(1000),
            channel: Some("wecom".into()),
            touchpoint,
        };
        self.events
            .write(job.tenant, vec![event])
            .await
            .map_err(|e| ConnectError::Invalid {
                field: "event",
                reason: e.to_string(),
            })?;
        Ok(customers::find_by_identity(&self.db, &self.cipher, job.tenant, &ext).await?)
    }
}
