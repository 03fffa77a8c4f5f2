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

mod analysis;
mod proportions;
mod srm;
mod verdict;

use serde::{Deserialize, Serialize};

pub use analysis::analyse;
pub use proportions::{critical_z, two_proportion_z, wald_diff_interval, wilson_interval};
pub use srm::sample_ratio_mismatch;
use srm::srm_check;
use verdict::{comparison_text, split_broken_text, trimmed};

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

#[cfg(test)]
mod tests {
    use super::*;
    use super::{proportions::*, srm::*, verdict::*};
    use serde_json::Value;
    use statrs::distribution::ContinuousCDF;

    const TOL: f64 = 1e-6;

    fn fixture() -> Value {
        serde_json::from_str(include_str!("../tests/fixtures/ab_reference.json"))
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
    fn the_hold_out_is_named_by_its_place_not_by_its_name() {
        let arm = |name: &str, n: u64| Arm {
            name: name.into(),
            n,
            x: 1,
            weight: 1.0,
        };
        // The hold-out first: 对照组 in the Chinese text.
        let a = analyse(&[arm("control", 40), arm("A", 40)], Some(0), 0.05, 100);
        assert!(
            a.verdict_zh.contains("对照组 还需曝光 60 人"),
            "{}",
            a.verdict_zh
        );
        assert!(
            a.verdict_zh.contains("A 与 对照组 合计"),
            "{}",
            a.verdict_zh
        );
        // A design that happens to be called "control", with no hold-out, keeps its name.
        let a = analyse(&[arm("control", 40), arm("A", 40)], None, 0.05, 100);
        assert!(
            a.verdict_zh.contains("control 还需曝光 60 人"),
            "{}",
            a.verdict_zh
        );
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
