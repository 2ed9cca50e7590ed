//! The paged lists, written once for both backends: which rows each list reads, its filters,
//! the cursor, the order and the limit. A backend only renders a [`ListQuery`] in its dialect
//! ([`ListQuery::render`]), binds the [`Value`]s and decodes the rows.
//!
//! Conditions are written with `?` marks; PostgreSQL numbers them `$1, $2, …` in the order they
//! were added, so each shape of list is one prepared statement whatever the values (its lists
//! bound as one array, the limit as a parameter); SQLite expands a list into one mark per item.

use webhookd_core::model::DeliveryStatus;
use webhookd_core::operational::operational_app;
use webhookd_core::{AppId, EndpointId, MessageId};

use crate::columns::{
    APPLICATION_COLUMNS, ATTEMPT_COLUMNS, DELIVERY_COLUMNS, ENDPOINT_COLUMNS, EVENT_TYPE_COLUMNS,
    MESSAGE_COLUMNS, prefixed,
};
use crate::db::{self, Db, Row};
use crate::{AttemptFilter, AttemptScope, MessageFilter, Page, PageRequest, Result};

/// A value bound to a list's statement, of the column type it is compared with.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    /// A delivery or attempt status (`SMALLINT` on PostgreSQL).
    Status(i16),
    /// An HTTP status code (`INTEGER`).
    Int(i32),
    /// Milliseconds since the epoch, or any `BIGINT`.
    Big(i64),
    Text(String),
}

/// Which SQL a query is rendered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// A parameter as rendered: one value, or (PostgreSQL) a list bound as one array.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Param {
    One(Value),
    Texts(Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
enum Condition {
    /// SQL with one `?` per value.
    Sql(String, Vec<Value>),
    /// `column` is one of the values (never empty).
    AnyOf(String, Vec<String>),
    /// The array column (a JSON array on SQLite) holds the value.
    Holds(String, String),
}

/// A list query under construction: `select` is `SELECT … FROM …` (joins included), filters
/// are `AND`-ed, and `key` is the unique column the list is ordered and paged by.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ListQuery {
    select: String,
    key: &'static str,
    conditions: Vec<Condition>,
}

impl ListQuery {
    pub(crate) fn new(select: String, key: &'static str) -> Self {
        Self {
            select,
            key,
            conditions: Vec::new(),
        }
    }

    /// Adds a condition with one `?` per value.
    pub(crate) fn filter(
        mut self,
        condition: &str,
        values: impl IntoIterator<Item = Value>,
    ) -> Self {
        self.conditions.push(Condition::Sql(
            condition.to_owned(),
            values.into_iter().collect(),
        ));
        self
    }

    /// Adds "`column` is one of `values`" when `values` is not empty.
    fn any_of(mut self, column: &str, values: &[String]) -> Self {
        if !values.is_empty() {
            self.conditions
                .push(Condition::AnyOf(column.to_owned(), values.to_vec()));
        }
        self
    }

    /// Adds "the array `column` holds `value`".
    fn holds(mut self, column: &str, value: &str) -> Self {
        self.conditions
            .push(Condition::Holds(column.to_owned(), value.to_owned()));
        self
    }

    /// The statement and its parameters for one page: the cursor's condition, the order and
    /// one row more than the page (to know whether there is a next one).
    pub(crate) fn render(mut self, dialect: Dialect, page: &PageRequest) -> (String, Vec<Param>) {
        if let Some((comparison, key)) = page.cursor_comparison() {
            let condition = format!("{} {comparison} ?", self.key);
            self = self.filter(&condition, [text(key)]);
        }
        let mut sql = self.select;
        let mut params = Vec::new();
        for (index, condition) in self.conditions.iter().enumerate() {
            sql.push_str(if index == 0 { " WHERE " } else { " AND " });
            let first = params.len();
            let (written, bound) = match (condition, dialect) {
                (Condition::Sql(written, values), _) => (
                    written.clone(),
                    values.iter().cloned().map(Param::One).collect(),
                ),
                (Condition::AnyOf(column, values), Dialect::Sqlite) => (
                    format!("{column} IN ({})", vec!["?"; values.len()].join(", ")),
                    values.iter().map(|value| Param::One(text(value))).collect(),
                ),
                (Condition::AnyOf(column, values), Dialect::Postgres) => (
                    format!("{column} = ANY(?)"),
                    vec![Param::Texts(values.clone())],
                ),
                (Condition::Holds(column, value), Dialect::Sqlite) => (
                    format!("EXISTS (SELECT 1 FROM json_each({column}) WHERE json_each.value = ?)"),
                    vec![Param::One(text(value))],
                ),
                (Condition::Holds(column, value), Dialect::Postgres) => {
                    (format!("? = ANY({column})"), vec![Param::One(text(value))])
                }
            };
            params.extend(bound);
            sql.push_str(&mark(&written, dialect, first));
        }
        let direction = if page.scan().ascending { "ASC" } else { "DESC" };
        let limit = i64::try_from(page.limit).unwrap_or(i64::MAX - 1) + 1;
        params.push(Param::One(Value::Big(limit)));
        let limit_mark = mark("?", dialect, params.len() - 1);
        sql.push_str(&format!(
            " ORDER BY {} {direction} LIMIT {limit_mark}",
            self.key
        ));
        (sql, params)
    }
}

/// `text` with its `?` marks as the dialect writes them: PostgreSQL numbers them from
/// `first + 1`.
fn mark(text: &str, dialect: Dialect, first: usize) -> String {
    match dialect {
        Dialect::Sqlite => text.to_owned(),
        Dialect::Postgres => {
            let mut numbered = String::with_capacity(text.len() + 4);
            for (index, part) in text.split('?').enumerate() {
                if index > 0 {
                    numbered.push_str(&format!("${}", first + index));
                }
                numbered.push_str(part);
            }
            numbered
        }
    }
}

fn text(value: &str) -> Value {
    Value::Text(value.to_owned())
}

fn ms(at: time::OffsetDateTime) -> Value {
    Value::Big(webhookd_core::time::to_unix_ms(at))
}

fn status(status: DeliveryStatus) -> Value {
    Value::Status(status as i16)
}

pub(crate) fn applications() -> ListQuery {
    ListQuery::new(
        format!("SELECT {APPLICATION_COLUMNS} FROM applications"),
        "id",
    )
}

pub(crate) fn endpoints(app: &AppId) -> ListQuery {
    ListQuery::new(format!("SELECT {ENDPOINT_COLUMNS} FROM endpoints"), "id")
        .filter("app_id = ?", [text(app.as_str())])
}

/// Every application's endpoints but the operational webhooks'.
pub(crate) fn all_endpoints() -> ListQuery {
    ListQuery::new(format!("SELECT {ENDPOINT_COLUMNS} FROM endpoints"), "id")
        .filter("app_id <> ?", [text(operational_app().as_str())])
}

pub(crate) fn event_types(include_archived: bool) -> ListQuery {
    let query = ListQuery::new(
        format!("SELECT {EVENT_TYPE_COLUMNS} FROM event_types"),
        "name",
    );
    if include_archived {
        query
    } else {
        query.filter("NOT archived", [])
    }
}

/// With a tag or a channel, the list walks that label's index in id order and reads each
/// message it names; otherwise the application's messages in id order. Rows: `MESSAGE_COLUMNS`.
pub(crate) fn messages(app: &AppId, filter: &MessageFilter) -> ListQuery {
    let (query, key) = match filter.label_index() {
        Some((table, column, value)) => (
            ListQuery::new(
                format!(
                    "SELECT {MESSAGE_COLUMNS} FROM {table} l JOIN messages m ON m.id = l.msg_id"
                ),
                "l.msg_id",
            )
            .filter(
                &format!("l.app_id = ? AND l.{column} = ?"),
                [text(app.as_str()), text(value)],
            ),
            "l.msg_id",
        ),
        None => (
            ListQuery::new(format!("SELECT {MESSAGE_COLUMNS} FROM messages m"), "m.id")
                .filter("m.app_id = ?", [text(app.as_str())]),
            "m.id",
        ),
    };
    // The filters but the one the label index answers.
    let mut query = query.any_of("m.event_type", &filter.event_types);
    if let (Some(channel), Some(_)) = (&filter.channel, &filter.tag) {
        query = query.filter(
            "EXISTS (SELECT 1 FROM message_channels c \
             WHERE c.app_id = m.app_id AND c.channel = ? AND c.msg_id = m.id)",
            [text(channel)],
        );
    }
    // The exact times, and the range of ids made around them, which the index walks.
    let (low, high) = filter.id_range();
    if let Some(before) = filter.before {
        query = query.filter("m.created_at < ?", [ms(before)]);
    }
    if let Some(after) = filter.after {
        query = query.filter("m.created_at > ?", [ms(after)]);
    }
    if let Some(low) = low {
        query = query.filter(&format!("{key} >= ?"), [text(low.as_str())]);
    }
    if let Some(high) = high {
        query = query.filter(&format!("{key} < ?"), [text(high.as_str())]);
    }
    query
}

/// The attempts of a message or of an endpoint. Rows: `ATTEMPT_COLUMNS`.
pub(crate) fn attempts(app: &AppId, scope: &AttemptScope, filter: &AttemptFilter) -> ListQuery {
    let query = ListQuery::new(
        format!("SELECT {ATTEMPT_COLUMNS} FROM attempts a JOIN messages m ON m.id = a.msg_id"),
        "a.id",
    )
    .filter("a.app_id = ?", [text(app.as_str())]);
    let mut query = match scope {
        AttemptScope::Message(msg) => query.filter("a.msg_id = ?", [text(msg.as_str())]),
        AttemptScope::Endpoint(endpoint) => {
            query.filter("a.endpoint_id = ?", [text(endpoint.as_str())])
        }
    };
    if let Some(endpoint) = &filter.endpoint_id {
        query = query.filter("a.endpoint_id = ?", [text(endpoint.as_str())]);
    }
    if let Some(class) = filter.status_code_class {
        query = if class == 0 {
            query.filter("a.response_status_code = 0", [])
        } else {
            let low = i32::from(class);
            query.filter(
                "a.response_status_code BETWEEN ? AND ?",
                [Value::Int(low), Value::Int(low + 99)],
            )
        };
    }
    let query = attempt_filters(query, filter, "a.status");
    time_filters(query, filter, "a.created_at")
}

/// A message's delivery to each endpoint, by endpoint id. Rows: `ENDPOINT_COLUMNS` (of `e`),
/// then `DELIVERY_COLUMNS` from column `ENDPOINT_WIDTH`.
pub(crate) fn message_deliveries(app: &AppId, msg: &MessageId) -> ListQuery {
    ListQuery::new(
        format!(
            "SELECT {}, {DELIVERY_COLUMNS} FROM deliveries d JOIN endpoints e ON e.id = d.endpoint_id",
            prefixed("e", ENDPOINT_COLUMNS)
        ),
        "d.endpoint_id",
    )
    .filter("d.app_id = ?", [text(app.as_str())])
    .filter("d.msg_id = ?", [text(msg.as_str())])
}

/// An endpoint's deliveries, by message id. Rows: `MESSAGE_COLUMNS`, then `DELIVERY_COLUMNS`.
pub(crate) fn endpoint_deliveries(
    app: &AppId,
    endpoint: &EndpointId,
    filter: &AttemptFilter,
) -> ListQuery {
    let query = ListQuery::new(
        format!(
            "SELECT {MESSAGE_COLUMNS}, {DELIVERY_COLUMNS} FROM deliveries d \
             JOIN messages m ON m.id = d.msg_id"
        ),
        "d.msg_id",
    )
    .filter("d.app_id = ?", [text(app.as_str())])
    .filter("d.endpoint_id = ?", [text(endpoint.as_str())]);
    let query = attempt_filters(query, filter, "d.status");
    time_filters(query, filter, "m.created_at")
}

fn attempt_filters(mut query: ListQuery, filter: &AttemptFilter, status_column: &str) -> ListQuery {
    if let Some(delivery) = filter.status {
        query = query.filter(&format!("{status_column} = ?"), [status(delivery)]);
    }
    query = query.any_of("m.event_type", &filter.event_types);
    if let Some(channel) = &filter.channel {
        query = query.holds("m.channels", channel);
    }
    if let Some(tag) = &filter.tag {
        query = query.holds("m.tags", tag);
    }
    query
}

fn time_filters(mut query: ListQuery, filter: &AttemptFilter, column: &str) -> ListQuery {
    if let Some(before) = filter.before {
        query = query.filter(&format!("{column} < ?"), [ms(before)]);
    }
    if let Some(after) = filter.after {
        query = query.filter(&format!("{column} > ?"), [ms(after)]);
    }
    query
}

/// Runs a list on either backend, reading each row with `read`.
pub(crate) async fn run<T>(
    db: &mut Db<'_>,
    query: ListQuery,
    page: &PageRequest,
    read: impl FnMut(&Row<'_>) -> Result<T>,
) -> Result<Page<T>> {
    let (sql, rendered) = query.render(db.dialect(), page);
    let params: Vec<db::Param<'_>> = rendered
        .iter()
        .map(|param| match param {
            Param::One(Value::Status(value)) => db::Param::Int((*value).into()),
            Param::One(Value::Int(value)) => db::Param::Int((*value).into()),
            Param::One(Value::Big(value)) => db::Param::Int(*value),
            Param::One(Value::Text(value)) => db::Param::Text(value),
            Param::Texts(values) => db::Param::List(values),
        })
        .collect();
    let rows = db.query(&sql, &params, read).await?;
    Ok(page.finish(rows))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Cursor, Order};

    fn page() -> PageRequest {
        PageRequest {
            limit: 10,
            cursor: Some(Cursor {
                key: "k".into(),
                backward: false,
            }),
            order: Order::Ascending,
        }
    }

    #[test]
    fn marks_are_numbered_in_order_on_postgres_and_expanded_on_sqlite() {
        let query = ListQuery::new("SELECT x FROM t".into(), "id")
            .filter("a = ?", [text("x")])
            .any_of("b", &["1".into(), "2".into()])
            .holds("c", "y")
            .filter("d BETWEEN ? AND ?", [Value::Int(1), Value::Int(2)])
            .filter("e = 0", []);
        let (sql, params) = query.clone().render(Dialect::Postgres, &page());
        assert_eq!(
            sql,
            "SELECT x FROM t WHERE a = $1 AND b = ANY($2) AND $3 = ANY(c) \
             AND d BETWEEN $4 AND $5 AND e = 0 AND id > $6 ORDER BY id ASC LIMIT $7"
        );
        assert_eq!(params.len(), 7);
        assert_eq!(params[1], Param::Texts(vec!["1".into(), "2".into()]));
        assert_eq!(params[6], Param::One(Value::Big(11)));
        let (sql, params) = query.render(Dialect::Sqlite, &page());
        assert_eq!(
            sql,
            "SELECT x FROM t WHERE a = ? AND b IN (?, ?) AND EXISTS (SELECT 1 FROM \
             json_each(c) WHERE json_each.value = ?) AND d BETWEEN ? AND ? AND e = 0 \
             AND id > ? ORDER BY id ASC LIMIT ?"
        );
        assert_eq!(params.len(), 8);
        assert!(params.iter().all(|param| matches!(param, Param::One(_))));
    }
}
