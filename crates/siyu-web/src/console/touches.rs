//! The 360 page's view of what the brand did with a customer: their membership and points, the
//! coupons they hold, the messages sent to them (with where each stands), their WeCom staff and
//! groups; and what an operator can do from there: give a coupon, put on a tag.

use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::{ConsoleUser, MessagePage, page, server_error};
use crate::AppState;
use crate::i18n::Lang;
use siyu::connect::{groups, live_codes};
use siyu::convert::coupons::{self, CouponStatus};
use siyu::convert::{members, points};
use siyu::engage::outbox::progress::{self, Received};
use siyu::know::CustomerId;
use siyu::know::tags;
use siyu::platform::clock::{format_local, now_ms};

pub(crate) struct MemberView {
    pub member_no: String,
    pub tier: String,
    pub joined: String,
    pub points: i64,
}

/// What the brand did with the customer, in the reader's words.
#[derive(Default)]
pub(crate) struct Touches {
    pub member: Option<MemberView>,
    /// (time, what, change, reference)
    pub ledger: Vec<(String, &'static str, i64, String)>,
    /// (template name, code, state (and who redeemed it), valid until)
    pub coupons: Vec<(String, String, String, String)>,
    /// (time, channel and purpose, campaign, where it stands)
    pub messages: Vec<(String, String, String, String)>,
    /// (staff member, added, through which code, state)
    pub contacts: Vec<(String, String, String, String)>,
    /// (group, kind)
    pub groups: Vec<(String, String)>,
    /// (when, who, what)
    pub notes: Vec<(String, String, String)>,
    /// Templates that may be given now, and manual tags: (id, name).
    pub grantable: Vec<(i64, String)>,
    pub manual_tags: Vec<(i64, String)>,
}

fn ledger_kind(lang: Lang, kind: &str) -> &'static str {
    match (kind, lang) {
        ("earn", Lang::Zh) => "消费获得",
        ("redeem", Lang::Zh) => "兑换",
        ("adjust", Lang::Zh) => "人工调整",
        ("expire", Lang::Zh) => "到期",
        ("reverse", Lang::Zh) => "退款扣回",
        ("earn", Lang::En) => "Earned",
        ("redeem", Lang::En) => "Redeemed",
        ("adjust", Lang::En) => "Adjusted",
        ("expire", Lang::En) => "Expired",
        ("reverse", Lang::En) => "Refund reversal",
        (_, Lang::Zh) => "其他",
        (_, Lang::En) => "Other",
    }
}

fn coupon_state(lang: Lang, status: CouponStatus, valid_until: i64, now: i64) -> &'static str {
    let zh = lang == Lang::Zh;
    match status {
        CouponStatus::Redeemed => {
            if zh {
                "已使用"
            } else {
                "Used"
            }
        }
        CouponStatus::Refunded => {
            if zh {
                "已随退款失效"
            } else {
                "Lapsed with a refund"
            }
        }
        _ if valid_until <= now => {
            if zh {
                "已过期"
            } else {
                "Expired"
            }
        }
        _ => {
            if zh {
                "可使用"
            } else {
                "Usable"
            }
        }
    }
}

/// Where one message stands, as the campaign list says it.
fn message_state(lang: Lang, m: &Received, now: i64) -> String {
    let zh = lang == Lang::Zh;
    let at = format_local;
    let pick = |z: &str, e: &str| if zh { z.to_owned() } else { e.to_owned() };
    match m.status.as_str() {
        "queued" if m.reason.is_some() => pick("等待重试", "To retry"),
        "queued" if m.not_before > now => {
            let t = at(m.not_before);
            pick(
                &format!("等待免打扰时段结束（至 {t}）"),
                &format!("Held until {t}"),
            )
        }
        "queued" => pick("排队中", "Queued"),
        "sending" => pick("提交短信平台中", "With the provider"),
        "sent" => {
            let t = m.sent_at.map(at).unwrap_or_default();
            pick(&format!("已发送 {t}"), &format!("Sent {t}"))
        }
        "delivered" => pick("已送达", "Delivered"),
        "undelivered" => pick("未送达", "Not delivered"),
        "failed" => pick("失败", "Failed"),
        "suppressed" => pick("按触达策略未发", "Not sent by the contact policy"),
        other => other.to_owned(),
    }
}

fn purpose_name(lang: Lang, channel: &str, purpose: &str) -> String {
    let zh = lang == Lang::Zh;
    let ch = match (channel, zh) {
        ("sms", true) => "短信",
        ("sms", false) => "SMS",
        (c, _) => c,
    };
    let p = match (purpose, zh) {
        ("marketing", true) => "营销",
        ("verification", true) => "验证码",
        ("service", true) => "服务通知",
        (p, _) => p,
    };
    format!("{ch} · {p}")
}

pub(crate) async fn read(
    app: &AppState,
    u: &ConsoleUser,
    customer: CustomerId,
) -> Result<Touches, String> {
    let tenant = u.caller.tenant_id;
    let l = u.lang;
    let now = now_ms();
    let e = |e: &dyn std::fmt::Display| e.to_string();
    let member = match members::get(&app.db, tenant, customer).await {
        Ok(m) => Some(MemberView {
            member_no: m.member_no,
            tier: m.tier.unwrap_or_default(),
            joined: format_local(m.joined_at),
            points: points::balance(&app.db, tenant, customer)
                .await
                .map_err(|x| e(&x))?,
        }),
        Err(members::MemberError::NotMember(_)) => None,
        Err(x) => return Err(e(&x)),
    };
    let ledger = points::entries(&app.db, tenant, customer)
        .await
        .map_err(|x| e(&x))?
        .into_iter()
        .take(10)
        .map(|x| {
            let what = ledger_kind(l, &x.kind);
            // Only a hand adjustment's reason is the operator's words; the others are ours.
            let note = if x.kind == "adjust" {
                x.reason
            } else {
                x.reference.unwrap_or_default()
            };
            (format_local(x.created_at), what, x.delta, note)
        })
        .collect();
    let templates = coupons::templates(&app.db, tenant)
        .await
        .map_err(|x| e(&x))?;
    let name_of = |id: i64| {
        templates
            .iter()
            .find(|t| t.id == id)
            .map(|t| t.name.clone())
            .unwrap_or_else(|| format!("#{id}"))
    };
    let coupons = coupons::coupons_of(&app.db, tenant, customer)
        .await
        .map_err(|x| e(&x))?
        .into_iter()
        .map(|c| {
            let state = coupon_state(l, c.status, c.valid_until, now);
            let state = match (&c.redeemed_by, c.status) {
                (Some(by), CouponStatus::Redeemed) => {
                    format!("{state}（{}）", crate::i18n::actor_name(l, by))
                }
                _ => state.to_owned(),
            };
            (
                name_of(c.template_id),
                c.code.clone(),
                state,
                format_local(c.valid_until),
            )
        })
        .collect();
    let received = progress::received_by(&app.db, tenant, customer, 20)
        .await
        .map_err(|x| e(&x))?;
    // The names of only the campaigns these messages came from, each read once.
    let mut campaign_ids: Vec<i64> = received.iter().filter_map(|m| m.campaign_id).collect();
    campaign_ids.sort_unstable();
    campaign_ids.dedup();
    let mut campaigns = std::collections::HashMap::new();
    for id in campaign_ids {
        if let Ok(c) = siyu::acquire::campaigns::get(&app.db, tenant, id).await {
            campaigns.insert(id, c.name);
        }
    }
    let messages = received
        .into_iter()
        .map(|m| {
            let campaign = m
                .campaign_id
                .and_then(|id| campaigns.get(&id).cloned())
                .unwrap_or_default();
            (
                format_local(m.created_at),
                purpose_name(l, &m.channel, &m.purpose),
                campaign,
                message_state(l, &m, now),
            )
        })
        .collect();
    let zh = l == Lang::Zh;
    let contacts = live_codes::contacts_of(&app.db, tenant, customer)
        .await
        .map_err(|x| e(&x))?
        .into_iter()
        .map(|c| {
            let state = match (c.deleted_at, zh) {
                (Some(t), true) => format!("已删除（{}）", format_local(t)),
                (Some(t), false) => format!("Deleted ({})", format_local(t)),
                (None, true) => "好友".into(),
                (None, false) => "Contact".into(),
            };
            (
                c.userid,
                format_local(c.added_at),
                c.code_name.unwrap_or_default(),
                state,
            )
        })
        .collect();
    let cn = l.cn();
    let groups = groups::groups_of(&app.db, tenant, customer)
        .await
        .map_err(|x| e(&x))?
        .into_iter()
        .map(|(name, kind)| (name, cn.label(&kind).to_owned()))
        .collect();
    let notes = siyu::know::notes::of(&app.db, tenant, customer)
        .await
        .map_err(|x| e(&x))?
        .into_iter()
        .map(|n| {
            (
                format_local(n.created_at),
                crate::i18n::actor_name(l, &n.created_by),
                n.body,
            )
        })
        .collect();
    let grantable = templates
        .iter()
        .filter(|t| t.ends_at.is_none_or(|end| end > now) && t.issued < t.total)
        .map(|t| (t.id, t.name.clone()))
        .collect();
    let manual_tags = tags::list(&app.db, tenant)
        .await
        .map_err(|x| e(&x))?
        .into_iter()
        .filter(|t| t.rule.is_none())
        .map(|t| (t.id, format!("{} · {}", t.group_name, t.name)))
        .collect();
    Ok(Touches {
        member,
        ledger,
        coupons,
        messages,
        contacts,
        groups,
        notes,
        grantable,
        manual_tags,
    })
}

/// What a redirect after an action says, checked against the store: a crafted link says nothing.
pub(crate) async fn notice(
    app: &AppState,
    u: &ConsoleUser,
    customer: CustomerId,
    granted: Option<i64>,
    tagged: Option<i64>,
) -> String {
    let tenant = u.caller.tenant_id;
    let zh = u.lang == Lang::Zh;
    if let Some(t) = granted {
        let holds = coupons::coupons_of(&app.db, tenant, customer)
            .await
            .map(|cs| cs.iter().any(|c| c.template_id == t))
            .unwrap_or(false);
        if let (true, Ok(tp)) = (holds, coupons::template(&app.db, tenant, t).await) {
            return if zh {
                format!("已发给这位客户一张「{}」", tp.name)
            } else {
                format!("Gave a {:?}", tp.name)
            };
        }
    }
    if let Some(t) = tagged {
        let has = tags::tags_of(&app.db, tenant, customer)
            .await
            .map(|ts| ts.iter().any(|x| x.id == t))
            .unwrap_or(false);
        if let (true, Ok(tag)) = (has, tags::get(&app.db, tenant, t).await) {
            return if zh {
                format!("已打上「{}」", tag.name)
            } else {
                format!("Tagged {:?}", tag.name)
            };
        }
    }
    String::new()
}

#[derive(Deserialize)]
pub(crate) struct NoteForm {
    #[serde(default)]
    body: String,
}

/// `POST /console/customers/{id}/notes`: a note kept on the customer. A note too long or empty
/// is refused with what was typed shown back.
pub(crate) async fn add_note(
    State(app): State<AppState>,
    u: ConsoleUser,
    Path(id): Path<String>,
    Form(f): Form<NoteForm>,
) -> Response {
    let zh = u.lang == Lang::Zh;
    // Guides keep notes on their customers too.
    if !(u.caller.role.may_write() || u.caller.role == siyu::platform::access::Role::Guide) {
        return said(
            &u,
            StatusCode::FORBIDDEN,
            "你的角色只能查看，不能写备注；请找管理员或运营",
            "Your role may not write notes",
        );
    }
    let tenant = u.caller.tenant_id;
    let customer = match the_customer(&app, &u, &id).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let by = crate::api::actor(&u.caller);
    match siyu::know::notes::add(&app.db, tenant, customer, &f.body, &by, now_ms()).await {
        Ok(_) => Redirect::to(&format!("/console/customers/{customer}#notes")).into_response(),
        Err(siyu::know::notes::NoteError::Invalid(_)) => {
            let said = if zh {
                format!("备注：请写 1 到 {} 个字", siyu::know::notes::MOST_CHARS)
            } else {
                format!("note: 1 to {} characters", siyu::know::notes::MOST_CHARS)
            };
            let refused = super::customers::NoteRefused {
                said,
                typed: f.body,
            };
            let id = customer.to_string();
            super::customers::show_360(&app, &u, &id, Default::default(), Some(refused)).await
        }
        Err(e) => server_error(e),
    }
}

/// [`refused`] in the reader's language.
fn said(u: &ConsoleUser, status: StatusCode, zh: &'static str, en: &'static str) -> Response {
    refused(u, status, if u.lang == Lang::Zh { zh } else { en })
}

fn refused(u: &ConsoleUser, status: StatusCode, message: &'static str) -> Response {
    let mut r = page(MessagePage {
        tr: u.lang.tr(),
        lang: u.lang.code(),
        user: u.caller.name.clone(),
        active: "customers",
        message,
    });
    *r.status_mut() = status;
    r
}

/// The customer a page's path names, as they are now (a merged id stands for its survivor), if
/// the brand's own; otherwise the answer to give.
async fn the_customer(app: &AppState, u: &ConsoleUser, raw: &str) -> Result<CustomerId, Response> {
    let Ok(id) = raw.parse::<CustomerId>() else {
        return Err(refused(u, StatusCode::NOT_FOUND, u.lang.tr().not_found));
    };
    match siyu::know::customers::surviving_id(&app.db, u.caller.tenant_id, id).await {
        Ok(Some(c)) => Ok(c),
        Ok(None) => Err(refused(u, StatusCode::NOT_FOUND, u.lang.tr().not_found)),
        Err(e) => Err(server_error(e)),
    }
}

#[derive(Deserialize)]
pub(crate) struct GrantForm {
    #[serde(default)]
    template_id: String,
}

/// `POST /console/customers/{id}/coupons`: one coupon of a template for this customer, within the
/// template's total and per-customer limit.
pub(crate) async fn grant_coupon(
    State(app): State<AppState>,
    u: ConsoleUser,
    Path(id): Path<String>,
    Form(f): Form<GrantForm>,
) -> Response {
    if !u.caller.role.may_write() {
        return said(
            &u,
            StatusCode::FORBIDDEN,
            "你的角色只能查看，不能发券；请找管理员或运营",
            "Your role may not give coupons",
        );
    }
    let Ok(template) = f.template_id.trim().parse::<i64>() else {
        return said(
            &u,
            StatusCode::BAD_REQUEST,
            "优惠券：请选择一张券",
            "coupon: choose one",
        );
    };
    let tenant = u.caller.tenant_id;
    let customer = match the_customer(&app, &u, &id).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let by = crate::api::actor(&u.caller);
    match coupons::grant(&app.db, tenant, template, &[customer], &by, now_ms()).await {
        Ok(g) if !g.granted.is_empty() => {
            Redirect::to(&format!("/console/customers/{customer}?granted={template}"))
                .into_response()
        }
        Ok(_) => said(
            &u,
            StatusCode::CONFLICT,
            "没有发出：这张券已发完，或这位客户已达每人限领",
            "Not given: none left, or the customer holds the most allowed",
        ),
        Err(coupons::CouponError::NoTemplate(_)) => {
            refused(&u, StatusCode::NOT_FOUND, u.lang.tr().not_found)
        }
        Err(coupons::CouponError::Refused(_)) => said(
            &u,
            StatusCode::CONFLICT,
            "没有发出：这张券不在发放时间内",
            "Not given: the coupon is outside its dates",
        ),
        Err(e) => server_error(e),
    }
}

#[derive(Deserialize)]
pub(crate) struct TagForm {
    #[serde(default)]
    tag_id: String,
}

/// `POST /console/customers/{id}/tags`: a manual tag put on this customer.
pub(crate) async fn add_tag(
    State(app): State<AppState>,
    u: ConsoleUser,
    Path(id): Path<String>,
    Form(f): Form<TagForm>,
) -> Response {
    if !u.caller.role.may_write() {
        return said(
            &u,
            StatusCode::FORBIDDEN,
            "你的角色只能查看，不能打标签；请找管理员或运营",
            "Your role may not tag customers",
        );
    }
    let tenant = u.caller.tenant_id;
    let Ok(tag_id) = f.tag_id.trim().parse::<i64>() else {
        return said(
            &u,
            StatusCode::BAD_REQUEST,
            "标签：请选择一个标签",
            "tag: choose one",
        );
    };
    let customer = match the_customer(&app, &u, &id).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let tag = match tags::get(&app.db, tenant, tag_id).await {
        Ok(t) if t.rule.is_none() => t,
        Ok(_) => {
            return said(
                &u,
                StatusCode::BAD_REQUEST,
                "标签：规则标签随规则变化，不能手动打",
                "tag: a rule tag follows its rule",
            );
        }
        Err(_) => return refused(&u, StatusCode::NOT_FOUND, u.lang.tr().not_found),
    };
    let by = crate::api::actor(&u.caller);
    let done = tags::tag_customers(&app.db, tenant, &tag, &[customer], &by, now_ms()).await;
    match crate::api::know::tags::told(&app, tenant, done).await {
        Ok(_) => {
            Redirect::to(&format!("/console/customers/{customer}?tagged={tag_id}")).into_response()
        }
        Err(e) => server_error(e.message()),
    }
}
