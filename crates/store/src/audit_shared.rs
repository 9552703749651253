//! The audit log's, staff administration's and API tokens' SQL, shared by both backends
//! like `shared.rs` (see there for why a macro).

use crate::StoreError;
use crate::audit::{ApiTokenRecord, AuditRecord, StaffRecord};
use chrono::{DateTime, Utc};
use patron_domain::ids::{CardId, CustomerId, StaffId, StoreId, TenantId};
use patron_domain::org::{Role, Staff};
use patron_domain::permissions::{Permission, StaffLimits};
use uuid::Uuid;

pub(crate) const STAFF_COLS: &str = "tenant_id, id, username, display_name, password_hash, role, store_id, active, \
    created_at, limits_set, max_discount_bp, max_adjustment_per_txn, max_adjustment_per_day, approval_pin_hash";
pub(crate) const TOKEN_COLS: &str = "tenant_id, id, name, token_hash, staff_id, store_id, scope, created_at, \
    expires_at, revoked_at, revoked_by";
pub(crate) const AUDIT_INSERT: &str = "INSERT INTO audit_log (tenant_id, id, at, action, staff_id, approver_id, store_id, \
    entity_kind, entity_id, customer_id, card_id, summary, before_state, after_state, ip) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)";

fn corrupt(what: &str, v: &str) -> StoreError {
    StoreError::Corrupt(format!("{what}: {v:?}"))
}

fn json_or_corrupt(what: &str, v: Option<String>) -> Result<Option<serde_json::Value>, StoreError> {
    v.map(|s| serde_json::from_str(&s).map_err(|_| corrupt(what, &s)))
        .transpose()
}

#[derive(sqlx::FromRow)]
pub(crate) struct StaffRecordRow {
    tenant_id: Uuid,
    id: Uuid,
    username: String,
    display_name: String,
    password_hash: String,
    role: String,
    store_id: Option<Uuid>,
    active: bool,
    created_at: DateTime<Utc>,
    limits_set: bool,
    max_discount_bp: Option<i32>,
    max_adjustment_per_txn: Option<i64>,
    max_adjustment_per_day: Option<i64>,
    approval_pin_hash: Option<String>,
}

impl TryFrom<StaffRecordRow> for StaffRecord {
    type Error = StoreError;
    fn try_from(r: StaffRecordRow) -> Result<Self, StoreError> {
        let role = Role::parse(&r.role).ok_or_else(|| corrupt("staff.role", &r.role))?;
        let limits = r.limits_set.then(|| StaffLimits {
            max_discount_bp: r.max_discount_bp.unwrap_or(0).clamp(0, 10_000) as u32,
            max_adjustment_per_txn: r.max_adjustment_per_txn,
            max_adjustment_per_day: r.max_adjustment_per_day,
        });
        Ok(StaffRecord {
            staff: Staff {
                tenant_id: TenantId(r.tenant_id),
                id: StaffId(r.id),
                username: r.username,
                display_name: r.display_name,
                password_hash: r.password_hash,
                role,
                store_id: r.store_id.map(StoreId),
                active: r.active,
                created_at: r.created_at,
            },
            limits,
            approval_pin_hash: r.approval_pin_hash,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct TokenRow {
    tenant_id: Uuid,
    id: Uuid,
    name: String,
    token_hash: String,
    staff_id: Uuid,
    store_id: Option<Uuid>,
    scope: String,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
    revoked_by: Option<Uuid>,
}

impl TryFrom<TokenRow> for ApiTokenRecord {
    type Error = StoreError;
    fn try_from(r: TokenRow) -> Result<Self, StoreError> {
        let names: Vec<String> =
            serde_json::from_str(&r.scope).map_err(|_| corrupt("api_tokens.scope", &r.scope))?;
        let scope = names
            .iter()
            .map(|n| Permission::parse(n).ok_or_else(|| corrupt("api_tokens.scope", n)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ApiTokenRecord {
            tenant_id: TenantId(r.tenant_id),
            id: r.id,
            name: r.name,
            token_hash: r.token_hash,
            staff_id: StaffId(r.staff_id),
            store_id: r.store_id.map(StoreId),
            scope,
            created_at: r.created_at,
            expires_at: r.expires_at,
            revoked_at: r.revoked_at,
            revoked_by: r.revoked_by.map(StaffId),
        })
    }
}

pub(crate) fn scope_json(scope: &[Permission]) -> String {
    serde_json::to_string(&scope.iter().map(|p| p.as_str()).collect::<Vec<_>>())
        .expect("scope serialises")
}

#[derive(sqlx::FromRow)]
pub(crate) struct AuditRow {
    source: String,
    id: Uuid,
    at: DateTime<Utc>,
    action: String,
    staff_id: Option<Uuid>,
    approver_id: Option<Uuid>,
    store_id: Option<Uuid>,
    entity_kind: String,
    entity_id: Option<String>,
    customer_id: Option<Uuid>,
    card_id: Option<Uuid>,
    summary: String,
    reason: Option<String>,
    before_state: Option<String>,
    after_state: Option<String>,
    ip: Option<String>,
}

impl TryFrom<AuditRow> for AuditRecord {
    type Error = StoreError;
    fn try_from(r: AuditRow) -> Result<Self, StoreError> {
        Ok(AuditRecord {
            source: r.source,
            id: r.id,
            at: r.at,
            action: r.action,
            staff_id: r.staff_id.map(StaffId),
            approver_id: r.approver_id.map(StaffId),
            store_id: r.store_id.map(StoreId),
            entity_kind: r.entity_kind,
            entity_id: r.entity_id,
            customer_id: r.customer_id.map(CustomerId),
            card_id: r.card_id.map(CardId),
            summary: r.summary,
            reason: r.reason,
            before: json_or_corrupt("audit_log.before_state", r.before_state)?,
            after: json_or_corrupt("audit_log.after_state", r.after_state)?,
            ip: r.ip,
        })
    }
}

/// The amount of an adjustment from its transaction's details.
pub(crate) fn adjustment_amount(data: &str) -> i64 {
    serde_json::from_str::<serde_json::Value>(data)
        .ok()
        .and_then(|v| v.get("amount").and_then(|a| a.as_i64()))
        .unwrap_or(0)
}

/// The LIKE pattern and exact value of an action filter: `card` matches `card` and
/// `card.*`; `card.` only `card.*`.
pub(crate) fn action_match(f: &str) -> (String, String) {
    let esc = crate::shared::like_escape(f);
    if f.ends_with('.') {
        (format!("{esc}%"), f.to_string())
    } else {
        (format!("{esc}.%"), f.to_string())
    }
}

macro_rules! impl_audit_storage {
    ($ty:ty, $db:ty) => {
        use $crate::audit::{ApiTokenRecord, AuditEntry, AuditFilter, AuditRecord, AuditStore, StaffRecord};
        use $crate::audit_shared::{
            action_match, adjustment_amount, scope_json, AuditRow, StaffRecordRow, TokenRow, AUDIT_INSERT, STAFF_COLS, TOKEN_COLS,
        };
        use patron_domain::ids::StaffId;
        use patron_domain::page::PageRequest;
        use sqlx::QueryBuilder;

        async fn insert_audit<'c>(tx: &mut sqlx::Transaction<'c, $db>, e: &AuditEntry) -> Result<()> {
            sqlx::query(AUDIT_INSERT)
                .bind(e.tenant_id.0)
                .bind(e.id)
                .bind(e.at)
                .bind(&e.action)
                .bind(e.staff_id.map(|s| s.0))
                .bind(e.approver_id.map(|s| s.0))
                .bind(e.store_id.map(|s| s.0))
                .bind(&e.entity_kind)
                .bind(&e.entity_id)
                .bind(e.customer_id.map(|c| c.0))
                .bind(e.card_id.map(|c| c.0))
                .bind(&e.summary)
                .bind(e.before.as_ref().map(|v| v.to_string()))
                .bind(e.after.as_ref().map(|v| v.to_string()))
                .bind(&e.ip)
                .execute(&mut **tx)
                .await?;
            Ok(())
        }

        /// The filters of one branch of the search; `at`, `action` are that branch's
        /// column expressions.
        fn push_audit_filters(b: &mut QueryBuilder<$db>, f: &AuditFilter, at: &str, action: &str) {
            if let Some(s) = f.staff {
                b.push(" AND (staff_id = ").push_bind(s.0).push(" OR approver_id = ").push_bind(s.0).push(")");
            }
            if let Some(c) = f.customer {
                b.push(" AND customer_id = ").push_bind(c.0);
            }
            if let Some(c) = f.card {
                b.push(" AND card_id = ").push_bind(c.0);
            }
            if let Some(s) = f.store {
                b.push(" AND store_id = ").push_bind(s.0);
            }
            if let Some(t) = f.from {
                b.push(format!(" AND {at} >= ")).push_bind(t);
            }
            if let Some(t) = f.to {
                b.push(format!(" AND {at} < ")).push_bind(t);
            }
            if let Some(a) = f.action.as_deref().filter(|a| !a.is_empty()) {
                let (pattern, exact) = action_match(a);
                b.push(format!(" AND ({action} = "))
                    .push_bind(exact)
                    .push(format!(" OR {action} LIKE "))
                    .push_bind(pattern)
                    .push(" ESCAPE '\\')");
            }
        }

        #[async_trait::async_trait]
        impl AuditStore for $ty {
            async fn append_audit(&self, e: &AuditEntry) -> Result<()> {
                let mut tx = self.writer().begin().await?;
                insert_audit(&mut tx, e).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn search_audit(&self, tenant: TenantId, f: &AuditFilter, page: PageRequest) -> Result<Vec<AuditRecord>> {
                let mut b = QueryBuilder::<$db>::new(
                    "SELECT source, id, at, action, staff_id, approver_id, store_id, entity_kind, entity_id, customer_id, \
                     card_id, summary, reason, before_state, after_state, ip FROM (\
                     SELECT 'audit' AS source, id, at, action, staff_id, approver_id, store_id, entity_kind, entity_id, \
                     customer_id, card_id, summary, CAST(NULL AS TEXT) AS reason, before_state, after_state, ip \
                     FROM audit_log WHERE tenant_id = ",
                );
                b.push_bind(tenant.0);
                push_audit_filters(&mut b, f, "at", "action");
                b.push(
                    " UNION ALL SELECT 'ledger' AS source, id, created_at AS at, 'ledger.' || kind AS action, staff_id, \
                     approver_id, store_id, 'ledger_txn' AS entity_kind, CAST(NULL AS TEXT) AS entity_id, customer_id, card_id, \
                     memo AS summary, reason, CAST(NULL AS TEXT) AS before_state, data AS after_state, CAST(NULL AS TEXT) AS ip \
                     FROM ledger_txns WHERE tenant_id = ",
                );
                b.push_bind(tenant.0);
                push_audit_filters(&mut b, f, "created_at", "('ledger.' || kind)");
                b.push(") u ORDER BY at DESC, id DESC LIMIT ");
                b.push_bind(page.limit() + 1);
                b.push(" OFFSET ");
                b.push_bind(page.offset());
                let rows: Vec<AuditRow> = b.build_query_as().fetch_all(self.reader()).await?;
                rows.into_iter().map(TryInto::try_into).collect()
            }

            async fn login_failures(&self, tenant: TenantId, username: &str, since: DateTime<Utc>) -> Result<Vec<DateTime<Utc>>> {
                let last_ok: Option<DateTime<Utc>> = sqlx::query_scalar(
                    "SELECT MAX(at) FROM audit_log WHERE tenant_id = $1 AND entity_kind = 'login' AND entity_id = $2 \
                     AND action = 'login'",
                )
                .bind(tenant.0)
                .bind(username)
                .fetch_one(self.reader())
                .await?;
                let after = last_ok.map_or(since, |t| t.max(since));
                let rows: Vec<DateTime<Utc>> = sqlx::query_scalar(
                    "SELECT at FROM audit_log WHERE tenant_id = $1 AND entity_kind = 'login' AND entity_id = $2 \
                     AND action IN ('login.failed', 'approval.failed') AND at > $3 ORDER BY at DESC LIMIT 100",
                )
                .bind(tenant.0)
                .bind(username)
                .bind(after)
                .fetch_all(self.reader())
                .await?;
                Ok(rows)
            }

            async fn self_approved_adjustments(&self, tenant: TenantId, staff: StaffId, since: DateTime<Utc>) -> Result<i64> {
                let rows: Vec<String> = sqlx::query_scalar(
                    "SELECT data FROM ledger_txns WHERE tenant_id = $1 AND staff_id = $2 AND kind = 'adjustment' \
                     AND approver_id IS NULL AND created_at >= $3",
                )
                .bind(tenant.0)
                .bind(staff.0)
                .bind(since)
                .fetch_all(self.reader())
                .await?;
                Ok(rows.iter().map(|d| adjustment_amount(d).saturating_abs()).fold(0i64, i64::saturating_add))
            }

            async fn staff_records(&self, tenant: TenantId) -> Result<Vec<StaffRecord>> {
                let rows: Vec<StaffRecordRow> =
                    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {STAFF_COLS} FROM staff WHERE tenant_id = $1 ORDER BY username")))
                        .bind(tenant.0)
                        .fetch_all(self.reader())
                        .await?;
                rows.into_iter().map(TryInto::try_into).collect()
            }

            async fn staff_record(&self, tenant: TenantId, id: StaffId) -> Result<Option<StaffRecord>> {
                let row: Option<StaffRecordRow> =
                    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {STAFF_COLS} FROM staff WHERE tenant_id = $1 AND id = $2")))
                        .bind(tenant.0)
                        .bind(id.0)
                        .fetch_optional(self.reader())
                        .await?;
                row.map(TryInto::try_into).transpose()
            }

            async fn staff_record_by_username(&self, tenant: TenantId, username: &str) -> Result<Option<StaffRecord>> {
                let row: Option<StaffRecordRow> =
                    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {STAFF_COLS} FROM staff WHERE tenant_id = $1 AND username = $2")))
                        .bind(tenant.0)
                        .bind(username)
                        .fetch_optional(self.reader())
                        .await?;
                row.map(TryInto::try_into).transpose()
            }

            async fn create_staff_audited(&self, r: &StaffRecord, e: &AuditEntry) -> Result<()> {
                let s = &r.staff;
                let l = r.limits;
                let mut tx = self.writer().begin().await?;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "INSERT INTO staff ({STAFF_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
                )))
                .bind(s.tenant_id.0)
                .bind(s.id.0)
                .bind(&s.username)
                .bind(&s.display_name)
                .bind(&s.password_hash)
                .bind(s.role.as_str())
                .bind(s.store_id.map(|x| x.0))
                .bind(s.active)
                .bind(s.created_at)
                .bind(l.is_some())
                .bind(l.map(|l| l.max_discount_bp as i32))
                .bind(l.and_then(|l| l.max_adjustment_per_txn))
                .bind(l.and_then(|l| l.max_adjustment_per_day))
                .bind(&r.approval_pin_hash)
                .execute(&mut *tx)
                .await?;
                insert_audit(&mut tx, e).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn update_staff_audited(&self, r: &StaffRecord, end_sessions: bool, e: &AuditEntry) -> Result<()> {
                let s = &r.staff;
                let l = r.limits;
                let mut tx = self.writer().begin().await?;
                let done = sqlx::query(
                    "UPDATE staff SET display_name = $3, password_hash = $4, role = $5, store_id = $6, active = $7, \
                     limits_set = $8, max_discount_bp = $9, max_adjustment_per_txn = $10, max_adjustment_per_day = $11, \
                     approval_pin_hash = $12 WHERE tenant_id = $1 AND id = $2",
                )
                .bind(s.tenant_id.0)
                .bind(s.id.0)
                .bind(&s.display_name)
                .bind(&s.password_hash)
                .bind(s.role.as_str())
                .bind(s.store_id.map(|x| x.0))
                .bind(s.active)
                .bind(l.is_some())
                .bind(l.map(|l| l.max_discount_bp as i32))
                .bind(l.and_then(|l| l.max_adjustment_per_txn))
                .bind(l.and_then(|l| l.max_adjustment_per_day))
                .bind(&r.approval_pin_hash)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                if end_sessions {
                    sqlx::query("DELETE FROM sessions WHERE tenant_id = $1 AND staff_id = $2")
                        .bind(s.tenant_id.0)
                        .bind(s.id.0)
                        .execute(&mut *tx)
                        .await?;
                }
                insert_audit(&mut tx, e).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn create_session_audited(&self, s: &Session, e: &AuditEntry) -> Result<()> {
                let mut tx = self.writer().begin().await?;
                sqlx::query(
                    "INSERT INTO sessions (tenant_id, token_hash, staff_id, kind, created_at, expires_at, store_id) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(s.tenant_id.0)
                .bind(&s.token_hash)
                .bind(s.staff_id.0)
                .bind(&s.kind)
                .bind(s.created_at)
                .bind(s.expires_at)
                .bind(s.store_id.map(|x| x.0))
                .execute(&mut *tx)
                .await?;
                insert_audit(&mut tx, e).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn create_api_token(&self, t: &ApiTokenRecord, e: &AuditEntry) -> Result<()> {
                let mut tx = self.writer().begin().await?;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "INSERT INTO api_tokens ({TOKEN_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
                )))
                .bind(t.tenant_id.0)
                .bind(t.id)
                .bind(&t.name)
                .bind(&t.token_hash)
                .bind(t.staff_id.0)
                .bind(t.store_id.map(|x| x.0))
                .bind(scope_json(&t.scope))
                .bind(t.created_at)
                .bind(t.expires_at)
                .bind(t.revoked_at)
                .bind(t.revoked_by.map(|x| x.0))
                .execute(&mut *tx)
                .await?;
                insert_audit(&mut tx, e).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn api_tokens(&self, tenant: TenantId) -> Result<Vec<ApiTokenRecord>> {
                let rows: Vec<TokenRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT {TOKEN_COLS} FROM api_tokens WHERE tenant_id = $1 ORDER BY created_at DESC, id DESC"
                )))
                .bind(tenant.0)
                .fetch_all(self.reader())
                .await?;
                rows.into_iter().map(TryInto::try_into).collect()
            }

            async fn api_token(&self, tenant: TenantId, id: uuid::Uuid) -> Result<Option<ApiTokenRecord>> {
                let row: Option<TokenRow> =
                    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {TOKEN_COLS} FROM api_tokens WHERE tenant_id = $1 AND id = $2")))
                        .bind(tenant.0)
                        .bind(id)
                        .fetch_optional(self.reader())
                        .await?;
                row.map(TryInto::try_into).transpose()
            }

            async fn api_token_by_hash(&self, tenant: TenantId, token_hash: &str) -> Result<Option<ApiTokenRecord>> {
                let row: Option<TokenRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT {TOKEN_COLS} FROM api_tokens WHERE tenant_id = $1 AND token_hash = $2"
                )))
                .bind(tenant.0)
                .bind(token_hash)
                .fetch_optional(self.reader())
                .await?;
                row.map(TryInto::try_into).transpose()
            }

            async fn revoke_api_token(
                &self,
                tenant: TenantId,
                id: uuid::Uuid,
                at: DateTime<Utc>,
                by: StaffId,
                e: &AuditEntry,
            ) -> Result<bool> {
                let mut tx = self.writer().begin().await?;
                let done = sqlx::query(
                    "UPDATE api_tokens SET revoked_at = $3, revoked_by = $4 WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL",
                )
                .bind(tenant.0)
                .bind(id)
                .bind(at)
                .bind(by.0)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 0 {
                    return Ok(false);
                }
                insert_audit(&mut tx, e).await?;
                tx.commit().await?;
                Ok(true)
            }
        }
    };
}
pub(crate) use impl_audit_storage;
