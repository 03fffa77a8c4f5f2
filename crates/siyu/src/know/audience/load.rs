//! Reading what the index holds from the store: live customers, purchase figures, tags,
//! identities, bought channels/categories/SKUs, attributes and windowed events, per id range or list.

use super::*;
use crate::know::orders::PURCHASE_STATUSES;
use crate::know::rfm::{RfmClass, Stage};
use crate::know::rule::MAX_EVENT_DAYS;
use crate::platform::TenantId;
use crate::platform::db::{Db, DbResult, Value, list_placeholders, sql};

pub use index::{Facts, StatsFact, TenantIndex};

/// Ids in one load: a range of ids (a build) or a list (a refresh).
pub(super) enum Scope<'a> {
    Range(i64, i64),
    Ids(&'a [i64]),
}

impl Scope<'_> {
    /// `column` restricted to the scope, with its parameters numbered from `first`.
    pub(super) fn clause(&self, column: &str, first: usize) -> (String, Vec<Value>) {
        match self {
            Scope::Range(lo, hi) => (
                format!("{column} >= ${first} AND {column} < ${}", first + 1),
                vec![(*lo).into(), (*hi).into()],
            ),
            Scope::Ids(ids) => (
                format!("{column} IN ({})", list_placeholders(ids.len(), first)),
                ids.iter().map(|i| Value::from(*i)).collect(),
            ),
        }
    }
}

pub(super) async fn fetch<T: crate::platform::db::Row>(
    db: &Db,
    head: &str,
    tenant: TenantId,
    extra: &[Value],
    scope: &Scope<'_>,
    column: &str,
    tail: &str,
) -> DbResult<Vec<T>> {
    let (clause, args) = scope.clause(column, 2 + extra.len());
    let mut q = sql(format!("{head} AND {clause}{tail}")).bind(tenant);
    for v in extra.iter().cloned().chain(args) {
        q.push_arg(v);
    }
    db.fetch_all(&q).await
}

/// (customer, text) rows of a query restricted to the scope by `customer_id`.
pub(super) async fn pairs(
    db: &Db,
    head: &str,
    tenant: TenantId,
    scope: &Scope<'_>,
) -> DbResult<Vec<(u32, String)>> {
    let rows: Vec<(i64, String)> = fetch(db, head, tenant, &[], scope, "customer_id", "").await?;
    Ok(rows
        .into_iter()
        .filter_map(|(c, v)| Some((id32(c)?, v)))
        .collect())
}

/// Loads what the index holds about the customers in `scope`.
pub(super) async fn load_facts(
    db: &Db,
    tenant: TenantId,
    scope: &Scope<'_>,
    now: i64,
) -> DbResult<Facts> {
    let mut f = Facts::default();
    let rows: Vec<(i64,)> = fetch(
        db,
        "SELECT id FROM customers WHERE tenant_id = $1 AND merged_into IS NULL",
        tenant,
        &[],
        scope,
        "id",
        "",
    )
    .await?;
    f.customers = rows.into_iter().filter_map(|r| id32(r.0)).collect();
    type StatsRow = (i64, i64, i64, i64, i64, i64, i64, String, String);
    let rows: Vec<StatsRow> = fetch(
        db,
        "SELECT customer_id, order_count, spend, last_order_at, r_score, f_score, m_score, rfm_class, stage \
         FROM customer_stats WHERE tenant_id = $1",
        tenant,
        &[],
        scope,
        "customer_id",
        "",
    )
    .await?;
    for (id, count, spend, last, r, fs, m, class, stage) in rows {
        let (Some(id), Some(class), Some(stage)) =
            (id32(id), RfmClass::parse(&class), Stage::parse(&stage))
        else {
            tracing::warn!(customer = id, "skipping unreadable purchase figures");
            continue;
        };
        f.stats.push((
            id,
            StatsFact {
                order_count: count,
                spend,
                last_order_at: last,
                r: r as u8,
                f: fs as u8,
                m: m as u8,
                class,
                stage,
            },
        ));
    }
    let rows: Vec<(i64, i64)> = fetch(
        db,
        "SELECT customer_id, tag_id FROM customer_tags WHERE tenant_id = $1",
        tenant,
        &[],
        scope,
        "customer_id",
        "",
    )
    .await?;
    f.tags = rows
        .into_iter()
        .filter_map(|(c, t)| Some((id32(c)?, t)))
        .collect();
    f.kinds = pairs(
        db,
        "SELECT DISTINCT customer_id, kind FROM identities WHERE tenant_id = $1",
        tenant,
        scope,
    )
    .await?;
    f.tiers = pairs(
        db,
        "SELECT customer_id, tier FROM members WHERE tenant_id = $1 AND tier IS NOT NULL",
        tenant,
        scope,
    )
    .await?;
    let rows: Vec<(i64, String, i64, i64, i64)> = fetch(
        db,
        &format!(
            "SELECT customer_id, channel, COUNT(*), CAST(SUM(amount - refund_amount) AS BIGINT), MAX(ordered_at) \
             FROM orders WHERE tenant_id = $1 AND status IN {PURCHASE_STATUSES}"
        ),
        tenant,
        &[],
        scope,
        "customer_id",
        " GROUP BY customer_id, channel",
    )
    .await?;
    f.channel_figures = rows
        .into_iter()
        .filter_map(|(c, ch, n, spend, last)| {
            Some((
                id32(c)?,
                ch,
                index::ChannelFigures {
                    order_count: u32::try_from(n).unwrap_or(u32::MAX),
                    spend,
                    last_order_at: last,
                },
            ))
        })
        .collect();
    // The channels bought in are the channels with figures.
    f.channels = f
        .channel_figures
        .iter()
        .map(|(c, ch, _)| (*c, ch.clone()))
        .collect();
    let rows: Vec<(i64, Option<String>, Option<String>)> = fetch(
        db,
        &format!(
            "SELECT DISTINCT o.customer_id, l.category, l.sku FROM orders o \
             JOIN order_lines l ON l.order_id = o.id \
             WHERE o.tenant_id = $1 AND o.status IN {PURCHASE_STATUSES}"
        ),
        tenant,
        &[],
        scope,
        "o.customer_id",
        "",
    )
    .await?;
    for (c, cat, sku) in rows {
        let Some(c) = id32(c) else { continue };
        if let Some(cat) = cat {
            f.categories.push((c, cat));
        }
        if let Some(sku) = sku {
            f.skus.push((c, sku));
        }
    }
    let rows: Vec<(i64, String, String, Option<i64>)> = fetch(
        db,
        "SELECT customer_id, name, value, num FROM customer_attributes WHERE tenant_id = $1",
        tenant,
        &[],
        scope,
        "customer_id",
        "",
    )
    .await?;
    f.attrs = rows
        .into_iter()
        .filter_map(|(c, n, v, x)| Some((id32(c)?, n, v, x)))
        .collect();
    f.events = load_events(db, tenant, scope, now).await?;
    Ok(f)
}

pub(super) async fn load_events(
    db: &Db,
    tenant: TenantId,
    scope: &Scope<'_>,
    now: i64,
) -> DbResult<Vec<(u32, String, i64)>> {
    let rows: Vec<(i64, String, i64)> = fetch(
        db,
        "SELECT customer_id, type, occurred_at FROM events WHERE tenant_id = $1 AND occurred_at >= $2",
        tenant,
        &[event_window_start(MAX_EVENT_DAYS, now).into()],
        scope,
        "customer_id",
        "",
    )
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(c, t, at)| Some((id32(c)?, t, at)))
        .collect())
}

/// Ids per build query: one roaring container's worth at a time, times four.
pub(super) const BUILD_STEP: i64 = 1 << 18;

/// Builds a tenant's index from the store; `progress` hears (ids done, ids in all).
pub async fn build_index(
    db: &Db,
    tenant: TenantId,
    now: i64,
    mut progress: impl FnMut(u64, u64),
) -> DbResult<TenantIndex> {
    let (lo, hi): (Option<i64>, Option<i64>) = db
        .fetch_one(&sql("SELECT min(id), max(id) FROM customers WHERE tenant_id = $1").bind(tenant))
        .await?;
    let mut ix = TenantIndex::default();
    let (Some(lo), Some(hi)) = (lo, hi) else {
        return Ok(ix);
    };
    let mut at = lo;
    while at <= hi {
        let next = at.saturating_add(BUILD_STEP);
        let facts = load_facts(db, tenant, &Scope::Range(at, next), now).await?;
        ix.insert(facts);
        progress((next.min(hi + 1) - lo) as u64, (hi + 1 - lo) as u64);
        at = next;
    }
    Ok(ix)
}
