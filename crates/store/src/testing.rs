//! Test helpers (cargo feature `testing`): fresh, migrated databases of either backend,
//! for the store's conformance suite (`tests/storage.rs`) and the API tests.
//!
//! PostgreSQL: each call creates a new database `patron_test_<uuid v7 hex>` through the
//! admin URL (`PATRON_TEST_PG_ADMIN_URL`, default [`DEFAULT_PG_ADMIN_URL`]). The UUID v7
//! carries its creation time, so the first call of each process drops the test databases
//! left over from runs more than [`STALE_AFTER`] ago (best effort; a database still in use
//! is left alone). When the server does not answer the PostgreSQL tests are skipped, saying
//! so on stderr, unless `PATRON_REQUIRE_POSTGRES=1` makes that a failure.

use crate::Storage;
use crate::postgres::PgStorage;
use crate::sqlite::SqliteStorage;
use sqlx::AssertSqlSafe;
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use std::io::Write;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use uuid::Uuid;

/// Where the PostgreSQL tests connect to create their databases, unless
/// `PATRON_TEST_PG_ADMIN_URL` says otherwise.
pub const DEFAULT_PG_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// Test databases older than this are dropped by the next test run.
pub const STALE_AFTER: Duration = Duration::from_secs(3 * 3600);
const DB_PREFIX: &str = "patron_test_";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Keeps a fresh SQLite database's temporary directory alive; dropping it deletes the
/// directory and the database in it.
#[derive(Debug)]
pub struct TempDirGuard {
    dir: tempfile::TempDir,
}

impl TempDirGuard {
    /// The temporary directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// A fresh, migrated SQLite database: a real file in a new temporary directory.
pub async fn fresh_sqlite() -> (Arc<dyn Storage>, TempDirGuard) {
    let dir = tempfile::Builder::new()
        .prefix("patron-test-")
        .tempdir()
        .expect("create a temporary directory");
    let path = dir.path().join("patron.db");
    let path = path.to_str().expect("temporary path is UTF-8");
    let storage = SqliteStorage::open(path)
        .await
        .unwrap_or_else(|e| panic!("open SQLite at {path}: {e}"));
    storage.migrate().await.expect("migrate SQLite");
    (Arc::new(storage), TempDirGuard { dir })
}

/// A fresh, migrated PostgreSQL database, or `None` when the server does not answer
/// (the caller skips its test; the reason is already on stderr).
pub async fn fresh_postgres() -> Option<Arc<dyn Storage>> {
    let url = create_database().await?;
    Some(Arc::new(connect_migrated(&url).await))
}

/// Like [`fresh_postgres`] but gives the URL of the fresh (migrated) database, for tests
/// that start a server process on it.
pub async fn fresh_postgres_url() -> Option<String> {
    let url = create_database().await?;
    let storage = connect_migrated(&url).await;
    storage.pool().close().await;
    Some(url)
}

/// The admin URL the PostgreSQL tests use.
pub fn pg_admin_url() -> String {
    std::env::var("PATRON_TEST_PG_ADMIN_URL").unwrap_or_else(|_| DEFAULT_PG_ADMIN_URL.into())
}

fn postgres_required() -> bool {
    std::env::var("PATRON_REQUIRE_POSTGRES").is_ok_and(|v| v == "1")
}

async fn connect_migrated(url: &str) -> PgStorage {
    let shown = redact(url);
    let storage = PgStorage::connect(url)
        .await
        .unwrap_or_else(|e| panic!("connect to the fresh test database {shown}: {e}"));
    storage
        .migrate()
        .await
        .unwrap_or_else(|e| panic!("migrate the fresh test database {shown}: {e}"));
    storage
}

/// Creates an empty database and returns its URL; `None` when the server does not answer.
async fn create_database() -> Option<String> {
    // Once the server has not answered, the other tests of this process skip at once.
    static UNREACHABLE: AtomicBool = AtomicBool::new(false);
    let admin_url = pg_admin_url();
    let shown = redact(&admin_url);
    let options = PgConnectOptions::from_str(&admin_url)
        .unwrap_or_else(|e| panic!("bad PostgreSQL admin URL {shown}: {e}"));
    let connected = if UNREACHABLE.load(Ordering::SeqCst) {
        Err("did not answer earlier in this run".to_string())
    } else {
        match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options)).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {CONNECT_TIMEOUT:?}")),
        }
    };
    let mut admin = match connected {
        Ok(conn) => conn,
        Err(why) => {
            let message = format!("PostgreSQL not reachable at {shown}: {why}");
            if postgres_required() {
                panic!("{message} (and PATRON_REQUIRE_POSTGRES=1)");
            }
            // Said once per process, past the test harness's output capture.
            if !UNREACHABLE.swap(true, Ordering::SeqCst) {
                let line = format!(
                    "\n{message}: PostgreSQL tests SKIPPED \
                     (set PATRON_REQUIRE_POSTGRES=1 to make this a failure)\n"
                );
                let _ = std::io::stderr().write_all(line.as_bytes());
            }
            return None;
        }
    };
    sweep_stale(&mut admin).await;
    let name = format!("{DB_PREFIX}{}", Uuid::now_v7().simple());
    // The name is our prefix and hex digits: nothing to inject.
    sqlx::query(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut admin)
        .await
        .unwrap_or_else(|e| panic!("create test database {name} at {shown}: {e}"));
    let _ = admin.close().await;
    Some(with_database(&admin_url, &name))
}

/// Drops test databases created more than [`STALE_AFTER`] ago; once per process, best
/// effort. Only names of exactly our form are touched.
async fn sweep_stale(admin: &mut PgConnection) {
    static SWEPT: AtomicBool = AtomicBool::new(false);
    if SWEPT.swap(true, Ordering::SeqCst) {
        return;
    }
    let Ok(names) = sqlx::query_scalar::<_, String>(
        "SELECT datname FROM pg_database WHERE datname LIKE 'patron\\_test\\_%'",
    )
    .fetch_all(&mut *admin)
    .await
    else {
        return;
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    for name in names {
        let Some(created) = created_at(&name) else {
            continue;
        };
        if now.saturating_sub(created) > STALE_AFTER {
            // Fails harmlessly if someone is still connected or another run dropped it first.
            // `created_at` accepted the name: our prefix and hex digits only.
            let _ = sqlx::query(AssertSqlSafe(format!("DROP DATABASE IF EXISTS \"{name}\"")))
                .execute(&mut *admin)
                .await;
        }
    }
}

/// When a test database was created (since the Unix epoch), read from its name.
fn created_at(name: &str) -> Option<Duration> {
    let hex = name.strip_prefix(DB_PREFIX)?;
    if hex.len() != 32 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let id = Uuid::parse_str(hex).ok()?;
    if id.get_version_num() != 7 {
        return None;
    }
    let (secs, nanos) = id.get_timestamp()?.to_unix();
    Some(Duration::new(secs, nanos))
}

/// The URL with its database (path) replaced by `name`; the query string is kept.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority = base.find("://").map_or(0, |i| i + 3);
    let path = base[authority..]
        .find('/')
        .map_or(base.len(), |i| authority + i);
    let mut out = format!("{}/{name}", &base[..path]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    let authority = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[authority..];
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => match rest[..at].find(':') {
            Some(colon) => format!("{}{}:***{}", &url[..authority], &rest[..colon], &rest[at..]),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_database_of_a_url() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h:5432", "x"),
            "postgres://h:5432/x"
        );
    }

    #[test]
    fn hides_passwords() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(
            redact("postgres://postgres@127.0.0.1:5432/postgres"),
            "postgres://postgres@127.0.0.1:5432/postgres"
        );
    }

    #[test]
    fn reads_the_creation_time_from_the_name() {
        let name = format!("{DB_PREFIX}{}", Uuid::now_v7().simple());
        let age = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .saturating_sub(created_at(&name).unwrap());
        assert!(age < Duration::from_secs(60));
        assert_eq!(created_at("patron_test_foo"), None);
        assert_eq!(created_at("patron_production"), None);
    }
}
