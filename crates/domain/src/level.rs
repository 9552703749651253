//! Member levels: thresholds on growth value (money spent over the lifetime or a trailing
//! window — never the points balance), each with a discount, a points multiplier and
//! member-price access. Upgrades happen at once; downgrades only at a review, at most once
//! per configured number of months.
//!
//! Growth is [`Money`] by construction, so a level can never be promoted on a points
//! balance (a known bug of other loyalty systems). Pure functions; callers pass in today.

use crate::error::{FieldError, ValidationErrors};
use crate::money::Money;
use crate::points::{EarnLevel, Explanation, format_money_grouped};
use chrono::{Datelike, Months, NaiveDate};
use serde::{Deserialize, Serialize};
use std::sync::LazyLock;
use utoipa::ToSchema;

/// One member level.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LevelDef {
    /// Stable code, e.g. `silver`.
    pub code: String,
    /// Chinese name, e.g. 银卡.
    pub name: String,
    /// English name, e.g. Silver.
    pub name_en: String,
    /// Growth value needed to reach the level.
    pub threshold: Money,
    /// Percent off in basis points: 500 = 5% off (95折).
    pub discount_bp: u32,
    /// Points multiplier in basis points: 10000 = 1×.
    pub multiplier_bp: u32,
    /// Whether the level may buy at member prices.
    pub member_price: bool,
}

impl LevelDef {
    /// The level as points earning sees it.
    pub fn earn_level(&self) -> EarnLevel {
        EarnLevel::from(self)
    }
}

impl From<&LevelDef> for EarnLevel {
    fn from(l: &LevelDef) -> Self {
        EarnLevel {
            name: l.name.clone(),
            name_en: l.name_en.clone(),
            multiplier_bp: l.multiplier_bp,
        }
    }
}

/// Which spending counts towards growth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GrowthWindow {
    /// All spending ever.
    Lifetime,
    /// Spending in the last N months (ending today, inclusive).
    TrailingMonths(u32),
}

/// When levels are reviewed for downgrades.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct ReviewPolicy {
    /// Months between reviews; reviews fall on month starts.
    pub every_months: u32,
    /// A member is downgraded at most once in this many months.
    pub min_months_between_downgrades: u32,
}

impl Default for ReviewPolicy {
    /// Monthly reviews, at most one downgrade per six months.
    fn default() -> Self {
        ReviewPolicy {
            every_months: 1,
            min_months_between_downgrades: 6,
        }
    }
}

/// A tenant's level rules. Stored as JSON; missing keys take their defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct LevelRules {
    /// Levels in ascending threshold order; the first has threshold 0.
    pub levels: Vec<LevelDef>,
    /// Which spending counts as growth.
    pub window: GrowthWindow,
    /// When downgrades are considered.
    pub review: ReviewPolicy,
}

fn level_def(
    code: &str,
    name: &str,
    name_en: &str,
    yuan: i64,
    discount_bp: u32,
    multiplier_bp: u32,
) -> LevelDef {
    LevelDef {
        code: code.into(),
        name: name.into(),
        name_en: name_en.into(),
        threshold: Money::from_yuan(yuan),
        discount_bp,
        multiplier_bp,
        member_price: true,
    }
}

impl Default for LevelRules {
    /// 普通会员 (¥0, no discount, 1×), 银卡 (¥2,000, 2% off, 1.2×), 金卡 (¥10,000, 5% off,
    /// 1.5×), 钻石卡 (¥50,000, 10% off, 2×), all with member prices; growth over the
    /// trailing 12 months; monthly reviews, at most one downgrade per six months.
    fn default() -> Self {
        LevelRules {
            levels: vec![
                level_def("member", "普通会员", "Member", 0, 0, 10_000),
                level_def("silver", "银卡", "Silver", 2_000, 200, 12_000),
                level_def("gold", "金卡", "Gold", 10_000, 500, 15_000),
                level_def("diamond", "钻石卡", "Diamond", 50_000, 1_000, 20_000),
            ],
            window: GrowthWindow::TrailingMonths(12),
            review: ReviewPolicy::default(),
        }
    }
}

/// What is wrong with level rules, naming the field (e.g. `levels[2].threshold`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct LevelError {
    /// The offending field, e.g. `levels[1].code`.
    pub field: String,
    /// Stable machine code, e.g. `duplicate_level_code`.
    pub code: &'static str,
    /// A sentence for a person.
    pub message: String,
}

impl LevelError {
    fn new(field: impl Into<String>, code: &'static str, message: impl Into<String>) -> Self {
        LevelError {
            field: field.into(),
            code,
            message: message.into(),
        }
    }
}

impl From<LevelError> for ValidationErrors {
    fn from(e: LevelError) -> Self {
        FieldError::new(e.field, e.code, e.message).into()
    }
}

/// The level used when the rules hold none (validation refuses that; this keeps
/// [`LevelRules::level_for`] total).
static FALLBACK_LEVEL: LazyLock<LevelDef> =
    LazyLock::new(|| level_def("member", "普通会员", "Member", 0, 0, 10_000));

impl LevelRules {
    /// Checks codes unique/non-empty, thresholds strictly increasing, the first at 0, bp in
    /// range. Errors name the field; the first problem found is returned.
    pub fn validate(&self) -> Result<(), LevelError> {
        if self.levels.is_empty() {
            return Err(LevelError::new(
                "levels",
                "no_levels",
                "at least one level is needed",
            ));
        }
        for (i, l) in self.levels.iter().enumerate() {
            let f = |name: &str| format!("levels[{i}].{name}");
            if l.code.trim().is_empty() || l.code.chars().any(char::is_whitespace) {
                return Err(LevelError::new(
                    f("code"),
                    "invalid_level_code",
                    "must be non-empty without spaces",
                ));
            }
            if self.levels[..i].iter().any(|o| o.code == l.code) {
                return Err(LevelError::new(
                    f("code"),
                    "duplicate_level_code",
                    format!("{:?} is used by another level", l.code),
                ));
            }
            if l.name.trim().is_empty() {
                return Err(LevelError::new(
                    f("name"),
                    "invalid_level",
                    "must not be empty",
                ));
            }
            if l.name_en.trim().is_empty() {
                return Err(LevelError::new(
                    f("name_en"),
                    "invalid_level",
                    "must not be empty",
                ));
            }
            if i == 0 && l.threshold != Money::ZERO {
                return Err(LevelError::new(
                    f("threshold"),
                    "first_threshold_not_zero",
                    "the first level must start at 0",
                ));
            }
            if i > 0 && l.threshold <= self.levels[i - 1].threshold {
                return Err(LevelError::new(
                    f("threshold"),
                    "threshold_not_increasing",
                    "must be higher than the previous level's threshold",
                ));
            }
            if l.discount_bp >= 10_000 {
                return Err(LevelError::new(
                    f("discount_bp"),
                    "invalid_level",
                    "must be below 10000 (100% off)",
                ));
            }
            if l.multiplier_bp > 100_000 {
                return Err(LevelError::new(
                    f("multiplier_bp"),
                    "invalid_level",
                    "must be at most 100000 (10×)",
                ));
            }
        }
        if let GrowthWindow::TrailingMonths(n) = self.window
            && !(1..=120).contains(&n)
        {
            return Err(LevelError::new(
                "window",
                "invalid_level_rule",
                "a trailing window must be 1 to 120 months",
            ));
        }
        if !(1..=24).contains(&self.review.every_months) {
            return Err(LevelError::new(
                "review.every_months",
                "invalid_level_rule",
                "must be between 1 and 24",
            ));
        }
        if self.review.min_months_between_downgrades > 120 {
            return Err(LevelError::new(
                "review.min_months_between_downgrades",
                "invalid_level_rule",
                "must be at most 120",
            ));
        }
        Ok(())
    }

    /// The level with `code`.
    pub fn level(&self, code: &str) -> Option<&LevelDef> {
        self.levels.iter().find(|l| l.code == code)
    }

    /// The highest level whose threshold growth reaches. With negative growth this is the
    /// lowest level; with no levels at all (refused by `validate`) a built-in 普通会员.
    pub fn level_for(&self, growth: Money) -> &LevelDef {
        self.levels
            .iter()
            .filter(|l| l.threshold <= growth)
            .max_by_key(|l| l.threshold)
            .or_else(|| self.levels.iter().min_by_key(|l| l.threshold))
            .unwrap_or(&FALLBACK_LEVEL)
    }

    /// Start of the growth window for `today` (None = lifetime): spending on or after it
    /// counts. `TrailingMonths(n)` covers the n months ending today, so the start is
    /// today − n months (clamped to month end) + 1 day; 2026-05-15 with 12 months →
    /// 2025-05-16.
    pub fn window_start(&self, today: NaiveDate) -> Option<NaiveDate> {
        match self.window {
            GrowthWindow::Lifetime => None,
            GrowthWindow::TrailingMonths(n) => Some(
                today
                    .checked_sub_months(Months::new(n.max(1)))
                    .and_then(|d| d.succ_opt())
                    .unwrap_or(NaiveDate::MIN),
            ),
        }
    }
}

/// Why a member's level changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LevelChangeReason {
    /// Growth reached a higher level.
    Upgrade,
    /// A review found growth below the current level.
    ReviewDowngrade,
    /// Set by staff, or re-placed because the member's level no longer exists.
    Manual,
    /// The member's first level.
    Initial,
}

impl LevelChangeReason {
    /// Stable code, as serde spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            LevelChangeReason::Upgrade => "upgrade",
            LevelChangeReason::ReviewDowngrade => "review_downgrade",
            LevelChangeReason::Manual => "manual",
            LevelChangeReason::Initial => "initial",
        }
    }

    /// The reason with code `s`.
    pub fn parse(s: &str) -> Option<Self> {
        [
            LevelChangeReason::Upgrade,
            LevelChangeReason::ReviewDowngrade,
            LevelChangeReason::Manual,
            LevelChangeReason::Initial,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

/// A level change to record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LevelDecision {
    /// The previous level's code, if any.
    pub from: Option<String>,
    /// The new level's code.
    pub to: String,
    /// Why it changed.
    pub reason: LevelChangeReason,
    /// "成长值 ¥10,200.00 达到金卡门槛 ¥10,000.00，升级为金卡".
    pub explanation: Explanation,
}

/// Where the member stands: no level, a level that no longer exists, or a known level.
enum Current<'a> {
    None,
    Deleted(&'a str),
    Known(&'a LevelDef),
}

fn current<'a>(rules: &'a LevelRules, code: Option<&'a str>) -> Current<'a> {
    match code {
        None => Current::None,
        Some(c) => rules.level(c).map_or(Current::Deleted(c), Current::Known),
    }
}

fn initial(target: &LevelDef, growth: Money) -> LevelDecision {
    let g = format_money_grouped(growth);
    LevelDecision {
        from: None,
        to: target.code.clone(),
        reason: LevelChangeReason::Initial,
        explanation: Explanation {
            zh: format!("成长值 {g}，初始等级为{}", target.name),
            en: format!("Growth {g}: starting level {}", target.name_en),
        },
    }
}

fn replace_deleted(old: &str, target: &LevelDef, growth: Money) -> LevelDecision {
    let g = format_money_grouped(growth);
    LevelDecision {
        from: Some(old.to_string()),
        to: target.code.clone(),
        reason: LevelChangeReason::Manual,
        explanation: Explanation {
            zh: format!("原等级 {old} 已停用，按成长值 {g} 调整为{}", target.name),
            en: format!(
                "Former level {old} no longer exists; growth {g} places the member at {}",
                target.name_en
            ),
        },
    }
}

fn upgrade(from: &LevelDef, target: &LevelDef, growth: Money) -> LevelDecision {
    let g = format_money_grouped(growth);
    let t = format_money_grouped(target.threshold);
    LevelDecision {
        from: Some(from.code.clone()),
        to: target.code.clone(),
        reason: LevelChangeReason::Upgrade,
        explanation: Explanation {
            zh: format!(
                "成长值 {g} 达到{}门槛 {t}，升级为{}",
                target.name, target.name
            ),
            en: format!(
                "Growth {g} reached the {} threshold {t}: upgraded to {}",
                target.name_en, target.name_en
            ),
        },
    }
}

fn downgrade(from: &LevelDef, target: &LevelDef, growth: Money) -> LevelDecision {
    let g = format_money_grouped(growth);
    let t = format_money_grouped(from.threshold);
    LevelDecision {
        from: Some(from.code.clone()),
        to: target.code.clone(),
        reason: LevelChangeReason::ReviewDowngrade,
        explanation: Explanation {
            zh: format!(
                "定期复核：成长值 {g} 未达{}门槛 {t}，调整为{}",
                from.name, target.name
            ),
            en: format!(
                "Review: growth {g} is below the {} threshold {t}: moved to {}",
                from.name_en, target.name_en
            ),
        },
    }
}

/// Whether a spend can change the level of a member at `current_code` (see
/// [`after_spend`]): false only for a known level with none above it, whatever the
/// growth, so the caller need not add the growth up.
pub fn spend_can_change(rules: &LevelRules, current_code: Option<&str>) -> bool {
    match current(rules, current_code) {
        Current::Known(cur) => rules.levels.iter().any(|l| l.threshold > cur.threshold),
        Current::None | Current::Deleted(_) => true,
    }
}

/// After a spend: upgrade at once when growth reaches a higher level; never downgrade
/// here. None = no change.
///
/// A member without a level gets the level growth supports ([`LevelChangeReason::Initial`]).
/// A current code that is no longer in the rules (a deleted level) cannot be ranked, so
/// the member is placed at the level growth supports with [`LevelChangeReason::Manual`]
/// (the change is administrative, not earned or lost).
pub fn after_spend(
    rules: &LevelRules,
    current_code: Option<&str>,
    growth: Money,
) -> Option<LevelDecision> {
    let target = rules.level_for(growth);
    match current(rules, current_code) {
        Current::None => Some(initial(target, growth)),
        Current::Deleted(old) => Some(replace_deleted(old, target, growth)),
        Current::Known(cur) if target.threshold > cur.threshold => {
            Some(upgrade(cur, target, growth))
        }
        Current::Known(_) => None,
    }
}

/// At a review: downgrade to the level growth supports, unless the last downgrade was
/// fewer than `min_months_between_downgrades` ago (then the member keeps the level until a
/// later review); also upgrades if due. None = no change. No level and deleted levels are
/// handled as in [`after_spend`].
pub fn at_review(
    rules: &LevelRules,
    current_code: Option<&str>,
    growth: Money,
    last_downgrade_on: Option<NaiveDate>,
    today: NaiveDate,
) -> Option<LevelDecision> {
    let target = rules.level_for(growth);
    match current(rules, current_code) {
        Current::None => Some(initial(target, growth)),
        Current::Deleted(old) => Some(replace_deleted(old, target, growth)),
        Current::Known(cur) if target.threshold > cur.threshold => {
            Some(upgrade(cur, target, growth))
        }
        Current::Known(cur) if target.threshold < cur.threshold => {
            let months = rules.review.min_months_between_downgrades;
            let held = last_downgrade_on.is_some_and(|last| {
                last.checked_add_months(Months::new(months))
                    .is_none_or(|until| today < until)
            });
            (!held).then(|| downgrade(cur, target, growth))
        }
        Current::Known(_) => None,
    }
}

/// Whether a review is due. Reviews fall on month starts: due when there has been no
/// review yet, or when today is on or after the first of the month `every_months` after
/// the last review's month. Callers should record the date a member first got a level as
/// its last review, so that member's first review comes at the next month start.
pub fn review_due(rules: &LevelRules, last_review_on: Option<NaiveDate>, today: NaiveDate) -> bool {
    let Some(last) = last_review_on else {
        return true;
    };
    let month_start = last.with_day(1).unwrap_or(last);
    month_start
        .checked_add_months(Months::new(rules.review.every_months.max(1)))
        .is_some_and(|next| today >= next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }
    fn y(v: i64) -> Money {
        Money::from_yuan(v)
    }

    #[test]
    fn defaults_are_valid_and_round_trip() {
        let r = LevelRules::default();
        assert_eq!(r.validate(), Ok(()));
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<LevelRules>(&json).unwrap(), r);
        let partial: LevelRules =
            serde_json::from_str(r#"{"window": "lifetime", "review": {"every_months": 3}}"#)
                .unwrap();
        assert_eq!(partial.window, GrowthWindow::Lifetime);
        assert_eq!(partial.review.every_months, 3);
        assert_eq!(partial.review.min_months_between_downgrades, 6);
        assert_eq!(partial.levels, r.levels);
        assert_eq!(
            serde_json::to_value(GrowthWindow::TrailingMonths(12)).unwrap(),
            serde_json::json!({"trailing_months": 12})
        );
        for c in ["upgrade", "review_downgrade", "manual", "initial"] {
            assert_eq!(LevelChangeReason::parse(c).unwrap().as_str(), c);
        }
        let gold = r.level("gold").unwrap().earn_level();
        assert_eq!((gold.name.as_str(), gold.multiplier_bp), ("金卡", 15_000));
    }

    #[test]
    fn validation_names_the_field() {
        let base = LevelRules::default();
        let check = |f: &dyn Fn(&mut LevelRules), field: &str, code: &str| {
            let mut r = base.clone();
            f(&mut r);
            let e = r.validate().unwrap_err();
            assert_eq!((e.field.as_str(), e.code), (field, code), "{e}");
        };
        check(&|r| r.levels.clear(), "levels", "no_levels");
        check(
            &|r| r.levels[1].code = " ".into(),
            "levels[1].code",
            "invalid_level_code",
        );
        check(
            &|r| r.levels[2].code = "silver".into(),
            "levels[2].code",
            "duplicate_level_code",
        );
        check(
            &|r| r.levels[0].threshold = y(1),
            "levels[0].threshold",
            "first_threshold_not_zero",
        );
        check(
            &|r| r.levels[2].threshold = y(2_000),
            "levels[2].threshold",
            "threshold_not_increasing",
        );
        check(
            &|r| r.levels[3].discount_bp = 10_000,
            "levels[3].discount_bp",
            "invalid_level",
        );
        check(
            &|r| r.levels[3].multiplier_bp = 100_001,
            "levels[3].multiplier_bp",
            "invalid_level",
        );
        check(
            &|r| r.levels[1].name_en = "".into(),
            "levels[1].name_en",
            "invalid_level",
        );
        check(
            &|r| r.window = GrowthWindow::TrailingMonths(0),
            "window",
            "invalid_level_rule",
        );
        check(
            &|r| r.review.every_months = 0,
            "review.every_months",
            "invalid_level_rule",
        );
        let v: ValidationErrors = LevelError::new("levels", "no_levels", "x").into();
        assert_eq!(v.0[0].field, "levels");
    }

    #[test]
    fn level_for_thresholds() {
        let r = LevelRules::default();
        let code = |fen| r.level_for(Money::from_fen(fen)).code.as_str();
        assert_eq!(code(0), "member");
        assert_eq!(code(199_999), "member");
        assert_eq!(code(200_000), "silver");
        assert_eq!(code(999_999), "silver");
        assert_eq!(code(1_000_000), "gold");
        assert_eq!(code(5_000_000), "diamond");
        assert_eq!(code(i64::MAX), "diamond");
        assert_eq!(code(-500), "member");
        let empty = LevelRules {
            levels: vec![],
            ..LevelRules::default()
        };
        assert_eq!(empty.level_for(y(100)).code, "member");
        // Growth is money: a points balance cannot be passed where growth is expected.
        let _: for<'a> fn(&'a LevelRules, Money) -> &'a LevelDef = LevelRules::level_for;
        let _: fn(&LevelRules, Option<&str>, Money) -> Option<LevelDecision> = after_spend;
    }

    #[test]
    fn window_starts() {
        let r = LevelRules::default();
        assert_eq!(r.window_start(d(2026, 5, 15)), Some(d(2025, 5, 16)));
        assert_eq!(r.window_start(d(2028, 2, 29)), Some(d(2027, 3, 1)));
        let one = LevelRules {
            window: GrowthWindow::TrailingMonths(1),
            ..LevelRules::default()
        };
        assert_eq!(one.window_start(d(2026, 3, 31)), Some(d(2026, 3, 1)));
        let life = LevelRules {
            window: GrowthWindow::Lifetime,
            ..LevelRules::default()
        };
        assert_eq!(life.window_start(d(2026, 5, 15)), None);
    }

    #[test]
    fn upgrades_at_once_and_never_downgrades_after_a_spend() {
        let r = LevelRules::default();
        let up = after_spend(&r, Some("silver"), Money::from_fen(1_020_000)).unwrap();
        assert_eq!(up.from.as_deref(), Some("silver"));
        assert_eq!(up.to, "gold");
        assert_eq!(up.reason, LevelChangeReason::Upgrade);
        assert_eq!(
            up.explanation.zh,
            "成长值 ¥10,200.00 达到金卡门槛 ¥10,000.00，升级为金卡"
        );
        assert_eq!(
            up.explanation.en,
            "Growth ¥10,200.00 reached the Gold threshold ¥10,000.00: upgraded to Gold"
        );
        // Skipping levels goes straight to the highest reached.
        assert_eq!(
            after_spend(&r, Some("member"), y(60_000)).unwrap().to,
            "diamond"
        );
        // Same level or less growth: no change after a spend.
        assert_eq!(after_spend(&r, Some("gold"), y(10_500)), None);
        assert_eq!(after_spend(&r, Some("gold"), y(100)), None);
        let first = after_spend(&r, None, y(300)).unwrap();
        assert_eq!(
            (first.to.as_str(), first.reason),
            ("member", LevelChangeReason::Initial)
        );
        assert_eq!(first.explanation.zh, "成长值 ¥300.00，初始等级为普通会员");
        let gone = after_spend(&r, Some("platinum"), y(3_000)).unwrap();
        assert_eq!(gone.from.as_deref(), Some("platinum"));
        assert_eq!(
            (gone.to.as_str(), gone.reason),
            ("silver", LevelChangeReason::Manual)
        );
    }

    #[test]
    fn downgrades_at_review_at_most_once_per_six_months() {
        let r = LevelRules::default();
        let today = d(2026, 6, 1);
        let down = at_review(&r, Some("gold"), y(1_500), None, today).unwrap();
        assert_eq!(
            (down.to.as_str(), down.reason),
            ("member", LevelChangeReason::ReviewDowngrade)
        );
        assert_eq!(
            down.explanation.zh,
            "定期复核：成长值 ¥1,500.00 未达金卡门槛 ¥10,000.00，调整为普通会员"
        );
        // Downgraded on 2026-01-01: held until 2026-07-01.
        assert_eq!(
            at_review(&r, Some("gold"), y(1_500), Some(d(2026, 1, 1)), today),
            None
        );
        assert_eq!(
            at_review(
                &r,
                Some("gold"),
                y(1_500),
                Some(d(2026, 1, 1)),
                d(2026, 7, 1)
            )
            .unwrap()
            .to,
            "member"
        );
        assert_eq!(
            at_review(&r, Some("gold"), y(1_500), Some(d(2025, 12, 1)), today)
                .unwrap()
                .to,
            "member"
        );
        // Upgrades are never held; a steady level is no change.
        let up = at_review(&r, Some("silver"), y(12_000), Some(d(2026, 5, 1)), today).unwrap();
        assert_eq!(
            (up.to.as_str(), up.reason),
            ("gold", LevelChangeReason::Upgrade)
        );
        assert_eq!(at_review(&r, Some("silver"), y(2_000), None, today), None);
        // A configurable hold.
        let no_hold = LevelRules {
            review: ReviewPolicy {
                every_months: 1,
                min_months_between_downgrades: 0,
            },
            ..LevelRules::default()
        };
        assert!(at_review(&no_hold, Some("gold"), y(1_500), Some(today), today).is_some());
    }

    #[test]
    fn reviews_fall_on_month_starts() {
        let r = LevelRules::default();
        assert!(review_due(&r, None, d(2026, 5, 15)));
        assert!(!review_due(&r, Some(d(2026, 5, 15)), d(2026, 5, 31)));
        assert!(review_due(&r, Some(d(2026, 5, 15)), d(2026, 6, 1)));
        assert!(review_due(&r, Some(d(2026, 5, 1)), d(2026, 7, 9)));
        let quarterly = LevelRules {
            review: ReviewPolicy {
                every_months: 3,
                min_months_between_downgrades: 6,
            },
            ..LevelRules::default()
        };
        assert!(!review_due(&quarterly, Some(d(2026, 1, 1)), d(2026, 3, 31)));
        assert!(review_due(&quarterly, Some(d(2026, 1, 1)), d(2026, 4, 1)));
    }

    proptest! {
        #[test]
        fn after_spend_never_lowers_the_level(fen in -1_000i64..10_000_000, cur in 0usize..4) {
            let r = LevelRules::default();
            let current = &r.levels[cur];
            match after_spend(&r, Some(&current.code), Money::from_fen(fen)) {
                Some(dec) => {
                    prop_assert_eq!(dec.reason, LevelChangeReason::Upgrade);
                    prop_assert!(r.level(&dec.to).unwrap().threshold > current.threshold);
                    prop_assert!(r.level(&dec.to).unwrap().threshold <= Money::from_fen(fen));
                }
                None => prop_assert!(r.level_for(Money::from_fen(fen)).threshold <= current.threshold),
            }
        }

        #[test]
        fn a_spend_that_cannot_change_the_level_never_does(fen in -1_000i64..100_000_000, cur in 0usize..5) {
            let r = LevelRules::default();
            let code = r.levels.get(cur).map(|l| l.code.clone());
            if !spend_can_change(&r, code.as_deref()) {
                prop_assert!(after_spend(&r, code.as_deref(), Money::from_fen(fen)).is_none());
            }
        }
    }

    #[test]
    fn only_the_top_level_cannot_change_after_a_spend() {
        let r = LevelRules::default();
        let top = r.levels.iter().max_by_key(|l| l.threshold).unwrap();
        assert!(!spend_can_change(&r, Some(&top.code)));
        for l in r.levels.iter().filter(|l| l.code != top.code) {
            assert!(spend_can_change(&r, Some(&l.code)), "{}", l.code);
        }
        assert!(spend_can_change(&r, None), "no level yet");
        assert!(
            spend_can_change(&r, Some("deleted-level")),
            "a deleted level"
        );
    }
}
