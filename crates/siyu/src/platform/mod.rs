//! Tenants, access, storage, configuration: what every capability stands on.

pub mod access;
pub mod brand;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod customer_sessions;
pub mod limits;
pub mod lookup_rekey;
pub mod metrics;
pub mod migrate;
pub mod refusal;
pub mod runtime;
pub mod spreadsheet;
pub mod tenant_settings;
pub mod text_enum;

// The store is the crate `siyu-store`; every capability reaches it by these paths.
pub use siyu_store::{Fen, TenantId, db, rows};
