//! Points rules: what a spend earns (base rate, level and birthday multipliers, bonuses),
//! points as cash at the till, and expiry by lots.
//!
//! Rounding is fixed and named: points **earned round down**, points **spent round up**,
//! and there are never fractions of a point. Every award carries the rule that produced it
//! and an explanation in Chinese and English, so a customer can be shown how each point
//! was computed ("消费 286 元 × 1 分/元 × 金卡 1.5 倍 = 429 分").
//!
//! Pure functions: callers pass in today's date, the level, the visit count and the lots.

use crate::error::{FieldError, ValidationErrors};
use crate::ledger::Tender;
use crate::money::Money;
use chrono::{Datelike, Days, Months, NaiveDate};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// Basis points in one whole (10000 bp = 1× = 100%).
const BP: i128 = 10_000;

/// How a payment was made, for deciding whether it earns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PayMethod {
    /// An external tender: cash, bank card, WeChat Pay, Alipay, another wallet.
    Tender(Tender),
    /// The member's stored value (principal and bonus).
    StoredValue,
    /// A corporate charge account (挂账).
    Charge,
    /// Points used as cash; never earns (points do not breed points).
    Points,
    /// A coupon's value; never earns.
    Coupon,
}

/// Which payment methods earn points. Points-as-cash and coupons never earn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct EarningMethods {
    /// Cash earns.
    pub cash: bool,
    /// Bank cards earn.
    pub bank_card: bool,
    /// WeChat Pay earns.
    pub wechat: bool,
    /// Alipay earns.
    pub alipay: bool,
    /// Other wallets and voucher platforms earn.
    pub other_wallet: bool,
    /// Spending stored value earns (the top-up itself never does).
    pub stored_value: bool,
    /// Charging a corporate account earns.
    pub charge: bool,
}

impl Default for EarningMethods {
    /// Every tender and stored value earns; corporate charge does not (the member is not
    /// the one paying).
    fn default() -> Self {
        EarningMethods {
            cash: true,
            bank_card: true,
            wechat: true,
            alipay: true,
            other_wallet: true,
            stored_value: true,
            charge: false,
        }
    }
}

impl EarningMethods {
    /// Whether money paid by `m` earns points.
    pub fn earns(&self, m: PayMethod) -> bool {
        match m {
            PayMethod::Tender(Tender::Cash) => self.cash,
            PayMethod::Tender(Tender::BankCard) => self.bank_card,
            PayMethod::Tender(Tender::Wechat) => self.wechat,
            PayMethod::Tender(Tender::Alipay) => self.alipay,
            PayMethod::Tender(Tender::OtherWallet) => self.other_wallet,
            PayMethod::StoredValue => self.stored_value,
            PayMethod::Charge => self.charge,
            PayMethod::Points | PayMethod::Coupon => false,
        }
    }
}

/// A bonus for a single spend of at least `min_spend` (the whole bill, all payments).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ThresholdBonus {
    /// The smallest bill that earns the bonus.
    pub min_spend: Money,
    /// Bonus points, not multiplied by level or birthday.
    pub points: i64,
}

/// A calendar period in local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VisitPeriod {
    /// Monday to Sunday.
    Week,
    /// A calendar month.
    Month,
    /// A calendar year.
    Year,
}

/// A bonus for exactly the `nth` visit within a period (not every visit after it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NthVisitBonus {
    /// Which visit earns it; 1 = the first.
    pub nth: u32,
    /// The period visits are counted in.
    pub period: VisitPeriod,
    /// Bonus points, not multiplied by level or birthday.
    pub points: i64,
}

/// When a birthday multiplier applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BirthdayScope {
    /// On the birthday itself (Feb 29 birthdays: Feb 28 in non-leap years).
    Day,
    /// In the ISO week (Monday–Sunday) containing the birthday.
    Week,
    /// In the birthday's month.
    Month,
}

/// A points multiplier around the member's birthday.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BirthdayMultiplier {
    /// When it applies.
    pub scope: BirthdayScope,
    /// The multiplier in basis points: 20000 = 2×.
    pub multiplier_bp: u32,
}

/// When earned points expire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Expiry {
    /// Points never expire.
    Never,
    /// Each lot lives `months` months from the day it was earned.
    Rolling {
        /// Lifetime of a lot in months.
        months: u32,
    },
    /// Points live at least 12 months, then clear on the next `month`/`day`.
    YearlyClearing {
        /// The clearing month, 1–12.
        month: u32,
        /// The clearing day of the month (Feb 29 clears on Feb 28 in non-leap years).
        day: u32,
    },
}

/// Points as cash at the till.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct CashRedemption {
    /// Points worth one yuan.
    pub points_per_yuan: i64,
    /// The largest share of a bill points may pay, in basis points: 5000 = 50%.
    pub max_share_bp: u32,
    /// Whether points may be used as cash at all.
    pub enabled: bool,
}

impl Default for CashRedemption {
    /// 100 points = 1 yuan, at most half of the bill (the common rule in Chinese catering).
    fn default() -> Self {
        CashRedemption {
            points_per_yuan: 100,
            max_share_bp: 5_000,
            enabled: true,
        }
    }
}

/// A tenant's points rules. Stored as JSON; missing keys take their defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct PointsRules {
    /// Whether spends earn points at all.
    pub enabled: bool,
    /// Points per yuan (per 100 fen) of eligible spend, before multipliers.
    pub points_per_yuan: i64,
    /// Which payment methods earn.
    pub earning: EarningMethods,
    /// Bonus for a single large spend; `None` = no such bonus.
    pub threshold_bonus: Option<ThresholdBonus>,
    /// Bonus for the nth visit in a period; `None` = no such bonus.
    pub nth_visit_bonus: Option<NthVisitBonus>,
    /// Birthday multiplier; `None` = no birthday multiplier.
    pub birthday: Option<BirthdayMultiplier>,
    /// Points as cash at the till.
    pub redemption: CashRedemption,
    /// When points expire.
    pub expiry: Expiry,
}

impl Default for PointsRules {
    /// 1 point per yuan on every tender and stored value; no threshold or visit bonus
    /// (merchants opt in to those); double points on the birthday itself (the common,
    /// cheap-to-honour birthday perk); 100 points = 1 yuan for up to half a bill; points
    /// clear every 31 December once at least 12 months old, so each point lives 12–24
    /// months (between the fast-food and high-end norms) and customers get one date to
    /// remember.
    fn default() -> Self {
        PointsRules {
            enabled: true,
            points_per_yuan: 1,
            earning: EarningMethods::default(),
            threshold_bonus: None,
            nth_visit_bonus: None,
            birthday: Some(BirthdayMultiplier {
                scope: BirthdayScope::Day,
                multiplier_bp: 20_000,
            }),
            redemption: CashRedemption::default(),
            expiry: Expiry::YearlyClearing { month: 12, day: 31 },
        }
    }
}

impl PointsRules {
    /// Checks the rules are sensible. Field names are relative to the rules object
    /// (e.g. `redemption.max_share_bp`); a caller nesting them may prefix them.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errs = ValidationErrors::default();
        let mut bad = |field: &str, message: &str| {
            errs.push(FieldError::new(field, "invalid_points_rule", message));
        };
        if !(0..=10_000).contains(&self.points_per_yuan) {
            bad("points_per_yuan", "must be between 0 and 10000");
        }
        if let Some(t) = &self.threshold_bonus {
            if t.min_spend.fen() <= 0 {
                bad("threshold_bonus.min_spend", "must be more than zero");
            }
            if !(1..=1_000_000).contains(&t.points) {
                bad("threshold_bonus.points", "must be between 1 and 1000000");
            }
        }
        if let Some(n) = &self.nth_visit_bonus {
            if !(1..=1_000).contains(&n.nth) {
                bad("nth_visit_bonus.nth", "must be between 1 and 1000");
            }
            if !(1..=1_000_000).contains(&n.points) {
                bad("nth_visit_bonus.points", "must be between 1 and 1000000");
            }
        }
        if let Some(b) = &self.birthday
            && !(10_000..=100_000).contains(&b.multiplier_bp)
        {
            bad(
                "birthday.multiplier_bp",
                "must be between 10000 (1×) and 100000 (10×)",
            );
        }
        if !(1..=1_000_000).contains(&self.redemption.points_per_yuan) {
            bad(
                "redemption.points_per_yuan",
                "must be between 1 and 1000000",
            );
        }
        if self.redemption.max_share_bp > 10_000 {
            bad("redemption.max_share_bp", "must be at most 10000 (100%)");
        }
        match self.expiry {
            Expiry::Never => {}
            Expiry::Rolling { months } => {
                if !(1..=120).contains(&months) {
                    bad("expiry.months", "must be between 1 and 120");
                }
            }
            Expiry::YearlyClearing { month, day } => {
                // 2000 is a leap year, so Feb 29 is accepted (it clamps in other years).
                if NaiveDate::from_ymd_opt(2000, month, day).is_none() {
                    bad("expiry.month", "month and day must form a calendar date");
                }
            }
        }
        errs.into_result(())
    }
}

/// Which rule produced a points entry (stable snake_case codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PointsRule {
    /// Base earning on a spend, including level and birthday multipliers.
    Earn,
    /// The single-spend threshold bonus.
    ThresholdBonus,
    /// The nth-visit bonus.
    NthVisitBonus,
    /// Points used as cash at the till.
    RedeemCash,
    /// Points exchanged for a gift.
    RedeemGift,
    /// Points exchanged for a coupon.
    RedeemCoupon,
    /// Points that expired.
    Expiry,
    /// A manual adjustment by a named staff member.
    Adjustment,
    /// The reversal of an earlier entry (e.g. a refunded bill).
    Reversal,
    /// Points moved between holders.
    Transfer,
}

impl PointsRule {
    /// Every rule, for iteration.
    pub const ALL: [PointsRule; 10] = [
        PointsRule::Earn,
        PointsRule::ThresholdBonus,
        PointsRule::NthVisitBonus,
        PointsRule::RedeemCash,
        PointsRule::RedeemGift,
        PointsRule::RedeemCoupon,
        PointsRule::Expiry,
        PointsRule::Adjustment,
        PointsRule::Reversal,
        PointsRule::Transfer,
    ];

    /// The stable code, as serde spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            PointsRule::Earn => "earn",
            PointsRule::ThresholdBonus => "threshold_bonus",
            PointsRule::NthVisitBonus => "nth_visit_bonus",
            PointsRule::RedeemCash => "redeem_cash",
            PointsRule::RedeemGift => "redeem_gift",
            PointsRule::RedeemCoupon => "redeem_coupon",
            PointsRule::Expiry => "expiry",
            PointsRule::Adjustment => "adjustment",
            PointsRule::Reversal => "reversal",
            PointsRule::Transfer => "transfer",
        }
    }

    /// The rule with code `s`.
    pub fn parse(s: &str) -> Option<Self> {
        PointsRule::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// A human explanation in both languages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Explanation {
    /// Chinese.
    pub zh: String,
    /// English.
    pub en: String,
}

/// One computed award: one ledger entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PointsAward {
    /// The rule that produced it.
    pub rule: PointsRule,
    /// Points awarded (positive).
    pub points: i64,
    /// How the points were computed.
    pub explanation: Explanation,
}

/// The member level as earning sees it (see [`crate::level::LevelDef`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EarnLevel {
    /// Chinese name, e.g. 金卡.
    pub name: String,
    /// English name, e.g. Gold.
    pub name_en: String,
    /// Points multiplier in basis points: 15000 = 1.5×.
    pub multiplier_bp: u32,
}

/// What [`earn`] needs to know about a spend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EarnInput {
    /// How the bill was paid: each method and its amount.
    #[schema(value_type = Vec<Object>)]
    pub payments: Vec<(PayMethod, Money)>,
    /// The member's level, if any.
    pub level: Option<EarnLevel>,
    /// The ordinal of this visit within the NthVisitBonus period, counting this one (1 = first).
    pub visit_ordinal_in_period: u32,
    /// The member's birthday, if known.
    pub birthday: Option<NaiveDate>,
    /// The local date of the spend.
    pub today: NaiveDate,
}

/// Points a spend earns: at most one award per rule, zero-point awards omitted.
///
/// * Base ([`PointsRule::Earn`]): `eligible` is the sum of the payments whose method
///   earns; `floor(eligible_fen × points_per_yuan × level_bp × birthday_bp / (100 × 10000
///   × 10000))`, computed once in i128 so there is one rounding, down. The level factor
///   is 1× without a level, the birthday factor 1× unless the birthday rule applies today.
/// * Threshold bonus: compares the **whole** bill (all payments, including points and
///   coupons) to `min_spend` — it rewards the size of the meal, not how it was paid.
/// * Nth-visit bonus: when `visit_ordinal_in_period` equals `nth` exactly.
///
/// Nothing is awarded when the rules are disabled. Amounts are assumed non-negative
/// (refunds are reversals, not negative spends); a negative eligible sum earns nothing.
pub fn earn(rules: &PointsRules, input: &EarnInput) -> Vec<PointsAward> {
    let mut awards = Vec::new();
    if !rules.enabled {
        return awards;
    }
    let total: i128 = input
        .payments
        .iter()
        .map(|(_, a)| i128::from(a.fen()))
        .sum();
    let eligible: i128 = input
        .payments
        .iter()
        .filter(|(m, _)| rules.earning.earns(*m))
        .map(|(_, a)| i128::from(a.fen()))
        .sum();

    let level_bp = input.level.as_ref().map_or(10_000, |l| l.multiplier_bp);
    let birthday_bp = match (&rules.birthday, input.birthday) {
        (Some(b), Some(bd)) if birthday_applies(b.scope, bd, input.today) => b.multiplier_bp,
        _ => 10_000,
    };
    if eligible > 0 && rules.points_per_yuan > 0 {
        let base = base_points(eligible, rules.points_per_yuan, level_bp, birthday_bp);
        if base > 0 {
            awards.push(PointsAward {
                rule: PointsRule::Earn,
                points: base,
                explanation: explain_base(
                    eligible,
                    total,
                    rules.points_per_yuan,
                    input.level.as_ref(),
                    birthday_bp,
                    base,
                ),
            });
        }
    }

    if let Some(t) = &rules.threshold_bonus
        && t.points > 0
        && total >= i128::from(t.min_spend.fen())
    {
        let y = format_yuan_short(t.min_spend);
        awards.push(PointsAward {
            rule: PointsRule::ThresholdBonus,
            points: t.points,
            explanation: Explanation {
                zh: format!("单笔消费满 {y} 元奖励 {} 分", t.points),
                en: format!(
                    "Single spend of ¥{y} or more: {} bonus {}",
                    t.points,
                    pt_word(t.points)
                ),
            },
        });
    }

    if let Some(n) = &rules.nth_visit_bonus
        && n.points > 0
        && n.nth >= 1
        && input.visit_ordinal_in_period == n.nth
    {
        let (zh_period, en_period) = match n.period {
            VisitPeriod::Week => ("本周", "this week"),
            VisitPeriod::Month => ("本月", "this month"),
            VisitPeriod::Year => ("今年", "this year"),
        };
        awards.push(PointsAward {
            rule: PointsRule::NthVisitBonus,
            points: n.points,
            explanation: Explanation {
                zh: format!("{zh_period}第 {} 次到店奖励 {} 分", n.nth, n.points),
                en: format!(
                    "{} visit {en_period}: {} bonus {}",
                    ordinal_en(n.nth),
                    n.points,
                    pt_word(n.points)
                ),
            },
        });
    }
    awards
}

/// floor(eligible × rate × level × birthday / 10^10); saturates at i64::MAX on absurd
/// inputs (validated rules cannot get there).
fn base_points(eligible_fen: i128, per_yuan: i64, level_bp: u32, birthday_bp: u32) -> i64 {
    let product = eligible_fen
        .checked_mul(i128::from(per_yuan))
        .and_then(|v| v.checked_mul(i128::from(level_bp)))
        .and_then(|v| v.checked_mul(i128::from(birthday_bp)));
    match product {
        Some(p) => i64::try_from(p.div_euclid(100 * BP * BP)).unwrap_or(i64::MAX),
        None => i64::MAX,
    }
}

fn explain_base(
    eligible: i128,
    total: i128,
    per_yuan: i64,
    level: Option<&EarnLevel>,
    birthday_bp: u32,
    points: i64,
) -> Explanation {
    let eligible_m = Money::from_fen(i64::try_from(eligible).unwrap_or(i64::MAX));
    let total_m = Money::from_fen(i64::try_from(total).unwrap_or(i64::MAX));
    let (mut zh, mut en) = if eligible == total {
        (
            format!("消费 {} 元", format_yuan_short(eligible_m)),
            format!("Spent {eligible_m}"),
        )
    } else {
        (
            format!(
                "消费 {} 元中可积分 {} 元",
                format_yuan_short(total_m),
                format_yuan_short(eligible_m)
            ),
            format!("Eligible {eligible_m} of {total_m} spent"),
        )
    };
    zh.push_str(&format!(" × {per_yuan} 分/元"));
    en.push_str(&format!(" × {per_yuan} {}/¥", pt_word(per_yuan)));
    if let Some(l) = level
        && l.multiplier_bp != 10_000
    {
        let x = format_multiplier_bp(l.multiplier_bp);
        zh.push_str(&format!(" × {} {x} 倍", l.name));
        en.push_str(&format!(" × {} {x}×", l.name_en));
    }
    if birthday_bp != 10_000 {
        let x = format_multiplier_bp(birthday_bp);
        zh.push_str(&format!(" × 生日 {x} 倍"));
        en.push_str(&format!(" × birthday {x}×"));
    }
    zh.push_str(&format!(" = {points} 分"));
    en.push_str(&format!(" = {points} {}", pt_word(points)));
    Explanation { zh, en }
}

/// "pt" for one point, "pts" otherwise.
fn pt_word(n: i64) -> &'static str {
    if n == 1 { "pt" } else { "pts" }
}

/// "1st", "2nd", "3rd", "4th", "11th", "21st".
fn ordinal_en(n: u32) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// A multiplier in basis points as a decimal without trailing zeros:
/// 15000 → "1.5", 12500 → "1.25", 20000 → "2", 10001 → "1.0001".
pub fn format_multiplier_bp(bp: u32) -> String {
    let whole = bp / 10_000;
    let frac = bp % 10_000;
    if frac == 0 {
        whole.to_string()
    } else {
        let f = format!("{frac:04}");
        format!("{whole}.{}", f.trim_end_matches('0'))
    }
}

/// A share in basis points as a percentage without trailing zeros: 5000 → "50", 333 → "3.33".
pub fn format_percent_bp(bp: u32) -> String {
    let whole = bp / 100;
    let frac = bp % 100;
    if frac == 0 {
        whole.to_string()
    } else {
        let f = format!("{frac:02}");
        format!("{whole}.{}", f.trim_end_matches('0'))
    }
}

/// Yuan with decimals only when there are fen, no sign or grouping: 28600 → "286",
/// 28650 → "286.50".
pub fn format_yuan_short(m: Money) -> String {
    if m.fen() % 100 == 0 {
        (m.fen() / 100).to_string()
    } else {
        m.to_decimal_string()
    }
}

/// Money with the yuan sign and thousands separators: 1020000 → "¥10,200.00".
pub fn format_money_grouped(m: Money) -> String {
    let s = Money::from_fen(m.fen().saturating_abs()).to_decimal_string();
    let (int_part, frac) = s.split_once('.').unwrap_or((&s, "00"));
    let mut grouped = String::new();
    for (i, c) in int_part.chars().enumerate() {
        if i > 0 && (int_part.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let sign = if m.is_negative() { "-" } else { "" };
    format!("{sign}¥{grouped}.{frac}")
}

/// `birthday` moved into `year`; Feb 29 falls on Feb 28 in non-leap years.
fn birthday_in_year(birthday: NaiveDate, year: i32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(year, birthday.month(), birthday.day()).or_else(|| {
        (birthday.month() == 2 && birthday.day() == 29)
            .then(|| NaiveDate::from_ymd_opt(year, 2, 28))
            .flatten()
    })
}

/// Whether the birthday multiplier applies on `today`.
///
/// `Day`: today is the birthday (Feb 29 birthdays: Feb 28 in non-leap years). `Week`:
/// today is in the ISO week (Monday–Sunday) containing the birthday; a week spanning New
/// Year counts for a birthday on either side of it. `Month`: the birthday's month.
pub fn birthday_applies(scope: BirthdayScope, birthday: NaiveDate, today: NaiveDate) -> bool {
    match scope {
        BirthdayScope::Day => birthday_in_year(birthday, today.year()) == Some(today),
        BirthdayScope::Week => (today.year() - 1..=today.year() + 1)
            .filter_map(|y| birthday_in_year(birthday, y))
            .any(|d| d.iso_week() == today.iso_week()),
        BirthdayScope::Month => birthday.month() == today.month(),
    }
}

/// The first day of the calendar period containing `today` (weeks start on Monday), so
/// the caller can count visits on or after it.
pub fn period_start(period: VisitPeriod, today: NaiveDate) -> NaiveDate {
    match period {
        VisitPeriod::Week => today - Days::new(u64::from(today.weekday().num_days_from_monday())),
        VisitPeriod::Month => today.with_day(1).unwrap_or(today),
        VisitPeriod::Year => today.with_ordinal(1).unwrap_or(today),
    }
}

/// A quote for points as cash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CashQuote {
    /// Points spent.
    pub points: i64,
    /// What they pay of the bill.
    pub value: Money,
    /// How the value was computed.
    pub explanation: Explanation,
}

/// Why points cannot be used or taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PointsError {
    /// Points (or points as cash) are switched off.
    #[error("points cannot be used as cash here")]
    Disabled,
    /// Nothing can be redeemed: no points, a zero bill, or fewer points than one fen.
    #[error("no points can be redeemed on this bill")]
    NothingRedeemable,
    /// The holder has fewer points than needed.
    #[error("insufficient points: {available} available, {needed} needed")]
    InsufficientPoints {
        /// Points held.
        available: i64,
        /// Points needed.
        needed: i64,
    },
    /// A number of points must be positive.
    #[error("the number of points must be positive")]
    NotPositive,
}

impl PointsError {
    /// Stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            PointsError::Disabled => "points_redemption_disabled",
            PointsError::NothingRedeemable => "nothing_redeemable",
            PointsError::InsufficientPoints { .. } => "insufficient_points",
            PointsError::NotPositive => "points_not_positive",
        }
    }
}

/// The most a bill allows: value ≤ floor(bill × max_share_bp / 10000); for `requested`
/// points (None = as many as allowed and available) the value is floor(points × 100 /
/// points_per_yuan) fen capped by the bill limit and by `available`; the points actually
/// spent are ceil(value × points_per_yuan / 100) — never more than requested.
///
/// A request above `available` is capped to it (this is a quote; the cashier sees it).
/// Errors: [`PointsError::Disabled`] (switched off, or a non-positive rate),
/// [`PointsError::NotPositive`] (a request of zero or fewer points),
/// [`PointsError::NothingRedeemable`] (the capped value is zero).
pub fn quote_cash(
    r: &CashRedemption,
    bill: Money,
    available: i64,
    requested: Option<i64>,
) -> Result<CashQuote, PointsError> {
    if !r.enabled || r.points_per_yuan <= 0 {
        return Err(PointsError::Disabled);
    }
    if requested.is_some_and(|p| p <= 0) {
        return Err(PointsError::NotPositive);
    }
    let share = i128::from(r.max_share_bp.min(10_000));
    let bill_limit = (i128::from(bill.fen().max(0)) * share).div_euclid(BP);
    let points = requested.unwrap_or(available).min(available);
    if points <= 0 {
        return Err(PointsError::NothingRedeemable);
    }
    let rate = i128::from(r.points_per_yuan);
    let by_points = (i128::from(points) * 100).div_euclid(rate);
    let value = by_points.min(bill_limit);
    if value <= 0 {
        return Err(PointsError::NothingRedeemable);
    }
    // Spent points round up; value ≤ floor(points × 100 / rate) keeps this ≤ points.
    let spent = (value * rate + 99).div_euclid(100);
    let (value, spent) = (value as i64, spent as i64);
    let value_m = Money::from_fen(value);
    let capped = by_points > bill_limit;
    let per_yuan = r.points_per_yuan;
    let mut zh = format!(
        "积分抵现：{spent} 分抵 {} 元（{per_yuan} 分 = 1 元",
        format_yuan_short(value_m)
    );
    let mut en = format!(
        "Points as cash: {spent} {} for {value_m} ({per_yuan} {} = ¥1",
        pt_word(spent),
        pt_word(per_yuan)
    );
    if capped {
        let pct = format_percent_bp(r.max_share_bp.min(10_000));
        zh.push_str(&format!("，每单最多抵 {pct}%"));
        en.push_str(&format!("; at most {pct}% of a bill"));
    }
    zh.push('）');
    en.push(')');
    Ok(CashQuote {
        points: spent,
        value: value_m,
        explanation: Explanation { zh, en },
    })
}

/// Points earned together, which expire together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Lot {
    /// The lot's id (e.g. the earning entry's id).
    pub id: Uuid,
    /// The local date the points were earned.
    pub earned_on: NaiveDate,
    /// The last valid day; `None` = never expires.
    pub expires_on: Option<NaiveDate>,
    /// Points still in the lot.
    pub remaining: i64,
}

/// `date + months`, clamped to the end of a shorter month; `None` past the calendar's end.
fn add_months(date: NaiveDate, months: u32) -> Option<NaiveDate> {
    date.checked_add_months(Months::new(months))
}

/// The last day (local) a lot earned on `earned_on` is valid.
///
/// `Rolling { months }`: `earned_on + months` (clamped to the month's end) minus one day,
/// so 2026-01-15 + 12 months → valid through 2027-01-14, and 2026-01-31 + 1 month →
/// 2026-02-28 − 1 day = 2026-02-27. `YearlyClearing { month, day }`: points live at least
/// 12 months, then clear on the next clearing date: the first date with that month/day
/// that is ≥ `earned_on + 12 months` (Feb 29 clamps to Feb 28). Dates past the
/// calendar's end saturate to `NaiveDate::MAX`.
pub fn expires_on(expiry: &Expiry, earned_on: NaiveDate) -> Option<NaiveDate> {
    match *expiry {
        Expiry::Never => None,
        Expiry::Rolling { months } => Some(
            add_months(earned_on, months)
                .and_then(|d| d.pred_opt())
                .unwrap_or(NaiveDate::MAX),
        ),
        Expiry::YearlyClearing { month, day } => {
            let Some(anchor) = add_months(earned_on, 12) else {
                return Some(NaiveDate::MAX);
            };
            let on = |year: i32| clamped_date(year, month, day);
            Some(match on(anchor.year()) {
                Some(d) if d >= anchor => d,
                _ => on(anchor.year() + 1).unwrap_or(NaiveDate::MAX),
            })
        }
    }
}

/// The date `year-month-day` with month clamped to 1–12 and day to the month's length.
fn clamped_date(year: i32, month: u32, day: u32) -> Option<NaiveDate> {
    let month = month.clamp(1, 12);
    let first = NaiveDate::from_ymd_opt(year, month, 1)?;
    let last = add_months(first, 1).and_then(|d| d.pred_opt())?.day();
    NaiveDate::from_ymd_opt(year, month, day.clamp(1, last))
}

/// Takes `points` from lots, soonest-expiring first (never-expiring last; ties by
/// `earned_on` then id). Returns (lot id, points taken) in order; taking 0 returns nothing.
/// Lots with nothing left are skipped. The caller passes live lots (expire first).
/// Errors: [`PointsError::NotPositive`] for a negative request,
/// [`PointsError::InsufficientPoints`] if the lots hold fewer points.
pub fn consume_lots(lots: &[Lot], points: i64) -> Result<Vec<(Uuid, i64)>, PointsError> {
    if points < 0 {
        return Err(PointsError::NotPositive);
    }
    let mut live: Vec<&Lot> = lots.iter().filter(|l| l.remaining > 0).collect();
    let available = live.iter().fold(0i64, |a, l| a.saturating_add(l.remaining));
    if available < points {
        return Err(PointsError::InsufficientPoints {
            available,
            needed: points,
        });
    }
    live.sort_by_key(|l| (l.expires_on.is_none(), l.expires_on, l.earned_on, l.id));
    let mut left = points;
    let mut taken = Vec::new();
    for lot in live {
        if left == 0 {
            break;
        }
        let take = lot.remaining.min(left);
        taken.push((lot.id, take));
        left -= take;
    }
    Ok(taken)
}

/// The lots expired as of `today` (`expires_on < today`) with points left.
pub fn expired_lots(lots: &[Lot], today: NaiveDate) -> Vec<&Lot> {
    lots.iter()
        .filter(|l| l.remaining > 0 && l.expires_on.is_some_and(|d| d < today))
        .collect()
}

/// "积分到期 120 分（有效期至 2026-12-31）".
pub fn explain_expiry(points: i64, expires_on: NaiveDate) -> Explanation {
    Explanation {
        zh: format!("积分到期 {points} 分（有效期至 {expires_on}）"),
        en: format!(
            "{points} {} expired (valid until {expires_on})",
            pt_word(points)
        ),
    }
}

/// "兑换礼品「{gift}」使用 500 分".
pub fn explain_redeem_gift(points: i64, gift: &str) -> Explanation {
    Explanation {
        zh: format!("兑换礼品「{gift}」使用 {points} 分"),
        en: format!("Gift \"{gift}\" redeemed for {points} {}", pt_word(points)),
    }
}

/// "兑换优惠券「{coupon}」使用 300 分".
pub fn explain_redeem_coupon(points: i64, coupon: &str) -> Explanation {
    Explanation {
        zh: format!("兑换优惠券「{coupon}」使用 {points} 分"),
        en: format!(
            "Coupon \"{coupon}\" redeemed for {points} {}",
            pt_word(points)
        ),
    }
}

/// A manual adjustment by staff, signed: "人工调整 +50 分：{reason}".
pub fn explain_adjustment(points: i64, reason: &str) -> Explanation {
    Explanation {
        zh: format!("人工调整 {points:+} 分：{reason}"),
        en: format!("Manual adjustment {points:+} {}: {reason}", pt_word(points)),
    }
}

/// The reversal of an earlier entry, signed: "冲正 -429 分：{reason}".
pub fn explain_reversal(points: i64, reason: &str) -> Explanation {
    Explanation {
        zh: format!("冲正 {points:+} 分：{reason}"),
        en: format!("Reversal {points:+} {}: {reason}", pt_word(points)),
    }
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
    fn gold() -> EarnLevel {
        EarnLevel {
            name: "金卡".into(),
            name_en: "Gold".into(),
            multiplier_bp: 15_000,
        }
    }
    fn input(payments: Vec<(PayMethod, Money)>, level: Option<EarnLevel>) -> EarnInput {
        EarnInput {
            payments,
            level,
            visit_ordinal_in_period: 1,
            birthday: None,
            today: d(2026, 5, 20),
        }
    }
    const WECHAT: PayMethod = PayMethod::Tender(Tender::Wechat);

    #[test]
    fn the_issue_example() {
        let rules = PointsRules::default();
        let a = earn(&rules, &input(vec![(WECHAT, y(286))], Some(gold())));
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].rule, PointsRule::Earn);
        assert_eq!(a[0].points, 429);
        assert_eq!(
            a[0].explanation.zh,
            "消费 286 元 × 1 分/元 × 金卡 1.5 倍 = 429 分"
        );
        assert_eq!(
            a[0].explanation.en,
            "Spent ¥286.00 × 1 pt/¥ × Gold 1.5× = 429 pts"
        );
    }

    #[test]
    fn rounds_down_and_shows_fen_only_when_present() {
        let rules = PointsRules::default();
        // 286.50 × 1.5 = 429.75 → 429.
        let a = earn(
            &rules,
            &input(vec![(WECHAT, Money::from_fen(28_650))], Some(gold())),
        );
        assert_eq!(a[0].points, 429);
        assert_eq!(
            a[0].explanation.zh,
            "消费 286.50 元 × 1 分/元 × 金卡 1.5 倍 = 429 分"
        );
        // A 1× level is not shown; 0.99 yuan earns nothing and no award is made.
        let member = EarnLevel {
            name: "普通会员".into(),
            name_en: "Member".into(),
            multiplier_bp: 10_000,
        };
        let a = earn(&rules, &input(vec![(WECHAT, y(1))], Some(member.clone())));
        assert_eq!(a[0].explanation.zh, "消费 1 元 × 1 分/元 = 1 分");
        assert_eq!(a[0].explanation.en, "Spent ¥1.00 × 1 pt/¥ = 1 pt");
        assert!(
            earn(
                &rules,
                &input(vec![(WECHAT, Money::from_fen(99))], Some(member))
            )
            .is_empty()
        );
    }

    #[test]
    fn tenders_that_do_not_earn() {
        let mut rules = PointsRules::default();
        let pays = vec![
            (PayMethod::Tender(Tender::Cash), y(100)),
            (PayMethod::StoredValue, y(50)),
            (PayMethod::Charge, y(40)),
            (PayMethod::Points, y(20)),
            (PayMethod::Coupon, y(10)),
        ];
        // Default: cash + stored value earn; charge, points, coupon do not.
        let a = earn(&rules, &input(pays.clone(), None));
        assert_eq!(a[0].points, 150);
        assert_eq!(
            a[0].explanation.zh,
            "消费 220 元中可积分 150 元 × 1 分/元 = 150 分"
        );
        assert_eq!(
            a[0].explanation.en,
            "Eligible ¥150.00 of ¥220.00 spent × 1 pt/¥ = 150 pts"
        );
        rules.earning.stored_value = false;
        rules.earning.cash = false;
        assert!(earn(&rules, &input(pays.clone(), None)).is_empty());
        rules.earning.charge = true;
        assert_eq!(earn(&rules, &input(pays.clone(), None))[0].points, 40);
        let m = EarningMethods {
            cash: false,
            bank_card: false,
            wechat: false,
            alipay: false,
            other_wallet: false,
            stored_value: false,
            charge: false,
        };
        for t in Tender::ALL {
            assert!(!m.earns(PayMethod::Tender(t)));
            assert!(EarningMethods::default().earns(PayMethod::Tender(t)));
        }
        let all = EarningMethods {
            charge: true,
            ..EarningMethods::default()
        };
        assert!(!all.earns(PayMethod::Points));
        assert!(!all.earns(PayMethod::Coupon));
        rules.enabled = false;
        assert!(earn(&rules, &input(pays, None)).is_empty());
    }

    #[test]
    fn threshold_bonus_compares_the_whole_bill() {
        let rules = PointsRules {
            threshold_bonus: Some(ThresholdBonus {
                min_spend: y(1_000),
                points: 100,
            }),
            ..PointsRules::default()
        };
        let a = earn(
            &rules,
            &input(vec![(WECHAT, y(900)), (PayMethod::Coupon, y(100))], None),
        );
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].points, 900);
        assert_eq!(a[1].rule, PointsRule::ThresholdBonus);
        assert_eq!(a[1].points, 100);
        assert_eq!(a[1].explanation.zh, "单笔消费满 1000 元奖励 100 分");
        assert_eq!(
            a[1].explanation.en,
            "Single spend of ¥1000 or more: 100 bonus pts"
        );
        let a = earn(
            &rules,
            &input(vec![(WECHAT, Money::from_fen(99_999))], None),
        );
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].rule, PointsRule::Earn);
    }

    #[test]
    fn nth_visit_bonus_only_on_the_nth() {
        let rules = PointsRules {
            nth_visit_bonus: Some(NthVisitBonus {
                nth: 3,
                period: VisitPeriod::Month,
                points: 50,
            }),
            ..PointsRules::default()
        };
        for (ordinal, bonus) in [(1, false), (2, false), (3, true), (4, false)] {
            let mut i = input(vec![(WECHAT, y(10))], None);
            i.visit_ordinal_in_period = ordinal;
            let a = earn(&rules, &i);
            let b = a.iter().find(|a| a.rule == PointsRule::NthVisitBonus);
            assert_eq!(b.is_some(), bonus, "visit {ordinal}");
            if let Some(b) = b {
                assert_eq!(b.points, 50);
                assert_eq!(b.explanation.zh, "本月第 3 次到店奖励 50 分");
                assert_eq!(b.explanation.en, "3rd visit this month: 50 bonus pts");
            }
        }
        // A visit paid wholly by points still counts as a visit.
        let mut i = input(vec![(PayMethod::Points, y(10))], None);
        i.visit_ordinal_in_period = 3;
        let a = earn(&rules, &i);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].rule, PointsRule::NthVisitBonus);
        assert_eq!(ordinal_en(1), "1st");
        assert_eq!(ordinal_en(12), "12th");
        assert_eq!(ordinal_en(22), "22nd");
        assert_eq!(ordinal_en(111), "111th");
    }

    #[test]
    fn period_starts() {
        // 2026-05-20 is a Wednesday.
        assert_eq!(
            period_start(VisitPeriod::Week, d(2026, 5, 20)),
            d(2026, 5, 18)
        );
        assert_eq!(
            period_start(VisitPeriod::Week, d(2026, 5, 18)),
            d(2026, 5, 18)
        );
        assert_eq!(
            period_start(VisitPeriod::Week, d(2026, 5, 24)),
            d(2026, 5, 18)
        );
        assert_eq!(
            period_start(VisitPeriod::Month, d(2026, 5, 20)),
            d(2026, 5, 1)
        );
        assert_eq!(
            period_start(VisitPeriod::Year, d(2026, 5, 20)),
            d(2026, 1, 1)
        );
    }

    #[test]
    fn birthday_scopes() {
        let bd = d(1990, 5, 20);
        assert!(birthday_applies(BirthdayScope::Day, bd, d(2026, 5, 20)));
        assert!(!birthday_applies(BirthdayScope::Day, bd, d(2026, 5, 21)));
        // 2026-05-20 is a Wednesday: its ISO week is 18–24 May.
        assert!(birthday_applies(BirthdayScope::Week, bd, d(2026, 5, 18)));
        assert!(birthday_applies(BirthdayScope::Week, bd, d(2026, 5, 24)));
        assert!(!birthday_applies(BirthdayScope::Week, bd, d(2026, 5, 25)));
        assert!(!birthday_applies(BirthdayScope::Week, bd, d(2026, 5, 17)));
        assert!(birthday_applies(BirthdayScope::Month, bd, d(2026, 5, 1)));
        assert!(!birthday_applies(BirthdayScope::Month, bd, d(2026, 6, 1)));
        // Feb 29: Feb 28 in non-leap years, Feb 29 in leap years.
        let leap = d(2000, 2, 29);
        assert!(birthday_applies(BirthdayScope::Day, leap, d(2026, 2, 28)));
        assert!(!birthday_applies(BirthdayScope::Day, leap, d(2026, 3, 1)));
        assert!(birthday_applies(BirthdayScope::Day, leap, d(2028, 2, 29)));
        assert!(!birthday_applies(BirthdayScope::Day, leap, d(2028, 2, 28)));
        assert!(birthday_applies(BirthdayScope::Week, leap, d(2026, 2, 23)));
        assert!(birthday_applies(BirthdayScope::Month, leap, d(2026, 2, 1)));
        // A week spanning New Year: 2026-12-28 (Mon) to 2027-01-03 (Sun).
        assert!(birthday_applies(
            BirthdayScope::Week,
            d(1990, 12, 31),
            d(2027, 1, 2)
        ));
        assert!(birthday_applies(
            BirthdayScope::Week,
            d(1990, 1, 2),
            d(2026, 12, 29)
        ));
    }

    #[test]
    fn birthday_multiplier_in_earning() {
        let rules = PointsRules::default(); // Day, 2×
        let mut i = input(vec![(WECHAT, y(286))], Some(gold()));
        i.birthday = Some(d(1990, 5, 20));
        let a = earn(&rules, &i);
        assert_eq!(a[0].points, 858);
        assert_eq!(
            a[0].explanation.zh,
            "消费 286 元 × 1 分/元 × 金卡 1.5 倍 × 生日 2 倍 = 858 分"
        );
        assert_eq!(
            a[0].explanation.en,
            "Spent ¥286.00 × 1 pt/¥ × Gold 1.5× × birthday 2× = 858 pts"
        );
        i.today = d(2026, 5, 21);
        assert_eq!(earn(&rules, &i)[0].points, 429);
        let month = PointsRules {
            birthday: Some(BirthdayMultiplier {
                scope: BirthdayScope::Month,
                multiplier_bp: 12_500,
            }),
            ..PointsRules::default()
        };
        // 286 × 1.5 × 1.25 = 536.25 → 536, one rounding.
        assert_eq!(earn(&month, &i)[0].points, 536);
    }

    #[test]
    fn formats_multipliers_and_money() {
        assert_eq!(format_multiplier_bp(15_000), "1.5");
        assert_eq!(format_multiplier_bp(12_500), "1.25");
        assert_eq!(format_multiplier_bp(20_000), "2");
        assert_eq!(format_multiplier_bp(10_001), "1.0001");
        assert_eq!(format_multiplier_bp(5_000), "0.5");
        assert_eq!(format_percent_bp(5_000), "50");
        assert_eq!(format_percent_bp(3_333), "33.33");
        assert_eq!(format_percent_bp(1_250), "12.5");
        assert_eq!(format_yuan_short(Money::from_fen(28_650)), "286.50");
        assert_eq!(format_yuan_short(Money::from_fen(5)), "0.05");
        assert_eq!(
            format_money_grouped(Money::from_fen(1_020_000)),
            "¥10,200.00"
        );
        assert_eq!(format_money_grouped(Money::from_fen(99_999)), "¥999.99");
        assert_eq!(
            format_money_grouped(Money::from_fen(123_456_789)),
            "¥1,234,567.89"
        );
        assert_eq!(
            format_money_grouped(Money::from_fen(-100_000)),
            "-¥1,000.00"
        );
    }

    #[test]
    fn quotes_cash() {
        let r = CashRedemption::default();
        // 100 pts = ¥1; a ¥100 bill allows ¥50; 8,000 points available → 5,000 spent.
        let q = quote_cash(&r, y(100), 8_000, None).unwrap();
        assert_eq!((q.points, q.value), (5_000, y(50)));
        assert_eq!(
            q.explanation.zh,
            "积分抵现：5000 分抵 50 元（100 分 = 1 元，每单最多抵 50%）"
        );
        assert_eq!(
            q.explanation.en,
            "Points as cash: 5000 pts for ¥50.00 (100 pts = ¥1; at most 50% of a bill)"
        );
        // Fewer points than the cap: all of them; odd points leave the remainder.
        let q = quote_cash(&r, y(100), 1_234, None).unwrap();
        assert_eq!((q.points, q.value), (1_234, Money::from_fen(1_234)));
        assert_eq!(
            q.explanation.zh,
            "积分抵现：1234 分抵 12.34 元（100 分 = 1 元）"
        );
        // A request is honoured, capped by the holding.
        let q = quote_cash(&r, y(100), 1_234, Some(300)).unwrap();
        assert_eq!((q.points, q.value), (300, y(3)));
        let q = quote_cash(&r, y(100), 1_234, Some(9_999)).unwrap();
        assert_eq!(q.points, 1_234);
        // 150 points per yuan: 100 points → floor(100 × 100 / 150) = 66 fen, and 66 fen
        // cost ceil(66 × 150 / 100) = 99 points (spent rounds up, never above request).
        let r150 = CashRedemption {
            points_per_yuan: 150,
            ..r.clone()
        };
        let q = quote_cash(&r150, y(100), 1_000, Some(100)).unwrap();
        assert_eq!((q.points, q.value), (99, Money::from_fen(66)));
        // Capped by the bill: ¥1.01 bill → 50 fen → ceil(50 × 1.5) = 75 points.
        let q = quote_cash(&r150, Money::from_fen(101), 1_000, None).unwrap();
        assert_eq!((q.points, q.value), (75, Money::from_fen(50)));
        // 1 point is worth less than a fen at 150/yuan.
        assert_eq!(
            quote_cash(&r150, y(100), 1, None),
            Err(PointsError::NothingRedeemable)
        );
        assert_eq!(
            quote_cash(&r, y(100), 0, None),
            Err(PointsError::NothingRedeemable)
        );
        assert_eq!(
            quote_cash(&r, Money::ZERO, 500, None),
            Err(PointsError::NothingRedeemable)
        );
        assert_eq!(
            quote_cash(&r, y(100), 500, Some(0)),
            Err(PointsError::NotPositive)
        );
        let off = CashRedemption {
            enabled: false,
            ..r
        };
        assert_eq!(
            quote_cash(&off, y(100), 500, None),
            Err(PointsError::Disabled)
        );
    }

    #[test]
    fn expiry_dates() {
        let rolling = |m| Expiry::Rolling { months: m };
        assert_eq!(
            expires_on(&rolling(1), d(2026, 1, 31)),
            Some(d(2026, 2, 27))
        );
        assert_eq!(
            expires_on(&rolling(1), d(2028, 1, 31)),
            Some(d(2028, 2, 28))
        );
        assert_eq!(
            expires_on(&rolling(1), d(2026, 1, 15)),
            Some(d(2026, 2, 14))
        );
        assert_eq!(
            expires_on(&rolling(24), d(2026, 3, 1)),
            Some(d(2028, 2, 29))
        );
        assert_eq!(expires_on(&Expiry::Never, d(2026, 3, 1)), None);
        let dec31 = Expiry::YearlyClearing { month: 12, day: 31 };
        assert_eq!(expires_on(&dec31, d(2025, 3, 5)), Some(d(2026, 12, 31)));
        assert_eq!(expires_on(&dec31, d(2025, 12, 31)), Some(d(2026, 12, 31)));
        assert_eq!(expires_on(&dec31, d(2025, 1, 1)), Some(d(2026, 12, 31)));
        let jun30 = Expiry::YearlyClearing { month: 6, day: 30 };
        assert_eq!(expires_on(&jun30, d(2025, 6, 30)), Some(d(2026, 6, 30)));
        assert_eq!(expires_on(&jun30, d(2025, 7, 1)), Some(d(2027, 6, 30)));
        let feb29 = Expiry::YearlyClearing { month: 2, day: 29 };
        assert_eq!(expires_on(&feb29, d(2025, 1, 10)), Some(d(2026, 2, 28)));
        assert_eq!(expires_on(&feb29, d(2027, 1, 10)), Some(d(2028, 2, 29)));
        // Earned on a leap day: +12 months clamps to Feb 28, which is the clearing day.
        assert_eq!(expires_on(&feb29, d(2028, 2, 29)), Some(d(2029, 2, 28)));
        assert_eq!(
            explain_expiry(120, d(2026, 12, 31)).zh,
            "积分到期 120 分（有效期至 2026-12-31）"
        );
        assert_eq!(
            explain_expiry(120, d(2026, 12, 31)).en,
            "120 pts expired (valid until 2026-12-31)"
        );
    }

    fn lot(n: u128, earned: NaiveDate, exp: Option<NaiveDate>, remaining: i64) -> Lot {
        Lot {
            id: Uuid::from_u128(n),
            earned_on: earned,
            expires_on: exp,
            remaining,
        }
    }

    #[test]
    fn consumes_soonest_expiring_first() {
        let lots = vec![
            lot(1, d(2026, 1, 1), None, 100),
            lot(2, d(2025, 6, 1), Some(d(2026, 12, 31)), 30),
            lot(3, d(2025, 2, 1), Some(d(2026, 12, 31)), 20),
            lot(4, d(2026, 2, 1), Some(d(2026, 3, 31)), 10),
            lot(5, d(2025, 1, 1), Some(d(2026, 1, 31)), 0),
        ];
        let ids = |v: Vec<(Uuid, i64)>| {
            v.into_iter()
                .map(|(id, p)| (id.as_u128(), p))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            ids(consume_lots(&lots, 45).unwrap()),
            vec![(4, 10), (3, 20), (2, 15)]
        );
        assert_eq!(
            ids(consume_lots(&lots, 160).unwrap()),
            vec![(4, 10), (3, 20), (2, 30), (1, 100)]
        );
        assert!(consume_lots(&lots, 0).unwrap().is_empty());
        assert_eq!(
            consume_lots(&lots, 161),
            Err(PointsError::InsufficientPoints {
                available: 160,
                needed: 161
            })
        );
        assert_eq!(consume_lots(&lots, -1), Err(PointsError::NotPositive));
        let expired: Vec<u128> = expired_lots(&lots, d(2027, 1, 1))
            .iter()
            .map(|l| l.id.as_u128())
            .collect();
        assert_eq!(expired, vec![2, 3, 4]);
        // The last valid day is still valid.
        assert_eq!(expired_lots(&lots, d(2026, 3, 31)).len(), 0);
        assert_eq!(expired_lots(&lots, d(2026, 4, 1)).len(), 1);
    }

    #[test]
    fn codes_round_trip_and_defaults() {
        for r in PointsRule::ALL {
            assert_eq!(PointsRule::parse(r.as_str()), Some(r));
            assert_eq!(
                serde_json::to_value(r).unwrap(),
                serde_json::json!(r.as_str())
            );
        }
        assert_eq!(PointsRule::parse("nope"), None);
        let r: PointsRules = serde_json::from_str(r#"{"points_per_yuan": 2}"#).unwrap();
        assert_eq!(r.points_per_yuan, 2);
        assert_eq!(r.redemption, CashRedemption::default());
        assert!(PointsRules::default().validate().is_ok());
        let json = serde_json::to_string(&PointsRules::default()).unwrap();
        assert_eq!(
            serde_json::from_str::<PointsRules>(&json).unwrap(),
            PointsRules::default()
        );
        let bad = PointsRules {
            points_per_yuan: -1,
            redemption: CashRedemption {
                points_per_yuan: 0,
                max_share_bp: 10_001,
                enabled: true,
            },
            expiry: Expiry::YearlyClearing { month: 2, day: 30 },
            ..PointsRules::default()
        };
        let fields: Vec<String> = bad
            .validate()
            .unwrap_err()
            .0
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(
            fields,
            vec![
                "points_per_yuan",
                "redemption.points_per_yuan",
                "redemption.max_share_bp",
                "expiry.month"
            ]
        );
        assert_eq!(
            explain_redeem_gift(500, "招牌毛肚").zh,
            "兑换礼品「招牌毛肚」使用 500 分"
        );
        assert_eq!(
            explain_redeem_coupon(300, "满100减20").zh,
            "兑换优惠券「满100减20」使用 300 分"
        );
        assert_eq!(explain_adjustment(50, "补录").zh, "人工调整 +50 分：补录");
        assert_eq!(explain_reversal(-429, "退单").en, "Reversal -429 pts: 退单");
    }

    fn pay_method() -> impl Strategy<Value = PayMethod> {
        prop_oneof![
            (0..5usize).prop_map(|i| PayMethod::Tender(Tender::ALL[i])),
            Just(PayMethod::StoredValue),
            Just(PayMethod::Charge),
            Just(PayMethod::Points),
            Just(PayMethod::Coupon),
        ]
    }

    proptest! {
           #[test]
           fn awards_explain_their_own_points(
               pays in prop::collection::vec((pay_method(), 0i64..10_000_000), 0..5),
               per_yuan in 0i64..20,
               level_bp in 0u32..50_000,
               bday_bp in 10_000u32..40_000,
               ordinal in 1u32..6,
               bday_day in 1u32..29,
           ) {
               let rules = PointsRules {
                   points_per_yuan: per_yuan,
                   threshold_bonus: Some(ThresholdBonus { min_spend: y(500), points: 88 }),
                   nth_visit_bonus: Some(NthVisitBonus { nth: 3, period: VisitPeriod::Week, points: 1 }),
                   birthday: Some(BirthdayMultiplier { scope: BirthdayScope::Month, multiplier_bp: bday_bp }),
                   ..PointsRules::default()
               };
               let i = EarnInput {
                   payments: pays.iter().map(|&(m, f)| (m, Money::from_fen(f))).collect(),
                   level: Some(EarnLevel { name: "银卡".into(), name_en: "Silver".into(), multiplier_bp: level_bp }),
                   visit_ordinal_in_period: ordinal,
                   birthday: Some(d(1990, 5, bday_day)),
                   today: d(2026, 5, 20),
               };
               let awards = earn(&rules, &i);
               let mut seen = std::collections::HashSet::new();
               for a in &awards {
                   prop_assert!(a.points > 0);
                   prop_assert!(seen.insert(a.rule), "one award per rule");
                   let zh_end = format!("{} 分", a.points);
                   prop_assert!(a.explanation.zh.ends_with(&zh_end), "{}", a.explanation.zh);
                   prop_assert!(a.explanation.en.contains(&a.points.to_string()));
                   if a.rule == PointsRule::Earn {
                       let zh_eq = format!("= {} 分", a.points);
                       let en_eq = format!("= {} {}", a.points, pt_word(a.points));
                       prop_assert!(a.explanation.zh.ends_with(&zh_eq));
                       prop_assert!(a.explanation.en.ends_with(&en_eq));
                       // Never more than eligible yuan × rate × multipliers; and floor exactly.
                       let eligible: i128 = pays.iter()
                           .filter(|(m, _)| rules.earning.earns(*m))
                           .map(|&(_, f)| i128::from(f)).sum();
                       let exact = eligible * i128::from(per_yuan) * i128::from(level_bp) * i128::from(bday_bp);
                       let scaled = i128::from(a.points) * 100 * BP * BP;
                       prop_assert!(scaled <= exact);
                       prop_assert!(exact - scaled < 100 * BP * BP);
                   }
               }
           }

           #[test]
           fn consume_takes_exactly_what_is_asked(
               rems in prop::collection::vec(0i64..1_000, 0..8),
               exps in prop::collection::vec(prop::option::of(0u64..800), 8),
               ask in 0i64..5_000,
           ) {
               let lots: Vec<Lot> = rems.iter().enumerate().map(|(n, &r)| lot(
                   n as u128,
                   d(2025, 1, 1),
                   exps[n].map(|x| d(2025, 1, 1) + Days::new(x)),
                   r,
               )).collect();
               let total: i64 = rems.iter().sum();
               match consume_lots(&lots, ask) {
                   Ok(taken) => {
                       prop_assert!(ask <= total);
                       prop_assert_eq!(taken.iter().map(|t| t.1).sum::<i64>(), ask);
                       let mut prev: Option<&Lot> = None;
                       for (id, p) in &taken {
                           let l = lots.iter().find(|l| l.id == *id).unwrap();
                           prop_assert!(*p > 0 && *p <= l.remaining);
                           if let Some(prev) = prev {
                               // Every lot before this one was emptied, and expires no later.
                               let prev_taken = taken.iter().find(|t| t.0 == prev.id).unwrap().1;
                               prop_assert_eq!(prev_taken, prev.remaining);
                               let ordered = match (prev.expires_on, l.expires_on) {
                                   (Some(a), Some(b)) => a <= b,
                                   (Some(_), None) | (None, None) => true,
                                   (None, Some(_)) => false,
                               };
    prop_assert!(ordered);
                           }
                           prev = Some(l);
                       }
                   }
                   Err(e) => {
                       prop_assert!(ask > total);
                       prop_assert_eq!(e, PointsError::InsufficientPoints { available: total, needed: ask });
                   }
               }
           }

           #[test]
           fn quote_cash_stays_within_limits(
               bill in 0i64..10_000_000,
               available in 0i64..1_000_000,
               requested in prop::option::of(1i64..1_000_000),
               per_yuan in 1i64..1_000,
               share in 0u32..=10_000,
           ) {
               let r = CashRedemption { points_per_yuan: per_yuan, max_share_bp: share, enabled: true };
               if let Ok(q) = quote_cash(&r, Money::from_fen(bill), available, requested) {
                   prop_assert!(q.value.fen() > 0);
                   prop_assert!(i128::from(q.value.fen()) * BP <= i128::from(bill) * i128::from(share));
                   prop_assert!(q.points <= available);
                   if let Some(req) = requested {
                       prop_assert!(q.points <= req);
                   }
                   // Spent points cover the value (round up) and are not more than one over.
                   let cost = i128::from(q.value.fen()) * i128::from(per_yuan);
                   prop_assert!(i128::from(q.points) * 100 >= cost);
                   prop_assert!(i128::from(q.points) * 100 < cost + 100);
               }
           }
       }
}
