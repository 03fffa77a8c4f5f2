//! A new flash sale as the operator gives it (item, price, stock, window, per-customer
//! limit, minutes to pay): its checks, and creating the sale.

use crate::platform::Fen;
use crate::platform::TenantId;
use serde::Deserialize;

use super::*;
use crate::platform::db::sql;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaleInput {
    pub name: String,
    pub sku: String,
    pub title: String,
    /// Fen.
    pub price: Fen,
    #[serde(default)]
    pub original_price: Option<Fen>,
    pub stock: i64,
    #[serde(default = "one")]
    pub per_customer: i64,
    pub starts_at: i64,
    pub ends_at: i64,
    /// Minutes a reservation waits for payment before its units return to stock.
    #[serde(default = "fifteen")]
    pub pay_minutes: i64,
}

pub(super) fn one() -> i64 {
    1
}

pub(super) fn fifteen() -> i64 {
    15
}

impl SaleInput {
    pub fn check(&self) -> Result<(), FlashError> {
        crate::convert::payments::check_item(
            &self.name,
            &self.sku,
            &self.title,
            self.price,
            self.original_price,
        )
        .map_err(|(field, reason)| invalid(field, reason))?;
        if !(1..=10_000_000).contains(&self.stock) {
            return Err(invalid("stock", "must be between 1 and 10,000,000"));
        }
        if self.per_customer < 1 {
            return Err(invalid("per_customer", "must be ≥ 1"));
        }
        if self.ends_at <= self.starts_at {
            return Err(invalid("ends_at", "must be after starts_at"));
        }
        if !(1..=1_440).contains(&self.pay_minutes) {
            return Err(invalid("pay_minutes", "must be between 1 and 1440"));
        }
        Ok(())
    }
}

impl FlashSales {
    pub async fn create(
        &self,
        tenant: TenantId,
        s: &SaleInput,
        now: i64,
    ) -> Result<Sale, FlashError> {
        s.check()?;
        let mut tx = self.db.begin().await?;
        let id = tx.reserve_ids("flash_sale", 1).await?;
        tx.execute(
            &sql("INSERT INTO flash_sales (id, tenant_id, name, sku, title, price, original_price, stock, sold, per_customer, starts_at, ends_at, pay_minutes, created_at) \
                  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, $10, $11, $12, $13)")
                .bind(id)
                .bind(tenant)
                .bind(s.name.trim())
                .bind(s.sku.trim())
                .bind(s.title.trim())
                .bind(s.price)
                .bind(s.original_price.unwrap_or(s.price))
                .bind(s.stock)
                .bind(s.per_customer)
                .bind(s.starts_at)
                .bind(s.ends_at)
                .bind(s.pay_minutes)
                .bind(now),
        )
        .await?;
        tx.commit().await?;
        self.get(tenant, id).await
    }
}
