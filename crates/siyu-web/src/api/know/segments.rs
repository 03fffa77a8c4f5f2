//! Saved segments (`know::segments`): their counts, previews, exports and snapshots.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value as Json_, json};
use siyu::platform::TenantId;

use super::audience::preview_json;
use crate::AppState;
use crate::api::know::customers::unmask;
use crate::api::{
    ApiCaller, ApiError, actor, csv_stream_response, json_body, parse_id, require_write,
};
use siyu::know::rule::Rule;
use siyu::know::segments::{self, SegmentError, SegmentRow};
use siyu::platform::clock::now_ms;

pub(crate) fn segment_json(s: &SegmentRow, count: Option<u64>) -> Json_ {
    json!({"id": s.id, "name": s.name, "rule": serde_json::from_str::<Json_>(&s.rule).unwrap_or(Json_::Null),
           "count": count, "created_by": s.created_by, "created_at": s.created_at, "updated_at": s.updated_at})
}

pub(crate) async fn segment_count(
    app: &AppState,
    tenant: TenantId,
    s: &SegmentRow,
) -> Result<Option<u64>, ApiError> {
    Ok(match s.rule() {
        Ok(r) => Some(app.audiences.count(tenant, &r).await?),
        Err(_) => None,
    })
}

/// `GET /api/v1/segments`: saved segments with live counts.
pub(crate) async fn list_segments(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
) -> Result<Response, ApiError> {
    let mut out = Vec::new();
    for s in segments::list(&app.db, caller.tenant_id).await? {
        let n = segment_count(&app, caller.tenant_id, &s).await?;
        out.push(segment_json(&s, n));
    }
    Ok(Json(json!({"segments": out})).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SegmentBody {
    name: Option<String>,
    rule: Option<Json_>,
}

pub(crate) async fn create_segment(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    body: Result<Json<SegmentBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    let b = json_body(body)?;
    let name = b
        .name
        .ok_or_else(|| ApiError::bad_request("name: required"))?;
    let rule = Rule::from_json(
        b.rule
            .as_ref()
            .ok_or_else(|| ApiError::bad_request("rule: required"))?,
    )?;
    let s = segments::create(
        &app.db,
        caller.tenant_id,
        &name,
        &rule,
        &actor(&caller),
        now_ms(),
    )
    .await?;
    let n = segment_count(&app, caller.tenant_id, &s).await?;
    Ok((StatusCode::CREATED, Json(segment_json(&s, n))).into_response())
}

pub(crate) async fn get_segment(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let s = segments::get(&app.db, caller.tenant_id, parse_id("segment id", &id)?).await?;
    let n = segment_count(&app, caller.tenant_id, &s).await?;
    Ok(Json(segment_json(&s, n)).into_response())
}

pub(crate) async fn update_segment(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
    body: Result<Json<SegmentBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    let b = json_body(body)?;
    let rule = b.rule.as_ref().map(Rule::from_json).transpose()?;
    let s = segments::update(
        &app.db,
        caller.tenant_id,
        parse_id("segment id", &id)?,
        b.name.as_deref(),
        rule.as_ref(),
        now_ms(),
    )
    .await?;
    let n = segment_count(&app, caller.tenant_id, &s).await?;
    Ok(Json(segment_json(&s, n)).into_response())
}

pub(crate) async fn delete_segment(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    segments::delete(&app.db, caller.tenant_id, parse_id("segment id", &id)?).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct PreviewQuery {
    limit: Option<usize>,
    unmask: Option<bool>,
}

pub(crate) async fn preview_segment(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
    Query(q): Query<PreviewQuery>,
) -> Result<Response, ApiError> {
    let unmask = unmask(&caller, q.unmask)?;
    let s = segments::get(&app.db, caller.tenant_id, parse_id("segment id", &id)?).await?;
    let rule = s.rule()?;
    let limit = q.limit.unwrap_or(20).clamp(1, 200);
    Ok(Json(preview_json(&app, &caller, &rule, limit, unmask).await?).into_response())
}

/// `GET /api/v1/segments/{id}/export[?unmask=true]`: members as CSV.
pub(crate) async fn export_segment(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
    Query(q): Query<PreviewQuery>,
) -> Result<Response, ApiError> {
    let unmask = unmask(&caller, q.unmask)?;
    let s = segments::get(&app.db, caller.tenant_id, parse_id("segment id", &id)?).await?;
    let members = app.audiences.members(caller.tenant_id, &s.rule()?).await?;
    let stream = segments::export_stream(
        app.db.clone(),
        app.cipher.clone(),
        caller.tenant_id,
        members,
        unmask,
        &segments::EXPORT_HEADER,
    );
    Ok(csv_stream_response(&format!("segment-{}", s.id), stream))
}

pub(crate) async fn take_snapshot(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    let s = segments::get(&app.db, caller.tenant_id, parse_id("segment id", &id)?).await?;
    let members = app.audiences.members(caller.tenant_id, &s.rule()?).await?;
    let snap = segments::take_snapshot(
        &app.db,
        caller.tenant_id,
        &s,
        &members,
        &actor(&caller),
        now_ms(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(snap)).into_response())
}

pub(crate) async fn list_snapshots(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let s = segments::get(&app.db, caller.tenant_id, parse_id("segment id", &id)?).await?;
    let list = segments::snapshots(&app.db, caller.tenant_id, s.id).await?;
    Ok(Json(json!({"snapshots": list})).into_response())
}

/// `GET /api/v1/segments/{id}/snapshots/{snapshot}`: the frozen member ids.
pub(crate) async fn snapshot_members(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path((id, snapshot)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let seg = parse_id("segment id", &id)?;
    let (row, members) = segments::snapshot_members(
        &app.db,
        caller.tenant_id,
        parse_id("snapshot id", &snapshot)?,
    )
    .await?;
    if row.segment_id != seg {
        return Err(SegmentError::SnapshotNotFound(row.id).into());
    }
    let ids: Vec<u32> = members.iter().collect();
    Ok(Json(json!({"snapshot": row, "customer_ids": ids})).into_response())
}
