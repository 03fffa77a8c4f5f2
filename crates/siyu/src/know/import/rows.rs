//! One CSV row to order fields, with every problem named by column and reason.

use super::presets::{Columns, Field};
use super::status_map::StatusMap;
use super::values::{clean_cell, parse_money, parse_quantity, parse_signed_money, parse_time};
use crate::know::identity::{Identity, IdentityError, IdentityKind};
use crate::know::orders::{MAX_FEN, OrderLine, OrderRecord, OrderStatus, settle_amounts};
use crate::know::phone::{PhoneError, PhoneInput, parse_phone};
use crate::platform::Fen;

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
    /// The tenant's own readings of status texts (`import.status_map`).
    pub status_map: StatusMap,
    /// Each row carries its own amounts, summed into its order (see `Preset::amounts_per_row`).
    pub amounts_per_row: bool,
}

/// A phone cell that names nobody without being wrong: a platform's encrypted receiver number
/// (`##…`, `$…$`, "密文") or a virtual number with an extension (`13800138000-1234`, `…转1234`).
fn phone_says_nothing(cell: &str) -> bool {
    if cell.starts_with(['#', '$']) || cell.contains("密文") {
        return true;
    }
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    cell.rsplit_once(['-', '转']).is_some_and(|(number, ext)| {
        digits(number) && number.len() == 11 && digits(ext) && ext.len() <= 6
    })
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

    fn err(&self, line: u64, f: Field, reason: String) -> RowError {
        RowError {
            line,
            column: self.columns.header_of(f),
            reason,
        }
    }

    /// The store a row belongs to: its own column, or `--store`.
    fn store(&self, rec: &[String]) -> Option<String> {
        self.cell(rec, Field::StoreId)
            .map(str::to_owned)
            .or_else(|| self.store_id.clone())
    }

    /// The order a row belongs to: (channel, order id). POS receipt numbers restart in every
    /// store, so a store order's id is prefixed with its store unless it already is.
    pub fn order_key(&self, line: u64, rec: &[String]) -> Result<(String, String), RowError> {
        let order_no = check_order_no(self.cell(rec, Field::OrderNo).unwrap_or(""))
            .map_err(|r| self.err(line, Field::OrderNo, r))?;
        let channel = match self
            .cell(rec, Field::Channel)
            .map(str::to_owned)
            .or_else(|| self.channel.clone())
        {
            Some(c) => check_channel(&c).map_err(|r| self.err(line, Field::Channel, r))?,
            None => {
                return Err(self.err(
                    line,
                    Field::Channel,
                    "channel is missing: give a channel column or --channel".into(),
                ));
            }
        };
        let order_no = self.in_store(&channel, rec, order_no);
        Ok((channel, order_no))
    }

    /// A store's receipt number as the store keeps it: prefixed with its store (see `order_key`).
    fn in_store(&self, channel: &str, rec: &[String], order_no: String) -> String {
        self.in_store_of(channel, self.store(rec), order_no)
    }

    fn in_store_of(&self, channel: &str, store: Option<String>, order_no: String) -> String {
        match store {
            Some(store) if channel == "store" && !order_no.starts_with(&store) => {
                format!("{store}-{order_no}")
            }
            _ => order_no,
        }
    }

    /// The sale a return receipt returns, keyed as that sale's own row keys it: an 原单号 column,
    /// else `原单…` in the note. `None` for a row that is not a return.
    fn returned_sale(
        &self,
        line: u64,
        rec: &[String],
        channel: &str,
        below_zero: bool,
    ) -> Result<Option<String>, RowError> {
        let kind_says_return = self
            .cell(rec, Field::ReceiptKind)
            .is_some_and(|k| k.contains('退'));
        if !kind_says_return && !below_zero {
            return Ok(None);
        }
        let named = self
            .cell(rec, Field::ReturnOf)
            .or_else(|| self.cell(rec, Field::Note).and_then(sale_in_note));
        match named {
            Some(sale) => {
                let sale =
                    check_order_no(sale).map_err(|r| self.err(line, Field::ReturnOf, r))?;
                // The sale's store: 原门店 when the return was made elsewhere, else this one.
                let store = self
                    .cell(rec, Field::ReturnStore)
                    .map(str::to_owned)
                    .or_else(|| self.store(rec));
                Ok(Some(self.in_store_of(channel, store, sale)))
            }
            None if kind_says_return => Err(self.err(
                line,
                Field::ReturnOf,
                "a return receipt must name the sale it returns: an 原单号 column, or 原单… in 备注"
                    .into(),
            )),
            None => Err(self.err(
                line,
                Field::Amount,
                "amount is negative and the row names no sale it returns (原单号)".into(),
            )),
        }
    }

    /// A row's own paid and refunded amounts, for exports that write them per row.
    pub fn row_amounts(&self, line: u64, rec: &[String]) -> Result<(i64, i64), RowError> {
        let paid = match self.cell(rec, Field::Amount) {
            Some(s) => parse_money(s).map_err(|r| self.err(line, Field::Amount, r))?,
            None => 0,
        };
        let refund = match self.cell(rec, Field::RefundAmount) {
            Some(s) => parse_money(s).map_err(|r| self.err(line, Field::RefundAmount, r))?,
            None => 0,
        };
        Ok((paid, refund))
    }

    /// The order line a row carries, if any. `amount` prices a line without a unit price. A
    /// return's line may write its quantity or price below zero (`数量 -1`), as POS systems do.
    pub fn parse_line(
        &self,
        line: u64,
        rec: &[String],
        amount: Option<Fen>,
        returned: bool,
    ) -> Result<Option<OrderLine>, RowError> {
        let unsigned = |s: &'_ str| -> String {
            let t = clean_cell(s);
            match t.strip_prefix(['-', '－']) {
                Some(rest) if returned => rest.to_owned(),
                _ => t.to_owned(),
            }
        };
        let title = self.cell(rec, Field::Title).map(str::to_owned);
        let sku = self.cell(rec, Field::Sku).map(str::to_owned);
        if title.is_none() && sku.is_none() {
            return Ok(None);
        }
        let quantity = match self.cell(rec, Field::Quantity) {
            Some(s) => {
                parse_quantity(&unsigned(s)).map_err(|r| self.err(line, Field::Quantity, r))?
            }
            None => 1,
        };
        let price = match self.cell(rec, Field::Price) {
            Some(s) => Fen::new(match parse_signed_money(s) {
                Ok((true, fen)) if returned => fen,
                _ => parse_money(s).map_err(|r| self.err(line, Field::Price, r))?,
            }),
            None => match amount {
                Some(a) if quantity > 0 => a / quantity,
                _ => Fen::ZERO,
            },
        };
        Ok(Some(OrderLine {
            sku,
            title,
            category: self.cell(rec, Field::Category).map(str::to_owned),
            quantity,
            price,
        }))
    }

    /// Turns the first row of an order into the order, with at most one line.
    pub fn parse(&self, line: u64, rec: &[String]) -> Result<OrderRecord, RowError> {
        let err = |f: Field, reason: String| self.err(line, f, reason);
        let (channel, order_no) = self.order_key(line, rec)?;
        // An amount below zero is a return receipt's (退货单), and so is a row whose document
        // kind says 退货; either must name the sale it returns.
        let signed = match self.cell(rec, Field::Amount) {
            Some(s) => Some(parse_signed_money(s).map_err(|r| err(Field::Amount, r))?),
            None => None,
        };
        let below_zero = signed.is_some_and(|(below, _)| below);
        let refund_of = self.returned_sale(line, rec, &channel, below_zero)?;
        // A status nobody knows yet keeps the order (as `unknown`, with its text), never loses it.
        let (status, status_text) = match self.cell(rec, Field::Status) {
            Some(s) => self.status_map.read(s),
            None => (self.default_status, None),
        };
        // A return that went through is refunded in full, and refunds its sale; one voided,
        // held or in a status nobody reads yet keeps that status and refunds nothing.
        let (status, status_text) = match status {
            _ if refund_of.is_none() => (status, status_text),
            s if s.is_purchase() || s == OrderStatus::Refunded => (OrderStatus::Refunded, None),
            s => (s, status_text),
        };
        let ordered_at = parse_time(self.cell(rec, Field::OrderedAt).unwrap_or(""))
            .map_err(|r| err(Field::OrderedAt, r))?;
        let paid_at = match self.cell(rec, Field::PaidAt) {
            Some(s) => Some(parse_time(s).map_err(|r| err(Field::PaidAt, r))?),
            None => None,
        };
        // An empty amount cell (a POS sale on account) is priced by its line, as a file
        // without an amount column is.
        let amount = signed.map(|(_, fen)| Fen::new(fen));
        let order_line = self.parse_line(line, rec, amount, refund_of.is_some())?;
        let amount = match (amount, &order_line) {
            (Some(a), _) => a,
            (None, Some(l)) => l
                .price
                .checked_mul(l.quantity)
                .filter(|a| *a <= MAX_FEN)
                .ok_or_else(|| err(Field::Price, "unit price × quantity is too large".into()))?,
            (None, None) => {
                return Err(err(
                    Field::Amount,
                    "amount is empty and the row has no unit price to price it by".into(),
                ));
            }
        };
        if amount > MAX_FEN {
            return Err(err(
                Field::Amount,
                format!("amount is larger than {} yuan", MAX_FEN.get() / 100),
            ));
        }
        let refund_amount = match self.cell(rec, Field::RefundAmount) {
            _ if status == OrderStatus::Refunded && refund_of.is_some() => amount,
            _ if refund_of.is_some() => Fen::ZERO,
            Some(s) => Fen::new(parse_money(s).map_err(|r| err(Field::RefundAmount, r))?),
            None => Fen::ZERO,
        };
        let (amount, refund_amount) = settle_amounts(amount, refund_amount)
            .map_err(|r| err(Field::RefundAmount, r.into()))?;

        let mut identities = Vec::new();
        let mut phone_hint = None;
        if let Some(p) = self.cell(rec, Field::Phone) {
            match parse_phone(p) {
                Ok(PhoneInput::Phone(p)) => identities.push(Identity::Phone(p)),
                Ok(PhoneInput::Masked(m)) => phone_hint = Some(m),
                // A mask we cannot read (e.g. all stars) says nothing; it is not an error.
                Err(PhoneError::BadMask) => {}
                Err(_) if phone_says_nothing(p) => {}
                Err(e) => return Err(err(Field::Phone, e.to_string())),
            }
        }
        let ids = [
            (Field::BuyerId, IdentityKind::buyer_id_of(&channel)),
            (Field::MemberNo, Some(IdentityKind::MemberNo)),
            (Field::Unionid, Some(IdentityKind::Unionid)),
            (Field::Email, Some(IdentityKind::Email)),
        ];
        for (f, kind) in ids {
            if let (Some(v), Some(kind)) = (self.cell(rec, f), kind) {
                match Identity::new(kind, v, None) {
                    Ok(i) => identities.push(i),
                    // Masked nicknames are shared by thousands of buyers: never an identity.
                    Err(IdentityError::Masked(_)) => {}
                    Err(e) => return Err(err(f, e.to_string())),
                }
            }
        }
        // No identity (a masked phone and no buyer id, or a walk-in sale): the order is kept as
        // an unlinked buyer's, and linked when an identity for it appears.
        Ok(OrderRecord {
            channel,
            order_no,
            status,
            status_text,
            ordered_at,
            paid_at,
            amount,
            refund_amount,
            refund_of,
            store_id: self.store(rec),
            guide_id: self.cell(rec, Field::GuideId).map(str::to_owned),
            buyer_name: self.cell(rec, Field::BuyerName).map(str::to_owned),
            phone_hint,
            province: self.cell(rec, Field::Province).map(str::to_owned),
            identities,
            lines: order_line.into_iter().collect(),
        })
    }
}

/// The sale a cashier's note names: `原单0001退货`, `原单号: XS-0001，尺码不合` (letters, digits,
/// `-` and `_` after 原单 and an optional 号 and colon).
fn sale_in_note(note: &str) -> Option<&str> {
    let at = note.find("原单")? + "原单".len();
    let rest = note[at..].trim_start_matches(['号', ':', '：', ' ', '#']);
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .unwrap_or(rest.len());
    (end > 0).then(|| &rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encrypted_and_virtual_numbers_name_nobody() {
        for cell in [
            "##4D6F2A",
            "$J8gHk$1$",
            "[密文]",
            "13800138000-1234",
            "13800138000转56",
        ] {
            assert!(phone_says_nothing(cell), "{cell}");
        }
        for cell in ["1380013800", "138001380001", "abc", "13800138000-"] {
            assert!(!phone_says_nothing(cell), "{cell}");
        }
    }

    #[test]
    fn a_note_names_the_sale_a_return_returns() {
        assert_eq!(sale_in_note("原单0001退货"), Some("0001"));
        assert_eq!(
            sale_in_note("原单号: XS2024-0001，尺码不合"),
            Some("XS2024-0001")
        );
        assert_eq!(sale_in_note("退货 原单号：S01_0003"), Some("S01_0003"));
        assert_eq!(sale_in_note("顾客退货"), None);
        assert_eq!(sale_in_note("原单号："), None);
    }

    #[test]
    fn a_return_below_zero_is_read_as_a_refunded_receipt_of_its_sale() {
        let header: Vec<String> = [
            "门店",
            "小票号",
            "单据类型",
            "销售时间",
            "实收金额",
            "原单号",
            "备注",
            "会员手机",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let ctx = RowContext {
            columns: Columns::resolve(&super::super::presets::preset("pos").expect("pos"), &header),
            channel: Some("store".into()),
            store_id: None,
            default_status: OrderStatus::Completed,
            status_map: Default::default(),
            amounts_per_row: false,
        };
        let row = |cells: [&str; 8]| cells.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let o = ctx
            .parse(
                2,
                &row([
                    "S01",
                    "0005",
                    "退货",
                    "2024-06-18 16:40:00",
                    "-129.00",
                    "0001",
                    "",
                    "13312345678",
                ]),
            )
            .expect("a return");
        assert_eq!(
            (
                o.order_no.as_str(),
                o.status,
                o.amount,
                o.refund_amount,
                o.refund_of.as_deref()
            ),
            (
                "S01-0005",
                OrderStatus::Refunded,
                Fen::new(12_900),
                Fen::new(12_900),
                Some("S01-0001")
            )
        );
        // The sale named in the note, the amount written positive beside a 退货 kind.
        let o = ctx
            .parse(
                3,
                &row([
                    "S01",
                    "0006",
                    "退货",
                    "2024-06-18 16:41:00",
                    "￥59.00",
                    "",
                    "原单S01-0002退货",
                    "",
                ]),
            )
            .expect("a return");
        assert_eq!(
            (o.amount, o.refund_of.as_deref()),
            (Fen::new(5_900), Some("S01-0002"))
        );
        // A return at another store names the sale's store in 原门店 (the header at the end).
        // A sale is not a return.
        let o = ctx
            .parse(
                4,
                &row([
                    "S01",
                    "0007",
                    "销售",
                    "2024-06-18 16:42:00",
                    "59.00",
                    "",
                    "",
                    "",
                ]),
            )
            .expect("a sale");
        assert_eq!((o.status, o.refund_of), (OrderStatus::Completed, None));
        // A return that names no sale, and a negative amount with nothing to return, are refused
        // by the column that is missing.
        let e = ctx
            .parse(
                5,
                &row([
                    "S01",
                    "0008",
                    "退货",
                    "2024-06-18 16:43:00",
                    "-59.00",
                    "",
                    "顾客退货",
                    "",
                ]),
            )
            .expect_err("no sale named");
        assert_eq!((e.line, e.column.as_str()), (5, "原单号"));
        assert!(e.reason.contains("原单号"), "{}", e.reason);
        let e = ctx
            .parse(
                6,
                &row([
                    "S01",
                    "0009",
                    "销售",
                    "2024-06-18 16:44:00",
                    "-59.00",
                    "",
                    "",
                    "",
                ]),
            )
            .expect_err("negative sale");
        assert_eq!(e.column, "实收金额");
        assert!(e.reason.contains("negative"), "{}", e.reason);

        let header: Vec<String> = [
            "门店",
            "小票号",
            "单据类型",
            "销售时间",
            "实收金额",
            "原单号",
            "原门店",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let ctx = RowContext {
            columns: Columns::resolve(&super::super::presets::preset("pos").expect("pos"), &header),
            ..ctx
        };
        let row = |cells: [&str; 7]| cells.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let o = ctx
            .parse(
                7,
                &row([
                    "S02",
                    "0031",
                    "退货",
                    "2024-06-19 10:00:00",
                    "-129.00",
                    "0001",
                    "S01",
                ]),
            )
            .expect("a return elsewhere");
        assert_eq!(
            (o.order_no.as_str(), o.refund_of.as_deref()),
            ("S02-0031", Some("S01-0001"))
        );
        let o = ctx
            .parse(
                8,
                &row([
                    "S02",
                    "0032",
                    "退货",
                    "2024-06-19 10:05:00",
                    "-59.00",
                    "0002",
                    "",
                ]),
            )
            .expect("a return here");
        assert_eq!(o.refund_of.as_deref(), Some("S02-0002"));
    }
}
