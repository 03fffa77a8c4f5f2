//! JD's `jingdong.pop.order.search`, its refund list `jingdong.pop.afs.soa.refundapply.queryPageList`
//! (cases by audit time, amounts in fen, every status) and its OAuth server's
//! `/oauth2/refresh_token`.

use std::collections::HashMap;

use super::yuan;
use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use siyu::channels::marketplaces::sign::md5_sorted;
use siyu::platform::clock::{china_seconds_text, from_china_seconds_text, now_ms};

use super::{Shared, Status, gate, lock, new_tokens, second_end, select, skew_ok};

fn jd_error(code: &str, zh: &str) -> Response {
    axum::Json(json!({"error_response": {"code": code, "zh_desc": zh, "en_desc": zh}}))
        .into_response()
}

pub(crate) async fn jd(
    State(s): State<Shared>,
    Form(params): Form<Vec<(String, String)>>,
) -> Response {
    let mut inner = lock(&s);
    let p: HashMap<&str, &str> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    for k in [
        "360buy_param_json",
        "access_token",
        "app_key",
        "method",
        "timestamp",
        "v",
        "sign",
    ] {
        if !p.contains_key(k) {
            inner.stats.bad_requests += 1;
            return jd_error("2", &format!("缺少参数 {k}"));
        }
    }
    if p["app_key"] != inner.shop.app_key || p["v"] != "2.0" {
        inner.stats.bad_requests += 1;
        return jd_error("12", "app_key 或 v 不正确");
    }
    if !from_china_seconds_text(p["timestamp"]).is_some_and(|t| skew_ok(t, 6)) {
        inner.stats.bad_requests += 1;
        return jd_error("8", "时间戳超出允许范围");
    }
    if md5_sorted(&inner.shop.app_secret, &params) != p["sign"] {
        inner.stats.bad_signatures += 1;
        return jd_error("14", "签名无效");
    }
    let refunds_call = p["method"] == REFUNDS_METHOD;
    // JD publishes no code for a spent quota: the sandbox answers HTTP 429.
    if let Err(r) = gate(&mut inner, !refunds_call, || {
        (StatusCode::TOO_MANY_REQUESTS, "too many requests").into_response()
    }) {
        return r;
    }
    if p["access_token"] != inner.shop.access_token {
        inner.stats.token_rejected += 1;
        return jd_error("19", "token已过期或者不存在，请重新授权访问");
    }
    let Ok(b) = serde_json::from_str::<Value>(p["360buy_param_json"]) else {
        inner.stats.bad_requests += 1;
        return jd_error("2", "360buy_param_json 不是 JSON");
    };
    if refunds_call {
        return refunds(&mut inner, &b);
    }
    let field = |k: &str| b[k].as_str().unwrap_or("").to_owned();
    let (from, to) = (
        from_china_seconds_text(&field("start_date")),
        from_china_seconds_text(&field("end_date")),
    );
    let page: u64 = field("page").parse().unwrap_or(0);
    let size: u64 = field("page_size").parse().unwrap_or(0);
    let (Some(from), Some(to)) = (from, to) else {
        inner.stats.bad_requests += 1;
        return jd_error("2", "start_date/end_date 格式错误");
    };
    if p["method"] != "jingdong.pop.order.search"
        || field("dateType") != "0"
        || field("order_state").is_empty()
        || field("optional_fields").is_empty()
        || to < from
        || to - from > 31 * 86_400_000
        || page < 1
        || size > 100
    {
        inner.stats.bad_requests += 1;
        return jd_error("2", "参数错误");
    }
    let (orders, total) = select(&inner.shop, from, second_end(to), false, page - 1, size);
    let list: Vec<Value> = orders
        .iter()
        .map(|o| {
            let state = match o.status {
                Status::Paid => "WAIT_SELLER_STOCK_OUT",
                Status::Shipped => "WAIT_GOODS_RECEIVE_CONFIRM",
                Status::Completed => "FINISHED_L",
                Status::Refunded | Status::Closed | Status::Pending => "TRADE_CANCELED",
            };
            json!({
                "orderId": o.order_no, "orderState": state, "orderStartTime": china_seconds_text(o.created_at),
                "paymentConfirmTime": o.paid_at.map(china_seconds_text).unwrap_or_default(),
                "modified": china_seconds_text(o.modified_at), "orderPayment": yuan(o.amount), "pin": o.buyer_id,
                "consigneeInfo": {"fullname": "AAS/ZFJFsandboxciphertext", "mobile": o.phone, "province": "广东"},
                "itemInfoList": o.lines.iter().map(|l| json!({"skuId": "10054887745652", "outerSkuId": l.sku, "skuName": l.title,
                    "jdPrice": yuan(l.price), "itemTotal": l.quantity.to_string()})).collect::<Vec<_>>(),
            })
        })
        .collect();
    axum::Json(
        json!({"jingdong_pop_order_search_responce": {"code": "0", "searchorderinfo_result": {
        "apiResult": {"success": true, "englishErrCode": "", "chineseErrCode": "", "numberCode": 0},
        "orderTotal": total, "orderInfoList": list}}}),
    )
    .into_response()
}

const REFUNDS_METHOD: &str = "jingdong.pop.afs.soa.refundapply.queryPageList";

/// One page of refund cases audited in the asked window (statuses: 3 京东财务审核通过, 2 审核不通过).
fn refunds(inner: &mut super::Inner, b: &Value) -> Response {
    if inner.shop.refuse_after_sales {
        return axum::Json(
            json!({"jingdong_pop_afs_soa_refundapply_queryPageList_responce": {
            "code": "0", "queryResult": {"success": false, "errorCode": "AUTH_DENIED",
            "errorMsg": "无此接口的访问权限", "totalCount": 0}}}),
        )
        .into_response();
    }
    let time = |k: &str| b[k].as_str().and_then(from_china_seconds_text);
    let (Some(from), Some(to)) = (time("checkTimeStart"), time("checkTimeEnd")) else {
        inner.stats.bad_requests += 1;
        return jd_error("2", "checkTimeStart/checkTimeEnd 格式错误");
    };
    let page = b["pageIndex"].as_u64().unwrap_or(0);
    let size = b["pageSize"].as_u64().unwrap_or(0);
    if to < from || !(1..=100).contains(&page) || !(1..=50).contains(&size) {
        inner.stats.bad_requests += 1;
        return jd_error("2", "参数错误");
    }
    let hits = super::cases(&inner.shop, from, second_end(to));
    let total = hits.len();
    let list: Vec<Value> = hits
        .into_iter()
        .skip(((page - 1) * size) as usize)
        .take(size as usize)
        .map(|c| {
            let at = china_seconds_text(c.order.modified_at);
            json!({"id": c.id, "orderId": c.order.order_no, "applyRefundSum": c.amount as f64,
                "status": if c.succeeded { 3 } else { 2 }, "applyTime": at, "checkTime": at,
                "buyerId": c.order.buyer_id})
        })
        .collect();
    axum::Json(
        json!({"jingdong_pop_afs_soa_refundapply_queryPageList_responce": {"code": "0",
        "queryResult": {"success": true, "totalCount": total, "result": list}}}),
    )
    .into_response()
}

/// `/oauth2/access_token`: an authorisation's code for the shop's tokens.
pub(crate) async fn jd_grant(
    State(s): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut inner = lock(&s);
    inner.stats.calls += 1;
    let app_ok = q.get("app_key") == Some(&inner.shop.app_key)
        && q.get("app_secret") == Some(&inner.shop.app_secret)
        && q.get("grant_type").map(String::as_str) == Some("authorization_code");
    let code = q.get("code").cloned().unwrap_or_default();
    if !app_ok || !super::authorize::take_code(&mut inner, &code) {
        return axum::Json(json!({"code": 1002, "msg": "code 无效"})).into_response();
    }
    let (access, refresh) = super::granted_tokens(&mut inner);
    axum::Json(json!({"code": 0, "access_token": access, "expires_in": 86_400, "refresh_token": refresh,
        "scope": "snsapi_base", "open_id": "sandbox-open-id", "uid": inner.shop.shop_ref, "time": now_ms(),
        "token_type": "bearer"}))
    .into_response()
}

pub(crate) async fn jd_refresh(
    State(s): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut inner = lock(&s);
    inner.stats.calls += 1;
    let ok = q.get("app_key") == Some(&inner.shop.app_key)
        && q.get("app_secret") == Some(&inner.shop.app_secret)
        && q.get("grant_type").map(String::as_str) == Some("refresh_token")
        && q.get("refresh_token") == Some(&inner.shop.refresh_token);
    if !ok {
        inner.stats.token_rejected += 1;
        return axum::Json(json!({"code": 1003, "msg": "refresh_token 无效"})).into_response();
    }
    let (access, refresh) = new_tokens(&mut inner);
    axum::Json(json!({"access_token": access, "expires_in": 86_400, "refresh_token": refresh, "scope": "snsapi_base", "time": now_ms()})).into_response()
}
