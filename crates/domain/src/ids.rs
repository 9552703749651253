//! Typed identifiers. UUID v7 (time-ordered) so rows made on different stores or in
//! imports never collide and indexes stay append-friendly.

use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(transparent)]
        #[schema(value_type = String, format = Uuid)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh identifier from a caller-supplied UUID (the caller owns randomness).
            pub const fn from_uuid(u: Uuid) -> Self {
                Self(u)
            }
            pub const fn uuid(self) -> Uuid {
                self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
        impl std::str::FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

id_type!(
    /// A merchant: the unit of data isolation.
    TenantId
);
id_type!(
    /// A store (门店) of a tenant.
    StoreId
);
id_type!(
    /// A staff account.
    StaffId
);
id_type!(
    /// A customer or member.
    CustomerId
);
id_type!(
    /// A member card.
    CardId
);
id_type!(
    /// A menu item (dish).
    MenuItemId
);
id_type!(
    /// An event on a customer's timeline.
    TimelineEventId
);
