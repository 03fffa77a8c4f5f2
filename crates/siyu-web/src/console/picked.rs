//! The people a console page picked — a bar of the RFM or lifecycle chart, the customer list's
//! filters — saved as a segment with a snapshot, or given (or relieved of) a manual tag, in one
//! click. Each resolves its choice to a segment rule and reads the people from the audience index.

use axum::Form;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;

use crate::AppState;
use crate::api::{ApiError, actor};
use crate::console::ConsoleUser;
use crate::console::segments::need_write;
use siyu::know::rfm::{ALL_CLASSES, ALL_STAGES};
use siyu::know::rule::Rule;
use siyu::know::{segments, tags};
use siyu::platform::clock::{format_local, now_ms};

#[derive(Deserialize)]
pub(crate) struct BarForm {
    /// `class` (an RFM class) or `stage` (a lifecycle stage).
    kind: String,
    key: String,
    #[serde(default)]
    label: String,
}

/// [`bar_to_segment`]'s work; a refusal as the API's error, which the handler shows as a page.
async fn bar_to_segment_or_refusal(
    app: AppState,
    u: &ConsoleUser,
    Form(f): Form<BarForm>,
) -> Result<Response, ApiError> {
    need_write(u)?;
    let rule_json = match f.kind.as_str() {
        "class" => json!({"rfm": {"class": [f.key]}}),
        "stage" => json!({"stage": [f.key]}),
        _ => return Err(ApiError::bad_request("kind: class or stage")),
    };
    let rule: Rule = serde_json::from_value(rule_json)
        .map_err(|e| ApiError::bad_request(format!("key: {e}")))?;
    save_as_segment(&app, u, &f.label, &rule).await
}

/// The people a rule names saved as a segment with a snapshot at once, named by `label` and the
/// minute (so the same choice taken again is a segment of its own); the segment's page next.
async fn save_as_segment(
    app: &AppState,
    u: &ConsoleUser,
    label: &str,
    rule: &Rule,
) -> Result<Response, ApiError> {
    let tenant = u.caller.tenant_id;
    let now = now_ms();
    let label: String = label.chars().filter(|c| !c.is_control()).take(30).collect();
    // To the second: two saves a minute apart or less still get names of their own.
    let name = format!(
        "{} · {}:{:02}",
        label.trim(),
        format_local(now),
        (now / 1000) % 60
    );
    let by = actor(&u.caller);
    let s = segments::create(&app.db, tenant, &name, rule, &by, now).await?;
    let members = app.audiences.members(tenant, rule).await?;
    segments::take_snapshot(&app.db, tenant, &s, &members, &by, now).await?;
    Ok(Redirect::to(&format!("/console/segments/{}", s.id)).into_response())
}

/// [`filtered_to_segment`]'s work; a refusal as the API's error, which the handler shows as a page.
async fn filtered_to_segment_or_refusal(
    app: AppState,
    u: &ConsoleUser,
    Form(f): Form<super::customers::Filters>,
) -> Result<Response, ApiError> {
    need_write(u)?;
    // Nothing chosen is not "everyone": the list's save needs a filter.
    if !f.any() {
        return Err(ApiError::bad_request(
            "filter: choose a tag, a stage, an RFM class, a channel or a tier",
        ));
    }
    let tenant = u.caller.tenant_id;
    let mut label = Vec::new();
    if !f.tag.is_empty() {
        let id: i64 = f
            .tag
            .parse()
            .map_err(|_| ApiError::bad_request(format!("tag: {:?} is not a tag id", f.tag)))?;
        // The brand's own tag only: a rule naming another's would stay empty for ever.
        let t = tags::get(&app.db, tenant, id)
            .await
            .map_err(|_| ApiError::bad_request(format!("tag: {id} is not a tag of this brand")))?;
        label.push(t.name);
    }
    let zh = u.lang == crate::i18n::Lang::Zh;
    if let Some(st) = ALL_STAGES.iter().find(|x| x.as_str() == f.stage) {
        label.push(if zh { st.zh() } else { st.en() }.to_owned());
    }
    if let Some(c) = ALL_CLASSES.iter().find(|x| x.as_str() == f.class) {
        label.push(if zh { c.zh() } else { c.en() }.to_owned());
    }
    if !f.channel.is_empty() {
        label.push(crate::i18n::channel_name(u.lang, &f.channel));
    }
    if !f.tier.is_empty() {
        label.push(f.tier.clone());
    }
    let rule = f
        .rule()
        .map_err(|e| ApiError::bad_request(format!("filter: {e}")))?;
    save_as_segment(&app, u, &label.join(" · "), &rule).await
}

#[derive(Deserialize)]
pub(crate) struct BatchTagForm {
    #[serde(flatten)]
    filters: super::customers::Filters,
    /// The manual tag to put on (or take off) everyone the filters match.
    #[serde(default)]
    apply_tag: String,
    /// `add` or `remove`.
    #[serde(default)]
    action: String,
}

/// [`filtered_tag`]'s work; a refusal as the API's error, which the handler shows as a page.
async fn filtered_tag_or_refusal(
    app: AppState,
    u: &ConsoleUser,
    Form(b): Form<BatchTagForm>,
) -> Result<Response, ApiError> {
    need_write(u)?;
    let f = b.filters;
    if !f.any() {
        return Err(ApiError::bad_request(
            "filter: choose a tag, a stage, an RFM class, a channel or a tier",
        ));
    }
    let tenant = u.caller.tenant_id;
    let id: i64 = b
        .apply_tag
        .trim()
        .parse()
        .map_err(|_| ApiError::bad_request("apply_tag: choose a tag"))?;
    let tag = tags::get(&app.db, tenant, id).await?;
    if tag.rule.is_some() {
        return Err(ApiError::bad_request(
            "apply_tag: a rule tag follows its rule and is not put on by hand",
        ));
    }
    let rule = f
        .rule()
        .map_err(|e| ApiError::bad_request(format!("filter: {e}")))?;
    let members = app.audiences.members(tenant, &rule).await?;
    let ids: Vec<siyu::know::CustomerId> = members
        .iter()
        .map(|c| siyu::know::CustomerId::new(c.into()))
        .collect();
    let by = actor(&u.caller);
    let now = now_ms();
    let done = if b.action == "remove" {
        tags::untag_customers(&app.db, tenant, &tag, &ids, &by, now).await
    } else {
        tags::tag_customers(&app.db, tenant, &tag, &ids, &by, now).await
    };
    let changed = crate::api::know::tags::told(&app, tenant, done).await?;
    let verb = if b.action == "remove" {
        "removed"
    } else {
        "tagged"
    };
    // Back to the same filtered list, which says how many changed.
    let to = format!(
        "/console/customers?{verb}={}&tag_name={id}{}",
        changed.len(),
        f.query()
    );
    Ok(Redirect::to(&to).into_response())
}

/// A refusal as a page in the console's words: these are form posts, not the builder's JSON calls.
fn refused_page(u: &ConsoleUser, e: ApiError) -> Response {
    let zh = u.lang == crate::i18n::Lang::Zh;
    let (status, message) = match e.status() {
        axum::http::StatusCode::FORBIDDEN => (
            e.status(),
            if zh {
                "你的角色只能查看，不能保存人群或批量改标签；请找管理员或运营"
            } else {
                "Your role may not save segments or change tags"
            },
        ),
        axum::http::StatusCode::NOT_FOUND => (
            e.status(),
            if zh {
                "找不到这个标签：它可能已被删除"
            } else {
                "No such tag: it may have been deleted"
            },
        ),
        s if s.is_client_error() => (
            s,
            if zh {
                "没有可保存或改标签的客户：请先在列表上选择筛选条件，改标签时选一个人工标签（规则标签随规则变化，不能手动打）"
            } else {
                "Nothing to save or tag: choose filters on the list, and a manual tag (rule tags follow their rule)"
            },
        ),
        _ => return e.into_response(),
    };
    let mut r = crate::console::page(crate::console::MessagePage {
        tr: u.lang.tr(),
        lang: u.lang.code(),
        user: u.caller.name.clone(),
        active: "customers",
        message,
    });
    *r.status_mut() = status;
    r
}

/// `POST /console/rfm/segment`: the people behind a bar of the RFM or lifecycle chart become a
/// segment and a snapshot of it at once, ready to be sent a campaign or given coupons.
pub(crate) async fn bar_to_segment(
    State(app): State<AppState>,
    u: ConsoleUser,
    f: Form<BarForm>,
) -> Response {
    bar_to_segment_or_refusal(app, &u, f)
        .await
        .unwrap_or_else(|e| refused_page(&u, e))
}

/// `POST /console/customers/segment`: the customer list's filtered people as a segment and a
/// snapshot (to send to, to give coupons).
pub(crate) async fn filtered_to_segment(
    State(app): State<AppState>,
    u: ConsoleUser,
    f: Form<crate::console::customers::Filters>,
) -> Response {
    filtered_to_segment_or_refusal(app, &u, f)
        .await
        .unwrap_or_else(|e| refused_page(&u, e))
}

/// `POST /console/customers/tag`: a manual tag put on, or taken off, everyone the customer
/// list's filters match; the list comes back with how many changed.
pub(crate) async fn filtered_tag(
    State(app): State<AppState>,
    u: ConsoleUser,
    f: Form<BatchTagForm>,
) -> Response {
    filtered_tag_or_refusal(app, &u, f)
        .await
        .unwrap_or_else(|e| refused_page(&u, e))
}
