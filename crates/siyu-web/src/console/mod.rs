//! `/console`: the operators' web console, server-rendered, zh-CN first: sign-in, language,
//! the overview, and one module per capability's pages.

pub mod accounts;
pub mod acquire;
pub mod activities;
pub mod brand;
pub mod connect;
pub mod coupons;
pub mod customers;
pub mod data;
mod form;
pub mod groups;
pub mod imports;
pub mod live_codes;
pub mod mass;
pub mod members;
pub mod origin;
pub mod picked;
pub mod policy;
pub mod redemption;
pub mod rfm;
pub mod segments;
pub mod shops;
pub mod sop;
pub mod touches;
pub mod trends;
pub mod wecom;

use askama::Template;
use axum::Form;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::header::{COOKIE, LOCATION, REFERER, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::AppState;
use crate::client_ip::ClientIp;
use crate::i18n::{Lang, Tr, channel_name};
use siyu::know::report::{period_figures, yuan};
use siyu::platform::access::Login;
use siyu::platform::access::{self, Caller};

pub(crate) const SESSION_COOKIE: &str = "siyu_session";

pub(crate) const LANG_COOKIE: &str = "siyu_lang";

pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

pub(crate) fn lang_of(headers: &HeaderMap) -> Lang {
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
        crate::i18n::ZH.internal_error,
        crate::i18n::EN.internal_error
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
pub(crate) struct MessagePage {
    tr: &'static Tr,
    lang: &'static str,
    user: String,
    active: &'static str,
    message: &'static str,
}

/// A 404 in the page's language: the record a path names is not this brand's, or not there.
pub(crate) fn not_found(u: &ConsoleUser) -> Response {
    let mut r = page(MessagePage {
        tr: u.lang.tr(),
        lang: u.lang.code(),
        user: u.caller.name.clone(),
        active: "",
        message: match u.lang {
            crate::i18n::Lang::Zh => "找不到这条记录：它不存在，或不属于本品牌",
            crate::i18n::Lang::En => "Not found: it does not exist or is not this brand's",
        },
    });
    *r.status_mut() = StatusCode::NOT_FOUND;
    r
}

pub(crate) fn page(t: impl Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => server_error(e),
    }
}

#[derive(Template)]
#[template(path = "console/login.html")]
pub(crate) struct LoginPage {
    tr: &'static Tr,
    lang: &'static str,
    user: String,
    active: &'static str,
    failed: bool,
    /// Too many attempts lately: wait before trying again.
    throttled: bool,
    tenant: String,
}

#[derive(Deserialize)]
pub(crate) struct LoginQuery {
    #[serde(default)]
    tenant: Option<String>,
}

pub(crate) async fn login_page(headers: HeaderMap, Query(q): Query<LoginQuery>) -> Response {
    let lang = lang_of(&headers);
    page(LoginPage {
        tr: lang.tr(),
        lang: lang.code(),
        user: String::new(),
        active: "",
        failed: false,
        throttled: false,
        tenant: q.tenant.unwrap_or_default(),
    })
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    tenant: String,
    username: String,
    password: String,
}

pub(crate) async fn login_submit(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let lang = lang_of(&headers);
    let from = ClientIp(ip).subject();
    let refused = |throttled: bool, status: StatusCode, tenant: String| {
        let mut r = page(LoginPage {
            tr: lang.tr(),
            lang: lang.code(),
            user: String::new(),
            active: "",
            failed: !throttled,
            throttled,
            tenant,
        });
        *r.status_mut() = status;
        r
    };
    match access::login(&app.db, &f.tenant, &f.username, &f.password, &from).await {
        Ok(Login::Session(token)) => {
            // Sent only over https when the console is served over https.
            let secure = if app.public_url.starts_with("https://") {
                "; Secure"
            } else {
                ""
            };
            let cookie = format!(
                "{SESSION_COOKIE}={token}; Path=/console; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
                access::SESSION_MS / 1000
            );
            let mut r = Redirect::to("/console/overview").into_response();
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                r.headers_mut().insert(SET_COOKIE, v);
            }
            r
        }
        Ok(Login::Wrong) => refused(false, StatusCode::UNAUTHORIZED, f.tenant),
        Ok(Login::Throttled) => refused(true, StatusCode::TOO_MANY_REQUESTS, f.tenant),
        Err(e) => server_error(e),
    }
}

pub(crate) async fn logout(State(app): State<AppState>, headers: HeaderMap) -> Response {
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

pub(crate) async fn set_lang(Path(code): Path<String>, headers: HeaderMap) -> Response {
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

/// A figure of the range beside the period before it.
pub(crate) struct Kpi {
    id: &'static str,
    label: &'static str,
    value: String,
    /// "+12.3%", or what to say when the period before had nothing.
    change: String,
    /// `up`, `down` or `flat`, for the colour.
    trend: &'static str,
}

impl Kpi {
    fn new(
        id: &'static str,
        label: &'static str,
        value: String,
        now: i64,
        before: i64,
        t: &crate::i18n::OverviewTr,
    ) -> Kpi {
        let (change, trend) = match siyu::measure::trends::change(now, before) {
            Some(c) => (
                format!("{}{:.1}%", if c > 0.0 { "+" } else { "" }, c * 100.0),
                if c > 0.0 {
                    "up"
                } else if c < 0.0 {
                    "down"
                } else {
                    "flat"
                },
            ),
            None => (t.nothing_before.to_owned(), "flat"),
        };
        Kpi {
            id,
            label,
            value,
            change,
            trend,
        }
    }
}

#[derive(Template)]
#[template(path = "console/overview.html")]
pub(crate) struct OverviewPage {
    tr: &'static Tr,
    lang: &'static str,
    user: String,
    active: &'static str,
    t: &'static crate::i18n::OverviewTr,
    /// The range as typed (kept when it was wrong) and as read.
    from: String,
    to: String,
    /// What was wrong with the range asked for (the last 30 days are shown instead).
    range_error: Option<String>,
    compared_with: String,
    /// (href, label, whether it is the range shown).
    presets: Vec<(String, &'static str, bool)>,
    kpis: Vec<Kpi>,
    p: siyu::know::report::PeriodFigures,
    merges: i64,
    repeat_online: String,
    repeat_store: String,
    channels: Vec<(String, i64, i64, String)>,
    /// The chart's data (the trends JSON), for the page's script.
    trends_json: String,
    d: &'static crate::i18n::DataTr,
    data: data::ChannelData,
    /// What went wrong with the form just sent (reading a status text, connecting a shop).
    errors: Vec<String>,
    may_write: bool,
    /// Admins may download rejected rows (they carry phones).
    may_see_phone: bool,
    shop_form: shops::ShopFormView,
    /// The export presets the upload form offers: (value, name).
    upload_presets: Vec<(&'static str, String)>,
    /// The channels a generic file's orders may be given: (code, name).
    upload_channels: Vec<(&'static str, String)>,
    upload_max_bytes: u64,
}

pub(crate) fn percent(r: f64) -> String {
    format!("{:.1}%", r * 100.0)
}

pub(crate) async fn overview_page(
    State(app): State<AppState>,
    u: ConsoleUser,
    Query(q): Query<crate::api::measure::trends::RangeQuery>,
) -> Response {
    let form = shops::ShopFormView::new(&app, &u, shops::ShopForm::default());
    render_overview_in(&app, &u, Vec::new(), StatusCode::OK, form, q).await
}

/// The overview, with what went wrong with a form sent from it.
pub(crate) async fn render_overview(
    app: &AppState,
    u: &ConsoleUser,
    errors: Vec<String>,
    status: StatusCode,
) -> Response {
    let form = shops::ShopFormView::new(app, u, shops::ShopForm::default());
    render_overview_with(app, u, errors, status, form).await
}

/// The overview with the shop form as it was sent.
pub(crate) async fn render_overview_with(
    app: &AppState,
    u: &ConsoleUser,
    errors: Vec<String>,
    status: StatusCode,
    shop_form: shops::ShopFormView,
) -> Response {
    render_overview_in(app, u, errors, status, shop_form, Default::default()).await
}

/// The overview of a date range (the last 30 days unless one is asked for).
async fn render_overview_in(
    app: &AppState,
    u: &ConsoleUser,
    errors: Vec<String>,
    mut status: StatusCode,
    shop_form: shops::ShopFormView,
    q: crate::api::measure::trends::RangeQuery,
) -> Response {
    use siyu::measure::trends::DateRange;
    let tenant = u.caller.tenant_id;
    let t = u.lang.overview();
    let offset = match crate::api::measure::trends::brand_offset(app, tenant).await {
        Ok(o) => o,
        Err(e) => return server_error(e.message()),
    };
    let now = siyu::platform::clock::now_ms();
    let default = || DateRange::last_days(crate::api::measure::trends::DEFAULT_DAYS, now, offset);
    let (range, from, to, range_error) = match q.range(offset) {
        Ok(r) => (r, r.from.to_string(), r.to.to_string(), None),
        Err(e) => {
            status = StatusCode::BAD_REQUEST;
            let r = default();
            let said = trends::range_error(u.lang, &e);
            (
                r,
                q.from.unwrap_or_default(),
                q.to.unwrap_or_default(),
                Some(said),
            )
        }
    };
    let p = match period_figures(&app.db, tenant, range.start_ms(), range.end_ms()).await {
        Ok(p) => p,
        Err(e) => return server_error(e),
    };
    // The range's people are its buyers: counted once, for both.
    let tr_ =
        match siyu::measure::trends::trends_knowing_buyers(&app.db, tenant, range, Some(p.people))
            .await
        {
            Ok(x) => x,
            Err(e) => return server_error(e),
        };
    let merges = match siyu::know::report::merges(&app.db, tenant).await {
        Ok(m) => m,
        Err(e) => return server_error(e),
    };
    let data = match data::channel_data(app, tenant, u.lang).await {
        Ok(d) => d,
        Err(e) => return server_error(e),
    };
    let (c, b) = (&tr_.current, &tr_.previous);
    let kpis = vec![
        Kpi::new(
            "kpi-gmv",
            u.lang.tr().gmv,
            yuan(c.gmv),
            c.gmv.get(),
            b.gmv.get(),
            t,
        ),
        Kpi::new(
            "kpi-orders",
            u.lang.tr().orders,
            c.orders.to_string(),
            c.orders,
            b.orders,
            t,
        ),
        Kpi::new(
            "kpi-buyers",
            t.buyers,
            c.buyers.to_string(),
            c.buyers,
            b.buyers,
            t,
        ),
        Kpi::new(
            "kpi-new-customers",
            t.new_customers,
            c.new_customers.to_string(),
            c.new_customers,
            b.new_customers,
            t,
        ),
        Kpi::new(
            "kpi-wecom-adds",
            t.wecom_adds,
            c.wecom_adds.to_string(),
            c.wecom_adds,
            b.wecom_adds,
            t,
        ),
        Kpi::new(
            "kpi-wecom-net-adds",
            t.wecom_net_adds,
            c.wecom_net_adds.to_string(),
            c.wecom_net_adds,
            b.wecom_net_adds,
            t,
        ),
    ];
    let presets = t
        .presets
        .iter()
        .map(|(days, label)| {
            let r = DateRange::last_days(*days, now, offset);
            (
                format!("/console/overview?from={}&to={}", r.from, r.to),
                *label,
                r == range,
            )
        })
        .collect();
    // The JSON sits in a <script> element: no "</" may close it early.
    let trends_json = serde_json::to_string(&tr_)
        .unwrap_or_else(|_| "null".into())
        .replace("</", "<\\/");
    let mut r = page(OverviewPage {
        tr: u.lang.tr(),
        lang: u.lang.code(),
        user: u.caller.name.clone(),
        active: "overview",
        t,
        from,
        to,
        range_error,
        compared_with: t
            .compared_with
            .replace("{from}", &tr_.previous_from)
            .replace("{to}", &tr_.previous_to),
        presets,
        kpis,
        repeat_online: percent(p.online.rate),
        repeat_store: percent(p.store.rate),
        channels: p
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
        p,
        merges,
        trends_json,
        d: u.lang.data(),
        data,
        errors,
        may_write: u.caller.role.may_write(),
        may_see_phone: u.caller.role.may_see_phone(),
        shop_form,
        upload_presets: imports::preset_choices(u.lang),
        upload_channels: crate::i18n::CHANNELS
            .iter()
            .map(|c| (*c, crate::i18n::channel_name(u.lang, c)))
            .collect(),
        upload_max_bytes: crate::api::know::imports::MOST_UPLOAD_BYTES,
    });
    *r.status_mut() = status;
    r
}
