//! Settlement rules: cash handed over at the end of a shift, and which store owes which
//! when a chain's stored value is sold at one store and spent at another.
//!
//! **Inter-store attribution (FIFO by where the principal was sold).** Every principal
//! account (a card's, or an organization's pool) holds its principal as *lots*, each
//! remembering the store that sold it (the store of the top-up, or of whatever else
//! credited the account). A withdrawal takes the oldest lots first. A transfer or a card
//! replacement carries the lots it takes, with their stores, into the receiving account.
//! A reversal undoes exactly what the reversed transaction did to the lots. When a
//! consumption (a spend or a checkout paid from stored value) at store B takes a lot sold
//! at store A ≠ B, A holds the customer's cash while B served the meal: **A owes B** that
//! principal. A refund of principal paid out at store R (closing a card) counts the same
//! way: the store that sold it owes R. Bonus money is never settled: no store received
//! cash for it.

use crate::ids::StoreId;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, VecDeque};
use utoipa::ToSchema;
use uuid::Uuid;

/// The cash a drawer should hold: the float it started with plus the net cash taken in
/// (cash received minus cash paid out).
pub fn expected_cash(opening_float: i64, cash_net: i64) -> i64 {
    opening_float + cash_net
}

/// Counted minus expected: negative is a shortage, positive an overage.
pub fn cash_variance(counted: i64, expected: i64) -> i64 {
    counted - expected
}

/// What a transaction means for settlement between stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoveKind {
    /// Principal consumed by a sale (a stored-value spend, a checkout): counted.
    Consumption,
    /// Principal paid back to the customer (a card closed with a refund): counted.
    Refund,
    /// Undoes a transaction exactly (the reversed transaction must come earlier).
    Reversal { of: Uuid },
    /// Anything else (top-up, transfer, replacement, adjustment, partial refund to the
    /// card): principal credited beyond what the transaction itself took is new principal
    /// sold at its store; principal taken and not passed on is written off, not counted.
    Other,
}

/// One transaction's legs on principal accounts, in ledger order.
#[derive(Debug, Clone, PartialEq)]
pub struct PrincipalMove {
    pub txn: Uuid,
    /// The store the transaction happened at.
    pub store: Option<StoreId>,
    pub kind: MoveKind,
    /// Whether its effects are reported (the transaction lies in the period); earlier
    /// transactions only build up the lots.
    pub counted: bool,
    /// (principal account, change of its balance).
    pub legs: Vec<(Uuid, i64)>,
}

/// Whether a flow is a consumption or a refund.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum FlowKind {
    Consumption,
    Refund,
}

/// Principal sold at `origin` used at `at`: `origin` owes `at` the amount (negative when a
/// reversal takes back an earlier flow).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    pub txn: Uuid,
    pub kind: FlowKind,
    /// The store that sold the principal (`None`: sold without a store, or before the
    /// ledger's history).
    pub origin: Option<StoreId>,
    pub at: Option<StoreId>,
    pub amount: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Lot {
    origin: Option<StoreId>,
    /// The transaction that put it into this account.
    tag: Uuid,
    amount: i64,
}

/// What a transaction did to the lots, so that its reversal can undo it.
#[derive(Debug, Default)]
struct Effect {
    taken: Vec<(Uuid, Vec<Lot>)>,
    created: Vec<(Uuid, i64)>,
    consumed: Vec<Lot>,
    store: Option<StoreId>,
    flow: Option<FlowKind>,
}

/// The principal lots of every account, built up move by move.
#[derive(Debug, Default)]
pub struct PrincipalLots {
    lots: HashMap<Uuid, VecDeque<Lot>>,
    effects: HashMap<Uuid, Effect>,
}

impl PrincipalLots {
    /// Applies `moves` in ledger order and returns the flows of the counted ones.
    pub fn attribute(moves: &[PrincipalMove]) -> (PrincipalLots, Vec<Flow>) {
        let mut s = PrincipalLots::default();
        let mut flows = Vec::new();
        for m in moves {
            s.apply(m, &mut flows);
        }
        (s, flows)
    }

    /// The principal still held by `account`, per store that sold it (sums to its balance).
    pub fn holdings(&self, account: Uuid) -> BTreeMap<Option<StoreId>, i64> {
        let mut out = BTreeMap::new();
        for l in self.lots.get(&account).into_iter().flatten() {
            *out.entry(l.origin).or_insert(0) += l.amount;
        }
        out
    }

    /// Takes `amount` from the account's oldest lots. Principal the history does not
    /// explain (data older than the ledger) comes out as a lot of unknown origin.
    fn take(&mut self, account: Uuid, mut amount: i64) -> Vec<Lot> {
        let q = self.lots.entry(account).or_default();
        let mut out = Vec::new();
        while amount > 0 {
            let Some(front) = q.front_mut() else {
                out.push(Lot {
                    origin: None,
                    tag: Uuid::nil(),
                    amount,
                });
                break;
            };
            let part = front.amount.min(amount);
            out.push(Lot {
                amount: part,
                ..*front
            });
            front.amount -= part;
            amount -= part;
            if front.amount == 0 {
                q.pop_front();
            }
        }
        out
    }

    /// Takes `amount` from the lots `tag` created in the account, then (if some of them
    /// were used meanwhile) from the oldest.
    fn take_tagged(&mut self, account: Uuid, tag: Uuid, mut amount: i64) -> Vec<Lot> {
        let q = self.lots.entry(account).or_default();
        let mut out = Vec::new();
        for l in q.iter_mut().rev().filter(|l| l.tag == tag) {
            let part = l.amount.min(amount);
            out.push(Lot { amount: part, ..*l });
            l.amount -= part;
            amount -= part;
            if amount == 0 {
                break;
            }
        }
        q.retain(|l| l.amount > 0);
        if amount > 0 {
            out.extend(self.take(account, amount));
        }
        out
    }

    fn apply(&mut self, m: &PrincipalMove, flows: &mut Vec<Flow>) {
        if let MoveKind::Reversal { of } = m.kind
            && let Some(effect) = self.effects.remove(&of)
        {
            // Lots the original created leave again; lots it took come back, in front.
            for (account, amount) in &effect.created {
                self.take_tagged(*account, of, *amount);
            }
            for (account, lots) in effect.taken.into_iter().rev() {
                let q = self.lots.entry(account).or_default();
                for l in lots.into_iter().rev() {
                    q.push_front(l);
                }
            }
            if m.counted
                && let Some(kind) = effect.flow
            {
                for l in &effect.consumed {
                    flows.push(Flow {
                        txn: m.txn,
                        kind,
                        origin: l.origin,
                        at: effect.store,
                        amount: -l.amount,
                    });
                }
            }
            return;
        }
        let mut effect = Effect {
            store: m.store,
            flow: match m.kind {
                MoveKind::Consumption => Some(FlowKind::Consumption),
                MoveKind::Refund => Some(FlowKind::Refund),
                _ => None,
            },
            ..Effect::default()
        };
        let mut pool: VecDeque<Lot> = VecDeque::new();
        for &(account, amount) in m.legs.iter().filter(|(_, a)| *a < 0) {
            let taken = self.take(account, -amount);
            pool.extend(taken.iter().copied());
            effect.taken.push((account, taken));
        }
        for &(account, amount) in m.legs.iter().filter(|(_, a)| *a > 0) {
            let mut need = amount;
            let mut new_lots = Vec::new();
            while need > 0 {
                match pool.front_mut() {
                    Some(l) => {
                        let part = l.amount.min(need);
                        new_lots.push(Lot {
                            origin: l.origin,
                            tag: m.txn,
                            amount: part,
                        });
                        l.amount -= part;
                        need -= part;
                        if l.amount == 0 {
                            pool.pop_front();
                        }
                    }
                    None => {
                        new_lots.push(Lot {
                            origin: m.store,
                            tag: m.txn,
                            amount: need,
                        });
                        need = 0;
                    }
                }
            }
            self.lots.entry(account).or_default().extend(new_lots);
            effect.created.push((account, amount));
        }
        effect.consumed = pool.into_iter().collect();
        if m.counted
            && let Some(kind) = effect.flow
        {
            for l in &effect.consumed {
                flows.push(Flow {
                    txn: m.txn,
                    kind,
                    origin: l.origin,
                    at: m.store,
                    amount: l.amount,
                });
            }
        }
        self.effects.insert(m.txn, effect);
    }
}

/// What one store owes another after netting both directions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NetDebt {
    pub payer: Option<StoreId>,
    pub payee: Option<StoreId>,
    pub amount: i64,
}

/// Nets the flows between each pair of different stores: what A owes B minus what B
/// owes A, the larger side paying. Pairs that cancel out are left out; flows within one
/// store are not debts.
pub fn net_pairs(flows: &[Flow]) -> Vec<NetDebt> {
    let mut owed: BTreeMap<(Option<StoreId>, Option<StoreId>), i64> = BTreeMap::new();
    for f in flows.iter().filter(|f| f.origin != f.at) {
        // Keyed by the ordered pair; positive when the lower one owes the higher.
        let (key, sign) = if f.origin < f.at {
            ((f.origin, f.at), 1)
        } else {
            ((f.at, f.origin), -1)
        };
        *owed.entry(key).or_insert(0) += sign * f.amount;
    }
    owed.into_iter()
        .filter(|(_, v)| *v != 0)
        .map(|((a, b), v)| {
            if v > 0 {
                NetDebt {
                    payer: a,
                    payee: b,
                    amount: v,
                }
            } else {
                NetDebt {
                    payer: b,
                    payee: a,
                    amount: -v,
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn store(n: u8) -> Option<StoreId> {
        Some(StoreId(Uuid::from_u128(u128::from(n) + 1)))
    }
    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n + 1000)
    }
    fn mv(txn: u128, at: u8, kind: MoveKind, legs: &[(u128, i64)]) -> PrincipalMove {
        PrincipalMove {
            txn: id(txn),
            store: store(at),
            kind,
            counted: true,
            legs: legs.iter().map(|(a, x)| (id(*a), *x)).collect(),
        }
    }

    #[test]
    fn cash_variance_is_counted_minus_expected() {
        assert_eq!(expected_cash(50_000, 12_300), 62_300);
        assert_eq!(cash_variance(62_000, 62_300), -300);
        assert_eq!(cash_variance(62_300, 62_300), 0);
    }

    #[test]
    fn oldest_principal_is_spent_first() {
        // Card 1: 1,000 sold at A, then 1,000 at B; spends 1,500 at B.
        let (lots, flows) = PrincipalLots::attribute(&[
            mv(1, 0, MoveKind::Other, &[(1, 100_000)]),
            mv(2, 1, MoveKind::Other, &[(1, 100_000)]),
            mv(3, 1, MoveKind::Consumption, &[(1, -150_000)]),
        ]);
        assert_eq!(
            flows
                .iter()
                .map(|f| (f.origin, f.at, f.amount))
                .collect::<Vec<_>>(),
            vec![(store(0), store(1), 100_000), (store(1), store(1), 50_000)]
        );
        assert_eq!(lots.holdings(id(1)), BTreeMap::from([(store(1), 50_000)]));
        assert_eq!(
            net_pairs(&flows),
            vec![NetDebt {
                payer: store(0),
                payee: store(1),
                amount: 100_000
            }]
        );
    }

    #[test]
    fn a_reversed_spend_takes_back_its_flows_and_lots() {
        let (lots, flows) = PrincipalLots::attribute(&[
            mv(1, 0, MoveKind::Other, &[(1, 10_000)]),
            mv(2, 1, MoveKind::Consumption, &[(1, -4_000)]),
            mv(3, 2, MoveKind::Reversal { of: id(2) }, &[(1, 4_000)]),
        ]);
        assert_eq!(flows.iter().map(|f| f.amount).sum::<i64>(), 0);
        assert_eq!(flows[1].at, store(1), "taken back where it was spent");
        assert!(net_pairs(&flows).is_empty());
        assert_eq!(lots.holdings(id(1)), BTreeMap::from([(store(0), 10_000)]));
    }

    #[test]
    fn a_reversed_top_up_removes_its_own_lot() {
        let (lots, _) = PrincipalLots::attribute(&[
            mv(1, 0, MoveKind::Other, &[(1, 10_000)]),
            mv(2, 1, MoveKind::Other, &[(1, 5_000)]),
            mv(3, 1, MoveKind::Reversal { of: id(2) }, &[(1, -5_000)]),
        ]);
        assert_eq!(lots.holdings(id(1)), BTreeMap::from([(store(0), 10_000)]));
    }

    #[test]
    fn transfers_and_replacements_carry_the_selling_store() {
        // Sold at A onto card 1, moved to card 2 at C, spent at B.
        let (_, flows) = PrincipalLots::attribute(&[
            mv(1, 0, MoveKind::Other, &[(1, 10_000)]),
            mv(2, 2, MoveKind::Other, &[(1, -10_000), (2, 10_000)]),
            mv(3, 1, MoveKind::Consumption, &[(2, -3_000)]),
            mv(4, 1, MoveKind::Refund, &[(2, -7_000)]),
        ]);
        assert_eq!(
            flows
                .iter()
                .map(|f| (f.kind, f.origin, f.at, f.amount))
                .collect::<Vec<_>>(),
            vec![
                (FlowKind::Consumption, store(0), store(1), 3_000),
                (FlowKind::Refund, store(0), store(1), 7_000),
            ]
        );
    }

    #[test]
    fn uncounted_moves_only_build_lots() {
        let mut moves = vec![
            mv(1, 0, MoveKind::Other, &[(1, 10_000)]),
            mv(2, 1, MoveKind::Consumption, &[(1, -1_000)]),
        ];
        moves[1].counted = false;
        let (lots, flows) = PrincipalLots::attribute(&moves);
        assert!(flows.is_empty());
        assert_eq!(lots.holdings(id(1)), BTreeMap::from([(store(0), 9_000)]));
    }

    #[test]
    fn pairs_net_both_directions() {
        let f = |o: u8, a: u8, amount: i64| Flow {
            txn: id(0),
            kind: FlowKind::Consumption,
            origin: store(o),
            at: store(a),
            amount,
        };
        let n = net_pairs(&[f(0, 1, 500), f(1, 0, 800), f(2, 2, 999), f(0, 2, 100)]);
        assert_eq!(
            n,
            vec![
                NetDebt {
                    payer: store(1),
                    payee: store(0),
                    amount: 300
                },
                NetDebt {
                    payer: store(0),
                    payee: store(2),
                    amount: 100
                },
            ]
        );
    }

    fn arb_moves() -> impl Strategy<Value = Vec<(u8, u8, u8, i64)>> {
        // (what, account, store, amount): 0 top-up, 1 spend, 2 refund, 3 transfer, 4 reversal.
        prop::collection::vec((0u8..5, 0u8..3, 0u8..3, 1i64..50_000), 1..60)
    }

    proptest! {
        /// Lots always sum to each account's balance; every fen consumed is attributed to
        /// exactly one selling store; netting keeps each store's net position.
        #[test]
        fn lots_follow_the_balances(ops in arb_moves()) {
            let mut balances = [0i64; 3];
            let mut moves: Vec<PrincipalMove> = Vec::new();
            let mut consumed = 0i64;
            let mut reversible: Vec<(usize, i64)> = Vec::new();
            for (n, (what, acc, at, amount)) in ops.into_iter().enumerate() {
                let a = acc as usize;
                let txn = n as u128;
                match what {
                    0 => {
                        balances[a] += amount;
                        moves.push(mv(txn, at, MoveKind::Other, &[(acc as u128, amount)]));
                    }
                    1 | 2 => {
                        let x = amount.min(balances[a]);
                        if x == 0 { continue; }
                        balances[a] -= x;
                        consumed += x;
                        let kind = if what == 1 { MoveKind::Consumption } else { MoveKind::Refund };
                        reversible.push((moves.len(), x));
                        moves.push(mv(txn, at, kind, &[(acc as u128, -x)]));
                    }
                    3 => {
                        let to = (a + 1) % 3;
                        let x = amount.min(balances[a]);
                        if x == 0 { continue; }
                        balances[a] -= x;
                        balances[to] += x;
                        moves.push(mv(txn, at, MoveKind::Other, &[(acc as u128, -x), (to as u128, x)]));
                    }
                    _ => {
                        let Some((i, x)) = reversible.pop() else { continue };
                        let original = moves[i].clone();
                        let (acc2, _) = original.legs[0];
                        let k = (acc2.as_u128() - 1000) as usize;
                        balances[k] += x;
                        consumed -= x;
                        moves.push(PrincipalMove {
                            txn: id(txn),
                            store: store(at),
                            kind: MoveKind::Reversal { of: original.txn },
                            counted: true,
                            legs: vec![(acc2, x)],
                        });
                    }
                }
            }
            let (lots, flows) = PrincipalLots::attribute(&moves);
            for (a, b) in balances.iter().enumerate() {
                let held: i64 = lots.holdings(id(a as u128)).values().sum();
                prop_assert_eq!(held, *b);
                prop_assert!(lots.holdings(id(a as u128)).values().all(|v| *v > 0));
            }
            prop_assert_eq!(flows.iter().map(|f| f.amount).sum::<i64>(), consumed);
            prop_assert!(flows.iter().all(|f| f.origin.is_some()), "every lot has a known seller");
            // Net position of each store: owed to it minus owed by it.
            let mut gross: BTreeMap<Option<StoreId>, i64> = BTreeMap::new();
            for f in flows.iter().filter(|f| f.origin != f.at) {
                *gross.entry(f.at).or_insert(0) += f.amount;
                *gross.entry(f.origin).or_insert(0) -= f.amount;
            }
            let mut netted: BTreeMap<Option<StoreId>, i64> = BTreeMap::new();
            for d in net_pairs(&flows) {
                prop_assert!(d.amount > 0 && d.payer != d.payee);
                *netted.entry(d.payee).or_insert(0) += d.amount;
                *netted.entry(d.payer).or_insert(0) -= d.amount;
            }
            gross.retain(|_, v| *v != 0);
            netted.retain(|_, v| *v != 0);
            prop_assert_eq!(gross, netted);
        }
    }
}
