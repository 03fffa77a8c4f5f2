//! One tenant's audience index: roaring bitmaps per tag and per attribute bucket, columns for
//! numeric figures, and per-day bitmaps for events. It answers a rule by starting from its
//! smallest sets, intersecting bitmaps where it can and testing single customers where a
//! condition is a range over a column, and counts without building the last set.

mod maintain;
mod per_customer;
mod plan;
mod sets;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use roaring::RoaringBitmap;

use crate::bins::{Bins, Scale};
use crate::rfm::DAY_MS;
use crate::rfm::{RfmClass, Stage};
use crate::rule::Range;

/// A dense column of values by customer id, starting at the smallest id it holds.
#[derive(Debug, Default, Clone)]
pub struct Column<T> {
    base: u32,
    values: Vec<T>,
}

impl<T: Copy + Default> Column<T> {
    pub fn set(&mut self, id: u32, v: T) {
        if self.values.is_empty() {
            self.base = id;
        } else if id < self.base {
            let shift = (self.base - id) as usize;
            let mut grown = vec![T::default(); shift];
            grown.extend_from_slice(&self.values);
            self.values = grown;
            self.base = id;
        }
        let i = (id - self.base) as usize;
        if i >= self.values.len() {
            self.values.resize(i + 1, T::default());
        }
        self.values[i] = v;
    }

    pub fn get(&self, id: u32) -> T {
        id.checked_sub(self.base)
            .and_then(|i| self.values.get(i as usize))
            .copied()
            .unwrap_or_default()
    }

    fn bytes(&self) -> usize {
        self.values.capacity() * std::mem::size_of::<T>()
    }
}

/// Purchase figures and scores of one customer, as the store keeps them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StatsFact {
    pub order_count: i64,
    pub spend: i64,
    pub last_order_at: i64,
    pub r: u8,
    pub f: u8,
    pub m: u8,
    pub class: RfmClass,
    pub stage: Stage,
}

/// One customer's purchases on one channel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChannelFigures {
    pub order_count: u32,
    /// Fen, after refunds.
    pub spend: i64,
    pub last_order_at: i64,
}

/// Everything the index holds about some customers, loaded from the store.
#[derive(Debug, Default)]
pub struct Facts {
    /// Live (not merged) customers.
    pub customers: Vec<u32>,
    pub stats: Vec<(u32, StatsFact)>,
    pub tags: Vec<(u32, i64)>,
    pub kinds: Vec<(u32, String)>,
    /// Member tiers.
    pub tiers: Vec<(u32, String)>,
    pub channels: Vec<(u32, String)>,
    /// (customer, channel, figures) for each channel a customer bought on.
    pub channel_figures: Vec<(u32, String, ChannelFigures)>,
    pub categories: Vec<(u32, String)>,
    pub skus: Vec<(u32, String)>,
    /// (customer, name, value, value as integer)
    pub attrs: Vec<(u32, String, String, Option<i64>)>,
    /// (customer, type, occurred_at)
    pub events: Vec<(u32, String, i64)>,
}

/// Customers who did an event type on one day; `extra` holds counts beyond the first.
#[derive(Debug, Default)]
struct DayEvents {
    seen: RoaringBitmap,
    extra: HashMap<u32, u32>,
}

impl DayEvents {
    fn count(&self, id: u32) -> u32 {
        if self.seen.contains(id) {
            1 + self.extra.get(&id).copied().unwrap_or(0)
        } else {
            0
        }
    }
    fn set(&mut self, id: u32, n: u32) {
        if n == 0 {
            self.seen.remove(id);
            self.extra.remove(&id);
        } else {
            self.seen.insert(id);
            if n > 1 {
                self.extra.insert(id, n - 1);
            } else {
                self.extra.remove(&id);
            }
        }
    }
}

#[derive(Debug, Default)]
pub struct TenantIndex {
    pub universe: RoaringBitmap,
    /// Customers with at least one purchase (a row of purchase figures).
    buyers: RoaringBitmap,
    tags: HashMap<i64, RoaringBitmap>,
    kinds: HashMap<String, RoaringBitmap>,
    tiers: HashMap<String, RoaringBitmap>,
    channels: HashMap<String, RoaringBitmap>,
    /// Purchases per channel, of those who bought there.
    channel_figures: HashMap<String, HashMap<u32, ChannelFigures>>,
    categories: HashMap<String, RoaringBitmap>,
    skus: HashMap<String, RoaringBitmap>,
    classes: [RoaringBitmap; 8],
    /// [r, f, m][score - 1]
    scores: [[RoaringBitmap; 5]; 3],
    stages: [RoaringBitmap; 6],
    attr_text: HashMap<String, HashMap<String, RoaringBitmap>>,
    attr_num: HashMap<String, HashMap<u32, i64>>,
    attr_bins: HashMap<String, Bins>,
    attr_exists: HashMap<String, RoaringBitmap>,
    order_count: Column<u32>,
    spend: Column<i64>,
    last_order_at: Column<i64>,
    count_bins: Bins,
    spend_bins: Bins,
    aov_bins: Bins,
    last_bins: DayBins,
    events: HashMap<String, BTreeMap<i32, DayEvents>>,
}

/// Sizes for the operator and the benchmark.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct IndexSize {
    pub customers: u64,
    pub bitmaps: u64,
    pub bytes: u64,
}

/// Evaluates rules against one index at one moment.
pub struct Query<'a> {
    ix: &'a TenantIndex,
    now: i64,
    today: i32,
}

type Set<'a> = Cow<'a, RoaringBitmap>;

fn score_range(r: &Range) -> std::ops::RangeInclusive<usize> {
    let lo = r.min.unwrap_or(1).clamp(1, 6) as usize;
    let hi = r.max.unwrap_or(5).clamp(0, 5) as usize;
    lo..=hi
}

/// Bins of last purchase times, by day.
#[derive(Debug)]
struct DayBins(Bins);

impl Default for DayBins {
    fn default() -> Self {
        DayBins(Bins::new(Scale::Linear(DAY_MS)))
    }
}
