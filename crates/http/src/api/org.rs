use crate::error::{ApiResult, ErrorBody};
use crate::extract::Auth;
use axum::Json;
use axum::extract::State;
use patron_app::App;
use patron_domain::menu::{MenuCategory, MenuItem};
use patron_domain::org::Store;
use serde::Serialize;
use utoipa::ToSchema;

/// The tenant's stores.
#[utoipa::path(get, path = "/stores", tag = "organization", security(("bearer" = [])),
    responses((status = 200, body = Vec<Store>), (status = 401, body = ErrorBody)))]
pub async fn stores(State(app): State<App>, Auth(a): Auth) -> ApiResult<Json<Vec<Store>>> {
    Ok(Json(app.stores(&a).await?))
}

#[derive(Serialize, ToSchema)]
pub struct Menu {
    categories: Vec<MenuCategory>,
    items: Vec<MenuItem>,
}

/// The menu: categories and dishes with their regular prices (fen).
#[utoipa::path(get, path = "/menu", tag = "organization", security(("bearer" = [])),
    responses((status = 200, body = Menu), (status = 401, body = ErrorBody)))]
pub async fn menu(State(app): State<App>, Auth(a): Auth) -> ApiResult<Json<Menu>> {
    let (categories, items) = app.menu(&a).await?;
    Ok(Json(Menu { categories, items }))
}
