//! `/api/v1`: JSON for the brand's systems and developers, authenticated by `Authorization:
//! Bearer <key>`. One module per capability, named as the domain's; the error every handler
//! answers with, and the one conversion from a domain refusal to HTTP, live here.

use siyu::know::CustomerId;
use siyu::platform::TenantId;
pub mod access;
pub mod acquire;
pub mod channels;
pub mod connect;
pub mod convert;
pub mod customer_tokens;
pub mod engage;
pub mod know;
pub mod measure;
pub mod openapi;

use axum::Json;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::AppState;
use siyu::know::customers::surviving_id;
use siyu::platform::access::{Caller, caller_by_api_key};
use siyu::platform::refusal::{Refusal, Refuse};

/// An API error as JSON: `{"error": {"code": …, "message": …}}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
    /// For a console page that shows the refusal in its own words and status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"error": {"code": self.code, "message": self.message}})),
        )
            .into_response()
    }
}

impl ApiError {
    /// A failure the caller cannot fix: logged in full, answered without detail.
    pub fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "request failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; see the server log",
        )
    }
}

/// The one conversion from a domain refusal to HTTP: every capability's error arrives here.
impl<E: Refuse> From<E> for ApiError {
    fn from(e: E) -> Self {
        let (status, code) = match e.refusal() {
            Refusal::Internal => return ApiError::internal(e),
            Refusal::Invalid => (StatusCode::BAD_REQUEST, "bad_request"),
            Refusal::NotFound(code) => (StatusCode::NOT_FOUND, code),
            Refusal::Conflict(code) => (StatusCode::CONFLICT, code),
            Refusal::Rejected(code) => (StatusCode::UNPROCESSABLE_ENTITY, code),
            Refusal::TooSoon(code) => (StatusCode::TOO_MANY_REQUESTS, code),
            Refusal::PaymentDeclined => (StatusCode::PAYMENT_REQUIRED, "payment_declined"),
            Refusal::Unavailable(code) => {
                tracing::warn!(error = %e, "request refused: a dependency is unavailable");
                (StatusCode::SERVICE_UNAVAILABLE, code)
            }
            Refusal::Upstream(code) => (StatusCode::BAD_GATEWAY, code),
        };
        ApiError::new(status, code, e.told())
    }
}

/// The caller of an API request, from its bearer key.
pub struct ApiCaller(pub Caller);

impl FromRequestParts<AppState> for ApiCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let unauthorized = |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", m);
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| unauthorized("missing Authorization: Bearer <api key>"))?;
        let key = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| unauthorized("Authorization must be Bearer <api key>"))?;
        match caller_by_api_key(&state.db, key).await? {
            Some(c) => Ok(ApiCaller(c)),
            None => Err(unauthorized("unknown or revoked API key")),
        }
    }
}

/// A JSON body, or a 400 that says what is wrong with it (413 when it is over the route's
/// size limit).
pub(crate) fn json_body<T>(
    b: Result<Json<T>, axum::extract::rejection::JsonRejection>,
) -> Result<T, ApiError> {
    b.map(|Json(v)| v).map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", e.body_text())
        }
        _ => ApiError::bad_request(e.body_text()),
    })
}

pub(crate) fn require_write(c: &Caller) -> Result<(), ApiError> {
    if c.role.may_write() {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("role {} may not write", c.role.as_str()),
        ))
    }
}

/// Access itself (keys, the audit log) is for admins only.
pub(crate) fn require_admin(c: &Caller) -> Result<(), ApiError> {
    if c.role == siyu::platform::access::Role::Admin {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("role {} may not manage access", c.role.as_str()),
        ))
    }
}

pub(crate) fn parse_id(what: &str, s: &str) -> Result<i64, ApiError> {
    s.parse()
        .map_err(|_| ApiError::bad_request(format!("{what} {s:?} is not a number")))
}

/// Who did it, for history and audit: `api:<key name>` or `console:<user>`.
pub fn actor(c: &Caller) -> String {
    match c.user_id {
        Some(_) => format!("console:{}", c.name),
        None => format!("api:{}", c.name),
    }
}

/// A CSV download sent as it is made (`stream` begins with its own BOM).
pub(crate) fn csv_stream_response<S>(name: &str, stream: S) -> Response
where
    S: futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static,
{
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}.csv\""),
            ),
        ],
        axum::body::Body::from_stream(stream),
    )
        .into_response()
}

/// A CSV download; the API and the console export with it.
pub(crate) fn csv_response(name: &str, body: Vec<u8>) -> Response {
    // A BOM so that Excel opens UTF-8 Chinese correctly.
    let mut out = Vec::with_capacity(body.len() + 3);
    out.extend_from_slice(b"\xEF\xBB\xBF");
    out.extend(body);
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}.csv\""),
            ),
        ],
        out,
    )
        .into_response()
}

pub(crate) fn path_id(what: &str, raw: &str) -> Result<i64, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::bad_request(format!("{what} id {raw:?} is not a number")))
}

pub(crate) async fn live_customer(
    app: &AppState,
    tenant: TenantId,
    id: CustomerId,
) -> Result<CustomerId, ApiError> {
    surviving_id(&app.db, tenant, id).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no customer {id}"),
        )
    })
}

pub(crate) async fn customer_id(
    app: &AppState,
    tenant: TenantId,
    raw: &str,
) -> Result<CustomerId, ApiError> {
    let id: CustomerId = raw
        .parse()
        .map_err(|_| ApiError::bad_request(format!("customer id {raw:?} is not a number")))?;
    surviving_id(&app.db, tenant, id).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no customer {id}"),
        )
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CustomerBody {
    customer_id: CustomerId,
}
