//! Siyu's store: one API over SQLite (a file, one writer) and PostgreSQL (a pool), so that the
//! same statements run on both. `db` holds the handle, transactions, values and the placeholder
//! respelling; `rows` writes and finds rows in bulk, stepping SQLite's own handle where that is
//! faster than one statement per row.
//!
//! The server library sees this crate as `platform::db` and `platform::rows`. Its migrations and
//! everything that knows a table stay in the library.

pub mod db;
// The one module that steps SQLite's own C handle (bulk rows); unsafe is denied elsewhere.
#[allow(unsafe_code)]
pub mod rows;
