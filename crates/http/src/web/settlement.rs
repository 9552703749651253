//! The settlement pages: a store's daily settlement (日结) with closing and reopening the
//! day, shift handover (交班: open with a float, the shift's report, close with the
//! counted cash), and the chain's inter-store statement (跨店结算). Every report prints.
//!
//! The use cases have no idempotency keys here because their conflicts already make a
//! repeat harmless: a second "open shift" meets `shift_open`, a second handover
//! `shift_closed`, a second close `day_already_closed`. The handlers treat those as "done
//! already" and show the result instead of an error, so a double click or a retry is safe.

use super::forms::parse_date;
use super::i18n::Lang;
use super::render::{WebError, WebResult, see_other};
use super::{FormErrors, Web, WebForm, encode, parse_money, ser};
use axum::Router;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{Datelike, NaiveDate};
use minijinja::{Value, context};
use patron_app::settlement::{CloseDay, CloseShift, OpenShift, ReopenDay, Settlement, Shift};
use patron_app::{App, AppError};
use patron_domain::ledger::Tender;
use patron_domain::permissions::Permission;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

pub fn routes() -> Router<App> {
    Router::new()
        .route("/settlement", get(daily))
        .route("/settlement/close", post(close_day))
        .route("/settlement/reopen", post(reopen_day))
        .route("/settlement/shifts", get(shifts).post(open_shift))
        .route("/settlement/shifts/{id}", get(shift))
        .route("/settlement/shifts/{id}/close", post(close_shift))
        .route("/settlement/inter-store", get(inter_store))
}

/// Transaction kinds, tenders and discount kinds with a message `set-code-<code>`.
const CODES: &[&str] = &[
    "cash",
    "bank_card",
    "wechat",
    "alipay",
    "other_wallet",
    "stored_value",
    "charge",
    "unknown",
    "member_price",
    "level_discount",
    "payment_rule",
    "coupon",
    "points",
    "rounding",
    "top_up",
    "spend",
    "checkout",
    "reversal",
    "checkout_refund",
    "adjustment",
    "card_close",
    "card_sale",
    "transfer",
    "card_replace",
    "purchase",
    "repayment",
    "points_gift",
    "points_coupon",
    "points_expiry",
    "consumption",
    "refund",
    "principal",
    "bonus",
];

/// A code as people read it: `reversal:checkout` → "Reversal of checkout"; a code without
/// a message shows as itself.
fn code_label(lang: Lang, code: &str) -> String {
    if let Some(of) = code.strip_prefix("reversal:") {
        return lang.t_args("set-code-reversal-of", &[("what", code_label(lang, of))]);
    }
    lang.try_t(&format!("set-code-{code}"))
        .unwrap_or_else(|| code.to_string())
}

/// Labels of every code a report may name, for `labels[code]` in templates.
fn labels(lang: Lang, r: Option<&Settlement>) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = CODES
        .iter()
        .map(|c| (c.to_string(), code_label(lang, c)))
        .collect();
    if let Some(r) = r {
        let kinds = r
            .tenders
            .iter()
            .flat_map(|t| t.by_kind.keys().cloned().chain([t.tender.clone()]))
            .chain(r.revenue.keys().cloned())
            .chain(r.points.by_kind.keys().cloned())
            .chain(r.checkouts.discounts.iter().map(|d| d.kind.clone()))
            .chain(r.corrections.iter().map(|c| match &c.original_kind {
                Some(o) if c.kind == "reversal" => format!("reversal:{o}"),
                _ => c.kind.clone(),
            }))
            .collect::<Vec<_>>();
        for k in kinds {
            let label = code_label(lang, &k);
            out.entry(k).or_insert(label);
        }
    }
    out
}

/// One tender's money, grouped the way a manager checks it against the terminal slips.
#[derive(Serialize)]
struct TenderRow {
    tender: String,
    /// Top-ups (net of their reversals).
    top_ups: i64,
    /// Bills: checkouts, their reversals and refunds.
    bills: i64,
    /// Card refunds, repayments and anything else.
    other: i64,
    net: i64,
}

/// Cash first (the order of `Tender::ALL`), unknown tenders last.
fn tender_rank(t: &str) -> usize {
    Tender::ALL
        .iter()
        .position(|x| x.as_str() == t)
        .unwrap_or(Tender::ALL.len())
}

/// Rows by tender, cash first.
fn tender_rows(r: &Settlement) -> Vec<TenderRow> {
    let mut rows: Vec<TenderRow> = r
        .tenders
        .iter()
        .map(|t| {
            let mut row = TenderRow {
                tender: t.tender.clone(),
                top_ups: 0,
                bills: 0,
                other: 0,
                net: t.net.fen(),
            };
            for (kind, v) in &t.by_kind {
                match kind.as_str() {
                    "top_up" | "reversal:top_up" => row.top_ups += v.fen(),
                    "checkout" | "reversal:checkout" | "checkout_refund" => row.bills += v.fen(),
                    _ => row.other += v.fen(),
                }
            }
            row
        })
        .collect();
    rows.sort_by_key(|row| tender_rank(&row.tender));
    rows
}

/// Top-up principal per tender, in the same order as the tender rows.
fn top_up_tenders(r: &Settlement) -> Vec<Value> {
    let mut v: Vec<(&String, i64)> = r
        .top_ups
        .by_tender
        .iter()
        .map(|(t, m)| (t, m.fen()))
        .collect();
    v.sort_by_key(|(t, _)| tender_rank(t));
    v.into_iter()
        .map(|(t, m)| context! { tender => t, amount => m })
        .collect()
}

fn correction_key(kind: &str, original: Option<&str>) -> String {
    match (kind, original) {
        ("reversal", Some(o)) => format!("reversal:{o}"),
        _ => kind.to_string(),
    }
}

fn not_found(what: &str) -> WebError {
    WebError {
        status: StatusCode::NOT_FOUND,
        code: "not_found".into(),
        message: format!("no such {what}"),
        redirect: None,
    }
}

fn bad_date() -> WebError {
    WebError {
        status: StatusCode::BAD_REQUEST,
        code: "invalid_date".into(),
        message: "not a date (YYYY-MM-DD)".into(),
        redirect: None,
    }
}

fn day_url(store: &str, date: NaiveDate) -> String {
    format!("/settlement?store={}&date={date}", encode(store))
}

/// A rendered fragment with a status (422 when it carries the form's errors).
fn with_status(status: StatusCode, html: Html<String>) -> Response {
    (status, html).into_response()
}

/// The stores this staff member may settle: all for chain-wide staff, else their own.
async fn visible_stores(web: &Web) -> Vec<patron_domain::org::Store> {
    web.app
        .stores(&web.actor)
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|s| web.actor.require_store(s.id).is_ok())
        .collect()
}

/// The store a page is about: the one asked for, else the one logged in at, else the
/// first the staff member may see.
fn chosen_store(web: &Web, stores: &[patron_domain::org::Store], asked: Option<&str>) -> String {
    if let Some(s) = asked.map(str::trim).filter(|s| !s.is_empty()) {
        return s.to_string();
    }
    let own = web
        .actor
        .store_id
        .and_then(|id| stores.iter().find(|s| s.id == id));
    own.or(stores.first())
        .map(|s| s.code.clone())
        .unwrap_or_default()
}

fn store_options(stores: &[patron_domain::org::Store]) -> Vec<Value> {
    stores
        .iter()
        .map(|s| context! { code => &s.code, name => &s.name })
        .collect()
}

#[derive(Deserialize)]
pub struct DayQuery {
    store: Option<String>,
    date: Option<String>,
}

/// The daily settlement of a store's business day.
async fn daily(web: Web, Query(q): Query<DayQuery>) -> WebResult<Html<String>> {
    let date = parse_date(q.date.as_deref()).map_err(|()| bad_date())?;
    let stores = visible_stores(&web).await;
    let store = chosen_store(&web, &stores, q.store.as_deref());
    let r = web
        .app
        .daily_settlement(
            &web.actor,
            (!store.is_empty()).then_some(store.as_str()),
            date,
        )
        .await?;
    web.page(
        "settlement/daily.html",
        "settlement",
        daily_ctx(&web, &stores, &r, FormErrors::default(), String::new()).await?,
    )
}

/// Everything the daily page and its forms need.
async fn daily_ctx(
    web: &Web,
    stores: &[patron_domain::org::Store],
    r: &Settlement,
    errors: FormErrors,
    entered: String,
) -> WebResult<Value> {
    let settings = web.app.settings(&web.actor).await?;
    let today = settings.business_date(patron_app::now());
    let date = r.business_date.unwrap_or(today);
    let closed = r.day.as_ref().is_some_and(|d| d.status == "closed");
    let open_shifts: Vec<&Shift> = r.shifts.iter().filter(|s| s.closed_at.is_none()).collect();
    let corrections: Vec<Value> = r
        .corrections
        .iter()
        .map(|c| {
            context! {
                c => ser(c),
                key => correction_key(&c.kind, c.original_kind.as_deref()),
                total => (c.tender_amount + c.stored_value_amount).fen(),
            }
        })
        .collect();
    let adjustments: Vec<Value> = r
        .adjustments
        .iter()
        .map(|(k, v)| context! { kind => k, amount => v })
        .collect();
    Ok(context! {
        r => ser(r),
        labels => labels(web.lang, Some(r)),
        tenders => ser(tender_rows(r)),
        top_up_tenders => top_up_tenders(r),
        corrections => corrections,
        adjustments => adjustments,
        stores => store_options(stores),
        store => &r.store_code,
        date => date.to_string(),
        today => today.to_string(),
        prev => date.pred_opt().map(|d| d.to_string()),
        next => date.succ_opt().filter(|d| *d <= today).map(|d| d.to_string()),
        is_today => date == today,
        closed => closed,
        open_shifts => ser(&open_shifts),
        can_close => !closed && web.can(Permission::CloseDay),
        can_reopen => closed && web.can(Permission::ReopenDay),
        can_shifts => web.can(Permission::Shifts),
        can_chain => web.can(Permission::ChainReports),
        errors => ser(&errors),
        entered => entered,
    })
}

#[derive(Deserialize)]
pub struct CloseForm {
    store: String,
    date: String,
    #[serde(default)]
    note: String,
}

/// Closes the day: the signed snapshot replaces the live report.
async fn close_day(web: Web, WebForm(f): WebForm<CloseForm>) -> WebResult<Response> {
    let date = parse_date(Some(&f.date))
        .ok()
        .flatten()
        .ok_or_else(bad_date)?;
    let req = CloseDay {
        note: Some(f.note.clone()),
    };
    let err = match web
        .app
        .close_day(&web.actor, Some(&f.store), date, &req)
        .await
    {
        Ok(_) => return Ok(see_other(&day_url(&f.store, date), web.htmx)),
        // Closed already (a double click, or someone else): show it.
        Err(AppError::Conflict {
            code: "day_already_closed",
            ..
        }) => return Ok(see_other(&day_url(&f.store, date), web.htmx)),
        Err(e) => e,
    };
    let errors = FormErrors::from_app(err)?;
    day_form(
        &web,
        &f.store,
        date,
        errors,
        f.note,
        "settlement/_close.html",
    )
    .await
}

/// A day form re-rendered with its errors (422), with the day's current state.
async fn day_form(
    web: &Web,
    store: &str,
    date: NaiveDate,
    errors: FormErrors,
    entered: String,
    template: &str,
) -> WebResult<Response> {
    let stores = visible_stores(web).await;
    let r = web
        .app
        .daily_settlement(&web.actor, Some(store), Some(date))
        .await?;
    let ctx = daily_ctx(web, &stores, &r, errors, entered).await?;
    Ok(with_status(
        StatusCode::UNPROCESSABLE_ENTITY,
        web.fragment(template, ctx)?,
    ))
}

#[derive(Deserialize)]
pub struct ReopenForm {
    store: String,
    date: String,
    #[serde(default)]
    reason: String,
}

/// Reopens a closed day (the owner), with a reason.
async fn reopen_day(web: Web, WebForm(f): WebForm<ReopenForm>) -> WebResult<Response> {
    let date = parse_date(Some(&f.date))
        .ok()
        .flatten()
        .ok_or_else(bad_date)?;
    let reason = f.reason.trim().to_string();
    let result = if reason.is_empty() {
        let mut errors = FormErrors::default();
        errors
            .fields
            .insert("reason".into(), web.t("set-reason-required"));
        Err(errors)
    } else {
        match web
            .app
            .reopen_day(&web.actor, Some(&f.store), date, &ReopenDay { reason })
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => Err(FormErrors::from_app(e)?),
        }
    };
    match result {
        Ok(()) => Ok(see_other(&day_url(&f.store, date), web.htmx)),
        Err(mut errors) => {
            if let Some(m) = errors.fields.get_mut("reason")
                && f.reason.trim().chars().count() > 200
            {
                *m = web.t("set-reason-too-long");
            }
            day_form(
                &web,
                &f.store,
                date,
                errors,
                f.reason,
                "settlement/_reopen.html",
            )
            .await
        }
    }
}

/// The shifts of a store's day; the staff member's own open shift, or a form to open one.
async fn shifts(web: Web, Query(q): Query<DayQuery>) -> WebResult<Html<String>> {
    let date = parse_date(q.date.as_deref()).map_err(|()| bad_date())?;
    let ctx = shifts_ctx(&web, q.store.as_deref(), date, FormErrors::default(), "").await?;
    web.page("settlement/shifts.html", "settlement", ctx)
}

async fn shifts_ctx(
    web: &Web,
    store: Option<&str>,
    date: Option<NaiveDate>,
    errors: FormErrors,
    entered: &str,
) -> WebResult<Value> {
    let stores = visible_stores(web).await;
    let code = chosen_store(web, &stores, store);
    let list = web
        .app
        .shifts(
            &web.actor,
            (!code.is_empty()).then_some(code.as_str()),
            date,
        )
        .await?;
    let settings = web.app.settings(&web.actor).await?;
    let today = settings.business_date(patron_app::now());
    let date = date.unwrap_or(today);
    let mine = list
        .iter()
        .find(|s| s.staff_id == Some(web.actor.staff_id) && s.closed_at.is_none());
    // Shifts open at the store the staff member is logged in at (only there can one open).
    let here = web
        .actor
        .store_id
        .and_then(|id| stores.iter().find(|s| s.id == id))
        .map(|s| s.code.clone());
    Ok(context! {
        shifts => ser(&list),
        mine => ser(mine),
        can_open => mine.is_none() && here.as_deref() == Some(code.as_str()) && date == today,
        stores => store_options(&stores),
        store => code,
        date => date.to_string(),
        today => today.to_string(),
        can_finance => web.can(Permission::ViewFinance),
        can_chain => web.can(Permission::ChainReports),
        errors => ser(&errors),
        entered => entered,
    })
}

#[derive(Deserialize)]
pub struct OpenForm {
    #[serde(default)]
    opening_float: String,
    #[serde(default)]
    note: String,
}

/// Opens the staff member's shift with the float in the drawer.
async fn open_shift(web: Web, WebForm(f): WebForm<OpenForm>) -> WebResult<Response> {
    let mut errors = FormErrors::default();
    let float = parse_money(&mut errors, web.lang, "opening_float", &f.opening_float);
    if float.is_none() && errors.is_empty() {
        errors.field(web.lang, "opening_float", "required");
    }
    if let (Some(opening_float), true) = (float, errors.is_empty()) {
        let req = OpenShift {
            opening_float,
            note: Some(f.note.clone()),
        };
        match web.app.open_shift(&web.actor, &req).await {
            Ok(s) => {
                return Ok(see_other(&format!("/settlement/shifts/{}", s.id), web.htmx));
            }
            // Open already (a double click): the shift list shows it.
            Err(AppError::Conflict {
                code: "shift_open", ..
            }) => return Ok(see_other("/settlement/shifts", web.htmx)),
            Err(e) => errors = FormErrors::from_app(e)?,
        }
    }
    let ctx = shifts_ctx(&web, None, None, errors, &f.opening_float).await?;
    Ok(with_status(
        StatusCode::UNPROCESSABLE_ENTITY,
        web.fragment("settlement/_open_shift.html", ctx)?,
    ))
}

fn shift_id(id: &str) -> WebResult<Uuid> {
    Uuid::parse_str(id).map_err(|_| not_found("shift"))
}

/// One shift's report; while it is open, the handover form.
async fn shift(web: Web, Path(id): Path<String>) -> WebResult<Html<String>> {
    let id = shift_id(&id)?;
    let ctx = shift_ctx(&web, id, FormErrors::default(), "").await?;
    web.page("settlement/shift.html", "settlement", ctx)
}

async fn shift_ctx(web: &Web, id: Uuid, errors: FormErrors, entered: &str) -> WebResult<Value> {
    let r = web.app.shift_report(&web.actor, id).await?;
    let s = r.shifts.first().cloned().unwrap_or_default();
    let corrections: Vec<Value> = r
        .corrections
        .iter()
        .map(|c| {
            context! {
                c => ser(c),
                key => correction_key(&c.kind, c.original_kind.as_deref()),
                total => (c.tender_amount + c.stored_value_amount).fen(),
            }
        })
        .collect();
    Ok(context! {
        r => ser(&r),
        s => ser(&s),
        id => id.to_string(),
        labels => labels(web.lang, Some(&r)),
        tenders => ser(tender_rows(&r)),
        top_up_tenders => top_up_tenders(&r),
        corrections => corrections,
        adjustments => Vec::<Value>::new(),
        is_open => s.closed_at.is_none(),
        can_finance => web.can(Permission::ViewFinance),
        errors => ser(&errors),
        entered => entered,
    })
}

#[derive(Deserialize)]
pub struct HandOverForm {
    #[serde(default)]
    counted_cash: String,
    #[serde(default)]
    note: String,
}

/// Hands over: the counted cash against the expected gives the difference.
async fn close_shift(
    web: Web,
    Path(id): Path<String>,
    WebForm(f): WebForm<HandOverForm>,
) -> WebResult<Response> {
    let id = shift_id(&id)?;
    let here = format!("/settlement/shifts/{id}");
    let mut errors = FormErrors::default();
    let counted = parse_money(&mut errors, web.lang, "counted_cash", &f.counted_cash);
    if counted.is_none() && errors.is_empty() {
        errors.field(web.lang, "counted_cash", "required");
    }
    if let (Some(counted_cash), true) = (counted, errors.is_empty()) {
        let req = CloseShift {
            counted_cash,
            note: Some(f.note.clone()),
            handed_to: None,
        };
        match web.app.close_shift(&web.actor, id, &req).await {
            Ok(_) => return Ok(see_other(&here, web.htmx)),
            Err(AppError::Conflict {
                code: "shift_closed",
                ..
            }) => return Ok(see_other(&here, web.htmx)),
            Err(e) => errors = FormErrors::from_app(e)?,
        }
    }
    let ctx = shift_ctx(&web, id, errors, &f.counted_cash).await?;
    Ok(with_status(
        StatusCode::UNPROCESSABLE_ENTITY,
        web.fragment("settlement/_hand_over.html", ctx)?,
    ))
}

#[derive(Deserialize)]
pub struct PeriodQuery {
    from: Option<String>,
    to: Option<String>,
}

/// The inter-store statement of a period (this month so far by default).
async fn inter_store(web: Web, Query(q): Query<PeriodQuery>) -> WebResult<Response> {
    let settings = web.app.settings(&web.actor).await?;
    let today = settings.business_date(patron_app::now());
    let mut errors = FormErrors::default();
    let mut date = |field: &str, v: Option<&str>, default: NaiveDate| match parse_date(v) {
        Ok(d) => d.unwrap_or(default),
        Err(()) => {
            errors
                .fields
                .insert(field.to_string(), web.t("set-invalid-date"));
            default
        }
    };
    let from = date(
        "from",
        q.from.as_deref(),
        today.with_day(1).unwrap_or(today),
    );
    let to = date("to", q.to.as_deref(), today);
    let statement = if errors.is_empty() {
        match web.app.inter_store_settlement(&web.actor, from, to).await {
            Ok(s) => Some(s),
            Err(e @ AppError::Validation(_)) => {
                errors = FormErrors::from_app(e)?;
                None
            }
            Err(e) => return Err(e.into()),
        }
    } else {
        None
    };
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let html = web.page(
        "settlement/inter_store.html",
        "settlement",
        context! {
            st => ser(&statement),
            labels => labels(web.lang, None),
            from => q.from.clone().filter(|s| !s.trim().is_empty()).unwrap_or(from.to_string()),
            to => q.to.clone().filter(|s| !s.trim().is_empty()).unwrap_or(to.to_string()),
            today => today.to_string(),
            errors => ser(&errors),
            can_shifts => web.can(Permission::Shifts),
        },
    )?;
    Ok(with_status(status, html))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reversals_are_named_after_what_they_undo() {
        assert_eq!(
            code_label(Lang::En, "reversal:checkout"),
            "Reversal of Bill"
        );
        assert_eq!(code_label(Lang::Zh, "top_up"), "充值");
        assert_eq!(code_label(Lang::En, "no_such_kind"), "no_such_kind");
    }

    #[test]
    fn tender_money_is_grouped_by_what_it_paid_for() {
        use patron_app::settlement::TenderTotal;
        use patron_domain::money::Money;
        let r = Settlement {
            tenders: vec![TenderTotal {
                tender: "cash".into(),
                by_kind: BTreeMap::from([
                    ("top_up".into(), Money::from_fen(100_000)),
                    ("checkout".into(), Money::from_fen(17_600)),
                    ("reversal:checkout".into(), Money::from_fen(-5_000)),
                    ("card_close".into(), Money::from_fen(-3_000)),
                ]),
                net: Money::from_fen(109_600),
            }],
            ..Settlement::default()
        };
        let rows = tender_rows(&r);
        assert_eq!(
            (rows[0].top_ups, rows[0].bills, rows[0].other, rows[0].net),
            (100_000, 12_600, -3_000, 109_600)
        );
    }
}
