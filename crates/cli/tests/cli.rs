//! End-to-end tests of the `patron` binary: the real executable on a real SQLite file
//! (and PostgreSQL where noted), as an operator would run it.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

#[path = "cli/crash.rs"]
mod crash;

fn patron(dir: &Path, db: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_patron"))
        .current_dir(dir)
        .env("PATRON_DATABASE_URL", db)
        .env_remove("PATRON_ID_HASH_KEY")
        .args(args)
        .output()
        .expect("patron runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn sqlite(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("patron.db").display())
}

fn init(dir: &Path, db: &str, tenant: &str) {
    let o = patron(
        dir,
        db,
        &[
            "init",
            "--tenant",
            tenant,
            "--tenant-name",
            "测试餐厅",
            "--password",
            "correct horse battery",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn init_validates_and_creates_the_owner() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite(dir.path());
    let o = patron(
        dir.path(),
        &db,
        &[
            "init",
            "--tenant",
            "Bad Code",
            "--tenant-name",
            "x",
            "--password",
            "short",
        ],
    );
    assert!(!o.status.success());
    let out = text(&o);
    assert!(
        out.contains("tenant:") && out.contains("password:"),
        "{out}"
    );
    init(dir.path(), &db, "shop");
    assert!(
        dir.path().join("patron.key").exists(),
        "the ID-hash key is created"
    );
    let o = patron(
        dir.path(),
        &db,
        &[
            "init",
            "--tenant",
            "shop",
            "--tenant-name",
            "x",
            "--password",
            "correct horse battery",
        ],
    );
    assert!(!o.status.success());
    assert!(text(&o).contains("already exists"));
}

/// Starts `patron serve` on a free port; returns the child, the base URL and what it
/// printed on stderr before listening (stderr goes to a file so it can never block).
fn serve(dir: &Path, db: &str, extra: &[&str]) -> (std::process::Child, String, String) {
    let log = dir.join("serve.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_patron"))
        .current_dir(dir)
        .env("PATRON_DATABASE_URL", db)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.starts_with("patron listening") {
        line.clear();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "patron serve exited: {}",
            std::fs::read_to_string(&log).unwrap()
        );
    }
    // Keep draining stdout so the server never writes into a closed pipe.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    let url = line.trim().rsplit(' ').next().unwrap().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{line}");
    let err = std::fs::read_to_string(&log).unwrap();
    (child, url, err)
}

fn http_get(url: &str) -> (u16, String) {
    // A dependency-free GET for the health check (the API tests use reqwest).
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest
        .split_once('/')
        .map(|(h, p)| (h, format!("/{p}")))
        .unwrap();
    let mut s = std::net::TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = String::new();
    std::io::Read::read_to_string(&mut s, &mut buf).unwrap();
    let status = buf.split(' ').nth(1).unwrap().parse().unwrap();
    (
        status,
        buf.split("\r\n\r\n").nth(1).unwrap_or("").to_string(),
    )
}

#[test]
fn serve_explains_an_empty_database_and_shuts_down_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite(dir.path());
    let (mut child, url, hint) = serve(dir.path(), &db, &[]);
    assert!(hint.contains("patron init"), "{hint}");
    let (status, body) = http_get(&format!("{url}/api/v1/health"));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"ok\""));
    let (status, body) = http_get(&format!("{url}/api/v1/customers"));
    assert_eq!(status, 401, "{body}");
    // SIGTERM: finish and exit cleanly.
    Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p
}

#[test]
fn import_is_all_or_nothing_and_reports_every_bad_row() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite(dir.path());
    init(dir.path(), &db, "shop");
    let csv = "姓名,手机,生日,标签\n张伟,13800138000,1988-05-17,VIP;商务宴请\n,12345,1990-01-01,\n李娜,13800138001,not-a-date,\n王芳,13900139000,,\n赵六,+86 138-0013-8000,1991-01-01,\n";
    let file = write(dir.path(), "members.csv", csv);
    let o = patron(
        dir.path(),
        &db,
        &[
            "import",
            "customers",
            file.to_str().unwrap(),
            "--tenant",
            "shop",
        ],
    );
    assert!(!o.status.success(), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("members.csv:3: name"), "{out}");
    assert!(out.contains("members.csv:3: phone"), "{out}");
    assert!(out.contains("members.csv:4: birthday"), "{out}");
    assert!(
        out.contains("members.csv:6: phone") && out.contains("line 2"),
        "the repeated phone is named with the line it repeats: {out}"
    );
    assert!(out.contains("nothing was imported"), "{out}");
    // Export shows nothing was imported.
    let export = dir.path().join("out.csv");
    let o = patron(
        dir.path(),
        &db,
        &[
            "export",
            "customers",
            export.to_str().unwrap(),
            "--tenant",
            "shop",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("0 customers"), "{}", text(&o));
    // With --skip-bad-rows the good rows go in and the rejects are written.
    let rejects = dir.path().join("rejects.csv");
    let o = patron(
        dir.path(),
        &db,
        &[
            "import",
            "customers",
            file.to_str().unwrap(),
            "--tenant",
            "shop",
            "--skip-bad-rows",
            "--rejects",
            rejects.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("2 imported"), "{}", text(&o));
    let rejected = std::fs::read_to_string(&rejects).unwrap();
    assert!(
        rejected.contains("12345") && rejected.contains("not-a-date") && rejected.contains("赵六"),
        "{rejected}"
    );
}

#[test]
fn demo_export_reimport_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite(dir.path());
    let o = patron(dir.path(), &db, &["demo", "--members", "300"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("300 members"), "{}", text(&o));
    let o = patron(dir.path(), &db, &["demo", "--members", "300"]);
    assert!(!o.status.success(), "a second demo refuses: {}", text(&o));
    for ext in ["csv", "xlsx"] {
        let file = dir.path().join(format!("all.{ext}"));
        let o = patron(
            dir.path(),
            &db,
            &[
                "export",
                "customers",
                file.to_str().unwrap(),
                "--tenant",
                "demo",
            ],
        );
        assert!(o.status.success(), "{}", text(&o));
        // Members plus the organizations they belong to.
        let written: u64 = text(&o).split_whitespace().next().unwrap().parse().unwrap();
        assert!(written >= 300, "{}", text(&o));
        let tenant = format!("copy-{ext}");
        init(dir.path(), &db, &tenant);
        let o = patron(
            dir.path(),
            &db,
            &[
                "import",
                "customers",
                file.to_str().unwrap(),
                "--tenant",
                &tenant,
            ],
        );
        assert!(o.status.success(), "{}", text(&o));
        assert!(
            text(&o).contains(&format!("{written} imported")),
            "{}",
            text(&o)
        );
    }
}

#[test]
fn serve_demo_on_postgres_when_available() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let Some(url) = rt.block_on(patron_store::testing::fresh_postgres_url()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (mut child, base, _) = serve(dir.path(), &url, &["--demo", "--demo-members", "200"]);
    let (status, body) = http_get(&format!("{base}/api/v1/health"));
    assert_eq!(status, 200);
    assert!(body.contains("postgres"), "{body}");
    Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
}

/// Money through the use cases, then `patron verify`; then an edit behind the system's
/// back (triggers dropped, an amount changed in the file) must be caught.
#[test]
fn verify_catches_edits_behind_the_systems_back() {
    use patron_app::cards::{IssueCard, TopUp};
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite(dir.path());
    init(dir.path(), &db, "shop");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let storage = patron_store::connect(&db).await.unwrap();
        let app = patron_app::App::new(storage, b"0123456789abcdef0123456789abcdef".to_vec());
        let login = app
            .login("shop", "owner", "correct horse battery", Some("main"))
            .await
            .unwrap();
        let actor = app.authenticate(&login.token).await.unwrap();
        let card = app
            .issue_card(
                &actor,
                &IssueCard {
                    customer_id: None,
                    medium: patron_domain::card::CardMedium::Physical,
                    kinds: Default::default(),
                    number: None,
                    pin: None,
                    pool_to_org: false,
                    fee: None,
                    fee_tender: None,
                    idempotency_key: None,
                },
            )
            .await
            .unwrap();
        let top_up = TopUp {
            amount: patron_domain::money::Money::from_yuan(300),
            tender: patron_domain::ledger::Tender::Cash,
            idempotency_key: "k1".into(),
        };
        app.top_up(&actor, card.card.id, &top_up).await.unwrap();
    });
    let o = patron(dir.path(), &db, &["verify"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("OK: no violations") && text(&o).contains("4 entries"),
        "{}",
        text(&o)
    );
    // The database refuses edits of the ledger...
    rt.block_on(async {
        use sqlx::Connection;
        let mut c = sqlx::SqliteConnection::connect(&db).await.unwrap();
        assert!(
            sqlx::query("UPDATE ledger_entries SET amount = 100000000 WHERE seq = 1")
                .execute(&mut c)
                .await
                .is_err()
        );
        // ...so a forger drops the guard first and edits the file directly.
        sqlx::query("DROP TRIGGER ledger_entries_no_update")
            .execute(&mut c)
            .await
            .unwrap();
        sqlx::query("UPDATE ledger_entries SET amount = amount * 10 WHERE seq = 2")
            .execute(&mut c)
            .await
            .unwrap();
    });
    let o = patron(dir.path(), &db, &["verify"]);
    assert!(!o.status.success(), "{}", text(&o));
    let out = text(&o);
    assert!(
        out.contains("VIOLATION") && out.contains("altered"),
        "{out}"
    );
    assert!(out.contains("does not balance"), "{out}");
}

#[test]
fn import_and_export_on_postgres_when_available() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let Some(url) = rt.block_on(patron_store::testing::fresh_postgres_url()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    init(dir.path(), &url, "shop");
    let csv = "name,phone,birthday,tags,id_number\n张伟,13800138000,1988-05-17,VIP;商务宴请,11010519491231002X\n王芳,13900139000,,,\n";
    let file = write(dir.path(), "members.csv", csv);
    let o = patron(
        dir.path(),
        &url,
        &[
            "import",
            "customers",
            file.to_str().unwrap(),
            "--tenant",
            "shop",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("2 imported"), "{}", text(&o));
    // Importing the same file again clashes with the stored phones: nothing more is imported.
    let o = patron(
        dir.path(),
        &url,
        &[
            "import",
            "customers",
            file.to_str().unwrap(),
            "--tenant",
            "shop",
        ],
    );
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("members.csv:2: phone"), "{}", text(&o));
    let out = dir.path().join("out.csv");
    let o = patron(
        dir.path(),
        &url,
        &[
            "export",
            "customers",
            out.to_str().unwrap(),
            "--tenant",
            "shop",
        ],
    );
    assert!(
        o.status.success() && text(&o).contains("2 customers"),
        "{}",
        text(&o)
    );
    let exported = std::fs::read_to_string(&out).unwrap();
    assert!(
        exported.contains("110***********002X") && !exported.contains("11010519491231002X"),
        "{exported}"
    );
}

#[test]
fn bench_checkout_runs_and_leaves_clean_books() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite(dir.path());
    let o = patron(
        dir.path(),
        &db,
        &[
            "bench",
            "checkout",
            "--seconds",
            "1",
            "--clients",
            "1",
            "--skip-pgbench",
        ],
    );
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    let stdout = String::from_utf8_lossy(&o.stdout);
    // The table: a header, a checkout row with its reference, the reference itself.
    assert!(
        stdout.contains("what") && stdout.contains("tx/s") && stdout.contains("ratio"),
        "{out}"
    );
    let checkout = stdout
        .lines()
        .find(|l| l.starts_with("checkout (App::checkout)"))
        .unwrap_or_else(|| panic!("no checkout row:\n{out}"));
    let cells: Vec<&str> = checkout.split('|').map(str::trim).collect();
    assert_eq!(cells[1], "1", "{out}");
    assert!(cells[2].parse::<u64>().unwrap() > 0, "{out}");
    assert_eq!(cells[5], "bare loop", "{out}");
    assert!(stdout.contains("bare loop (reference itself)"), "{out}");
    // The bill measured is the typical one, and the PIN cost is stated.
    assert!(
        stdout.contains("Member prices") && stdout.contains("earns"),
        "{out}"
    );
    assert!(stdout.contains("One verify_pin took"), "{out}");
    assert!(
        stdout.contains("not measured (--clients has no 16)"),
        "{out}"
    );
    assert!(stdout.contains("clean (no violations)"), "{out}");
    // The books of that file pass `patron verify` too.
    let o = patron(dir.path(), &db, &["verify"]);
    assert!(
        o.status.success() && text(&o).contains("OK: no violations"),
        "{}",
        text(&o)
    );
}

#[test]
fn bench_all_quick_prints_one_table() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite(dir.path());
    let bench = dir.path().join("bench");
    let o = patron(
        dir.path(),
        &db,
        &[
            "bench",
            "all",
            "--quick",
            "--customers",
            "500",
            "--visits",
            "5000",
            "--samples",
            "200",
            "--seconds",
            "1",
            "--clients",
            "1",
            "--skip-duckdb",
            "--dir",
            bench.to_str().unwrap(),
            // Nothing listens there: PostgreSQL is reported as skipped.
            "--postgres",
            "postgres://postgres@127.0.0.1:1/postgres",
        ],
    );
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    let stdout = String::from_utf8_lossy(&o.stdout);
    // The summary comes last, after the benches' own reports.
    let (_, summary) = stdout
        .rsplit_once("patron bench all — ")
        .unwrap_or_else(|| panic!("no summary:\n{out}"));
    let row = |what: &str, database: &str| -> Vec<String> {
        summary
            .lines()
            .map(|l| {
                l.split('|')
                    .map(|c| c.trim().to_string())
                    .collect::<Vec<_>>()
            })
            .find(|c| c.len() == 6 && c[0].starts_with(what) && c[1] == database)
            .unwrap_or_else(|| panic!("no row {what:?} for {database}:\n{summary}"))
    };
    for what in [
        "store look-up by phone p50",
        "store look-up by card p99",
        "HTTP look-up by phone p50",
        "CSV import of",
        "server RSS after start (",
        "server RSS after warm-up (",
        "server peak RSS",
        "top-up, 1 client",
        "spend, 1 client",
        "checkout, 1 till, throughput",
        "checkout, 1 till, p50",
        "checkout, 1 till, p99",
    ] {
        let cells = row(what, "SQLite");
        assert_ne!(cells[2], "—", "{what}: {summary}");
        assert_ne!(cells[4], "—", "{what}: {summary}");
        assert!(cells[5].ends_with('×'), "{what}: {summary}");
    }
    let analytics = row("analytics: quadrants + RFM + churn", "SQLite");
    assert!(analytics[2].ends_with(" s"), "{summary}");
    assert_eq!(analytics[3], "DuckDB: skipped (--skip-duckdb)", "{summary}");
    let pg = row("every bench", "PostgreSQL");
    assert_eq!(pg[3], "skipped: PostgreSQL not reachable", "{summary}");
    // The chains stay for the next run of the same sizes; the ledger and checkout
    // databases were the run's own.
    let mut files: Vec<String> = std::fs::read_dir(&bench)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|f| f.ends_with(".db"))
        .collect();
    files.sort();
    assert_eq!(files, ["analytics-500-5000.db", "lookup-500.db"], "{out}");
}
