//! `POST /api/v1/customer-tokens`: the brand's backend signs in one of its customers for the H5
//! pages; `DELETE /api/v1/customers/{id}/sessions` signs them out everywhere
//! (`platform::customer_sessions`).

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use siyu::know::CustomerId;

use crate::AppState;
use crate::api::{
    ApiCaller, ApiError, actor, customer_id, json_body, live_customer, require_write,
};
use siyu::platform::clock::now_ms;
use siyu::platform::customer_sessions;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TokenBody {
    customer_id: CustomerId,
    /// How long the token is good for; a day unless said.
    #[serde(default = "day_minutes")]
    ttl_minutes: i64,
}

pub(crate) fn day_minutes() -> i64 {
    1_440
}

const LONGEST_MINUTES: i64 = customer_sessions::LONGEST_MS / 60_000;

/// `POST /api/v1/customer-tokens`: the brand's mini-program or message sender, which knows the
/// customer, mints a token for the customer's own pages.
pub(crate) async fn customer_token(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    b: Result<Json<TokenBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    let b = json_body(b)?;
    if !(1..=LONGEST_MINUTES).contains(&b.ttl_minutes) {
        return Err(ApiError::bad_request(format!(
            "ttl_minutes: must be between 1 and {LONGEST_MINUTES} (7 days)"
        )));
    }
    let customer = live_customer(&app, caller.tenant_id, b.customer_id).await?;
    let now = now_ms();
    let expires_at = now + b.ttl_minutes * 60_000;
    let token = app
        .customer_sessions
        .issue(caller.tenant_id, customer, expires_at, now);
    Ok((
        StatusCode::CREATED,
        Json(json!({"customer_id": customer, "token": token, "expires_at": expires_at})),
    )
        .into_response())
}

/// `DELETE /api/v1/customers/{id}/sessions`: every token the customer holds stops working (at
/// once on this server, within `customer_sessions::REFRESH_MS` on the others).
pub(crate) async fn revoke_sessions(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    require_write(&caller)?;
    let survivor = customer_id(&app, caller.tenant_id, &id).await?;
    let now = now_ms();
    // Tokens issued before a merge still name the merged-away id: sign out both.
    let given: CustomerId = id.parse().unwrap_or(survivor);
    let both: std::collections::BTreeSet<CustomerId> = [survivor, given].into();
    for customer in both {
        app.customer_sessions
            .revoke(&app.db, caller.tenant_id, customer, now, &actor(&caller))
            .await?;
    }
    Ok(StatusCode::NO_CONTENT)
}
