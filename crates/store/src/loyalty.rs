//! Storage of the loyalty programme beside the ledger: visits (growth value), points lots,
//! level changes, the gift catalogue and the runs of scheduled jobs.
//!
//! Points balances themselves live in the ledger; the lots here are changed only by the
//! ledger's post (see [`crate::ledger::LotRule`]), so they always sum to the balance.

use crate::Result;
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use patron_domain::ids::{CardId, CustomerId, StaffId, StoreId, TenantId, TimelineEventId};
use patron_domain::timeline::TimelineEvent;
use serde::Serialize;
use uuid::Uuid;

/// One spend of a customer (or of an anonymous card).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VisitRecord {
    #[serde(skip)]
    pub tenant_id: TenantId,
    pub id: Uuid,
    pub customer_id: Option<CustomerId>,
    pub card_id: Option<CardId>,
    pub store_id: Option<StoreId>,
    pub staff_id: Option<StaffId>,
    /// The ledger transaction it belongs to (the posting transaction when None).
    pub txn_id: Option<Uuid>,
    /// "purchase" (recorded at the till) or "checkout".
    pub source: String,
    pub occurred_at: DateTime<Utc>,
    pub local_date: NaiveDate,
    /// The whole bill, in fen.
    pub amount: i64,
    /// The part that counts as growth value (paid, after discounts), in fen.
    pub growth: i64,
    pub reversed_at: Option<DateTime<Utc>>,
}

/// A change of a customer's member level, with its reason.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct LevelChangeRecord {
    #[serde(skip)]
    #[schema(ignore)]
    pub tenant_id: TenantId,
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    pub customer_id: CustomerId,
    pub from_level: Option<String>,
    pub to_level: String,
    /// upgrade, review_downgrade, manual, initial.
    pub reason: String,
    /// Growth value (fen) at the time of the change.
    pub growth: i64,
    pub explanation: String,
    pub explanation_en: String,
    pub staff_id: Option<StaffId>,
    pub store_id: Option<StoreId>,
    pub occurred_at: DateTime<Utc>,
}

impl LevelChangeRecord {
    /// The customer's timeline event for this change (same id).
    pub fn timeline_event(&self) -> TimelineEvent {
        TimelineEvent {
            tenant_id: self.tenant_id,
            id: TimelineEventId(self.id),
            customer_id: self.customer_id,
            occurred_at: self.occurred_at,
            kind: "level_changed".into(),
            summary: self.explanation.clone(),
            data: serde_json::json!({
                "from": self.from_level,
                "to": self.to_level,
                "reason": self.reason,
                "growth": self.growth,
                "explanation_en": self.explanation_en,
            }),
            store_id: self.store_id,
            staff_id: self.staff_id,
        }
    }
}

/// A lot of points: earned together, expiring together.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct LotRecord {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    #[schema(value_type = String, format = Uuid)]
    pub account_id: Uuid,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub txn_id: Option<Uuid>,
    pub earned_on: NaiveDate,
    pub expires_on: Option<NaiveDate>,
    pub points: i64,
    pub remaining: i64,
    pub created_at: DateTime<Utc>,
}

/// A gift customers can take for points.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct GiftRecord {
    #[serde(skip)]
    #[schema(ignore)]
    pub tenant_id: TenantId,
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    pub name: String,
    pub name_en: String,
    pub points_price: i64,
    /// None = unlimited.
    pub stock: Option<i64>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
}

/// The last run of a scheduled job of one tenant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobRun {
    pub job: String,
    pub last_run_on: NaiveDate,
    pub last_run_at: DateTime<Utc>,
    pub summary: String,
}

#[async_trait]
pub trait LoyaltyStore: Send + Sync {
    /// Customers and months whose kept growth total (`customer_growth_months`, kept by
    /// triggers) differs from their visits': (customer, month's first day, kept,
    /// visits'). Empty when the totals are right (`patron verify`).
    async fn growth_months_off(
        &self,
        tenant: TenantId,
    ) -> Result<Vec<(CustomerId, chrono::NaiveDate, i64, i64)>>;

    /// Sum of the growth of the customer's visits that were not reversed, from `from`
    /// (local date, inclusive; None = lifetime).
    async fn growth(
        &self,
        tenant: TenantId,
        customer: CustomerId,
        from: Option<NaiveDate>,
    ) -> Result<i64>;
    /// Visits of the customer within `[from, to]` (local dates), not reversed.
    async fn visit_count(
        &self,
        tenant: TenantId,
        customer: CustomerId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<i64>;
    /// The customer's visits, newest first.
    async fn visits(
        &self,
        tenant: TenantId,
        customer: CustomerId,
        limit: i64,
    ) -> Result<Vec<VisitRecord>>;
    /// Lots of the accounts that still hold points, soonest-expiring first.
    async fn lots(&self, tenant: TenantId, accounts: &[Uuid]) -> Result<Vec<LotRecord>>;
    /// For `patron verify`: the remaining points of every account that has lots.
    async fn lot_sums(&self, tenant: TenantId) -> Result<Vec<(Uuid, i64)>>;
    /// Accounts holding lots that expired before `before`, with how many points expired.
    async fn expired_lot_accounts(
        &self,
        tenant: TenantId,
        before: NaiveDate,
        limit: i64,
    ) -> Result<Vec<(Uuid, i64)>>;
    /// The customer's level changes, oldest first.
    async fn level_changes(
        &self,
        tenant: TenantId,
        customer: CustomerId,
    ) -> Result<Vec<LevelChangeRecord>>;
    /// Applies a level change on its own (reviews, manual changes). Refused with
    /// `Conflict { what: "level_changed" }` if the customer's level is no longer `from_level`.
    async fn change_level(&self, change: &LevelChangeRecord) -> Result<()>;
    /// Customers a level review looks at (those with a level or a visit), by id, in pages.
    async fn level_candidates(
        &self,
        tenant: TenantId,
        after: Option<CustomerId>,
        limit: i64,
    ) -> Result<Vec<(CustomerId, Option<String>)>>;
    async fn insert_gift(&self, gift: &GiftRecord) -> Result<()>;
    async fn update_gift(&self, gift: &GiftRecord) -> Result<()>;
    async fn gift(&self, tenant: TenantId, id: Uuid) -> Result<Option<GiftRecord>>;
    async fn gifts(&self, tenant: TenantId, active_only: bool) -> Result<Vec<GiftRecord>>;
    async fn job_run(&self, tenant: TenantId, job: &str) -> Result<Option<JobRun>>;
    async fn record_job_run(&self, tenant: TenantId, run: &JobRun) -> Result<()>;
}
