//! Measure (衡量): what each card, SMS, guide and coupon brought back, and whether a difference
//! between versions is real or only noise.

// The statistics are a crate of their own (no store, no tenants): `crates/siyu-abtest`.
pub use siyu_abtest as abtest;
pub mod trends;
