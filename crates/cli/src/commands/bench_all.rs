//! `patron bench all`: every bench in sequence, on SQLite and on PostgreSQL (when a
//! server answers), and the resident memory of the real server over the look-up bench's
//! chain; then ONE table of the main figures, each beside the reference measured in the
//! same run. The benches print their own reports as they go; the table comes last.
//!
//! Databases: the look-up chain (tenant "demo", members only) and the analytics chain are
//! expensive to generate, so they live in databases named by their sizes and are reused by
//! later runs of the same sizes (`--fresh` starts over). The ledger and checkout benches
//! get a new database each run, dropped afterwards.

use super::bench::thousands;
use super::bench_ledger::{load_average, with_database};
use crate::config::{open_app, redact};
use anyhow::{Context, bail, ensure};
use patron_store::Backend;
use sqlx::{ConnectOptions, Connection};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct AllArgs {
    /// Customers of the look-up chain (also the server whose memory is measured) and of
    /// the analytics chain [default: 1000000; --quick: 20000].
    #[arg(long)]
    customers: Option<u64>,
    /// Visits of the analytics chain [default: 10 × customers].
    #[arg(long)]
    visits: Option<u64>,
    /// Look-ups timed per measurement [default: 20000; --quick: 2000].
    #[arg(long)]
    samples: Option<usize>,
    /// Seconds per throughput measurement of the ledger and checkout benches [default: 10;
    /// --quick: 2].
    #[arg(long)]
    seconds: Option<u64>,
    /// Concurrent clients of the ledger and checkout benches, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    clients: Vec<usize>,
    /// Timed runs of each side of the analytics bench [default: 3; --quick: 1].
    #[arg(long)]
    runs: Option<usize>,
    /// Small sizes, for a smoke run of a few minutes (explicit sizes still win).
    #[arg(long)]
    quick: bool,
    /// The databases to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "sqlite,postgres")]
    databases: Vec<Db>,
    /// The benches to run, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "lookup,memory,ledger,checkout,analytics"
    )]
    only: Vec<Step>,
    /// Directory of the SQLite databases [default: <temp dir>/patron-bench].
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The PostgreSQL server, as a URL to a database that exists there; the bench creates
    /// and drops its own databases (patron_bench_*) beside it.
    #[arg(
        long,
        env = "PATRON_BENCH_POSTGRES",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    postgres: String,
    /// Regenerate the look-up and analytics chains instead of reusing them.
    #[arg(long)]
    fresh: bool,
    /// Skip pgbench even when it is on PATH.
    #[arg(long)]
    skip_pgbench: bool,
    /// Skip DuckDB.
    #[arg(long)]
    skip_duckdb: bool,
    /// Print the table as Markdown, to paste into a note.
    #[arg(long)]
    markdown: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Db {
    Sqlite,
    Postgres,
}

impl Db {
    fn label(self) -> &'static str {
        match self {
            Db::Sqlite => "SQLite",
            Db::Postgres => "PostgreSQL",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Step {
    Lookup,
    Memory,
    Ledger,
    Checkout,
    Analytics,
}

impl Step {
    /// In the order they run on each database: the memory right after the look-ups, on
    /// the same chain.
    const ALL: [Step; 5] = [
        Step::Lookup,
        Step::Memory,
        Step::Ledger,
        Step::Checkout,
        Step::Analytics,
    ];

    fn label(self) -> &'static str {
        match self {
            Step::Lookup => "look-up and import",
            Step::Memory => "server memory",
            Step::Ledger => "ledger",
            Step::Checkout => "checkout",
            Step::Analytics => "analytics",
        }
    }
}

/// The unit of a figure, which also says which way the ratio goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// A latency in nanoseconds (shown in µs or ms).
    Nanos,
    Seconds,
    TxPerSec,
    RowsPerSec,
    Bytes,
}

impl Unit {
    /// Rates are better when higher: their cost is the inverse.
    fn is_rate(self) -> bool {
        matches!(self, Unit::TxPerSec | Unit::RowsPerSec)
    }

    fn format(self, v: f64) -> String {
        if !v.is_finite() {
            return "—".into();
        }
        match self {
            Unit::Nanos if v < 1e6 => format!("{:.1} µs", v / 1e3),
            Unit::Nanos => format!("{:.2} ms", v / 1e6),
            Unit::Seconds => format!("{v:.2} s"),
            Unit::TxPerSec => format!("{} tx/s", thousands(v.round() as u64)),
            Unit::RowsPerSec => format!("{} rows/s", thousands(v.round() as u64)),
            Unit::Bytes if v < 1024.0 * 1024.0 * 1024.0 => {
                format!("{:.1} MiB", v / (1024.0 * 1024.0))
            }
            Unit::Bytes => format!("{:.2} GiB", v / (1024.0 * 1024.0 * 1024.0)),
        }
    }
}

/// One line of the summary: a figure beside the reference measured in the same run.
#[derive(Clone, Debug)]
pub struct BenchRow {
    pub what: String,
    pub database: String,
    /// `None`: not measured (the reference column says why).
    pub figure: Option<f64>,
    pub unit: Unit,
    /// What the reference is, or why there is none.
    pub reference: String,
    /// In the figure's unit.
    pub reference_figure: Option<f64>,
    /// The figure's cost in units of the reference's: time ÷ time, or rate⁻¹ ÷ rate⁻¹
    /// (1.0 = as fast as the reference, 2.0 = twice the time per operation).
    pub ratio: Option<f64>,
}

impl BenchRow {
    pub fn new(
        what: String,
        backend: Backend,
        figure: Option<f64>,
        unit: Unit,
        reference: String,
        reference_figure: Option<f64>,
    ) -> BenchRow {
        let ratio = match (figure, reference_figure) {
            (Some(f), Some(r)) if f > 0.0 && r > 0.0 => {
                Some(if unit.is_rate() { r / f } else { f / r })
            }
            _ => None,
        };
        BenchRow {
            what,
            database: backend_label(backend).into(),
            figure,
            unit,
            reference,
            reference_figure,
            ratio,
        }
    }

    /// A row without figures: a step skipped or failed.
    fn note(what: &str, database: &str, why: String) -> BenchRow {
        BenchRow {
            what: what.into(),
            database: database.into(),
            figure: None,
            unit: Unit::Seconds,
            reference: why,
            reference_figure: None,
            ratio: None,
        }
    }

    fn cells(&self) -> [String; 6] {
        let dash = || "—".to_string();
        [
            self.what.clone(),
            self.database.clone(),
            self.figure.map_or_else(dash, |f| self.unit.format(f)),
            self.reference.clone(),
            self.reference_figure
                .map_or_else(dash, |f| self.unit.format(f)),
            self.ratio.map_or_else(dash, ratio),
        ]
    }
}

fn backend_label(b: Backend) -> &'static str {
    match b {
        Backend::Sqlite => "SQLite",
        Backend::Postgres => "PostgreSQL",
    }
}

fn ratio(x: f64) -> String {
    if x >= 10.0 {
        format!("{x:.1}×")
    } else {
        format!("{x:.2}×")
    }
}

fn duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{:.1}s", d.as_secs_f64()),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// The sizes of this run: explicit arguments, else the preset.
struct Sizes {
    customers: u64,
    visits: u64,
    samples: usize,
    seconds: u64,
    runs: usize,
}

impl Sizes {
    fn of(a: &AllArgs) -> Sizes {
        let customers = a
            .customers
            .unwrap_or(if a.quick { 20_000 } else { 1_000_000 });
        Sizes {
            customers,
            visits: a.visits.unwrap_or(customers * 10),
            samples: a.samples.unwrap_or(if a.quick { 2_000 } else { 20_000 }),
            seconds: a.seconds.unwrap_or(if a.quick { 2 } else { 10 }),
            runs: a.runs.unwrap_or(if a.quick { 1 } else { 3 }),
        }
    }
}

/// Where one database's benches run.
enum Place<'a> {
    Sqlite(&'a Path),
    Postgres(&'a str),
}

impl Place<'_> {
    /// The URL of the named bench database, created (empty) if it does not exist;
    /// `fresh` drops it first.
    async fn database(&self, name: &str, fresh: bool) -> anyhow::Result<String> {
        match self {
            Place::Sqlite(dir) => {
                let path = dir.join(format!("{name}.db"));
                if fresh {
                    for suffix in ["", "-wal", "-shm"] {
                        let p = PathBuf::from(format!("{}{suffix}", path.display()));
                        if p.exists() {
                            std::fs::remove_file(&p)
                                .with_context(|| format!("removing {}", p.display()))?;
                        }
                    }
                }
                Ok(format!("sqlite://{}", path.display()))
            }
            Place::Postgres(server) => {
                let db = pg_name(name);
                let mut admin = pg_connect(server).await?;
                if fresh {
                    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {db} WITH (FORCE)"
                    )))
                    .execute(&mut admin)
                    .await?;
                }
                let exists: bool = sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)",
                )
                .bind(&db)
                .fetch_one(&mut admin)
                .await?;
                if !exists {
                    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
                        .execute(&mut admin)
                        .await?;
                }
                let _ = admin.close().await;
                Ok(with_database(server, &db))
            }
        }
    }

    /// Drops a bench database made for one step (best effort).
    async fn drop_database(&self, name: &str) {
        match self {
            Place::Sqlite(dir) => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(dir.join(format!("{name}.db{suffix}")));
                }
            }
            Place::Postgres(server) => {
                if let Ok(mut admin) = pg_connect(server).await {
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                        pg_name(name)
                    )))
                    .execute(&mut admin)
                    .await;
                    let _ = admin.close().await;
                }
            }
        }
    }
}

/// The PostgreSQL database of a bench database name.
fn pg_name(name: &str) -> String {
    format!("patron_bench_{}", name.replace('-', "_"))
}

async fn pg_connect(url: &str) -> anyhow::Result<sqlx::PgConnection> {
    // CREATE/DROP DATABASE take seconds: no "slow statement" warnings.
    let options: sqlx::postgres::PgConnectOptions = url.parse()?;
    let options = options.disable_statement_logging();
    match tokio::time::timeout(Duration::from_secs(5), options.connect()).await {
        Ok(r) => Ok(r?),
        Err(_) => bail!("no answer within 5 s"),
    }
}

pub async fn run(key: &Path, args: AllArgs) -> anyhow::Result<ExitCode> {
    let sizes = Sizes::of(&args);
    ensure!(
        (100..=patron_app::demo::MAX_MEMBERS).contains(&sizes.customers),
        "--customers must be between 100 and {} (the demo chain's limit)",
        thousands(patron_app::demo::MAX_MEMBERS)
    );
    ensure!(
        sizes.visits >= sizes.customers,
        "--visits must be at least --customers"
    );
    ensure!(sizes.samples >= 100, "--samples must be at least 100");
    ensure!(sizes.seconds >= 1, "--seconds must be at least 1");
    ensure!(sizes.runs >= 1, "--runs must be at least 1");
    ensure!(
        !args.clients.is_empty() && args.clients.iter().all(|&c| c >= 1),
        "--clients must list numbers of at least 1"
    );
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("patron-bench"));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let exe = std::env::current_exe().context("finding the patron executable")?;
    let started = Instant::now();
    let load_start = load_average();

    let mut dbs: Vec<Db> = Vec::new();
    for d in [Db::Sqlite, Db::Postgres] {
        if args.databases.contains(&d) {
            dbs.push(d);
        }
    }
    let steps: Vec<Step> = Step::ALL
        .into_iter()
        .filter(|s| args.only.contains(s))
        .collect();
    let total = dbs.len() * steps.len();

    let mut rows: Vec<BenchRow> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let mut took: Vec<String> = Vec::new();
    let mut failed = false;
    let mut pg_version = None;
    let mut done = 0;
    for db in dbs {
        let place = match db {
            Db::Sqlite => Place::Sqlite(&dir),
            Db::Postgres => match pg_connect(&args.postgres).await {
                Ok(mut c) => {
                    pg_version = sqlx::query_scalar::<_, String>("SHOW server_version")
                        .fetch_one(&mut c)
                        .await
                        .ok();
                    let _ = c.close().await;
                    Place::Postgres(&args.postgres)
                }
                Err(e) => {
                    eprintln!(
                        "PostgreSQL at {} not reachable ({e:#}): skipping it",
                        redact(&args.postgres)
                    );
                    rows.push(BenchRow::note(
                        "every bench",
                        db.label(),
                        "skipped: PostgreSQL not reachable".into(),
                    ));
                    notes.push(format!(
                        "PostgreSQL at {} not reachable: {e:#}",
                        redact(&args.postgres)
                    ));
                    done += steps.len();
                    continue;
                }
            },
        };
        for &step in &steps {
            done += 1;
            eprintln!(
                "━━ [{done}/{total}] {}: {} ({} elapsed) ━━",
                db.label(),
                step.label(),
                duration(started.elapsed())
            );
            let t = Instant::now();
            match run_step(step, &place, &args, &sizes, key, &exe, &dir).await {
                Ok((code, step_rows)) => {
                    if code != ExitCode::SUCCESS {
                        failed = true;
                        notes.push(format!(
                            "{} on {}: the bench reported a failure (see its report above)",
                            step.label(),
                            db.label()
                        ));
                    }
                    rows.extend(step_rows);
                }
                Err(e) => {
                    failed = true;
                    eprintln!("{} on {} failed: {e:#}", step.label(), db.label());
                    let mut why = format!("failed: {e:#}");
                    if why.chars().count() > 100 {
                        why = why.chars().take(99).collect::<String>() + "…";
                    }
                    rows.push(BenchRow::note(step.label(), db.label(), why));
                    notes.push(format!("{} on {} failed: {e:#}", step.label(), db.label()));
                }
            }
            took.push(format!(
                "{} {} {}",
                db.label(),
                step.label(),
                duration(t.elapsed())
            ));
        }
    }

    let header = vec![
        format!(
            "patron bench all — {}; {} customers (look-ups, memory, analytics), {} visits (analytics), {} look-ups \
             per measurement, {} s per throughput cell with {} client{}, median of {} analytics run(s){}",
            chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
            thousands(sizes.customers),
            thousands(sizes.visits),
            thousands(sizes.samples as u64),
            sizes.seconds,
            args.clients
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(" and "),
            if args.clients == [1] { "" } else { "s" },
            sizes.runs,
            if args.quick { " (--quick)" } else { "" }
        ),
        format!(
            "databases: SQLite files in {}; PostgreSQL {}{}",
            dir.display(),
            redact(&args.postgres),
            pg_version
                .map(|v| format!(" (server {v})"))
                .unwrap_or_default()
        ),
        format!(
            "machine: {} CPUs, {}; load average (1/5/15 min) {load_start} at start, {} at end; took {}",
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(0),
            mem_total(),
            load_average(),
            duration(started.elapsed())
        ),
    ];
    notes.insert(
        0,
        "ratio: the figure's cost in units of the reference's — time ÷ reference time, or reference rate ÷ rate — \
         so 1.00× is as fast as the reference and 2.00× takes twice as long per operation; memory: resident set ÷ \
         database size"
            .into(),
    );
    notes.push(format!("time per step: {}", took.join(", ")));
    println!();
    if args.markdown {
        print_markdown(&header, &rows, &notes);
    } else {
        print_text(&header, &rows, &notes);
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

async fn run_step(
    step: Step,
    place: &Place<'_>,
    args: &AllArgs,
    sizes: &Sizes,
    key: &Path,
    exe: &Path,
    dir: &Path,
) -> anyhow::Result<(ExitCode, Vec<BenchRow>)> {
    let lookup_db = format!("lookup-{}", sizes.customers);
    match step {
        Step::Lookup => {
            let url = place.database(&lookup_db, args.fresh).await?;
            super::bench::lookup(
                &url,
                key,
                super::bench::Args {
                    customers: sizes.customers,
                    samples: sizes.samples,
                    skip_import: false,
                },
            )
            .await
        }
        Step::Memory => {
            // Fresh only if the look-up step did not just make it.
            let fresh = args.fresh && !args.only.contains(&Step::Lookup);
            let url = place.database(&lookup_db, fresh).await?;
            let backend = match place {
                Place::Sqlite(_) => Backend::Sqlite,
                Place::Postgres(_) => Backend::Postgres,
            };
            let log = dir.join(format!("serve-{}.log", backend_label(backend)));
            let rows = memory(exe, &url, key, backend, sizes, &log).await?;
            Ok((ExitCode::SUCCESS, rows))
        }
        Step::Ledger | Step::Checkout => {
            // A database of its own, for this run only.
            let name = format!(
                "{}-{:08x}",
                if step == Step::Ledger {
                    "ledger"
                } else {
                    "checkout"
                },
                rand::random::<u32>()
            );
            let url = place.database(&name, true).await?;
            let result = if step == Step::Ledger {
                super::bench_ledger::run_rows(
                    &url,
                    key,
                    super::bench_ledger::Args {
                        seconds: sizes.seconds,
                        clients: args.clients.clone(),
                        skip_hot: true,
                        // The checkout step runs pgbench; once is enough.
                        skip_pgbench: true,
                    },
                )
                .await
            } else {
                super::bench_checkout::run_rows(
                    &url,
                    key,
                    super::bench_checkout::Args {
                        seconds: sizes.seconds,
                        clients: args.clients.clone(),
                        skip_pgbench: args.skip_pgbench,
                    },
                )
                .await
            };
            place.drop_database(&name).await;
            result
        }
        Step::Analytics => {
            let name = format!("analytics-{}-{}", sizes.customers, sizes.visits);
            let url = place.database(&name, args.fresh).await?;
            super::bench_analytics::run_rows(
                &url,
                key,
                super::bench_analytics::Args {
                    customers: sizes.customers,
                    visits: sizes.visits,
                    runs: sizes.runs,
                    seed: 2026,
                    workdir: None,
                    skip_duckdb: args.skip_duckdb,
                    keep_files: false,
                },
            )
            .await
        }
    }
}

// ---------------------------------------------------------------------------------------
// The server's memory.

/// Requests of the warm-up in flight at once (the pools grow to what a busy till
/// floor would make them).
const WARM_UP_CLIENTS: usize = 16;
/// Pages of 100 customers listed first; their phones, ids and names feed the look-ups.
const WARM_UP_PAGES: u32 = 20;

/// Starts `patron serve` on the look-up chain, reads its resident memory after start and
/// after a warm-up of look-ups and other requests, and stops it.
async fn memory(
    exe: &Path,
    url: &str,
    key: &Path,
    backend: Backend,
    sizes: &Sizes,
    log: &Path,
) -> anyhow::Result<Vec<BenchRow>> {
    // The chain the look-up bench uses (generated here when that step did not run).
    let customers = {
        let app = open_app(url, key).await?;
        if app.storage.tenant_by_code("demo").await?.is_none() {
            eprintln!(
                "tenant \"demo\" not found: generating {} members (seed 2026)",
                thousands(sizes.customers)
            );
            super::demo::generate_with(
                &app,
                patron_app::demo::DemoOptions {
                    members: sizes.customers,
                    seed: 2026,
                    history: false,
                },
            )
            .await?;
        }
        let demo = super::actor(&app, "demo", "owner").await?;
        app.storage.count_customers(demo.tenant_id).await? as u64
    };
    let (db_size, db_label) = database_size(url, backend).await?;

    eprintln!("starting patron serve on the chain of {customers} customers…");
    let mut server = Server::start(exe, url, key, log).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (idle_rss, _) = server.vm()?;
    let requests = warm_up(&server.base, sizes.samples).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (rss, hwm) = server.vm()?;
    let status = server.stop().await?;
    if !status.success() {
        eprintln!("patron serve ended with {status} (log: {})", log.display());
    }
    let chain = format!("{} customers", thousands(customers));
    let row = |what: String, v: u64| {
        BenchRow::new(
            what,
            backend,
            Some(v as f64),
            Unit::Bytes,
            db_label.clone(),
            Some(db_size as f64),
        )
    };
    Ok(vec![
        row(format!("server RSS after start ({chain})"), idle_rss),
        row(
            format!(
                "server RSS after warm-up ({} requests, {WARM_UP_CLIENTS} at once)",
                thousands(requests)
            ),
            rss,
        ),
        row("server peak RSS (VmHWM)".into(), hwm),
    ])
}

/// The database's size on disk: bytes and what was measured.
async fn database_size(url: &str, backend: Backend) -> anyhow::Result<(u64, String)> {
    Ok(match backend {
        Backend::Sqlite => {
            let path = url
                .strip_prefix("sqlite://")
                .unwrap_or(url)
                .split('?')
                .next()
                .unwrap_or(url)
                .to_string();
            let size = |p: &str| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
            (
                size(&path) + size(&format!("{path}-wal")),
                "database file + WAL".into(),
            )
        }
        Backend::Postgres => {
            let mut c = pg_connect(url).await?;
            let n: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
                .fetch_one(&mut c)
                .await?;
            let _ = c.close().await;
            (n.max(0) as u64, "pg_database_size".into())
        }
    })
}

/// A `patron serve` child process, killed if dropped while running.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    async fn start(exe: &Path, url: &str, key: &Path, log: &Path) -> anyhow::Result<Server> {
        let mut child = std::process::Command::new(exe)
            .arg("--database-url")
            .arg(url)
            .arg("--key-file")
            .arg(key)
            .args(["serve", "--listen", "127.0.0.1:0", "--jobs-interval", "0"])
            .env("PATRON_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(
                std::fs::File::create(log)
                    .with_context(|| format!("creating {}", log.display()))?,
            )
            .spawn()
            .context("starting patron serve")?;
        let stdout = child.stdout.take().context("the server's stdout")?;
        let mut server = Server {
            child,
            base: String::new(),
        };
        let read = tokio::task::spawn_blocking(move || {
            let mut reader = std::io::BufReader::new(stdout);
            let mut line = String::new();
            loop {
                line.clear();
                if reader.read_line(&mut line)? == 0 {
                    return anyhow::Ok(None);
                }
                if line.starts_with("patron listening on ") {
                    // Keep draining, so the server never writes into a closed pipe.
                    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
                    return Ok(Some(line));
                }
            }
        });
        let line = match tokio::time::timeout(Duration::from_secs(300), read).await {
            Err(_) => bail!("patron serve did not listen within 300 s"),
            Ok(r) => r??,
        };
        let Some(line) = line else {
            let _ = server.child.wait();
            bail!(
                "patron serve exited before listening: {}",
                std::fs::read_to_string(log).unwrap_or_default().trim()
            );
        };
        let addr = line.trim().rsplit(' ').next().unwrap_or("").to_string();
        ensure!(addr.starts_with("http://"), "unexpected line: {line}");
        server.base = format!("{addr}/api/v1");
        Ok(server)
    }

    /// VmRSS and VmHWM in bytes, from /proc.
    fn vm(&self) -> anyhow::Result<(u64, u64)> {
        let path = format!("/proc/{}/status", self.child.id());
        let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        parse_vm(&status).with_context(|| format!("no VmRSS/VmHWM in {path}"))
    }

    /// SIGTERM (the server finishes in-flight requests), then SIGKILL after 15 s.
    async fn stop(&mut self) -> anyhow::Result<std::process::ExitStatus> {
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                self.child.kill()?;
                return Ok(self.child.wait()?);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// VmRSS and VmHWM (bytes) from the text of /proc/<pid>/status.
fn parse_vm(status: &str) -> Option<(u64, u64)> {
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .map(|k| k * 1024)
    };
    Some((kib("VmRSS:")?, kib("VmHWM:")?))
}

/// Logs in as the demo owner, lists the first pages of customers, then runs `samples`
/// requests with [`WARM_UP_CLIENTS`] in flight: look-ups by phone and by a name's first
/// character, customer records, a customer's value panel, and the value overview. Returns the requests made.
async fn warm_up(base: &str, samples: usize) -> anyhow::Result<u64> {
    let client = reqwest::Client::builder().no_proxy().build()?;
    let login = client
        .post(format!("{base}/auth/login"))
        .json(&serde_json::json!({ "tenant": "demo", "username": "owner", "password": "patron-demo" }))
        .send()
        .await?;
    let status = login.status();
    let body: serde_json::Value = login.json().await.context("reading the login response")?;
    ensure!(
        status.is_success(),
        "logging in as demo/owner failed ({status}): {body}"
    );
    let token = body["token"]
        .as_str()
        .context("no token in the login response")?
        .to_string();

    let pb = super::progress_bar(Some(samples as u64 + u64::from(WARM_UP_PAGES)), "warm-up");
    let mut phones = Vec::new();
    let mut ids = Vec::new();
    let mut names = Vec::new();
    for page in 1..=WARM_UP_PAGES {
        let resp = client
            .get(format!("{base}/customers?page={page}&per_page=100"))
            .bearer_auth(&token)
            .send()
            .await?;
        let status = resp.status();
        let body: serde_json::Value = resp.json().await?;
        ensure!(status.is_success(), "listing customers ({status}): {body}");
        for c in body["items"].as_array().into_iter().flatten() {
            if let Some(p) = c["phone"].as_str() {
                phones.push(p.to_string());
            }
            if let Some(id) = c["id"].as_str() {
                ids.push(id.to_string());
            }
            if let Some(n) = c["name"].as_str().and_then(|n| n.chars().next()) {
                names.push(n.to_string());
            }
        }
        pb.inc(1);
    }
    ensure!(
        !phones.is_empty() && !ids.is_empty(),
        "the demo tenant lists no customers with phones"
    );

    let mut urls = Vec::with_capacity(samples);
    urls.push(reqwest::Url::parse(&format!("{base}/analytics/overview"))?);
    for i in 0..samples.saturating_sub(1) {
        let url = if i % 100 == 98 {
            reqwest::Url::parse(&format!("{base}/customers/{}/value", ids[i % ids.len()]))?
        } else if i % 50 == 49 && !names.is_empty() {
            reqwest::Url::parse_with_params(
                &format!("{base}/customers/lookup"),
                &[("q", &names[i % names.len()])],
            )?
        } else if i % 10 == 9 {
            reqwest::Url::parse(&format!("{base}/customers/{}", ids[i % ids.len()]))?
        } else {
            reqwest::Url::parse_with_params(
                &format!("{base}/customers/lookup"),
                &[("q", &phones[i % phones.len()])],
            )?
        };
        urls.push(url);
    }
    let urls = Arc::new(urls);
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..WARM_UP_CLIENTS {
        let (client, token, urls, next, pb) = (
            client.clone(),
            token.clone(),
            Arc::clone(&urls),
            Arc::clone(&next),
            pb.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(url) = urls.get(i) else {
                    return anyhow::Ok(());
                };
                let resp = client.get(url.clone()).bearer_auth(&token).send().await?;
                let status = resp.status();
                let body = resp.bytes().await?;
                ensure!(
                    status.is_success(),
                    "GET {url}: {status} {}",
                    String::from_utf8_lossy(&body)
                );
                pb.inc(1);
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    pb.finish_and_clear();
    Ok(urls.len() as u64 + u64::from(WARM_UP_PAGES) + 1)
}

// ---------------------------------------------------------------------------------------
// Output.

fn mem_total() -> String {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .map(|kib| format!("{:.1} GiB RAM", kib as f64 / (1024.0 * 1024.0)))
        .unwrap_or_else(|| "RAM unknown".into())
}

const HEAD: [&str; 6] = [
    "what",
    "database",
    "figure",
    "reference",
    "ref figure",
    "ratio",
];

fn print_text(header: &[String], rows: &[BenchRow], notes: &[String]) {
    for h in header {
        println!("{h}");
    }
    println!();
    let cells: Vec<[String; 6]> = std::iter::once(HEAD.map(str::to_string))
        .chain(rows.iter().map(BenchRow::cells))
        .collect();
    let w: Vec<usize> = (0..6)
        .map(|i| {
            cells
                .iter()
                .map(|r| r[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let right = [false, false, true, false, true, true];
    let line = |r: &[String; 6]| {
        let out: Vec<String> = (0..6)
            .map(|i| {
                let pad = " ".repeat(w[i] - r[i].chars().count());
                if right[i] {
                    format!("{pad}{}", r[i])
                } else {
                    format!("{}{pad}", r[i])
                }
            })
            .collect();
        println!("{}", out.join(" | ").trim_end());
    };
    line(&cells[0]);
    println!(
        "{}",
        w.iter()
            .map(|n| "-".repeat(*n))
            .collect::<Vec<_>>()
            .join("-+-")
    );
    for r in &cells[1..] {
        line(r);
    }
    println!();
    for n in notes {
        println!("{n}");
    }
}

fn print_markdown(header: &[String], rows: &[BenchRow], notes: &[String]) {
    for h in header {
        println!("{h}  ");
    }
    println!();
    let escape = |s: &str| s.replace('|', "\\|");
    println!("| {} |", HEAD.join(" | "));
    println!("|---|---|--:|---|--:|--:|");
    for r in rows {
        let c = r.cells();
        println!(
            "| {} |",
            c.iter().map(|s| escape(s)).collect::<Vec<_>>().join(" | ")
        );
    }
    println!();
    for n in notes {
        println!("- {}", escape(n));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_are_costs() {
        let lat = BenchRow::new(
            "x".into(),
            Backend::Sqlite,
            Some(30_000.0),
            Unit::Nanos,
            "r".into(),
            Some(10_000.0),
        );
        assert_eq!(lat.ratio, Some(3.0));
        let tps = BenchRow::new(
            "x".into(),
            Backend::Postgres,
            Some(250.0),
            Unit::TxPerSec,
            "r".into(),
            Some(1_000.0),
        );
        assert_eq!(tps.ratio, Some(4.0));
        assert_eq!(tps.database, "PostgreSQL");
        let none = BenchRow::new(
            "x".into(),
            Backend::Sqlite,
            Some(1.0),
            Unit::Seconds,
            "DuckDB: skipped".into(),
            None,
        );
        assert_eq!(none.ratio, None);
        assert_eq!(none.cells()[4], "—");
        assert_eq!(none.cells()[5], "—");
    }

    #[test]
    fn formats_units() {
        assert_eq!(Unit::Nanos.format(12_340.0), "12.3 µs");
        assert_eq!(Unit::Nanos.format(2_345_000.0), "2.35 ms");
        assert_eq!(Unit::TxPerSec.format(1234.4), "1,234 tx/s");
        assert_eq!(Unit::Bytes.format(50.0 * 1024.0 * 1024.0), "50.0 MiB");
        assert_eq!(
            Unit::Bytes.format(3.0 * 1024.0 * 1024.0 * 1024.0),
            "3.00 GiB"
        );
        assert_eq!(ratio(0.456), "0.46×");
        assert_eq!(ratio(12.34), "12.3×");
        assert_eq!(duration(Duration::from_secs(754)), "12m 34s");
    }

    #[test]
    fn reads_proc_status() {
        let s = "Name:\tpatron\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\n";
        assert_eq!(parse_vm(s), Some((100 * 1024 * 1024, 200 * 1024 * 1024)));
        assert_eq!(parse_vm("Name:\tx\n"), None);
    }
}
