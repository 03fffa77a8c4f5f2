//! The sample-ratio-mismatch (SRM) check: a chi-square goodness-of-fit test of arm sizes against
//! the configured split weights, as SciPy's `chisquare` computes it.

use statrs::distribution::{ChiSquared, ContinuousCDF};

use super::*;

/// Sample-ratio mismatch: Pearson chi-square goodness of fit of the observed arm sizes against
/// the weights (SciPy's `chisquare` with `f_exp = total × w / Σw`), df = k − 1.
/// Returns (statistic, p). None for fewer than two arms, lengths that differ, nobody observed,
/// or a weight that is not positive and finite (an arm with no expected traffic cannot be
/// tested this way).
pub fn sample_ratio_mismatch(observed: &[u64], weights: &[f64]) -> Option<(f64, f64)> {
    let expected = expected_counts(observed, weights)?;
    chi_square_gof(observed, &expected)
}

pub(super) fn expected_counts(observed: &[u64], weights: &[f64]) -> Option<Vec<f64>> {
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

pub(super) fn chi_square_gof(observed: &[u64], expected: &[f64]) -> Option<(f64, f64)> {
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

pub(super) fn srm_check(observed: &[u64], weights: &[f64]) -> Option<Srm> {
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
