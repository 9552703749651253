//! The PostgreSQL backend: the scale-out store. The schema keeps tenant_id leading every
//! primary and foreign key so a Citus cluster can distribute the tables by tenant.

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use std::time::Duration;

/// PostgreSQL storage over one connection pool.
#[derive(Clone)]
pub struct PgStorage {
    pool: PgPool,
}

/// A pooled connection idle longer than this is pinged before use.
const IDLE_PING_AFTER_SECS: u64 = 30;

impl PgStorage {
    pub async fn connect(url: &str) -> Result<Self, crate::StoreError> {
        // The ledger's writer sends values as quoted literals (writer.rs): a quote inside
        // one is doubled, which is the whole escaping only with standard strings, so
        // every connection has them whatever the server's default.
        let options: PgConnectOptions = url
            .parse::<PgConnectOptions>()?
            .options([("standard_conforming_strings", "on")]);
        let pool = PgPoolOptions::new()
            .max_connections(32)
            .acquire_timeout(Duration::from_secs(10))
            // sqlx pings every connection it hands out by default: one more round trip
            // for each query and each transaction (a bill made ten). A connection in
            // steady use is known to be alive; one idle for a while (the server may have
            // restarted or dropped it) is still pinged, and replaced if it fails.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for > Duration::from_secs(IDLE_PING_AFTER_SECS) {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
            .connect_with(options)
            .await?;
        Ok(Self { pool })
    }

    /// The pool, for tests and benchmarks that measure the bare database.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    fn reader(&self) -> &PgPool {
        &self.pool
    }
    fn writer(&self) -> &PgPool {
        &self.pool
    }
    fn commit_sharing_now(&self) -> Option<(u64, u64)> {
        None
    }
    /// None: PostgreSQL has many writers, so none knows what the others left.
    fn predictions(&self) -> Option<&std::sync::Mutex<crate::predictions::Predictions>> {
        None
    }
    /// A ledger post's writer: a transaction of its own (the server groups commits).
    async fn post_writer(&self) -> crate::Result<crate::writer::Writer<'static, sqlx::Postgres>> {
        crate::writer::Writer::<sqlx::Postgres>::begin(&self.pool).await
    }
    async fn run_migrations(&self) -> Result<(), crate::StoreError> {
        sqlx::migrate!("./migrations/postgres")
            .run(&self.pool)
            .await?;
        Ok(())
    }
}

crate::shared::impl_storage!(
    PgStorage,
    sqlx::Postgres,
    Backend::Postgres,
    month_of_birthday = "CAST(EXTRACT(MONTH FROM birthday) AS INTEGER)"
);

mod ledger_impl {
    use super::*;
    use crate::ledger::{AccountRecord, EntryRecord, TxnRecord};
    use crate::rows::CardRow;
    use crate::{Result, StoreError};
    use chrono::{DateTime, Utc};
    use patron_domain::card::Card;
    use patron_domain::ids::TenantId;
    crate::ledger_shared::impl_ledger_storage!(PgStorage, sqlx::Postgres);
}

mod loyalty_impl {
    use super::*;
    use crate::{Result, StoreError};
    use patron_domain::ids::TenantId;
    crate::loyalty_shared::impl_loyalty_storage!(PgStorage, sqlx::Postgres);
}

mod menu_impl {
    use super::*;
    crate::menu_shared::impl_menu_storage!(PgStorage, sqlx::Postgres);
}

mod audit_impl {
    use super::*;
    use crate::{Result, Session, StoreError};
    use chrono::{DateTime, Utc};
    use patron_domain::ids::TenantId;
    crate::audit_shared::impl_audit_storage!(PgStorage, sqlx::Postgres);
}

mod coupons_impl {
    use super::*;
    use crate::{Result, StoreError};
    use chrono::{DateTime, Utc};
    use patron_domain::ids::TenantId;
    crate::coupons_shared::impl_coupon_storage!(PgStorage, sqlx::Postgres);
}

mod settlement_impl {
    use super::*;
    use crate::{Result, StoreError};
    use chrono::{DateTime, Utc};
    use patron_domain::ids::TenantId;
    crate::settlement_shared::impl_settlement_storage!(
        PgStorage,
        sqlx::Postgres,
        original_kind = "(t.data::jsonb ->> 'original_kind')"
    );
}

mod analytics_impl {
    use super::*;
    use crate::Result;
    use chrono::{DateTime, Utc};
    use patron_domain::ids::TenantId;
    crate::analytics_shared::impl_analytics_storage!(
        PgStorage,
        sqlx::Postgres,
        visits_scan = "visits",
        day_list = "string_agg(CAST(local_date AS TEXT), ',')",
        packed_rows = false
    );
}
