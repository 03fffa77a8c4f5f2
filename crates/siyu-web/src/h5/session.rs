//! How a customer's browser carries their session. A link in a message brings a token in `?t=`
//! once: the page answers by setting it as an HttpOnly cookie and sending the browser to the same
//! address without it, so the address bar, the history, a screenshot or a link the customer
//! shares carries no token. The mini-program, which has no cookies, sends `X-Siyu-Customer`.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::api::ApiError;
use crate::console::cookie;
use crate::console::origin::from_own_pages;
use siyu::platform::clock::now_ms;
use siyu::platform::crypto::CustomerClaim;
use siyu::platform::customer_sessions::SessionError;

/// The cookie that holds a customer's token on `/h5`.
pub const COOKIE: &str = "siyu_customer";
/// The header the mini-program sends its token in.
pub const HEADER: &str = "x-siyu-customer";

/// The customer a request from their own page speaks for: the session cookie, or the
/// `X-Siyu-Customer` header of the mini-program. A token in the address is not read here.
pub struct CustomerCaller(pub CustomerClaim);

impl FromRequestParts<AppState> for CustomerCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let from_header = parts.headers.get(HEADER).and_then(|h| h.to_str().ok());
        let token = match from_header {
            Some(t) => t.to_owned(),
            None => {
                let Some(t) = cookie(&parts.headers, COOKIE) else {
                    return Err(unauthorized(
                        "no customer session: open the page from its link again (or send X-Siyu-Customer)",
                    ));
                };
                // The browser sends the cookie by itself, so a write must come from our pages
                // (SameSite=Strict already keeps other sites' posts from carrying it).
                let safe = matches!(parts.method, Method::GET | Method::HEAD);
                if !safe && !from_own_pages(&parts.headers, &state.public_url) {
                    return Err(ApiError::new(
                        StatusCode::FORBIDDEN,
                        "refused",
                        "cross-site request refused",
                    ));
                }
                t.to_owned()
            }
        };
        verify(state, &token).await.map(CustomerCaller)
    }
}

/// A token's claim, or the 401 every customer page understands.
pub(crate) async fn verify(app: &AppState, token: &str) -> Result<CustomerClaim, ApiError> {
    match app.customer_sessions.verify(&app.db, token, now_ms()).await {
        Ok(claim) => Ok(claim),
        Err(SessionError::Invalid) => Err(unauthorized(
            "customer token is invalid, expired or signed out; open the link again",
        )),
        Err(e) => Err(e.into()),
    }
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
}

/// `Set-Cookie` for a customer session that ends at `expires_at`.
pub(crate) fn session_cookie(app: &AppState, token: &str, expires_at: i64) -> Option<HeaderValue> {
    let max_age = ((expires_at - now_ms()) / 1000).max(0);
    // Strict: another site's page can neither post with it nor learn from it.
    let secure = if app.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{COOKIE}={token}; Path=/h5; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .ok()
}

/// The middleware for `/h5` pages: a `?t=` in the address is taken into the session cookie (when
/// it is good) and the browser is sent to the address without it.
pub async fn from_link(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let is_page =
        req.method() == Method::GET && path.starts_with("/h5/") && !path.starts_with("/h5/v1/");
    let Some(query) = req.uri().query().filter(|_| is_page) else {
        return next.run(req).await;
    };
    let mut token = None;
    let rest: Vec<&str> = query
        .split('&')
        .filter(|kv| match kv.strip_prefix("t=") {
            Some(t) => {
                token = Some(t);
                false
            }
            None => !kv.is_empty(),
        })
        .collect();
    let Some(token) = token else {
        return next.run(req).await;
    };
    let clean = if rest.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", rest.join("&"))
    };
    let mut answer = (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, clean),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
    )
        .into_response();
    let token = percent_decoded(token);
    match verify(&app, &token).await {
        Ok(claim) => {
            if let Some(v) = session_cookie(&app, &token, claim.expires_at) {
                answer.headers_mut().insert(header::SET_COOKIE, v);
            }
        }
        // A stale or forged link opens the page signed out (not as whoever used this browser
        // before), and the page says the link has expired.
        Err(_) => {
            answer.headers_mut().insert(
                header::SET_COOKIE,
                HeaderValue::from_static(
                    "siyu_customer=; Path=/h5; HttpOnly; SameSite=Strict; Max-Age=0",
                ),
            );
        }
    }
    answer
}

/// Tokens are URL-safe, but a sender may still have escaped the dots.
fn percent_decoded(t: &str) -> String {
    t.replace("%2E", ".").replace("%2e", ".")
}
