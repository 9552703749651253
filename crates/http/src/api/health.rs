use crate::error::ApiResult;
use axum::Json;
use axum::extract::State;
use patron_app::App;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// "ok" when the database answers.
    status: &'static str,
    /// sqlite or postgres.
    backend: String,
    version: &'static str,
}

/// Liveness and database check (no authentication).
#[utoipa::path(get, path = "/health", tag = "system", responses((status = 200, body = Health), (status = 500, body = crate::error::ErrorBody)))]
pub async fn health(State(app): State<App>) -> ApiResult<Json<Health>> {
    app.storage
        .ping()
        .await
        .map_err(patron_app::AppError::from)?;
    Ok(Json(Health {
        status: "ok",
        backend: format!("{:?}", app.storage.backend()).to_lowercase(),
        version: env!("CARGO_PKG_VERSION"),
    }))
}
