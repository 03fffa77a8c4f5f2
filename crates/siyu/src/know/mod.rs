//! Know the customer: one record per real person (OneID) with their orders and events.

pub mod attributes;
pub mod audience;
pub mod buyer_link;
pub mod customers;
pub mod events;
pub mod identity;
pub mod import;
pub mod ingest;
pub mod oneid;
pub mod orders;
pub mod phone;
pub mod profile;
pub mod report;
pub mod rfm;
pub mod rule;
pub mod segments;
pub mod shops;
pub mod tags;
