use thiserror::Error;

/// What can go wrong in the store layer.
#[derive(Debug, Error)]
pub enum StoreError {
    /// A unique constraint refused the write; `what` names the clashing value
    /// (phone, id_number, username, code, card_number...).
    #[error("{what} already in use")]
    Conflict { what: &'static str },
    /// A row the write depends on is missing (e.g. a foreign key).
    #[error("referenced record not found: {0}")]
    MissingReference(String),
    #[error("record not found")]
    NotFound,
    /// A balance would fall below its floor: the statement refused the change.
    #[error("insufficient balance in account {account}")]
    Insufficient { account: uuid::Uuid },
    /// The idempotency key was used before for a different request.
    #[error("idempotency key reused for a different request")]
    IdempotencyMismatch,
    /// The transaction was reversed already.
    #[error("already reversed")]
    AlreadyReversed,
    /// A request the store cannot apply (a bug in the caller).
    #[error("invalid request to the store: {0}")]
    Invalid(String),
    /// A stored value this version cannot read: a bug or a hand edit.
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &e {
            // SQLite names the columns in the message, PostgreSQL names the constraint.
            let text = format!("{} {}", db.message(), db.constraint().unwrap_or(""));
            match db.kind() {
                sqlx::error::ErrorKind::UniqueViolation => {
                    return StoreError::Conflict {
                        what: conflict_subject(&text),
                    };
                }
                sqlx::error::ErrorKind::ForeignKeyViolation => {
                    return StoreError::MissingReference(text);
                }
                _ => {}
            }
        }
        StoreError::Database(e)
    }
}

fn conflict_subject(text: &str) -> &'static str {
    const SUBJECTS: &[(&str, &str)] = &[
        ("phone", "phone"),
        ("id_doc", "id_number"),
        ("username", "username"),
        ("number", "card_number"),
        ("code", "code"),
    ];
    SUBJECTS
        .iter()
        .find(|(needle, _)| text.contains(needle))
        .map(|(_, s)| *s)
        .unwrap_or("record")
}
