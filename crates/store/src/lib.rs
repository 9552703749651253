//! Patron's store layer: one [`Storage`] trait, two backends.
//!
//! - [`sqlite::SqliteStorage`]: the embedded default, one file in WAL mode. Writes go
//!   through a single-connection pool so transactions queue in-process instead of
//!   fighting over SQLite's one write lock; reads use a pool of their own.
//! - [`postgres::PgStorage`]: the scale-out backend.
//!
//! The SQL is written once (see `shared.rs`) in the dialect both databases accept
//! (`$1` parameters, `ON CONFLICT`, `RETURNING`); each backend has its own migrations
//! under `migrations/`. Every method takes the tenant id and every query filters by it.
//! A method is one database transaction: the use cases never hold a transaction open.

pub mod analytics;
mod analytics_shared;
pub mod audit;
mod audit_shared;
pub mod coupons;
mod coupons_shared;
mod error;
pub mod ledger;
mod ledger_shared;
pub mod loyalty;
mod loyalty_shared;
pub mod menu;
mod menu_shared;
mod predictions;
mod read_pool;
mod rows;
pub mod settlement;
mod settlement_shared;
mod shared;
mod writer;

pub mod postgres;
pub mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patron_domain::card::Card;
use patron_domain::customer::Customer;
use patron_domain::ids::{CustomerId, StaffId, TenantId};
use patron_domain::menu::{MenuCategory, MenuItem};
use patron_domain::org::{Staff, Store, Tenant};
use patron_domain::page::PageRequest;
use patron_domain::timeline::TimelineEvent;
use serde::Serialize;
use std::sync::Arc;

pub use error::StoreError;
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Which database a storage talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A login session or an API token, stored by the SHA-256 of its secret.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub tenant_id: TenantId,
    pub token_hash: String,
    pub staff_id: StaffId,
    /// "session" (web/API login) or "api_token" (POS and other systems).
    pub kind: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// The store chosen at login (for chain-wide staff).
    pub store_id: Option<patron_domain::ids::StoreId>,
}

/// Filters for the customer list; all optional, combined with AND.
#[derive(Debug, Clone, Default)]
pub struct CustomerFilter {
    /// Part of the name (characters), or the start of its pinyin or initials.
    pub name: Option<String>,
    /// Start of the phone number.
    pub phone_prefix: Option<String>,
    pub tag: Option<String>,
    pub lifecycle_stage: Option<String>,
    pub customer_type: Option<String>,
    pub acquisition_source: Option<String>,
    pub level: Option<String>,
    pub marketing_consent: Option<bool>,
    /// 1–12.
    pub birthday_month: Option<u32>,
    pub created_from: Option<DateTime<Utc>>,
    pub created_to: Option<DateTime<Utc>>,
    /// Include records merged into others (hidden by default).
    pub include_merged: bool,
}

/// Customers that look like the same person, and why.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DuplicateGroup {
    /// same_name_birthday or same_email.
    pub reason: String,
    pub customer_ids: Vec<CustomerId>,
}

/// What a merge changes, so that the caller can tell the user.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct MergeCounts {
    pub timeline_events: u64,
    pub cards: u64,
    pub members: u64,
    pub referrals: u64,
}

/// The one interface the use cases see. Implemented by both backends; the same test
/// suite (`tests/storage.rs`) runs against each.
#[async_trait]
pub trait Storage:
    ledger::LedgerStore
    + analytics::AnalyticsStore
    + audit::AuditStore
    + coupons::CouponStore
    + loyalty::LoyaltyStore
    + menu::MenuStore
    + settlement::SettlementStore
    + Send
    + Sync
    + 'static
{
    fn backend(&self) -> Backend;
    /// Applies the backend's pending migrations.
    async fn migrate(&self) -> Result<()>;
    /// Checks the database answers.
    async fn ping(&self) -> Result<()>;

    // Tenants, stores, staff.
    async fn create_tenant(&self, t: &Tenant) -> Result<()>;
    async fn tenant(&self, id: TenantId) -> Result<Option<Tenant>>;
    async fn tenant_by_code(&self, code: &str) -> Result<Option<Tenant>>;
    async fn list_tenants(&self) -> Result<Vec<Tenant>>;
    async fn create_store(&self, s: &Store) -> Result<()>;
    async fn list_stores(&self, tenant: TenantId) -> Result<Vec<Store>>;
    async fn create_staff(&self, s: &Staff) -> Result<()>;
    async fn staff(&self, tenant: TenantId, id: StaffId) -> Result<Option<Staff>>;
    async fn staff_by_username(&self, tenant: TenantId, username: &str) -> Result<Option<Staff>>;
    /// Staff accounts in the whole database: zero means nobody can log in yet.
    async fn count_all_staff(&self) -> Result<i64>;

    // Sessions and tokens.
    async fn create_session(&self, s: &Session) -> Result<()>;
    async fn session(&self, tenant: TenantId, token_hash: &str) -> Result<Option<Session>>;
    async fn extend_session(
        &self,
        tenant: TenantId,
        token_hash: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<()>;
    async fn delete_session(&self, tenant: TenantId, token_hash: &str) -> Result<()>;

    // Customers.
    /// Inserts new customers in one transaction (one or a batch of thousands).
    async fn insert_customers(&self, customers: &[Customer]) -> Result<()>;
    /// Starts a bulk insert of customers that stays one transaction across many
    /// [`CustomerImport::write`] calls (a file import): nothing is visible to other
    /// readers until [`CustomerImport::commit`], and dropping the writer without
    /// committing rolls every row back. On SQLite it holds the one write connection, so
    /// other writes queue until it ends.
    async fn begin_customer_import(&self) -> Result<Box<dyn CustomerImport>>;
    /// Replaces a customer's stored fields and appends the timeline event, atomically.
    async fn update_customer(&self, c: &Customer, event: &TimelineEvent) -> Result<()>;
    async fn customer(&self, tenant: TenantId, id: CustomerId) -> Result<Option<Customer>>;
    async fn customer_by_phone(&self, tenant: TenantId, phone: &str) -> Result<Option<Customer>>;
    async fn customer_by_id_hash(&self, tenant: TenantId, hash: &str) -> Result<Option<Customer>>;
    async fn customer_by_card_number(
        &self,
        tenant: TenantId,
        number: &str,
    ) -> Result<Option<Customer>>;
    /// Of the given phones, those already used, with their owner.
    async fn phones_in_use(
        &self,
        tenant: TenantId,
        phones: &[String],
    ) -> Result<Vec<(String, CustomerId)>>;
    /// Of the given ID hashes, those already used, with their owner.
    async fn id_hashes_in_use(
        &self,
        tenant: TenantId,
        hashes: &[String],
    ) -> Result<Vec<(String, CustomerId)>>;
    /// A page of customers, newest first, fetched with one extra row to tell `has_more`.
    async fn list_customers(
        &self,
        tenant: TenantId,
        f: &CustomerFilter,
        page: PageRequest,
    ) -> Result<Vec<Customer>>;
    /// Till look-up by name: prefix of the name, its pinyin or its initials.
    async fn customers_by_name_prefix(
        &self,
        tenant: TenantId,
        prefix: &str,
        limit: i64,
    ) -> Result<Vec<Customer>>;
    /// Customers in id order after `after`, for streaming exports.
    async fn customers_after(
        &self,
        tenant: TenantId,
        after: Option<CustomerId>,
        limit: i64,
    ) -> Result<Vec<Customer>>;
    async fn count_customers(&self, tenant: TenantId) -> Result<i64>;
    async fn duplicate_groups(&self, tenant: TenantId, limit: i64) -> Result<Vec<DuplicateGroup>>;
    /// Moves everything `duplicate` owns to `survivor` (already updated by the caller with
    /// the absorbed profile), marks the duplicate merged, and records both events.
    async fn merge_customers(
        &self,
        survivor: &Customer,
        duplicate: CustomerId,
        survivor_event: &TimelineEvent,
        duplicate_event: &TimelineEvent,
    ) -> Result<MergeCounts>;

    // Timeline.
    async fn add_timeline_event(&self, e: &TimelineEvent) -> Result<()>;
    /// Newest first, strictly before `before` when given.
    async fn timeline(
        &self,
        tenant: TenantId,
        customer: CustomerId,
        // Events strictly before this moment; with an event id, also those at that very
        // moment listed after that event (newest first, then by id descending).
        before: Option<(DateTime<Utc>, Option<uuid::Uuid>)>,
        limit: i64,
    ) -> Result<Vec<TimelineEvent>>;

    // Cards (numbers and holders; balances come with the ledger).
    async fn insert_cards(&self, cards: &[Card]) -> Result<()>;
    async fn cards_of_customer(&self, tenant: TenantId, customer: CustomerId) -> Result<Vec<Card>>;

    // Menu.
    async fn insert_menu(&self, categories: &[MenuCategory], items: &[MenuItem]) -> Result<()>;
    async fn menu(&self, tenant: TenantId) -> Result<(Vec<MenuCategory>, Vec<MenuItem>)>;
}

/// An open bulk insert of customers (see [`Storage::begin_customer_import`]). The one
/// exception to "one store method = one transaction": an import of a million rows must
/// be all-or-nothing without being held in memory at once.
#[async_trait]
pub trait CustomerImport: Send {
    /// Inserts new customers (in multi-row INSERTs of a few hundred rows) inside the
    /// open transaction. A unique or foreign-key violation fails the call; the caller
    /// should then drop the writer, which rolls everything back.
    async fn write(&mut self, customers: &[Customer]) -> Result<()>;
    /// Commits every row written so far.
    async fn commit(self: Box<Self>) -> Result<()>;
}

/// Opens the database a URL names: `sqlite://path` (or a bare path ending in .db) or
/// `postgres://...`. Migrations are applied.
pub async fn connect(url: &str) -> Result<Arc<dyn Storage>> {
    let storage: Arc<dyn Storage> =
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Arc::new(postgres::PgStorage::connect(url).await?)
        } else {
            let path = url
                .strip_prefix("sqlite://")
                .or_else(|| url.strip_prefix("sqlite:"))
                .unwrap_or(url);
            Arc::new(sqlite::SqliteStorage::open(path).await?)
        };
    storage.migrate().await?;
    Ok(storage)
}
