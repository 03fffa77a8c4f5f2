//! Live codes made from the console (新建渠道活码): a name, where the code is shown (a channel, a
//! store, a campaign, a card batch), the guides who take the adds (WeCom user ids, each all day,
//! with an optional daily cap), a backup guide and the welcome text. WeCom makes the contact way
//! and its QR at once; the code is listed with its QR to download.

use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::AppState;
use crate::console::ConsoleUser;
use crate::console::form::{list, number};
use crate::i18n::Lang;
use siyu::connect::client::{Content, WecomError};
use siyu::connect::live_codes::{self, GuideSlot, LiveCodeError, NewLiveCode, Welcome};
use siyu::connect::service::ConnectError;
use siyu::platform::clock::now_ms;

/// What was typed, kept for the form.
#[derive(Clone, Default, Deserialize)]
pub(crate) struct CodeForm {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub source: String,
    /// The card batch, for a `card_batch` code.
    #[serde(default)]
    pub source_id: String,
    /// WeCom user ids, separated by commas or lines.
    #[serde(default)]
    pub guides: String,
    #[serde(default)]
    pub daily_cap: String,
    #[serde(default)]
    pub backup_userid: String,
    #[serde(default)]
    pub welcome: String,
}

/// The form's part of the connect page.
pub(crate) struct CodeSection {
    pub errors: Vec<String>,
    pub form: CodeForm,
    pub may_write: bool,
    /// (value, name) of the places a code is shown.
    pub sources: Vec<(&'static str, &'static str)>,
}

impl CodeSection {
    pub(crate) fn new(u: &ConsoleUser, errors: Vec<String>, form: CodeForm) -> CodeSection {
        let cn = u.lang.cn();
        CodeSection {
            errors,
            form,
            may_write: u.caller.role.may_write(),
            sources: live_codes::SOURCES
                .iter()
                .map(|s| (*s, cn.label(s)))
                .collect(),
        }
    }
}

fn read(lang: Lang, f: &CodeForm) -> Result<NewLiveCode, String> {
    let zh = lang == Lang::Zh;
    let cap = number("daily_cap", &f.daily_cap).map_err(|_| {
        if zh {
            format!("每位导购每日最多添加：「{}」不是整数", f.daily_cap)
        } else {
            format!("daily cap: {:?} is not a whole number", f.daily_cap)
        }
    })?;
    let source_id = number("source_id", &f.source_id).map_err(|_| {
        if zh {
            format!("包裹卡批次：「{}」不是批次编号", f.source_id)
        } else {
            format!("card batch: {:?} is not a batch id", f.source_id)
        }
    })?;
    let source = f.source.trim().to_owned();
    Ok(NewLiveCode {
        name: f.name.trim().to_owned(),
        // A batch is named only by a card-batch code.
        source_id: source_id.filter(|_| source == "card_batch"),
        source,
        tag_ids: Vec::new(),
        welcome: Welcome {
            content: Content {
                text: f.welcome.trim().to_owned(),
                attachments: Vec::new(),
            },
            by_time: Vec::new(),
        },
        guides: list(&f.guides)
            .into_iter()
            .map(|userid| GuideSlot {
                userid,
                weekdays: Vec::new(),
                from: None,
                to: None,
                daily_cap: cap,
            })
            .collect(),
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
                "企业微信拒绝创建活码：errcode {errcode}（{errmsg}）；请核对导购账号是否开通了客户联系"
            )
        }
        (Lang::Zh, LiveCodeError::Wecom(e)) => format!("连不上企业微信：{e}"),
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
        new_code: Some(CodeSection::new(u, errors, form)),
        ..Default::default()
    };
    super::connect::render(app, u, forms, status).await
}

/// `POST /console/connect/live-codes`: asks WeCom for the contact way and keeps the code.
pub(crate) async fn create(
    State(app): State<AppState>,
    u: ConsoleUser,
    Form(f): Form<CodeForm>,
) -> Response {
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
