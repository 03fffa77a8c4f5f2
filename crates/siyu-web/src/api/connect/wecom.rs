//! WeCom (`connect::service`): the callback, the corp's settings, unsubscribes and the tick.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use siyu::platform::TenantId;

use crate::AppState;
use crate::api::{ApiCaller, ApiError, json_body, require_write};
use siyu::connect::service::{CallbackQuery, ConnectError, CorpSettings, Received};
use siyu::platform::clock::now_ms;

/// A refused callback: WeCom only needs a non-200; the reason goes to the log.
pub(crate) fn refuse(e: ConnectError) -> Response {
    match e {
        ConnectError::Db(e) => {
            // Not stored, so not acknowledged: WeCom retries.
            tracing::error!(error = %e, "WeCom callback not stored");
            (StatusCode::SERVICE_UNAVAILABLE, "try again").into_response()
        }
        ConnectError::NotConfigured => (StatusCode::NOT_FOUND, e.to_string()).into_response(),
        e => {
            tracing::warn!(error = %e, "WeCom callback refused");
            (StatusCode::BAD_REQUEST, e.to_string()).into_response()
        }
    }
}

pub(crate) fn tenant_of(raw: &str) -> Option<TenantId> {
    raw.parse().ok()
}

pub(crate) fn unknown_callback() -> Response {
    (StatusCode::NOT_FOUND, "unknown callback").into_response()
}

/// `GET /callbacks/wecom/{tenant}`: URL verification when the callback is set in WeCom.
pub(crate) async fn verify_url(
    State(app): State<AppState>,
    Path(tenant): Path<String>,
    Query(q): Query<CallbackQuery>,
) -> Response {
    let Some(tenant) = tenant_of(&tenant) else {
        return unknown_callback();
    };
    match app.connect.verify_url(tenant, &q, now_ms()).await {
        Ok(echo) => echo.into_response(),
        Err(e) => refuse(e),
    }
}

/// `POST /callbacks/wecom/{tenant}`: an event. Answers `success` once it is stored.
pub(crate) async fn callback(
    State(app): State<AppState>,
    Path(tenant): Path<String>,
    Query(q): Query<CallbackQuery>,
    body: axum::body::Bytes,
) -> Response {
    let Some(tenant) = tenant_of(&tenant) else {
        return unknown_callback();
    };
    let Ok(body) = std::str::from_utf8(&body) else {
        return (StatusCode::BAD_REQUEST, "body is not UTF-8").into_response();
    };
    match app.connect.receive(tenant, &q, body, now_ms()).await {
        Ok(Received::Queued | Received::Duplicate) => "success".into_response(),
        Err(e) => refuse(e),
    }
}

pub(crate) async fn get_corp(
    State(app): State<AppState>,
    ApiCaller(c): ApiCaller,
) -> Result<Json<serde_json::Value>, ApiError> {
    let v = app.connect.settings_view(c.tenant_id).await?;
    Ok(Json(json!({
        "corp_id": v.corp_id, "base_url": v.base_url, "updated_at": v.updated_at,
        "callback_url": format!("{}/callbacks/wecom/{}", app.public_url, c.tenant_id),
        "callbacks": {"received": v.callbacks_received, "done": v.callbacks_done,
                      "unfinished": v.callbacks_received - v.callbacks_done},
    })))
}

pub(crate) async fn put_corp(
    State(app): State<AppState>,
    ApiCaller(c): ApiCaller,
    body: Result<Json<CorpSettings>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    require_write(&c)?;
    let s = json_body(body)?;
    let corp = app.connect.configure(c.tenant_id, s, now_ms()).await?;
    Ok(Json(json!({
        "corp_id": corp.api.corp_id(),
        "callback_url": format!("{}/callbacks/wecom/{}", app.public_url, c.tenant_id),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OptOut {
    external_userid: String,
}

/// `POST /api/v1/wecom/unsubscribes`: the customer asked the guide for no more mass messages.
pub(crate) async fn unsubscribe(
    State(app): State<AppState>,
    ApiCaller(c): ApiCaller,
    body: Result<Json<OptOut>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    require_write(&c)?;
    let b = json_body(body)?;
    let ext = b.external_userid.trim();
    if ext.is_empty() || ext.len() > 64 || ext.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "external_userid: must be 1–64 characters",
        ));
    }
    siyu::engage::policy::unsubscribe(&app.db, c.tenant_id, "wecom", ext, "api", now_ms()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/connect/tick`: runs the caller's periodic work now (the server runs every
/// tenant's every 30 s).
pub(crate) async fn tick(
    State(app): State<AppState>,
    ApiCaller(c): ApiCaller,
) -> Result<Json<siyu::connect::service::TickReport>, ApiError> {
    require_write(&c)?;
    Ok(Json(app.connect.tick_tenant(c.tenant_id, now_ms()).await?))
}
