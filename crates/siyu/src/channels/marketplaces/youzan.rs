//! Youzan (有赞云): `youzan.trades.sold.get` 4.0.4 by update time at
//! `/api/youzan.trades.sold.get/4.0.4?access_token=…` (no request signature: the token is the
//! proof); the token comes from `/auth/token` with the app's secret (`authorize_type` silent,
//! for the shop's `grant_id`). Errors come as `gw_err_resp`, `success: false` or `error_response`.
//! The trade says only that it was closed after a full refund (`refund_state` 12); what went back
//! of it comes from `youzan.trade.refund.search` 3.0.1, by update time, asked for the refunds
//! that went through (`SUCCESS`, 退款成功).

use crate::platform::Fen;
use serde_json::{Value, json};

use super::{
    AfterSalePage, Credentials, LineKeys, MarketAfterSale, MarketError, MarketOrder, OrderPage,
    Platform, Tokens, china_seconds_text, from_china_seconds_text, int, read_page, shape, text,
    yuan_lines, yuan_to_fen,
};

const P: Platform = Platform::Youzan;
pub const ORDERS_PATH: &str = "/api/youzan.trades.sold.get/4.0.4";
pub const AFTER_SALES_PATH: &str = "/api/youzan.trade.refund.search/3.0.1";
/// A refund whose money went back (退款成功).
pub const REFUND_SUCCEEDED: &str = "SUCCESS";

fn token_query(creds: &Credentials) -> Vec<(String, String)> {
    vec![(
        "access_token".to_owned(),
        creds.access_token.clone().unwrap_or_default(),
    )]
}

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
        token_query(creds),
        json!({
            "start_update": china_seconds_text(from),
            "end_update": china_seconds_text(to),
            "page_no": page,
            "page_size": size,
        }),
    )
}

/// The path, query and JSON body of one page of refunds that went through, updated in
/// `[from, to]` (sent as Unix seconds, as this API takes them).
pub fn after_sales_request(
    creds: &Credentials,
    from: i64,
    to: i64,
    page: u32,
    size: u32,
) -> (String, Vec<(String, String)>, Value) {
    (
        AFTER_SALES_PATH.to_owned(),
        token_query(creds),
        json!({
            "update_time_start": from / 1000,
            "update_time_end": to / 1000,
            "status": REFUND_SUCCEEDED,
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
        // An app without an API's permission is told so in a token's words ("未获得…授权"):
        // a refusal, which a refresh does not mend.
        _ if message.contains("未获得") || message.contains("无权") => MarketError::Refused {
            platform: P.as_str(),
            code,
            message,
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
    read_page(
        P,
        &d["total_results"],
        &d["full_order_info_list"],
        "full_order_info_list",
        |f| order(&f["full_order_info"]),
    )
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

pub fn read_after_sales(v: &Value) -> Result<AfterSalePage, MarketError> {
    if let Some(e) = error(v) {
        return Err(e);
    }
    let d = &v["data"];
    read_page(P, &d["total"], &d["refunds"], "refunds", after_sale)
}

/// One refund: `refund_fee` in yuan, `modified` in China time.
fn after_sale(r: &Value) -> Result<MarketAfterSale, MarketError> {
    let id = text(&r["refund_id"]).ok_or_else(|| shape(P, "a refund without refund_id"))?;
    let tid = text(&r["tid"]).ok_or_else(|| shape(P, format!("refund {id}: no tid")))?;
    let amount = yuan_to_fen(&r["refund_fee"])
        .ok_or_else(|| shape(P, format!("refund {id}: refund_fee")))?;
    let modified = text(&r["modified"])
        .or_else(|| text(&r["created"]))
        .and_then(|t| from_china_seconds_text(&t))
        .ok_or_else(|| shape(P, format!("refund {id}: modified")))?;
    Ok(MarketAfterSale {
        case_ref: id,
        order_no: tid,
        amount,
        succeeded: text(&r["status"]).as_deref() == Some(REFUND_SUCCEEDED),
        modified_at: modified,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refunds_read_as_youzan_writes_them() {
        let page = read_after_sales(&json!({"success": true, "code": 200, "data": {"total": 3, "refunds": [
            {"refund_id": "201903221457250000030006", "tid": "E20190321204808058800020",
             "status": "SUCCESS", "refund_fee": "12.90", "created": "2019-03-21 20:50:03",
             "modified": "2019-03-21 20:59:30", "return_goods": false, "reason": 54},
            {"refund_id": "2", "tid": "E2", "status": "WAIT_SELLER_AGREE", "refund_fee": 0.01,
             "created": "2019-03-21 20:50:03"},
            {"refund_id": "3", "status": "SUCCESS", "refund_fee": "1.00", "modified": "2019-03-21 20:59:30"}
        ]}}))
        .expect("a page");
        assert_eq!(page.total, 3);
        assert_eq!(
            page.items,
            vec![
                MarketAfterSale {
                    case_ref: "201903221457250000030006".into(),
                    order_no: "E20190321204808058800020".into(),
                    amount: Fen::new(1290),
                    succeeded: true,
                    modified_at: from_china_seconds_text("2019-03-21 20:59:30").expect("t"),
                },
                MarketAfterSale {
                    case_ref: "2".into(),
                    order_no: "E2".into(),
                    amount: Fen::new(1),
                    succeeded: false,
                    modified_at: from_china_seconds_text("2019-03-21 20:50:03").expect("t"),
                },
            ]
        );
        assert_eq!(page.unreadable.len(), 1);
        assert!(page.unreadable[0].1.contains("tid"), "{page:?}");
        assert!(matches!(
            read_after_sales(&json!({"code": 4101, "msg": "请求太频繁"})),
            Err(MarketError::RateLimited { .. })
        ));
        assert!(matches!(
            read_after_sales(&json!({"success": false, "code": 50001, "message": "无权限"})),
            Err(MarketError::Refused { .. })
        ));
        // The permission refusal in a token's words is a refusal, not an expired token.
        assert!(matches!(
            read_after_sales(
                &json!({"gw_err_resp": {"err_code": 4202, "err_msg": "应用未获得该 API 的授权"}})
            ),
            Err(MarketError::Refused { .. })
        ));
        assert!(matches!(
            read_after_sales(
                &json!({"gw_err_resp": {"err_code": 4203, "err_msg": "access_token 不存在或已过期"}})
            ),
            Err(MarketError::TokenExpired { .. })
        ));
    }

    #[test]
    fn the_refund_search_asks_for_refunds_that_went_through_by_update_time() {
        let creds = Credentials {
            shop_ref: "1".into(),
            app_key: "k".into(),
            app_secret: "s".into(),
            access_token: Some("t".into()),
            refresh_token: None,
        };
        let (path, query, body) = after_sales_request(&creds, 1_000_999, 4_600_000, 3, 100);
        assert_eq!(path, "/api/youzan.trade.refund.search/3.0.1");
        assert_eq!(query, vec![("access_token".to_owned(), "t".to_owned())]);
        assert_eq!(
            body,
            json!({"update_time_start": 1000, "update_time_end": 4600, "status": "SUCCESS",
                   "page_no": 3, "page_size": 100})
        );
    }
}
