//! H5 pages (phone-sized) for a customer's own view of activities: a flash sale with its
//! countdown, a group-buy team, a bargain, gifts for points. Each page is a shell whose script
//! reads the customer token from `?t=` and talks to `/h5/v1`.

use askama::Template;
use axum::Router;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

use super::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/h5/flash/{id}",
            get(|p| page("flash", "秒杀 · Flash sale", p)),
        )
        .route(
            "/h5/group-buys/{id}",
            get(|p| page("group", "拼团 · Group buy", p)),
        )
        .route(
            "/h5/teams/{id}",
            get(|p| page("team", "拼团 · Group buy", p)),
        )
        .route(
            "/h5/bargain-items/{id}",
            get(|p| page("bargain_item", "砍价 · Bargain", p)),
        )
        .route(
            "/h5/bargains/{id}",
            get(|p| page("bargain", "砍价 · Bargain", p)),
        )
        .route(
            "/h5/coupons/{id}",
            get(|p| page("coupon", "领券 · Claim a coupon", p)),
        )
        .route(
            "/h5/gifts",
            get(|| async { render("gifts", "积分兑换 · Gifts", 0) }),
        )
}

#[derive(Template)]
#[template(path = "h5/activity.html")]
struct ActivityPage {
    kind: &'static str,
    title: &'static str,
    id: i64,
}

async fn page(kind: &'static str, title: &'static str, Path(id): Path<String>) -> Response {
    match id.parse::<i64>() {
        Ok(id) => render(kind, title, id),
        Err(_) => (StatusCode::NOT_FOUND, "no such page").into_response(),
    }
}

fn render(kind: &'static str, title: &'static str, id: i64) -> Response {
    match (ActivityPage { kind, title, id }).render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "rendering an H5 page failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}
