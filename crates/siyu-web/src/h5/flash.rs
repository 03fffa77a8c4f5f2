//! A customer's flash-sale attempt, payment and cancel.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::CustomerCaller;
use crate::AppState;
use crate::api::convert::flash::{one, pay_order};
use crate::api::{ApiError, json_body, path_id};
use siyu::platform::clock::now_ms;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct H5AttemptBody {
    #[serde(default = "one")]
    quantity: i64,
}

/// `GET /h5/v1/flash-sales/{id}`: what the customer's page shows, with the server's clock for
/// the countdown and the customer's own reservations.
pub(crate) async fn sale(
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
pub(crate) async fn attempt(
    State(app): State<AppState>,
    CustomerCaller(c): CustomerCaller,
    Path(id): Path<String>,
    b: Result<Json<H5AttemptBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    // No provider, no purchase: turned away before anything is held or charged.
    app.payments.require()?;
    let id = path_id("flash sale", &id)?;
    let b = json_body(b)?;
    let o = app
        .flash
        .attempt(c.tenant_id, id, c.customer_id, b.quantity, now_ms())
        .await?;
    Ok((StatusCode::CREATED, Json(o)).into_response())
}

pub(crate) async fn pay(
    State(app): State<AppState>,
    CustomerCaller(c): CustomerCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    // No provider, no purchase: turned away before anything is held or charged.
    app.payments.require()?;
    pay_order(
        &app,
        c.tenant_id,
        path_id("flash order", &id)?,
        Some(c.customer_id),
    )
    .await
}

pub(crate) async fn cancel(
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
