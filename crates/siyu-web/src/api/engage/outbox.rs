//! Single messages and the outbox (`engage::outbox`).

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use siyu::know::CustomerId;

use super::policy::parse_phone;
use crate::AppState;
use crate::api::{ApiCaller, ApiError, json_body, require_write};
use siyu::engage::outbox::{self, NewMessage};
use siyu::engage::policy::Purpose;
use siyu::platform::clock::now_ms;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MessageBody {
    phone: String,
    content: String,
    /// `marketing` (the default) or `service`; `verification` is the one-time-code flow's own.
    #[serde(default = "marketing")]
    purpose: Purpose,
    customer_id: Option<CustomerId>,
    template_code: Option<String>,
    #[serde(default)]
    template_params: Vec<(String, String)>,
    /// The caller's own key for this message: the same key is queued once.
    dedupe_key: Option<String>,
    not_before: Option<i64>,
}

fn marketing() -> Purpose {
    Purpose::Marketing
}

/// `POST /api/v1/messages`: queue one SMS through the outbox and its policy.
pub(crate) async fn send_message(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    b: Result<Json<MessageBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    let b = json_body(b)?;
    let phone = parse_phone("phone", &b.phone)?;
    let content = b.content.trim().to_string();
    if content.is_empty() || content.chars().count() > 500 {
        return Err(ApiError::bad_request("content: must be 1–500 characters"));
    }
    // The purposes that pass the contact policy's unsubscribes, caps and quiet hours are not the
    // caller's to choose freely: verification belongs to one-time codes, and a service notice
    // goes out under an approved template and is logged.
    match b.purpose {
        Purpose::Marketing => {}
        Purpose::Verification => {
            return Err(ApiError::bad_request(
                "purpose: verification messages are sent only by the server's one-time codes; use marketing or service",
            ));
        }
        Purpose::Service => match &b.template_code {
            Some(t) if !t.trim().is_empty() => tracing::info!(
                tenant = %caller.tenant_id,
                actor = %crate::api::actor(&caller),
                template = %t,
                "service message through the API (passes unsubscribes, caps and quiet hours)"
            ),
            _ => {
                return Err(ApiError::bad_request(
                    "template_code: a service message needs the provider's approved template",
                ));
            }
        },
    }
    let now = now_ms();
    let key = match b.dedupe_key {
        Some(k) if !k.is_empty() && k.len() <= 128 => format!("api:{k}"),
        Some(_) => {
            return Err(ApiError::bad_request(
                "dedupe_key: must be 1–128 characters",
            ));
        }
        None => format!("api:{}", siyu::platform::crypto::random_token(16)),
    };
    // A customer named must be the tenant's own: the weekly cap counts per customer.
    let customer_id = match b.customer_id {
        Some(id) => Some(crate::api::live_customer(&app, caller.tenant_id, id).await?),
        None => None,
    };
    let written = outbox::enqueue(
        &app.db,
        &[NewMessage {
            tenant_id: caller.tenant_id,
            purpose: b.purpose,
            customer_id,
            address: outbox::Address::of_phone(
                &app.cipher,
                &app.cipher.lookup(caller.tenant_id),
                phone.as_str(),
            ),
            content,
            template_code: b.template_code,
            template_params: b.template_params,
            dedupe_key: key.clone(),
            campaign_id: None,
            variant: None,
            not_before: b.not_before.unwrap_or(now),
        }],
        now,
    )
    .await?;
    app.outbox.notify();
    let status = if written == 1 {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(json!({"queued": written == 1, "dedupe_key": key})),
    )
        .into_response())
}

/// `GET /api/v1/outbox`: the tenant's messages by status.
pub(crate) async fn outbox_counts(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
) -> Result<Json<serde_json::Value>, ApiError> {
    let rows = outbox::counts(&app.db, caller.tenant_id).await?;
    let map: serde_json::Map<String, serde_json::Value> =
        rows.into_iter().map(|(s, n)| (s, json!(n))).collect();
    Ok(Json(
        json!({"provider": app.outbox.provider_name(), "by_status": map}),
    ))
}

/// `POST /api/v1/outbox/dispatch`: send what is due now instead of waiting for the next tick.
pub(crate) async fn dispatch(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
) -> Result<Json<serde_json::Value>, ApiError> {
    require_write(&caller)?;
    let r = app.outbox.drain(now_ms()).await?;
    Ok(Json(json!(r)))
}
