//! Checkout at the till: quote, take, receipts (JSON, HTML, text, ESC/POS, printing) and
//! same-day reversal.

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Auth, Json, Path, Query};
use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use patron_app::App;
use patron_app::checkout::{
    CheckoutOutcome, CheckoutQuote, CheckoutRequest, RefundCheckout, ReverseCheckout,
};
use patron_app::receipts::{self, Paper};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Prices a bill for the till screen: member prices, level discount, coupons, points,
/// payment rules and rounding, itemised. Changes nothing.
#[utoipa::path(post, path = "/checkouts/quote", tag = "checkout", security(("bearer" = [])), request_body = CheckoutRequest,
    responses((status = 200, body = CheckoutQuote), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn quote(
    State(app): State<App>,
    Auth(a): Auth,
    Json(req): Json<CheckoutRequest>,
) -> ApiResult<axum::Json<CheckoutQuote>> {
    Ok(axum::Json(app.quote_checkout(&a, &req).await?))
}

/// Takes a bill: everything it changes commits in one transaction. A retry with the same
/// idempotency key returns the original receipt; the same key with another bill is 409.
#[utoipa::path(post, path = "/checkouts", tag = "checkout", security(("bearer" = [])), request_body = CheckoutRequest,
    responses((status = 200, body = CheckoutOutcome), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 423, body = ErrorBody)))]
pub async fn checkout(
    State(app): State<App>,
    Auth(a): Auth,
    Json(req): Json<CheckoutRequest>,
) -> ApiResult<axum::Json<CheckoutOutcome>> {
    Ok(axum::Json(app.checkout(&a, &req).await?))
}

/// A checkout and its receipt.
#[utoipa::path(get, path = "/checkouts/{id}", tag = "checkout", security(("bearer" = [])), params(("id" = String, Path, description = "checkout id")),
    responses((status = 200, body = CheckoutOutcome), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<uuid::Uuid>,
) -> ApiResult<axum::Json<CheckoutOutcome>> {
    Ok(axum::Json(app.checkout_receipt(&a, id).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReceiptFormat {
    /// html (default), text or escpos.
    format: Option<String>,
    /// Paper width for text and ESC/POS: 58 or 80 (default 80).
    paper: Option<u32>,
}

fn paper(p: Option<u32>) -> Paper {
    if p == Some(58) {
        Paper::Mm58
    } else {
        Paper::Mm80
    }
}

/// The receipt as a printable page, plain text or ESC/POS bytes (GB18030).
#[utoipa::path(get, path = "/checkouts/{id}/receipt", tag = "checkout", security(("bearer" = [])), params(("id" = String, Path, description = "checkout or reversal transaction id"), ReceiptFormat),
    responses((status = 200, description = "text/html, text/plain or application/octet-stream"), (status = 404, body = ErrorBody)))]
pub async fn receipt(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<uuid::Uuid>,
    Query(q): Query<ReceiptFormat>,
) -> ApiResult<Response> {
    let doc = app.checkout_receipt(&a, id).await?.receipt;
    Ok(match q.format.as_deref() {
        Some("text") => (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            receipts::render_text(&doc, paper(q.paper)),
        )
            .into_response(),
        Some("escpos") => (
            [(header::CONTENT_TYPE, "application/octet-stream")],
            receipts::render_escpos(&doc, paper(q.paper)),
        )
            .into_response(),
        _ => Html(receipts::render_html(&doc)).into_response(),
    })
}

/// Where to print a receipt.
#[derive(Deserialize, ToSchema)]
pub struct PrintRequest {
    /// The printer's address, e.g. "192.168.1.50:9100".
    pub printer: String,
    /// 58 or 80 (default 80).
    pub paper: Option<u32>,
}

/// What was sent to the printer.
#[derive(Serialize, ToSchema)]
pub struct Printed {
    pub printer: String,
    pub bytes: usize,
}

/// Prints the receipt on a network thermal printer (raw TCP, port 9100).
#[utoipa::path(post, path = "/checkouts/{id}/print", tag = "checkout", security(("bearer" = [])), params(("id" = String, Path, description = "checkout id")), request_body = PrintRequest,
    responses((status = 200, body = Printed), (status = 404, body = ErrorBody), (status = 502, body = ErrorBody)))]
pub async fn print(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<uuid::Uuid>,
    Json(req): Json<PrintRequest>,
) -> ApiResult<axum::Json<Printed>> {
    let doc = app.checkout_receipt(&a, id).await?.receipt;
    let bytes = receipts::render_escpos(&doc, paper(req.paper));
    receipts::print_to(&req.printer, &bytes, std::time::Duration::from_secs(5))
        .await
        .map_err(|e| {
            crate::error::ApiError::new(
                axum::http::StatusCode::BAD_GATEWAY,
                "printer_unreachable",
                e.to_string(),
            )
        })?;
    Ok(axum::Json(Printed {
        printer: req.printer,
        bytes: bytes.len(),
    }))
}

/// 反结账: undoes a checkout of today's business day exactly, with a manager's approval.
#[utoipa::path(post, path = "/checkouts/{id}/reversal", tag = "checkout", security(("bearer" = [])), params(("id" = String, Path, description = "checkout id")), request_body = ReverseCheckout,
    responses((status = 200, body = CheckoutOutcome), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn reverse(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<uuid::Uuid>,
    Json(req): Json<ReverseCheckout>,
) -> ApiResult<axum::Json<CheckoutOutcome>> {
    Ok(axum::Json(app.reverse_checkout(&a, id, &req).await?))
}

/// A partial refund by line or by amount, with a manager's approval; back to the tenders
/// in proportion, points earned taken back and points redeemed given back.
#[utoipa::path(post, path = "/checkouts/{id}/refunds", tag = "checkout", security(("bearer" = [])), params(("id" = String, Path, description = "checkout id")), request_body = RefundCheckout,
    responses((status = 200, body = CheckoutOutcome), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn refund(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<uuid::Uuid>,
    Json(req): Json<RefundCheckout>,
) -> ApiResult<axum::Json<CheckoutOutcome>> {
    Ok(axum::Json(app.refund_checkout(&a, id, &req).await?))
}
