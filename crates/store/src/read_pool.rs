//! SQLite's reader connections, kept without sqlx's pool.
//!
//! sqlx's pool tests every connection it takes back with a ping, in a task it spawns:
//! on SQLite a round trip to the connection's own thread after every read, which costs
//! two more thread switches and a task per read (measured with `perf sched` under
//! `patron bench checkout`: 2.3 wake-ups of a reader thread per read). The ping guards
//! against connections that a cancelled query left inside a transaction. A reader is
//! opened read-only and never begins one: a query cancelled half-way is reset by its
//! thread (sqlx's SQLite worker stops at the first row nobody takes) before the next
//! command, which queues behind it. So a connection goes straight back to the idle
//! list here, unless it failed in a way that says the connection itself is broken.

use futures_util::TryStreamExt;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteQueryResult, SqliteRow};
use sqlx::{ConnectOptions, Either, Error, Execute, Executor, Sqlite};
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Up to `max` read-only connections, opened as needed; an `Executor` like a pool.
#[derive(Clone)]
pub(crate) struct ReadPool(Arc<Inner>);

impl std::fmt::Debug for ReadPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadPool")
            .field("idle", &self.0.idle.lock().map(|i| i.len()).unwrap_or(0))
            .field("free", &self.0.permits.available_permits())
            .finish()
    }
}

struct Inner {
    options: SqliteConnectOptions,
    idle: Mutex<Vec<SqliteConnection>>,
    permits: Arc<Semaphore>,
}

/// A connection taken from the pool; dropping it gives it back.
struct Lease {
    conn: Option<SqliteConnection>,
    pool: Arc<Inner>,
    /// Released after the connection is back (fields drop after `Drop::drop`).
    _permit: OwnedSemaphorePermit,
}

impl ReadPool {
    /// Opens the first connection at once, so a bad path fails here.
    pub(crate) async fn open(options: SqliteConnectOptions, max: u32) -> Result<Self, Error> {
        let first = options.connect().await?;
        Ok(ReadPool(Arc::new(Inner {
            options,
            idle: Mutex::new(vec![first]),
            permits: Arc::new(Semaphore::new(max as usize)),
        })))
    }

    async fn acquire(&self) -> Result<Lease, Error> {
        let permit = Arc::clone(&self.0.permits)
            .acquire_owned()
            .await
            .map_err(|_| Error::PoolClosed)?;
        let idle = self.0.idle.lock().expect("reader pool").pop();
        let conn = match idle {
            Some(conn) => conn,
            None => self.0.options.connect().await?,
        };
        Ok(Lease {
            conn: Some(conn),
            pool: Arc::clone(&self.0),
            _permit: permit,
        })
    }
}

impl Lease {
    fn conn(&mut self) -> &mut SqliteConnection {
        self.conn.as_mut().expect("a lease holds its connection")
    }

    /// Closes the connection instead of giving it back, after an error that may mean
    /// it is broken (its thread gone, the file unreadable).
    fn judge(&mut self, e: &Error) {
        if !matches!(
            e,
            Error::Database(_)
                | Error::RowNotFound
                | Error::ColumnNotFound(_)
                | Error::ColumnIndexOutOfBounds { .. }
                | Error::ColumnDecode { .. }
                | Error::Decode(_)
                | Error::Encode(_)
                | Error::TypeNotFound { .. }
        ) {
            self.conn = None;
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.idle.lock().expect("reader pool").push(conn);
        }
    }
}

impl<'p> Executor<'p> for &'_ ReadPool {
    type Database = Sqlite;

    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxStream<'e, Result<Either<SqliteQueryResult, SqliteRow>, Error>>
    where
        E: 'q + Execute<'q, Sqlite>,
    {
        let pool = self.clone();
        Box::pin(sqlx_core::try_stream! {
            let mut lease = pool.acquire().await?;
            let mut rows = lease.conn().fetch_many(query);
            loop {
                match rows.try_next().await {
                    Ok(Some(v)) => r#yield!(v),
                    Ok(None) => break,
                    Err(e) => {
                        drop(rows);
                        lease.judge(&e);
                        return Err(e);
                    }
                }
            }
            Ok(())
        })
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<Option<SqliteRow>, Error>>
    where
        E: 'q + Execute<'q, Sqlite>,
    {
        let pool = self.clone();
        Box::pin(async move {
            let mut lease = pool.acquire().await?;
            let row = lease.conn().fetch_optional(query).await;
            if let Err(e) = &row {
                lease.judge(e);
            }
            row
        })
    }

    fn prepare_with<'e>(
        self,
        sql: sqlx::SqlStr,
        parameters: &'e [sqlx::sqlite::SqliteTypeInfo],
    ) -> BoxFuture<'e, Result<sqlx::sqlite::SqliteStatement, Error>>
    where
        'p: 'e,
    {
        let pool = self.clone();
        Box::pin(async move {
            pool.acquire()
                .await?
                .conn()
                .prepare_with(sql, parameters)
                .await
        })
    }

    #[doc(hidden)]
    fn describe<'e>(
        self,
        sql: sqlx::SqlStr,
    ) -> BoxFuture<'e, Result<sqlx::Describe<Sqlite>, Error>> {
        let pool = self.clone();
        Box::pin(async move { pool.acquire().await?.conn().describe(sql).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::Row;
    use std::str::FromStr;

    async fn fixture(max: u32) -> (ReadPool, std::path::PathBuf) {
        let path =
            std::env::temp_dir().join(format!("patron-read-pool-{}.db", uuid::Uuid::now_v7()));
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
            .unwrap()
            .create_if_missing(true);
        let mut w = options.connect().await.unwrap();
        sqlx::raw_sql("CREATE TABLE t (n INTEGER); INSERT INTO t VALUES (1), (2), (3);")
            .execute(&mut w)
            .await
            .unwrap();
        (
            ReadPool::open(options.read_only(true), max).await.unwrap(),
            path,
        )
    }

    fn idle(p: &ReadPool) -> usize {
        p.0.idle.lock().unwrap().len()
    }

    #[tokio::test]
    async fn connections_come_back_and_stay_within_the_limit() {
        let (pool, path) = fixture(2).await;
        let reads = (0..12).map(|_| {
            let pool = pool.clone();
            async move {
                let r: (i64,) = sqlx::query_as("SELECT SUM(n) FROM t")
                    .fetch_one(&pool)
                    .await
                    .unwrap();
                r.0
            }
        });
        assert!(
            futures_util::future::join_all(reads)
                .await
                .iter()
                .all(|s| *s == 6)
        );
        assert!((1..=2).contains(&idle(&pool)), "{pool:?}");
        assert_eq!(pool.0.permits.available_permits(), 2);
        // A query's own error leaves the connection usable, and it comes back.
        let before = idle(&pool);
        assert!(
            sqlx::query("SELECT nope FROM t")
                .fetch_all(&pool)
                .await
                .is_err()
        );
        assert_eq!(idle(&pool), before);
        // Read-only: a write is refused by SQLite, the connection stays.
        assert!(
            sqlx::query("INSERT INTO t VALUES (4)")
                .execute(&pool)
                .await
                .is_err()
        );
        assert_eq!(idle(&pool), before);
        let _ = std::fs::remove_file(path);
    }

    #[tokio::test]
    async fn a_query_dropped_half_way_leaves_the_connection_clean() {
        let (pool, path) = fixture(1).await;
        {
            // Many rows, one taken: the stream is dropped with the rest unread.
            let mut rows = sqlx::query(
                "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 100000) SELECT i FROM c",
            )
            .fetch(&pool);
            let first = rows.try_next().await.unwrap().unwrap();
            assert_eq!(first.get::<i64, _>(0), 1);
        }
        // The one connection answers the next query with its own rows.
        let n: Vec<(i64,)> = sqlx::query_as("SELECT n FROM t ORDER BY n")
            .fetch_all(&pool)
            .await
            .unwrap();
        assert_eq!(n, vec![(1,), (2,), (3,)]);
        assert_eq!(idle(&pool), 1);
        let _ = std::fs::remove_file(path);
    }
}
