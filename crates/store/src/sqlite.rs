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
            .connect_with(options.clone())
            .await?;
        let read =
            crate::read_pool::ReadPool::open(options.read_only(true), read_connections()).await?;
        Ok(Self {
            read,
            write,
            group: Default::default(),
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
