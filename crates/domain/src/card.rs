//! Member cards. Balances and the ledger come with the cards-and-ledger work; here a card
//! is its number, holder and status, enough to find a customer by card at the till.

use crate::ids::{CardId, CustomerId, TenantId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Physical (a plastic card) or electronic (a number in an app or on a phone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CardMedium {
    Physical,
    Electronic,
}

/// A card's life: active, frozen, lost (replaced), closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CardStatus {
    Active,
    Frozen,
    Lost,
    Closed,
}

macro_rules! str_codes {
    ($t:ty { $($v:path => $s:literal),+ }) => {
        impl $t {
            pub fn as_str(self) -> &'static str { match self { $($v => $s),+ } }
            pub fn parse(s: &str) -> Option<Self> { match s { $($s => Some($v),)+ _ => None } }
        }
    };
}
str_codes!(CardMedium { CardMedium::Physical => "physical", CardMedium::Electronic => "electronic" });
str_codes!(CardStatus { CardStatus::Active => "active", CardStatus::Frozen => "frozen", CardStatus::Lost => "lost", CardStatus::Closed => "closed" });

/// A member card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Card {
    #[serde(skip_serializing)]
    #[schema(ignore)]
    pub tenant_id: TenantId,
    pub id: CardId,
    /// Digits with a Luhn check digit.
    pub number: String,
    /// `None` for an anonymous card.
    pub customer_id: Option<CustomerId>,
    pub medium: CardMedium,
    pub status: CardStatus,
    pub issued_at: DateTime<Utc>,
}
