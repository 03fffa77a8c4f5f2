//! Keeping one tenant's bitmaps: adding loaded facts and counted events, taking customers out,
//! pruning old event days, setting rule tags, and measuring the index's size.

use std::collections::HashMap;

use roaring::RoaringBitmap;

use super::*;
use crate::local_day;
use crate::rfm::{ALL_STAGES, Stage};

pub(super) fn bump(map: &mut HashMap<String, RoaringBitmap>, key: &str, id: u32) {
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
        for (id, c, figures) in f.channel_figures.into_iter().filter(|f| live.contains(f.0)) {
            match self.channel_figures.get_mut(&c) {
                Some(m) => {
                    m.insert(id, figures);
                }
                None => {
                    self.channel_figures
                        .insert(c, HashMap::from([(id, figures)]));
                }
            }
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
        for m in self.channel_figures.values_mut() {
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

    /// The categories, SKUs and member tiers held, each with how many customers it names, the
    /// most common first and at most `limit` of each: what a segment builder offers to pick.
    pub fn bought_values(&self, limit: usize) -> [Vec<(String, u64)>; 3] {
        let top = |m: &HashMap<String, RoaringBitmap>| {
            let mut v: Vec<(String, u64)> = m
                .iter()
                .filter(|(_, b)| !b.is_empty())
                .map(|(k, b)| (k.clone(), b.len()))
                .collect();
            v.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            v.truncate(limit);
            v
        };
        [top(&self.categories), top(&self.skus), top(&self.tiers)]
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
        // A customer id and its figures per entry, and the table's control byte.
        bytes += self
            .channel_figures
            .values()
            .map(|m| m.capacity() * (std::mem::size_of::<(u32, ChannelFigures)>() + 1))
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
