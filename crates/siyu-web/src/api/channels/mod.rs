//! Callbacks from the providers of `channels`.

pub mod sms;
