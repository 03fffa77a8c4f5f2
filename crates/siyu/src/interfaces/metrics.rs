//! `GET /metrics`: the process's counters (`platform::metrics`) in Prometheus text, for this
//! host and the `metrics_scrapers` only.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;

/// Answers a scraper that connects from this host or from `metrics_scrapers`, directly: a
/// request that passed a proxy (`X-Forwarded-For`, `Forwarded`) could come from anyone, so it
/// is answered 404 as an unknown path is.
pub(super) async fn metrics(State(app): State<AppState>, req: Request) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_canonical());
    let proxied = req.headers().contains_key("x-forwarded-for")
        || req.headers().contains_key(header::FORWARDED);
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
        crate::platform::metrics::render(),
    )
        .into_response()
}
