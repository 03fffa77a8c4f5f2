//! `/api/v1` for activities (flash sales, customer tokens) and `/h5/v1`, where a customer's own
//! page acts for them with a customer token.

use axum::Json;
use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::api::{ApiCaller, ApiError, json_body, require_write};
use crate::convert::flash::{FlashError, SaleInput};
use crate::convert::payments::PaymentError;
use crate::know::customers::surviving_id;
use crate::platform::clock::now_ms;
use crate::platform::crypto::CustomerClaim;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/customer-tokens", post(customer_token))
        .route("/api/v1/flash-sales", get(list_sales).post(create_sale))
        .route("/api/v1/flash-sales/{id}", get(sale))
        .route("/api/v1/flash-sales/{id}/attempts", post(attempt))
        .route("/api/v1/flash-sales/{id}/orders", get(sale_orders))
        .route("/api/v1/flash-orders/{id}/pay", post(pay))
        .route("/api/v1/flash-orders/{id}/cancel", post(cancel))
        .route("/h5/v1/flash-sales/{id}", get(h5_sale))
        .route("/h5/v1/flash-sales/{id}/attempts", post(h5_attempt))
        .route("/h5/v1/flash-orders/{id}/pay", post(h5_pay))
        .route("/h5/v1/flash-orders/{id}/cancel", post(h5_cancel))
}

impl From<FlashError> for ApiError {
    fn from(e: FlashError) -> Self {
        let code = e.code();
        match e {
            FlashError::Invalid { .. } => ApiError::bad_request(e.to_string()),
            FlashError::NoSale(_) | FlashError::NoOrder(_) => {
                ApiError::new(StatusCode::NOT_FOUND, code, e.to_string())
            }
            FlashError::NotStarted
            | FlashError::Ended
            | FlashError::SoldOut
            | FlashError::LimitReached(_)
            | FlashError::Refused(_) => ApiError::new(StatusCode::CONFLICT, code, e.to_string()),
            FlashError::Store(_) => {
                tracing::error!(error = %e, "flash reservation not stored");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    code,
                    "the reservation could not be stored; nothing was reserved, try again",
                )
            }
            FlashError::Payment(p) => p.into(),
            FlashError::Db(d) => d.into(),
        }
    }
}

impl From<PaymentError> for ApiError {
    fn from(e: PaymentError) -> Self {
        match e {
            PaymentError::Declined(_) => ApiError::new(
                StatusCode::PAYMENT_REQUIRED,
                "payment_declined",
                e.to_string(),
            ),
            PaymentError::Unavailable(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "payment_unavailable",
                e.to_string(),
            ),
            PaymentError::NotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", e.to_string())
            }
            PaymentError::Db(d) => d.into(),
        }
    }
}

pub(crate) fn path_id(what: &str, raw: &str) -> Result<i64, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::bad_request(format!("{what} id {raw:?} is not a number")))
}

pub(crate) async fn live_customer(app: &AppState, tenant: i64, id: i64) -> Result<i64, ApiError> {
    surviving_id(&app.db, tenant, id).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no customer {id}"),
        )
    })
}

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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenBody {
    customer_id: i64,
    /// How long the token is good for; a day unless said.
    #[serde(default = "day_minutes")]
    ttl_minutes: i64,
}

fn day_minutes() -> i64 {
    1_440
}

/// `POST /api/v1/customer-tokens`: the brand's mini-program or message sender, which knows the
/// customer, mints a token for the customer's own pages.
async fn customer_token(
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

async fn create_sale(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    b: Result<Json<SaleInput>, JsonRejection>,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    let s = json_body(b)?;
    let sale = app.flash.create(caller.tenant_id, &s, now_ms()).await?;
    Ok((StatusCode::CREATED, Json(sale)).into_response())
}

async fn sale_view(app: &AppState, tenant: i64, id: i64) -> Result<serde_json::Value, ApiError> {
    let sale = app.flash.get(tenant, id).await?;
    let left = app.flash.left(tenant, id).await?;
    let counts = app.flash.counts(tenant, id).await?;
    let by_status: serde_json::Map<String, serde_json::Value> = counts
        .into_iter()
        .map(|(s, n, units)| (s, json!({"orders": n, "units": units})))
        .collect();
    Ok(json!({"sale": sale, "left": left, "orders": by_status}))
}

async fn list_sales(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
) -> Result<Response, ApiError> {
    let mut out = Vec::new();
    for s in app.flash.list(caller.tenant_id).await? {
        out.push(sale_view(&app, caller.tenant_id, s.id).await?);
    }
    Ok(Json(json!({"flash_sales": out})).into_response())
}

async fn sale(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = path_id("flash sale", &id)?;
    Ok(Json(sale_view(&app, caller.tenant_id, id).await?).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AttemptBody {
    customer_id: i64,
    #[serde(default = "one")]
    quantity: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct H5AttemptBody {
    #[serde(default = "one")]
    quantity: i64,
}

fn one() -> i64 {
    1
}

/// `POST /api/v1/flash-sales/{id}/attempts`: a server that knows the customer attempts for them.
async fn attempt(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
    b: Result<Json<AttemptBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    let id = path_id("flash sale", &id)?;
    let b = json_body(b)?;
    let customer = live_customer(&app, caller.tenant_id, b.customer_id).await?;
    let o = app
        .flash
        .attempt(caller.tenant_id, id, customer, b.quantity, now_ms())
        .await?;
    Ok((StatusCode::CREATED, Json(o)).into_response())
}

#[derive(Debug, Deserialize)]
struct StatusQuery {
    status: Option<String>,
}

async fn sale_orders(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
    Query(q): Query<StatusQuery>,
) -> Result<Response, ApiError> {
    let id = path_id("flash sale", &id)?;
    let orders = app
        .flash
        .orders(caller.tenant_id, id, q.status.as_deref())
        .await?;
    Ok(Json(json!({"orders": orders})).into_response())
}

/// After an activity order is paid, everything that follows a stored order follows it
/// ([`crate::workflows::orders_stored`]). Best effort: the money and the order are already
/// committed, so a failure here is logged and repaired by the daily recompute and tier review,
/// never answered as a failed purchase.
pub(crate) async fn after_paid(app: &AppState, tenant: i64, customer: i64, order_no: &str) {
    let keys = [("mall".to_owned(), order_no.to_owned())];
    let stored = crate::workflows::OrdersStored {
        tenant,
        orders: &keys,
        buyers: &[customer],
        now: now_ms(),
    };
    if let Err(e) = crate::workflows::orders_stored(&app.db, &app.audiences, stored).await {
        tracing::error!(tenant, customer, order_no, error = %e, "points, tiers or the index did not follow a paid activity order");
    }
}

async fn pay_order(
    app: &AppState,
    tenant: i64,
    id: i64,
    customer: Option<i64>,
) -> Result<Response, ApiError> {
    let o = app
        .flash
        .pay(&app.payments, tenant, id, customer, now_ms())
        .await?;
    if let Some(no) = &o.order_no {
        after_paid(app, tenant, o.customer_id, no).await;
    }
    Ok(Json(o).into_response())
}

async fn pay(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    pay_order(&app, caller.tenant_id, path_id("flash order", &id)?, None).await
}

async fn cancel(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    let o = app
        .flash
        .cancel(caller.tenant_id, path_id("flash order", &id)?, None)
        .await?;
    Ok(Json(o).into_response())
}

/// `GET /h5/v1/flash-sales/{id}`: what the customer's page shows, with the server's clock for
/// the countdown and the customer's own reservations.
async fn h5_sale(
    State(app): State<AppState>,
    CustomerCaller(c): CustomerCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = path_id("flash sale", &id)?;
    let s = app.flash.get(c.tenant_id, id).await?;
    let left = app.flash.left(c.tenant_id, id).await?;
    let mine: Vec<_> = app
        .flash
        .customer_orders(c.tenant_id, id, c.customer_id)
        .await?;
    Ok(Json(json!({
        "sale": {"id": s.id, "name": s.name, "title": s.title, "price": s.price,
                 "original_price": s.original_price, "stock": s.stock, "per_customer": s.per_customer,
                 "starts_at": s.starts_at, "ends_at": s.ends_at, "pay_minutes": s.pay_minutes},
        "left": left,
        "now": now_ms(),
        "mine": mine,
    }))
    .into_response())
}

/// `POST /h5/v1/flash-sales/{id}/attempts`: the hot path of a flash sale.
async fn h5_attempt(
    State(app): State<AppState>,
    CustomerCaller(c): CustomerCaller,
    Path(id): Path<String>,
    b: Result<Json<H5AttemptBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let id = path_id("flash sale", &id)?;
    let b = json_body(b)?;
    let o = app
        .flash
        .attempt(c.tenant_id, id, c.customer_id, b.quantity, now_ms())
        .await?;
    Ok((StatusCode::CREATED, Json(o)).into_response())
}

async fn h5_pay(
    State(app): State<AppState>,
    CustomerCaller(c): CustomerCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    pay_order(
        &app,
        c.tenant_id,
        path_id("flash order", &id)?,
        Some(c.customer_id),
    )
    .await
}

async fn h5_cancel(
    State(app): State<AppState>,
    CustomerCaller(c): CustomerCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let o = app
        .flash
        .cancel(
            c.tenant_id,
            path_id("flash order", &id)?,
            Some(c.customer_id),
        )
        .await?;
    Ok(Json(o).into_response())
}
