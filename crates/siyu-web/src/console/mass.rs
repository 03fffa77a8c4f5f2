//! Mass messages from the console (企微群发): a segment snapshot, the text, marketing or
//! service, and when. 预览触达 shows who it would reach if released then — the same decisions the
//! release makes (no WeCom contact, handed to a guide, unsubscribed, WeCom's one a day, the
//! weekly cap, quiet hours) — before anything is scheduled; 创建群发 schedules it.

use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::AppState;
use crate::console::ConsoleUser;
use crate::console::form::{number, opt_time};
use crate::console::segments::SnapshotOption;
use crate::i18n::Lang;
use siyu::connect::client::Content;
use siyu::connect::mass::{self, Audience, MassError, NewMass, Reach};
use siyu::engage::policy::Purpose;
use siyu::know::segments;
use siyu::platform::clock::{format_local, now_ms};

/// What was typed, kept for the form.
#[derive(Clone, Default, Deserialize)]
pub(crate) struct MassForm {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub snapshot_id: String,
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub purpose: String,
    /// `datetime-local`, China time; empty: now.
    #[serde(default)]
    pub send_at: String,
}

/// The form's part of the connect page.
pub(crate) struct MassSection {
    pub errors: Vec<String>,
    /// What a preview found, as a sentence.
    pub reach: String,
    pub form: MassForm,
    pub may_write: bool,
    pub snapshots: Vec<SnapshotOption>,
}

impl MassSection {
    pub(crate) async fn new(
        app: &AppState,
        u: &ConsoleUser,
        mut errors: Vec<String>,
        reach: String,
        form: MassForm,
    ) -> MassSection {
        // The rest of the connect page still shows when the snapshots cannot be read; the form
        // says why it offers none rather than looking as if the brand had no snapshot.
        let snapshots = match segments::recent_snapshots(&app.db, u.caller.tenant_id, 50).await {
            Ok(s) => s.into_iter().map(SnapshotOption::of).collect(),
            Err(e) => {
                tracing::error!(error = %e, "reading snapshots for the mass form");
                errors.push(match u.lang {
                    Lang::Zh => "人群快照暂时读不出来，请稍后刷新页面再试".into(),
                    Lang::En => {
                        "The snapshots could not be read just now; reload the page shortly".into()
                    }
                });
                Vec::new()
            }
        };
        MassSection {
            errors,
            reach,
            form,
            may_write: u.caller.role.may_write(),
            snapshots,
        }
    }
}

/// The form read as a mass message, or why not (naming the field in the page's language).
fn read(lang: Lang, f: &MassForm) -> Result<NewMass, String> {
    let zh = lang == Lang::Zh;
    let snapshot = number(lang, "snapshot_id", &f.snapshot_id)
        .ok()
        .flatten()
        .ok_or_else(|| {
            if zh {
                "人群快照：请选择"
            } else {
                "snapshot: choose one"
            }
            .to_owned()
        })?;
    let not_before = opt_time(lang, "send_at", &f.send_at).map_err(|_| {
        if zh {
            format!("发送时间：「{}」不是时间", f.send_at)
        } else {
            format!("send at: {:?} is not a time", f.send_at)
        }
    })?;
    Ok(NewMass {
        name: f.name.trim().to_owned(),
        audience: Audience {
            snapshot_id: Some(snapshot),
            tag_ids: Vec::new(),
        },
        content: Content {
            text: f.text.trim().to_owned(),
            attachments: Vec::new(),
        },
        purpose: Some(
            if f.purpose == "service" {
                "service"
            } else {
                "marketing"
            }
            .to_owned(),
        ),
        not_before,
        remind_after_minutes: None,
    })
}

fn said(lang: Lang, e: &MassError) -> String {
    match (lang, e) {
        (Lang::Zh, MassError::Invalid { field, reason }) => match *field {
            "name" => "名称：必填".into(),
            "audience.snapshot_id" => "人群快照：找不到这个快照".into(),
            "content" if reason.contains("bytes") => {
                "内容：最多 4000 字节（约 1300 个汉字）".into()
            }
            "content" => "内容：必填".into(),
            _ => super::form::unworded(lang, e),
        },
        (_, e) => super::form::unworded(lang, e),
    }
}

/// What a preview found, as an operator reads it.
fn reach_text(lang: Lang, r: &Reach) -> String {
    let n = |k: &str| r.decided.get(k).copied().unwrap_or(0);
    let held = r.held_until.map(format_local);
    match lang {
        Lang::Zh => {
            let mut t = format!(
                "预览：人群 {} 人 —— 交给导购发送 {}，没有企微好友 {}，已退订 {}，今日已收过群发 {}，超出频次 {}",
                r.audience,
                n("assigned"),
                r.no_contact,
                n("unsubscribed"),
                n("daily_limit"),
                n("capped")
            );
            if let Some(h) = held {
                t += &format!("；发送时间在免打扰时段内，将于 {h} 发出");
            }
            t + "（按此刻的记录估算：之前若还有别的群发，今日已收过的人会更多）。"
        }
        Lang::En => {
            let mut t = format!(
                "Preview: {} people — handed to guides {}, no WeCom contact {}, unsubscribed {}, had a mass message today {}, over the cap {}",
                r.audience,
                n("assigned"),
                r.no_contact,
                n("unsubscribed"),
                n("daily_limit"),
                n("capped")
            );
            if let Some(h) = held {
                t += &format!("; the send time falls in quiet hours: goes out at {h}");
            }
            t + " (as recorded now: other mass messages before it would leave more at today's limit)."
        }
    }
}

async fn answer(
    app: &AppState,
    u: &ConsoleUser,
    errors: Vec<String>,
    reach: String,
    form: MassForm,
    status: StatusCode,
) -> Response {
    let forms = super::connect::ConnectForms {
        new_mass: Some(MassSection::new(app, u, errors, reach, form).await),
        ..Default::default()
    };
    super::connect::render(app, u, forms, status).await
}

fn read_only(lang: Lang) -> String {
    match lang {
        Lang::Zh => "你的角色只能查看，不能群发；请找管理员或运营".into(),
        Lang::En => "Your role may not send mass messages".into(),
    }
}

/// The form read as a mass message for a user who may send one, or the page that says why not.
async fn checked(app: &AppState, u: &ConsoleUser, f: &MassForm) -> Result<NewMass, Response> {
    let refuse =
        |errors: Vec<String>, status| answer(app, u, errors, String::new(), f.clone(), status);
    if !u.caller.role.may_write() {
        return Err(refuse(vec![read_only(u.lang)], StatusCode::FORBIDDEN).await);
    }
    let n = match read(u.lang, f) {
        Ok(n) => n,
        Err(e) => return Err(refuse(vec![e], StatusCode::BAD_REQUEST).await),
    };
    // What creating it would refuse, refused for a preview too.
    if n.name.is_empty() || n.content.text.is_empty() {
        let field = if n.name.is_empty() { "name" } else { "content" };
        let e = MassError::Invalid {
            field,
            reason: "is empty".into(),
        };
        return Err(refuse(vec![said(u.lang, &e)], StatusCode::BAD_REQUEST).await);
    }
    Ok(n)
}

/// `POST /console/connect/mass/preview`: who the message would reach, nothing scheduled.
pub(crate) async fn preview(
    State(app): State<AppState>,
    u: ConsoleUser,
    Form(f): Form<MassForm>,
) -> Response {
    let n = match checked(&app, &u, &f).await {
        Ok(n) => n,
        Err(page) => return page,
    };
    let purpose = if f.purpose == "service" {
        Purpose::Service
    } else {
        Purpose::Marketing
    };
    // A time already past is released at the next tick: decided as of now.
    let at = n.not_before.unwrap_or(0).max(now_ms());
    match mass::reach(&app.db, u.caller.tenant_id, &n.audience, purpose, at).await {
        Ok(r) => {
            let text = reach_text(u.lang, &r);
            answer(&app, &u, Vec::new(), text, f, StatusCode::OK).await
        }
        Err(MassError::Db(e)) => super::server_error(e),
        Err(e) => {
            let e = vec![said(u.lang, &e)];
            answer(&app, &u, e, String::new(), f, StatusCode::BAD_REQUEST).await
        }
    }
}

/// `POST /console/connect/mass`: schedules the message; the ticks release it when due.
pub(crate) async fn create(
    State(app): State<AppState>,
    u: ConsoleUser,
    Form(f): Form<MassForm>,
) -> Response {
    let n = match checked(&app, &u, &f).await {
        Ok(n) => n,
        Err(page) => return page,
    };
    match mass::create(&app.db, u.caller.tenant_id, n, now_ms()).await {
        Ok(_) => Redirect::to("/console/connect#mass").into_response(),
        Err(MassError::Db(e)) => super::server_error(e),
        Err(e) => {
            let e = vec![said(u.lang, &e)];
            answer(&app, &u, e, String::new(), f, StatusCode::BAD_REQUEST).await
        }
    }
}
