//! `patron bench ledger`: top-up and spend throughput at the use-case layer (`App::top_up`,
//! `App::spend`, each ending in `LedgerStore::post`) against a bare TPC-B-like loop
//! (BEGIN; UPDATE one row; INSERT one row; COMMIT) on the same database with the same
//! durability settings, measured in the same run, with 1 and 16 concurrent clients.
//!
//! The bench works in a fresh tenant of its own (`bench-ledger-<random>`), with PINs not
//! required and no prepaid caps, so that spends need no PIN and top-ups never hit a cap.
//! On PostgreSQL it also runs `pgbench -b tpcb-like` on a scratch database when pgbench is
//! on PATH.

use super::bench_all::{BenchRow, Unit};
use crate::config::{open_app, redact};
use anyhow::{Context, bail, ensure};
use patron_app::auth::InitRequest;
use patron_app::cards::{IssueCard, Spend, TopUp};
use patron_app::{Actor, App};
use patron_domain::card::{CardKinds, CardMedium};
use patron_domain::customer::CustomerInput;
use patron_domain::ids::CardId;
use patron_domain::ledger::Tender;
use patron_domain::money::Money;
use patron_domain::stored_value::PrepaidPolicy;
use patron_store::Backend;
use std::future::Future;
use std::path::Path;
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

#[derive(clap::Args)]
pub struct Args {
    /// Seconds each measurement runs.
    #[arg(long, default_value_t = 10)]
    pub(crate) seconds: u64,
    /// Concurrent clients, comma-separated (each on its own card).
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    pub(crate) clients: Vec<usize>,
    /// Skip the "hot card" rows (16 clients on one card).
    #[arg(long)]
    pub(crate) skip_hot: bool,
    /// Skip pgbench even when it is on PATH.
    #[arg(long)]
    pub(crate) skip_pgbench: bool,
}

/// Clients of the "hot card" rows.
const HOT_CLIENTS: usize = 16;
/// Stored value loaded on each card before measuring (spends of 1 yuan never run dry).
const PRELOAD: Money = Money::from_yuan(500_000);
/// Amount of every measured top-up and spend (below the first bonus tier).
const AMOUNT: Money = Money::from_yuan(1);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    TopUp,
    Spend,
}

impl Op {
    fn label(self) -> &'static str {
        match self {
            Op::TopUp => "top-up",
            Op::Spend => "spend",
        }
    }
}

/// One measured cell: operations done, wall time, per-operation latencies (ns).
pub(crate) struct Cell {
    pub(crate) ops: u64,
    elapsed: Duration,
    lat: Vec<u64>,
}

impl Cell {
    pub(crate) fn tps(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
    pub(crate) fn pct(&self, p: f64) -> f64 {
        let mut v = self.lat.clone();
        v.sort_unstable();
        percentile(&v, p).map(|x| x as f64).unwrap_or(f64::NAN)
    }
}

/// Runs `clients` tasks, task `i` calling `f(i)` in a loop until `dur` has passed.
pub(crate) async fn measure<F, Fut>(clients: usize, dur: Duration, f: F) -> anyhow::Result<Cell>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let f = Arc::new(f);
    let start = Instant::now();
    let deadline = start + dur;
    let mut tasks = Vec::with_capacity(clients);
    for i in 0..clients {
        let f = Arc::clone(&f);
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut last = Instant::now();
            while Instant::now() < deadline {
                let t = Instant::now();
                f(i).await?;
                last = Instant::now();
                lat.push(last.duration_since(t).as_nanos() as u64);
            }
            anyhow::Ok((lat, last))
        }));
    }
    let mut lat = Vec::new();
    let mut end = start;
    for t in tasks {
        let (l, last) = t.await??;
        lat.extend(l);
        end = end.max(last);
    }
    Ok(Cell {
        ops: lat.len() as u64,
        elapsed: end.duration_since(start),
        lat,
    })
}

/// The bare reference's connection pool.
#[derive(Clone)]
pub(crate) enum BarePool {
    Sqlite(sqlx::SqlitePool),
    Pg(sqlx::PgPool),
}

const BARE_UPDATE: &str = "UPDATE bench_accounts SET balance = balance + $1 WHERE id = $2";
const BARE_INSERT: &str =
    "INSERT INTO bench_history (account_id, delta, created_at, filler) VALUES ($1, $2, $3, $4)";

impl BarePool {
    pub(crate) async fn open(
        backend: Backend,
        url: &str,
        clients: usize,
    ) -> anyhow::Result<BarePool> {
        Ok(match backend {
            Backend::Sqlite => {
                // The store's options (crates/store/src/sqlite.rs) and its one-connection
                // writer pool: SQLite has one writer, and the store queues writes in-process.
                let options = sqlx::sqlite::SqliteConnectOptions::from_str(&format!(
                    "sqlite://{}",
                    sqlite_path(url)
                ))?
                .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sqlx::sqlite::SqliteSynchronous::Full)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10))
                .statement_cache_capacity(256);
                BarePool::Sqlite(
                    sqlx::sqlite::SqlitePoolOptions::new()
                        .max_connections(1)
                        .connect_with(options)
                        .await?,
                )
            }
            Backend::Postgres => BarePool::Pg(
                sqlx::postgres::PgPoolOptions::new()
                    .max_connections(clients.max(HOT_CLIENTS) as u32 + 2)
                    .connect_with(sqlx::postgres::PgConnectOptions::from_str(url)?)
                    .await?,
            ),
        })
    }

    async fn exec(&self, sql: &str) -> anyhow::Result<()> {
        match self {
            BarePool::Sqlite(p) => {
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
                    .execute(p)
                    .await?;
            }
            BarePool::Pg(p) => {
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
                    .execute(p)
                    .await?;
            }
        }
        Ok(())
    }

    pub(crate) async fn setup(&self, accounts: usize) -> anyhow::Result<()> {
        self.exec("DROP TABLE IF EXISTS bench_history; DROP TABLE IF EXISTS bench_accounts")
            .await?;
        self.exec(
            "CREATE TABLE bench_accounts (id bigint PRIMARY KEY, balance bigint NOT NULL, filler text NOT NULL)",
        )
        .await?;
        self.exec(
            "CREATE TABLE bench_history (account_id bigint NOT NULL, delta bigint NOT NULL, created_at bigint NOT NULL, filler text NOT NULL)",
        )
        .await?;
        let values: Vec<String> = (0..accounts)
            .map(|i| format!("({i}, 0, '{}')", "x".repeat(84)))
            .collect();
        self.exec(&format!(
            "INSERT INTO bench_accounts (id, balance, filler) VALUES {}",
            values.join(", ")
        ))
        .await
    }

    pub(crate) async fn drop_tables(&self) -> anyhow::Result<()> {
        self.exec("DROP TABLE IF EXISTS bench_history; DROP TABLE IF EXISTS bench_accounts")
            .await
    }

    /// One TPC-B-like transaction on account `id`.
    pub(crate) async fn txn(&self, id: i64) -> anyhow::Result<()> {
        let delta: i64 = 100;
        let at = chrono::Utc::now().timestamp_micros();
        let filler = "bench";
        match self {
            BarePool::Sqlite(p) => {
                let mut tx = p.begin().await?;
                sqlx::query(BARE_UPDATE)
                    .bind(delta)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(BARE_INSERT)
                    .bind(id)
                    .bind(delta)
                    .bind(at)
                    .bind(filler)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
            }
            BarePool::Pg(p) => {
                let mut tx = p.begin().await?;
                sqlx::query(BARE_UPDATE)
                    .bind(delta)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(BARE_INSERT)
                    .bind(id)
                    .bind(delta)
                    .bind(at)
                    .bind(filler)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
            }
        }
        Ok(())
    }

    /// The durability settings in force, as the database reports them.
    pub(crate) async fn durability(&self) -> String {
        match self {
            BarePool::Sqlite(p) => {
                let q = |sql: &'static str| async move {
                    sqlx::query_scalar::<_, String>(sql)
                        .fetch_one(p)
                        .await
                        .unwrap_or_else(|_| "?".into())
                };
                let jm = q("SELECT journal_mode FROM pragma_journal_mode").await;
                let sync: i64 = sqlx::query_scalar("SELECT synchronous FROM pragma_synchronous")
                    .fetch_one(p)
                    .await
                    .unwrap_or(-1);
                let sync = match sync {
                    0 => "OFF".to_string(),
                    1 => "NORMAL".into(),
                    2 => "FULL".into(),
                    3 => "EXTRA".into(),
                    n => n.to_string(),
                };
                let v = q("SELECT sqlite_version()").await;
                format!("SQLite {v}, journal_mode={jm}, synchronous={sync}")
            }
            BarePool::Pg(p) => {
                let mut parts = Vec::new();
                for s in [
                    "server_version",
                    "fsync",
                    "synchronous_commit",
                    "wal_sync_method",
                    "full_page_writes",
                ] {
                    let v: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SHOW {s}")))
                        .fetch_one(p)
                        .await
                        .unwrap_or_else(|_| "?".into());
                    parts.push(format!("{s}={v}"));
                }
                format!("PostgreSQL {}", parts.join(", "))
            }
        }
    }

    /// Bytes the database has written so far: on SQLite this process's write calls
    /// (`wchar` of /proc/self/io: the WAL and the checkpoints into the file), on
    /// PostgreSQL the server's WAL position. None where it cannot be read.
    pub(crate) async fn written(&self) -> Option<u64> {
        match self {
            BarePool::Sqlite(_) => std::fs::read_to_string("/proc/self/io")
                .ok()?
                .lines()
                .find_map(|l| l.strip_prefix("wchar:"))?
                .trim()
                .parse()
                .ok(),
            BarePool::Pg(p) => sqlx::query_scalar::<_, i64>(
                "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint",
            )
            .fetch_one(p)
            .await
            .ok()
            .map(|n| n as u64),
        }
    }

    /// Committed transactions of this database so far (PostgreSQL only).
    pub(crate) async fn xact_commit(&self) -> Option<i64> {
        let BarePool::Pg(p) = self else { return None };
        tokio::time::sleep(Duration::from_millis(1_200)).await;
        sqlx::query_scalar(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()",
        )
        .fetch_one(p)
        .await
        .ok()
    }
}

/// The bench tenant: an actor at its store and one card per client.
struct Fixture {
    app: App,
    actor: Actor,
    cards: Vec<CardId>,
}

async fn setup_tenant(app: &App, cards: usize) -> anyhow::Result<(Actor, Vec<CardId>, String)> {
    let suffix: u32 = rand::random();
    let code = format!("bench-ledger-{suffix:08x}");
    let password = format!("pw-{:016x}", rand::random::<u64>());
    app.init_tenant(InitRequest {
        tenant_code: code.clone(),
        tenant_name: "Ledger bench".into(),
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
    let mut settings = app.settings(&actor).await?;
    settings.pin_required = false;
    settings.prepaid = PrepaidPolicy::UNCAPPED;
    app.save_settings(&actor, &settings).await?;
    let mut ids = Vec::with_capacity(cards);
    for i in 0..cards {
        let customer = app
            .create_customer(
                &actor,
                &CustomerInput {
                    name: Some(format!("Bench member {i}")),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| anyhow::anyhow!("creating a customer: {}", super::explain(&e)))?;
        let card = app
            .issue_card(
                &actor,
                &IssueCard {
                    customer_id: Some(customer.id),
                    medium: CardMedium::Electronic,
                    kinds: CardKinds::default(),
                    number: None,
                    pin: None,
                    pool_to_org: false,
                    fee: None,
                    fee_tender: None,
                    idempotency_key: None,
                },
            )
            .await
            .map_err(|e| anyhow::anyhow!("issuing a card: {}", super::explain(&e)))?;
        app.top_up(
            &actor,
            card.card.id,
            &TopUp {
                amount: PRELOAD,
                tender: Tender::Cash,
                idempotency_key: Uuid::now_v7().to_string(),
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("preloading a card: {}", super::explain(&e)))?;
        ids.push(card.card.id);
    }
    Ok((actor, ids, code))
}

async fn one_op(fx: &Fixture, op: Op, card: CardId) -> anyhow::Result<()> {
    let key = Uuid::now_v7().to_string();
    let r = match op {
        Op::TopUp => {
            fx.app
                .top_up(
                    &fx.actor,
                    card,
                    &TopUp {
                        amount: AMOUNT,
                        tender: Tender::Cash,
                        idempotency_key: key,
                    },
                )
                .await
        }
        Op::Spend => {
            fx.app
                .spend(
                    &fx.actor,
                    card,
                    &Spend {
                        amount: AMOUNT,
                        pin: None,
                        pin_token: None,
                        idempotency_key: key,
                        memo: None,
                    },
                )
                .await
        }
    };
    match r {
        Ok(receipt) if !receipt.replayed => Ok(()),
        Ok(_) => bail!("{}: a fresh key was answered as a replay", op.label()),
        Err(e) => bail!("{}: {}", op.label(), super::explain(&e)),
    }
}

struct Line {
    what: String,
    clients: usize,
    cell: Cell,
    /// Bytes written per transaction (see `BarePool::written`).
    written: Option<f64>,
    reference: String,
    ref_tps: f64,
}

pub async fn run(url: &str, key: &Path, args: Args) -> anyhow::Result<ExitCode> {
    run_rows(url, key, args).await.map(|(code, _)| code)
}

/// Prints the report and returns the throughput rows for `patron bench all`.
pub(crate) async fn run_rows(
    url: &str,
    key: &Path,
    args: Args,
) -> anyhow::Result<(ExitCode, Vec<BenchRow>)> {
    ensure!(args.seconds >= 1, "--seconds must be at least 1");
    ensure!(
        !args.clients.is_empty() && args.clients.iter().all(|&c| c >= 1),
        "--clients must list numbers of at least 1"
    );
    let dur = Duration::from_secs(args.seconds);
    let load_start = load_average();
    let app = open_app(url, key).await?;
    let backend = app.storage.backend();
    let max_clients = args.clients.iter().copied().max().unwrap_or(1);

    eprintln!("setting up a bench tenant with {max_clients} cards…");
    let (actor, cards, code) = setup_tenant(&app, max_clients).await?;
    let fx = Arc::new(Fixture { app, actor, cards });
    let bare = BarePool::open(backend, url, max_clients).await?;
    bare.setup(max_clients).await?;
    let durability = bare.durability().await;

    let mut lines: Vec<Line> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let mut runs: Vec<(usize, bool)> = args.clients.iter().map(|&c| (c, false)).collect();
    if !args.skip_hot {
        runs.push((HOT_CLIENTS, true));
    }
    for (clients, hot) in runs {
        let tag = if hot { " (hot: one card)" } else { "" };
        eprintln!("bare TPC-B-like loop, {clients} clients{tag}…");
        let b = bare.clone();
        let w0 = bare.written().await;
        let reference = measure(clients, dur, move |i| {
            let b = b.clone();
            async move { b.txn(if hot { 0 } else { i as i64 }).await }
        })
        .await
        .context("bare loop")?;
        let ref_written = per_op(w0, bare.written().await, &reference);
        let ref_name = if hot {
            "bare loop, one row".to_string()
        } else {
            "bare loop".to_string()
        };
        for op in [Op::TopUp, Op::Spend] {
            eprintln!("{} via App, {clients} clients{tag}…", op.label());
            let before = bare.xact_commit().await;
            let f = Arc::clone(&fx);
            let w0 = bare.written().await;
            let s0 = WriterCounts::now(&fx.app);
            let cell = measure(clients, dur, move |i| {
                let f = Arc::clone(&f);
                async move {
                    let card = if hot { f.cards[0] } else { f.cards[i] };
                    one_op(&f, op, card).await
                }
            })
            .await?;
            let written = per_op(w0, bare.written().await, &cell);
            notes.extend(sharing_note(
                &format!("{}{tag}", op.label()),
                clients,
                s0,
                WriterCounts::now(&fx.app),
            ));
            if let (Some(a), Some(b)) = (before, bare.xact_commit().await)
                && clients == 1
                && !hot
            {
                notes.push(format!(
                    "{}: {:.1} PostgreSQL transactions committed per operation (pg_stat_database.xact_commit; \
                     each standalone statement counts as one)",
                    op.label(),
                    (b - a) as f64 / cell.ops.max(1) as f64
                ));
            }
            lines.push(Line {
                what: format!("{}{}", op.label(), if hot { " (hot card)" } else { "" }),
                clients,
                cell,
                written,
                reference: ref_name.clone(),
                ref_tps: reference.tps(),
            });
        }
        lines.push(Line {
            what: format!("{ref_name} (reference itself)"),
            clients,
            reference: "—".into(),
            ref_tps: f64::NAN,
            cell: reference,
            written: ref_written,
        });
    }
    bare.drop_tables().await?;

    let mut pgb: Vec<(usize, Result<f64, String>)> = Vec::new();
    if backend == Backend::Postgres {
        if args.skip_pgbench {
            notes.push("pgbench skipped (--skip-pgbench)".into());
        } else if let Some(program) = on_path("pgbench") {
            for &c in &args.clients {
                eprintln!("pgbench -b tpcb-like, {c} clients…");
            }
            pgb = run_pgbench(&bare, url, &program, &args.clients, args.seconds).await?;
        } else {
            notes.push("pgbench not on PATH: skipped".into());
        }
    }

    // Output.
    let load_end = load_average();
    println!("patron bench ledger — {durability}");
    println!(
        "tenant {code}: {} cards preloaded with {PRELOAD}; every operation moves {AMOUNT} with a fresh idempotency key; \
         PIN not required for this tenant (pin_required=false, no PIN set), prepaid caps off; {}s per cell",
        fx.cards.len(),
        args.seconds
    );
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
    let mut rows = vec![head];
    for l in &lines {
        rows.push([
            l.what.clone(),
            l.clients.to_string(),
            format!("{:.0}", l.cell.tps()),
            ms(l.cell.pct(50.0)),
            ms(l.cell.pct(99.0)),
            l.reference.clone(),
            if l.ref_tps.is_nan() {
                "—".into()
            } else {
                format!("{:.0}", l.ref_tps)
            },
            if l.ref_tps.is_nan() {
                "—".into()
            } else {
                format!("{:.0}%", 100.0 * l.cell.tps() / l.ref_tps)
            },
        ]);
    }
    for (c, r) in &pgb {
        rows.push([
            "pgbench -b tpcb-like (scale 10)".into(),
            c.to_string(),
            match r {
                Ok(tps) => format!("{tps:.0}"),
                Err(e) => format!("failed: {e}"),
            },
            "—".into(),
            "—".into(),
            "—".into(),
            "—".into(),
            "—".into(),
        ]);
    }
    print_table(&rows);
    println!(
        "(ratio: the operation's tx/s as a share of the reference's, same clients, same database and durability)"
    );
    println!();
    let (goal, db) = match backend {
        Backend::Sqlite => (0.5, "SQLite"),
        Backend::Postgres => (0.7, "PostgreSQL"),
    };
    println!("targets (informational):");
    for l in lines.iter().filter(|l| !l.ref_tps.is_nan()) {
        let r = l.cell.tps() / l.ref_tps;
        println!(
            "  {} with {} clients at least {:.0}% of the bare loop on {db}: {:.0}% — {}",
            l.what,
            l.clients,
            goal * 100.0,
            r * 100.0,
            if r >= goal { "met" } else { "NOT met" }
        );
    }
    println!();
    println!("notes:");
    println!(
        "  {}",
        written_note(
            backend,
            lines
                .iter()
                .map(|l| (l.what.as_str(), l.clients, l.written))
        )
    );
    let reference_note = match backend {
        Backend::Sqlite => {
            "reference: BEGIN; UPDATE bench_accounts (one row per client); INSERT bench_history; COMMIT — through sqlx \
             on a separate pool of ONE connection to the same file with the store's pragmas (WAL, synchronous=FULL, \
             foreign keys, busy timeout), like the store's writer: SQLite has one writer, so 16 clients queue \
             on that connection in both cases. It checkpoints itself at SQLite's default 1,000 pages (every 500 or so \
             of its 2-page transactions); the store leaves checkpoints to a connection of their own"
        }
        Backend::Postgres => {
            "reference: BEGIN; UPDATE bench_accounts (one row per client); INSERT bench_history; COMMIT — through sqlx \
             on a PgPool of 18 connections to the same database and server settings"
        }
    };
    println!("  {reference_note}");
    println!(
        "  hot card: {HOT_CLIENTS} clients on the same card; its reference updates one single row"
    );
    println!(
        "  all clients work at one store of one tenant: whatever the card, a top-up also updates the store's cash \
         account and a spend its revenue account, and every post moves the tenant's ledger head"
    );
    for n in &notes {
        println!("  {n}");
    }
    println!("  database: {}", redact(url));
    let rows = lines
        .iter()
        .filter(|l| !l.ref_tps.is_nan())
        .map(|l| {
            BenchRow::new(
                format!("{}, {}", l.what, clients_label(l.clients, "client")),
                backend,
                Some(l.cell.tps()),
                Unit::TxPerSec,
                l.reference.clone(),
                Some(l.ref_tps),
            )
        })
        .collect();
    Ok((ExitCode::SUCCESS, rows))
}

/// "1 client", "16 clients".
/// Bytes written per operation of `cell`, from two readings of `BarePool::written`.
pub(crate) fn per_op(before: Option<u64>, after: Option<u64>, cell: &Cell) -> Option<f64> {
    let (b, a) = (before?, after?);
    (cell.ops > 0).then(|| a.saturating_sub(b) as f64 / cell.ops as f64)
}

/// The note on SQLite's shared commits during one cell: how many posts each commit took
/// (crates/store/src/writer.rs). `None` where the database groups commits itself.
/// SQLite's writer counters at one moment: posts and the commits they took, posts sent
/// from its predictions and the predictions found wrong (`LedgerStore`).
#[derive(Clone, Copy)]
pub(crate) struct WriterCounts {
    sharing: Option<(u64, u64)>,
    guessing: Option<(u64, u64)>,
}

impl WriterCounts {
    pub(crate) fn now(app: &App) -> Self {
        WriterCounts {
            sharing: app.storage.commit_sharing(),
            guessing: app.storage.guessing(),
        }
    }
}

pub(crate) fn sharing_note(
    what: &str,
    clients: usize,
    before: WriterCounts,
    after: WriterCounts,
) -> Option<String> {
    let ((p0, c0), (p1, c1)) = (before.sharing?, after.sharing?);
    let (posts, commits) = (p1.saturating_sub(p0), c1.saturating_sub(c0));
    let guessed = match (before.guessing, after.guessing) {
        (Some((g0, w0)), Some((g1, w1))) => format!(
            "; {} sent in one batch from the writer's predictions, {} of those found wrong and made again",
            g1.saturating_sub(g0),
            w1.saturating_sub(w0)
        ),
        _ => String::new(),
    };
    (commits > 0).then(|| {
        format!(
            "{what}, {}: {posts} posts took {commits} commits ({:.1} posts per commit: posts waiting for \
             SQLite's writer share one){guessed}",
            clients_label(clients, "client"),
            posts as f64 / commits as f64
        )
    })
}

/// The note on bytes written per transaction: what a commit must get to disk, which
/// sets its cost under `synchronous=FULL` / `fsync=on` as much as the statements do.
pub(crate) fn written_note<'a>(
    backend: Backend,
    rows: impl Iterator<Item = (&'a str, usize, Option<f64>)>,
) -> String {
    let what = match backend {
        Backend::Sqlite => "this process's writes (/proc/self/io wchar: WAL and checkpoints)",
        Backend::Postgres => "the server's WAL bytes (pg_current_wal_lsn; the whole server)",
    };
    let rows: Vec<String> = rows
        .filter_map(|(w, c, b)| Some(format!("{w}, {c}: {:.1} KB", b? / 1024.0)))
        .collect();
    if rows.is_empty() {
        format!("written per transaction, {what}: not readable here")
    } else {
        format!("written per transaction, {what}: {}", rows.join("; "))
    }
}

pub(crate) fn clients_label(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

/// Initialises a scratch database with `pgbench -i -s 10`, runs tpcb-like for each client
/// count, drops the database. tps per client count.
pub(crate) async fn run_pgbench(
    bare: &BarePool,
    url: &str,
    program: &Path,
    clients: &[usize],
    seconds: u64,
) -> anyhow::Result<Vec<(usize, Result<f64, String>)>> {
    let BarePool::Pg(pool) = bare else {
        return Ok(Vec::new());
    };
    let db = format!("patron_bench_pgb_{:08x}", rand::random::<u32>());
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
        .execute(pool)
        .await?;
    let scratch = with_database(url, &db);
    let mut out = Vec::new();
    let init = std::process::Command::new(program)
        .args(["-i", "-s", "10", "-q", &scratch])
        .output()?;
    if !init.status.success() {
        out.push((
            0,
            Err(String::from_utf8_lossy(&init.stderr)
                .lines()
                .last()
                .unwrap_or("")
                .to_string()),
        ));
    } else {
        for &c in clients {
            let r = std::process::Command::new(program)
                .args([
                    "-b",
                    "tpcb-like",
                    "-c",
                    &c.to_string(),
                    "-j",
                    &c.min(2).to_string(),
                    "-T",
                    &seconds.to_string(),
                    &scratch,
                ])
                .output()?;
            let text = String::from_utf8_lossy(&r.stdout).to_string();
            out.push((
                c,
                parse_tps(&text).ok_or_else(|| {
                    String::from_utf8_lossy(&r.stderr)
                        .lines()
                        .last()
                        .unwrap_or("no tps in output")
                        .to_string()
                }),
            ));
        }
    }
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {db} WITH (FORCE)"
    )))
    .execute(pool)
    .await?;
    Ok(out)
}

/// `tps = 1234.5 (without initial connection time)` from pgbench's report.
fn parse_tps(out: &str) -> Option<f64> {
    out.lines()
        .find(|l| l.starts_with("tps = "))
        .and_then(|l| l["tps = ".len()..].split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// The URL with its database name replaced.
pub(crate) fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_part = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{host_part}/{db}?{q}"),
        None => format!("{host_part}/{db}"),
    }
}

pub(crate) fn print_table(rows: &[[String; 8]]) {
    let w: Vec<usize> = (0..8)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let right = [false, true, true, true, true, false, true, true];
    let line = |r: &[String; 8]| {
        let cells: Vec<String> = (0..8)
            .map(|i| {
                let pad = " ".repeat(w[i] - r[i].chars().count());
                if right[i] {
                    format!("{pad}{}", r[i])
                } else {
                    format!("{}{pad}", r[i])
                }
            })
            .collect();
        println!("{}", cells.join(" | "));
    };
    line(&rows[0]);
    println!(
        "{}",
        w.iter()
            .map(|n| "-".repeat(*n))
            .collect::<Vec<_>>()
            .join("-+-")
    );
    for r in &rows[1..] {
        line(r);
    }
}

/// The nearest-rank percentile (`p` in 0..=100) of sorted values; `None` when empty.
fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

pub(crate) fn ms(ns: f64) -> String {
    if ns.is_nan() {
        "—".into()
    } else {
        format!("{:.2} ms", ns / 1e6)
    }
}

pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// The file a `sqlite://` URL names, as `patron_store::connect` reads it.
fn sqlite_path(url: &str) -> String {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    path.split('?').next().unwrap_or(path).to_string()
}

pub(crate) fn on_path(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(program))
            .find(|f| f.is_file())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_urls() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 99.0), Some(99));
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(
            with_database("postgres://u@h:5432/a?sslmode=disable", "b"),
            "postgres://u@h:5432/b?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h", "b"), "postgres://u@h/b");
        assert_eq!(
            parse_tps(
                "latency average = 1.0 ms\ntps = 812.345 (without initial connection time)\n"
            ),
            Some(812.345)
        );
        assert_eq!(sqlite_path("sqlite:///tmp/x.db?mode=rwc"), "/tmp/x.db");
    }
}
