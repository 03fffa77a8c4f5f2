//! Douyin's `/order/searchList` and `/token/refresh`.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use siyu::channels::marketplaces::sign::{douyin_hmac_sha256, douyin_md5};

use super::{Inner, Shared, Status, gate, lock, new_tokens, select, skew_ok};

/// Douyin's envelope. It publishes no numeric codes for an expired token or a spent quota;
/// the sandbox names them in `sub_code`, as the client reads them.
fn douyin_error(code: i64, sub_code: &str, msg: &str) -> Response {
    axum::Json(json!({"code": code, "msg": msg, "sub_code": sub_code, "sub_msg": msg, "log_id": "sandbox"})).into_response()
}

#[allow(clippy::result_large_err)]
fn douyin_check(
    inner: &mut Inner,
    q: &HashMap<String, String>,
    body: &str,
    method: &str,
) -> Result<(), Response> {
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or("");
    if get("app_key") != inner.shop.app_key || get("method") != method || get("v") != "2" {
        inner.stats.bad_requests += 1;
        return Err(douyin_error(
            40001,
            "isv.parameter-invalid",
            "app_key, method or v",
        ));
    }
    let ts = get("timestamp");
    if !ts.parse::<i64>().is_ok_and(|t| skew_ok(t * 1000, 10)) {
        inner.stats.bad_requests += 1;
        return Err(douyin_error(40001, "isv.timestamp-invalid", "timestamp"));
    }
    let secret = inner.shop.app_secret.clone();
    let want = match get("sign_method") {
        "hmac-sha256" => douyin_hmac_sha256(&secret, get("app_key"), method, body, ts),
        _ => douyin_md5(&secret, get("app_key"), method, body, ts),
    };
    if want != get("sign") {
        inner.stats.bad_signatures += 1;
        return Err(douyin_error(40003, "isv.sign-invalid", "签名错误"));
    }
    Ok(())
}

pub(crate) async fn douyin_orders(
    State(s): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
    body: String,
) -> Response {
    let mut inner = lock(&s);
    if let Err(r) = douyin_check(&mut inner, &q, &body, "order.searchList") {
        return r;
    }
    if let Err(r) = gate(&mut inner, true, || {
        douyin_error(50002, "isv.request-limit-exceeded", "请求过于频繁")
    }) {
        return r;
    }
    if q.get("access_token") != Some(&inner.shop.access_token) {
        inner.stats.token_rejected += 1;
        return douyin_error(30002, "isv.access-token-expired", "access_token 已过期");
    }
    let Ok(b) = serde_json::from_str::<Value>(&body) else {
        inner.stats.bad_requests += 1;
        return douyin_error(40001, "isv.parameter-invalid", "param_json");
    };
    let n = |k: &str| b[k].as_i64();
    let (Some(from), Some(to), Some(page), Some(size)) = (
        n("update_time_start"),
        n("update_time_end"),
        n("page"),
        n("size"),
    ) else {
        inner.stats.bad_requests += 1;
        return douyin_error(
            40001,
            "isv.parameter-invalid",
            "update_time_start/end, page, size",
        );
    };
    if to < from || page < 0 || !(1..=100).contains(&size) || b["order_by"] != "update_time" {
        inner.stats.bad_requests += 1;
        return douyin_error(40001, "isv.parameter-invalid", "window, page or size");
    }
    let newest_first = b["order_asc"] != true;
    let (orders, total) = select(
        &inner.shop,
        from * 1000,
        to * 1000 + 999,
        newest_first,
        page as u64,
        size as u64,
    );
    let list: Vec<Value> = orders
        .iter()
        .map(|o| {
            let status = match o.status {
                Status::Pending => 1,
                Status::Paid => 2,
                Status::Shipped => 3,
                Status::Completed => 5,
                Status::Refunded | Status::Closed => 4,
            };
            let last = o.lines.len().saturating_sub(1);
            json!({
                "order_id": o.order_no, "order_status": status, "create_time": o.created_at / 1000,
                "update_time": o.modified_at / 1000, "pay_time": o.paid_at.map(|t| t / 1000).unwrap_or(0),
                "pay_amount": o.amount, "doudian_open_id": o.buyer_id, "mask_post_tel": o.phone, "mask_post_receiver": "张*",
                "encrypt_post_tel": "#sandbox#",
                "sku_order_list": o.lines.iter().enumerate().map(|(i, l)| {
                    let refunded = i == last && o.status == Status::Completed && o.refund_amount > 0;
                    json!({"order_id": format!("{}{i}", o.order_no), "product_name": l.title, "out_sku_id": l.sku,
                           "item_num": l.quantity, "origin_amount": l.price * l.quantity, "pay_amount": l.price * l.quantity,
                           "after_sale_info": {"refund_status": if refunded { 3 } else { 0 }}})
                }).collect::<Vec<_>>(),
            })
        })
        .collect();
    axum::Json(
        json!({"code": 10000, "msg": "success", "sub_code": "", "sub_msg": "", "log_id": "sandbox",
        "data": {"total": total, "page": page, "size": size, "shop_order_list": list}}),
    )
    .into_response()
}

/// `/token/create`: an authorisation's code for the shop's tokens (signed, without a token).
pub(crate) async fn douyin_grant(
    State(s): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
    body: String,
) -> Response {
    let mut inner = lock(&s);
    if let Err(r) = douyin_check(&mut inner, &q, &body, "token.create") {
        return r;
    }
    inner.stats.calls += 1;
    let b: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let code = b["code"].as_str().unwrap_or("");
    if b["grant_type"] != "authorization_code"
        || q.contains_key("access_token")
        || !super::authorize::take_code(&mut inner, code)
    {
        return douyin_error(30002, "isv.code-invalid", "code 无效或已过期");
    }
    let (access, refresh) = super::granted_tokens(&mut inner);
    axum::Json(json!({"code": 10000, "msg": "success", "data": {"access_token": access, "expires_in": 604_800,
        "refresh_token": refresh, "scope": "SCOPE", "shop_id": inner.shop.shop_ref.parse::<i64>().ok(),
        "shop_name": inner.shop.name, "authority_id": ""}}))
    .into_response()
}

pub(crate) async fn douyin_refresh(
    State(s): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
    body: String,
) -> Response {
    let mut inner = lock(&s);
    if let Err(r) = douyin_check(&mut inner, &q, &body, "token.refresh") {
        return r;
    }
    inner.stats.calls += 1;
    let b: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    if b["grant_type"] != "refresh_token" || b["refresh_token"] != inner.shop.refresh_token.as_str()
    {
        inner.stats.token_rejected += 1;
        return douyin_error(30001, "isv.refresh-token-invalid", "refresh_token 无效");
    }
    let (access, refresh) = new_tokens(&mut inner);
    axum::Json(json!({"code": 10000, "msg": "success", "data": {"access_token": access, "expires_in": 604_800,
        "refresh_token": refresh, "shop_id": inner.shop.shop_ref}}))
    .into_response()
}
