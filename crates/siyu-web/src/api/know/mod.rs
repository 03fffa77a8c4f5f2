//! `/api/v1` for `know`: what the brand knows of its customers.

pub mod audience;
pub mod customers;
pub mod imports;
pub mod ingest;
pub mod rfm;
pub mod segments;
pub mod shops;
pub mod tags;
