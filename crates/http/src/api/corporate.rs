use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Auth, Json, Path, Query};
use axum::extract::State;
use patron_app::App;
use patron_app::cards::{Balances, LedgerReceipt};
use patron_app::corporate::{Charge, ChargeAccount, ChargeStatement, CreditLimit, Repayment};
use patron_domain::ids::CustomerId;
use serde::Deserialize;
use utoipa::IntoParams;

/// The organization's charge account (挂账).
#[utoipa::path(get, path = "/customers/{id}/charge-account", tag = "corporate", security(("bearer" = [])),
    params(("id" = String, Path, description = "organization customer id")),
    responses((status = 200, body = ChargeAccount), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn get_account(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<CustomerId>,
) -> ApiResult<axum::Json<ChargeAccount>> {
    Ok(axum::Json(app.get_charge_account(&a, id).await?))
}

/// Sets the credit limit (refused below what is owed).
#[utoipa::path(put, path = "/customers/{id}/charge-account", tag = "corporate", security(("bearer" = [])),
    params(("id" = String, Path, description = "organization customer id")), request_body = CreditLimit,
    responses((status = 200, body = ChargeAccount), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_limit(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<CustomerId>,
    Json(b): Json<CreditLimit>,
) -> ApiResult<axum::Json<ChargeAccount>> {
    Ok(axum::Json(app.set_credit_limit(&a, id, &b).await?))
}

/// Charges a bill to the organization, within its credit limit.
#[utoipa::path(post, path = "/customers/{id}/charges", tag = "corporate", security(("bearer" = [])),
    params(("id" = String, Path, description = "organization customer id")), request_body = Charge,
    responses((status = 200, body = LedgerReceipt), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn charge(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<CustomerId>,
    Json(b): Json<Charge>,
) -> ApiResult<axum::Json<LedgerReceipt>> {
    Ok(axum::Json(app.charge(&a, id, &b).await?))
}

/// Records a repayment of the charge account.
#[utoipa::path(post, path = "/customers/{id}/repayments", tag = "corporate", security(("bearer" = [])),
    params(("id" = String, Path, description = "organization customer id")), request_body = Repayment,
    responses((status = 200, body = LedgerReceipt), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn repay(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<CustomerId>,
    Json(b): Json<Repayment>,
) -> ApiResult<axum::Json<LedgerReceipt>> {
    Ok(axum::Json(app.repay(&a, id, &b).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MonthParam {
    /// YYYY-MM.
    month: String,
}

/// The monthly statement of the charge account.
#[utoipa::path(get, path = "/customers/{id}/charge-statement", tag = "corporate", security(("bearer" = [])),
    params(("id" = String, Path, description = "organization customer id"), MonthParam),
    responses((status = 200, body = ChargeStatement), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn statement(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<CustomerId>,
    Query(q): Query<MonthParam>,
) -> ApiResult<axum::Json<ChargeStatement>> {
    Ok(axum::Json(app.charge_statement(&a, id, &q.month).await?))
}

/// The organization's pooled stored value and points (its employees' pooled cards use it).
#[utoipa::path(get, path = "/customers/{id}/pool", tag = "corporate", security(("bearer" = [])),
    params(("id" = String, Path, description = "organization customer id")),
    responses((status = 200, body = Balances), (status = 409, body = ErrorBody)))]
pub async fn pool(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<CustomerId>,
) -> ApiResult<axum::Json<Balances>> {
    Ok(axum::Json(app.org_pool(&a, id).await?))
}
