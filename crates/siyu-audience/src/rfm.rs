//! RFM scores and classes, and lifecycle stages: the rules, with no I/O.
//!
//! R is days since the last purchase, F the purchases in the window, M the spend in the window
//! (default 365 days). Each is scored 1–5 by four cut points: the tenant's own, or by default the
//! quintiles of its customers. A score above the mean of its scores is "high"; the three
//! high/low answers name one of the eight classic classes.

use serde::{Deserialize, Serialize};

pub const DAY_MS: i64 = 86_400_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RfmClass {
    /// R high, F high, M high.
    ImportantValue,
    /// R high, F low, M high.
    ImportantDevelop,
    /// R low, F high, M high.
    ImportantKeep,
    /// R low, F low, M high.
    ImportantRetain,
    GeneralValue,
    GeneralDevelop,
    GeneralKeep,
    GeneralRetain,
}

pub const ALL_CLASSES: [RfmClass; 8] = [
    RfmClass::ImportantValue,
    RfmClass::ImportantDevelop,
    RfmClass::ImportantKeep,
    RfmClass::ImportantRetain,
    RfmClass::GeneralValue,
    RfmClass::GeneralDevelop,
    RfmClass::GeneralKeep,
    RfmClass::GeneralRetain,
];

impl RfmClass {
    pub fn of(r_high: bool, f_high: bool, m_high: bool) -> RfmClass {
        use RfmClass::*;
        match (m_high, r_high, f_high) {
            (true, true, true) => ImportantValue,
            (true, true, false) => ImportantDevelop,
            (true, false, true) => ImportantKeep,
            (true, false, false) => ImportantRetain,
            (false, true, true) => GeneralValue,
            (false, true, false) => GeneralDevelop,
            (false, false, true) => GeneralKeep,
            (false, false, false) => GeneralRetain,
        }
    }
    pub fn index(self) -> usize {
        self as usize
    }
    pub fn as_str(self) -> &'static str {
        use RfmClass::*;
        match self {
            ImportantValue => "important_value",
            ImportantDevelop => "important_develop",
            ImportantKeep => "important_keep",
            ImportantRetain => "important_retain",
            GeneralValue => "general_value",
            GeneralDevelop => "general_develop",
            GeneralKeep => "general_keep",
            GeneralRetain => "general_retain",
        }
    }
    pub fn parse(s: &str) -> Option<RfmClass> {
        ALL_CLASSES.into_iter().find(|c| c.as_str() == s)
    }
    pub fn zh(self) -> &'static str {
        use RfmClass::*;
        match self {
            ImportantValue => "重要价值客户",
            ImportantDevelop => "重要发展客户",
            ImportantKeep => "重要保持客户",
            ImportantRetain => "重要挽留客户",
            GeneralValue => "一般价值客户",
            GeneralDevelop => "一般发展客户",
            GeneralKeep => "一般保持客户",
            GeneralRetain => "一般挽留客户",
        }
    }
    pub fn en(self) -> &'static str {
        use RfmClass::*;
        match self {
            ImportantValue => "Important value",
            ImportantDevelop => "Important develop",
            ImportantKeep => "Important keep",
            ImportantRetain => "Important retain",
            GeneralValue => "General value",
            GeneralDevelop => "General develop",
            GeneralKeep => "General keep",
            GeneralRetain => "General retain",
        }
    }
}

/// Lifecycle stage. `prospect` is a customer who has not bought yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Prospect,
    New,
    Active,
    Silent,
    Dormant,
    Churned,
}

pub const ALL_STAGES: [Stage; 6] = [
    Stage::Prospect,
    Stage::New,
    Stage::Active,
    Stage::Silent,
    Stage::Dormant,
    Stage::Churned,
];

impl Stage {
    pub fn index(self) -> usize {
        self as usize
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Prospect => "prospect",
            Stage::New => "new",
            Stage::Active => "active",
            Stage::Silent => "silent",
            Stage::Dormant => "dormant",
            Stage::Churned => "churned",
        }
    }
    pub fn parse(s: &str) -> Option<Stage> {
        ALL_STAGES.into_iter().find(|c| c.as_str() == s)
    }
    pub fn zh(self) -> &'static str {
        match self {
            Stage::Prospect => "潜客",
            Stage::New => "新客",
            Stage::Active => "活跃",
            Stage::Silent => "沉默",
            Stage::Dormant => "休眠",
            Stage::Churned => "流失",
        }
    }
    pub fn en(self) -> &'static str {
        match self {
            Stage::Prospect => "Prospect",
            Stage::New => "New",
            Stage::Active => "Active",
            Stage::Silent => "Silent",
            Stage::Dormant => "Dormant",
            Stage::Churned => "Churned",
        }
    }
}

/// What a tenant may set. Cut points left out are the quintiles of the tenant's own data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LayeringSettings {
    pub window_days: i64,
    /// Days since the last purchase; fewer days score higher.
    pub r_cuts: Option<[i64; 4]>,
    pub f_cuts: Option<[i64; 4]>,
    /// Fen.
    pub m_cuts: Option<[i64; 4]>,
    /// First purchase within this many days: new.
    pub new_days: i64,
    /// Last purchase within: active; then silent, dormant; beyond: churned.
    pub active_days: i64,
    pub silent_days: i64,
    pub dormant_days: i64,
}

impl Default for LayeringSettings {
    fn default() -> Self {
        LayeringSettings {
            window_days: 365,
            r_cuts: None,
            f_cuts: None,
            m_cuts: None,
            new_days: 30,
            active_days: 90,
            silent_days: 180,
            dormant_days: 365,
        }
    }
}

impl LayeringSettings {
    /// Names the field that is wrong.
    pub fn check(&self) -> Result<(), String> {
        if !(1..=3650).contains(&self.window_days) {
            return Err("window_days must be 1–3650".into());
        }
        for (name, cuts) in [
            ("r_cuts", self.r_cuts),
            ("f_cuts", self.f_cuts),
            ("m_cuts", self.m_cuts),
        ] {
            if let Some(c) = cuts
                && c.windows(2).any(|w| w[0] > w[1])
            {
                return Err(format!("{name} must be in ascending order"));
            }
        }
        let d = [
            self.new_days,
            self.active_days,
            self.silent_days,
            self.dormant_days,
        ];
        if d[0] < 1 || d.windows(2).skip(1).any(|w| w[0] >= w[1]) || d[1] < 1 {
            return Err(
                "stage days must be positive and active_days < silent_days < dormant_days".into(),
            );
        }
        Ok(())
    }
}

/// The cut points and score means in force, derived from the data and the settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RfmModel {
    pub r_cuts: [i64; 4],
    pub f_cuts: [i64; 4],
    pub m_cuts: [i64; 4],
    pub means: [f64; 3],
    pub customers: u64,
    pub computed_at: i64,
}

/// One purchase: when, and its net amount (paid less refunded) in fen.
#[derive(Debug, Clone, Copy)]
pub struct Purchase {
    pub at: i64,
    pub amount: i64,
}

/// Purchase figures of one customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PurchaseStats {
    pub first_order_at: i64,
    /// The second purchase: when the customer came back.
    pub repurchase_at: Option<i64>,
    pub last_order_at: i64,
    pub order_count: i64,
    pub spend: i64,
    pub window_orders: i64,
    pub window_spend: i64,
}

impl PurchaseStats {
    /// `None` for a customer without purchases.
    pub fn of(purchases: &[Purchase], now: i64, window_days: i64) -> Option<PurchaseStats> {
        let mut times: Vec<i64> = purchases.iter().map(|p| p.at).collect();
        times.sort_unstable();
        let first = *times.first()?;
        let since = now - window_days * DAY_MS;
        let in_window = purchases.iter().filter(|p| p.at >= since);
        Some(PurchaseStats {
            first_order_at: first,
            repurchase_at: times.get(1).copied(),
            last_order_at: *times.last()?,
            order_count: purchases.len() as i64,
            spend: purchases.iter().map(|p| p.amount).sum(),
            window_orders: in_window.clone().count() as i64,
            window_spend: in_window.map(|p| p.amount).sum(),
        })
    }

    pub fn recency_days(&self, now: i64) -> i64 {
        (now - self.last_order_at).div_euclid(DAY_MS).max(0)
    }

    pub fn stage(&self, now: i64, s: &LayeringSettings) -> Stage {
        let since_first = (now - self.first_order_at).div_euclid(DAY_MS);
        let r = self.recency_days(now);
        if since_first < s.new_days {
            Stage::New
        } else if r < s.active_days {
            Stage::Active
        } else if r < s.silent_days {
            Stage::Silent
        } else if r < s.dormant_days {
            Stage::Dormant
        } else {
            Stage::Churned
        }
    }
}

/// Level 1–5: one more than the number of cut points the value exceeds.
pub fn level(v: i64, cuts: &[i64; 4]) -> i64 {
    1 + cuts.iter().filter(|c| v > **c).count() as i64
}

/// The 20th, 40th, 60th and 80th percentiles (nearest rank) of `values`, which it sorts.
pub fn quintile_cuts(values: &mut [i64]) -> [i64; 4] {
    if values.is_empty() {
        return [0; 4];
    }
    values.sort_unstable();
    let n = values.len();
    let at = |q: usize| values[((n * q).div_ceil(5)).clamp(1, n) - 1];
    [at(1), at(2), at(3), at(4)]
}

/// Scores of one customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RfmScores {
    pub r: i64,
    pub f: i64,
    pub m: i64,
    pub class: RfmClass,
}

impl RfmModel {
    /// Cut points from the settings or the data, and the means of the scores they give. F and
    /// M cut points come from the customers who bought in the window: those who did not score 1
    /// anyway, and their zeros would squash everyone else into the top scores.
    pub fn fit(stats: &[PurchaseStats], s: &LayeringSettings, now: i64) -> RfmModel {
        let mut r: Vec<i64> = stats.iter().map(|p| p.recency_days(now)).collect();
        let in_window: Vec<&PurchaseStats> =
            match stats.iter().filter(|p| p.window_orders > 0).count() {
                0 => stats.iter().collect(),
                _ => stats.iter().filter(|p| p.window_orders > 0).collect(),
            };
        let mut f: Vec<i64> = in_window.iter().map(|p| p.window_orders).collect();
        let mut m: Vec<i64> = in_window.iter().map(|p| p.window_spend).collect();
        let r_cuts = s.r_cuts.unwrap_or_else(|| quintile_cuts(&mut r));
        let f_cuts = s.f_cuts.unwrap_or_else(|| quintile_cuts(&mut f));
        let m_cuts = s.m_cuts.unwrap_or_else(|| quintile_cuts(&mut m));
        let mut model = RfmModel {
            r_cuts,
            f_cuts,
            m_cuts,
            means: [0.0; 3],
            customers: stats.len() as u64,
            computed_at: now,
        };
        if !stats.is_empty() {
            let mut sums = [0i64; 3];
            for p in stats {
                let (r, f, m) = model.raw_scores(p, now);
                sums[0] += r;
                sums[1] += f;
                sums[2] += m;
            }
            let n = stats.len() as f64;
            model.means = sums.map(|x| x as f64 / n);
        }
        model
    }

    fn raw_scores(&self, p: &PurchaseStats, now: i64) -> (i64, i64, i64) {
        (
            6 - level(p.recency_days(now), &self.r_cuts),
            level(p.window_orders, &self.f_cuts),
            level(p.window_spend, &self.m_cuts),
        )
    }

    pub fn score(&self, p: &PurchaseStats, now: i64) -> RfmScores {
        let (r, f, m) = self.raw_scores(p, now);
        RfmScores {
            r,
            f,
            m,
            class: RfmClass::of(
                r as f64 > self.means[0],
                f as f64 > self.means[1],
                m as f64 > self.means[2],
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(days_ago: i64, orders: i64, spend: i64, now: i64) -> PurchaseStats {
        PurchaseStats {
            first_order_at: now - 400 * DAY_MS,
            repurchase_at: None,
            last_order_at: now - days_ago * DAY_MS,
            order_count: orders,
            spend,
            window_orders: orders,
            window_spend: spend,
        }
    }

    #[test]
    fn classes_follow_scores_against_their_means() {
        let now = 2_000 * DAY_MS;
        let data: Vec<PurchaseStats> = (0..100)
            .map(|i| stats(i * 3, 1 + i % 5, 1_000 * (i + 1), now))
            .collect();
        let model = RfmModel::fit(&data, &LayeringSettings::default(), now);
        // Recent, frequent, big spender.
        let best = model.score(&stats(0, 5, 1_000_000, now), now);
        assert_eq!((best.r, best.f, best.m), (5, 5, 5));
        assert_eq!(best.class, RfmClass::ImportantValue);
        assert_eq!(best.class.zh(), "重要价值客户");
        let worst = model.score(&stats(1_000, 1, 0, now), now);
        assert_eq!((worst.r, worst.f, worst.m), (1, 1, 1));
        assert_eq!(worst.class, RfmClass::GeneralRetain);
        let keep = model.score(&stats(1_000, 5, 1_000_000, now), now);
        assert_eq!(keep.class, RfmClass::ImportantKeep);
        for m in model.means {
            assert!((2.0..=4.0).contains(&m), "{m}");
        }
    }

    #[test]
    fn customers_outside_the_window_do_not_squash_the_rest() {
        let now = 2_000 * DAY_MS;
        let mut data: Vec<PurchaseStats> = Vec::new();
        // 40 lapsed buyers: nothing in the window.
        for i in 0..40 {
            let mut p = stats(400 + i, 2, 50_000, now);
            p.window_orders = 0;
            p.window_spend = 0;
            data.push(p);
        }
        // 60 buyers in the window with spread frequency and spend.
        for i in 0..60 {
            data.push(stats(i * 5, 1 + i % 4, 1_000 * (1 + i % 30), now));
        }
        let model = RfmModel::fit(&data, &LayeringSettings::default(), now);
        let mut classes: Vec<RfmClass> = data.iter().map(|p| model.score(p, now).class).collect();
        classes.sort();
        classes.dedup();
        // A recent single big purchase is "important develop", not lumped with the best.
        let develop = model.score(&stats(1, 1, 29_000, now), now);
        assert_eq!(
            develop.class,
            RfmClass::ImportantDevelop,
            "{develop:?} {model:?}"
        );
        assert!(classes.len() >= 5, "{classes:?}");
    }

    #[test]
    fn quintiles_and_levels() {
        let mut v: Vec<i64> = (1..=10).collect();
        assert_eq!(quintile_cuts(&mut v), [2, 4, 6, 8]);
        assert_eq!(level(1, &[2, 4, 6, 8]), 1);
        assert_eq!(level(3, &[2, 4, 6, 8]), 2);
        assert_eq!(level(9, &[2, 4, 6, 8]), 5);
        // Ties: most customers buy once.
        let mut f = vec![1, 1, 1, 1, 1, 1, 1, 2, 2, 5];
        let cuts = quintile_cuts(&mut f);
        assert_eq!(level(1, &cuts), 1);
        assert!(level(5, &cuts) > level(2, &cuts));
    }

    #[test]
    fn stages_by_days() {
        let s = LayeringSettings::default();
        let now = 2_000 * DAY_MS;
        let mut p = stats(10, 1, 100, now);
        p.first_order_at = now - 10 * DAY_MS;
        assert_eq!(p.stage(now, &s), Stage::New);
        for (days, stage) in [
            (10, Stage::Active),
            (89, Stage::Active),
            (90, Stage::Silent),
            (200, Stage::Dormant),
            (365, Stage::Churned),
        ] {
            assert_eq!(stats(days, 1, 1, now).stage(now, &s), stage, "{days}");
        }
        assert!(s.check().is_ok());
        let bad = LayeringSettings {
            silent_days: 50,
            ..LayeringSettings::default()
        };
        assert!(bad.check().is_err());
    }

    #[test]
    fn purchase_stats_window_and_repurchase() {
        let now = 1_000 * DAY_MS;
        let ps = [
            Purchase {
                at: now - 500 * DAY_MS,
                amount: 100,
            },
            Purchase {
                at: now - 10 * DAY_MS,
                amount: 50,
            },
            Purchase {
                at: now - 20 * DAY_MS,
                amount: 70,
            },
        ];
        let s = PurchaseStats::of(&ps, now, 365).expect("bought");
        assert_eq!(s.order_count, 3);
        assert_eq!(s.spend, 220);
        assert_eq!((s.window_orders, s.window_spend), (2, 120));
        assert_eq!(s.repurchase_at, Some(now - 20 * DAY_MS));
        assert_eq!(s.recency_days(now), 10);
        assert!(PurchaseStats::of(&[], now, 365).is_none());
    }
}
