//! The platforms' authorisation pages and their code exchanges. The page checks the app (its key,
//! Douyin's service id) and where it is to send the browser back (under the app's registered
//! callback, when the shop has one; Douyin's is the registered one alone), then the seller says
//! yes at once (or no, when the shop is set to refuse) and the browser is sent back with a code
//! that is good once, for ten minutes.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use siyu::platform::clock::now_ms;

use super::{Inner, Platform, Shared, lock};

fn refuse(inner: &mut Inner, why: &str) -> Response {
    inner.stats.bad_requests += 1;
    (StatusCode::BAD_REQUEST, why.to_owned()).into_response()
}

fn back_to(target: &str, params: &[(&str, &str)]) -> Response {
    let sep = if target.contains('?') { '&' } else { '?' };
    let query: String = params
        .iter()
        .map(|(k, v)| format!("{k}={}", percent(v)))
        .collect::<Vec<_>>()
        .join("&");
    (
        StatusCode::FOUND,
        [(header::LOCATION, format!("{target}{sep}{query}"))],
    )
        .into_response()
}

fn percent(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `GET` the authorisation page (TOP `/authorize`, JD `/oauth2/to_login`, PDD
/// `/service-market/auth`, Douyin `/authorize`).
pub(crate) async fn page(
    State(s): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut inner = lock(&s);
    inner.stats.calls += 1;
    let platform = inner.shop.platform;
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or("");
    let app_ok = match platform {
        Platform::Tmall | Platform::Pdd => {
            get("client_id") == inner.shop.app_key && get("response_type") == "code"
        }
        Platform::Jd => get("app_key") == inner.shop.app_key && get("response_type") == "code",
        Platform::Douyin => get("service_id") == inner.shop.service_id,
        Platform::Youzan => false,
    };
    if !app_ok {
        return refuse(&mut inner, "应用不存在或参数错误");
    }
    let target = if platform == Platform::Douyin {
        match &inner.shop.callback_url {
            Some(c) => c.clone(),
            None => return refuse(&mut inner, "服务未配置回调地址"),
        }
    } else {
        let r = get("redirect_uri");
        let registered = inner.shop.callback_url.as_deref().unwrap_or("");
        if !(r.starts_with("http://") || r.starts_with("https://")) || !r.starts_with(registered) {
            return refuse(&mut inner, "redirect_uri 与应用的回调地址不符");
        }
        r.to_owned()
    };
    let state = get("state").to_owned();
    if inner.shop.deny_authorization {
        return back_to(
            &target,
            &[
                ("error", "access_denied"),
                ("error_description", "authorize reject"),
                ("state", &state),
            ],
        );
    }
    inner.token_serial += 1;
    let code = format!("code-{}", inner.token_serial);
    inner.codes.insert(code.clone(), now_ms() + 600_000);
    back_to(&target, &[("code", &code), ("state", &state)])
}

/// Takes a code once; `false` for one unknown, used or run out.
pub(crate) fn take_code(inner: &mut Inner, code: &str) -> bool {
    match inner.codes.remove(code) {
        Some(until) if until >= now_ms() => {
            inner.stats.grants += 1;
            true
        }
        _ => {
            inner.stats.token_rejected += 1;
            false
        }
    }
}
