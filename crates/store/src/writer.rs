//! The write side of a posting: statements queued and sent together.
//!
//! Each statement sqlx sends is a round trip: on SQLite a hand-over to the connection's
//! worker thread and back, on PostgreSQL a network round trip. Measured here, that costs
//! 35–75 µs a statement whatever the statement does (README, "Where the time goes"),
//! so a posting of fifteen statements spent most of its time travelling.
//!
//! A [`Writer`] owns the transaction. On SQLite it queues statements whose result the
//! posting does not need at once, and sends them in one multi-statement query, in their
//! order, with the next statement whose rows it does need (sqlx's SQLite driver runs a
//! multi-statement query on its worker thread in one go and reports each statement's
//! rows and row count). Each queued statement carries its [`Expect`]ation (a row count,
//! or an error to raise), judged in order when its result arrives, so a batch behaves
//! exactly as the statements sent one by one: the first statement that fails decides
//! the error, and the transaction is rolled back at once. `BEGIN IMMEDIATE` travels in
//! the first batch and `COMMIT` in the last. On PostgreSQL (whose extended protocol
//! takes one statement per query) every statement is sent at once, in an sqlx
//! transaction.
//!
//! Queued statements reach the database only by [`Writer::flush`], a statement whose
//! rows are wanted, or [`Writer::commit`]; a writer dropped before committing rolls
//! everything back, so a queued statement is never lost from a committed transaction.
//!
//! Parameters: a statement's SQL numbers its own parameters `$1, $2…` (as everywhere in
//! the store); the writer renumbers them into the batch's. No SQL string written for the
//! writer may contain a `$` followed by a digit other than a parameter.

use crate::{Result, StoreError};
use futures_util::TryStreamExt;
use sqlx::{Arguments, Database, Encode, Postgres, Sqlite, Type};

/// What a statement's row count must be.
pub(crate) enum Expect {
    /// Anything.
    Any,
    /// Exactly this many rows, or the error.
    Rows(u64, StoreError),
}

/// A statement's place among the rows a writer collected (see [`Stmt::rows`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ticket(usize);

struct Queued {
    expect: Expect,
    ticket: Option<usize>,
}

/// Where a writer's transaction lives.
enum Conn<'c, DB: Database> {
    /// An sqlx transaction, each statement sent at once (PostgreSQL).
    Tx(sqlx::Transaction<'c, DB>),
    /// SQLite's writer connection with `BEGIN` and `COMMIT` sent inside the batches (two
    /// hand-overs fewer per posting). `open` once `BEGIN` has been sent: a writer dropped
    /// then (a cancelled request) closes the connection, which rolls the transaction
    /// back, instead of returning it to the pool mid-transaction.
    Manual {
        conn: sqlx::pool::PoolConnection<DB>,
        open: bool,
    },
}

/// A write transaction that sends statements together where the backend allows.
pub(crate) struct Writer<'c, DB: Database> {
    /// `None` only while `commit` or `rollback` consumes the writer.
    conn: Option<Conn<'c, DB>>,
    sql: String,
    args: DB::Arguments,
    bind_error: Option<sqlx::error::BoxDynError>,
    queued: Vec<Queued>,
    rows: Vec<Option<Vec<DB::Row>>>,
    /// Statements sent so far, and which of them failed (counted from 0).
    sent: usize,
    failed_at: Option<usize>,
}

impl<'c, DB: Database> Writer<'c, DB> {
    fn new(conn: Conn<'c, DB>) -> Self {
        Writer {
            conn: Some(conn),
            sql: String::new(),
            args: Default::default(),
            bind_error: None,
            queued: Vec::new(),
            rows: Vec::new(),
            sent: 0,
            failed_at: None,
        }
    }

    /// Whether statements queue (SQLite's batches) or go at once.
    fn batched(&self) -> bool {
        matches!(self.conn, Some(Conn::Manual { .. }))
    }

    /// Queues the statement just written, with its expectation and, if its rows are
    /// wanted, the ticket they will be kept under.
    fn enqueue(&mut self, expect: Expect, wants_rows: bool) -> Option<Ticket> {
        let ticket = wants_rows.then(|| {
            self.rows.push(None);
            self.rows.len() - 1
        });
        self.queued.push(Queued { expect, ticket });
        ticket.map(Ticket)
    }

    fn connection(&mut self) -> &mut DB::Connection {
        match self
            .conn
            .as_mut()
            .expect("a writer's connection until commit")
        {
            Conn::Tx(tx) => tx,
            Conn::Manual { conn, .. } => conn,
        }
    }

    /// The number the next statement will have (counted from 0).
    pub(crate) fn next_statement(&self) -> usize {
        self.sent + self.queued.len()
    }

    /// The statement whose error or failed expectation a flush returned.
    pub(crate) fn failed_at(&self) -> Option<usize> {
        self.failed_at
    }

    /// Starts a statement; its SQL numbers its parameters from `$1`.
    pub(crate) fn stmt(&mut self, sql: &str) -> Stmt<'_, 'c, DB> {
        if !self.sql.is_empty() {
            self.sql.push_str(";\n");
        }
        let base = self.args.len();
        Stmt { w: self, base }.sql(sql)
    }

    /// The rows of a statement sent by [`Stmt::rows`], decoded; after a flush.
    pub(crate) fn take<T>(&mut self, ticket: Ticket) -> Result<Vec<T>>
    where
        T: for<'r> sqlx::FromRow<'r, DB::Row>,
    {
        let rows = self
            .rows
            .get_mut(ticket.0)
            .and_then(Option::take)
            .ok_or_else(|| StoreError::Invalid("rows taken before the flush".into()))?;
        rows.iter()
            .map(|r| T::from_row(r).map_err(StoreError::from))
            .collect()
    }
}

impl<DB: Database> Drop for Writer<'_, DB> {
    fn drop(&mut self) {
        if let Some(Conn::Manual { conn, open: true }) = &mut self.conn {
            conn.close_on_drop();
        }
    }
}

/// One statement being written into a [`Writer`].
pub(crate) struct Stmt<'w, 'c, DB: Database> {
    w: &'w mut Writer<'c, DB>,
    /// Parameters of the batch before this statement's.
    base: usize,
}

impl<DB: Database> Stmt<'_, '_, DB> {
    /// Appends SQL whose `$k` name this statement's k-th parameter.
    pub(crate) fn sql(mut self, sql: &str) -> Self {
        self.add_sql(sql);
        self
    }

    fn add_sql(&mut self, sql: &str) {
        renumber(sql, self.base, &mut self.w.sql);
    }

    /// Adds the next parameter's value (named in the SQL as `$k`).
    pub(crate) fn bind<'t, T: Encode<'t, DB> + Type<DB>>(mut self, value: T) -> Self {
        self.add_bind(value);
        self
    }

    fn add_bind<'t, T: Encode<'t, DB> + Type<DB>>(&mut self, value: T) {
        if let Err(e) = self.w.args.add(value)
            && self.w.bind_error.is_none()
        {
            self.w.bind_error = Some(e);
        }
    }

    /// Appends a placeholder for a new parameter and its value.
    pub(crate) fn push_bind<'t, T: Encode<'t, DB> + Type<DB>>(mut self, value: T) -> Self {
        self.add_push_bind(value);
        self
    }

    fn add_push_bind<'t, T: Encode<'t, DB> + Type<DB>>(&mut self, value: T) {
        use std::fmt::Write;
        let n = self.w.args.len() + 1;
        let _ = write!(self.w.sql, "${n}");
        self.add_bind(value);
    }

    /// Appends `VALUES (…), (…)`: `row` pushes one item's values with
    /// [`Values::push_bind`].
    pub(crate) fn push_values<I, F>(mut self, items: I, mut row: F) -> Self
    where
        I: IntoIterator,
        F: FnMut(&mut Values<'_, '_, '_, DB>, I::Item),
    {
        self.w.sql.push_str("VALUES ");
        for (i, item) in items.into_iter().enumerate() {
            self.w.sql.push_str(if i == 0 { "(" } else { ", (" });
            let mut v = Values {
                stmt: &mut self,
                first: true,
            };
            row(&mut v, item);
            self.w.sql.push(')');
        }
        self
    }
}

/// One row of [`Stmt::push_values`].
pub(crate) struct Values<'s, 'w, 'c, DB: Database> {
    stmt: &'s mut Stmt<'w, 'c, DB>,
    first: bool,
}

impl<DB: Database> Values<'_, '_, '_, DB> {
    pub(crate) fn push_bind<'t, T: Encode<'t, DB> + Type<DB>>(&mut self, value: T) -> &mut Self {
        if !std::mem::take(&mut self.first) {
            self.stmt.w.sql.push_str(", ");
        }
        self.stmt.add_push_bind(value);
        self
    }
}

/// Copies `sql` to `out` with each `$k` turned into `$(k + base)`.
fn renumber(sql: &str, base: usize, out: &mut String) {
    if base == 0 {
        out.push_str(sql);
        return;
    }
    let mut rest = sql;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let digits = rest[i + 1..]
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len() - i - 1);
        if digits == 0 {
            out.push('$');
        } else {
            let k: usize = rest[i + 1..i + 1 + digits].parse().expect("ascii digits");
            out.push('$');
            out.push_str(&(k + base).to_string());
        }
        rest = &rest[i + 1 + digits..];
    }
    out.push_str(rest);
}

/// The backend-specific half: sending what was written. Both backends offer the same
/// methods, so the store's shared SQL (instantiated per backend by macros) calls them
/// alike.
macro_rules! impl_send {
    ($db:ty, $batched:expr) => {
        impl Writer<'static, $db> {
            /// A write transaction on `pool`: on SQLite batched, with `BEGIN IMMEDIATE`
            /// sent with the first batch and `COMMIT` with the last; on PostgreSQL an
            /// sqlx transaction.
            pub(crate) async fn begin(pool: &sqlx::Pool<$db>) -> Result<Self> {
                if !$batched {
                    return Ok(Writer::new(Conn::Tx(pool.begin().await?)));
                }
                let mut w = Writer::new(Conn::Manual {
                    conn: pool.acquire().await?,
                    open: false,
                });
                w.stmt("BEGIN IMMEDIATE").exec(Expect::Any).await?;
                Ok(w)
            }
        }

        impl<'w, 'c> Stmt<'w, 'c, $db> {
            /// Queues the statement (SQLite) or sends it (PostgreSQL); its row count is
            /// judged against `expect` when its result arrives.
            pub(crate) async fn exec(self, expect: Expect) -> Result<()> {
                self.w.enqueue(expect, false);
                if self.w.batched() {
                    Ok(())
                } else {
                    self.w.flush().await
                }
            }

            /// Queues a statement whose rows are wanted later (SQLite), or sends it
            /// (PostgreSQL): after the next [`Writer::flush`], [`Writer::take`] has them.
            pub(crate) async fn rows(self) -> Result<Ticket> {
                let ticket = self.w.enqueue(Expect::Any, true).expect("rows wanted");
                if !self.w.batched() {
                    self.w.flush().await?;
                }
                Ok(ticket)
            }

            /// Sends the statement with everything queued before it and decodes its rows.
            pub(crate) async fn fetch_all<T>(self) -> Result<Vec<T>>
            where
                T: for<'r> sqlx::FromRow<'r, <$db as Database>::Row>,
            {
                let Stmt { w, .. } = self;
                let ticket = w.enqueue(Expect::Any, true).expect("rows wanted");
                w.flush().await?;
                w.take(ticket)
            }

            /// [`Stmt::fetch_all`] for a statement that returns at most one row.
            pub(crate) async fn fetch_optional<T>(self) -> Result<Option<T>>
            where
                T: for<'r> sqlx::FromRow<'r, <$db as Database>::Row>,
            {
                Ok(self.fetch_all().await?.into_iter().next())
            }
        }

        impl<'c> Writer<'c, $db> {
            /// Sends every queued statement and judges their results in order. On an
            /// error a batched (SQLite) writer rolls its transaction back at once.
            pub(crate) async fn flush(&mut self) -> Result<()> {
                let result = self.send().await;
                if result.is_err()
                    && let Some(Conn::Manual { conn, open }) = &mut self.conn
                    && *open
                {
                    // Nothing was committed: the error came before `COMMIT`, or was
                    // `COMMIT`'s own. "No transaction is active" is fine here.
                    let _ = sqlx::raw_sql("ROLLBACK").execute(&mut **conn).await;
                    *open = false;
                }
                result
            }

            async fn send(&mut self) -> Result<()> {
                if self.queued.is_empty() {
                    return Ok(());
                }
                let sql = std::mem::take(&mut self.sql);
                let args = std::mem::take(&mut self.args);
                let queued = std::mem::take(&mut self.queued);
                if let Some(e) = self.bind_error.take() {
                    return Err(StoreError::Database(sqlx::Error::Encode(e)));
                }
                let total = queued.len();
                let first = self.sent;
                self.sent += total;
                let conn: &mut <$db as Database>::Connection = match self
                    .conn
                    .as_mut()
                    .expect("a writer's connection until commit")
                {
                    Conn::Tx(tx) => &mut **tx,
                    Conn::Manual { conn, open } => {
                        *open = true;
                        &mut **conn
                    }
                };
                let mut pending = queued.into_iter();
                let mut failed: Option<(usize, StoreError)> = None;
                let mut current: Vec<<$db as Database>::Row> = Vec::new();
                let mut done = 0usize;
                // sqlx 0.9 marks several statements in one prepared query as deprecated
                // (launchbadge/sqlx#3108: only its SQLite driver runs them); `raw_sql`,
                // its replacement, takes no parameters. Cargo.lock pins sqlx 0.9 for the
                // workspace, and every test that posts runs through here on SQLite, so a
                // change of behaviour shows.
                #[allow(deprecated)]
                let mut results = sqlx::query_with(sqlx::AssertSqlSafe(sql), args).fetch_many(conn);
                let outcome = loop {
                    let item = match results.try_next().await {
                        Ok(Some(item)) => item,
                        Ok(None) => break Ok(()),
                        // An earlier statement's failed expectation comes first, as if the
                        // statements had been sent one by one.
                        Err(e) => break Err((first + done, StoreError::from(e))),
                    };
                    match item {
                        sqlx::Either::Right(row) => current.push(row),
                        sqlx::Either::Left(result) => {
                            let Some(q) = pending.next() else {
                                break Err((
                                    first + done,
                                    StoreError::Invalid(
                                        "a batch answered more statements than it sent".into(),
                                    ),
                                ));
                            };
                            done += 1;
                            if let Some(t) = q.ticket {
                                self.rows[t] = Some(std::mem::take(&mut current));
                            } else {
                                current.clear();
                            }
                            if let Expect::Rows(n, e) = q.expect
                                && result.rows_affected() != n
                                && failed.is_none()
                            {
                                failed = Some((first + done - 1, e));
                            }
                        }
                    }
                };
                drop(results);
                let failure = match (failed, outcome) {
                    (Some(f), _) | (None, Err(f)) => Some(f),
                    (None, Ok(())) if done != total => Some((
                        first + done,
                        StoreError::Invalid(format!(
                            "a batch of {total} statements answered for {done}"
                        )),
                    )),
                    (None, Ok(())) => None,
                };
                match failure {
                    Some((at, e)) => {
                        self.failed_at = Some(at);
                        Err(e)
                    }
                    None => Ok(()),
                }
            }

            /// The connection, with everything queued sent: for statements written the
            /// plain sqlx way.
            pub(crate) async fn conn(&mut self) -> Result<&mut <$db as Database>::Connection> {
                self.flush().await?;
                Ok(self.connection())
            }

            /// Rolls back (what is queued is dropped). Errors are not reported: the
            /// caller has one already, and the transaction ends either way (sqlx rolls
            /// back a dropped transaction; a batched writer closes its connection).
            pub(crate) async fn rollback(mut self) {
                self.queued.clear();
                match self.conn.take() {
                    Some(Conn::Tx(tx)) => {
                        let _ = tx.rollback().await;
                    }
                    Some(Conn::Manual {
                        mut conn,
                        open: true,
                    }) => {
                        if sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await.is_err() {
                            conn.close_on_drop();
                        }
                    }
                    Some(Conn::Manual { open: false, .. }) | None => {}
                }
            }

            /// Sends what is queued and commits. A batched writer sends `COMMIT` with the
            /// last batch, unless a statement in it has an expectation to judge first
            /// (`COMMIT` would run before the judgement).
            pub(crate) async fn commit(mut self) -> Result<()> {
                if !self.batched()
                    || self
                        .queued
                        .iter()
                        .any(|q| matches!(q.expect, Expect::Rows(..)))
                {
                    self.flush().await?;
                }
                match self
                    .conn
                    .take()
                    .expect("a writer's connection until commit")
                {
                    Conn::Tx(tx) => tx.commit().await?,
                    manual @ Conn::Manual { .. } => {
                        self.conn = Some(manual);
                        self.stmt("COMMIT").exec(Expect::Any).await?;
                        self.flush().await?;
                        if let Some(Conn::Manual { open, .. }) = &mut self.conn {
                            *open = false;
                        }
                    }
                }
                Ok(())
            }
        }
    };
}

impl_send!(Sqlite, true);
impl_send!(Postgres, false);

#[cfg(test)]
mod tests {
    use super::renumber;

    #[test]
    fn renumbering_shifts_parameters_only() {
        let mut out = String::new();
        renumber("SELECT $1, $12 || '$' WHERE x = $2", 10, &mut out);
        assert_eq!(out, "SELECT $11, $22 || '$' WHERE x = $12");
        let mut out = String::new();
        renumber("SELECT $1", 0, &mut out);
        assert_eq!(out, "SELECT $1");
    }
}
