//! Headers every answer carries, so that a browser holds the console and the customer pages to
//! what they are: pages that run only their own scripts, are never framed by another site, do
//! not leak their URLs (which carry customer tokens) to other sites, and over https stay on it.

use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::http::header::{
    CONTENT_SECURITY_POLICY, REFERRER_POLICY, STRICT_TRANSPORT_SECURITY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::middleware::Next;
use axum::response::Response;

use super::AppState;

/// Scripts and styles are the pages' own (inline included); images may come from other hosts
/// (WeCom's contact QR codes, a brand's image host); nothing may frame a page.
const POLICY: &str = "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data: https: http:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The middleware.
pub async fn secure_headers(State(app): State<AppState>, req: Request, next: Next) -> Response {
    // The console's language switch goes back to the page it was clicked on (same-origin
    // Referer); every other page, whose URL may hold a customer's token, sends none.
    let console = req.uri().path().starts_with("/console");
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        REFERRER_POLICY,
        HeaderValue::from_static(if console {
            "same-origin"
        } else {
            "no-referrer"
        }),
    );
    h.entry(CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(POLICY));
    if app.public_url.starts_with("https://") {
        h.insert(
            STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    r
}
