//! Bargains (砍价, `convert::bargain`) for the brand's systems.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use siyu::know::CustomerId;
use siyu::platform::TenantId;

use crate::AppState;
use crate::api::{
    ApiCaller, ApiError, CustomerBody, json_body, live_customer, path_id, require_write,
};
use siyu::convert::bargain::{self, ItemInput};
use siyu::know::audience::Change as IndexChange;
use siyu::know::identity::IdentityInput;
use siyu::platform::clock::now_ms;

pub(crate) async fn create_item(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    b: Result<Json<ItemInput>, JsonRejection>,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    let i = bargain::create_item(&app.db, caller.tenant_id, &json_body(b)?, now_ms()).await?;
    Ok((StatusCode::CREATED, Json(i)).into_response())
}

pub(crate) async fn list_items(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
) -> Result<Response, ApiError> {
    let items = bargain::items(&app.db, caller.tenant_id).await?;
    Ok(Json(json!({"bargain_items": items})).into_response())
}

pub(crate) async fn start_bargain(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
    b: Result<Json<CustomerBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    let id = path_id("bargain item", &id)?;
    let customer = live_customer(&app, caller.tenant_id, json_body(b)?.customer_id).await?;
    let b = bargain::start(&app.db, caller.tenant_id, id, customer, now_ms()).await?;
    Ok((StatusCode::CREATED, Json(b)).into_response())
}

pub(crate) async fn bargain_answer(
    app: &AppState,
    tenant: TenantId,
    id: i64,
) -> Result<Response, ApiError> {
    let b = bargain::get(&app.db, tenant, id).await?;
    let item = bargain::item(&app.db, tenant, b.item_id).await?;
    let assists = bargain::assists(&app.db, tenant, id).await?;
    Ok(
        Json(json!({"bargain": b, "item": item, "assists": assists, "now": now_ms()}))
            .into_response(),
    )
}

pub(crate) async fn bargain_view(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    bargain_answer(&app, caller.tenant_id, path_id("bargain", &id)?).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AssistBody {
    /// The helper as the mini-program knows them after login: a unionid, an openid or a phone.
    identity: IdentityInput,
    #[serde(default)]
    name: Option<String>,
}

/// `POST /api/v1/bargains/{id}/assists`: a friend helps (and joins as a member).
pub(crate) async fn assist(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
    b: Result<Json<AssistBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    let id = path_id("bargain", &id)?;
    let b = json_body(b)?;
    let helper = b
        .identity
        .parse()
        .map_err(|e| ApiError::bad_request(format!("identity: {e}")))?;
    let out = bargain::assist(
        &app.db,
        &app.cipher,
        caller.tenant_id,
        id,
        helper,
        b.name,
        now_ms(),
    )
    .await?;
    if out.helper_joined {
        app.audiences
            .changed(
                caller.tenant_id,
                &[out.helper_id],
                IndexChange::Customers { orders: false },
            )
            .await
            .map_err(|e| anyhow::anyhow!(e))?;
    }
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

pub(crate) async fn buy(
    app: &AppState,
    tenant: TenantId,
    id: i64,
    customer: Option<CustomerId>,
) -> Result<Response, ApiError> {
    let b = bargain::buy(&app.db, &app.payments, tenant, id, customer, now_ms()).await?;
    if let Some(no) = &b.order_no {
        siyu::workflows::activity_paid(
            &app.db,
            &app.audiences,
            tenant,
            b.customer_id,
            no,
            now_ms(),
        )
        .await;
    }
    Ok(Json(b).into_response())
}

pub(crate) async fn buy_bargain(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    buy(&app, caller.tenant_id, path_id("bargain", &id)?, None).await
}
