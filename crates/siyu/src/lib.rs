//! Siyu (私域): customer operations for brands that sell on marketplaces and in stores.
//!
//! The modules follow the flywheel (acquire → connect → know → engage → convert → measure) and
//! depend one way: `platform` (the store, access, configuration) ← `know` (customers, OneID,
//! orders, events, layering) ← `convert` and `engage` ← `acquire` ← `connect`; `workflows` holds
//! what happens across them when orders arrive; `app` puts the parts together and starts their
//! loops. The web layer on top is the `siyu-web` crate. `docs/ARCHITECTURE.md` maps each feature to its
//! module, route file, console page and background loop.

pub mod acquire;
pub mod app;
pub mod channels;
pub mod connect;
pub mod convert;
pub mod engage;
pub mod know;
pub mod measure;
pub mod platform;
pub mod workflows;
