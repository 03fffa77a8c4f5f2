//! Console page for activities: flash sales, group buys, bargains and gifts for points, each
//! with its figures and a form to create one (amounts in yuan, times in China time).

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use siyu::platform::TenantId;

use super::form::{fen, number, opt_fen, required_number, time};
use crate::AppState;
use crate::api::ApiError;
use crate::console::{ConsoleUser, page};
use crate::i18n::{ActTr, Tr, refusals};
use siyu::convert::{bargain, flash, gifts, group_buy};
use siyu::know::report::yuan;
use siyu::platform::clock::{format_local, now_ms};
use siyu::platform::db::sql;
use siyu::platform::refusal::{Refusal, Refuse};

pub struct FlashRow {
    pub id: i64,
    pub name: String,
    pub price: String,
    pub stock: i64,
    pub sold: i64,
    pub left: i64,
    pub pending: i64,
    pub paid: i64,
    pub expired: i64,
    pub window: String,
}

pub struct GroupRow {
    pub id: i64,
    pub name: String,
    pub price: String,
    pub team_size: i64,
    pub open: i64,
    pub full: i64,
    pub cancelled: i64,
}

pub struct BargainRow {
    pub id: i64,
    pub name: String,
    pub prices: String,
    pub assists: i64,
    pub stock: i64,
    pub sold: i64,
    pub started: i64,
    pub reached: i64,
    pub bought: i64,
}

pub struct GiftRow {
    pub name: String,
    pub kind: String,
    pub points: i64,
    pub stock: i64,
    pub redeemed: i64,
}

#[derive(Template)]
#[template(path = "console/activities.html")]
pub(crate) struct ActivitiesPage {
    tr: &'static Tr,
    at: &'static ActTr,
    lang: &'static str,
    user: String,
    active: &'static str,
    errors: Vec<String>,
    typed: Typed,
    /// The coupon templates a coupon gift may hand out: (id, name).
    templates: Vec<(i64, String)>,
    flash: Vec<FlashRow>,
    groups: Vec<GroupRow>,
    bargains: Vec<BargainRow>,
    gifts: Vec<GiftRow>,
}

/// Counts by status of one activity's rows, e.g. reservations of a flash sale.
pub(crate) async fn by_status(
    app: &AppState,
    q: &str,
    tenant: TenantId,
    id: i64,
) -> Result<Vec<(String, i64)>, ApiError> {
    Ok(app.db.fetch_all(&sql(q).bind(tenant).bind(id)).await?)
}

pub(crate) fn count(rows: &[(String, i64)], status: &str) -> i64 {
    rows.iter()
        .find(|r| r.0 == status)
        .map(|r| r.1)
        .unwrap_or(0)
}

pub(crate) async fn render(
    app: &AppState,
    u: &ConsoleUser,
    errors: Vec<String>,
    typed: Typed,
) -> Response {
    let tenant = u.caller.tenant_id;
    let run = async {
        let mut fl = Vec::new();
        for s in app.flash.list(tenant).await? {
            let st: Vec<(String, i64)> = app
                .flash
                .counts(tenant, s.id)
                .await?
                .into_iter()
                .map(|(status, _, units)| (status.to_string(), units))
                .collect();
            fl.push(FlashRow {
                id: s.id,
                price: yuan(s.price),
                stock: s.stock,
                sold: s.sold,
                left: app.flash.left(tenant, s.id).await?,
                pending: count(&st, "pending"),
                paid: count(&st, "paid"),
                expired: count(&st, "expired"),
                window: format!(
                    "{} – {}",
                    format_local(s.starts_at),
                    format_local(s.ends_at)
                ),
                name: s.name,
            });
        }
        let mut gr = Vec::new();
        for g in group_buy::list(&app.db, tenant).await? {
            let st = by_status(app, "SELECT status, COUNT(*) FROM teams WHERE tenant_id = $1 AND group_buy_id = $2 GROUP BY status", tenant, g.id).await?;
            gr.push(GroupRow {
                id: g.id,
                price: yuan(g.price),
                team_size: g.team_size,
                open: count(&st, "open"),
                full: count(&st, "full"),
                cancelled: count(&st, "cancelled"),
                name: g.name,
            });
        }
        let mut ba = Vec::new();
        for i in bargain::items(&app.db, tenant).await? {
            let st = by_status(app, "SELECT status, COUNT(*) FROM bargains WHERE tenant_id = $1 AND item_id = $2 GROUP BY status", tenant, i.id).await?;
            ba.push(BargainRow {
                id: i.id,
                prices: format!("{} → {}", yuan(i.price), yuan(i.floor_price)),
                assists: i.assists,
                stock: i.stock,
                sold: i.sold,
                started: st.iter().map(|r| r.1).sum(),
                reached: count(&st, "reached"),
                bought: count(&st, "bought"),
                name: i.name,
            });
        }
        let gi = gifts::list(&app.db, tenant)
            .await?
            .into_iter()
            .map(|g| GiftRow {
                kind: if g.kind == "coupon" {
                    u.lang.at().coupon.into()
                } else {
                    u.lang.at().goods.into()
                },
                name: g.name,
                points: g.points,
                stock: g.stock,
                redeemed: g.redeemed,
            })
            .collect();
        let templates = siyu::convert::coupons::templates(&app.db, tenant)
            .await?
            .into_iter()
            .map(|t| (t.id, t.name))
            .collect();
        Ok::<_, ApiError>((fl, gr, ba, gi, templates))
    };
    match run.await {
        Ok((flash, groups, bargains, gifts, templates)) => page(ActivitiesPage {
            tr: u.lang.tr(),
            at: u.lang.at(),
            lang: u.lang.code(),
            user: u.caller.name.clone(),
            active: "activities",
            errors,
            typed,
            templates,
            flash,
            groups,
            bargains,
            gifts,
        }),
        Err(e) => e.into_response(),
    }
}

pub(crate) async fn activities_page(State(app): State<AppState>, u: ConsoleUser) -> Response {
    render(&app, &u, Vec::new(), Typed::default()).await
}

/// What was typed into the four forms: the one refused comes back as it was sent, the others
/// with their starting values.
#[derive(Default)]
pub(crate) struct Typed {
    pub flash: FlashForm,
    pub group: GroupForm,
    pub bargain: BargainForm,
    pub gift: GiftForm,
}

/// Why a create did not happen: something the operator can mend (said on the page beside what
/// was typed, 400 or 403), or the server's own failure (500, logged).
pub(crate) enum Refused {
    Said(String, StatusCode),
    Server(String),
}

impl From<String> for Refused {
    fn from(said: String) -> Refused {
        Refused::Said(said, StatusCode::BAD_REQUEST)
    }
}

/// After a create: a refusal is shown on the page beside what was typed, a success goes back
/// to it.
pub(crate) async fn created(
    app: &AppState,
    u: &ConsoleUser,
    r: Result<(), Refused>,
    typed: Typed,
) -> Response {
    match r {
        Ok(()) => Redirect::to("/console/activities").into_response(),
        Err(Refused::Server(e)) => super::server_error(e),
        Err(Refused::Said(e, status)) => {
            let mut r = render(app, u, vec![e], typed).await;
            if r.status().is_success() {
                *r.status_mut() = status;
            }
            r
        }
    }
}

pub(crate) fn may_write(u: &ConsoleUser) -> Result<(), Refused> {
    if u.caller.role.may_write() {
        Ok(())
    } else {
        Err(Refused::Said(
            u.lang.at().read_only.to_owned(),
            StatusCode::FORBIDDEN,
        ))
    }
}

/// A domain refusal (`field: reason`) in the page's language; a failure of the store is the
/// server's, not the form's.
fn said<E: Refuse + std::fmt::Display>(u: &ConsoleUser, e: E) -> Refused {
    match e.refusal() {
        Refusal::Internal => Refused::Server(e.to_string()),
        Refusal::NotFound(_) => Refused::Said(
            refusals::said(u.lang, &e.to_string()),
            StatusCode::NOT_FOUND,
        ),
        _ => Refused::from(refusals::said(u.lang, &e.to_string())),
    }
}

/// Every field as text, so that a bad one is refused by name with the rest kept.
#[derive(Deserialize, Clone)]
#[serde(default)]
pub(crate) struct FlashForm {
    pub name: String,
    pub sku: String,
    pub title: String,
    pub price: String,
    pub original_price: String,
    pub stock: String,
    pub per_customer: String,
    pub starts_at: String,
    pub ends_at: String,
    pub pay_minutes: String,
}

impl Default for FlashForm {
    fn default() -> Self {
        FlashForm {
            name: String::new(),
            sku: String::new(),
            title: String::new(),
            price: String::new(),
            original_price: String::new(),
            stock: "100".into(),
            per_customer: "1".into(),
            starts_at: String::new(),
            ends_at: String::new(),
            pay_minutes: "15".into(),
        }
    }
}

pub(crate) async fn create_flash(
    State(app): State<AppState>,
    u: ConsoleUser,
    Form(f): Form<FlashForm>,
) -> Response {
    let l = u.lang;
    let r = async {
        may_write(&u)?;
        let i = flash::SaleInput {
            price: fen(l, "price", &f.price)?,
            original_price: opt_fen(l, "original_price", &f.original_price)?,
            stock: required_number(l, "stock", &f.stock)?,
            per_customer: required_number(l, "per_customer", &f.per_customer)?,
            starts_at: time(l, "starts_at", &f.starts_at)?,
            ends_at: time(l, "ends_at", &f.ends_at)?,
            pay_minutes: required_number(l, "pay_minutes", &f.pay_minutes)?,
            name: f.name.clone(),
            sku: f.sku.clone(),
            title: f.title.clone(),
        };
        let created = app.flash.create(u.caller.tenant_id, &i, now_ms()).await;
        created.map(|_| ()).map_err(|e| said(&u, e))
    };
    let r = r.await;
    let typed = Typed {
        flash: f,
        ..Typed::default()
    };
    created(&app, &u, r, typed).await
}

#[derive(Deserialize, Clone)]
#[serde(default)]
pub(crate) struct GroupForm {
    pub name: String,
    pub sku: String,
    pub title: String,
    pub price: String,
    pub original_price: String,
    pub team_size: String,
    pub team_minutes: String,
    /// Empty: no limit.
    pub stock: String,
    /// Empty: one team per customer.
    pub per_customer: String,
    pub starts_at: String,
    pub ends_at: String,
}

impl Default for GroupForm {
    fn default() -> Self {
        GroupForm {
            name: String::new(),
            sku: String::new(),
            title: String::new(),
            price: String::new(),
            original_price: String::new(),
            team_size: "3".into(),
            team_minutes: "1440".into(),
            stock: String::new(),
            per_customer: "1".into(),
            starts_at: String::new(),
            ends_at: String::new(),
        }
    }
}

pub(crate) async fn create_group_buy(
    State(app): State<AppState>,
    u: ConsoleUser,
    Form(f): Form<GroupForm>,
) -> Response {
    let l = u.lang;
    let r = async {
        may_write(&u)?;
        let i = group_buy::GroupBuyInput {
            price: fen(l, "price", &f.price)?,
            original_price: opt_fen(l, "original_price", &f.original_price)?,
            starts_at: time(l, "starts_at", &f.starts_at)?,
            ends_at: time(l, "ends_at", &f.ends_at)?,
            team_size: required_number(l, "team_size", &f.team_size)?,
            team_minutes: required_number(l, "team_minutes", &f.team_minutes)?,
            stock: number(l, "stock", &f.stock)?,
            per_customer: number(l, "per_customer", &f.per_customer)?.unwrap_or(1),
            name: f.name.clone(),
            sku: f.sku.clone(),
            title: f.title.clone(),
        };
        let created = group_buy::create(&app.db, u.caller.tenant_id, &i, now_ms()).await;
        created.map(|_| ()).map_err(|e| said(&u, e))
    };
    let r = r.await;
    let typed = Typed {
        group: f,
        ..Typed::default()
    };
    created(&app, &u, r, typed).await
}

#[derive(Deserialize, Clone)]
#[serde(default)]
pub(crate) struct BargainForm {
    pub name: String,
    pub sku: String,
    pub title: String,
    pub price: String,
    pub floor_price: String,
    pub assists: String,
    pub bargain_hours: String,
    pub stock: String,
    pub starts_at: String,
    pub ends_at: String,
}

impl Default for BargainForm {
    fn default() -> Self {
        BargainForm {
            name: String::new(),
            sku: String::new(),
            title: String::new(),
            price: String::new(),
            floor_price: String::new(),
            assists: "5".into(),
            bargain_hours: "24".into(),
            stock: "100".into(),
            starts_at: String::new(),
            ends_at: String::new(),
        }
    }
}

pub(crate) async fn create_bargain(
    State(app): State<AppState>,
    u: ConsoleUser,
    Form(f): Form<BargainForm>,
) -> Response {
    let l = u.lang;
    let r = async {
        may_write(&u)?;
        let i = bargain::ItemInput {
            price: fen(l, "price", &f.price)?,
            floor_price: fen(l, "floor_price", &f.floor_price)?,
            starts_at: time(l, "starts_at", &f.starts_at)?,
            ends_at: time(l, "ends_at", &f.ends_at)?,
            assists: required_number(l, "assists", &f.assists)?,
            bargain_hours: required_number(l, "bargain_hours", &f.bargain_hours)?,
            stock: required_number(l, "stock", &f.stock)?,
            name: f.name.clone(),
            sku: f.sku.clone(),
            title: f.title.clone(),
        };
        let created = bargain::create_item(&app.db, u.caller.tenant_id, &i, now_ms()).await;
        created.map(|_| ()).map_err(|e| said(&u, e))
    };
    let r = r.await;
    let typed = Typed {
        bargain: f,
        ..Typed::default()
    };
    created(&app, &u, r, typed).await
}

#[derive(Deserialize, Clone)]
#[serde(default)]
pub(crate) struct GiftForm {
    pub name: String,
    pub kind: String,
    /// A coupon gift's template, picked from the brand's templates.
    pub template_id: String,
    pub points: String,
    pub stock: String,
    pub per_customer: String,
}

impl Default for GiftForm {
    fn default() -> Self {
        GiftForm {
            name: String::new(),
            kind: "goods".into(),
            template_id: String::new(),
            points: "100".into(),
            stock: "100".into(),
            per_customer: "1".into(),
        }
    }
}

pub(crate) async fn create_gift(
    State(app): State<AppState>,
    u: ConsoleUser,
    Form(f): Form<GiftForm>,
) -> Response {
    let l = u.lang;
    let r = async {
        may_write(&u)?;
        let kind = match f.kind.as_str() {
            "coupon" => gifts::GiftKind::Coupon,
            "goods" => gifts::GiftKind::Goods,
            _ => return Err(refusals::invalid(l, "kind", "must not be empty").into()),
        };
        let i = gifts::GiftInput {
            name: f.name.clone(),
            kind,
            template_id: number(l, "template_id", &f.template_id)?,
            points: required_number(l, "points", &f.points)?,
            stock: required_number(l, "stock", &f.stock)?,
            per_customer: required_number(l, "per_customer", &f.per_customer)?,
        };
        let created = gifts::create(&app.db, u.caller.tenant_id, &i, now_ms()).await;
        created.map(|_| ()).map_err(|e| said(&u, e))
    };
    let r = r.await;
    let typed = Typed {
        gift: f,
        ..Typed::default()
    };
    created(&app, &u, r, typed).await
}
