//! Patron's domain layer.
//!
//! Pure types and rules: money in fen, identifiers, validation of customer profiles,
//! phone and ID-document handling, card numbers, name search keys. Nothing here does
//! I/O, reads the clock or touches a database; callers pass in "now" and secrets.

pub mod card_number;
pub mod customer;
pub mod error;
pub mod id_document;
pub mod ids;
pub mod money;
pub mod page;
pub mod phone;
pub mod search;

pub use error::{FieldError, ValidationErrors};
pub use money::Money;
