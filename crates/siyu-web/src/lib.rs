//! HTTP: `/api/v1` (JSON for the brand's systems), `/h5` (the customer's pages), `/console` (the
//! operators' web console), health and readiness. Every route is listed in [`routes`].

pub mod api;
pub mod client_ip;
pub mod console;
pub mod h5;
mod headers;
pub mod i18n;
pub mod limits;
mod metrics;
mod routes;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;

use siyu::app::Workers;
pub use siyu::app::{App, AppState};

/// Every route of the server, for an app whose loops are `workers`.
pub fn router(app: App, workers: &Workers) -> Router {
    let state: AppState = Arc::new(app);
    routes::table(workers)
        // A page link's `?t=` becomes the customer's session cookie and leaves the address.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            h5::session::from_link,
        ))
        // Every write to /console comes from the console's own pages.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            console::origin::same_origin,
        ))
        // Before any handler: a flood costs a hash lookup, not a database round trip.
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(limits::RequestLimits::new(
                &state.request_limits,
                state.trusted_proxies.clone(),
            )),
            limits::limit,
        ))
        // Outermost, so that every answer carries them, the origin check's 403 included.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            headers::secure_headers,
        ))
        // 1,000 events with properties fit comfortably; larger bodies are refused with 413.
        .layer(DefaultBodyLimit::max(16 * 1024 * 1024))
        .with_state(state)
}

fn readiness(workers: &Workers) -> axum::response::Response {
    use axum::response::IntoResponse;
    let waiting_for = workers.waiting_for();
    let status = match waiting_for {
        None => axum::http::StatusCode::OK,
        Some(_) => axum::http::StatusCode::SERVICE_UNAVAILABLE,
    };
    let body = serde_json::json!({
        "ready": waiting_for.is_none(),
        "waiting_for": waiting_for,
        "writers": siyu::app::workers::WRITERS,
        "loops": workers.loops(),
    });
    (status, axum::Json(body)).into_response()
}

/// Starts the app's background loops ([`Workers::start`]) and serves until the future
/// `shutdown` resolves. `siyu serve`, the demo, the benchmarks and the test server all serve
/// through here.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: App,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let workers = Workers::start(&app).await.map_err(std::io::Error::other)?;
    axum::serve(
        listener,
        router(app, &workers).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
