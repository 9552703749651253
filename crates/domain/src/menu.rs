//! The menu: dishes in categories with their regular price. Member prices and price
//! history come with the loyalty work.

use crate::ids::{MenuItemId, TenantId};
use crate::money::Money;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// A menu category (凉菜, 热菜, 主食...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MenuCategory {
    #[serde(skip_serializing)]
    #[schema(ignore)]
    pub tenant_id: TenantId,
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    pub name: String,
    pub name_en: String,
    pub sort_order: i32,
}

/// A dish.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MenuItem {
    #[serde(skip_serializing)]
    #[schema(ignore)]
    pub tenant_id: TenantId,
    pub id: MenuItemId,
    #[schema(value_type = String, format = Uuid)]
    pub category_id: Uuid,
    pub name: String,
    pub name_en: String,
    /// Regular price in fen.
    pub price: Money,
    /// Whether the item joins discounts (some set menus and drinks do not).
    pub joins_discounts: bool,
    pub active: bool,
}
