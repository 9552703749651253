//! The tenant's organisation as staff see it: stores and the menu.

use crate::{Actor, App, AppError};
use patron_domain::ids::{StoreId, TenantId};
use patron_domain::menu::{MenuCategory, MenuItem};
use patron_domain::org::{Store, Tenant};
use patron_domain::permissions::Permission;
use std::sync::Arc;

/// A tenant's name and stores, as every bill and receipt needs them.
#[derive(Debug, Clone)]
pub struct Directory {
    pub tenant: Option<Tenant>,
    pub stores: Vec<Store>,
}

/// Directories recently read, per tenant (see [`App::directory`]).
pub type DirectoryCache = crate::tenant_cache::TenantCache<Arc<Directory>>;

impl App {
    /// The actor's tenant's stores.
    pub async fn stores(&self, actor: &Actor) -> Result<Vec<Store>, AppError> {
        actor.require(Permission::ViewCatalog)?;
        Ok(self.storage.list_stores(actor.tenant_id).await?)
    }

    /// The tenant's name and stores, kept for `SETTINGS_TTL` like the settings: read on
    /// every bill, changed almost never. A store missing from a kept copy (created by
    /// another process meanwhile) reads them again.
    pub(crate) async fn directory(
        &self,
        tenant: TenantId,
        must_have: Option<StoreId>,
    ) -> Result<Arc<Directory>, AppError> {
        self.directory_cache
            .get_or_load(
                tenant,
                |d| must_have.is_none_or(|id| d.stores.iter().any(|s| s.id == id)),
                || async {
                    Ok(Arc::new(Directory {
                        tenant: self.storage.tenant(tenant).await?,
                        stores: self.storage.list_stores(tenant).await?,
                    }))
                },
            )
            .await
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
