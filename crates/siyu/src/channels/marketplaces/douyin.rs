//! Douyin (抖店开放平台): `order.searchList` at `/order/searchList`, by update time, pages from
//! 0; `param_json` (keys sorted at every level) is the body, and the call is signed
//! HMAC-SHA256 as the official SDKs sign it. Answers `{code: 10000, data: {total,
//! shop_order_list}}` (or the older `err_no` form); money in fen, times in seconds. Tokens are
//! refreshed at `/token/refresh`.

use crate::platform::Fen;
use serde_json::{Value, json};

use super::sign::douyin_hmac_sha256;
use super::{
    Credentials, Grant, MarketError, MarketLine, MarketOrder, OrderPage, Platform, Tokens, int,
    read_page, shape, text,
};

const P: Platform = Platform::Douyin;
pub const ORDERS_METHOD: &str = "order.searchList";
pub const REFRESH_METHOD: &str = "token.refresh";
/// The code of a seller's authorisation, exchanged for the shop's tokens.
pub const GRANT_METHOD: &str = "token.create";

/// The path, query and body of a signed call.
fn signed(
    creds: &Credentials,
    method: &str,
    params: &Value,
    now: i64,
    with_token: bool,
) -> (String, Vec<(String, String)>, String) {
    let param_json = params.to_string();
    let timestamp = (now / 1000).to_string();
    let sign = douyin_hmac_sha256(
        &creds.app_secret,
        &creds.app_key,
        method,
        &param_json,
        &timestamp,
    );
    let mut query = vec![
        ("app_key".to_owned(), creds.app_key.clone()),
        ("method".to_owned(), method.to_owned()),
        ("timestamp".to_owned(), timestamp),
        ("v".to_owned(), "2".to_owned()),
        ("sign_method".to_owned(), "hmac-sha256".to_owned()),
        ("sign".to_owned(), sign),
    ];
    if with_token {
        query.push((
            "access_token".to_owned(),
            creds.access_token.clone().unwrap_or_default(),
        ));
    }
    (format!("/{}", method.replace('.', "/")), query, param_json)
}

/// One page (`page` from 1; Douyin counts from 0) of orders updated in `[from, to]`.
pub fn orders_request(
    creds: &Credentials,
    from: i64,
    to: i64,
    page: u32,
    size: u32,
    now: i64,
) -> (String, Vec<(String, String)>, String) {
    let params = json!({
        "order_asc": true,
        "order_by": "update_time",
        "page": page.saturating_sub(1),
        "size": size,
        "update_time_end": to / 1000,
        "update_time_start": from / 1000,
    });
    signed(creds, ORDERS_METHOD, &params, now, true)
}

pub fn refresh_request(creds: &Credentials, now: i64) -> (String, Vec<(String, String)>, String) {
    let params = json!({
        "grant_type": "refresh_token",
        "refresh_token": creds.refresh_token.clone().unwrap_or_default(),
    });
    signed(creds, REFRESH_METHOD, &params, now, false)
}

/// The exchange of an authorisation's code at `/token/create` (signed, without a token).
pub fn grant_request(
    creds: &Credentials,
    code: &str,
    now: i64,
) -> (String, Vec<(String, String)>, String) {
    let params = json!({"code": code, "grant_type": "authorization_code"});
    signed(creds, GRANT_METHOD, &params, now, false)
}

/// The envelope: `data`, or the error it carries.
fn data(v: &Value) -> Result<&Value, MarketError> {
    let code =
        int(&v["code"]).or_else(|| int(&v["err_no"]).map(|n| if n == 0 { 10000 } else { n }));
    if code == Some(10000) {
        return Ok(&v["data"]);
    }
    let code_text = format!(
        "{} {}",
        code.unwrap_or(-1),
        text(&v["sub_code"]).unwrap_or_default()
    );
    let message = [text(&v["msg"]), text(&v["message"]), text(&v["sub_msg"])]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(": ");
    let sub = text(&v["sub_code"])
        .unwrap_or_default()
        .to_ascii_lowercase();
    // Douyin names the kind of failure in `sub_code` (isv.access-token-expired,
    // isv.access-token-no-exist, …limit…); the numeric codes are not published.
    Err(
        if sub.contains("access-token") || sub.contains("access_token") {
            MarketError::TokenExpired {
                platform: P.as_str(),
                code: code_text,
            }
        } else if sub.contains("limit") || sub.contains("frequen") {
            MarketError::RateLimited {
                platform: P.as_str(),
                code: code_text,
            }
        } else if sub.starts_with("isp.") || code.is_some_and(|c| c >= 50_000) {
            MarketError::Unavailable {
                platform: P.as_str(),
                reason: format!("{code_text} {message}"),
            }
        } else {
            MarketError::Refused {
                platform: P.as_str(),
                code: code_text,
                message,
            }
        },
    )
}

/// Douyin's order status in Siyu's terms.
pub fn status(o: &Value) -> String {
    let paid = int(&o["pay_time"]).unwrap_or(0) > 0;
    let skus = o["sku_order_list"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let all_refunded = !skus.is_empty()
        && skus
            .iter()
            .all(|s| int(&s["after_sale_info"]["refund_status"]) == Some(3));
    if all_refunded {
        return "refunded".into();
    }
    match int(&o["order_status"]).unwrap_or(-1) {
        1 => "pending".into(),
        105 | 2 | 101 => "paid".into(),
        3 => "shipped".into(),
        5 => "completed".into(),
        4 if paid => "refunded".into(),
        4 => "closed".into(),
        other => format!("douyin:order_status={other}"),
    }
}

pub fn read_orders(v: &Value) -> Result<OrderPage, MarketError> {
    let d = data(v)?;
    read_page(
        P,
        &d["total"],
        &d["shop_order_list"],
        "shop_order_list",
        order,
    )
}

fn order(o: &Value) -> Result<MarketOrder, MarketError> {
    let id = text(&o["order_id"]).ok_or_else(|| shape(P, "an order without order_id"))?;
    let secs = |f: &str| int(&o[f]).filter(|s| *s > 0).map(|s| s * 1000);
    let created =
        secs("create_time").ok_or_else(|| shape(P, format!("order {id}: create_time")))?;
    let amount = int(&o["pay_amount"])
        .map(Fen::new)
        .ok_or_else(|| shape(P, format!("order {id}: pay_amount")))?;
    let status = status(o);
    let skus = o["sku_order_list"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    // Refunds are per sub-order: what each refunded sub-order was paid.
    let refund = if status == "refunded" {
        amount
    } else {
        skus.iter()
            .filter(|s| int(&s["after_sale_info"]["refund_status"]) == Some(3))
            .filter_map(|s| int(&s["pay_amount"]).map(Fen::new))
            .sum::<Fen>()
            .min(amount)
    };
    Ok(MarketOrder {
        order_no: id,
        status,
        created_at: created,
        paid_at: secs("pay_time"),
        modified_at: secs("update_time").unwrap_or(created),
        amount,
        refund_amount: refund,
        buyer_ids: text(&o["doudian_open_id"]).into_iter().collect(),
        phone: text(&o["mask_post_tel"]),
        buyer_name: text(&o["mask_post_receiver"]),
        province: text(&o["post_addr"]["province"]["name"]),
        lines: skus
            .iter()
            .map(|s| {
                let quantity = int(&s["item_num"]).unwrap_or(1);
                MarketLine {
                    sku: text(&s["out_sku_id"]).or_else(|| text(&s["code"])),
                    title: text(&s["product_name"]),
                    quantity,
                    price: Fen::new(int(&s["origin_amount"]).unwrap_or(0)) / quantity.max(1),
                }
            })
            .collect(),
    })
}

/// The shop's tokens and the shop (`shop_id`, `shop_name`).
pub fn read_grant(v: &Value, now: i64) -> Result<Grant, MarketError> {
    let d = data(v)?;
    Ok(Grant {
        tokens: read_tokens(v, now)?,
        shop_ref: text(&d["shop_id"]),
        shop_name: text(&d["shop_name"]),
    })
}

pub fn read_tokens(v: &Value, now: i64) -> Result<Tokens, MarketError> {
    let d = data(v)?;
    let access = text(&d["access_token"]).ok_or_else(|| shape(P, "no access_token"))?;
    // Documented as seconds to live; some SDKs read it as an absolute time in seconds.
    let expires_at = match int(&d["expires_in"]) {
        Some(s) if s > 1_000_000_000 => s * 1000,
        Some(s) => now + s * 1000,
        None => now + 7 * 86_400_000,
    };
    Ok(Tokens {
        access_token: access,
        refresh_token: text(&d["refresh_token"]),
        expires_at,
    })
}
