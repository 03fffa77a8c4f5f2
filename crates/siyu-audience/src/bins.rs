//! Binned bitmaps for a numeric column: each customer sits in the bitmap of its value's bin. A
//! range is the union of the bins wholly inside it plus the members of its two edge bins whose
//! value passes, so a range over millions costs bitmap unions and two small scans.

use std::collections::BTreeMap;

use roaring::{MultiOps, RoaringBitmap};

/// How values map to bins; both keep order (a ≤ b ⇒ bin(a) ≤ bin(b)).
#[derive(Debug, Clone, Copy, Default)]
pub enum Scale {
    /// Exact below 16, then 16 bins per doubling (values within 1/16 of each other share one):
    /// counts and money.
    #[default]
    Log,
    /// Fixed-width bins: times, by day.
    Linear(i64),
}

impl Scale {
    pub fn bin(self, v: i64) -> i64 {
        match self {
            Scale::Linear(w) => v.div_euclid(w),
            Scale::Log if v < 0 => -1 - log_bin(v.unsigned_abs()),
            Scale::Log => log_bin(v as u64),
        }
    }
}

fn log_bin(u: u64) -> i64 {
    if u < 16 {
        return u as i64;
    }
    let bits = 64 - i64::from(u.leading_zeros()); // ≥ 5
    let next4 = ((u >> (bits - 5)) & 0b1111) as i64;
    16 + (bits - 5) * 16 + next4
}

#[derive(Debug, Default)]
pub struct Bins {
    scale: Scale,
    map: BTreeMap<i64, RoaringBitmap>,
}

impl Bins {
    pub fn new(scale: Scale) -> Bins {
        Bins {
            scale,
            map: BTreeMap::new(),
        }
    }

    pub fn insert(&mut self, id: u32, v: i64) {
        self.map.entry(self.scale.bin(v)).or_default().insert(id);
    }

    pub fn remove(&mut self, ids: &RoaringBitmap) {
        self.map.retain(|_, b| {
            *b -= ids;
            !b.is_empty()
        });
    }

    /// Members whose value lies in `[min, max]`; `value` reads a member's value (for the edge
    /// bins only).
    pub fn range(
        &self,
        min: Option<i64>,
        max: Option<i64>,
        value: impl Fn(u32) -> i64,
    ) -> RoaringBitmap {
        let lo = min.map(|v| self.scale.bin(v));
        let hi = max.map(|v| self.scale.bin(v));
        if let (Some(a), Some(b)) = (lo, hi)
            && a > b
        {
            return RoaringBitmap::new();
        }
        let keys = match (lo, hi) {
            (Some(a), Some(b)) => self.map.range(a..=b),
            (Some(a), None) => self.map.range(a..),
            (None, Some(b)) => self.map.range(..=b),
            (None, None) => self.map.range(..),
        };
        let mut whole = Vec::new();
        let mut edges = RoaringBitmap::new();
        let inside = |v: i64| min.is_none_or(|m| v >= m) && max.is_none_or(|m| v <= m);
        for (k, b) in keys {
            if Some(*k) == lo || Some(*k) == hi {
                edges |= RoaringBitmap::from_sorted_iter(b.iter().filter(|id| inside(value(*id))))
                    .unwrap_or_default();
            } else {
                whole.push(b);
            }
        }
        whole.push(&edges);
        whole.union()
    }

    /// How many of `cand` have a value in `[min, max]`, without building the range: the bins
    /// are disjoint, so this is the sum of each bin's overlap with `cand`.
    pub fn count_in(
        &self,
        cand: &RoaringBitmap,
        min: Option<i64>,
        max: Option<i64>,
        value: impl Fn(u32) -> i64,
    ) -> u64 {
        let lo = min.map(|v| self.scale.bin(v));
        let hi = max.map(|v| self.scale.bin(v));
        if let (Some(a), Some(b)) = (lo, hi)
            && a > b
        {
            return 0;
        }
        let keys = match (lo, hi) {
            (Some(a), Some(b)) => self.map.range(a..=b),
            (Some(a), None) => self.map.range(a..),
            (None, Some(b)) => self.map.range(..=b),
            (None, None) => self.map.range(..),
        };
        let inside = |v: i64| min.is_none_or(|m| v >= m) && max.is_none_or(|m| v <= m);
        keys.map(|(k, b)| {
            if Some(*k) == lo || Some(*k) == hi {
                (cand & b).iter().filter(|id| inside(value(*id))).count() as u64
            } else {
                cand.intersection_len(b)
            }
        })
        .sum()
    }

    pub fn bitmaps(&self) -> impl Iterator<Item = &RoaringBitmap> {
        self.map.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn bins_keep_order(a in any::<i64>(), b in any::<i64>()) {
            let (a, b) = (a.min(b), a.max(b));
            prop_assert!(Scale::Log.bin(a) <= Scale::Log.bin(b));
            prop_assert!(Scale::Linear(86_400_000).bin(a) <= Scale::Linear(86_400_000).bin(b));
        }

        #[test]
        fn range_agrees_with_a_scan(
            values in proptest::collection::vec(-100_000i64..1_000_000, 1..300),
            min in proptest::option::of(-200_000i64..1_200_000),
            max in proptest::option::of(-200_000i64..1_200_000),
        ) {
            let mut bins = Bins::new(Scale::Log);
            for (i, v) in values.iter().enumerate() {
                bins.insert(i as u32, *v);
            }
            let got = bins.range(min, max, |id| values[id as usize]);
            let want: RoaringBitmap = values
                .iter()
                .enumerate()
                .filter(|(_, v)| min.is_none_or(|m| **v >= m) && max.is_none_or(|m| **v <= m))
                .map(|(i, _)| i as u32)
                .collect();
            prop_assert_eq!(&got, &want);
            let cand: RoaringBitmap = (0..values.len() as u32).filter(|i| i % 3 != 0).collect();
            prop_assert_eq!(
                bins.count_in(&cand, min, max, |id| values[id as usize]),
                (&want & &cand).len()
            );
        }
    }
}
