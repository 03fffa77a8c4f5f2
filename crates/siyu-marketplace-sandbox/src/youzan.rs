//! Youzan's `youzan.trades.sold.get` 4.0.4, `youzan.trade.refund.search` 3.0.1 (refunds by
//! update time in Unix seconds, at most 3,000 deep) and `/auth/token`.

use std::collections::HashMap;

use super::yuan;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use siyu::platform::clock::{china_seconds_text, from_china_seconds_text, now_ms};

use super::{Shared, Status, gate, lock, new_tokens, second_end, select};

pub(crate) async fn youzan_orders(
    State(s): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
    axum::Json(b): axum::Json<Value>,
) -> Response {
    let mut inner = lock(&s);
    if let Err(r) = gate(&mut inner, true, || {
        axum::Json(json!({"code": 4101, "msg": "请求太频繁"})).into_response()
    }) {
        return r;
    }
    if q.get("access_token") != Some(&inner.shop.access_token) {
        inner.stats.token_rejected += 1;
        return axum::Json(
            json!({"gw_err_resp": {"err_code": 4203, "err_msg": "access_token 不存在或已过期"}}),
        )
        .into_response();
    }
    let t = |k: &str| b[k].as_str().and_then(from_china_seconds_text);
    let (Some(from), Some(to)) = (t("start_update"), t("end_update")) else {
        inner.stats.bad_requests += 1;
        return axum::Json(json!({"success": false, "code": 141502001, "message": "start_update 与 end_update 须成对出现"})).into_response();
    };
    let page = b["page_no"].as_u64().unwrap_or(1);
    let size = b["page_size"].as_u64().unwrap_or(20);
    if to <= from
        || to - from > 92 * 86_400_000
        || !(1..=100).contains(&page)
        || !(1..=100).contains(&size)
    {
        inner.stats.bad_requests += 1;
        return axum::Json(json!({"success": false, "code": 141502002, "message": "参数错误"}))
            .into_response();
    }
    let (orders, total) = select(&inner.shop, from, second_end(to), false, page - 1, size);
    let list: Vec<Value> = orders
        .iter()
        .map(|o| {
            let (status, refund_state) = match o.status {
                Status::Pending => ("WAIT_BUYER_PAY", 0),
                Status::Paid => ("WAIT_SELLER_SEND_GOODS", 0),
                Status::Shipped => ("WAIT_BUYER_CONFIRM_GOODS", 0),
                Status::Completed => ("TRADE_SUCCESS", 0),
                Status::Refunded => ("TRADE_CLOSED", 12),
                Status::Closed => ("TRADE_CLOSED", 0),
            };
            json!({"full_order_info": {
                "order_info": {"tid": o.order_no, "status": status, "created": china_seconds_text(o.created_at),
                    "update_time": china_seconds_text(o.modified_at), "pay_time": o.paid_at.map(china_seconds_text), "refund_state": refund_state},
                "buyer_info": {"yz_open_id": o.buyer_id, "buyer_phone": o.phone},
                "pay_info": {"payment": yuan(o.amount), "total_fee": yuan(o.amount), "post_fee": "0.00"},
                "address_info": {"receiver_name": "王*", "delivery_province": "上海市"},
                "orders": o.lines.iter().map(|l| json!({"title": l.title, "num": l.quantity, "price": yuan(l.price), "outer_sku_id": l.sku})).collect::<Vec<_>>(),
            }})
        })
        .collect();
    axum::Json(
        json!({"success": true, "code": 200, "message": "successful", "trace_id": "sandbox",
        "data": {"total_results": total, "full_order_info_list": list}}),
    )
    .into_response()
}

pub(crate) async fn youzan_refunds(
    State(s): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
    axum::Json(b): axum::Json<Value>,
) -> Response {
    let mut inner = lock(&s);
    if let Err(r) = gate(&mut inner, false, || {
        axum::Json(json!({"code": 4101, "msg": "请求太频繁"})).into_response()
    }) {
        return r;
    }
    if q.get("access_token") != Some(&inner.shop.access_token) {
        inner.stats.token_rejected += 1;
        return axum::Json(
            json!({"gw_err_resp": {"err_code": 4203, "err_msg": "access_token 不存在或已过期"}}),
        )
        .into_response();
    }
    if inner.shop.refuse_after_sales {
        return axum::Json(
            // Youzan's gateway speaks of a missing permission in a token's words.
            json!({"gw_err_resp": {"err_code": 4202, "err_msg": "应用未获得该 API 的授权"}}),
        )
        .into_response();
    }
    let secs = |k: &str| b[k].as_i64();
    let (Some(from), Some(to)) = (secs("update_time_start"), secs("update_time_end")) else {
        inner.stats.bad_requests += 1;
        return axum::Json(json!({"success": false, "code": 141502001, "message": "update_time_start 与 update_time_end 须为秒"})).into_response();
    };
    let page = b["page_no"].as_u64().unwrap_or(1);
    let size = b["page_size"].as_u64().unwrap_or(20);
    if to < from || !(1..=100).contains(&page) || !(1..=100).contains(&size) {
        inner.stats.bad_requests += 1;
        return axum::Json(json!({"success": false, "code": 141502002, "message": "参数错误"}))
            .into_response();
    }
    if page * size > 3_000 {
        inner.stats.bad_requests += 1;
        return axum::Json(
            json!({"success": false, "code": 141502003, "message": "超过ES搜索最大深度"}),
        )
        .into_response();
    }
    let status = b["status"].as_str();
    let hits: Vec<super::FakeCase<'_>> = super::cases(&inner.shop, from * 1000, to * 1000 + 999)
        .into_iter()
        .filter(|c| match status {
            None => true,
            Some("SUCCESS") => c.succeeded,
            Some("SELLER_REFUSE_BUYER") => !c.succeeded,
            Some(_) => false,
        })
        .collect();
    let total = hits.len();
    let list: Vec<Value> = hits
        .into_iter()
        .skip(((page - 1) * size) as usize)
        .take(size as usize)
        .map(|c| {
            json!({"refund_id": format!("2019{:020}", c.id), "tid": c.order.order_no,
                "status": if c.succeeded { "SUCCESS" } else { "SELLER_REFUSE_BUYER" },
                "refund_fee": yuan(c.amount), "created": china_seconds_text(c.order.modified_at - 3_600_000),
                "modified": china_seconds_text(c.order.modified_at), "return_goods": false, "reason": 54})
        })
        .collect();
    axum::Json(
        json!({"success": true, "code": 200, "message": "successful",
        "data": {"total": total, "refunds": list}}),
    )
    .into_response()
}

pub(crate) async fn youzan_token(
    State(s): State<Shared>,
    axum::Json(b): axum::Json<Value>,
) -> Response {
    let mut inner = lock(&s);
    inner.stats.calls += 1;
    let grant = match &b["grant_id"] {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => String::new(),
    };
    let ok = b["authorize_type"] == "silent"
        && b["client_id"] == inner.shop.app_key.as_str()
        && b["client_secret"] == inner.shop.app_secret.as_str()
        && grant == inner.shop.shop_ref;
    if !ok {
        inner.stats.token_rejected += 1;
        return axum::Json(json!({"success": false, "code": 40001, "message": "client_id、client_secret 或 grant_id 不正确"})).into_response();
    }
    let (access, refresh) = new_tokens(&mut inner);
    axum::Json(json!({"success": true, "code": 200, "data": {"access_token": access, "expires": now_ms() + 7 * 86_400_000,
        "refresh_token": refresh, "authority_id": inner.shop.shop_ref}}))
    .into_response()
}
