//! The audit log search.

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Auth, Query};
use axum::extract::State;
use chrono::{DateTime, Utc};
use patron_app::App;
use patron_domain::ids::{CardId, CustomerId, StaffId, StoreId};
use patron_domain::page::PageRequest;
use patron_store::audit::{AuditFilter, AuditRecord};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Filters and paging of the audit search; combined with AND.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Done or approved by this staff member.
    #[param(value_type = Option<String>, format = Uuid)]
    staff: Option<StaffId>,
    #[param(value_type = Option<String>, format = Uuid)]
    customer: Option<CustomerId>,
    #[param(value_type = Option<String>, format = Uuid)]
    card: Option<CardId>,
    #[param(value_type = Option<String>, format = Uuid)]
    store: Option<StoreId>,
    /// From this instant (inclusive).
    from: Option<DateTime<Utc>>,
    /// Before this instant.
    to: Option<DateTime<Utc>>,
    /// An action or its family: `login` (also `login.failed`), `card`, `staff.update`,
    /// `ledger` (every money and points transaction), `ledger.adjustment`...
    action: Option<String>,
    /// From 1.
    page: Option<u32>,
    /// 1–500, default 50.
    per_page: Option<u32>,
}

/// One page of the audit log.
#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    items: Vec<AuditRecord>,
    page: u32,
    per_page: u32,
    has_more: bool,
}

/// Who did what, when, at which store, with the state before and after: audit entries
/// (logins, staff, settings, card status, coupons, menu prices, imports, exports, day
/// close and reopen) and ledger transactions (every change of money and points), newest
/// first. Staff assigned to a store see that store's only.
#[utoipa::path(get, path = "/audit", tag = "audit", security(("bearer" = [])), params(AuditParams),
    responses((status = 200, body = AuditPage), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn search(
    State(app): State<App>,
    Auth(a): Auth,
    Query(p): Query<AuditParams>,
) -> ApiResult<axum::Json<AuditPage>> {
    let filter = AuditFilter {
        staff: p.staff,
        customer: p.customer,
        card: p.card,
        store: p.store,
        from: p.from,
        to: p.to,
        action: p.action.map(|s| s.trim().to_string()),
    };
    let page = PageRequest {
        page: p.page.unwrap_or(1),
        per_page: p.per_page.unwrap_or(50),
    };
    let r = app.search_audit(&a, &filter, page).await?;
    Ok(axum::Json(AuditPage {
        items: r.items,
        page: r.page,
        per_page: r.per_page,
        has_more: r.has_more,
    }))
}
