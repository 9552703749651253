//! Daily settlement (日结), shift handover (交班), closing a business day, and the
//! inter-store settlement of a chain (跨店结算).
//!
//! A settlement report is built from aggregates, never by loading a day's entries: the
//! ledger's entries of the store (and, for a shift, of its cashier) in the time range,
//! summed per account kind, tender and transaction kind in one query; the checkouts rung
//! up (their discounts by kind read from each bill's breakdown); the visits; the coupons.
//! Business days follow the tenant's settings (`day_starts_at_minutes`, default 04:00).
//!
//! Closing a day snapshots its report and locks the ledger for the day's instants: a
//! posting of the store into it is refused with `day_closed` (409). Only the owner can
//! reopen it. The close and the ledger's posts at the store serialise on the store's day
//! lock (posts take it shared, the close exclusively; SQLite's single writer runs them in
//! turn): a close waits for the posts in flight, so the report taken again right after
//! the close commits is final, and nothing posts into the day after it.
//!
//! The inter-store statement attributes stored-value principal to the store that sold it,
//! oldest first (see `patron_domain::settlement`): A owes B the principal sold at A and
//! spent (or refunded) at B.

use crate::cards::at_store;
use crate::{Actor, App, AppError, new_uuid, now};
use chrono::{DateTime, NaiveDate, Utc};
use patron_domain::ids::{StaffId, StoreId};
use patron_domain::ledger::{AccountKind, Normal, Tender, Unit};
use patron_domain::money::Money;
use patron_domain::org::{Role, Store};
use patron_domain::permissions::Permission;
use patron_domain::settlement::{
    self as rules, FlowKind, MoveKind, NetDebt, PrincipalLots, PrincipalMove,
};
use patron_domain::{FieldError, ValidationErrors};
use patron_store::StoreError;
use patron_store::settlement::{BusinessDayRecord, Scope, ShiftClose, ShiftRecord};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use utoipa::ToSchema;
use uuid::Uuid;

/// Transactions listed one by one in a report: corrections and refunds.
const CORRECTION_KINDS: &[&str] = &["reversal", "checkout_refund", "adjustment", "card_close"];
/// Transactions whose principal legs can count between stores.
const INTER_STORE_KINDS: &[&str] = &[
    "spend",
    "checkout",
    "card_close",
    "reversal",
    "checkout_refund",
];
/// The longest period of an inter-store statement.
const MAX_PERIOD_DAYS: i64 = 366;

/// Money moved through one tender, by kind of transaction (`reversal:<kind>` for
/// reversals). Positive is money in.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct TenderTotal {
    pub tender: String,
    pub by_kind: BTreeMap<String, Money>,
    pub net: Money,
}

/// Top-ups (stored value sold).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct TopUpFigures {
    pub count: i64,
    pub principal: Money,
    pub bonus: Money,
    /// The principal per tender it was paid with.
    pub by_tender: BTreeMap<String, Money>,
    /// Taken back by reversals of top-ups.
    pub reversed_principal: Money,
    pub reversed_bonus: Money,
}

/// Stored value consumed (spends and checkouts paid from a card or pool).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct ConsumptionFigures {
    pub count: i64,
    pub principal: Money,
    pub bonus: Money,
    /// principal + bonus.
    pub total: Money,
    /// Put back onto cards by reversals and refunds.
    pub returned_principal: Money,
    pub returned_bonus: Money,
    /// Consumed minus put back.
    pub net_principal: Money,
    pub net_bonus: Money,
}

/// Cards closed with their unused principal paid back.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct CardRefundFigures {
    pub count: i64,
    pub principal_refunded: Money,
    pub bonus_forfeited: Money,
}

/// One kind of discount given on checkouts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct DiscountLine {
    /// member_price, level_discount, payment_rule, coupon, points, rounding.
    pub kind: String,
    pub amount: Money,
    /// Bills it was given on.
    pub bills: i64,
}

/// Checkouts rung up in the range (as rung up: reversals and refunds are listed under
/// corrections and in the ledger figures).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct CheckoutFigures {
    pub count: i64,
    pub gross: Money,
    pub discount: Money,
    pub amount_due: Money,
    pub discounts: Vec<DiscountLine>,
    /// Of these bills, reversed or refunded since (any day).
    pub reversed: i64,
    pub refunded: Money,
}

/// Coupons redeemed at and issued by the store.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct CouponFigures {
    pub redeemed: i64,
    pub issued: i64,
    /// What coupons took off checkouts.
    pub checkout_discount: Money,
}

/// Points moved at the store.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct PointsFigures {
    /// Granted by earning rules and additions (net of points taken back by reversals,
    /// closures and negative adjustments, which are in `taken_back`).
    pub issued: i64,
    pub taken_back: i64,
    /// Redeemed as cash, for gifts or for coupons (net of reversed redemptions).
    pub redeemed: i64,
    pub expired: i64,
    /// Points granted (+) and redeemed (−) per kind of transaction.
    pub by_kind: BTreeMap<String, i64>,
}

/// Bills recorded at the till but paid outside Patron (they earn points; the money is
/// in the POS's own drawer report).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct PurchaseFigures {
    pub count: i64,
    pub amount: Money,
}

/// Corporate charge accounts (挂账).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct ChargeFigures {
    /// Bills charged (net of reversals).
    pub charged: Money,
    /// Repayments received.
    pub repaid: Money,
}

/// A reversal, refund, adjustment or card closure, with who did and approved it and why.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct CorrectionLine {
    #[schema(value_type = String, format = Uuid)]
    pub txn_id: Uuid,
    pub kind: String,
    /// The kind of the reversed transaction, for reversals.
    pub original_kind: Option<String>,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub reverses: Option<Uuid>,
    pub at: Option<DateTime<Utc>>,
    pub staff_id: Option<StaffId>,
    pub staff_name: Option<String>,
    pub approver_id: Option<StaffId>,
    pub approver_name: Option<String>,
    pub reason: Option<String>,
    pub memo: String,
    /// Money through the tenders (negative: paid out).
    pub tender_amount: Money,
    /// Change of stored value, principal and bonus (positive: put back on the card).
    pub stored_value_amount: Money,
}

/// Counts of the range.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct Counts {
    pub checkouts: i64,
    pub top_ups: i64,
    pub spends: i64,
    pub purchases: i64,
    /// Visits (bills) of known and anonymous customers, not reversed.
    pub visits: i64,
    /// Distinct known customers.
    pub customers_served: i64,
    pub anonymous_visits: i64,
    pub corrections: i64,
}

/// The drawer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct CashFigures {
    /// Floats of the shifts opened in the range.
    pub opening_float: Money,
    pub cash_in: Money,
    /// Cash paid out (refunds, reversals), positive.
    pub cash_out: Money,
    /// opening float + cash in − cash out.
    pub expected: Money,
    /// Counted at handover (shifts; for a day, the sum over its closed shifts).
    pub counted: Option<Money>,
    /// counted − expected.
    pub variance: Option<Money>,
}

/// One group of the ledger's aggregate: the report's raw material, for checking.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct LedgerLine {
    pub account_kind: String,
    pub tender: Option<String>,
    /// The transaction kind (`reversal:<kind>` for reversals).
    pub kind: String,
    pub amount: i64,
    pub transactions: i64,
}

/// The store's business day and whether it is closed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct DayStatus {
    /// open, closed.
    pub status: String,
    pub closed_by: Option<StaffId>,
    pub closed_by_name: Option<String>,
    pub closed_at: Option<DateTime<Utc>>,
    pub note: Option<String>,
    pub reopened_by: Option<StaffId>,
    pub reopened_at: Option<DateTime<Utc>>,
    pub reopen_reason: Option<String>,
    /// How many times it has been closed.
    pub closings: i64,
}

/// A cashier's shift.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct Shift {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    pub store_id: Option<StoreId>,
    pub staff_id: Option<StaffId>,
    pub staff_name: Option<String>,
    pub opened_at: Option<DateTime<Utc>>,
    pub opening_float: Money,
    pub closed_at: Option<DateTime<Utc>>,
    pub closed_by: Option<StaffId>,
    pub counted_cash: Option<Money>,
    pub expected_cash: Option<Money>,
    /// counted − expected: negative is a shortage.
    pub variance: Option<Money>,
    pub note: Option<String>,
    pub handed_to: Option<StaffId>,
}

/// A settlement report: a store's business day, or one cashier's shift.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct Settlement {
    pub store_id: Option<StoreId>,
    pub store_code: String,
    pub store_name: String,
    pub business_date: Option<NaiveDate>,
    /// The range covered: `[from, to)`.
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// A shift's cashier.
    pub staff_id: Option<StaffId>,
    pub generated_at: Option<DateTime<Utc>>,
    /// live (computed now) or snapshot (as signed when the day was closed).
    pub source: String,
    /// Money in and out by tender.
    pub tenders: Vec<TenderTotal>,
    /// Σ tender nets.
    pub money_in: Money,
    /// Sales recognised (revenue account) by kind of transaction.
    pub revenue: BTreeMap<String, Money>,
    pub revenue_total: Money,
    pub top_ups: TopUpFigures,
    pub stored_value: ConsumptionFigures,
    pub card_refunds: CardRefundFigures,
    pub charge: ChargeFigures,
    /// Bonus money granted with top-ups (a discount given up front).
    pub bonus_granted: Money,
    pub checkouts: CheckoutFigures,
    pub coupons: CouponFigures,
    pub points: PointsFigures,
    pub purchases: PurchaseFigures,
    /// Manual balance corrections: principal and bonus (fen), points.
    pub adjustments: BTreeMap<String, i64>,
    pub corrections: Vec<CorrectionLine>,
    pub counts: Counts,
    pub cash: CashFigures,
    /// Debits equal credits over the money accounts of the range.
    pub balanced: bool,
    pub ledger: Vec<LedgerLine>,
    /// The business day (daily reports).
    pub day: Option<DayStatus>,
    /// The day's shifts (daily reports) or the shift (shift reports).
    pub shifts: Vec<Shift>,
}

/// Open a shift.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenShift {
    /// Cash in the drawer at the start, in fen.
    pub opening_float: Money,
    pub note: Option<String>,
}

/// Close a shift: the counted cash and, optionally, who takes over the drawer.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseShift {
    /// Cash counted in the drawer, in fen.
    pub counted_cash: Money,
    pub note: Option<String>,
    pub handed_to: Option<StaffId>,
}

/// A closed shift with its report.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ShiftClosed {
    pub shift: Shift,
    pub report: Settlement,
}

/// Close a business day.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct CloseDay {
    /// The signature and remarks of who closes it.
    pub note: Option<String>,
}

/// Reopen a closed business day (owner only).
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReopenDay {
    pub reason: String,
}

/// A store as named in a statement.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = StatementStoreRef)]
pub struct StoreRef {
    /// None: principal sold or used without a store (or before the ledger's history).
    pub store_id: Option<StoreId>,
    pub code: Option<String>,
    pub name: Option<String>,
}

/// Principal sold at one store and used at another.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct InterStoreFlow {
    /// The store that sold the principal (holds the cash): it owes.
    pub sold_at: StoreRef,
    /// The store that served it (or paid it back): it is owed.
    pub used_at: StoreRef,
    pub kind: FlowKind,
    pub amount: Money,
}

/// What one store owes another after netting both directions.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct InterStoreDebt {
    pub payer: StoreRef,
    pub payee: StoreRef,
    pub amount: Money,
}

/// One store's position in the period.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct StorePosition {
    pub store: StoreRef,
    /// Principal consumed or refunded at this store (net of reversals), wherever sold.
    pub principal_used_here: Money,
    /// Of it, sold at other stores: owed to this store.
    pub owed_to_store: Money,
    /// Principal this store sold that was used at other stores: owed by this store.
    pub owed_by_store: Money,
    /// owed to − owed by: positive, the store receives; negative, it pays.
    pub net: Money,
}

/// The inter-store settlement statement of a period.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct InterStoreStatement {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// How principal is attributed: fifo_by_selling_store.
    pub method: String,
    pub stores: Vec<StorePosition>,
    /// Gross flows between different stores.
    pub flows: Vec<InterStoreFlow>,
    /// Netted per pair of stores: what to pay.
    pub settlements: Vec<InterStoreDebt>,
    /// Principal used where it was sold (no debt).
    pub local_total: Money,
    /// Principal used at another store than the one that sold it.
    pub cross_store_total: Money,
    /// Σ netted debts.
    pub net_total: Money,
}

fn conflict(code: &'static str, message: impl Into<String>) -> AppError {
    AppError::Conflict {
        code,
        field: None,
        message: message.into(),
        existing: None,
    }
}

fn manager_or_owner(actor: &Actor, what: &str) -> Result<(), AppError> {
    if matches!(actor.role, Role::Owner | Role::Manager) {
        Ok(())
    } else {
        Err(AppError::Forbidden(format!(
            "{what} needs an owner or manager"
        )))
    }
}

/// Managers settle the store they work at; the owner any store.
fn may_settle(actor: &Actor, store: StoreId, what: &str) -> Result<(), AppError> {
    manager_or_owner(actor, what)?;
    if actor.role == Role::Manager && actor.store_id.is_some_and(|s| s != store) {
        return Err(AppError::Forbidden(format!(
            "{what}: a manager settles the store they work at"
        )));
    }
    Ok(())
}

fn bump(m: &mut BTreeMap<String, Money>, key: String, v: Money) {
    let e = m.entry(key).or_default();
    *e = *e + v;
}

fn txn_key(kind: &str, original: Option<&str>) -> String {
    match (kind, original) {
        ("reversal", Some(o)) => format!("reversal:{o}"),
        _ => kind.to_string(),
    }
}

fn shift_view(s: &ShiftRecord, names: &HashMap<StaffId, String>) -> Shift {
    Shift {
        id: s.id,
        store_id: Some(s.store_id),
        staff_id: Some(s.staff_id),
        staff_name: names.get(&s.staff_id).cloned(),
        opened_at: Some(s.opened_at),
        opening_float: Money::from_fen(s.opening_float),
        closed_at: s.closed_at,
        closed_by: s.closed_by,
        counted_cash: s.counted_cash.map(Money::from_fen),
        expected_cash: s.expected_cash.map(Money::from_fen),
        variance: s.variance.map(Money::from_fen),
        note: s.note.clone(),
        handed_to: s.handed_to,
    }
}

fn day_view(d: &BusinessDayRecord, names: &HashMap<StaffId, String>) -> DayStatus {
    DayStatus {
        status: d.status.clone(),
        closed_by: d.closed_by,
        closed_by_name: d.closed_by.and_then(|s| names.get(&s).cloned()),
        closed_at: d.closed_at,
        note: d.note.clone(),
        reopened_by: d.reopened_by,
        reopened_at: d.reopened_at,
        reopen_reason: d.reopen_reason.clone(),
        closings: d.closings,
    }
}

fn open_day() -> DayStatus {
    DayStatus {
        status: "open".into(),
        ..DayStatus::default()
    }
}

/// Builds the ledger-derived figures of a report from the aggregate rows.
fn ledger_figures(r: &mut Settlement, sums: &[patron_store::settlement::LedgerSum]) {
    let mut tenders: BTreeMap<String, TenderTotal> = BTreeMap::new();
    let (mut debits, mut credits) = (0i64, 0i64);
    for s in sums {
        let key = txn_key(&s.txn_kind, s.original_kind.as_deref());
        let amount = Money::from_fen(s.amount);
        r.ledger.push(LedgerLine {
            account_kind: s.account_kind.clone(),
            tender: s.tender.clone(),
            kind: key.clone(),
            amount: s.amount,
            transactions: s.txns,
        });
        let Some(kind) = AccountKind::parse(&s.account_kind) else {
            continue;
        };
        if kind.unit() == Unit::Fen {
            match kind.normal() {
                Normal::Debit => debits += s.amount,
                Normal::Credit => credits += s.amount,
            }
        }
        let principal = matches!(kind, AccountKind::CardPrincipal | AccountKind::OrgPrincipal);
        let bonus = matches!(kind, AccountKind::CardBonus | AccountKind::OrgBonus);
        match kind {
            AccountKind::Tender => {
                let tender = s.tender.clone().unwrap_or_else(|| "unknown".into());
                let t = tenders
                    .entry(tender.clone())
                    .or_insert_with(|| TenderTotal {
                        tender: tender.clone(),
                        ..TenderTotal::default()
                    });
                bump(&mut t.by_kind, key.clone(), amount);
                t.net = t.net + amount;
                if tender == Tender::Cash.as_str() {
                    if s.amount >= 0 {
                        r.cash.cash_in = r.cash.cash_in + amount;
                    } else {
                        r.cash.cash_out = r.cash.cash_out - amount;
                    }
                }
                if key == "top_up" {
                    bump(&mut r.top_ups.by_tender, tender, amount);
                }
            }
            AccountKind::Revenue => {
                bump(&mut r.revenue, key.clone(), amount);
                r.revenue_total = r.revenue_total + amount;
                if key == "spend" {
                    r.counts.spends += s.txns;
                }
            }
            AccountKind::Discounts if key == "top_up" || key == "reversal:top_up" => {
                r.bonus_granted = r.bonus_granted + amount
            }
            AccountKind::Charge => match key.as_str() {
                "repayment" | "reversal:repayment" => r.charge.repaid = r.charge.repaid + amount,
                _ => r.charge.charged = r.charge.charged - amount,
            },
            AccountKind::PointsGranted => {
                *r.points.by_kind.entry(key.clone()).or_default() += s.amount;
                if s.amount >= 0 {
                    r.points.issued += s.amount;
                } else {
                    r.points.taken_back -= s.amount;
                }
            }
            AccountKind::PointsRedeemed => {
                *r.points.by_kind.entry(key.clone()).or_default() -= s.amount;
                r.points.redeemed += s.amount;
            }
            AccountKind::PointsExpired => r.points.expired += s.amount,
            _ if principal || bonus => {
                let (p, b) = if principal {
                    (amount, Money::ZERO)
                } else {
                    (Money::ZERO, amount)
                };
                match key.as_str() {
                    "top_up" => {
                        r.top_ups.principal = r.top_ups.principal + p;
                        r.top_ups.bonus = r.top_ups.bonus + b;
                        if principal {
                            r.top_ups.count += s.txns;
                        }
                    }
                    "reversal:top_up" => {
                        r.top_ups.reversed_principal = r.top_ups.reversed_principal - p;
                        r.top_ups.reversed_bonus = r.top_ups.reversed_bonus - b;
                    }
                    "spend" | "checkout" => {
                        r.stored_value.principal = r.stored_value.principal - p;
                        r.stored_value.bonus = r.stored_value.bonus - b;
                    }
                    "reversal:spend" | "reversal:checkout" | "checkout_refund" => {
                        r.stored_value.returned_principal = r.stored_value.returned_principal + p;
                        r.stored_value.returned_bonus = r.stored_value.returned_bonus + b;
                    }
                    "card_close" => {
                        r.card_refunds.principal_refunded = r.card_refunds.principal_refunded - p;
                        r.card_refunds.bonus_forfeited = r.card_refunds.bonus_forfeited - b;
                        if principal {
                            r.card_refunds.count += s.txns;
                        }
                    }
                    "adjustment" | "reversal:adjustment" => {
                        let which = if principal { "principal" } else { "bonus" };
                        *r.adjustments.entry(which.into()).or_default() += s.amount;
                    }
                    _ => {}
                }
            }
            AccountKind::CardPoints | AccountKind::OrgPoints
                if key == "adjustment" || key == "reversal:adjustment" =>
            {
                *r.adjustments.entry("points".into()).or_default() += s.amount;
            }
            _ => {}
        }
    }
    let sv = &mut r.stored_value;
    sv.total = sv.principal + sv.bonus;
    sv.net_principal = sv.principal - sv.returned_principal;
    sv.net_bonus = sv.bonus - sv.returned_bonus;
    r.tenders = tenders.into_values().collect();
    r.money_in = r.tenders.iter().map(|t| t.net).sum();
    r.balanced = debits == credits;
}

/// Checkout totals and discounts by kind, from the bills' breakdowns.
fn checkout_figures(rows: &[patron_store::settlement::CheckoutFigures]) -> CheckoutFigures {
    let mut c = CheckoutFigures::default();
    let mut kinds: BTreeMap<String, DiscountLine> = BTreeMap::new();
    for row in rows {
        c.count += 1;
        c.gross = c.gross + Money::from_fen(row.gross);
        c.discount = c.discount + Money::from_fen(row.discount);
        c.amount_due = c.amount_due + Money::from_fen(row.amount_due);
        c.refunded = c.refunded + Money::from_fen(row.refunded);
        if row.status != "completed" {
            c.reversed += 1;
        }
        let mut seen = BTreeSet::new();
        for d in row
            .breakdown
            .get("discounts")
            .and_then(|d| d.as_array())
            .into_iter()
            .flatten()
        {
            let kind = d
                .get("kind")
                .and_then(|k| k.as_str())
                .unwrap_or("other")
                .to_string();
            let amount = d.get("amount").and_then(|a| a.as_i64()).unwrap_or(0);
            let line = kinds.entry(kind.clone()).or_insert_with(|| DiscountLine {
                kind: kind.clone(),
                ..DiscountLine::default()
            });
            line.amount = line.amount + Money::from_fen(amount);
            if seen.insert(kind) {
                line.bills += 1;
            }
        }
    }
    c.discounts = kinds.into_values().collect();
    c
}

/// Resolves a store given by id or code (default: the actor's).
fn find_store(stores: &[Store], actor: &Actor, given: Option<&str>) -> Result<Store, AppError> {
    let given = given.map(str::trim).filter(|s| !s.is_empty());
    let found = match given {
        Some(s) => stores
            .iter()
            .find(|x| x.code == s || x.id.0.to_string() == s.to_ascii_lowercase()),
        None => match actor.store_id {
            Some(id) => stores.iter().find(|x| x.id == id),
            None => {
                return Err(ValidationErrors::single(
                    "store",
                    "required",
                    "name the store (its code or id), or log in at one",
                )
                .into());
            }
        },
    };
    found.cloned().ok_or(AppError::NotFound { entity: "store" })
}

impl App {
    async fn staff_names(
        &self,
        actor: &Actor,
        ids: impl IntoIterator<Item = StaffId>,
    ) -> Result<HashMap<StaffId, String>, AppError> {
        let mut out = HashMap::new();
        for id in ids.into_iter().collect::<BTreeSet<_>>() {
            if let Some(s) = self.storage.staff(actor.tenant_id, id).await? {
                out.insert(id, s.display_name);
            }
        }
        Ok(out)
    }

    /// A store of the actor's tenant by id or code (the actor's own store by default).
    pub async fn settlement_store(
        &self,
        actor: &Actor,
        store: Option<&str>,
    ) -> Result<Store, AppError> {
        let stores = self.storage.list_stores(actor.tenant_id).await?;
        find_store(&stores, actor, store)
    }

    /// The report of a scope (everything but the day and shift details).
    async fn report(
        &self,
        actor: &Actor,
        store: &Store,
        scope: Scope,
    ) -> Result<Settlement, AppError> {
        let t = actor.tenant_id;
        let mut r = Settlement {
            store_id: Some(store.id),
            store_code: store.code.clone(),
            store_name: store.name.clone(),
            from: Some(scope.from),
            to: Some(scope.to),
            staff_id: scope.staff,
            generated_at: Some(now()),
            source: "live".into(),
            ..Settlement::default()
        };
        let sums = self.storage.ledger_sums(t, &scope).await?;
        ledger_figures(&mut r, &sums);
        let checkouts = self.storage.checkout_figures(t, &scope).await?;
        r.checkouts = checkout_figures(&checkouts);
        r.counts.checkouts = r.checkouts.count;
        r.coupons.checkout_discount = r
            .checkouts
            .discounts
            .iter()
            .filter(|d| d.kind == "coupon")
            .map(|d| d.amount)
            .sum();
        let (redeemed, issued) = self.storage.coupon_counts(t, &scope).await?;
        r.coupons.redeemed = redeemed;
        r.coupons.issued = issued;
        let (visits, customers) = self.storage.visit_sums(t, &scope).await?;
        for v in &visits {
            r.counts.visits += v.visits;
            r.counts.anonymous_visits += v.anonymous;
            if v.source == "purchase" {
                r.purchases.count += v.visits;
                r.purchases.amount = r.purchases.amount + Money::from_fen(v.amount);
            }
        }
        r.counts.customers_served = customers;
        r.counts.purchases = r.purchases.count;
        r.counts.top_ups = r.top_ups.count;
        r.stored_value.count = r.counts.spends
            + r.ledger
                .iter()
                .filter(|l| l.kind == "checkout" && l.account_kind.ends_with("_principal"))
                .map(|l| l.transactions)
                .sum::<i64>();
        // Corrections, each with its money effect, staff and approver.
        let txns = self.storage.scope_txns(t, &scope, CORRECTION_KINDS).await?;
        let people: Vec<StaffId> = txns
            .iter()
            .flat_map(|x| [x.staff_id, x.approver_id])
            .flatten()
            .collect();
        let names = self.staff_names(actor, people).await?;
        let mut keys: HashMap<Uuid, AccountKind> = HashMap::new();
        for x in &txns {
            let entries = self.storage.txn_entries(t, x.id).await?;
            let unknown: Vec<Uuid> = entries
                .iter()
                .map(|e| e.account_id)
                .filter(|a| !keys.contains_key(a))
                .collect();
            for a in self.storage.accounts(t, &unknown).await? {
                keys.insert(a.id, a.key.kind);
            }
            let (mut tender, mut stored) = (0i64, 0i64);
            for e in &entries {
                match keys.get(&e.account_id) {
                    Some(AccountKind::Tender) => tender += e.amount,
                    Some(
                        AccountKind::CardPrincipal
                        | AccountKind::CardBonus
                        | AccountKind::OrgPrincipal
                        | AccountKind::OrgBonus,
                    ) => stored += e.amount,
                    _ => {}
                }
            }
            r.corrections.push(CorrectionLine {
                txn_id: x.id,
                kind: x.kind.clone(),
                original_kind: x
                    .data
                    .get("original_kind")
                    .and_then(|k| k.as_str())
                    .map(str::to_string),
                reverses: x.reverses,
                at: Some(x.created_at),
                staff_id: x.staff_id,
                staff_name: x.staff_id.and_then(|s| names.get(&s).cloned()),
                approver_id: x.approver_id,
                approver_name: x.approver_id.and_then(|s| names.get(&s).cloned()),
                reason: x.reason.clone(),
                memo: x.memo.clone(),
                tender_amount: Money::from_fen(tender),
                stored_value_amount: Money::from_fen(stored),
            });
        }
        r.counts.corrections = r.corrections.len() as i64;
        Ok(r)
    }

    /// The daily settlement of a store's business day (today's by default). A closed day
    /// answers with the report signed at closing.
    pub async fn daily_settlement(
        &self,
        actor: &Actor,
        store: Option<&str>,
        date: Option<NaiveDate>,
    ) -> Result<Settlement, AppError> {
        actor.require(Permission::ViewFinance)?;
        let store = self.settlement_store(actor, store).await?;
        actor.require_store(store.id)?;
        let settings = self.settings(actor).await?;
        let date = date.unwrap_or_else(|| settings.business_date(now()));
        let day = self
            .storage
            .business_day(actor.tenant_id, store.id, date)
            .await?;
        let names = self
            .staff_names(actor, day.iter().flat_map(|d| d.closed_by))
            .await?;
        if let Some(d) = &day
            && d.status == "closed"
            && let Some(mut snap) = d
                .report
                .clone()
                .and_then(|v| serde_json::from_value::<Settlement>(v).ok())
        {
            snap.source = "snapshot".into();
            snap.day = Some(day_view(d, &names));
            return Ok(snap);
        }
        let mut r = self.live_daily(actor, &store, date, day.as_ref()).await?;
        r.day = Some(day.as_ref().map_or_else(open_day, |d| day_view(d, &names)));
        Ok(r)
    }

    /// Computes a day's report now (the bounds of a day closed before stay as fixed then).
    async fn live_daily(
        &self,
        actor: &Actor,
        store: &Store,
        date: NaiveDate,
        day: Option<&BusinessDayRecord>,
    ) -> Result<Settlement, AppError> {
        let settings = self.settings(actor).await?;
        let (from, to) = match day {
            Some(d) => (d.starts_at, d.ends_at),
            None => settings.business_day_bounds(date),
        };
        let scope = Scope {
            store: store.id,
            from,
            to,
            staff: None,
        };
        let mut r = self.report(actor, store, scope).await?;
        r.business_date = Some(date);
        let shifts = self
            .storage
            .shifts(actor.tenant_id, store.id, from, to, None)
            .await?;
        let names = self
            .staff_names(actor, shifts.iter().map(|s| s.staff_id))
            .await?;
        r.cash.opening_float = shifts
            .iter()
            .map(|s| Money::from_fen(s.opening_float))
            .sum();
        r.cash.expected = Money::from_fen(rules::expected_cash(
            r.cash.opening_float.fen(),
            (r.cash.cash_in - r.cash.cash_out).fen(),
        ));
        if !shifts.is_empty() && shifts.iter().all(|s| s.counted_cash.is_some()) {
            let counted: i64 = shifts.iter().filter_map(|s| s.counted_cash).sum();
            r.cash.counted = Some(Money::from_fen(counted));
            r.cash.variance = Some(Money::from_fen(rules::cash_variance(
                counted,
                r.cash.expected.fen(),
            )));
        }
        r.shifts = shifts.iter().map(|s| shift_view(s, &names)).collect();
        Ok(r)
    }

    /// Closes a store's business day: snapshots its report and locks the ledger for its
    /// instants. Owners and managers (of that store); refused while a shift that began
    /// before the day's end is open.
    pub async fn close_day(
        &self,
        actor: &Actor,
        store: Option<&str>,
        date: NaiveDate,
        req: &CloseDay,
    ) -> Result<Settlement, AppError> {
        actor.require(Permission::CloseDay)?;
        let store = self.settlement_store(actor, store).await?;
        may_settle(actor, store.id, "closing a business day")?;
        let note = req.note.as_deref().map(str::trim).filter(|n| !n.is_empty());
        if note.is_some_and(|n| n.chars().count() > 500) {
            return Err(
                ValidationErrors::single("note", "too_long", "at most 500 characters").into(),
            );
        }
        let settings = self.settings(actor).await?;
        let existing = self
            .storage
            .business_day(actor.tenant_id, store.id, date)
            .await?;
        if existing.as_ref().is_some_and(|d| d.status == "closed") {
            return Err(conflict(
                "day_already_closed",
                format!("{} of {} is closed already", date, store.name),
            ));
        }
        let (starts_at, ends_at) = match &existing {
            Some(d) => (d.starts_at, d.ends_at),
            None => settings.business_day_bounds(date),
        };
        let at = now();
        if starts_at > at {
            return Err(ValidationErrors::single(
                "date",
                "day_not_started",
                format!("the business day {date} has not started yet"),
            )
            .into());
        }
        let open: Vec<ShiftRecord> = self
            .storage
            .open_shifts(actor.tenant_id, store.id)
            .await?
            .into_iter()
            .filter(|s| s.opened_at < ends_at)
            .collect();
        if !open.is_empty() {
            let names = self
                .staff_names(actor, open.iter().map(|s| s.staff_id))
                .await?;
            let who: Vec<String> = open
                .iter()
                .map(|s| {
                    format!(
                        "{} (since {})",
                        names.get(&s.staff_id).cloned().unwrap_or_default(),
                        settings.local(s.opened_at).format("%Y-%m-%d %H:%M")
                    )
                })
                .collect();
            return Err(conflict(
                "shifts_open",
                format!(
                    "close the open shifts first (count their cash): {}",
                    who.join(", ")
                ),
            ));
        }
        let mut report = self
            .live_daily(actor, &store, date, existing.as_ref())
            .await?;
        let mut record = BusinessDayRecord {
            tenant_id: actor.tenant_id,
            store_id: store.id,
            business_date: date,
            starts_at,
            ends_at,
            status: "closed".into(),
            closed_by: Some(actor.staff_id),
            closed_at: Some(at),
            reopened_by: None,
            reopened_at: None,
            reopen_reason: None,
            report: Some(serde_json::to_value(&report).expect("report serialises")),
            note: note.map(str::to_string),
            closings: 0,
        };
        let closed = match self.storage.close_business_day(&record).await {
            Ok(d) => d,
            Err(StoreError::Conflict {
                what: "day_already_closed",
            }) => {
                return Err(conflict(
                    "day_already_closed",
                    format!("{} of {} is closed already", date, store.name),
                ));
            }
            Err(StoreError::Conflict {
                what: "shifts_open",
            }) => {
                return Err(conflict(
                    "shifts_open",
                    "a shift was opened meanwhile: close it first",
                ));
            }
            Err(e) => return Err(e.into()),
        };
        // Posts that were in flight when the report was first taken committed before the
        // close (which waited for them): the report is taken again now that nothing more
        // can be posted.
        let again = self.live_daily(actor, &store, date, Some(&closed)).await?;
        let figures = |s: &Settlement| {
            let mut v = serde_json::to_value(s).expect("report serialises");
            v["generated_at"] = serde_json::Value::Null;
            v
        };
        if figures(&again) != figures(&report) {
            report = again;
            record.report = Some(serde_json::to_value(&report).expect("report serialises"));
            self.storage.save_day_report(&record).await?;
        }
        let names = self.staff_names(actor, [actor.staff_id]).await?;
        report.source = "snapshot".into();
        report.day = Some(day_view(&closed, &names));
        self.audit(patron_store::audit::AuditEntry {
            store_id: Some(store.id),
            after: Some(serde_json::json!({"status": "closed", "note": note})),
            ..self.audit_entry(
                actor,
                "day.close",
                "business_day",
                Some(format!("{}/{date}", store.code)),
                format!("日结 / day closed: {} {date}", store.name),
            )
        })
        .await?;
        Ok(report)
    }

    /// Reopens a closed business day: the owner only, with a reason. Postings into the
    /// day are accepted again until it is closed anew.
    pub async fn reopen_day(
        &self,
        actor: &Actor,
        store: Option<&str>,
        date: NaiveDate,
        req: &ReopenDay,
    ) -> Result<DayStatus, AppError> {
        actor.require(Permission::ReopenDay)?;
        let store = self.settlement_store(actor, store).await?;
        let reason = req.reason.trim();
        if reason.is_empty() || reason.chars().count() > 200 {
            return Err(ValidationErrors::single(
                "reason",
                "reason_required",
                "say why (1–200 characters)",
            )
            .into());
        }
        let d = match self
            .storage
            .reopen_business_day(
                actor.tenant_id,
                store.id,
                date,
                actor.staff_id,
                now(),
                reason,
            )
            .await
        {
            Ok(d) => d,
            Err(StoreError::NotFound) | Err(StoreError::Conflict { .. }) => {
                return Err(conflict(
                    "day_not_closed",
                    format!("{date} of {} is not closed", store.name),
                ));
            }
            Err(e) => return Err(e.into()),
        };
        self.audit(patron_store::audit::AuditEntry {
            store_id: Some(store.id),
            before: Some(serde_json::json!({"status": "closed"})),
            after: Some(serde_json::json!({"status": "open", "reason": reason})),
            ..self.audit_entry(
                actor,
                "day.reopen",
                "business_day",
                Some(format!("{}/{date}", store.code)),
                format!("反日结 / day reopened: {} {date}: {reason}", store.name),
            )
        })
        .await?;
        let names = self.staff_names(actor, d.closed_by).await?;
        Ok(day_view(&d, &names))
    }

    /// Opens the actor's shift at their store with the cash in the drawer.
    pub async fn open_shift(&self, actor: &Actor, req: &OpenShift) -> Result<Shift, AppError> {
        actor.require(Permission::Shifts)?;
        let store = at_store(actor, "shifts")?;
        let mut errors = ValidationErrors::default();
        if req.opening_float.is_negative() || req.opening_float > crate::cards::MAX_AMOUNT {
            errors.push(FieldError::new(
                "opening_float",
                "invalid_amount",
                "zero or more, within limits",
            ));
        }
        let note = req.note.as_deref().map(str::trim).filter(|n| !n.is_empty());
        if note.is_some_and(|n| n.chars().count() > 500) {
            errors.push(FieldError::new(
                "note",
                "too_long",
                "at most 500 characters",
            ));
        }
        errors.into_result(())?;
        let settings = self.settings(actor).await?;
        let at = now();
        let today = settings.business_date(at);
        if self
            .storage
            .business_day(actor.tenant_id, store, today)
            .await?
            .is_some_and(|d| d.status == "closed" && d.starts_at <= at && at < d.ends_at)
        {
            return Err(AppError::from(StoreError::Conflict { what: "day_closed" }));
        }
        let s = ShiftRecord {
            tenant_id: actor.tenant_id,
            id: new_uuid(),
            store_id: store,
            staff_id: actor.staff_id,
            opened_at: at,
            opening_float: req.opening_float.fen(),
            closed_at: None,
            closed_by: None,
            counted_cash: None,
            expected_cash: None,
            variance: None,
            note: note.map(str::to_string),
            handed_to: None,
            report: None,
        };
        match self.storage.open_shift(&s).await {
            Ok(()) => {}
            Err(StoreError::Conflict { what: "shift_open" }) => {
                return Err(conflict(
                    "shift_open",
                    "you have an open shift at this store: close it (hand over) first",
                ));
            }
            Err(e) => return Err(e.into()),
        }
        let names = self.staff_names(actor, [actor.staff_id]).await?;
        Ok(shift_view(&s, &names))
    }

    async fn visible_shift(&self, actor: &Actor, id: Uuid) -> Result<ShiftRecord, AppError> {
        let s = self
            .storage
            .shift(actor.tenant_id, id)
            .await?
            .ok_or(AppError::NotFound { entity: "shift" })?;
        if s.staff_id != actor.staff_id {
            may_settle(actor, s.store_id, "another cashier's shift")?;
        }
        Ok(s)
    }

    /// One cashier's figures over the shift (until now while it is open). A closed shift
    /// answers with the report taken at handover.
    pub async fn shift_report(&self, actor: &Actor, id: Uuid) -> Result<Settlement, AppError> {
        actor.require(Permission::Shifts)?;
        let s = self.visible_shift(actor, id).await?;
        if s.closed_at.is_some()
            && let Some(mut snap) = s
                .report
                .clone()
                .and_then(|v| serde_json::from_value::<Settlement>(v).ok())
        {
            snap.source = "snapshot".into();
            return Ok(snap);
        }
        self.live_shift(actor, &s, s.closed_at.unwrap_or_else(now))
            .await
    }

    async fn live_shift(
        &self,
        actor: &Actor,
        s: &ShiftRecord,
        to: DateTime<Utc>,
    ) -> Result<Settlement, AppError> {
        let stores = self.storage.list_stores(actor.tenant_id).await?;
        let store = stores
            .into_iter()
            .find(|x| x.id == s.store_id)
            .ok_or(AppError::NotFound { entity: "store" })?;
        let scope = Scope {
            store: s.store_id,
            from: s.opened_at,
            // The range is exclusive: the closing instant itself counts.
            to: to + chrono::Duration::microseconds(1),
            staff: Some(s.staff_id),
        };
        let settings = self.settings(actor).await?;
        let mut r = self.report(actor, &store, scope).await?;
        r.business_date = Some(settings.business_date(s.opened_at));
        r.cash.opening_float = Money::from_fen(s.opening_float);
        r.cash.expected = Money::from_fen(rules::expected_cash(
            s.opening_float,
            (r.cash.cash_in - r.cash.cash_out).fen(),
        ));
        r.cash.counted = s.counted_cash.map(Money::from_fen);
        r.cash.variance = s
            .counted_cash
            .map(|c| Money::from_fen(rules::cash_variance(c, r.cash.expected.fen())));
        let names = self.staff_names(actor, [s.staff_id]).await?;
        r.shifts = vec![shift_view(s, &names)];
        Ok(r)
    }

    /// Closes a shift (handover): the counted cash against the expected gives the
    /// variance; the report is kept with the shift. The cashier, or a manager or owner.
    pub async fn close_shift(
        &self,
        actor: &Actor,
        id: Uuid,
        req: &CloseShift,
    ) -> Result<ShiftClosed, AppError> {
        actor.require(Permission::Shifts)?;
        let s = self.visible_shift(actor, id).await?;
        let mut errors = ValidationErrors::default();
        if req.counted_cash.is_negative() || req.counted_cash > crate::cards::MAX_AMOUNT {
            errors.push(FieldError::new(
                "counted_cash",
                "invalid_amount",
                "zero or more, within limits",
            ));
        }
        let note = req.note.as_deref().map(str::trim).filter(|n| !n.is_empty());
        if note.is_some_and(|n| n.chars().count() > 500) {
            errors.push(FieldError::new(
                "note",
                "too_long",
                "at most 500 characters",
            ));
        }
        if let Some(h) = req.handed_to {
            match self.storage.staff(actor.tenant_id, h).await? {
                Some(x) if x.active && h != s.staff_id => {}
                _ => errors.push(FieldError::new(
                    "handed_to",
                    "unknown_staff",
                    "an active colleague of this tenant",
                )),
            }
        }
        errors.into_result(())?;
        if s.closed_at.is_some() {
            return Err(conflict("shift_closed", "this shift is closed already"));
        }
        let at = now();
        let mut report = self.live_shift(actor, &s, at).await?;
        let expected = report.cash.expected.fen();
        let variance = rules::cash_variance(req.counted_cash.fen(), expected);
        report.cash.counted = Some(req.counted_cash);
        report.cash.variance = Some(Money::from_fen(variance));
        // The report shows the shift as it is after the handover.
        let names = self.staff_names(actor, [s.staff_id]).await?;
        let mut after = s.clone();
        after.closed_at = Some(at);
        after.closed_by = Some(actor.staff_id);
        after.counted_cash = Some(req.counted_cash.fen());
        after.expected_cash = Some(expected);
        after.variance = Some(variance);
        after.note = note.map(str::to_string).or(s.note.clone());
        after.handed_to = req.handed_to;
        report.shifts = vec![shift_view(&after, &names)];
        let close = ShiftClose {
            closed_at: at,
            closed_by: actor.staff_id,
            counted_cash: req.counted_cash.fen(),
            expected_cash: expected,
            variance,
            note: note.map(str::to_string),
            handed_to: req.handed_to,
            report: serde_json::to_value(&report).expect("report serialises"),
        };
        let closed = match self.storage.close_shift(actor.tenant_id, id, &close).await {
            Ok(rec) => rec,
            Err(StoreError::Conflict {
                what: "shift_closed",
            }) => {
                return Err(conflict("shift_closed", "this shift is closed already"));
            }
            Err(e) => return Err(e.into()),
        };
        Ok(ShiftClosed {
            shift: shift_view(&closed, &names),
            report,
        })
    }

    /// Shifts of a store opened on a business day (today's by default). Cashiers see
    /// their own; owners and managers everyone's.
    pub async fn shifts(
        &self,
        actor: &Actor,
        store: Option<&str>,
        date: Option<NaiveDate>,
    ) -> Result<Vec<Shift>, AppError> {
        actor.require(Permission::Shifts)?;
        let store = self.settlement_store(actor, store).await?;
        let settings = self.settings(actor).await?;
        let date = date.unwrap_or_else(|| settings.business_date(now()));
        let (from, to) = settings.business_day_bounds(date);
        let only = if matches!(actor.role, Role::Owner | Role::Manager) {
            None
        } else {
            Some(actor.staff_id)
        };
        let shifts = self
            .storage
            .shifts(actor.tenant_id, store.id, from, to, only)
            .await?;
        let names = self
            .staff_names(actor, shifts.iter().map(|s| s.staff_id))
            .await?;
        Ok(shifts.iter().map(|s| shift_view(s, &names)).collect())
    }

    /// The inter-store settlement statement of the business days `from`..=`to` (owner).
    pub async fn inter_store_settlement(
        &self,
        actor: &Actor,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<InterStoreStatement, AppError> {
        actor.require(Permission::ChainReports)?;
        if to < from || (to - from).num_days() >= MAX_PERIOD_DAYS {
            return Err(ValidationErrors::single(
                "to",
                "invalid_period",
                format!("from ≤ to, at most {MAX_PERIOD_DAYS} days"),
            )
            .into());
        }
        let t = actor.tenant_id;
        let settings = self.settings(actor).await?;
        let (starts_at, _) = settings.business_day_bounds(from);
        let (_, ends_at) = settings.business_day_bounds(to);
        let stores = self.storage.list_stores(t).await?;
        // Accounts whose principal was used in the period, then (through transfers and
        // card replacements) the accounts their principal came from.
        let mut accounts: BTreeSet<Uuid> = BTreeSet::new();
        for s in stores.iter().map(|s| Some(s.id)).chain([None]) {
            accounts.extend(
                self.storage
                    .principal_accounts_used(t, s, starts_at, ends_at, INTER_STORE_KINDS)
                    .await?,
            );
        }
        let mut entries = Vec::new();
        let mut fetch: Vec<Uuid> = accounts.iter().copied().collect();
        let mut seen_txns: BTreeSet<Uuid> = BTreeSet::new();
        while !fetch.is_empty() {
            let batch = self.storage.principal_history(t, &fetch, ends_at).await?;
            let carries: Vec<Uuid> = batch
                .iter()
                .filter(|e| {
                    e.amount > 0
                        && matches!(
                            e.txn_kind.as_str(),
                            "transfer" | "card_replace" | "customer_merge"
                        )
                        && !seen_txns.contains(&e.txn_id)
                })
                .map(|e| e.txn_id)
                .collect();
            entries.extend(batch);
            seen_txns.extend(carries.iter().copied());
            fetch = self
                .storage
                .principal_legs(t, &carries)
                .await?
                .into_iter()
                .map(|e| e.account_id)
                .filter(|a| accounts.insert(*a))
                .collect();
        }
        entries.sort_by_key(|e| e.seq);
        entries.dedup_by_key(|e| e.seq);
        let mut moves: Vec<PrincipalMove> = Vec::new();
        let mut index: HashMap<Uuid, usize> = HashMap::new();
        for e in &entries {
            let i = *index.entry(e.txn_id).or_insert_with(|| {
                moves.push(PrincipalMove {
                    txn: e.txn_id,
                    store: e.store_id,
                    kind: match e.txn_kind.as_str() {
                        "spend" | "checkout" => MoveKind::Consumption,
                        "card_close" => MoveKind::Refund,
                        "reversal" => e
                            .reverses
                            .map_or(MoveKind::Other, |of| MoveKind::Reversal { of }),
                        _ => MoveKind::Other,
                    },
                    counted: e.created_at >= starts_at && e.created_at < ends_at,
                    legs: Vec::new(),
                });
                moves.len() - 1
            });
            moves[i].legs.push((e.account_id, e.amount));
        }
        let (_, flows) = PrincipalLots::attribute(&moves);
        let refer = |id: Option<StoreId>| {
            let s = id.and_then(|id| stores.iter().find(|s| s.id == id));
            StoreRef {
                store_id: id,
                code: s.map(|s| s.code.clone()),
                name: s.map(|s| s.name.clone()),
            }
        };
        let mut gross: BTreeMap<(Option<StoreId>, Option<StoreId>, FlowKind), i64> =
            BTreeMap::new();
        let (mut local, mut cross) = (0i64, 0i64);
        let mut positions: BTreeMap<Option<StoreId>, (i64, i64, i64)> = BTreeMap::new();
        for s in &stores {
            positions.insert(Some(s.id), (0, 0, 0));
        }
        for f in &flows {
            positions.entry(f.at).or_default().0 += f.amount;
            if f.origin == f.at {
                local += f.amount;
                continue;
            }
            cross += f.amount;
            *gross.entry((f.origin, f.at, f.kind)).or_insert(0) += f.amount;
            positions.entry(f.at).or_default().1 += f.amount;
            positions.entry(f.origin).or_default().2 += f.amount;
        }
        let settlements: Vec<NetDebt> = rules::net_pairs(&flows);
        Ok(InterStoreStatement {
            from,
            to,
            starts_at,
            ends_at,
            method: "fifo_by_selling_store".into(),
            stores: positions
                .into_iter()
                .map(|(s, (used, owed_to, owed_by))| StorePosition {
                    store: refer(s),
                    principal_used_here: Money::from_fen(used),
                    owed_to_store: Money::from_fen(owed_to),
                    owed_by_store: Money::from_fen(owed_by),
                    net: Money::from_fen(owed_to - owed_by),
                })
                .collect(),
            flows: gross
                .into_iter()
                .filter(|(_, v)| *v != 0)
                .map(|((o, a, kind), v)| InterStoreFlow {
                    sold_at: refer(o),
                    used_at: refer(a),
                    kind,
                    amount: Money::from_fen(v),
                })
                .collect(),
            net_total: Money::from_fen(settlements.iter().map(|d| d.amount).sum()),
            settlements: settlements
                .into_iter()
                .map(|d| InterStoreDebt {
                    payer: refer(d.payer),
                    payee: refer(d.payee),
                    amount: Money::from_fen(d.amount),
                })
                .collect(),
            local_total: Money::from_fen(local),
            cross_store_total: Money::from_fen(cross),
        })
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The daily settlement as a printable page.
pub fn html(r: &Settlement) -> String {
    let row = |label: &str, v: String| {
        format!(
            "<tr><td>{}</td><td class=n>{}</td></tr>",
            esc(label),
            esc(&v)
        )
    };
    let m = |x: Money| x.to_decimal_string();
    let mut body = String::new();
    body.push_str("<h2>收款 Money by tender</h2><table>");
    for t in &r.tenders {
        body.push_str(&row(&t.tender, m(t.net)));
    }
    body.push_str(&row("合计 Total", m(r.money_in)));
    body.push_str("</table><h2>储值 Stored value</h2><table>");
    body.push_str(&row(
        &format!("充值 Top-ups ({})", r.top_ups.count),
        format!("{} + 赠 {}", m(r.top_ups.principal), m(r.top_ups.bonus)),
    ));
    body.push_str(&row(
        &format!("消费 Consumed ({})", r.stored_value.count),
        format!(
            "本金 {} + 赠送 {}",
            m(r.stored_value.principal),
            m(r.stored_value.bonus)
        ),
    ));
    body.push_str(&row(
        "退回 Returned",
        format!(
            "本金 {} + 赠送 {}",
            m(r.stored_value.returned_principal),
            m(r.stored_value.returned_bonus)
        ),
    ));
    body.push_str(&row(
        &format!("退卡 Card refunds ({})", r.card_refunds.count),
        m(r.card_refunds.principal_refunded),
    ));
    body.push_str("</table><h2>结账 Checkouts</h2><table>");
    body.push_str(&row(
        &format!("单数 Bills ({})", r.checkouts.count),
        m(r.checkouts.amount_due),
    ));
    body.push_str(&row("原价 Gross", m(r.checkouts.gross)));
    for d in &r.checkouts.discounts {
        body.push_str(&row(&format!("优惠 {} ({})", d.kind, d.bills), m(d.amount)));
    }
    body.push_str(&row(
        "券 Coupons redeemed / issued",
        format!("{} / {}", r.coupons.redeemed, r.coupons.issued),
    ));
    body.push_str(&row(
        "积分 Points issued / redeemed / expired",
        format!(
            "{} / {} / {}",
            r.points.issued, r.points.redeemed, r.points.expired
        ),
    ));
    body.push_str(&row(
        "客数 Customers served",
        r.counts.customers_served.to_string(),
    ));
    body.push_str("</table><h2>现金 Cash</h2><table>");
    body.push_str(&row("备用金 Opening float", m(r.cash.opening_float)));
    body.push_str(&row("收入 In", m(r.cash.cash_in)));
    body.push_str(&row("支出 Out", m(r.cash.cash_out)));
    body.push_str(&row("应有 Expected", m(r.cash.expected)));
    if let Some(c) = r.cash.counted {
        body.push_str(&row("实点 Counted", m(c)));
    }
    if let Some(v) = r.cash.variance {
        body.push_str(&row("差额 Variance", m(v)));
    }
    body.push_str("</table><h2>撤销与退款 Reversals and refunds</h2><table>");
    for c in &r.corrections {
        body.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=n>{}</td></tr>",
            c.at.map(|a| a.format("%H:%M").to_string())
                .unwrap_or_default(),
            esc(&txn_key(&c.kind, c.original_kind.as_deref())),
            esc(c.reason.as_deref().unwrap_or("")),
            esc(&format!(
                "{} / {}",
                c.staff_name.as_deref().unwrap_or("-"),
                c.approver_name.as_deref().unwrap_or("-")
            )),
            m(c.tender_amount + c.stored_value_amount)
        ));
    }
    let status = r
        .day
        .as_ref()
        .map(|d| match &d.closed_by_name {
            Some(n) if d.status == "closed" => format!("已日结 Closed by {n}"),
            _ => d.status.clone(),
        })
        .unwrap_or_default();
    format!(
        "<!doctype html><html lang=zh-CN><head><meta charset=utf-8><title>日结 Daily settlement {code} {date}</title>\
         <style>body{{font-family:sans-serif;margin:2em;max-width:50em}}table{{border-collapse:collapse;width:100%}}\
         td{{border-bottom:1px solid #ccc;padding:4px 8px}}.n{{text-align:right;font-variant-numeric:tabular-nums}}\
         @media print{{button{{display:none}}}}</style></head><body>\
         <h1>日结单 / Daily settlement</h1><p>{name} ({code}) · 营业日 Business day <b>{date}</b> · {status}</p>\
         <button onclick=print()>打印 Print</button>{body}</table>\
         <p>签字 Signature: ____________ {note}</p></body></html>",
        code = esc(&r.store_code),
        name = esc(&r.store_name),
        date = r.business_date.map(|d| d.to_string()).unwrap_or_default(),
        status = esc(&status),
        note = esc(r.day.as_ref().and_then(|d| d.note.as_deref()).unwrap_or("")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use patron_store::settlement::LedgerSum;

    fn sum(
        account: &str,
        tender: Option<&str>,
        kind: &str,
        orig: Option<&str>,
        amount: i64,
    ) -> LedgerSum {
        LedgerSum {
            account_kind: account.into(),
            tender: tender.map(Into::into),
            txn_kind: kind.into(),
            original_kind: orig.map(Into::into),
            amount,
            txns: 1,
        }
    }

    #[test]
    fn ledger_rows_become_the_report_figures() {
        let mut r = Settlement::default();
        ledger_figures(
            &mut r,
            &[
                // A top-up of 1,000 cash with 150 bonus.
                sum("tender", Some("cash"), "top_up", None, 100_000),
                sum("card_principal", None, "top_up", None, 100_000),
                sum("discounts", None, "top_up", None, 15_000),
                sum("card_bonus", None, "top_up", None, 15_000),
                // A spend of 115 (100 principal, 15 bonus), then its reversal.
                sum("revenue", None, "spend", None, 11_500),
                sum("card_principal", None, "spend", None, -10_000),
                sum("card_bonus", None, "spend", None, -1_500),
                sum("revenue", None, "reversal", Some("spend"), -11_500),
                sum("card_principal", None, "reversal", Some("spend"), 10_000),
                sum("card_bonus", None, "reversal", Some("spend"), 1_500),
                // A partial refund of a checkout: 30 back onto the card.
                sum("revenue", None, "checkout_refund", None, -3_000),
                sum("card_principal", None, "checkout_refund", None, 3_000),
            ],
        );
        assert_eq!(r.money_in, Money::from_fen(100_000));
        assert_eq!(r.top_ups.by_tender["cash"], Money::from_fen(100_000));
        assert_eq!(r.top_ups.bonus, Money::from_fen(15_000));
        assert_eq!(r.bonus_granted, Money::from_fen(15_000));
        assert_eq!(r.stored_value.total, Money::from_fen(11_500));
        assert_eq!(r.stored_value.returned_principal, Money::from_fen(13_000));
        assert_eq!(r.stored_value.net_principal, Money::from_fen(-3_000));
        assert_eq!(r.revenue["reversal:spend"], Money::from_fen(-11_500));
        assert_eq!(r.cash.cash_in, Money::from_fen(100_000));
        assert!(r.balanced);
    }
}
