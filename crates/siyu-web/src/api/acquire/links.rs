//! Short tracked links (`acquire::links`).

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::AppState;
use crate::api::{ApiCaller, ApiError, json_body, path_id, require_write};
use siyu::acquire::codes;
use siyu::acquire::links::{self, NewLink};
use siyu::platform::clock::now_ms;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LinkBody {
    target: String,
    #[serde(default = "default_channel")]
    channel: String,
    campaign_id: Option<i64>,
    variant: Option<String>,
}

pub(crate) fn default_channel() -> String {
    "direct".into()
}

/// `POST /api/v1/links`
pub(crate) async fn create_link(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    b: Result<Json<LinkBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    let b = json_body(b)?;
    let mut tx = app.db.begin().await?;
    let made = links::create_in(
        &mut tx,
        caller.tenant_id,
        &[NewLink {
            target: b.target,
            channel: b.channel,
            campaign_id: b.campaign_id,
            variant: b.variant,
            ..NewLink::default()
        }],
        now_ms(),
    )
    .await?;
    tx.commit().await?;
    let l = made
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::internal("no link made"))?;
    let url = format!("{}/t/{}", app.public_url, l.code);
    Ok((
        StatusCode::CREATED,
        Json(json!({"link": l, "url": url, "qr_svg": format!("{url}/qr.svg"), "qr_png": format!("{url}/qr.png")})),
    )
        .into_response())
}

/// `GET /api/v1/links/{id}`: the link and its clicks.
pub(crate) async fn link(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let l = links::get(&app.db, caller.tenant_id, path_id("link", &id)?).await?;
    app.links.flush().await;
    let counts = links::click_counts(&app.db, caller.tenant_id, l.id).await?;
    Ok(Json(
        json!({"link": l, "url": format!("{}/t/{}", app.public_url, l.code), "clicks": counts}),
    ))
}

/// Tracking links are `{public_url}/t/XXXXXXXX`; the content check counts them at that length.
pub(crate) fn link_len(app: &AppState) -> usize {
    app.public_url.chars().count() + 3 + codes::LINK_CODE_LEN
}
