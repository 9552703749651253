//! `patron bench analytics`: the time to compute the contribution quadrants, RFM scores
//! and the churn watch of a whole chain (`App::value_overview`, the same pass the
//! dashboard makes), against DuckDB computing the same aggregates over the same visits
//! exported to Parquet, in the same run; and whether both agree exactly (customers per
//! quadrant, per RFM score, churn counts).
//!
//! The data is generated straight into the database (not through the checkout): a tenant
//! `bench-an-<customers>-<visits>` with N customers and M visits over two years
//! (2024-01-01 to 2025-12-30) at three stores. Visit counts are skewed (a few regulars,
//! many occasional customers, some who never come), each customer has a rhythm and an
//! active span (so some stop coming), 0.5% of the visits are reversed. A second run with
//! the same sizes reuses the tenant.
//!
//! DuckDB runs from `python3` with the `duckdb` package (installed with pip when missing;
//! the comparison is skipped, saying so, when it cannot be had). Its definitions are the
//! ones of `patron_domain::analytics`: medians average the two middle values, "high" is
//! strictly above the median, quintile = 1 + ⌊5 × (customers strictly below) ÷ n⌋,
//! intervals between distinct visit days, at risk when ≥ 3 visit days and days since the
//! last visit > 2 × the median interval.

use super::bench_all::{BenchRow, Unit};
use crate::config::{open_app, redact};
use anyhow::{Context, bail, ensure};
use chrono::{Duration, NaiveDate};
use patron_app::analytics::{ValueOverview, ValueQuery};
use patron_app::auth::InitRequest;
use patron_app::{Actor, App};
use patron_domain::customer::{Customer, CustomerInput, ValidationContext};
use patron_domain::ids::{CustomerId, StoreId, TenantId};
use patron_domain::org::Store;
use patron_store::Backend;
use patron_store::analytics::StatsQuery;
use rand::{Rng, SeedableRng};
use sqlx::{ConnectOptions, Connection};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;
use std::time::{Duration as StdDuration, Instant};
use uuid::Uuid;

#[derive(clap::Args)]
pub struct Args {
    /// Customers of the generated chain.
    #[arg(long, default_value_t = 100_000)]
    pub(crate) customers: u64,
    /// Visits over two years.
    #[arg(long, default_value_t = 1_000_000)]
    pub(crate) visits: u64,
    /// Timed runs of each side (after one untimed warm-up); the median is reported.
    #[arg(long, default_value_t = 3)]
    pub(crate) runs: usize,
    /// Seed of the generated data.
    #[arg(long, default_value_t = 2026)]
    pub(crate) seed: u64,
    /// Where the exported visits (CSV, Parquet) go (default: a temporary directory).
    #[arg(long)]
    pub(crate) workdir: Option<PathBuf>,
    /// Skip DuckDB.
    #[arg(long)]
    pub(crate) skip_duckdb: bool,
    /// Keep the exported files.
    #[arg(long)]
    pub(crate) keep_files: bool,
}

/// The generated history: 730 days from here.
fn first_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 1, 1).expect("a date")
}
const DAYS: i64 = 730;
/// Customers per `insert_customers` call, visits per INSERT (SQLite) or COPY chunk.
const CUSTOMER_BATCH: usize = 2_000;
const VISIT_BATCH: usize = 1_000;

fn thousands(n: u64) -> String {
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

fn secs(d: StdDuration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

pub async fn run(url: &str, key: &Path, args: Args) -> anyhow::Result<ExitCode> {
    run_rows(url, key, args).await.map(|(code, _)| code)
}

/// Prints the report and returns the timing rows for `patron bench all` (the exit code
/// says whether Patron and DuckDB agreed).
pub(crate) async fn run_rows(
    url: &str,
    key: &Path,
    args: Args,
) -> anyhow::Result<(ExitCode, Vec<BenchRow>)> {
    ensure!(args.customers >= 10, "--customers must be at least 10");
    ensure!(
        args.visits >= args.customers,
        "--visits must be at least --customers"
    );
    ensure!(args.runs >= 1, "--runs must be at least 1");
    let app = open_app(url, key).await?;
    let backend = app.storage.backend();
    let code = format!("bench-an-{}-{}", args.customers, args.visits);
    let mut out = String::new();
    writeln!(
        out,
        "patron bench analytics — {} ({:?}), tenant {code}",
        redact(url),
        backend
    )?;

    let (actor, generated) = match app.storage.tenant_by_code(&code).await? {
        Some(t) => {
            let (customers, visits) = counts(url, backend, t.id).await?;
            if customers != args.customers || visits != args.visits {
                bail!(
                    "tenant {code} exists with {customers} customers and {visits} visits (an interrupted generation?): use a fresh database"
                );
            }
            eprintln!("reusing tenant {code}");
            (super::actor(&app, &code, "owner").await?, None)
        }
        None => {
            let t0 = Instant::now();
            let actor = generate(&app, url, &code, &args).await?;
            (actor, Some(t0.elapsed()))
        }
    };
    if let Some(g) = generated {
        writeln!(
            out,
            "generated {} customers and {} visits in {}",
            thousands(args.customers),
            thousands(args.visits),
            secs(g)
        )?;
    } else {
        writeln!(out, "data generated by an earlier run (reused)")?;
    }

    let from = first_day();
    let to = from + Duration::days(DAYS - 1);
    let q = ValueQuery {
        from: Some(from),
        to: Some(to),
        ..ValueQuery::new()
    };

    // Patron: one untimed warm-up (page cache), then the timed runs.
    eprintln!("timing Patron's overview ({} runs)…", args.runs);
    let mut ours = app.value_overview(&actor, &q).await?;
    let mut times = Vec::new();
    let mut scan_times = Vec::new();
    let mut single_times = Vec::new();
    let scan = StatsQuery {
        from: Some(from),
        to,
        store: None,
        customer: None,
        customers_from: None,
        customers_to: None,
        with_days: true,
    };
    for _ in 0..args.runs {
        let t = Instant::now();
        ours = app.value_overview(&actor, &q).await?;
        times.push(t.elapsed().as_secs_f64());
        // The store's GROUP BY alone, to show where the time goes.
        let t = Instant::now();
        let stats = app.customer_stats(actor.tenant_id, scan).await?;
        scan_times.push(t.elapsed().as_secs_f64());
        std::hint::black_box(stats);
        // The same on one connection (what the parallel parts gain).
        let t = Instant::now();
        let stats = app.storage.customer_stats(actor.tenant_id, &scan).await?;
        single_times.push(t.elapsed().as_secs_f64());
        std::hint::black_box(stats);
    }
    let ours_s = median(&mut times);
    let scan_s = median(&mut scan_times);
    let single_s = median(&mut single_times);
    eprintln!(
        "Patron: overview {ours_s:.2} s, GROUP BY {scan_s:.2} s ({single_s:.2} s on one connection)"
    );

    writeln!(
        out,
        "period {from} to {to}; {} active customers, {} visits counted, revenue ¥{}",
        thousands(ours.quadrants.active_customers),
        thousands(ours.quadrants.visits as u64),
        ours.quadrants.revenue.to_decimal_string()
    )?;
    let mut duck = None;
    let mut duck_label = "DuckDB: skipped (--skip-duckdb)".to_string();
    if args.skip_duckdb {
        writeln!(out, "DuckDB: skipped (--skip-duckdb)")?;
    } else {
        match duckdb_ready().await {
            Err(why) => {
                writeln!(out, "DuckDB: SKIPPED — {why}")?;
                duck_label = format!("DuckDB: skipped — {why}");
            }
            Ok(version) => {
                duck_label = format!("DuckDB {version} (Parquet)");
                let dir = args.workdir.clone().unwrap_or_else(|| {
                    std::env::temp_dir()
                        .join(format!("patron-bench-analytics-{}", std::process::id()))
                });
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
                let csv = dir.join("visits.csv");
                let t = Instant::now();
                let rows = export_csv(url, backend, actor.tenant_id, &csv).await?;
                writeln!(
                    out,
                    "exported {} visits to {} in {}",
                    thousands(rows),
                    csv.display(),
                    secs(t.elapsed())
                )?;
                let r = run_duckdb(&dir, &csv, from, to, args.runs).await?;
                writeln!(
                    out,
                    "DuckDB {version}: CSV → Parquet in {:.2} s (not timed below), {} threads",
                    r.convert_s, r.threads
                )?;
                if !args.keep_files {
                    let _ = std::fs::remove_dir_all(&dir);
                }
                duck = Some(r);
            }
        }
    }

    // The table.
    writeln!(out)?;
    writeln!(
        out,
        "| what | Patron ({backend:?}) | DuckDB (Parquet) | ratio |"
    )?;
    writeln!(out, "|---|---|---|---|")?;
    let ratio = |a: f64, b: f64| format!("{:.2}×", a / b.max(1e-9));
    match &duck {
        Some(d) => {
            writeln!(
                out,
                "| quadrants + RFM + churn watch, whole chain (median of {}) | {:.2} s | {:.2} s | {} |",
                args.runs,
                ours_s,
                d.total_s,
                ratio(ours_s, d.total_s)
            )?;
            writeln!(
                out,
                "| of which the per-customer GROUP BY (with visit days) | {:.2} s | {:.2} s | {} |",
                scan_s,
                d.agg_s,
                ratio(scan_s, d.agg_s)
            )?;
            writeln!(
                out,
                "| the same GROUP BY on one connection | {:.2} s | | |",
                single_s
            )?;
            writeln!(
                out,
                "| the rules over the aggregates (overview − GROUP BY) | {:.2} s | {:.2} s | |",
                (ours_s - scan_s).max(0.0),
                (d.total_s - d.agg_s).max(0.0)
            )?;
        }
        None => {
            writeln!(
                out,
                "| quadrants + RFM + churn watch, whole chain | {ours_s:.2} s | — | — |"
            )?;
            writeln!(
                out,
                "| of which the per-customer GROUP BY | {scan_s:.2} s | — | — |"
            )?;
        }
    }
    let mut all_match = true;
    if let Some(d) = &duck {
        writeln!(out)?;
        let (checks, ok) = compare(&ours, d);
        all_match = ok;
        out.push_str(&checks);
        let target = ours_s <= 1.5 * d.total_s;
        writeln!(
            out,
            "target: within 1.5× of DuckDB — {} ({:.2}×)",
            if target { "met" } else { "NOT met" },
            ours_s / d.total_s.max(1e-9)
        )?;
    }
    print!("{out}");
    let rows = vec![
        BenchRow::new(
            format!(
                "analytics: quadrants + RFM + churn, {} customers / {} visits",
                thousands(args.customers),
                thousands(args.visits)
            ),
            backend,
            Some(ours_s),
            Unit::Seconds,
            duck_label.clone(),
            duck.as_ref().map(|d| d.total_s),
        ),
        BenchRow::new(
            "analytics: of which the per-customer GROUP BY".into(),
            backend,
            Some(scan_s),
            Unit::Seconds,
            duck_label,
            duck.as_ref().map(|d| d.agg_s),
        ),
    ];
    Ok((
        if all_match {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        },
        rows,
    ))
}

/// Customers and visits of a tenant.
async fn counts(url: &str, backend: Backend, tenant: TenantId) -> anyhow::Result<(u64, u64)> {
    let q = "SELECT (SELECT COUNT(*) FROM customers WHERE tenant_id = $1), (SELECT COUNT(*) FROM visits WHERE tenant_id = $1)";
    let (c, v): (i64, i64) = match backend {
        Backend::Sqlite => {
            let mut conn = sqlite_conn(url).await?;
            sqlx::query_as(q)
                .bind(tenant.0)
                .fetch_one(&mut conn)
                .await?
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(url).await?;
            sqlx::query_as(q)
                .bind(tenant.0)
                .fetch_one(&mut conn)
                .await?
        }
    };
    Ok((c as u64, v as u64))
}

async fn sqlite_conn(url: &str) -> anyhow::Result<sqlx::SqliteConnection> {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    Ok(
        sqlx::sqlite::SqliteConnectOptions::from_str(&format!("sqlite://{path}"))?
            .busy_timeout(StdDuration::from_secs(30))
            .connect()
            .await?,
    )
}

/// One generated visit.
struct Visit {
    customer: usize,
    store: usize,
    day: i64,
    minute: i64,
    growth: i64,
    amount: i64,
    reversed: bool,
}

/// The tenant, its stores and customers (through the store layer), and the visits (bulk,
/// straight into the table).
async fn generate(app: &App, url: &str, code: &str, args: &Args) -> anyhow::Result<Actor> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(args.seed);
    let password: String = (0..24)
        .map(|_| rng.random_range(b'a'..=b'z') as char)
        .collect();
    app.init_tenant(InitRequest {
        tenant_code: code.into(),
        tenant_name: "分析基准".into(),
        store_code: "main".into(),
        store_name: "总店".into(),
        username: "owner".into(),
        display_name: "Owner".into(),
        password,
    })
    .await?;
    let actor = super::actor(app, code, "owner").await?;
    let tenant = actor.tenant_id;
    let mut stores: Vec<StoreId> = app
        .storage
        .list_stores(tenant)
        .await?
        .iter()
        .map(|s| s.id)
        .collect();
    for c in ["east", "west"] {
        let id = StoreId(Uuid::now_v7());
        app.storage
            .create_store(&Store {
                tenant_id: tenant,
                id,
                code: c.into(),
                name: format!("{c} 店"),
                address: None,
                phone: None,
                created_at: patron_app::now(),
            })
            .await?;
        stores.push(id);
    }

    // Customers, through the store's bulk insert.
    let t = Instant::now();
    let now = patron_app::now();
    let profile = CustomerInput {
        name: Some("Bench".into()),
        ..Default::default()
    }
    .validate(
        ValidationContext {
            id_hash_key: &app.id_hash_key,
            today: now.date_naive(),
        },
        None,
    )
    .map_err(|e| anyhow::anyhow!("template customer: {e}"))?;
    let n = args.customers as usize;
    let mut ids = Vec::with_capacity(n);
    let mut batch = Vec::with_capacity(CUSTOMER_BATCH);
    for i in 0..n {
        let id = CustomerId(Uuid::now_v7());
        ids.push(id);
        let mut p = profile.clone();
        p.name = format!("Bench {i:07}");
        batch.push(Customer {
            id,
            tenant_id: tenant,
            profile: p,
            level: None,
            home_store_id: Some(stores[i % stores.len()]),
            merged_into: None,
            marketing_consent_at: None,
            created_at: now,
            updated_at: now,
        });
        if batch.len() == CUSTOMER_BATCH || i + 1 == n {
            app.storage.insert_customers(&batch).await?;
            batch.clear();
        }
    }
    eprintln!("{} customers in {}", thousands(n as u64), secs(t.elapsed()));

    // Visits per customer: skewed (customer k of the skewed order gets about
    // M/N × 1/(1.5 (k/N)^(1/3)) visits), spread over the ids by a multiplicative hash.
    let m = args.visits as usize;
    let mut per = vec![0u32; n];
    let step = coprime_step(n);
    for _ in 0..m {
        let u: f64 = rng.random();
        let k = ((u.powf(1.5) * n as f64) as usize).min(n - 1);
        per[(k * step) % n] += 1;
    }
    let t = Instant::now();
    let mut w =
        VisitWriter::open(url, app.storage.backend(), tenant, actor.staff_id, &stores).await?;
    let mut buf: Vec<Visit> = Vec::with_capacity(VISIT_BATCH);
    let mut written = 0usize;
    for (c, count) in per.iter().enumerate() {
        let count = i64::from(*count);
        if count == 0 {
            continue;
        }
        // Six in ten are still coming at the end; the others stopped somewhere.
        let rhythm = rng.random_range(3..=45i64);
        let wanted = (count * rhythm).min(DAYS - 1);
        let start = if rng.random_range(0..10) < 6 {
            DAYS - 1 - wanted
        } else {
            rng.random_range(0..DAYS)
        };
        let span = wanted.min(DAYS - 1 - start);
        let base = 3_000 + (rng.random::<f64>().powi(3) * 57_000.0) as i64;
        let home = c % stores.len();
        for _ in 0..count {
            let growth = (base * rng.random_range(50..=150) / 100 / 100).max(1) * 100;
            buf.push(Visit {
                customer: c,
                store: if rng.random_range(0..10) < 7 {
                    home
                } else {
                    rng.random_range(0..stores.len())
                },
                day: start + rng.random_range(0..=span),
                minute: rng.random_range(0..600),
                growth,
                amount: growth
                    + if rng.random_range(0..4) == 0 {
                        growth / 10
                    } else {
                        0
                    },
                reversed: rng.random_range(0..200) == 0,
            });
            if buf.len() == VISIT_BATCH {
                w.write(&buf, &ids).await?;
                written += buf.len();
                buf.clear();
                if written.is_multiple_of(1_000_000) {
                    eprintln!(
                        "{} visits ({:.0}/s)",
                        thousands(written as u64),
                        written as f64 / t.elapsed().as_secs_f64()
                    );
                }
            }
        }
    }
    w.write(&buf, &ids).await?;
    written += buf.len();
    let ins = t.elapsed();
    let t = Instant::now();
    w.finish().await?;
    eprintln!(
        "{} visits in {} (+ {} to commit{})",
        thousands(written as u64),
        secs(ins),
        secs(t.elapsed()),
        if app.storage.backend() == Backend::Postgres {
            " and VACUUM ANALYZE"
        } else {
            " and checkpoint"
        }
    );
    ensure!(written == m, "generated {written} visits instead of {m}");
    Ok(actor)
}

/// A step coprime with `n` near n × 0.618, to spread the skewed order over the ids.
fn coprime_step(n: usize) -> usize {
    let gcd = |mut a: usize, mut b: usize| {
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a
    };
    let mut s = (n as f64 * 0.618_033_988) as usize | 1;
    while gcd(s, n) != 1 {
        s += 2;
    }
    s
}

fn hex(u: Uuid) -> String {
    u.simple().to_string()
}

/// Bulk visit inserts: multi-row INSERTs of literal values in one transaction on SQLite
/// (every value is generated here, none comes from outside), COPY on PostgreSQL.
enum VisitWriter {
    Sqlite {
        conn: sqlx::SqliteConnection,
        tenant: String,
        staff: String,
        stores: Vec<String>,
    },
    Pg {
        conn: Box<sqlx::PgConnection>,
        tenant: String,
        staff: String,
        stores: Vec<String>,
        data: Vec<u8>,
    },
}

impl VisitWriter {
    async fn open(
        url: &str,
        backend: Backend,
        tenant: TenantId,
        staff: patron_domain::ids::StaffId,
        stores: &[StoreId],
    ) -> anyhow::Result<VisitWriter> {
        Ok(match backend {
            Backend::Sqlite => {
                let mut conn = sqlite_conn(url).await?;
                // A bulk load: a large page cache; durability comes with the final commit.
                sqlx::raw_sql(
                    "PRAGMA cache_size = -1000000; PRAGMA synchronous = NORMAL; BEGIN IMMEDIATE",
                )
                .execute(&mut conn)
                .await?;
                VisitWriter::Sqlite {
                    conn,
                    tenant: hex(tenant.0),
                    staff: hex(staff.0),
                    stores: stores.iter().map(|s| hex(s.0)).collect(),
                }
            }
            Backend::Postgres => VisitWriter::Pg {
                conn: Box::new(sqlx::PgConnection::connect(url).await?),
                tenant: tenant.0.to_string(),
                staff: staff.0.to_string(),
                stores: stores.iter().map(|s| s.0.to_string()).collect(),
                data: Vec::new(),
            },
        })
    }

    async fn write(&mut self, visits: &[Visit], ids: &[CustomerId]) -> anyhow::Result<()> {
        if visits.is_empty() {
            return Ok(());
        }
        let day0 = first_day();
        match self {
            VisitWriter::Sqlite {
                conn,
                tenant,
                staff,
                stores,
            } => {
                let mut sql = String::with_capacity(visits.len() * 260);
                sql.push_str(
                    "INSERT INTO visits (tenant_id, id, customer_id, card_id, store_id, staff_id, txn_id, source, \
                     occurred_at, local_date, amount, growth, reversed_at) VALUES ",
                );
                for (i, v) in visits.iter().enumerate() {
                    let date = day0 + Duration::days(v.day);
                    // 12:00 local (UTC+8) plus up to 10 hours.
                    let at = date.and_hms_opt(4, 0, 0).expect("time").and_utc()
                        + Duration::minutes(v.minute);
                    let at_s = at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false);
                    let rev = if v.reversed {
                        format!(
                            "'{}'",
                            (at + Duration::hours(1))
                                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false)
                        )
                    } else {
                        "NULL".into()
                    };
                    if i > 0 {
                        sql.push(',');
                    }
                    write!(
                        sql,
                        "(X'{tenant}',X'{}',X'{}',NULL,X'{}',X'{staff}',NULL,'purchase','{at_s}','{date}',{},{},{rev})",
                        hex(Uuid::now_v7()),
                        hex(ids[v.customer].0),
                        stores[v.store],
                        v.amount,
                        v.growth
                    )?;
                }
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                    .execute(&mut *conn)
                    .await?;
            }
            VisitWriter::Pg {
                conn,
                tenant,
                staff,
                stores,
                data,
            } => {
                for v in visits {
                    let date = day0 + Duration::days(v.day);
                    let at = date.and_hms_opt(4, 0, 0).expect("time").and_utc()
                        + Duration::minutes(v.minute);
                    let rev = if v.reversed {
                        (at + Duration::hours(1))
                            .format("%Y-%m-%d %H:%M:%S+00")
                            .to_string()
                    } else {
                        String::new()
                    };
                    writeln!(
                        data,
                        "{tenant},{},{},,{},{staff},,purchase,{},{date},{},{},{rev}",
                        Uuid::now_v7(),
                        ids[v.customer].0,
                        stores[v.store],
                        at.format("%Y-%m-%d %H:%M:%S+00"),
                        v.amount,
                        v.growth
                    )?;
                }
                if data.len() >= PG_COPY_BYTES {
                    copy_visits(conn, data).await?;
                }
            }
        }
        Ok(())
    }

    async fn finish(self) -> anyhow::Result<()> {
        match self {
            VisitWriter::Sqlite { mut conn, .. } => {
                sqlx::raw_sql("COMMIT").execute(&mut conn).await?;
                // Move the load out of the write-ahead log into the database file, as the
                // regular checkpoints of a running system would: readers otherwise look
                // every page up in a log of gigabytes.
                sqlx::raw_sql("PRAGMA wal_checkpoint(TRUNCATE)")
                    .execute(&mut conn)
                    .await?;
                conn.close().await?;
            }
            VisitWriter::Pg {
                mut conn, mut data, ..
            } => {
                copy_visits(&mut conn, &mut data).await?;
                // Index-only scans need the visibility map; autovacuum would get there later.
                sqlx::raw_sql("VACUUM (ANALYZE) visits")
                    .execute(&mut *conn)
                    .await?;
                conn.close().await?;
            }
        }
        Ok(())
    }
}

/// Bytes of CSV per COPY.
const PG_COPY_BYTES: usize = 32 << 20;

/// Sends the CSV rows with one COPY, and empties the buffer.
async fn copy_visits(conn: &mut sqlx::PgConnection, data: &mut Vec<u8>) -> anyhow::Result<()> {
    if data.is_empty() {
        return Ok(());
    }
    let mut copy = conn
        .copy_in_raw(
            "COPY visits (tenant_id, id, customer_id, card_id, store_id, staff_id, txn_id, source, \
             occurred_at, local_date, amount, growth, reversed_at) FROM STDIN (FORMAT csv)",
        )
        .await?;
    copy.send(data.as_slice()).await?;
    copy.finish().await?;
    data.clear();
    Ok(())
}

/// Writes the tenant's visits as CSV (customer_id, local_date, growth, reversed,
/// store_id), read back from the database in primary-key order.
async fn export_csv(
    url: &str,
    backend: Backend,
    tenant: TenantId,
    path: &Path,
) -> anyhow::Result<u64> {
    const CHUNK: i64 = 200_000;
    type Row = (Uuid, Option<Uuid>, String, i64, bool, Option<Uuid>);
    let sql = "SELECT id, customer_id, CAST(local_date AS TEXT), growth, reversed_at IS NOT NULL, store_id FROM visits \
               WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3";
    let mut f = std::io::BufWriter::new(
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
    );
    writeln!(f, "customer_id,local_date,growth,reversed,store_id")?;
    let mut sq = None;
    let mut pg = None;
    match backend {
        Backend::Sqlite => sq = Some(sqlite_conn(url).await?),
        Backend::Postgres => pg = Some(sqlx::PgConnection::connect(url).await?),
    }
    let mut after = Uuid::nil();
    let mut n = 0u64;
    loop {
        let q = sqlx::query_as::<_, Row>(sql);
        let rows: Vec<Row> = match (&mut sq, &mut pg) {
            (Some(c), _) => {
                // SQLite returns `reversed_at IS NOT NULL` as an integer.
                sqlx::query_as::<_, (Uuid, Option<Uuid>, String, i64, i64, Option<Uuid>)>(sql)
                    .bind(tenant.0)
                    .bind(after)
                    .bind(CHUNK)
                    .fetch_all(&mut *c)
                    .await?
                    .into_iter()
                    .map(|(a, b, c, d, e, f)| (a, b, c, d, e != 0, f))
                    .collect()
            }
            (_, Some(c)) => {
                q.bind(tenant.0)
                    .bind(after)
                    .bind(CHUNK)
                    .fetch_all(&mut *c)
                    .await?
            }
            _ => unreachable!("one connection"),
        };
        let Some(last) = rows.last() else { break };
        after = last.0;
        for (_, customer, date, growth, reversed, store) in &rows {
            let customer = customer.map(|c| c.to_string()).unwrap_or_default();
            let store = store.map(|c| c.to_string()).unwrap_or_default();
            writeln!(f, "{customer},{date},{growth},{reversed},{store}")?;
        }
        n += rows.len() as u64;
    }
    f.flush()?;
    Ok(n)
}

/// Whether `python3 -c "import duckdb"` works, installing the package with pip if not.
async fn duckdb_ready() -> Result<String, String> {
    let probe = || {
        std::process::Command::new("python3")
            .args(["-c", "import duckdb; print(duckdb.__version__)"])
            .output()
    };
    match probe() {
        Ok(o) if o.status.success() => {
            return Ok(String::from_utf8_lossy(&o.stdout).trim().to_string());
        }
        Ok(_) => {}
        Err(e) => return Err(format!("python3 not runnable: {e}")),
    }
    eprintln!("installing the duckdb Python package (pip install duckdb)…");
    for args in [
        vec!["-m", "pip", "install", "--quiet", "duckdb"],
        vec![
            "-m",
            "pip",
            "install",
            "--quiet",
            "--user",
            "--break-system-packages",
            "duckdb",
        ],
    ] {
        let _ = std::process::Command::new("python3").args(&args).status();
        if let Ok(o) = probe()
            && o.status.success()
        {
            return Ok(String::from_utf8_lossy(&o.stdout).trim().to_string());
        }
    }
    Err("the duckdb Python package is not installed and `pip install duckdb` failed".into())
}

/// What the DuckDB script measured and found.
#[derive(Debug, Default)]
struct Duck {
    threads: i64,
    convert_s: f64,
    agg_s: f64,
    total_s: f64,
    quadrants: Vec<(String, i64)>,
    recency: Vec<i64>,
    frequency: Vec<i64>,
    monetary: Vec<i64>,
    considered: i64,
    at_risk: i64,
    active: i64,
}

const DUCK_SCRIPT: &str = r#"
import duckdb, json, statistics, sys, time
csv, pq, frm, to, runs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
t = time.perf_counter()
con.execute(f"""COPY (SELECT CAST(customer_id AS UUID) AS customer_id, local_date, growth, reversed, CAST(store_id AS UUID) AS store_id
    FROM read_csv('{csv}', header = true, columns = {{'customer_id': 'VARCHAR', 'local_date': 'DATE', 'growth': 'BIGINT',
    'reversed': 'BOOLEAN', 'store_id': 'VARCHAR'}})) TO '{pq}' (FORMAT parquet)""")
convert = time.perf_counter() - t
threads = con.execute("SELECT current_setting('threads')").fetchone()[0]

def once():
    t0 = time.perf_counter()
    # Per customer: visits, spend, last visit, distinct visit days and the median interval.
    con.execute(f"""CREATE OR REPLACE TEMP TABLE s AS
      WITH v AS (SELECT customer_id, local_date, growth FROM read_parquet('{pq}')
                 WHERE NOT reversed AND customer_id IS NOT NULL AND local_date BETWEEN DATE '{frm}' AND DATE '{to}'),
      agg AS (SELECT customer_id, count(*) AS visits, sum(growth) AS spend, max(local_date) AS last FROM v GROUP BY customer_id),
      d AS (SELECT DISTINCT customer_id, local_date FROM v),
      g AS (SELECT customer_id, local_date - lag(local_date) OVER (PARTITION BY customer_id ORDER BY local_date) AS gap FROM d),
      m AS (SELECT customer_id, count(*) + 1 AS days, median(gap) AS med FROM g WHERE gap IS NOT NULL GROUP BY customer_id)
      SELECT agg.*, m.days, m.med FROM agg LEFT JOIN m USING (customer_id)""")
    t1 = time.perf_counter()
    quads = con.execute("""WITH t AS (SELECT median(visits) AS ft, median(spend / visits) AS st FROM s)
      SELECT CASE WHEN visits > ft AND spend / visits > st THEN 'B' WHEN spend / visits > st THEN 'A'
                  WHEN visits > ft THEN 'D' ELSE 'C' END AS q, count(*) FROM s, t GROUP BY q ORDER BY q""").fetchall()
    rfm = con.execute("""WITH n AS (SELECT count(*) AS n FROM s),
      sc AS (SELECT 1 + (5 * (rank() OVER (ORDER BY last) - 1)) // n AS r, 1 + (5 * (rank() OVER (ORDER BY visits) - 1)) // n AS f,
                    1 + (5 * (rank() OVER (ORDER BY spend) - 1)) // n AS m FROM s, n)
      SELECT 'r', r, count(*) FROM sc GROUP BY r UNION ALL SELECT 'f', f, count(*) FROM sc GROUP BY f
      UNION ALL SELECT 'm', m, count(*) FROM sc GROUP BY m""").fetchall()
    churn = con.execute(f"""SELECT count(*) FILTER (WHERE days >= 3), count(*) FILTER (WHERE days >= 3 AND (DATE '{to}' - last) > 2 * med),
      (SELECT count(*) FROM s) FROM s""").fetchone()
    t2 = time.perf_counter()
    return t1 - t0, t2 - t0, quads, rfm, churn

once()
aggs, totals = [], []
for _ in range(runs):
    a, tot, quads, rfm, churn = once()
    aggs.append(a)
    totals.append(tot)
dims = {'r': [0] * 5, 'f': [0] * 5, 'm': [0] * 5}
for d, s, c in rfm:
    dims[d][s - 1] = c
print(json.dumps({"threads": int(threads), "convert_s": convert, "agg_s": statistics.median(aggs), "total_s": statistics.median(totals),
                  "quadrants": [[q, c] for q, c in quads], "recency": dims['r'], "frequency": dims['f'], "monetary": dims['m'],
                  "considered": churn[0], "at_risk": churn[1], "active": churn[2]}))
"#;

async fn run_duckdb(
    dir: &Path,
    csv: &Path,
    from: NaiveDate,
    to: NaiveDate,
    runs: usize,
) -> anyhow::Result<Duck> {
    let pq = dir.join("visits.parquet");
    eprintln!("timing DuckDB ({runs} runs)…");
    let mut cmd = std::process::Command::new("python3");
    cmd.arg("-c")
        .arg(DUCK_SCRIPT)
        .arg(csv)
        .arg(&pq)
        .arg(from.to_string())
        .arg(to.to_string())
        .arg(runs.to_string());
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await?
        .context("running python3")?;
    if !out.status.success() {
        bail!(
            "the DuckDB script failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The answer is the last line (anything DuckDB printed comes before it).
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .unwrap_or("");
    let v: serde_json::Value = serde_json::from_str(last)
        .with_context(|| format!("reading the DuckDB script's answer: {stdout}"))?;
    let ints = |k: &str| -> Vec<i64> {
        v[k].as_array()
            .map(|a| a.iter().filter_map(|x| x.as_i64()).collect())
            .unwrap_or_default()
    };
    Ok(Duck {
        threads: v["threads"].as_i64().unwrap_or(0),
        convert_s: v["convert_s"].as_f64().unwrap_or(0.0),
        agg_s: v["agg_s"].as_f64().unwrap_or(0.0),
        total_s: v["total_s"].as_f64().unwrap_or(0.0),
        quadrants: v["quadrants"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|x| {
                        (
                            x[0].as_str().unwrap_or("").to_string(),
                            x[1].as_i64().unwrap_or(0),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default(),
        recency: ints("recency"),
        frequency: ints("frequency"),
        monetary: ints("monetary"),
        considered: v["considered"].as_i64().unwrap_or(-1),
        at_risk: v["at_risk"].as_i64().unwrap_or(-1),
        active: v["active"].as_i64().unwrap_or(-1),
    })
}

/// MATCH / MISMATCH lines for every figure both sides computed.
fn compare(ours: &ValueOverview, d: &Duck) -> (String, bool) {
    let mut out = String::new();
    let mut ok = true;
    let mut check = |what: &str, a: String, b: String| {
        let same = a == b;
        ok &= same;
        let _ = writeln!(
            out,
            "{} {what}: Patron {a} / DuckDB {b}",
            if same { "MATCH   " } else { "MISMATCH" }
        );
    };
    check(
        "active customers",
        ours.quadrants.active_customers.to_string(),
        d.active.to_string(),
    );
    for q in &ours.quadrants.quadrants {
        let theirs = d
            .quadrants
            .iter()
            .find(|(c, _)| c == q.quadrant.code())
            .map_or(0, |x| x.1);
        check(
            &format!("quadrant {}", q.quadrant.code()),
            q.customers.to_string(),
            theirs.to_string(),
        );
    }
    let fmt = |v: &[u64]| format!("{v:?}");
    let fmt_i = |v: &[i64]| format!("{v:?}");
    check(
        "RFM recency 1..5",
        fmt(&ours.rfm.recency),
        fmt_i(&d.recency),
    );
    check(
        "RFM frequency 1..5",
        fmt(&ours.rfm.frequency),
        fmt_i(&d.frequency),
    );
    check(
        "RFM monetary 1..5",
        fmt(&ours.rfm.monetary),
        fmt_i(&d.monetary),
    );
    check(
        "churn watch: customers considered",
        ours.churn.considered.to_string(),
        d.considered.to_string(),
    );
    check(
        "churn watch: at risk",
        ours.churn.at_risk.to_string(),
        d.at_risk.to_string(),
    );
    (out, ok)
}
