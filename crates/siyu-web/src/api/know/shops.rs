//! `/api/v1/shops`: marketplace shops whose orders are synced (`know::shops`,
//! `workflows::sync`). Connecting and disconnecting hand over secrets: admins only.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::AppState;
use crate::api::{ApiCaller, ApiError, json_body, path_id, require_admin, require_write};
use siyu::channels::marketplaces::{ALL_PLATFORMS, Platform};
use siyu::know::shops::{self, NewShop};
use siyu::platform::clock::now_ms;
use siyu::workflows::sync::{SyncError, SyncLimits, sync_shop};

/// `GET /api/v1/shops`: each shop with its cursor, lag, orders synced and last error.
pub(crate) async fn list(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
) -> Result<Response, ApiError> {
    let now = now_ms();
    let shops: Vec<_> = shops::list(&app.db, caller.tenant_id)
        .await?
        .into_iter()
        .map(|s| {
            let lag = s.lag_ms(now);
            let zh = Platform::parse(&s.platform).map(|p| p.zh());
            json!({"shop": s, "platform_zh": zh, "lag_ms": lag})
        })
        .collect();
    Ok(Json(json!({"shops": shops})).into_response())
}

/// `POST /api/v1/shops`: connects a shop (or reconnects it with new credentials).
pub(crate) async fn connect(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    body: Result<Json<NewShop>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    require_admin(&caller)?;
    let shop = json_body(body)?;
    if Platform::parse(&shop.platform).is_none() {
        return Err(ApiError::bad_request(format!(
            "platform: {:?} is not one of {}",
            shop.platform,
            ALL_PLATFORMS
                .iter()
                .map(|p| p.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let id = shops::connect(
        &app.db,
        &app.cipher,
        caller.tenant_id,
        &shop,
        app.marketplace_allow_api_base,
        now_ms(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(json!({"id": id}))).into_response())
}

/// `DELETE /api/v1/shops/{id}`: no longer synced, tokens forgotten; its orders stay.
pub(crate) async fn disconnect(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    require_admin(&caller)?;
    let id = path_id("shop", &id)?;
    shops::disconnect(&app.db, caller.tenant_id, id, now_ms()).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Backfill {
    /// Re-read orders changed from this time on (UTC ms).
    from: i64,
}

/// `POST /api/v1/shops/{id}/backfill`: the next sync re-reads changes from `from`.
pub(crate) async fn backfill(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
    body: Result<Json<Backfill>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    let id = path_id("shop", &id)?;
    let b = json_body(body)?;
    if b.from < 946_684_800_000 || b.from > now_ms() {
        return Err(ApiError::bad_request(
            "from: must be a past time after 2000-01-01 (UTC ms)",
        ));
    }
    shops::rewind(&app.db, caller.tenant_id, id, b.from).await?;
    Ok(Json(json!({"id": id, "sync_cursor": b.from})).into_response())
}

/// `POST /api/v1/shops/{id}/sync`: syncs the shop now (unless another run holds it) and
/// answers the run. The run goes on by itself if the caller hangs up, and gives the shop back.
pub(crate) async fn sync_now(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    let id = path_id("shop", &id)?;
    let tenant = caller.tenant_id;
    let limits = SyncLimits {
        allow_api_base: app.marketplace_allow_api_base,
        ..SyncLimits::default()
    };
    let running = app.clone();
    let run = tokio::spawn(async move {
        sync_shop(
            &running.db,
            &running.cipher,
            Some(&running.audiences),
            tenant,
            id,
            &limits,
        )
        .await
    })
    .await
    .map_err(ApiError::internal)?;
    let run = run.map_err(|e| match e {
        SyncError::Shop(e) => ApiError::from(e),
        SyncError::Busy(_) => ApiError::new(
            StatusCode::CONFLICT,
            "sync_running",
            format!("shop {id} is being synced now; its receipt will be in /api/v1/import/runs"),
        ),
        e => ApiError::new(StatusCode::BAD_GATEWAY, "sync_failed", e.to_string()),
    })?;
    Ok(Json(json!({
        "windows": run.windows, "calls": run.calls, "retries": run.retries, "sync_cursor": run.cursor,
        "read": run.summary.read, "imported": run.summary.imported, "updated": run.summary.updated,
        "rejected": run.summary.rejected, "unknown_status": run.summary.unknown_status,
        "unlinked": run.summary.unlinked, "receipt": run.summary.receipt,
    }))
    .into_response())
}
