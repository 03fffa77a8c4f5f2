//! The contact policy from the console (触达规则): how many marketing messages a customer may get
//! a week on each channel, the quiet hours in the brand's time zone (messages wait, never drop),
//! and how long the same text to the same person is sent once. Every send path obeys it: SMS
//! campaigns, WeCom mass messages, journeys to come.

use askama::Template;
use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::{ConsoleUser, page, server_error};
use crate::AppState;
use crate::i18n::{Lang, Tr};
use siyu::engage::policy::{self, ContactPolicy, PolicyError};

/// What was typed, kept as typed.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct PolicyForm {
    #[serde(default)]
    pub marketing_per_week: String,
    /// `HH:MM`, the brand's local time.
    #[serde(default)]
    pub quiet_start: String,
    #[serde(default)]
    pub quiet_end: String,
    #[serde(default)]
    pub dedupe_hours: String,
}

fn hh_mm(minute: i64) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

impl PolicyForm {
    fn of(p: &ContactPolicy) -> PolicyForm {
        PolicyForm {
            marketing_per_week: p.marketing_per_week.to_string(),
            quiet_start: hh_mm(p.quiet_start_minute),
            quiet_end: hh_mm(p.quiet_end_minute),
            dedupe_hours: p.dedupe_hours.to_string(),
        }
    }
}

#[derive(Template)]
#[template(path = "console/policy.html")]
struct PolicyPage {
    tr: &'static Tr,
    lang: &'static str,
    user: String,
    active: &'static str,
    title: &'static str,
    help: &'static str,
    now_text: String,
    errors: Vec<String>,
    notice: &'static str,
    may_write: bool,
    form: PolicyForm,
    per_week_label: &'static str,
    quiet_start_label: &'static str,
    quiet_end_label: &'static str,
    dedupe_label: &'static str,
    save: &'static str,
}

/// The policy as a sentence an operator reads.
fn now_text(lang: Lang, p: &ContactPolicy) -> String {
    let offset = p.utc_offset_minutes;
    let zone = format!(
        "UTC{}{:02}:{:02}",
        if offset < 0 { '-' } else { '+' },
        offset.abs() / 60,
        offset.abs() % 60
    );
    let quiet = p.quiet_start_minute != p.quiet_end_minute;
    match (lang, quiet) {
        (Lang::Zh, true) => format!(
            "现行规则：每位客户每个渠道 7 天内最多 {} 条营销消息；{}–{} 为免打扰时段（{zone}），期间的消息等到 {} 再发，不丢弃；相同内容 {} 小时内只发一次。",
            p.marketing_per_week,
            hh_mm(p.quiet_start_minute),
            hh_mm(p.quiet_end_minute),
            hh_mm(p.quiet_end_minute),
            p.dedupe_hours
        ),
        (Lang::Zh, false) => format!(
            "现行规则：每位客户每个渠道 7 天内最多 {} 条营销消息；没有免打扰时段（{zone}）；相同内容 {} 小时内只发一次。",
            p.marketing_per_week, p.dedupe_hours
        ),
        (Lang::En, true) => format!(
            "In force: at most {} marketing messages per customer per channel in 7 days; quiet hours {}–{} ({zone}), when messages wait until {} and are never dropped; the same text once in {} hours.",
            p.marketing_per_week,
            hh_mm(p.quiet_start_minute),
            hh_mm(p.quiet_end_minute),
            hh_mm(p.quiet_end_minute),
            p.dedupe_hours
        ),
        (Lang::En, false) => format!(
            "In force: at most {} marketing messages per customer per channel in 7 days; no quiet hours ({zone}); the same text once in {} hours.",
            p.marketing_per_week, p.dedupe_hours
        ),
    }
}

async fn render(
    app: &AppState,
    u: &ConsoleUser,
    errors: Vec<String>,
    form: Option<PolicyForm>,
    notice: &'static str,
) -> Response {
    let p = match policy::load(&app.db, u.caller.tenant_id).await {
        Ok(p) => p,
        Err(e) => return server_error(e),
    };
    let zh = u.lang == Lang::Zh;
    let pick = |z: &'static str, e: &'static str| if zh { z } else { e };
    let refused = !errors.is_empty();
    let mut r = page(PolicyPage {
        tr: u.lang.tr(),
        lang: u.lang.code(),
        user: u.caller.name.clone(),
        active: "acquire",
        title: pick("触达规则", "Contact policy"),
        help: pick(
            "所有营销触达（短信召回、企微群发，以及之后的旅程）都按这里的规则发送：超过频次的不发并记为“超出频次”，免打扰时段内的消息等到时段结束再发。",
            "Every marketing send (SMS recalls, WeCom mass messages, journeys to come) follows these rules: a message over the cap is not sent and is recorded as capped; one due in quiet hours waits until they end.",
        ),
        now_text: now_text(u.lang, &p),
        errors,
        notice,
        may_write: u.caller.role.may_write(),
        form: form.unwrap_or_else(|| PolicyForm::of(&p)),
        per_week_label: pick(
            "每位客户每个渠道 7 天内最多（条）",
            "Most per customer per channel in 7 days",
        ),
        quiet_start_label: pick("免打扰开始", "Quiet from"),
        quiet_end_label: pick("免打扰结束", "Quiet until"),
        dedupe_label: pick(
            "相同内容多少小时内只发一次",
            "Same text once within (hours)",
        ),
        save: pick("保存规则", "Save"),
    });
    if refused {
        *r.status_mut() = StatusCode::BAD_REQUEST;
    }
    r
}

#[derive(Deserialize)]
pub(crate) struct PageQuery {
    #[serde(default)]
    saved: Option<String>,
}

/// `GET /console/policy`.
pub(crate) async fn policy_page(
    State(app): State<AppState>,
    u: ConsoleUser,
    Query(q): Query<PageQuery>,
) -> Response {
    let notice = match (q.saved.is_some(), u.lang) {
        (true, Lang::Zh) => "已保存：新规则对之后的每一条消息生效",
        (true, Lang::En) => "Saved: the rules apply to every message from now on",
        (false, _) => "",
    };
    render(&app, &u, Vec::new(), None, notice).await
}

/// `HH:MM` as minutes after midnight.
fn minutes(v: &str) -> Option<i64> {
    let (h, m) = v.trim().split_once(':')?;
    let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
    ((0..24).contains(&h) && (0..60).contains(&m)).then_some(h * 60 + m)
}

fn read(lang: Lang, f: &PolicyForm) -> Result<ContactPolicy, String> {
    let zh = lang == Lang::Zh;
    let whole = |v: &str, zh_label: &str, en: &str| {
        v.trim().parse::<i64>().map_err(|_| {
            if zh {
                format!("{zh_label}：「{v}」不是整数")
            } else {
                format!("{en}: {v:?} is not a whole number")
            }
        })
    };
    let time = |v: &str, zh_label: &str, en: &str| {
        minutes(v).ok_or_else(|| {
            if zh {
                format!("{zh_label}：「{v}」不是时间（如 21:00）")
            } else {
                format!("{en}: {v:?} is not a time (21:00)")
            }
        })
    };
    Ok(ContactPolicy {
        marketing_per_week: whole(&f.marketing_per_week, "每周最多", "per week")?,
        quiet_start_minute: time(&f.quiet_start, "免打扰开始", "quiet from")?,
        quiet_end_minute: time(&f.quiet_end, "免打扰结束", "quiet until")?,
        dedupe_hours: whole(&f.dedupe_hours, "相同内容去重小时数", "dedupe hours")?,
        ..ContactPolicy::default()
    })
}

fn said(lang: Lang, e: &PolicyError) -> String {
    match (lang, e) {
        (Lang::Zh, PolicyError::Invalid { field, .. }) => match *field {
            "marketing_per_week" => "每周最多：须为 0–100 条".into(),
            "dedupe_hours" => "相同内容去重小时数：须为 0–720".into(),
            "quiet_start_minute" | "quiet_end_minute" => "免打扰时段：须为一天中的时间".into(),
            f => format!("{f}：{e}"),
        },
        (_, e) => e.to_string(),
    }
}

/// `POST /console/policy`: replaces the brand's rules.
pub(crate) async fn save(
    State(app): State<AppState>,
    u: ConsoleUser,
    Form(f): Form<PolicyForm>,
) -> Response {
    if !u.caller.role.may_write() {
        let said = match u.lang {
            Lang::Zh => "你的角色只能查看触达规则；请找管理员或运营",
            Lang::En => "Your role can view but not change the contact policy",
        };
        let mut r = render(&app, &u, vec![said.into()], Some(f), "").await;
        *r.status_mut() = StatusCode::FORBIDDEN;
        return r;
    }
    let p = match read(u.lang, &f) {
        Ok(p) => p,
        Err(e) => return render(&app, &u, vec![e], Some(f), "").await,
    };
    match policy::save(&app.db, u.caller.tenant_id, &p).await {
        Ok(()) => Redirect::to("/console/policy?saved=1").into_response(),
        Err(PolicyError::Db(e)) => server_error(e),
        Err(e) => render(&app, &u, vec![said(u.lang, &e)], Some(f), "").await,
    }
}
