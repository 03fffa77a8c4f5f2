//! Gifts for points (`convert::gifts`) for the brand's systems.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use siyu::know::CustomerId;
use siyu::platform::TenantId;

use crate::AppState;
use crate::api::{
    ApiCaller, ApiError, CustomerBody, json_body, live_customer, path_id, require_write,
};
use siyu::convert::gifts::{self, GiftInput};
use siyu::platform::clock::now_ms;

pub(crate) async fn create_gift(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    b: Result<Json<GiftInput>, JsonRejection>,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    let g = gifts::create(&app.db, caller.tenant_id, &json_body(b)?, now_ms()).await?;
    Ok((StatusCode::CREATED, Json(g)).into_response())
}

pub(crate) async fn list_gifts(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
) -> Result<Response, ApiError> {
    Ok(Json(json!({"gifts": gifts::list(&app.db, caller.tenant_id).await?})).into_response())
}

pub(crate) async fn redeem(
    app: &AppState,
    tenant: TenantId,
    gift: i64,
    customer: CustomerId,
) -> Result<Response, ApiError> {
    let r = gifts::redeem(&app.db, tenant, gift, customer, now_ms()).await?;
    let balance = siyu::convert::points::balance(&app.db, tenant, customer).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"redemption": r, "balance": balance})),
    )
        .into_response())
}

pub(crate) async fn redeem_gift(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
    b: Result<Json<CustomerBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    let id = path_id("gift", &id)?;
    let customer = live_customer(&app, caller.tenant_id, json_body(b)?.customer_id).await?;
    redeem(&app, caller.tenant_id, id, customer).await
}
