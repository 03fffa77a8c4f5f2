//! A customer claiming a coupon.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use siyu::platform::TenantId;

use super::CustomerCaller;
use crate::AppState;
use crate::api::{ApiError, path_id};
use siyu::convert::coupons::{self, CouponError, Template};
use siyu::platform::clock::now_ms;

/// The template, if the brand offers it on customers' pages; any other is answered as not found,
/// so that a page cannot claim the package-card, points-gift or API-only coupons by their ids.
async fn offered_on_h5(app: &AppState, tenant: TenantId, id: i64) -> Result<Template, ApiError> {
    match coupons::template(&app.db, tenant, id).await? {
        t if t.offered_on_h5() => Ok(t),
        _ => Err(CouponError::NoTemplate(id).into()),
    }
}

/// `GET /h5/v1/coupon-templates/{id}`: what the claim page shows, and the customer's own
/// coupons of this template.
pub(crate) async fn coupon(
    State(app): State<AppState>,
    CustomerCaller(c): CustomerCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = path_id("coupon template", &id)?;
    let t = offered_on_h5(&app, c.tenant_id, id).await?;
    let mine: Vec<_> = siyu::convert::coupons::coupons_of(&app.db, c.tenant_id, c.customer_id)
        .await?
        .into_iter()
        .filter(|x| x.template_id == id)
        .collect();
    Ok(Json(json!({
        "template": {"id": t.id, "name": t.name, "kind": t.kind, "value": t.value, "gift": t.gift,
                     "threshold": t.threshold, "starts_at": t.starts_at, "ends_at": t.ends_at,
                     "valid_days": t.valid_days, "per_customer": t.per_customer,
                     "stopped": t.stopped_at.is_some()},
        "left": (t.total - t.issued).max(0),
        "mine": mine,
        "now": now_ms(),
    }))
    .into_response())
}

/// `POST /h5/v1/coupon-templates/{id}/claim`: the customer claims one from their own page.
pub(crate) async fn claim_coupon(
    State(app): State<AppState>,
    CustomerCaller(c): CustomerCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = path_id("coupon template", &id)?;
    offered_on_h5(&app, c.tenant_id, id).await?;
    let g =
        siyu::convert::coupons::grant(&app.db, c.tenant_id, id, &[c.customer_id], "h5", now_ms())
            .await?;
    match (g.granted.into_iter().next(), g.refused.into_iter().next()) {
        (Some(coupon), _) => Ok((StatusCode::CREATED, Json(coupon)).into_response()),
        (None, Some((_, why))) => Err(siyu::convert::coupons::CouponError::Refused(why).into()),
        (None, None) => Err(ApiError::internal(
            "a claim granted nothing and refused nothing",
        )),
    }
}
