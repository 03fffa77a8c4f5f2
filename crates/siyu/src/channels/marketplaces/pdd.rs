//! PDD (拼多多开放平台): `pdd.order.number.list.increment.get` (orders by update time, at most
//! 30 minutes per query), signed MD5 over sorted parameters with `timestamp` in seconds;
//! answers in `order_sn_increment_get_response`; tokens refreshed with `pdd.pop.auth.token.refresh`.
//! Refunds come from `pdd.refund.list.increment.get` (after-sales cases by update time, the same
//! 30 minutes), asked for the cases that went through (`after_sales_status` 10, 退款成功): the
//! order API says only that an order was refunded, not how much of it.

use crate::platform::Fen;
use serde_json::Value;

use super::sign::with_md5_sign;
use super::{
    AfterSalePage, Credentials, Grant, LineKeys, MarketAfterSale, MarketError, MarketOrder,
    OrderPage, Page, Platform, Tokens, from_china_seconds_text, int, read_page, shape, text,
    yuan_lines, yuan_to_fen,
};

const P: Platform = Platform::Pdd;
pub const ORDERS_TYPE: &str = "pdd.order.number.list.increment.get";
pub const REFRESH_TYPE: &str = "pdd.pop.auth.token.refresh";
/// The code of a seller's authorisation, exchanged for the shop's tokens.
pub const GRANT_TYPE: &str = "pdd.pop.auth.token.create";
pub const AFTER_SALES_TYPE: &str = "pdd.refund.list.increment.get";
/// `after_sales_status` of a case whose money went back (退款成功).
pub const REFUND_SUCCEEDED: i64 = 10;

fn signed(
    creds: &Credentials,
    kind: &str,
    now: i64,
    mut params: Vec<(String, String)>,
) -> Vec<(String, String)> {
    let mut all = vec![
        ("type".to_owned(), kind.to_owned()),
        ("client_id".to_owned(), creds.app_key.clone()),
        ("timestamp".to_owned(), (now / 1000).to_string()),
        ("data_type".to_owned(), "JSON".to_owned()),
    ];
    if let Some(t) = &creds.access_token {
        all.push(("access_token".to_owned(), t.clone()));
    }
    all.append(&mut params);
    with_md5_sign(&creds.app_secret, all)
}

/// The paging of an increment query: updated in `[from, to]` (ms, sent as seconds), page `page`.
fn window(from: i64, to: i64, page: u32, size: u32) -> [(String, String); 4] {
    [
        ("start_updated_at".into(), (from / 1000).to_string()),
        ("end_updated_at".into(), (to / 1000).to_string()),
        ("page".into(), page.to_string()),
        ("page_size".into(), size.to_string()),
    ]
}

/// The form of one page of orders updated in `[from, to]` (seconds).
pub fn orders_request(
    creds: &Credentials,
    from: i64,
    to: i64,
    page: u32,
    size: u32,
    now: i64,
) -> Vec<(String, String)> {
    signed(
        creds,
        ORDERS_TYPE,
        now,
        [
            ("is_lucky_flag".into(), "0".into()),
            ("order_status".into(), "5".into()),
            ("refund_status".into(), "5".into()),
        ]
        .into_iter()
        .chain(window(from, to, page, size))
        .collect(),
    )
}

/// The form of one page of after-sales cases that went through, updated in `[from, to]`
/// (seconds), of every kind (`after_sales_type` 1: refund only, return and refund, …).
pub fn after_sales_request(
    creds: &Credentials,
    from: i64,
    to: i64,
    page: u32,
    size: u32,
    now: i64,
) -> Vec<(String, String)> {
    signed(
        creds,
        AFTER_SALES_TYPE,
        now,
        [
            ("after_sales_status".into(), REFUND_SUCCEEDED.to_string()),
            ("after_sales_type".into(), "1".into()),
        ]
        .into_iter()
        .chain(window(from, to, page, size))
        .collect(),
    )
}

pub fn refresh_request(creds: &Credentials, now: i64) -> Vec<(String, String)> {
    let refresh = creds.refresh_token.clone().unwrap_or_default();
    let mut c = creds.clone();
    c.access_token = None;
    signed(
        &c,
        REFRESH_TYPE,
        now,
        vec![("refresh_token".into(), refresh)],
    )
}

/// The exchange of an authorisation's code (signed, without a token).
pub fn grant_request(creds: &Credentials, code: &str, now: i64) -> Vec<(String, String)> {
    let mut c = creds.clone();
    c.access_token = None;
    signed(&c, GRANT_TYPE, now, vec![("code".into(), code.to_owned())])
}

fn error(e: &Value) -> MarketError {
    let code = text(&e["error_code"]).unwrap_or_default();
    let message = [text(&e["error_msg"]), text(&e["sub_msg"])]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(": ");
    match code.as_str() {
        "10019" => MarketError::TokenExpired {
            platform: P.as_str(),
            code,
        },
        "52101" | "70031" => MarketError::RateLimited {
            platform: P.as_str(),
            code,
        },
        "52102" | "52103" | "70033" | "50000" | "50001" | "50002" | "52001" | "52002" => {
            MarketError::Unavailable {
                platform: P.as_str(),
                reason: format!("{code} {message}"),
            }
        }
        _ => MarketError::Refused {
            platform: P.as_str(),
            code,
            message,
        },
    }
}

/// PDD's order in Siyu's terms: a refund that succeeded, a cancelled order or a failed group
/// come before the shipping state.
pub fn status(o: &Value) -> String {
    let n = |f: &str| int(&o[f]).unwrap_or(-1);
    let paid = text(&o["pay_time"]).is_some();
    if n("refund_status") == 4 || n("group_status") == 2 {
        return "refunded".into();
    }
    if n("confirm_status") == 2 {
        return if paid { "refunded" } else { "closed" }.into();
    }
    match n("order_status") {
        1 => "paid".into(),
        2 => "shipped".into(),
        3 => "completed".into(),
        other => format!("pdd:order_status={other}"),
    }
}

/// A page's list under `answer` (`total_count` beside it), read item by item, or the error PDD
/// answered instead.
fn listed<T>(
    v: &Value,
    answer: &str,
    list: &str,
    read: impl Fn(&Value) -> Result<T, MarketError>,
) -> Result<Page<T>, MarketError> {
    if v.get("error_response").is_some() {
        return Err(error(&v["error_response"]));
    }
    let r = v
        .get(answer)
        .ok_or_else(|| shape(P, format!("no {answer}")))?;
    read_page(P, &r["total_count"], &r[list], list, read)
}

pub fn read_orders(v: &Value) -> Result<OrderPage, MarketError> {
    listed(v, "order_sn_increment_get_response", "order_sn_list", order)
}

fn order(o: &Value) -> Result<MarketOrder, MarketError> {
    let sn = text(&o["order_sn"]).ok_or_else(|| shape(P, "an order without order_sn"))?;
    let time = |f: &str| text(&o[f]).and_then(|s| from_china_seconds_text(&s));
    let created =
        time("created_time").ok_or_else(|| shape(P, format!("order {sn}: created_time")))?;
    let amount =
        yuan_to_fen(&o["pay_amount"]).ok_or_else(|| shape(P, format!("order {sn}: pay_amount")))?;
    let status = status(o);
    let items = match &o["item_list"] {
        Value::Array(a) => a.as_slice(),
        _ => &[],
    };
    Ok(MarketOrder {
        refund_amount: if status == "refunded" {
            amount
        } else {
            Fen::ZERO
        },
        order_no: sn,
        status,
        created_at: created,
        paid_at: time("pay_time").or_else(|| time("confirm_time")),
        modified_at: time("updated_at").unwrap_or(created),
        amount,
        // The increment API names no buyer; the phone comes encrypted or masked.
        buyer_ids: Vec::new(),
        phone: text(&o["receiver_phone"]).or_else(|| text(&o["contact_mobile"])),
        buyer_name: None,
        province: text(&o["province"]),
        lines: yuan_lines(
            items,
            &LineKeys {
                sku: ["outer_id", "sku_id"],
                title: "goods_name",
                quantity: "goods_count",
                price: "goods_price",
            },
        ),
    })
}

pub fn read_after_sales(v: &Value) -> Result<AfterSalePage, MarketError> {
    listed(
        v,
        "refund_increment_get_response",
        "refund_list",
        after_sale,
    )
}

/// One case: `refund_amount` in yuan; `updated_time` in seconds (older answers wrote China
/// time as text, which is read too).
fn after_sale(c: &Value) -> Result<MarketAfterSale, MarketError> {
    let id = text(&c["id"]).ok_or_else(|| shape(P, "an after-sales case without id"))?;
    let order_no =
        text(&c["order_sn"]).ok_or_else(|| shape(P, format!("case {id}: no order_sn")))?;
    let amount = yuan_to_fen(&c["refund_amount"])
        .ok_or_else(|| shape(P, format!("case {id}: refund_amount")))?;
    let updated = text(&c["updated_time"])
        .and_then(|t| match t.parse::<i64>() {
            Ok(secs) => Some(secs * 1000),
            Err(_) => from_china_seconds_text(&t),
        })
        .ok_or_else(|| shape(P, format!("case {id}: updated_time")))?;
    Ok(MarketAfterSale {
        case_ref: id,
        order_no,
        amount,
        succeeded: int(&c["after_sales_status"]) == Some(REFUND_SUCCEEDED),
        modified_at: updated,
    })
}

pub fn read_tokens(v: &Value, now: i64) -> Result<Tokens, MarketError> {
    tokens_of(answer(v, "pop_auth_token_refresh_response")?, now)
}

/// The shop's tokens and its owner (`owner_id`, the shop; `owner_name`).
pub fn read_grant(v: &Value, now: i64) -> Result<Grant, MarketError> {
    let t = answer(v, "pop_auth_token_create_response")?;
    Ok(Grant {
        tokens: tokens_of(t, now)?,
        shop_ref: text(&t["owner_id"]),
        shop_name: text(&t["owner_name"]),
    })
}

fn answer<'a>(v: &'a Value, key: &str) -> Result<&'a Value, MarketError> {
    if v.get("error_response").is_some() {
        return Err(error(&v["error_response"]));
    }
    v.get(key).ok_or_else(|| shape(P, format!("no {key}")))
}

fn tokens_of(t: &Value, now: i64) -> Result<Tokens, MarketError> {
    let access = text(&t["access_token"]).ok_or_else(|| shape(P, "no access_token"))?;
    let expires_at = int(&t["expires_at"])
        .map(|s| s * 1000)
        .or_else(|| int(&t["expires_in"]).map(|s| now + s * 1000))
        .unwrap_or(now + 86_400_000);
    Ok(Tokens {
        access_token: access,
        refresh_token: text(&t["refresh_token"]),
        expires_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn after_sales_cases_read_as_pdd_writes_them() {
        // The documented answer's shape: ids as numbers, yuan and seconds as text.
        let page = read_after_sales(&json!({"refund_increment_get_response": {
            "total_count": 3,
            "refund_list": [
                {"id": 301851299, "order_sn": "180410-416081954561509", "after_sales_status": 10,
                 "after_sales_type": 3, "order_amount": "18.00", "refund_amount": "8.00",
                 "updated_time": "1523351883"},
                // An older answer wrote China time as text.
                {"id": "2", "order_sn": "180410-2", "after_sales_status": 5,
                 "refund_amount": "1.5", "updated_time": "2018-04-10 17:18:03"},
                {"id": 3, "after_sales_status": 10, "refund_amount": "1.00", "updated_time": "1"}
            ]
        }}))
        .expect("a page");
        assert_eq!(page.total, 3);
        assert_eq!(
            page.items,
            vec![
                MarketAfterSale {
                    case_ref: "301851299".into(),
                    order_no: "180410-416081954561509".into(),
                    amount: Fen::new(800),
                    succeeded: true,
                    modified_at: 1_523_351_883_000,
                },
                MarketAfterSale {
                    case_ref: "2".into(),
                    order_no: "180410-2".into(),
                    amount: Fen::new(150),
                    succeeded: false,
                    modified_at: 1_523_351_883_000,
                },
            ]
        );
        // A case without its order is set aside by position, with why.
        assert_eq!(page.unreadable.len(), 1);
        assert!(page.unreadable[0].1.contains("order_sn"), "{page:?}");
        assert!(matches!(
            read_after_sales(
                &json!({"error_response": {"error_code": 52101, "error_msg": "频繁"}})
            ),
            Err(MarketError::RateLimited { .. })
        ));
    }

    #[test]
    fn the_after_sales_request_asks_for_refunds_that_went_through() {
        let creds = Credentials {
            shop_ref: "1".into(),
            app_key: "k".into(),
            app_secret: "s".into(),
            access_token: Some("t".into()),
            refresh_token: None,
        };
        let form = after_sales_request(&creds, 1_000_000, 2_800_000, 2, 100, 1_700_000_000_123);
        let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("type"), Some("pdd.refund.list.increment.get"));
        assert_eq!(get("after_sales_status"), Some("10"));
        assert_eq!(get("after_sales_type"), Some("1"));
        assert_eq!(get("start_updated_at"), Some("1000"));
        assert_eq!(get("end_updated_at"), Some("2800"));
        assert_eq!(get("timestamp"), Some("1700000000"));
        assert!(get("sign").is_some_and(|s| s.len() == 32));
    }
}
