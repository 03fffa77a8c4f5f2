//! A customer opening, joining and viewing a group-buy team.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::convert::group_buy;
use crate::interfaces::AppState;
use crate::interfaces::api::convert::group_buy::team_answer;
use crate::interfaces::api::{ApiError, path_id};
use crate::interfaces::h5::CustomerCaller;
use crate::platform::clock::now_ms;

pub(crate) async fn open_team(
    State(app): State<AppState>,
    CustomerCaller(c): CustomerCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    // No provider, no purchase: turned away before anything is held or charged.
    app.payments.require()?;
    let id = path_id("group buy", &id)?;
    let t = group_buy::open_team(
        &app.db,
        &app.payments,
        c.tenant_id,
        id,
        c.customer_id,
        now_ms(),
    )
    .await?;
    let r = team_answer(&app, c.tenant_id, t).await?;
    Ok((StatusCode::CREATED, r).into_response())
}

pub(crate) async fn join_team(
    State(app): State<AppState>,
    CustomerCaller(c): CustomerCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    // No provider, no purchase: turned away before anything is held or charged.
    app.payments.require()?;
    let id = path_id("team", &id)?;
    let t = group_buy::join_team(
        &app.db,
        &app.payments,
        c.tenant_id,
        id,
        c.customer_id,
        now_ms(),
    )
    .await?;
    team_answer(&app, c.tenant_id, t).await
}

/// What a team's share page shows: the item, the seats, and the deadline.
pub(crate) async fn team_view(
    State(app): State<AppState>,
    CustomerCaller(c): CustomerCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = path_id("team", &id)?;
    let t = group_buy::team(&app.db, c.tenant_id, id).await?;
    let g = group_buy::get(&app.db, c.tenant_id, t.group_buy_id).await?;
    let members = group_buy::team_members(&app.db, c.tenant_id, id).await?;
    let mine = members.iter().any(|m| m.customer_id == c.customer_id);
    Ok(Json(json!({"team": t, "group_buy": g, "seats_taken": members.len(), "in_team": mine, "now": now_ms()}))
        .into_response())
}
