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

/// UTC milliseconds as China time to the second, `2024-06-01 10:00:00`: how the platforms' APIs
/// write and take times.
pub fn china_seconds_text(ms: i64) -> String {
    match china().timestamp_millis_opt(ms).single() {
        Some(t) => t.format("%Y-%m-%d %H:%M:%S").to_string(),
        None => String::from("-"),
    }
}

/// `2024-06-01 10:00:00` in China time as UTC milliseconds (exactly that form; exports' looser
/// forms are read by `know::import::values::parse_time`).
pub fn from_china_seconds_text(s: &str) -> Option<i64> {
    let t = chrono::NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%d %H:%M:%S").ok()?;
    china()
        .from_local_datetime(&t)
        .single()
        .map(|d| d.timestamp_millis())
}

/// Formats UTC milliseconds as local time in China, e.g. `2024-06-18 10:01`.
pub fn format_local(ms: i64) -> String {
    match china().timestamp_millis_opt(ms).single() {
        Some(t) => t.format("%Y-%m-%d %H:%M").to_string(),
        None => String::from("-"),
    }
}
