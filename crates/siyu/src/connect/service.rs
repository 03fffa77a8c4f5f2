//! The connect service: each tenant's WeCom corp (settings, callback crypto, API client), the
//! callback inbox and the queue behind it, and the periodic work (live-code rotas, SOP posts,
//! mass messages, callbacks left unfinished).
//!
//! A callback is decrypted, parsed and written to `wecom_inbox` before it is acknowledged, so
//! nothing acknowledged is lost; WeCom's retries of the same message hash to the same key and are
//! dropped. Then it is queued: an add with a welcome_code also goes to the urgent lane, where its
//! welcome message is sent at once (the code lives 20 s); everything, an add's other work included,
//! runs on the normal lanes: several, each in arrival order, with every callback about one
//! contact or one group on the same lane so their order holds.

use std::collections::HashMap;
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::sync::{Semaphore, mpsc};

use super::client::{WECOM_BASE_URL, WecomApi, WecomError};
use super::crypto::{CallbackCrypto, CallbackError};
use super::events::{self, CallbackEvent, Envelope, Fields, ParseError};
use super::live_codes::{self, LiveCode, local_day};
use super::{groups, mass, sop};
use crate::know::customers;
use crate::know::events::Event;
use crate::know::identity::{Identity, IdentityKind};
use crate::know::ingest::EventWriter;
use crate::know::tags;
use crate::platform::clock::now_ms;
use crate::platform::crypto::FieldCipher;
use crate::platform::db::{Db, DbError, sql};

/// Unfinished callbacks are retried this many times.
const MAX_ATTEMPTS: i64 = 5;
/// Lanes for callback work other than welcomes.
const NORMAL_LANES: usize = 8;
/// Welcome sends in flight at once.
const WELCOME_CONCURRENCY: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("WeCom is not configured for this tenant (PUT /api/v1/wecom)")]
    NotConfigured,
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error(transparent)]
    Callback(#[from] CallbackError),
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error(transparent)]
    Wecom(#[from] WecomError),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// A tenant's WeCom settings as the operator enters them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorpSettings {
    pub corp_id: String,
    /// The secret of the app with customer-contact permission.
    pub secret: String,
    /// The callback Token and EncodingAESKey set in the WeCom admin console.
    pub token: String,
    pub encoding_aes_key: String,
    /// Default `https://qyapi.weixin.qq.com`; a local sandbox in tests and the demo.
    #[serde(default)]
    pub base_url: Option<String>,
}

/// A configured corp, ready to take callbacks and call the API.
pub struct Corp {
    pub tenant: i64,
    pub crypto: CallbackCrypto,
    pub api: Arc<WecomApi>,
    /// The tenant's offset from UTC (its contact policy's time zone): rotas, welcome times.
    pub offset_min: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SettingsView {
    pub corp_id: String,
    pub base_url: String,
    pub updated_at: i64,
    pub callbacks_received: i64,
    pub callbacks_done: i64,
}

/// The query string WeCom puts on a callback URL.
#[derive(Debug, Clone, Deserialize)]
pub struct CallbackQuery {
    #[serde(default)]
    pub msg_signature: String,
    #[serde(default)]
    pub timestamp: String,
    #[serde(default)]
    pub nonce: String,
    #[serde(default)]
    pub echostr: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    Queued,
    /// A retry of a callback already taken.
    Duplicate,
}

#[derive(Debug, Clone)]
struct Job {
    tenant: i64,
    key: String,
    env: Envelope,
    received_at: i64,
}

/// What one round of periodic work did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TickReport {
    pub codes_rotated: usize,
    pub sop_tasks_assigned: usize,
    pub sop_tasks_completed: usize,
    pub sop_reminders: usize,
    pub mass_tasks_assigned: usize,
    pub mass_tasks_completed: usize,
    pub mass_reminders: usize,
    pub callbacks_retried: usize,
    /// Tasks whose creation answer was lost, found in WeCom and adopted.
    pub tasks_adopted: usize,
    /// …or not found there, and handed over again.
    pub tasks_handed_again: usize,
}

pub struct Connect {
    db: Db,
    cipher: FieldCipher,
    events: EventWriter,
    http: reqwest::Client,
    corps: RwLock<HashMap<i64, Arc<Corp>>>,
    codes: RwLock<HashMap<(i64, String), Arc<LiveCode>>>,
    urgent: mpsc::UnboundedSender<Job>,
    /// One round of periodic work at a time (the 30 s timer and `POST /api/v1/connect/tick`).
    tick_lock: tokio::sync::Mutex<()>,
    /// Off by default: a tenant's `base_url` may then point only at WeCom itself, not at hosts
    /// inside the network. `siyu serve` turns it on with `wecom_allow_base_url`; tests, the demo
    /// and the benchmark turn it on for the sandbox.
    any_base_url: std::sync::atomic::AtomicBool,
    normal: Vec<mpsc::UnboundedSender<Job>>,
    /// Callbacks queued in this process and not finished: the retry sweep leaves them alone.
    in_flight: std::sync::Mutex<std::collections::HashSet<(i64, String)>>,
}

impl Connect {
    /// The service with its two workers started on the current runtime.
    pub fn start(db: Db, cipher: FieldCipher, events: EventWriter) -> Arc<Connect> {
        let (urgent, urgent_rx) = mpsc::unbounded_channel();
        let (normal, normal_rx): (Vec<_>, Vec<_>) =
            (0..NORMAL_LANES).map(|_| mpsc::unbounded_channel()).unzip();
        let c = Arc::new(Connect {
            db,
            cipher,
            events,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
            corps: RwLock::new(HashMap::new()),
            codes: RwLock::new(HashMap::new()),
            urgent,
            tick_lock: tokio::sync::Mutex::new(()),
            any_base_url: std::sync::atomic::AtomicBool::new(false),
            normal,
            in_flight: Default::default(),
        });
        tokio::spawn(urgent_lane(Arc::downgrade(&c), urgent_rx));
        for rx in normal_rx {
            tokio::spawn(normal_lane(Arc::downgrade(&c), rx));
        }
        c
    }

    /// Checks and stores a tenant's settings (secrets encrypted) and starts using them.
    pub async fn configure(
        &self,
        tenant: i64,
        s: CorpSettings,
        now: i64,
    ) -> Result<Arc<Corp>, ConnectError> {
        let bad = |field, reason: &str| ConnectError::Invalid {
            field,
            reason: reason.to_owned(),
        };
        if s.corp_id.trim().is_empty() {
            return Err(bad("corp_id", "is empty"));
        }
        if s.secret.trim().is_empty() {
            return Err(bad("secret", "is empty"));
        }
        if s.token.trim().is_empty() || s.token.len() > 32 {
            return Err(bad("token", "must be 1–32 characters"));
        }
        CallbackCrypto::new(&s.token, &s.encoding_aes_key, &s.corp_id)
            .map_err(|e| bad("encoding_aes_key", &e.to_string()))?;
        let base = s.base_url.clone().unwrap_or_else(|| WECOM_BASE_URL.into());
        if reqwest::Url::parse(&base).is_err() {
            return Err(bad("base_url", "is not a URL"));
        }
        if base.trim_end_matches('/') != WECOM_BASE_URL
            && !self.any_base_url.load(std::sync::atomic::Ordering::Relaxed)
        {
            return Err(bad(
                "base_url",
                "only https://qyapi.weixin.qq.com unless the server allows others (wecom_allow_base_url)",
            ));
        }
        self.db
            .execute(
                &sql("INSERT INTO wecom_corps (tenant_id, corp_id, secret_enc, token_enc, aes_key_enc, base_url, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                      ON CONFLICT (tenant_id) DO UPDATE SET corp_id = excluded.corp_id, secret_enc = excluded.secret_enc, token_enc = excluded.token_enc, \
                      aes_key_enc = excluded.aes_key_enc, base_url = excluded.base_url, updated_at = excluded.updated_at")
                    .bind(tenant)
                    .bind(s.corp_id.trim())
                    .bind(self.cipher.encrypt(&s.secret))
                    .bind(self.cipher.encrypt(&s.token))
                    .bind(self.cipher.encrypt(&s.encoding_aes_key))
                    .bind(base)
                    .bind(now),
            )
            .await?;
        self.write_corps().remove(&tenant);
        self.corp(tenant).await
    }

    fn write_corps(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<i64, Arc<Corp>>> {
        self.corps.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The tenant's corp, loaded once.
    pub async fn corp(&self, tenant: i64) -> Result<Arc<Corp>, ConnectError> {
        if let Some(c) = self
            .corps
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&tenant)
        {
            return Ok(c.clone());
        }
        let row: Option<(String, String, String, String, String)> = self
            .db
            .fetch_optional(
                &sql("SELECT corp_id, secret_enc, token_enc, aes_key_enc, base_url FROM wecom_corps WHERE tenant_id = $1")
                    .bind(tenant),
            )
            .await?;
        let (corp_id, secret, token, key, base) = row.ok_or(ConnectError::NotConfigured)?;
        let dec = |v: &str, field| {
            self.cipher.decrypt(v).map_err(|e| ConnectError::Invalid {
                field,
                reason: format!("stored value cannot be decrypted with this secret key: {e}"),
            })
        };
        let crypto = CallbackCrypto::new(
            &dec(&token, "token")?,
            &dec(&key, "encoding_aes_key")?,
            &corp_id,
        )?;
        let offset_min = crate::engage::policy::load(&self.db, tenant)
            .await
            .map(|p| p.utc_offset_minutes)
            .unwrap_or(480);
        let corp = Arc::new(Corp {
            tenant,
            crypto,
            api: Arc::new(WecomApi::new(
                self.http.clone(),
                &base,
                &corp_id,
                &dec(&secret, "secret")?,
                8_000,
            )),
            offset_min,
        });
        self.write_corps().insert(tenant, corp.clone());
        Ok(corp)
    }

    /// URL verification: the decrypted echostr, which WeCom expects back verbatim.
    pub async fn verify_url(
        &self,
        tenant: i64,
        q: &CallbackQuery,
        now: i64,
    ) -> Result<String, ConnectError> {
        let corp = self.corp(tenant).await?;
        let echo = q.echostr.as_deref().ok_or(ConnectError::Invalid {
            field: "echostr",
            reason: "missing".into(),
        })?;
        Ok(corp
            .crypto
            .open(&q.msg_signature, &q.timestamp, &q.nonce, echo, now)?)
    }

    /// Takes a callback: verify, decrypt, parse, store, queue. Returns once it is durable.
    pub async fn receive(
        &self,
        tenant: i64,
        q: &CallbackQuery,
        body: &str,
        now: i64,
    ) -> Result<Received, ConnectError> {
        let corp = self.corp(tenant).await?;
        let outer = Fields::parse(body)?;
        let encrypt = outer.get("Encrypt").ok_or(ParseError::Missing("Encrypt"))?;
        let plain = corp
            .crypto
            .open(&q.msg_signature, &q.timestamp, &q.nonce, encrypt, now)?;
        let env = events::parse(&plain)?;
        let key = hex::encode(&Sha256::digest(plain.as_bytes())[..16]);
        let kind = env.event.kind();
        let stored = self
            .db
            .execute(
                &sql("INSERT INTO wecom_inbox (tenant_id, event_key, event, body, received_at) VALUES ($1, $2, $3, $4, $5) \
                      ON CONFLICT (tenant_id, event_key) DO NOTHING")
                    .bind(tenant)
                    .bind(key.as_str())
                    .bind(kind)
                    .bind(serde_json::to_string(&env).unwrap_or_default())
                    .bind(now),
            )
            .await?;
        if stored == 0 {
            return Ok(Received::Duplicate);
        }
        self.in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((tenant, key.clone()));
        let job = Job {
            tenant,
            key,
            received_at: now,
            env,
        };
        // The welcome does not wait behind other work, and other work does not wait for it.
        if job.env.event.is_urgent() {
            let _ = self.urgent.send(job.clone());
        }
        self.to_normal_lane(job);
        Ok(Received::Queued)
    }

    /// The lane of the contact or group a callback is about, so callbacks about one keep their
    /// order while different ones run side by side.
    fn to_normal_lane(&self, job: Job) {
        let subject = match &job.env.event {
            CallbackEvent::ContactAdded {
                external_userid, ..
            }
            | CallbackEvent::ContactEdited {
                external_userid, ..
            }
            | CallbackEvent::ContactDeleted {
                external_userid, ..
            }
            | CallbackEvent::TransferFailed {
                external_userid, ..
            } => external_userid.as_str(),
            CallbackEvent::ChatCreated { chat_id }
            | CallbackEvent::ChatUpdated { chat_id, .. }
            | CallbackEvent::ChatDismissed { chat_id } => chat_id.as_str(),
            _ => "",
        };
        let lane = subject.bytes().fold(0usize, |h, b| {
            h.wrapping_mul(31).wrapping_add(usize::from(b))
        }) % self.normal.len();
        let _ = self.normal[lane].send(job);
    }

    /// The live code a `state` names, from memory after the first time.
    async fn code_by_state(
        &self,
        tenant: i64,
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

    /// Allows any `base_url` (the sandbox, a proxy).
    pub fn allow_any_base_url(&self) {
        self.any_base_url
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    async fn send_welcome(&self, job: &Job) {
        let CallbackEvent::ContactAdded {
            state: Some(state),
            welcome_code: Some(code),
            userid,
            external_userid,
            ..
        } = &job.env.event
        else {
            return;
        };
        let (corp, live) = match (
            self.corp(job.tenant).await,
            self.code_by_state(job.tenant, state).await,
        ) {
            (Ok(c), Ok(Some(l))) => (c, l),
            // Not our code (a foreign state), or not loadable: the normal lane records the add.
            _ => return,
        };
        let now = now_ms();
        let outcome = if now - job.received_at > super::events::WELCOME_CODE_TTL_MS {
            ("expired".to_owned(), None)
        } else {
            match corp
                .api
                .send_welcome_msg(code, live.welcome_at(now, corp.offset_min))
                .await
            {
                Ok(()) => ("sent".to_owned(), Some(now_ms())),
                Err(e) => {
                    tracing::warn!(error = %e, "welcome message not sent");
                    (format!("failed: {e}"), None)
                }
            }
        };
        let recorded = self
            .db
            .execute(
                &sql("INSERT INTO welcome_messages (tenant_id, welcome_code, code_id, external_userid, userid, received_at, sent_at, result) \
                      VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (tenant_id, welcome_code) DO NOTHING")
                    .bind(job.tenant)
                    .bind(code.as_str())
                    .bind(live.id)
                    .bind(external_userid.as_str())
                    .bind(userid.as_str())
                    .bind(job.received_at)
                    .bind(outcome.1)
                    .bind(outcome.0),
            )
            .await;
        if let Err(e) = recorded {
            tracing::error!(error = %e, "welcome message outcome not recorded");
        }
    }

    async fn handle(&self, job: &Job) -> Result<(), ConnectError> {
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
    async fn apply_code(
        &self,
        corp: &Corp,
        code: &LiveCode,
        customer: i64,
        userid: &str,
        external_userid: &str,
        newly: bool,
        now: i64,
    ) -> Result<(), ConnectError> {
        let source = format!("wecom:{}", code.touchpoint());
        for id in &code.tag_ids {
            match tags::get(&self.db, corp.tenant, *id).await {
                Ok(tag) => {
                    if let Err(e) =
                        tags::tag_customers(&self.db, corp.tenant, &tag, &[customer], &source, now)
                            .await
                    {
                        tracing::warn!(error = %e, tag = id, "live-code tag not applied");
                    }
                }
                Err(e) => tracing::warn!(error = %e, tag = id, "live-code tag is gone"),
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
    async fn record_event(
        &self,
        job: &Job,
        kind: &str,
        external_userid: &str,
        unionid: Option<&str>,
        properties: serde_json::Value,
        touchpoint: Option<String>,
    ) -> Result<Option<i64>, ConnectError> {
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

    async fn finish(&self, job: &Job, result: &Result<(), ConnectError>) {
        let q = match result {
            Ok(()) => sql("UPDATE wecom_inbox SET done_at = $3, attempts = attempts + 1, error = NULL WHERE tenant_id = $1 AND event_key = $2")
                .bind(job.tenant)
                .bind(job.key.as_str())
                .bind(now_ms()),
            Err(e) => {
                tracing::warn!(error = %e, event = job.key, "callback work failed; will retry");
                sql("UPDATE wecom_inbox SET attempts = attempts + 1, error = $3 WHERE tenant_id = $1 AND event_key = $2")
                    .bind(job.tenant)
                    .bind(job.key.as_str())
                    .bind(e.to_string())
            }
        };
        if let Err(e) = self.db.execute(&q).await {
            tracing::error!(error = %e, "callback state not recorded");
        }
        // Only now, so the retry sweep cannot take a job whose outcome is not yet written.
        self.in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(job.tenant, job.key.clone()));
    }

    /// Requeues callbacks received over a minute ago and not finished (a failure, a restart) on
    /// their lanes; returns how many.
    async fn retry_unfinished(&self, now: i64, tenant: Option<i64>) -> Result<usize, DbError> {
        let rows: Vec<(i64, String, String, i64)> = self
            .db
            .fetch_all(
                &sql("SELECT tenant_id, event_key, body, received_at FROM wecom_inbox WHERE done_at IS NULL AND received_at < $1 AND attempts < $2 \
                      AND ($3 IS NULL OR tenant_id = $3) ORDER BY received_at LIMIT 1000")
                    .bind(now - 60_000)
                    .bind(MAX_ATTEMPTS)
                    .bind(tenant),
            )
            .await?;
        let mut n = 0;
        for (tenant, key, body, received_at) in rows {
            if !self
                .in_flight
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert((tenant, key.clone()))
            {
                continue; // queued in this process already
            }
            n += 1;
            match serde_json::from_str::<Envelope>(&body) {
                Ok(env) => self.to_normal_lane(Job {
                    tenant,
                    key,
                    env,
                    received_at,
                }),
                Err(e) => {
                    let job = Job {
                        tenant,
                        key,
                        env: Envelope {
                            corp_id: String::new(),
                            create_time: 0,
                            event: CallbackEvent::Other {
                                event: String::new(),
                                change_type: String::new(),
                            },
                        },
                        received_at,
                    };
                    let failed = Err(ConnectError::Invalid {
                        field: "body",
                        reason: e.to_string(),
                    });
                    self.finish(&job, &failed).await;
                }
            }
        }
        Ok(n)
    }

    /// One round of periodic work for every configured tenant; one tenant's failure is logged
    /// and the others go on.
    pub async fn tick(&self, now: i64) -> Result<TickReport, ConnectError> {
        let _one = self.tick_lock.lock().await;
        let mut r = TickReport {
            callbacks_retried: self.retry_unfinished(now, None).await?,
            ..Default::default()
        };
        let tenants: Vec<(i64,)> = self
            .db
            .fetch_all(&sql("SELECT tenant_id FROM wecom_corps"))
            .await?;
        for (tenant,) in tenants {
            if let Err(e) = self.tenant_work(tenant, now, &mut r).await {
                tracing::warn!(tenant, error = %e, "connect work for this tenant failed; will retry");
            }
        }
        Ok(r)
    }

    /// One round of periodic work for one tenant (`POST /api/v1/connect/tick`).
    pub async fn tick_tenant(&self, tenant: i64, now: i64) -> Result<TickReport, ConnectError> {
        let _one = self.tick_lock.lock().await;
        let mut r = TickReport {
            callbacks_retried: self.retry_unfinished(now, Some(tenant)).await?,
            ..Default::default()
        };
        self.tenant_work(tenant, now, &mut r).await?;
        Ok(r)
    }

    async fn tenant_work(
        &self,
        tenant: i64,
        now: i64,
        r: &mut TickReport,
    ) -> Result<(), ConnectError> {
        let corp = self.corp(tenant).await?;
        let (adopted, again) = super::tasks::reconcile(&self.db, &corp.api, tenant, now).await?;
        r.tasks_adopted += adopted;
        r.tasks_handed_again += again;
        for code in live_codes::list(&self.db, tenant).await? {
            match live_codes::rotate(&self.db, &corp.api, &code, now, corp.offset_min).await {
                Ok(true) => r.codes_rotated += 1,
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, code = code.id, "rota not updated"),
            }
        }
        r.sop_tasks_assigned += sop::release_due(&self.db, &corp.api, tenant, now).await?;
        let (done, reminded) = sop::follow_up(&self.db, &corp.api, tenant, now).await?;
        r.sop_tasks_completed += done;
        r.sop_reminders += reminded;
        r.mass_tasks_assigned += mass::release_due(&self.db, &corp.api, tenant, now)
            .await
            .map_err(mass_err)?;
        let (done, reminded) = mass::follow_up(&self.db, &corp.api, tenant, now)
            .await
            .map_err(mass_err)?;
        r.mass_tasks_completed += done;
        r.mass_reminders += reminded;
        Ok(())
    }

    /// Runs [`Connect::tick`] every `every` until the service is dropped or the pool closes.
    pub fn spawn_ticks(self: &Arc<Self>, every: Duration) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut t = tokio::time::interval(every);
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                t.tick().await;
                let Some(c) = weak.upgrade() else { return };
                if c.db.is_closed() {
                    return;
                }
                if let Err(e) = c.tick(now_ms()).await {
                    tracing::warn!(error = %e, "connect tick failed; will retry");
                }
            }
        });
    }

    /// Waits until every callback received for the tenant has been worked through; Err with
    /// the number still unfinished when `timeout` passes first.
    pub async fn wait_drained(&self, tenant: i64, timeout: Duration) -> Result<(), i64> {
        let until = std::time::Instant::now() + timeout;
        loop {
            match self.inbox_counts(tenant).await {
                Ok((received, done)) if received == done => return Ok(()),
                Ok((received, done)) if std::time::Instant::now() > until => {
                    return Err(received - done);
                }
                Err(e) if std::time::Instant::now() > until => {
                    tracing::warn!(error = %e, "callback counts not read");
                    return Err(-1);
                }
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    /// What `GET /api/v1/wecom` shows: the settings without their secrets, and the inbox.
    pub async fn settings_view(&self, tenant: i64) -> Result<SettingsView, ConnectError> {
        let row: Option<(String, String, i64)> = self
            .db
            .fetch_optional(
                &sql("SELECT corp_id, base_url, updated_at FROM wecom_corps WHERE tenant_id = $1")
                    .bind(tenant),
            )
            .await?;
        let (corp_id, base_url, updated_at) = row.ok_or(ConnectError::NotConfigured)?;
        let (received, done) = self.inbox_counts(tenant).await?;
        Ok(SettingsView {
            corp_id,
            base_url,
            updated_at,
            callbacks_received: received,
            callbacks_done: done,
        })
    }

    /// Counts of the inbox: received, done, unfinished.
    pub async fn inbox_counts(&self, tenant: i64) -> Result<(i64, i64), DbError> {
        self.db
            .fetch_one(
                &sql("SELECT COUNT(*), COUNT(done_at) FROM wecom_inbox WHERE tenant_id = $1")
                    .bind(tenant),
            )
            .await
    }
}

fn group_err(e: groups::GroupError) -> ConnectError {
    match e {
        groups::GroupError::Wecom(w) => ConnectError::Wecom(w),
        groups::GroupError::Db(d) => ConnectError::Db(d),
        other => ConnectError::Invalid {
            field: "group",
            reason: other.to_string(),
        },
    }
}

fn mass_err(e: mass::MassError) -> ConnectError {
    match e {
        mass::MassError::Db(d) => ConnectError::Db(d),
        other => ConnectError::Invalid {
            field: "mass_message",
            reason: other.to_string(),
        },
    }
}

/// Welcome messages: many in flight at once, each recording its own outcome.
async fn urgent_lane(c: Weak<Connect>, mut rx: mpsc::UnboundedReceiver<Job>) {
    let slots = Arc::new(Semaphore::new(WELCOME_CONCURRENCY));
    while let Some(job) = rx.recv().await {
        let Some(svc) = c.upgrade() else { return };
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        tokio::spawn(async move {
            svc.send_welcome(&job).await;
            drop(permit);
        });
    }
}

/// Everything else: on each lane one callback at a time, in arrival order.
async fn normal_lane(c: Weak<Connect>, mut rx: mpsc::UnboundedReceiver<Job>) {
    while let Some(job) = rx.recv().await {
        let Some(svc) = c.upgrade() else { return };
        let r = svc.handle(&job).await;
        svc.finish(&job, &r).await;
    }
}
