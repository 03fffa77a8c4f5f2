//! Tenants, access, storage, configuration: what every capability stands on.

pub mod access;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod db;
pub mod migrate;
pub mod rows;
pub mod runtime;
