//! The customers pages (being built).

use axum::Router;
use patron_app::App;

pub fn routes() -> Router<App> {
    Router::new()
}
