//! Shared statements ([`crate::db`]) on SQLite: parameters bound by their number, so `$3` takes
//! the third whatever its place in the text, and columns read as they are stored.

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, Statement};

use super::map_error;
use crate::db::{Param, Row, Value, corrupt};
use crate::{Result, StoreError};

pub(crate) fn execute(c: &Connection, sql: &str, params: &[Param<'_>]) -> Result<u64> {
    let mut statement = c.prepare_cached(sql).map_err(map_error)?;
    bind(&mut statement, params)?;
    let changed = statement.raw_execute().map_err(map_error)?;
    Ok(changed as u64)
}

pub(crate) fn query<T>(
    c: &Connection,
    sql: &str,
    params: &[Param<'_>],
    mut read: impl FnMut(&Row<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let mut statement = c.prepare_cached(sql).map_err(map_error)?;
    bind(&mut statement, params)?;
    let mut rows = statement.raw_query();
    let mut read_rows = Vec::new();
    while let Some(row) = rows.next().map_err(map_error)? {
        read_rows.push(read(&Row::Sqlite(row))?);
    }
    Ok(read_rows)
}

/// Binds each mark of the statement: `$n` or `?n` to the n-th parameter, a bare `?` to the
/// parameter of its position.
fn bind(statement: &mut Statement<'_>, params: &[Param<'_>]) -> Result<()> {
    for index in 1..=statement.parameter_count() {
        let number = match statement.parameter_name(index) {
            Some(name) => name
                .get(1..)
                .and_then(|digits| digits.parse::<usize>().ok())
                .ok_or_else(|| {
                    StoreError::Internal(format!("a statement names a parameter {name}"))
                })?,
            None => index,
        };
        let param = number
            .checked_sub(1)
            .and_then(|at| params.get(at))
            .ok_or_else(|| {
                StoreError::Internal(format!(
                    "a statement uses parameter {number} of {}",
                    params.len()
                ))
            })?;
        statement
            .raw_bind_parameter(index, param)
            .map_err(map_error)?;
    }
    Ok(())
}

impl rusqlite::ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match *self {
            Param::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Param::Bool(flag) => ToSqlOutput::Borrowed(ValueRef::Integer(i64::from(flag))),
            Param::Int(number) => ToSqlOutput::Borrowed(ValueRef::Integer(number)),
            Param::Text(text) => ToSqlOutput::Borrowed(ValueRef::Text(text.as_bytes())),
            Param::Bytes(bytes) => ToSqlOutput::Borrowed(ValueRef::Blob(bytes)),
            Param::List(list) => ToSqlOutput::from(
                serde_json::to_string(list)
                    .map_err(|error| rusqlite::Error::ToSqlConversionFailure(Box::new(error)))?,
            ),
        })
    }
}

/// Reads a row of rusqlite's own with a shared reader.
pub(crate) fn read<T>(
    row: &rusqlite::Row<'_>,
    read: impl FnOnce(&Row<'_>) -> Result<T>,
) -> rusqlite::Result<T> {
    read(&Row::Sqlite(row)).map_err(|error| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Null, Box::new(error))
    })
}

pub(crate) fn value<'r>(row: &'r rusqlite::Row<'r>, index: usize) -> Result<Value<'r>> {
    Ok(match row.get_ref(index).map_err(map_error)? {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(number) => Value::Int(number),
        ValueRef::Real(number) => Value::Real(number),
        ValueRef::Text(text) => {
            Value::Text(std::str::from_utf8(text).map_err(|error| corrupt(index, error))?)
        }
        ValueRef::Blob(bytes) => Value::Bytes(bytes),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::params;

    #[test]
    fn parameters_are_bound_by_their_number_wherever_they_stand() {
        let connection = Connection::open_in_memory().unwrap();
        let list = vec!["a".to_owned(), "b".to_owned()];
        let rows = query(
            &connection,
            "SELECT $3, $1, $3, $2, (SELECT count(*) FROM json_each($4))",
            &params!["one", 2_i64, true, &list],
            |row| {
                Ok((
                    row.get::<bool>(0)?,
                    row.get::<String>(1)?,
                    row.get::<Option<i64>>(2)?,
                    row.get::<u32>(3)?,
                    row.get::<usize>(4)?,
                ))
            },
        )
        .unwrap();
        assert_eq!(rows, vec![(true, "one".to_owned(), Some(1), 2, 2)]);
    }

    #[test]
    fn a_column_of_the_wrong_type_is_an_error_that_names_it() {
        let connection = Connection::open_in_memory().unwrap();
        let read = query(&connection, "SELECT 'text'", &[], |row| row.get::<i64>(0));
        let error = read.unwrap_err().to_string();
        assert!(error.contains("column 0"), "{error}");
    }
}
