//! `/api/v1/access`: the tenant's API keys and the audit log of access changes, for admins
//! (`platform::access`).

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::AppState;
use crate::api::{ApiCaller, ApiError, actor, json_body, require_admin};
use siyu::platform::access::{self, Role};

/// `GET /api/v1/access/keys`: every key of the tenant, by its first characters.
pub(crate) async fn list_keys(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
) -> Result<Response, ApiError> {
    require_admin(&caller)?;
    let keys = access::api_keys(&app.db, caller.tenant_id).await?;
    Ok(Json(json!({ "keys": keys })).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewKey {
    name: String,
    role: String,
}

/// `POST /api/v1/access/keys` `{"name", "role"}`: a new key, shown once.
pub(crate) async fn create_key(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    b: Result<Json<NewKey>, JsonRejection>,
) -> Result<Response, ApiError> {
    require_admin(&caller)?;
    let b = json_body(b)?;
    let name = b.name.trim();
    if name.is_empty() || name.chars().count() > 64 {
        return Err(ApiError::bad_request("name: must be 1–64 characters"));
    }
    let role = Role::parse(&b.role)
        .ok_or_else(|| ApiError::bad_request("role: must be admin, operator, guide or viewer"))?;
    let key = access::issue_api_key(&app.db, caller.tenant_id, name, role, &actor(&caller)).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"key": key, "prefix": &key[..10]})),
    )
        .into_response())
}

/// `POST /api/v1/access/keys/{prefix}/rotate`: a new key of the same name and role, shown once;
/// the old one stops working at once.
pub(crate) async fn rotate_key(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(prefix): Path<String>,
) -> Result<Response, ApiError> {
    require_admin(&caller)?;
    let key = access::rotate_api_key(&app.db, caller.tenant_id, &prefix, &actor(&caller)).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"key": key, "prefix": &key[..10], "revoked": prefix})),
    )
        .into_response())
}

/// `DELETE /api/v1/access/keys/{prefix}`: the key stops working at once.
pub(crate) async fn revoke_key(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(prefix): Path<String>,
) -> Result<Response, ApiError> {
    require_admin(&caller)?;
    access::revoke_api_key(&app.db, caller.tenant_id, &prefix, &actor(&caller)).await?;
    Ok(Json(json!({"revoked": prefix})).into_response())
}

/// `GET /api/v1/access/audit`: the latest 200 changes of access, newest first.
pub(crate) async fn audit_log(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
) -> Result<Response, ApiError> {
    require_admin(&caller)?;
    let entries = access::audit_log(&app.db, caller.tenant_id, 200).await?;
    Ok(Json(json!({ "entries": entries })).into_response())
}
