//! Form handling for pages: a form extractor whose rejection is a page error, errors
//! shown next to their fields in the user's language, and input parsing.

use super::i18n::Lang;
use super::render::{RequestCtx, WebError};
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use patron_app::AppError;
use patron_domain::money::Money;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;

/// An `application/x-www-form-urlencoded` body; a malformed one is a 400 page.
pub struct WebForm<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for WebForm<T> {
    type Rejection = WebError;
    async fn from_request(req: Request, state: &S) -> Result<Self, WebError> {
        let (parts, body) = req.into_parts();
        let bytes = axum::body::to_bytes(body, 1024 * 1024)
            .await
            .map_err(|_| WebError {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                code: "body_too_large".into(),
                message: "the form is larger than 1 MiB".into(),
                redirect: None,
            })?;
        // The same rule as the JSON API: no control characters but line breaks and tabs
        // in any value (a NUL would fail on PostgreSQL; none is ever meant).
        if let Some((field, _)) = form_urlencoded::parse(&bytes).find(|(_, v)| {
            v.chars()
                .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        }) {
            return Err(WebError {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                code: "invalid_characters".into(),
                message: format!("{field}: control characters are not allowed"),
                redirect: None,
            });
        }
        let req = Request::from_parts(parts, axum::body::Body::from(bytes));
        axum::Form::<T>::from_request(req, state)
            .await
            .map(|axum::Form(v)| WebForm(v))
            .map_err(|e| WebError {
                status: StatusCode::BAD_REQUEST,
                code: "invalid_form".into(),
                message: e.body_text(),
                redirect: None,
            })
    }
}

/// What went wrong with a submitted form: one message per field, and one for the form.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct FormErrors {
    pub fields: BTreeMap<String, String>,
    pub general: Option<String>,
}

impl FormErrors {
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.general.is_none()
    }

    /// A field's error by message key (`err-<code>` in the catalogues).
    pub fn field(&mut self, lang: Lang, field: &str, code: &str) {
        self.fields
            .insert(field.to_string(), lang.t(&format!("err-{code}")));
    }

    /// The errors an attempt ended with, in the user's language. Server faults (5xx)
    /// stay errors: they are not the user's to fix.
    pub fn from_app(e: AppError) -> Result<FormErrors, WebError> {
        let lang = RequestCtx::current().lang;
        let api = crate::error::ApiError::from(e);
        if api.status.is_server_error() {
            return Err(WebError {
                status: api.status,
                code: api.detail.code.clone(),
                message: api.detail.message.clone(),
                redirect: None,
            });
        }
        let mut out = FormErrors::default();
        for f in &api.detail.fields {
            let msg = lang
                .try_t(&format!("err-{}", f.code))
                .unwrap_or_else(|| f.message.clone());
            out.fields.insert(f.field.clone(), msg);
        }
        let msg = lang
            .try_t(&format!("err-{}", api.detail.code))
            .unwrap_or_else(|| api.detail.message.clone());
        match (&api.detail.field, api.detail.fields.is_empty()) {
            (Some(field), true) => {
                out.fields.insert(field.clone(), msg);
            }
            (_, true) => out.general = Some(msg),
            _ => {}
        }
        Ok(out)
    }
}

/// A yuan amount typed by a person ("128", "128.5", "¥1,280.00"); empty is `None`.
/// A date typed into a form or a URL (YYYY-MM-DD); blank is `None`, anything else `Err`.
pub fn parse_date(s: Option<&str>) -> Result<Option<chrono::NaiveDate>, ()> {
    match s.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => s.parse().map(Some).map_err(|_| ()),
    }
}

pub fn parse_money(errors: &mut FormErrors, lang: Lang, field: &str, input: &str) -> Option<Money> {
    let s: String = input.trim().chars().filter(|c| *c != ',').collect();
    if s.is_empty() {
        return None;
    }
    match Money::parse_yuan(&s) {
        Ok(m) => Some(m),
        Err(_) => {
            errors.field(lang, field, "invalid_amount");
            None
        }
    }
}
