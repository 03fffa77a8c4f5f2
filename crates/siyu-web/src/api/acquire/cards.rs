//! Package-insert card batches (`acquire::cards`): create, print, report, and a card's contact.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::AppState;
use crate::api::{ApiCaller, ApiError, json_body, path_id, require_write};
use siyu::acquire::cards::{self, CardError, NewBatch};
use siyu::platform::access::Caller;
use siyu::platform::clock::now_ms;

/// `POST /api/v1/card-batches`
pub(crate) async fn create(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    b: Result<Json<NewBatch>, JsonRejection>,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    let b = json_body(b)?;
    let batch = cards::create_batch(&app.db, caller.tenant_id, &b, now_ms()).await?;
    Ok((StatusCode::CREATED, Json(json!({"batch": batch, "cards_pdf": format!("/api/v1/card-batches/{}/cards.pdf", batch.id)}))).into_response())
}

pub(crate) async fn list(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(
        json!({"batches": cards::list_batches(&app.db, caller.tenant_id).await?}),
    ))
}

/// `GET /api/v1/card-batches/{id}`: the batch and its report.
pub(crate) async fn report(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
) -> Result<Json<cards::BatchReport>, ApiError> {
    Ok(Json(
        cards::batch_report(&app.db, caller.tenant_id, path_id("card batch", &id)?).await?,
    ))
}

/// `GET /api/v1/card-batches/{id}/report.csv`
pub(crate) async fn report_csv(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = path_id("card batch", &id)?;
    let r = cards::batch_report(&app.db, caller.tenant_id, id).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"card-batch-{id}.csv\""),
            ),
        ],
        format!("\u{feff}{}", cards::batch_csv(&r)),
    )
        .into_response())
}

/// The cards of a batch as a file for the printing shop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PrintFile {
    Csv,
    Pdf,
}

/// A batch's cards as `file`, for a caller who may write: each code claims a card's coupon, so
/// the codes are bearer secrets, not for read-only roles. The API and the console both serve it.
pub(crate) async fn print_file(
    app: &AppState,
    caller: &Caller,
    raw_id: &str,
    file: PrintFile,
) -> Result<Response, ApiError> {
    require_write(caller)?;
    let id = path_id("card batch", raw_id)?;
    cards::get_batch(&app.db, caller.tenant_id, id).await?;
    let cs = cards::cards_of(&app.db, caller.tenant_id, id).await?;
    let (body, content_type, ext) = match file {
        PrintFile::Csv => (
            cards::cards_csv(&cs, &app.public_url).into_bytes(),
            "text/csv; charset=utf-8",
            "csv",
        ),
        PrintFile::Pdf => {
            let url = app.public_url.clone();
            let pdf = tokio::task::spawn_blocking(move || cards::cards_pdf(&cs, &url))
                .await
                .map_err(ApiError::internal)?
                .map_err(|e| ApiError::bad_request(e.to_string()))?;
            (pdf, "application/pdf", "pdf")
        }
    };
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"cards-{id}.{ext}\""),
            ),
        ],
        body,
    )
        .into_response())
}

/// `GET /api/v1/card-batches/{id}/cards.csv`: code, URL and variant per card.
pub(crate) async fn cards_csv(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    print_file(&app, &caller, &id, PrintFile::Csv).await
}

/// `GET /api/v1/card-batches/{id}/cards.pdf`: for the printing shop.
pub(crate) async fn cards_pdf(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    print_file(&app, &caller, &id, PrintFile::Pdf).await
}

/// `POST /api/v1/cards/{code}/contact`: the buyer added the guide (called by the WeCom side
/// with the card code it put in the contact way's `state`).
pub(crate) async fn contact(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(code): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    require_write(&caller)?;
    let (tenant, c) = cards::card(&app.db, &code).await?;
    if tenant != caller.tenant_id {
        return Err(CardError::NotFound(code).into());
    }
    let first = cards::record_contact(&app.db, tenant, c.id, now_ms()).await?;
    Ok(Json(json!({"recorded": first})))
}
