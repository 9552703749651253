//! Coupons: templates, spend-trigger rules, issue, look-up, redeem, void, expiry.

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Auth, Json, Path, Query};
use axum::extract::State;
use axum::http::StatusCode;
use patron_app::App;
use patron_app::coupons::{
    CouponView, IssueRuleInput, IssueRulePatch, RedeemCoupon, Redemption, TemplateInput,
};
use patron_domain::coupon::{CouponStatus, CouponTemplate, IssueRule};
use patron_domain::ids::CustomerId;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// Every coupon template, newest first.
#[utoipa::path(get, path = "/coupon-templates", tag = "coupons", security(("bearer" = [])),
    responses((status = 200, body = Vec<CouponTemplate>)))]
pub async fn list_templates(
    State(app): State<App>,
    Auth(a): Auth,
) -> ApiResult<axum::Json<Vec<CouponTemplate>>> {
    Ok(axum::Json(app.coupon_templates(&a).await?))
}

/// Creates a coupon template: a cash voucher (optionally 满减), a discount coupon (with a
/// cap) or an item voucher, with its validity and rules.
#[utoipa::path(post, path = "/coupon-templates", tag = "coupons", security(("bearer" = [])), request_body = TemplateInput,
    responses((status = 201, body = CouponTemplate), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_template(
    State(app): State<App>,
    Auth(a): Auth,
    Json(req): Json<TemplateInput>,
) -> ApiResult<(StatusCode, axum::Json<CouponTemplate>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(app.create_coupon_template(&a, &req).await?),
    ))
}

/// A coupon template.
#[utoipa::path(get, path = "/coupon-templates/{id}", tag = "coupons", security(("bearer" = [])), params(("id" = String, Path, description = "template id")),
    responses((status = 200, body = CouponTemplate), (status = 404, body = ErrorBody)))]
pub async fn get_template(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<axum::Json<CouponTemplate>> {
    Ok(axum::Json(app.get_coupon_template(&a, id).await?))
}

/// Changes a template (JSON merge patch; `{"active": false}` stops it issuing).
#[utoipa::path(patch, path = "/coupon-templates/{id}", tag = "coupons", security(("bearer" = [])), params(("id" = String, Path, description = "template id")),
    request_body = Object,
    responses((status = 200, body = CouponTemplate), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_template(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<Uuid>,
    Json(patch): Json<serde_json::Value>,
) -> ApiResult<axum::Json<CouponTemplate>> {
    Ok(axum::Json(
        app.update_coupon_template(&a, id, &patch).await?,
    ))
}

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueBody {
    /// One customer (manual issue) or many (bulk; all or nothing).
    customer_ids: Vec<CustomerId>,
    /// Recommended: a retry with the same key answers with the coupons issued the first
    /// time instead of issuing again; the same key with other customers is refused (409).
    idempotency_key: Option<String>,
}

/// Issues coupons of this template to one or many customers. Any refusal (unknown
/// customer, per-customer limit reached...) is reported per customer in `fields`
/// (`customer_ids[i]`) and nothing is issued.
#[utoipa::path(post, path = "/coupon-templates/{id}/issue", tag = "coupons", security(("bearer" = [])), params(("id" = String, Path, description = "template id")),
    request_body = IssueBody,
    responses((status = 201, body = Vec<CouponView>), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn issue(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<Uuid>,
    Json(b): Json<IssueBody>,
) -> ApiResult<(StatusCode, axum::Json<Vec<CouponView>>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(
            app.issue_coupons(&a, id, &b.customer_ids, b.idempotency_key.as_deref())
                .await?,
        ),
    ))
}

/// Spend-trigger rules ("spend 100, get a voucher"), lowest threshold first.
#[utoipa::path(get, path = "/coupon-rules", tag = "coupons", security(("bearer" = [])),
    responses((status = 200, body = Vec<IssueRule>)))]
pub async fn list_rules(
    State(app): State<App>,
    Auth(a): Auth,
) -> ApiResult<axum::Json<Vec<IssueRule>>> {
    Ok(axum::Json(app.issue_rules(&a).await?))
}

/// Creates a spend-trigger rule.
#[utoipa::path(post, path = "/coupon-rules", tag = "coupons", security(("bearer" = [])), request_body = IssueRuleInput,
    responses((status = 201, body = IssueRule), (status = 422, body = ErrorBody)))]
pub async fn create_rule(
    State(app): State<App>,
    Auth(a): Auth,
    Json(req): Json<IssueRuleInput>,
) -> ApiResult<(StatusCode, axum::Json<IssueRule>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(app.create_issue_rule(&a, &req).await?),
    ))
}

/// Changes a spend-trigger rule.
#[utoipa::path(patch, path = "/coupon-rules/{id}", tag = "coupons", security(("bearer" = [])), params(("id" = String, Path, description = "rule id")),
    request_body = IssueRulePatch,
    responses((status = 200, body = IssueRule), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_rule(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<Uuid>,
    Json(req): Json<IssueRulePatch>,
) -> ApiResult<axum::Json<IssueRule>> {
    Ok(axum::Json(app.update_issue_rule(&a, id, &req).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    customer_id: Option<CustomerId>,
    #[param(value_type = Option<String>, format = Uuid)]
    template_id: Option<Uuid>,
    /// issued, redeemed, voided, expired.
    status: Option<CouponStatus>,
}

/// Coupons, newest first (at most 500): of a customer, of a template, in a status.
#[utoipa::path(get, path = "/coupons", tag = "coupons", security(("bearer" = [])), params(ListParams),
    responses((status = 200, body = Vec<CouponView>), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(app): State<App>,
    Auth(a): Auth,
    Query(q): Query<ListParams>,
) -> ApiResult<axum::Json<Vec<CouponView>>> {
    Ok(axum::Json(
        app.list_coupons(&a, q.customer_id, q.template_id, q.status)
            .await?,
    ))
}

/// A coupon by its code (case, spaces, dashes and O/I/L confusions are forgiven).
#[utoipa::path(get, path = "/coupons/{code}", tag = "coupons", security(("bearer" = [])), params(("code" = String, Path, description = "XXXX-XXXX-XXXX-XXXX")),
    responses((status = 200, body = CouponView), (status = 404, body = ErrorBody)))]
pub async fn by_code(
    State(app): State<App>,
    Auth(a): Auth,
    Path(code): Path<String>,
) -> ApiResult<axum::Json<CouponView>> {
    Ok(axum::Json(app.get_coupon_by_code(&a, &code).await?))
}

/// Uses a coupon at the actor's store: once only (409 `coupon_already_redeemed`), 422
/// with the rule's code (`not_yet_valid`, `expired`, `excluded_day`, `excluded_hour`,
/// `wrong_store`, `wrong_level`, `below_threshold`, `voided`, `not_transferable`) when it
/// cannot be used. A friend using a transferable coupon is recorded as referred by its owner.
#[utoipa::path(post, path = "/coupons/{code}/redeem", tag = "coupons", security(("bearer" = [])), params(("code" = String, Path, description = "XXXX-XXXX-XXXX-XXXX")),
    request_body = RedeemCoupon,
    responses((status = 200, body = Redemption), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn redeem(
    State(app): State<App>,
    Auth(a): Auth,
    Path(code): Path<String>,
    Json(req): Json<RedeemCoupon>,
) -> ApiResult<axum::Json<Redemption>> {
    Ok(axum::Json(app.redeem_coupon(&a, &code, &req).await?))
}

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoidBody {
    reason: String,
}

/// Voids an unused coupon, with a reason.
#[utoipa::path(post, path = "/coupons/{code}/void", tag = "coupons", security(("bearer" = [])), params(("code" = String, Path, description = "XXXX-XXXX-XXXX-XXXX")),
    request_body = VoidBody,
    responses((status = 200, body = CouponView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn void(
    State(app): State<App>,
    Auth(a): Auth,
    Path(code): Path<String>,
    Json(b): Json<VoidBody>,
) -> ApiResult<axum::Json<CouponView>> {
    Ok(axum::Json(app.void_coupon(&a, &code, &b.reason).await?))
}

#[derive(Serialize, ToSchema)]
pub struct Expired {
    /// Coupons marked expired by this run.
    expired: u64,
}

/// Runs the expiry job now: issued coupons past their last valid day become expired.
#[utoipa::path(post, path = "/coupons/expire", tag = "coupons", security(("bearer" = [])),
    responses((status = 200, body = Expired), (status = 403, body = ErrorBody)))]
pub async fn expire(State(app): State<App>, Auth(a): Auth) -> ApiResult<axum::Json<Expired>> {
    Ok(axum::Json(Expired {
        expired: app.expire_coupons_now(&a).await?,
    }))
}
