//! A statement as repositories build it: `$1…$N` text and its values, the placeholder lists
//! of bulk `VALUES` and `IN (…)`, and `IN` lists cut into statements within the bind limit.

use std::sync::Arc;

use super::*;

/// SQL text with `$1…$N` placeholders and its values.
#[derive(Debug, Clone)]
pub struct Sql {
    pub(super) text: String,
    pub(super) args: Vec<Value>,
}

/// Starts a statement.
pub fn sql(text: impl Into<String>) -> Sql {
    Sql {
        text: text.into(),
        args: Vec::new(),
    }
}

impl Sql {
    pub fn bind(mut self, v: impl Into<Value>) -> Self {
        self.args.push(v.into());
        self
    }
    pub fn push_arg(&mut self, v: impl Into<Value>) {
        self.args.push(v.into());
    }
    /// Appends text with no placeholder of its own (an `ORDER BY`, a `LIMIT` of our numbers).
    pub fn push_text(&mut self, text: &str) {
        self.text.push_str(text);
    }
}

/// Writes `($k,$k+1,…),(…)` for `rows` rows of `cols` columns starting at placeholder `first`.
pub fn values_placeholders(rows: usize, cols: usize, first: usize) -> Arc<str> {
    let key = (rows, cols, first);
    VALUES_TEXT.get_or_make(&key, || {
        (key, 0, write_values_placeholders(rows, cols, first))
    })
}

pub(super) fn write_values_placeholders(rows: usize, cols: usize, first: usize) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(rows * cols * 7);
    let mut n = first;
    for r in 0..rows {
        if r > 0 {
            s.push(',');
        }
        s.push('(');
        for c in 0..cols {
            if c > 0 {
                s.push(',');
            }
            let _ = write!(s, "${n}");
            n += 1;
        }
        s.push(')');
    }
    s
}

/// Writes `$k,$k+1,…` for an `IN (…)` list of `n` values.
pub fn list_placeholders(n: usize, first: usize) -> Arc<str> {
    let key = (n, first);
    LIST_TEXT.get_or_make(&key, || (key, 0, write_list_placeholders(n, first)))
}

pub(super) fn write_list_placeholders(n: usize, first: usize) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(n * 7);
    for i in first..first + n {
        if i > first {
            s.push(',');
        }
        let _ = write!(s, "${i}");
    }
    s
}

/// `HEAD IN (…)` statements covering `list`, each within the bind limit.
pub(super) fn in_statements(head: &str, fixed: &[Value], list: Vec<Value>) -> Vec<Sql> {
    let per = MAX_BINDS - fixed.len();
    let mut out = Vec::with_capacity(list.len().div_ceil(per));
    let mut list = list.into_iter().peekable();
    while list.peek().is_some() {
        let batch: Vec<Value> = list.by_ref().take(per).collect();
        let mut q = sql(format!(
            "{head} IN ({})",
            list_placeholders(batch.len(), fixed.len() + 1)
        ));
        q.args.extend(fixed.iter().cloned());
        q.args.extend(batch);
        out.push(q);
    }
    out
}

/// The largest number of bound values one statement may carry on both backends
/// (PostgreSQL: 65,535; SQLite as bundled: 32,766).
pub const MAX_BINDS: usize = 32_000;
