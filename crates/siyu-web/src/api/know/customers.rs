//! The customer 360 and its lists (`know::customers`), with custom attributes and tags by customer.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value as Json_, json};
use siyu::know::CustomerId;

use crate::AppState;
use crate::api::{ApiCaller, ApiError, json_body, parse_id, require_write};
use siyu::know::attributes;
use siyu::know::audience::Change;
use siyu::know::customers::{self, customer_360, find_by_identity, list_customers, surviving_id};
use siyu::know::identity::Identity;
use siyu::know::phone::Phone;
use siyu::know::tags;
use siyu::platform::access::Caller;
use siyu::platform::clock::now_ms;

#[derive(Debug, Deserialize)]
pub(crate) struct CustomerQuery {
    phone: Option<String>,
    identity: Option<String>,
    #[serde(default)]
    page: Option<i64>,
    #[serde(default)]
    per_page: Option<i64>,
    #[serde(default)]
    unmask: Option<bool>,
}

/// Whether full phone numbers are shown: only when asked for, and only to roles that may.
pub(crate) fn unmask(caller: &Caller, asked: Option<bool>) -> Result<bool, ApiError> {
    match asked {
        Some(true) if caller.role.may_see_phone() => Ok(true),
        Some(true) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "role {} may not see full phone numbers",
                caller.role.as_str()
            ),
        )),
        _ => Ok(false),
    }
}

/// `GET /api/v1/customers`: a page of customers, or the one holding `?phone=` or `?identity=kind:value`.
pub(crate) async fn get_customers(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Query(q): Query<CustomerQuery>,
) -> Result<Response, ApiError> {
    let unmask = unmask(&caller, q.unmask)?;
    let identity = match (&q.phone, &q.identity) {
        (Some(p), _) => Some(Identity::Phone(
            Phone::parse(p).map_err(|e| ApiError::bad_request(format!("phone: {e}")))?,
        )),
        (None, Some(i)) => Some(
            Identity::parse_shorthand(i)
                .map_err(|e| ApiError::bad_request(format!("identity: {e}")))?,
        ),
        (None, None) => None,
    };
    if let Some(identity) = identity {
        let found = find_by_identity(&app.db, &app.cipher, caller.tenant_id, &identity).await?;
        let c = match found {
            Some(id) => customer_360(&app.db, &app.cipher, caller.tenant_id, id, unmask).await?,
            None => None,
        };
        return match c {
            Some(c) => Ok(Json(c).into_response()),
            None => Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "no customer has that identity",
            )),
        };
    }
    let page = list_customers(
        &app.db,
        &app.cipher,
        caller.tenant_id,
        q.page.unwrap_or(1),
        q.per_page.unwrap_or(50),
        None,
        unmask,
    )
    .await?;
    Ok(Json(page).into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct UnmaskQuery {
    #[serde(default)]
    unmask: Option<bool>,
}

/// `GET /api/v1/customers/{id}`: the customer 360. A merged id answers with the survivor.
pub(crate) async fn get_customer(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
    Query(q): Query<UnmaskQuery>,
) -> Result<Response, ApiError> {
    let unmask = unmask(&caller, q.unmask)?;
    let id: CustomerId = id
        .parse()
        .map_err(|_| ApiError::bad_request(format!("customer id {id:?} is not a number")))?;
    match customers::customer_360(&app.db, &app.cipher, caller.tenant_id, id, unmask).await? {
        Some(c) => Ok(Json(c).into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no customer {id}"),
        )),
    }
}

/// `PUT /api/v1/customers/{id}/attributes`: `{"city": "上海", "age": 31, "old": null}`.
pub(crate) async fn put_attributes(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
    body: Result<Json<serde_json::Map<String, Json_>>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    let attrs = json_body(body)?;
    let id = CustomerId::new(parse_id("customer id", &id)?);
    let id = surviving_id(&app.db, caller.tenant_id, id)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no customer {id}"),
            )
        })?;
    attributes::set_attributes(&app.db, caller.tenant_id, id, &attrs, now_ms()).await?;
    app.audiences
        .changed(caller.tenant_id, &[id], Change::Customers { orders: false })
        .await?;
    let now: Vec<Json_> = attributes::attributes_of(&app.db, caller.tenant_id, id)
        .await?
        .into_iter()
        .map(|(n, v)| json!({"name": n, "value": v}))
        .collect();
    Ok(Json(json!({"customer_id": id, "attributes": now})).into_response())
}

/// `GET /api/v1/customers/{id}/tags`: tags now, and who or what set them when.
pub(crate) async fn customer_tags(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = CustomerId::new(parse_id("customer id", &id)?);
    let id = surviving_id(&app.db, caller.tenant_id, id)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no customer {id}"),
            )
        })?;
    let now: Vec<Json_> = tags::tags_of(&app.db, caller.tenant_id, id)
        .await?
        .into_iter()
        .map(|t| json!({"id": t.id, "group": t.group_name, "name": t.name, "rule": t.rule.is_some()}))
        .collect();
    let history = tags::history_of(&app.db, caller.tenant_id, id).await?;
    Ok(Json(json!({"customer_id": id, "tags": now, "history": history})).into_response())
}

/// `GET /api/v1/customers/{id}/notes`: the notes staff wrote on the customer, newest first.
pub(crate) async fn get_notes(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = crate::api::customer_id(&app, caller.tenant_id, &id).await?;
    let notes = siyu::know::notes::of(&app.db, caller.tenant_id, id).await?;
    Ok(Json(json!({"customer_id": id, "notes": notes})).into_response())
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NoteBody {
    body: String,
}

/// `POST /api/v1/customers/{id}/notes` `{"body": "…"}`: a note kept on the customer, by the key.
pub(crate) async fn post_note(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
    body: Result<Json<NoteBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    let b = json_body(body)?;
    let id = crate::api::customer_id(&app, caller.tenant_id, &id).await?;
    let by = crate::api::actor(&caller);
    let note =
        siyu::know::notes::add(&app.db, caller.tenant_id, id, &b.body, &by, now_ms()).await?;
    Ok((StatusCode::CREATED, Json(note)).into_response())
}
