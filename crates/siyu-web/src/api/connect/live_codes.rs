//! Live codes (`connect::live_codes`): one QR that spreads adds over guides.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
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

/// `PUT /api/v1/live-codes/{id}`: the code's name, tags, welcome, guides and backup, as on
/// creation; what it was made for (`source`, `source_id`) stays and is not taken.
pub(crate) async fn update_code(
    State(app): State<AppState>,
    ApiCaller(c): ApiCaller,
    Path(id): Path<String>,
    body: Result<Json<live_codes::LiveCodeChange>, JsonRejection>,
) -> Result<Json<live_codes::LiveCode>, ApiError> {
    require_write(&c)?;
    let id = path_id("live code", &id)?;
    let n = json_body(body)?;
    let corp = app.connect.corp(c.tenant_id).await?;
    let code = live_codes::update(
        &app.db,
        &corp.api,
        c.tenant_id,
        id,
        n,
        now_ms(),
        corp.offset_min,
    )
    .await?;
    app.connect.forget_codes();
    Ok(Json(code))
}

/// `POST /api/v1/live-codes/{id}/stop`: WeCom deletes the contact way; the code and its
/// figures stay.
pub(crate) async fn stop_code(
    State(app): State<AppState>,
    ApiCaller(c): ApiCaller,
    Path(id): Path<String>,
) -> Result<Json<live_codes::LiveCode>, ApiError> {
    require_write(&c)?;
    let id = path_id("live code", &id)?;
    let corp = app.connect.corp(c.tenant_id).await?;
    let code = live_codes::disable(&app.db, &corp.api, c.tenant_id, id, now_ms()).await?;
    app.connect.forget_codes();
    Ok(Json(code))
}

/// A live code's QR as a file to print: PNG (16 pixels a module) or SVG.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum QrFile {
    Png,
    Svg,
}

/// The code's QR as a download named after it: the text read from WeCom's own picture, drawn
/// again at print size (WeCom's picture is small, and a bitmap).
pub(crate) async fn qr_download(
    app: &AppState,
    tenant: siyu::platform::TenantId,
    id: i64,
    kind: QrFile,
) -> Result<Response, ApiError> {
    let code = live_codes::get(&app.db, tenant, id).await?;
    let corp = app.connect.corp(tenant).await?;
    let text = live_codes::qr_text(&corp.api, &code).await?;
    let bad =
        |e: siyu::acquire::qr::QrError| ApiError::from(live_codes::LiveCodeError::Picture(id, e));
    let (body, mime, ext) = match kind {
        QrFile::Png => (
            siyu::acquire::qr::png(&text, 16).map_err(bad)?,
            "image/png",
            "png",
        ),
        QrFile::Svg => (
            siyu::acquire::qr::svg(&text, 1024)
                .map_err(bad)?
                .into_bytes(),
            "image/svg+xml",
            "svg",
        ),
    };
    // An ASCII name for old clients, the code's own name (UTF-8, RFC 6266) for the rest.
    let name: String = format!("活码-{}.{ext}", code.name);
    let encoded = siyu::channels::sms::percent_encode(&name);
    Ok((
        [
            (header::CONTENT_TYPE, mime.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!(
                    "attachment; filename=\"live-code-{id}.{ext}\"; filename*=UTF-8''{encoded}"
                ),
            ),
            (header::CACHE_CONTROL, "private, no-store".to_owned()),
        ],
        body,
    )
        .into_response())
}

/// `GET /api/v1/live-codes/{id}/qr.png`
pub(crate) async fn qr_png(
    State(app): State<AppState>,
    ApiCaller(c): ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    qr_download(&app, c.tenant_id, path_id("live code", &id)?, QrFile::Png).await
}

/// `GET /api/v1/live-codes/{id}/qr.svg`
pub(crate) async fn qr_svg(
    State(app): State<AppState>,
    ApiCaller(c): ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    qr_download(&app, c.tenant_id, path_id("live code", &id)?, QrFile::Svg).await
}
