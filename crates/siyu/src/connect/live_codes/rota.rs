//! A live code's rota and welcome by the clock: which guides take adds now (weekday, hours,
//! each one's daily cap, else the backup), which welcome the time of day picks, the adds counted
//! per guide and day, and moving WeCom's contact way when the guides on duty change.

use std::collections::HashMap;

use super::{LiveCode, LiveCodeError, json_text};
use crate::connect::client::{Content, WecomApi};
use crate::platform::TenantId;
use crate::platform::db::{Db, DbError, sql};

impl LiveCode {
    /// The welcome for this moment: the first time-of-day content whose window holds it.
    pub fn welcome_at(&self, now: i64, offset_min: i64) -> &Content {
        let m = local_minute(now, offset_min);
        self.welcome
            .by_time
            .iter()
            .find(|t| {
                matches!((parse_hhmm(&t.from), parse_hhmm(&t.to)), (Some(a), Some(b)) if in_window(m, a, b))
            })
            .map(|t| &t.content)
            .unwrap_or(&self.welcome.content)
    }

    /// Guides on duty now and under their cap today; the backup when there are none.
    pub fn guides_now(
        &self,
        now: i64,
        offset_min: i64,
        today: &HashMap<String, i64>,
    ) -> Vec<String> {
        let m = local_minute(now, offset_min);
        let day = local_day(now, offset_min);
        let mut out: Vec<String> = Vec::new();
        for g in &self.guides {
            let window = (
                g.from.as_deref().and_then(parse_hhmm),
                g.to.as_deref().and_then(parse_hhmm),
            );
            let (on_time, shift_day) = match window {
                // After midnight in an overnight shift, the shift began the day before.
                (Some(a), Some(b)) => (
                    in_window(m, a, b),
                    if a > b && m < b { day - 1 } else { day },
                ),
                _ => (true, day),
            };
            let on_day = g.weekdays.is_empty() || g.weekdays.contains(&weekday(shift_day));
            let under_cap = g
                .daily_cap
                .is_none_or(|cap| today.get(&g.userid).copied().unwrap_or(0) < cap);
            if on_day && on_time && under_cap && !out.contains(&g.userid) {
                out.push(g.userid.clone());
            }
        }
        if out.is_empty() {
            out.push(self.backup_userid.clone());
        }
        out
    }
}

/// "HH:MM" as minutes after midnight.
pub fn parse_hhmm(s: &str) -> Option<i64> {
    let (h, m) = s.trim().split_once(':')?;
    let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
    ((0..24).contains(&h) && (0..60).contains(&m)).then_some(h * 60 + m)
}

/// Whether minute `m` is in [a, b), a window that may wrap midnight.
fn in_window(m: i64, a: i64, b: i64) -> bool {
    if a <= b {
        a <= m && m < b
    } else {
        m >= a || m < b
    }
}

pub fn local_minute(now: i64, offset_min: i64) -> i64 {
    (now.div_euclid(60_000) + offset_min).rem_euclid(1440)
}

/// Days since 1970-01-01 in local time.
pub fn local_day(now: i64, offset_min: i64) -> i64 {
    (now + offset_min * 60_000).div_euclid(86_400_000)
}

/// 1 = Monday … 7 = Sunday (1970-01-01 was a Thursday).
fn weekday(day: i64) -> u8 {
    ((day + 3).rem_euclid(7) + 1) as u8
}

/// Adds per guide on a local day.
pub async fn adds_on(db: &Db, code: i64, day: i64) -> Result<HashMap<String, i64>, DbError> {
    let rows: Vec<(String, i64)> = db
        .fetch_all(
            &sql("SELECT userid, adds FROM live_code_daily WHERE code_id = $1 AND day = $2")
                .bind(code)
                .bind(day),
        )
        .await?;
    Ok(rows.into_iter().collect())
}

pub async fn count_add(
    db: &Db,
    tenant: TenantId,
    code: i64,
    day: i64,
    userid: &str,
) -> Result<(), DbError> {
    db.execute(
        &sql("INSERT INTO live_code_daily (tenant_id, code_id, day, userid, adds) VALUES ($1, $2, $3, $4, 1) \
              ON CONFLICT (code_id, day, userid) DO UPDATE SET adds = live_code_daily.adds + 1")
            .bind(tenant)
            .bind(code)
            .bind(day)
            .bind(userid),
    )
    .await?;
    Ok(())
}

/// Points the contact way at the guides due now (schedule, caps); returns whether it changed.
pub async fn rotate(
    db: &Db,
    api: &WecomApi,
    code: &LiveCode,
    now: i64,
    offset_min: i64,
) -> Result<bool, LiveCodeError> {
    if code.disabled_at.is_some() {
        return Ok(false);
    }
    let today = adds_on(db, code.id, local_day(now, offset_min)).await?;
    let due = code.guides_now(now, offset_min, &today);
    if due == code.serving {
        return Ok(false);
    }
    api.update_contact_way(&code.config_id, &code.state, &due)
        .await?;
    db.execute(
        &sql("UPDATE live_codes SET serving = $3 WHERE tenant_id = $1 AND id = $2")
            .bind(code.tenant_id)
            .bind(code.id)
            .bind(json_text(&due)),
    )
    .await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connect::live_codes::{GuideSlot, TimedWelcome, Welcome};
    use crate::platform::TenantId;

    fn code() -> LiveCode {
        LiveCode {
            id: 1,
            tenant_id: TenantId::new(1),
            name: "门店A".into(),
            source: "store".into(),
            source_id: Some(7),
            state: "siyu:lc:1".into(),
            config_id: "cfg".into(),
            qr_code: String::new(),
            tag_ids: vec![],
            welcome: Welcome {
                content: Content {
                    text: "欢迎".into(),
                    attachments: vec![],
                },
                by_time: vec![TimedWelcome {
                    from: "21:00".into(),
                    to: "09:00".into(),
                    content: Content {
                        text: "晚上好，顾问明早回复您".into(),
                        attachments: vec![],
                    },
                }],
            },
            guides: vec![
                GuideSlot {
                    userid: "day".into(),
                    weekdays: vec![1, 2, 3, 4, 5],
                    from: Some("09:00".into()),
                    to: Some("18:00".into()),
                    daily_cap: Some(2),
                },
                GuideSlot {
                    userid: "weekend".into(),
                    weekdays: vec![6, 7],
                    from: None,
                    to: None,
                    daily_cap: None,
                },
            ],
            backup_userid: "backup".into(),
            serving: vec![],
            created_at: 0,
            disabled_at: None,
        }
    }

    // 2024-06-17 is a Monday; 10:00 Beijing time is 02:00 UTC.
    const MON_10: i64 = 1_718_589_600_000;

    #[test]
    fn guides_follow_the_rota_the_cap_and_the_backup() {
        let c = code();
        assert_eq!(weekday(local_day(MON_10, 480)), 1);
        assert_eq!(c.guides_now(MON_10, 480, &HashMap::new()), vec!["day"]);
        let capped = HashMap::from([("day".to_owned(), 2)]);
        assert_eq!(c.guides_now(MON_10, 480, &capped), vec!["backup"]);
        // Monday 19:00: after the day guide's hours.
        assert_eq!(
            c.guides_now(MON_10 + 9 * 3_600_000, 480, &HashMap::new()),
            vec!["backup"]
        );
        // Saturday.
        assert_eq!(
            c.guides_now(MON_10 + 5 * 86_400_000, 480, &HashMap::new()),
            vec!["weekend"]
        );
        // A Friday-night shift 21:00–02:00 still holds at 01:00 on Saturday, and not on Friday
        // at 01:00 (that hour belongs to Thursday's shift).
        let mut night = code();
        night.guides = vec![GuideSlot {
            userid: "night".into(),
            weekdays: vec![5],
            from: Some("21:00".into()),
            to: Some("02:00".into()),
            daily_cap: None,
        }];
        let sat_01 = MON_10 + 4 * 86_400_000 + 15 * 3_600_000;
        assert_eq!(
            night.guides_now(sat_01, 480, &HashMap::new()),
            vec!["night"]
        );
        let fri_01 = sat_01 - 86_400_000;
        assert_eq!(
            night.guides_now(fri_01, 480, &HashMap::new()),
            vec!["backup"]
        );
    }

    #[test]
    fn the_welcome_varies_by_time_of_day() {
        let c = code();
        assert_eq!(c.welcome_at(MON_10, 480).text, "欢迎");
        assert_eq!(c.welcome_at(MON_10 - 60 * 60_000, 480).text, "欢迎");
        // 22:00 and 08:59 are inside the wrapping 21:00–09:00 window.
        assert_eq!(
            c.welcome_at(MON_10 + 12 * 3_600_000, 480).text,
            "晚上好，顾问明早回复您"
        );
        assert_eq!(
            c.welcome_at(MON_10 - 61 * 60_000, 480).text,
            "晚上好，顾问明早回复您"
        );
    }

    #[test]
    fn hhmm_parses_strictly() {
        assert_eq!(parse_hhmm("09:30"), Some(570));
        assert_eq!(parse_hhmm("24:00"), None);
        assert_eq!(parse_hhmm("9"), None);
    }
}
