//! Engage: reaching customers at the right moment without spamming them. Every outbound
//! message is written to the outbox first and decided by one contact policy.

pub mod outbox;
pub mod policy;
