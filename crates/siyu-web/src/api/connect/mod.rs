//! `/api/v1` for `connect`: WeCom contacts and groups.

pub mod groups;
pub mod live_codes;
pub mod mass;
pub mod sop;
pub mod wecom;
