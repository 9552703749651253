//! The ledger's SQL, shared by both backends like `shared.rs` (see there for why a macro).

use crate::StoreError;
use crate::ledger::{AccountRecord, EntryRecord, TxnRecord};
use chrono::{DateTime, Utc};
use patron_domain::ids::{CardId, CustomerId, StaffId, StoreId, TenantId};
use patron_domain::ledger::{AccountKey, AccountKind, Tender, Unit};
use uuid::Uuid;

pub(crate) const TXN_COLS: &str = "tenant_id, id, kind, idempotency_key, request_hash, card_id, customer_id, store_id, \
    staff_id, approver_id, reverses_txn_id, reason, memo, data, created_at";
pub(crate) const ENTRY_COLS: &str = "tenant_id, seq, txn_id, account_id, unit, amount, balance_after, staff_id, store_id, created_at, memo, prev_hash, hash, rule, memo_en";
pub(crate) const ACCOUNT_COLS: &str =
    "tenant_id, id, kind, unit, card_id, customer_id, store_id, tender, balance, floor, created_at";

fn corrupt(what: &str, v: &str) -> StoreError {
    StoreError::Corrupt(format!("{what}: {v:?}"))
}

#[derive(sqlx::FromRow)]
pub(crate) struct TxnRow {
    tenant_id: Uuid,
    id: Uuid,
    kind: String,
    idempotency_key: String,
    request_hash: String,
    card_id: Option<Uuid>,
    customer_id: Option<Uuid>,
    store_id: Option<Uuid>,
    staff_id: Option<Uuid>,
    approver_id: Option<Uuid>,
    reverses_txn_id: Option<Uuid>,
    reason: Option<String>,
    memo: String,
    data: String,
    created_at: DateTime<Utc>,
}

impl TryFrom<TxnRow> for TxnRecord {
    type Error = StoreError;
    fn try_from(r: TxnRow) -> Result<Self, StoreError> {
        Ok(TxnRecord {
            tenant_id: TenantId(r.tenant_id),
            id: r.id,
            kind: r.kind,
            idempotency_key: r.idempotency_key,
            request_hash: r.request_hash,
            card_id: r.card_id.map(CardId),
            customer_id: r.customer_id.map(CustomerId),
            store_id: r.store_id.map(StoreId),
            staff_id: r.staff_id.map(StaffId),
            approver_id: r.approver_id.map(StaffId),
            reverses: r.reverses_txn_id,
            reason: r.reason,
            memo: r.memo,
            data: serde_json::from_str(&r.data)
                .map_err(|_| corrupt("ledger_txns.data", &r.data))?,
            created_at: r.created_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct EntryRow {
    tenant_id: Uuid,
    seq: i64,
    txn_id: Uuid,
    account_id: Uuid,
    unit: String,
    amount: i64,
    balance_after: i64,
    staff_id: Option<Uuid>,
    store_id: Option<Uuid>,
    created_at: DateTime<Utc>,
    memo: String,
    prev_hash: String,
    hash: String,
    rule: Option<String>,
    memo_en: Option<String>,
}

impl TryFrom<EntryRow> for EntryRecord {
    type Error = StoreError;
    fn try_from(r: EntryRow) -> Result<Self, StoreError> {
        Ok(EntryRecord {
            tenant_id: TenantId(r.tenant_id),
            seq: r.seq,
            txn_id: r.txn_id,
            account_id: r.account_id,
            unit: Unit::parse(&r.unit).ok_or_else(|| corrupt("ledger_entries.unit", &r.unit))?,
            amount: r.amount,
            balance_after: r.balance_after,
            staff_id: r.staff_id.map(StaffId),
            store_id: r.store_id.map(StoreId),
            created_at: r.created_at,
            memo: r.memo,
            rule: r.rule,
            memo_en: r.memo_en,
            prev_hash: r.prev_hash,
            hash: r.hash,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct AccountRow {
    tenant_id: Uuid,
    id: Uuid,
    kind: String,
    #[allow(dead_code)] // implied by the kind; stored for ad-hoc SQL reports
    unit: String,
    card_id: Option<Uuid>,
    customer_id: Option<Uuid>,
    store_id: Option<Uuid>,
    tender: Option<String>,
    balance: i64,
    floor: Option<i64>,
    created_at: DateTime<Utc>,
}

impl TryFrom<AccountRow> for AccountRecord {
    type Error = StoreError;
    fn try_from(r: AccountRow) -> Result<Self, StoreError> {
        let kind =
            AccountKind::parse(&r.kind).ok_or_else(|| corrupt("ledger_accounts.kind", &r.kind))?;
        let tender = match r.tender {
            Some(t) => {
                Some(Tender::parse(&t).ok_or_else(|| corrupt("ledger_accounts.tender", &t))?)
            }
            None => None,
        };
        Ok(AccountRecord {
            tenant_id: TenantId(r.tenant_id),
            id: r.id,
            key: AccountKey {
                kind,
                card: r.card_id.map(CardId),
                customer: r.customer_id.map(CustomerId),
                store: r.store_id.map(StoreId),
                tender,
            },
            balance: r.balance,
            floor: r.floor,
            created_at: r.created_at,
        })
    }
}

pub(crate) const CHECKOUT_COLS: &str = "tenant_id, id, store_id, staff_id, customer_id, card_id, number, business_date, created_at, \
    party_size, table_label, gross, discount, amount_due, breakdown, tenders, receipt, status, refunded";

#[derive(sqlx::FromRow)]
pub(crate) struct CheckoutRow {
    tenant_id: Uuid,
    id: Uuid,
    store_id: Uuid,
    staff_id: Uuid,
    customer_id: Option<Uuid>,
    card_id: Option<Uuid>,
    number: String,
    business_date: chrono::NaiveDate,
    created_at: DateTime<Utc>,
    party_size: Option<i32>,
    table_label: Option<String>,
    gross: i64,
    discount: i64,
    amount_due: i64,
    breakdown: String,
    tenders: String,
    receipt: String,
    status: String,
    refunded: i64,
}

impl TryFrom<CheckoutRow> for crate::ledger::CheckoutRecord {
    type Error = StoreError;
    fn try_from(r: CheckoutRow) -> Result<Self, StoreError> {
        let json = |what: &str, v: &str| serde_json::from_str(v).map_err(|_| corrupt(what, v));
        Ok(crate::ledger::CheckoutRecord {
            tenant_id: TenantId(r.tenant_id),
            id: r.id,
            store_id: StoreId(r.store_id),
            store_code: r.number.split('-').next().unwrap_or_default().to_string(),
            staff_id: StaffId(r.staff_id),
            customer_id: r.customer_id.map(CustomerId),
            card_id: r.card_id.map(CardId),
            number: r.number,
            business_date: r.business_date,
            created_at: r.created_at,
            party_size: r.party_size,
            table_label: r.table_label,
            gross: r.gross,
            discount: r.discount,
            amount_due: r.amount_due,
            breakdown: json("checkouts.breakdown", &r.breakdown)?,
            tenders: json("checkouts.tenders", &r.tenders)?,
            receipt: json("checkouts.receipt", &r.receipt)?,
            status: r.status,
            refunded: r.refunded,
            lines: Vec::new(),
        })
    }
}

/// The key of a store's day lock on PostgreSQL: posts at the store take it shared, closing
/// one of its days exclusively. An advisory lock rather than a row lock because its queue
/// is fair: with a close waiting, new posts queue behind it instead of overtaking it
/// (share row locks would let a busy store's tills starve the close).
/// Where a post's balance changes stand after `queue_balances`.
pub(crate) enum Balances {
    /// One statement, queued: its rows are the accounts' balances after.
    Queued(crate::writer::Ticket),
    /// Moved already: each posting's balance after, in the group's order.
    Moved(Vec<i64>),
}

pub(crate) fn store_day_lock(store: StoreId) -> i64 {
    let b = store.0.as_u128();
    ((b >> 64) as u64 ^ b as u64) as i64
}

/// Microseconds since the epoch: the timestamp form the hash covers.
pub(crate) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

macro_rules! impl_ledger_storage {
    ($ty:ty, $db:ty) => {
        use $crate::ledger::{LedgerChange, LedgerStore, LiabilityRow, PinState, PostOutcome, PostingSpec};
        use $crate::ledger_shared::{AccountRow, EntryRow, TxnRow, ACCOUNT_COLS, ENTRY_COLS, TXN_COLS};
        use patron_domain::card::CardStatus;
        use patron_domain::ids::CardId;
        use patron_domain::ledger::{entry_hash, AccountKey, EntryFields, GENESIS_HASH};
        use $crate::ledger_shared::Balances;
        use $crate::writer::Expect;

        async fn insert_card_tx(conn: &mut <$db as sqlx::Database>::Connection, c: &Card) -> Result<()> {
            sqlx::query(
                "INSERT INTO cards (tenant_id, id, number, customer_id, medium, status, issued_at, kinds, store_id, pin_hash, \
                 pool_to_org, status_changed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            )
            .bind(c.tenant_id.0)
            .bind(c.id.0)
            .bind(&c.number)
            .bind(c.customer_id.map(|x| x.0))
            .bind(c.medium.as_str())
            .bind(c.status.as_str())
            .bind(c.issued_at)
            .bind(c.kinds.to_db())
            .bind(c.store_id.map(|x| x.0))
            .bind(&c.pin_hash)
            .bind(c.pool_to_org)
            .bind(c.issued_at)
            .execute(&mut *conn)
            .await?;
            Ok(())
        }

        /// Moves the balances of a transaction's accounts. When all its accounts are
        /// distinct, as one statement, queued (its rows come with the writer's next
        /// flush): on PostgreSQL an upsert taking its rows in id order, on SQLite an
        /// `UPDATE … FROM (VALUES …)`. Otherwise (an account with noted postings of its
        /// own) one statement per posting, sent now, in id order too: every post takes
        /// its accounts in one global order, so concurrent posts never deadlock. Either
        /// way the statement itself refuses to cross an account's floor, so two
        /// concurrent spends cannot both pass a balance check made earlier.
        async fn queue_balances<'c, 'p>(
            w: &mut $crate::writer::Writer<'c, $db>,
            txn: &TxnRecord,
            pg: bool,
            group: &[(uuid::Uuid, &'p PostingSpec)],
        ) -> Result<Balances> {
            let t = txn.tenant_id.0;
            let distinct = group.iter().map(|(id, _)| *id).collect::<std::collections::BTreeSet<_>>().len() == group.len();
            if !distinct || group.is_empty() {
                let mut order: Vec<usize> = (0..group.len()).collect();
                order.sort_by_key(|&i| (group[i].0, i));
                let mut after = vec![0; group.len()];
                for i in order {
                    after[i] = apply_balance(w, txn, group[i].0, group[i].1).await?;
                }
                return Ok(Balances::Moved(after));
            }
            let stmt = if pg {
                // An upsert, row by row in id order: it creates an account on its first
                // use and waits for one another post is creating, so no row is ever
                // taken out of order (an UPDATE would skip a row created after its
                // snapshot, and taking it afterwards could deadlock).
                w.stmt(
                    "INSERT INTO ledger_accounts (tenant_id, id, kind, unit, card_id, customer_id, store_id, tender, balance, floor, created_at) \
                     SELECT ",
                )
                .push_bind(t)
                // The table's CHECK judges the row proposed for insertion even when it
                // conflicts: a spend from an existing account proposes no floor.
                .sql(
                    ", v.id, v.kind, v.unit, v.card_id, v.customer_id, v.store_id, v.tender, v.d, \
                     CASE WHEN v.floor IS NULL OR v.d >= v.floor THEN v.floor END, ",
                )
                .push_bind(txn.created_at)
                .sql(" FROM (")
                .push_values(group, |r, (id, p)| {
                    r.push_bind(*id)
                        .push_bind(p.key.kind.as_str())
                        .push_bind(p.key.kind.unit().as_str())
                        .push_bind(p.key.card.map(|x| x.0))
                        .push_bind(p.key.customer.map(|x| x.0))
                        .push_bind(p.key.store.map(|x| x.0))
                        .push_bind(p.key.tender.map(|x| x.as_str()))
                        .push_bind(p.amount)
                        .push_bind(p.floor);
                })
                // A new account is never created below its floor (its first posting is
                // a spend): such a row is left out, and `apply_balance` refuses it.
                .sql(
                    ") AS v (id, kind, unit, card_id, customer_id, store_id, tender, d, floor) \
                     WHERE v.floor IS NULL OR v.d >= v.floor OR EXISTS (SELECT 1 FROM ledger_accounts x WHERE x.tenant_id = ",
                )
                .push_bind(t)
                .sql(
                    " AND x.id = v.id) ORDER BY v.id \
                     ON CONFLICT (tenant_id, id) DO UPDATE SET balance = ledger_accounts.balance + excluded.balance \
                     WHERE ledger_accounts.floor IS NULL OR ledger_accounts.balance + excluded.balance >= ledger_accounts.floor \
                     RETURNING id, balance",
                )
            } else {
                // SQLite names the columns of VALUES column1, column2.
                w.stmt("UPDATE ledger_accounts SET balance = balance + v.d FROM (SELECT column1 AS id, column2 AS d FROM (")
                    .push_values(group, |r, (id, p)| {
                        r.push_bind(*id).push_bind(p.amount);
                    })
                    .sql(")) AS v WHERE ledger_accounts.tenant_id = ")
                    .push_bind(t)
                    .sql(
                        " AND ledger_accounts.id = v.id AND (ledger_accounts.floor IS NULL OR ledger_accounts.balance + v.d >= ledger_accounts.floor) \
                         RETURNING ledger_accounts.id, ledger_accounts.balance",
                    )
            };
            Ok(Balances::Queued(stmt.rows().await?))
        }

        /// Completes `queue_balances` after the flush, appending `(account, posting,
        /// balance after)` to `lines` in the group's order. An account missing from the
        /// queued statement's answer (the floor refused, or on SQLite its first use) goes
        /// one statement of its own.
        async fn finish_balances<'c, 'p>(
            w: &mut $crate::writer::Writer<'c, $db>,
            txn: &TxnRecord,
            group: &[(uuid::Uuid, &'p PostingSpec)],
            balances: Balances,
            lines: &mut Vec<(uuid::Uuid, &'p PostingSpec, i64)>,
        ) -> Result<()> {
            let ticket = match balances {
                Balances::Moved(after) => {
                    lines.extend(group.iter().zip(after).map(|((id, p), b)| (*id, *p, b)));
                    return Ok(());
                }
                Balances::Queued(ticket) => ticket,
            };
            let moved: std::collections::HashMap<uuid::Uuid, i64> = w.take::<(uuid::Uuid, i64)>(ticket)?.into_iter().collect();
            for (id, p) in group {
                let balance_after = match moved.get(id) {
                    Some(b) => *b,
                    None => apply_balance(w, txn, *id, p).await?,
                };
                lines.push((*id, *p, balance_after));
            }
            Ok(())
        }

        /// One posting's balance change (see `apply_balances`), creating the account on
        /// its first use.
        async fn apply_balance<'c>(
            w: &mut $crate::writer::Writer<'c, $db>,
            txn: &TxnRecord,
            id: uuid::Uuid,
            p: &PostingSpec,
        ) -> Result<i64> {
            let t = txn.tenant_id.0;
            const UPDATE: &str = "UPDATE ledger_accounts SET balance = balance + $3 WHERE tenant_id = $1 AND id = $2 \
                 AND (floor IS NULL OR balance + $3 >= floor) RETURNING balance";
            let mut row: Option<(i64,)> = w.stmt(UPDATE).bind(t).bind(id).bind(p.amount).fetch_optional().await?;
            if row.is_none() && p.floor.is_none_or(|f| p.amount >= f) {
                // First use of this account (or the floor refused): create it.
                row = w
                    .stmt(
                        "INSERT INTO ledger_accounts (tenant_id, id, kind, unit, card_id, customer_id, store_id, tender, balance, floor, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (tenant_id, id) DO NOTHING RETURNING balance",
                    )
                    .bind(t)
                    .bind(id)
                    .bind(p.key.kind.as_str())
                    .bind(p.key.kind.unit().as_str())
                    .bind(p.key.card.map(|x| x.0))
                    .bind(p.key.customer.map(|x| x.0))
                    .bind(p.key.store.map(|x| x.0))
                    .bind(p.key.tender.map(|x| x.as_str()))
                    .bind(p.amount)
                    .bind(p.floor)
                    .bind(txn.created_at)
                    .fetch_optional()
                    .await?;
                if row.is_none() {
                    // Created concurrently by another post: apply the change to it.
                    row = w.stmt(UPDATE).bind(t).bind(id).bind(p.amount).fetch_optional().await?;
                }
            }
            row.map(|(b,)| b).ok_or(StoreError::Insufficient { account: id })
        }

        /// Moves points lots along with a transaction's points postings (see `LotRule`):
        /// withdrawals first (collecting what they took), then deposits.
        async fn apply_lots<'c>(
            w: &mut $crate::writer::Writer<'c, $db>,
            txn: &TxnRecord,
            lines: &[(uuid::Uuid, &PostingSpec, i64)],
        ) -> Result<()> {
            use patron_domain::ledger::AccountKind;
            use $crate::ledger::LotRule;
            let t = txn.tenant_id.0;
            let is_lotted = |p: &PostingSpec| matches!(p.key.kind, AccountKind::CardPoints | AccountKind::OrgPoints);
            if !lines.iter().any(|(_, p, _)| is_lotted(p)) {
                return Ok(());
            }
            // In a reversal: what the reversed transaction did to lots (lot, account, points).
            let reversed: Vec<(uuid::Uuid, uuid::Uuid, i64)> = match txn.reverses {
                Some(r) => w
                    .stmt(
                        "SELECT m.lot_id, l.account_id, m.points FROM points_lot_moves m \
                         JOIN points_lots l ON l.tenant_id = m.tenant_id AND l.id = m.lot_id \
                         WHERE m.tenant_id = $1 AND m.txn_id = $2 ORDER BY m.lot_id",
                    )
                    .bind(t)
                    .bind(r)
                    .fetch_all()
                    .await?,
                None => Vec::new(),
            };
            let mut moves: std::collections::BTreeMap<uuid::Uuid, i64> = Default::default();
            // Lots taken by this transaction, for carrying over: (earned_on, expires_on, points).
            let mut taken: std::collections::VecDeque<(chrono::NaiveDate, Option<chrono::NaiveDate>, i64)> = Default::default();
            for (account, p, _) in lines.iter().filter(|(_, p, _)| is_lotted(p) && p.amount < 0) {
                let rows: Vec<(uuid::Uuid, chrono::NaiveDate, Option<chrono::NaiveDate>, i64)> = w
                    .stmt(
                        "SELECT id, earned_on, expires_on, remaining FROM points_lots \
                         WHERE tenant_id = $1 AND account_id = $2 AND remaining > 0",
                    )
                    .bind(t)
                    .bind(*account)
                    .fetch_all()
                    .await?;
                let mut lots: Vec<patron_domain::points::Lot> = rows
                    .iter()
                    .map(|(id, earned_on, expires_on, remaining)| patron_domain::points::Lot {
                        id: *id,
                        earned_on: *earned_on,
                        expires_on: *expires_on,
                        remaining: *remaining - moves.get(id).map_or(0, |m| -m),
                    })
                    .filter(|l| l.remaining > 0)
                    .collect();
                // Undoing an earn takes back the points it created first.
                let created: std::collections::BTreeSet<uuid::Uuid> =
                    reversed.iter().filter(|(_, a, pts)| a == account && *pts > 0).map(|(l, _, _)| *l).collect();
                let (first, rest): (Vec<_>, Vec<_>) = lots.drain(..).partition(|l| created.contains(&l.id));
                let need = -p.amount;
                let mut plan = Vec::new();
                let mut left = need;
                for l in &first {
                    let x = left.min(l.remaining);
                    if x > 0 {
                        plan.push((l.id, x));
                        left -= x;
                    }
                }
                if left > 0 {
                    let more = patron_domain::points::consume_lots(&rest, left).map_err(|_| {
                        StoreError::Corrupt(format!("the points lots of account {account} hold less than its balance"))
                    })?;
                    plan.extend(more);
                }
                for (lot_id, x) in plan {
                    let lot = rows.iter().find(|r| r.0 == lot_id).expect("planned from these rows");
                    if let LotRule::ExpireBefore(day) = p.lot {
                        if lot.2.is_none_or(|e| e >= day) {
                            return Err(StoreError::Conflict { what: "points_lots_changed" });
                        }
                    }
                    *moves.entry(lot_id).or_default() -= x;
                    taken.push_back((lot.1, lot.2, x));
                }
            }
            let mut lot_no = 0;
            // Lots created here start full: no move of theirs needs an update.
            let mut fresh: std::collections::BTreeSet<uuid::Uuid> = Default::default();
            for (account, p, _) in lines.iter().filter(|(_, p, _)| is_lotted(p) && p.amount > 0) {
                let mut left = p.amount;
                let mut new_lots: Vec<(chrono::NaiveDate, Option<chrono::NaiveDate>, i64)> = Vec::new();
                match p.lot {
                    LotRule::New { earned_on, expires_on } => new_lots.push((earned_on, expires_on, left)),
                    LotRule::ExpireBefore(_) => {
                        return Err(StoreError::Invalid("an expiry cannot deposit points".into()));
                    }
                    LotRule::Auto => {
                        // A reversal puts back what the reversed transaction took from this account.
                        for (lot, a, pts) in &reversed {
                            if a == account && *pts < 0 && left > 0 {
                                let already = moves.get(lot).copied().unwrap_or(0).max(0);
                                let x = left.min(-pts - already);
                                if x > 0 {
                                    *moves.entry(*lot).or_default() += x;
                                    left -= x;
                                }
                            }
                        }
                        // A transfer or replacement carries the taken lots over, expiry and all.
                        while left > 0 {
                            let Some((earned_on, expires_on, pts)) = taken.pop_front() else {
                                return Err(StoreError::Invalid(format!(
                                    "{} points deposited without a lot rule", left
                                )));
                            };
                            let x = left.min(pts);
                            new_lots.push((earned_on, expires_on, x));
                            if pts > x {
                                taken.push_front((earned_on, expires_on, pts - x));
                            }
                            left -= x;
                        }
                    }
                }
                for (earned_on, expires_on, pts) in new_lots {
                    // Deterministic: the transaction's id and the lot's place in it.
                    lot_no += 1;
                    let id = uuid::Uuid::new_v5(&txn.id, format!("points-lot-{lot_no}").as_bytes());
                    w.stmt(
                        "INSERT INTO points_lots (tenant_id, id, account_id, txn_id, earned_on, expires_on, points, remaining, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8)",
                    )
                    .bind(t)
                    .bind(id)
                    .bind(*account)
                    .bind(txn.id)
                    .bind(earned_on)
                    .bind(expires_on)
                    .bind(pts)
                    .bind(txn.created_at)
                    .exec(Expect::Any)
                    .await?;
                    moves.insert(id, pts);
                    fresh.insert(id);
                }
            }
            moves.retain(|_, x| *x != 0);
            for (&lot, &x) in moves.iter().filter(|(lot, _)| !fresh.contains(*lot)) {
                w.stmt(
                    "UPDATE points_lots SET remaining = remaining + $3 WHERE tenant_id = $1 AND id = $2 \
                     AND remaining + $3 >= 0 AND remaining + $3 <= points",
                )
                .bind(t)
                .bind(lot)
                .bind(x)
                .exec(Expect::Rows(1, StoreError::Corrupt(format!("points lot {lot} cannot move by {x}"))))
                .await?;
            }
            if !moves.is_empty() {
                w.stmt("INSERT INTO points_lot_moves (tenant_id, txn_id, lot_id, points) ")
                    .push_values(&moves, |r, (lot, x)| {
                        r.push_bind(t).push_bind(txn.id).push_bind(*lot).push_bind(*x);
                    })
                    .exec(Expect::Any)
                    .await?;
            }
            Ok(())
        }

        /// The receipt number a bill takes: counted per store and business day.
        fn receipt_number(c: &$crate::ledger::CheckoutRecord, n: i64) -> String {
            format!("{}{:04}", receipt_prefix(c), n)
        }

        fn receipt_prefix(c: &$crate::ledger::CheckoutRecord) -> String {
            format!("{}-{}-", c.store_code, c.business_date.format("%Y%m%d"))
        }

        /// Stores a bill and its lines under `number`.
        async fn insert_checkout<'c>(
            w: &mut $crate::writer::Writer<'c, $db>,
            txn: &TxnRecord,
            c: &$crate::ledger::CheckoutRecord,
            number: &str,
        ) -> Result<()> {
            let t = txn.tenant_id.0;
            w.stmt(
                "INSERT INTO checkouts (tenant_id, id, store_id, staff_id, customer_id, card_id, number, business_date, created_at, \
                 party_size, table_label, gross, discount, amount_due, breakdown, tenders, receipt, status, refunded) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
            )
            .bind(t)
            .bind(txn.id)
            .bind(c.store_id.0)
            .bind(c.staff_id.0)
            .bind(c.customer_id.map(|x| x.0))
            .bind(c.card_id.map(|x| x.0))
            .bind(number.to_string())
            .bind(c.business_date)
            .bind(txn.created_at)
            .bind(c.party_size)
            .bind(c.table_label.clone())
            .bind(c.gross)
            .bind(c.discount)
            .bind(c.amount_due)
            .bind(c.breakdown.to_string())
            .bind(c.tenders.to_string())
            .bind(c.receipt.to_string())
            .bind(c.status.clone())
            .bind(c.refunded)
            .exec(Expect::Any)
            .await?;
            if !c.lines.is_empty() {
                w.stmt("INSERT INTO checkout_lines (tenant_id, checkout_id, line_no, item_id, name, quantity, unit_price, gross, net) ")
                    .push_values(&c.lines, |r, l| {
                        r.push_bind(t)
                            .push_bind(txn.id)
                            .push_bind(l.line_no)
                            .push_bind(l.item_id.map(|x| x.0))
                            .push_bind(l.name.clone())
                            .push_bind(l.quantity)
                            .push_bind(l.unit_price)
                            .push_bind(l.gross)
                            .push_bind(l.net);
                    })
                    .exec(Expect::Any)
                    .await?;
            }
            Ok(())
        }

        /// Takes the bill's receipt number from its store's counter, which every till of
        /// the store needs: queued last, just before the chain head. PostgreSQL stores the
        /// bill before (under its transaction id) and numbers it here in one statement;
        /// SQLite (no data-modifying CTEs) counts here and stores the bill in
        /// `finish_number`.
        async fn queue_number<'c>(
            w: &mut $crate::writer::Writer<'c, $db>,
            txn: &TxnRecord,
            c: &$crate::ledger::CheckoutRecord,
            pg: bool,
        ) -> Result<$crate::writer::Ticket> {
            let t = txn.tenant_id.0;
            if pg {
                return w
                    .stmt(
                        "WITH n AS (INSERT INTO receipt_counters (tenant_id, store_id, business_date, n) VALUES ($1, $2, $3, 1) \
                         ON CONFLICT (tenant_id, store_id, business_date) DO UPDATE SET n = receipt_counters.n + 1 RETURNING n) \
                         UPDATE checkouts SET number = $5 || CASE WHEN n.n < 10000 THEN lpad(n.n::text, 4, '0') ELSE n.n::text END \
                         FROM n WHERE tenant_id = $1 AND id = $4 RETURNING number",
                    )
                    .bind(t)
                    .bind(c.store_id.0)
                    .bind(c.business_date)
                    .bind(txn.id)
                    .bind(receipt_prefix(c))
                    .rows()
                    .await;
            }
            w.stmt(
                "INSERT INTO receipt_counters (tenant_id, store_id, business_date, n) VALUES ($1, $2, $3, 1) \
                 ON CONFLICT (tenant_id, store_id, business_date) DO UPDATE SET n = receipt_counters.n + 1 RETURNING n",
            )
            .bind(t)
            .bind(c.store_id.0)
            .bind(c.business_date)
            .rows()
            .await
        }

        /// Completes `queue_number` after the flush: the bill's receipt number.
        async fn finish_number<'c>(
            w: &mut $crate::writer::Writer<'c, $db>,
            txn: &TxnRecord,
            c: &$crate::ledger::CheckoutRecord,
            pg: bool,
            ticket: $crate::writer::Ticket,
        ) -> Result<(String, Option<i64>)> {
            let missing = || StoreError::Corrupt("the receipt counter answered nothing".into());
            if pg {
                let (number,) = w.take::<(String,)>(ticket)?.into_iter().next().ok_or_else(missing)?;
                return Ok((number, None));
            }
            let (n,) = w.take::<(i64,)>(ticket)?.into_iter().next().ok_or_else(missing)?;
            let number = receipt_number(c, n);
            insert_checkout(w, txn, c, &number).await?;
            Ok((number, Some(n)))
        }

        /// The writer's guess for a post (predictions.rs), if it can make one: not for an
        /// account posted twice (noted postings) nor for a daily adjustment limit, which
        /// reads under the head.
        fn predict(
            storage: &$ty,
            txn: &TxnRecord,
            changes: &[LedgerChange],
            customer_side: &[(uuid::Uuid, &PostingSpec)],
            store_side: &[(uuid::Uuid, &PostingSpec)],
            checkout: Option<&$crate::ledger::CheckoutRecord>,
            entry_count: usize,
        ) -> Option<$crate::predictions::Guess> {
            let p = storage.predictions()?;
            if changes.iter().any(|c| matches!(c, LedgerChange::AdjustmentWithinLimit { .. })) {
                return None;
            }
            let moves: Vec<$crate::predictions::Move> = customer_side
                .iter()
                .chain(store_side)
                .map(|(id, p)| $crate::predictions::Move { account: *id, amount: p.amount, floor: p.floor })
                .collect();
            if moves.iter().map(|m| m.account).collect::<std::collections::BTreeSet<_>>().len() != moves.len() {
                return None;
            }
            let mut p = p.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            p.guess(txn.tenant_id.0, &moves, entry_count > 0, checkout.map(|c| (c.store_id.0, c.business_date)))
        }

        /// Moves the balances of a guessed post (SQLite, one statement): each account
        /// from the balance the guess gave it, else nothing (`GUESS_WRONG`). Appends
        /// `(account, posting, balance after)` to `lines` in `moving`'s order.
        async fn queue_guessed_balances<'c, 'p>(
            w: &mut $crate::writer::Writer<'c, $db>,
            txn: &TxnRecord,
            moving: &[(uuid::Uuid, &'p PostingSpec)],
            before: &[i64],
            lines: &mut Vec<(uuid::Uuid, &'p PostingSpec, i64)>,
        ) -> Result<()> {
            if moving.is_empty() {
                return Ok(());
            }
            let rows: Vec<(uuid::Uuid, &PostingSpec, i64, i64)> =
                moving.iter().zip(before).map(|((id, p), b)| (*id, *p, *b, b + p.amount)).collect();
            w.stmt("UPDATE ledger_accounts SET balance = v.b FROM (SELECT column1 AS id, column2 AS was, column3 AS b FROM (")
                .push_values(&rows, |r, (id, _, was, after)| {
                    r.push_bind(*id).push_bind(*was).push_bind(*after);
                })
                .sql(")) AS v WHERE ledger_accounts.tenant_id = ")
                .push_bind(txn.tenant_id.0)
                .sql(
                    " AND ledger_accounts.id = v.id AND ledger_accounts.balance = v.was \
                     AND (ledger_accounts.floor IS NULL OR v.b >= ledger_accounts.floor)",
                )
                .exec(Expect::Rows(rows.len() as u64, StoreError::Conflict { what: $crate::predictions::GUESS_WRONG }))
                .await?;
            lines.extend(rows.into_iter().map(|(id, p, _, after)| (id, p, after)));
            Ok(())
        }

        async fn apply_checkout_change(
            conn: &mut <$db as sqlx::Database>::Connection,
            txn: &TxnRecord,
            change: &LedgerChange,
        ) -> Result<()> {
            let t = txn.tenant_id.0;
            match change {
                LedgerChange::CheckoutStatus { checkout, status, refunded, lines } => {
                    let r = sqlx::query(
                        "UPDATE checkouts SET status = $3, refunded = refunded + $4 WHERE tenant_id = $1 AND id = $2 \
                         AND refunded + $4 <= amount_due",
                    )
                    .bind(t)
                    .bind(*checkout)
                    .bind(status)
                    .bind(*refunded)
                    .execute(&mut *conn)
                    .await?;
                    if r.rows_affected() != 1 {
                        return Err(StoreError::Conflict { what: "refund_exceeds_bill" });
                    }
                    for (line_no, qty) in lines {
                        let r = sqlx::query(
                            "UPDATE checkout_lines SET refunded_quantity = refunded_quantity + $4 \
                             WHERE tenant_id = $1 AND checkout_id = $2 AND line_no = $3 AND refunded_quantity + $4 <= quantity",
                        )
                        .bind(t)
                        .bind(*checkout)
                        .bind(*line_no)
                        .bind(*qty)
                        .execute(&mut *conn)
                        .await?;
                        if r.rows_affected() != 1 {
                            return Err(StoreError::Conflict { what: "refund_exceeds_bill" });
                        }
                    }
                }
                LedgerChange::VisitRefund { txn: original, amount } => {
                    sqlx::query(
                        "UPDATE visits SET growth = CASE WHEN growth > $3 THEN growth - $3 ELSE 0 END \
                         WHERE tenant_id = $1 AND txn_id = $2",
                    )
                    .bind(t)
                    .bind(*original)
                    .bind(*amount)
                    .execute(&mut *conn)
                    .await?;
                }
                LedgerChange::CouponRestore { coupon } => {
                    sqlx::query(
                        "UPDATE coupons SET status = 'issued', redeemed_at = NULL, redeemed_by = NULL, redeemed_store_id = NULL, \
                         redeemed_staff_id = NULL, redeem_key = NULL WHERE tenant_id = $1 AND id = $2 AND status = 'redeemed'",
                    )
                    .bind(t)
                    .bind(*coupon)
                    .execute(&mut *conn)
                    .await?;
                }
                LedgerChange::CouponVoid { coupon, reason } => {
                    let r = sqlx::query(
                        "UPDATE coupons SET status = 'voided', voided_at = $3, voided_by = $4, void_reason = $5 \
                         WHERE tenant_id = $1 AND id = $2 AND status = 'issued'",
                    )
                    .bind(t)
                    .bind(*coupon)
                    .bind(txn.created_at)
                    .bind(txn.staff_id.map(|x| x.0))
                    .bind(reason)
                    .execute(&mut *conn)
                    .await?;
                    if r.rows_affected() != 1 {
                        return Err(StoreError::Conflict { what: "coupon_used" });
                    }
                }
                _ => unreachable!("other changes are applied elsewhere"),
            }
            Ok(())
        }

        async fn apply_loyalty_change<'c>(
            w: &mut $crate::writer::Writer<'c, $db>,
            txn: &TxnRecord,
            change: &LedgerChange,
        ) -> Result<()> {
            let t = txn.tenant_id.0;
            match change {
                LedgerChange::Visit(v) => {
                    w.stmt(
                        "INSERT INTO visits (tenant_id, id, customer_id, card_id, store_id, staff_id, txn_id, source, occurred_at, local_date, amount, growth) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                    )
                    .bind(t)
                    .bind(v.id)
                    .bind(v.customer_id.map(|x| x.0))
                    .bind(v.card_id.map(|x| x.0))
                    .bind(v.store_id.map(|x| x.0))
                    .bind(v.staff_id.map(|x| x.0))
                    .bind(v.txn_id.or(Some(txn.id)))
                    .bind(v.source.clone())
                    .bind(v.occurred_at)
                    .bind(v.local_date)
                    .bind(v.amount)
                    .bind(v.growth)
                    .exec(Expect::Any)
                    .await?;
                }
                LedgerChange::VisitsReversed { txn: original } => {
                    let tx = w.conn().await?;
                    sqlx::query("UPDATE visits SET reversed_at = $3 WHERE tenant_id = $1 AND txn_id = $2 AND reversed_at IS NULL")
                        .bind(t)
                        .bind(*original)
                        .bind(txn.created_at)
                        .execute(&mut *tx)
                        .await?;
                }
                LedgerChange::Level(l) => {
                    let tx = w.conn().await?;
                    // A concurrent post changed the level first: this decision is stale.
                    let _applied = $crate::ledger_shared::apply_level_change!($db, tx, l);
                }
                LedgerChange::GiftTaken { gift } => {
                    let tx = w.conn().await?;
                    let r = sqlx::query(
                        "UPDATE gifts SET stock = CASE WHEN stock IS NULL THEN NULL ELSE stock - 1 END \
                         WHERE tenant_id = $1 AND id = $2 AND (stock IS NULL OR stock > 0)",
                    )
                    .bind(t)
                    .bind(*gift)
                    .execute(&mut *tx)
                    .await?;
                    if r.rows_affected() != 1 {
                        return Err(StoreError::Conflict { what: "gift_out_of_stock" });
                    }
                }
                LedgerChange::GiftReturned { gift } => {
                    let tx = w.conn().await?;
                    sqlx::query("UPDATE gifts SET stock = stock + 1 WHERE tenant_id = $1 AND id = $2 AND stock IS NOT NULL")
                        .bind(t)
                        .bind(*gift)
                        .execute(&mut *tx)
                        .await?;
                }
                _ => unreachable!("card changes are applied by post"),
            }
            Ok(())
        }

        /// What a post answers when its idempotency key was used before: the original
        /// transaction for the same request, a mismatch for another; `None` if unused.
        async fn earlier_post(conn: &mut <$db as sqlx::Database>::Connection, txn: &TxnRecord) -> Result<Option<PostOutcome>> {
            let sql = format!("SELECT {TXN_COLS} FROM ledger_txns WHERE tenant_id = $1 AND idempotency_key = $2");
            let row: Option<TxnRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(txn.tenant_id.0)
                .bind(&txn.idempotency_key)
                .fetch_optional(&mut *conn)
                .await?;
            let Some(existing) = row.map(TxnRecord::try_from).transpose()? else {
                return Ok(None);
            };
            if existing.request_hash == txn.request_hash {
                Ok(Some(PostOutcome::Replayed { txn: Box::new(existing) }))
            } else {
                Err(StoreError::IdempotencyMismatch)
            }
        }

        /// Why a post's coupon redemption from a read coupon (`CouponSeen`) found it
        /// changed: no longer issued (`coupon_already_redeemed`, `coupon_voided`,
        /// `coupon_expired`), else `coupon_changed` (another owner after a merge).
        async fn coupon_refusal(conn: &mut <$db as sqlx::Database>::Connection, txn: &TxnRecord, changes: &[LedgerChange]) -> StoreError {
            for change in changes {
                if let LedgerChange::CouponRedeem { coupon, seen: Some(_), .. } = change {
                    let status: Result<Option<(String,)>, sqlx::Error> =
                        sqlx::query_as("SELECT status FROM coupons WHERE tenant_id = $1 AND id = $2")
                            .bind(txn.tenant_id.0)
                            .bind(*coupon)
                            .fetch_optional(&mut *conn)
                            .await;
                    match status {
                        Ok(Some((s,))) if s != "issued" => return $crate::coupons_shared::not_issued(&s),
                        Ok(_) => {}
                        Err(e) => return e.into(),
                    }
                }
            }
            StoreError::Conflict { what: $crate::coupons_shared::COUPON_CHANGED }
        }

        impl $ty {
            /// `LedgerStore::post`, in the task it runs in.
            async fn post_now(
                &self,
                txn: &TxnRecord,
                changes: &[LedgerChange],
                postings: &[PostingSpec],
                timeline: Option<&patron_domain::timeline::TimelineEvent>,
            ) -> Result<PostOutcome> {
                // SQLite: first in one batch from the writer's predictions; when one was
                // wrong (nothing changed), again reading what the post needs.
                let guess = self.predictions().is_some();
                match self.post_once(txn, changes, postings, timeline, guess).await {
                    Err(StoreError::Conflict { what }) if what == $crate::predictions::GUESS_WRONG => {
                        if let Some(p) = self.predictions() {
                            p.lock().unwrap_or_else(std::sync::PoisonError::into_inner).wrong();
                        }
                        self.post_once(txn, changes, postings, timeline, false).await
                    }
                    outcome => outcome,
                }
            }

            fn forget_predictions(&self) {
                if let Some(p) = self.predictions() {
                    p.lock().unwrap_or_else(std::sync::PoisonError::into_inner).forget();
                }
            }

            /// One attempt at a post; with `guess`, from the writer's predictions if it has
            /// them (refused with `GUESS_WRONG` when one was wrong).
            async fn post_once(
                &self,
                txn: &TxnRecord,
                changes: &[LedgerChange],
                postings: &[PostingSpec],
                timeline: Option<&patron_domain::timeline::TimelineEvent>,
                guess: bool,
            ) -> Result<PostOutcome> {
                let t = txn.tenant_id.0;
                let pg = <Self as $crate::Storage>::backend(self) == $crate::Backend::Postgres;
                // On SQLite the writer sends the statements below in two or three batches
                // (see writer.rs), the last with `COMMIT`, perhaps shared with the posts
                // that were waiting meanwhile; on PostgreSQL one by one.
                let mut w = self.post_writer().await?;
                if let Some(store) = txn.store_id
                    && pg
                {
                    // On PostgreSQL, posts take the store's day lock shared and a close takes
                    // it exclusively (`close_business_day`): a close waits for the posts in
                    // flight, and a post that waited for a close sees the day closed below
                    // (its next statement reads after the close's commit). SQLite's single
                    // writer connection runs the two one after the other already.
                    w.stmt("SELECT pg_advisory_xact_lock_shared($1)")
                        .bind($crate::ledger_shared::store_day_lock(store))
                        .exec(Expect::Any)
                        .await?;
                }
                let txn_stmt = w.next_statement();
                let mut guessed = false;
                let body: Result<(Vec<EntryRecord>, Option<String>, $crate::predictions::Left)> = async {
                    // 1. Idempotency: the unique key of `ledger_txns` refuses a key seen
                    // before, and the original transaction answers instead (below, after
                    // the body). No lookup first: that would be one more statement on
                    // every post. A closed business day of the store takes no postings
                    // (settlement.rs): the transaction is recorded only if no closed day of
                    // its store covers its time (one statement for the check and the
                    // insert).
                    w.stmt(&format!(
                        "INSERT INTO ledger_txns ({TXN_COLS}) SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15 \
                         WHERE $8 IS NULL OR NOT EXISTS (SELECT 1 FROM business_days WHERE tenant_id = $1 AND store_id = $8 \
                         AND status = 'closed' AND starts_at <= $15 AND ends_at > $15)"
                    ))
                    .bind(t)
                    .bind(txn.id)
                    .bind(txn.kind.clone())
                    .bind(txn.idempotency_key.clone())
                    .bind(txn.request_hash.clone())
                    .bind(txn.card_id.map(|x| x.0))
                    .bind(txn.customer_id.map(|x| x.0))
                    .bind(txn.store_id.map(|x| x.0))
                    .bind(txn.staff_id.map(|x| x.0))
                    .bind(txn.approver_id.map(|x| x.0))
                    .bind(txn.reverses)
                    .bind(txn.reason.clone())
                    .bind(txn.memo.clone())
                    .bind(txn.data.to_string())
                    .bind(txn.created_at)
                    .exec(Expect::Rows(1, StoreError::Conflict { what: "day_closed" }))
                    .await?;
                    // 2. Card changes.
                    for change in changes {
                        match change {
                            LedgerChange::Insert(card) => insert_card_tx(w.conn().await?, card).await?,
                            LedgerChange::CouponIssue(c) => super::coupons_impl::issue_coupon_tx(w.conn().await?, c).await?,
                            LedgerChange::CouponRedeem { coupon, customer, store, staff, seen } => {
                                let r = $crate::coupons::CouponRedemption {
                                    tenant_id: txn.tenant_id,
                                    coupon: *coupon,
                                    at: txn.created_at,
                                    customer: *customer,
                                    store: *store,
                                    staff: *staff,
                                    key: None,
                                };
                                super::coupons_impl::redeem_coupon_w(&mut w, &r, seen.as_deref()).await?;
                            }
                            // The bill takes its receipt number last (below): the store's
                            // counter row is then locked only for the final statements.
                            LedgerChange::Checkout(_) => {}
                            // Checked under the chain head (below), once nothing else can commit first.
                            LedgerChange::AdjustmentWithinLimit { .. } => {}
                            LedgerChange::CheckoutStatus { .. }
                            | LedgerChange::VisitRefund { .. }
                            | LedgerChange::CouponRestore { .. }
                            | LedgerChange::CouponVoid { .. } => apply_checkout_change(w.conn().await?, txn, change).await?,
                            LedgerChange::Visit(_)
                            | LedgerChange::VisitsReversed { .. }
                            | LedgerChange::Level(_)
                            | LedgerChange::GiftTaken { .. }
                            | LedgerChange::GiftReturned { .. } => apply_loyalty_change(&mut w, txn, change).await?,
                            LedgerChange::Status { card, status, replaced_by } => {
                                w.stmt(
                                    "UPDATE cards SET status = $3, replaced_by = COALESCE($4, replaced_by), status_changed_at = $5 \
                                     WHERE tenant_id = $1 AND id = $2",
                                )
                                .bind(t)
                                .bind(card.0)
                                .bind(status.as_str())
                                .bind(replaced_by.map(|x| x.0))
                                .bind(txn.created_at)
                                .exec(Expect::Rows(1, StoreError::NotFound))
                                .await?;
                            }
                        }
                    }
                    // The customer's timeline event commits with the money.
                    if let Some(e) = timeline {
                        super::insert_event_w(&mut w, e).await?;
                    }
                    // 3. Balances. Postings with a note keep an entry of their own (the
                    // third key part).
                    let mut merged: std::collections::BTreeMap<(bool, uuid::Uuid, usize), PostingSpec> = Default::default();
                    for (i, p) in postings.iter().enumerate() {
                        let id = p.key.account_id(txn.tenant_id);
                        let own = if p.note.is_some() { i + 1 } else { 0 };
                        merged.entry((!p.key.kind.customer_side(), id, own)).and_modify(|m| m.amount += p.amount).or_insert_with(|| p.clone());
                    }
                    let moving = |store_side: bool| -> Vec<(uuid::Uuid, &PostingSpec)> {
                        merged
                            .iter()
                            .filter(|((side, _, _), p)| *side == store_side && p.amount != 0)
                            .map(|((_, id, _), p)| (*id, p))
                            .collect()
                    };
                    let (customer_side, store_side) = (moving(false), moving(true));
                    let entry_count = customer_side.len() + store_side.len();
                    let mut lines: Vec<(uuid::Uuid, &PostingSpec, i64)> = Vec::with_capacity(entry_count);
                    let checkout = changes.iter().find_map(|c| match c {
                        LedgerChange::Checkout(r) => Some(&**r),
                        _ => None,
                    });
                    // The writer's predictions, when it has them all (SQLite; see
                    // predictions.rs): then everything goes in one batch below.
                    let guess = if guess {
                        predict(self, txn, changes, &customer_side, &store_side, checkout, entry_count)
                    } else {
                        None
                    };
                    guessed = guess.is_some();
                    let mut counted: Option<i64> = None;
                    let (checkout_number, (end_seq, mut prev)) = if let Some(g) = guess {
                        let moving: Vec<(uuid::Uuid, &PostingSpec)> = customer_side.iter().chain(&store_side).copied().collect();
                        queue_guessed_balances(&mut w, txn, &moving, &g.balances, &mut lines).await?;
                        apply_lots(&mut w, txn, &lines).await?;
                        let number = match (checkout, g.counter) {
                            (Some(c), Some(n)) => {
                                w.stmt(
                                    "UPDATE receipt_counters SET n = $4 WHERE tenant_id = $1 AND store_id = $2 \
                                     AND business_date = $3 AND n = $5",
                                )
                                .bind(t)
                                .bind(c.store_id.0)
                                .bind(c.business_date)
                                .bind(n + 1)
                                .bind(n)
                                .exec(Expect::Rows(1, StoreError::Conflict { what: $crate::predictions::GUESS_WRONG }))
                                .await?;
                                counted = Some(n + 1);
                                let number = receipt_number(c, n + 1);
                                insert_checkout(&mut w, txn, c, &number).await?;
                                Some(number)
                            }
                            _ => None,
                        };
                        let head = match g.head {
                            Some((seq, hash)) => (seq + entry_count as i64, hash),
                            None => (0, String::new()),
                        };
                        (number, head)
                    } else {
                        if pg && let Some(c) = checkout {
                            // Numbered below, with the store's counter.
                            insert_checkout(&mut w, txn, c, &txn.id.to_string()).await?;
                        }
                        // Balances: the customer's accounts, then the store's shared ones
                        // (revenue, tenders), each group in one statement and in id order, then
                        // the receipt counter and the chain head — one global order in which
                        // every post takes its rows, so concurrent posts never deadlock, and
                        // the rows every till of the store needs are taken last. SQLite sends
                        // them all in one batch and finishes them after it; PostgreSQL one by
                        // one, the customer's points lots moving before the store's rows.
                        let customer = queue_balances(&mut w, txn, pg, &customer_side).await?;
                        let customer = if pg {
                            finish_balances(&mut w, txn, &customer_side, customer, &mut lines).await?;
                            apply_lots(&mut w, txn, &lines).await?;
                            None
                        } else {
                            Some(customer)
                        };
                        let store = queue_balances(&mut w, txn, pg, &store_side).await?;
                        let number = match checkout {
                            Some(c) => Some(queue_number(&mut w, txn, c, pg).await?),
                            None => None,
                        };
                        // 4. The hash chain: take the tenant's head (this row serialises posts
                        //    of one tenant, so it is taken last), append, move the head. One
                        //    statement creates or advances the head and returns the hash to
                        //    chain from; a post without entries (card changes only) leaves the
                        //    head alone.
                        let head = if entry_count == 0 {
                            None
                        } else {
                            Some(
                                w.stmt(
                                    "INSERT INTO ledger_heads (tenant_id, seq, hash) VALUES ($1, $2, $3) \
                                     ON CONFLICT (tenant_id) DO UPDATE SET seq = ledger_heads.seq + excluded.seq RETURNING seq, hash",
                                )
                                .bind(t)
                                .bind(entry_count as i64)
                                .bind(GENESIS_HASH)
                                .rows()
                                .await?,
                            )
                        };
                        w.flush().await?;
                        if let Some(customer) = customer {
                            finish_balances(&mut w, txn, &customer_side, customer, &mut lines).await?;
                        }
                        finish_balances(&mut w, txn, &store_side, store, &mut lines).await?;
                        if !pg {
                            // Points lots move with the points (see `LotRule`); only
                            // customer-side accounts hold lots.
                            apply_lots(&mut w, txn, &lines).await?;
                        }
                        let checkout_number = match (checkout, number) {
                            (Some(c), Some(ticket)) => {
                                let (number, n) = finish_number(&mut w, txn, c, pg, ticket).await?;
                                counted = n;
                                Some(number)
                            }
                            _ => None,
                        };
                        let head: (i64, String) = match head {
                            Some(ticket) => w
                                .take(ticket)?
                                .into_iter()
                                .next()
                                .ok_or_else(|| StoreError::Corrupt("the chain head answered nothing".into()))?,
                            None => (0, String::new()),
                        };
                        (checkout_number, head)
                    };
                    // Daily adjustment limits: read after taking the head, so every
                    // adjustment of the tenant that committed before is counted and none
                    // can commit meanwhile.
                    for change in changes {
                        if let LedgerChange::AdjustmentWithinLimit { staff, since, amount, limit } = change {
                            let rows: Vec<(String,)> = w
                                .stmt(
                                    "SELECT data FROM ledger_txns WHERE tenant_id = $1 AND staff_id = $2 AND kind = 'adjustment' \
                                     AND approver_id IS NULL AND created_at >= $3 AND id <> $4",
                                )
                                .bind(t)
                                .bind(staff.0)
                                .bind(*since)
                                .bind(txn.id)
                                .fetch_all()
                                .await?;
                            let done = rows
                                .iter()
                                .map(|(d,)| $crate::audit_shared::adjustment_amount(d).saturating_abs())
                                .fold(0i64, i64::saturating_add);
                            if done.saturating_add(*amount) > *limit {
                                return Err(StoreError::Conflict { what: "adjustment_day_limit" });
                            }
                        }
                    }
                    let start_seq = end_seq - lines.len() as i64;
                    let start_hash = prev.clone();
                    let mut seq = start_seq;
                    let mut entries = Vec::with_capacity(lines.len());
                    for (account_id, p, balance_after) in lines {
                        let (unit, amount) = (p.key.kind.unit(), p.amount);
                        let note = p.note.as_ref();
                        seq += 1;
                        let fields = EntryFields {
                            tenant: txn.tenant_id,
                            seq,
                            txn_id: txn.id,
                            account_id,
                            amount,
                            balance_after,
                            staff: txn.staff_id.map(|x| x.0),
                            store: txn.store_id.map(|x| x.0),
                            at_micros: $crate::ledger_shared::micros(txn.created_at),
                            memo: note.map_or(&txn.memo, |n| &n.memo),
                            rule: note.map(|n| n.rule.as_str()),
                            memo_en: note.map(|n| n.memo_en.as_str()),
                        };
                        let hash = entry_hash(&prev, &fields);
                        entries.push(EntryRecord {
                            tenant_id: txn.tenant_id,
                            seq,
                            txn_id: txn.id,
                            account_id,
                            unit,
                            amount,
                            balance_after,
                            staff_id: txn.staff_id,
                            store_id: txn.store_id,
                            created_at: txn.created_at,
                            memo: note.map_or_else(|| txn.memo.clone(), |n| n.memo.clone()),
                            rule: note.map(|n| n.rule.clone()),
                            memo_en: note.map(|n| n.memo_en.clone()),
                            prev_hash: std::mem::replace(&mut prev, hash.clone()),
                            hash,
                        });
                    }
                    if !entries.is_empty() {
                        // PostgreSQL moves the head in the same statement (one round trip
                        // less while the head is held); SQLite has no data-modifying CTEs
                        // and sends the two together.
                        let stmt = if pg {
                            w.stmt("WITH head AS (UPDATE ledger_heads SET hash = ")
                                .push_bind(prev.clone())
                                .sql(" WHERE tenant_id = ")
                                .push_bind(t)
                                .sql(") ")
                        } else {
                            w.stmt("")
                        };
                        stmt.sql(&format!("INSERT INTO ledger_entries ({ENTRY_COLS}) "))
                            .push_values(&entries, |r, e| {
                                r.push_bind(t)
                                    .push_bind(e.seq)
                                    .push_bind(e.txn_id)
                                    .push_bind(e.account_id)
                                    .push_bind(e.unit.as_str())
                                    .push_bind(e.amount)
                                    .push_bind(e.balance_after)
                                    .push_bind(e.staff_id.map(|x| x.0))
                                    .push_bind(e.store_id.map(|x| x.0))
                                    .push_bind(e.created_at)
                                    .push_bind(e.memo.clone())
                                    .push_bind(e.prev_hash.clone())
                                    .push_bind(e.hash.clone())
                                    .push_bind(e.rule.clone())
                                    .push_bind(e.memo_en.clone());
                            })
                            .exec(Expect::Any)
                            .await?;
                        if guessed {
                            // The head moves only from where the guess had it.
                            w.stmt("UPDATE ledger_heads SET seq = $2, hash = $3 WHERE tenant_id = $1 AND seq = $4 AND hash = $5")
                                .bind(t)
                                .bind(end_seq)
                                .bind(prev.clone())
                                .bind(start_seq)
                                .bind(start_hash)
                                .exec(Expect::Rows(1, StoreError::Conflict { what: $crate::predictions::GUESS_WRONG }))
                                .await?;
                        } else if !pg {
                            w.stmt("UPDATE ledger_heads SET hash = $2 WHERE tenant_id = $1")
                                .bind(t)
                                .bind(prev.clone())
                                .exec(Expect::Any)
                                .await?;
                        }
                    }
                    // What the next post of this writer will find (the last line of an
                    // account has its final balance).
                    let left = $crate::predictions::Left {
                        tenant: t,
                        balances: entries.iter().map(|e| (e.account_id, e.balance_after)).collect(),
                        head: (!entries.is_empty()).then(|| (end_seq, prev)),
                        counter: checkout.zip(counted).map(|(c, n)| (c.store_id.0, c.business_date, n)),
                    };
                    // Sent with `COMMIT` (SQLite), by `w.commit()` below.
                    Ok((entries, checkout_number, left))
                }
                .await;
                match body {
                    Ok((entries, checkout_number, left)) => {
                        // Learnt before the commit, while this post still holds the writer:
                        // the next post may be the group's next member. If the commit
                        // fails, the next post's statements find out and it posts again.
                        if let Some(p) = self.predictions() {
                            p.lock().unwrap_or_else(std::sync::PoisonError::into_inner).learn(left);
                        }
                        if let Err(e) = w.commit().await {
                            self.forget_predictions();
                            // Nothing of a guessed post stayed: made again the ordinary
                            // way, it gets the answer the statements sent one by one give
                            // (a key used before, a closed day…).
                            return Err(if guessed { StoreError::Conflict { what: $crate::predictions::GUESS_WRONG } } else { e });
                        }
                        Ok(PostOutcome::Posted { entries, checkout_number })
                    }
                    // The key was used before (a retry, or a concurrent request with the
                    // same key that won the race), or the day is closed: the original
                    // transaction answers if there is one (a retry of a post made before
                    // the close still answers with it).
                    Err(e @ StoreError::Conflict { .. }) if w.failed_at() == Some(txn_stmt) => {
                        let day_closed = matches!(e, StoreError::Conflict { what: "day_closed" });
                        // Read on the writer's connection, after its rollback: on SQLite
                        // inside its group, where the original may be a member not yet
                        // committed — so it answers only once the group has committed.
                        let earlier = match w.conn().await {
                            Ok(conn) => earlier_post(conn, txn).await,
                            Err(e) => Err(e),
                        };
                        w.rollback().await?;
                        match earlier? {
                            Some(answer) => Ok(answer),
                            None if day_closed => Err(e),
                            // Not the key: the unique index on `reverses`.
                            None => Err(StoreError::AlreadyReversed),
                        }
                    }
                    // A coupon redeemed from what the caller read changed meanwhile: say
                    // how, read where the original post's read is (see `earlier_post`).
                    Err(StoreError::Conflict { what }) if what == $crate::coupons_shared::COUPON_CHANGED => {
                        let now = match w.conn().await {
                            Ok(conn) => coupon_refusal(conn, txn, changes).await,
                            Err(e) => e,
                        };
                        let _ = w.rollback().await;
                        Err(now)
                    }
                    Err(e) => {
                        // The caller has an error already; the group's outcome adds nothing.
                        let _ = w.rollback().await;
                        Err(e)
                    }
                }
            }
        }

        #[async_trait::async_trait]
        #[allow(clippy::too_many_arguments)]
        impl LedgerStore for $ty {
            fn commit_sharing(&self) -> Option<(u64, u64)> {
                self.commit_sharing_now()
            }

            fn guessing(&self) -> Option<(u64, u64)> {
                self.predictions().map(|p| p.lock().unwrap_or_else(std::sync::PoisonError::into_inner).counts())
            }

            /// Runs in a task of its own, so a caller that goes away (a cancelled
            /// request) cannot stop a post half-way: it completes or rolls back whole,
            /// and a retry with its key finds the outcome. SQLite's grouped commits
            /// (writer.rs) rely on it.
            async fn post(
                &self,
                txn: &TxnRecord,
                changes: &[LedgerChange],
                postings: &[PostingSpec],
                timeline: Option<&patron_domain::timeline::TimelineEvent>,
            ) -> Result<PostOutcome> {
                let (this, txn, changes, postings, timeline) =
                    (self.clone(), txn.clone(), changes.to_vec(), postings.to_vec(), timeline.cloned());
                tokio::spawn(async move { this.post_now(&txn, &changes, &postings, timeline.as_ref()).await })
                    .await
                    .map_err(|e| StoreError::Database(sqlx::Error::Protocol(format!("a post stopped: {e}"))))?
            }

            async fn txn(&self, tenant: TenantId, id: uuid::Uuid) -> Result<Option<TxnRecord>> {
                let sql = format!("SELECT {TXN_COLS} FROM ledger_txns WHERE tenant_id = $1 AND id = $2");
                let row: Option<TxnRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(tenant.0).bind(id).fetch_optional(self.reader()).await?;
                row.map(TryInto::try_into).transpose()
            }

            async fn checkout(&self, tenant: TenantId, id: uuid::Uuid) -> Result<Option<$crate::ledger::CheckoutRecord>> {
                let sql = format!("SELECT {} FROM checkouts WHERE tenant_id = $1 AND id = $2", $crate::ledger_shared::CHECKOUT_COLS);
                let row: Option<$crate::ledger_shared::CheckoutRow> =
                    sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(tenant.0).bind(id).fetch_optional(self.reader()).await?;
                let Some(row) = row else { return Ok(None) };
                let lines: Vec<(i32, Option<uuid::Uuid>, String, i32, i64, i64, i64, i32)> = sqlx::query_as(
                    "SELECT line_no, item_id, name, quantity, unit_price, gross, net, refunded_quantity FROM checkout_lines \
                     WHERE tenant_id = $1 AND checkout_id = $2 ORDER BY line_no",
                )
                .bind(tenant.0)
                .bind(id)
                .fetch_all(self.reader())
                .await?;
                let mut c = $crate::ledger::CheckoutRecord::try_from(row)?;
                c.lines = lines
                    .into_iter()
                    .map(|(line_no, item_id, name, quantity, unit_price, gross, net, refunded_quantity)| $crate::ledger::CheckoutLineRecord {
                        line_no,
                        item_id: item_id.map(patron_domain::ids::MenuItemId),
                        name,
                        quantity,
                        unit_price,
                        gross,
                        net,
                        refunded_quantity,
                    })
                    .collect();
                Ok(Some(c))
            }

            async fn checkout_with_coupon(&self, tenant: TenantId, code: &str) -> Result<Option<$crate::ledger::CheckoutRecord>> {
                let sql = format!(
                    "SELECT {} FROM checkouts WHERE tenant_id = $1 AND breakdown LIKE $2 ORDER BY created_at DESC LIMIT 1",
                    $crate::ledger_shared::CHECKOUT_COLS
                );
                let row: Option<$crate::ledger_shared::CheckoutRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(tenant.0)
                    .bind(format!("%\"{code}\"%"))
                    .fetch_optional(self.reader())
                    .await?;
                row.map(TryInto::try_into).transpose()
            }

            async fn checkouts_of_day(
                &self,
                tenant: TenantId,
                store: patron_domain::ids::StoreId,
                day: chrono::NaiveDate,
                limit: i64,
                offset: i64,
            ) -> Result<Vec<$crate::ledger::CheckoutRecord>> {
                let sql = format!(
                    "SELECT {} FROM checkouts WHERE tenant_id = $1 AND store_id = $2 AND business_date = $3 \
                     ORDER BY created_at DESC, id DESC LIMIT $4 OFFSET $5",
                    $crate::ledger_shared::CHECKOUT_COLS
                );
                let rows: Vec<$crate::ledger_shared::CheckoutRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(tenant.0)
                    .bind(store.0)
                    .bind(day)
                    .bind(limit)
                    .bind(offset)
                    .fetch_all(self.reader())
                    .await?;
                rows.into_iter().map(TryInto::try_into).collect()
            }

            async fn txn_by_key(&self, tenant: TenantId, key: &str) -> Result<Option<TxnRecord>> {
                let sql = format!("SELECT {TXN_COLS} FROM ledger_txns WHERE tenant_id = $1 AND idempotency_key = $2");
                let row: Option<TxnRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(tenant.0).bind(key).fetch_optional(self.reader()).await?;
                row.map(TryInto::try_into).transpose()
            }

            async fn txn_entries(&self, tenant: TenantId, txn: uuid::Uuid) -> Result<Vec<EntryRecord>> {
                let sql = format!("SELECT {ENTRY_COLS} FROM ledger_entries WHERE tenant_id = $1 AND txn_id = $2 ORDER BY seq");
                let rows: Vec<EntryRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(tenant.0).bind(txn).fetch_all(self.reader()).await?;
                rows.into_iter().map(TryInto::try_into).collect()
            }

            async fn reversal_of(&self, tenant: TenantId, txn: uuid::Uuid) -> Result<Option<TxnRecord>> {
                let sql = format!("SELECT {TXN_COLS} FROM ledger_txns WHERE tenant_id = $1 AND reverses_txn_id = $2");
                let row: Option<TxnRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(tenant.0).bind(txn).fetch_optional(self.reader()).await?;
                row.map(TryInto::try_into).transpose()
            }

            async fn card(&self, tenant: TenantId, id: CardId) -> Result<Option<Card>> {
                let sql = format!("SELECT {} FROM cards WHERE tenant_id = $1 AND id = $2", $crate::rows::CARD_COLS);
                let row: Option<CardRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(tenant.0).bind(id.0).fetch_optional(self.reader()).await?;
                row.map(TryInto::try_into).transpose()
            }

            async fn card_by_number(&self, tenant: TenantId, number: &str) -> Result<Option<Card>> {
                let sql = format!("SELECT {} FROM cards WHERE tenant_id = $1 AND number = $2", $crate::rows::CARD_COLS);
                let row: Option<CardRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(tenant.0).bind(number).fetch_optional(self.reader()).await?;
                row.map(TryInto::try_into).transpose()
            }

            async fn set_card_status(&self, tenant: TenantId, id: CardId, status: CardStatus, at: DateTime<Utc>) -> Result<()> {
                let r = sqlx::query("UPDATE cards SET status = $3, status_changed_at = $4 WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant.0)
                    .bind(id.0)
                    .bind(status.as_str())
                    .bind(at)
                    .execute(self.writer())
                    .await?;
                if r.rows_affected() == 1 { Ok(()) } else { Err(StoreError::NotFound) }
            }

            async fn set_card_pin(&self, tenant: TenantId, id: CardId, pin_hash: &str) -> Result<()> {
                let r = sqlx::query(
                    "UPDATE cards SET pin_hash = $3, pin_failures = 0, pin_locked_until = NULL WHERE tenant_id = $1 AND id = $2",
                )
                .bind(tenant.0)
                .bind(id.0)
                .bind(pin_hash)
                .execute(self.writer())
                .await?;
                if r.rows_affected() == 1 { Ok(()) } else { Err(StoreError::NotFound) }
            }

            async fn pin_attempts(&self, tenant: TenantId, card: CardId, limit: i64) -> Result<Vec<$crate::ledger::PinAttempt>> {
                let rows: Vec<(DateTime<Utc>, bool, Option<uuid::Uuid>, Option<uuid::Uuid>)> = sqlx::query_as(
                    "SELECT at, success, staff_id, store_id FROM card_pin_attempts WHERE tenant_id = $1 AND card_id = $2 \
                     ORDER BY at DESC, id DESC LIMIT $3",
                )
                .bind(tenant.0)
                .bind(card.0)
                .bind(limit)
                .fetch_all(self.reader())
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(at, success, staff, store)| $crate::ledger::PinAttempt {
                        at,
                        success,
                        staff_id: staff.map(patron_domain::ids::StaffId),
                        store_id: store.map(patron_domain::ids::StoreId),
                    })
                    .collect())
            }

            async fn record_pin_attempt(
                &self,
                tenant: TenantId,
                card: CardId,
                success: bool,
                at: DateTime<Utc>,
                staff: Option<patron_domain::ids::StaffId>,
                store: Option<patron_domain::ids::StoreId>,
                max_failures: i32,
                lock_until: DateTime<Utc>,
            ) -> Result<PinState> {
                let mut tx = self.writer().begin().await?;
                sqlx::query(
                    "INSERT INTO card_pin_attempts (tenant_id, id, card_id, at, success, staff_id, store_id) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(tenant.0)
                .bind(uuid::Uuid::now_v7())
                .bind(card.0)
                .bind(at)
                .bind(success)
                .bind(staff.map(|x| x.0))
                .bind(store.map(|x| x.0))
                .execute(&mut *tx)
                .await?;
                let (failures, locked_until): (i32, Option<DateTime<Utc>>) = sqlx::query_as(
                    "UPDATE cards SET \
                     pin_locked_until = CASE WHEN $3 THEN NULL WHEN pin_failures + 1 >= $4 THEN $5 ELSE pin_locked_until END, \
                     pin_failures = CASE WHEN $3 THEN 0 WHEN pin_failures + 1 >= $4 THEN 0 ELSE pin_failures + 1 END \
                     WHERE tenant_id = $1 AND id = $2 RETURNING pin_failures, pin_locked_until",
                )
                .bind(tenant.0)
                .bind(card.0)
                .bind(success)
                .bind(max_failures)
                .bind(lock_until)
                .fetch_one(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(PinState { failures, locked_until })
            }

            async fn accounts(&self, tenant: TenantId, ids: &[uuid::Uuid]) -> Result<Vec<AccountRecord>> {
                if ids.is_empty() {
                    return Ok(vec![]);
                }
                let mut b = sqlx::QueryBuilder::<$db>::new(format!("SELECT {ACCOUNT_COLS} FROM ledger_accounts WHERE tenant_id = "));
                b.push_bind(tenant.0).push(" AND id IN (");
                let mut sep = b.separated(", ");
                for id in ids {
                    sep.push_bind(*id);
                }
                b.push(")");
                let rows: Vec<AccountRow> = b.build_query_as().fetch_all(self.reader()).await?;
                rows.into_iter().map(TryInto::try_into).collect()
            }

            async fn set_account_floor(&self, tenant: TenantId, key: &AccountKey, floor: Option<i64>, at: DateTime<Utc>) -> Result<()> {
                let id = key.account_id(tenant);
                let r = sqlx::query(
                    "INSERT INTO ledger_accounts (tenant_id, id, kind, unit, card_id, customer_id, store_id, tender, balance, floor, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, $10) \
                     ON CONFLICT (tenant_id, id) DO UPDATE SET floor = excluded.floor",
                )
                .bind(tenant.0)
                .bind(id)
                .bind(key.kind.as_str())
                .bind(key.kind.unit().as_str())
                .bind(key.card.map(|x| x.0))
                .bind(key.customer.map(|x| x.0))
                .bind(key.store.map(|x| x.0))
                .bind(key.tender.map(|x| x.as_str()))
                .bind(floor)
                .bind(at)
                .execute(self.writer())
                .await;
                match r {
                    Ok(_) => Ok(()),
                    Err(e) => match StoreError::from(e) {
                        StoreError::Database(sqlx::Error::Database(db)) if db.kind() == sqlx::error::ErrorKind::CheckViolation => {
                            Err(StoreError::Insufficient { account: id })
                        }
                        other => Err(other),
                    },
                }
            }

            async fn account_entries(
                &self,
                tenant: TenantId,
                accounts: &[uuid::Uuid],
                from: Option<DateTime<Utc>>,
                to: Option<DateTime<Utc>>,
            ) -> Result<Vec<EntryRecord>> {
                if accounts.is_empty() {
                    return Ok(vec![]);
                }
                let mut b = sqlx::QueryBuilder::<$db>::new(format!("SELECT {ENTRY_COLS} FROM ledger_entries WHERE tenant_id = "));
                b.push_bind(tenant.0).push(" AND account_id IN (");
                let mut sep = b.separated(", ");
                for id in accounts {
                    sep.push_bind(*id);
                }
                b.push(")");
                if let Some(f) = from {
                    b.push(" AND created_at >= ").push_bind(f);
                }
                if let Some(t) = to {
                    b.push(" AND created_at < ").push_bind(t);
                }
                b.push(" ORDER BY seq");
                let rows: Vec<EntryRow> = b.build_query_as().fetch_all(self.reader()).await?;
                rows.into_iter().map(TryInto::try_into).collect()
            }

            async fn txns(&self, tenant: TenantId, ids: &[uuid::Uuid]) -> Result<Vec<TxnRecord>> {
                let mut out = Vec::new();
                for chunk in ids.chunks($crate::shared::BATCH) {
                    let mut b = sqlx::QueryBuilder::<$db>::new(format!("SELECT {TXN_COLS} FROM ledger_txns WHERE tenant_id = "));
                    b.push_bind(tenant.0).push(" AND id IN (");
                    let mut sep = b.separated(", ");
                    for id in chunk {
                        sep.push_bind(*id);
                    }
                    b.push(")");
                    let rows: Vec<TxnRow> = b.build_query_as().fetch_all(self.reader()).await?;
                    for r in rows {
                        out.push(r.try_into()?);
                    }
                }
                Ok(out)
            }

            async fn liability(&self, tenant: TenantId, as_of: DateTime<Utc>) -> Result<Vec<LiabilityRow>> {
                let rows: Vec<(Option<uuid::Uuid>, String, i64)> = sqlx::query_as(
                    "SELECT e.store_id, a.kind, CAST(SUM(e.amount) AS BIGINT) FROM ledger_entries e \
                     JOIN ledger_accounts a ON a.tenant_id = e.tenant_id AND a.id = e.account_id \
                     WHERE e.tenant_id = $1 AND e.created_at <= $2 \
                     AND a.kind IN ('card_principal', 'card_bonus', 'card_points', 'org_principal', 'org_bonus', 'org_points', 'charge') \
                     GROUP BY e.store_id, a.kind ORDER BY a.kind",
                )
                .bind(tenant.0)
                .bind(as_of)
                .fetch_all(self.reader())
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(s, kind, amount)| LiabilityRow { store_id: s.map(patron_domain::ids::StoreId), kind, amount })
                    .collect())
            }

            async fn settings(&self, tenant: TenantId) -> Result<Option<serde_json::Value>> {
                let row: Option<String> = sqlx::query_scalar("SELECT settings FROM tenant_settings WHERE tenant_id = $1")
                    .bind(tenant.0)
                    .fetch_optional(self.reader())
                    .await?;
                row.map(|s| serde_json::from_str(&s).map_err(|_| StoreError::Corrupt("tenant_settings".into()))).transpose()
            }

            async fn save_settings(&self, tenant: TenantId, settings: &serde_json::Value, at: DateTime<Utc>) -> Result<()> {
                sqlx::query(
                    "INSERT INTO tenant_settings (tenant_id, settings, updated_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (tenant_id) DO UPDATE SET settings = excluded.settings, updated_at = excluded.updated_at",
                )
                .bind(tenant.0)
                .bind(settings.to_string())
                .bind(at)
                .execute(self.writer())
                .await?;
                Ok(())
            }

            async fn all_accounts(&self, tenant: TenantId) -> Result<Vec<AccountRecord>> {
                let sql = format!("SELECT {ACCOUNT_COLS} FROM ledger_accounts WHERE tenant_id = $1 ORDER BY id");
                let rows: Vec<AccountRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(tenant.0).fetch_all(self.reader()).await?;
                rows.into_iter().map(TryInto::try_into).collect()
            }

            async fn entries_after(&self, tenant: TenantId, after_seq: i64, limit: i64) -> Result<Vec<EntryRecord>> {
                let sql = format!("SELECT {ENTRY_COLS} FROM ledger_entries WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3");
                let rows: Vec<EntryRow> =
                    sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(tenant.0).bind(after_seq).bind(limit).fetch_all(self.reader()).await?;
                rows.into_iter().map(TryInto::try_into).collect()
            }

            async fn txn_ids_after(&self, tenant: TenantId, after: Option<uuid::Uuid>, limit: i64) -> Result<Vec<uuid::Uuid>> {
                let mut b = sqlx::QueryBuilder::<$db>::new("SELECT id FROM ledger_txns WHERE tenant_id = ");
                b.push_bind(tenant.0);
                if let Some(a) = after {
                    b.push(" AND id > ").push_bind(a);
                }
                b.push(" ORDER BY id LIMIT ").push_bind(limit);
                let rows: Vec<(uuid::Uuid,)> = b.build_query_as().fetch_all(self.reader()).await?;
                Ok(rows.into_iter().map(|r| r.0).collect())
            }

            async fn ledger_head(&self, tenant: TenantId) -> Result<Option<(i64, String)>> {
                let row: Option<(i64, String)> = sqlx::query_as("SELECT seq, hash FROM ledger_heads WHERE tenant_id = $1")
                    .bind(tenant.0)
                    .fetch_optional(self.reader())
                    .await?;
                Ok(row)
            }
        }
    };
}
pub(crate) use impl_ledger_storage;

/// Applies a level change inside a transaction: the customer's level, the history row and
/// the timeline event. A macro because it is used by both the ledger's post and the
/// loyalty store, for both backends.
macro_rules! apply_level_change {
    ($db:ty, $tx:ident, $l:ident) => {{
        // Only from the level the decision was made from: of two concurrent decisions
        // the second finds the level changed and is skipped (false).
        let r = sqlx::query(
            "UPDATE customers SET level = $3 WHERE tenant_id = $1 AND id = $2 \
             AND (level = $4 OR (level IS NULL AND $4 IS NULL))",
        )
        .bind($l.tenant_id.0)
        .bind($l.customer_id.0)
        .bind(&$l.to_level)
        .bind(&$l.from_level)
        .execute(&mut *$tx)
        .await?;
        let applied = r.rows_affected() == 1;
        if applied {
        sqlx::query(
            "INSERT INTO level_changes (tenant_id, id, customer_id, from_level, to_level, reason, growth, explanation, explanation_en, staff_id, occurred_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind($l.tenant_id.0)
        .bind($l.id)
        .bind($l.customer_id.0)
        .bind(&$l.from_level)
        .bind(&$l.to_level)
        .bind(&$l.reason)
        .bind($l.growth)
        .bind(&$l.explanation)
        .bind(&$l.explanation_en)
        .bind($l.staff_id.map(|x| x.0))
        .bind($l.occurred_at)
        .execute(&mut *$tx)
        .await?;
        super::insert_event($tx, &$l.timeline_event()).await?;
        }
        applied
    }};
}
pub(crate) use apply_level_change;
