//! WeCom's callback endpoint and `/api/v1` for connect: the corp's settings, channel live codes,
//! customer groups and their retention, group SOP posts and mass messages.

use axum::Json;
use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::api::{ApiCaller, ApiError, json_body, require_write};
use super::api_activities::path_id;
use crate::connect::groups::{self, GroupError};
use crate::connect::live_codes::{self, LiveCodeError, NewLiveCode};
use crate::connect::mass::{self, MassError, NewMass};
use crate::connect::service::{CallbackQuery, ConnectError, CorpSettings, Received};
use crate::connect::sop::{self, NewPost, SopError};
use crate::platform::clock::now_ms;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/callbacks/wecom/{tenant}",
            get(verify_url)
                .post(callback)
                // WeCom's callbacks are a few hundred bytes; refuse anything far larger.
                .layer(DefaultBodyLimit::max(64 * 1024)),
        )
        .route("/api/v1/wecom", get(get_corp).put(put_corp))
        .route("/api/v1/live-codes", get(list_codes).post(create_code))
        .route("/api/v1/live-codes/{id}", get(get_code))
        .route("/api/v1/groups", get(list_groups))
        .route("/api/v1/groups/sync", post(sync_groups))
        .route("/api/v1/groups/retention", get(retention))
        .route("/api/v1/groups/{chat_id}/kind", put(set_kind))
        .route("/api/v1/sop-posts", get(sop_calendar).post(create_post))
        .route("/api/v1/mass-messages", get(list_mass).post(create_mass))
        .route("/api/v1/mass-messages/{id}", get(get_mass))
        .route("/api/v1/connect/tick", post(tick))
        .route("/api/v1/wecom/unsubscribes", post(unsubscribe))
}

impl From<ConnectError> for ApiError {
    fn from(e: ConnectError) -> Self {
        match e {
            ConnectError::NotConfigured => {
                ApiError::new(StatusCode::NOT_FOUND, "not_configured", e.to_string())
            }
            ConnectError::Db(e) => ApiError::internal(e),
            ConnectError::Wecom(e) => {
                ApiError::new(StatusCode::BAD_GATEWAY, "wecom", e.to_string())
            }
            e => ApiError::bad_request(e.to_string()),
        }
    }
}

impl From<LiveCodeError> for ApiError {
    fn from(e: LiveCodeError) -> Self {
        match e {
            LiveCodeError::NotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", e.to_string())
            }
            LiveCodeError::Db(e) => ApiError::internal(e),
            LiveCodeError::Wecom(e) => {
                ApiError::new(StatusCode::BAD_GATEWAY, "wecom", e.to_string())
            }
            e => ApiError::bad_request(e.to_string()),
        }
    }
}

impl From<GroupError> for ApiError {
    fn from(e: GroupError) -> Self {
        match e {
            GroupError::NotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", e.to_string())
            }
            GroupError::Db(e) => ApiError::internal(e),
            GroupError::Wecom(e) => ApiError::new(StatusCode::BAD_GATEWAY, "wecom", e.to_string()),
            e => ApiError::bad_request(e.to_string()),
        }
    }
}

impl From<SopError> for ApiError {
    fn from(e: SopError) -> Self {
        match e {
            SopError::Db(e) => ApiError::internal(e),
            e => ApiError::bad_request(e.to_string()),
        }
    }
}

impl From<MassError> for ApiError {
    fn from(e: MassError) -> Self {
        match e {
            MassError::NotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", e.to_string())
            }
            MassError::Db(e) => ApiError::internal(e),
            e => ApiError::bad_request(e.to_string()),
        }
    }
}

/// A refused callback: WeCom only needs a non-200; the reason goes to the log.
fn refuse(e: ConnectError) -> Response {
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

fn tenant_of(raw: &str) -> Option<i64> {
    raw.parse().ok()
}

fn unknown_callback() -> Response {
    (StatusCode::NOT_FOUND, "unknown callback").into_response()
}

/// `GET /callbacks/wecom/{tenant}`: URL verification when the callback is set in WeCom.
async fn verify_url(
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
async fn callback(
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

async fn get_corp(
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

async fn put_corp(
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

async fn create_code(
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

async fn list_codes(
    State(app): State<AppState>,
    ApiCaller(c): ApiCaller,
) -> Result<Json<Vec<live_codes::CodeStats>>, ApiError> {
    Ok(Json(live_codes::stats(&app.db, c.tenant_id).await?))
}

async fn get_code(
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

async fn list_groups(
    State(app): State<AppState>,
    ApiCaller(c): ApiCaller,
) -> Result<Json<Vec<groups::GroupRow>>, ApiError> {
    Ok(Json(groups::list(&app.db, c.tenant_id).await?))
}

async fn sync_groups(
    State(app): State<AppState>,
    ApiCaller(c): ApiCaller,
) -> Result<Json<serde_json::Value>, ApiError> {
    require_write(&c)?;
    let corp = app.connect.corp(c.tenant_id).await?;
    let n = groups::sync_all(&app.db, &corp.api, c.tenant_id, now_ms()).await?;
    Ok(Json(json!({"synced": n})))
}

#[derive(Deserialize)]
struct RetentionQuery {
    kind: Option<String>,
    weeks: Option<usize>,
}

async fn retention(
    State(app): State<AppState>,
    ApiCaller(c): ApiCaller,
    Query(q): Query<RetentionQuery>,
) -> Result<Json<Vec<groups::Cohort>>, ApiError> {
    let weeks = q.weeks.unwrap_or(8);
    if !(1..=52).contains(&weeks) {
        return Err(ApiError::bad_request("weeks: must be 1 … 52"));
    }
    let offset = crate::engage::policy::load(&app.db, c.tenant_id)
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
struct KindBody {
    kind: String,
}

async fn set_kind(
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

async fn create_post(
    State(app): State<AppState>,
    ApiCaller(c): ApiCaller,
    body: Result<Json<NewPost>, JsonRejection>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    require_write(&c)?;
    let id = sop::create(&app.db, c.tenant_id, json_body(body)?, now_ms()).await?;
    Ok((StatusCode::CREATED, Json(json!({"id": id}))))
}

#[derive(Deserialize)]
struct Range {
    from: Option<i64>,
    to: Option<i64>,
}

async fn sop_calendar(
    State(app): State<AppState>,
    ApiCaller(c): ApiCaller,
    Query(r): Query<Range>,
) -> Result<Json<Vec<sop::Post>>, ApiError> {
    let now = now_ms();
    let from = r.from.unwrap_or(now - 7 * 86_400_000);
    let to = r.to.unwrap_or(now + 28 * 86_400_000);
    Ok(Json(sop::calendar(&app.db, c.tenant_id, from, to).await?))
}

async fn create_mass(
    State(app): State<AppState>,
    ApiCaller(c): ApiCaller,
    body: Result<Json<NewMass>, JsonRejection>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    require_write(&c)?;
    let id = mass::create(&app.db, c.tenant_id, json_body(body)?, now_ms()).await?;
    Ok((StatusCode::CREATED, Json(json!({"id": id}))))
}

async fn list_mass(
    State(app): State<AppState>,
    ApiCaller(c): ApiCaller,
) -> Result<Json<Vec<mass::MassView>>, ApiError> {
    Ok(Json(mass::list(&app.db, c.tenant_id).await?))
}

async fn get_mass(
    State(app): State<AppState>,
    ApiCaller(c): ApiCaller,
    Path(id): Path<String>,
) -> Result<Json<mass::MassView>, ApiError> {
    let id = path_id("mass message", &id)?;
    Ok(Json(mass::get(&app.db, c.tenant_id, id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OptOut {
    external_userid: String,
}

/// `POST /api/v1/wecom/unsubscribes`: the customer asked the guide for no more mass messages.
async fn unsubscribe(
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
    crate::engage::policy::unsubscribe(&app.db, c.tenant_id, "wecom", ext, "api", now_ms()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/connect/tick`: runs the caller's periodic work now (the server runs every
/// tenant's every 30 s).
async fn tick(
    State(app): State<AppState>,
    ApiCaller(c): ApiCaller,
) -> Result<Json<crate::connect::service::TickReport>, ApiError> {
    require_write(&c)?;
    Ok(Json(app.connect.tick_tenant(c.tenant_id, now_ms()).await?))
}
