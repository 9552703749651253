//! Staff accounts and API tokens.

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Auth, Json, Path};
use axum::extract::State;
use axum::http::StatusCode;
use patron_app::App;
use patron_app::staff::{
    ApiTokenView, CreatedApiToken, NewApiToken, NewStaff, StaffPatch, StaffView,
};
use patron_domain::ids::StaffId;
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// The tenant's staff accounts (never their password hashes).
#[utoipa::path(get, path = "/staff", tag = "staff", security(("bearer" = [])),
    responses((status = 200, body = Vec<StaffView>), (status = 403, body = ErrorBody)))]
pub async fn list(State(app): State<App>, Auth(a): Auth) -> ApiResult<axum::Json<Vec<StaffView>>> {
    Ok(axum::Json(app.list_staff(&a).await?))
}

/// Creates a staff account (owner). Audited.
#[utoipa::path(post, path = "/staff", tag = "staff", security(("bearer" = [])), request_body = NewStaff,
    responses((status = 201, body = StaffView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn create(
    State(app): State<App>,
    Auth(a): Auth,
    Json(b): Json<NewStaff>,
) -> ApiResult<(StatusCode, axum::Json<StaffView>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(app.create_staff(&a, &b).await?),
    ))
}

/// One staff account.
#[utoipa::path(get, path = "/staff/{id}", tag = "staff", security(("bearer" = [])),
    params(("id" = String, Path, description = "staff id")),
    responses((status = 200, body = StaffView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<StaffId>,
) -> ApiResult<axum::Json<StaffView>> {
    Ok(axum::Json(app.staff_member(&a, id).await?))
}

/// Changes role, store, active, limits, display name or approval PIN (owner). A change
/// of role or store, or a deactivation, ends the account's sessions. Audited with the
/// state before and after.
#[utoipa::path(patch, path = "/staff/{id}", tag = "staff", security(("bearer" = [])),
    params(("id" = String, Path, description = "staff id")), request_body = StaffPatch,
    responses((status = 200, body = StaffView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<StaffId>,
    Json(b): Json<StaffPatch>,
) -> ApiResult<axum::Json<StaffView>> {
    Ok(axum::Json(app.update_staff(&a, id, &b).await?))
}

/// A new password.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordReset {
    /// At least 8 characters.
    password: String,
}

/// Sets a staff member's password (owner) and ends their sessions. Audited.
#[utoipa::path(post, path = "/staff/{id}/password", tag = "staff", security(("bearer" = [])),
    params(("id" = String, Path, description = "staff id")), request_body = PasswordReset,
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn reset_password(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<StaffId>,
    Json(b): Json<PasswordReset>,
) -> ApiResult<StatusCode> {
    app.reset_staff_password(&a, id, &b.password).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Creates an API token for a POS or another system. It acts as you, limited to `scope`
/// (and to what your role allows when it is used); the secret is in the response only.
#[utoipa::path(post, path = "/api-tokens", tag = "staff", security(("bearer" = [])), request_body = NewApiToken,
    responses((status = 201, body = CreatedApiToken), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_token(
    State(app): State<App>,
    Auth(a): Auth,
    Json(b): Json<NewApiToken>,
) -> ApiResult<(StatusCode, axum::Json<CreatedApiToken>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(app.create_api_token(&a, &b).await?),
    ))
}

/// API tokens without their secrets: all for the owner, your own for others.
#[utoipa::path(get, path = "/api-tokens", tag = "staff", security(("bearer" = [])),
    responses((status = 200, body = Vec<ApiTokenView>), (status = 403, body = ErrorBody)))]
pub async fn list_tokens(
    State(app): State<App>,
    Auth(a): Auth,
) -> ApiResult<axum::Json<Vec<ApiTokenView>>> {
    Ok(axum::Json(app.api_tokens(&a).await?))
}

/// Revokes an API token at once. Audited.
#[utoipa::path(delete, path = "/api-tokens/{id}", tag = "staff", security(("bearer" = [])),
    params(("id" = String, Path, description = "token id")),
    responses((status = 200, body = ApiTokenView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn revoke_token(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<axum::Json<ApiTokenView>> {
    Ok(axum::Json(app.revoke_api_token(&a, id).await?))
}
