//! `/api/v1` for `measure`: what the brand took and gained over time.

pub mod trends;
