//! Live codes made from the console (新建渠道活码): a name, where the code is shown (a channel, a
//! store, a campaign, a card batch), the guides who take the adds (WeCom user ids all day, and up
//! to two shifts of guides on chosen weekdays between two times, each with an optional daily
//! cap), a backup guide, the welcome text and up to two welcomes for times of day, and the tags
//! each new contact gets. WeCom makes the contact way and its QR at once; the code is listed with
//! its QR to download.

use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use crate::AppState;
use crate::console::ConsoleUser;
use crate::console::form::{list, number};
use crate::i18n::Lang;
use siyu::connect::client::{Content, WecomError};
use siyu::connect::live_codes::{
    self, GuideSlot, LiveCodeError, NewLiveCode, TimedWelcome, Welcome,
};
use siyu::connect::service::ConnectError;
use siyu::platform::clock::now_ms;

/// Shifts and timed welcomes the form offers.
pub(crate) const SHIFTS: usize = 2;

/// A shift as typed: guides, weekdays (1 = Monday … 7), from and to ("09:00"), a daily cap.
#[derive(Clone, Default)]
pub(crate) struct ShiftForm {
    pub guides: String,
    pub days: Vec<String>,
    pub from: String,
    pub to: String,
    pub cap: String,
}

impl ShiftForm {
    /// Whether weekday `d` ("1" … "7") is ticked, for the form.
    pub fn has(&self, d: &str) -> bool {
        self.days.iter().any(|x| x == d)
    }
}

/// A welcome for a time of day as typed.
#[derive(Clone, Default)]
pub(crate) struct TimedForm {
    pub from: String,
    pub to: String,
    pub text: String,
}

/// What was typed, kept for the form. Read from the posted pairs (weekdays and tags repeat).
#[derive(Clone, Default)]
pub(crate) struct CodeForm {
    pub name: String,
    pub source: String,
    /// The card batch, for a `card_batch` code.
    pub source_id: String,
    /// WeCom user ids on all day, separated by commas or lines.
    pub guides: String,
    pub daily_cap: String,
    pub backup_userid: String,
    pub welcome: String,
    pub shifts: Vec<ShiftForm>,
    pub timed: Vec<TimedForm>,
    /// Tag ids chosen.
    pub tags: Vec<String>,
}

impl CodeForm {
    /// The form from its posted pairs: `shift{i}_day` and `tag` may come many times.
    pub(crate) fn from_pairs(pairs: Vec<(String, String)>) -> CodeForm {
        let mut f = CodeForm {
            shifts: vec![ShiftForm::default(); SHIFTS],
            timed: vec![TimedForm::default(); SHIFTS],
            ..CodeForm::default()
        };
        for (k, v) in pairs {
            let slot = |prefix: &str| {
                k.strip_prefix(prefix)
                    .and_then(|r| r.split_once('_'))
                    .and_then(|(i, rest)| {
                        Some((i.parse::<usize>().ok()?.checked_sub(1)?, rest.to_owned()))
                    })
                    .filter(|(i, _)| *i < SHIFTS)
            };
            match k.as_str() {
                "name" => f.name = v,
                "source" => f.source = v,
                "source_id" => f.source_id = v,
                "guides" => f.guides = v,
                "daily_cap" => f.daily_cap = v,
                "backup_userid" => f.backup_userid = v,
                "welcome" => f.welcome = v,
                "tag" => f.tags.push(v),
                _ => {
                    if let Some((i, field)) = slot("shift") {
                        let sh = &mut f.shifts[i];
                        match field.as_str() {
                            "guides" => sh.guides = v,
                            "day" => sh.days.push(v),
                            "from" => sh.from = v,
                            "to" => sh.to = v,
                            "cap" => sh.cap = v,
                            _ => {}
                        }
                    } else if let Some((i, field)) = slot("timed") {
                        let t = &mut f.timed[i];
                        match field.as_str() {
                            "from" => t.from = v,
                            "to" => t.to = v,
                            "text" => t.text = v,
                            _ => {}
                        }
                    }
                }
            }
        }
        f
    }
}

impl CodeForm {
    /// A code as the form shows it to be changed: guides on all day in the guides box (with
    /// their shared cap), the others in shifts by weekdays, times and cap. None when the form
    /// cannot hold it all (more shifts or timed welcomes than it has, different caps among the
    /// all-day guides, attachments): saving it from the form would drop what it lacks.
    pub(crate) fn of(c: &live_codes::LiveCode) -> Option<CodeForm> {
        let mut f = CodeForm::from_pairs(Vec::new());
        let attachments = !c.welcome.content.attachments.is_empty()
            || c.welcome
                .by_time
                .iter()
                .any(|t| !t.content.attachments.is_empty());
        if attachments || c.welcome.by_time.len() > SHIFTS {
            return None;
        }
        f.name = c.name.clone();
        f.source = c.source.clone();
        f.source_id = c.source_id.map(|i| i.to_string()).unwrap_or_default();
        f.backup_userid = c.backup_userid.clone();
        f.welcome = c.welcome.content.text.clone();
        f.tags = c.tag_ids.iter().map(i64::to_string).collect();
        let cap = |c: Option<i64>| c.map(|c| c.to_string()).unwrap_or_default();
        let mut all_day = Vec::new();
        let mut shifts: Vec<(ShiftForm, Vec<String>)> = Vec::new();
        for g in &c.guides {
            if g.weekdays.is_empty() && g.from.is_none() && g.to.is_none() {
                if !all_day.is_empty() && f.daily_cap != cap(g.daily_cap) {
                    return None;
                }
                all_day.push(g.userid.clone());
                f.daily_cap = cap(g.daily_cap);
                continue;
            }
            let days: Vec<String> = g.weekdays.iter().map(u8::to_string).collect();
            let (from, to) = (
                g.from.clone().unwrap_or_default(),
                g.to.clone().unwrap_or_default(),
            );
            let same = shifts.iter_mut().find(|(s, _)| {
                s.days == days && s.from == from && s.to == to && s.cap == cap(g.daily_cap)
            });
            match same {
                Some((_, ids)) => ids.push(g.userid.clone()),
                None => shifts.push((
                    ShiftForm {
                        guides: String::new(),
                        days,
                        from,
                        to,
                        cap: cap(g.daily_cap),
                    },
                    vec![g.userid.clone()],
                )),
            }
        }
        if shifts.len() > SHIFTS {
            return None;
        }
        f.guides = all_day.join(", ");
        for (slot, (mut sh, ids)) in f.shifts.iter_mut().zip(shifts) {
            sh.guides = ids.join(", ");
            *slot = sh;
        }
        for (slot, t) in f.timed.iter_mut().zip(&c.welcome.by_time) {
            *slot = TimedForm {
                from: t.from.clone(),
                to: t.to.clone(),
                text: t.content.text.clone(),
            };
        }
        Some(f)
    }
}

/// The form's part of the connect page.
pub(crate) struct CodeSection {
    /// The code being changed; none for a new one.
    pub editing: Option<i64>,
    /// What the last change did, said above the list.
    pub notice: Option<&'static str>,
    pub errors: Vec<String>,
    pub form: CodeForm,
    pub may_write: bool,
    /// (value, name) of the places a code is shown.
    pub sources: Vec<(&'static str, &'static str)>,
    /// The brand's manual tags a new contact may get: (id, "group · name").
    pub tags: Vec<(String, String)>,
    /// Weekdays for the shifts: ("1", "一") … ("7", "日").
    pub weekdays: Vec<(&'static str, &'static str)>,
}

impl CodeSection {
    pub(crate) async fn new(
        app: &AppState,
        u: &ConsoleUser,
        errors: Vec<String>,
        form: CodeForm,
    ) -> CodeSection {
        let cn = u.lang.cn();
        // Rule tags follow their rule: only manual ones are given on an add.
        let tags = siyu::know::tags::list(&app.db, u.caller.tenant_id)
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|t| t.rule.is_none())
            .map(|t| (t.id.to_string(), format!("{} · {}", t.group_name, t.name)))
            .collect();
        let days: [&str; 7] = match u.lang {
            Lang::Zh => ["一", "二", "三", "四", "五", "六", "日"],
            Lang::En => ["Mo", "Tu", "We", "Th", "Fr", "Sa", "Su"],
        };
        CodeSection {
            editing: None,
            notice: None,
            errors,
            form,
            may_write: u.caller.role.may_write(),
            sources: live_codes::SOURCES
                .iter()
                .map(|s| (*s, cn.label(s)))
                .collect(),
            tags,
            weekdays: ["1", "2", "3", "4", "5", "6", "7"]
                .into_iter()
                .zip(days)
                .collect(),
        }
    }
}

fn read(lang: Lang, f: &CodeForm) -> Result<NewLiveCode, String> {
    let zh = lang == Lang::Zh;
    let whole = |label_zh: &str, label_en: &str, v: &str| {
        number(lang, "n", v).map_err(|_| {
            if zh {
                format!("{label_zh}：「{v}」不是整数")
            } else {
                format!("{label_en}: {v:?} is not a whole number")
            }
        })
    };
    let cap = whole("每位导购每日最多添加", "daily cap", &f.daily_cap)?;
    let source_id = number(lang, "source_id", &f.source_id).map_err(|_| {
        if zh {
            format!("包裹卡批次：「{}」不是批次编号", f.source_id)
        } else {
            format!("card batch: {:?} is not a batch id", f.source_id)
        }
    })?;
    let source = f.source.trim().to_owned();
    let mut guides: Vec<GuideSlot> = list(&f.guides)
        .into_iter()
        .map(|userid| GuideSlot {
            userid,
            weekdays: Vec::new(),
            from: None,
            to: None,
            daily_cap: cap,
        })
        .collect();
    let time = |v: &str| Some(v.trim().to_owned()).filter(|v| !v.is_empty());
    for (i, sh) in f.shifts.iter().enumerate() {
        let on = list(&sh.guides);
        if on.is_empty() {
            continue;
        }
        let n = i + 1;
        let cap = whole(
            &format!("班次{n} 每日上限"),
            &format!("shift {n} cap"),
            &sh.cap,
        )?;
        let mut weekdays: Vec<u8> = sh.days.iter().filter_map(|d| d.parse().ok()).collect();
        weekdays.sort_unstable();
        weekdays.dedup();
        for userid in on {
            guides.push(GuideSlot {
                userid,
                weekdays: weekdays.clone(),
                from: time(&sh.from),
                to: time(&sh.to),
                daily_cap: cap,
            });
        }
    }
    let by_time = f
        .timed
        .iter()
        .filter(|t| !t.text.trim().is_empty())
        .map(|t| TimedWelcome {
            from: t.from.trim().to_owned(),
            to: t.to.trim().to_owned(),
            content: Content {
                text: t.text.trim().to_owned(),
                attachments: Vec::new(),
            },
        })
        .collect();
    let tag_ids = f
        .tags
        .iter()
        .map(|t| {
            t.trim().parse::<i64>().map_err(|_| {
                if zh {
                    format!("客户标签：「{t}」不是标签")
                } else {
                    format!("tags: {t:?} is not a tag")
                }
            })
        })
        .collect::<Result<Vec<i64>, String>>()?;
    Ok(NewLiveCode {
        name: f.name.trim().to_owned(),
        // A batch is named only by a card-batch code.
        source_id: source_id.filter(|_| source == "card_batch"),
        source,
        tag_ids,
        welcome: Welcome {
            content: Content {
                text: f.welcome.trim().to_owned(),
                attachments: Vec::new(),
            },
            by_time,
        },
        guides,
        backup_userid: f.backup_userid.trim().to_owned(),
    })
}

fn said(lang: Lang, e: &LiveCodeError) -> String {
    match (lang, e) {
        (Lang::Zh, LiveCodeError::Invalid { field, reason }) => {
            let f = field.as_str();
            match f {
                "name" => "名称：须 1–64 个字".into(),
                "source" => "投放位置：请选择".into(),
                "source_id" => "包裹卡批次：包裹卡活码须填写存在的批次编号".into(),
                "guides" if reason.contains("at most") => "接待导购：最多 100 位".into(),
                "guides" => "接待导购：至少填一位导购的企业微信账号".into(),
                "backup_userid" => "备用导购：必填（接待导购都满额或不在班时由他接待）".into(),
                f if f.ends_with("daily_cap") => "每位导购每日最多添加：至少 1".into(),
                f if f.ends_with("weekdays") => "班次星期：请勾选周一到周日".into(),
                f if f.starts_with("guides")
                    && (f.ends_with("from")
                        || f.ends_with("to")
                        || reason.contains("from and to")) =>
                {
                    "班次时间：开始和结束都填（如 09:00 和 18:00，且不相同），或都不填表示全天"
                        .into()
                }
                f if f.starts_with("welcome.by_time")
                    || (f.starts_with("welcome") && reason.contains("HH:MM")) =>
                {
                    "分时段欢迎语：开始和结束时间都要填（如 21:00 和 09:00）".into()
                }
                "tag_ids" => "客户标签：只能选本品牌的人工标签".into(),
                f if f.starts_with("welcome") && reason.contains("bytes") => {
                    "欢迎语：最多 4000 字节（约 1300 个汉字）".into()
                }
                f if f.starts_with("welcome") => "欢迎语：必填".into(),
                _ => super::form::unworded(lang, e),
            }
        }
        (
            Lang::Zh,
            LiveCodeError::Wecom(WecomError::Api {
                errcode, errmsg, ..
            }),
        ) => {
            format!(
                "企业微信拒绝了这次操作：errcode {errcode}（{errmsg}）；请核对导购账号是否开通了客户联系"
            )
        }
        (Lang::Zh, LiveCodeError::Wecom(e)) => format!("连不上企业微信：{e}"),
        (Lang::Zh, LiveCodeError::Stopped(_)) => "这个活码已停用，不能再修改；请新建一个".into(),
        (_, e) => super::form::unworded(lang, e),
    }
}

async fn answer(
    app: &AppState,
    u: &ConsoleUser,
    errors: Vec<String>,
    form: CodeForm,
    status: StatusCode,
) -> Response {
    let forms = super::connect::ConnectForms {
        new_code: Some(CodeSection::new(app, u, errors, form).await),
        ..Default::default()
    };
    super::connect::render(app, u, forms, status).await
}

/// `POST /console/connect/live-codes`: asks WeCom for the contact way and keeps the code.
pub(crate) async fn create(
    State(app): State<AppState>,
    u: ConsoleUser,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let f = CodeForm::from_pairs(pairs);
    let zh = u.lang == Lang::Zh;
    if !u.caller.role.may_write() {
        let said = if zh {
            "你的角色只能查看，不能新建活码；请找管理员或运营"
        } else {
            "Your role may not make live codes"
        };
        return answer(&app, &u, vec![said.into()], f, StatusCode::FORBIDDEN).await;
    }
    let n = match read(u.lang, &f) {
        Ok(n) => n,
        Err(e) => return answer(&app, &u, vec![e], f, StatusCode::BAD_REQUEST).await,
    };
    let corp = match app.connect.corp(u.caller.tenant_id).await {
        Ok(c) => c,
        Err(ConnectError::NotConfigured) => {
            let said = if zh {
                "还没有设置企业微信：先在上方保存企业微信设置"
            } else {
                "Set WeCom up first (above)"
            };
            return answer(&app, &u, vec![said.into()], f, StatusCode::BAD_REQUEST).await;
        }
        Err(e) => return super::server_error(e),
    };
    match live_codes::create(
        &app.db,
        &corp.api,
        u.caller.tenant_id,
        n,
        now_ms(),
        corp.offset_min,
    )
    .await
    {
        Ok(_) => {
            app.connect.forget_codes();
            Redirect::to("/console/connect#code-table").into_response()
        }
        Err(LiveCodeError::Db(e)) => super::server_error(e),
        Err(e) => {
            let status = match e {
                LiveCodeError::Wecom(_) => StatusCode::BAD_GATEWAY,
                _ => StatusCode::BAD_REQUEST,
            };
            answer(&app, &u, vec![said(u.lang, &e)], f, status).await
        }
    }
}

/// The code a path names, as text, or the page's refusal.
fn code_id(raw: &str) -> Option<i64> {
    raw.parse().ok()
}

/// `POST /console/connect/live-codes/{id}`: the code changed from the form; WeCom's contact way
/// follows the new rota at once.
pub(crate) async fn update(
    State(app): State<AppState>,
    u: ConsoleUser,
    axum::extract::Path(id): axum::extract::Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let f = CodeForm::from_pairs(pairs);
    let zh = u.lang == Lang::Zh;
    let Some(id) = code_id(&id) else {
        return super::not_found(&u);
    };
    let again = |errors: Vec<String>, f: CodeForm, status: StatusCode| {
        let (app, u) = (&app, &u);
        async move {
            let mut section = CodeSection::new(app, u, errors, f).await;
            section.editing = Some(id);
            let forms = super::connect::ConnectForms {
                new_code: Some(section),
                ..Default::default()
            };
            super::connect::render(app, u, forms, status).await
        }
    };
    if !u.caller.role.may_write() {
        let said = if zh {
            "你的角色只能查看，不能修改活码；请找管理员或运营"
        } else {
            "Your role may not change live codes"
        };
        return again(vec![said.into()], f, StatusCode::FORBIDDEN).await;
    }
    let n = match read(u.lang, &f) {
        Ok(n) => n,
        Err(e) => return again(vec![e], f, StatusCode::BAD_REQUEST).await,
    };
    let corp = match app.connect.corp(u.caller.tenant_id).await {
        Ok(c) => c,
        Err(e) => return super::server_error(e),
    };
    match live_codes::update(
        &app.db,
        &corp.api,
        u.caller.tenant_id,
        id,
        n.into(),
        now_ms(),
        corp.offset_min,
    )
    .await
    {
        Ok(_) => {
            app.connect.forget_codes();
            Redirect::to("/console/connect?saved=code#code-table").into_response()
        }
        Err(LiveCodeError::NotFound(_)) => super::not_found(&u),
        Err(LiveCodeError::Db(e)) => super::server_error(e),
        Err(e) => {
            let status = match e {
                LiveCodeError::Wecom(_) => StatusCode::BAD_GATEWAY,
                LiveCodeError::Stopped(_) => StatusCode::CONFLICT,
                _ => StatusCode::BAD_REQUEST,
            };
            again(vec![said(u.lang, &e)], f, status).await
        }
    }
}

/// `POST /console/connect/live-codes/{id}/stop`: WeCom deletes the contact way; the code and
/// its figures stay, marked 已停用.
pub(crate) async fn stop(
    State(app): State<AppState>,
    u: ConsoleUser,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    let Some(id) = code_id(&id) else {
        return super::not_found(&u);
    };
    if !u.caller.role.may_write() {
        let said = if u.lang == Lang::Zh {
            "你的角色只能查看，不能停用活码；请找管理员或运营"
        } else {
            "Your role may not stop live codes"
        };
        return answer(
            &app,
            &u,
            vec![said.into()],
            CodeForm::from_pairs(Vec::new()),
            StatusCode::FORBIDDEN,
        )
        .await;
    }
    let corp = match app.connect.corp(u.caller.tenant_id).await {
        Ok(c) => c,
        Err(e) => return super::server_error(e),
    };
    match live_codes::disable(&app.db, &corp.api, u.caller.tenant_id, id, now_ms()).await {
        Ok(_) => {
            app.connect.forget_codes();
            Redirect::to("/console/connect#code-table").into_response()
        }
        Err(LiveCodeError::NotFound(_)) => super::not_found(&u),
        Err(LiveCodeError::Db(e)) => super::server_error(e),
        Err(e) => {
            answer(
                &app,
                &u,
                vec![said(u.lang, &e)],
                CodeForm::from_pairs(Vec::new()),
                StatusCode::BAD_GATEWAY,
            )
            .await
        }
    }
}

/// `GET /console/connect/live-codes/{id}/qr.png` and `qr.svg`: the code's QR at print size,
/// with the console session.
pub(crate) async fn qr_png(
    State(app): State<AppState>,
    u: ConsoleUser,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    qr_file(&app, &u, &id, crate::api::connect::live_codes::QrFile::Png).await
}

pub(crate) async fn qr_svg(
    State(app): State<AppState>,
    u: ConsoleUser,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    qr_file(&app, &u, &id, crate::api::connect::live_codes::QrFile::Svg).await
}

async fn qr_file(
    app: &AppState,
    u: &ConsoleUser,
    id: &str,
    kind: crate::api::connect::live_codes::QrFile,
) -> Response {
    let Some(id) = code_id(id) else {
        return super::not_found(u);
    };
    match crate::api::connect::live_codes::qr_download(app, u.caller.tenant_id, id, kind).await {
        Ok(r) => r,
        Err(e) if e.status() == StatusCode::NOT_FOUND => super::not_found(u),
        Err(e) => {
            let said = match u.lang {
                Lang::Zh => "下载二维码失败：读不到企业微信给出的二维码图片，请稍后再试（详情已记入服务器日志）".to_owned(),
                Lang::En => format!("The QR could not be made: {}", e.message()),
            };
            tracing::warn!(error = %e.message(), code = id, "live-code QR download failed");
            answer(
                app,
                u,
                vec![said],
                CodeForm::from_pairs(Vec::new()),
                e.status(),
            )
            .await
        }
    }
}
