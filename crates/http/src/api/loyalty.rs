//! Points, levels, gifts and the loyalty jobs.

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Auth, Json, Path, Query};
use axum::extract::State;
use axum::http::StatusCode;
use chrono::NaiveDate;
use patron_app::App;
use patron_app::cards::LedgerReceipt;
use patron_app::loyalty::{
    CashQuoteView, EarnSummary, ExchangeForCoupon, GiftInput, JobReport, LoyaltyView, PointsView,
    RecordPurchase, RedeemGift, SetLevel,
};
use patron_domain::ids::{CardId, CustomerId};
use patron_domain::money::Money;
use patron_store::loyalty::{GiftRecord, LevelChangeRecord};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// A purchase's receipt and what it earned.
#[derive(Serialize, ToSchema)]
pub struct PurchaseReceipt {
    pub receipt: LedgerReceipt,
    pub earned: EarnSummary,
}

/// Records a purchase paid outside the card (cash, bank card, wallets): the customer earns
/// points by the tenant's rules and growth value towards the next level.
#[utoipa::path(post, path = "/purchases", tag = "points", security(("bearer" = [])), request_body = RecordPurchase,
    responses((status = 200, body = PurchaseReceipt), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn record_purchase(
    State(app): State<App>,
    Auth(a): Auth,
    Json(req): Json<RecordPurchase>,
) -> ApiResult<axum::Json<PurchaseReceipt>> {
    let (receipt, earned) = app.record_purchase(&a, &req).await?;
    Ok(axum::Json(PurchaseReceipt { receipt, earned }))
}

/// A card's points: balance, lots with their expiry dates, and every entry explained.
#[utoipa::path(get, path = "/cards/{id}/points", tag = "points", security(("bearer" = [])), params(("id" = String, Path, description = "card id")),
    responses((status = 200, body = PointsView), (status = 404, body = ErrorBody)))]
pub async fn card_points(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<CardId>,
) -> ApiResult<axum::Json<PointsView>> {
    Ok(axum::Json(app.card_points(&a, id).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CashQuoteQuery {
    /// The bill in fen.
    bill: i64,
    /// Points the customer wants to use (absent = as many as allowed).
    points: Option<i64>,
}

/// How much of a bill the card's points can pay, and how many points that takes.
#[utoipa::path(get, path = "/cards/{id}/points/cash-quote", tag = "points", security(("bearer" = [])), params(("id" = String, Path, description = "card id"), CashQuoteQuery),
    responses((status = 200, body = CashQuoteView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn cash_quote(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<CardId>,
    Query(q): Query<CashQuoteQuery>,
) -> ApiResult<axum::Json<CashQuoteView>> {
    Ok(axum::Json(
        app.points_cash_quote(&a, id, Money::from_fen(q.bill), q.points)
            .await?,
    ))
}

/// Exchanges points for a gift from the catalogue.
#[utoipa::path(post, path = "/cards/{id}/points/gifts", tag = "points", security(("bearer" = [])), params(("id" = String, Path, description = "card id")), request_body = RedeemGift,
    responses((status = 200, body = LedgerReceipt), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn redeem_gift(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<CardId>,
    Json(req): Json<RedeemGift>,
) -> ApiResult<axum::Json<LedgerReceipt>> {
    Ok(axum::Json(app.redeem_gift(&a, id, &req).await?))
}

/// Exchanges points for a coupon (templates with a points price); the coupon is issued to
/// the card's holder in the same transaction. The receipt's details carry the code.
#[utoipa::path(post, path = "/cards/{id}/points/coupons", tag = "points", security(("bearer" = [])), params(("id" = String, Path, description = "card id")), request_body = ExchangeForCoupon,
    responses((status = 200, body = LedgerReceipt), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn exchange_for_coupon(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<CardId>,
    Json(req): Json<ExchangeForCoupon>,
) -> ApiResult<axum::Json<LedgerReceipt>> {
    Ok(axum::Json(
        app.exchange_points_for_coupon(&a, id, &req).await?,
    ))
}

/// A customer's level, growth value, next level, points and level history.
#[utoipa::path(get, path = "/customers/{id}/loyalty", tag = "points", security(("bearer" = [])), params(("id" = String, Path, description = "customer id")),
    responses((status = 200, body = LoyaltyView), (status = 404, body = ErrorBody)))]
pub async fn customer_loyalty(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<CustomerId>,
) -> ApiResult<axum::Json<LoyaltyView>> {
    Ok(axum::Json(app.customer_loyalty(&a, id).await?))
}

/// Sets a customer's level by hand, with a reason.
#[utoipa::path(put, path = "/customers/{id}/level", tag = "points", security(("bearer" = [])), params(("id" = String, Path, description = "customer id")), request_body = SetLevel,
    responses((status = 200, body = LevelChangeRecord), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_level(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<CustomerId>,
    Json(req): Json<SetLevel>,
) -> ApiResult<axum::Json<LevelChangeRecord>> {
    Ok(axum::Json(app.set_level(&a, id, &req).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GiftQuery {
    /// Include inactive gifts.
    #[serde(default)]
    all: bool,
}

/// The gift catalogue.
#[utoipa::path(get, path = "/gifts", tag = "points", security(("bearer" = [])), params(GiftQuery),
    responses((status = 200, body = Vec<GiftRecord>)))]
pub async fn list_gifts(
    State(app): State<App>,
    Auth(a): Auth,
    Query(q): Query<GiftQuery>,
) -> ApiResult<axum::Json<Vec<GiftRecord>>> {
    Ok(axum::Json(app.gifts(&a, q.all).await?))
}

/// Adds a gift to the catalogue.
#[utoipa::path(post, path = "/gifts", tag = "points", security(("bearer" = [])), request_body = GiftInput,
    responses((status = 201, body = GiftRecord), (status = 422, body = ErrorBody)))]
pub async fn create_gift(
    State(app): State<App>,
    Auth(a): Auth,
    Json(req): Json<GiftInput>,
) -> ApiResult<(StatusCode, axum::Json<GiftRecord>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(app.create_gift(&a, &req).await?),
    ))
}

/// Changes a gift (name, points, stock, active).
#[utoipa::path(put, path = "/gifts/{id}", tag = "points", security(("bearer" = [])), params(("id" = String, Path, description = "gift id")), request_body = GiftInput,
    responses((status = 200, body = GiftRecord), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_gift(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<uuid::Uuid>,
    Json(req): Json<GiftInput>,
) -> ApiResult<axum::Json<GiftRecord>> {
    Ok(axum::Json(app.update_gift(&a, id, &req).await?))
}

/// Options for running the loyalty jobs by hand.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunJobs {
    /// The local date to run as (default today); lets a manager catch up.
    pub today: Option<NaiveDate>,
}

/// Runs the tenant's loyalty jobs now: points expiry, coupon expiry and the level review.
#[utoipa::path(post, path = "/loyalty/jobs", tag = "points", security(("bearer" = [])), request_body = RunJobs,
    responses((status = 200, body = JobReport), (status = 403, body = ErrorBody)))]
pub async fn run_jobs(
    State(app): State<App>,
    Auth(a): Auth,
    Json(req): Json<RunJobs>,
) -> ApiResult<axum::Json<JobReport>> {
    Ok(axum::Json(app.run_jobs_now(&a, req.today).await?))
}
