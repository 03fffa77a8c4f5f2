//! Counting and previewing an audience rule (`know::audience`), without saving it.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value as Json_, json};
use siyu::know::CustomerId;
use siyu::platform::TenantId;

use crate::AppState;
use crate::api::{ApiCaller, ApiError, json_body};
use siyu::know::customers::list_customers;
use siyu::know::rule::Rule;
use siyu::platform::access::Caller;
use siyu::platform::clock::now_ms;

#[derive(Debug, Deserialize)]
pub(crate) struct RuleBody {
    rule: Json_,
    #[serde(default)]
    limit: Option<usize>,
}

pub(crate) fn parse_rule_body(
    body: Result<Json<RuleBody>, axum::extract::rejection::JsonRejection>,
) -> Result<(Rule, usize), ApiError> {
    let b = json_body(body)?;
    Ok((
        Rule::from_json(&b.rule)?,
        b.limit.unwrap_or(20).clamp(1, 200),
    ))
}

/// `POST /api/v1/audience/count`: `{"rule": …}` → `{"count": n, "micros": t}`.
pub(crate) async fn count_rule(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    body: Result<Json<RuleBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let (rule, _) = parse_rule_body(body)?;
    Ok(Json(count_json(&app, caller.tenant_id, &rule).await?).into_response())
}

pub async fn count_json(app: &AppState, tenant: TenantId, rule: &Rule) -> Result<Json_, ApiError> {
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
    let ids: Vec<CustomerId> = (0..n.min(limit as u64))
        .filter_map(|i| members.select((i * step) as u32))
        .map(|c| CustomerId::new(c.into()))
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

pub(crate) async fn preview_rule(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    body: Result<Json<RuleBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let (rule, limit) = parse_rule_body(body)?;
    Ok(Json(preview_json(&app, &caller, &rule, limit, false).await?).into_response())
}
