//! Daily settlement, closing and reopening business days, shifts, and the inter-store
//! settlement statement.

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Auth, Json, Path, Query};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Html;
use chrono::NaiveDate;
use patron_app::App;
use patron_app::settlement::{
    CloseDay, CloseShift, DayStatus, InterStoreStatement, OpenShift, ReopenDay, Settlement, Shift,
    ShiftClosed,
};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DayParams {
    /// The store's code or id (default: the store you are logged in at).
    store: Option<String>,
    /// The business day, YYYY-MM-DD (default: today's).
    date: Option<NaiveDate>,
}

/// A store's daily settlement: money by tender, top-ups, stored value consumed, discounts
/// by kind, coupons, points, reversals and refunds with reasons and approvers, counts and
/// the cash to hand over. A closed day answers with the report signed at closing.
#[utoipa::path(get, path = "/settlement/daily", tag = "settlement", security(("bearer" = [])), params(DayParams),
    responses((status = 200, body = Settlement), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn daily(
    State(app): State<App>,
    Auth(a): Auth,
    Query(p): Query<DayParams>,
) -> ApiResult<axum::Json<Settlement>> {
    Ok(axum::Json(
        app.daily_settlement(&a, p.store.as_deref(), p.date).await?,
    ))
}

/// The daily settlement as a printable page.
#[utoipa::path(get, path = "/settlement/daily.html", tag = "settlement", security(("bearer" = [])), params(DayParams),
    responses((status = 200, description = "printable HTML", content_type = "text/html"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn daily_html(
    State(app): State<App>,
    Auth(a): Auth,
    Query(p): Query<DayParams>,
) -> ApiResult<Html<String>> {
    let r = app.daily_settlement(&a, p.store.as_deref(), p.date).await?;
    Ok(Html(patron_app::settlement::html(&r)))
}

/// Closes a business day (owner or the store's manager): snapshots its report and
/// refuses any further posting into it (`day_closed`). Refused while shifts are open.
#[utoipa::path(post, path = "/settlement/days/{store}/{date}/close", tag = "settlement", security(("bearer" = [])),
    params(("store" = String, Path, description = "store code or id"), ("date" = String, Path, description = "business day, YYYY-MM-DD")),
    request_body = CloseDay,
    responses((status = 200, body = Settlement), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn close_day(
    State(app): State<App>,
    Auth(a): Auth,
    Path((store, date)): Path<(String, NaiveDate)>,
    Json(b): Json<CloseDay>,
) -> ApiResult<axum::Json<Settlement>> {
    Ok(axum::Json(app.close_day(&a, Some(&store), date, &b).await?))
}

/// Reopens a closed business day (owner only), with a reason.
#[utoipa::path(post, path = "/settlement/days/{store}/{date}/reopen", tag = "settlement", security(("bearer" = [])),
    params(("store" = String, Path, description = "store code or id"), ("date" = String, Path, description = "business day, YYYY-MM-DD")),
    request_body = ReopenDay,
    responses((status = 200, body = DayStatus), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn reopen_day(
    State(app): State<App>,
    Auth(a): Auth,
    Path((store, date)): Path<(String, NaiveDate)>,
    Json(b): Json<ReopenDay>,
) -> ApiResult<axum::Json<DayStatus>> {
    Ok(axum::Json(
        app.reopen_day(&a, Some(&store), date, &b).await?,
    ))
}

/// Opens your shift at the store you are logged in at, with the float in the drawer.
#[utoipa::path(post, path = "/shifts", tag = "settlement", security(("bearer" = [])), request_body = OpenShift,
    responses((status = 201, body = Shift), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn open_shift(
    State(app): State<App>,
    Auth(a): Auth,
    Json(b): Json<OpenShift>,
) -> ApiResult<(StatusCode, axum::Json<Shift>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(app.open_shift(&a, &b).await?),
    ))
}

/// The shifts of a store's business day (cashiers see their own).
#[utoipa::path(get, path = "/shifts", tag = "settlement", security(("bearer" = [])), params(DayParams),
    responses((status = 200, body = Vec<Shift>), (status = 404, body = ErrorBody)))]
pub async fn list_shifts(
    State(app): State<App>,
    Auth(a): Auth,
    Query(p): Query<DayParams>,
) -> ApiResult<axum::Json<Vec<Shift>>> {
    Ok(axum::Json(
        app.shifts(&a, p.store.as_deref(), p.date).await?,
    ))
}

/// Hands over: closes the shift with the counted cash; the answer has the variance
/// (counted − expected) and the shift's report.
#[utoipa::path(post, path = "/shifts/{id}/close", tag = "settlement", security(("bearer" = [])),
    params(("id" = String, Path, description = "shift id")), request_body = CloseShift,
    responses((status = 200, body = ShiftClosed), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn close_shift(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<Uuid>,
    Json(b): Json<CloseShift>,
) -> ApiResult<axum::Json<ShiftClosed>> {
    Ok(axum::Json(app.close_shift(&a, id, &b).await?))
}

/// One shift's report: the cashier's figures over the shift (until now while open).
#[utoipa::path(get, path = "/shifts/{id}/report", tag = "settlement", security(("bearer" = [])),
    params(("id" = String, Path, description = "shift id")),
    responses((status = 200, body = Settlement), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn shift_report(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<axum::Json<Settlement>> {
    Ok(axum::Json(app.shift_report(&a, id).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PeriodParams {
    /// First business day, YYYY-MM-DD.
    from: NaiveDate,
    /// Last business day (inclusive).
    to: NaiveDate,
}

/// The inter-store settlement of a period (owner): principal sold at one store and used
/// at another (oldest principal first), netted per pair of stores.
#[utoipa::path(get, path = "/settlement/inter-store", tag = "settlement", security(("bearer" = [])), params(PeriodParams),
    responses((status = 200, body = InterStoreStatement), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn inter_store(
    State(app): State<App>,
    Auth(a): Auth,
    Query(p): Query<PeriodParams>,
) -> ApiResult<axum::Json<InterStoreStatement>> {
    Ok(axum::Json(
        app.inter_store_settlement(&a, p.from, p.to).await?,
    ))
}
