//! Customer value analytics: pure rules over per-customer aggregates.
//!
//! The store sums each customer's visits of a period ([`CustomerStats`]); everything here
//! turns those aggregates into the figures of the value analysis. No floating point:
//! money is fen, averages and medians are exact [`Ratio`]s, shares are basis points
//! rounded half up ([`bp`]).
//!
//! Definitions (the DuckDB comparison of `patron bench analytics` uses the same ones):
//! - **Visits** are the non-reversed visits of a known customer; **spend** is the money
//!   actually paid on them (the visits' growth value, so partial refunds reduce it).
//!   **Frequency** is the number of visits in the period, **average spend** is spend ÷
//!   visits (exact).
//! - **Median** ([`median`]): the middle value; for an even count, the mean of the two
//!   middle values, kept exact (a half for integers, a ratio for averages).
//! - **Contribution quadrants** (the seed article's figure): a customer is *high* on an
//!   axis when their value is **strictly above** the threshold (ties at the threshold go
//!   low: with a median of one visit, one-visit customers are low-frequency, not all
//!   customers high). B = high frequency and high spend, A = high spend / low frequency,
//!   D = high frequency / low spend, C = low / low. Thresholds are the medians of the
//!   period's active customers unless given.
//! - **RFM**: each of recency (the last visit: later scores higher), frequency and
//!   monetary (spend) scores `1 + ⌊5 × (customers with a strictly lower value) ÷ n⌋`, so
//!   equal values always share a score and the order of the input never matters.
//! - **Value pyramid**: by spend, a customer's tier follows the share of customers
//!   spending strictly more: platinum while that share is below the first cut (1%), gold
//!   below the second (1% + 4%), iron below the third (+ 15%), lead otherwise. Ties share
//!   the higher tier.
//! - **Lifetime value**: spend per year at the period's rate × expected years:
//!   `spend × 365 × years ÷ days in the period`, rounded down to the fen (= average spend
//!   × visits per year × years).
//! - **Churn watch**: intervals are the day gaps between consecutive *distinct* visit days
//!   (a lunch and a dinner on one day are one day). A customer with at least
//!   `min_visits` (3) distinct visit days is at risk when the days since the last visit
//!   exceed `k` (2) × their median interval. Value at risk is what they would spend in a
//!   year at their own rhythm: average spend × 365 ÷ median interval, rounded down.

use crate::ids::{CustomerId, MenuItemId};
use crate::money::Money;
use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::HashMap;
use utoipa::ToSchema;

/// An exact fraction `num / den` with `den > 0`, compared by cross-multiplication.
#[derive(Debug, Clone, Copy)]
pub struct Ratio {
    num: i128,
    den: i128,
}

fn gcd(mut a: i128, mut b: i128) -> i128 {
    a = a.abs();
    b = b.abs();
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.max(1)
}

impl Ratio {
    /// `num / den`. `den` must not be zero (panics: a caller bug). Not reduced: ratios
    /// compare by cross-multiplication, and reducing (i128 divisions) on every average
    /// of a million customers costs more than it saves; see [`Ratio::reduced`].
    pub fn new(num: i128, den: i128) -> Ratio {
        assert!(den != 0, "ratio with a zero denominator");
        if den < 0 {
            Ratio {
                num: -num,
                den: -den,
            }
        } else {
            Ratio { num, den }
        }
    }
    /// In lowest terms.
    pub fn reduced(self) -> Ratio {
        let g = gcd(self.num, self.den);
        Ratio {
            num: self.num / g,
            den: self.den / g,
        }
    }
    /// Whether it is a whole number.
    pub fn is_integer(self) -> bool {
        self.num % self.den == 0
    }
    pub fn int(n: i64) -> Ratio {
        Ratio {
            num: n.into(),
            den: 1,
        }
    }
    pub fn num(self) -> i128 {
        self.num
    }
    pub fn den(self) -> i128 {
        self.den
    }
    /// The mean of two ratios.
    pub fn mean(a: Ratio, b: Ratio) -> Ratio {
        Ratio::new(a.num * b.den + b.num * a.den, 2 * a.den * b.den).reduced()
    }
    /// `self × num ÷ den` (den > 0).
    pub fn scale(self, num: i128, den: i128) -> Ratio {
        Ratio::new(self.num * num, self.den * den)
    }
    /// Rounded to the nearest integer, halves away from zero.
    pub fn round_half_up(self) -> i64 {
        let q = (2 * self.num.abs() + self.den) / (2 * self.den);
        (if self.num < 0 { -q } else { q }) as i64
    }
    /// Rounded down (towards negative infinity).
    pub fn floor(self) -> i64 {
        self.num.div_euclid(self.den) as i64
    }
    /// For display only (charts): the nearest double.
    pub fn to_f64(self) -> f64 {
        self.num as f64 / self.den as f64
    }
    /// Parses a non-negative decimal such as `4`, `2.5` or `128.75`.
    pub fn parse_decimal(s: &str) -> Option<Ratio> {
        let s = s.trim();
        let (int, frac) = s.split_once('.').unwrap_or((s, ""));
        if int.is_empty() && frac.is_empty()
            || int.len() > 15
            || frac.len() > 6
            || !int.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let den = 10i128.pow(frac.len() as u32);
        let i: i128 = if int.is_empty() { 0 } else { int.parse().ok()? };
        let f: i128 = if frac.is_empty() {
            0
        } else {
            frac.parse().ok()?
        };
        Some(Ratio::new(i * den + f, den).reduced())
    }
}

impl PartialEq for Ratio {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Ratio {}
impl PartialOrd for Ratio {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Ratio {
    fn cmp(&self, o: &Self) -> Ordering {
        (self.num * o.den).cmp(&(o.num * self.den))
    }
}

/// `part ÷ whole` in basis points, rounded half up; 0 when `whole` is 0.
pub fn bp(part: i128, whole: i128) -> i64 {
    if whole == 0 {
        0
    } else {
        Ratio::new(part * 10_000, whole).round_half_up()
    }
}

/// The median of `values` (reordered in place): the middle one, or the mean of the two
/// middle ones for an even count. `None` for no values.
pub fn median(values: &mut [Ratio]) -> Option<Ratio> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    let (_, hi, _) = values.select_nth_unstable(n / 2);
    let hi = *hi;
    if n % 2 == 1 {
        return Some(hi);
    }
    // The lower middle is the largest value of the lower half.
    let lo = *values[..n / 2].iter().max().expect("n >= 2");
    Some(Ratio::mean(lo, hi))
}

/// A day number (days since 1970-01-01) for interval arithmetic.
pub fn day_number(d: NaiveDate) -> i32 {
    (d - NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days() as i32
}

/// What the days of a customer's visits say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VisitDays {
    pub first: i32,
    pub last: i32,
    /// Distinct days.
    pub distinct: u32,
    /// The median of the gaps between consecutive distinct days; `None` with fewer than
    /// two distinct days.
    pub median_interval: Option<Ratio>,
}

/// First and last day, distinct days and the median interval from the day numbers of a
/// customer's visits in any order. `days` is scratch space (left holding the gaps), so a
/// scan of a million customers reuses one buffer. `None` for no days.
pub fn visit_days(days: &mut Vec<i32>) -> Option<VisitDays> {
    days.sort_unstable();
    days.dedup();
    let (first, last) = (*days.first()?, *days.last()?);
    let distinct = days.len() as u32;
    for i in 1..days.len() {
        days[i - 1] = days[i] - days[i - 1];
    }
    days.pop();
    let n = days.len();
    let median_interval = (n > 0).then(|| {
        let (lower, hi, _) = days.select_nth_unstable(n / 2);
        let hi = i128::from(*hi);
        if n % 2 == 1 {
            Ratio::int(hi as i64)
        } else {
            let lo = i128::from(*lower.iter().max().expect("n >= 2"));
            Ratio::new(lo + hi, 2).reduced()
        }
    });
    Some(VisitDays {
        first,
        last,
        distinct,
        median_interval,
    })
}

/// Distinct visit days and the median interval between consecutive ones (see
/// [`visit_days`]).
pub fn visit_intervals(days: &mut Vec<i32>) -> (u32, Option<Ratio>) {
    visit_days(days).map_or((0, None), |v| (v.distinct, v.median_interval))
}

/// One customer's visits in a period (or their history up to a day).
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerStats {
    pub customer: CustomerId,
    /// Non-reversed visits (at least 1).
    pub visits: i64,
    /// Money paid on them (growth value), fen.
    pub spend: Money,
    pub first_visit: NaiveDate,
    pub last_visit: NaiveDate,
    /// Distinct visit days, when the visit days were read.
    pub visit_days: Option<u32>,
    /// Median interval between distinct visit days (see [`visit_intervals`]).
    pub median_interval: Option<Ratio>,
}

impl CustomerStats {
    /// Spend per visit, exact.
    pub fn average_spend(&self) -> Ratio {
        Ratio::new(self.spend.fen().into(), self.visits.max(1).into())
    }
    pub fn frequency(&self) -> Ratio {
        Ratio::int(self.visits)
    }
}

/// The four contribution quadrants of the seed article.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
pub enum Quadrant {
    /// High frequency, high spend: the most valuable customers (keep them).
    B,
    /// High spend, low frequency: build loyalty (move them to B).
    A,
    /// High frequency, low spend: raise the spend (move them to B).
    D,
    /// Low frequency, low spend.
    C,
}

impl Quadrant {
    /// In the order reports show them.
    pub const ALL: [Quadrant; 4] = [Quadrant::B, Quadrant::A, Quadrant::D, Quadrant::C];

    pub fn code(self) -> &'static str {
        match self {
            Quadrant::A => "A",
            Quadrant::B => "B",
            Quadrant::C => "C",
            Quadrant::D => "D",
        }
    }
    /// `a`–`d`, any case.
    pub fn parse(s: &str) -> Option<Quadrant> {
        match s.trim().to_ascii_uppercase().as_str() {
            "A" => Some(Quadrant::A),
            "B" => Some(Quadrant::B),
            "C" => Some(Quadrant::C),
            "D" => Some(Quadrant::D),
            _ => None,
        }
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            Quadrant::B => "高频高额",
            Quadrant::A => "低频高额",
            Quadrant::D => "高频低额",
            Quadrant::C => "低频低额",
        }
    }
    pub fn label_en(self) -> &'static str {
        match self {
            Quadrant::B => "high frequency, high spend",
            Quadrant::A => "high spend, low frequency",
            Quadrant::D => "high frequency, low spend",
            Quadrant::C => "low frequency, low spend",
        }
    }
    /// Position in [`Quadrant::ALL`].
    pub fn index(self) -> usize {
        match self {
            Quadrant::B => 0,
            Quadrant::A => 1,
            Quadrant::D => 2,
            Quadrant::C => 3,
        }
    }
}

/// Where a customer stands on both axes: strictly above a threshold is high.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// Visits in the period.
    pub frequency: Ratio,
    /// Fen per visit.
    pub average_spend: Ratio,
}

/// The medians of the customers' frequencies and average spends; `None` without customers.
pub fn median_thresholds(stats: &[CustomerStats]) -> Option<Thresholds> {
    let mut f: Vec<Ratio> = stats.iter().map(CustomerStats::frequency).collect();
    let mut s: Vec<Ratio> = stats.iter().map(CustomerStats::average_spend).collect();
    Some(Thresholds {
        frequency: median(&mut f)?,
        average_spend: median(&mut s)?,
    })
}

/// The customer's quadrant (ties at a threshold count as low).
pub fn classify(s: &CustomerStats, t: &Thresholds) -> Quadrant {
    let high_f = s.frequency() > t.frequency;
    let high_s = s.average_spend() > t.average_spend;
    match (high_f, high_s) {
        (true, true) => Quadrant::B,
        (false, true) => Quadrant::A,
        (true, false) => Quadrant::D,
        (false, false) => Quadrant::C,
    }
}

/// A quadrant's totals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuadrantTotals {
    pub quadrant: Quadrant,
    pub customers: u64,
    pub visits: i64,
    pub spend: Money,
}

/// Totals per quadrant, in [`Quadrant::ALL`] order.
pub fn quadrant_totals(stats: &[CustomerStats], t: &Thresholds) -> [QuadrantTotals; 4] {
    let mut out = Quadrant::ALL.map(|q| QuadrantTotals {
        quadrant: q,
        customers: 0,
        visits: 0,
        spend: Money::ZERO,
    });
    for s in stats {
        let o = &mut out[classify(s, t).index()];
        o.customers += 1;
        o.visits += s.visits;
        o.spend = o.spend + s.spend;
    }
    out
}

/// Rows and columns of a migration matrix: the four quadrants, then "no visits".
pub const MIGRATION_STATES: usize = 5;
/// The index of "no visits in the period".
pub const NO_VISITS: usize = 4;

/// The index of a customer's state in a migration matrix.
pub fn state_index(q: Option<Quadrant>) -> usize {
    q.map_or(NO_VISITS, Quadrant::index)
}

/// How many customers moved from each state in period A to each state in period B
/// (`cells[from][to]`, indices by [`state_index`]). A customer active in neither period
/// is in neither input and in no cell; `cells[NO_VISITS][NO_VISITS]` is always 0.
pub fn migration(
    a: &HashMap<CustomerId, Quadrant>,
    b: &HashMap<CustomerId, Quadrant>,
) -> [[u64; MIGRATION_STATES]; MIGRATION_STATES] {
    let mut cells = [[0u64; MIGRATION_STATES]; MIGRATION_STATES];
    for (c, qa) in a {
        cells[qa.index()][state_index(b.get(c).copied())] += 1;
    }
    for (c, qb) in b {
        if !a.contains_key(c) {
            cells[NO_VISITS][qb.index()] += 1;
        }
    }
    cells
}

/// A quintile score: `1 + ⌊5 × lower ÷ n⌋`, where `lower` counts the customers with a
/// strictly lower value (so 1..=5, and equal values share a score).
pub fn quintile(lower: usize, n: usize) -> u8 {
    if n == 0 {
        return 1;
    }
    (1 + (5 * lower.min(n - 1)) / n) as u8
}

/// Recency, frequency and monetary scores, 1 (worst) to 5 (best).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema)]
pub struct Rfm {
    pub r: u8,
    pub f: u8,
    pub m: u8,
}

impl Rfm {
    /// "543" style code.
    pub fn code(self) -> String {
        format!("{}{}{}", self.r, self.f, self.m)
    }
}

/// A value tier of the pyramid.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    Platinum,
    Gold,
    Iron,
    Lead,
}

impl Tier {
    pub const ALL: [Tier; 4] = [Tier::Platinum, Tier::Gold, Tier::Iron, Tier::Lead];
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Platinum => "platinum",
            Tier::Gold => "gold",
            Tier::Iron => "iron",
            Tier::Lead => "lead",
        }
    }
    pub fn parse(s: &str) -> Option<Tier> {
        Tier::ALL
            .into_iter()
            .find(|t| t.as_str() == s.trim().to_ascii_lowercase())
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            Tier::Platinum => "铂金",
            Tier::Gold => "黄金",
            Tier::Iron => "铁",
            Tier::Lead => "铅",
        }
    }
    pub fn index(self) -> usize {
        self as usize
    }
}

/// The sizes of the top three tiers in basis points of the customers (the rest is lead).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct TierSizes {
    pub platinum_bp: u32,
    pub gold_bp: u32,
    pub iron_bp: u32,
}

impl Default for TierSizes {
    /// Platinum the top 1%, gold the next 4%, iron the next 15%.
    fn default() -> Self {
        TierSizes {
            platinum_bp: 100,
            gold_bp: 400,
            iron_bp: 1500,
        }
    }
}

impl TierSizes {
    /// Each size at least 1 bp, together at most 100%.
    pub fn is_valid(self) -> bool {
        self.platinum_bp >= 1
            && self.gold_bp >= 1
            && self.iron_bp >= 1
            && self.platinum_bp + self.gold_bp + self.iron_bp <= 10_000
    }
    /// The tier of a customer `higher` of `n` customers spend strictly more than.
    pub fn tier(self, higher: usize, n: usize) -> Tier {
        let share = higher as u128 * 10_000;
        let n = n as u128;
        let p = u128::from(self.platinum_bp);
        let g = p + u128::from(self.gold_bp);
        let i = g + u128::from(self.iron_bp);
        if share < p * n {
            Tier::Platinum
        } else if share < g * n {
            Tier::Gold
        } else if share < i * n {
            Tier::Iron
        } else {
            Tier::Lead
        }
    }
}

/// Lifetime value: `spend × 365 × years ÷ days`, rounded down (days ≥ 1).
pub fn lifetime_value(spend: Money, days: i64, years: u32) -> Money {
    Money::from_fen(
        Ratio::new(
            i128::from(spend.fen()) * 365 * i128::from(years),
            i128::from(days.max(1)),
        )
        .floor(),
    )
}

/// The ranks a population's customers are scored against: sorted figures of every
/// customer of the period. Built once, it scores any customer by binary search, so the
/// whole population costs O(n log n).
#[derive(Debug, Clone, Default)]
pub struct Population {
    last: Vec<i32>,
    visits: Vec<i64>,
    spend: Vec<i64>,
}

impl Population {
    pub fn new(stats: &[CustomerStats]) -> Population {
        let mut last: Vec<i32> = stats.iter().map(|s| day_number(s.last_visit)).collect();
        let mut visits: Vec<i64> = stats.iter().map(|s| s.visits).collect();
        let mut spend: Vec<i64> = stats.iter().map(|s| s.spend.fen()).collect();
        last.sort_unstable();
        visits.sort_unstable();
        spend.sort_unstable();
        Population {
            last,
            visits,
            spend,
        }
    }
    pub fn len(&self) -> usize {
        self.visits.len()
    }
    pub fn is_empty(&self) -> bool {
        self.visits.is_empty()
    }
    /// The RFM scores of a customer with these figures.
    pub fn rfm(&self, last_visit: NaiveDate, visits: i64, spend: Money) -> Rfm {
        let n = self.len();
        let d = day_number(last_visit);
        Rfm {
            r: quintile(self.last.partition_point(|x| *x < d), n),
            f: quintile(self.visits.partition_point(|x| *x < visits), n),
            m: quintile(self.spend.partition_point(|x| *x < spend.fen()), n),
        }
    }
    /// The pyramid tier of a customer who spent `spend`.
    pub fn tier(&self, spend: Money, sizes: TierSizes) -> Tier {
        let higher = self.spend.len() - self.spend.partition_point(|x| *x <= spend.fen());
        sizes.tier(higher, self.len())
    }
}

/// The churn rule: at least `min_visits` distinct visit days, and more than `k` × the
/// median interval since the last visit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct ChurnRule {
    /// k in basis points (20000 = 2×).
    pub k_bp: u32,
    pub min_visits: u32,
}

impl Default for ChurnRule {
    fn default() -> Self {
        ChurnRule {
            k_bp: 20_000,
            min_visits: 3,
        }
    }
}

/// How overdue a regular customer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChurnAssessment {
    pub days_since_last: i64,
    pub median_interval: Ratio,
    /// Days since the last visit ÷ the median interval, in basis points, rounded down.
    pub overdue_bp: i64,
    pub at_risk: bool,
    /// Average spend × 365 ÷ median interval, rounded down.
    pub value_at_risk: Money,
}

/// The churn assessment of a customer as of a day; `None` when the rule does not apply
/// (too few distinct visit days, or days not read).
pub fn assess_churn(
    s: &CustomerStats,
    as_of: NaiveDate,
    rule: ChurnRule,
) -> Option<ChurnAssessment> {
    let days = s.visit_days?;
    let med = s.median_interval?;
    if days < rule.min_visits.max(2) {
        return None;
    }
    let since = (as_of - s.last_visit).num_days();
    let since_r = Ratio::int(since);
    let limit = med.scale(rule.k_bp.into(), 10_000);
    Some(ChurnAssessment {
        days_since_last: since,
        median_interval: med,
        overdue_bp: Ratio::new(i128::from(since) * 10_000 * med.den, med.num).floor(),
        at_risk: since_r > limit,
        value_at_risk: Money::from_fen(
            Ratio::new(
                i128::from(s.spend.fen()) * 365 * med.den,
                i128::from(s.visits.max(1)) * med.num,
            )
            .floor(),
        ),
    })
}

/// A month as a number (year × 12 + month − 1), for cohort arithmetic.
pub fn month_index(d: NaiveDate) -> i32 {
    d.year() * 12 + d.month0() as i32
}

/// "YYYY-MM" of a month index.
pub fn month_label(idx: i32) -> String {
    format!("{:04}-{:02}", idx.div_euclid(12), idx.rem_euclid(12) + 1)
}

/// Parses "YYYY-MM" into a month index.
pub fn parse_month(s: &str) -> Option<i32> {
    let (y, m) = s.trim().split_once('-')?;
    let (y, m): (i32, i32) = (y.parse().ok()?, m.parse().ok()?);
    ((1..=12).contains(&m) && (1900..=9999).contains(&y)).then_some(y * 12 + m - 1)
}

/// Customers of a cohort (first visit in `first`) with a visit in `month`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CohortCount {
    pub first: i32,
    pub month: i32,
    pub customers: u64,
}

/// A retention cohort: the customers whose first visit fell in a month, and how many of
/// them came back in each month after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Cohort {
    /// YYYY-MM of the first visit.
    pub month: String,
    pub customers: u64,
    /// `retained[k]`: customers with a visit k months after their first month
    /// (`retained[0]` is the cohort itself).
    pub retained: Vec<u64>,
    /// The same as shares of the cohort, basis points rounded half up.
    pub retained_bp: Vec<i64>,
}

/// Cohorts with first months in `[from, to]`, each followed up to month `to` (missing
/// months count 0).
pub fn cohorts(counts: &[CohortCount], from: i32, to: i32) -> Vec<Cohort> {
    let mut out = Vec::new();
    for first in from..=to {
        let mut retained = vec![0u64; (to - first + 1) as usize];
        for c in counts.iter().filter(|c| c.first == first) {
            if c.month >= first && c.month <= to {
                retained[(c.month - first) as usize] += c.customers;
            }
        }
        let size = retained[0];
        if size == 0 {
            continue;
        }
        out.push(Cohort {
            month: month_label(first),
            customers: size,
            retained_bp: retained
                .iter()
                .map(|r| bp((*r).into(), size.into()))
                .collect(),
            retained,
        });
    }
    out
}

/// How two dishes go together, over `baskets` bills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PairAffinity {
    pub a: MenuItemId,
    pub b: MenuItemId,
    /// Bills with both.
    pub together: u64,
    /// Bills with a, with b.
    pub a_bills: u64,
    pub b_bills: u64,
    /// together ÷ baskets.
    pub support_bp: i64,
    /// P(b | a) = together ÷ a_bills.
    pub confidence_ab_bp: i64,
    /// P(a | b) = together ÷ b_bills.
    pub confidence_ba_bp: i64,
    /// together × baskets ÷ (a_bills × b_bills): above 10000 they go together more often
    /// than chance.
    pub lift_bp: i64,
}

/// Support, confidence and lift of a pair (all basis points, rounded half up).
pub fn pair_affinity(
    a: MenuItemId,
    b: MenuItemId,
    together: u64,
    a_bills: u64,
    b_bills: u64,
    baskets: u64,
) -> PairAffinity {
    let (t, na, nb, n) = (
        i128::from(together),
        i128::from(a_bills),
        i128::from(b_bills),
        i128::from(baskets),
    );
    PairAffinity {
        a,
        b,
        together,
        a_bills,
        b_bills,
        support_bp: bp(t, n),
        confidence_ab_bp: bp(t, na),
        confidence_ba_bp: bp(t, nb),
        lift_bp: bp(t * n, na * nb),
    }
}

/// Evenly spaced indices of at most `cap` of `n` items (all of them when `n <= cap`):
/// a deterministic sample for scatter plots.
pub fn sample_indices(n: usize, cap: usize) -> Vec<usize> {
    if n <= cap {
        (0..n).collect()
    } else {
        (0..cap).map(|i| i * n / cap).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use uuid::Uuid;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }
    fn cid(n: u128) -> CustomerId {
        CustomerId(Uuid::from_u128(n))
    }
    fn stats(n: u128, visits: i64, spend: i64, last: &str) -> CustomerStats {
        CustomerStats {
            customer: cid(n),
            visits,
            spend: Money::from_fen(spend),
            first_visit: d("2026-01-01"),
            last_visit: d(last),
            visit_days: None,
            median_interval: None,
        }
    }

    #[test]
    fn ratios_compare_and_round_exactly() {
        assert_eq!(Ratio::new(2, 4), Ratio::new(1, 2));
        assert!(Ratio::new(1, 3) < Ratio::new(34, 100));
        assert_eq!(Ratio::new(5, 2).round_half_up(), 3);
        assert_eq!(Ratio::new(-5, 2).round_half_up(), -3);
        assert_eq!(Ratio::new(7, 3).round_half_up(), 2);
        assert_eq!(Ratio::new(-7, 2).floor(), -4);
        assert_eq!(Ratio::parse_decimal("2.5"), Some(Ratio::new(5, 2)));
        assert_eq!(Ratio::parse_decimal("4"), Some(Ratio::int(4)));
        assert_eq!(Ratio::parse_decimal(".5"), Some(Ratio::new(1, 2)));
        for bad in ["", ".", "-1", "1e3", "1.2.3", "abc"] {
            assert_eq!(Ratio::parse_decimal(bad), None, "{bad}");
        }
        assert_eq!(bp(1, 3), 3333);
        assert_eq!(bp(2, 3), 6667);
        assert_eq!(bp(1, 0), 0);
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        let r = |v: &[i64]| v.iter().map(|x| Ratio::int(*x)).collect::<Vec<_>>();
        assert_eq!(median(&mut r(&[])), None);
        assert_eq!(median(&mut r(&[7])), Some(Ratio::int(7)));
        assert_eq!(median(&mut r(&[9, 1, 5])), Some(Ratio::int(5)));
        // Even: the mean of the two middle values, exact.
        assert_eq!(median(&mut r(&[4, 1, 3, 10])), Some(Ratio::new(7, 2)));
        assert_eq!(median(&mut r(&[2, 2])), Some(Ratio::int(2)));
    }

    #[test]
    fn intervals_are_between_distinct_days() {
        // Days 0, 0 (lunch and dinner), 3, 10, 11: gaps 3, 7, 1 → median 3.
        let mut days = vec![10, 0, 3, 0, 11];
        assert_eq!(visit_intervals(&mut days), (4, Some(Ratio::int(3))));
        let mut days = vec![0, 2, 12];
        assert_eq!(visit_intervals(&mut days), (3, Some(Ratio::int(6))));
        let mut days = vec![5, 5];
        assert_eq!(visit_intervals(&mut days), (1, None));
    }

    #[test]
    fn quadrants_by_hand() {
        // Frequencies 1, 2, 5, 6 → median 3.5; averages 100, 50, 20, 300 → median 75.
        let s = [
            stats(1, 1, 100, "2026-01-02"),
            stats(2, 2, 100, "2026-01-02"),
            stats(3, 5, 100, "2026-01-02"),
            stats(4, 6, 1800, "2026-01-02"),
        ];
        let t = median_thresholds(&s).unwrap();
        assert_eq!(t.frequency, Ratio::new(7, 2));
        assert_eq!(t.average_spend, Ratio::int(75));
        let q: Vec<Quadrant> = s.iter().map(|x| classify(x, &t)).collect();
        assert_eq!(q, [Quadrant::A, Quadrant::C, Quadrant::D, Quadrant::B]);
        // A value equal to the threshold is low.
        let t = Thresholds {
            frequency: Ratio::int(2),
            average_spend: Ratio::int(50),
        };
        assert_eq!(classify(&s[1], &t), Quadrant::C);
        let totals = quadrant_totals(&s, &t);
        assert_eq!(totals[Quadrant::B.index()].customers, 1);
        assert_eq!(totals[Quadrant::A.index()].spend, Money::from_fen(100));
    }

    #[test]
    fn migration_by_hand() {
        let a: HashMap<_, _> = [
            (cid(1), Quadrant::A),
            (cid(2), Quadrant::D),
            (cid(3), Quadrant::C),
        ]
        .into();
        let b: HashMap<_, _> = [
            (cid(1), Quadrant::B),
            (cid(2), Quadrant::B),
            (cid(4), Quadrant::C),
        ]
        .into();
        let m = migration(&a, &b);
        assert_eq!(m[Quadrant::A.index()][Quadrant::B.index()], 1);
        assert_eq!(m[Quadrant::D.index()][Quadrant::B.index()], 1);
        assert_eq!(m[Quadrant::C.index()][NO_VISITS], 1);
        assert_eq!(m[NO_VISITS][Quadrant::C.index()], 1);
        assert_eq!(m.iter().flatten().sum::<u64>(), 4);
    }

    #[test]
    fn quintiles_share_ties() {
        // Ten customers with visits 1..=10: two per score.
        let s: Vec<_> = (1..=10)
            .map(|i| stats(i as u128, i, i * 10, "2026-01-02"))
            .collect();
        let p = Population::new(&s);
        let f: Vec<u8> = s
            .iter()
            .map(|x| p.rfm(x.last_visit, x.visits, x.spend).f)
            .collect();
        assert_eq!(f, [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]);
        // Everyone visited last on the same day: all recency 1 (nobody is lower).
        assert!(
            s.iter()
                .all(|x| p.rfm(x.last_visit, x.visits, x.spend).r == 1)
        );
        assert_eq!(quintile(0, 1), 1);
        assert_eq!(quintile(4, 5), 5);
        // Above the whole population (a customer scored against an older snapshot).
        assert_eq!(quintile(5, 5), 5);
    }

    #[test]
    fn pyramid_tiers_by_hand() {
        // 100 customers spending 1..=100: top 1 platinum, next 4 gold, next 15 iron.
        let s: Vec<_> = (1..=100)
            .map(|i| stats(i as u128, 1, i as i64, "2026-01-02"))
            .collect();
        let p = Population::new(&s);
        let sizes = TierSizes::default();
        let count = |t: Tier| s.iter().filter(|x| p.tier(x.spend, sizes) == t).count();
        assert_eq!(
            (
                count(Tier::Platinum),
                count(Tier::Gold),
                count(Tier::Iron),
                count(Tier::Lead)
            ),
            (1, 4, 15, 80)
        );
        // Ties at the top share platinum.
        let s: Vec<_> = (1..=100)
            .map(|i| stats(i as u128, 1, if i > 97 { 500 } else { 1 }, "2026-01-02"))
            .collect();
        let p = Population::new(&s);
        assert_eq!(
            s.iter()
                .filter(|x| p.tier(x.spend, sizes) == Tier::Platinum)
                .count(),
            3
        );
        assert!(
            !TierSizes {
                platinum_bp: 0,
                gold_bp: 1,
                iron_bp: 1
            }
            .is_valid()
        );
        assert!(
            !TierSizes {
                platinum_bp: 5000,
                gold_bp: 5000,
                iron_bp: 1
            }
            .is_valid()
        );
    }

    #[test]
    fn lifetime_value_formula() {
        // ¥1,000 over a 365-day period, 3 years: ¥3,000.
        assert_eq!(
            lifetime_value(Money::from_yuan(1000), 365, 3),
            Money::from_yuan(3000)
        );
        // ¥100 over 30 days, 1 year: 10000 × 365 / 30 = 121666.67 → rounded down.
        assert_eq!(
            lifetime_value(Money::from_yuan(100), 30, 1),
            Money::from_fen(121_666)
        );
    }

    #[test]
    fn churn_by_hand() {
        let mut s = stats(1, 4, 40_000, "2026-03-01");
        let mut days: Vec<i32> = ["2026-01-01", "2026-01-11", "2026-01-21", "2026-03-01"]
            .iter()
            .map(|x| day_number(d(x)))
            .collect();
        let (n, med) = visit_intervals(&mut days);
        s.visit_days = Some(n);
        s.median_interval = med;
        // Gaps 10, 10, 39 → median 10.
        assert_eq!(med, Some(Ratio::int(10)));
        let rule = ChurnRule::default();
        // 20 days later: exactly 2× — not yet.
        let a = assess_churn(&s, d("2026-03-21"), rule).unwrap();
        assert!(!a.at_risk);
        assert_eq!(a.overdue_bp, 20_000);
        let a = assess_churn(&s, d("2026-03-22"), rule).unwrap();
        assert!(a.at_risk);
        assert_eq!(a.days_since_last, 21);
        // ¥100 a visit, every 10 days: ¥3,650 a year.
        assert_eq!(a.value_at_risk, Money::from_yuan(3650));
        // Too few distinct days.
        s.visit_days = Some(2);
        assert_eq!(assess_churn(&s, d("2026-06-01"), rule), None);
    }

    #[test]
    fn cohorts_by_hand() {
        let jan = parse_month("2026-01").unwrap();
        let c = |f: i32, m: i32, n: u64| CohortCount {
            first: jan + f,
            month: jan + m,
            customers: n,
        };
        let rows = [c(0, 0, 10), c(0, 1, 4), c(0, 2, 5), c(1, 1, 3), c(1, 2, 1)];
        let out = cohorts(&rows, jan, jan + 2);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].month, "2026-01");
        assert_eq!(out[0].retained, [10, 4, 5]);
        assert_eq!(out[0].retained_bp, [10_000, 4000, 5000]);
        assert_eq!(out[1].retained, [3, 1]);
        assert_eq!(out[1].retained_bp, [10_000, 3333]);
        assert_eq!(month_label(jan + 13), "2027-02");
        assert_eq!(parse_month("2026-13"), None);
    }

    #[test]
    fn affinity_by_hand() {
        let (a, b) = (
            MenuItemId(Uuid::from_u128(1)),
            MenuItemId(Uuid::from_u128(2)),
        );
        // 10 bills: a in 4, b in 5, both in 2.
        let p = pair_affinity(a, b, 2, 4, 5, 10);
        assert_eq!(
            (
                p.support_bp,
                p.confidence_ab_bp,
                p.confidence_ba_bp,
                p.lift_bp
            ),
            (2000, 5000, 4000, 10_000)
        );
        let p = pair_affinity(a, b, 3, 3, 3, 10);
        assert_eq!(p.lift_bp, 33_333);
    }

    #[test]
    fn samples_are_spread() {
        assert_eq!(sample_indices(3, 5), [0, 1, 2]);
        assert_eq!(sample_indices(10, 4), [0, 2, 5, 7]);
    }

    fn arb_stats() -> impl Strategy<Value = Vec<CustomerStats>> {
        prop::collection::vec((1i64..40, 0i64..200_000, 0u32..400), 0..120).prop_map(|v| {
            v.into_iter()
                .enumerate()
                .map(|(i, (visits, spend, ago))| CustomerStats {
                    customer: cid(i as u128),
                    visits,
                    spend: Money::from_fen(spend),
                    first_visit: d("2025-01-01"),
                    last_visit: d("2026-12-31") - chrono::Duration::days(ago.into()),
                    visit_days: None,
                    median_interval: None,
                })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn every_customer_in_exactly_one_quadrant(s in arb_stats()) {
            match median_thresholds(&s) {
                None => prop_assert!(s.is_empty()),
                Some(t) => {
                    let totals = quadrant_totals(&s, &t);
                    prop_assert_eq!(totals.iter().map(|q| q.customers).sum::<u64>(), s.len() as u64);
                    prop_assert_eq!(totals.iter().map(|q| q.spend.fen()).sum::<i64>(), s.iter().map(|x| x.spend.fen()).sum::<i64>());
                    // Strictly above the median: at most half are high on each axis.
                    let high_f = s.iter().filter(|x| matches!(classify(x, &t), Quadrant::B | Quadrant::D)).count();
                    let high_s = s.iter().filter(|x| matches!(classify(x, &t), Quadrant::B | Quadrant::A)).count();
                    prop_assert!(2 * high_f <= s.len() && 2 * high_s <= s.len());
                }
            }
        }

        #[test]
        fn migration_rows_and_columns_add_up(a in arb_stats(), b in arb_stats(), shift in 0usize..60) {
            // Period B's customers overlap period A's partly.
            let b: Vec<_> = b.into_iter().map(|mut x| { x.customer = cid(x.customer.0.as_u128() + shift as u128); x }).collect();
            let classify_all = |s: &[CustomerStats]| -> HashMap<CustomerId, Quadrant> {
                match median_thresholds(s) {
                    Some(t) => s.iter().map(|x| (x.customer, classify(x, &t))).collect(),
                    None => HashMap::new(),
                }
            };
            let (qa, qb) = (classify_all(&a), classify_all(&b));
            let m = migration(&qa, &qb);
            for q in Quadrant::ALL {
                let row: u64 = m[q.index()].iter().sum();
                prop_assert_eq!(row, qa.values().filter(|x| **x == q).count() as u64);
                let col: u64 = m.iter().map(|r| r[q.index()]).sum();
                prop_assert_eq!(col, qb.values().filter(|x| **x == q).count() as u64);
            }
            prop_assert_eq!(m[NO_VISITS][NO_VISITS], 0);
        }

        #[test]
        fn rfm_scores_are_monotone_and_tie_stable(s in arb_stats()) {
            let p = Population::new(&s);
            let scores: Vec<Rfm> = s.iter().map(|x| p.rfm(x.last_visit, x.visits, x.spend)).collect();
            for (x, sx) in s.iter().zip(&scores) {
                prop_assert!((1..=5).contains(&sx.r) && (1..=5).contains(&sx.f) && (1..=5).contains(&sx.m));
                for (y, sy) in s.iter().zip(&scores) {
                    if x.visits <= y.visits { prop_assert!(sx.f <= sy.f); }
                    if x.spend <= y.spend { prop_assert!(sx.m <= sy.m); }
                    if x.last_visit <= y.last_visit { prop_assert!(sx.r <= sy.r); }
                }
            }
            // Without ties, each score holds a fifth of the customers (±1).
            let n = s.len();
            let mut distinct: Vec<i64> = s.iter().map(|x| x.spend.fen()).collect();
            distinct.sort_unstable();
            distinct.dedup();
            if distinct.len() == n && n >= 5 {
                for m in 1..=5u8 {
                    let c = scores.iter().filter(|x| x.m == m).count();
                    prop_assert!(c.abs_diff(n / 5) <= 1, "score {} has {} of {}", m, c, n);
                }
            }
        }

        #[test]
        fn tiers_follow_spend(s in arb_stats(), p in 1u32..3000, g in 1u32..3000, i in 1u32..3000) {
            let sizes = TierSizes { platinum_bp: p, gold_bp: g, iron_bp: i };
            let pop = Population::new(&s);
            for x in &s {
                for y in &s {
                    if x.spend >= y.spend {
                        prop_assert!(pop.tier(x.spend, sizes) <= pop.tier(y.spend, sizes));
                    }
                }
            }
            // Platinum never exceeds its share unless ties force it.
            let plat = s.iter().filter(|x| pop.tier(x.spend, sizes) == Tier::Platinum).count();
            let mut sp: Vec<i64> = s.iter().map(|x| x.spend.fen()).collect();
            sp.sort_unstable();
            sp.dedup();
            if sp.len() == s.len() && !s.is_empty() {
                prop_assert!(plat as u64 * 10_000 <= u64::from(p) * s.len() as u64 + 10_000);
                prop_assert!(plat >= 1);
            }
        }

        #[test]
        fn median_lies_between_the_middles(v in prop::collection::vec(0i64..1000, 1..50)) {
            let mut r: Vec<Ratio> = v.iter().map(|x| Ratio::int(*x)).collect();
            let m = median(&mut r).unwrap();
            let below = v.iter().filter(|x| Ratio::int(**x) < m).count();
            let above = v.iter().filter(|x| Ratio::int(**x) > m).count();
            prop_assert!(2 * below <= v.len() && 2 * above <= v.len());
        }

        #[test]
        fn churn_flag_matches_the_definition(gaps in prop::collection::vec(1i32..60, 2..12), since in 0i64..400, k in 10_000u32..40_000) {
            let mut days = vec![0i32];
            for g in &gaps { days.push(days.last().unwrap() + g); }
            let last = *days.last().unwrap();
            let mut sorted = gaps.clone();
            sorted.sort_unstable();
            let n = sorted.len();
            let twice_median = i64::from(sorted[(n - 1) / 2] + sorted[n / 2]);
            let (count, med) = visit_intervals(&mut days);
            let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
            let s = CustomerStats {
                customer: cid(1),
                visits: i64::from(count),
                spend: Money::from_fen(10_000),
                first_visit: epoch,
                last_visit: epoch + chrono::Duration::days(last.into()),
                visit_days: Some(count),
                median_interval: med,
            };
            let a = assess_churn(&s, s.last_visit + chrono::Duration::days(since), ChurnRule { k_bp: k, min_visits: 3 }).unwrap();
            // since > k × median ⇔ 2 × 10000 × since > k × twice_median.
            prop_assert_eq!(a.at_risk, 20_000 * since > i64::from(k) * twice_median);
        }
    }
}
