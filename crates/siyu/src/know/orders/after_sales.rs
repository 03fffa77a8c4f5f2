//! A marketplace's after-sales cases (售后单): a refund of part or all of an order, read from
//! the platform's after-sales API beside its orders (the order APIs of PDD, JD and Youzan say
//! only whether an order was refunded in full). An order's refund is the sum of its cases that
//! went through, or its own refund when that is larger, computed from the stored cases and
//! never added: reading a case again, or the order again, changes nothing.

use foldhash::{HashMap, HashSet};

use super::OrderRecord;
use crate::platform::db::{Db, DbResult, MAX_BINDS, Tx, Value, sql, values_placeholders};
use crate::platform::{Fen, TenantId};

/// One after-sales case as its platform states it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AfterSale {
    pub channel: String,
    /// The platform's case id (PDD's 售后编号): a case read again replaces itself.
    pub case_ref: String,
    pub order_no: String,
    /// What the case refunds (or would, while it is open).
    pub amount: Fen,
    /// Whether the money went back (PDD's 退款成功); an open or refused case refunds nothing.
    pub succeeded: bool,
    /// When the platform last changed it (UTC milliseconds).
    pub updated_at: i64,
}

/// Stores cases (each replacing its earlier state) and brings the refunds of the orders they
/// name up to date. Returns those orders as (channel, order number), whether stored yet or not.
pub async fn store_after_sales(
    db: &Db,
    tenant_id: TenantId,
    cases: &[AfterSale],
) -> DbResult<Vec<(String, String)>> {
    if cases.is_empty() {
        return Ok(Vec::new());
    }
    // One row a case: a case read twice (pages shifting under the reader) keeps its newest
    // state, and PostgreSQL refuses one statement that would update a row twice.
    let mut newest: HashMap<(&str, &str), &AfterSale> = HashMap::default();
    for c in cases {
        let e = newest
            .entry((c.channel.as_str(), c.case_ref.as_str()))
            .or_insert(c);
        if c.updated_at >= e.updated_at {
            *e = c;
        }
    }
    let cases: Vec<&AfterSale> = newest.into_values().collect();
    let mut tx = db.begin().await?;
    tx.lock_tenant(tenant_id).await?;
    const COLS: usize = 7;
    for chunk in cases.chunks(MAX_BINDS / COLS) {
        let mut q = sql(format!(
            "INSERT INTO after_sales (tenant_id, channel, case_ref, order_no, amount, succeeded, updated_at) \
             VALUES {} ON CONFLICT (tenant_id, channel, case_ref) DO UPDATE SET order_no = excluded.order_no, \
             amount = excluded.amount, succeeded = excluded.succeeded, updated_at = excluded.updated_at \
             WHERE excluded.updated_at >= after_sales.updated_at",
            values_placeholders(chunk.len(), COLS, 1)
        ));
        for c in chunk {
            q.push_arg(tenant_id);
            q.push_arg(c.channel.as_str());
            q.push_arg(c.case_ref.as_str());
            q.push_arg(c.order_no.as_str());
            q.push_arg(c.amount);
            q.push_arg(c.succeeded);
            q.push_arg(c.updated_at);
        }
        tx.execute(&q).await?;
    }
    let mut named: Vec<(String, String)> = cases
        .iter()
        .map(|c| (c.channel.clone(), c.order_no.clone()))
        .collect();
    named.sort_unstable();
    named.dedup();
    let mut by_channel: HashMap<&str, Vec<Value>> = HashMap::default();
    for (channel, no) in &named {
        by_channel
            .entry(channel.as_str())
            .or_default()
            .push(no.as_str().into());
    }
    for (channel, orders) in by_channel {
        refund_by_cases(&mut tx, tenant_id, channel, orders).await?;
    }
    tx.commit().await?;
    Ok(named)
}

/// After orders are stored: orders of channels that hold cases get their refunds back from the
/// cases (the order's own refund column was just written over them).
pub(super) async fn apply_after_sales(
    tx: &mut Tx,
    tenant_id: TenantId,
    orders: &[OrderRecord],
) -> DbResult<()> {
    let channels: HashSet<&str> = orders.iter().map(|o| o.channel.as_str()).collect();
    for channel in channels {
        // One index probe: most tenants and channels hold no case.
        let any: Option<(String,)> = tx
            .fetch_optional(
                &sql("SELECT case_ref FROM after_sales WHERE tenant_id = $1 AND channel = $2 LIMIT 1")
                    .bind(tenant_id)
                    .bind(channel),
            )
            .await?;
        if any.is_none() {
            continue;
        }
        let nos: Vec<Value> = orders
            .iter()
            .filter(|o| o.channel == channel)
            .map(|o| o.order_no.as_str().into())
            .collect();
        refund_by_cases(tx, tenant_id, channel, nos).await?;
    }
    Ok(())
}

/// Sets each named order's refund to the sum of its cases that went through, at most its
/// amount and never below its own refund; an order refunded in full becomes `refunded` (its
/// text goes with it, as with a store's returns: a status map saved later must not read it back
/// into the sale its text once said). The cases are read first and each order with one is set
/// by its key: a join of orders to cases let PostgreSQL, before it had statistics for a new
/// shop's rows, loop over every order of the channel for each case.
async fn refund_by_cases(
    tx: &mut Tx,
    tenant_id: TenantId,
    channel: &str,
    order_nos: Vec<Value>,
) -> DbResult<()> {
    let cases: Vec<(String, Fen)> = tx
        .fetch_in(
            "SELECT order_no, amount FROM after_sales WHERE tenant_id = $1 AND channel = $2 \
             AND succeeded = 1 AND order_no",
            &[tenant_id.into(), channel.into()],
            order_nos,
        )
        .await?;
    let mut totals: std::collections::BTreeMap<String, Fen> = Default::default();
    for (no, amount) in cases {
        *totals.entry(no).or_default() += amount;
    }
    // What the order's refund becomes ($4: its cases' sum), from the row before the update.
    const NEW_REFUND: &str = "CASE WHEN $4 >= amount THEN amount \
         WHEN $4 > refund_amount THEN $4 ELSE refund_amount END";
    let in_full = format!(
        "amount > 0 AND ({NEW_REFUND}) >= amount AND status IN ('paid', 'shipped', 'completed')"
    );
    let update = format!(
        "UPDATE orders SET refund_amount = {NEW_REFUND}, \
           status = CASE WHEN {in_full} THEN 'refunded' ELSE status END, \
           status_text = CASE WHEN {in_full} THEN NULL ELSE status_text END \
         WHERE tenant_id = $1 AND channel = $2 AND order_no = $3"
    );
    for (no, total) in totals {
        tx.execute(
            &sql(update.as_str())
                .bind(tenant_id)
                .bind(channel)
                .bind(no)
                .bind(total),
        )
        .await?;
    }
    Ok(())
}
