//! The menu's storage: categories, items, member prices and the price history.
//!
//! Every write that changes an item's regular price or its member prices appends one
//! snapshot row to the item's price history in the same transaction (see
//! [`PriceChange`]); history rows are never edited (database triggers refuse it). Such a
//! write first takes the item's row lock, so that on PostgreSQL two concurrent changes of
//! one item are serialised and the "member price ≤ regular price" check and the history's
//! sequence numbers see the latest state.

use crate::Result;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patron_domain::ids::{MenuItemId, StaffId, TenantId};
use patron_domain::menu::{MemberPrice, MenuCategory, MenuItem, PriceChange, PricedItem};
use patron_domain::money::Money;
use uuid::Uuid;

/// Filters for the item list; all optional, combined with AND.
#[derive(Debug, Clone, Default)]
pub struct ItemFilter {
    pub category_id: Option<Uuid>,
    pub active: Option<bool>,
    /// Part of the name or of the English name, any case.
    pub text: Option<String>,
}

/// What a price write did.
#[derive(Debug, Clone, PartialEq)]
pub enum PriceWrite {
    Done,
    /// Refused, nothing written: the item's regular price (as it is now, inside the
    /// transaction) is below one of its member prices.
    AboveRegular {
        item: MenuItemId,
        regular: Money,
    },
}

#[async_trait]
pub trait MenuStore: Send + Sync {
    /// The tenant's categories in display order.
    async fn menu_categories(&self, tenant: TenantId) -> Result<Vec<MenuCategory>>;
    async fn menu_category(&self, tenant: TenantId, id: Uuid) -> Result<Option<MenuCategory>>;
    /// Errors: `Conflict` when the name is taken.
    async fn create_menu_category(&self, c: &MenuCategory) -> Result<()>;
    /// Replaces name, English name and order. Errors: `NotFound`, `Conflict` (name).
    async fn update_menu_category(&self, c: &MenuCategory) -> Result<()>;

    /// Inserts an item with its member prices and the first row of its price history
    /// (kind `created`). Errors: `Conflict` (name in category), `MissingReference`
    /// (category).
    async fn create_menu_item(
        &self,
        item: &MenuItem,
        member_prices: &[MemberPrice],
        at: DateTime<Utc>,
        staff: Option<StaffId>,
    ) -> Result<()>;
    /// Replaces the item's fields. When the regular price changes, appends a history row
    /// (kind `price`) with the current member prices; a new price below one of them is
    /// refused with [`PriceWrite::AboveRegular`]. Errors: `NotFound`, `Conflict`,
    /// `MissingReference`.
    async fn update_menu_item(
        &self,
        item: &MenuItem,
        at: DateTime<Utc>,
        staff: Option<StaffId>,
    ) -> Result<PriceWrite>;
    /// Replaces the member prices of each listed item and appends one history row per
    /// item (kind `member_prices`), all in one transaction: a price above its item's
    /// regular price refuses the whole call with [`PriceWrite::AboveRegular`].
    /// Errors: `NotFound` when an item does not exist.
    async fn set_member_prices(
        &self,
        tenant: TenantId,
        prices: &[(MenuItemId, Vec<MemberPrice>)],
        at: DateTime<Utc>,
        staff: Option<StaffId>,
    ) -> Result<PriceWrite>;

    async fn menu_item(&self, tenant: TenantId, id: MenuItemId) -> Result<Option<PricedItem>>;
    /// The given items with their member prices (two queries, for a bill's lines); missing
    /// ids are left out.
    async fn menu_items_by_ids(
        &self,
        tenant: TenantId,
        ids: &[MenuItemId],
    ) -> Result<Vec<PricedItem>>;
    /// Items with their member prices, in category order then by name.
    async fn menu_items(&self, tenant: TenantId, f: &ItemFilter) -> Result<Vec<PricedItem>>;
    /// The item's price history, oldest first.
    async fn price_history(&self, tenant: TenantId, item: MenuItemId) -> Result<Vec<PriceChange>>;
    /// The history row in force at `at` (the last one effective at or before it); `None`
    /// before the item's first row.
    async fn price_at(
        &self,
        tenant: TenantId,
        item: MenuItemId,
        at: DateTime<Utc>,
    ) -> Result<Option<PriceChange>>;
}
