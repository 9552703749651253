//! Member cards and stored value: issue, PIN, top-up, spend, transfer, adjustment,
//! reversal, freeze, report lost and replace, close with refund, statements, liability.
//!
//! Every money or points change is built here as balanced postings (checked by
//! `patron_domain::ledger::check_balanced`) and handed to `LedgerStore::post`, the only
//! code that writes balances.

use crate::{Actor, App, AppError, new_uuid, now};
use chrono::{DateTime, Utc};
use patron_domain::ValidationErrors;
use patron_domain::card::{Card, CardKinds, CardMedium, CardStatus};
use patron_domain::card_number;
use patron_domain::ids::{CardId, CustomerId};
use patron_domain::ledger::{AccountKey, AccountKind, Posting, Tender, check_balanced};
use patron_domain::money::Money;
use patron_domain::permissions::Permission;
use patron_domain::settings::TenantSettings;
use patron_domain::stored_value::{self, SplitError};
use patron_store::StoreError;
use patron_store::ledger::{LedgerChange, PostOutcome, PostingSpec, TxnRecord};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use utoipa::ToSchema;

/// The largest single top-up or spend accepted (a typo guard, far above any real bill).
pub const MAX_AMOUNT: Money = Money::from_yuan(1_000_000);
/// How long settings read from the database are reused.
pub const SETTINGS_TTL: chrono::Duration = chrono::Duration::seconds(5);
/// Settings per tenant, recently read.
pub type SettingsCache = crate::tenant_cache::TenantCache<TenantSettings>;
/// How long a verified PIN stays good for spending on that card.
pub const PIN_TOKEN_TTL: chrono::Duration = chrono::Duration::minutes(3);

/// Verified-PIN tokens kept in memory: the slow argon2 check happens once per till
/// session, not once per spend, without weakening the hash.
#[derive(Default)]
pub struct PinTokens(Mutex<HashMap<String, (CardId, DateTime<Utc>)>>);

impl PinTokens {
    fn issue(&self, card: CardId) -> (String, DateTime<Utc>) {
        let mut bytes = [0u8; 24];
        rand::fill(&mut bytes);
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let until = now() + PIN_TOKEN_TTL;
        let mut map = self.0.lock().expect("pin tokens");
        let t = now();
        map.retain(|_, (_, exp)| *exp > t);
        map.insert(token.clone(), (card, until));
        (token, until)
    }
    fn check(&self, token: &str, card: CardId) -> bool {
        let map = self.0.lock().expect("pin tokens");
        map.get(token)
            .is_some_and(|(c, exp)| *c == card && *exp > now())
    }
}

/// Balances of one card (or of the organization pool it spends from).
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct Balances {
    pub principal: Money,
    pub bonus: Money,
    pub points: i64,
}

impl Balances {
    pub fn money(&self) -> Money {
        self.principal + self.bonus
    }
}

/// A card with its balances.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CardView {
    #[serde(flatten)]
    pub card: Card,
    pub balances: Balances,
    /// True when spending draws on the organization's pooled accounts.
    pub pooled: bool,
}

/// What a money-changing call returns: the transaction and the balances around it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LedgerReceipt {
    #[schema(value_type = String, format = Uuid)]
    pub txn_id: uuid::Uuid,
    pub kind: String,
    pub card_id: Option<CardId>,
    pub before: Balances,
    pub after: Balances,
    /// Kind-specific details (amount, bonus, split, tender...).
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    /// True when this answers a repeated request (same idempotency key): nothing new was done.
    pub replayed: bool,
    pub created_at: DateTime<Utc>,
    /// The receipt number a bill took when it was posted just now, so the checkout
    /// builds its receipt without reading the bill back (not part of the answer).
    #[serde(skip)]
    pub(crate) checkout_number: Option<String>,
}

/// Issue a card.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueCard {
    /// The holder; absent for an anonymous card.
    pub customer_id: Option<CustomerId>,
    #[serde(default = "electronic")]
    pub medium: CardMedium,
    #[serde(default)]
    pub kinds: CardKinds,
    /// A pre-printed number (with its check digit); generated when absent.
    pub number: Option<String>,
    /// 6 digits; required before stored value can be spent when the tenant requires PINs.
    pub pin: Option<String>,
    /// Spend from and earn into the holder's organization's pooled accounts.
    #[serde(default)]
    pub pool_to_org: bool,
    /// The price of the card (a member-price card bought for a fee), in fen; recorded as
    /// revenue in the same transaction as the card.
    #[serde(default)]
    pub fee: Option<Money>,
    /// How the fee was paid (required with a fee).
    #[serde(default)]
    pub fee_tender: Option<Tender>,
    /// Makes a paid issue safe to retry (required with a fee).
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

fn electronic() -> CardMedium {
    CardMedium::Electronic
}

/// Money in: a top-up.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TopUp {
    /// Amount paid, in fen.
    pub amount: Money,
    pub tender: Tender,
    /// Unique per request; retrying with the same key never charges twice.
    pub idempotency_key: String,
}

/// Money out: a spend of stored value.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Spend {
    /// Amount in fen.
    pub amount: Money,
    pub pin: Option<String>,
    /// A token from `POST /cards/{id}/pin` instead of the PIN.
    pub pin_token: Option<String>,
    pub idempotency_key: String,
    pub memo: Option<String>,
}

/// Move stored value between two cards of the same holder or organization.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Transfer {
    pub to_card_id: CardId,
    pub amount: Money,
    pub pin: Option<String>,
    pub pin_token: Option<String>,
    pub idempotency_key: String,
}

/// A manual correction with a reason.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Adjustment {
    /// principal, bonus or points.
    pub balance: String,
    /// Positive adds, negative takes away (fen, or points).
    pub amount: i64,
    pub reason: String,
    pub idempotency_key: String,
    /// A manager's approval, needed beyond the staff member's adjustment limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<crate::checkout::Approval>,
}

/// Undo a transaction exactly.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reverse {
    pub reason: String,
    pub idempotency_key: String,
    /// A manager's approval; needed unless the caller is a manager or the owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<crate::checkout::Approval>,
}

/// Close a card, refunding unused principal (never bonus).
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseCard {
    /// How the principal is paid back.
    pub refund_tender: Tender,
    pub reason: String,
    pub idempotency_key: String,
}

pub(crate) fn request_hash<T: Serialize>(
    kind: &str,
    target: impl std::fmt::Display,
    req: &T,
) -> String {
    let body = serde_json::to_string(req).expect("request serialises");
    let d = Sha256::digest(format!("{kind}|{target}|{body}").as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks an idempotency key and a positive amount within limits.
pub(crate) fn check_request(key: &str, field: &str, amount: Money) -> Result<(), AppError> {
    check_key(key)?;
    check_amount(field, amount)
}

pub(crate) fn check_key(key: &str) -> Result<(), AppError> {
    if key.trim().is_empty() || key.len() > 100 {
        return Err(ValidationErrors::single(
            "idempotency_key",
            "invalid_key",
            "1–100 characters, unique per request",
        )
        .into());
    }
    Ok(())
}

fn check_amount(field: &str, amount: Money) -> Result<(), AppError> {
    if amount.fen() <= 0 {
        return Err(ValidationErrors::single(
            field,
            "not_positive",
            "the amount must be more than zero",
        )
        .into());
    }
    if amount > MAX_AMOUNT {
        return Err(ValidationErrors::single(
            field,
            "too_large",
            format!("at most {MAX_AMOUNT} at once"),
        )
        .into());
    }
    Ok(())
}

/// The store where money is taken: the actor's. `what` completes "… happen at a store".
pub(crate) fn at_store(actor: &Actor, what: &str) -> Result<patron_domain::ids::StoreId, AppError> {
    actor.store_id.ok_or_else(|| {
        AppError::Forbidden(format!(
            "{what} happen at a store: log in with the store you work at"
        ))
    })
}

fn card_floor(kind: AccountKind) -> Option<i64> {
    kind.customer_side().then_some(0)
}

pub(crate) fn spec(p: Posting) -> PostingSpec {
    PostingSpec::new(p.account, p.amount, card_floor(p.account.kind))
}

impl App {
    /// The tenant's settings (defaults for what was never set).
    ///
    /// Read on every top-up and spend, so kept for a few seconds in memory: a change made
    /// through this process is seen at once, one made by another process within
    /// [`SETTINGS_TTL`].
    pub async fn settings(&self, actor: &Actor) -> Result<TenantSettings, AppError> {
        self.settings_of(actor.tenant_id).await
    }

    /// A tenant's settings without an actor (jobs), through the same cache.
    pub(crate) async fn settings_of(
        &self,
        tenant: patron_domain::ids::TenantId,
    ) -> Result<TenantSettings, AppError> {
        self.settings_cache
            .get_or_load(
                tenant,
                |_| true,
                || async {
                    Ok(match self.storage.settings(tenant).await? {
                        Some(v) => serde_json::from_value(v).map_err(|e| {
                            AppError::Internal(format!("stored settings unreadable: {e}"))
                        })?,
                        None => TenantSettings::default(),
                    })
                },
            )
            .await
    }

    /// Replaces the tenant's settings.
    pub async fn save_settings(
        &self,
        actor: &Actor,
        settings: &TenantSettings,
    ) -> Result<(), AppError> {
        actor.require(Permission::ManageSettings)?;
        let mut errors = ValidationErrors::default();
        if settings
            .top_up
            .tiers
            .iter()
            .any(|t| t.min_amount.fen() <= 0 || t.bonus.is_negative())
        {
            errors.push(patron_domain::FieldError::new(
                "top_up",
                "invalid_tier",
                "tiers need a positive amount and a bonus of zero or more",
            ));
        }
        if settings.pin_max_failures == 0 {
            errors.push(patron_domain::FieldError::new(
                "pin_max_failures",
                "invalid",
                "at least 1",
            ));
        }
        if let Err(e) = settings.levels.validate() {
            errors.push(patron_domain::FieldError::new(
                "levels",
                "invalid_levels",
                e.to_string(),
            ));
        }
        if let Err(e) = settings.points.validate() {
            for mut f in e.0 {
                f.field = format!("points.{}", f.field);
                errors.push(f);
            }
        }
        if !(-720..=840).contains(&settings.utc_offset_minutes) {
            errors.push(patron_domain::FieldError::new(
                "utc_offset_minutes",
                "invalid",
                "between -720 and 840",
            ));
        }
        if settings.day_starts_at_minutes >= 24 * 60 {
            errors.push(patron_domain::FieldError::new(
                "day_starts_at_minutes",
                "invalid",
                "between 0 and 1439 (minutes after local midnight)",
            ));
        }
        errors.into_result(())?;
        let before = self.settings(actor).await?;
        let v = serde_json::to_value(settings).expect("settings serialise");
        self.storage
            .save_settings(actor.tenant_id, &v, now())
            .await?;
        self.settings_cache.forget(actor.tenant_id);
        self.audit(patron_store::audit::AuditEntry {
            before: crate::audit::state(&before),
            after: Some(v),
            ..self.audit_entry(
                actor,
                "settings.update",
                "settings",
                None,
                "设置变更 / settings changed",
            )
        })
        .await?;
        Ok(())
    }

    /// Issues a card (to a customer, or anonymous).
    pub async fn issue_card(&self, actor: &Actor, req: &IssueCard) -> Result<CardView, AppError> {
        actor.require(Permission::IssueCards)?;
        let t = actor.tenant_id;
        if let Some(c) = req.customer_id {
            let cust = self.customer(actor, c).await?;
            if cust.merged_into.is_some() {
                return Err(ValidationErrors::single(
                    "customer_id",
                    "customer_merged",
                    "this customer was merged into another",
                )
                .into());
            }
            if req.pool_to_org && cust.profile.organization_id.is_none() {
                return Err(ValidationErrors::single(
                    "pool_to_org",
                    "no_organization",
                    "the holder belongs to no organization",
                )
                .into());
            }
        } else if req.pool_to_org {
            return Err(ValidationErrors::single(
                "pool_to_org",
                "no_organization",
                "an anonymous card cannot pool",
            )
            .into());
        }
        if !(req.kinds.stored_value || req.kinds.points || req.kinds.member_price) {
            return Err(ValidationErrors::single(
                "kinds",
                "empty",
                "a card needs at least one kind",
            )
            .into());
        }
        let pin_hash = match &req.pin {
            Some(p) => Some(crate::auth::hash_secret(&valid_pin(p)?)?),
            None => None,
        };
        let number = match &req.number {
            Some(n) => card_number::parse(n, "number").map_err(ValidationErrors::from)?,
            None => loop {
                let mut digits = String::from("88");
                for _ in 0..14 {
                    digits.push(char::from(b'0' + (rand::random::<u8>() % 10)));
                }
                let n = card_number::with_check_digit(&digits);
                if self.storage.card_by_number(t, &n).await?.is_none() {
                    break n;
                }
            },
        };
        let card = Card {
            tenant_id: t,
            id: CardId(new_uuid()),
            number,
            customer_id: req.customer_id,
            medium: req.medium,
            status: CardStatus::Active,
            issued_at: now(),
            kinds: req.kinds,
            store_id: actor.store_id,
            pin_hash,
            pin_failures: 0,
            pin_locked_until: None,
            pool_to_org: req.pool_to_org,
            replaced_by: None,
        };
        if let Some(fee) = req.fee.filter(|f| f.fen() != 0) {
            // A paid card: the card and the sale are one ledger transaction.
            let key = req.idempotency_key.as_deref().unwrap_or("");
            check_request(key, "fee", fee)?;
            let tender = req.fee_tender.ok_or_else(|| {
                ValidationErrors::single("fee_tender", "required", "how was the fee paid?")
            })?;
            let store = at_store(actor, "card sales")?;
            let postings = vec![
                Posting::new(AccountKey::tender(store, tender), fee.fen()),
                Posting::new(AccountKey::store(AccountKind::Revenue, store), fee.fen()),
            ];
            let memo = format!(
                "售卡 / card sold {} for {fee} ({})",
                card.number,
                tender.as_str()
            );
            let details = serde_json::json!({"card_id": card.id, "number": card.number, "fee": fee, "tender": tender});
            let hash = request_hash(
                "card_sale",
                card.customer_id
                    .map(|c| c.0.to_string())
                    .unwrap_or_default(),
                &(fee, tender, req.kinds),
            );
            let receipt = self
                .post(
                    actor,
                    "card_sale",
                    key,
                    hash,
                    None,
                    card.customer_id,
                    None,
                    None,
                    postings,
                    vec![LedgerChange::Insert(card.clone())],
                    None,
                    None,
                    memo,
                    details,
                )
                .await?;
            if receipt.replayed {
                let original: CardId =
                    serde_json::from_value(receipt.details["card_id"].clone())
                        .map_err(|_| AppError::Internal("card sale without its card".into()))?;
                return self.card_view(actor, original).await;
            }
            return self.card_view(actor, card.id).await;
        }
        self.storage
            .insert_cards(std::slice::from_ref(&card))
            .await
            .map_err(|e| match e {
                StoreError::Conflict { .. } => AppError::Conflict {
                    code: "card_number_in_use",
                    field: Some("number"),
                    message: "this card number is already issued".into(),
                    existing: None,
                },
                other => other.into(),
            })?;
        if let Some(c) = card.customer_id {
            self.timeline_event(
                actor,
                c,
                "card_issued",
                format!("发卡 / card issued: {}", card.number),
                serde_json::json!({"card_id": card.id}),
            )
            .await?;
        }
        Ok(CardView {
            balances: Balances::default(),
            pooled: card.pool_to_org,
            card,
        })
    }

    async fn timeline_event(
        &self,
        actor: &Actor,
        customer: CustomerId,
        kind: &str,
        summary: String,
        data: serde_json::Value,
    ) -> Result<(), AppError> {
        let e = patron_domain::timeline::TimelineEvent {
            tenant_id: actor.tenant_id,
            id: patron_domain::ids::TimelineEventId(new_uuid()),
            customer_id: customer,
            occurred_at: now(),
            kind: kind.into(),
            summary,
            data,
            store_id: actor.store_id,
            staff_id: Some(actor.staff_id),
        };
        Ok(self.storage.add_timeline_event(&e).await?)
    }

    /// A card by id.
    pub async fn card(&self, actor: &Actor, id: CardId) -> Result<Card, AppError> {
        self.storage
            .card(actor.tenant_id, id)
            .await?
            .ok_or(AppError::NotFound { entity: "card" })
    }

    /// A card by its number (as typed or swiped).
    pub async fn card_by_number(&self, actor: &Actor, number: &str) -> Result<Card, AppError> {
        let n = card_number::parse(number, "number").map_err(ValidationErrors::from)?;
        self.storage
            .card_by_number(actor.tenant_id, &n)
            .await?
            .ok_or(AppError::NotFound { entity: "card" })
    }

    /// The keys of the accounts a card's money and points live in: its own, or its
    /// organization's pool.
    pub(crate) async fn money_keys(
        &self,
        actor: &Actor,
        card: &Card,
    ) -> Result<[AccountKey; 3], AppError> {
        if card.pool_to_org
            && let Some(holder) = card.customer_id
            && let Some(org) = self.customer(actor, holder).await?.profile.organization_id
        {
            return Ok([
                AccountKey::customer(AccountKind::OrgPrincipal, org),
                AccountKey::customer(AccountKind::OrgBonus, org),
                AccountKey::customer(AccountKind::OrgPoints, org),
            ]);
        }
        Ok([
            AccountKey::card(AccountKind::CardPrincipal, card.id),
            AccountKey::card(AccountKind::CardBonus, card.id),
            AccountKey::card(AccountKind::CardPoints, card.id),
        ])
    }

    pub(crate) async fn balances_of(
        &self,
        actor: &Actor,
        keys: &[AccountKey; 3],
    ) -> Result<Balances, AppError> {
        let ids: Vec<uuid::Uuid> = keys.iter().map(|k| k.account_id(actor.tenant_id)).collect();
        let accounts = self.storage.accounts(actor.tenant_id, &ids).await?;
        let get = |i: usize| {
            accounts
                .iter()
                .find(|a| a.id == ids[i])
                .map_or(0, |a| a.balance)
        };
        Ok(Balances {
            principal: Money::from_fen(get(0)),
            bonus: Money::from_fen(get(1)),
            points: get(2),
        })
    }

    /// A card with its balances, for a caller who may see cards.
    pub async fn get_card_view(&self, actor: &Actor, id: CardId) -> Result<CardView, AppError> {
        actor.require(Permission::ViewCards)?;
        self.card_view(actor, id).await
    }

    /// A card by number (as typed or swiped) with its balances, for a caller who may see
    /// cards.
    pub async fn card_view_by_number(
        &self,
        actor: &Actor,
        number: &str,
    ) -> Result<CardView, AppError> {
        actor.require(Permission::ViewCards)?;
        let card = self.card_by_number(actor, number).await?;
        self.card_view(actor, card.id).await
    }

    /// A card with its current balances (a helper: callers check their permission).
    pub async fn card_view(&self, actor: &Actor, id: CardId) -> Result<CardView, AppError> {
        let card = self.card(actor, id).await?;
        let keys = self.money_keys(actor, &card).await?;
        let balances = self.balances_of(actor, &keys).await?;
        Ok(CardView {
            pooled: keys[0].kind == AccountKind::OrgPrincipal,
            balances,
            card,
        })
    }

    /// Sets or changes a card's PIN.
    pub async fn set_pin(&self, actor: &Actor, id: CardId, pin: &str) -> Result<(), AppError> {
        actor.require(Permission::IssueCards)?;
        let card = self.card(actor, id).await?;
        let hash = crate::auth::hash_secret(&valid_pin(pin)?)?;
        self.storage
            .set_card_pin(actor.tenant_id, card.id, &hash)
            .await?;
        Ok(())
    }

    /// The card's PIN attempts, newest first (the last 100): who tried, where, when.
    pub async fn pin_attempts(
        &self,
        actor: &Actor,
        id: CardId,
    ) -> Result<Vec<patron_store::ledger::PinAttempt>, AppError> {
        actor.require(Permission::ViewCards)?;
        let card = self.card(actor, id).await?;
        Ok(self
            .storage
            .pin_attempts(actor.tenant_id, card.id, 100)
            .await?)
    }

    /// Checks a PIN; every attempt is recorded, and too many wrong ones lock spending.
    /// Returns a short-lived token that stands for the PIN on this card.
    pub async fn verify_pin(
        &self,
        actor: &Actor,
        id: CardId,
        pin: &str,
    ) -> Result<(String, DateTime<Utc>), AppError> {
        actor.require(Permission::Spend)?;
        let card = self.card(actor, id).await?;
        self.check_pin(actor, &card, Some(pin), None).await?;
        Ok(self.pin_tokens.issue(card.id))
    }

    pub(crate) async fn check_pin(
        &self,
        actor: &Actor,
        card: &Card,
        pin: Option<&str>,
        token: Option<&str>,
    ) -> Result<(), AppError> {
        let settings = self.settings(actor).await?;
        let at = now();
        if let Some(until) = card.pin_locked_until
            && until > at
        {
            return Err(AppError::Locked {
                message: format!("too many wrong PINs: spending is locked until {until}"),
            });
        }
        if let Some(t) = token
            && self.pin_tokens.check(t, card.id)
        {
            return Ok(());
        }
        let Some(hash) = &card.pin_hash else {
            if settings.pin_required {
                return Err(AppError::Conflict {
                    code: "pin_not_set",
                    field: Some("pin"),
                    message: "this card has no PIN yet: set one before spending stored value"
                        .into(),
                    existing: None,
                });
            }
            return Ok(());
        };
        if !settings.pin_required && pin.is_none() && token.is_none() {
            return Ok(());
        }
        let Some(pin) = pin else {
            return Err(ValidationErrors::single(
                "pin",
                "pin_required",
                "the card's PIN is required",
            )
            .into());
        };
        let ok = crate::auth::verify_secret(pin, hash);
        let lock_until = at + chrono::Duration::minutes(i64::from(settings.pin_lock_minutes));
        let state = self
            .storage
            .record_pin_attempt(
                actor.tenant_id,
                card.id,
                ok,
                at,
                Some(actor.staff_id),
                actor.store_id,
                settings.pin_max_failures as i32,
                lock_until,
            )
            .await?;
        if ok {
            return Ok(());
        }
        if let Some(until) = state.locked_until {
            return Err(AppError::Locked {
                message: format!("too many wrong PINs: spending is locked until {until}"),
            });
        }
        Err(AppError::WrongPin {
            remaining: settings
                .pin_max_failures
                .saturating_sub(state.failures as u32),
        })
    }

    pub(crate) fn usable(card: &Card, need_stored_value: bool) -> Result<(), AppError> {
        let refuse = |code: &'static str, message: &str| {
            Err(AppError::Conflict {
                code,
                field: None,
                message: message.into(),
                existing: None,
            })
        };
        match card.status {
            CardStatus::Active => {}
            CardStatus::Frozen => return refuse("card_frozen", "the card is frozen"),
            CardStatus::Lost => {
                return refuse(
                    "card_lost",
                    "the card was reported lost; use its replacement",
                );
            }
            CardStatus::Closed => return refuse("card_closed", "the card is closed"),
        }
        if need_stored_value && !card.kinds.stored_value {
            return refuse("not_stored_value", "this card holds no stored value");
        }
        Ok(())
    }

    /// Posts and turns the outcome into a receipt.
    #[allow(clippy::too_many_arguments)]
    async fn post(
        &self,
        actor: &Actor,
        kind: &str,
        key: &str,
        hash: String,
        card: Option<&Card>,
        customer: Option<CustomerId>,
        keys: Option<[AccountKey; 3]>,
        // The balances of `keys` the caller already read (saves a read on the hot path).
        known_before: Option<Balances>,
        postings: Vec<Posting>,
        changes: Vec<LedgerChange>,
        reason: Option<String>,
        reverses: Option<uuid::Uuid>,
        memo: String,
        details: serde_json::Value,
    ) -> Result<LedgerReceipt, AppError> {
        let specs = postings.into_iter().map(spec).collect();
        self.post_specs(
            actor,
            kind,
            key,
            hash,
            card,
            customer,
            keys,
            known_before,
            specs,
            changes,
            reason,
            reverses,
            memo,
            details,
            None,
        )
        .await
    }

    /// [`App::post`] with postings that carry notes or lot rules (points).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn post_specs(
        &self,
        actor: &Actor,
        kind: &str,
        key: &str,
        hash: String,
        card: Option<&Card>,
        customer: Option<CustomerId>,
        keys: Option<[AccountKey; 3]>,
        known_before: Option<Balances>,
        specs: Vec<PostingSpec>,
        changes: Vec<LedgerChange>,
        reason: Option<String>,
        reverses: Option<uuid::Uuid>,
        memo: String,
        details: serde_json::Value,
        // The manager who approved it (reversals and refunds at the till).
        approver: Option<patron_domain::ids::StaffId>,
    ) -> Result<LedgerReceipt, AppError> {
        let mut specs = specs;
        // Every points entry names its rule and explains itself, whatever wrote it.
        for p in specs.iter_mut().filter(|p| {
            p.note.is_none()
                && matches!(p.key.kind, AccountKind::CardPoints | AccountKind::OrgPoints)
        }) {
            use patron_domain::points::{self, Explanation, PointsRule};
            let why = reason.as_deref().unwrap_or(&memo);
            let (rule, e) = match kind {
                "reversal" => (
                    PointsRule::Reversal,
                    points::explain_reversal(p.amount, why),
                ),
                "card_replace" => (
                    PointsRule::Transfer,
                    Explanation {
                        zh: format!("换卡转移 {:+} 分", p.amount),
                        en: format!("Moved to the replacement card: {:+} pts", p.amount),
                    },
                ),
                "customer_merge" => (
                    PointsRule::Transfer,
                    Explanation {
                        zh: format!("合并客户转移 {:+} 分", p.amount),
                        en: format!("Moved with a merged duplicate customer: {:+} pts", p.amount),
                    },
                ),
                "card_close" => (
                    PointsRule::Adjustment,
                    Explanation {
                        zh: format!("退卡积分作废 {:+} 分", p.amount),
                        en: format!("Forfeited when the card was closed: {:+} pts", p.amount),
                    },
                ),
                _ => (
                    PointsRule::Adjustment,
                    points::explain_adjustment(p.amount, why),
                ),
            };
            p.note = Some(patron_store::ledger::EntryNote {
                rule: rule.as_str().into(),
                memo: e.zh,
                memo_en: e.en,
            });
        }
        // Points leave an account before any come back to it in the same transaction (a
        // reversal of a bill that redeemed and earned points): the ledger moves the lots of
        // withdrawals first, so the balance checks must see the same order, or a withdrawal
        // covered only by the deposit before it passes the balance and fails on the lots.
        // Stable: everything else keeps its order.
        specs.sort_by_key(|p| {
            matches!(p.key.kind, AccountKind::CardPoints | AccountKind::OrgPoints) && p.amount > 0
        });
        if !specs.is_empty() {
            let postings: Vec<Posting> = specs
                .iter()
                .map(|p| Posting::new(p.key, p.amount))
                .collect();
            check_balanced(&postings)
                .map_err(|e| AppError::Internal(format!("unbalanced {kind}: {e}")))?;
        }
        let before = match (&keys, known_before) {
            (_, Some(b)) => b,
            (Some(k), None) => self.balances_of(actor, k).await?,
            (None, None) => Balances::default(),
        };
        let txn = TxnRecord {
            tenant_id: actor.tenant_id,
            id: new_uuid(),
            kind: kind.into(),
            idempotency_key: key.into(),
            request_hash: hash,
            card_id: card.map(|c| c.id),
            customer_id: customer.or(card.and_then(|c| c.customer_id)),
            store_id: actor.store_id,
            staff_id: Some(actor.staff_id),
            approver_id: approver,
            reverses,
            reason,
            memo,
            data: details.clone(),
            created_at: now(),
        };
        let event = txn
            .customer_id
            .map(|c| patron_domain::timeline::TimelineEvent {
                tenant_id: actor.tenant_id,
                id: patron_domain::ids::TimelineEventId(new_uuid()),
                customer_id: c,
                occurred_at: txn.created_at,
                kind: kind.into(),
                summary: txn.memo.clone(),
                data: serde_json::json!({"txn_id": txn.id, "details": details}),
                store_id: actor.store_id,
                staff_id: Some(actor.staff_id),
            });
        match self
            .storage
            .post(&txn, &changes, &specs, event.as_ref())
            .await
        {
            Ok(PostOutcome::Posted {
                entries,
                checkout_number,
            }) => {
                // Touched balances come from the entries themselves (exact even when
                // other tills posted in between); untouched ones from the earlier read.
                let (mut before, mut after) = (before.clone(), before);
                if let Some(k) = &keys {
                    // An account with several entries (points redeemed and earned): before
                    // its first, after its last.
                    let mut seen = [false; 3];
                    for e in &entries {
                        let (b, a) = (e.balance_after - e.amount, e.balance_after);
                        let id = e.account_id;
                        if id == k[0].account_id(actor.tenant_id) {
                            if !std::mem::replace(&mut seen[0], true) {
                                before.principal = Money::from_fen(b);
                            }
                            after.principal = Money::from_fen(a);
                        } else if id == k[1].account_id(actor.tenant_id) {
                            if !std::mem::replace(&mut seen[1], true) {
                                before.bonus = Money::from_fen(b);
                            }
                            after.bonus = Money::from_fen(a);
                        } else if id == k[2].account_id(actor.tenant_id) {
                            if !std::mem::replace(&mut seen[2], true) {
                                before.points = b;
                            }
                            after.points = a;
                        }
                    }
                }
                Ok(LedgerReceipt {
                    txn_id: txn.id,
                    kind: kind.into(),
                    card_id: txn.card_id,
                    before,
                    after,
                    details,
                    replayed: false,
                    created_at: txn.created_at,
                    checkout_number,
                })
            }
            Ok(PostOutcome::Replayed { txn }) => self.replay(actor, *txn, keys).await,
            Err(StoreError::Insufficient { .. }) => Err(AppError::Conflict {
                code: "insufficient_balance",
                field: Some("amount"),
                message: format!("insufficient balance: {} available", before.money()),
                existing: None,
            }),
            Err(StoreError::IdempotencyMismatch) => {
                Err(AppError::from(StoreError::IdempotencyMismatch))
            }
            Err(StoreError::AlreadyReversed) => Err(AppError::Conflict {
                code: "already_reversed",
                field: None,
                message: "this transaction has already been reversed".into(),
                existing: None,
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Posts a transaction of an organization's accounts (no card involved).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn post_corporate(
        &self,
        actor: &Actor,
        kind: &str,
        key: &str,
        hash: String,
        org: CustomerId,
        postings: Vec<Posting>,
        memo: String,
        details: serde_json::Value,
    ) -> Result<LedgerReceipt, AppError> {
        self.post(
            actor,
            kind,
            key,
            hash,
            None,
            Some(org),
            None,
            None,
            postings,
            vec![],
            None,
            None,
            memo,
            details,
        )
        .await
    }

    /// Rebuilds the receipt of a transaction from its entries (a retried request).
    pub(crate) async fn replay(
        &self,
        actor: &Actor,
        txn: TxnRecord,
        keys: Option<[AccountKey; 3]>,
    ) -> Result<LedgerReceipt, AppError> {
        let entries = self.storage.txn_entries(actor.tenant_id, txn.id).await?;
        let mut before = Balances::default();
        let mut after = Balances::default();
        if let Some(k) = &keys {
            // Before an account's first entry, after its last (entries come in seq order).
            let mut touched = [false; 3];
            for e in &entries {
                let (b, a) = (e.balance_after - e.amount, e.balance_after);
                if e.account_id == k[0].account_id(actor.tenant_id) {
                    if !std::mem::replace(&mut touched[0], true) {
                        before.principal = Money::from_fen(b);
                    }
                    after.principal = Money::from_fen(a);
                } else if e.account_id == k[1].account_id(actor.tenant_id) {
                    if !std::mem::replace(&mut touched[1], true) {
                        before.bonus = Money::from_fen(b);
                    }
                    after.bonus = Money::from_fen(a);
                } else if e.account_id == k[2].account_id(actor.tenant_id) {
                    if !std::mem::replace(&mut touched[2], true) {
                        before.points = b;
                    }
                    after.points = a;
                }
            }
            // Balances the transaction did not move are shown as they are now (not as 0).
            if touched.contains(&false) {
                let now = self.balances_of(actor, k).await?;
                if !touched[0] {
                    (before.principal, after.principal) = (now.principal, now.principal);
                }
                if !touched[1] {
                    (before.bonus, after.bonus) = (now.bonus, now.bonus);
                }
                if !touched[2] {
                    (before.points, after.points) = (now.points, now.points);
                }
            }
        }
        Ok(LedgerReceipt {
            txn_id: txn.id,
            kind: txn.kind,
            card_id: txn.card_id,
            before,
            after,
            details: txn.data,
            replayed: true,
            created_at: txn.created_at,
            checkout_number: None,
        })
    }

    /// Tops up a card: principal from the tender, bonus by the tenant's tiers, within
    /// the prepaid-card policy.
    pub async fn top_up(
        &self,
        actor: &Actor,
        card_id: CardId,
        req: &TopUp,
    ) -> Result<LedgerReceipt, AppError> {
        actor.require(Permission::TopUp)?;
        check_key(&req.idempotency_key)?;
        check_amount("amount", req.amount)?;
        let card = self.card(actor, card_id).await?;
        Self::usable(&card, true)?;
        let store = at_store(actor, "top-ups")?;
        let hash = request_hash("top_up", card.id, req);
        let settings = self.settings(actor).await?;
        let keys = self.money_keys(actor, &card).await?;
        let bonus = settings.top_up.bonus_for(req.amount);
        let balance = self.balances_of(actor, &keys).await?;
        if let Err(refusal) = stored_value::check_top_up(
            &settings.prepaid,
            card.customer_id.is_some(),
            balance.money(),
            req.amount,
            bonus,
        ) {
            // A retry answers with the original receipt, though the balance that top-up
            // raised would now refuse it. Looked up only here: otherwise the ledger's
            // unique key recognises a retry when it posts.
            if let Some(r) = self
                .replayed(actor, &req.idempotency_key, &hash, &card)
                .await?
            {
                return Ok(r);
            }
            return Err(AppError::Conflict {
                code: refusal.code(),
                field: Some("amount"),
                message: refusal.to_string(),
                existing: None,
            });
        }
        let mut postings = vec![
            Posting::new(AccountKey::tender(store, req.tender), req.amount.fen()),
            Posting::new(keys[0], req.amount.fen()),
        ];
        if bonus.fen() > 0 {
            postings.push(Posting::new(
                AccountKey::store(AccountKind::Discounts, store),
                bonus.fen(),
            ));
            postings.push(Posting::new(keys[1], bonus.fen()));
        }
        let memo = format!(
            "充值 / top-up {} + 赠送 / bonus {} ({})",
            req.amount,
            bonus,
            req.tender.as_str()
        );
        let details =
            serde_json::json!({"amount": req.amount, "bonus": bonus, "tender": req.tender});
        self.post(
            actor,
            "top_up",
            &req.idempotency_key,
            hash,
            Some(&card),
            None,
            Some(keys),
            Some(balance),
            postings,
            vec![],
            None,
            None,
            memo,
            details,
        )
        .await
    }

    /// Spends stored value, split between principal and bonus by the tenant's rule.
    pub async fn spend(
        &self,
        actor: &Actor,
        card_id: CardId,
        req: &Spend,
    ) -> Result<LedgerReceipt, AppError> {
        actor.require(Permission::Spend)?;
        check_key(&req.idempotency_key)?;
        check_amount("amount", req.amount)?;
        let card = self.card(actor, card_id).await?;
        Self::usable(&card, true)?;
        let store = at_store(actor, "spends")?;
        // A retried request must not ask for the PIN again (nor count a wrong one) nor
        // fail on the new balance: where the PIN is asked, the key is looked up first;
        // otherwise only when the balance refuses (below), and the ledger's unique key
        // recognises a retry when it posts.
        let hash = request_hash("spend", card.id, &(req.amount, &req.memo));
        let settings = self.settings(actor).await?;
        let asks_pin = settings.pin_required
            || req.pin.is_some()
            || req.pin_token.is_some()
            || card.pin_locked_until.is_some_and(|until| until > now());
        if asks_pin
            && let Some(r) = self
                .replayed(actor, &req.idempotency_key, &hash, &card)
                .await?
        {
            return Ok(r);
        }
        self.check_pin(actor, &card, req.pin.as_deref(), req.pin_token.as_deref())
            .await?;
        let keys = self.money_keys(actor, &card).await?;
        // Points, the visit and any upgrade post with the spend (one transaction).
        let customer = match card.customer_id {
            Some(c) => Some(self.customer(actor, c).await?),
            None => None,
        };
        let earn = self
            .plan_earn(
                actor,
                &settings,
                Some(&card),
                customer.as_ref(),
                card.kinds.points.then_some(keys[2]),
                store,
                req.amount,
                &[(patron_domain::points::PayMethod::StoredValue, req.amount)],
                "card_spend",
                now(),
            )
            .await?;
        // The split is computed from balances read before posting; if concurrent spends
        // moved them, the posting's floor check refuses and we recompute (the statement,
        // not this read, is what guarantees no overdraft).
        let mut attempt = 0;
        loop {
            attempt += 1;
            let bal = self.balances_of(actor, &keys).await?;
            let split = stored_value::split_spend(
                settings.split_rule,
                req.amount,
                bal.principal,
                bal.bonus,
            );
            let split = match split {
                Ok(split) => split,
                Err(SplitError::Insufficient { available, .. }) => {
                    if !asks_pin
                        && let Some(r) = self
                            .replayed(actor, &req.idempotency_key, &hash, &card)
                            .await?
                    {
                        return Ok(r);
                    }
                    return Err(AppError::Conflict {
                        code: "insufficient_balance",
                        field: Some("amount"),
                        message: format!("insufficient balance: {available} available"),
                        existing: None,
                    });
                }
                Err(SplitError::NotPositive) => {
                    return Err(ValidationErrors::single(
                        "amount",
                        "not_positive",
                        "the amount must be more than zero",
                    )
                    .into());
                }
            };
            let mut postings = vec![Posting::new(
                AccountKey::store(AccountKind::Revenue, store),
                req.amount.fen(),
            )];
            if split.principal.fen() > 0 {
                postings.push(Posting::new(keys[0], -split.principal.fen()));
            }
            if split.bonus.fen() > 0 {
                postings.push(Posting::new(keys[1], -split.bonus.fen()));
            }
            let memo = req.memo.clone().unwrap_or_else(|| {
                format!(
                    "储值消费 / stored-value spend {} (本金 {} + 赠送 {})",
                    req.amount, split.principal, split.bonus
                )
            });
            let details = serde_json::json!({"amount": req.amount, "principal": split.principal, "bonus": split.bonus, "rule": settings.split_rule, "earn": earn.summary});
            let mut specs: Vec<PostingSpec> = postings.into_iter().map(spec).collect();
            specs.extend(earn.specs.iter().cloned());
            let posted = self
                .post_specs(
                    actor,
                    "spend",
                    &req.idempotency_key,
                    hash.clone(),
                    Some(&card),
                    None,
                    Some(keys),
                    Some(bal.clone()),
                    specs,
                    earn.changes.clone(),
                    None,
                    None,
                    memo,
                    details,
                    None,
                )
                .await;
            match posted {
                Err(AppError::Conflict {
                    code: "insufficient_balance",
                    ..
                }) if attempt < 8 => continue,
                other => return other,
            }
        }
    }

    async fn replayed(
        &self,
        actor: &Actor,
        key: &str,
        hash: &str,
        card: &Card,
    ) -> Result<Option<LedgerReceipt>, AppError> {
        // Cheap check before the PIN: the store re-checks inside the posting transaction.
        let Some(txn) = self.storage.txn_by_key(actor.tenant_id, key).await? else {
            return Ok(None);
        };
        if txn.request_hash != hash {
            return Err(AppError::from(StoreError::IdempotencyMismatch));
        }
        let keys = self.money_keys(actor, card).await?;
        Ok(Some(self.replay(actor, txn, Some(keys)).await?))
    }

    /// Moves stored value from one card to another of the same holder or organization,
    /// principal and bonus in proportion.
    pub async fn transfer(
        &self,
        actor: &Actor,
        from: CardId,
        req: &Transfer,
    ) -> Result<LedgerReceipt, AppError> {
        actor.require(Permission::TransferBalances)?;
        check_key(&req.idempotency_key)?;
        check_amount("amount", req.amount)?;
        if from == req.to_card_id {
            return Err(ValidationErrors::single(
                "to_card_id",
                "same_card",
                "a card cannot pay itself",
            )
            .into());
        }
        let src = self.card(actor, from).await?;
        let dst = self.card(actor, req.to_card_id).await?;
        Self::usable(&src, true)?;
        Self::usable(&dst, true)?;
        if src.customer_id.is_none() || dst.customer_id.is_none() {
            return Err(ValidationErrors::single(
                "to_card_id",
                "anonymous_card",
                "transfers need registered cards",
            )
            .into());
        }
        let same_holder = src.customer_id == dst.customer_id;
        let same_org = {
            let a = self
                .customer(actor, src.customer_id.expect("checked"))
                .await?
                .profile
                .organization_id;
            let b = self
                .customer(actor, dst.customer_id.expect("checked"))
                .await?
                .profile
                .organization_id;
            a.is_some() && a == b
        };
        if !same_holder && !same_org {
            return Err(ValidationErrors::single(
                "to_card_id",
                "other_holder",
                "transfers go only between cards of one holder or one organization",
            )
            .into());
        }
        let hash = request_hash("transfer", src.id, &(req.to_card_id, req.amount));
        if let Some(r) = self
            .replayed(actor, &req.idempotency_key, &hash, &src)
            .await?
        {
            return Ok(r);
        }
        self.check_pin(actor, &src, req.pin.as_deref(), req.pin_token.as_deref())
            .await?;
        let settings = self.settings(actor).await?;
        let from_keys = self.money_keys(actor, &src).await?;
        let to_keys = self.money_keys(actor, &dst).await?;
        if from_keys[0] == to_keys[0] {
            return Err(ValidationErrors::single(
                "to_card_id",
                "same_pool",
                "both cards spend from the same pool",
            )
            .into());
        }
        let bal = self.balances_of(actor, &from_keys).await?;
        let split =
            stored_value::split_spend(settings.split_rule, req.amount, bal.principal, bal.bonus)
                .map_err(|_| AppError::Conflict {
                    code: "insufficient_balance",
                    field: Some("amount"),
                    message: format!("insufficient balance: {} available", bal.money()),
                    existing: None,
                })?;
        let mut postings = Vec::new();
        for (part, i) in [(split.principal, 0), (split.bonus, 1)] {
            if part.fen() > 0 {
                postings.push(Posting::new(from_keys[i], -part.fen()));
                postings.push(Posting::new(to_keys[i], part.fen()));
            }
        }
        let memo = format!("转账 / transfer {} → {}", req.amount, dst.number);
        let details = serde_json::json!({"amount": req.amount, "principal": split.principal, "bonus": split.bonus, "to_card_id": dst.id});
        self.post(
            actor,
            "transfer",
            &req.idempotency_key,
            hash,
            Some(&src),
            None,
            Some(from_keys),
            Some(bal.clone()),
            postings,
            vec![],
            None,
            None,
            memo,
            details,
        )
        .await
    }

    /// A manual correction of one balance, with a reason, against the store's discounts
    /// (money) or points granted (points).
    pub async fn adjust(
        &self,
        actor: &Actor,
        card_id: CardId,
        req: &Adjustment,
    ) -> Result<LedgerReceipt, AppError> {
        actor.require(Permission::AdjustBalances)?;
        check_key(&req.idempotency_key)?;
        let reason = required_reason(&req.reason)?;
        // |i64::MIN| does not exist: checked_abs, not abs.
        let too_large = req
            .amount
            .checked_abs()
            .is_none_or(|a| a > MAX_AMOUNT.fen());
        if req.amount == 0 || too_large {
            return Err(ValidationErrors::single(
                "amount",
                "invalid_amount",
                "a non-zero amount within limits",
            )
            .into());
        }
        let card = self.card(actor, card_id).await?;
        let store = at_store(actor, "adjustments")?;
        let keys = self.money_keys(actor, &card).await?;
        let (target, counter) = match req.balance.as_str() {
            "principal" => (keys[0], AccountKey::store(AccountKind::Discounts, store)),
            "bonus" => (keys[1], AccountKey::store(AccountKind::Discounts, store)),
            "points" => (
                keys[2],
                AccountKey::store(AccountKind::PointsGranted, store),
            ),
            other => {
                return Err(ValidationErrors::single(
                    "balance",
                    "invalid_choice",
                    format!("“{other}” is not one of: principal, bonus, points"),
                )
                .into());
            }
        };
        let mut specs = vec![
            spec(Posting::new(target, req.amount)),
            spec(Posting::new(counter, req.amount)),
        ];
        let memo = format!("调整 / adjustment {} {}: {reason}", req.balance, req.amount);
        if target.kind.unit() == patron_domain::ledger::Unit::Points {
            // Points added by hand expire like earned ones; each entry says why.
            let settings = self.settings(actor).await?;
            let today = settings.local_date(now());
            specs[0].note = Some(patron_store::ledger::EntryNote {
                rule: patron_domain::points::PointsRule::Adjustment
                    .as_str()
                    .into(),
                memo: format!("人工调整 {} 分：{reason}", req.amount),
                memo_en: format!("Manual adjustment of {} pts: {reason}", req.amount),
            });
            if req.amount > 0 {
                specs[0].lot = patron_store::ledger::LotRule::New {
                    earned_on: today,
                    expires_on: patron_domain::points::expires_on(&settings.points.expiry, today),
                };
            }
        }
        let details = serde_json::json!({"balance": req.balance, "amount": req.amount});
        // The approval (a password) is not part of what identifies the request.
        let hash = request_hash(
            "adjustment",
            card.id,
            &Adjustment {
                approval: None,
                ..req.clone()
            },
        );
        let (approver, recheck) = match self
            .adjustment_approver(actor, req.approval.as_ref(), req.amount)
            .await
        {
            Ok(x) => x,
            Err(e) => {
                // A retry of an adjustment that itself used up the day's limit answers
                // with the original, not with the limit it reached.
                if let Some(r) = self
                    .replayed(actor, &req.idempotency_key, &hash, &card)
                    .await?
                {
                    return Ok(r);
                }
                return Err(e);
            }
        };
        self.post_specs(
            actor,
            "adjustment",
            &req.idempotency_key,
            hash,
            Some(&card),
            None,
            Some(keys),
            None,
            specs,
            recheck.into_iter().collect(),
            Some(reason),
            None,
            memo,
            details,
            approver,
        )
        .await
        .map_err(|e| match e {
            // Another adjustment of the same staff member committed first and used up the
            // day's limit: the same answer as when the limit was seen used up beforehand.
            AppError::Conflict {
                field: Some("adjustment_day_limit"),
                ..
            } => AppError::ApprovalRequired(
                "this adjustment is beyond your daily limit (another adjustment came first): \
                 a manager's approval is needed"
                    .into(),
            ),
            other => other,
        })
    }

    /// Reverses a transaction exactly (every entry negated), by a named staff member with
    /// a reason. A transaction can be reversed once; a reversal cannot be reversed.
    pub async fn reverse(
        &self,
        actor: &Actor,
        txn_id: uuid::Uuid,
        req: &Reverse,
    ) -> Result<LedgerReceipt, AppError> {
        actor.require(Permission::ReverseOrRefund)?;
        check_key(&req.idempotency_key)?;
        let reason = required_reason(&req.reason)?;
        let original =
            self.storage
                .txn(actor.tenant_id, txn_id)
                .await?
                .ok_or(AppError::NotFound {
                    entity: "transaction",
                })?;
        if original.reverses.is_some() {
            return Err(AppError::Conflict {
                code: "reversal_of_reversal",
                field: None,
                message: "a reversal cannot be reversed; post a new transaction".into(),
                existing: None,
            });
        }
        if original.kind == "card_replace"
            || original.kind == "card_close"
            || original.kind == "customer_merge"
        {
            return Err(AppError::Conflict {
                code: "not_reversible",
                field: None,
                message: format!("a {} cannot be reversed", original.kind),
                existing: None,
            });
        }
        // A bill is undone through its own endpoints, which also restore its coupons and
        // keep its status and refunded amount; undoing only its money here would let the
        // bill be refunded a second time.
        if original.kind == "checkout" || original.kind == "checkout_refund" {
            return Err(AppError::Conflict {
                code: "not_reversible",
                field: None,
                message: format!(
                    "a {} is undone with POST /checkouts/{{id}}/reversal or /refunds",
                    original.kind
                ),
                existing: None,
            });
        }
        let entries = self.storage.txn_entries(actor.tenant_id, txn_id).await?;
        let accounts = self
            .storage
            .accounts(
                actor.tenant_id,
                &entries.iter().map(|e| e.account_id).collect::<Vec<_>>(),
            )
            .await?;
        let key_of = |id: uuid::Uuid| accounts.iter().find(|a| a.id == id).map(|a| a.key);
        let mut postings = Vec::new();
        for e in &entries {
            let key = key_of(e.account_id)
                .ok_or_else(|| AppError::Internal("entry without account".into()))?;
            postings.push(Posting::new(key, -e.amount));
        }
        let card = match original.card_id {
            Some(c) => Some(self.card(actor, c).await?),
            None => None,
        };
        let keys = match &card {
            Some(c) => Some(self.money_keys(actor, c).await?),
            None => None,
        };
        let memo = format!(
            "撤销 / reversal of {} ({}): {reason}",
            original.kind, original.memo
        );
        let details = serde_json::json!({"reverses": original.id, "original_kind": original.kind});
        let hash = request_hash("reversal", txn_id, &req.reason);
        // The spend's visit stops counting; gifts go back into stock. Points lots are put
        // back by the ledger itself (see `LotRule::Auto`).
        let mut changes = vec![LedgerChange::VisitsReversed { txn: original.id }];
        if original.kind == "points_gift"
            && let Some(gift) = original
                .data
                .get("gift_id")
                .and_then(|g| g.as_str())
                .and_then(|g| g.parse().ok())
        {
            let qty = original
                .data
                .get("quantity")
                .and_then(|q| q.as_u64())
                .unwrap_or(1);
            changes.extend((0..qty).map(|_| LedgerChange::GiftReturned { gift }));
        }
        let approver = self.reversal_approver(actor, req.approval.as_ref()).await?;
        self.post_specs(
            actor,
            "reversal",
            &req.idempotency_key,
            hash,
            card.as_ref(),
            None,
            keys,
            None,
            postings.into_iter().map(spec).collect(),
            changes,
            Some(reason),
            Some(original.id),
            memo,
            details,
            Some(approver),
        )
        .await
    }

    /// Freezes or unfreezes a card.
    pub async fn set_frozen(
        &self,
        actor: &Actor,
        id: CardId,
        frozen: bool,
    ) -> Result<Card, AppError> {
        actor.require(Permission::ManageCards)?;
        let card = self.card(actor, id).await?;
        let (from, to) = if frozen {
            (CardStatus::Active, CardStatus::Frozen)
        } else {
            (CardStatus::Frozen, CardStatus::Active)
        };
        if card.status != from {
            return Err(AppError::Conflict {
                code: "invalid_status",
                field: None,
                message: format!("the card is {}", card.status.as_str()),
                existing: None,
            });
        }
        self.storage
            .set_card_status(actor.tenant_id, id, to, now())
            .await?;
        // Card status is outside the ledger: the audit log records it.
        self.audit(patron_store::audit::AuditEntry {
            customer_id: card.customer_id,
            card_id: Some(id),
            before: Some(serde_json::json!({"status": from.as_str()})),
            after: Some(serde_json::json!({"status": to.as_str()})),
            ..self.audit_entry(
                actor,
                if frozen {
                    "card.freeze"
                } else {
                    "card.unfreeze"
                },
                "card",
                Some(id.0.to_string()),
                format!(
                    "{} / card {}: {}",
                    if frozen { "冻结" } else { "解冻" },
                    if frozen { "frozen" } else { "unfrozen" },
                    card.number
                ),
            )
        })
        .await?;
        if let Some(c) = card.customer_id {
            let kind = if frozen {
                "card_frozen"
            } else {
                "card_unfrozen"
            };
            self.timeline_event(
                actor,
                c,
                kind,
                format!("{kind}: {}", card.number),
                serde_json::json!({"card_id": id}),
            )
            .await?;
        }
        self.card(actor, id).await
    }

    /// Reports a card lost and issues its replacement: the balances move to the new card
    /// by ledger entries, in one transaction with the status change.
    pub async fn replace_lost(
        &self,
        actor: &Actor,
        id: CardId,
        idempotency_key: &str,
    ) -> Result<(CardView, LedgerReceipt), AppError> {
        actor.require(Permission::ManageCards)?;
        check_key(idempotency_key)?;
        let old = self.card(actor, id).await?;
        if !matches!(old.status, CardStatus::Active | CardStatus::Frozen) {
            return Err(AppError::Conflict {
                code: "invalid_status",
                field: None,
                message: format!("the card is {}", old.status.as_str()),
                existing: None,
            });
        }
        let mut digits = String::from("88");
        for _ in 0..14 {
            digits.push(char::from(b'0' + (rand::random::<u8>() % 10)));
        }
        let new = Card {
            id: CardId(new_uuid()),
            number: card_number::with_check_digit(&digits),
            status: CardStatus::Active,
            issued_at: now(),
            pin_failures: 0,
            pin_locked_until: None,
            replaced_by: None,
            ..old.clone()
        };
        let old_keys = [
            AccountKey::card(AccountKind::CardPrincipal, old.id),
            AccountKey::card(AccountKind::CardBonus, old.id),
            AccountKey::card(AccountKind::CardPoints, old.id),
        ];
        let new_keys = [
            AccountKey::card(AccountKind::CardPrincipal, new.id),
            AccountKey::card(AccountKind::CardBonus, new.id),
            AccountKey::card(AccountKind::CardPoints, new.id),
        ];
        let bal = self.balances_of(actor, &old_keys).await?;
        let mut postings = Vec::new();
        for (i, v) in [bal.principal.fen(), bal.bonus.fen(), bal.points]
            .into_iter()
            .enumerate()
        {
            if v != 0 {
                postings.push(Posting::new(old_keys[i], -v));
                postings.push(Posting::new(new_keys[i], v));
            }
        }
        let changes = vec![
            LedgerChange::Insert(new.clone()),
            LedgerChange::Status {
                card: old.id,
                status: CardStatus::Lost,
                replaced_by: Some(new.id),
            },
        ];
        let memo = format!(
            "挂失补卡 / lost card {} replaced by {}",
            old.number, new.number
        );
        let details = serde_json::json!({"old_card": old.id, "new_card": new.id, "new_number": new.number, "moved": bal});
        let hash = request_hash("card_replace", old.id, &idempotency_key);
        let receipt = if postings.is_empty() {
            // Nothing to move: still one transaction, with the card changes and no entries.
            self.post_changes_only(
                actor,
                "card_replace",
                idempotency_key,
                hash,
                &old,
                changes,
                memo,
                details,
            )
            .await?
        } else {
            self.post(
                actor,
                "card_replace",
                idempotency_key,
                hash,
                Some(&old),
                None,
                Some(new_keys),
                Some(Balances::default()),
                postings,
                changes,
                None,
                None,
                memo,
                details,
            )
            .await?
        };
        let view = self.card_view(actor, new.id).await?;
        Ok((view, receipt))
    }

    #[allow(clippy::too_many_arguments)]
    async fn post_changes_only(
        &self,
        actor: &Actor,
        kind: &str,
        key: &str,
        hash: String,
        card: &Card,
        changes: Vec<LedgerChange>,
        memo: String,
        details: serde_json::Value,
    ) -> Result<LedgerReceipt, AppError> {
        let txn = TxnRecord {
            tenant_id: actor.tenant_id,
            id: new_uuid(),
            kind: kind.into(),
            idempotency_key: key.into(),
            request_hash: hash,
            card_id: Some(card.id),
            customer_id: card.customer_id,
            store_id: actor.store_id,
            staff_id: Some(actor.staff_id),
            approver_id: None,
            reverses: None,
            reason: None,
            memo,
            data: details.clone(),
            created_at: now(),
        };
        match self.storage.post(&txn, &changes, &[], None).await? {
            PostOutcome::Posted { .. } => Ok(LedgerReceipt {
                txn_id: txn.id,
                kind: kind.into(),
                card_id: Some(card.id),
                before: Balances::default(),
                after: Balances::default(),
                details,
                replayed: false,
                created_at: txn.created_at,
                checkout_number: None,
            }),
            PostOutcome::Replayed { txn } => self.replay(actor, *txn, None).await,
        }
    }

    /// Closes a card: unused principal is paid back in the chosen tender; bonus and points
    /// are forfeited (they were never paid for).
    pub async fn close_card(
        &self,
        actor: &Actor,
        id: CardId,
        req: &CloseCard,
    ) -> Result<LedgerReceipt, AppError> {
        actor.require(Permission::ManageCards)?;
        check_key(&req.idempotency_key)?;
        let reason = required_reason(&req.reason)?;
        let card = self.card(actor, id).await?;
        if card.status == CardStatus::Closed {
            return Err(AppError::Conflict {
                code: "card_closed",
                field: None,
                message: "the card is already closed".into(),
                existing: None,
            });
        }
        if card.pool_to_org {
            return Err(AppError::Conflict { code: "pooled_card", field: None, message: "a pooled card holds no money of its own; close it after moving it out of the pool".into(), existing: None });
        }
        let store = at_store(actor, "refunds")?;
        let keys = self.money_keys(actor, &card).await?;
        let bal = self.balances_of(actor, &keys).await?;
        let mut postings = Vec::new();
        if bal.principal.fen() > 0 {
            postings.push(Posting::new(keys[0], -bal.principal.fen()));
            postings.push(Posting::new(
                AccountKey::tender(store, req.refund_tender),
                -bal.principal.fen(),
            ));
        }
        if bal.bonus.fen() > 0 {
            postings.push(Posting::new(keys[1], -bal.bonus.fen()));
            postings.push(Posting::new(
                AccountKey::store(AccountKind::Discounts, store),
                -bal.bonus.fen(),
            ));
        }
        if bal.points > 0 {
            postings.push(Posting::new(keys[2], -bal.points));
            postings.push(Posting::new(
                AccountKey::store(AccountKind::PointsGranted, store),
                -bal.points,
            ));
        }
        let changes = vec![LedgerChange::Status {
            card: card.id,
            status: CardStatus::Closed,
            replaced_by: None,
        }];
        let memo = format!(
            "退卡 / card closed, principal refunded {} ({}); bonus {} and {} points forfeited: {reason}",
            bal.principal,
            req.refund_tender.as_str(),
            bal.bonus,
            bal.points
        );
        let details = serde_json::json!({"refunded_principal": bal.principal, "forfeited_bonus": bal.bonus, "forfeited_points": bal.points, "tender": req.refund_tender});
        let hash = request_hash("card_close", card.id, req);
        if postings.is_empty() {
            return self
                .post_changes_only(
                    actor,
                    "card_close",
                    &req.idempotency_key,
                    hash,
                    &card,
                    changes,
                    memo,
                    details,
                )
                .await;
        }
        self.post(
            actor,
            "card_close",
            &req.idempotency_key,
            hash,
            Some(&card),
            None,
            Some(keys),
            Some(bal.clone()),
            postings,
            changes,
            Some(reason),
            None,
            memo,
            details,
        )
        .await
    }

    /// A card's statement: every entry of its accounts with running balances.
    pub async fn statement(
        &self,
        actor: &Actor,
        id: CardId,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Result<Statement, AppError> {
        actor.require(Permission::ViewCards)?;
        let view = self.card_view(actor, id).await?;
        let keys = self.money_keys(actor, &view.card).await?;
        let ids: Vec<uuid::Uuid> = keys.iter().map(|k| k.account_id(actor.tenant_id)).collect();
        let entries = self
            .storage
            .account_entries(actor.tenant_id, &ids, from, to)
            .await?;
        let mut txn_ids: Vec<uuid::Uuid> = entries.iter().map(|e| e.txn_id).collect();
        txn_ids.dedup();
        let txns = self.storage.txns(actor.tenant_id, &txn_ids).await?;
        let lines = entries
            .into_iter()
            .map(|e| {
                let which = if e.account_id == ids[0] {
                    "principal"
                } else if e.account_id == ids[1] {
                    "bonus"
                } else {
                    "points"
                };
                let txn = txns.iter().find(|t| t.id == e.txn_id);
                StatementLine {
                    at: e.created_at,
                    txn_id: e.txn_id,
                    kind: txn.map(|t| t.kind.clone()).unwrap_or_default(),
                    balance: which.into(),
                    amount: e.amount,
                    balance_after: e.balance_after,
                    memo: e.memo,
                    seq: e.seq,
                }
            })
            .collect();
        Ok(Statement { card: view, lines })
    }

    /// Outstanding stored value and points per store and in total, as of a time.
    pub async fn liability(
        &self,
        actor: &Actor,
        as_of: DateTime<Utc>,
    ) -> Result<Vec<patron_store::ledger::LiabilityRow>, AppError> {
        actor.require(Permission::ViewFinance)?;
        Ok(self.storage.liability(actor.tenant_id, as_of).await?)
    }
}

/// One line of a statement.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StatementLine {
    pub at: DateTime<Utc>,
    #[schema(value_type = String, format = Uuid)]
    pub txn_id: uuid::Uuid,
    pub kind: String,
    /// principal, bonus or points.
    pub balance: String,
    /// Fen (principal, bonus) or points.
    pub amount: i64,
    pub balance_after: i64,
    pub memo: String,
    pub seq: i64,
}

/// A card's statement.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Statement {
    pub card: CardView,
    pub lines: Vec<StatementLine>,
}

fn valid_pin(pin: &str) -> Result<String, AppError> {
    if pin.len() == 6 && pin.bytes().all(|b| b.is_ascii_digit()) {
        Ok(pin.to_string())
    } else {
        Err(ValidationErrors::single("pin", "invalid_pin", "a PIN is 6 digits").into())
    }
}

pub(crate) fn required_reason(reason: &str) -> Result<String, AppError> {
    let r = reason.trim();
    if r.is_empty() || r.chars().count() > 200 {
        return Err(ValidationErrors::single(
            "reason",
            "reason_required",
            "say why (1–200 characters)",
        )
        .into());
    }
    Ok(r.to_string())
}
