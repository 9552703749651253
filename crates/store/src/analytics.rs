//! Storage for customer value analytics: aggregates only. The big queries group the
//! visits by customer in the database and return one row per customer (never one per
//! visit); the rules that turn the aggregates into quadrants, scores and risks are in
//! `patron_domain::analytics`.
//!
//! Visits count when they are not reversed and belong to a known customer; spend is their
//! growth value (money paid; partial refunds reduce it). Periods are local dates,
//! inclusive. Migration `0008_analytics.sql` adds the covering index the per-customer
//! scan reads (`visits_value_idx`: customer, date, growth, store of the non-reversed
//! visits), so the scan never touches the table.

use crate::Result;
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use patron_domain::analytics::{CohortCount, CustomerStats};
use patron_domain::ids::{CustomerId, MenuItemId, StoreId, TenantId};

/// Which visits a per-customer aggregate covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatsQuery {
    /// First local date (inclusive); `None`: from the first visit.
    pub from: Option<NaiveDate>,
    /// Last local date (inclusive).
    pub to: NaiveDate,
    /// One store's visits; `None`: the whole chain.
    pub store: Option<StoreId>,
    /// One customer only (the customer 360).
    pub customer: Option<CustomerId>,
    /// Customers with ids in `[customers_from, customers_to)` only: a part of the scan,
    /// so that parts can run side by side (see [`AnalyticsStore::customer_splits`]).
    pub customers_from: Option<CustomerId>,
    pub customers_to: Option<CustomerId>,
    /// Also read each customer's visit days, for the intervals of the churn watch (a
    /// list of dates per customer row: costs more).
    pub with_days: bool,
}

/// Which bills the dish affinity reads: checkouts of a period of business days, not
/// reversed; lines of menu items not wholly refunded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BasketQuery {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub store: Option<StoreId>,
    /// Pairs bought together on fewer bills are left out.
    pub min_together: i64,
}

/// A dish and the number of bills it is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemBills {
    pub item: MenuItemId,
    /// A name from its bill lines (the dish may have been renamed since).
    pub name: String,
    pub bills: i64,
}

/// What the dish affinity is computed from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BasketCounts {
    /// Bills with at least one menu item.
    pub baskets: i64,
    pub items: Vec<ItemBills>,
    /// (a, b, bills with both), a < b.
    pub pairs: Vec<(MenuItemId, MenuItemId, i64)>,
}

/// What a customer list shows of each customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerBrief {
    pub id: CustomerId,
    pub name: String,
    pub phone: Option<String>,
    pub level: Option<String>,
}

/// Cards of one status, and how many of them were used in a window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardUsage {
    pub status: String,
    pub cards: i64,
    pub used: i64,
}

/// The change of the balances of one kind of customer account within one bucket of a
/// liability series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiabilityBucket {
    /// card_principal, card_bonus, card_points, org_principal, org_bonus, org_points.
    pub kind: String,
    /// 0: before the first bound; i: in `[bounds[i-1], bounds[i])`.
    pub bucket: usize,
    pub amount: i64,
}

#[async_trait]
pub trait AnalyticsStore: Send + Sync {
    /// Per-customer aggregates of the visits a query covers (one GROUP BY), customers in
    /// id order.
    async fn customer_stats(&self, tenant: TenantId, q: &StatsQuery) -> Result<Vec<CustomerStats>>;
    /// Customer ids that cut the tenant's customers into `parts` ranges of about the same
    /// size (ascending, at most `parts - 1` of them), to scan the ranges side by side.
    async fn customer_splits(&self, tenant: TenantId, parts: usize) -> Result<Vec<CustomerId>>;
    /// For retention cohorts: per (month of the customer's first visit, month with a
    /// visit), the customers; first months from `from_month` ("YYYY-MM"), visits up to
    /// `to`. The first visit is looked for in the whole history (of the store).
    async fn cohort_counts(
        &self,
        tenant: TenantId,
        store: Option<StoreId>,
        from_month: &str,
        to: NaiveDate,
    ) -> Result<Vec<CohortCount>>;
    /// Bills, bills per dish and bills per pair of dishes.
    async fn basket_counts(&self, tenant: TenantId, q: &BasketQuery) -> Result<BasketCounts>;
    /// Customers (not merged) per level code (`None`: no level).
    async fn level_counts(&self, tenant: TenantId) -> Result<Vec<(Option<String>, i64)>>;
    /// Changes of the customer-side balances (stored value and points) per account kind
    /// and bucket of time (see [`LiabilityBucket`]); entries at or after the last bound
    /// are left out. `store`: entries made at that store only.
    async fn liability_buckets(
        &self,
        tenant: TenantId,
        store: Option<StoreId>,
        bounds: &[DateTime<Utc>],
    ) -> Result<Vec<LiabilityBucket>>;
    /// Cards issued before `until` per status, and of them those used in `[from, until)`
    /// local dates `[from_date, to_date]`: a non-reversed visit with the card, or a top-up.
    async fn card_usage(
        &self,
        tenant: TenantId,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
        from_date: NaiveDate,
        to_date: NaiveDate,
    ) -> Result<Vec<CardUsage>>;
    /// Name, phone and level of the given customers (any order; unknown ids are skipped).
    async fn customer_briefs(
        &self,
        tenant: TenantId,
        ids: &[CustomerId],
    ) -> Result<Vec<CustomerBrief>>;
}

/// Days since 1970-01-01 of a civil date (H. Hinnant's algorithm): the visit dates of a
/// customer row are parsed by hand, millions of them per report.
pub(crate) fn days_from_civil(y: i32, m: u32, d: u32) -> i32 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i32;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i32 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The day number of a "YYYY-MM-DD" date (anything after the day is ignored).
pub(crate) fn parse_day(s: &[u8]) -> Option<i32> {
    if s.len() < 10 || s[4] != b'-' || s[7] != b'-' {
        return None;
    }
    let num = |r: &[u8]| -> Option<u32> {
        r.iter().try_fold(0u32, |acc, b| {
            b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0'))
        })
    };
    let (y, m, d) = (num(&s[0..4])?, num(&s[5..7])?, num(&s[8..10])?);
    ((1..=12).contains(&m) && (1..=31).contains(&d)).then(|| days_from_civil(y as i32, m, d))
}

/// The date of a day number.
pub(crate) fn date_of_day(day: i32) -> NaiveDate {
    NaiveDate::from_num_days_from_ce_opt(day + 719_163).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_numbers_agree_with_chrono() {
        let mut d = NaiveDate::from_ymd_opt(1999, 12, 25).unwrap();
        for _ in 0..20_000 {
            let s = d.to_string();
            let n = parse_day(s.as_bytes()).unwrap();
            assert_eq!(n, patron_domain::analytics::day_number(d), "{s}");
            assert_eq!(date_of_day(n), d);
            d = d.succ_opt().unwrap();
        }
        assert_eq!(parse_day(b"2026-13-01"), None);
        assert_eq!(parse_day(b"2026-1-01"), None);
    }

    #[test]
    fn packed_rows_unpack() {
        use crate::analytics_shared::stats_of_packed;
        let a = "0195F0A0000070008000000000000001";
        let b = "0195F0A0000070008000000000000002";
        let mut out = Vec::new();
        let mut days = Vec::new();
        // Listed dates, in any order and with a repeated day.
        let packed = format!("{a} 3 30000 2026-01-20,2026-01-01,2026-01-20\n{b} 1 500 2026-02-02");
        stats_of_packed(&packed, true, &mut days, &mut out).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].customer.0, uuid::Uuid::parse_str(a).unwrap());
        assert_eq!(
            (out[0].visits, out[0].spend.fen(), out[0].visit_days),
            (3, 30_000, Some(2))
        );
        assert_eq!(
            out[0].first_visit,
            NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()
        );
        assert_eq!(
            out[0].last_visit,
            NaiveDate::from_ymd_opt(2026, 1, 20).unwrap()
        );
        assert_eq!(
            out[0].median_interval,
            Some(patron_domain::analytics::Ratio::int(19))
        );
        assert_eq!(out[1].median_interval, None);
        // First and last only.
        out.clear();
        stats_of_packed(
            &format!("{a} 2 100 2026-01-01,2026-03-01"),
            false,
            &mut days,
            &mut out,
        )
        .unwrap();
        assert_eq!(
            (out[0].visit_days, out[0].last_visit),
            (None, NaiveDate::from_ymd_opt(2026, 3, 1).unwrap())
        );
        assert!(
            stats_of_packed(&format!("{a} x 100 2026-01-01"), true, &mut days, &mut out).is_err()
        );
        assert!(stats_of_packed("garbage", true, &mut days, &mut out).is_err());
    }
}
