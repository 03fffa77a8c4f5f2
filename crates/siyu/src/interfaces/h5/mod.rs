//! `/h5`: the customer's pages, and `/h5/v1`, the JSON they call with the customer's token.
//! Every route here faces the internet.

pub mod bargain;
pub mod cards;
pub mod coupons;
pub mod flash;
pub mod gifts;
pub mod group_buy;
pub mod links;

use askama::Template;
use axum::extract::{FromRequestParts, Path};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{Html, IntoResponse, Response};

use crate::interfaces::AppState;
use crate::interfaces::api::ApiError;
use crate::platform::clock::now_ms;
use crate::platform::crypto::CustomerClaim;

/// The customer a request from their own page speaks for: a customer token in
/// `X-Siyu-Customer`, or in `?t=` for links opened from a message.
pub struct CustomerCaller(pub CustomerClaim);

impl FromRequestParts<AppState> for CustomerCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let from_header = parts
            .headers
            .get("x-siyu-customer")
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned);
        let token = from_header.or_else(|| {
            parts.uri.query().and_then(|q| {
                q.split('&')
                    .find_map(|kv| kv.strip_prefix("t="))
                    .map(str::to_owned)
            })
        });
        let Some(token) = token else {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "missing customer token (X-Siyu-Customer header or ?t=)",
            ));
        };
        state
            .cipher
            .verify_customer_token(token.trim(), now_ms())
            .map(CustomerCaller)
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "customer token is invalid or expired; open the link again",
                )
            })
    }
}

#[derive(Template)]
#[template(path = "h5/activity.html")]
pub(crate) struct ActivityPage {
    kind: &'static str,
    title: &'static str,
    id: i64,
}

pub(crate) async fn page(
    kind: &'static str,
    title: &'static str,
    Path(id): Path<String>,
) -> Response {
    match id.parse::<i64>() {
        Ok(id) => render(kind, title, id),
        Err(_) => (StatusCode::NOT_FOUND, "no such page").into_response(),
    }
}

pub(crate) fn render(kind: &'static str, title: &'static str, id: i64) -> Response {
    match (ActivityPage { kind, title, id }).render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "rendering an H5 page failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}
