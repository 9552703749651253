//! Who may do what: the permission matrix, per-staff limits and the login lockout rule.
//!
//! This is the one place where roles are given rights. Use cases call
//! `Actor::require(Permission::X)` (crates/app) before anything else, so the HTTP layer,
//! the CLI and any future caller get the same answer. API tokens carry a scope (a set of
//! permissions); a token may do what both its scope and its creator's role allow.
//!
//! The roles, as a restaurant chain uses them:
//!
//! - **Owner** (老板): the merchant. Everything, in every store, including staff,
//!   settings, reopening a closed day and exporting personal data.
//! - **Manager** (店长): runs a store. Everything at the till and in the back office of
//!   their store, approves cashiers' reversals, refunds and adjustments; sees personal
//!   data. Not: staff accounts, tenant settings, reopening a day, chain-wide reports,
//!   exports of personal data.
//! - **Cashier** (收银员): the till. Customers (masked), cards, top-ups, spends, checkout,
//!   points and coupon redemption, charge accounts, shifts. Adjustments, reversals and
//!   refunds only with a manager's approval (their limits are zero by default).
//! - **Marketer** (营销): campaigns. Customers (masked) and their tags, imports, coupon
//!   templates and rules, issuing coupons, gifts, customer analytics. No money, and no
//!   money reports.
//! - **Service agent** (客服): the phone line. Customers with their personal data (to call
//!   back), cards (freeze a lost card), compensation coupons. No money.
//! - **Salesperson** (销售): sells stored-value cards and corporate accounts. Customers
//!   with personal data (their clients), issuing cards, top-ups, corporate accounts.

use crate::money::Money;
use crate::org::Role;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One kind of action. The snake_case name is what API token scopes list and what a 403
/// names.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// Look customers up, read profiles (masked without `ViewPersonalData`), timelines.
    ViewCustomers,
    /// Create customers and edit profiles.
    EditCustomers,
    /// Merge duplicate customers.
    MergeCustomers,
    /// See phone numbers and e-mail addresses unmasked.
    ViewPersonalData,
    /// Export customer files (audited).
    ExportPersonalData,
    /// Import customer files.
    ImportCustomers,
    /// Read cards, their balances, points, PIN attempts and statements.
    ViewCards,
    /// Issue cards and set their PINs.
    IssueCards,
    /// Top up stored value.
    TopUp,
    /// Spend stored value (and verify PINs for it).
    Spend,
    /// Move balances between cards.
    TransferBalances,
    /// Correct a balance by hand (within the staff member's limits, else approved).
    AdjustBalances,
    /// Reverse a transaction or refund a checkout (with a manager's approval).
    ReverseOrRefund,
    /// Freeze, unfreeze, replace and close cards.
    ManageCards,
    /// Quote and take bills at the till, read receipts, record purchases.
    Checkout,
    /// Pay with points: gifts, coupons bought with points.
    RedeemPoints,
    /// Set a customer's level by hand.
    SetLevel,
    /// Read corporate charge accounts, statements and pools.
    ViewCorporate,
    /// Sign a bill to a corporate charge account (挂账).
    ChargeToAccount,
    /// Set credit limits and take repayments.
    ManageCorporate,
    /// Read stores, the menu, gifts, coupon templates and issue rules.
    ViewCatalog,
    /// Change the menu and its prices.
    ManageMenu,
    /// Create and change coupon templates and issue rules.
    ManageCoupons,
    /// Issue coupons to customers.
    IssueCoupons,
    /// Read issued coupons.
    ViewCoupons,
    /// Redeem a coupon at the till.
    RedeemCoupons,
    /// Void an issued coupon.
    VoidCoupons,
    /// Create and change points gifts.
    ManageGifts,
    /// Run the loyalty and coupon jobs by hand.
    RunJobs,
    /// Reports and customer analytics.
    ViewReports,
    /// Money reports: the daily settlement, the stored-value liability.
    ViewFinance,
    /// Open and close one's shift, read shift reports.
    Shifts,
    /// Close a business day.
    CloseDay,
    /// Reopen a closed business day.
    ReopenDay,
    /// Chain-wide reports (inter-store settlement).
    ChainReports,
    /// Change the tenant's settings.
    ManageSettings,
    /// List staff accounts.
    ViewStaff,
    /// Create and change staff accounts, roles, stores and limits.
    ManageStaff,
    /// Create, list and revoke API tokens.
    ManageApiTokens,
    /// Search the audit log.
    ViewAudit,
}

impl Permission {
    /// Every permission, in declaration order.
    pub const ALL: [Permission; 40] = [
        Permission::ViewCustomers,
        Permission::EditCustomers,
        Permission::MergeCustomers,
        Permission::ViewPersonalData,
        Permission::ExportPersonalData,
        Permission::ImportCustomers,
        Permission::ViewCards,
        Permission::IssueCards,
        Permission::TopUp,
        Permission::Spend,
        Permission::TransferBalances,
        Permission::AdjustBalances,
        Permission::ReverseOrRefund,
        Permission::ManageCards,
        Permission::Checkout,
        Permission::RedeemPoints,
        Permission::SetLevel,
        Permission::ViewCorporate,
        Permission::ChargeToAccount,
        Permission::ManageCorporate,
        Permission::ViewCatalog,
        Permission::ManageMenu,
        Permission::ManageCoupons,
        Permission::IssueCoupons,
        Permission::ViewCoupons,
        Permission::RedeemCoupons,
        Permission::VoidCoupons,
        Permission::ManageGifts,
        Permission::RunJobs,
        Permission::ViewReports,
        Permission::ViewFinance,
        Permission::Shifts,
        Permission::CloseDay,
        Permission::ReopenDay,
        Permission::ChainReports,
        Permission::ManageSettings,
        Permission::ViewStaff,
        Permission::ManageStaff,
        Permission::ManageApiTokens,
        Permission::ViewAudit,
    ];

    /// The snake_case name (as in JSON).
    pub fn as_str(self) -> &'static str {
        NAMES[self as usize]
    }

    pub fn parse(s: &str) -> Option<Permission> {
        NAMES
            .iter()
            .position(|n| *n == s)
            .map(|i| Permission::ALL[i])
    }

    fn bit(self) -> u64 {
        1 << (self as u32)
    }
}

/// The names of [`Permission::ALL`], same order (a unit test checks they match serde's).
const NAMES: [&str; 40] = [
    "view_customers",
    "edit_customers",
    "merge_customers",
    "view_personal_data",
    "export_personal_data",
    "import_customers",
    "view_cards",
    "issue_cards",
    "top_up",
    "spend",
    "transfer_balances",
    "adjust_balances",
    "reverse_or_refund",
    "manage_cards",
    "checkout",
    "redeem_points",
    "set_level",
    "view_corporate",
    "charge_to_account",
    "manage_corporate",
    "view_catalog",
    "manage_menu",
    "manage_coupons",
    "issue_coupons",
    "view_coupons",
    "redeem_coupons",
    "void_coupons",
    "manage_gifts",
    "run_jobs",
    "view_reports",
    "view_finance",
    "shifts",
    "close_day",
    "reopen_day",
    "chain_reports",
    "manage_settings",
    "view_staff",
    "manage_staff",
    "manage_api_tokens",
    "view_audit",
];

impl std::fmt::Display for Permission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of permissions (an API token's scope), as a bit set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PermissionSet(u64);

impl PermissionSet {
    pub fn contains(self, p: Permission) -> bool {
        self.0 & p.bit() != 0
    }
    pub fn insert(&mut self, p: Permission) {
        self.0 |= p.bit();
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// The permissions in the set, in declaration order.
    pub fn to_vec(self) -> Vec<Permission> {
        Permission::ALL
            .into_iter()
            .filter(|p| self.contains(*p))
            .collect()
    }
    /// Everything a role may do.
    pub fn of_role(role: Role) -> PermissionSet {
        Permission::ALL
            .into_iter()
            .filter(|p| allows(role, *p))
            .collect()
    }
}

impl FromIterator<Permission> for PermissionSet {
    fn from_iter<I: IntoIterator<Item = Permission>>(iter: I) -> Self {
        let mut s = PermissionSet::default();
        for p in iter {
            s.insert(p);
        }
        s
    }
}

/// The permission matrix: may `role` do `permission`? See the module documentation for
/// what each role is for.
pub const fn allows(role: Role, permission: Permission) -> bool {
    use Permission::*;
    match role {
        Role::Owner => true,
        Role::Manager => !matches!(
            permission,
            ExportPersonalData | ReopenDay | ChainReports | ManageSettings | ManageStaff
        ),
        Role::Cashier => matches!(
            permission,
            ViewCustomers
                | EditCustomers
                | ViewCards
                | IssueCards
                | TopUp
                | Spend
                | TransferBalances
                | AdjustBalances
                | ReverseOrRefund
                | Checkout
                | RedeemPoints
                | ViewCorporate
                | ChargeToAccount
                | ViewCatalog
                | ViewCoupons
                | RedeemCoupons
                | Shifts
        ),
        Role::Marketer => matches!(
            permission,
            ViewCustomers
                | EditCustomers
                | ImportCustomers
                | ViewCatalog
                | ManageCoupons
                | IssueCoupons
                | ViewCoupons
                | ManageGifts
                | ViewReports
        ),
        Role::ServiceAgent => matches!(
            permission,
            ViewCustomers
                | EditCustomers
                | ViewPersonalData
                | ViewCards
                | ManageCards
                | ViewCorporate
                | ViewCatalog
                | IssueCoupons
                | ViewCoupons
        ),
        Role::Salesperson => matches!(
            permission,
            ViewCustomers
                | EditCustomers
                | ViewPersonalData
                | ViewCards
                | IssueCards
                | TopUp
                | ViewCorporate
                | ViewCatalog
                | ViewCoupons
        ),
    }
}

/// What one staff member may do alone, beyond which a manager approves at the till.
///
/// Adjustment limits are in the unit of the balance adjusted (fen for money, points for
/// points) and count the absolute amount; `None` means no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StaffLimits {
    /// The largest manual discount, in basis points of the bill (10000 = all of it).
    pub max_discount_bp: u32,
    /// The largest single adjustment without approval.
    pub max_adjustment_per_txn: Option<i64>,
    /// The most adjusted in one business day without approval (sum of absolute amounts).
    pub max_adjustment_per_day: Option<i64>,
}

impl StaffLimits {
    /// The defaults of a role, used until the owner sets a staff member's own.
    pub const fn default_for(role: Role) -> StaffLimits {
        match role {
            Role::Owner => StaffLimits {
                max_discount_bp: 10_000,
                max_adjustment_per_txn: None,
                max_adjustment_per_day: None,
            },
            // ¥500 at a time, ¥2,000 a day.
            Role::Manager => StaffLimits {
                max_discount_bp: 10_000,
                max_adjustment_per_txn: Some(Money::from_fen(50_000).fen()),
                max_adjustment_per_day: Some(Money::from_fen(200_000).fen()),
            },
            // Everyone else: every adjustment and manual discount is approved.
            _ => StaffLimits {
                max_discount_bp: 0,
                max_adjustment_per_txn: Some(0),
                max_adjustment_per_day: Some(0),
            },
        }
    }

    /// Whether an adjustment of `amount` (either sign) may be made without approval by
    /// someone who has already adjusted `done_today` (absolute sum) this business day.
    pub fn allows_adjustment(&self, amount: i64, done_today: i64) -> bool {
        let a = amount.unsigned_abs();
        self.max_adjustment_per_txn
            .is_none_or(|m| a <= m.max(0).unsigned_abs())
            && self.max_adjustment_per_day.is_none_or(|m| {
                a.saturating_add(done_today.max(0).unsigned_abs()) <= m.max(0).unsigned_abs()
            })
    }

    /// Whether a manual discount of `bp` basis points may be given without approval.
    pub fn allows_discount(&self, bp: u32) -> bool {
        bp <= self.max_discount_bp
    }
}

/// When failed logins lock an account: `max_failures` within `window` refuse further
/// attempts until the oldest of them is `window` old.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    pub max_failures: usize,
    pub window: Duration,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        LockoutPolicy {
            max_failures: 5,
            window: Duration::minutes(15),
        }
    }
}

impl LockoutPolicy {
    /// Until when attempts are refused, given the failures since the last success
    /// (any order); `None` when not locked.
    pub fn locked_until(
        &self,
        failures: &[DateTime<Utc>],
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        if self.max_failures == 0 {
            return None;
        }
        let mut recent: Vec<DateTime<Utc>> = failures
            .iter()
            .copied()
            .filter(|t| *t > now - self.window && *t <= now)
            .collect();
        if recent.len() < self.max_failures {
            return None;
        }
        // Newest first: the lock lifts when the max_failures-th newest leaves the window.
        recent.sort_by(|a, b| b.cmp(a));
        Some(recent[self.max_failures - 1] + self.window)
    }
}

/// An e-mail address for roles without [`Permission::ViewPersonalData`]: the first
/// character of the local part and the domain, "z***@example.com".
pub fn mask_email(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".into(),
    }
}

/// A free-text phone number (e.g. a work phone) masked like a mobile: all digits but the
/// first three and the last four become `*`.
pub fn mask_phone_text(s: &str) -> String {
    let digits = s.chars().filter(char::is_ascii_digit).count();
    if digits <= 7 {
        return s
            .chars()
            .map(|c| if c.is_ascii_digit() { '*' } else { c })
            .collect();
    }
    let mut seen = 0;
    s.chars()
        .map(|c| {
            if c.is_ascii_digit() {
                seen += 1;
                if seen > 3 && seen <= digits - 4 {
                    return '*';
                }
            }
            c
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROLES: [Role; 6] = [
        Role::Owner,
        Role::Manager,
        Role::Cashier,
        Role::Marketer,
        Role::ServiceAgent,
        Role::Salesperson,
    ];

    #[test]
    fn names_match_serde_and_parse_back() {
        for p in Permission::ALL {
            let json = serde_json::to_value(p).unwrap();
            assert_eq!(json.as_str().unwrap(), p.as_str());
            assert_eq!(Permission::parse(p.as_str()), Some(p));
        }
        assert_eq!(Permission::parse("root"), None);
        // ALL lists each variant once, in order (the bit positions rely on it).
        for (i, p) in Permission::ALL.iter().enumerate() {
            assert_eq!(*p as usize, i);
        }
    }

    #[test]
    fn owner_has_everything() {
        for p in Permission::ALL {
            assert!(allows(Role::Owner, p), "{p}");
        }
    }

    #[test]
    fn only_the_owner_manages_staff_settings_exports_and_reopens() {
        for p in [
            Permission::ManageStaff,
            Permission::ManageSettings,
            Permission::ExportPersonalData,
            Permission::ReopenDay,
            Permission::ChainReports,
        ] {
            for r in ROLES {
                assert_eq!(allows(r, p), r == Role::Owner, "{r:?} {p}");
            }
        }
    }

    #[test]
    fn the_manager_has_all_a_store_needs() {
        for r in [
            Role::Cashier,
            Role::Marketer,
            Role::ServiceAgent,
            Role::Salesperson,
        ] {
            for p in Permission::ALL {
                if allows(r, p) {
                    assert!(allows(Role::Manager, p), "{r:?} has {p}, manager not");
                }
            }
        }
    }

    #[test]
    fn who_sees_personal_data_and_moves_money() {
        let personal: Vec<Role> = ROLES
            .into_iter()
            .filter(|r| allows(*r, Permission::ViewPersonalData))
            .collect();
        assert_eq!(
            personal,
            vec![
                Role::Owner,
                Role::Manager,
                Role::ServiceAgent,
                Role::Salesperson
            ]
        );
        for p in [
            Permission::Spend,
            Permission::AdjustBalances,
            Permission::Checkout,
        ] {
            assert!(!allows(Role::Marketer, p));
            assert!(!allows(Role::ServiceAgent, p));
            assert!(allows(Role::Cashier, p));
        }
        // Money reports are for those who run a store.
        let finance: Vec<Role> = ROLES
            .into_iter()
            .filter(|r| allows(*r, Permission::ViewFinance))
            .collect();
        assert_eq!(finance, vec![Role::Owner, Role::Manager]);
        // Everyone can see customers and the catalogue.
        for r in ROLES {
            assert!(allows(r, Permission::ViewCustomers));
            assert!(allows(r, Permission::ViewCatalog));
        }
    }

    #[test]
    fn permission_sets() {
        let s: PermissionSet = [Permission::TopUp, Permission::Spend].into_iter().collect();
        assert!(s.contains(Permission::TopUp) && !s.contains(Permission::Checkout));
        assert_eq!(s.to_vec(), vec![Permission::TopUp, Permission::Spend]);
        assert!(PermissionSet::default().is_empty());
        assert_eq!(
            PermissionSet::of_role(Role::Owner).to_vec(),
            Permission::ALL.to_vec()
        );
    }

    #[test]
    fn masking() {
        assert_eq!(mask_email("zhang.san@example.com"), "z***@example.com");
        assert_eq!(mask_email("nonsense"), "***");
        assert_eq!(mask_phone_text("021-6888 1234"), "021-**** 1234");
        assert_eq!(mask_phone_text("12345"), "*****");
    }

    #[test]
    fn limits() {
        let cashier = StaffLimits::default_for(Role::Cashier);
        assert!(!cashier.allows_adjustment(1, 0));
        assert!(!cashier.allows_discount(1));
        assert!(cashier.allows_discount(0));
        let owner = StaffLimits::default_for(Role::Owner);
        assert!(owner.allows_adjustment(i64::MIN, i64::MAX));
        let m = StaffLimits::default_for(Role::Manager);
        assert!(m.allows_adjustment(-50_000, 0));
        assert!(!m.allows_adjustment(50_001, 0));
        assert!(m.allows_adjustment(50_000, 150_000));
        assert!(!m.allows_adjustment(50_000, 150_001));
    }

    #[test]
    fn lockout_after_five_failures_until_the_fifth_newest_leaves_the_window() {
        let p = LockoutPolicy::default();
        let t0 = DateTime::parse_from_rfc3339("2025-01-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let fails: Vec<_> = (0..5).map(|i| t0 + Duration::minutes(i)).collect();
        let now = t0 + Duration::minutes(5);
        assert_eq!(p.locked_until(&fails[..4], now), None);
        assert_eq!(
            p.locked_until(&fails, now),
            Some(t0 + Duration::minutes(15))
        );
        // Six failures: the lock lifts when the second-oldest leaves the window.
        let mut six = fails.clone();
        six.push(t0 + Duration::minutes(6));
        assert_eq!(
            p.locked_until(&six, now + Duration::minutes(1)),
            Some(t0 + Duration::minutes(16))
        );
        assert_eq!(p.locked_until(&fails, t0 + Duration::minutes(15)), None);
    }
}
