//! Patron's HTTP layer: the JSON API under `/api/v1`, its OpenAPI document and API page.
//! Handlers are thin: extract, call one use case in `patron_app`, map the result.
//! Errors are mapped to HTTP once, in [`error::ApiError`].

pub mod api;
pub mod error;
pub mod extract;
pub mod views;
pub mod web;

use axum::Router;
use patron_app::App;
use std::future::Future;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

/// The whole application router (API, OpenAPI document, API page).
pub fn router(app: App) -> Router {
    let (api, openapi) = api::routes().split_for_parts();
    let openapi = api::finish_openapi(openapi);
    Router::new()
        .nest("/api/v1", api.merge(api::docs_routes(openapi)))
        .merge(web::routes())
        .fallback(api::not_found)
        .with_state(app)
        .layer(axum::extract::DefaultBodyLimit::max(1024 * 1024))
        .layer(CatchPanicLayer::custom(error::panic_response))
        .layer(TraceLayer::new_for_http())
}

/// Serves until `shutdown` resolves, then finishes in-flight requests.
pub async fn serve(
    app: App,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Connection info gives the login rate limit the client's address.
    axum::serve(
        listener,
        router(app).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
