//! Shared statements ([`crate::db`]) on PostgreSQL: run as every statement is (`sql`: prepared
//! once per connection), integers bound at the width of their column, columns read by their
//! type.

use super::sql::Connection;
use bytes::BytesMut;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

use super::error::map_error;
use crate::Result;
use crate::db::{Param, Row, Value, corrupt};

pub(crate) async fn execute(c: &impl Connection, sql: &str, params: &[Param<'_>]) -> Result<u64> {
    let params: Vec<&(dyn ToSql + Sync)> = params.iter().map(|param| param as _).collect();
    super::sql::execute(c, sql, &params).await
}

pub(crate) async fn query<T>(
    c: &impl Connection,
    sql: &str,
    params: &[Param<'_>],
    mut read: impl FnMut(&Row<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let params: Vec<&(dyn ToSql + Sync)> = params.iter().map(|param| param as _).collect();
    let rows = super::sql::query(c, sql, &params).await?;
    rows.iter().map(|row| read(&Row::Postgres(row))).collect()
}

impl ToSql for Param<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match *self {
            Param::Null => Ok(IsNull::Yes),
            // Each value is checked against the column's type, so that a parameter bound to
            // the wrong column fails here, naming both, not in the server.
            Param::Bool(flag) => flag.to_sql_checked(ty, out),
            Param::Int(number) => match *ty {
                Type::INT2 => i16::try_from(number)?.to_sql_checked(ty, out),
                Type::INT4 => i32::try_from(number)?.to_sql_checked(ty, out),
                _ => number.to_sql_checked(ty, out),
            },
            Param::Text(text) => text.to_sql_checked(ty, out),
            Param::Bytes(bytes) => bytes.to_sql_checked(ty, out),
            Param::List(list) => list.to_sql_checked(ty, out),
        }
    }

    fn accepts(ty: &Type) -> bool {
        [
            Type::BOOL,
            Type::INT2,
            Type::INT4,
            Type::INT8,
            Type::TEXT,
            Type::VARCHAR,
            Type::BYTEA,
            Type::TEXT_ARRAY,
        ]
        .contains(ty)
    }

    to_sql_checked!();
}

fn get<'r, T: tokio_postgres::types::FromSql<'r>>(
    row: &'r tokio_postgres::Row,
    index: usize,
) -> Result<T> {
    row.try_get(index).map_err(map_error)
}

pub(crate) fn value<'r>(row: &'r tokio_postgres::Row, index: usize) -> Result<Value<'r>> {
    let column = row
        .columns()
        .get(index)
        .ok_or_else(|| corrupt(index, "no such column"))?;
    let value = match *column.type_() {
        Type::BOOL => get::<Option<bool>>(row, index)?.map(Value::Bool),
        Type::INT2 => get::<Option<i16>>(row, index)?.map(|number| Value::Int(number.into())),
        Type::INT4 => get::<Option<i32>>(row, index)?.map(|number| Value::Int(number.into())),
        Type::INT8 => get::<Option<i64>>(row, index)?.map(Value::Int),
        Type::FLOAT8 => get::<Option<f64>>(row, index)?.map(Value::Real),
        Type::BYTEA => get::<Option<&[u8]>>(row, index)?.map(Value::Bytes),
        Type::TEXT_ARRAY | Type::VARCHAR_ARRAY => {
            get::<Option<Vec<String>>>(row, index)?.map(Value::List)
        }
        _ => get::<Option<&str>>(row, index)?.map(Value::Text),
    };
    Ok(value.unwrap_or(Value::Null))
}

/// A parameter that owns its value, for a pipeline (which keeps its statements' parameters
/// until it is sent); bound as [`Param`] is.
#[derive(Debug)]
enum Owned {
    Null,
    Bool(bool),
    Int(i64),
    Text(String),
    Bytes(Vec<u8>),
    List(Vec<String>),
}

impl Owned {
    fn borrowed(&self) -> Param<'_> {
        match self {
            Owned::Null => Param::Null,
            Owned::Bool(flag) => Param::Bool(*flag),
            Owned::Int(number) => Param::Int(*number),
            Owned::Text(text) => Param::Text(text),
            Owned::Bytes(bytes) => Param::Bytes(bytes),
            Owned::List(list) => Param::List(list),
        }
    }
}

impl ToSql for Owned {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        self.borrowed().to_sql(ty, out)
    }

    fn accepts(ty: &Type) -> bool {
        <Param<'_> as ToSql>::accepts(ty)
    }

    to_sql_checked!();
}

/// Shared statements' parameters, owned, for a [`super::sql::Pipeline`].
pub(crate) fn owned(params: &[Param<'_>]) -> Vec<super::list::Param> {
    params
        .iter()
        .map(|param| -> super::list::Param {
            Box::new(match *param {
                Param::Null => Owned::Null,
                Param::Bool(flag) => Owned::Bool(flag),
                Param::Int(number) => Owned::Int(number),
                Param::Text(text) => Owned::Text(text.to_owned()),
                Param::Bytes(bytes) => Owned::Bytes(bytes.to_vec()),
                Param::List(list) => Owned::List(list.to_vec()),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bind(param: &dyn ToSql, ty: &Type) -> std::result::Result<Vec<u8>, String> {
        let mut out = BytesMut::new();
        param
            .to_sql_checked(ty, &mut out)
            .map(|_| out.to_vec())
            .map_err(|error| error.to_string())
    }

    #[test]
    fn an_integer_is_bound_at_the_width_of_its_column_or_refused() {
        assert_eq!(
            bind(&Param::Int(7), &Type::INT2).unwrap(),
            7_i16.to_be_bytes()
        );
        assert_eq!(
            bind(&Param::Int(7), &Type::INT4).unwrap(),
            7_i32.to_be_bytes()
        );
        assert_eq!(
            bind(&Param::Int(7), &Type::INT8).unwrap(),
            7_i64.to_be_bytes()
        );
        assert!(bind(&Param::Int(70_000), &Type::INT2).is_err());
        assert!(bind(&Param::Text("seven"), &Type::INT8).is_err());
    }

    #[test]
    fn an_owned_parameter_binds_as_the_borrowed_one() {
        let list = vec!["a".to_owned()];
        let params = [Param::Int(300), Param::Text("t"), Param::List(&list)];
        let types = [Type::INT2, Type::TEXT, Type::TEXT_ARRAY];
        for ((param, owned), ty) in params.iter().zip(owned(&params)).zip(&types) {
            assert_eq!(
                bind(param, ty),
                bind(owned.as_ref(), ty),
                "{param:?} as {ty}"
            );
        }
    }
}
