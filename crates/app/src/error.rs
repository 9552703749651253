use patron_domain::ValidationErrors;
use patron_store::StoreError;
use thiserror::Error;

/// What a use case can refuse or fail with. The HTTP layer maps each variant once
/// (422, 404, 409, 401, 403, 500); the CLI prints the message.
#[derive(Debug, Error)]
pub enum AppError {
    #[error("invalid input: {0}")]
    Validation(#[from] ValidationErrors),
    #[error("{entity} not found")]
    NotFound { entity: &'static str },
    /// A unique value is taken; `existing` is the record holding it when known.
    #[error("{message}")]
    Conflict {
        code: &'static str,
        field: Option<&'static str>,
        message: String,
        existing: Option<uuid::Uuid>,
    },
    #[error("wrong tenant, username or password")]
    BadCredentials,
    #[error("not logged in or the session has expired")]
    Unauthenticated,
    #[error("{0}")]
    Forbidden(String),
    /// A wrong card PIN; `remaining` tries before spending locks.
    #[error("wrong PIN: {remaining} tries left before the card locks")]
    WrongPin { remaining: u32 },
    /// Spending is locked for a while (too many wrong PINs).
    #[error("{message}")]
    Locked { message: String },
    #[error(transparent)]
    Store(StoreError),
    #[error("{0}")]
    Internal(String),
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => AppError::NotFound { entity: "record" },
            StoreError::Conflict { what } => AppError::Conflict {
                code: "conflict",
                field: Some(what),
                message: format!("{what} is already in use"),
                existing: None,
            },
            other => AppError::Store(other),
        }
    }
}
