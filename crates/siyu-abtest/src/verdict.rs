//! The verdict in words (zh-CN and English): a broken split, each comparison's result, and the
//! number formatting (percentages, percentage points, p-values, interval levels) they use.

use super::*;

pub(super) fn split_broken_text(arms: &[Arm], s: &Srm) -> (String, String) {
    let p = p_text(s.p_value);
    let stat = format!("{:.2}", s.statistic);
    let sizes_zh: Vec<String> = arms
        .iter()
        .zip(&s.expected)
        .map(|(a, e)| format!("{} {} 人（按比例应约 {:.0}）", a.name, a.n, e))
        .collect();
    let sizes_en: Vec<String> = arms
        .iter()
        .zip(&s.expected)
        .map(|(a, e)| format!("{} {} (expected about {:.0})", a.name, a.n, e))
        .collect();
    (
        format!(
            "分流异常，结果不可信：各组人数与设定比例不符（χ²={stat}，{p}）。{}。请先排查分流，修好后重新开始实验。",
            sizes_zh.join("，")
        ),
        format!(
            "The split is broken and these results are not to be trusted: arm sizes don't match the configured weights (chi-square {stat}, {p}). {}. Find and fix the split, then restart the test.",
            sizes_en.join(", ")
        ),
    )
}

/// One comparison in words, e.g. "B 胜出：转化率 5.6%，对照组 5.0%，提升 0.6 个百分点（95% 区间
/// 0.0–1.2），p=0.012。"
pub(super) fn comparison_text(c: &Comparison, base_zh: &str, base_en: &str) -> (String, String) {
    let v = &c.variant;
    let (Some(rv), Some(rc), Some(d), Some(lo), Some(hi)) = (
        c.variant_rate,
        c.control_rate,
        c.diff,
        c.diff_low,
        c.diff_high,
    ) else {
        return (
            format!("{v} 暂无法检验：有一组还没有人曝光。"),
            format!("{v} cannot be tested yet: an arm has nobody exposed."),
        );
    };
    // Small rates need a second decimal, or 0.4% against 0.6% reads as 0.4 against 0.6 with a
    // difference of "0.2" that is really anywhere from 0.15 to 0.25.
    let dec = if rv.max(rc) < 0.01 { 2 } else { 1 };
    let rates_zh = format!("转化率 {}，{base_zh} {}", pct(rv, dec), pct(rc, dec));
    let rates_en = format!("{} vs {} for {base_en}", pct(rv, dec), pct(rc, dec));
    let level = level_text(c.interval_level);
    let (lo_s, hi_s) = (fixed(lo * 100.0, dec), fixed(hi * 100.0, dec));
    let (range_zh, range_en) = if lo_s.starts_with('-') || hi_s.starts_with('-') {
        (format!("{lo_s} 至 {hi_s}"), format!("{lo_s} to {hi_s}"))
    } else {
        (format!("{lo_s}–{hi_s}"), format!("{lo_s}–{hi_s}"))
    };
    let interval_zh = format!("（{level} 区间 {range_zh}）");
    let interval_en = format!("({level} interval {range_en})");
    let p = c.p_value.map(p_text).unwrap_or_default();
    match c.outcome {
        Outcome::Wins => (
            format!(
                "{v} 胜出：{rates_zh}，提升 {} 个百分点{interval_zh}，{p}。",
                fixed(d * 100.0, dec)
            ),
            format!(
                "{v} wins: {rates_en}, +{} percentage points {interval_en}, {p}.",
                fixed(d * 100.0, dec)
            ),
        ),
        Outcome::Loses => (
            format!(
                "{v} 落后：{rates_zh}，下降 {} 个百分点{interval_zh}，{p}。",
                fixed(-d * 100.0, dec)
            ),
            format!(
                "{v} loses: {rates_en}, -{} percentage points {interval_en}, {p}.",
                fixed(-d * 100.0, dec)
            ),
        ),
        Outcome::NoDifference | Outcome::Withheld => (
            format!(
                "{v} 暂无显著差异：{rates_zh}，相差 {} 个百分点{interval_zh}，{p}。",
                signed(d * 100.0, dec)
            ),
            format!(
                "{v}: no significant difference from {base_en} yet: {rates_en}, {} percentage points {interval_en}, {p}.",
                signed(d * 100.0, dec)
            ),
        ),
        Outcome::NotTestable => (
            format!(
                "{v} 暂无法检验：两组转化率都是 {}，没有差异可检验。",
                pct(rc, dec)
            ),
            format!(
                "{v} cannot be tested: both arms convert at {}, so there is no variation to test.",
                pct(rc, dec)
            ),
        ),
    }
}

/// `v` to `decimals` places, without the "-0.0" that rounding a tiny negative gives.
pub(super) fn fixed(v: f64, decimals: usize) -> String {
    let s = format!("{:.*}", decimals, v);
    let negative_zero = s
        .strip_prefix('-')
        .is_some_and(|rest| rest.chars().all(|c| c == '0' || c == '.'));
    if negative_zero {
        s.trim_start_matches('-').to_string()
    } else {
        s
    }
}

pub(super) fn signed(v: f64, decimals: usize) -> String {
    let s = fixed(v, decimals);
    if s.starts_with('-') || s.chars().all(|c| c == '0' || c == '.') {
        s
    } else {
        format!("+{s}")
    }
}

pub(super) fn pct(rate: f64, decimals: usize) -> String {
    format!("{}%", fixed(rate * 100.0, decimals))
}

pub(super) fn p_text(p: f64) -> String {
    if p < 0.001 {
        "p<0.001".to_string()
    } else {
        format!("p={p:.3}")
    }
}

/// 0.95 → "95%", 0.98333 → "98.3%".
pub(super) fn level_text(level: f64) -> String {
    let v = level * 100.0;
    if (v - v.round()).abs() < 1e-9 {
        format!("{v:.0}%")
    } else {
        format!("{v:.1}%")
    }
}

/// `v` to at most `decimals` places, trailing zeros dropped: 0.025 → "0.025", 0.0166… → "0.0167".
pub(super) fn trimmed(v: f64, decimals: usize) -> String {
    let s = format!("{:.*}", decimals, v);
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}
