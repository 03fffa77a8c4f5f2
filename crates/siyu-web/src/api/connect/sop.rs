//! Group SOP posts (`connect::sop`).

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::json;

use crate::AppState;
use crate::api::{ApiCaller, ApiError, json_body, require_write};
use siyu::connect::sop::{self, NewPost};
use siyu::platform::clock::now_ms;

pub(crate) async fn create_post(
    State(app): State<AppState>,
    ApiCaller(c): ApiCaller,
    body: Result<Json<NewPost>, JsonRejection>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    require_write(&c)?;
    let id = sop::create(&app.db, c.tenant_id, json_body(body)?, now_ms()).await?;
    Ok((StatusCode::CREATED, Json(json!({"id": id}))))
}

#[derive(Deserialize)]
pub(crate) struct Range {
    from: Option<i64>,
    to: Option<i64>,
}

pub(crate) async fn sop_calendar(
    State(app): State<AppState>,
    ApiCaller(c): ApiCaller,
    Query(r): Query<Range>,
) -> Result<Json<Vec<sop::Post>>, ApiError> {
    let now = now_ms();
    let from = r.from.unwrap_or(now - 7 * 86_400_000);
    let to = r.to.unwrap_or(now + 28 * 86_400_000);
    Ok(Json(sop::calendar(&app.db, c.tenant_id, from, to).await?))
}
