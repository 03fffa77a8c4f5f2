//! Convert (转化/复购): members, points and coupons so far; marketing activities follow.

pub mod coupons;
pub mod members;
pub mod points;
pub mod tiers;
