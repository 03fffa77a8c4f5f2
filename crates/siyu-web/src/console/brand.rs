//! How the brand looks to its customers (品牌外观): the colour of buttons and prices and the logo
//! on the H5 pages and the package card's landing page, beside the brand's name. Admins change
//! it; everyone sees it, with a preview of a button in the colour.

use askama::Template;
use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::{ConsoleUser, page, server_error};
use crate::AppState;
use crate::i18n::{Lang, Tr};
use siyu::platform::access::Role;
use siyu::platform::brand::{self, BrandError, Look};
use siyu::platform::clock::now_ms;

/// What was typed, kept as typed.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct BrandForm {
    #[serde(default)]
    pub color: String,
    #[serde(default)]
    pub logo_url: String,
}

#[derive(Template)]
#[template(path = "console/brand.html")]
struct BrandPage {
    tr: &'static Tr,
    lang: &'static str,
    user: String,
    active: &'static str,
    w: &'static Words,
    name: String,
    /// The colour the preview shows: the one typed when it reads, else the kept one.
    preview: String,
    errors: Vec<String>,
    notice: &'static str,
    may_write: bool,
    form: BrandForm,
}

pub(crate) struct Words {
    pub title: &'static str,
    pub help: &'static str,
    pub color: &'static str,
    pub logo_url: &'static str,
    pub logo_hint: &'static str,
    pub preview: &'static str,
    pub button: &'static str,
    pub save: &'static str,
    pub saved: &'static str,
    pub admins_only: &'static str,
}

static ZH: Words = Words {
    title: "品牌外观",
    help: "顾客打开的活动页、领券页和包裹卡领取页用这里的颜色和标志，并显示品牌名称。",
    color: "主色（按钮和价格）",
    logo_url: "标志图片地址",
    logo_hint: "以 https:// 开头的图片地址（建议透明底的 PNG 图片，高 56 像素以上）；留空则只显示品牌名称",
    preview: "预览",
    button: "立即领取",
    save: "保存",
    saved: "已保存：顾客页面一分钟内换上新的外观",
    admins_only: "只有管理员可以修改品牌外观",
};

static EN: Words = Words {
    title: "Brand look",
    help: "Customers' activity, coupon and package-card pages use this colour and logo beside the brand's name.",
    color: "Colour (buttons and prices)",
    logo_url: "Logo address",
    logo_hint: "An https image address (a transparent PNG at least 56 pixels high); empty shows the name alone",
    preview: "Preview",
    button: "Claim now",
    save: "Save",
    saved: "Saved: customers' pages wear it within a minute",
    admins_only: "Only admins change the brand's look",
};

fn words(lang: Lang) -> &'static Words {
    match lang {
        Lang::Zh => &ZH,
        Lang::En => &EN,
    }
}

/// A refusal of the look in the page's language, naming the field.
fn said(lang: Lang, e: &BrandError) -> String {
    match (lang, e) {
        (
            Lang::Zh,
            BrandError::Invalid {
                field: "color",
                reason,
            },
        ) if reason.contains("light") => {
            "主色：太浅了，按钮上的白字看不清（与白色的对比度低于 3:1），请选深一些的颜色".into()
        }
        (Lang::Zh, BrandError::Invalid { field: "color", .. }) => {
            "主色：请填写如 #e4393c 的颜色值".into()
        }
        (Lang::Zh, BrandError::Invalid { .. }) => {
            "标志图片地址：须以 https:// 开头，500 个字符以内".into()
        }
        (_, e) => e.to_string(),
    }
}

async fn render(
    app: &AppState,
    u: &ConsoleUser,
    form: Option<BrandForm>,
    errors: Vec<String>,
    notice: &'static str,
    status: StatusCode,
) -> Response {
    let b = match brand::load(&app.db, u.caller.tenant_id).await {
        Ok(b) => b,
        Err(e) => return server_error(e),
    };
    let form = form.unwrap_or_else(|| BrandForm {
        color: b.color.clone(),
        logo_url: b.logo_url.clone().unwrap_or_default(),
    });
    let typed = Look {
        color: Some(form.color.clone()),
        logo_url: None,
    };
    let preview = brand::check(&typed)
        .ok()
        .and_then(|l| l.color)
        .unwrap_or_else(|| b.color.clone());
    let mut r = page(BrandPage {
        tr: u.lang.tr(),
        lang: u.lang.code(),
        user: u.caller.name.clone(),
        active: "brand",
        w: words(u.lang),
        name: b.name,
        preview,
        errors,
        notice,
        may_write: u.caller.role == Role::Admin,
        form,
    });
    *r.status_mut() = status;
    r
}

#[derive(Deserialize)]
pub(crate) struct PageQuery {
    saved: Option<String>,
}

/// `GET /console/brand`
pub(crate) async fn brand_page(
    State(app): State<AppState>,
    u: ConsoleUser,
    Query(q): Query<PageQuery>,
) -> Response {
    let notice = if q.saved.is_some() {
        words(u.lang).saved
    } else {
        ""
    };
    render(&app, &u, None, Vec::new(), notice, StatusCode::OK).await
}

/// `POST /console/brand`: admins keep a new look; a refusal names the field with what was typed.
pub(crate) async fn save(
    State(app): State<AppState>,
    u: ConsoleUser,
    Form(f): Form<BrandForm>,
) -> Response {
    if u.caller.role != Role::Admin {
        let said = words(u.lang).admins_only.to_owned();
        return render(&app, &u, Some(f), vec![said], "", StatusCode::FORBIDDEN).await;
    }
    let look = Look {
        color: Some(f.color.clone()),
        logo_url: Some(f.logo_url.clone()),
    };
    match brand::save(&app.db, u.caller.tenant_id, &look, now_ms()).await {
        Ok(_) => {
            app.brands.forget(u.caller.tenant_id);
            Redirect::to("/console/brand?saved=1").into_response()
        }
        Err(BrandError::Db(e)) => server_error(e),
        Err(e) => {
            let said = said(u.lang, &e);
            render(&app, &u, Some(f), vec![said], "", StatusCode::BAD_REQUEST).await
        }
    }
}
