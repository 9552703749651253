//! A tenant's configurable rules, with realistic defaults.

use crate::stored_value::{PrepaidPolicy, SplitRule, TopUpRules};
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
    }
}
