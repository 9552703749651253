//! The cards pages: find a card (by its number, or through its holder), issue one, the
//! card page with its balances and actions (top-up with the bonus shown before it is
//! confirmed, freeze, report lost and replace, close with refund, PIN), and the statement.
//!
//! Actions on the card page answer with the card's body (`cards/_card_body.html`) drawn
//! afresh with what happened at its top, so the balances, the status and the forms (with
//! new idempotency keys) always match the card after the change. A refused form is drawn
//! again with the reason beside its field (status 422).

use super::i18n::{self, Lang};
use super::render::{WebError, WebResult, see_other};
use super::{FormErrors, Web, WebForm, encode, parse_money, ser};
use axum::Router;
use axum::extract::{Path, Query};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, NaiveDate, Utc};
use minijinja::{Value, context};
use patron_app::cards::{CardView, CloseCard, IssueCard, Statement, TopUp};
use patron_app::{App, AppError};
use patron_domain::card::{CardKinds, CardMedium, CardStatus};
use patron_domain::ids::{CardId, CustomerId};
use patron_domain::ledger::Tender;
use patron_domain::money::Money;
use patron_domain::permissions::Permission;
use patron_domain::settings::TenantSettings;
use patron_domain::stored_value::{self, PolicyRefusal};
use serde::Deserialize;

/// Statement rows (transactions) per page.
const STATEMENT_PER_PAGE: usize = 50;
/// Members listed for one search on the find page.
const FIND_LIMIT: i64 = 20;

pub fn routes() -> Router<App> {
    Router::new()
        .route("/cards", get(find))
        .route("/cards/new", get(new_page).post(issue))
        .route("/cards/{id}", get(card_page))
        .route("/cards/{id}/top-up", get(top_up_form).post(top_up))
        .route("/cards/{id}/top-up/preview", get(top_up_preview))
        .route("/cards/{id}/freeze", post(freeze))
        .route("/cards/{id}/unfreeze", post(unfreeze))
        .route("/cards/{id}/replacement", post(replace))
        .route("/cards/{id}/closure", post(close))
        .route("/cards/{id}/pin", post(set_pin))
        .route("/cards/{id}/statement", get(statement))
}

/// A card id from the path; anything else is "no such card" (a 404 page).
fn card_id(raw: &str) -> WebResult<CardId> {
    raw.parse()
        .map_err(|_| AppError::NotFound { entity: "card" }.into())
}

/// A fresh idempotency key for a form being drawn: a double click or a retry of the same
/// form sends the same key, so the change happens once.
fn form_key() -> String {
    patron_app::new_uuid().to_string()
}

/// 8800123456789012 → 8800 1234 5678 9012 (read aloud and compared at a glance); a
/// lone last digit stays with the group before it.
fn grouped(number: &str) -> String {
    let mut groups: Vec<String> = number
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    if groups.len() > 1 && groups.last().is_some_and(|g| g.len() == 1) {
        let last = groups.pop().unwrap_or_default();
        if let Some(prev) = groups.last_mut() {
            prev.push_str(&last);
        }
    }
    groups.join(" ")
}

fn tender_options(lang: Lang) -> Vec<Value> {
    Tender::ALL
        .iter()
        .map(|t| context! { value => t.as_str(), label => lang.t(&format!("card-tender-{}", t.as_str())) })
        .collect()
}

fn kind_labels(lang: Lang, k: CardKinds) -> Vec<String> {
    [
        (k.stored_value, "stored_value"),
        (k.points, "points"),
        (k.member_price, "member_price"),
    ]
    .into_iter()
    .filter(|(on, _)| *on)
    .map(|(_, key)| lang.t(&format!("card-kind-{key}")))
    .collect()
}

fn with_status(html: Html<String>, status: StatusCode) -> Response {
    (status, html).into_response()
}

/// Sends a successful form's answer to another element than the form itself.
fn retarget(html: Html<String>, target: &'static str) -> Response {
    let mut res = html.into_response();
    let h = res.headers_mut();
    h.insert("hx-retarget", HeaderValue::from_static(target));
    h.insert("hx-reswap", HeaderValue::from_static("outerHTML"));
    res
}

/// A refusal as one sentence in the user's language, with the status it came with;
/// server faults stay errors.
fn refusal_text(lang: Lang, e: AppError) -> WebResult<(StatusCode, String)> {
    let err = WebError::from(e);
    if err.status.is_server_error() {
        return Err(err);
    }
    Ok((err.status, err.localized(lang)))
}

/// What a prepaid-card rule refused, with its figures.
fn policy_text(lang: Lang, r: &PolicyRefusal) -> String {
    let m = |x: Money| i18n::money(x);
    match r {
        PolicyRefusal::AnonymousCap { cap, would_hold } => lang.t_args(
            "card-refuse-anonymous-cap",
            &[("cap", m(*cap)), ("would", m(*would_hold))],
        ),
        PolicyRefusal::RegisteredCap { cap, would_hold } => lang.t_args(
            "card-refuse-registered-cap",
            &[("cap", m(*cap)), ("would", m(*would_hold))],
        ),
        PolicyRefusal::RealNameRequired { threshold } => {
            lang.t_args("card-refuse-real-name", &[("threshold", m(*threshold))])
        }
    }
}

// ---------------------------------------------------------------------------------------
// Find a card

#[derive(Deserialize, Default)]
pub struct FindQuery {
    #[serde(default)]
    q: String,
}

/// `/cards?q=`: a card number opens the card; a phone number or a name lists the
/// members found with their cards.
async fn find(web: Web, Query(f): Query<FindQuery>) -> WebResult<Response> {
    web.actor.require(Permission::ViewCards)?;
    let q = f.q.trim();
    let mut members = Vec::new();
    let mut error = None;
    if !q.is_empty() {
        let digits: String = q
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .collect();
        // Card numbers are longer than phone numbers (11 digits), which the member search
        // below finds.
        if digits.len() >= 12 && digits.bytes().all(|b| b.is_ascii_digit()) {
            match patron_domain::card_number::parse(&digits, "q") {
                Ok(n) => match web.app.card_view_by_number(&web.actor, &n).await {
                    Ok(v) => return Ok(see_other(&format!("/cards/{}", v.card.id), false)),
                    Err(AppError::NotFound { .. }) => {
                        error = Some(web.lang.t_args("card-find-no-card", &[("number", n)]));
                    }
                    Err(e) => return Err(e.into()),
                },
                Err(e) => {
                    error = Some(
                        web.lang
                            .try_t(&format!("err-{}", e.code))
                            .unwrap_or(e.message),
                    )
                }
            }
        }
        if error.is_none() {
            for c in web.app.lookup_customers(&web.actor, q, FIND_LIMIT).await? {
                let mut cards = Vec::new();
                for card in web.app.customer_cards(&web.actor, c.id).await? {
                    let v = web.app.get_card_view(&web.actor, card.id).await?;
                    cards.push(card_row(web.lang, &v));
                }
                members.push(context! {
                    id => c.id.to_string(),
                    name => c.profile.name,
                    phone => c.profile.phone.map(|p| p.as_str().to_string()),
                    cards,
                });
            }
            if members.is_empty() {
                error = Some(web.t("card-find-nothing"));
            }
        }
    }
    Ok(web
        .page(
            "cards/find.html",
            "cards",
            context! {
                q, members, error,
                can_issue => web.can(Permission::IssueCards),
            },
        )?
        .into_response())
}

fn card_row(lang: Lang, v: &CardView) -> Value {
    let status = v.card.status.as_str();
    context! {
        id => v.card.id.to_string(),
        number => grouped(&v.card.number),
        status,
        status_label => lang.t(&format!("card-status-{status}")),
        kinds => kind_labels(lang, v.card.kinds),
        total => v.balances.money().fen(),
        points => v.balances.points,
    }
}

// ---------------------------------------------------------------------------------------
// Issue a card

#[derive(Deserialize, Default)]
pub struct NewQuery {
    customer: Option<String>,
}

/// What the issue form holds (as typed).
#[derive(Deserialize, Default, serde::Serialize, Clone)]
pub struct IssueForm {
    #[serde(default)]
    customer_id: String,
    #[serde(default)]
    holder: String,
    #[serde(default)]
    kind_stored_value: Option<String>,
    #[serde(default)]
    kind_points: Option<String>,
    #[serde(default)]
    kind_member_price: Option<String>,
    #[serde(default)]
    medium: String,
    #[serde(default)]
    number: String,
    #[serde(default)]
    pin: String,
    #[serde(default)]
    fee: String,
    #[serde(default)]
    fee_tender: String,
    #[serde(default)]
    key: String,
}

async fn new_page(web: Web, Query(q): Query<NewQuery>) -> WebResult<Html<String>> {
    web.actor.require(Permission::IssueCards)?;
    let mut form = IssueForm {
        kind_stored_value: Some("on".into()),
        kind_points: Some("on".into()),
        medium: "electronic".into(),
        key: form_key(),
        ..Default::default()
    };
    let holder = match q.customer.as_deref().filter(|s| !s.is_empty()) {
        Some(raw) => {
            let id: CustomerId = raw
                .parse()
                .map_err(|_| WebError::from(AppError::NotFound { entity: "customer" }))?;
            form.customer_id = id.to_string();
            Some(holder_ctx(&web, id).await?)
        }
        None => None,
    };
    let ctx = issue_ctx(&web, &form, holder, &FormErrors::default()).await?;
    web.page("cards/new.html", "cards", ctx)
}

async fn holder_ctx(web: &Web, id: CustomerId) -> WebResult<Value> {
    let c = web.app.get_customer(&web.actor, id).await?;
    Ok(context! {
        id => c.id.to_string(),
        name => c.profile.name,
        phone => c.profile.phone.map(|p| p.as_str().to_string()),
    })
}

async fn issue_ctx(
    web: &Web,
    form: &IssueForm,
    holder: Option<Value>,
    errors: &FormErrors,
) -> WebResult<Value> {
    let settings = web.app.settings(&web.actor).await?;
    Ok(context! {
        form => ser(form),
        holder,
        errors => ser(errors),
        tenders => tender_options(web.lang),
        pin_required => settings.pin_required,
        anonymous_cap => settings.prepaid.anonymous_cap.map(|m| m.fen()),
    })
}

async fn issue(web: Web, WebForm(f): WebForm<IssueForm>) -> WebResult<Response> {
    let lang = web.lang;
    let mut errors = FormErrors::default();
    // The holder: the member the page was opened for, or one found by what was typed
    // (a phone or card number finds exactly one); nobody makes an anonymous card.
    let mut customer = None;
    if !f.customer_id.trim().is_empty() {
        customer = f.customer_id.trim().parse::<CustomerId>().ok();
        if customer.is_none() {
            errors.field(lang, "holder", "not_found");
        }
    } else if !f.holder.trim().is_empty() {
        let found = web
            .app
            .lookup_customers(&web.actor, f.holder.trim(), 2)
            .await?;
        match found.as_slice() {
            [one] => customer = Some(one.id),
            [] => {
                errors
                    .fields
                    .insert("holder".into(), lang.t("card-holder-not-found"));
            }
            _ => {
                errors
                    .fields
                    .insert("holder".into(), lang.t("card-holder-ambiguous"));
            }
        }
    }
    let medium = CardMedium::parse(&f.medium).unwrap_or(CardMedium::Electronic);
    let fee = parse_money(&mut errors, lang, "fee", &f.fee);
    let fee_tender = Tender::parse(&f.fee_tender);
    let pin = f.pin.trim();
    let number = f.number.trim();
    if errors.is_empty() {
        let req = IssueCard {
            customer_id: customer,
            medium,
            kinds: CardKinds {
                stored_value: f.kind_stored_value.is_some(),
                points: f.kind_points.is_some(),
                member_price: f.kind_member_price.is_some(),
            },
            number: (!number.is_empty()).then(|| number.to_string()),
            pin: (!pin.is_empty()).then(|| pin.to_string()),
            pool_to_org: false,
            fee,
            fee_tender: fee.and(fee_tender),
            idempotency_key: fee.map(|_| f.key.clone()),
        };
        match web.app.issue_card(&web.actor, &req).await {
            Ok(v) => {
                return Ok(see_other(
                    &format!("/cards/{}?issued=1", v.card.id),
                    web.htmx,
                ));
            }
            Err(e) => {
                errors = FormErrors::from_app(e)?;
                // The use case names the holder `customer_id`; the form calls it `holder`.
                if let Some(m) = errors.fields.remove("customer_id") {
                    errors.fields.insert("holder".into(), m);
                }
            }
        }
    }
    let holder = match customer.filter(|_| !f.customer_id.trim().is_empty()) {
        Some(id) => Some(holder_ctx(&web, id).await?),
        None => None,
    };
    let mut form = f.clone();
    form.pin.clear();
    let ctx = issue_ctx(&web, &form, holder, &errors).await?;
    Ok(with_status(
        web.fragment("cards/_issue_form.html", ctx)?,
        StatusCode::UNPROCESSABLE_ENTITY,
    ))
}

// ---------------------------------------------------------------------------------------
// The card page

#[derive(Deserialize, Default)]
pub struct CardQuery {
    issued: Option<String>,
    replaced_from: Option<String>,
}

/// What the card body shows above the card after an action.
#[derive(Default)]
struct Outcome {
    notice: Option<String>,
    error: Option<String>,
    /// The receipt of a top-up just made.
    top_up: Option<Value>,
}

async fn card_page(
    web: Web,
    Path(id): Path<String>,
    Query(q): Query<CardQuery>,
) -> WebResult<Html<String>> {
    let id = card_id(&id)?;
    let mut out = Outcome::default();
    if q.issued.is_some() {
        out.notice = Some(web.t("card-issued-notice"));
    }
    if let Some(old) = q.replaced_from.and_then(|s| s.parse::<CardId>().ok()) {
        let old = web.app.get_card_view(&web.actor, old).await?;
        if old.card.replaced_by == Some(id) {
            out.notice = Some(web.lang.t_args(
                "card-replaced-notice",
                &[("number", grouped(&old.card.number))],
            ));
        }
    }
    let ctx = body_ctx(&web, id, out).await?;
    web.page("cards/card.html", "cards", ctx)
}

/// Everything the card body needs, read afresh.
async fn body_ctx(web: &Web, id: CardId, out: Outcome) -> WebResult<Value> {
    let lang = web.lang;
    let view = web.app.get_card_view(&web.actor, id).await?;
    let settings = web.app.settings(&web.actor).await?;
    let card = &view.card;
    let holder = match card.customer_id {
        Some(c) if web.can(Permission::ViewCustomers) => {
            let cust = web.app.get_customer(&web.actor, c).await?;
            let level = cust
                .level
                .as_deref()
                .and_then(|l| settings.levels.level(l))
                .map(|d| match lang {
                    Lang::Zh => d.name.clone(),
                    Lang::En => d.name_en.clone(),
                });
            Some(context! {
                id => c.to_string(),
                name => cust.profile.name,
                phone => cust.profile.phone.map(|p| p.as_str().to_string()),
                level,
            })
        }
        Some(c) => Some(context! { id => c.to_string() }),
        None => None,
    };
    let replaced_by = match card.replaced_by {
        Some(n) => {
            let v = web.app.get_card_view(&web.actor, n).await?;
            Some(context! {
                id => n.to_string(),
                number => grouped(&v.card.number),
                raw_number => v.card.number,
            })
        }
        None => None,
    };
    let status = card.status.as_str();
    let active = card.status == CardStatus::Active;
    let open = matches!(card.status, CardStatus::Active | CardStatus::Frozen);
    let cap = if card.customer_id.is_some() {
        settings.prepaid.registered_cap
    } else {
        settings.prepaid.anonymous_cap
    };
    // Why top-ups cannot be taken here, if they cannot.
    let top_up_blocked = if !card.kinds.stored_value {
        Some(web.t("card-topup-no-stored-value"))
    } else if !active {
        Some(web.t(&format!("card-topup-blocked-{status}")))
    } else if web.actor.store_id.is_none() {
        Some(web.t("card-topup-needs-store"))
    } else {
        None
    };
    let top_up = top_up_ctx(web, &settings, &view, "", "cash", &FormErrors::default());
    Ok(context! {
        id => card.id.to_string(),
        number => grouped(&card.number),
        raw_number => &card.number,
        status,
        status_label => web.t(&format!("card-status-{status}")),
        kinds => kind_labels(lang, card.kinds),
        medium_label => web.t(&format!("card-medium-{}", card.medium.as_str())),
        issued_at => card.issued_at.to_rfc3339(),
        has_pin => card.pin_hash.is_some(),
        pin_locked => card.pin_locked_until.is_some_and(|t| t > patron_app::now()),
        pooled => view.pooled,
        holder,
        replaced_by,
        balances => ser(&view.balances),
        total => view.balances.money().fen(),
        cap => cap.map(|m| m.fen()),
        stored_value => card.kinds.stored_value,
        can => context! {
            top_up => web.can(Permission::TopUp) && top_up_blocked.is_none(),
            manage => web.can(Permission::ManageCards),
            issue => web.can(Permission::IssueCards),
        },
        top_up_blocked => top_up_blocked.filter(|_| web.can(Permission::TopUp)),
        active, open,
        frozen => card.status == CardStatus::Frozen,
        top_up,
        close => close_ctx(web, &view, "cash", "", &FormErrors::default()),
        replace_key => form_key(),
        notice => out.notice,
        error => out.error,
        result => out.top_up,
    })
}

// ---------------------------------------------------------------------------------------
// Top-up

#[derive(Deserialize, Default)]
pub struct TopUpForm {
    #[serde(default)]
    amount: String,
    #[serde(default)]
    tender: String,
    #[serde(default)]
    key: String,
}

/// The top-up form (fresh key unless one is carried over from a refused attempt).
fn top_up_ctx(
    web: &Web,
    settings: &TenantSettings,
    view: &CardView,
    amount: &str,
    tender: &str,
    errors: &FormErrors,
) -> Value {
    let tiers: Vec<Value> = settings
        .top_up
        .tiers
        .iter()
        .map(|t| {
            context! {
                amount => t.min_amount.fen(),
                yuan => t.min_amount.to_decimal_string(),
                bonus => t.bonus.fen(),
            }
        })
        .collect();
    context! {
        id => view.card.id.to_string(),
        amount, tender,
        key => form_key(),
        errors => ser(errors),
        tenders => tender_options(web.lang),
        tiers,
        preview => preview_ctx(web.lang, settings, view, amount),
    }
}

/// What a top-up of the typed amount would do: the bonus it earns, the balances after,
/// the next tier, and the prepaid-card rule it would break, if any.
fn preview_ctx(lang: Lang, settings: &TenantSettings, view: &CardView, input: &str) -> Value {
    let mut errs = FormErrors::default();
    let Some(amount) = parse_money(&mut errs, lang, "amount", input) else {
        return match errs.fields.remove("amount") {
            Some(invalid) => context! { invalid },
            None => context! { empty => true },
        };
    };
    if amount.fen() <= 0 {
        return context! { invalid => lang.t("err-not_positive") };
    }
    let bonus = settings.top_up.bonus_for(amount);
    let b = &view.balances;
    let refusal = stored_value::check_top_up(
        &settings.prepaid,
        view.card.customer_id.is_some(),
        b.money(),
        amount,
        bonus,
    )
    .err()
    .map(|r| policy_text(lang, &r));
    // The next tier up, when it is a better deal than this amount: "top up ¥X more and
    // get ¥Y" is what the cashier is asked.
    let next = if settings.top_up.exact_amounts_only {
        None
    } else {
        settings
            .top_up
            .tiers
            .iter()
            .find(|t| t.min_amount > amount && t.bonus > bonus)
            .map(|t| {
                context! {
                    more => (t.min_amount - amount).fen(),
                    amount => t.min_amount.fen(),
                    bonus => t.bonus.fen(),
                }
            })
    };
    context! {
        amount => amount.fen(),
        bonus => bonus.fen(),
        credited => (amount + bonus).fen(),
        principal_after => (b.principal + amount).fen(),
        bonus_after => (b.bonus + bonus).fen(),
        total_after => (b.money() + amount + bonus).fen(),
        refusal,
        next,
    }
}

#[derive(Deserialize, Default)]
pub struct PreviewQuery {
    #[serde(default)]
    amount: String,
}

/// `GET /cards/{id}/top-up/preview?amount=1000`: the bonus line under the amount, as it
/// is typed.
async fn top_up_preview(
    web: Web,
    Path(id): Path<String>,
    Query(q): Query<PreviewQuery>,
) -> WebResult<Html<String>> {
    let id = card_id(&id)?;
    let view = web.app.get_card_view(&web.actor, id).await?;
    let settings = web.app.settings(&web.actor).await?;
    web.fragment(
        "cards/_top_up_preview.html",
        context! { preview => preview_ctx(web.lang, &settings, &view, &q.amount) },
    )
}

/// `GET /cards/{id}/top-up`: a fresh top-up form (after one was made, for the next).
async fn top_up_form(web: Web, Path(id): Path<String>) -> WebResult<Html<String>> {
    let id = card_id(&id)?;
    let view = web.app.get_card_view(&web.actor, id).await?;
    let settings = web.app.settings(&web.actor).await?;
    let ctx = top_up_ctx(&web, &settings, &view, "", "cash", &FormErrors::default());
    web.fragment("cards/_top_up_form.html", context! { top_up => ctx })
}

async fn top_up(
    web: Web,
    Path(id): Path<String>,
    WebForm(f): WebForm<TopUpForm>,
) -> WebResult<Response> {
    let id = card_id(&id)?;
    let lang = web.lang;
    let mut errors = FormErrors::default();
    let amount = parse_money(&mut errors, lang, "amount", &f.amount);
    if amount.is_none() && !errors.fields.contains_key("amount") {
        errors.field(lang, "amount", "required");
    }
    let tender = Tender::parse(&f.tender);
    if tender.is_none() {
        errors.field(lang, "tender", "required");
    }
    if let (Some(amount), Some(tender), true) = (amount, tender, errors.is_empty()) {
        let req = TopUp {
            amount,
            tender,
            idempotency_key: f.key.clone(),
        };
        match web.app.top_up(&web.actor, id, &req).await {
            Ok(r) => {
                let fen = |k: &str| r.details.get(k).and_then(|v| v.as_i64()).unwrap_or(0);
                let result = context! {
                    amount => fen("amount"),
                    bonus => fen("bonus"),
                    tender => lang.t(&format!("card-tender-{}", tender.as_str())),
                    before => ser(&r.before),
                    after => ser(&r.after),
                    replayed => r.replayed,
                    at => r.created_at.to_rfc3339(),
                };
                let ctx = body_ctx(
                    &web,
                    id,
                    Outcome {
                        top_up: Some(result),
                        ..Default::default()
                    },
                )
                .await?;
                return Ok(retarget(
                    web.fragment("cards/_card_body.html", ctx)?,
                    "#card-body",
                ));
            }
            Err(e) => errors = FormErrors::from_app(e)?,
        }
    }
    let view = web.app.get_card_view(&web.actor, id).await?;
    let settings = web.app.settings(&web.actor).await?;
    // A prepaid-card refusal names its figures, next to the amount.
    if let Some(amount) = amount {
        let bonus = settings.top_up.bonus_for(amount);
        if let Err(r) = stored_value::check_top_up(
            &settings.prepaid,
            view.card.customer_id.is_some(),
            view.balances.money(),
            amount,
            bonus,
        ) && errors.fields.contains_key("amount")
        {
            errors.fields.insert("amount".into(), policy_text(lang, &r));
        }
    }
    let mut ctx = top_up_ctx(&web, &settings, &view, &f.amount, &f.tender, &errors);
    // The same attempt keeps its key: if it did go through after all, sending it again
    // answers with that top-up instead of making another.
    ctx = super::merge(ctx, context! { key => f.key });
    Ok(with_status(
        web.fragment("cards/_top_up_form.html", context! { top_up => ctx })?,
        StatusCode::UNPROCESSABLE_ENTITY,
    ))
}

// ---------------------------------------------------------------------------------------
// Freeze, replace, close, PIN

/// Draws the card body after a status action, with its outcome.
async fn body_after(web: &Web, id: CardId, res: Result<String, AppError>) -> WebResult<Response> {
    let (status, out) = match res {
        Ok(notice) => (
            StatusCode::OK,
            Outcome {
                notice: Some(notice),
                ..Default::default()
            },
        ),
        Err(e) => {
            let (status, text) = refusal_text(web.lang, e)?;
            (
                status,
                Outcome {
                    error: Some(text),
                    ..Default::default()
                },
            )
        }
    };
    let ctx = body_ctx(web, id, out).await?;
    Ok(with_status(
        web.fragment("cards/_card_body.html", ctx)?,
        status,
    ))
}

async fn freeze(web: Web, Path(id): Path<String>) -> WebResult<Response> {
    let id = card_id(&id)?;
    let res = web.app.set_frozen(&web.actor, id, true).await;
    body_after(&web, id, res.map(|_| web.t("card-frozen-notice"))).await
}

async fn unfreeze(web: Web, Path(id): Path<String>) -> WebResult<Response> {
    let id = card_id(&id)?;
    let res = web.app.set_frozen(&web.actor, id, false).await;
    body_after(&web, id, res.map(|_| web.t("card-unfrozen-notice"))).await
}

#[derive(Deserialize, Default)]
pub struct KeyForm {
    #[serde(default)]
    key: String,
}

/// Reports the card lost and opens its replacement, which holds the balances now.
async fn replace(
    web: Web,
    Path(id): Path<String>,
    WebForm(f): WebForm<KeyForm>,
) -> WebResult<Response> {
    let id = card_id(&id)?;
    match web.app.replace_lost(&web.actor, id, &f.key).await {
        Ok((new, _)) => Ok(see_other(
            &format!("/cards/{}?replaced_from={id}", new.card.id),
            web.htmx,
        )),
        Err(e) => body_after(&web, id, Err(e)).await,
    }
}

#[derive(Deserialize, Default)]
pub struct CloseForm {
    #[serde(default)]
    tender: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    key: String,
}

fn close_ctx(web: &Web, view: &CardView, tender: &str, reason: &str, errors: &FormErrors) -> Value {
    context! {
        id => view.card.id.to_string(),
        refund => view.balances.principal.fen(),
        forfeit_bonus => view.balances.bonus.fen(),
        forfeit_points => view.balances.points,
        pooled => view.pooled,
        tender, reason,
        key => form_key(),
        errors => ser(errors),
        tenders => tender_options(web.lang),
    }
}

/// Closes the card, paying back its unused principal (the amount was shown on the form).
async fn close(
    web: Web,
    Path(id): Path<String>,
    WebForm(f): WebForm<CloseForm>,
) -> WebResult<Response> {
    let id = card_id(&id)?;
    let lang = web.lang;
    let mut errors = FormErrors::default();
    let tender = Tender::parse(&f.tender);
    if tender.is_none() {
        errors.field(lang, "tender", "required");
    }
    if f.reason.trim().is_empty() {
        errors.field(lang, "reason", "required");
    }
    if let (Some(tender), true) = (tender, errors.is_empty()) {
        let req = CloseCard {
            refund_tender: tender,
            reason: f.reason.clone(),
            idempotency_key: f.key.clone(),
        };
        match web.app.close_card(&web.actor, id, &req).await {
            Ok(r) => {
                let v = |k: &str| r.details.get(k).and_then(|v| v.as_i64()).unwrap_or(0);
                let forfeited = v("forfeited_bonus") > 0 || v("forfeited_points") > 0;
                let notice = lang.t_args(
                    if forfeited {
                        "card-closed-notice"
                    } else {
                        "card-closed-notice-plain"
                    },
                    &[
                        (
                            "refund",
                            i18n::money(Money::from_fen(v("refunded_principal"))),
                        ),
                        (
                            "tender",
                            lang.t(&format!("card-tender-{}", tender.as_str())),
                        ),
                        ("bonus", i18n::money(Money::from_fen(v("forfeited_bonus")))),
                        ("points", i18n::group(v("forfeited_points").max(0) as u64)),
                    ],
                );
                let ctx = body_ctx(
                    &web,
                    id,
                    Outcome {
                        notice: Some(notice),
                        ..Default::default()
                    },
                )
                .await?;
                return Ok(retarget(
                    web.fragment("cards/_card_body.html", ctx)?,
                    "#card-body",
                ));
            }
            Err(e) => errors = FormErrors::from_app(e)?,
        }
    }
    let view = web.app.get_card_view(&web.actor, id).await?;
    let mut ctx = close_ctx(&web, &view, &f.tender, &f.reason, &errors);
    ctx = super::merge(ctx, context! { key => f.key });
    Ok(with_status(
        web.fragment("cards/_close_form.html", context! { close => ctx })?,
        StatusCode::UNPROCESSABLE_ENTITY,
    ))
}

#[derive(Deserialize, Default)]
pub struct PinForm {
    #[serde(default)]
    pin: String,
    #[serde(default)]
    pin2: String,
}

async fn set_pin(
    web: Web,
    Path(id): Path<String>,
    WebForm(f): WebForm<PinForm>,
) -> WebResult<Response> {
    let id = card_id(&id)?;
    let lang = web.lang;
    let mut errors = FormErrors::default();
    if f.pin.trim().is_empty() {
        errors.field(lang, "pin", "required");
    } else if f.pin.trim() != f.pin2.trim() {
        errors
            .fields
            .insert("pin2".into(), lang.t("card-pin-mismatch"));
    }
    if errors.is_empty() {
        match web.app.set_pin(&web.actor, id, f.pin.trim()).await {
            Ok(()) => {
                let ctx = body_ctx(
                    &web,
                    id,
                    Outcome {
                        notice: Some(web.t("card-pin-notice")),
                        ..Default::default()
                    },
                )
                .await?;
                return Ok(retarget(
                    web.fragment("cards/_card_body.html", ctx)?,
                    "#card-body",
                ));
            }
            Err(e) => errors = FormErrors::from_app(e)?,
        }
    }
    Ok(with_status(
        web.fragment(
            "cards/_pin_form.html",
            context! { id => id.to_string(), errors => ser(&errors) },
        )?,
        StatusCode::UNPROCESSABLE_ENTITY,
    ))
}

// ---------------------------------------------------------------------------------------
// Statement

#[derive(Deserialize, Default)]
pub struct StatementQuery {
    page: Option<usize>,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    /// Every row on one page (for printing).
    all: Option<String>,
}

/// `/cards/{id}/statement`: one row per transaction, newest first, with what it changed
/// in each balance and the balances after it.
async fn statement(
    web: Web,
    Path(id): Path<String>,
    Query(q): Query<StatementQuery>,
) -> WebResult<Html<String>> {
    let id = card_id(&id)?;
    let settings = web.app.settings(&web.actor).await?;
    let mut errors = FormErrors::default();
    let date = |errors: &mut FormErrors, field: &str, s: &str| -> Option<NaiveDate> {
        let s = s.trim();
        if s.is_empty() {
            return None;
        }
        let d = s.parse::<NaiveDate>().ok();
        if d.is_none() {
            errors
                .fields
                .insert(field.into(), web.t("card-stmt-bad-date"));
        }
        d
    };
    let from_d = date(&mut errors, "from", &q.from);
    let to_d = date(&mut errors, "to", &q.to);
    // Local days: from the start of `from` to the end of `to`.
    let local_start = |d: NaiveDate| -> DateTime<Utc> {
        (d.and_hms_opt(0, 0, 0).expect("midnight")
            - chrono::Duration::minutes(i64::from(settings.utc_offset_minutes)))
        .and_utc()
    };
    let from = from_d.map(local_start);
    let to = to_d.map(|d| local_start(d + chrono::Duration::days(1)));
    let st = web.app.statement(&web.actor, id, from, to).await?;
    let mut rows = statement_rows(web.lang, &st, to.is_none());
    let count = rows.len();
    rows.reverse();
    let all = q.all.is_some();
    let page = q.page.unwrap_or(1).max(1);
    let shown: Vec<Value> = if all {
        rows
    } else {
        rows.into_iter()
            .skip((page - 1) * STATEMENT_PER_PAGE)
            .take(STATEMENT_PER_PAGE)
            .collect()
    };
    let has_more = !all && page * STATEMENT_PER_PAGE < count;
    // The same period for the CSV download (the API's statement, in UTC instants).
    let mut csv = format!("/api/v1/cards/{id}/statement?format=csv");
    if let Some(f) = from {
        csv.push_str(&format!("&from={}", encode(&f.to_rfc3339())));
    }
    if let Some(t) = to {
        csv.push_str(&format!("&to={}", encode(&t.to_rfc3339())));
    }
    let filter = format!("from={}&to={}", encode(q.from.trim()), encode(q.to.trim()));
    let c = &st.card.card;
    let holder = match c.customer_id {
        Some(h) if web.can(Permission::ViewCustomers) => Some(holder_ctx(&web, h).await?),
        _ => None,
    };
    web.page(
        "cards/statement.html",
        "cards",
        context! {
            id => c.id.to_string(),
            number => grouped(&c.number),
            status => c.status.as_str(),
            status_label => web.t(&format!("card-status-{}", c.status.as_str())),
            holder,
            anonymous => c.customer_id.is_none(),
            balances => ser(&st.card.balances),
            total => st.card.balances.money().fen(),
            rows => shown,
            count,
            page, has_more, all,
            from => q.from.trim(),
            to => q.to.trim(),
            errors => ser(&errors),
            csv,
            pager_base => format!("/cards/{id}/statement?{filter}&"),
            all_href => format!("/cards/{id}/statement?{filter}&all=1"),
            printed_at => patron_app::now().to_rfc3339(),
        },
    )
}

/// Groups a statement's entries by transaction (oldest first), carrying each balance
/// forward: a transaction that did not touch the bonus still shows the bonus it left.
fn statement_rows(lang: Lang, st: &Statement, to_now: bool) -> Vec<Value> {
    const ACCOUNTS: [&str; 3] = ["principal", "bonus", "points"];
    // Each balance before the first row: the first entry's balance less its amount; an
    // account without entries in the period kept one balance throughout, known when the
    // period runs to now.
    let now = [
        st.card.balances.principal.fen(),
        st.card.balances.bonus.fen(),
        st.card.balances.points,
    ];
    let mut running: [Option<i64>; 3] = [None; 3];
    for (i, name) in ACCOUNTS.iter().enumerate() {
        running[i] = match st.lines.iter().find(|l| l.balance == *name) {
            Some(l) => Some(l.balance_after - l.amount),
            None => to_now.then_some(now[i]),
        };
    }
    let mut rows = Vec::new();
    let mut i = 0;
    while i < st.lines.len() {
        let txn = st.lines[i].txn_id;
        let mut delta: [Option<i64>; 3] = [None; 3];
        let mut memos: Vec<&str> = Vec::new();
        let first = &st.lines[i];
        while i < st.lines.len() && st.lines[i].txn_id == txn {
            let l = &st.lines[i];
            if let Some(k) = ACCOUNTS.iter().position(|a| *a == l.balance) {
                delta[k] = Some(delta[k].unwrap_or(0) + l.amount);
                running[k] = Some(l.balance_after);
            }
            if !l.memo.is_empty() && !memos.contains(&l.memo.as_str()) {
                memos.push(&l.memo);
            }
            i += 1;
        }
        let kind = &first.kind;
        rows.push(context! {
            at => first.at.to_rfc3339(),
            txn => txn.to_string(),
            kind,
            label => lang.try_t(&format!("card-txn-{kind}")).unwrap_or_else(|| kind.clone()),
            memo => memos.join(" · "),
            principal => delta[0], principal_after => running[0],
            bonus => delta[1], bonus_after => running[1],
            points => delta[2], points_after => running[2],
        });
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use patron_app::cards::{Balances, StatementLine};
    use patron_domain::card::Card;
    use patron_domain::ids::TenantId;

    #[test]
    fn card_numbers_read_in_fours() {
        assert_eq!(grouped("8860000010000786"), "8860 0000 1000 0786");
        // A lone last digit joins the group before it.
        assert_eq!(grouped("88389177614702761"), "8838 9177 6147 02761");
        assert_eq!(grouped("886000001000078"), "8860 0000 1000 078");
        assert_eq!(grouped("12"), "12");
    }

    fn line(txn: u128, balance: &str, amount: i64, after: i64, kind: &str) -> StatementLine {
        StatementLine {
            at: "2026-11-24T02:00:00Z".parse().unwrap(),
            txn_id: uuid::Uuid::from_u128(txn),
            kind: kind.into(),
            balance: balance.into(),
            amount,
            balance_after: after,
            memo: format!("{kind} memo"),
            seq: 0,
        }
    }

    fn statement(lines: Vec<StatementLine>, now: Balances) -> Statement {
        let card = Card::new(
            TenantId(uuid::Uuid::from_u128(1)),
            CardId(uuid::Uuid::from_u128(2)),
            "8860000010000786".into(),
            None,
            CardMedium::Physical,
            CardStatus::Active,
            "2026-01-01T00:00:00Z".parse().unwrap(),
        );
        Statement {
            card: CardView {
                card,
                balances: now,
                pooled: false,
            },
            lines,
        }
    }

    fn get(row: &Value, key: &str) -> Option<i64> {
        let v = row.get_attr(key).unwrap();
        if v.is_none() || v.is_undefined() {
            None
        } else {
            Some(i64::try_from(v).unwrap())
        }
    }

    #[test]
    fn statement_rows_are_transactions_with_balances_carried_forward() {
        let st = statement(
            vec![
                line(10, "principal", 100_000, 120_000, "top_up"),
                line(10, "bonus", 15_000, 15_000, "top_up"),
                line(11, "principal", -1_000, 119_000, "checkout"),
                line(11, "bonus", -150, 14_850, "checkout"),
                line(11, "points", 10, 10, "checkout"),
                line(11, "points", 2, 12, "checkout"),
                line(12, "points", -12, 0, "points_expiry"),
            ],
            Balances {
                principal: Money::from_fen(119_000),
                bonus: Money::from_fen(14_850),
                points: 0,
            },
        );
        let rows = statement_rows(Lang::En, &st, true);
        assert_eq!(rows.len(), 3);
        // The top-up: principal was ¥200 before the period's first entry.
        assert_eq!(get(&rows[0], "principal"), Some(100_000));
        assert_eq!(get(&rows[0], "principal_after"), Some(120_000));
        assert_eq!(get(&rows[0], "points"), None);
        assert_eq!(get(&rows[0], "points_after"), Some(0));
        // One row per transaction: the two points entries add up.
        assert_eq!(get(&rows[1], "points"), Some(12));
        assert_eq!(get(&rows[1], "points_after"), Some(12));
        assert_eq!(get(&rows[1], "bonus_after"), Some(14_850));
        // A points-only transaction still shows the money it left.
        assert_eq!(get(&rows[2], "principal"), None);
        assert_eq!(get(&rows[2], "principal_after"), Some(119_000));
        assert_eq!(get(&rows[2], "bonus_after"), Some(14_850));
        assert_eq!(get(&rows[2], "points_after"), Some(0));
        assert_eq!(
            rows[2].get_attr("label").unwrap().as_str(),
            Some("Points expired")
        );
    }

    #[test]
    fn a_balance_untouched_in_a_past_period_is_unknown_not_guessed() {
        let st = statement(
            vec![line(10, "principal", 5_000, 5_000, "top_up")],
            Balances {
                principal: Money::from_fen(9_000),
                bonus: Money::from_fen(700),
                points: 40,
            },
        );
        let rows = statement_rows(Lang::Zh, &st, false);
        assert_eq!(get(&rows[0], "principal_after"), Some(5_000));
        assert_eq!(get(&rows[0], "bonus_after"), None);
        // Up to now, an untouched balance is today's.
        let rows = statement_rows(Lang::Zh, &st, true);
        assert_eq!(get(&rows[0], "bonus_after"), Some(700));
        assert_eq!(get(&rows[0], "points_after"), Some(40));
    }
}
