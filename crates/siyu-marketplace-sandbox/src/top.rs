//! TOP's `taobao.trades.sold.increment.get`, `taobao.top.auth.token.create` (an authorisation's
//! code) and `taobao.top.auth.token.refresh`, as TOP's router answers them.

use std::collections::HashMap;

use super::yuan;
use axum::extract::{Form, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use siyu::channels::marketplaces::sign::md5_sorted;
use siyu::platform::clock::{china_seconds_text, from_china_seconds_text, now_ms};

use super::{Shared, Status, gate, lock, new_tokens, second_end, select, skew_ok};

fn top_error(code: i64, msg: &str, sub_code: &str) -> Response {
    axum::Json(json!({"error_response": {"code": code, "msg": msg, "sub_code": sub_code, "request_id": "sandbox"}})).into_response()
}

pub(crate) async fn top(
    State(s): State<Shared>,
    Form(params): Form<Vec<(String, String)>>,
) -> Response {
    let mut inner = lock(&s);
    let p: HashMap<&str, &str> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let method = p.get("method").copied().unwrap_or("");
    for k in ["method", "app_key", "timestamp", "v", "sign_method", "sign"] {
        if !p.contains_key(k) {
            inner.stats.bad_requests += 1;
            return top_error(40, &format!("Missing required arguments:{k}"), "");
        }
    }
    if p["app_key"] != inner.shop.app_key {
        inner.stats.bad_requests += 1;
        return top_error(29, "Invalid app Key", "");
    }
    if p["v"] != "2.0" || p["sign_method"] != "md5" {
        inner.stats.bad_requests += 1;
        return top_error(41, "Invalid arguments:v or sign_method", "");
    }
    if !from_china_seconds_text(p["timestamp"]).is_some_and(|t| skew_ok(t, 10)) {
        inner.stats.bad_requests += 1;
        return top_error(43, "Invalid timestamp", "");
    }
    if md5_sorted(&inner.shop.app_secret, &params) != p["sign"] {
        inner.stats.bad_signatures += 1;
        return top_error(25, "Invalid signature", "");
    }
    let order_call = method == "taobao.trades.sold.increment.get";
    if let Err(r) = gate(&mut inner, order_call, || {
        top_error(
            7,
            "App Call Limited",
            "accesscontrol.limited-by-app-access-count",
        )
    }) {
        return r;
    }
    if method == "taobao.top.auth.token.create" {
        if p.contains_key("session")
            || !super::authorize::take_code(&mut inner, p.get("code").copied().unwrap_or(""))
        {
            return top_error(15, "Remote service error", "isv.code-invalid");
        }
        let (access, refresh) = super::granted_tokens(&mut inner);
        // TOP writes the nick URL-encoded.
        let nick: String = inner
            .shop
            .name
            .bytes()
            .map(|b| format!("%{b:02X}"))
            .collect();
        let result = json!({"access_token": access, "refresh_token": refresh, "expires_in": 86_400,
            "taobao_user_id": inner.shop.shop_ref, "taobao_user_nick": nick, "token_type": "Bearer"})
        .to_string();
        return axum::Json(json!({"top_auth_token_create_response": {"token_result": result}}))
            .into_response();
    }
    if method == "taobao.top.auth.token.refresh" {
        if p.get("refresh_token").copied() != Some(inner.shop.refresh_token.as_str()) {
            inner.stats.token_rejected += 1;
            return top_error(15, "Remote service error", "isv.refresh-token-invalid");
        }
        let (access, refresh) = new_tokens(&mut inner);
        let result = json!({"access_token": access, "refresh_token": refresh, "expire_time": now_ms() + 86_400_000}).to_string();
        return axum::Json(json!({"top_auth_token_refresh_response": {"token_result": result}}))
            .into_response();
    }
    if p.get("session").copied() != Some(inner.shop.access_token.as_str()) {
        inner.stats.token_rejected += 1;
        return top_error(27, "Invalid session", "invalid-sessionkey");
    }
    if !order_call {
        inner.stats.bad_requests += 1;
        return top_error(22, "Invalid method", "");
    }
    let (Some(from), Some(to)) = (
        p.get("start_modified")
            .and_then(|t| from_china_seconds_text(t)),
        p.get("end_modified")
            .and_then(|t| from_china_seconds_text(t)),
    ) else {
        inner.stats.bad_requests += 1;
        return top_error(
            41,
            "Invalid arguments:start_modified/end_modified",
            "isv.invalid-parameter",
        );
    };
    let page: u64 = p.get("page_no").and_then(|v| v.parse().ok()).unwrap_or(1);
    let size: u64 = p
        .get("page_size")
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    if to < from || to - from > 86_400_000 || size > 100 || page < 1 || !p.contains_key("fields") {
        inner.stats.bad_requests += 1;
        return top_error(41, "Invalid arguments", "isv.invalid-parameter");
    }
    let (orders, total) = select(&inner.shop, from, second_end(to), true, page - 1, size);
    let trades: Vec<Value> = orders
        .iter()
        .map(|o| {
            let status = match o.status {
                Status::Pending => "WAIT_BUYER_PAY",
                Status::Paid => "WAIT_SELLER_SEND_GOODS",
                Status::Shipped => "WAIT_BUYER_CONFIRM_GOODS",
                Status::Completed => "TRADE_FINISHED",
                Status::Refunded => "TRADE_CLOSED",
                Status::Closed => "TRADE_CLOSED_BY_TAOBAO",
            };
            let last = o.lines.len().saturating_sub(1);
            let lines: Vec<Value> = o.lines.iter().enumerate().map(|(i, l)| {
                let refunded = i == last && o.status == Status::Completed && o.refund_amount > 0;
                json!({"oid": format!("{}{i}", o.order_no), "title": l.title, "num": l.quantity, "price": yuan(l.price),
                       "outer_sku_id": l.sku, "payment": yuan(l.price * l.quantity),
                       "refund_status": if refunded { "SUCCESS" } else { "NO_REFUND" }})
            }).collect();
            json!({
                "tid": o.order_no.parse::<i64>().map(Value::from).unwrap_or_else(|_| Value::from(o.order_no.clone())),
                "status": status, "created": china_seconds_text(o.created_at), "modified": china_seconds_text(o.modified_at),
                "pay_time": o.paid_at.map(china_seconds_text), "payment": yuan(o.amount),
                "buyer_open_uid": o.buyer_id, "receiver_mobile": o.phone, "receiver_state": "浙江省",
                "orders": {"order": lines},
            })
        })
        .collect();
    axum::Json(json!({"trades_sold_increment_get_response": {"total_results": total, "trades": {"trade": trades}, "request_id": "sandbox"}})).into_response()
}
