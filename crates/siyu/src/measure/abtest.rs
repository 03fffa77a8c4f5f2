//! A/B tests (实验): did a version of a card, SMS, guide or coupon convert better than the
//! control, or is the gap only noise?
//!
//! The formulas are the ones statsmodels and SciPy use, so an analyst can check our numbers
//! in Python and get the same answer (`tests/fixtures/ab_reference.json` holds their values):
//!
//! * each arm's rate with a Wilson score interval, which stays sensible at 0% and 100% and
//!   for small arms, where the plain normal interval runs outside [0, 1];
//! * variant against control with the pooled two-proportion z-test (`proportions_ztest`),
//!   because under "no difference" both arms share one rate;
//! * the size of the difference with the unpooled Wald interval, because away from "no
//!   difference" each arm has its own variance;
//! * a chi-square goodness-of-fit test of arm sizes against the configured weights: the
//!   sample-ratio mismatch (SRM) check. A broken split (a bug in assignment, a channel that
//!   drops one version's messages) makes every other number here untrustworthy, so it is
//!   checked first.
//!
//! [`analyse`] puts these together into a verdict in Chinese and English that does not call a
//! winner before the data can: a broken split or too little data stops it, and with several
//! variants the significance threshold is Bonferroni-corrected, since five variants tested
//! at 5% each find a false "winner" about a quarter of the time.

use serde::{Deserialize, Serialize};
use statrs::distribution::{ChiSquared, ContinuousCDF, Normal};

/// Below this SRM p-value the split counts as broken. Strict on purpose: the check runs on
/// every look at every test, and a false alarm stops the reading of a healthy test.
pub const SRM_ALPHA: f64 = 0.001;

/// Fewest conversions, variant and control together, before a comparison is read at all.
/// Below this the normal approximation behind the z-test is poor and one or two conversions
/// swing the answer.
pub const MIN_CONVERSIONS: u64 = 10;

/// One version in a test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Arm {
    pub name: String,
    /// Exposed: customers the version was delivered to.
    pub n: u64,
    /// Of those, how many converted.
    pub x: u64,
    /// Configured share of traffic, in any unit (1:1, 10:45:45, …); only ratios matter.
    #[serde(default = "equal_weight")]
    pub weight: f64,
}

fn equal_weight() -> f64 {
    1.0
}

/// One arm's rate and its Wilson interval at the analysis's alpha.
#[derive(Debug, Clone, Serialize)]
pub struct ArmResult {
    pub name: String,
    pub n: u64,
    pub x: u64,
    pub weight: f64,
    /// x / n; None when nobody was exposed (or the counts are impossible).
    pub rate: Option<f64>,
    pub wilson_low: Option<f64>,
    pub wilson_high: Option<f64>,
    /// The arm the others are compared with: the control (hold-out), or the first arm when
    /// the test has no control.
    pub baseline: bool,
}

/// What a comparison says. Only [`Status::Read`] analyses call wins and losses; otherwise
/// every comparison is [`Outcome::Withheld`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Significantly higher than the baseline (after the multiple-comparison correction).
    Wins,
    /// Significantly lower than the baseline.
    Loses,
    NoDifference,
    /// No test is possible: both arms at 0% or both at 100%, or an arm with nobody exposed.
    NotTestable,
    /// Not read, because the split is broken or there is not enough data yet.
    Withheld,
}

/// One variant against the baseline.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub variant: String,
    /// The baseline arm's name.
    pub control: String,
    pub variant_index: usize,
    pub control_index: usize,
    pub variant_rate: Option<f64>,
    pub control_rate: Option<f64>,
    /// variant rate − control rate.
    pub diff: Option<f64>,
    /// Wald interval of `diff` at `interval_level`.
    pub diff_low: Option<f64>,
    pub diff_high: Option<f64>,
    /// 1 − corrected alpha, so the interval agrees with the corrected test (95% with one
    /// comparison).
    pub interval_level: f64,
    /// Pooled z; positive when the variant is higher.
    pub z: Option<f64>,
    /// Two-sided p-value, uncorrected.
    pub p_value: Option<f64>,
    /// Bonferroni-adjusted p-value, min(1, p × comparisons), for readers who compare with the
    /// plain alpha.
    pub p_adjusted: Option<f64>,
    /// alpha / number of comparisons: the p-value must fall below this.
    pub alpha_corrected: f64,
    pub outcome: Outcome,
}

/// The sample-ratio-mismatch check.
#[derive(Debug, Clone, Serialize)]
pub struct Srm {
    pub observed: Vec<u64>,
    pub weights: Vec<f64>,
    /// What the weights say each arm should have, given the total.
    pub expected: Vec<f64>,
    pub statistic: f64,
    pub p_value: f64,
    /// p_value < [`SRM_ALPHA`].
    pub broken: bool,
}

/// How far the analysis got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The input cannot be analysed (fewer than two arms, a control index out of range, more
    /// conversions than exposed, alpha outside (0, 1)).
    Invalid,
    /// The SRM check failed: nothing else is to be trusted.
    SplitBroken,
    /// An arm below the minimum exposed, or a comparison below [`MIN_CONVERSIONS`].
    NotEnoughData,
    /// Comparisons were read and carry an outcome.
    Read,
}

#[derive(Debug, Clone, Serialize)]
pub struct Analysis {
    pub arms: Vec<ArmResult>,
    pub comparisons: Vec<Comparison>,
    /// None when the split cannot be checked (a weight that is not positive, nobody exposed).
    pub srm: Option<Srm>,
    pub status: Status,
    /// The verdict in words, one sentence a line (zh-CN).
    pub verdict_zh: String,
    pub verdict_en: String,
}

fn standard_normal() -> Option<Normal> {
    Normal::new(0.0, 1.0).ok()
}

/// The two-sided critical value for `alpha` (1.959963984540054 at 0.05). None unless
/// 0 < alpha < 1, where the inverse CDF would panic or be infinite.
pub fn critical_z(alpha: f64) -> Option<f64> {
    let valid = alpha > 0.0 && alpha < 1.0;
    if !valid {
        return None;
    }
    standard_normal().map(|normal| normal.inverse_cdf(1.0 - alpha / 2.0))
}

/// Wilson score interval for x conversions out of n, at critical value `z`, clamped to [0, 1]
/// as statsmodels does (at x = n the upper bound can round to just above or below 1). None for
/// n = 0, x > n, or a `z` that is negative or not finite.
pub fn wilson_interval(x: u64, n: u64, z: f64) -> Option<(f64, f64)> {
    if n == 0 || x > n || !z.is_finite() || z < 0.0 {
        return None;
    }
    let nf = n as f64;
    let q = x as f64 / nf;
    let z2 = z * z;
    let denom = 1.0 + z2 / nf;
    let center = (q + z2 / (2.0 * nf)) / denom;
    let dist = z * (q * (1.0 - q) / nf + z2 / (4.0 * nf * nf)).sqrt() / denom;
    Some((
        (center - dist).clamp(0.0, 1.0),
        (center + dist).clamp(0.0, 1.0),
    ))
}

/// Pooled two-proportion z-test, two-sided, no continuity correction (statsmodels'
/// `proportions_ztest`). Arm 1 is the variant, so z > 0 means the variant is higher.
/// Returns (z, p). None where statsmodels gives NaN: an arm with n = 0, or a pooled variance
/// of 0 (both arms at 0% or both at 100%, where there is no variation to test); also for
/// x > n.
pub fn two_proportion_z(x1: u64, n1: u64, x2: u64, n2: u64) -> Option<(f64, f64)> {
    if n1 == 0 || n2 == 0 || x1 > n1 || x2 > n2 {
        return None;
    }
    let (n1f, n2f) = (n1 as f64, n2 as f64);
    let diff = x1 as f64 / n1f - x2 as f64 / n2f;
    let pooled = (x1 as f64 + x2 as f64) / (n1f + n2f);
    let var = pooled * (1.0 - pooled) * (1.0 / n1f + 1.0 / n2f);
    if !var.is_finite() || var <= 0.0 {
        return None;
    }
    let z = diff / var.sqrt();
    // sf rather than 1 − cdf: it keeps its precision in the far tail.
    let p = 2.0 * standard_normal()?.sf(z.abs());
    Some((z, p))
}

/// Difference of rates (arm 1 − arm 2) with the unpooled Wald interval at critical value `z`,
/// unclipped. Returns (diff, low, high); when both arms are at 0% or both at 100% the interval
/// collapses to the difference. None for n = 0 or x > n.
pub fn wald_diff_interval(x1: u64, n1: u64, x2: u64, n2: u64, z: f64) -> Option<(f64, f64, f64)> {
    if n1 == 0 || n2 == 0 || x1 > n1 || x2 > n2 || !z.is_finite() {
        return None;
    }
    let (n1f, n2f) = (n1 as f64, n2 as f64);
    let (p1, p2) = (x1 as f64 / n1f, x2 as f64 / n2f);
    let diff = p1 - p2;
    let se = (p1 * (1.0 - p1) / n1f + p2 * (1.0 - p2) / n2f).sqrt();
    Some((diff, diff - z * se, diff + z * se))
}

/// Sample-ratio mismatch: Pearson chi-square goodness of fit of the observed arm sizes against
/// the weights (SciPy's `chisquare` with `f_exp = total × w / Σw`), df = k − 1.
/// Returns (statistic, p). None for fewer than two arms, lengths that differ, nobody observed,
/// or a weight that is not positive and finite (an arm with no expected traffic cannot be
/// tested this way).
pub fn sample_ratio_mismatch(observed: &[u64], weights: &[f64]) -> Option<(f64, f64)> {
    let expected = expected_counts(observed, weights)?;
    chi_square_gof(observed, &expected)
}

fn expected_counts(observed: &[u64], weights: &[f64]) -> Option<Vec<f64>> {
    if observed.len() < 2 || observed.len() != weights.len() {
        return None;
    }
    if weights.iter().any(|w| !(w.is_finite() && *w > 0.0)) {
        return None;
    }
    let total: f64 = observed.iter().map(|&o| o as f64).sum();
    if total <= 0.0 {
        return None;
    }
    let weight_sum: f64 = weights.iter().sum();
    Some(weights.iter().map(|&w| total * w / weight_sum).collect())
}

fn chi_square_gof(observed: &[u64], expected: &[f64]) -> Option<(f64, f64)> {
    let statistic: f64 = observed
        .iter()
        .zip(expected)
        .map(|(&o, &e)| {
            let d = o as f64 - e;
            d * d / e
        })
        .sum();
    if !statistic.is_finite() {
        return None;
    }
    let df = observed.len().saturating_sub(1) as f64;
    let p_value = if statistic <= 0.0 {
        1.0
    } else {
        ChiSquared::new(df).ok()?.sf(statistic)
    };
    Some((statistic, p_value))
}

/// Analyse a test: arm rates, each variant against the baseline, the SRM check, and a verdict.
///
/// * `control`: index of the control (hold-out) arm. None when the test has no hold-out:
///   every other arm is then compared with the first arm.
/// * `alpha`: family-wise two-sided significance level, usually 0.05. With m comparisons each
///   one must reach p < alpha / m (Bonferroni).
/// * `min_per_arm`: fewest exposed per arm before anything is called.
///
/// Checks run in order, and the first that fails decides the verdict: the input is valid; the
/// split matches the weights (SRM p ≥ [`SRM_ALPHA`]); every arm has `min_per_arm` exposed and
/// every comparison [`MIN_CONVERSIONS`] conversions. Only then does a variant win (p below
/// the corrected alpha and higher rate) or lose (p below it and lower rate).
pub fn analyse(arms: &[Arm], control: Option<usize>, alpha: f64, min_per_arm: u64) -> Analysis {
    let base = control.unwrap_or(0);
    let z_arm = critical_z(alpha);
    let arm_results: Vec<ArmResult> = arms
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let wilson = z_arm.and_then(|z| wilson_interval(a.x, a.n, z));
            ArmResult {
                name: a.name.clone(),
                n: a.n,
                x: a.x,
                weight: a.weight,
                rate: rate(a),
                wilson_low: wilson.map(|w| w.0),
                wilson_high: wilson.map(|w| w.1),
                baseline: i == base,
            }
        })
        .collect();

    let base_arm = match check(arms, control, alpha) {
        Ok(base_arm) => base_arm,
        Err((zh, en)) => {
            return Analysis {
                arms: arm_results,
                comparisons: Vec::new(),
                srm: None,
                status: Status::Invalid,
                verdict_zh: format!("无法分析：{zh}。"),
                verdict_en: format!("Cannot analyse: {en}."),
            };
        }
    };

    // check() made sure there are at least two arms.
    let m = arms.len().saturating_sub(1).max(1);
    let corrected = alpha / m as f64;
    let z_corrected = critical_z(corrected);
    let mut comparisons: Vec<Comparison> = arms
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != base)
        .map(|(i, v)| {
            let wald =
                z_corrected.and_then(|z| wald_diff_interval(v.x, v.n, base_arm.x, base_arm.n, z));
            let test = two_proportion_z(v.x, v.n, base_arm.x, base_arm.n);
            Comparison {
                variant: v.name.clone(),
                control: base_arm.name.clone(),
                variant_index: i,
                control_index: base,
                variant_rate: rate(v),
                control_rate: rate(base_arm),
                diff: wald.map(|w| w.0),
                diff_low: wald.map(|w| w.1),
                diff_high: wald.map(|w| w.2),
                interval_level: 1.0 - corrected,
                z: test.map(|t| t.0),
                p_value: test.map(|t| t.1),
                p_adjusted: test.map(|t| (t.1 * m as f64).min(1.0)),
                alpha_corrected: corrected,
                outcome: Outcome::Withheld,
            }
        })
        .collect();

    let observed: Vec<u64> = arms.iter().map(|a| a.n).collect();
    let weights: Vec<f64> = arms.iter().map(|a| a.weight).collect();
    let srm = srm_check(&observed, &weights);

    let broken = srm
        .as_ref()
        .filter(|s| s.broken)
        .map(|s| split_broken_text(arms, s));
    if let Some((verdict_zh, verdict_en)) = broken {
        return Analysis {
            arms: arm_results,
            comparisons,
            srm,
            status: Status::SplitBroken,
            verdict_zh,
            verdict_en,
        };
    }

    let mut zh: Vec<String> = Vec::new();
    let mut en: Vec<String> = Vec::new();
    if srm.is_none() {
        zh.push("未检查分流比例：有组的权重不是正数，或还没有人曝光。".to_string());
        en.push(
            "The split was not checked: an arm's weight is not positive, or nobody is exposed yet."
                .to_string(),
        );
    }

    let (short_zh, short_en) = shortfalls(arms, base, base_arm, min_per_arm);
    if !short_zh.is_empty() {
        zh.insert(
            0,
            format!("数据还不够，暂不判断胜负：{}。", short_zh.join("；")),
        );
        en.insert(
            0,
            format!(
                "Not enough data yet to call a winner: {}.",
                short_en.join("; ")
            ),
        );
        return Analysis {
            arms: arm_results,
            comparisons,
            srm,
            status: Status::NotEnoughData,
            verdict_zh: zh.join("\n"),
            verdict_en: en.join("\n"),
        };
    }

    for c in &mut comparisons {
        c.outcome = decide(c);
    }
    let (base_zh, base_en) = if control.is_some() {
        ("对照组".to_string(), "control".to_string())
    } else {
        zh.push(format!(
            "没有留空对照组，各版本都与 {} 比较。",
            base_arm.name
        ));
        en.push(format!(
            "No hold-out arm: each variant is compared with {}.",
            base_arm.name
        ));
        (base_arm.name.clone(), base_arm.name.clone())
    };
    if m > 1 {
        let threshold = trimmed(corrected, 4);
        zh.push(format!(
            "共 {m} 组比较，按 Bonferroni 校正，每组须 p<{threshold} 才算显著。"
        ));
        en.push(format!(
            "{m} comparisons, Bonferroni-corrected: each needs p<{threshold} to count."
        ));
    }
    for c in &comparisons {
        let (line_zh, line_en) = comparison_text(c, &base_zh, &base_en);
        zh.push(line_zh);
        en.push(line_en);
    }
    Analysis {
        arms: arm_results,
        comparisons,
        srm,
        status: Status::Read,
        verdict_zh: zh.join("\n"),
        verdict_en: en.join("\n"),
    }
}

fn rate(a: &Arm) -> Option<f64> {
    (a.n > 0 && a.x <= a.n).then(|| a.x as f64 / a.n as f64)
}

/// The baseline arm, or why the input cannot be analysed (zh, en).
fn check(arms: &[Arm], control: Option<usize>, alpha: f64) -> Result<&Arm, (String, String)> {
    let valid_alpha = alpha > 0.0 && alpha < 1.0;
    if !valid_alpha {
        return Err((
            format!("显著性水平 alpha 须在 0 和 1 之间（现为 {alpha}）"),
            format!("alpha must be between 0 and 1 (got {alpha})"),
        ));
    }
    if arms.len() < 2 {
        return Err((
            "至少需要两组才能比较".to_string(),
            "at least two arms are needed to compare".to_string(),
        ));
    }
    if let Some(a) = arms.iter().find(|a| a.x > a.n) {
        return Err((
            format!("{} 的转化数 {} 大于曝光数 {}", a.name, a.x, a.n),
            format!(
                "{} has more conversions ({}) than exposed ({})",
                a.name, a.x, a.n
            ),
        ));
    }
    let base = control.unwrap_or(0);
    arms.get(base).ok_or_else(|| {
        (
            format!("对照组序号 {base} 超出范围（共 {} 组）", arms.len()),
            format!("control index {base} is out of range ({} arms)", arms.len()),
        )
    })
}

fn srm_check(observed: &[u64], weights: &[f64]) -> Option<Srm> {
    let expected = expected_counts(observed, weights)?;
    let (statistic, p_value) = chi_square_gof(observed, &expected)?;
    Some(Srm {
        observed: observed.to_vec(),
        weights: weights.to_vec(),
        expected,
        statistic,
        p_value,
        broken: p_value < SRM_ALPHA,
    })
}

fn decide(c: &Comparison) -> Outcome {
    match (c.diff, c.p_value) {
        (Some(d), Some(p)) if p < c.alpha_corrected && d > 0.0 => Outcome::Wins,
        (Some(d), Some(p)) if p < c.alpha_corrected && d < 0.0 => Outcome::Loses,
        (Some(_), Some(_)) => Outcome::NoDifference,
        _ => Outcome::NotTestable,
    }
}

/// What is missing before the test can be read: exposed per arm, conversions per comparison.
fn shortfalls(
    arms: &[Arm],
    base: usize,
    base_arm: &Arm,
    min_per_arm: u64,
) -> (Vec<String>, Vec<String>) {
    let mut zh = Vec::new();
    let mut en = Vec::new();
    for a in arms.iter().filter(|a| a.n < min_per_arm) {
        let need = min_per_arm - a.n;
        zh.push(format!(
            "{} 还需曝光 {need} 人（每组至少 {min_per_arm} 人）",
            a.name
        ));
        en.push(format!(
            "{} needs {need} more exposed (at least {min_per_arm} per arm)",
            a.name
        ));
    }
    for (_, v) in arms.iter().enumerate().filter(|(i, _)| *i != base) {
        let have = v.x.saturating_add(base_arm.x);
        if have < MIN_CONVERSIONS {
            let need = MIN_CONVERSIONS - have;
            zh.push(format!(
                "{} 与 {} 合计还需 {need} 次转化（每组比较至少 {MIN_CONVERSIONS} 次）",
                v.name, base_arm.name
            ));
            en.push(format!(
                "{} and {} need {need} more conversions between them (at least {MIN_CONVERSIONS} per comparison)",
                v.name, base_arm.name
            ));
        }
    }
    (zh, en)
}

fn split_broken_text(arms: &[Arm], s: &Srm) -> (String, String) {
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
fn comparison_text(c: &Comparison, base_zh: &str, base_en: &str) -> (String, String) {
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
fn fixed(v: f64, decimals: usize) -> String {
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

fn signed(v: f64, decimals: usize) -> String {
    let s = fixed(v, decimals);
    if s.starts_with('-') || s.chars().all(|c| c == '0' || c == '.') {
        s
    } else {
        format!("+{s}")
    }
}

fn pct(rate: f64, decimals: usize) -> String {
    format!("{}%", fixed(rate * 100.0, decimals))
}

fn p_text(p: f64) -> String {
    if p < 0.001 {
        "p<0.001".to_string()
    } else {
        format!("p={p:.3}")
    }
}

/// 0.95 → "95%", 0.98333 → "98.3%".
fn level_text(level: f64) -> String {
    let v = level * 100.0;
    if (v - v.round()).abs() < 1e-9 {
        format!("{v:.0}%")
    } else {
        format!("{v:.1}%")
    }
}

/// `v` to at most `decimals` places, trailing zeros dropped: 0.025 → "0.025", 0.0166… → "0.0167".
fn trimmed(v: f64, decimals: usize) -> String {
    let s = format!("{:.*}", decimals, v);
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    const TOL: f64 = 1e-6;

    fn fixture() -> Value {
        serde_json::from_str(include_str!("../../tests/fixtures/ab_reference.json"))
            .expect("the fixture is valid JSON")
    }

    /// A float field; None when the fixture stores null (a NaN in the reference).
    fn num(v: &Value, key: &str) -> Option<f64> {
        let field = v
            .get(key)
            .unwrap_or_else(|| panic!("fixture field {key} is missing in {v}"));
        if field.is_null() {
            None
        } else {
            Some(
                field
                    .as_f64()
                    .unwrap_or_else(|| panic!("fixture field {key} is not a number")),
            )
        }
    }

    fn req(v: &Value, key: &str) -> f64 {
        num(v, key).unwrap_or_else(|| panic!("fixture field {key} is null"))
    }

    fn count(v: &Value, key: &str) -> u64 {
        v.get(key)
            .and_then(Value::as_u64)
            .unwrap_or_else(|| panic!("fixture field {key} is not a count"))
    }

    fn text<'a>(v: &'a Value, key: &str) -> &'a str {
        v.get(key)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("fixture field {key} is not a string"))
    }

    fn list<'a>(v: &'a Value, key: &str) -> &'a Vec<Value> {
        v.get(key)
            .and_then(Value::as_array)
            .unwrap_or_else(|| panic!("fixture field {key} is not a list"))
    }

    fn close(what: &str, actual: f64, expected: f64) {
        assert!(
            (actual - expected).abs() <= TOL,
            "{what}: got {actual}, want {expected}"
        );
    }

    /// p-values: absolute 1e-6, and relative 1e-6 in the tail, where absolute says nothing.
    fn close_p(what: &str, actual: f64, expected: f64) {
        close(what, actual, expected);
        if expected > 0.0 && expected < 1e-3 {
            let rel = ((actual - expected) / expected).abs();
            assert!(
                rel <= 1e-6,
                "{what}: got {actual}, want {expected} (relative error {rel})"
            );
        }
    }

    fn z975() -> f64 {
        standard_normal()
            .expect("standard normal")
            .inverse_cdf(0.975)
    }

    fn fixture_arms(case: &Value) -> Vec<Arm> {
        list(case, "arms")
            .iter()
            .map(|a| Arm {
                name: text(a, "name").to_string(),
                n: count(a, "n"),
                x: count(a, "x"),
                weight: req(a, "weight"),
            })
            .collect()
    }

    fn arm(name: &str, n: u64, x: u64) -> Arm {
        Arm {
            name: name.to_string(),
            n,
            x,
            weight: 1.0,
        }
    }

    #[test]
    fn critical_value_matches_scipy() {
        let f = fixture();
        let z = z975();
        assert!((z - req(&f, "z_975_ppf")).abs() < 1e-12, "z = {z}");
        assert!((z - req(&f, "z_wilson_isf")).abs() < 1e-12, "z = {z}");
        let from_alpha = critical_z(0.05).expect("alpha 0.05 is valid");
        assert!((from_alpha - 1.959963984540054).abs() < 1e-12);
        assert!(critical_z(0.0).is_none());
        assert!(critical_z(1.0).is_none());
        assert!(critical_z(f64::NAN).is_none());
    }

    #[test]
    fn every_fixture_case_matches_statsmodels_and_scipy() {
        let f = fixture();
        let z = z975();
        let cases = list(&f, "cases");
        assert!(!cases.is_empty());
        let mut compared = 0;
        for case in cases {
            let name = text(case, "name");
            let arms = fixture_arms(case);

            for (a, fa) in arms.iter().zip(list(case, "arms")) {
                let what = format!("{name}/{}", a.name);
                close(
                    &format!("{what} rate"),
                    a.x as f64 / a.n as f64,
                    req(fa, "rate"),
                );
                let (lo, hi) = wilson_interval(a.x, a.n, z).expect("n > 0");
                close(&format!("{what} wilson_low"), lo, req(fa, "wilson_low"));
                close(&format!("{what} wilson_high"), hi, req(fa, "wilson_high"));
                assert!((0.0..=1.0).contains(&lo) && (0.0..=1.0).contains(&hi));
            }

            let control_index =
                usize::try_from(count(case, "control_index")).expect("index fits usize");
            let control = arms.get(control_index).expect("control arm exists");
            for fc in list(case, "comparisons") {
                let vname = text(fc, "variant");
                assert_eq!(text(fc, "control"), control.name);
                let v = arms
                    .iter()
                    .find(|a| a.name == vname)
                    .expect("variant arm exists");
                let what = format!("{name}/{vname}");

                let test = two_proportion_z(v.x, v.n, control.x, control.n);
                match (num(fc, "z"), num(fc, "p_value")) {
                    (Some(ez), Some(ep)) => {
                        let (gz, gp) = test.unwrap_or_else(|| panic!("{what}: z-test gave None"));
                        close(&format!("{what} z"), gz, ez);
                        close_p(&format!("{what} p"), gp, ep);
                    }
                    (None, None) => {
                        assert!(test.is_none(), "{what}: expected None, got {test:?}")
                    }
                    other => panic!("{what}: z and p disagree on null: {other:?}"),
                }

                let (diff, lo, hi) =
                    wald_diff_interval(v.x, v.n, control.x, control.n, z).expect("n > 0");
                close(&format!("{what} diff"), diff, req(fc, "diff"));
                close(&format!("{what} wald_low"), lo, req(fc, "wald_low"));
                close(&format!("{what} wald_high"), hi, req(fc, "wald_high"));
                compared += 1;
            }

            let fs = case.get("srm").expect("srm present");
            let observed: Vec<u64> = list(fs, "observed")
                .iter()
                .map(|o| o.as_u64().expect("observed count"))
                .collect();
            let weights: Vec<f64> = list(fs, "weights")
                .iter()
                .map(|w| w.as_f64().expect("weight"))
                .collect();
            let expected = expected_counts(&observed, &weights).expect("valid weights");
            for (e, fe) in expected.iter().zip(list(fs, "expected")) {
                close(
                    &format!("{name} srm expected"),
                    *e,
                    fe.as_f64().expect("expected count"),
                );
            }
            let (stat, p) = sample_ratio_mismatch(&observed, &weights).expect("SRM testable");
            close(&format!("{name} srm statistic"), stat, req(fs, "statistic"));
            close_p(&format!("{name} srm p"), p, req(fs, "p_value"));
        }
        assert!(compared > 0);
    }

    /// `analyse` reports the same numbers as the functions it is built from.
    #[test]
    fn analyse_agrees_with_the_fixture() {
        let f = fixture();
        for case in list(&f, "cases") {
            let name = text(case, "name");
            let arms = fixture_arms(case);
            let ci = usize::try_from(count(case, "control_index")).expect("index fits usize");
            let a = analyse(&arms, Some(ci), 0.05, 0);
            assert_ne!(a.status, Status::Invalid, "{name}");
            for (r, fa) in a.arms.iter().zip(list(case, "arms")) {
                close(name, r.rate.expect("rate"), req(fa, "rate"));
                close(name, r.wilson_low.expect("low"), req(fa, "wilson_low"));
                close(name, r.wilson_high.expect("high"), req(fa, "wilson_high"));
            }
            let fcs = list(case, "comparisons");
            assert_eq!(a.comparisons.len(), fcs.len(), "{name}");
            for (c, fc) in a.comparisons.iter().zip(fcs) {
                assert_eq!(c.variant, text(fc, "variant"));
                match num(fc, "p_value") {
                    Some(ep) => close_p(name, c.p_value.expect("p"), ep),
                    None => assert!(c.p_value.is_none(), "{name}"),
                }
                close(name, c.diff.expect("diff"), req(fc, "diff"));
                if fcs.len() == 1 {
                    // One comparison: no correction, so the interval is the 95% one.
                    close(name, c.diff_low.expect("low"), req(fc, "wald_low"));
                    close(name, c.diff_high.expect("high"), req(fc, "wald_high"));
                }
            }
            let s = a.srm.as_ref().expect("srm");
            let fs = case.get("srm").expect("srm present");
            close(name, s.statistic, req(fs, "statistic"));
            close_p(name, s.p_value, req(fs, "p_value"));
            serde_json::to_value(&a).expect("the analysis serialises");
        }
    }

    #[test]
    fn degenerate_inputs_give_none() {
        assert!(wilson_interval(0, 0, 1.96).is_none());
        assert!(wilson_interval(5, 4, 1.96).is_none());
        assert!(two_proportion_z(1, 0, 1, 10).is_none());
        assert!(two_proportion_z(0, 10, 0, 12).is_none());
        assert!(two_proportion_z(10, 10, 12, 12).is_none());
        assert!(wald_diff_interval(1, 10, 0, 0, 1.96).is_none());
        assert!(sample_ratio_mismatch(&[100], &[1.0]).is_none());
        assert!(sample_ratio_mismatch(&[0, 0], &[1.0, 1.0]).is_none());
        assert!(sample_ratio_mismatch(&[10, 12], &[1.0, 0.0]).is_none());
        assert!(sample_ratio_mismatch(&[10, 12], &[1.0]).is_none());
        let (stat, p) = sample_ratio_mismatch(&[50, 50], &[1.0, 1.0]).expect("testable");
        assert_eq!(stat, 0.0);
        assert_eq!(p, 1.0);
    }

    #[test]
    fn not_enough_data_says_how_much_is_missing() {
        let arms = [arm("control", 40, 2), arm("B", 38, 5)];
        let a = analyse(&arms, Some(0), 0.05, 1000);
        assert_eq!(a.status, Status::NotEnoughData);
        assert!(a.comparisons.iter().all(|c| c.outcome == Outcome::Withheld));
        assert!(
            a.verdict_en.contains("Not enough data yet"),
            "{}",
            a.verdict_en
        );
        assert!(
            a.verdict_en.contains("control needs 960 more exposed"),
            "{}",
            a.verdict_en
        );
        assert!(
            a.verdict_en.contains("B needs 962 more exposed"),
            "{}",
            a.verdict_en
        );
        assert!(
            a.verdict_en.contains("3 more conversions"),
            "{}",
            a.verdict_en
        );
        assert!(a.verdict_zh.contains("数据还不够"), "{}", a.verdict_zh);
        assert!(
            a.verdict_zh.contains("B 还需曝光 962 人"),
            "{}",
            a.verdict_zh
        );
        assert!(!a.verdict_en.contains("wins"));
    }

    #[test]
    fn few_conversions_alone_hold_the_verdict() {
        // Plenty exposed, but 0 against 6 conversions: at counts this small one or two
        // conversions either way would change the answer.
        let arms = [arm("control", 5000, 0), arm("B", 5000, 6)];
        let a = analyse(&arms, Some(0), 0.05, 1000);
        assert_eq!(a.status, Status::NotEnoughData);
        assert!(
            a.verdict_en.contains("4 more conversions"),
            "{}",
            a.verdict_en
        );
    }

    #[test]
    fn a_broken_split_is_reported_before_anything_else() {
        let arms = [arm("control", 5000, 250), arm("B", 5400, 400)];
        let a = analyse(&arms, Some(0), 0.05, 100);
        assert_eq!(a.status, Status::SplitBroken);
        assert!(a.srm.as_ref().is_some_and(|s| s.broken));
        assert!(a.comparisons.iter().all(|c| c.outcome == Outcome::Withheld));
        assert!(a.verdict_en.contains("split is broken"), "{}", a.verdict_en);
        assert!(
            a.verdict_en.contains("not to be trusted"),
            "{}",
            a.verdict_en
        );
        assert!(
            a.verdict_en.contains("expected about 5200"),
            "{}",
            a.verdict_en
        );
        assert!(a.verdict_zh.contains("分流异常"), "{}", a.verdict_zh);
        assert!(!a.verdict_en.contains("wins"), "{}", a.verdict_en);
    }

    #[test]
    fn a_clear_winner_is_called() {
        let arms = [arm("control", 10_000, 500), arm("B", 10_000, 600)];
        let a = analyse(&arms, Some(0), 0.05, 1000);
        assert_eq!(a.status, Status::Read);
        assert_eq!(a.comparisons[0].outcome, Outcome::Wins);
        assert!(
            a.verdict_en.starts_with("B wins: 6.0% vs 5.0% for control"),
            "{}",
            a.verdict_en
        );
        assert!(
            a.verdict_en
                .contains("+1.0 percentage points (95% interval 0.4–1.6), p=0.002"),
            "{}",
            a.verdict_en
        );
        assert!(
            a.verdict_zh.contains(
                "B 胜出：转化率 6.0%，对照组 5.0%，提升 1.0 个百分点（95% 区间 0.4–1.6），p=0.002"
            ),
            "{}",
            a.verdict_zh
        );
    }

    #[test]
    fn a_clear_loser_is_called() {
        let arms = [arm("control", 10_000, 600), arm("B", 10_000, 500)];
        let a = analyse(&arms, Some(0), 0.05, 1000);
        assert_eq!(a.status, Status::Read);
        assert_eq!(a.comparisons[0].outcome, Outcome::Loses);
        assert!(a.verdict_en.starts_with("B loses"), "{}", a.verdict_en);
        assert!(a.verdict_zh.contains("B 落后"), "{}", a.verdict_zh);
    }

    #[test]
    fn no_difference_is_not_a_win() {
        let arms = [arm("control", 10_000, 500), arm("B", 10_000, 520)];
        let a = analyse(&arms, Some(0), 0.05, 1000);
        assert_eq!(a.status, Status::Read);
        assert_eq!(a.comparisons[0].outcome, Outcome::NoDifference);
        assert!(
            a.verdict_en
                .contains("B: no significant difference from control yet"),
            "{}",
            a.verdict_en
        );
        assert!(a.verdict_zh.contains("B 暂无显著差异"), "{}", a.verdict_zh);
        assert!(!a.verdict_en.contains("wins"));
    }

    /// v4 has p = 0.042: a win on its own, but not among five variants (threshold 0.01).
    #[test]
    fn several_variants_use_the_bonferroni_threshold() {
        let f = fixture();
        let case = list(&f, "cases")
            .iter()
            .find(|c| text(c, "name") == "g_five_variants")
            .expect("case g exists");
        let arms = fixture_arms(case);
        let a = analyse(&arms, Some(0), 0.05, 1000);
        assert_eq!(a.status, Status::Read);
        assert!(
            a.comparisons
                .iter()
                .all(|c| c.outcome == Outcome::NoDifference)
        );
        assert!(
            a.comparisons
                .iter()
                .all(|c| (c.alpha_corrected - 0.01).abs() < 1e-15)
        );
        assert!(a.verdict_en.contains("5 comparisons"), "{}", a.verdict_en);
        assert!(a.verdict_en.contains("p<0.01 "), "{}", a.verdict_en);

        let v4 = arms.iter().find(|a| a.name == "v4").expect("v4").clone();
        let pair = [arms[0].clone(), v4];
        let b = analyse(&pair, Some(0), 0.05, 1000);
        assert_eq!(b.comparisons[0].outcome, Outcome::Wins);
    }

    #[test]
    fn without_a_hold_out_the_first_arm_is_the_baseline() {
        let arms = [arm("A", 10_000, 500), arm("B", 10_000, 600)];
        let a = analyse(&arms, None, 0.05, 1000);
        assert_eq!(a.status, Status::Read);
        assert!(a.arms[0].baseline && !a.arms[1].baseline);
        assert_eq!(a.comparisons[0].control, "A");
        assert!(a.verdict_en.contains("No hold-out arm"), "{}", a.verdict_en);
        assert!(
            a.verdict_en.contains("B wins: 6.0% vs 5.0% for A"),
            "{}",
            a.verdict_en
        );
    }

    #[test]
    fn bad_input_is_refused_not_analysed() {
        let arms = [arm("control", 100, 5), arm("B", 100, 6)];
        assert_eq!(analyse(&arms, Some(2), 0.05, 0).status, Status::Invalid);
        assert_eq!(analyse(&arms[..1], None, 0.05, 0).status, Status::Invalid);
        assert_eq!(analyse(&arms, None, 0.0, 0).status, Status::Invalid);
        let impossible = [arm("control", 100, 5), arm("B", 10, 11)];
        let a = analyse(&impossible, None, 0.05, 0);
        assert_eq!(a.status, Status::Invalid);
        assert!(
            a.verdict_en.starts_with("Cannot analyse"),
            "{}",
            a.verdict_en
        );
    }

    #[test]
    fn numbers_read_cleanly() {
        assert_eq!(fixed(-0.0001, 1), "0.0");
        assert_eq!(signed(0.3, 1), "+0.3");
        assert_eq!(signed(-0.3, 1), "-0.3");
        assert_eq!(level_text(0.95), "95%");
        assert_eq!(level_text(1.0 - 0.05 / 3.0), "98.3%");
        assert_eq!(trimmed(0.05 / 3.0, 4), "0.0167");
        assert_eq!(trimmed(0.025, 4), "0.025");
        assert_eq!(p_text(0.00001), "p<0.001");
    }
}
