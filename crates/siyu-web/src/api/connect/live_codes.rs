//! Live codes (`connect::live_codes`): one QR that spreads adds over guides.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::json;

use crate::AppState;
use crate::api::{ApiCaller, ApiError, json_body, path_id, require_write};
use siyu::connect::live_codes::{self, NewLiveCode};
use siyu::platform::clock::now_ms;

pub(crate) async fn create_code(
    State(app): State<AppState>,
    ApiCaller(c): ApiCaller,
    body: Result<Json<NewLiveCode>, JsonRejection>,
) -> Result<(StatusCode, Json<live_codes::LiveCode>), ApiError> {
    require_write(&c)?;
    let n = json_body(body)?;
    let corp = app.connect.corp(c.tenant_id).await?;
    let code = live_codes::create(
        &app.db,
        &corp.api,
        c.tenant_id,
        n,
        now_ms(),
        corp.offset_min,
    )
    .await?;
    app.connect.forget_codes();
    Ok((StatusCode::CREATED, Json(code)))
}

pub(crate) async fn list_codes(
    State(app): State<AppState>,
    ApiCaller(c): ApiCaller,
) -> Result<Json<Vec<live_codes::CodeStats>>, ApiError> {
    Ok(Json(live_codes::stats(&app.db, c.tenant_id).await?))
}

pub(crate) async fn get_code(
    State(app): State<AppState>,
    ApiCaller(c): ApiCaller,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = path_id("live code", &id)?;
    let code = live_codes::get(&app.db, c.tenant_id, id).await?;
    let stats = live_codes::stats(&app.db, c.tenant_id)
        .await?
        .into_iter()
        .find(|s| s.id == id);
    Ok(Json(json!({"code": code, "stats": stats})))
}
