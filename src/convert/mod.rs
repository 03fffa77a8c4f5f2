//! Convert (转化/复购): members and points so far; coupons and marketing activities follow.

pub mod members;
pub mod points;
