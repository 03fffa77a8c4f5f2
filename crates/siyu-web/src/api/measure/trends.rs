//! `GET /api/v1/reports/trends?from=2026-11-01&to=2026-11-30`: GMV, orders, buyers, new
//! customers and WeCom adds per day of a date range, with the period before it
//! (`measure::trends`). Without `from` and `to`, the last 30 days.

use axum::Json;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::AppState;
use crate::api::{ApiCaller, ApiError};
use siyu::engage::policy;
use siyu::measure::trends::{self, DateRange, RangeError, Trends};
use siyu::platform::TenantId;
use siyu::platform::clock::now_ms;

/// The range the overview opens on.
pub const DEFAULT_DAYS: i64 = 30;

#[derive(Debug, Default, Deserialize)]
pub struct RangeQuery {
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
}

impl RangeQuery {
    /// The range asked for, in the brand's days; the last 30 days when neither end is given.
    pub fn range(&self, utc_offset_minutes: i64) -> Result<DateRange, RangeError> {
        fn given(v: &Option<String>) -> Option<&str> {
            v.as_deref().map(str::trim).filter(|v| !v.is_empty())
        }
        match (given(&self.from), given(&self.to)) {
            (None, None) => Ok(DateRange::last_days(
                DEFAULT_DAYS,
                now_ms(),
                utc_offset_minutes,
            )),
            (from, to) => {
                DateRange::parse(from.unwrap_or(""), to.unwrap_or(""), utc_offset_minutes)
            }
        }
    }
}

/// The brand's UTC offset, from its contact policy (China's unless it set another).
pub async fn brand_offset(app: &AppState, tenant: TenantId) -> Result<i64, ApiError> {
    Ok(policy::load(&app.db, tenant).await?.utc_offset_minutes)
}

async fn read(app: &AppState, tenant: TenantId, q: &RangeQuery) -> Result<Trends, ApiError> {
    let range = q.range(brand_offset(app, tenant).await?)?;
    Ok(trends::trends(&app.db, tenant, range).await?)
}

pub(crate) async fn get_trends(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Query(q): Query<RangeQuery>,
) -> Result<Response, ApiError> {
    Ok(Json(read(&app, caller.tenant_id, &q).await?).into_response())
}
