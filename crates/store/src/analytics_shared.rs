//! The analytics store's SQL, shared by both backends like `shared.rs` (see there for why
//! a macro). Dialect differences are passed in as SQL fragments: how the per-customer
//! scan names the visits table (SQLite is told which index to walk: with only the
//! customer index it would walk that index and look every visit up in the table, ten
//! times slower), the aggregate that lists a customer's visit dates, and whether the
//! per-customer rows are packed.
//!
//! **Packed rows (SQLite).** sqlx hands each SQLite row from the connection's thread to
//! the caller's task; for a million customer rows those hand-overs cost more than the
//! scan itself (measured by `patron bench analytics`). On SQLite the scan therefore asks
//! for a few thousand customers at a time, each batch packed into one text row (one line
//! per customer, `id visits spend dates`), resuming after the last customer of the
//! previous batch (a range seek on the covering index). PostgreSQL's rows arrive in
//! batches over the socket and are read as they are.

use crate::StoreError;
use crate::analytics::{date_of_day, parse_day};
use patron_domain::analytics::{CohortCount, CustomerStats, parse_month, visit_days};
use patron_domain::ids::CustomerId;
use patron_domain::money::Money;
use uuid::Uuid;

/// Customers per `IN (...)` list.
pub(crate) const IDS_PER_QUERY: usize = 500;

/// One row of the per-customer scan: customer, visits, spend, first and last date (when
/// the dates are not listed), the list of visit dates.
pub(crate) type StatsRow = (
    Uuid,
    i64,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// Turns a row of the per-customer scan into the domain's aggregate. `days` is a scratch
/// buffer (reused across rows).
pub(crate) fn stats_of_row(r: StatsRow, days: &mut Vec<i32>) -> Result<CustomerStats, StoreError> {
    let (id, visits, spend, first, last, list) = r;
    let bad =
        |what: &str, s: &str| StoreError::Corrupt(format!("visits.local_date ({what}): {s:?}"));
    let day = |what: &str, s: Option<String>| -> Result<i32, StoreError> {
        let s = s.unwrap_or_default();
        parse_day(s.as_bytes()).ok_or_else(|| bad(what, &s))
    };
    let (first_day, last_day, visit_days, median_interval) = match list {
        Some(list) => {
            days.clear();
            for d in list.split(',') {
                days.push(parse_day(d.as_bytes()).ok_or_else(|| bad("list", d))?);
            }
            let v = visit_days(days).ok_or_else(|| bad("list", &list))?;
            (v.first, v.last, Some(v.distinct), v.median_interval)
        }
        None => (day("first", first)?, day("last", last)?, None, None),
    };
    Ok(CustomerStats {
        customer: CustomerId(id),
        visits,
        spend: Money::from_fen(spend),
        first_visit: date_of_day(first_day),
        last_visit: date_of_day(last_day),
        visit_days,
        median_interval,
    })
}

/// Customers per packed row.
pub(crate) const PACKED_CUSTOMERS: i64 = 4096;

/// Parses one packed row: lines of `hex-id visits spend dates`, where `dates` is the
/// comma-separated list of visit dates, or `first,last` when `listed` is false.
pub(crate) fn stats_of_packed(
    packed: &str,
    listed: bool,
    days: &mut Vec<i32>,
    out: &mut Vec<CustomerStats>,
) -> Result<(), StoreError> {
    for line in packed.split('\n') {
        let bad = || StoreError::Corrupt(format!("packed customer row: {line:?}"));
        let mut f = line.splitn(4, ' ');
        let (Some(id), Some(visits), Some(spend), Some(dates)) =
            (f.next(), f.next(), f.next(), f.next())
        else {
            return Err(bad());
        };
        let id = Uuid::try_parse(id).map_err(|_| bad())?;
        let visits: i64 = visits.parse().map_err(|_| bad())?;
        let spend: i64 = spend.parse().map_err(|_| bad())?;
        let row = if listed {
            (id, visits, spend, None, None, Some(dates.to_string()))
        } else {
            let (first, last) = dates.split_once(',').ok_or_else(bad)?;
            (
                id,
                visits,
                spend,
                Some(first.to_string()),
                Some(last.to_string()),
                None,
            )
        };
        out.push(stats_of_row(row, days)?);
    }
    Ok(())
}

/// Cohort rows ("YYYY-MM" months) into month indices.
pub(crate) fn cohort_of_row(r: (String, String, i64)) -> Result<CohortCount, StoreError> {
    let month =
        |s: &str| parse_month(s).ok_or_else(|| StoreError::Corrupt(format!("visit month {s:?}")));
    Ok(CohortCount {
        first: month(&r.0)?,
        month: month(&r.1)?,
        customers: r.2.max(0) as u64,
    })
}

/// Account kinds whose balances are the customers' stored value and points.
pub(crate) const LIABILITY_KINDS: &str =
    "('card_principal', 'card_bonus', 'card_points', 'org_principal', 'org_bonus', 'org_points')";

macro_rules! impl_analytics_storage {
    ($ty:ty, $db:ty, visits_scan = $scan:literal, day_list = $days:literal, packed_rows = $packed:literal) => {
        use $crate::analytics::{
            AnalyticsStore, BasketCounts, BasketQuery, CardUsage, CustomerBrief, ItemBills, LiabilityBucket, StatsQuery,
        };
        use $crate::analytics_shared::{
            cohort_of_row, stats_of_packed, stats_of_row, StatsRow, IDS_PER_QUERY, LIABILITY_KINDS, PACKED_CUSTOMERS,
        };
        use chrono::NaiveDate;
        use patron_domain::analytics::{CohortCount, CustomerStats};
        use patron_domain::ids::{CustomerId, MenuItemId, StoreId};
        use sqlx::QueryBuilder;

        /// The visits a per-customer scan covers (after `WHERE tenant_id = ...`).
        fn push_visit_filters(b: &mut QueryBuilder<$db>, q: &StatsQuery) {
            b.push(" AND reversed_at IS NULL AND customer_id IS NOT NULL");
            if let Some(c) = q.customer {
                b.push(" AND customer_id = ").push_bind(c.0);
            }
            if let Some(c) = q.customers_to {
                b.push(" AND customer_id < ").push_bind(c.0);
            }
            if let Some(f) = q.from {
                b.push(" AND local_date >= ").push_bind(f);
            }
            b.push(" AND local_date <= ").push_bind(q.to);
            if let Some(s) = q.store {
                b.push(" AND store_id = ").push_bind(s.0);
            }
        }

        /// The filters of the checkouts a basket query covers (`c` is the checkout).
        fn push_basket_filters(b: &mut QueryBuilder<$db>, tenant: TenantId, q: &BasketQuery) {
            b.push(" WHERE c.tenant_id = ")
                .push_bind(tenant.0)
                .push(" AND c.status <> 'reversed' AND c.business_date >= ")
                .push_bind(q.from)
                .push(" AND c.business_date <= ")
                .push_bind(q.to);
            if let Some(s) = q.store {
                b.push(" AND c.store_id = ").push_bind(s.0);
            }
        }

        #[async_trait::async_trait]
        impl AnalyticsStore for $ty {
            async fn customer_stats(&self, tenant: TenantId, q: &StatsQuery) -> Result<Vec<CustomerStats>> {
                let mut days = Vec::new();
                if $packed {
                    // Batches of customers, each packed into one row (see the module's
                    // documentation), resuming after the last customer of the previous one.
                    let line = if q.with_days {
                        "hex(customer_id) || ' ' || COUNT(*) || ' ' || SUM(growth) || ' ' || group_concat(local_date)"
                    } else {
                        "hex(customer_id) || ' ' || COUNT(*) || ' ' || SUM(growth) || ' ' || MIN(local_date) || ',' || MAX(local_date)"
                    };
                    let mut out = Vec::new();
                    let mut after: Option<uuid::Uuid> = None;
                    loop {
                        let mut b = QueryBuilder::<$db>::new(format!(
                            "SELECT group_concat(line, char(10)), MAX(customer_id), COUNT(*) FROM (SELECT customer_id, {line} AS line \
                             FROM {} WHERE tenant_id = ",
                            $scan
                        ));
                        b.push_bind(tenant.0);
                        match (after, q.customers_from) {
                            (Some(a), _) => {
                                b.push(" AND customer_id > ").push_bind(a);
                            }
                            (None, Some(c)) => {
                                b.push(" AND customer_id >= ").push_bind(c.0);
                            }
                            (None, None) => {}
                        }
                        push_visit_filters(&mut b, q);
                        b.push(" GROUP BY customer_id ORDER BY customer_id LIMIT ").push_bind(PACKED_CUSTOMERS).push(")");
                        let (packed, last, n): (Option<String>, Option<uuid::Uuid>, i64) =
                            b.build_query_as().fetch_one(self.reader()).await?;
                        if let Some(p) = packed {
                            stats_of_packed(&p, q.with_days, &mut days, &mut out)?;
                        }
                        match last {
                            Some(l) if n >= PACKED_CUSTOMERS => after = Some(l),
                            _ => break,
                        }
                    }
                    // In customer order whatever order the lines came in.
                    if !out.is_sorted_by(|a, b| a.customer < b.customer) {
                        out.sort_by(|a, b| a.customer.cmp(&b.customer));
                    }
                    return Ok(out);
                }
                // With the dates listed, the first and last come from the list (cheaper than
                // two more aggregates).
                let mut b = QueryBuilder::<$db>::new("SELECT customer_id, COUNT(*), CAST(SUM(growth) AS BIGINT), ");
                b.push(if q.with_days {
                    concat!("CAST(NULL AS TEXT), CAST(NULL AS TEXT), ", $days)
                } else {
                    "CAST(MIN(local_date) AS TEXT), CAST(MAX(local_date) AS TEXT), CAST(NULL AS TEXT)"
                });
                b.push(concat!(" FROM ", $scan, " WHERE tenant_id = ")).push_bind(tenant.0);
                if let Some(c) = q.customers_from {
                    b.push(" AND customer_id >= ").push_bind(c.0);
                }
                push_visit_filters(&mut b, q);
                b.push(" GROUP BY customer_id ORDER BY customer_id");
                let rows: Vec<StatsRow> = b.build_query_as().fetch_all(self.reader()).await?;
                rows.into_iter().map(|r| stats_of_row(r, &mut days)).collect()
            }

            async fn customer_splits(&self, tenant: TenantId, parts: usize) -> Result<Vec<CustomerId>> {
                if parts < 2 {
                    return Ok(vec![]);
                }
                let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM customers WHERE tenant_id = $1")
                    .bind(tenant.0)
                    .fetch_one(self.reader())
                    .await?;
                let mut out = Vec::with_capacity(parts - 1);
                for k in 1..parts as i64 {
                    let at = n * k / parts as i64;
                    let id: Option<uuid::Uuid> =
                        sqlx::query_scalar("SELECT id FROM customers WHERE tenant_id = $1 ORDER BY id LIMIT 1 OFFSET $2")
                            .bind(tenant.0)
                            .bind(at)
                            .fetch_optional(self.reader())
                            .await?;
                    if let Some(id) = id.map(CustomerId)
                        && out.last().is_none_or(|l| *l < id)
                    {
                        out.push(id);
                    }
                }
                Ok(out)
            }

            async fn cohort_counts(
                &self,
                tenant: TenantId,
                store: Option<StoreId>,
                from_month: &str,
                to: NaiveDate,
            ) -> Result<Vec<CohortCount>> {
                let mut b = QueryBuilder::<$db>::new(concat!(
                    "WITH cm AS (SELECT customer_id, substr(CAST(local_date AS TEXT), 1, 7) AS m FROM ",
                    $scan,
                    " WHERE tenant_id = "
                ));
                b.push_bind(tenant.0)
                    .push(" AND reversed_at IS NULL AND customer_id IS NOT NULL AND local_date <= ")
                    .push_bind(to);
                if let Some(s) = store {
                    b.push(" AND store_id = ").push_bind(s.0);
                }
                b.push(
                    " GROUP BY customer_id, m), f AS (SELECT customer_id, MIN(m) AS first FROM cm GROUP BY customer_id) \
                     SELECT f.first, cm.m, COUNT(*) FROM cm JOIN f ON f.customer_id = cm.customer_id WHERE f.first >= ",
                )
                .push_bind(from_month.to_string())
                .push(" GROUP BY f.first, cm.m ORDER BY f.first, cm.m");
                let rows: Vec<(String, String, i64)> = b.build_query_as().fetch_all(self.reader()).await?;
                rows.into_iter().map(cohort_of_row).collect()
            }

            async fn basket_counts(&self, tenant: TenantId, q: &BasketQuery) -> Result<BasketCounts> {
                const LINE: &str = "l.tenant_id = c.tenant_id AND l.checkout_id = c.id AND l.item_id IS NOT NULL \
                                    AND l.refunded_quantity < l.quantity";
                let mut b = QueryBuilder::<$db>::new(format!(
                    "SELECT l.item_id, MAX(l.name), COUNT(DISTINCT l.checkout_id) FROM checkouts c JOIN checkout_lines l ON {LINE}"
                ));
                push_basket_filters(&mut b, tenant, q);
                b.push(" GROUP BY l.item_id");
                let items: Vec<(uuid::Uuid, String, i64)> = b.build_query_as().fetch_all(self.reader()).await?;

                let mut b = QueryBuilder::<$db>::new(format!(
                    "SELECT COUNT(DISTINCT c.id) FROM checkouts c JOIN checkout_lines l ON {LINE}"
                ));
                push_basket_filters(&mut b, tenant, q);
                let baskets: i64 = b.build_query_scalar().fetch_one(self.reader()).await?;

                let mut b = QueryBuilder::<$db>::new(format!(
                    "SELECT l.item_id, m.item_id, COUNT(DISTINCT c.id) FROM checkouts c JOIN checkout_lines l ON {LINE} \
                     JOIN checkout_lines m ON m.tenant_id = l.tenant_id AND m.checkout_id = l.checkout_id \
                     AND m.item_id > l.item_id AND m.refunded_quantity < m.quantity"
                ));
                push_basket_filters(&mut b, tenant, q);
                b.push(" GROUP BY l.item_id, m.item_id HAVING COUNT(DISTINCT c.id) >= ")
                    .push_bind(q.min_together.max(1));
                let pairs: Vec<(uuid::Uuid, uuid::Uuid, i64)> = b.build_query_as().fetch_all(self.reader()).await?;
                Ok(BasketCounts {
                    baskets,
                    items: items
                        .into_iter()
                        .map(|(item, name, bills)| ItemBills { item: MenuItemId(item), name, bills })
                        .collect(),
                    pairs: pairs.into_iter().map(|(a, b, n)| (MenuItemId(a), MenuItemId(b), n)).collect(),
                })
            }

            async fn level_counts(&self, tenant: TenantId) -> Result<Vec<(Option<String>, i64)>> {
                Ok(sqlx::query_as(
                    "SELECT level, COUNT(*) FROM customers WHERE tenant_id = $1 AND merged_into IS NULL \
                     GROUP BY level ORDER BY level",
                )
                .bind(tenant.0)
                .fetch_all(self.reader())
                .await?)
            }

            async fn liability_buckets(
                &self,
                tenant: TenantId,
                store: Option<StoreId>,
                bounds: &[DateTime<Utc>],
            ) -> Result<Vec<LiabilityBucket>> {
                let Some(last) = bounds.last() else { return Ok(vec![]) };
                let mut b = QueryBuilder::<$db>::new("SELECT a.kind, CAST(CASE");
                for (i, t) in bounds.iter().enumerate() {
                    b.push(" WHEN e.created_at < ").push_bind(*t).push(format!(" THEN {i}"));
                }
                b.push(
                    " END AS BIGINT) AS bucket, CAST(SUM(e.amount) AS BIGINT) FROM ledger_entries e \
                     JOIN ledger_accounts a ON a.tenant_id = e.tenant_id AND a.id = e.account_id WHERE e.tenant_id = ",
                )
                .push_bind(tenant.0)
                .push(format!(" AND a.kind IN {LIABILITY_KINDS} AND e.created_at < "))
                .push_bind(*last);
                if let Some(s) = store {
                    b.push(" AND e.store_id = ").push_bind(s.0);
                }
                b.push(" GROUP BY a.kind, bucket");
                let rows: Vec<(String, i64, i64)> = b.build_query_as().fetch_all(self.reader()).await?;
                Ok(rows
                    .into_iter()
                    .map(|(kind, bucket, amount)| LiabilityBucket { kind, bucket: bucket.max(0) as usize, amount })
                    .collect())
            }

            async fn card_usage(
                &self,
                tenant: TenantId,
                from: DateTime<Utc>,
                until: DateTime<Utc>,
                from_date: NaiveDate,
                to_date: NaiveDate,
            ) -> Result<Vec<CardUsage>> {
                let rows: Vec<(String, i64, i64)> = sqlx::query_as(
                    "SELECT c.status, COUNT(*), COUNT(u.card_id) FROM cards c LEFT JOIN (\
                       SELECT card_id FROM visits WHERE tenant_id = $1 AND local_date >= $4 AND local_date <= $5 \
                       AND reversed_at IS NULL AND card_id IS NOT NULL \
                       UNION SELECT card_id FROM ledger_txns WHERE tenant_id = $1 AND kind = 'top_up' \
                       AND created_at >= $2 AND created_at < $3 AND card_id IS NOT NULL\
                     ) u ON u.card_id = c.id \
                     WHERE c.tenant_id = $1 AND c.issued_at < $3 GROUP BY c.status ORDER BY c.status",
                )
                .bind(tenant.0)
                .bind(from)
                .bind(until)
                .bind(from_date)
                .bind(to_date)
                .fetch_all(self.reader())
                .await?;
                Ok(rows.into_iter().map(|(status, cards, used)| CardUsage { status, cards, used }).collect())
            }

            async fn customer_briefs(&self, tenant: TenantId, ids: &[CustomerId]) -> Result<Vec<CustomerBrief>> {
                let mut out = Vec::with_capacity(ids.len());
                for chunk in ids.chunks(IDS_PER_QUERY) {
                    let mut b = QueryBuilder::<$db>::new("SELECT id, name, phone, level FROM customers WHERE tenant_id = ");
                    b.push_bind(tenant.0).push(" AND id IN (");
                    let mut sep = b.separated(", ");
                    for id in chunk {
                        sep.push_bind(id.0);
                    }
                    b.push(")");
                    let rows: Vec<(uuid::Uuid, String, Option<String>, Option<String>)> =
                        b.build_query_as().fetch_all(self.reader()).await?;
                    out.extend(
                        rows.into_iter()
                            .map(|(id, name, phone, level)| CustomerBrief { id: CustomerId(id), name, phone, level }),
                    );
                }
                Ok(out)
            }
        }
    };
}
pub(crate) use impl_analytics_storage;
