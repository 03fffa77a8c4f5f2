//! The contact policy and unsubscribes (`engage::policy`).

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use serde::Deserialize;

use crate::AppState;
use crate::api::{ApiCaller, ApiError, json_body, require_write};
use siyu::engage::policy::{self, ContactPolicy};
use siyu::know::phone::Phone;
use siyu::platform::clock::now_ms;

/// `GET /api/v1/contact-policy`
pub(crate) async fn get_policy(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
) -> Result<Json<ContactPolicy>, ApiError> {
    Ok(Json(policy::load(&app.db, caller.tenant_id).await?))
}

/// `PUT /api/v1/contact-policy`
pub(crate) async fn put_policy(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    b: Result<Json<ContactPolicy>, JsonRejection>,
) -> Result<Json<ContactPolicy>, ApiError> {
    require_write(&caller)?;
    let p = json_body(b)?;
    policy::save(&app.db, caller.tenant_id, &p).await?;
    Ok(Json(policy::load(&app.db, caller.tenant_id).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PhoneBody {
    phone: String,
}

pub(crate) fn parse_phone(field: &str, raw: &str) -> Result<Phone, ApiError> {
    Phone::parse(raw).map_err(|e| ApiError::bad_request(format!("{field}: {e}")))
}

/// `POST /api/v1/unsubscribes`: a number asked (by phone, in a store) not to get SMS.
pub(crate) async fn unsubscribe(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    b: Result<Json<PhoneBody>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    require_write(&caller)?;
    let p = parse_phone("phone", &json_body(b)?.phone)?;
    policy::unsubscribe_number(
        &app.db,
        &app.cipher,
        caller.tenant_id,
        p.as_str(),
        "api",
        now_ms(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
