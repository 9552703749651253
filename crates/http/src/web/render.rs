//! Templates (minijinja, embedded from `crates/http/web/templates`) and what every page
//! gets: the language, the logged-in staff member, the CSRF token, formatting filters and
//! `t()` for messages. Also [`WebError`]: an error shown as a page (or, for htmx
//! requests, a fragment) in the user's language.

use super::i18n::{self, Lang};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use minijinja::value::{Kwargs, Value};
use minijinja::{Environment, State};
use patron_app::AppError;
use patron_domain::money::Money;
use rust_embed::RustEmbed;
use std::sync::OnceLock;

#[derive(RustEmbed)]
#[folder = "web/templates"]
struct Templates;

tokio::task_local! {
    /// The current web request's language and kind, set by [`super::request_context`];
    /// lets an error become a page in the right language without threading it through.
    pub static REQUEST: RequestCtx;
}

/// What rendering needs to know about the request being answered.
#[derive(Debug, Clone)]
pub struct RequestCtx {
    pub lang: Lang,
    /// Sent by htmx (`HX-Request`): answer with a fragment, not a whole page.
    pub htmx: bool,
    /// The tenant's UTC offset for showing times (set once the staff member is known).
    pub utc_offset_minutes: i32,
}

impl RequestCtx {
    pub fn current() -> RequestCtx {
        REQUEST.try_with(Clone::clone).unwrap_or(RequestCtx {
            lang: Lang::Zh,
            htmx: false,
            utc_offset_minutes: 480,
        })
    }
}

fn lang_of(state: &State) -> Lang {
    state
        .lookup("lang")
        .and_then(|v| v.as_str().and_then(Lang::from_tag))
        .unwrap_or_else(|| RequestCtx::current().lang)
}

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_loader(|name| {
            Ok(Templates::get(name).map(|f| String::from_utf8_lossy(&f.data).into_owned()))
        });
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
        // t("key", name=value, ...): the message in the page's language.
        env.add_function("t", |state: &State, key: &str, kwargs: Kwargs| {
            let lang = lang_of(state);
            let args: Vec<(String, String)> = kwargs
                .args()
                .map(|k| {
                    let v: Value = kwargs.get(k).unwrap_or_default();
                    (k.to_string(), v.to_string())
                })
                .collect();
            if args.is_empty() {
                Ok(lang.t(key))
            } else {
                let refs: Vec<(&str, String)> =
                    args.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
                Ok(lang.t_args(key, &refs))
            }
        });
        // {{ fen|money }} → ¥1,234.56 (accepts an integer of fen).
        env.add_filter("money", |v: Value| -> String {
            i64::try_from(v.clone())
                .map(|f| i18n::money(Money::from_fen(f)))
                .unwrap_or_else(|_| v.to_string())
        });
        // {{ fen|yuan }} → 1234.56 (for form inputs).
        env.add_filter("yuan", |v: Value| -> String {
            i64::try_from(v.clone())
                .map(|f| Money::from_fen(f).to_decimal_string())
                .unwrap_or_default()
        });
        // {{ n|num }} → 12,345
        env.add_filter("num", |v: Value| -> String {
            match i64::try_from(v.clone()) {
                Ok(n) if n < 0 => format!("-{}", i18n::group(n.unsigned_abs())),
                Ok(n) => i18n::group(n as u64),
                Err(_) => v.to_string(),
            }
        });
        // {{ bp|pct }} → 12.5% (basis points).
        env.add_filter("pct", |v: Value| -> String {
            match i64::try_from(v.clone()) {
                Ok(bp) => {
                    let s = format!("{}.{:02}", bp / 100, (bp % 100).abs());
                    let s = s.trim_end_matches('0').trim_end_matches('.');
                    format!("{s}%")
                }
                Err(_) => v.to_string(),
            }
        });
        // {{ "2026-11-24"|date }} → 2026年11月24日 / 24 Nov 2026
        env.add_filter("date", |state: &State, v: Value| -> String {
            let s = v.to_string();
            let lang = lang_of(state);
            if let Ok(d) = s.parse::<NaiveDate>() {
                lang.date(d)
            } else if let Ok(t) = s.parse::<DateTime<Utc>>() {
                lang.date(t.with_timezone(&offset(state)).date_naive())
            } else {
                s
            }
        });
        // {{ timestamp|datetime }} in the tenant's local time.
        env.add_filter("datetime", |state: &State, v: Value| -> String {
            let s = v.to_string();
            match s.parse::<DateTime<Utc>>() {
                Ok(t) => lang_of(state).datetime(t, offset(state)),
                Err(_) => s,
            }
        });
        env
    })
}

fn offset(state: &State) -> FixedOffset {
    let minutes = state
        .lookup("utc_offset_minutes")
        .and_then(|v| i64::try_from(v).ok())
        .unwrap_or_else(|| i64::from(RequestCtx::current().utc_offset_minutes));
    FixedOffset::east_opt((minutes * 60) as i32).unwrap_or(FixedOffset::east_opt(0).unwrap())
}

/// Renders `template` with `ctx`; a template error is a bug and becomes a 500 page.
pub fn render(template: &str, ctx: Value) -> Result<Html<String>, WebError> {
    let tpl = env()
        .get_template(template)
        .map_err(|e| WebError::internal(format!("template {template}: {e:#}")))?;
    tpl.render(ctx)
        .map(Html)
        .map_err(|e| WebError::internal(format!("template {template}: {e:#}")))
}

/// An error answered as a page in the user's language.
#[derive(Debug)]
pub struct WebError {
    pub status: StatusCode,
    /// Machine-readable code (`not_found`, `forbidden`, ...), also the message key `err-<code>`.
    pub code: String,
    /// The English message from the layer below (shown when no translation exists).
    pub message: String,
    /// Where to send the browser instead (e.g. the login page).
    pub redirect: Option<String>,
}

impl WebError {
    pub fn internal(detail: String) -> WebError {
        tracing::error!(error = %detail, "web page failed");
        WebError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal".into(),
            message: "internal error; it has been logged".into(),
            redirect: None,
        }
    }

    pub fn redirect(to: impl Into<String>) -> WebError {
        WebError {
            status: StatusCode::SEE_OTHER,
            code: "redirect".into(),
            message: String::new(),
            redirect: Some(to.into()),
        }
    }

    /// The message in `lang`: `err-<code>` from the catalogue, else the message as is.
    pub fn localized(&self, lang: Lang) -> String {
        lang.try_t(&format!("err-{}", self.code))
            .unwrap_or_else(|| self.message.clone())
    }
}

impl From<AppError> for WebError {
    fn from(e: AppError) -> Self {
        let api = crate::error::ApiError::from(e);
        WebError {
            status: api.status,
            code: api.detail.code.clone(),
            message: api.detail.message.clone(),
            redirect: None,
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let req = RequestCtx::current();
        if let Some(to) = &self.redirect {
            return see_other(to, req.htmx);
        }
        if self.status == StatusCode::UNAUTHORIZED {
            return see_other("/login", req.htmx);
        }
        let message = self.localized(req.lang);
        let template = if req.htmx {
            "error_fragment.html"
        } else {
            "error.html"
        };
        let ctx = minijinja::context! {
            lang => req.lang.tag(),
            status => self.status.as_u16(),
            code => self.code,
            message => &message,
        };
        match render(template, ctx) {
            Ok(html) => (self.status, html).into_response(),
            Err(_) => (self.status, message).into_response(),
        }
    }
}

/// A redirect that works for plain navigation (303) and for htmx (`HX-Redirect`).
pub fn see_other(to: &str, htmx: bool) -> Response {
    let value = HeaderValue::from_str(to).unwrap_or(HeaderValue::from_static("/"));
    if htmx {
        let mut res = StatusCode::NO_CONTENT.into_response();
        res.headers_mut().insert("hx-redirect", value);
        res
    } else {
        let mut res = StatusCode::SEE_OTHER.into_response();
        res.headers_mut()
            .insert(axum::http::header::LOCATION, value);
        res
    }
}

pub type WebResult<T> = Result<T, WebError>;
