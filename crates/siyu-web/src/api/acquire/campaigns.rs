//! SMS campaigns (`acquire::campaigns`): create, launch, report.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::links::link_len;
use crate::AppState;
use crate::api::{ApiCaller, ApiError, json_body, path_id, require_write};
use siyu::acquire::campaigns::{self, NewCampaign};
use siyu::acquire::report;
use siyu::platform::clock::now_ms;

/// `POST /api/v1/campaigns`
pub(crate) async fn create_campaign(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    b: Result<Json<NewCampaign>, JsonRejection>,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    let b = json_body(b)?;
    let (c, content) =
        campaigns::create(&app.db, caller.tenant_id, &b, link_len(&app), now_ms()).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"campaign": c, "content": content})),
    )
        .into_response())
}

pub(crate) async fn list_campaigns(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(
        json!({"campaigns": campaigns::list(&app.db, caller.tenant_id).await?}),
    ))
}

pub(crate) async fn campaign(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = path_id("campaign", &id)?;
    let c = campaigns::get(&app.db, caller.tenant_id, id).await?;
    let launch = campaigns::launch_report(&app.db, caller.tenant_id, id).await?;
    Ok(Json(json!({"campaign": c, "launch": launch})))
}

/// `POST /api/v1/campaigns/{id}/launch`: the audience becomes outbox messages (idempotent).
pub(crate) async fn launch(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    require_write(&caller)?;
    let id = path_id("campaign", &id)?;
    let r = campaigns::launch_then(
        &app.db,
        &app.cipher,
        &app.public_url,
        caller.tenant_id,
        id,
        now_ms(),
        Some(&app.outbox),
    )
    .await?;
    app.outbox.notify();
    Ok(Json(json!({"launch": r})))
}

pub(crate) async fn campaign_report(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
) -> Result<Json<report::CampaignReport>, ApiError> {
    app.links.flush().await;
    Ok(Json(
        report::campaign_report(&app.db, caller.tenant_id, path_id("campaign", &id)?).await?,
    ))
}

pub(crate) async fn campaign_report_csv(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = path_id("campaign", &id)?;
    app.links.flush().await;
    let r = report::campaign_report(&app.db, caller.tenant_id, id).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"campaign-{id}.csv\""),
            ),
        ],
        // A BOM, so Excel opens the Chinese variant names as UTF-8.
        format!("\u{feff}{}", report::campaign_csv(&r)),
    )
        .into_response())
}
