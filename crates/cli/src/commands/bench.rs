//! `patron bench`: performance figures measured against a bare reference in the same run,
//! so that a ratio means something on whatever machine it runs on.
//!
//! `patron bench lookup` times the till's look-up by phone and by card number at the store
//! layer (against the same SQL through the raw SQLite C API, or a plain PostgreSQL
//! connection, and pgbench), over HTTP (against `GET /health`), and the CSV import rate
//! (against a bare bulk insert of minimal rows). Store and reference are timed in
//! alternating blocks of keys so that both see the same machine load.

use super::bench_all::{BenchRow, Unit};
use crate::config::open_app;
use anyhow::{Context, bail, ensure};
use patron_app::auth::InitRequest;
use patron_app::export::ExportFormat;
use patron_app::import::{ImportOptions, ImportPhase, ImportProgress};
use patron_app::{Actor, App};
use patron_domain::ids::TenantId;
use patron_store::Backend;
use rand::Rng;
use rand::seq::SliceRandom;
use sqlx::{ConnectOptions, Connection, Row};
use std::fmt::Write as _;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};
use uuid::Uuid;

#[derive(clap::Subcommand)]
pub enum Target {
    /// Look-up by phone and card number (store layer and HTTP) and the CSV import rate.
    Lookup(Args),
    /// Top-up and spend throughput against a bare TPC-B-like loop.
    Ledger(super::bench_ledger::Args),
    /// Quadrants, RFM and the churn watch of a whole chain against DuckDB on the same data.
    Analytics(super::bench_analytics::Args),
    /// Checkout throughput for a typical bill against a bare TPC-B-like loop and pgbench.
    Checkout(super::bench_checkout::Args),
    /// Every bench above on SQLite and PostgreSQL, plus the server's memory: one table.
    All(super::bench_all::AllArgs),
}

#[derive(clap::Args)]
pub struct Args {
    /// Customers the demo tenant must have (it is generated with this many if missing).
    #[arg(long, default_value_t = 1_000_000)]
    pub(crate) customers: u64,
    /// Look-ups timed per measurement; about 5% are numbers that exist nowhere.
    #[arg(long, default_value_t = 20_000)]
    pub(crate) samples: usize,
    /// Skip the import measurement (which leaves a tenant with a copy of the customers).
    #[arg(long)]
    pub(crate) skip_import: bool,
}

/// Keys per block when two paths are timed alternately.
const BLOCK: usize = 250;
/// Untimed look-ups per path before measuring (statement caches, page cache, connections).
const WARMUP: usize = 1_000;

/// The customer columns, in the store's order (`customer_cols!` in patron-store).
macro_rules! customer_cols {
    () => {
        "tenant_id, id, name, name_pinyin, name_initials, phone, gender, birthday, age_band, nationality, \
         customer_type, industry, title, company, work_phone, credit_rating, id_doc_kind, id_doc_hash, \
         id_doc_masked, email, address, organization_id, acquisition_source, referred_by, marketing_consent, \
         marketing_consent_source, marketing_consent_at, favourite_dishes, tastes, seat_preference, allergies, \
         tags, notes, lifecycle_stage, churn_reason, churn_note, level, home_store_id, merged_into, created_at, \
         updated_at"
    };
}

/// The store's look-up queries, character for character (`$n` parameters work on both).
const BY_PHONE_SQL: &str = concat!(
    "SELECT ",
    customer_cols!(),
    " FROM customers WHERE tenant_id = $1 AND phone = $2"
);
const BY_CARD_SQL: &str = concat!(
    "SELECT ",
    customer_cols!(),
    " FROM customers WHERE tenant_id = $1 AND id = (SELECT customer_id FROM cards WHERE tenant_id = $1 AND number = $2)"
);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Phone,
    Card,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Phone => "phone",
            Kind::Card => "card",
        }
    }
    fn sql(self) -> &'static str {
        match self {
            Kind::Phone => BY_PHONE_SQL,
            Kind::Card => BY_CARD_SQL,
        }
    }
}

pub async fn run(url: &str, key: &Path, t: Target) -> anyhow::Result<ExitCode> {
    match t {
        Target::Ledger(a) => super::bench_ledger::run(url, key, a).await,
        Target::Analytics(a) => super::bench_analytics::run(url, key, a).await,
        Target::Checkout(a) => super::bench_checkout::run(url, key, a).await,
        Target::All(a) => super::bench_all::run(key, a).await,
        Target::Lookup(args) => lookup(url, key, args).await.map(|(code, _)| code),
    }
}

/// `patron bench lookup`: prints its report, and returns its main figures as rows for
/// `patron bench all`.
pub(crate) async fn lookup(
    url: &str,
    key: &Path,
    args: Args,
) -> anyhow::Result<(ExitCode, Vec<BenchRow>)> {
    ensure!(args.samples >= 100, "--samples must be at least 100");
    let load_start = load_average();
    let app = open_app(url, key).await?;
    if app.storage.tenant_by_code("demo").await?.is_none() {
        eprintln!(
            "tenant \"demo\" not found: generating {} members (seed 2026)",
            thousands(args.customers)
        );
        // Look-ups need people on file, not their history (which would take minutes).
        super::demo::generate_with(
            &app,
            patron_app::demo::DemoOptions {
                members: args.customers,
                seed: 2026,
                history: false,
            },
        )
        .await?;
    }
    let demo = super::actor(&app, "demo", "owner").await?;
    let customers = app.storage.count_customers(demo.tenant_id).await?;
    if (customers as u64) < args.customers {
        eprintln!(
            "tenant \"demo\" has {} customers, fewer than the {} asked for: use --customers {} or a fresh database",
            thousands(customers as u64),
            thousands(args.customers),
            customers
        );
        return Ok((ExitCode::FAILURE, Vec::new()));
    }

    let backend = app.storage.backend();
    let mut bare = match backend {
        Backend::Sqlite => Bare::open_sqlite(&sqlite_path(url), demo.tenant_id)?,
        Backend::Postgres => Bare::open_pg(url, demo.tenant_id).await?,
    };
    let mut report = Report::default();
    let mut rows = Vec::new();
    let cards = bare.count_cards().await?;
    let phones = sample_keys(&mut bare, Kind::Phone, args.samples).await?;
    let card_keys = sample_keys(&mut bare, Kind::Card, args.samples).await?;
    report.header.push(format!(
        "patron bench lookup — {}",
        describe_db(backend, url, &mut bare).await
    ));
    report.header.push(format!(
        "tenant demo: {} customers, {} cards; {} look-ups per measurement ({} missing keys), {} untimed warm-up each",
        thousands(customers as u64),
        thousands(cards),
        thousands(args.samples as u64),
        thousands((args.samples / 20) as u64),
        thousands(WARMUP as u64),
    ));
    for (what, plan) in bare.plans(&phones.keys[0], &card_keys.keys[0]).await? {
        report
            .notes
            .push(format!("plan of the look-up by {what}: {plan}"));
    }

    // Store layer against the bare reference.
    let ping = time_pings(&app, &mut bare, args.samples).await?;
    let mut store_p50 = Vec::new();
    for keys in [&phones, &card_keys] {
        let kind = keys.kind;
        let mut store = StorePath {
            app: &app,
            tenant: demo.tenant_id,
        };
        let m = time_pair(
            &mut store,
            &mut bare,
            keys,
            &format!("{} look-up", kind.label()),
        )
        .await?;
        let what = format!("store look-up by {}", kind.label());
        report.latency_rows(&what, &m.store, bare.label(), &m.bare);
        for (p, a, b) in [
            ("p50", m.store.p50, m.bare.p50),
            ("p99", m.store.p99, m.bare.p99),
        ] {
            rows.push(BenchRow::new(
                format!("{what} {p}"),
                backend,
                Some(a),
                Unit::Nanos,
                format!("{} {p}", bare.label()),
                Some(b),
            ));
        }
        if m.store_found != m.bare_found {
            report.notes.push(format!(
                "look-up by {}: the store found {} customers, the bare query {}",
                kind.label(),
                m.store_found,
                m.bare_found
            ));
        }
        store_p50.push((kind, m.store.p50 / m.bare.p50, m.store.mean));
    }
    // Where the store's overhead goes: sqlx without the store, with and without the pool.
    for mut diag in Diag::variants(backend, url, demo.tenant_id).await? {
        for keys in [&phones, &card_keys] {
            let m = time_pair(&mut diag, &mut bare, keys, "sqlx variants").await?;
            report.diagnostics.push(row(
                &format!("{} by {} p50", diag.label, keys.kind.label()),
                &us(m.store.p50),
                &format!("{} p50", bare.label()),
                &us(m.bare.p50),
                &ratio(m.store.p50 / m.bare.p50),
            ));
        }
        diag.close().await;
    }
    report.latency_rows(
        "store ping (SELECT 1)",
        &ping.store,
        &format!("{} SELECT 1", bare.label()),
        &ping.bare,
    );
    if let Bare::Pg { url: pg_url, .. } = &bare {
        let pg_url = pg_url.clone();
        match pgbench(&mut bare, &pg_url, demo.tenant_id, &phones, &card_keys).await? {
            None => {
                report.rows.push(row(
                    "store look-up, mean",
                    "—",
                    "pgbench",
                    "not on PATH: skipped",
                    "—",
                ));
                rows.push(BenchRow::new(
                    "store look-up mean".into(),
                    backend,
                    None,
                    Unit::Nanos,
                    "pgbench: not on PATH, skipped".into(),
                    None,
                ));
            }
            Some(figures) => {
                for (kind, stmt_ms, tx_ms) in figures {
                    let store_mean = store_p50
                        .iter()
                        .find(|s| s.0 == kind)
                        .map(|s| s.2)
                        .unwrap_or(f64::NAN);
                    report.rows.push(row(
                        &format!("store look-up by {} mean", kind.label()),
                        &us(store_mean),
                        "pgbench -M prepared, statement avg",
                        &us(stmt_ms * 1e6),
                        &ratio(store_mean / (stmt_ms * 1e6)),
                    ));
                    rows.push(BenchRow::new(
                        format!("store look-up by {} mean", kind.label()),
                        backend,
                        Some(store_mean),
                        Unit::Nanos,
                        "pgbench -M prepared, statement avg".into(),
                        Some(stmt_ms * 1e6),
                    ));
                    report.notes.push(format!(
                        "pgbench by {}: latency average {:.3} ms per transaction (key fetch by \\gset + look-up)",
                        kind.label(),
                        tx_ms
                    ));
                }
            }
        }
    }

    // Over HTTP, against the health check.
    let http = time_http(&app, &phones, &card_keys).await?;
    let mut http_p50 = Vec::new();
    for (kind, lookups, found) in &http.lookups {
        report.latency_rows(
            &format!("HTTP look-up by {}", kind.label()),
            lookups,
            "HTTP GET /api/v1/health",
            &http.health,
        );
        for (p, a, b) in [
            ("p50", lookups.p50, http.health.p50),
            ("p99", lookups.p99, http.health.p99),
        ] {
            rows.push(BenchRow::new(
                format!("HTTP look-up by {} {p}", kind.label()),
                backend,
                Some(a),
                Unit::Nanos,
                format!("HTTP GET /api/v1/health {p}"),
                Some(b),
            ));
        }
        http_p50.push((*kind, lookups.p50));
        let expected = if *kind == Kind::Phone {
            phones.existing
        } else {
            card_keys.existing
        };
        if *found != expected {
            report.notes.push(format!(
                "HTTP look-up by {}: {found} found, {expected} keys exist",
                kind.label()
            ));
        }
    }

    // Import.
    let mut import_rate = None;
    if args.skip_import {
        report
            .notes
            .push("import not measured (--skip-import)".into());
    } else {
        let f = measure_import(&app, &demo, &mut bare, customers as u64).await?;
        report.rows.push(row(
            &format!("CSV import of {} rows", thousands(f.rows)),
            &match f.rate {
                Some(r) => rate(r),
                None => "failed".into(),
            },
            &f.reference,
            &rate(f.reference_rate),
            &f.rate
                .map(|r| ratio(f.reference_rate / r))
                .unwrap_or_else(|| "—".into()),
        ));
        report.diagnostics.push(row(
            &format!("CSV import of {} rows", thousands(f.rows)),
            &f.rate.map(rate).unwrap_or_else(|| "failed".into()),
            &f.engine_copy.0,
            &rate(f.engine_copy.1),
            &f.rate
                .map(|r| ratio(f.engine_copy.1 / r))
                .unwrap_or_else(|| "—".into()),
        ));
        rows.push(BenchRow::new(
            format!("CSV import of {} rows", thousands(f.rows)),
            backend,
            f.rate,
            Unit::RowsPerSec,
            f.reference.clone(),
            Some(f.reference_rate),
        ));
        report.notes.extend(f.notes);
        import_rate = f.rate;
    }

    // Targets (informational).
    let sqlite_only = if backend == Backend::Sqlite {
        ""
    } else {
        " (stated for SQLite; informational here)"
    };
    for (kind, r, _) in &store_p50 {
        report.targets.push(target(
            &format!(
                "store look-up by {} p50 within 5× of the bare one{sqlite_only}",
                kind.label()
            ),
            &ratio(*r),
            *r <= 5.0,
        ));
    }
    for (kind, p50) in &http_p50 {
        report.targets.push(target(
            &format!("HTTP look-up by {} p50 under 1 ms", kind.label()),
            &us(*p50),
            *p50 < 1e6,
        ));
    }
    if let Some(r) = import_rate {
        report.targets.push(target(
            &format!("import at least 100,000 rows/s{sqlite_only}"),
            &rate(r),
            r >= 100_000.0,
        ));
    }
    report.header.push(format!(
        "machine: {} CPUs; load average (1/5/15 min) {} at start, {} at end",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        load_start,
        load_average()
    ));
    report.print();
    Ok((ExitCode::SUCCESS, rows))
}

// ---------------------------------------------------------------------------------------
// Statistics and output.

/// Latency figures of one measurement, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Stats {
    p50: f64,
    p99: f64,
    mean: f64,
}

/// The nearest-rank percentile (`p` in 0..=100) of sorted values; `None` when empty.
fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn stats(mut ns: Vec<u64>) -> Stats {
    ns.sort_unstable();
    let mean = ns.iter().map(|&v| v as f64).sum::<f64>() / ns.len().max(1) as f64;
    let p = |q| percentile(&ns, q).map(|v| v as f64).unwrap_or(f64::NAN);
    Stats {
        p50: p(50.0),
        p99: p(99.0),
        mean,
    }
}

fn us(ns: f64) -> String {
    if ns >= 10_000_000.0 {
        format!("{:.1} ms", ns / 1e6)
    } else {
        format!("{:.1} µs", ns / 1e3)
    }
}

fn rate(r: f64) -> String {
    format!("{} rows/s", thousands(r.round() as u64))
}

fn ratio(x: f64) -> String {
    format!("{x:.1}×")
}

pub(crate) fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn row(what: &str, figure: &str, reference: &str, ref_figure: &str, ratio: &str) -> [String; 5] {
    [what, figure, reference, ref_figure, ratio].map(str::to_string)
}

fn target(what: &str, figure: &str, met: bool) -> String {
    format!("{what}: {figure} — {}", if met { "met" } else { "NOT met" })
}

#[derive(Default)]
struct Report {
    header: Vec<String>,
    rows: Vec<[String; 5]>,
    /// Extra rows that split the store's overhead (printed under the main table).
    diagnostics: Vec<[String; 5]>,
    targets: Vec<String>,
    notes: Vec<String>,
}

impl Report {
    fn latency_rows(&mut self, what: &str, s: &Stats, reference: &str, r: &Stats) {
        for (name, a, b) in [
            ("p50", s.p50, r.p50),
            ("p99", s.p99, r.p99),
            ("mean", s.mean, r.mean),
        ] {
            self.rows.push(row(
                &format!("{what} {name}"),
                &us(a),
                &format!("{reference} {name}"),
                &us(b),
                &ratio(a / b),
            ));
        }
    }

    fn print(&self) {
        for h in &self.header {
            println!("{h}");
        }
        println!();
        let head = row("what", "figure", "reference", "ref figure", "ratio");
        let width = |i: usize| {
            self.rows
                .iter()
                .chain(&self.diagnostics)
                .chain(std::iter::once(&head))
                .map(|r| r[i].chars().count())
                .max()
                .unwrap_or(0)
        };
        let w: Vec<usize> = (0..5).map(width).collect();
        let line = |r: &[String; 5]| {
            let cell = |i: usize, right: bool| {
                let pad = " ".repeat(w[i] - r[i].chars().count());
                if right {
                    format!("{pad}{}", r[i])
                } else {
                    format!("{}{pad}", r[i])
                }
            };
            println!(
                "{} | {} | {} | {} | {}",
                cell(0, false),
                cell(1, true),
                cell(2, false),
                cell(3, true),
                cell(4, true)
            );
        };
        line(&head);
        let rule = w
            .iter()
            .map(|n| "-".repeat(*n))
            .collect::<Vec<_>>()
            .join("-+-");
        println!("{rule}");
        for r in &self.rows {
            line(r);
        }
        if !self.diagnostics.is_empty() {
            println!("{rule}");
            println!("where the time goes (diagnostics):");
            for r in &self.diagnostics {
                line(r);
            }
        }
        println!(
            "(ratio: the figure's cost — time per look-up or per row — in units of the reference's)"
        );
        println!();
        println!("targets (informational):");
        for t in &self.targets {
            println!("  {t}");
        }
        if !self.notes.is_empty() {
            println!();
            println!("notes:");
            for n in &self.notes {
                println!("  {n}");
            }
        }
    }
}

fn load_average() -> String {
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

async fn describe_db(backend: Backend, url: &str, bare: &mut Bare) -> String {
    match (backend, &mut *bare) {
        (Backend::Sqlite, _) => {
            let path = sqlite_path(url);
            let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            format!(
                "SQLite {path} ({:.2} GB, sqlite {})",
                size as f64 / 1e9,
                csqlite::version()
            )
        }
        (Backend::Postgres, Bare::Pg { conn, .. }) => {
            let info: Result<(String, i64), _> =
                sqlx::query_as("SELECT version(), pg_database_size(current_database())")
                    .fetch_one(&mut *conn)
                    .await;
            match info {
                Ok((v, size)) => format!(
                    "PostgreSQL {} ({:.2} GB): {}",
                    crate::config::redact(url),
                    size as f64 / 1e9,
                    v.split(" on ").next().unwrap_or(&v)
                ),
                Err(_) => format!("PostgreSQL {}", crate::config::redact(url)),
            }
        }
        (Backend::Postgres, _) => "PostgreSQL".into(),
    }
}

// ---------------------------------------------------------------------------------------
// The bare references.

enum Bare {
    Sqlite {
        conn: csqlite::Conn,
        by_phone: csqlite::Stmt,
        by_card: csqlite::Stmt,
        one: csqlite::Stmt,
        tenant: Uuid,
        path: String,
    },
    Pg {
        conn: sqlx::PgConnection,
        tenant: Uuid,
        url: String,
    },
}

impl Bare {
    fn open_sqlite(path: &str, tenant: TenantId) -> anyhow::Result<Bare> {
        let mut conn = csqlite::Conn::open(path, true)?;
        let by_phone = conn.prepare(BY_PHONE_SQL)?;
        let by_card = conn.prepare(BY_CARD_SQL)?;
        let one = conn.prepare("SELECT 1")?;
        Ok(Bare::Sqlite {
            conn,
            by_phone,
            by_card,
            one,
            tenant: tenant.0,
            path: path.to_string(),
        })
    }

    async fn open_pg(url: &str, tenant: TenantId) -> anyhow::Result<Bare> {
        // The scratch-table statements take seconds: no "slow statement" warnings.
        let options: sqlx::postgres::PgConnectOptions = url.parse()?;
        let conn = options
            .disable_statement_logging()
            .connect()
            .await
            .context("connecting the bare PostgreSQL reference")?;
        Ok(Bare::Pg {
            conn,
            tenant: tenant.0,
            url: url.to_string(),
        })
    }

    fn label(&self) -> &'static str {
        match self {
            Bare::Sqlite { .. } => "bare C prepared stmt",
            Bare::Pg { .. } => "bare PgConnection prepared stmt",
        }
    }

    /// The store's query on the reference path: bind, step, read every column.
    async fn lookup(&mut self, kind: Kind, key: &str) -> anyhow::Result<bool> {
        match self {
            Bare::Sqlite {
                conn,
                by_phone,
                by_card,
                tenant,
                ..
            } => {
                let st = if kind == Kind::Phone {
                    *by_phone
                } else {
                    *by_card
                };
                let rows = conn.query(
                    st,
                    &[
                        csqlite::Param::Blob(tenant.as_bytes()),
                        csqlite::Param::Text(key),
                    ],
                )?;
                Ok(!black_box(rows).is_empty())
            }
            Bare::Pg { conn, tenant, .. } => {
                let row = sqlx::query(kind.sql())
                    .bind(*tenant)
                    .bind(key)
                    .fetch_optional(&mut *conn)
                    .await?;
                if let Some(r) = &row {
                    for i in 0..r.len() {
                        black_box(r.try_get_raw(i)?.as_bytes().ok());
                    }
                }
                Ok(row.is_some())
            }
        }
    }

    async fn select_one(&mut self) -> anyhow::Result<()> {
        match self {
            Bare::Sqlite { conn, one, .. } => {
                black_box(conn.query(*one, &[])?);
            }
            Bare::Pg { conn, .. } => {
                black_box(sqlx::query("SELECT 1").fetch_one(&mut *conn).await?);
            }
        }
        Ok(())
    }

    async fn count_cards(&mut self) -> anyhow::Result<u64> {
        let n = match self {
            Bare::Sqlite { conn, tenant, .. } => {
                let rows = conn.query_once(
                    "SELECT COUNT(*) FROM cards WHERE tenant_id = ?1",
                    &[csqlite::Param::Blob(tenant.as_bytes())],
                )?;
                match rows.first().and_then(|r| r.first()) {
                    Some(csqlite::Value::Int(n)) => *n,
                    _ => 0,
                }
            }
            Bare::Pg { conn, tenant, .. } => {
                sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM cards WHERE tenant_id = $1")
                    .bind(*tenant)
                    .fetch_one(&mut *conn)
                    .await?
            }
        };
        Ok(n.max(0) as u64)
    }

    /// Random existing phones or card numbers of the tenant (at most `n`).
    async fn random_keys(&mut self, kind: Kind, n: usize) -> anyhow::Result<Vec<String>> {
        let sql = match kind {
            Kind::Phone => {
                "SELECT phone FROM customers WHERE tenant_id = $1 AND phone IS NOT NULL AND merged_into IS NULL ORDER BY random() LIMIT $2"
            }
            Kind::Card => {
                "SELECT number FROM cards WHERE tenant_id = $1 AND customer_id IS NOT NULL ORDER BY random() LIMIT $2"
            }
        };
        match self {
            Bare::Sqlite { conn, tenant, .. } => {
                let rows = conn.query_once(
                    sql,
                    &[
                        csqlite::Param::Blob(tenant.as_bytes()),
                        csqlite::Param::Int(n as i64),
                    ],
                )?;
                Ok(rows
                    .into_iter()
                    .filter_map(|mut r| match r.pop() {
                        Some(csqlite::Value::Text(s)) => Some(s),
                        _ => None,
                    })
                    .collect())
            }
            Bare::Pg { conn, tenant, .. } => Ok(sqlx::query_scalar(sql)
                .bind(*tenant)
                .bind(n as i64)
                .fetch_all(&mut *conn)
                .await?),
        }
    }

    /// The query plans of both look-ups, one line each.
    async fn plans(
        &mut self,
        phone: &str,
        card: &str,
    ) -> anyhow::Result<Vec<(&'static str, String)>> {
        let mut out = Vec::new();
        for (kind, key) in [(Kind::Phone, phone), (Kind::Card, card)] {
            let plan = match self {
                Bare::Sqlite { conn, tenant, .. } => {
                    let rows = conn.query_once(
                        &format!("EXPLAIN QUERY PLAN {}", kind.sql()),
                        &[
                            csqlite::Param::Blob(tenant.as_bytes()),
                            csqlite::Param::Text(key),
                        ],
                    )?;
                    rows.into_iter()
                        .filter_map(|mut r| match r.pop() {
                            Some(csqlite::Value::Text(s)) => Some(s),
                            _ => None,
                        })
                        .collect::<Vec<_>>()
                        .join("; ")
                }
                Bare::Pg { conn, tenant, .. } => {
                    let sql = format!("EXPLAIN {}", kind.sql());
                    let lines: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                        .bind(*tenant)
                        .bind(key)
                        .fetch_all(&mut *conn)
                        .await?;
                    lines
                        .iter()
                        .map(|l| l.trim())
                        .collect::<Vec<_>>()
                        .join("; ")
                }
            };
            out.push((kind.label(), plan));
        }
        Ok(out)
    }
}

/// Look-up keys: existing ones and 5% that exist nowhere, shuffled.
struct Keys {
    kind: Kind,
    keys: Vec<String>,
    existing: usize,
}

async fn sample_keys(bare: &mut Bare, kind: Kind, samples: usize) -> anyhow::Result<Keys> {
    let misses = samples / 20;
    let hits = samples - misses;
    let found = bare.random_keys(kind, hits).await?;
    ensure!(
        !found.is_empty(),
        "tenant demo has no {}s to look up",
        kind.label()
    );
    let mut keys: Vec<String> = found.iter().cycle().take(hits).cloned().collect();
    let mut rng = rand::rng();
    let template = found[0].clone();
    let mut made = 0;
    let mut tries = 0;
    while made < misses {
        tries += 1;
        ensure!(
            tries < misses * 100 + 1000,
            "could not invent {} {}s that exist nowhere",
            misses,
            kind.label()
        );
        let candidate = match kind {
            Kind::Phone => format!(
                "1{}{:09}",
                rng.random_range(3..=9),
                rng.random_range(0..1_000_000_000u32)
            ),
            Kind::Card => {
                // Same length and first four digits as a real card, valid check digit.
                let len = template.len().max(8);
                let prefix: String = template.chars().take(4.min(len - 1)).collect();
                let mut payload = prefix;
                while payload.len() < len - 1 {
                    payload.push(char::from(b'0' + rng.random_range(0..10u8)));
                }
                patron_domain::card_number::with_check_digit(&payload)
            }
        };
        if !bare.lookup(kind, &candidate).await? {
            keys.push(candidate);
            made += 1;
        }
    }
    keys.shuffle(&mut rng);
    Ok(Keys {
        kind,
        keys,
        existing: hits,
    })
}

// ---------------------------------------------------------------------------------------
// Timing.

struct Paired {
    store: Stats,
    bare: Stats,
    store_found: usize,
    bare_found: usize,
}

fn elapsed_ns(t: Instant) -> u64 {
    t.elapsed().as_nanos() as u64
}

/// A way to run the look-up queries, timed against another.
trait LookupPath {
    async fn lookup(&mut self, kind: Kind, key: &str) -> anyhow::Result<bool>;
}

/// The store layer, as the use cases call it.
struct StorePath<'a> {
    app: &'a App,
    tenant: TenantId,
}

impl LookupPath for StorePath<'_> {
    async fn lookup(&mut self, kind: Kind, key: &str) -> anyhow::Result<bool> {
        let found = match kind {
            Kind::Phone => self.app.storage.customer_by_phone(self.tenant, key).await?,
            Kind::Card => {
                self.app
                    .storage
                    .customer_by_card_number(self.tenant, key)
                    .await?
            }
        };
        Ok(black_box(found).is_some())
    }
}

impl LookupPath for Bare {
    async fn lookup(&mut self, kind: Kind, key: &str) -> anyhow::Result<bool> {
        Bare::lookup(self, kind, key).await
    }
}

/// Times two paths on the same keys, in alternating blocks.
async fn time_pair(
    a: &mut impl LookupPath,
    b: &mut impl LookupPath,
    keys: &Keys,
    what: &str,
) -> anyhow::Result<Paired> {
    let kind = keys.kind;
    let pb = super::progress_bar(Some(2 * keys.keys.len() as u64), what);
    for key in keys.keys.iter().cycle().take(WARMUP) {
        a.lookup(kind, key).await?;
        b.lookup(kind, key).await?;
    }
    let (mut a_ns, mut b_ns) = (
        Vec::with_capacity(keys.keys.len()),
        Vec::with_capacity(keys.keys.len()),
    );
    let (mut a_found, mut b_found) = (0, 0);
    for block in keys.keys.chunks(BLOCK) {
        for key in block {
            let t = Instant::now();
            let found = a.lookup(kind, key).await?;
            a_ns.push(elapsed_ns(t));
            a_found += usize::from(found);
        }
        for key in block {
            let t = Instant::now();
            let found = b.lookup(kind, key).await?;
            b_ns.push(elapsed_ns(t));
            b_found += usize::from(found);
        }
        pb.inc(2 * block.len() as u64);
    }
    pb.finish_and_clear();
    Ok(Paired {
        store: stats(a_ns),
        bare: stats(b_ns),
        store_found: a_found,
        bare_found: b_found,
    })
}

/// The look-up through sqlx without the store, to split the store's overhead: a pool
/// configured like the store's (rows decoded into a copy of the store's row type, or
/// fetched raw with every column touched), the same without its ping on acquire, and
/// one plain connection.
struct Diag {
    via: Via,
    tenant: Uuid,
    label: &'static str,
    decode: bool,
}

enum Via {
    SqlitePool(sqlx::SqlitePool),
    SqliteConn(sqlx::SqliteConnection),
    PgPool(sqlx::PgPool),
}

/// A copy of the store's `CustomerRow` (patron-store, rows.rs): the same column types,
/// decoded by name as its `FromRow` derive does.
#[derive(sqlx::FromRow)]
#[expect(dead_code, reason = "decoded for the timing only")]
struct StoreLikeRow {
    tenant_id: Uuid,
    id: Uuid,
    name: String,
    name_pinyin: String,
    name_initials: String,
    phone: Option<String>,
    gender: String,
    birthday: Option<chrono::NaiveDate>,
    age_band: Option<String>,
    nationality: Option<String>,
    customer_type: String,
    industry: Option<String>,
    title: Option<String>,
    company: Option<String>,
    work_phone: Option<String>,
    credit_rating: Option<String>,
    id_doc_kind: Option<String>,
    id_doc_hash: Option<String>,
    id_doc_masked: Option<String>,
    email: Option<String>,
    address: Option<String>,
    organization_id: Option<Uuid>,
    acquisition_source: Option<String>,
    referred_by: Option<Uuid>,
    marketing_consent: bool,
    marketing_consent_source: Option<String>,
    marketing_consent_at: Option<chrono::DateTime<chrono::Utc>>,
    favourite_dishes: String,
    tastes: String,
    seat_preference: Option<String>,
    allergies: String,
    tags: String,
    notes: Option<String>,
    lifecycle_stage: String,
    churn_reason: Option<String>,
    churn_note: Option<String>,
    level: Option<String>,
    home_store_id: Option<Uuid>,
    merged_into: Option<Uuid>,
    created_at: chrono::DateTime<chrono::Utc>,
    updated_at: chrono::DateTime<chrono::Utc>,
}

impl Diag {
    async fn variants(backend: Backend, url: &str, tenant: TenantId) -> anyhow::Result<Vec<Diag>> {
        use sqlx::sqlite::{
            SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
        };
        let diag = |via, label, decode| Diag {
            via,
            tenant: tenant.0,
            label,
            decode,
        };
        Ok(match backend {
            Backend::Sqlite => {
                // The store's read pool (patron_store::sqlite::SqliteStorage::open).
                let options: SqliteConnectOptions =
                    format!("sqlite://{}", sqlite_path(url)).parse()?;
                let options = options
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(10))
                    .statement_cache_capacity(256)
                    .read_only(true);
                let pool = |test: bool| {
                    SqlitePoolOptions::new()
                        .max_connections(8)
                        .min_connections(1)
                        .test_before_acquire(test)
                        .connect_with(options.clone())
                };
                vec![
                    diag(
                        Via::SqlitePool(pool(true).await?),
                        "sqlx pool as the store's, rows decoded",
                        true,
                    ),
                    diag(
                        Via::SqlitePool(pool(true).await?),
                        "sqlx pool as the store's, raw rows",
                        false,
                    ),
                    diag(
                        Via::SqlitePool(pool(false).await?),
                        "sqlx pool, no ping on acquire, raw",
                        false,
                    ),
                    diag(
                        Via::SqliteConn(options.connect().await?),
                        "sqlx SqliteConnection, no pool, raw",
                        false,
                    ),
                ]
            }
            Backend::Postgres => {
                let pool = |test: bool| {
                    sqlx::postgres::PgPoolOptions::new()
                        .max_connections(32)
                        .acquire_timeout(Duration::from_secs(10))
                        .test_before_acquire(test)
                        .connect(url)
                };
                vec![
                    diag(
                        Via::PgPool(pool(true).await?),
                        "sqlx pool as the store's, rows decoded",
                        true,
                    ),
                    diag(
                        Via::PgPool(pool(true).await?),
                        "sqlx pool as the store's, raw rows",
                        false,
                    ),
                    diag(
                        Via::PgPool(pool(false).await?),
                        "sqlx pool, no ping on acquire, raw",
                        false,
                    ),
                ]
            }
        })
    }

    async fn close(self) {
        match self.via {
            Via::SqlitePool(p) => p.close().await,
            Via::SqliteConn(c) => {
                let _ = c.close().await;
            }
            Via::PgPool(p) => p.close().await,
        }
    }
}

fn touch_row<R: Row>(row: &Option<R>) -> anyhow::Result<bool>
where
    usize: sqlx::ColumnIndex<R>,
{
    if let Some(r) = row {
        for i in 0..r.len() {
            black_box(r.try_get_raw(i)?);
        }
    }
    Ok(row.is_some())
}

impl LookupPath for Diag {
    async fn lookup(&mut self, kind: Kind, key: &str) -> anyhow::Result<bool> {
        let (t, sql) = (self.tenant, kind.sql());
        match (&mut self.via, self.decode) {
            (Via::SqlitePool(pool), false) => touch_row(
                &sqlx::query(sql)
                    .bind(t)
                    .bind(key)
                    .fetch_optional(&*pool)
                    .await?,
            ),
            (Via::SqlitePool(pool), true) => {
                let row: Option<StoreLikeRow> = sqlx::query_as(sql)
                    .bind(t)
                    .bind(key)
                    .fetch_optional(&*pool)
                    .await?;
                Ok(black_box(row).is_some())
            }
            (Via::SqliteConn(conn), _) => touch_row(
                &sqlx::query(sql)
                    .bind(t)
                    .bind(key)
                    .fetch_optional(&mut *conn)
                    .await?,
            ),
            (Via::PgPool(pool), false) => touch_row(
                &sqlx::query(sql)
                    .bind(t)
                    .bind(key)
                    .fetch_optional(&*pool)
                    .await?,
            ),
            (Via::PgPool(pool), true) => {
                let row: Option<StoreLikeRow> = sqlx::query_as(sql)
                    .bind(t)
                    .bind(key)
                    .fetch_optional(&*pool)
                    .await?;
                Ok(black_box(row).is_some())
            }
        }
    }
}

struct Pings {
    store: Stats,
    bare: Stats,
}

/// `Storage::ping` (a `SELECT 1` through the read pool) against a bare `SELECT 1`: the
/// fixed cost of a round trip through each path, whatever the query.
async fn time_pings(app: &App, bare: &mut Bare, samples: usize) -> anyhow::Result<Pings> {
    let pb = super::progress_bar(Some(2 * samples as u64), "SELECT 1");
    for _ in 0..WARMUP {
        app.storage.ping().await?;
        bare.select_one().await?;
    }
    let (mut s_ns, mut b_ns) = (Vec::with_capacity(samples), Vec::with_capacity(samples));
    let mut left = samples;
    while left > 0 {
        let n = left.min(BLOCK);
        for _ in 0..n {
            let t = Instant::now();
            app.storage.ping().await?;
            s_ns.push(elapsed_ns(t));
        }
        for _ in 0..n {
            let t = Instant::now();
            bare.select_one().await?;
            b_ns.push(elapsed_ns(t));
        }
        left -= n;
        pb.inc(2 * n as u64);
    }
    pb.finish_and_clear();
    Ok(Pings {
        store: stats(s_ns),
        bare: stats(b_ns),
    })
}

struct Http {
    /// Per kind: latencies and how many look-ups found a customer.
    lookups: Vec<(Kind, Stats, usize)>,
    health: Stats,
}

/// Starts the real server on a free port, logs in, and times look-ups and health checks
/// alternately with one keep-alive client, one request at a time.
async fn time_http(app: &App, phones: &Keys, cards: &Keys) -> anyhow::Result<Http> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(patron_http::serve(app.clone(), listener, async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::builder().no_proxy().build()?;
    let base = format!("http://{addr}/api/v1");
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
    let health_url = reqwest::Url::parse(&format!("{base}/health"))?;

    let get = |url: reqwest::Url| {
        let req = client.get(url).bearer_auth(&token);
        async move {
            let t = Instant::now();
            let resp = req.send().await?;
            let status = resp.status();
            let body = resp.bytes().await?;
            let ns = elapsed_ns(t);
            ensure!(
                status.is_success(),
                "HTTP {status}: {}",
                String::from_utf8_lossy(&body)
            );
            // The look-up answers a JSON array: "[]" when nothing was found.
            anyhow::Ok((ns, body.len() > 2))
        }
    };

    let mut result = Http {
        lookups: Vec::new(),
        health: Stats {
            p50: 0.0,
            p99: 0.0,
            mean: 0.0,
        },
    };
    let mut health_ns = Vec::new();
    for keys in [phones, cards] {
        let urls = keys
            .keys
            .iter()
            .map(|k| {
                reqwest::Url::parse_with_params(&format!("{base}/customers/lookup"), &[("q", k)])
            })
            .collect::<Result<Vec<_>, _>>()?;
        let pb = super::progress_bar(
            Some(2 * urls.len() as u64),
            &format!("HTTP {}", keys.kind.label()),
        );
        for u in urls.iter().cycle().take(WARMUP) {
            get(u.clone()).await?;
            get(health_url.clone()).await?;
        }
        let mut ns = Vec::with_capacity(urls.len());
        let mut found = 0;
        for block in urls.chunks(BLOCK) {
            for u in block {
                let (t, f) = get(u.clone()).await?;
                ns.push(t);
                found += usize::from(f);
            }
            for _ in block {
                health_ns.push(get(health_url.clone()).await?.0);
            }
            pb.inc(2 * block.len() as u64);
        }
        pb.finish_and_clear();
        result.lookups.push((keys.kind, stats(ns), found));
    }
    result.health = stats(health_ns);
    drop(client);
    let _ = stop.send(());
    server.await??;
    Ok(result)
}

// ---------------------------------------------------------------------------------------
// Import.

struct ImportFigures {
    rows: u64,
    rate: Option<f64>,
    reference: String,
    reference_rate: f64,
    /// The engine alone copying the same rows into a copy of the table: label, rows/s.
    engine_copy: (String, f64),
    notes: Vec<String>,
}

/// Exports the demo customers to CSV, imports them into a fresh tenant and times that;
/// then times a bare bulk insert of as many minimal rows.
async fn measure_import(
    app: &App,
    demo: &Actor,
    bare: &mut Bare,
    customers: u64,
) -> anyhow::Result<ImportFigures> {
    let mut notes = Vec::new();
    let dir = std::env::temp_dir().join(format!("patron-bench-{:08x}", rand::random::<u32>()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let csv: PathBuf = dir.join("customers.csv");
    let result = async {
        let pb = super::progress_bar(Some(customers), "exporting");
        let progress = {
            let pb = pb.clone();
            move |n: u64| pb.set_position(n)
        };
        let exported = app
            .export_customers(demo, &csv, ExportFormat::Csv, &progress)
            .await
            .map_err(|e| anyhow::anyhow!("export: {}", super::explain(&e)))?;
        pb.finish_and_clear();

        let code = format!("bench-{:08x}", rand::random::<u32>());
        let password = format!("{:032x}", rand::random::<u128>());
        app.init_tenant(InitRequest {
            tenant_code: code.clone(),
            tenant_name: "Import benchmark".into(),
            store_code: "main".into(),
            store_name: "Main".into(),
            username: "owner".into(),
            display_name: "Benchmark".into(),
            password,
        })
        .await
        .map_err(|e| anyhow::anyhow!("creating tenant {code}: {}", super::explain(&e)))?;
        let actor = super::actor(app, &code, "owner").await?;
        let pb = super::progress_bar(Some(exported), "validating");
        let inserting_since = std::sync::Arc::new(std::sync::OnceLock::new());
        let progress = {
            let pb = pb.clone();
            let inserting_since = inserting_since.clone();
            move |p: ImportProgress| {
                if p.phase == ImportPhase::Inserting {
                    inserting_since.get_or_init(Instant::now);
                }
                if let Some(total) = p.total {
                    pb.set_length(total);
                }
                pb.set_message(match p.phase {
                    ImportPhase::Validating => "validating",
                    ImportPhase::Inserting => "importing",
                });
                pb.set_position(p.done);
            }
        };
        let t = Instant::now();
        let report = app
            .import_customers(&actor, &csv, ImportOptions { skip_bad_rows: false }, &progress)
            .await
            .map_err(|e| anyhow::anyhow!("import: {}", super::explain(&e)))?;
        let end = Instant::now();
        let secs = (end - t).as_secs_f64();
        pb.finish_and_clear();
        let csv_size = std::fs::metadata(&csv).map(|m| m.len()).unwrap_or(0);
        notes.push(format!(
            "import: {} rows exported to CSV ({:.0} MB), {} imported into tenant {code} in {secs:.1}s; \
             the tenant and its customers are left in the database",
            thousands(exported),
            csv_size as f64 / 1e6,
            thousands(report.imported),
        ));
        if let Some(&since) = inserting_since.get() {
            let validating = (since - t).as_secs_f64();
            let inserting = (end - since).as_secs_f64();
            notes.push(format!(
                "import phases: validating {validating:.1}s ({}), inserting {inserting:.1}s ({})",
                rate(report.rows as f64 / validating),
                rate(report.imported as f64 / inserting),
            ));
        }
        let rate = if report.rejected_lines.is_empty() && report.imported > 0 {
            Some(report.imported as f64 / secs)
        } else {
            notes.push(format!(
                "import refused the file: {} bad rows, e.g. {}",
                report.rejected_lines.len(),
                report
                    .rejected
                    .iter()
                    .take(3)
                    .map(|e| format!("line {} {}: {}", e.line, e.field, e.message))
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
            None
        };
        anyhow::Ok((exported, rate))
    }
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    let (rows, rate) = result?;

    let pb = super::progress_bar(None, "bare insert");
    pb.enable_steady_tick(Duration::from_millis(200));
    let (reference, took) = match bare {
        Bare::Sqlite { path, .. } => (
            "bare C INSERT, 4-col rows (pk + unique), 1 txn".to_string(),
            sqlite_bare_insert(path, rows)?,
        ),
        Bare::Pg { conn, .. } => (
            "bare COPY, 4-col rows (pk + unique), 1 stmt".to_string(),
            pg_bare_copy(conn, rows).await?,
        ),
    };
    let (engine_label, engine_took) = match bare {
        Bare::Sqlite { path, tenant, .. } => (
            "engine INSERT…SELECT, same rows & indexes",
            sqlite_engine_copy(path, *tenant)?,
        ),
        Bare::Pg { conn, tenant, .. } => (
            "engine INSERT…SELECT, same rows & indexes",
            pg_engine_copy(conn, *tenant).await?,
        ),
    };
    pb.finish_and_clear();
    notes.push(
        "engine INSERT…SELECT: the database alone copying the same customers into a scratch copy of the customers \
         table (same columns and indexes), one transaction, same durability (SQLite: with the store's import \
         settings, foreign keys off and a 512 MiB page cache; PostgreSQL: no foreign keys): the floor for \
         inserting these rows"
            .into(),
    );
    notes.push(
        "import reference: rows of (tenant_id, uuid v7 id, name, phone) with the customers table's primary key and a \
         unique (tenant_id, phone) index, into a scratch table dropped afterwards; same durability settings"
            .into(),
    );
    Ok(ImportFigures {
        rows,
        rate,
        reference,
        reference_rate: rows as f64 / took.as_secs_f64(),
        engine_copy: (
            engine_label.to_string(),
            engine_took.0 as f64 / engine_took.1.as_secs_f64(),
        ),
        notes,
    })
}

/// Copies the demo tenant's customers inside SQLite into a scratch copy of the table (same
/// definition and indexes), in one transaction, with the settings of the store's import
/// connection: the engine's floor for inserting these rows. Rows copied, time.
fn sqlite_engine_copy(path: &str, tenant: Uuid) -> anyhow::Result<(u64, Duration)> {
    let mut conn = csqlite::Conn::open(path, false)?;
    // The settings the store's import connection uses (begin_customer_import): foreign
    // keys off (the import checks references itself), a 512 MiB page cache.
    conn.exec(
        "PRAGMA synchronous = FULL; PRAGMA foreign_keys = OFF; PRAGMA cache_size = -524288; \
         PRAGMA temp_store = MEMORY",
    )?;
    conn.exec("DROP TABLE IF EXISTS patron_bench_copy")?;
    let ddl = conn.query_once(
        "SELECT type, sql FROM sqlite_master WHERE tbl_name = 'customers' AND sql IS NOT NULL \
         ORDER BY type DESC",
        &[],
    )?;
    for r in ddl {
        let (Some(csqlite::Value::Text(kind)), Some(csqlite::Value::Text(sql))) =
            (r.first(), r.get(1))
        else {
            continue;
        };
        let sql = if kind == "table" {
            sql.replacen(
                "CREATE TABLE customers",
                "CREATE TABLE patron_bench_copy",
                1,
            )
        } else {
            sql.replacen("INDEX ", "INDEX patron_bench_copy_", 1)
                .replacen(" ON customers ", " ON patron_bench_copy ", 1)
        };
        ensure!(
            sql.contains("patron_bench_copy"),
            "cannot copy the definition {sql}"
        );
        conn.exec(&sql)?;
    }
    let copy =
        conn.prepare("INSERT INTO patron_bench_copy SELECT * FROM customers WHERE tenant_id = ?1")?;
    let t = Instant::now();
    conn.exec("BEGIN")?;
    conn.query(copy, &[csqlite::Param::Blob(tenant.as_bytes())])?;
    let rows = conn.changes();
    conn.exec("COMMIT")?;
    let took = t.elapsed();
    conn.exec("DROP TABLE patron_bench_copy")?;
    Ok((rows, took))
}

/// The same on PostgreSQL (a copy `LIKE customers INCLUDING ALL`: indexes, no foreign keys).
async fn pg_engine_copy(
    conn: &mut sqlx::PgConnection,
    tenant: Uuid,
) -> anyhow::Result<(u64, Duration)> {
    sqlx::query("DROP TABLE IF EXISTS patron_bench_copy")
        .execute(&mut *conn)
        .await?;
    sqlx::query("CREATE TABLE patron_bench_copy (LIKE customers INCLUDING ALL)")
        .execute(&mut *conn)
        .await?;
    let t = Instant::now();
    let done =
        sqlx::query("INSERT INTO patron_bench_copy SELECT * FROM customers WHERE tenant_id = $1")
            .bind(tenant)
            .execute(&mut *conn)
            .await?;
    let took = t.elapsed();
    sqlx::query("DROP TABLE patron_bench_copy")
        .execute(&mut *conn)
        .await?;
    Ok((done.rows_affected(), took))
}

/// A distinct, scattered mobile number for row `i` (a bijection on 0..10⁹).
fn scratch_phone(i: u64) -> String {
    format!(
        "13{:09}",
        (i.wrapping_mul(738_218_669) + 12_345) % 1_000_000_000
    )
}

fn sqlite_bare_insert(path: &str, rows: u64) -> anyhow::Result<Duration> {
    let mut conn = csqlite::Conn::open(path, false)?;
    conn.exec("PRAGMA synchronous = FULL")?;
    conn.exec("DROP TABLE IF EXISTS patron_bench_scratch")?;
    conn.exec(
        "CREATE TABLE patron_bench_scratch (tenant_id BLOB NOT NULL, id BLOB NOT NULL, name TEXT NOT NULL, phone TEXT, \
         PRIMARY KEY (tenant_id, id)); \
         CREATE UNIQUE INDEX patron_bench_scratch_phone ON patron_bench_scratch (tenant_id, phone)",
    )?;
    let insert = conn.prepare(
        "INSERT INTO patron_bench_scratch (tenant_id, id, name, phone) VALUES (?1, ?2, ?3, ?4)",
    )?;
    let tenant = Uuid::now_v7();
    let t = Instant::now();
    conn.exec("BEGIN")?;
    for i in 0..rows {
        let id = Uuid::now_v7();
        let name = format!("会员{i}");
        let phone = scratch_phone(i);
        use csqlite::Param::*;
        conn.query(
            insert,
            &[
                Blob(tenant.as_bytes()),
                Blob(id.as_bytes()),
                Text(&name),
                Text(&phone),
            ],
        )?;
    }
    conn.exec("COMMIT")?;
    let took = t.elapsed();
    conn.exec("DROP TABLE patron_bench_scratch")?;
    Ok(took)
}

async fn pg_bare_copy(conn: &mut sqlx::PgConnection, rows: u64) -> anyhow::Result<Duration> {
    sqlx::query("DROP TABLE IF EXISTS patron_bench_scratch")
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "CREATE TABLE patron_bench_scratch (tenant_id uuid NOT NULL, id uuid NOT NULL, name text NOT NULL, phone text, \
         PRIMARY KEY (tenant_id, id), UNIQUE (tenant_id, phone))",
    )
    .execute(&mut *conn)
    .await?;
    let tenant = Uuid::now_v7();
    let t = Instant::now();
    let mut copy = conn
        .copy_in_raw("COPY patron_bench_scratch (tenant_id, id, name, phone) FROM STDIN")
        .await?;
    let mut buf = String::with_capacity(1 << 20);
    for i in 0..rows {
        let _ = writeln!(
            buf,
            "{tenant}\t{}\t会员{i}\t{}",
            Uuid::now_v7(),
            scratch_phone(i)
        );
        if buf.len() >= 1 << 20 {
            copy.send(std::mem::take(&mut buf).into_bytes()).await?;
        }
    }
    if !buf.is_empty() {
        copy.send(buf.into_bytes()).await?;
    }
    copy.finish().await?;
    let took = t.elapsed();
    sqlx::query("DROP TABLE patron_bench_scratch")
        .execute(&mut *conn)
        .await?;
    Ok(took)
}

// ---------------------------------------------------------------------------------------
// pgbench.

fn on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(program))
            .find(|f| f.is_file())
    })
}

/// Runs pgbench (one client, prepared statements) on the same look-ups, the keys drawn
/// from a scratch table by `\gset`. Per kind: the look-up statement's average latency and
/// the whole transaction's, in ms. `None` when pgbench is not installed.
async fn pgbench(
    bare: &mut Bare,
    url: &str,
    tenant: TenantId,
    phones: &Keys,
    cards: &Keys,
) -> anyhow::Result<Option<Vec<(Kind, f64, f64)>>> {
    let Some(program) = on_path("pgbench") else {
        return Ok(None);
    };
    let Bare::Pg { conn, .. } = bare else {
        return Ok(None);
    };
    let n = phones.keys.len().min(cards.keys.len());
    sqlx::query("DROP TABLE IF EXISTS patron_bench_keys")
        .execute(&mut *conn)
        .await?;
    sqlx::query("CREATE TABLE patron_bench_keys (n integer PRIMARY KEY, phone text NOT NULL, card text NOT NULL)")
        .execute(&mut *conn)
        .await?;
    let mut copy = conn
        .copy_in_raw("COPY patron_bench_keys (n, phone, card) FROM STDIN")
        .await?;
    let mut data = String::new();
    for i in 0..n {
        let _ = writeln!(data, "{}\t{}\t{}", i + 1, phones.keys[i], cards.keys[i]);
    }
    copy.send(data.into_bytes()).await?;
    copy.finish().await?;
    sqlx::query("ANALYZE patron_bench_keys")
        .execute(&mut *conn)
        .await?;

    let dir = std::env::temp_dir().join(format!("patron-pgbench-{:08x}", rand::random::<u32>()));
    std::fs::create_dir_all(&dir)?;
    let mut out = Vec::new();
    let result = (|| {
        for (kind, column, lookup) in [
            (
                Kind::Phone,
                "phone",
                format!(
                    "SELECT {} FROM customers WHERE tenant_id = :t AND phone = :k;",
                    customer_cols!()
                ),
            ),
            (
                Kind::Card,
                "card",
                format!(
                    "SELECT {} FROM customers WHERE tenant_id = :t AND id = \
                     (SELECT customer_id FROM cards WHERE tenant_id = :t AND number = :k);",
                    customer_cols!()
                ),
            ),
        ] {
            let script = dir.join(format!("{column}.sql"));
            std::fs::write(
                &script,
                format!(
                    "\\set n random(1, {n})\nSELECT {column} AS k FROM patron_bench_keys WHERE n = :n \\gset\n{lookup}\n"
                ),
            )?;
            eprintln!("running pgbench for the look-up by {}…", kind.label());
            let output = std::process::Command::new(&program)
                .args(["-n", "-M", "prepared", "-r", "-c", "1", "-j", "1", "-t"])
                .arg(n.to_string())
                .arg("-D")
                .arg(format!("t={}", tenant.0))
                .arg("-f")
                .arg(&script)
                .arg(url)
                .output()
                .context("running pgbench")?;
            let stdout = String::from_utf8_lossy(&output.stdout);
            if !output.status.success() {
                bail!(
                    "pgbench failed: {}{}",
                    stdout,
                    String::from_utf8_lossy(&output.stderr)
                );
            }
            let (stmt, tx) = parse_pgbench(&stdout)
                .with_context(|| format!("reading pgbench's output:\n{stdout}"))?;
            out.push((kind, stmt, tx));
        }
        anyhow::Ok(())
    })();
    let _ = std::fs::remove_dir_all(&dir);
    sqlx::query("DROP TABLE patron_bench_keys")
        .execute(&mut *conn)
        .await?;
    result?;
    Ok(Some(out))
}

/// From pgbench's `-r` report: the look-up statement's latency (the script's last
/// statement; pgbench prints long statements cut short) and the transaction's, in ms.
fn parse_pgbench(out: &str) -> Option<(f64, f64)> {
    let tx = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("latency average = "))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())?;
    let stmt = out
        .lines()
        .skip_while(|l| !l.starts_with("statement latencies"))
        .skip(1)
        .filter_map(|l| l.split_whitespace().next()?.parse::<f64>().ok())
        .last()?;
    Some((stmt, tx))
}

// ---------------------------------------------------------------------------------------
// The raw SQLite C API, just enough for a fair reference.

mod csqlite {
    use anyhow::{Result, bail};
    use libsqlite3_sys as ffi;
    use std::ffi::{CStr, CString, c_int};

    pub enum Param<'a> {
        Blob(&'a [u8]),
        Text(&'a str),
        Int(i64),
    }

    /// A column read into an owned value, as a Rust caller of the C API would.
    #[derive(Debug)]
    #[expect(
        dead_code,
        reason = "the benchmark reads values only through black_box"
    )]
    pub enum Value {
        Null,
        Int(i64),
        Real(f64),
        Text(String),
        Blob(Vec<u8>),
    }

    /// A prepared statement of a [`Conn`] (finalized when the connection closes).
    #[derive(Clone, Copy)]
    pub struct Stmt(usize);

    pub struct Conn {
        db: *mut ffi::sqlite3,
        stmts: Vec<*mut ffi::sqlite3_stmt>,
    }

    // SAFETY: the connection is opened with SQLITE_OPEN_NOMUTEX (multi-thread mode), in
    // which a connection may move between threads as long as one thread uses it at a
    // time; every use goes through `&self`/`&mut self` and `Conn` is not `Sync`.
    unsafe impl Send for Conn {}

    pub fn version() -> String {
        // SAFETY: sqlite3_libversion returns a static NUL-terminated string.
        unsafe { CStr::from_ptr(ffi::sqlite3_libversion()) }
            .to_string_lossy()
            .into_owned()
    }

    impl Conn {
        /// Opens an existing database file with the flags sqlx uses (no mutex).
        pub fn open(path: &str, read_only: bool) -> Result<Conn> {
            let c_path = CString::new(path)?;
            let flags = ffi::SQLITE_OPEN_NOMUTEX
                | if read_only {
                    ffi::SQLITE_OPEN_READONLY
                } else {
                    ffi::SQLITE_OPEN_READWRITE
                };
            let mut db = std::ptr::null_mut();
            // SAFETY: valid C string and out-pointer; the handle is closed by Drop even on error.
            let rc =
                unsafe { ffi::sqlite3_open_v2(c_path.as_ptr(), &mut db, flags, std::ptr::null()) };
            let conn = Conn {
                db,
                stmts: Vec::new(),
            };
            if rc != ffi::SQLITE_OK {
                bail!("opening {path}: {}", conn.errmsg());
            }
            // SAFETY: open handle.
            unsafe { ffi::sqlite3_busy_timeout(db, 10_000) };
            Ok(conn)
        }

        fn errmsg(&self) -> String {
            if self.db.is_null() {
                return "out of memory".into();
            }
            // SAFETY: open handle; the message is copied before any other call.
            unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(self.db)) }
                .to_string_lossy()
                .into_owned()
        }

        /// Runs one or more statements without results.
        pub fn exec(&self, sql: &str) -> Result<()> {
            let c_sql = CString::new(sql)?;
            // SAFETY: open handle, valid C string, no callback.
            let rc = unsafe {
                ffi::sqlite3_exec(
                    self.db,
                    c_sql.as_ptr(),
                    None,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                )
            };
            if rc != ffi::SQLITE_OK {
                bail!("{sql}: {}", self.errmsg());
            }
            Ok(())
        }

        /// Prepares a statement kept for reuse until the connection closes.
        pub fn prepare(&mut self, sql: &str) -> Result<Stmt> {
            let mut stmt = std::ptr::null_mut();
            // SAFETY: open handle; `sql` is passed with its length, so no NUL is needed.
            let rc = unsafe {
                ffi::sqlite3_prepare_v3(
                    self.db,
                    sql.as_ptr().cast(),
                    c_int::try_from(sql.len())?,
                    ffi::SQLITE_PREPARE_PERSISTENT,
                    &mut stmt,
                    std::ptr::null_mut(),
                )
            };
            if rc != ffi::SQLITE_OK || stmt.is_null() {
                bail!("preparing {sql}: {}", self.errmsg());
            }
            self.stmts.push(stmt);
            Ok(Stmt(self.stmts.len() - 1))
        }

        /// Resets the statement, binds `params` (copied), steps to the end and reads every
        /// column of every row.
        pub fn query(&mut self, st: Stmt, params: &[Param]) -> Result<Vec<Vec<Value>>> {
            let s = self.stmts[st.0];
            // SAFETY: `s` is a live statement of this connection; text and blobs are bound
            // with SQLITE_TRANSIENT (SQLite copies them), so no borrow outlives this call.
            unsafe {
                ffi::sqlite3_reset(s);
                for (i, p) in params.iter().enumerate() {
                    let i = c_int::try_from(i + 1)?;
                    let rc = match p {
                        Param::Blob(b) => ffi::sqlite3_bind_blob(
                            s,
                            i,
                            b.as_ptr().cast(),
                            c_int::try_from(b.len())?,
                            ffi::SQLITE_TRANSIENT(),
                        ),
                        Param::Text(t) => ffi::sqlite3_bind_text(
                            s,
                            i,
                            t.as_ptr().cast(),
                            c_int::try_from(t.len())?,
                            ffi::SQLITE_TRANSIENT(),
                        ),
                        Param::Int(v) => ffi::sqlite3_bind_int64(s, i, *v),
                    };
                    if rc != ffi::SQLITE_OK {
                        bail!("binding parameter {i}: {}", self.errmsg());
                    }
                }
                let mut rows = Vec::new();
                loop {
                    match ffi::sqlite3_step(s) {
                        ffi::SQLITE_ROW => rows.push(read_row(s)),
                        ffi::SQLITE_DONE => break,
                        rc => {
                            let e = self.errmsg();
                            ffi::sqlite3_reset(s);
                            bail!("step failed ({rc}): {e}");
                        }
                    }
                }
                ffi::sqlite3_reset(s);
                Ok(rows)
            }
        }

        /// Rows changed by the last INSERT, UPDATE or DELETE.
        pub fn changes(&self) -> u64 {
            // SAFETY: open handle.
            unsafe { ffi::sqlite3_changes64(self.db) }.max(0) as u64
        }

        /// Prepares, runs and finalizes a one-off statement.
        pub fn query_once(&mut self, sql: &str, params: &[Param]) -> Result<Vec<Vec<Value>>> {
            let st = self.prepare(sql)?;
            let rows = self.query(st, params);
            if st.0 + 1 == self.stmts.len()
                && let Some(s) = self.stmts.pop()
            {
                // SAFETY: a statement of this connection, removed from the list first.
                unsafe { ffi::sqlite3_finalize(s) };
            }
            rows
        }
    }

    /// # Safety
    /// `s` must be a statement positioned on a row (`sqlite3_step` returned SQLITE_ROW).
    unsafe fn read_row(s: *mut ffi::sqlite3_stmt) -> Vec<Value> {
        // SAFETY: per the contract; pointers are read before the next call on `s`.
        unsafe {
            let n = ffi::sqlite3_column_count(s);
            (0..n)
                .map(|i| match ffi::sqlite3_column_type(s, i) {
                    ffi::SQLITE_INTEGER => Value::Int(ffi::sqlite3_column_int64(s, i)),
                    ffi::SQLITE_FLOAT => Value::Real(ffi::sqlite3_column_double(s, i)),
                    ffi::SQLITE_TEXT => {
                        let p = ffi::sqlite3_column_text(s, i);
                        let len = ffi::sqlite3_column_bytes(s, i) as usize;
                        let bytes = if p.is_null() {
                            &[][..]
                        } else {
                            std::slice::from_raw_parts(p, len)
                        };
                        match std::str::from_utf8(bytes) {
                            Ok(t) => Value::Text(t.to_owned()),
                            Err(_) => Value::Blob(bytes.to_vec()),
                        }
                    }
                    ffi::SQLITE_BLOB => {
                        let p = ffi::sqlite3_column_blob(s, i).cast::<u8>();
                        let len = ffi::sqlite3_column_bytes(s, i) as usize;
                        Value::Blob(if p.is_null() {
                            Vec::new()
                        } else {
                            std::slice::from_raw_parts(p, len).to_vec()
                        })
                    }
                    _ => Value::Null,
                })
                .collect()
        }
    }

    impl Drop for Conn {
        fn drop(&mut self) {
            // SAFETY: statements and handle belong to this connection and are not used again.
            unsafe {
                for s in self.stmts.drain(..) {
                    ffi::sqlite3_finalize(s);
                }
                ffi::sqlite3_close(self.db);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 99.0), Some(99));
        assert_eq!(percentile(&v, 100.0), Some(100));
        assert_eq!(percentile(&v, 0.0), Some(1));
        assert_eq!(percentile(&[7], 99.0), Some(7));
        assert_eq!(percentile(&[], 50.0), None);
        let s = stats(vec![5, 1, 3, 2, 4]);
        assert_eq!((s.p50, s.p99, s.mean), (3.0, 5.0, 3.0));
    }

    #[test]
    fn formats_figures() {
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(999), "999");
        assert_eq!(us(11_240.0), "11.2 µs");
        assert_eq!(ratio(1.94), "1.9×");
    }

    #[test]
    fn scratch_phones_are_distinct_mobiles() {
        let phones: std::collections::HashSet<String> = (0..100_000).map(scratch_phone).collect();
        assert_eq!(phones.len(), 100_000);
        assert!(
            phones
                .iter()
                .all(|p| patron_domain::phone::Phone::parse(p, "p").is_ok())
        );
    }

    #[test]
    fn reads_pgbench_reports() {
        let out = "latency average = 0.120 ms\ninitial connection time = 3.2 ms\n\
                   statement latencies in milliseconds and failures:\n\
                            0.001           0  \\set n random(1, 100)\n\
                            0.040           0  SELECT phone AS k FROM patron_bench_keys WHERE n = :n\n\
                            0.071           0  SELECT tenant_id, id, name, name_pinyin, name_initials, phone\n";
        assert_eq!(parse_pgbench(out), Some((0.071, 0.120)));
        assert_eq!(parse_pgbench("nothing"), None);
    }

    #[test]
    fn sqlite_paths_from_urls() {
        assert_eq!(
            sqlite_path("sqlite:///tmp/bench/patron.db"),
            "/tmp/bench/patron.db"
        );
        assert_eq!(sqlite_path("sqlite://patron.db?mode=rwc"), "patron.db");
        assert_eq!(sqlite_path("data.db"), "data.db");
    }
}
