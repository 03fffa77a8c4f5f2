//! `/console`: the operators' web console, server-rendered, zh-CN first.

use askama::Template;
use axum::Form;
use axum::Router;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::header::{COOKIE, LOCATION, REFERER, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::AppState;
use super::i18n::{Lang, Tr, channel_name, kind_name, status_name};
use crate::know::customers::{Customer360, customer_360, list_customers, search};
use crate::know::report::{overview, yuan};
use crate::platform::access::{self, Caller};
use crate::platform::clock::format_local;

const SESSION_COOKIE: &str = "siyu_session";
const LANG_COOKIE: &str = "siyu_lang";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/console",
            get(|| async { Redirect::to("/console/overview") }),
        )
        .route("/console/login", get(login_page).post(login_submit))
        .route("/console/logout", post(logout))
        .route("/console/lang/{code}", get(set_lang))
        .route("/console/overview", get(overview_page))
        .route("/console/customers", get(customers_page))
        .route("/console/customers/{id}", get(customer_page))
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn lang_of(headers: &HeaderMap) -> Lang {
    Lang::from_cookie(cookie(headers, LANG_COOKIE))
}

/// A signed-in console user; anyone else is sent to the login page.
pub struct ConsoleUser {
    pub caller: Caller,
    pub lang: Lang,
}

impl FromRequestParts<AppState> for ConsoleUser {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let lang = lang_of(&parts.headers);
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(Redirect::to("/console/login").into_response());
        };
        match access::caller_by_session(&state.db, token).await {
            Ok(Some(caller)) => Ok(ConsoleUser { caller, lang }),
            Ok(None) => Err(Redirect::to("/console/login").into_response()),
            Err(e) => Err(server_error(e)),
        }
    }
}

pub(crate) fn server_error(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "console request failed");
    let text = format!(
        "{} / {}",
        super::i18n::ZH.internal_error,
        super::i18n::EN.internal_error
    );
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Html(format!(
            "<!doctype html><meta charset=\"utf-8\"><p>{text}</p>"
        )),
    )
        .into_response()
}

#[derive(Template)]
#[template(path = "console/message.html")]
struct MessagePage {
    tr: &'static Tr,
    lang: &'static str,
    user: String,
    active: &'static str,
    message: &'static str,
}

pub(crate) fn page(t: impl Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => server_error(e),
    }
}

#[derive(Template)]
#[template(path = "console/login.html")]
struct LoginPage {
    tr: &'static Tr,
    lang: &'static str,
    user: String,
    active: &'static str,
    failed: bool,
    tenant: String,
}

#[derive(Deserialize)]
struct LoginQuery {
    #[serde(default)]
    tenant: Option<String>,
}

async fn login_page(headers: HeaderMap, Query(q): Query<LoginQuery>) -> Response {
    let lang = lang_of(&headers);
    page(LoginPage {
        tr: lang.tr(),
        lang: lang.code(),
        user: String::new(),
        active: "",
        failed: false,
        tenant: q.tenant.unwrap_or_default(),
    })
}

#[derive(Deserialize)]
struct LoginForm {
    tenant: String,
    username: String,
    password: String,
}

async fn login_submit(
    State(app): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let lang = lang_of(&headers);
    match access::login(&app.db, &f.tenant, &f.username, &f.password).await {
        Ok(Some(token)) => {
            let cookie = format!(
                "{SESSION_COOKIE}={token}; Path=/console; HttpOnly; SameSite=Lax; Max-Age={}",
                access::SESSION_MS / 1000
            );
            let mut r = Redirect::to("/console/overview").into_response();
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                r.headers_mut().insert(SET_COOKIE, v);
            }
            r
        }
        Ok(None) => {
            let mut r = page(LoginPage {
                tr: lang.tr(),
                lang: lang.code(),
                user: String::new(),
                active: "",
                failed: true,
                tenant: f.tenant,
            });
            *r.status_mut() = StatusCode::UNAUTHORIZED;
            r
        }
        Err(e) => server_error(e),
    }
}

async fn logout(State(app): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = cookie(&headers, SESSION_COOKIE)
        && let Err(e) = access::logout(&app.db, token).await
    {
        return server_error(e);
    }
    let mut r = Redirect::to("/console/login").into_response();
    r.headers_mut().insert(
        SET_COOKIE,
        HeaderValue::from_static("siyu_session=; Path=/console; HttpOnly; Max-Age=0"),
    );
    r
}

async fn set_lang(Path(code): Path<String>, headers: HeaderMap) -> Response {
    let value = if code == "en" { "en" } else { "zh" };
    // Back to the page the switch was clicked on, if it was one of ours.
    let back = headers
        .get(REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| r.find("/console").map(|i| r[i..].to_owned()))
        .unwrap_or_else(|| "/console".to_owned());
    let mut r = (StatusCode::SEE_OTHER, ()).into_response();
    if let (Ok(loc), Ok(c)) = (
        HeaderValue::from_str(&back),
        HeaderValue::from_str(&format!(
            "{LANG_COOKIE}={value}; Path=/; Max-Age=31536000; SameSite=Lax"
        )),
    ) {
        r.headers_mut().insert(LOCATION, loc);
        r.headers_mut().insert(SET_COOKIE, c);
    }
    r
}

#[derive(Template)]
#[template(path = "console/overview.html")]
struct OverviewPage {
    tr: &'static Tr,
    lang: &'static str,
    user: String,
    active: &'static str,
    o: crate::know::report::Overview,
    gmv: String,
    repeat_online: String,
    repeat_store: String,
    channels: Vec<(String, i64, i64, String)>,
}

fn percent(r: f64) -> String {
    format!("{:.1}%", r * 100.0)
}

async fn overview_page(State(app): State<AppState>, u: ConsoleUser) -> Response {
    let o = match overview(&app.db, u.caller.tenant_id).await {
        Ok(o) => o,
        Err(e) => return server_error(e),
    };
    page(OverviewPage {
        tr: u.lang.tr(),
        lang: u.lang.code(),
        user: u.caller.name.clone(),
        active: "overview",
        gmv: yuan(o.gmv),
        repeat_online: percent(o.online.rate),
        repeat_store: percent(o.store.rate),
        channels: o
            .channels
            .iter()
            .map(|c| {
                (
                    channel_name(u.lang, &c.channel),
                    c.orders,
                    c.buyers,
                    yuan(c.gmv),
                )
            })
            .collect(),
        o,
    })
}

struct Row {
    id: i64,
    name: String,
    phone: String,
    orders: i64,
    spend: String,
    last_order: String,
}

#[derive(Template)]
#[template(path = "console/customers.html")]
struct CustomersPage {
    tr: &'static Tr,
    lang: &'static str,
    user: String,
    active: &'static str,
    q: String,
    rows: Vec<Row>,
    page: i64,
    pages: i64,
    total: i64,
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    page: Option<i64>,
}

async fn customers_page(
    State(app): State<AppState>,
    u: ConsoleUser,
    Query(lq): Query<ListQuery>,
) -> Response {
    let q = lq.q.unwrap_or_default().trim().to_owned();
    let tenant = u.caller.tenant_id;
    let result = async {
        let only = if q.is_empty() {
            None
        } else {
            Some(search(&app.db, &app.cipher, tenant, &q).await?)
        };
        list_customers(
            &app.db,
            &app.cipher,
            tenant,
            lq.page.unwrap_or(1),
            50,
            only.as_deref(),
            false,
        )
        .await
    }
    .await;
    let p = match result {
        Ok(p) => p,
        Err(e) => return server_error(e),
    };
    let rows = p
        .customers
        .into_iter()
        .map(|c| Row {
            id: c.id,
            name: c.display_name.unwrap_or_default(),
            phone: c.phone.unwrap_or_default(),
            orders: c.order_count,
            spend: yuan(c.total_spend),
            last_order: c.last_order_at.map(format_local).unwrap_or_default(),
        })
        .collect();
    page(CustomersPage {
        tr: u.lang.tr(),
        lang: u.lang.code(),
        user: u.caller.name.clone(),
        active: "customers",
        q,
        rows,
        page: p.page,
        pages: ((p.total + p.per_page - 1) / p.per_page).max(1),
        total: p.total,
    })
}

struct OrderRow {
    time: String,
    channel: String,
    order_no: String,
    status: String,
    amount: String,
    refund: String,
    items: i64,
    store: String,
}

#[derive(Template)]
#[template(path = "console/customer.html")]
struct CustomerPage {
    tr: &'static Tr,
    lang: &'static str,
    user: String,
    active: &'static str,
    c: Customer360,
    name: String,
    spend: String,
    aov: String,
    first_order: String,
    last_order: String,
    channels: String,
    identities: Vec<(String, String)>,
    orders: Vec<OrderRow>,
    events: Vec<(String, String, String, String)>,
    may_unmask: bool,
    stage: String,
    rfm_class: String,
    repurchase: String,
}

#[derive(Deserialize)]
struct UnmaskQuery {
    #[serde(default)]
    unmask: Option<String>,
}

async fn customer_page(
    State(app): State<AppState>,
    u: ConsoleUser,
    Path(id): Path<String>,
    Query(uq): Query<UnmaskQuery>,
) -> Response {
    let not_found = || {
        let mut r = page(MessagePage {
            tr: u.lang.tr(),
            lang: u.lang.code(),
            user: u.caller.name.clone(),
            active: "customers",
            message: u.lang.tr().not_found,
        });
        *r.status_mut() = StatusCode::NOT_FOUND;
        r
    };
    let Ok(id) = id.parse::<i64>() else {
        return not_found();
    };
    let may = u.caller.role.may_see_phone();
    let unmask = may && uq.unmask.as_deref() == Some("1");
    let c = match customer_360(&app.db, &app.cipher, u.caller.tenant_id, id, unmask).await {
        Ok(Some(c)) => c,
        Ok(None) => return not_found(),
        Err(e) => return server_error(e),
    };
    if unmask {
        tracing::info!(user = %u.caller.name, customer = c.id, "full phone number shown in the console");
    }
    let l = u.lang;
    page(CustomerPage {
        tr: l.tr(),
        lang: l.code(),
        user: u.caller.name.clone(),
        active: "customers",
        name: c.display_name.clone().unwrap_or_default(),
        spend: yuan(c.summary.total_spend),
        aov: yuan(c.summary.average_order_value),
        stage: crate::know::rfm::Stage::parse(&c.layer.stage)
            .map(|s| {
                if l == super::i18n::Lang::Zh {
                    s.zh()
                } else {
                    s.en()
                }
            })
            .unwrap_or("-")
            .to_owned(),
        rfm_class: c
            .layer
            .rfm_class
            .as_deref()
            .and_then(crate::know::rfm::RfmClass::parse)
            .map(|k| {
                if l == super::i18n::Lang::Zh {
                    k.zh()
                } else {
                    k.en()
                }
            })
            .unwrap_or("-")
            .to_owned(),
        repurchase: c
            .layer
            .repurchase_at
            .map(format_local)
            .unwrap_or_else(|| "-".into()),
        first_order: c
            .summary
            .first_order_at
            .map(format_local)
            .unwrap_or_else(|| "-".into()),
        last_order: c
            .summary
            .last_order_at
            .map(format_local)
            .unwrap_or_else(|| "-".into()),
        channels: c
            .summary
            .channels
            .iter()
            .map(|ch| channel_name(l, ch))
            .collect::<Vec<_>>()
            .join(" · "),
        identities: c
            .identities
            .iter()
            .map(|i| (kind_name(l, &i.kind), i.value.clone()))
            .collect(),
        orders: c
            .recent_orders
            .iter()
            .map(|o| OrderRow {
                time: format_local(o.ordered_at),
                channel: channel_name(l, &o.channel),
                order_no: o.order_no.clone(),
                status: status_name(l, &o.status),
                amount: yuan(o.amount),
                refund: yuan(o.refund_amount),
                items: o.item_count,
                store: o.store_id.clone().unwrap_or_default(),
            })
            .collect(),
        events: c
            .recent_events
            .iter()
            .map(|e| {
                (
                    format_local(e.occurred_at),
                    e.kind.clone(),
                    e.channel
                        .as_deref()
                        .map(|c| channel_name(l, c))
                        .unwrap_or_default(),
                    e.touchpoint.clone().unwrap_or_default(),
                )
            })
            .collect(),
        may_unmask: may && !unmask,
        c,
    })
}
