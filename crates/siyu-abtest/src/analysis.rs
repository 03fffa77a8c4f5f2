//! Reading a test: input checks, arm rates, each variant against the baseline, the SRM gate,
//! minimum-data gate and Bonferroni-corrected win/lose calls.

use super::*;

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

    let (short_zh, short_en) = shortfalls(arms, base, control, min_per_arm);
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

pub(super) fn rate(a: &Arm) -> Option<f64> {
    (a.n > 0 && a.x <= a.n).then(|| a.x as f64 / a.n as f64)
}

/// The baseline arm, or why the input cannot be analysed (zh, en).
pub(super) fn check(
    arms: &[Arm],
    control: Option<usize>,
    alpha: f64,
) -> Result<&Arm, (String, String)> {
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

pub(super) fn decide(c: &Comparison) -> Outcome {
    match (c.diff, c.p_value) {
        (Some(d), Some(p)) if p < c.alpha_corrected && d > 0.0 => Outcome::Wins,
        (Some(d), Some(p)) if p < c.alpha_corrected && d < 0.0 => Outcome::Loses,
        (Some(_), Some(_)) => Outcome::NoDifference,
        _ => Outcome::NotTestable,
    }
}

/// What is missing before the test can be read: exposed per arm, conversions per comparison.
/// The hold-out arm (`control`, by position) is named 对照组 in the Chinese text.
pub(super) fn shortfalls(
    arms: &[Arm],
    base: usize,
    control: Option<usize>,
    min_per_arm: u64,
) -> (Vec<String>, Vec<String>) {
    let zh_name = |i: usize| -> &str {
        if control == Some(i) {
            "对照组"
        } else {
            &arms[i].name
        }
    };
    let base_arm = &arms[base];
    let mut zh = Vec::new();
    let mut en = Vec::new();
    for (i, a) in arms.iter().enumerate().filter(|(_, a)| a.n < min_per_arm) {
        let need = min_per_arm - a.n;
        zh.push(format!(
            "{} 还需曝光 {need} 人（每组至少 {min_per_arm} 人）",
            zh_name(i)
        ));
        en.push(format!(
            "{} needs {need} more exposed (at least {min_per_arm} per arm)",
            a.name
        ));
    }
    for (i, v) in arms.iter().enumerate().filter(|(i, _)| *i != base) {
        let have = v.x.saturating_add(base_arm.x);
        if have < MIN_CONVERSIONS {
            let need = MIN_CONVERSIONS - have;
            zh.push(format!(
                "{} 与 {} 合计还需 {need} 次转化（每组比较至少 {MIN_CONVERSIONS} 次）",
                zh_name(i),
                zh_name(base)
            ));
            en.push(format!(
                "{} and {} need {need} more conversions between them (at least {MIN_CONVERSIONS} per comparison)",
                v.name, base_arm.name
            ));
        }
    }
    (zh, en)
}
