//! Coupon templates: the list, creating and editing one (what a coupon is worth, when it
//! is valid, where and by whom it may be used, limits, points price), issuing a coupon of
//! a template to a customer, the coupons issued from it, and a coupon by its code with
//! voiding (with a reason).
//!
//! Issuing to a segment is not offered: there is no segment use case yet, only issuing to
//! a list of customers (`App::issue_coupons`), which the API serves.

use super::super::Web;
use super::super::i18n::money;
use super::super::render::{WebResult, see_other};
use super::prices::parse_id;
use super::{
    Check, Fields, Once, Seen, form_key, level_name, once_scope, page_of, running_error,
    scaled_str, v, with_status,
};
use crate::web::WebForm;
use axum::Router;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{NaiveDate, NaiveTime};
use minijinja::{Value, context};
use patron_app::coupons::{CouponView, TemplateInput};
use patron_app::menu::ItemQuery;
use patron_app::{App, AppError};
use patron_domain::coupon::{CouponKind, CouponStatus, CouponTemplate, HourRange, Validity};
use patron_domain::customer::Customer;
use patron_domain::ids::{CustomerId, MenuItemId, StoreId};
use patron_domain::permissions::Permission;
use serde::Deserialize;
use std::collections::BTreeMap;
use uuid::Uuid;

pub fn routes() -> Router<App> {
    Router::new()
        .route("/loyalty/coupons", get(list).post(create))
        .route("/loyalty/coupons/new", get(new_page))
        .route("/loyalty/coupons/code", get(by_code))
        .route("/loyalty/coupons/void", post(void))
        .route("/loyalty/coupons/{id}", get(template_page).post(update))
        .route("/loyalty/coupons/{id}/customers", get(candidates))
        .route("/loyalty/coupons/{id}/issue", post(issue))
}

/// What a coupon is worth, in a phrase: "¥30.00 off bills of ¥200.00 or more".
pub(super) fn kind_text(lang: super::Lang, k: &CouponKind) -> String {
    let min = |m: &Option<patron_domain::money::Money>| {
        m.map(|m| lang.t_args("loy-kind-min", &[("min", money(m))]))
            .unwrap_or_default()
    };
    match k {
        CouponKind::Cash { value, min_spend } => {
            lang.t_args("loy-kind-cash-text", &[("value", money(*value))]) + &min(min_spend)
        }
        CouponKind::Discount {
            percent_off_bp,
            cap,
            min_spend,
        } => {
            let cap = cap
                .map(|c| lang.t_args("loy-kind-cap", &[("cap", money(c))]))
                .unwrap_or_default();
            lang.t_args(
                "loy-kind-discount-text",
                &[("pct", scaled_str(i64::from(*percent_off_bp), 2))],
            ) + &cap
                + &min(min_spend)
        }
        CouponKind::Item { name, .. } => {
            lang.t_args("loy-kind-item-text", &[("dish", name.clone())])
        }
    }
}

/// When a coupon is valid, in a phrase.
fn validity_text(lang: super::Lang, v: &Validity) -> String {
    match v {
        Validity::Fixed { from, to } => lang.t_args(
            "loy-validity-fixed-text",
            &[("from", lang.date(*from)), ("to", lang.date(*to))],
        ),
        Validity::DaysAfterIssue { days } => {
            lang.t_args("loy-validity-days-text", &[("days", days.to_string())])
        }
        Validity::EndOfMonth => lang.t("loy-validity-month-text"),
    }
}

/// A template for the lists; `today` (the tenant's date) tells whether its dates ended.
fn template_row(web: &Web, t: &CouponTemplate, today: NaiveDate) -> Value {
    context! {
        ended => matches!(t.validity, Validity::Fixed { to, .. } if to < today),
        id => t.id.to_string(),
        name => level_name(web.lang, &t.name, &t.name_en),
        kind => t.kind.code(),
        worth => kind_text(web.lang, &t.kind),
        validity => validity_text(web.lang, &t.validity),
        limit => t.per_customer_limit,
        points_price => t.points_price,
        active => t.active,
    }
}

/// The tenant's local date now.
async fn tenant_today(web: &Web) -> WebResult<NaiveDate> {
    let s = web.app.settings(&web.actor).await?;
    Ok(s.local_date(patron_app::now()))
}

#[derive(Deserialize, Default)]
struct PageQuery {
    page: Option<u32>,
}

async fn list(web: Web, Query(q): Query<PageQuery>) -> WebResult<Html<String>> {
    let all = web.app.coupon_templates(&web.actor).await?;
    let today = tenant_today(&web).await?;
    let (items, page, has_more) = page_of(&all, q.page.unwrap_or(1));
    web.page(
        "loyalty/coupons.html",
        "loyalty",
        context! {
            tab => "coupons",
            templates => items.iter().map(|t| template_row(&web, t, today)).collect::<Vec<_>>(),
            page, has_more,
            can_manage => web.can(Permission::ManageCoupons),
        },
    )
}

// ---------------------------------------------------------------------------------------
// The template form

/// The form's values for a template (or a new one).
fn template_values(t: Option<&CouponTemplate>) -> (BTreeMap<String, String>, Selected) {
    let mut v = BTreeMap::new();
    let mut set = |k: &str, val: String| {
        v.insert(k.to_string(), val);
    };
    let on = |b: bool| if b { "on".to_string() } else { String::new() };
    let yuan = |m: Option<patron_domain::money::Money>| {
        m.map(|m| {
            let s = m.to_decimal_string();
            s.strip_suffix(".00").map(str::to_string).unwrap_or(s)
        })
        .unwrap_or_default()
    };
    let Some(t) = t else {
        set("kind", "cash".into());
        set("validity", "days_after_issue".into());
        set("validity.days", "30".into());
        set("stacks_with_member_price", on(true));
        set("active", on(true));
        return (v, Selected::default());
    };
    set("name", t.name.clone());
    set("name_en", t.name_en.clone());
    set("kind", t.kind.code().into());
    match &t.kind {
        CouponKind::Cash { value, min_spend } => {
            set("kind.value", yuan(Some(*value)));
            set("kind.min_spend", yuan(*min_spend));
        }
        CouponKind::Discount {
            percent_off_bp,
            cap,
            min_spend,
        } => {
            set(
                "kind.percent_off_bp",
                scaled_str(i64::from(*percent_off_bp), 2),
            );
            set("kind.cap", yuan(*cap));
            set("kind.min_spend", yuan(*min_spend));
        }
        CouponKind::Item { menu_item_id, .. } => {
            set("kind.menu_item_id", menu_item_id.to_string());
        }
    }
    match t.validity {
        Validity::Fixed { from, to } => {
            set("validity", "fixed".into());
            set("validity.from", from.to_string());
            set("validity.to", to.to_string());
        }
        Validity::DaysAfterIssue { days } => {
            set("validity", "days_after_issue".into());
            set("validity.days", days.to_string());
        }
        Validity::EndOfMonth => set("validity", "end_of_month".into()),
    }
    set(
        "excluded_hours",
        t.excluded_hours
            .iter()
            .map(|h| format!("{}-{}", h.from.format("%H:%M"), h.to.format("%H:%M")))
            .collect::<Vec<_>>()
            .join(", "),
    );
    set(
        "per_customer_limit",
        t.per_customer_limit
            .map(|n| n.to_string())
            .unwrap_or_default(),
    );
    set(
        "points_price",
        t.points_price.map(|n| n.to_string()).unwrap_or_default(),
    );
    set("stacks_with_coupons", on(t.stacks_with_coupons));
    set("stacks_with_member_price", on(t.stacks_with_member_price));
    set("transferable", on(t.transferable));
    set("active", on(t.active));
    let sel = Selected {
        weekdays: t.excluded_weekdays.iter().map(|d| d.to_string()).collect(),
        stores: t.store_ids.iter().map(|s| s.to_string()).collect(),
        levels: t.level_codes.clone(),
    };
    (v, sel)
}

/// The ticked boxes of the form's groups.
#[derive(Default, serde::Serialize)]
struct Selected {
    weekdays: Vec<String>,
    stores: Vec<String>,
    levels: Vec<String>,
}

/// "11:00-13:00, 17:30-19:00" → the ranges; `None` when one does not read.
fn parse_hours(s: &str) -> Option<Vec<HourRange>> {
    s.split([',', '，', ';', '；', '、', '\n'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (a, b) = p.split_once(['-', '–', '~', '～'])?;
            let t = |x: &str| NaiveTime::parse_from_str(x.trim(), "%H:%M").ok();
            Some(HourRange {
                from: t(a)?,
                to: t(b)?,
            })
        })
        .collect()
}

/// The template as typed, or `None` with the errors in `c`.
fn parse_template(
    f: &Fields,
    items: &[(MenuItemId, String)],
    c: &mut Check,
) -> Option<TemplateInput> {
    if f.get("name").is_empty() {
        c.err("name", "err-required");
    }
    let kind = match f.get("kind") {
        "cash" => {
            let value = c.money("kind.value", f.get("kind.value"));
            let min = c.money_opt("kind.min_spend", f.get("kind.min_spend"));
            value
                .zip(min)
                .map(|(value, min_spend)| CouponKind::Cash { value, min_spend })
        }
        "discount" => {
            let pct = c.scaled("kind.percent_off_bp", f.get("kind.percent_off_bp"), 2);
            let cap = c.money_opt("kind.cap", f.get("kind.cap"));
            let min = c.money_opt("kind.min_spend", f.get("kind.min_spend"));
            match (pct, cap, min) {
                (Some(percent_off_bp), Some(cap), Some(min_spend)) => Some(CouponKind::Discount {
                    percent_off_bp,
                    cap,
                    min_spend,
                }),
                _ => None,
            }
        }
        "item" => {
            let id = f.get("kind.menu_item_id");
            match items.iter().find(|(i, _)| i.to_string() == id) {
                Some((menu_item_id, name)) => Some(CouponKind::Item {
                    menu_item_id: *menu_item_id,
                    name: name.clone(),
                }),
                None => {
                    c.err("kind.menu_item_id", "loy-err-choose-dish");
                    None
                }
            }
        }
        _ => {
            c.err("kind", "err-required");
            None
        }
    };
    let date = |c: &mut Check, name: &str| -> Option<NaiveDate> {
        let s = f.get(name);
        if s.is_empty() {
            c.err(name, "err-required");
            return None;
        }
        let d = s.parse().ok();
        if d.is_none() {
            c.err(name, "loy-err-date");
        }
        d
    };
    let validity = match f.get("validity") {
        "fixed" => {
            let from = date(c, "validity.from");
            let to = date(c, "validity.to");
            from.zip(to).map(|(from, to)| Validity::Fixed { from, to })
        }
        "days_after_issue" => c
            .uint("validity.days", f.get("validity.days"))
            .map(|days| Validity::DaysAfterIssue { days }),
        "end_of_month" => Some(Validity::EndOfMonth),
        _ => {
            c.err("validity", "err-required");
            None
        }
    };
    let mut weekdays = Vec::new();
    for d in f.all("excluded_weekdays") {
        match d.parse::<u8>() {
            Ok(d) => weekdays.push(d),
            Err(_) => c.err("excluded_weekdays", "loy-err-whole-number"),
        }
    }
    let hours = parse_hours(f.get("excluded_hours"));
    if hours.is_none() {
        c.err("excluded_hours", "loy-err-hours");
    }
    let mut stores = Vec::new();
    for s in f.all("store_ids") {
        match s.parse::<StoreId>() {
            Ok(s) => stores.push(s),
            Err(_) => c.err("store_ids", "err-invalid_form"),
        }
    }
    let limit = c
        .int_opt("per_customer_limit", f.get("per_customer_limit"))
        .and_then(|n| match n.map(u32::try_from) {
            None => Some(None),
            Some(Ok(n)) => Some(Some(n)),
            Some(Err(_)) => {
                c.err("per_customer_limit", "loy-v-per_customer_limit");
                None
            }
        });
    let points_price = c.int_opt("points_price", f.get("points_price"));
    if !c.ok() {
        return None;
    }
    Some(TemplateInput {
        name: f.get("name").to_string(),
        name_en: f.get("name_en").to_string(),
        kind: kind?,
        validity: validity?,
        excluded_weekdays: weekdays,
        excluded_hours: hours?,
        store_ids: stores,
        level_codes: f.all("level_codes").iter().map(|s| s.to_string()).collect(),
        per_customer_limit: limit?,
        stacks_with_coupons: f.on("stacks_with_coupons"),
        stacks_with_member_price: f.on("stacks_with_member_price"),
        transferable: f.on("transferable"),
        points_price: points_price?,
        active: f.on("active"),
    })
}

/// A use case's field → the form's input (the dish's name is the dish chosen).
fn template_rename(f: &str) -> Option<String> {
    Some(match f {
        "kind.name" => "kind.menu_item_id".into(),
        "template" | "body" => return None,
        other => other.to_string(),
    })
}

/// Active dishes (id, name) for the item-voucher choice, by category.
async fn dishes(web: &Web) -> WebResult<(Vec<(MenuItemId, String)>, Vec<Value>)> {
    let cats = web.app.menu_categories(&web.actor).await?;
    let items = web
        .app
        .menu_items(
            &web.actor,
            &ItemQuery {
                active: Some(true),
                ..Default::default()
            },
        )
        .await?;
    let pairs = items
        .iter()
        .map(|i| (i.item.id, i.item.name.clone()))
        .collect();
    let groups = cats
        .iter()
        .map(|c| {
            context! {
                name => level_name(web.lang, &c.name, &c.name_en),
                items => items.iter().filter(|i| i.item.category_id == c.id).map(|i| context! {
                    id => i.item.id.to_string(),
                    name => level_name(web.lang, &i.item.name, &i.item.name_en),
                    price => i.item.price.fen(),
                }).collect::<Vec<_>>(),
            }
        })
        .collect();
    Ok((pairs, groups))
}

/// What the template form needs beside its values: stores, levels, dishes.
async fn form_ctx(
    web: &Web,
    id: Option<Uuid>,
    values: BTreeMap<String, String>,
    sel: Selected,
    c: &Check,
    notice: bool,
) -> WebResult<Value> {
    let stores = web.app.stores(&web.actor).await?;
    let s = web.app.settings(&web.actor).await?;
    let (_, dish_groups) = dishes(web).await?;
    Ok(context! {
        id => id.map(|i| i.to_string()),
        v => v(values),
        sel => v(sel),
        errors => v(&c.errors),
        key => form_key(),
        stores => stores.iter().map(|s| context! { id => s.id.to_string(), name => &s.name }).collect::<Vec<_>>(),
        levels => s.levels.levels.iter().map(|l| context! {
            code => &l.code, name => level_name(web.lang, &l.name, &l.name_en),
        }).collect::<Vec<_>>(),
        dish_groups,
        weekdays => (1..=7).collect::<Vec<u8>>(),
        can_manage => web.can(Permission::ManageCoupons),
        notice,
    })
}

fn selected_of(f: &Fields) -> Selected {
    Selected {
        weekdays: f
            .all("excluded_weekdays")
            .iter()
            .map(|s| s.to_string())
            .collect(),
        stores: f.all("store_ids").iter().map(|s| s.to_string()).collect(),
        levels: f.all("level_codes").iter().map(|s| s.to_string()).collect(),
    }
}

async fn new_page(web: Web) -> WebResult<Html<String>> {
    let (values, sel) = template_values(None);
    let ctx = form_ctx(&web, None, values, sel, &Check::new(web.lang), false).await?;
    web.page(
        "loyalty/coupon_new.html",
        "loyalty",
        context! { tab => "coupons", f => ctx },
    )
}

/// Creates a template and goes to its page. The form's key makes a double click create
/// one template, not two.
async fn create(web: Web, WebForm(form): WebForm<Vec<(String, String)>>) -> WebResult<Response> {
    let f = Fields(form);
    let key = f.get("key").to_string();
    let mut c = Check::new(web.lang);
    match Once::claim(&once_scope(&web, "coupon-template"), &key) {
        Seen::Done(to) => return Ok(see_other(&to, true)),
        Seen::Running => c.errors = running_error(),
        Seen::New(claim) => {
            let (items, _) = dishes(&web).await?;
            if let Some(input) = parse_template(&f, &items, &mut c) {
                match web.app.create_coupon_template(&web.actor, &input).await {
                    Ok(t) => {
                        let to = format!("/loyalty/coupons/{}?created=1", t.id);
                        claim.finish(&to);
                        return Ok(see_other(&to, true));
                    }
                    Err(e) => c.app(e, &template_rename)?,
                }
            }
        }
    }
    c.summarize();
    let ctx = form_ctx(&web, None, f.values(), selected_of(&f), &c, false).await?;
    Ok(with_status(
        StatusCode::UNPROCESSABLE_ENTITY,
        web.fragment("loyalty/coupon_form.html", context! { f => ctx })?,
    ))
}

/// Saves a template's changes (the whole form: safe to submit twice).
async fn update(
    web: Web,
    Path(id): Path<String>,
    WebForm(form): WebForm<Vec<(String, String)>>,
) -> WebResult<Response> {
    let id: Uuid = parse_id(&id, "coupon template")?;
    let f = Fields(form);
    let mut c = Check::new(web.lang);
    let (items, _) = dishes(&web).await?;
    if let Some(input) = parse_template(&f, &items, &mut c) {
        let patch = serde_json::to_value(&input).unwrap_or_default();
        match web.app.update_coupon_template(&web.actor, id, &patch).await {
            Ok(t) => {
                let (values, sel) = template_values(Some(&t));
                let ctx =
                    form_ctx(&web, Some(id), values, sel, &Check::new(web.lang), true).await?;
                return Ok(web
                    .fragment("loyalty/coupon_form.html", context! { f => ctx })?
                    .into_response());
            }
            Err(e) => c.app(e, &template_rename)?,
        }
    }
    c.summarize();
    let ctx = form_ctx(&web, Some(id), f.values(), selected_of(&f), &c, false).await?;
    Ok(with_status(
        StatusCode::UNPROCESSABLE_ENTITY,
        web.fragment("loyalty/coupon_form.html", context! { f => ctx })?,
    ))
}

// ---------------------------------------------------------------------------------------
// A template's page: its form, issuing, and the coupons issued from it

#[derive(Deserialize, Default)]
struct TemplateQuery {
    page: Option<u32>,
    status: Option<String>,
    created: Option<String>,
}

/// A customer's name and phone as this staff member may see them.
fn customer_ctx(c: &Customer) -> Value {
    context! {
        id => c.id.to_string(),
        name => &c.profile.name,
        phone => c.profile.phone.as_ref().map(|p| p.as_str().to_string()),
        level => &c.level,
    }
}

/// Coupons with their holders' names (a page of them).
async fn coupon_rows(web: &Web, coupons: &[CouponView]) -> WebResult<Vec<Value>> {
    let may_see = web.can(Permission::ViewCustomers);
    let mut out = Vec::with_capacity(coupons.len());
    for cv in coupons {
        let holder = if may_see {
            match web
                .app
                .get_customer(&web.actor, cv.coupon.customer_id)
                .await
            {
                Ok(c) => Some(c.profile.name),
                Err(AppError::NotFound { .. }) => None,
                Err(e) => return Err(e.into()),
            }
        } else {
            None
        };
        out.push(coupon_ctx(web, cv, holder));
    }
    Ok(out)
}

fn coupon_ctx(web: &Web, cv: &CouponView, holder: Option<String>) -> Value {
    let c = &cv.coupon;
    context! {
        code => &c.code,
        status => c.status.as_str(),
        status_label => web.t(&format!("loy-status-{}", c.status.as_str())),
        template => &cv.template_name,
        template_id => c.template_id.to_string(),
        worth => kind_text(web.lang, &cv.kind),
        customer_id => c.customer_id.to_string(),
        holder,
        valid_from => c.valid_from.to_string(),
        valid_to => c.valid_to.to_string(),
        issued_at => c.issued_at.to_rfc3339(),
        channel => web.t(&format!("loy-channel-{}", c.channel.as_str())),
        redeemed_at => c.redeemed_at.map(|t| t.to_rfc3339()),
        voided_at => c.voided_at.map(|t| t.to_rfc3339()),
        void_reason => &c.void_reason,
    }
}

async fn template_page(
    web: Web,
    Path(id): Path<String>,
    Query(q): Query<TemplateQuery>,
) -> WebResult<Html<String>> {
    let id: Uuid = parse_id(&id, "coupon template")?;
    let t = web.app.get_coupon_template(&web.actor, id).await?;
    let today = tenant_today(&web).await?;
    let ended = matches!(t.validity, Validity::Fixed { to, .. } if to < today);
    let (values, sel) = template_values(Some(&t));
    let form = form_ctx(&web, Some(id), values, sel, &Check::new(web.lang), false).await?;
    let status = q.status.as_deref().and_then(CouponStatus::parse);
    let (coupons, page, has_more, total, capped) = if web.can(Permission::ViewCoupons) {
        let all = web
            .app
            .list_coupons(&web.actor, None, Some(id), status)
            .await?;
        let capped = all.len() as i64 >= patron_app::coupons::MAX_LIST;
        let (items, page, has_more) = page_of(&all, q.page.unwrap_or(1));
        (
            coupon_rows(&web, &items).await?,
            page,
            has_more,
            all.len(),
            capped,
        )
    } else {
        (vec![], 1, false, 0, false)
    };
    web.page(
        "loyalty/coupon.html",
        "loyalty",
        context! {
            tab => "coupons",
            tpl => template_row(&web, &t, today),
            created => q.created.is_some(),
            issue => issue_ctx(&web, id, "", None, &Check::new(web.lang), None),
            coupons, page, has_more, total, capped,
            status => status.map(|s| s.as_str()),
            statuses => ["issued", "redeemed", "voided", "expired"],
            base => format!(
                "/loyalty/coupons/{id}?{}",
                status.map(|s| format!("status={}&", s.as_str())).unwrap_or_default()
            ),
            can_issue => web.can(Permission::IssueCoupons) && t.active && !ended,
            can_view_coupons => web.can(Permission::ViewCoupons),
            f => form,
        },
    )
}

/// The issue form's context: what was typed, the candidates found, the last coupon issued.
fn issue_ctx(
    web: &Web,
    id: Uuid,
    q: &str,
    found: Option<Vec<Value>>,
    c: &Check,
    issued: Option<Value>,
) -> Value {
    context! {
        template_id => id.to_string(),
        q,
        found,
        errors => v(&c.errors),
        key => form_key(),
        issued,
        can_issue => web.can(Permission::IssueCoupons),
    }
}

#[derive(Deserialize, Default)]
struct Search {
    q: Option<String>,
}

/// Customers matching what was typed in the issue form (phone, card number, name).
async fn candidates(
    web: Web,
    Path(id): Path<String>,
    Query(s): Query<Search>,
) -> WebResult<Html<String>> {
    let _: Uuid = parse_id(&id, "coupon template")?;
    let q = s.q.unwrap_or_default();
    let found = if q.trim().is_empty() {
        vec![]
    } else {
        web.app.lookup_customers(&web.actor, q.trim(), 10).await?
    };
    web.fragment(
        "loyalty/coupon_candidates.html",
        context! { found => found.iter().map(customer_ctx).collect::<Vec<_>>(), q => q.trim() },
    )
}

/// Issues one coupon of the template to the customer chosen (or the one customer the
/// search finds). The form's key makes a double click issue one coupon, not two.
async fn issue(
    web: Web,
    Path(id): Path<String>,
    WebForm(form): WebForm<Vec<(String, String)>>,
) -> WebResult<Response> {
    let id: Uuid = parse_id(&id, "coupon template")?;
    let f = Fields(form);
    let key = f.get("key").to_string();
    let q = f.get("q").to_string();
    let mut c = Check::new(web.lang);
    let mut found = None;
    match Once::claim(&once_scope(&web, "coupon-issue"), &key) {
        Seen::Done(html) => return Ok(Html(html).into_response()),
        Seen::Running => c.errors = running_error(),
        Seen::New(claim) => {
            let customer = match f.get("customer_id") {
                "" if q.is_empty() => {
                    c.err("q", "loy-err-choose-customer");
                    None
                }
                "" => {
                    let hits = web.app.lookup_customers(&web.actor, &q, 10).await?;
                    if hits.len() == 1 {
                        Some(hits[0].id)
                    } else {
                        c.err(
                            "q",
                            if hits.is_empty() {
                                "loy-err-no-customer"
                            } else {
                                "loy-err-choose-customer"
                            },
                        );
                        found = Some(hits.iter().map(customer_ctx).collect());
                        None
                    }
                }
                s => match s.parse::<CustomerId>() {
                    Ok(id) => Some(id),
                    Err(_) => {
                        c.err("q", "loy-err-choose-customer");
                        None
                    }
                },
            };
            if let Some(customer) = customer {
                match web
                    .app
                    .issue_coupons(
                        &web.actor,
                        id,
                        &[customer],
                        // The form's key: a double submit that reaches another server
                        // process issues nothing twice either.
                        Some(key.as_str()).filter(|k| !k.is_empty()),
                    )
                    .await
                {
                    Ok(coupons) => {
                        let holder = web
                            .app
                            .get_customer(&web.actor, customer)
                            .await
                            .ok()
                            .map(|c| c.profile.name);
                        let issued = coupons.first().map(|cv| coupon_ctx(&web, cv, holder));
                        let html = web.fragment(
                            "loyalty/coupon_issue.html",
                            context! {
                                issue => issue_ctx(&web, id, "", None, &Check::new(web.lang), issued),
                            },
                        )?;
                        claim.finish(&html.0);
                        // The list of issued coupons below reloads itself on this event.
                        return Ok(([("hx-trigger", "loy-issued")], html).into_response());
                    }
                    Err(e) => c.app(e, &|f| match f {
                        "customer_id" | "customer_ids" => Some("q".into()),
                        _ => None,
                    })?,
                }
            }
        }
    }
    Ok(with_status(
        StatusCode::UNPROCESSABLE_ENTITY,
        web.fragment(
            "loyalty/coupon_issue.html",
            context! { issue => issue_ctx(&web, id, &q, found, &c, None) },
        )?,
    ))
}

// ---------------------------------------------------------------------------------------
// A coupon by its code, and voiding

#[derive(Deserialize, Default)]
struct CodeQuery {
    code: Option<String>,
}

async fn coupon_panel_ctx(web: &Web, cv: &CouponView, c: &Check, notice: bool) -> WebResult<Value> {
    let holder = if web.can(Permission::ViewCustomers) {
        web.app
            .get_customer(&web.actor, cv.coupon.customer_id)
            .await
            .ok()
            .map(|c| c.profile.name)
    } else {
        None
    };
    Ok(context! {
        c => coupon_ctx(web, cv, holder),
        errors => v(&c.errors),
        can_void => web.can(Permission::VoidCoupons) && cv.coupon.status == CouponStatus::Issued,
        notice,
    })
}

async fn by_code(web: Web, Query(q): Query<CodeQuery>) -> WebResult<Html<String>> {
    let code = q.code.unwrap_or_default();
    let mut c = Check::new(web.lang);
    let panel = if code.trim().is_empty() {
        None
    } else {
        match web.app.get_coupon_by_code(&web.actor, code.trim()).await {
            Ok(cv) => Some(coupon_panel_ctx(&web, &cv, &c, false).await?),
            Err(AppError::NotFound { .. }) => {
                c.err("code", "loy-err-no-coupon");
                None
            }
            Err(e) => return Err(e.into()),
        }
    };
    web.page(
        "loyalty/coupon_code.html",
        "loyalty",
        context! {
            tab => "coupons",
            code => code.trim(),
            p => panel,
            errors => v(&c.errors),
        },
    )
}

/// Voids an unused coupon with a reason. Voiding it again finds it voided and shows it so.
async fn void(web: Web, WebForm(form): WebForm<Vec<(String, String)>>) -> WebResult<Response> {
    let f = Fields(form);
    let code = f.get("code");
    let mut c = Check::new(web.lang);
    let result = web.app.void_coupon(&web.actor, code, f.get("reason")).await;
    let (cv, ok) = match result {
        Ok(cv) => (cv, true),
        Err(e) => {
            let current = web.app.get_coupon_by_code(&web.actor, code).await?;
            if current.coupon.status == CouponStatus::Voided
                && current.coupon.void_reason.as_deref() == Some(f.get("reason"))
            {
                (current, true)
            } else {
                c.app(e, &|f| (f == "reason").then(|| "reason".to_string()))?;
                (current, false)
            }
        }
    };
    let ctx = coupon_panel_ctx(&web, &cv, &c, ok).await?;
    let html = web.fragment("loyalty/coupon_panel.html", context! { p => ctx })?;
    Ok(if ok {
        html.into_response()
    } else {
        with_status(StatusCode::UNPROCESSABLE_ENTITY, html)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excluded_hours_read_as_typed() {
        let h = parse_hours("11:00-13:00，17:30~19:00").unwrap();
        assert_eq!(h.len(), 2);
        assert_eq!(h[1].from, NaiveTime::from_hms_opt(17, 30, 0).unwrap());
        assert_eq!(parse_hours("").unwrap(), vec![]);
        assert!(parse_hours("lunch").is_none());
        assert!(parse_hours("11:00").is_none());
    }
}
