//! Cross-site request forgery: a page on another site can make an operator's browser post to
//! the console, and the browser sends the session cookie along. Every write to `/console`
//! (sign-in included) must come from the console's own pages, as the browser says in
//! `Sec-Fetch-Site` or, in browsers without it, `Origin`. A request with neither header is not
//! from a browser and carries no victim's cookie, so it is let through.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;

/// The middleware: refuses a cross-site write to the console with 403.
pub async fn same_origin(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if safe || !req.uri().path().starts_with("/console") {
        return next.run(req).await;
    }
    if from_own_pages(req.headers(), &app.public_url) {
        next.run(req).await
    } else {
        tracing::warn!(
            path = req.uri().path(),
            "cross-site write to the console refused"
        );
        (
            StatusCode::FORBIDDEN,
            "跨站请求已拒绝：请从控制台页面提交 / Cross-site request refused: submit from the console's own pages",
        )
            .into_response()
    }
}

/// Whether the browser says the request comes from this server's pages (or from no page).
pub fn from_own_pages(headers: &HeaderMap, public_url: &str) -> bool {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = get("sec-fetch-site") {
        // `none`: typed in the address bar or a bookmark, which no other site can cause.
        return site == "same-origin" || site == "none";
    }
    let Some(origin) = get(header::ORIGIN.as_str()) else {
        return true;
    };
    let ours = origin_of(public_url);
    let host = get(header::HOST.as_str());
    origin == ours
        || host.is_some_and(|h| origin == format!("http://{h}") || origin == format!("https://{h}"))
}

/// `scheme://host[:port]` of a URL.
fn origin_of(url: &str) -> &str {
    match url.find("://") {
        Some(i) => match url[i + 3..].find('/') {
            Some(j) => &url[..i + 3 + j],
            None => url,
        },
        None => url,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().expect("value"));
        }
        h
    }

    #[test]
    fn only_the_consoles_own_pages_may_write() {
        let url = "https://s.brand.cn/";
        assert!(from_own_pages(
            &headers(&[("sec-fetch-site", "same-origin")]),
            url
        ));
        assert!(from_own_pages(&headers(&[("sec-fetch-site", "none")]), url));
        assert!(!from_own_pages(
            &headers(&[("sec-fetch-site", "same-site")]),
            url
        ));
        assert!(!from_own_pages(
            &headers(&[
                ("sec-fetch-site", "cross-site"),
                ("origin", "https://s.brand.cn")
            ]),
            url
        ));
        assert!(from_own_pages(
            &headers(&[("origin", "https://s.brand.cn")]),
            url
        ));
        assert!(!from_own_pages(
            &headers(&[("origin", "https://s.brand.cn.evil.example")]),
            url
        ));
        assert!(!from_own_pages(&headers(&[("origin", "null")]), url));
        // Reached by another name (an internal address) than the public URL: its own Host.
        assert!(from_own_pages(
            &headers(&[
                ("origin", "http://10.0.0.5:8080"),
                ("host", "10.0.0.5:8080")
            ]),
            url
        ));
        // Not a browser: no cookie of anyone's to abuse.
        assert!(from_own_pages(&HeaderMap::new(), url));
    }

    #[test]
    fn the_origin_of_a_url_is_its_scheme_and_host() {
        assert_eq!(origin_of("https://s.brand.cn/x/y"), "https://s.brand.cn");
        assert_eq!(origin_of("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
    }
}
