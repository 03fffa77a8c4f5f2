//! `POST /api/v1/events` and `/api/v1/orders`: batches from the brand's systems (`know::ingest`,
//! `know::orders`); good items are kept beside refused ones, each refusal naming its item.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::value::RawValue;
use serde_json::{Value as Json_, json};

use crate::AppState;
use crate::api::{ApiCaller, ApiError, require_write};
use siyu::know::events::{EventInput, ItemError, MAX_BATCH};
use siyu::know::orders::{OrderInput, dedupe_orders, key_identities, owners_of, store_orders};
use siyu::platform::clock::now_ms;

/// Parses `{"<field>": [ … ]}` into its items, so that one malformed item does not sink the batch.
pub(crate) fn batch_items<'a>(body: &'a Bytes, field: &str) -> Result<Vec<&'a RawValue>, ApiError> {
    // Items stay raw until each is read on its own: no intermediate JSON tree, and one bad
    // item cannot sink the batch.
    let shape = || ApiError::bad_request(format!("body must be {{\"{field}\": [ … ]}}"));
    let top: std::collections::HashMap<String, &RawValue> =
        serde_json::from_slice(body).map_err(|e| {
            if e.is_data() {
                shape()
            } else {
                ApiError::bad_request(format!("body is not JSON: {e}"))
            }
        })?;
    let raw = top.get(field).ok_or_else(shape)?;
    let items: Vec<&RawValue> = serde_json::from_str(raw.get()).map_err(|_| shape())?;
    if items.is_empty() {
        return Err(ApiError::bad_request(format!("{field} is empty")));
    }
    if items.len() > MAX_BATCH {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "batch_too_large",
            format!("{} {field} in one batch; at most {MAX_BATCH}", items.len()),
        ));
    }
    Ok(items)
}

pub(crate) fn rejected_json(rejected: &[(usize, ItemError)]) -> Vec<Json_> {
    rejected
        .iter()
        .map(|(i, e)| json!({"index": i, "field": e.field, "reason": e.reason}))
        .collect()
}

/// Checks every item; returns the good ones with their index and the rejections.
pub(crate) fn check_items<T, U>(
    items: Vec<&RawValue>,
    check: impl Fn(T) -> Result<U, ItemError>,
) -> (Vec<U>, Vec<(usize, ItemError)>)
where
    T: serde::de::DeserializeOwned,
{
    let mut good = Vec::with_capacity(items.len());
    let mut bad = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        match serde_json::from_str::<T>(item.get()) {
            Ok(v) => match check(v) {
                Ok(u) => good.push(u),
                Err(e) => bad.push((i, e)),
            },
            Err(e) => bad.push((
                i,
                ItemError {
                    field: String::new(),
                    reason: e.to_string(),
                },
            )),
        }
    }
    (good, bad)
}

/// `POST /api/v1/events`: 202 once the valid events are committed; invalid ones listed by index.
pub(crate) async fn post_events(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    body: Bytes,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    let now = now_ms();
    let (events, rejected) =
        check_items(batch_items(&body, "events")?, |e: EventInput| e.check(now));
    if events.is_empty() {
        return Ok((
            StatusCode::BAD_REQUEST,
            Json(json!({"accepted": 0, "duplicates": 0, "rejected": rejected_json(&rejected)})),
        )
            .into_response());
    }
    let out = app.events.write(caller.tenant_id, events).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"accepted": out.stored, "duplicates": out.duplicates, "rejected": rejected_json(&rejected)})),
    )
        .into_response())
}

/// `POST /api/v1/orders`: new orders are imported, known ones updated (status, refund, lines).
pub(crate) async fn post_orders(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    body: Bytes,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    let now = now_ms();
    let (orders, rejected) =
        check_items(batch_items(&body, "orders")?, |o: OrderInput| o.check(now));
    if orders.is_empty() {
        return Ok((
            StatusCode::BAD_REQUEST,
            Json(json!({"imported": 0, "updated": 0, "rejected": rejected_json(&rejected)})),
        )
            .into_response());
    }
    let orders = dedupe_orders(orders);
    let keyed = key_identities(&app.cipher, &app.cipher.lookup(caller.tenant_id), &orders);
    // Owners before and after: an order that moves to another customer changes both.
    let mut owners = owners_of(&app.db, caller.tenant_id, &orders).await?;
    let out = store_orders(&app.db, caller.tenant_id, "api", &orders, &keyed, now).await?;
    owners.extend(owners_of(&app.db, caller.tenant_id, &orders).await?);
    let keys: Vec<(String, String)> = orders
        .iter()
        .map(|o| (o.channel.clone(), o.order_no.clone()))
        .collect();
    siyu::workflows::orders_stored(
        &app.db,
        &app.audiences,
        siyu::workflows::OrdersStored {
            tenant: caller.tenant_id,
            orders: &keys,
            buyers: &owners,
            now,
        },
    )
    .await
    .map_err(ApiError::internal)?;
    Ok((
        StatusCode::OK,
        Json(json!({"imported": out.imported, "updated": out.updated, "rejected": rejected_json(&rejected)})),
    )
        .into_response())
}
