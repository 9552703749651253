//! Staff, roles and permissions as use cases: the permission check every use case starts
//! with ([`Actor::require`]), personal-data masking, manager approval at the till, staff
//! accounts and API tokens.
//!
//! The matrix itself is `patron_domain::permissions::allows`. An API token acts as the
//! staff member who created it, with only the permissions both its scope and that
//! person's current role allow; a deactivated creator stops their tokens.

use crate::checkout::Approval;
use crate::{Actor, App, AppError, new_uuid, now};
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use patron_domain::customer::Customer;
use patron_domain::ids::{StaffId, StoreId, TenantId};
use patron_domain::org::{self, Role, Staff};
use patron_domain::permissions::{
    self, LockoutPolicy, Permission, PermissionSet, StaffLimits, allows,
};
use patron_domain::phone::Phone;
use patron_domain::{FieldError, ValidationErrors};
use patron_store::audit::{ApiTokenRecord, AuditEntry, StaffRecord};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use utoipa::ToSchema;

impl Actor {
    /// Whether the actor may do `p`: the role allows it and, for an API token, so does
    /// the token's scope.
    pub fn may(&self, p: Permission) -> bool {
        allows(self.role, p) && self.scope.is_none_or(|s| s.contains(p))
    }

    /// The check every use case starts with: 403 `forbidden`, naming the permission.
    pub fn require(&self, p: Permission) -> Result<(), AppError> {
        if self.may(p) {
            Ok(())
        } else if allows(self.role, p) {
            Err(AppError::Forbidden(format!(
                "this API token's scope does not include the permission {p}"
            )))
        } else {
            Err(AppError::Forbidden(format!(
                "a {} may not do this (permission {p})",
                self.role.as_str()
            )))
        }
    }

    /// Refuses an action at another store than the one the actor works at (the owner
    /// acts at any store).
    pub fn require_store(&self, store: StoreId) -> Result<(), AppError> {
        if self.role != Role::Owner && self.store_id.is_some_and(|s| s != store) {
            return Err(AppError::Forbidden(
                "you work at another store: log in at that store".into(),
            ));
        }
        Ok(())
    }

    /// Everything the actor may do.
    pub fn permissions(&self) -> Vec<Permission> {
        Permission::ALL
            .into_iter()
            .filter(|p| self.may(*p))
            .collect()
    }
}

/// A customer as `actor` may see it: without [`Permission::ViewPersonalData`] the phone,
/// work phone and e-mail are masked (the ID number is only ever stored masked).
pub fn masked_for(actor: &Actor, mut c: Customer) -> Customer {
    if actor.may(Permission::ViewPersonalData) {
        return c;
    }
    let p = &mut c.profile;
    p.phone = p.phone.take().map(|x| Phone::from_stored(x.masked()));
    p.work_phone = p
        .work_phone
        .take()
        .map(|x| permissions::mask_phone_text(&x));
    p.email = p.email.take().map(|x| permissions::mask_email(&x));
    c
}

/// Failed logins per client address, in memory (per process): a guesser spreading over
/// usernames is slowed down without a database write per attempt from an unknown tenant.
#[derive(Default)]
pub struct IpThrottle {
    failures: Mutex<HashMap<IpAddr, Vec<DateTime<Utc>>>>,
}

impl IpThrottle {
    /// 20 failures in 15 minutes from one address.
    pub fn policy() -> LockoutPolicy {
        LockoutPolicy {
            max_failures: 20,
            window: Duration::minutes(15),
        }
    }

    pub fn locked_until(&self, ip: IpAddr, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&ip)
            .and_then(|f| Self::policy().locked_until(f, at))
    }

    pub fn failed(&self, ip: IpAddr, at: DateTime<Utc>) {
        let window = Self::policy().window;
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let list = map.entry(ip).or_default();
        list.retain(|t| *t > at - window);
        list.push(at);
        // Bounded memory: forget addresses with nothing recent.
        if map.len() > 10_000 {
            map.retain(|_, l| l.iter().any(|t| *t > at - window));
        }
    }
}

fn too_many(until: DateTime<Utc>, at: DateTime<Utc>, what: &str) -> AppError {
    let secs = (until - at).num_seconds().max(1);
    AppError::TooManyAttempts {
        message: format!(
            "too many failed {what}: try again in {} minute(s)",
            (secs + 59) / 60
        ),
        retry_after_secs: secs,
    }
}

/// Deserialises a field that may be absent (`None`), `null` (`Some(None)`) or a value.
fn double_option<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A staff account as the API shows it (never the password hash).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StaffView {
    pub id: StaffId,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    /// The store this person works at; `null` for chain-wide staff.
    pub store_id: Option<StoreId>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    /// The limits in force.
    pub limits: StaffLimits,
    /// Whether `limits` are this person's own (else the role's defaults).
    pub own_limits: bool,
    pub has_approval_pin: bool,
    /// What the role allows.
    pub permissions: Vec<Permission>,
}

impl From<&StaffRecord> for StaffView {
    fn from(r: &StaffRecord) -> Self {
        let s = &r.staff;
        StaffView {
            id: s.id,
            username: s.username.clone(),
            display_name: s.display_name.clone(),
            role: s.role,
            store_id: s.store_id,
            active: s.active,
            created_at: s.created_at,
            limits: r.effective_limits(),
            own_limits: r.limits.is_some(),
            has_approval_pin: r.approval_pin_hash.is_some(),
            permissions: PermissionSet::of_role(s.role).to_vec(),
        }
    }
}

/// A new staff account.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewStaff {
    /// 2–32 letters, digits, '.', '_' or '-'.
    pub username: String,
    pub display_name: String,
    /// At least 8 characters.
    pub password: String,
    pub role: Role,
    /// The store this person works at; omit for chain-wide staff.
    pub store_id: Option<StoreId>,
    /// Own limits; omit for the role's defaults.
    pub limits: Option<StaffLimits>,
    /// 4–12 digits a manager types to approve at the till (instead of the password).
    pub approval_pin: Option<String>,
}

/// Changes to a staff account; absent fields stay, `null` clears (store: chain-wide;
/// limits: the role's defaults; approval_pin: none).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StaffPatch {
    pub display_name: Option<String>,
    pub role: Option<Role>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, format = Uuid)]
    pub store_id: Option<Option<StoreId>>,
    pub active: Option<bool>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<StaffLimits>)]
    pub limits: Option<Option<StaffLimits>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub approval_pin: Option<Option<String>>,
}

/// A new API token.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiToken {
    /// What it is for, e.g. "POS till 1".
    pub name: String,
    /// The permissions it may use (at most those of the creator's role).
    pub scope: Vec<Permission>,
    /// The store it works at (default: the creator's).
    pub store_id: Option<StoreId>,
    /// Days until it expires (1–3650); omit for a token that does not expire.
    pub expires_in_days: Option<u32>,
}

/// An API token without its secret.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ApiTokenView {
    #[schema(value_type = String, format = Uuid)]
    pub id: uuid::Uuid,
    pub name: String,
    /// Who created it; it acts as this staff member.
    pub staff_id: StaffId,
    pub store_id: Option<StoreId>,
    pub scope: Vec<Permission>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoked_by: Option<StaffId>,
    /// Neither revoked nor expired.
    pub active: bool,
}

impl From<&ApiTokenRecord> for ApiTokenView {
    fn from(t: &ApiTokenRecord) -> Self {
        ApiTokenView {
            id: t.id,
            name: t.name.clone(),
            staff_id: t.staff_id,
            store_id: t.store_id,
            scope: t.scope.clone(),
            created_at: t.created_at,
            expires_at: t.expires_at,
            revoked_at: t.revoked_at,
            revoked_by: t.revoked_by,
            active: t.revoked_at.is_none() && t.expires_at.is_none_or(|e| e > now()),
        }
    }
}

/// A token just created: the secret is shown this once.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreatedApiToken {
    /// Send as `Authorization: Bearer <token>`. Only its hash is stored: copy it now.
    pub token: String,
    pub api_token: ApiTokenView,
}

const API_TOKEN_PREFIX: &str = "pk_";

fn new_api_token(tenant: TenantId) -> String {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    format!(
        "{API_TOKEN_PREFIX}{}_{}",
        tenant.0.simple(),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// The tenant inside an API token, if it is one.
pub(crate) fn tenant_of_api_token(token: &str) -> Option<TenantId> {
    let rest = token.strip_prefix(API_TOKEN_PREFIX)?;
    let (tenant, _) = rest.split_once('_')?;
    uuid::Uuid::parse_str(tenant).ok().map(TenantId)
}

fn check_password(errors: &mut ValidationErrors, field: &str, password: &str) {
    if password.chars().count() < 8 || password.len() > 200 {
        errors.push(FieldError::new(field, "too_short", "8–200 characters"));
    }
}

fn check_display_name(errors: &mut ValidationErrors, name: &str) {
    if name.trim().is_empty() || name.chars().count() > 100 {
        errors.push(FieldError::new(
            "display_name",
            "required",
            "1–100 characters",
        ));
    }
}

fn check_pin(errors: &mut ValidationErrors, pin: &str) {
    if !(4..=12).contains(&pin.len()) || !pin.chars().all(|c| c.is_ascii_digit()) {
        errors.push(FieldError::new(
            "approval_pin",
            "invalid_pin",
            "4–12 digits",
        ));
    }
}

fn check_limits(errors: &mut ValidationErrors, l: &StaffLimits) {
    if l.max_discount_bp > 10_000 {
        errors.push(FieldError::new(
            "limits.max_discount_bp",
            "out_of_range",
            "0–10000 basis points",
        ));
    }
    for (field, v) in [
        ("limits.max_adjustment_per_txn", l.max_adjustment_per_txn),
        ("limits.max_adjustment_per_day", l.max_adjustment_per_day),
    ] {
        if v.is_some_and(|v| v < 0) {
            errors.push(FieldError::new(
                field,
                "out_of_range",
                "zero or more; null for no limit",
            ));
        }
    }
}

async fn hash_blocking(secret: String) -> Result<String, AppError> {
    tokio::task::spawn_blocking(move || crate::auth::hash_secret(&secret))
        .await
        .map_err(|e| AppError::Internal(format!("hashing task failed: {e}")))?
}

impl App {
    /// Refuses a store id that is not one of the actor's tenant's stores.
    async fn check_store(
        &self,
        actor: &Actor,
        store: Option<StoreId>,
        field: &str,
    ) -> Result<(), AppError> {
        if let Some(s) = store
            && !self
                .storage
                .list_stores(actor.tenant_id)
                .await?
                .iter()
                .any(|x| x.id == s)
        {
            return Err(ValidationErrors::single(
                field,
                "unknown_store",
                format!("no store {}", s.0),
            )
            .into());
        }
        Ok(())
    }

    /// The tenant's staff accounts.
    pub async fn list_staff(&self, actor: &Actor) -> Result<Vec<StaffView>, AppError> {
        actor.require(Permission::ViewStaff)?;
        let all = self.storage.staff_records(actor.tenant_id).await?;
        Ok(all.iter().map(StaffView::from).collect())
    }

    /// One staff account.
    pub async fn staff_member(&self, actor: &Actor, id: StaffId) -> Result<StaffView, AppError> {
        actor.require(Permission::ViewStaff)?;
        let r = self
            .storage
            .staff_record(actor.tenant_id, id)
            .await?
            .ok_or(AppError::NotFound { entity: "staff" })?;
        Ok(StaffView::from(&r))
    }

    /// Creates a staff account (audited with the account's new state).
    pub async fn create_staff(&self, actor: &Actor, req: &NewStaff) -> Result<StaffView, AppError> {
        actor.require(Permission::ManageStaff)?;
        let mut errors = ValidationErrors::default();
        if !org::valid_username(req.username.trim()) {
            errors.push(FieldError::new(
                "username",
                "invalid_username",
                "2–32 letters, digits, '.', '_' or '-'",
            ));
        }
        check_display_name(&mut errors, &req.display_name);
        check_password(&mut errors, "password", &req.password);
        if let Some(pin) = &req.approval_pin {
            check_pin(&mut errors, pin);
        }
        if let Some(l) = &req.limits {
            check_limits(&mut errors, l);
        }
        errors.into_result(())?;
        self.check_store(actor, req.store_id, "store_id").await?;
        let record = StaffRecord {
            staff: Staff {
                tenant_id: actor.tenant_id,
                id: StaffId(new_uuid()),
                username: req.username.trim().into(),
                display_name: req.display_name.trim().into(),
                password_hash: hash_blocking(req.password.clone()).await?,
                role: req.role,
                store_id: req.store_id,
                active: true,
                created_at: now(),
            },
            limits: req.limits,
            approval_pin_hash: match &req.approval_pin {
                Some(p) => Some(hash_blocking(p.clone()).await?),
                None => None,
            },
        };
        let view = StaffView::from(&record);
        let entry = AuditEntry {
            after: Some(serde_json::to_value(&view).expect("view serialises")),
            ..self.audit_entry(
                actor,
                "staff.create",
                "staff",
                Some(record.staff.id.0.to_string()),
                format!(
                    "新员工 / staff created: {} ({})",
                    record.staff.username,
                    record.staff.role.as_str()
                ),
            )
        };
        self.storage
            .create_staff_audited(&record, &entry)
            .await
            .map_err(|e| match AppError::from(e) {
                AppError::Conflict {
                    field: Some("username"),
                    ..
                } => AppError::Conflict {
                    code: "username_in_use",
                    field: Some("username"),
                    message: format!("the username {} is taken", record.staff.username),
                    existing: None,
                },
                other => other,
            })?;
        Ok(view)
    }

    /// Changes role, store, active, limits, display name or approval PIN. Deactivating
    /// ends the account's sessions; the last active owner cannot be demoted or deactivated.
    pub async fn update_staff(
        &self,
        actor: &Actor,
        id: StaffId,
        patch: &StaffPatch,
    ) -> Result<StaffView, AppError> {
        actor.require(Permission::ManageStaff)?;
        let current = self
            .storage
            .staff_record(actor.tenant_id, id)
            .await?
            .ok_or(AppError::NotFound { entity: "staff" })?;
        let mut errors = ValidationErrors::default();
        if let Some(n) = &patch.display_name {
            check_display_name(&mut errors, n);
        }
        if let Some(Some(pin)) = &patch.approval_pin {
            check_pin(&mut errors, pin);
        }
        if let Some(Some(l)) = &patch.limits {
            check_limits(&mut errors, l);
        }
        errors.into_result(())?;
        if let Some(s) = patch.store_id {
            self.check_store(actor, s, "store_id").await?;
        }
        let mut next = current.clone();
        if let Some(n) = &patch.display_name {
            next.staff.display_name = n.trim().into();
        }
        if let Some(r) = patch.role {
            next.staff.role = r;
        }
        if let Some(s) = patch.store_id {
            next.staff.store_id = s;
        }
        if let Some(a) = patch.active {
            next.staff.active = a;
        }
        if let Some(l) = patch.limits {
            next.limits = l;
        }
        if let Some(pin) = &patch.approval_pin {
            next.approval_pin_hash = match pin {
                Some(p) => Some(hash_blocking(p.clone()).await?),
                None => None,
            };
        }
        let was_owner = current.staff.role == Role::Owner && current.staff.active;
        let is_owner = next.staff.role == Role::Owner && next.staff.active;
        if was_owner && !is_owner {
            let owners = self
                .storage
                .staff_records(actor.tenant_id)
                .await?
                .iter()
                .filter(|r| r.staff.role == Role::Owner && r.staff.active)
                .count();
            if owners <= 1 {
                return Err(AppError::Conflict {
                    code: "last_owner",
                    field: Some("role"),
                    message: "the tenant's last active owner cannot be demoted or deactivated"
                        .into(),
                    existing: None,
                });
            }
        }
        let before = StaffView::from(&current);
        let after = StaffView::from(&next);
        if next == current {
            return Ok(after);
        }
        // Losing access or moving store ends the sessions, so nothing keeps the old rights.
        let end_sessions = !next.staff.active
            || next.staff.role != current.staff.role
            || next.staff.store_id != current.staff.store_id;
        let entry = AuditEntry {
            before: Some(serde_json::to_value(&before).expect("view serialises")),
            after: Some(serde_json::to_value(&after).expect("view serialises")),
            ..self.audit_entry(
                actor,
                "staff.update",
                "staff",
                Some(id.0.to_string()),
                format!("员工变更 / staff changed: {}", current.staff.username),
            )
        };
        self.storage
            .update_staff_audited(&next, end_sessions, &entry)
            .await?;
        Ok(after)
    }

    /// Sets a new password for a staff member and ends their sessions.
    pub async fn reset_staff_password(
        &self,
        actor: &Actor,
        id: StaffId,
        password: &str,
    ) -> Result<(), AppError> {
        actor.require(Permission::ManageStaff)?;
        let mut errors = ValidationErrors::default();
        check_password(&mut errors, "password", password);
        errors.into_result(())?;
        let mut next = self
            .storage
            .staff_record(actor.tenant_id, id)
            .await?
            .ok_or(AppError::NotFound { entity: "staff" })?;
        next.staff.password_hash = hash_blocking(password.to_string()).await?;
        let entry = AuditEntry {
            after: Some(serde_json::json!({"sessions_ended": true})),
            ..self.audit_entry(
                actor,
                "staff.password_reset",
                "staff",
                Some(id.0.to_string()),
                format!("重置密码 / password reset: {}", next.staff.username),
            )
        };
        self.storage
            .update_staff_audited(&next, true, &entry)
            .await?;
        Ok(())
    }

    /// Creates an API token acting as the actor, limited to `scope` (which must be within
    /// the actor's own permissions). API tokens cannot create tokens.
    pub async fn create_api_token(
        &self,
        actor: &Actor,
        req: &NewApiToken,
    ) -> Result<CreatedApiToken, AppError> {
        actor.require(Permission::ManageApiTokens)?;
        if actor.scope.is_some() {
            return Err(AppError::Forbidden(
                "an API token cannot create API tokens: log in".into(),
            ));
        }
        let mut errors = ValidationErrors::default();
        if req.name.trim().is_empty() || req.name.chars().count() > 100 {
            errors.push(FieldError::new("name", "required", "1–100 characters"));
        }
        if req.scope.is_empty() {
            errors.push(FieldError::new(
                "scope",
                "required",
                "list the permissions the token may use",
            ));
        }
        if req
            .expires_in_days
            .is_some_and(|d| !(1..=3650).contains(&d))
        {
            errors.push(FieldError::new(
                "expires_in_days",
                "out_of_range",
                "1–3650 days",
            ));
        }
        errors.into_result(())?;
        let beyond: Vec<&str> = req
            .scope
            .iter()
            .filter(|p| !actor.may(**p))
            .map(|p| p.as_str())
            .collect();
        if !beyond.is_empty() {
            return Err(AppError::Forbidden(format!(
                "you cannot grant what your role does not allow: {}",
                beyond.join(", ")
            )));
        }
        self.check_store(actor, req.store_id, "store_id").await?;
        let store_id = match req.store_id {
            Some(s) => {
                actor.require_store(s)?;
                Some(s)
            }
            None => actor.store_id,
        };
        let token = new_api_token(actor.tenant_id);
        let at = now();
        let mut scope: Vec<Permission> = req.scope.clone();
        scope.sort();
        scope.dedup();
        let record = ApiTokenRecord {
            tenant_id: actor.tenant_id,
            id: new_uuid(),
            name: req.name.trim().into(),
            token_hash: crate::auth::token_hash(&token),
            staff_id: actor.staff_id,
            store_id,
            scope,
            created_at: at,
            expires_at: req
                .expires_in_days
                .map(|d| at + Duration::days(i64::from(d))),
            revoked_at: None,
            revoked_by: None,
        };
        let view = ApiTokenView::from(&record);
        let entry = AuditEntry {
            after: Some(serde_json::to_value(&view).expect("view serialises")),
            ..self.audit_entry(
                actor,
                "api_token.create",
                "api_token",
                Some(record.id.to_string()),
                format!("新建 API 令牌 / API token created: {}", record.name),
            )
        };
        self.storage.create_api_token(&record, &entry).await?;
        Ok(CreatedApiToken {
            token,
            api_token: view,
        })
    }

    /// API tokens without their secrets: all of them for the owner, else the actor's own.
    pub async fn api_tokens(&self, actor: &Actor) -> Result<Vec<ApiTokenView>, AppError> {
        actor.require(Permission::ManageApiTokens)?;
        let all = self.storage.api_tokens(actor.tenant_id).await?;
        Ok(all
            .iter()
            .filter(|t| actor.role == Role::Owner || t.staff_id == actor.staff_id)
            .map(ApiTokenView::from)
            .collect())
    }

    /// Revokes a token at once (the owner any, others their own).
    pub async fn revoke_api_token(
        &self,
        actor: &Actor,
        id: uuid::Uuid,
    ) -> Result<ApiTokenView, AppError> {
        actor.require(Permission::ManageApiTokens)?;
        let not_found = AppError::NotFound {
            entity: "API token",
        };
        let t = self
            .storage
            .api_token(actor.tenant_id, id)
            .await?
            .filter(|t| actor.role == Role::Owner || t.staff_id == actor.staff_id)
            .ok_or(not_found)?;
        let at = now();
        let entry = AuditEntry {
            before: Some(serde_json::to_value(ApiTokenView::from(&t)).expect("view serialises")),
            ..self.audit_entry(
                actor,
                "api_token.revoke",
                "api_token",
                Some(id.to_string()),
                format!("吊销 API 令牌 / API token revoked: {}", t.name),
            )
        };
        self.storage
            .revoke_api_token(actor.tenant_id, id, at, actor.staff_id, &entry)
            .await?;
        let t = self
            .storage
            .api_token(actor.tenant_id, id)
            .await?
            .ok_or(AppError::NotFound {
                entity: "API token",
            })?;
        Ok(ApiTokenView::from(&t))
    }

    /// Resolves an API token: the creator, with the token's scope and store.
    pub(crate) async fn authenticate_api_token(&self, token: &str) -> Result<Actor, AppError> {
        let tenant = tenant_of_api_token(token).ok_or(AppError::Unauthenticated)?;
        let t = self
            .storage
            .api_token_by_hash(tenant, &crate::auth::token_hash(token))
            .await?
            .ok_or(AppError::Unauthenticated)?;
        let at = now();
        if t.revoked_at.is_some() || t.expires_at.is_some_and(|e| e <= at) {
            return Err(AppError::Unauthenticated);
        }
        let staff = self
            .storage
            .staff(tenant, t.staff_id)
            .await?
            .filter(|s| s.active)
            .ok_or(AppError::Unauthenticated)?;
        Ok(Actor {
            tenant_id: tenant,
            staff_id: staff.id,
            role: staff.role,
            store_id: staff.store_id.or(t.store_id),
            display_name: staff.display_name,
            scope: Some(t.scope.iter().copied().collect()),
        })
    }

    /// Refuses while `username` is locked out by failed logins or approvals.
    pub(crate) async fn check_lockout(
        &self,
        tenant: TenantId,
        username: &str,
        what: &str,
    ) -> Result<(), AppError> {
        let at = now();
        let failures = self
            .storage
            .login_failures(tenant, username, at - self.lockout.window)
            .await?;
        match self.lockout.locked_until(&failures, at) {
            Some(until) => Err(too_many(until, at, what)),
            None => Ok(()),
        }
    }

    pub(crate) fn ip_locked(&self, ip: Option<IpAddr>) -> Result<(), AppError> {
        let at = now();
        if let Some(ip) = ip
            && let Some(until) = self.ip_throttle.locked_until(ip, at)
        {
            return Err(too_many(until, at, "logins from this address"));
        }
        Ok(())
    }

    /// Checks a manager's approval given at the till: their username and their password
    /// or approval PIN. Failures count towards the approver's login lockout and are
    /// audited. The approver must be an active owner or manager allowed `permission`,
    /// working at the actor's store (or chain-wide), and not the actor.
    async fn verify_approval(
        &self,
        actor: &Actor,
        a: &Approval,
        permission: Permission,
    ) -> Result<StaffRecord, AppError> {
        let username = a.username.trim().to_string();
        self.check_lockout(actor.tenant_id, &username, "approvals")
            .await?;
        let record = self
            .storage
            .staff_record_by_username(actor.tenant_id, &username)
            .await?;
        let hashes: Vec<String> = record
            .iter()
            .flat_map(|r| {
                std::iter::once(r.staff.password_hash.clone()).chain(r.approval_pin_hash.clone())
            })
            .collect();
        let secret = a.password.clone();
        // Hashing is slow on purpose: off the async threads.
        let ok = tokio::task::spawn_blocking(move || {
            if hashes.is_empty() {
                crate::auth::verify_secret(&secret, crate::auth::DUMMY_HASH);
                return false;
            }
            hashes
                .iter()
                .any(|h| crate::auth::verify_secret(&secret, h))
        })
        .await
        .unwrap_or(false);
        let Some(r) = record.filter(|_| ok) else {
            let entry = AuditEntry {
                entity_id: Some(username.clone()),
                ..self.audit_entry(
                    actor,
                    "approval.failed",
                    "login",
                    None,
                    format!("审批失败 / approval failed for {username}"),
                )
            };
            self.storage.append_audit(&entry).await?;
            return Err(AppError::ApprovalRequired(
                "the approval's username or password is wrong".into(),
            ));
        };
        let s = &r.staff;
        if !s.active
            || !matches!(s.role, Role::Owner | Role::Manager)
            || !allows(s.role, permission)
        {
            return Err(AppError::ApprovalRequired(
                "the approver must be a manager or the owner".into(),
            ));
        }
        if s.id == actor.staff_id {
            return Err(AppError::ApprovalRequired(
                "another manager must approve".into(),
            ));
        }
        if s.role != Role::Owner
            && let (Some(theirs), Some(here)) = (s.store_id, actor.store_id)
            && theirs != here
        {
            return Err(AppError::ApprovalRequired(
                "the approver works at another store".into(),
            ));
        }
        Ok(r)
    }

    /// Who approves a reversal or refund: the actor if a manager or the owner, else the
    /// manager whose credentials are given (see [`App::verify_approval`]).
    pub(crate) async fn reversal_approver(
        &self,
        actor: &Actor,
        approval: Option<&Approval>,
    ) -> Result<StaffId, AppError> {
        if matches!(actor.role, Role::Owner | Role::Manager) {
            return Ok(actor.staff_id);
        }
        let Some(a) = approval else {
            return Err(AppError::ApprovalRequired(
                "a manager's approval is needed: give their username and password or approval PIN"
                    .into(),
            ));
        };
        Ok(self
            .verify_approval(actor, a, Permission::ReverseOrRefund)
            .await?
            .staff
            .id)
    }

    /// Who approves an adjustment of `amount`: nobody (`None`) when it is within the
    /// actor's own limits for one adjustment and for the business day; else a manager
    /// whose own per-adjustment limit covers it. A self-approved adjustment under a daily
    /// limit also gets the change that checks that limit again inside its post (the
    /// check here reads before posting: two adjustments at once would both pass it).
    pub(crate) async fn adjustment_approver(
        &self,
        actor: &Actor,
        approval: Option<&Approval>,
        amount: i64,
    ) -> Result<(Option<StaffId>, Option<patron_store::ledger::LedgerChange>), AppError> {
        let own = self
            .storage
            .staff_record(actor.tenant_id, actor.staff_id)
            .await?
            .ok_or(AppError::Unauthenticated)?;
        let limits = own.effective_limits();
        let settings = self.settings(actor).await?;
        let (day_start, _) = settings.business_day_bounds(settings.business_date(now()));
        let done = self
            .storage
            .self_approved_adjustments(actor.tenant_id, actor.staff_id, day_start)
            .await?;
        if limits.allows_adjustment(amount, done) {
            let recheck = limits.max_adjustment_per_day.map(|limit| {
                patron_store::ledger::LedgerChange::AdjustmentWithinLimit {
                    staff: actor.staff_id,
                    since: day_start,
                    amount: amount.saturating_abs(),
                    limit: limit.max(0),
                }
            });
            return Ok((None, recheck));
        }
        let Some(a) = approval else {
            return Err(AppError::ApprovalRequired(format!(
                "this adjustment is beyond your limit ({} at a time, {} a day; {} done today): \
                 a manager's approval is needed",
                limit_text(limits.max_adjustment_per_txn),
                limit_text(limits.max_adjustment_per_day),
                done
            )));
        };
        let approver = self
            .verify_approval(actor, a, Permission::AdjustBalances)
            .await?;
        if !approver.effective_limits().allows_adjustment(amount, 0) {
            return Err(AppError::ApprovalRequired(
                "this adjustment is beyond the approver's own limit".into(),
            ));
        }
        Ok((Some(approver.staff.id), None))
    }
}

fn limit_text(l: Option<i64>) -> String {
    l.map_or_else(|| "no limit".into(), |v| v.to_string())
}
