//! Checkout pricing: from bill lines to a fully itemised breakdown. A pure function.
//!
//! [`price`] takes the bill lines (with member prices already resolved for this buyer by
//! [`crate::menu::quote`]), who the buyer is, the coupons and points offered and the
//! tenant's [`CheckoutRules`], and returns a [`Breakdown`]: every discount with its
//! label, each line's share of it, and the amount due. Nothing is read or written.
//!
//! # The order of steps (fixed)
//!
//! 1. **Member price** (会员价). A line whose `member_unit_price` is below its
//!    `unit_price` is priced at it; the difference × quantity is that line's
//!    [`DiscountKind::MemberPrice`]. It applies whether or not the line joins discounts
//!    (a member price is the item's own price, not a bill discount).
//! 2. **Level discount** (等级折扣). `level_discount_bp` off the lines that join
//!    discounts and are **not** at a member price (members do not get both), except the
//!    lines step 3 takes over. → [`DiscountKind::LevelDiscount`].
//! 3. **Payment rule** (the seed's "stored-value members paying by other means get 20%
//!    off"). Active when `stored_value_member && !pays_with_stored_value &&
//!    stored_value_member_off_bp > 0`; it is `stored_value_member_off_bp` off the lines
//!    that join discounts. → [`DiscountKind::PaymentRule`].
//!    * `payment_rule_replaces_level_discount = true` (default): a line gets the level
//!      discount or the payment rule, never both — the payment rule where its rate is
//!      strictly higher than the level discount the line would get. Lines at a member
//!      price would get no level discount, so they take the payment rule; the other
//!      joining lines take it only when `stored_value_member_off_bp > level_discount_bp`
//!      (on a tie the level discount stays). Since both rates are per bill, this is
//!      decided by comparing the two rates, before step 2, so no line's discount is ever
//!      computed and then withdrawn.
//!    * `false`: they compound: the payment rule is taken off what is left after step 2
//!      (5% then 20% off = 24% off).
//! 4. **Coupons** (优惠券), in the order given. See [`price`] for the acceptance rules.
//!    Each coupon's eligible lines are those that join discounts and, unless the coupon
//!    `stacks_with_member_price`, are not at a member price; thresholds are judged on the
//!    eligible lines' net **after** the earlier steps and earlier coupons (two 满200减20
//!    coupons need ¥400). Cash: `min(value, eligible)`; discount coupon:
//!    [`coupon::discount_for`] (half up to the fen, then the cap); item voucher: one unit
//!    of the dish at what the buyer is paying for it now (the line's net ÷ quantity, half
//!    up), taken off that line only (the dearest such line when there are several).
//! 5. **Points as cash** (积分抵现) on what is left: [`points::quote_cash`] with the bill
//!    = the amount after step 4; only when points are requested (`Some(n)`, `n > 0`).
//!    Applies to all lines (points pay for the meal, like cash).
//! 6. **Rounding-off** (抹零) of the final amount to the jiao or yuan. `Down` takes the
//!    small change off (customer's favour). `Nearest` rounds half up; when it rounds
//!    **up** the [`DiscountKind::Rounding`] amount is **negative** (a surcharge of at most
//!    half a unit; its label is 四舍五入 instead of 抹零). Applies to all lines.
//!
//! # Rounding and apportioning
//!
//! Percentages (steps 2 and 3) are computed once on the subtotal of the lines they apply
//! to, rounded half up to the fen (`round(subtotal × bp / 10000)`), like
//! [`coupon::discount_for`]. Every bill-level amount (percentages, coupons except item
//! vouchers, points, rounding) is then apportioned to its lines in proportion to their
//! current nets by the largest-remainder method (ties to the earlier line), so each
//! line's share is whole fen, the shares add up exactly, and a positive share never
//! exceeds the line's net. A line's `discounts` lists its non-zero shares in the order
//! the discounts were taken.
//!
//! # Invariants
//!
//! Checked by [`Breakdown::check_invariants`] (a debug assertion in [`price`]) and by
//! property tests: `gross = Σ line.gross`; for each line `line.gross − Σ line.discounts =
//! line.net ≥ 0`; per kind, `Σ` of the lines' shares = `Σ` of the discounts' amounts;
//! `total_discount = Σ discounts`; `gross − total_discount = amount_due = Σ line.net ≥ 0`.

use crate::coupon::{self, CouponKind};
use crate::ids::MenuItemId;
use crate::menu::MAX_PRICE;
use crate::money::Money;
use crate::points::{self, CashRedemption, Explanation, PointsError, format_percent_bp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The largest quantity on one line (a typo guard; keeps every sum far from overflow).
pub const MAX_QUANTITY: u32 = 10_000;
/// Basis points in a whole (100%).
const BP: i128 = 10_000;

/// One bill line as the till sends it, with the member price already resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PricingLine {
    /// The menu item, if the line is one (an open-priced line has none).
    #[serde(default)]
    pub item_id: Option<MenuItemId>,
    /// The dish's name as printed.
    pub name: String,
    /// How many; 1 to [`MAX_QUANTITY`].
    pub quantity: u32,
    /// The regular unit price, 0 to [`MAX_PRICE`].
    pub unit_price: Money,
    /// The member unit price this buyer is eligible for (from [`crate::menu::quote`]);
    /// `None` = none. Applied only when below `unit_price`; never above it.
    #[serde(default)]
    pub member_unit_price: Option<Money>,
    /// Whether the line takes bill discounts (level discount, payment rule, coupons).
    pub joins_discounts: bool,
}

/// A coupon the cashier entered, already checked redeemable (dates, store, level, status)
/// by [`coupon::check_redeemable`]; pricing decides whether the bill allows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CouponOffer {
    /// The coupon's code, e.g. "ABCD-EFGH-JKMN-PQRS".
    pub code: String,
    /// The coupon's name (Chinese), e.g. "满 200 减 20".
    pub name: String,
    /// What it is worth.
    pub kind: CouponKind,
    /// Whether it may go on a bill beyond [`CheckoutRules::coupons_per_bill`].
    #[serde(default)]
    pub stacks_with_coupons: bool,
    /// Whether it applies to lines at a member price.
    #[serde(default)]
    pub stacks_with_member_price: bool,
}

/// What small change is rounded off to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoundingUnit {
    /// No rounding: pay to the fen.
    None,
    /// To the jiao (0.10).
    #[default]
    Jiao,
    /// To the yuan (1.00).
    Yuan,
}

impl RoundingUnit {
    /// The unit in fen (1 for no rounding).
    pub fn fen(self) -> i64 {
        match self {
            RoundingUnit::None => 1,
            RoundingUnit::Jiao => 10,
            RoundingUnit::Yuan => 100,
        }
    }
}

/// How small change is rounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoundingMode {
    /// Down (抹零): always in the customer's favour.
    #[default]
    Down,
    /// To the nearest unit, half up (四舍五入); rounding up is a negative
    /// [`DiscountKind::Rounding`].
    Nearest,
}

/// A tenant's checkout rules. Stored as JSON; missing keys take their defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct CheckoutRules {
    /// Rounding-off unit; default jiao (抹零 to the jiao).
    pub rounding_unit: RoundingUnit,
    /// Rounding-off mode; default down (in the customer's favour).
    pub rounding_mode: RoundingMode,
    /// Coupons per bill, default 1. Coupons beyond it are accepted only if they and every
    /// coupon before them stack with coupons. 0 = no coupons at checkout.
    pub coupons_per_bill: u32,
    /// Basis points off for stored-value members paying by other means (2000 = 20% off);
    /// default 0 = no such rule. Capped at 10000.
    pub stored_value_member_off_bp: u32,
    /// Default true: the payment rule replaces the level discount on the lines where its
    /// rate is strictly higher (a line never gets both); false: they compound.
    pub payment_rule_replaces_level_discount: bool,
}

impl Default for CheckoutRules {
    /// 抹零 down to the jiao, one coupon per bill, no payment rule.
    fn default() -> Self {
        CheckoutRules {
            rounding_unit: RoundingUnit::Jiao,
            rounding_mode: RoundingMode::Down,
            coupons_per_bill: 1,
            stored_value_member_off_bp: 0,
            payment_rule_replaces_level_discount: true,
        }
    }
}

/// Points the buyer offers as cash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PointsOffer {
    /// Points the buyer holds.
    pub available: i64,
    /// Points the buyer asks to use; `None` or `Some(0)` = none. More than `available`
    /// is refused; the bill's share limit caps it silently (see [`points::quote_cash`]).
    #[serde(default)]
    pub requested: Option<i64>,
    /// The tenant's points-as-cash rule.
    #[serde(default)]
    pub redemption: CashRedemption,
}

/// Everything [`price`] needs.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
pub struct PricingInput {
    /// The bill lines, at least one.
    pub lines: Vec<PricingLine>,
    /// The buyer's level discount in basis points (500 = 5% off, 95折); 0 for none or
    /// non-members. Capped at 10000.
    #[serde(default)]
    pub level_discount_bp: u32,
    /// The level's Chinese name for labels, e.g. "金卡".
    #[serde(default)]
    pub level_name: Option<String>,
    /// The level's English name for labels, e.g. "Gold".
    #[serde(default)]
    pub level_name_en: Option<String>,
    /// The buyer holds a stored-value card.
    #[serde(default)]
    pub stored_value_member: bool,
    /// Any tender of this bill is stored value.
    #[serde(default)]
    pub pays_with_stored_value: bool,
    /// Coupons in the order the cashier entered them.
    #[serde(default)]
    pub coupons: Vec<CouponOffer>,
    /// Points offered as cash, if any.
    #[serde(default)]
    pub points: Option<PointsOffer>,
    /// The tenant's checkout rules.
    #[serde(default)]
    pub rules: CheckoutRules,
}

/// What a discount is (stable snake_case codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DiscountKind {
    /// Member prices below the regular price (step 1).
    MemberPrice,
    /// The member level's discount (step 2).
    LevelDiscount,
    /// The payment-dependent rule (step 3).
    PaymentRule,
    /// A coupon (step 4).
    Coupon,
    /// Points as cash (step 5).
    Points,
    /// Rounding-off of small change (step 6); negative when rounded up.
    Rounding,
}

impl DiscountKind {
    /// Every kind, in the order of the steps.
    pub const ALL: [DiscountKind; 6] = [
        DiscountKind::MemberPrice,
        DiscountKind::LevelDiscount,
        DiscountKind::PaymentRule,
        DiscountKind::Coupon,
        DiscountKind::Points,
        DiscountKind::Rounding,
    ];

    /// The stable code, as serde spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            DiscountKind::MemberPrice => "member_price",
            DiscountKind::LevelDiscount => "level_discount",
            DiscountKind::PaymentRule => "payment_rule",
            DiscountKind::Coupon => "coupon",
            DiscountKind::Points => "points",
            DiscountKind::Rounding => "rounding",
        }
    }

    /// The kind with code `s`.
    pub fn parse(s: &str) -> Option<Self> {
        DiscountKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One discount on the bill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Discount {
    /// What it is.
    pub kind: DiscountKind,
    /// Taken off the bill (positive); only a rounding up is negative.
    pub amount: Money,
    /// Chinese label: "金卡 95 折", "会员价", "满 200 减 20 (ABCD-…)", "积分抵现 500 分", "抹零".
    pub label: String,
    /// English label.
    pub label_en: String,
    /// The coupon's code, for coupons.
    pub coupon_code: Option<String>,
    /// Points spent, for points as cash.
    pub points: Option<i64>,
}

/// One bill line, priced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PricedLine {
    /// The line's position in the input.
    pub index: usize,
    /// The menu item, if any.
    pub item_id: Option<MenuItemId>,
    /// The dish's name.
    pub name: String,
    /// How many.
    pub quantity: u32,
    /// The regular unit price.
    pub unit_price: Money,
    /// The member unit price, when it was applied (below the regular price).
    pub member_unit_price: Option<Money>,
    /// quantity × regular unit price.
    pub gross: Money,
    /// This line's non-zero share of each discount, in the order taken:
    /// `[kind, amount]` pairs.
    #[schema(value_type = Vec<Object>)]
    pub discounts: Vec<(DiscountKind, Money)>,
    /// gross − Σ discounts.
    pub net: Money,
}

/// The priced bill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Breakdown {
    /// The lines, in input order.
    pub lines: Vec<PricedLine>,
    /// Σ line gross (at regular prices).
    pub gross: Money,
    /// Every discount, in the order taken; none of zero amount.
    pub discounts: Vec<Discount>,
    /// Σ discounts.
    pub total_discount: Money,
    /// gross − total_discount = Σ line net.
    pub amount_due: Money,
    /// Points spent as cash (0 for none).
    pub points_used: i64,
    /// Codes of the coupons applied, in order.
    pub coupons_applied: Vec<String>,
    /// How the points value was computed (from [`points::quote_cash`]), when points were used.
    pub points_explanation: Option<Explanation>,
}

impl Breakdown {
    /// The sum of the discounts of `kind`.
    pub fn total_of(&self, kind: DiscountKind) -> Money {
        self.discounts
            .iter()
            .filter(|d| d.kind == kind)
            .map(|d| d.amount)
            .sum()
    }

    /// Checks the invariants listed in the module documentation; the error names the
    /// first one broken.
    pub fn check_invariants(&self) -> Result<(), String> {
        if sum(self.lines.iter().map(|l| l.gross))? != self.gross {
            return Err("gross ≠ Σ line gross".into());
        }
        for l in &self.lines {
            let off = sum(l.discounts.iter().map(|d| d.1))?;
            if l.gross.checked_sub(off) != Some(l.net) {
                return Err(format!("line {}: gross − discounts ≠ net", l.index));
            }
            if l.net.is_negative() {
                return Err(format!("line {}: negative net", l.index));
            }
        }
        for kind in DiscountKind::ALL {
            let on_lines = sum(self
                .lines
                .iter()
                .flat_map(|l| l.discounts.iter())
                .filter(|d| d.0 == kind)
                .map(|d| d.1))?;
            if on_lines != self.total_of(kind) {
                return Err(format!("{}: lines ≠ discounts", kind.as_str()));
            }
        }
        if sum(self.discounts.iter().map(|d| d.amount))? != self.total_discount {
            return Err("total_discount ≠ Σ discounts".into());
        }
        if self.gross.checked_sub(self.total_discount) != Some(self.amount_due) {
            return Err("gross − total_discount ≠ amount_due".into());
        }
        if sum(self.lines.iter().map(|l| l.net))? != self.amount_due {
            return Err("amount_due ≠ Σ line net".into());
        }
        if self.amount_due.is_negative() {
            return Err("negative amount due".into());
        }
        Ok(())
    }
}

/// Σ of amounts, or an error on overflow.
fn sum(mut it: impl Iterator<Item = Money>) -> Result<Money, String> {
    it.try_fold(Money::ZERO, Money::checked_add)
        .ok_or_else(|| "overflow".to_string())
}

/// Why a bill cannot be priced as asked. Nothing is partially applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PricingError {
    /// The bill has no lines.
    #[error("the bill has no lines")]
    EmptyBill,
    /// A line is not acceptable: `zero_quantity`, `quantity_too_large`,
    /// `negative_price`, `price_too_large`, `negative_member_price`,
    /// `member_price_above_regular`, `bill_too_large`.
    #[error("line {index}: {reason}")]
    BadLine {
        /// The line's position in the input.
        index: usize,
        /// Why.
        reason: &'static str,
    },
    /// A coupon cannot be used on this bill: `duplicate_coupon`, `too_many_coupons`,
    /// `does_not_stack`, `item_not_on_bill`, `member_price_exclusive`, `nothing_eligible`,
    /// `below_threshold`.
    #[error("coupon {code} cannot be used on this bill: {reason}")]
    CouponNotApplicable {
        /// The coupon's code.
        code: String,
        /// Why (a stable code).
        reason: &'static str,
    },
    /// Points cannot be used as asked.
    #[error(transparent)]
    Points(#[from] PointsError),
}

impl PricingError {
    /// Stable machine code: `empty_bill`, `bad_line`, the coupon reason itself (like
    /// [`coupon::CouponRejection::code`], e.g. `below_threshold`), or the points error's
    /// code (e.g. `insufficient_points`).
    pub fn code(&self) -> &'static str {
        match self {
            PricingError::EmptyBill => "empty_bill",
            PricingError::BadLine { .. } => "bad_line",
            PricingError::CouponNotApplicable { reason, .. } => reason,
            PricingError::Points(e) => e.code(),
        }
    }
}

/// A line while it is being priced (fen).
struct Work {
    gross: i64,
    net: i64,
    quantity: i64,
    item_id: Option<MenuItemId>,
    /// Priced at a member price below the regular price.
    at_member: bool,
    joins: bool,
    shares: Vec<(DiscountKind, i64)>,
}

/// The bill while it is being priced.
struct Bill {
    lines: Vec<Work>,
    discounts: Vec<Discount>,
}

impl Bill {
    fn net_of(&self, set: &[usize]) -> i64 {
        set.iter().map(|&i| self.lines[i].net).sum()
    }

    /// Records a discount and each line's share of it (`shares` must add up to `amount`);
    /// a discount of zero is not recorded.
    fn book(&mut self, d: Discount, shares: &[(usize, i64)]) {
        debug_assert_eq!(
            shares.iter().map(|s| s.1).sum::<i64>(),
            d.amount.fen(),
            "shares add up"
        );
        if d.amount == Money::ZERO {
            return;
        }
        for &(i, s) in shares {
            if s != 0 {
                let line = &mut self.lines[i];
                line.net -= s;
                line.shares.push((d.kind, s));
            }
        }
        self.discounts.push(d);
    }

    /// `bp` off the lines of `set`: half up on their subtotal, apportioned.
    fn percent_off(&mut self, set: &[usize], bp: u32, d: impl FnOnce(Money) -> Discount) {
        let subtotal = i128::from(self.net_of(set));
        let amount = (subtotal * i128::from(bp) + BP / 2) / BP;
        let amount = i64::try_from(amount).expect("at most the subtotal");
        let shares = apportion(amount, &self.weights(set));
        self.book(d(Money::from_fen(amount)), &shares);
    }

    fn weights(&self, set: &[usize]) -> Vec<(usize, i64)> {
        set.iter().map(|&i| (i, self.lines[i].net)).collect()
    }
}

/// Splits `amount` over the weighted lines in proportion to their weights by the
/// largest-remainder method (ties to the earlier entry). With non-negative weights and
/// `|amount| ≤ Σ weights`, each share's magnitude is at most its weight. A negative
/// amount is split as its magnitude, negated.
fn apportion(amount: i64, weights: &[(usize, i64)]) -> Vec<(usize, i64)> {
    let total: i128 = weights.iter().map(|w| i128::from(w.1)).sum();
    if amount == 0 || total <= 0 {
        debug_assert_eq!(amount, 0, "nothing to apportion {amount} over");
        return Vec::new();
    }
    let a = i128::from(amount).abs();
    let mut parts: Vec<(usize, i128, i128)> = weights
        .iter()
        .map(|&(i, w)| {
            let x = a * i128::from(w);
            (i, x / total, x % total)
        })
        .collect();
    let left = a - parts.iter().map(|p| p.1).sum::<i128>();
    let mut order: Vec<usize> = (0..parts.len()).collect();
    // Stable sort: equal remainders keep input order.
    order.sort_by(|&x, &y| parts[y].2.cmp(&parts[x].2));
    for &k in order.iter().take(usize::try_from(left).unwrap_or(0)) {
        parts[k].1 += 1;
    }
    let sign = amount.signum();
    parts
        .into_iter()
        .map(|(i, s, _)| (i, sign * i64::try_from(s).expect("at most the amount")))
        .collect()
}

/// "95" for 5% off (95折), "9" for 10% off, "88" for 12% off, "94.5" for 5.5% off.
fn zhe(bp_off: u32) -> String {
    let pay = 10_000 - bp_off.min(10_000);
    if pay.is_multiple_of(1_000) {
        (pay / 1_000).to_string()
    } else {
        format_percent_bp(pay)
    }
}

/// A coupon described in English: "¥20.00 off on ¥200.00 or more", "12% off, at most ¥50.00".
fn coupon_en(kind: &CouponKind) -> String {
    let above = |m: &Option<Money>| m.map(|m| format!(" on {m} or more")).unwrap_or_default();
    match kind {
        CouponKind::Cash { value, min_spend } => format!("{value} off{}", above(min_spend)),
        CouponKind::Discount {
            percent_off_bp,
            cap,
            min_spend,
        } => {
            let cap = cap.map(|c| format!(", at most {c}")).unwrap_or_default();
            format!(
                "{}% off{cap}{}",
                format_percent_bp((*percent_off_bp).min(10_000)),
                above(min_spend)
            )
        }
        CouponKind::Item { name, .. } => format!("Free {name}"),
    }
}

fn bad(index: usize, reason: &'static str) -> PricingError {
    PricingError::BadLine { index, reason }
}

fn coupon_err(c: &CouponOffer, reason: &'static str) -> PricingError {
    PricingError::CouponNotApplicable {
        code: c.code.clone(),
        reason,
    }
}

/// Prices a bill: the steps, rounding and apportioning of the module documentation.
///
/// Coupons are taken in the order given; each is checked in this order, and the first
/// that fails fails the whole pricing:
/// * `duplicate_coupon`: its code is already on the bill;
/// * with `coupons_per_bill = n`, the first `n` coupons are accepted regardless of
///   stacking; a later one only if every coupon before it stacks with coupons
///   (`too_many_coupons` otherwise, also for every coupon when `n = 0`) and it stacks
///   itself (`does_not_stack` otherwise);
/// * item vouchers: `item_not_on_bill` when no line has the dish;
/// * `member_price_exclusive`: the only lines it could apply to are at a member price and
///   it does not stack with member prices; `nothing_eligible`: no line it could apply to
///   joins discounts, or it would take nothing off (so a coupon is never used up for ¥0);
/// * `below_threshold`: the eligible lines' net is below its `min_spend`.
///
/// Points: a request of more than `available` is refused
/// ([`PointsError::InsufficientPoints`]); other refusals come from
/// [`points::quote_cash`] (disabled, nothing redeemable, not positive).
pub fn price(input: &PricingInput) -> Result<Breakdown, PricingError> {
    if input.lines.is_empty() {
        return Err(PricingError::EmptyBill);
    }
    let rules = &input.rules;
    let mut bill = Bill {
        lines: Vec::with_capacity(input.lines.len()),
        discounts: Vec::new(),
    };
    let mut gross_total = Money::ZERO;
    for (i, l) in input.lines.iter().enumerate() {
        if l.quantity == 0 {
            return Err(bad(i, "zero_quantity"));
        }
        if l.quantity > MAX_QUANTITY {
            return Err(bad(i, "quantity_too_large"));
        }
        if l.unit_price.is_negative() {
            return Err(bad(i, "negative_price"));
        }
        if l.unit_price > MAX_PRICE {
            return Err(bad(i, "price_too_large"));
        }
        if let Some(m) = l.member_unit_price {
            if m.is_negative() {
                return Err(bad(i, "negative_member_price"));
            }
            if m > l.unit_price {
                return Err(bad(i, "member_price_above_regular"));
            }
        }
        // Bounded by the checks above: at most 10^12 fen.
        let gross = i64::from(l.quantity) * l.unit_price.fen();
        gross_total = gross_total
            .checked_add(Money::from_fen(gross))
            .ok_or_else(|| bad(i, "bill_too_large"))?;
        bill.lines.push(Work {
            gross,
            net: gross,
            quantity: i64::from(l.quantity),
            item_id: l.item_id,
            at_member: l.member_unit_price.is_some_and(|m| m < l.unit_price),
            joins: l.joins_discounts,
            shares: Vec::new(),
        });
    }
    let n = bill.lines.len();

    // 1. Member prices: each line's own difference, no apportioning.
    let member: Vec<(usize, i64)> = input
        .lines
        .iter()
        .enumerate()
        .filter(|(i, _)| bill.lines[*i].at_member)
        .map(|(i, l)| {
            let m = l.member_unit_price.expect("at member price").fen();
            (i, i64::from(l.quantity) * (l.unit_price.fen() - m))
        })
        .collect();
    let member_total: i64 = member.iter().map(|s| s.1).sum();
    bill.book(
        Discount {
            kind: DiscountKind::MemberPrice,
            amount: Money::from_fen(member_total),
            label: "会员价".into(),
            label_en: "Member prices".into(),
            coupon_code: None,
            points: None,
        },
        &member,
    );

    // 2 and 3. Decide which lines take the level discount and which the payment rule.
    let level_bp = input.level_discount_bp.min(10_000);
    let pay_bp = rules.stored_value_member_off_bp.min(10_000);
    let pay_active = input.stored_value_member && !input.pays_with_stored_value && pay_bp > 0;
    let replaces = rules.payment_rule_replaces_level_discount;
    let payment_beats_level = pay_active && pay_bp > level_bp;
    let level_set: Vec<usize> = (0..n)
        .filter(|&i| {
            let l = &bill.lines[i];
            l.joins && !l.at_member && level_bp > 0 && !(replaces && payment_beats_level)
        })
        .collect();
    let pay_set: Vec<usize> = (0..n)
        .filter(|&i| {
            let l = &bill.lines[i];
            pay_active && l.joins && (!replaces || l.at_member || payment_beats_level)
        })
        .collect();
    let level_zh = input.level_name.clone().unwrap_or_else(|| "会员".into());
    let level_en = input
        .level_name_en
        .clone()
        .or_else(|| input.level_name.clone())
        .unwrap_or_else(|| "Member".into());
    bill.percent_off(&level_set, level_bp, |amount| Discount {
        kind: DiscountKind::LevelDiscount,
        amount,
        label: format!("{level_zh} {} 折", zhe(level_bp)),
        label_en: format!("{level_en} {}% off", format_percent_bp(level_bp)),
        coupon_code: None,
        points: None,
    });
    bill.percent_off(&pay_set, pay_bp, |amount| Discount {
        kind: DiscountKind::PaymentRule,
        amount,
        label: format!("储值会员非储值支付 {} 折", zhe(pay_bp)),
        label_en: format!(
            "Stored-value member paying by other means: {}% off",
            format_percent_bp(pay_bp)
        ),
        coupon_code: None,
        points: None,
    });

    // 4. Coupons.
    let limit = rules.coupons_per_bill as usize;
    let mut applied: Vec<String> = Vec::new();
    for (k, c) in input.coupons.iter().enumerate() {
        if applied.contains(&c.code) {
            return Err(coupon_err(c, "duplicate_coupon"));
        }
        if k >= limit {
            if limit == 0 || input.coupons[..k].iter().any(|p| !p.stacks_with_coupons) {
                return Err(coupon_err(c, "too_many_coupons"));
            }
            if !c.stacks_with_coupons {
                return Err(coupon_err(c, "does_not_stack"));
            }
        }
        let for_item = match &c.kind {
            CouponKind::Item { menu_item_id, .. } => Some(*menu_item_id),
            _ => None,
        };
        let candidates: Vec<usize> = (0..n)
            .filter(|&i| for_item.is_none_or(|id| bill.lines[i].item_id == Some(id)))
            .collect();
        if candidates.is_empty() {
            return Err(coupon_err(c, "item_not_on_bill"));
        }
        let eligible: Vec<usize> = candidates
            .iter()
            .copied()
            .filter(|&i| {
                let l = &bill.lines[i];
                l.joins && (c.stacks_with_member_price || !l.at_member)
            })
            .collect();
        if eligible.is_empty() {
            let member_only = candidates
                .iter()
                .any(|&i| bill.lines[i].joins && bill.lines[i].at_member);
            return Err(coupon_err(
                c,
                if member_only {
                    "member_price_exclusive"
                } else {
                    "nothing_eligible"
                },
            ));
        }
        let shares = match for_item {
            Some(_) => {
                // The dearest unit (as now priced) of the dish; ties to the earlier line.
                let unit = |i: usize| {
                    let l = &bill.lines[i];
                    (l.net + l.quantity / 2) / l.quantity
                };
                let best = eligible
                    .iter()
                    .copied()
                    .rev()
                    .max_by_key(|&i| unit(i))
                    .expect("not empty");
                let off = coupon::discount_for(
                    &c.kind,
                    Money::from_fen(bill.lines[best].net),
                    Some(Money::from_fen(unit(best))),
                );
                vec![(best, off.fen())]
            }
            None => {
                let subtotal = Money::from_fen(bill.net_of(&eligible));
                if c.kind.min_spend().is_some_and(|m| subtotal < m) {
                    return Err(coupon_err(c, "below_threshold"));
                }
                let off = coupon::discount_for(&c.kind, subtotal, None);
                apportion(off.fen(), &bill.weights(&eligible))
            }
        };
        let amount: i64 = shares.iter().map(|s| s.1).sum();
        if amount <= 0 {
            return Err(coupon_err(c, "nothing_eligible"));
        }
        bill.book(
            Discount {
                kind: DiscountKind::Coupon,
                amount: Money::from_fen(amount),
                label: format!("{} ({})", c.name, c.code),
                label_en: format!("Coupon {} ({})", coupon_en(&c.kind), c.code),
                coupon_code: Some(c.code.clone()),
                points: None,
            },
            &shares,
        );
        applied.push(c.code.clone());
    }

    // 5. Points as cash on what is left, over all lines.
    let all: Vec<usize> = (0..n).collect();
    let mut points_used = 0;
    let mut points_explanation = None;
    if let Some(p) = &input.points
        && let Some(requested) = p.requested.filter(|&r| r != 0)
    {
        if requested > p.available {
            return Err(PointsError::InsufficientPoints {
                available: p.available,
                needed: requested,
            }
            .into());
        }
        let left = Money::from_fen(bill.net_of(&all));
        let q = points::quote_cash(&p.redemption, left, p.available, Some(requested))?;
        let shares = apportion(q.value.fen(), &bill.weights(&all));
        bill.book(
            Discount {
                kind: DiscountKind::Points,
                amount: q.value,
                label: format!("积分抵现 {} 分", q.points),
                label_en: format!(
                    "Points as cash: {} {}",
                    q.points,
                    if q.points == 1 { "pt" } else { "pts" }
                ),
                coupon_code: None,
                points: Some(q.points),
            },
            &shares,
        );
        points_used = q.points;
        points_explanation = Some(q.explanation);
    }

    // 6. Rounding-off.
    let due = bill.net_of(&all);
    let unit = rules.rounding_unit.fen();
    let rem = due.rem_euclid(unit);
    let off = match rules.rounding_mode {
        RoundingMode::Nearest if 2 * rem >= unit && rem > 0 => rem - unit,
        _ => rem,
    };
    let unit_zh = if unit == 100 { "元" } else { "角" };
    let unit_en = if unit == 100 { "yuan" } else { "jiao" };
    let (label, label_en) = if off >= 0 {
        (
            format!("抹零（到{unit_zh}）"),
            format!("Small change waived (to the {unit_en})"),
        )
    } else {
        (
            format!("四舍五入（到{unit_zh}）"),
            format!("Rounded up (to the {unit_en})"),
        )
    };
    let shares = apportion(off, &bill.weights(&all));
    bill.book(
        Discount {
            kind: DiscountKind::Rounding,
            amount: Money::from_fen(off),
            label,
            label_en,
            coupon_code: None,
            points: None,
        },
        &shares,
    );

    let lines: Vec<PricedLine> = bill
        .lines
        .iter()
        .zip(&input.lines)
        .enumerate()
        .map(|(index, (w, l))| PricedLine {
            index,
            item_id: l.item_id,
            name: l.name.clone(),
            quantity: l.quantity,
            unit_price: l.unit_price,
            member_unit_price: l.member_unit_price.filter(|_| w.at_member),
            gross: Money::from_fen(w.gross),
            discounts: w
                .shares
                .iter()
                .map(|&(k, s)| (k, Money::from_fen(s)))
                .collect(),
            net: Money::from_fen(w.net),
        })
        .collect();
    let total_discount: Money = bill.discounts.iter().map(|d| d.amount).sum();
    let b = Breakdown {
        amount_due: Money::from_fen(due - off),
        lines,
        gross: gross_total,
        discounts: bill.discounts,
        total_discount,
        points_used,
        coupons_applied: applied,
        points_explanation,
    };
    debug_assert_eq!(b.check_invariants(), Ok(()), "{b:#?}");
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use uuid::Uuid;

    fn fen(f: i64) -> Money {
        Money::from_fen(f)
    }
    fn y(yuan: i64) -> Money {
        Money::from_yuan(yuan)
    }
    fn item(n: u128) -> MenuItemId {
        MenuItemId(Uuid::from_u128(n))
    }
    fn line(
        n: u128,
        name: &str,
        qty: u32,
        price: i64,
        member: Option<i64>,
        joins: bool,
    ) -> PricingLine {
        PricingLine {
            item_id: Some(item(n)),
            name: name.into(),
            quantity: qty,
            unit_price: fen(price),
            member_unit_price: member.map(fen),
            joins_discounts: joins,
        }
    }

    /// A gold member (5% off) with six lines: two at member prices, one drink that does
    /// not join discounts. Gross ¥302.00; member prices ¥16.00; 5% of ¥160.00 = ¥8.00.
    fn gold_bill() -> PricingInput {
        PricingInput {
            lines: vec![
                line(1, "招牌毛肚", 1, 6_800, Some(5_800), true),
                line(2, "鸳鸯锅底", 1, 4_800, None, true),
                line(3, "肥牛卷", 2, 3_800, None, true),
                line(4, "小笼包", 2, 1_800, None, true),
                line(5, "酸梅汤", 4, 800, None, false),
                line(6, "虾滑", 1, 4_200, Some(3_600), true),
            ],
            level_discount_bp: 500,
            level_name: Some("金卡".into()),
            level_name_en: Some("Gold".into()),
            ..PricingInput::default()
        }
    }

    fn offer(code: &str, name: &str, kind: CouponKind) -> CouponOffer {
        CouponOffer {
            code: code.into(),
            name: name.into(),
            kind,
            stacks_with_coupons: false,
            stacks_with_member_price: false,
        }
    }
    fn cash(value: i64, min: Option<i64>) -> CouponKind {
        CouponKind::Cash {
            value: y(value),
            min_spend: min.map(y),
        }
    }
    fn nets(b: &Breakdown) -> Vec<i64> {
        b.lines.iter().map(|l| l.net.fen()).collect()
    }
    fn shares(b: &Breakdown, kind: DiscountKind) -> Vec<i64> {
        b.lines
            .iter()
            .map(|l| {
                l.discounts
                    .iter()
                    .filter(|d| d.0 == kind)
                    .map(|d| d.1.fen())
                    .sum()
            })
            .collect()
    }
    fn coupon_reason(r: Result<Breakdown, PricingError>) -> (String, &'static str) {
        match r {
            Err(PricingError::CouponNotApplicable { code, reason }) => (code, reason),
            other => panic!("expected a coupon rejection, got {other:?}"),
        }
    }

    #[test]
    fn member_prices_then_level_discount() {
        let b = price(&gold_bill()).unwrap();
        assert_eq!(b.gross, fen(30_200));
        assert_eq!(b.discounts.len(), 2);
        let d = &b.discounts[0];
        assert_eq!((d.kind, d.amount), (DiscountKind::MemberPrice, fen(1_600)));
        assert_eq!(
            (d.label.as_str(), d.label_en.as_str()),
            ("会员价", "Member prices")
        );
        let d = &b.discounts[1];
        assert_eq!((d.kind, d.amount), (DiscountKind::LevelDiscount, fen(800)));
        assert_eq!(
            (d.label.as_str(), d.label_en.as_str()),
            ("金卡 95 折", "Gold 5% off")
        );
        // Member-price lines and the drink get no level discount.
        assert_eq!(
            shares(&b, DiscountKind::MemberPrice),
            [1_000, 0, 0, 0, 0, 600]
        );
        assert_eq!(
            shares(&b, DiscountKind::LevelDiscount),
            [0, 240, 380, 180, 0, 0]
        );
        assert_eq!(nets(&b), [5_800, 4_560, 7_220, 3_420, 3_200, 3_600]);
        assert_eq!(b.lines[0].member_unit_price, Some(fen(5_800)));
        assert_eq!(b.lines[1].member_unit_price, None);
        // ¥278.00 is already whole jiao: no rounding entry.
        assert_eq!((b.total_discount, b.amount_due), (fen(2_400), fen(27_800)));
        assert_eq!((b.points_used, b.coupons_applied.len()), (0, 0));
    }

    #[test]
    fn level_discount_rounds_half_up_on_the_subtotal() {
        // 5% of ¥0.30 = 1.5 fen → 2 fen, over three 10-fen lines: 1 + 1 + 0 (earlier first).
        let input = PricingInput {
            lines: (0..3).map(|n| line(n, "x", 1, 10, None, true)).collect(),
            level_discount_bp: 500,
            rules: CheckoutRules {
                rounding_unit: RoundingUnit::None,
                ..CheckoutRules::default()
            },
            ..PricingInput::default()
        };
        let b = price(&input).unwrap();
        assert_eq!(b.total_of(DiscountKind::LevelDiscount), fen(2));
        assert_eq!(shares(&b, DiscountKind::LevelDiscount), [1, 1, 0]);
        assert_eq!(b.discounts[0].label, "会员 95 折");
        assert_eq!(b.discounts[0].label_en, "Member 5% off");
    }

    #[test]
    fn cash_coupon_with_threshold() {
        let mut input = gold_bill();
        let mut c = offer("ABCD-EFGH-JKMN-PQRS", "满 200 减 20", cash(20, Some(200)));
        c.stacks_with_member_price = true;
        input.coupons = vec![c.clone()];
        let b = price(&input).unwrap();
        let d = &b.discounts[2];
        assert_eq!((d.kind, d.amount), (DiscountKind::Coupon, y(20)));
        assert_eq!(d.label, "满 200 减 20 (ABCD-EFGH-JKMN-PQRS)");
        assert_eq!(
            d.label_en,
            "Coupon ¥20.00 off on ¥200.00 or more (ABCD-EFGH-JKMN-PQRS)"
        );
        assert_eq!(d.coupon_code.as_deref(), Some("ABCD-EFGH-JKMN-PQRS"));
        // ¥20 over the joining lines' ¥246.00 by largest remainder; the drink takes none.
        assert_eq!(
            shares(&b, DiscountKind::Coupon),
            [471, 371, 587, 278, 0, 293]
        );
        assert_eq!(b.amount_due, fen(25_800));
        assert_eq!(b.coupons_applied, ["ABCD-EFGH-JKMN-PQRS"]);

        // Not on member-price lines: only ¥152.00 is eligible, below the ¥200 threshold.
        c.stacks_with_member_price = false;
        input.coupons = vec![c];
        assert_eq!(
            coupon_reason(price(&input)),
            ("ABCD-EFGH-JKMN-PQRS".into(), "below_threshold")
        );
    }

    #[test]
    fn discount_coupon_with_cap() {
        let mut input = gold_bill();
        let pct = |cap| CouponKind::Discount {
            percent_off_bp: 1_200,
            cap: Some(y(cap)),
            min_spend: None,
        };
        // 88折 on the non-member joining lines (¥152.00): ¥18.24, under the ¥20 cap.
        input.coupons = vec![offer("C1", "88 折券", pct(20))];
        let b = price(&input).unwrap();
        assert_eq!(b.total_of(DiscountKind::Coupon), fen(1_824));
        // 547.2, 866.4, 410.4 → the tie on .4 goes to the earlier line.
        assert_eq!(shares(&b, DiscountKind::Coupon), [0, 547, 867, 410, 0, 0]);
        assert_eq!(
            b.discounts[2].label_en,
            "Coupon 12% off, at most ¥20.00 (C1)"
        );
        // ¥278.00 − ¥18.24 = ¥259.76 → 抹零 to ¥259.70.
        assert_eq!(b.total_of(DiscountKind::Rounding), fen(6));
        assert_eq!(b.amount_due, fen(25_970));
        // Capped at ¥15.
        input.coupons = vec![offer("C1", "88 折券", pct(15))];
        let b = price(&input).unwrap();
        assert_eq!(b.total_of(DiscountKind::Coupon), y(15));
        assert_eq!(b.amount_due, fen(26_300));
    }

    #[test]
    fn item_voucher_frees_one_unit_as_priced() {
        let mut input = gold_bill();
        let voucher = |n: u128, name: &str| CouponKind::Item {
            menu_item_id: item(n),
            name: name.into(),
        };
        // 2 × 小笼包 at 95折 = ¥34.20: one is ¥17.10, taken off that line only.
        input.coupons = vec![offer("V1", "兑换券", voucher(4, "小笼包"))];
        let b = price(&input).unwrap();
        assert_eq!(shares(&b, DiscountKind::Coupon), [0, 0, 0, 1_710, 0, 0]);
        assert_eq!(b.discounts[2].label_en, "Coupon Free 小笼包 (V1)");
        assert_eq!(b.amount_due, fen(26_090));

        input.coupons = vec![offer("V1", "兑换券", voucher(99, "龙虾"))];
        assert_eq!(coupon_reason(price(&input)).1, "item_not_on_bill");
        // 毛肚 is at its member price.
        let mut c = offer("V1", "兑换券", voucher(1, "毛肚"));
        input.coupons = vec![c.clone()];
        assert_eq!(coupon_reason(price(&input)).1, "member_price_exclusive");
        c.stacks_with_member_price = true;
        input.coupons = vec![c];
        let b = price(&input).unwrap();
        assert_eq!(shares(&b, DiscountKind::Coupon), [5_800, 0, 0, 0, 0, 0]);
        // The drink does not join discounts.
        input.coupons = vec![offer("V1", "兑换券", voucher(5, "酸梅汤"))];
        assert_eq!(coupon_reason(price(&input)).1, "nothing_eligible");
    }

    #[test]
    fn item_voucher_takes_the_dearest_unit() {
        let input = PricingInput {
            lines: vec![
                line(7, "例汤", 1, 1_000, None, true),
                line(7, "例汤（大）", 3, 1_500, None, true),
                line(7, "例汤（大）", 1, 1_500, None, true),
            ],
            coupons: vec![offer(
                "V",
                "兑换券",
                CouponKind::Item {
                    menu_item_id: item(7),
                    name: "例汤".into(),
                },
            )],
            ..PricingInput::default()
        };
        let b = price(&input).unwrap();
        assert_eq!(shares(&b, DiscountKind::Coupon), [0, 1_500, 0]);
    }

    #[test]
    fn member_price_exclusive_and_nothing_eligible() {
        let bill = |lines| PricingInput {
            lines,
            coupons: vec![offer("C", "代金券", cash(10, None))],
            ..PricingInput::default()
        };
        let r = price(&bill(vec![
            line(1, "毛肚", 1, 6_800, Some(5_800), true),
            line(5, "酸梅汤", 1, 800, None, false),
        ]));
        assert_eq!(coupon_reason(r).1, "member_price_exclusive");
        let r = price(&bill(vec![line(5, "酸梅汤", 1, 800, None, false)]));
        assert_eq!(coupon_reason(r).1, "nothing_eligible");
        // A free dish (¥0) leaves nothing for a coupon to take.
        let r = price(&bill(vec![line(8, "茶位", 1, 0, None, true)]));
        assert_eq!(coupon_reason(r).1, "nothing_eligible");
        // A voucher larger than the bill takes the whole eligible amount, no more.
        let b = price(&bill(vec![
            line(2, "锅底", 1, 800, None, true),
            line(5, "酸梅汤", 1, 800, None, false),
        ]))
        .unwrap();
        assert_eq!(shares(&b, DiscountKind::Coupon), [800, 0]);
        assert_eq!(b.amount_due, fen(800));
    }

    #[test]
    fn coupons_per_bill_and_stacking() {
        let input = |a_stacks: bool, b_stacks: bool, per_bill: u32| {
            let mut a = offer("A", "满 100 减 10", cash(10, None));
            a.stacks_with_coupons = a_stacks;
            let mut b = offer("B", "代金券 5 元", cash(5, None));
            b.stacks_with_coupons = b_stacks;
            PricingInput {
                lines: vec![line(2, "锅底", 1, 20_000, None, true)],
                coupons: vec![a, b],
                rules: CheckoutRules {
                    coupons_per_bill: per_bill,
                    ..CheckoutRules::default()
                },
                ..PricingInput::default()
            }
        };
        assert_eq!(
            coupon_reason(price(&input(false, true, 1))),
            ("B".into(), "too_many_coupons")
        );
        assert_eq!(
            coupon_reason(price(&input(true, false, 1))),
            ("B".into(), "does_not_stack")
        );
        let b = price(&input(true, true, 1)).unwrap();
        assert_eq!(b.coupons_applied, ["A", "B"]);
        assert_eq!(b.amount_due, y(185));
        // Two per bill: stacking does not matter for the first two.
        let b = price(&input(false, false, 2)).unwrap();
        assert_eq!(b.total_of(DiscountKind::Coupon), y(15));
        assert_eq!(b.discounts.len(), 2);
        // No coupons at checkout.
        assert_eq!(
            coupon_reason(price(&input(true, true, 0))),
            ("A".into(), "too_many_coupons")
        );
        // The same coupon twice.
        let mut twice = input(true, true, 5);
        twice.coupons[1].code = "A".into();
        assert_eq!(
            coupon_reason(price(&twice)),
            ("A".into(), "duplicate_coupon")
        );
    }

    #[test]
    fn thresholds_are_judged_after_earlier_coupons() {
        let mut c = offer("A", "满 100 减 20", cash(20, Some(100)));
        c.stacks_with_coupons = true;
        let mut d = c.clone();
        d.code = "B".into();
        let input = |total| PricingInput {
            lines: vec![line(2, "锅底", 1, total, None, true)],
            coupons: vec![c.clone(), d.clone()],
            ..PricingInput::default()
        };
        // ¥120 → ¥100 after the first: the second still qualifies.
        assert_eq!(price(&input(12_000)).unwrap().amount_due, y(80));
        // ¥110 → ¥90: it does not.
        assert_eq!(
            coupon_reason(price(&input(11_000))),
            ("B".into(), "below_threshold")
        );
    }

    #[test]
    fn points_as_cash_with_the_share_cap() {
        let mut input = gold_bill();
        input.points = Some(PointsOffer {
            available: 800,
            requested: Some(500),
            redemption: CashRedemption::default(),
        });
        // 500 points at 100 points per yuan: ¥5 off ¥278.00 (the 50% cap is ¥139).
        let b = price(&input).unwrap();
        let d = b.discounts.last().unwrap();
        assert_eq!(
            (d.kind, d.amount, d.points),
            (DiscountKind::Points, y(5), Some(500))
        );
        assert_eq!(
            (d.label.as_str(), d.label_en.as_str()),
            ("积分抵现 500 分", "Points as cash: 500 pts")
        );
        assert_eq!(b.points_used, 500);
        assert_eq!(b.amount_due, y(273));
        // Points apply to every line, the drink included.
        assert!(shares(&b, DiscountKind::Points)[4] > 0);
        assert_eq!(
            b.points_explanation.unwrap().zh,
            "积分抵现：500 分抵 5 元（100 分 = 1 元）"
        );

        // On an ¥8.00 bill, at most half: 400 of the 1,000 points asked.
        let small = PricingInput {
            lines: vec![line(5, "酸梅汤", 1, 800, None, false)],
            points: Some(PointsOffer {
                available: 1_000,
                requested: Some(1_000),
                redemption: CashRedemption::default(),
            }),
            ..PricingInput::default()
        };
        let b = price(&small).unwrap();
        assert_eq!((b.points_used, b.amount_due), (400, y(4)));
        assert!(b.points_explanation.unwrap().zh.contains("每单最多抵 50%"));

        // None and Some(0) use no points.
        for requested in [None, Some(0)] {
            input.points.as_mut().unwrap().requested = requested;
            let b = price(&input).unwrap();
            assert_eq!(
                (b.points_used, b.total_of(DiscountKind::Points)),
                (0, Money::ZERO)
            );
        }
        input.points.as_mut().unwrap().requested = Some(900);
        let e = price(&input).unwrap_err();
        assert_eq!(
            e,
            PricingError::Points(PointsError::InsufficientPoints {
                available: 800,
                needed: 900
            })
        );
        assert_eq!(e.code(), "insufficient_points");
        input.points.as_mut().unwrap().requested = Some(-5);
        assert_eq!(price(&input).unwrap_err().code(), "points_not_positive");
        input.points.as_mut().unwrap().requested = Some(500);
        input.points.as_mut().unwrap().redemption.enabled = false;
        assert_eq!(
            price(&input).unwrap_err().code(),
            "points_redemption_disabled"
        );
        // Nothing left to pay with points after a voucher covering the whole bill.
        let mut free = small.clone();
        let mut c = offer("C", "代金券", cash(100, None));
        free.lines[0].joins_discounts = true;
        c.stacks_with_member_price = true;
        free.coupons = vec![c];
        assert_eq!(price(&free).unwrap_err().code(), "nothing_redeemable");
    }

    #[test]
    fn seed_payment_rule_by_tender() {
        let mut input = gold_bill();
        input.stored_value_member = true;
        input.rules.stored_value_member_off_bp = 2_000;
        // Paying by cash: 20% beats gold's 5% and replaces it, on every joining line
        // (member-price lines included): 20% of ¥254.00 = ¥50.80.
        let b = price(&input).unwrap();
        assert_eq!(b.total_of(DiscountKind::LevelDiscount), Money::ZERO);
        let d = b.discounts.last().unwrap();
        assert_eq!((d.kind, d.amount), (DiscountKind::PaymentRule, fen(5_080)));
        assert_eq!(d.label, "储值会员非储值支付 8 折");
        assert_eq!(
            d.label_en,
            "Stored-value member paying by other means: 20% off"
        );
        assert_eq!(
            shares(&b, DiscountKind::PaymentRule),
            [1_160, 960, 1_520, 720, 0, 720]
        );
        assert_eq!(b.amount_due, fen(23_520));
        // Paying from the card balance: no payment discount, the level discount stays.
        input.pays_with_stored_value = true;
        let b = price(&input).unwrap();
        assert_eq!(b.total_of(DiscountKind::PaymentRule), Money::ZERO);
        assert_eq!(b.amount_due, fen(27_800));
        // Not a stored-value member: no payment rule either.
        input.pays_with_stored_value = false;
        input.stored_value_member = false;
        assert_eq!(price(&input).unwrap().amount_due, fen(27_800));
    }

    #[test]
    fn payment_rule_against_a_larger_level_discount_and_compounding() {
        let mut input = gold_bill();
        input.stored_value_member = true;
        input.rules.stored_value_member_off_bp = 2_000;
        // A level at 25% off beats 20%: level on the non-member joining lines (¥160 → ¥40),
        // the payment rule only on the member-price lines (20% of ¥94 = ¥18.80).
        input.level_discount_bp = 2_500;
        let b = price(&input).unwrap();
        assert_eq!(
            shares(&b, DiscountKind::LevelDiscount),
            [0, 1_200, 1_900, 900, 0, 0]
        );
        assert_eq!(
            shares(&b, DiscountKind::PaymentRule),
            [1_160, 0, 0, 0, 0, 720]
        );
        assert_eq!(b.discounts[1].label, "金卡 75 折");
        // On a tie the level discount stays.
        input.level_discount_bp = 2_000;
        let b = price(&input).unwrap();
        assert_eq!(
            shares(&b, DiscountKind::LevelDiscount),
            [0, 960, 1_520, 720, 0, 0]
        );
        assert_eq!(
            shares(&b, DiscountKind::PaymentRule),
            [1_160, 0, 0, 0, 0, 720]
        );
        // Compounding: 5% then 20% of what is left (¥246.00 → ¥49.20).
        input.level_discount_bp = 500;
        input.rules.payment_rule_replaces_level_discount = false;
        let b = price(&input).unwrap();
        assert_eq!(b.total_of(DiscountKind::LevelDiscount), fen(800));
        assert_eq!(b.total_of(DiscountKind::PaymentRule), fen(4_920));
        assert_eq!(b.amount_due, fen(22_880));
    }

    fn rounded(total: i64, unit: RoundingUnit, mode: RoundingMode) -> Breakdown {
        price(&PricingInput {
            lines: vec![
                line(1, "a", 1, total / 2, None, true),
                line(2, "b", 1, total - total / 2, None, true),
            ],
            rules: CheckoutRules {
                rounding_unit: unit,
                rounding_mode: mode,
                ..CheckoutRules::default()
            },
            ..PricingInput::default()
        })
        .unwrap()
    }

    #[test]
    fn rounding_off_small_change() {
        use RoundingMode::*;
        use RoundingUnit::*;
        let b = rounded(12_857, Jiao, Down);
        assert_eq!(b.amount_due, fen(12_850));
        let d = &b.discounts[0];
        assert_eq!((d.kind, d.amount), (DiscountKind::Rounding, fen(7)));
        assert_eq!(
            (d.label.as_str(), d.label_en.as_str()),
            ("抹零（到角）", "Small change waived (to the jiao)")
        );
        assert_eq!(rounded(12_857, Yuan, Down).amount_due, y(128));
        assert_eq!(
            rounded(12_857, RoundingUnit::None, Down).amount_due,
            fen(12_857)
        );
        assert!(
            rounded(12_857, RoundingUnit::None, Down)
                .discounts
                .is_empty()
        );
        assert_eq!(rounded(12_855, Jiao, Nearest).amount_due, fen(12_860));
        assert_eq!(rounded(12_854, Jiao, Nearest).amount_due, fen(12_850));
        assert_eq!(rounded(12_849, Yuan, Nearest).amount_due, y(128));
        // Half up to the yuan: ¥128.50 → ¥129, a rounding of −¥0.50 spread over the lines.
        let b = rounded(12_850, Yuan, Nearest);
        assert_eq!(b.amount_due, y(129));
        let d = &b.discounts[0];
        assert_eq!((d.kind, d.amount), (DiscountKind::Rounding, fen(-50)));
        assert_eq!(
            (d.label.as_str(), d.label_en.as_str()),
            ("四舍五入（到元）", "Rounded up (to the yuan)")
        );
        assert_eq!(shares(&b, DiscountKind::Rounding), [-25, -25]);
        assert_eq!(b.total_discount, fen(-50));
        assert_eq!(b.check_invariants(), Ok(()));
        // Whole amounts and zero are left alone.
        assert!(rounded(12_800, Yuan, Nearest).discounts.is_empty());
        assert_eq!(rounded(0, Yuan, Nearest).amount_due, Money::ZERO);
    }

    #[test]
    fn everything_at_once() {
        // Gold member, 满200减20 on all joining lines, 500 points, 抹零 to the jiao.
        let mut input = gold_bill();
        let mut c = offer("M200", "满 200 减 20", cash(20, Some(200)));
        c.stacks_with_member_price = true;
        input.coupons = vec![c];
        input.points = Some(PointsOffer {
            available: 555,
            requested: Some(555),
            redemption: CashRedemption::default(),
        });
        let b = price(&input).unwrap();
        // 302.00 − 16.00 − 8.00 − 20.00 − 5.55 = 252.45 → 252.40.
        let kinds: Vec<(DiscountKind, i64)> = b
            .discounts
            .iter()
            .map(|d| (d.kind, d.amount.fen()))
            .collect();
        assert_eq!(
            kinds,
            [
                (DiscountKind::MemberPrice, 1_600),
                (DiscountKind::LevelDiscount, 800),
                (DiscountKind::Coupon, 2_000),
                (DiscountKind::Points, 555),
                (DiscountKind::Rounding, 5),
            ]
        );
        assert_eq!(b.amount_due, fen(25_240));
        assert_eq!(b.total_discount, fen(4_960));
        assert_eq!(b.check_invariants(), Ok(()));
    }

    #[test]
    fn errors_and_codes() {
        assert_eq!(
            price(&PricingInput::default()),
            Err(PricingError::EmptyBill)
        );
        assert_eq!(PricingError::EmptyBill.code(), "empty_bill");
        let cases: [(PricingLine, &str); 6] = [
            (line(1, "x", 0, 100, None, true), "zero_quantity"),
            (
                line(1, "x", MAX_QUANTITY + 1, 100, None, true),
                "quantity_too_large",
            ),
            (line(1, "x", 1, -1, None, true), "negative_price"),
            (
                line(1, "x", 1, MAX_PRICE.fen() + 1, None, true),
                "price_too_large",
            ),
            (
                line(1, "x", 1, 100, Some(-1), true),
                "negative_member_price",
            ),
            (
                line(1, "x", 1, 100, Some(101), true),
                "member_price_above_regular",
            ),
        ];
        for (bad_line, reason) in cases {
            let input = PricingInput {
                lines: vec![line(2, "ok", 1, 100, None, true), bad_line],
                ..PricingInput::default()
            };
            let e = price(&input).unwrap_err();
            assert_eq!(e, PricingError::BadLine { index: 1, reason });
            assert_eq!(e.code(), "bad_line");
            assert_eq!(e.to_string(), format!("line 1: {reason}"));
        }
        let e = PricingError::CouponNotApplicable {
            code: "A".into(),
            reason: "below_threshold",
        };
        assert_eq!(e.code(), "below_threshold");
        assert_eq!(
            e.to_string(),
            "coupon A cannot be used on this bill: below_threshold"
        );
        // A member price equal to the regular price is not a member price.
        let b = price(&PricingInput {
            lines: vec![line(1, "x", 2, 100, Some(100), true)],
            level_discount_bp: 1_000,
            ..PricingInput::default()
        })
        .unwrap();
        assert_eq!(b.total_of(DiscountKind::MemberPrice), Money::ZERO);
        assert_eq!(b.total_of(DiscountKind::LevelDiscount), fen(20));
    }

    #[test]
    fn json_shapes_and_labels() {
        let r: CheckoutRules = serde_json::from_str("{}").unwrap();
        assert_eq!(r, CheckoutRules::default());
        let r: CheckoutRules =
            serde_json::from_str(r#"{"rounding_unit":"yuan","rounding_mode":"nearest"}"#).unwrap();
        assert_eq!(
            (r.rounding_unit, r.rounding_mode),
            (RoundingUnit::Yuan, RoundingMode::Nearest)
        );
        assert_eq!(serde_json::to_value(RoundingUnit::None).unwrap(), "none");
        for k in DiscountKind::ALL {
            assert_eq!(DiscountKind::parse(k.as_str()), Some(k));
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
        let input: PricingInput = serde_json::from_str(
            r#"{"lines":[{"name":"锅底","quantity":1,"unit_price":4800,"joins_discounts":true}]}"#,
        )
        .unwrap();
        assert_eq!(input.rules, CheckoutRules::default());
        let b = price(&input).unwrap();
        let v = serde_json::to_value(&b).unwrap();
        assert_eq!(v["amount_due"], 4800);
        let with_share = price(&PricingInput {
            level_discount_bp: 500,
            ..input
        })
        .unwrap();
        let v = serde_json::to_value(&with_share).unwrap();
        assert_eq!(
            v["lines"][0]["discounts"][0],
            serde_json::json!(["level_discount", 240])
        );
        assert_eq!(zhe(500), "95");
        assert_eq!(zhe(1_000), "9");
        assert_eq!(zhe(1_200), "88");
        assert_eq!(zhe(550), "94.5");
        assert_eq!(zhe(2_000), "8");
    }

    #[test]
    fn apportion_is_exact_and_bounded() {
        assert_eq!(
            apportion(10, &[(0, 1), (1, 1), (2, 1)]),
            [(0, 4), (1, 3), (2, 3)]
        );
        assert_eq!(
            apportion(-10, &[(0, 1), (1, 1), (2, 1)]),
            [(0, -4), (1, -3), (2, -3)]
        );
        assert_eq!(apportion(5, &[(3, 0), (4, 5)]), [(3, 0), (4, 5)]);
        assert!(apportion(0, &[(0, 5)]).is_empty());
    }

    // ---- Property tests ----

    fn any_line() -> impl Strategy<Value = PricingLine> {
        (
            0u128..4,
            1u32..=10,
            0i64..=200_000,
            proptest::option::of(0u32..=10_000),
            proptest::bool::weighted(0.8),
        )
            .prop_map(|(id, quantity, price, member_share, joins)| PricingLine {
                item_id: Some(item(id)),
                name: format!("dish {id}"),
                quantity,
                unit_price: fen(price),
                // A member price between zero and the regular price.
                member_unit_price: member_share.map(|s| fen(price * i64::from(s) / 10_000)),
                joins_discounts: joins,
            })
    }

    fn any_kind() -> impl Strategy<Value = CouponKind> {
        let money = |hi: i64| (1i64..hi).prop_map(fen);
        prop_oneof![
            (money(50_000), proptest::option::of(money(100_000)))
                .prop_map(|(value, min_spend)| CouponKind::Cash { value, min_spend }),
            (
                1u32..10_000,
                proptest::option::of(money(50_000)),
                proptest::option::of(money(100_000))
            )
                .prop_map(|(percent_off_bp, cap, min_spend)| CouponKind::Discount {
                    percent_off_bp,
                    cap,
                    min_spend
                }),
            (0u128..5).prop_map(|id| CouponKind::Item {
                menu_item_id: item(id),
                name: "x".into()
            }),
        ]
    }

    fn any_coupons() -> impl Strategy<Value = Vec<CouponOffer>> {
        proptest::collection::vec(
            (any_kind(), any::<bool>(), proptest::bool::weighted(0.7)),
            0..4,
        )
        .prop_map(|v| {
            v.into_iter()
                .enumerate()
                .map(|(k, (kind, stacks_c, stacks_m))| CouponOffer {
                    code: format!("C{k}"),
                    name: format!("券 {k}"),
                    kind,
                    stacks_with_coupons: stacks_c,
                    stacks_with_member_price: stacks_m,
                })
                .collect()
        })
    }

    fn any_points() -> impl Strategy<Value = Option<PointsOffer>> {
        proptest::option::of(
            (
                0i64..100_000,
                proptest::option::of(0i64..100_000),
                1i64..1_000,
                0u32..=10_000,
                proptest::bool::weighted(0.9),
            )
                .prop_map(|(available, requested, per_yuan, share, enabled)| {
                    PointsOffer {
                        available,
                        requested: requested.map(|r| r.min(available)),
                        redemption: CashRedemption {
                            points_per_yuan: per_yuan,
                            max_share_bp: share,
                            enabled,
                        },
                    }
                }),
        )
    }

    fn any_rules() -> impl Strategy<Value = CheckoutRules> {
        (
            prop_oneof![
                Just(RoundingUnit::None),
                Just(RoundingUnit::Jiao),
                Just(RoundingUnit::Yuan)
            ],
            prop_oneof![Just(RoundingMode::Down), Just(RoundingMode::Nearest)],
            0u32..4,
            prop_oneof![Just(0u32), 1u32..=10_000],
            any::<bool>(),
        )
            .prop_map(|(unit, mode, per_bill, off, replaces)| CheckoutRules {
                rounding_unit: unit,
                rounding_mode: mode,
                coupons_per_bill: per_bill,
                stored_value_member_off_bp: off,
                payment_rule_replaces_level_discount: replaces,
            })
    }

    fn any_input() -> impl Strategy<Value = PricingInput> {
        (
            proptest::collection::vec(any_line(), 1..=12),
            prop_oneof![Just(0u32), 1u32..5_000],
            any::<bool>(),
            any::<bool>(),
            any_coupons(),
            any_points(),
            any_rules(),
        )
            .prop_map(|(lines, level, svm, pays_sv, coupons, points, rules)| {
                PricingInput {
                    lines,
                    level_discount_bp: level,
                    level_name: Some("金卡".into()),
                    level_name_en: Some("Gold".into()),
                    stored_value_member: svm,
                    pays_with_stored_value: pays_sv,
                    coupons,
                    points,
                    rules,
                }
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        #[test]
        fn every_fen_is_accounted_for(input in any_input()) {
            match price(&input) {
                Ok(b) => {
                    prop_assert_eq!(b.check_invariants(), Ok(()));
                    // The same invariants, stated independently.
                    let gross: i64 = input.lines.iter()
                        .map(|l| i64::from(l.quantity) * l.unit_price.fen()).sum();
                    prop_assert_eq!(b.gross.fen(), gross);
                    prop_assert_eq!(b.lines.len(), input.lines.len());
                    for (l, p) in b.lines.iter().zip(&input.lines) {
                        prop_assert_eq!(l.gross.fen(), i64::from(p.quantity) * p.unit_price.fen());
                        let off: i64 = l.discounts.iter().map(|d| d.1.fen()).sum();
                        prop_assert_eq!(l.gross.fen() - off, l.net.fen());
                        prop_assert!(l.net.fen() >= 0);
                        for &(kind, amount) in &l.discounts {
                            prop_assert!(amount != Money::ZERO);
                            // Only a rounding up is negative, and only when asked for.
                            if amount.is_negative() {
                                prop_assert_eq!(kind, DiscountKind::Rounding);
                                prop_assert_eq!(input.rules.rounding_mode, RoundingMode::Nearest);
                            }
                            // Bill discounts stay off lines that do not join them.
                            if !p.joins_discounts {
                                prop_assert!(matches!(kind,
                                    DiscountKind::MemberPrice | DiscountKind::Points | DiscountKind::Rounding));
                            }
                        }
                        let has = |k| l.discounts.iter().any(|d| d.0 == k);
                        // Members do not get both; nor a line both rules when one replaces the other.
                        if l.member_unit_price.is_some() {
                            prop_assert!(!has(DiscountKind::LevelDiscount));
                        }
                        if input.rules.payment_rule_replaces_level_discount {
                            prop_assert!(!(has(DiscountKind::LevelDiscount) && has(DiscountKind::PaymentRule)));
                        }
                    }
                    for kind in DiscountKind::ALL {
                        let on_lines: i64 = b.lines.iter().flat_map(|l| &l.discounts)
                            .filter(|d| d.0 == kind).map(|d| d.1.fen()).sum();
                        let listed: i64 = b.discounts.iter()
                            .filter(|d| d.kind == kind).map(|d| d.amount.fen()).sum();
                        prop_assert_eq!(on_lines, listed);
                    }
                    let total: i64 = b.discounts.iter().map(|d| d.amount.fen()).sum();
                    prop_assert_eq!(b.total_discount.fen(), total);
                    let nets: i64 = b.lines.iter().map(|l| l.net.fen()).sum();
                    prop_assert_eq!(gross - total, b.amount_due.fen());
                    prop_assert_eq!(nets, b.amount_due.fen());
                    prop_assert!(b.amount_due.fen() >= 0);
                    // Rounded as configured; down never charges more than the lines.
                    prop_assert_eq!(b.amount_due.fen() % input.rules.rounding_unit.fen(), 0);
                    let rounding = b.total_of(DiscountKind::Rounding).fen();
                    if input.rules.rounding_mode == RoundingMode::Nearest {
                        prop_assert!(2 * rounding.abs() <= input.rules.rounding_unit.fen());
                    }
                    if input.rules.rounding_mode == RoundingMode::Down {
                        prop_assert!(b.discounts.iter().all(|d| d.amount.fen() > 0));
                        prop_assert!(b.amount_due <= b.gross);
                        prop_assert!(rounding < input.rules.rounding_unit.fen());
                    }
                    // All coupons were applied (or the pricing failed), once each.
                    let codes: Vec<&str> = input.coupons.iter().map(|c| c.code.as_str()).collect();
                    prop_assert_eq!(b.coupons_applied.iter().map(String::as_str).collect::<Vec<_>>(), codes);
                    prop_assert_eq!(b.discounts.iter().filter(|d| d.kind == DiscountKind::Coupon).count(), input.coupons.len());
                    if let Some(p) = &input.points {
                        prop_assert!(b.points_used <= p.available);
                        prop_assert!(b.points_used <= p.requested.unwrap_or(0));
                    } else {
                        prop_assert_eq!(b.points_used, 0);
                    }
                }
                Err(e) => {
                    // The lines are valid, so only a coupon or points can be refused.
                    prop_assert!(
                        matches!(e, PricingError::CouponNotApplicable { .. } | PricingError::Points(_)),
                        "{e:?}"
                    );
                }
            }
        }

        #[test]
        fn without_coupons_or_points_every_bill_prices(
            lines in proptest::collection::vec(any_line(), 1..=12),
            level in 0u32..10_000,
            svm in any::<bool>(),
            rules in any_rules(),
        ) {
            let input = PricingInput {
                lines,
                level_discount_bp: level,
                stored_value_member: svm,
                rules,
                ..PricingInput::default()
            };
            let b = price(&input).unwrap();
            prop_assert_eq!(b.check_invariants(), Ok(()));
            // The level discount is within half a fen of the exact rate on its lines.
            let exact = |k: DiscountKind, bp: u32| {
                let base: i128 = b.lines.iter().zip(&input.lines)
                    .filter(|(l, _)| l.discounts.iter().any(|d| d.0 == k))
                    .map(|(l, p)| {
                        let before: i64 = l.discounts.iter()
                            .take_while(|d| d.0 != k).map(|d| d.1.fen()).sum();
                        i128::from(i64::from(p.quantity) * p.unit_price.fen() - before)
                    }).sum();
                base * i128::from(bp)
            };
            let got = i128::from(b.total_of(DiscountKind::LevelDiscount).fen()) * 10_000;
            let want = exact(DiscountKind::LevelDiscount, level);
            prop_assert!((got - want).abs() <= 5_000, "{} vs {}", got, want);
        }
    }

    // ---- Hostile input: whatever a till or an API client may send ----

    /// Case count: `PROPTEST_CASES` when set, else `default` (kept moderate for CI).
    fn cases(default: u32) -> u32 {
        std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    }

    /// Any amount of fen, the edges and overflow bait weighted in.
    fn hostile_fen() -> impl Strategy<Value = i64> {
        prop_oneof![
            Just(0i64),
            Just(-1i64),
            Just(i64::MAX),
            Just(i64::MIN),
            Just(MAX_PRICE.fen()),
            Just(MAX_PRICE.fen() + 1),
            0i64..=MAX_PRICE.fen(),
            any::<i64>(),
        ]
    }

    fn hostile_u32() -> impl Strategy<Value = u32> {
        prop_oneof![
            Just(0u32),
            Just(10_000u32),
            Just(10_001u32),
            Just(u32::MAX),
            0u32..=20_000,
            any::<u32>(),
        ]
    }

    fn hostile_line() -> impl Strategy<Value = PricingLine> {
        (
            0u128..4,
            prop_oneof![
                Just(0u32),
                1u32..=10,
                Just(MAX_QUANTITY),
                Just(MAX_QUANTITY + 1),
                any::<u32>()
            ],
            hostile_fen(),
            proptest::option::of(hostile_fen()),
            any::<bool>(),
            ".{0,40}",
        )
            .prop_map(|(id, quantity, price, member, joins, name)| PricingLine {
                item_id: (id > 0).then(|| item(id)),
                name,
                quantity,
                unit_price: fen(price),
                member_unit_price: member.map(fen),
                joins_discounts: joins,
            })
    }

    fn hostile_kind() -> impl Strategy<Value = CouponKind> {
        let money = || hostile_fen().prop_map(fen);
        prop_oneof![
            (money(), proptest::option::of(money()))
                .prop_map(|(value, min_spend)| CouponKind::Cash { value, min_spend }),
            (
                hostile_u32(),
                proptest::option::of(money()),
                proptest::option::of(money())
            )
                .prop_map(|(percent_off_bp, cap, min_spend)| CouponKind::Discount {
                    percent_off_bp,
                    cap,
                    min_spend
                }),
            (0u128..5).prop_map(|id| CouponKind::Item {
                menu_item_id: item(id),
                name: "x".into()
            }),
        ]
    }

    fn hostile_input() -> impl Strategy<Value = PricingInput> {
        let points = proptest::option::of(
            (
                prop_oneof![0i64..100_000, any::<i64>()],
                proptest::option::of(prop_oneof![0i64..100_000, any::<i64>()]),
                prop_oneof![1i64..1_000, any::<i64>()],
                hostile_u32(),
                any::<bool>(),
            )
                .prop_map(|(available, requested, per_yuan, share, enabled)| {
                    PointsOffer {
                        available,
                        requested,
                        redemption: CashRedemption {
                            points_per_yuan: per_yuan,
                            max_share_bp: share,
                            enabled,
                        },
                    }
                }),
        );
        let coupons =
            proptest::collection::vec((hostile_kind(), any::<bool>(), any::<bool>(), 0u8..6), 0..5)
                .prop_map(|v| {
                    v.into_iter()
                        .map(|(kind, stacks_c, stacks_m, code)| CouponOffer {
                            // Few codes, so duplicates come up.
                            code: format!("C{code}"),
                            name: "券".into(),
                            kind,
                            stacks_with_coupons: stacks_c,
                            stacks_with_member_price: stacks_m,
                        })
                        .collect::<Vec<_>>()
                });
        let rules = (
            prop_oneof![
                Just(RoundingUnit::None),
                Just(RoundingUnit::Jiao),
                Just(RoundingUnit::Yuan)
            ],
            prop_oneof![Just(RoundingMode::Down), Just(RoundingMode::Nearest)],
            hostile_u32(),
            hostile_u32(),
            any::<bool>(),
        )
            .prop_map(|(unit, mode, per_bill, off, replaces)| CheckoutRules {
                rounding_unit: unit,
                rounding_mode: mode,
                coupons_per_bill: per_bill,
                stored_value_member_off_bp: off,
                payment_rule_replaces_level_discount: replaces,
            });
        (
            proptest::collection::vec(hostile_line(), 0..=8),
            hostile_u32(),
            any::<bool>(),
            any::<bool>(),
            coupons,
            points,
            rules,
        )
            .prop_map(|(lines, level, svm, pays_sv, coupons, points, rules)| {
                PricingInput {
                    lines,
                    level_discount_bp: level,
                    level_name: None,
                    level_name_en: None,
                    stored_value_member: svm,
                    pays_with_stored_value: pays_sv,
                    coupons,
                    points,
                    rules,
                }
            })
    }

    /// The first line check that fails, as [`price`] states its rules.
    fn first_bad_line(lines: &[PricingLine]) -> Option<(usize, &'static str)> {
        lines.iter().enumerate().find_map(|(i, l)| {
            let reason = if l.quantity == 0 {
                "zero_quantity"
            } else if l.quantity > MAX_QUANTITY {
                "quantity_too_large"
            } else if l.unit_price.is_negative() {
                "negative_price"
            } else if l.unit_price > MAX_PRICE {
                "price_too_large"
            } else if l.member_unit_price.is_some_and(Money::is_negative) {
                "negative_member_price"
            } else if l.member_unit_price.is_some_and(|m| m > l.unit_price) {
                "member_price_above_regular"
            } else {
                return None;
            };
            Some((i, reason))
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(cases(1_000)))]

        /// Negative, huge and overflowing amounts, quantities, rates, coupons and points:
        /// pricing never panics (debug assertions included), refuses a bad line by its
        /// index and reason, and whatever it prices keeps every invariant: no negative
        /// line or total, the lines' nets add up to the amount due.
        #[test]
        fn hostile_bills_never_panic_or_go_negative(input in hostile_input()) {
            let result = price(&input);
            if input.lines.is_empty() {
                prop_assert_eq!(result, Err(PricingError::EmptyBill));
                return Ok(());
            }
            if let Some((index, reason)) = first_bad_line(&input.lines) {
                prop_assert_eq!(result, Err(PricingError::BadLine { index, reason }));
                return Ok(());
            }
            match result {
                Ok(b) => {
                    prop_assert_eq!(b.check_invariants(), Ok(()));
                    prop_assert!(!b.amount_due.is_negative());
                    prop_assert!(b.lines.iter().all(|l| !l.net.is_negative()));
                    let nets: i64 = b.lines.iter().map(|l| l.net.fen()).sum();
                    prop_assert_eq!(nets, b.amount_due.fen());
                    let gross: i64 = input.lines.iter()
                        .map(|l| i64::from(l.quantity) * l.unit_price.fen()).sum();
                    prop_assert_eq!(b.gross.fen(), gross);
                    // Only rounding to the nearest unit may charge more than the lines.
                    let slack = match input.rules.rounding_mode {
                        RoundingMode::Down => 0,
                        RoundingMode::Nearest => input.rules.rounding_unit.fen() / 2,
                    };
                    prop_assert!(b.amount_due.fen() <= gross + slack);
                    if let Some(p) = &input.points {
                        prop_assert!(b.points_used >= 0);
                        prop_assert!(b.points_used <= p.available.max(0));
                    } else {
                        prop_assert_eq!(b.points_used, 0);
                    }
                    prop_assert!(b.discounts.iter()
                        .all(|d| !d.amount.is_negative() || d.kind == DiscountKind::Rounding));
                }
                Err(e) => {
                    // The lines are valid: only a coupon or the points can be refused.
                    prop_assert!(
                        matches!(e, PricingError::CouponNotApplicable { .. } | PricingError::Points(_)),
                        "{e:?}"
                    );
                    prop_assert!(!e.code().is_empty());
                }
            }
        }

        /// A bill as JSON from a client: arbitrary bytes and arbitrary JSON either fail to
        /// parse or price (or are refused) without a panic.
        #[test]
        fn arbitrary_json_bills_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..256),
            input in hostile_input(),
        ) {
            if let Ok(parsed) = serde_json::from_slice::<PricingInput>(&bytes) {
                let _ = price(&parsed);
            }
            // The hostile input survives a round trip through JSON unchanged and prices alike.
            let json = serde_json::to_vec(&input).unwrap();
            let back: PricingInput = serde_json::from_slice(&json).unwrap();
            prop_assert_eq!(&back, &input);
            prop_assert_eq!(price(&back), price(&input));
        }
    }
}
