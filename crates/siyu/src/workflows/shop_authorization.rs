//! A seller's authorisation coming back (授权回调): the code is exchanged for the shop's tokens
//! at its platform, and the shop is connected (or reconnected) with them, so that its orders
//! start to sync without anyone copying a token by hand.

use crate::channels::marketplaces::authorize::AuthorizeError;
use crate::channels::marketplaces::{Client, Credentials, MarketError, Platform};
use crate::know::shop_authorizations::{self, PendingShop};
use crate::know::shops::{self, NewShop, ShopError};
use crate::platform::TenantId;
use crate::platform::crypto::FieldCipher;
use crate::platform::db::Db;

#[derive(Debug, thiserror::Error)]
pub enum AuthorizationError {
    #[error(transparent)]
    Shop(#[from] ShopError),
    #[error("the platform did not exchange the code: {0}")]
    Market(#[from] MarketError),
    #[error("{0} names no shop in its answer to the code")]
    NoShop(&'static str),
}

/// Where the seller's browser goes: the platform's page, with a state this brand alone can finish.
pub async fn begin(
    db: &Db,
    cipher: &FieldCipher,
    tenant: TenantId,
    pending: &PendingShop,
    redirect_uri: &str,
    allow_api_base: bool,
    now: i64,
) -> Result<String, AuthorizationError> {
    let platform = Platform::parse(&pending.platform).ok_or_else(|| ShopError::Invalid {
        field: "platform",
        reason: format!("{:?} is not a platform Siyu syncs", pending.platform),
    })?;
    let url_for = |state: &str| {
        crate::channels::marketplaces::authorize_url(
            platform,
            &pending.app_key,
            pending.service_id.as_deref(),
            redirect_uri,
            state,
            pending.api_base.as_deref(),
        )
        .map_err(|e| ShopError::Invalid {
            field: match e {
                AuthorizeError::NoServiceId => "service_id",
                AuthorizeError::Base(_) => "api_base",
                AuthorizeError::NotByCode(_) => "platform",
            },
            reason: e.to_string(),
        })
    };
    // The address is checked before anything is kept: a refusal leaves nothing behind.
    url_for("")?;
    let state =
        shop_authorizations::begin(db, cipher, tenant, pending, allow_api_base, now).await?;
    let url = url_for(&state)?;
    Ok(url)
}

/// Finishes the authorisation `state` names with the platform's `code`: the shop's id.
pub async fn finish(
    db: &Db,
    cipher: &FieldCipher,
    tenant: TenantId,
    state: &str,
    code: &str,
    allow_api_base: bool,
    now: i64,
) -> Result<i64, AuthorizationError> {
    let p = shop_authorizations::take(db, cipher, tenant, state, now).await?;
    // The server's leave may have been taken back since the authorisation began: the exchange
    // carries the app's secret, so it goes nowhere the server no longer allows.
    if p.api_base.is_some() && !allow_api_base {
        return Err(ShopError::Invalid {
            field: "api_base",
            reason: "only the platform's own address unless the server allows others (marketplace_allow_api_base)".into(),
        }
        .into());
    }
    let platform = Platform::parse(&p.platform).ok_or_else(|| ShopError::Invalid {
        field: "platform",
        reason: format!("{:?} is not a platform Siyu syncs", p.platform),
    })?;
    let client = Client::new(
        platform,
        Credentials {
            shop_ref: String::new(),
            app_key: p.app_key.clone(),
            app_secret: p.app_secret.clone(),
            access_token: None,
            refresh_token: None,
        },
        p.api_base.as_deref(),
    );
    let grant = client.exchange_code(code.trim(), now).await?;
    let shop_ref = grant
        .shop_ref
        .ok_or(AuthorizationError::NoShop(platform.as_str()))?;
    // The operator's name for the shop; else the name it has here already (authorising again
    // renames nothing); else the platform's; else the platform and its id (JD names no shop).
    let name = match p.name.trim() {
        "" => match shops::name_of(db, tenant, &p.platform, &shop_ref).await? {
            Some(kept) => kept,
            None => grant
                .shop_name
                .filter(|n| !n.trim().is_empty())
                .map(|n| n.trim().chars().take(64).collect())
                .unwrap_or_else(|| format!("{} {shop_ref}", platform.zh())),
        },
        typed => typed.to_owned(),
    };
    let shop = NewShop {
        platform: p.platform,
        name,
        shop_ref,
        app_key: p.app_key,
        app_secret: p.app_secret,
        access_token: Some(grant.tokens.access_token),
        refresh_token: grant.tokens.refresh_token,
        token_expires_at: Some(grant.tokens.expires_at),
        api_base: p.api_base,
        sync_from: p.sync_from,
    };
    Ok(shops::connect(db, cipher, tenant, &shop, allow_api_base, now).await?)
}
