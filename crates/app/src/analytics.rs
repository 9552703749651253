//! Customer value analytics (PRODUCT §4): contribution quadrants and their migration
//! between periods, RFM, the value pyramid and lifetime value, the churn watch, card
//! liveness, retention cohorts, dish affinity, level distribution and the stored-value
//! and points liability over time.
//!
//! Every report is built from aggregates (`patron_store::analytics`): the visits of the
//! period grouped by customer in one query, never the visits themselves. The rules are
//! pure functions in `patron_domain::analytics` (see there for every definition: medians,
//! ties, quintiles, tiers, lifetime value, the churn rule).
//!
//! Who sees what: the reports need `view_reports`; staff bound to a store without
//! `chain_reports` (a store manager) see their own store only. Phone numbers in customer
//! lists are masked unless the actor may see personal data (`view_personal_data`, and
//! `export_personal_data` for files). A customer's own value figures (the customer 360)
//! need `view_customers`.
//!
//! The customer 360 compares the customer's live figures with the chain's medians and
//! quintile breakpoints of the last 365 days, computed at most [`SNAPSHOT_TTL`] ago
//! (`population.computed_at` in the answer): scoring one customer must not rescan a
//! million customers' visits on every look-up.

use crate::{Actor, App, AppError, now};
use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use patron_domain::ValidationErrors;
use patron_domain::analytics::{
    self as rules, ChurnRule, Cohort, CustomerStats, MIGRATION_STATES, NO_VISITS, Population,
    Quadrant, Ratio, Rfm, Thresholds, Tier, TierSizes,
};
use patron_domain::ids::{CustomerId, MenuItemId, StoreId, TenantId};
use patron_domain::money::Money;
use patron_domain::org::Store;
use patron_domain::page::PageRequest;
use patron_domain::permissions::Permission;
use patron_domain::phone::Phone;
use patron_domain::settings::TenantSettings;
use patron_store::analytics::{BasketQuery, CustomerBrief, StatsQuery};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, LazyLock, Mutex};
use utoipa::ToSchema;

/// The default period: the 365 days up to today.
const DEFAULT_DAYS: i64 = 365;
/// The longest period a report covers.
const MAX_DAYS: i64 = 3660;
/// Scatter points a quadrant report returns by default, and at most.
pub const DEFAULT_POINTS: usize = 2000;
pub const MAX_POINTS: usize = 20_000;
/// How old the chain's figures behind a customer's value may be.
pub const SNAPSHOT_TTL: std::time::Duration = std::time::Duration::from_secs(600);
/// Points of a liability series, at most.
const MAX_SERIES_POINTS: usize = 400;
/// Cohorts of one report, at most.
const MAX_COHORTS: i32 = 60;
/// Excel's row limit (header included).
const XLSX_MAX_ROWS: usize = 1_048_576;

fn invalid(field: &str, code: &'static str, message: impl Into<String>) -> AppError {
    ValidationErrors::single(field, code, message).into()
}

// ---------------------------------------------------------------------------------------
// Parameters.

/// A period and a scope, with optional quadrant thresholds (the query of most reports).
#[derive(Debug, Clone, Default)]
pub struct ValueQuery {
    /// First local date (default: 364 days before `to`).
    pub from: Option<NaiveDate>,
    /// Last local date, inclusive (default: today).
    pub to: Option<NaiveDate>,
    /// A store's code or id (default: the chain).
    pub store: Option<String>,
    /// Visits; more is high frequency (default: the median). A decimal.
    pub freq_threshold: Option<String>,
    /// Fen per visit; more is high spend (default: the median). A decimal.
    pub spend_threshold: Option<String>,
    /// Pyramid tier sizes (default 1%, 4%, 15%).
    pub tiers: TierSizes,
    /// Years of the lifetime value (default 3).
    pub ltv_years: u32,
}

impl ValueQuery {
    pub fn new() -> ValueQuery {
        ValueQuery {
            ltv_years: 3,
            ..Default::default()
        }
    }
}

/// Parses "100,400,1500" (basis points of the customers in platinum, gold, iron).
pub fn parse_tiers(s: &str) -> Result<TierSizes, AppError> {
    let bad = || {
        invalid(
            "tiers",
            "invalid_tiers",
            "tiers are three sizes in basis points, e.g. 100,400,1500 (1%, 4%, 15%), together at most 10000",
        )
    };
    let v: Vec<u32> = s
        .split(',')
        .map(|x| x.trim().parse::<u32>())
        .collect::<Result<_, _>>()
        .map_err(|_| bad())?;
    let [platinum_bp, gold_bp, iron_bp] = v[..] else {
        return Err(bad());
    };
    let t = TierSizes {
        platinum_bp,
        gold_bp,
        iron_bp,
    };
    if t.is_valid() { Ok(t) } else { Err(bad()) }
}

/// Two periods to compare.
#[derive(Debug, Clone, Default)]
pub struct MigrationQuery {
    pub a_from: Option<NaiveDate>,
    pub a_to: Option<NaiveDate>,
    pub b_from: Option<NaiveDate>,
    pub b_to: Option<NaiveDate>,
    pub store: Option<String>,
    /// Applied to both periods when given (default: each period's medians).
    pub freq_threshold: Option<String>,
    pub spend_threshold: Option<String>,
}

/// The churn watch's query.
#[derive(Debug, Clone, Default)]
pub struct ChurnQuery {
    /// The day the gaps are measured to (default: today).
    pub as_of: Option<NaiveDate>,
    /// Visits from this day on count (default: the whole history).
    pub from: Option<NaiveDate>,
    pub store: Option<String>,
    /// The multiple of the median interval, a decimal (default 2).
    pub k: Option<String>,
    /// Distinct visit days needed (default 3).
    pub min_visits: Option<u32>,
}

/// Which customers of a report a list shows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Listing {
    Page(PageRequest),
    /// Every one (a file export).
    All,
}

/// A filter on RFM scores (each 1–5, any when absent).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RfmFilter {
    pub r: Option<u8>,
    pub f: Option<u8>,
    pub m: Option<u8>,
}

// ---------------------------------------------------------------------------------------
// Views.

/// A period of local dates, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct Period {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub days: i64,
}

impl Period {
    fn new(from: NaiveDate, to: NaiveDate, field: &str) -> Result<Period, AppError> {
        let days = (to - from).num_days() + 1;
        if days < 1 {
            return Err(invalid(
                field,
                "invalid_period",
                "the period ends before it starts",
            ));
        }
        if days > MAX_DAYS {
            return Err(invalid(
                field,
                "period_too_long",
                format!("a period covers at most {MAX_DAYS} days"),
            ));
        }
        Ok(Period { from, to, days })
    }
    fn of(
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
        today: NaiveDate,
    ) -> Result<Period, AppError> {
        let to = to.unwrap_or(today);
        Period::new(
            from.unwrap_or(to - Duration::days(DEFAULT_DAYS - 1)),
            to,
            "from",
        )
    }
}

/// The store a report covers (absent: the chain).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct StoreRef {
    pub id: StoreId,
    pub code: String,
    pub name: String,
}

fn store_ref(s: &Option<Store>) -> Option<StoreRef> {
    s.as_ref().map(|s| StoreRef {
        id: s.id,
        code: s.code.clone(),
        name: s.name.clone(),
    })
}

/// The thresholds a quadrant report used. Customers strictly above a threshold are
/// high; the comparison uses the exact values (a median of averages is a fraction).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ThresholdsView {
    /// Visits in the period (a half for the median of an even count).
    pub frequency: f64,
    /// Fen per visit, rounded half up to the fen.
    pub average_spend: Money,
    /// "median" or "given".
    pub frequency_source: String,
    pub spend_source: String,
}

/// One quadrant's figures.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct QuadrantView {
    pub quadrant: Quadrant,
    pub label_zh: String,
    pub label_en: String,
    pub customers: u64,
    /// Of the active customers, basis points.
    pub customer_share_bp: i64,
    pub visits: i64,
    pub revenue: Money,
    /// Of the period's revenue from known customers, basis points.
    pub revenue_share_bp: i64,
    /// Revenue ÷ visits, rounded half up.
    pub average_spend: Money,
}

/// One customer on the scatter plot.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ScatterPoint {
    pub customer_id: CustomerId,
    pub visits: i64,
    /// Rounded half up.
    pub average_spend: Money,
    pub quadrant: Quadrant,
}

/// Points for a scatter chart: every customer, or an evenly spaced sample of them (in
/// customer order) when there are more than asked for.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ScatterPoints {
    pub total: u64,
    pub sampled: bool,
    pub items: Vec<ScatterPoint>,
}

/// The contribution quadrants of a period.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct QuadrantReport {
    pub period: Period,
    pub store: Option<StoreRef>,
    /// Absent when nobody visited and no thresholds were given.
    pub thresholds: Option<ThresholdsView>,
    pub active_customers: u64,
    pub visits: i64,
    pub revenue: Money,
    /// B, A, D, C.
    pub quadrants: Vec<QuadrantView>,
    pub points: ScatterPoints,
}

/// A customer in a value list.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CustomerValueRow {
    pub customer_id: CustomerId,
    pub name: String,
    /// Masked unless the actor may see personal data.
    pub phone: Option<String>,
    pub level: Option<String>,
    pub visits: i64,
    pub spend: Money,
    /// Rounded half up.
    pub average_spend: Money,
    pub first_visit: NaiveDate,
    pub last_visit: NaiveDate,
    pub quadrant: Quadrant,
    pub rfm: Rfm,
    pub tier: Tier,
    pub lifetime_value: Money,
}

/// A page of a customer list (or all of it, for a file).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CustomerList {
    pub period: Period,
    pub store: Option<StoreRef>,
    /// Customers in the list (all pages).
    pub total: u64,
    pub page: u32,
    pub per_page: u32,
    pub has_more: bool,
    /// By spend, highest first.
    pub items: Vec<CustomerValueRow>,
}

/// One period of a migration.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct MigrationSide {
    pub period: Period,
    pub thresholds: Option<ThresholdsView>,
    pub active_customers: u64,
    /// Customers per quadrant: B, A, D, C.
    pub quadrants: Vec<QuadrantCount>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct QuadrantCount {
    pub quadrant: Quadrant,
    pub customers: u64,
}

/// One row of a migration matrix: where the customers of one state in period A were in
/// period B.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct MigrationRowView {
    /// B, A, D, C or none (no visits in period A).
    pub from: String,
    /// Customers per state in period B, in the order of `states`.
    pub to: Vec<u64>,
    pub total: u64,
}

/// The migration matrix between two periods.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct MigrationReport {
    pub store: Option<StoreRef>,
    pub a: MigrationSide,
    pub b: MigrationSide,
    /// Row and column order: B, A, D, C, none.
    pub states: Vec<String>,
    pub rows: Vec<MigrationRowView>,
    /// The goal of the marketing: A and D customers who became B.
    pub a_to_b: u64,
    pub d_to_b: u64,
    /// B customers who dropped to another quadrant or stopped coming.
    pub b_lost: u64,
}

/// A customer behind a cell of the migration matrix.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct MigrationCustomer {
    pub customer_id: CustomerId,
    pub name: String,
    pub phone: Option<String>,
    pub level: Option<String>,
    pub a_quadrant: Option<Quadrant>,
    pub a_visits: i64,
    pub a_spend: Money,
    pub b_quadrant: Option<Quadrant>,
    pub b_visits: i64,
    pub b_spend: Money,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct MigrationList {
    pub from: String,
    pub to: String,
    pub total: u64,
    pub page: u32,
    pub per_page: u32,
    pub has_more: bool,
    /// By period-B spend, then period-A spend, highest first.
    pub items: Vec<MigrationCustomer>,
}

/// Customers per RFM cell.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct RfmCell {
    /// "543": recency, frequency, monetary.
    pub code: String,
    pub customers: u64,
    pub spend: Money,
}

/// RFM scores of a period's customers.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct RfmReport {
    pub period: Period,
    pub store: Option<StoreRef>,
    pub customers: u64,
    /// Customers per score 1..5 of each dimension.
    pub recency: Vec<u64>,
    pub frequency: Vec<u64>,
    pub monetary: Vec<u64>,
    /// `recency_frequency[r-1][f-1]`: customers (a heat map).
    pub recency_frequency: Vec<Vec<u64>>,
    /// Non-empty cells, best code first.
    pub cells: Vec<RfmCell>,
}

/// A tier of the value pyramid.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TierView {
    pub tier: Tier,
    pub label_zh: String,
    pub customers: u64,
    pub spend: Money,
    /// Of the period's spend, basis points.
    pub spend_share_bp: i64,
    /// The least a customer of the tier spent (absent for an empty tier).
    pub min_spend: Option<Money>,
    /// Σ lifetime value of the tier's customers.
    pub lifetime_value: Money,
}

/// The value pyramid of a period.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PyramidReport {
    pub period: Period,
    pub store: Option<StoreRef>,
    pub customers: u64,
    pub sizes: TierSizes,
    pub ltv_years: u32,
    pub tiers: Vec<TierView>,
}

/// A customer the churn watch flags.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ChurnRow {
    pub customer_id: CustomerId,
    pub name: String,
    pub phone: Option<String>,
    pub level: Option<String>,
    pub visits: i64,
    pub visit_days: u32,
    pub spend: Money,
    pub last_visit: NaiveDate,
    pub days_since_last: i64,
    /// A half for an even number of intervals.
    pub median_interval_days: f64,
    /// Days since the last visit ÷ the median interval, basis points.
    pub overdue_bp: i64,
    /// What the customer spends in a year at their own rhythm.
    pub value_at_risk: Money,
}

/// The churn watch: regular customers overdue by their own rhythm, most valuable first.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ChurnReport {
    pub as_of: NaiveDate,
    pub from: Option<NaiveDate>,
    pub store: Option<StoreRef>,
    pub rule: ChurnRule,
    /// Customers the rule applies to (enough distinct visit days).
    pub considered: u64,
    pub at_risk: u64,
    pub value_at_risk: Money,
    pub page: u32,
    pub per_page: u32,
    pub has_more: bool,
    pub items: Vec<ChurnRow>,
}

/// Cards issued, and how many are alive.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CardLiveness {
    pub as_of: NaiveDate,
    pub days: u32,
    pub issued: i64,
    /// Issued and not closed.
    pub open: i64,
    /// Used in the window: a visit with the card, or a top-up.
    pub used: i64,
    /// used ÷ issued, basis points.
    pub liveness_bp: i64,
    /// Used open cards ÷ open cards, basis points.
    pub open_liveness_bp: i64,
    pub by_status: Vec<CardStatusCount>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CardStatusCount {
    pub status: String,
    pub cards: i64,
    pub used: i64,
}

/// Retention cohorts.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CohortReport {
    /// YYYY-MM.
    pub from: String,
    pub to: String,
    pub store: Option<StoreRef>,
    pub cohorts: Vec<Cohort>,
}

/// A dish in a pair.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DishRef {
    pub item_id: MenuItemId,
    pub name: String,
}

/// Two dishes bought together.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PairView {
    pub a: DishRef,
    pub b: DishRef,
    pub together: u64,
    pub a_bills: u64,
    pub b_bills: u64,
    pub support_bp: i64,
    /// P(b | a).
    pub confidence_ab_bp: i64,
    /// P(a | b).
    pub confidence_ba_bp: i64,
    /// Above 10000: together more often than chance.
    pub lift_bp: i64,
}

/// Which dishes go together.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AffinityReport {
    pub period: Period,
    pub store: Option<StoreRef>,
    /// Bills with at least one menu item.
    pub baskets: i64,
    pub min_together: i64,
    /// By lift, then bills together, highest first.
    pub pairs: Vec<PairView>,
}

/// Customers per member level.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct LevelShare {
    /// The level's code; absent for customers without a level.
    pub level: Option<String>,
    pub name: String,
    pub customers: i64,
    pub share_bp: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct LevelDistribution {
    pub customers: i64,
    /// In the settings' level order, then unknown codes, then no level.
    pub levels: Vec<LevelShare>,
}

/// The customers' stored value and points at the end of one day.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct LiabilityPoint {
    /// The balances at the end of this local day.
    pub date: NaiveDate,
    pub principal: Money,
    pub bonus: Money,
    /// principal + bonus.
    pub stored_value: Money,
    pub points: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct LiabilitySeries {
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// day, week or month.
    pub step: String,
    pub store: Option<StoreRef>,
    pub points: Vec<LiabilityPoint>,
}

/// A customer's standing in the chain (the customer 360's value panel).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CustomerValue {
    pub customer_id: CustomerId,
    /// The last 365 days.
    pub period: Period,
    pub visits: i64,
    pub spend: Money,
    pub average_spend: Money,
    pub last_visit: Option<NaiveDate>,
    /// Absent without visits in the period.
    pub quadrant: Option<Quadrant>,
    pub quadrant_label_zh: Option<String>,
    pub rfm: Option<Rfm>,
    pub tier: Option<Tier>,
    pub lifetime_value: Money,
    pub churn: ChurnView,
    pub population: PopulationView,
}

/// The churn rule applied to one customer (over their whole history).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ChurnView {
    /// Whether the rule applies (enough distinct visit days).
    pub applies: bool,
    pub visit_days: u32,
    pub days_since_last: Option<i64>,
    pub median_interval_days: Option<f64>,
    pub overdue_bp: Option<i64>,
    pub at_risk: bool,
    pub value_at_risk: Option<Money>,
}

/// The chain's figures a customer is compared with.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PopulationView {
    pub customers: u64,
    pub thresholds: Option<ThresholdsView>,
    pub computed_at: DateTime<Utc>,
}

/// What the churn watch found, without the list.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ChurnSummary {
    pub rule: ChurnRule,
    pub considered: u64,
    pub at_risk: u64,
    pub value_at_risk: Money,
}

/// Quadrants, RFM and the churn watch of one period from one pass over its visits (the
/// dashboard; `patron bench analytics` times it).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ValueOverview {
    pub quadrants: QuadrantReport,
    pub rfm: RfmReport,
    pub churn: ChurnSummary,
}

// ---------------------------------------------------------------------------------------
// Pure assembly.

fn round(r: Ratio) -> Money {
    Money::from_fen(r.round_half_up())
}

fn parse_threshold(field: &str, v: Option<&str>) -> Result<Option<Ratio>, AppError> {
    v.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            Ratio::parse_decimal(s).ok_or_else(|| {
                invalid(
                    field,
                    "invalid_threshold",
                    format!("{s:?} is not a non-negative number"),
                )
            })
        })
        .transpose()
}

/// Given thresholds (validated before anything is read).
#[derive(Debug, Clone, Copy, Default)]
struct GivenThresholds {
    frequency: Option<Ratio>,
    spend: Option<Ratio>,
}

impl GivenThresholds {
    fn parse(freq: Option<&str>, spend: Option<&str>) -> Result<GivenThresholds, AppError> {
        Ok(GivenThresholds {
            frequency: parse_threshold("freq_threshold", freq)?,
            spend: parse_threshold("spend_threshold", spend)?,
        })
    }
    /// The thresholds for these customers: given ones, else their medians.
    fn resolve(self, stats: &[CustomerStats]) -> Option<(Thresholds, ThresholdsView)> {
        let medians = rules::median_thresholds(stats);
        let frequency = self.frequency.or(medians.map(|m| m.frequency))?;
        let average_spend = self.spend.or(medians.map(|m| m.average_spend))?;
        let source = |given: bool| if given { "given" } else { "median" }.to_string();
        Some((
            Thresholds {
                frequency,
                average_spend,
            },
            ThresholdsView {
                frequency: frequency.to_f64(),
                average_spend: round(average_spend),
                frequency_source: source(self.frequency.is_some()),
                spend_source: source(self.spend.is_some()),
            },
        ))
    }
}

/// A period's customers with everything the reports derive from them.
struct Analysed {
    period: Period,
    store: Option<Store>,
    stats: Vec<CustomerStats>,
    thresholds: Option<(Thresholds, ThresholdsView)>,
    population: Population,
    sizes: TierSizes,
    years: u32,
}

impl Analysed {
    fn new(
        period: Period,
        store: Option<Store>,
        stats: Vec<CustomerStats>,
        given: GivenThresholds,
        q: &ValueQuery,
    ) -> Analysed {
        let thresholds = given.resolve(&stats);
        let population = Population::new(&stats);
        Analysed {
            period,
            store,
            stats,
            thresholds,
            population,
            sizes: q.tiers,
            years: q.ltv_years,
        }
    }

    fn quadrant(&self, s: &CustomerStats) -> Quadrant {
        // Thresholds exist whenever there is a customer.
        self.thresholds
            .as_ref()
            .map_or(Quadrant::C, |(t, _)| rules::classify(s, t))
    }

    fn row(&self, s: &CustomerStats) -> CustomerValueRow {
        CustomerValueRow {
            customer_id: s.customer,
            name: String::new(),
            phone: None,
            level: None,
            visits: s.visits,
            spend: s.spend,
            average_spend: round(s.average_spend()),
            first_visit: s.first_visit,
            last_visit: s.last_visit,
            quadrant: self.quadrant(s),
            rfm: self.population.rfm(s.last_visit, s.visits, s.spend),
            tier: self.population.tier(s.spend, self.sizes),
            lifetime_value: rules::lifetime_value(s.spend, self.period.days, self.years),
        }
    }

    fn quadrant_report(&self, points: usize) -> QuadrantReport {
        let revenue: Money = self.stats.iter().map(|s| s.spend).sum();
        let visits: i64 = self.stats.iter().map(|s| s.visits).sum();
        let n = self.stats.len() as u64;
        let totals = self
            .thresholds
            .as_ref()
            .map(|(t, _)| rules::quadrant_totals(&self.stats, t));
        let quadrants = Quadrant::ALL
            .iter()
            .map(|q| {
                let (customers, v, spend) = totals
                    .map(|t| {
                        let x = t[q.index()];
                        (x.customers, x.visits, x.spend)
                    })
                    .unwrap_or((0, 0, Money::ZERO));
                QuadrantView {
                    quadrant: *q,
                    label_zh: q.label_zh().into(),
                    label_en: q.label_en().into(),
                    customers,
                    customer_share_bp: rules::bp(customers.into(), n.into()),
                    visits: v,
                    revenue: spend,
                    revenue_share_bp: rules::bp(spend.fen().into(), revenue.fen().into()),
                    average_spend: if v > 0 {
                        round(Ratio::new(spend.fen().into(), v.into()))
                    } else {
                        Money::ZERO
                    },
                }
            })
            .collect();
        let idx = rules::sample_indices(self.stats.len(), points);
        QuadrantReport {
            period: self.period,
            store: store_ref(&self.store),
            thresholds: self.thresholds.as_ref().map(|(_, v)| v.clone()),
            active_customers: n,
            visits,
            revenue,
            quadrants,
            points: ScatterPoints {
                total: n,
                sampled: idx.len() < self.stats.len(),
                items: idx
                    .into_iter()
                    .map(|i| {
                        let s = &self.stats[i];
                        ScatterPoint {
                            customer_id: s.customer,
                            visits: s.visits,
                            average_spend: round(s.average_spend()),
                            quadrant: self.quadrant(s),
                        }
                    })
                    .collect(),
            },
        }
    }

    fn rfm_report(&self) -> RfmReport {
        let mut recency = vec![0u64; 5];
        let mut frequency = vec![0u64; 5];
        let mut monetary = vec![0u64; 5];
        let mut grid = vec![vec![0u64; 5]; 5];
        // Cell (r, f, m) at index 25 (r - 1) + 5 (f - 1) + (m - 1).
        let mut cells = [(0u64, Money::ZERO); 125];
        for s in &self.stats {
            let x = self.population.rfm(s.last_visit, s.visits, s.spend);
            let (r, f, m) = (
                usize::from(x.r - 1),
                usize::from(x.f - 1),
                usize::from(x.m - 1),
            );
            recency[r] += 1;
            frequency[f] += 1;
            monetary[m] += 1;
            grid[r][f] += 1;
            let c = &mut cells[25 * r + 5 * f + m];
            c.0 += 1;
            c.1 = c.1 + s.spend;
        }
        RfmReport {
            period: self.period,
            store: store_ref(&self.store),
            customers: self.stats.len() as u64,
            recency,
            frequency,
            monetary,
            recency_frequency: grid,
            cells: (0..125)
                .rev()
                .filter(|i| cells[*i].0 > 0)
                .map(|i| RfmCell {
                    code: format!("{}{}{}", i / 25 + 1, i / 5 % 5 + 1, i % 5 + 1),
                    customers: cells[i].0,
                    spend: cells[i].1,
                })
                .collect(),
        }
    }

    fn pyramid_report(&self) -> PyramidReport {
        let total: Money = self.stats.iter().map(|s| s.spend).sum();
        let mut tiers: Vec<TierView> = Tier::ALL
            .iter()
            .map(|t| TierView {
                tier: *t,
                label_zh: t.label_zh().into(),
                customers: 0,
                spend: Money::ZERO,
                spend_share_bp: 0,
                min_spend: None,
                lifetime_value: Money::ZERO,
            })
            .collect();
        for s in &self.stats {
            let v = &mut tiers[self.population.tier(s.spend, self.sizes).index()];
            v.customers += 1;
            v.spend = v.spend + s.spend;
            v.min_spend = Some(v.min_spend.map_or(s.spend, |m| m.min(s.spend)));
            v.lifetime_value =
                v.lifetime_value + rules::lifetime_value(s.spend, self.period.days, self.years);
        }
        for v in &mut tiers {
            v.spend_share_bp = rules::bp(v.spend.fen().into(), total.fen().into());
        }
        PyramidReport {
            period: self.period,
            store: store_ref(&self.store),
            customers: self.stats.len() as u64,
            sizes: self.sizes,
            ltv_years: self.years,
            tiers,
        }
    }
}

/// Page bounds of a listing of `n` items.
fn page_bounds(listing: Listing, n: usize) -> (usize, usize, u32, u32, bool) {
    match listing {
        Listing::All => (0, n, 1, n as u32, false),
        Listing::Page(p) => {
            let p = p.clamped();
            let start = (p.offset() as usize).min(n);
            let end = (start + p.limit() as usize).min(n);
            (start, end, p.page, p.per_page, end < n)
        }
    }
}

fn churn_row(s: &CustomerStats, a: &rules::ChurnAssessment) -> ChurnRow {
    ChurnRow {
        customer_id: s.customer,
        name: String::new(),
        phone: None,
        level: None,
        visits: s.visits,
        visit_days: s.visit_days.unwrap_or(0),
        spend: s.spend,
        last_visit: s.last_visit,
        days_since_last: a.days_since_last,
        median_interval_days: a.median_interval.to_f64(),
        overdue_bp: a.overdue_bp,
        value_at_risk: a.value_at_risk,
    }
}

/// The at-risk customers, most valuable first (then most overdue, then by id), with the
/// number of customers the rule applies to.
fn churn_list(stats: &[CustomerStats], as_of: NaiveDate, rule: ChurnRule) -> (u64, Vec<ChurnRow>) {
    let mut considered = 0;
    let mut rows = Vec::new();
    for s in stats {
        if let Some(a) = rules::assess_churn(s, as_of, rule) {
            considered += 1;
            if a.at_risk {
                rows.push(churn_row(s, &a));
            }
        }
    }
    rows.sort_by(|a, b| {
        b.value_at_risk
            .cmp(&a.value_at_risk)
            .then(b.overdue_bp.cmp(&a.overdue_bp))
            .then(a.customer_id.cmp(&b.customer_id))
    });
    (considered, rows)
}

fn parse_k(k: Option<&str>) -> Result<u32, AppError> {
    let Some(k) = k.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(ChurnRule::default().k_bp);
    };
    let bad = || {
        invalid(
            "k",
            "invalid_k",
            "k is a number from 1 to 100 with at most 4 decimals, e.g. 2 or 1.5",
        )
    };
    let r = Ratio::parse_decimal(k)
        .ok_or_else(bad)?
        .scale(10_000, 1)
        .reduced();
    if !r.is_integer() || r.num() < 10_000 || r.num() > 1_000_000 {
        return Err(bad());
    }
    Ok(r.num() as u32)
}

/// The state labels of a migration matrix, in index order.
fn state_label(i: usize) -> String {
    if i == NO_VISITS {
        "none".into()
    } else {
        Quadrant::ALL[i].code().into()
    }
}

/// Parses "A".."D" or "none".
pub fn parse_state(s: &str, field: &str) -> Result<usize, AppError> {
    if s.trim().eq_ignore_ascii_case("none") {
        return Ok(NO_VISITS);
    }
    Quadrant::parse(s)
        .map(Quadrant::index)
        .ok_or_else(|| invalid(field, "invalid_state", "a state is A, B, C, D or none"))
}

/// The end of a local day as an instant (the next local midnight).
fn end_of_day(settings: &TenantSettings, d: NaiveDate) -> DateTime<Utc> {
    let next = (d + Duration::days(1))
        .and_hms_opt(0, 0, 0)
        .expect("midnight");
    (next - Duration::minutes(i64::from(settings.utc_offset_minutes))).and_utc()
}

fn last_day_of_month(d: NaiveDate) -> NaiveDate {
    let (y, m) = if d.month() == 12 {
        (d.year() + 1, 1)
    } else {
        (d.year(), d.month() + 1)
    };
    NaiveDate::from_ymd_opt(y, m, 1).expect("first of a month") - Duration::days(1)
}

/// The days a series reports: the end of each step from `from`, the last one `to`.
pub fn series_dates(
    from: NaiveDate,
    to: NaiveDate,
    step: &str,
) -> Result<Vec<NaiveDate>, AppError> {
    let mut out = Vec::new();
    let mut d = match step {
        "day" => from,
        "week" => from + Duration::days(6),
        "month" => last_day_of_month(from),
        _ => {
            return Err(invalid(
                "step",
                "invalid_step",
                "step is day, week or month",
            ));
        }
    };
    while d < to {
        out.push(d);
        if out.len() > MAX_SERIES_POINTS {
            return Err(invalid(
                "step",
                "too_many_points",
                format!("a series has at most {MAX_SERIES_POINTS} points: choose a longer step"),
            ));
        }
        d = match step {
            "day" => d + Duration::days(1),
            "week" => d + Duration::days(7),
            _ => last_day_of_month(d + Duration::days(1)),
        };
    }
    out.push(to);
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// The snapshot behind the customer 360.

struct Snapshot {
    made: std::time::Instant,
    computed_at: DateTime<Utc>,
    period: Period,
    thresholds: Option<(Thresholds, ThresholdsView)>,
    population: Population,
}

/// Snapshots by tenant and day.
type Snapshots = HashMap<(TenantId, NaiveDate), Arc<Snapshot>>;

static SNAPSHOTS: LazyLock<Mutex<Snapshots>> = LazyLock::new(Default::default);

// ---------------------------------------------------------------------------------------
// Use cases.

impl App {
    /// The per-customer scan of a query over the whole tenant, cut into customer ranges
    /// scanned side by side (one per core, at most 8): each range is one GROUP BY on the
    /// covering index, on its own connection. Customers in id order.
    pub async fn customer_stats(
        &self,
        tenant: TenantId,
        q: StatsQuery,
    ) -> Result<Vec<CustomerStats>, AppError> {
        let parts = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
        let splits = if q.customer.is_some() {
            vec![]
        } else {
            self.storage.customer_splits(tenant, parts).await?
        };
        if splits.is_empty() {
            return Ok(self.storage.customer_stats(tenant, &q).await?);
        }
        let mut bounds = vec![q.customers_from];
        bounds.extend(splits.into_iter().map(Some));
        bounds.push(q.customers_to);
        let tasks: Vec<_> = bounds
            .windows(2)
            .map(|w| {
                let storage = Arc::clone(&self.storage);
                let part = StatsQuery {
                    customers_from: w[0],
                    customers_to: w[1],
                    ..q
                };
                tokio::spawn(async move { storage.customer_stats(tenant, &part).await })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            let part = t
                .await
                .map_err(|e| AppError::Internal(format!("analytics scan failed: {e}")))??;
            if out.is_empty() {
                out = part;
            } else {
                out.extend(part);
            }
        }
        Ok(out)
    }

    /// The store a report covers, checking the actor may see it.
    async fn analytics_scope(
        &self,
        actor: &Actor,
        store: Option<&str>,
    ) -> Result<Option<Store>, AppError> {
        actor.require(Permission::ViewReports)?;
        let chain = actor.may(Permission::ChainReports);
        let given = store.map(str::trim).filter(|s| !s.is_empty());
        let own = (!chain).then_some(actor.store_id).flatten();
        if given.is_none() && own.is_none() {
            return Ok(None);
        }
        let stores = self.storage.list_stores(actor.tenant_id).await?;
        let found = match given {
            Some(s) => stores
                .into_iter()
                .find(|x| x.code == s || x.id.0.to_string() == s.to_ascii_lowercase())
                .ok_or(AppError::NotFound { entity: "store" })?,
            None => stores
                .into_iter()
                .find(|x| Some(x.id) == own)
                .ok_or(AppError::NotFound { entity: "store" })?,
        };
        if own.is_some_and(|o| o != found.id) {
            return Err(AppError::Forbidden(
                "staff of a store see that store's analytics only (chain-wide needs chain_reports)"
                    .into(),
            ));
        }
        Ok(Some(found))
    }

    async fn today(&self, actor: &Actor) -> Result<(TenantSettings, NaiveDate), AppError> {
        let s = self.settings(actor).await?;
        let today = s.local_date(now());
        Ok((s, today))
    }

    async fn analyse(
        &self,
        actor: &Actor,
        q: &ValueQuery,
        with_days: bool,
    ) -> Result<Analysed, AppError> {
        let given =
            GivenThresholds::parse(q.freq_threshold.as_deref(), q.spend_threshold.as_deref())?;
        let (_, today) = self.today(actor).await?;
        let period = Period::of(q.from, q.to, today)?;
        let store = self.analytics_scope(actor, q.store.as_deref()).await?;
        let stats = self
            .customer_stats(
                actor.tenant_id,
                StatsQuery {
                    from: Some(period.from),
                    to: period.to,
                    store: store.as_ref().map(|s| s.id),
                    customer: None,
                    customers_from: None,
                    customers_to: None,
                    with_days,
                },
            )
            .await?;
        Ok(Analysed::new(period, store, stats, given, q))
    }

    /// Name, phone (masked unless allowed) and level of the listed customers.
    async fn fill_names<T>(
        &self,
        actor: &Actor,
        rows: &mut [T],
        export: bool,
        f: impl Fn(
            &mut T,
        ) -> (
            CustomerId,
            &mut String,
            &mut Option<String>,
            &mut Option<String>,
        ),
    ) -> Result<(), AppError> {
        let mut ids: Vec<CustomerId> = Vec::with_capacity(rows.len());
        for r in rows.iter_mut() {
            ids.push(f(r).0);
        }
        let briefs: HashMap<CustomerId, CustomerBrief> = self
            .storage
            .customer_briefs(actor.tenant_id, &ids)
            .await?
            .into_iter()
            .map(|b| (b.id, b))
            .collect();
        let clear = actor.may(Permission::ViewPersonalData)
            && (!export || actor.may(Permission::ExportPersonalData));
        for r in rows.iter_mut() {
            let (id, name, phone, level) = f(r);
            if let Some(b) = briefs.get(&id) {
                *name = b.name.clone();
                *phone = b.phone.clone().map(|p| {
                    if clear {
                        p
                    } else {
                        Phone::from_stored(p).masked()
                    }
                });
                *level = b.level.clone();
            }
        }
        if export {
            // A list of customers leaving as a file is recorded like a customer export.
            self.audit(patron_store::audit::AuditEntry {
                after: Some(serde_json::json!({"rows": rows.len(), "phones_in_clear": clear})),
                ..self.audit_entry(
                    actor,
                    "export.analytics",
                    "customers",
                    None,
                    format!("export.analytics: {} customers", rows.len()),
                )
            })
            .await?;
        }
        Ok(())
    }

    async fn value_rows(
        &self,
        actor: &Actor,
        a: &Analysed,
        mut picked: Vec<&CustomerStats>,
        listing: Listing,
    ) -> Result<CustomerList, AppError> {
        picked.sort_by(|x, y| y.spend.cmp(&x.spend).then(x.customer.cmp(&y.customer)));
        let (start, end, page, per_page, has_more) = page_bounds(listing, picked.len());
        let mut items: Vec<CustomerValueRow> =
            picked[start..end].iter().map(|s| a.row(s)).collect();
        self.fill_names(actor, &mut items, listing == Listing::All, |r| {
            (r.customer_id, &mut r.name, &mut r.phone, &mut r.level)
        })
        .await?;
        Ok(CustomerList {
            period: a.period,
            store: store_ref(&a.store),
            total: picked.len() as u64,
            page,
            per_page,
            has_more,
            items,
        })
    }

    /// The contribution quadrants of a period: counts, revenue shares, the thresholds
    /// used and up to `points` customers for a scatter chart.
    pub async fn quadrants(
        &self,
        actor: &Actor,
        q: &ValueQuery,
        points: usize,
    ) -> Result<QuadrantReport, AppError> {
        let a = self.analyse(actor, q, false).await?;
        Ok(a.quadrant_report(points.min(MAX_POINTS)))
    }

    /// The customers of one quadrant, by spend.
    pub async fn quadrant_customers(
        &self,
        actor: &Actor,
        q: &ValueQuery,
        quadrant: Quadrant,
        listing: Listing,
    ) -> Result<CustomerList, AppError> {
        let a = self.analyse(actor, q, false).await?;
        let picked = a
            .stats
            .iter()
            .filter(|s| a.quadrant(s) == quadrant)
            .collect();
        self.value_rows(actor, &a, picked, listing).await
    }

    /// RFM scores of a period's customers.
    pub async fn rfm(&self, actor: &Actor, q: &ValueQuery) -> Result<RfmReport, AppError> {
        Ok(self.analyse(actor, q, false).await?.rfm_report())
    }

    /// The customers with the given RFM scores, by spend.
    pub async fn rfm_customers(
        &self,
        actor: &Actor,
        q: &ValueQuery,
        filter: RfmFilter,
        listing: Listing,
    ) -> Result<CustomerList, AppError> {
        for (field, v) in [("r", filter.r), ("f", filter.f), ("m", filter.m)] {
            if v.is_some_and(|v| !(1..=5).contains(&v)) {
                return Err(invalid(field, "invalid_score", "a score is 1 to 5"));
            }
        }
        let a = self.analyse(actor, q, false).await?;
        let picked = a
            .stats
            .iter()
            .filter(|s| {
                let x = a.population.rfm(s.last_visit, s.visits, s.spend);
                filter.r.is_none_or(|r| r == x.r)
                    && filter.f.is_none_or(|f| f == x.f)
                    && filter.m.is_none_or(|m| m == x.m)
            })
            .collect();
        self.value_rows(actor, &a, picked, listing).await
    }

    /// The value pyramid of a period, with lifetime values.
    pub async fn pyramid(&self, actor: &Actor, q: &ValueQuery) -> Result<PyramidReport, AppError> {
        Ok(self.analyse(actor, q, false).await?.pyramid_report())
    }

    /// The customers of one tier, by spend.
    pub async fn pyramid_customers(
        &self,
        actor: &Actor,
        q: &ValueQuery,
        tier: Tier,
        listing: Listing,
    ) -> Result<CustomerList, AppError> {
        let a = self.analyse(actor, q, false).await?;
        let picked = a
            .stats
            .iter()
            .filter(|s| a.population.tier(s.spend, a.sizes) == tier)
            .collect();
        self.value_rows(actor, &a, picked, listing).await
    }

    /// Quadrants, RFM and the churn watch of one period from one scan of its visits.
    /// The churn watch counts the period's visits only (its `as_of` is the period's end).
    pub async fn value_overview(
        &self,
        actor: &Actor,
        q: &ValueQuery,
    ) -> Result<ValueOverview, AppError> {
        let a = self.analyse(actor, q, true).await?;
        let rule = ChurnRule::default();
        let (considered, rows) = churn_list(&a.stats, a.period.to, rule);
        Ok(ValueOverview {
            quadrants: a.quadrant_report(DEFAULT_POINTS),
            rfm: a.rfm_report(),
            churn: ChurnSummary {
                rule,
                considered,
                at_risk: rows.len() as u64,
                value_at_risk: rows.iter().map(|r| r.value_at_risk).sum(),
            },
        })
    }

    /// The migration matrix between two periods (each classified by its own medians
    /// unless thresholds are given).
    pub async fn migration(
        &self,
        actor: &Actor,
        q: &MigrationQuery,
    ) -> Result<MigrationReport, AppError> {
        let (a, b) = self.migration_sides(actor, q).await?;
        let (qa, qb) = (classified(&a), classified(&b));
        let cells = rules::migration(&qa, &qb);
        let side = |x: &Analysed, c: &HashMap<CustomerId, Quadrant>| MigrationSide {
            period: x.period,
            thresholds: x.thresholds.as_ref().map(|(_, v)| v.clone()),
            active_customers: x.stats.len() as u64,
            quadrants: Quadrant::ALL
                .iter()
                .map(|q| QuadrantCount {
                    quadrant: *q,
                    customers: c.values().filter(|v| *v == q).count() as u64,
                })
                .collect(),
        };
        let (ib, ia, id) = (
            Quadrant::B.index(),
            Quadrant::A.index(),
            Quadrant::D.index(),
        );
        Ok(MigrationReport {
            store: store_ref(&a.store),
            a: side(&a, &qa),
            b: side(&b, &qb),
            states: (0..MIGRATION_STATES).map(state_label).collect(),
            rows: (0..MIGRATION_STATES)
                .map(|i| MigrationRowView {
                    from: state_label(i),
                    to: cells[i].to_vec(),
                    total: cells[i].iter().sum(),
                })
                .collect(),
            a_to_b: cells[ia][ib],
            d_to_b: cells[id][ib],
            b_lost: cells[ib].iter().sum::<u64>() - cells[ib][ib],
        })
    }

    async fn migration_sides(
        &self,
        actor: &Actor,
        q: &MigrationQuery,
    ) -> Result<(Analysed, Analysed), AppError> {
        let given =
            GivenThresholds::parse(q.freq_threshold.as_deref(), q.spend_threshold.as_deref())?;
        let (_, today) = self.today(actor).await?;
        let b = Period::of(q.b_from, q.b_to, today)?;
        // Period A defaults to the as long period just before B.
        let a_to = q.a_to.unwrap_or(b.from - Duration::days(1));
        let a = Period::new(
            q.a_from.unwrap_or(a_to - Duration::days(b.days - 1)),
            a_to,
            "a_from",
        )?;
        let store = self.analytics_scope(actor, q.store.as_deref()).await?;
        let mut out = Vec::with_capacity(2);
        for p in [a, b] {
            let stats = self
                .customer_stats(
                    actor.tenant_id,
                    StatsQuery {
                        from: Some(p.from),
                        to: p.to,
                        store: store.as_ref().map(|s| s.id),
                        customer: None,
                        customers_from: None,
                        customers_to: None,
                        with_days: false,
                    },
                )
                .await?;
            out.push(Analysed::new(
                p,
                store.clone(),
                stats,
                given,
                &ValueQuery::new(),
            ));
        }
        let b = out.pop().expect("two periods");
        let a = out.pop().expect("two periods");
        Ok((a, b))
    }

    /// The customers behind one cell of the migration matrix.
    pub async fn migration_customers(
        &self,
        actor: &Actor,
        q: &MigrationQuery,
        from: usize,
        to: usize,
        listing: Listing,
    ) -> Result<MigrationList, AppError> {
        if from == NO_VISITS && to == NO_VISITS {
            return Err(invalid(
                "to",
                "invalid_state",
                "nobody moves from none to none",
            ));
        }
        let (a, b) = self.migration_sides(actor, q).await?;
        let index = |x: &Analysed| -> HashMap<CustomerId, (Quadrant, i64, Money)> {
            x.stats
                .iter()
                .map(|s| (s.customer, (x.quadrant(s), s.visits, s.spend)))
                .collect()
        };
        let (ia, ib) = (index(&a), index(&b));
        let mut ids: Vec<CustomerId> = ia.keys().chain(ib.keys()).copied().collect();
        ids.sort_unstable();
        ids.dedup();
        let mut items: Vec<MigrationCustomer> = ids
            .into_iter()
            .filter_map(|c| {
                let (xa, xb) = (ia.get(&c), ib.get(&c));
                let sa = rules::state_index(xa.map(|x| x.0));
                let sb = rules::state_index(xb.map(|x| x.0));
                (sa == from && sb == to).then(|| MigrationCustomer {
                    customer_id: c,
                    name: String::new(),
                    phone: None,
                    level: None,
                    a_quadrant: xa.map(|x| x.0),
                    a_visits: xa.map_or(0, |x| x.1),
                    a_spend: xa.map_or(Money::ZERO, |x| x.2),
                    b_quadrant: xb.map(|x| x.0),
                    b_visits: xb.map_or(0, |x| x.1),
                    b_spend: xb.map_or(Money::ZERO, |x| x.2),
                })
            })
            .collect();
        items.sort_by(|x, y| {
            y.b_spend
                .cmp(&x.b_spend)
                .then(y.a_spend.cmp(&x.a_spend))
                .then(x.customer_id.cmp(&y.customer_id))
        });
        let total = items.len() as u64;
        let (start, end, page, per_page, has_more) = page_bounds(listing, items.len());
        let mut items: Vec<MigrationCustomer> = items.drain(start..end).collect();
        self.fill_names(actor, &mut items, listing == Listing::All, |r| {
            (r.customer_id, &mut r.name, &mut r.phone, &mut r.level)
        })
        .await?;
        Ok(MigrationList {
            from: state_label(from),
            to: state_label(to),
            total,
            page,
            per_page,
            has_more,
            items,
        })
    }

    /// The churn watch: customers with enough visit days whose days since the last visit
    /// exceed k × their median interval, by value at risk.
    pub async fn churn_watch(
        &self,
        actor: &Actor,
        q: &ChurnQuery,
        listing: Listing,
    ) -> Result<ChurnReport, AppError> {
        let k_bp = parse_k(q.k.as_deref())?;
        let min_visits = q.min_visits.unwrap_or(3);
        if !(2..=1000).contains(&min_visits) {
            return Err(invalid(
                "min_visits",
                "invalid_min_visits",
                "min_visits is 2 to 1000",
            ));
        }
        let rule = ChurnRule { k_bp, min_visits };
        let (_, today) = self.today(actor).await?;
        let as_of = q.as_of.unwrap_or(today);
        if let Some(f) = q.from {
            Period::new(f, as_of, "from")?;
        }
        let store = self.analytics_scope(actor, q.store.as_deref()).await?;
        let stats = self
            .customer_stats(
                actor.tenant_id,
                StatsQuery {
                    from: q.from,
                    to: as_of,
                    store: store.as_ref().map(|s| s.id),
                    customer: None,
                    customers_from: None,
                    customers_to: None,
                    with_days: true,
                },
            )
            .await?;
        let (considered, mut rows) = churn_list(&stats, as_of, rule);
        let at_risk = rows.len() as u64;
        let value_at_risk = rows.iter().map(|r| r.value_at_risk).sum();
        let (start, end, page, per_page, has_more) = page_bounds(listing, rows.len());
        let mut items: Vec<ChurnRow> = rows.drain(start..end).collect();
        self.fill_names(actor, &mut items, listing == Listing::All, |r| {
            (r.customer_id, &mut r.name, &mut r.phone, &mut r.level)
        })
        .await?;
        Ok(ChurnReport {
            as_of,
            from: q.from,
            store: store_ref(&store),
            rule,
            considered,
            at_risk,
            value_at_risk,
            page,
            per_page,
            has_more,
            items,
        })
    }

    /// Of the cards issued, how many were used (a visit with the card, or a top-up) in the
    /// `days` days up to `as_of`.
    pub async fn card_liveness(
        &self,
        actor: &Actor,
        as_of: Option<NaiveDate>,
        days: Option<u32>,
    ) -> Result<CardLiveness, AppError> {
        let days = days.unwrap_or(90);
        if !(1..=3660).contains(&days) {
            return Err(invalid("days", "invalid_days", "days is 1 to 3660"));
        }
        actor.require(Permission::ViewReports)?;
        let (settings, today) = self.today(actor).await?;
        let as_of = as_of.unwrap_or(today);
        let first = as_of - Duration::days(i64::from(days) - 1);
        let rows = self
            .storage
            .card_usage(
                actor.tenant_id,
                end_of_day(&settings, first - Duration::days(1)),
                end_of_day(&settings, as_of),
                first,
                as_of,
            )
            .await?;
        let issued: i64 = rows.iter().map(|r| r.cards).sum();
        let used: i64 = rows.iter().map(|r| r.used).sum();
        let open_rows = rows.iter().filter(|r| r.status != "closed");
        let (open, open_used) = open_rows.fold((0, 0), |(c, u), r| (c + r.cards, u + r.used));
        Ok(CardLiveness {
            as_of,
            days,
            issued,
            open,
            used,
            liveness_bp: rules::bp(used.into(), issued.into()),
            open_liveness_bp: rules::bp(open_used.into(), open.into()),
            by_status: rows
                .into_iter()
                .map(|r| CardStatusCount {
                    status: r.status,
                    cards: r.cards,
                    used: r.used,
                })
                .collect(),
        })
    }

    /// Retention cohorts by month of first visit (`from`/`to` are YYYY-MM; default the
    /// last 12 months).
    pub async fn cohorts(
        &self,
        actor: &Actor,
        from: Option<&str>,
        to: Option<&str>,
        store: Option<&str>,
    ) -> Result<CohortReport, AppError> {
        let month = |field: &str, s: &str| {
            rules::parse_month(s)
                .ok_or_else(|| invalid(field, "invalid_month", "a month is YYYY-MM"))
        };
        let (_, today) = self.today(actor).await?;
        let to = match to {
            Some(s) => month("to", s)?,
            None => rules::month_index(today),
        };
        let from = match from {
            Some(s) => month("from", s)?,
            None => to - 11,
        };
        if from > to {
            return Err(invalid(
                "from",
                "invalid_period",
                "the months end before they start",
            ));
        }
        if to - from >= MAX_COHORTS {
            return Err(invalid(
                "from",
                "period_too_long",
                format!("at most {MAX_COHORTS} cohorts"),
            ));
        }
        let store = self.analytics_scope(actor, store).await?;
        let last_day = last_day_of_month(
            NaiveDate::from_ymd_opt(to.div_euclid(12), (to.rem_euclid(12) + 1) as u32, 1)
                .expect("a month"),
        );
        let counts = self
            .storage
            .cohort_counts(
                actor.tenant_id,
                store.as_ref().map(|s| s.id),
                &rules::month_label(from),
                last_day,
            )
            .await?;
        Ok(CohortReport {
            from: rules::month_label(from),
            to: rules::month_label(to),
            store: store_ref(&store),
            cohorts: rules::cohorts(&counts, from, to),
        })
    }

    /// Pairs of dishes bought together on at least `min_together` bills of the period
    /// (business days), by lift; at most `limit` pairs.
    pub async fn affinity(
        &self,
        actor: &Actor,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
        store: Option<&str>,
        min_together: Option<i64>,
        limit: Option<usize>,
    ) -> Result<AffinityReport, AppError> {
        let min_together = min_together.unwrap_or(2);
        if !(1..=1_000_000).contains(&min_together) {
            return Err(invalid(
                "min_together",
                "invalid_min_together",
                "min_together is 1 or more",
            ));
        }
        let limit = limit.unwrap_or(50);
        if !(1..=1000).contains(&limit) {
            return Err(invalid("limit", "invalid_limit", "limit is 1 to 1000"));
        }
        let (_, today) = self.today(actor).await?;
        let period = Period::of(from, to, today)?;
        let store = self.analytics_scope(actor, store).await?;
        let counts = self
            .storage
            .basket_counts(
                actor.tenant_id,
                &BasketQuery {
                    from: period.from,
                    to: period.to,
                    store: store.as_ref().map(|s| s.id),
                    min_together,
                },
            )
            .await?;
        // Current menu names where the dish still exists.
        let (_, menu) = self.storage.menu(actor.tenant_id).await?;
        let names: HashMap<MenuItemId, String> = menu.into_iter().map(|i| (i.id, i.name)).collect();
        let items: HashMap<MenuItemId, (String, u64)> = counts
            .items
            .into_iter()
            .map(|i| {
                let name = names.get(&i.item).cloned().unwrap_or(i.name);
                (i.item, (name, i.bills.max(0) as u64))
            })
            .collect();
        let baskets = counts.baskets.max(0) as u64;
        let dish = |id: MenuItemId| DishRef {
            item_id: id,
            name: items.get(&id).map(|x| x.0.clone()).unwrap_or_default(),
        };
        let mut pairs: Vec<PairView> = counts
            .pairs
            .into_iter()
            .map(|(a, b, n)| {
                let bills = |id| items.get(&id).map_or(0, |x: &(String, u64)| x.1);
                let p = rules::pair_affinity(a, b, n.max(0) as u64, bills(a), bills(b), baskets);
                PairView {
                    a: dish(a),
                    b: dish(b),
                    together: p.together,
                    a_bills: p.a_bills,
                    b_bills: p.b_bills,
                    support_bp: p.support_bp,
                    confidence_ab_bp: p.confidence_ab_bp,
                    confidence_ba_bp: p.confidence_ba_bp,
                    lift_bp: p.lift_bp,
                }
            })
            .collect();
        pairs.sort_by(|x, y| {
            y.lift_bp
                .cmp(&x.lift_bp)
                .then(y.together.cmp(&x.together))
                .then(x.a.item_id.cmp(&y.a.item_id))
                .then(x.b.item_id.cmp(&y.b.item_id))
        });
        pairs.truncate(limit);
        Ok(AffinityReport {
            period,
            store: store_ref(&store),
            baskets: counts.baskets,
            min_together,
            pairs,
        })
    }

    /// Customers per member level.
    pub async fn level_distribution(&self, actor: &Actor) -> Result<LevelDistribution, AppError> {
        actor.require(Permission::ViewReports)?;
        let settings = self.settings(actor).await?;
        let mut counts: BTreeMap<Option<String>, i64> = self
            .storage
            .level_counts(actor.tenant_id)
            .await?
            .into_iter()
            .collect();
        let total: i64 = counts.values().sum();
        let share = |n: i64| rules::bp(n.into(), total.into());
        let mut levels = Vec::new();
        for l in &settings.levels.levels {
            let n = counts.remove(&Some(l.code.clone())).unwrap_or(0);
            levels.push(LevelShare {
                level: Some(l.code.clone()),
                name: l.name.clone(),
                customers: n,
                share_bp: share(n),
            });
        }
        let none = counts.remove(&None);
        for (code, n) in counts {
            levels.push(LevelShare {
                name: code.clone().unwrap_or_default(),
                level: code,
                customers: n,
                share_bp: share(n),
            });
        }
        levels.push(LevelShare {
            level: None,
            name: "无等级".into(),
            customers: none.unwrap_or(0),
            share_bp: share(none.unwrap_or(0)),
        });
        Ok(LevelDistribution {
            customers: total,
            levels,
        })
    }

    /// The customers' stored value (principal, bonus) and points at the end of each step
    /// (day, week or month) of a period.
    pub async fn liability_series(
        &self,
        actor: &Actor,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
        step: Option<&str>,
        store: Option<&str>,
    ) -> Result<LiabilitySeries, AppError> {
        let step = step
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .unwrap_or("month")
            .to_string();
        let (settings, today) = self.today(actor).await?;
        let period = Period::of(from, to, today)?;
        let dates = series_dates(period.from, period.to, &step)?;
        let store = self.analytics_scope(actor, store).await?;
        let bounds: Vec<DateTime<Utc>> = dates.iter().map(|d| end_of_day(&settings, *d)).collect();
        let buckets = self
            .storage
            .liability_buckets(actor.tenant_id, store.as_ref().map(|s| s.id), &bounds)
            .await?;
        // Balance at bound i = Σ of buckets 0..=i.
        let mut delta = vec![(0i64, 0i64, 0i64); bounds.len()];
        for b in buckets {
            let Some(d) = delta.get_mut(b.bucket) else {
                continue;
            };
            match b.kind.as_str() {
                "card_principal" | "org_principal" => d.0 += b.amount,
                "card_bonus" | "org_bonus" => d.1 += b.amount,
                _ => d.2 += b.amount,
            }
        }
        let mut acc = (0i64, 0i64, 0i64);
        let points = dates
            .iter()
            .zip(delta)
            .map(|(date, d)| {
                acc = (acc.0 + d.0, acc.1 + d.1, acc.2 + d.2);
                LiabilityPoint {
                    date: *date,
                    principal: Money::from_fen(acc.0),
                    bonus: Money::from_fen(acc.1),
                    stored_value: Money::from_fen(acc.0 + acc.1),
                    points: acc.2,
                }
            })
            .collect();
        Ok(LiabilitySeries {
            from: period.from,
            to: period.to,
            step,
            store: store_ref(&store),
            points,
        })
    }

    /// The chain's figures of the last 365 days, recomputed when older than
    /// [`SNAPSHOT_TTL`].
    async fn snapshot(&self, actor: &Actor, today: NaiveDate) -> Result<Arc<Snapshot>, AppError> {
        let key = (actor.tenant_id, today);
        if let Some(s) = SNAPSHOTS.lock().expect("snapshots").get(&key)
            && s.made.elapsed() < SNAPSHOT_TTL
        {
            return Ok(Arc::clone(s));
        }
        let period = Period::of(None, Some(today), today)?;
        let stats = self
            .customer_stats(
                actor.tenant_id,
                StatsQuery {
                    from: Some(period.from),
                    to: period.to,
                    store: None,
                    customer: None,
                    customers_from: None,
                    customers_to: None,
                    with_days: false,
                },
            )
            .await?;
        let snap = Arc::new(Snapshot {
            made: std::time::Instant::now(),
            computed_at: now(),
            period,
            thresholds: GivenThresholds::default().resolve(&stats),
            population: Population::new(&stats),
        });
        let mut all = SNAPSHOTS.lock().expect("snapshots");
        all.retain(|_, s| s.made.elapsed() < SNAPSHOT_TTL);
        all.insert(key, Arc::clone(&snap));
        Ok(snap)
    }

    /// A customer's value: quadrant, RFM scores and tier among the chain's customers of
    /// the last 365 days, lifetime value, and the churn rule over their whole history.
    pub async fn customer_value(
        &self,
        actor: &Actor,
        id: CustomerId,
    ) -> Result<CustomerValue, AppError> {
        actor.require(Permission::ViewCustomers)?;
        self.storage
            .customer(actor.tenant_id, id)
            .await?
            .ok_or(AppError::NotFound { entity: "customer" })?;
        let (_, today) = self.today(actor).await?;
        let snap = self.snapshot(actor, today).await?;
        let history = self
            .storage
            .customer_stats(
                actor.tenant_id,
                &StatsQuery {
                    from: None,
                    to: today,
                    store: None,
                    customer: Some(id),
                    customers_from: None,
                    customers_to: None,
                    with_days: true,
                },
            )
            .await?
            .pop();
        let recent = self
            .storage
            .customer_stats(
                actor.tenant_id,
                &StatsQuery {
                    from: Some(snap.period.from),
                    to: today,
                    store: None,
                    customer: Some(id),
                    customers_from: None,
                    customers_to: None,
                    with_days: false,
                },
            )
            .await?
            .pop();
        let rule = ChurnRule::default();
        let assessment = history
            .as_ref()
            .and_then(|h| rules::assess_churn(h, today, rule));
        let churn = ChurnView {
            applies: assessment.is_some(),
            visit_days: history.as_ref().and_then(|h| h.visit_days).unwrap_or(0),
            days_since_last: history.as_ref().map(|h| (today - h.last_visit).num_days()),
            median_interval_days: history
                .as_ref()
                .and_then(|h| h.median_interval)
                .map(Ratio::to_f64),
            overdue_bp: assessment.map(|a| a.overdue_bp),
            at_risk: assessment.is_some_and(|a| a.at_risk),
            value_at_risk: assessment.map(|a| a.value_at_risk),
        };
        let population = PopulationView {
            customers: snap.population.len() as u64,
            thresholds: snap.thresholds.as_ref().map(|(_, v)| v.clone()),
            computed_at: snap.computed_at,
        };
        let Some(s) = recent else {
            return Ok(CustomerValue {
                customer_id: id,
                period: snap.period,
                visits: 0,
                spend: Money::ZERO,
                average_spend: Money::ZERO,
                last_visit: history.map(|h| h.last_visit),
                quadrant: None,
                quadrant_label_zh: None,
                rfm: None,
                tier: None,
                lifetime_value: Money::ZERO,
                churn,
                population,
            });
        };
        let quadrant = snap
            .thresholds
            .as_ref()
            .map(|(t, _)| rules::classify(&s, t));
        let scored = !snap.population.is_empty();
        Ok(CustomerValue {
            customer_id: id,
            period: snap.period,
            visits: s.visits,
            spend: s.spend,
            average_spend: round(s.average_spend()),
            last_visit: Some(s.last_visit),
            quadrant,
            quadrant_label_zh: quadrant.map(|q| q.label_zh().to_string()),
            rfm: scored.then(|| snap.population.rfm(s.last_visit, s.visits, s.spend)),
            tier: scored.then(|| snap.population.tier(s.spend, TierSizes::default())),
            lifetime_value: rules::lifetime_value(s.spend, snap.period.days, 3),
            churn,
            population,
        })
    }
}

fn classified(a: &Analysed) -> HashMap<CustomerId, Quadrant> {
    a.stats
        .iter()
        .map(|s| (s.customer, a.quadrant(s)))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Files.

/// A cell of an exported table.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    Int(i64),
    /// Written in yuan with two decimals.
    Money(Money),
    Date(NaiveDate),
    Empty,
}

impl From<String> for Cell {
    fn from(s: String) -> Cell {
        Cell::Text(s)
    }
}
impl From<&str> for Cell {
    fn from(s: &str) -> Cell {
        Cell::Text(s.into())
    }
}
impl From<i64> for Cell {
    fn from(n: i64) -> Cell {
        Cell::Int(n)
    }
}
impl From<u64> for Cell {
    fn from(n: u64) -> Cell {
        Cell::Int(n as i64)
    }
}
impl From<Money> for Cell {
    fn from(m: Money) -> Cell {
        Cell::Money(m)
    }
}
impl From<NaiveDate> for Cell {
    fn from(d: NaiveDate) -> Cell {
        Cell::Date(d)
    }
}
impl<T: Into<Cell>> From<Option<T>> for Cell {
    fn from(v: Option<T>) -> Cell {
        v.map_or(Cell::Empty, Into::into)
    }
}

/// A report as a table: headers are the JSON field names; money in yuan.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// The file's base name and the sheet's name.
    pub name: String,
    pub headers: Vec<&'static str>,
    pub rows: Vec<Vec<Cell>>,
}

impl Table {
    /// UTF-8 with a BOM (so Excel shows Chinese), comma-separated.
    pub fn to_csv(&self) -> Result<Vec<u8>, AppError> {
        let mut out = "\u{feff}".as_bytes().to_vec();
        {
            let mut w = csv::Writer::from_writer(&mut out);
            let csv_err = |e: csv::Error| AppError::Internal(format!("writing CSV failed: {e}"));
            w.write_record(&self.headers).map_err(csv_err)?;
            for r in &self.rows {
                w.write_record(r.iter().map(|c| match c {
                    Cell::Text(s) => s.clone(),
                    Cell::Int(n) => n.to_string(),
                    Cell::Money(m) => m.to_decimal_string(),
                    Cell::Date(d) => d.to_string(),
                    Cell::Empty => String::new(),
                }))
                .map_err(csv_err)?;
            }
            w.flush()
                .map_err(|e| AppError::Internal(format!("writing CSV failed: {e}")))?;
        }
        Ok(out)
    }

    /// An Excel workbook of one sheet: bold frozen header, money as numbers in yuan.
    pub fn to_xlsx(&self) -> Result<Vec<u8>, AppError> {
        use rust_xlsxwriter::{Format, Workbook};
        if self.rows.len() + 1 > XLSX_MAX_ROWS {
            return Err(invalid(
                "format",
                "too_many_rows",
                format!(
                    "{} rows do not fit in an Excel sheet: use format=csv",
                    self.rows.len()
                ),
            ));
        }
        let err = |e: rust_xlsxwriter::XlsxError| {
            AppError::Internal(format!("writing the Excel file failed: {e}"))
        };
        let mut book = Workbook::new();
        let sheet = book.add_worksheet();
        let name: String = self
            .name
            .chars()
            .filter(|c| !"[]:*?/\\".contains(*c))
            .take(31)
            .collect();
        sheet.set_name(name).map_err(err)?;
        let bold = Format::new().set_bold();
        let money = Format::new().set_num_format("0.00");
        for (i, h) in self.headers.iter().enumerate() {
            sheet
                .write_string_with_format(0, i as u16, *h, &bold)
                .map_err(err)?;
        }
        sheet.set_freeze_panes(1, 0).map_err(err)?;
        for (r, row) in self.rows.iter().enumerate() {
            let r = r as u32 + 1;
            for (c, cell) in row.iter().enumerate() {
                let c = c as u16;
                match cell {
                    Cell::Text(s) => sheet.write_string(r, c, s).map(|_| ()),
                    Cell::Int(n) => sheet.write_number(r, c, *n as f64).map(|_| ()),
                    // Excel holds numbers as doubles; fen ÷ 100 shows exactly at 2 decimals.
                    Cell::Money(m) => sheet
                        .write_number_with_format(r, c, m.fen() as f64 / 100.0, &money)
                        .map(|_| ()),
                    Cell::Date(d) => sheet.write_string(r, c, d.to_string()).map(|_| ()),
                    Cell::Empty => Ok(()),
                }
                .map_err(err)?;
            }
        }
        book.save_to_buffer().map_err(err)
    }
}

fn opt_code<T>(v: Option<T>, f: impl Fn(T) -> String) -> Cell {
    v.map_or(Cell::Empty, |x| Cell::Text(f(x)))
}

impl CustomerList {
    pub fn table(&self, name: String) -> Table {
        Table {
            name,
            headers: vec![
                "customer_id",
                "name",
                "phone",
                "level",
                "visits",
                "spend",
                "average_spend",
                "first_visit",
                "last_visit",
                "quadrant",
                "rfm",
                "tier",
                "lifetime_value",
            ],
            rows: self
                .items
                .iter()
                .map(|r| {
                    vec![
                        r.customer_id.to_string().into(),
                        r.name.clone().into(),
                        r.phone.clone().into(),
                        r.level.clone().into(),
                        r.visits.into(),
                        r.spend.into(),
                        r.average_spend.into(),
                        r.first_visit.into(),
                        r.last_visit.into(),
                        r.quadrant.code().into(),
                        r.rfm.code().into(),
                        r.tier.as_str().into(),
                        r.lifetime_value.into(),
                    ]
                })
                .collect(),
        }
    }
}

impl MigrationList {
    pub fn table(&self, name: String) -> Table {
        Table {
            name,
            headers: vec![
                "customer_id",
                "name",
                "phone",
                "level",
                "a_quadrant",
                "a_visits",
                "a_spend",
                "b_quadrant",
                "b_visits",
                "b_spend",
            ],
            rows: self
                .items
                .iter()
                .map(|r| {
                    vec![
                        r.customer_id.to_string().into(),
                        r.name.clone().into(),
                        r.phone.clone().into(),
                        r.level.clone().into(),
                        opt_code(r.a_quadrant, |q| q.code().into()),
                        r.a_visits.into(),
                        r.a_spend.into(),
                        opt_code(r.b_quadrant, |q| q.code().into()),
                        r.b_visits.into(),
                        r.b_spend.into(),
                    ]
                })
                .collect(),
        }
    }
}

impl ChurnReport {
    pub fn table(&self, name: String) -> Table {
        Table {
            name,
            headers: vec![
                "customer_id",
                "name",
                "phone",
                "level",
                "visits",
                "visit_days",
                "spend",
                "last_visit",
                "days_since_last",
                "median_interval_days",
                "overdue_bp",
                "value_at_risk",
            ],
            rows: self
                .items
                .iter()
                .map(|r| {
                    vec![
                        r.customer_id.to_string().into(),
                        r.name.clone().into(),
                        r.phone.clone().into(),
                        r.level.clone().into(),
                        r.visits.into(),
                        i64::from(r.visit_days).into(),
                        r.spend.into(),
                        r.last_visit.into(),
                        r.days_since_last.into(),
                        Cell::Text(r.median_interval_days.to_string()),
                        r.overdue_bp.into(),
                        r.value_at_risk.into(),
                    ]
                })
                .collect(),
        }
    }
}

impl CohortReport {
    pub fn table(&self, name: String) -> Table {
        let months = self
            .cohorts
            .iter()
            .map(|c| c.retained.len())
            .max()
            .unwrap_or(0);
        // Columns month_0..month_N (at most MAX_COHORTS).
        static MONTHS: LazyLock<Vec<String>> =
            LazyLock::new(|| (0..MAX_COHORTS).map(|i| format!("month_{i}")).collect());
        let mut headers = vec!["cohort", "customers"];
        headers.extend(MONTHS.iter().take(months).map(String::as_str));
        Table {
            name,
            headers,
            rows: self
                .cohorts
                .iter()
                .map(|c| {
                    let mut row: Vec<Cell> = vec![c.month.clone().into(), c.customers.into()];
                    row.extend(c.retained.iter().map(|n| Cell::from(*n)));
                    row
                })
                .collect(),
        }
    }
}

impl AffinityReport {
    pub fn table(&self, name: String) -> Table {
        Table {
            name,
            headers: vec![
                "a_item_id",
                "a_name",
                "b_item_id",
                "b_name",
                "together",
                "a_bills",
                "b_bills",
                "support_bp",
                "confidence_ab_bp",
                "confidence_ba_bp",
                "lift_bp",
            ],
            rows: self
                .pairs
                .iter()
                .map(|p| {
                    vec![
                        p.a.item_id.to_string().into(),
                        p.a.name.clone().into(),
                        p.b.item_id.to_string().into(),
                        p.b.name.clone().into(),
                        p.together.into(),
                        p.a_bills.into(),
                        p.b_bills.into(),
                        p.support_bp.into(),
                        p.confidence_ab_bp.into(),
                        p.confidence_ba_bp.into(),
                        p.lift_bp.into(),
                    ]
                })
                .collect(),
        }
    }
}

impl LiabilitySeries {
    pub fn table(&self, name: String) -> Table {
        Table {
            name,
            headers: vec!["date", "principal", "bonus", "stored_value", "points"],
            rows: self
                .points
                .iter()
                .map(|p| {
                    vec![
                        p.date.into(),
                        p.principal.into(),
                        p.bonus.into(),
                        p.stored_value.into(),
                        p.points.into(),
                    ]
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn series_dates_end_each_step() {
        assert_eq!(
            series_dates(d("2026-01-15"), d("2026-03-10"), "month").unwrap(),
            [d("2026-01-31"), d("2026-02-28"), d("2026-03-10")]
        );
        assert_eq!(
            series_dates(d("2026-01-01"), d("2026-01-15"), "week").unwrap(),
            [d("2026-01-07"), d("2026-01-14"), d("2026-01-15")]
        );
        assert_eq!(
            series_dates(d("2026-01-01"), d("2026-01-01"), "day").unwrap(),
            [d("2026-01-01")]
        );
        assert!(series_dates(d("2020-01-01"), d("2026-01-01"), "day").is_err());
        assert!(series_dates(d("2026-01-01"), d("2026-02-01"), "year").is_err());
    }

    #[test]
    fn parameters_are_checked() {
        assert_eq!(parse_k(None).unwrap(), 20_000);
        assert_eq!(parse_k(Some("1.5")).unwrap(), 15_000);
        assert!(parse_k(Some("0.5")).is_err());
        assert!(parse_k(Some("1.23456")).is_err());
        assert_eq!(parse_tiers("100,400,1500").unwrap(), TierSizes::default());
        assert!(parse_tiers("100,400").is_err());
        assert!(parse_tiers("5000,5000,1").is_err());
        assert_eq!(parse_state("none", "to").unwrap(), NO_VISITS);
        assert_eq!(parse_state("b", "to").unwrap(), Quadrant::B.index());
        assert!(parse_state("E", "to").is_err());
        assert!(
            Period::of(
                Some(d("2026-02-01")),
                Some(d("2026-01-01")),
                d("2026-01-01")
            )
            .is_err()
        );
        assert_eq!(
            Period::of(None, None, d("2026-12-31")).unwrap().from,
            d("2026-01-01")
        );
    }

    #[test]
    fn csv_has_a_bom_and_yuan() {
        let t = Table {
            name: "x".into(),
            headers: vec!["name", "spend", "visits"],
            rows: vec![vec![
                "张三".into(),
                Money::from_fen(12_850).into(),
                3i64.into(),
            ]],
        };
        let csv = t.to_csv().unwrap();
        assert!(csv.starts_with("\u{feff}".as_bytes()));
        assert_eq!(
            String::from_utf8(csv[3..].to_vec()).unwrap(),
            "name,spend,visits\n张三,128.50,3\n"
        );
        let x = t.to_xlsx().unwrap();
        assert_eq!(&x[..2], b"PK");
    }
}
