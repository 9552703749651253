//! The customer timeline: every visit, top-up, points change, coupon, complaint and
//! profile change of one customer in one list. Features append events; nothing edits them.

use crate::ids::{CustomerId, StaffId, StoreId, TenantId, TimelineEventId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One event on a customer's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TimelineEvent {
    #[serde(skip_serializing)]
    #[schema(ignore)]
    pub tenant_id: TenantId,
    pub id: TimelineEventId,
    pub customer_id: CustomerId,
    pub occurred_at: DateTime<Utc>,
    /// Stable code: customer_created, profile_updated, merged, merged_away, visit, top_up...
    pub kind: String,
    /// One line for a person, e.g. "资料更新: phone, tags".
    pub summary: String,
    /// Details (before/after values, amounts), kind-specific.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    pub store_id: Option<StoreId>,
    pub staff_id: Option<StaffId>,
}
