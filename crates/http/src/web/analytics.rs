//! Customer-value analytics pages (issue 8): the contribution quadrants with their
//! scatter chart, the migration heat map between two periods, RFM and the value pyramid,
//! the churn watch with card liveness, retention cohorts, and trends (levels, liability,
//! dishes bought together). Every list links to its customers and exports as CSV/Excel
//! through the JSON API's `format=` parameter.

use super::render::{WebError, WebResult};
use super::{Web, encode, ser};
use axum::Router;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::Html;
use axum::routing::get;
use chrono::NaiveDate;
use minijinja::context;
use patron_app::App;
use patron_app::analytics::{ChurnQuery, Listing, MigrationQuery, ValueQuery};
use patron_domain::analytics::{Quadrant, Tier};
use patron_domain::page::PageRequest;
use serde::Deserialize;

pub fn routes() -> Router<App> {
    Router::new()
        .route("/analytics", get(quadrants))
        .route("/analytics/quadrants/{quadrant}", get(quadrant_list))
        .route("/analytics/migration", get(migration))
        .route("/analytics/migration/{from}/{to}", get(migration_list))
        .route("/analytics/value", get(value))
        .route("/analytics/value/{tier}", get(tier_list))
        .route("/analytics/churn", get(churn))
        .route("/analytics/cohorts", get(cohorts))
        .route("/analytics/trends", get(trends))
        .route("/analytics/customer/{id}", get(customer_value))
}

/// The filter every analytics page takes from its query string (all optional; text, so
/// a bad value is reported on the page rather than refused by the extractor).
#[derive(Debug, Default, Deserialize)]
pub struct Filter {
    from: Option<String>,
    to: Option<String>,
    store: Option<String>,
    freq: Option<String>,
    spend: Option<String>,
    /// Second period (migration).
    b_from: Option<String>,
    b_to: Option<String>,
    k: Option<String>,
    page: Option<u32>,
}

fn blank(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn date(field: &str, s: &Option<String>) -> WebResult<Option<NaiveDate>> {
    super::forms::parse_date(s.as_deref()).map_err(|()| WebError {
        status: StatusCode::UNPROCESSABLE_ENTITY,
        code: "invalid_date".into(),
        message: format!(
            "{field}: {:?} is not a date (YYYY-MM-DD)",
            s.as_deref().unwrap_or("")
        ),
        redirect: None,
    })
}

impl Filter {
    fn value_query(&self) -> WebResult<ValueQuery> {
        let mut q = ValueQuery::new();
        q.from = date("from", &self.from)?;
        q.to = date("to", &self.to)?;
        q.store = blank(&self.store).map(str::to_string);
        q.freq_threshold = blank(&self.freq).map(str::to_string);
        // People type the spend threshold in yuan; the query takes fen.
        q.spend_threshold = match blank(&self.spend) {
            Some(s) => Some(
                patron_domain::money::Money::parse_yuan(s)
                    .map_err(|_| WebError {
                        status: StatusCode::UNPROCESSABLE_ENTITY,
                        code: "invalid_amount".into(),
                        message: format!("{s:?} is not an amount"),
                        redirect: None,
                    })?
                    .fen()
                    .to_string(),
            ),
            None => None,
        };
        Ok(q)
    }

    fn page(&self) -> PageRequest {
        PageRequest {
            page: self.page.unwrap_or(1).max(1),
            per_page: 50,
        }
    }

    /// The filter as a query string (without the page), for links and exports.
    fn qs(&self) -> String {
        let mut parts = vec![];
        for (k, v) in [
            ("from", &self.from),
            ("to", &self.to),
            ("store", &self.store),
            ("freq", &self.freq),
            ("spend", &self.spend),
            ("b_from", &self.b_from),
            ("b_to", &self.b_to),
            ("k", &self.k),
        ] {
            if let Some(v) = blank(v) {
                parts.push(format!("{k}={}", encode(v)));
            }
        }
        parts.join("&")
    }

    /// The same filter in the API's parameter names (exports).
    fn api_qs(&self) -> String {
        let mut parts = vec![];
        for (k, v) in [
            ("from", &self.from),
            ("to", &self.to),
            ("store", &self.store),
            ("freq_threshold", &self.freq),
        ] {
            if let Some(v) = blank(v) {
                parts.push(format!("{k}={}", encode(v)));
            }
        }
        parts.join("&")
    }

    fn echo(&self) -> minijinja::Value {
        context! {
            from => blank(&self.from), to => blank(&self.to), store => blank(&self.store),
            freq => blank(&self.freq), spend => blank(&self.spend),
            b_from => blank(&self.b_from), b_to => blank(&self.b_to), k => blank(&self.k),
            qs => self.qs(), api_qs => self.api_qs(),
        }
    }
}

/// What every analytics page shows around its report: the filter and the store list.
async fn frame(web: &Web, f: &Filter, tab: &str) -> WebResult<minijinja::Value> {
    let stores: Vec<_> = web
        .app
        .stores(&web.actor)
        .await?
        .into_iter()
        .map(|s| context! { code => s.code, name => s.name })
        .collect();
    Ok(context! { filter => f.echo(), stores, tab })
}

fn label(web: &Web, zh: &str, en: &str) -> String {
    if web.lang == super::i18n::Lang::Zh {
        zh.to_string()
    } else {
        en.to_string()
    }
}

async fn quadrants(web: Web, Query(f): Query<Filter>) -> WebResult<Html<String>> {
    let q = f.value_query()?;
    let r = web.app.quadrants(&web.actor, &q, 2_000).await?;
    let names: Vec<_> = r
        .quadrants
        .iter()
        .map(|v| context! { q => ser(v.quadrant), label => label(&web, &v.label_zh, &v.label_en) })
        .collect();
    let frame = frame(&web, &f, "quadrants").await?;
    web.page(
        "analytics/quadrants.html",
        "analytics",
        context! { r => ser(&r), names, ..frame },
    )
}

async fn quadrant_list(
    web: Web,
    Path(quadrant): Path<String>,
    Query(f): Query<Filter>,
) -> WebResult<Html<String>> {
    let quadrant: Quadrant = serde_json::from_value(serde_json::Value::String(quadrant))
        .map_err(|_| WebError::from(patron_app::AppError::NotFound { entity: "quadrant" }))?;
    let q = f.value_query()?;
    let list = web
        .app
        .quadrant_customers(&web.actor, &q, quadrant, Listing::Page(f.page()))
        .await?;
    let frame = frame(&web, &f, "quadrants").await?;
    let export = format!(
        "/api/v1/analytics/quadrants/{}/customers?{}",
        ser(quadrant),
        f.api_qs()
    );
    web.page(
        "analytics/customers.html",
        "analytics",
        context! {
            title => web.t(&format!("ana-quadrant-{}", ser(quadrant))),
            list => ser(&list), export, back => "/analytics",
            base => format!("/analytics/quadrants/{}?{}&", ser(quadrant), f.qs()),
            ..frame
        },
    )
}

fn migration_query(f: &Filter) -> WebResult<MigrationQuery> {
    Ok(MigrationQuery {
        a_from: date("from", &f.from)?,
        a_to: date("to", &f.to)?,
        b_from: date("b_from", &f.b_from)?,
        b_to: date("b_to", &f.b_to)?,
        store: blank(&f.store).map(str::to_string),
        freq_threshold: blank(&f.freq).map(str::to_string),
        spend_threshold: f.value_query()?.spend_threshold,
    })
}

async fn migration(web: Web, Query(f): Query<Filter>) -> WebResult<Html<String>> {
    let q = migration_query(&f)?;
    let r = web.app.migration(&web.actor, &q).await?;
    let frame = frame(&web, &f, "migration").await?;
    web.page(
        "analytics/migration.html",
        "analytics",
        context! { r => ser(&r), ..frame },
    )
}

async fn migration_list(
    web: Web,
    Path((from, to)): Path<(usize, usize)>,
    Query(f): Query<Filter>,
) -> WebResult<Html<String>> {
    let q = migration_query(&f)?;
    let list = web
        .app
        .migration_customers(&web.actor, &q, from, to, Listing::Page(f.page()))
        .await?;
    let frame = frame(&web, &f, "migration").await?;
    web.page(
        "analytics/migration_list.html",
        "analytics",
        context! {
            list => ser(&list),
            base => format!("/analytics/migration/{from}/{to}?{}&", f.qs()),
            ..frame
        },
    )
}

async fn value(web: Web, Query(f): Query<Filter>) -> WebResult<Html<String>> {
    let q = f.value_query()?;
    let rfm = web.app.rfm(&web.actor, &q).await?;
    let pyramid = web.app.pyramid(&web.actor, &q).await?;
    let frame = frame(&web, &f, "value").await?;
    web.page(
        "analytics/value.html",
        "analytics",
        context! { rfm => ser(&rfm), pyramid => ser(&pyramid), ..frame },
    )
}

async fn tier_list(
    web: Web,
    Path(tier): Path<String>,
    Query(f): Query<Filter>,
) -> WebResult<Html<String>> {
    let tier: Tier = serde_json::from_value(serde_json::Value::String(tier))
        .map_err(|_| WebError::from(patron_app::AppError::NotFound { entity: "tier" }))?;
    let q = f.value_query()?;
    let list = web
        .app
        .pyramid_customers(&web.actor, &q, tier, Listing::Page(f.page()))
        .await?;
    let frame = frame(&web, &f, "value").await?;
    let export = format!(
        "/api/v1/analytics/pyramid/{}/customers?{}",
        ser(tier),
        f.api_qs()
    );
    web.page(
        "analytics/customers.html",
        "analytics",
        context! {
            title => web.t(&format!("ana-tier-{}", ser(tier))),
            list => ser(&list), export, back => "/analytics/value",
            base => format!("/analytics/value/{}?{}&", ser(tier), f.qs()),
            ..frame
        },
    )
}

async fn churn(web: Web, Query(f): Query<Filter>) -> WebResult<Html<String>> {
    let q = ChurnQuery {
        as_of: date("to", &f.to)?,
        from: date("from", &f.from)?,
        store: blank(&f.store).map(str::to_string),
        k: blank(&f.k).map(str::to_string),
        min_visits: None,
    };
    let r = web
        .app
        .churn_watch(&web.actor, &q, Listing::Page(f.page()))
        .await?;
    let live = web.app.card_liveness(&web.actor, q.as_of, None).await?;
    let frame = frame(&web, &f, "churn").await?;
    web.page(
        "analytics/churn.html",
        "analytics",
        context! {
            r => ser(&r), live => ser(&live),
            base => format!("/analytics/churn?{}&", f.qs()),
            ..frame
        },
    )
}

async fn cohorts(web: Web, Query(f): Query<Filter>) -> WebResult<Html<String>> {
    // Cohorts are by month: the filter's dates are cut to YYYY-MM.
    let month = |s: &Option<String>| blank(s).map(|v| v.chars().take(7).collect::<String>());
    let (from, to) = (month(&f.from), month(&f.to));
    let r = web
        .app
        .cohorts(&web.actor, from.as_deref(), to.as_deref(), blank(&f.store))
        .await?;
    let frame = frame(&web, &f, "cohorts").await?;
    web.page(
        "analytics/cohorts.html",
        "analytics",
        context! { r => ser(&r), ..frame },
    )
}

async fn trends(web: Web, Query(f): Query<Filter>) -> WebResult<Html<String>> {
    let (from, to, store) = (date("from", &f.from)?, date("to", &f.to)?, blank(&f.store));
    let levels = web.app.level_distribution(&web.actor).await?;
    let liability = web
        .app
        .liability_series(&web.actor, from, to, None, store)
        .await?;
    let affinity = web
        .app
        .affinity(&web.actor, from, to, store, None, Some(20))
        .await?;
    let frame = frame(&web, &f, "trends").await?;
    web.page(
        "analytics/trends.html",
        "analytics",
        context! {
            levels => ser(&levels), liability => ser(&liability), affinity => ser(&affinity),
            ..frame
        },
    )
}

/// The customer's value in one box, for the customer 360 page (loaded by htmx): quadrant,
/// RFM score, tier, lifetime value and churn risk.
async fn customer_value(web: Web, Path(id): Path<String>) -> WebResult<Html<String>> {
    let id = uuid::Uuid::parse_str(&id)
        .map(patron_domain::ids::CustomerId)
        .map_err(|_| WebError::from(patron_app::AppError::NotFound { entity: "customer" }))?;
    let v = web.app.customer_value(&web.actor, id).await?;
    web.fragment("analytics/customer_value.html", context! { v => ser(&v) })
}
