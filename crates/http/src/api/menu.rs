//! Menu management: categories, dishes, member prices, price history and quotes.

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Auth, Json, Path, Query};
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use patron_app::App;
use patron_app::menu::{
    CategoryPatch, ItemPatch, ItemQuery, ItemQuote, NewCategory, NewItem, QuoteRequest,
    SetMemberPrices,
};
use patron_domain::ids::MenuItemId;
use patron_domain::menu::{MenuCategory, PriceChange, PricedItem};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

/// The menu's categories in display order.
#[utoipa::path(get, path = "/menu/categories", tag = "menu", security(("bearer" = [])),
    responses((status = 200, body = Vec<MenuCategory>), (status = 401, body = ErrorBody)))]
pub async fn list_categories(
    State(app): State<App>,
    Auth(a): Auth,
) -> ApiResult<axum::Json<Vec<MenuCategory>>> {
    Ok(axum::Json(app.menu_categories(&a).await?))
}

/// Creates a category; names are unique.
#[utoipa::path(post, path = "/menu/categories", tag = "menu", security(("bearer" = [])), request_body = NewCategory,
    responses((status = 201, body = MenuCategory), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_category(
    State(app): State<App>,
    Auth(a): Auth,
    Json(req): Json<NewCategory>,
) -> ApiResult<(StatusCode, axum::Json<MenuCategory>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(app.create_menu_category(&a, &req).await?),
    ))
}

/// Renames or reorders a category.
#[utoipa::path(patch, path = "/menu/categories/{id}", tag = "menu", security(("bearer" = [])),
    params(("id" = String, Path, description = "category id")), request_body = CategoryPatch,
    responses((status = 200, body = MenuCategory), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_category(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<Uuid>,
    Json(req): Json<CategoryPatch>,
) -> ApiResult<axum::Json<MenuCategory>> {
    Ok(axum::Json(app.update_menu_category(&a, id, &req).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ItemParams {
    /// Only this category's dishes.
    category_id: Option<Uuid>,
    /// true: on the menu; false: taken off.
    active: Option<bool>,
    /// Part of the name or the English name.
    q: Option<String>,
}

/// Dishes with their member prices, in menu order.
#[utoipa::path(get, path = "/menu/items", tag = "menu", security(("bearer" = [])), params(ItemParams),
    responses((status = 200, body = Vec<PricedItem>), (status = 401, body = ErrorBody)))]
pub async fn list_items(
    State(app): State<App>,
    Auth(a): Auth,
    Query(p): Query<ItemParams>,
) -> ApiResult<axum::Json<Vec<PricedItem>>> {
    let q = ItemQuery {
        category_id: p.category_id,
        active: p.active,
        q: p.q,
    };
    Ok(axum::Json(app.menu_items(&a, &q).await?))
}

/// Creates a dish, optionally with member prices; the prices start its price history.
#[utoipa::path(post, path = "/menu/items", tag = "menu", security(("bearer" = [])), request_body = NewItem,
    responses((status = 201, body = PricedItem), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_item(
    State(app): State<App>,
    Auth(a): Auth,
    Json(req): Json<NewItem>,
) -> ApiResult<(StatusCode, axum::Json<PricedItem>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(app.create_menu_item(&a, &req).await?),
    ))
}

/// A dish with its member prices.
#[utoipa::path(get, path = "/menu/items/{id}", tag = "menu", security(("bearer" = [])),
    params(("id" = String, Path, description = "menu item id")),
    responses((status = 200, body = PricedItem), (status = 404, body = ErrorBody)))]
pub async fn get_item(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<MenuItemId>,
) -> ApiResult<axum::Json<PricedItem>> {
    Ok(axum::Json(app.get_menu_item(&a, id).await?))
}

/// Changes a dish (name, category, price, discounts, active). A new price is appended to
/// the price history.
#[utoipa::path(patch, path = "/menu/items/{id}", tag = "menu", security(("bearer" = [])),
    params(("id" = String, Path, description = "menu item id")), request_body = ItemPatch,
    responses((status = 200, body = PricedItem), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_item(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<MenuItemId>,
    Json(req): Json<ItemPatch>,
) -> ApiResult<axum::Json<PricedItem>> {
    Ok(axum::Json(app.update_menu_item(&a, id, &req).await?))
}

/// Replaces a dish's member prices (each at most the regular price); the change is
/// appended to the price history.
#[utoipa::path(put, path = "/menu/items/{id}/member-prices", tag = "menu", security(("bearer" = [])),
    params(("id" = String, Path, description = "menu item id")), request_body = SetMemberPrices,
    responses((status = 200, body = PricedItem), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_member_prices(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<MenuItemId>,
    Json(req): Json<SetMemberPrices>,
) -> ApiResult<axum::Json<PricedItem>> {
    Ok(axum::Json(app.set_member_prices(&a, id, &req).await?))
}

/// Every price the dish has had, oldest first: each row is the complete set of prices
/// from its `effective_from` until the next row.
#[utoipa::path(get, path = "/menu/items/{id}/price-history", tag = "menu", security(("bearer" = [])),
    params(("id" = String, Path, description = "menu item id")),
    responses((status = 200, body = Vec<PriceChange>), (status = 404, body = ErrorBody)))]
pub async fn price_history(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<MenuItemId>,
) -> ApiResult<axum::Json<Vec<PriceChange>>> {
    Ok(axum::Json(app.price_history(&a, id).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QuoteParams {
    /// The buyer's level code, e.g. `gold`.
    level: Option<String>,
    /// The kinds of the buyer's card, comma-separated: `member_price,stored_value`.
    card_kinds: Option<String>,
    /// false when the level's rules withhold its member prices (default true).
    member_price_access: Option<bool>,
    /// Price at this moment (RFC 3339; write `+` as `%2B`), e.g. to explain an old receipt.
    at: Option<DateTime<Utc>>,
}

/// What a buyer pays for the dish: the lowest member price they are eligible for, never
/// above the regular price; with `at`, from the prices in force then.
#[utoipa::path(get, path = "/menu/items/{id}/quote", tag = "menu", security(("bearer" = [])),
    params(("id" = String, Path, description = "menu item id"), QuoteParams),
    responses((status = 200, body = ItemQuote), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn quote(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<MenuItemId>,
    Query(p): Query<QuoteParams>,
) -> ApiResult<axum::Json<ItemQuote>> {
    let req = QuoteRequest {
        level: p.level,
        card_kinds: p.card_kinds,
        member_price_access: p.member_price_access,
        at: p.at,
    };
    Ok(axum::Json(app.quote_item(&a, id, &req).await?))
}
