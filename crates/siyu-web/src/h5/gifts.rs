//! A customer's gifts for points.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::AppState;
use crate::api::convert::gifts::redeem;
use crate::api::{ApiError, path_id};
use crate::h5::CustomerCaller;
use siyu::convert::gifts;

pub(crate) async fn list(
    State(app): State<AppState>,
    CustomerCaller(c): CustomerCaller,
) -> Result<Response, ApiError> {
    let list = gifts::list(&app.db, c.tenant_id).await?;
    let balance = siyu::convert::points::balance(&app.db, c.tenant_id, c.customer_id).await?;
    Ok(Json(json!({"gifts": list, "balance": balance})).into_response())
}

pub(crate) async fn redeem_gift(
    State(app): State<AppState>,
    CustomerCaller(c): CustomerCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    redeem(&app, c.tenant_id, path_id("gift", &id)?, c.customer_id).await
}
