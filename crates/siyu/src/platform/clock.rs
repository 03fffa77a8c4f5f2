//! Time as the store keeps it: UTC epoch milliseconds.

use chrono::{FixedOffset, TimeZone};

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// China Standard Time. Mainland China has kept UTC+8 without daylight saving since 1991, so a
/// fixed offset is exact for every date an export can hold.
pub fn china() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).unwrap_or_else(|| unreachable!("UTC+8 is a valid offset"))
}

/// Formats UTC milliseconds as local time in China, e.g. `2024-06-18 10:01`.
pub fn format_local(ms: i64) -> String {
    match china().timestamp_millis_opt(ms).single() {
        Some(t) => t.format("%Y-%m-%d %H:%M").to_string(),
        None => String::from("-"),
    }
}
