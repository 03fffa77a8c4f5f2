//! Each tenant's WeCom corp: the settings the operator enters (checked, secrets encrypted),
//! the corp they make (callback crypto, API client, time zone), loaded once and kept, and the
//! settings page's view of them.

use crate::platform::TenantId;
use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::*;
use crate::connect::client::{WECOM_BASE_URL, WecomApi};
use crate::connect::crypto::CallbackCrypto;
use crate::platform::db::sql;

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
    pub tenant: TenantId,
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

impl Connect {
    /// Checks and stores a tenant's settings (secrets encrypted) and starts using them.
    pub async fn configure(
        &self,
        tenant: TenantId,
        s: CorpSettings,
        now: i64,
    ) -> Result<Arc<Corp>, ConnectError> {
        let base = self.checked_base(&s)?;
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

    pub(super) fn write_corps(
        &self,
    ) -> std::sync::RwLockWriteGuard<'_, HashMap<TenantId, Arc<Corp>>> {
        self.corps.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The tenant's corp, loaded once.
    pub async fn corp(&self, tenant: TenantId) -> Result<Arc<Corp>, ConnectError> {
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

    /// The settings checked field by field; the API address they name.
    fn checked_base(&self, s: &CorpSettings) -> Result<String, ConnectError> {
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
        Ok(base)
    }

    /// Asks WeCom for a token with settings not saved yet: a typo is found before it replaces
    /// settings that work.
    pub async fn check_settings(&self, s: &CorpSettings) -> Result<(), ConnectError> {
        let base = self.checked_base(s)?;
        let api = WecomApi::new(
            self.http.clone(),
            &base,
            s.corp_id.trim(),
            s.secret.trim(),
            8_000,
        );
        Ok(api.check().await?)
    }

    /// Whether tenants may point WeCom's `base_url` elsewhere (a proxy, the sandbox).
    pub fn any_base_url_allowed(&self) -> bool {
        self.any_base_url.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Allows any `base_url` (the sandbox, a proxy).
    pub fn allow_any_base_url(&self) {
        self.any_base_url
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// What `GET /api/v1/wecom` shows: the settings without their secrets, and the inbox.
    pub async fn settings_view(&self, tenant: TenantId) -> Result<SettingsView, ConnectError> {
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
}
