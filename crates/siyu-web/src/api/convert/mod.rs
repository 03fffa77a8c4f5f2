//! `/api/v1` for `convert`: members, coupons and the activities that sell.

pub mod bargain;
pub mod coupons;
pub mod flash;
pub mod gifts;
pub mod group_buy;
pub mod members;
