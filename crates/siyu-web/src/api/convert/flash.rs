//! Flash sales (`convert::flash`) for the brand's systems: create, attempt, pay, cancel.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use siyu::know::CustomerId;
use siyu::platform::TenantId;

use crate::AppState;
use crate::api::{ApiCaller, ApiError, json_body, live_customer, path_id, require_write};
use siyu::convert::flash::{FlashOrderStatus, SaleInput};
use siyu::platform::clock::now_ms;

pub(crate) async fn create_sale(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    b: Result<Json<SaleInput>, JsonRejection>,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    let s = json_body(b)?;
    let sale = app.flash.create(caller.tenant_id, &s, now_ms()).await?;
    Ok((StatusCode::CREATED, Json(sale)).into_response())
}

pub(crate) async fn sale_view(
    app: &AppState,
    tenant: TenantId,
    id: i64,
) -> Result<serde_json::Value, ApiError> {
    let sale = app.flash.get(tenant, id).await?;
    let left = app.flash.left(tenant, id).await?;
    let counts = app.flash.counts(tenant, id).await?;
    let by_status: serde_json::Map<String, serde_json::Value> = counts
        .into_iter()
        .map(|(s, n, units)| (s.to_string(), json!({"orders": n, "units": units})))
        .collect();
    Ok(json!({"sale": sale, "left": left, "orders": by_status}))
}

pub(crate) async fn list_sales(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
) -> Result<Response, ApiError> {
    let mut out = Vec::new();
    for s in app.flash.list(caller.tenant_id).await? {
        out.push(sale_view(&app, caller.tenant_id, s.id).await?);
    }
    Ok(Json(json!({"flash_sales": out})).into_response())
}

pub(crate) async fn sale(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = path_id("flash sale", &id)?;
    Ok(Json(sale_view(&app, caller.tenant_id, id).await?).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AttemptBody {
    customer_id: CustomerId,
    #[serde(default = "one")]
    quantity: i64,
}

pub(crate) fn one() -> i64 {
    1
}

/// `POST /api/v1/flash-sales/{id}/attempts`: a server that knows the customer attempts for them.
pub(crate) async fn attempt(
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
pub(crate) struct StatusQuery {
    status: Option<String>,
}

pub(crate) async fn sale_orders(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
    Query(q): Query<StatusQuery>,
) -> Result<Response, ApiError> {
    let id = path_id("flash sale", &id)?;
    let status = q
        .status
        .as_deref()
        .map(str::parse::<FlashOrderStatus>)
        .transpose()
        .map_err(|e| ApiError::bad_request(format!("status: {e}")))?;
    let orders = app.flash.orders(caller.tenant_id, id, status).await?;
    Ok(Json(json!({"orders": orders})).into_response())
}

pub(crate) async fn pay_order(
    app: &AppState,
    tenant: TenantId,
    id: i64,
    customer: Option<CustomerId>,
) -> Result<Response, ApiError> {
    let o = app
        .flash
        .pay(&app.payments, tenant, id, customer, now_ms())
        .await?;
    if let Some(no) = &o.order_no {
        siyu::workflows::activity_paid(
            &app.db,
            &app.audiences,
            tenant,
            o.customer_id,
            no,
            now_ms(),
        )
        .await;
    }
    Ok(Json(o).into_response())
}

pub(crate) async fn pay(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    pay_order(&app, caller.tenant_id, path_id("flash order", &id)?, None).await
}

pub(crate) async fn cancel(
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
