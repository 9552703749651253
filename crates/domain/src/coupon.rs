//! Coupons (优惠券): templates, issued instances, the rules of redemption, the discount a
//! coupon gives, unguessable codes and spend-triggered issue rules.
//!
//! Three kinds: a cash voucher (代金券, optionally only above a spend threshold: 满减), a
//! discount coupon (折扣券, a percentage off with an optional cap) and an item voucher
//! (兑换券, one named dish free). A template says what a coupon is worth and when, where
//! and by whom it may be used; each issued coupon carries its own validity dates (fixed
//! at issue) and a code the customer shows at the till.
//!
//! Times here are the tenant's local wall-clock time (`NaiveDateTime`), given by the
//! caller: excluded days and hours are how the restaurant reads its own clock.

use crate::error::{FieldError, ValidationErrors};
use crate::ids::{CustomerId, MenuItemId, StaffId, StoreId, TenantId, TimelineEventId};
use crate::money::Money;
use crate::timeline::TimelineEvent;
use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// The largest voucher value, threshold or cap accepted (a typo guard).
pub const MAX_COUPON_MONEY: Money = Money::from_yuan(1_000_000);
/// The longest validity, in days after issue (ten years).
pub const MAX_VALIDITY_DAYS: u32 = 3660;
/// Longest template name, in characters.
pub const MAX_NAME_CHARS: usize = 50;
/// Basis points in a whole (100%).
pub const BP_WHOLE: u32 = 10_000;

/// What a coupon is worth.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum CouponKind {
    /// 代金券: `value` off the bill; with `min_spend`, only on a bill of at least that (满减).
    Cash {
        value: Money,
        #[serde(default)]
        min_spend: Option<Money>,
    },
    /// 折扣券: `percent_off_bp` basis points off the eligible subtotal (1200 = 12% off,
    /// i.e. 88折), at most `cap`, only on a bill of at least `min_spend`.
    Discount {
        percent_off_bp: u32,
        #[serde(default)]
        cap: Option<Money>,
        #[serde(default)]
        min_spend: Option<Money>,
    },
    /// 兑换券: one of this dish free.
    Item {
        menu_item_id: MenuItemId,
        /// The dish's name as printed on the coupon.
        name: String,
    },
}

impl CouponKind {
    /// Stable code: cash, discount, item.
    pub fn code(&self) -> &'static str {
        match self {
            CouponKind::Cash { .. } => "cash",
            CouponKind::Discount { .. } => "discount",
            CouponKind::Item { .. } => "item",
        }
    }
    /// The spend threshold, if any.
    pub fn min_spend(&self) -> Option<Money> {
        match self {
            CouponKind::Cash { min_spend, .. } | CouponKind::Discount { min_spend, .. } => {
                *min_spend
            }
            CouponKind::Item { .. } => None,
        }
    }
    /// A short label for receipts and timelines, e.g. "¥20.00 (满¥100.00)", "12% off".
    pub fn label(&self) -> String {
        let threshold = |m: &Option<Money>| m.map(|m| format!(" (满{m})")).unwrap_or_default();
        match self {
            CouponKind::Cash { value, min_spend } => format!("{value}{}", threshold(min_spend)),
            CouponKind::Discount {
                percent_off_bp,
                cap,
                min_spend,
            } => {
                let pct = format!("{}.{:02}% off", percent_off_bp / 100, percent_off_bp % 100)
                    .replace(".00%", "%");
                let cap = cap.map(|c| format!(", ≤{c}")).unwrap_or_default();
                format!("{pct}{cap}{}", threshold(min_spend))
            }
            CouponKind::Item { name, .. } => format!("兑换 {name}"),
        }
    }
}

/// When an issued coupon may be used. The dates are fixed on the coupon when it is issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Validity {
    /// From `from` to `to`, both days included (a coupon issued after `from` is valid from
    /// its issue day).
    Fixed { from: NaiveDate, to: NaiveDate },
    /// `days` days counting the issue day: issued on the 1st with 7 days, valid through
    /// the 7th ("领取后7天内有效").
    DaysAfterIssue { days: u32 },
    /// From the issue day to the last day of that month ("valid to month end").
    EndOfMonth,
}

/// The days a coupon issued on `issued_on` is valid (both included), or `None` when a
/// fixed window has already ended (nothing can be issued from it any more).
pub fn validity_window(validity: Validity, issued_on: NaiveDate) -> Option<(NaiveDate, NaiveDate)> {
    match validity {
        Validity::Fixed { from, to } => (issued_on <= to).then_some((from.max(issued_on), to)),
        Validity::DaysAfterIssue { days } => {
            let last = issued_on.checked_add_days(Days::new(u64::from(days.max(1)) - 1))?;
            Some((issued_on, last))
        }
        Validity::EndOfMonth => Some((issued_on, last_day_of_month(issued_on))),
    }
}

/// The last day of the month of `d`.
pub fn last_day_of_month(d: NaiveDate) -> NaiveDate {
    let (y, m) = if d.month() == 12 {
        (d.year() + 1, 1)
    } else {
        (d.year(), d.month() + 1)
    };
    NaiveDate::from_ymd_opt(y, m, 1)
        .and_then(|first| first.pred_opt())
        .expect("a valid month has a last day")
}

/// A half-open local time range `[from, to)` in which coupons may not be used, e.g.
/// 11:00–13:00 (the lunch rush). `from > to` wraps past midnight (22:00–02:00).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HourRange {
    /// "11:00".
    #[schema(value_type = String, example = "11:00")]
    pub from: NaiveTime,
    /// "13:00" (not included).
    #[schema(value_type = String, example = "13:00")]
    pub to: NaiveTime,
}

impl HourRange {
    pub fn contains(&self, t: NaiveTime) -> bool {
        if self.from <= self.to {
            self.from <= t && t < self.to
        } else {
            t >= self.from || t < self.to
        }
    }
}

/// A coupon template: what the coupons issued from it are worth, and their rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CouponTemplate {
    #[serde(skip_serializing)]
    #[schema(ignore)]
    pub tenant_id: TenantId,
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    pub name: String,
    pub name_en: String,
    pub kind: CouponKind,
    pub validity: Validity,
    /// Days of the week it cannot be used: 1 = Monday … 7 = Sunday.
    pub excluded_weekdays: Vec<u8>,
    /// Local hours it cannot be used.
    pub excluded_hours: Vec<HourRange>,
    /// The stores where it can be used; empty = all.
    pub store_ids: Vec<StoreId>,
    /// The member levels that can use it; empty = everyone.
    pub level_codes: Vec<String>,
    /// How many coupons of this template one customer may hold (voided ones not counted).
    pub per_customer_limit: Option<u32>,
    /// Whether it can be used on a bill together with other coupons.
    pub stacks_with_coupons: bool,
    /// Whether it can be used on a bill priced at member prices.
    pub stacks_with_member_price: bool,
    /// Whether someone other than its owner may use it (a coupon given to a friend).
    pub transferable: bool,
    /// Points for which a customer can exchange it; `None` = not exchangeable.
    pub points_price: Option<i64>,
    /// Inactive templates issue nothing; coupons already issued stay usable.
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Checks a template's fields; every problem is reported against its field.
pub fn validate_template(t: &CouponTemplate) -> Result<(), ValidationErrors> {
    let mut e = ValidationErrors::default();
    let name = t.name.trim();
    if name.is_empty() {
        e.push(FieldError::new(
            "name",
            "required",
            "give the coupon a name",
        ));
    } else if name.chars().count() > MAX_NAME_CHARS || t.name_en.chars().count() > MAX_NAME_CHARS {
        e.push(FieldError::new(
            "name",
            "too_long",
            format!("at most {MAX_NAME_CHARS} characters"),
        ));
    }
    let money = |e: &mut ValidationErrors, field: &str, m: Money| {
        if m.fen() <= 0 {
            e.push(FieldError::new(
                field,
                "not_positive",
                "must be more than zero",
            ));
        } else if m > MAX_COUPON_MONEY {
            e.push(FieldError::new(
                field,
                "too_large",
                format!("at most {MAX_COUPON_MONEY}"),
            ));
        }
    };
    match &t.kind {
        CouponKind::Cash { value, min_spend } => {
            money(&mut e, "kind.value", *value);
            if let Some(m) = min_spend {
                money(&mut e, "kind.min_spend", *m);
            }
        }
        CouponKind::Discount {
            percent_off_bp,
            cap,
            min_spend,
        } => {
            if !(1..BP_WHOLE).contains(percent_off_bp) {
                e.push(FieldError::new(
                    "kind.percent_off_bp",
                    "out_of_range",
                    "1–9999 basis points off (1200 = 12% off, i.e. 88折)",
                ));
            }
            if let Some(c) = cap {
                money(&mut e, "kind.cap", *c);
            }
            if let Some(m) = min_spend {
                money(&mut e, "kind.min_spend", *m);
            }
        }
        CouponKind::Item { name, .. } => {
            if name.trim().is_empty() {
                e.push(FieldError::new("kind.name", "required", "name the dish"));
            }
        }
    }
    match t.validity {
        Validity::Fixed { from, to } if from > to => e.push(FieldError::new(
            "validity",
            "invalid_range",
            "the first day is after the last",
        )),
        Validity::DaysAfterIssue { days } if days == 0 || days > MAX_VALIDITY_DAYS => {
            e.push(FieldError::new(
                "validity.days",
                "out_of_range",
                format!("1–{MAX_VALIDITY_DAYS} days"),
            ))
        }
        _ => {}
    }
    if t.excluded_weekdays.iter().any(|d| !(1..=7).contains(d)) {
        e.push(FieldError::new(
            "excluded_weekdays",
            "out_of_range",
            "days are 1 (Monday) to 7 (Sunday)",
        ));
    } else if (1..=7).all(|d| t.excluded_weekdays.contains(&d)) {
        e.push(FieldError::new(
            "excluded_weekdays",
            "never_usable",
            "excluding every day leaves no day to use it",
        ));
    }
    if t.excluded_hours.iter().any(|h| h.from == h.to) {
        e.push(FieldError::new(
            "excluded_hours",
            "empty_range",
            "a range needs different start and end times",
        ));
    }
    if t.level_codes.iter().any(|l| l.trim().is_empty()) {
        e.push(FieldError::new(
            "level_codes",
            "invalid",
            "empty level code",
        ));
    }
    if t.per_customer_limit == Some(0) {
        e.push(FieldError::new(
            "per_customer_limit",
            "not_positive",
            "at least 1, or leave it out for no limit",
        ));
    }
    if t.points_price.is_some_and(|p| p <= 0) {
        e.push(FieldError::new(
            "points_price",
            "not_positive",
            "at least 1 point, or leave it out",
        ));
    }
    e.into_result(())
}

/// An issued coupon's state. Only `issued` coupons can be redeemed or voided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CouponStatus {
    Issued,
    Redeemed,
    Voided,
    Expired,
}

/// How a coupon came to be issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IssueChannel {
    /// By a staff member, to one customer (a goodwill gesture, a complaint).
    Manual,
    /// To a list of customers at once (a campaign).
    Bulk,
    /// By a spend-trigger rule at checkout.
    Rule,
    /// Bought with points.
    PointsExchange,
}

macro_rules! str_codes {
    ($t:ty { $($v:path => $s:literal),+ }) => {
        impl $t {
            pub fn as_str(self) -> &'static str { match self { $($v => $s),+ } }
            pub fn parse(s: &str) -> Option<Self> { match s { $($s => Some($v),)+ _ => None } }
        }
    };
}
str_codes!(CouponStatus { CouponStatus::Issued => "issued", CouponStatus::Redeemed => "redeemed", CouponStatus::Voided => "voided", CouponStatus::Expired => "expired" });
str_codes!(IssueChannel { IssueChannel::Manual => "manual", IssueChannel::Bulk => "bulk", IssueChannel::Rule => "rule", IssueChannel::PointsExchange => "points_exchange" });

/// An issued coupon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Coupon {
    #[serde(skip_serializing)]
    #[schema(ignore)]
    pub tenant_id: TenantId,
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    #[schema(value_type = String, format = Uuid)]
    pub template_id: Uuid,
    /// "XXXX-XXXX-XXXX-XXXX" (see [`format_code`]).
    pub code: String,
    /// The customer it was issued to.
    pub customer_id: CustomerId,
    pub status: CouponStatus,
    /// First local day it can be used.
    pub valid_from: NaiveDate,
    /// Last local day it can be used.
    pub valid_to: NaiveDate,
    pub issued_at: DateTime<Utc>,
    pub channel: IssueChannel,
    /// The staff member who issued it (or whose checkout triggered it).
    pub issued_by: Option<StaffId>,
    pub issued_store_id: Option<StoreId>,
    pub redeemed_at: Option<DateTime<Utc>>,
    /// Who used it: the owner, or a friend it was given to.
    pub redeemed_by: Option<CustomerId>,
    pub redeemed_store_id: Option<StoreId>,
    pub redeemed_staff_id: Option<StaffId>,
    pub voided_at: Option<DateTime<Utc>>,
    pub voided_by: Option<StaffId>,
    pub void_reason: Option<String>,
}

impl Coupon {
    /// A freshly issued coupon (status `issued`).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        tenant_id: TenantId,
        id: Uuid,
        template_id: Uuid,
        code: String,
        customer_id: CustomerId,
        (valid_from, valid_to): (NaiveDate, NaiveDate),
        issued_at: DateTime<Utc>,
        channel: IssueChannel,
        issued_by: Option<StaffId>,
        issued_store_id: Option<StoreId>,
    ) -> Coupon {
        Coupon {
            tenant_id,
            id,
            template_id,
            code,
            customer_id,
            status: CouponStatus::Issued,
            valid_from,
            valid_to,
            issued_at,
            channel,
            issued_by,
            issued_store_id,
            redeemed_at: None,
            redeemed_by: None,
            redeemed_store_id: None,
            redeemed_staff_id: None,
            voided_at: None,
            voided_by: None,
            void_reason: None,
        }
    }

    /// The owner's `coupon_issued` timeline event (`template_name` for people).
    pub fn issued_event(&self, event_id: Uuid, template_name: &str) -> TimelineEvent {
        TimelineEvent {
            tenant_id: self.tenant_id,
            id: TimelineEventId(event_id),
            customer_id: self.customer_id,
            occurred_at: self.issued_at,
            kind: "coupon_issued".into(),
            summary: format!(
                "获得优惠券 / coupon issued: {template_name} {} (至 {})",
                self.code, self.valid_to
            ),
            data: serde_json::json!({
                "coupon_id": self.id, "template_id": self.template_id, "code": self.code,
                "channel": self.channel.as_str(), "valid_from": self.valid_from, "valid_to": self.valid_to,
            }),
            store_id: self.issued_store_id,
            staff_id: self.issued_by,
        }
    }
}

impl Coupon {
    /// A `coupon_redeemed` event for `on` (the owner, or the friend who used it); the
    /// coupon carries its redemption.
    pub fn redeemed_event(
        &self,
        event_id: Uuid,
        template_name: &str,
        on: CustomerId,
    ) -> TimelineEvent {
        let by_friend = self.redeemed_by.is_some_and(|r| r != self.customer_id);
        TimelineEvent {
            tenant_id: self.tenant_id,
            id: TimelineEventId(event_id),
            customer_id: on,
            occurred_at: self.redeemed_at.unwrap_or(self.issued_at),
            kind: "coupon_redeemed".into(),
            summary: format!(
                "使用优惠券 / coupon used: {template_name} {}{}",
                self.code,
                if by_friend {
                    " (朋友转赠 / given to a friend)"
                } else {
                    ""
                }
            ),
            data: serde_json::json!({
                "coupon_id": self.id, "template_id": self.template_id, "code": self.code,
                "owner_id": self.customer_id, "redeemed_by": self.redeemed_by,
            }),
            store_id: self.redeemed_store_id,
            staff_id: self.redeemed_staff_id,
        }
    }

    /// The owner's `coupon_voided` event; the coupon carries its voiding.
    pub fn voided_event(
        &self,
        event_id: Uuid,
        template_name: &str,
        store: Option<StoreId>,
    ) -> TimelineEvent {
        TimelineEvent {
            tenant_id: self.tenant_id,
            id: TimelineEventId(event_id),
            customer_id: self.customer_id,
            occurred_at: self.voided_at.unwrap_or(self.issued_at),
            kind: "coupon_voided".into(),
            summary: format!(
                "优惠券作废 / coupon voided: {template_name} {} — {}",
                self.code,
                self.void_reason.as_deref().unwrap_or("")
            ),
            data: serde_json::json!({
                "coupon_id": self.id, "template_id": self.template_id, "code": self.code,
                "reason": self.void_reason,
            }),
            store_id: store,
            staff_id: self.voided_by,
        }
    }

    /// The two events of a friend referral through this (redeemed) coupon: on the
    /// redeemer (`referred_by_friend`, with the acquisition source it had before) and on
    /// the owner (`referred_friend`).
    pub fn referral_events(
        &self,
        ids: (Uuid, Uuid),
        previous_source: Option<&str>,
    ) -> Option<(TimelineEvent, TimelineEvent)> {
        let friend = self.redeemed_by.filter(|r| *r != self.customer_id)?;
        let data = serde_json::json!({
            "coupon_id": self.id, "code": self.code, "referrer_id": self.customer_id,
            "referred_id": friend, "previous_acquisition_source": previous_source,
        });
        let event = |id: Uuid, on: CustomerId, kind: &str, summary: String| TimelineEvent {
            tenant_id: self.tenant_id,
            id: TimelineEventId(id),
            customer_id: on,
            occurred_at: self.redeemed_at.unwrap_or(self.issued_at),
            kind: kind.into(),
            summary,
            data: data.clone(),
            store_id: self.redeemed_store_id,
            staff_id: self.redeemed_staff_id,
        };
        Some((
            event(
                ids.0,
                friend,
                "referred_by_friend",
                format!(
                    "经朋友转赠优惠券到店 / came through a friend's coupon {}",
                    self.code
                ),
            ),
            event(
                ids.1,
                self.customer_id,
                "referred_friend",
                format!(
                    "转赠优惠券带来新客 / brought a friend with coupon {}",
                    self.code
                ),
            ),
        ))
    }
}

/// Where, when and by whom a coupon is being used.
#[derive(Debug, Clone, PartialEq)]
pub struct RedeemContext<'a> {
    /// The tenant's local date and time.
    pub at: NaiveDateTime,
    pub store: Option<StoreId>,
    /// The buyer's member level code.
    pub level: Option<&'a str>,
    /// The part of the bill the coupon applies to; `None` when not known (a coupon with a
    /// spend threshold is then refused).
    pub eligible_subtotal: Option<Money>,
    /// Who uses it (`None`: the owner).
    pub redeemer: Option<CustomerId>,
}

/// Why a coupon cannot be used now. `code()` is stable and machine-readable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CouponRejection {
    #[error("the coupon is valid from {0}")]
    NotYetValid(NaiveDate),
    #[error("the coupon expired on {0}")]
    Expired(NaiveDate),
    #[error("the coupon cannot be used on this day of the week")]
    ExcludedDay,
    #[error("the coupon cannot be used at this hour")]
    ExcludedHour,
    #[error("the coupon cannot be used at this store")]
    WrongStore,
    #[error("the coupon is for other member levels")]
    WrongLevel,
    #[error("the coupon needs a bill of at least {0}")]
    BelowThreshold(Money),
    #[error("the coupon has already been used")]
    AlreadyRedeemed,
    #[error("the coupon was voided")]
    Voided,
    #[error("the coupon can only be used by its owner")]
    NotTransferable,
}

impl CouponRejection {
    pub fn code(&self) -> &'static str {
        match self {
            CouponRejection::NotYetValid(_) => "not_yet_valid",
            CouponRejection::Expired(_) => "expired",
            CouponRejection::ExcludedDay => "excluded_day",
            CouponRejection::ExcludedHour => "excluded_hour",
            CouponRejection::WrongStore => "wrong_store",
            CouponRejection::WrongLevel => "wrong_level",
            CouponRejection::BelowThreshold(_) => "below_threshold",
            CouponRejection::AlreadyRedeemed => "already_redeemed",
            CouponRejection::Voided => "voided",
            CouponRejection::NotTransferable => "not_transferable",
        }
    }
}

/// Whether `coupon` (of `template`) can be used in `ctx`. Checks, in order: its status,
/// who uses it, its dates, the day of the week, the hour, the store, the buyer's level
/// and the spend threshold; the first failure is the answer.
pub fn check_redeemable(
    template: &CouponTemplate,
    coupon: &Coupon,
    ctx: &RedeemContext<'_>,
) -> Result<(), CouponRejection> {
    match coupon.status {
        CouponStatus::Issued => {}
        CouponStatus::Redeemed => return Err(CouponRejection::AlreadyRedeemed),
        CouponStatus::Voided => return Err(CouponRejection::Voided),
        CouponStatus::Expired => return Err(CouponRejection::Expired(coupon.valid_to)),
    }
    if ctx.redeemer.is_some_and(|r| r != coupon.customer_id) && !template.transferable {
        return Err(CouponRejection::NotTransferable);
    }
    let today = ctx.at.date();
    if today < coupon.valid_from {
        return Err(CouponRejection::NotYetValid(coupon.valid_from));
    }
    if today > coupon.valid_to {
        return Err(CouponRejection::Expired(coupon.valid_to));
    }
    let weekday = today.weekday().number_from_monday() as u8;
    if template.excluded_weekdays.contains(&weekday) {
        return Err(CouponRejection::ExcludedDay);
    }
    if template
        .excluded_hours
        .iter()
        .any(|h| h.contains(ctx.at.time()))
    {
        return Err(CouponRejection::ExcludedHour);
    }
    if !template.store_ids.is_empty() && !ctx.store.is_some_and(|s| template.store_ids.contains(&s))
    {
        return Err(CouponRejection::WrongStore);
    }
    if !template.level_codes.is_empty()
        && !ctx
            .level
            .is_some_and(|l| template.level_codes.iter().any(|c| c == l))
    {
        return Err(CouponRejection::WrongLevel);
    }
    if let Some(min) = template.kind.min_spend()
        && ctx.eligible_subtotal.is_none_or(|s| s < min)
    {
        return Err(CouponRejection::BelowThreshold(min));
    }
    Ok(())
}

/// The money a coupon takes off an eligible subtotal.
///
/// - cash: its value, at most the subtotal;
/// - discount: `subtotal × percent_off_bp / 10000`, **rounded half up to the fen** (the
///   usual commercial rounding, and what a cashier computing 88折 by hand gets), then at
///   most the cap; neither side is favoured systematically;
/// - item: the item's price (`item_price`, zero when not given), at most the subtotal.
///
/// Never negative, never more than the subtotal (a negative subtotal counts as zero).
pub fn discount_for(
    kind: &CouponKind,
    eligible_subtotal: Money,
    item_price: Option<Money>,
) -> Money {
    let subtotal = eligible_subtotal.max(Money::ZERO);
    let raw = match kind {
        CouponKind::Cash { value, .. } => *value,
        CouponKind::Discount {
            percent_off_bp,
            cap,
            ..
        } => {
            let bp = i128::from((*percent_off_bp).min(BP_WHOLE));
            let off =
                (i128::from(subtotal.fen()) * bp + i128::from(BP_WHOLE / 2)) / i128::from(BP_WHOLE);
            let off = Money::from_fen(i64::try_from(off).expect("at most the subtotal"));
            cap.map_or(off, |c| off.min(c))
        }
        CouponKind::Item { .. } => item_price.unwrap_or(Money::ZERO),
    };
    raw.max(Money::ZERO).min(subtotal)
}

/// Crockford's base 32 alphabet: no I, L, O, U (nothing to misread, no accidental words).
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Random bytes in a code: 80 bits, 16 characters.
pub const CODE_BYTES: usize = 10;

/// A coupon code from 80 random bits (the caller draws them from a CSPRNG): 16 characters
/// of Crockford base 32, shown as `XXXX-XXXX-XXXX-XXXX`. Distinct bytes give distinct codes.
pub fn code_from_bytes(bytes: [u8; CODE_BYTES]) -> String {
    let mut n: u128 = 0;
    for b in bytes {
        n = (n << 8) | u128::from(b);
    }
    let chars: Vec<u8> = (0..16)
        .rev()
        .map(|i| CROCKFORD[((n >> (i * 5)) & 31) as usize])
        .collect();
    format_code(std::str::from_utf8(&chars).expect("ASCII"))
}

/// `XXXXXXXXXXXXXXXX` → `XXXX-XXXX-XXXX-XXXX`.
fn format_code(plain: &str) -> String {
    plain
        .as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).expect("ASCII"))
        .collect::<Vec<_>>()
        .join("-")
}

/// A code as typed or read aloud → its canonical form, or `None` if it cannot be one.
/// Accepts lower case, spaces and dashes anywhere, and reads O as 0 and I/L as 1
/// (Crockford's confusions).
pub fn normalize_code(input: &str) -> Option<String> {
    let mut plain = String::with_capacity(16);
    for c in input.chars() {
        let c = match c.to_ascii_uppercase() {
            ' ' | '-' | '\t' => continue,
            'O' => '0',
            'I' | 'L' => '1',
            c if c.is_ascii() && CROCKFORD.contains(&(c as u8)) => c,
            _ => return None,
        };
        plain.push(c);
    }
    (plain.len() == 16).then(|| format_code(&plain))
}

/// A spend-trigger rule: a bill of at least `min_spend` earns a coupon of `template_id`
/// ("spend 100, get a 100 voucher valid to month end").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct IssueRule {
    #[serde(skip_serializing)]
    #[schema(ignore)]
    pub tenant_id: TenantId,
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    #[schema(value_type = String, format = Uuid)]
    pub template_id: Uuid,
    pub min_spend: Money,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The templates a spend triggers: one per active rule whose threshold it reaches, each
/// template at most once, in rule order.
pub fn triggered(rules: &[IssueRule], spend: Money) -> Vec<Uuid> {
    let mut out: Vec<Uuid> = Vec::new();
    for r in rules {
        if r.active && spend >= r.min_spend && !out.contains(&r.template_id) {
            out.push(r.template_id);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }
    fn at(s: &str) -> NaiveDateTime {
        s.parse().unwrap()
    }
    fn yuan(y: i64) -> Money {
        Money::from_yuan(y)
    }

    fn template(kind: CouponKind) -> CouponTemplate {
        let t0 = DateTime::<Utc>::from_timestamp(0, 0).unwrap();
        CouponTemplate {
            tenant_id: TenantId(Uuid::nil()),
            id: Uuid::from_u128(1),
            name: "满100减20".into(),
            name_en: "20 off 100".into(),
            kind,
            validity: Validity::DaysAfterIssue { days: 30 },
            excluded_weekdays: vec![],
            excluded_hours: vec![],
            store_ids: vec![],
            level_codes: vec![],
            per_customer_limit: None,
            stacks_with_coupons: false,
            stacks_with_member_price: true,
            transferable: false,
            points_price: None,
            active: true,
            created_at: t0,
            updated_at: t0,
        }
    }

    fn coupon(from: &str, to: &str) -> Coupon {
        Coupon::new(
            TenantId(Uuid::nil()),
            Uuid::from_u128(2),
            Uuid::from_u128(1),
            "0000-0000-0000-0000".into(),
            CustomerId(Uuid::from_u128(3)),
            (d(from), d(to)),
            DateTime::<Utc>::from_timestamp(0, 0).unwrap(),
            IssueChannel::Manual,
            None,
            None,
        )
    }

    fn ctx(when: &str) -> RedeemContext<'static> {
        RedeemContext {
            at: at(when),
            store: None,
            level: None,
            eligible_subtotal: Some(yuan(100)),
            redeemer: None,
        }
    }

    fn cash(value: i64, min: Option<i64>) -> CouponKind {
        CouponKind::Cash {
            value: yuan(value),
            min_spend: min.map(yuan),
        }
    }

    #[test]
    fn validity_windows() {
        let issued = d("2026-01-31");
        assert_eq!(
            validity_window(Validity::EndOfMonth, issued),
            Some((issued, issued))
        );
        assert_eq!(
            validity_window(Validity::EndOfMonth, d("2024-02-03")),
            Some((d("2024-02-03"), d("2024-02-29")))
        );
        assert_eq!(
            validity_window(Validity::EndOfMonth, d("2026-12-15")),
            Some((d("2026-12-15"), d("2026-12-31")))
        );
        // 7 days counting the issue day.
        assert_eq!(
            validity_window(Validity::DaysAfterIssue { days: 7 }, d("2026-03-01")),
            Some((d("2026-03-01"), d("2026-03-07")))
        );
        assert_eq!(
            validity_window(Validity::DaysAfterIssue { days: 1 }, d("2026-03-01")),
            Some((d("2026-03-01"), d("2026-03-01")))
        );
        let fixed = Validity::Fixed {
            from: d("2026-05-01"),
            to: d("2026-05-31"),
        };
        assert_eq!(
            validity_window(fixed, d("2026-04-20")),
            Some((d("2026-05-01"), d("2026-05-31")))
        );
        assert_eq!(
            validity_window(fixed, d("2026-05-10")),
            Some((d("2026-05-10"), d("2026-05-31")))
        );
        assert_eq!(validity_window(fixed, d("2026-06-01")), None);
    }

    #[test]
    fn redeemable_in_window_only() {
        let t = template(cash(20, None));
        let c = coupon("2026-03-02", "2026-03-08");
        assert_eq!(
            check_redeemable(&t, &c, &ctx("2026-03-01T23:59:59")),
            Err(CouponRejection::NotYetValid(d("2026-03-02")))
        );
        assert_eq!(
            check_redeemable(&t, &c, &ctx("2026-03-02T00:00:00")),
            Ok(())
        );
        assert_eq!(
            check_redeemable(&t, &c, &ctx("2026-03-08T23:59:59")),
            Ok(())
        );
        let e = check_redeemable(&t, &c, &ctx("2026-03-09T00:00:00")).unwrap_err();
        assert_eq!(e.code(), "expired");
    }

    #[test]
    fn status_comes_first() {
        let t = template(cash(20, None));
        let mut c = coupon("2026-03-02", "2026-03-08");
        for (status, code) in [
            (CouponStatus::Redeemed, "already_redeemed"),
            (CouponStatus::Voided, "voided"),
            (CouponStatus::Expired, "expired"),
        ] {
            c.status = status;
            // Even outside its dates, the status is the reason given.
            let e = check_redeemable(&t, &c, &ctx("2026-01-01T12:00:00")).unwrap_err();
            assert_eq!(e.code(), code);
        }
    }

    #[test]
    fn excluded_days_and_hours() {
        let mut t = template(cash(20, None));
        t.excluded_weekdays = vec![6, 7];
        t.excluded_hours = vec![HourRange {
            from: "11:00:00".parse().unwrap(),
            to: "13:00:00".parse().unwrap(),
        }];
        let c = coupon("2026-01-01", "2026-12-31");
        // 2026-03-07 is a Saturday, 2026-03-09 a Monday.
        assert_eq!(
            check_redeemable(&t, &c, &ctx("2026-03-07T15:00:00")),
            Err(CouponRejection::ExcludedDay)
        );
        assert_eq!(
            check_redeemable(&t, &c, &ctx("2026-03-09T11:00:00")),
            Err(CouponRejection::ExcludedHour)
        );
        assert_eq!(
            check_redeemable(&t, &c, &ctx("2026-03-09T12:59:59")),
            Err(CouponRejection::ExcludedHour)
        );
        assert_eq!(
            check_redeemable(&t, &c, &ctx("2026-03-09T13:00:00")),
            Ok(())
        );
        assert_eq!(
            check_redeemable(&t, &c, &ctx("2026-03-09T10:59:59")),
            Ok(())
        );
        // A range past midnight.
        let late = HourRange {
            from: "22:00:00".parse().unwrap(),
            to: "02:00:00".parse().unwrap(),
        };
        assert!(late.contains("23:30:00".parse().unwrap()));
        assert!(late.contains("01:59:00".parse().unwrap()));
        assert!(!late.contains("02:00:00".parse().unwrap()));
        assert!(!late.contains("12:00:00".parse().unwrap()));
    }

    #[test]
    fn store_level_threshold_and_friends() {
        let (s1, s2) = (StoreId(Uuid::from_u128(10)), StoreId(Uuid::from_u128(11)));
        let mut t = template(cash(20, Some(100)));
        t.store_ids = vec![s1];
        t.level_codes = vec!["gold".into()];
        let c = coupon("2026-01-01", "2026-12-31");
        let mut x = ctx("2026-03-09T15:00:00");
        x.store = Some(s2);
        assert_eq!(
            check_redeemable(&t, &c, &x),
            Err(CouponRejection::WrongStore)
        );
        x.store = Some(s1);
        assert_eq!(
            check_redeemable(&t, &c, &x),
            Err(CouponRejection::WrongLevel)
        );
        x.level = Some("silver");
        assert_eq!(
            check_redeemable(&t, &c, &x),
            Err(CouponRejection::WrongLevel)
        );
        x.level = Some("gold");
        x.eligible_subtotal = Some(Money::from_fen(9_999));
        assert_eq!(
            check_redeemable(&t, &c, &x),
            Err(CouponRejection::BelowThreshold(yuan(100)))
        );
        // Unknown subtotal: a threshold cannot be shown to be met.
        x.eligible_subtotal = None;
        assert_eq!(
            check_redeemable(&t, &c, &x).unwrap_err().code(),
            "below_threshold"
        );
        x.eligible_subtotal = Some(yuan(100));
        assert_eq!(check_redeemable(&t, &c, &x), Ok(()));
        // A friend may use it only when it is transferable; the owner always.
        x.redeemer = Some(CustomerId(Uuid::from_u128(99)));
        assert_eq!(
            check_redeemable(&t, &c, &x),
            Err(CouponRejection::NotTransferable)
        );
        t.transferable = true;
        assert_eq!(check_redeemable(&t, &c, &x), Ok(()));
        t.transferable = false;
        x.redeemer = Some(c.customer_id);
        assert_eq!(check_redeemable(&t, &c, &x), Ok(()));
    }

    #[test]
    fn discounts() {
        assert_eq!(
            discount_for(&cash(20, Some(100)), yuan(150), None),
            yuan(20)
        );
        assert_eq!(discount_for(&cash(100, None), yuan(60), None), yuan(60));
        let pct = |bp, cap: Option<i64>| CouponKind::Discount {
            percent_off_bp: bp,
            cap: cap.map(yuan),
            min_spend: None,
        };
        // 88折 on 123.45: 14.814 → 14.81; on 123.50: 14.82 exactly.
        assert_eq!(
            discount_for(&pct(1200, None), Money::from_fen(12_345), None),
            Money::from_fen(1_481)
        );
        // Half up: 5% of 0.30 = 0.015 → 0.02; 5% of 0.29 = 0.0145 → 0.01.
        assert_eq!(
            discount_for(&pct(500, None), Money::from_fen(30), None),
            Money::from_fen(2)
        );
        assert_eq!(
            discount_for(&pct(500, None), Money::from_fen(29), None),
            Money::from_fen(1)
        );
        assert_eq!(
            discount_for(&pct(2000, Some(50)), yuan(1000), None),
            yuan(50)
        );
        let item = CouponKind::Item {
            menu_item_id: MenuItemId(Uuid::nil()),
            name: "小笼包".into(),
        };
        assert_eq!(discount_for(&item, yuan(100), Some(yuan(38))), yuan(38));
        assert_eq!(discount_for(&item, yuan(100), None), Money::ZERO);
        assert_eq!(
            discount_for(&cash(20, None), Money::from_fen(-5), None),
            Money::ZERO
        );
    }

    #[test]
    fn template_validation() {
        assert!(validate_template(&template(cash(20, Some(100)))).is_ok());
        let mut t = template(CouponKind::Discount {
            percent_off_bp: 10_000,
            cap: Some(Money::ZERO),
            min_spend: None,
        });
        t.name = " ".into();
        t.validity = Validity::DaysAfterIssue { days: 0 };
        t.excluded_weekdays = vec![1, 2, 3, 4, 5, 6, 7];
        t.per_customer_limit = Some(0);
        t.points_price = Some(0);
        let e = validate_template(&t).unwrap_err();
        let fields: Vec<&str> = e.0.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "name",
                "kind.percent_off_bp",
                "kind.cap",
                "validity.days",
                "excluded_weekdays",
                "per_customer_limit",
                "points_price"
            ]
        );
        let mut t = template(cash(0, None));
        t.validity = Validity::Fixed {
            from: d("2026-02-01"),
            to: d("2026-01-01"),
        };
        t.excluded_hours = vec![HourRange {
            from: "11:00:00".parse().unwrap(),
            to: "11:00:00".parse().unwrap(),
        }];
        let e = validate_template(&t).unwrap_err();
        let codes: Vec<&str> = e.0.iter().map(|f| f.code).collect();
        assert_eq!(codes, ["not_positive", "invalid_range", "empty_range"]);
    }

    #[test]
    fn json_shapes() {
        let k: CouponKind =
            serde_json::from_str(r#"{"type":"discount","percent_off_bp":1200,"cap":5000}"#)
                .unwrap();
        assert_eq!(
            k,
            CouponKind::Discount {
                percent_off_bp: 1200,
                cap: Some(Money::from_fen(5000)),
                min_spend: None
            }
        );
        let v: Validity = serde_json::from_str(r#"{"type":"days_after_issue","days":30}"#).unwrap();
        assert_eq!(v, Validity::DaysAfterIssue { days: 30 });
        let h: HourRange = serde_json::from_str(r#"{"from":"11:00","to":"13:30"}"#).unwrap();
        assert_eq!(h.to, "13:30:00".parse::<NaiveTime>().unwrap());
        assert_eq!(cash(20, Some(100)).label(), "¥20.00 (满¥100.00)");
        assert_eq!(
            CouponKind::Discount {
                percent_off_bp: 1250,
                cap: None,
                min_spend: None
            }
            .label(),
            "12.50% off"
        );
    }

    #[test]
    fn codes() {
        assert_eq!(code_from_bytes([0; CODE_BYTES]), "0000-0000-0000-0000");
        assert_eq!(code_from_bytes([0xff; CODE_BYTES]), "ZZZZ-ZZZZ-ZZZZ-ZZZZ");
        assert_eq!(
            normalize_code(" abcd efgh-jkmn pqrs ").as_deref(),
            Some("ABCD-EFGH-JKMN-PQRS")
        );
        // O → 0, I and L → 1.
        assert_eq!(
            normalize_code("oooo-iiii-llll-0000").as_deref(),
            Some("0000-1111-1111-0000")
        );
        assert_eq!(normalize_code("ABCD-EFGH-JKMN-PQR"), None);
        assert_eq!(normalize_code("ABCD-EFGH-JKMN-PQRSU"), None);
        assert_eq!(normalize_code("UUUU-UUUU-UUUU-UUUU"), None);
        assert_eq!(normalize_code("ABCD-EFGH-JKMN-PQR😀"), None);
    }

    #[test]
    fn triggered_rules() {
        let t0 = DateTime::<Utc>::from_timestamp(0, 0).unwrap();
        let rule = |n: u128, tpl: u128, min: i64, active: bool| IssueRule {
            tenant_id: TenantId(Uuid::nil()),
            id: Uuid::from_u128(n),
            template_id: Uuid::from_u128(tpl),
            min_spend: yuan(min),
            active,
            created_at: t0,
            updated_at: t0,
        };
        let rules = [
            rule(1, 100, 100, true),
            rule(2, 200, 300, true),
            rule(3, 300, 50, false),
            rule(4, 100, 200, true),
        ];
        assert!(triggered(&rules, Money::from_fen(9_999)).is_empty());
        assert_eq!(triggered(&rules, yuan(100)), [Uuid::from_u128(100)]);
        assert_eq!(
            triggered(&rules, yuan(300)),
            [Uuid::from_u128(100), Uuid::from_u128(200)]
        );
    }

    fn any_kind() -> impl Strategy<Value = CouponKind> {
        let money = || (1i64..100_000_000).prop_map(Money::from_fen);
        prop_oneof![
            (money(), proptest::option::of(money()))
                .prop_map(|(value, min_spend)| CouponKind::Cash { value, min_spend }),
            (
                1u32..10_000,
                proptest::option::of(money()),
                proptest::option::of(money())
            )
                .prop_map(|(percent_off_bp, cap, min_spend)| CouponKind::Discount {
                    percent_off_bp,
                    cap,
                    min_spend
                }),
            Just(CouponKind::Item {
                menu_item_id: MenuItemId(Uuid::nil()),
                name: "x".into()
            }),
        ]
    }

    proptest! {
        #[test]
        fn discount_is_bounded(
            kind in any_kind(),
            subtotal in -1_000i64..1_000_000_000_000,
            item in proptest::option::of(0i64..100_000_000),
        ) {
            let off = discount_for(&kind, Money::from_fen(subtotal), item.map(Money::from_fen));
            prop_assert!(off >= Money::ZERO);
            prop_assert!(off <= Money::from_fen(subtotal.max(0)));
            match kind {
                CouponKind::Cash { value, .. } => prop_assert!(off <= value),
                CouponKind::Discount { percent_off_bp, cap, .. } => {
                    if let Some(c) = cap { prop_assert!(off <= c); }
                    // Within half a fen of the exact percentage (before the cap).
                    let exact = i128::from(subtotal.max(0)) * i128::from(percent_off_bp);
                    let got = i128::from(off.fen()) * 10_000;
                    prop_assert!(got <= exact + 5_000);
                    if cap.is_none() { prop_assert!(got > exact - 5_000); }
                }
                CouponKind::Item { .. } => prop_assert!(off.fen() <= item.unwrap_or(0)),
            }
        }

        #[test]
        fn codes_round_trip(bytes in proptest::array::uniform10(any::<u8>())) {
            let code = code_from_bytes(bytes);
            prop_assert_eq!(code.len(), 19);
            prop_assert_eq!(normalize_code(&code), Some(code.clone()));
            prop_assert_eq!(normalize_code(&code.to_lowercase().replace('-', " ")), Some(code.clone()));
            let spoken = code.replace('0', "o").replace('1', "l");
            prop_assert_eq!(normalize_code(&spoken), Some(code.clone()));
        }

        #[test]
        fn distinct_bytes_distinct_codes(
            a in proptest::array::uniform10(any::<u8>()),
            b in proptest::array::uniform10(any::<u8>()),
        ) {
            prop_assert_eq!(a == b, code_from_bytes(a) == code_from_bytes(b));
        }
    }
}
