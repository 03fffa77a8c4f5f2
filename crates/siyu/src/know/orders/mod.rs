//! Orders from every channel, unique per (tenant, channel, order id), and how they are stored.

use crate::know::CustomerId;
use crate::platform::Fen;
use crate::platform::TenantId;
use foldhash::HashMap;

use serde::{Deserialize, Serialize};

use super::identity::{Identity, KeyedIdentity};
use super::oneid::{self, IdentityRecord, ResolveStats};
use crate::platform::crypto::{FieldCipher, TenantLookup};
use crate::platform::db::{Db, DbResult, Value};
use crate::platform::rows::Arg;

pub mod after_sales;
mod returns;
mod status;

pub use status::{OrderStatus, PURCHASE_STATUSES, normalise_status};

/// The largest amount one order may carry, in fen (10 billion yuan): guards sums from overflow.
pub const MAX_FEN: Fen = Fen::new(1_000_000_000_000);

/// The paid and refunded amounts of an order as exports and APIs write them. Some exports
/// (Tmall's closed orders) show a paid order refunded in full with 0.00 paid beside the refund:
/// it was paid what was refunded. A refund larger than a non-zero paid amount is an error.
pub fn settle_amounts(paid: Fen, refund: Fen) -> Result<(Fen, Fen), &'static str> {
    let paid = if paid == Fen::ZERO && refund > Fen::ZERO {
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
    pub price: Fen,
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
    pub amount: Fen,
    pub refund_amount: Fen,
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
    tenant_id: TenantId,
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
    returns::apply_returns(&mut tx, tenant_id, orders).await?;
    after_sales::apply_after_sales(&mut tx, tenant_id, orders).await?;
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

/// The buyer each already-stored order has, and whether that buyer is unlinked.
async fn buyers_of_known(
    tx: &mut crate::platform::db::Tx,
    tenant_id: TenantId,
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
pub async fn owners_of(
    db: &Db,
    tenant_id: TenantId,
    orders: &[OrderRecord],
) -> DbResult<Vec<CustomerId>> {
    owners_of_numbers(
        db,
        tenant_id,
        orders
            .iter()
            .map(|o| (o.channel.as_str(), o.order_no.as_str())),
    )
    .await
}

/// [`owners_of`] orders named by (channel, order number); numbers not stored are passed over.
pub async fn owners_of_numbers<'a>(
    db: &Db,
    tenant_id: TenantId,
    orders: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> DbResult<Vec<CustomerId>> {
    let mut by_channel: HashMap<&str, Vec<Value>> = HashMap::default();
    for (channel, no) in orders {
        by_channel.entry(channel).or_default().push(no.into());
    }
    let mut owners = Vec::new();
    for (channel, nos) in by_channel {
        let rows: Vec<(CustomerId,)> = db
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
    pub amount: Fen,
    #[serde(default)]
    pub refund_amount: Fen,
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
        if !(Fen::ZERO..=MAX_FEN).contains(&self.amount) {
            return Err(e("amount", format!("must be fen, from 0 to {MAX_FEN}")));
        }
        if self.refund_amount < Fen::ZERO {
            return Err(e("refund_amount", "must be fen, 0 or more".into()));
        }
        let (amount, refund_amount) = settle_amounts(self.amount, self.refund_amount)
            .map_err(|r| e("refund_amount", r.into()))?;
        for (i, l) in self.lines.iter().enumerate() {
            if !(0..=1_000_000).contains(&l.quantity) || !(Fen::ZERO..=MAX_FEN).contains(&l.price) {
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
