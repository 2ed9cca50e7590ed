//! Running statements: each prepared once per connection (deadpool's statement cache), then
//! executed with its parameters, errors mapped. Every query of the PostgreSQL store goes
//! through these, so none is parsed twice on a connection, except the few [`Planned`] for the
//! values they run with. A [`Pipeline`] sends a batch of statements without a round trip each.

use std::borrow::Cow;
use std::pin::Pin;
use std::task::Poll;

use deadpool_postgres::GenericClient;
use futures_util::TryStreamExt;
use tokio_postgres::Row;
use tokio_postgres::types::{ToSql, Type};

use super::error::map_error;
use super::list::Param;
use crate::Result;

pub(crate) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// A pooled connection, or a transaction on one: what every statement runs on.
pub(crate) trait Connection: GenericClient + Sync {
    /// The connection itself, to send a statement without preparing it.
    fn direct(&self) -> &(impl tokio_postgres::GenericClient + Sync);
}

impl Connection for deadpool_postgres::Client {
    fn direct(&self) -> &(impl tokio_postgres::GenericClient + Sync) {
        &***self
    }
}

impl Connection for deadpool_postgres::Transaction<'_> {
    fn direct(&self) -> &(impl tokio_postgres::GenericClient + Sync) {
        &**self
    }
}

/// A statement planned for the values it runs with, each time it runs, rather than once per
/// connection: one that joins an array of keys to a table that grows. A prepared statement's
/// plan is kept for as long as its connection lives (or until the table's statistics change,
/// and nothing gathers them when autovacuum is off), so a plan made while the table was small
/// — a hash join over a scan of every row — goes on scanning the table as it grows: measured,
/// 1.5 ms of the database's time per batch of results after 50,000 deliveries, a third of all
/// it did. Planned with the keys at hand, the join looks each one up by its index. Sent
/// unprepared (parse, bind and execute in one flight, no round trip more), so each parameter's
/// type is given here.
pub(crate) struct Planned {
    pub(crate) sql: &'static str,
    pub(crate) types: &'static [Type],
}

/// Runs a [`Planned`] statement; returns its rows.
pub(crate) async fn query_planned(
    c: &impl Connection,
    statement: &Planned,
    params: Params<'_>,
) -> Result<Vec<Row>> {
    tokio_postgres::GenericClient::query_typed(c.direct(), statement.sql, &typed(statement, params))
        .await
        .map_err(map_error)
}

/// Runs a [`Planned`] statement; returns the rows it changed.
pub(crate) async fn execute_planned(
    c: &impl Connection,
    statement: &Planned,
    params: Params<'_>,
) -> Result<u64> {
    let rows = tokio_postgres::GenericClient::query_typed_raw(
        c.direct(),
        statement.sql,
        typed(statement, params),
    )
    .await
    .map_err(map_error)?;
    let mut rows = std::pin::pin!(rows);
    while rows.try_next().await.map_err(map_error)?.is_some() {}
    Ok(rows.rows_affected().unwrap_or(0))
}

/// Each parameter with its type, as an unprepared statement is sent.
fn typed<'a>(statement: &Planned, params: Params<'a>) -> Vec<(&'a (dyn ToSql + Sync), Type)> {
    debug_assert_eq!(params.len(), statement.types.len(), "{}", statement.sql);
    params
        .iter()
        .zip(statement.types)
        .map(|(param, kind)| (*param, kind.clone()))
        .collect()
}

/// Runs a statement; returns the rows it changed.
pub(crate) async fn execute(c: &impl Connection, sql: &str, params: Params<'_>) -> Result<u64> {
    let statement = c.prepare_cached(sql).await.map_err(map_error)?;
    c.execute(&statement, params).await.map_err(map_error)
}

pub(crate) async fn query(c: &impl Connection, sql: &str, params: Params<'_>) -> Result<Vec<Row>> {
    let statement = c.prepare_cached(sql).await.map_err(map_error)?;
    c.query(&statement, params).await.map_err(map_error)
}

pub(crate) async fn query_opt(
    c: &impl Connection,
    sql: &str,
    params: Params<'_>,
) -> Result<Option<Row>> {
    let statement = c.prepare_cached(sql).await.map_err(map_error)?;
    c.query_opt(&statement, params).await.map_err(map_error)
}

pub(crate) async fn query_one(c: &impl Connection, sql: &str, params: Params<'_>) -> Result<Row> {
    let statement = c.prepare_cached(sql).await.map_err(map_error)?;
    c.query_one(&statement, params).await.map_err(map_error)
}

/// Statements run in order on one connection, sent back to back instead of each waiting for
/// the previous answer: one round trip for the lot. The server runs them in order, so the
/// effect is that of awaiting each in turn; within a transaction, the first failure aborts
/// the rest, and is the error reported.
#[derive(Default)]
pub(crate) struct Pipeline {
    steps: Vec<(Step, Vec<Param>)>,
}

/// A statement of a [`Pipeline`]: prepared once per connection, or [`Planned`] each time.
enum Step {
    Prepared(Cow<'static, str>),
    Planned(&'static Planned),
}

impl Pipeline {
    pub(crate) fn push(&mut self, sql: impl Into<Cow<'static, str>>, params: Vec<Param>) {
        self.steps.push((Step::Prepared(sql.into()), params));
    }

    pub(crate) fn push_planned(&mut self, statement: &'static Planned, params: Vec<Param>) {
        self.steps.push((Step::Planned(statement), params));
    }

    /// Sends every statement; the first error (in order) is the answer.
    pub(crate) async fn run(self, c: &impl Connection) -> Result<()> {
        for answer in self.query_each(c).await? {
            answer?;
        }
        Ok(())
    }
}

impl Pipeline {
    /// Sends every statement back to back and keeps each one's rows or error, in
    /// order, rather than stopping at the first error. Within a transaction, the statements
    /// after a failed one fail too (the transaction is aborted). Fails as a whole only when a
    /// statement cannot be prepared.
    pub(crate) async fn query_each(self, c: &impl Connection) -> Result<Vec<Result<Vec<Row>>>> {
        let mut statements = Vec::with_capacity(self.steps.len());
        for (step, _) in &self.steps {
            statements.push(match step {
                Step::Prepared(sql) => {
                    Ready::Prepared(c.prepare_cached(sql).await.map_err(map_error)?)
                }
                Step::Planned(planned) => Ready::Planned(planned),
            });
        }
        let params: Vec<Vec<&(dyn ToSql + Sync)>> = self
            .steps
            .iter()
            .map(|(_, params)| params.iter().map(|param| param.as_ref() as _).collect())
            .collect();
        let mut sent = Vec::with_capacity(statements.len());
        for (statement, params) in statements.iter().zip(&params) {
            let mut execution: Pin<Box<dyn Future<Output = Result<Vec<Row>>> + Send + '_>> =
                match statement {
                    Ready::Prepared(statement) => {
                        Box::pin(async move { c.query(statement, params).await.map_err(map_error) })
                    }
                    Ready::Planned(planned) => Box::pin(query_planned(c, planned, params)),
                };
            let polled = std::future::poll_fn(|cx| Poll::Ready(execution.as_mut().poll(cx))).await;
            sent.push(match polled {
                Poll::Ready(done) => Sent::Done(done),
                Poll::Pending => Sent::Waiting(execution),
            });
        }
        let mut answers = Vec::with_capacity(sent.len());
        for execution in sent {
            let answer = match execution {
                Sent::Done(done) => done,
                Sent::Waiting(execution) => execution.await,
            };
            answers.push(answer);
        }
        Ok(answers)
    }
}

/// A statement of a pipeline, ready to send.
enum Ready {
    Prepared(tokio_postgres::Statement),
    Planned(&'static Planned),
}

/// A statement of a pipeline, answered or not yet.
enum Sent<F, T> {
    Done(Result<T>),
    Waiting(F),
}
