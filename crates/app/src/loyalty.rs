//! Points, member levels and gifts: earning on a spend, redeeming for gifts, expiry by
//! lots, upgrades at once and downgrades at the review.
//!
//! The rules are pure functions in `patron_domain::{points, level}`; this module reads
//! what they need (the customer, the growth value, the visit count, the settings) and
//! posts their outcome through the ledger, where points, lots, visits and level changes
//! commit together.

use crate::cards::{LedgerReceipt, at_store, request_hash};
use crate::{Actor, App, AppError, new_uuid, now};
use chrono::{DateTime, NaiveDate, Utc};
use patron_domain::ValidationErrors;
use patron_domain::card::{Card, CardStatus};
use patron_domain::customer::Customer;
use patron_domain::ids::{CardId, CustomerId, StoreId, TenantId};
use patron_domain::ledger::{AccountKey, AccountKind, Tender};
use patron_domain::level::{self, LevelDecision};
use patron_domain::money::Money;
use patron_domain::permissions::Permission;
use patron_domain::points::{self, EarnInput, EarnLevel, PayMethod, PointsAward, PointsRule};
use patron_domain::settings::TenantSettings;
use patron_store::StoreError;
use patron_store::ledger::{EntryNote, LedgerChange, LotRule, PostOutcome, PostingSpec, TxnRecord};
use patron_store::loyalty::{GiftRecord, JobRun, LevelChangeRecord, LotRecord, VisitRecord};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One payment of a purchase recorded at the till.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PaymentLine {
    /// cash, bank_card, wechat, alipay, other_wallet, points, coupon.
    pub method: String,
    #[schema(value_type = i64)]
    pub amount: Money,
}

/// A purchase paid outside the card (cash, bank card, wallets), recorded so the customer
/// earns points and growth value. Stored value is spent with the card's spend instead,
/// which earns by the same rules.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RecordPurchase {
    pub card_id: Option<CardId>,
    /// A customer's points card is used when no card is given.
    pub customer_id: Option<CustomerId>,
    /// The whole bill, in fen.
    #[schema(value_type = i64)]
    pub amount: Money,
    /// How it was paid; the amounts add up to the bill.
    pub payments: Vec<PaymentLine>,
    pub idempotency_key: String,
    pub memo: Option<String>,
}

/// What a purchase (or a stored-value spend) earned.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct EarnSummary {
    pub points_earned: i64,
    /// One line per rule, with its explanation in both languages.
    #[schema(value_type = Vec<Object>)]
    pub awards: Vec<PointsAward>,
    /// Growth value this spend added, in fen.
    pub growth: i64,
    pub level_before: Option<String>,
    pub level_after: Option<String>,
    /// Set when this spend moved the customer up a level.
    #[schema(value_type = Option<Object>)]
    pub level_change: Option<LevelDecision>,
    /// Coupons the spend triggered (issue rules), issued in the same transaction.
    #[serde(default)]
    pub coupons_issued: Vec<IssuedCoupon>,
}

/// A coupon issued by a spend.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct IssuedCoupon {
    pub code: String,
    #[schema(value_type = String, format = Uuid)]
    pub template_id: uuid::Uuid,
    pub valid_to: NaiveDate,
}

/// Exchange of points for a coupon (the template's points price).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ExchangeForCoupon {
    #[schema(value_type = String, format = Uuid)]
    pub template_id: uuid::Uuid,
    pub idempotency_key: String,
}

/// Exchange of points for a gift.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RedeemGift {
    #[schema(value_type = String, format = Uuid)]
    pub gift_id: uuid::Uuid,
    /// 1 when absent.
    pub quantity: Option<u32>,
    pub idempotency_key: String,
}

/// A gift in the catalogue, as written by a manager.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GiftInput {
    pub name: String,
    #[serde(default)]
    pub name_en: String,
    pub points_price: i64,
    /// Absent = unlimited.
    pub stock: Option<i64>,
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

/// A manual level change.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SetLevel {
    pub level: String,
    pub reason: String,
}

/// A points-as-cash quote for a bill.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CashQuoteView {
    pub available: i64,
    pub points: i64,
    #[schema(value_type = i64)]
    pub value: Money,
    pub explanation: String,
    pub explanation_en: String,
}

/// A card's points: the balance, the lots with their expiry dates, and every entry with
/// the rule that produced it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PointsView {
    pub card_id: CardId,
    /// True when the card's points pool into its organization's account.
    pub pooled: bool,
    pub balance: i64,
    pub lots: Vec<LotRecord>,
    pub entries: Vec<PointsEntryView>,
}

/// One points entry, explained.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PointsEntryView {
    #[schema(value_type = String, format = Uuid)]
    pub txn_id: uuid::Uuid,
    pub at: DateTime<Utc>,
    pub points: i64,
    pub balance_after: i64,
    /// The rule's code (earn, threshold_bonus, redeem_gift, expiry...), when it names one.
    pub rule: Option<String>,
    pub explanation: String,
    pub explanation_en: Option<String>,
}

/// A customer's standing: level, growth value, the next level, points per card, history.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LoyaltyView {
    pub customer_id: CustomerId,
    pub level: Option<String>,
    pub level_name: Option<String>,
    pub level_name_en: Option<String>,
    /// Growth value in the level window, in fen.
    pub growth: i64,
    /// Start of the window (None = lifetime).
    pub growth_from: Option<NaiveDate>,
    pub next_level: Option<String>,
    /// Growth still needed for the next level, in fen.
    pub to_next_level: Option<i64>,
    pub points: i64,
    /// Points that expire within 30 days, and the first date they do.
    pub points_expiring_soon: i64,
    pub next_expiry: Option<NaiveDate>,
    pub level_changes: Vec<LevelChangeRecord>,
}

/// What the scheduled jobs did.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct JobReport {
    pub tenant: String,
    pub today: Option<NaiveDate>,
    pub points_expired: i64,
    pub accounts_expired: i64,
    pub levels_reviewed: i64,
    pub levels_changed: i64,
    pub coupons_expired: i64,
    pub skipped: Vec<String>,
}

/// The postings and changes a spend's earning adds to its transaction.
pub(crate) struct EarnPlan {
    pub specs: Vec<PostingSpec>,
    pub changes: Vec<LedgerChange>,
    pub summary: EarnSummary,
}

fn parse_method(s: &str) -> Option<PayMethod> {
    match s {
        "stored_value" => Some(PayMethod::StoredValue),
        "charge" => Some(PayMethod::Charge),
        "points" => Some(PayMethod::Points),
        "coupon" => Some(PayMethod::Coupon),
        other => Tender::parse(other).map(PayMethod::Tender),
    }
}

/// Growth value counts money actually paid: points and coupons are not spend.
fn growth_of(payments: &[(PayMethod, Money)]) -> Money {
    payments
        .iter()
        .filter(|(m, _)| !matches!(m, PayMethod::Points | PayMethod::Coupon))
        .map(|(_, a)| *a)
        .sum()
}

fn note(rule: PointsRule, e: &points::Explanation) -> Option<EntryNote> {
    Some(EntryNote {
        rule: rule.as_str().into(),
        memo: e.zh.clone(),
        memo_en: e.en.clone(),
    })
}

impl App {
    /// What a spend earns and changes: points by the tenant's rules (each rule its own
    /// entry with its explanation), the visit, and an upgrade if the growth value now
    /// reaches a higher level. Computed before posting; posted with the spend.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn plan_earn(
        &self,
        actor: &Actor,
        settings: &TenantSettings,
        card: Option<&Card>,
        customer: Option<&Customer>,
        points_key: Option<AccountKey>,
        store: StoreId,
        bill: Money,
        payments: &[(PayMethod, Money)],
        source: &str,
        at: DateTime<Utc>,
    ) -> Result<EarnPlan, AppError> {
        let today = settings.local_date(at);
        let rules = &settings.points;
        let lrules = &settings.levels;
        let current_level = customer.and_then(|c| c.level.clone());
        let level_def = current_level.as_deref().and_then(|c| lrules.level(c));
        let visit_ordinal = match (customer, &rules.nth_visit_bonus) {
            (Some(c), Some(b)) => {
                let from = points::period_start(b.period, today);
                self.storage
                    .visit_count(actor.tenant_id, c.id, from, today)
                    .await? as u32
                    + 1
            }
            _ => 1,
        };
        let earns = points_key.is_some() && rules.enabled;
        let awards = if earns {
            points::earn(
                rules,
                &EarnInput {
                    payments: payments.to_vec(),
                    level: level_def.map(|l| EarnLevel {
                        name: l.name.clone(),
                        name_en: l.name_en.clone(),
                        multiplier_bp: l.multiplier_bp,
                    }),
                    visit_ordinal_in_period: visit_ordinal,
                    birthday: customer.and_then(|c| c.profile.birthday),
                    today,
                },
            )
        } else {
            Vec::new()
        };
        let expires_on = points::expires_on(&rules.expiry, today);
        let mut specs = Vec::new();
        let mut earned = 0;
        if let Some(key) = points_key {
            for a in &awards {
                earned += a.points;
                specs.push(PostingSpec {
                    key,
                    amount: a.points,
                    floor: Some(0),
                    note: note(a.rule, &a.explanation),
                    lot: LotRule::New {
                        earned_on: today,
                        expires_on,
                    },
                });
            }
        }
        if earned > 0 {
            specs.push(PostingSpec::new(
                AccountKey::store(AccountKind::PointsGranted, store),
                earned,
                None,
            ));
        }
        let growth = growth_of(payments);
        let mut changes = vec![LedgerChange::Visit(VisitRecord {
            tenant_id: actor.tenant_id,
            id: new_uuid(),
            customer_id: customer.map(|c| c.id),
            card_id: card.map(|c| c.id),
            store_id: Some(store),
            staff_id: Some(actor.staff_id),
            txn_id: None,
            source: source.into(),
            occurred_at: at,
            local_date: today,
            amount: bill.fen(),
            growth: growth.fen(),
            reversed_at: None,
        })];
        let mut level_change = None;
        let mut level_after = current_level.clone();
        // A member at the top level cannot rise: the growth sum is not read.
        if let Some(c) = customer
            && level::spend_can_change(lrules, current_level.as_deref())
        {
            let before = self
                .storage
                .growth(actor.tenant_id, c.id, lrules.window_start(today))
                .await?;
            let total = Money::from_fen(before) + growth;
            if let Some(d) = level::after_spend(lrules, current_level.as_deref(), total) {
                level_after = Some(d.to.clone());
                changes.push(LedgerChange::Level(level_record(
                    actor.tenant_id,
                    c.id,
                    &d,
                    total,
                    Some(actor),
                    at,
                )));
                level_change = Some(d);
            }
        }
        // "Spend 100, get a 100 voucher": coupons the spend triggers, issued with it.
        let mut coupons_issued = Vec::new();
        if let Some(c) = customer {
            for coupon in self
                .spend_triggered_coupons(actor, c.id, growth, at)
                .await?
            {
                coupons_issued.push(IssuedCoupon {
                    code: coupon.code.clone(),
                    template_id: coupon.template_id,
                    valid_to: coupon.valid_to,
                });
                changes.push(LedgerChange::CouponIssue(coupon));
            }
        }
        Ok(EarnPlan {
            specs,
            changes,
            summary: EarnSummary {
                coupons_issued,
                points_earned: earned,
                awards,
                growth: growth.fen(),
                level_before: current_level,
                level_after,
                level_change,
            },
        })
    }

    /// The card a purchase earns on: the given one, or the customer's first active card
    /// with points.
    async fn purchase_card(
        &self,
        actor: &Actor,
        req: &RecordPurchase,
    ) -> Result<(Card, Option<Customer>), AppError> {
        let card = match (req.card_id, req.customer_id) {
            (Some(id), _) => self.card(actor, id).await?,
            (None, Some(c)) => {
                let cards = self.storage.cards_of_customer(actor.tenant_id, c).await?;
                cards
                    .into_iter()
                    .find(|k| k.status == CardStatus::Active && k.kinds.points)
                    .ok_or_else(|| {
                        AppError::from(ValidationErrors::single(
                            "customer_id",
                            "no_points_card",
                            "this customer has no active card that collects points",
                        ))
                    })?
            }
            (None, None) => {
                return Err(ValidationErrors::single(
                    "card_id",
                    "required",
                    "a card or a customer",
                )
                .into());
            }
        };
        if card.status != CardStatus::Active {
            return Err(AppError::Conflict {
                code: "card_not_active",
                field: Some("card_id"),
                message: format!("the card is {}", card.status.as_str()),
                existing: None,
            });
        }
        if let Some(c) = req.customer_id
            && card.customer_id != Some(c)
        {
            return Err(ValidationErrors::single(
                "customer_id",
                "card_of_another_customer",
                "this card belongs to someone else",
            )
            .into());
        }
        let customer = match card.customer_id {
            Some(c) => Some(self.customer(actor, c).await?),
            None => None,
        };
        Ok((card, customer))
    }

    /// Records a purchase paid outside the card: points, growth value, visit, upgrade.
    pub async fn record_purchase(
        &self,
        actor: &Actor,
        req: &RecordPurchase,
    ) -> Result<(LedgerReceipt, EarnSummary), AppError> {
        actor.require(Permission::Checkout)?;
        crate::cards::check_request(&req.idempotency_key, "amount", req.amount)?;
        let mut errors = ValidationErrors::default();
        let mut payments = Vec::new();
        for (i, p) in req.payments.iter().enumerate() {
            match parse_method(&p.method) {
                Some(PayMethod::StoredValue | PayMethod::Charge) => errors.push(
                    patron_domain::FieldError::new(
                        format!("payments[{i}].method"),
                        "use_card_spend",
                        "stored value and charge accounts are spent with the card's spend, which earns points itself",
                    ),
                ),
                Some(m) if p.amount.fen() > 0 => payments.push((m, p.amount)),
                Some(_) => errors.push(patron_domain::FieldError::new(
                    format!("payments[{i}].amount"),
                    "not_positive",
                    "more than zero",
                )),
                None => errors.push(patron_domain::FieldError::new(
                    format!("payments[{i}].method"),
                    "invalid_choice",
                    format!(
                        "“{}” is not one of: cash, bank_card, wechat, alipay, other_wallet, points, coupon",
                        p.method
                    ),
                )),
            }
        }
        let paid: Money = req.payments.iter().map(|p| p.amount).sum();
        if errors.is_empty() && paid != req.amount {
            errors.push(patron_domain::FieldError::new(
                "payments",
                "payments_do_not_add_up",
                format!("the payments add up to {paid}, the bill is {}", req.amount),
            ));
        }
        errors.into_result(())?;
        let store = at_store(actor, "purchases")?;
        let (card, customer) = self.purchase_card(actor, req).await?;
        let hash = request_hash("purchase", card.id, req);
        if let Some(txn) = self
            .storage
            .txn_by_key(actor.tenant_id, &req.idempotency_key)
            .await?
        {
            return self.purchase_replay(actor, txn, &hash).await;
        }
        let settings = self.settings(actor).await?;
        let keys = self.money_keys(actor, &card).await?;
        let points_key = card.kinds.points.then_some(keys[2]);
        let at = now();
        let plan = self
            .plan_earn(
                actor,
                &settings,
                Some(&card),
                customer.as_ref(),
                points_key,
                store,
                req.amount,
                &payments,
                "purchase",
                at,
            )
            .await?;
        let memo = req.memo.clone().unwrap_or_else(|| {
            format!(
                "消费 {} 元，积分 {} / purchase ¥{}, {} pts",
                req.amount.to_decimal_string(),
                plan.summary.points_earned,
                req.amount.to_decimal_string(),
                plan.summary.points_earned
            )
        });
        let details = serde_json::json!({
            "amount": req.amount,
            "payments": req.payments,
            "earn": plan.summary,
        });
        let receipt = self
            .post_specs(
                actor,
                "purchase",
                &req.idempotency_key,
                hash,
                Some(&card),
                None,
                Some(keys),
                None,
                plan.specs,
                plan.changes,
                None,
                None,
                memo,
                details,
                None,
            )
            .await?;
        Ok((receipt, plan.summary))
    }

    async fn purchase_replay(
        &self,
        actor: &Actor,
        txn: TxnRecord,
        hash: &str,
    ) -> Result<(LedgerReceipt, EarnSummary), AppError> {
        if txn.request_hash != hash {
            return Err(AppError::from(StoreError::IdempotencyMismatch));
        }
        let summary: EarnSummary = txn
            .data
            .get("earn")
            .cloned()
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default();
        let card = match txn.card_id {
            Some(c) => Some(self.card(actor, c).await?),
            None => None,
        };
        let keys = match &card {
            Some(c) => Some(self.money_keys(actor, c).await?),
            None => None,
        };
        Ok((self.replay(actor, txn, keys).await?, summary))
    }

    /// Quotes paying part of a bill with points (100 points = ¥1 and at most half the
    /// bill by default). The points are taken at checkout.
    pub async fn points_cash_quote(
        &self,
        actor: &Actor,
        card_id: CardId,
        bill: Money,
        requested: Option<i64>,
    ) -> Result<CashQuoteView, AppError> {
        actor.require(Permission::Checkout)?;
        let card = self.card(actor, card_id).await?;
        let settings = self.settings(actor).await?;
        let keys = self.money_keys(actor, &card).await?;
        let available = self.balances_of(actor, &keys).await?.points;
        let q = points::quote_cash(&settings.points.redemption, bill, available, requested)
            .map_err(|e| {
                AppError::from(ValidationErrors::single(
                    "points",
                    "not_redeemable",
                    e.to_string(),
                ))
            })?;
        Ok(CashQuoteView {
            available,
            points: q.points,
            value: q.value,
            explanation: q.explanation.zh,
            explanation_en: q.explanation.en,
        })
    }

    /// Exchanges points for a gift from the catalogue (stock taken in the same transaction).
    pub async fn redeem_gift(
        &self,
        actor: &Actor,
        card_id: CardId,
        req: &RedeemGift,
    ) -> Result<LedgerReceipt, AppError> {
        actor.require(Permission::RedeemPoints)?;
        crate::cards::check_request(&req.idempotency_key, "quantity", Money::from_fen(1))?;
        let qty = req.quantity.unwrap_or(1);
        if !(1..=99).contains(&qty) {
            return Err(ValidationErrors::single("quantity", "invalid_quantity", "1 to 99").into());
        }
        let store = at_store(actor, "gift redemptions")?;
        let card = self.card(actor, card_id).await?;
        if card.status != CardStatus::Active {
            return Err(AppError::Conflict {
                code: "card_not_active",
                field: None,
                message: format!("the card is {}", card.status.as_str()),
                existing: None,
            });
        }
        let gift = self
            .storage
            .gift(actor.tenant_id, req.gift_id)
            .await?
            .filter(|g| g.active)
            .ok_or(AppError::NotFound { entity: "gift" })?;
        let keys = self.money_keys(actor, &card).await?;
        let points = gift.points_price * i64::from(qty);
        let label = if qty == 1 {
            gift.name.clone()
        } else {
            format!("{} × {qty}", gift.name)
        };
        let e = points::explain_redeem_gift(points, &label);
        let specs = vec![
            PostingSpec {
                note: note(PointsRule::RedeemGift, &e),
                ..PostingSpec::new(keys[2], -points, Some(0))
            },
            PostingSpec::new(
                AccountKey::store(AccountKind::PointsRedeemed, store),
                points,
                None,
            ),
        ];
        let changes = (0..qty)
            .map(|_| LedgerChange::GiftTaken { gift: gift.id })
            .collect();
        let hash = request_hash("gift", card.id, req);
        let details = serde_json::json!({"gift_id": gift.id, "gift": gift.name, "quantity": qty, "points": points});
        let r = self
            .post_specs(
                actor,
                "points_gift",
                &req.idempotency_key,
                hash,
                Some(&card),
                None,
                Some(keys),
                None,
                specs,
                changes,
                None,
                None,
                e.zh.clone(),
                details,
                None,
            )
            .await;
        match r {
            Err(AppError::Conflict {
                code: "insufficient_balance",
                ..
            }) => Err(AppError::Conflict {
                code: "insufficient_points",
                field: Some("points"),
                message: format!("not enough points: the gift needs {points}"),
                existing: None,
            }),
            other => other,
        }
    }

    /// Exchanges points for a coupon of a template that has a points price; the coupon
    /// is issued to the card's holder in the same transaction as the points are taken.
    pub async fn exchange_points_for_coupon(
        &self,
        actor: &Actor,
        card_id: CardId,
        req: &ExchangeForCoupon,
    ) -> Result<LedgerReceipt, AppError> {
        actor.require(Permission::RedeemPoints)?;
        crate::cards::check_request(&req.idempotency_key, "template_id", Money::from_fen(1))?;
        let store = at_store(actor, "points exchanges")?;
        let card = self.card(actor, card_id).await?;
        let hash = request_hash("coupon_exchange", card.id, req);
        if let Some(txn) = self
            .storage
            .txn_by_key(actor.tenant_id, &req.idempotency_key)
            .await?
        {
            return Ok(self.purchase_replay(actor, txn, &hash).await?.0);
        }
        if card.status != CardStatus::Active {
            return Err(AppError::Conflict {
                code: "card_not_active",
                field: None,
                message: format!("the card is {}", card.status.as_str()),
                existing: None,
            });
        }
        let Some(holder) = card.customer_id else {
            return Err(ValidationErrors::single(
                "card_id",
                "anonymous_card",
                "coupons are issued to a registered customer; register the card first",
            )
            .into());
        };
        let template = self.coupon_template(actor, req.template_id).await?;
        let Some(price) = template.points_price else {
            return Err(ValidationErrors::single(
                "template_id",
                "not_exchangeable",
                "this coupon cannot be bought with points",
            )
            .into());
        };
        let coupon = self
            .build_coupon(
                actor,
                template.id,
                holder,
                patron_domain::coupon::IssueChannel::PointsExchange,
            )
            .await?;
        let keys = self.money_keys(actor, &card).await?;
        let e = points::explain_redeem_coupon(price, &template.name);
        let specs = vec![
            PostingSpec {
                note: note(PointsRule::RedeemCoupon, &e),
                ..PostingSpec::new(keys[2], -price, Some(0))
            },
            PostingSpec::new(
                AccountKey::store(AccountKind::PointsRedeemed, store),
                price,
                None,
            ),
        ];
        let details = serde_json::json!({
            "template_id": template.id, "coupon": template.name, "code": coupon.code,
            "valid_to": coupon.valid_to, "points": price,
        });
        let r = self
            .post_specs(
                actor,
                "points_coupon",
                &req.idempotency_key,
                hash,
                Some(&card),
                None,
                Some(keys),
                None,
                specs,
                vec![LedgerChange::CouponIssue(coupon)],
                None,
                None,
                e.zh.clone(),
                details,
                None,
            )
            .await;
        match r {
            Err(AppError::Conflict {
                code: "insufficient_balance",
                ..
            }) => Err(AppError::Conflict {
                code: "insufficient_points",
                field: Some("points"),
                message: format!("not enough points: this coupon costs {price}"),
                existing: None,
            }),
            other => other,
        }
    }

    /// A card's points: balance, lots and explained entries (newest first).
    pub async fn card_points(
        &self,
        actor: &Actor,
        card_id: CardId,
    ) -> Result<PointsView, AppError> {
        actor.require(Permission::ViewCards)?;
        let card = self.card(actor, card_id).await?;
        let keys = self.money_keys(actor, &card).await?;
        let account = keys[2].account_id(actor.tenant_id);
        let balance = self.balances_of(actor, &keys).await?.points;
        let lots = self.storage.lots(actor.tenant_id, &[account]).await?;
        let mut entries: Vec<PointsEntryView> = self
            .storage
            .account_entries(actor.tenant_id, &[account], None, None)
            .await?
            .into_iter()
            .map(|e| PointsEntryView {
                txn_id: e.txn_id,
                at: e.created_at,
                points: e.amount,
                balance_after: e.balance_after,
                rule: e.rule,
                explanation: e.memo,
                explanation_en: e.memo_en,
            })
            .collect();
        entries.reverse();
        Ok(PointsView {
            card_id,
            pooled: keys[2].kind == AccountKind::OrgPoints,
            balance,
            lots,
            entries,
        })
    }

    /// A customer's level, growth value and points in one view.
    pub async fn customer_loyalty(
        &self,
        actor: &Actor,
        id: CustomerId,
    ) -> Result<LoyaltyView, AppError> {
        actor.require(Permission::ViewCustomers)?;
        let c = self.customer(actor, id).await?;
        let settings = self.settings(actor).await?;
        let today = settings.local_date(now());
        let from = settings.levels.window_start(today);
        let growth = self.storage.growth(actor.tenant_id, id, from).await?;
        let def = c.level.as_deref().and_then(|l| settings.levels.level(l));
        let next = settings
            .levels
            .levels
            .iter()
            .find(|l| l.threshold.fen() > def.map_or(-1, |d| d.threshold.fen()));
        let mut accounts = Vec::new();
        for card in self.storage.cards_of_customer(actor.tenant_id, id).await? {
            if card.status == CardStatus::Closed {
                continue;
            }
            let k = self.money_keys(actor, &card).await?[2].account_id(actor.tenant_id);
            if !accounts.contains(&k) {
                accounts.push(k);
            }
        }
        let balances = self.storage.accounts(actor.tenant_id, &accounts).await?;
        let lots = self.storage.lots(actor.tenant_id, &accounts).await?;
        let horizon = today + chrono::Duration::days(30);
        let soon: Vec<&LotRecord> = lots
            .iter()
            .filter(|l| l.expires_on.is_some_and(|e| e <= horizon))
            .collect();
        Ok(LoyaltyView {
            customer_id: id,
            level: c.level.clone(),
            level_name: def.map(|d| d.name.clone()),
            level_name_en: def.map(|d| d.name_en.clone()),
            growth,
            growth_from: from,
            next_level: next.map(|n| n.code.clone()),
            to_next_level: next.map(|n| (n.threshold.fen() - growth).max(0)),
            points: balances.iter().map(|a| a.balance).sum(),
            points_expiring_soon: soon.iter().map(|l| l.remaining).sum(),
            next_expiry: soon.iter().filter_map(|l| l.expires_on).min(),
            level_changes: self.storage.level_changes(actor.tenant_id, id).await?,
        })
    }

    /// Sets a customer's level by hand, with a reason (kept until the next review).
    pub async fn set_level(
        &self,
        actor: &Actor,
        id: CustomerId,
        req: &SetLevel,
    ) -> Result<LevelChangeRecord, AppError> {
        actor.require(Permission::SetLevel)?;
        let reason = crate::cards::required_reason(&req.reason)?;
        let reason = reason.as_str();
        let settings = self.settings(actor).await?;
        let Some(def) = settings.levels.level(&req.level) else {
            return Err(ValidationErrors::single(
                "level",
                "unknown_level",
                format!(
                    "“{}” is not one of: {}",
                    req.level,
                    settings
                        .levels
                        .levels
                        .iter()
                        .map(|l| l.code.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
            .into());
        };
        let c = self.customer(actor, id).await?;
        let at = now();
        let growth = self
            .storage
            .growth(
                actor.tenant_id,
                id,
                settings.levels.window_start(settings.local_date(at)),
            )
            .await?;
        let record = LevelChangeRecord {
            tenant_id: actor.tenant_id,
            id: new_uuid(),
            customer_id: id,
            from_level: c.level.clone(),
            to_level: def.code.clone(),
            reason: "manual".into(),
            growth,
            explanation: format!("{} 手动设为{}：{reason}", actor.display_name, def.name),
            explanation_en: format!(
                "{} set the level to {}: {reason}",
                actor.display_name, def.name_en
            ),
            staff_id: Some(actor.staff_id),
            store_id: actor.store_id,
            occurred_at: at,
        };
        self.storage.change_level(&record).await?;
        Ok(record)
    }

    pub async fn gifts(&self, actor: &Actor, all: bool) -> Result<Vec<GiftRecord>, AppError> {
        actor.require(Permission::ViewCatalog)?;
        Ok(self.storage.gifts(actor.tenant_id, !all).await?)
    }

    pub async fn create_gift(
        &self,
        actor: &Actor,
        req: &GiftInput,
    ) -> Result<GiftRecord, AppError> {
        actor.require(Permission::ManageGifts)?;
        check_gift(req)?;
        let g = GiftRecord {
            tenant_id: actor.tenant_id,
            id: new_uuid(),
            name: req.name.trim().into(),
            name_en: req.name_en.trim().into(),
            points_price: req.points_price,
            stock: req.stock,
            active: req.active,
            created_at: now(),
        };
        self.storage.insert_gift(&g).await?;
        Ok(g)
    }

    pub async fn update_gift(
        &self,
        actor: &Actor,
        id: uuid::Uuid,
        req: &GiftInput,
    ) -> Result<GiftRecord, AppError> {
        actor.require(Permission::ManageGifts)?;
        check_gift(req)?;
        let old = self
            .storage
            .gift(actor.tenant_id, id)
            .await?
            .ok_or(AppError::NotFound { entity: "gift" })?;
        let g = GiftRecord {
            name: req.name.trim().into(),
            name_en: req.name_en.trim().into(),
            points_price: req.points_price,
            stock: req.stock,
            active: req.active,
            ..old
        };
        self.storage.update_gift(&g).await?;
        Ok(g)
    }

    /// Runs the daily jobs of every tenant that are due: points expiry, coupon expiry,
    /// level review. `today` overrides the local date (tests, catching up).
    pub async fn run_due_jobs(&self, today: Option<NaiveDate>) -> Result<Vec<JobReport>, AppError> {
        let mut reports = Vec::new();
        for t in self.storage.list_tenants().await? {
            reports.push(self.run_jobs_for(t.id, &t.code, today, false).await?);
        }
        Ok(reports)
    }

    /// Runs the actor's tenant's jobs now (owners and managers).
    pub async fn run_jobs_now(
        &self,
        actor: &Actor,
        today: Option<NaiveDate>,
    ) -> Result<JobReport, AppError> {
        actor.require(Permission::RunJobs)?;
        let tenant = self
            .storage
            .tenant(actor.tenant_id)
            .await?
            .ok_or(AppError::NotFound { entity: "tenant" })?;
        self.run_jobs_for(actor.tenant_id, &tenant.code, today, true)
            .await
    }

    /// Runs one tenant's jobs; `force` runs them even if they ran today already.
    pub async fn run_jobs_for(
        &self,
        tenant: TenantId,
        code: &str,
        today: Option<NaiveDate>,
        force: bool,
    ) -> Result<JobReport, AppError> {
        let settings = self.settings_of(tenant).await?;
        let at = now();
        let today = today.unwrap_or_else(|| settings.local_date(at));
        let mut report = JobReport {
            tenant: code.into(),
            today: Some(today),
            ..Default::default()
        };
        let due = |run: Option<JobRun>| force || run.is_none_or(|r| r.last_run_on < today);
        if due(self.storage.job_run(tenant, "points_expiry").await?) {
            let (accounts, points) = self.expire_points(tenant, today, at).await?;
            report.accounts_expired = accounts;
            report.points_expired = points;
            self.record_run(
                tenant,
                "points_expiry",
                today,
                at,
                format!("{points} points in {accounts} accounts"),
            )
            .await?;
        } else {
            report.skipped.push("points_expiry".into());
        }
        if due(self.storage.job_run(tenant, "coupon_expiry").await?) {
            report.coupons_expired = self.expire_coupons_job(tenant, today).await?;
            self.record_run(
                tenant,
                "coupon_expiry",
                today,
                at,
                format!("{} coupons", report.coupons_expired),
            )
            .await?;
        } else {
            report.skipped.push("coupon_expiry".into());
        }
        let last_review = self.storage.job_run(tenant, "level_review").await?;
        if force || level::review_due(&settings.levels, last_review.map(|r| r.last_run_on), today) {
            let (reviewed, changed) = self.review_levels(tenant, &settings, today, at).await?;
            report.levels_reviewed = reviewed;
            report.levels_changed = changed;
            self.record_run(
                tenant,
                "level_review",
                today,
                at,
                format!("{changed} of {reviewed} customers changed level"),
            )
            .await?;
        } else {
            report.skipped.push("level_review".into());
        }
        Ok(report)
    }

    async fn record_run(
        &self,
        tenant: TenantId,
        job: &str,
        today: NaiveDate,
        at: DateTime<Utc>,
        summary: String,
    ) -> Result<(), AppError> {
        self.storage
            .record_job_run(
                tenant,
                &JobRun {
                    job: job.into(),
                    last_run_on: today,
                    last_run_at: at,
                    summary,
                },
            )
            .await?;
        Ok(())
    }

    /// Posts one expiry transaction per account holding lots that expired before `today`.
    async fn expire_points(
        &self,
        tenant: TenantId,
        today: NaiveDate,
        at: DateTime<Utc>,
    ) -> Result<(i64, i64), AppError> {
        let (mut n_accounts, mut n_points) = (0, 0);
        let stores = self.storage.list_stores(tenant).await?;
        let Some(fallback_store) = stores.first().map(|s| s.id) else {
            return Ok((0, 0));
        };
        loop {
            let batch = self
                .storage
                .expired_lot_accounts(tenant, today, 500)
                .await?;
            if batch.is_empty() {
                break;
            }
            let mut progressed = false;
            for (account_id, _) in &batch {
                let accounts = self.storage.accounts(tenant, &[*account_id]).await?;
                let Some(account) = accounts.first() else {
                    continue;
                };
                // Re-read the lots: a spend may have taken some since the batch was read.
                let lots = self.storage.lots(tenant, &[*account_id]).await?;
                let expired: Vec<&LotRecord> = lots
                    .iter()
                    .filter(|l| l.expires_on.is_some_and(|e| e < today))
                    .collect();
                let points: i64 = expired.iter().map(|l| l.remaining).sum();
                if points == 0 {
                    continue;
                }
                let last_day = expired
                    .iter()
                    .filter_map(|l| l.expires_on)
                    .max()
                    .unwrap_or(today);
                let card = match account.key.card {
                    Some(c) => self.storage.card(tenant, c).await?,
                    None => None,
                };
                let store = card
                    .as_ref()
                    .and_then(|c| c.store_id)
                    .unwrap_or(fallback_store);
                let e = points::explain_expiry(points, last_day);
                let txn = TxnRecord {
                    tenant_id: tenant,
                    id: new_uuid(),
                    kind: "points_expiry".into(),
                    idempotency_key: format!("points-expiry:{account_id}:{today}"),
                    request_hash: format!("points-expiry:{points}"),
                    card_id: account.key.card,
                    customer_id: card
                        .as_ref()
                        .and_then(|c| c.customer_id)
                        .or(account.key.customer),
                    store_id: Some(store),
                    staff_id: None,
                    approver_id: None,
                    reverses: None,
                    reason: None,
                    memo: e.zh.clone(),
                    data: serde_json::json!({"points": points, "expired_through": last_day, "explanation_en": e.en}),
                    created_at: at,
                };
                let specs = vec![
                    PostingSpec {
                        note: note(PointsRule::Expiry, &e),
                        lot: LotRule::ExpireBefore(today),
                        ..PostingSpec::new(account.key, -points, Some(0))
                    },
                    PostingSpec::new(
                        AccountKey::store(AccountKind::PointsExpired, store),
                        points,
                        None,
                    ),
                ];
                let event = txn.customer_id.map(|c| patron_domain::timeline::TimelineEvent {
                    tenant_id: tenant,
                    id: patron_domain::ids::TimelineEventId(new_uuid()),
                    customer_id: c,
                    occurred_at: at,
                    kind: "points_expiry".into(),
                    summary: e.zh.clone(),
                    data: serde_json::json!({"txn_id": txn.id, "points": points, "explanation_en": e.en}),
                    store_id: Some(store),
                    staff_id: None,
                });
                match self.storage.post(&txn, &[], &specs, event.as_ref()).await {
                    Ok(PostOutcome::Posted { .. }) => {
                        n_accounts += 1;
                        n_points += points;
                        progressed = true;
                    }
                    // Already expired today (a second run), or the lots moved meanwhile:
                    // the next run picks up what is left.
                    Ok(PostOutcome::Replayed { .. })
                    | Err(StoreError::IdempotencyMismatch)
                    | Err(StoreError::Conflict { .. })
                    | Err(StoreError::Insufficient { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            if !progressed || batch.len() < 500 {
                break;
            }
        }
        Ok((n_accounts, n_points))
    }

    /// The level review: every customer with a level or a visit is set to the level their
    /// growth value supports (downgrades at most once per the configured months).
    async fn review_levels(
        &self,
        tenant: TenantId,
        settings: &TenantSettings,
        today: NaiveDate,
        at: DateTime<Utc>,
    ) -> Result<(i64, i64), AppError> {
        let rules = &settings.levels;
        let from = rules.window_start(today);
        let (mut reviewed, mut changed) = (0, 0);
        let mut after = None;
        loop {
            let page = self.storage.level_candidates(tenant, after, 500).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.0);
            for (customer, current) in &page {
                reviewed += 1;
                let growth = Money::from_fen(self.storage.growth(tenant, *customer, from).await?);
                let last_downgrade = self
                    .storage
                    .level_changes(tenant, *customer)
                    .await?
                    .iter()
                    .filter(|c| c.reason == "review_downgrade")
                    .map(|c| settings.local_date(c.occurred_at))
                    .max();
                if let Some(d) =
                    level::at_review(rules, current.as_deref(), growth, last_downgrade, today)
                {
                    let record = level_record(tenant, *customer, &d, growth, None, at);
                    match self.storage.change_level(&record).await {
                        Ok(()) => changed += 1,
                        // Changed by a spend meanwhile: the next review looks again.
                        Err(StoreError::Conflict { .. }) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            if page.len() < 500 {
                break;
            }
        }
        Ok((reviewed, changed))
    }

    async fn expire_coupons_job(
        &self,
        tenant: TenantId,
        today: NaiveDate,
    ) -> Result<i64, AppError> {
        Ok(self.expire_coupons(tenant, today).await? as i64)
    }
}

fn level_record(
    tenant: TenantId,
    customer: CustomerId,
    d: &LevelDecision,
    growth: Money,
    actor: Option<&Actor>,
    at: DateTime<Utc>,
) -> LevelChangeRecord {
    LevelChangeRecord {
        tenant_id: tenant,
        id: new_uuid(),
        customer_id: customer,
        from_level: d.from.clone(),
        to_level: d.to.clone(),
        reason: serde_json::to_value(d.reason)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| "upgrade".into()),
        growth: growth.fen(),
        explanation: d.explanation.zh.clone(),
        explanation_en: d.explanation.en.clone(),
        staff_id: actor.map(|a| a.staff_id),
        store_id: actor.and_then(|a| a.store_id),
        occurred_at: at,
    }
}

fn check_gift(req: &GiftInput) -> Result<(), AppError> {
    let mut errors = ValidationErrors::default();
    if req.name.trim().is_empty() || req.name.chars().count() > 100 {
        errors.push(patron_domain::FieldError::new(
            "name",
            "required",
            "1–100 characters",
        ));
    }
    if req.points_price <= 0 || req.points_price > 100_000_000 {
        errors.push(patron_domain::FieldError::new(
            "points_price",
            "invalid_points",
            "a positive number of points",
        ));
    }
    if req.stock.is_some_and(|s| s < 0) {
        errors.push(patron_domain::FieldError::new(
            "stock",
            "invalid",
            "zero or more, or absent for unlimited",
        ));
    }
    Ok(errors.into_result(())?)
}
