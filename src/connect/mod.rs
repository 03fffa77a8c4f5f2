//! Connect (承接): WeCom. Callbacks decrypted and queued, channel live codes with their rotas,
//! welcome messages within the welcome_code's 20 seconds, contacts held by guides, customer
//! groups and their retention, group SOP and mass messages through guides. `sandbox` is a
//! local WeCom for the demo, the benchmark and tests.

pub mod client;
pub mod crypto;
pub mod events;
pub mod groups;
pub mod live_codes;
pub mod mass;
pub mod sandbox;
pub mod service;
pub mod sop;
pub mod tasks;
