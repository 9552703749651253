//! The audit log, staff administration and API tokens.
//!
//! The audit log is append-only (database triggers refuse `UPDATE` and `DELETE`). Changes
//! that this module makes (staff accounts, API tokens, logins) write their audit row in
//! the same transaction as the change. Money and points changes are not copied here:
//! they are ledger transactions already, and [`AuditStore::search_audit`] reads both
//! tables as one stream.

use crate::Result;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patron_domain::ids::{CardId, CustomerId, StaffId, StoreId, TenantId};
use patron_domain::org::Staff;
use patron_domain::page::PageRequest;
use patron_domain::permissions::{Permission, StaffLimits};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// One audit row to append: who (staff, approver), what (action on an entity), when,
/// where (store), and the state before and after.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub tenant_id: TenantId,
    pub id: Uuid,
    pub at: DateTime<Utc>,
    /// Dotted name, e.g. `login`, `login.failed`, `staff.update`, `card.freeze`.
    pub action: String,
    pub staff_id: Option<StaffId>,
    pub approver_id: Option<StaffId>,
    pub store_id: Option<StoreId>,
    /// What kind of record changed: staff, card, coupon, settings, menu_item...
    pub entity_kind: String,
    /// Its id (or, for logins, the username typed).
    pub entity_id: Option<String>,
    pub customer_id: Option<CustomerId>,
    pub card_id: Option<CardId>,
    pub summary: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    /// The client's address, when known.
    pub ip: Option<String>,
}

/// Filters of an audit search; combined with AND.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Done or approved by this staff member.
    pub staff: Option<StaffId>,
    pub customer: Option<CustomerId>,
    pub card: Option<CardId>,
    /// Only at this store.
    pub store: Option<StoreId>,
    pub from: Option<DateTime<Utc>>,
    /// Exclusive.
    pub to: Option<DateTime<Utc>>,
    /// The action, or its start: `card.` matches `card.freeze`; `ledger.` every ledger
    /// transaction, `ledger.top_up` the top-ups.
    pub action: Option<String>,
}

/// A row of the audit search: an audit entry or a ledger transaction.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AuditRecord {
    /// `audit` or `ledger`.
    pub source: String,
    pub id: Uuid,
    pub at: DateTime<Utc>,
    /// For ledger transactions, `ledger.<kind>` (e.g. `ledger.adjustment`).
    pub action: String,
    pub staff_id: Option<StaffId>,
    pub approver_id: Option<StaffId>,
    pub store_id: Option<StoreId>,
    pub entity_kind: String,
    pub entity_id: Option<String>,
    pub customer_id: Option<CustomerId>,
    pub card_id: Option<CardId>,
    pub summary: String,
    /// Ledger transactions: the reason given (adjustments, reversals, refunds).
    pub reason: Option<String>,
    /// The state before (any JSON: an object, or a list such as member prices).
    #[schema(value_type = Option<Value>)]
    pub before: Option<serde_json::Value>,
    /// Ledger transactions: the transaction's details.
    #[schema(value_type = Option<Value>)]
    pub after: Option<serde_json::Value>,
    pub ip: Option<String>,
}

/// A staff account with what the staff module adds to it.
#[derive(Debug, Clone, PartialEq)]
pub struct StaffRecord {
    pub staff: Staff,
    /// The staff member's own limits; `None` means the role's defaults.
    pub limits: Option<StaffLimits>,
    /// argon2id hash of the approval PIN, when one is set.
    pub approval_pin_hash: Option<String>,
}

impl StaffRecord {
    /// The limits in force: the staff member's own, else the role's.
    pub fn effective_limits(&self) -> StaffLimits {
        self.limits
            .unwrap_or_else(|| StaffLimits::default_for(self.staff.role))
    }
}

/// An API token as stored: only the SHA-256 of its secret.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiTokenRecord {
    pub tenant_id: TenantId,
    pub id: Uuid,
    pub name: String,
    pub token_hash: String,
    /// The staff member the token acts as (its creator).
    pub staff_id: StaffId,
    /// The store the token works at.
    pub store_id: Option<StoreId>,
    pub scope: Vec<Permission>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoked_by: Option<StaffId>,
}

#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends one audit row (its own transaction: for changes made by other store
    /// methods, written right after them).
    async fn append_audit(&self, e: &AuditEntry) -> Result<()>;
    /// Audit rows and ledger transactions, newest first, one page (fetched with one
    /// extra row to tell `has_more`).
    async fn search_audit(
        &self,
        tenant: TenantId,
        f: &AuditFilter,
        page: PageRequest,
    ) -> Result<Vec<AuditRecord>>;
    /// When `username` failed to log in or to approve (`login.failed`,
    /// `approval.failed`) after `since` and after their last successful login, newest
    /// first (at most 100).
    async fn login_failures(
        &self,
        tenant: TenantId,
        username: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<DateTime<Utc>>>;
    /// The sum of absolute amounts of adjustments `staff` made without an approver
    /// since `since`.
    async fn self_approved_adjustments(
        &self,
        tenant: TenantId,
        staff: StaffId,
        since: DateTime<Utc>,
    ) -> Result<i64>;

    /// Every staff account of the tenant, by username.
    async fn staff_records(&self, tenant: TenantId) -> Result<Vec<StaffRecord>>;
    async fn staff_record(&self, tenant: TenantId, id: StaffId) -> Result<Option<StaffRecord>>;
    async fn staff_record_by_username(
        &self,
        tenant: TenantId,
        username: &str,
    ) -> Result<Option<StaffRecord>>;
    /// Inserts a staff account with its audit row. Errors: `Conflict` (username),
    /// `MissingReference` (store).
    async fn create_staff_audited(&self, r: &StaffRecord, e: &AuditEntry) -> Result<()>;
    /// Replaces display name, password hash, role, store, active, limits and approval
    /// PIN; with `end_sessions` also ends the account's login sessions (a password reset
    /// or deactivation). Errors: `NotFound`, `MissingReference` (store).
    async fn update_staff_audited(
        &self,
        r: &StaffRecord,
        end_sessions: bool,
        e: &AuditEntry,
    ) -> Result<()>;

    /// Stores a login session with its `login` audit row.
    async fn create_session_audited(&self, s: &crate::Session, e: &AuditEntry) -> Result<()>;

    async fn create_api_token(&self, t: &ApiTokenRecord, e: &AuditEntry) -> Result<()>;
    /// The tenant's tokens, newest first (revoked ones too).
    async fn api_tokens(&self, tenant: TenantId) -> Result<Vec<ApiTokenRecord>>;
    async fn api_token(&self, tenant: TenantId, id: Uuid) -> Result<Option<ApiTokenRecord>>;
    async fn api_token_by_hash(
        &self,
        tenant: TenantId,
        token_hash: &str,
    ) -> Result<Option<ApiTokenRecord>>;
    /// Revokes a token (once) with its audit row; `false` when it is missing or was
    /// revoked already (then nothing is written).
    async fn revoke_api_token(
        &self,
        tenant: TenantId,
        id: Uuid,
        at: DateTime<Utc>,
        by: StaffId,
        e: &AuditEntry,
    ) -> Result<bool>;
}
