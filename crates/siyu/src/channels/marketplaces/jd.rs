//! JD (京东开放平台): `jingdong.pop.order.search` by modification time (`dateType` 0), its
//! business parameters in `360buy_param_json`, signed MD5 over sorted parameters; answers in
//! `jingdong_pop_order_search_responce` (JD's spelling). Tokens are refreshed at JD's OAuth
//! server (`/oauth2/refresh_token`).

use crate::platform::Fen;
use serde_json::{Value, json};

use super::sign::with_md5_sign;
use super::{
    Credentials, LineKeys, MarketError, MarketOrder, OrderPage, Platform, Tokens,
    china_seconds_text, from_china_seconds_text, int, read_each, shape, text, yuan_lines,
    yuan_to_fen,
};

const P: Platform = Platform::Jd;
pub const ORDERS_METHOD: &str = "jingdong.pop.order.search";
/// Every state the API returns (it returns no unpaid orders).
const STATES: &str = "WAIT_SELLER_STOCK_OUT,WAIT_SELLER_DELIVERY,PAUSE,POP_ORDER_PAUSE,LOCKED,\
WAIT_GOODS_RECEIVE_CONFIRM,FINISHED_L,TRADE_CANCELED";
const FIELDS: &str = "orderId,orderState,orderStartTime,paymentConfirmTime,modified,orderPayment,\
pin,open_id_buyer,consigneeInfo,itemInfoList";
const OAUTH_BASE: &str = "https://open-oauth.jd.com";

/// The form of one page of orders modified in `[from, to]`.
pub fn orders_request(
    creds: &Credentials,
    from: i64,
    to: i64,
    page: u32,
    size: u32,
    now: i64,
) -> Vec<(String, String)> {
    // serde_json's maps are sorted, as JD asks of the business parameters.
    let business = json!({
        "dateType": "0",
        "end_date": china_seconds_text(to),
        "optional_fields": FIELDS,
        "order_state": STATES,
        "page": page.to_string(),
        "page_size": size.to_string(),
        "start_date": china_seconds_text(from),
    });
    let params = vec![
        ("360buy_param_json".to_owned(), business.to_string()),
        (
            "access_token".to_owned(),
            creds.access_token.clone().unwrap_or_default(),
        ),
        ("app_key".to_owned(), creds.app_key.clone()),
        ("method".to_owned(), ORDERS_METHOD.to_owned()),
        ("timestamp".to_owned(), china_seconds_text(now)),
        ("v".to_owned(), "2.0".to_owned()),
    ];
    with_md5_sign(&creds.app_secret, params)
}

/// The refresh URL and its query. JD's OAuth server is its own host; a sandbox serves both.
pub fn refresh_request(creds: &Credentials, api_base: &str) -> (String, Vec<(String, String)>) {
    let base = if api_base == P.default_base() {
        OAUTH_BASE.to_owned()
    } else {
        api_base.to_owned()
    };
    (
        format!("{base}/oauth2/refresh_token"),
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
    let total = int(&r["orderTotal"]).unwrap_or(0).max(0) as u64;
    let list = match &r["orderInfoList"] {
        Value::Array(a) => a.as_slice(),
        Value::Null => &[],
        _ => return Err(shape(P, "orderInfoList is not a list")),
    };
    Ok(read_each(list, total, order))
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
