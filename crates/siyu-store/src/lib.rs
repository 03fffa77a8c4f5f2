//! Siyu's store: one API over SQLite (a file, one writer) and PostgreSQL (a pool), so that the
//! same statements run on both. `db` holds the handle, transactions, values and the placeholder
//! respelling; `rows` writes and finds rows in bulk, stepping SQLite's own handle where that is
//! faster than one statement per row.
//!
//! `migrate` holds the schema's migrations (`migrations/{sqlite,postgres}`) and applies them; a
//! migration's data step that needs the field key is the library's (`migrate::DataStep`).
//!
//! The server library sees this crate as `platform::db`, `platform::rows` and
//! `platform::migrate`; `TenantId` (made by `int_newtype!`) is the brand every row and lock names. Everything that knows what a table means stays in the library.

pub mod db;
pub mod group_commit;
pub mod int_newtype;
pub mod migrate;
// The one module that steps SQLite's own C handle (bulk rows); unsafe is denied elsewhere.
#[allow(unsafe_code)]
pub mod rows;

pub use int_newtype::{CustomerId, Fen, TenantId};

// What `int_newtype!` names, so that crates using it need not depend on them.
#[doc(hidden)]
pub mod __private {
    pub use serde;
    pub use sqlx;
}
