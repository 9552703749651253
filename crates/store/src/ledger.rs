//! The ledger's storage: the only code that writes balances.
//!
//! [`LedgerStore::post`] is one database transaction that (1) records the business
//! transaction under its idempotency key, (2) applies any card changes and appends the
//! customer's timeline event, (3) changes each
//! account's cached balance with a single statement that refuses to go below the
//! account's floor, (4) appends one entry per account with its balance after and a hash
//! chaining it to the tenant's previous entry. Either all of it happens or none.

use crate::Result;
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use patron_domain::card::{Card, CardStatus};
use patron_domain::ids::{CardId, CustomerId, StaffId, StoreId, TenantId};
use patron_domain::ledger::{AccountKey, Unit};
use serde::Serialize;
use uuid::Uuid;

/// A business transaction (top-up, spend, refund, transfer, adjustment, expiry, reversal...).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TxnRecord {
    #[serde(skip)]
    pub tenant_id: TenantId,
    pub id: Uuid,
    pub kind: String,
    #[serde(skip)]
    pub idempotency_key: String,
    /// Hash of the request that created it: the same key with another request is refused.
    #[serde(skip)]
    pub request_hash: String,
    pub card_id: Option<CardId>,
    pub customer_id: Option<CustomerId>,
    pub store_id: Option<StoreId>,
    pub staff_id: Option<StaffId>,
    pub approver_id: Option<StaffId>,
    /// The transaction this one reverses.
    pub reverses: Option<Uuid>,
    pub reason: Option<String>,
    pub memo: String,
    /// Kind-specific details (amounts before/after, split, bonus tier...).
    pub data: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// One posting to write: the account, its change, and the floor to give the account if
/// this posting creates it.
#[derive(Debug, Clone, PartialEq)]
pub struct PostingSpec {
    pub key: AccountKey,
    pub amount: i64,
    pub floor: Option<i64>,
    /// The rule and explanation of this entry (points entries carry one each). A posting
    /// with a note gets an entry of its own instead of being merged with others of its
    /// account.
    pub note: Option<EntryNote>,
    /// How a customer-side points posting changes the account's lots.
    pub lot: LotRule,
}

impl PostingSpec {
    pub fn new(key: AccountKey, amount: i64, floor: Option<i64>) -> PostingSpec {
        PostingSpec {
            key,
            amount,
            floor,
            note: None,
            lot: LotRule::Auto,
        }
    }
}

/// Why an entry exists, for people: the rule's code and the explanation in both languages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EntryNote {
    pub rule: String,
    pub memo: String,
    pub memo_en: String,
}

/// How a points posting on a customer-side account changes the account's lots.
///
/// `Auto`: a withdrawal takes from the soonest-expiring lots (in a reversal, first from
/// the lots the reversed transaction created); a deposit puts back what the reversed
/// transaction took (a reversal) or carries over, with their expiry dates, the lots this
/// transaction took from other accounts (a transfer or a card replacement). A deposit
/// with neither source is refused: new points must say when they expire (`New`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LotRule {
    #[default]
    Auto,
    /// New points: a new lot earned on that local day, valid through `expires_on`.
    New {
        earned_on: NaiveDate,
        expires_on: Option<NaiveDate>,
    },
    /// Expiry: takes only lots that expired before this local day; refused
    /// (`StoreError::Conflict { what: "points_lots_changed" }`) if any other would be taken.
    ExpireBefore(NaiveDate),
}

/// A change made in the same database transaction as the postings.
#[derive(Debug, Clone, PartialEq)]
pub enum LedgerChange {
    Insert(Card),
    Status {
        card: CardId,
        status: CardStatus,
        replaced_by: Option<CardId>,
    },
    /// A spend of a known customer (growth value, visit counts).
    Visit(crate::loyalty::VisitRecord),
    /// Marks the visits of a reversed transaction as reversed.
    VisitsReversed {
        txn: Uuid,
    },
    /// A level change: sets the customer's level, records it and puts it on the timeline.
    Level(crate::loyalty::LevelChangeRecord),
    /// A checkout's bill (the row's id is the posting transaction's id).
    Checkout(Box<CheckoutRecord>),
    /// A checkout's status after a reversal or refund; `refunded` is added to what was refunded.
    CheckoutStatus {
        checkout: Uuid,
        status: String,
        refunded: i64,
        /// Quantities refunded now, by line number.
        lines: Vec<(i32, i32)>,
    },
    /// A partial refund: the visit's growth value goes down by `amount`.
    VisitRefund {
        txn: Uuid,
        amount: i64,
    },
    /// Puts a redeemed coupon back (a reversed checkout): usable again.
    CouponRestore {
        coupon: Uuid,
    },
    /// Voids a coupon that must still be unused (one a reversed checkout issued); refused
    /// with `Conflict { what: "coupon_used" }` if it was used meanwhile.
    CouponVoid {
        coupon: Uuid,
        reason: String,
    },
    /// Takes one gift from stock (refused when none is left).
    GiftTaken {
        gift: Uuid,
    },
    /// Puts one gift back into stock (a reversed gift redemption).
    GiftReturned {
        gift: Uuid,
    },
    /// Issues a coupon (checked against its per-customer limit; `coupon_issued` on the
    /// owner's timeline): a spend-triggered coupon, a points exchange.
    CouponIssue(patron_domain::coupon::Coupon),
    /// A staff member's daily adjustment limit, checked under the tenant's chain head (which
    /// serialises the tenant's posts, so two adjustments at once cannot both pass): their
    /// self-approved adjustments since `since` plus `amount` (absolute fen or points) must
    /// stay within `limit`, else `Conflict { what: "adjustment_day_limit" }`.
    AdjustmentWithinLimit {
        staff: StaffId,
        since: DateTime<Utc>,
        amount: i64,
        limit: i64,
    },
    /// Redeems an issued coupon at checkout, with the transaction's time, store and staff.
    /// A coupon no longer `issued` (a lost race) fails the post with
    /// `Conflict { what: "coupon_already_redeemed" }` (or `coupon_voided`, `coupon_expired`).
    CouponRedeem {
        coupon: Uuid,
        customer: Option<CustomerId>,
        store: Option<StoreId>,
        staff: Option<StaffId>,
        /// The coupon and its template's name as the caller read them (a checkout
        /// prices with both). The post then checks that the coupon is still issued to
        /// the same owner from the same template instead of reading it back: one round
        /// trip less while the ledger's writer is held. A coupon changed meanwhile
        /// (another owner after a merge) fails with `coupon_changed`.
        seen: Option<Box<CouponSeen>>,
    },
}

/// What a caller read of a coupon before redeeming it in a post (see
/// [`LedgerChange::CouponRedeem`]).
#[derive(Debug, Clone, PartialEq)]
pub struct CouponSeen {
    pub coupon: patron_domain::coupon::Coupon,
    pub template_name: String,
}

/// A checkout's bill as priced and paid (see the `checkouts` table).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckoutRecord {
    #[serde(skip)]
    pub tenant_id: TenantId,
    /// Set from the posting transaction.
    pub id: Uuid,
    pub store_id: StoreId,
    /// Used in the receipt number: {store_code}-{yyyymmdd}-{n}.
    pub store_code: String,
    pub staff_id: StaffId,
    pub customer_id: Option<CustomerId>,
    pub card_id: Option<CardId>,
    /// Filled in by the store: the next number of the store's business day.
    pub number: String,
    pub business_date: NaiveDate,
    pub created_at: DateTime<Utc>,
    pub party_size: Option<i32>,
    pub table_label: Option<String>,
    pub gross: i64,
    pub discount: i64,
    pub amount_due: i64,
    pub breakdown: serde_json::Value,
    pub tenders: serde_json::Value,
    /// What the receipt shows beyond the ledger (names, level, coupons issued...).
    pub receipt: serde_json::Value,
    pub status: String,
    pub refunded: i64,
    pub lines: Vec<CheckoutLineRecord>,
}

/// One line of a checkout's bill, for analytics.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckoutLineRecord {
    pub line_no: i32,
    pub item_id: Option<patron_domain::ids::MenuItemId>,
    pub name: String,
    pub quantity: i32,
    pub unit_price: i64,
    pub gross: i64,
    pub net: i64,
    /// Refunded so far (partial refunds by line).
    pub refunded_quantity: i32,
}

/// A stored ledger entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EntryRecord {
    #[serde(skip)]
    pub tenant_id: TenantId,
    pub seq: i64,
    pub txn_id: Uuid,
    pub account_id: Uuid,
    pub unit: Unit,
    pub amount: i64,
    pub balance_after: i64,
    pub staff_id: Option<StaffId>,
    pub store_id: Option<StoreId>,
    pub created_at: DateTime<Utc>,
    pub memo: String,
    /// The rule that produced the entry, when it names one (points entries).
    pub rule: Option<String>,
    pub memo_en: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

/// A ledger account with its cached balance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccountRecord {
    #[serde(skip)]
    pub tenant_id: TenantId,
    pub id: Uuid,
    pub key: AccountKey,
    pub balance: i64,
    pub floor: Option<i64>,
    pub created_at: DateTime<Utc>,
}

/// What a post did.
#[derive(Debug, Clone, PartialEq)]
pub enum PostOutcome {
    Posted {
        entries: Vec<EntryRecord>,
        /// The receipt number a bill took (`LedgerChange::Checkout`), so the till's
        /// receipt needs no second read.
        checkout_number: Option<String>,
    },
    /// The idempotency key was seen before with the same request: nothing was written.
    Replayed { txn: Box<TxnRecord> },
}

/// Result of one wrong or right PIN.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PinState {
    pub failures: i32,
    pub locked_until: Option<DateTime<Utc>>,
}

/// One PIN attempt on a card, kept for the card's history.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PinAttempt {
    pub at: DateTime<Utc>,
    pub success: bool,
    pub staff_id: Option<StaffId>,
    pub store_id: Option<StoreId>,
}

/// Liability of one kind of customer-side account at one store.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct LiabilityRow {
    pub store_id: Option<StoreId>,
    pub kind: String,
    pub amount: i64,
}

#[async_trait]
#[allow(clippy::too_many_arguments)] // record_pin_attempt: one atomic statement's inputs
pub trait LedgerStore: Send + Sync {
    /// Posts committed since the store opened, and the commits they took: SQLite's
    /// posts share a commit when several wait for its one writer (writer.rs).
    /// `None` where the database groups commits itself (PostgreSQL).
    fn commit_sharing(&self) -> Option<(u64, u64)> {
        None
    }

    /// Posts sent in one batch from the writer's predictions since the store opened,
    /// and the predictions the database found wrong (those posts were made again the
    /// ordinary way; predictions.rs). `None` where there are none (PostgreSQL).
    fn guessing(&self) -> Option<(u64, u64)> {
        None
    }

    /// Posts a transaction (see the module doc). Errors: `Insufficient` when a balance
    /// would fall below its floor, `IdempotencyMismatch` when the key was used for another
    /// request, `AlreadyReversed`.
    async fn post(
        &self,
        txn: &TxnRecord,
        changes: &[LedgerChange],
        postings: &[PostingSpec],
        timeline: Option<&patron_domain::timeline::TimelineEvent>,
    ) -> Result<PostOutcome>;
    async fn txn(&self, tenant: TenantId, id: Uuid) -> Result<Option<TxnRecord>>;
    /// A checkout with its lines.
    async fn checkout(&self, tenant: TenantId, id: Uuid) -> Result<Option<CheckoutRecord>>;
    /// Checkouts whose bill used a coupon code (to find what a coupon was worth).
    async fn checkout_with_coupon(
        &self,
        tenant: TenantId,
        code: &str,
    ) -> Result<Option<CheckoutRecord>>;
    /// A store's checkouts of one business day, newest first, without their lines
    /// (the till's list of today's bills; `limit` and `offset` page it).
    async fn checkouts_of_day(
        &self,
        tenant: TenantId,
        store: StoreId,
        day: NaiveDate,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<CheckoutRecord>>;
    async fn txn_by_key(
        &self,
        tenant: TenantId,
        idempotency_key: &str,
    ) -> Result<Option<TxnRecord>>;
    async fn txn_entries(&self, tenant: TenantId, txn: Uuid) -> Result<Vec<EntryRecord>>;
    /// The transaction that reversed `txn`, if any.
    async fn reversal_of(&self, tenant: TenantId, txn: Uuid) -> Result<Option<TxnRecord>>;
    async fn card(&self, tenant: TenantId, id: CardId) -> Result<Option<Card>>;
    async fn card_by_number(&self, tenant: TenantId, number: &str) -> Result<Option<Card>>;
    async fn set_card_status(
        &self,
        tenant: TenantId,
        id: CardId,
        status: CardStatus,
        at: DateTime<Utc>,
    ) -> Result<()>;
    async fn set_card_pin(&self, tenant: TenantId, id: CardId, pin_hash: &str) -> Result<()>;
    /// Records a PIN attempt; `max_failures` wrong ones in a row lock the card until `lock_until`.
    async fn record_pin_attempt(
        &self,
        tenant: TenantId,
        card: CardId,
        success: bool,
        at: DateTime<Utc>,
        staff: Option<StaffId>,
        store: Option<StoreId>,
        max_failures: i32,
        lock_until: DateTime<Utc>,
    ) -> Result<PinState>;
    /// A card's PIN attempts, newest first.
    async fn pin_attempts(
        &self,
        tenant: TenantId,
        card: CardId,
        limit: i64,
    ) -> Result<Vec<PinAttempt>>;
    async fn accounts(&self, tenant: TenantId, ids: &[Uuid]) -> Result<Vec<AccountRecord>>;
    /// Sets an account's floor (a charge account's credit limit), creating the account at
    /// zero if it does not exist. A floor above the current balance is refused
    /// (`Insufficient`). The balance itself is not touched.
    async fn set_account_floor(
        &self,
        tenant: TenantId,
        key: &AccountKey,
        floor: Option<i64>,
        at: DateTime<Utc>,
    ) -> Result<()>;
    /// Entries of the given accounts, oldest first, within `[from, to)`.
    async fn account_entries(
        &self,
        tenant: TenantId,
        accounts: &[Uuid],
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Result<Vec<EntryRecord>>;
    /// Transactions by id (for statements).
    async fn txns(&self, tenant: TenantId, ids: &[Uuid]) -> Result<Vec<TxnRecord>>;
    /// Outstanding customer-side balances per store and account kind, as of `as_of`.
    async fn liability(&self, tenant: TenantId, as_of: DateTime<Utc>) -> Result<Vec<LiabilityRow>>;
    /// Tenant settings as JSON (absent = defaults).
    async fn settings(&self, tenant: TenantId) -> Result<Option<serde_json::Value>>;
    async fn save_settings(
        &self,
        tenant: TenantId,
        settings: &serde_json::Value,
        at: DateTime<Utc>,
    ) -> Result<()>;

    // For `patron verify`: everything, in pages.
    async fn all_accounts(&self, tenant: TenantId) -> Result<Vec<AccountRecord>>;
    async fn entries_after(
        &self,
        tenant: TenantId,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<EntryRecord>>;
    async fn txn_ids_after(
        &self,
        tenant: TenantId,
        after: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<Uuid>>;
    async fn ledger_head(&self, tenant: TenantId) -> Result<Option<(i64, String)>>;
}
