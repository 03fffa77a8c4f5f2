//! Tags (`know::tags`): manual, list and rule tags, and tagging customers.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value as Json_, json};
use siyu::know::CustomerId;
use siyu::platform::TenantId;

use crate::AppState;
use crate::api::{ApiCaller, ApiError, actor, json_body, parse_id, require_write};
use siyu::know::customers::surviving_ids;
use siyu::know::rule::Rule;
use siyu::know::tags;
use siyu::platform::clock::now_ms;

/// `GET /api/v1/tags`: every tag with its member count.
pub(crate) async fn list_tags(
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
pub(crate) struct NewTag {
    #[serde(default)]
    group: String,
    name: String,
    rule: Option<Json_>,
}

/// `POST /api/v1/tags`: a manual tag, or with `rule` a rule tag.
pub(crate) async fn create_tag(
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

pub(crate) async fn delete_tag(
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
pub(crate) struct TagTargets {
    #[serde(default)]
    customer_ids: Vec<CustomerId>,
    /// An uploaded list: one phone, `#id` or `kind:value` per line.
    #[serde(default)]
    list: Option<String>,
}

/// Resolves ids (following merges) and list lines to customers; what names no one is reported.
pub(crate) async fn targets(
    app: &AppState,
    tenant: TenantId,
    t: &TagTargets,
) -> Result<(Vec<CustomerId>, Vec<Json_>), ApiError> {
    tags::check_list_length("customer_ids", t.customer_ids.len())?;
    let survivors = surviving_ids(&app.db, tenant, &t.customer_ids).await?;
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for (i, id) in t.customer_ids.iter().enumerate() {
        match survivors.get(id) {
            Some(s) => found.push(*s),
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

/// Tells the audience index of the customers a tagging changed, also when it stopped part-way
/// (the chunks before the error are stored); then the outcome, a stop with how many were
/// changed before it. The index not hearing of it is logged, not answered over a tagging that
/// is stored (the next rebuild repairs the index).
pub(crate) async fn told(
    app: &AppState,
    tenant: TenantId,
    r: Result<Vec<CustomerId>, tags::TagError>,
) -> Result<Vec<CustomerId>, ApiError> {
    match r {
        Ok(changed) => {
            if let Err(ix) = app.audiences.tags_changed(tenant, &changed).await {
                tracing::error!(error = %ix, tenant = %tenant, "the audience index missed a tagging");
            }
            Ok(changed)
        }
        Err(e) => {
            if let tags::TagError::Stopped { done, .. } = &e
                && let Err(ix) = app.audiences.tags_changed(tenant, done).await
            {
                tracing::error!(error = %ix, tenant = %tenant, "the audience index missed a stopped tagging");
            }
            Err(e.into())
        }
    }
}

/// `POST /api/v1/tags/{id}/customers`: tags customers by id or by an uploaded list.
pub(crate) async fn tag_customers(
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
    let added = told(
        &app,
        caller.tenant_id,
        tags::tag_customers(&app.db, caller.tenant_id, &tag, &ids, &source, now_ms()).await,
    )
    .await?;
    Ok(Json(
        json!({"tagged": added.len(), "already": ids.len() - added.len(), "not_found": missing}),
    )
    .into_response())
}

/// `DELETE /api/v1/tags/{id}/customers`: removes a manual tag from customers.
pub(crate) async fn untag_customers(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
    body: Result<Json<TagTargets>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    let t = json_body(body)?;
    let tag = tags::get(&app.db, caller.tenant_id, parse_id("tag id", &id)?).await?;
    let (ids, missing) = targets(&app, caller.tenant_id, &t).await?;
    let removed = told(
        &app,
        caller.tenant_id,
        tags::untag_customers(
            &app.db,
            caller.tenant_id,
            &tag,
            &ids,
            &actor(&caller),
            now_ms(),
        )
        .await,
    )
    .await?;
    Ok(Json(json!({"untagged": removed.len(), "not_found": missing})).into_response())
}
