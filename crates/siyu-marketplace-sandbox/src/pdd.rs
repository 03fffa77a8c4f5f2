//! PDD's `pdd.order.number.list.increment.get`, `pdd.refund.list.increment.get` (an order's
//! refund, in part or in full, is one after-sales case that went through, updated when the
//! order was), `pdd.pop.auth.token.create` (an authorisation's code) and
//! `pdd.pop.auth.token.refresh`.

use std::collections::HashMap;

use axum::extract::{Form, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use siyu::channels::marketplaces::sign::md5_sorted;
use siyu::platform::clock::{china_seconds_text, now_ms};

use super::{Shared, Status, gate, lock, new_tokens, select, skew_ok};

fn pdd_error(code: i64, msg: &str) -> Response {
    axum::Json(
        json!({"error_response": {"error_code": code, "error_msg": msg, "request_id": "sandbox"}}),
    )
    .into_response()
}

pub(crate) async fn pdd(
    State(s): State<Shared>,
    Form(params): Form<Vec<(String, String)>>,
) -> Response {
    let mut inner = lock(&s);
    let p: HashMap<&str, &str> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    for k in ["type", "client_id", "timestamp", "sign"] {
        if !p.contains_key(k) {
            inner.stats.bad_requests += 1;
            return pdd_error(10000, &format!("参数错误: {k}"));
        }
    }
    if p["client_id"] != inner.shop.app_key {
        inner.stats.bad_requests += 1;
        return pdd_error(10016, "client_id 不存在");
    }
    let ts: Option<i64> = p["timestamp"].parse().ok();
    if p["timestamp"].len() != 10 || !ts.is_some_and(|t| skew_ok(t * 1000, 10)) {
        inner.stats.bad_requests += 1;
        return pdd_error(10001, "timestamp 超出范围");
    }
    if md5_sorted(&inner.shop.app_secret, &params) != p["sign"] {
        inner.stats.bad_signatures += 1;
        return pdd_error(20004, "签名校验失败");
    }
    let order_call = p["type"] == "pdd.order.number.list.increment.get";
    let after_sales_call = p["type"] == "pdd.refund.list.increment.get";
    if let Err(r) = gate(&mut inner, order_call, || {
        pdd_error(52101, "当前接口您调用过于频繁，请稍后再试")
    }) {
        return r;
    }
    if p["type"] == "pdd.pop.auth.token.create" {
        if p.contains_key("access_token")
            || !super::authorize::take_code(&mut inner, p.get("code").copied().unwrap_or(""))
        {
            return pdd_error(10019, "code 无效或已过期");
        }
        let (access, refresh) = super::granted_tokens(&mut inner);
        return axum::Json(json!({"pop_auth_token_create_response": {"access_token": access, "refresh_token": refresh,
            "expires_at": now_ms() / 1000 + 86_400, "expires_in": 86_400, "owner_id": inner.shop.shop_ref,
            "owner_name": inner.shop.name, "scope": ["pdd.order.number.list.increment.get"]}}))
        .into_response();
    }
    if p["type"] == "pdd.pop.auth.token.refresh" {
        if p.get("refresh_token").copied() != Some(inner.shop.refresh_token.as_str()) {
            inner.stats.token_rejected += 1;
            return pdd_error(10019, "refresh_token 无效");
        }
        let (access, refresh) = new_tokens(&mut inner);
        return axum::Json(json!({"pop_auth_token_refresh_response": {"access_token": access, "refresh_token": refresh,
            "expires_at": now_ms() / 1000 + 86_400, "expires_in": 86_400, "owner_id": inner.shop.shop_ref}}))
        .into_response();
    }
    if p.get("access_token").copied() != Some(inner.shop.access_token.as_str()) {
        inner.stats.token_rejected += 1;
        return pdd_error(10019, "access_token已过期");
    }
    let num = |k: &str| p.get(k).and_then(|v| v.parse::<i64>().ok());
    let (Some(from), Some(to), Some(page), Some(size)) = (
        num("start_updated_at"),
        num("end_updated_at"),
        num("page"),
        num("page_size"),
    ) else {
        inner.stats.bad_requests += 1;
        return pdd_error(10000, "参数错误");
    };
    let required: &[&str] = if after_sales_call {
        &["after_sales_status", "after_sales_type"]
    } else {
        &["is_lucky_flag", "order_status", "refund_status"]
    };
    if !(order_call || after_sales_call)
        || to < from
        || to - from > 1_800
        || page < 1
        || !(1..=100).contains(&size)
        || required.iter().any(|k| num(k).is_none())
    {
        inner.stats.bad_requests += 1;
        return pdd_error(10000, "参数错误");
    }
    if after_sales_call && inner.shop.refuse_after_sales {
        return pdd_error(20031, "您没有访问此接口的权限");
    }
    if after_sales_call {
        return after_sales(
            &inner.shop,
            from * 1000,
            to * 1000 + 999,
            num("after_sales_status"),
            page as u64 - 1,
            size as u64,
        );
    }
    let (orders, total) = select(
        &inner.shop,
        from * 1000,
        to * 1000 + 999,
        false,
        page as u64 - 1,
        size as u64,
    );
    let list: Vec<Value> = orders
        .iter()
        .map(|o| {
            let (order_status, refund_status) = match o.status {
                Status::Paid => (1, 1),
                Status::Shipped => (2, 1),
                Status::Completed => (3, 1),
                Status::Refunded => (3, 4),
                Status::Pending | Status::Closed => (1, 1),
            };
            json!({
                "order_sn": o.order_no, "order_status": order_status, "refund_status": refund_status, "confirm_status": 1,
                "group_status": 1, "created_time": china_seconds_text(o.created_at),
                "confirm_time": o.paid_at.map(china_seconds_text).unwrap_or_default(),
                "pay_time": o.paid_at.map(china_seconds_text).unwrap_or_default(),
                "updated_at": china_seconds_text(o.modified_at),
                "pay_amount": o.amount as f64 / 100.0, "receiver_phone": "~AgAAAAsandbox~", "province": "江苏省",
                "item_list": o.lines.iter().map(|l| json!({"goods_name": l.title, "goods_count": l.quantity,
                    "goods_price": l.price as f64 / 100.0, "outer_id": l.sku})).collect::<Vec<_>>(),
            })
        })
        .collect();
    axum::Json(json!({"order_sn_increment_get_response": {"total_count": total, "has_next": false, "order_sn_list": list}})).into_response()
}

/// The after-sales cases updated in `[from, to]` (ms) with the asked status (10: 退款成功; 1 asks
/// for every status, as PDD's own examples do), in update order. A refused case reads as 9
/// (平台拒绝退款, 退款关闭).
fn after_sales(
    shop: &super::Shop,
    from: i64,
    to: i64,
    status: Option<i64>,
    page: u64,
    size: u64,
) -> Response {
    let every = match status {
        Some(1) => true,
        Some(10) => false,
        _ => {
            return axum::Json(
                json!({"refund_increment_get_response": {"total_count": 0, "refund_list": []}}),
            )
            .into_response();
        }
    };
    let hits: Vec<super::FakeCase<'_>> = super::cases(shop, from, to)
        .into_iter()
        .filter(|c| every || c.succeeded)
        .collect();
    let total = hits.len();
    let list: Vec<Value> = hits
        .into_iter()
        .skip((page * size) as usize)
        .take(size as usize)
        .map(|c| {
            let o = c.order;
            json!({
                "id": c.id, "order_sn": o.order_no, "after_sales_status": if c.succeeded { 10 } else { 9 },
                "after_sales_type": if o.status == Status::Refunded { 2 } else { 3 },
                "order_amount": super::yuan(o.amount), "refund_amount": super::yuan(c.amount),
                "created_time": (o.modified_at / 1000 - 3_600).to_string(),
                "updated_time": (o.modified_at / 1000).to_string(),
            })
        })
        .collect();
    axum::Json(
        json!({"refund_increment_get_response": {"total_count": total, "refund_list": list}}),
    )
    .into_response()
}
