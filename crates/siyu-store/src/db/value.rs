//! A bound value: integers, text and bytes (money in fen, times in UTC milliseconds, JSON and
//! ids as text), and the Rust types that convert into one.

use std::sync::Arc;

/// A bound value. Integers, text and bytes are all the schema uses: money is fen, times are
/// UTC milliseconds, JSON and ids are text.
#[derive(Debug, Clone)]
pub enum Value {
    Int(Option<i64>),
    /// Shared, so binding hands SQLite and PostgreSQL the same bytes without copying them.
    Text(Option<Arc<str>>),
    Bytes(Option<Vec<u8>>),
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(Some(v))
    }
}

impl From<Option<i64>> for Value {
    fn from(v: Option<i64>) -> Self {
        Value::Int(v)
    }
}

impl From<i32> for Value {
    fn from(v: i32) -> Self {
        Value::Int(Some(i64::from(v)))
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Int(Some(i64::from(v)))
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(Some(v.into()))
    }
}

impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Value::Text(Some(v.as_str().into()))
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(Some(v.into()))
    }
}

impl From<Option<String>> for Value {
    fn from(v: Option<String>) -> Self {
        Value::Text(v.map(Arc::from))
    }
}

impl From<Option<&str>> for Value {
    fn from(v: Option<&str>) -> Self {
        Value::Text(v.map(Arc::from))
    }
}

impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Self {
        Value::Bytes(Some(v))
    }
}
