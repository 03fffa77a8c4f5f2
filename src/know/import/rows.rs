//! One CSV row to order fields, with every problem named by column and reason.

use super::presets::{Columns, Field};
use super::values::{clean_cell, parse_money, parse_quantity, parse_time};
use crate::know::identity::{Identity, IdentityKind};
use crate::know::orders::{OrderLine, OrderRecord, OrderStatus};
use crate::know::phone::{PhoneInput, parse_phone};

/// A rejected row: where, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RowError {
    pub line: u64,
    pub column: String,
    pub reason: String,
}

/// Per-file settings that rows need.
#[derive(Debug, Clone)]
pub struct RowContext {
    pub columns: Columns,
    pub channel: Option<String>,
    pub store_id: Option<String>,
    pub default_status: OrderStatus,
}

/// Checks a channel name: lowercase ASCII letters, digits and `_`, up to 32.
pub fn check_channel(c: &str) -> Result<String, String> {
    let c = c.trim().to_ascii_lowercase();
    if c.is_empty()
        || c.len() > 32
        || !c
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(format!(
            "channel {c:?} must be 1–32 lowercase letters, digits or _"
        ));
    }
    Ok(c)
}

/// Checks an order number: non-empty, at most 64 characters, no control characters.
pub fn check_order_no(s: &str) -> Result<String, String> {
    let s = clean_cell(s);
    if s.is_empty() {
        return Err("order id is missing".into());
    }
    if s.chars().count() > 64 || s.chars().any(char::is_control) {
        return Err(format!(
            "order id {s:?} is longer than 64 characters or has control characters"
        ));
    }
    Ok(s.to_owned())
}

impl RowContext {
    fn cell<'a>(&self, rec: &'a [String], f: Field) -> Option<&'a str> {
        self.columns
            .get(f)
            .and_then(|i| rec.get(i))
            .map(|s| clean_cell(s))
            .filter(|s| !s.is_empty())
    }

    /// Turns one row into an order with at most one line.
    pub fn parse(&self, line: u64, rec: &[String]) -> Result<OrderRecord, RowError> {
        let err = |f: Field, reason: String| RowError {
            line,
            column: self.columns.header_of(f),
            reason,
        };
        let order_no = check_order_no(self.cell(rec, Field::OrderNo).unwrap_or(""))
            .map_err(|r| err(Field::OrderNo, r))?;
        let channel = match self
            .cell(rec, Field::Channel)
            .map(str::to_owned)
            .or_else(|| self.channel.clone())
        {
            Some(c) => check_channel(&c).map_err(|r| err(Field::Channel, r))?,
            None => {
                return Err(err(
                    Field::Channel,
                    "channel is missing: give a channel column or --channel".into(),
                ));
            }
        };
        let status = match self.cell(rec, Field::Status) {
            Some(s) => OrderStatus::parse(s)
                .ok_or_else(|| err(Field::Status, format!("status {s:?} is not recognised")))?,
            None => self.default_status,
        };
        let ordered_at = parse_time(self.cell(rec, Field::OrderedAt).unwrap_or(""))
            .map_err(|r| err(Field::OrderedAt, r))?;
        let paid_at = match self.cell(rec, Field::PaidAt) {
            Some(s) => Some(parse_time(s).map_err(|r| err(Field::PaidAt, r))?),
            None => None,
        };
        let quantity = match self.cell(rec, Field::Quantity) {
            Some(s) => parse_quantity(s).map_err(|r| err(Field::Quantity, r))?,
            None => 1,
        };
        let price = match self.cell(rec, Field::Price) {
            Some(s) => Some(parse_money(s).map_err(|r| err(Field::Price, r))?),
            None => None,
        };
        let amount = match (
            self.columns.get(Field::Amount),
            self.cell(rec, Field::Amount),
        ) {
            (_, Some(s)) => parse_money(s).map_err(|r| err(Field::Amount, r))?,
            (Some(_), None) => return Err(err(Field::Amount, "amount is empty".into())),
            (None, None) => price
                .map(|p| p * quantity)
                .ok_or_else(|| err(Field::Amount, "no amount and no unit price".into()))?,
        };
        let refund_amount = match self.cell(rec, Field::RefundAmount) {
            Some(s) => parse_money(s).map_err(|r| err(Field::RefundAmount, r))?,
            None => 0,
        };

        let mut identities = Vec::new();
        let mut phone_hint = None;
        if let Some(p) = self.cell(rec, Field::Phone) {
            match parse_phone(p) {
                Ok(PhoneInput::Phone(p)) => identities.push(Identity::Phone(p)),
                Ok(PhoneInput::Masked(m)) => phone_hint = Some(m),
                Err(e) => return Err(err(Field::Phone, e.to_string())),
            }
        }
        if let (Some(b), Some(kind)) = (
            self.cell(rec, Field::BuyerId),
            IdentityKind::buyer_id_of(&channel),
        ) {
            identities.push(
                Identity::new(kind, b, None).map_err(|e| err(Field::BuyerId, e.to_string()))?,
            );
        }
        for (f, kind) in [
            (Field::MemberNo, IdentityKind::MemberNo),
            (Field::Unionid, IdentityKind::Unionid),
            (Field::Email, IdentityKind::Email),
        ] {
            if let Some(v) = self.cell(rec, f) {
                identities.push(Identity::new(kind, v, None).map_err(|e| err(f, e.to_string()))?);
            }
        }
        if identities.is_empty() {
            return Err(err(
                Field::BuyerId,
                "no buyer identity: the row has no buyer id, valid phone, member number, unionid or email".into(),
            ));
        }
        let title = self.cell(rec, Field::Title).map(str::to_owned);
        let sku = self.cell(rec, Field::Sku).map(str::to_owned);
        let lines = if title.is_some() || sku.is_some() {
            vec![OrderLine {
                sku,
                title,
                category: self.cell(rec, Field::Category).map(str::to_owned),
                quantity,
                price: price.unwrap_or(if quantity > 0 { amount / quantity } else { 0 }),
            }]
        } else {
            Vec::new()
        };
        Ok(OrderRecord {
            channel,
            order_no,
            status,
            ordered_at,
            paid_at,
            amount,
            refund_amount,
            store_id: self
                .cell(rec, Field::StoreId)
                .map(str::to_owned)
                .or_else(|| self.store_id.clone()),
            guide_id: self.cell(rec, Field::GuideId).map(str::to_owned),
            buyer_name: self.cell(rec, Field::BuyerName).map(str::to_owned),
            phone_hint,
            province: self.cell(rec, Field::Province).map(str::to_owned),
            identities,
            lines,
        })
    }
}

/// Folds the next row of the same order into `into`: one more line, and identities it adds.
pub fn fold_line(into: &mut OrderRecord, next: OrderRecord) {
    into.lines.extend(next.lines);
    for i in next.identities {
        if !into.identities.contains(&i) {
            into.identities.push(i);
        }
    }
}
