//! The menu's SQL, shared by both backends like `shared.rs` (see there for why a macro).

use crate::StoreError;
use chrono::{DateTime, Utc};
use patron_domain::ids::{MenuItemId, StaffId, TenantId};
use patron_domain::menu::{
    MemberPrice, MenuCategory, MenuItem, PriceChange, PriceChangeKind, PriceTarget, PricedItem,
};
use patron_domain::money::Money;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use uuid::Uuid;

pub(crate) const ITEM_COLS: &str =
    "tenant_id, id, category_id, name, name_en, price, joins_discounts, active";
pub(crate) const HISTORY_COLS: &str =
    "tenant_id, item_id, seq, kind, price, member_prices, effective_from, staff_id";

fn corrupt(what: &str, v: &str) -> StoreError {
    StoreError::Corrupt(format!("{what}: {v:?}"))
}

#[derive(sqlx::FromRow)]
pub(crate) struct MemberPriceRow {
    item_id: Uuid,
    target_kind: String,
    target_code: String,
    price: i64,
}

impl TryFrom<MemberPriceRow> for MemberPrice {
    type Error = StoreError;
    fn try_from(r: MemberPriceRow) -> Result<Self, StoreError> {
        Ok(MemberPrice {
            item_id: MenuItemId(r.item_id),
            target: target(&r.target_kind, &r.target_code)?,
            price: Money::from_fen(r.price),
        })
    }
}

fn target(kind: &str, code: &str) -> Result<PriceTarget, StoreError> {
    PriceTarget::from_parts(kind, code)
        .ok_or_else(|| corrupt("menu member price target", &format!("{kind}:{code}")))
}

/// A member price inside a history row's JSON snapshot.
#[derive(Serialize, Deserialize)]
struct SnapshotPrice {
    target_kind: String,
    target_code: String,
    price: i64,
}

/// The JSON snapshot of a set of member prices (sorted, so equal sets are equal text).
pub(crate) fn snapshot(prices: &[MemberPrice]) -> String {
    let mut v: Vec<&MemberPrice> = prices.iter().collect();
    v.sort_by(|a, b| a.target.cmp(&b.target));
    let v: Vec<SnapshotPrice> = v
        .into_iter()
        .map(|m| SnapshotPrice {
            target_kind: m.target.kind_str().into(),
            target_code: m.target.code().into(),
            price: m.price.fen(),
        })
        .collect();
    serde_json::to_string(&v).expect("snapshot serialises")
}

#[derive(sqlx::FromRow)]
pub(crate) struct HistoryRow {
    tenant_id: Uuid,
    item_id: Uuid,
    seq: i64,
    kind: String,
    price: i64,
    member_prices: String,
    effective_from: DateTime<Utc>,
    staff_id: Option<Uuid>,
}

impl TryFrom<HistoryRow> for PriceChange {
    type Error = StoreError;
    fn try_from(r: HistoryRow) -> Result<Self, StoreError> {
        let item_id = MenuItemId(r.item_id);
        let snap: Vec<SnapshotPrice> = serde_json::from_str(&r.member_prices)
            .map_err(|_| corrupt("menu_price_history.member_prices", &r.member_prices))?;
        let member_prices = snap
            .into_iter()
            .map(|s| {
                Ok(MemberPrice {
                    item_id,
                    target: target(&s.target_kind, &s.target_code)?,
                    price: Money::from_fen(s.price),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(PriceChange {
            tenant_id: TenantId(r.tenant_id),
            item_id,
            seq: r.seq,
            kind: PriceChangeKind::parse(&r.kind)
                .ok_or_else(|| corrupt("menu_price_history.kind", &r.kind))?,
            price: Money::from_fen(r.price),
            member_prices,
            effective_from: r.effective_from,
            staff_id: r.staff_id.map(StaffId),
        })
    }
}

/// Items with their member prices, in category order, then by name (sorted here rather
/// than by the database, whose text collation differs between the backends).
pub(crate) fn priced_items(
    categories: &[MenuCategory],
    items: Vec<MenuItem>,
    prices: Vec<MemberPrice>,
) -> Vec<PricedItem> {
    let order: HashMap<Uuid, (i32, &str)> = categories
        .iter()
        .map(|c| (c.id, (c.sort_order, c.name.as_str())))
        .collect();
    let mut by_item: HashMap<MenuItemId, Vec<MemberPrice>> = HashMap::new();
    for p in prices {
        by_item.entry(p.item_id).or_default().push(p);
    }
    let mut out: Vec<PricedItem> = items
        .into_iter()
        .map(|item| {
            let mut member_prices = by_item.remove(&item.id).unwrap_or_default();
            member_prices.sort_by(|a, b| a.target.cmp(&b.target));
            PricedItem {
                item,
                member_prices,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        let ka = order.get(&a.item.category_id);
        let kb = order.get(&b.item.category_id);
        (ka, &a.item.name).cmp(&(kb, &b.item.name))
    });
    out
}

macro_rules! impl_menu_storage {
    ($ty:ty, $db:ty) => {
        use $crate::menu::{ItemFilter, MenuStore, PriceWrite};
        use $crate::menu_shared::{
            priced_items, snapshot, HistoryRow, MemberPriceRow, HISTORY_COLS, ITEM_COLS,
        };
        use $crate::rows::{MenuCategoryRow, MenuItemRow};
        use $crate::shared::like_escape;
        use chrono::{DateTime, Utc};
        use patron_domain::ids::{MenuItemId, StaffId, TenantId};
        use patron_domain::menu::{
            MemberPrice, MenuCategory, MenuItem, PriceChange, PriceChangeKind, PricedItem,
        };
        use patron_domain::money::Money;
        use $crate::Result;

        /// Takes the item's row lock (PostgreSQL; SQLite has one writer anyway) and reads
        /// the item as it is now. `None` when there is no such item.
        async fn lock_item<'c>(
            tx: &mut sqlx::Transaction<'c, $db>,
            tenant: TenantId,
            id: MenuItemId,
        ) -> Result<Option<MenuItem>> {
            let touched = sqlx::query("UPDATE menu_items SET active = active WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.0)
                .bind(id.0)
                .execute(&mut **tx)
                .await?
                .rows_affected();
            if touched == 0 {
                return Ok(None);
            }
            let sql = format!("SELECT {ITEM_COLS} FROM menu_items WHERE tenant_id = $1 AND id = $2");
            let row: MenuItemRow = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(tenant.0)
                .bind(id.0)
                .fetch_one(&mut **tx)
                .await?;
            Ok(Some(row.into()))
        }

        async fn member_prices_tx<'c>(
            tx: &mut sqlx::Transaction<'c, $db>,
            tenant: TenantId,
            id: MenuItemId,
        ) -> Result<Vec<MemberPrice>> {
            let rows: Vec<MemberPriceRow> = sqlx::query_as(
                "SELECT item_id, target_kind, target_code, price FROM menu_member_prices \
                 WHERE tenant_id = $1 AND item_id = $2",
            )
            .bind(tenant.0)
            .bind(id.0)
            .fetch_all(&mut **tx)
            .await?;
            rows.into_iter().map(TryInto::try_into).collect()
        }

        async fn insert_member_prices<'c>(
            tx: &mut sqlx::Transaction<'c, $db>,
            tenant: TenantId,
            id: MenuItemId,
            prices: &[MemberPrice],
        ) -> Result<()> {
            for p in prices {
                sqlx::query(
                    "INSERT INTO menu_member_prices (tenant_id, item_id, target_kind, target_code, price) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(tenant.0)
                .bind(id.0)
                .bind(p.target.kind_str())
                .bind(p.target.code())
                .bind(p.price.fen())
                .execute(&mut **tx)
                .await?;
            }
            Ok(())
        }

        /// Appends the item's next history row. Its sequence number is read under the
        /// item's lock (or, for a new item, from its empty history). The first row of an
        /// item created before its history (by `insert_menu`) is kind `recorded`.
        #[allow(clippy::too_many_arguments)]
        async fn append_history<'c>(
            tx: &mut sqlx::Transaction<'c, $db>,
            tenant: TenantId,
            id: MenuItemId,
            kind: PriceChangeKind,
            price: Money,
            prices: &[MemberPrice],
            at: DateTime<Utc>,
            staff: Option<StaffId>,
        ) -> Result<()> {
            let last: Option<i64> =
                sqlx::query_scalar("SELECT MAX(seq) FROM menu_price_history WHERE tenant_id = $1 AND item_id = $2")
                    .bind(tenant.0)
                    .bind(id.0)
                    .fetch_one(&mut **tx)
                    .await?;
            let kind = match (last, kind) {
                (None, PriceChangeKind::Created) => PriceChangeKind::Created,
                (None, _) => PriceChangeKind::Recorded,
                (Some(_), k) => k,
            };
            sqlx::query(
                "INSERT INTO menu_price_history (tenant_id, item_id, seq, kind, price, member_prices, effective_from, staff_id) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(tenant.0)
            .bind(id.0)
            .bind(last.unwrap_or(0) + 1)
            .bind(kind.as_str())
            .bind(price.fen())
            .bind(snapshot(prices))
            .bind(at)
            .bind(staff.map(|s| s.0))
            .execute(&mut **tx)
            .await?;
            Ok(())
        }

        #[async_trait::async_trait]
        impl MenuStore for $ty {
            async fn menu_categories(&self, tenant: TenantId) -> Result<Vec<MenuCategory>> {
                let rows: Vec<MenuCategoryRow> = sqlx::query_as(
                    "SELECT tenant_id, id, name, name_en, sort_order FROM menu_categories WHERE tenant_id = $1",
                )
                .bind(tenant.0)
                .fetch_all(self.reader())
                .await?;
                let mut cats: Vec<MenuCategory> = rows.into_iter().map(Into::into).collect();
                cats.sort_by(|a, b| (a.sort_order, &a.name).cmp(&(b.sort_order, &b.name)));
                Ok(cats)
            }

            async fn menu_category(&self, tenant: TenantId, id: uuid::Uuid) -> Result<Option<MenuCategory>> {
                let row: Option<MenuCategoryRow> = sqlx::query_as(
                    "SELECT tenant_id, id, name, name_en, sort_order FROM menu_categories WHERE tenant_id = $1 AND id = $2",
                )
                .bind(tenant.0)
                .bind(id)
                .fetch_optional(self.reader())
                .await?;
                Ok(row.map(Into::into))
            }

            async fn create_menu_category(&self, c: &MenuCategory) -> Result<()> {
                sqlx::query("INSERT INTO menu_categories (tenant_id, id, name, name_en, sort_order) VALUES ($1, $2, $3, $4, $5)")
                    .bind(c.tenant_id.0)
                    .bind(c.id)
                    .bind(&c.name)
                    .bind(&c.name_en)
                    .bind(c.sort_order)
                    .execute(self.writer())
                    .await?;
                Ok(())
            }

            async fn update_menu_category(&self, c: &MenuCategory) -> Result<()> {
                let n = sqlx::query(
                    "UPDATE menu_categories SET name = $3, name_en = $4, sort_order = $5 WHERE tenant_id = $1 AND id = $2",
                )
                .bind(c.tenant_id.0)
                .bind(c.id)
                .bind(&c.name)
                .bind(&c.name_en)
                .bind(c.sort_order)
                .execute(self.writer())
                .await?
                .rows_affected();
                if n == 0 {
                    return Err($crate::StoreError::NotFound);
                }
                Ok(())
            }

            async fn create_menu_item(
                &self,
                item: &MenuItem,
                member_prices: &[MemberPrice],
                at: DateTime<Utc>,
                staff: Option<StaffId>,
            ) -> Result<()> {
                let mut tx = self.writer().begin().await?;
                let sql = format!("INSERT INTO menu_items ({ITEM_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)");
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(item.tenant_id.0)
                    .bind(item.id.0)
                    .bind(item.category_id)
                    .bind(&item.name)
                    .bind(&item.name_en)
                    .bind(item.price.fen())
                    .bind(item.joins_discounts)
                    .bind(item.active)
                    .execute(&mut *tx)
                    .await?;
                insert_member_prices(&mut tx, item.tenant_id, item.id, member_prices).await?;
                append_history(&mut tx, item.tenant_id, item.id, PriceChangeKind::Created, item.price, member_prices, at, staff)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn update_menu_item(
                &self,
                item: &MenuItem,
                at: DateTime<Utc>,
                staff: Option<StaffId>,
            ) -> Result<PriceWrite> {
                let t = item.tenant_id;
                let mut tx = self.writer().begin().await?;
                let Some(before) = lock_item(&mut tx, t, item.id).await? else {
                    return Err($crate::StoreError::NotFound);
                };
                let price_changed = before.price != item.price;
                let prices = if price_changed {
                    let prices = member_prices_tx(&mut tx, t, item.id).await?;
                    if prices.iter().any(|p| p.price > item.price) {
                        return Ok(PriceWrite::AboveRegular { item: item.id, regular: item.price });
                    }
                    prices
                } else {
                    Vec::new()
                };
                sqlx::query(
                    "UPDATE menu_items SET category_id = $3, name = $4, name_en = $5, price = $6, joins_discounts = $7, \
                     active = $8 WHERE tenant_id = $1 AND id = $2",
                )
                .bind(t.0)
                .bind(item.id.0)
                .bind(item.category_id)
                .bind(&item.name)
                .bind(&item.name_en)
                .bind(item.price.fen())
                .bind(item.joins_discounts)
                .bind(item.active)
                .execute(&mut *tx)
                .await?;
                if price_changed {
                    append_history(&mut tx, t, item.id, PriceChangeKind::Price, item.price, &prices, at, staff).await?;
                }
                tx.commit().await?;
                Ok(PriceWrite::Done)
            }

            async fn set_member_prices(
                &self,
                tenant: TenantId,
                prices: &[(MenuItemId, Vec<MemberPrice>)],
                at: DateTime<Utc>,
                staff: Option<StaffId>,
            ) -> Result<PriceWrite> {
                let mut tx = self.writer().begin().await?;
                // Items locked in id order, like ledger accounts: no deadlock between
                // two concurrent calls on PostgreSQL.
                let mut order: Vec<&(MenuItemId, Vec<MemberPrice>)> = prices.iter().collect();
                order.sort_by_key(|(id, _)| *id);
                for (id, set) in order {
                    let Some(item) = lock_item(&mut tx, tenant, *id).await? else {
                        return Err($crate::StoreError::NotFound);
                    };
                    if set.iter().any(|p| p.price > item.price) {
                        return Ok(PriceWrite::AboveRegular { item: item.id, regular: item.price });
                    }
                    sqlx::query("DELETE FROM menu_member_prices WHERE tenant_id = $1 AND item_id = $2")
                        .bind(tenant.0)
                        .bind(id.0)
                        .execute(&mut *tx)
                        .await?;
                    insert_member_prices(&mut tx, tenant, *id, set).await?;
                    append_history(&mut tx, tenant, *id, PriceChangeKind::MemberPrices, item.price, set, at, staff).await?;
                }
                tx.commit().await?;
                Ok(PriceWrite::Done)
            }

            async fn menu_item(&self, tenant: TenantId, id: MenuItemId) -> Result<Option<PricedItem>> {
                let sql = format!("SELECT {ITEM_COLS} FROM menu_items WHERE tenant_id = $1 AND id = $2");
                let row: Option<MenuItemRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(tenant.0)
                    .bind(id.0)
                    .fetch_optional(self.reader())
                    .await?;
                let Some(row) = row else { return Ok(None) };
                let rows: Vec<MemberPriceRow> = sqlx::query_as(
                    "SELECT item_id, target_kind, target_code, price FROM menu_member_prices \
                     WHERE tenant_id = $1 AND item_id = $2",
                )
                .bind(tenant.0)
                .bind(id.0)
                .fetch_all(self.reader())
                .await?;
                let prices = rows.into_iter().map(TryInto::try_into).collect::<Result<Vec<MemberPrice>>>()?;
                Ok(priced_items(&[], vec![row.into()], prices).pop())
            }

            async fn menu_items_by_ids(&self, tenant: TenantId, ids: &[MenuItemId]) -> Result<Vec<PricedItem>> {
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                let mut b = sqlx::QueryBuilder::<$db>::new(format!("SELECT {ITEM_COLS} FROM menu_items WHERE tenant_id = "));
                b.push_bind(tenant.0).push(" AND id IN (");
                let mut sep = b.separated(", ");
                for id in ids {
                    sep.push_bind(id.0);
                }
                b.push(")");
                let rows: Vec<MenuItemRow> = b.build_query_as().fetch_all(self.reader()).await?;
                let mut b = sqlx::QueryBuilder::<$db>::new(
                    "SELECT item_id, target_kind, target_code, price FROM menu_member_prices WHERE tenant_id = ",
                );
                b.push_bind(tenant.0).push(" AND item_id IN (");
                let mut sep = b.separated(", ");
                for id in ids {
                    sep.push_bind(id.0);
                }
                b.push(")");
                let prices: Vec<MemberPriceRow> = b.build_query_as().fetch_all(self.reader()).await?;
                let prices = prices.into_iter().map(TryInto::try_into).collect::<Result<Vec<MemberPrice>>>()?;
                Ok(priced_items(&[], rows.into_iter().map(Into::into).collect(), prices))
            }

            async fn menu_items(&self, tenant: TenantId, f: &ItemFilter) -> Result<Vec<PricedItem>> {
                let mut b = sqlx::QueryBuilder::<$db>::new(format!("SELECT {ITEM_COLS} FROM menu_items WHERE tenant_id = "));
                b.push_bind(tenant.0);
                if let Some(c) = f.category_id {
                    b.push(" AND category_id = ").push_bind(c);
                }
                if let Some(a) = f.active {
                    b.push(" AND active = ").push_bind(a);
                }
                if let Some(text) = f.text.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
                    // LOWER on both sides: PostgreSQL's LIKE is case-sensitive, SQLite's is not.
                    let pattern = format!("%{}%", like_escape(text));
                    b.push(" AND (LOWER(name) LIKE LOWER(").push_bind(pattern.clone()).push(") ESCAPE '\\'");
                    b.push(" OR LOWER(name_en) LIKE LOWER(").push_bind(pattern).push(") ESCAPE '\\')");
                }
                let rows: Vec<MenuItemRow> = b.build_query_as().fetch_all(self.reader()).await?;
                // The tenant's member prices in one query (a menu has a few hundred at most).
                let prices: Vec<MemberPriceRow> = sqlx::query_as(
                    "SELECT item_id, target_kind, target_code, price FROM menu_member_prices WHERE tenant_id = $1",
                )
                .bind(tenant.0)
                .fetch_all(self.reader())
                .await?;
                let prices = prices.into_iter().map(TryInto::try_into).collect::<Result<Vec<MemberPrice>>>()?;
                let categories = self.menu_categories(tenant).await?;
                Ok(priced_items(&categories, rows.into_iter().map(Into::into).collect(), prices))
            }

            async fn price_history(&self, tenant: TenantId, item: MenuItemId) -> Result<Vec<PriceChange>> {
                let sql = format!(
                    "SELECT {HISTORY_COLS} FROM menu_price_history WHERE tenant_id = $1 AND item_id = $2 ORDER BY seq"
                );
                let rows: Vec<HistoryRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(tenant.0)
                    .bind(item.0)
                    .fetch_all(self.reader())
                    .await?;
                rows.into_iter().map(TryInto::try_into).collect()
            }

            async fn price_at(&self, tenant: TenantId, item: MenuItemId, at: DateTime<Utc>) -> Result<Option<PriceChange>> {
                let sql = format!(
                    "SELECT {HISTORY_COLS} FROM menu_price_history WHERE tenant_id = $1 AND item_id = $2 \
                     AND effective_from <= $3 ORDER BY effective_from DESC, seq DESC LIMIT 1"
                );
                let row: Option<HistoryRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(tenant.0)
                    .bind(item.0)
                    .bind(at)
                    .fetch_optional(self.reader())
                    .await?;
                row.map(TryInto::try_into).transpose()
            }
        }
    };
}
pub(crate) use impl_menu_storage;
