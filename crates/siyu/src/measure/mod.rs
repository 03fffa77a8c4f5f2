//! Measure (衡量): what each card, SMS, guide and coupon brought back, and whether a difference
//! between versions is real or only noise.

pub mod abtest;
