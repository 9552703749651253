//! The menu: dishes in categories with their regular price, member prices per level or
//! per kind of member card, and the price history that keeps old receipts explainable.
//!
//! [`quote`] is the one rule for what a buyer pays for an item: the lowest member price
//! the buyer is eligible for, never above the regular price and never below zero.

use crate::error::{FieldError, ValidationErrors};
use crate::ids::{MenuItemId, StaffId, TenantId};
use crate::money::Money;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// The highest regular or member price accepted (a typo guard far above any dish).
pub const MAX_PRICE: Money = Money::from_yuan(1_000_000);
/// Longest dish or category name, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Longest level code.
pub const MAX_LEVEL_CODE: usize = 32;
/// Most member prices one item may have.
pub const MAX_MEMBER_PRICES: usize = 50;

/// A menu category (凉菜, 热菜, 主食...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MenuCategory {
    #[serde(skip_serializing)]
    #[schema(ignore)]
    pub tenant_id: TenantId,
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    pub name: String,
    pub name_en: String,
    pub sort_order: i32,
}

/// A dish.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MenuItem {
    #[serde(skip_serializing)]
    #[schema(ignore)]
    pub tenant_id: TenantId,
    pub id: MenuItemId,
    #[schema(value_type = String, format = Uuid)]
    pub category_id: Uuid,
    pub name: String,
    pub name_en: String,
    /// Regular price in fen.
    pub price: Money,
    /// Whether the item joins bill discounts (level discount, coupons); some set menus
    /// and drinks do not. A member price is the item's own price, not a discount, so it
    /// applies either way.
    pub joins_discounts: bool,
    pub active: bool,
}

/// One kind of member card (a card may be several at once, see
/// [`CardKinds`](crate::card::CardKinds)).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum CardKind {
    StoredValue,
    Points,
    MemberPrice,
}

impl CardKind {
    pub const ALL: [CardKind; 3] = [
        CardKind::StoredValue,
        CardKind::Points,
        CardKind::MemberPrice,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CardKind::StoredValue => "stored_value",
            CardKind::Points => "points",
            CardKind::MemberPrice => "member_price",
        }
    }
    pub fn parse(s: &str) -> Option<CardKind> {
        CardKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
    /// Whether a card with these kinds is of this kind.
    pub fn held_by(self, kinds: crate::card::CardKinds) -> bool {
        match self {
            CardKind::StoredValue => kinds.stored_value,
            CardKind::Points => kinds.points,
            CardKind::MemberPrice => kinds.member_price,
        }
    }
}

/// Who a member price is for: the members of a level, or the holders of a kind of card.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PriceTarget {
    /// A member level's code, e.g. "gold". Levels are defined elsewhere; any valid code
    /// (see [`valid_level_code`]) is accepted so prices can be set up before the level.
    Level(String),
    CardKind(CardKind),
}

impl PriceTarget {
    /// "level" or "card_kind": how the target is stored.
    pub fn kind_str(&self) -> &'static str {
        match self {
            PriceTarget::Level(_) => "level",
            PriceTarget::CardKind(_) => "card_kind",
        }
    }
    /// The level code or the card kind's code.
    pub fn code(&self) -> &str {
        match self {
            PriceTarget::Level(c) => c,
            PriceTarget::CardKind(k) => k.as_str(),
        }
    }
    /// The inverse of ([`kind_str`](Self::kind_str), [`code`](Self::code)).
    pub fn from_parts(kind: &str, code: &str) -> Option<PriceTarget> {
        match kind {
            "level" if valid_level_code(code) => Some(PriceTarget::Level(code.to_string())),
            "card_kind" => CardKind::parse(code).map(PriceTarget::CardKind),
            _ => None,
        }
    }
}

/// An item's price for one target. As JSON: `{"level": "gold", "price": 5800}` or
/// `{"card_kind": "member_price", "price": 6200}`, the same shape the API accepts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct MemberPrice {
    #[serde(skip_serializing)]
    #[schema(ignore)]
    pub item_id: MenuItemId,
    #[serde(flatten)]
    pub target: PriceTarget,
    /// In fen.
    pub price: Money,
}

/// What a price-history row records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PriceChangeKind {
    /// The item was created with these prices.
    Created,
    /// The regular price changed.
    Price,
    /// The member prices were replaced.
    MemberPrices,
    /// Prices as found when the item's history began (an item older than its history).
    Recorded,
}

impl PriceChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PriceChangeKind::Created => "created",
            PriceChangeKind::Price => "price",
            PriceChangeKind::MemberPrices => "member_prices",
            PriceChangeKind::Recorded => "recorded",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [
            PriceChangeKind::Created,
            PriceChangeKind::Price,
            PriceChangeKind::MemberPrices,
            PriceChangeKind::Recorded,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// One row of an item's price history: a snapshot of all of its prices from
/// `effective_from` until the next row. Rows are appended, never edited, so the price of
/// any past moment can be told (see [`quote`] with the snapshot's prices).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PriceChange {
    #[serde(skip_serializing)]
    #[schema(ignore)]
    pub tenant_id: TenantId,
    pub item_id: MenuItemId,
    /// 1, 2, 3... per item, in the order the changes were made.
    pub seq: i64,
    pub kind: PriceChangeKind,
    /// The regular price from then on.
    pub price: Money,
    /// The complete set of member prices from then on.
    pub member_prices: Vec<MemberPrice>,
    pub effective_from: DateTime<Utc>,
    /// Who made the change (absent for rows the system wrote).
    pub staff_id: Option<StaffId>,
}

impl PriceChange {
    /// The item as this snapshot priced it (for quoting a past moment).
    pub fn priced(&self, item: &MenuItem) -> MenuItem {
        MenuItem {
            price: self.price,
            ..item.clone()
        }
    }
}

/// An item with its current member prices.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PricedItem {
    #[serde(flatten)]
    pub item: MenuItem,
    pub member_prices: Vec<MemberPrice>,
}

/// Who is buying, as far as prices are concerned.
#[derive(Debug, Clone, PartialEq)]
pub struct Buyer {
    /// The member's level code, if any.
    pub level: Option<String>,
    /// The kinds of the (active) card the buyer presents; all false without a card.
    pub card_kinds: crate::card::CardKinds,
    /// Whether the buyer's level grants its member prices. False when the level's rules
    /// withhold them: level prices then do not apply, while prices for the buyer's card
    /// kinds still do (a member-price card is bought for its prices).
    pub member_price_access: bool,
}

impl Buyer {
    /// Someone with no level and no card: pays regular prices.
    pub fn anonymous() -> Buyer {
        Buyer {
            level: None,
            card_kinds: crate::card::CardKinds {
                stored_value: false,
                points: false,
                member_price: false,
            },
            member_price_access: true,
        }
    }

    fn eligible(&self, target: &PriceTarget) -> bool {
        match target {
            PriceTarget::Level(code) => {
                self.member_price_access && self.level.as_deref() == Some(code.as_str())
            }
            PriceTarget::CardKind(kind) => kind.held_by(self.card_kinds),
        }
    }
}

/// Why the unit price is what it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(tag = "kind", content = "code", rename_all = "snake_case")]
pub enum PriceBasis {
    /// The regular price (no eligible member price is lower).
    Regular,
    /// The member price of this level.
    Level(String),
    /// The member price for holders of this kind of card.
    CardKind(CardKind),
}

/// What a buyer pays for one unit of an item, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PriceQuote {
    pub regular: Money,
    /// The best member price the buyer is eligible for (capped at the regular price), if any.
    pub member: Option<Money>,
    /// What the buyer pays per unit.
    pub unit_price: Money,
    pub basis: PriceBasis,
}

/// The price `buyer` pays for `item`: the lowest member price of `item` (prices of other
/// items in `member_prices` are ignored) whose target the buyer is eligible for, capped
/// at the regular price and at zero from below. Ties go to a level price over a card
/// price, then to the smaller code, so the answer never depends on the order of
/// `member_prices`. The basis is a member price only when it is below the regular price.
pub fn quote(item: &MenuItem, member_prices: &[MemberPrice], buyer: &Buyer) -> PriceQuote {
    let regular = item.price;
    let best = member_prices
        .iter()
        .filter(|m| m.item_id == item.id && buyer.eligible(&m.target))
        .min_by(|a, b| (a.price, &a.target).cmp(&(b.price, &b.target)));
    let member = best.map(|m| m.price.min(regular).max(Money::ZERO));
    let unit_price = member.unwrap_or(regular);
    let basis = match best {
        Some(m) if unit_price < regular => match &m.target {
            PriceTarget::Level(c) => PriceBasis::Level(c.clone()),
            PriceTarget::CardKind(k) => PriceBasis::CardKind(*k),
        },
        _ => PriceBasis::Regular,
    };
    PriceQuote {
        regular,
        member,
        unit_price,
        basis,
    }
}

/// A level code: 1–32 characters of `a-z`, `0-9` and `_`, starting with a letter
/// ("gold", "vip2", "black_card").
pub fn valid_level_code(code: &str) -> bool {
    let mut chars = code.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && code.len() <= MAX_LEVEL_CODE
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// A dish or category name: trimmed, non-empty (when `required`), at most
/// [`MAX_NAME_CHARS`] characters. Returns the trimmed name.
pub fn check_name(field: &str, name: &str, required: bool) -> Result<String, FieldError> {
    let t = name.trim();
    if required && t.is_empty() {
        return Err(FieldError::new(field, "required", "a name is required"));
    }
    if t.chars().count() > MAX_NAME_CHARS {
        return Err(FieldError::new(
            field,
            "too_long",
            format!("at most {MAX_NAME_CHARS} characters"),
        ));
    }
    Ok(t.to_string())
}

/// A regular or member price: 0 to [`MAX_PRICE`].
pub fn check_price(field: &str, price: Money) -> Result<Money, FieldError> {
    if price.is_negative() {
        return Err(FieldError::new(
            field,
            "negative",
            "a price cannot be negative",
        ));
    }
    if price > MAX_PRICE {
        return Err(FieldError::new(
            field,
            "too_large",
            format!("at most {MAX_PRICE}"),
        ));
    }
    Ok(price)
}

/// A member price as typed: exactly one of `level` and `card_kind`, and the price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberPriceInput {
    /// A level code ("gold").
    #[serde(default)]
    pub level: Option<String>,
    /// stored_value, points or member_price.
    #[serde(default)]
    pub card_kind: Option<String>,
    /// In fen; at most the regular price.
    pub price: Money,
}

/// Validates a complete set of member prices for an item with regular price `regular`.
/// Errors name the entry (`member_prices[1].card_kind`): no target or both, an invalid
/// level code, an unknown card kind, a negative price or one above `regular`, the same
/// target twice, more than [`MAX_MEMBER_PRICES`] entries.
pub fn validate_member_prices(
    item: MenuItemId,
    regular: Money,
    inputs: &[MemberPriceInput],
) -> Result<Vec<MemberPrice>, ValidationErrors> {
    let mut errors = ValidationErrors::default();
    if inputs.len() > MAX_MEMBER_PRICES {
        errors.push(FieldError::new(
            "member_prices",
            "too_many",
            format!("at most {MAX_MEMBER_PRICES} member prices per item"),
        ));
        return Err(errors);
    }
    let mut out: Vec<MemberPrice> = Vec::with_capacity(inputs.len());
    for (i, input) in inputs.iter().enumerate() {
        let f = |name: &str| format!("member_prices[{i}].{name}");
        let target = match (&input.level, &input.card_kind) {
            (Some(level), None) => {
                if valid_level_code(level) {
                    Some(PriceTarget::Level(level.clone()))
                } else {
                    errors.push(FieldError::new(
                        f("level"),
                        "invalid_level_code",
                        "a level code is 1–32 characters of a-z, 0-9 and _, starting with a letter",
                    ));
                    None
                }
            }
            (None, Some(kind)) => match CardKind::parse(kind) {
                Some(k) => Some(PriceTarget::CardKind(k)),
                None => {
                    errors.push(FieldError::new(
                        f("card_kind"),
                        "unknown_card_kind",
                        format!("{kind:?} is not a card kind (stored_value, points, member_price)"),
                    ));
                    None
                }
            },
            _ => {
                errors.push(FieldError::new(
                    format!("member_prices[{i}]"),
                    "one_target",
                    "give exactly one of level and card_kind",
                ));
                None
            }
        };
        match check_price(&f("price"), input.price) {
            Err(e) => errors.push(e),
            Ok(p) if p > regular => errors.push(FieldError::new(
                f("price"),
                "above_regular_price",
                format!("a member price cannot be above the regular price {regular}"),
            )),
            Ok(_) => {}
        }
        if let Some(target) = target {
            if out.iter().any(|m| m.target == target) {
                errors.push(FieldError::new(
                    format!("member_prices[{i}]"),
                    "duplicate_target",
                    format!(
                        "a second price for {} {:?}",
                        target.kind_str(),
                        target.code()
                    ),
                ));
            } else {
                out.push(MemberPrice {
                    item_id: item,
                    target,
                    price: input.price,
                });
            }
        }
    }
    errors.into_result(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::card::CardKinds;
    use proptest::prelude::*;

    fn item(price: i64) -> MenuItem {
        MenuItem {
            tenant_id: TenantId(Uuid::nil()),
            id: MenuItemId(Uuid::from_u128(1)),
            category_id: Uuid::nil(),
            name: "红烧肉".into(),
            name_en: "Braised pork".into(),
            price: Money::from_fen(price),
            joins_discounts: true,
            active: true,
        }
    }

    fn level(code: &str, fen: i64) -> MemberPrice {
        MemberPrice {
            item_id: MenuItemId(Uuid::from_u128(1)),
            target: PriceTarget::Level(code.into()),
            price: Money::from_fen(fen),
        }
    }

    fn card(kind: CardKind, fen: i64) -> MemberPrice {
        MemberPrice {
            item_id: MenuItemId(Uuid::from_u128(1)),
            target: PriceTarget::CardKind(kind),
            price: Money::from_fen(fen),
        }
    }

    fn buyer(level: Option<&str>, member_price_card: bool) -> Buyer {
        Buyer {
            level: level.map(Into::into),
            card_kinds: CardKinds {
                stored_value: true,
                points: true,
                member_price: member_price_card,
            },
            member_price_access: true,
        }
    }

    #[test]
    fn no_member_price_means_regular() {
        let q = quote(&item(6800), &[], &buyer(Some("gold"), true));
        assert_eq!(
            q,
            PriceQuote {
                regular: Money::from_fen(6800),
                member: None,
                unit_price: Money::from_fen(6800),
                basis: PriceBasis::Regular
            }
        );
    }

    #[test]
    fn level_card_and_none() {
        let prices = [
            level("gold", 5800),
            card(CardKind::MemberPrice, 6200),
            level("silver", 6500),
        ];
        let it = item(6800);
        // Gold with a member-price card: the lower (gold) wins.
        let q = quote(&it, &prices, &buyer(Some("gold"), true));
        assert_eq!(q.unit_price, Money::from_fen(5800));
        assert_eq!(q.basis, PriceBasis::Level("gold".into()));
        // No level, member-price card.
        let q = quote(&it, &prices, &buyer(None, true));
        assert_eq!(q.unit_price, Money::from_fen(6200));
        assert_eq!(q.basis, PriceBasis::CardKind(CardKind::MemberPrice));
        // Silver with a member-price card: the card's 62 beats silver's 65.
        let q = quote(&it, &prices, &buyer(Some("silver"), true));
        assert_eq!(q.unit_price, Money::from_fen(6200));
        // Silver without: 65.
        let q = quote(&it, &prices, &buyer(Some("silver"), false));
        assert_eq!(q.unit_price, Money::from_fen(6500));
        // A stored-value card alone with an unknown level: regular.
        let q = quote(&it, &prices, &buyer(Some("bronze"), false));
        assert_eq!((q.unit_price, q.member), (Money::from_fen(6800), None));
        assert_eq!(
            quote(&it, &prices, &Buyer::anonymous()).basis,
            PriceBasis::Regular
        );
    }

    #[test]
    fn withheld_level_prices_keep_card_prices() {
        let prices = [level("gold", 5800), card(CardKind::MemberPrice, 6200)];
        let mut b = buyer(Some("gold"), true);
        b.member_price_access = false;
        let q = quote(&item(6800), &prices, &b);
        assert_eq!(q.unit_price, Money::from_fen(6200));
        b.card_kinds.member_price = false;
        assert_eq!(quote(&item(6800), &prices, &b).basis, PriceBasis::Regular);
    }

    #[test]
    fn capped_at_regular_and_zero_and_other_items_ignored() {
        let it = item(5000);
        // A member price left above a lowered regular price: the regular price is paid.
        let q = quote(&it, &[level("gold", 5200)], &buyer(Some("gold"), false));
        assert_eq!(q.member, Some(Money::from_fen(5000)));
        assert_eq!(
            (q.unit_price, q.basis),
            (Money::from_fen(5000), PriceBasis::Regular)
        );
        let q = quote(&it, &[level("gold", -10)], &buyer(Some("gold"), false));
        assert_eq!(q.unit_price, Money::ZERO);
        let mut other = level("gold", 100);
        other.item_id = MenuItemId(Uuid::from_u128(2));
        let q = quote(&it, &[other], &buyer(Some("gold"), false));
        assert_eq!(q.unit_price, Money::from_fen(5000));
    }

    #[test]
    fn ties_prefer_level_regardless_of_order() {
        let a = [card(CardKind::MemberPrice, 6000), level("gold", 6000)];
        let b = [level("gold", 6000), card(CardKind::MemberPrice, 6000)];
        let it = item(6800);
        let qa = quote(&it, &a, &buyer(Some("gold"), true));
        let qb = quote(&it, &b, &buyer(Some("gold"), true));
        assert_eq!(qa, qb);
        assert_eq!(qa.basis, PriceBasis::Level("gold".into()));
    }

    #[test]
    fn level_codes() {
        for ok in ["gold", "vip2", "black_card", "a"] {
            assert!(valid_level_code(ok), "{ok}");
        }
        for bad in [
            "",
            "Gold",
            "2vip",
            "金卡",
            "gold card",
            "gold-card",
            &"a".repeat(33),
        ] {
            assert!(!valid_level_code(bad), "{bad}");
        }
    }

    #[test]
    fn member_price_validation() {
        let id = MenuItemId(Uuid::from_u128(1));
        let input = |level: Option<&str>, kind: Option<&str>, fen: i64| MemberPriceInput {
            level: level.map(Into::into),
            card_kind: kind.map(Into::into),
            price: Money::from_fen(fen),
        };
        let ok = validate_member_prices(
            id,
            Money::from_fen(6800),
            &[
                input(Some("gold"), None, 5800),
                input(None, Some("member_price"), 6800),
            ],
        )
        .unwrap();
        assert_eq!(
            ok,
            vec![level("gold", 5800), card(CardKind::MemberPrice, 6800)]
        );

        let err = validate_member_prices(
            id,
            Money::from_fen(6800),
            &[
                input(Some("gold"), None, 6900),
                input(None, Some("diamond"), 100),
                input(Some("Gold"), None, 100),
                input(None, None, 100),
                input(Some("a"), Some("points"), 100),
                input(Some("gold"), None, 100),
                input(Some("x"), None, -1),
            ],
        )
        .unwrap_err();
        let codes: Vec<(&str, &str)> = err.0.iter().map(|e| (e.field.as_str(), e.code)).collect();
        assert_eq!(
            codes,
            vec![
                ("member_prices[0].price", "above_regular_price"),
                ("member_prices[1].card_kind", "unknown_card_kind"),
                ("member_prices[2].level", "invalid_level_code"),
                ("member_prices[3]", "one_target"),
                ("member_prices[4]", "one_target"),
                ("member_prices[5]", "duplicate_target"),
                ("member_prices[6].price", "negative"),
            ]
        );
    }

    #[test]
    fn names_and_prices() {
        assert_eq!(check_name("name", "  红烧肉 ", true).unwrap(), "红烧肉");
        assert_eq!(check_name("name", " ", true).unwrap_err().code, "required");
        assert_eq!(check_name("name_en", "", false).unwrap(), "");
        assert_eq!(
            check_name("name", &"菜".repeat(101), true)
                .unwrap_err()
                .code,
            "too_long"
        );
        assert!(check_price("price", Money::ZERO).is_ok());
        assert_eq!(
            check_price("price", Money::from_fen(-1)).unwrap_err().code,
            "negative"
        );
        assert_eq!(
            check_price("price", MAX_PRICE + Money::from_fen(1))
                .unwrap_err()
                .code,
            "too_large"
        );
    }

    #[test]
    fn json_shapes() {
        let v = serde_json::to_value(level("gold", 5800)).unwrap();
        assert_eq!(v, serde_json::json!({"level": "gold", "price": 5800}));
        let v = serde_json::to_value(card(CardKind::MemberPrice, 6200)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"card_kind": "member_price", "price": 6200})
        );
        let v = serde_json::to_value(PriceBasis::Regular).unwrap();
        assert_eq!(v, serde_json::json!({"kind": "regular"}));
        let v = serde_json::to_value(PriceBasis::Level("gold".into())).unwrap();
        assert_eq!(v, serde_json::json!({"kind": "level", "code": "gold"}));
        for k in CardKind::ALL {
            assert_eq!(CardKind::parse(k.as_str()), Some(k));
            let t = PriceTarget::CardKind(k);
            assert_eq!(PriceTarget::from_parts(t.kind_str(), t.code()), Some(t));
        }
        assert_eq!(PriceTarget::from_parts("level", "Gold"), None);
    }

    fn any_target() -> impl Strategy<Value = PriceTarget> {
        prop_oneof![
            prop::sample::select(vec!["gold", "silver", "vip"])
                .prop_map(|c| PriceTarget::Level(c.to_string())),
            prop::sample::select(CardKind::ALL.to_vec()).prop_map(PriceTarget::CardKind),
        ]
    }

    proptest! {
        #[test]
        fn quote_within_zero_and_regular(
            regular in 0i64..=MAX_PRICE.fen(),
            prices in prop::collection::vec((any_target(), -1_000_000i64..=2 * MAX_PRICE.fen()), 0..8),
            level in prop::option::of(prop::sample::select(vec!["gold", "silver", "vip", "bronze"])),
            kinds in (any::<bool>(), any::<bool>(), any::<bool>()),
            access in any::<bool>(),
        ) {
            let it = item(regular);
            let prices: Vec<MemberPrice> = prices
                .into_iter()
                .map(|(target, fen)| MemberPrice { item_id: it.id, target, price: Money::from_fen(fen) })
                .collect();
            let b = Buyer {
                level: level.map(Into::into),
                card_kinds: CardKinds { stored_value: kinds.0, points: kinds.1, member_price: kinds.2 },
                member_price_access: access,
            };
            let q = quote(&it, &prices, &b);
            prop_assert!(q.unit_price <= q.regular);
            prop_assert!(!q.unit_price.is_negative());
            prop_assert_eq!(q.regular, it.price);
            // The price paid is the lowest eligible one (capped), and the basis names it.
            let eligible: Vec<&MemberPrice> = prices.iter().filter(|m| b.eligible(&m.target)).collect();
            let expected = eligible.iter().map(|m| m.price).min()
                .map(|p| p.min(it.price).max(Money::ZERO))
                .unwrap_or(it.price);
            prop_assert_eq!(q.unit_price, expected);
            match &q.basis {
                PriceBasis::Regular => prop_assert_eq!(q.unit_price, q.regular),
                PriceBasis::Level(c) => {
                    prop_assert!(eligible.iter().any(|m| m.target == PriceTarget::Level(c.clone())));
                    prop_assert!(q.unit_price < q.regular);
                }
                PriceBasis::CardKind(k) => {
                    prop_assert!(eligible.iter().any(|m| m.target == PriceTarget::CardKind(*k)));
                    prop_assert!(q.unit_price < q.regular);
                }
            }
            // The order of the prices does not matter.
            let mut reversed = prices.clone();
            reversed.reverse();
            prop_assert_eq!(quote(&it, &reversed, &b), q);
        }
    }
}
