//! A tenant's configurable rules, with realistic defaults.

use crate::level::LevelRules;
use crate::points::PointsRules;
use crate::pricing::CheckoutRules;
use crate::stored_value::{PrepaidPolicy, SplitRule, TopUpRules};
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Settings of one tenant. Stored as JSON; missing keys take their defaults, so new
/// settings never need a data migration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct TenantSettings {
    pub top_up: TopUpRules,
    pub split_rule: SplitRule,
    /// Whether spending stored value needs the card's PIN.
    pub pin_required: bool,
    /// Wrong PINs in a row that lock spending.
    pub pin_max_failures: u32,
    /// How long spending stays locked.
    pub pin_lock_minutes: u32,
    pub prepaid: PrepaidPolicy,
    /// Points earning, redemption and expiry.
    pub points: PointsRules,
    /// Member levels and their review.
    pub levels: LevelRules,
    /// The tenant's local time (minutes east of UTC; China is +480): business days, birthdays,
    /// expiry dates and coupon hours are local.
    pub utc_offset_minutes: i32,
    /// When the business day starts, in minutes after local midnight (default 04:00): a
    /// late dinner paid at 01:30 belongs to the evening before.
    pub day_starts_at_minutes: u32,
    /// Checkout pricing: rounding-off (抹零), coupons per bill, payment-dependent rules.
    pub checkout: CheckoutRules,
}

impl TenantSettings {
    /// The local wall-clock time of an instant.
    pub fn local(&self, at: DateTime<Utc>) -> NaiveDateTime {
        let offset = FixedOffset::east_opt(self.utc_offset_minutes * 60)
            .unwrap_or_else(|| FixedOffset::east_opt(8 * 3600).expect("valid offset"));
        at.with_timezone(&offset).naive_local()
    }
    /// The local date of an instant.
    pub fn local_date(&self, at: DateTime<Utc>) -> NaiveDate {
        self.local(at).date()
    }

    /// The business day an instant belongs to (the local date, shifted by the day start).
    pub fn business_date(&self, at: DateTime<Utc>) -> NaiveDate {
        (self.local(at) - chrono::Duration::minutes(i64::from(self.day_starts_at_minutes))).date()
    }

    /// The instants a business day covers: `[start, end)`.
    pub fn business_day_bounds(&self, day: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
        let start_local = day.and_hms_opt(0, 0, 0).expect("midnight")
            + chrono::Duration::minutes(i64::from(self.day_starts_at_minutes));
        let start = start_local - chrono::Duration::minutes(i64::from(self.utc_offset_minutes));
        let start = start.and_utc();
        (start, start + chrono::Duration::days(1))
    }
}

impl Default for TenantSettings {
    fn default() -> Self {
        TenantSettings {
            top_up: TopUpRules::default(),
            split_rule: SplitRule::Proportional,
            pin_required: true,
            pin_max_failures: 5,
            pin_lock_minutes: 30,
            prepaid: PrepaidPolicy::default(),
            points: PointsRules::default(),
            levels: LevelRules::default(),
            utc_offset_minutes: 480,
            day_starts_at_minutes: 240,
            checkout: CheckoutRules::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_keys_take_defaults() {
        let s: TenantSettings = serde_json::from_str(r#"{"pin_required": false}"#).unwrap();
        assert!(!s.pin_required);
        assert_eq!(s.pin_max_failures, 5);
        assert_eq!(s.top_up, TopUpRules::default());
        assert_eq!(s.utc_offset_minutes, 480);
    }

    #[test]
    fn local_dates_follow_the_offset() {
        let s = TenantSettings::default();
        // 16:30 UTC is half past midnight the next day in China.
        let at = "2026-11-23T16:30:00Z".parse::<DateTime<Utc>>().unwrap();
        assert_eq!(
            s.local_date(at),
            NaiveDate::from_ymd_opt(2026, 11, 24).unwrap()
        );
    }
}
