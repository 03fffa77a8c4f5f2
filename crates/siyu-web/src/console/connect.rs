//! Console page for connect: channel live codes with their QR and adds/deletions/net, customer
//! groups with the weekly retention of their members by join week (a heat map and a line of the
//! average), the group SOP calendar and mass messages with completion by guide.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::api::ApiError;
use crate::console::{ConsoleUser, page};
use crate::i18n::{ConnTr, Tr};
use siyu::connect::tasks::GuideTaskStatus;
use siyu::connect::{groups, live_codes, mass, sop};
use siyu::platform::clock::{format_local, now_ms};

pub struct CohortRow {
    pub week: String,
    pub joined: i64,
    /// (percent text, background colour) per week; empty text while not yet observable.
    pub cells: Vec<(String, String)>,
}

pub struct PostRow {
    pub name: String,
    pub due: String,
    pub target: String,
    pub done: usize,
    pub tasks: usize,
}

pub struct MassRow {
    pub name: String,
    pub status: String,
    pub recipients: String,
    pub guides: Vec<(String, i64, i64, String)>,
}

#[derive(Template)]
#[template(path = "console/connect.html")]
pub(crate) struct ConnectPage {
    tr: &'static Tr,
    cn: &'static ConnTr,
    lang: &'static str,
    user: String,
    active: &'static str,
    codes: Vec<live_codes::CodeStats>,
    groups: Vec<groups::GroupRow>,
    weeks: Vec<String>,
    cohorts: Vec<CohortRow>,
    /// SVG polyline points of the average retention per week.
    line: String,
    posts: Vec<PostRow>,
    masses: Vec<MassRow>,
    wecom: super::wecom::WecomSection,
    new_code: super::live_codes::CodeSection,
    new_mass: super::mass::MassSection,
    new_sop: super::sop::SopSection,
}

/// The page's forms: the one a post left (with its refusals and what was typed); the others are
/// drawn fresh by [`render`], each read once.
#[derive(Default)]
pub(crate) struct ConnectForms {
    pub wecom: Option<super::wecom::WecomSection>,
    pub new_code: Option<super::live_codes::CodeSection>,
    pub new_mass: Option<super::mass::MassSection>,
    pub new_sop: Option<super::sop::SopSection>,
}

pub(crate) const WEEKS: usize = 8;

/// Green for kept members, fading to red as the share falls.
pub(crate) fn shade(rate: f64) -> String {
    let r = (255.0 * (1.0 - rate)).round() as u8;
    let g = (200.0 * rate + 40.0).round() as u8;
    format!("rgba({r},{g},90,0.35)")
}

#[derive(serde::Deserialize)]
pub(crate) struct PageQuery {
    /// A live code to change: the code form opens filled in with it. Text, so that a
    /// hand-edited address still opens the page.
    edit: Option<String>,
    /// `code` after a live code was saved.
    saved: Option<String>,
}

pub(crate) async fn connect_page(
    State(app): State<AppState>,
    u: ConsoleUser,
    axum::extract::Query(q): axum::extract::Query<PageQuery>,
) -> Response {
    let mut forms = ConnectForms::default();
    if let Some(id) = q.edit.as_deref().and_then(|e| e.parse::<i64>().ok())
        && let Ok(code) = live_codes::get(&app.db, u.caller.tenant_id, id).await
        && code.disabled_at.is_none()
    {
        let section = match super::live_codes::CodeForm::of(&code) {
            Some(form) => {
                let mut s = super::live_codes::CodeSection::new(&app, &u, Vec::new(), form).await;
                s.editing = Some(id);
                s
            }
            // The form would drop what it cannot hold: say where to change it instead.
            None => {
                let said = format!("{}：{}", code.name, u.lang.cn().code_api_only);
                let empty = super::live_codes::CodeForm::from_pairs(Vec::new());
                super::live_codes::CodeSection::new(&app, &u, vec![said], empty).await
            }
        };
        forms.new_code = Some(section);
    } else if q.saved.as_deref() == Some("code") {
        let mut section = super::live_codes::CodeSection::new(
            &app,
            &u,
            Vec::new(),
            super::live_codes::CodeForm::from_pairs(Vec::new()),
        )
        .await;
        section.notice = Some(u.lang.cn().code_saved);
        forms.new_code = Some(section);
    }
    render(&app, &u, forms, StatusCode::OK).await
}

/// The page with its forms as a post left them.
pub(crate) async fn render(
    app: &AppState,
    u: &ConsoleUser,
    forms: ConnectForms,
    status: StatusCode,
) -> Response {
    let wecom = match forms.wecom {
        Some(w) => w,
        None => {
            super::wecom::WecomSection::new(app, u, Vec::new(), String::new(), Default::default())
                .await
        }
    };
    let new_code = match forms.new_code {
        Some(c) => c,
        None => {
            let empty = super::live_codes::CodeForm::from_pairs(Vec::new());
            super::live_codes::CodeSection::new(app, u, Vec::new(), empty).await
        }
    };
    let new_mass = match forms.new_mass {
        Some(m) => m,
        None => {
            super::mass::MassSection::new(app, u, Vec::new(), String::new(), Default::default())
                .await
        }
    };
    let new_sop = match forms.new_sop {
        Some(s) => s,
        None => super::sop::SopSection::new(app, u, Vec::new(), Default::default()).await,
    };
    let tenant = u.caller.tenant_id;
    let cn = u.lang.cn();
    let run = async {
        let now = now_ms();
        let codes = live_codes::stats(&app.db, tenant).await?;
        let gs = groups::list(&app.db, tenant).await?;
        let offset = siyu::engage::policy::load(&app.db, tenant)
            .await?
            .utc_offset_minutes;
        let table = groups::retention(&app.db, tenant, None, now, WEEKS, offset).await?;
        let cohorts: Vec<CohortRow> = table
            .iter()
            .rev()
            .take(12)
            .map(|c| CohortRow {
                week: format_local(c.week_start).chars().take(10).collect(),
                joined: c.joined,
                cells: c
                    .rate
                    .iter()
                    .map(|r| match r {
                        Some(r) => (format!("{:.0}%", r * 100.0), shade(*r)),
                        None => (String::new(), "transparent".into()),
                    })
                    .collect(),
            })
            .collect();
        // The average over cohorts observed that far, weighted by cohort size.
        let mut line = Vec::new();
        for k in 0..WEEKS {
            let (kept, joined) = table.iter().fold((0, 0), |(a, b), c| match c.retained[k] {
                Some(n) => (a + n, b + c.joined),
                None => (a, b),
            });
            if joined > 0 {
                let y = 100.0 - 90.0 * kept as f64 / joined as f64;
                line.push(format!("{},{:.1}", 20 + k * 40, y));
            }
        }
        let weeks = (1..=WEEKS)
            .map(|n| cn.week.replace("{n}", &n.to_string()))
            .collect();
        let posts = sop::calendar(
            &app.db,
            tenant,
            now - 14 * 86_400_000,
            now + 28 * 86_400_000,
        )
        .await?
        .into_iter()
        .map(|p| PostRow {
            name: p.name,
            due: format_local(p.due_at),
            target: match p.group_kind {
                Some(k) => cn.label(&k).to_owned(),
                None => p.chat_id.unwrap_or_default(),
            },
            done: p
                .tasks
                .iter()
                .filter(|t| t.status == GuideTaskStatus::Sent)
                .count(),
            tasks: p.tasks.len(),
        })
        .collect();
        let masses = mass::list(&app.db, tenant)
            .await?
            .into_iter()
            .take(20)
            .map(|m| {
                let mut counts: Vec<String> = m
                    .recipients
                    .iter()
                    .map(|(k, v)| format!("{} {v}", cn.label(k)))
                    .collect();
                counts.sort();
                MassRow {
                    name: m.name,
                    status: m.status.to_string(),
                    recipients: counts.join(" · "),
                    guides: m
                        .tasks
                        .into_iter()
                        .map(|t| {
                            let who = if t.part > 0 {
                                format!("{} #{}", t.sender, t.part + 1)
                            } else {
                                t.sender
                            };
                            (who, t.sent, t.recipients, t.status.to_string())
                        })
                        .collect(),
                }
            })
            .collect();
        Ok::<_, ApiError>((codes, gs, weeks, cohorts, line.join(" "), posts, masses))
    };
    match run.await {
        Ok((codes, groups, weeks, cohorts, line, posts, masses)) => {
            let mut r = page(ConnectPage {
                tr: u.lang.tr(),
                cn,
                lang: u.lang.code(),
                user: u.caller.name.clone(),
                active: "connect",
                codes,
                groups,
                weeks,
                cohorts,
                line,
                posts,
                masses,
                wecom,
                new_code,
                new_mass,
                new_sop,
            });
            *r.status_mut() = status;
            r
        }
        Err(e) => e.into_response(),
    }
}
