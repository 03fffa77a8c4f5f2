//! The coupon templates page (优惠券): the brand's templates with what each offers and where it
//! is claimed, a form that makes one (amounts typed in yuan, validity as days or dates), the
//! claim channel changed in place, more coupons added or issuing stopped, and a template issued
//! to a segment snapshot, so that none of it waits for someone to call the API. Redemption in
//! store, shown on the same page, is `redemption`.

use askama::Template;
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::form::{fen, list, number, opt_time};
use super::{ConsoleUser, page, server_error};
use crate::AppState;
use crate::i18n::{CouponTr, Lang, Tr, claim_via_name, coupon_kind_name};
use siyu::convert::coupons::{
    self, ClaimVia, CouponError, Kind, Template as CouponTemplate, TemplateInput,
};
use siyu::know::CustomerId;
use siyu::know::report::yuan;
use siyu::know::segments;
use siyu::platform::Fen;
use siyu::platform::clock::{format_local, now_ms};

const KINDS: [Kind; 3] = [Kind::AmountOff, Kind::PercentOff, Kind::FreeGift];
const CLAIM_VIAS: [ClaimVia; 4] = [
    ClaimVia::Card,
    ClaimVia::H5,
    ClaimVia::Points,
    ClaimVia::Api,
];

/// What was typed into the form, kept as typed so that a refusal shows it again.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct TemplateForm {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub kind: String,
    /// Yuan off (代金券).
    #[serde(default)]
    pub value: String,
    /// How many 折 (折扣券): 8 or 8.5; stored as the percentage off.
    #[serde(default)]
    pub zhe: String,
    #[serde(default)]
    pub gift: String,
    #[serde(default)]
    pub threshold: String,
    #[serde(default)]
    pub valid_days: String,
    #[serde(default)]
    pub starts_at: String,
    #[serde(default)]
    pub ends_at: String,
    #[serde(default)]
    pub per_customer: String,
    #[serde(default)]
    pub total: String,
    #[serde(default)]
    pub channels: String,
    #[serde(default)]
    pub stores: String,
    #[serde(default)]
    pub stackable: String,
    #[serde(default)]
    pub claim_via: String,
}

impl Default for TemplateForm {
    fn default() -> Self {
        TemplateForm {
            name: String::new(),
            kind: Kind::AmountOff.as_str().into(),
            value: String::new(),
            zhe: String::new(),
            gift: String::new(),
            threshold: "0".into(),
            valid_days: String::new(),
            starts_at: String::new(),
            ends_at: String::new(),
            per_customer: "1".into(),
            total: String::new(),
            channels: String::new(),
            stores: String::new(),
            stackable: String::new(),
            claim_via: ClaimVia::Card.as_str().into(),
        }
    }
}

pub(crate) struct TemplateRow {
    id: i64,
    name: String,
    kind: &'static str,
    offer: String,
    threshold: String,
    validity: String,
    issued: i64,
    total: i64,
    claim_via: String,
    claim_via_name: &'static str,
    /// Stopped issuing (its end has passed).
    stopped: bool,
}

#[derive(Template)]
#[template(path = "console/coupons.html")]
pub(crate) struct CouponsPage {
    tr: &'static Tr,
    c: &'static CouponTr,
    lang: &'static str,
    user: String,
    active: &'static str,
    rows: Vec<TemplateRow>,
    errors: Vec<String>,
    notice: String,
    may_write: bool,
    /// Store staff (guides) redeem too.
    may_redeem: bool,
    /// The latest snapshots, for issuing.
    snapshots: Vec<super::segments::SnapshotOption>,
    form: TemplateForm,
    redeem_form: super::redemption::RedeemForm,
    kind_choices: Vec<(&'static str, &'static str)>,
    claim_choices: Vec<(&'static str, &'static str)>,
}

/// What a template offers, as an operator reads it: ¥30.00 off, 8 折 (20% off), a gift.
fn offer(lang: Lang, t: &CouponTemplate) -> String {
    match (t.kind.as_str(), lang) {
        ("amount_off", Lang::Zh) => format!("减 {}", yuan(Fen::new(t.value))),
        ("amount_off", Lang::En) => format!("{} off", yuan(Fen::new(t.value))),
        ("percent_off", Lang::Zh) => {
            let zhe = (100 - t.value) as f64 / 10.0;
            format!("{zhe} 折（减 {}%）", t.value)
        }
        ("percent_off", Lang::En) => format!("{}% off", t.value),
        _ => t.gift.clone().unwrap_or_default(),
    }
}

fn validity(lang: Lang, t: &CouponTemplate) -> String {
    match (t.valid_days, t.starts_at, t.ends_at, lang) {
        (Some(d), _, _, Lang::Zh) => format!("领取后 {d} 天"),
        (Some(d), _, _, Lang::En) => format!("{d} days after granted"),
        (None, s, Some(e), _) => format!(
            "{} – {}",
            s.map(format_local).unwrap_or_default(),
            format_local(e)
        ),
        _ => "—".into(),
    }
}

async fn render(
    app: &AppState,
    u: &ConsoleUser,
    errors: Vec<String>,
    form: TemplateForm,
    notice: String,
) -> Response {
    render_with(
        app,
        u,
        errors,
        form,
        super::redemption::RedeemForm::default(),
        notice,
    )
    .await
}

/// [`render`] with the redemption form as store staff typed it.
pub(super) async fn render_with(
    app: &AppState,
    u: &ConsoleUser,
    errors: Vec<String>,
    form: TemplateForm,
    redeem_form: super::redemption::RedeemForm,
    notice: String,
) -> Response {
    let templates = match coupons::templates(&app.db, u.caller.tenant_id).await {
        Ok(t) => t,
        Err(e) => return server_error(e),
    };
    let snapshots = match segments::recent_snapshots(&app.db, u.caller.tenant_id, 50).await {
        Ok(s) => s
            .into_iter()
            .map(super::segments::SnapshotOption::of)
            .collect(),
        Err(e) => return server_error(e),
    };
    let c = u.lang.coupons();
    let rows = templates
        .iter()
        .map(|t| TemplateRow {
            id: t.id,
            name: t.name.clone(),
            kind: coupon_kind_name(u.lang, &t.kind),
            offer: offer(u.lang, t),
            threshold: if t.threshold > Fen::ZERO {
                match u.lang {
                    Lang::Zh => format!("满 {}", yuan(t.threshold)),
                    Lang::En => format!("over {}", yuan(t.threshold)),
                }
            } else {
                c.no_threshold.to_owned()
            },
            validity: validity(u.lang, t),
            issued: t.issued,
            total: t.total,
            claim_via: t.claim_via.clone(),
            claim_via_name: claim_via_name(u.lang, &t.claim_via),
            stopped: t.stopped_at.is_some() || t.ends_at.is_some_and(|e| e <= now_ms()),
        })
        .collect();
    let refused = !errors.is_empty();
    let mut r = page(CouponsPage {
        tr: u.lang.tr(),
        c,
        lang: u.lang.code(),
        user: u.caller.name.clone(),
        active: "coupons",
        rows,
        errors,
        notice,
        may_write: u.caller.role.may_write(),
        may_redeem: super::redemption::may_redeem(u),
        snapshots,
        form,
        redeem_form,
        kind_choices: KINDS
            .iter()
            .map(|k| (k.as_str(), coupon_kind_name(u.lang, k.as_str())))
            .collect(),
        claim_choices: CLAIM_VIAS
            .iter()
            .map(|v| (v.as_str(), claim_via_name(u.lang, v.as_str())))
            .collect(),
    });
    if refused {
        *r.status_mut() = StatusCode::BAD_REQUEST;
    }
    r
}

/// What the page says after a form: counts and ids only, so a crafted link says nothing false.
#[derive(Deserialize)]
pub(crate) struct PageQuery {
    #[serde(default)]
    created: Option<String>,
    /// After issuing: granted, and refused as none left / at the limit / otherwise.
    #[serde(default)]
    issued: Option<usize>,
    #[serde(default)]
    gone: Option<usize>,
    #[serde(default)]
    held: Option<usize>,
    #[serde(default)]
    other: Option<usize>,
    /// After a redemption: the coupon redeemed.
    #[serde(default)]
    redeemed: Option<i64>,
    /// After a template stopped issuing, or had coupons added: the template, and how many.
    #[serde(default)]
    stopped: Option<i64>,
    #[serde(default)]
    added: Option<i64>,
    #[serde(default)]
    by: Option<i64>,
}

/// The notice a redirect asked for.
async fn notice_of(app: &AppState, u: &ConsoleUser, q: &PageQuery) -> String {
    let zh = u.lang == Lang::Zh;
    if q.created.is_some() {
        return u.lang.coupons().created.to_owned();
    }
    // Said only of the brand's own template, by its stored name: a crafted link says nothing.
    let named = async |id: i64| {
        coupons::template(&app.db, u.caller.tenant_id, id)
            .await
            .ok()
    };
    if let Some(t) = match q.stopped {
        Some(id) => named(id).await,
        None => None,
    } {
        return format!("{}「{}」", u.lang.coupons().stopped, t.name);
    }
    if let (Some(t), Some(n)) = (
        match q.added {
            Some(id) => named(id).await,
            None => None,
        },
        q.by,
    ) {
        return format!(
            "「{}」{}",
            t.name,
            u.lang
                .coupons()
                .added
                .replace("{n}", &n.to_string())
                .replace("{total}", &t.total.to_string())
        );
    }
    if let Some(n) = q.issued {
        let mut parts: Vec<String> = Vec::new();
        for (count, zh_why, en_why) in [
            (q.gone, "券已发完", "none left"),
            (q.held, "已达每人限领", "at the per-customer limit"),
            (q.other, "其他原因", "other reasons"),
        ] {
            if let Some(c) = count.filter(|c| *c > 0) {
                parts.push(if zh {
                    format!("{zh_why} {c}")
                } else {
                    format!("{en_why} {c}")
                });
            }
        }
        let refused: usize = [q.gone, q.held, q.other].iter().flatten().sum();
        return match (zh, refused) {
            (true, 0) => format!("已发放 {n} 张"),
            (true, r) => format!("已发放 {n} 张；未发 {r} 人（{}）", parts.join("，")),
            (false, 0) => format!("{n} coupons issued"),
            (false, r) => format!("{n} coupons issued; {r} not ({})", parts.join(", ")),
        };
    }
    if let Some(id) = q.redeemed {
        let tenant = u.caller.tenant_id;
        // Only a coupon that was redeemed is said to be: a hand-made link says nothing.
        let c = match coupons::coupon(&app.db, tenant, id).await {
            Ok(c) if c.status == siyu::convert::coupons::CouponStatus::Redeemed => c,
            _ => return String::new(),
        };
        let order = c.order_ref.clone().unwrap_or_default();
        // A gift coupon takes nothing off: staff are told what to hand over.
        let gift = match coupons::template(&app.db, tenant, c.template_id).await {
            Ok(t) if t.kind == Kind::FreeGift.as_str() => t.gift,
            _ => None,
        };
        let off = yuan(c.discount.unwrap_or(Fen::ZERO));
        return match (zh, gift) {
            (true, Some(g)) => format!(
                "核销成功：券码 {}，请交给顾客赠品「{g}」（订单 {order}）",
                c.code
            ),
            (true, None) => format!("核销成功：券码 {} 抵扣 {off}（订单 {order}）", c.code),
            (false, Some(g)) => format!(
                "Redeemed: coupon {}; hand over the gift {g:?} (order {order})",
                c.code
            ),
            (false, None) => format!("Redeemed: coupon {} took {off} off order {order}", c.code),
        };
    }
    String::new()
}

/// `GET /console/coupons`.
pub(crate) async fn coupons_page(
    State(app): State<AppState>,
    u: ConsoleUser,
    Query(q): Query<PageQuery>,
) -> Response {
    let notice = notice_of(&app, &u, &q).await;
    render(&app, &u, Vec::new(), TemplateForm::default(), notice).await
}

/// Full-width digits and point (８.５) as ASCII: an IME types them.
pub(super) fn half_width(v: &str) -> String {
    v.trim()
        .chars()
        .map(|c| match c {
            '０'..='９' => char::from(b'0' + (c as u32 - '０' as u32) as u8),
            '．' | '。' => '.',
            c => c,
        })
        .collect()
}

/// 折 as operators say it (8 折, 8.5 折) as the percentage off the template stores: 8 → 20.
fn percent_off(zhe: &str) -> Option<i64> {
    let t = half_width(zhe);
    let t = t.trim_end_matches('折').trim();
    let (whole, tenth) = t.split_once('.').unwrap_or((t, "0"));
    let whole: i64 = whole.parse().ok()?;
    let tenth: i64 = match tenth {
        "" => 0,
        d if d.len() == 1 => d.parse().ok()?,
        _ => return None,
    };
    let paid = whole * 10 + tenth; // in tenths of the price
    (10..=99).contains(&paid).then_some(100 - paid)
}

/// The channels a coupon may be used in, typed by their Chinese names or codes.
fn channels(lang: Lang, typed: &str) -> Result<Vec<String>, String> {
    use crate::i18n::CHANNELS;
    list(typed)
        .into_iter()
        .map(|w| {
            CHANNELS
                .iter()
                .find(|c| {
                    w.eq_ignore_ascii_case(c)
                        || crate::i18n::channel_name(Lang::Zh, c) == w
                        || (**c == "tmall" && (w == "淘宝" || w == "天猫/淘宝"))
                })
                .map(|c| (*c).to_owned())
                .ok_or_else(|| match lang {
                    Lang::Zh => format!(
                        "限用渠道：不认识「{w}」，可填 天猫、京东、抖音、拼多多、有赞、小红书、门店、小程序商城"
                    ),
                    Lang::En => format!("channels: {w:?} is not a channel"),
                })
        })
        .collect()
}

fn claim_via(v: &str) -> Option<ClaimVia> {
    CLAIM_VIAS.into_iter().find(|c| c.as_str() == v.trim())
}

/// The form read as a template, or why not in the page's language (naming the field).
fn read(lang: Lang, f: &TemplateForm) -> Result<TemplateInput, String> {
    let zh = lang == Lang::Zh;
    let label = |zh_label: &str, en: &str| {
        if zh {
            zh_label.to_owned()
        } else {
            en.to_owned()
        }
    };
    let kind =
        Kind::parse(f.kind.trim()).ok_or_else(|| label("类型：请选择", "kind: choose one"))?;
    let value = match kind {
        Kind::AmountOff => fen(lang, "value", &half_width(&f.value))
            .map_err(|_| {
                label(
                    &format!("面额：「{}」不是金额（元）", f.value),
                    &format!("amount: {:?} is not an amount in yuan", f.value),
                )
            })?
            .get(),
        Kind::PercentOff => percent_off(&f.zhe).ok_or_else(|| {
            label(
                &format!("折扣：「{}」不是 1–9.9 之间的折数（如 8 或 8.5）", f.zhe),
                &format!(
                    "discount: {:?} is not a 折 between 1 and 9.9 (8 or 8.5)",
                    f.zhe
                ),
            )
        })?,
        Kind::FreeGift => 0,
    };
    let threshold = match f.threshold.trim() {
        "" => Fen::ZERO,
        t => fen(lang, "threshold", t).map_err(|_| {
            label(
                &format!("使用门槛：「{t}」不是金额（元）"),
                &format!("threshold: {t:?} is not an amount in yuan"),
            )
        })?,
    };
    let whole = |v: &str, zh_label: &str, en: &str| {
        number(lang, en, v).map_err(|_| {
            label(
                &format!("{zh_label}：「{v}」不是整数"),
                &format!("{en}: {v:?} is not a whole number"),
            )
        })
    };
    let time = |v: &str, zh_label: &str, en: &str| {
        opt_time(lang, en, v).map_err(|_| {
            label(
                &format!("{zh_label}：「{v}」不是时间"),
                &format!("{en}: {v:?} is not a time"),
            )
        })
    };
    // Both given is refused by the template's own check, naming the two.
    let ends_at = time(&f.ends_at, "结束时间", "ends")?;
    let valid_days = whole(&f.valid_days, "领取后几天有效", "valid days")?;
    Ok(TemplateInput {
        name: f.name.clone(),
        kind,
        value,
        gift: Some(f.gift.trim().to_owned()).filter(|g| !g.is_empty()),
        threshold,
        starts_at: time(&f.starts_at, "开始时间", "starts")?,
        ends_at,
        valid_days,
        per_customer: whole(&f.per_customer, "每人限领", "per customer")?.unwrap_or(1),
        total: whole(&f.total, "发放总量", "total")?.unwrap_or(0),
        channels: channels(lang, &f.channels)?,
        stores: list(&f.stores),
        stackable: f.stackable == "1",
        claim_via: claim_via(&f.claim_via)
            .ok_or_else(|| label("领取渠道：请选择", "claimed via: choose one"))?,
    })
}

/// A refusal of the domain's check, in the page's language.
fn said(lang: Lang, e: &CouponError) -> String {
    match (lang, e) {
        (Lang::Zh, CouponError::Invalid { field, reason }) => {
            let text = match *field {
                "name" => "名称：须 1–60 个字",
                "value" if reason.contains("percentage") => "折扣：须为 1–99（减百分之几）",
                "value" => "面额：须大于 0 元",
                "gift" => "赠品：赠品券须写明赠品",
                "threshold" => "使用门槛：不能为负",
                "valid_days" if reason.contains("not both") => {
                    "有效期：领取后天数与结束时间只填一个"
                }
                "valid_days" => "领取后几天有效：须为 1–3650",
                "ends_at" if reason.contains("after") => "结束时间：须晚于开始时间",
                "ends_at" => "有效期：填写领取后几天有效，或填写结束时间",
                "per_customer" => "每人限领：至少 1 张",
                "total" => "发放总量：至少 1 张",
                _ => return super::form::unworded(lang, e),
            };
            text.to_owned()
        }
        _ => e.to_string(),
    }
}

/// `POST /console/coupons`: makes a template; a refusal shows the form again as it was typed.
pub(crate) async fn create(
    State(app): State<AppState>,
    u: ConsoleUser,
    Form(f): Form<TemplateForm>,
) -> Response {
    if !u.caller.role.may_write() {
        let mut r = render(
            &app,
            &u,
            vec![u.lang.coupons().read_only.into()],
            f,
            String::new(),
        )
        .await;
        *r.status_mut() = StatusCode::FORBIDDEN;
        return r;
    }
    let input = match read(u.lang, &f) {
        Ok(i) => i,
        Err(e) => return render(&app, &u, vec![e], f, String::new()).await,
    };
    match coupons::create_template(&app.db, u.caller.tenant_id, &input, now_ms()).await {
        Ok(_) => Redirect::to("/console/coupons?created=1").into_response(),
        Err(e @ CouponError::Invalid { .. }) => {
            let said = said(u.lang, &e);
            render(&app, &u, vec![said], f, String::new()).await
        }
        Err(e) => server_error(e),
    }
}

#[derive(Deserialize)]
pub(crate) struct ClaimViaForm {
    claim_via: String,
}

/// A change to one template: a writer's, of a template the path names; otherwise the answer.
async fn template_to_change(app: &AppState, u: &ConsoleUser, id: &str) -> Result<i64, Response> {
    if !u.caller.role.may_write() {
        let said = u.lang.coupons().read_only.into();
        return Err(refused(app, u, said, StatusCode::FORBIDDEN).await);
    }
    id.parse::<i64>()
        .map_err(|_| (StatusCode::NOT_FOUND, "").into_response())
}

/// A template changed: back to the page at `to`, or the store's refusal.
fn changed(
    r: Result<CouponTemplate, CouponError>,
    to: impl FnOnce(&CouponTemplate) -> String,
) -> Response {
    match r {
        Ok(t) => Redirect::to(&to(&t)).into_response(),
        Err(CouponError::NoTemplate(_)) => (StatusCode::NOT_FOUND, "").into_response(),
        Err(e) => server_error(e),
    }
}

/// `POST /console/coupons/{id}/claim-via`: where the template is claimed from now on.
pub(crate) async fn change_claim_via(
    State(app): State<AppState>,
    u: ConsoleUser,
    Path(id): Path<String>,
    Form(f): Form<ClaimViaForm>,
) -> Response {
    let id = match template_to_change(&app, &u, &id).await {
        Ok(id) => id,
        Err(r) => return r,
    };
    let Some(via) = claim_via(&f.claim_via) else {
        return (StatusCode::NOT_FOUND, "").into_response();
    };
    let r = coupons::set_claim_via(&app.db, u.caller.tenant_id, id, via).await;
    changed(r, |_| "/console/coupons".into())
}

/// `POST /console/coupons/{id}/stop`: the template issues no more (停止发放).
pub(crate) async fn stop(
    State(app): State<AppState>,
    u: ConsoleUser,
    Path(id): Path<String>,
) -> Response {
    let id = match template_to_change(&app, &u, &id).await {
        Ok(id) => id,
        Err(r) => return r,
    };
    let r = coupons::stop_issuing(&app.db, u.caller.tenant_id, id, now_ms()).await;
    changed(r, |t| format!("/console/coupons?stopped={}", t.id))
}

#[derive(Deserialize)]
pub(crate) struct AddForm {
    #[serde(default)]
    add: String,
}

/// `POST /console/coupons/{id}/total`: more coupons for a template (追加数量).
pub(crate) async fn add_total(
    State(app): State<AppState>,
    u: ConsoleUser,
    Path(id): Path<String>,
    Form(f): Form<AddForm>,
) -> Response {
    let id = match template_to_change(&app, &u, &id).await {
        Ok(id) => id,
        Err(r) => return r,
    };
    let more = match f.add.trim().parse::<i64>() {
        Ok(n) if (1..=coupons::MOST_ADDED).contains(&n) => n,
        _ => {
            let said = format!("{}（「{}」）", u.lang.coupons().bad_add, f.add.trim());
            return refused(&app, &u, said, StatusCode::BAD_REQUEST).await;
        }
    };
    let r = coupons::add_to_total(&app.db, u.caller.tenant_id, id, more).await;
    changed(r, |t| format!("/console/coupons?added={}&by={more}", t.id))
}

async fn refused(app: &AppState, u: &ConsoleUser, said: String, status: StatusCode) -> Response {
    let mut r = render(app, u, vec![said], TemplateForm::default(), String::new()).await;
    *r.status_mut() = status;
    r
}

#[derive(Deserialize)]
pub(crate) struct IssueForm {
    #[serde(default)]
    snapshot_id: String,
}

/// `POST /console/coupons/{id}/issue`: the template given to everyone in a segment snapshot,
/// within its total and per-customer limit; the page says how many got one and why the rest not.
pub(crate) async fn issue(
    State(app): State<AppState>,
    u: ConsoleUser,
    Path(id): Path<String>,
    Form(f): Form<IssueForm>,
) -> Response {
    let zh = u.lang == Lang::Zh;
    if !u.caller.role.may_write() {
        return refused(
            &app,
            &u,
            u.lang.coupons().read_only.into(),
            StatusCode::FORBIDDEN,
        )
        .await;
    }
    let Ok(id) = id.parse::<i64>() else {
        return (StatusCode::NOT_FOUND, "").into_response();
    };
    let Ok(snapshot) = f.snapshot_id.trim().parse::<i64>() else {
        let said = if zh {
            "人群快照：请选择要发放的人群快照"
        } else {
            "snapshot: choose one"
        };
        return refused(&app, &u, said.into(), StatusCode::BAD_REQUEST).await;
    };
    let tenant = u.caller.tenant_id;
    let members = match segments::snapshot_members(&app.db, tenant, snapshot).await {
        Ok((_, m)) => m,
        Err(segments::SegmentError::SnapshotNotFound(_)) => {
            let said = if zh {
                "人群快照：找不到这个快照"
            } else {
                "snapshot: not found"
            };
            return refused(&app, &u, said.into(), StatusCode::NOT_FOUND).await;
        }
        Err(e) => return server_error(e),
    };
    let customers: Vec<CustomerId> = members.iter().map(|c| CustomerId::new(c.into())).collect();
    if customers.is_empty() {
        let said = if zh {
            "人群快照：这个快照里没有人"
        } else {
            "snapshot: it holds nobody"
        };
        return refused(&app, &u, said.into(), StatusCode::BAD_REQUEST).await;
    }
    let source = format!("snapshot:{snapshot}");
    match coupons::grant(&app.db, tenant, id, &customers, &source, now_ms()).await {
        Ok(g) => {
            // Answered by a redirect, so that reloading the page does not issue again.
            let (mut gone, mut held, mut other) = (0, 0, 0);
            for (_, why) in &g.refused {
                match why.as_str() {
                    w if w.starts_with("all coupons") => gone += 1,
                    w if w.starts_with("already holds") => held += 1,
                    _ => other += 1,
                }
            }
            let to = format!(
                "/console/coupons?issued={}&gone={gone}&held={held}&other={other}",
                g.granted.len()
            );
            Redirect::to(&to).into_response()
        }
        Err(CouponError::NoTemplate(_)) => (StatusCode::NOT_FOUND, "").into_response(),
        Err(CouponError::Refused(why)) => {
            let said = match (zh, why.as_str()) {
                (true, w) if w.ends_with("has not started") => {
                    "发放：这个模板还没到开始时间".to_owned()
                }
                (true, w) if w.ends_with("has ended") => "发放：这个模板已过结束时间".to_owned(),
                (true, w) if w.ends_with("has stopped issuing") => {
                    "发放：这个模板已停止发放".to_owned()
                }
                (true, w) if w.starts_with("all coupons") => "发放：这个模板的券已发完".to_owned(),
                (_, w) => w.to_owned(),
            };
            refused(&app, &u, said, StatusCode::CONFLICT).await
        }
        Err(e) => server_error(e),
    }
}
