//! `POST /api/v1/customer-tokens`: the brand's backend signs in one of its customers for the H5
//! pages (`platform::access`).

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::interfaces::AppState;
use crate::interfaces::api::{ApiCaller, ApiError, json_body, live_customer, require_write};
use crate::platform::clock::now_ms;
use crate::platform::crypto::CustomerClaim;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TokenBody {
    customer_id: i64,
    /// How long the token is good for; a day unless said.
    #[serde(default = "day_minutes")]
    ttl_minutes: i64,
}

pub(crate) fn day_minutes() -> i64 {
    1_440
}

/// `POST /api/v1/customer-tokens`: the brand's mini-program or message sender, which knows the
/// customer, mints a token for the customer's own pages.
pub(crate) async fn customer_token(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    b: Result<Json<TokenBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    let b = json_body(b)?;
    if !(1..=43_200).contains(&b.ttl_minutes) {
        return Err(ApiError::bad_request(
            "ttl_minutes: must be between 1 and 43200 (30 days)",
        ));
    }
    let customer = live_customer(&app, caller.tenant_id, b.customer_id).await?;
    let expires_at = now_ms() + b.ttl_minutes * 60_000;
    let token = app.cipher.customer_token(CustomerClaim {
        tenant_id: caller.tenant_id,
        customer_id: customer,
        expires_at,
    });
    Ok((
        StatusCode::CREATED,
        Json(json!({"customer_id": customer, "token": token, "expires_at": expires_at})),
    )
        .into_response())
}
