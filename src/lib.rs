//! Siyu (私域): customer operations for brands that sell on marketplaces and in stores.
//!
//! The code follows the flywheel in `DESIGN.md`: `know` (customers, identities, orders, events),
//! and `platform` (storage, access, configuration) so far; `interfaces` holds the HTTP API and
//! the console.

pub mod acquire;
pub mod channels;
pub mod connect;
pub mod convert;
pub mod demo;
pub mod engage;
pub mod interfaces;
pub mod know;
pub mod measure;
pub mod platform;
