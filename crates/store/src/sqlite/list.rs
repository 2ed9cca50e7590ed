//! One builder for every paged list: filters, the cursor, the order and the limit.

use rusqlite::types::Value;
use rusqlite::{Connection, Row, params_from_iter};

use super::map_error;
use crate::{Page, PageRequest, Result};

/// A list query under construction: `select` is `SELECT … FROM …` (joins included), filters
/// are `AND`-ed, and `key` is the unique column the list is ordered and paged by.
pub(crate) struct ListQuery<'a> {
    select: &'a str,
    key: &'a str,
    conditions: Vec<String>,
    params: Vec<Value>,
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
        params: impl IntoIterator<Item = Value>,
    ) -> Self {
        self.conditions.push(condition.to_owned());
        self.params.extend(params);
        self
    }

    /// Adds `column IN (?, …)` when `values` is not empty.
    pub(crate) fn any_of(self, column: &str, values: &[String]) -> Self {
        if values.is_empty() {
            return self;
        }
        let marks = vec!["?"; values.len()].join(", ");
        let condition = format!("{column} IN ({marks})");
        self.filter(&condition, values.iter().cloned().map(Value::Text))
    }

    pub(crate) fn run<T>(
        mut self,
        connection: &Connection,
        page: &PageRequest,
        map: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Page<T>> {
        if let Some((comparison, key)) = page.cursor_comparison() {
            self.conditions.push(format!("{} {comparison} ?", self.key));
            self.params.push(Value::Text(key.to_owned()));
        }
        let direction = if page.scan().ascending { "ASC" } else { "DESC" };
        let mut sql = self.select.to_owned();
        if !self.conditions.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&self.conditions.join(" AND "));
        }
        sql.push_str(&format!(
            " ORDER BY {} {direction} LIMIT {}",
            self.key,
            page.limit + 1
        ));
        let mut statement = connection.prepare_cached(&sql).map_err(map_error)?;
        let rows = statement
            .query_map(params_from_iter(self.params), map)
            .map_err(map_error)?
            .collect::<rusqlite::Result<Vec<T>>>()
            .map_err(map_error)?;
        Ok(page.finish(rows))
    }
}

/// Milliseconds as a parameter.
pub(crate) fn int(value: i64) -> Value {
    Value::Integer(value)
}

pub(crate) fn text(value: &str) -> Value {
    Value::Text(value.to_owned())
}
