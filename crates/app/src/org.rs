//! The tenant's organisation as staff see it: stores and the menu.

use crate::{Actor, App, AppError};
use patron_domain::menu::{MenuCategory, MenuItem};
use patron_domain::org::Store;
use patron_domain::permissions::Permission;

impl App {
    /// The actor's tenant's stores.
    pub async fn stores(&self, actor: &Actor) -> Result<Vec<Store>, AppError> {
        actor.require(Permission::ViewCatalog)?;
        Ok(self.storage.list_stores(actor.tenant_id).await?)
    }

    /// The actor's tenant's menu.
    pub async fn menu(
        &self,
        actor: &Actor,
    ) -> Result<(Vec<MenuCategory>, Vec<MenuItem>), AppError> {
        actor.require(Permission::ViewCatalog)?;
        Ok(self.storage.menu(actor.tenant_id).await?)
    }
}
