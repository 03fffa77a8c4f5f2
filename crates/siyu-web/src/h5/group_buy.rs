//! A customer opening, joining and viewing a group-buy team.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use siyu::know::CustomerId;
use siyu::platform::TenantId;

use crate::AppState;
use crate::api::convert::group_buy::follow_if_filled;
use crate::api::{ApiError, path_id};
use crate::h5::CustomerCaller;
use siyu::convert::group_buy;
use siyu::convert::group_buy::Team;
use siyu::platform::clock::now_ms;

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
    let r = team_page(&app, c.tenant_id, c.customer_id, t).await?;
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
    follow_if_filled(&app, c.tenant_id, &t).await?;
    team_page(&app, c.tenant_id, c.customer_id, t).await
}

/// What a team's share page shows: the item, the seats, and the deadline.
/// `GET /h5/v1/group-buys/{id}`: what the offer is before a team is opened: the product, the
/// team price beside the usual one, the team size and how long a team has to fill.
pub(crate) async fn offer(
    State(app): State<AppState>,
    CustomerCaller(c): CustomerCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = path_id("group buy", &id)?;
    let g = group_buy::get(&app.db, c.tenant_id, id).await?;
    Ok(Json(json!({
        "group_buy": {"id": g.id, "title": g.title, "price": g.price, "original_price": g.original_price,
                      "team_size": g.team_size, "team_minutes": g.team_minutes,
                      "starts_at": g.starts_at, "ends_at": g.ends_at},
        "now": siyu::platform::clock::now_ms(),
    }))
    .into_response())
}

pub(crate) async fn team_view(
    State(app): State<AppState>,
    CustomerCaller(c): CustomerCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = path_id("team", &id)?;
    let t = group_buy::team(&app.db, c.tenant_id, id).await?;
    team_page(&app, c.tenant_id, c.customer_id, t).await
}

/// A team as one customer sees it: the item, the seats and the deadline, whether they are in
/// it and their own order; never who the others are, what they paid with or their orders.
async fn team_page(
    app: &AppState,
    tenant: TenantId,
    viewer: CustomerId,
    t: Team,
) -> Result<Response, ApiError> {
    let g = group_buy::get(&app.db, tenant, t.group_buy_id).await?;
    let members = group_buy::team_members(&app.db, tenant, t.id).await?;
    let mine = members.iter().find(|m| m.customer_id == viewer);
    Ok(Json(json!({
        "team": {"id": t.id, "group_buy_id": t.group_buy_id, "team_size": t.team_size,
                 "members": t.members, "status": t.status, "created_at": t.created_at,
                 "expires_at": t.expires_at, "closed_at": t.closed_at},
        "group_buy": {"id": g.id, "name": g.name, "title": g.title, "price": g.price,
                      "original_price": g.original_price, "team_size": g.team_size,
                      "starts_at": g.starts_at, "ends_at": g.ends_at},
        "seats_taken": members.len(),
        "in_team": mine.is_some(),
        "my_order_no": mine.and_then(|m| m.order_no.clone()),
        "now": now_ms(),
    }))
    .into_response())
}
