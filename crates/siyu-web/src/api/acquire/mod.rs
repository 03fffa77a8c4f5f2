//! `/api/v1` for `acquire`: bringing marketplace buyers in.

pub mod campaigns;
pub mod cards;
pub mod links;
