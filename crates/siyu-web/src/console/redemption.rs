//! In-store redemption (门店核销) from the console: store staff (guides too) type the code a
//! customer shows, the order and its amount; the coupon is used once, the page says what it took
//! off, and a refusal says in Chinese what to check with everything typed kept.

use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::coupons::{half_width, render_with};
use super::form::fen;
use super::{ConsoleUser, server_error};
use crate::AppState;
use crate::i18n::Lang;
use siyu::convert::coupons::{self, CouponError, UseOn};
use siyu::platform::Fen;
use siyu::platform::access::Role;
use siyu::platform::clock::now_ms;

pub(super) fn may_redeem(u: &ConsoleUser) -> bool {
    u.caller.role.may_write() || u.caller.role == Role::Guide
}

async fn refused_redeem(
    app: &AppState,
    u: &ConsoleUser,
    said: String,
    typed: RedeemForm,
    status: StatusCode,
) -> Response {
    let mut r = render_with(app, u, vec![said], Default::default(), typed, String::new()).await;
    *r.status_mut() = status;
    r
}

/// What store staff typed to redeem, written back on a refusal so nothing is typed twice.
#[derive(Clone, Default, Deserialize)]
pub(crate) struct RedeemForm {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub order_ref: String,
    #[serde(default)]
    pub amount: String,
    #[serde(default)]
    pub store_id: String,
}

/// A redemption refused, in the page's language, naming what to check.
fn redeem_refused(lang: Lang, code: &str, e: &CouponError) -> String {
    if lang == Lang::En {
        return e.to_string();
    }
    match e {
        CouponError::NoCoupon(_) => format!("券码：找不到「{code}」，请核对"),
        CouponError::Invalid {
            field: "order_ref", ..
        } => "订单号：必填".into(),
        CouponError::Invalid { .. } => super::form::unworded(lang, e),
        CouponError::Refused(w) if w.contains("was redeemed already") => {
            format!("券码「{code}」已经核销过，不能再用")
        }
        CouponError::Refused(w) if w.contains("is not valid now") => {
            format!("券码「{code}」不在有效期内")
        }
        CouponError::Refused(w) if w.contains("below the coupon's threshold") => {
            "订单金额：未达到这张券的使用门槛".into()
        }
        CouponError::Refused(w) if w.contains("not usable in store") => {
            "门店：这张券不能在这家门店使用".into()
        }
        CouponError::Refused(w) if w.contains("not usable in channel") => {
            "这张券不能在门店渠道使用".into()
        }
        CouponError::Refused(w) if w.contains("nothing is left") => {
            "这张订单已被之前的券抵扣完，不能再用券".into()
        }
        CouponError::Refused(w) if w.contains("stack") => "这张券不能与订单上已用的券叠加".into(),
        CouponError::Refused(w) if w.contains("amount differs") => {
            "订单金额：与这张订单第一次用券时填的金额不同，请核对".into()
        }
        e => super::form::unworded(lang, e),
    }
}

/// `POST /console/coupons/redeem`: store staff type a customer's code, the order and its amount;
/// the coupon is used once, and the page says what it took off.
pub(crate) async fn redeem(
    State(app): State<AppState>,
    u: ConsoleUser,
    Form(f): Form<RedeemForm>,
) -> Response {
    let zh = u.lang == Lang::Zh;
    if !may_redeem(&u) {
        let said = if zh {
            "你的角色不能核销优惠券；请找门店导购、运营或管理员"
        } else {
            "Your role may not redeem coupons"
        };
        return refused_redeem(&app, &u, said.into(), f, StatusCode::FORBIDDEN).await;
    }
    let amount = match fen(u.lang, "amount", &half_width(&f.amount)) {
        Ok(a) if a > Fen::ZERO => a,
        _ => {
            let said = if zh {
                format!("订单金额：「{}」不是大于 0 的金额（元）", f.amount)
            } else {
                format!("amount: {:?} is not an amount in yuan", f.amount)
            };
            return refused_redeem(&app, &u, said, f, StatusCode::BAD_REQUEST).await;
        }
    };
    let use_on = UseOn {
        code: f.code.trim().to_owned(),
        order_ref: f.order_ref.trim().to_owned(),
        amount,
        channel: Some("store".into()),
        store_id: Some(f.store_id.trim().to_owned()).filter(|s| !s.is_empty()),
    };
    let by = crate::api::actor(&u.caller);
    match coupons::redeem(&app.db, u.caller.tenant_id, &use_on, &by, now_ms()).await {
        // Answered by a redirect: reloading the page does not try the code again.
        Ok(c) => Redirect::to(&format!("/console/coupons?redeemed={}", c.id)).into_response(),
        Err(CouponError::Db(e)) => server_error(e),
        Err(e) => {
            let status = match e {
                CouponError::NoCoupon(_) => StatusCode::NOT_FOUND,
                CouponError::Refused(_) => StatusCode::CONFLICT,
                _ => StatusCode::BAD_REQUEST,
            };
            let said = redeem_refused(u.lang, f.code.trim(), &e);
            refused_redeem(&app, &u, said, f, status).await
        }
    }
}
