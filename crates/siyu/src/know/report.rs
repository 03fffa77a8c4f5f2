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

#[derive(Debug, Clone, Serialize)]
/// People-level figures (buyer records, people, multi-channel people, repeat rates, customers)
/// count identified buyers only; orders and GMV count every order, an unidentified buyer's too.
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

pub async fn overview(db: &Db, tenant_id: TenantId) -> DbResult<Overview> {
    let one = |q: &str| sql(q.to_owned()).bind(tenant_id);
    let (buyer_records,): (i64,) = db
        .fetch_one(&one(&format!(
            "SELECT COUNT(*) FROM (SELECT DISTINCT channel, customer_id FROM orders WHERE tenant_id = $1 AND status IN {PURCHASE_STATUSES} AND buyer_unlinked = 0) t"
        )))
        .await?;
    let (people,): (i64,) = db
        .fetch_one(&one(&format!("SELECT COUNT(DISTINCT customer_id) FROM orders WHERE tenant_id = $1 AND status IN {PURCHASE_STATUSES} AND buyer_unlinked = 0")))
        .await?;
    let (customers,): (i64,) = db
        .fetch_one(&one(
            // Each unlinked order has a customer of its own, and only it: the identified
            // customers are the rest.
            "SELECT (SELECT COUNT(*) FROM customers WHERE tenant_id = $1 AND merged_into IS NULL) \
             - (SELECT COUNT(*) FROM orders WHERE tenant_id = $1 AND buyer_unlinked = 1)",
        ))
        .await?;
    let (merges,): (i64,) = db
        .fetch_one(&one(
            "SELECT COUNT(*) FROM customer_merges WHERE tenant_id = $1",
        ))
        .await?;
    let (multi_channel_people,): (i64,) = db
        .fetch_one(&one(&format!(
            "SELECT COUNT(*) FROM (SELECT customer_id FROM orders WHERE tenant_id = $1 AND status IN {PURCHASE_STATUSES} \
             AND buyer_unlinked = 0 GROUP BY customer_id HAVING COUNT(DISTINCT channel) > 1) t"
        )))
        .await?;
    let channels: Vec<ChannelFigures> = db
        .fetch_all(&one(&format!(
            "SELECT channel, COUNT(*) AS orders, COUNT(DISTINCT CASE WHEN buyer_unlinked = 0 THEN customer_id END) AS buyers, \
             CAST(SUM(amount - refund_amount) AS BIGINT) AS gmv, CAST(SUM(buyer_unlinked) AS BIGINT) AS unlinked_orders \
             FROM orders WHERE tenant_id = $1 AND status IN {PURCHASE_STATUSES} GROUP BY channel ORDER BY gmv DESC"
        )))
        .await?;
    let rates: Vec<(String, i64, i64)> = db
        .fetch_all(&one(&format!(
            "SELECT g, COUNT(*), CAST(SUM(CASE WHEN n >= 2 THEN 1 ELSE 0 END) AS BIGINT) FROM \
             (SELECT customer_id, CASE WHEN channel = 'store' THEN 'store' ELSE 'online' END AS g, COUNT(*) AS n \
              FROM orders WHERE tenant_id = $1 AND status IN {PURCHASE_STATUSES} AND buyer_unlinked = 0 GROUP BY customer_id, CASE WHEN channel = 'store' THEN 'store' ELSE 'online' END) t \
             GROUP BY g"
        )))
        .await?;
    let rate = |group: &str| {
        let (b, r) = rates
            .iter()
            .find(|(g, _, _)| g == group)
            .map(|(_, b, r)| (*b, *r))
            .unwrap_or((0, 0));
        RepeatRate {
            buyers: b,
            repeat_buyers: r,
            rate: if b > 0 { r as f64 / b as f64 } else { 0.0 },
        }
    };
    Ok(Overview {
        buyer_records,
        people,
        customers,
        merges,
        multi_channel_people,
        orders: channels.iter().map(|c| c.orders).sum(),
        gmv: channels.iter().map(|c| c.gmv).sum(),
        online: rate("online"),
        store: rate("store"),
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
