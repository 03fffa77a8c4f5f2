//! The set of customers each condition selects, from tag, attribute, RFM score, stage, channel,
//! purchase-bin and per-day event bitmaps.

use std::borrow::Cow;

use roaring::{MultiOps, RoaringBitmap};

use super::*;
use crate::rfm::Stage;
use crate::rule::{AttrOp, EventTest, Rule, last_order_bounds};

pub(super) fn union_of<'a>(sets: Vec<&'a RoaringBitmap>) -> Set<'a> {
    match sets.len() {
        0 => Cow::Owned(RoaringBitmap::new()),
        1 => Cow::Borrowed(sets[0]),
        _ => Cow::Owned(sets.union()),
    }
}

impl<'a> Query<'a> {
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
            Rule::ChannelOrders(o) => {
                let figures = ix.channel_figures.get(&o.channel);
                let mut set: RoaringBitmap = figures
                    .into_iter()
                    .flatten()
                    .filter(|(_, f)| self.channel_figures_match(o, f))
                    .map(|(id, _)| *id)
                    .collect();
                if o.matches_none() {
                    // The channel's bitmap holds the same customers as its figures.
                    set |= match ix.channels.get(&o.channel) {
                        Some(bought) => &ix.universe - bought,
                        None => ix.universe.clone(),
                    };
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

    pub(super) fn event_days(&self, e: &EventTest) -> Vec<&'a RoaringBitmap> {
        let first = self.today - (e.days as i32 - 1);
        match self.ix.events.get(&e.kind) {
            Some(days) => days.range(first..).map(|(_, d)| &d.seen).collect(),
            None => Vec::new(),
        }
    }
}
