//! Know the customer: one record per real person (OneID) with their orders and events.

pub mod attributes;
pub mod audience;
pub mod buyer_link;
pub mod customers;
pub mod events;
pub mod identity;
pub mod import;
pub mod ingest;
pub mod notes;
pub mod oneid;
pub mod orders;
pub mod phone;
pub mod profile;
pub mod report;
pub mod segments;
pub mod shop_authorizations;
pub mod shops;
pub mod tags;

// Segment rules and RFM classes are the crate `siyu-audience`, with the index that evaluates them.
pub use siyu_audience::{rfm, rule};

// The customer id is the store's, beside the tenant id, so that both bind as values.
pub use siyu_store::CustomerId;

use crate::platform::refusal::{Refusal, Refuse};

impl Refuse for rule::RuleError {
    fn refusal(&self) -> Refusal {
        Refusal::Rejected("invalid_rule")
    }
}
