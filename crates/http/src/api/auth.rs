use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{
    Auth, CSRF_COOKIE, ClientIp, Json, SESSION_COOKIE, csrf_passes, csrf_rejection, request_token,
};
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use patron_app::App;
use patron_app::auth::LoginOutcome;
use patron_domain::ids::{StaffId, StoreId, TenantId};
use patron_domain::org::Role;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// The tenant's code, e.g. "demo".
    tenant: String,
    username: String,
    password: String,
    /// The code of the store you are working at (chain-wide staff); optional.
    store: Option<String>,
}

/// Logs in. The token comes back in the body (for POS and scripts) and as an HttpOnly,
/// SameSite=Strict cookie (for browsers), with the CSRF token as a readable cookie. The
/// session ends after 30 minutes unused (12 hours at most). Five failed attempts for a
/// username within 15 minutes (or twenty from one address) refuse further attempts with
/// 429 `too_many_attempts` and a `Retry-After` header.
#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = LoginOutcome), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody)))]
pub async fn login(
    State(app): State<App>,
    ClientIp(ip): ClientIp,
    Json(req): Json<LoginRequest>,
) -> ApiResult<impl IntoResponse> {
    let out = app
        .login_from(
            &req.tenant,
            &req.username,
            &req.password,
            req.store.as_deref(),
            ip,
        )
        .await?;
    let headers = session_cookies(&app, &out)?;
    Ok((headers, axum::Json(out)))
}

/// The session and CSRF cookies a successful login sets (shared with the web pages).
/// They live as long as a session can; the server ends idle sessions earlier.
pub(crate) fn session_cookies(app: &App, out: &LoginOutcome) -> ApiResult<HeaderMap> {
    let max_age = app.session_ttl.num_seconds().max(0);
    let mut headers = HeaderMap::new();
    for cookie in [
        format!(
            "{SESSION_COOKIE}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}",
            out.token
        ),
        format!(
            "{CSRF_COOKIE}={}; SameSite=Strict; Path=/; Max-Age={max_age}",
            out.csrf_token
        ),
    ] {
        headers.append(
            header::SET_COOKIE,
            HeaderValue::from_str(&cookie).map_err(|_| {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "cookie")
            })?,
        );
    }
    Ok(headers)
}

/// Ends the current session.
#[utoipa::path(post, path = "/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody)))]
pub async fn logout(State(app): State<App>, parts: Parts) -> ApiResult<impl IntoResponse> {
    let (token, source) = request_token(&parts).ok_or_else(|| {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", "not logged in")
    })?;
    app.authenticate(&token).await?;
    if !csrf_passes(&parts, &token, source) {
        return Err(csrf_rejection());
    }
    app.logout(&token).await?;
    let mut headers = HeaderMap::new();
    headers.append(
        header::SET_COOKIE,
        HeaderValue::from_static("patron_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
    );
    headers.append(
        header::SET_COOKIE,
        HeaderValue::from_static("patron_csrf=; SameSite=Strict; Path=/; Max-Age=0"),
    );
    Ok((StatusCode::NO_CONTENT, headers))
}

/// The logged-in staff member.
#[derive(Serialize, ToSchema)]
pub struct Me {
    tenant_id: TenantId,
    staff_id: StaffId,
    display_name: String,
    role: Role,
    store_id: Option<StoreId>,
    /// What this login (or API token) may do.
    permissions: Vec<patron_domain::permissions::Permission>,
}

/// Who am I?
#[utoipa::path(get, path = "/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = Me), (status = 401, body = ErrorBody)))]
pub async fn me(Auth(a): Auth) -> axum::Json<Me> {
    axum::Json(Me {
        tenant_id: a.tenant_id,
        staff_id: a.staff_id,
        display_name: a.display_name.clone(),
        role: a.role,
        store_id: a.store_id,
        permissions: a.permissions(),
    })
}
