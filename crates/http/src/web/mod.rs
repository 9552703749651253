//! The web back office: server-rendered pages (minijinja templates in
//! `crates/http/web/templates`, messages in `crates/http/web/locales`) with htmx for
//! partial updates and ECharts for charts, every asset embedded in the binary.
//!
//! Handlers are as thin as the API's: extract [`Web`] (the logged-in staff member, the
//! language), call one use case, render a template. Changes are sent by htmx with the
//! session's CSRF token in `X-CSRF-Token` (set once on `<body hx-headers>`), so the same
//! CSRF rule as the API applies.

mod analytics;
mod assets;
mod cards;
mod customers;
mod dashboard;
mod forms;
pub mod i18n;
mod loyalty;
pub mod render;
mod session;
mod settlement;
mod till;

pub use forms::{FormErrors, WebForm, parse_money};
pub use render::{WebError, WebResult, render, see_other};

use crate::extract::{TokenSource, csrf_passes, request_token};
use axum::Router;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{Html, Response};
use axum::routing::{get, post};
use i18n::Lang;
use minijinja::Value;
use patron_app::{Actor, App};
use render::{REQUEST, RequestCtx};

/// Every page of the back office (mounted at `/`).
pub fn routes() -> Router<App> {
    Router::new()
        .route("/", get(dashboard::page))
        .route("/login", get(session::login_page).post(session::login))
        .route("/logout", post(session::logout))
        .route("/lang/{tag}", get(session::switch_language))
        .route("/assets/{*path}", get(assets::serve))
        .merge(customers::routes())
        .merge(cards::routes())
        .merge(till::routes())
        .merge(loyalty::routes())
        .merge(settlement::routes())
        .merge(analytics::routes())
        .layer(axum::middleware::from_fn(request_context))
}

/// Sets the request's language and kind for everything rendered while answering it.
async fn request_context(req: Request, next: Next) -> Response {
    let ctx = RequestCtx {
        lang: Lang::negotiate(req.headers()),
        htmx: req.headers().contains_key("hx-request"),
        utc_offset_minutes: 480,
    };
    REQUEST.scope(ctx, next.run(req)).await
}

/// A page request by a logged-in staff member. Without a session the browser is sent to
/// the login page (and back afterwards); a change without the CSRF token is refused.
pub struct Web {
    pub app: App,
    pub actor: Actor,
    pub lang: Lang,
    pub csrf: String,
    pub htmx: bool,
    /// Path and query of this request (for the language switch's way back).
    pub here: String,
    pub utc_offset_minutes: i32,
}

impl FromRequestParts<App> for Web {
    type Rejection = WebError;
    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, WebError> {
        let req = RequestCtx::current();
        let here = parts
            .uri
            .path_and_query()
            .map_or("/".to_string(), |p| p.as_str().to_string());
        let to_login = || WebError::redirect(format!("/login?next={}", encode(&here)));
        let (token, source) = request_token(parts).ok_or_else(to_login)?;
        let actor = match app.authenticate(&token).await {
            Ok(a) => a,
            Err(patron_app::AppError::Unauthenticated) => return Err(to_login()),
            Err(e) => return Err(e.into()),
        };
        if source == TokenSource::Cookie && !csrf_passes(parts, &token, source) {
            return Err(WebError {
                status: axum::http::StatusCode::FORBIDDEN,
                code: "csrf_failed".into(),
                message: "the page was out of date; reload it and try again".into(),
                redirect: None,
            });
        }
        let settings = app.settings(&actor).await?;
        Ok(Web {
            app: app.clone(),
            csrf: patron_app::auth::csrf_token(&token),
            actor,
            lang: req.lang,
            htmx: req.htmx,
            here,
            utc_offset_minutes: settings.utc_offset_minutes,
        })
    }
}

/// One entry of the side navigation.
struct NavItem {
    key: &'static str,
    href: &'static str,
    /// Shown only to those who hold this permission.
    needs: patron_domain::permissions::Permission,
}

const NAV: &[NavItem] = {
    use patron_domain::permissions::Permission as P;
    &[
        NavItem {
            key: "dashboard",
            href: "/",
            needs: P::ViewCustomers,
        },
        NavItem {
            key: "till",
            href: "/till",
            needs: P::Checkout,
        },
        NavItem {
            key: "customers",
            href: "/customers",
            needs: P::ViewCustomers,
        },
        NavItem {
            key: "cards",
            href: "/cards",
            needs: P::ViewCards,
        },
        NavItem {
            key: "loyalty",
            href: "/loyalty",
            needs: P::ManageCoupons,
        },
        NavItem {
            key: "settlement",
            href: "/settlement",
            needs: P::ViewFinance,
        },
        NavItem {
            key: "analytics",
            href: "/analytics",
            needs: P::ViewReports,
        },
    ]
};

impl Web {
    /// The context every page gets: language, staff member, navigation, CSRF token.
    pub fn base(&self, active: &str) -> Value {
        let perms: Vec<String> = self
            .actor
            .permissions()
            .iter()
            .map(|p| {
                serde_json::to_value(p)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            })
            .collect();
        let nav: Vec<Value> = NAV
            .iter()
            .filter(|n| self.actor.require(n.needs).is_ok())
            .map(|n| {
                minijinja::context! {
                    key => n.key,
                    href => n.href,
                    label => self.lang.t(&format!("nav-{}", n.key)),
                    active => n.key == active,
                }
            })
            .collect();
        minijinja::context! {
            lang => self.lang.tag(),
            other_lang => match self.lang { Lang::Zh => "en", Lang::En => "zh-CN" },
            csrf => &self.csrf,
            here => encode(&self.here),
            utc_offset_minutes => self.utc_offset_minutes,
            me => minijinja::context! {
                name => &self.actor.display_name,
                role => self.lang.t(&format!("role-{}", self.actor.role.as_str())),
                store_id => self.actor.store_id.map(|s| s.to_string()),
            },
            perms => perms,
            nav => nav,
            active => active,
        }
    }

    /// Renders a whole page (or, for htmx requests to the same URL, still the page:
    /// fragments have their own templates and [`Web::fragment`]).
    pub fn page(&self, template: &str, active: &str, ctx: Value) -> WebResult<Html<String>> {
        render(template, merge(self.base(active), ctx))
    }

    /// Renders a fragment for htmx, with the same base context.
    pub fn fragment(&self, template: &str, ctx: Value) -> WebResult<Html<String>> {
        render(template, merge(self.base(""), ctx))
    }

    pub fn t(&self, key: &str) -> String {
        self.lang.t(key)
    }

    /// May this staff member do `p`? (to show or hide buttons).
    pub fn can(&self, p: patron_domain::permissions::Permission) -> bool {
        self.actor.require(p).is_ok()
    }
}

/// Any serializable value (a use case's report, a view) for a template context:
/// `context! { report => ser(&report) }`.
pub fn ser<T: serde::Serialize>(t: T) -> Value {
    Value::from(minijinja::value::Serde(t))
}

/// `extra` over `base` (keys of `extra` win: in a spread, the first map wins).
pub fn merge(base: Value, extra: Value) -> Value {
    minijinja::context! { ..extra, ..base }
}

/// Percent-encodes a path for a query parameter.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
