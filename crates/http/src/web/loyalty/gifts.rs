//! The points gift catalogue: gifts a member can take for points, with their stock
//! (empty: unlimited); add one, edit one in place (name, points, stock, on offer or not).

use super::super::Web;
use super::super::render::{WebResult, see_other};
use super::prices::parse_id;
use super::{
    Check, Fields, Once, Seen, form_key, level_name, once_scope, page_of, running_error, v,
    with_status,
};
use crate::web::WebForm;
use axum::Router;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use minijinja::{Value, context};
use patron_app::App;
use patron_app::loyalty::GiftInput;
use patron_domain::permissions::Permission;
use patron_store::loyalty::GiftRecord;
use serde::Deserialize;
use std::collections::BTreeMap;
use uuid::Uuid;

pub fn routes() -> Router<App> {
    Router::new()
        .route("/loyalty/gifts", get(list).post(create))
        .route("/loyalty/gifts/{id}", get(show_row).post(update))
        .route("/loyalty/gifts/{id}/edit", get(edit_row))
}

fn gift_ctx(web: &Web, g: &GiftRecord) -> Value {
    context! {
        id => g.id.to_string(),
        name => level_name(web.lang, &g.name, &g.name_en),
        other_name => match web.lang {
            super::Lang::Zh => g.name_en.clone(),
            super::Lang::En => g.name.clone(),
        },
        points_price => g.points_price,
        stock => g.stock,
        active => g.active,
    }
}

fn values_of(g: Option<&GiftRecord>) -> BTreeMap<String, String> {
    let mut v = BTreeMap::new();
    match g {
        Some(g) => {
            v.insert("name".into(), g.name.clone());
            v.insert("name_en".into(), g.name_en.clone());
            v.insert("points_price".into(), g.points_price.to_string());
            let stock = g.stock.map(|s| s.to_string()).unwrap_or_default();
            v.insert("stock".into(), stock.clone());
            v.insert("stock_shown".into(), stock);
            v.insert(
                "active".into(),
                if g.active { "on".into() } else { String::new() },
            );
        }
        None => {
            v.insert("active".into(), "on".into());
        }
    }
    v
}

fn parse_gift(f: &Fields, c: &mut Check) -> Option<GiftInput> {
    if f.get("name").is_empty() {
        c.err("name", "err-required");
    }
    let points = c.int("points_price", f.get("points_price"));
    let stock = c.int_opt("stock", f.get("stock"));
    if !c.ok() {
        return None;
    }
    Some(GiftInput {
        name: f.get("name").to_string(),
        name_en: f.get("name_en").to_string(),
        points_price: points?,
        stock: stock?,
        active: f.on("active"),
    })
}

#[derive(Deserialize, Default)]
struct ListQuery {
    page: Option<u32>,
    created: Option<String>,
}

fn new_form_ctx(web: &Web, values: BTreeMap<String, String>, c: &Check) -> Value {
    context! {
        v => v(values),
        errors => v(&c.errors),
        key => form_key(),
        can_manage => web.can(Permission::ManageGifts),
    }
}

async fn list(web: Web, Query(q): Query<ListQuery>) -> WebResult<Html<String>> {
    let all = web.app.gifts(&web.actor, true).await?;
    let (items, page, has_more) = page_of(&all, q.page.unwrap_or(1));
    web.page(
        "loyalty/gifts.html",
        "loyalty",
        context! {
            tab => "gifts",
            gifts => items.iter().map(|g| gift_ctx(&web, g)).collect::<Vec<_>>(),
            page, has_more,
            created => q.created,
            form => new_form_ctx(&web, values_of(None), &Check::new(web.lang)),
            can_manage => web.can(Permission::ManageGifts),
        },
    )
}

/// Adds a gift and shows the list with it. The form's key makes a double click add one.
async fn create(web: Web, WebForm(form): WebForm<Vec<(String, String)>>) -> WebResult<Response> {
    let f = Fields(form);
    let key = f.get("key").to_string();
    let mut c = Check::new(web.lang);
    match Once::claim(&once_scope(&web, "gift"), &key) {
        Seen::Done(to) => return Ok(see_other(&to, true)),
        Seen::Running => c.errors = running_error(),
        Seen::New(claim) => {
            if let Some(input) = parse_gift(&f, &mut c) {
                match web.app.create_gift(&web.actor, &input).await {
                    Ok(g) => {
                        let to = format!("/loyalty/gifts?created={}", g.id);
                        claim.finish(&to);
                        return Ok(see_other(&to, true));
                    }
                    Err(e) => c.app(e, &|f| Some(f.to_string()))?,
                }
            }
        }
    }
    Ok(with_status(
        StatusCode::UNPROCESSABLE_ENTITY,
        web.fragment(
            "loyalty/gift_new.html",
            context! { form => new_form_ctx(&web, f.values(), &c) },
        )?,
    ))
}

async fn gift(web: &Web, id: &str) -> WebResult<GiftRecord> {
    let id: Uuid = parse_id(id, "gift")?;
    web.app
        .gifts(&web.actor, true)
        .await?
        .into_iter()
        .find(|g| g.id == id)
        .ok_or_else(|| patron_app::AppError::NotFound { entity: "gift" }.into())
}

fn row_ctx(web: &Web, g: &GiftRecord, notice: bool) -> Value {
    context! { g => gift_ctx(web, g), can_manage => web.can(Permission::ManageGifts), notice }
}

async fn show_row(web: Web, Path(id): Path<String>) -> WebResult<Html<String>> {
    let g = gift(&web, &id).await?;
    web.fragment("loyalty/gift_row.html", row_ctx(&web, &g, false))
}

fn edit_ctx(web: &Web, g: &GiftRecord, values: BTreeMap<String, String>, c: &Check) -> Value {
    context! { g => gift_ctx(web, g), v => v(values), errors => v(&c.errors) }
}

async fn edit_row(web: Web, Path(id): Path<String>) -> WebResult<Html<String>> {
    let g = gift(&web, &id).await?;
    web.fragment(
        "loyalty/gift_edit.html",
        edit_ctx(&web, &g, values_of(Some(&g)), &Check::new(web.lang)),
    )
}

/// Saves a gift. Stock also falls as members take gifts: when it moved since the form was
/// shown, the new figure is shown instead of overwriting what was taken meanwhile.
async fn update(
    web: Web,
    Path(id): Path<String>,
    WebForm(form): WebForm<Vec<(String, String)>>,
) -> WebResult<Response> {
    let g = gift(&web, &id).await?;
    let f = Fields(form);
    let mut c = Check::new(web.lang);
    let mut values = f.values();
    if let Some(input) = parse_gift(&f, &mut c) {
        let now = g.stock.map(|s| s.to_string()).unwrap_or_default();
        if f.get("stock_shown") != now && input.stock != g.stock {
            c.err_args("stock", "loy-err-stock-moved", &[("now", now.clone())]);
            values.insert("stock_shown".into(), now);
        } else {
            match web.app.update_gift(&web.actor, g.id, &input).await {
                Ok(updated) => {
                    return Ok(web
                        .fragment("loyalty/gift_row.html", row_ctx(&web, &updated, true))?
                        .into_response());
                }
                Err(e) => c.app(e, &|f| Some(f.to_string()))?,
            }
        }
    }
    Ok(with_status(
        StatusCode::UNPROCESSABLE_ENTITY,
        web.fragment("loyalty/gift_edit.html", edit_ctx(&web, &g, values, &c))?,
    ))
}
