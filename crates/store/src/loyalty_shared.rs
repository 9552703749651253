//! The loyalty store's SQL, shared by both backends like `shared.rs`.

use crate::StoreError;
use crate::loyalty::{GiftRecord, LevelChangeRecord, LotRecord, VisitRecord};
use chrono::{DateTime, NaiveDate, Utc};
use patron_domain::ids::{CardId, CustomerId, StaffId, StoreId, TenantId};
use uuid::Uuid;

/// The first day of `day`'s month and of the next: the key of `customer_growth_months`.
pub(crate) fn month_of(day: chrono::NaiveDate) -> (chrono::NaiveDate, chrono::NaiveDate) {
    use chrono::Datelike;
    let first = day.with_day(1).expect("every month has a first day");
    let next = first
        .checked_add_months(chrono::Months::new(1))
        .unwrap_or(chrono::NaiveDate::MAX);
    (first, next)
}

pub(crate) const VISIT_COLS: &str = "tenant_id, id, customer_id, card_id, store_id, staff_id, txn_id, source, occurred_at, local_date, amount, growth, reversed_at";
pub(crate) const LEVEL_COLS: &str = "tenant_id, id, customer_id, from_level, to_level, reason, growth, explanation, explanation_en, staff_id, occurred_at";
pub(crate) const LOT_COLS: &str =
    "id, account_id, txn_id, earned_on, expires_on, points, remaining, created_at";
pub(crate) const GIFT_COLS: &str =
    "tenant_id, id, name, name_en, points_price, stock, active, created_at";

#[derive(sqlx::FromRow)]
pub(crate) struct VisitRow {
    tenant_id: Uuid,
    id: Uuid,
    customer_id: Option<Uuid>,
    card_id: Option<Uuid>,
    store_id: Option<Uuid>,
    staff_id: Option<Uuid>,
    txn_id: Option<Uuid>,
    source: String,
    occurred_at: DateTime<Utc>,
    local_date: NaiveDate,
    amount: i64,
    growth: i64,
    reversed_at: Option<DateTime<Utc>>,
}

impl From<VisitRow> for VisitRecord {
    fn from(r: VisitRow) -> Self {
        VisitRecord {
            tenant_id: TenantId(r.tenant_id),
            id: r.id,
            customer_id: r.customer_id.map(CustomerId),
            card_id: r.card_id.map(CardId),
            store_id: r.store_id.map(StoreId),
            staff_id: r.staff_id.map(StaffId),
            txn_id: r.txn_id,
            source: r.source,
            occurred_at: r.occurred_at,
            local_date: r.local_date,
            amount: r.amount,
            growth: r.growth,
            reversed_at: r.reversed_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct LevelRow {
    tenant_id: Uuid,
    id: Uuid,
    customer_id: Uuid,
    from_level: Option<String>,
    to_level: String,
    reason: String,
    growth: i64,
    explanation: String,
    explanation_en: String,
    staff_id: Option<Uuid>,
    occurred_at: DateTime<Utc>,
}

impl From<LevelRow> for LevelChangeRecord {
    fn from(r: LevelRow) -> Self {
        LevelChangeRecord {
            tenant_id: TenantId(r.tenant_id),
            id: r.id,
            customer_id: CustomerId(r.customer_id),
            from_level: r.from_level,
            to_level: r.to_level,
            reason: r.reason,
            growth: r.growth,
            explanation: r.explanation,
            explanation_en: r.explanation_en,
            staff_id: r.staff_id.map(StaffId),
            store_id: None,
            occurred_at: r.occurred_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct LotRow {
    id: Uuid,
    account_id: Uuid,
    txn_id: Option<Uuid>,
    earned_on: NaiveDate,
    expires_on: Option<NaiveDate>,
    points: i64,
    remaining: i64,
    created_at: DateTime<Utc>,
}

impl From<LotRow> for LotRecord {
    fn from(r: LotRow) -> Self {
        LotRecord {
            id: r.id,
            account_id: r.account_id,
            txn_id: r.txn_id,
            earned_on: r.earned_on,
            expires_on: r.expires_on,
            points: r.points,
            remaining: r.remaining,
            created_at: r.created_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct GiftRow {
    tenant_id: Uuid,
    id: Uuid,
    name: String,
    name_en: String,
    points_price: i64,
    stock: Option<i64>,
    active: bool,
    created_at: DateTime<Utc>,
}

impl From<GiftRow> for GiftRecord {
    fn from(r: GiftRow) -> Self {
        GiftRecord {
            tenant_id: TenantId(r.tenant_id),
            id: r.id,
            name: r.name,
            name_en: r.name_en,
            points_price: r.points_price,
            stock: r.stock,
            active: r.active,
            created_at: r.created_at,
        }
    }
}

#[allow(dead_code)] // keeps StoreError in scope for the macro's users
fn _uses(_: StoreError) {}

macro_rules! impl_loyalty_storage {
    ($ty:ty, $db:ty) => {
        use $crate::loyalty::{GiftRecord, JobRun, LevelChangeRecord, LotRecord, LoyaltyStore, VisitRecord};
        use $crate::loyalty_shared::{GiftRow, LevelRow, LotRow, VisitRow, GIFT_COLS, LEVEL_COLS, LOT_COLS, VISIT_COLS};
        use chrono::NaiveDate;
        use patron_domain::ids::CustomerId;

        #[async_trait::async_trait]
        impl LoyaltyStore for $ty {
            async fn growth_months_off(&self, tenant: TenantId) -> Result<Vec<(CustomerId, NaiveDate, i64, i64)>> {
                let month = match <Self as $crate::Storage>::backend(self) {
                    $crate::Backend::Postgres => "date_trunc('month', local_date)::date",
                    $crate::Backend::Sqlite => "substr(local_date, 1, 7) || '-01'",
                };
                let sql = format!(
                    "SELECT customer_id, month, CAST(SUM(kept) AS BIGINT), CAST(SUM(actual) AS BIGINT) FROM ( \
                     SELECT customer_id, month, growth AS kept, 0 AS actual FROM customer_growth_months WHERE tenant_id = $1 \
                     UNION ALL SELECT customer_id, {month} AS month, 0 AS kept, growth AS actual FROM visits \
                     WHERE tenant_id = $1 AND reversed_at IS NULL AND customer_id IS NOT NULL) AS g \
                     GROUP BY customer_id, month HAVING SUM(kept) <> SUM(actual) ORDER BY customer_id, month"
                );
                let rows: Vec<(uuid::Uuid, NaiveDate, i64, i64)> =
                    sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(tenant.0).fetch_all(self.reader()).await?;
                Ok(rows.into_iter().map(|(c, m, k, a)| (CustomerId(c), m, k, a)).collect())
            }

            /// From the monthly totals the triggers on `visits` keep (migration 0011):
            /// the months after `from`'s, plus `from`'s own month from its visits.
            async fn growth(&self, tenant: TenantId, customer: CustomerId, from: Option<NaiveDate>) -> Result<i64> {
                let Some(from) = from else {
                    let n: Option<i64> = sqlx::query_scalar(
                        "SELECT CAST(SUM(growth) AS BIGINT) FROM customer_growth_months WHERE tenant_id = $1 AND customer_id = $2",
                    )
                    .bind(tenant.0)
                    .bind(customer.0)
                    .fetch_one(self.reader())
                    .await?;
                    return Ok(n.unwrap_or(0));
                };
                let (month, next) = $crate::loyalty_shared::month_of(from);
                let n: Option<i64> = sqlx::query_scalar(
                    "SELECT CAST(COALESCE((SELECT SUM(growth) FROM customer_growth_months \
                     WHERE tenant_id = $1 AND customer_id = $2 AND month > $4), 0) \
                     + COALESCE((SELECT SUM(growth) FROM visits WHERE tenant_id = $1 AND customer_id = $2 \
                     AND reversed_at IS NULL AND local_date >= $3 AND local_date < $5), 0) AS BIGINT)",
                )
                .bind(tenant.0)
                .bind(customer.0)
                .bind(from)
                .bind(month)
                .bind(next)
                .fetch_one(self.reader())
                .await?;
                Ok(n.unwrap_or(0))
            }

            async fn visit_count(&self, tenant: TenantId, customer: CustomerId, from: NaiveDate, to: NaiveDate) -> Result<i64> {
                Ok(sqlx::query_scalar(
                    "SELECT COUNT(*) FROM visits WHERE tenant_id = $1 AND customer_id = $2 AND reversed_at IS NULL \
                     AND local_date >= $3 AND local_date <= $4",
                )
                .bind(tenant.0)
                .bind(customer.0)
                .bind(from)
                .bind(to)
                .fetch_one(self.reader())
                .await?)
            }

            async fn visits(&self, tenant: TenantId, customer: CustomerId, limit: i64) -> Result<Vec<VisitRecord>> {
                let sql = format!("SELECT {VISIT_COLS} FROM visits WHERE tenant_id = $1 AND customer_id = $2 ORDER BY occurred_at DESC, id LIMIT $3");
                let rows: Vec<VisitRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(tenant.0).bind(customer.0).bind(limit).fetch_all(self.reader()).await?;
                Ok(rows.into_iter().map(Into::into).collect())
            }

            async fn lots(&self, tenant: TenantId, accounts: &[uuid::Uuid]) -> Result<Vec<LotRecord>> {
                if accounts.is_empty() {
                    return Ok(Vec::new());
                }
                let mut b = sqlx::QueryBuilder::<$db>::new(format!("SELECT {LOT_COLS} FROM points_lots WHERE tenant_id = "));
                b.push_bind(tenant.0).push(" AND remaining > 0 AND account_id IN (");
                let mut sep = b.separated(", ");
                for a in accounts {
                    sep.push_bind(*a);
                }
                b.push(") ORDER BY CASE WHEN expires_on IS NULL THEN 1 ELSE 0 END, expires_on, earned_on, id");
                let rows: Vec<LotRow> = b.build_query_as().fetch_all(self.reader()).await?;
                Ok(rows.into_iter().map(Into::into).collect())
            }

            async fn lot_sums(&self, tenant: TenantId) -> Result<Vec<(uuid::Uuid, i64)>> {
                Ok(sqlx::query_as(
                    "SELECT account_id, CAST(SUM(remaining) AS BIGINT) FROM points_lots WHERE tenant_id = $1 GROUP BY account_id ORDER BY account_id",
                )
                .bind(tenant.0)
                .fetch_all(self.reader())
                .await?)
            }

            async fn expired_lot_accounts(&self, tenant: TenantId, before: NaiveDate, limit: i64) -> Result<Vec<(uuid::Uuid, i64)>> {
                Ok(sqlx::query_as(
                    "SELECT account_id, CAST(SUM(remaining) AS BIGINT) FROM points_lots \
                     WHERE tenant_id = $1 AND remaining > 0 AND expires_on IS NOT NULL AND expires_on < $2 \
                     GROUP BY account_id ORDER BY account_id LIMIT $3",
                )
                .bind(tenant.0)
                .bind(before)
                .bind(limit)
                .fetch_all(self.reader())
                .await?)
            }

            async fn level_changes(&self, tenant: TenantId, customer: CustomerId) -> Result<Vec<LevelChangeRecord>> {
                let sql = format!("SELECT {LEVEL_COLS} FROM level_changes WHERE tenant_id = $1 AND customer_id = $2 ORDER BY occurred_at, id");
                let rows: Vec<LevelRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(tenant.0).bind(customer.0).fetch_all(self.reader()).await?;
                Ok(rows.into_iter().map(Into::into).collect())
            }

            async fn change_level(&self, change: &LevelChangeRecord) -> Result<()> {
                let mut tx = self.writer().begin().await?;
                let tx_ref: &mut <$db as sqlx::Database>::Connection = &mut tx;
                if !$crate::ledger_shared::apply_level_change!($db, tx_ref, change) {
                    return Err(StoreError::Conflict { what: "level_changed" });
                }
                tx.commit().await?;
                Ok(())
            }

            async fn level_candidates(&self, tenant: TenantId, after: Option<CustomerId>, limit: i64) -> Result<Vec<(CustomerId, Option<String>)>> {
                let rows: Vec<(uuid::Uuid, Option<String>)> = sqlx::query_as(
                    "SELECT c.id, c.level FROM customers c WHERE c.tenant_id = $1 AND c.merged_into IS NULL \
                     AND ($2 IS NULL OR c.id > $2) \
                     AND (c.level IS NOT NULL OR EXISTS (SELECT 1 FROM visits v WHERE v.tenant_id = c.tenant_id AND v.customer_id = c.id)) \
                     ORDER BY c.id LIMIT $3",
                )
                .bind(tenant.0)
                .bind(after.map(|c| c.0))
                .bind(limit)
                .fetch_all(self.reader())
                .await?;
                Ok(rows.into_iter().map(|(id, l)| (CustomerId(id), l)).collect())
            }

            async fn insert_gift(&self, g: &GiftRecord) -> Result<()> {
                let sql = format!("INSERT INTO gifts ({GIFT_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)");
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(g.tenant_id.0)
                    .bind(g.id)
                    .bind(&g.name)
                    .bind(&g.name_en)
                    .bind(g.points_price)
                    .bind(g.stock)
                    .bind(g.active)
                    .bind(g.created_at)
                    .execute(self.writer())
                    .await?;
                Ok(())
            }

            async fn update_gift(&self, g: &GiftRecord) -> Result<()> {
                let r = sqlx::query(
                    "UPDATE gifts SET name = $3, name_en = $4, points_price = $5, stock = $6, active = $7 WHERE tenant_id = $1 AND id = $2",
                )
                .bind(g.tenant_id.0)
                .bind(g.id)
                .bind(&g.name)
                .bind(&g.name_en)
                .bind(g.points_price)
                .bind(g.stock)
                .bind(g.active)
                .execute(self.writer())
                .await?;
                if r.rows_affected() != 1 {
                    return Err(StoreError::NotFound);
                }
                Ok(())
            }

            async fn gift(&self, tenant: TenantId, id: uuid::Uuid) -> Result<Option<GiftRecord>> {
                let sql = format!("SELECT {GIFT_COLS} FROM gifts WHERE tenant_id = $1 AND id = $2");
                let row: Option<GiftRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(tenant.0).bind(id).fetch_optional(self.reader()).await?;
                Ok(row.map(Into::into))
            }

            async fn gifts(&self, tenant: TenantId, active_only: bool) -> Result<Vec<GiftRecord>> {
                let sql = format!("SELECT {GIFT_COLS} FROM gifts WHERE tenant_id = $1 AND (active OR NOT $2) ORDER BY points_price, name");
                let rows: Vec<GiftRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(tenant.0).bind(active_only).fetch_all(self.reader()).await?;
                Ok(rows.into_iter().map(Into::into).collect())
            }

            async fn job_run(&self, tenant: TenantId, job: &str) -> Result<Option<JobRun>> {
                let row: Option<(String, NaiveDate, chrono::DateTime<chrono::Utc>, String)> = sqlx::query_as(
                    "SELECT job, last_run_on, last_run_at, summary FROM job_runs WHERE tenant_id = $1 AND job = $2",
                )
                .bind(tenant.0)
                .bind(job)
                .fetch_optional(self.reader())
                .await?;
                Ok(row.map(|(job, last_run_on, last_run_at, summary)| JobRun { job, last_run_on, last_run_at, summary }))
            }

            async fn record_job_run(&self, tenant: TenantId, run: &JobRun) -> Result<()> {
                sqlx::query(
                    "INSERT INTO job_runs (tenant_id, job, last_run_on, last_run_at, summary) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (tenant_id, job) DO UPDATE SET last_run_on = excluded.last_run_on, \
                     last_run_at = excluded.last_run_at, summary = excluded.summary",
                )
                .bind(tenant.0)
                .bind(&run.job)
                .bind(run.last_run_on)
                .bind(run.last_run_at)
                .bind(&run.summary)
                .execute(self.writer())
                .await?;
                Ok(())
            }
        }
    };
}
pub(crate) use impl_loyalty_storage;
