//! What happens across capabilities when something arrives. Each entry point (the push API,
//! an import, the H5 activities, the demo) stores what it was given and then calls one
//! function here, so no path can forget a step.

pub mod orders;
pub mod shop_authorization;
pub mod sync;

pub use orders::{OrdersStored, activity_paid, import_finished, orders_stored, status_map_saved};
