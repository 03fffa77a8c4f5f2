//! Youzan (有赞云): `youzan.trades.sold.get` 4.0.4 by update time at
//! `/api/youzan.trades.sold.get/4.0.4?access_token=…` (no request signature: the token is the
//! proof); the token comes from `/auth/token` with the app's secret (`authorize_type` silent,
//! for the shop's `grant_id`). Errors come as `gw_err_resp`, `success: false` or `error_response`.

use crate::platform::Fen;
use serde_json::{Value, json};

use super::{
    Credentials, LineKeys, MarketError, MarketOrder, OrderPage, Platform, Tokens,
    china_seconds_text, from_china_seconds_text, int, read_each, shape, text, yuan_lines,
    yuan_to_fen,
};

const P: Platform = Platform::Youzan;
pub const ORDERS_PATH: &str = "/api/youzan.trades.sold.get/4.0.4";

/// The path, query and JSON body of one page of trades updated in `[from, to]`.
pub fn orders_request(
    creds: &Credentials,
    from: i64,
    to: i64,
    page: u32,
    size: u32,
) -> (String, Vec<(String, String)>, Value) {
    (
        ORDERS_PATH.to_owned(),
        vec![(
            "access_token".to_owned(),
            creds.access_token.clone().unwrap_or_default(),
        )],
        json!({
            "start_update": china_seconds_text(from),
            "end_update": china_seconds_text(to),
            "page_no": page,
            "page_size": size,
        }),
    )
}

/// A self-use app's token, asked anew with its secret for the shop (`grant_id`).
pub fn refresh_request(creds: &Credentials) -> (String, Value) {
    let grant: Value = creds
        .shop_ref
        .parse::<i64>()
        .map(Value::from)
        .unwrap_or_else(|_| Value::from(creds.shop_ref.clone()));
    (
        "/auth/token".to_owned(),
        json!({
            "authorize_type": "silent",
            "client_id": creds.app_key,
            "client_secret": creds.app_secret,
            "grant_id": grant,
            "refresh": true,
        }),
    )
}

fn error(v: &Value) -> Option<MarketError> {
    let (code, message) = if let Some(e) = v.get("gw_err_resp") {
        (text(&e["err_code"]), text(&e["err_msg"]))
    } else if let Some(e) = v.get("error_response") {
        (text(&e["code"]), text(&e["msg"]))
    } else if v["success"] != true {
        // A refusal, or the gateway's bare {"code": 4101, "msg": …}: anything but success.
        (
            text(&v["code"]),
            text(&v["message"]).or_else(|| text(&v["msg"])),
        )
    } else {
        return None;
    };
    let code = code.unwrap_or_default();
    let message = message.unwrap_or_default();
    Some(match code.as_str() {
        "4101" => MarketError::RateLimited {
            platform: P.as_str(),
            code,
        },
        // Youzan publishes no list of gateway codes; its token errors name the token.
        _ if message.contains("token") || message.contains("授权") => MarketError::TokenExpired {
            platform: P.as_str(),
            code,
        },
        _ => MarketError::Refused {
            platform: P.as_str(),
            code,
            message,
        },
    })
}

/// Youzan's trade status in Siyu's terms; `refund_state` 12 is a full refund.
pub fn status(code: &str, refund_state: i64) -> String {
    match code {
        "WAIT_BUYER_PAY" => "pending",
        "TRADE_PAID" | "WAIT_CONFIRM" | "WAIT_SELLER_SEND_GOODS" => "paid",
        "WAIT_BUYER_CONFIRM_GOODS" => "shipped",
        "TRADE_SUCCESS" => "completed",
        "TRADE_CLOSED" | "TRADE_CLOSE" if refund_state == 12 => "refunded",
        "TRADE_CLOSED" | "TRADE_CLOSE" => "closed",
        other => return other.to_owned(),
    }
    .to_owned()
}

pub fn read_orders(v: &Value) -> Result<OrderPage, MarketError> {
    if let Some(e) = error(v) {
        return Err(e);
    }
    let d = &v["data"];
    let total = int(&d["total_results"]).unwrap_or(0).max(0) as u64;
    let list = match &d["full_order_info_list"] {
        Value::Array(a) => a.as_slice(),
        Value::Null => &[],
        _ => return Err(shape(P, "full_order_info_list is not a list")),
    };
    Ok(read_each(list, total, |f| order(&f["full_order_info"])))
}

fn order(f: &Value) -> Result<MarketOrder, MarketError> {
    let info = &f["order_info"];
    let tid = text(&info["tid"]).ok_or_else(|| shape(P, "a trade without tid"))?;
    let time = |field: &str| text(&info[field]).and_then(|s| from_china_seconds_text(&s));
    let created = time("created").ok_or_else(|| shape(P, format!("trade {tid}: created")))?;
    let amount = yuan_to_fen(&f["pay_info"]["payment"])
        .ok_or_else(|| shape(P, format!("trade {tid}: payment")))?;
    let status = status(
        &text(&info["status"]).unwrap_or_default(),
        int(&info["refund_state"]).unwrap_or(0),
    );
    let buyer = &f["buyer_info"];
    let lines = f["orders"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    Ok(MarketOrder {
        refund_amount: if status == "refunded" {
            amount
        } else {
            Fen::ZERO
        },
        order_no: tid,
        status,
        created_at: created,
        paid_at: time("pay_time"),
        modified_at: time("update_time").unwrap_or(created),
        amount,
        buyer_ids: text(&buyer["yz_open_id"]).into_iter().collect(),
        phone: text(&buyer["buyer_phone"]),
        buyer_name: text(&f["address_info"]["receiver_name"]),
        province: text(&f["address_info"]["delivery_province"]),
        lines: yuan_lines(
            lines,
            &LineKeys {
                sku: ["outer_sku_id", "outer_item_id"],
                title: "title",
                quantity: "num",
                price: "price",
            },
        ),
    })
}

pub fn read_tokens(v: &Value, now: i64) -> Result<Tokens, MarketError> {
    if let Some(e) = error(v) {
        return Err(e);
    }
    let d = &v["data"];
    let access = text(&d["access_token"]).ok_or_else(|| shape(P, "no access_token"))?;
    Ok(Tokens {
        access_token: access,
        refresh_token: text(&d["refresh_token"]),
        expires_at: int(&d["expires"]).unwrap_or(now + 7 * 86_400_000),
    })
}
