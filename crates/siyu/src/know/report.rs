//! The first report an operations lead asks for: who the customers are across channels.

use crate::platform::Fen;
use crate::platform::TenantId;
use serde::Serialize;

use super::orders::PURCHASE_STATUSES;
use crate::platform::db::{Db, DbResult, sql};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ChannelFigures {
    pub channel: String,
    pub orders: i64,
    /// Identified buyers (an unidentified buyer cannot be told from another).
    pub buyers: i64,
    /// Net of refunds, fen.
    pub gmv: Fen,
    /// Orders whose buyer is not identified yet (in `orders` and `gmv`, not in `buyers`).
    pub unlinked_orders: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RepeatRate {
    pub buyers: i64,
    pub repeat_buyers: i64,
    /// Repeat buyers ÷ buyers, 0–1.
    pub rate: f64,
}

/// People-level figures (buyer records, people, multi-channel people, repeat rates, customers)
/// count identified buyers only; orders and GMV count every order, an unidentified buyer's too.
#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    /// Buyers counted per channel, as each platform's export knows them (before OneID).
    pub buyer_records: i64,
    /// Distinct people behind those records (after OneID).
    pub people: i64,
    pub customers: i64,
    pub merges: i64,
    pub multi_channel_people: i64,
    pub orders: i64,
    pub gmv: Fen,
    pub channels: Vec<ChannelFigures>,
    pub online: RepeatRate,
    pub store: RepeatRate,
}

/// The order figures of the orders placed in a time span: what the overview shows for a date
/// range. Counted as [`Overview`] counts them, over the span's orders only.
#[derive(Debug, Clone, Serialize)]
pub struct PeriodFigures {
    pub buyer_records: i64,
    pub people: i64,
    pub multi_channel_people: i64,
    pub orders: i64,
    pub gmv: Fen,
    pub channels: Vec<ChannelFigures>,
    /// Buyers of the span with two or more orders in it, online and in store.
    pub online: RepeatRate,
    pub store: RepeatRate,
}

/// Every order ever placed: the import's report.
pub async fn overview(db: &Db, tenant_id: TenantId) -> DbResult<Overview> {
    let p = period_figures(db, tenant_id, i64::MIN, i64::MAX).await?;
    let one = |q: &str| sql(q.to_owned()).bind(tenant_id);
    let (customers,): (i64,) = db
        .fetch_one(&one(
            // Each unlinked order has a customer of its own, and only it: the identified
            // customers are the rest.
            "SELECT (SELECT COUNT(*) FROM customers WHERE tenant_id = $1 AND merged_into IS NULL) \
             - (SELECT COUNT(*) FROM orders WHERE tenant_id = $1 AND buyer_unlinked = 1)",
        ))
        .await?;
    let merges = merges(db, tenant_id).await?;
    Ok(Overview {
        buyer_records: p.buyer_records,
        people: p.people,
        customers,
        merges,
        multi_channel_people: p.multi_channel_people,
        orders: p.orders,
        gmv: p.gmv,
        channels: p.channels,
        online: p.online,
        store: p.store,
    })
}

/// Records OneID has merged into another person, ever.
pub async fn merges(db: &Db, tenant_id: TenantId) -> DbResult<i64> {
    let (n,): (i64,) = db
        .fetch_one(
            &sql("SELECT COUNT(*) FROM customer_merges WHERE tenant_id = $1").bind(tenant_id),
        )
        .await?;
    Ok(n)
}

/// The figures of the orders placed from `from` (inclusive) to `to` (exclusive), UTC ms.
pub async fn period_figures(
    db: &Db,
    tenant_id: TenantId,
    from: i64,
    to: i64,
) -> DbResult<PeriodFigures> {
    let span = |q: String| sql(q).bind(tenant_id).bind(from).bind(to);
    let placed = format!(
        "tenant_id = $1 AND ordered_at >= $2 AND ordered_at < $3 AND status IN {PURCHASE_STATUSES}"
    );
    // A sum as BIGINT on both backends, 0 over no rows.
    let total = |e: &str| format!("CAST(COALESCE(SUM({e}), 0) AS BIGINT)");
    // One pass over the span's buyers: each person's channels and orders online and in store.
    let (
        people,
        buyer_records,
        multi_channel_people,
        online_buyers,
        online_repeat,
        store_buyers,
        store_repeat,
    ): (i64, i64, i64, i64, i64, i64, i64) = db
        .fetch_one(&span(format!(
            "SELECT COUNT(*), {}, {}, {}, {}, {}, {} FROM \
             (SELECT customer_id, COUNT(DISTINCT channel) AS nc, \
              SUM(CASE WHEN channel <> 'store' THEN 1 ELSE 0 END) AS o, \
              SUM(CASE WHEN channel = 'store' THEN 1 ELSE 0 END) AS st \
              FROM orders WHERE {placed} AND buyer_unlinked = 0 GROUP BY customer_id) t",
            total("nc"),
            total("CASE WHEN nc > 1 THEN 1 ELSE 0 END"),
            total("CASE WHEN o > 0 THEN 1 ELSE 0 END"),
            total("CASE WHEN o >= 2 THEN 1 ELSE 0 END"),
            total("CASE WHEN st > 0 THEN 1 ELSE 0 END"),
            total("CASE WHEN st >= 2 THEN 1 ELSE 0 END"),
        )))
        .await?;
    let channels: Vec<ChannelFigures> = db
        .fetch_all(&span(format!(
            "SELECT channel, COUNT(*) AS orders, COUNT(DISTINCT CASE WHEN buyer_unlinked = 0 THEN customer_id END) AS buyers, \
             CAST(SUM(amount - refund_amount) AS BIGINT) AS gmv, CAST(SUM(buyer_unlinked) AS BIGINT) AS unlinked_orders \
             FROM orders WHERE {placed} GROUP BY channel ORDER BY gmv DESC"
        )))
        .await?;
    let rate = |buyers: i64, repeat_buyers: i64| RepeatRate {
        buyers,
        repeat_buyers,
        rate: if buyers > 0 {
            repeat_buyers as f64 / buyers as f64
        } else {
            0.0
        },
    };
    Ok(PeriodFigures {
        buyer_records,
        people,
        multi_channel_people,
        orders: channels.iter().map(|c| c.orders).sum(),
        gmv: channels.iter().map(|c| c.gmv).sum(),
        online: rate(online_buyers, online_repeat),
        store: rate(store_buyers, store_repeat),
        channels,
    })
}

/// Fen as yuan for spreadsheets (CSV exports): `1234.50`, `-0.50`, no grouping or symbol.
pub fn plain_yuan(fen: Fen) -> String {
    let fen = fen.get();
    let sign = if fen < 0 { "-" } else { "" };
    let f = fen.unsigned_abs();
    format!("{sign}{}.{:02}", f / 100, f % 100)
}

/// Fen as yuan for people: `¥1,299.00`.
pub fn yuan(fen: Fen) -> String {
    let fen = fen.get();
    let neg = fen < 0;
    let f = fen.unsigned_abs();
    let whole = (f / 100).to_string();
    let mut grouped = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{}¥{}.{:02}", if neg { "-" } else { "" }, grouped, f % 100)
}

#[cfg(test)]
mod tests {
    use crate::platform::Fen;

    #[test]
    fn plain_yuan_keeps_the_sign_of_small_amounts() {
        assert_eq!(super::plain_yuan(Fen::new(-50)), "-0.50");
        assert_eq!(super::plain_yuan(Fen::new(123_450)), "1234.50");
    }

    #[test]
    fn yuan_groups_thousands() {
        assert_eq!(super::yuan(Fen::new(129_900)), "¥1,299.00");
        assert_eq!(super::yuan(Fen::new(5)), "¥0.05");
        assert_eq!(super::yuan(Fen::new(12_345_678_901)), "¥123,456,789.01");
        assert_eq!(super::yuan(Fen::new(-100)), "-¥1.00");
    }
}
