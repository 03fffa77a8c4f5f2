//! The customer as operators see them: identities, purchase summary, recent orders and events.

use super::CustomerId;
use crate::platform::Fen;
use crate::platform::TenantId;
use serde::Serialize;

use super::identity::{Identity, IdentityKind};
use super::phone::mask;
use crate::platform::crypto::FieldCipher;
use crate::platform::db::{Db, DbResult, sql};

use super::orders::PURCHASE_STATUSES;

#[derive(Debug, Clone, Serialize)]
pub struct IdentityView {
    pub kind: String,
    pub value: String,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct OrderView {
    pub id: i64,
    pub channel: String,
    pub order_no: String,
    pub status: String,
    pub ordered_at: i64,
    pub amount: Fen,
    pub refund_amount: Fen,
    pub item_count: i64,
    pub store_id: Option<String>,
    pub guide_id: Option<String>,
    pub phone_hint: Option<String>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct EventView {
    pub event_key: String,
    #[sqlx(rename = "type")]
    #[serde(rename = "type")]
    pub kind: String,
    pub channel: Option<String>,
    pub touchpoint: Option<String>,
    pub occurred_at: i64,
}

/// Purchase summary over orders that count as purchases; amounts net of refunds, in fen.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PurchaseSummary {
    pub first_order_at: Option<i64>,
    pub last_order_at: Option<i64>,
    pub order_count: i64,
    pub total_spend: Fen,
    pub average_order_value: Fen,
    pub channels: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Customer360 {
    pub id: CustomerId,
    /// Set when the requested id was merged into this customer.
    pub merged_from: Option<CustomerId>,
    pub display_name: Option<String>,
    pub created_at: i64,
    pub identities: Vec<IdentityView>,
    pub phone_hints: Vec<String>,
    #[serde(flatten)]
    pub summary: PurchaseSummary,
    pub recent_orders: Vec<OrderView>,
    pub recent_events: Vec<EventView>,
    pub layer: LayerView,
    pub tags: Vec<TagView>,
    pub attributes: Vec<(String, String)>,
}

/// Where the customer sits: lifecycle stage, RFM class and scores, repurchase date.
#[derive(Debug, Clone, Serialize)]
pub struct LayerView {
    pub stage: String,
    pub rfm_class: Option<String>,
    pub r_score: Option<i64>,
    pub f_score: Option<i64>,
    pub m_score: Option<i64>,
    pub repurchase_at: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TagView {
    pub id: i64,
    pub group: String,
    pub name: String,
    pub rule: bool,
}

async fn layer_of(db: &Db, tenant_id: TenantId, id: CustomerId) -> DbResult<LayerView> {
    type Row = (String, String, i64, i64, i64, Option<i64>);
    let row: Option<Row> = db
        .fetch_optional(
            &sql("SELECT stage, rfm_class, r_score, f_score, m_score, repurchase_at FROM customer_stats \
                  WHERE tenant_id = $1 AND customer_id = $2")
                .bind(tenant_id)
                .bind(id),
        )
        .await?;
    Ok(match row {
        Some((stage, class, r, f, m, re)) => LayerView {
            stage,
            rfm_class: Some(class),
            r_score: Some(r),
            f_score: Some(f),
            m_score: Some(m),
            repurchase_at: re,
        },
        None => LayerView {
            stage: super::rfm::Stage::Prospect.as_str().to_owned(),
            rfm_class: None,
            r_score: None,
            f_score: None,
            m_score: None,
            repurchase_at: None,
        },
    })
}

/// Follows merges: the surviving customer id for `id`, if it exists in the tenant.
pub async fn surviving_id(
    db: &Db,
    tenant_id: TenantId,
    id: CustomerId,
) -> DbResult<Option<CustomerId>> {
    let row: Option<(CustomerId, Option<CustomerId>)> = db
        .fetch_optional(
            &sql("SELECT id, merged_into FROM customers WHERE tenant_id = $1 AND id = $2")
                .bind(tenant_id)
                .bind(id),
        )
        .await?;
    Ok(row.map(|(id, m)| m.unwrap_or(id)))
}

/// [`surviving_id`] of many ids at once, in as few statements as the bind limit allows: what
/// each id of the tenant's now is. Ids the tenant does not have are left out.
pub async fn surviving_ids(
    db: &Db,
    tenant_id: TenantId,
    ids: &[CustomerId],
) -> DbResult<std::collections::HashMap<CustomerId, CustomerId>> {
    let rows: Vec<(CustomerId, Option<CustomerId>)> = db
        .fetch_in(
            "SELECT id, merged_into FROM customers WHERE tenant_id = $1 AND id",
            &[tenant_id.into()],
            ids.iter().map(|id| (*id).into()).collect(),
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, m)| (id, m.unwrap_or(id)))
        .collect())
}

/// Turns [`surviving_ids`] around: for each customer now, the ids recorded for them (a report's
/// recipients or claimers), in id order. Two recorded ids of one person have one entry.
pub fn recorded_behind(
    surviving: std::collections::HashMap<CustomerId, CustomerId>,
) -> std::collections::HashMap<CustomerId, Vec<CustomerId>> {
    let mut behind: std::collections::HashMap<CustomerId, Vec<CustomerId>> = Default::default();
    for (recorded, now) in surviving {
        behind.entry(now).or_default().push(recorded);
    }
    for ids in behind.values_mut() {
        ids.sort_unstable();
    }
    behind
}

/// The customer holding an identity.
pub async fn find_by_identity(
    db: &Db,
    cipher: &FieldCipher,
    tenant_id: TenantId,
    identity: &Identity,
) -> DbResult<Option<CustomerId>> {
    let row: Option<(CustomerId,)> = db
        .fetch_optional(
            &sql("SELECT customer_id FROM identities WHERE tenant_id = $1 AND ikey = $2")
                .bind(tenant_id)
                .bind(identity.lookup_key(&cipher.lookup(tenant_id))),
        )
        .await?;
    Ok(row.map(|r| r.0))
}

/// An identity's value as a caller may see it: phones decrypted, then masked unless `unmask`.
pub fn show_identity(
    cipher: &FieldCipher,
    kind: &str,
    ikey: &str,
    value_enc: Option<&str>,
    unmask: bool,
) -> IdentityView {
    let value = if kind == IdentityKind::Phone.as_str() {
        match value_enc.map(|v| cipher.decrypt(v)) {
            Some(Ok(p)) if unmask => p,
            Some(Ok(p)) => mask(&p),
            _ => "****".to_owned(),
        }
    } else {
        let v = ikey
            .split_once(':')
            .map(|(_, v)| v.to_owned())
            .unwrap_or_default();
        match kind {
            // Member numbers are often the phone number; emails are personal data too.
            "member_no" if !unmask => mask_tail(&v, 4),
            "email" if !unmask => match v.split_once('@') {
                Some((user, domain)) => {
                    format!("{}***@{domain}", user.chars().next().unwrap_or('*'))
                }
                None => "***".to_owned(),
            },
            _ => v,
        }
    };
    IdentityView {
        kind: kind.to_owned(),
        value,
    }
}

/// Keeps the last `keep` characters and stars the rest.
fn mask_tail(v: &str, keep: usize) -> String {
    let n = v.chars().count();
    v.chars()
        .enumerate()
        .map(|(i, c)| if i + keep < n { '*' } else { c })
        .collect()
}

pub async fn identities_of(
    db: &Db,
    cipher: &FieldCipher,
    tenant_id: TenantId,
    id: CustomerId,
    unmask: bool,
) -> DbResult<Vec<IdentityView>> {
    let rows: Vec<(String, String, Option<String>)> = db
        .fetch_all(
            &sql("SELECT kind, ikey, value_enc FROM identities WHERE tenant_id = $1 AND customer_id = $2 ORDER BY kind, first_seen")
                .bind(tenant_id)
                .bind(id),
        )
        .await?;
    Ok(rows
        .iter()
        .map(|(k, ikey, enc)| show_identity(cipher, k, ikey, enc.as_deref(), unmask))
        .collect())
}

pub async fn purchase_summary(
    db: &Db,
    tenant_id: TenantId,
    id: CustomerId,
) -> DbResult<PurchaseSummary> {
    let (first, last, count, spend): (Option<i64>, Option<i64>, i64, Fen) = db
        .fetch_one(
            &sql(format!(
                "SELECT MIN(ordered_at), MAX(ordered_at), COUNT(*), CAST(COALESCE(SUM(amount - refund_amount), 0) AS BIGINT) \
                 FROM orders WHERE tenant_id = $1 AND customer_id = $2 AND status IN {PURCHASE_STATUSES}"
            ))
            .bind(tenant_id)
            .bind(id),
        )
        .await?;
    let channels: Vec<(String,)> = db
        .fetch_all(
            &sql(format!(
                "SELECT DISTINCT channel FROM orders WHERE tenant_id = $1 AND customer_id = $2 AND status IN {PURCHASE_STATUSES} ORDER BY channel"
            ))
            .bind(tenant_id)
            .bind(id),
        )
        .await?;
    Ok(PurchaseSummary {
        first_order_at: first,
        last_order_at: last,
        order_count: count,
        total_spend: spend,
        average_order_value: if count > 0 { spend / count } else { Fen::ZERO },
        channels: channels.into_iter().map(|c| c.0).collect(),
    })
}

/// The whole picture of one customer; `None` when the id is not in the tenant.
pub async fn customer_360(
    db: &Db,
    cipher: &FieldCipher,
    tenant_id: TenantId,
    requested: CustomerId,
    unmask: bool,
) -> DbResult<Option<Customer360>> {
    let Some(id) = surviving_id(db, tenant_id, requested).await? else {
        return Ok(None);
    };
    let (display_name, created_at): (Option<String>, i64) = db
        .fetch_one(
            &sql("SELECT display_name, created_at FROM customers WHERE tenant_id = $1 AND id = $2")
                .bind(tenant_id)
                .bind(id),
        )
        .await?;
    let recent_orders: Vec<OrderView> = db
        .fetch_all(
            &sql("SELECT id, channel, order_no, status, ordered_at, amount, refund_amount, item_count, store_id, guide_id, phone_hint \
                  FROM orders WHERE tenant_id = $1 AND customer_id = $2 ORDER BY ordered_at DESC LIMIT 20")
                .bind(tenant_id)
                .bind(id),
        )
        .await?;
    let recent_events: Vec<EventView> = db
        .fetch_all(
            &sql("SELECT event_key, type, channel, touchpoint, occurred_at FROM events WHERE tenant_id = $1 AND customer_id = $2 \
                  ORDER BY occurred_at DESC LIMIT 20")
                .bind(tenant_id)
                .bind(id),
        )
        .await?;
    let hints: Vec<(String,)> = db
        .fetch_all(
            &sql("SELECT DISTINCT phone_hint FROM orders WHERE tenant_id = $1 AND customer_id = $2 AND phone_hint IS NOT NULL ORDER BY phone_hint")
                .bind(tenant_id)
                .bind(id),
        )
        .await?;
    Ok(Some(Customer360 {
        id,
        merged_from: (id != requested).then_some(requested),
        display_name,
        created_at,
        identities: identities_of(db, cipher, tenant_id, id, unmask).await?,
        phone_hints: hints.into_iter().map(|h| h.0).collect(),
        summary: purchase_summary(db, tenant_id, id).await?,
        recent_orders,
        recent_events,
        layer: layer_of(db, tenant_id, id).await?,
        tags: super::tags::tags_of(db, tenant_id, id)
            .await?
            .into_iter()
            .map(|t| TagView {
                id: t.id,
                rule: t.rule.is_some(),
                group: t.group_name,
                name: t.name,
            })
            .collect(),
        attributes: super::attributes::attributes_of(db, tenant_id, id).await?,
    }))
}

/// A row of the customer list.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct CustomerRow {
    pub id: CustomerId,
    pub display_name: Option<String>,
    pub created_at: i64,
    pub order_count: i64,
    pub total_spend: Fen,
    pub last_order_at: Option<i64>,
    #[sqlx(skip)]
    pub phone: Option<String>,
}

/// How a customer list is ordered: newest first, or by what they bought (their purchase
/// figures as `customer_stats` keeps them, net of refunds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ListOrder {
    #[default]
    Newest,
    Spend,
    LastOrder,
    Orders,
}

impl ListOrder {
    pub const ALL: [ListOrder; 4] = [
        ListOrder::Newest,
        ListOrder::Spend,
        ListOrder::LastOrder,
        ListOrder::Orders,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ListOrder::Newest => "newest",
            ListOrder::Spend => "spend",
            ListOrder::LastOrder => "last_order",
            ListOrder::Orders => "orders",
        }
    }

    pub fn parse(s: &str) -> Option<ListOrder> {
        ListOrder::ALL.into_iter().find(|o| o.as_str() == s)
    }

    fn sql(self) -> &'static str {
        match self {
            ListOrder::Newest => "c.id DESC",
            ListOrder::Spend => "COALESCE(s.spend, 0) DESC, c.id DESC",
            ListOrder::LastOrder => "COALESCE(s.last_order_at, 0) DESC, c.id DESC",
            ListOrder::Orders => "COALESCE(s.order_count, 0) DESC, c.id DESC",
        }
    }
}

/// One page of the customers a rule selects (`{"and": []}`: everyone), in `order`: the rule as
/// SQL (`know::audience::sql`, held equal to the index by its property test) so that the store
/// sorts and pages.
pub async fn ordered_page(
    db: &Db,
    tenant_id: TenantId,
    rule: &super::rule::Rule,
    order: ListOrder,
    page: i64,
    per_page: i64,
    now: i64,
) -> DbResult<Vec<CustomerId>> {
    let (page, per_page) = (page.max(1), per_page.clamp(1, 200));
    let mut q = super::audience::sql::select("c.id", tenant_id, rule, now);
    // Both numbers are ours, clamped above: written into the SQL, not bound.
    q.push_text(&format!(
        " ORDER BY {} LIMIT {per_page} OFFSET {}",
        order.sql(),
        (page - 1) * per_page
    ));
    let rows: Vec<(i64,)> = db.fetch_all(&q).await?;
    Ok(rows.into_iter().map(|(id,)| CustomerId::new(id)).collect())
}

#[derive(Debug, Clone, Serialize)]
pub struct CustomerPage {
    pub customers: Vec<CustomerRow>,
    pub page: i64,
    pub per_page: i64,
    pub total: i64,
}

/// One page of the tenant's customers, newest first, with purchase figures and a phone
/// (masked unless `unmask`). `only` restricts the page to the given ids (search results).
pub async fn list_customers(
    db: &Db,
    cipher: &FieldCipher,
    tenant_id: TenantId,
    page: i64,
    per_page: i64,
    only: Option<&[CustomerId]>,
    unmask: bool,
) -> DbResult<CustomerPage> {
    let page = page.max(1);
    let per_page = per_page.clamp(1, 200);
    let select = format!(
        "SELECT c.id, c.display_name, c.created_at, \
         (SELECT COUNT(*) FROM orders o WHERE o.tenant_id = c.tenant_id AND o.customer_id = c.id AND o.status IN {PURCHASE_STATUSES}) AS order_count, \
         (SELECT CAST(COALESCE(SUM(o.amount - o.refund_amount), 0) AS BIGINT) FROM orders o WHERE o.tenant_id = c.tenant_id AND o.customer_id = c.id AND o.status IN {PURCHASE_STATUSES}) AS total_spend, \
         (SELECT MAX(o.ordered_at) FROM orders o WHERE o.tenant_id = c.tenant_id AND o.customer_id = c.id) AS last_order_at \
         FROM customers c WHERE c.tenant_id = $1 AND c.merged_into IS NULL"
    );
    let (mut rows, total): (Vec<CustomerRow>, i64) = match only {
        Some(ids) => {
            let ids: Vec<CustomerId> = ids.iter().copied().take(200).collect();
            if ids.is_empty() {
                (Vec::new(), 0)
            } else {
                let mut q = sql(format!(
                    "{select} AND c.id IN ({}) ORDER BY c.id DESC",
                    crate::platform::db::list_placeholders(ids.len(), 2)
                ))
                .bind(tenant_id);
                for id in &ids {
                    q.push_arg(*id);
                }
                let mut rows: Vec<CustomerRow> = db.fetch_all(&q).await?;
                // In the order the ids were given (a sorted page), not the store's.
                rows.sort_by_key(|r| ids.iter().position(|id| *id == r.id));
                let n = rows.len() as i64;
                (rows, n)
            }
        }
        None => {
            let rows = db
                .fetch_all(
                    &sql(format!("{select} ORDER BY c.id DESC LIMIT $2 OFFSET $3"))
                        .bind(tenant_id)
                        .bind(per_page)
                        .bind((page - 1) * per_page),
                )
                .await?;
            let (total,): (i64,) =
                db.fetch_one(&sql("SELECT COUNT(*) FROM customers WHERE tenant_id = $1 AND merged_into IS NULL").bind(tenant_id)).await?;
            (rows, total)
        }
    };
    for r in rows.iter_mut() {
        let p: Option<(Option<String>,)> = db
            .fetch_optional(
                &sql("SELECT value_enc FROM identities WHERE tenant_id = $1 AND customer_id = $2 AND kind = 'phone' ORDER BY first_seen LIMIT 1")
                    .bind(tenant_id)
                    .bind(r.id),
            )
            .await?;
        r.phone = p.map(|(enc,)| show_identity(cipher, "phone", "", enc.as_deref(), unmask).value);
    }
    Ok(CustomerPage {
        customers: rows,
        page,
        per_page,
        total,
    })
}

/// Finds customers for a console or API search: a phone, `kind:value`, a customer id (`#123`),
/// an order id, or part of a name.
/// Owners of an order number from any channel, through the unique `(tenant_id, channel,
/// order_no)` index: the tenant's channels are found one index probe each (a loose scan:
/// the next channel after the last), then the number is looked up in each.
const ORDER_FROM_ANY_CHANNEL: &str = "WITH RECURSIVE channels(channel) AS ( \
       SELECT MIN(channel) FROM orders WHERE tenant_id = $1 \
       UNION ALL \
       SELECT (SELECT MIN(o.channel) FROM orders o WHERE o.tenant_id = $1 AND o.channel > c.channel) \
         FROM channels c WHERE c.channel IS NOT NULL) \
     SELECT o.customer_id FROM channels c \
       JOIN orders o ON o.tenant_id = $1 AND o.channel = c.channel AND o.order_no = $2 \
     LIMIT 20";

pub async fn search(
    db: &Db,
    cipher: &FieldCipher,
    tenant_id: TenantId,
    q: &str,
) -> DbResult<Vec<CustomerId>> {
    let q = q.trim();
    if q.is_empty() {
        return Ok(Vec::new());
    }
    if let Ok(p) = super::phone::Phone::parse(q) {
        return Ok(find_by_identity(db, cipher, tenant_id, &Identity::Phone(p))
            .await?
            .into_iter()
            .collect());
    }
    if let Ok(i) = Identity::parse_shorthand(q) {
        return Ok(find_by_identity(db, cipher, tenant_id, &i)
            .await?
            .into_iter()
            .collect());
    }
    if let Some(id) = q
        .strip_prefix('#')
        .and_then(|s| s.parse::<CustomerId>().ok())
    {
        return Ok(surviving_id(db, tenant_id, id).await?.into_iter().collect());
    }
    let by_order: Vec<(CustomerId,)> = db
        .fetch_all(&sql(ORDER_FROM_ANY_CHANNEL).bind(tenant_id).bind(q))
        .await?;
    if !by_order.is_empty() {
        return Ok(by_order.into_iter().map(|r| r.0).collect());
    }
    // Store receipts are kept as STORE-NUMBER (numbers restart in every store).
    let by_receipt: Vec<(CustomerId,)> = db
        .fetch_all(
            &sql("SELECT customer_id FROM orders WHERE tenant_id = $1 AND channel = 'store' AND order_no LIKE $2 LIMIT 20")
                .bind(tenant_id)
                .bind(format!("%-{}", q.replace(['%', '_'], ""))),
        )
        .await?;
    if !by_receipt.is_empty() {
        return Ok(by_receipt.into_iter().map(|r| r.0).collect());
    }
    // Buyer ids of any marketplace, then names.
    let mut ids: Vec<CustomerId> = Vec::new();
    use IdentityKind::*;
    for kind in [
        Tmall,
        Jd,
        Douyin,
        Pdd,
        Youzan,
        MemberNo,
        Unionid,
        ExternalUserid,
    ] {
        if let Some(id) =
            find_by_identity(db, cipher, tenant_id, &Identity::Other(kind, q.to_owned())).await?
        {
            ids.push(id);
        }
    }
    if !ids.is_empty() {
        ids.dedup();
        return Ok(ids);
    }
    let like = format!("%{}%", q.replace(['%', '_'], ""));
    let rows: Vec<(CustomerId,)> = db
        .fetch_all(&sql("SELECT id FROM customers WHERE tenant_id = $1 AND merged_into IS NULL AND display_name LIKE $2 ORDER BY id DESC LIMIT 50").bind(tenant_id).bind(like))
        .await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::db::query_plan;

    #[tokio::test]
    async fn an_order_number_is_found_in_any_channel_without_scanning_orders() {
        let db = crate::platform::migrate::migrated_in_memory().await;
        for (id, tenant, channel, no, customer) in [
            (1, 1, "jd", "A100", 10),
            (2, 1, "tmall", "A100", 11),
            (3, 1, "tmall", "B200", 12),
            (4, 1, "store", "S1-7", 13),
            (5, 2, "douyin", "C300", 20),
        ] {
            db.execute(
                &sql(
                    "INSERT INTO orders (id, tenant_id, channel, order_no, customer_id, status, \
                     ordered_at, amount, source, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, 'paid', 0, 100, 'test', 0)",
                )
                .bind(id)
                .bind(tenant)
                .bind(channel)
                .bind(no)
                .bind(customer),
            )
            .await
            .expect("order");
        }
        let cipher = FieldCipher::new(&[9u8; 32]);
        let mut found = search(&db, &cipher, TenantId::new(1), "A100")
            .await
            .expect("search");
        found.sort_unstable();
        assert_eq!(found, vec![CustomerId::new(10), CustomerId::new(11)]);
        assert_eq!(
            search(&db, &cipher, TenantId::new(1), "B200")
                .await
                .expect("search"),
            vec![CustomerId::new(12)]
        );
        // Another tenant's order is not found; a store receipt by its number is.
        assert!(
            search(&db, &cipher, TenantId::new(1), "C300")
                .await
                .expect("search")
                .is_empty()
        );
        assert_eq!(
            search(&db, &cipher, TenantId::new(1), "7")
                .await
                .expect("search"),
            vec![CustomerId::new(13)]
        );
        let plan = query_plan(&db, sql(ORDER_FROM_ANY_CHANNEL).bind(1i64).bind("A100"))
            .await
            .expect("query plan");
        // Each channel's number is one probe of the unique index, not a range of the tenant.
        assert!(
            plan.iter()
                .any(|t| t.ends_with("(tenant_id=? AND channel=? AND order_no=?)")),
            "{plan:?}"
        );
    }
}
