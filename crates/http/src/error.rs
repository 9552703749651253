//! The one place where errors become HTTP responses.
//!
//! Body: `{"error": {"code": "...", "message": "...", "field": "...", "fields": [...],
//! "existing_id": "..."}}`. Internal errors are logged with detail and answered with a
//! generic message: no request can learn the database's internals.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use patron_app::AppError;
use patron_domain::FieldError;
use serde::Serialize;
use utoipa::ToSchema;

/// An API error response body.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong, for machines (`code`, `field`) and people (`message`).
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `validation_failed`, `phone_in_use`, `not_found`.
    pub code: String,
    /// A sentence for a person.
    pub message: String,
    /// The field at fault, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Every invalid field, for validation errors.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldError>,
    /// The record that holds a clashing value (409).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub existing_id: Option<String>,
}

/// An error on its way to becoming a response.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    /// Boxed: keeps `Result<T, ApiError>` small on the happy path.
    pub detail: Box<ErrorDetail>,
    /// Seconds for a `Retry-After` header (429); u16 keeps the error small.
    pub retry_after: Option<u16>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            detail: Box::new(ErrorDetail {
                code: code.into(),
                message: message.into(),
                field: None,
                fields: vec![],
                existing_id: None,
            }),
            retry_after: None,
        }
    }
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.detail.field = Some(field.into());
        self
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::Validation(v) => {
                let first = v.0.first().map(|f| f.field.clone());
                let message = v.to_string();
                let mut err = ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "validation_failed",
                    message,
                );
                err.detail.field = first;
                err.detail.fields = v.0;
                err
            }
            AppError::NotFound { entity } => ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("{entity} not found"),
            ),
            AppError::Conflict {
                code,
                field,
                message,
                existing,
            } => {
                let mut err = ApiError::new(StatusCode::CONFLICT, code, message);
                err.detail.field = field.map(Into::into);
                err.detail.existing_id = existing.map(|u| u.to_string());
                err
            }
            AppError::BadCredentials => {
                ApiError::new(StatusCode::UNAUTHORIZED, "bad_credentials", e.to_string())
            }
            AppError::Unauthenticated => {
                ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", e.to_string())
            }
            AppError::Forbidden(m) => ApiError::new(StatusCode::FORBIDDEN, "forbidden", m),
            AppError::ApprovalRequired(m) => {
                ApiError::new(StatusCode::FORBIDDEN, "approval_required", m).with_field("approval")
            }
            AppError::TooManyAttempts {
                message,
                retry_after_secs,
            } => {
                let mut err =
                    ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_attempts", message);
                err.retry_after = Some(u16::try_from(retry_after_secs.max(1)).unwrap_or(u16::MAX));
                err
            }
            AppError::WrongPin { .. } => {
                ApiError::new(StatusCode::FORBIDDEN, "wrong_pin", e.to_string()).with_field("pin")
            }
            AppError::Locked { message } => {
                ApiError::new(StatusCode::LOCKED, "card_locked", message)
            }
            AppError::CouponRejected(r) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, r.code(), r.to_string())
                    .with_field("code")
            }
            AppError::Store(inner) => {
                tracing::error!(error = %inner, "store error");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error; it has been logged",
                )
            }
            AppError::Internal(m) => {
                tracing::error!(error = %m, "internal error");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error; it has been logged",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = (
            self.status,
            Json(ErrorBody {
                error: *self.detail,
            }),
        )
            .into_response();
        if let Some(secs) = self.retry_after
            && let Ok(v) = axum::http::HeaderValue::from_str(&secs.to_string())
        {
            res.headers_mut().insert("retry-after", v);
        }
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(
                "www-authenticate",
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        res
    }
}

/// Response for a handler that panicked: logged, answered as a JSON 500.
pub fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("handler panicked");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "internal error; it has been logged",
    )
    .into_response()
}

pub type ApiResult<T> = Result<T, ApiError>;

/// Documents, on every operation of the OpenAPI document, the errors that come from the
/// shared extractors and checks rather than from the handler itself, so that the document
/// lists every status a request can get: 401 and 403 (session, permission, CSRF) where a
/// login is needed; 404 for a path id that names no record (or is no id at all) and for a
/// `store` query parameter that names no store; 400 for
/// a malformed query; 400, 413, 415 and 422 for a body that is not JSON, too large, of
/// another type or of the wrong shape. A handler's own description of a status wins.
pub fn document_common_errors(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::path::ParameterIn;
    use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
    let error = |description: &str| {
        RefOr::T(
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build(),
        )
    };
    for item in doc.paths.paths.values_mut() {
        let ops = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for op in ops.into_iter().flatten() {
            let params = op.parameters.iter().flatten().filter_map(|p| match p {
                RefOr::T(p) => Some(p),
                RefOr::Ref(_) => None,
            });
            let (mut in_path, mut in_query, mut store) = (false, false, false);
            for p in params {
                in_path |= matches!(p.parameter_in, ParameterIn::Path);
                in_query |= matches!(p.parameter_in, ParameterIn::Query);
                store |= matches!(p.parameter_in, ParameterIn::Query) && p.name == "store";
            }
            let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
            let body = op.request_body.is_some();
            let mut add = |status: &str, description: &str| {
                op.responses
                    .responses
                    .entry(status.to_string())
                    .or_insert_with(|| error(description));
            };
            if secured {
                add(
                    "401",
                    "`unauthenticated`: no valid session or API token was sent",
                );
                add(
                    "403",
                    "`forbidden`: the role or token lacks the permission, or the record is at \
                     another store; `csrf_failed`: a cookie session without `X-CSRF-Token`",
                );
            }
            if in_path {
                add("404", "`not_found`: no such record");
            }
            if store {
                add("404", "`not_found`: no such store");
            }
            if body {
                add(
                    "400",
                    "`invalid_json`: the body is not JSON; `invalid_query`: a malformed query parameter",
                );
                add("413", "`body_too_large`: the body is larger than 1 MiB");
                add(
                    "415",
                    "`unsupported_media_type`: the body is not `application/json`",
                );
                add(
                    "422",
                    "`invalid_body`: the JSON does not have the expected shape; \
                     `validation_failed`: a field is invalid (every one in `fields`)",
                );
            } else if in_query {
                add("400", "`invalid_query`: a malformed query parameter");
            }
        }
    }
}
