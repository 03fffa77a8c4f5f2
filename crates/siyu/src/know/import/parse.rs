//! Reading an export: its encoding, its rows into orders (sent to the store a chunk at a time
//! as they fill), and its bad rows into the rejected file with their line, column and reason.

use crate::platform::Fen;
use std::path::Path;

use serde::Serialize;

use super::presets::{self, Columns};
use super::rows::{RowContext, RowError};
use super::{ImportError, ImportOptions};
use crate::know::oneid::IdentityRecord;
use crate::know::orders::{OrderRecord, OrderStatus, dedupe_orders, key_identities};
use crate::platform::crypto::{FieldCipher, TenantLookup};
use crate::platform::spreadsheet::inert;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TextEncoding {
    Utf8,
    Gb18030,
}

/// Picks the encoding of an export: a UTF-8 BOM or valid UTF-8 means UTF-8; otherwise whichever
/// of UTF-8 and GB18030 reads the bytes with fewer errors (a UTF-8 file with one broken row stays
/// UTF-8, and that row is rejected).
pub fn detect_encoding(bytes: &[u8]) -> (TextEncoding, usize) {
    if bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
        return (TextEncoding::Utf8, 3);
    }
    if std::str::from_utf8(bytes).is_ok() {
        return (TextEncoding::Utf8, 0);
    }
    let utf8_errors = String::from_utf8_lossy(bytes).matches('\u{FFFD}').count();
    let (gb, _) = encoding_rs::GB18030.decode_without_bom_handling(bytes);
    let gb_errors = gb.matches('\u{FFFD}').count();
    if gb_errors < utf8_errors {
        (TextEncoding::Gb18030, 0)
    } else {
        (TextEncoding::Utf8, 0)
    }
}

fn decode_field(enc: TextEncoding, raw: &[u8]) -> Option<String> {
    match enc {
        TextEncoding::Utf8 => std::str::from_utf8(raw).ok().map(str::to_owned),
        TextEncoding::Gb18030 => encoding_rs::GB18030
            .decode_without_bom_handling_and_without_replacement(raw)
            .map(|c| c.into_owned()),
    }
}

pub(super) struct Chunk {
    pub(super) orders: Vec<OrderRecord>,
    pub(super) keyed: Vec<IdentityRecord>,
    pub(super) position: u64,
}

pub(super) struct ParseEnd {
    pub(super) read: u64,
    pub(super) rejected: u64,
    pub(super) unknown_texts: std::collections::BTreeMap<String, u64>,
    pub(super) errors: Vec<RowError>,
    pub(super) encoding: TextEncoding,
}

const SHOWN_ERRORS: usize = 20;

pub(super) fn parse_file(
    name: &str,
    bytes: &[u8],
    opts: &ImportOptions,
    cipher: &FieldCipher,
    lookup: &TenantLookup,
    reject_to: &Path,
    tx: tokio::sync::mpsc::Sender<Chunk>,
) -> Result<ParseEnd, ImportError> {
    let (encoding, bom) = detect_encoding(bytes);
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(&bytes[bom..]);
    let mut rec = csv::ByteRecord::new();
    let header: Vec<String> = match rdr.read_byte_record(&mut rec) {
        Ok(true) => rec
            .iter()
            .map(|f| {
                decode_field(encoding, f).unwrap_or_else(|| String::from_utf8_lossy(f).into_owned())
            })
            .collect(),
        Ok(false) => return Err(ImportError::Empty(name.to_owned())),
        Err(e) => return Err(ImportError::Header(name.to_owned(), e.to_string())),
    };
    let columns = Columns::resolve(&opts.preset, &header);
    for f in [presets::Field::OrderNo, presets::Field::OrderedAt] {
        if columns.get(f).is_none() {
            let wanted = opts
                .preset
                .headers
                .iter()
                .find(|(x, _)| *x == f)
                .map(|(_, n)| n.join(" / "))
                .unwrap_or_default();
            return Err(ImportError::MissingColumn {
                file: name.to_owned(),
                field: f.name().to_owned(),
                preset: opts.preset.name.clone(),
                wanted,
            });
        }
    }
    let is_store = opts.preset.channel.as_deref() == Some("store");
    let ctx = RowContext {
        columns,
        channel: opts.channel.clone().or_else(|| opts.preset.channel.clone()),
        store_id: opts.store_id.clone(),
        default_status: if is_store {
            OrderStatus::Completed
        } else {
            OrderStatus::Paid
        },
        status_map: opts.status_map.clone(),
        amounts_per_row: opts.preset.amounts_per_row,
    };

    let mut rejects: Option<csv::Writer<std::fs::File>> = None;
    let _ = std::fs::remove_file(reject_to); // a stale file from an earlier run would mislead
    let mut reject =
        |e: RowError, raw: &[String], errors: &mut Vec<RowError>| -> Result<(), ImportError> {
            let io = |e: csv::Error| {
                ImportError::Io(
                    reject_to.display().to_string(),
                    std::io::Error::other(e.to_string()),
                )
            };
            if rejects.is_none() {
                let f = std::fs::File::create(reject_to)
                    .map_err(|e| ImportError::Io(reject_to.display().to_string(), e))?;
                let mut w = csv::WriterBuilder::new().flexible(true).from_writer(f);
                let bom_line: Vec<String> =
                    ["\u{feff}line".to_string(), "column".into(), "reason".into()]
                        .into_iter()
                        .chain(header.iter().map(|h| inert(h).into_owned()))
                        .collect();
                w.write_record(&bom_line).map_err(io)?;
                rejects = Some(w);
            }
            if let Some(w) = rejects.as_mut() {
                // Operators open this file in Excel or WPS: what a buyer typed must not run there.
                let row: Vec<String> = [e.line.to_string(), e.column.clone(), e.reason.clone()]
                    .into_iter()
                    .chain(raw.iter().cloned())
                    .map(|cell| inert(&cell).into_owned())
                    .collect();
                w.write_record(&row).map_err(io)?;
            }
            if errors.len() < SHOWN_ERRORS {
                errors.push(e);
            }
            Ok(())
        };

    let mut lines = LineCounter::new(&bytes[bom..]);
    let mut read = 0u64;
    let mut rejected = 0u64;
    let mut errors = Vec::new();
    let mut unknown_texts = std::collections::BTreeMap::<String, u64>::new();
    // The order whose first row was rejected, and that row's line: its other rows go with it.
    let mut last_rejected: Option<((String, String), u64)> = None;
    let mut chunk: Vec<OrderRecord> = Vec::with_capacity(opts.chunk_orders + 1);
    let send = |chunk: Vec<OrderRecord>, position: u64| -> bool {
        let keyed = key_identities(cipher, lookup, &chunk);
        tx.blocking_send(Chunk {
            orders: chunk,
            keyed,
            position,
        })
        .is_ok()
    };
    loop {
        let line = lines.line_at(rdr.position().byte());
        let more = match rdr.read_byte_record(&mut rec) {
            Ok(m) => m,
            Err(e) => {
                // A record the CSV reader cannot frame (e.g. an unterminated quote at the end).
                read += 1;
                rejected += 1;
                reject(
                    RowError {
                        line,
                        column: String::new(),
                        reason: format!("unreadable CSV: {e}"),
                    },
                    &[],
                    &mut errors,
                )?;
                break;
            }
        };
        if !more {
            break;
        }
        let line = rec
            .position()
            .map(|p| lines.line_at(p.byte()))
            .unwrap_or(line);
        if rec.len() == 1
            && rec
                .get(0)
                .is_some_and(|f| f.iter().all(u8::is_ascii_whitespace))
        {
            continue; // blank line
        }
        read += 1;
        let mut fields = Vec::with_capacity(rec.len());
        let mut bad_field = None;
        for (i, raw) in rec.iter().enumerate() {
            match decode_field(encoding, raw) {
                Some(s) => fields.push(s),
                None => {
                    bad_field.get_or_insert(i);
                    fields.push(String::from_utf8_lossy(raw).into_owned());
                }
            }
        }
        if rec.len() != header.len() {
            rejected += 1;
            let reason = format!(
                "expected {} columns as in the header, found {}",
                header.len(),
                rec.len()
            );
            reject(
                RowError {
                    line,
                    column: String::new(),
                    reason,
                },
                &fields,
                &mut errors,
            )?;
            continue;
        }
        if let Some(i) = bad_field {
            rejected += 1;
            let reason = format!(
                "invalid {} byte sequence",
                if encoding == TextEncoding::Utf8 {
                    "UTF-8"
                } else {
                    "GB18030"
                }
            );
            reject(
                RowError {
                    line,
                    column: header.get(i).cloned().unwrap_or_default(),
                    reason,
                },
                &fields,
                &mut errors,
            )?;
            continue;
        }
        // Rows of one order (one line each) are adjacent in exports: a row continuing the last
        // order adds its line; order-level cells may be blank there.
        let key = ctx.order_key(line, &fields).ok();
        if let (Some(k), Some((rejected_key, first_line))) = (&key, &last_rejected)
            && k == rejected_key
        {
            rejected += 1;
            let reason = format!("its order's first row (line {first_line}) was rejected");
            reject(
                RowError {
                    line,
                    column: String::new(),
                    reason,
                },
                &fields,
                &mut errors,
            )?;
            continue;
        }
        let continues = match (&key, chunk.last()) {
            (Some((ch, no)), Some(last)) => last.channel == *ch && last.order_no == *no,
            _ => false,
        };
        if continues {
            match continue_order(&ctx, line, &fields, chunk.last_mut()) {
                Ok(()) => {}
                Err(e) => {
                    rejected += 1;
                    reject(e, &fields, &mut errors)?;
                }
            }
            continue;
        }
        match ctx.parse(line, &fields) {
            Ok(order) => {
                if order.status == OrderStatus::Unknown
                    && let Some(t) = &order.status_text
                {
                    *unknown_texts.entry(t.clone()).or_default() += 1;
                }
                if chunk.len() >= opts.chunk_orders {
                    let full =
                        std::mem::replace(&mut chunk, Vec::with_capacity(opts.chunk_orders + 1));
                    if !send(dedupe_orders(full), rdr.position().byte()) {
                        break; // the writer stopped: its error is reported
                    }
                }
                chunk.push(order);
            }
            Err(e) => {
                rejected += 1;
                last_rejected = key.map(|k| (k, line));
                reject(e, &fields, &mut errors)?;
            }
        }
    }
    if !chunk.is_empty() {
        send(dedupe_orders(chunk), rdr.position().byte());
    }
    if let Some(mut w) = rejects {
        w.flush()
            .map_err(|e| ImportError::Io(reject_to.display().to_string(), e))?;
    }
    Ok(ParseEnd {
        read,
        rejected,
        unknown_texts,
        errors,
        encoding,
    })
}

/// Line numbers of records from their byte offsets. The CSV reader's own count is one short
/// after every CRLF line ending (Excel and the platforms write CRLF): it ends a record at the
/// `\r` and starts the next at the `\n`, so a record's offset is moved past line breaks first.
struct LineCounter<'a> {
    bytes: &'a [u8],
    at: usize,
    line: u64,
}

impl<'a> LineCounter<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        LineCounter {
            bytes,
            at: 0,
            line: 1,
        }
    }

    /// The 1-based line of the byte at `offset` (offsets only grow).
    fn line_at(&mut self, offset: u64) -> u64 {
        let mut to = (offset as usize).min(self.bytes.len());
        while to < self.bytes.len() && matches!(self.bytes[to], b'\r' | b'\n') {
            to += 1;
        }
        if to > self.at {
            self.line += self.bytes[self.at..to]
                .iter()
                .filter(|b| **b == b'\n')
                .count() as u64;
            self.at = to;
        }
        self.line
    }
}

/// A row that continues the order before it: its line, and, where rows carry their own amounts,
/// its amounts added to the order's.
fn continue_order(
    ctx: &RowContext,
    line: u64,
    fields: &[String],
    order: Option<&mut OrderRecord>,
) -> Result<(), RowError> {
    let Some(order) = order else {
        return Ok(());
    };
    let own = if ctx.amounts_per_row {
        let (paid, refund) = ctx.row_amounts(line, fields)?;
        let (paid, refund) = crate::know::orders::settle_amounts(Fen::new(paid), Fen::new(refund))
            .map_err(|r| RowError {
                line,
                column: ctx.columns.header_of(presets::Field::RefundAmount),
                reason: r.into(),
            })?;
        let sum = |a: Fen, b: Fen| {
            a.checked_add(b)
                .filter(|s| *s <= crate::know::orders::MAX_FEN)
        };
        match (sum(order.amount, paid), sum(order.refund_amount, refund)) {
            (Some(a), Some(r)) => {
                order.amount = a;
                order.refund_amount = r;
            }
            _ => {
                return Err(RowError {
                    line,
                    column: ctx.columns.header_of(presets::Field::Amount),
                    reason: "the order's amounts add up to more than the largest order".into(),
                });
            }
        }
        Some(paid)
    } else {
        // The order's amount priced its first line; a later line without a price is a gift.
        Some(Fen::ZERO)
    };
    if let Some(l) = ctx.parse_line(line, fields, own, order.refund_of.is_some())? {
        order.lines.push(l);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_are_told_apart() {
        let gbk = encoding_rs::GBK
            .encode("订单编号,买家会员名\n1,张三\n")
            .0
            .into_owned();
        assert_eq!(detect_encoding(&gbk).0, TextEncoding::Gb18030);
        assert_eq!(
            detect_encoding("订单编号\n".as_bytes()),
            (TextEncoding::Utf8, 0)
        );
        let mut bom = vec![0xEF, 0xBB, 0xBF];
        bom.extend_from_slice("订单编号\n".as_bytes());
        assert_eq!(detect_encoding(&bom), (TextEncoding::Utf8, 3));
        // A UTF-8 file with one broken byte stays UTF-8.
        let mut broken = "订单编号,买家会员名,收货人姓名\n1,张三,李四\n2,王五,赵六\n"
            .as_bytes()
            .to_vec();
        broken.push(0xFF);
        broken.extend_from_slice(b",x\n");
        assert_eq!(detect_encoding(&broken).0, TextEncoding::Utf8);
    }

    #[test]
    fn line_numbers_hold_with_crlf_and_quoted_newlines() {
        let text = "a,b\r\n1,2\r\n\"x\r\ny\",4\r\n5,6\r\n";
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(text.as_bytes());
        let mut counter = LineCounter::new(text.as_bytes());
        let mut rec = csv::ByteRecord::new();
        let mut lines = Vec::new();
        while rdr.read_byte_record(&mut rec).unwrap_or(false) {
            lines.push(
                rec.position()
                    .map(|p| counter.line_at(p.byte()))
                    .unwrap_or(0),
            );
        }
        assert_eq!(lines, vec![1, 2, 3, 5]);
    }
}
