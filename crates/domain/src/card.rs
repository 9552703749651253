//! Member cards. Balances and the ledger come with the cards-and-ledger work; here a card
//! is its number, holder and status, enough to find a customer by card at the till.

use crate::ids::{CardId, CustomerId, StoreId, TenantId};
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

/// What a card does; combinable (an integrated card has all three).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct CardKinds {
    /// Holds stored value (储值卡).
    pub stored_value: bool,
    /// Earns and spends points (积分卡).
    pub points: bool,
    /// Gives member prices (会员卡, often bought for a fee).
    pub member_price: bool,
}

impl Default for CardKinds {
    fn default() -> Self {
        CardKinds {
            stored_value: true,
            points: true,
            member_price: false,
        }
    }
}

impl CardKinds {
    /// Stored as a comma-separated list.
    pub fn to_db(self) -> String {
        let mut v = Vec::new();
        if self.stored_value {
            v.push("stored_value");
        }
        if self.points {
            v.push("points");
        }
        if self.member_price {
            v.push("member_price");
        }
        v.join(",")
    }
    pub fn from_db(s: &str) -> CardKinds {
        let has = |k: &str| s.split(',').any(|x| x == k);
        CardKinds {
            stored_value: has("stored_value"),
            points: has("points"),
            member_price: has("member_price"),
        }
    }
}

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
    pub kinds: CardKinds,
    /// The store that issued it.
    pub store_id: Option<StoreId>,
    /// argon2id PHC string of the PIN; never leaves the server.
    #[serde(skip)]
    pub pin_hash: Option<String>,
    /// Wrong PINs in a row since the last right one.
    pub pin_failures: i32,
    /// Spending is refused until then after too many wrong PINs.
    pub pin_locked_until: Option<DateTime<Utc>>,
    /// Spends from and earns into the holder's organization's pooled accounts.
    pub pool_to_org: bool,
    /// The card that replaced this one (after a loss).
    pub replaced_by: Option<CardId>,
}

impl Card {
    /// A new active-or-given-status card with default kinds, no PIN, not pooled.
    pub fn new(
        tenant_id: TenantId,
        id: CardId,
        number: String,
        customer_id: Option<CustomerId>,
        medium: CardMedium,
        status: CardStatus,
        issued_at: DateTime<Utc>,
    ) -> Card {
        Card {
            tenant_id,
            id,
            number,
            customer_id,
            medium,
            status,
            issued_at,
            kinds: CardKinds::default(),
            store_id: None,
            pin_hash: None,
            pin_failures: 0,
            pin_locked_until: None,
            pool_to_org: false,
            replaced_by: None,
        }
    }
}
