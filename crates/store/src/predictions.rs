//! What SQLite's one writer expects to find when it posts: the balances, chain heads and
//! receipt counters the posts before it left.
//!
//! A post must know an account's balance, the chain head and the store's receipt count
//! before it can write its entries (each records its balance after and chains to the
//! previous hash) and its bill's number. Read from the database, that is a round trip to
//! the writer's thread in the middle of the post, while every other post waits for the
//! writer. SQLite has one writer connection per process, so the values its last posts
//! wrote are known here, and a post can send everything in one batch instead.
//!
//! A prediction is only a guess: every statement that uses one says so in its `WHERE`
//! (`balance = <predicted>`, `seq = <predicted> AND hash = <predicted>`, `n =
//! <predicted>`) and expects its rows, so a wrong guess (another process wrote, a group
//! rolled back) changes nothing and fails the post's batch; the post is then forgotten
//! here and made again the ordinary way, reading what it needs (ledger_shared.rs). No
//! figure is ever written from a guess the database did not confirm in the same
//! statement.

use chrono::NaiveDate;
use std::collections::HashMap;
use uuid::Uuid;

/// Kept values at most per kind; beyond, that kind is forgotten and learnt again.
const MAX_KEPT: usize = 100_000;

/// The values the writer's last posts left, by tenant.
#[derive(Default, Debug)]
pub(crate) struct Predictions {
    balances: HashMap<(Uuid, Uuid), i64>,
    heads: HashMap<Uuid, (i64, String)>,
    counters: HashMap<(Uuid, Uuid, NaiveDate), i64>,
    /// Posts sent from a guess, and guesses found wrong (for the benches and tests).
    guessed: u64,
    wrong: u64,
}

/// A post's error when a statement found other values than its guess: the post changed
/// nothing and is made again the ordinary way (never reaches a caller).
pub(crate) const GUESS_WRONG: &str = "ledger_guess_wrong";

/// One account a post moves: its id, the amount, and the floor it must not cross.
pub(crate) struct Move {
    pub account: Uuid,
    pub amount: i64,
    pub floor: Option<i64>,
}

/// What a post may send in one batch: each account's balance before (in the order
/// asked), the chain head before, the receipt count before.
#[derive(Debug, PartialEq)]
pub(crate) struct Guess {
    pub balances: Vec<i64>,
    pub head: Option<(i64, String)>,
    pub counter: Option<i64>,
}

/// What one post left: learnt once its statements have run.
#[derive(Debug, Default)]
pub(crate) struct Left {
    pub tenant: Uuid,
    /// Each account's balance after the post.
    pub balances: Vec<(Uuid, i64)>,
    /// The chain head after the post (its last entry's sequence number and hash).
    pub head: Option<(i64, String)>,
    /// A store's receipt count on a business day after the post.
    pub counter: Option<(Uuid, NaiveDate, i64)>,
}

impl Predictions {
    /// The balance an account holds, if a post of this writer left it.
    pub(crate) fn balance(&self, tenant: Uuid, account: Uuid) -> Option<i64> {
        self.balances.get(&(tenant, account)).copied()
    }

    /// The tenant's chain head, if a post of this writer left it.
    pub(crate) fn head(&self, tenant: Uuid) -> Option<(i64, String)> {
        self.heads.get(&tenant).cloned()
    }

    /// The receipt count of a store's business day, if a post of this writer left it.
    pub(crate) fn counter(&self, tenant: Uuid, store: Uuid, day: NaiveDate) -> Option<i64> {
        self.counters.get(&(tenant, store, day)).copied()
    }

    /// The guess for a post that moves `moves` (distinct accounts), takes a chain head
    /// if `head` and a receipt number of `counter`'s store and day if any: `None` unless
    /// every value is known and no move would cross its floor (the ordinary way then
    /// refuses it with the account named).
    pub(crate) fn guess(
        &mut self,
        tenant: Uuid,
        moves: &[Move],
        head: bool,
        counter: Option<(Uuid, NaiveDate)>,
    ) -> Option<Guess> {
        let balances = moves
            .iter()
            .map(|m| {
                let before = self.balance(tenant, m.account)?;
                let after = before.checked_add(m.amount)?;
                m.floor.is_none_or(|f| after >= f).then_some(before)
            })
            .collect::<Option<Vec<i64>>>()?;
        let head = if head { Some(self.head(tenant)?) } else { None };
        let counter = match counter {
            Some((store, day)) => Some(self.counter(tenant, store, day)?),
            None => None,
        };
        self.guessed += 1;
        Some(Guess {
            balances,
            head,
            counter,
        })
    }

    /// Keeps what a post left.
    pub(crate) fn learn(&mut self, left: Left) {
        let t = left.tenant;
        if self.balances.len() + left.balances.len() > MAX_KEPT {
            self.balances.clear();
        }
        for (account, balance) in left.balances {
            self.balances.insert((t, account), balance);
        }
        if let Some(head) = left.head {
            if self.heads.len() >= MAX_KEPT {
                self.heads.clear();
            }
            self.heads.insert(t, head);
        }
        if let Some((store, day, n)) = left.counter {
            if self.counters.len() >= MAX_KEPT {
                self.counters.clear();
            }
            self.counters.insert((t, store, day), n);
        }
    }

    /// Forgets every value: after a post that failed, whatever it was guessing or
    /// leaving may not be what the database holds.
    pub(crate) fn forget(&mut self) {
        self.balances.clear();
        self.heads.clear();
        self.counters.clear();
    }

    /// Forgets every value after a guess the database did not confirm, and counts it.
    pub(crate) fn wrong(&mut self) {
        self.wrong += 1;
        self.forget();
    }

    /// Posts sent from a guess so far, and the guesses found wrong.
    pub(crate) fn counts(&self) -> (u64, u64) {
        (self.guessed, self.wrong)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 24).unwrap()
    }

    #[test]
    fn a_post_leaves_what_the_next_one_finds_per_tenant() {
        let (t, u, a, s) = (
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
        );
        let mut p = Predictions::default();
        assert_eq!(p.balance(t, a), None);
        p.learn(Left {
            tenant: t,
            balances: vec![(a, 500)],
            head: Some((7, "h7".into())),
            counter: Some((s, day(), 3)),
        });
        assert_eq!(p.balance(t, a), Some(500));
        assert_eq!(p.head(t), Some((7, "h7".into())));
        assert_eq!(p.counter(t, s, day()), Some(3));
        // Another tenant finds nothing of this one's.
        assert_eq!(p.balance(u, a), None);
        assert_eq!(p.head(u), None);
        assert_eq!(p.counter(u, s, day()), None);
        // A later post's values replace the earlier ones; what it left out stays.
        p.learn(Left {
            tenant: t,
            balances: vec![(a, 300)],
            head: None,
            counter: None,
        });
        assert_eq!(p.balance(t, a), Some(300));
        assert_eq!(p.head(t), Some((7, "h7".into())));
        p.forget();
        assert_eq!(p.balance(t, a), None);
        assert_eq!(p.head(t), None);
        assert_eq!(p.counter(t, s, day()), None);
    }

    #[test]
    fn a_guess_needs_every_value_and_respects_floors() {
        let (t, a, b, s) = (
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
        );
        let mut p = Predictions::default();
        let spend = |account, amount| Move {
            account,
            amount,
            floor: Some(0),
        };
        // Nothing known yet.
        assert_eq!(p.guess(t, &[spend(a, -100)], false, None), None);
        p.learn(Left {
            tenant: t,
            balances: vec![(a, 500), (b, 0)],
            head: Some((9, "h9".into())),
            counter: Some((s, day(), 41)),
        });
        assert_eq!(
            p.guess(t, &[spend(a, -100)], true, Some((s, day()))),
            Some(Guess {
                balances: vec![500],
                head: Some((9, "h9".into())),
                counter: Some(41),
            })
        );
        // Exactly down to the floor is fine; below it is left to the ordinary way.
        assert!(p.guess(t, &[spend(a, -500)], false, None).is_some());
        assert_eq!(p.guess(t, &[spend(a, -501)], false, None), None);
        // An account without a floor may go anywhere.
        let revenue = Move {
            account: b,
            amount: -7,
            floor: None,
        };
        assert_eq!(
            p.guess(t, &[revenue], false, None).map(|g| g.balances),
            Some(vec![0])
        );
        // A day or store never counted, an unknown account: no guess.
        let other_day = day().succ_opt().unwrap();
        assert_eq!(p.guess(t, &[], false, Some((s, other_day))), None);
        assert_eq!(p.guess(t, &[spend(Uuid::now_v7(), 1)], false, None), None);
        // Another tenant's head is not this one's.
        assert_eq!(p.guess(Uuid::now_v7(), &[], true, None), None);
    }

    #[test]
    fn too_many_balances_are_forgotten_not_kept_forever() {
        let t = Uuid::now_v7();
        let mut p = Predictions::default();
        let first = Uuid::now_v7();
        p.learn(Left {
            tenant: t,
            balances: vec![(first, 1)],
            ..Left::default()
        });
        for _ in 0..MAX_KEPT {
            p.learn(Left {
                tenant: t,
                balances: vec![(Uuid::now_v7(), 1)],
                ..Left::default()
            });
        }
        assert!(p.balances.len() <= MAX_KEPT);
        assert_eq!(p.balance(t, first), None);
    }
}
