//! Coupon templates and coupons (`convert::coupons`): claim, issue, redeem, refund.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use siyu::know::CustomerId;

use crate::AppState;
use crate::api::{ApiCaller, ApiError, actor, customer_id, json_body, require_write};
use siyu::convert::coupons::{self, CouponError, TemplateInput, UseOn};
use siyu::platform::clock::now_ms;

pub(crate) async fn list_templates(
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

pub(crate) async fn create_template(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    b: Result<Json<TemplateInput>, JsonRejection>,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    let t = json_body(b)?;
    let t = coupons::create_template(&app.db, caller.tenant_id, &t, now_ms()).await?;
    Ok((StatusCode::CREATED, Json(t)).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClaimViaBody {
    claim_via: coupons::ClaimVia,
}

/// `PUT /api/v1/coupon-templates/{id}/claim-via` `{"claim_via": "h5"}`: where it may be claimed.
pub(crate) async fn put_claim_via(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
    b: Result<Json<ClaimViaBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    let id = template_id(&id)?;
    let via = json_body(b)?.claim_via;
    let t = coupons::set_claim_via(&app.db, caller.tenant_id, id, via).await?;
    Ok(Json(t).into_response())
}

/// `POST /api/v1/coupon-templates/{id}/stop`: the template issues no more from now; coupons
/// already granted stay valid.
pub(crate) async fn stop_issuing(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    let id = template_id(&id)?;
    let t = coupons::stop_issuing(&app.db, caller.tenant_id, id, now_ms()).await?;
    Ok(Json(t).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AddBody {
    add: i64,
}

/// `POST /api/v1/coupon-templates/{id}/total` `{"add": 500}`: more coupons for the template.
pub(crate) async fn add_to_total(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
    b: Result<Json<AddBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    let id = template_id(&id)?;
    let more = json_body(b)?.add;
    let t = coupons::add_to_total(&app.db, caller.tenant_id, id, more).await?;
    Ok(Json(t).into_response())
}

pub(crate) fn template_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::bad_request(format!("template id {raw:?} is not a number")))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClaimBody {
    customer_id: CustomerId,
}

/// `POST /api/v1/coupon-templates/{id}/claim`: one customer claims one coupon.
pub(crate) async fn claim(
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
pub(crate) struct IssueBody {
    #[serde(default)]
    customer_ids: Vec<CustomerId>,
    /// A segment snapshot: every frozen member gets one.
    #[serde(default)]
    snapshot_id: Option<i64>,
}

/// Customer ids one issue request may list.
const MOST_LISTED: usize = 10_000;

/// `POST /api/v1/coupon-templates/{id}/issue`: the brand gives coupons to a list or a snapshot.
pub(crate) async fn issue(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
    b: Result<Json<IssueBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    let b = json_body(b)?;
    if b.customer_ids.len() > MOST_LISTED {
        return Err(ApiError::bad_request(format!(
            "customer_ids: at most {MOST_LISTED} in one request (got {}); a snapshot takes any number",
            b.customer_ids.len()
        )));
    }
    // Listed ids must be the tenant's own customers (as they are now, after merges).
    let known =
        siyu::know::customers::surviving_ids(&app.db, caller.tenant_id, &b.customer_ids).await?;
    let unknown: Vec<CustomerId> = b
        .customer_ids
        .iter()
        .filter(|id| !known.contains_key(id))
        .copied()
        .collect();
    let mut customers: Vec<CustomerId> = b
        .customer_ids
        .iter()
        .filter_map(|id| known.get(id).copied())
        .collect();
    let mut source = actor(&caller);
    if let Some(sid) = b.snapshot_id {
        let (_, members) =
            siyu::know::segments::snapshot_members(&app.db, caller.tenant_id, sid).await?;
        customers.extend(members.iter().map(|c| CustomerId::new(c.into())));
        source = format!("snapshot:{sid}");
    }
    if customers.is_empty() && unknown.is_empty() {
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
    let refused: Vec<_> = unknown
        .iter()
        .map(|c| json!({"customer_id": c, "reason": "no such customer"}))
        .chain(
            g.refused
                .iter()
                .map(|(c, why)| json!({"customer_id": c, "reason": why})),
        )
        .collect();
    Ok(Json(json!({"granted": g.granted.len(), "refused": refused})).into_response())
}

/// `POST /api/v1/coupons/redeem`: online (order API) or in store (a guide types the code).
pub(crate) async fn redeem(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    b: Result<Json<UseOn>, JsonRejection>,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    let u = json_body(b)?;
    let c = coupons::redeem(&app.db, caller.tenant_id, &u, &actor(&caller), now_ms()).await?;
    Ok(Json(c).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RefundBody {
    order_ref: String,
}

/// `POST /api/v1/coupons/refund`: an order was refunded; its coupons return while valid.
pub(crate) async fn refund(
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

pub(crate) async fn customer_coupons(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = customer_id(&app, caller.tenant_id, &id).await?;
    let list = coupons::coupons_of(&app.db, caller.tenant_id, id).await?;
    Ok(Json(json!({"customer_id": id, "coupons": list})).into_response())
}
