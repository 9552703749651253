//! The customers pages (issue 6): the search and filtered list, the customer 360 page
//! (profile, preferences, cards with balances, coupons, loyalty, timeline), the create
//! and edit forms, and duplicate groups with their merge.
//!
//! Every page calls the same use cases as the JSON API, so masking (phone and e-mail for
//! roles without personal-data rights) and permissions come from the use cases.

use super::i18n::Lang;
use super::render::{WebResult, see_other};
use super::{FormErrors, Web, WebForm, encode, ser};
use axum::Router;
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, NaiveDate, Utc};
use minijinja::context;
use patron_app::{Actor, App, AppError};
use patron_domain::coupon::CouponStatus;
use patron_domain::customer::{
    AcquisitionSource, ChurnReason, Customer, CustomerInput, CustomerProfile, CustomerType, Gender,
    LifecycleStage,
};
use patron_domain::ids::CustomerId;
use patron_domain::page::PageRequest;
use patron_domain::permissions::Permission;
use patron_domain::search::{self, LookupQuery};
use patron_domain::timeline::TimelineEvent;
use patron_store::CustomerFilter;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::Mutex;

pub fn routes() -> Router<App> {
    Router::new()
        .route("/customers", get(list))
        .route("/customers/new", get(new_form).post(create))
        .route("/customers/duplicates", get(duplicates))
        .route("/customers/{id}", get(show))
        .route("/customers/{id}/edit", get(edit_form).post(update))
        .route("/customers/{id}/timeline", get(timeline_more))
        .route("/customers/{id}/merge", get(merge_page).post(merge))
}

/// Rows per page of the list, and timeline events per page of the 360 page.
const PER_PAGE: u32 = 20;
const TIMELINE_PAGE: i64 = 20;
/// Duplicate groups per page.
const GROUPS_PER_PAGE: usize = 20;

fn blank(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// A customer id from the path; anything else is "no such customer" (404), as the API says.
fn customer_id(raw: &str) -> WebResult<CustomerId> {
    raw.parse()
        .map_err(|_| AppError::NotFound { entity: "customer" }.into())
}

fn page_number(raw: &Option<String>) -> u32 {
    blank(raw).and_then(|s| s.parse().ok()).unwrap_or(1).max(1)
}

// ---------------------------------------------------------------------------------------
// The list

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    /// The quick box: phone, card number, or part of a name / its pinyin / initials.
    q: Option<String>,
    tag: Option<String>,
    stage: Option<String>,
    level: Option<String>,
    /// Birthday month, 1–12.
    month: Option<String>,
    page: Option<String>,
}

impl ListQuery {
    /// The search as a query string without the page (for the pager's links).
    fn qs(&self) -> String {
        let mut parts = vec![];
        for (k, v) in [
            ("q", &self.q),
            ("tag", &self.tag),
            ("stage", &self.stage),
            ("level", &self.level),
            ("month", &self.month),
        ] {
            if let Some(v) = blank(v) {
                parts.push(format!("{k}={}", encode(v)));
            }
        }
        parts.join("&")
    }
}

/// One customer as a row of a list.
#[derive(Serialize)]
struct Row {
    id: String,
    name: String,
    phone: Option<String>,
    level: Option<String>,
    stage: &'static str,
    tags: Vec<String>,
    allergies: bool,
    birthday: Option<NaiveDate>,
    created_at: DateTime<Utc>,
}

/// Level names by code, in the page's language.
fn level_names(
    settings: &patron_domain::settings::TenantSettings,
    lang: Lang,
) -> Vec<(String, String)> {
    settings
        .levels
        .levels
        .iter()
        .map(|l| {
            let name = if lang == Lang::Zh {
                &l.name
            } else {
                &l.name_en
            };
            (l.code.clone(), name.clone())
        })
        .collect()
}

fn level_name(levels: &[(String, String)], code: &Option<String>) -> Option<String> {
    let code = code.as_deref()?;
    Some(
        levels
            .iter()
            .find(|(c, _)| c == code)
            .map_or_else(|| code.to_string(), |(_, n)| n.clone()),
    )
}

fn row(c: Customer, levels: &[(String, String)]) -> Row {
    Row {
        id: c.id.to_string(),
        level: level_name(levels, &c.level),
        stage: c.profile.lifecycle_stage.as_str(),
        phone: c.profile.phone.map(|p| p.as_str().to_string()),
        allergies: !c.profile.allergies.is_empty(),
        name: c.profile.name,
        tags: c.profile.tags,
        birthday: c.profile.birthday,
        created_at: c.created_at,
    }
}

/// `GET /customers`: the quick search and the filtered list. A number is looked up as a
/// phone or card number (as at the till); a staff member who may see phone numbers also
/// finds customers by the start of one. Anything else is part of a name, its pinyin or
/// its initials, combined with the filters.
async fn list(web: Web, headers: HeaderMap, Query(p): Query<ListQuery>) -> WebResult<Html<String>> {
    let app = &web.app;
    let actor = &web.actor;
    let settings = app.settings(actor).await?;
    let levels = level_names(&settings, web.lang);
    let page = PageRequest::new(page_number(&p.page), PER_PAGE);
    let month = blank(&p.month)
        .and_then(|m| m.parse::<u32>().ok())
        .filter(|m| (1..=12).contains(m));
    let mut filter = CustomerFilter {
        tag: blank(&p.tag).map(str::to_string),
        lifecycle_stage: blank(&p.stage)
            .and_then(LifecycleStage::parse)
            .map(|s| s.as_str().to_string()),
        level: blank(&p.level).map(str::to_string),
        birthday_month: month,
        ..Default::default()
    };
    let q = blank(&p.q);
    // `exact`: the query named one customer by phone or card number.
    let mut partial_number = false;
    let (found, has_more, exact) = match q.map(search::classify) {
        Some(LookupQuery::Number(digits)) => {
            let hits = app
                .lookup_customers(actor, q.unwrap_or_default(), 20)
                .await?;
            if !hits.is_empty() {
                (hits, false, true)
            } else if web.can(Permission::ViewPersonalData) && digits.len() < 11 {
                filter.phone_prefix = Some(digits);
                let r = app.list_customers(actor, &filter, page).await?;
                (r.items, r.has_more, false)
            } else {
                // Without the right to see phone numbers, only a whole one finds anybody.
                partial_number = !web.can(Permission::ViewPersonalData);
                (vec![], false, false)
            }
        }
        Some(LookupQuery::Name(_)) => {
            filter.name = q.map(str::to_string);
            let r = app.list_customers(actor, &filter, page).await?;
            (r.items, r.has_more, false)
        }
        None => {
            let r = app.list_customers(actor, &filter, page).await?;
            (r.items, r.has_more, false)
        }
    };
    let rows: Vec<Row> = found.into_iter().map(|c| row(c, &levels)).collect();
    let qs = p.qs();
    let ctx = context! {
        rows => ser(&rows),
        page => page.page,
        has_more,
        exact,
        partial_number,
        searched => q.is_some() || filter.tag.is_some() || filter.lifecycle_stage.is_some()
            || filter.level.is_some() || filter.birthday_month.is_some(),
        pager_base => if qs.is_empty() { "/customers?".to_string() } else { format!("/customers?{qs}&") },
        q => q.unwrap_or_default(),
        tag => blank(&p.tag).unwrap_or_default(),
        stage => filter.lifecycle_stage.clone().unwrap_or_default(),
        level => blank(&p.level).unwrap_or_default(),
        month => month.unwrap_or(0),
        stages => LifecycleStage::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        levels => levels.iter().map(|(c, n)| context! { code => c, name => n }).collect::<Vec<_>>(),
        can_edit => web.can(Permission::EditCustomers),
        can_merge => web.can(Permission::MergeCustomers),
    };
    // Search-as-you-type replaces only the results (a history restore wants the page).
    if headers.get("hx-target").and_then(|v| v.to_str().ok()) == Some("cust-results") {
        return web.fragment("customers/_results.html", ctx);
    }
    web.page("customers/list.html", "customers", ctx)
}

// ---------------------------------------------------------------------------------------
// The 360 page

#[derive(Debug, Default, Deserialize)]
pub struct ShowQuery {
    /// Timeline: events before this time (the "more" link without JavaScript).
    before: Option<String>,
    /// Events at exactly `before` already shown.
    skip: Option<usize>,
    saved: Option<String>,
    /// Set after a redirect from a record merged into this one.
    merged_from: Option<String>,
    /// What a merge just moved.
    moved_events: Option<u64>,
    moved_cards: Option<u64>,
    moved_members: Option<u64>,
    moved_referrals: Option<u64>,
}

#[derive(Serialize)]
struct CardRow {
    id: String,
    number: String,
    status: &'static str,
    stored_value: bool,
    points_kind: bool,
    member_price: bool,
    pooled: bool,
    principal: i64,
    bonus: i64,
    points: i64,
}

#[derive(Serialize)]
struct CouponRow {
    code: String,
    name: String,
    label: String,
    valid_from: NaiveDate,
    valid_to: NaiveDate,
}

/// One timeline line in the page's language.
#[derive(Serialize)]
struct EventRow {
    at: DateTime<Utc>,
    kind: String,
    /// What happened, in the page's language.
    label: String,
    detail: String,
    /// Money in fen (a bill, a top-up, a refund), when the event has one.
    amount: Option<i64>,
    /// Points, when the event is about points.
    points: Option<i64>,
    link: Option<String>,
    link_text: Option<String>,
}

async fn show(
    web: Web,
    Path(raw): Path<String>,
    Query(q): Query<ShowQuery>,
) -> WebResult<Response> {
    let id = customer_id(&raw)?;
    let app = &web.app;
    let actor = &web.actor;
    let c = app.get_customer(actor, id).await?;
    if let Some(to) = c.merged_into {
        return Ok(see_other(
            &format!("/customers/{to}?merged_from={id}"),
            false,
        ));
    }
    let settings = app.settings(actor).await?;
    let levels = level_names(&settings, web.lang);
    let loyalty = app.customer_loyalty(actor, id).await?;

    // Cards with their balances. A pooled card shows its organization's pool, so it is
    // left out of the customer's own totals.
    let mut totals = (0i64, 0i64);
    let cards = if web.can(Permission::ViewCards) {
        let mut rows = vec![];
        for card in app.customer_cards(actor, id).await? {
            let v = app.get_card_view(actor, card.id).await?;
            if !v.pooled && v.card.status != patron_domain::card::CardStatus::Closed {
                totals.0 += v.balances.principal.fen();
                totals.1 += v.balances.bonus.fen();
            }
            rows.push(CardRow {
                id: v.card.id.to_string(),
                number: v.card.number.clone(),
                status: card_status(v.card.status),
                stored_value: v.card.kinds.stored_value,
                points_kind: v.card.kinds.points,
                member_price: v.card.kinds.member_price,
                pooled: v.pooled,
                principal: v.balances.principal.fen(),
                bonus: v.balances.bonus.fen(),
                points: v.balances.points,
            });
        }
        Some(rows)
    } else {
        None
    };
    let coupons = if web.can(Permission::ViewCoupons) {
        let list = app
            .customer_coupons(actor, id, Some(CouponStatus::Issued))
            .await?;
        Some(
            list.into_iter()
                .map(|v| CouponRow {
                    code: v.coupon.code,
                    name: v.template_name,
                    label: v.label,
                    valid_from: v.coupon.valid_from,
                    valid_to: v.coupon.valid_to,
                })
                .collect::<Vec<_>>(),
        )
    } else {
        None
    };

    let (events, next) = timeline_page(&web, id, Cursor::from_query(&q)).await?;

    // Names behind the profile's references, and the home store.
    let name_of = async |other: Option<CustomerId>| -> Option<(String, String)> {
        let other = other?;
        let c = app.get_customer(actor, other).await.ok()?;
        Some((other.to_string(), c.profile.name))
    };
    let organization = name_of(c.profile.organization_id).await;
    let referred_by = name_of(c.profile.referred_by).await;
    let home_store = match c.home_store_id {
        Some(s) if web.can(Permission::ViewCatalog) => app
            .stores(actor)
            .await?
            .into_iter()
            .find(|x| x.id == s)
            .map(|x| x.name),
        _ => None,
    };
    let merged_from = match blank(&q.merged_from).and_then(|m| m.parse::<CustomerId>().ok()) {
        Some(m) => app
            .get_customer(actor, m)
            .await
            .ok()
            .map(|d| d.profile.name),
        None => None,
    };
    let moved = q.moved_events.map(|events| {
        context! {
            events, cards => q.moved_cards.unwrap_or(0),
            members => q.moved_members.unwrap_or(0), referrals => q.moved_referrals.unwrap_or(0),
        }
    });

    let level_label = match web.lang {
        Lang::Zh => loyalty.level_name.clone(),
        Lang::En => loyalty.level_name_en.clone(),
    }
    .or_else(|| level_name(&levels, &c.level));
    let next_level = level_name(&levels, &loyalty.next_level);
    let level_changes: Vec<_> = loyalty
        .level_changes
        .iter()
        .rev()
        .take(5)
        .map(|l| {
            context! {
                at => ser(l.occurred_at),
                from => level_name(&levels, &l.from_level),
                to => level_name(&levels, &Some(l.to_level.clone())),
                explanation => if web.lang == Lang::Zh { &l.explanation } else { &l.explanation_en },
            }
        })
        .collect();
    let coupon_count = coupons.as_ref().map(Vec::len);
    let p = &c.profile;
    let ctx = context! {
        c => profile_ctx(&c),
        id => id.to_string(),
        level => level_label,
        loyalty => context! {
            growth => loyalty.growth,
            growth_from => ser(loyalty.growth_from),
            next_level,
            to_next_level => loyalty.to_next_level,
            points => loyalty.points,
            expiring => loyalty.points_expiring_soon,
            next_expiry => ser(loyalty.next_expiry),
        },
        level_changes,
        stored => totals.0 + totals.1,
        principal => totals.0,
        bonus => totals.1,
        cards => cards.as_ref().map(ser),
        coupons => coupons.as_ref().map(ser),
        coupon_count,
        events => ser(&events),
        next_page => next,
        organization => organization.map(|(id, name)| context! { id, name }),
        referred_by => referred_by.map(|(id, name)| context! { id, name }),
        home_store,
        saved => q.saved.is_some(),
        merged_from,
        moved,
        allergies => &p.allergies,
        can_edit => web.can(Permission::EditCustomers),
        can_merge => web.can(Permission::MergeCustomers),
        can_cards => web.can(Permission::ViewCards),
        personal => web.can(Permission::ViewPersonalData),
    };
    Ok(web
        .page("customers/show.html", "customers", ctx)?
        .into_response())
}

fn card_status(s: patron_domain::card::CardStatus) -> &'static str {
    use patron_domain::card::CardStatus as S;
    match s {
        S::Active => "active",
        S::Frozen => "frozen",
        S::Lost => "lost",
        S::Closed => "closed",
    }
}

/// The profile for the templates: codes stay codes (the template names them in the
/// page's language), absent values are absent.
fn profile_ctx(c: &Customer) -> minijinja::Value {
    let p = &c.profile;
    context! {
        name => &p.name,
        phone => p.phone.as_ref().map(|x| x.as_str()),
        gender => p.gender.as_str(),
        birthday => ser(p.birthday),
        age_band => p.age_band.map(|a| a.as_str()),
        nationality => &p.nationality,
        customer_type => p.customer_type.as_str(),
        industry => &p.industry,
        title => &p.title,
        company => &p.company,
        work_phone => &p.work_phone,
        credit_rating => p.credit_rating.map(|r| r.as_str().to_uppercase()),
        id_document => p.id_document.as_ref().map(|d| context! { kind => d.kind.as_str(), masked => &d.masked }),
        email => &p.email,
        address => &p.address,
        acquisition_source => p.acquisition_source.map(|a| a.as_str()),
        marketing_consent => p.marketing_consent,
        marketing_consent_at => ser(c.marketing_consent_at),
        favourite_dishes => &p.favourite_dishes,
        tastes => &p.tastes,
        seat_preference => &p.seat_preference,
        allergies => &p.allergies,
        tags => &p.tags,
        notes => &p.notes,
        lifecycle_stage => p.lifecycle_stage.as_str(),
        churn_reason => p.churn_reason.map(|r| r.as_str()),
        churn_note => &p.churn_note,
        created_at => ser(c.created_at),
        updated_at => ser(c.updated_at),
    }
}

/// Where a timeline page starts: after the events up to `at` already shown, `skip` of
/// which carry exactly that time (a checkout, its coupon and its level change share one
/// moment, so a time alone would lose the rest of them at a page break).
#[derive(Clone, Copy)]
struct Cursor {
    at: DateTime<Utc>,
    skip: usize,
}

impl Cursor {
    fn from_query(q: &ShowQuery) -> Option<Cursor> {
        let at = blank(&q.before)?.parse::<DateTime<Utc>>().ok()?;
        Some(Cursor {
            at,
            skip: q.skip.unwrap_or(0).min(500),
        })
    }

    fn query(&self) -> String {
        format!(
            "before={}&skip={}",
            encode(&self.at.to_rfc3339()),
            self.skip
        )
    }
}

/// A page of the timeline from `cursor`, and the cursor of the next page.
async fn timeline_page(
    web: &Web,
    id: CustomerId,
    cursor: Option<Cursor>,
) -> WebResult<(Vec<EventRow>, Option<String>)> {
    // One microsecond past the cursor's time brings its moment back; what was shown of
    // it is skipped below (events are ordered by time, then id, newest first).
    let before = cursor.map(|c| c.at + chrono::Duration::microseconds(1));
    let skip = cursor.map_or(0, |c| c.skip);
    let events = web
        .app
        .timeline(
            &web.actor,
            id,
            before,
            None,
            TIMELINE_PAGE + 1 + skip as i64,
        )
        .await?;
    let (events, next) = page_after(events, cursor, TIMELINE_PAGE as usize);
    Ok((
        events.into_iter().map(|e| event_row(web, e)).collect(),
        next.map(|c| c.query()),
    ))
}

/// The page of `events` (newest first, fetched from just past the cursor's time) that
/// follows `cursor`, and the cursor after it when more remain.
fn page_after(
    mut events: Vec<TimelineEvent>,
    cursor: Option<Cursor>,
    size: usize,
) -> (Vec<TimelineEvent>, Option<Cursor>) {
    if let Some(c) = cursor {
        let mut skipped = 0;
        events.retain(|e| {
            if e.occurred_at > c.at {
                false
            } else if e.occurred_at == c.at && skipped < c.skip {
                skipped += 1;
                false
            } else {
                true
            }
        });
    }
    if events.len() <= size {
        return (events, None);
    }
    events.truncate(size);
    let at = events.last().map(|e| e.occurred_at);
    let next = at.map(|at| {
        let here = events.iter().filter(|e| e.occurred_at == at).count();
        let earlier = cursor.filter(|c| c.at == at).map_or(0, |c| c.skip);
        Cursor {
            at,
            skip: here + earlier,
        }
    });
    (events, next)
}

/// `GET /customers/{id}/timeline?before=&skip=`: the next rows of the timeline (htmx).
async fn timeline_more(
    web: Web,
    Path(raw): Path<String>,
    Query(q): Query<ShowQuery>,
) -> WebResult<Response> {
    let id = customer_id(&raw)?;
    let cursor = Cursor::from_query(&q);
    if !web.htmx {
        let to = match cursor {
            Some(c) => format!("/customers/{id}?{}#timeline", c.query()),
            None => format!("/customers/{id}#timeline"),
        };
        return Ok(see_other(&to, false));
    }
    let (events, next) = timeline_page(&web, id, cursor).await?;
    Ok(web
        .fragment(
            "customers/_timeline_rows.html",
            context! { id => id.to_string(), events => ser(&events), next_page => next },
        )?
        .into_response())
}

/// The text after "中文 / english: " in a bilingual summary ("获得优惠券 / coupon issued:
/// 满500送50 CODE" → "满500送50 CODE"); the kind's own label names what happened.
fn summary_detail(summary: &str) -> String {
    match summary.split_once(" / ") {
        Some((_, rest)) => rest
            .split_once(": ")
            .map_or(summary, |(_, d)| d)
            .to_string(),
        None => summary.to_string(),
    }
}

fn money(fen: i64) -> String {
    super::i18n::money(patron_domain::money::Money::from_fen(fen))
}

/// A payment method's name ("wechat" → 微信 / WeChat Pay).
fn tender(lang: Lang, method: &str) -> String {
    lang.try_t(&format!("cust-tender-{method}"))
        .unwrap_or_else(|| method.to_string())
}

fn event_row(web: &Web, e: TimelineEvent) -> EventRow {
    let lang = web.lang;
    let d = &e.data;
    let details = &d["details"];
    let num = |v: &serde_json::Value| v.as_i64();
    let en = |v: &serde_json::Value| v.as_str().map(str::to_string);
    let mut row = EventRow {
        at: e.occurred_at,
        kind: e.kind.clone(),
        label: lang
            .try_t(&format!("cust-ev-{}", e.kind))
            .unwrap_or_else(|| e.kind.clone()),
        detail: summary_detail(&e.summary),
        amount: None,
        points: None,
        link: None,
        link_text: None,
    };
    match e.kind.as_str() {
        "checkout" => {
            row.amount = num(&details["amount_due"]);
            let earned = num(&details["earn"]["points_earned"]).unwrap_or(0);
            let used = num(&details["points_used"]).unwrap_or(0);
            row.points = (earned != 0 || used != 0).then_some(earned - used);
            let mut parts = vec![];
            // How it was paid: "stored value ¥52.80, cash ¥10.00".
            let paid: Vec<String> = details["tenders"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|t| {
                            let method = t["method"].as_str().unwrap_or_default();
                            format!(
                                "{} {}",
                                tender(lang, method),
                                money(num(&t["amount"]).unwrap_or(0))
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            if !paid.is_empty() {
                parts.push(paid.join(if lang == Lang::Zh { "，" } else { ", " }));
            }
            if let Some(x) = num(&details["discount"]).filter(|x| *x > 0) {
                parts.push(lang.t_args("cust-ev-discount", &[("amount", money(x))]));
            }
            if used > 0 {
                parts.push(lang.t_args("cust-ev-points-used", &[("n", used.to_string())]));
            }
            row.detail = parts.join(" · ");
        }
        "top_up" => {
            row.amount = num(&details["amount"]);
            let bonus = num(&details["bonus"]).unwrap_or(0);
            let method = details["tender"].as_str().unwrap_or_default();
            row.detail = lang.t_args(
                "cust-ev-top-up-detail",
                &[("bonus", money(bonus)), ("tender", tender(lang, method))],
            );
        }
        "reversal" | "refund" => {
            row.amount = num(&details["refunded"])
                .or_else(|| num(&details["refund"]))
                .map(|x| -x);
        }
        "points_gift" => {
            row.points = num(&details["points"]).map(|x| -x);
            if lang == Lang::En
                && let Some(g) = details["gift"].as_str()
            {
                row.detail = g.to_string();
            }
        }
        "points_expiry" => {
            row.points = num(&d["points"]).map(|x| -x);
            if lang == Lang::En {
                row.detail = en(&d["explanation_en"]).unwrap_or(row.detail);
            }
        }
        "level_changed" if lang == Lang::En => {
            row.detail = en(&d["explanation_en"]).unwrap_or(row.detail);
        }
        "profile_updated" => {
            let fields: Vec<String> = d["fields"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|f| f.as_str())
                        .map(|f| {
                            lang.try_t(&format!("cust-f-{f}"))
                                .unwrap_or_else(|| f.to_string())
                        })
                        .collect()
                })
                .unwrap_or_default();
            row.detail = fields.join(if lang == Lang::Zh { "、" } else { ", " });
        }
        "merged" => {
            row.detail = d["duplicate_name"].as_str().unwrap_or_default().to_string();
            row.link = d["duplicate"].as_str().map(|x| format!("/customers/{x}"));
        }
        "merged_away" => {
            row.detail = String::new();
            row.link = d["survivor"].as_str().map(|x| format!("/customers/{x}"));
            row.link_text = Some(lang.t("cust-open-survivor"));
        }
        "customer_created" => {
            row.detail = d["acquisition_source"]
                .as_str()
                .map(|s| {
                    format!(
                        "{}{}{}",
                        lang.t("cust-f-acquisition_source"),
                        if lang == Lang::Zh { "：" } else { ": " },
                        lang.t(&format!("cust-source-{s}"))
                    )
                })
                .unwrap_or_default();
        }
        _ => {}
    }
    row
}

// ---------------------------------------------------------------------------------------
// Create and edit

/// The profile form as typed: every field text, lists separated by commas, 、 or lines.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ProfileForm {
    name: String,
    phone: String,
    gender: String,
    birthday: String,
    customer_type: String,
    email: String,
    work_phone: String,
    address: String,
    company: String,
    title: String,
    industry: String,
    nationality: String,
    id_document_kind: String,
    id_number: String,
    acquisition_source: String,
    lifecycle_stage: String,
    churn_reason: String,
    churn_note: String,
    /// A checkbox: present ("on") when ticked.
    marketing_consent: Option<String>,
    favourite_dishes: String,
    tastes: String,
    allergies: String,
    seat_preference: String,
    tags: String,
    notes: String,
    /// Generated with the form: a second submission of the same form is not a second customer.
    form_key: String,
}

fn split_list(s: &str) -> Vec<String> {
    s.split([',', '，', '、', ';', '；', '|', '\n'])
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

fn opt(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

impl ProfileForm {
    fn from_customer(c: &Customer, lang: Lang) -> ProfileForm {
        let p = &c.profile;
        let join = |v: &[String]| v.join(if lang == Lang::Zh { "、" } else { ", " });
        let s = |v: &Option<String>| v.clone().unwrap_or_default();
        ProfileForm {
            name: p.name.clone(),
            phone: p
                .phone
                .as_ref()
                .map(|x| x.as_str().to_string())
                .unwrap_or_default(),
            gender: p.gender.as_str().into(),
            birthday: p.birthday.map(|b| b.to_string()).unwrap_or_default(),
            customer_type: p.customer_type.as_str().into(),
            email: s(&p.email),
            work_phone: s(&p.work_phone),
            address: s(&p.address),
            company: s(&p.company),
            title: s(&p.title),
            industry: s(&p.industry),
            nationality: s(&p.nationality),
            id_document_kind: p
                .id_document
                .as_ref()
                .map(|d| d.kind.as_str().to_string())
                .unwrap_or_default(),
            id_number: String::new(),
            acquisition_source: p
                .acquisition_source
                .map(|a| a.as_str().into())
                .unwrap_or_default(),
            lifecycle_stage: p.lifecycle_stage.as_str().into(),
            churn_reason: p
                .churn_reason
                .map(|r| r.as_str().into())
                .unwrap_or_default(),
            churn_note: s(&p.churn_note),
            marketing_consent: p.marketing_consent.then(|| "on".into()),
            favourite_dishes: join(&p.favourite_dishes),
            tastes: join(&p.tastes),
            allergies: join(&p.allergies),
            seat_preference: s(&p.seat_preference),
            tags: join(&p.tags),
            notes: s(&p.notes),
            form_key: String::new(),
        }
    }

    fn input(&self) -> CustomerInput {
        CustomerInput {
            name: opt(&self.name),
            phone: opt(&self.phone),
            gender: opt(&self.gender),
            birthday: opt(&self.birthday),
            nationality: opt(&self.nationality),
            customer_type: opt(&self.customer_type),
            industry: opt(&self.industry),
            title: opt(&self.title),
            company: opt(&self.company),
            work_phone: opt(&self.work_phone),
            id_document_kind: opt(&self.id_number).and(opt(&self.id_document_kind)),
            id_number: opt(&self.id_number),
            email: opt(&self.email),
            address: opt(&self.address),
            acquisition_source: opt(&self.acquisition_source),
            marketing_consent: Some(self.marketing_consent.is_some()),
            favourite_dishes: split_list(&self.favourite_dishes),
            tastes: split_list(&self.tastes),
            seat_preference: opt(&self.seat_preference),
            allergies: split_list(&self.allergies),
            tags: split_list(&self.tags),
            notes: opt(&self.notes),
            lifecycle_stage: opt(&self.lifecycle_stage),
            churn_reason: opt(&self.churn_reason),
            churn_note: opt(&self.churn_note),
            ..Default::default()
        }
    }

    /// The edit as a JSON merge patch: the form's fields only (an emptied field clears).
    /// Fields shown masked to this staff member are left out, so that saving never
    /// writes a mask over the real number; an empty ID number keeps the one on file.
    fn patch(&self, personal: bool) -> serde_json::Value {
        let input = self.input();
        let mut v = serde_json::to_value(&input).expect("input serialises");
        let obj = v.as_object_mut().expect("object");
        obj.remove("organization_id");
        obj.remove("referred_by");
        obj.remove("age_band");
        obj.remove("credit_rating");
        obj.remove("marketing_consent_source");
        if !personal {
            obj.remove("phone");
            obj.remove("email");
            obj.remove("work_phone");
        }
        if input.id_number.is_none() {
            obj.remove("id_number");
            obj.remove("id_document_kind");
        }
        // A new birthday gives a new age band; without one the band on file stays.
        if input.birthday.is_some() {
            obj.insert("age_band".into(), serde_json::Value::Null);
        }
        v
    }
}

/// Forms already answered, by tenant and form key (this process only): a double click or
/// a retry of a create or merge lands on its first result instead of doing it again.
static ANSWERED: Mutex<VecDeque<(String, String)>> = Mutex::new(VecDeque::new());

fn answered(actor: &Actor, key: &str) -> Option<String> {
    if key.is_empty() {
        return None;
    }
    let k = format!("{}:{key}", actor.tenant_id);
    let list = ANSWERED.lock().unwrap_or_else(|e| e.into_inner());
    list.iter().find(|(x, _)| *x == k).map(|(_, v)| v.clone())
}

fn remember(actor: &Actor, key: &str, result: String) {
    if key.is_empty() {
        return;
    }
    let mut list = ANSWERED.lock().unwrap_or_else(|e| e.into_inner());
    if list.len() >= 1000 {
        list.pop_front();
    }
    list.push_back((format!("{}:{key}", actor.tenant_id), result));
}

/// The choices of the form's selects, as codes (the template names them).
fn choices() -> minijinja::Value {
    context! {
        genders => Gender::ALL.iter().map(|x| x.as_str()).collect::<Vec<_>>(),
        types => CustomerType::ALL.iter().map(|x| x.as_str()).collect::<Vec<_>>(),
        sources => AcquisitionSource::ALL.iter().map(|x| x.as_str()).collect::<Vec<_>>(),
        stages => LifecycleStage::ALL.iter().map(|x| x.as_str()).collect::<Vec<_>>(),
        churn_reasons => ChurnReason::ALL.iter().map(|x| x.as_str()).collect::<Vec<_>>(),
        id_kinds => ["resident_id", "passport", "hk_macao_permit", "taiwan_permit", "other"],
    }
}

/// What the form template needs besides the values.
struct FormView<'a> {
    form: &'a ProfileForm,
    errors: &'a FormErrors,
    /// The customer already holding the phone or ID number typed.
    existing: Option<(String, String)>,
    /// The customer being edited (None: a new one).
    editing: Option<&'a Customer>,
}

fn render_form(web: &Web, v: FormView<'_>, status: StatusCode) -> WebResult<Response> {
    let personal = web.can(Permission::ViewPersonalData);
    let ctx = context! {
        f => ser(v.form),
        errors => ser(v.errors),
        existing => v.existing.map(|(id, name)| context! { id, name }),
        editing => v.editing.map(|c| context! {
            id => c.id.to_string(),
            name => &c.profile.name,
            id_document => c.profile.id_document.as_ref().map(|d| &d.masked),
        }),
        // Without personal-data rights the phone and e-mail are shown masked, read-only.
        personal => personal || v.editing.is_none(),
        choices => choices(),
    };
    let html = if web.htmx {
        web.fragment("customers/_form.html", ctx)?
    } else {
        web.page("customers/form.html", "customers", ctx)?
    };
    Ok((status, html).into_response())
}

/// The customer named by a conflict (`phone_in_use`, `id_number_in_use`), for a link.
async fn conflict_with(web: &Web, e: &AppError) -> Option<(String, String)> {
    let AppError::Conflict {
        existing: Some(other),
        code: "phone_in_use" | "id_number_in_use",
        ..
    } = e
    else {
        return None;
    };
    let c = web
        .app
        .get_customer(&web.actor, CustomerId(*other))
        .await
        .ok()?;
    Some((c.id.to_string(), c.profile.name))
}

async fn new_form(web: Web) -> WebResult<Response> {
    web.actor.require(Permission::EditCustomers)?;
    let form = ProfileForm {
        form_key: patron_app::new_uuid().to_string(),
        lifecycle_stage: "customer".into(),
        customer_type: "individual".into(),
        ..Default::default()
    };
    render_form(
        &web,
        FormView {
            form: &form,
            errors: &FormErrors::default(),
            existing: None,
            editing: None,
        },
        StatusCode::OK,
    )
}

/// `POST /customers/new`: creates the customer and opens its page; errors stay beside
/// their fields.
async fn create(web: Web, WebForm(f): WebForm<ProfileForm>) -> WebResult<Response> {
    if let Some(id) = answered(&web.actor, &f.form_key) {
        return Ok(see_other(&format!("/customers/{id}"), web.htmx));
    }
    match web.app.create_customer(&web.actor, &f.input()).await {
        Ok(c) => {
            remember(&web.actor, &f.form_key, c.id.to_string());
            Ok(see_other(&format!("/customers/{}", c.id), web.htmx))
        }
        Err(e) => {
            let existing = conflict_with(&web, &e).await;
            let errors = FormErrors::from_app(e)?;
            render_form(
                &web,
                FormView {
                    form: &f,
                    errors: &errors,
                    existing,
                    editing: None,
                },
                StatusCode::UNPROCESSABLE_ENTITY,
            )
        }
    }
}

async fn edit_form(web: Web, Path(raw): Path<String>) -> WebResult<Response> {
    let id = customer_id(&raw)?;
    web.actor.require(Permission::EditCustomers)?;
    let c = web.app.get_customer(&web.actor, id).await?;
    if let Some(to) = c.merged_into {
        return Ok(see_other(
            &format!("/customers/{to}?merged_from={id}"),
            false,
        ));
    }
    let form = ProfileForm::from_customer(&c, web.lang);
    render_form(
        &web,
        FormView {
            form: &form,
            errors: &FormErrors::default(),
            existing: None,
            editing: Some(&c),
        },
        StatusCode::OK,
    )
}

/// `POST /customers/{id}/edit`: saves the form's fields (a merge patch) and goes back to
/// the customer's page.
async fn update(
    web: Web,
    Path(raw): Path<String>,
    WebForm(f): WebForm<ProfileForm>,
) -> WebResult<Response> {
    let id = customer_id(&raw)?;
    let personal = web.can(Permission::ViewPersonalData);
    match web
        .app
        .update_customer(&web.actor, id, &f.patch(personal))
        .await
    {
        Ok(_) => Ok(see_other(&format!("/customers/{id}?saved=1"), web.htmx)),
        Err(e) => {
            let existing = conflict_with(&web, &e).await;
            let errors = FormErrors::from_app(e)?;
            let c = web.app.get_customer(&web.actor, id).await?;
            // Masked fields are shown as on file, not as typed.
            let mut form = f;
            if !personal {
                let on_file = ProfileForm::from_customer(&c, web.lang);
                form.phone = on_file.phone;
                form.email = on_file.email;
                form.work_phone = on_file.work_phone;
            }
            render_form(
                &web,
                FormView {
                    form: &form,
                    errors: &errors,
                    existing,
                    editing: Some(&c),
                },
                StatusCode::UNPROCESSABLE_ENTITY,
            )
        }
    }
}

// ---------------------------------------------------------------------------------------
// Duplicates and merging

#[derive(Debug, Default, Deserialize)]
pub struct DupQuery {
    page: Option<String>,
}

/// `GET /customers/duplicates`: groups of customers that look like one person. The
/// oldest record of a group is offered as the one to keep.
async fn duplicates(web: Web, Query(q): Query<DupQuery>) -> WebResult<Html<String>> {
    let app = &web.app;
    let groups = app.duplicate_groups(&web.actor).await?;
    let settings = app.settings(&web.actor).await?;
    let levels = level_names(&settings, web.lang);
    let page = page_number(&q.page) as usize;
    let start = (page - 1) * GROUPS_PER_PAGE;
    let mut out = vec![];
    for g in groups.iter().skip(start).take(GROUPS_PER_PAGE) {
        let mut members = vec![];
        for id in &g.customer_ids {
            let c = app.get_customer(&web.actor, *id).await?;
            let email = c.profile.email.clone();
            members.push(context! { row => ser(row(c, &levels)), email });
        }
        out.push(context! {
            reason => &g.reason,
            keep => g.customer_ids.first().map(|x| x.to_string()),
            members,
        });
    }
    web.page(
        "customers/duplicates.html",
        "customers",
        context! {
            groups => out,
            total => groups.len(),
            page,
            has_more => groups.len() > start + GROUPS_PER_PAGE,
        },
    )
}

#[derive(Debug, Default, Deserialize)]
pub struct MergeQuery {
    /// The record to fold into this one.
    duplicate: Option<String>,
    /// A search for the duplicate (phone, card number, name).
    q: Option<String>,
}

/// What merging `dup` into `keep` would move and fill in, for the confirmation.
async fn merge_preview(web: &Web, keep: &Customer, dup: &Customer) -> WebResult<minijinja::Value> {
    let app = &web.app;
    let actor = &web.actor;
    let mut cards = vec![];
    if web.can(Permission::ViewCards) {
        for card in app.customer_cards(actor, dup.id).await? {
            let v = app.get_card_view(actor, card.id).await?;
            cards.push(context! {
                id => v.card.id.to_string(), number => v.card.number, status => card_status(v.card.status),
                principal => v.balances.principal.fen(), bonus => v.balances.bonus.fen(), points => v.balances.points,
            });
        }
    }
    let coupons = if web.can(Permission::ViewCoupons) {
        Some(
            app.customer_coupons(actor, dup.id, Some(CouponStatus::Issued))
                .await?
                .len(),
        )
    } else {
        None
    };
    // The creation line is added by the use case, not moved.
    let events = app
        .timeline(actor, dup.id, None, None, 500)
        .await?
        .iter()
        .filter(|e| e.kind != "customer_created")
        .count();
    let mut merged: CustomerProfile = keep.profile.clone();
    merged.absorb(&dup.profile);
    let filled = changed_fields(&keep.profile, &merged);
    Ok(context! {
        cards, coupons, events, events_more => events >= 500, filled,
    })
}

/// Names of the profile fields that differ.
fn changed_fields(a: &CustomerProfile, b: &CustomerProfile) -> Vec<String> {
    let (va, vb) = (
        serde_json::to_value(a).unwrap_or_default(),
        serde_json::to_value(b).unwrap_or_default(),
    );
    let (Some(oa), Some(ob)) = (va.as_object(), vb.as_object()) else {
        return vec![];
    };
    oa.iter()
        .filter(|(k, v)| ob.get(*k) != Some(v))
        .map(|(k, _)| match k.as_str() {
            "id_document" => "id_number".to_string(),
            _ => k.clone(),
        })
        .collect()
}

fn person(c: &Customer, levels: &[(String, String)]) -> minijinja::Value {
    context! {
        id => c.id.to_string(),
        name => &c.profile.name,
        phone => c.profile.phone.as_ref().map(|p| p.as_str()),
        email => &c.profile.email,
        birthday => ser(c.profile.birthday),
        level => level_name(levels, &c.level),
        created_at => ser(c.created_at),
    }
}

/// `GET /customers/{id}/merge`: choose the duplicate to fold into this customer (the
/// candidates that look alike, or a search), then confirm, seeing what moves.
async fn merge_page(
    web: Web,
    Path(raw): Path<String>,
    Query(q): Query<MergeQuery>,
) -> WebResult<Response> {
    let id = customer_id(&raw)?;
    let app = &web.app;
    let actor = &web.actor;
    // Also the permission check: only those who may merge see this page.
    let groups = app.duplicate_groups(actor).await?;
    let keep = app.get_customer(actor, id).await?;
    if let Some(to) = keep.merged_into {
        return Ok(see_other(
            &format!("/customers/{to}?merged_from={id}"),
            false,
        ));
    }
    let settings = app.settings(actor).await?;
    let levels = level_names(&settings, web.lang);
    let mut candidates = vec![];
    let mut seen = vec![id];
    for g in groups.iter().filter(|g| g.customer_ids.contains(&id)) {
        for other in &g.customer_ids {
            if !seen.contains(other) {
                seen.push(*other);
                let c = app.get_customer(actor, *other).await?;
                candidates.push(context! { p => person(&c, &levels), reason => &g.reason });
            }
        }
    }
    let mut found = vec![];
    if let Some(s) = blank(&q.q) {
        for c in app.lookup_customers(actor, s, 20).await? {
            if c.id != id {
                found.push(person(&c, &levels));
            }
        }
    }
    let confirm = match blank(&q.duplicate) {
        Some(d) => {
            let dup_id = customer_id(d)?;
            let dup = app.get_customer(actor, dup_id).await?;
            Some(context! {
                dup => person(&dup, &levels),
                preview => merge_preview(&web, &keep, &dup).await?,
                form_key => patron_app::new_uuid().to_string(),
            })
        }
        None => None,
    };
    Ok(web
        .page(
            "customers/merge.html",
            "customers",
            context! {
                keep => person(&keep, &levels),
                candidates, found, confirm,
                q => blank(&q.q).unwrap_or_default(),
                errors => ser(FormErrors::default()),
            },
        )?
        .into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct MergeForm {
    duplicate_id: String,
    form_key: String,
}

/// `POST /customers/{id}/merge`: merges and shows the survivor with what moved.
async fn merge(
    web: Web,
    Path(raw): Path<String>,
    WebForm(f): WebForm<MergeForm>,
) -> WebResult<Response> {
    let id = customer_id(&raw)?;
    if let Some(to) = answered(&web.actor, &f.form_key) {
        return Ok(see_other(&to, web.htmx));
    }
    let dup = customer_id(&f.duplicate_id)?;
    match web.app.merge_customers(&web.actor, id, dup).await {
        Ok((survivor, moved)) => {
            let to = format!(
                "/customers/{}?moved_events={}&moved_cards={}&moved_members={}&moved_referrals={}",
                survivor.id, moved.timeline_events, moved.cards, moved.members, moved.referrals
            );
            remember(&web.actor, &f.form_key, to.clone());
            Ok(see_other(&to, web.htmx))
        }
        Err(e) => {
            let errors = FormErrors::from_app(e)?;
            let message = errors
                .general
                .clone()
                .or_else(|| errors.fields.values().next().cloned())
                .unwrap_or_default();
            let html = web.fragment("customers/_merge_error.html", context! { message })?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, html).into_response())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use patron_domain::ids::{TenantId, TimelineEventId};

    /// Events newest first, `n` per moment (as a checkout writes several at once).
    fn events(moments: &[(i64, usize)]) -> Vec<TimelineEvent> {
        let mut out = vec![];
        for (k, (secs, n)) in moments.iter().enumerate() {
            for i in 0..*n {
                out.push(TimelineEvent {
                    tenant_id: TenantId(uuid::Uuid::nil()),
                    // Within one moment, ids descend (the store's order).
                    id: TimelineEventId(uuid::Uuid::from_u128((1000 - k * 10 - i) as u128)),
                    customer_id: CustomerId(uuid::Uuid::nil()),
                    occurred_at: Utc.timestamp_opt(*secs, 0).unwrap(),
                    kind: format!("e{secs}-{i}"),
                    summary: String::new(),
                    data: serde_json::Value::Null,
                    store_id: None,
                    staff_id: None,
                });
            }
        }
        out
    }

    fn kinds(e: &[TimelineEvent]) -> Vec<String> {
        e.iter().map(|e| e.kind.clone()).collect()
    }

    #[test]
    fn timeline_pages_split_a_moment_without_losing_or_repeating_events() {
        // Moments at 50 (1 event), 40 (3 events), 30 (2), 20 (1): pages of 2.
        let all = events(&[(50, 1), (40, 3), (30, 2), (20, 1)]);
        let mut seen = vec![];
        let mut cursor = None;
        for _ in 0..10 {
            // What the store returns: events before (cursor + 1µs), newest first.
            let fetched: Vec<_> = all
                .iter()
                .filter(|e| cursor.is_none_or(|c: Cursor| e.occurred_at <= c.at))
                .cloned()
                .collect();
            let (page, next) = page_after(fetched, cursor, 2);
            assert!(page.len() <= 2);
            seen.extend(kinds(&page));
            match next {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(seen, kinds(&all));
    }

    #[test]
    fn a_cursor_in_the_middle_of_a_moment_skips_what_was_shown() {
        let all = events(&[(40, 3), (30, 1)]);
        let c = Cursor {
            at: Utc.timestamp_opt(40, 0).unwrap(),
            skip: 2,
        };
        let (page, next) = page_after(all, Some(c), 5);
        assert_eq!(kinds(&page), ["e40-2", "e30-0"]);
        assert!(next.is_none());
    }

    #[test]
    fn lists_split_on_commas_and_enumeration_marks() {
        assert_eq!(
            split_list("花生、海鲜, 芒果；虾\n 蟹 ,,"),
            ["花生", "海鲜", "芒果", "虾", "蟹"]
        );
        assert!(split_list("  ").is_empty());
    }

    #[test]
    fn a_save_without_personal_data_rights_leaves_masked_fields_alone() {
        let form = ProfileForm {
            name: "张伟".into(),
            phone: "138****8000".into(),
            email: "z***@example.com".into(),
            tags: "VIP、老顾客".into(),
            seat_preference: String::new(),
            ..Default::default()
        };
        let patch = form.patch(false);
        let obj = patch.as_object().unwrap();
        assert!(!obj.contains_key("phone"));
        assert!(!obj.contains_key("email"));
        assert!(!obj.contains_key("work_phone"));
        // An empty ID number keeps the one on file; an emptied field clears.
        assert!(!obj.contains_key("id_number"));
        assert_eq!(obj["seat_preference"], serde_json::Value::Null);
        assert_eq!(obj["tags"], serde_json::json!(["VIP", "老顾客"]));
        // With the right, the phone is sent as typed.
        assert_eq!(form.patch(true)["phone"], "138****8000");
    }

    #[test]
    fn bilingual_summaries_keep_their_details() {
        assert_eq!(
            summary_detail("获得优惠券 / coupon issued: 满500送50 ABCD (至 2026-01-01)"),
            "满500送50 ABCD (至 2026-01-01)"
        );
        assert_eq!(
            summary_detail("反结账 SH-1：客人投诉"),
            "反结账 SH-1：客人投诉"
        );
    }
}
