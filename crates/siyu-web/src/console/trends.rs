//! The overview's trend chart: its data as JSON for the signed-in console (the same figures as
//! `GET /api/v1/reports/trends`), and the chart library it is drawn with (Apache ECharts 5.6.0,
//! Apache-2.0, shipped in the binary: `assets/`).

use std::io::Write;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::header::{ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, VARY};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::ConsoleUser;
use crate::AppState;
use crate::api::measure::trends::{RangeQuery, brand_offset};
use crate::i18n::Lang;
use siyu::measure::trends::{self, RangeError};

const ECHARTS: &[u8] = include_bytes!("../../assets/echarts-5.6.0.min.js");

/// `GET /console/api/overview/trends?from&to`: the chart's data; a bad range answers 400 with
/// the field and the reason in the user's language.
pub(crate) async fn trends_json(
    State(app): State<AppState>,
    u: ConsoleUser,
    Query(q): Query<RangeQuery>,
) -> Response {
    let tenant = u.caller.tenant_id;
    let offset = match brand_offset(&app, tenant).await {
        Ok(o) => o,
        Err(e) => return super::server_error(e.message()),
    };
    let range = match q.range(offset) {
        Ok(r) => r,
        Err(e) => {
            let said = range_error(u.lang, &e);
            return (StatusCode::BAD_REQUEST, Json(json!({"error": said}))).into_response();
        }
    };
    match trends::trends(&app.db, tenant, range).await {
        Ok(t) => Json(t).into_response(),
        Err(e) => super::server_error(e),
    }
}

/// A bad date range in the user's words, naming the field as the form labels it.
pub(crate) fn range_error(lang: Lang, e: &RangeError) -> String {
    let t = lang.overview();
    match e {
        RangeError::NotADate { field, value } => t
            .not_a_date
            .replace("{field}", if *field == "from" { t.from } else { t.to })
            .replace("{value}", value),
        RangeError::Reversed => t.reversed.to_owned(),
        RangeError::TooLong => t.too_long.to_owned(),
    }
}

/// The chart library, gzipped once (on a blocking thread, at its first request by a browser
/// that takes gzip) and shared after; cached for a year (the path names the version).
pub(crate) async fn echarts(headers: HeaderMap) -> Response {
    static GZIPPED: tokio::sync::OnceCell<Option<Bytes>> = tokio::sync::OnceCell::const_new();
    let takes_gzip = headers
        .get(ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    let gzipped = if takes_gzip {
        GZIPPED
            .get_or_init(|| async {
                tokio::task::spawn_blocking(|| {
                    let mut z =
                        flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
                    z.write_all(ECHARTS).ok()?;
                    z.finish().ok().map(Bytes::from)
                })
                .await
                .ok()
                .flatten()
            })
            .await
            .clone()
    } else {
        None
    };
    let common = [
        (CONTENT_TYPE, "text/javascript; charset=utf-8"),
        (CACHE_CONTROL, "public, max-age=31536000, immutable"),
        (VARY, "Accept-Encoding"),
    ];
    match gzipped {
        Some(body) => (common, [(CONTENT_ENCODING, "gzip")], body).into_response(),
        None => (common, Bytes::from_static(ECHARTS)).into_response(),
    }
}
