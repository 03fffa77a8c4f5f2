//! A tenant's named settings (`import.status_map`, …), each a JSON document in one row.

use crate::platform::TenantId;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::db::{Db, DbResult, sql};

/// The setting's value, or `None` when the tenant never saved it (or it no longer reads as `T`).
pub async fn get<T: DeserializeOwned>(
    db: &Db,
    tenant: TenantId,
    name: &str,
) -> DbResult<Option<T>> {
    let row: Option<(String,)> = db
        .fetch_optional(
            &sql("SELECT value FROM tenant_settings WHERE tenant_id = $1 AND name = $2")
                .bind(tenant)
                .bind(name),
        )
        .await?;
    Ok(row.and_then(|(v,)| serde_json::from_str(&v).ok()))
}

/// Saves the setting, replacing what was there.
pub async fn put<T: Serialize>(
    db: &Db,
    tenant: TenantId,
    name: &str,
    value: &T,
    now: i64,
) -> DbResult<()> {
    let text = serde_json::to_string(value).unwrap_or_else(|_| "null".into());
    db.execute(
        &sql(
            "INSERT INTO tenant_settings (tenant_id, name, value, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tenant_id, name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(tenant)
        .bind(name)
        .bind(text)
        .bind(now),
    )
    .await?;
    Ok(())
}
