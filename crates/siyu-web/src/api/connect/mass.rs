//! Mass messages through guides (`connect::mass`).

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::json;

use crate::AppState;
use crate::api::{ApiCaller, ApiError, json_body, path_id, require_write};
use siyu::connect::mass::{self, NewMass};
use siyu::platform::clock::now_ms;

pub(crate) async fn create_mass(
    State(app): State<AppState>,
    ApiCaller(c): ApiCaller,
    body: Result<Json<NewMass>, JsonRejection>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    require_write(&c)?;
    let id = mass::create(&app.db, c.tenant_id, json_body(body)?, now_ms()).await?;
    Ok((StatusCode::CREATED, Json(json!({"id": id}))))
}

pub(crate) async fn list_mass(
    State(app): State<AppState>,
    ApiCaller(c): ApiCaller,
) -> Result<Json<Vec<mass::MassView>>, ApiError> {
    Ok(Json(mass::list(&app.db, c.tenant_id).await?))
}

pub(crate) async fn get_mass(
    State(app): State<AppState>,
    ApiCaller(c): ApiCaller,
    Path(id): Path<String>,
) -> Result<Json<mass::MassView>, ApiError> {
    let id = path_id("mass message", &id)?;
    Ok(Json(mass::get(&app.db, c.tenant_id, id).await?))
}
