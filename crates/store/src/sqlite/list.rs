//! Runs the lists written once in [`crate::lists`] on SQLite.

use rusqlite::types::Value;
use rusqlite::{Connection, Row, params_from_iter};

use super::map_error;
use crate::lists::{self, Dialect, ListQuery, Param};
use crate::{Page, PageRequest, Result, StoreError};

pub(crate) fn run<T>(
    connection: &Connection,
    query: ListQuery,
    page: &PageRequest,
    map: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Page<T>> {
    let (sql, params) = query.render(Dialect::Sqlite, page);
    let values = params
        .into_iter()
        .map(|param| match param {
            Param::One(lists::Value::Status(value)) => Ok(Value::Integer(value.into())),
            Param::One(lists::Value::Int(value)) => Ok(Value::Integer(value.into())),
            Param::One(lists::Value::Big(value)) => Ok(Value::Integer(value)),
            Param::One(lists::Value::Text(value)) => Ok(Value::Text(value)),
            // The SQLite rendering expands lists into one mark per item.
            Param::Texts(_) => Err(StoreError::Internal(
                "an array parameter in a SQLite statement".into(),
            )),
        })
        .collect::<Result<Vec<Value>>>()?;
    let mut statement = connection.prepare_cached(&sql).map_err(map_error)?;
    let rows = statement
        .query_map(params_from_iter(values), map)
        .map_err(map_error)?
        .collect::<rusqlite::Result<Vec<T>>>()
        .map_err(map_error)?;
    Ok(page.finish(rows))
}
