//! `/api/v1` and `/h5/v1` for group buys (拼团), bargains (砍价) and gifts for points.

use axum::Json;
use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::api::{ApiCaller, ApiError, json_body, require_write};
use super::api_activities::{CustomerCaller, after_paid, live_customer, path_id};
use crate::convert::bargain::{self, BargainError, ItemInput};
use crate::convert::gifts::{self, GiftError, GiftInput};
use crate::convert::group_buy::{self, GroupBuyError, GroupBuyInput, Team};
use crate::know::audience::Change as IndexChange;
use crate::know::identity::IdentityInput;
use crate::platform::clock::now_ms;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/group-buys", get(list_buys).post(create_buy))
        .route("/api/v1/group-buys/{id}", get(buy_view))
        .route("/api/v1/group-buys/{id}/teams", post(open_team))
        .route("/api/v1/group-buys/sweep", post(sweep))
        .route("/api/v1/teams/{id}", get(team_view))
        .route("/api/v1/teams/{id}/join", post(join_team))
        .route("/api/v1/bargain-items", get(list_items).post(create_item))
        .route("/api/v1/bargain-items/{id}/bargains", post(start_bargain))
        .route("/api/v1/bargains/{id}", get(bargain_view))
        .route("/api/v1/bargains/{id}/assists", post(assist))
        .route("/api/v1/bargains/{id}/buy", post(buy_bargain))
        .route("/api/v1/gifts", get(list_gifts).post(create_gift))
        .route("/api/v1/gifts/{id}/redeem", post(redeem_gift))
        .route("/h5/v1/group-buys/{id}/teams", post(h5_open_team))
        .route("/h5/v1/teams/{id}", get(h5_team_view))
        .route("/h5/v1/teams/{id}/join", post(h5_join_team))
        .route("/h5/v1/bargain-items/{id}/bargains", post(h5_start_bargain))
        .route("/h5/v1/bargains/{id}", get(h5_bargain_view))
        .route("/h5/v1/bargains/{id}/buy", post(h5_buy_bargain))
        .route("/h5/v1/gifts", get(h5_gifts))
        .route("/h5/v1/coupon-templates/{id}", get(h5_coupon))
        .route("/h5/v1/coupon-templates/{id}/claim", post(h5_claim_coupon))
        .route("/h5/v1/gifts/{id}/redeem", post(h5_redeem_gift))
}

fn conflict(code: &'static str, e: impl ToString) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, code, e.to_string())
}

fn not_found(e: impl ToString) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", e.to_string())
}

impl From<GroupBuyError> for ApiError {
    fn from(e: GroupBuyError) -> Self {
        match e {
            GroupBuyError::Invalid { .. } => ApiError::bad_request(e.to_string()),
            GroupBuyError::NoGroupBuy(_) | GroupBuyError::NoTeam(_) => not_found(e),
            GroupBuyError::Refused(_) => conflict("refused", e),
            GroupBuyError::Payment(p) => p.into(),
            GroupBuyError::Db(d) => d.into(),
        }
    }
}

impl From<BargainError> for ApiError {
    fn from(e: BargainError) -> Self {
        match e {
            BargainError::Invalid { .. } => ApiError::bad_request(e.to_string()),
            BargainError::NoItem(_) | BargainError::NoBargain(_) => not_found(e),
            BargainError::Refused(_) => conflict("refused", e),
            BargainError::Member(m) => m.into(),
            BargainError::Payment(p) => p.into(),
            BargainError::Db(d) => d.into(),
        }
    }
}

impl From<GiftError> for ApiError {
    fn from(e: GiftError) -> Self {
        match e {
            GiftError::Invalid { .. } => ApiError::bad_request(e.to_string()),
            GiftError::NoGift(_) => not_found(e),
            GiftError::Refused(_) => conflict("refused", e),
            GiftError::Points(p) => p.into(),
            GiftError::Coupon(c) => c.into(),
            GiftError::Db(d) => d.into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CustomerBody {
    customer_id: i64,
}

// ---- group buys

async fn create_buy(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    b: Result<Json<GroupBuyInput>, JsonRejection>,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    let g = group_buy::create(&app.db, caller.tenant_id, &json_body(b)?, now_ms()).await?;
    Ok((StatusCode::CREATED, Json(g)).into_response())
}

async fn list_buys(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
) -> Result<Response, ApiError> {
    let mut out = Vec::new();
    for g in group_buy::list(&app.db, caller.tenant_id).await? {
        let teams = group_buy::teams(&app.db, caller.tenant_id, g.id).await?;
        let count = |s: &str| teams.iter().filter(|t| t.status == s).count();
        out.push(json!({"group_buy": g, "teams": {"open": count("open"), "full": count("full"), "cancelled": count("cancelled")}}));
    }
    Ok(Json(json!({"group_buys": out})).into_response())
}

async fn buy_view(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = path_id("group buy", &id)?;
    let g = group_buy::get(&app.db, caller.tenant_id, id).await?;
    let teams = group_buy::teams(&app.db, caller.tenant_id, id).await?;
    Ok(Json(json!({"group_buy": g, "teams": teams})).into_response())
}

/// A team and its members; when the team is full, points, tiers and the index follow the orders.
async fn team_answer(app: &AppState, tenant: i64, t: Team) -> Result<Response, ApiError> {
    let members = group_buy::team_members(&app.db, tenant, t.id).await?;
    if t.status == "full" {
        for m in &members {
            if let Some(no) = &m.order_no {
                after_paid(app, tenant, m.customer_id, no).await;
            }
        }
    }
    Ok(Json(json!({"team": t, "members": members})).into_response())
}

async fn open_team(
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

async fn join_team(
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
    team_answer(&app, caller.tenant_id, t).await
}

async fn team_view(
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
async fn sweep(
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

async fn h5_open_team(
    State(app): State<AppState>,
    CustomerCaller(c): CustomerCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
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

async fn h5_join_team(
    State(app): State<AppState>,
    CustomerCaller(c): CustomerCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
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
async fn h5_team_view(
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

// ---- bargains

async fn create_item(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    b: Result<Json<ItemInput>, JsonRejection>,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    let i = bargain::create_item(&app.db, caller.tenant_id, &json_body(b)?, now_ms()).await?;
    Ok((StatusCode::CREATED, Json(i)).into_response())
}

async fn list_items(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
) -> Result<Response, ApiError> {
    let items = bargain::items(&app.db, caller.tenant_id).await?;
    Ok(Json(json!({"bargain_items": items})).into_response())
}

async fn start_bargain(
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

async fn bargain_answer(app: &AppState, tenant: i64, id: i64) -> Result<Response, ApiError> {
    let b = bargain::get(&app.db, tenant, id).await?;
    let item = bargain::item(&app.db, tenant, b.item_id).await?;
    let assists = bargain::assists(&app.db, tenant, id).await?;
    Ok(
        Json(json!({"bargain": b, "item": item, "assists": assists, "now": now_ms()}))
            .into_response(),
    )
}

async fn bargain_view(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    bargain_answer(&app, caller.tenant_id, path_id("bargain", &id)?).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AssistBody {
    /// The helper as the mini-program knows them after login: a unionid, an openid or a phone.
    identity: IdentityInput,
    #[serde(default)]
    name: Option<String>,
}

/// `POST /api/v1/bargains/{id}/assists`: a friend helps (and joins as a member).
async fn assist(
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

async fn buy(
    app: &AppState,
    tenant: i64,
    id: i64,
    customer: Option<i64>,
) -> Result<Response, ApiError> {
    let b = bargain::buy(&app.db, &app.payments, tenant, id, customer, now_ms()).await?;
    if let Some(no) = &b.order_no {
        after_paid(app, tenant, b.customer_id, no).await;
    }
    Ok(Json(b).into_response())
}

async fn buy_bargain(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    buy(&app, caller.tenant_id, path_id("bargain", &id)?, None).await
}

async fn h5_start_bargain(
    State(app): State<AppState>,
    CustomerCaller(c): CustomerCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = path_id("bargain item", &id)?;
    let b = bargain::start(&app.db, c.tenant_id, id, c.customer_id, now_ms()).await?;
    Ok((StatusCode::CREATED, Json(b)).into_response())
}

/// The bargain's share page: anyone holding a token of the tenant may look (helpers do).
async fn h5_bargain_view(
    State(app): State<AppState>,
    CustomerCaller(c): CustomerCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    bargain_answer(&app, c.tenant_id, path_id("bargain", &id)?).await
}

async fn h5_buy_bargain(
    State(app): State<AppState>,
    CustomerCaller(c): CustomerCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    buy(
        &app,
        c.tenant_id,
        path_id("bargain", &id)?,
        Some(c.customer_id),
    )
    .await
}

// ---- gifts for points

async fn create_gift(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    b: Result<Json<GiftInput>, JsonRejection>,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    let g = gifts::create(&app.db, caller.tenant_id, &json_body(b)?, now_ms()).await?;
    Ok((StatusCode::CREATED, Json(g)).into_response())
}

async fn list_gifts(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
) -> Result<Response, ApiError> {
    Ok(Json(json!({"gifts": gifts::list(&app.db, caller.tenant_id).await?})).into_response())
}

async fn redeem(
    app: &AppState,
    tenant: i64,
    gift: i64,
    customer: i64,
) -> Result<Response, ApiError> {
    let r = gifts::redeem(&app.db, tenant, gift, customer, now_ms()).await?;
    let balance = crate::convert::points::balance(&app.db, tenant, customer).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"redemption": r, "balance": balance})),
    )
        .into_response())
}

async fn redeem_gift(
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

async fn h5_gifts(
    State(app): State<AppState>,
    CustomerCaller(c): CustomerCaller,
) -> Result<Response, ApiError> {
    let list = gifts::list(&app.db, c.tenant_id).await?;
    let balance = crate::convert::points::balance(&app.db, c.tenant_id, c.customer_id).await?;
    Ok(Json(json!({"gifts": list, "balance": balance})).into_response())
}

async fn h5_redeem_gift(
    State(app): State<AppState>,
    CustomerCaller(c): CustomerCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    redeem(&app, c.tenant_id, path_id("gift", &id)?, c.customer_id).await
}

// ---- coupons claimed online

/// `GET /h5/v1/coupon-templates/{id}`: what the claim page shows, and the customer's own
/// coupons of this template.
async fn h5_coupon(
    State(app): State<AppState>,
    CustomerCaller(c): CustomerCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = path_id("coupon template", &id)?;
    let t = crate::convert::coupons::template(&app.db, c.tenant_id, id).await?;
    let mine: Vec<_> = crate::convert::coupons::coupons_of(&app.db, c.tenant_id, c.customer_id)
        .await?
        .into_iter()
        .filter(|x| x.template_id == id)
        .collect();
    Ok(Json(json!({
        "template": {"id": t.id, "name": t.name, "kind": t.kind, "value": t.value, "gift": t.gift,
                     "threshold": t.threshold, "starts_at": t.starts_at, "ends_at": t.ends_at,
                     "valid_days": t.valid_days, "per_customer": t.per_customer},
        "left": (t.total - t.issued).max(0),
        "mine": mine,
        "now": now_ms(),
    }))
    .into_response())
}

/// `POST /h5/v1/coupon-templates/{id}/claim`: the customer claims one from their own page.
async fn h5_claim_coupon(
    State(app): State<AppState>,
    CustomerCaller(c): CustomerCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = path_id("coupon template", &id)?;
    let g =
        crate::convert::coupons::grant(&app.db, c.tenant_id, id, &[c.customer_id], "h5", now_ms())
            .await?;
    match (g.granted.into_iter().next(), g.refused.into_iter().next()) {
        (Some(coupon), _) => Ok((StatusCode::CREATED, Json(coupon)).into_response()),
        (None, Some((_, why))) => Err(crate::convert::coupons::CouponError::Refused(why).into()),
        (None, None) => Err(ApiError::internal(
            "a claim granted nothing and refused nothing",
        )),
    }
}
