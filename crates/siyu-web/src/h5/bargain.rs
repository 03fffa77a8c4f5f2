//! A customer starting, viewing and buying a bargain.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::AppState;
use crate::api::convert::bargain::buy;
use crate::api::{ApiError, path_id};
use crate::h5::CustomerCaller;
use siyu::convert::bargain;
use siyu::platform::clock::now_ms;

/// `GET /h5/v1/bargain-items/{id}`: what the bargain is before it is started: the product, its
/// price, the floor friends can cut it to and how many cuts that takes, and what is left.
pub(crate) async fn offer(
    State(app): State<AppState>,
    CustomerCaller(c): CustomerCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = path_id("bargain item", &id)?;
    let it = bargain::item(&app.db, c.tenant_id, id).await?;
    Ok(Json(json!({
        "item": {"id": it.id, "title": it.title, "price": it.price, "floor_price": it.floor_price,
                 "assists": it.assists, "bargain_hours": it.bargain_hours,
                 "left": (it.stock - it.sold).max(0), "starts_at": it.starts_at, "ends_at": it.ends_at},
        "now": now_ms(),
    }))
    .into_response())
}

pub(crate) async fn start_bargain(
    State(app): State<AppState>,
    CustomerCaller(c): CustomerCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = path_id("bargain item", &id)?;
    let b = bargain::start(&app.db, c.tenant_id, id, c.customer_id, now_ms()).await?;
    Ok((StatusCode::CREATED, Json(b)).into_response())
}

/// The bargain's share page: anyone holding a token of the tenant may look (helpers do). They
/// see the item, the price reached and the cuts; only the owner sees their order, and no one
/// sees who the owner or the helpers are.
pub(crate) async fn bargain_view(
    State(app): State<AppState>,
    CustomerCaller(c): CustomerCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = path_id("bargain", &id)?;
    let b = bargain::get(&app.db, c.tenant_id, id).await?;
    let item = bargain::item(&app.db, c.tenant_id, b.item_id).await?;
    let assists = bargain::assists(&app.db, c.tenant_id, id).await?;
    let mine = b.customer_id == c.customer_id;
    let cuts: Vec<_> = assists
        .iter()
        .map(|a| json!({"cut": a.cut, "assisted_at": a.assisted_at, "by_me": a.helper_id == c.customer_id}))
        .collect();
    Ok(Json(json!({
        "bargain": {"id": b.id, "item_id": b.item_id, "price_now": b.price_now, "assists": b.assists,
                    "status": b.status, "created_at": b.created_at, "expires_at": b.expires_at,
                    "mine": mine, "order_no": if mine { b.order_no.clone() } else { None }},
        "item": item,
        "assists": cuts,
        "now": now_ms(),
    }))
    .into_response())
}

pub(crate) async fn buy_bargain(
    State(app): State<AppState>,
    CustomerCaller(c): CustomerCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    // No provider, no purchase: turned away before anything is held or charged.
    app.payments.require()?;
    buy(
        &app,
        c.tenant_id,
        path_id("bargain", &id)?,
        Some(c.customer_id),
    )
    .await
}
