//! Package cards (包裹卡): a batch of N printed cards, each with its own unguessable code and QR,
//! shipped in parcels from one channel. A buyer scans the card, verifies a phone (or arrives
//! with a WeChat identity), claims the hook offer (a coupon), and is shown the guide's WeCom QR.
//! Scans, claims and contacts are recorded per card, and the batch is measured like a campaign.

use crate::know::CustomerId;
use crate::platform::Fen;
use crate::platform::TenantId;
use crate::platform::refusal::{Refusal, Refuse};
use crate::platform::spreadsheet::inert;
use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::codes;
use super::report::{Point, SERIES_HOURS};
use crate::convert::coupons::{self, Coupon, CouponError};
use crate::know::orders::PURCHASE_STATUSES;
use crate::measure::abtest::{self, Analysis, Arm};
use crate::platform::db::{Db, DbError, MAX_BINDS, Reader, Value, sql, values_placeholders};

pub const MAX_BATCH: i64 = 100_000;
const HOUR: i64 = 3_600_000;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CardVariant {
    pub name: String,
    #[serde(default = "one")]
    pub weight: u32,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, Deserialize)]
pub struct NewBatch {
    pub name: String,
    /// Where the parcels ship from: `tmall`, `jd`, `douyin`, …
    pub channel: String,
    /// The hook offer.
    pub coupon_template_id: i64,
    pub size: i64,
    /// Card designs or offers under test; one variant `default` when absent.
    #[serde(default)]
    pub variants: Vec<CardVariant>,
    /// The guide's WeCom contact QR shown after claiming (a channel live code).
    pub contact_qr_url: Option<String>,
    /// Printing cost per card, fen.
    #[serde(default)]
    pub cost_per_card: Fen,
    #[serde(default = "seven")]
    pub window_days: i64,
}

fn seven() -> i64 {
    7
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Batch {
    pub id: i64,
    pub tenant_id: TenantId,
    pub name: String,
    pub channel: String,
    pub coupon_template_id: i64,
    pub variants: Vec<CardVariant>,
    pub size: i64,
    pub contact_qr_url: Option<String>,
    pub cost_per_card: Fen,
    pub window_days: i64,
    pub created_at: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq, sqlx::FromRow)]
pub struct Card {
    pub id: i64,
    pub batch_id: i64,
    pub code: String,
    pub variant: String,
    pub scans: i64,
    pub first_scan: Option<i64>,
    pub customer_id: Option<CustomerId>,
    pub claimed_at: Option<i64>,
    pub coupon_id: Option<i64>,
    pub contact_at: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum CardError {
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("card batch {0} not found")]
    BatchNotFound(i64),
    #[error("code: {0}")]
    Code(#[from] codes::CardCodeError),
    #[error("card {0} not found")]
    NotFound(String),
    #[error("this card has already been claimed")]
    Claimed,
    #[error(transparent)]
    Coupon(#[from] CouponError),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl Refuse for CardError {
    fn refusal(&self) -> Refusal {
        match self {
            CardError::Invalid { .. } | CardError::Code(_) => Refusal::Invalid,
            CardError::BatchNotFound(_) | CardError::NotFound(_) => Refusal::NotFound("not_found"),
            CardError::Claimed => Refusal::Conflict("claimed"),
            CardError::Coupon(e) => e.refusal(),
            CardError::Db(_) => Refusal::Internal,
        }
    }
}

fn invalid(field: &'static str, reason: impl Into<String>) -> CardError {
    CardError::Invalid {
        field,
        reason: reason.into(),
    }
}

/// The variant of the `i`-th card of a batch: by weight, shuffled by the batch, the same on
/// every read.
fn variant_of(batch: i64, i: i64, variants: &[CardVariant]) -> String {
    let h = Sha256::digest(format!("card:{batch}:{i}").as_bytes());
    let total: u64 = variants.iter().map(|v| v.weight as u64).sum::<u64>().max(1);
    let mut pick = u64::from_be_bytes([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]]) % total;
    for v in variants {
        if pick < v.weight as u64 {
            return v.name.clone();
        }
        pick -= v.weight as u64;
    }
    variants
        .last()
        .map_or_else(|| "default".into(), |v| v.name.clone())
}

/// Creates a batch and its cards.
pub async fn create_batch(
    db: &Db,
    tenant: TenantId,
    b: &NewBatch,
    now: i64,
) -> Result<Batch, CardError> {
    let name = b.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(invalid("name", "must be 1–100 characters"));
    }
    if b.channel.is_empty() || b.channel.len() > 32 {
        return Err(invalid("channel", "must be 1–32 characters"));
    }
    if !(1..=MAX_BATCH).contains(&b.size) {
        return Err(invalid("size", format!("must be 1–{MAX_BATCH} cards")));
    }
    if !(Fen::ZERO..=Fen::new(10_000)).contains(&b.cost_per_card) {
        return Err(invalid("cost_per_card", "must be 0–10000 fen"));
    }
    if !(1..=90).contains(&b.window_days) {
        return Err(invalid("window_days", "must be 1–90"));
    }
    if let Some(u) = &b.contact_qr_url {
        super::links::check_target(u).map_err(|e| invalid("contact_qr_url", e.to_string()))?;
    }
    let template = coupons::template(db, tenant, b.coupon_template_id)
        .await
        .map_err(|_| {
            invalid(
                "coupon_template_id",
                format!("coupon template {} not found", b.coupon_template_id),
            )
        })?;
    // A card grants only what the brand set up for cards (`claim_via: card`).
    if template.claim_via != coupons::ClaimVia::Card.as_str() {
        return Err(invalid(
            "coupon_template_id",
            format!(
                "coupon template {} is for {}, not package cards: make one with claim_via card",
                template.id, template.claim_via
            ),
        ));
    }
    let variants = if b.variants.is_empty() {
        vec![CardVariant {
            name: "default".into(),
            weight: 1,
        }]
    } else {
        b.variants.clone()
    };
    if variants.len() > 5 {
        return Err(invalid("variants", "a batch has at most 5 variants"));
    }
    let mut seen = HashSet::new();
    for v in &variants {
        if v.name.trim().is_empty()
            || v.name.len() > 32
            || !seen.insert(v.name.clone())
            || v.weight == 0
        {
            return Err(invalid(
                "variants",
                format!(
                    "{:?}: names must be 1–32 characters and distinct, weights 1–100",
                    v.name
                ),
            ));
        }
    }
    let mut tx = db.begin().await?;
    let id = tx.reserve_ids("card_batch", 1).await?;
    tx.execute(
        &sql("INSERT INTO card_batches (id, tenant_id, name, channel, coupon_template_id, variants, size, contact_qr_url, \
              cost_per_card, window_days, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)")
            .bind(id)
            .bind(tenant)
            .bind(name)
            .bind(b.channel.clone())
            .bind(b.coupon_template_id)
            .bind(serde_json::to_string(&variants).unwrap_or_default())
            .bind(b.size)
            .bind(b.contact_qr_url.clone())
            .bind(b.cost_per_card)
            .bind(b.window_days)
            .bind(now),
    )
    .await?;
    let first = tx.reserve_ids("card", b.size).await?;
    let fresh = codes::unused(
        Reader::Tx(&mut tx),
        "cards",
        b.size as usize,
        codes::card_code,
    )
    .await?;
    const COLS: usize = 5;
    let all: Vec<i64> = (0..b.size).collect();
    for chunk in all.chunks(MAX_BINDS / COLS) {
        let mut q = sql(format!(
            "INSERT INTO cards (id, tenant_id, batch_id, code, variant) VALUES {}",
            values_placeholders(chunk.len(), COLS, 1)
        ));
        for &i in chunk {
            q.push_arg(first + i);
            q.push_arg(tenant);
            q.push_arg(id);
            q.push_arg(fresh[i as usize].clone());
            q.push_arg(variant_of(id, i, &variants));
        }
        tx.execute(&q).await?;
    }
    tx.commit().await?;
    get_batch(db, tenant, id).await
}

#[derive(sqlx::FromRow)]
struct BatchRow {
    id: i64,
    tenant_id: TenantId,
    name: String,
    channel: String,
    coupon_template_id: i64,
    variants: String,
    size: i64,
    contact_qr_url: Option<String>,
    cost_per_card: Fen,
    window_days: i64,
    created_at: i64,
}

const BATCH_COLS: &str = "id, tenant_id, name, channel, coupon_template_id, variants, size, contact_qr_url, cost_per_card, window_days, created_at";

impl From<BatchRow> for Batch {
    fn from(r: BatchRow) -> Self {
        Batch {
            id: r.id,
            tenant_id: r.tenant_id,
            name: r.name,
            channel: r.channel,
            coupon_template_id: r.coupon_template_id,
            variants: serde_json::from_str(&r.variants).unwrap_or_default(),
            size: r.size,
            contact_qr_url: r.contact_qr_url,
            cost_per_card: r.cost_per_card,
            window_days: r.window_days,
            created_at: r.created_at,
        }
    }
}

pub async fn get_batch(db: &Db, tenant: TenantId, id: i64) -> Result<Batch, CardError> {
    let r: Option<BatchRow> = db
        .fetch_optional(
            &sql(format!(
                "SELECT {BATCH_COLS} FROM card_batches WHERE tenant_id = $1 AND id = $2"
            ))
            .bind(tenant)
            .bind(id),
        )
        .await?;
    r.map(Batch::from).ok_or(CardError::BatchNotFound(id))
}

pub async fn list_batches(db: &Db, tenant: TenantId) -> Result<Vec<Batch>, CardError> {
    let rows: Vec<BatchRow> = db
        .fetch_all(&sql(format!("SELECT {BATCH_COLS} FROM card_batches WHERE tenant_id = $1 ORDER BY id DESC LIMIT 200")).bind(tenant))
        .await?;
    Ok(rows.into_iter().map(Batch::from).collect())
}

const CARD_COLS: &str = "id, batch_id, code, variant, scans, first_scan, customer_id, claimed_at, coupon_id, contact_at";

/// The cards of a batch, in print order.
pub async fn cards_of(db: &Db, tenant: TenantId, batch: i64) -> Result<Vec<Card>, CardError> {
    Ok(db
        .fetch_all(
            &sql(format!(
                "SELECT {CARD_COLS} FROM cards WHERE tenant_id = $1 AND batch_id = $2 ORDER BY id"
            ))
            .bind(tenant)
            .bind(batch),
        )
        .await?)
}

/// A card by what was typed or scanned; the check character is verified before any lookup.
pub async fn card(db: &Db, typed: &str) -> Result<(TenantId, Card), CardError> {
    let code = codes::parse_card_code(typed)?;
    let row: Option<(TenantId,)> = db
        .fetch_optional(&sql("SELECT tenant_id FROM cards WHERE code = $1").bind(code.clone()))
        .await?;
    let (tenant,) = row.ok_or_else(|| CardError::NotFound(code.clone()))?;
    let c: Card = db
        .fetch_one(&sql(format!("SELECT {CARD_COLS} FROM cards WHERE code = $1")).bind(code))
        .await?;
    Ok((tenant, c))
}

/// Counts a scan of the card's QR (the landing page opening).
pub async fn record_scan(db: &Db, card_id: i64, now: i64) -> Result<(), DbError> {
    db.execute(
        &sql("UPDATE cards SET scans = scans + 1, first_scan = COALESCE(first_scan, $2) WHERE id = $1").bind(card_id).bind(now),
    )
    .await?;
    Ok(())
}

/// The customer claims the card's offer: once per card, in one transaction with the coupon.
pub async fn claim(
    db: &Db,
    tenant: TenantId,
    card_id: i64,
    customer: CustomerId,
    now: i64,
) -> Result<Coupon, CardError> {
    let mut tx = db.begin().await?;
    // The coupon's totals and per-customer limits are read and counted under the tenant lock,
    // as every grant is: concurrent claims on PostgreSQL would otherwise each see room left.
    tx.lock_tenant(tenant).await?;
    let n = tx
        .execute(
            &sql("UPDATE cards SET customer_id = $3, claimed_at = $4 WHERE tenant_id = $1 AND id = $2 AND claimed_at IS NULL")
                .bind(tenant)
                .bind(card_id)
                .bind(customer)
                .bind(now),
        )
        .await?;
    if n == 0 {
        return Err(CardError::Claimed);
    }
    let (template,): (i64,) = tx
        .fetch_one(
            &sql("SELECT b.coupon_template_id FROM cards c JOIN card_batches b ON b.id = c.batch_id WHERE c.id = $1").bind(card_id),
        )
        .await?;
    let grant =
        coupons::grant_in(&mut tx, tenant, template, &[customer], "package_card", now).await?;
    let Some(coupon) = grant.granted.into_iter().next() else {
        let why = grant
            .refused
            .into_iter()
            .next()
            .map(|r| r.1)
            .unwrap_or_default();
        // Dropping the transaction gives the card back.
        return Err(CardError::Coupon(CouponError::Refused(why)));
    };
    tx.execute(
        &sql("UPDATE cards SET coupon_id = $2 WHERE id = $1")
            .bind(card_id)
            .bind(coupon.id),
    )
    .await?;
    tx.commit().await?;
    Ok(coupon)
}

/// The customer added the guide (the WeCom callback names the card in its `state`).
pub async fn record_contact(
    db: &Db,
    tenant: TenantId,
    card_id: i64,
    now: i64,
) -> Result<bool, DbError> {
    let n = db
        .execute(
            &sql("UPDATE cards SET contact_at = $3 WHERE tenant_id = $1 AND id = $2 AND contact_at IS NULL")
                .bind(tenant)
                .bind(card_id)
                .bind(now),
        )
        .await?;
    Ok(n > 0)
}

#[derive(Debug, Clone, Serialize, Default, PartialEq)]
pub struct CardReport {
    pub variant: String,
    pub shipped: i64,
    /// Cards scanned at least once.
    pub scanned: i64,
    pub scans: i64,
    pub claimed: i64,
    pub contacts: i64,
    /// claimed / shipped.
    pub recall_rate: f64,
    pub buyers: i64,
    pub orders: i64,
    pub gmv: Fen,
    pub coupons_used: i64,
    /// Fen: coupon discounts on orders.
    pub coupon_cost: Fen,
    /// Fen: printing plus coupon discounts.
    pub cost: Fen,
    pub roi: Option<f64>,
    /// GMV per card shipped, fen (单卡贡献).
    pub per_card: f64,
    pub series: Vec<Point>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BatchReport {
    pub batch: Batch,
    pub total: CardReport,
    pub variants: Vec<CardReport>,
    /// Claims per card shipped, variant against the first.
    pub ab: Option<Analysis>,
}

/// A batch's figures, per variant and in total. Orders count in the window after each claim.
pub async fn batch_report(db: &Db, tenant: TenantId, id: i64) -> Result<BatchReport, CardError> {
    let batch = get_batch(db, tenant, id).await?;
    let cards = cards_of(db, tenant, id).await?;
    let window = batch.window_days * 86_400_000;
    let mut by: BTreeMap<String, CardReport> = BTreeMap::new();
    let blank = |v: &str| CardReport {
        variant: v.to_string(),
        series: SERIES_HOURS
            .iter()
            .map(|&hours| Point {
                hours,
                ..Point::default()
            })
            .collect(),
        ..CardReport::default()
    };
    for v in &batch.variants {
        by.insert(v.name.clone(), blank(&v.name));
    }
    let mut claimers: HashMap<CustomerId, (String, i64)> = HashMap::new();
    let mut coupon_variant: HashMap<i64, String> = HashMap::new();
    for c in &cards {
        let r = by
            .entry(c.variant.clone())
            .or_insert_with(|| blank(&c.variant));
        r.shipped += 1;
        r.scans += c.scans;
        r.scanned += (c.scans > 0) as i64;
        r.contacts += c.contact_at.is_some() as i64;
        if let (Some(cust), Some(at)) = (c.customer_id, c.claimed_at) {
            r.claimed += 1;
            claimers.insert(cust, (c.variant.clone(), at));
        }
        if let Some(cp) = c.coupon_id {
            coupon_variant.insert(cp, c.variant.clone());
        }
    }
    // A claimer OneID has since merged into another record of the same person is that record
    // now, and the person's orders are stored under it.
    let recorded: Vec<CustomerId> = claimers.keys().copied().collect();
    let claimers_of = crate::know::customers::recorded_behind(
        crate::know::customers::surviving_ids(db, tenant, &recorded).await?,
    );
    let mut tx = db.begin().await?;
    let orders: Vec<(CustomerId, i64, Fen, Fen)> = tx
        .fetch_in(
            &format!("SELECT customer_id, ordered_at, amount, refund_amount FROM orders WHERE tenant_id = $1 AND status IN {PURCHASE_STATUSES} AND customer_id"),
            &[tenant.into()],
            claimers_of.keys().map(|&c| Value::from(c)).collect(),
        )
        .await?;
    // A card's coupon counts for the card's variant, whoever holds it now.
    let used: Vec<(i64, Option<Fen>)> = tx
        .fetch_in(
            "SELECT id, discount FROM coupons WHERE tenant_id = $1 AND status = 'redeemed' AND id",
            &[tenant.into()],
            coupon_variant.keys().map(|&c| Value::from(c)).collect(),
        )
        .await?;
    drop(tx);
    let mut buyers = HashSet::new();
    for (now, at, amount, refund) in orders {
        // The first claim of the person whose window holds the order: counted once.
        let claim = claimers_of.get(&now).and_then(|recorded| {
            recorded.iter().find_map(|c| {
                claimers
                    .get(c)
                    .filter(|(_, t0)| at >= *t0 && at < t0 + window)
            })
        });
        let Some((variant, t0)) = claim else {
            continue;
        };
        let Some(r) = by.get_mut(variant) else {
            continue;
        };
        r.orders += 1;
        r.gmv += amount - refund;
        // A person, however many records claimed for them, is one buyer.
        if buyers.insert(now) {
            r.buyers += 1;
        }
        if let Some(i) = SERIES_HOURS.iter().position(|&h| at < t0 + h * HOUR) {
            for p in &mut r.series[i..] {
                p.orders += 1;
                p.gmv += amount - refund;
            }
        }
    }
    for (coupon, discount) in used {
        if let Some(r) = coupon_variant.get(&coupon).and_then(|v| by.get_mut(v)) {
            r.coupons_used += 1;
            r.coupon_cost += discount.unwrap_or(Fen::ZERO);
        }
    }
    let mut total = blank("total");
    for r in by.values_mut() {
        r.cost = batch.cost_per_card * r.shipped + r.coupon_cost;
        finish(r);
        total.shipped += r.shipped;
        total.scanned += r.scanned;
        total.scans += r.scans;
        total.claimed += r.claimed;
        total.contacts += r.contacts;
        total.buyers += r.buyers;
        total.orders += r.orders;
        total.gmv += r.gmv;
        total.coupons_used += r.coupons_used;
        total.coupon_cost += r.coupon_cost;
        total.cost += r.cost;
        for (t, p) in total.series.iter_mut().zip(&r.series) {
            t.orders += p.orders;
            t.gmv += p.gmv;
        }
    }
    finish(&mut total);
    let variants: Vec<CardReport> = batch
        .variants
        .iter()
        .filter_map(|v| by.remove(&v.name))
        .collect();
    let ab = (variants.len() >= 2).then(|| {
        let arms: Vec<Arm> = variants
            .iter()
            .map(|v| Arm {
                name: v.variant.clone(),
                n: v.shipped as u64,
                x: v.claimed as u64,
                weight: batch
                    .variants
                    .iter()
                    .find(|s| s.name == v.variant)
                    .map_or(1.0, |s| s.weight as f64),
            })
            .collect();
        abtest::analyse(&arms, None, 0.05, super::report::MIN_PER_ARM)
    });
    Ok(BatchReport {
        batch,
        total,
        variants,
        ab,
    })
}

fn finish(r: &mut CardReport) {
    if r.shipped > 0 {
        r.recall_rate = r.claimed as f64 / r.shipped as f64;
        r.per_card = r.gmv.get() as f64 / r.shipped as f64;
    }
    r.roi = (r.cost > Fen::ZERO).then(|| r.gmv.get() as f64 / r.cost.get() as f64);
}

/// The batch report as CSV: one row per variant and the total, money in yuan.
pub fn batch_csv(r: &BatchReport) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record([
        "variant",
        "shipped",
        "scanned",
        "scans",
        "claimed",
        "contacts",
        "recall_rate",
        "buyers",
        "orders",
        "gmv_yuan",
        "coupons_used",
        "coupon_cost_yuan",
        "cost_yuan",
        "roi",
        "per_card_yuan",
    ]);
    let yuan = crate::know::report::plain_yuan;
    for v in r.variants.iter().chain(std::iter::once(&r.total)) {
        let _ = w.write_record([
            inert(&v.variant).into_owned(),
            v.shipped.to_string(),
            v.scanned.to_string(),
            v.scans.to_string(),
            v.claimed.to_string(),
            v.contacts.to_string(),
            format!("{:.4}", v.recall_rate),
            v.buyers.to_string(),
            v.orders.to_string(),
            yuan(v.gmv),
            v.coupons_used.to_string(),
            yuan(v.coupon_cost),
            yuan(v.cost),
            v.roi.map(|x| format!("{x:.2}")).unwrap_or_default(),
            format!("{:.2}", v.per_card / 100.0),
        ]);
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// The cards for the printing shop as CSV (code, URL, variant) for variable-data printing.
pub fn cards_csv(cards: &[Card], public_url: &str) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record(["code", "url", "variant"]);
    for c in cards {
        let _ = w.write_record([
            c.code.as_str(),
            &format!("{public_url}/c/{}", c.code),
            &inert(&c.variant),
        ]);
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// A print-ready PDF: A4 sheets of 3 × 7 cards (70 × 42.4 mm label stock), each with its QR
/// (dark modules drawn as vector squares, so it prints sharp at any size), its code in groups
/// for reading aloud, and a cut outline.
pub fn cards_pdf(cards: &[Card], public_url: &str) -> Result<Vec<u8>, super::qr::QrError> {
    use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str};
    const MM: f32 = 72.0 / 25.4;
    let (cols, rows) = (3usize, 7usize);
    let (page_w, page_h) = (210.0 * MM, 297.0 * MM);
    let (cell_w, cell_h) = (70.0 * MM, 297.0 / 7.0 * MM);
    let per_page = cols * rows;
    let pages = cards.len().div_ceil(per_page).max(1);
    let mut pdf = Pdf::new();
    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let font = Ref::new(3);
    let font_name = Name(b"F1");
    let page_ids: Vec<Ref> = (0..pages).map(|p| Ref::new(10 + 2 * p as i32)).collect();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree)
        .kids(page_ids.iter().copied())
        .count(pages as i32);
    pdf.type1_font(font).base_font(Name(b"Courier-Bold"));
    for (p, page_id) in page_ids.iter().enumerate() {
        let content_id = Ref::new(11 + 2 * p as i32);
        let mut page = pdf.page(*page_id);
        page.media_box(Rect::new(0.0, 0.0, page_w, page_h));
        page.parent(tree);
        page.contents(content_id);
        page.resources().fonts().pair(font_name, font);
        page.finish();
        let mut c = Content::new();
        for (k, card) in cards.iter().skip(p * per_page).take(per_page).enumerate() {
            let (col, row) = (k % cols, k / cols);
            let x0 = col as f32 * cell_w;
            let y0 = page_h - (row + 1) as f32 * cell_h;
            // Cut outline, light grey.
            c.set_stroke_gray(0.8);
            c.set_line_width(0.3);
            c.rect(x0, y0, cell_w, cell_h);
            c.stroke();
            // The QR, 30 mm square with its quiet zone, on the left.
            let (w, dark) = super::qr::modules(&format!("{public_url}/c/{}", card.code))?;
            let side = 30.0 * MM;
            let module = side / (w + 8) as f32;
            let (qx, qy) = (x0 + 4.0 * MM, y0 + (cell_h - side) / 2.0);
            c.set_fill_gray(0.0);
            for (i, d) in dark.iter().enumerate() {
                if *d {
                    let (mx, my) = ((i % w + 4) as f32, (i / w + 4) as f32);
                    c.rect(
                        qx + mx * module,
                        qy + side - (my + 1.0) * module,
                        module,
                        module,
                    );
                }
            }
            c.fill_nonzero();
            // The code, in groups of 4-4-3, on the right.
            let code = format!(
                "{} {} {}",
                &card.code[..4],
                &card.code[4..8],
                &card.code[8..]
            );
            c.begin_text();
            c.set_font(font_name, 10.0);
            c.next_line(x0 + 37.0 * MM, y0 + cell_h / 2.0);
            c.show(Str(code.as_bytes()));
            c.end_text();
        }
        pdf.stream(content_id, &c.finish());
    }
    Ok(pdf.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(code: &str) -> Card {
        Card {
            id: 1,
            batch_id: 1,
            code: code.into(),
            variant: "A".into(),
            scans: 0,
            first_scan: None,
            customer_id: None,
            claimed_at: None,
            coupon_id: None,
            contact_at: None,
        }
    }

    #[test]
    fn the_pdf_has_a_page_per_21_cards() {
        let cards: Vec<Card> = (0..22).map(|_| card(&codes::card_code())).collect();
        let pdf = cards_pdf(&cards, "https://s.brand.cn").expect("pdf");
        assert!(pdf.starts_with(b"%PDF-"));
        let text = String::from_utf8_lossy(&pdf);
        assert_eq!(
            text.matches("/Type /Page").count() - text.matches("/Type /Pages").count(),
            2
        );
        let c = &cards[21].code;
        assert!(text.contains(&format!("{} {} {}", &c[..4], &c[4..8], &c[8..])));
    }

    #[test]
    fn variants_follow_weights() {
        let vs = vec![
            CardVariant {
                name: "A".into(),
                weight: 1,
            },
            CardVariant {
                name: "B".into(),
                weight: 3,
            },
        ];
        let b = (0..4000).filter(|&i| variant_of(7, i, &vs) == "B").count();
        assert!((2850..3150).contains(&b), "{b}");
    }
}
