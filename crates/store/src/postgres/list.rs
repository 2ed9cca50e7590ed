//! Parameters of statements built at run time, and the runner of the lists written once in
//! [`crate::lists`].

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::error::map_error;
use crate::lists::{self, Dialect, ListQuery, Value};
use crate::{Page, PageRequest, Result};

/// A parameter of a query built at run time.
pub(crate) type Param = Box<dyn ToSql + Sync + Send>;

/// Runs a list written once in [`crate::lists`].
pub(crate) async fn run<T>(
    client: &impl GenericClient,
    query: ListQuery,
    page: &PageRequest,
    map: impl FnMut(&Row) -> Result<T>,
) -> Result<Page<T>> {
    let (sql, params) = query.render(Dialect::Postgres, page);
    let params: Vec<Param> = params
        .into_iter()
        .map(|param| match param {
            lists::Param::One(Value::Status(value)) => param_of(value),
            lists::Param::One(Value::Int(value)) => param_of(value),
            lists::Param::One(Value::Big(value)) => param_of(value),
            lists::Param::One(Value::Text(value)) => param_of(value),
            lists::Param::Texts(values) => param_of(values),
        })
        .collect();
    let statement = client.prepare_cached(&sql).await.map_err(map_error)?;
    let params: Vec<&(dyn ToSql + Sync)> = params
        .iter()
        .map(|param| param.as_ref() as &(dyn ToSql + Sync))
        .collect();
    let rows = client.query(&statement, &params).await.map_err(map_error)?;
    let items = rows.iter().map(map).collect::<Result<Vec<T>>>()?;
    Ok(page.finish(items))
}

fn param_of<T: ToSql + Sync + Send + 'static>(value: T) -> Param {
    Box::new(value)
}

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

pub(crate) fn text_list(values: &[String]) -> Param {
    Box::new(values.to_vec())
}
