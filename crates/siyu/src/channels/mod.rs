//! Channels: adapters to the outside world, one trait each. Every outbound message reaches a
//! channel only through the outbox (`engage::outbox`) and its contact policy.

pub mod marketplaces;
pub mod sms;
