//! Authorisations under way (授权): an operator names the shop and the brand's app in the console,
//! the seller's browser goes to the platform with a one-time `state`, and the platform sends it
//! back with a code. The state ties the code to the brand that asked and to the app secret it
//! gave, which never leaves the server; it is good once, for ten minutes.

use crate::platform::TenantId;
use crate::platform::crypto::{FieldCipher, random_token, token_hash};
use crate::platform::db::{Db, sql};

use super::shops::{self, ShopError};

/// How long a seller has to authorise.
pub const AUTHORIZE_WITHIN_MS: i64 = 10 * 60_000;

/// What the operator gave when asking for an authorisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingShop {
    pub platform: String,
    pub name: String,
    pub app_key: String,
    pub app_secret: String,
    /// Douyin's service-market listing (its authorisation names it instead of the app key).
    pub service_id: Option<String>,
    pub api_base: Option<String>,
    /// Orders changed from this time on are synced (UTC ms).
    pub sync_from: i64,
}

fn invalid(field: &'static str, reason: impl Into<String>) -> ShopError {
    ShopError::Invalid {
        field,
        reason: reason.into(),
    }
}

fn check(p: &PendingShop, allow_api_base: bool) -> Result<(), ShopError> {
    // The name may be left empty: the platform's name for the shop is taken then.
    if p.name.chars().count() > 64 {
        return Err(invalid("name", "must be at most 64 characters"));
    }
    if let Some(s) = &p.service_id {
        shops::within("service_id", s, 64)?;
    }
    shops::check_app(
        &p.app_key,
        &p.app_secret,
        p.api_base.as_deref(),
        p.sync_from,
        allow_api_base,
    )
}

/// Keeps an authorisation under way and returns the state to send to the platform. Ones that ran
/// out (any brand's) are cleared on the way.
pub async fn begin(
    db: &Db,
    cipher: &FieldCipher,
    tenant: TenantId,
    p: &PendingShop,
    allow_api_base: bool,
    now: i64,
) -> Result<String, ShopError> {
    check(p, allow_api_base)?;
    db.execute(&sql("DELETE FROM shop_authorizations WHERE expires_at < $1").bind(now))
        .await?;
    let state = random_token(24);
    db.execute(
        &sql(
            "INSERT INTO shop_authorizations (state_hash, tenant_id, platform, name, app_key, \
             app_secret_enc, service_id, api_base, sync_from, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(token_hash(&state))
        .bind(tenant)
        .bind(p.platform.as_str())
        .bind(p.name.trim())
        .bind(p.app_key.trim())
        .bind(cipher.encrypt(&p.app_secret))
        .bind(p.service_id.as_deref().map(str::trim))
        .bind(p.api_base.as_deref())
        .bind(p.sync_from)
        .bind(now)
        .bind(now + AUTHORIZE_WITHIN_MS),
    )
    .await?;
    Ok(state)
}

type Row = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    i64,
    i64,
);

/// Takes the authorisation a callback's `state` names, once: unknown, used, another brand's or
/// run out, it is refused (a state is never good twice, even when refused for running out).
pub async fn take(
    db: &Db,
    cipher: &FieldCipher,
    tenant: TenantId,
    state: &str,
    now: i64,
) -> Result<PendingShop, ShopError> {
    db.execute(
        &sql("DELETE FROM shop_authorizations WHERE expires_at < $1")
            .bind(now - AUTHORIZE_WITHIN_MS),
    )
    .await?;
    let row: Option<Row> = db
        .fetch_optional(
            &sql(
                "DELETE FROM shop_authorizations WHERE state_hash = $1 AND tenant_id = $2 \
                 RETURNING platform, name, app_key, app_secret_enc, service_id, api_base, sync_from, expires_at",
            )
            .bind(token_hash(state.trim()))
            .bind(tenant),
        )
        .await?;
    let Some((platform, name, app_key, secret_enc, service_id, api_base, sync_from, expires_at)) =
        row
    else {
        return Err(invalid(
            "state",
            "names no authorisation of this brand under way (used, or begun elsewhere)",
        ));
    };
    if expires_at < now {
        return Err(invalid(
            "state",
            "the authorisation ran out: it must be finished within 10 minutes",
        ));
    }
    let app_secret = cipher
        .decrypt(&secret_enc)
        .map_err(|_| ShopError::Secret(0))?;
    Ok(PendingShop {
        platform,
        name,
        app_key,
        app_secret,
        service_id,
        api_base,
        sync_from,
    })
}
