//! The loyalty pages, for a marketer or the owner: an overview, the points rules, the
//! member levels, the top-up bonus tiers, member prices on the menu, coupon templates
//! (with issuing and voiding) and the points gift catalogue.
//!
//! Settings pages edit one part of the tenant's settings each and save the whole through
//! `App::save_settings`. A form carries a version of the part it showed: saving over a
//! part someone else changed meanwhile is refused, and submitting the same change twice
//! (a double click) is a no-op. Creating coupon templates, issuing coupons and creating
//! gifts have no idempotency key in the use cases, so their forms carry a key that this
//! process remembers (see [`Once`]).

mod coupons;
mod gifts;
mod prices;
mod rules;

use super::i18n::Lang;
use super::render::{RequestCtx, WebError, WebResult};
use super::{FormErrors, Web, ser};
use axum::Router;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use minijinja::context;
use patron_app::menu::ItemQuery;
use patron_app::{App, AppError};
use patron_domain::FieldError;
use patron_domain::money::Money;
use patron_domain::permissions::Permission;
use std::collections::{BTreeMap, HashMap};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

pub fn routes() -> Router<App> {
    Router::new()
        .route("/loyalty", get(overview))
        .merge(rules::routes())
        .merge(prices::routes())
        .merge(coupons::routes())
        .merge(gifts::routes())
}

/// The overview: each part of the loyalty programme in one line, with a link.
async fn overview(web: Web) -> WebResult<Html<String>> {
    let s = web.app.settings(&web.actor).await?;
    let items = web
        .app
        .menu_items(&web.actor, &ItemQuery::default())
        .await?;
    let templates = web.app.coupon_templates(&web.actor).await?;
    let gifts = web.app.gifts(&web.actor, true).await?;
    let levels: Vec<_> = s
        .levels
        .levels
        .iter()
        .map(|l| {
            context! {
                name => level_name(web.lang, &l.name, &l.name_en),
                threshold => l.threshold.fen(),
                discount_bp => l.discount_bp,
                multiplier => scaled_str(i64::from(l.multiplier_bp), 4),
            }
        })
        .collect();
    let tiers: Vec<_> = s
        .top_up
        .tiers
        .iter()
        .map(|t| context! { min => t.min_amount.fen(), bonus => t.bonus.fen() })
        .collect();
    web.page(
        "loyalty/overview.html",
        "loyalty",
        context! {
            tab => "overview",
            points => context! {
                enabled => s.points.enabled,
                per_yuan => s.points.points_per_yuan,
                cash_enabled => s.points.redemption.enabled,
                cash_per_yuan => s.points.redemption.points_per_yuan,
                max_share_bp => s.points.redemption.max_share_bp,
                expiry => rules::expiry_text(web.lang, &s.points.expiry),
            },
            levels,
            tiers,
            dishes => items.iter().filter(|i| i.item.active).count(),
            priced => items.iter().filter(|i| i.item.active && !i.member_prices.is_empty()).count(),
            templates => templates.len(),
            active_templates => templates.iter().filter(|t| t.active).count(),
            gifts => gifts.len(),
            active_gifts => gifts.iter().filter(|g| g.active).count(),
            can_settings => web.can(Permission::ManageSettings),
        },
    )
}

/// A level's name in the page's language.
fn level_name(lang: Lang, zh: &str, en: &str) -> String {
    match lang {
        Lang::En if !en.trim().is_empty() => en.to_string(),
        _ => zh.to_string(),
    }
}

/// A submitted form as its name/value pairs in order: repeated names and row names such as
/// `levels[2].threshold` alike (serde's urlencoded structs take neither).
pub(crate) struct Fields(pub Vec<(String, String)>);

impl Fields {
    /// The trimmed value of `name` ("" when absent).
    fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.trim())
    }

    /// A ticked checkbox (absent when not ticked).
    fn on(&self, name: &str) -> bool {
        self.0.iter().any(|(k, v)| k == name && !v.is_empty())
    }

    /// Every value of a repeated name (checkbox groups).
    fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
            .collect()
    }

    /// The row numbers present for `prefix`: `n` for every `prefix[n].…`, ascending.
    fn rows(&self, prefix: &str) -> Vec<usize> {
        let mut out: Vec<usize> = self
            .0
            .iter()
            .filter_map(|(k, _)| {
                let rest = k.strip_prefix(prefix)?.strip_prefix('[')?;
                rest.split_once("].")?.0.parse().ok()
            })
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The values as typed, to show the form again with its errors.
    fn values(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for (k, v) in &self.0 {
            out.insert(k.clone(), v.clone());
        }
        out
    }
}

/// Checks what people typed, collecting each field's error in their language.
pub(crate) struct Check {
    pub lang: Lang,
    pub errors: FormErrors,
}

impl Check {
    fn new(lang: Lang) -> Check {
        Check {
            lang,
            errors: FormErrors::default(),
        }
    }

    /// Sets `field`'s error to the message `key` (the first error of a field stays).
    fn err(&mut self, field: &str, key: &str) {
        let msg = self.lang.t(key);
        self.errors.fields.entry(field.to_string()).or_insert(msg);
    }

    fn err_args(&mut self, field: &str, key: &str, args: &[(&str, String)]) {
        let msg = self.lang.t_args(key, args);
        self.errors.fields.entry(field.to_string()).or_insert(msg);
    }

    /// A required whole number.
    fn int(&mut self, field: &str, input: &str) -> Option<i64> {
        let s: String = input.chars().filter(|c| *c != ',' && *c != ' ').collect();
        if s.is_empty() {
            self.err(field, "err-required");
            return None;
        }
        match s.parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => {
                self.err(field, "loy-err-whole-number");
                None
            }
        }
    }

    /// An optional whole number (empty is `None`).
    fn int_opt(&mut self, field: &str, input: &str) -> Option<Option<i64>> {
        if input.trim().is_empty() {
            Some(None)
        } else {
            self.int(field, input).map(Some)
        }
    }

    /// A required whole number that fits a `u32` (negative numbers are typing errors).
    fn uint(&mut self, field: &str, input: &str) -> Option<u32> {
        let n = self.int(field, input)?;
        match u32::try_from(n) {
            Ok(n) => Some(n),
            Err(_) => {
                self.err(field, "loy-err-not-negative");
                None
            }
        }
    }

    /// A required decimal with at most `decimals` places, as an integer scaled by
    /// 10^decimals ("1.5" with 4 → 15000): multipliers and percentages in basis points.
    fn scaled(&mut self, field: &str, input: &str, decimals: u32) -> Option<u32> {
        let s = input.trim().trim_end_matches(['%', '×', 'x', 'X']).trim();
        if s.is_empty() {
            self.err(field, "err-required");
            return None;
        }
        match parse_scaled(s, decimals).and_then(|v| u32::try_from(v).ok()) {
            Some(v) => Some(v),
            None => {
                self.err_args(
                    field,
                    "loy-err-decimal",
                    &[("places", decimals.to_string())],
                );
                None
            }
        }
    }

    /// A required amount in yuan.
    fn money(&mut self, field: &str, input: &str) -> Option<Money> {
        let m = self.money_opt(field, input)?;
        if m.is_none() {
            self.err(field, "err-required");
        }
        m
    }

    /// An optional amount in yuan (empty is `None`); `None` when it does not parse.
    fn money_opt(&mut self, field: &str, input: &str) -> Option<Option<Money>> {
        let before = self.errors.fields.contains_key(field);
        let m = super::parse_money(&mut self.errors, self.lang, field, input);
        if !before && self.errors.fields.contains_key(field) {
            None
        } else {
            Some(m)
        }
    }

    /// Adds the domain's or a use case's field errors: `rename` maps a use-case field to
    /// the form's input (None: a general error).
    fn domain(&mut self, errors: &[FieldError], rename: &dyn Fn(&str) -> Option<String>) {
        for fe in errors {
            let msg = field_message(self.lang, &fe.field, fe.code, &fe.message);
            match rename(&fe.field) {
                Some(name) => {
                    self.errors.fields.entry(name).or_insert(msg);
                }
                None => {
                    self.errors.general.get_or_insert(msg);
                }
            }
        }
    }

    fn ok(&self) -> bool {
        self.errors.is_empty()
    }

    /// On a long form, says at the top that fields below need a look.
    fn summarize(&mut self) {
        if self.errors.general.is_none() && !self.errors.fields.is_empty() {
            self.errors.general = Some(self.lang.t("err-validation_failed"));
        }
    }

    /// The errors a use case ended with, beside the form's fields; a server fault stays a
    /// page error.
    fn app(&mut self, e: AppError, rename: &dyn Fn(&str) -> Option<String>) -> WebResult<()> {
        let api = crate::error::ApiError::from(e);
        if api.status.is_server_error() || api.status == StatusCode::FORBIDDEN {
            return Err(WebError {
                status: api.status,
                code: api.detail.code.clone(),
                message: api.detail.message.clone(),
                redirect: None,
            });
        }
        if !api.detail.fields.is_empty() {
            self.domain(&api.detail.fields, rename);
            return Ok(());
        }
        let msg = error_message(self.lang, &api.detail.code, &api.detail.message);
        match api.detail.field.as_deref().and_then(rename) {
            Some(name) => {
                self.errors.fields.insert(name, msg);
            }
            None => self.errors.general = Some(msg),
        }
        Ok(())
    }
}

/// A field's message: `loy-v-<field>` (rows' numbers and dots dropped: `levels[2].threshold`
/// → `loy-v-levels-threshold`) for the rule's range in people's units, else by its code.
fn field_message(lang: Lang, field: &str, code: &str, english: &str) -> String {
    let mut key = String::from("loy-v-");
    let mut skip = false;
    for c in field.chars() {
        match c {
            '[' => skip = true,
            ']' => skip = false,
            '.' if !skip => key.push('-'),
            c if !skip => key.push(c),
            _ => {}
        }
    }
    lang.try_t(&format!("{key}-{code}"))
        .or_else(|| lang.try_t(&key))
        .unwrap_or_else(|| error_message(lang, code, english))
}

/// A use case's error code in the user's language: this area's message, the shared one,
/// else the English message as the use case wrote it.
fn error_message(lang: Lang, code: &str, english: &str) -> String {
    lang.try_t(&format!("loy-err-{code}"))
        .or_else(|| lang.try_t(&format!("err-{code}")))
        .unwrap_or_else(|| english.to_string())
}

/// "1.5" → 15000 with 4 decimals; more places than `decimals`, a sign or no digits: None.
fn parse_scaled(s: &str, decimals: u32) -> Option<i64> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if (int.is_empty() && frac.is_empty())
        || frac.len() > decimals as usize
        || !int.chars().chain(frac.chars()).all(|c| c.is_ascii_digit())
    {
        return None;
    }
    let int: i64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut frac_v: i64 = if frac.is_empty() {
        0
    } else {
        frac.parse().ok()?
    };
    for _ in frac.len()..decimals as usize {
        frac_v *= 10;
    }
    int.checked_mul(10_i64.pow(decimals))?.checked_add(frac_v)
}

/// 15000 with 4 decimals → "1.5"; 1250 with 2 → "12.5".
fn scaled_str(v: i64, decimals: u32) -> String {
    let unit = 10_i64.pow(decimals);
    let s = format!(
        "{}.{:0width$}",
        v / unit,
        (v % unit).abs(),
        width = decimals as usize
    );
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// A short fingerprint of what a form showed, to notice that someone else saved meanwhile.
fn version<T: serde::Serialize>(t: &T) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    serde_json::to_string(t).unwrap_or_default().hash(&mut h);
    format!("{:016x}", h.finish())
}

/// A fresh key for a form that creates something (UUID v7).
fn form_key() -> String {
    patron_app::new_uuid().to_string()
}

/// A fragment answered with a status (422 for a form shown again with its errors).
fn with_status(status: StatusCode, html: Html<String>) -> Response {
    (status, html).into_response()
}

/// The outcome of a form whose key was seen before.
enum Seen {
    /// New: go ahead, and [`Claim::finish`] with the answer.
    New(Claim),
    /// Done before: answer with the same result again.
    Done(String),
    /// Still running (a double click): say so rather than do it twice.
    Running,
}

/// Keys of forms that created something in this process, with what was answered, for ten
/// minutes: a double click or a retry of "issue a coupon" answers the first result and
/// issues nothing more. (The use cases have no idempotency key of their own; a second
/// server process would not know these keys.)
struct Once;

/// Per form key: when it was claimed, and the answer once there is one.
type Claims = HashMap<String, (Instant, Option<String>)>;

static ONCE: LazyLock<Mutex<Claims>> = LazyLock::new(|| Mutex::new(HashMap::new()));
const ONCE_TTL: Duration = Duration::from_secs(600);

impl Once {
    fn claim(scope: &str, key: &str) -> Seen {
        let k = format!("{scope}:{key}");
        let claim = Claim {
            key: k.clone(),
            finished: key.is_empty(),
        };
        if key.is_empty() {
            return Seen::New(claim);
        }
        let mut map = ONCE.lock().expect("form keys");
        let now = Instant::now();
        map.retain(|_, (at, _)| now.duration_since(*at) < ONCE_TTL);
        match map.get(&k) {
            Some((_, Some(html))) => Seen::Done(html.clone()),
            Some((_, None)) => Seen::Running,
            None => {
                map.insert(k, (now, None));
                Seen::New(claim)
            }
        }
    }
}

/// A claimed form key. Dropped unfinished (refused, or failed on the way), it is released,
/// so the corrected form can be sent again with the same key.
struct Claim {
    key: String,
    finished: bool,
}

impl Claim {
    /// Keeps `answer` for repeats of the key.
    fn finish(mut self, answer: &str) {
        if !self.finished {
            let mut map = ONCE.lock().expect("form keys");
            map.insert(self.key.clone(), (Instant::now(), Some(answer.to_string())));
        }
        self.finished = true;
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if !self.finished {
            ONCE.lock().expect("form keys").remove(&self.key);
        }
    }
}

/// The scope of a form key: what the form does, for whom (a key seen from another staff
/// member is not theirs to replay).
fn once_scope(web: &Web, what: &str) -> String {
    format!("{what}:{}:{}", web.actor.tenant_id, web.actor.staff_id)
}

/// The general error shown when the same form is still being handled.
fn running_error() -> FormErrors {
    FormErrors {
        general: Some(RequestCtx::current().lang.t("loy-err-running")),
        ..Default::default()
    }
}

/// Per page of the lists here.
const PER_PAGE: usize = 20;

/// One page of a list held in memory (the use cases answer whole, bounded lists).
fn page_of<T: Clone>(all: &[T], page: u32) -> (Vec<T>, u32, bool) {
    let page = page.max(1);
    let from = (page as usize - 1).saturating_mul(PER_PAGE);
    let items: Vec<T> = all.iter().skip(from).take(PER_PAGE).cloned().collect();
    (items, page, all.len() > from + PER_PAGE)
}

/// Any value as a template value (re-exported for the submodules).
fn v<T: serde::Serialize>(t: T) -> minijinja::Value {
    ser(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_scale_without_floats() {
        assert_eq!(parse_scaled("1.5", 4), Some(15_000));
        assert_eq!(parse_scaled("2", 4), Some(20_000));
        assert_eq!(parse_scaled("0.0001", 4), Some(1));
        assert_eq!(parse_scaled("12.5", 2), Some(1_250));
        assert_eq!(parse_scaled(".5", 2), Some(50));
        assert_eq!(parse_scaled("1.23456", 4), None);
        assert_eq!(parse_scaled("-1", 4), None);
        assert_eq!(parse_scaled("abc", 2), None);
        assert_eq!(parse_scaled(".", 2), None);
        assert_eq!(scaled_str(15_000, 4), "1.5");
        assert_eq!(scaled_str(20_000, 4), "2");
        assert_eq!(scaled_str(1_250, 2), "12.5");
        assert_eq!(scaled_str(0, 2), "0");
    }

    #[test]
    fn form_rows_are_found_by_number() {
        let f = Fields(vec![
            ("tiers[3].min_amount".into(), "300".into()),
            ("tiers[0].min_amount".into(), "100".into()),
            ("tiers[0].bonus".into(), "10".into()),
            ("other".into(), "x".into()),
        ]);
        assert_eq!(f.rows("tiers"), vec![0, 3]);
        assert_eq!(f.get("tiers[0].bonus"), "10");
        assert_eq!(f.get("missing"), "");
    }

    #[test]
    fn a_form_key_is_used_once() {
        let Seen::New(first) = Once::claim("t", "k1") else {
            panic!("a new key")
        };
        assert!(matches!(Once::claim("t", "k1"), Seen::Running));
        first.finish("<p>done</p>");
        assert!(matches!(Once::claim("t", "k1"), Seen::Done(h) if h == "<p>done</p>"));
        // A refusal (the claim dropped unfinished) frees the key for the corrected form.
        drop(Once::claim("t", "k2"));
        assert!(matches!(Once::claim("t", "k2"), Seen::New(_)));
    }
}
