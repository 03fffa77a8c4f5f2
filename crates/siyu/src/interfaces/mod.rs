//! HTTP: `/api/v1` (JSON), `/console` (the operators' web console), health and readiness.

pub mod api;
pub mod api_acquire;
pub mod api_activities;
pub mod api_cards;
pub mod api_connect;
pub mod api_convert;
pub mod api_layering;
pub mod api_teams;
pub mod console;
pub mod console_acquire;
pub mod console_activities;
pub mod console_connect;
pub mod console_convert;
mod console_form;
pub mod console_layering;
pub mod h5;
pub mod i18n;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::Redirect;
use axum::routing::get;

use crate::app::Workers;
pub use crate::app::{App, AppState};

/// Every route of the server, for an app whose loops are `workers`.
pub fn router(app: App, workers: &Workers) -> Router {
    let state: AppState = Arc::new(app);
    let workers = workers.clone();
    Router::new()
        .route("/", get(|| async { Redirect::to("/console") }))
        .route("/healthz", get(|| async { "ok" }))
        // Ready once the audience indexes are built (503 naming what it waits for until then),
        // with what the process runs besides answering requests (a test holds the test server
        // and `siyu serve` to the same list).
        .route(
            "/readyz",
            get(move || {
                let workers = workers.clone();
                async move { readiness(&workers) }
            }),
        )
        .merge(api::routes())
        .merge(api_acquire::routes())
        .merge(api_cards::routes())
        .merge(api_connect::routes())
        .merge(api_layering::routes())
        .merge(api_convert::routes())
        .merge(api_activities::routes())
        .merge(api_teams::routes())
        .merge(h5::routes())
        .merge(console::routes())
        .merge(console_layering::routes())
        .merge(console_convert::routes())
        .merge(console_activities::routes())
        .merge(console_acquire::routes())
        .merge(console_connect::routes())
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
        "writers": crate::app::workers::WRITERS,
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
