//! Connect (承接): WeCom. Callbacks decrypted and queued, channel live codes with their rotas,
//! welcome messages within the welcome_code's 20 seconds, contacts held by guides, customer
//! groups and their retention, group SOP and mass messages through guides. The local WeCom that
//! the demo, the benchmark and tests run against is the `siyu-wecom-sandbox` crate.

pub mod client;
pub mod crypto;
pub mod events;
pub mod groups;
pub mod live_codes;
pub mod mass;
pub mod service;
pub mod sop;
pub mod tasks;
