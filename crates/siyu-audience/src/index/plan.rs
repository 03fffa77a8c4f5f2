//! Answering a rule cheaply: ordering an AND's conditions by estimated size, intersecting from the
//! smallest, testing few candidates one by one, and counting the last step without building it.

use std::borrow::Cow;

use roaring::RoaringBitmap;

use super::*;
use crate::rfm::Stage;
use crate::rule::{AttrOp, Rule, last_order_bounds};

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
    pub(super) fn count_overlap(&self, cand: &RoaringBitmap, c: &Rule) -> u64 {
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
    pub(super) fn narrow<'c>(&self, cand: &'c RoaringBitmap, c: &Rule) -> Cow<'c, RoaringBitmap> {
        match c {
            Rule::Orders(o) if !self.non_buyer_matches(o) => Cow::Owned(cand & &self.ix.buyers),
            // Only those who bought on the channel can meet it.
            Rule::ChannelOrders(o) if !o.matches_none() => match self.ix.channels.get(&o.channel) {
                Some(bought) => Cow::Owned(cand & bought),
                None => Cow::Owned(RoaringBitmap::new()),
            },
            _ => Cow::Borrowed(cand),
        }
    }

    pub(super) fn filter_set(&self, cand: &RoaringBitmap, c: &Rule) -> RoaringBitmap {
        let base = self.narrow(cand, c);
        let kept = match c {
            Rule::Orders(o) if !self.non_buyer_matches(o) => RoaringBitmap::from_sorted_iter(
                base.iter().filter(|id| self.buyer_orders_match(o, *id)),
            ),
            _ => RoaringBitmap::from_sorted_iter(base.iter().filter(|id| self.test(c, *id))),
        };
        kept.unwrap_or_default()
    }

    pub(super) fn filter_count(&self, cand: &RoaringBitmap, c: &Rule) -> u64 {
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

    pub(super) fn plan<'r>(&self, children: &'r [Rule]) -> Vec<&'r Rule> {
        let mut order: Vec<(u64, &Rule)> = children.iter().map(|r| (self.estimate(r), r)).collect();
        order.sort_by_key(|(e, _)| *e);
        order.into_iter().map(|(_, r)| r).collect()
    }

    pub(super) fn and_of(&self, order: &[&Rule]) -> Set<'a> {
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
    pub(super) fn filter_is_cheaper(&self, cand: &RoaringBitmap, c: &Rule) -> bool {
        cand.len().saturating_mul(8) <= self.estimate(c)
    }

    /// Whether a rule's set comes from bitmap operations alone.
    pub(super) fn cheap(&self, rule: &Rule) -> bool {
        match rule {
            Rule::And(rs) | Rule::Or(rs) => rs.iter().all(|r| self.cheap(r)),
            Rule::Not(r) => self.cheap(r),
            Rule::Attr(a) => !matches!(a.op(), Ok(AttrOp::Range(_))),
            Rule::Orders(_) | Rule::ChannelOrders(_) => false,
            Rule::Event(e) => e.min_times == 1,
            _ => true,
        }
    }

    /// An upper bound of a rule's size, used to order work.
    pub(super) fn estimate(&self, rule: &Rule) -> u64 {
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
            Rule::ChannelOrders(o) if o.matches_none() => all,
            Rule::ChannelOrders(o) => ix
                .channel_figures
                .get(&o.channel)
                .map_or(0, |m| m.len() as u64),
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
}
