use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Auth, Json, Path, Query};
use crate::views::{CustomerPage, CustomerView};
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use patron_app::App;
use patron_domain::card::Card;
use patron_domain::customer::CustomerInput;
use patron_domain::ids::CustomerId;
use patron_domain::page::PageRequest;
use patron_domain::timeline::TimelineEvent;
use patron_store::{CustomerFilter, DuplicateGroup, MergeCounts};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Filters and paging of the customer list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Part of the name, or the start of its pinyin or initials.
    name: Option<String>,
    /// Start of the phone number.
    phone: Option<String>,
    tag: Option<String>,
    lifecycle_stage: Option<String>,
    customer_type: Option<String>,
    acquisition_source: Option<String>,
    level: Option<String>,
    marketing_consent: Option<bool>,
    /// 1–12.
    birthday_month: Option<u32>,
    created_from: Option<DateTime<Utc>>,
    created_to: Option<DateTime<Utc>>,
    /// From 1.
    page: Option<u32>,
    /// 1–500, default 50.
    per_page: Option<u32>,
}

/// Lists customers, newest first.
#[utoipa::path(get, path = "/customers", tag = "customers", security(("bearer" = [])), params(ListParams),
    responses((status = 200, body = CustomerPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn list(
    State(app): State<App>,
    Auth(a): Auth,
    Query(p): Query<ListParams>,
) -> ApiResult<axum::Json<CustomerPage>> {
    let filter = CustomerFilter {
        name: p.name,
        phone_prefix: p
            .phone
            .map(|s| s.chars().filter(char::is_ascii_digit).collect()),
        tag: p.tag,
        lifecycle_stage: p.lifecycle_stage,
        customer_type: p.customer_type,
        acquisition_source: p.acquisition_source,
        level: p.level,
        marketing_consent: p.marketing_consent,
        birthday_month: p.birthday_month,
        created_from: p.created_from,
        created_to: p.created_to,
        include_merged: false,
    };
    let page = PageRequest {
        page: p.page.unwrap_or(1),
        per_page: p.per_page.unwrap_or(50),
    };
    let result = app.list_customers(&a, &filter, page).await?;
    Ok(axum::Json(CustomerPage {
        items: result.items.into_iter().map(Into::into).collect(),
        page: result.page,
        per_page: result.per_page,
        has_more: result.has_more,
    }))
}

/// Creates a customer. 409 `phone_in_use` / `id_number_in_use` names the existing customer.
#[utoipa::path(post, path = "/customers", tag = "customers", security(("bearer" = [])), request_body = CustomerInput,
    responses((status = 201, body = CustomerView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(app): State<App>,
    Auth(a): Auth,
    Json(input): Json<CustomerInput>,
) -> ApiResult<(StatusCode, axum::Json<CustomerView>)> {
    let c = app.create_customer(&a, &input).await?;
    Ok((StatusCode::CREATED, axum::Json(c.into())))
}

/// One customer. A merged record answers with `merged_into` set.
#[utoipa::path(get, path = "/customers/{id}", tag = "customers", security(("bearer" = [])),
    params(("id" = String, Path, description = "customer id")),
    responses((status = 200, body = CustomerView), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<CustomerId>,
) -> ApiResult<axum::Json<CustomerView>> {
    Ok(axum::Json(app.get_customer(&a, id).await?.into()))
}

/// Updates a customer with a JSON merge patch: keys present replace (null clears),
/// keys absent stay. The ID number is replaced only when `id_number` is sent.
#[utoipa::path(patch, path = "/customers/{id}", tag = "customers", security(("bearer" = [])),
    params(("id" = String, Path, description = "customer id")), request_body = CustomerInput,
    responses((status = 200, body = CustomerView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<CustomerId>,
    Json(patch): Json<serde_json::Value>,
) -> ApiResult<axum::Json<CustomerView>> {
    Ok(axum::Json(
        app.update_customer(&a, id, &patch).await?.into(),
    ))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LookupParams {
    /// A phone number, a card number, or the start of a name / pinyin / initials.
    q: String,
    /// At most this many (default 20).
    limit: Option<i64>,
}

/// The till's search box.
#[utoipa::path(get, path = "/customers/lookup", tag = "customers", security(("bearer" = [])), params(LookupParams),
    responses((status = 200, body = Vec<CustomerView>), (status = 400, body = ErrorBody)))]
pub async fn lookup(
    State(app): State<App>,
    Auth(a): Auth,
    Query(p): Query<LookupParams>,
) -> ApiResult<axum::Json<Vec<CustomerView>>> {
    let found = app
        .lookup_customers(&a, &p.q, p.limit.unwrap_or(20))
        .await?;
    Ok(axum::Json(found.into_iter().map(Into::into).collect()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IdNumberLookup {
    /// resident_id (default), passport, hk_macao_permit, taiwan_permit, other.
    id_document_kind: Option<String>,
    id_number: String,
}

/// Finds the customer holding an ID document. A POST so the number stays out of URLs and logs.
#[utoipa::path(post, path = "/customers/lookup-by-id-number", tag = "customers", security(("bearer" = [])), request_body = IdNumberLookup,
    responses((status = 200, body = CustomerView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn lookup_by_id_number(
    State(app): State<App>,
    Auth(a): Auth,
    Json(b): Json<IdNumberLookup>,
) -> ApiResult<axum::Json<CustomerView>> {
    let c = app
        .customer_by_id_number(&a, b.id_document_kind.as_deref(), &b.id_number)
        .await?;
    c.map(|c| axum::Json(c.into()))
        .ok_or_else(|| patron_app::AppError::NotFound { entity: "customer" }.into())
}

/// Groups of customers that look like the same person.
#[utoipa::path(get, path = "/customers/duplicates", tag = "customers", security(("bearer" = [])),
    responses((status = 200, body = Vec<DuplicateGroup>)))]
pub async fn duplicates(
    State(app): State<App>,
    Auth(a): Auth,
) -> ApiResult<axum::Json<Vec<DuplicateGroup>>> {
    Ok(axum::Json(app.duplicate_groups(&a).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeRequest {
    /// The duplicate to fold into the customer in the path.
    duplicate_id: CustomerId,
}

#[derive(Serialize, ToSchema)]
pub struct MergeResponse {
    survivor: CustomerView,
    moved: MergeCounts,
}

/// Merges a duplicate into this customer: blanks filled from the duplicate, lists
/// united, timeline, cards, members and referrals moved; the duplicate then redirects.
#[utoipa::path(post, path = "/customers/{id}/merge", tag = "customers", security(("bearer" = [])),
    params(("id" = String, Path, description = "the surviving customer")), request_body = MergeRequest,
    responses((status = 200, body = MergeResponse), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn merge(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<CustomerId>,
    Json(b): Json<MergeRequest>,
) -> ApiResult<axum::Json<MergeResponse>> {
    let (survivor, moved) = app.merge_customers(&a, id, b.duplicate_id).await?;
    Ok(axum::Json(MergeResponse {
        survivor: survivor.into(),
        moved,
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TimelineParams {
    /// The next page: the `occurred_at` of the last event shown. Events strictly before
    /// it come next, and with `before_id` also those at that very moment after it.
    before: Option<DateTime<Utc>>,
    /// With `before`: the `id` of the last event shown (events sharing a moment are
    /// listed by id, descending, so none is skipped or repeated across pages).
    before_id: Option<uuid::Uuid>,
    /// 1–500, default 50.
    limit: Option<i64>,
}

/// The customer's timeline, newest first.
#[utoipa::path(get, path = "/customers/{id}/timeline", tag = "customers", security(("bearer" = [])),
    params(("id" = String, Path, description = "customer id"), TimelineParams),
    responses((status = 200, body = Vec<TimelineEvent>), (status = 404, body = ErrorBody)))]
pub async fn timeline(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<CustomerId>,
    Query(p): Query<TimelineParams>,
) -> ApiResult<axum::Json<Vec<TimelineEvent>>> {
    Ok(axum::Json(
        app.timeline(&a, id, p.before, p.before_id, p.limit.unwrap_or(50))
            .await?,
    ))
}

/// The customer's cards.
#[utoipa::path(get, path = "/customers/{id}/cards", tag = "customers", security(("bearer" = [])),
    params(("id" = String, Path, description = "customer id")),
    responses((status = 200, body = Vec<Card>), (status = 404, body = ErrorBody)))]
pub async fn cards(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<CustomerId>,
) -> ApiResult<axum::Json<Vec<Card>>> {
    Ok(axum::Json(app.customer_cards(&a, id).await?))
}
