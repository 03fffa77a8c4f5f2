//! Whether one customer matches a rule, read from the columns and bitmaps (to filter small
//! candidate sets), including purchase figures and event counts in a window.

use roaring::RoaringBitmap;

use super::*;
use crate::rfm::Stage;
use crate::rule::{AttrOp, ChannelOrdersTest, EventTest, OrdersTest, Rule, last_order_bounds};

impl<'a> Query<'a> {
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
            Rule::ChannelOrders(o) => self.channel_orders_match(o, id),
            Rule::Bought(b) => {
                b.category.iter().any(|c| has(ix.categories.get(c)))
                    || b.sku.iter().any(|s| has(ix.skus.get(s)))
            }
            Rule::Event(e) => (self.event_count(e, id) >= e.min_times) == e.did,
            Rule::Identity(ks) => ks.iter().any(|k| has(ix.kinds.get(k))),
            Rule::Tier(ts) => ts.iter().any(|t| has(ix.tiers.get(t))),
        }
    }

    pub(super) fn buyer_orders_match(&self, o: &OrdersTest, id: u32) -> bool {
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

    /// Whether the customer's purchases on the rule's channel hold its ranges.
    pub(super) fn channel_orders_match(&self, o: &ChannelOrdersTest, id: u32) -> bool {
        match self
            .ix
            .channel_figures
            .get(&o.channel)
            .and_then(|m| m.get(&id))
        {
            Some(f) => self.channel_figures_match(o, f),
            None => o.matches_none(),
        }
    }

    pub(super) fn channel_figures_match(&self, o: &ChannelOrdersTest, f: &ChannelFigures) -> bool {
        let count = i64::from(f.order_count);
        o.count.is_none_or(|r| r.contains(count))
            && o.spend.is_none_or(|r| r.contains(f.spend))
            && o.last_order_days.is_none_or(|r| {
                let (lo, hi) = last_order_bounds(&r, self.now);
                f.last_order_at >= lo && f.last_order_at <= hi
            })
    }

    /// A customer who never bought has count 0 and spend 0, and no AOV or last purchase.
    pub(super) fn non_buyer_matches(&self, o: &OrdersTest) -> bool {
        o.aov.is_none()
            && o.last_order_days.is_none()
            && o.count.is_none_or(|r| r.contains(0))
            && o.spend.is_none_or(|r| r.contains(0))
    }

    pub(super) fn event_count(&self, e: &EventTest, id: u32) -> u32 {
        let first = self.today - (e.days as i32 - 1);
        match self.ix.events.get(&e.kind) {
            Some(days) => days.range(first..).map(|(_, d)| d.count(id)).sum(),
            None => 0,
        }
    }
}
