//! Segment rules (人群圈选): one JSON rule tree of `and` / `or` / `not` over predicates, used by the
//! API, the console, rule tags, and later campaigns and journeys. The audience index and the SQL
//! translation both evaluate it and must agree; a property test holds them to that.
//!
//! ```json
//! {"and": [
//!   {"channel": ["tmall"]},
//!   {"orders": {"count": {"min": 2}, "aov": {"min": 30000}, "last_order_days": {"min": 90, "max": 180}}},
//!   {"not": {"identity": ["external_userid"]}}
//! ]}
//! ```

use serde::{Deserialize, Serialize};

use crate::identity_kind::IdentityKind;
use crate::rfm::{RfmClass, Stage};

/// The longest event window a rule may ask for; the audience index keeps this many days.
pub const MAX_EVENT_DAYS: u32 = 366;
const MAX_DEPTH: usize = 12;
const MAX_NODES: usize = 256;
const MAX_LIST: usize = 1000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Rule {
    /// All of; an empty list matches everyone.
    And(Vec<Rule>),
    /// Any of; an empty list matches no one.
    Or(Vec<Rule>),
    Not(Box<Rule>),
    Tags(TagTest),
    Attr(AttrTest),
    Rfm(RfmTest),
    /// Lifecycle stage is one of these.
    Stage(Vec<Stage>),
    /// Bought in any of these channels.
    Channel(Vec<String>),
    Orders(OrdersTest),
    /// Orders on one channel: "2+ orders on Tmall", "spent ¥500 at JD", "bought in store in the
    /// last 90 days". Someone who never bought there has count and spend 0 and no last order.
    ChannelOrders(ChannelOrdersTest),
    Bought(BoughtTest),
    Event(EventTest),
    /// Holds an identity of any of these kinds (e.g. `external_userid`: a WeCom contact;
    /// `member_no`: a member).
    Identity(Vec<String>),
    /// A member in any of these tiers.
    Tier(Vec<String>),
}

/// Tags by id. Every list given must hold: `any` at least one, `all` every one, `none` not one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagTest {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub any: Vec<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub all: Vec<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub none: Vec<i64>,
}

/// An inclusive range; either end may be open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Range {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<i64>,
}

impl Range {
    pub fn contains(&self, v: i64) -> bool {
        self.min.is_none_or(|m| v >= m) && self.max.is_none_or(|m| v <= m)
    }
}

/// A customer attribute (set through the API): exactly one of `eq`, `in`, `range`, `exists`.
/// Values compare as text; `range` compares attributes whose value is an integer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttrTest {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eq: Option<serde_json::Value>,
    #[serde(default, rename = "in", skip_serializing_if = "Option::is_none")]
    pub in_: Option<Vec<serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<Range>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exists: Option<bool>,
}

/// What an attribute test asks, once checked.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrOp {
    In(Vec<String>),
    Range(Range),
    Exists(bool),
}

impl AttrTest {
    pub fn op(&self) -> Result<AttrOp, String> {
        let given = [
            self.eq.is_some(),
            self.in_.is_some(),
            self.range.is_some(),
            self.exists.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if given != 1 {
            return Err("give exactly one of eq, in, range, exists".into());
        }
        if let Some(v) = &self.eq {
            return Ok(AttrOp::In(vec![attr_text(v)?]));
        }
        if let Some(vs) = &self.in_ {
            return Ok(AttrOp::In(
                vs.iter().map(attr_text).collect::<Result<_, _>>()?,
            ));
        }
        if let Some(r) = self.range {
            return Ok(AttrOp::Range(r));
        }
        Ok(AttrOp::Exists(self.exists.unwrap_or(true)))
    }
}

/// An attribute value as stored: strings as they are, numbers and booleans as their JSON text.
pub fn attr_text(v: &serde_json::Value) -> Result<String, String> {
    match v {
        serde_json::Value::String(s) => Ok(s.clone()),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        serde_json::Value::Bool(b) => Ok(b.to_string()),
        _ => Err(format!("{v} is not a string, number or boolean")),
    }
}

/// RFM class and scores (1–5). Every part given must hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RfmTest {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub class: Vec<RfmClass>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r: Option<Range>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub f: Option<Range>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub m: Option<Range>,
}

/// Purchases over all time: count, spend and average order value in fen, and days since the
/// last purchase. Every part given must hold; a customer who never bought has count 0 and
/// spend 0, and no AOV or last purchase.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrdersTest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<Range>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spend: Option<Range>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aov: Option<Range>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_order_days: Option<Range>,
}

/// A channel's purchases of one customer, each given range holding: order count, spend (fen,
/// after refunds) and days since the last order there.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelOrdersTest {
    pub channel: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<Range>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spend: Option<Range>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_order_days: Option<Range>,
}

impl ChannelOrdersTest {
    /// Whether someone who never bought on the channel matches: count and spend 0, and no
    /// last order to be recent.
    pub fn matches_none(&self) -> bool {
        self.last_order_days.is_none()
            && self.count.is_none_or(|r| r.contains(0))
            && self.spend.is_none_or(|r| r.contains(0))
    }
}

/// Bought any of these categories or SKUs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoughtTest {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub category: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sku: Vec<String>,
}

/// Did (or, with `did: false`, did not) do `type` at least `min_times` in the last `days` days:
/// today (China time) and the `days - 1` days before it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventTest {
    #[serde(rename = "type")]
    pub kind: String,
    pub days: u32,
    #[serde(default = "one")]
    pub min_times: u32,
    #[serde(default = "yes")]
    pub did: bool,
}

fn one() -> u32 {
    1
}
fn yes() -> bool {
    true
}

/// A rule that cannot be evaluated, with where in the tree and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rule {path}: {reason}")]
pub struct RuleError {
    pub path: String,
    pub reason: String,
}

impl Rule {
    /// Parses and checks a rule from JSON.
    pub fn from_json(v: &serde_json::Value) -> Result<Rule, RuleError> {
        let rule: Rule = serde_json::from_value(v.clone()).map_err(|e| RuleError {
            path: "$".into(),
            reason: e.to_string(),
        })?;
        rule.check()?;
        Ok(rule)
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// Checks limits and that every predicate says something.
    pub fn check(&self) -> Result<(), RuleError> {
        let mut nodes = 0;
        self.check_at("$", 0, &mut nodes)
    }

    fn check_at(&self, path: &str, depth: usize, nodes: &mut usize) -> Result<(), RuleError> {
        let err = |reason: String| {
            Err(RuleError {
                path: path.to_owned(),
                reason,
            })
        };
        *nodes += 1;
        if depth > MAX_DEPTH {
            return err(format!("nested deeper than {MAX_DEPTH}"));
        }
        if *nodes > MAX_NODES {
            return err(format!("more than {MAX_NODES} conditions"));
        }
        let range = |name: &str, r: &Option<Range>| -> Result<(), RuleError> {
            if let Some(r) = r {
                if r.min.is_none() && r.max.is_none() {
                    return Err(RuleError {
                        path: format!("{path}.{name}"),
                        reason: "give min, max or both".into(),
                    });
                }
                if let (Some(a), Some(b)) = (r.min, r.max)
                    && a > b
                {
                    return Err(RuleError {
                        path: format!("{path}.{name}"),
                        reason: format!("min {a} is greater than max {b}"),
                    });
                }
            }
            Ok(())
        };
        let list = |len: usize| -> Result<(), RuleError> {
            if len > MAX_LIST {
                return Err(RuleError {
                    path: path.to_owned(),
                    reason: format!("more than {MAX_LIST} values"),
                });
            }
            Ok(())
        };
        match self {
            Rule::And(rs) | Rule::Or(rs) => {
                let op = if matches!(self, Rule::And(_)) {
                    "and"
                } else {
                    "or"
                };
                for (i, r) in rs.iter().enumerate() {
                    r.check_at(&format!("{path}.{op}[{i}]"), depth + 1, nodes)?;
                }
            }
            Rule::Not(r) => r.check_at(&format!("{path}.not"), depth + 1, nodes)?,
            Rule::Tags(t) => {
                if t.any.is_empty() && t.all.is_empty() && t.none.is_empty() {
                    return err("tags: give any, all or none".into());
                }
                list(t.any.len() + t.all.len() + t.none.len())?;
            }
            Rule::Attr(a) => {
                if a.name.trim().is_empty() || a.name.trim() != a.name {
                    return err("attr: name is empty or has spaces around it".into());
                }
                match a.op() {
                    Ok(AttrOp::In(v)) => list(v.len())?,
                    Ok(AttrOp::Range(_)) => range("attr.range", &a.range)?,
                    Ok(AttrOp::Exists(_)) => {}
                    Err(e) => return err(format!("attr: {e}")),
                }
            }
            Rule::Rfm(t) => {
                if t.class.is_empty() && t.r.is_none() && t.f.is_none() && t.m.is_none() {
                    return err("rfm: give class, r, f or m".into());
                }
                range("rfm.r", &t.r)?;
                range("rfm.f", &t.f)?;
                range("rfm.m", &t.m)?;
            }
            Rule::Stage(s) => {
                if s.is_empty() {
                    return err("stage: the list is empty".into());
                }
            }
            Rule::Channel(c) => {
                if c.is_empty() {
                    return err("channel: the list is empty".into());
                }
                list(c.len())?;
            }
            Rule::Orders(o) => {
                if o.count.is_none()
                    && o.spend.is_none()
                    && o.aov.is_none()
                    && o.last_order_days.is_none()
                {
                    return err("orders: give count, spend, aov or last_order_days".into());
                }
                range("orders.count", &o.count)?;
                range("orders.spend", &o.spend)?;
                range("orders.aov", &o.aov)?;
                range("orders.last_order_days", &o.last_order_days)?;
            }
            Rule::ChannelOrders(o) => {
                if o.channel.trim().is_empty() {
                    return err("channel_orders: channel is empty".into());
                }
                if o.count.is_none() && o.spend.is_none() && o.last_order_days.is_none() {
                    return err("channel_orders: give count, spend or last_order_days".into());
                }
                range("channel_orders.count", &o.count)?;
                range("channel_orders.spend", &o.spend)?;
                range("channel_orders.last_order_days", &o.last_order_days)?;
            }
            Rule::Bought(b) => {
                if b.category.is_empty() && b.sku.is_empty() {
                    return err("bought: give category or sku".into());
                }
                list(b.category.len() + b.sku.len())?;
            }
            Rule::Event(e) => {
                if e.kind.trim().is_empty() {
                    return err("event: type is empty".into());
                }
                if e.days == 0 || e.days > MAX_EVENT_DAYS {
                    return err(format!("event: days must be 1–{MAX_EVENT_DAYS}"));
                }
                if e.min_times == 0 || e.min_times > 10_000 {
                    return err("event: min_times must be 1–10000".into());
                }
            }
            Rule::Tier(t) => {
                if t.is_empty() {
                    return err("tier: the list is empty".into());
                }
                list(t.len())?;
            }
            Rule::Identity(kinds) => {
                if kinds.is_empty() {
                    return err("identity: the list is empty".into());
                }
                for k in kinds {
                    if IdentityKind::parse(k).is_none() {
                        return err(format!("identity: unknown kind {k:?}"));
                    }
                }
            }
        }
        Ok(())
    }

    /// Every tag id the rule names.
    pub fn tag_ids(&self) -> Vec<i64> {
        let mut out = Vec::new();
        self.visit(&mut |r| {
            if let Rule::Tags(t) = r {
                out.extend(t.any.iter().chain(&t.all).chain(&t.none).copied());
            }
        });
        out
    }

    fn visit(&self, f: &mut impl FnMut(&Rule)) {
        f(self);
        match self {
            Rule::And(rs) | Rule::Or(rs) => rs.iter().for_each(|r| r.visit(f)),
            Rule::Not(r) => r.visit(f),
            _ => {}
        }
    }
}

/// `[lo, hi]` for `last_order_at` such that whole days since it (now − t, floored) fall in `r`.
/// Both evaluators use these bounds, so they agree to the millisecond.
pub fn last_order_bounds(r: &Range, now: i64) -> (i64, i64) {
    const DAY: i64 = 86_400_000;
    let hi = r
        .min
        .map_or(i64::MAX, |d| now.saturating_sub(d.saturating_mul(DAY)));
    let lo = r.max.map_or(i64::MIN, |d| {
        now.saturating_sub(d.saturating_add(1).saturating_mul(DAY))
            .saturating_add(1)
    });
    (lo, hi)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_the_operators_example() {
        let v = json!({"and": [
            {"channel": ["tmall"]},
            {"orders": {"count": {"min": 2}, "aov": {"min": 30000}, "last_order_days": {"min": 90, "max": 180}}},
            {"not": {"identity": ["external_userid"]}}
        ]});
        let r = Rule::from_json(&v).expect("valid");
        assert_eq!(r.to_json(), v);
    }

    #[test]
    fn errors_name_the_place_and_reason() {
        let e = Rule::from_json(
            &json!({"and": [{"stage": ["new"]}, {"orders": {"count": {"min": 5, "max": 2}}}]}),
        )
        .expect_err("min > max");
        assert_eq!(e.path, "$.and[1].orders.count");
        assert!(e.reason.contains("greater"), "{e}");
        let e = Rule::from_json(&json!({"event": {"type": "view", "days": 0}})).expect_err("days");
        assert!(e.reason.contains("days"), "{e}");
        let e = Rule::from_json(&json!({"identity": ["qq"]})).expect_err("kind");
        assert!(e.reason.contains("qq"), "{e}");
        let e = Rule::from_json(&json!({"attr": {"name": "city", "eq": "上海", "exists": true}}))
            .expect_err("two ops");
        assert!(e.reason.contains("exactly one"), "{e}");
        let e = Rule::from_json(&json!({"colour": "red"})).expect_err("unknown");
        assert_eq!(e.path, "$");
        let e = Rule::from_json(&json!({"channel_orders": {"channel": "tmall"}}))
            .expect_err("no figure");
        assert!(e.reason.contains("give count"), "{e}");
        let e = Rule::from_json(&json!({"channel_orders": {"channel": "", "count": {"min": 1}}}))
            .expect_err("no channel");
        assert!(e.reason.contains("channel is empty"), "{e}");
    }

    #[test]
    fn orders_on_a_channel_read_and_say_who_never_bought_there_matches() {
        let v = json!({"channel_orders": {"channel": "tmall", "count": {"min": 2}}});
        let r = Rule::from_json(&v).expect("parses");
        assert_eq!(serde_json::to_value(&r).expect("writes"), v);
        let Rule::ChannelOrders(o) = r else {
            panic!("a channel_orders rule")
        };
        assert!(!o.matches_none(), "two orders there is not none");
        let none = ChannelOrdersTest {
            channel: "jd".into(),
            count: Some(Range {
                min: None,
                max: Some(0),
            }),
            ..Default::default()
        };
        assert!(none.matches_none(), "never bought on JD");
        let recent = ChannelOrdersTest {
            last_order_days: Some(Range {
                min: None,
                max: Some(30),
            }),
            ..none.clone()
        };
        assert!(!recent.matches_none(), "no last order is not a recent one");
    }

    #[test]
    fn last_order_bounds_match_whole_days() {
        const DAY: i64 = 86_400_000;
        let now = 1_000 * DAY + 5_000;
        let r = Range {
            min: Some(90),
            max: Some(180),
        };
        let (lo, hi) = last_order_bounds(&r, now);
        for t in [lo - 1, lo, lo + 1, hi - 1, hi, hi + 1, now - 100 * DAY] {
            let days = (now - t).div_euclid(DAY);
            assert_eq!(t >= lo && t <= hi, r.contains(days), "t={t} days={days}");
        }
    }
}
