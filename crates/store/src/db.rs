//! Statements written once for both backends: a connection of either kind ([`Db`]), the values
//! bound to a statement ([`Param`]) and read from a row ([`Row`], [`FromValue`]).
//!
//! Shared SQL numbers its parameters `$1, $2, …`: PostgreSQL's own marks, which SQLite binds by
//! their number (see `sqlite::db`), so one text serves both and a number may be used twice or
//! out of order. Where the dialects truly differ (a list parameter, a false flag as the partial
//! indexes write it, row locks) the statement asks [`Db::dialect`] or one of `Db`'s helpers.
//!
//! The methods are `async` for PostgreSQL; on SQLite they never wait, and the store runs them
//! to completion on its own threads with [`complete`].

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use time::OffsetDateTime;
use webhookd_core::time::{from_unix_ms, to_unix_ms};

pub(crate) use crate::lists::Dialect;
use crate::{Result, StoreError};

/// A connection of either backend, lent to one store call.
pub(crate) enum Db<'c> {
    /// Mutable so that a `Db` is `Send` (a SQLite connection is not `Sync`): PostgreSQL's
    /// futures cross threads, SQLite's run where they are made (see [`complete`]).
    Sqlite(&'c mut rusqlite::Connection),
    Postgres(Pg<'c>),
}

/// A PostgreSQL connection from the pool, or a transaction open on one.
pub(crate) enum Pg<'c> {
    Client(&'c deadpool_postgres::Client),
    Transaction(&'c deadpool_postgres::Transaction<'c>),
}

/// Runs what a backend does its own way: the first arm with the SQLite connection bound to
/// the name given, the second with the PostgreSQL client or transaction (either type).
macro_rules! by_backend {
    ($db:expr, $sqlite:ident => $on_sqlite:expr, $postgres:ident => $on_postgres:expr $(,)?) => {
        match $db {
            $crate::db::Db::Sqlite($sqlite) => $on_sqlite,
            $crate::db::Db::Postgres($crate::db::Pg::Client($postgres)) => $on_postgres,
            $crate::db::Db::Postgres($crate::db::Pg::Transaction($postgres)) => $on_postgres,
        }
    };
}
pub(crate) use by_backend;

impl<'c> Db<'c> {
    pub(crate) fn client(client: &'c deadpool_postgres::Client) -> Self {
        Db::Postgres(Pg::Client(client))
    }

    pub(crate) fn transaction(transaction: &'c deadpool_postgres::Transaction<'c>) -> Self {
        Db::Postgres(Pg::Transaction(transaction))
    }

    pub(crate) fn dialect(&self) -> Dialect {
        match self {
            Db::Sqlite(_) => Dialect::Sqlite,
            Db::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Runs a statement; returns the rows it changed.
    pub(crate) async fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64> {
        by_backend!(self,
            c => crate::sqlite::db::execute(c, sql, params),
            c => crate::postgres::db::execute(*c, sql, params).await)
    }

    /// Runs a query and reads every row with `read`.
    pub(crate) async fn query<T>(
        &mut self,
        sql: &str,
        params: &[Param<'_>],
        read: impl FnMut(&Row<'_>) -> Result<T>,
    ) -> Result<Vec<T>> {
        by_backend!(self,
            c => crate::sqlite::db::query(c, sql, params, read),
            c => crate::postgres::db::query(*c, sql, params, read).await)
    }

    /// Runs a query that returns at most one row.
    pub(crate) async fn query_opt<T>(
        &mut self,
        sql: &str,
        params: &[Param<'_>],
        read: impl FnMut(&Row<'_>) -> Result<T>,
    ) -> Result<Option<T>> {
        Ok(self.query(sql, params, read).await?.into_iter().next())
    }

    /// Runs a query that returns exactly one row.
    pub(crate) async fn query_one<T>(
        &mut self,
        sql: &str,
        params: &[Param<'_>],
        read: impl FnMut(&Row<'_>) -> Result<T>,
    ) -> Result<T> {
        self.query_opt(sql, params, read)
            .await?
            .ok_or_else(|| StoreError::Internal(format!("no row returned by: {sql}")))
    }

    /// A condition that the flag `column` is false, written as the backend's partial indexes
    /// write it (`= 0` on SQLite, `NOT` on PostgreSQL), so that the planner can use them.
    pub(crate) fn is_false(&self, column: &str) -> String {
        match self {
            Db::Sqlite(_) => format!("{column} = 0"),
            Db::Postgres(_) => format!("NOT {column}"),
        }
    }

    /// A row lock (`FOR UPDATE …`) on PostgreSQL, where nodes contend for rows; nothing on
    /// SQLite, whose one writer already excludes every other write.
    pub(crate) fn lock(&self, clause: &'static str) -> &'static str {
        match self {
            Db::Sqlite(_) => "",
            Db::Postgres(_) => clause,
        }
    }

    /// A condition that the string-list `column` holds the text parameter `param` (`$n`).
    pub(crate) fn holds(&self, column: &str, param: &str) -> String {
        match self {
            Db::Sqlite(_) => format!(
                "EXISTS (SELECT 1 FROM json_each({column}) WHERE json_each.value = {param})"
            ),
            Db::Postgres(_) => format!("{param} = ANY({column})"),
        }
    }

    /// A condition that `column` is one of the strings of a list parameter (`$n`).
    pub(crate) fn any_of(&self, column: &str, param: &str) -> String {
        match self {
            Db::Sqlite(_) => format!("{column} IN (SELECT value FROM json_each({param}))"),
            Db::Postgres(_) => format!("{column} = ANY({param})"),
        }
    }
}

/// Runs a store function on SQLite, where nothing waits, to completion.
pub(crate) fn complete<T>(future: impl Future<Output = Result<T>>) -> Result<T> {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(result) => result,
        Poll::Pending => Err(StoreError::Internal(
            "a SQLite statement waited, which it never does".into(),
        )),
    }
}

/// A value bound to a statement.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Param<'a> {
    Null,
    Bool(bool),
    /// Any integer column (PostgreSQL's `SMALLINT`, `INTEGER` and `BIGINT` alike).
    Int(i64),
    Text(&'a str),
    Bytes(&'a [u8]),
    /// A list of strings: `TEXT[]` on PostgreSQL, a JSON array on SQLite.
    List(&'a [String]),
}

impl From<bool> for Param<'_> {
    fn from(value: bool) -> Self {
        Param::Bool(value)
    }
}

impl From<i64> for Param<'_> {
    fn from(value: i64) -> Self {
        Param::Int(value)
    }
}

impl From<i32> for Param<'_> {
    fn from(value: i32) -> Self {
        Param::Int(value.into())
    }
}

impl From<u32> for Param<'_> {
    fn from(value: u32) -> Self {
        Param::Int(value.into())
    }
}

impl From<OffsetDateTime> for Param<'_> {
    fn from(value: OffsetDateTime) -> Self {
        Param::Int(to_unix_ms(value))
    }
}

impl<'a> From<&'a str> for Param<'a> {
    fn from(value: &'a str) -> Self {
        Param::Text(value)
    }
}

impl<'a> From<&'a String> for Param<'a> {
    fn from(value: &'a String) -> Self {
        Param::Text(value)
    }
}

impl<'a> From<&'a [u8]> for Param<'a> {
    fn from(value: &'a [u8]) -> Self {
        Param::Bytes(value)
    }
}

impl<'a> From<&'a [String]> for Param<'a> {
    fn from(value: &'a [String]) -> Self {
        Param::List(value)
    }
}

impl<'a> From<&'a Vec<String>> for Param<'a> {
    fn from(value: &'a Vec<String>) -> Self {
        Param::List(value)
    }
}

impl<'a, T: Into<Param<'a>>> From<Option<T>> for Param<'a> {
    fn from(value: Option<T>) -> Self {
        value.map_or(Param::Null, Into::into)
    }
}

impl<'a> From<&'a Option<String>> for Param<'a> {
    fn from(value: &'a Option<String>) -> Self {
        value.as_deref().map_or(Param::Null, Param::Text)
    }
}

/// The parameters of a statement, each converted with `Param::from`.
macro_rules! params {
    ($($value:expr),* $(,)?) => {
        [$($crate::db::Param::from($value)),*]
    };
}
pub(crate) use params;

/// A row of either backend.
#[derive(Clone, Copy)]
pub(crate) enum Row<'r> {
    Sqlite(&'r rusqlite::Row<'r>),
    Postgres(&'r tokio_postgres::Row),
}

/// A column's value as the backend holds it.
#[derive(Debug)]
pub(crate) enum Value<'r> {
    Null,
    Bool(bool),
    Int(i64),
    Real(f64),
    Text(&'r str),
    Bytes(&'r [u8]),
    List(Vec<String>),
}

impl<'r> Row<'r> {
    fn value(&self, index: usize) -> Result<Value<'r>> {
        match *self {
            Row::Sqlite(row) => crate::sqlite::db::value(row, index),
            Row::Postgres(row) => crate::postgres::db::value(row, index),
        }
    }

    /// The column at `index`, as `T`.
    pub(crate) fn get<T: FromValue<'r>>(&self, index: usize) -> Result<T> {
        T::from_value(self.value(index)?).map_err(|expected| {
            let found = self
                .value(index)
                .map(|value| format!("{value:?}"))
                .unwrap_or_default();
            corrupt(
                index,
                format!("{expected} expected, {} found", truncate(&found)),
            )
        })
    }

    /// A JSON column, parsed.
    pub(crate) fn json<T: serde::de::DeserializeOwned>(&self, index: usize) -> Result<T> {
        let text: &str = self.get(index)?;
        serde_json::from_str(text).map_err(|error| corrupt(index, error))
    }
}

fn truncate(text: &str) -> &str {
    match text.char_indices().nth(60) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

/// A value the database holds that the model cannot: a bug or a hand-edited row.
pub(crate) fn corrupt(index: usize, what: impl std::fmt::Display) -> StoreError {
    StoreError::Internal(format!("column {index} holds an unreadable value: {what}"))
}

/// A type a column reads as; the error names what was expected.
pub(crate) trait FromValue<'r>: Sized {
    fn from_value(value: Value<'r>) -> Result<Self, &'static str>;
}

impl<'r, T: FromValue<'r>> FromValue<'r> for Option<T> {
    fn from_value(value: Value<'r>) -> Result<Self, &'static str> {
        match value {
            Value::Null => Ok(None),
            value => T::from_value(value).map(Some),
        }
    }
}

impl FromValue<'_> for bool {
    fn from_value(value: Value<'_>) -> Result<Self, &'static str> {
        match value {
            Value::Bool(flag) => Ok(flag),
            Value::Int(0) => Ok(false),
            Value::Int(1) => Ok(true),
            _ => Err("a boolean"),
        }
    }
}

macro_rules! integers {
    ($($integer:ty),*) => {$(
        impl FromValue<'_> for $integer {
            fn from_value(value: Value<'_>) -> Result<Self, &'static str> {
                match value {
                    Value::Int(number) => {
                        <$integer>::try_from(number).map_err(|_| concat!("a ", stringify!($integer)))
                    }
                    _ => Err(concat!("a ", stringify!($integer))),
                }
            }
        }
    )*};
}
integers!(i16, i32, i64, u16, u32, u64, usize);

impl FromValue<'_> for f64 {
    fn from_value(value: Value<'_>) -> Result<Self, &'static str> {
        match value {
            Value::Real(number) => Ok(number),
            #[allow(clippy::cast_precision_loss)]
            Value::Int(number) => Ok(number as f64),
            _ => Err("a number"),
        }
    }
}

impl<'r> FromValue<'r> for &'r str {
    fn from_value(value: Value<'r>) -> Result<Self, &'static str> {
        match value {
            Value::Text(text) => Ok(text),
            _ => Err("text"),
        }
    }
}

impl FromValue<'_> for String {
    fn from_value(value: Value<'_>) -> Result<Self, &'static str> {
        <&str>::from_value(value).map(str::to_owned)
    }
}

impl FromValue<'_> for Vec<u8> {
    fn from_value(value: Value<'_>) -> Result<Self, &'static str> {
        match value {
            Value::Bytes(bytes) => Ok(bytes.to_vec()),
            Value::Text(text) => Ok(text.as_bytes().to_vec()),
            _ => Err("bytes"),
        }
    }
}

impl FromValue<'_> for Vec<String> {
    fn from_value(value: Value<'_>) -> Result<Self, &'static str> {
        match value {
            Value::List(list) => Ok(list),
            Value::Text(text) => serde_json::from_str(text).map_err(|_| "a list of strings"),
            _ => Err("a list of strings"),
        }
    }
}

impl FromValue<'_> for OffsetDateTime {
    fn from_value(value: Value<'_>) -> Result<Self, &'static str> {
        i64::from_value(value)
            .map(from_unix_ms)
            .map_err(|_| "a time in milliseconds")
    }
}
