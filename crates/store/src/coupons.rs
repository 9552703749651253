//! Coupons' storage: templates, spend-trigger rules and issued coupons.
//!
//! Issuing checks the template's per-customer limit with one conditional upsert of the
//! customer's holding row, in the transaction that inserts the coupon; redeeming is one
//! conditional `UPDATE ... WHERE status = 'issued'`, so of concurrent attempts exactly one
//! changes the row (on either backend) and the others get
//! `StoreError::Conflict { what: "coupon_already_redeemed" }`. The same two steps run
//! inside `LedgerStore::post` for `LedgerChange::CouponIssue` and `CouponRedeem`, so a
//! checkout issues and consumes coupons in its money transaction.

use crate::Result;
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use patron_domain::coupon::{Coupon, CouponStatus, CouponTemplate, IssueRule};
use patron_domain::ids::{CustomerId, StaffId, StoreId, TenantId};
use uuid::Uuid;

/// One redemption: which coupon, when, by whom and where.
#[derive(Debug, Clone, PartialEq)]
pub struct CouponRedemption {
    pub tenant_id: TenantId,
    pub coupon: Uuid,
    pub at: DateTime<Utc>,
    /// Who uses it; when not its owner and not yet referred by anyone, the redeemer is
    /// recorded as referred by the owner (acquisition source `friend_coupon`).
    pub customer: Option<CustomerId>,
    pub store: Option<StoreId>,
    pub staff: Option<StaffId>,
    /// The request's idempotency key, kept with the coupon (see [`RedeemOutcome::replayed`]).
    pub key: Option<String>,
}

/// What a redemption did.
#[derive(Debug, Clone, PartialEq)]
pub struct RedeemOutcome {
    pub coupon: Coupon,
    /// The coupon had already been redeemed under the same key: nothing was changed.
    pub replayed: bool,
    /// The redeemer was recorded as referred by the coupon's owner.
    pub referral_recorded: bool,
}

/// Filters for listing coupons; combined with AND.
#[derive(Debug, Clone, Default)]
pub struct CouponFilter {
    pub customer: Option<CustomerId>,
    pub template: Option<Uuid>,
    pub status: Option<CouponStatus>,
}

#[async_trait]
pub trait CouponStore: Send + Sync {
    async fn insert_coupon_template(&self, t: &CouponTemplate) -> Result<()>;
    /// Replaces a template's fields (not its id or creation time).
    async fn update_coupon_template(&self, t: &CouponTemplate) -> Result<()>;
    async fn coupon_template(&self, tenant: TenantId, id: Uuid) -> Result<Option<CouponTemplate>>;
    /// All templates, newest first.
    async fn coupon_templates(&self, tenant: TenantId) -> Result<Vec<CouponTemplate>>;
    /// Coupons ever issued from a template (any status).
    async fn count_coupons_of_template(&self, tenant: TenantId, template: Uuid) -> Result<i64>;

    async fn insert_issue_rule(&self, r: &IssueRule) -> Result<()>;
    async fn update_issue_rule(&self, r: &IssueRule) -> Result<()>;
    async fn issue_rule(&self, tenant: TenantId, id: Uuid) -> Result<Option<IssueRule>>;
    /// All rules, lowest threshold first.
    async fn issue_rules(&self, tenant: TenantId) -> Result<Vec<IssueRule>>;

    /// Inserts coupons in one transaction with their owners' `coupon_issued` timeline
    /// events. All or nothing: a per-customer limit reached refuses the whole call with
    /// `Conflict { what: "coupon_limit_reached" }`.
    async fn issue_coupons(&self, coupons: &[Coupon]) -> Result<()>;
    async fn coupon(&self, tenant: TenantId, id: Uuid) -> Result<Option<Coupon>>;
    /// By its canonical code (`XXXX-XXXX-XXXX-XXXX`).
    async fn coupon_by_code(&self, tenant: TenantId, code: &str) -> Result<Option<Coupon>>;
    /// Newest first, at most `limit`.
    async fn list_coupons(
        &self,
        tenant: TenantId,
        f: &CouponFilter,
        limit: i64,
    ) -> Result<Vec<Coupon>>;
    /// How many coupons of `template` each of `customers` holds (voided ones not
    /// counted); customers holding none are left out.
    async fn coupon_holdings(
        &self,
        tenant: TenantId,
        template: Uuid,
        customers: &[CustomerId],
    ) -> Result<Vec<(CustomerId, i64)>>;
    /// Redeems an issued coupon (see the module doc) with its timeline events and the
    /// friend referral, in one transaction. Errors: `NotFound`, `Conflict` with
    /// `coupon_already_redeemed`, `coupon_voided` or `coupon_expired`.
    async fn redeem_coupon(&self, r: &CouponRedemption) -> Result<RedeemOutcome>;
    /// Voids an issued coupon, gives its place back under the per-customer limit and puts
    /// `coupon_voided` on the owner's timeline. Errors as for redeeming.
    async fn void_coupon(
        &self,
        tenant: TenantId,
        id: Uuid,
        reason: &str,
        staff: Option<StaffId>,
        store: Option<StoreId>,
        at: DateTime<Utc>,
    ) -> Result<Coupon>;
    /// Marks issued coupons whose last valid day is before `today` as expired; returns
    /// how many.
    async fn expire_coupons(
        &self,
        tenant: TenantId,
        today: NaiveDate,
        at: DateTime<Utc>,
    ) -> Result<u64>;
}
