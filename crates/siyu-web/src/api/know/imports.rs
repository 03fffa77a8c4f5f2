//! Orders coming in from exports (`know::import`): uploading an export, the receipt of every
//! run, the tenant's status map, and linking an unlinked buyer's order to a customer.

use siyu::know::CustomerId;
use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::AppState;
use crate::api::{
    ApiCaller, ApiError, csv_response, json_body, live_customer, path_id, require_write,
};
use siyu::know::buyer_link;
use siyu::know::import::{ImportError, ImportOptions, import_file, presets, receipts, status_map};
use siyu::platform::clock::now_ms;

/// `GET /api/v1/import/statuses`: the tenant's status map and every status text its orders
/// carry (unknown ones first).
pub(crate) async fn statuses(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
) -> Result<Response, ApiError> {
    let map = status_map::load(&app.db, caller.tenant_id).await?;
    let texts = status_map::texts(&app.db, caller.tenant_id, &map).await?;
    let map: BTreeMap<&str, &str> = map.entries().map(|(t, s)| (t, s.as_str())).collect();
    Ok(Json(json!({"status_map": map, "texts": texts})).into_response())
}

/// `PUT /api/v1/import/status-map`: `{"售后中": "paid", …}` replaces the map; the orders it reads
/// differently are re-read and their buyers' figures follow.
pub(crate) async fn put_status_map(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    body: Result<Json<BTreeMap<String, String>>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    let map = status_map::StatusMap::new(json_body(body)?)?;
    let reread = siyu::workflows::status_map_saved(&app.db, caller.tenant_id, &map, now_ms())
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(json!({"reread": reread})).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UploadQuery {
    pub preset: String,
    #[serde(default)]
    pub channel: Option<String>,
    #[serde(default)]
    pub store: Option<String>,
    /// The file's own name, for the receipt.
    #[serde(default)]
    pub name: Option<String>,
}

/// Why an uploaded export was not imported (the API answers it in English, the console in the
/// page's language).
#[derive(Debug)]
pub(crate) enum UploadRefused {
    /// Two uploads are being imported on this server.
    Busy,
    Preset(String),
    EmptyFile,
    /// Over [`MOST_UPLOAD_BYTES`].
    TooLarge,
    /// The body stopped coming (the sender went away).
    Unread(String),
    /// The header names no column the preset needs.
    MissingColumn {
        field: String,
        wanted: String,
        preset: String,
    },
    /// The file's first row cannot be read as a header.
    Header(String),
    Internal(String),
}

impl From<UploadRefused> for ApiError {
    fn from(r: UploadRefused) -> ApiError {
        match r {
            UploadRefused::Busy => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "uploads_busy",
                "two exports are being imported on this server; send this one when they finish",
            ),
            UploadRefused::Preset(p) => ApiError::bad_request(format!(
                "preset {p:?} is not one of {}",
                presets::PRESET_NAMES.join(", ")
            )),
            UploadRefused::EmptyFile => ApiError::bad_request("the file is empty"),
            UploadRefused::TooLarge => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("an export may be at most {} MiB", MOST_UPLOAD_BYTES >> 20),
            ),
            UploadRefused::Unread(why) => {
                ApiError::bad_request(format!("the file did not arrive whole: {why}"))
            }
            UploadRefused::MissingColumn {
                field,
                wanted,
                preset,
            } => ApiError::bad_request(format!(
                "no column for {field} found in the header; the {preset} preset looks for {wanted}"
            )),
            UploadRefused::Header(why) => {
                ApiError::bad_request(format!("cannot read the header row: {why}"))
            }
            UploadRefused::Internal(e) => ApiError::internal(e),
        }
    }
}

/// The largest export a server takes, counted as the body streams in: a year of a large shop's
/// orders is a few hundred MB; more goes through `siyu import orders`, which reads the file.
pub(crate) const MOST_UPLOAD_BYTES: u64 = 256 * 1024 * 1024;

/// Imports an uploaded export: the receipt of the run (none when the file held no row). The
/// body is streamed to a file of its own after the turn is taken, so a waiting upload holds no
/// memory and a large one is held once, on disk.
pub(crate) async fn import_upload(
    app: &AppState,
    tenant: siyu::platform::TenantId,
    q: UploadQuery,
    body: axum::body::Body,
) -> Result<Option<receipts::Receipt>, UploadRefused> {
    use futures_util::StreamExt;
    use tokio::io::AsyncWriteExt;
    // An upload recomputes the tenant: a few at a time per server.
    let Ok(_turn) = app.upload_turns.try_acquire() else {
        return Err(UploadRefused::Busy);
    };
    let preset_name = q.preset.clone();
    let preset = presets::preset(&q.preset).ok_or(UploadRefused::Preset(q.preset))?;
    let internal = |e: &dyn std::fmt::Display| UploadRefused::Internal(e.to_string());
    // The importer reads a file and writes its rejected rows beside it; both live in a
    // directory of this upload's own, gone when the receipt holds them.
    let dir = tempfile::tempdir().map_err(|e| internal(&e))?;
    let path = dir.path().join("upload.csv");
    let mut file = tokio::fs::File::create(&path)
        .await
        .map_err(|e| internal(&e))?;
    let (mut size, mut blank) = (0u64, true);
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| UploadRefused::Unread(e.to_string()))?;
        size += chunk.len() as u64;
        if size > MOST_UPLOAD_BYTES {
            return Err(UploadRefused::TooLarge);
        }
        blank &= chunk.iter().all(u8::is_ascii_whitespace);
        file.write_all(&chunk).await.map_err(|e| internal(&e))?;
    }
    file.flush().await.map_err(|e| internal(&e))?;
    drop(file);
    if blank {
        return Err(UploadRefused::EmptyFile);
    }
    let mut opts = ImportOptions::new(preset);
    opts.channel = q.channel.filter(|c| !c.trim().is_empty());
    opts.store_id = q.store.filter(|s| !s.trim().is_empty());
    opts.status_map = status_map::load(&app.db, tenant)
        .await
        .map_err(|e| internal(&e))?;
    opts.display_name = Some(
        q.name
            .map(|n| n.chars().filter(|c| !c.is_control()).take(120).collect())
            .filter(|n: &String| !n.trim().is_empty())
            .unwrap_or_else(|| format!("{preset_name}.csv")),
    );
    let summary = import_file(&app.db, &app.cipher, tenant, &path, &opts, None)
        .await
        .map_err(|e| match e {
            // What is wrong with the file is the sender's to mend; the rest is ours.
            ImportError::Empty(_) => UploadRefused::EmptyFile,
            ImportError::MissingColumn {
                field,
                wanted,
                preset,
                ..
            } => UploadRefused::MissingColumn {
                field,
                wanted,
                preset,
            },
            ImportError::Header(_, why) => UploadRefused::Header(why),
            ImportError::Io(..) | ImportError::Store(..) => internal(&e),
        })?;
    if summary.imported + summary.updated > 0 {
        siyu::workflows::import_finished(&app.db, tenant, now_ms())
            .await
            .map_err(|e| internal(&e))?;
    }
    match summary.receipt {
        Some(id) => receipts::get(&app.db, tenant, id)
            .await
            .map_err(|e| internal(&e)),
        None => Ok(None),
    }
}

/// `POST /api/v1/import/orders?preset=tmall`: the body is an export file as the platform wrote
/// it (CSV, UTF-8 or GB18030). Answers the run's receipt.
pub(crate) async fn upload_orders(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Query(q): Query<UploadQuery>,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    let receipt = import_upload(&app, caller.tenant_id, q, body).await?;
    Ok((StatusCode::CREATED, Json(json!({"receipt": receipt}))).into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct RunsQuery {
    #[serde(default)]
    limit: Option<i64>,
}

/// `GET /api/v1/import/runs`: the latest receipts, newest first.
pub(crate) async fn runs(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Query(q): Query<RunsQuery>,
) -> Result<Response, ApiError> {
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    let runs = receipts::list(&app.db, caller.tenant_id, limit).await?;
    Ok(Json(json!({"runs": runs})).into_response())
}

/// `GET /api/v1/import/runs/{id}`.
pub(crate) async fn run(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = path_id("run", &id)?;
    let run = receipts::get(&app.db, caller.tenant_id, id)
        .await?
        .ok_or_else(|| no_run(id))?;
    Ok(Json(run).into_response())
}

/// `GET /api/v1/import/runs/{id}/rejected.csv`: every rejected row with its line, column and
/// reason, then the row as it was.
pub(crate) async fn rejected_rows(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    // The rows are as the export wrote them, phones and names included.
    if !caller.role.may_see_phone() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "role {} may not see customers' phones",
                caller.role.as_str()
            ),
        ));
    }
    let id = path_id("run", &id)?;
    let text = receipts::rejected_file(&app.db, &app.cipher, caller.tenant_id, id)
        .await?
        .ok_or_else(|| no_run(id))?
        .unwrap_or_default();
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    Ok(csv_response(
        &format!("import-{id}-rejected"),
        text.as_bytes().to_vec(),
    ))
}

fn no_run(id: i64) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no import run {id}"),
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LinkInput {
    channel: String,
    order_no: String,
    customer_id: CustomerId,
}

/// `POST /api/v1/orders/link`: a customer quoted an order whose buyer was not identified; the
/// order (and its unlinked buyer) becomes theirs.
pub(crate) async fn link_order(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    body: Result<Json<LinkInput>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    let l = json_body(body)?;
    let tenant = caller.tenant_id;
    let customer = live_customer(&app, tenant, l.customer_id).await?;
    let now = now_ms();
    let unlinked =
        buyer_link::link_order(&app.db, tenant, &l.channel, &l.order_no, customer, now).await?;
    let keys = [(l.channel.clone(), l.order_no.clone())];
    siyu::workflows::orders_stored(
        &app.db,
        &app.audiences,
        siyu::workflows::OrdersStored {
            tenant,
            orders: &keys,
            buyers: &[unlinked, customer],
            now,
        },
    )
    .await
    .map_err(ApiError::internal)?;
    Ok(Json(json!({"customer_id": customer, "merged_customer_id": unlinked})).into_response())
}
