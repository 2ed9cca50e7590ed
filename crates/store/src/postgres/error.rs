//! Maps PostgreSQL's errors, once, to the kinds callers act on: a unique violation is a
//! conflict, text the database cannot hold (a NUL character) is invalid input, a lost or refused connection or a transaction the server rolled back to keep
//! transactions serializable is "unavailable, retry later", anything else is internal.

use std::error::Error as _;

use deadpool_postgres::PoolError;
use tokio_postgres::error::SqlState;

use crate::{Conflict, StoreError};

/// The error classes (the first two characters of a SQLSTATE) that mean "try again later".
const RETRYABLE_CLASSES: [&str; 3] = [
    // Connection exception.
    "08", // Insufficient resources (too many connections, disk full, out of memory).
    "53", // Transaction rollback: serialization failure, deadlock detected.
    "40",
];

/// Maps an error of the PostgreSQL client.
pub(crate) fn map_error(error: tokio_postgres::Error) -> StoreError {
    let text = describe(&error);
    match error.code() {
        Some(code) if *code == SqlState::UNIQUE_VIOLATION => {
            StoreError::Conflict(Conflict::unique(text))
        }
        // PostgreSQL text cannot hold the NUL character: the input is at fault, not the store.
        Some(code)
            if *code == SqlState::CHARACTER_NOT_IN_REPERTOIRE
                || *code == SqlState::UNTRANSLATABLE_CHARACTER =>
        {
            StoreError::Invalid("text must not contain the NUL character (\\u0000)".into())
        }
        Some(code) if retryable(code) => StoreError::Unavailable(text),
        Some(_) => StoreError::Internal(text),
        // No SQLSTATE: the client failed to reach or keep the server, or (not an io error)
        // to convert a value.
        None if error.is_closed() || io_failure(&error) => StoreError::Unavailable(text),
        None => StoreError::Internal(text),
    }
}

/// Maps an error of the connection pool.
pub(crate) fn map_pool_error(error: PoolError) -> StoreError {
    match error {
        PoolError::Backend(error) => map_error(error),
        PoolError::Timeout(_) => {
            StoreError::Unavailable("timed out waiting for a database connection".into())
        }
        PoolError::Closed => StoreError::Unavailable("the connection pool is closed".into()),
        other => StoreError::Unavailable(format!("cannot get a database connection: {other}")),
    }
}

fn retryable(code: &SqlState) -> bool {
    let code = code.code();
    RETRYABLE_CLASSES
        .iter()
        .any(|class| code.starts_with(class))
        || code == SqlState::ADMIN_SHUTDOWN.code()
        || code == SqlState::CRASH_SHUTDOWN.code()
        || code == SqlState::CANNOT_CONNECT_NOW.code()
        || code == SqlState::READ_ONLY_SQL_TRANSACTION.code()
}

fn io_failure(error: &tokio_postgres::Error) -> bool {
    error
        .source()
        .is_some_and(|source| source.is::<std::io::Error>())
}

/// The server's message and SQLSTATE when it sent one, else the client's description.
fn describe(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{} {}: {}", db.severity(), db.code().code(), db.message()),
        None => match error.source() {
            Some(source) => format!("{error}: {source}"),
            None => error.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_that_pass_are_retryable() {
        assert!(retryable(&SqlState::T_R_SERIALIZATION_FAILURE));
        assert!(retryable(&SqlState::T_R_DEADLOCK_DETECTED));
        assert!(retryable(&SqlState::TOO_MANY_CONNECTIONS));
        assert!(retryable(&SqlState::ADMIN_SHUTDOWN));
        assert!(retryable(&SqlState::CONNECTION_FAILURE));
        assert!(!retryable(&SqlState::UNIQUE_VIOLATION));
        assert!(!retryable(&SqlState::SYNTAX_ERROR));
    }
}
