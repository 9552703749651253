//! Tenants (merchants), their stores and their staff.

use crate::ids::{StaffId, StoreId, TenantId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A merchant: every other record belongs to exactly one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Tenant {
    pub id: TenantId,
    /// Short code typed at login, e.g. "demo".
    pub code: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

/// A store (门店) of a tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Store {
    pub tenant_id: TenantId,
    pub id: StoreId,
    /// Short code, unique in the tenant, e.g. "SH01".
    pub code: String,
    pub name: String,
    pub address: Option<String>,
    pub phone: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Staff roles (the permission matrix comes with the staff-and-roles work).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Owner,
    Manager,
    Cashier,
    Marketer,
    ServiceAgent,
    Salesperson,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Manager => "manager",
            Role::Cashier => "cashier",
            Role::Marketer => "marketer",
            Role::ServiceAgent => "service_agent",
            Role::Salesperson => "salesperson",
        }
    }
    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "owner" => Role::Owner,
            "manager" => Role::Manager,
            "cashier" => Role::Cashier,
            "marketer" => Role::Marketer,
            "service_agent" => Role::ServiceAgent,
            "salesperson" => Role::Salesperson,
            _ => return None,
        })
    }
}

/// A staff account. The password is kept only as an argon2id PHC string.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Staff {
    pub tenant_id: TenantId,
    pub id: StaffId,
    pub username: String,
    pub display_name: String,
    pub password_hash: String,
    pub role: Role,
    /// The store this person works at; `None` for chain-wide staff.
    pub store_id: Option<StoreId>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
}

/// Validates a login name: 2–32 of letters, digits, `.`, `_`, `-`.
pub fn valid_username(s: &str) -> bool {
    (2..=32).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Validates a tenant or store code: 2–32 of lower-case letters, digits, `-`.
pub fn valid_code(s: &str) -> bool {
    (2..=32).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}
