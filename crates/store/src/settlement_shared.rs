//! The settlement store's SQL, shared by both backends like `shared.rs` (see there for
//! why a macro). The one dialect difference, reading a key of a JSON text column, is
//! passed in as an SQL fragment.

use crate::StoreError;
use crate::settlement::{BusinessDayRecord, PrincipalEntry, ShiftRecord};
use chrono::{DateTime, NaiveDate, Utc};
use patron_domain::ids::{StaffId, StoreId, TenantId};
use uuid::Uuid;

pub(crate) const DAY_COLS: &str = "tenant_id, store_id, business_date, starts_at, ends_at, status, closed_by, closed_at, \
    reopened_by, reopened_at, reopen_reason, report, note, closings";
pub(crate) const SHIFT_COLS: &str = "tenant_id, id, store_id, staff_id, opened_at, opening_float, closed_at, closed_by, \
    counted_cash, expected_cash, variance, note, handed_to, report";
/// The columns of a principal entry joined with its transaction (`e`, `t`).
pub(crate) const PRINCIPAL_COLS: &str =
    "e.seq, e.txn_id, e.account_id, e.amount, e.store_id, t.kind, t.reverses_txn_id, e.created_at";
/// Account kinds that hold principal.
pub(crate) const PRINCIPAL_KINDS: &str = "('card_principal', 'org_principal')";

fn json(what: &str, v: Option<String>) -> Result<Option<serde_json::Value>, StoreError> {
    v.map(|s| serde_json::from_str(&s).map_err(|_| StoreError::Corrupt(format!("{what}: {s:?}"))))
        .transpose()
}

#[derive(sqlx::FromRow)]
pub(crate) struct DayRow {
    tenant_id: Uuid,
    store_id: Uuid,
    business_date: NaiveDate,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    status: String,
    closed_by: Option<Uuid>,
    closed_at: Option<DateTime<Utc>>,
    reopened_by: Option<Uuid>,
    reopened_at: Option<DateTime<Utc>>,
    reopen_reason: Option<String>,
    report: Option<String>,
    note: Option<String>,
    closings: i64,
}

impl TryFrom<DayRow> for BusinessDayRecord {
    type Error = StoreError;
    fn try_from(r: DayRow) -> Result<Self, StoreError> {
        Ok(BusinessDayRecord {
            tenant_id: TenantId(r.tenant_id),
            store_id: StoreId(r.store_id),
            business_date: r.business_date,
            starts_at: r.starts_at,
            ends_at: r.ends_at,
            status: r.status,
            closed_by: r.closed_by.map(StaffId),
            closed_at: r.closed_at,
            reopened_by: r.reopened_by.map(StaffId),
            reopened_at: r.reopened_at,
            reopen_reason: r.reopen_reason,
            report: json("business_days.report", r.report)?,
            note: r.note,
            closings: r.closings,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ShiftRow {
    tenant_id: Uuid,
    id: Uuid,
    store_id: Uuid,
    staff_id: Uuid,
    opened_at: DateTime<Utc>,
    opening_float: i64,
    closed_at: Option<DateTime<Utc>>,
    closed_by: Option<Uuid>,
    counted_cash: Option<i64>,
    expected_cash: Option<i64>,
    variance: Option<i64>,
    note: Option<String>,
    handed_to: Option<Uuid>,
    report: Option<String>,
}

impl TryFrom<ShiftRow> for ShiftRecord {
    type Error = StoreError;
    fn try_from(r: ShiftRow) -> Result<Self, StoreError> {
        Ok(ShiftRecord {
            tenant_id: TenantId(r.tenant_id),
            id: r.id,
            store_id: StoreId(r.store_id),
            staff_id: StaffId(r.staff_id),
            opened_at: r.opened_at,
            opening_float: r.opening_float,
            closed_at: r.closed_at,
            closed_by: r.closed_by.map(StaffId),
            counted_cash: r.counted_cash,
            expected_cash: r.expected_cash,
            variance: r.variance,
            note: r.note,
            handed_to: r.handed_to.map(StaffId),
            report: json("shifts.report", r.report)?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct PrincipalRow {
    seq: i64,
    txn_id: Uuid,
    account_id: Uuid,
    amount: i64,
    store_id: Option<Uuid>,
    kind: String,
    reverses_txn_id: Option<Uuid>,
    created_at: DateTime<Utc>,
}

impl From<PrincipalRow> for PrincipalEntry {
    fn from(r: PrincipalRow) -> Self {
        PrincipalEntry {
            seq: r.seq,
            txn_id: r.txn_id,
            account_id: r.account_id,
            amount: r.amount,
            store_id: r.store_id.map(StoreId),
            txn_kind: r.kind,
            reverses: r.reverses_txn_id,
            created_at: r.created_at,
        }
    }
}

macro_rules! impl_settlement_storage {
    ($ty:ty, $db:ty, original_kind = $orig:literal) => {
        use $crate::ledger::TxnRecord;
        use $crate::ledger_shared::{TxnRow, TXN_COLS};
        use $crate::settlement::{
            BusinessDayRecord, CheckoutFigures, LedgerSum, PrincipalEntry, Scope, SettlementStore, ShiftClose, ShiftRecord,
            VisitSum,
        };
        use $crate::settlement_shared::{DayRow, PrincipalRow, ShiftRow, DAY_COLS, PRINCIPAL_COLS, PRINCIPAL_KINDS, SHIFT_COLS};
        use chrono::NaiveDate;
        use patron_domain::ids::{StaffId, StoreId};

        async fn day_tx<'c>(
            tx: &mut sqlx::Transaction<'c, $db>,
            tenant: TenantId,
            store: StoreId,
            date: NaiveDate,
        ) -> Result<Option<BusinessDayRecord>> {
            let sql = format!("SELECT {DAY_COLS} FROM business_days WHERE tenant_id = $1 AND store_id = $2 AND business_date = $3");
            let row: Option<DayRow> =
                sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(tenant.0).bind(store.0).bind(date).fetch_optional(&mut **tx).await?;
            row.map(TryInto::try_into).transpose()
        }

        #[async_trait::async_trait]
        impl SettlementStore for $ty {
            async fn ledger_sums(&self, tenant: TenantId, scope: &Scope) -> Result<Vec<LedgerSum>> {
                // The reversed kind is read from the JSON only for reversals.
                let sql = format!(
                    "SELECT a.kind, a.tender, t.kind, CASE WHEN t.kind = 'reversal' THEN {orig} END AS original_kind, \
                     CAST(SUM(e.amount) AS BIGINT), COUNT(DISTINCT e.txn_id) \
                     FROM ledger_entries e \
                     JOIN ledger_txns t ON t.tenant_id = e.tenant_id AND t.id = e.txn_id \
                     JOIN ledger_accounts a ON a.tenant_id = e.tenant_id AND a.id = e.account_id \
                     WHERE e.tenant_id = $1 AND e.store_id = $2 AND e.created_at >= $3 AND e.created_at < $4 \
                     AND ($5 IS NULL OR e.staff_id = $5) \
                     GROUP BY a.kind, a.tender, t.kind, original_kind",
                    orig = $orig
                );
                let rows: Vec<(String, Option<String>, String, Option<String>, i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(tenant.0)
                    .bind(scope.store.0)
                    .bind(scope.from)
                    .bind(scope.to)
                    .bind(scope.staff.map(|s| s.0))
                    .fetch_all(self.reader())
                    .await?;
                Ok(rows
                    .into_iter()
                    .map(|(account_kind, tender, txn_kind, original_kind, amount, txns)| LedgerSum {
                        account_kind,
                        tender,
                        txn_kind,
                        original_kind,
                        amount,
                        txns,
                    })
                    .collect())
            }

            async fn scope_txns(&self, tenant: TenantId, scope: &Scope, kinds: &[&str]) -> Result<Vec<TxnRecord>> {
                if kinds.is_empty() {
                    return Ok(vec![]);
                }
                let mut b = sqlx::QueryBuilder::<$db>::new(format!("SELECT {TXN_COLS} FROM ledger_txns WHERE tenant_id = "));
                b.push_bind(tenant.0)
                    .push(" AND store_id = ")
                    .push_bind(scope.store.0)
                    .push(" AND created_at >= ")
                    .push_bind(scope.from)
                    .push(" AND created_at < ")
                    .push_bind(scope.to);
                if let Some(s) = scope.staff {
                    b.push(" AND staff_id = ").push_bind(s.0);
                }
                b.push(" AND kind IN (");
                let mut sep = b.separated(", ");
                for k in kinds {
                    sep.push_bind(k.to_string());
                }
                b.push(") ORDER BY created_at, id");
                let rows: Vec<TxnRow> = b.build_query_as().fetch_all(self.reader()).await?;
                rows.into_iter().map(TryInto::try_into).collect()
            }

            async fn checkout_figures(&self, tenant: TenantId, scope: &Scope) -> Result<Vec<CheckoutFigures>> {
                let rows: Vec<(uuid::Uuid, uuid::Uuid, i64, i64, i64, i64, String, String)> = sqlx::query_as(
                    "SELECT id, staff_id, gross, discount, amount_due, refunded, status, breakdown FROM checkouts \
                     WHERE tenant_id = $1 AND store_id = $2 AND created_at >= $3 AND created_at < $4 \
                     AND ($5 IS NULL OR staff_id = $5) ORDER BY created_at",
                )
                .bind(tenant.0)
                .bind(scope.store.0)
                .bind(scope.from)
                .bind(scope.to)
                .bind(scope.staff.map(|s| s.0))
                .fetch_all(self.reader())
                .await?;
                rows.into_iter()
                    .map(|(id, staff, gross, discount, amount_due, refunded, status, breakdown)| {
                        Ok(CheckoutFigures {
                            id,
                            staff_id: StaffId(staff),
                            gross,
                            discount,
                            amount_due,
                            refunded,
                            status,
                            breakdown: serde_json::from_str(&breakdown)
                                .map_err(|_| StoreError::Corrupt(format!("checkouts.breakdown of {id}")))?,
                        })
                    })
                    .collect()
            }

            async fn visit_sums(&self, tenant: TenantId, scope: &Scope) -> Result<(Vec<VisitSum>, i64)> {
                const WHERE: &str = "WHERE tenant_id = $1 AND store_id = $2 AND occurred_at >= $3 AND occurred_at < $4 \
                     AND ($5 IS NULL OR staff_id = $5) AND reversed_at IS NULL";
                let rows: Vec<(String, i64, i64, Option<i64>)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT source, COUNT(*), COUNT(*) - COUNT(customer_id), CAST(SUM(amount) AS BIGINT) FROM visits {WHERE} \
                     GROUP BY source ORDER BY source"
                )))
                .bind(tenant.0)
                .bind(scope.store.0)
                .bind(scope.from)
                .bind(scope.to)
                .bind(scope.staff.map(|s| s.0))
                .fetch_all(self.reader())
                .await?;
                let customers: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT COUNT(DISTINCT customer_id) FROM visits {WHERE}"
                )))
                .bind(tenant.0)
                .bind(scope.store.0)
                .bind(scope.from)
                .bind(scope.to)
                .bind(scope.staff.map(|s| s.0))
                .fetch_one(self.reader())
                .await?;
                let sums = rows
                    .into_iter()
                    .map(|(source, visits, anonymous, amount)| VisitSum { source, visits, anonymous, amount: amount.unwrap_or(0) })
                    .collect();
                Ok((sums, customers))
            }

            async fn coupon_counts(&self, tenant: TenantId, scope: &Scope) -> Result<(i64, i64)> {
                let redeemed: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM coupons WHERE tenant_id = $1 AND redeemed_store_id = $2 AND redeemed_at >= $3 \
                     AND redeemed_at < $4 AND ($5 IS NULL OR redeemed_staff_id = $5)",
                )
                .bind(tenant.0)
                .bind(scope.store.0)
                .bind(scope.from)
                .bind(scope.to)
                .bind(scope.staff.map(|s| s.0))
                .fetch_one(self.reader())
                .await?;
                let issued: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM coupons WHERE tenant_id = $1 AND issued_store_id = $2 AND issued_at >= $3 \
                     AND issued_at < $4 AND ($5 IS NULL OR issued_by = $5)",
                )
                .bind(tenant.0)
                .bind(scope.store.0)
                .bind(scope.from)
                .bind(scope.to)
                .bind(scope.staff.map(|s| s.0))
                .fetch_one(self.reader())
                .await?;
                Ok((redeemed, issued))
            }

            async fn business_day(&self, tenant: TenantId, store: StoreId, date: NaiveDate) -> Result<Option<BusinessDayRecord>> {
                let sql = format!("SELECT {DAY_COLS} FROM business_days WHERE tenant_id = $1 AND store_id = $2 AND business_date = $3");
                let row: Option<DayRow> =
                    sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(tenant.0).bind(store.0).bind(date).fetch_optional(self.reader()).await?;
                row.map(TryInto::try_into).transpose()
            }

            async fn close_business_day(&self, d: &BusinessDayRecord) -> Result<BusinessDayRecord> {
                let mut tx = self.writer().begin().await?;
                // Posts at the store hold its day lock shared (`LedgerStore::post`): this
                // waits for those in flight, and later ones wait for this commit, then see
                // the day closed.
                if <Self as $crate::Storage>::backend(self) == $crate::Backend::Postgres {
                    sqlx::query("SELECT pg_advisory_xact_lock($1)")
                        .bind($crate::ledger_shared::store_day_lock(d.store_id))
                        .execute(&mut *tx)
                        .await?;
                }
                let open: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM shifts WHERE tenant_id = $1 AND store_id = $2 AND closed_at IS NULL AND opened_at < $3",
                )
                .bind(d.tenant_id.0)
                .bind(d.store_id.0)
                .bind(d.ends_at)
                .fetch_one(&mut *tx)
                .await?;
                if open > 0 {
                    return Err(StoreError::Conflict { what: "shifts_open" });
                }
                // Closing a reopened day keeps its instants: they were fixed at the first close.
                let r = sqlx::query(
                    "INSERT INTO business_days (tenant_id, store_id, business_date, starts_at, ends_at, status, closed_by, closed_at, \
                     report, note, closings) VALUES ($1, $2, $3, $4, $5, 'closed', $6, $7, $8, $9, 1) \
                     ON CONFLICT (tenant_id, store_id, business_date) DO UPDATE SET status = 'closed', closed_by = excluded.closed_by, \
                     closed_at = excluded.closed_at, report = excluded.report, note = excluded.note, \
                     closings = business_days.closings + 1 WHERE business_days.status = 'open'",
                )
                .bind(d.tenant_id.0)
                .bind(d.store_id.0)
                .bind(d.business_date)
                .bind(d.starts_at)
                .bind(d.ends_at)
                .bind(d.closed_by.map(|s| s.0))
                .bind(d.closed_at)
                .bind(d.report.as_ref().map(|r| r.to_string()))
                .bind(&d.note)
                .execute(&mut *tx)
                .await?;
                if r.rows_affected() != 1 {
                    return Err(StoreError::Conflict { what: "day_already_closed" });
                }
                let day = day_tx(&mut tx, d.tenant_id, d.store_id, d.business_date).await?.ok_or(StoreError::NotFound)?;
                tx.commit().await?;
                Ok(day)
            }

            async fn save_day_report(&self, d: &BusinessDayRecord) -> Result<()> {
                sqlx::query(
                    "UPDATE business_days SET report = $4 WHERE tenant_id = $1 AND store_id = $2 AND business_date = $3 \
                     AND status = 'closed'",
                )
                .bind(d.tenant_id.0)
                .bind(d.store_id.0)
                .bind(d.business_date)
                .bind(d.report.as_ref().map(|r| r.to_string()))
                .execute(self.writer())
                .await?;
                Ok(())
            }

            async fn reopen_business_day(
                &self,
                tenant: TenantId,
                store: StoreId,
                date: NaiveDate,
                by: StaffId,
                at: DateTime<Utc>,
                reason: &str,
            ) -> Result<BusinessDayRecord> {
                let mut tx = self.writer().begin().await?;
                let r = sqlx::query(
                    "UPDATE business_days SET status = 'open', reopened_by = $4, reopened_at = $5, reopen_reason = $6 \
                     WHERE tenant_id = $1 AND store_id = $2 AND business_date = $3 AND status = 'closed'",
                )
                .bind(tenant.0)
                .bind(store.0)
                .bind(date)
                .bind(by.0)
                .bind(at)
                .bind(reason)
                .execute(&mut *tx)
                .await?;
                let day = day_tx(&mut tx, tenant, store, date).await?;
                match (r.rows_affected(), day) {
                    (1, Some(d)) => {
                        tx.commit().await?;
                        Ok(d)
                    }
                    (_, Some(_)) => Err(StoreError::Conflict { what: "day_not_closed" }),
                    (_, None) => Err(StoreError::NotFound),
                }
            }

            async fn open_shift(&self, s: &ShiftRecord) -> Result<()> {
                let r = sqlx::query(
                    "INSERT INTO shifts (tenant_id, id, store_id, staff_id, opened_at, opening_float, note) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(s.tenant_id.0)
                .bind(s.id)
                .bind(s.store_id.0)
                .bind(s.staff_id.0)
                .bind(s.opened_at)
                .bind(s.opening_float)
                .bind(&s.note)
                .execute(self.writer())
                .await;
                match r {
                    Ok(_) => Ok(()),
                    Err(e) => match StoreError::from(e) {
                        StoreError::Conflict { .. } => Err(StoreError::Conflict { what: "shift_open" }),
                        other => Err(other),
                    },
                }
            }

            async fn close_shift(&self, tenant: TenantId, id: uuid::Uuid, c: &ShiftClose) -> Result<ShiftRecord> {
                let sql = format!(
                    "UPDATE shifts SET closed_at = $3, closed_by = $4, counted_cash = $5, expected_cash = $6, variance = $7, \
                     note = COALESCE($8, note), handed_to = $9, report = $10 \
                     WHERE tenant_id = $1 AND id = $2 AND closed_at IS NULL RETURNING {SHIFT_COLS}"
                );
                let row: Option<ShiftRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(tenant.0)
                    .bind(id)
                    .bind(c.closed_at)
                    .bind(c.closed_by.0)
                    .bind(c.counted_cash)
                    .bind(c.expected_cash)
                    .bind(c.variance)
                    .bind(&c.note)
                    .bind(c.handed_to.map(|s| s.0))
                    .bind(c.report.to_string())
                    .fetch_optional(self.writer())
                    .await?;
                match row {
                    Some(r) => r.try_into(),
                    None => match self.shift(tenant, id).await? {
                        Some(_) => Err(StoreError::Conflict { what: "shift_closed" }),
                        None => Err(StoreError::NotFound),
                    },
                }
            }

            async fn shift(&self, tenant: TenantId, id: uuid::Uuid) -> Result<Option<ShiftRecord>> {
                let sql = format!("SELECT {SHIFT_COLS} FROM shifts WHERE tenant_id = $1 AND id = $2");
                let row: Option<ShiftRow> =
                    sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(tenant.0).bind(id).fetch_optional(self.reader()).await?;
                row.map(TryInto::try_into).transpose()
            }

            async fn shifts(
                &self,
                tenant: TenantId,
                store: StoreId,
                from: DateTime<Utc>,
                to: DateTime<Utc>,
                staff: Option<StaffId>,
            ) -> Result<Vec<ShiftRecord>> {
                let sql = format!(
                    "SELECT {SHIFT_COLS} FROM shifts WHERE tenant_id = $1 AND store_id = $2 AND opened_at >= $3 AND opened_at < $4 \
                     AND ($5 IS NULL OR staff_id = $5) ORDER BY opened_at, id"
                );
                let rows: Vec<ShiftRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(tenant.0)
                    .bind(store.0)
                    .bind(from)
                    .bind(to)
                    .bind(staff.map(|s| s.0))
                    .fetch_all(self.reader())
                    .await?;
                rows.into_iter().map(TryInto::try_into).collect()
            }

            async fn open_shifts(&self, tenant: TenantId, store: StoreId) -> Result<Vec<ShiftRecord>> {
                let sql = format!(
                    "SELECT {SHIFT_COLS} FROM shifts WHERE tenant_id = $1 AND store_id = $2 AND closed_at IS NULL ORDER BY opened_at, id"
                );
                let rows: Vec<ShiftRow> =
                    sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(tenant.0).bind(store.0).fetch_all(self.reader()).await?;
                rows.into_iter().map(TryInto::try_into).collect()
            }

            async fn principal_accounts_used(
                &self,
                tenant: TenantId,
                store: Option<StoreId>,
                from: DateTime<Utc>,
                to: DateTime<Utc>,
                kinds: &[&str],
            ) -> Result<Vec<uuid::Uuid>> {
                if kinds.is_empty() {
                    return Ok(vec![]);
                }
                let mut b = sqlx::QueryBuilder::<$db>::new(format!(
                    "SELECT DISTINCT e.account_id FROM ledger_entries e \
                     JOIN ledger_accounts a ON a.tenant_id = e.tenant_id AND a.id = e.account_id \
                     JOIN ledger_txns t ON t.tenant_id = e.tenant_id AND t.id = e.txn_id \
                     WHERE a.kind IN {PRINCIPAL_KINDS} AND e.tenant_id = "
                ));
                b.push_bind(tenant.0);
                match store {
                    Some(s) => b.push(" AND e.store_id = ").push_bind(s.0),
                    None => b.push(" AND e.store_id IS NULL"),
                };
                b.push(" AND e.created_at >= ").push_bind(from).push(" AND e.created_at < ").push_bind(to).push(" AND t.kind IN (");
                let mut sep = b.separated(", ");
                for k in kinds {
                    sep.push_bind(k.to_string());
                }
                b.push(")");
                let rows: Vec<(uuid::Uuid,)> = b.build_query_as().fetch_all(self.reader()).await?;
                Ok(rows.into_iter().map(|r| r.0).collect())
            }

            async fn principal_history(&self, tenant: TenantId, accounts: &[uuid::Uuid], to: DateTime<Utc>) -> Result<Vec<PrincipalEntry>> {
                let mut out = Vec::new();
                for chunk in accounts.chunks($crate::shared::BATCH) {
                    let mut b = sqlx::QueryBuilder::<$db>::new(format!(
                        "SELECT {PRINCIPAL_COLS} FROM ledger_entries e \
                         JOIN ledger_txns t ON t.tenant_id = e.tenant_id AND t.id = e.txn_id WHERE e.tenant_id = "
                    ));
                    b.push_bind(tenant.0).push(" AND e.created_at < ").push_bind(to).push(" AND e.account_id IN (");
                    let mut sep = b.separated(", ");
                    for a in chunk {
                        sep.push_bind(*a);
                    }
                    b.push(")");
                    let rows: Vec<PrincipalRow> = b.build_query_as().fetch_all(self.reader()).await?;
                    out.extend(rows.into_iter().map(PrincipalEntry::from));
                }
                out.sort_by_key(|e| e.seq);
                Ok(out)
            }

            async fn principal_legs(&self, tenant: TenantId, txns: &[uuid::Uuid]) -> Result<Vec<PrincipalEntry>> {
                let mut out = Vec::new();
                for chunk in txns.chunks($crate::shared::BATCH) {
                    let mut b = sqlx::QueryBuilder::<$db>::new(format!(
                        "SELECT {PRINCIPAL_COLS} FROM ledger_entries e \
                         JOIN ledger_txns t ON t.tenant_id = e.tenant_id AND t.id = e.txn_id \
                         JOIN ledger_accounts a ON a.tenant_id = e.tenant_id AND a.id = e.account_id \
                         WHERE a.kind IN {PRINCIPAL_KINDS} AND e.tenant_id = "
                    ));
                    b.push_bind(tenant.0).push(" AND e.txn_id IN (");
                    let mut sep = b.separated(", ");
                    for t in chunk {
                        sep.push_bind(*t);
                    }
                    b.push(")");
                    let rows: Vec<PrincipalRow> = b.build_query_as().fetch_all(self.reader()).await?;
                    out.extend(rows.into_iter().map(PrincipalEntry::from));
                }
                out.sort_by_key(|e| e.seq);
                Ok(out)
            }
        }
    };
}
pub(crate) use impl_settlement_storage;
