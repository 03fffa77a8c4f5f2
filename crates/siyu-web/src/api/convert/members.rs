//! Members, points and tiers (`convert::members`, `convert::points`, `convert::tiers`).

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use siyu::know::CustomerId;
use siyu::platform::Fen;

use crate::AppState;
use crate::api::{ApiCaller, ApiError, actor, customer_id, json_body, require_write};
use siyu::convert::members::{self, JoinRequest, JoinedVia};
use siyu::convert::points::{self, Change, PointsSettings};
use siyu::convert::tiers;
use siyu::know::audience::Change as IndexChange;
use siyu::know::identity::IdentityInput;
use siyu::platform::clock::now_ms;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct JoinBody {
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
pub(crate) async fn join(
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

pub(crate) async fn member(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = customer_id(&app, caller.tenant_id, &id).await?;
    let m = members::get(&app.db, caller.tenant_id, id).await?;
    let balance = points::balance(&app.db, caller.tenant_id, id).await?;
    Ok(Json(json!({"member": m, "points": balance})).into_response())
}

pub(crate) async fn ledger(
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
pub(crate) enum PointsBody {
    /// Points for a paid order (once per order).
    Earn {
        order_ref: String,
        paid: Fen,
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
pub(crate) async fn change_points(
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

pub(crate) async fn put_settings(
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
pub(crate) async fn expire(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    let n = points::expire_all(&app.db, caller.tenant_id, now_ms()).await?;
    Ok(Json(json!({"expired": n})).into_response())
}

/// `POST /api/v1/tiers/review`: reviews every member's tier now, downgrades included (also
/// daily at 03:30).
pub(crate) async fn review_tiers(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    let changes = tiers::review(&app.db, caller.tenant_id, None, true, now_ms()).await?;
    let ids: Vec<CustomerId> = changes.iter().map(|c| c.customer_id).collect();
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
