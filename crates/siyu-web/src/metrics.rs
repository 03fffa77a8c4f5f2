//! `GET /metrics`: the process's counters (`platform::metrics`) in Prometheus text, for this
//! host and the `metrics_scrapers` only.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;

/// Answers a scraper that connects from this host or from `metrics_scrapers`, directly: a
/// request that passed a proxy (one of `trusted_proxies`, or one that says so in
/// `X-Forwarded-For`, `Forwarded` or `X-Real-IP`) could come from anyone, so it is answered 404
/// as an unknown path is. A proxy on this host that says nothing must not pass `/metrics` on.
pub(super) async fn metrics(State(app): State<AppState>, req: Request) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_canonical());
    let proxied = ["x-forwarded-for", "forwarded", "x-real-ip"]
        .iter()
        .any(|h| req.headers().contains_key(*h))
        || peer.is_some_and(|ip| app.trusted_proxies.iter().any(|n| n.contains(&ip)));
    let allowed = peer
        .is_some_and(|ip| ip.is_loopback() || app.metrics_scrapers.iter().any(|n| n.contains(&ip)));
    if proxied || !allowed {
        return StatusCode::NOT_FOUND.into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        siyu::platform::metrics::render(),
    )
        .into_response()
}
