//! Property test of the ledger through the use cases, on a real SQLite file: random
//! sequences of top-ups, spends, transfers, adjustments, reversals, card closures, and the
//! points side: purchases that earn, gift redemptions and expiry runs.
//! After every sequence: every transaction balances, cached balances equal the sum of
//! entries, the hash chain is intact, no balance is negative, and the principal refunded
//! never exceeds the principal paid in; the points lots of every account sum to its balance
//! (checked by verify).

use patron_app::auth::InitRequest;
use patron_app::cards::{Adjustment, CloseCard, IssueCard, Reverse, Spend, TopUp, Transfer};
use patron_app::{Actor, App, AppError};
use patron_domain::card::CardKinds;
use patron_domain::ids::CardId;
use patron_domain::ledger::Tender;
use patron_domain::money::Money;
use patron_domain::settings::TenantSettings;
use patron_domain::stored_value::PrepaidPolicy;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    TopUp(usize, i64),
    Spend(usize, i64),
    Transfer(usize, usize, i64),
    Adjust(usize, u8, i64),
    ReverseRecent(usize),
    Close(usize),
    Purchase(usize, i64),
    Gift(usize),
    /// Runs the loyalty jobs this many days ahead (points expire after a month here).
    Expire(i64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..3usize, 1i64..2_000_000).prop_map(|(c, a)| Op::TopUp(c, a)),
        4 => (0..3usize, 1i64..500_000).prop_map(|(c, a)| Op::Spend(c, a)),
        1 => (0..3usize, 0..3usize, 1i64..300_000).prop_map(|(a, b, x)| Op::Transfer(a, b, x)),
        1 => (0..3usize, 0..3u8, -50_000i64..50_000).prop_map(|(c, k, a)| Op::Adjust(c, k, a)),
        1 => (0..8usize).prop_map(Op::ReverseRecent),
        1 => (0..3usize).prop_map(Op::Close),
        3 => (0..3usize, 1i64..300_000).prop_map(|(c, a)| Op::Purchase(c, a)),
        1 => (0..3usize).prop_map(Op::Gift),
        1 => (20i64..120).prop_map(Op::Expire),
    ]
}

struct World {
    app: App,
    actor: Actor,
    cards: Vec<CardId>,
    gift: uuid::Uuid,
    _dir: patron_store::testing::TempDirGuard,
}

async fn world() -> World {
    let (storage, dir) = patron_store::testing::fresh_sqlite().await;
    let app = App::new(storage, b"property-test-key-property-test-key".to_vec());
    app.init_tenant(InitRequest {
        tenant_code: "prop".into(),
        tenant_name: "Prop".into(),
        store_code: "main".into(),
        store_name: "总店".into(),
        username: "owner".into(),
        display_name: "Owner".into(),
        password: "correct horse battery".into(),
    })
    .await
    .unwrap();
    let login = app
        .login("prop", "owner", "correct horse battery", Some("main"))
        .await
        .unwrap();
    let actor = app.authenticate(&login.token).await.unwrap();
    app.save_settings(
        &actor,
        &TenantSettings {
            pin_required: false,
            prepaid: PrepaidPolicy::UNCAPPED,
            points: patron_domain::points::PointsRules {
                expiry: patron_domain::points::Expiry::Rolling { months: 1 },
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let holder = app
        .create_customer(
            &actor,
            &patron_domain::customer::CustomerInput {
                name: Some("持卡人".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut cards = Vec::new();
    for _ in 0..3 {
        let req = IssueCard {
            customer_id: Some(holder.id),
            medium: patron_domain::card::CardMedium::Electronic,
            kinds: CardKinds::default(),
            number: None,
            pin: None,
            pool_to_org: false,
            fee: None,
            fee_tender: None,
            idempotency_key: None,
        };
        cards.push(app.issue_card(&actor, &req).await.unwrap().card.id);
    }
    let gift = app
        .create_gift(
            &actor,
            &patron_app::loyalty::GiftInput {
                name: "甜品".into(),
                name_en: "Dessert".into(),
                points_price: 300,
                stock: None,
                active: true,
            },
        )
        .await
        .unwrap()
        .id;
    World {
        app,
        actor,
        cards,
        gift,
        _dir: dir,
    }
}

fn key() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Refusals the rules allow (insufficient funds, closed cards...); anything else fails.
fn allowed(
    r: Result<patron_app::cards::LedgerReceipt, AppError>,
) -> Option<patron_app::cards::LedgerReceipt> {
    match r {
        Ok(x) => Some(x),
        Err(AppError::Conflict { .. } | AppError::Validation(_)) => None,
        Err(e) => panic!("unexpected error: {e:?}"),
    }
}

async fn run(ops: Vec<Op>) {
    let w = world().await;
    let (app, a) = (&w.app, &w.actor);
    let mut txns: Vec<uuid::Uuid> = Vec::new();
    let mut paid_in = 0i64;
    let mut refunded = 0i64;
    for op in ops {
        let r = match op {
            Op::TopUp(c, amount) => {
                let r = allowed(
                    app.top_up(
                        a,
                        w.cards[c],
                        &TopUp {
                            amount: Money::from_fen(amount),
                            tender: Tender::Cash,
                            idempotency_key: key(),
                        },
                    )
                    .await,
                );
                if r.is_some() {
                    paid_in += amount;
                }
                r
            }
            Op::Spend(c, amount) => allowed(
                app.spend(
                    a,
                    w.cards[c],
                    &Spend {
                        amount: Money::from_fen(amount),
                        pin: None,
                        pin_token: None,
                        idempotency_key: key(),
                        memo: None,
                    },
                )
                .await,
            ),
            Op::Transfer(x, y, amount) => allowed(
                app.transfer(
                    a,
                    w.cards[x],
                    &Transfer {
                        to_card_id: w.cards[y],
                        amount: Money::from_fen(amount),
                        pin: None,
                        pin_token: None,
                        idempotency_key: key(),
                    },
                )
                .await,
            ),
            Op::Adjust(c, k, amount) => {
                let balance = ["principal", "bonus", "points"][k as usize].to_string();
                let r = allowed(
                    app.adjust(
                        a,
                        w.cards[c],
                        &Adjustment {
                            balance,
                            amount,
                            reason: "盘点更正".into(),
                            idempotency_key: key(),
                            approval: None,
                        },
                    )
                    .await,
                );
                if r.is_some() && k == 0 && amount > 0 {
                    paid_in += amount;
                }
                r
            }
            Op::ReverseRecent(back) => match txns.len().checked_sub(back + 1).map(|i| txns[i]) {
                Some(t) => allowed(
                    app.reverse(
                        a,
                        t,
                        &Reverse {
                            reason: "撤销".into(),
                            idempotency_key: key(),
                            approval: None,
                        },
                    )
                    .await,
                ),
                None => None,
            },
            Op::Purchase(c, amount) => allowed(
                app.record_purchase(
                    a,
                    &patron_app::loyalty::RecordPurchase {
                        card_id: Some(w.cards[c]),
                        customer_id: None,
                        amount: Money::from_fen(amount),
                        payments: vec![patron_app::loyalty::PaymentLine {
                            method: "cash".into(),
                            amount: Money::from_fen(amount),
                        }],
                        idempotency_key: key(),
                        memo: None,
                    },
                )
                .await
                .map(|(r, _)| r),
            ),
            Op::Gift(c) => allowed(
                app.redeem_gift(
                    a,
                    w.cards[c],
                    &patron_app::loyalty::RedeemGift {
                        gift_id: w.gift,
                        quantity: None,
                        idempotency_key: key(),
                    },
                )
                .await,
            ),
            Op::Expire(days) => {
                let today = chrono::Utc::now().date_naive() + chrono::Duration::days(days);
                app.run_jobs_for(a.tenant_id, "prop", Some(today), true)
                    .await
                    .unwrap();
                None
            }
            Op::Close(c) => {
                let r = allowed(
                    app.close_card(
                        a,
                        w.cards[c],
                        &CloseCard {
                            refund_tender: Tender::Cash,
                            reason: "退卡".into(),
                            idempotency_key: key(),
                        },
                    )
                    .await,
                );
                if let Some(x) = &r {
                    refunded += x.details["refunded_principal"].as_i64().unwrap_or(0);
                }
                r
            }
        };
        if let Some(receipt) = r {
            txns.push(receipt.txn_id);
            // The receipt's "after" is what the card shows now.
            if let Some(card) = receipt.card_id {
                let view = app.card_view(a, card).await.unwrap();
                if receipt.kind != "transfer" || view.card.id == card {
                    assert_eq!(view.balances, receipt.after, "{receipt:?}");
                }
            }
        }
    }
    let report = app.verify_ledger().await.unwrap();
    assert!(report.is_clean(), "{:#?}", report.violations);
    for c in &w.cards {
        let b = app.card_view(a, *c).await.unwrap().balances;
        assert!(
            b.principal.fen() >= 0 && b.bonus.fen() >= 0 && b.points >= 0,
            "{b:?}"
        );
    }
    // Principal comes in by top-ups (and by hand, in adjustments): refunds never exceed it.
    assert!(refunded <= paid_in, "refunded {refunded} of {paid_in}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn random_sequences_keep_the_books(ops in proptest::collection::vec(op(), 1..40)) {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(run(ops));
    }
}

/// A request dropped mid-posting (the client hung up, a timeout) at any point leaves
/// nothing half-done and the writer usable: on SQLite `BEGIN` and `COMMIT` travel inside
/// the posting's batches (crates/store/src/writer.rs), so a posting cut off between them
/// must roll back. Every request is then retried with its key: each top-up counts exactly
/// once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_postings_leave_nothing_half_done() {
    let w = world().await;
    let (app, a, card) = (&w.app, &w.actor, w.cards[0]);
    let top_up = |k: &str, amount: Money| TopUp {
        amount,
        tender: Tender::Cash,
        idempotency_key: k.to_string(),
    };
    let spend = |k: &str| Spend {
        amount: Money::from_fen(1),
        pin: None,
        pin_token: None,
        idempotency_key: k.to_string(),
        memo: None,
    };
    app.top_up(a, card, &top_up(&key(), Money::from_yuan(1_000)))
        .await
        .unwrap();
    let before = app.card_view(a, card).await.unwrap().balances;
    let mut keys = Vec::new();
    let mut cut_off = 0;
    for i in 0..300u64 {
        let k = key();
        // Deadlines from 0 to ~3 ms land before, inside and after the batches.
        let limit = std::time::Duration::from_micros((i * 37) % 3_000);
        // A request that runs to its end succeeds: none finds the writer left
        // mid-transaction by one cut off before it.
        let done = if i % 2 == 0 {
            tokio::time::timeout(
                limit,
                app.top_up(a, card, &top_up(&k, Money::from_fen(100))),
            )
            .await
            .map(|r| r.map(drop))
        } else {
            tokio::time::timeout(limit, app.spend(a, card, &spend(&k)))
                .await
                .map(|r| r.map(drop))
        };
        let done = match done {
            Ok(Ok(())) => true,
            Ok(Err(e)) => panic!("request {i} failed: {e:?}"),
            Err(_elapsed) => false,
        };
        cut_off += usize::from(!done);
        keys.push((i, k));
    }
    assert!(cut_off > 50, "only {cut_off} requests were cut off");
    for (i, k) in &keys {
        if i % 2 == 0 {
            app.top_up(a, card, &top_up(k, Money::from_fen(100)))
                .await
                .unwrap();
        } else {
            app.spend(a, card, &spend(k)).await.unwrap();
        }
    }
    let after = app.card_view(a, card).await.unwrap().balances;
    // 150 top-ups of 1.00 and 150 spends of 0.01, each exactly once.
    assert_eq!(
        after.money().fen() - before.money().fen(),
        150 * 100 - 150,
        "{before:?} → {after:?}"
    );
    let report = app.verify_ledger().await.unwrap();
    assert!(report.is_clean(), "{:#?}", report.violations);
}

/// Posts waiting for SQLite's one writer share a commit (crates/store/src/writer.rs), and
/// a post that fails inside a group fails alone: 48 spends of ¥5 race for a card that
/// pays 20 of them, while another card takes 24 top-ups. Exactly the affordable spends
/// and every top-up land, in fewer commits than posts, and the books verify.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_posts_share_commits_and_fail_alone() {
    let w = world().await;
    let (app, a) = (&w.app, &w.actor);
    let (spent, filled) = (w.cards[0], w.cards[1]);
    let top_up = |amount: Money| TopUp {
        amount,
        tender: Tender::Cash,
        idempotency_key: key(),
    };
    // Drain the card to exactly ¥100.
    let have = app.card_view(a, spent).await.unwrap().balances.money();
    if have.fen() > 0 {
        app.spend(
            a,
            spent,
            &Spend {
                amount: have,
                pin: None,
                pin_token: None,
                idempotency_key: key(),
                memo: None,
            },
        )
        .await
        .unwrap();
    }
    app.top_up(a, spent, &top_up(Money::from_yuan(100)))
        .await
        .unwrap();
    let filled_before = app.card_view(a, filled).await.unwrap().balances.money();
    let (posts_before, commits_before) =
        app.storage.commit_sharing().expect("SQLite shares commits");
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..72 {
        let (app, a) = (app.clone(), a.clone());
        tasks.spawn(async move {
            if i % 3 == 2 {
                app.top_up(
                    &a,
                    filled,
                    &TopUp {
                        amount: Money::from_yuan(1),
                        tender: Tender::Cash,
                        idempotency_key: key(),
                    },
                )
                .await
                .map(drop)
                .map_err(|e| format!("top-up: {e:?}"))
                .map(|()| false)
            } else {
                let spend = Spend {
                    amount: Money::from_yuan(5),
                    pin: None,
                    pin_token: None,
                    idempotency_key: key(),
                    memo: None,
                };
                match app.spend(&a, spent, &spend).await {
                    Ok(_) => Ok(true),
                    Err(AppError::Conflict {
                        code: "insufficient_balance",
                        ..
                    }) => Ok(false),
                    Err(e) => Err(format!("spend: {e:?}")),
                }
            }
        });
    }
    let mut spends = 0;
    while let Some(done) = tasks.join_next().await {
        spends += usize::from(done.unwrap().unwrap());
    }
    assert_eq!(spends, 20, "¥100 pays twenty spends of ¥5");
    assert_eq!(
        app.card_view(a, spent)
            .await
            .unwrap()
            .balances
            .money()
            .fen(),
        0
    );
    assert_eq!(
        app.card_view(a, filled)
            .await
            .unwrap()
            .balances
            .money()
            .fen()
            - filled_before.fen(),
        24 * 100
    );
    let (posts, commits) = app.storage.commit_sharing().unwrap();
    let (posts, commits) = (posts - posts_before, commits - commits_before);
    assert_eq!(posts, 20 + 24, "every successful post counted once");
    assert!(
        commits < posts,
        "{posts} posts took {commits} commits: none shared"
    );
    let report = app.verify_ledger().await.unwrap();
    assert!(report.is_clean(), "{:#?}", report.violations);
}

/// SQLite's writer sends a post in one batch from what its last posts left (balances,
/// the chain head), checked by every statement (crates/store/src/predictions.rs). A
/// second process writing the same file makes those predictions wrong: here two stores
/// on one file post in turn on the same cards, so each finds the other moved the
/// balances and the head. Every post still lands once with the right balances, the
/// wrong guesses are noticed and the posts made again, and the books verify.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_writer_on_the_file_cannot_mislead_the_first() {
    let w = world().await;
    let (first, a) = (&w.app, &w.actor);
    let path = w._dir.path().join("patron.db");
    let other = patron_store::sqlite::SqliteStorage::open(path.to_str().unwrap())
        .await
        .unwrap();
    let second = App::new(
        std::sync::Arc::new(other),
        b"property-test-key-property-test-key".to_vec(),
    );
    let login = second
        .login("prop", "owner", "correct horse battery", Some("main"))
        .await
        .unwrap();
    let b = second.authenticate(&login.token).await.unwrap();
    let card = w.cards[0];
    let start = first
        .card_view(a, card)
        .await
        .unwrap()
        .balances
        .money()
        .fen();
    let top_up = |yuan| TopUp {
        amount: Money::from_yuan(yuan),
        tender: Tender::Cash,
        idempotency_key: key(),
    };
    let spend = |yuan| Spend {
        amount: Money::from_yuan(yuan),
        pin: None,
        pin_token: None,
        idempotency_key: key(),
        memo: None,
    };
    let (g0, w0) = first.storage.guessing().expect("SQLite predicts");
    for _ in 0..5 {
        // Each app posts three times in a row (the last from what its own posts left),
        // then the other app's next post finds its predictions stale.
        first.top_up(a, card, &top_up(10)).await.unwrap();
        first.spend(a, card, &spend(3)).await.unwrap();
        first.top_up(a, card, &top_up(1)).await.unwrap();
        second.top_up(&b, card, &top_up(7)).await.unwrap();
        second.spend(&b, card, &spend(2)).await.unwrap();
        second.top_up(&b, card, &top_up(1)).await.unwrap();
    }
    let end = second
        .card_view(&b, card)
        .await
        .unwrap()
        .balances
        .money()
        .fen();
    assert_eq!(end - start, 5 * (10 - 3 + 1 + 7 - 2 + 1) * 100);
    for (who, app, (g0, w0)) in [("first", first, (g0, w0)), ("second", &second, (0, 0))] {
        let (g, w) = app.storage.guessing().unwrap();
        let (guessed, wrong) = (g - g0, w - w0);
        assert!(
            wrong >= 4,
            "{who}: the other's posts made {wrong} guesses wrong"
        );
        assert!(
            guessed - wrong >= 5,
            "{who}: {guessed} guessed, {wrong} wrong"
        );
    }
    let report = first.verify_ledger().await.unwrap();
    assert!(report.is_clean(), "{:#?}", report.violations);
}
