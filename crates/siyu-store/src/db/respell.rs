//! Respelling `$N` placeholders for SQLite: `?` when they run 1, 2, 3 …, `?N` otherwise, so
//! SQLite need not look thousands of numbered parameters up; long statements' text is kept.

use sqlx::{AssertSqlSafe, SqlSafeStr, SqlStr};

use super::*;

/// Statements shorter than this are respelled for SQLite each time: they are quick to respell,
/// and many are one of a kind.
pub(super) const SQLITE_TEXT_CACHED_FROM: usize = 2_048;

/// SQLite (and sqlx's binding on top of it) looks numbered parameters up in a linear list, so a
/// statement with thousands of `$N` or `?N` takes quadratic time to prepare and bind; a plain
/// `?` is an index. When the `$N` appear exactly in the order 1, 2, 3 … they become `?`;
/// otherwise `?N`, which SQLite also accepts.
pub(super) fn sqlite_text(text: &str) -> SqlStr {
    let respell = || {
        rewrite_placeholders(text, false)
            .unwrap_or_else(|| rewrite_placeholders(text, true).unwrap_or_else(|| text.to_owned()))
    };
    // Short text goes to sqlx as the `String` just written, not copied again into an `Arc`.
    if text.len() < SQLITE_TEXT_CACHED_FROM {
        return AssertSqlSafe(respell()).into_sql_str();
    }
    AssertSqlSafe(SQLITE_TEXT.get_or_make(text, || (text.into(), text.len(), respell())))
        .into_sql_str()
}

/// One pass over `text` copying the runs between placeholders: `$N` becomes `?` (`None` as
/// soon as a number is out of sequence) or, when `numbered`, `?N`. Quotes and `$` are ASCII, so
/// walking bytes never splits a character.
pub(crate) fn rewrite_placeholders(text: &str, numbered: bool) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut expected = 1u64;
    let mut copied = 0;
    let mut quote: Option<u8> = None; // inside '…' or "…": copied as is
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if let Some(q) = quote {
            if b == q {
                quote = None;
            }
        } else if b == b'\'' || b == b'"' {
            quote = Some(b);
        } else if b == b'$' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit) {
            let start = i + 1;
            let mut end = start;
            while end < bytes.len() && bytes[end].is_ascii_digit() {
                end += 1;
            }
            out.push_str(&text[copied..i]);
            out.push('?');
            if numbered {
                out.push_str(&text[start..end]);
            } else if text[start..end].parse::<u64>().ok() != Some(expected) {
                return None;
            }
            expected += 1;
            copied = end;
            i = end;
            continue;
        }
        i += 1;
    }
    out.push_str(&text[copied..]);
    Some(out)
}
