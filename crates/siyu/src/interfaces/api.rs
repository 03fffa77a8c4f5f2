//! `/api/v1`: ingestion and the customer 360, authenticated by `Authorization: Bearer <key>`.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value as Json_, json};

use super::AppState;
use crate::know::customers::{self, customer_360, find_by_identity, list_customers};
use crate::know::events::{EventInput, ItemError, MAX_BATCH};
use crate::know::identity::Identity;
use crate::know::orders::{OrderInput, dedupe_orders, key_identities, owners_of, store_orders};
use crate::know::phone::Phone;
use crate::platform::access::{Caller, caller_by_api_key};
use crate::platform::clock::now_ms;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/events", post(post_events))
        .route("/api/v1/orders", post(post_orders))
        .route("/api/v1/customers", get(get_customers))
        .route("/api/v1/customers/{id}", get(get_customer))
}

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

macro_rules! internal_errors {
    ($($t:ty),*) => {$(
        impl From<$t> for ApiError {
            fn from(e: $t) -> Self {
                ApiError::internal(e)
            }
        }
    )*};
}
internal_errors!(
    crate::platform::db::DbError,
    crate::platform::access::AccessError,
    crate::know::ingest::IngestError,
    anyhow::Error
);

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

/// A JSON body, or a 400 that says what is wrong with it.
pub(crate) fn json_body<T>(
    b: Result<Json<T>, axum::extract::rejection::JsonRejection>,
) -> Result<T, ApiError> {
    b.map(|Json(v)| v)
        .map_err(|e| ApiError::bad_request(e.body_text()))
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

/// Parses `{"<field>": [ … ]}` into its items, so that one malformed item does not sink the batch.
fn batch_items<'a>(body: &'a Bytes, field: &str) -> Result<Vec<&'a RawValue>, ApiError> {
    // Items stay raw until each is read on its own: no intermediate JSON tree, and one bad
    // item cannot sink the batch.
    let shape = || ApiError::bad_request(format!("body must be {{\"{field}\": [ … ]}}"));
    let top: std::collections::HashMap<String, &RawValue> =
        serde_json::from_slice(body).map_err(|e| {
            if e.is_data() {
                shape()
            } else {
                ApiError::bad_request(format!("body is not JSON: {e}"))
            }
        })?;
    let raw = top.get(field).ok_or_else(shape)?;
    let items: Vec<&RawValue> = serde_json::from_str(raw.get()).map_err(|_| shape())?;
    if items.is_empty() {
        return Err(ApiError::bad_request(format!("{field} is empty")));
    }
    if items.len() > MAX_BATCH {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "batch_too_large",
            format!("{} {field} in one batch; at most {MAX_BATCH}", items.len()),
        ));
    }
    Ok(items)
}

fn rejected_json(rejected: &[(usize, ItemError)]) -> Vec<Json_> {
    rejected
        .iter()
        .map(|(i, e)| json!({"index": i, "field": e.field, "reason": e.reason}))
        .collect()
}

/// Checks every item; returns the good ones with their index and the rejections.
fn check_items<T, U>(
    items: Vec<&RawValue>,
    check: impl Fn(T) -> Result<U, ItemError>,
) -> (Vec<U>, Vec<(usize, ItemError)>)
where
    T: serde::de::DeserializeOwned,
{
    let mut good = Vec::with_capacity(items.len());
    let mut bad = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        match serde_json::from_str::<T>(item.get()) {
            Ok(v) => match check(v) {
                Ok(u) => good.push(u),
                Err(e) => bad.push((i, e)),
            },
            Err(e) => bad.push((
                i,
                ItemError {
                    field: String::new(),
                    reason: e.to_string(),
                },
            )),
        }
    }
    (good, bad)
}

/// `POST /api/v1/events`: 202 once the valid events are committed; invalid ones listed by index.
async fn post_events(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    body: Bytes,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    let now = now_ms();
    let (events, rejected) =
        check_items(batch_items(&body, "events")?, |e: EventInput| e.check(now));
    if events.is_empty() {
        return Ok((
            StatusCode::BAD_REQUEST,
            Json(json!({"accepted": 0, "duplicates": 0, "rejected": rejected_json(&rejected)})),
        )
            .into_response());
    }
    let out = app.events.write(caller.tenant_id, events).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"accepted": out.stored, "duplicates": out.duplicates, "rejected": rejected_json(&rejected)})),
    )
        .into_response())
}

/// `POST /api/v1/orders`: new orders are imported, known ones updated (status, refund, lines).
async fn post_orders(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    body: Bytes,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    let now = now_ms();
    let (orders, rejected) =
        check_items(batch_items(&body, "orders")?, |o: OrderInput| o.check(now));
    if orders.is_empty() {
        return Ok((
            StatusCode::BAD_REQUEST,
            Json(json!({"imported": 0, "updated": 0, "rejected": rejected_json(&rejected)})),
        )
            .into_response());
    }
    let orders = dedupe_orders(orders);
    let keyed = key_identities(&app.cipher, &orders);
    // Owners before and after: an order that moves to another customer changes both.
    let mut owners = owners_of(&app.db, caller.tenant_id, &orders).await?;
    let out = store_orders(&app.db, caller.tenant_id, "api", &orders, &keyed, now).await?;
    owners.extend(owners_of(&app.db, caller.tenant_id, &orders).await?);
    let keys: Vec<(String, String)> = orders
        .iter()
        .map(|o| (o.channel.clone(), o.order_no.clone()))
        .collect();
    crate::workflows::orders_stored(
        &app.db,
        &app.audiences,
        crate::workflows::OrdersStored {
            tenant: caller.tenant_id,
            orders: &keys,
            buyers: &owners,
            now,
        },
    )
    .await
    .map_err(ApiError::internal)?;
    Ok((
        StatusCode::OK,
        Json(json!({"imported": out.imported, "updated": out.updated, "rejected": rejected_json(&rejected)})),
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
struct CustomerQuery {
    phone: Option<String>,
    identity: Option<String>,
    #[serde(default)]
    page: Option<i64>,
    #[serde(default)]
    per_page: Option<i64>,
    #[serde(default)]
    unmask: Option<bool>,
}

/// Whether full phone numbers are shown: only when asked for, and only to roles that may.
pub(crate) fn unmask(caller: &Caller, asked: Option<bool>) -> Result<bool, ApiError> {
    match asked {
        Some(true) if caller.role.may_see_phone() => Ok(true),
        Some(true) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "role {} may not see full phone numbers",
                caller.role.as_str()
            ),
        )),
        _ => Ok(false),
    }
}

/// `GET /api/v1/customers`: a page of customers, or the one holding `?phone=` or `?identity=kind:value`.
async fn get_customers(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Query(q): Query<CustomerQuery>,
) -> Result<Response, ApiError> {
    let unmask = unmask(&caller, q.unmask)?;
    let identity = match (&q.phone, &q.identity) {
        (Some(p), _) => Some(Identity::Phone(
            Phone::parse(p).map_err(|e| ApiError::bad_request(format!("phone: {e}")))?,
        )),
        (None, Some(i)) => Some(
            Identity::parse_shorthand(i)
                .map_err(|e| ApiError::bad_request(format!("identity: {e}")))?,
        ),
        (None, None) => None,
    };
    if let Some(identity) = identity {
        let found = find_by_identity(&app.db, &app.cipher, caller.tenant_id, &identity).await?;
        let c = match found {
            Some(id) => customer_360(&app.db, &app.cipher, caller.tenant_id, id, unmask).await?,
            None => None,
        };
        return match c {
            Some(c) => Ok(Json(c).into_response()),
            None => Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "no customer has that identity",
            )),
        };
    }
    let page = list_customers(
        &app.db,
        &app.cipher,
        caller.tenant_id,
        q.page.unwrap_or(1),
        q.per_page.unwrap_or(50),
        None,
        unmask,
    )
    .await?;
    Ok(Json(page).into_response())
}

#[derive(Debug, Deserialize)]
struct UnmaskQuery {
    #[serde(default)]
    unmask: Option<bool>,
}

/// `GET /api/v1/customers/{id}`: the customer 360. A merged id answers with the survivor.
async fn get_customer(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
    Query(q): Query<UnmaskQuery>,
) -> Result<Response, ApiError> {
    let unmask = unmask(&caller, q.unmask)?;
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::bad_request(format!("customer id {id:?} is not a number")))?;
    match customers::customer_360(&app.db, &app.cipher, caller.tenant_id, id, unmask).await? {
        Some(c) => Ok(Json(c).into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no customer {id}"),
        )),
    }
}
