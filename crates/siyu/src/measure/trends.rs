//! Trends (经营趋势): what the brand took and gained each day of a date range (GMV, orders, new
//! customers, WeCom adds and net adds) beside the same figures for the period just before it,
//! so that "did it work?" is read against the month before, not against nothing.
//!
//! Days are the brand's days: a date range is read in the contact policy's UTC offset, so an
//! order at 23:30 in Shanghai counts on that Shanghai day.

use chrono::NaiveDate;
use serde::Serialize;

use crate::know::orders::PURCHASE_STATUSES;
use crate::platform::db::{Db, DbResult, sql};
use crate::platform::{Fen, TenantId};

const DAY_MS: i64 = 86_400_000;

/// The longest range the overview reads, so that one request cannot ask for a century.
pub const MOST_DAYS: i64 = 3 * 366;

/// A date range was not one the overview can read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RangeError {
    #[error("{field}: {value:?} is not a date (YYYY-MM-DD)")]
    NotADate { field: &'static str, value: String },
    #[error("from: the range starts after it ends")]
    Reversed,
    #[error("to: the range is longer than {MOST_DAYS} days")]
    TooLong,
}

impl RangeError {
    /// The parameter the error is about (`from` or `to`).
    pub fn field(&self) -> &'static str {
        match self {
            RangeError::NotADate { field, .. } => field,
            RangeError::Reversed => "from",
            RangeError::TooLong => "to",
        }
    }
}

impl crate::platform::refusal::Refuse for RangeError {
    fn refusal(&self) -> crate::platform::refusal::Refusal {
        crate::platform::refusal::Refusal::Invalid
    }
}

/// Whole local days, `from` to `to` inclusive, in a brand's UTC offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateRange {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub utc_offset_minutes: i64,
}

impl DateRange {
    /// The `days` days ending with today (the brand's today at `now`).
    pub fn last_days(days: i64, now: i64, utc_offset_minutes: i64) -> DateRange {
        let today = day_number(now, utc_offset_minutes);
        DateRange {
            from: date_of(today - (days.max(1) - 1)),
            to: date_of(today),
            utc_offset_minutes,
        }
    }

    /// Reads `from` and `to` as the console and API send them (`2026-11-01`).
    pub fn parse(from: &str, to: &str, utc_offset_minutes: i64) -> Result<DateRange, RangeError> {
        let date = |field: &'static str, v: &str| {
            NaiveDate::parse_from_str(v.trim(), "%Y-%m-%d").map_err(|_| RangeError::NotADate {
                field,
                value: v.to_owned(),
            })
        };
        let r = DateRange {
            from: date("from", from)?,
            to: date("to", to)?,
            utc_offset_minutes,
        };
        if r.from > r.to {
            return Err(RangeError::Reversed);
        }
        if r.days() > MOST_DAYS {
            return Err(RangeError::TooLong);
        }
        Ok(r)
    }

    pub fn days(&self) -> i64 {
        (self.to - self.from).num_days() + 1
    }

    /// The range of the same length that ends the day before this one starts.
    pub fn previous(&self) -> DateRange {
        let n = self.days();
        DateRange {
            from: self.from - chrono::Days::new(n as u64),
            to: self.from - chrono::Days::new(1),
            utc_offset_minutes: self.utc_offset_minutes,
        }
    }

    /// The first millisecond of the range, UTC.
    pub fn start_ms(&self) -> i64 {
        number_of(self.from) * DAY_MS - self.utc_offset_minutes * 60_000
    }

    /// The first millisecond after the range, UTC.
    pub fn end_ms(&self) -> i64 {
        (number_of(self.to) + 1) * DAY_MS - self.utc_offset_minutes * 60_000
    }
}

/// Days since 1970-01-01 of the local day holding `ms`.
fn day_number(ms: i64, utc_offset_minutes: i64) -> i64 {
    (ms + utc_offset_minutes * 60_000).div_euclid(DAY_MS)
}

fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()
}

fn number_of(d: NaiveDate) -> i64 {
    (d - epoch()).num_days()
}

fn date_of(n: i64) -> NaiveDate {
    epoch() + chrono::TimeDelta::days(n)
}

/// One day's figures.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DayFigures {
    /// The local date, `2026-11-01`.
    pub day: String,
    /// Net of refunds, fen.
    pub gmv: Fen,
    pub orders: i64,
    /// People whose first purchase (any channel) was that day.
    pub new_customers: i64,
    /// Customers who added a staff member on WeCom that day.
    pub wecom_adds: i64,
    /// Adds less contacts lost (deleted by either side) that day; negative when more left.
    pub wecom_net_adds: i64,
}

/// A range's totals. Buyers are counted once each over the range, not summed per day.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub gmv: Fen,
    pub orders: i64,
    pub buyers: i64,
    pub new_customers: i64,
    pub wecom_adds: i64,
    pub wecom_net_adds: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Trends {
    pub from: String,
    pub to: String,
    pub previous_from: String,
    pub previous_to: String,
    /// Every day of the range, in order, days without activity included as zeros.
    pub days: Vec<DayFigures>,
    /// The previous period's days, in order: `previous_days[i]` is compared with `days[i]`.
    pub previous_days: Vec<DayFigures>,
    pub current: Totals,
    pub previous: Totals,
}

/// The range's daily figures and the period before it, read in five grouped scans.
pub async fn trends(db: &Db, tenant: TenantId, range: DateRange) -> DbResult<Trends> {
    trends_knowing_buyers(db, tenant, range, None).await
}

/// [`trends`], for a caller that has counted the range's buyers already (the overview's
/// [`crate::know::report::period_figures`] counts them as its people): only the period before
/// is counted again.
pub async fn trends_knowing_buyers(
    db: &Db,
    tenant: TenantId,
    range: DateRange,
    buyers: Option<i64>,
) -> DbResult<Trends> {
    let previous = range.previous();
    let (lo, mid, hi) = (previous.start_ms(), range.start_ms(), range.end_ms());
    let offset = range.utc_offset_minutes * 60_000;
    let first_day = number_of(previous.from);
    let n = (range.days() * 2) as usize;
    let mut days: Vec<DayFigures> = (0..n as i64)
        .map(|i| DayFigures {
            day: date_of(first_day + i).to_string(),
            ..DayFigures::default()
        })
        .collect();
    // Rows outside the two periods cannot come back (the WHERE bounds them); `slot` guards anyway.
    let slot = |d: i64| usize::try_from(d - first_day).ok().filter(|i| *i < n);
    let by_day = |q: &str| {
        sql(q.to_owned())
            .bind(offset)
            .bind(tenant)
            .bind(lo)
            .bind(hi)
    };

    let sales: Vec<(i64, i64, i64)> = db
        .fetch_all(&by_day(&format!(
            "SELECT (ordered_at + $1) / {DAY_MS} AS d, COUNT(*), CAST(SUM(amount - refund_amount) AS BIGINT) \
             FROM orders WHERE tenant_id = $2 AND ordered_at >= $3 AND ordered_at < $4 \
             AND status IN {PURCHASE_STATUSES} GROUP BY (ordered_at + $1) / {DAY_MS}"
        )))
        .await?;
    for (d, orders, gmv) in sales {
        if let Some(i) = slot(d) {
            days[i].orders = orders;
            days[i].gmv = Fen::new(gmv);
        }
    }
    let firsts: Vec<(i64, i64)> = db
        .fetch_all(&by_day(&format!(
            "SELECT (first_order_at + $1) / {DAY_MS} AS d, COUNT(*) FROM customer_stats \
             WHERE tenant_id = $2 AND first_order_at >= $3 AND first_order_at < $4 \
             GROUP BY (first_order_at + $1) / {DAY_MS}"
        )))
        .await?;
    for (d, k) in firsts {
        if let Some(i) = slot(d) {
            days[i].new_customers = k;
        }
    }
    let adds: Vec<(i64, i64)> = db
        .fetch_all(&by_day(&format!(
            "SELECT (added_at + $1) / {DAY_MS} AS d, COUNT(*) FROM wecom_contacts \
             WHERE tenant_id = $2 AND added_at >= $3 AND added_at < $4 GROUP BY (added_at + $1) / {DAY_MS}"
        )))
        .await?;
    for (d, k) in adds {
        if let Some(i) = slot(d) {
            days[i].wecom_adds = k;
            days[i].wecom_net_adds += k;
        }
    }
    let losses: Vec<(i64, i64)> = db
        .fetch_all(&by_day(&format!(
            "SELECT (deleted_at + $1) / {DAY_MS} AS d, COUNT(*) FROM wecom_contacts \
             WHERE tenant_id = $2 AND deleted_at >= $3 AND deleted_at < $4 GROUP BY (deleted_at + $1) / {DAY_MS}"
        )))
        .await?;
    for (d, k) in losses {
        if let Some(i) = slot(d) {
            days[i].wecom_net_adds -= k;
        }
    }
    // Distinct buyers per period: one scan, each period counted on its own.
    let buyers_of = |lo: i64, hi: i64| {
        sql(format!(
            "SELECT COUNT(DISTINCT CASE WHEN ordered_at >= $2 THEN customer_id END), \
             COUNT(DISTINCT CASE WHEN ordered_at < $2 THEN customer_id END) FROM orders \
             WHERE tenant_id = $1 AND ordered_at >= $3 AND ordered_at < $4 \
             AND status IN {PURCHASE_STATUSES} AND buyer_unlinked = 0"
        ))
        .bind(tenant)
        .bind(mid)
        .bind(lo)
        .bind(hi)
    };
    let (buyers_now, buyers_before): (i64, i64) = match buyers {
        None => db.fetch_one(&buyers_of(lo, hi)).await?,
        Some(now) => (
            now,
            db.fetch_one::<(i64, i64)>(&buyers_of(lo, mid)).await?.1,
        ),
    };

    let current = days.split_off(n / 2);
    let totals = |ds: &[DayFigures], buyers: i64| Totals {
        gmv: ds.iter().map(|d| d.gmv).sum(),
        orders: ds.iter().map(|d| d.orders).sum(),
        buyers,
        new_customers: ds.iter().map(|d| d.new_customers).sum(),
        wecom_adds: ds.iter().map(|d| d.wecom_adds).sum(),
        wecom_net_adds: ds.iter().map(|d| d.wecom_net_adds).sum(),
    };
    Ok(Trends {
        from: range.from.to_string(),
        to: range.to.to_string(),
        previous_from: previous.from.to_string(),
        previous_to: previous.to.to_string(),
        current: totals(&current, buyers_now),
        previous: totals(&days, buyers_before),
        days: current,
        previous_days: days,
    })
}

/// The change from `before` to `now` as a share of `before` (`None` when there was nothing
/// before to compare with).
pub fn change(now: i64, before: i64) -> Option<f64> {
    (before != 0).then(|| (now - before) as f64 / before.abs() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHANGHAI: i64 = 8 * 60;

    #[test]
    fn a_range_is_read_in_the_brands_days() {
        let r = DateRange::parse("2026-11-01", "2026-11-30", SHANGHAI).expect("range");
        assert_eq!(r.days(), 30);
        // 2026-11-01 00:00 in Shanghai is 2026-10-31 16:00 UTC.
        assert_eq!(r.start_ms(), 1_793_491_200_000 - 8 * 3_600_000);
        assert_eq!(r.end_ms() - r.start_ms(), 30 * DAY_MS);
        let p = r.previous();
        assert_eq!(p.from.to_string(), "2026-10-02");
        assert_eq!(p.to.to_string(), "2026-10-31");
        assert_eq!(p.end_ms(), r.start_ms());
    }

    #[test]
    fn the_last_days_end_on_the_brands_today() {
        // 2026-12-04 17:00 UTC is 2026-12-05 01:00 in Shanghai.
        let now = NaiveDate::from_ymd_opt(2026, 12, 4)
            .and_then(|d| d.and_hms_opt(17, 0, 0))
            .map(|t| t.and_utc().timestamp_millis())
            .expect("time");
        let r = DateRange::last_days(7, now, SHANGHAI);
        assert_eq!(r.to.to_string(), "2026-12-05");
        assert_eq!(r.from.to_string(), "2026-11-29");
        assert!(r.start_ms() <= now && now < r.end_ms());
    }

    #[test]
    fn bad_ranges_name_their_parameter() {
        let e = DateRange::parse("2026-13-01", "2026-12-01", 0).expect_err("month 13");
        assert_eq!(e.field(), "from");
        let e = DateRange::parse("2026-12-01", "yesterday", 0).expect_err("a word");
        assert_eq!(e.field(), "to");
        let e = DateRange::parse("2026-12-02", "2026-12-01", 0).expect_err("reversed");
        assert_eq!(e, RangeError::Reversed);
        let e = DateRange::parse("2020-01-01", "2026-12-01", 0).expect_err("too long");
        assert_eq!(e, RangeError::TooLong);
    }

    #[test]
    fn change_is_relative_to_the_period_before() {
        assert_eq!(change(150, 100), Some(0.5));
        assert_eq!(change(50, 100), Some(-0.5));
        assert_eq!(change(5, 0), None);
    }
}
