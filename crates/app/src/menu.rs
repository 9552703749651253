//! Managing the menu: categories, dishes, member prices, price history, and the price a
//! buyer pays for a dish now or at a past moment.
//!
//! Validation is the domain's (`patron_domain::menu`); every price change is written with
//! its history row in one store transaction (`MenuStore`).

use crate::audit;
use crate::{Actor, App, AppError, new_uuid, now};
use chrono::{DateTime, SubsecRound, Utc};
use patron_domain::ValidationErrors;
use patron_domain::card::CardKinds;
use patron_domain::ids::MenuItemId;
use patron_domain::menu::{
    Buyer, CardKind, MemberPriceInput, MenuCategory, MenuItem, PriceChange, PriceQuote, PricedItem,
    check_name, check_price, quote, valid_level_code, validate_member_prices,
};
use patron_domain::money::Money;
use patron_domain::permissions::Permission;
use patron_store::StoreError;
use patron_store::audit::AuditEntry;
use patron_store::menu::{ItemFilter, PriceWrite};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// A new category.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCategory {
    pub name: String,
    #[serde(default)]
    pub name_en: String,
    /// Display order (lower first); after the last category when absent.
    #[serde(default)]
    pub sort_order: Option<i32>,
}

/// Changes to a category; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CategoryPatch {
    pub name: Option<String>,
    pub name_en: Option<String>,
    pub sort_order: Option<i32>,
}

/// A new dish.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewItem {
    #[schema(value_type = String, format = Uuid)]
    pub category_id: Uuid,
    pub name: String,
    #[serde(default)]
    pub name_en: String,
    /// Regular price in fen.
    pub price: Money,
    #[serde(default = "yes")]
    pub joins_discounts: bool,
    #[serde(default = "yes")]
    pub active: bool,
    #[serde(default)]
    pub member_prices: Vec<MemberPriceInput>,
}

fn yes() -> bool {
    true
}

/// Changes to a dish; absent fields stay as they are. A new price is recorded in the
/// price history; it cannot go below the dish's member prices (lower those first).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemPatch {
    #[schema(value_type = Option<String>, format = Uuid)]
    pub category_id: Option<Uuid>,
    pub name: Option<String>,
    pub name_en: Option<String>,
    /// Regular price in fen.
    pub price: Option<Money>,
    pub joins_discounts: Option<bool>,
    /// False takes the dish off the menu; its history stays.
    pub active: Option<bool>,
}

/// The complete new set of a dish's member prices (an empty list removes them all).
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetMemberPrices {
    pub member_prices: Vec<MemberPriceInput>,
}

/// Which dishes to list.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ItemQuery {
    pub category_id: Option<Uuid>,
    pub active: Option<bool>,
    /// Part of the name or English name.
    pub q: Option<String>,
}

/// Who is buying, as the till or a query string says it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct QuoteRequest {
    /// The member's level code.
    pub level: Option<String>,
    /// The kinds of the card presented, comma-separated (`member_price,stored_value`).
    pub card_kinds: Option<String>,
    /// False when the level's rules withhold its member prices (default true).
    pub member_price_access: Option<bool>,
    /// The moment to price at (a past receipt); now when absent.
    pub at: Option<DateTime<Utc>>,
}

/// The price of one dish for one buyer at one moment.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ItemQuote {
    pub item_id: MenuItemId,
    /// The moment priced.
    pub at: DateTime<Utc>,
    /// When the prices used took effect (the price-history row in force at `at`);
    /// absent for a dish older than its history.
    pub prices_from: Option<DateTime<Utc>>,
    #[serde(flatten)]
    pub quote: PriceQuote,
}

fn category_not_found() -> AppError {
    AppError::NotFound {
        entity: "menu category",
    }
}

fn item_not_found() -> AppError {
    AppError::NotFound {
        entity: "menu item",
    }
}

fn name_taken(what: &str, existing: Option<Uuid>) -> AppError {
    AppError::Conflict {
        code: "name_taken",
        field: Some("name"),
        message: format!("{what} already has this name"),
        existing,
    }
}

/// A unique-name race lost to another writer becomes the same 409 as the pre-check.
fn on_conflict(what: &'static str) -> impl Fn(StoreError) -> AppError {
    move |e| match e {
        StoreError::Conflict { .. } => name_taken(what, None),
        other => other.into(),
    }
}

fn above_regular(regular: Money) -> AppError {
    ValidationErrors::single(
        "member_prices",
        "above_regular_price",
        format!("a member price is above the regular price {regular}"),
    )
    .into()
}

/// Parses `member_price,stored_value` into card kinds; an unknown kind is refused.
pub fn parse_card_kinds(s: &str) -> Result<CardKinds, ValidationErrors> {
    let mut kinds = CardKinds {
        stored_value: false,
        points: false,
        member_price: false,
    };
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match CardKind::parse(part) {
            Some(CardKind::StoredValue) => kinds.stored_value = true,
            Some(CardKind::Points) => kinds.points = true,
            Some(CardKind::MemberPrice) => kinds.member_price = true,
            None => {
                return Err(ValidationErrors::single(
                    "card_kinds",
                    "unknown_card_kind",
                    format!("{part:?} is not a card kind (stored_value, points, member_price)"),
                ));
            }
        }
    }
    Ok(kinds)
}

impl App {
    /// The tenant's categories in display order.
    pub async fn menu_categories(&self, actor: &Actor) -> Result<Vec<MenuCategory>, AppError> {
        actor.require(Permission::ViewCatalog)?;
        Ok(self.storage.menu_categories(actor.tenant_id).await?)
    }

    pub async fn create_menu_category(
        &self,
        actor: &Actor,
        req: &NewCategory,
    ) -> Result<MenuCategory, AppError> {
        actor.require(Permission::ManageMenu)?;
        let mut errors = ValidationErrors::default();
        let name = check_name("name", &req.name, true).map_err(|e| errors.push(e));
        let name_en = check_name("name_en", &req.name_en, false).map_err(|e| errors.push(e));
        let (Ok(name), Ok(name_en)) = (name, name_en) else {
            return Err(errors.into());
        };
        let existing = self.storage.menu_categories(actor.tenant_id).await?;
        if let Some(c) = existing.iter().find(|c| c.name == name) {
            return Err(name_taken("another category", Some(c.id)));
        }
        let sort_order = req.sort_order.unwrap_or_else(|| {
            existing
                .iter()
                .map(|c| c.sort_order)
                .max()
                .map_or(10, |m| m.saturating_add(10))
        });
        let category = MenuCategory {
            tenant_id: actor.tenant_id,
            id: new_uuid(),
            name,
            name_en,
            sort_order,
        };
        self.storage
            .create_menu_category(&category)
            .await
            .map_err(on_conflict("another category"))?;
        self.audit(AuditEntry {
            after: audit::state(&category),
            ..self.audit_entry(
                actor,
                "menu_category.create",
                "menu_category",
                Some(category.id.to_string()),
                format!("新菜品分类 / menu category created: {}", category.name),
            )
        })
        .await?;
        Ok(category)
    }

    pub async fn update_menu_category(
        &self,
        actor: &Actor,
        id: Uuid,
        patch: &CategoryPatch,
    ) -> Result<MenuCategory, AppError> {
        actor.require(Permission::ManageMenu)?;
        let mut c = self
            .storage
            .menu_category(actor.tenant_id, id)
            .await?
            .ok_or_else(category_not_found)?;
        let before = audit::state(&c);
        let mut errors = ValidationErrors::default();
        if let Some(n) = &patch.name {
            match check_name("name", n, true) {
                Ok(n) => c.name = n,
                Err(e) => errors.push(e),
            }
        }
        if let Some(n) = &patch.name_en {
            match check_name("name_en", n, false) {
                Ok(n) => c.name_en = n,
                Err(e) => errors.push(e),
            }
        }
        errors.into_result(())?;
        if let Some(o) = patch.sort_order {
            c.sort_order = o;
        }
        let others = self.storage.menu_categories(actor.tenant_id).await?;
        if let Some(o) = others.iter().find(|o| o.id != id && o.name == c.name) {
            return Err(name_taken("another category", Some(o.id)));
        }
        self.storage
            .update_menu_category(&c)
            .await
            .map_err(|e| match e {
                StoreError::NotFound => category_not_found(),
                other => on_conflict("another category")(other),
            })?;
        self.audit(AuditEntry {
            before,
            after: audit::state(&c),
            ..self.audit_entry(
                actor,
                "menu_category.update",
                "menu_category",
                Some(id.to_string()),
                format!("菜品分类变更 / menu category changed: {}", c.name),
            )
        })
        .await?;
        Ok(c)
    }

    /// Dishes with their member prices, in menu order.
    pub async fn menu_items(
        &self,
        actor: &Actor,
        q: &ItemQuery,
    ) -> Result<Vec<PricedItem>, AppError> {
        actor.require(Permission::ViewCatalog)?;
        let f = ItemFilter {
            category_id: q.category_id,
            active: q.active,
            text: q.q.clone(),
        };
        Ok(self.storage.menu_items(actor.tenant_id, &f).await?)
    }

    /// A dish with its member prices, for a caller who may see the catalogue.
    pub async fn get_menu_item(
        &self,
        actor: &Actor,
        id: MenuItemId,
    ) -> Result<PricedItem, AppError> {
        actor.require(Permission::ViewCatalog)?;
        self.menu_item(actor, id).await
    }

    /// A dish (a helper: callers check their permission).
    pub async fn menu_item(&self, actor: &Actor, id: MenuItemId) -> Result<PricedItem, AppError> {
        self.storage
            .menu_item(actor.tenant_id, id)
            .await?
            .ok_or_else(item_not_found)
    }

    /// Checks that the category exists (422: a body naming a missing category is bad
    /// input, not a missing resource) and that no other dish in it has the name.
    async fn check_placement(
        &self,
        actor: &Actor,
        category: Uuid,
        name: &str,
        except: Option<MenuItemId>,
    ) -> Result<(), AppError> {
        if self
            .storage
            .menu_category(actor.tenant_id, category)
            .await?
            .is_none()
        {
            return Err(ValidationErrors::single(
                "category_id",
                "unknown_category",
                "no such menu category",
            )
            .into());
        }
        let f = ItemFilter {
            category_id: Some(category),
            ..Default::default()
        };
        let same = self.storage.menu_items(actor.tenant_id, &f).await?;
        if let Some(o) = same
            .iter()
            .find(|o| o.item.name == name && Some(o.item.id) != except)
        {
            return Err(name_taken(
                "another dish in this category",
                Some(o.item.id.0),
            ));
        }
        Ok(())
    }

    /// Creates a dish with its member prices; its first price-history row records them.
    pub async fn create_menu_item(
        &self,
        actor: &Actor,
        req: &NewItem,
    ) -> Result<PricedItem, AppError> {
        actor.require(Permission::ManageMenu)?;
        let id = MenuItemId(new_uuid());
        let mut errors = ValidationErrors::default();
        let name = check_name("name", &req.name, true).map_err(|e| errors.push(e));
        let name_en = check_name("name_en", &req.name_en, false).map_err(|e| errors.push(e));
        let price = check_price("price", req.price).map_err(|e| errors.push(e));
        let prices = match price {
            Ok(p) => {
                validate_member_prices(id, p, &req.member_prices).map_err(|e| errors.0.extend(e.0))
            }
            Err(()) => Err(()),
        };
        let (Ok(name), Ok(name_en), Ok(price), Ok(prices)) = (name, name_en, price, prices) else {
            return Err(errors.into());
        };
        self.check_placement(actor, req.category_id, &name, None)
            .await?;
        let item = MenuItem {
            tenant_id: actor.tenant_id,
            id,
            category_id: req.category_id,
            name,
            name_en,
            price,
            joins_discounts: req.joins_discounts,
            active: req.active,
        };
        self.storage
            .create_menu_item(&item, &prices, now(), Some(actor.staff_id))
            .await
            .map_err(on_conflict("another dish in this category"))?;
        let created = self.menu_item(actor, id).await?;
        self.audit(AuditEntry {
            after: audit::state(&created),
            ..self.audit_entry(
                actor,
                "menu_item.create",
                "menu_item",
                Some(id.0.to_string()),
                format!("新菜品 / dish created: {}", created.item.name),
            )
        })
        .await?;
        Ok(created)
    }

    /// Changes a dish; a new regular price appends a price-history row.
    pub async fn update_menu_item(
        &self,
        actor: &Actor,
        id: MenuItemId,
        patch: &ItemPatch,
    ) -> Result<PricedItem, AppError> {
        actor.require(Permission::ManageMenu)?;
        let current = self.menu_item(actor, id).await?;
        let mut item = current.item.clone();
        let mut errors = ValidationErrors::default();
        if let Some(n) = &patch.name {
            match check_name("name", n, true) {
                Ok(n) => item.name = n,
                Err(e) => errors.push(e),
            }
        }
        if let Some(n) = &patch.name_en {
            match check_name("name_en", n, false) {
                Ok(n) => item.name_en = n,
                Err(e) => errors.push(e),
            }
        }
        if let Some(p) = patch.price {
            match check_price("price", p) {
                Ok(p) => item.price = p,
                Err(e) => errors.push(e),
            }
        }
        if let Some(c) = patch.category_id {
            item.category_id = c;
        }
        if let Some(j) = patch.joins_discounts {
            item.joins_discounts = j;
        }
        if let Some(a) = patch.active {
            item.active = a;
        }
        if let Some(top) = current.member_prices.iter().map(|m| m.price).max()
            && item.price < top
        {
            errors.push(patron_domain::FieldError::new(
                "price",
                "below_member_price",
                format!("the dish has a member price of {top}: lower the member prices first"),
            ));
        }
        errors.into_result(())?;
        if item.category_id != current.item.category_id || item.name != current.item.name {
            self.check_placement(actor, item.category_id, &item.name, Some(id))
                .await?;
        }
        let written = self
            .storage
            .update_menu_item(&item, now(), Some(actor.staff_id))
            .await
            .map_err(|e| match e {
                StoreError::NotFound => item_not_found(),
                other => on_conflict("another dish in this category")(other),
            })?;
        // Bills read dishes from a cache (checkout.rs): they see this at once.
        self.menu_cache.forget(actor.tenant_id);
        if let PriceWrite::AboveRegular { .. } = written {
            // A member price was raised meanwhile (the pre-check above passed).
            return Err(ValidationErrors::single(
                "price",
                "below_member_price",
                "the dish has a higher member price: lower the member prices first",
            )
            .into());
        }
        let updated = self.menu_item(actor, id).await?;
        self.audit(AuditEntry {
            before: audit::state(&current),
            after: audit::state(&updated),
            ..self.audit_entry(
                actor,
                "menu_item.update",
                "menu_item",
                Some(id.0.to_string()),
                format!("菜品变更 / dish changed: {}", updated.item.name),
            )
        })
        .await?;
        Ok(updated)
    }

    /// Replaces a dish's member prices; the change is recorded in the price history.
    pub async fn set_member_prices(
        &self,
        actor: &Actor,
        id: MenuItemId,
        req: &SetMemberPrices,
    ) -> Result<PricedItem, AppError> {
        actor.require(Permission::ManageMenu)?;
        let current = self.menu_item(actor, id).await?;
        let prices = validate_member_prices(id, current.item.price, &req.member_prices)?;
        let written = self
            .storage
            .set_member_prices(
                actor.tenant_id,
                &[(id, prices)],
                now(),
                Some(actor.staff_id),
            )
            .await
            .map_err(|e| match e {
                StoreError::NotFound => item_not_found(),
                other => other.into(),
            })?;
        // Bills read dishes from a cache (checkout.rs): they see this at once.
        self.menu_cache.forget(actor.tenant_id);
        if let PriceWrite::AboveRegular { regular, .. } = written {
            // The regular price was lowered meanwhile.
            return Err(above_regular(regular));
        }
        let updated = self.menu_item(actor, id).await?;
        self.audit(AuditEntry {
            before: audit::state(&current.member_prices),
            after: audit::state(&updated.member_prices),
            ..self.audit_entry(
                actor,
                "menu_item.member_prices",
                "menu_item",
                Some(id.0.to_string()),
                format!("会员价变更 / member prices changed: {}", updated.item.name),
            )
        })
        .await?;
        Ok(updated)
    }

    /// A dish's price history, oldest first.
    pub async fn price_history(
        &self,
        actor: &Actor,
        id: MenuItemId,
    ) -> Result<Vec<PriceChange>, AppError> {
        actor.require(Permission::ViewCatalog)?;
        self.menu_item(actor, id).await?;
        Ok(self.storage.price_history(actor.tenant_id, id).await?)
    }

    /// What a buyer pays for a dish, now or at `req.at`, from the prices in force then.
    pub async fn quote_item(
        &self,
        actor: &Actor,
        id: MenuItemId,
        req: &QuoteRequest,
    ) -> Result<ItemQuote, AppError> {
        actor.require(Permission::ViewCatalog)?;
        let mut errors = ValidationErrors::default();
        let level = req
            .level
            .as_deref()
            .map(str::trim)
            .filter(|l| !l.is_empty());
        if let Some(l) = level
            && !valid_level_code(l)
        {
            errors.push(patron_domain::FieldError::new(
                "level",
                "invalid_level_code",
                "a level code is 1–32 characters of a-z, 0-9 and _, starting with a letter",
            ));
        }
        let kinds = match req.card_kinds.as_deref() {
            Some(s) => parse_card_kinds(s).map_err(|e| errors.0.extend(e.0)),
            None => Ok(Buyer::anonymous().card_kinds),
        };
        let Ok(card_kinds) = kinds else {
            return Err(errors.into());
        };
        errors.into_result(())?;
        let buyer = Buyer {
            level: level.map(str::to_string),
            card_kinds,
            member_price_access: req.member_price_access.unwrap_or(true),
        };
        let current = self.menu_item(actor, id).await?;
        let Some(at) = req.at else {
            // Now: the current prices (the history's last row says since when).
            let at = now();
            let since = self.storage.price_at(actor.tenant_id, id, at).await?;
            return Ok(ItemQuote {
                item_id: id,
                at,
                prices_from: since.map(|s| s.effective_from),
                quote: quote(&current.item, &current.member_prices, &buyer),
            });
        };
        // The precision the databases keep.
        let at = at.trunc_subsecs(6);
        let snap = self
            .storage
            .price_at(actor.tenant_id, id, at)
            .await?
            .ok_or(AppError::NotFound {
                entity: "price of the menu item at that time",
            })?;
        let priced = snap.priced(&current.item);
        Ok(ItemQuote {
            item_id: id,
            at,
            prices_from: Some(snap.effective_from),
            quote: quote(&priced, &snap.member_prices, &buyer),
        })
    }
}
