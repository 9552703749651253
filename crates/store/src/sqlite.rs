//! The embedded SQLite backend: one file, WAL mode, `synchronous=FULL` (a committed
//! transaction survives power loss), foreign keys on.

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::str::FromStr;
use std::time::Duration;

/// SQLite storage. Reads use read-only connections (read_pool.rs); writes use a pool of
/// one connection so that write transactions queue in-process instead of failing with
/// SQLITE_BUSY.
#[derive(Clone)]
pub struct SqliteStorage {
    read: crate::read_pool::ReadPool,
    write: SqlitePool,
    /// Ledger posts waiting for the writer share its commits (writer.rs).
    group: std::sync::Arc<crate::writer::GroupCommit<sqlx::Sqlite>>,
    /// What the writer's last posts left, so the next can post in one batch
    /// (predictions.rs).
    predictions: std::sync::Arc<std::sync::Mutex<crate::predictions::Predictions>>,
    /// The checkpointer runs while any clone of this storage lives.
    _alive: std::sync::Arc<()>,
}

/// SQLite's own checkpoint threshold is 1,000 pages, run by the connection whose commit
/// crosses it: the single writer, which then copies the WAL into the database file and
/// fsyncs it while every post waits (perf: 17% of the writer thread's time under `bench
/// checkout --clients 16`). Here a connection of its own does most of it, on its own
/// thread, beside the writer: SQLite lets a passive checkpoint run next to readers and
/// a writer. A passive checkpoint cannot restart the WAL while posts keep appending, so
/// the writer still checkpoints at 4,000 pages (16 MB of WAL): by then the checkpointer
/// has copied all but the last few milliseconds' pages, and the WAL starts over.
const WRITER_CHECKPOINT_AT: &str = "4000";
/// How often the checkpointer looks while the WAL grows, and while it does not.
const CHECKPOINT_BUSY: Duration = Duration::from_millis(25);
const CHECKPOINT_IDLE: Duration = Duration::from_millis(250);

/// Checkpoints the WAL passively until the storage is dropped. A failed checkpoint is
/// logged and retried; the writer's own checkpoint bounds the WAL meanwhile.
async fn checkpointer(options: SqliteConnectOptions, alive: std::sync::Weak<()>) {
    use sqlx::ConnectOptions;
    let mut conn = None;
    let mut pause = CHECKPOINT_IDLE;
    let mut last = None;
    loop {
        tokio::time::sleep(pause).await;
        if alive.strong_count() == 0 {
            return;
        }
        if conn.is_none() {
            match options.connect().await {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    tracing::warn!(error = %e, "the WAL checkpointer cannot connect");
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        // (busy, pages in the WAL, pages copied): the same answer as last time, all
        // copied, means no post wrote meanwhile.
        let done: Result<(i64, i64, i64), _> = sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(&mut *c)
            .await;
        pause = match done {
            Ok((_, log, copied)) => {
                let quiet = copied == log && last == Some((log, copied));
                last = Some((log, copied));
                if quiet {
                    CHECKPOINT_IDLE
                } else {
                    CHECKPOINT_BUSY
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "a WAL checkpoint failed");
                conn = None;
                CHECKPOINT_IDLE
            }
        };
    }
}

/// Reader connections: `PATRON_SQLITE_READERS`, else 8. Each has a thread of its own
/// (sqlx's SQLite worker).
fn read_connections() -> u32 {
    std::env::var("PATRON_SQLITE_READERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| (1..=64).contains(n))
        .unwrap_or(8)
}

impl SqliteStorage {
    /// Opens (creating if needed) the database file at `path`.
    pub async fn open(path: &str) -> Result<Self, crate::StoreError> {
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            // Statement journals and the journal of a ledger post's savepoint (writer.rs)
            // in memory: as temporary files they cost an open, a write and an unlink
            // per post (measured with strace).
            .pragma("temp_store", "memory")
            .statement_cache_capacity(256);
        // A local file cannot drop a connection: skip sqlx's ping before each acquire,
        // which costs a round trip to the connection's worker thread (measured by
        // `patron bench lookup`).
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            // Checkpoints are the checkpointer's (below); the writer checkpoints itself
            // only if the WAL grows this long (pages) anyway.
            .connect_with(
                options
                    .clone()
                    .pragma("wal_autocheckpoint", WRITER_CHECKPOINT_AT),
            )
            .await?;
        let read =
            crate::read_pool::ReadPool::open(options.clone().read_only(true), read_connections())
                .await?;
        let alive = std::sync::Arc::new(());
        // It never creates a database: one removed meanwhile (a test's) stays removed.
        let existing = options.create_if_missing(false);
        tokio::spawn(checkpointer(existing, std::sync::Arc::downgrade(&alive)));
        Ok(Self {
            read,
            write,
            group: Default::default(),
            predictions: Default::default(),
            _alive: alive,
        })
    }

    fn reader(&self) -> &crate::read_pool::ReadPool {
        &self.read
    }
    fn writer(&self) -> &SqlitePool {
        &self.write
    }
    fn commit_sharing_now(&self) -> Option<(u64, u64)> {
        Some(self.group.sharing())
    }
    fn predictions(&self) -> Option<&std::sync::Mutex<crate::predictions::Predictions>> {
        Some(&self.predictions)
    }
    /// A ledger post's writer: joins the group of posts sharing the next commit.
    async fn post_writer(&self) -> crate::Result<crate::writer::Writer<'static, sqlx::Sqlite>> {
        crate::writer::Writer::<sqlx::Sqlite>::join(&self.group, &self.write).await
    }
    async fn run_migrations(&self) -> Result<(), crate::StoreError> {
        sqlx::migrate!("./migrations/sqlite")
            .run(&self.write)
            .await?;
        Ok(())
    }
}

crate::shared::impl_storage!(
    SqliteStorage,
    sqlx::Sqlite,
    Backend::Sqlite,
    month_of_birthday = "CAST(substr(birthday, 6, 2) AS INTEGER)"
);

mod ledger_impl {
    use super::*;
    use crate::ledger::{AccountRecord, EntryRecord, TxnRecord};
    use crate::rows::CardRow;
    use crate::{Result, StoreError};
    use chrono::{DateTime, Utc};
    use patron_domain::card::Card;
    use patron_domain::ids::TenantId;
    crate::ledger_shared::impl_ledger_storage!(SqliteStorage, sqlx::Sqlite);
}

mod loyalty_impl {
    use super::*;
    use crate::{Result, StoreError};
    use patron_domain::ids::TenantId;
    crate::loyalty_shared::impl_loyalty_storage!(SqliteStorage, sqlx::Sqlite);
}

mod menu_impl {
    use super::*;
    crate::menu_shared::impl_menu_storage!(SqliteStorage, sqlx::Sqlite);
}

mod audit_impl {
    use super::*;
    use crate::{Result, Session, StoreError};
    use chrono::{DateTime, Utc};
    use patron_domain::ids::TenantId;
    crate::audit_shared::impl_audit_storage!(SqliteStorage, sqlx::Sqlite);
}

mod coupons_impl {
    use super::*;
    use crate::{Result, StoreError};
    use chrono::{DateTime, Utc};
    use patron_domain::ids::TenantId;
    crate::coupons_shared::impl_coupon_storage!(SqliteStorage, sqlx::Sqlite);
}

mod settlement_impl {
    use super::*;
    use crate::{Result, StoreError};
    use chrono::{DateTime, Utc};
    use patron_domain::ids::TenantId;
    crate::settlement_shared::impl_settlement_storage!(
        SqliteStorage,
        sqlx::Sqlite,
        original_kind = "json_extract(t.data, '$.original_kind')"
    );
}

mod analytics_impl {
    use super::*;
    use crate::Result;
    use chrono::{DateTime, Utc};
    use patron_domain::ids::TenantId;
    crate::analytics_shared::impl_analytics_storage!(
        SqliteStorage,
        sqlx::Sqlite,
        visits_scan = "visits INDEXED BY visits_value_idx",
        day_list = "group_concat(local_date)",
        packed_rows = true
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The monthly growth totals the triggers keep (migration 0011) follow every kind of
    /// write to `visits` (insert, reversal, refund, a merge's move, delete), and
    /// `growth` from them equals the plain sum over the visits, for windows starting
    /// mid-month, on a month's first day and at none.
    #[tokio::test]
    async fn growth_from_monthly_totals_equals_the_visits_sum() {
        use crate::loyalty::LoyaltyStore;
        use chrono::NaiveDate;
        use patron_domain::ids::{CustomerId, TenantId};
        let dir = std::env::temp_dir().join(format!("patron-growth-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let s = SqliteStorage::open(dir.join("g.db").to_str().unwrap())
            .await
            .unwrap();
        crate::Storage::migrate(&s).await.unwrap();
        // Visits only: no tenant or customer rows behind them.
        sqlx::query("PRAGMA foreign_keys = OFF")
            .execute(s.writer())
            .await
            .unwrap();
        let (t, c, dup) = (
            uuid::Uuid::now_v7(),
            uuid::Uuid::now_v7(),
            uuid::Uuid::now_v7(),
        );
        let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        let visit = |id: u128, customer: uuid::Uuid, on: NaiveDate, growth: i64| {
            let w = s.writer().clone();
            async move {
                sqlx::query(
                    "INSERT INTO visits (tenant_id, id, customer_id, source, occurred_at, local_date, amount, growth) \
                     VALUES ($1, $2, $3, 'purchase', '2026-01-01T00:00:00Z', $4, $5, $5)",
                )
                .bind(t)
                .bind(uuid::Uuid::from_u128(id))
                .bind(customer)
                .bind(on)
                .bind(growth)
                .execute(&w)
                .await
                .unwrap();
            }
        };
        visit(1, c, day(2025, 11, 10), 100).await;
        visit(2, c, day(2025, 11, 24), 10).await;
        visit(3, c, day(2025, 11, 30), 1).await;
        visit(4, c, day(2025, 12, 1), 1000).await;
        visit(5, c, day(2026, 3, 5), 5).await;
        visit(6, c, day(2026, 11, 24), 7).await;
        visit(7, dup, day(2025, 12, 2), 50_000).await;
        for sql in [
            "UPDATE visits SET reversed_at = '2026-03-06T00:00:00Z' WHERE id = $1",
            "UPDATE visits SET growth = growth - 4 WHERE id = $2",
            "UPDATE visits SET customer_id = $4 WHERE customer_id = $3",
            "DELETE FROM visits WHERE id = $5",
        ] {
            sqlx::query(sql)
                .bind(uuid::Uuid::from_u128(5))
                .bind(uuid::Uuid::from_u128(6))
                .bind(dup)
                .bind(c)
                .bind(uuid::Uuid::from_u128(3))
                .execute(s.writer())
                .await
                .unwrap();
        }
        let plain = |from: Option<NaiveDate>| {
            let w = s.writer().clone();
            async move {
                let n: Option<i64> = sqlx::query_scalar(
                    "SELECT SUM(growth) FROM visits WHERE tenant_id = $1 AND customer_id = $2 \
                     AND reversed_at IS NULL AND ($3 IS NULL OR local_date >= $3)",
                )
                .bind(t)
                .bind(c)
                .bind(from)
                .fetch_one(&w)
                .await
                .unwrap();
                n.unwrap_or(0)
            }
        };
        for from in [
            None,
            Some(day(2025, 11, 1)),
            Some(day(2025, 11, 11)),
            Some(day(2025, 11, 24)),
            Some(day(2025, 12, 1)),
            Some(day(2025, 12, 2)),
            Some(day(2026, 11, 25)),
        ] {
            let kept = s.growth(TenantId(t), CustomerId(c), from).await.unwrap();
            assert_eq!(kept, plain(from).await, "from {from:?}");
        }
        assert_eq!(
            s.growth(TenantId(t), CustomerId(c), None).await.unwrap(),
            100 + 10 + 1000 + 3 + 50_000
        );
        assert_eq!(
            s.growth(TenantId(t), CustomerId(dup), None).await.unwrap(),
            0
        );
        assert!(s.growth_months_off(TenantId(t)).await.unwrap().is_empty());
        std::fs::remove_dir_all(&dir).ok();
    }

    /// In WAL mode only a checkpoint moves pages into the database file: it grows
    /// while the writer stays below its own threshold, so the checkpointer did it.
    #[tokio::test]
    async fn the_checkpointer_copies_the_wal_into_the_database() {
        let dir = std::env::temp_dir().join(format!("patron-ckpt-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("p.db");
        let s = SqliteStorage::open(path.to_str().unwrap()).await.unwrap();
        sqlx::query("CREATE TABLE filler (b BLOB)")
            .execute(s.writer())
            .await
            .unwrap();
        // Let the checkpointer settle, then measure from there.
        tokio::time::sleep(CHECKPOINT_IDLE * 2).await;
        let before = std::fs::metadata(&path).unwrap().len();
        for _ in 0..20 {
            sqlx::query("INSERT INTO filler VALUES (randomblob(20000))")
                .execute(s.writer())
                .await
                .unwrap();
        }
        // 400 KB: some 100 pages, far below the writer's 4,000.
        let mut grown = 0;
        for _ in 0..40 {
            tokio::time::sleep(CHECKPOINT_BUSY).await;
            grown = std::fs::metadata(&path)
                .unwrap()
                .len()
                .saturating_sub(before);
            if grown >= 400_000 {
                break;
            }
        }
        assert!(grown >= 400_000, "the database file grew by {grown} bytes");
        drop(s);
        let _ = std::fs::remove_dir_all(dir);
    }
}
