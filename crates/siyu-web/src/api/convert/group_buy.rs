//! Group buys (拼团, `convert::group_buy`) for the brand's systems.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use siyu::platform::TenantId;

use crate::AppState;
use crate::api::{
    ApiCaller, ApiError, CustomerBody, json_body, live_customer, path_id, require_write,
};
use siyu::convert::group_buy::{self, GroupBuyInput, Team, TeamStatus};
use siyu::platform::clock::now_ms;

pub(crate) async fn create_buy(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    b: Result<Json<GroupBuyInput>, JsonRejection>,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    let g = group_buy::create(&app.db, caller.tenant_id, &json_body(b)?, now_ms()).await?;
    Ok((StatusCode::CREATED, Json(g)).into_response())
}

pub(crate) async fn list_buys(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
) -> Result<Response, ApiError> {
    let mut out = Vec::new();
    for g in group_buy::list(&app.db, caller.tenant_id).await? {
        let teams = group_buy::teams(&app.db, caller.tenant_id, g.id).await?;
        let count = |s: TeamStatus| teams.iter().filter(|t| t.status == s).count();
        out.push(json!({"group_buy": g, "teams": {"open": count(TeamStatus::Open), "full": count(TeamStatus::Full), "cancelled": count(TeamStatus::Cancelled)}}));
    }
    Ok(Json(json!({"group_buys": out})).into_response())
}

pub(crate) async fn buy_view(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = path_id("group buy", &id)?;
    let g = group_buy::get(&app.db, caller.tenant_id, id).await?;
    let teams = group_buy::teams(&app.db, caller.tenant_id, id).await?;
    Ok(Json(json!({"group_buy": g, "teams": teams})).into_response())
}

/// After a join: when it filled the team, every member's order is followed by points, tiers
/// and the index ([`siyu::workflows::activity_paid`]). Only the join that fills a team gets a
/// full team back, so this runs once per team, never on a view.
pub(crate) async fn follow_if_filled(
    app: &AppState,
    tenant: TenantId,
    t: &Team,
) -> Result<(), ApiError> {
    if t.status != TeamStatus::Full {
        return Ok(());
    }
    for m in group_buy::team_members(&app.db, tenant, t.id).await? {
        if let Some(no) = &m.order_no {
            siyu::workflows::activity_paid(
                &app.db,
                &app.audiences,
                tenant,
                m.customer_id,
                no,
                now_ms(),
            )
            .await;
        }
    }
    Ok(())
}

/// The team and its members, for the brand's systems.
pub(crate) async fn team_answer(
    app: &AppState,
    tenant: TenantId,
    t: Team,
) -> Result<Response, ApiError> {
    let members = group_buy::team_members(&app.db, tenant, t.id).await?;
    Ok(Json(json!({"team": t, "members": members})).into_response())
}

pub(crate) async fn open_team(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
    b: Result<Json<CustomerBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    let id = path_id("group buy", &id)?;
    let leader = live_customer(&app, caller.tenant_id, json_body(b)?.customer_id).await?;
    let t = group_buy::open_team(
        &app.db,
        &app.payments,
        caller.tenant_id,
        id,
        leader,
        now_ms(),
    )
    .await?;
    let r = team_answer(&app, caller.tenant_id, t).await?;
    Ok((StatusCode::CREATED, r).into_response())
}

pub(crate) async fn join_team(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
    b: Result<Json<CustomerBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    let id = path_id("team", &id)?;
    let customer = live_customer(&app, caller.tenant_id, json_body(b)?.customer_id).await?;
    let t = group_buy::join_team(
        &app.db,
        &app.payments,
        caller.tenant_id,
        id,
        customer,
        now_ms(),
    )
    .await?;
    follow_if_filled(&app, caller.tenant_id, &t).await?;
    team_answer(&app, caller.tenant_id, t).await
}

pub(crate) async fn team_view(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = path_id("team", &id)?;
    let t = group_buy::team(&app.db, caller.tenant_id, id).await?;
    let members = group_buy::team_members(&app.db, caller.tenant_id, id).await?;
    Ok(Json(json!({"team": t, "members": members})).into_response())
}

/// `POST /api/v1/group-buys/sweep`: cancel expired teams and refund now (also runs every 30 s).
pub(crate) async fn sweep(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    let s = group_buy::sweep(
        &app.db,
        &app.payments,
        Some(caller.tenant_id),
        now_ms(),
        600_000,
    )
    .await?;
    Ok(Json(s).into_response())
}
