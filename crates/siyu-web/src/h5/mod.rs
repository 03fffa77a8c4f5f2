//! `/h5`: the customer's pages, and `/h5/v1`, the JSON they call with the customer's session
//! (`session`).
//! Every route here faces the internet.

pub mod bargain;
pub mod cards;
pub mod coupons;
pub mod flash;
pub mod gifts;
pub mod group_buy;
pub mod links;
pub mod session;

pub use session::CustomerCaller;

use askama::Template;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

#[derive(Template)]
#[template(path = "h5/activity.html")]
pub(crate) struct ActivityPage {
    kind: &'static str,
    title: &'static str,
    id: i64,
}

/// `GET /h5/v1/brand`: the name, colour and logo of the customer's brand, for its pages.
pub(crate) async fn brand(
    axum::extract::State(app): axum::extract::State<crate::AppState>,
    CustomerCaller(c): CustomerCaller,
) -> Result<axum::Json<siyu::platform::brand::Brand>, crate::api::ApiError> {
    Ok(axum::Json(app.brands.get(&app.db, c.tenant_id).await?))
}

pub(crate) async fn page(
    kind: &'static str,
    title: &'static str,
    Path(id): Path<String>,
) -> Response {
    match id.parse::<i64>() {
        Ok(id) => render(kind, title, id),
        Err(_) => (StatusCode::NOT_FOUND, "no such page").into_response(),
    }
}

pub(crate) fn render(kind: &'static str, title: &'static str, id: i64) -> Response {
    match (ActivityPage { kind, title, id }).render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "rendering an H5 page failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}
