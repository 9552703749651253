//! Logins, sessions and the first owner.
//!
//! A token is `pt_<tenant id>_<32 random bytes, base64url>`; only its SHA-256 is stored,
//! so a copy of the database does not let anyone log in. The tenant id inside the token
//! lets every session look-up be scoped by tenant like every other query.

use crate::{Actor, App, AppError, new_uuid, now};
use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash};
use base64::Engine;
use chrono::{DateTime, Utc};
use patron_domain::ids::{StaffId, StoreId, TenantId};
use patron_domain::org::{self, Role, Staff, Store, Tenant};
use patron_domain::{FieldError, ValidationErrors};
use patron_store::Session;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// Hashes a password or PIN with argon2id and a random salt (PHC string).
pub fn hash_secret(secret: &str) -> Result<String, AppError> {
    Argon2::default()
        .hash_password(secret.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| AppError::Internal(format!("password hashing failed: {e}")))
}

/// Checks a password or PIN against its PHC string.
pub fn verify_secret(secret: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| {
        Argon2::default()
            .verify_password(secret.as_bytes(), &h)
            .is_ok()
    })
}

pub(crate) fn token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn new_token(tenant: TenantId) -> String {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    format!(
        "pt_{}_{}",
        tenant.0.simple(),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

fn tenant_of_token(token: &str) -> Option<TenantId> {
    let rest = token.strip_prefix("pt_")?;
    let (tenant, _) = rest.split_once('_')?;
    uuid::Uuid::parse_str(tenant).ok().map(TenantId)
}

/// The CSRF token that goes with a session token (the double-submit value browsers send
/// back in `X-CSRF-Token`). Derived from the secret session token, so a page on another
/// origin can neither read nor forge it, and nothing more is stored.
pub fn csrf_token(session_token: &str) -> String {
    let digest = Sha256::digest(format!("patron-csrf|{session_token}").as_bytes());
    digest.iter().take(24).map(|b| format!("{b:02x}")).collect()
}

/// A successful login.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LoginOutcome {
    /// Send as `Authorization: Bearer <token>`; shown once.
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub staff_id: StaffId,
    pub display_name: String,
    pub role: Role,
    pub tenant_id: TenantId,
    /// The store this session works at.
    pub store_id: Option<StoreId>,
    /// Browsers using the session cookie send this in `X-CSRF-Token` with every
    /// POST/PUT/PATCH/DELETE (it is also set as the readable cookie `patron_csrf`).
    pub csrf_token: String,
}

/// What `patron init` creates.
#[derive(Debug, Clone)]
pub struct InitRequest {
    pub tenant_code: String,
    pub tenant_name: String,
    pub store_code: String,
    pub store_name: String,
    pub username: String,
    pub display_name: String,
    pub password: String,
}

/// The first tenant, its first store and its owner.
#[derive(Debug, Clone)]
pub struct InitOutcome {
    pub tenant: Tenant,
    pub store: Store,
    pub owner: Staff,
}

impl App {
    /// Creates a tenant with one store and its owner account.
    pub async fn init_tenant(&self, req: InitRequest) -> Result<InitOutcome, AppError> {
        let mut errors = ValidationErrors::default();
        if !org::valid_code(&req.tenant_code) {
            errors.push(FieldError::new(
                "tenant",
                "invalid_code",
                "2–32 lower-case letters, digits or '-'",
            ));
        }
        if !org::valid_code(&req.store_code) {
            errors.push(FieldError::new(
                "store_code",
                "invalid_code",
                "2–32 lower-case letters, digits or '-'",
            ));
        }
        if !org::valid_username(&req.username) {
            errors.push(FieldError::new(
                "username",
                "invalid_username",
                "2–32 letters, digits, '.', '_' or '-'",
            ));
        }
        if req.password.chars().count() < 8 {
            errors.push(FieldError::new(
                "password",
                "too_short",
                "at least 8 characters",
            ));
        }
        for (field, v) in [
            ("tenant_name", &req.tenant_name),
            ("store_name", &req.store_name),
        ] {
            if v.trim().is_empty() || v.chars().count() > 100 {
                errors.push(FieldError::new(field, "required", "1–100 characters"));
            }
        }
        errors.into_result(())?;
        if self
            .storage
            .tenant_by_code(&req.tenant_code)
            .await?
            .is_some()
        {
            return Err(AppError::Conflict {
                code: "tenant_exists",
                field: Some("tenant"),
                message: format!("a tenant with code {} already exists", req.tenant_code),
                existing: None,
            });
        }
        let at = now();
        let tenant = Tenant {
            id: TenantId(new_uuid()),
            code: req.tenant_code,
            name: req.tenant_name.trim().into(),
            created_at: at,
        };
        let store = Store {
            tenant_id: tenant.id,
            id: StoreId(new_uuid()),
            code: req.store_code,
            name: req.store_name.trim().into(),
            address: None,
            phone: None,
            created_at: at,
        };
        let owner = Staff {
            tenant_id: tenant.id,
            id: StaffId(new_uuid()),
            username: req.username,
            display_name: req.display_name,
            password_hash: hash_secret(&req.password)?,
            role: Role::Owner,
            store_id: None,
            active: true,
            created_at: at,
        };
        self.storage.create_tenant(&tenant).await?;
        self.storage.create_store(&store).await?;
        self.storage.create_staff(&owner).await?;
        Ok(InitOutcome {
            tenant,
            store,
            owner,
        })
    }

    /// Logs in with tenant code, username and password. The same error for every
    /// failure, so that a caller cannot probe which tenants or usernames exist.
    /// `store_code` names the store a chain-wide staff member is working at (needed for
    /// money at the till); staff assigned to a store always work there.
    pub async fn login(
        &self,
        tenant_code: &str,
        username: &str,
        password: &str,
        store_code: Option<&str>,
    ) -> Result<LoginOutcome, AppError> {
        self.login_from(tenant_code, username, password, store_code, None)
            .await
    }

    /// [`App::login`] from a client address. Failed attempts are audited; too many for
    /// one username (see [`App::lockout`]) or from one address lock further attempts
    /// for a while (`TooManyAttempts`), whatever the password.
    pub async fn login_from(
        &self,
        tenant_code: &str,
        username: &str,
        password: &str,
        store_code: Option<&str>,
        ip: Option<std::net::IpAddr>,
    ) -> Result<LoginOutcome, AppError> {
        self.ip_locked(ip)?;
        let username = username.trim();
        let entry = |tenant: TenantId, action: &str, staff: Option<&Staff>, summary: String| {
            patron_store::audit::AuditEntry {
                tenant_id: tenant,
                id: new_uuid(),
                at: now(),
                action: action.into(),
                staff_id: staff.map(|s| s.id),
                approver_id: None,
                store_id: staff.and_then(|s| s.store_id),
                entity_kind: "login".into(),
                entity_id: Some(username.to_string()),
                customer_id: None,
                card_id: None,
                summary,
                before: None,
                after: None,
                ip: ip.map(|i| i.to_string()),
            }
        };
        let tenant = self.storage.tenant_by_code(tenant_code.trim()).await?;
        let staff = match &tenant {
            Some(t) => {
                let staff = self.storage.staff_by_username(t.id, username).await?;
                if let Err(locked) = self.check_lockout(t.id, username, "logins").await {
                    let e = entry(
                        t.id,
                        "login.locked",
                        staff.as_ref(),
                        format!("登录被锁定 / login refused while locked: {username}"),
                    );
                    self.storage.append_audit(&e).await?;
                    return Err(locked);
                }
                staff
            }
            None => None,
        };
        // Hash even when the account is missing so timing does not reveal it.
        let phc = staff
            .as_ref()
            .map(|s| s.password_hash.clone())
            .unwrap_or_else(|| DUMMY_HASH.to_string());
        let secret = password.to_string();
        let ok = tokio::task::spawn_blocking(move || verify_secret(&secret, &phc))
            .await
            .unwrap_or(false);
        let staff = match staff {
            Some(s) if ok && s.active => s,
            other => {
                if let Some(ip) = ip {
                    self.ip_throttle.failed(ip, now());
                }
                if let Some(t) = &tenant {
                    let why = match &other {
                        None => "unknown username",
                        Some(s) if !s.active => "inactive account",
                        Some(_) => "wrong password",
                    };
                    let e = entry(
                        t.id,
                        "login.failed",
                        other.as_ref(),
                        format!("登录失败 / login failed for {username}: {why}"),
                    );
                    self.storage.append_audit(&e).await?;
                }
                return Err(AppError::BadCredentials);
            }
        };
        let store_id = match store_code.map(str::trim).filter(|c| !c.is_empty()) {
            None => staff.store_id,
            Some(code) => {
                let stores = self.storage.list_stores(staff.tenant_id).await?;
                let store = stores.iter().find(|s| s.code == code).ok_or_else(|| {
                    ValidationErrors::single(
                        "store",
                        "unknown_store",
                        format!("no store with code {code:?}"),
                    )
                })?;
                if staff.store_id.is_some_and(|own| own != store.id) {
                    return Err(AppError::Forbidden(
                        "you are assigned to another store".into(),
                    ));
                }
                Some(store.id)
            }
        };
        let token = new_token(staff.tenant_id);
        let created = now();
        let session = Session {
            tenant_id: staff.tenant_id,
            token_hash: token_hash(&token),
            staff_id: staff.id,
            kind: "session".into(),
            created_at: created,
            expires_at: created + self.session_idle.min(self.session_ttl),
            store_id,
        };
        let e = patron_store::audit::AuditEntry {
            store_id,
            ..entry(
                staff.tenant_id,
                "login",
                Some(&staff),
                format!("登录 / logged in: {username}"),
            )
        };
        self.storage.create_session_audited(&session, &e).await?;
        Ok(LoginOutcome {
            csrf_token: csrf_token(&token),
            token,
            expires_at: session.expires_at,
            staff_id: staff.id,
            display_name: staff.display_name,
            role: staff.role,
            tenant_id: staff.tenant_id,
            store_id,
        })
    }

    /// Resolves a bearer token (a login session or an API token) to the acting staff
    /// member. Sessions end after [`App::session_idle`] without use and at the latest
    /// [`App::session_ttl`] after the login; use extends them (at most one write a
    /// minute per session).
    pub async fn authenticate(&self, token: &str) -> Result<Actor, AppError> {
        if crate::staff::tenant_of_api_token(token).is_some() {
            return self.authenticate_api_token(token).await;
        }
        let tenant = tenant_of_token(token).ok_or(AppError::Unauthenticated)?;
        let hash = token_hash(token);
        let session = self
            .storage
            .session(tenant, &hash)
            .await?
            .ok_or(AppError::Unauthenticated)?;
        let at = now();
        if session.expires_at <= at {
            return Err(AppError::Unauthenticated);
        }
        let staff = self
            .storage
            .staff(tenant, session.staff_id)
            .await?
            .ok_or(AppError::Unauthenticated)?;
        if !staff.active {
            return Err(AppError::Unauthenticated);
        }
        let slid = (at + self.session_idle).min(session.created_at + self.session_ttl);
        if slid - session.expires_at > chrono::Duration::seconds(60) {
            self.storage.extend_session(tenant, &hash, slid).await?;
        }
        Ok(Actor {
            tenant_id: tenant,
            staff_id: staff.id,
            role: staff.role,
            store_id: staff.store_id.or(session.store_id),
            display_name: staff.display_name,
            scope: None,
        })
    }

    /// Ends the session of this token.
    pub async fn logout(&self, token: &str) -> Result<(), AppError> {
        let tenant = tenant_of_token(token).ok_or(AppError::Unauthenticated)?;
        self.storage
            .delete_session(tenant, &token_hash(token))
            .await?;
        Ok(())
    }

    /// True when no staff account exists yet: `serve` then explains how to create one.
    pub async fn needs_init(&self) -> Result<bool, AppError> {
        Ok(self.storage.count_all_staff().await? == 0)
    }
}

/// A valid argon2id hash of a random string, verified against when the user is unknown.
pub(crate) const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$2Wy0cz8pVwz4PBlTxlkPfyP7p3w2iyJZQxS1G1EX3sc";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_hash_and_verify() {
        let h = hash_secret("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_secret("correct horse", &h));
        assert!(!verify_secret("wrong", &h));
        assert!(!verify_secret("x", "not a hash"));
    }

    #[test]
    fn tokens_carry_their_tenant() {
        let t = TenantId(new_uuid());
        let token = new_token(t);
        assert_eq!(tenant_of_token(&token), Some(t));
        assert_eq!(tenant_of_token("garbage"), None);
        assert_ne!(token_hash(&token), token);
    }
}
