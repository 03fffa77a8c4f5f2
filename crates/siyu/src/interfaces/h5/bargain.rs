//! A customer starting, viewing and buying a bargain.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::convert::bargain;
use crate::interfaces::AppState;
use crate::interfaces::api::convert::bargain::{bargain_answer, buy};
use crate::interfaces::api::{ApiError, path_id};
use crate::interfaces::h5::CustomerCaller;
use crate::platform::clock::now_ms;

pub(crate) async fn start_bargain(
    State(app): State<AppState>,
    CustomerCaller(c): CustomerCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = path_id("bargain item", &id)?;
    let b = bargain::start(&app.db, c.tenant_id, id, c.customer_id, now_ms()).await?;
    Ok((StatusCode::CREATED, Json(b)).into_response())
}

/// The bargain's share page: anyone holding a token of the tenant may look (helpers do).
pub(crate) async fn bargain_view(
    State(app): State<AppState>,
    CustomerCaller(c): CustomerCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    bargain_answer(&app, c.tenant_id, path_id("bargain", &id)?).await
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
