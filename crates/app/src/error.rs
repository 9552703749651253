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
    /// Allowed only with a manager's approval, which was missing or not good enough.
    #[error("{0}")]
    ApprovalRequired(String),
    /// Too many failed logins or approvals: refused until `retry_after_secs` have passed.
    #[error("{message}")]
    TooManyAttempts {
        message: String,
        retry_after_secs: i64,
    },
    /// A wrong card PIN; `remaining` tries before spending locks.
    #[error("wrong PIN: {remaining} tries left before the card locks")]
    WrongPin { remaining: u32 },
    /// Spending is locked for a while (too many wrong PINs).
    #[error("{message}")]
    Locked { message: String },
    /// A coupon that cannot be used here and now; `code()` says why.
    #[error("{0}")]
    CouponRejected(patron_domain::coupon::CouponRejection),
    #[error(transparent)]
    Store(StoreError),
    #[error("{0}")]
    Internal(String),
}

/// Store conflicts passed on with their own code, and what to tell the user.
const STATE_CONFLICTS: &[(&str, &str)] = &[
    (
        "coupon_already_redeemed",
        "the coupon has already been used",
    ),
    ("coupon_voided", "the coupon was voided"),
    (
        "coupon_changed",
        "the coupon changed meanwhile (another owner); look again and retry",
    ),
    ("coupon_expired", "the coupon has expired"),
    (
        "coupon_limit_reached",
        "the customer already holds as many of these coupons as allowed",
    ),
    ("gift_out_of_stock", "this gift is out of stock"),
    (
        "coupon_used",
        "a coupon this bill issued was used meanwhile; look again and retry",
    ),
    (
        "refund_exceeds_bill",
        "another refund or reversal of this bill came first; look again",
    ),
    (
        "day_closed",
        "this business day is closed; the owner can reopen it",
    ),
    (
        "level_changed",
        "the customer's level changed meanwhile; look again and retry",
    ),
    (
        "points_lots_changed",
        "the points changed meanwhile; run the expiry again",
    ),
];

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => AppError::NotFound { entity: "record" },
            // Conflicts that are a state of the business, not a taken unique value.
            StoreError::Conflict { what } if STATE_CONFLICTS.iter().any(|(c, _)| *c == what) => {
                let message = STATE_CONFLICTS
                    .iter()
                    .find(|(c, _)| *c == what)
                    .map(|(_, m)| (*m).to_string())
                    .unwrap_or_default();
                AppError::Conflict {
                    code: what,
                    field: None,
                    message,
                    existing: None,
                }
            }
            StoreError::Conflict { what } => AppError::Conflict {
                code: "conflict",
                field: Some(what),
                message: format!("{what} is already in use"),
                existing: None,
            },
            // Refusals of the ledger that a use case passes on with `?` are refusals too,
            // not internal errors (a replacement retried with another request's key).
            StoreError::IdempotencyMismatch => AppError::Conflict {
                code: "idempotency_key_reused",
                field: Some("idempotency_key"),
                message: "this idempotency key was already used for a different request".into(),
                existing: None,
            },
            StoreError::AlreadyReversed => AppError::Conflict {
                code: "already_reversed",
                field: None,
                message: "this transaction has already been reversed".into(),
                existing: None,
            },
            StoreError::Insufficient { .. } => AppError::Conflict {
                code: "insufficient_balance",
                field: None,
                message: "insufficient balance".into(),
                existing: None,
            },
            other => AppError::Store(other),
        }
    }
}
