//! The contact policy from the console (触达策略): how many marketing messages a customer may get
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
use siyu::acquire::campaigns::approval;
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
    /// The approval size as a sentence, and whether this user (an admin) may change it.
    approval_text: String,
    may_set_approval: bool,
    approval_from: String,
    approval_label: &'static str,
}

/// The policy as a sentence an operator reads, saying what the code does with 0s.
fn now_text(lang: Lang, p: &ContactPolicy) -> String {
    let offset = p.utc_offset_minutes;
    let zone = format!(
        "UTC{}{:02}:{:02}",
        if offset < 0 { '-' } else { '+' },
        offset.abs() / 60,
        offset.abs() % 60
    );
    let (start, end) = (hh_mm(p.quiet_start_minute), hh_mm(p.quiet_end_minute));
    let quiet = p.quiet_start_minute != p.quiet_end_minute;
    match lang {
        Lang::Zh => {
            let cap = match p.marketing_per_week {
                0 => "不发任何营销消息（每 7 天上限为 0）".to_owned(),
                n => format!("每位客户每个渠道 7 天内最多 {n} 条营销消息"),
            };
            let quiet = if quiet {
                format!(
                    "{start}–{end} 为免打扰时段（{zone}），期间到期的营销消息等到 {end} 再按频次和去重判断"
                )
            } else {
                format!("没有免打扰时段（{zone}）")
            };
            let dedupe = match p.dedupe_hours {
                0 => "短信不去重".to_owned(),
                h => format!("同一条短信内容 {h} 小时内对同一号码只发一次"),
            };
            format!("现行规则：{cap}；{quiet}；{dedupe}。")
        }
        Lang::En => {
            let cap = match p.marketing_per_week {
                0 => "no marketing messages at all (a cap of 0 in 7 days)".to_owned(),
                n => format!("at most {n} marketing messages per customer per channel in 7 days"),
            };
            let quiet = if quiet {
                format!(
                    "quiet hours {start}–{end} ({zone}), when marketing messages due wait until {end} and are then decided again"
                )
            } else {
                format!("no quiet hours ({zone})")
            };
            let dedupe = match p.dedupe_hours {
                0 => "SMS are not deduplicated".to_owned(),
                h => format!("the same SMS text to the same number once in {h} hours"),
            };
            format!("In force: {cap}; {quiet}; {dedupe}.")
        }
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
    let from = match approval::threshold(&app.db, u.caller.tenant_id).await {
        Ok(f) => f,
        Err(e) => return server_error(e),
    };
    let approval_text = match (from, zh) {
        (Some(n), true) => {
            format!(
                "审批：短信召回的人群达到 {n} 人时，需另一位管理员批准后才发出（企微群发不在审批之列）；每次修改记入账号页的操作日志。"
            )
        }
        (Some(n), false) => format!(
            "Approval: an SMS recall to {n} people or more goes out only when another admin approves it."
        ),
        (None, true) => {
            "审批：未设审批线，任何规模的短信召回都可直接发出（企微群发不在审批之列）。".to_owned()
        }
        (None, false) => {
            "Approval: no approval size; recalls of any size go out when launched.".to_owned()
        }
    };
    let mut r = page(PolicyPage {
        tr: u.lang.tr(),
        lang: u.lang.code(),
        user: u.caller.name.clone(),
        active: "policy",
        title: pick("触达策略", "Contact policy"),
        help: pick(
            "营销触达（短信召回、企微群发）都按频次上限和免打扰时段发送：超过频次的不发并记为“超出频次”，免打扰时段内到期的消息等到时段结束再判断。去重只管短信（服务短信也算）。开始和结束相同表示没有免打扰；到午夜请填 00:00。频次填 0 表示不发任何营销消息。",
            "Marketing sends (SMS recalls, WeCom mass messages) follow the cap and the quiet hours: a message over the cap is not sent and is recorded as capped; one due in quiet hours is decided again when they end. Deduplication applies to SMS only (service SMS too). Equal start and end: no quiet hours; midnight is 00:00. A cap of 0 sends no marketing at all.",
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
        approval_text,
        may_set_approval: u.caller.role == siyu::platform::access::Role::Admin,
        approval_from: from.map(|n| n.to_string()).unwrap_or_default(),
        approval_label: pick(
            "短信召回达到多少人需审批（空为不需要）",
            "People from which an SMS recall needs approval (empty: never)",
        ),
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
        marketing_per_week: whole(&f.marketing_per_week, "7 天内最多", "per 7 days")?,
        quiet_start_minute: time(&f.quiet_start, "免打扰开始", "quiet from")?,
        quiet_end_minute: time(&f.quiet_end, "免打扰结束", "quiet until")?,
        dedupe_hours: whole(&f.dedupe_hours, "相同内容去重小时数", "dedupe hours")?,
        ..ContactPolicy::default()
    })
}

fn said(lang: Lang, e: &PolicyError) -> String {
    match (lang, e) {
        (Lang::Zh, PolicyError::Invalid { field, .. }) => match *field {
            "marketing_per_week" => "7 天内最多：须为 0–100 条".into(),
            "dedupe_hours" => "相同内容去重小时数：须为 0–720".into(),
            "quiet_start_minute" | "quiet_end_minute" => "免打扰时段：须为一天中的时间".into(),
            _ => super::form::unworded(lang, e),
        },
        (_, e) => super::form::unworded(lang, e),
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
            Lang::Zh => "你的角色只能查看触达策略；请找管理员或运营",
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

#[derive(Deserialize)]
pub(crate) struct ApprovalForm {
    #[serde(default)]
    approval_from: String,
}

/// `POST /console/policy/approval`: the size from which a send waits for a second admin
/// (admins only: it is the check on everyone else's sends).
pub(crate) async fn save_approval(
    State(app): State<AppState>,
    u: ConsoleUser,
    Form(f): Form<ApprovalForm>,
) -> Response {
    let zh = u.lang == Lang::Zh;
    if u.caller.role != siyu::platform::access::Role::Admin {
        let said = if zh {
            "只有管理员可以设置审批线"
        } else {
            "Only an admin may set the approval size"
        };
        let mut r = render(&app, &u, vec![said.into()], None, "").await;
        *r.status_mut() = StatusCode::FORBIDDEN;
        return r;
    }
    let from = match f.approval_from.trim() {
        "" => None,
        t => match t.parse::<i64>() {
            Ok(n) if n >= 1 => Some(n),
            _ => {
                let said = if zh {
                    format!("审批线：「{t}」须为至少 1 的整数（人数），或留空")
                } else {
                    format!("approval size: {t:?} must be a whole number of at least 1, or empty")
                };
                return render(&app, &u, vec![said], None, "").await;
            }
        },
    };
    let by = crate::api::actor(&u.caller);
    match approval::set_threshold(
        &app.db,
        u.caller.tenant_id,
        from,
        &by,
        siyu::platform::clock::now_ms(),
    )
    .await
    {
        Ok(()) => Redirect::to("/console/policy?saved=1").into_response(),
        Err(e) => server_error(e),
    }
}
