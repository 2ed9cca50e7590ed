//! Parameters of statements built at run time.

use tokio_postgres::types::ToSql;

/// A parameter of a query built at run time.
pub(crate) type Param = Box<dyn ToSql + Sync + Send>;

/// Any value as a parameter.
pub(crate) fn param<T: ToSql + Sync + Send + 'static>(value: T) -> Param {
    Box::new(value)
}

/// Milliseconds, or any BIGINT, as a parameter.
pub(crate) fn int(value: i64) -> Param {
    Box::new(value)
}

pub(crate) fn text(value: &str) -> Param {
    Box::new(value.to_owned())
}
