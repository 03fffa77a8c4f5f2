//! The contact policy: one place decides, per message, whether it may go now, later or never.
//! Marketing messages respect unsubscribes, a weekly cap per customer per channel, quiet hours
//! in the tenant's time zone (deferred, not dropped) and dedupe of the same text to the same
//! person; service messages only dedupe; verification codes always go.

use crate::platform::TenantId;
use crate::platform::refusal::{Refusal, Refuse};
use serde::{Deserialize, Serialize};

use crate::platform::clock::now_ms;
use crate::platform::crypto::FieldCipher;
use crate::platform::db::{Db, DbError, Reader, sql};

const MINUTE: i64 = 60_000;
const DAY_MINUTES: i64 = 1_440;

/// Why a message is sent: it decides which rules apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// Recall, promotion, campaign: every rule.
    Marketing,
    /// Order and account notices the customer expects: dedupe only.
    Service,
    /// One-time codes the customer just asked for: always sent.
    Verification,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Marketing => "marketing",
            Purpose::Service => "service",
            Purpose::Verification => "verification",
        }
    }
    pub fn parse(s: &str) -> Option<Purpose> {
        match s {
            "marketing" => Some(Purpose::Marketing),
            "service" => Some(Purpose::Service),
            "verification" => Some(Purpose::Verification),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactPolicy {
    /// Most marketing messages per customer per channel in any 7 days.
    pub marketing_per_week: i64,
    /// Quiet hours in the tenant's local time, minutes after midnight; the window may wrap
    /// midnight (21:00–09:00 is 1260–540). Equal start and end: no quiet hours.
    pub quiet_start_minute: i64,
    pub quiet_end_minute: i64,
    /// The same text to the same person within this many hours is sent once.
    pub dedupe_hours: i64,
    /// The tenant's offset from UTC, from its time zone.
    #[serde(skip_deserializing, default = "china_offset")]
    pub utc_offset_minutes: i64,
}

fn china_offset() -> i64 {
    480
}

impl Default for ContactPolicy {
    fn default() -> Self {
        ContactPolicy {
            marketing_per_week: 2,
            quiet_start_minute: 21 * 60,
            quiet_end_minute: 9 * 60,
            dedupe_hours: 24,
            utc_offset_minutes: china_offset(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error(transparent)]
    Db(#[from] DbError),
}

impl Refuse for PolicyError {
    fn refusal(&self) -> Refusal {
        match self {
            PolicyError::Db(_) => Refusal::Internal,
            _ => Refusal::Invalid,
        }
    }
}

/// What the policy knows about one recipient when it decides.
#[derive(Debug, Clone, Copy, Default)]
pub struct Facts {
    pub unsubscribed: bool,
    /// Marketing messages sent to this customer on this channel in the last 7 days.
    pub sent_this_week: i64,
    /// The same text reached the same address within the dedupe window.
    pub duplicate: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Send,
    /// Hold until this time (quiet hours), then decide again.
    Defer(i64),
    Suppress(Suppressed),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suppressed {
    Unsubscribed,
    Capped,
    Duplicate,
}

impl Suppressed {
    pub fn as_str(self) -> &'static str {
        match self {
            Suppressed::Unsubscribed => "unsubscribed",
            Suppressed::Capped => "capped",
            Suppressed::Duplicate => "duplicate",
        }
    }
}

impl ContactPolicy {
    /// Checks the numbers an operator may set.
    pub fn validate(&self) -> Result<(), PolicyError> {
        let bad = |field, reason: &str| {
            Err(PolicyError::Invalid {
                field,
                reason: reason.into(),
            })
        };
        if !(0..=100).contains(&self.marketing_per_week) {
            return bad("marketing_per_week", "must be between 0 and 100");
        }
        for (field, m) in [
            ("quiet_start_minute", self.quiet_start_minute),
            ("quiet_end_minute", self.quiet_end_minute),
        ] {
            if !(0..DAY_MINUTES).contains(&m) {
                return bad(field, "must be minutes after midnight, 0–1439");
            }
        }
        if !(0..=24 * 30).contains(&self.dedupe_hours) {
            return bad("dedupe_hours", "must be between 0 and 720");
        }
        Ok(())
    }

    /// If `now` falls in quiet hours, when they end.
    pub fn quiet_until(&self, now: i64) -> Option<i64> {
        let (start, end) = (self.quiet_start_minute, self.quiet_end_minute);
        if start == end {
            return None;
        }
        let local = (now.div_euclid(MINUTE) + self.utc_offset_minutes).rem_euclid(DAY_MINUTES);
        let quiet = if start < end {
            local >= start && local < end
        } else {
            local >= start || local < end
        };
        quiet.then(|| {
            let minute_start = now - now.rem_euclid(MINUTE);
            minute_start + (end - local).rem_euclid(DAY_MINUTES) * MINUTE
        })
    }

    /// The decision for one message.
    pub fn decide(&self, purpose: Purpose, now: i64, f: Facts) -> Verdict {
        match purpose {
            Purpose::Verification => Verdict::Send,
            Purpose::Service if f.duplicate => Verdict::Suppress(Suppressed::Duplicate),
            Purpose::Service => Verdict::Send,
            Purpose::Marketing => {
                if f.unsubscribed {
                    Verdict::Suppress(Suppressed::Unsubscribed)
                } else if f.duplicate {
                    Verdict::Suppress(Suppressed::Duplicate)
                } else if let Some(until) = self.quiet_until(now) {
                    // Quiet hours come before the cap: the cap is counted when it is sent.
                    Verdict::Defer(until)
                } else if f.sent_this_week >= self.marketing_per_week {
                    Verdict::Suppress(Suppressed::Capped)
                } else {
                    Verdict::Send
                }
            }
        }
    }
}

/// Offsets of the time zones brands here run in. None observes daylight saving, so a fixed
/// offset is exact; `+08:00`-style offsets are read too.
pub fn utc_offset_minutes(time_zone: &str) -> Result<i64, PolicyError> {
    let fixed = match time_zone {
        "Asia/Shanghai" | "Asia/Chongqing" | "Asia/Harbin" | "Asia/Urumqi" | "PRC"
        | "Asia/Hong_Kong" | "Asia/Macau" | "Asia/Taipei" | "Asia/Singapore"
        | "Asia/Kuala_Lumpur" | "Asia/Manila" => Some(480),
        "Asia/Tokyo" | "Asia/Seoul" => Some(540),
        "Asia/Bangkok" | "Asia/Ho_Chi_Minh" | "Asia/Jakarta" => Some(420),
        "UTC" | "Etc/UTC" | "GMT" => Some(0),
        _ => None,
    };
    if let Some(m) = fixed {
        return Ok(m);
    }
    let t = time_zone.trim_start_matches("UTC");
    let (sign, rest) = match t.as_bytes().first() {
        Some(b'+') => (1, &t[1..]),
        Some(b'-') => (-1, &t[1..]),
        _ => {
            return Err(PolicyError::Invalid {
                field: "time_zone",
                reason: format!("{time_zone:?} is not a known time zone or a +HH:MM offset"),
            });
        }
    };
    let (h, m) = rest.split_once(':').unwrap_or((rest, "0"));
    match (h.parse::<i64>(), m.parse::<i64>()) {
        (Ok(h), Ok(m)) if h <= 14 && m < 60 => Ok(sign * (h * 60 + m)),
        _ => Err(PolicyError::Invalid {
            field: "time_zone",
            reason: format!("{time_zone:?} is not a +HH:MM offset"),
        }),
    }
}

/// The tenant's policy: its own row, or the defaults, with its time zone's offset.
pub async fn load(db: &Db, tenant: TenantId) -> Result<ContactPolicy, PolicyError> {
    load_in(&mut Reader::Pool(db), tenant).await
}

/// [`load`] where the caller reads: in its transaction, so that a writer holding the only
/// connection (an in-memory SQLite database) or a pool's last one is not waited for.
pub async fn load_in(db: &mut Reader<'_>, tenant: TenantId) -> Result<ContactPolicy, PolicyError> {
    let row: Option<(i64, i64, i64, i64)> = db
        .fetch_optional(
            &sql(
                "SELECT marketing_per_week, quiet_start_minute, quiet_end_minute, dedupe_hours \
                  FROM contact_policies WHERE tenant_id = $1",
            )
            .bind(tenant),
        )
        .await?;
    let tz: Option<(String,)> = db
        .fetch_optional(&sql("SELECT time_zone FROM tenants WHERE id = $1").bind(tenant))
        .await?;
    let mut p = match row {
        Some((w, s, e, d)) => ContactPolicy {
            marketing_per_week: w,
            quiet_start_minute: s,
            quiet_end_minute: e,
            dedupe_hours: d,
            utc_offset_minutes: china_offset(),
        },
        None => ContactPolicy::default(),
    };
    if let Some((tz,)) = tz {
        p.utc_offset_minutes = utc_offset_minutes(&tz)?;
    }
    Ok(p)
}

/// Replaces the tenant's policy.
pub async fn save(db: &Db, tenant: TenantId, p: &ContactPolicy) -> Result<(), PolicyError> {
    p.validate()?;
    db.execute(
        &sql("INSERT INTO contact_policies (tenant_id, marketing_per_week, quiet_start_minute, quiet_end_minute, dedupe_hours, updated_at) \
              VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id) DO UPDATE SET \
              marketing_per_week = $2, quiet_start_minute = $3, quiet_end_minute = $4, dedupe_hours = $5, updated_at = $6")
            .bind(tenant)
            .bind(p.marketing_per_week)
            .bind(p.quiet_start_minute)
            .bind(p.quiet_end_minute)
            .bind(p.dedupe_hours)
            .bind(now_ms()),
    )
    .await?;
    Ok(())
}

/// Records that an address asked not to be contacted on a channel (WeCom: the contact's
/// `external_userid`). Idempotent.
pub async fn unsubscribe(
    db: &Db,
    tenant: TenantId,
    channel: &str,
    address: &str,
    source: &str,
    now: i64,
) -> Result<(), DbError> {
    record_unsubscribe(db, tenant, channel, address, None, source, now).await
}

/// Records that a number asked not to get SMS. Idempotent. The number is kept encrypted beside
/// the tenant's hash of it, so that a change of lookup key can re-key it.
pub async fn unsubscribe_number(
    db: &Db,
    cipher: &FieldCipher,
    tenant: TenantId,
    phone: &str,
    source: &str,
    now: i64,
) -> Result<(), DbError> {
    let hash = cipher.lookup(tenant).hash(phone);
    let enc = cipher.encrypt(phone);
    record_unsubscribe(db, tenant, "sms", &hash, Some(&enc), source, now).await
}

async fn record_unsubscribe(
    db: &Db,
    tenant: TenantId,
    channel: &str,
    address_hash: &str,
    address_enc: Option<&str>,
    source: &str,
    now: i64,
) -> Result<(), DbError> {
    db.execute(
        &sql("INSERT INTO unsubscribes (tenant_id, channel, address_hash, address_enc, source, created_at) \
              VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, channel, address_hash) DO NOTHING")
            .bind(tenant)
            .bind(channel)
            .bind(address_hash)
            .bind(address_enc.map(str::to_owned))
            .bind(source)
            .bind(now),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-23 00:00 UTC = 08:00 in China.
    const MIDNIGHT_UTC: i64 = 1_795_392_000_000;
    const HOUR: i64 = 3_600_000;

    #[test]
    fn quiet_hours_wrap_midnight_in_local_time() {
        let p = ContactPolicy::default();
        // 08:00 China: quiet until 09:00.
        assert_eq!(p.quiet_until(MIDNIGHT_UTC), Some(MIDNIGHT_UTC + HOUR));
        // 09:00 China: allowed.
        assert_eq!(p.quiet_until(MIDNIGHT_UTC + HOUR), None);
        // 20:59 China: allowed; 21:00: quiet until 09:00 the next day.
        assert_eq!(p.quiet_until(MIDNIGHT_UTC + 13 * HOUR - 60_000), None);
        assert_eq!(
            p.quiet_until(MIDNIGHT_UTC + 13 * HOUR + 30_000),
            Some(MIDNIGHT_UTC + 25 * HOUR)
        );
        let none = ContactPolicy {
            quiet_start_minute: 0,
            quiet_end_minute: 0,
            ..ContactPolicy::default()
        };
        assert_eq!(none.quiet_until(MIDNIGHT_UTC), None);
    }

    #[test]
    fn marketing_meets_every_rule_and_verification_none() {
        let p = ContactPolicy::default();
        let day = MIDNIGHT_UTC + 3 * HOUR; // 11:00 China
        let f = Facts::default();
        assert_eq!(p.decide(Purpose::Marketing, day, f), Verdict::Send);
        let capped = Facts {
            sent_this_week: 2,
            ..f
        };
        assert_eq!(
            p.decide(Purpose::Marketing, day, capped),
            Verdict::Suppress(Suppressed::Capped)
        );
        let unsub = Facts {
            unsubscribed: true,
            ..f
        };
        assert_eq!(
            p.decide(Purpose::Marketing, day, unsub),
            Verdict::Suppress(Suppressed::Unsubscribed)
        );
        assert_eq!(p.decide(Purpose::Service, day, unsub), Verdict::Send);
        assert!(matches!(
            p.decide(Purpose::Marketing, MIDNIGHT_UTC, f),
            Verdict::Defer(_)
        ));
        assert_eq!(
            p.decide(Purpose::Verification, MIDNIGHT_UTC, unsub),
            Verdict::Send
        );
    }

    #[test]
    fn time_zones_and_offsets() {
        assert_eq!(utc_offset_minutes("Asia/Shanghai").expect("tz"), 480);
        assert_eq!(utc_offset_minutes("+05:30").expect("tz"), 330);
        assert_eq!(utc_offset_minutes("UTC-3").expect("tz"), -180);
        assert!(utc_offset_minutes("Mars/Olympus").is_err());
    }
}
