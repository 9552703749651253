//! The double-entry ledger's rules: accounts, postings, balance checks and the hash chain.
//!
//! Every change of money (unit: fen) or points is a transaction of postings. Each account
//! has a normal side; a posting's `amount` is the change of the account's balance on its
//! own side (positive = the balance grows). A transaction balances when, for each unit,
//! the debit-normal changes equal the credit-normal changes.
//!
//! Customer-side accounts (a card's principal, bonus and points; an organization's pooled
//! accounts; a charge account) are the merchant's liabilities itemised per holder, so they
//! are credit-normal. Merchant-side accounts: tenders received (debit-normal), revenue
//! (credit), discounts and bonus granted (debit), points granted (debit).

use crate::ids::{CardId, CustomerId, StoreId, TenantId};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use uuid::Uuid;

/// What an amount counts: money in fen, or points.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    Fen,
    Points,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Fen => "fen",
            Unit::Points => "points",
        }
    }
    pub fn parse(s: &str) -> Option<Unit> {
        match s {
            "fen" => Some(Unit::Fen),
            "points" => Some(Unit::Points),
            _ => None,
        }
    }
}

/// How money came in or went out at the till.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Tender {
    Cash,
    BankCard,
    Wechat,
    Alipay,
    /// Another external wallet or voucher platform.
    OtherWallet,
}

impl Tender {
    pub const ALL: [Tender; 5] = [
        Tender::Cash,
        Tender::BankCard,
        Tender::Wechat,
        Tender::Alipay,
        Tender::OtherWallet,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Tender::Cash => "cash",
            Tender::BankCard => "bank_card",
            Tender::Wechat => "wechat",
            Tender::Alipay => "alipay",
            Tender::OtherWallet => "other_wallet",
        }
    }
    pub fn parse(s: &str) -> Option<Tender> {
        Tender::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// The kinds of ledger account.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    // Customer side (credit-normal: what the merchant owes the holder).
    CardPrincipal,
    CardBonus,
    CardPoints,
    OrgPrincipal,
    OrgBonus,
    OrgPoints,
    /// A corporate charge account (挂账): goes negative down to minus its credit limit.
    Charge,
    // Merchant side, per store.
    /// Money received by a tender (debit-normal).
    Tender,
    /// Sales (credit-normal).
    Revenue,
    /// Bonus money granted and discounts given (debit-normal).
    Discounts,
    /// Points granted, net of points taken back (debit-normal).
    PointsGranted,
    /// Points customers redeemed: as cash, for gifts, for coupons (credit-normal).
    PointsRedeemed,
    /// Points that expired unused (credit-normal).
    PointsExpired,
}

/// Which side an account's balance grows on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Normal {
    Debit,
    Credit,
}

impl AccountKind {
    pub const ALL: [AccountKind; 13] = [
        AccountKind::CardPrincipal,
        AccountKind::CardBonus,
        AccountKind::CardPoints,
        AccountKind::OrgPrincipal,
        AccountKind::OrgBonus,
        AccountKind::OrgPoints,
        AccountKind::Charge,
        AccountKind::Tender,
        AccountKind::Revenue,
        AccountKind::Discounts,
        AccountKind::PointsGranted,
        AccountKind::PointsRedeemed,
        AccountKind::PointsExpired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::CardPrincipal => "card_principal",
            AccountKind::CardBonus => "card_bonus",
            AccountKind::CardPoints => "card_points",
            AccountKind::OrgPrincipal => "org_principal",
            AccountKind::OrgBonus => "org_bonus",
            AccountKind::OrgPoints => "org_points",
            AccountKind::Charge => "charge",
            AccountKind::Tender => "tender",
            AccountKind::Revenue => "revenue",
            AccountKind::Discounts => "discounts",
            AccountKind::PointsGranted => "points_granted",
            AccountKind::PointsRedeemed => "points_redeemed",
            AccountKind::PointsExpired => "points_expired",
        }
    }
    pub fn parse(s: &str) -> Option<AccountKind> {
        AccountKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
    pub fn normal(self) -> Normal {
        match self {
            AccountKind::Tender | AccountKind::Discounts | AccountKind::PointsGranted => {
                Normal::Debit
            }
            _ => Normal::Credit,
        }
    }
    pub fn unit(self) -> Unit {
        match self {
            AccountKind::CardPoints
            | AccountKind::OrgPoints
            | AccountKind::PointsGranted
            | AccountKind::PointsRedeemed
            | AccountKind::PointsExpired => Unit::Points,
            _ => Unit::Fen,
        }
    }
    pub fn customer_side(self) -> bool {
        !matches!(
            self,
            AccountKind::Tender
                | AccountKind::Revenue
                | AccountKind::Discounts
                | AccountKind::PointsGranted
                | AccountKind::PointsRedeemed
                | AccountKind::PointsExpired
        )
    }
}

/// Identifies one account: its kind and its owner (a card, a customer, or a store and
/// tender for merchant accounts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AccountKey {
    pub kind: AccountKind,
    pub card: Option<CardId>,
    pub customer: Option<CustomerId>,
    pub store: Option<StoreId>,
    pub tender: Option<Tender>,
}

impl AccountKey {
    pub fn card(kind: AccountKind, card: CardId) -> AccountKey {
        AccountKey {
            kind,
            card: Some(card),
            customer: None,
            store: None,
            tender: None,
        }
    }
    pub fn customer(kind: AccountKind, customer: CustomerId) -> AccountKey {
        AccountKey {
            kind,
            card: None,
            customer: Some(customer),
            store: None,
            tender: None,
        }
    }
    pub fn store(kind: AccountKind, store: StoreId) -> AccountKey {
        AccountKey {
            kind,
            card: None,
            customer: None,
            store: Some(store),
            tender: None,
        }
    }
    pub fn tender(store: StoreId, tender: Tender) -> AccountKey {
        AccountKey {
            kind: AccountKind::Tender,
            card: None,
            customer: None,
            store: Some(store),
            tender: Some(tender),
        }
    }

    /// A deterministic account id (UUID v5 of tenant and key), so postings name accounts
    /// without a look-up and merchant accounts can be created on first use.
    pub fn account_id(&self, tenant: TenantId) -> Uuid {
        let name = format!(
            "{}|{}|{}|{}|{}|{}",
            tenant.0,
            self.kind.as_str(),
            self.card.map(|c| c.0.to_string()).unwrap_or_default(),
            self.customer.map(|c| c.0.to_string()).unwrap_or_default(),
            self.store.map(|c| c.0.to_string()).unwrap_or_default(),
            self.tender.map(|t| t.as_str()).unwrap_or_default()
        );
        Uuid::new_v5(&LEDGER_NAMESPACE, name.as_bytes())
    }
}

const LEDGER_NAMESPACE: Uuid = Uuid::from_u128(0x5ad7_41e0_9b1c_4c53_a3f1_70a7_0e00_1ed9);

/// One line of a transaction: `amount` changes the account's balance on its normal side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Posting {
    pub account: AccountKey,
    pub amount: i64,
}

impl Posting {
    pub fn new(account: AccountKey, amount: i64) -> Posting {
        Posting { account, amount }
    }
    /// The posting's signed debit value: debits positive, credits negative.
    pub fn debit_value(&self) -> i128 {
        match self.account.kind.normal() {
            Normal::Debit => i128::from(self.amount),
            Normal::Credit => -i128::from(self.amount),
        }
    }
}

/// Why a set of postings is not a valid transaction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("a transaction needs at least two postings")]
    TooFewPostings,
    #[error("a posting of zero")]
    ZeroPosting,
    #[error("the {unit:?} postings do not balance: debits exceed credits by {excess}")]
    Unbalanced { unit: Unit, excess: i128 },
}

/// Checks that postings form a balanced transaction (per unit, debits = credits).
pub fn check_balanced(postings: &[Posting]) -> Result<(), LedgerError> {
    if postings.len() < 2 {
        return Err(LedgerError::TooFewPostings);
    }
    if postings.iter().any(|p| p.amount == 0) {
        return Err(LedgerError::ZeroPosting);
    }
    for unit in [Unit::Fen, Unit::Points] {
        let excess: i128 = postings
            .iter()
            .filter(|p| p.account.kind.unit() == unit)
            .map(Posting::debit_value)
            .sum();
        if excess != 0 {
            return Err(LedgerError::Unbalanced { unit, excess });
        }
    }
    Ok(())
}

/// The postings that undo `postings` exactly.
pub fn reversal(postings: &[Posting]) -> Vec<Posting> {
    postings
        .iter()
        .map(|p| Posting {
            account: p.account,
            amount: -p.amount,
        })
        .collect()
}

/// The fields of an entry that its hash covers, in chain order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryFields<'a> {
    pub tenant: TenantId,
    pub seq: i64,
    pub txn_id: Uuid,
    pub account_id: Uuid,
    pub amount: i64,
    pub balance_after: i64,
    pub staff: Option<Uuid>,
    pub store: Option<Uuid>,
    /// Microseconds since the Unix epoch.
    pub at_micros: i64,
    pub memo: &'a str,
    /// The rule and English explanation of a points entry; covered only when present, so
    /// entries written before they existed keep their hashes.
    pub rule: Option<&'a str>,
    pub memo_en: Option<&'a str>,
}

/// The hash of the chain's start, for the first entry of a tenant.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// SHA-256 (hex) of an entry's fields and the previous entry's hash: any edit of an entry
/// made behind the system's back breaks the chain from there on.
pub fn entry_hash(prev_hash: &str, e: &EntryFields<'_>) -> String {
    let mut h = Sha256::new();
    let opt = |u: Option<Uuid>| u.map(|x| x.to_string()).unwrap_or_default();
    let line = format!(
        "{prev_hash}|{}|{}|{}|{}|{}|{}|{}|{}|{}|",
        e.tenant.0,
        e.seq,
        e.txn_id,
        e.account_id,
        e.amount,
        e.balance_after,
        opt(e.staff),
        opt(e.store),
        e.at_micros
    );
    h.update(line.as_bytes());
    h.update(e.memo.as_bytes());
    if e.rule.is_some() || e.memo_en.is_some() {
        h.update(b"|");
        h.update(e.rule.unwrap_or_default().as_bytes());
        h.update(b"|");
        h.update(e.memo_en.unwrap_or_default().as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ids() -> (CardId, StoreId) {
        (CardId(Uuid::from_u128(1)), StoreId(Uuid::from_u128(2)))
    }

    #[test]
    fn top_up_and_spend_balance() {
        let (card, store) = ids();
        let top_up = [
            Posting::new(AccountKey::tender(store, Tender::Cash), 100_000),
            Posting::new(AccountKey::card(AccountKind::CardPrincipal, card), 100_000),
            Posting::new(AccountKey::store(AccountKind::Discounts, store), 15_000),
            Posting::new(AccountKey::card(AccountKind::CardBonus, card), 15_000),
        ];
        assert_eq!(check_balanced(&top_up), Ok(()));
        let spend = [
            Posting::new(AccountKey::card(AccountKind::CardPrincipal, card), -24_870),
            Posting::new(AccountKey::card(AccountKind::CardBonus, card), -3_730),
            Posting::new(AccountKey::store(AccountKind::Revenue, store), 28_600),
        ];
        assert_eq!(check_balanced(&spend), Ok(()));
        assert_eq!(check_balanced(&reversal(&spend)), Ok(()));
        let bad = [
            Posting::new(AccountKey::card(AccountKind::CardPrincipal, card), -100),
            Posting::new(AccountKey::store(AccountKind::Revenue, store), 99),
        ];
        assert!(matches!(
            check_balanced(&bad),
            Err(LedgerError::Unbalanced {
                unit: Unit::Fen,
                excess: 1
            })
        ));
        // Points and money never offset each other.
        let mixed = [
            Posting::new(AccountKey::card(AccountKind::CardPoints, card), 100),
            Posting::new(AccountKey::store(AccountKind::Revenue, store), -100),
        ];
        assert!(check_balanced(&mixed).is_err());
    }

    #[test]
    fn account_ids_are_stable_and_distinct() {
        let (card, store) = ids();
        let t = TenantId(Uuid::from_u128(9));
        let a = AccountKey::card(AccountKind::CardPrincipal, card);
        assert_eq!(a.account_id(t), a.account_id(t));
        assert_ne!(
            a.account_id(t),
            AccountKey::card(AccountKind::CardBonus, card).account_id(t)
        );
        assert_ne!(a.account_id(t), a.account_id(TenantId(Uuid::from_u128(10))));
        assert_ne!(
            AccountKey::tender(store, Tender::Cash).account_id(t),
            AccountKey::tender(store, Tender::Wechat).account_id(t)
        );
    }

    #[test]
    fn hash_chain_detects_edits() {
        let f = EntryFields {
            tenant: TenantId(Uuid::from_u128(1)),
            seq: 1,
            txn_id: Uuid::from_u128(2),
            account_id: Uuid::from_u128(3),
            amount: 100,
            balance_after: 100,
            staff: None,
            store: None,
            at_micros: 1,
            memo: "充值",
            rule: None,
            memo_en: None,
        };
        let h1 = entry_hash(GENESIS_HASH, &f);
        assert_eq!(h1.len(), 64);
        assert_ne!(
            h1,
            entry_hash(
                GENESIS_HASH,
                &EntryFields {
                    amount: 101,
                    ..f.clone()
                }
            )
        );
        assert_ne!(h1, entry_hash(&h1, &f), "the previous hash is covered");
        let noted = EntryFields {
            rule: Some("earn"),
            memo_en: Some("Spent"),
            ..f.clone()
        };
        assert_ne!(h1, entry_hash(GENESIS_HASH, &noted), "the rule is covered");
        assert_ne!(
            entry_hash(GENESIS_HASH, &noted),
            entry_hash(
                GENESIS_HASH,
                &EntryFields {
                    memo_en: Some("Spent!"),
                    ..noted.clone()
                }
            )
        );
    }

    proptest! {
        #[test]
        fn reversal_always_balances_and_cancels(amounts in proptest::collection::vec(1i64..1_000_000, 1..6)) {
            let (card, store) = ids();
            let mut postings: Vec<Posting> = amounts.iter().map(|a| Posting::new(AccountKey::card(AccountKind::CardPrincipal, card), *a)).collect();
            postings.push(Posting::new(AccountKey::tender(store, Tender::Cash), amounts.iter().sum()));
            prop_assert_eq!(check_balanced(&postings), Ok(()));
            let rev = reversal(&postings);
            prop_assert_eq!(check_balanced(&rev), Ok(()));
            let net: i128 = postings.iter().chain(rev.iter()).map(|p| i128::from(p.amount)).sum();
            prop_assert_eq!(net, 0);
        }
    }
}
