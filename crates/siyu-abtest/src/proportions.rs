//! The per-arm and pairwise statistics, as statsmodels computes them: critical z, the Wilson
//! interval of a conversion rate, the pooled two-proportion z-test and the Wald interval of the lift.

use statrs::distribution::{ContinuousCDF, Normal};

pub(super) fn standard_normal() -> Option<Normal> {
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
