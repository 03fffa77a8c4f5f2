//! Cell values as seller exports write them: `￥1,299.00`, `="2024061812345"`, `2024/6/18 10:01:02`.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime, TimeZone};

use crate::platform::clock::china;

/// Strips what spreadsheet exports wrap around values: the Excel formula quote `="…"`, a leading
/// apostrophe or tab, surrounding spaces (including full-width).
pub fn clean_cell(s: &str) -> &str {
    let t = s.trim_matches(|c: char| c.is_whitespace() || c == '\u{3000}' || c == '\u{feff}');
    let t = t
        .strip_prefix("=\"")
        .and_then(|r| r.strip_suffix('"'))
        .unwrap_or(t);
    let t = t.strip_prefix('\'').unwrap_or(t).trim();
    // Douyin and others write a dash where a cell has no value.
    if matches!(t, "-" | "--" | "—" | "——" | "/") {
        return "";
    }
    t
}

/// An amount that may be below zero, as a POS writes a return (`-129.00`, `￥-129.00`,
/// `-￥129.00`): whether it is, and its size in fen.
pub fn parse_signed_money(s: &str) -> Result<(bool, i64), String> {
    let t = clean_cell(s);
    let after_sign = t.trim_start_matches(['￥', '¥']).trim_start();
    match after_sign.strip_prefix(['-', '－']) {
        Some(rest) => parse_money(rest).map(|fen| (fen > 0, fen)),
        None => parse_money(t).map(|fen| (false, fen)),
    }
}

/// Parses an amount in yuan into fen: `￥1,299.00`, `¥ 99`, `1299.5元`, `RMB 12.30`.
pub fn parse_money(s: &str) -> Result<i64, String> {
    let t = clean_cell(s);
    if t.starts_with(['-', '－']) {
        return Err(format!("amount {s:?} is negative"));
    }
    let t = t
        .trim_start_matches(['￥', '¥'])
        .trim_start_matches("RMB")
        .trim_start_matches("CNY")
        .trim_end_matches('元')
        .trim();
    if t.is_empty() {
        return Err("amount is empty".into());
    }
    let digits: String = t
        .chars()
        .filter(|c| *c != ',' && *c != '，' && *c != ' ')
        .collect();
    let (neg, digits) = match digits.strip_prefix('-') {
        Some(d) => (true, d.to_owned()),
        None => (false, digits),
    };
    if neg {
        return Err(format!("amount {s:?} is negative"));
    }
    let (whole, frac) = match digits.split_once('.') {
        Some((w, f)) => (w, f),
        None => (digits.as_str(), ""),
    };
    let frac = frac.trim_end_matches('0');
    if whole.is_empty() && frac.is_empty() && !digits.contains('0') {
        return Err(format!("amount {s:?} is not a number"));
    }
    if !whole.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("amount {s:?} is not a number"));
    }
    if frac.len() > 2 {
        return Err(format!(
            "amount {s:?} has more than 2 decimals (fen is the smallest unit)"
        ));
    }
    if whole.len() > 12 {
        return Err(format!("amount {s:?} is too large"));
    }
    let w: i64 = if whole.is_empty() {
        0
    } else {
        whole
            .parse()
            .map_err(|_| format!("amount {s:?} is not a number"))?
    };
    let f: i64 = match frac.len() {
        0 => 0,
        1 => {
            frac.parse::<i64>()
                .map_err(|_| format!("amount {s:?} is not a number"))?
                * 10
        }
        _ => frac
            .parse()
            .map_err(|_| format!("amount {s:?} is not a number"))?,
    };
    Ok(w * 100 + f)
}

/// Parses a whole quantity: `2`, `2.0`, `2件`.
pub fn parse_quantity(s: &str) -> Result<i64, String> {
    let t = clean_cell(s)
        .trim_end_matches(['件', '个', '瓶', '盒', '套'])
        .trim();
    let t = t
        .strip_suffix(".0")
        .or_else(|| t.strip_suffix(".00"))
        .unwrap_or(t);
    match t.parse::<i64>() {
        Ok(n) if (0..=1_000_000).contains(&n) => Ok(n),
        _ => Err(format!(
            "quantity {s:?} is not a whole number from 0 to 1,000,000"
        )),
    }
}

/// A date as an Excel serial number (`45449.41738`: days since 1899-12-30 and the fraction of
/// a day), as a file re-saved in Excel writes date cells; only 1954–2119, so an order number
/// or an amount is never read as a date.
fn excel_serial(t: &str) -> Option<NaiveDateTime> {
    let (days, frac) = t.split_once('.').unwrap_or((t, ""));
    if days.len() != 5
        || !days.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let days: i64 = days.parse().ok()?;
    if !(20_000..=80_000).contains(&days) {
        return None;
    }
    let fraction: f64 = format!("0.{}", if frac.is_empty() { "0" } else { frac })
        .parse()
        .ok()?;
    let seconds = (fraction * 86_400.0).round() as i64;
    let epoch = NaiveDate::from_ymd_opt(1899, 12, 30)?.and_time(NaiveTime::MIN);
    Some(epoch + chrono::Duration::days(days) + chrono::Duration::seconds(seconds))
}

/// A time of day as exports write it: `10:01`, `10:01:02.5`, or in Chinese words (`10时01分02秒`,
/// `10点01分`, `10点01`, an hour alone as `10时` or `10点`).
fn clock_time(tm: &str) -> Option<NaiveTime> {
    const FORMATS: [&str; 8] = [
        "%H:%M:%S%.f",
        "%H:%M",
        "%H时%M分%S秒",
        "%H时%M分",
        "%H点%M分%S秒",
        "%H点%M分",
        "%H点%M",
        "%H时%M",
    ];
    if let Some(t) = FORMATS
        .iter()
        .find_map(|f| NaiveTime::parse_from_str(tm, f).ok())
    {
        return Some(t);
    }
    let hour = tm.strip_suffix('时').or_else(|| tm.strip_suffix('点'))?;
    if hour.is_empty() || hour.len() > 2 || !hour.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    NaiveTime::from_hms_opt(hour.parse().ok()?, 0, 0)
}

/// Parses a local date-time as exports write it and returns UTC milliseconds. Times without a
/// zone are China Standard Time, the zone of every platform's seller export. Dates and times
/// may be written in Chinese (`2024年6月18日 10时01分02秒`, `2024年6月18日10点01分`, a full-width
/// colon) and on a 12-hour clock (`2024/6/18 下午 2:01`), as POS and Excel exports write them.
pub fn parse_time(s: &str) -> Result<i64, String> {
    let t = clean_cell(s);
    if t.is_empty() {
        return Err("date is empty".into());
    }
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(t) {
        return Ok(dt.timestamp_millis());
    }
    if let Some(local) = excel_serial(t) {
        return china()
            .from_local_datetime(&local)
            .single()
            .map(|d| d.timestamp_millis())
            .ok_or_else(|| format!("date {s:?} does not exist in China Standard Time"));
    }
    // 上午/下午 (morning/afternoon) mark a 12-hour time; at most one, and only before a time.
    let markers = t.matches("上午").count() + t.matches("下午").count();
    if markers > 1 {
        return Err(format!("time in {s:?} says 上午/下午 more than once"));
    }
    if let Some(at) = t.find("上午").or_else(|| t.find("下午")) {
        let (before, after) = (t[..at].trim(), t[at + "上午".len()..].trim_start());
        let time_before =
            before.contains([':', '：', '时', '点']) || before.split_whitespace().count() > 1;
        if before.is_empty() || time_before || !after.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(format!(
                "time in {s:?} puts 上午/下午 elsewhere than between the date and the time"
            ));
        }
    }
    let afternoon = t.contains("下午");
    let norm: String = t
        .replace("上午", " ")
        .replace("下午", " ")
        .replace('/', "-")
        .replace('T', " ")
        .replace(['年', '月'], "-")
        // `日` may be followed by the time with no space: `18日10时`.
        .replace('日', " ")
        .replace('：', ":");
    let mut parts = norm.split_whitespace();
    let date_part = parts.next().unwrap_or("");
    let time_part = parts.next();
    if parts.next().is_some() {
        return Err(format!("date {s:?} has more than a date and a time"));
    }
    let date = NaiveDate::parse_from_str(date_part, "%Y-%m-%d")
        .map_err(|_| format!("date {s:?} is not a date like 2024-06-18 or 2024/6/18 10:01:02"))?;
    let time = match time_part {
        None if markers > 0 => {
            return Err(format!("time in {s:?} says 上午/下午 but gives no time"));
        }
        None => NaiveTime::MIN,
        Some(tm) => clock_time(tm)
            .ok_or_else(|| format!("time in {s:?} is not like 10:01, 10:01:02 or 10时01分"))?,
    };
    let time = match chrono::Timelike::hour(&time) {
        h if markers > 0 && (h > 12 || h == 0) => {
            return Err(format!(
                "time in {s:?} is not from 1 to 12 on a 12-hour clock"
            ));
        }
        h if afternoon && h < 12 => time + chrono::Duration::hours(12),
        // 上午 12 is midnight.
        12 if markers > 0 && !afternoon => time - chrono::Duration::hours(12),
        _ => time,
    };
    let local = NaiveDateTime::new(date, time);
    if !(1990..=2100).contains(&chrono::Datelike::year(&local.date())) {
        return Err(format!("date {s:?} is out of range"));
    }
    china()
        .from_local_datetime(&local)
        .single()
        .map(|d| d.timestamp_millis())
        .ok_or_else(|| format!("date {s:?} does not exist in China Standard Time"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_as_exports_write_it() {
        assert_eq!(parse_money("￥1,299.00"), Ok(129_900));
        assert_eq!(parse_money("¥ 99"), Ok(9_900));
        assert_eq!(parse_money("1299.5元"), Ok(129_950));
        assert_eq!(parse_money("0.01"), Ok(1));
        assert_eq!(parse_money("0"), Ok(0));
        assert_eq!(parse_money("=\"12.30\""), Ok(1_230));
        assert!(parse_money("12.345").is_err());
        assert!(parse_money("abc").is_err());
        assert!(parse_money("").is_err());
        assert!(parse_money("-5").is_err());
        assert!(parse_money("1.2.3").is_err());
    }

    #[test]
    fn excel_serial_dates_are_read() {
        // 45449.41738 is 2024-06-06 10:01:02 (to the nearest second, as Excel shows it).
        let want = parse_time("2024-06-06 10:01:02").expect("date");
        assert_eq!(parse_time("45449.41738"), Ok(want));
        assert_eq!(parse_time("45449"), parse_time("2024-06-06"));
        // Numbers that are not dates stay errors.
        assert!(parse_time("123").is_err());
        assert!(parse_time("2406061234").is_err());
    }

    #[test]
    fn dates_are_china_time() {
        // 2024-06-18 10:01:02 +08:00 = 02:01:02 UTC
        let want = 1_718_676_062_000;
        assert_eq!(parse_time("2024/6/18 10:01:02"), Ok(want));
        assert_eq!(parse_time("2024-06-18 10:01:02"), Ok(want));
        assert_eq!(parse_time("2024-06-18 10:01"), Ok(want - 2_000));
        assert_eq!(parse_time("2024-06-18T10:01:02+08:00"), Ok(want));
        assert_eq!(parse_time("2024-06-18"), Ok(want - (10 * 3600 + 62) * 1000));
        assert!(parse_time("2024-13-01").is_err());
        assert!(parse_time("18/06/2024").is_err());
        assert!(parse_time("").is_err());
    }

    #[test]
    fn dates_and_times_in_chinese_words_and_on_a_twelve_hour_clock() {
        // 2024-06-18 10:01:02 in China.
        let want = 1_718_676_062_000;
        assert_eq!(parse_time("2024年6月18日 10时01分02秒"), Ok(want));
        assert_eq!(parse_time("2024年06月18日10时01分02秒"), Ok(want));
        assert_eq!(parse_time("2024年6月18日 10点01分"), Ok(want - 2_000));
        assert_eq!(parse_time("2024年6月18日 10时"), Ok(want - 62_000));
        assert_eq!(parse_time("2024-06-18 10：01：02"), Ok(want));
        assert_eq!(parse_time("2024年6月18日"), parse_time("2024-06-18"));
        assert_eq!(parse_time("2024/6/18 上午 10:01:02"), Ok(want));
        assert_eq!(
            parse_time("2024/6/18 下午 10:01:02"),
            Ok(want + 12 * 3_600_000)
        );
        assert_eq!(
            parse_time("2024/6/18 下午10:01:02"),
            Ok(want + 12 * 3_600_000)
        );
        // Noon and midnight on a 12-hour clock.
        assert_eq!(
            parse_time("2024/6/18 下午 12:00"),
            parse_time("2024-06-18 12:00")
        );
        assert_eq!(parse_time("2024/6/18 上午 12:00"), parse_time("2024-06-18"));
        // A time past 12 with 下午 is not a 12-hour time; a word that is not a time stays an error.
        assert!(parse_time("2024/6/18 下午 14:00").is_err());
        assert!(parse_time("2024年6月18日 十点").is_err());
        assert!(parse_time("2024年6月18日 25时").is_err());
        // Half a time is not a time: minutes or seconds alone, a dangling colon, an hour alone
        // in digits, a time in two pieces, a marker with no time or two markers.
        for bad in [
            "2024年6月18日 10分",
            "2024年6月18日 5秒",
            "2024年6月18日 10时02秒",
            "2024-06-18 10:",
            "2024-06-18 10:01:",
            "2024/6/18 3",
            "2024-06-18 1 2",
            "2024/6/18 下午",
            "2024/6/18 上午 下午 2:00",
            "2024/6/18 2:01 下午",
            "下午 2024/6/18 2:01",
            "2024/6/18 下午 0:30",
            "2024/6/18 下午 下午 2:00",
        ] {
            assert!(parse_time(bad).is_err(), "{bad} was read as a time");
        }
    }

    #[test]
    fn a_return_writes_its_amount_below_zero_either_side_of_the_yuan_sign() {
        for cell in ["-129.00", "￥-129.00", "-￥129.00", "－129", " -1,29.00 "] {
            assert_eq!(parse_signed_money(cell), Ok((true, 12_900)), "{cell}");
        }
        assert_eq!(parse_signed_money("￥129.00"), Ok((false, 12_900)));
        // Zero has no sign worth keeping; garbage stays an error that names the cell.
        assert_eq!(parse_signed_money("-0.00"), Ok((false, 0)));
        assert!(
            parse_signed_money("-abc")
                .expect_err("not money")
                .contains("not a number")
        );
        assert!(parse_signed_money("--5").is_err());
    }

    #[test]
    fn a_dash_is_an_empty_cell_and_a_minus_is_negative() {
        assert_eq!(clean_cell(" - "), "");
        assert_eq!(clean_cell("--"), "");
        assert_eq!(clean_cell("-1"), "-1");
        assert!(
            parse_money("-￥129.00")
                .expect_err("negative")
                .contains("negative")
        );
        assert!(
            parse_money("-129")
                .expect_err("negative")
                .contains("negative")
        );
    }

    #[test]
    fn cells_lose_their_excel_wrapping() {
        assert_eq!(clean_cell("=\"2024061812345\""), "2024061812345");
        assert_eq!(clean_cell("\t'2024061812345 "), "2024061812345");
        assert_eq!(parse_quantity("2件"), Ok(2));
        assert_eq!(parse_quantity("3.0"), Ok(3));
        assert!(parse_quantity("-1").is_err());
    }
}
