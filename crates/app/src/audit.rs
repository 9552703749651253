//! The audit log as use cases: writing entries for changes that are not ledger
//! transactions, and searching audit entries and ledger transactions together.
//!
//! Where an entry is written:
//! - in the same database transaction as the change: logins (successful ones), staff
//!   accounts, API tokens (`patron_store::audit`);
//! - right after the change, by the use case (the change's own store method has no
//!   audit parameter): failed and refused logins and approvals, settings, card
//!   freeze/unfreeze, coupon templates, issue rules, coupons issued and voided, menu and
//!   prices, imports, exports, day close and reopen. If that write fails the use case
//!   answers with the error although the change stands (it is then visible in its own
//!   table: card status, price history, business days...).
//!
//! Money and points changes are ledger transactions (with staff, store, approver and
//! reason) and are not copied into the audit log; the search reads both.

use crate::{Actor, App, AppError, new_uuid, now};
use patron_domain::ids::StoreId;
use patron_domain::org::Role;
use patron_domain::page::{Page, PageRequest};
use patron_domain::permissions::Permission;
use patron_store::audit::{AuditEntry, AuditFilter, AuditRecord};

impl App {
    /// An audit entry by `actor` at their store, now; callers fill in the rest
    /// (`before`, `after`, `customer_id`, `card_id`...) with struct update syntax.
    pub fn audit_entry(
        &self,
        actor: &Actor,
        action: &str,
        entity_kind: &str,
        entity_id: Option<String>,
        summary: impl Into<String>,
    ) -> AuditEntry {
        AuditEntry {
            tenant_id: actor.tenant_id,
            id: new_uuid(),
            at: now(),
            action: action.into(),
            staff_id: Some(actor.staff_id),
            approver_id: None,
            store_id: actor.store_id,
            entity_kind: entity_kind.into(),
            entity_id,
            customer_id: None,
            card_id: None,
            summary: summary.into(),
            before: None,
            after: None,
            ip: None,
        }
    }

    /// Appends an entry (for a change already made by another store method).
    pub async fn audit(&self, e: AuditEntry) -> Result<(), AppError> {
        self.storage.append_audit(&e).await?;
        Ok(())
    }

    /// Records an import or export of customer data: the file's name (not its folder)
    /// and what was in it.
    pub(crate) async fn audit_file(
        &self,
        actor: &Actor,
        action: &str,
        path: &std::path::Path,
        what: &serde_json::Value,
    ) -> Result<(), AppError> {
        let file = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut after = what.clone();
        if let Some(o) = after.as_object_mut() {
            o.insert("file".into(), file.clone().into());
        }
        self.audit(AuditEntry {
            after: Some(after),
            ..self.audit_entry(
                actor,
                action,
                "customers",
                None,
                format!("{action}: {file}"),
            )
        })
        .await
    }

    /// Audit entries and ledger transactions, newest first. Staff assigned to a store
    /// (other than the owner) see only that store's.
    pub async fn search_audit(
        &self,
        actor: &Actor,
        filter: &AuditFilter,
        page: PageRequest,
    ) -> Result<Page<AuditRecord>, AppError> {
        actor.require(Permission::ViewAudit)?;
        let mut f = filter.clone();
        if actor.role != Role::Owner
            && let Some(own) = actor.store_id
        {
            if f.store.is_some_and(|s: StoreId| s != own) {
                return Err(AppError::Forbidden(
                    "you see the audit log of your own store".into(),
                ));
            }
            f.store = Some(own);
        }
        let page = page.clamped();
        let rows = self.storage.search_audit(actor.tenant_id, &f, page).await?;
        Ok(Page::from_overfetch(rows, page))
    }
}

/// A value as it goes into an entry's `before` or `after`.
pub fn state<T: serde::Serialize + ?Sized>(v: &T) -> Option<serde_json::Value> {
    Some(serde_json::to_value(v).unwrap_or(serde_json::Value::Null))
}
