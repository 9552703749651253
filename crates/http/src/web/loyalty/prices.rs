//! Member prices on the menu: every dish by category with its regular price and its
//! member prices (for holders of a member-price card and per level), edited in place one
//! dish at a time, and a dish's price history (every change is kept, so old receipts can
//! be explained).

use super::super::Web;
use super::super::render::WebResult;
use super::{Check, Fields, level_name, page_of, v, with_status};
use crate::web::WebForm;
use axum::Router;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use minijinja::{Value, context};
use patron_app::App;
use patron_app::menu::{ItemQuery, SetMemberPrices};
use patron_domain::ids::MenuItemId;
use patron_domain::menu::{CardKind, MemberPriceInput, PriceTarget, PricedItem};
use patron_domain::permissions::Permission;
use patron_domain::settings::TenantSettings;
use serde::Deserialize;
use std::collections::BTreeMap;
use uuid::Uuid;

pub fn routes() -> Router<App> {
    Router::new()
        .route("/loyalty/prices", get(list))
        .route("/loyalty/prices/{id}", get(history).post(save))
        .route("/loyalty/prices/{id}/edit", get(edit_row))
        .route("/loyalty/prices/{id}/row", get(show_row))
}

/// A path id that is not one: the page of an unknown record.
pub(super) fn parse_id<T: std::str::FromStr>(s: &str, entity: &'static str) -> WebResult<T> {
    s.parse()
        .map_err(|_| patron_app::AppError::NotFound { entity }.into())
}

/// One column of member prices: a card kind or a level.
struct Column {
    target: PriceTarget,
    label: String,
    /// A level whose rules withhold member prices.
    withheld: bool,
}

impl Column {
    /// The form input and map key of the column: `card_kind.member_price`, `level.gold`.
    fn key(&self) -> String {
        format!("{}.{}", self.target.kind_str(), self.target.code())
    }
}

/// The columns: the member-price card, the other card kinds and unknown level codes only
/// where some dish has a price for them, then every level.
fn columns(web: &Web, s: &TenantSettings, items: &[PricedItem]) -> Vec<Column> {
    let used = |t: &PriceTarget| {
        items
            .iter()
            .any(|i| i.member_prices.iter().any(|m| &m.target == t))
    };
    let mut cols = vec![Column {
        target: PriceTarget::CardKind(CardKind::MemberPrice),
        label: web.t("loy-price-member-card"),
        withheld: false,
    }];
    for k in [CardKind::StoredValue, CardKind::Points] {
        let t = PriceTarget::CardKind(k);
        if used(&t) {
            cols.push(Column {
                target: t,
                label: web.t(&format!("loy-card-kind-{}", k.as_str())),
                withheld: false,
            });
        }
    }
    for l in &s.levels.levels {
        cols.push(Column {
            target: PriceTarget::Level(l.code.clone()),
            label: level_name(web.lang, &l.name, &l.name_en),
            withheld: !l.member_price,
        });
    }
    let mut others: Vec<String> = items
        .iter()
        .flat_map(|i| i.member_prices.iter())
        .filter_map(|m| match &m.target {
            PriceTarget::Level(c) if !s.levels.levels.iter().any(|l| &l.code == c) => {
                Some(c.clone())
            }
            _ => None,
        })
        .collect();
    others.sort();
    others.dedup();
    for c in others {
        cols.push(Column {
            label: c.clone(),
            target: PriceTarget::Level(c),
            withheld: false,
        });
    }
    cols
}

fn cols_ctx(cols: &[Column]) -> Vec<Value> {
    cols.iter()
        .map(|c| {
            context! {
                key => c.key(),
                label => &c.label,
                kind => c.target.kind_str(),
                withheld => c.withheld,
            }
        })
        .collect()
}

/// A dish for the templates: its prices by column key (fen), and each as a share of the
/// regular price (basis points).
fn item_ctx(web: &Web, i: &PricedItem) -> Value {
    let regular = i.item.price.fen();
    let prices: BTreeMap<String, i64> = i
        .member_prices
        .iter()
        .map(|m| {
            (
                format!("{}.{}", m.target.kind_str(), m.target.code()),
                m.price.fen(),
            )
        })
        .collect();
    let shares: BTreeMap<String, i64> = prices
        .iter()
        .map(|(k, p)| {
            let share = if regular > 0 {
                // To a tenth of a percent (88.9%), rounded half up.
                let r = i128::from(regular);
                let tenths = (i128::from(*p) * 2_000 + r) / (2 * r);
                i64::try_from(tenths * 10).unwrap_or(0)
            } else {
                0
            };
            (k.clone(), share)
        })
        .collect();
    context! {
        id => i.item.id.to_string(),
        name => level_name(web.lang, &i.item.name, &i.item.name_en),
        other_name => match web.lang {
            super::Lang::Zh => i.item.name_en.clone(),
            super::Lang::En => i.item.name.clone(),
        },
        price => regular,
        active => i.item.active,
        prices => v(prices),
        shares => v(shares),
    }
}

#[derive(Deserialize, Default)]
struct ListQuery {
    category: Option<String>,
    q: Option<String>,
}

async fn list(web: Web, Query(q): Query<ListQuery>) -> WebResult<Html<String>> {
    let s = web.app.settings(&web.actor).await?;
    let categories = web.app.menu_categories(&web.actor).await?;
    let text = q.q.as_deref().map(str::trim).filter(|t| !t.is_empty());
    // One category at a time (the first unless another is chosen): a whole menu is too
    // long to scan. "All categories" and a search look through everything.
    let category = match q.category.as_deref() {
        _ if text.is_some() => None,
        None => categories.first().map(|c| c.id),
        Some(c) => c.parse::<Uuid>().ok(),
    };
    let all = web
        .app
        .menu_items(&web.actor, &ItemQuery::default())
        .await?;
    let shown = web
        .app
        .menu_items(
            &web.actor,
            &ItemQuery {
                category_id: category,
                active: None,
                q: text.map(str::to_string),
            },
        )
        .await?;
    let cols = columns(&web, &s, &all);
    let groups: Vec<Value> = categories
        .iter()
        .filter_map(|c| {
            let items: Vec<Value> = shown
                .iter()
                .filter(|i| i.item.category_id == c.id)
                .map(|i| item_ctx(&web, i))
                .collect();
            (!items.is_empty()).then(|| {
                context! {
                    name => level_name(web.lang, &c.name, &c.name_en),
                    items,
                }
            })
        })
        .collect();
    let tabs: Vec<Value> = categories
        .iter()
        .map(|c| {
            context! {
                id => c.id.to_string(),
                name => level_name(web.lang, &c.name, &c.name_en),
                active => category == Some(c.id),
            }
        })
        .collect();
    web.page(
        "loyalty/prices.html",
        "loyalty",
        context! {
            tab => "prices",
            cols => cols_ctx(&cols),
            groups,
            categories => tabs,
            category => category.map(|c| c.to_string()),
            q => text,
            count => shown.len(),
            can_edit => web.can(Permission::ManageMenu),
        },
    )
}

/// The dish and the columns of the whole menu (a row must line up with the table).
async fn dish(web: &Web, id: &str) -> WebResult<(PricedItem, Vec<Column>)> {
    let id: MenuItemId = parse_id(id, "menu item")?;
    let item = web.app.get_menu_item(&web.actor, id).await?;
    let s = web.app.settings(&web.actor).await?;
    let all = web
        .app
        .menu_items(&web.actor, &ItemQuery::default())
        .await?;
    let mut cols = columns(web, &s, &all);
    // A dish edited here keeps every target it has.
    for m in &item.member_prices {
        if !cols.iter().any(|c| c.target == m.target) {
            cols.push(Column {
                label: m.target.code().to_string(),
                target: m.target.clone(),
                withheld: false,
            });
        }
    }
    Ok((item, cols))
}

fn row_ctx(web: &Web, item: &PricedItem, cols: &[Column], notice: bool) -> Value {
    context! {
        item => item_ctx(web, item),
        cols => cols_ctx(cols),
        can_edit => web.can(Permission::ManageMenu),
        notice,
    }
}

async fn show_row(web: Web, Path(id): Path<String>) -> WebResult<Html<String>> {
    let (item, cols) = dish(&web, &id).await?;
    web.fragment("loyalty/price_row.html", row_ctx(&web, &item, &cols, false))
}

fn edit_ctx(
    web: &Web,
    item: &PricedItem,
    cols: &[Column],
    values: BTreeMap<String, String>,
    c: &Check,
) -> Value {
    context! {
        item => item_ctx(web, item),
        cols => cols_ctx(cols),
        v => v(values),
        errors => v(&c.errors),
    }
}

async fn edit_row(web: Web, Path(id): Path<String>) -> WebResult<Html<String>> {
    let (item, cols) = dish(&web, &id).await?;
    let values: BTreeMap<String, String> = item
        .member_prices
        .iter()
        .map(|m| {
            (
                format!("{}.{}", m.target.kind_str(), m.target.code()),
                m.price.to_decimal_string(),
            )
        })
        .collect();
    web.fragment(
        "loyalty/price_edit.html",
        edit_ctx(&web, &item, &cols, values, &Check::new(web.lang)),
    )
}

/// Replaces the dish's member prices with the ones typed (an empty box: no price for
/// that card or level). Setting the complete set is naturally safe to repeat.
async fn save(
    web: Web,
    Path(id): Path<String>,
    WebForm(form): WebForm<Vec<(String, String)>>,
) -> WebResult<Response> {
    let f = Fields(form);
    let (item, cols) = dish(&web, &id).await?;
    let mut c = Check::new(web.lang);
    let mut inputs: Vec<MemberPriceInput> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for col in &cols {
        let name = col.key();
        let Some(Some(price)) = c.money_opt(&name, f.get(&name)) else {
            continue;
        };
        let (level, card_kind) = match &col.target {
            PriceTarget::Level(l) => (Some(l.clone()), None),
            PriceTarget::CardKind(k) => (None, Some(k.as_str().to_string())),
        };
        inputs.push(MemberPriceInput {
            level,
            card_kind,
            price,
        });
        names.push(name);
    }
    if c.ok() {
        let req = SetMemberPrices {
            member_prices: inputs,
        };
        match web
            .app
            .set_member_prices(&web.actor, item.item.id, &req)
            .await
        {
            Ok(updated) => {
                return Ok(web
                    .fragment(
                        "loyalty/price_row.html",
                        row_ctx(&web, &updated, &cols, true),
                    )?
                    .into_response());
            }
            Err(e) => {
                // `member_prices[2].price` → the third box filled in.
                let rename = |field: &str| -> Option<String> {
                    let n: usize = field
                        .strip_prefix("member_prices[")?
                        .split_once(']')?
                        .0
                        .parse()
                        .ok()?;
                    names.get(n).cloned()
                };
                c.app(e, &rename)?;
            }
        }
    }
    Ok(with_status(
        StatusCode::UNPROCESSABLE_ENTITY,
        web.fragment(
            "loyalty/price_edit.html",
            edit_ctx(&web, &item, &cols, f.values(), &c),
        )?,
    ))
}

#[derive(Deserialize, Default)]
struct PageQuery {
    page: Option<u32>,
}

/// A dish's prices over time, newest first.
async fn history(
    web: Web,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> WebResult<Html<String>> {
    let (item, cols) = dish(&web, &id).await?;
    let mut rows = web.app.price_history(&web.actor, item.item.id).await?;
    rows.reverse();
    let (rows, page, has_more) = page_of(&rows, q.page.unwrap_or(1));
    let label = |t: &PriceTarget| {
        cols.iter()
            .find(|c| &c.target == t)
            .map_or_else(|| t.code().to_string(), |c| c.label.clone())
    };
    let rows: Vec<Value> = rows
        .iter()
        .map(|r| {
            context! {
                seq => r.seq,
                kind => web.t(&format!("loy-price-change-{}", r.kind.as_str())),
                at => r.effective_from.to_rfc3339(),
                price => r.price.fen(),
                member_prices => r.member_prices.iter().map(|m| context! {
                    label => label(&m.target), price => m.price.fen(),
                }).collect::<Vec<_>>(),
            }
        })
        .collect();
    web.page(
        "loyalty/price_history.html",
        "loyalty",
        context! {
            tab => "prices",
            item => item_ctx(&web, &item),
            rows, page, has_more,
            base => format!("/loyalty/prices/{}?", item.item.id),
        },
    )
}
