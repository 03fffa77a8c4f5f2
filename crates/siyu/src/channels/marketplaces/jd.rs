//! JD (京东开放平台): `jingdong.pop.order.search` by modification time (`dateType` 0), its
//! business parameters in `360buy_param_json`, signed MD5 over sorted parameters; answers in
//! `jingdong_pop_order_search_responce` (JD's spelling). Tokens are refreshed at JD's OAuth
//! server (`/oauth2/refresh_token`). The order API says only that an order was cancelled; what
//! went back of it comes from the refund list `jingdong.pop.afs.soa.refundapply.queryPageList`
//! (退款审核单), read by audit time: a case JD's finance approved, or an interception that
//! refunded, is a refund that went through.

use crate::platform::Fen;
use serde_json::{Value, json};

use super::sign::with_md5_sign;
use super::{
    AfterSalePage, Credentials, Grant, LineKeys, MarketAfterSale, MarketError, MarketOrder,
    OrderPage, Platform, Tokens, china_seconds_text, from_china_seconds_text, int, read_page,
    shape, text, yuan_lines, yuan_to_fen,
};

const P: Platform = Platform::Jd;
pub const ORDERS_METHOD: &str = "jingdong.pop.order.search";
pub const AFTER_SALES_METHOD: &str = "jingdong.pop.afs.soa.refundapply.queryPageList";
/// Refund-case statuses whose money goes back: 京东财务审核通过 (JD's finance paid it), 拦截并退款,
/// 青龙拦截成功 (the parcel was stopped and the order refunded) and 强制关单并退款. The seller's
/// or an agent's approval (1 审核通过, 5 人工审核通过) is not yet money back: JD's finance (4) or
/// the interception (8) may still refuse it, so it counts when JD's audit says so.
const REFUND_APPROVED: [i64; 4] = [3, 6, 7, 9];
/// Every state the API returns (it returns no unpaid orders).
const STATES: &str = "WAIT_SELLER_STOCK_OUT,WAIT_SELLER_DELIVERY,PAUSE,POP_ORDER_PAUSE,LOCKED,\
WAIT_GOODS_RECEIVE_CONFIRM,FINISHED_L,TRADE_CANCELED";
const FIELDS: &str = "orderId,orderState,orderStartTime,paymentConfirmTime,modified,orderPayment,\
pin,open_id_buyer,consigneeInfo,itemInfoList";
const OAUTH_BASE: &str = "https://open-oauth.jd.com";

/// A signed call of `method` with its business parameters. serde_json's maps are sorted, as JD
/// asks of `360buy_param_json`.
fn signed(creds: &Credentials, method: &str, business: &Value, now: i64) -> Vec<(String, String)> {
    let params = vec![
        ("360buy_param_json".to_owned(), business.to_string()),
        (
            "access_token".to_owned(),
            creds.access_token.clone().unwrap_or_default(),
        ),
        ("app_key".to_owned(), creds.app_key.clone()),
        ("method".to_owned(), method.to_owned()),
        ("timestamp".to_owned(), china_seconds_text(now)),
        ("v".to_owned(), "2.0".to_owned()),
    ];
    with_md5_sign(&creds.app_secret, params)
}

/// The form of one page of orders modified in `[from, to]`.
pub fn orders_request(
    creds: &Credentials,
    from: i64,
    to: i64,
    page: u32,
    size: u32,
    now: i64,
) -> Vec<(String, String)> {
    let business = json!({
        "dateType": "0",
        "end_date": china_seconds_text(to),
        "optional_fields": FIELDS,
        "order_state": STATES,
        "page": page.to_string(),
        "page_size": size.to_string(),
        "start_date": china_seconds_text(from),
    });
    signed(creds, ORDERS_METHOD, &business, now)
}

/// The form of one page of refund cases audited in `[from, to]`, of every status (the API
/// filters on one status at most; the approved ones are several).
pub fn after_sales_request(
    creds: &Credentials,
    from: i64,
    to: i64,
    page: u32,
    size: u32,
    now: i64,
) -> Vec<(String, String)> {
    let business = json!({
        "checkTimeEnd": china_seconds_text(to),
        "checkTimeStart": china_seconds_text(from),
        "pageIndex": page,
        "pageSize": size,
    });
    signed(creds, AFTER_SALES_METHOD, &business, now)
}

/// JD's OAuth server is its own host; a sandbox (or proxy) serves both.
fn oauth_base(api_base: &str) -> &str {
    if api_base == P.default_base() {
        OAUTH_BASE
    } else {
        api_base
    }
}

/// The exchange of an authorisation's code: JD's OAuth server, unsigned, the secret in the query.
pub fn grant_request(
    creds: &Credentials,
    code: &str,
    api_base: &str,
) -> (String, Vec<(String, String)>) {
    (
        format!("{}/oauth2/access_token", oauth_base(api_base)),
        vec![
            ("app_key".into(), creds.app_key.clone()),
            ("app_secret".into(), creds.app_secret.clone()),
            ("grant_type".into(), "authorization_code".into()),
            ("code".into(), code.to_owned()),
        ],
    )
}

/// The refresh URL and its query.
pub fn refresh_request(creds: &Credentials, api_base: &str) -> (String, Vec<(String, String)>) {
    (
        format!("{}/oauth2/refresh_token", oauth_base(api_base)),
        vec![
            ("app_key".into(), creds.app_key.clone()),
            ("app_secret".into(), creds.app_secret.clone()),
            ("grant_type".into(), "refresh_token".into()),
            (
                "refresh_token".into(),
                creds.refresh_token.clone().unwrap_or_default(),
            ),
        ],
    )
}

/// JD publishes no code for a spent quota: an HTTP 429 or 5xx from its gateway is retried as
/// any unavailability is (see `Client`).
fn error(e: &Value) -> MarketError {
    let code = text(&e["code"]).unwrap_or_default();
    let message = text(&e["zh_desc"])
        .or_else(|| text(&e["en_desc"]))
        .unwrap_or_default();
    match code.as_str() {
        "19" => MarketError::TokenExpired {
            platform: P.as_str(),
            code,
        },
        _ => MarketError::Refused {
            platform: P.as_str(),
            code,
            message,
        },
    }
}

/// JD's order state in Siyu's terms; `paid` says whether a cancelled order had been paid.
pub fn status(state: &str, paid: bool) -> String {
    match state {
        "WAIT_SELLER_STOCK_OUT"
        | "WAIT_SELLER_DELIVERY"
        | "PAUSE"
        | "POP_ORDER_PAUSE"
        | "LOCKED" => "paid",
        "WAIT_GOODS_RECEIVE_CONFIRM" => "shipped",
        "FINISHED_L" => "completed",
        "TRADE_CANCELED" if paid => "refunded",
        "TRADE_CANCELED" => "closed",
        other => return other.to_owned(),
    }
    .to_owned()
}

pub fn read_orders(v: &Value) -> Result<OrderPage, MarketError> {
    if v.get("error_response").is_some() {
        return Err(error(&v["error_response"]));
    }
    let r = &v["jingdong_pop_order_search_responce"]["searchorderinfo_result"];
    if r.is_null() {
        return Err(shape(
            P,
            "no jingdong_pop_order_search_responce.searchorderinfo_result",
        ));
    }
    if r["apiResult"]["success"] == false {
        return Err(MarketError::Refused {
            platform: P.as_str(),
            code: text(&r["apiResult"]["englishErrCode"]).unwrap_or_default(),
            message: text(&r["apiResult"]["chineseErrCode"]).unwrap_or_default(),
        });
    }
    read_page(
        P,
        &r["orderTotal"],
        &r["orderInfoList"],
        "orderInfoList",
        order,
    )
}

fn order(o: &Value) -> Result<MarketOrder, MarketError> {
    let id = text(&o["orderId"]).ok_or_else(|| shape(P, "an order without orderId"))?;
    let time = |f: &str| text(&o[f]).and_then(|s| from_china_seconds_text(&s));
    let created =
        time("orderStartTime").ok_or_else(|| shape(P, format!("order {id}: orderStartTime")))?;
    let paid_at = time("paymentConfirmTime");
    let state = text(&o["orderState"]).unwrap_or_default();
    let amount = yuan_to_fen(&o["orderPayment"])
        .ok_or_else(|| shape(P, format!("order {id}: orderPayment")))?;
    let status = status(&state, paid_at.is_some());
    let consignee = &o["consigneeInfo"];
    let items = match &o["itemInfoList"] {
        Value::Array(a) => a.as_slice(),
        _ => &[],
    };
    Ok(MarketOrder {
        refund_amount: if status == "refunded" {
            amount
        } else {
            Fen::ZERO
        },
        order_no: id,
        status,
        created_at: created,
        paid_at,
        modified_at: time("modified").unwrap_or(created),
        amount,
        // The pin (exports' 下单帐号) and the open id, both, so that OneID joins them.
        buyer_ids: [text(&o["pin"]), text(&o["open_id_buyer"])]
            .into_iter()
            .flatten()
            .collect(),
        phone: text(&consignee["mobile"]),
        // The name comes encrypted: it names nobody here.
        buyer_name: None,
        province: text(&consignee["province"]),
        lines: yuan_lines(
            items,
            &LineKeys {
                sku: ["outerSkuId", "skuId"],
                title: "skuName",
                quantity: "itemTotal",
                price: "jdPrice",
            },
        ),
    })
}

pub fn read_after_sales(v: &Value) -> Result<AfterSalePage, MarketError> {
    if v.get("error_response").is_some() {
        return Err(error(&v["error_response"]));
    }
    let r = &v["jingdong_pop_afs_soa_refundapply_queryPageList_responce"]["queryResult"];
    if r.is_null() {
        return Err(shape(
            P,
            "no jingdong_pop_afs_soa_refundapply_queryPageList_responce.queryResult",
        ));
    }
    if r["success"] == false {
        return Err(MarketError::Refused {
            platform: P.as_str(),
            code: text(&r["errorCode"]).unwrap_or_default(),
            message: text(&r["errorMsg"]).unwrap_or_default(),
        });
    }
    read_page(
        P,
        &r["totalCount"],
        &r["result"],
        "queryResult.result",
        after_sale,
    )
}

/// One refund case: `applyRefundSum` in fen (SDKs type it as a double: `1990.0` is read too);
/// its change is its audit (`checkTime`), else its application.
fn after_sale(c: &Value) -> Result<MarketAfterSale, MarketError> {
    let id = text(&c["id"]).ok_or_else(|| shape(P, "a refund case without id"))?;
    let order_no = text(&c["orderId"]).ok_or_else(|| shape(P, format!("case {id}: no orderId")))?;
    let amount = whole_fen(&c["applyRefundSum"])
        .ok_or_else(|| shape(P, format!("case {id}: applyRefundSum")))?;
    let time = |f: &str| text(&c[f]).and_then(|s| from_china_seconds_text(&s));
    let modified_at = time("checkTime")
        .or_else(|| time("applyTime"))
        .ok_or_else(|| shape(P, format!("case {id}: checkTime")))?;
    Ok(MarketAfterSale {
        case_ref: id,
        order_no,
        amount,
        succeeded: int(&c["status"]).is_some_and(|s| REFUND_APPROVED.contains(&s)),
        modified_at,
    })
}

/// Fen written as a whole number, a string, or a double without a fraction.
fn whole_fen(v: &Value) -> Option<Fen> {
    let t = text(v)?;
    let (whole, frac) = t.split_once('.').unwrap_or((&t, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|b| b == b'0') {
        return None;
    }
    whole.parse().ok().map(Fen::new)
}

/// The shop's tokens and its seller account (`uid`: one id always, so that authorising again
/// finds the same shop; `user_nick` where given).
pub fn read_grant(v: &Value, now: i64) -> Result<Grant, MarketError> {
    Ok(Grant {
        tokens: read_tokens(v, now)?,
        shop_ref: text(&v["uid"]),
        shop_name: text(&v["user_nick"]),
    })
}

pub fn read_tokens(v: &Value, now: i64) -> Result<Tokens, MarketError> {
    let access = text(&v["access_token"]).ok_or_else(|| MarketError::Refused {
        platform: P.as_str(),
        code: text(&v["code"]).unwrap_or_default(),
        message: text(&v["msg"]).unwrap_or_else(|| "no access_token".into()),
    })?;
    let expires_in = int(&v["expires_in"]).unwrap_or(86_400);
    let issued = int(&v["time"]).unwrap_or(now);
    Ok(Tokens {
        access_token: access,
        refresh_token: text(&v["refresh_token"]),
        expires_at: issued + expires_in * 1000,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refund_cases_read_as_jd_writes_them() {
        let page = read_after_sales(&json!({
            "jingdong_pop_afs_soa_refundapply_queryPageList_responce": {"code": "0", "queryResult": {
                "success": true, "totalCount": 4, "result": [
                    {"id": 1000399977, "orderId": "40204951366", "applyRefundSum": 1990.0,
                     "status": 3, "applyTime": "2016-10-21 10:37:13", "checkTime": "2016-10-21 11:00:00"},
                    // Refused by the seller: read, not a refund that went through.
                    {"id": "1000399978", "orderId": 40204951367_i64, "applyRefundSum": "500",
                     "status": 2, "applyTime": "2016-10-21 10:37:13"},
                    {"id": 3, "orderId": "1", "applyRefundSum": 12.5, "status": 1,
                     "checkTime": "2016-10-21 11:00:00"},
                    {"id": 4, "applyRefundSum": 1, "status": 1, "checkTime": "2016-10-21 11:00:00"}
                ]}}
        }))
        .expect("a page");
        assert_eq!(page.total, 4);
        assert_eq!(
            page.items,
            vec![
                MarketAfterSale {
                    case_ref: "1000399977".into(),
                    order_no: "40204951366".into(),
                    amount: Fen::new(1990),
                    succeeded: true,
                    modified_at: from_china_seconds_text("2016-10-21 11:00:00").expect("t"),
                },
                MarketAfterSale {
                    case_ref: "1000399978".into(),
                    order_no: "40204951367".into(),
                    amount: Fen::new(500),
                    succeeded: false,
                    modified_at: from_china_seconds_text("2016-10-21 10:37:13").expect("t"),
                },
            ]
        );
        // A fraction of a fen and a case without its order are set aside, with why.
        assert_eq!(page.unreadable.len(), 2, "{page:?}");
        assert!(page.unreadable[0].1.contains("applyRefundSum"), "{page:?}");
        assert!(page.unreadable[1].1.contains("orderId"), "{page:?}");
        let refused = read_after_sales(&json!({
            "jingdong_pop_afs_soa_refundapply_queryPageList_responce": {"queryResult": {
                "success": false, "errorCode": "E01", "errorMsg": "无权限"}}
        }));
        assert!(
            matches!(refused, Err(MarketError::Refused { ref code, .. }) if code == "E01"),
            "{refused:?}"
        );
        assert!(matches!(
            read_after_sales(&json!({"error_response": {"code": "19", "zh_desc": "token过期"}})),
            Err(MarketError::TokenExpired { .. })
        ));
    }

    #[test]
    fn only_statuses_whose_money_went_back_count() {
        let counts: Vec<i64> = (0..=11)
            .filter(|status| {
                let case = json!({"id": 1, "orderId": "9", "applyRefundSum": 100, "status": status,
                                  "checkTime": "2024-06-01 10:00:00"});
                after_sale(&case).expect("read").succeeded
            })
            .collect();
        // 3 财务审核通过, 6 拦截并退款, 7 青龙拦截成功, 9 强制关单并退款; not 0 未审核, 1/5 approved
        // but not yet paid, 2/4 refused, 8 interception failed, 10 waiting, 11 withdrawn.
        assert_eq!(counts, vec![3, 6, 7, 9]);
    }

    #[test]
    fn the_refund_request_asks_by_audit_time_and_is_signed() {
        let creds = Credentials {
            shop_ref: "1".into(),
            app_key: "k".into(),
            app_secret: "s".into(),
            access_token: Some("t".into()),
            refresh_token: None,
        };
        let from = from_china_seconds_text("2024-06-01 10:00:00").expect("t");
        let form = after_sales_request(&creds, from, from + 3_600_000, 2, 50, from);
        let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(get("method").as_deref(), Some(AFTER_SALES_METHOD));
        let business: Value =
            serde_json::from_str(&get("360buy_param_json").expect("business")).expect("json");
        assert_eq!(
            business,
            json!({"checkTimeStart": "2024-06-01 10:00:00", "checkTimeEnd": "2024-06-01 11:00:00",
                   "pageIndex": 2, "pageSize": 50})
        );
        let unsigned: Vec<(String, String)> =
            form.iter().filter(|(k, _)| k != "sign").cloned().collect();
        assert_eq!(
            get("sign"),
            Some(super::super::sign::md5_sorted("s", &unsigned))
        );
    }
}
