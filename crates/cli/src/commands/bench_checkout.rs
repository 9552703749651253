//! `patron bench checkout`: checkout throughput at the use-case layer (`App::checkout`, in
//! process) for a typical bill — 6 lines at gold member prices, one coupon, paid from
//! stored value with a verified PIN, earning points — against the bare TPC-B-like loop of
//! `bench ledger` (and pgbench's tpcb-like script on PostgreSQL), same run, same database,
//! with 1 and 16 concurrent tills.
//!
//! The bench works in a fresh tenant of its own (`bench-checkout-<random>`). Everything a
//! till would have before the bill — members, cards, balances, coupons — is made before
//! timing starts; each till verifies its card's PIN once per session (`App::verify_pin`,
//! argon2) and sends the short-lived token with every bill, which is how the PIN hash stays
//! off the hot path without being weakened. After the run `App::verify_ledger` checks the
//! books.

use super::bench_all::{BenchRow, Unit};
use super::bench_ledger::{
    BarePool, Cell, WriterCounts, load_average, measure, ms, on_path, per_op, print_table,
    run_pgbench, sharing_note, written_note,
};
use crate::config::{open_app, redact};
use anyhow::{Context, bail, ensure};
use patron_app::auth::InitRequest;
use patron_app::cards::{IssueCard, MAX_AMOUNT, PIN_TOKEN_TTL, TopUp};
use patron_app::checkout::{BillLineInput, CheckoutRequest, CustomerRef, TenderInput};
use patron_app::coupons::TemplateInput;
use patron_app::loyalty::SetLevel;
use patron_app::menu::{NewCategory, NewItem};
use patron_app::{Actor, App};
use patron_domain::card::{CardKinds, CardMedium};
use patron_domain::coupon::{CouponKind, Validity};
use patron_domain::customer::CustomerInput;
use patron_domain::ids::{CardId, CustomerId};
use patron_domain::ledger::Tender;
use patron_domain::menu::MemberPriceInput;
use patron_domain::money::Money;
use patron_domain::pricing::DiscountKind;
use patron_domain::stored_value::PrepaidPolicy;
use patron_store::Backend;
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

#[derive(clap::Args)]
pub struct Args {
    /// Seconds each measurement runs.
    #[arg(long, default_value_t = 10)]
    pub(crate) seconds: u64,
    /// Concurrent tills, comma-separated (each with its own member, card and coupons).
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    pub(crate) clients: Vec<usize>,
    /// Skip pgbench even when it is on PATH.
    #[arg(long)]
    pub(crate) skip_pgbench: bool,
}

/// Tills the targets are stated for.
const TARGET_CLIENTS: usize = 16;
/// Untimed warm-up per cell; its rate sizes the coupon pools of the timed run.
const WARM_UP: Duration = Duration::from_secs(1);
/// Coupons per till available to the warm-up (it stops early when they run out).
const WARM_UP_COUPONS: usize = 100;
/// Timed coupons per till = the fastest till's warm-up rate × seconds × this, plus a margin.
const POOL_FACTOR: f64 = 2.0;
/// Most coupons issued in one call (`patron_app::coupons::MAX_BULK`).
const ISSUE_BATCH: usize = 10_000;

/// The menu: name, English name, regular price and gold member price, in yuan.
const MENU: [(&str, &str, i64, i64); 12] = [
    ("宫保鸡丁", "Kung Pao chicken", 48, 42),
    ("鱼香肉丝", "Yu-xiang shredded pork", 42, 38),
    ("清炒时蔬", "Stir-fried greens", 28, 24),
    ("麻婆豆腐", "Mapo tofu", 32, 28),
    ("红烧肉", "Red-braised pork belly", 68, 60),
    ("酸菜鱼", "Fish with pickled cabbage", 88, 78),
    ("小笼包", "Xiaolongbao", 36, 32),
    ("扬州炒饭", "Yangzhou fried rice", 26, 22),
    ("酸辣汤", "Hot and sour soup", 22, 18),
    ("米饭", "Steamed rice", 3, 3),
    ("酸梅汤", "Sour plum drink", 12, 10),
    ("青岛啤酒", "Tsingtao beer", 10, 8),
];
/// The bill: (index into MENU, quantity) — 6 lines, 9 dishes.
const BILL: [(usize, u32); 6] = [(0, 1), (2, 1), (4, 1), (5, 1), (9, 4), (11, 1)];

/// One till: the member it serves, their card, and what the till holds for them.
struct Till {
    customer: CustomerId,
    card: CardId,
    number: String,
    pin: String,
    /// The verified-PIN token of this till's session.
    token: Mutex<String>,
    /// Unused coupon codes issued to the member; each checkout takes one.
    coupons: Mutex<Vec<String>>,
}

struct Fixture {
    app: App,
    actor: Actor,
    template: Uuid,
    lines: Vec<BillLineInput>,
    tills: Vec<Till>,
}

impl Fixture {
    fn request(&self, i: usize, coupon: String) -> CheckoutRequest {
        let till = &self.tills[i];
        CheckoutRequest {
            lines: self.lines.clone(),
            // The till swipes the card: the card number identifies the member.
            customer: Some(CustomerRef {
                card_number: Some(till.number.clone()),
                ..Default::default()
            }),
            card_id: None,
            coupons: vec![coupon],
            points: None,
            tenders: vec![TenderInput {
                method: "stored_value".into(),
                amount: None,
            }],
            pin: None,
            pin_token: Some(till.token.lock().expect("token").clone()),
            party_size: Some(4),
            table: Some(format!("A{}", i + 1)),
            idempotency_key: Uuid::now_v7().to_string(),
        }
    }

    /// Takes one bill at till `i` (the measured operation).
    async fn checkout(&self, i: usize) -> anyhow::Result<()> {
        let Some(coupon) = self.tills[i].coupons.lock().expect("coupons").pop() else {
            bail!(
                "till {i} ran out of coupons (the pool is sized from the warm-up's rate): run again"
            );
        };
        let req = self.request(i, coupon);
        match self.app.checkout(&self.actor, &req).await {
            Ok(o) if o.ledger.replayed => bail!("checkout: a fresh key was answered as a replay"),
            Ok(o) if o.earned.points_earned <= 0 => bail!("checkout: no points earned"),
            Ok(_) => Ok(()),
            Err(e) => bail!("checkout at till {i}: {}", super::explain(&e)),
        }
    }

    /// Issues coupons to till `i`'s member until it holds `want`.
    async fn fill_coupons(&self, i: usize, want: usize) -> anyhow::Result<usize> {
        let have = self.tills[i].coupons.lock().expect("coupons").len();
        let mut missing = want.saturating_sub(have);
        let issued = missing;
        while missing > 0 {
            let n = missing.min(ISSUE_BATCH);
            let views = self
                .app
                .issue_coupons(
                    &self.actor,
                    self.template,
                    &vec![self.tills[i].customer; n],
                    None,
                )
                .await
                .map_err(|e| anyhow::anyhow!("issuing coupons: {}", super::explain(&e)))?;
            self.tills[i]
                .coupons
                .lock()
                .expect("coupons")
                .extend(views.into_iter().map(|v| v.coupon.code));
            missing -= n;
        }
        Ok(issued)
    }

    /// Tops till `i`'s card up so that every coupon it holds can pay a bill of `due`.
    async fn fill_balance(&self, i: usize, due: Money) -> anyhow::Result<()> {
        let bills = self.tills[i].coupons.lock().expect("coupons").len() as i64 + 1;
        let need = due.fen() * bills;
        let have = self
            .app
            .card_view(&self.actor, self.tills[i].card)
            .await?
            .balances
            .money()
            .fen();
        // Whole yuan, at most the largest single top-up each time.
        let mut missing = ((need - have).max(0) + 99) / 100 * 100;
        while missing > 0 {
            let amount = missing.min(MAX_AMOUNT.fen());
            self.app
                .top_up(
                    &self.actor,
                    self.tills[i].card,
                    &TopUp {
                        amount: Money::from_fen(amount),
                        tender: Tender::Cash,
                        idempotency_key: Uuid::now_v7().to_string(),
                    },
                )
                .await
                .map_err(|e| anyhow::anyhow!("topping up: {}", super::explain(&e)))?;
            missing -= amount;
        }
        Ok(())
    }

    /// Starts a session at each of the first `clients` tills: one `verify_pin` each.
    /// Returns the time of each call (ns).
    async fn verify_pins(&self, clients: usize) -> anyhow::Result<Vec<u64>> {
        let mut took = Vec::with_capacity(clients);
        for till in &self.tills[..clients] {
            let t = Instant::now();
            let (token, _) = self
                .app
                .verify_pin(&self.actor, till.card, &till.pin)
                .await
                .map_err(|e| anyhow::anyhow!("verifying a PIN: {}", super::explain(&e)))?;
            took.push(t.elapsed().as_nanos() as u64);
            *till.token.lock().expect("token") = token;
        }
        Ok(took)
    }
}

/// Runs `clients` tills untimed for up to [`WARM_UP`] (or until their coupons run out) and
/// returns the fastest till's rate (bills per second).
async fn warm_up(fx: &Arc<Fixture>, clients: usize) -> anyhow::Result<f64> {
    let deadline = Instant::now() + WARM_UP;
    let mut tasks = Vec::with_capacity(clients);
    for i in 0..clients {
        let fx = Arc::clone(fx);
        tasks.push(tokio::spawn(async move {
            let start = Instant::now();
            let mut done = 0u64;
            while Instant::now() < deadline
                && !fx.tills[i].coupons.lock().expect("coupons").is_empty()
            {
                fx.checkout(i).await?;
                done += 1;
            }
            anyhow::Ok(done as f64 / start.elapsed().as_secs_f64().max(1e-6))
        }));
    }
    let mut fastest: f64 = 0.0;
    for t in tasks {
        fastest = fastest.max(t.await??);
    }
    Ok(fastest)
}

async fn setup_tenant(app: App, tills: usize) -> anyhow::Result<(Fixture, String)> {
    let code = format!("bench-checkout-{:08x}", rand::random::<u32>());
    let password = format!("pw-{:016x}", rand::random::<u64>());
    app.init_tenant(InitRequest {
        tenant_code: code.clone(),
        tenant_name: "Checkout bench".into(),
        store_code: "main".into(),
        store_name: "Main".into(),
        username: "owner".into(),
        display_name: "Bench owner".into(),
        password: password.clone(),
    })
    .await
    .map_err(|e| anyhow::anyhow!("creating tenant {code}: {}", super::explain(&e)))?;
    let login = app
        .login(&code, "owner", &password, Some("main"))
        .await
        .map_err(|e| anyhow::anyhow!("logging in: {e}"))?;
    let actor = app
        .authenticate(&login.token)
        .await
        .map_err(|e| anyhow::anyhow!("authenticating: {e}"))?;
    let fail = |what: &'static str| {
        move |e: patron_app::AppError| anyhow::anyhow!("{what}: {}", super::explain(&e))
    };

    // PINs stay required (the default). No prepaid caps, so the large top-ups that fund
    // the run are accepted; levels end at gold, so that growth during the run cannot
    // upgrade a member and change the bill.
    let mut settings = app.settings(&actor).await?;
    settings.prepaid = PrepaidPolicy::UNCAPPED;
    if let Some(g) = settings.levels.levels.iter().position(|l| l.code == "gold") {
        settings.levels.levels.truncate(g + 1);
    }
    ensure!(
        settings.pin_required,
        "the default settings no longer require PINs"
    );
    app.save_settings(&actor, &settings)
        .await
        .map_err(fail("saving settings"))?;

    // The menu: 12 dishes, each (but rice) with a gold member price.
    let mut item_ids = Vec::new();
    for (c, (name, name_en)) in [("热菜", "Hot dishes"), ("主食饮品", "Staples and drinks")]
        .into_iter()
        .enumerate()
    {
        let category = app
            .create_menu_category(
                &actor,
                &NewCategory {
                    name: name.into(),
                    name_en: name_en.into(),
                    sort_order: None,
                },
            )
            .await
            .map_err(fail("creating a menu category"))?;
        for (name, name_en, price, gold) in &MENU[c * 6..c * 6 + 6] {
            let member_prices = if gold < price {
                vec![MemberPriceInput {
                    level: Some("gold".into()),
                    card_kind: None,
                    price: Money::from_yuan(*gold),
                }]
            } else {
                Vec::new()
            };
            let item = app
                .create_menu_item(
                    &actor,
                    &NewItem {
                        category_id: category.id,
                        name: (*name).into(),
                        name_en: (*name_en).into(),
                        price: Money::from_yuan(*price),
                        joins_discounts: true,
                        active: true,
                        member_prices,
                    },
                )
                .await
                .map_err(fail("creating a dish"))?;
            item_ids.push(item.item.id);
        }
    }
    let lines = BILL
        .iter()
        .map(|&(i, quantity)| BillLineInput {
            item_id: Some(item_ids[i]),
            name: None,
            quantity,
            unit_price: None,
        })
        .collect();

    // The coupon: ¥20 off a bill of ¥100, valid 30 days, stacks with member prices.
    let template = app
        .create_coupon_template(
            &actor,
            &TemplateInput {
                name: "满100减20".into(),
                name_en: "¥20 off ¥100".into(),
                kind: CouponKind::Cash {
                    value: Money::from_yuan(20),
                    min_spend: Some(Money::from_yuan(100)),
                },
                validity: Validity::DaysAfterIssue { days: 30 },
                excluded_weekdays: Vec::new(),
                excluded_hours: Vec::new(),
                store_ids: Vec::new(),
                level_codes: Vec::new(),
                per_customer_limit: None,
                stacks_with_coupons: false,
                stacks_with_member_price: true,
                transferable: false,
                points_price: None,
                active: true,
            },
        )
        .await
        .map_err(fail("creating the coupon template"))?;

    // One gold member per till, with an integrated card and a PIN.
    let mut out = Vec::with_capacity(tills);
    for i in 0..tills {
        let customer = app
            .create_customer(
                &actor,
                &CustomerInput {
                    name: Some(format!("Bench member {i}")),
                    ..Default::default()
                },
            )
            .await
            .map_err(fail("creating a customer"))?;
        app.set_level(
            &actor,
            customer.id,
            &SetLevel {
                level: "gold".into(),
                reason: "checkout bench: a typical gold member".into(),
            },
        )
        .await
        .map_err(fail("setting the level"))?;
        let pin = format!("{:06}", rand::random::<u32>() % 1_000_000);
        let card = app
            .issue_card(
                &actor,
                &IssueCard {
                    customer_id: Some(customer.id),
                    medium: CardMedium::Electronic,
                    kinds: CardKinds {
                        stored_value: true,
                        points: true,
                        member_price: true,
                    },
                    number: None,
                    pin: Some(pin.clone()),
                    pool_to_org: false,
                    fee: None,
                    fee_tender: None,
                    idempotency_key: None,
                },
            )
            .await
            .map_err(fail("issuing a card"))?;
        out.push(Till {
            customer: customer.id,
            card: card.card.id,
            number: card.card.number.clone(),
            pin,
            token: Mutex::new(String::new()),
            coupons: Mutex::new(Vec::new()),
        });
    }
    Ok((
        Fixture {
            app,
            actor,
            template: template.id,
            lines,
            tills: out,
        },
        code,
    ))
}

/// Quotes and takes one bill at till 0 (untimed), checks it is the bill this bench means
/// to measure, and describes it. Returns the amount due and the description.
async fn sample_bill(fx: &Fixture) -> anyhow::Result<(Money, String)> {
    fx.fill_coupons(0, 1).await?;
    let code = fx.tills[0]
        .coupons
        .lock()
        .expect("coupons")
        .pop()
        .expect("one coupon");
    let req = fx.request(0, code);
    let quote = fx
        .app
        .quote_checkout(&fx.actor, &req)
        .await
        .map_err(|e| anyhow::anyhow!("quoting the bill: {}", super::explain(&e)))?;
    let b = &quote.breakdown;
    let o = fx
        .app
        .checkout(&fx.actor, &req)
        .await
        .map_err(|e| anyhow::anyhow!("taking the sample bill: {}", super::explain(&e)))?;
    let tenders = &o.ledger.details["tenders"];
    let sv = tenders
        .as_array()
        .and_then(|t| t.iter().find(|t| t["method"] == "stored_value"));
    ensure!(
        b.total_of(DiscountKind::MemberPrice).fen() > 0,
        "the sample bill got no member price"
    );
    ensure!(
        b.coupons_applied.len() == 1,
        "the sample bill's coupon did not apply"
    );
    ensure!(
        sv.is_some(),
        "the sample bill was not paid from stored value"
    );
    ensure!(
        o.earned.points_earned > 0,
        "the sample bill earned no points"
    );
    let fen = |v: &serde_json::Value| Money::from_fen(v.as_i64().unwrap_or(0));
    let sv = sv.expect("checked");
    let dishes: u32 = req.lines.iter().map(|l| l.quantity).sum();
    let discounts: Vec<String> = b
        .discounts
        .iter()
        .map(|d| format!("{} −{}", d.label_en, d.amount))
        .collect();
    let text = format!(
        "bill: {} lines ({dishes} dishes) for a gold member, gross {}; {}; due {}; paid from stored value \
         (principal {}, bonus {}) with the PIN token; earns {} points",
        req.lines.len(),
        b.gross,
        discounts.join(", "),
        b.amount_due,
        fen(&sv["principal"]),
        fen(&sv["bonus"]),
        o.earned.points_earned
    );
    Ok((b.amount_due, text))
}

fn median(mut v: Vec<u64>) -> f64 {
    v.sort_unstable();
    v.get(v.len().saturating_sub(1) / 2)
        .map_or(f64::NAN, |&x| x as f64)
}

fn pct_of(a: f64, b: f64) -> String {
    if b.is_nan() || b <= 0.0 {
        "—".into()
    } else {
        format!("{:.0}%", 100.0 * a / b)
    }
}

pub async fn run(url: &str, key: &Path, args: Args) -> anyhow::Result<ExitCode> {
    run_rows(url, key, args).await.map(|(code, _)| code)
}

/// Prints the report and returns throughput and latency rows for `patron bench all`.
pub(crate) async fn run_rows(
    url: &str,
    key: &Path,
    args: Args,
) -> anyhow::Result<(ExitCode, Vec<BenchRow>)> {
    ensure!(args.seconds >= 1, "--seconds must be at least 1");
    // A till verifies its PIN right before each measurement; its token must outlive it.
    let max_seconds = (PIN_TOKEN_TTL.num_seconds() - 30).max(1) as u64;
    ensure!(
        args.seconds <= max_seconds,
        "--seconds must be at most {max_seconds}: a verified-PIN token lasts {} s",
        PIN_TOKEN_TTL.num_seconds()
    );
    ensure!(
        !args.clients.is_empty() && args.clients.iter().all(|&c| c >= 1),
        "--clients must list numbers of at least 1"
    );
    let dur = Duration::from_secs(args.seconds);
    let load_start = load_average();
    let app = open_app(url, key).await?;
    let backend = app.storage.backend();
    let max_clients = args.clients.iter().copied().max().unwrap_or(1);

    eprintln!("setting up a bench tenant with {max_clients} members, cards and a 12-dish menu…");
    let (fx, code) = setup_tenant(app, max_clients).await?;
    let fx = Arc::new(fx);
    // Fund the sample bill generously before its amount is known.
    fx.fill_balance(0, Money::from_yuan(1_000)).await?;
    let mut pin_ns = fx.verify_pins(1).await?;
    eprintln!("taking one sample bill…");
    let (due, bill_text) = sample_bill(&fx).await?;
    eprintln!("sample bill taken");

    let bare = BarePool::open(backend, url, max_clients).await?;
    bare.setup(max_clients).await?;
    let durability = bare.durability().await;

    struct Measured {
        clients: usize,
        checkout: Cell,
        bare: Cell,
        /// Bytes written per checkout and per bare transaction (`BarePool::written`).
        written: (Option<f64>, Option<f64>),
    }
    let mut measured: Vec<Measured> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let mut issued_total = 0usize;
    let mut setup_time = Duration::ZERO;
    for &clients in &args.clients {
        eprintln!("bare TPC-B-like loop, {clients} clients…");
        let b = bare.clone();
        let w0 = bare.written().await;
        let reference = measure(clients, dur, move |i| {
            let b = b.clone();
            async move { b.txn(i as i64).await }
        })
        .await
        .context("bare loop")?;
        let bare_written = per_op(w0, bare.written().await, &reference);

        eprintln!("checkout, {clients} tills: coupons, balances, PINs and an untimed warm-up…");
        let t = Instant::now();
        for i in 0..clients {
            issued_total += fx.fill_coupons(i, WARM_UP_COUPONS).await?;
            fx.fill_balance(i, due).await?;
        }
        pin_ns.extend(fx.verify_pins(clients).await?);
        let rate = warm_up(&fx, clients).await?;
        let want = (rate * args.seconds as f64 * POOL_FACTOR).ceil() as usize + 20;
        for i in 0..clients {
            issued_total += fx.fill_coupons(i, want).await?;
            fx.fill_balance(i, due).await?;
        }
        // Each till's session starts here: one PIN check, then bills with the token.
        pin_ns.extend(fx.verify_pins(clients).await?);
        setup_time += t.elapsed();

        eprintln!("checkout via App, {clients} tills ({want} coupons each)…");
        let before = bare.xact_commit().await;
        let f = Arc::clone(&fx);
        let w0 = bare.written().await;
        let s0 = WriterCounts::now(&fx.app);
        let cell = measure(clients, dur, move |i| {
            let f = Arc::clone(&f);
            async move { f.checkout(i).await }
        })
        .await?;
        let checkout_written = per_op(w0, bare.written().await, &cell);
        notes.extend(sharing_note(
            "checkout",
            clients,
            s0,
            WriterCounts::now(&fx.app),
        ));
        if let (Some(a), Some(b)) = (before, bare.xact_commit().await)
            && clients == 1
        {
            notes.push(format!(
                "{:.1} PostgreSQL transactions committed per checkout (pg_stat_database.xact_commit; \
                 each standalone statement counts as one)",
                (b - a) as f64 / cell.ops.max(1) as f64
            ));
        }
        measured.push(Measured {
            clients,
            checkout: cell,
            bare: reference,
            written: (checkout_written, bare_written),
        });
    }
    bare.drop_tables().await?;

    let mut pgb: Vec<(usize, Result<f64, String>)> = Vec::new();
    // Why there is no pgbench figure, for the rows of `bench all`.
    let mut pgb_missing = "pgbench: PostgreSQL only";
    if backend == Backend::Postgres {
        if args.skip_pgbench {
            notes.push("pgbench skipped (--skip-pgbench)".into());
            pgb_missing = "pgbench: skipped";
        } else if let Some(program) = on_path("pgbench") {
            eprintln!("pgbench -b tpcb-like, {:?} clients…", args.clients);
            pgb = run_pgbench(&bare, url, &program, &args.clients, args.seconds).await?;
            pgb_missing = "pgbench: failed (see its report)";
        } else {
            notes.push("pgbench not on PATH: skipped".into());
            pgb_missing = "pgbench: not on PATH, skipped";
        }
    }
    let pgb_tps = |c: usize| {
        pgb.iter()
            .find(|(n, _)| *n == c)
            .and_then(|(_, r)| r.as_ref().ok().copied())
    };

    eprintln!("verifying the books…");
    let started = Instant::now();
    let books = fx
        .app
        .verify_ledger()
        .await
        .map_err(|e| anyhow::anyhow!("verifying the books: {e}"))?;
    let verify_time = started.elapsed();
    let load_end = load_average();

    // Output.
    println!("patron bench checkout — {durability}");
    println!(
        "tenant {code}: one store, 12 dishes with gold member prices, {} gold members each with an integrated card \
         (stored value, points, member price; PIN set and required); {}s per cell",
        fx.tills.len(),
        args.seconds
    );
    println!("{bill_text}");
    println!(
        "machine: {} CPUs; load average (1/5/15 min) {load_start} at start, {load_end} at end",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    println!();
    let head = [
        "what",
        "clients",
        "tx/s",
        "p50",
        "p99",
        "reference",
        "ref tx/s",
        "ratio",
    ]
    .map(str::to_string);
    let dash = || "—".to_string();
    let mut rows = vec![head];
    for m in &measured {
        let tps = m.checkout.tps();
        let figures = |reference: &str, ref_tps: f64| {
            [
                "checkout (App::checkout)".to_string(),
                m.clients.to_string(),
                format!("{tps:.0}"),
                ms(m.checkout.pct(50.0)),
                ms(m.checkout.pct(99.0)),
                reference.to_string(),
                format!("{ref_tps:.0}"),
                pct_of(tps, ref_tps),
            ]
        };
        rows.push(figures("bare loop", m.bare.tps()));
        if let Some(p) = pgb_tps(m.clients) {
            rows.push(figures("pgbench tpcb-like", p));
        }
        rows.push([
            "bare loop (reference itself)".into(),
            m.clients.to_string(),
            format!("{:.0}", m.bare.tps()),
            ms(m.bare.pct(50.0)),
            ms(m.bare.pct(99.0)),
            dash(),
            dash(),
            dash(),
        ]);
        if let Some((_, r)) = pgb.iter().find(|(n, _)| *n == m.clients) {
            rows.push([
                "pgbench -b tpcb-like (scale 10)".into(),
                m.clients.to_string(),
                match r {
                    Ok(tps) => format!("{tps:.0}"),
                    Err(e) => format!("failed: {e}"),
                },
                dash(),
                dash(),
                dash(),
                dash(),
                dash(),
            ]);
        }
    }
    // A pgbench initialisation failure is reported under client count 0.
    for (_, r) in pgb.iter().filter(|(n, _)| *n == 0) {
        if let Err(e) = r {
            notes.push(format!("pgbench failed: {e}"));
        }
    }
    print_table(&rows);
    println!(
        "(ratio: checkout tx/s as a share of the reference's, same clients, same database and durability; \
         pgbench reports no percentiles)"
    );
    println!();

    println!("targets (informational):");
    let at_target = measured.iter().find(|m| m.clients == TARGET_CLIENTS);
    let (goal, reference, ref_tps) = match backend {
        Backend::Sqlite => (
            0.5,
            "the bare loop on SQLite",
            at_target.map(|m| m.bare.tps()),
        ),
        Backend::Postgres => (
            0.7,
            "pgbench tpcb-like on PostgreSQL",
            pgb_tps(TARGET_CLIENTS),
        ),
    };
    let what = format!(
        "checkout with {TARGET_CLIENTS} tills at least {:.0}% of {reference}",
        goal * 100.0
    );
    match (at_target, ref_tps) {
        (Some(m), Some(r)) => {
            let share = m.checkout.tps() / r;
            println!(
                "  {what}: {:.0}% — {}",
                share * 100.0,
                if share >= goal { "met" } else { "NOT met" }
            );
        }
        (None, _) => println!("  {what}: not measured (--clients has no {TARGET_CLIENTS})"),
        (Some(_), None) => println!("  {what}: not measured (no pgbench figure)"),
    }
    println!();

    println!("notes:");
    let written_rows: Vec<(String, usize, Option<f64>)> = measured
        .iter()
        .flat_map(|m| {
            [
                ("checkout".to_string(), m.clients, m.written.0),
                ("bare loop".to_string(), m.clients, m.written.1),
            ]
        })
        .collect();
    println!(
        "  {}",
        written_note(
            backend,
            written_rows.iter().map(|(w, c, b)| (w.as_str(), *c, *b))
        )
    );
    let pin_median = median(pin_ns.clone());
    let co1 = measured
        .iter()
        .find(|m| m.clients == 1)
        .map(|m| m.checkout.pct(50.0));
    println!(
        "  PIN: each till verifies its card's PIN once per session (App::verify_pin: the argon2 check, the attempt \
         recorded) before timing, and sends the resulting token with every bill: a random 192-bit token, held in \
         memory, bound to that card, valid {} min. The hash is not weakened; its cost is paid once per till session \
         instead of once per bill. One verify_pin took {} (median of {} calls){}.",
        PIN_TOKEN_TTL.num_minutes(),
        ms(pin_median),
        pin_ns.len(),
        match co1 {
            Some(p) if !p.is_nan() => format!(
                "; sending the PIN with every bill would add about that to the 1-till p50 of {}",
                ms(p)
            ),
            _ => String::new(),
        }
    );
    println!(
        "  coupons: every bill redeems a fresh single-use coupon (¥20 off ¥100) issued to its member before timing; \
         {} issued in all, issuing not measured (setup, warm-ups and PIN checks took {:.1} s); unused ones stay in \
         the bench tenant",
        issued_total + 1,
        setup_time.as_secs_f64()
    );
    println!(
        "  each checkout is one App::checkout call in process: price the bill (menu, member prices, level, coupon), \
         check the PIN token, one ledger post (revenue, discounts, stored-value split, points, coupon, visit, bill \
         and lines), then read back the receipt"
    );
    println!(
        "  warm-up: before each timed cell the tills run untimed for up to {} s; its fastest rate sizes the coupon \
         pools and top-ups of the timed run",
        WARM_UP.as_secs()
    );
    println!(
        "  levels end at gold in the bench tenant, so growth during the run cannot upgrade a member and change the bill"
    );
    let reference_note = match backend {
        Backend::Sqlite => {
            "reference: BEGIN; UPDATE bench_accounts (one row per client); INSERT bench_history; COMMIT — through sqlx \
             on a separate pool of ONE connection to the same file with the store's pragmas (WAL, synchronous=FULL), \
             like the store's writer: SQLite has one writer, so concurrent tills queue on it in both cases. It \
             checkpoints itself at SQLite's default 1,000 pages (every 500 or so of its 2-page transactions); the \
             store leaves checkpoints to a connection of their own"
        }
        Backend::Postgres => {
            "reference: BEGIN; UPDATE bench_accounts (one row per client); INSERT bench_history; COMMIT — through sqlx \
             on a PgPool to the same database and server settings; pgbench -b tpcb-like runs on a scratch database \
             (scale 10) on the same server"
        }
    };
    println!("  {reference_note}");
    for n in &notes {
        println!("  {n}");
    }
    println!("  database: {}", redact(url));
    println!();
    println!(
        "books: App::verify_ledger checked {} tenants, {} accounts, {} entries, {} transactions in {:.1} s: {}",
        books.tenants,
        books.accounts,
        books.entries,
        books.transactions,
        verify_time.as_secs_f64(),
        if books.is_clean() {
            "clean (no violations)".to_string()
        } else {
            format!("{} VIOLATIONS", books.violations.len())
        }
    );
    let mut rows = Vec::new();
    for m in &measured {
        let tills = super::bench_ledger::clients_label(m.clients, "till");
        let row = |what: &str, figure: f64, unit, reference: &str, ref_figure: Option<f64>| {
            BenchRow::new(
                format!("checkout, {tills}, {what}"),
                backend,
                Some(figure),
                unit,
                reference.to_string(),
                ref_figure,
            )
        };
        let tps = m.checkout.tps();
        rows.push(row(
            "throughput",
            tps,
            Unit::TxPerSec,
            "bare loop",
            Some(m.bare.tps()),
        ));
        if backend == Backend::Postgres {
            match pgb_tps(m.clients) {
                Some(p) => rows.push(row(
                    "throughput",
                    tps,
                    Unit::TxPerSec,
                    "pgbench -b tpcb-like (scale 10)",
                    Some(p),
                )),
                None => rows.push(row("throughput", tps, Unit::TxPerSec, pgb_missing, None)),
            }
        }
        for (p, q) in [("p50", 50.0), ("p99", 99.0)] {
            rows.push(row(
                p,
                m.checkout.pct(q),
                Unit::Nanos,
                &format!("bare loop {p}"),
                Some(m.bare.pct(q)),
            ));
        }
    }
    if !books.is_clean() {
        for v in &books.violations {
            println!("VIOLATION: {v}");
        }
        return Ok((ExitCode::FAILURE, rows));
    }
    Ok((ExitCode::SUCCESS, rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bill_is_six_lines_of_the_menu() {
        assert_eq!(BILL.len(), 6);
        assert!(BILL.iter().all(|&(i, q)| i < MENU.len() && q >= 1));
        assert!(MENU.iter().all(|&(_, _, price, gold)| gold <= price));
        assert_eq!(median(vec![5, 1, 3]), 3.0);
        assert!(median(Vec::new()).is_nan());
        assert_eq!(pct_of(1.0, 2.0), "50%");
        assert_eq!(pct_of(1.0, f64::NAN), "—");
    }
}
