//! `/api/v1` for members and points.

use axum::Json;
use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::api::{ApiCaller, ApiError, json_body, require_write};
use super::api_layering::actor;
use crate::convert::coupons::{self, CouponError, TemplateInput, UseOn};
use crate::convert::members::{self, JoinRequest, JoinedVia, MemberError};
use crate::convert::points::{self, Change, PointsError, PointsSettings};
use crate::convert::tiers;
use crate::know::audience::Change as IndexChange;
use crate::know::customers::surviving_id;
use crate::know::identity::IdentityInput;
use crate::platform::clock::now_ms;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/members", post(join))
        .route("/api/v1/members/{id}", get(member))
        .route(
            "/api/v1/members/{id}/points",
            get(ledger).post(change_points),
        )
        .route("/api/v1/points/settings", put(put_settings))
        .route("/api/v1/points/expire", post(expire))
        .route("/api/v1/tiers/review", post(review_tiers))
        .route(
            "/api/v1/coupon-templates",
            get(list_templates).post(create_template),
        )
        .route("/api/v1/coupon-templates/{id}/claim", post(claim))
        .route("/api/v1/coupon-templates/{id}/issue", post(issue))
        .route("/api/v1/coupons/redeem", post(redeem))
        .route("/api/v1/coupons/refund", post(refund))
        .route("/api/v1/customers/{id}/coupons", get(customer_coupons))
}

impl From<CouponError> for ApiError {
    fn from(e: CouponError) -> Self {
        match e {
            CouponError::Invalid { .. } => ApiError::bad_request(e.to_string()),
            CouponError::NoTemplate(_) | CouponError::NoCoupon(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", e.to_string())
            }
            CouponError::Refused(_) => {
                ApiError::new(StatusCode::CONFLICT, "refused", e.to_string())
            }
            CouponError::Db(d) => d.into(),
        }
    }
}

async fn list_templates(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
) -> Result<Response, ApiError> {
    let now = now_ms();
    let mut out = Vec::new();
    for t in coupons::templates(&app.db, caller.tenant_id).await? {
        let r = coupons::report(&app.db, caller.tenant_id, t.id, now).await?;
        out.push(json!({"template": t, "report": r}));
    }
    Ok(Json(json!({"templates": out})).into_response())
}

async fn create_template(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    b: Result<Json<TemplateInput>, JsonRejection>,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    let t = json_body(b)?;
    let t = coupons::create_template(&app.db, caller.tenant_id, &t, now_ms()).await?;
    Ok((StatusCode::CREATED, Json(t)).into_response())
}

fn template_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::bad_request(format!("template id {raw:?} is not a number")))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClaimBody {
    customer_id: i64,
}

/// `POST /api/v1/coupon-templates/{id}/claim`: one customer claims one coupon.
async fn claim(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
    b: Result<Json<ClaimBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    let b = json_body(b)?;
    let customer = customer_id(&app, caller.tenant_id, &b.customer_id.to_string()).await?;
    let g = coupons::grant(
        &app.db,
        caller.tenant_id,
        template_id(&id)?,
        &[customer],
        "claim",
        now_ms(),
    )
    .await?;
    match (g.granted.into_iter().next(), g.refused.into_iter().next()) {
        (Some(c), _) => Ok((StatusCode::CREATED, Json(c)).into_response()),
        (None, Some((_, why))) => Err(CouponError::Refused(why).into()),
        (None, None) => Err(ApiError::internal(
            "a claim granted nothing and refused nothing",
        )),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IssueBody {
    #[serde(default)]
    customer_ids: Vec<i64>,
    /// A segment snapshot: every frozen member gets one.
    #[serde(default)]
    snapshot_id: Option<i64>,
}

/// `POST /api/v1/coupon-templates/{id}/issue`: the brand gives coupons to a list or a snapshot.
async fn issue(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
    b: Result<Json<IssueBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    let b = json_body(b)?;
    let mut customers = b.customer_ids.clone();
    let mut source = actor(&caller);
    if let Some(sid) = b.snapshot_id {
        let (_, members) =
            crate::know::segments::snapshot_members(&app.db, caller.tenant_id, sid).await?;
        customers.extend(members.iter().map(i64::from));
        source = format!("snapshot:{sid}");
    }
    if customers.is_empty() {
        return Err(ApiError::bad_request("give customer_ids or snapshot_id"));
    }
    let g = coupons::grant(
        &app.db,
        caller.tenant_id,
        template_id(&id)?,
        &customers,
        &source,
        now_ms(),
    )
    .await?;
    let refused: Vec<_> = g
        .refused
        .iter()
        .map(|(c, why)| json!({"customer_id": c, "reason": why}))
        .collect();
    Ok(Json(json!({"granted": g.granted.len(), "refused": refused})).into_response())
}

/// `POST /api/v1/coupons/redeem`: online (order API) or in store (a guide types the code).
async fn redeem(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    b: Result<Json<UseOn>, JsonRejection>,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    let u = json_body(b)?;
    let c = coupons::redeem(&app.db, caller.tenant_id, &u, now_ms()).await?;
    Ok(Json(c).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RefundBody {
    order_ref: String,
}

/// `POST /api/v1/coupons/refund`: an order was refunded; its coupons return while valid.
async fn refund(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    b: Result<Json<RefundBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    let b = json_body(b)?;
    let (back, lapsed) =
        coupons::refund_order(&app.db, caller.tenant_id, &b.order_ref, now_ms()).await?;
    Ok(Json(json!({"returned": back, "lapsed": lapsed})).into_response())
}

async fn customer_coupons(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = customer_id(&app, caller.tenant_id, &id).await?;
    let list = coupons::coupons_of(&app.db, caller.tenant_id, id).await?;
    Ok(Json(json!({"customer_id": id, "coupons": list})).into_response())
}

impl From<MemberError> for ApiError {
    fn from(e: MemberError) -> Self {
        match e {
            MemberError::Invalid { .. } => ApiError::bad_request(e.to_string()),
            MemberError::NotMember(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "not_a_member", e.to_string())
            }
            MemberError::Db(d) => d.into(),
        }
    }
}

impl From<PointsError> for ApiError {
    fn from(e: PointsError) -> Self {
        match e {
            PointsError::Invalid { .. } => ApiError::bad_request(e.to_string()),
            PointsError::Insufficient { .. } => {
                ApiError::new(StatusCode::CONFLICT, "insufficient_points", e.to_string())
            }
            PointsError::NotMember(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "not_a_member", e.to_string())
            }
            PointsError::Db(d) => d.into(),
        }
    }
}

async fn customer_id(app: &AppState, tenant: i64, raw: &str) -> Result<i64, ApiError> {
    let id: i64 = raw
        .parse()
        .map_err(|_| ApiError::bad_request(format!("customer id {raw:?} is not a number")))?;
    surviving_id(&app.db, tenant, id).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no customer {id}"),
        )
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JoinBody {
    via: JoinedVia,
    identity: IdentityInput,
    #[serde(default)]
    store_id: Option<String>,
    #[serde(default)]
    birthday_month: Option<i64>,
    #[serde(default)]
    name: Option<String>,
}

/// `POST /api/v1/members`: 201 when the person joined now, 200 when they were a member already.
async fn join(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    b: Result<Json<JoinBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    let b = json_body(b)?;
    let identity = b
        .identity
        .parse()
        .map_err(|e| ApiError::bad_request(format!("identity: {e}")))?;
    let req = JoinRequest {
        identity,
        via: b.via,
        store_id: b.store_id,
        birthday_month: b.birthday_month,
        display_name: b.name,
    };
    let now = now_ms();
    let (joined, new) = members::join(&app.db, &app.cipher, caller.tenant_id, &req, now).await?;
    tiers::review(
        &app.db,
        caller.tenant_id,
        Some(&[joined.customer_id]),
        false,
        now,
    )
    .await?;
    let m = members::get(&app.db, caller.tenant_id, joined.customer_id).await?;
    app.audiences
        .changed(
            caller.tenant_id,
            &[m.customer_id],
            IndexChange::Customers { orders: false },
        )
        .await
        .map_err(ApiError::internal)?;
    let balance = points::balance(&app.db, caller.tenant_id, m.customer_id).await?;
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(json!({"member": m, "points": balance, "joined_now": new})),
    )
        .into_response())
}

async fn member(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = customer_id(&app, caller.tenant_id, &id).await?;
    let m = members::get(&app.db, caller.tenant_id, id).await?;
    let balance = points::balance(&app.db, caller.tenant_id, id).await?;
    Ok(Json(json!({"member": m, "points": balance})).into_response())
}

async fn ledger(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = customer_id(&app, caller.tenant_id, &id).await?;
    members::get(&app.db, caller.tenant_id, id).await?;
    let entries = points::entries(&app.db, caller.tenant_id, id).await?;
    let balance = points::balance(&app.db, caller.tenant_id, id).await?;
    Ok(Json(json!({"customer_id": id, "points": balance, "entries": entries})).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case", tag = "kind")]
enum PointsBody {
    /// Points for a paid order (once per order).
    Earn {
        order_ref: String,
        paid: i64,
        #[serde(default)]
        reason: Option<String>,
    },
    Redeem {
        points: i64,
        #[serde(default)]
        reference: Option<String>,
        #[serde(default)]
        reason: Option<String>,
    },
    Adjust {
        points: i64,
        reason: String,
    },
}

/// `POST /api/v1/members/{id}/points`: earn, redeem or adjust; answers the entry and balance.
async fn change_points(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
    b: Result<Json<PointsBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    let b = json_body(b)?;
    let id = customer_id(&app, caller.tenant_id, &id).await?;
    let who = actor(&caller);
    let (change, reason) = match b {
        PointsBody::Earn {
            order_ref,
            paid,
            reason,
        } => (
            Change::Earn {
                order_ref,
                paid_fen: paid,
            },
            reason.unwrap_or_else(|| "消费积分 earned".into()),
        ),
        PointsBody::Redeem {
            points,
            reference,
            reason,
        } => (
            Change::Redeem { points, reference },
            reason.unwrap_or_else(|| "积分兑换 redeemed".into()),
        ),
        PointsBody::Adjust { points, reason } => (
            Change::Adjust { points },
            if reason.trim().is_empty() {
                String::new()
            } else {
                format!("{reason} ({who})")
            },
        ),
    };
    let now = now_ms();
    let (entry, balance) =
        points::apply(&app.db, caller.tenant_id, id, &change, &reason, now).await?;
    if matches!(change, Change::Earn { .. })
        && !tiers::review(&app.db, caller.tenant_id, Some(&[id]), false, now)
            .await?
            .is_empty()
    {
        app.audiences
            .changed(
                caller.tenant_id,
                &[id],
                IndexChange::Customers { orders: false },
            )
            .await
            .map_err(ApiError::internal)?;
    }
    Ok(Json(json!({"entry": entry, "points": balance})).into_response())
}

async fn put_settings(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    b: Result<Json<PointsSettings>, JsonRejection>,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    let s = json_body(b)?;
    points::save_settings(&app.db, caller.tenant_id, &s, now_ms()).await?;
    Ok(Json(s).into_response())
}

/// `POST /api/v1/points/expire`: expires unspent points past their date now (also daily).
async fn expire(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    let n = points::expire_all(&app.db, caller.tenant_id, now_ms()).await?;
    Ok(Json(json!({"expired": n})).into_response())
}

/// `POST /api/v1/tiers/review`: reviews every member's tier now, downgrades included (also
/// daily at 03:30).
async fn review_tiers(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    let changes = tiers::review(&app.db, caller.tenant_id, None, true, now_ms()).await?;
    let ids: Vec<i64> = changes.iter().map(|c| c.customer_id).collect();
    app.audiences
        .changed(
            caller.tenant_id,
            &ids,
            IndexChange::Customers { orders: false },
        )
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(json!({"changes": changes})).into_response())
}
