//! The demo's history: two years of dining up to today, written through the till use
//! case ([`App::checkout`]) at simulated times ([`crate::at`]), so the ledger, points lots,
//! visits, levels, coupons, receipts and checkout lines are exactly what the product
//! itself writes, and every report has something to show.
//!
//! The story, all drawn from one seeded RNG:
//! - The chain starts using Patron two years ago ([`Calendar`]): the menu, the gift
//!   catalogue and the coupon campaigns are set up then, and 40% of the members are on
//!   file from that day; the others join evenly over the two years (in the batches the
//!   generator writes them in, so their `created_at` is their batch's time) and dine the
//!   day they join or soon after.
//! - Each member dines at a rate drawn from a log-normal distribution (heavy-tailed: most
//!   come once or twice a year, "loyal" members a few times, a few regulars about every
//!   week), higher for people dining on their company's account. Members marked "lost"
//!   stopped coming 6–18 months ago, as did a tenth of the others. Prospects have not
//!   dined yet. For 5,000 members that makes about 15,000 bills: the volume is bounded by
//!   the time `patron demo` may take, one real checkout per bill.
//! - Visits fall at lunch (11:30–13:30) and dinner (17:30–20:30), more on Fridays and
//!   weekends, mostly at the member's home store. Parties of 1–10 (mostly 2–4) order
//!   from the menu in proportion: cold and hot dishes, seafood and soup for larger
//!   tables, rice per head, dim sum, drinks, beer and wine at dinner, the odd set menu.
//! - A third of the card holders pay with stored value and top up at the tiers before
//!   running low (within the prepaid cap); the others pay by WeChat, Alipay, bank card or
//!   cash. Points pay part of a bill now and then, and buy gifts.
//! - Coupons: a welcome voucher for new members, an anniversary 12%-off campaign each
//!   year, and "spend ¥500, get ¥50 off next time" issued by the checkout itself; members
//!   use what they hold when the bill qualifies.
//! - About 0.3% of bills are undone the same evening by the owner with a reason
//!   (反结账); a wrong bill or wrong tender is taken again at once.
//! - The daily jobs (points expiry, coupon expiry, level review) run on 1 January and
//!   1 July, and once more at the end as of today.
//!
//! Everything is posted in time order (the ledger's hash chain is in posting order), and
//! nothing is dated after the moment generation started. Walk-in guests who are not
//! members add anonymous bills. The demo tenant does not require card PINs: its cards
//! have none. The same seed gives the same history on the same day; since the history
//! ends today and weekdays matter, another day gives another one.

use super::data::{MENU, TENANT_CODE};
use crate::cards::TopUp;
use crate::checkout::{BillLineInput, CheckoutRequest, CustomerRef, ReverseCheckout, TenderInput};
use crate::coupons::{IssueRuleInput, TemplateInput};
use crate::loyalty::{GiftInput, RedeemGift};
use crate::{Actor, App, AppError, at};
use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc, Weekday};
use patron_domain::coupon::{CouponKind, Validity};
use patron_domain::ids::{CardId, CustomerId, StoreId};
use patron_domain::ledger::Tender;
use patron_domain::menu::MenuItem;
use patron_domain::money::Money;
use patron_domain::settings::TenantSettings;
use patron_domain::stored_value;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;
use uuid::Uuid;

/// How far back the history goes.
const HISTORY_DAYS: i64 = 730;
/// Share of the members on file when the history starts; the rest join over time.
const LAUNCH_SHARE_PERCENT: u64 = 40;
/// Walk-in (non-member) bills per member bill, in percent.
const WALK_IN_PERCENT: u64 = 10;
/// One bill in this many is undone the same day (about 0.3%).
const REVERSAL_EVERY: u32 = 333;
/// Members with a history at most: on larger runs only that many, evenly spread, dine
/// and get coupons (the others stay on file), so that a million members do not mean
/// ten million bills.
const MAX_DINERS: usize = 10_000;

/// Whether member `d` of `n` has a history (see [`MAX_DINERS`]).
fn dines(d: usize, n: usize) -> bool {
    n <= MAX_DINERS || d * MAX_DINERS / n != (d + 1) * MAX_DINERS / n
}

/// (name, English name, points, stock; None = unlimited)
const GIFTS: &[(&str, &str, i64, Option<i64>)] = &[
    ("代客泊车券", "Valet parking voucher", 500, Some(200)),
    ("招牌酱料礼盒", "Signature sauce gift box", 800, None),
    ("生日蛋糕（6 寸）", "Birthday cake (6 inch)", 2_000, None),
    (
        "明前龙井 100 克",
        "Longjing green tea, 100 g",
        1_500,
        Some(80),
    ),
    (
        "定制骨瓷餐具套装",
        "Bone china tableware set",
        3_000,
        Some(30),
    ),
    ("包间免费升级", "Free private-room upgrade", 5_000, Some(20)),
];

/// Why a bill was undone, and whether it is then taken again (a wrong bill or tender).
const REVERSAL_REASONS: &[(&str, bool)] = &[
    ("菜品问题，客人不满意，整单退回", false),
    ("客人投诉上菜太慢，经理同意免单", false),
    ("结错账，重新结账", true),
    ("收银员选错支付方式，重新结账", true),
    ("客人投诉菜里有异物", false),
    ("重复结账，撤销一笔", false),
    ("客人要求分开结账", true),
];

/// External tenders with their weights.
const TENDERS: [(Tender, u32); 4] = [
    (Tender::Wechat, 45),
    (Tender::Alipay, 30),
    (Tender::BankCard, 15),
    (Tender::Cash, 10),
];

/// Top-up amounts (yuan) members choose, with weights.
const TOP_UPS: [(i64, u32); 5] = [(300, 15), (500, 15), (1_000, 40), (2_000, 15), (3_000, 15)];

/// The demo's calendar: the history runs from [`Calendar::setup`] (two years before the
/// day generation starts, local time) to [`Calendar::end`] (the moment it starts).
pub(super) struct Calendar {
    /// When the chain starts using Patron: tenant, menu and campaigns are set up.
    pub setup: DateTime<Utc>,
    /// Nothing is dated later.
    pub end: DateTime<Utc>,
    first_day: NaiveDate,
    offset_minutes: i64,
}

impl Calendar {
    pub fn new(end: DateTime<Utc>) -> Calendar {
        let offset_minutes = i64::from(TenantSettings::default().utc_offset_minutes);
        let today = (end + Duration::minutes(offset_minutes)).date_naive();
        let first_day = today - Duration::days(HISTORY_DAYS);
        let mut c = Calendar {
            setup: end,
            end,
            first_day,
            offset_minutes,
        };
        c.setup = c.instant(first_day, 9 * 60);
        c
    }

    /// The instant of a local day and minute of the day.
    fn instant(&self, day: NaiveDate, minute: i64) -> DateTime<Utc> {
        day.and_hms_opt(0, 0, 0).expect("midnight").and_utc()
            + Duration::minutes(minute - self.offset_minutes)
    }

    fn local_date(&self, t: DateTime<Utc>) -> NaiveDate {
        (t + Duration::minutes(self.offset_minutes)).date_naive()
    }

    /// When member `i` of `n` joins: the first 40% when the history starts (the chain's
    /// existing customers), the others evenly over the two years, in opening hours.
    pub fn joined(&self, i: u64, n: u64) -> DateTime<Utc> {
        let launch = n * LAUNCH_SHARE_PERCENT / 100;
        if i < launch || n == 0 {
            return self.setup;
        }
        // Position in the period, in thousandths of a day.
        let span = HISTORY_DAYS as u64 * 1_000;
        let pos = (i - launch + 1) * span / (n - launch);
        let day = self.first_day + Duration::days((pos / 1_000) as i64);
        // 10:00–21:00 local.
        let minute = 600 + (pos % 1_000) as i64 * 660 / 1_000;
        self.instant(day, minute).clamp(self.setup, self.end)
    }
}

/// What the history needs to know about a member.
pub(super) struct Diner {
    pub customer: CustomerId,
    /// The member's active card, if any.
    pub card: Option<CardId>,
    pub store: StoreId,
    pub joined: DateTime<Utc>,
    pub traits: Traits,
}

/// A member's lifecycle stage and whether they dine on a company's account.
#[derive(Debug, Clone, Copy)]
pub(super) struct Traits {
    stage: Stage,
    business: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Loyal,
    Customer,
    Lost,
    /// Prospects and potential customers: on file, not dined yet.
    NotYet,
}

impl Traits {
    pub fn of(stage: Option<&str>, business: bool) -> Traits {
        let stage = match stage {
            Some("loyal") => Stage::Loyal,
            Some("lost") => Stage::Lost,
            Some("prospect" | "potential") => Stage::NotYet,
            _ => Stage::Customer,
        };
        Traits { stage, business }
    }
}

/// What the history wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Written {
    pub checkouts: u64,
    pub reversals: u64,
    pub top_ups: u64,
}

/// A coupon a member holds, as the till would see it.
struct Held {
    code: String,
    from: NaiveDate,
    to: NaiveDate,
    min_spend: Money,
}

/// A member's habits and what the simulation knows of their card.
struct State {
    stored_value: bool,
    top_up: i64,
    tender: Tender,
    balance: Money,
    points: i64,
    coupons: Vec<Held>,
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Jobs,
    /// Coupons of campaign `k` to a share of the members.
    Campaign(usize),
    /// Welcome coupons for the members who joined at this instant.
    Welcome,
    Visit {
        diner: u32,
        store: u8,
        party: u8,
        dinner: bool,
    },
    WalkIn {
        store: u8,
        party: u8,
        dinner: bool,
    },
}

struct Event {
    at: DateTime<Utc>,
    kind: Kind,
}

/// A bill waiting to be undone later the same evening.
struct PendingReversal {
    at: DateTime<Utc>,
    checkout: Uuid,
    diner: Option<u32>,
    store: u8,
    reason: usize,
    lines: Vec<BillLineInput>,
    party: Option<i32>,
    table: Option<String>,
}

/// Weighted choice by linear scan (small tables).
fn weighted<T: Copy>(rng: &mut impl Rng, table: &[(T, u32)]) -> T {
    let total: u32 = table.iter().map(|(_, w)| *w).sum();
    let mut x = rng.random_range(0..total);
    for (v, w) in table {
        if x < *w {
            return *v;
        }
        x -= w;
    }
    table[table.len() - 1].0
}

/// A standard normal draw (Box–Muller); simulation only, never money.
fn normal(rng: &mut impl Rng) -> f64 {
    let u: f64 = rng.random_range(f64::EPSILON..1.0);
    let v: f64 = rng.random();
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

/// Visits a year: log-normal around a median by stage (heavy-tailed), at most 80, and
/// a few regulars who come every week or so.
fn yearly_rate(rng: &mut impl Rng, t: Traits) -> f64 {
    let regular = match t.stage {
        Stage::Loyal => 0.02,
        Stage::Customer => 0.003,
        _ => 0.0,
    };
    if regular > 0.0 && rng.random_bool(regular) {
        return rng.random_range(25.0..55.0);
    }
    let (median, sigma) = match t.stage {
        Stage::Loyal => (2.0, 0.8),
        Stage::Customer => (0.6, 1.0),
        Stage::Lost => (1.8, 0.8),
        Stage::NotYet => return 0.0,
    };
    let business = if t.business { 1.5 } else { 1.0 };
    (median * (sigma * normal(rng)).exp() * business).clamp(0.1, 80.0)
}

/// How much busier a weekday is (Saturday busiest).
fn weekday_weight(d: NaiveDate) -> f64 {
    match d.weekday() {
        Weekday::Mon | Weekday::Tue => 0.8,
        Weekday::Wed => 0.85,
        Weekday::Thu => 0.9,
        Weekday::Fri => 1.1,
        Weekday::Sat => 1.5,
        Weekday::Sun => 1.35,
    }
}
/// The mean of [`weekday_weight`] over a week, over its maximum: the share of drawn
/// days kept when thinning by weekday.
const WEEKDAY_KEEP: f64 = (0.8 + 0.8 + 0.85 + 0.9 + 1.1 + 1.5 + 1.35) / 7.0 / 1.5;

/// A meal on a day: (dinner?, minute of the local day). Lunch 11:30–13:30 peaking at
/// 12:30, dinner 17:30–20:30 peaking at 19:00.
fn meal_time(rng: &mut impl Rng, day: NaiveDate) -> (bool, i64) {
    let weekend = matches!(day.weekday(), Weekday::Sat | Weekday::Sun);
    let dinner = rng.random_bool(if weekend { 0.6 } else { 0.55 });
    let (start, width) = if dinner {
        (17 * 60 + 30, 180)
    } else {
        (11 * 60 + 30, 120)
    };
    // Triangular: the mean of two uniforms.
    let minute = start + (rng.random_range(0..=width) + rng.random_range(0..=width)) / 2;
    (dinner, minute)
}

/// Party sizes 1–10, mostly 2–4; larger for company dinners.
fn party_size(rng: &mut impl Rng, business: bool, dinner: bool) -> u8 {
    const PARTY: [(u8, u32); 10] = [
        (1, 8),
        (2, 30),
        (3, 20),
        (4, 20),
        (5, 7),
        (6, 6),
        (7, 3),
        (8, 3),
        (9, 1),
        (10, 2),
    ];
    let n = weighted(rng, &PARTY);
    if business && dinner && rng.random_bool(0.4) {
        n.max(rng.random_range(4..=10))
    } else {
        n
    }
}

/// Adds `q` of dish `i` to an order.
fn add(out: &mut Vec<(usize, u32)>, i: usize, q: u32) {
    if q == 0 {
        return;
    }
    match out.iter_mut().find(|(j, _)| *j == i) {
        Some(l) => l.1 += q,
        None => out.push((i, q)),
    }
}

/// Adds `k` different dishes of a course (not already ordered) to an order.
fn dishes(rng: &mut impl Rng, out: &mut Vec<(usize, u32)>, course: &[(usize, u32)], k: u32) {
    let (mut picked, mut tries) = (0, 0);
    while picked < k && tries < 20 {
        tries += 1;
        let i = weighted(rng, course);
        if !out.iter().any(|(j, _)| *j == i) {
            out.push((i, 1));
            picked += 1;
        }
    }
}

/// The menu by course, as indices into [`MENU`], with choice weights.
struct Menu {
    ids: Vec<patron_domain::ids::MenuItemId>,
    cold: Vec<(usize, u32)>,
    hot: Vec<(usize, u32)>,
    seafood: Vec<(usize, u32)>,
    soup: Vec<(usize, u32)>,
    staple: Vec<(usize, u32)>,
    dim_sum: Vec<(usize, u32)>,
    soft: Vec<(usize, u32)>,
    tea: Vec<(usize, u32)>,
    rice: usize,
    beer: Vec<(usize, u32)>,
    wine: Vec<(usize, u32)>,
    baijiu: usize,
    set_two: usize,
    set_family: usize,
    set_business: usize,
    set_birthday: usize,
}

impl Menu {
    fn new(items: &[MenuItem]) -> Result<Menu, AppError> {
        let find = |name: &str| {
            MENU.iter()
                .position(|d| d.name == name)
                .ok_or_else(|| AppError::Internal(format!("demo menu has no {name}")))
        };
        let course = |category: usize, keep: &dyn Fn(&super::data::Dish) -> bool| {
            MENU.iter()
                .enumerate()
                .filter(|(_, d)| d.category == category && keep(d))
                .map(|(i, d)| (i, d.popularity + 1))
                .collect::<Vec<_>>()
        };
        let rice = find("米饭")?;
        Ok(Menu {
            ids: items.iter().map(|i| i.id).collect(),
            cold: course(0, &|_| true),
            hot: course(1, &|_| true),
            seafood: course(2, &|_| true),
            soup: course(3, &|_| true),
            staple: course(4, &|d| d.price >= 1_000),
            dim_sum: course(5, &|_| true),
            soft: course(6, &|d| !d.name.contains('壶')),
            tea: course(6, &|d| d.name.contains('壶')),
            rice,
            beer: course(7, &|d| d.name.contains("啤酒")),
            wine: course(7, &|d| !d.name.contains("啤酒") && d.price < 100_000),
            baijiu: find("五粮液（500ml）")?,
            set_two: find("双人套餐")?,
            set_family: find("四人家庭套餐")?,
            set_business: find("商务宴请套餐（十人）")?,
            set_birthday: find("生日宴套餐（十人）")?,
        })
    }

    /// A table's order: (MENU index, quantity), each dish once.
    fn order(
        &self,
        rng: &mut impl Rng,
        party: u8,
        dinner: bool,
        business: bool,
    ) -> Vec<(usize, u32)> {
        let n = u32::from(party);
        let mut out: Vec<(usize, u32)> = Vec::new();
        let set = if n >= 8 && dinner && business && rng.random_bool(0.3) {
            Some(self.set_business)
        } else if n >= 8 && dinner && rng.random_bool(0.1) {
            Some(self.set_birthday)
        } else if n == 2 && rng.random_bool(0.06) {
            Some(self.set_two)
        } else if (3..=5).contains(&n) && rng.random_bool(0.06) {
            Some(self.set_family)
        } else {
            None
        };
        if let Some(s) = set {
            add(&mut out, s, 1);
        } else {
            let cold = if dinner {
                n * 35 / 100 + u32::from(n >= 2)
            } else {
                n / 4
            };
            dishes(rng, &mut out, &self.cold, cold.min(4));
            let hot = if n == 1 {
                1
            } else {
                n.div_ceil(2) + u32::from(dinner && n >= 4)
            };
            dishes(rng, &mut out, &self.hot, hot.min(6));
            let seafood = if dinner {
                n / 3
            } else {
                u32::from(n >= 4 && rng.random_bool(0.4))
            };
            dishes(rng, &mut out, &self.seafood, seafood.min(3));
            let soup = u32::from(n >= 3 && rng.random_bool(0.7)) + u32::from(n >= 7);
            dishes(rng, &mut out, &self.soup, soup);
            if n == 1 || rng.random_bool(0.4) {
                dishes(rng, &mut out, &self.staple, 1);
            }
            add(&mut out, self.rice, (n * 7).div_ceil(10));
            if rng.random_bool(0.5) {
                let k = rng.random_range(1..=(n / 2).max(1));
                dishes(rng, &mut out, &self.dim_sum, k.min(3));
            }
        }
        // Drinks.
        for _ in 0..n {
            if rng.random_bool(0.35) {
                let i = weighted(rng, &self.soft);
                add(&mut out, i, 1);
            }
        }
        if n >= 3 && rng.random_bool(0.2) {
            let i = weighted(rng, &self.tea);
            add(&mut out, i, 1);
        }
        if dinner && n >= 2 && rng.random_bool(if business { 0.7 } else { 0.35 }) {
            let i = weighted(rng, &self.beer);
            add(&mut out, i, n.div_ceil(2));
        }
        if dinner && n >= 4 && rng.random_bool(if business { 0.5 } else { 0.12 }) {
            let i = weighted(rng, &self.wine);
            add(&mut out, i, 1 + n / 6);
        }
        if dinner && business && n >= 6 && rng.random_bool(0.15) {
            add(&mut out, self.baijiu, 1);
        }
        out
    }

    fn lines(&self, order: &[(usize, u32)]) -> Vec<BillLineInput> {
        order
            .iter()
            .map(|&(i, q)| BillLineInput {
                item_id: Some(self.ids[i]),
                name: None,
                quantity: q,
                unit_price: None,
            })
            .collect()
    }
}

/// The bill at regular prices, and its part that joins discounts (what coupon
/// thresholds are judged on, before member prices).
fn estimate(order: &[(usize, u32)]) -> (Money, Money) {
    let mut gross = 0;
    let mut eligible = 0;
    for &(i, q) in order {
        let d = &MENU[i];
        gross += d.price * i64::from(q);
        if d.joins_discounts {
            eligible += d.price * i64::from(q);
        }
    }
    (Money::from_fen(gross), Money::from_fen(eligible))
}

/// Whether an error is a refusal about `field` (the till would just try again without).
fn refused(e: &AppError, field: &str) -> bool {
    matches!(e, AppError::Validation(v) if v.0.iter().any(|f| f.field.starts_with(field)))
}

/// Coupon templates of the demo's campaigns.
struct Campaigns {
    welcome: Uuid,
    anniversary: Vec<(DateTime<Utc>, Uuid)>,
    min_spend: HashMap<Uuid, Money>,
}

/// Sets up the gift catalogue, the coupon campaigns and the settings (no card PINs) at
/// the start of the history.
async fn setup(
    app: &App,
    owner: &Actor,
    cal: &Calendar,
) -> Result<(Campaigns, Vec<(Uuid, i64)>), AppError> {
    let mut gifts = Vec::new();
    for (name, name_en, points, stock) in GIFTS {
        let g = app
            .create_gift(
                owner,
                &GiftInput {
                    name: (*name).into(),
                    name_en: (*name_en).into(),
                    points_price: *points,
                    stock: *stock,
                    active: true,
                },
            )
            .await?;
        gifts.push((g.id, g.points_price));
    }
    // The demo's cards have no PIN: stored value is spent without one.
    let mut settings = app.settings(owner).await?;
    settings.pin_required = false;
    app.save_settings(owner, &settings).await?;

    let template =
        |name: &str, name_en: &str, kind: CouponKind, validity: Validity| TemplateInput {
            name: name.into(),
            name_en: name_en.into(),
            kind,
            validity,
            excluded_weekdays: vec![],
            excluded_hours: vec![],
            store_ids: vec![],
            level_codes: vec![],
            per_customer_limit: None,
            stacks_with_coupons: false,
            stacks_with_member_price: true,
            transferable: false,
            points_price: None,
            active: true,
        };
    let mut min_spend = HashMap::new();
    let welcome = app
        .create_coupon_template(
            owner,
            &TemplateInput {
                per_customer_limit: Some(1),
                ..template(
                    "新会员满200减30",
                    "New member: ¥30 off ¥200",
                    CouponKind::Cash {
                        value: Money::from_yuan(30),
                        min_spend: Some(Money::from_yuan(200)),
                    },
                    Validity::DaysAfterIssue { days: 30 },
                )
            },
        )
        .await?;
    min_spend.insert(welcome.id, Money::from_yuan(200));
    let reward = app
        .create_coupon_template(
            owner,
            &template(
                "满500送50代金券",
                "¥50 off your next visit (spent ¥500)",
                CouponKind::Cash {
                    value: Money::from_yuan(50),
                    min_spend: Some(Money::from_yuan(300)),
                },
                Validity::DaysAfterIssue { days: 60 },
            ),
        )
        .await?;
    min_spend.insert(reward.id, Money::from_yuan(300));
    app.create_issue_rule(
        owner,
        &IssueRuleInput {
            template_id: reward.id,
            min_spend: Money::from_yuan(500),
            active: true,
        },
    )
    .await?;
    // The anniversary, half a year into each year of the history.
    let mut anniversary = Vec::new();
    for year in 0..2 {
        let from = cal.first_day + Duration::days(180 + 365 * year);
        let to = from + Duration::days(30);
        let t = app
            .create_coupon_template(
                owner,
                &TemplateInput {
                    per_customer_limit: Some(1),
                    ..template(
                        &format!("{}周年庆88折券", from.year()),
                        &format!("{} anniversary: 12% off", from.year()),
                        CouponKind::Discount {
                            percent_off_bp: 1_200,
                            cap: Some(Money::from_yuan(100)),
                            min_spend: Some(Money::from_yuan(300)),
                        },
                        Validity::Fixed { from, to },
                    )
                },
            )
            .await?;
        min_spend.insert(t.id, Money::from_yuan(300));
        anniversary.push((cal.instant(from, 10 * 60), t.id));
    }
    Ok((
        Campaigns {
            welcome: welcome.id,
            anniversary,
            min_spend,
        },
        gifts,
    ))
}

/// Plans every event of the history, in time order.
fn plan(
    rng: &mut ChaCha8Rng,
    cal: &Calendar,
    diners: &[Diner],
    stores: &[StoreId],
    campaigns: &Campaigns,
) -> Vec<Event> {
    let mut events = Vec::new();
    let store_of = |s: StoreId| stores.iter().position(|x| *x == s).unwrap_or(0) as u8;
    let last_day = cal.local_date(cal.end);
    // The jobs, at 04:30 on 1 January (points clear on 31 December) and 1 July (a level
    // review reads every member's growth: monthly runs would cost more time than they
    // show, and downgrades come at most every six months anyway).
    let mut day = cal.first_day;
    while day <= last_day {
        if day.day() == 1 && (day.month() == 1 || day.month() == 7) {
            events.push(Event {
                at: cal.instant(day, 4 * 60 + 30),
                kind: Kind::Jobs,
            });
        }
        day += Duration::days(1);
    }
    for (k, (t, _)) in campaigns.anniversary.iter().enumerate() {
        events.push(Event {
            at: *t,
            kind: Kind::Campaign(k),
        });
    }
    let mut visits = 0u64;
    for (d, diner) in diners.iter().enumerate() {
        if (d == 0 || diners[d - 1].joined != diner.joined) && diner.joined > cal.setup {
            events.push(Event {
                at: diner.joined,
                kind: Kind::Welcome,
            });
        }
        let rate = yearly_rate(rng, diner.traits);
        let lapsed = diner.traits.stage == Stage::Lost
            || (diner.traits.stage == Stage::Customer && rng.random_bool(0.1));
        let mut until = cal.end;
        if lapsed {
            let stop = cal.end - Duration::days(rng.random_range(183..=548));
            // Lapsing needs some time as a customer first.
            if stop > diner.joined + Duration::days(60) {
                until = stop;
            }
        }
        if rate <= 0.0 || !dines(d, diners.len()) {
            continue;
        }
        let home = store_of(diner.store);
        let mut push = |rng: &mut ChaCha8Rng, at: DateTime<Utc>, dinner: bool| {
            let store = if rng.random_bool(0.85) || stores.len() < 2 {
                home
            } else {
                (home + rng.random_range(1..stores.len() as u8)) % stores.len() as u8
            };
            let party = party_size(rng, diner.traits.business, dinner);
            events.push(Event {
                at,
                kind: Kind::Visit {
                    diner: d as u32,
                    store,
                    party,
                    dinner,
                },
            });
        };
        let mut t = diner.joined;
        // New members join at the till: their first meal is that day or soon after.
        if diner.joined > cal.setup && rng.random_bool(0.85) {
            let mut day = cal.local_date(diner.joined);
            loop {
                let (dinner, minute) = meal_time(rng, day);
                let at = cal.instant(day, minute);
                if at > diner.joined {
                    if at < until {
                        push(rng, at, dinner);
                        visits += 1;
                        t = at;
                    }
                    break;
                }
                day += Duration::days(1);
            }
        }
        // A Poisson process of days, thinned by weekday.
        let per_day = rate / 365.0 / WEEKDAY_KEEP;
        loop {
            let u: f64 = rng.random_range(f64::EPSILON..1.0);
            let gap = -u.ln() / per_day;
            t += Duration::seconds((gap * 86_400.0) as i64);
            if t >= until {
                break;
            }
            let day = cal.local_date(t);
            if !rng.random_bool(weekday_weight(day) / 1.5) {
                continue;
            }
            let (dinner, minute) = meal_time(rng, day);
            let at = cal.instant(day, minute);
            if at > diner.joined && at < until {
                push(rng, at, dinner);
                visits += 1;
            }
        }
    }
    // Walk-ins, spread like the members' visits.
    let walk_ins = visits * WALK_IN_PERCENT / 100;
    let mut n = 0;
    while n < walk_ins {
        let day = cal.first_day + Duration::days(rng.random_range(0..=HISTORY_DAYS));
        if !rng.random_bool(weekday_weight(day) / 1.5) {
            continue;
        }
        let (dinner, minute) = meal_time(rng, day);
        let at = cal.instant(day, minute);
        if at <= cal.setup || at >= cal.end {
            continue;
        }
        n += 1;
        let store = rng.random_range(0..stores.len()) as u8;
        let party = party_size(rng, false, dinner);
        events.push(Event {
            at,
            kind: Kind::WalkIn {
                store,
                party,
                dinner,
            },
        });
    }
    events.sort_by_key(|e| e.at);
    events
}

/// Writes the gift catalogue, the campaigns and (with `history`) two years of visits for
/// `diners`.
#[allow(clippy::too_many_arguments)]
pub(super) async fn fill(
    app: &App,
    owner: &Actor,
    cal: &Calendar,
    stores: &[StoreId],
    items: &[MenuItem],
    diners: &[Diner],
    seed: u64,
    history: bool,
    progress: &(dyn Fn(u64, u64) + Send + Sync),
) -> Result<Written, AppError> {
    let (campaigns, gifts) = at(cal.setup, setup(app, owner, cal)).await?;
    let menu = Menu::new(items)?;
    let settings = app.settings(owner).await?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x7157_0000);
    let events = if history {
        plan(&mut rng, cal, diners, stores, &campaigns)
    } else {
        Vec::new()
    };
    let states: Vec<State> = diners
        .iter()
        .map(|d| {
            let sv_share = if d.traits.stage == Stage::Loyal {
                0.55
            } else {
                0.3
            };
            State {
                stored_value: d.card.is_some() && rng.random_bool(sv_share),
                top_up: weighted(&mut rng, &TOP_UPS),
                tender: weighted(&mut rng, &TENDERS),
                balance: Money::ZERO,
                points: 0,
                coupons: Vec::new(),
            }
        })
        .collect();
    let tills: Vec<Actor> = stores
        .iter()
        .map(|s| Actor {
            store_id: Some(*s),
            ..owner.clone()
        })
        .collect();
    let bills = events
        .iter()
        .filter(|e| matches!(e.kind, Kind::Visit { .. } | Kind::WalkIn { .. }))
        .count() as u64;
    if history {
        progress(0, bills);
    }
    let mut sim = Sim {
        app,
        cal,
        settings,
        tills,
        menu,
        campaigns,
        gifts,
        states,
        diners,
        rng,
        last: cal.setup,
        written: Written::default(),
        pending: Vec::new(),
        n: 0,
        until_reversal: REVERSAL_EVERY,
    };
    let mut done = 0u64;
    for e in &events {
        sim.reversals_until(e.at).await?;
        sim.run(e).await?;
        if matches!(e.kind, Kind::Visit { .. } | Kind::WalkIn { .. }) {
            done += 1;
            if done.is_multiple_of(250) {
                progress(done, bills);
            }
        }
    }
    sim.reversals_until(cal.end).await?;
    if history {
        progress(bills, bills);
    }
    // Levels and lots as of today (forced: the monthly run may have been today).
    let code = TENANT_CODE;
    app.run_jobs_for(owner.tenant_id, code, None, true).await?;
    Ok(sim.written)
}

/// Takes the card's balances from a bill's outcome. Only the accounts the bill moved
/// are in it (the others read as zero), which its receipt says.
fn learn(s: &mut State, o: &crate::checkout::CheckoutOutcome) {
    if o.receipt.stored_value.is_some() {
        s.balance = o.ledger.after.money();
    }
    if o.receipt.points.is_some() {
        s.points = o.ledger.after.points;
    }
}

/// The simulation's state while it runs.
struct Sim<'a> {
    app: &'a App,
    cal: &'a Calendar,
    settings: TenantSettings,
    tills: Vec<Actor>,
    menu: Menu,
    campaigns: Campaigns,
    gifts: Vec<(Uuid, i64)>,
    states: Vec<State>,
    diners: &'a [Diner],
    rng: ChaCha8Rng,
    /// The latest time used: nothing is posted before it.
    last: DateTime<Utc>,
    written: Written,
    pending: Vec<PendingReversal>,
    /// Idempotency keys.
    n: u64,
    /// Bills until the next one to undo.
    until_reversal: u32,
}

impl Sim<'_> {
    /// A time for the next write: `t`, or just after the last one (never earlier).
    fn when(&mut self, t: DateTime<Utc>) -> DateTime<Utc> {
        self.last = self.last.max(t);
        self.last
    }

    fn key(&mut self, what: &str) -> String {
        self.n += 1;
        format!("demo-{what}-{}", self.n)
    }

    async fn run(&mut self, e: &Event) -> Result<(), AppError> {
        let t = self.when(e.at);
        match e.kind {
            Kind::Jobs => {
                let owner = self.tills[0].clone();
                let r = at(
                    t,
                    self.app
                        .run_jobs_for(owner.tenant_id, TENANT_CODE, None, false),
                )
                .await?;
                if r.points_expired > 0 {
                    // Which cards lost points is not said: learn again at the next bill.
                    for s in &mut self.states {
                        s.points = 0;
                    }
                }
            }
            Kind::Campaign(k) => {
                let (_, template) = self.campaigns.anniversary[k];
                let mut chosen = Vec::new();
                for (d, diner) in self.diners.iter().enumerate() {
                    if diner.joined <= t
                        && dines(d, self.diners.len())
                        && diner.traits.stage != Stage::NotYet
                        && self.rng.random_bool(0.5)
                    {
                        chosen.push(d);
                    }
                }
                self.issue(t, template, &chosen).await?;
            }
            Kind::Welcome => {
                let n = self.diners.len();
                let chosen: Vec<usize> = (0..n)
                    .filter(|d| self.diners[*d].joined == e.at && dines(*d, n))
                    .collect();
                let chosen: Vec<usize> = chosen
                    .into_iter()
                    .filter(|_| self.rng.random_bool(0.8))
                    .collect();
                self.issue(t, self.campaigns.welcome, &chosen).await?;
            }
            Kind::Visit {
                diner,
                store,
                party,
                dinner,
            } => self.visit(t, Some(diner), store, party, dinner).await?,
            Kind::WalkIn {
                store,
                party,
                dinner,
            } => self.visit(t, None, store, party, dinner).await?,
        }
        Ok(())
    }

    /// Issues coupons of a template to these diners (the owner, from the office).
    async fn issue(
        &mut self,
        t: DateTime<Utc>,
        template: Uuid,
        chosen: &[usize],
    ) -> Result<(), AppError> {
        let min_spend = self.campaigns.min_spend[&template];
        for chunk in chosen.chunks(crate::coupons::MAX_BULK) {
            let ids: Vec<CustomerId> = chunk.iter().map(|d| self.diners[*d].customer).collect();
            let owner = self.tills[0].clone();
            let views = at(t, self.app.issue_coupons(&owner, template, &ids, None)).await?;
            for (d, v) in chunk.iter().zip(views) {
                self.states[*d].coupons.push(Held {
                    code: v.coupon.code,
                    from: v.coupon.valid_from,
                    to: v.coupon.valid_to,
                    min_spend,
                });
            }
        }
        Ok(())
    }

    async fn visit(
        &mut self,
        t: DateTime<Utc>,
        diner: Option<u32>,
        store: u8,
        party: u8,
        dinner: bool,
    ) -> Result<(), AppError> {
        let business = diner.is_some_and(|d| self.diners[d as usize].traits.business);
        let order = self.menu.order(&mut self.rng, party, dinner, business);
        let (gross, eligible) = estimate(&order);
        let till = self.tills[usize::from(store)].clone();
        let today = self.cal.local_date(t);
        let mut req = CheckoutRequest {
            lines: self.menu.lines(&order),
            customer: None,
            card_id: None,
            coupons: vec![],
            points: None,
            tenders: vec![],
            pin: None,
            pin_token: None,
            party_size: Some(i32::from(party)),
            table: Some(if party >= 8 {
                format!("包间{}", self.rng.random_range(1..=6))
            } else {
                format!("A{:02}", self.rng.random_range(1..=30))
            }),
            idempotency_key: String::new(),
        };
        let mut tender = weighted(&mut self.rng, &TENDERS);
        if diner.is_none() {
            req.tenders.push(TenderInput {
                method: tender.as_str().into(),
                amount: None,
            });
        }
        if let Some(d) = diner {
            let dn = &self.diners[d as usize];
            let card = dn.card;
            match card {
                Some(c) => req.card_id = Some(c),
                None => {
                    req.customer = Some(CustomerRef {
                        customer_id: Some(dn.customer),
                        ..Default::default()
                    })
                }
            }
            let s = &mut self.states[d as usize];
            if self.rng.random_bool(0.75) {
                tender = s.tender;
            }
            // Stored value: top up first when the balance may not cover the bill.
            let mut pays_sv = false;
            if let (Some(c), true) = (card, s.stored_value) {
                if s.balance < gross {
                    let need = gross - s.balance;
                    let amount = TOP_UPS
                        .iter()
                        .map(|(y, _)| Money::from_yuan(*y))
                        .filter(|a| a.fen() >= s.top_up * 100 && *a >= need)
                        .find(|a| {
                            stored_value::check_top_up(
                                &self.settings.prepaid,
                                true,
                                s.balance,
                                *a,
                                self.settings.top_up.bonus_for(*a),
                            )
                            .is_ok()
                        });
                    if let Some(amount) = amount {
                        let key = self.key("top-up");
                        // At the till, just before paying.
                        let when = self.when(t - Duration::minutes(2));
                        let s = &mut self.states[d as usize];
                        let r = at(
                            when,
                            self.app.top_up(
                                &till,
                                c,
                                &TopUp {
                                    amount,
                                    tender: s.tender,
                                    idempotency_key: key,
                                },
                            ),
                        )
                        .await?;
                        s.balance = r.after.money();
                        s.points = r.after.points;
                        self.written.top_ups += 1;
                    }
                }
                pays_sv = self.states[d as usize].balance >= gross;
            }
            let s = &mut self.states[d as usize];
            req.tenders.push(TenderInput {
                method: if pays_sv {
                    "stored_value"
                } else {
                    tender.as_str()
                }
                .into(),
                amount: None,
            });
            // A coupon held and good for this bill, most of the time.
            s.coupons.retain(|h| h.to >= today);
            if let Some(pos) = s
                .coupons
                .iter()
                .position(|h| h.from <= today && eligible.fen() * 4 >= h.min_spend.fen() * 5)
                && self.rng.random_bool(0.7)
            {
                req.coupons.push(s.coupons.remove(pos).code);
            }
            // Points as cash now and then (the bill's share limit caps them).
            if card.is_some()
                && req.coupons.is_empty()
                && s.points >= 1_000
                && self.rng.random_bool(0.15)
            {
                req.points = Some(s.points);
            }
            // A gift for the points, sometimes.
            if let Some(c) = card
                && s.points >= 500
                && req.points.is_none()
                && self.rng.random_bool(0.03)
            {
                let affordable: Vec<Uuid> = self
                    .gifts
                    .iter()
                    .filter(|(_, p)| *p <= s.points)
                    .map(|(g, _)| *g)
                    .collect();
                let gift = affordable[self.rng.random_range(0..affordable.len())];
                let key = self.key("gift");
                let when = self.when(t - Duration::minutes(1));
                match at(
                    when,
                    self.app.redeem_gift(
                        &till,
                        c,
                        &RedeemGift {
                            gift_id: gift,
                            quantity: None,
                            idempotency_key: key,
                        },
                    ),
                )
                .await
                {
                    Ok(r) => self.states[d as usize].points = r.after.points,
                    // Out of stock: nothing happened.
                    Err(AppError::Conflict { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        let t = self.when(t);
        req.idempotency_key = self.key("checkout");
        let outcome = loop {
            match at(t, self.app.checkout(&till, &req)).await {
                Ok(o) => break o,
                // The till drops what does not apply and takes the bill again.
                Err(e) if !req.coupons.is_empty() && refused(&e, "coupons") => req.coupons.clear(),
                Err(e) if req.points.is_some() && refused(&e, "points") => req.points = None,
                Err(e) => {
                    return Err(AppError::Internal(format!(
                        "demo checkout at {t} failed: {e} ({req:?})"
                    )));
                }
            }
        };
        self.written.checkouts += 1;
        if let Some(d) = diner {
            let s = &mut self.states[d as usize];
            if req.card_id.is_some() {
                learn(s, &outcome);
            }
            for c in &outcome.earned.coupons_issued {
                s.coupons.push(Held {
                    code: c.code.clone(),
                    from: today,
                    to: c.valid_to,
                    min_spend: self
                        .campaigns
                        .min_spend
                        .get(&c.template_id)
                        .copied()
                        .unwrap_or(Money::ZERO),
                });
            }
        }
        // A few bills are undone later the same evening.
        self.until_reversal -= 1;
        if self.until_reversal == 0 {
            self.until_reversal = self.rng.random_range(1..=2 * REVERSAL_EVERY);
            let later = t + Duration::minutes(self.rng.random_range(5..=90));
            if later < self.cal.end {
                self.pending.push(PendingReversal {
                    at: later,
                    checkout: outcome.checkout_id,
                    diner,
                    store,
                    reason: self.rng.random_range(0..REVERSAL_REASONS.len()),
                    lines: req.lines,
                    party: req.party_size,
                    table: req.table,
                });
            }
        }
        Ok(())
    }

    /// Undoes the bills due to be undone by `t` (the owner approves them himself).
    async fn reversals_until(&mut self, t: DateTime<Utc>) -> Result<(), AppError> {
        while let Some(pos) = self.pending.iter().position(|p| p.at <= t) {
            let p = self.pending.remove(pos);
            let when = self.when(p.at);
            let till = self.tills[usize::from(p.store)].clone();
            let (reason, again) = REVERSAL_REASONS[p.reason];
            let key = self.key("reversal");
            let r = at(
                when,
                self.app.reverse_checkout(
                    &till,
                    p.checkout,
                    &ReverseCheckout {
                        reason: reason.into(),
                        approval: None,
                        idempotency_key: key,
                    },
                ),
            )
            .await;
            let outcome = match r {
                Ok(o) => o,
                // The points it earned were spent since: the manager adjusts by hand.
                Err(AppError::Conflict {
                    code: "points_already_used",
                    ..
                }) => continue,
                Err(e) => return Err(e),
            };
            self.written.reversals += 1;
            let diner = p.diner.map(|d| d as usize);
            if let Some(d) = diner
                && self.diners[d].card.is_some()
            {
                learn(&mut self.states[d], &outcome);
            }
            if again {
                // Taken again at once, by WeChat.
                let dn = diner.map(|d| &self.diners[d]);
                let req = CheckoutRequest {
                    lines: p.lines,
                    customer: dn.map(|d| CustomerRef {
                        customer_id: Some(d.customer),
                        ..Default::default()
                    }),
                    card_id: dn.and_then(|d| d.card),
                    coupons: vec![],
                    points: None,
                    tenders: vec![TenderInput {
                        method: Tender::Wechat.as_str().into(),
                        amount: None,
                    }],
                    pin: None,
                    pin_token: None,
                    party_size: p.party,
                    table: p.table,
                    idempotency_key: self.key("checkout"),
                };
                let when = self.when(when + Duration::minutes(1));
                let o = at(when, self.app.checkout(&till, &req)).await?;
                self.written.checkouts += 1;
                if let Some(d) = diner
                    && self.diners[d].card.is_some()
                {
                    learn(&mut self.states[d], &o);
                }
            }
        }
        Ok(())
    }
}
