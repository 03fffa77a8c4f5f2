//! The overview's trend chart: its data as JSON for the signed-in console (the same figures as
//! `GET /api/v1/reports/trends`), and the chart library it is drawn with (Apache ECharts 5.6.0,
//! Apache-2.0, shipped in the binary: `assets/`).

use std::io::Write;
use std::sync::OnceLock;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::header::{ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, VARY};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::ConsoleUser;
use crate::AppState;
use crate::api::measure::trends::{RangeQuery, read};
use crate::i18n::Lang;
use siyu::measure::trends::RangeError;

const ECHARTS: &[u8] = include_bytes!("../../assets/echarts-5.6.0.min.js");

/// `GET /console/api/overview/trends?from&to`: the chart's data; a bad range answers 400 with
/// the field and the reason in the user's language.
pub(crate) async fn trends_json(
    State(app): State<AppState>,
    u: ConsoleUser,
    Query(q): Query<RangeQuery>,
) -> Response {
    match read(&app, u.caller.tenant_id, &q).await {
        Ok(t) => Json(t).into_response(),
        Err(e) if e.status() == StatusCode::BAD_REQUEST => {
            let said = match q.range(0) {
                Err(r) => range_error(u.lang, &r),
                Ok(_) => e.message().to_owned(),
            };
            (StatusCode::BAD_REQUEST, Json(json!({"error": said}))).into_response()
        }
        Err(e) => super::server_error(e.message()),
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

/// The chart library, gzipped once when the browser takes gzip; cached for a year (the path
/// names the version).
pub(crate) async fn echarts(headers: HeaderMap) -> Response {
    static GZIPPED: OnceLock<Option<Vec<u8>>> = OnceLock::new();
    let takes_gzip = headers
        .get(ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    let gzipped = takes_gzip
        .then(|| {
            GZIPPED.get_or_init(|| {
                let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
                z.write_all(ECHARTS).ok()?;
                z.finish().ok()
            })
        })
        .and_then(Option::as_ref);
    let common = [
        (CONTENT_TYPE, "text/javascript; charset=utf-8"),
        (CACHE_CONTROL, "public, max-age=31536000, immutable"),
        (VARY, "Accept-Encoding"),
    ];
    match gzipped {
        Some(body) => (common, [(CONTENT_ENCODING, "gzip")], body.clone()).into_response(),
        None => (common, ECHARTS).into_response(),
    }
}
