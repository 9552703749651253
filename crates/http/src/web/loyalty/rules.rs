//! The settings pages of the loyalty programme: points rules, member levels and top-up
//! bonus tiers. Each shows its part of the tenant's settings in people's units (yuan,
//! percentages, "1.5×") and saves it back; the domain's own validation decides what is
//! allowed, its errors are shown beside the fields.

use super::super::Web;
use super::super::render::WebResult;
use super::{Check, Fields, level_name, scaled_str, v, version, with_status};
use crate::web::WebForm;
use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use minijinja::{Value, context};
use patron_app::App;
use patron_domain::FieldError;
use patron_domain::ledger::Tender;
use patron_domain::level::{GrowthWindow, LevelDef, LevelRules};
use patron_domain::menu::valid_level_code;
use patron_domain::money::Money;
use patron_domain::permissions::Permission;
use patron_domain::points::{
    BirthdayMultiplier, BirthdayScope, CashRedemption, EarnInput, EarningMethods, Expiry,
    NthVisitBonus, PayMethod, PointsRules, ThresholdBonus, VisitPeriod, earn,
};
use patron_domain::settings::TenantSettings;
use patron_domain::stored_value::{BonusTier, TopUpRules};
use serde::Serialize;
use std::collections::BTreeMap;

pub fn routes() -> Router<App> {
    Router::new()
        .route("/loyalty/points", get(points_page).post(save_points))
        .route("/loyalty/levels", get(levels_page).post(save_levels))
        .route("/loyalty/top-up", get(top_up_page).post(save_top_up))
}

/// "500.00" → "500" for inputs: whole yuan read as whole yuan.
fn yuan_str(m: Money) -> String {
    let s = m.to_decimal_string();
    s.strip_suffix(".00").map(str::to_string).unwrap_or(s)
}

fn on(b: bool) -> String {
    if b { "on".into() } else { String::new() }
}

/// The earning switches as (form name, value) pairs.
fn earning_pairs(e: &EarningMethods) -> [(&'static str, bool); 7] {
    [
        ("cash", e.cash),
        ("bank_card", e.bank_card),
        ("wechat", e.wechat),
        ("alipay", e.alipay),
        ("other_wallet", e.other_wallet),
        ("stored_value", e.stored_value),
        ("charge", e.charge),
    ]
}

/// How points expire, in a sentence.
pub fn expiry_text(lang: super::Lang, e: &Expiry) -> String {
    match e {
        Expiry::Never => lang.t("loy-expiry-never-text"),
        Expiry::Rolling { months } => {
            lang.t_args("loy-expiry-rolling-text", &[("months", months.to_string())])
        }
        Expiry::YearlyClearing { month, day } => lang.t_args(
            "loy-expiry-yearly-text",
            &[("month", month.to_string()), ("day", day.to_string())],
        ),
    }
}

/// What a save of one part of the settings came to.
enum Saved {
    /// Written (or already so: the same change submitted twice).
    Done(Box<TenantSettings>),
    /// Refused: the errors are in the check.
    Refused,
}

/// Saves one part of the settings: re-reads the current settings, refuses when the part
/// changed since the form was shown (`shown` is its version then), applies the change and
/// saves through the use case. Submitting a change that is already in place is a no-op.
async fn save_part<P: Serialize>(
    web: &Web,
    c: &mut Check,
    shown: &str,
    part: impl Fn(&TenantSettings) -> P,
    apply: impl FnOnce(&mut TenantSettings),
    rename: &(dyn Fn(&str) -> Option<String> + Sync),
) -> WebResult<Saved> {
    let current = web.app.settings(&web.actor).await?;
    let mut next = current.clone();
    apply(&mut next);
    let (before, after) = (version(&part(&current)), version(&part(&next)));
    if before == after {
        return Ok(Saved::Done(Box::new(current)));
    }
    if before != shown {
        c.errors.general = Some(c.lang.t("loy-err-changed-meanwhile"));
        return Ok(Saved::Refused);
    }
    match web.app.save_settings(&web.actor, &next).await {
        Ok(()) => Ok(Saved::Done(Box::new(next))),
        Err(e) => {
            c.app(e, rename)?;
            Ok(Saved::Refused)
        }
    }
}

/// A page, or after a save its form alone (with a notice, or its errors and 422).
fn answer(
    web: &Web,
    page: &str,
    form: &str,
    ctx: Value,
    saved: Option<bool>,
) -> WebResult<Response> {
    match saved {
        None => Ok(web.page(page, "loyalty", ctx)?.into_response()),
        Some(true) => Ok(web.fragment(form, ctx)?.into_response()),
        Some(false) => Ok(with_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            web.fragment(form, ctx)?,
        )),
    }
}

// ---------------------------------------------------------------------------------------
// Points

/// The part of the settings the points form shows: the points rules and the levels'
/// multipliers.
fn points_part(s: &TenantSettings) -> (PointsRules, Vec<u32>) {
    (
        s.points.clone(),
        s.levels.levels.iter().map(|l| l.multiplier_bp).collect(),
    )
}

fn points_values(s: &TenantSettings) -> BTreeMap<String, String> {
    let p = &s.points;
    let mut v = BTreeMap::new();
    let mut set = |k: &str, val: String| {
        v.insert(k.to_string(), val);
    };
    set("enabled", on(p.enabled));
    set("points_per_yuan", p.points_per_yuan.to_string());
    for (k, b) in earning_pairs(&p.earning) {
        set(&format!("earning.{k}"), on(b));
    }
    // Switched-off bonuses show a sensible start, used once switched on.
    let t = p.threshold_bonus.clone().unwrap_or(ThresholdBonus {
        min_spend: Money::from_yuan(500),
        points: 50,
    });
    set("threshold_bonus", on(p.threshold_bonus.is_some()));
    set("threshold_bonus.min_spend", yuan_str(t.min_spend));
    set("threshold_bonus.points", t.points.to_string());
    let n = p.nth_visit_bonus.clone().unwrap_or(NthVisitBonus {
        nth: 3,
        period: VisitPeriod::Month,
        points: 100,
    });
    set("nth_visit_bonus", on(p.nth_visit_bonus.is_some()));
    set("nth_visit_bonus.nth", n.nth.to_string());
    set("nth_visit_bonus.period", code_of(&n.period));
    set("nth_visit_bonus.points", n.points.to_string());
    let b = p.birthday.clone().unwrap_or(BirthdayMultiplier {
        scope: BirthdayScope::Day,
        multiplier_bp: 20_000,
    });
    set("birthday", on(p.birthday.is_some()));
    set("birthday.scope", code_of(&b.scope));
    set(
        "birthday.multiplier_bp",
        scaled_str(i64::from(b.multiplier_bp), 4),
    );
    set("redemption.enabled", on(p.redemption.enabled));
    set(
        "redemption.points_per_yuan",
        p.redemption.points_per_yuan.to_string(),
    );
    set(
        "redemption.max_share_bp",
        scaled_str(i64::from(p.redemption.max_share_bp), 2),
    );
    let (kind, months, month, day) = match p.expiry {
        Expiry::Never => ("never", 24, 12, 31),
        Expiry::Rolling { months } => ("rolling", months, 12, 31),
        Expiry::YearlyClearing { month, day } => ("yearly_clearing", 24, month, day),
    };
    set("expiry", kind.into());
    set("expiry.months", months.to_string());
    set("expiry.month", month.to_string());
    set("expiry.day", day.to_string());
    for (i, l) in s.levels.levels.iter().enumerate() {
        set(
            &format!("levels[{i}].multiplier_bp"),
            scaled_str(i64::from(l.multiplier_bp), 4),
        );
    }
    v
}

/// A unit enum's serde code ("month", "day").
fn code_of<T: Serialize>(t: &T) -> String {
    serde_json::to_value(t)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn from_code<T: serde::de::DeserializeOwned>(s: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
}

/// The rules as typed, or `None` with the errors in `c`.
fn parse_points(
    f: &Fields,
    s: &TenantSettings,
    c: &mut Check,
) -> Option<(PointsRules, LevelRules)> {
    let per_yuan = c.int("points_per_yuan", f.get("points_per_yuan"));
    let mut earning = EarningMethods::default();
    {
        let e = &mut earning;
        let fields: [(&str, &mut bool); 7] = [
            ("cash", &mut e.cash),
            ("bank_card", &mut e.bank_card),
            ("wechat", &mut e.wechat),
            ("alipay", &mut e.alipay),
            ("other_wallet", &mut e.other_wallet),
            ("stored_value", &mut e.stored_value),
            ("charge", &mut e.charge),
        ];
        for (k, b) in fields {
            *b = f.on(&format!("earning.{k}"));
        }
    }
    let threshold = if f.on("threshold_bonus") {
        let m = c.money(
            "threshold_bonus.min_spend",
            f.get("threshold_bonus.min_spend"),
        );
        let p = c.int("threshold_bonus.points", f.get("threshold_bonus.points"));
        m.zip(p)
            .map(|(min_spend, points)| Some(ThresholdBonus { min_spend, points }))
    } else {
        Some(None)
    };
    let nth = if f.on("nth_visit_bonus") {
        let n = c.uint("nth_visit_bonus.nth", f.get("nth_visit_bonus.nth"));
        let period: Option<VisitPeriod> = from_code(f.get("nth_visit_bonus.period"));
        if period.is_none() {
            c.err("nth_visit_bonus.period", "err-required");
        }
        let p = c.int("nth_visit_bonus.points", f.get("nth_visit_bonus.points"));
        match (n, period, p) {
            (Some(nth), Some(period), Some(points)) => Some(Some(NthVisitBonus {
                nth,
                period,
                points,
            })),
            _ => None,
        }
    } else {
        Some(None)
    };
    let birthday = if f.on("birthday") {
        let scope: Option<BirthdayScope> = from_code(f.get("birthday.scope"));
        if scope.is_none() {
            c.err("birthday.scope", "err-required");
        }
        let m = c.scaled("birthday.multiplier_bp", f.get("birthday.multiplier_bp"), 4);
        scope.zip(m).map(|(scope, multiplier_bp)| {
            Some(BirthdayMultiplier {
                scope,
                multiplier_bp,
            })
        })
    } else {
        Some(None)
    };
    let cash_per_yuan = c.int(
        "redemption.points_per_yuan",
        f.get("redemption.points_per_yuan"),
    );
    let max_share = c.scaled(
        "redemption.max_share_bp",
        f.get("redemption.max_share_bp"),
        2,
    );
    let expiry = match f.get("expiry") {
        "never" => Some(Expiry::Never),
        "rolling" => c
            .uint("expiry.months", f.get("expiry.months"))
            .map(|months| Expiry::Rolling { months }),
        "yearly_clearing" => {
            let m = c.uint("expiry.month", f.get("expiry.month"));
            let d = c.uint("expiry.day", f.get("expiry.day"));
            m.zip(d)
                .map(|(month, day)| Expiry::YearlyClearing { month, day })
        }
        _ => {
            c.err("expiry", "err-required");
            None
        }
    };
    let mut levels = s.levels.clone();
    for (i, l) in levels.levels.iter_mut().enumerate() {
        let name = format!("levels[{i}].multiplier_bp");
        if let Some(m) = c.scaled(&name, f.get(&name), 4) {
            l.multiplier_bp = m;
        }
    }
    // Whatever did not read takes its saved value, so the rules' own limits are checked
    // (and shown) for everything else in the same round.
    let p = &s.points;
    let rules = PointsRules {
        enabled: f.on("enabled"),
        points_per_yuan: per_yuan.unwrap_or(p.points_per_yuan),
        earning,
        threshold_bonus: threshold.unwrap_or_else(|| p.threshold_bonus.clone()),
        nth_visit_bonus: nth.unwrap_or_else(|| p.nth_visit_bonus.clone()),
        birthday: birthday.unwrap_or_else(|| p.birthday.clone()),
        redemption: CashRedemption {
            points_per_yuan: cash_per_yuan.unwrap_or(p.redemption.points_per_yuan),
            max_share_bp: max_share.unwrap_or(p.redemption.max_share_bp),
            enabled: f.on("redemption.enabled"),
        },
        expiry: expiry.unwrap_or(p.expiry),
    };
    if let Err(e) = rules.validate() {
        c.domain(&e.0, &|f| Some(f.to_string()));
    }
    if let Err(e) = levels.validate() {
        c.domain(&[FieldError::new(e.field, e.code, e.message)], &|f| {
            Some(f.to_string())
        });
    }
    c.ok().then_some((rules, levels))
}

/// Use-case errors on the points form: the earning rate is its main field.
fn points_rename(f: &str) -> Option<String> {
    match f {
        "points" => Some("points_per_yuan".into()),
        _ => None,
    }
}

/// What a sample bill earns under the rules, per level: the rules read as an example.
fn points_examples(web: &Web, s: &TenantSettings) -> Vec<Value> {
    let bill = Money::from_yuan(286);
    let today = s.local_date(patron_app::now());
    s.levels
        .levels
        .iter()
        .map(|l| {
            let awards = earn(
                &s.points,
                &EarnInput {
                    payments: vec![(PayMethod::Tender(Tender::Wechat), bill)],
                    level: Some(l.earn_level()),
                    visit_ordinal_in_period: 0,
                    birthday: None,
                    today,
                },
            );
            context! {
                level => level_name(web.lang, &l.name, &l.name_en),
                points => awards.iter().map(|a| a.points).sum::<i64>(),
                explanation => awards.iter().map(|a| match web.lang {
                    super::Lang::Zh => a.explanation.zh.clone(),
                    super::Lang::En => a.explanation.en.clone(),
                }).collect::<Vec<_>>().join("; "),
            }
        })
        .collect()
}

fn points_ctx(
    web: &Web,
    s: &TenantSettings,
    values: BTreeMap<String, String>,
    c: &Check,
    notice: bool,
) -> Value {
    let levels: Vec<_> = s
        .levels
        .levels
        .iter()
        .enumerate()
        .map(|(i, l)| context! { i, name => level_name(web.lang, &l.name, &l.name_en) })
        .collect();
    context! {
        tab => "points",
        v => v(values),
        errors => v(&c.errors),
        version => version(&points_part(s)),
        levels,
        earning => earning_pairs(&s.points.earning).iter().map(|(k, _)| *k).collect::<Vec<_>>(),
        examples => points_examples(web, s),
        expiry_text => expiry_text(web.lang, &s.points.expiry),
        cash => context! {
            enabled => s.points.redemption.enabled,
            per_yuan => s.points.redemption.points_per_yuan,
            max_share_bp => s.points.redemption.max_share_bp,
        },
        can_edit => web.can(Permission::ManageSettings),
        notice,
    }
}

async fn points_page(web: Web) -> WebResult<Response> {
    let s = web.app.settings(&web.actor).await?;
    let ctx = points_ctx(&web, &s, points_values(&s), &Check::new(web.lang), false);
    answer(&web, "loyalty/points.html", "", ctx, None)
}

async fn save_points(
    web: Web,
    WebForm(form): WebForm<Vec<(String, String)>>,
) -> WebResult<Response> {
    let f = Fields(form);
    let current = web.app.settings(&web.actor).await?;
    let mut c = Check::new(web.lang);
    let saved = match parse_points(&f, &current, &mut c) {
        Some((rules, levels)) => {
            save_part(
                &web,
                &mut c,
                f.get("version"),
                points_part,
                |s| {
                    s.points = rules;
                    s.levels = levels;
                },
                &points_rename,
            )
            .await?
        }
        None => Saved::Refused,
    };
    let (s, values, ok) = match saved {
        Saved::Done(s) => {
            let values = points_values(&s);
            (*s, values, true)
        }
        Saved::Refused => {
            c.summarize();
            (current, f.values(), false)
        }
    };
    let ctx = points_ctx(&web, &s, values, &c, ok);
    answer(&web, "", "loyalty/points_form.html", ctx, Some(ok))
}

// ---------------------------------------------------------------------------------------
// Levels

fn levels_values(l: &LevelRules) -> BTreeMap<String, String> {
    let mut v = BTreeMap::new();
    for (i, d) in l.levels.iter().enumerate() {
        let p = |k: &str| format!("levels[{i}].{k}");
        v.insert(p("code"), d.code.clone());
        v.insert(p("name"), d.name.clone());
        v.insert(p("name_en"), d.name_en.clone());
        v.insert(p("threshold"), yuan_str(d.threshold));
        v.insert(p("discount_bp"), scaled_str(i64::from(d.discount_bp), 2));
        v.insert(
            p("multiplier_bp"),
            scaled_str(i64::from(d.multiplier_bp), 4),
        );
        v.insert(p("member_price"), on(d.member_price));
    }
    let (kind, months) = match l.window {
        GrowthWindow::Lifetime => ("lifetime", 12),
        GrowthWindow::TrailingMonths(n) => ("trailing", n),
    };
    v.insert("window".into(), kind.into());
    v.insert("window.months".into(), months.to_string());
    v.insert(
        "review.every_months".into(),
        l.review.every_months.to_string(),
    );
    v.insert(
        "review.min_months_between_downgrades".into(),
        l.review.min_months_between_downgrades.to_string(),
    );
    v
}

/// `levels[2].x` with position 2 of the built list → the form's row number.
fn remap_row(field: &str, prefix: &str, rows: &[usize]) -> String {
    let Some(rest) = field.strip_prefix(prefix).and_then(|r| r.strip_prefix('[')) else {
        return field.to_string();
    };
    match rest.split_once(']') {
        Some((n, tail)) => match n.parse::<usize>().ok().and_then(|n| rows.get(n)) {
            Some(row) => format!("{prefix}[{row}]{tail}"),
            None => field.to_string(),
        },
        None => field.to_string(),
    }
}

/// The levels as typed (sorted by threshold), or `None` with the errors in `c`.
fn parse_levels(f: &Fields, s: &TenantSettings, c: &mut Check) -> Option<LevelRules> {
    let saved: Vec<&str> = s.levels.levels.iter().map(|l| l.code.as_str()).collect();
    let mut built: Vec<(usize, LevelDef)> = Vec::new();
    for row in f.rows("levels") {
        let name = |k: &str| format!("levels[{row}].{k}");
        let get = |k: &str| f.get(&name(k));
        let code = get("code").to_string();
        // A row added and left empty is no level.
        if !saved.contains(&code.as_str())
            && ["code", "name", "name_en", "threshold"]
                .iter()
                .all(|k| get(k).is_empty())
        {
            continue;
        }
        if !saved.contains(&code.as_str()) && !valid_level_code(&code) {
            c.err(&name("code"), "loy-v-levels-code");
        }
        let threshold = c.money(&name("threshold"), get("threshold"));
        let discount = if get("discount_bp").is_empty() {
            Some(0)
        } else {
            c.scaled(&name("discount_bp"), get("discount_bp"), 2)
        };
        let multiplier = c.scaled(&name("multiplier_bp"), get("multiplier_bp"), 4);
        if let (Some(threshold), Some(discount_bp), Some(multiplier_bp)) =
            (threshold, discount, multiplier)
        {
            built.push((
                row,
                LevelDef {
                    code,
                    name: get("name").to_string(),
                    name_en: get("name_en").to_string(),
                    threshold,
                    discount_bp,
                    multiplier_bp,
                    member_price: f.on(&name("member_price")),
                },
            ));
        }
    }
    let window = match f.get("window") {
        "lifetime" => Some(GrowthWindow::Lifetime),
        _ => c
            .uint("window.months", f.get("window.months"))
            .map(GrowthWindow::TrailingMonths),
    };
    let every = c.uint("review.every_months", f.get("review.every_months"));
    let min_between = c.uint(
        "review.min_months_between_downgrades",
        f.get("review.min_months_between_downgrades"),
    );
    if !c.ok() {
        return None;
    }
    // A level added at the bottom takes its place by threshold; saved levels keep their
    // order, so a mistyped threshold is refused rather than silently reordering them.
    let (mut ordered, added): (Vec<_>, Vec<_>) = built
        .into_iter()
        .partition(|(_, l)| saved.contains(&l.code.as_str()));
    for new in added {
        let at = ordered
            .iter()
            .position(|(_, l)| l.threshold > new.1.threshold)
            .unwrap_or(ordered.len());
        ordered.insert(at, new);
    }
    let built = ordered;
    let rows: Vec<usize> = built.iter().map(|(r, _)| *r).collect();
    let rules = LevelRules {
        levels: built.into_iter().map(|(_, l)| l).collect(),
        window: window?,
        review: patron_domain::level::ReviewPolicy {
            every_months: every?,
            min_months_between_downgrades: min_between?,
        },
    };
    if let Err(e) = rules.validate() {
        let field = if e.field == "levels" {
            e.field.clone()
        } else {
            remap_row(&e.field, "levels", &rows)
        };
        c.domain(&[FieldError::new(field, e.code, e.message)], &|f| {
            (f != "levels").then(|| f.to_string())
        });
    }
    // A saved level may not go: members hold it.
    for code in &saved {
        if !rules.levels.iter().any(|l| l.code == *code) {
            c.errors.general = Some(c.lang.t("loy-err-level-removed"));
        }
    }
    c.ok().then_some(rules)
}

fn levels_ctx(
    web: &Web,
    s: &TenantSettings,
    values: BTreeMap<String, String>,
    c: &Check,
    notice: bool,
) -> Value {
    let saved: Vec<&str> = s.levels.levels.iter().map(|l| l.code.as_str()).collect();
    let mut nums: Vec<usize> = values
        .keys()
        .filter_map(|k| k.strip_prefix("levels[")?.split_once("].")?.0.parse().ok())
        .collect();
    nums.sort_unstable();
    nums.dedup();
    let rows: Vec<Value> = nums
        .iter()
        .map(|i| {
            let code = values
                .get(&format!("levels[{i}].code"))
                .cloned()
                .unwrap_or_default();
            context! { i, saved => saved.contains(&code.as_str()) }
        })
        .collect();
    context! {
        tab => "levels",
        v => v(values),
        errors => v(&c.errors),
        version => version(&s.levels),
        rows,
        next => nums.last().map_or(0, |n| n + 1),
        can_edit => web.can(Permission::ManageSettings),
        notice,
    }
}

async fn levels_page(web: Web) -> WebResult<Response> {
    let s = web.app.settings(&web.actor).await?;
    let ctx = levels_ctx(
        &web,
        &s,
        levels_values(&s.levels),
        &Check::new(web.lang),
        false,
    );
    answer(&web, "loyalty/levels.html", "", ctx, None)
}

async fn save_levels(
    web: Web,
    WebForm(form): WebForm<Vec<(String, String)>>,
) -> WebResult<Response> {
    let f = Fields(form);
    let current = web.app.settings(&web.actor).await?;
    let mut c = Check::new(web.lang);
    let saved = match parse_levels(&f, &current, &mut c) {
        Some(levels) => {
            save_part(
                &web,
                &mut c,
                f.get("version"),
                |s| s.levels.clone(),
                |s| s.levels = levels,
                &|_| None,
            )
            .await?
        }
        None => Saved::Refused,
    };
    let (s, values, ok) = match saved {
        Saved::Done(s) => {
            let values = levels_values(&s.levels);
            (*s, values, true)
        }
        Saved::Refused => {
            c.summarize();
            (current, f.values(), false)
        }
    };
    let ctx = levels_ctx(&web, &s, values, &c, ok);
    answer(&web, "", "loyalty/levels_form.html", ctx, Some(ok))
}

// ---------------------------------------------------------------------------------------
// Top-up tiers

fn top_up_values(t: &TopUpRules) -> BTreeMap<String, String> {
    let mut v = BTreeMap::new();
    for (i, tier) in t.tiers.iter().enumerate() {
        v.insert(format!("tiers[{i}].min_amount"), yuan_str(tier.min_amount));
        v.insert(format!("tiers[{i}].bonus"), yuan_str(tier.bonus));
    }
    v.insert("exact_amounts_only".into(), on(t.exact_amounts_only));
    v
}

fn parse_top_up(f: &Fields, c: &mut Check) -> Option<TopUpRules> {
    let mut tiers: Vec<BonusTier> = Vec::new();
    let mut seen: Vec<Money> = Vec::new();
    for row in f.rows("tiers") {
        let min_name = format!("tiers[{row}].min_amount");
        let bonus_name = format!("tiers[{row}].bonus");
        if f.get(&min_name).is_empty() && f.get(&bonus_name).is_empty() {
            continue;
        }
        let min = c.money(&min_name, f.get(&min_name));
        let bonus = c.money(&bonus_name, f.get(&bonus_name));
        if let Some(m) = min {
            if m.fen() <= 0 {
                c.err(&min_name, "loy-v-tiers-min_amount");
            } else if seen.contains(&m) {
                c.err(&min_name, "loy-err-duplicate-tier");
            }
            seen.push(m);
        }
        if bonus.is_some_and(Money::is_negative) {
            c.err(&bonus_name, "loy-v-tiers-bonus");
        }
        if let (Some(min_amount), Some(bonus)) = (min, bonus) {
            tiers.push(BonusTier { min_amount, bonus });
        }
    }
    c.ok()
        .then(|| TopUpRules::new(tiers, f.on("exact_amounts_only")))
}

fn top_up_ctx(
    web: &Web,
    s: &TenantSettings,
    values: BTreeMap<String, String>,
    c: &Check,
    notice: bool,
) -> Value {
    let mut nums: Vec<usize> = values
        .keys()
        .filter_map(|k| k.strip_prefix("tiers[")?.split_once("].")?.0.parse().ok())
        .collect();
    nums.sort_unstable();
    nums.dedup();
    let examples: Vec<_> = s
        .top_up
        .tiers
        .iter()
        .map(|t| {
            // The bonus as a share of the money paid, in basis points (rounded down).
            let share_bp = if t.min_amount.fen() > 0 {
                i64::try_from(i128::from(t.bonus.fen()) * 10_000 / i128::from(t.min_amount.fen()))
                    .unwrap_or(i64::MAX)
            } else {
                0
            };
            context! {
                pays => t.min_amount.fen(),
                bonus => t.bonus.fen(),
                holds => t.min_amount.fen().saturating_add(t.bonus.fen()),
                share_bp,
            }
        })
        .collect();
    context! {
        tab => "top_up",
        v => v(values),
        errors => v(&c.errors),
        version => version(&s.top_up),
        rows => nums.clone(),
        next => nums.last().map_or(0, |n| n + 1),
        examples,
        exact => s.top_up.exact_amounts_only,
        can_edit => web.can(Permission::ManageSettings),
        notice,
    }
}

async fn top_up_page(web: Web) -> WebResult<Response> {
    let s = web.app.settings(&web.actor).await?;
    let ctx = top_up_ctx(
        &web,
        &s,
        top_up_values(&s.top_up),
        &Check::new(web.lang),
        false,
    );
    answer(&web, "loyalty/top_up.html", "", ctx, None)
}

async fn save_top_up(
    web: Web,
    WebForm(form): WebForm<Vec<(String, String)>>,
) -> WebResult<Response> {
    let f = Fields(form);
    let current = web.app.settings(&web.actor).await?;
    let mut c = Check::new(web.lang);
    let saved = match parse_top_up(&f, &mut c) {
        Some(rules) => {
            save_part(
                &web,
                &mut c,
                f.get("version"),
                |s| s.top_up.clone(),
                |s| s.top_up = rules,
                &|_| None,
            )
            .await?
        }
        None => Saved::Refused,
    };
    let (s, values, ok) = match saved {
        Saved::Done(s) => {
            let values = top_up_values(&s.top_up);
            (*s, values, true)
        }
        Saved::Refused => {
            c.summarize();
            (current, f.values(), false)
        }
    };
    let ctx = top_up_ctx(&web, &s, values, &c, ok);
    answer(&web, "", "loyalty/top_up_form.html", ctx, Some(ok))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_rows_map_back_to_form_rows() {
        // Built list position 1 came from form row 4.
        assert_eq!(
            remap_row("levels[1].threshold", "levels", &[0, 4]),
            "levels[4].threshold"
        );
        assert_eq!(remap_row("window", "levels", &[0]), "window");
    }

    #[test]
    fn money_inputs_drop_zero_fen() {
        assert_eq!(yuan_str(Money::from_yuan(500)), "500");
        assert_eq!(yuan_str(Money::from_fen(12_850)), "128.50");
    }
}
