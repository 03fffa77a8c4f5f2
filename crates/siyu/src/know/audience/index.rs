//! One tenant's audience index: roaring bitmaps per tag and per attribute bucket, columns for
//! numeric figures, and per-day bitmaps for events. It answers a rule by starting from its
//! smallest sets, intersecting bitmaps where it can and testing single customers where a
//! condition is a range over a column, and counts without building the last set.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use roaring::{MultiOps, RoaringBitmap};

use crate::know::rfm::{ALL_STAGES, RfmClass, Stage};
use crate::know::rule::{AttrOp, EventTest, OrdersTest, Range, Rule, last_order_bounds};

use super::bins::{Bins, Scale};
use super::local_day;
use crate::know::rfm::DAY_MS;

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

fn bump(map: &mut HashMap<String, RoaringBitmap>, key: &str, id: u32) {
    match map.get_mut(key) {
        Some(b) => {
            b.insert(id);
        }
        None => {
            map.insert(key.to_owned(), RoaringBitmap::from_iter([id]));
        }
    }
}

impl TenantIndex {
    /// Adds facts for customers not in the index (a build, or after [`Self::remove`]).
    pub fn insert(&mut self, f: Facts) {
        // Facts of a customer not live in this load (merged meanwhile) are left out.
        let live: RoaringBitmap = f.customers.iter().copied().collect();
        self.universe |= &live;
        for (id, s) in f.stats.into_iter().filter(|f| live.contains(f.0)) {
            self.buyers.insert(id);
            self.order_count
                .set(id, u32::try_from(s.order_count).unwrap_or(u32::MAX));
            self.spend.set(id, s.spend);
            self.last_order_at.set(id, s.last_order_at);
            self.count_bins.insert(id, s.order_count);
            self.spend_bins.insert(id, s.spend);
            if s.order_count > 0 {
                self.aov_bins.insert(id, s.spend / s.order_count);
            }
            self.last_bins.0.insert(id, s.last_order_at);
            self.classes[s.class.index()].insert(id);
            for (d, score) in [s.r, s.f, s.m].into_iter().enumerate() {
                if (1..=5).contains(&score) {
                    self.scores[d][score as usize - 1].insert(id);
                }
            }
            self.stages[s.stage.index()].insert(id);
        }
        for (id, tag) in f.tags.into_iter().filter(|f| live.contains(f.0)) {
            self.tags.entry(tag).or_default().insert(id);
        }
        for (id, k) in f.kinds.into_iter().filter(|f| live.contains(f.0)) {
            bump(&mut self.kinds, &k, id);
        }
        for (id, t) in f.tiers.into_iter().filter(|f| live.contains(f.0)) {
            bump(&mut self.tiers, &t, id);
        }
        for (id, c) in f.channels.into_iter().filter(|f| live.contains(f.0)) {
            bump(&mut self.channels, &c, id);
        }
        for (id, c) in f.categories.into_iter().filter(|f| live.contains(f.0)) {
            bump(&mut self.categories, &c, id);
        }
        for (id, c) in f.skus.into_iter().filter(|f| live.contains(f.0)) {
            bump(&mut self.skus, &c, id);
        }
        for (id, name, value, num) in f.attrs.into_iter().filter(|f| live.contains(f.0)) {
            bump(&mut self.attr_exists, &name, id);
            let by_value = self.attr_text.entry(name.clone()).or_default();
            bump(by_value, &value, id);
            if let Some(n) = num {
                self.attr_bins
                    .entry(name.clone())
                    .or_default()
                    .insert(id, n);
                self.attr_num.entry(name).or_default().insert(id, n);
            }
        }
        let events: Vec<_> = f
            .events
            .into_iter()
            .filter(|e| live.contains(e.0))
            .collect();
        self.add_events(&events);
    }

    /// Counts events on top of those held (each event once: a repeat would count twice).
    pub fn add_events<K: AsRef<str>>(&mut self, events: &[(u32, K, i64)]) {
        for (id, kind, at) in events {
            let kind = kind.as_ref();
            let day = local_day(*at);
            let days = match self.events.get_mut(kind) {
                Some(d) => d,
                None => self.events.entry(kind.to_owned()).or_default(),
            };
            let de = days.entry(day).or_default();
            let n = de.count(*id);
            de.set(*id, n + 1);
        }
    }

    /// Takes customers out of every set.
    pub fn remove(&mut self, ids: &RoaringBitmap) {
        if ids.is_empty() {
            return;
        }
        self.universe -= ids;
        self.buyers -= ids;
        let maps = [
            &mut self.kinds,
            &mut self.tiers,
            &mut self.channels,
            &mut self.categories,
            &mut self.skus,
            &mut self.attr_exists,
        ];
        for m in maps {
            for b in m.values_mut() {
                *b -= ids;
            }
        }
        for b in self.tags.values_mut() {
            *b -= ids;
        }
        for b in self.classes.iter_mut().chain(self.stages.iter_mut()) {
            *b -= ids;
        }
        for d in self.scores.iter_mut() {
            for b in d.iter_mut() {
                *b -= ids;
            }
        }
        for m in self.attr_text.values_mut() {
            for b in m.values_mut() {
                *b -= ids;
            }
        }
        for b in [
            &mut self.count_bins,
            &mut self.spend_bins,
            &mut self.aov_bins,
            &mut self.last_bins.0,
        ] {
            b.remove(ids);
        }
        for b in self.attr_bins.values_mut() {
            b.remove(ids);
        }
        for m in self.attr_num.values_mut() {
            for id in ids {
                m.remove(&id);
            }
        }
        for days in self.events.values_mut() {
            for de in days.values_mut() {
                if !de.seen.is_disjoint(ids) {
                    de.seen -= ids;
                    for id in ids {
                        de.extra.remove(&id);
                    }
                }
            }
        }
    }

    /// Drops event days before `first_day`.
    pub fn prune_events(&mut self, first_day: i32) {
        for days in self.events.values_mut() {
            *days = days.split_off(&first_day);
        }
    }

    pub fn tag(&self, tag_id: i64) -> Option<&RoaringBitmap> {
        self.tags.get(&tag_id)
    }

    pub fn set_tag(&mut self, tag_id: i64, add: &RoaringBitmap, remove: &RoaringBitmap) {
        let b = self.tags.entry(tag_id).or_default();
        *b -= remove;
        *b |= add;
        *b &= &self.universe;
    }

    pub fn drop_tag(&mut self, tag_id: i64) {
        self.tags.remove(&tag_id);
    }

    pub fn class_sizes(&self) -> [u64; 8] {
        std::array::from_fn(|i| self.classes[i].len())
    }

    pub fn stage_sizes(&self) -> [u64; 6] {
        std::array::from_fn(|i| {
            if ALL_STAGES[i] == Stage::Prospect {
                self.universe.len() - self.buyers.len()
            } else {
                self.stages[i].len()
            }
        })
    }

    pub fn size(&self) -> IndexSize {
        let mut bitmaps = 0u64;
        let mut bytes = 0usize;
        let mut add = |b: &RoaringBitmap| {
            bitmaps += 1;
            bytes += b.serialized_size();
        };
        add(&self.universe);
        add(&self.buyers);
        self.tags.values().for_each(&mut add);
        for m in [
            &self.kinds,
            &self.tiers,
            &self.channels,
            &self.categories,
            &self.skus,
            &self.attr_exists,
        ] {
            m.values().for_each(&mut add);
        }
        self.attr_text
            .values()
            .for_each(|m| m.values().for_each(&mut add));
        self.classes.iter().for_each(&mut add);
        self.stages.iter().for_each(&mut add);
        for b in [
            &self.count_bins,
            &self.spend_bins,
            &self.aov_bins,
            &self.last_bins.0,
        ]
        .into_iter()
        .chain(self.attr_bins.values())
        {
            b.bitmaps().for_each(&mut add);
        }
        self.scores.iter().flatten().for_each(&mut add);
        let mut extra = 0usize;
        for days in self.events.values() {
            for de in days.values() {
                add(&de.seen);
                extra += de.extra.capacity() * 8;
            }
        }
        bytes += extra;
        bytes += self.order_count.bytes() + self.spend.bytes() + self.last_order_at.bytes();
        bytes += self
            .attr_num
            .values()
            .map(|m| m.capacity() * 12)
            .sum::<usize>();
        IndexSize {
            customers: self.universe.len(),
            bitmaps,
            bytes: bytes as u64,
        }
    }

    pub fn query(&self, now: i64) -> Query<'_> {
        Query {
            ix: self,
            now,
            today: local_day(now),
        }
    }
}

/// Evaluates rules against one index at one moment.
pub struct Query<'a> {
    ix: &'a TenantIndex,
    now: i64,
    today: i32,
}

type Set<'a> = Cow<'a, RoaringBitmap>;

fn union_of<'a>(sets: Vec<&'a RoaringBitmap>) -> Set<'a> {
    match sets.len() {
        0 => Cow::Owned(RoaringBitmap::new()),
        1 => Cow::Borrowed(sets[0]),
        _ => Cow::Owned(sets.union()),
    }
}

fn score_range(r: &Range) -> std::ops::RangeInclusive<usize> {
    let lo = r.min.unwrap_or(1).clamp(1, 6) as usize;
    let hi = r.max.unwrap_or(5).clamp(0, 5) as usize;
    lo..=hi
}

impl<'a> Query<'a> {
    /// How many customers match.
    pub fn count(&self, rule: &Rule) -> u64 {
        if let Rule::And(children) = rule
            && let order = self.plan(children)
            && let Some((last, rest)) = order.split_last()
            && !rest.is_empty()
        {
            // Build all but the last step, then count the last step's overlap without
            // building it.
            let cand = self.and_of(rest);
            if cand.is_empty() {
                return 0;
            }
            return match last {
                Rule::Not(inner) if self.cheap(inner) => {
                    cand.len() - cand.intersection_len(&self.eval(inner))
                }
                c if self.cheap(c) => cand.intersection_len(&self.eval(c)),
                c if self.filter_is_cheaper(&cand, c) => self.filter_count(&cand, c),
                c => self.count_overlap(&cand, c),
            };
        }
        self.eval(rule).len()
    }

    /// How many of `cand` a range condition selects: one range over binned values is counted
    /// bin by bin, anything else is built and intersected.
    fn count_overlap(&self, cand: &RoaringBitmap, c: &Rule) -> u64 {
        let ix = self.ix;
        let count = |id: u32| i64::from(ix.order_count.get(id));
        let spend = |id: u32| ix.spend.get(id);
        match c {
            Rule::Orders(o) if !self.non_buyer_matches(o) => {
                match (o.count, o.spend, o.aov, o.last_order_days) {
                    (Some(r), None, None, None) => {
                        ix.count_bins.count_in(cand, r.min, r.max, count)
                    }
                    (None, Some(r), None, None) => {
                        ix.spend_bins.count_in(cand, r.min, r.max, spend)
                    }
                    (None, None, Some(r), None) => ix
                        .aov_bins
                        .count_in(cand, r.min, r.max, |id| spend(id) / count(id).max(1)),
                    (None, None, None, Some(r)) => {
                        let (lo, hi) = last_order_bounds(&r, self.now);
                        ix.last_bins
                            .0
                            .count_in(cand, Some(lo), Some(hi), |id| ix.last_order_at.get(id))
                    }
                    _ => cand.intersection_len(&self.eval(c)),
                }
            }
            Rule::Attr(a) => match (a.op(), ix.attr_bins.get(&a.name), ix.attr_num.get(&a.name)) {
                (Ok(AttrOp::Range(r)), Some(bins), Some(values)) => {
                    bins.count_in(cand, r.min, r.max, |id| {
                        values.get(&id).copied().unwrap_or_default()
                    })
                }
                _ => cand.intersection_len(&self.eval(c)),
            },
            _ => cand.intersection_len(&self.eval(c)),
        }
    }

    /// Candidates worth testing one by one for `c`: for a purchase condition no one without
    /// purchases can meet, only buyers.
    fn narrow<'c>(&self, cand: &'c RoaringBitmap, c: &Rule) -> Cow<'c, RoaringBitmap> {
        match c {
            Rule::Orders(o) if !self.non_buyer_matches(o) => Cow::Owned(cand & &self.ix.buyers),
            _ => Cow::Borrowed(cand),
        }
    }

    fn filter_set(&self, cand: &RoaringBitmap, c: &Rule) -> RoaringBitmap {
        let base = self.narrow(cand, c);
        let kept = match c {
            Rule::Orders(o) if !self.non_buyer_matches(o) => RoaringBitmap::from_sorted_iter(
                base.iter().filter(|id| self.buyer_orders_match(o, *id)),
            ),
            _ => RoaringBitmap::from_sorted_iter(base.iter().filter(|id| self.test(c, *id))),
        };
        kept.unwrap_or_default()
    }

    fn filter_count(&self, cand: &RoaringBitmap, c: &Rule) -> u64 {
        let base = self.narrow(cand, c);
        match c {
            Rule::Orders(o) if !self.non_buyer_matches(o) => base
                .iter()
                .filter(|id| self.buyer_orders_match(o, *id))
                .count() as u64,
            _ => base.iter().filter(|id| self.test(c, *id)).count() as u64,
        }
    }

    /// The customers who match.
    pub fn members(&self, rule: &Rule) -> RoaringBitmap {
        self.eval(rule).into_owned()
    }

    fn plan<'r>(&self, children: &'r [Rule]) -> Vec<&'r Rule> {
        let mut order: Vec<(u64, &Rule)> = children.iter().map(|r| (self.estimate(r), r)).collect();
        order.sort_by_key(|(e, _)| *e);
        order.into_iter().map(|(_, r)| r).collect()
    }

    fn and_of(&self, order: &[&Rule]) -> Set<'a> {
        let Some((first, rest)) = order.split_first() else {
            return Cow::Borrowed(&self.ix.universe);
        };
        let mut cand = self.eval(first);
        for child in rest {
            if cand.is_empty() {
                break;
            }
            match child {
                Rule::Not(inner) if self.cheap(inner) => {
                    *cand.to_mut() -= &*self.eval(inner);
                }
                c if self.cheap(c) => {
                    *cand.to_mut() &= &*self.eval(c);
                }
                c if self.filter_is_cheaper(&cand, c) => {
                    cand = Cow::Owned(self.filter_set(&cand, c));
                }
                c => {
                    *cand.to_mut() &= &*self.eval(c);
                }
            }
        }
        cand
    }

    /// Testing candidates one by one beats building a range's set when they are few.
    fn filter_is_cheaper(&self, cand: &RoaringBitmap, c: &Rule) -> bool {
        cand.len().saturating_mul(8) <= self.estimate(c)
    }

    /// Whether a rule's set comes from bitmap operations alone.
    fn cheap(&self, rule: &Rule) -> bool {
        match rule {
            Rule::And(rs) | Rule::Or(rs) => rs.iter().all(|r| self.cheap(r)),
            Rule::Not(r) => self.cheap(r),
            Rule::Attr(a) => !matches!(a.op(), Ok(AttrOp::Range(_))),
            Rule::Orders(_) => false,
            Rule::Event(e) => e.min_times == 1,
            _ => true,
        }
    }

    /// An upper bound of a rule's size, used to order work.
    fn estimate(&self, rule: &Rule) -> u64 {
        let ix = self.ix;
        let all = ix.universe.len();
        let sum = |bs: Vec<&RoaringBitmap>| bs.iter().map(|b| b.len()).sum::<u64>().min(all);
        match rule {
            Rule::And(rs) => rs.iter().map(|r| self.estimate(r)).min().unwrap_or(all),
            Rule::Or(rs) => rs.iter().map(|r| self.estimate(r)).sum::<u64>().min(all),
            Rule::Not(_) => all,
            Rule::Tags(t) => {
                if !t.all.is_empty() {
                    t.all
                        .iter()
                        .map(|id| ix.tags.get(id).map_or(0, |b| b.len()))
                        .min()
                        .unwrap_or(0)
                } else if !t.any.is_empty() {
                    sum(t.any.iter().filter_map(|id| ix.tags.get(id)).collect())
                } else {
                    all
                }
            }
            Rule::Attr(a) => match a.op() {
                Ok(AttrOp::In(vs)) => ix
                    .attr_text
                    .get(&a.name)
                    .map_or(0, |m| sum(vs.iter().filter_map(|v| m.get(v)).collect())),
                Ok(AttrOp::Exists(true)) | Ok(AttrOp::Range(_)) => {
                    ix.attr_exists.get(&a.name).map_or(0, |b| b.len())
                }
                _ => all,
            },
            Rule::Rfm(t) if !t.class.is_empty() => {
                sum(t.class.iter().map(|c| &ix.classes[c.index()]).collect())
            }
            Rule::Rfm(_) => ix.buyers.len(),
            Rule::Stage(s) if s.contains(&Stage::Prospect) => all,
            Rule::Stage(s) => sum(s.iter().map(|s| &ix.stages[s.index()]).collect()),
            Rule::Channel(c) => sum(c.iter().filter_map(|c| ix.channels.get(c)).collect()),
            Rule::Orders(o) if self.non_buyer_matches(o) => all,
            Rule::Orders(_) => ix.buyers.len(),
            Rule::Bought(b) => sum(b
                .category
                .iter()
                .filter_map(|c| ix.categories.get(c))
                .chain(b.sku.iter().filter_map(|s| ix.skus.get(s)))
                .collect()),
            Rule::Event(e) if !e.did => all,
            Rule::Event(e) => sum(self.event_days(e)),
            Rule::Identity(k) => sum(k.iter().filter_map(|k| ix.kinds.get(k)).collect()),
            Rule::Tier(t) => sum(t.iter().filter_map(|t| ix.tiers.get(t)).collect()),
        }
    }

    /// The set of customers a rule selects.
    pub fn eval(&self, rule: &Rule) -> Set<'a> {
        let ix = self.ix;
        match rule {
            Rule::And(rs) => {
                let order = self.plan(rs);
                self.and_of(&order)
            }
            Rule::Or(rs) => {
                let sets: Vec<Set<'a>> = rs.iter().map(|r| self.eval(r)).collect();
                match sets.len() {
                    0 => Cow::Owned(RoaringBitmap::new()),
                    1 => sets.into_iter().next().unwrap_or_default(),
                    _ => Cow::Owned(sets.iter().map(|s| s.as_ref()).union()),
                }
            }
            Rule::Not(r) => Cow::Owned(&ix.universe - &*self.eval(r)),
            Rule::Tags(t) => {
                let mut set: Set<'a> = if t.any.is_empty() {
                    Cow::Borrowed(&ix.universe)
                } else {
                    union_of(t.any.iter().filter_map(|id| ix.tags.get(id)).collect())
                };
                for id in &t.all {
                    match ix.tags.get(id) {
                        Some(b) => *set.to_mut() &= b,
                        None => return Cow::Owned(RoaringBitmap::new()),
                    }
                }
                let none = union_of(t.none.iter().filter_map(|id| ix.tags.get(id)).collect());
                if !none.is_empty() {
                    *set.to_mut() -= &*none;
                }
                set
            }
            Rule::Attr(a) => match a.op() {
                Ok(AttrOp::In(vs)) => match ix.attr_text.get(&a.name) {
                    Some(m) => union_of(vs.iter().filter_map(|v| m.get(v)).collect()),
                    None => Cow::Owned(RoaringBitmap::new()),
                },
                Ok(AttrOp::Range(r)) => Cow::Owned(
                    match (ix.attr_bins.get(&a.name), ix.attr_num.get(&a.name)) {
                        (Some(bins), Some(values)) => bins.range(r.min, r.max, |id| {
                            values.get(&id).copied().unwrap_or_default()
                        }),
                        _ => RoaringBitmap::new(),
                    },
                ),
                Ok(AttrOp::Exists(true)) => ix
                    .attr_exists
                    .get(&a.name)
                    .map_or(Cow::Owned(RoaringBitmap::new()), Cow::Borrowed),
                Ok(AttrOp::Exists(false)) => Cow::Owned(match ix.attr_exists.get(&a.name) {
                    Some(b) => &ix.universe - b,
                    None => ix.universe.clone(),
                }),
                Err(_) => Cow::Owned(RoaringBitmap::new()),
            },
            Rule::Rfm(t) => {
                let mut set: Set<'a> = if t.class.is_empty() {
                    Cow::Borrowed(&ix.buyers)
                } else {
                    union_of(t.class.iter().map(|c| &ix.classes[c.index()]).collect())
                };
                for (d, r) in [t.r, t.f, t.m].iter().enumerate() {
                    if let Some(r) = r {
                        let s = union_of(score_range(r).map(|i| &ix.scores[d][i - 1]).collect());
                        *set.to_mut() &= &*s;
                    }
                }
                set
            }
            Rule::Stage(stages) => {
                let sets: Vec<&RoaringBitmap> = stages
                    .iter()
                    .filter(|s| **s != Stage::Prospect)
                    .map(|s| &ix.stages[s.index()])
                    .collect();
                if stages.contains(&Stage::Prospect) {
                    let mut all = &ix.universe - &ix.buyers;
                    for s in sets {
                        all |= s;
                    }
                    return Cow::Owned(all);
                }
                union_of(sets)
            }
            Rule::Channel(cs) => union_of(cs.iter().filter_map(|c| ix.channels.get(c)).collect()),
            Rule::Orders(o) => {
                let count = |id: u32| i64::from(ix.order_count.get(id));
                let spend = |id: u32| ix.spend.get(id);
                let mut sets = Vec::new();
                if let Some(r) = o.count {
                    sets.push(ix.count_bins.range(r.min, r.max, count));
                }
                if let Some(r) = o.spend {
                    sets.push(ix.spend_bins.range(r.min, r.max, spend));
                }
                if let Some(r) = o.aov {
                    sets.push(
                        ix.aov_bins
                            .range(r.min, r.max, |id| spend(id) / count(id).max(1)),
                    );
                }
                if let Some(r) = o.last_order_days {
                    let (lo, hi) = last_order_bounds(&r, self.now);
                    sets.push(
                        ix.last_bins
                            .0
                            .range(Some(lo), Some(hi), |id| ix.last_order_at.get(id)),
                    );
                }
                let mut set = if sets.is_empty() {
                    ix.buyers.clone()
                } else {
                    sets.intersection()
                };
                if self.non_buyer_matches(o) {
                    set |= &ix.universe - &ix.buyers;
                }
                Cow::Owned(set)
            }
            Rule::Bought(b) => union_of(
                b.category
                    .iter()
                    .filter_map(|c| ix.categories.get(c))
                    .chain(b.sku.iter().filter_map(|s| ix.skus.get(s)))
                    .collect(),
            ),
            Rule::Event(e) => {
                let days = self.event_days(e);
                let mut set = union_of(days);
                if e.min_times > 1 {
                    let kept: RoaringBitmap = set
                        .iter()
                        .filter(|id| self.event_count(e, *id) >= e.min_times)
                        .collect();
                    set = Cow::Owned(kept);
                }
                if e.did {
                    set
                } else {
                    Cow::Owned(&ix.universe - &*set)
                }
            }
            Rule::Identity(ks) => union_of(ks.iter().filter_map(|k| ix.kinds.get(k)).collect()),
            Rule::Tier(ts) => union_of(ts.iter().filter_map(|t| ix.tiers.get(t)).collect()),
        }
    }

    /// Whether one customer matches (used to filter small candidate sets).
    pub fn test(&self, rule: &Rule, id: u32) -> bool {
        let ix = self.ix;
        let has = |b: Option<&RoaringBitmap>| b.is_some_and(|b| b.contains(id));
        match rule {
            Rule::And(rs) => rs.iter().all(|r| self.test(r, id)),
            Rule::Or(rs) => rs.iter().any(|r| self.test(r, id)),
            Rule::Not(r) => ix.universe.contains(id) && !self.test(r, id),
            Rule::Tags(t) => {
                (t.any.is_empty() || t.any.iter().any(|t| has(ix.tags.get(t))))
                    && t.all.iter().all(|t| has(ix.tags.get(t)))
                    && !t.none.iter().any(|t| has(ix.tags.get(t)))
                    && ix.universe.contains(id)
            }
            Rule::Attr(a) => match a.op() {
                Ok(AttrOp::In(vs)) => ix
                    .attr_text
                    .get(&a.name)
                    .is_some_and(|m| vs.iter().any(|v| has(m.get(v)))),
                Ok(AttrOp::Range(r)) => ix
                    .attr_num
                    .get(&a.name)
                    .and_then(|m| m.get(&id))
                    .is_some_and(|v| r.contains(*v)),
                Ok(AttrOp::Exists(e)) => has(ix.attr_exists.get(&a.name)) == e,
                Err(_) => false,
            },
            Rule::Rfm(t) => {
                ix.buyers.contains(id)
                    && (t.class.is_empty()
                        || t.class.iter().any(|c| ix.classes[c.index()].contains(id)))
                    && [t.r, t.f, t.m].iter().enumerate().all(|(d, r)| {
                        r.is_none_or(|r| score_range(&r).any(|i| ix.scores[d][i - 1].contains(id)))
                    })
            }
            Rule::Stage(s) => s.iter().any(|s| match s {
                Stage::Prospect => !ix.buyers.contains(id),
                s => ix.stages[s.index()].contains(id),
            }),
            Rule::Channel(cs) => cs.iter().any(|c| has(ix.channels.get(c))),
            Rule::Orders(o) => {
                if ix.buyers.contains(id) {
                    self.buyer_orders_match(o, id)
                } else {
                    self.non_buyer_matches(o)
                }
            }
            Rule::Bought(b) => {
                b.category.iter().any(|c| has(ix.categories.get(c)))
                    || b.sku.iter().any(|s| has(ix.skus.get(s)))
            }
            Rule::Event(e) => (self.event_count(e, id) >= e.min_times) == e.did,
            Rule::Identity(ks) => ks.iter().any(|k| has(ix.kinds.get(k))),
            Rule::Tier(ts) => ts.iter().any(|t| has(ix.tiers.get(t))),
        }
    }

    fn buyer_orders_match(&self, o: &OrdersTest, id: u32) -> bool {
        let ix = self.ix;
        let count = i64::from(ix.order_count.get(id));
        let spend = ix.spend.get(id);
        o.count.is_none_or(|r| r.contains(count))
            && o.spend.is_none_or(|r| r.contains(spend))
            && o.aov.is_none_or(|r| count > 0 && r.contains(spend / count))
            && o.last_order_days.is_none_or(|r| {
                let (lo, hi) = last_order_bounds(&r, self.now);
                let t = ix.last_order_at.get(id);
                t >= lo && t <= hi
            })
    }

    /// A customer who never bought has count 0 and spend 0, and no AOV or last purchase.
    fn non_buyer_matches(&self, o: &OrdersTest) -> bool {
        o.aov.is_none()
            && o.last_order_days.is_none()
            && o.count.is_none_or(|r| r.contains(0))
            && o.spend.is_none_or(|r| r.contains(0))
    }

    fn event_days(&self, e: &EventTest) -> Vec<&'a RoaringBitmap> {
        let first = self.today - (e.days as i32 - 1);
        match self.ix.events.get(&e.kind) {
            Some(days) => days.range(first..).map(|(_, d)| &d.seen).collect(),
            None => Vec::new(),
        }
    }

    fn event_count(&self, e: &EventTest, id: u32) -> u32 {
        let first = self.today - (e.days as i32 - 1);
        match self.ix.events.get(&e.kind) {
            Some(days) => days.range(first..).map(|(_, d)| d.count(id)).sum(),
            None => 0,
        }
    }
}

/// Bins of last purchase times, by day.
#[derive(Debug)]
struct DayBins(Bins);

impl Default for DayBins {
    fn default() -> Self {
        DayBins(Bins::new(Scale::Linear(DAY_MS)))
    }
}
