//! Siyu's audience engine (人群): segment rules, RFM classes and lifecycle stages, and the
//! per-tenant bitmap index that evaluates a rule over millions of customers in milliseconds.
//!
//! Everything here is pure: facts go in ([`index::Facts`]), counts and customer sets come out.
//! Loading the facts from the store and keeping an index current after each write is the
//! server's (`siyu::know::audience`), as is the same rule translated to SQL, which a property
//! test there holds to the index's answers.

pub mod bins;
pub mod identity_kind;
pub mod index;
pub mod rfm;
pub mod rule;

use rfm::DAY_MS;

/// China Standard Time, where a brand's day starts.
const CHINA_OFFSET_MS: i64 = 8 * 3_600_000;

/// The day number (days since 1970-01-01) of a UTC millisecond time in China.
pub fn local_day(ms: i64) -> i32 {
    (ms + CHINA_OFFSET_MS).div_euclid(DAY_MS) as i32
}

/// The first millisecond of a China day.
pub fn day_start(day: i32) -> i64 {
    i64::from(day) * DAY_MS - CHINA_OFFSET_MS
}

/// The earliest event time a rule of `days` days can see at `now`.
pub fn event_window_start(days: u32, now: i64) -> i64 {
    day_start(local_day(now) - (days as i32 - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_starts_at_midnight_in_china() {
        // 2026-12-04T16:00:00Z is midnight of 2026-12-05 in China.
        let midnight = 1_796_400_000_000;
        assert_eq!(local_day(midnight), local_day(midnight - 1) + 1);
        assert_eq!(day_start(local_day(midnight)), midnight);
        // A one-day window starts at today's midnight; a seven-day one six days before.
        assert_eq!(event_window_start(1, midnight + 5), midnight);
        assert_eq!(event_window_start(7, midnight + 5), midnight - 6 * DAY_MS);
    }
}
