//! Budgets for what the public may ask of the server (one-time codes a phone, a card, an address
//! or a tenant may have sent), counted in the store so that they hold across several servers and
//! survive a restart.
//!
//! A budget is taken inside the transaction that does the work: when the work is refused or
//! fails, the transaction rolls back and nothing was counted.

use super::db::{DbResult, Tx, sql};
use crate::platform::TenantId;

pub const HOUR_MS: i64 = 3_600_000;
pub const DAY_MS: i64 = 24 * HOUR_MS;
/// China Standard Time, where a brand's "day" starts.
const CHINA_OFFSET_MS: i64 = 8 * HOUR_MS;

/// How long a window lasts; a daily one starts at midnight in China.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// A window of this many minutes.
    Minutes(i64),
    Hour,
    Day,
    /// For as long as the subject lives (a card's numbers).
    Ever,
}

impl Window {
    /// The start of the window `now` falls in.
    pub fn start(self, now: i64) -> i64 {
        match self {
            Window::Minutes(m) => now.div_euclid(m * 60_000) * m * 60_000,
            Window::Hour => now.div_euclid(HOUR_MS) * HOUR_MS,
            Window::Day => (now + CHINA_OFFSET_MS).div_euclid(DAY_MS) * DAY_MS - CHINA_OFFSET_MS,
            Window::Ever => 0,
        }
    }
}

/// One budget: at most `limit` in each `window`, for one subject of one scope.
#[derive(Debug, Clone, Copy)]
pub struct Budget<'a> {
    /// The tenant it belongs to; 0 for a budget of every tenant together.
    pub tenant: TenantId,
    /// What is limited, e.g. `otp_phone`.
    pub scope: &'static str,
    /// Whom it is counted for: a phone's hash, a card's id, an address's hash, a tenant.
    pub subject: &'a str,
    pub window: Window,
    pub limit: i64,
}

impl<'a> Budget<'a> {
    pub fn new(
        tenant: TenantId,
        scope: &'static str,
        subject: &'a str,
        window: Window,
        limit: i64,
    ) -> Budget<'a> {
        Budget {
            tenant,
            scope,
            subject,
            window,
            limit,
        }
    }

    /// A budget of every tenant together (the SMS circuit breaker, a phone or an address
    /// asking across brands), kept under tenant 0, which no brand has.
    pub fn across_tenants(
        scope: &'static str,
        subject: &'a str,
        window: Window,
        limit: i64,
    ) -> Budget<'a> {
        Budget::new(TenantId::new(0), scope, subject, window, limit)
    }
}

/// Takes one from the budget: the count in the window after this one, or `None` when the window
/// is already spent (and nothing is counted). One statement, so two servers taking the last one
/// at once cannot both have it.
pub async fn take(tx: &mut Tx, b: Budget<'_>, now: i64) -> DbResult<Option<i64>> {
    if b.limit <= 0 {
        return Ok(None);
    }
    let row: Option<(i64,)> = tx
        .fetch_optional(
            &sql("INSERT INTO rate_counters (tenant_id, scope, subject, window_start, n) VALUES ($1, $2, $3, $4, 1) \
                  ON CONFLICT (tenant_id, scope, subject, window_start) DO UPDATE SET n = rate_counters.n + 1 \
                  WHERE rate_counters.n < $5 RETURNING n")
                .bind(b.tenant)
                .bind(b.scope)
                .bind(b.subject)
                .bind(b.window.start(now))
                .bind(b.limit),
        )
        .await?;
    Ok(row.map(|(n,)| n))
}

/// Whether the budget's window is spent, without taking from it (for budgets counted only when
/// something fails, such as wrong passwords).
pub async fn spent(tx: &mut Tx, b: Budget<'_>, now: i64) -> DbResult<bool> {
    if b.limit <= 0 {
        return Ok(true);
    }
    let row: Option<(i64,)> = tx
        .fetch_optional(
            &sql("SELECT n FROM rate_counters WHERE tenant_id = $1 AND scope = $2 AND subject = $3 AND window_start = $4")
                .bind(b.tenant)
                .bind(b.scope)
                .bind(b.subject)
                .bind(b.window.start(now)),
        )
        .await?;
    Ok(row.is_some_and(|(n,)| n >= b.limit))
}

/// Forgets windows that ended more than two days ago (the longest window is a day).
pub async fn sweep(db: &super::db::Db, now: i64) -> DbResult<u64> {
    db.execute(
        &sql("DELETE FROM rate_counters WHERE window_start > 0 AND window_start < $1")
            .bind(now - 3 * DAY_MS),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_starts_at_midnight_in_china() {
        // 2026-12-04 23:30 in China is 15:30 UTC; its day began at 16:00 UTC the day before.
        let now = 1_796_398_200_000; // 2026-12-04T15:30:00Z
        let start = Window::Day.start(now);
        assert_eq!(start, 1_796_313_600_000); // 2026-12-03T16:00:00Z
        // Half an hour later it is the next day in China.
        assert_eq!(Window::Day.start(now + 1_800_000), start + DAY_MS);
        assert_eq!(Window::Hour.start(now + 1), 1_796_396_400_000);
        assert_eq!(Window::Ever.start(now), 0);
        assert_eq!(Window::Minutes(15).start(now + 60_000), now);
    }
}
