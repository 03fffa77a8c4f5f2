//! Orders from every channel, unique per (tenant, channel, order id), and how they are stored.

use foldhash::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use super::identity::{Identity, KeyedIdentity};
use super::oneid::{self, IdentityRecord, ResolveStats};
use crate::platform::crypto::{FieldCipher, TenantLookup};
use crate::platform::db::{Db, DbResult, Value};
use crate::platform::rows::Arg;

/// The largest amount one order may carry, in fen (10 billion yuan): guards sums from overflow.
pub const MAX_FEN: i64 = 1_000_000_000_000;

/// A status as exports write it, made comparable: full-width punctuation as ASCII, no spaces
/// (ASCII or ideographic), English lower-cased, and JD's "(删除)" mark on deleted orders dropped
/// (the order keeps its status).
pub fn normalise_status(s: &str) -> String {
    let mapped: String = s
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| match c {
            '，' | '、' => ',',
            '（' => '(',
            '）' => ')',
            '：' => ':',
            c => c.to_ascii_lowercase(),
        })
        .collect();
    mapped
        .strip_prefix("(删除)")
        .map(str::to_owned)
        .unwrap_or(mapped)
}

/// The statuses that count as a purchase, as an SQL list (see [`OrderStatus::is_purchase`]).
pub const PURCHASE_STATUSES: &str = "('paid','shipped','completed')";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Pending,
    Paid,
    Shipped,
    Completed,
    Refunded,
    Closed,
    /// A status the export wrote that neither Siyu nor the tenant's status map knows: the order
    /// is kept with its text, counts as no purchase, and is re-read when the map names the text.
    Unknown,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "pending",
            OrderStatus::Paid => "paid",
            OrderStatus::Shipped => "shipped",
            OrderStatus::Completed => "completed",
            OrderStatus::Refunded => "refunded",
            OrderStatus::Closed => "closed",
            OrderStatus::Unknown => "unknown",
        }
    }

    /// Reads a status as Chinese seller exports and APIs write it: Tmall/Taobao, JD, Douyin
    /// (抖店), PDD and Youzan wordings, after [`normalise_status`] (so full-width punctuation,
    /// spaces and JD's "(删除)" mark do not matter).
    pub fn parse(s: &str) -> Option<OrderStatus> {
        let s = normalise_status(s);
        Some(match s.as_str() {
            "pending"
            | "等待买家付款"
            | "待付款"
            | "未付款"
            | "等待付款"
            | "待支付"
            | "待确认"
            | "没有创建支付宝交易"
            // A presale whose deposit is paid: a purchase only once the balance is.
            | "买家已付定金,等待付尾款"
            | "已付定金"
            | "待付尾款" => OrderStatus::Pending,
            "paid"
            | "买家已付款"
            | "已付款"
            | "已支付"
            | "待发货"
            | "等待卖家发货"
            | "买家已付款,等待卖家发货"
            | "等待出库"
            | "备货中"
            | "锁定"
            | "已锁定"
            | "等待发货"
            | "待配货"
            | "已支付,待发货" => OrderStatus::Paid,
            "shipped"
            | "卖家已发货"
            | "已发货"
            | "等待确认收货"
            | "待收货"
            | "待签收"
            | "等待买家确认收货"
            | "卖家已发货,等待买家确认"
            | "卖家已发货,等待买家确认收货"
            | "已发货,待签收"
            | "已发货,待收货"
            | "卖家部分发货"
            | "发往配送中心"
            | "配送中心已收货" => OrderStatus::Shipped,
            "completed"
            | "交易成功"
            | "已完成"
            | "完成"
            | "已签收"
            | "已收货"
            | "交易完成"
            | "买家已收货"
            | "买家已签收(货到付款专用)"
            | "待评价"
            | "已结算"
            | "收款确认" => OrderStatus::Completed,
            "refunded"
            | "已退款"
            | "退款成功"
            | "售后完成"
            | "全额退款"
            | "未发货,退款成功"
            | "已发货,退款成功" => OrderStatus::Refunded,
            "closed" | "交易关闭" | "已关闭" | "已取消" | "取消" | "订单关闭" | "交易被淘宝关闭"
            | "已作废" => OrderStatus::Closed,
            "unknown" => OrderStatus::Unknown,
            _ => return None,
        })
    }

    /// Whether the order counts as a purchase (spend, order count, repurchase). SQL uses
    /// [`PURCHASE_STATUSES`], which a test keeps equal to this.
    pub fn is_purchase(self) -> bool {
        matches!(
            self,
            OrderStatus::Paid | OrderStatus::Shipped | OrderStatus::Completed
        )
    }
}

/// The paid and refunded amounts of an order as exports and APIs write them. Some exports
/// (Tmall's closed orders) show a paid order refunded in full with 0.00 paid beside the refund:
/// it was paid what was refunded. A refund larger than a non-zero paid amount is an error.
pub fn settle_amounts(paid: i64, refund: i64) -> Result<(i64, i64), &'static str> {
    let paid = if paid == 0 && refund > 0 {
        refund
    } else {
        paid
    };
    if refund > paid {
        return Err("refund is larger than the amount paid");
    }
    Ok((paid, refund))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    #[serde(default)]
    pub sku: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub category: Option<String>,
    pub quantity: i64,
    /// Unit price in fen.
    pub price: i64,
}

/// An order as the store takes it, from an import row group or the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRecord {
    pub channel: String,
    pub order_no: String,
    pub status: OrderStatus,
    /// The status as the export wrote it, kept when the status is unknown or came from the
    /// tenant's status map (so that a later map re-reads the order).
    pub status_text: Option<String>,
    pub ordered_at: i64,
    pub paid_at: Option<i64>,
    /// Paid amount in fen.
    pub amount: i64,
    pub refund_amount: i64,
    /// A return receipt's sale (its order number in the same channel). The return is stored
    /// refunded in full; the sale's refund becomes at least the sum of its returns.
    pub refund_of: Option<String>,
    pub store_id: Option<String>,
    pub guide_id: Option<String>,
    pub buyer_name: Option<String>,
    /// A masked phone from a marketplace export: shown, never merged on.
    pub phone_hint: Option<String>,
    pub province: Option<String>,
    pub identities: Vec<Identity>,
    pub lines: Vec<OrderLine>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StoreOutcome {
    pub imported: u64,
    pub updated: u64,
    pub customers_created: u64,
    pub customers_merged: u64,
    /// Orders kept with a status nobody has read yet.
    pub unknown_status: u64,
    /// Orders whose buyer is not identified (after this store).
    pub unlinked: u64,
    /// Unlinked buyers merged into the customer their order now names.
    pub buyers_linked: u64,
}

impl StoreOutcome {
    pub fn add(&mut self, o: StoreOutcome) {
        self.imported += o.imported;
        self.updated += o.updated;
        self.customers_created += o.customers_created;
        self.customers_merged += o.customers_merged;
        self.unknown_status += o.unknown_status;
        self.unlinked += o.unlinked;
        self.buyers_linked += o.buyers_linked;
    }
}

/// Identities keyed for storage (encrypting phones), done outside the write transaction.
pub fn key_identities(
    cipher: &FieldCipher,
    lookup: &TenantLookup,
    orders: &[OrderRecord],
) -> Vec<IdentityRecord> {
    orders
        .iter()
        .map(|o| IdentityRecord {
            identities: o
                .identities
                .iter()
                .map(|i| i.key(cipher, lookup))
                .collect::<Vec<KeyedIdentity>>(),
            name: o.buyer_name.clone(),
        })
        .collect()
}

/// Stores a chunk of orders in one transaction: resolves buyers, inserts new orders, updates
/// re-imported ones (status, refund, amounts, lines). Within a chunk an order key must occur once.
pub async fn store_orders(
    db: &Db,
    tenant_id: i64,
    source: &str,
    orders: &[OrderRecord],
    keyed: &[IdentityRecord],
    now: i64,
) -> DbResult<StoreOutcome> {
    let mut tx = db.begin().await?;
    tx.lock_tenant(tenant_id).await?;

    // Existing orders of this chunk, looked up per channel so the (tenant, channel, order_no)
    // index answers.
    let mut by_channel: HashMap<&str, Vec<usize>> = HashMap::default();
    for (i, o) in orders.iter().enumerate() {
        by_channel.entry(o.channel.as_str()).or_default().push(i);
    }
    let mut known: Vec<Option<i64>> = vec![None; orders.len()];
    for (channel, at) in by_channel {
        let nos: Vec<&str> = at.iter().map(|&i| orders[i].order_no.as_str()).collect();
        let found = tx
            .find_ids(
                "SELECT id, order_no FROM orders WHERE tenant_id = $1 AND channel = $2 AND order_no",
                &[tenant_id.into(), channel.into()],
                &nos,
            )
            .await?;
        for (i, id) in at.into_iter().zip(found) {
            known[i] = id;
        }
    }
    let (mut owners, rs): (Vec<Option<i64>>, ResolveStats) =
        oneid::resolve(&mut tx, tenant_id, keyed, now).await?;
    // Read after OneID: a merge it made has already moved the orders of the merged customer.
    let held = buyers_of_known(&mut tx, tenant_id, &known).await?;
    // Buyers: an identified one from OneID; else the one the order already has; else a customer
    // of the order's own (an unlinked buyer). An unlinked buyer whose order now names someone
    // is merged into them, with everything that followed the order.
    let mut unlinked = vec![false; orders.len()];
    let mut links: Vec<(i64, i64)> = Vec::new();
    let mut lone: Vec<usize> = Vec::new();
    for i in 0..orders.len() {
        match (owners[i], held[i]) {
            (Some(buyer), Some((was, true))) if was != buyer => links.push((was, buyer)),
            (Some(_), _) => {}
            (None, Some((was, was_unlinked))) => {
                owners[i] = Some(was);
                unlinked[i] = was_unlinked;
            }
            (None, None) => lone.push(i),
        }
    }
    if !lone.is_empty() {
        let first = tx.reserve_ids("customer", lone.len() as i64).await?;
        let rows: Vec<[Arg; 4]> = lone
            .iter()
            .enumerate()
            .map(|(n, &i)| {
                owners[i] = Some(first + n as i64);
                unlinked[i] = true;
                [
                    (first + n as i64).into(),
                    tenant_id.into(),
                    orders[i].buyer_name.as_deref().into(),
                    now.into(),
                ]
            })
            .collect();
        tx.insert_rows(
            "INSERT INTO customers (id, tenant_id, display_name, created_at)",
            "",
            &rows,
        )
        .await?;
    }
    links.sort_unstable();
    links.dedup();
    oneid::link_unlinked_buyers(&mut tx, tenant_id, &links, now).await?;

    let fresh = known.iter().filter(|k| k.is_none()).count();
    let mut next_id = if fresh > 0 {
        tx.reserve_ids("order", fresh as i64).await?
    } else {
        0
    };
    // Orders are stored, and new ones numbered, in (channel, order number) order: the table,
    // its unique index and the lines then each grow at a few places per chunk rather than at
    // one place per order (order numbers of one export interleave; docs/BENCHMARKS.md).
    let mut in_key_order: Vec<usize> = (0..orders.len()).collect();
    // Stable, though keys are unique here (`dedupe_orders`): were one repeated, the later record
    // would still be written last and win, as it would in a re-import.
    in_key_order.sort_by(|&a, &b| {
        (orders[a].channel.as_str(), orders[a].order_no.as_str())
            .cmp(&(orders[b].channel.as_str(), orders[b].order_no.as_str()))
    });
    let mut ids: Vec<i64> = known.iter().map(|k| k.unwrap_or_default()).collect();
    for &i in &in_key_order {
        if known[i].is_none() {
            ids[i] = next_id;
            next_id += 1;
        }
    }

    // Every order has a buyer by now (an unlinked one at least).
    let rows: Vec<[Arg; 21]> = in_key_order
        .iter()
        .filter_map(|&i| {
            let o = &orders[i];
            let customer = owners[i]?;
            let item_count = o
                .lines
                .iter()
                .map(|l| l.quantity)
                .fold(0i64, i64::saturating_add);
            Some([
                ids[i].into(),
                tenant_id.into(),
                o.channel.as_str().into(),
                o.order_no.as_str().into(),
                customer.into(),
                o.status.as_str().into(),
                o.status_text.as_deref().into(),
                o.ordered_at.into(),
                o.paid_at.into(),
                o.amount.into(),
                o.refund_amount.into(),
                item_count.into(),
                o.store_id.as_deref().into(),
                o.guide_id.as_deref().into(),
                o.buyer_name.as_deref().into(),
                o.phone_hint.as_deref().into(),
                o.province.as_deref().into(),
                i64::from(unlinked[i]).into(),
                source.into(),
                now.into(),
                o.refund_of.as_deref().into(),
            ])
        })
        .collect();
    tx.insert_rows(
        "INSERT INTO orders (id, tenant_id, channel, order_no, customer_id, status, status_text, ordered_at, paid_at, amount, \
         refund_amount, item_count, store_id, guide_id, buyer_name, phone_hint, province, buyer_unlinked, source, updated_at, refund_of)",
        "ON CONFLICT (tenant_id, channel, order_no) DO UPDATE SET customer_id = excluded.customer_id, \
         status = excluded.status, status_text = excluded.status_text, buyer_unlinked = excluded.buyer_unlinked, ordered_at = excluded.ordered_at, paid_at = excluded.paid_at, \
         amount = excluded.amount, refund_amount = excluded.refund_amount, \
         item_count = CASE WHEN excluded.item_count > 0 THEN excluded.item_count ELSE orders.item_count END, \
         store_id = excluded.store_id, guide_id = excluded.guide_id, buyer_name = excluded.buyer_name, \
         phone_hint = excluded.phone_hint, province = excluded.province, updated_at = excluded.updated_at, \
         refund_of = excluded.refund_of",
        &rows,
    )
    .await?;

    // Lines: replaced on update when the record carries lines (a status push without lines keeps
    // the items it had).
    let updated_ids: Vec<i64> = orders
        .iter()
        .zip(&known)
        .filter(|(o, _)| !o.lines.is_empty())
        .filter_map(|(_, k)| *k)
        .collect();
    tx.execute_in(
        "DELETE FROM order_lines WHERE tenant_id = $1 AND order_id",
        &[tenant_id.into()],
        updated_ids.into_iter().map(Value::from).collect(),
    )
    .await?;
    let lines: Vec<[Arg; 8]> = in_key_order
        .iter()
        .map(|&i| (&orders[i], &ids[i]))
        .flat_map(|(o, id)| {
            o.lines.iter().enumerate().map(move |(n, l)| {
                [
                    tenant_id.into(),
                    (*id).into(),
                    (n as i64).into(),
                    l.sku.as_deref().into(),
                    l.title.as_deref().into(),
                    l.category.as_deref().into(),
                    l.quantity.into(),
                    l.price.into(),
                ]
            })
        })
        .collect();
    tx.insert_rows(
        "INSERT INTO order_lines (tenant_id, order_id, line_no, sku, title, category, quantity, price)",
        "",
        &lines,
    )
    .await?;
    apply_returns(&mut tx, tenant_id, orders).await?;
    tx.commit().await?;
    Ok(StoreOutcome {
        imported: fresh as u64,
        updated: (orders.len() - fresh) as u64,
        customers_created: rs.customers_created + lone.len() as u64,
        customers_merged: rs.customers_merged,
        unknown_status: orders
            .iter()
            .filter(|o| o.status == OrderStatus::Unknown)
            .count() as u64,
        unlinked: unlinked.iter().filter(|u| **u).count() as u64,
        buyers_linked: links.len() as u64,
    })
}

/// Brings the refunds of sales that have return receipts up to the sum of their returns: the
/// sales these returns name, and sales of this chunk that returns stored earlier named (a
/// return imported before its sale). Computed from the stored returns, never added, so storing
/// the same rows again changes nothing; a sale's own refund column counts when it is larger.
/// A sale returned in full is `refunded`.
async fn apply_returns(
    tx: &mut crate::platform::db::Tx,
    tenant_id: i64,
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

/// The buyer each already-stored order has, and whether that buyer is unlinked.
async fn buyers_of_known(
    tx: &mut crate::platform::db::Tx,
    tenant_id: i64,
    known: &[Option<i64>],
) -> DbResult<Vec<Option<(i64, bool)>>> {
    let ids: Vec<Value> = known.iter().flatten().map(|id| (*id).into()).collect();
    if ids.is_empty() {
        return Ok(vec![None; known.len()]);
    }
    let rows: Vec<(i64, i64, i64)> = tx
        .fetch_in(
            "SELECT id, customer_id, buyer_unlinked FROM orders WHERE tenant_id = $1 AND id",
            &[tenant_id.into()],
            ids,
        )
        .await?;
    let by_id: HashMap<i64, (i64, bool)> = rows
        .into_iter()
        .map(|(id, customer, unlinked)| (id, (customer, unlinked != 0)))
        .collect();
    Ok(known
        .iter()
        .map(|k| k.and_then(|id| by_id.get(&id).copied()))
        .collect())
}

/// The customers who own these orders now (after a store), for the audience index.
pub async fn owners_of(db: &Db, tenant_id: i64, orders: &[OrderRecord]) -> DbResult<Vec<i64>> {
    let mut by_channel: HashMap<&str, Vec<Value>> = HashMap::default();
    for o in orders {
        by_channel
            .entry(o.channel.as_str())
            .or_default()
            .push(o.order_no.as_str().into());
    }
    let mut owners = Vec::new();
    for (channel, nos) in by_channel {
        let rows: Vec<(i64,)> = db
            .fetch_in(
                "SELECT DISTINCT customer_id FROM orders WHERE tenant_id = $1 AND channel = $2 AND order_no",
                &[tenant_id.into(), channel.into()],
                nos,
            )
            .await?;
        owners.extend(rows.into_iter().map(|r| r.0));
    }
    owners.sort_unstable();
    owners.dedup();
    Ok(owners)
}

/// A batch may hold the same order twice: the later one wins, as a re-import would.
pub fn dedupe_orders(batch: Vec<OrderRecord>) -> Vec<OrderRecord> {
    let mut seen = HashMap::with_capacity_and_hasher(batch.len(), Default::default());
    let mut out: Vec<OrderRecord> = Vec::with_capacity(batch.len());
    for o in batch {
        let key = (o.channel.clone(), o.order_no.clone());
        match seen.get(&key) {
            Some(&i) => out[i] = o,
            None => {
                seen.insert(key, out.len());
                out.push(o);
            }
        }
    }
    out
}

/// An order as `POST /api/v1/orders` takes it. Amounts are fen; times UTC milliseconds.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderInput {
    pub channel: String,
    pub order_no: String,
    #[serde(default)]
    pub status: Option<String>,
    pub ordered_at: i64,
    #[serde(default)]
    pub paid_at: Option<i64>,
    pub amount: i64,
    #[serde(default)]
    pub refund_amount: i64,
    #[serde(default)]
    pub store_id: Option<String>,
    #[serde(default)]
    pub guide_id: Option<String>,
    #[serde(default)]
    pub buyer_name: Option<String>,
    #[serde(default)]
    pub identities: Vec<super::identity::IdentityInput>,
    #[serde(default)]
    pub lines: Vec<OrderLine>,
}

impl OrderInput {
    /// Checks an API order with the same rules as an imported row. Errors name the field.
    pub fn check(self, now: i64) -> Result<OrderRecord, super::events::ItemError> {
        use super::events::ItemError;
        use super::import::rows::{check_channel, check_order_no};
        let e = |f: &str, r: String| ItemError {
            field: f.to_owned(),
            reason: r,
        };
        let channel = check_channel(&self.channel).map_err(|r| e("channel", r))?;
        let order_no = check_order_no(&self.order_no).map_err(|r| e("order_no", r))?;
        let status = match self.status.as_deref() {
            Some(s) => OrderStatus::parse(s).ok_or_else(|| {
                e(
                    "status",
                    format!(
                        "{s:?} is not one of pending, paid, shipped, completed, refunded, closed"
                    ),
                )
            })?,
            None => OrderStatus::Paid,
        };
        let range = 946_684_800_000..=now + 86_400_000;
        if !range.contains(&self.ordered_at) {
            return Err(e(
                "ordered_at",
                format!(
                    "{} is outside 2000-01-01 … now+1 day (UTC milliseconds)",
                    self.ordered_at
                ),
            ));
        }
        if let Some(p) = self.paid_at.filter(|p| !range.contains(p)) {
            return Err(e(
                "paid_at",
                format!("{p} is outside 2000-01-01 … now+1 day (UTC milliseconds)"),
            ));
        }
        if !(0..=MAX_FEN).contains(&self.amount) {
            return Err(e("amount", format!("must be fen, from 0 to {MAX_FEN}")));
        }
        if self.refund_amount < 0 {
            return Err(e("refund_amount", "must be fen, 0 or more".into()));
        }
        let (amount, refund_amount) = settle_amounts(self.amount, self.refund_amount)
            .map_err(|r| e("refund_amount", r.into()))?;
        for (i, l) in self.lines.iter().enumerate() {
            if !(0..=1_000_000).contains(&l.quantity) || !(0..=MAX_FEN).contains(&l.price) {
                return Err(e(
                    &format!("lines[{i}]"),
                    format!("quantity must be 0–1,000,000 and price 0–{MAX_FEN} fen"),
                ));
            }
        }
        let mut identities = Vec::with_capacity(self.identities.len());
        for (i, id) in self.identities.iter().enumerate() {
            identities.push(
                id.parse()
                    .map_err(|err| e(&format!("identities[{i}]"), err.to_string()))?,
            );
        }
        if identities.is_empty() {
            return Err(e(
                "identities",
                "an order needs at least one buyer identity".into(),
            ));
        }
        Ok(OrderRecord {
            channel,
            order_no,
            status,
            status_text: None,
            ordered_at: self.ordered_at,
            paid_at: self.paid_at,
            amount,
            refund_amount,
            refund_of: None,
            store_id: self.store_id,
            guide_id: self.guide_id,
            buyer_name: self.buyer_name,
            phone_hint: None,
            province: None,
            identities,
            lines: self.lines,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_as_each_platform_writes_them() {
        for (text, want) in [
            ("卖家已发货，等待买家确认", OrderStatus::Shipped),
            ("已发货，待签收", OrderStatus::Shipped),
            ("等待出库", OrderStatus::Paid),
            ("锁定", OrderStatus::Paid),
            ("(删除)完成", OrderStatus::Completed),
            ("（删除）完成", OrderStatus::Completed),
            ("等待付款", OrderStatus::Pending),
            ("已支付", OrderStatus::Paid),
            ("备货中", OrderStatus::Paid),
            (" 交易 成功 ", OrderStatus::Completed),
            ("未发货，退款成功", OrderStatus::Refunded),
            ("PAID", OrderStatus::Paid),
        ] {
            assert_eq!(OrderStatus::parse(text), Some(want), "{text:?}");
        }
        assert_eq!(OrderStatus::parse("等待天使降临"), None);
    }

    proptest::proptest! {
        /// A known status written with spaces, full-width commas or ideographic spaces
        /// anywhere maps as the plain text does.
        #[test]
        fn any_spelling_of_a_known_status_maps_the_same(
            i in 0usize..8,
            spaces in proptest::collection::vec((0usize..12, 0u8..3), 0..4),
        ) {
            let known = ["卖家已发货,等待买家确认", "交易成功", "等待出库", "已发货,待签收",
                         "交易关闭", "等待买家付款", "退款成功", "已支付"][i];
            let want = OrderStatus::parse(known);
            proptest::prop_assert!(want.is_some());
            let mut chars: Vec<char> = known.replace(',', "，").chars().collect();
            for (at, kind) in spaces {
                let at = at.min(chars.len());
                chars.insert(at, [' ', '\u{3000}', '\t'][usize::from(kind)]);
            }
            let spelled: String = chars.into_iter().collect();
            proptest::prop_assert_eq!(OrderStatus::parse(&spelled), want, "{:?}", spelled);
        }
    }

    #[test]
    fn purchase_statuses_in_sql_match_the_rule() {
        let all = [
            OrderStatus::Pending,
            OrderStatus::Paid,
            OrderStatus::Shipped,
            OrderStatus::Completed,
            OrderStatus::Refunded,
            OrderStatus::Closed,
            OrderStatus::Unknown,
        ];
        let listed: Vec<&str> = all
            .iter()
            .filter(|s| s.is_purchase())
            .map(|s| s.as_str())
            .collect();
        let sql_list = format!(
            "({})",
            listed
                .iter()
                .map(|s| format!("'{s}'"))
                .collect::<Vec<_>>()
                .join(",")
        );
        assert_eq!(sql_list, PURCHASE_STATUSES);
        for s in all {
            assert_eq!(
                OrderStatus::parse(s.as_str()),
                Some(s),
                "status names round-trip"
            );
        }
    }
}
