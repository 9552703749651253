//! The till (issue 6): find the customer by card number or phone (or serve a walk-in
//! guest), build the bill from the menu, watch the price take shape step by step, take
//! the payment (the card's stored value with its PIN, cash, wallets, bank card, or a
//! split), show and print the receipt, and reverse a bill with a manager's approval.
//!
//! The bill lives in the page: the hidden inputs of `#bill-form`. Every tap posts the
//! form with an `op` (add a dish, one more, use a coupon...) and the server answers with
//! the whole bill panel priced again by `App::quote_checkout`, so what the cashier sees
//! is always what the checkout will take. Each bill carries an idempotency key made when
//! the bill is started: a double tap on Confirm or a retry after a lost answer takes the
//! money once and shows the same receipt.

use super::i18n::Lang;
use super::render::{WebError, WebResult, see_other};
use super::{FormErrors, Web, WebForm, merge, parse_money, ser};
use axum::Router;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use minijinja::{Value, context};
use patron_app::checkout::{
    Approval, BillLineInput, CheckoutQuote, CheckoutRequest, CustomerRef, ReverseCheckout,
    TenderInput,
};
use patron_app::receipts::{self, Paper};
use patron_app::{App, AppError};
use patron_domain::card::{Card, CardStatus};
use patron_domain::coupon::CouponStatus;
use patron_domain::ids::{CardId, CustomerId, MenuItemId};
use patron_domain::money::Money;
use patron_domain::page::PageRequest;
use patron_domain::permissions::Permission;
use patron_domain::pricing::DiscountKind;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

pub fn routes() -> Router<App> {
    Router::new()
        .route("/till", get(page))
        .route("/till/bill", post(bill))
        .route("/till/checkout", post(confirm))
        .route("/till/bills", get(bills))
        .route("/till/receipts/{id}", get(receipt))
        .route("/till/receipts/{id}/paper", get(paper))
        .route("/till/receipts/{id}/print", post(print))
        .route("/till/receipts/{id}/reversal", post(reverse))
}

/// The ways a bill is paid at this till, in the order of the buttons.
const METHODS: [&str; 5] = ["stored_value", "cash", "wechat", "alipay", "bank_card"];

/// Bills per page in today's list.
const BILLS_PER_PAGE: u32 = 25;

/// The bill form as posted: the hidden state, the fields people type, and what to do.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct BillForm {
    key: String,
    customer_id: String,
    card_id: String,
    /// `item_id*quantity` pairs, comma-separated, in the bill's order.
    lines: String,
    /// Coupon codes, comma-separated.
    coupons: String,
    /// Points to pay with (typed).
    points: String,
    /// Tenders with a fixed amount: `method:fen` pairs, comma-separated.
    paid: String,
    /// The tender that pays the rest.
    method: String,
    /// Yuan to put on the chosen method when splitting (typed).
    split_amount: String,
    /// Card number, phone or name to find the customer (typed).
    q: String,
    /// The card's PIN (typed by the customer; only sent with Confirm).
    pin: String,
    /// What the tap does: `add:<item>`, `inc:<i>`, `dec:<i>`, `coupon:<code>`, ...
    op: String,
}

/// The bill's state, parsed.
#[derive(Debug, Clone, Default, PartialEq)]
struct Bill {
    key: String,
    customer: Option<CustomerId>,
    card: Option<CardId>,
    lines: Vec<(MenuItemId, u32)>,
    coupons: Vec<String>,
    points: Option<i64>,
    paid: Vec<(String, Money)>,
    method: Option<String>,
}

/// Hidden state that does not parse was not made by this page.
fn tampered(what: &str) -> WebError {
    WebError {
        status: StatusCode::BAD_REQUEST,
        code: "invalid_form".into(),
        message: format!("the bill's {what} could not be read"),
        redirect: None,
    }
}

fn new_key() -> String {
    patron_app::new_uuid().to_string()
}

fn some(s: &str) -> Option<&str> {
    Some(s.trim()).filter(|s| !s.is_empty())
}

impl Bill {
    fn new() -> Bill {
        Bill {
            key: new_key(),
            ..Bill::default()
        }
    }

    /// Reads the form; a badly typed points figure becomes a field error.
    fn parse(f: &BillForm, lang: Lang, errors: &mut FormErrors) -> WebResult<Bill> {
        let id = |s: &str, what: &str| -> WebResult<Option<uuid::Uuid>> {
            some(s)
                .map(|v| v.parse::<uuid::Uuid>().map_err(|_| tampered(what)))
                .transpose()
        };
        let mut lines = Vec::new();
        for part in f.lines.split(',').filter_map(some) {
            let (item, qty) = part.split_once('*').ok_or_else(|| tampered("lines"))?;
            let item = item.parse().map_err(|_| tampered("lines"))?;
            let qty: u32 = qty.parse().map_err(|_| tampered("lines"))?;
            lines.push((item, qty.clamp(1, 999)));
        }
        let mut paid = Vec::new();
        for part in f.paid.split(',').filter_map(some) {
            let (m, fen) = part.split_once(':').ok_or_else(|| tampered("payments"))?;
            let fen: i64 = fen.parse().map_err(|_| tampered("payments"))?;
            if !METHODS.contains(&m) || fen <= 0 {
                return Err(tampered("payments"));
            }
            paid.push((m.to_string(), Money::from_fen(fen)));
        }
        let method = match some(&f.method) {
            Some(m) if METHODS.contains(&m) => Some(m.to_string()),
            Some(_) => return Err(tampered("payment method")),
            None => None,
        };
        let points = match some(&f.points) {
            None => None,
            Some(p) => match p.parse::<i64>() {
                Ok(0) => None,
                Ok(n) if n > 0 => Some(n),
                _ => {
                    errors
                        .fields
                        .insert("points".into(), lang.t("till-points-invalid"));
                    None
                }
            },
        };
        Ok(Bill {
            key: some(&f.key).map_or_else(new_key, str::to_string),
            customer: id(&f.customer_id, "customer")?.map(CustomerId),
            card: id(&f.card_id, "card")?.map(CardId),
            lines,
            coupons: f
                .coupons
                .split(',')
                .filter_map(some)
                .map(str::to_string)
                .collect(),
            points,
            paid,
            method,
        })
    }

    /// The hidden inputs that carry this state to the next tap.
    fn hidden(&self) -> Value {
        context! {
            key => &self.key,
            customer_id => self.customer.map(|c| c.to_string()).unwrap_or_default(),
            card_id => self.card.map(|c| c.to_string()).unwrap_or_default(),
            lines => self.lines.iter().map(|(i, q)| format!("{i}*{q}")).collect::<Vec<_>>().join(","),
            coupons => self.coupons.join(","),
            points => self.points.map(|p| p.to_string()).unwrap_or_default(),
            paid => self.paid.iter().map(|(m, a)| format!("{m}:{}", a.fen())).collect::<Vec<_>>().join(","),
            method => self.method.clone().unwrap_or_default(),
        }
    }

    fn fixed(&self) -> Money {
        self.paid.iter().map(|(_, a)| *a).sum()
    }

    fn uses_stored_value(&self) -> bool {
        self.method.as_deref() == Some("stored_value")
            || self.paid.iter().any(|(m, _)| m == "stored_value")
    }

    /// Another customer (or none): what belonged to the previous one goes.
    fn set_customer(&mut self, customer: Option<CustomerId>, card: Option<CardId>) {
        self.customer = customer;
        self.card = card;
        self.coupons.clear();
        self.points = None;
        self.drop_stored_value();
    }

    fn drop_stored_value(&mut self) {
        self.paid.retain(|(m, _)| m != "stored_value");
        if self.method.as_deref() == Some("stored_value") {
            self.method = None;
        }
    }

    /// The checkout request this bill makes (the quote ignores the key and the PIN).
    fn request(&self, pin: Option<String>) -> CheckoutRequest {
        let mut tenders: Vec<TenderInput> = self
            .paid
            .iter()
            .map(|(m, a)| TenderInput {
                method: m.clone(),
                amount: Some(*a),
            })
            .collect();
        if let Some(m) = &self.method {
            tenders.push(TenderInput {
                method: m.clone(),
                amount: None,
            });
        }
        CheckoutRequest {
            lines: self
                .lines
                .iter()
                .map(|(id, q)| BillLineInput {
                    item_id: Some(*id),
                    name: None,
                    quantity: *q,
                    unit_price: None,
                })
                .collect(),
            customer: self.customer.map(|id| CustomerRef {
                customer_id: Some(id),
                ..CustomerRef::default()
            }),
            card_id: self.card,
            coupons: self.coupons.clone(),
            points: self.points,
            tenders,
            pin,
            pin_token: None,
            party_size: None,
            table: None,
            idempotency_key: self.key.clone(),
        }
    }
}

/// The customer's card to use when none was swiped: an active stored-value card first.
fn default_card(cards: &[Card]) -> Option<CardId> {
    let active = || cards.iter().filter(|c| c.status == CardStatus::Active);
    active()
        .find(|c| c.kinds.stored_value)
        .or_else(|| active().next())
        .map(|c| c.id)
}

/// "**** 0042": enough to tell a customer's cards apart.
fn masked_number(n: &str) -> String {
    format!("**** {}", &n[n.len().saturating_sub(4)..])
}

/// Errors of an attempt, with each shown where the cashier can act on it: the search box,
/// the coupons, the points, the payments, the PIN, the approval; the rest above the bill.
fn place_errors(e: AppError) -> WebResult<FormErrors> {
    let raw = FormErrors::from_app(e)?;
    let mut out = FormErrors {
        general: raw.general,
        ..FormErrors::default()
    };
    for (field, msg) in raw.fields {
        let to = match field.as_str() {
            "customer.phone" | "number" | "card_id" => Some("q"),
            f => [
                "coupons", "points", "tenders", "pin", "approval", "reason", "q",
            ]
            .into_iter()
            .find(|p| f.starts_with(p)),
        };
        match to {
            Some(k) => {
                out.fields.entry(k.to_string()).or_insert(msg);
            }
            None => {
                out.general = Some(match out.general.take() {
                    Some(g) => format!("{g}; {msg}"),
                    None => msg,
                })
            }
        }
    }
    Ok(out)
}

fn merge_errors(into: &mut FormErrors, from: FormErrors) {
    for (k, v) in from.fields {
        into.fields.entry(k).or_insert(v);
    }
    if into.general.is_none() {
        into.general = from.general;
    }
}

async fn price(web: &Web, bill: &Bill) -> Result<Option<CheckoutQuote>, AppError> {
    if bill.lines.is_empty() {
        return Ok(None);
    }
    web.app
        .quote_checkout(&web.actor, &bill.request(None))
        .await
        .map(Some)
}

/// The new bill screen.
#[derive(Deserialize, Default)]
pub struct StartQuery {
    /// Start the bill for this customer (e.g. from the customer's page).
    customer: Option<String>,
}

pub async fn page(web: Web, Query(q): Query<StartQuery>) -> WebResult<Html<String>> {
    web.actor.require(Permission::Checkout)?;
    let (categories, items) = web.app.menu(&web.actor).await?;
    let mut bill = Bill::new();
    if let Some(id) = q.customer.as_deref().and_then(|s| s.parse().ok()) {
        let cards = web.app.customer_cards(&web.actor, id).await?;
        bill.set_customer(Some(id), default_card(&cards));
    }
    let zh = web.lang == Lang::Zh;
    let mut cats: Vec<_> = categories.iter().collect();
    cats.sort_by_key(|c| c.sort_order);
    let categories: Vec<Value> = cats
        .iter()
        .filter(|c| items.iter().any(|i| i.active && i.category_id == c.id))
        .map(|c| {
            context! {
                id => c.id.to_string(),
                name => if zh || c.name_en.is_empty() { &c.name } else { &c.name_en },
            }
        })
        .collect();
    // "All" shows the dishes in the menu's order: by category, then as listed.
    let rank = |id: &uuid::Uuid| cats.iter().position(|c| c.id == *id).unwrap_or(usize::MAX);
    let mut active: Vec<_> = items.iter().filter(|i| i.active).collect();
    active.sort_by_key(|i| rank(&i.category_id));
    let dishes: Vec<Value> = active
        .into_iter()
        .map(|i| {
            let search = format!(
                "{} {} {} {}",
                i.name,
                i.name_en,
                patron_domain::search::pinyin_full(&i.name),
                patron_domain::search::pinyin_initials(&i.name)
            )
            .to_lowercase();
            context! {
                id => i.id.to_string(),
                category_id => i.category_id.to_string(),
                name => if zh || i.name_en.is_empty() { &i.name } else { &i.name_en },
                other => if zh { &i.name_en } else { &i.name },
                price => i.price.fen(),
                search,
            }
        })
        .collect();
    let ctx = bill_context(&web, &bill, None, &[], &FormErrors::default(), true).await?;
    web.page(
        "till/page.html",
        "till",
        merge(
            ctx,
            context! {
                categories, dishes,
                at_store => web.actor.store_id.is_some(),
            },
        ),
    )
}

/// One customer of several that a name search found.
#[derive(Serialize)]
struct Found {
    id: String,
    name: String,
    phone: Option<String>,
    level: Option<String>,
}

/// A tap on the bill: apply it, price again, answer with the bill panel.
pub async fn bill(web: Web, WebForm(f): WebForm<BillForm>) -> WebResult<Response> {
    let mut errors = FormErrors::default();
    let mut bill = Bill::parse(&f, web.lang, &mut errors)?;
    let before = bill.clone();
    let mut found = Vec::new();
    let (op, arg) = f.op.split_once(':').unwrap_or((f.op.as_str(), ""));
    let index = || arg.parse::<usize>().ok();
    match op {
        "add" => {
            let item: MenuItemId = arg.parse().map_err(|_| tampered("dish"))?;
            match bill.lines.iter_mut().find(|(i, _)| *i == item) {
                Some(line) => line.1 = (line.1 + 1).min(999),
                None => bill.lines.push((item, 1)),
            }
        }
        "inc" => {
            if let Some(l) = index().and_then(|i| bill.lines.get_mut(i)) {
                l.1 = (l.1 + 1).min(999);
            }
        }
        "dec" => {
            if let Some(i) = index().filter(|i| *i < bill.lines.len()) {
                if bill.lines[i].1 > 1 {
                    bill.lines[i].1 -= 1;
                } else {
                    bill.lines.remove(i);
                }
            }
        }
        "del" => {
            if let Some(i) = index().filter(|i| *i < bill.lines.len()) {
                bill.lines.remove(i);
            }
        }
        "coupon" => match bill.coupons.iter().position(|c| c == arg) {
            Some(i) => {
                bill.coupons.remove(i);
            }
            None => bill.coupons.push(arg.to_string()),
        },
        "points_max" => {
            if let Some(card) = bill.card {
                let view = web.app.get_card_view(&web.actor, card).await?;
                bill.points = Some(view.balances.points).filter(|p| *p > 0);
            }
        }
        "points_off" => bill.points = None,
        "method" if METHODS.contains(&arg) => bill.method = Some(arg.to_string()),
        "split" => split(&web, &mut bill, &f.split_amount, &mut errors).await?,
        "use_balance" => use_balance(&web, &mut bill).await?,
        "unpay" => {
            if let Some(i) = index().filter(|i| *i < bill.paid.len()) {
                bill.paid.remove(i);
            }
        }
        "find" => find(&web, &mut bill, &f.q, &mut found, &mut errors).await?,
        "pick" => {
            let id: CustomerId = arg.parse().map_err(|_| tampered("customer"))?;
            let cards = web.app.customer_cards(&web.actor, id).await?;
            bill.set_customer(Some(id), default_card(&cards));
        }
        "card" => {
            let id: CardId = arg.parse().map_err(|_| tampered("card"))?;
            let customer = bill.customer;
            bill.set_customer(customer, Some(id));
        }
        "walkin" => bill.set_customer(None, None),
        _ => {}
    }
    // A bill settled by the fixed payments needs no method for the rest.
    let mut quote = price(&web, &bill).await;
    if let Ok(Some(q)) = &quote
        && bill.method.is_some()
        && !bill.paid.is_empty()
        && bill.fixed() >= q.breakdown.amount_due
    {
        bill.method = None;
        quote = price(&web, &bill).await;
    }
    let quote = match quote {
        Ok(q) => q,
        Err(e) => {
            merge_errors(&mut errors, place_errors(e)?);
            // What the tap added cannot be used: show why and keep the bill as it was.
            if bill != before {
                bill = before;
                price(&web, &bill).await.ok().flatten()
            } else {
                None
            }
        }
    };
    bill_fragment(&web, &bill, quote.as_ref(), &found, &errors, StatusCode::OK).await
}

/// Puts a typed amount on the chosen method; the rest is then paid another way.
async fn split(web: &Web, bill: &mut Bill, amount: &str, errors: &mut FormErrors) -> WebResult<()> {
    let Some(method) = bill.method.clone() else {
        errors
            .fields
            .insert("tenders".into(), web.t("till-choose-method-first"));
        return Ok(());
    };
    let Some(amount) = parse_money(errors, web.lang, "split_amount", amount) else {
        errors
            .fields
            .entry("split_amount".into())
            .or_insert_with(|| web.t("till-split-amount-needed"));
        return Ok(());
    };
    let due = match price(web, bill).await {
        Ok(Some(q)) => q.breakdown.amount_due,
        _ => Money::ZERO,
    };
    if amount.fen() <= 0 || amount >= due - bill.fixed() {
        errors
            .fields
            .insert("split_amount".into(), web.t("till-split-too-much"));
        return Ok(());
    }
    bill.paid.push((method, amount));
    bill.method = None;
    Ok(())
}

/// The card pays what it holds; the rest is paid another way.
async fn use_balance(web: &Web, bill: &mut Bill) -> WebResult<()> {
    let Some(card) = bill.card else {
        return Ok(());
    };
    let balance = web
        .app
        .get_card_view(&web.actor, card)
        .await?
        .balances
        .money();
    let due = match price(web, bill).await {
        Ok(Some(q)) => q.breakdown.amount_due,
        _ => return Ok(()),
    };
    bill.paid.retain(|(m, _)| m != "stored_value");
    let take = balance.min(due - bill.fixed());
    if take.fen() > 0 {
        bill.paid.push(("stored_value".into(), take));
        bill.method = None;
    }
    Ok(())
}

/// Finds the customer: a phone number, a card number (that card is used), or a name
/// (several may match: the cashier picks one). An anonymous card pays on its own.
async fn find(
    web: &Web,
    bill: &mut Bill,
    q: &str,
    found: &mut Vec<Found>,
    errors: &mut FormErrors,
) -> WebResult<()> {
    let q = q.trim();
    if q.is_empty() {
        errors.field(web.lang, "q", "required");
        return Ok(());
    }
    let customers = web.app.lookup_customers(&web.actor, q, 10).await?;
    // A swiped or typed card number: that card pays (not the customer's first one).
    let digits: String = q
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    let swiped = if digits.len() >= 8 && digits.chars().all(|c| c.is_ascii_digit()) {
        web.app.card_view_by_number(&web.actor, &digits).await.ok()
    } else {
        None
    };
    match customers.as_slice() {
        [] => match swiped {
            Some(v) if v.card.customer_id.is_none() => bill.set_customer(None, Some(v.card.id)),
            _ => {
                errors.fields.insert("q".into(), web.t("till-not-found"));
            }
        },
        [c] => {
            let card = match swiped.filter(|v| v.card.customer_id == Some(c.id)) {
                Some(v) => Some(v.card.id),
                None => default_card(&web.app.customer_cards(&web.actor, c.id).await?),
            };
            bill.set_customer(Some(c.id), card);
        }
        many => {
            let settings = web.app.settings(&web.actor).await?;
            for c in many {
                found.push(Found {
                    id: c.id.to_string(),
                    name: c.profile.name.clone(),
                    phone: c.profile.phone.as_ref().map(|p| p.to_string()),
                    level: level_name(web, &settings, c.level.as_deref()),
                });
            }
        }
    }
    Ok(())
}

fn level_name(
    web: &Web,
    settings: &patron_domain::settings::TenantSettings,
    code: Option<&str>,
) -> Option<String> {
    let l = settings.levels.level(code?)?;
    Some(match web.lang {
        Lang::Zh => l.name.clone(),
        Lang::En => l.name_en.clone(),
    })
}

async fn bill_fragment(
    web: &Web,
    bill: &Bill,
    quote: Option<&CheckoutQuote>,
    found: &[Found],
    errors: &FormErrors,
    status: StatusCode,
) -> WebResult<Response> {
    let ctx = bill_context(web, bill, quote, found, errors, false).await?;
    Ok((status, web.fragment("till/bill.html", ctx)?).into_response())
}

/// Everything the bill panel shows: the customer and their card, the lines, the price
/// step by step, the payments.
async fn bill_context(
    web: &Web,
    bill: &Bill,
    quote: Option<&CheckoutQuote>,
    found: &[Found],
    errors: &FormErrors,
    initial: bool,
) -> WebResult<Value> {
    let app = &web.app;
    let actor = &web.actor;
    let settings = app.settings(actor).await?;
    let zh = web.lang == Lang::Zh;
    // The customer, their cards and usable coupons.
    let customer = match bill.customer {
        Some(id) => Some(app.get_customer(actor, id).await?),
        None => None,
    };
    let cards = match &customer {
        Some(c) => app.customer_cards(actor, c.id).await?,
        None => Vec::new(),
    };
    let card = match bill.card {
        Some(id) => Some(app.get_card_view(actor, id).await?),
        None => None,
    };
    let today = settings.local(patron_app::now()).date();
    let coupons: Vec<Value> = match &customer {
        Some(c) => app
            .customer_coupons(actor, c.id, Some(CouponStatus::Issued))
            .await?
            .into_iter()
            .filter(|v| v.coupon.valid_from <= today && today <= v.coupon.valid_to)
            .map(|v| {
                context! {
                    selected => bill.coupons.contains(&v.coupon.code),
                    code => v.coupon.code,
                    name => v.template_name,
                    label => v.label,
                    valid_to => v.coupon.valid_to.to_string(),
                }
            })
            .collect(),
        None => Vec::new(),
    };
    let card_ctx = card.as_ref().map(|v| {
        context! {
            id => v.card.id.to_string(),
            number => masked_number(&v.card.number),
            stored_value => v.card.kinds.stored_value,
            points_kind => v.card.kinds.points,
            active => v.card.status == CardStatus::Active,
            status => v.card.status.as_str(),
            money => v.balances.money().fen(),
            principal => v.balances.principal.fen(),
            bonus => v.balances.bonus.fen(),
            points => v.balances.points,
            has_pin => v.card.pin_hash.is_some(),
        }
    });
    let other_cards: Vec<Value> = cards
        .iter()
        .filter(|c| c.status == CardStatus::Active || Some(c.id) == bill.card)
        .map(|c| {
            context! {
                id => c.id.to_string(),
                number => masked_number(&c.number),
                selected => Some(c.id) == bill.card,
            }
        })
        .collect();
    let who = customer.as_ref().map(|c| {
        context! {
            name => &c.profile.name,
            phone => c.profile.phone.as_ref().map(|p| p.to_string()),
            level => level_name(web, &settings, c.level.as_deref()),
        }
    });
    // Dish names in the page's language.
    let (_, items) = app.menu(actor).await?;
    let names: HashMap<MenuItemId, (&str, Money)> = items
        .iter()
        .map(|i| {
            let name = if zh || i.name_en.is_empty() {
                i.name.as_str()
            } else {
                i.name_en.as_str()
            };
            (i.id, (name, i.price))
        })
        .collect();
    let lines: Vec<Value> = bill
        .lines
        .iter()
        .enumerate()
        .map(|(i, (id, qty))| {
            let (name, price) = names.get(id).copied().unwrap_or(("?", Money::ZERO));
            let priced = quote.and_then(|q| q.breakdown.lines.iter().find(|l| l.index == i));
            let gross = priced.map_or(price.fen() * i64::from(*qty), |l| l.gross.fen());
            let member = priced.and_then(|l| l.member_unit_price);
            context! {
                i, name, qty,
                unit => member.unwrap_or(price).fen(),
                regular_unit => price.fen(),
                member => member.is_some(),
                gross,
                amount => member.map_or(gross, |m| m.fen() * i64::from(*qty)),
            }
        })
        .collect();
    // The price step by step.
    let q = quote.map(|q| {
        let b = &q.breakdown;
        let discounts: Vec<Value> = b
            .discounts
            .iter()
            .map(|d| {
                context! {
                    kind => match d.kind {
                        DiscountKind::MemberPrice => "member_price",
                        DiscountKind::LevelDiscount => "level",
                        DiscountKind::PaymentRule => "payment_rule",
                        DiscountKind::Coupon => "coupon",
                        DiscountKind::Points => "points",
                        DiscountKind::Rounding => "rounding",
                    },
                    label => if zh { &d.label } else { &d.label_en },
                    amount => d.amount.fen(),
                }
            })
            .collect();
        context! {
            gross => b.gross.fen(),
            discounts,
            total_discount => b.total_discount.fen(),
            due => b.amount_due.fen(),
            points_used => b.points_used,
            points_note => b.points_explanation.as_ref().map(|e| if zh { e.zh.clone() } else { e.en.clone() }),
        }
    });
    // Payments.
    let due = quote.map(|q| q.breakdown.amount_due);
    let fixed = bill.fixed();
    let rest = due.map(|d| d - fixed);
    let sv_card = card
        .as_ref()
        .filter(|v| v.card.kinds.stored_value && v.card.status == CardStatus::Active);
    let balance = sv_card.map(|v| v.balances.money());
    let methods: Vec<Value> = METHODS
        .iter()
        .filter(|m| **m != "stored_value" || sv_card.is_some())
        .map(|m| {
            context! {
                code => *m,
                label => web.t(&format!("till-m-{m}")),
                selected => bill.method.as_deref() == Some(*m),
                note => (*m == "stored_value").then(|| balance.map(|b| b.fen())).flatten(),
                // An empty card cannot pay: shown (so the cashier sees why), not chosen.
                disabled => *m == "stored_value" && balance.is_some_and(|b| b.fen() <= 0),
            }
        })
        .collect();
    let paid: Vec<Value> = bill
        .paid
        .iter()
        .enumerate()
        .map(|(i, (m, a))| {
            context! { i, label => web.t(&format!("till-m-{m}")), amount => a.fen() }
        })
        .collect();
    // Stored value asked of the card (a fixed part, or the rest) beyond its balance.
    let sv_fixed: Money = bill
        .paid
        .iter()
        .filter(|(m, _)| m == "stored_value")
        .map(|(_, a)| *a)
        .sum();
    let sv_open = match (bill.method.as_deref(), rest) {
        (Some("stored_value"), Some(r)) if r.fen() > 0 => r,
        _ => Money::ZERO,
    };
    let sv_short = match balance {
        Some(b) if bill.uses_stored_value() && sv_fixed + sv_open > b => {
            Some((sv_fixed + sv_open - b).fen())
        }
        _ => None,
    };
    let settled = quote.is_some_and(|q| {
        let taken: Money = q.tenders.iter().map(|t| t.amount).sum();
        taken == q.breakdown.amount_due && (taken.fen() > 0 || bill.paid.is_empty())
    });
    let ready = settled && sv_short.is_none() && errors.general.is_none();
    let hint = if bill.lines.is_empty() {
        "till-hint-add"
    } else if quote.is_none() {
        "till-hint-fix"
    } else if rest.is_some_and(|r| r.is_negative()) {
        "till-hint-overpaid"
    } else if bill.method.is_none() && !settled {
        "till-hint-method"
    } else if sv_short.is_some() {
        "till-hint-short"
    } else {
        "till-hint-fix"
    };
    let needs_pin = bill.uses_stored_value()
        && card
            .as_ref()
            .is_some_and(|v| v.card.pin_hash.is_some() || settings.pin_required);
    let redemption = &settings.points.redemption;
    Ok(context! {
        initial,
        bill => bill.hidden(),
        who, found => ser(found),
        card => card_ctx,
        cards => if other_cards.len() > 1 { other_cards } else { Vec::new() },
        coupons,
        points_rate => redemption.enabled.then_some(redemption.points_per_yuan),
        lines, q,
        pay => context! {
            methods, paid,
            fixed => fixed.fen(),
            rest => rest.map(Money::fen),
            open_amount => bill.method.as_ref().and(rest).map(Money::fen),
            sv_short,
            balance => balance.map(Money::fen),
            ready,
            hint,
            needs_pin,
            splitting => errors.fields.contains_key("split_amount"),
        },
        errors => ser(errors),
    })
}

/// Confirm: take the bill, then show its receipt.
pub async fn confirm(web: Web, WebForm(f): WebForm<BillForm>) -> WebResult<Response> {
    let mut errors = FormErrors::default();
    let bill = Bill::parse(&f, web.lang, &mut errors)?;
    let pin = some(&f.pin).map(str::to_string);
    if errors.is_empty() && bill.uses_stored_value() && pin.is_none() {
        // The card's PIN protects the customer's money: ask for it whenever one is set.
        if let Some(card) = bill.card {
            let v = web.app.get_card_view(&web.actor, card).await?;
            if v.card.pin_hash.is_some() {
                errors.field(web.lang, "pin", "pin_required");
            }
        }
    }
    if errors.is_empty() {
        match web.app.checkout(&web.actor, &bill.request(pin)).await {
            Ok(out) => {
                return Ok(see_other(
                    &format!("/till/receipts/{}", out.checkout_id),
                    web.htmx,
                ));
            }
            Err(e) => errors = place_errors(e)?,
        }
    }
    let quote = price(&web, &bill).await.ok().flatten();
    bill_fragment(
        &web,
        &bill,
        quote.as_ref(),
        &[],
        &errors,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await
}

fn not_found() -> WebError {
    WebError {
        status: StatusCode::NOT_FOUND,
        code: "not_found".into(),
        message: "no such bill".into(),
        redirect: None,
    }
}

fn bill_id(s: &str) -> WebResult<uuid::Uuid> {
    s.parse().map_err(|_| not_found())
}

/// A bill's receipt: the amount, the card's balance and points before and after, the
/// printable receipt, and the ways on: next customer, print, reverse.
pub async fn receipt(web: Web, Path(id): Path<String>) -> WebResult<Html<String>> {
    let id = bill_id(&id)?;
    let out = web.app.checkout_receipt(&web.actor, id).await?;
    let summary = web
        .app
        .checkout_summary(&web.actor, out.checkout_id)
        .await?;
    receipt_page(&web, id, &out, &summary, &FormErrors::default(), None)
}

fn receipt_page(
    web: &Web,
    id: uuid::Uuid,
    out: &patron_app::checkout::CheckoutOutcome,
    summary: &patron_app::checkout::CheckoutSummary,
    errors: &FormErrors,
    reason: Option<&str>,
) -> WebResult<Html<String>> {
    let zh = web.lang == Lang::Zh;
    let doc = &out.receipt;
    let reversal = doc.kind == receipts::ReceiptKind::Reversal;
    let tenders: Vec<Value> = doc
        .tenders
        .iter()
        .map(|t| context! { label => if zh { &t.label } else { &t.label_en }, amount => t.amount.fen() })
        .collect();
    let awards: Vec<String> = if reversal {
        Vec::new()
    } else {
        out.earned
            .awards
            .iter()
            .map(|a| {
                if zh {
                    a.explanation.zh.clone()
                } else {
                    a.explanation.en.clone()
                }
            })
            .collect()
    };
    web.page(
        "till/receipt.html",
        "till",
        context! {
            id => id.to_string(),
            checkout_id => out.checkout_id.to_string(),
            number => &out.number,
            at => out.ledger.created_at.to_rfc3339(),
            reversal,
            amount => doc.amount_due.fen(),
            discount => doc.total_discount.fen(),
            customer => &doc.customer,
            card_number => &doc.card_number,
            cashier => &doc.cashier,
            tenders,
            sv => doc.stored_value.as_ref().map(|s| context! {
                before => s.before.fen(), this_time => s.this_time.fen(), after => s.after.fen(),
            }),
            points => doc.points.as_ref().map(|p| context! {
                before => p.before, earned => p.earned, used => p.used, after => p.after,
            }),
            awards,
            coupons_issued => doc.coupons_issued.iter().map(|c| context! { code => &c.code, valid_to => c.valid_to.to_string() }).collect::<Vec<_>>(),
            status => &summary.status,
            reversal_id => summary.reversal_id.map(|r| r.to_string()),
            can_reverse => !reversal && summary.status == "completed" && web.can(Permission::ReverseOrRefund),
            needs_approval => !matches!(web.actor.role, patron_domain::org::Role::Owner | patron_domain::org::Role::Manager),
            reverse_key => new_key(),
            reason => reason.unwrap_or_default(),
            errors => ser(errors),
            open_reversal => !errors.is_empty(),
        },
    )
}

/// The printable receipt (the same page the API serves), for the frame and for printing.
pub async fn paper(web: Web, Path(id): Path<String>) -> WebResult<Html<String>> {
    let id = bill_id(&id)?;
    let doc = web.app.checkout_receipt(&web.actor, id).await?.receipt;
    // The receipt names the usual system fonts; a till without a Chinese font (a bare
    // Linux tablet) gets the bundled Noto Sans SC as well.
    let font = "<link rel=\"stylesheet\" href=\"/assets/vendor/fonts/noto-sans-sc.css\">\
        <style>.receipt{font-family:\"PingFang SC\",\"Microsoft YaHei\",\"Noto Sans CJK SC\",\
        \"Source Han Sans SC\",\"Noto Sans SC\",sans-serif}</style></head>";
    Ok(Html(
        receipts::render_html(&doc).replacen("</head>", font, 1),
    ))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct PrintForm {
    printer: String,
    paper: String,
}

/// Prints the receipt on the till's network printer (its address is kept by the browser).
pub async fn print(
    web: Web,
    Path(id): Path<String>,
    WebForm(f): WebForm<PrintForm>,
) -> WebResult<Response> {
    let id = bill_id(&id)?;
    let printer = f.printer.trim();
    let (ok, message) = if printer.is_empty() {
        (false, web.t("till-printer-needed"))
    } else {
        let doc = web.app.checkout_receipt(&web.actor, id).await?.receipt;
        let paper = if f.paper == "58" {
            Paper::Mm58
        } else {
            Paper::Mm80
        };
        let bytes = receipts::render_escpos(&doc, paper);
        match receipts::print_to(printer, &bytes, std::time::Duration::from_secs(5)).await {
            Ok(()) => (
                true,
                web.lang
                    .t_args("till-printed", &[("printer", printer.to_string())]),
            ),
            Err(e) => (false, format!("{}: {e}", web.t("err-printer_unreachable"))),
        }
    };
    let html = web.fragment("till/printed.html", context! { ok, message })?;
    Ok(html.into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ReverseForm {
    key: String,
    reason: String,
    approver: String,
    approver_secret: String,
}

/// 反结账 with a manager's approval (a cashier names the manager, who types their
/// password or approval PIN); then the reversal's receipt shows the balances put back.
pub async fn reverse(
    web: Web,
    Path(id): Path<String>,
    WebForm(f): WebForm<ReverseForm>,
) -> WebResult<Response> {
    let id = bill_id(&id)?;
    let mut errors = FormErrors::default();
    if f.reason.trim().is_empty() {
        errors.field(web.lang, "reason", "required");
    }
    let approval = if some(&f.approver).is_some() || some(&f.approver_secret).is_some() {
        if f.approver_secret.is_empty() {
            errors.field(web.lang, "approver_secret", "required");
        }
        if f.approver.trim().is_empty() {
            errors.field(web.lang, "approver", "required");
        }
        Some(Approval {
            username: f.approver.trim().to_string(),
            password: f.approver_secret.clone(),
        })
    } else {
        None
    };
    if errors.is_empty() {
        let req = ReverseCheckout {
            reason: f.reason.trim().to_string(),
            approval,
            idempotency_key: some(&f.key).map_or_else(new_key, str::to_string),
        };
        match web.app.reverse_checkout(&web.actor, id, &req).await {
            Ok(out) => {
                return Ok(see_other(
                    &format!("/till/receipts/{}", out.ledger.txn_id),
                    web.htmx,
                ));
            }
            Err(e) => errors = place_errors(e)?,
        }
    }
    let out = web.app.checkout_receipt(&web.actor, id).await?;
    let summary = web
        .app
        .checkout_summary(&web.actor, out.checkout_id)
        .await?;
    let html = receipt_page(&web, id, &out, &summary, &errors, Some(f.reason.trim()))?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, html).into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct BillsQuery {
    page: Option<u32>,
}

/// Today's bills at this store, newest first: find one again to reprint or reverse it.
pub async fn bills(web: Web, Query(q): Query<BillsQuery>) -> WebResult<Html<String>> {
    let page = PageRequest::new(q.page.unwrap_or(1), BILLS_PER_PAGE);
    let list = web.app.store_checkouts(&web.actor, None, page).await?;
    let zh = web.lang == Lang::Zh;
    let rows: Vec<Value> = list
        .items
        .iter()
        .map(|c| {
            let tenders: Vec<String> = c
                .tenders
                .iter()
                .map(|t| {
                    let label = web.t(&format!("till-m-{}", t.method));
                    let label = if label.starts_with("till-m-") {
                        t.method.clone()
                    } else {
                        label
                    };
                    format!("{label} {}", super::i18n::money(t.amount))
                })
                .collect();
            context! {
                id => c.id.to_string(),
                number => &c.number,
                at => c.created_at.to_rfc3339(),
                customer => c.customer.clone().unwrap_or_else(|| web.t("till-walk-in-short")),
                amount => c.amount_due.fen(),
                refunded => c.refunded.fen(),
                tenders => tenders.join(if zh { "，" } else { ", " }),
                status => &c.status,
                cashier => &c.cashier,
            }
        })
        .collect();
    web.page(
        "till/bills.html",
        "till",
        context! {
            rows,
            page => list.page,
            has_more => list.has_more,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(lines: &str, paid: &str, method: &str, points: &str) -> BillForm {
        BillForm {
            key: "k".into(),
            lines: lines.into(),
            paid: paid.into(),
            method: method.into(),
            points: points.into(),
            ..BillForm::default()
        }
    }

    #[test]
    fn the_bill_survives_the_round_trip_through_the_page() {
        let item = uuid::Uuid::now_v7();
        let other = uuid::Uuid::now_v7();
        let f = form(
            &format!("{item}*2,{other}*1"),
            "stored_value:10000",
            "wechat",
            "300",
        );
        let mut errors = FormErrors::default();
        let bill = Bill::parse(&f, Lang::En, &mut errors).unwrap();
        assert!(errors.is_empty());
        assert_eq!(
            bill.lines,
            vec![(MenuItemId(item), 2), (MenuItemId(other), 1)]
        );
        assert_eq!(
            bill.paid,
            vec![("stored_value".into(), Money::from_fen(10_000))]
        );
        assert_eq!(bill.points, Some(300));
        let h = bill.hidden();
        let again = BillForm {
            key: h.get_attr("key").unwrap().to_string(),
            lines: h.get_attr("lines").unwrap().to_string(),
            paid: h.get_attr("paid").unwrap().to_string(),
            method: h.get_attr("method").unwrap().to_string(),
            points: h.get_attr("points").unwrap().to_string(),
            ..BillForm::default()
        };
        assert_eq!(Bill::parse(&again, Lang::En, &mut errors).unwrap(), bill);
        // The checkout request: fixed tenders first, the open one pays the rest.
        let req = bill.request(Some("123456".into()));
        assert_eq!(req.tenders.len(), 2);
        assert_eq!(req.tenders[1].amount, None);
        assert_eq!(req.idempotency_key, "k");
        assert_eq!(req.lines[0].quantity, 2);
    }

    #[test]
    fn tampered_state_is_refused_and_typos_are_field_errors() {
        let mut errors = FormErrors::default();
        for (lines, paid, method) in [
            ("nope*1", "", ""),
            ("", "bitcoin:100", ""),
            ("", "cash:-5", ""),
            ("", "", "gold_bars"),
        ] {
            assert!(Bill::parse(&form(lines, paid, method, ""), Lang::Zh, &mut errors).is_err());
        }
        let bill = Bill::parse(&form("", "", "", "12x"), Lang::Zh, &mut errors).unwrap();
        assert_eq!(bill.points, None);
        assert!(errors.fields.contains_key("points"));
    }

    #[test]
    fn another_customer_takes_nothing_of_the_previous_one() {
        let mut bill = Bill::new();
        bill.coupons.push("AAAA".into());
        bill.points = Some(500);
        bill.paid
            .push(("stored_value".into(), Money::from_fen(100)));
        bill.paid.push(("cash".into(), Money::from_fen(100)));
        bill.method = Some("stored_value".into());
        bill.set_customer(None, None);
        assert!(bill.coupons.is_empty() && bill.points.is_none());
        assert_eq!(bill.paid, vec![("cash".into(), Money::from_fen(100))]);
        assert_eq!(bill.method, None);
    }
}
