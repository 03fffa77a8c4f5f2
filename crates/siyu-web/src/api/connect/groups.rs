//! Customer groups (`connect::groups`): sync, kinds and retention.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::json;

use crate::AppState;
use crate::api::{ApiCaller, ApiError, json_body, require_write};
use siyu::connect::groups;
use siyu::platform::clock::now_ms;

pub(crate) async fn list_groups(
    State(app): State<AppState>,
    ApiCaller(c): ApiCaller,
) -> Result<Json<Vec<groups::GroupRow>>, ApiError> {
    Ok(Json(groups::list(&app.db, c.tenant_id).await?))
}

pub(crate) async fn sync_groups(
    State(app): State<AppState>,
    ApiCaller(c): ApiCaller,
) -> Result<Json<serde_json::Value>, ApiError> {
    require_write(&c)?;
    let corp = app.connect.corp(c.tenant_id).await?;
    let n = groups::sync_all(&app.db, &corp.api, c.tenant_id, now_ms()).await?;
    Ok(Json(json!({"synced": n})))
}

#[derive(Deserialize)]
pub(crate) struct RetentionQuery {
    kind: Option<String>,
    weeks: Option<usize>,
}

pub(crate) async fn retention(
    State(app): State<AppState>,
    ApiCaller(c): ApiCaller,
    Query(q): Query<RetentionQuery>,
) -> Result<Json<Vec<groups::Cohort>>, ApiError> {
    let weeks = q.weeks.unwrap_or(8);
    if !(1..=52).contains(&weeks) {
        return Err(ApiError::bad_request("weeks: must be 1 … 52"));
    }
    let offset = siyu::engage::policy::load(&app.db, c.tenant_id)
        .await?
        .utc_offset_minutes;
    Ok(Json(
        groups::retention(
            &app.db,
            c.tenant_id,
            q.kind.as_deref(),
            now_ms(),
            weeks,
            offset,
        )
        .await?,
    ))
}

#[derive(Deserialize)]
pub(crate) struct KindBody {
    kind: String,
}

pub(crate) async fn set_kind(
    State(app): State<AppState>,
    ApiCaller(c): ApiCaller,
    Path(chat_id): Path<String>,
    body: Result<Json<KindBody>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    require_write(&c)?;
    let b = json_body(body)?;
    groups::set_kind(&app.db, c.tenant_id, &chat_id, &b.kind).await?;
    Ok(Json(json!({"chat_id": chat_id, "kind": b.kind})))
}
