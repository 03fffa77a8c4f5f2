//! Group SOP posts from the console (群SOP): a name, the kind of group (every active group of
//! it), when, the text and how often it repeats. Each group's owner gets a task at the time; the
//! form says before it is saved how many groups and owners that is today.

use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::AppState;
use crate::console::ConsoleUser;
use crate::console::form::{number, time};
use crate::i18n::Lang;
use siyu::connect::client::Content;
use siyu::connect::groups;
use siyu::connect::sop::{self, NewPost, SopError};
use siyu::platform::clock::now_ms;

/// What was typed, kept for the form.
#[derive(Clone, Default, Deserialize)]
pub(crate) struct SopForm {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub group_kind: String,
    /// `datetime-local`, China time.
    #[serde(default)]
    pub due_at: String,
    #[serde(default)]
    pub text: String,
    /// Empty: once.
    #[serde(default)]
    pub repeat_every_days: String,
}

/// The form's part of the connect page.
pub(crate) struct SopSection {
    pub errors: Vec<String>,
    pub form: SopForm,
    pub may_write: bool,
    /// (kind, name, active groups of it, their owners).
    pub kinds: Vec<(&'static str, &'static str, usize, usize)>,
}

impl SopSection {
    pub(crate) async fn new(
        app: &AppState,
        u: &ConsoleUser,
        errors: Vec<String>,
        form: SopForm,
    ) -> SopSection {
        let cn = u.lang.cn();
        let rows = groups::list(&app.db, u.caller.tenant_id)
            .await
            .unwrap_or_default();
        let kinds = groups::KINDS
            .iter()
            .map(|k| {
                let active: Vec<&groups::GroupRow> = rows
                    .iter()
                    .filter(|g| g.kind == *k && g.dismissed_at.is_none())
                    .collect();
                let mut owners: Vec<&str> = active.iter().map(|g| g.owner.as_str()).collect();
                owners.sort_unstable();
                owners.dedup();
                (*k, cn.label(k), active.len(), owners.len())
            })
            .collect();
        SopSection {
            errors,
            form,
            may_write: u.caller.role.may_write(),
            kinds,
        }
    }
}

fn read(lang: Lang, f: &SopForm) -> Result<NewPost, String> {
    let zh = lang == Lang::Zh;
    let due_at = time(lang, "due_at", &f.due_at).map_err(|_| {
        if zh {
            format!("发送时间：「{}」不是时间", f.due_at)
        } else {
            format!("due: {:?} is not a time", f.due_at)
        }
    })?;
    let repeat = number(lang, "repeat_every_days", &f.repeat_every_days).map_err(|_| {
        if zh {
            format!("每隔几天重复：「{}」不是整数", f.repeat_every_days)
        } else {
            format!(
                "repeat every: {:?} is not a whole number of days",
                f.repeat_every_days
            )
        }
    })?;
    Ok(NewPost {
        name: f.name.trim().to_owned(),
        group_kind: Some(f.group_kind.trim().to_owned()),
        chat_id: None,
        due_at,
        content: Content {
            text: f.text.trim().to_owned(),
            attachments: Vec::new(),
        },
        remind_after_minutes: None,
        repeat_every_days: repeat,
    })
}

fn said(lang: Lang, e: &SopError) -> String {
    match (lang, e) {
        (Lang::Zh, SopError::Invalid { field, reason }) => match *field {
            "name" => "名称：必填".into(),
            "group_kind" => "群类型：请选择".into(),
            "content" if reason.contains("bytes") => {
                "内容：最多 4000 字节（约 1300 个汉字）".into()
            }
            "content" => "内容：必填".into(),
            "repeat_every_days" => "每隔几天重复：须为 1–365".into(),
            _ => super::form::unworded(lang, e),
        },
        (_, e) => super::form::unworded(lang, e),
    }
}

async fn answer(
    app: &AppState,
    u: &ConsoleUser,
    errors: Vec<String>,
    form: SopForm,
    status: StatusCode,
) -> Response {
    let forms = super::connect::ConnectForms {
        new_sop: Some(SopSection::new(app, u, errors, form).await),
        ..Default::default()
    };
    super::connect::render(app, u, forms, status).await
}

/// `POST /console/connect/sop`: the post joins the calendar; its tasks are handed out when due.
pub(crate) async fn create(
    State(app): State<AppState>,
    u: ConsoleUser,
    Form(f): Form<SopForm>,
) -> Response {
    if !u.caller.role.may_write() {
        let said = match u.lang {
            Lang::Zh => "你的角色只能查看，不能安排群SOP；请找管理员或运营",
            Lang::En => "Your role may not schedule group posts",
        };
        return answer(&app, &u, vec![said.into()], f, StatusCode::FORBIDDEN).await;
    }
    let n = match read(u.lang, &f) {
        Ok(n) => n,
        Err(e) => return answer(&app, &u, vec![e], f, StatusCode::BAD_REQUEST).await,
    };
    let zh = u.lang == Lang::Zh;
    // A date already past would go out at the next tick, to every group of the kind.
    if n.due_at < now_ms() - 60_000 {
        let said = if zh {
            "发送时间：已经过了，请选之后的时间"
        } else {
            "due: it has passed; choose a later time"
        };
        return answer(&app, &u, vec![said.into()], f, StatusCode::BAD_REQUEST).await;
    }
    let section = SopSection::new(&app, &u, Vec::new(), f.clone()).await;
    if section
        .kinds
        .iter()
        .any(|k| k.0 == f.group_kind.trim() && k.2 == 0)
    {
        let said = if zh {
            "群类型：目前没有这类群，发不出去；先在群列表里给群设类型"
        } else {
            "group kind: there is no group of this kind now"
        };
        return answer(&app, &u, vec![said.into()], f, StatusCode::BAD_REQUEST).await;
    }
    match sop::create(&app.db, u.caller.tenant_id, n, now_ms()).await {
        Ok(_) => Redirect::to("/console/connect#sop").into_response(),
        Err(SopError::Db(e)) => super::server_error(e),
        Err(e) => {
            let e = vec![said(u.lang, &e)];
            answer(&app, &u, e, f, StatusCode::BAD_REQUEST).await
        }
    }
}
