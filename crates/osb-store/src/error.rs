//! The store's one error type.

/// What can go wrong in a store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database cannot be reached, is locked by another process, or refused the write
    /// (read-only or full disk). Nothing was written; the request may be retried.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// The database file is not one of this store's (corrupt, or another program's), or its
    /// schema is newer than this build knows.
    #[error("the database is not usable: {0}")]
    Incompatible(String),
    /// A stored record does not decode (written by a newer version, or edited by hand).
    #[error("a stored record does not decode: {0}")]
    Corrupt(String),
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::Database(db) => {
                let message = db.message().to_string();
                let lower = message.to_ascii_lowercase();
                if lower.contains("not a database") || lower.contains("malformed") {
                    StoreError::Incompatible(message)
                } else {
                    StoreError::Unavailable(message)
                }
            }
            sqlx::Error::Decode(_) | sqlx::Error::ColumnDecode { .. } => {
                StoreError::Corrupt(error.to_string())
            }
            sqlx::Error::Migrate(_) => StoreError::Incompatible(error.to_string()),
            _ => StoreError::Unavailable(error.to_string()),
        }
    }
}

#[cfg(feature = "sqlite")]
impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode;
        match &error {
            rusqlite::Error::SqliteFailure(failure, _)
                if matches!(
                    failure.code,
                    ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt
                ) =>
            {
                StoreError::Incompatible(error.to_string())
            }
            rusqlite::Error::FromSqlConversionFailure(..)
            | rusqlite::Error::InvalidColumnType(..)
            | rusqlite::Error::IntegralValueOutOfRange(..)
            | rusqlite::Error::Utf8Error(_)
            | rusqlite::Error::InvalidColumnName(_) => StoreError::Corrupt(error.to_string()),
            _ => StoreError::Unavailable(error.to_string()),
        }
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(error: serde_json::Error) -> Self {
        StoreError::Corrupt(error.to_string())
    }
}
