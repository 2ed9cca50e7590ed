//! One builder for every paged list: filters, the cursor, the order and the limit.
//!
//! Filters are written with `?` marks, numbered `$1, $2, …` as they are added, so that each
//! shape of list is one prepared statement whatever the values (lists are bound as arrays,
//! the limit as a parameter).

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::error::map_error;
use crate::{Page, PageRequest, Result};

/// A parameter of a query built at run time.
pub(crate) type Param = Box<dyn ToSql + Sync + Send>;

/// A list query under construction: `select` is `SELECT … FROM …` (joins included), filters
/// are `AND`-ed, and `key` is the unique column the list is ordered and paged by.
pub(crate) struct ListQuery<'a> {
    select: &'a str,
    key: &'a str,
    conditions: Vec<String>,
    params: Vec<Param>,
}

impl<'a> ListQuery<'a> {
    pub(crate) fn new(select: &'a str, key: &'a str) -> Self {
        Self {
            select,
            key,
            conditions: Vec::new(),
            params: Vec::new(),
        }
    }

    /// Adds a condition with one `?` per parameter.
    pub(crate) fn filter(
        mut self,
        condition: &str,
        params: impl IntoIterator<Item = Param>,
    ) -> Self {
        let first = self.params.len();
        self.params.extend(params);
        let mut numbered = String::with_capacity(condition.len() + 4);
        for (index, part) in condition.split('?').enumerate() {
            if index > 0 {
                numbered.push_str(&format!("${}", first + index));
            }
            numbered.push_str(part);
        }
        self.conditions.push(numbered);
        self
    }

    /// Adds `column = ANY(?)` when `values` is not empty.
    pub(crate) fn any_of(self, column: &str, values: &[String]) -> Self {
        if values.is_empty() {
            return self;
        }
        self.filter(&format!("{column} = ANY(?)"), [text_list(values)])
    }

    pub(crate) async fn run<T>(
        mut self,
        client: &impl GenericClient,
        page: &PageRequest,
        map: impl FnMut(&Row) -> Result<T>,
    ) -> Result<Page<T>> {
        if let Some((comparison, key)) = page.cursor_comparison() {
            let condition = format!("{} {comparison} ?", self.key);
            self = self.filter(&condition, [text(key)]);
        }
        let direction = if page.scan().ascending { "ASC" } else { "DESC" };
        let mut sql = self.select.to_owned();
        if !self.conditions.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&self.conditions.join(" AND "));
        }
        let limit = i64::try_from(page.limit).unwrap_or(i64::MAX - 1) + 1;
        self.params.push(Box::new(limit));
        sql.push_str(&format!(
            " ORDER BY {} {direction} LIMIT ${}",
            self.key,
            self.params.len()
        ));
        let statement = client.prepare_cached(&sql).await.map_err(map_error)?;
        let params: Vec<&(dyn ToSql + Sync)> = self
            .params
            .iter()
            .map(|param| param.as_ref() as &(dyn ToSql + Sync))
            .collect();
        let rows = client.query(&statement, &params).await.map_err(map_error)?;
        let items = rows.iter().map(map).collect::<Result<Vec<T>>>()?;
        Ok(page.finish(items))
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_are_numbered_in_order() {
        let query = ListQuery::new("SELECT 1", "id")
            .filter("a = ?", [text("x")])
            .filter("b BETWEEN ? AND ?", [int(1), int(2)])
            .filter("c = 0", []);
        assert_eq!(query.conditions, ["a = $1", "b BETWEEN $2 AND $3", "c = 0"]);
        assert_eq!(query.params.len(), 3);
    }
}
