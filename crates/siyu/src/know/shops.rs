//! Marketplace shops whose orders arrive by themselves: each shop's platform, its app's
//! credentials (encrypted at rest), the cursor up to which every order change is stored, and
//! how its sync last went.

use crate::platform::TenantId;
use serde::Serialize;

use crate::platform::crypto::FieldCipher;
use crate::platform::db::{Db, DbError, sql};
use crate::platform::refusal::{Refusal, Refuse};

#[derive(Debug, thiserror::Error)]
pub enum ShopError {
    #[error("shop {0} not found")]
    NotFound(i64),
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("shop {0}: its stored credentials do not decrypt with this server's secret")]
    Secret(i64),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl Refuse for ShopError {
    fn refusal(&self) -> Refusal {
        match self {
            ShopError::NotFound(_) => Refusal::NotFound("shop_not_found"),
            ShopError::Invalid { .. } => Refusal::Invalid,
            ShopError::Secret(_) | ShopError::Db(_) => Refusal::Internal,
        }
    }
}

/// A shop to connect, as the operator (or the platform's authorisation callback) gives it.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewShop {
    pub platform: String,
    /// The platform's id of the shop (Youzan kdt_id, Douyin shop_id, …).
    pub shop_ref: String,
    pub name: String,
    pub app_key: String,
    pub app_secret: String,
    #[serde(default)]
    pub access_token: Option<String>,
    #[serde(default)]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub token_expires_at: Option<i64>,
    /// Where the platform's API answers, when not its public address (a sandbox, a proxy).
    #[serde(default)]
    pub api_base: Option<String>,
    /// Orders changed from this time on are synced (UTC ms); a backfill moves it back.
    pub sync_from: i64,
}

/// A shop with its credentials, for the sync.
#[derive(Debug, Clone)]
pub struct Shop {
    pub id: i64,
    pub tenant_id: TenantId,
    pub platform: String,
    pub shop_ref: String,
    pub name: String,
    pub app_key: String,
    pub app_secret: String,
    pub access_token: Option<String>,
    pub refresh_token: Option<String>,
    pub token_expires_at: Option<i64>,
    pub api_base: Option<String>,
    pub sync_cursor: i64,
    /// When the shop was first connected: orders placed before are its history.
    pub connected_at: i64,
}

/// A shop as the console and `/metrics` show it: no secrets.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ShopStatus {
    pub id: i64,
    pub platform: String,
    pub shop_ref: String,
    pub name: String,
    pub sync_cursor: i64,
    pub last_success_at: Option<i64>,
    pub last_error: Option<String>,
    pub last_error_at: Option<i64>,
    pub orders_synced: i64,
    pub disconnected_at: Option<i64>,
}

impl ShopStatus {
    /// How far behind the platform the shop's orders are, in ms (0 when disconnected).
    pub fn lag_ms(&self, now: i64) -> i64 {
        match self.disconnected_at {
            Some(_) => 0,
            None => (now - self.sync_cursor).max(0),
        }
    }
}

fn check(s: &NewShop, allow_api_base: bool) -> Result<(), ShopError> {
    within("shop_ref", &s.shop_ref, 64)?;
    within("name", &s.name, 64)?;
    check_app(
        &s.app_key,
        &s.app_secret,
        s.api_base.as_deref(),
        s.sync_from,
        allow_api_base,
    )
}

/// A text field of 1 to `max` characters.
pub(crate) fn within(field: &'static str, v: &str, max: usize) -> Result<(), ShopError> {
    if v.trim().is_empty() || v.chars().count() > max {
        Err(ShopError::Invalid {
            field,
            reason: format!("must be 1–{max} characters"),
        })
    } else {
        Ok(())
    }
}

/// What connecting a shop and authorising one both ask for: the app's key and secret, where to
/// sync from, and an `api_base` only when the server allows it (`marketplace_allow_api_base`, for
/// a proxy or the sandbox); else the server only ever calls the platforms' public addresses,
/// never an address a tenant chose (an internal host).
pub(crate) fn check_app(
    app_key: &str,
    app_secret: &str,
    api_base: Option<&str>,
    sync_from: i64,
    allow_api_base: bool,
) -> Result<(), ShopError> {
    let invalid = |field: &'static str, reason: &str| {
        Err(ShopError::Invalid {
            field,
            reason: reason.into(),
        })
    };
    within("app_key", app_key, 128)?;
    within("app_secret", app_secret, 256)?;
    match api_base {
        Some(_) if !allow_api_base => invalid(
            "api_base",
            "only the platform's own address unless the server allows others (marketplace_allow_api_base)",
        ),
        Some(b) if !(b.starts_with("https://") || b.starts_with("http://")) => {
            invalid("api_base", "must be an http(s) URL")
        }
        _ if sync_from < 946_684_800_000 => {
            invalid("sync_from", "must be a time after 2000-01-01 (UTC ms)")
        }
        _ => Ok(()),
    }
}

/// Connects a shop (or reconnects it, with new credentials; its cursor is kept unless it was
/// disconnected). The platform name is checked by the caller against the clients it has.
pub async fn connect(
    db: &Db,
    cipher: &FieldCipher,
    tenant: TenantId,
    s: &NewShop,
    allow_api_base: bool,
    now: i64,
) -> Result<i64, ShopError> {
    check(s, allow_api_base)?;
    let enc = |v: &Option<String>| v.as_deref().map(|t| cipher.encrypt(t));
    let (id,): (i64,) = db
        .fetch_one(
            &sql(
                "INSERT INTO shops (tenant_id, platform, shop_ref, name, app_key, app_secret_enc, access_token_enc, \
                 refresh_token_enc, token_expires_at, api_base, sync_cursor, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
                 ON CONFLICT (tenant_id, platform, shop_ref) DO UPDATE SET name = excluded.name, \
                 app_key = excluded.app_key, app_secret_enc = excluded.app_secret_enc, \
                 access_token_enc = excluded.access_token_enc, refresh_token_enc = excluded.refresh_token_enc, \
                 token_expires_at = excluded.token_expires_at, api_base = excluded.api_base, \
                 sync_cursor = CASE WHEN shops.disconnected_at IS NULL THEN shops.sync_cursor ELSE excluded.sync_cursor END, \
                 disconnected_at = NULL, last_error = NULL, last_error_at = NULL \
                 RETURNING id",
            )
            .bind(tenant)
            .bind(s.platform.as_str())
            .bind(s.shop_ref.trim())
            .bind(s.name.trim())
            .bind(s.app_key.trim())
            .bind(cipher.encrypt(&s.app_secret))
            .bind(enc(&s.access_token))
            .bind(enc(&s.refresh_token))
            .bind(s.token_expires_at)
            .bind(s.api_base.as_deref())
            .bind(s.sync_from)
            .bind(now),
        )
        .await?;
    Ok(id)
}

/// The name a shop has here, if it was connected before.
pub async fn name_of(
    db: &Db,
    tenant: TenantId,
    platform: &str,
    shop_ref: &str,
) -> Result<Option<String>, ShopError> {
    let row: Option<(String,)> = db
        .fetch_optional(
            &sql("SELECT name FROM shops WHERE tenant_id = $1 AND platform = $2 AND shop_ref = $3")
                .bind(tenant)
                .bind(platform)
                .bind(shop_ref.trim()),
        )
        .await?;
    Ok(row.map(|(n,)| n))
}

const STATUS_COLUMNS: &str = "id, platform, shop_ref, name, sync_cursor, last_success_at, last_error, \
     last_error_at, orders_synced, disconnected_at";

/// The tenant's shops, connected ones first.
pub async fn list(db: &Db, tenant: TenantId) -> Result<Vec<ShopStatus>, ShopError> {
    Ok(db
        .fetch_all(
            &sql(format!(
                "SELECT {STATUS_COLUMNS} FROM shops WHERE tenant_id = $1 \
                 ORDER BY CASE WHEN disconnected_at IS NULL THEN 0 ELSE 1 END, id"
            ))
            .bind(tenant),
        )
        .await?)
}

/// Every connected shop of every tenant with its status, as (tenant, shop): what `/metrics`
/// reports, from the store, so that every server of a deployment reports the same figures
/// whichever of them synced the shop.
pub async fn connected_status(db: &Db) -> Result<Vec<(TenantId, ShopStatus)>, ShopError> {
    #[derive(sqlx::FromRow)]
    struct Row {
        tenant_id: TenantId,
        #[sqlx(flatten)]
        status: ShopStatus,
    }
    let rows: Vec<Row> = db
        .fetch_all(&sql(format!(
            "SELECT tenant_id, {STATUS_COLUMNS} FROM shops WHERE disconnected_at IS NULL ORDER BY tenant_id, id"
        )))
        .await?;
    Ok(rows.into_iter().map(|r| (r.tenant_id, r.status)).collect())
}

impl ShopStatus {
    /// Whether the last attempt failed: an error since the last success.
    pub fn failing(&self) -> bool {
        match (self.last_error_at, self.last_success_at) {
            (Some(e), Some(ok)) => e > ok,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }
}

/// Every connected shop of every tenant, as (tenant, shop): what the sync loop visits.
pub async fn connected(db: &Db) -> Result<Vec<(TenantId, i64)>, ShopError> {
    Ok(db
        .fetch_all(&sql(
            "SELECT tenant_id, id FROM shops WHERE disconnected_at IS NULL ORDER BY tenant_id, id",
        ))
        .await?)
}

type ShopRow = (
    i64,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<String>,
    i64,
    i64,
);

/// A connected shop with its credentials decrypted.
pub async fn load(
    db: &Db,
    cipher: &FieldCipher,
    tenant: TenantId,
    id: i64,
) -> Result<Shop, ShopError> {
    let row: Option<ShopRow> = db
        .fetch_optional(
            &sql(
                "SELECT id, platform, shop_ref, name, app_key, app_secret_enc, access_token_enc, refresh_token_enc, \
                 token_expires_at, api_base, sync_cursor, created_at FROM shops \
                 WHERE tenant_id = $1 AND id = $2 AND disconnected_at IS NULL",
            )
            .bind(tenant)
            .bind(id),
        )
        .await?;
    let (
        id,
        platform,
        shop_ref,
        name,
        app_key,
        secret,
        access,
        refresh,
        expires,
        api_base,
        cursor,
        connected_at,
    ) = row.ok_or(ShopError::NotFound(id))?;
    let dec = |v: &str| cipher.decrypt(v).map_err(|_| ShopError::Secret(id));
    Ok(Shop {
        id,
        tenant_id: tenant,
        platform,
        shop_ref,
        name,
        app_key,
        app_secret: dec(&secret)?,
        access_token: access.as_deref().map(dec).transpose()?,
        refresh_token: refresh.as_deref().map(dec).transpose()?,
        token_expires_at: expires,
        api_base,
        sync_cursor: cursor,
        connected_at,
    })
}

/// Keeps the tokens a refresh gave.
pub async fn save_tokens(
    db: &Db,
    cipher: &FieldCipher,
    shop: &Shop,
    access: &str,
    refresh: Option<&str>,
    expires_at: i64,
) -> Result<(), ShopError> {
    db.execute(
        &sql(
            "UPDATE shops SET access_token_enc = $1, refresh_token_enc = COALESCE($2, refresh_token_enc), \
             token_expires_at = $3 WHERE tenant_id = $4 AND id = $5",
        )
        .bind(cipher.encrypt(access))
        .bind(refresh.map(|r| cipher.encrypt(r)))
        .bind(expires_at)
        .bind(shop.tenant_id)
        .bind(shop.id),
    )
    .await?;
    Ok(())
}

/// Every change up to `to` is stored: the next run starts there. Moves the cursor only from
/// `from`, where this run found it: `false` when it was moved meanwhile (a backfill asked during
/// the run, which then wins) or the shop was disconnected.
pub async fn advance(
    db: &Db,
    shop: &Shop,
    from: i64,
    to: i64,
    orders: u64,
    now: i64,
) -> Result<bool, ShopError> {
    let n = db
        .execute(
            &sql(
                "UPDATE shops SET sync_cursor = $1, orders_synced = orders_synced + $2, last_success_at = $3, \
                 last_error = NULL WHERE tenant_id = $4 AND id = $5 AND disconnected_at IS NULL AND sync_cursor = $6",
            )
            .bind(to)
            .bind(orders as i64)
            .bind(now)
            .bind(shop.tenant_id)
            .bind(shop.id)
            .bind(from),
        )
        .await?;
    Ok(n == 1)
}

/// Records why a run stopped; the cursor stays where every change is stored.
pub async fn record_error(db: &Db, shop: &Shop, error: &str, now: i64) -> Result<(), ShopError> {
    let error: String = error.chars().take(500).collect();
    db.execute(
        &sql(
            "UPDATE shops SET last_error = $1, last_error_at = $2 WHERE tenant_id = $3 AND id = $4",
        )
        .bind(error)
        .bind(now)
        .bind(shop.tenant_id)
        .bind(shop.id),
    )
    .await?;
    Ok(())
}

/// A backfill: the next run re-reads changes from `from` (re-stored orders update, never
/// duplicate).
pub async fn rewind(db: &Db, tenant: TenantId, id: i64, from: i64) -> Result<(), ShopError> {
    let n = db
        .execute(
            &sql("UPDATE shops SET sync_cursor = $1 WHERE tenant_id = $2 AND id = $3 AND disconnected_at IS NULL")
                .bind(from)
                .bind(tenant)
                .bind(id),
        )
        .await?;
    if n == 0 {
        return Err(ShopError::NotFound(id));
    }
    Ok(())
}

/// Disconnects a shop: its tokens are forgotten and it is no longer synced; its orders stay.
pub async fn disconnect(db: &Db, tenant: TenantId, id: i64, now: i64) -> Result<(), ShopError> {
    let n = db
        .execute(
            &sql(
                "UPDATE shops SET disconnected_at = $1, access_token_enc = NULL, refresh_token_enc = NULL, \
                 token_expires_at = NULL WHERE tenant_id = $2 AND id = $3 AND disconnected_at IS NULL",
            )
            .bind(now)
            .bind(tenant)
            .bind(id),
        )
        .await?;
    if n == 0 {
        return Err(ShopError::NotFound(id));
    }
    Ok(())
}

/// A sync run's hold on a shop: the time it holds it until, which is also its proof of holding
/// (another run's lease has another time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease(i64);

/// Takes the shop for one sync run until `now + hold_ms`: `None` when another run holds it,
/// [`ShopError::NotFound`] when it is not a connected shop of the tenant.
pub async fn take_lease(
    db: &Db,
    tenant: TenantId,
    id: i64,
    now: i64,
    hold_ms: i64,
) -> Result<Option<Lease>, ShopError> {
    // A few random milliseconds: two servers taking a freed lease in the same millisecond
    // still hold different leases.
    let until = now + hold_ms + i64::from(rand::random::<u16>() % 1_000);
    let n = db
        .execute(
            &sql(
                "UPDATE shops SET sync_lease_until = $1 WHERE tenant_id = $2 AND id = $3 \
                 AND disconnected_at IS NULL AND (sync_lease_until IS NULL OR sync_lease_until < $4)",
            )
            .bind(until)
            .bind(tenant)
            .bind(id)
            .bind(now),
        )
        .await?;
    if n == 1 {
        return Ok(Some(Lease(until)));
    }
    let connected: Option<(i64,)> = db
        .fetch_optional(
            &sql(
                "SELECT id FROM shops WHERE tenant_id = $1 AND id = $2 AND disconnected_at IS NULL",
            )
            .bind(tenant)
            .bind(id),
        )
        .await?;
    match connected {
        Some(_) => Ok(None),
        None => Err(ShopError::NotFound(id)),
    }
}

/// Holds the lease longer (a long backfill renews it at every window); `None` when it is no
/// longer this run's (it ran out and another run took the shop, or the shop was disconnected).
pub async fn renew_lease(
    db: &Db,
    shop: &Shop,
    lease: Lease,
    now: i64,
    hold_ms: i64,
) -> Result<Option<Lease>, ShopError> {
    let until = now + hold_ms + i64::from(rand::random::<u16>() % 1_000);
    let n = db
        .execute(
            &sql(
                "UPDATE shops SET sync_lease_until = $1 WHERE tenant_id = $2 AND id = $3 \
                 AND sync_lease_until = $4 AND disconnected_at IS NULL",
            )
            .bind(until)
            .bind(shop.tenant_id)
            .bind(shop.id)
            .bind(lease.0),
        )
        .await?;
    Ok((n == 1).then_some(Lease(until)))
}

/// Gives the shop back, if the lease is still this run's.
pub async fn release_lease(
    db: &Db,
    tenant: TenantId,
    id: i64,
    lease: Lease,
) -> Result<(), ShopError> {
    db.execute(
        &sql("UPDATE shops SET sync_lease_until = NULL WHERE tenant_id = $1 AND id = $2 AND sync_lease_until = $3")
            .bind(tenant)
            .bind(id)
            .bind(lease.0),
    )
    .await?;
    Ok(())
}
