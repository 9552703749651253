//! Checkout at the till: price a bill (quote), take it (checkout), undo it the same
//! business day (反结账).
//!
//! Pricing is the pure `patron_domain::pricing::price`. A checkout is ONE ledger post:
//! revenue at regular prices, every discount (member price, level, payment rule, coupons,
//! points as cash, rounding) against the store's discounts account, the tenders and the
//! stored-value split, the points redeemed and earned, the coupons consumed and issued,
//! the visit, any upgrade, and the bill itself (`checkouts`, `checkout_lines`).

use crate::cards::{Balances, LedgerReceipt, at_store, request_hash, spec};
use crate::loyalty::EarnSummary;
use crate::receipts::{
    BalanceMove, IssuedCouponLine, PointsMove, ReceiptAmount, ReceiptDoc, ReceiptKind, ReceiptLine,
};
use crate::{Actor, App, AppError, now};
use patron_domain::ValidationErrors;
use patron_domain::card::{Card, CardKinds, CardStatus};
use patron_domain::coupon::{self, RedeemContext};
use patron_domain::customer::Customer;
use patron_domain::ids::{CardId, CustomerId, MenuItemId, StaffId};
use patron_domain::ledger::{AccountKey, AccountKind, Posting, Tender};
use patron_domain::money::Money;
use patron_domain::permissions::Permission;
use patron_domain::points::{PayMethod, PointsRule};
use patron_domain::pricing::{
    self, Breakdown, CouponOffer, DiscountKind, PointsOffer, PricingInput, PricingLine,
};
use patron_domain::settings::TenantSettings;
use patron_domain::stored_value::{self, SplitError};
use patron_store::StoreError;
use patron_store::ledger::{
    CheckoutLineRecord, CheckoutRecord, CouponSeen, EntryNote, LedgerChange, PostingSpec,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One line of a bill: a dish from the menu, or an open line with its own name and price.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BillLineInput {
    pub item_id: Option<MenuItemId>,
    /// For open lines (not on the menu).
    pub name: Option<String>,
    pub quantity: u32,
    /// For open lines: the unit price in fen.
    #[schema(value_type = Option<i64>)]
    pub unit_price: Option<Money>,
}

/// Who is paying: any one of these recognises the customer (no card needed).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerRef {
    pub card_number: Option<String>,
    pub phone: Option<String>,
    pub customer_id: Option<CustomerId>,
    pub id_number: Option<String>,
}

/// One payment: stored_value, charge, cash, bank_card, wechat, alipay, other_wallet.
/// At most one tender may leave out its amount: it pays the rest.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenderInput {
    pub method: String,
    #[schema(value_type = Option<i64>)]
    pub amount: Option<Money>,
}

/// A bill to price or to take.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutRequest {
    pub lines: Vec<BillLineInput>,
    #[serde(default)]
    pub customer: Option<CustomerRef>,
    /// The card to pay from or earn on (default: the card found by number, else the
    /// customer's first active card).
    pub card_id: Option<CardId>,
    #[serde(default)]
    pub coupons: Vec<String>,
    /// Points to pay with (as cash).
    pub points: Option<i64>,
    #[serde(default)]
    pub tenders: Vec<TenderInput>,
    pub pin: Option<String>,
    pub pin_token: Option<String>,
    pub party_size: Option<i32>,
    pub table: Option<String>,
    /// Required to take the bill; ignored by the quote.
    #[serde(default)]
    pub idempotency_key: String,
}

/// A tender with its amount resolved.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TenderLine {
    pub method: String,
    #[schema(value_type = i64)]
    pub amount: Money,
    /// For stored value: the principal and bonus parts.
    #[schema(value_type = Option<i64>)]
    pub principal: Option<Money>,
    #[schema(value_type = Option<i64>)]
    pub bonus: Option<Money>,
}

/// What the till screen shows before taking the bill.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CheckoutQuote {
    #[schema(value_type = Object)]
    pub breakdown: Breakdown,
    pub customer_id: Option<CustomerId>,
    pub customer_name: Option<String>,
    pub level: Option<String>,
    pub card_id: Option<CardId>,
    /// The card's balances now.
    pub balances: Option<Balances>,
    /// The tenders as they would be taken (empty when they do not add up yet).
    pub tenders: Vec<TenderLine>,
    /// What is still to pay with the tenders given.
    #[schema(value_type = i64)]
    pub remaining: Money,
}

/// The outcome of a checkout (or its reversal).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CheckoutOutcome {
    #[schema(value_type = String, format = Uuid)]
    pub checkout_id: uuid::Uuid,
    pub number: String,
    pub ledger: LedgerReceipt,
    #[schema(value_type = Object)]
    pub earned: EarnSummary,
    pub receipt: ReceiptDoc,
}

/// A manager's approval given at the till (username and password), for cashiers.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    pub username: String,
    pub password: String,
}

/// Undo a checkout the same business day.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReverseCheckout {
    pub reason: String,
    /// Needed unless the caller is a manager or the owner.
    pub approval: Option<Approval>,
    pub idempotency_key: String,
}

/// One line to refund, by its number on the bill (1-based) and how many.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundLine {
    pub line_no: i32,
    pub quantity: i32,
}

/// A partial refund: some lines, or an amount (a goodwill reduction).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundCheckout {
    #[serde(default)]
    pub lines: Vec<RefundLine>,
    #[schema(value_type = Option<i64>)]
    pub amount: Option<Money>,
    pub reason: String,
    pub approval: Option<Approval>,
    pub idempotency_key: String,
}

/// Everything a checkout needs, read and priced.
struct Prepared {
    settings: TenantSettings,
    store: patron_domain::org::Store,
    customer: Option<Customer>,
    card: Option<Card>,
    keys: Option<[AccountKey; 3]>,
    balances: Option<Balances>,
    breakdown: Breakdown,
    /// The bill's coupons with their templates' names.
    coupons: Vec<(coupon::Coupon, String)>,
}

fn refuse(field: &str, code: &'static str, message: impl Into<String>) -> AppError {
    ValidationErrors::single(field, code, message).into()
}

fn tender_method(s: &str) -> Option<PayMethod> {
    match s {
        "stored_value" => Some(PayMethod::StoredValue),
        "charge" => Some(PayMethod::Charge),
        other => Tender::parse(other).map(PayMethod::Tender),
    }
}

fn method_label(m: &str) -> (&'static str, &'static str) {
    match m {
        "stored_value" => ("储值卡", "Stored value"),
        "charge" => ("挂账", "Charge account"),
        "cash" => ("现金", "Cash"),
        "bank_card" => ("银行卡", "Bank card"),
        "wechat" => ("微信", "WeChat Pay"),
        "alipay" => ("支付宝", "Alipay"),
        _ => ("其他", "Other"),
    }
}

/// Resolves the tenders' amounts against the amount due: at most one open amount, which
/// takes the rest; all must add up exactly.
fn resolve_tenders(tenders: &[TenderInput], due: Money) -> Result<Vec<(String, Money)>, AppError> {
    let mut errors = ValidationErrors::default();
    let mut open = None;
    let mut fixed = Money::ZERO;
    for (i, t) in tenders.iter().enumerate() {
        if tender_method(&t.method).is_none() {
            errors.push(patron_domain::FieldError::new(
                format!("tenders[{i}].method"),
                "invalid_choice",
                format!(
                    "“{}” is not one of: stored_value, charge, cash, bank_card, wechat, alipay, other_wallet",
                    t.method
                ),
            ));
        }
        match t.amount {
            Some(a) if a.fen() <= 0 => errors.push(patron_domain::FieldError::new(
                format!("tenders[{i}].amount"),
                "not_positive",
                "more than zero (or leave it out to pay the rest)",
            )),
            Some(a) if a > crate::cards::MAX_AMOUNT => errors.push(patron_domain::FieldError::new(
                format!("tenders[{i}].amount"),
                "too_large",
                format!("at most {} at once", crate::cards::MAX_AMOUNT),
            )),
            // Each at most MAX_AMOUNT: a 1 MiB body's worth of them cannot overflow.
            Some(a) => fixed = fixed + a,
            None if open.is_some() => errors.push(patron_domain::FieldError::new(
                format!("tenders[{i}].amount"),
                "one_open_tender",
                "only one tender may leave out its amount",
            )),
            None => open = Some(i),
        }
    }
    errors.into_result(())?;
    let rest = due - fixed;
    if rest.is_negative()
        || (open.is_none() && rest != Money::ZERO)
        || (open.is_some() && rest == Money::ZERO && due.fen() > 0)
    {
        return Err(refuse(
            "tenders",
            "tenders_do_not_add_up",
            format!("the tenders add up to {fixed}, the amount due is {due}"),
        ));
    }
    Ok(tenders
        .iter()
        .enumerate()
        .map(|(i, t)| {
            (
                t.method.clone(),
                if Some(i) == open {
                    rest
                } else {
                    t.amount.unwrap_or(Money::ZERO)
                },
            )
        })
        .filter(|(_, a)| a.fen() > 0)
        .collect())
}

impl App {
    /// Reads and prices a bill; changes nothing.
    async fn prepare(&self, actor: &Actor, req: &CheckoutRequest) -> Result<Prepared, AppError> {
        let store_id = at_store(actor, "checkouts")?;
        let store = self
            .directory(actor.tenant_id, Some(store_id))
            .await?
            .stores
            .iter()
            .find(|s| s.id == store_id)
            .cloned()
            .ok_or(AppError::NotFound { entity: "store" })?;
        let settings = self.settings(actor).await?;
        if req.lines.is_empty() {
            return Err(refuse(
                "lines",
                "empty_bill",
                "a bill needs at least one line",
            ));
        }
        // The customer and the card.
        let mut card = match req.card_id {
            Some(id) => Some(self.card(actor, id).await?),
            None => None,
        };
        let mut customer = None;
        if let Some(r) = &req.customer {
            if let Some(n) = r.card_number.as_deref().filter(|s| !s.trim().is_empty()) {
                let c = self.card_by_number(actor, n).await?;
                if card.is_none() {
                    card = Some(c.clone());
                }
                if let Some(h) = c.customer_id {
                    customer = Some(self.customer(actor, h).await?);
                }
            } else if let Some(id) = r.customer_id {
                customer = Some(self.customer(actor, id).await?);
            } else if let Some(p) = r.phone.as_deref().filter(|s| !s.trim().is_empty()) {
                let phone = patron_domain::phone::Phone::parse(p, "customer.phone")
                    .map_err(|e| AppError::from(ValidationErrors(vec![e])))?;
                customer = Some(
                    self.storage
                        .customer_by_phone(actor.tenant_id, phone.as_str())
                        .await?
                        .ok_or(AppError::NotFound { entity: "customer" })?,
                );
            } else if let Some(n) = r.id_number.as_deref().filter(|s| !s.trim().is_empty()) {
                customer = Some(
                    self.customer_by_id_number(actor, None, n)
                        .await?
                        .ok_or(AppError::NotFound { entity: "customer" })?,
                );
            }
        }
        if customer.is_none()
            && let Some(h) = card.as_ref().and_then(|c| c.customer_id)
        {
            customer = Some(self.customer(actor, h).await?);
        }
        if let Some(c) = &customer
            && let Some(into) = c.merged_into
        {
            customer = Some(self.customer(actor, into).await?);
        }
        let wants_sv = req.tenders.iter().any(|t| t.method == "stored_value");
        if card.is_none()
            && let Some(c) = &customer
        {
            let cards = self
                .storage
                .cards_of_customer(actor.tenant_id, c.id)
                .await?;
            card = cards
                .iter()
                .filter(|k| k.status == CardStatus::Active)
                .find(|k| if wants_sv { k.kinds.stored_value } else { true })
                .cloned();
        }
        if let (Some(k), Some(c)) = (&card, &customer)
            && k.customer_id.is_some()
            && k.customer_id != Some(c.id)
        {
            return Err(refuse(
                "card_id",
                "card_of_another_customer",
                "this card belongs to someone else",
            ));
        }
        let keys = match &card {
            Some(c) => Some(self.money_keys(actor, c).await?),
            None => None,
        };
        let balances = match &keys {
            Some(k) => Some(self.balances_of(actor, k).await?),
            None => None,
        };
        let level_code = customer.as_ref().and_then(|c| c.level.clone());
        let level = level_code.as_deref().and_then(|l| settings.levels.level(l));
        // Lines at today's prices, member prices resolved for this buyer.
        let active_kinds = card
            .as_ref()
            .filter(|c| c.status == CardStatus::Active)
            .map(|c| c.kinds)
            .unwrap_or(CardKinds {
                stored_value: false,
                points: false,
                member_price: false,
            });
        let buyer = patron_domain::menu::Buyer {
            level: level_code.clone(),
            card_kinds: active_kinds,
            member_price_access: level.is_none_or(|l| l.member_price),
        };
        let mut lines = Vec::with_capacity(req.lines.len());
        // The bill's dishes: kept for a few seconds (`menu_cache`), the rest in one read.
        let mut ids: Vec<MenuItemId> = req.lines.iter().filter_map(|l| l.item_id).collect();
        ids.sort_by_key(|i| i.0);
        ids.dedup();
        let (mut dishes, missing) = self.menu_cache.get_many(actor.tenant_id, &ids);
        if !missing.is_empty() {
            let loaded = self
                .storage
                .menu_items_by_ids(actor.tenant_id, &missing)
                .await?;
            self.menu_cache.put_many(
                actor.tenant_id,
                loaded.iter().map(|d| (d.item.id, d.clone())),
            );
            dishes.extend(loaded);
        }
        for (i, l) in req.lines.iter().enumerate() {
            if l.quantity == 0 || l.quantity > 999 {
                return Err(refuse(
                    &format!("lines[{i}].quantity"),
                    "invalid_quantity",
                    "1 to 999",
                ));
            }
            match l.item_id {
                Some(id) => {
                    let p = dishes.iter().find(|d| d.item.id == id).ok_or_else(|| {
                        refuse(
                            &format!("lines[{i}].item_id"),
                            "unknown_item",
                            "no such dish on the menu",
                        )
                    })?;
                    if !p.item.active {
                        return Err(refuse(
                            &format!("lines[{i}].item_id"),
                            "item_inactive",
                            format!("{} is off the menu", p.item.name),
                        ));
                    }
                    let q = patron_domain::menu::quote(&p.item, &p.member_prices, &buyer);
                    lines.push(PricingLine {
                        item_id: Some(id),
                        name: p.item.name.clone(),
                        quantity: l.quantity,
                        unit_price: p.item.price,
                        member_unit_price: q.member.filter(|m| *m < p.item.price),
                        joins_discounts: p.item.joins_discounts,
                    });
                }
                None => {
                    let name = l.name.as_deref().map(str::trim).unwrap_or_default();
                    let price = l.unit_price.unwrap_or(Money::from_fen(-1));
                    if name.is_empty() || price.is_negative() {
                        return Err(refuse(
                            &format!("lines[{i}]"),
                            "open_line",
                            "a line not on the menu needs a name and a unit price",
                        ));
                    }
                    lines.push(PricingLine {
                        item_id: None,
                        name: name.into(),
                        quantity: l.quantity,
                        unit_price: price,
                        member_unit_price: None,
                        joins_discounts: true,
                    });
                }
            }
        }
        // Coupons: each must be usable here and now by this buyer.
        let local = settings.local(now());
        let gross: Money = lines
            .iter()
            .map(|l| Money::from_fen(l.unit_price.fen() * i64::from(l.quantity)))
            .sum();
        let mut coupons = Vec::new();
        let mut offers = Vec::new();
        for (i, code) in req.coupons.iter().enumerate() {
            let c = self.find_coupon(actor, code).await?;
            let t = self.coupon_template_cached(actor, c.template_id).await?;
            let ctx = RedeemContext {
                at: local,
                store: Some(store.id),
                level: level_code.as_deref(),
                // The threshold is judged by pricing, on the bill's eligible part.
                eligible_subtotal: Some(gross),
                redeemer: customer.as_ref().map(|c| c.id),
            };
            coupon::check_redeemable(&t, &c, &ctx)
                .map_err(|e| refuse(&format!("coupons[{i}]"), e.code(), e.to_string()))?;
            offers.push(CouponOffer {
                code: c.code.clone(),
                name: t.name.clone(),
                kind: t.kind.clone(),
                stacks_with_coupons: t.stacks_with_coupons,
                stacks_with_member_price: t.stacks_with_member_price,
            });
            coupons.push((c, t.name));
        }
        let points = match req.points {
            Some(p) if p > 0 => {
                if !card.as_ref().is_some_and(|c| c.kinds.points) {
                    return Err(refuse(
                        "points",
                        "no_points_card",
                        "points are paid from a card that collects them",
                    ));
                }
                Some(PointsOffer {
                    available: balances.as_ref().map_or(0, |b| b.points),
                    requested: Some(p),
                    redemption: settings.points.redemption.clone(),
                })
            }
            Some(p) if p < 0 => return Err(refuse("points", "not_positive", "zero or more")),
            _ => None,
        };
        let input = PricingInput {
            lines,
            level_discount_bp: level.map_or(0, |l| l.discount_bp),
            level_name: level.map(|l| l.name.clone()),
            level_name_en: level.map(|l| l.name_en.clone()),
            stored_value_member: card.as_ref().is_some_and(|c| c.kinds.stored_value)
                && balances.as_ref().is_some_and(|b| b.money().fen() > 0),
            pays_with_stored_value: wants_sv,
            coupons: offers,
            points,
            rules: settings.checkout.clone(),
        };
        let breakdown = pricing::price(&input).map_err(|e| {
            let field = match &e {
                pricing::PricingError::CouponNotApplicable { .. } => "coupons",
                pricing::PricingError::Points(_) => "points",
                _ => "lines",
            };
            refuse(field, e.code(), e.to_string())
        })?;
        Ok(Prepared {
            settings,
            store,
            customer,
            card,
            keys,
            balances,
            breakdown,
            coupons,
        })
    }

    /// Prices a bill for the till screen; changes nothing.
    pub async fn quote_checkout(
        &self,
        actor: &Actor,
        req: &CheckoutRequest,
    ) -> Result<CheckoutQuote, AppError> {
        actor.require(Permission::Checkout)?;
        let p = self.prepare(actor, req).await?;
        let due = p.breakdown.amount_due;
        // A quote shows tenders that do not add up yet (the cashier is still entering
        // them), not tenders that are wrong in themselves.
        let tenders = match resolve_tenders(&req.tenders, due) {
            Ok(v) => v
                .into_iter()
                .map(|(method, amount)| TenderLine {
                    method,
                    amount,
                    principal: None,
                    bonus: None,
                })
                .collect(),
            Err(AppError::Validation(v))
                if v.0.iter().all(|f| f.code == "tenders_do_not_add_up") =>
            {
                Vec::new()
            }
            Err(e) => return Err(e),
        };
        // Each checked above (positive, at most MAX_AMOUNT): no overflow.
        let given: Money = req.tenders.iter().filter_map(|t| t.amount).sum();
        Ok(CheckoutQuote {
            customer_id: p.customer.as_ref().map(|c| c.id),
            customer_name: p.customer.as_ref().map(|c| c.profile.name.clone()),
            level: p.customer.as_ref().and_then(|c| c.level.clone()),
            card_id: p.card.as_ref().map(|c| c.id),
            balances: p.balances,
            tenders,
            remaining: if given > due {
                Money::ZERO
            } else {
                due - given
            },
            breakdown: p.breakdown,
        })
    }

    /// Takes a bill: one transaction for everything it changes. A retry with the same key
    /// answers with the original receipt.
    pub async fn checkout(
        &self,
        actor: &Actor,
        req: &CheckoutRequest,
    ) -> Result<CheckoutOutcome, AppError> {
        actor.require(Permission::Checkout)?;
        crate::cards::check_key(&req.idempotency_key)?;
        let hash = request_hash(
            "checkout",
            actor.tenant_id.0,
            &(
                &req.lines,
                &req.customer,
                req.card_id,
                &req.coupons,
                req.points,
                &req.tenders,
            ),
        );
        // A retry is recognised by the ledger's unique key when it posts (and answered
        // with the original receipt); a retry that can no longer be priced (its coupon is
        // used, by itself) is recognised here, on the way out of the error, so the key
        // costs no read on the way in.
        let mut attempt = 0;
        let result = loop {
            attempt += 1;
            match self.checkout_once(actor, req, &hash).await {
                // A concurrent spend moved the balance between the read and the post:
                // the statement refused; price and split again.
                Err(AppError::Conflict {
                    code: "insufficient_balance",
                    ..
                }) if attempt < 5 => continue,
                other => break other,
            }
        };
        let Err(e) = result else { return result };
        match self
            .storage
            .txn_by_key(actor.tenant_id, &req.idempotency_key)
            .await?
        {
            Some(txn) if txn.request_hash != hash => Err(StoreError::IdempotencyMismatch.into()),
            Some(txn) => self.checkout_outcome(actor, txn.id, true).await,
            None => Err(e),
        }
    }

    async fn checkout_once(
        &self,
        actor: &Actor,
        req: &CheckoutRequest,
        hash: &str,
    ) -> Result<CheckoutOutcome, AppError> {
        let p = self.prepare(actor, req).await?;
        let store = p.store.id;
        let b = &p.breakdown;
        let tenders = resolve_tenders(&req.tenders, b.amount_due)?;
        let sv: Money = tenders
            .iter()
            .filter(|(m, _)| m == "stored_value")
            .map(|(_, a)| *a)
            .sum();
        let charge: Money = tenders
            .iter()
            .filter(|(m, _)| m == "charge")
            .map(|(_, a)| *a)
            .sum();
        let card = p.card.as_ref();
        if sv.fen() > 0 {
            let Some(c) = card else {
                return Err(refuse(
                    "tenders",
                    "no_card",
                    "stored value is paid from a card: swipe it or name the customer",
                ));
            };
            Self::usable(c, true)?;
            self.check_pin(actor, c, req.pin.as_deref(), req.pin_token.as_deref())
                .await?;
        }
        let keys = p.keys;
        let bal = p.balances.clone().unwrap_or_default();
        // Money: revenue at regular prices; discounts, tenders and stored value on the other side.
        let mut specs: Vec<PostingSpec> = vec![spec(Posting::new(
            AccountKey::store(AccountKind::Revenue, store),
            b.gross.fen(),
        ))];
        if b.total_discount.fen() != 0 {
            specs.push(spec(Posting::new(
                AccountKey::store(AccountKind::Discounts, store),
                b.total_discount.fen(),
            )));
        }
        let mut lines_out = Vec::new();
        for (method, amount) in &tenders {
            match method.as_str() {
                "stored_value" => {
                    let k = keys.expect("card checked above");
                    let split = stored_value::split_spend(
                        p.settings.split_rule,
                        *amount,
                        bal.principal,
                        bal.bonus,
                    )
                    .map_err(|e| match e {
                        SplitError::Insufficient { available, .. } => AppError::Conflict {
                            code: "insufficient_balance",
                            field: Some("tenders"),
                            message: format!("insufficient stored value: {available} available"),
                            existing: None,
                        },
                        SplitError::NotPositive => {
                            refuse("tenders", "not_positive", "more than zero")
                        }
                    })?;
                    if split.principal.fen() > 0 {
                        specs.push(spec(Posting::new(k[0], -split.principal.fen())));
                    }
                    if split.bonus.fen() > 0 {
                        specs.push(spec(Posting::new(k[1], -split.bonus.fen())));
                    }
                    lines_out.push(TenderLine {
                        method: method.clone(),
                        amount: *amount,
                        principal: Some(split.principal),
                        bonus: Some(split.bonus),
                    });
                }
                "charge" => {
                    let org = p
                        .customer
                        .as_ref()
                        .and_then(|c| c.profile.organization_id)
                        .ok_or_else(|| {
                            refuse(
                                "tenders",
                                "no_charge_account",
                                "the customer belongs to no organization with a charge account",
                            )
                        })?;
                    specs.push(spec(Posting::new(
                        AccountKey::customer(AccountKind::Charge, org),
                        -amount.fen(),
                    )));
                    lines_out.push(TenderLine {
                        method: method.clone(),
                        amount: *amount,
                        principal: None,
                        bonus: None,
                    });
                }
                other => {
                    let t = Tender::parse(other).expect("validated");
                    specs.push(spec(Posting::new(
                        AccountKey::tender(store, t),
                        amount.fen(),
                    )));
                    lines_out.push(TenderLine {
                        method: method.clone(),
                        amount: *amount,
                        principal: None,
                        bonus: None,
                    });
                }
            }
        }
        // Points paid as cash.
        if b.points_used > 0 {
            let k = keys.expect("points need a card");
            let points_discount = b.discounts.iter().find(|d| d.kind == DiscountKind::Points);
            let (zh, en) = points_discount
                .map(|d| (d.label.clone(), d.label_en.clone()))
                .unwrap_or_else(|| {
                    (
                        format!("积分抵现 {} 分", b.points_used),
                        format!("{} pts paid as cash", b.points_used),
                    )
                });
            specs.push(PostingSpec {
                note: Some(EntryNote {
                    rule: PointsRule::RedeemCash.as_str().into(),
                    memo: zh,
                    memo_en: en,
                }),
                ..PostingSpec::new(k[2], -b.points_used, Some(0))
            });
            specs.push(PostingSpec::new(
                AccountKey::store(AccountKind::PointsRedeemed, store),
                b.points_used,
                None,
            ));
        }
        // Points earned, the visit, an upgrade, coupons the spend triggers.
        let mut payments: Vec<(PayMethod, Money)> = tenders
            .iter()
            .filter_map(|(m, a)| tender_method(m).map(|pm| (pm, *a)))
            .collect();
        if payments.is_empty() {
            payments.push((PayMethod::Coupon, Money::ZERO));
        }
        let at = now();
        let mut earn = self
            .plan_earn(
                actor,
                &p.settings,
                card,
                p.customer.as_ref(),
                card.filter(|c| c.kinds.points && c.status == CardStatus::Active)
                    .and(keys.map(|k| k[2])),
                store,
                b.gross,
                &payments,
                "checkout",
                at,
            )
            .await?;
        specs.append(&mut earn.specs);
        let mut changes = Vec::new();
        for (c, name) in &p.coupons {
            if b.coupons_applied.contains(&c.code) {
                changes.push(LedgerChange::CouponRedeem {
                    coupon: c.id,
                    customer: p.customer.as_ref().map(|c| c.id),
                    store: Some(store),
                    staff: Some(actor.staff_id),
                    // Priced with it: the post checks it still holds, no read back.
                    seen: Some(Box::new(CouponSeen {
                        coupon: c.clone(),
                        template_name: name.clone(),
                    })),
                });
            }
        }
        let customer_label = p.customer.as_ref().map(|c| {
            let name: String = c.profile.name.chars().take(1).collect::<String>() + "**";
            match &c.profile.phone {
                Some(ph) => format!("{name} {}", ph.masked()),
                None => name,
            }
        });
        let receipt_meta = serde_json::json!({
            "customer": customer_label,
            "card_number": card.map(|c| format!("**** {}", &c.number[c.number.len().saturating_sub(4)..])),
            "level": p.customer.as_ref().and_then(|c| c.level.as_deref()).and_then(|l| p.settings.levels.level(l)).map(|l| l.name.clone()),
            "cashier": actor.display_name,
            "coupons_used": p.coupons.iter().filter(|(c, _)| b.coupons_applied.contains(&c.code)).map(|(c, _)| c.code.clone()).collect::<Vec<_>>(),
        });
        let record = CheckoutRecord {
            tenant_id: actor.tenant_id,
            id: uuid::Uuid::nil(),
            store_id: store,
            store_code: p.store.code.to_uppercase(),
            staff_id: actor.staff_id,
            customer_id: p.customer.as_ref().map(|c| c.id),
            card_id: card.map(|c| c.id),
            number: String::new(),
            business_date: p.settings.business_date(at),
            created_at: at,
            party_size: req.party_size,
            table_label: req.table.clone(),
            gross: b.gross.fen(),
            discount: b.total_discount.fen(),
            amount_due: b.amount_due.fen(),
            breakdown: serde_json::to_value(b).expect("breakdown serialises"),
            tenders: serde_json::to_value(&lines_out).expect("tenders serialise"),
            receipt: receipt_meta,
            status: "completed".into(),
            refunded: 0,
            lines: b
                .lines
                .iter()
                .map(|l| CheckoutLineRecord {
                    line_no: l.index as i32 + 1,
                    item_id: l.item_id,
                    name: l.name.clone(),
                    quantity: l.quantity as i32,
                    unit_price: l.unit_price.fen(),
                    gross: l.gross.fen(),
                    net: l.net.fen(),
                    refunded_quantity: 0,
                })
                .collect(),
        };
        changes.push(LedgerChange::Checkout(Box::new(record.clone())));
        changes.append(&mut earn.changes);
        let memo = format!(
            "结账 {} 元 / checkout ¥{}",
            b.amount_due.to_decimal_string(),
            b.amount_due.to_decimal_string()
        );
        let details = serde_json::json!({
            "gross": b.gross, "discount": b.total_discount, "amount_due": b.amount_due,
            "tenders": lines_out, "points_used": b.points_used, "coupons": b.coupons_applied,
            "earn": earn.summary,
        });
        let earned = earn.summary.clone();
        let r = self
            .post_specs(
                actor,
                "checkout",
                &req.idempotency_key,
                hash.to_string(),
                card,
                p.customer.as_ref().map(|c| c.id),
                keys,
                p.balances.clone(),
                specs,
                changes,
                None,
                None,
                memo,
                details,
                None,
            )
            .await;
        let ledger = match r {
            Err(AppError::Conflict {
                code: "insufficient_balance",
                ..
            }) if charge.fen() > 0 && sv.fen() == 0 => {
                return Err(AppError::Conflict {
                    code: "credit_limit_exceeded",
                    field: Some("tenders"),
                    message: "over the charge account's credit limit".into(),
                    existing: None,
                });
            }
            other => other?,
        };
        // Posted just now: the receipt comes from what was posted, without reading the
        // bill back. A replay (a concurrent retry won) reads what was stored.
        let Some(number) = ledger.checkout_number.clone().filter(|_| !ledger.replayed) else {
            return self
                .checkout_outcome(actor, ledger.txn_id, ledger.replayed)
                .await;
        };
        let mut record = record;
        record.id = ledger.txn_id;
        record.number = number;
        let receipt = self
            .receipt_doc(
                actor,
                &record,
                ReceiptTxn {
                    kind: "checkout",
                    created_at: ledger.created_at,
                    reason: None,
                    data: &ledger.details,
                },
                &ledger,
                &earned,
            )
            .await?;
        Ok(CheckoutOutcome {
            checkout_id: record.id,
            number: record.number,
            ledger,
            earned,
            receipt,
        })
    }

    /// The outcome of a checkout or its reversal, from what was stored.
    pub async fn checkout_outcome(
        &self,
        actor: &Actor,
        txn_id: uuid::Uuid,
        replayed: bool,
    ) -> Result<CheckoutOutcome, AppError> {
        let txn = self
            .storage
            .txn(actor.tenant_id, txn_id)
            .await?
            .ok_or(AppError::NotFound { entity: "checkout" })?;
        let checkout_id = match txn.kind.as_str() {
            "reversal" => txn.reverses.unwrap_or(txn.id),
            "checkout_refund" => txn
                .data
                .get("checkout_id")
                .and_then(|v| v.as_str())
                .and_then(|v| v.parse().ok())
                .unwrap_or(txn.id),
            _ => txn.id,
        };
        let c = self
            .storage
            .checkout(actor.tenant_id, checkout_id)
            .await?
            .ok_or(AppError::NotFound { entity: "checkout" })?;
        let card = match c.card_id {
            Some(id) => Some(self.card(actor, id).await?),
            None => None,
        };
        let keys = match &card {
            Some(k) => Some(self.money_keys(actor, k).await?),
            None => None,
        };
        let mut ledger = self.replay(actor, txn.clone(), keys).await?;
        ledger.replayed = replayed;
        // What the checkout earned is in its own transaction's details.
        let original = if checkout_id == txn.id {
            txn.clone()
        } else {
            self.storage
                .txn(actor.tenant_id, checkout_id)
                .await?
                .ok_or(AppError::NotFound { entity: "checkout" })?
        };
        let earned: EarnSummary = self_earn(&original)
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default();
        let receipt = self
            .receipt_doc(
                actor,
                &c,
                ReceiptTxn {
                    kind: &txn.kind,
                    created_at: txn.created_at,
                    reason: txn.reason.as_deref(),
                    data: &txn.data,
                },
                &ledger,
                &earned,
            )
            .await?;
        Ok(CheckoutOutcome {
            checkout_id: c.id,
            number: c.number.clone(),
            ledger,
            earned,
            receipt,
        })
    }

    async fn receipt_doc(
        &self,
        actor: &Actor,
        c: &CheckoutRecord,
        txn: ReceiptTxn<'_>,
        ledger: &LedgerReceipt,
        earned: &EarnSummary,
    ) -> Result<ReceiptDoc, AppError> {
        let settings = self.settings(actor).await?;
        let directory = self.directory(actor.tenant_id, Some(c.store_id)).await?;
        let tenant = directory.tenant.as_ref();
        let store = directory.stores.iter().find(|s| s.id == c.store_id);
        let b: Breakdown = serde_json::from_value(c.breakdown.clone())
            .map_err(|e| AppError::Internal(format!("checkout breakdown: {e}")))?;
        let tenders: Vec<TenderLine> =
            serde_json::from_value(c.tenders.clone()).unwrap_or_default();
        let reversal = txn.kind == "reversal";
        // Amounts stay in the sale's sense: the renderers print a reversal's as negative.
        let sign = |m: Money| m;
        let meta = &c.receipt;
        let s = |k: &str| meta.get(k).and_then(|v| v.as_str()).map(str::to_string);
        let mut tender_lines = Vec::new();
        for t in &tenders {
            let (zh, en) = method_label(&t.method);
            match (t.principal, t.bonus) {
                (Some(p), Some(bo)) => {
                    if p.fen() > 0 {
                        tender_lines.push(ReceiptAmount {
                            label: format!("{zh} 本金"),
                            label_en: format!("{en} (principal)"),
                            amount: sign(p),
                        });
                    }
                    if bo.fen() > 0 {
                        tender_lines.push(ReceiptAmount {
                            label: format!("{zh} 赠送"),
                            label_en: format!("{en} (bonus)"),
                            amount: sign(bo),
                        });
                    }
                }
                _ => tender_lines.push(ReceiptAmount {
                    label: zh.into(),
                    label_en: en.into(),
                    amount: sign(t.amount),
                }),
            }
        }
        let sv_used = tenders.iter().any(|t| t.method == "stored_value");
        let points_touched =
            ledger.before.points != ledger.after.points || earned.points_earned > 0;
        let mut doc = ReceiptDoc {
            title: tenant.map(|t| t.name.clone()).unwrap_or_default(),
            store_name: store.as_ref().map(|s| s.name.clone()).unwrap_or_default(),
            store_address: store.as_ref().and_then(|s| s.address.clone()),
            store_phone: store.as_ref().and_then(|s| s.phone.clone()),
            number: c.number.clone(),
            kind: if reversal {
                ReceiptKind::Reversal
            } else {
                ReceiptKind::Sale
            },
            at: settings.local(txn.created_at),
            cashier: if reversal {
                actor.display_name.clone()
            } else {
                s("cashier").unwrap_or_default()
            },
            customer: s("customer"),
            card_number: s("card_number"),
            level: s("level"),
            lines: b
                .lines
                .iter()
                .map(|l| ReceiptLine {
                    name: l.name.clone(),
                    quantity: l.quantity,
                    unit_price: l.unit_price,
                    gross: sign(l.gross),
                    net: sign(l.net),
                })
                .collect(),
            discounts: b
                .discounts
                .iter()
                .map(|d| ReceiptAmount {
                    label: d.label.clone(),
                    label_en: d.label_en.clone(),
                    amount: sign(d.amount),
                })
                .collect(),
            gross: sign(b.gross),
            total_discount: sign(b.total_discount),
            amount_due: sign(b.amount_due),
            tenders: tender_lines,
            change: None,
            stored_value: sv_used.then_some(BalanceMove {
                before: ledger.before.money(),
                this_time: ledger.after.money() - ledger.before.money(),
                after: ledger.after.money(),
            }),
            points: points_touched.then_some(PointsMove {
                before: ledger.before.points,
                earned: if reversal { 0 } else { earned.points_earned },
                used: if reversal { 0 } else { b.points_used },
                after: ledger.after.points,
            }),
            coupons_used: meta
                .get("coupons_used")
                .and_then(|v| v.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            coupons_issued: if reversal {
                Vec::new()
            } else {
                earned
                    .coupons_issued
                    .iter()
                    .map(|c| IssuedCouponLine {
                        name: String::new(),
                        code: c.code.clone(),
                        valid_to: c.valid_to,
                    })
                    .collect()
            },
            notes: if reversal {
                vec![format!(
                    "原单 {} 已撤销：{}",
                    c.number,
                    txn.reason.unwrap_or_default()
                )]
            } else {
                earned
                    .awards
                    .iter()
                    .map(|a| format!("积分：{}", a.explanation.zh))
                    .collect()
            },
            footer: Some("谢谢惠顾，欢迎再次光临".into()),
        };
        if txn.kind == "checkout_refund" {
            // A refund's receipt shows what was refunded, not the whole bill.
            let d = txn.data;
            let m = |k: &str| Money::from_fen(d.get(k).and_then(|v| v.as_i64()).unwrap_or(0));
            doc.kind = ReceiptKind::Refund;
            doc.cashier = actor.display_name.clone();
            doc.lines = serde_json::from_value(d.get("lines").cloned().unwrap_or_default())
                .unwrap_or_default();
            doc.discounts = Vec::new();
            doc.gross = m("gross_share");
            doc.total_discount = m("discount_share");
            doc.amount_due = m("refund");
            let refund_tenders: Vec<TenderLine> =
                serde_json::from_value(d.get("tenders").cloned().unwrap_or_default())
                    .unwrap_or_default();
            doc.tenders = refund_tenders
                .iter()
                .map(|t| {
                    let (zh, en) = method_label(&t.method);
                    ReceiptAmount {
                        label: zh.into(),
                        label_en: en.into(),
                        amount: t.amount,
                    }
                })
                .collect();
            doc.stored_value = refund_tenders
                .iter()
                .any(|t| t.method == "stored_value")
                .then_some(BalanceMove {
                    before: ledger.before.money(),
                    this_time: ledger.after.money() - ledger.before.money(),
                    after: ledger.after.money(),
                });
            doc.points = (ledger.before.points != ledger.after.points).then_some(PointsMove {
                before: ledger.before.points,
                earned: 0,
                used: 0,
                after: ledger.after.points,
            });
            doc.coupons_used = Vec::new();
            doc.coupons_issued = Vec::new();
            doc.notes = vec![format!(
                "原单 {} 退款：{}",
                c.number,
                txn.reason.unwrap_or_default()
            )];
        }
        Ok(doc)
    }

    /// Checks who approves a reversal: the caller if a manager or the owner, else the
    /// manager whose username and password (or approval PIN) are given (see
    /// `App::reversal_approver` in staff.rs: failures are audited and count towards a
    /// lockout).
    async fn approver(
        &self,
        actor: &Actor,
        approval: Option<&Approval>,
    ) -> Result<StaffId, AppError> {
        self.reversal_approver(actor, approval).await
    }

    /// 反结账: undoes a checkout of the current business day exactly — money, points
    /// earned and redeemed, coupons used (back to usable) and issued (voided; if one was
    /// already used, its value is kept back from the refund).
    pub async fn reverse_checkout(
        &self,
        actor: &Actor,
        id: uuid::Uuid,
        req: &ReverseCheckout,
    ) -> Result<CheckoutOutcome, AppError> {
        actor.require(Permission::ReverseOrRefund)?;
        let reason = crate::cards::required_reason(&req.reason)?;
        crate::cards::check_key(&req.idempotency_key)?;
        let hash = request_hash("checkout_reversal", id, &reason);
        if let Some(txn) = self
            .storage
            .txn_by_key(actor.tenant_id, &req.idempotency_key)
            .await?
        {
            if txn.request_hash != hash {
                return Err(StoreError::IdempotencyMismatch.into());
            }
            return self.checkout_outcome(actor, txn.id, true).await;
        }
        let c = self
            .storage
            .checkout(actor.tenant_id, id)
            .await?
            .ok_or(AppError::NotFound { entity: "checkout" })?;
        if c.status != "completed" {
            return Err(AppError::Conflict {
                code: "already_reversed",
                field: None,
                message: format!("this checkout is {}", c.status),
                existing: None,
            });
        }
        let settings = self.settings(actor).await?;
        if settings.business_date(now()) != c.business_date {
            return Err(AppError::Conflict {
                code: "not_same_business_day",
                field: None,
                message: format!(
                    "only checkouts of today's business day can be reversed; this one is of {}",
                    c.business_date
                ),
                existing: None,
            });
        }
        let approver = self.approver(actor, req.approval.as_ref()).await?;
        let original = self
            .storage
            .txn(actor.tenant_id, id)
            .await?
            .ok_or(AppError::NotFound { entity: "checkout" })?;
        let entries = self.storage.txn_entries(actor.tenant_id, id).await?;
        let accounts = self
            .storage
            .accounts(
                actor.tenant_id,
                &entries.iter().map(|e| e.account_id).collect::<Vec<_>>(),
            )
            .await?;
        let key_of = |a: uuid::Uuid| accounts.iter().find(|x| x.id == a).map(|x| x.key);
        let mut specs = Vec::new();
        for e in &entries {
            let key = key_of(e.account_id)
                .ok_or_else(|| AppError::Internal("entry without account".into()))?;
            specs.push(spec(Posting::new(key, -e.amount)));
        }
        // The bill's row first, then its visit, as a refund does: one lock order for every
        // change of a bill (PostgreSQL otherwise deadlocks a reversal against a refund).
        let mut changes = vec![
            LedgerChange::CheckoutStatus {
                checkout: id,
                status: "reversed".into(),
                refunded: c.amount_due - c.refunded,
                lines: Vec::new(),
            },
            LedgerChange::VisitsReversed { txn: id },
        ];
        // Coupons used on the bill become usable again.
        let b: Breakdown = serde_json::from_value(c.breakdown.clone())
            .map_err(|e| AppError::Internal(format!("checkout breakdown: {e}")))?;
        for code in &b.coupons_applied {
            if let Ok(v) = self.coupon_by_code(actor, code).await {
                changes.push(LedgerChange::CouponRestore {
                    coupon: v.coupon.id,
                });
            }
        }
        // Coupons the bill issued: voided if unused; if used, their value is kept back.
        let earned: EarnSummary = self_earn(&original)
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default();
        let mut kept_back = Money::ZERO;
        let mut used_coupons = Vec::new();
        for issued in &earned.coupons_issued {
            let Ok(v) = self.coupon_by_code(actor, &issued.code).await else {
                continue;
            };
            if v.coupon.status == coupon::CouponStatus::Issued {
                changes.push(LedgerChange::CouponVoid {
                    coupon: v.coupon.id,
                    reason: format!("反结账 {}", c.number),
                });
            } else if v.coupon.status == coupon::CouponStatus::Redeemed {
                let value = self.coupon_value_used(actor, &issued.code).await?;
                kept_back = kept_back + value;
                used_coupons.push(serde_json::json!({"code": issued.code, "value": value}));
            }
        }
        if kept_back.fen() > 0 {
            // The refund is smaller by what the used coupon was worth: taken from the
            // largest external tender refunded, else from the principal put back.
            let store = c.store_id;
            let tenders: Vec<TenderLine> =
                serde_json::from_value(c.tenders.clone()).unwrap_or_default();
            let ext = tenders
                .iter()
                .filter_map(|t| Tender::parse(&t.method).map(|x| (x, t.amount)))
                .max_by_key(|(_, a)| a.fen());
            let keep = match ext {
                Some((_, a)) => kept_back.min(a),
                None => kept_back,
            };
            match ext {
                Some((t, _)) => {
                    specs.push(spec(Posting::new(AccountKey::tender(store, t), keep.fen())))
                }
                None => {
                    let card = match c.card_id {
                        Some(id) => self.card(actor, id).await?,
                        None => return Err(AppError::Internal("stored value without card".into())),
                    };
                    let k = self.money_keys(actor, &card).await?;
                    specs.push(spec(Posting::new(k[0], -keep.fen())));
                }
            }
            specs.push(spec(Posting::new(
                AccountKey::store(AccountKind::Discounts, store),
                -keep.fen(),
            )));
            kept_back = keep;
        }
        let card = match c.card_id {
            Some(id) => Some(self.card(actor, id).await?),
            None => None,
        };
        let keys = match &card {
            Some(k) => Some(self.money_keys(actor, k).await?),
            None => None,
        };
        let memo = format!("反结账 {}：{reason}", c.number);
        let details = serde_json::json!({
            "reverses": id, "original_kind": "checkout", "number": c.number,
            "refunded": Money::from_fen(c.amount_due) - kept_back, "kept_back_for_used_coupons": used_coupons,
        });
        let r = self
            .post_specs(
                actor,
                "reversal",
                &req.idempotency_key,
                hash,
                card.as_ref(),
                c.customer_id,
                keys,
                None,
                specs,
                changes,
                Some(reason),
                Some(id),
                memo,
                details,
                Some(approver),
            )
            .await;
        let ledger = match r {
            Err(AppError::Conflict {
                code: "insufficient_balance",
                ..
            }) => {
                return Err(AppError::Conflict {
                    code: "points_already_used",
                    field: None,
                    message: "the points this checkout earned have been spent since; adjust by hand instead".into(),
                    existing: None,
                });
            }
            other => other?,
        };
        self.checkout_outcome(actor, ledger.txn_id, false).await
    }

    /// A partial refund by line (the lines' share of the bill, discounts included) or by
    /// amount (a goodwill reduction), back to the tenders in proportion; the points the
    /// refunded part earned are taken back and points it redeemed are given back.
    pub async fn refund_checkout(
        &self,
        actor: &Actor,
        id: uuid::Uuid,
        req: &RefundCheckout,
    ) -> Result<CheckoutOutcome, AppError> {
        actor.require(Permission::ReverseOrRefund)?;
        let reason = crate::cards::required_reason(&req.reason)?;
        crate::cards::check_key(&req.idempotency_key)?;
        let hash = request_hash("checkout_refund", id, &req_for_hash(req));
        if let Some(txn) = self
            .storage
            .txn_by_key(actor.tenant_id, &req.idempotency_key)
            .await?
        {
            if txn.request_hash != hash {
                return Err(StoreError::IdempotencyMismatch.into());
            }
            return self.checkout_outcome(actor, txn.id, true).await;
        }
        let c = self
            .storage
            .checkout(actor.tenant_id, id)
            .await?
            .ok_or(AppError::NotFound { entity: "checkout" })?;
        if c.status != "completed" && c.status != "partly_refunded" {
            return Err(AppError::Conflict {
                code: "not_refundable",
                field: None,
                message: format!("this checkout is {}", c.status),
                existing: None,
            });
        }
        let b: Breakdown = serde_json::from_value(c.breakdown.clone())
            .map_err(|e| AppError::Internal(format!("checkout breakdown: {e}")))?;
        // What is refunded: the lines' shares, or an amount.
        let (gross_share, discount_shares, refund, line_moves, receipt_lines) =
            match (&req.lines[..], req.amount) {
                ([], Some(amount)) => {
                    if amount.fen() <= 0 {
                        return Err(refuse("amount", "not_positive", "more than zero"));
                    }
                    (
                        amount.fen(),
                        Vec::new(),
                        amount.fen(),
                        Vec::new(),
                        vec![ReceiptLine {
                            name: "部分退款 / partial refund".into(),
                            quantity: 1,
                            unit_price: amount,
                            gross: amount,
                            net: amount,
                        }],
                    )
                }
                (lines, None) if !lines.is_empty() => {
                    let mut gross = 0;
                    let mut by_kind: Vec<(DiscountKind, i64)> = Vec::new();
                    let mut moves = Vec::new();
                    let mut shown = Vec::new();
                    for (i, r) in lines.iter().enumerate() {
                        let rec = c.lines.iter().find(|l| l.line_no == r.line_no);
                        let priced = b.lines.get((r.line_no - 1).max(0) as usize);
                        let (Some(rec), Some(priced)) = (rec, priced) else {
                            return Err(refuse(
                                &format!("lines[{i}].line_no"),
                                "no_such_line",
                                "no such line on this bill",
                            ));
                        };
                        if r.quantity <= 0 || rec.refunded_quantity + r.quantity > rec.quantity {
                            return Err(refuse(
                                &format!("lines[{i}].quantity"),
                                "invalid_quantity",
                                format!(
                                    "1 to {} (what is not refunded yet)",
                                    rec.quantity - rec.refunded_quantity
                                ),
                            ));
                        }
                        let (q, done, k) = (
                            i64::from(rec.quantity),
                            i64::from(rec.refunded_quantity),
                            i64::from(r.quantity),
                        );
                        let share = |x: i64| cum(x, done + k, q) - cum(x, done, q);
                        let g = share(priced.gross.fen());
                        gross += g;
                        let mut d_line = 0;
                        for (kind, amt) in &priced.discounts {
                            let d = share(amt.fen());
                            d_line += d;
                            match by_kind.iter_mut().find(|(k2, _)| k2 == kind) {
                                Some(e) => e.1 += d,
                                None => by_kind.push((*kind, d)),
                            }
                        }
                        moves.push((r.line_no, r.quantity));
                        shown.push(ReceiptLine {
                            name: priced.name.clone(),
                            quantity: r.quantity as u32,
                            unit_price: priced.unit_price,
                            gross: Money::from_fen(g),
                            net: Money::from_fen(g - d_line),
                        });
                    }
                    let d_total: i64 = by_kind.iter().map(|(_, d)| d).sum();
                    (gross, by_kind, gross - d_total, moves, shown)
                }
                _ => {
                    return Err(refuse(
                        "lines",
                        "lines_or_amount",
                        "give either lines to refund or an amount, not both",
                    ));
                }
            };
        if refund <= 0 {
            return Err(refuse(
                "lines",
                "nothing_to_refund",
                "these lines were free",
            ));
        }
        if refund > c.amount_due - c.refunded {
            return Err(AppError::Conflict {
                code: "refund_exceeds_bill",
                field: Some("amount"),
                message: format!(
                    "at most {} is left to refund",
                    Money::from_fen(c.amount_due - c.refunded)
                ),
                existing: None,
            });
        }
        let approver = self.approver(actor, req.approval.as_ref()).await?;
        let store = c.store_id;
        let settings = self.settings(actor).await?;
        let card = match c.card_id {
            Some(id) => Some(self.card(actor, id).await?),
            None => None,
        };
        let keys = match &card {
            Some(k) => Some(self.money_keys(actor, k).await?),
            None => None,
        };
        let mut specs = vec![spec(Posting::new(
            AccountKey::store(AccountKind::Revenue, store),
            -gross_share,
        ))];
        let money_discount: i64 = discount_shares.iter().map(|(_, d)| d).sum();
        if money_discount != 0 {
            specs.push(spec(Posting::new(
                AccountKey::store(AccountKind::Discounts, store),
                -money_discount,
            )));
        }
        // The money goes back the way it came, in proportion.
        let tenders: Vec<TenderLine> =
            serde_json::from_value(c.tenders.clone()).unwrap_or_default();
        let shares = split_by(
            refund,
            &tenders.iter().map(|t| t.amount.fen()).collect::<Vec<_>>(),
        );
        let mut refund_tenders = Vec::new();
        for (t, share) in tenders.iter().zip(shares) {
            if share == 0 {
                continue;
            }
            match t.method.as_str() {
                "stored_value" => {
                    let k =
                        keys.ok_or_else(|| AppError::Internal("stored value without card".into()))?;
                    let pb = split_by(
                        share,
                        &[
                            t.principal.unwrap_or(t.amount).fen(),
                            t.bonus.unwrap_or_default().fen(),
                        ],
                    );
                    if pb[0] > 0 {
                        specs.push(spec(Posting::new(k[0], pb[0])));
                    }
                    if pb[1] > 0 {
                        specs.push(spec(Posting::new(k[1], pb[1])));
                    }
                    refund_tenders.push(TenderLine {
                        method: t.method.clone(),
                        amount: Money::from_fen(share),
                        principal: Some(Money::from_fen(pb[0])),
                        bonus: Some(Money::from_fen(pb[1])),
                    });
                }
                "charge" => {
                    let org = self
                        .customer(
                            actor,
                            c.customer_id.ok_or_else(|| {
                                AppError::Internal("charge without customer".into())
                            })?,
                        )
                        .await?
                        .profile
                        .organization_id
                        .ok_or_else(|| AppError::Internal("charge without organization".into()))?;
                    specs.push(spec(Posting::new(
                        AccountKey::customer(AccountKind::Charge, org),
                        share,
                    )));
                    refund_tenders.push(TenderLine {
                        method: t.method.clone(),
                        amount: Money::from_fen(share),
                        principal: None,
                        bonus: None,
                    });
                }
                other => {
                    let tender = Tender::parse(other)
                        .ok_or_else(|| AppError::Internal(format!("tender {other}")))?;
                    specs.push(spec(Posting::new(
                        AccountKey::tender(store, tender),
                        -share,
                    )));
                    refund_tenders.push(TenderLine {
                        method: t.method.clone(),
                        amount: Money::from_fen(share),
                        principal: None,
                        bonus: None,
                    });
                }
            }
        }
        // Points: those the refunded part earned go back; those it redeemed come back.
        let original = self
            .storage
            .txn(actor.tenant_id, id)
            .await?
            .ok_or(AppError::NotFound { entity: "checkout" })?;
        let earned: EarnSummary = self_earn(&original)
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default();
        // Cumulative shares, so refunds in parts take back exactly what a whole one would.
        let take_back = cum(
            earned.points_earned,
            c.refunded + refund,
            c.amount_due.max(1),
        ) - cum(earned.points_earned, c.refunded, c.amount_due.max(1));
        let points_value = b.total_of(DiscountKind::Points).fen();
        let points_share = discount_shares
            .iter()
            .find(|(k, _)| *k == DiscountKind::Points)
            .map_or(0, |(_, d)| *d);
        let give_back = if points_value > 0 {
            cum(b.points_used, points_share, points_value)
        } else {
            0
        };
        if let Some(k) = keys {
            let today = settings.local_date(now());
            if take_back > 0 {
                let e = patron_domain::points::explain_reversal(-take_back, &reason);
                specs.push(PostingSpec {
                    note: Some(EntryNote {
                        rule: PointsRule::Reversal.as_str().into(),
                        memo: e.zh,
                        memo_en: e.en,
                    }),
                    ..PostingSpec::new(k[2], -take_back, Some(0))
                });
                specs.push(PostingSpec::new(
                    AccountKey::store(AccountKind::PointsGranted, store),
                    -take_back,
                    None,
                ));
            }
            if give_back > 0 {
                let e = patron_domain::points::explain_reversal(give_back, &reason);
                specs.push(PostingSpec {
                    note: Some(EntryNote {
                        rule: PointsRule::Reversal.as_str().into(),
                        memo: e.zh,
                        memo_en: e.en,
                    }),
                    lot: patron_store::ledger::LotRule::New {
                        earned_on: today,
                        expires_on: patron_domain::points::expires_on(
                            &settings.points.expiry,
                            today,
                        ),
                    },
                    ..PostingSpec::new(k[2], give_back, Some(0))
                });
                specs.push(PostingSpec::new(
                    AccountKey::store(AccountKind::PointsRedeemed, store),
                    -give_back,
                    None,
                ));
            }
        }
        let status = if c.refunded + refund == c.amount_due {
            "refunded"
        } else {
            "partly_refunded"
        };
        let changes = vec![
            LedgerChange::CheckoutStatus {
                checkout: id,
                status: status.into(),
                refunded: refund,
                lines: line_moves,
            },
            LedgerChange::VisitRefund {
                txn: id,
                amount: refund,
            },
        ];
        let memo = format!(
            "退款 {} 元（原单 {}）：{reason}",
            Money::from_fen(refund).to_decimal_string(),
            c.number
        );
        let details = serde_json::json!({
            "checkout_id": id, "number": c.number, "refund": refund, "gross_share": gross_share,
            "discount_share": money_discount, "lines": receipt_lines, "tenders": refund_tenders,
            "points_taken_back": take_back, "points_given_back": give_back,
        });
        let r = self
            .post_specs(
                actor,
                "checkout_refund",
                &req.idempotency_key,
                hash,
                card.as_ref(),
                c.customer_id,
                keys,
                None,
                specs,
                changes,
                Some(reason),
                None,
                memo,
                details,
                Some(approver),
            )
            .await;
        let ledger = match r {
            Err(AppError::Conflict {
                code: "insufficient_balance",
                ..
            }) => {
                return Err(AppError::Conflict {
                    code: "points_already_used",
                    field: None,
                    message:
                        "the points this bill earned have been spent since; adjust by hand instead"
                            .into(),
                    existing: None,
                });
            }
            other => other?,
        };
        self.checkout_outcome(actor, ledger.txn_id, false).await
    }

    /// What a used coupon took off its bill (for keeping it back from a refund).
    async fn coupon_value_used(&self, actor: &Actor, code: &str) -> Result<Money, AppError> {
        if let Some(other) = self
            .storage
            .checkout_with_coupon(actor.tenant_id, code)
            .await?
            && let Ok(b) = serde_json::from_value::<Breakdown>(other.breakdown)
            && let Some(d) = b
                .discounts
                .iter()
                .find(|d| d.coupon_code.as_deref() == Some(code))
        {
            return Ok(d.amount);
        }
        // Redeemed outside a checkout: a cash voucher's face value.
        let v = self.coupon_by_code(actor, code).await?;
        let t = self.coupon_template(actor, v.coupon.template_id).await?;
        Ok(match t.kind {
            coupon::CouponKind::Cash { value, .. } => value,
            _ => Money::ZERO,
        })
    }

    /// A checkout's receipt (JSON), from what was stored.
    pub async fn checkout_receipt(
        &self,
        actor: &Actor,
        id: uuid::Uuid,
    ) -> Result<CheckoutOutcome, AppError> {
        actor.require(Permission::Checkout)?;
        self.checkout_outcome(actor, id, false).await
    }

    /// The bills of one business day (default: today's) at the actor's store, newest
    /// first: the till's list to find a bill again, reprint or reverse it.
    pub async fn store_checkouts(
        &self,
        actor: &Actor,
        day: Option<chrono::NaiveDate>,
        page: patron_domain::page::PageRequest,
    ) -> Result<patron_domain::page::Page<CheckoutSummary>, AppError> {
        actor.require(Permission::Checkout)?;
        let store = at_store(actor, "checkouts")?;
        let day = match day {
            Some(d) => d,
            None => self.settings(actor).await?.business_date(now()),
        };
        let page = page.clamped();
        let rows = self
            .storage
            .checkouts_of_day(actor.tenant_id, store, day, page.limit() + 1, page.offset())
            .await?;
        Ok(patron_domain::page::Page::from_overfetch(rows, page).map(|c| summary(&c, None)))
    }

    /// One bill's state: its status and, once reversed, the reversal (whose receipt shows
    /// the balances put back).
    pub async fn checkout_summary(
        &self,
        actor: &Actor,
        id: uuid::Uuid,
    ) -> Result<CheckoutSummary, AppError> {
        actor.require(Permission::Checkout)?;
        let c = self
            .storage
            .checkout(actor.tenant_id, id)
            .await?
            .ok_or(AppError::NotFound { entity: "checkout" })?;
        let reversal = if c.status == "reversed" {
            self.storage
                .reversal_of(actor.tenant_id, id)
                .await?
                .map(|t| t.id)
        } else {
            None
        };
        Ok(summary(&c, reversal))
    }
}

/// One bill in a list: what the till shows to find it again.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CheckoutSummary {
    #[schema(value_type = String, format = Uuid)]
    pub id: uuid::Uuid,
    pub number: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub business_date: chrono::NaiveDate,
    /// Masked as on the receipt, e.g. "张** 138****0001".
    pub customer: Option<String>,
    /// Masked, e.g. "**** 0042".
    pub card_number: Option<String>,
    pub cashier: String,
    #[schema(value_type = i64)]
    pub amount_due: Money,
    #[schema(value_type = i64)]
    pub refunded: Money,
    pub tenders: Vec<TenderLine>,
    /// completed, reversed, partly_refunded or refunded.
    pub status: String,
    /// The reversal's transaction (and receipt) id, for a reversed bill.
    #[schema(value_type = Option<String>, format = Uuid)]
    pub reversal_id: Option<uuid::Uuid>,
}

/// What a receipt shows of the transaction it prints.
struct ReceiptTxn<'a> {
    kind: &'a str,
    created_at: chrono::DateTime<chrono::Utc>,
    reason: Option<&'a str>,
    data: &'a serde_json::Value,
}

fn summary(c: &CheckoutRecord, reversal_id: Option<uuid::Uuid>) -> CheckoutSummary {
    let s = |k: &str| {
        c.receipt
            .get(k)
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    CheckoutSummary {
        id: c.id,
        number: c.number.clone(),
        created_at: c.created_at,
        business_date: c.business_date,
        customer: s("customer"),
        card_number: s("card_number"),
        cashier: s("cashier").unwrap_or_default(),
        amount_due: Money::from_fen(c.amount_due),
        refunded: Money::from_fen(c.refunded),
        tenders: serde_json::from_value(c.tenders.clone()).unwrap_or_default(),
        status: c.status.clone(),
        reversal_id,
    }
}

/// `x × k / n` rounded down: cumulative shares of a line refunded in parts add up to the
/// whole exactly (share of parts `a..b` = cum(b) − cum(a)).
fn cum(x: i64, k: i64, n: i64) -> i64 {
    if n == 0 {
        return 0;
    }
    (i128::from(x) * i128::from(k)).div_euclid(i128::from(n)) as i64
}

/// Splits `total` over `weights` in proportion, by largest remainder: exact to the fen.
fn split_by(total: i64, weights: &[i64]) -> Vec<i64> {
    let sum: i64 = weights.iter().sum();
    if sum == 0 {
        return vec![0; weights.len()];
    }
    let mut parts: Vec<(usize, i64, i128)> = weights
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let exact = i128::from(total) * i128::from(*w);
            (i, (exact / i128::from(sum)) as i64, exact % i128::from(sum))
        })
        .collect();
    let mut left = total - parts.iter().map(|p| p.1).sum::<i64>();
    let mut order: Vec<usize> = (0..parts.len()).collect();
    order.sort_by(|a, b| parts[*b].2.cmp(&parts[*a].2).then(a.cmp(b)));
    for i in order {
        if left == 0 {
            break;
        }
        parts[i].1 += 1;
        left -= 1;
    }
    parts.into_iter().map(|p| p.1).collect()
}

/// What identifies a refund request (the approval's password is not part of it).
fn req_for_hash(r: &RefundCheckout) -> (&[RefundLine], Option<Money>, &str) {
    (&r.lines, r.amount, r.reason.trim())
}

/// The earn summary a checkout's transaction carries.
fn self_earn(txn: &patron_store::ledger::TxnRecord) -> Option<serde_json::Value> {
    txn.data.get("earn").cloned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn tenders_resolve_exactly() {
        let t = |m: &str, a: Option<i64>| TenderInput {
            method: m.into(),
            amount: a.map(Money::from_fen),
        };
        let due = Money::from_fen(28_600);
        let r =
            resolve_tenders(&[t("stored_value", Some(10_000)), t("wechat", None)], due).unwrap();
        assert_eq!(
            r,
            vec![
                ("stored_value".into(), Money::from_fen(10_000)),
                ("wechat".into(), Money::from_fen(18_600))
            ]
        );
        assert!(
            resolve_tenders(&[t("cash", Some(100))], due).is_err(),
            "short"
        );
        assert!(
            resolve_tenders(&[t("cash", None), t("wechat", None)], due).is_err(),
            "two open"
        );
        assert!(resolve_tenders(&[t("bitcoin", None)], due).is_err());
        assert!(
            resolve_tenders(&[t("cash", Some(30_000))], due).is_err(),
            "over"
        );
    }

    proptest! {
        #[test]
        fn splits_are_exact(total in 0i64..10_000_000, weights in proptest::collection::vec(0i64..1_000_000, 1..6)) {
            let parts = split_by(total, &weights);
            if weights.iter().sum::<i64>() > 0 {
                prop_assert_eq!(parts.iter().sum::<i64>(), total);
            }
            prop_assert!(parts.iter().all(|p| *p >= 0));
        }

        #[test]
        fn refunds_in_parts_add_up_to_the_whole(x in -100_000i64..10_000_000, n in 1i64..50, cut in 0i64..50) {
            let cut = cut.min(n);
            let parts = (cum(x, cut, n) - cum(x, 0, n)) + (cum(x, n, n) - cum(x, cut, n));
            prop_assert_eq!(parts, x);
        }
    }
}
