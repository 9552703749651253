//! Logging in and out of the back office, and choosing the language.

use super::i18n::{LANG_COOKIE, Lang, cookie};
use super::render::{RequestCtx, WebResult, render, see_other};
use super::{FormErrors, Web, WebForm};
use crate::extract::ClientIp;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use patron_app::App;
use serde::Deserialize;

/// Remembers the tenant and store typed at the last login on this device, so a cashier
/// types only a name and password.
const DEVICE_COOKIE: &str = "patron_device";

#[derive(Deserialize, Default)]
pub struct Next {
    next: Option<String>,
}

/// Only local paths: never send a browser to another site after logging in.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_string(),
        _ => "/".into(),
    }
}

pub async fn login_page(headers: HeaderMap, Query(q): Query<Next>) -> WebResult<Response> {
    let (tenant, store) = device(&headers);
    Ok(login_form(
        &tenant,
        "",
        &store,
        &safe_next(q.next.as_deref()),
        &FormErrors::default(),
    )?
    .into_response())
}

fn device(headers: &HeaderMap) -> (String, String) {
    let v = cookie(headers, DEVICE_COOKIE).unwrap_or_default();
    let (t, s) = v.split_once(':').unwrap_or((&v, ""));
    (t.to_string(), s.to_string())
}

fn login_form(
    tenant: &str,
    username: &str,
    store: &str,
    next: &str,
    errors: &FormErrors,
) -> WebResult<axum::response::Html<String>> {
    let lang = RequestCtx::current().lang;
    render(
        "login.html",
        minijinja::context! {
            lang => lang.tag(),
            other_lang => match lang { Lang::Zh => "en", Lang::En => "zh-CN" },
            here => super::encode(&format!("/login?next={}", super::encode(next))),
            tenant, username, store, next,
            errors => super::ser(errors),
        },
    )
}

#[derive(Deserialize)]
pub struct LoginForm {
    tenant: String,
    username: String,
    password: String,
    #[serde(default)]
    store: String,
    #[serde(default)]
    next: Option<String>,
}

pub async fn login(
    State(app): State<App>,
    ClientIp(ip): ClientIp,
    WebForm(f): WebForm<LoginForm>,
) -> WebResult<Response> {
    let lang = RequestCtx::current().lang;
    let next = safe_next(f.next.as_deref());
    let store = f.store.trim();
    let mut errors = FormErrors::default();
    for (field, value) in [
        ("tenant", &f.tenant),
        ("username", &f.username),
        ("password", &f.password),
    ] {
        if value.trim().is_empty() {
            errors.field(lang, field, "required");
        }
    }
    if errors.is_empty() {
        let store_opt = (!store.is_empty()).then_some(store);
        match app
            .login_from(
                f.tenant.trim(),
                f.username.trim(),
                &f.password,
                store_opt,
                ip,
            )
            .await
        {
            Ok(out) => {
                let mut headers = crate::api::auth::session_cookies(&app, &out)
                    .map_err(|_| super::WebError::internal("cookie".into()))?;
                let device = format!(
                    "{DEVICE_COOKIE}={}:{}; SameSite=Strict; Path=/; Max-Age=31536000",
                    super::encode(f.tenant.trim()),
                    super::encode(store)
                );
                if let Ok(v) = HeaderValue::from_str(&device) {
                    headers.append(header::SET_COOKIE, v);
                }
                return Ok((headers, see_other(&next, false)).into_response());
            }
            Err(e) => errors = FormErrors::from_app(e)?,
        }
    }
    let mut res = login_form(&f.tenant, &f.username, store, &next, &errors)?.into_response();
    *res.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
    Ok(res)
}

pub async fn logout(web: Web, parts: axum::http::request::Parts) -> WebResult<Response> {
    if let Some((token, _)) = crate::extract::request_token(&parts) {
        web.app.logout(&token).await?;
    }
    let mut res = see_other("/login", web.htmx);
    let h = res.headers_mut();
    h.append(
        header::SET_COOKIE,
        HeaderValue::from_static("patron_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
    );
    h.append(
        header::SET_COOKIE,
        HeaderValue::from_static("patron_csrf=; SameSite=Strict; Path=/; Max-Age=0"),
    );
    Ok(res)
}

/// `GET /lang/en?next=/customers`: remember the language, go back.
pub async fn switch_language(Path(tag): Path<String>, Query(q): Query<Next>) -> Response {
    let lang = Lang::from_tag(&tag).unwrap_or(Lang::Zh);
    let mut res = see_other(&safe_next(q.next.as_deref()), false);
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{LANG_COOKIE}={}; SameSite=Lax; Path=/; Max-Age=31536000",
        lang.tag()
    )) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}
