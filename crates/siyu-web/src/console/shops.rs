//! Connecting a shop from the console (接入店铺): an admin names the platform and the brand's app,
//! the browser goes to the platform where the seller authorises it (授权), and comes back to
//! `/console/shops/authorized` with a code that becomes the shop's tokens. A Youzan self-use app
//! needs no authorisation: it connects at once with its shop id.

use askama::Template;
use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::AppState;
use crate::console::ConsoleUser;
use crate::i18n::Lang;
use siyu::channels::marketplaces::{ALL_PLATFORMS, Platform};
use siyu::know::shop_authorizations::{self, PendingShop};
use siyu::know::shops::{self, NewShop, ShopError};
use siyu::platform::access::Role;
use siyu::platform::clock::now_ms;
use siyu::workflows::shop_authorization::{self, AuthorizationError};

/// Where the platforms send the seller's browser back: registered as the app's callback.
pub(crate) const CALLBACK_PATH: &str = "/console/shops/authorized";

/// What was typed into the connect form. The secret is never written back into the page (and no
/// `Debug`: it holds the secret).
#[derive(Clone, Default, Deserialize)]
pub(crate) struct ShopForm {
    #[serde(default)]
    pub platform: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub app_key: String,
    #[serde(default)]
    pub app_secret: String,
    #[serde(default)]
    pub service_id: String,
    #[serde(default)]
    pub shop_ref: String,
    #[serde(default)]
    pub sync_days: String,
    #[serde(default)]
    pub api_base: String,
}

/// The connect form as the overview shows it.
pub(crate) struct ShopFormView {
    pub values: ShopForm,
    /// (value, name in the page's language).
    pub platforms: Vec<(&'static str, String)>,
    pub callback_url: String,
    pub allow_api_base: bool,
    pub may_connect: bool,
}

impl ShopFormView {
    pub(crate) fn new(app: &AppState, u: &ConsoleUser, values: ShopForm) -> ShopFormView {
        ShopFormView {
            values,
            platforms: ALL_PLATFORMS
                .iter()
                .map(|p| {
                    let name = match u.lang {
                        Lang::Zh => p.zh().to_owned(),
                        Lang::En => p.as_str().to_owned(),
                    };
                    (p.as_str(), name)
                })
                .collect(),
            callback_url: format!("{}{CALLBACK_PATH}", app.public_url),
            allow_api_base: app.marketplace_allow_api_base,
            may_connect: u.caller.role == Role::Admin,
        }
    }
}

/// On the way to the platform's authorisation page. A page rather than a redirect: the
/// console's `form-action 'self'` policy stops a form's answer from redirecting the browser to
/// another site, while a page may send it on.
#[derive(Template)]
#[template(path = "console/leaving.html")]
struct LeavingPage {
    tr: &'static crate::i18n::Tr,
    lang: &'static str,
    user: String,
    active: &'static str,
    heading: String,
    hint: &'static str,
    go: &'static str,
    url: String,
}

fn leaving(u: &ConsoleUser, platform: Platform, url: String) -> Response {
    let (heading, hint, go) = match u.lang {
        Lang::Zh => (
            format!("正在前往{}授权…", platform.zh()),
            "请在这个浏览器里用店铺主账号登录平台并确认授权；确认后会回到这里，店铺接入，订单在 5 分钟内开始同步。",
            "没有自动跳转？点此前往",
        ),
        Lang::En => (
            format!("Going to {} to authorise…", platform.as_str()),
            "Sign in to the platform with the shop's main account in this browser and confirm; you come back here, the shop is connected and its orders start syncing within 5 minutes.",
            "Not moving? Go now",
        ),
    };
    super::page(LeavingPage {
        tr: u.lang.tr(),
        lang: u.lang.code(),
        user: u.caller.name.clone(),
        active: "overview",
        heading,
        hint,
        go,
        url,
    })
}

/// A refusal in the page's language, naming the field as the form does.
fn said(lang: Lang, e: &AuthorizationError) -> String {
    let zh = lang == Lang::Zh;
    match e {
        AuthorizationError::Shop(ShopError::Invalid { field, reason }) if zh => {
            let (label, what) = match *field {
                "platform" => ("平台", "请选择天猫/淘宝、京东、拼多多、抖店或有赞"),
                "name" => ("店铺名称", "有赞须填写，最多 64 个字"),
                "shop_ref" => ("店铺 ID", "有赞须填写店铺 ID（kdt_id），最多 64 个字符"),
                "app_key" => ("AppKey", "必填，最多 128 个字符"),
                "app_secret" => ("AppSecret", "必填，最多 256 个字符"),
                "service_id" => ("服务 ID", "抖店授权须填写服务市场的服务 ID，最多 64 个字符"),
                "api_base" => (
                    "接口地址",
                    "须以 http:// 或 https:// 开头，且仅在服务器允许时可填写",
                ),
                "sync_from" | "sync_days" => ("同步天数", "请填写 1–365 的整数"),
                "state" if reason.contains("ran out") => {
                    ("授权", "超过 10 分钟未完成，已失效：请重新发起授权")
                }
                "state" if reason.contains("decrypt") => (
                    "授权",
                    "服务器密钥已更换，读不出暂存的应用密钥：请重新发起授权",
                ),
                "state" => ("授权", "已使用、已失效或不是本品牌发起的：请重新发起授权"),
                _ => ("店铺", reason.as_str()),
            };
            format!("{label}：{what}")
        }
        AuthorizationError::Market(m) if zh => {
            format!("平台未能用授权码换取令牌：{m}")
        }
        AuthorizationError::NoShop(p) if zh => {
            format!("{} 的应答里没有店铺 ID，无法接入", platform_zh(p))
        }
        e => super::form::unworded(lang, e),
    }
}

fn platform_zh(p: &str) -> &str {
    Platform::parse(p).map(|p| p.zh()).unwrap_or(p)
}

async fn refused(
    app: &AppState,
    u: &ConsoleUser,
    values: ShopForm,
    message: String,
    status: StatusCode,
) -> Response {
    let form = ShopFormView::new(
        app,
        u,
        ShopForm {
            app_secret: String::new(),
            ..values
        },
    );
    super::render_overview_with(app, u, vec![message], status, form).await
}

fn invalid(field: &'static str, reason: &str) -> AuthorizationError {
    AuthorizationError::Shop(ShopError::Invalid {
        field,
        reason: reason.to_owned(),
    })
}

fn not_admin(lang: Lang) -> String {
    match lang {
        Lang::Zh => "只有管理员可以接入店铺：接入会交出应用密钥".to_owned(),
        Lang::En => "Only an admin may connect a shop: it hands over the app's secret".to_owned(),
    }
}

/// `POST /console/shops/authorize`: sends the browser to the platform's authorisation page, or
/// (Youzan's self-use app) connects the shop at once.
pub(crate) async fn authorize(
    State(app): State<AppState>,
    u: ConsoleUser,
    Form(f): Form<ShopForm>,
) -> Response {
    if u.caller.role != Role::Admin {
        return refused(&app, &u, f, not_admin(u.lang), StatusCode::FORBIDDEN).await;
    }
    let now = now_ms();
    let r = async {
        let platform = Platform::parse(f.platform.trim())
            .ok_or_else(|| invalid("platform", "not a platform Siyu syncs"))?;
        let days: i64 = match f.sync_days.trim() {
            "" => 30,
            d => d
                .parse()
                .ok()
                .filter(|d| (1..=365).contains(d))
                .ok_or_else(|| invalid("sync_days", "a whole number of days, 1–365"))?,
        };
        let sync_from = now - days * 86_400_000;
        let api_base = Some(f.api_base.trim().to_owned()).filter(|b| !b.is_empty());
        if platform.authorizes_by_code() {
            let pending = PendingShop {
                platform: platform.as_str().to_owned(),
                name: f.name.clone(),
                app_key: f.app_key.clone(),
                app_secret: f.app_secret.clone(),
                service_id: Some(f.service_id.trim().to_owned()).filter(|s| !s.is_empty()),
                api_base,
                sync_from,
            };
            let callback = format!("{}{CALLBACK_PATH}", app.public_url);
            let url = shop_authorization::begin(
                &app.db,
                &app.cipher,
                u.caller.tenant_id,
                &pending,
                &callback,
                app.marketplace_allow_api_base,
                now,
            )
            .await?;
            Ok(leaving(&u, platform, url))
        } else {
            let shop = NewShop {
                platform: platform.as_str().to_owned(),
                shop_ref: f.shop_ref.clone(),
                name: f.name.clone(),
                app_key: f.app_key.clone(),
                app_secret: f.app_secret.clone(),
                access_token: None,
                refresh_token: None,
                token_expires_at: None,
                api_base,
                sync_from,
            };
            shops::connect(
                &app.db,
                &app.cipher,
                u.caller.tenant_id,
                &shop,
                app.marketplace_allow_api_base,
                now,
            )
            .await?;
            Ok(Redirect::to("/console/overview#channel-data").into_response())
        }
    };
    match r.await {
        Ok(r) => r,
        Err(AuthorizationError::Shop(ShopError::Db(e))) => super::server_error(e),
        Err(e) => {
            let message = said(u.lang, &e);
            refused(&app, &u, f, message, StatusCode::BAD_REQUEST).await
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct Callback {
    #[serde(default)]
    code: String,
    #[serde(default)]
    state: String,
    /// The seller said no (`access_denied`), or the platform refused the request.
    #[serde(default)]
    error: String,
}

/// `GET /console/shops/authorized`: the platform sends the browser back with a code (or why
/// not); the shop is connected with the tokens it is worth.
pub(crate) async fn authorized(
    State(app): State<AppState>,
    u: ConsoleUser,
    Query(c): Query<Callback>,
) -> Response {
    if u.caller.role != Role::Admin {
        return refused(
            &app,
            &u,
            ShopForm::default(),
            not_admin(u.lang),
            StatusCode::FORBIDDEN,
        )
        .await;
    }
    let now = now_ms();
    let tenant = u.caller.tenant_id;
    if !c.error.is_empty() || c.code.trim().is_empty() {
        // The state is spent either way: a refused authorisation is begun again from the form.
        let _ = shop_authorizations::take(&app.db, &app.cipher, tenant, &c.state, now).await;
        // Only known answers are named: the text of a crafted link is not written into the page.
        let message = match (u.lang, c.error.as_str()) {
            (Lang::Zh, "access_denied") => "卖家在平台上拒绝了授权：可以重新发起".to_owned(),
            (Lang::Zh, _) => "卖家没有完成授权，平台没有给出授权码：可以重新发起".to_owned(),
            (Lang::En, "access_denied") => {
                "The seller declined on the platform; begin again".to_owned()
            }
            (Lang::En, _) => {
                "The seller did not finish authorising and the platform gave no code; begin again"
                    .to_owned()
            }
        };
        return refused(
            &app,
            &u,
            ShopForm::default(),
            message,
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
    let finished = shop_authorization::finish(
        &app.db,
        &app.cipher,
        tenant,
        &c.state,
        &c.code,
        app.marketplace_allow_api_base,
        now,
    )
    .await;
    match finished {
        Ok(_) => Redirect::to("/console/overview#channel-data").into_response(),
        Err(AuthorizationError::Shop(ShopError::Db(e))) => super::server_error(e),
        Err(e) => {
            let status = match e {
                AuthorizationError::Market(_) | AuthorizationError::NoShop(_) => {
                    StatusCode::BAD_GATEWAY
                }
                AuthorizationError::Shop(_) => StatusCode::BAD_REQUEST,
            };
            let message = said(u.lang, &e);
            refused(&app, &u, ShopForm::default(), message, status).await
        }
    }
}
