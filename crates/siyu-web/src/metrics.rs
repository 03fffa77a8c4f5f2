//! `GET /metrics`: the process's counters (`platform::metrics`) in Prometheus text, for this
//! host and the `metrics_scrapers` only.

use siyu::platform::TenantId;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use siyu::know::shops::{self, ShopStatus};
use siyu::platform::clock::now_ms;

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
    let mut text = siyu::platform::metrics::render();
    // The shops' sync status is read from the store at each scrape: every server of a
    // deployment then says the same, whichever of them synced the shop.
    match shops::connected_status(&app.db).await {
        Ok(shops) => text.push_str(&sync_gauges(&shops, now_ms())),
        Err(e) => tracing::warn!(error = %e, "/metrics: the shops' sync status could not be read"),
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// A metric family: name, type, help, and its value for a shop (none: no line).
type Family<'a> = (
    &'a str,
    &'a str,
    &'a str,
    &'a dyn Fn(&ShopStatus) -> Option<f64>,
);

/// Each connected shop's order sync, in Prometheus text: how far behind the platform it is, when
/// it last succeeded, how many orders it has brought, and whether its last attempt failed.
fn sync_gauges(shops: &[(TenantId, ShopStatus)], now: i64) -> String {
    use std::fmt::Write;
    if shops.is_empty() {
        return String::new();
    }
    let mut out = String::new();
    let label = |tenant: TenantId, s: &ShopStatus| {
        format!(
            "tenant=\"{tenant}\",shop=\"{}\",platform=\"{}\"",
            s.id,
            escape(&s.platform)
        )
    };
    let families: [Family; 4] = [
        (
            "siyu_sync_lag_seconds",
            "gauge",
            "How far a shop's synced orders are behind now (now minus its cursor)",
            &|s| Some(s.lag_ms(now) as f64 / 1000.0),
        ),
        (
            "siyu_sync_last_success_timestamp_seconds",
            "gauge",
            "When a shop's sync last stored a window of orders (Unix seconds)",
            &|s| s.last_success_at.map(|t| t as f64 / 1000.0),
        ),
        (
            "siyu_sync_orders_synced_total",
            "counter",
            "Orders a shop's sync has stored",
            &|s| Some(s.orders_synced as f64),
        ),
        (
            "siyu_sync_failing",
            "gauge",
            "1 when a shop's last sync attempt failed (its error is on GET /api/v1/shops)",
            &|s| Some(if s.failing() { 1.0 } else { 0.0 }),
        ),
    ];
    for (name, kind, help, value) in families {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (tenant, s) in shops {
            if let Some(v) = value(s) {
                let _ = writeln!(out, "{name}{{{}}} {v}", label(*tenant, s));
            }
        }
    }
    out
}

/// A label value as the text format wants it: backslash, quote and newline escaped.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shop(id: i64, platform: &str) -> ShopStatus {
        ShopStatus {
            id,
            platform: platform.into(),
            shop_ref: "1".into(),
            name: "店".into(),
            sync_cursor: 1_000_000,
            last_success_at: Some(990_000),
            last_error: None,
            last_error_at: None,
            orders_synced: 120,
            disconnected_at: None,
        }
    }

    #[test]
    fn each_shop_has_its_lag_success_orders_and_failure() {
        let mut failing = shop(8, "jd");
        failing.last_error_at = Some(995_000);
        failing.last_error = Some("quota".into());
        let text = sync_gauges(
            &[
                (TenantId::new(1), shop(7, "youzan")),
                (TenantId::new(2), failing),
            ],
            1_060_000,
        );
        for line in [
            "# TYPE siyu_sync_lag_seconds gauge",
            "siyu_sync_lag_seconds{tenant=\"1\",shop=\"7\",platform=\"youzan\"} 60",
            "siyu_sync_last_success_timestamp_seconds{tenant=\"1\",shop=\"7\",platform=\"youzan\"} 990",
            "# TYPE siyu_sync_orders_synced_total counter",
            "siyu_sync_orders_synced_total{tenant=\"2\",shop=\"8\",platform=\"jd\"} 120",
            "siyu_sync_failing{tenant=\"1\",shop=\"7\",platform=\"youzan\"} 0",
            "siyu_sync_failing{tenant=\"2\",shop=\"8\",platform=\"jd\"} 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from\n{text}"
            );
        }
        assert_eq!(sync_gauges(&[], 0), "");
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
