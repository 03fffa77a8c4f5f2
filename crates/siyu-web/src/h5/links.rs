//! `/t/{code}`: a short link's redirect, with its click counted, and its QR code.

use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;

use crate::AppState;
use crate::api::ApiError;
use crate::client_ip::{ClientIp, client_of, forwarded_for};
use siyu::acquire::links::Click;
use siyu::acquire::{codes, qr};
use siyu::platform::clock::now_ms;

/// The visitor cookie: first-party, a year, so unique visitors count people, not clicks.
pub(crate) const VISITOR_COOKIE: &str = "sy_v";

pub(crate) fn visitor_of(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, v)| {
            *k == VISITOR_COOKIE && v.len() == 16 && v.bytes().all(|b| b.is_ascii_alphanumeric())
        })
        .map(|(_, v)| v.to_string())
}

/// `GET /t/{code}`: 302 to the target, the click queued for the writer.
pub(crate) async fn redirect(
    State(app): State<AppState>,
    Path(code): Path<String>,
    req: Request,
) -> Response {
    let link = match app.links.resolve(&code).await {
        Ok(Some(l)) => l,
        Ok(None) => return (StatusCode::NOT_FOUND, "链接不存在 / link not found").into_response(),
        Err(e) => return ApiError::internal(e).into_response(),
    };
    let headers = req.headers();
    let (visitor, new_visitor) = match visitor_of(headers) {
        Some(v) => (v, false),
        None => (codes::visitor_id(), true),
    };
    // Only a hash of the address is kept.
    let ip = ClientIp(client_of(
        req.extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(std::net::IpAddr::from([0, 0, 0, 0])),
        forwarded_for(headers).as_deref(),
        &app.trusted_proxies,
    ))
    .subject();
    let ua: String = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .chars()
        .take(256)
        .collect();
    app.links.record(Click {
        tenant_id: link.tenant_id,
        link_id: link.id,
        visitor: visitor.clone(),
        ip_hash: app.cipher.lookup(link.tenant_id).hash(&format!("ip:{ip}")),
        user_agent: ua,
        at: now_ms(),
    });
    let mut resp = (StatusCode::FOUND, [(header::CACHE_CONTROL, "no-store")]).into_response();
    if let Ok(v) = HeaderValue::from_str(&link.target) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    if new_visitor
        && let Ok(v) = HeaderValue::from_str(&format!(
            "{VISITOR_COOKIE}={visitor}; Max-Age=31536000; Path=/t; HttpOnly; SameSite=Lax"
        ))
    {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

pub(crate) async fn qr_for(app: &AppState, code: &str) -> Result<String, ApiError> {
    if !codes::is_link_code(code) || app.links.resolve(code).await?.is_none() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("link {code} not found"),
        ));
    }
    Ok(format!("{}/t/{code}", app.public_url))
}

/// `GET /t/{code}/qr.svg`
pub(crate) async fn qr_svg(
    State(app): State<AppState>,
    Path(code): Path<String>,
) -> Result<Response, ApiError> {
    let url = qr_for(&app, &code).await?;
    let svg = qr::svg(&url, 240).map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        svg,
    )
        .into_response())
}

/// `GET /t/{code}/qr.png`
pub(crate) async fn qr_png(
    State(app): State<AppState>,
    Path(code): Path<String>,
) -> Result<Response, ApiError> {
    let url = qr_for(&app, &code).await?;
    let png = qr::png(&url, 8).map_err(ApiError::internal)?;
    // A code's picture never changes: phones and proxies may keep it for a day.
    Ok((
        [
            (header::CONTENT_TYPE, "image/png"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        png,
    )
        .into_response())
}
