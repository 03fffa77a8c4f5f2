//! Tenants, access, storage, configuration: what every capability stands on.

pub mod access;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod customer_sessions;
pub mod db;
pub mod limits;
pub mod lookup_rekey;
pub mod metrics;
pub mod migrate;
pub mod refusal;
// The one module that steps SQLite's own C handle (bulk rows); unsafe is denied elsewhere.
#[allow(unsafe_code)]
pub mod rows;
pub mod runtime;
pub mod spreadsheet;
pub mod tenant_settings;
