use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Auth, Json, Path, Query};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Utc};
use patron_app::App;
use patron_app::cards::{
    Adjustment, CardView, CloseCard, IssueCard, LedgerReceipt, Reverse, Spend, Statement, TopUp,
    Transfer,
};
use patron_domain::card::Card;
use patron_domain::ids::CardId;
use patron_domain::money::Money;
use patron_domain::settings::TenantSettings;
use patron_store::ledger::LiabilityRow;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Issues a card to a customer, or an anonymous one.
#[utoipa::path(post, path = "/cards", tag = "cards", security(("bearer" = [])), request_body = IssueCard,
    responses((status = 201, body = CardView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn issue(
    State(app): State<App>,
    Auth(a): Auth,
    Json(req): Json<IssueCard>,
) -> ApiResult<(StatusCode, axum::Json<CardView>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(app.issue_card(&a, &req).await?),
    ))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ByNumber {
    /// The card number as typed or swiped.
    number: String,
}

/// Finds a card by its number.
#[utoipa::path(get, path = "/cards/by-number", tag = "cards", security(("bearer" = [])), params(ByNumber),
    responses((status = 200, body = CardView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn by_number(
    State(app): State<App>,
    Auth(a): Auth,
    Query(q): Query<ByNumber>,
) -> ApiResult<axum::Json<CardView>> {
    Ok(axum::Json(app.card_view_by_number(&a, &q.number).await?))
}

/// A card with its balances.
#[utoipa::path(get, path = "/cards/{id}", tag = "cards", security(("bearer" = [])), params(("id" = String, Path, description = "card id")),
    responses((status = 200, body = CardView), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<CardId>,
) -> ApiResult<axum::Json<CardView>> {
    Ok(axum::Json(app.get_card_view(&a, id).await?))
}

/// Tops up stored value; the bonus tier is applied and shown in the receipt.
#[utoipa::path(post, path = "/cards/{id}/top-ups", tag = "cards", security(("bearer" = [])), params(("id" = String, Path, description = "card id")), request_body = TopUp,
    responses((status = 200, body = LedgerReceipt), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn top_up(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<CardId>,
    Json(req): Json<TopUp>,
) -> ApiResult<axum::Json<LedgerReceipt>> {
    Ok(axum::Json(app.top_up(&a, id, &req).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Preview {
    /// Amount in fen.
    amount: i64,
}

#[derive(Serialize, ToSchema)]
pub struct TopUpPreview {
    amount: Money,
    bonus: Money,
}

/// The bonus a top-up of this amount would earn (for the cashier to show before confirming).
#[utoipa::path(get, path = "/top-up-preview", tag = "cards", security(("bearer" = [])), params(Preview),
    responses((status = 200, body = TopUpPreview)))]
pub async fn top_up_preview(
    State(app): State<App>,
    Auth(a): Auth,
    Query(q): Query<Preview>,
) -> ApiResult<axum::Json<TopUpPreview>> {
    let amount = Money::from_fen(q.amount);
    let bonus = app.settings(&a).await?.top_up.bonus_for(amount);
    Ok(axum::Json(TopUpPreview { amount, bonus }))
}

/// Spends stored value (principal and bonus split by the tenant's rule).
#[utoipa::path(post, path = "/cards/{id}/spends", tag = "cards", security(("bearer" = [])), params(("id" = String, Path, description = "card id")), request_body = Spend,
    responses((status = 200, body = LedgerReceipt), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 423, body = ErrorBody)))]
pub async fn spend(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<CardId>,
    Json(req): Json<Spend>,
) -> ApiResult<axum::Json<LedgerReceipt>> {
    Ok(axum::Json(app.spend(&a, id, &req).await?))
}

/// Moves stored value to another card of the same holder or organization.
#[utoipa::path(post, path = "/cards/{id}/transfers", tag = "cards", security(("bearer" = [])), params(("id" = String, Path, description = "card id")), request_body = Transfer,
    responses((status = 200, body = LedgerReceipt), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn transfer(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<CardId>,
    Json(req): Json<Transfer>,
) -> ApiResult<axum::Json<LedgerReceipt>> {
    Ok(axum::Json(app.transfer(&a, id, &req).await?))
}

/// A manual correction with a reason.
#[utoipa::path(post, path = "/cards/{id}/adjustments", tag = "cards", security(("bearer" = [])), params(("id" = String, Path, description = "card id")), request_body = Adjustment,
    responses((status = 200, body = LedgerReceipt), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn adjust(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<CardId>,
    Json(req): Json<Adjustment>,
) -> ApiResult<axum::Json<LedgerReceipt>> {
    Ok(axum::Json(app.adjust(&a, id, &req).await?))
}

/// Reverses a transaction exactly, with a reason.
#[utoipa::path(post, path = "/transactions/{id}/reversal", tag = "cards", security(("bearer" = [])), params(("id" = String, Path, description = "transaction id")), request_body = Reverse,
    responses((status = 200, body = LedgerReceipt), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn reverse(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<uuid::Uuid>,
    Json(req): Json<Reverse>,
) -> ApiResult<axum::Json<LedgerReceipt>> {
    Ok(axum::Json(app.reverse(&a, id, &req).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PinBody {
    /// 6 digits.
    pin: String,
}

/// Sets or changes the card's PIN.
#[utoipa::path(put, path = "/cards/{id}/pin", tag = "cards", security(("bearer" = [])), params(("id" = String, Path, description = "card id")), request_body = PinBody,
    responses((status = 204), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_pin(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<CardId>,
    Json(b): Json<PinBody>,
) -> ApiResult<StatusCode> {
    app.set_pin(&a, id, &b.pin).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct PinToken {
    /// Stands for the PIN on this card until `expires_at`.
    pin_token: String,
    expires_at: DateTime<Utc>,
}

/// The card's PIN attempts, newest first (the last 100), wrong ones included.
#[utoipa::path(get, path = "/cards/{id}/pin-attempts", tag = "cards", security(("bearer" = [])), params(("id" = String, Path, description = "card id")),
    responses((status = 200, body = Vec<patron_store::ledger::PinAttempt>), (status = 404, body = ErrorBody)))]
pub async fn pin_attempts(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<CardId>,
) -> ApiResult<axum::Json<Vec<patron_store::ledger::PinAttempt>>> {
    Ok(axum::Json(app.pin_attempts(&a, id).await?))
}

/// Checks the PIN once and returns a short-lived token for the spends of this visit.
#[utoipa::path(post, path = "/cards/{id}/pin-verification", tag = "cards", security(("bearer" = [])), params(("id" = String, Path, description = "card id")), request_body = PinBody,
    responses((status = 200, body = PinToken), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 423, body = ErrorBody)))]
pub async fn verify_pin(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<CardId>,
    Json(b): Json<PinBody>,
) -> ApiResult<axum::Json<PinToken>> {
    let (pin_token, expires_at) = app.verify_pin(&a, id, &b.pin).await?;
    Ok(axum::Json(PinToken {
        pin_token,
        expires_at,
    }))
}

/// Freezes a card.
#[utoipa::path(post, path = "/cards/{id}/freeze", tag = "cards", security(("bearer" = [])), params(("id" = String, Path, description = "card id")),
    responses((status = 200, body = Card), (status = 409, body = ErrorBody)))]
pub async fn freeze(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<CardId>,
) -> ApiResult<axum::Json<Card>> {
    Ok(axum::Json(app.set_frozen(&a, id, true).await?))
}

/// Unfreezes a card.
#[utoipa::path(post, path = "/cards/{id}/unfreeze", tag = "cards", security(("bearer" = [])), params(("id" = String, Path, description = "card id")),
    responses((status = 200, body = Card), (status = 409, body = ErrorBody)))]
pub async fn unfreeze(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<CardId>,
) -> ApiResult<axum::Json<Card>> {
    Ok(axum::Json(app.set_frozen(&a, id, false).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplaceBody {
    idempotency_key: String,
}

#[derive(Serialize, ToSchema)]
pub struct Replacement {
    new_card: CardView,
    receipt: LedgerReceipt,
}

/// Reports the card lost and issues a replacement holding its balances.
#[utoipa::path(post, path = "/cards/{id}/replacement", tag = "cards", security(("bearer" = [])), params(("id" = String, Path, description = "card id")), request_body = ReplaceBody,
    responses((status = 200, body = Replacement), (status = 409, body = ErrorBody)))]
pub async fn replace(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<CardId>,
    Json(b): Json<ReplaceBody>,
) -> ApiResult<axum::Json<Replacement>> {
    let (new_card, receipt) = app.replace_lost(&a, id, &b.idempotency_key).await?;
    Ok(axum::Json(Replacement { new_card, receipt }))
}

/// Closes the card and pays back its unused principal (bonus and points are forfeited).
#[utoipa::path(post, path = "/cards/{id}/closure", tag = "cards", security(("bearer" = [])), params(("id" = String, Path, description = "card id")), request_body = CloseCard,
    responses((status = 200, body = LedgerReceipt), (status = 409, body = ErrorBody)))]
pub async fn close(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<CardId>,
    Json(req): Json<CloseCard>,
) -> ApiResult<axum::Json<LedgerReceipt>> {
    Ok(axum::Json(app.close_card(&a, id, &req).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatementParams {
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    /// json (default), html or csv.
    format: Option<String>,
}

/// The card's statement with running balances, as JSON, printable HTML or CSV.
#[utoipa::path(get, path = "/cards/{id}/statement", tag = "cards", security(("bearer" = [])), params(("id" = String, Path, description = "card id"), StatementParams),
    responses((status = 200, body = Statement), (status = 404, body = ErrorBody)))]
pub async fn statement(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<CardId>,
    Query(p): Query<StatementParams>,
) -> ApiResult<Response> {
    let st = app.statement(&a, id, p.from, p.to).await?;
    Ok(match p.format.as_deref() {
        Some("csv") => (
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            patron_app::statements::csv(&st),
        )
            .into_response(),
        Some("html") => Html(patron_app::statements::html(&st)).into_response(),
        _ => axum::Json(st).into_response(),
    })
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LiabilityParams {
    /// Default: now.
    as_of: Option<DateTime<Utc>>,
}

/// Outstanding principal, bonus and points per store (of the entries) and kind.
#[utoipa::path(get, path = "/reports/liability", tag = "reports", security(("bearer" = [])), params(LiabilityParams),
    responses((status = 200, body = Vec<LiabilityRow>)))]
pub async fn liability(
    State(app): State<App>,
    Auth(a): Auth,
    Query(p): Query<LiabilityParams>,
) -> ApiResult<axum::Json<Vec<LiabilityRow>>> {
    Ok(axum::Json(
        app.liability(&a, p.as_of.unwrap_or_else(patron_app::now))
            .await?,
    ))
}

/// The tenant's settings: top-up tiers, split rule, PIN policy, prepaid-card policy.
#[utoipa::path(get, path = "/settings", tag = "settings", security(("bearer" = [])), responses((status = 200, body = TenantSettings)))]
pub async fn get_settings(
    State(app): State<App>,
    Auth(a): Auth,
) -> ApiResult<axum::Json<TenantSettings>> {
    Ok(axum::Json(app.settings(&a).await?))
}

/// Replaces the tenant's settings. Keys left out take their defaults; a key the settings
/// do not have is refused (422 `unknown_setting`), so a misspelt one cannot silently
/// reset its setting to the default.
#[utoipa::path(put, path = "/settings", tag = "settings", security(("bearer" = [])), request_body = TenantSettings,
    responses((status = 200, body = TenantSettings), (status = 422, body = ErrorBody)))]
pub async fn put_settings(
    State(app): State<App>,
    Auth(a): Auth,
    Json(body): Json<serde_json::Value>,
) -> ApiResult<axum::Json<TenantSettings>> {
    let s: TenantSettings = serde_json::from_value(body.clone()).map_err(|e| {
        crate::error::ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            e.to_string(),
        )
    })?;
    let known = serde_json::to_value(&s).expect("settings serialise");
    if let Some(key) = unknown_key(&body, &known, "") {
        return Err(crate::error::ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_setting",
            format!("there is no setting “{key}”"),
        )
        .with_field(key));
    }
    app.save_settings(&a, &s).await?;
    Ok(axum::Json(app.settings(&a).await?))
}

/// The first key of `given` (as a path, `points.redemption.enabled`) that `known` — the
/// same settings parsed and written back — lacks: a key the settings do not have.
fn unknown_key(given: &serde_json::Value, known: &serde_json::Value, path: &str) -> Option<String> {
    use serde_json::Value;
    match (given, known) {
        (Value::Object(g), Value::Object(k)) => g.iter().find_map(|(key, v)| {
            let here = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            match k.get(key) {
                Some(kv) => unknown_key(v, kv, &here),
                None if v.is_null() => None,
                None => Some(here),
            }
        }),
        (Value::Array(g), Value::Array(k)) => g
            .iter()
            .zip(k)
            .enumerate()
            .find_map(|(i, (v, kv))| unknown_key(v, kv, &format!("{path}[{i}]"))),
        _ => None,
    }
}
