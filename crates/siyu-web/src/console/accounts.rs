//! Console page for access (admins only): API keys made, rotated and revoked, console users
//! added, disabled and given new passwords, and the audit log that records each of these.

use askama::Template;
use axum::Form;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::AppState;
use crate::api::actor;
use crate::console::{ConsoleUser, page, server_error};
use crate::i18n::{AccessTr, Tr, action_name, role_name};
use siyu::platform::access::{self, AccessError, Role};
use siyu::platform::clock::format_local;

pub struct KeyRow {
    pub prefix: String,
    pub name: String,
    pub role: String,
    pub created: String,
    pub active: bool,
}

pub struct UserRow {
    pub username: String,
    pub display_name: String,
    pub role: String,
    pub created: String,
    pub active: bool,
}

pub struct AuditRow {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub subject: String,
}

/// What was typed into the forms, kept when one is refused (passwords never are).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Typed {
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    password: String,
}

#[derive(Template)]
#[template(path = "console/access.html")]
pub(crate) struct AccessPage {
    tr: &'static Tr,
    ax: &'static AccessTr,
    lang: &'static str,
    user: String,
    active: &'static str,
    errors: Vec<String>,
    /// A key just made: shown this once.
    new_key: Option<String>,
    saved: bool,
    roles: Vec<(&'static str, String)>,
    keys: Vec<KeyRow>,
    users: Vec<UserRow>,
    audit: Vec<AuditRow>,
    typed: Typed,
}

struct Outcome {
    errors: Vec<String>,
    new_key: Option<String>,
    saved: bool,
    typed: Typed,
    status: StatusCode,
}

impl Outcome {
    fn saved() -> Outcome {
        Outcome {
            errors: vec![],
            new_key: None,
            saved: true,
            typed: Typed::default(),
            status: StatusCode::OK,
        }
    }

    fn saved_nothing() -> Outcome {
        Outcome {
            saved: false,
            ..Outcome::saved()
        }
    }

    fn refused(error: String, typed: Typed, status: StatusCode) -> Outcome {
        Outcome {
            errors: vec![error],
            new_key: None,
            saved: false,
            typed,
            status,
        }
    }
}

async fn render(app: &AppState, u: &ConsoleUser, o: Outcome) -> Response {
    let (ax, lang) = (u.lang.ax(), u.lang);
    if u.caller.role != Role::Admin {
        let mut r = page(AccessPage {
            tr: lang.tr(),
            ax,
            lang: lang.code(),
            user: u.caller.name.clone(),
            active: "access",
            errors: vec![ax.admins_only.to_owned()],
            new_key: None,
            saved: false,
            roles: vec![],
            keys: vec![],
            users: vec![],
            audit: vec![],
            typed: Typed::default(),
        });
        *r.status_mut() = StatusCode::FORBIDDEN;
        return r;
    }
    let tenant = u.caller.tenant_id;
    let read = async {
        Ok::<_, AccessError>((
            access::api_keys(&app.db, tenant).await?,
            access::users(&app.db, tenant).await?,
            access::audit_log(&app.db, tenant, 50).await?,
        ))
    };
    let (keys, users, audit) = match read.await {
        Ok(x) => x,
        Err(e) => return server_error(e),
    };
    let mut r = page(AccessPage {
        tr: lang.tr(),
        ax,
        lang: lang.code(),
        user: u.caller.name.clone(),
        active: "access",
        errors: o.errors,
        new_key: o.new_key,
        saved: o.saved,
        roles: ["operator", "guide", "viewer", "admin"]
            .into_iter()
            .map(|r| (r, role_name(lang, r)))
            .collect(),
        keys: keys
            .into_iter()
            .map(|k| KeyRow {
                active: k.revoked_at.is_none(),
                prefix: k.prefix,
                name: k.name,
                role: role_name(lang, &k.role),
                created: format_local(k.created_at),
            })
            .collect(),
        users: users
            .into_iter()
            .map(|x| UserRow {
                active: x.disabled_at.is_none(),
                username: x.username,
                display_name: x.display_name,
                role: role_name(lang, &x.role),
                created: format_local(x.created_at),
            })
            .collect(),
        audit: audit
            .into_iter()
            .map(|e| AuditRow {
                at: format_local(e.at),
                actor: crate::i18n::actor_name(u.lang, &e.actor),
                action: action_name(lang, &e.action),
                subject: e.subject,
            })
            .collect(),
        typed: o.typed,
    });
    *r.status_mut() = o.status;
    r
}

/// `GET /console/access`.
pub(crate) async fn access_page(State(app): State<AppState>, u: ConsoleUser) -> Response {
    render(&app, &u, Outcome::saved_nothing()).await
}

/// An access error as the admin reads it, naming the field.
fn said(ax: &AccessTr, e: &AccessError) -> Option<(String, StatusCode)> {
    let text = match e {
        AccessError::WeakPassword => ax.weak_password,
        AccessError::UserExists(_) => ax.user_exists,
        AccessError::NoKey(_) => ax.no_such_key,
        AccessError::NoUser(_) => ax.no_such_user,
        _ => return None,
    };
    let status = match e {
        AccessError::NoKey(_) | AccessError::NoUser(_) => StatusCode::NOT_FOUND,
        AccessError::UserExists(_) => StatusCode::CONFLICT,
        _ => StatusCode::BAD_REQUEST,
    };
    Some((text.to_owned(), status))
}

/// Renders what a change came to: the page with its notice, or its refusal beside what was typed.
async fn after(
    app: &AppState,
    u: &ConsoleUser,
    result: Result<Option<String>, AccessError>,
    mut typed: Typed,
) -> Response {
    typed.password.clear();
    match result {
        Ok(new_key) => {
            let o = Outcome {
                new_key,
                ..Outcome::saved()
            };
            render(app, u, o).await
        }
        Err(e) => match said(u.lang.ax(), &e) {
            Some((text, status)) => render(app, u, Outcome::refused(text, typed, status)).await,
            None => server_error(e),
        },
    }
}

/// A signed-in admin; anyone else is answered with the page's 403, and nothing is changed.
pub(crate) struct Admin(ConsoleUser);

impl FromRequestParts<AppState> for Admin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Response> {
        let u = ConsoleUser::from_request_parts(parts, app).await?;
        if u.caller.role == Role::Admin {
            Ok(Admin(u))
        } else {
            Err(render(app, &u, Outcome::saved_nothing()).await)
        }
    }
}

/// `POST /console/access/keys`: a new key, shown once.
pub(crate) async fn create_key(
    State(app): State<AppState>,
    Admin(u): Admin,
    Form(f): Form<Typed>,
) -> Response {
    let ax = u.lang.ax();
    if f.name.trim().is_empty() {
        let o = Outcome::refused(ax.name_required.to_owned(), f, StatusCode::BAD_REQUEST);
        return render(&app, &u, o).await;
    }
    let Some(role) = Role::parse(&f.role) else {
        let text = format!("{}: {:?}", ax.role, f.role);
        return render(&app, &u, Outcome::refused(text, f, StatusCode::BAD_REQUEST)).await;
    };
    let made = access::issue_api_key(
        &app.db,
        u.caller.tenant_id,
        f.name.trim(),
        role,
        &actor(&u.caller),
    )
    .await;
    after(&app, &u, made.map(Some), Typed::default()).await
}

/// `POST /console/access/keys/{prefix}/rotate`: a new key in the old one's place, shown once.
pub(crate) async fn rotate_key(
    State(app): State<AppState>,
    Admin(u): Admin,
    Path(prefix): Path<String>,
) -> Response {
    let made =
        access::rotate_api_key(&app.db, u.caller.tenant_id, &prefix, &actor(&u.caller)).await;
    after(&app, &u, made.map(Some), Typed::default()).await
}

/// `POST /console/access/keys/{prefix}/revoke`.
pub(crate) async fn revoke_key(
    State(app): State<AppState>,
    Admin(u): Admin,
    Path(prefix): Path<String>,
) -> Response {
    let done =
        access::revoke_api_key(&app.db, u.caller.tenant_id, &prefix, &actor(&u.caller)).await;
    match done {
        Ok(()) => Redirect::to("/console/access#keys").into_response(),
        Err(e) => after(&app, &u, Err(e), Typed::default()).await,
    }
}

/// `POST /console/access/users`: a console user with a first password.
pub(crate) async fn add_user(
    State(app): State<AppState>,
    Admin(u): Admin,
    Form(f): Form<Typed>,
) -> Response {
    let ax = u.lang.ax();
    let username = f.username.trim().to_owned();
    if username.is_empty() {
        let o = Outcome::refused(ax.username_required.to_owned(), f, StatusCode::BAD_REQUEST);
        return render(&app, &u, o).await;
    }
    let Some(role) = Role::parse(&f.role) else {
        let text = format!("{}: {:?}", ax.role, f.role);
        return render(&app, &u, Outcome::refused(text, f, StatusCode::BAD_REQUEST)).await;
    };
    let display = match f.display_name.trim() {
        "" => username.clone(),
        d => d.to_owned(),
    };
    let made = access::add_user(
        &app.db,
        u.caller.tenant_id,
        &username,
        &display,
        &f.password,
        role,
        &actor(&u.caller),
    )
    .await;
    after(&app, &u, made.map(|_| None), f).await
}

/// `POST /console/access/users/{username}/disable`: cannot sign in, sessions end now.
pub(crate) async fn disable_user(
    State(app): State<AppState>,
    Admin(u): Admin,
    Path(username): Path<String>,
) -> Response {
    let yourself = match access::users(&app.db, u.caller.tenant_id).await {
        Ok(all) => all
            .iter()
            .any(|x| x.username == username && Some(x.id) == u.caller.user_id),
        Err(e) => return server_error(e),
    };
    if yourself {
        let o = Outcome::refused(
            u.lang.ax().not_yourself.to_owned(),
            Typed::default(),
            StatusCode::CONFLICT,
        );
        return render(&app, &u, o).await;
    }
    let done =
        access::disable_user(&app.db, u.caller.tenant_id, &username, &actor(&u.caller)).await;
    after(&app, &u, done.map(|()| None), Typed::default()).await
}

#[derive(Debug, Deserialize)]
pub(crate) struct PasswordForm {
    password: String,
}

/// `POST /console/access/users/{username}/password`: a new password; their sessions end.
pub(crate) async fn set_password(
    State(app): State<AppState>,
    Admin(u): Admin,
    Path(username): Path<String>,
    Form(f): Form<PasswordForm>,
) -> Response {
    let done = access::set_password(
        &app.db,
        u.caller.tenant_id,
        &username,
        &f.password,
        &actor(&u.caller),
    )
    .await;
    after(&app, &u, done.map(|()| None), Typed::default()).await
}
