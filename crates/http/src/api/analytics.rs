//! Customer value analytics: quadrants and their migration, RFM, the value pyramid, the
//! churn watch, card liveness, cohorts, dish affinity, levels, liability over time, and a
//! customer's value. Lists answer JSON, or a file with `format=csv` (UTF-8 with a BOM) or
//! `format=xlsx`.
//!
//! Periods are local dates (`from`, `to`, inclusive; default the last 365 days); `store`
//! is a store's code or id (default: the chain). Thresholds are decimals: a customer with
//! more visits than `freq_threshold` is high-frequency, one spending more than
//! `spend_threshold` fen per visit is high-spend (defaults: the period's medians).

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Auth, Path, Query};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use patron_app::analytics::{
    self as an, AffinityReport, CardLiveness, ChurnQuery, ChurnReport, CohortReport, CustomerList,
    CustomerValue, LevelDistribution, LiabilitySeries, Listing, MigrationList, MigrationQuery,
    MigrationReport, PyramidReport, QuadrantReport, RfmFilter, RfmReport, Table, ValueOverview,
    ValueQuery,
};
use patron_app::{App, AppError};
use patron_domain::ValidationErrors;
use patron_domain::analytics::{Quadrant, Tier};
use patron_domain::ids::CustomerId;
use patron_domain::page::{DEFAULT_PER_PAGE, PageRequest};
use serde::Deserialize;
use utoipa::IntoParams;

/// What a list endpoint answers with.
enum Format {
    Json,
    Csv,
    Xlsx,
}

fn format(f: Option<&str>) -> Result<Format, ApiError> {
    match f.map(|s| s.trim().to_ascii_lowercase()).as_deref() {
        None | Some("") | Some("json") => Ok(Format::Json),
        Some("csv") => Ok(Format::Csv),
        Some("xlsx") => Ok(Format::Xlsx),
        Some(_) => Err(AppError::from(ValidationErrors::single(
            "format",
            "invalid_format",
            "format is json, csv or xlsx",
        ))
        .into()),
    }
}

fn listing(f: &Format, page: Option<u32>, per_page: Option<u32>) -> Listing {
    match f {
        Format::Json => Listing::Page(PageRequest::new(
            page.unwrap_or(1),
            per_page.unwrap_or(DEFAULT_PER_PAGE),
        )),
        _ => Listing::All,
    }
}

/// The JSON, or the table as a file to download.
fn answer<T: serde::Serialize>(
    f: Format,
    v: T,
    table: impl FnOnce(&T) -> Table,
) -> ApiResult<Response> {
    let (ext, mime) = match f {
        Format::Json => return Ok(axum::Json(v).into_response()),
        Format::Csv => ("csv", "text/csv; charset=utf-8"),
        Format::Xlsx => (
            "xlsx",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ),
    };
    let t = table(&v);
    let bytes = if ext == "csv" {
        t.to_csv()?
    } else {
        t.to_xlsx()?
    };
    let name = t.name;
    Ok((
        [
            (header::CONTENT_TYPE, mime.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}.{ext}\""),
            ),
        ],
        bytes,
    )
        .into_response())
}

fn value_query(
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    store: Option<String>,
    freq: Option<String>,
    spend: Option<String>,
) -> ValueQuery {
    ValueQuery {
        from,
        to,
        store,
        freq_threshold: freq,
        spend_threshold: spend,
        ..ValueQuery::new()
    }
}

fn with_tiers(
    mut q: ValueQuery,
    tiers: Option<&str>,
    ltv_years: Option<u32>,
) -> Result<ValueQuery, AppError> {
    if let Some(t) = tiers.filter(|t| !t.trim().is_empty()) {
        q.tiers = an::parse_tiers(t)?;
    }
    if let Some(y) = ltv_years {
        if !(1..=50).contains(&y) {
            return Err(ValidationErrors::single(
                "ltv_years",
                "invalid_ltv_years",
                "ltv_years is 1 to 50",
            )
            .into());
        }
        q.ltv_years = y;
    }
    Ok(q)
}

fn period_name(l: &CustomerList) -> String {
    format!("{}-{}", l.period.from, l.period.to)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QuadrantParams {
    /// First day, YYYY-MM-DD (default: 364 days before `to`).
    from: Option<NaiveDate>,
    /// Last day, inclusive (default: today).
    to: Option<NaiveDate>,
    /// Store code or id (default: the chain).
    store: Option<String>,
    /// Visits; more is high frequency (default: the median).
    freq_threshold: Option<String>,
    /// Fen per visit; more is high spend (default: the median).
    spend_threshold: Option<String>,
    /// Scatter points to return (default 2000, at most 20000): all customers, or an even
    /// sample of them.
    points: Option<usize>,
}

/// The contribution quadrants (visit frequency × average spend): customers, visits,
/// revenue and their shares per quadrant (B high/high, A high spend, D high frequency,
/// C low/low), the thresholds used, and points for a scatter chart.
#[utoipa::path(get, path = "/analytics/quadrants", tag = "analytics", security(("bearer" = [])), params(QuadrantParams),
    responses((status = 200, body = QuadrantReport), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn quadrants(
    State(app): State<App>,
    Auth(a): Auth,
    Query(p): Query<QuadrantParams>,
) -> ApiResult<axum::Json<QuadrantReport>> {
    let q = value_query(p.from, p.to, p.store, p.freq_threshold, p.spend_threshold);
    Ok(axum::Json(
        app.quadrants(&a, &q, p.points.unwrap_or(an::DEFAULT_POINTS))
            .await?,
    ))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OverviewParams {
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    store: Option<String>,
    freq_threshold: Option<String>,
    spend_threshold: Option<String>,
}

/// Quadrants, RFM and the churn watch's totals of one period, from one pass over its
/// visits (the churn watch counts the period's visits, as of its last day).
#[utoipa::path(get, path = "/analytics/overview", tag = "analytics", security(("bearer" = [])), params(OverviewParams),
    responses((status = 200, body = ValueOverview), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn overview(
    State(app): State<App>,
    Auth(a): Auth,
    Query(p): Query<OverviewParams>,
) -> ApiResult<axum::Json<ValueOverview>> {
    let q = value_query(p.from, p.to, p.store, p.freq_threshold, p.spend_threshold);
    Ok(axum::Json(app.value_overview(&a, &q).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ValueListParams {
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    store: Option<String>,
    freq_threshold: Option<String>,
    spend_threshold: Option<String>,
    /// Pyramid tier sizes in basis points: platinum, gold, iron (default 100,400,1500).
    tiers: Option<String>,
    /// Years of the lifetime value (default 3).
    ltv_years: Option<u32>,
    /// Scores 1–5 (RFM list only).
    r: Option<u8>,
    f: Option<u8>,
    m: Option<u8>,
    page: Option<u32>,
    per_page: Option<u32>,
    /// json (default), csv or xlsx (every customer of the list).
    format: Option<String>,
}

impl ValueListParams {
    fn query(&self) -> Result<ValueQuery, AppError> {
        with_tiers(
            value_query(
                self.from,
                self.to,
                self.store.clone(),
                self.freq_threshold.clone(),
                self.spend_threshold.clone(),
            ),
            self.tiers.as_deref(),
            self.ltv_years,
        )
    }
}

/// The customers of one quadrant (A, B, C or D), by spend, with their RFM scores, tier
/// and lifetime value.
#[utoipa::path(get, path = "/analytics/quadrants/{quadrant}/customers", tag = "analytics", security(("bearer" = [])),
    params(("quadrant" = String, Path, description = "A, B, C or D"), ValueListParams),
    responses((status = 200, body = CustomerList, description = "JSON, or a file with format=csv|xlsx"), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn quadrant_customers(
    State(app): State<App>,
    Auth(a): Auth,
    Path(quadrant): Path<String>,
    Query(p): Query<ValueListParams>,
) -> ApiResult<Response> {
    let quadrant = Quadrant::parse(&quadrant).ok_or_else(|| {
        AppError::from(ValidationErrors::single(
            "quadrant",
            "invalid_quadrant",
            "a quadrant is A, B, C or D",
        ))
    })?;
    let f = format(p.format.as_deref())?;
    let list = app
        .quadrant_customers(&a, &p.query()?, quadrant, listing(&f, p.page, p.per_page))
        .await?;
    answer(f, list, |l| {
        l.table(format!("quadrant-{}-{}", quadrant.code(), period_name(l)))
    })
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RfmParams {
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    store: Option<String>,
}

/// RFM scores (quintiles of recency, frequency and monetary; equal values share a
/// score): customers per score, the recency × frequency grid, and every cell.
#[utoipa::path(get, path = "/analytics/rfm", tag = "analytics", security(("bearer" = [])), params(RfmParams),
    responses((status = 200, body = RfmReport), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn rfm(
    State(app): State<App>,
    Auth(a): Auth,
    Query(p): Query<RfmParams>,
) -> ApiResult<axum::Json<RfmReport>> {
    let q = value_query(p.from, p.to, p.store, None, None);
    Ok(axum::Json(app.rfm(&a, &q).await?))
}

/// The customers with the given RFM scores (`r`, `f`, `m`; any when absent), by spend.
#[utoipa::path(get, path = "/analytics/rfm/customers", tag = "analytics", security(("bearer" = [])), params(ValueListParams),
    responses((status = 200, body = CustomerList, description = "JSON, or a file with format=csv|xlsx"), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn rfm_customers(
    State(app): State<App>,
    Auth(a): Auth,
    Query(p): Query<ValueListParams>,
) -> ApiResult<Response> {
    let f = format(p.format.as_deref())?;
    let filter = RfmFilter {
        r: p.r,
        f: p.f,
        m: p.m,
    };
    let list = app
        .rfm_customers(&a, &p.query()?, filter, listing(&f, p.page, p.per_page))
        .await?;
    answer(f, list, |l| l.table(format!("rfm-{}", period_name(l))))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PyramidParams {
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    store: Option<String>,
    /// Tier sizes in basis points: platinum, gold, iron (default 100,400,1500).
    tiers: Option<String>,
    /// Years of the lifetime value (default 3).
    ltv_years: Option<u32>,
}

/// The value pyramid by spend (platinum top 1%, gold next 4%, iron next 15%, lead the
/// rest by default), with spend shares and lifetime values (spend per year × years).
#[utoipa::path(get, path = "/analytics/pyramid", tag = "analytics", security(("bearer" = [])), params(PyramidParams),
    responses((status = 200, body = PyramidReport), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn pyramid(
    State(app): State<App>,
    Auth(a): Auth,
    Query(p): Query<PyramidParams>,
) -> ApiResult<axum::Json<PyramidReport>> {
    let q = with_tiers(
        value_query(p.from, p.to, p.store, None, None),
        p.tiers.as_deref(),
        p.ltv_years,
    )?;
    Ok(axum::Json(app.pyramid(&a, &q).await?))
}

/// The customers of one tier (platinum, gold, iron or lead), by spend.
#[utoipa::path(get, path = "/analytics/pyramid/{tier}/customers", tag = "analytics", security(("bearer" = [])),
    params(("tier" = String, Path, description = "platinum, gold, iron or lead"), ValueListParams),
    responses((status = 200, body = CustomerList, description = "JSON, or a file with format=csv|xlsx"), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn pyramid_customers(
    State(app): State<App>,
    Auth(a): Auth,
    Path(tier): Path<String>,
    Query(p): Query<ValueListParams>,
) -> ApiResult<Response> {
    let tier = Tier::parse(&tier).ok_or_else(|| {
        AppError::from(ValidationErrors::single(
            "tier",
            "invalid_tier",
            "a tier is platinum, gold, iron or lead",
        ))
    })?;
    let f = format(p.format.as_deref())?;
    let list = app
        .pyramid_customers(&a, &p.query()?, tier, listing(&f, p.page, p.per_page))
        .await?;
    answer(f, list, |l| {
        l.table(format!("tier-{}-{}", tier.as_str(), period_name(l)))
    })
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MigrationParams {
    /// Period A (default: as long as B, just before it).
    a_from: Option<NaiveDate>,
    a_to: Option<NaiveDate>,
    /// Period B (default: the last 365 days).
    b_from: Option<NaiveDate>,
    b_to: Option<NaiveDate>,
    store: Option<String>,
    /// Applied to both periods (default: each period's medians).
    freq_threshold: Option<String>,
    spend_threshold: Option<String>,
    page: Option<u32>,
    per_page: Option<u32>,
    /// json (default), csv or xlsx (customer lists only).
    format: Option<String>,
}

impl MigrationParams {
    fn query(&self) -> MigrationQuery {
        MigrationQuery {
            a_from: self.a_from,
            a_to: self.a_to,
            b_from: self.b_from,
            b_to: self.b_to,
            store: self.store.clone(),
            freq_threshold: self.freq_threshold.clone(),
            spend_threshold: self.spend_threshold.clone(),
        }
    }
}

/// The migration matrix between periods A and B: how many customers moved from each
/// quadrant (or from no visits) to each quadrant (or to no visits), and the moves that
/// matter most (A → B, D → B, B lost).
#[utoipa::path(get, path = "/analytics/migration", tag = "analytics", security(("bearer" = [])), params(MigrationParams),
    responses((status = 200, body = MigrationReport), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn migration(
    State(app): State<App>,
    Auth(a): Auth,
    Query(p): Query<MigrationParams>,
) -> ApiResult<axum::Json<MigrationReport>> {
    Ok(axum::Json(app.migration(&a, &p.query()).await?))
}

/// The customers behind one cell of the migration matrix (`from` and `to` are A, B, C,
/// D or none), by period-B spend.
#[utoipa::path(get, path = "/analytics/migration/{from}/{to}/customers", tag = "analytics", security(("bearer" = [])),
    params(("from" = String, Path, description = "state in period A: A, B, C, D or none"),
           ("to" = String, Path, description = "state in period B: A, B, C, D or none"), MigrationParams),
    responses((status = 200, body = MigrationList, description = "JSON, or a file with format=csv|xlsx"), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn migration_customers(
    State(app): State<App>,
    Auth(a): Auth,
    Path((from, to)): Path<(String, String)>,
    Query(p): Query<MigrationParams>,
) -> ApiResult<Response> {
    let from = an::parse_state(&from, "from")?;
    let to = an::parse_state(&to, "to")?;
    let f = format(p.format.as_deref())?;
    let list = app
        .migration_customers(&a, &p.query(), from, to, listing(&f, p.page, p.per_page))
        .await?;
    answer(f, list, |l| {
        l.table(format!("migration-{}-{}", l.from, l.to))
    })
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChurnParams {
    /// The day the gap is measured to (default: today).
    as_of: Option<NaiveDate>,
    /// Only visits from this day (default: the whole history).
    from: Option<NaiveDate>,
    store: Option<String>,
    /// At risk beyond k × the customer's median interval (default 2; e.g. 1.5).
    k: Option<String>,
    /// Distinct visit days the rule needs (default 3).
    min_visits: Option<u32>,
    page: Option<u32>,
    per_page: Option<u32>,
    /// json (default), csv or xlsx (every customer at risk).
    format: Option<String>,
}

/// The churn watch: customers whose days since their last visit exceed k × their own
/// median interval between visits (at least 3 visit days), by value at risk (what they
/// spend in a year at their rhythm).
#[utoipa::path(get, path = "/analytics/churn", tag = "analytics", security(("bearer" = [])), params(ChurnParams),
    responses((status = 200, body = ChurnReport, description = "JSON, or a file with format=csv|xlsx"), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn churn(
    State(app): State<App>,
    Auth(a): Auth,
    Query(p): Query<ChurnParams>,
) -> ApiResult<Response> {
    let f = format(p.format.as_deref())?;
    let q = ChurnQuery {
        as_of: p.as_of,
        from: p.from,
        store: p.store,
        k: p.k,
        min_visits: p.min_visits,
    };
    let r = app
        .churn_watch(&a, &q, listing(&f, p.page, p.per_page))
        .await?;
    answer(f, r, |r| r.table(format!("churn-{}", r.as_of)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LivenessParams {
    /// Default: today.
    as_of: Option<NaiveDate>,
    /// The window, in days up to `as_of` (default 90).
    days: Option<u32>,
}

/// Card liveness: of the cards issued, how many were used (a visit with the card, or a
/// top-up) in the last `days` days, overall and per status.
#[utoipa::path(get, path = "/analytics/card-liveness", tag = "analytics", security(("bearer" = [])), params(LivenessParams),
    responses((status = 200, body = CardLiveness), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn card_liveness(
    State(app): State<App>,
    Auth(a): Auth,
    Query(p): Query<LivenessParams>,
) -> ApiResult<axum::Json<CardLiveness>> {
    Ok(axum::Json(app.card_liveness(&a, p.as_of, p.days).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CohortParams {
    /// First cohort, YYYY-MM (default: 11 months before `to`).
    from: Option<String>,
    /// Last month, YYYY-MM (default: this month).
    to: Option<String>,
    store: Option<String>,
    /// json (default), csv or xlsx.
    format: Option<String>,
}

/// Retention cohorts: customers by month of first visit, and how many of them visited
/// again in each month after.
#[utoipa::path(get, path = "/analytics/cohorts", tag = "analytics", security(("bearer" = [])), params(CohortParams),
    responses((status = 200, body = CohortReport, description = "JSON, or a file with format=csv|xlsx"), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn cohorts(
    State(app): State<App>,
    Auth(a): Auth,
    Query(p): Query<CohortParams>,
) -> ApiResult<Response> {
    let f = format(p.format.as_deref())?;
    let r = app
        .cohorts(&a, p.from.as_deref(), p.to.as_deref(), p.store.as_deref())
        .await?;
    answer(f, r, |r| r.table(format!("cohorts-{}-{}", r.from, r.to)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AffinityParams {
    /// First business day (default: 364 days before `to`).
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    store: Option<String>,
    /// Pairs on fewer bills are left out (default 2).
    min_together: Option<i64>,
    /// Pairs returned (default 50, at most 1000).
    limit: Option<usize>,
    /// json (default), csv or xlsx.
    format: Option<String>,
}

/// Dish affinity: pairs of dishes on the same bill, with support, confidence both ways
/// and lift (basis points), by lift.
#[utoipa::path(get, path = "/analytics/affinity", tag = "analytics", security(("bearer" = [])), params(AffinityParams),
    responses((status = 200, body = AffinityReport, description = "JSON, or a file with format=csv|xlsx"), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn affinity(
    State(app): State<App>,
    Auth(a): Auth,
    Query(p): Query<AffinityParams>,
) -> ApiResult<Response> {
    let f = format(p.format.as_deref())?;
    let r = app
        .affinity(
            &a,
            p.from,
            p.to,
            p.store.as_deref(),
            p.min_together,
            p.limit,
        )
        .await?;
    answer(f, r, |r| {
        r.table(format!("affinity-{}-{}", r.period.from, r.period.to))
    })
}

/// Customers per member level, with shares.
#[utoipa::path(get, path = "/analytics/levels", tag = "analytics", security(("bearer" = [])),
    responses((status = 200, body = LevelDistribution), (status = 403, body = ErrorBody)))]
pub async fn levels(
    State(app): State<App>,
    Auth(a): Auth,
) -> ApiResult<axum::Json<LevelDistribution>> {
    Ok(axum::Json(app.level_distribution(&a).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SeriesParams {
    /// First day (default: 364 days before `to`).
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    /// day, week or month (default); at most 400 points.
    step: Option<String>,
    /// Entries made at this store only.
    store: Option<String>,
    /// json (default), csv or xlsx.
    format: Option<String>,
}

/// Stored value (principal, bonus) and points the customers hold at the end of each
/// step: the merchant's liability over time.
#[utoipa::path(get, path = "/analytics/liability", tag = "analytics", security(("bearer" = [])), params(SeriesParams),
    responses((status = 200, body = LiabilitySeries, description = "JSON, or a file with format=csv|xlsx"), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn liability(
    State(app): State<App>,
    Auth(a): Auth,
    Query(p): Query<SeriesParams>,
) -> ApiResult<Response> {
    let f = format(p.format.as_deref())?;
    let r = app
        .liability_series(&a, p.from, p.to, p.step.as_deref(), p.store.as_deref())
        .await?;
    answer(f, r, |r| {
        r.table(format!("liability-{}-{}-{}", r.step, r.from, r.to))
    })
}

/// A customer's value: quadrant, RFM scores and pyramid tier among the chain's customers
/// of the last 365 days, lifetime value, and churn risk by their own rhythm.
#[utoipa::path(get, path = "/customers/{id}/value", tag = "customers", security(("bearer" = [])),
    params(("id" = String, Path, description = "customer id")),
    responses((status = 200, body = CustomerValue), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn customer_value(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<CustomerId>,
) -> ApiResult<axum::Json<CustomerValue>> {
    Ok(axum::Json(app.customer_value(&a, id).await?))
}
