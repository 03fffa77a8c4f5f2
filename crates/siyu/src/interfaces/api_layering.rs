//! `/api/v1` for layering: tags, attributes, RFM, segments, counts, previews, exports and
//! snapshots. Counts come from the audience index.

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde_json::{Value as Json_, json};

use super::AppState;
use super::api::{ApiCaller, ApiError, json_body, require_write, unmask};
use crate::know::attributes::{self, AttrError};
use crate::know::audience::{AudienceError, Change};
use crate::know::customers::{list_customers, surviving_id};
use crate::know::profile;
use crate::know::rfm::{ALL_CLASSES, ALL_STAGES, LayeringSettings};
use crate::know::rule::{Rule, RuleError};
use crate::know::segments::{self, SegmentError, SegmentRow};
use crate::know::tags::{self, TagError};
use crate::platform::access::Caller;
use crate::platform::clock::now_ms;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/tags", get(list_tags).post(create_tag))
        .route("/api/v1/tags/{id}", axum::routing::delete(delete_tag))
        .route(
            "/api/v1/tags/{id}/customers",
            post(tag_customers).delete(untag_customers),
        )
        .route("/api/v1/customers/{id}/attributes", put(put_attributes))
        .route("/api/v1/customers/{id}/tags", get(customer_tags))
        .route("/api/v1/rfm", get(rfm))
        .route("/api/v1/rfm/settings", put(put_rfm_settings))
        .route("/api/v1/audience/count", post(count_rule))
        .route("/api/v1/audience/preview", post(preview_rule))
        .route("/api/v1/segments", get(list_segments).post(create_segment))
        .route(
            "/api/v1/segments/{id}",
            get(get_segment).put(update_segment).delete(delete_segment),
        )
        .route("/api/v1/segments/{id}/preview", get(preview_segment))
        .route("/api/v1/segments/{id}/export", get(export_segment))
        .route(
            "/api/v1/segments/{id}/snapshots",
            get(list_snapshots).post(take_snapshot),
        )
        .route(
            "/api/v1/segments/{id}/snapshots/{snapshot}",
            get(snapshot_members),
        )
}

impl From<RuleError> for ApiError {
    fn from(e: RuleError) -> Self {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_rule",
            e.to_string(),
        )
    }
}

impl From<TagError> for ApiError {
    fn from(e: TagError) -> Self {
        match e {
            TagError::NotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", e.to_string())
            }
            TagError::Exists { .. } => ApiError::new(StatusCode::CONFLICT, "exists", e.to_string()),
            TagError::Rule(r) => r.into(),
            TagError::Invalid { .. } => ApiError::bad_request(e.to_string()),
            TagError::Db(d) => d.into(),
        }
    }
}

impl From<SegmentError> for ApiError {
    fn from(e: SegmentError) -> Self {
        match e {
            SegmentError::NotFound(_) | SegmentError::SnapshotNotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", e.to_string())
            }
            SegmentError::Exists(_) => ApiError::new(StatusCode::CONFLICT, "exists", e.to_string()),
            SegmentError::Rule(r) => r.into(),
            SegmentError::Name(_) => ApiError::bad_request(e.to_string()),
            SegmentError::Db(d) => d.into(),
        }
    }
}

impl From<AudienceError> for ApiError {
    fn from(e: AudienceError) -> Self {
        match e {
            AudienceError::Db(d) => d.into(),
            AudienceError::Unavailable(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                e.to_string(),
            ),
        }
    }
}

impl From<AttrError> for ApiError {
    fn from(e: AttrError) -> Self {
        match e {
            AttrError::Invalid(_) => ApiError::bad_request(e.to_string()),
            AttrError::Db(d) => d.into(),
        }
    }
}

fn parse_id(what: &str, s: &str) -> Result<i64, ApiError> {
    s.parse()
        .map_err(|_| ApiError::bad_request(format!("{what} {s:?} is not a number")))
}

/// Who did it, for history and audit: `api:<key name>` or `console:<user>`.
pub fn actor(c: &Caller) -> String {
    match c.user_id {
        Some(_) => format!("console:{}", c.name),
        None => format!("api:{}", c.name),
    }
}

/// `GET /api/v1/tags`: every tag with its member count.
async fn list_tags(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
) -> Result<Response, ApiError> {
    let list = tags::list(&app.db, caller.tenant_id).await?;
    let counts = app
        .audiences
        .read(caller.tenant_id, |ix| {
            list.iter()
                .map(|t| ix.tag(t.id).map_or(0, |b| b.len()))
                .collect::<Vec<u64>>()
        })
        .await?;
    let out: Vec<Json_> = list
        .iter()
        .zip(counts)
        .map(|(t, n)| {
            json!({"id": t.id, "group": t.group_name, "name": t.name, "rule": t.rule_json(),
                   "customers": n, "created_at": t.created_at})
        })
        .collect();
    Ok(Json(json!({"tags": out})).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTag {
    #[serde(default)]
    group: String,
    name: String,
    rule: Option<Json_>,
}

/// `POST /api/v1/tags`: a manual tag, or with `rule` a rule tag.
async fn create_tag(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    body: Result<Json<NewTag>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    let t = json_body(body)?;
    let rule = t.rule.as_ref().map(Rule::from_json).transpose()?;
    let tag = tags::create(
        &app.db,
        caller.tenant_id,
        &t.group,
        &t.name,
        rule.as_ref(),
        now_ms(),
    )
    .await?;
    if rule.is_some() {
        app.audiences.rule_tags_changed(caller.tenant_id).await?;
    }
    let n = app
        .audiences
        .read(caller.tenant_id, |ix| ix.tag(tag.id).map_or(0, |b| b.len()))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": tag.id, "group": tag.group_name, "name": tag.name, "rule": tag.rule_json(), "customers": n})),
    )
        .into_response())
}

async fn delete_tag(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    let id = parse_id("tag id", &id)?;
    let was_rule = tags::get(&app.db, caller.tenant_id, id)
        .await?
        .rule
        .is_some();
    let members = tags::delete(&app.db, caller.tenant_id, id).await?;
    if was_rule {
        app.audiences.rule_tags_changed(caller.tenant_id).await?;
    }
    app.audiences
        .tags_changed(caller.tenant_id, &members)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TagTargets {
    #[serde(default)]
    customer_ids: Vec<i64>,
    /// An uploaded list: one phone, `#id` or `kind:value` per line.
    #[serde(default)]
    list: Option<String>,
}

/// Resolves ids (following merges) and list lines to customers; what names no one is reported.
async fn targets(
    app: &AppState,
    tenant: i64,
    t: &TagTargets,
) -> Result<(Vec<i64>, Vec<Json_>), ApiError> {
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for (i, id) in t.customer_ids.iter().enumerate() {
        match surviving_id(&app.db, tenant, *id).await? {
            Some(s) => found.push(s),
            None => missing
                .push(json!({"index": i, "value": id.to_string(), "reason": "no such customer"})),
        }
    }
    if let Some(list) = &t.list {
        let (ids, errors) = tags::resolve_list(&app.db, &app.cipher, tenant, list).await?;
        found.extend(ids);
        missing.extend(
            errors
                .into_iter()
                .map(|e| json!({"line": e.line, "value": e.value, "reason": e.reason})),
        );
    }
    found.sort_unstable();
    found.dedup();
    Ok((found, missing))
}

/// `POST /api/v1/tags/{id}/customers`: tags customers by id or by an uploaded list.
async fn tag_customers(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
    body: Result<Json<TagTargets>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    let t = json_body(body)?;
    let tag = tags::get(&app.db, caller.tenant_id, parse_id("tag id", &id)?).await?;
    let (ids, missing) = targets(&app, caller.tenant_id, &t).await?;
    let source = if t.list.is_some() {
        format!("upload:{}", actor(&caller))
    } else {
        actor(&caller)
    };
    let added =
        tags::tag_customers(&app.db, caller.tenant_id, &tag, &ids, &source, now_ms()).await?;
    app.audiences.tags_changed(caller.tenant_id, &added).await?;
    Ok(Json(
        json!({"tagged": added.len(), "already": ids.len() - added.len(), "not_found": missing}),
    )
    .into_response())
}

/// `DELETE /api/v1/tags/{id}/customers`: removes a manual tag from customers.
async fn untag_customers(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
    body: Result<Json<TagTargets>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    let t = json_body(body)?;
    let tag = tags::get(&app.db, caller.tenant_id, parse_id("tag id", &id)?).await?;
    let (ids, missing) = targets(&app, caller.tenant_id, &t).await?;
    let removed = tags::untag_customers(
        &app.db,
        caller.tenant_id,
        &tag,
        &ids,
        &actor(&caller),
        now_ms(),
    )
    .await?;
    app.audiences
        .tags_changed(caller.tenant_id, &removed)
        .await?;
    Ok(Json(json!({"untagged": removed.len(), "not_found": missing})).into_response())
}

/// `PUT /api/v1/customers/{id}/attributes`: `{"city": "上海", "age": 31, "old": null}`.
async fn put_attributes(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
    body: Result<Json<serde_json::Map<String, Json_>>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    let attrs = json_body(body)?;
    let id = parse_id("customer id", &id)?;
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
async fn customer_tags(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_id("customer id", &id)?;
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

/// The RFM class and stage distribution as the index has it, with the model in force.
pub async fn rfm_json(app: &AppState, tenant: i64) -> Result<Json_, ApiError> {
    let (classes, stages, total) = app
        .audiences
        .read(tenant, |ix| {
            (ix.class_sizes(), ix.stage_sizes(), ix.universe.len())
        })
        .await?;
    let (settings, model) = profile::settings(&app.db, tenant).await?;
    Ok(json!({
        "customers": total,
        "classes": ALL_CLASSES.iter().zip(classes).map(|(c, n)| json!({"class": c.as_str(), "zh": c.zh(), "en": c.en(), "customers": n})).collect::<Vec<_>>(),
        "stages": ALL_STAGES.iter().zip(stages).map(|(s, n)| json!({"stage": s.as_str(), "zh": s.zh(), "en": s.en(), "customers": n})).collect::<Vec<_>>(),
        "settings": settings,
        "model": model,
    }))
}

async fn rfm(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
) -> Result<Response, ApiError> {
    Ok(Json(rfm_json(&app, caller.tenant_id).await?).into_response())
}

/// `PUT /api/v1/rfm/settings`: window, cut points and stage days; recomputes everyone.
async fn put_rfm_settings(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    body: Result<Json<LayeringSettings>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    let s = json_body(body)?;
    s.check().map_err(ApiError::bad_request)?;
    profile::save_settings(&app.db, caller.tenant_id, &s, now_ms()).await?;
    app.audiences.rebuild(caller.tenant_id).await?;
    Ok(Json(rfm_json(&app, caller.tenant_id).await?).into_response())
}

#[derive(Debug, Deserialize)]
struct RuleBody {
    rule: Json_,
    #[serde(default)]
    limit: Option<usize>,
}

fn parse_rule_body(
    body: Result<Json<RuleBody>, axum::extract::rejection::JsonRejection>,
) -> Result<(Rule, usize), ApiError> {
    let b = json_body(body)?;
    Ok((
        Rule::from_json(&b.rule)?,
        b.limit.unwrap_or(20).clamp(1, 200),
    ))
}

/// `POST /api/v1/audience/count`: `{"rule": …}` → `{"count": n, "micros": t}`.
async fn count_rule(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    body: Result<Json<RuleBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let (rule, _) = parse_rule_body(body)?;
    Ok(Json(count_json(&app, caller.tenant_id, &rule).await?).into_response())
}

pub async fn count_json(app: &AppState, tenant: i64, rule: &Rule) -> Result<Json_, ApiError> {
    let now = now_ms();
    let (count, micros, total) = app
        .audiences
        .read(tenant, |ix| {
            let t = std::time::Instant::now();
            let n = ix.query(now).count(rule);
            (n, t.elapsed().as_micros() as u64, ix.universe.len())
        })
        .await?;
    Ok(json!({"count": count, "customers": total, "micros": micros}))
}

/// A sample spread evenly over the members, with figures (phones masked unless allowed).
pub async fn preview_json(
    app: &AppState,
    caller: &Caller,
    rule: &Rule,
    limit: usize,
    unmask: bool,
) -> Result<Json_, ApiError> {
    let members = app.audiences.members(caller.tenant_id, rule).await?;
    let n = members.len();
    let step = (n / limit as u64).max(1);
    let ids: Vec<i64> = (0..n.min(limit as u64))
        .filter_map(|i| members.select((i * step) as u32))
        .map(i64::from)
        .collect();
    let page = list_customers(
        &app.db,
        &app.cipher,
        caller.tenant_id,
        1,
        200,
        Some(&ids),
        unmask,
    )
    .await?;
    Ok(json!({"count": n, "sample": page.customers}))
}

async fn preview_rule(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    body: Result<Json<RuleBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let (rule, limit) = parse_rule_body(body)?;
    Ok(Json(preview_json(&app, &caller, &rule, limit, false).await?).into_response())
}

fn segment_json(s: &SegmentRow, count: Option<u64>) -> Json_ {
    json!({"id": s.id, "name": s.name, "rule": serde_json::from_str::<Json_>(&s.rule).unwrap_or(Json_::Null),
           "count": count, "created_by": s.created_by, "created_at": s.created_at, "updated_at": s.updated_at})
}

async fn segment_count(
    app: &AppState,
    tenant: i64,
    s: &SegmentRow,
) -> Result<Option<u64>, ApiError> {
    Ok(match s.rule() {
        Ok(r) => Some(app.audiences.count(tenant, &r).await?),
        Err(_) => None,
    })
}

/// `GET /api/v1/segments`: saved segments with live counts.
async fn list_segments(
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
struct SegmentBody {
    name: Option<String>,
    rule: Option<Json_>,
}

async fn create_segment(
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

async fn get_segment(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let s = segments::get(&app.db, caller.tenant_id, parse_id("segment id", &id)?).await?;
    let n = segment_count(&app, caller.tenant_id, &s).await?;
    Ok(Json(segment_json(&s, n)).into_response())
}

async fn update_segment(
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

async fn delete_segment(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    segments::delete(&app.db, caller.tenant_id, parse_id("segment id", &id)?).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Debug, Deserialize)]
struct PreviewQuery {
    limit: Option<usize>,
    unmask: Option<bool>,
}

async fn preview_segment(
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

/// A CSV download; the API and the console export with it.
pub(crate) fn csv_response(name: &str, body: Vec<u8>) -> Response {
    // A BOM so that Excel opens UTF-8 Chinese correctly.
    let mut out = Vec::with_capacity(body.len() + 3);
    out.extend_from_slice(b"\xEF\xBB\xBF");
    out.extend(body);
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}.csv\""),
            ),
        ],
        out,
    )
        .into_response()
}

/// `GET /api/v1/segments/{id}/export[?unmask=true]`: members as CSV.
async fn export_segment(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
    Query(q): Query<PreviewQuery>,
) -> Result<Response, ApiError> {
    let unmask = unmask(&caller, q.unmask)?;
    let s = segments::get(&app.db, caller.tenant_id, parse_id("segment id", &id)?).await?;
    let members = app.audiences.members(caller.tenant_id, &s.rule()?).await?;
    let body =
        segments::export_csv(&app.db, &app.cipher, caller.tenant_id, &members, unmask).await?;
    Ok(csv_response(&format!("segment-{}", s.id), body))
}

async fn take_snapshot(
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

async fn list_snapshots(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let s = segments::get(&app.db, caller.tenant_id, parse_id("segment id", &id)?).await?;
    let list = segments::snapshots(&app.db, caller.tenant_id, s.id).await?;
    Ok(Json(json!({"snapshots": list})).into_response())
}

/// `GET /api/v1/segments/{id}/snapshots/{snapshot}`: the frozen member ids.
async fn snapshot_members(
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
