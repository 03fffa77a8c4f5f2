//! Taobao/Tmall through TOP: `taobao.trades.sold.increment.get` (orders by modification time,
//! at most a day per query), signed `md5` over sorted parameters, answering in
//! `trades_sold_increment_get_response`; tokens refreshed with `taobao.top.auth.token.refresh`.

use crate::platform::Fen;
use serde_json::Value;

use super::sign::with_md5_sign;
use super::{
    Credentials, Grant, LineKeys, MarketError, MarketOrder, OrderPage, Platform, Tokens,
    china_seconds_text, from_china_seconds_text, int, read_page, shape, text, yuan_lines,
    yuan_to_fen,
};

const P: Platform = Platform::Tmall;
pub const ORDERS_METHOD: &str = "taobao.trades.sold.increment.get";
pub const REFRESH_METHOD: &str = "taobao.top.auth.token.refresh";
/// The code of a seller's authorisation, exchanged for the shop's tokens.
pub const GRANT_METHOD: &str = "taobao.top.auth.token.create";
const FIELDS: &str = "tid,status,created,modified,pay_time,payment,buyer_nick,buyer_open_uid,\
receiver_name,receiver_mobile,receiver_state,orders";
/// Every trade type: TOP's default leaves out presales and several others.
const TYPES: &str = "fixed,auction,guarantee_trade,step,independent_simple_trade,\
independent_shop_trade,auto_delivery,ec,cod,game_equipment,shopex_trade,netcn_trade,external_trade,\
instant_trade,b2c_cod,hotel_trade,super_market_trade,super_market_cod_trade,taohua,waimai,\
o2o_offlinetrade,nopaid,eticket,tmall_i18n,insurance_plus,finance,pre_auth_type";

fn signed(
    creds: &Credentials,
    method: &str,
    now: i64,
    mut params: Vec<(String, String)>,
) -> Vec<(String, String)> {
    let mut all = vec![
        ("method".to_owned(), method.to_owned()),
        ("app_key".to_owned(), creds.app_key.clone()),
        ("timestamp".to_owned(), china_seconds_text(now)),
        ("format".to_owned(), "json".to_owned()),
        ("v".to_owned(), "2.0".to_owned()),
        ("sign_method".to_owned(), "md5".to_owned()),
    ];
    if let Some(t) = &creds.access_token {
        all.push(("session".to_owned(), t.clone()));
    }
    all.append(&mut params);
    with_md5_sign(&creds.app_secret, all)
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
    signed(
        creds,
        ORDERS_METHOD,
        now,
        vec![
            ("fields".into(), FIELDS.into()),
            ("type".into(), TYPES.into()),
            ("start_modified".into(), china_seconds_text(from)),
            ("end_modified".into(), china_seconds_text(to)),
            ("page_no".into(), page.to_string()),
            ("page_size".into(), size.to_string()),
        ],
    )
}

pub fn refresh_request(creds: &Credentials, now: i64) -> Vec<(String, String)> {
    let refresh = creds.refresh_token.clone().unwrap_or_default();
    signed(
        creds,
        REFRESH_METHOD,
        now,
        vec![("refresh_token".into(), refresh)],
    )
}

/// The exchange of an authorisation's code (a call without a session).
pub fn grant_request(creds: &Credentials, code: &str, now: i64) -> Vec<(String, String)> {
    let mut c = creds.clone();
    c.access_token = None;
    signed(
        &c,
        GRANT_METHOD,
        now,
        vec![("code".into(), code.to_owned())],
    )
}

/// TOP's `error_response`, as a [`MarketError`].
fn error(e: &Value) -> MarketError {
    let code = text(&e["code"]).unwrap_or_default();
    let sub = text(&e["sub_code"]).unwrap_or_default();
    let message = [text(&e["msg"]), text(&e["sub_msg"])]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(": ");
    match code.as_str() {
        "7" => MarketError::RateLimited {
            platform: P.as_str(),
            code: format!("7 {sub}"),
        },
        "26" | "27" => MarketError::TokenExpired {
            platform: P.as_str(),
            code: format!("{code} {sub}"),
        },
        "15" if sub.starts_with("isp.") => MarketError::Unavailable {
            platform: P.as_str(),
            reason: format!("{code} {sub} {message}"),
        },
        _ => MarketError::Refused {
            platform: P.as_str(),
            code: format!("{code} {sub}").trim().to_owned(),
            message,
        },
    }
}

/// TOP's trade status in Siyu's terms; an unknown code is kept as it is.
pub fn status(code: &str) -> String {
    match code {
        "TRADE_NO_CREATE_PAY" | "WAIT_BUYER_PAY" | "PAY_PENDING" | "WAIT_PRE_AUTH_CONFIRM" => {
            "pending"
        }
        "WAIT_SELLER_SEND_GOODS" | "PAID_FORBID_CONSIGN" | "SELLER_CONSIGNED_PART" => "paid",
        "WAIT_BUYER_CONFIRM_GOODS" | "TRADE_BUYER_SIGNED" => "shipped",
        "TRADE_FINISHED" => "completed",
        // Closed after payment: refunded in full.
        "TRADE_CLOSED" => "refunded",
        "TRADE_CLOSED_BY_TAOBAO" => "closed",
        other => return other.to_owned(),
    }
    .to_owned()
}

pub fn read_orders(v: &Value) -> Result<OrderPage, MarketError> {
    if v.get("error_response").is_some() {
        return Err(error(&v["error_response"]));
    }
    let r = v
        .get("trades_sold_increment_get_response")
        .ok_or_else(|| shape(P, "no trades_sold_increment_get_response"))?;
    read_page(
        P,
        &r["total_results"],
        &r["trades"]["trade"],
        "trades.trade",
        trade,
    )
}

fn trade(t: &Value) -> Result<MarketOrder, MarketError> {
    let tid = text(&t["tid"]).ok_or_else(|| shape(P, "a trade without tid"))?;
    let time = |f: &str| text(&t[f]).and_then(|s| from_china_seconds_text(&s));
    let created = time("created").ok_or_else(|| shape(P, format!("trade {tid}: no created")))?;
    let code = text(&t["status"]).unwrap_or_default();
    let amount =
        yuan_to_fen(&t["payment"]).ok_or_else(|| shape(P, format!("trade {tid}: payment")))?;
    let lines_json = match &t["orders"]["order"] {
        Value::Array(a) => a.as_slice(),
        _ => &[],
    };
    // Refunds are per line; a trade closed after payment was refunded in full.
    let refund = if code == "TRADE_CLOSED" {
        amount
    } else {
        lines_json
            .iter()
            .filter(|o| o["refund_status"] == "SUCCESS")
            .filter_map(|o| yuan_to_fen(&o["payment"]))
            .sum::<Fen>()
            .min(amount)
    };
    // The buyer's nick where the app still sees it unmasked (exports name buyers by it), and
    // the open uid: both, so that OneID joins them.
    let buyer_ids: Vec<String> = [
        text(&t["buyer_nick"]).filter(|n| !n.contains('*')),
        text(&t["buyer_open_uid"]),
    ]
    .into_iter()
    .flatten()
    .collect();
    Ok(MarketOrder {
        order_no: tid.clone(),
        status: status(&code),
        created_at: created,
        paid_at: time("pay_time"),
        modified_at: time("modified").unwrap_or(created),
        amount,
        refund_amount: refund,
        buyer_ids,
        phone: text(&t["receiver_mobile"]),
        buyer_name: text(&t["receiver_name"]),
        province: text(&t["receiver_state"]),
        lines: yuan_lines(
            lines_json,
            &LineKeys {
                sku: ["outer_sku_id", "outer_iid"],
                title: "title",
                quantity: "num",
                price: "price",
            },
        ),
    })
}

pub fn read_tokens(v: &Value, now: i64) -> Result<Tokens, MarketError> {
    let t = token_result(v, "top_auth_token_refresh_response")?;
    tokens_of(&t, now)
}

/// The shop's tokens and its seller (`taobao_user_id`; the nick comes URL-encoded).
pub fn read_grant(v: &Value, now: i64) -> Result<Grant, MarketError> {
    let t = token_result(v, "top_auth_token_create_response")?;
    let nick = text(&t["taobao_user_nick"]).map(|n| {
        percent_encoding::percent_decode_str(&n)
            .decode_utf8_lossy()
            .into_owned()
    });
    Ok(Grant {
        tokens: tokens_of(&t, now)?,
        shop_ref: text(&t["taobao_user_id"]),
        shop_name: nick,
    })
}

/// `token_result`, a JSON object written as a string inside the answer.
fn token_result(v: &Value, answer: &str) -> Result<Value, MarketError> {
    if v.get("error_response").is_some() {
        return Err(error(&v["error_response"]));
    }
    let result = text(&v[answer]["token_result"]).ok_or_else(|| shape(P, "no token_result"))?;
    serde_json::from_str(&result).map_err(|e| shape(P, format!("token_result: {e}")))
}

fn tokens_of(t: &Value, now: i64) -> Result<Tokens, MarketError> {
    let access = text(&t["access_token"]).ok_or_else(|| shape(P, "no access_token"))?;
    let expires_at = int(&t["expire_time"])
        .or_else(|| int(&t["expires_in"]).map(|s| now + s * 1000))
        .unwrap_or(now + 86_400_000);
    Ok(Tokens {
        access_token: access,
        refresh_token: text(&t["refresh_token"]),
        expires_at,
    })
}
