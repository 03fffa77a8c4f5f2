//! `/api/v1` for `engage`: reaching customers without spamming them.

pub mod outbox;
pub mod policy;
