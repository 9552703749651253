//! Patron's use cases. Each public function here is one thing a user does (log in, create
//! a customer, import a file...): it validates with the domain layer, calls the store, and
//! returns domain values or an [`AppError`]. HTTP and CLI are thin callers of this layer.

pub mod analytics;
pub mod audit;
pub mod auth;
pub mod cards;
pub mod checkout;
pub mod corporate;
pub mod coupons;
pub mod customers;
pub mod demo;
pub mod error;
pub mod export;
pub mod import;
pub mod loyalty;
pub mod menu;
pub mod org;
pub mod receipts;
pub mod settlement;
pub mod staff;
pub mod statements;
pub mod tenant_cache;
pub mod verify;

pub use error::AppError;

use chrono::{DateTime, SubsecRound, Utc};
use patron_domain::ids::{StaffId, StoreId, TenantId};
use patron_domain::org::Role;
use patron_store::Storage;
use std::sync::Arc;

/// Everything a use case needs: the storage and the secrets.
#[derive(Clone)]
pub struct App {
    pub storage: Arc<dyn Storage>,
    /// Key of the HMAC that protects ID-document numbers; kept outside the database.
    pub id_hash_key: Arc<Vec<u8>>,
    pub session_ttl: chrono::Duration,
    /// A login session unused this long ends (it slides with use, up to `session_ttl`).
    pub session_idle: chrono::Duration,
    /// When failed logins and approvals lock a username.
    pub lockout: patron_domain::permissions::LockoutPolicy,
    /// Failed logins per client address (in memory; see [`staff::IpThrottle`]).
    pub ip_throttle: Arc<staff::IpThrottle>,
    /// Verified-PIN tokens (in memory: a restart only asks for the PIN again).
    pub pin_tokens: Arc<cards::PinTokens>,
    /// Tenant settings recently read (see [`App::settings`]).
    pub settings_cache: Arc<cards::SettingsCache>,
    /// Tenant names and stores recently read (see `App::directory`).
    pub directory_cache: Arc<org::DirectoryCache>,
    /// Spend-triggered coupon rules recently read (see `App::spend_triggered_coupons`).
    pub issue_rules_cache: Arc<tenant_cache::TenantCache<Vec<patron_domain::coupon::IssueRule>>>,
    /// The dishes bills name, with their member prices (checkout.rs).
    pub menu_cache: Arc<
        tenant_cache::KeyedCache<patron_domain::ids::MenuItemId, patron_domain::menu::PricedItem>,
    >,
    /// Coupon templates, as bills and redemptions read them.
    pub template_cache:
        Arc<tenant_cache::KeyedCache<uuid::Uuid, patron_domain::coupon::CouponTemplate>>,
}

impl App {
    pub fn new(storage: Arc<dyn Storage>, id_hash_key: Vec<u8>) -> App {
        App {
            storage,
            id_hash_key: Arc::new(id_hash_key),
            session_ttl: chrono::Duration::hours(12),
            session_idle: chrono::Duration::minutes(30),
            lockout: Default::default(),
            ip_throttle: Arc::new(Default::default()),
            pin_tokens: Arc::new(cards::PinTokens::default()),
            settings_cache: Arc::new(tenant_cache::TenantCache::new(cards::SETTINGS_TTL)),
            directory_cache: Arc::new(tenant_cache::TenantCache::new(cards::SETTINGS_TTL)),
            issue_rules_cache: Arc::new(tenant_cache::TenantCache::new(cards::SETTINGS_TTL)),
            menu_cache: Arc::new(tenant_cache::KeyedCache::new(cards::SETTINGS_TTL)),
            template_cache: Arc::new(tenant_cache::KeyedCache::new(cards::SETTINGS_TTL)),
        }
    }
}

/// Who is acting: every use case that reads or changes tenant data takes one, and every
/// query it makes is scoped by `tenant_id`.
#[derive(Debug, Clone, PartialEq)]
pub struct Actor {
    pub tenant_id: TenantId,
    pub staff_id: StaffId,
    pub role: Role,
    pub store_id: Option<StoreId>,
    pub display_name: String,
    /// An API token's scope: the actor may do only what both this and the role allow
    /// (see [`Actor::require`]); `None` for logins.
    pub scope: Option<patron_domain::permissions::PermissionSet>,
}

tokio::task_local! {
    /// A simulated "now" for the current task (see [`at`]).
    static CLOCK: DateTime<Utc>;
}

/// The current time at the precision both databases keep (microseconds), so a value
/// read back equals the value written. Inside [`at`] it is the simulated time instead.
pub fn now() -> DateTime<Utc> {
    CLOCK
        .try_with(|t| *t)
        .unwrap_or_else(|_| Utc::now())
        .trunc_subsecs(6)
}

/// Runs `f` with [`now`] returning `t` throughout (task-local: other tasks, and tasks
/// `f` spawns, keep the real clock). It exists so that the demo generator can write a
/// history through the real use cases at past times, and for tests; nothing in
/// production sets it.
pub async fn at<F: std::future::Future>(t: DateTime<Utc>, f: F) -> F::Output {
    CLOCK.scope(t, f).await
}

/// A fresh time-ordered id.
pub fn new_uuid() -> uuid::Uuid {
    uuid::Uuid::now_v7()
}
