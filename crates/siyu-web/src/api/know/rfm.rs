//! RFM classes and their settings (`know::rfm`).

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{Value as Json_, json};
use siyu::platform::TenantId;

use crate::AppState;
use crate::api::{ApiCaller, ApiError, json_body, require_write};
use siyu::know::profile;
use siyu::know::rfm::{ALL_CLASSES, ALL_STAGES, LayeringSettings};
use siyu::platform::clock::now_ms;

/// The RFM class and stage distribution as the index has it, with the model in force.
pub async fn rfm_json(app: &AppState, tenant: TenantId) -> Result<Json_, ApiError> {
    let (classes, stages, total) = app
        .audiences
        .read(tenant, |ix| {
            (ix.class_sizes(), ix.stage_sizes(), ix.universe.len())
        })
        .await?;
    let (settings, model) = profile::settings(&app.db, tenant).await?;
    Ok(json!({
        "customers": total,
        "classes": ALL_CLASSES.iter().zip(classes).map(|(c, n)| json!({"class": c.as_str(), "zh": c.zh(), "en": c.en(), "customers": n})).collect::<Vec<_>>(),
        "stages": ALL_STAGES.iter().zip(stages).map(|(s, n)| json!({"stage": s.as_str(), "zh": s.zh(), "en": s.en(), "customers": n})).collect::<Vec<_>>(),
        "settings": settings,
        "model": model,
    }))
}

pub(crate) async fn rfm(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
) -> Result<Response, ApiError> {
    Ok(Json(rfm_json(&app, caller.tenant_id).await?).into_response())
}

/// `PUT /api/v1/rfm/settings`: window, cut points and stage days; recomputes everyone.
pub(crate) async fn put_rfm_settings(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    body: Result<Json<LayeringSettings>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    let s = json_body(body)?;
    s.check().map_err(ApiError::bad_request)?;
    profile::save_settings(&app.db, caller.tenant_id, &s, now_ms()).await?;
    app.audiences.rebuild(caller.tenant_id).await?;
    Ok(Json(rfm_json(&app, caller.tenant_id).await?).into_response())
}
