//! Convert (转化/复购): members, points, coupons, and the marketing activities (flash sales,
//! group buys, bargains, gifts for points) with the payments they take.

pub mod bargain;
pub mod coupons;
pub mod flash;
pub mod gifts;
pub mod group_buy;
pub mod members;
pub mod payments;
pub mod points;
pub mod tiers;
