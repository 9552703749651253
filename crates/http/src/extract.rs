//! Extractors whose rejections are JSON errors in the API's format, and the
//! authentication extractor.

use crate::error::ApiError;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use patron_app::{Actor, App};
use serde::de::DeserializeOwned;

/// Name of the cookie holding the session token for browsers.
pub const SESSION_COOKIE: &str = "patron_session";

/// JSON body; malformed JSON → 400 `invalid_json`, too large → 413, wrong type → 415, a
/// control character in any string (NUL, ESC, backspace...; line breaks and tabs are
/// text) → 422 `invalid_characters` naming the field: none can reach storage (PostgreSQL
/// cannot store NUL at all), a receipt or a log line, whatever the field.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !json_content_type(req.headers()) {
            return Err(json_rejection(JsonRejection::MissingJsonContentType(
                Default::default(),
            )));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|rej| {
                if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "body_too_large",
                        "the request body is larger than 1 MiB",
                    )
                } else {
                    ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", rej.body_text())
                }
            })?;
        let axum::Json(v) = axum::Json::<T>::from_bytes(&bytes).map_err(json_rejection)?;
        if let Some(field) = control_character(&bytes) {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_characters",
                "control characters are not allowed (line breaks and tabs are)",
            )
            .with_field(field));
        }
        Ok(Json(v))
    }
}

/// `application/json` or `application/*+json`, as axum's own extractor accepts.
fn json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(ct) = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence
        .split_once('/')
        .is_some_and(|(ty, sub)| ty == "application" && (sub == "json" || sub.ends_with("+json")))
}

fn forbidden(c: char) -> bool {
    c.is_control() && !matches!(c, '\n' | '\r' | '\t')
}

/// The path (`lines[0].name`) of the first string of a valid JSON body holding a control
/// character other than a line break or tab, if any. Raw C0 controls are invalid JSON, so
/// only an escape (`\u0000`, `\b`, `\f`), DEL or a C1 character can bring one: bodies
/// without any of those (nearly all) are not parsed a second time.
fn control_character(bytes: &[u8]) -> Option<String> {
    let suspect = bytes.windows(2).any(|w| {
        (w[0] == b'\\' && matches!(w[1], b'u' | b'b' | b'f'))
            || (w[0] == 0xc2 && (0x80..=0x9f).contains(&w[1]))
    }) || bytes.contains(&0x7f);
    if !suspect {
        return None;
    }
    fn walk(v: &serde_json::Value, path: &str) -> Option<String> {
        match v {
            serde_json::Value::String(s) => s.chars().any(forbidden).then(|| path.to_string()),
            serde_json::Value::Array(items) => items
                .iter()
                .enumerate()
                .find_map(|(i, x)| walk(x, &format!("{path}[{i}]"))),
            serde_json::Value::Object(map) => map.iter().find_map(|(k, x)| {
                let here = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                if k.chars().any(forbidden) {
                    return Some(here);
                }
                walk(x, &here)
            }),
            _ => None,
        }
    }
    let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    walk(&value, "").map(|p| if p.is_empty() { "body".into() } else { p })
}

fn json_rejection(rej: JsonRejection) -> ApiError {
    let status = rej.status();
    let text = rej.body_text();
    match rej {
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as application/json",
        ),
        JsonRejection::JsonDataError(_) => {
            // serde names the field in its message ("unknown field `x`", "invalid type ... at line").
            let field = text.split('`').nth(1).map(str::to_string);
            let mut e = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", text);
            e.detail.field = field;
            e
        }
        JsonRejection::JsonSyntaxError(_) => {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", text)
        }
        _ if status == StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            "the request body is larger than 1 MiB",
        ),
        _ => ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", text),
    }
}

/// Query string; a malformed parameter → 400 `invalid_query`.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(v)| Query(v))
            .map_err(|e: QueryRejection| {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", e.body_text())
            })
    }
}

/// Path parameters; an id that is not a UUID → 404 (no such record can exist).
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| Path(v))
            .map_err(|e: PathRejection| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    format!("no such record ({})", e.body_text()),
                )
            })
    }
}

/// The authenticated staff member: from `Authorization: Bearer <token>` or the session
/// cookie. Missing or expired → 401. Requests authenticated by the cookie that may change
/// something (POST, PUT, PATCH, DELETE) must also carry the session's CSRF token in
/// `X-CSRF-Token` (see [`csrf_passes`]); bearer requests are exempt, since a browser never
/// adds that header on its own.
pub struct Auth(pub Actor);

/// Name of the readable cookie holding the CSRF token for browsers.
pub const CSRF_COOKIE: &str = "patron_csrf";
/// The header a browser page echoes the CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Where a request's token came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    Bearer,
    Cookie,
}

/// The raw token of the request, for logout.
pub fn bearer_token(parts: &Parts) -> Option<String> {
    request_token(parts).map(|(t, _)| t)
}

/// The request's token and where it came from: the `Authorization` header first, else
/// the session cookie.
pub fn request_token(parts: &Parts) -> Option<(String, TokenSource)> {
    if let Some(v) = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        && let Some(t) = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
    {
        return Some((t.trim().to_string(), TokenSource::Bearer));
    }
    cookie(&parts.headers, SESSION_COOKIE).map(|t| (t, TokenSource::Cookie))
}

/// A cookie's value from the request headers (the session cookie here; the language
/// and device cookies for the web pages).
pub fn cookie(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|s| s.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// CSRF protection for cookie sessions: an unsafe method must echo the session's CSRF
/// token (`patron_app::auth::csrf_token`, also in the `patron_csrf` cookie and the login
/// response) in `X-CSRF-Token`. Another site can make a browser send the cookie but can
/// neither read the token nor set the header. Bearer requests and safe methods pass.
pub fn csrf_passes(parts: &Parts, token: &str, source: TokenSource) -> bool {
    let safe = matches!(
        parts.method,
        axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::OPTIONS
    );
    if source == TokenSource::Bearer || safe {
        return true;
    }
    let expected = patron_app::auth::csrf_token(token);
    let given = parts
        .headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // Both are hex of fixed length; compare without an early exit anyway.
    given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// 403 `csrf_failed`: a cookie-authenticated change without the CSRF token.
pub fn csrf_rejection() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "csrf_failed",
        "requests authenticated by the session cookie must send the X-CSRF-Token header \
         (the value of the patron_csrf cookie)",
    )
}

impl FromRequestParts<App> for Auth {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, ApiError> {
        let (token, source) = request_token(parts).ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "log in first: send Authorization: Bearer <token>",
            )
        })?;
        let actor = app.authenticate(&token).await?;
        if !csrf_passes(parts, &token, source) {
            return Err(csrf_rejection());
        }
        Ok(Auth(actor))
    }
}

/// The client's address (from the connection; `None` when the server was started
/// without connection info). Proxies' `X-Forwarded-For` is not trusted.
pub struct ClientIp(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Ok(ClientIp(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}
