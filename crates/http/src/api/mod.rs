//! The `/api/v1` routes. Each handler is registered with `routes!` so the OpenAPI
//! document is generated from the route table itself.

mod analytics;
mod audit;
pub(crate) mod auth;
mod cards;
mod checkout;
mod corporate;
mod coupons;
mod customers;
mod health;
mod loyalty;
mod menu;
mod org;
mod settlement;
mod staff;

use crate::error::{ApiError, ErrorBody};
use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use patron_app::App;
use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Every API route, with its OpenAPI description.
pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(health::health))
        .routes(routes!(auth::login))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::me))
        .routes(routes!(staff::list, staff::create))
        .routes(routes!(staff::get, staff::update))
        .routes(routes!(staff::reset_password))
        .routes(routes!(staff::create_token, staff::list_tokens))
        .routes(routes!(staff::revoke_token))
        .routes(routes!(audit::search))
        .routes(routes!(org::stores))
        .routes(routes!(org::menu))
        .routes(routes!(menu::list_categories, menu::create_category))
        .routes(routes!(menu::update_category))
        .routes(routes!(menu::list_items, menu::create_item))
        .routes(routes!(menu::get_item, menu::update_item))
        .routes(routes!(menu::set_member_prices))
        .routes(routes!(menu::price_history))
        .routes(routes!(menu::quote))
        .routes(routes!(customers::list, customers::create))
        .routes(routes!(customers::lookup))
        .routes(routes!(customers::lookup_by_id_number))
        .routes(routes!(customers::duplicates))
        .routes(routes!(customers::get, customers::update))
        .routes(routes!(customers::merge))
        .routes(routes!(customers::timeline))
        .routes(routes!(customers::cards))
        .routes(routes!(checkout::quote))
        .routes(routes!(checkout::checkout))
        .routes(routes!(checkout::get))
        .routes(routes!(checkout::receipt))
        .routes(routes!(checkout::print))
        .routes(routes!(checkout::reverse))
        .routes(routes!(checkout::refund))
        .routes(routes!(loyalty::record_purchase))
        .routes(routes!(loyalty::card_points))
        .routes(routes!(loyalty::cash_quote))
        .routes(routes!(loyalty::redeem_gift))
        .routes(routes!(loyalty::exchange_for_coupon))
        .routes(routes!(loyalty::customer_loyalty))
        .routes(routes!(loyalty::set_level))
        .routes(routes!(loyalty::list_gifts, loyalty::create_gift))
        .routes(routes!(loyalty::update_gift))
        .routes(routes!(loyalty::run_jobs))
        .routes(routes!(cards::issue))
        .routes(routes!(cards::by_number))
        .routes(routes!(cards::get))
        .routes(routes!(cards::top_up))
        .routes(routes!(cards::top_up_preview))
        .routes(routes!(cards::spend))
        .routes(routes!(cards::transfer))
        .routes(routes!(cards::adjust))
        .routes(routes!(cards::reverse))
        .routes(routes!(cards::set_pin))
        .routes(routes!(cards::verify_pin))
        .routes(routes!(cards::pin_attempts))
        .routes(routes!(cards::freeze))
        .routes(routes!(cards::unfreeze))
        .routes(routes!(cards::replace))
        .routes(routes!(cards::close))
        .routes(routes!(cards::statement))
        .routes(routes!(cards::liability))
        .routes(routes!(cards::get_settings, cards::put_settings))
        .routes(routes!(corporate::get_account, corporate::set_limit))
        .routes(routes!(corporate::charge))
        .routes(routes!(corporate::repay))
        .routes(routes!(corporate::statement))
        .routes(routes!(corporate::pool))
        .routes(routes!(coupons::list_templates, coupons::create_template))
        .routes(routes!(coupons::get_template, coupons::update_template))
        .routes(routes!(coupons::issue))
        .routes(routes!(coupons::list_rules, coupons::create_rule))
        .routes(routes!(coupons::update_rule))
        .routes(routes!(coupons::list))
        .routes(routes!(coupons::expire))
        .routes(routes!(coupons::by_code))
        .routes(routes!(coupons::redeem))
        .routes(routes!(coupons::void))
        .routes(routes!(settlement::daily))
        .routes(routes!(settlement::daily_html))
        .routes(routes!(settlement::close_day))
        .routes(routes!(settlement::reopen_day))
        .routes(routes!(settlement::open_shift, settlement::list_shifts))
        .routes(routes!(settlement::close_shift))
        .routes(routes!(settlement::shift_report))
        .routes(routes!(settlement::inter_store))
        .routes(routes!(analytics::overview))
        .routes(routes!(analytics::quadrants))
        .routes(routes!(analytics::quadrant_customers))
        .routes(routes!(analytics::migration))
        .routes(routes!(analytics::migration_customers))
        .routes(routes!(analytics::rfm))
        .routes(routes!(analytics::rfm_customers))
        .routes(routes!(analytics::pyramid))
        .routes(routes!(analytics::pyramid_customers))
        .routes(routes!(analytics::churn))
        .routes(routes!(analytics::card_liveness))
        .routes(routes!(analytics::cohorts))
        .routes(routes!(analytics::affinity))
        .routes(routes!(analytics::levels))
        .routes(routes!(analytics::liability))
        .routes(routes!(analytics::customer_value))
}

/// Adds the document's metadata, the bearer scheme and the shared schemas.
pub fn finish_openapi(mut doc: OpenApi) -> OpenApi {
    doc.info.title = "Patron API".into();
    doc.info.version = env!("CARGO_PKG_VERSION").into();
    doc.info.description = Some(
        "Customer relationship and membership for restaurants. Log in with POST /api/v1/auth/login, then send \
         `Authorization: Bearer <token>`. Errors are `{\"error\": {\"code\", \"message\", \"field\"}}`. Money is in fen."
            .into(),
    );
    doc.servers = Some(vec![utoipa::openapi::Server::new("/api/v1")]);
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
    );
    use utoipa::{PartialSchema, ToSchema};
    components
        .schemas
        .insert(ErrorBody::name().into(), ErrorBody::schema());
    components.schemas.insert(
        crate::error::ErrorDetail::name().into(),
        crate::error::ErrorDetail::schema(),
    );
    components.schemas.insert(
        patron_domain::FieldError::name().into(),
        patron_domain::FieldError::schema(),
    );
    crate::error::document_common_errors(&mut doc);
    doc
}

/// `/openapi.json` and the API page (Swagger UI, bundled in the binary).
pub fn docs_routes(doc: OpenApi) -> Router<App> {
    let json = doc
        .to_pretty_json()
        .expect("the OpenAPI document serialises");
    Router::new()
        .route(
            "/openapi.json",
            get(move || async move { ([(header::CONTENT_TYPE, "application/json")], json) }),
        )
        .route("/docs", get(|| async { Html(DOCS_PAGE) }))
        .route(
            "/docs/swagger-ui-bundle.js",
            get(|| async {
                static_asset(
                    "text/javascript",
                    include_bytes!("../../assets/vendor/swagger-ui/swagger-ui-bundle.js"),
                )
            }),
        )
        .route(
            "/docs/swagger-ui.css",
            get(|| async {
                static_asset(
                    "text/css",
                    include_bytes!("../../assets/vendor/swagger-ui/swagger-ui.css"),
                )
            }),
        )
}

fn static_asset(content_type: &'static str, bytes: &'static [u8]) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        bytes,
    )
        .into_response()
}

const DOCS_PAGE: &str = r##"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Patron API</title>
<link rel="stylesheet" href="/api/v1/docs/swagger-ui.css"></head>
<body><div id="ui"></div>
<script src="/api/v1/docs/swagger-ui-bundle.js"></script>
<script>window.ui = SwaggerUIBundle({ url: "/api/v1/openapi.json", dom_id: "#ui", persistAuthorization: true });</script>
</body></html>"##;

/// Unknown paths.
pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}
