//! Console pages for layering: tags (create, upload a list) and segments with a builder that
//! shows the count live as conditions change (the RFM page is `console::rfm`; saving or tagging
//! the people a page picked is `console::picked`). The builder talks JSON to
//! `/console/api/…` with the session of the signed-in user.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use serde::Deserialize;
use serde_json::{Value as Json_, json};
use siyu::platform::TenantId;

use crate::AppState;
use crate::api::know::audience::{count_json, preview_json};
use crate::api::{ApiError, actor};
use crate::console::{ConsoleUser, page, server_error};
use crate::i18n::{LayerTr, Tr, channel_name, kind_name};
use siyu::know::rfm::{ALL_CLASSES, ALL_STAGES};
use siyu::know::rule::Rule;
use siyu::know::{segments, tags};
use siyu::platform::clock::{format_local, now_ms};

pub struct TagRow {
    pub id: i64,
    pub group: String,
    pub name: String,
    pub rule: bool,
    pub members: u64,
}

#[derive(Template)]
#[template(path = "console/tags.html")]
pub(crate) struct TagsPage {
    tr: &'static Tr,
    lt: &'static LayerTr,
    lang: &'static str,
    user: String,
    active: &'static str,
    rows: Vec<TagRow>,
    result: Option<String>,
    problems: Vec<String>,
    /// The list as it was typed, when the page comes back with a refusal.
    typed: String,
}

pub(crate) async fn tag_rows(app: &AppState, tenant: TenantId) -> Result<Vec<TagRow>, ApiError> {
    let list = tags::list(&app.db, tenant).await?;
    let counts = app
        .audiences
        .read(tenant, |ix| {
            list.iter()
                .map(|t| ix.tag(t.id).map_or(0, |b| b.len()))
                .collect::<Vec<u64>>()
        })
        .await?;
    Ok(list
        .into_iter()
        .zip(counts)
        .map(|(t, n)| TagRow {
            id: t.id,
            group: t.group_name,
            rule: t.rule.is_some(),
            name: t.name,
            members: n,
        })
        .collect())
}

pub(crate) async fn render_tags(
    app: &AppState,
    u: &ConsoleUser,
    result: Option<String>,
    problems: Vec<String>,
) -> Response {
    render_tags_typed(app, u, result, problems, String::new()).await
}

/// The tags page, with an uploaded list put back in its box.
async fn render_tags_typed(
    app: &AppState,
    u: &ConsoleUser,
    result: Option<String>,
    problems: Vec<String>,
    typed: String,
) -> Response {
    match tag_rows(app, u.caller.tenant_id).await {
        Ok(rows) => page(TagsPage {
            tr: u.lang.tr(),
            lt: u.lang.lt(),
            lang: u.lang.code(),
            user: u.caller.name.clone(),
            active: "tags",
            rows,
            result,
            problems,
            typed,
        }),
        Err(e) => e.into_response(),
    }
}

/// A role that may only read is shown the page again with the reason, and a 403.
pub(crate) async fn forbidden(app: &AppState, u: &ConsoleUser) -> Response {
    let mut r = render_tags(app, u, None, vec![u.lang.lt().read_only.to_owned()]).await;
    *r.status_mut() = StatusCode::FORBIDDEN;
    r
}

pub(crate) async fn tags_page(State(app): State<AppState>, u: ConsoleUser) -> Response {
    render_tags(&app, &u, None, Vec::new()).await
}

#[derive(Deserialize)]
pub(crate) struct NewTagForm {
    group: String,
    name: String,
}

pub(crate) async fn create_tag(
    State(app): State<AppState>,
    u: ConsoleUser,
    Form(f): Form<NewTagForm>,
) -> Response {
    if !u.caller.role.may_write() {
        return forbidden(&app, &u).await;
    }
    match tags::create(
        &app.db,
        u.caller.tenant_id,
        &f.group,
        &f.name,
        None,
        now_ms(),
    )
    .await
    {
        Ok(_) => Redirect::to("/console/tags").into_response(),
        Err(e) => render_tags(&app, &u, None, vec![e.to_string()]).await,
    }
}

#[derive(Deserialize)]
pub(crate) struct UploadForm {
    tag: i64,
    list: String,
}

pub(crate) async fn upload_list(
    State(app): State<AppState>,
    u: ConsoleUser,
    Form(f): Form<UploadForm>,
) -> Response {
    if !u.caller.role.may_write() {
        return forbidden(&app, &u).await;
    }
    let tenant = u.caller.tenant_id;
    let lt = u.lang.lt();
    let run = async {
        let tag = tags::get(&app.db, tenant, f.tag).await?;
        let (ids, errors) = match tags::resolve_list(&app.db, &app.cipher, tenant, &f.list).await {
            Err(tags::TagError::Invalid { field: "list", .. }) => {
                return Ok(Err((
                    StatusCode::UNPROCESSABLE_ENTITY,
                    lt.list_too_long.to_owned(),
                )));
            }
            r => r?,
        };
        let source = format!("upload:{}", actor(&u.caller));
        let tagged = tags::tag_customers(&app.db, tenant, &tag, &ids, &source, now_ms()).await;
        // A stop part-way is told here, in the page's language, with what was done before it.
        let done = match &tagged {
            Err(tags::TagError::Stopped { done, .. }) => Some(done.len()),
            _ => None,
        };
        match (
            crate::api::know::tags::told(&app, tenant, tagged).await,
            done,
        ) {
            (Ok(added), _) => Ok(Ok((tag, added.len(), errors))),
            (Err(e), Some(n)) => {
                tracing::error!(error = %e.message(), tenant = %tenant, "a console tag upload stopped part-way");
                Ok(Err((e.status(), format!("{} {n}", lt.upload_stopped))))
            }
            (Err(e), None) => Err(e),
        }
    };
    let refused = |status: StatusCode, problem: String| {
        let (app, u, typed) = (&app, &u, f.list.clone());
        async move {
            let mut r = render_tags_typed(app, u, None, vec![problem], typed).await;
            *r.status_mut() = status;
            r
        }
    };
    match run.await {
        Ok(Err((status, problem))) => refused(status, problem).await,
        Ok(Ok((tag, n, errors))) => {
            let result = format!("{} {}/{}: {n}", lt.tagged, tag.group_name, tag.name);
            let problems = errors
                .into_iter()
                .map(|e| {
                    format!(
                        "{} {}: {} ({})",
                        lt.not_found_lines, e.line, e.value, e.reason
                    )
                })
                .collect();
            render_tags(&app, &u, Some(result), problems).await
        }
        // A failure of the server says so in both languages; a refusal is shown on the page,
        // with the list put back.
        Err(e) if e.status().is_server_error() => server_error(e.message()),
        Err(e) if e.status() == StatusCode::NOT_FOUND => {
            refused(e.status(), lt.tag_gone.to_owned()).await
        }
        Err(e) => refused(e.status(), e.message().to_owned()).await,
    }
}

pub struct SegmentListRow {
    pub id: i64,
    pub name: String,
    pub count: String,
    pub created_by: String,
    pub updated: String,
}

#[derive(Template)]
#[template(path = "console/segments.html")]
pub(crate) struct SegmentsPage {
    tr: &'static Tr,
    lt: &'static LayerTr,
    lang: &'static str,
    user: String,
    active: &'static str,
    rows: Vec<SegmentListRow>,
}

pub(crate) async fn segments_page(State(app): State<AppState>, u: ConsoleUser) -> Response {
    let tenant = u.caller.tenant_id;
    let list = match segments::list(&app.db, tenant).await {
        Ok(l) => l,
        Err(e) => return server_error(e),
    };
    let mut rows = Vec::new();
    for s in list {
        let count = match s.rule() {
            Ok(r) => match app.audiences.count(tenant, &r).await {
                Ok(n) => n.to_string(),
                Err(e) => return server_error(e),
            },
            Err(_) => "-".into(),
        };
        rows.push(SegmentListRow {
            id: s.id,
            name: s.name,
            count,
            created_by: crate::i18n::actor_name(u.lang, &s.created_by),
            updated: format_local(s.updated_at),
        });
    }
    page(SegmentsPage {
        tr: u.lang.tr(),
        lt: u.lang.lt(),
        lang: u.lang.code(),
        user: u.caller.name.clone(),
        active: "segments",
        rows,
    })
}

pub struct SnapshotView {
    pub id: i64,
    pub size: i64,
    pub taken_by: String,
    pub taken_at: String,
}

#[derive(Template)]
#[template(path = "console/segment.html")]
pub(crate) struct SegmentPage {
    tr: &'static Tr,
    lt: &'static LayerTr,
    lang: &'static str,
    user: String,
    active: &'static str,
    segment_id: i64,
    name: String,
    rule_json: String,
    /// Choices and labels for the builder, as JSON.
    builder_json: String,
    snapshots: Vec<SnapshotView>,
}

/// What the builder offers: tags, channels, classes, stages, identity kinds, with labels.
pub(crate) async fn builder_options(app: &AppState, u: &ConsoleUser) -> Result<Json_, ApiError> {
    let tenant = u.caller.tenant_id;
    let lang = u.lang;
    let zh = lang.code() == "zh-CN";
    let tag_list: Vec<Json_> = tags::list(&app.db, tenant)
        .await?
        .into_iter()
        .map(|t| json!({"value": t.id, "label": format!("{}/{}", t.group_name, t.name)}))
        .collect();
    let channels: Vec<(String,)> = app
        .db
        .fetch_all(
            &siyu::platform::db::sql(
                "SELECT DISTINCT channel FROM orders WHERE tenant_id = $1 ORDER BY channel",
            )
            .bind(tenant),
        )
        .await?;
    let event_types: Vec<(String,)> = app
        .db
        .fetch_all(
            &siyu::platform::db::sql(
                "SELECT DISTINCT type FROM events WHERE tenant_id = $1 ORDER BY type LIMIT 50",
            )
            .bind(tenant),
        )
        .await?;
    // Categories, SKUs and tiers from the brand's own data, the most bought first, read from
    // the audience index (in memory) rather than by scanning order lines on every page.
    let [categories, skus, tiers] = app
        .audiences
        .read(tenant, |ix| ix.bought_values(500))
        .await
        .map_err(ApiError::from)?;
    let picks = |v: Vec<(String, u64)>| -> Vec<Json_> {
        v.into_iter()
            .map(|(k, n)| json!({"value": k, "label": format!("{k}（{n}）")}))
            .collect()
    };
    let kinds: Vec<Json_> = ["external_userid", "member_no", "phone", "unionid"]
        .iter()
        .map(|k| json!({"value": k, "label": kind_name(lang, k)}))
        .collect();
    let l = |zh_s: &str, en_s: &str| if zh { zh_s.to_owned() } else { en_s.to_owned() };
    // Apart from the rest: one json! of both would pass the macro's recursion limit.
    let labels = json!({
        "tag": l("有标签", "Has tag"),
        "no_tag": l("无标签", "Lacks tag"),
        "channel": l("购买渠道", "Bought in channel"),
        "stage": l("生命周期", "Lifecycle stage"),
        "rfm": l("RFM 分类", "RFM class"),
        "order_count": l("订单数", "Orders"),
        "spend": l("累计消费（元）", "Spend (yuan)"),
        "page_view": l("浏览页面", "Page view"),
        "raw": l("规则原文", "Rule text"),
        "aov": l("客单价（元）", "AOV (yuan)"),
        "last_order_days": l("距最近购买（天）", "Days since last purchase"),
        "channel_orders": l("某渠道的购买", "Purchases on a channel"),
        "all_of": l("组内满足全部", "All of the group"),
        "any_of": l("组内满足任一", "Any of the group"),
        "add_condition": l("添加条件", "Add condition"),
        "add_group": l("添加条件组", "Add a group"),
        "event": l("近 N 天行为", "Event in the last N days"),
        "no_event": l("近 N 天未发生", "No event in the last N days"),
        "attr": l("属性等于", "Attribute equals"),
        "attr_range": l("属性数值介于", "Attribute between"),
        "attr_exists": l("有此属性", "Has attribute"),
        "rfm_score": l("RFM 分数（1–5）", "RFM score (1–5)"),
        "rfm_r": l("R 近度", "R recency"),
        "rfm_f": l("F 频度", "F frequency"),
        "rfm_m": l("M 金额", "M monetary"),
        "category": l("买过品类", "Bought category"),
        "sku": l("买过商品（SKU）", "Bought SKU"),
        "tier": l("会员等级", "Member tier"),
        "identity": l("拥有身份", "Has identity"),
        "min": l("最小", "min"),
        "max": l("最大", "max"),
        "days": l("天数", "days"),
        "times": l("至少次数", "at least times"),
        "name": l("属性名", "name"),
        "value": l("值", "value"),
        "not": l("取反", "not"),
        "remove": l("删除", "remove"),
        "saved": l("已保存", "Saved"),
        "error": l("错误", "Error"),
    });
    Ok(json!({
        "tags": tag_list,
        "channels": channels.into_iter().map(|(c,)| json!({"value": c, "label": channel_name(lang, &c)})).collect::<Vec<_>>(),
        "classes": ALL_CLASSES.iter().map(|c| json!({"value": c.as_str(), "label": if zh { c.zh() } else { c.en() }})).collect::<Vec<_>>(),
        "stages": ALL_STAGES.iter().map(|s| json!({"value": s.as_str(), "label": if zh { s.zh() } else { s.en() }})).collect::<Vec<_>>(),
        "kinds": kinds,
        "categories": picks(categories),
        "skus": picks(skus),
        "tiers": picks(tiers),
        "events": event_types.into_iter().map(|(t,)| json!({"value": t, "label": crate::i18n::event_name(lang, &t)})).collect::<Vec<_>>(),
        "labels": labels,
    }))
}

/// A saved rule as the builder reads it: attribute values (`eq`, `in`) as the text they are
/// compared as, so that a number the browser would print otherwise (`100.0`, integers past
/// 2^53) is shown, and saved again, as what it matches.
fn attr_values_as_text(rule_json: &str) -> String {
    fn walk(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                if let Some(serde_json::Value::Object(a)) = m.get_mut("attr") {
                    if let Some(eq) = a.get_mut("eq")
                        && let Ok(t) = siyu::know::rule::attr_text(eq)
                    {
                        *eq = serde_json::Value::String(t);
                    }
                    if let Some(serde_json::Value::Array(vs)) = a.get_mut("in") {
                        for x in vs.iter_mut() {
                            if let Ok(t) = siyu::know::rule::attr_text(x) {
                                *x = serde_json::Value::String(t);
                            }
                        }
                    }
                }
                m.values_mut().for_each(walk);
            }
            serde_json::Value::Array(xs) => xs.iter_mut().for_each(walk),
            _ => {}
        }
    }
    match serde_json::from_str::<serde_json::Value>(rule_json) {
        Ok(mut v) => {
            walk(&mut v);
            v.to_string()
        }
        Err(_) => rule_json.to_owned(),
    }
}

#[cfg(test)]
mod attr_text_tests {
    #[test]
    fn attribute_numbers_reach_the_builder_as_the_text_they_match() {
        let r = r#"{"and":[{"attr":{"name":"n","eq":100.0}},{"not":{"attr":{"name":"id","in":[12345678901234567,true,"x"]}}},{"attr":{"name":"age","range":{"min":1}}}]}"#;
        let v: serde_json::Value =
            serde_json::from_str(&super::attr_values_as_text(r)).expect("json");
        assert_eq!(v["and"][0]["attr"]["eq"], "100.0");
        assert_eq!(
            v["and"][1]["not"]["attr"]["in"],
            serde_json::json!(["12345678901234567", "true", "x"])
        );
        // Ranges compare numbers and stay numbers.
        assert_eq!(v["and"][2]["attr"]["range"]["min"], 1);
    }
}

pub(crate) async fn render_segment(app: &AppState, u: &ConsoleUser, id: i64) -> Response {
    let tenant = u.caller.tenant_id;
    let (name, rule_json, snapshots) = if id == 0 {
        (String::new(), "{\"and\": []}".to_owned(), Vec::new())
    } else {
        let s = match segments::get(&app.db, tenant, id).await {
            Ok(s) => s,
            Err(e) => return ApiError::from(e).into_response(),
        };
        let snaps = match segments::snapshots(&app.db, tenant, id).await {
            Ok(v) => v,
            Err(e) => return server_error(e),
        };
        (
            s.name,
            attr_values_as_text(&s.rule),
            snaps
                .into_iter()
                .map(|x| SnapshotView {
                    id: x.id,
                    size: x.size,
                    taken_by: crate::i18n::actor_name(u.lang, &x.taken_by),
                    taken_at: format_local(x.taken_at),
                })
                .collect(),
        )
    };
    let options = match builder_options(app, u).await {
        Ok(o) => o,
        Err(e) => return e.into_response(),
    };
    page(SegmentPage {
        tr: u.lang.tr(),
        lt: u.lang.lt(),
        lang: u.lang.code(),
        user: u.caller.name.clone(),
        active: "segments",
        segment_id: id,
        name,
        // Inside <script>: no "<" may close the element early (names are user input).
        rule_json: rule_json.replace('<', "\\u003c"),
        builder_json: options.to_string().replace('<', "\\u003c"),
        snapshots,
    })
}

pub(crate) async fn new_segment_page(State(app): State<AppState>, u: ConsoleUser) -> Response {
    render_segment(&app, &u, 0).await
}

pub(crate) async fn segment_page(
    State(app): State<AppState>,
    u: ConsoleUser,
    Path(id): Path<i64>,
) -> Response {
    render_segment(&app, &u, id).await
}

pub(crate) async fn export_segment(
    State(app): State<AppState>,
    u: ConsoleUser,
    Path(id): Path<i64>,
) -> Response {
    let tenant = u.caller.tenant_id;
    let run = async {
        let s = segments::get(&app.db, tenant, id).await?;
        let members = app.audiences.members(tenant, &s.rule()?).await?;
        // The console always exports masked phones; full numbers go through the API with a
        // role that may see them.
        Ok::<_, ApiError>(segments::export_stream(
            app.db.clone(),
            app.cipher.clone(),
            tenant,
            members,
            false,
            match u.lang {
                crate::i18n::Lang::Zh => &segments::EXPORT_HEADER_ZH,
                crate::i18n::Lang::En => &segments::EXPORT_HEADER,
            },
        ))
    };
    match run.await {
        Ok(stream) => crate::api::csv_stream_response(&format!("segment-{id}"), stream),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
pub(crate) struct RuleBody {
    rule: Json_,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    group: Option<String>,
}

pub(crate) fn rule_of(b: &RuleBody) -> Result<Rule, ApiError> {
    Ok(Rule::from_json(&b.rule)?)
}

pub(crate) fn need_write(u: &ConsoleUser) -> Result<(), ApiError> {
    crate::api::require_write(&u.caller)
}

pub(crate) async fn api_count(
    State(app): State<AppState>,
    u: ConsoleUser,
    Json(b): Json<RuleBody>,
) -> Result<Response, ApiError> {
    let rule = rule_of(&b)?;
    Ok(Json(count_json(&app, u.caller.tenant_id, &rule).await?).into_response())
}

pub(crate) async fn api_preview(
    State(app): State<AppState>,
    u: ConsoleUser,
    Json(b): Json<RuleBody>,
) -> Result<Response, ApiError> {
    let rule = rule_of(&b)?;
    Ok(Json(preview_json(&app, &u.caller, &rule, 10, false).await?).into_response())
}

pub(crate) async fn api_save_segment(
    State(app): State<AppState>,
    u: ConsoleUser,
    Json(b): Json<RuleBody>,
) -> Result<Response, ApiError> {
    need_write(&u)?;
    let rule = rule_of(&b)?;
    let s = segments::create(
        &app.db,
        u.caller.tenant_id,
        b.name.as_deref().unwrap_or(""),
        &rule,
        &actor(&u.caller),
        now_ms(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(json!({"id": s.id}))).into_response())
}

pub(crate) async fn api_update_segment(
    State(app): State<AppState>,
    u: ConsoleUser,
    Path(id): Path<i64>,
    Json(b): Json<RuleBody>,
) -> Result<Response, ApiError> {
    need_write(&u)?;
    let rule = rule_of(&b)?;
    let s = segments::update(
        &app.db,
        u.caller.tenant_id,
        id,
        b.name.as_deref(),
        Some(&rule),
        now_ms(),
    )
    .await?;
    Ok(Json(json!({"id": s.id})).into_response())
}

pub(crate) async fn api_snapshot(
    State(app): State<AppState>,
    u: ConsoleUser,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    need_write(&u)?;
    let tenant = u.caller.tenant_id;
    let s = segments::get(&app.db, tenant, id).await?;
    let members = app.audiences.members(tenant, &s.rule()?).await?;
    let snap =
        segments::take_snapshot(&app.db, tenant, &s, &members, &actor(&u.caller), now_ms()).await?;
    Ok((StatusCode::CREATED, Json(snap)).into_response())
}

pub(crate) async fn api_rule_tag(
    State(app): State<AppState>,
    u: ConsoleUser,
    Json(b): Json<RuleBody>,
) -> Result<Response, ApiError> {
    need_write(&u)?;
    let rule = rule_of(&b)?;
    let t = tags::create(
        &app.db,
        u.caller.tenant_id,
        b.group.as_deref().unwrap_or("规则"),
        b.name.as_deref().unwrap_or(""),
        Some(&rule),
        now_ms(),
    )
    .await?;
    app.audiences.rule_tags_changed(u.caller.tenant_id).await?;
    Ok((StatusCode::CREATED, Json(json!({"id": t.id}))).into_response())
}

/// A snapshot a form offers as the audience (a campaign, a coupon issue, a mass send): its segment,
/// size and when it was taken.
pub struct SnapshotOption {
    pub id: i64,
    pub label: String,
}

impl SnapshotOption {
    pub(crate) fn of(s: siyu::know::segments::NamedSnapshot) -> SnapshotOption {
        SnapshotOption {
            id: s.id,
            label: format!("{} · {} · {}", s.segment, s.size, format_local(s.taken_at)),
        }
    }
}
