//! Storage for daily settlement (日结) and shift handover (交班): the aggregates a
//! settlement report is made of, closed business days, and cashiers' shifts.
//!
//! A closed business day locks the ledger: `LedgerStore::post` refuses
//! (`Conflict { what: "day_closed" }`) any transaction of the store whose time falls in a
//! closed day's `[starts_at, ends_at)`.

use crate::Result;
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use patron_domain::ids::{StaffId, StoreId, TenantId};
use serde::Serialize;
use uuid::Uuid;

/// Which rows a settlement covers: one store, a time range, optionally one staff member.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scope {
    pub store: StoreId,
    pub from: DateTime<Utc>,
    /// Exclusive.
    pub to: DateTime<Utc>,
    /// Only what this staff member did (a shift).
    pub staff: Option<StaffId>,
}

/// The sum of ledger entries of one kind of account (and tender) from one kind of
/// transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerSum {
    pub account_kind: String,
    pub tender: Option<String>,
    pub txn_kind: String,
    /// For reversals: the kind of the reversed transaction.
    pub original_kind: Option<String>,
    pub amount: i64,
    /// Distinct transactions.
    pub txns: i64,
}

/// A checkout's figures, for the settlement's sales and discount totals.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckoutFigures {
    pub id: Uuid,
    pub staff_id: StaffId,
    pub gross: i64,
    pub discount: i64,
    pub amount_due: i64,
    pub refunded: i64,
    pub status: String,
    pub breakdown: serde_json::Value,
}

/// Visits (bills of known or anonymous customers) of one source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisitSum {
    /// card_spend, purchase, checkout.
    pub source: String,
    pub visits: i64,
    pub anonymous: i64,
    pub amount: i64,
}

/// A store's business day, once closed (or reopened).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BusinessDayRecord {
    #[serde(skip)]
    pub tenant_id: TenantId,
    pub store_id: StoreId,
    pub business_date: NaiveDate,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// open, closed.
    pub status: String,
    pub closed_by: Option<StaffId>,
    pub closed_at: Option<DateTime<Utc>>,
    pub reopened_by: Option<StaffId>,
    pub reopened_at: Option<DateTime<Utc>>,
    pub reopen_reason: Option<String>,
    /// The report as it was when the day was closed.
    #[serde(skip)]
    pub report: Option<serde_json::Value>,
    pub note: Option<String>,
    pub closings: i64,
}

/// A cashier's shift.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShiftRecord {
    #[serde(skip)]
    pub tenant_id: TenantId,
    pub id: Uuid,
    pub store_id: StoreId,
    pub staff_id: StaffId,
    pub opened_at: DateTime<Utc>,
    pub opening_float: i64,
    pub closed_at: Option<DateTime<Utc>>,
    pub closed_by: Option<StaffId>,
    pub counted_cash: Option<i64>,
    pub expected_cash: Option<i64>,
    pub variance: Option<i64>,
    pub note: Option<String>,
    pub handed_to: Option<StaffId>,
    #[serde(skip)]
    pub report: Option<serde_json::Value>,
}

/// How a shift ends.
#[derive(Debug, Clone, PartialEq)]
pub struct ShiftClose {
    pub closed_at: DateTime<Utc>,
    pub closed_by: StaffId,
    pub counted_cash: i64,
    pub expected_cash: i64,
    pub variance: i64,
    pub note: Option<String>,
    pub handed_to: Option<StaffId>,
    pub report: serde_json::Value,
}

/// One ledger entry on a principal account (a card's or an organization's), with what
/// the inter-store settlement needs of its transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalEntry {
    pub seq: i64,
    pub txn_id: Uuid,
    pub account_id: Uuid,
    pub amount: i64,
    pub store_id: Option<StoreId>,
    pub txn_kind: String,
    pub reverses: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

#[async_trait]
pub trait SettlementStore: Send + Sync {
    /// Ledger entries of the scope summed per account kind, tender, transaction kind and
    /// (for reversals) reversed kind. One aggregate query.
    async fn ledger_sums(&self, tenant: TenantId, scope: &Scope) -> Result<Vec<LedgerSum>>;
    /// Transactions of the scope of the given kinds, oldest first (reversals, refunds,
    /// adjustments: with their reasons, staff and approvers).
    async fn scope_txns(
        &self,
        tenant: TenantId,
        scope: &Scope,
        kinds: &[&str],
    ) -> Result<Vec<crate::ledger::TxnRecord>>;
    /// The checkouts made in the scope.
    async fn checkout_figures(
        &self,
        tenant: TenantId,
        scope: &Scope,
    ) -> Result<Vec<CheckoutFigures>>;
    /// Visits of the scope not reversed, per source, and the distinct known customers.
    async fn visit_sums(&self, tenant: TenantId, scope: &Scope) -> Result<(Vec<VisitSum>, i64)>;
    /// Coupons redeemed at and issued by the store in the scope: (redeemed, issued).
    async fn coupon_counts(&self, tenant: TenantId, scope: &Scope) -> Result<(i64, i64)>;

    async fn business_day(
        &self,
        tenant: TenantId,
        store: StoreId,
        date: NaiveDate,
    ) -> Result<Option<BusinessDayRecord>>;
    /// Closes the day (creating its row, or closing a reopened one) with its report.
    /// Errors: `Conflict { what: "day_already_closed" }`; `Conflict { what: "shifts_open" }`
    /// while a shift of the store opened before the day's end is still open.
    async fn close_business_day(&self, day: &BusinessDayRecord) -> Result<BusinessDayRecord>;
    /// Replaces the report of a closed day (taken again right after closing).
    async fn save_day_report(&self, day: &BusinessDayRecord) -> Result<()>;
    /// Reopens a closed day. Errors: `NotFound`, `Conflict { what: "day_not_closed" }`.
    #[allow(clippy::too_many_arguments)]
    async fn reopen_business_day(
        &self,
        tenant: TenantId,
        store: StoreId,
        date: NaiveDate,
        by: StaffId,
        at: DateTime<Utc>,
        reason: &str,
    ) -> Result<BusinessDayRecord>;

    /// Errors: `Conflict { what: "shift_open" }` when the cashier has an open shift at the
    /// store already.
    async fn open_shift(&self, s: &ShiftRecord) -> Result<()>;
    /// Errors: `NotFound`, `Conflict { what: "shift_closed" }`.
    async fn close_shift(&self, tenant: TenantId, id: Uuid, c: &ShiftClose) -> Result<ShiftRecord>;
    async fn shift(&self, tenant: TenantId, id: Uuid) -> Result<Option<ShiftRecord>>;
    /// Shifts of the store opened in `[from, to)`, oldest first (optionally one cashier's).
    async fn shifts(
        &self,
        tenant: TenantId,
        store: StoreId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        staff: Option<StaffId>,
    ) -> Result<Vec<ShiftRecord>>;
    /// The store's shifts still open (any time).
    async fn open_shifts(&self, tenant: TenantId, store: StoreId) -> Result<Vec<ShiftRecord>>;

    /// Principal accounts with entries of the given transaction kinds at the store
    /// (`None`: entries without a store) in `[from, to)`.
    async fn principal_accounts_used(
        &self,
        tenant: TenantId,
        store: Option<StoreId>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        kinds: &[&str],
    ) -> Result<Vec<Uuid>>;
    /// Every principal entry of the accounts before `to`, in ledger order.
    async fn principal_history(
        &self,
        tenant: TenantId,
        accounts: &[Uuid],
        to: DateTime<Utc>,
    ) -> Result<Vec<PrincipalEntry>>;
    /// The principal entries of the given transactions.
    async fn principal_legs(&self, tenant: TenantId, txns: &[Uuid]) -> Result<Vec<PrincipalEntry>>;
}
