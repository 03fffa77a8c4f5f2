//! Console page for activities: flash sales, group buys, bargains and gifts for points, each
//! with its figures and a form to create one (amounts in yuan, times in China time).

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use siyu::platform::TenantId;

use super::form::{fen, number, opt_fen, time};
use crate::AppState;
use crate::api::ApiError;
use crate::console::{ConsoleUser, page};
use crate::i18n::{ActTr, Tr};
use siyu::convert::{bargain, flash, gifts, group_buy};
use siyu::know::report::yuan;
use siyu::platform::clock::{format_local, now_ms};
use siyu::platform::db::sql;

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

pub(crate) async fn render(app: &AppState, u: &ConsoleUser, errors: Vec<String>) -> Response {
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
        Ok::<_, ApiError>((fl, gr, ba, gi))
    };
    match run.await {
        Ok((flash, groups, bargains, gifts)) => page(ActivitiesPage {
            tr: u.lang.tr(),
            at: u.lang.at(),
            lang: u.lang.code(),
            user: u.caller.name.clone(),
            active: "activities",
            errors,
            flash,
            groups,
            bargains,
            gifts,
        }),
        Err(e) => e.into_response(),
    }
}

pub(crate) async fn activities_page(State(app): State<AppState>, u: ConsoleUser) -> Response {
    render(&app, &u, Vec::new()).await
}

/// After a create: a refusal is shown on the page with the figures, a success goes back to it.
pub(crate) async fn created(app: &AppState, u: &ConsoleUser, r: Result<(), String>) -> Response {
    match r {
        Ok(()) => Redirect::to("/console/activities").into_response(),
        Err(e) => render(app, u, vec![e]).await,
    }
}

pub(crate) fn may_write(u: &ConsoleUser) -> Result<(), String> {
    if u.caller.role.may_write() {
        Ok(())
    } else {
        Err(u.lang.at().read_only.to_owned())
    }
}

#[derive(Deserialize)]
pub(crate) struct FlashForm {
    name: String,
    sku: String,
    title: String,
    price: String,
    original_price: String,
    stock: i64,
    per_customer: i64,
    starts_at: String,
    ends_at: String,
    pay_minutes: i64,
}

pub(crate) async fn create_flash(
    State(app): State<AppState>,
    u: ConsoleUser,
    Form(f): Form<FlashForm>,
) -> Response {
    let r = async {
        may_write(&u)?;
        let i = flash::SaleInput {
            price: fen("price", &f.price)?,
            original_price: opt_fen("original_price", &f.original_price)?,
            starts_at: time("starts_at", &f.starts_at)?,
            ends_at: time("ends_at", &f.ends_at)?,
            name: f.name,
            sku: f.sku,
            title: f.title,
            stock: f.stock,
            per_customer: f.per_customer,
            pay_minutes: f.pay_minutes,
        };
        let created = app.flash.create(u.caller.tenant_id, &i, now_ms()).await;
        created.map(|_| ()).map_err(|e| e.to_string())
    };
    let r = r.await;
    created(&app, &u, r).await
}

#[derive(Deserialize)]
pub(crate) struct GroupForm {
    name: String,
    sku: String,
    title: String,
    price: String,
    original_price: String,
    team_size: i64,
    team_minutes: i64,
    /// Empty: no limit.
    #[serde(default)]
    stock: String,
    /// Empty: one team per customer.
    #[serde(default)]
    per_customer: String,
    starts_at: String,
    ends_at: String,
}

pub(crate) async fn create_group_buy(
    State(app): State<AppState>,
    u: ConsoleUser,
    Form(f): Form<GroupForm>,
) -> Response {
    let r = async {
        may_write(&u)?;
        let i = group_buy::GroupBuyInput {
            price: fen("price", &f.price)?,
            original_price: opt_fen("original_price", &f.original_price)?,
            starts_at: time("starts_at", &f.starts_at)?,
            ends_at: time("ends_at", &f.ends_at)?,
            name: f.name,
            sku: f.sku,
            title: f.title,
            team_size: f.team_size,
            team_minutes: f.team_minutes,
            stock: number("stock", &f.stock)?,
            per_customer: number("per_customer", &f.per_customer)?.unwrap_or(1),
        };
        let created = group_buy::create(&app.db, u.caller.tenant_id, &i, now_ms()).await;
        created.map(|_| ()).map_err(|e| e.to_string())
    };
    let r = r.await;
    created(&app, &u, r).await
}

#[derive(Deserialize)]
pub(crate) struct BargainForm {
    name: String,
    sku: String,
    title: String,
    price: String,
    floor_price: String,
    assists: i64,
    bargain_hours: i64,
    stock: i64,
    starts_at: String,
    ends_at: String,
}

pub(crate) async fn create_bargain(
    State(app): State<AppState>,
    u: ConsoleUser,
    Form(f): Form<BargainForm>,
) -> Response {
    let r = async {
        may_write(&u)?;
        let i = bargain::ItemInput {
            price: fen("price", &f.price)?,
            floor_price: fen("floor_price", &f.floor_price)?,
            starts_at: time("starts_at", &f.starts_at)?,
            ends_at: time("ends_at", &f.ends_at)?,
            name: f.name,
            sku: f.sku,
            title: f.title,
            assists: f.assists,
            bargain_hours: f.bargain_hours,
            stock: f.stock,
        };
        let created = bargain::create_item(&app.db, u.caller.tenant_id, &i, now_ms()).await;
        created.map(|_| ()).map_err(|e| e.to_string())
    };
    let r = r.await;
    created(&app, &u, r).await
}

#[derive(Deserialize)]
pub(crate) struct GiftForm {
    name: String,
    kind: gifts::GiftKind,
    #[serde(default)]
    template_id: String,
    points: i64,
    stock: i64,
    per_customer: i64,
}

pub(crate) async fn create_gift(
    State(app): State<AppState>,
    u: ConsoleUser,
    Form(f): Form<GiftForm>,
) -> Response {
    let r = async {
        may_write(&u)?;
        let template_id = match f.template_id.trim() {
            "" => None,
            t => Some(
                t.parse()
                    .map_err(|_| format!("template_id: {t:?} is not a number"))?,
            ),
        };
        let i = gifts::GiftInput {
            name: f.name,
            kind: f.kind,
            template_id,
            points: f.points,
            stock: f.stock,
            per_customer: f.per_customer,
        };
        let created = gifts::create(&app.db, u.caller.tenant_id, &i, now_ms()).await;
        created.map(|_| ()).map_err(|e| e.to_string())
    };
    let r = r.await;
    created(&app, &u, r).await
}
