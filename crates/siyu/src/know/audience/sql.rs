//! A rule as SQL over the store: the reference the audience index is tested against, and what
//! the benchmark compares it with. Every predicate is two-valued (never NULL), so `not` means
//! the same here as in the index.

use crate::know::orders::PURCHASE_STATUSES;
use crate::know::rfm::Stage;
use crate::know::rule::{AttrOp, Range, Rule, last_order_bounds};
use crate::platform::TenantId;
use crate::platform::db::{Db, DbResult, Sql, Value, sql};

use super::event_window_start;

struct Builder {
    args: Vec<Value>,
    tenant: TenantId,
    now: i64,
}

impl Builder {
    /// A new parameter, numbered in order of appearance (SQLite takes them as `?`).
    fn arg(&mut self, v: impl Into<Value>) -> String {
        self.args.push(v.into());
        format!("${}", self.args.len())
    }

    fn tenant(&mut self) -> String {
        let t = self.tenant;
        self.arg(t)
    }

    fn list<T: Clone + Into<Value>>(&mut self, vs: &[T]) -> String {
        if vs.is_empty() {
            return "NULL".into();
        }
        vs.iter()
            .map(|v| self.arg(v.clone()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn range(&mut self, expr: &str, r: &Range) -> String {
        let mut parts = Vec::new();
        if let Some(min) = r.min {
            parts.push(format!("{expr} >= {}", self.arg(min)));
        }
        if let Some(max) = r.max {
            parts.push(format!("{expr} <= {}", self.arg(max)));
        }
        if parts.is_empty() {
            "1 = 1".into()
        } else {
            parts.join(" AND ")
        }
    }

    fn cond(&mut self, rule: &Rule) -> String {
        match rule {
            Rule::And(rs) if rs.is_empty() => "1 = 1".into(),
            Rule::Or(rs) if rs.is_empty() => "1 = 0".into(),
            Rule::And(rs) => format!(
                "({})",
                rs.iter()
                    .map(|r| self.cond(r))
                    .collect::<Vec<_>>()
                    .join(" AND ")
            ),
            Rule::Or(rs) => format!(
                "({})",
                rs.iter()
                    .map(|r| self.cond(r))
                    .collect::<Vec<_>>()
                    .join(" OR ")
            ),
            Rule::Not(r) => format!("NOT ({})", self.cond(r)),
            Rule::Tags(t) => {
                let mut parts = Vec::new();
                if !t.any.is_empty() {
                    let (tn, l) = (self.tenant(), self.list(&t.any));
                    parts.push(format!(
                        "EXISTS (SELECT 1 FROM customer_tags ct WHERE ct.tenant_id = {tn} AND ct.customer_id = c.id AND ct.tag_id IN ({l}))"
                    ));
                }
                for id in &t.all {
                    let (tn, id) = (self.tenant(), self.arg(*id));
                    parts.push(format!(
                        "EXISTS (SELECT 1 FROM customer_tags ct WHERE ct.tenant_id = {tn} AND ct.customer_id = c.id AND ct.tag_id = {id})"
                    ));
                }
                if !t.none.is_empty() {
                    let (tn, l) = (self.tenant(), self.list(&t.none));
                    parts.push(format!(
                        "NOT EXISTS (SELECT 1 FROM customer_tags ct WHERE ct.tenant_id = {tn} AND ct.customer_id = c.id AND ct.tag_id IN ({l}))"
                    ));
                }
                format!("({})", parts.join(" AND "))
            }
            Rule::Attr(a) => {
                let (tn, name) = (self.tenant(), self.arg(a.name.as_str()));
                let head = format!(
                    "SELECT 1 FROM customer_attributes ca WHERE ca.tenant_id = {tn} AND ca.customer_id = c.id AND ca.name = {name}"
                );
                match a.op() {
                    Ok(AttrOp::In(vs)) => {
                        let l = self.list(&vs);
                        format!("EXISTS ({head} AND ca.value IN ({l}))")
                    }
                    Ok(AttrOp::Range(r)) => {
                        let cond = self.range("ca.num", &r);
                        format!("EXISTS ({head} AND ca.num IS NOT NULL AND {cond})")
                    }
                    Ok(AttrOp::Exists(true)) => format!("EXISTS ({head})"),
                    Ok(AttrOp::Exists(false)) => format!("NOT EXISTS ({head})"),
                    Err(_) => "1 = 0".into(),
                }
            }
            Rule::Rfm(t) => {
                let mut parts = vec!["s.customer_id IS NOT NULL".to_owned()];
                if !t.class.is_empty() {
                    let names: Vec<&str> = t.class.iter().map(|c| c.as_str()).collect();
                    parts.push(format!("s.rfm_class IN ({})", self.list(&names)));
                }
                for (col, r) in [("s.r_score", t.r), ("s.f_score", t.f), ("s.m_score", t.m)] {
                    if let Some(r) = r {
                        parts.push(self.range(col, &r));
                    }
                }
                format!("({})", parts.join(" AND "))
            }
            Rule::Stage(stages) => {
                let names: Vec<&str> = stages
                    .iter()
                    .filter(|s| **s != Stage::Prospect)
                    .map(|s| s.as_str())
                    .collect();
                let buyers = if names.is_empty() {
                    "1 = 0".to_owned()
                } else {
                    format!(
                        "(s.customer_id IS NOT NULL AND s.stage IN ({}))",
                        self.list(&names)
                    )
                };
                if stages.contains(&Stage::Prospect) {
                    format!("(s.customer_id IS NULL OR {buyers})")
                } else {
                    buyers
                }
            }
            Rule::Channel(cs) => {
                let (tn, l) = (self.tenant(), self.list(cs));
                format!(
                    "EXISTS (SELECT 1 FROM orders o WHERE o.tenant_id = {tn} AND o.customer_id = c.id \
                     AND o.channel IN ({l}) AND o.status IN {PURCHASE_STATUSES})"
                )
            }
            Rule::Orders(o) => {
                let mut parts = Vec::new();
                if let Some(r) = &o.count {
                    parts.push(self.range("COALESCE(s.order_count, 0)", r));
                }
                if let Some(r) = &o.spend {
                    parts.push(self.range("COALESCE(s.spend, 0)", r));
                }
                if let Some(r) = &o.aov {
                    let cond = self.range("s.spend / s.order_count", r);
                    parts.push(format!(
                        "(s.customer_id IS NOT NULL AND s.order_count > 0 AND {cond})"
                    ));
                }
                if let Some(r) = &o.last_order_days {
                    let (lo, hi) = last_order_bounds(r, self.now);
                    let (lo, hi) = (self.arg(lo), self.arg(hi));
                    parts.push(format!(
                        "(s.customer_id IS NOT NULL AND s.last_order_at >= {lo} AND s.last_order_at <= {hi})"
                    ));
                }
                format!("({})", parts.join(" AND "))
            }
            Rule::ChannelOrders(o) => {
                // Each figure from the channel's purchase orders; no order there is a count and
                // spend of 0 and no last order.
                let of = |this: &mut Self, what: &str| {
                    let (tn, ch) = (this.tenant(), this.arg(o.channel.as_str()));
                    format!(
                        "(SELECT {what} FROM orders o WHERE o.tenant_id = {tn} AND o.customer_id = c.id \
                         AND o.channel = {ch} AND o.status IN {PURCHASE_STATUSES})"
                    )
                };
                let mut parts = Vec::new();
                if let Some(r) = &o.count {
                    let e = of(self, "COUNT(*)");
                    parts.push(self.range(&e, r));
                }
                if let Some(r) = &o.spend {
                    let e = of(self, "COALESCE(SUM(o.amount - o.refund_amount), 0)");
                    parts.push(self.range(&e, r));
                }
                if let Some(r) = &o.last_order_days {
                    let e = of(self, "MAX(o.ordered_at)");
                    let (lo, hi) = last_order_bounds(r, self.now);
                    let (lo, hi) = (self.arg(lo), self.arg(hi));
                    // Two-valued: no order there (MAX is NULL) is false, so `not` holds for it.
                    parts.push(format!("({e} IS NOT NULL AND {e} >= {lo} AND {e} <= {hi})"));
                }
                format!("({})", parts.join(" AND "))
            }
            Rule::Bought(b) => {
                let tn = self.tenant();
                let mut any = Vec::new();
                if !b.category.is_empty() {
                    any.push(format!("l.category IN ({})", self.list(&b.category)));
                }
                if !b.sku.is_empty() {
                    any.push(format!("l.sku IN ({})", self.list(&b.sku)));
                }
                format!(
                    "EXISTS (SELECT 1 FROM orders o JOIN order_lines l ON l.order_id = o.id \
                     WHERE o.tenant_id = {tn} AND o.customer_id = c.id AND o.status IN {PURCHASE_STATUSES} AND ({}))",
                    any.join(" OR ")
                )
            }
            Rule::Event(e) => {
                let tn = self.tenant();
                let kind = self.arg(e.kind.as_str());
                let since = self.arg(event_window_start(e.days, self.now));
                let n = self.arg(i64::from(e.min_times));
                let sub = format!(
                    "SELECT ev.customer_id FROM events ev WHERE ev.tenant_id = {tn} AND ev.type = {kind} \
                     AND ev.occurred_at >= {since} AND ev.customer_id IS NOT NULL \
                     GROUP BY ev.customer_id HAVING count(*) >= {n}"
                );
                if e.did {
                    format!("c.id IN ({sub})")
                } else {
                    format!("c.id NOT IN ({sub})")
                }
            }
            Rule::Tier(tiers) => {
                let (tn, l) = (self.tenant(), self.list(tiers));
                format!(
                    "EXISTS (SELECT 1 FROM members m WHERE m.tenant_id = {tn} AND m.customer_id = c.id AND m.tier IN ({l}))"
                )
            }
            Rule::Identity(kinds) => {
                let (tn, l) = (self.tenant(), self.list(kinds));
                format!(
                    "EXISTS (SELECT 1 FROM identities i WHERE i.tenant_id = {tn} AND i.customer_id = c.id AND i.kind IN ({l}))"
                )
            }
        }
    }
}

/// `SELECT <what> FROM customers c LEFT JOIN customer_stats s … WHERE <rule>` for a tenant.
pub fn select(what: &str, tenant: TenantId, rule: &Rule, now: i64) -> Sql {
    let mut b = Builder {
        args: Vec::new(),
        tenant,
        now,
    };
    let t1 = b.tenant();
    let cond = b.cond(rule);
    let mut q = sql(format!(
        "SELECT {what} FROM customers c LEFT JOIN customer_stats s ON s.tenant_id = c.tenant_id AND s.customer_id = c.id \
         WHERE c.tenant_id = {t1} AND c.merged_into IS NULL AND {cond}"
    ));
    for v in b.args {
        q.push_arg(v);
    }
    q
}

/// Counts a rule's members with SQL.
pub async fn count(db: &Db, tenant: TenantId, rule: &Rule, now: i64) -> DbResult<u64> {
    let (n,): (i64,) = db.fetch_one(&select("count(*)", tenant, rule, now)).await?;
    Ok(n as u64)
}

/// A rule's members with SQL, in id order.
pub async fn members(db: &Db, tenant: TenantId, rule: &Rule, now: i64) -> DbResult<Vec<i64>> {
    let rows: Vec<(i64,)> = db.fetch_all(&select("c.id", tenant, rule, now)).await?;
    let mut ids: Vec<i64> = rows.into_iter().map(|r| r.0).collect();
    ids.sort_unstable();
    Ok(ids)
}
