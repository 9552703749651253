//! Patron's domain layer.
//!
//! Pure types and rules: money in fen, identifiers, validation of customer profiles,
//! phone and ID-document handling, card numbers, name search keys. Nothing here does
//! I/O, reads the clock or touches a database; callers pass in "now" and secrets.

pub mod analytics;
pub mod card;
pub mod card_number;
pub mod coupon;
pub mod customer;
pub mod error;
pub mod id_document;
pub mod ids;
pub mod ledger;
pub mod level;
pub mod menu;
pub mod money;
pub mod org;
pub mod page;
pub mod permissions;
pub mod phone;
pub mod points;
pub mod pricing;
pub mod search;
pub mod settings;
pub mod settlement;
pub mod stored_value;
pub mod timeline;

pub use error::{FieldError, ValidationErrors};
pub use money::Money;
