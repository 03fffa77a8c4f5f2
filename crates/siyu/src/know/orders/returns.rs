//! Store return receipts (退货单): each names the sale it returns, and the sale's refund follows
//! the returns the store holds.

use crate::platform::TenantId;
use foldhash::{HashMap, HashSet};

use super::OrderRecord;
use crate::platform::db::{DbResult, Value};

/// Brings the refunds of sales that have return receipts up to the sum of their returns: the
/// sales these returns name, and sales of this chunk that returns stored earlier named (a
/// return imported before its sale). Computed from the stored returns, never added, so storing
/// the same rows again changes nothing; a sale's own refund column counts when it is larger.
/// A sale returned in full is `refunded`.
pub(super) async fn apply_returns(
    tx: &mut crate::platform::db::Tx,
    tenant_id: TenantId,
    orders: &[OrderRecord],
) -> DbResult<()> {
    // Channels whose stored orders hold a return (an indexed read; none for most tenants and
    // every marketplace channel), and those this chunk brings returns in.
    let mut with_returns: HashSet<String> = HashSet::default();
    with_returns.extend(
        tx
        .fetch_all::<(String,)>(
            &crate::platform::db::sql(
                "SELECT DISTINCT channel FROM orders WHERE tenant_id = $1 AND refund_of IS NOT NULL",
            )
            .bind(tenant_id),
        )
        .await?
        .into_iter()
        .map(|(c,)| c),
    );
    with_returns.extend(
        orders
            .iter()
            .filter(|o| o.refund_of.is_some())
            .map(|o| o.channel.clone()),
    );
    if with_returns.is_empty() {
        return Ok(());
    }
    let mut by_channel: HashMap<&str, Vec<Value>> = HashMap::default();
    for o in orders.iter().filter(|o| with_returns.contains(&o.channel)) {
        let sales = by_channel.entry(o.channel.as_str()).or_default();
        match &o.refund_of {
            Some(sale) => sales.push(sale.as_str().into()),
            None => sales.push(o.order_no.as_str().into()),
        }
    }
    // Returns that went through (`refunded`); a voided or held one refunds nothing.
    const RETURNS: &str = "FROM orders r WHERE r.tenant_id = orders.tenant_id \
         AND r.channel = orders.channel AND r.refund_of = orders.order_no AND r.status = 'refunded'";
    for (channel, sales) in by_channel {
        tx.execute_in(
            &format!(
                "UPDATE orders SET refund_amount = CASE \
                   WHEN (SELECT COALESCE(SUM(r.amount), 0) {RETURNS}) >= amount THEN amount \
                   WHEN (SELECT COALESCE(SUM(r.amount), 0) {RETURNS}) > refund_amount \
                     THEN (SELECT COALESCE(SUM(r.amount), 0) {RETURNS}) \
                   ELSE refund_amount END \
                 WHERE tenant_id = $1 AND channel = $2 AND refund_of IS NULL \
                   AND EXISTS (SELECT 1 {RETURNS}) AND order_no"
            ),
            &[tenant_id.into(), channel.into()],
            sales.clone(),
        )
        .await?;
        // Its text goes with it: a status map saved later re-reads the texts it keeps, and
        // must not read a sale returned in full as the completed sale its row once said.
        tx.execute_in(
            &format!(
                "UPDATE orders SET status = 'refunded', status_text = NULL \
                 WHERE tenant_id = $1 AND channel = $2 AND refund_of IS NULL AND amount > 0 \
                   AND refund_amount >= amount AND status IN ('paid', 'shipped', 'completed') \
                   AND EXISTS (SELECT 1 {RETURNS}) AND order_no"
            ),
            &[tenant_id.into(), channel.into()],
            sales,
        )
        .await?;
    }
    Ok(())
}
