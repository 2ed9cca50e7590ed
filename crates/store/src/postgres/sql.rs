//! Running statements: each prepared once per connection (deadpool's statement cache), then
//! executed with its parameters, errors mapped. Every query of the PostgreSQL store goes
//! through these, so none is parsed twice on a connection. A [`Pipeline`] sends a batch of
//! statements without a round trip each.

use std::borrow::Cow;
use std::task::Poll;

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::error::map_error;
use super::list::Param;
use crate::Result;

pub(crate) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// Runs a statement; returns the rows it changed.
pub(crate) async fn execute(c: &impl GenericClient, sql: &str, params: Params<'_>) -> Result<u64> {
    let statement = c.prepare_cached(sql).await.map_err(map_error)?;
    c.execute(&statement, params).await.map_err(map_error)
}

pub(crate) async fn query(
    c: &impl GenericClient,
    sql: &str,
    params: Params<'_>,
) -> Result<Vec<Row>> {
    let statement = c.prepare_cached(sql).await.map_err(map_error)?;
    c.query(&statement, params).await.map_err(map_error)
}

pub(crate) async fn query_opt(
    c: &impl GenericClient,
    sql: &str,
    params: Params<'_>,
) -> Result<Option<Row>> {
    let statement = c.prepare_cached(sql).await.map_err(map_error)?;
    c.query_opt(&statement, params).await.map_err(map_error)
}

pub(crate) async fn query_one(
    c: &impl GenericClient,
    sql: &str,
    params: Params<'_>,
) -> Result<Row> {
    let statement = c.prepare_cached(sql).await.map_err(map_error)?;
    c.query_one(&statement, params).await.map_err(map_error)
}

/// Statements run in order on one connection, sent back to back instead of each waiting for
/// the previous answer: one round trip for the lot. The server runs them in order, so the
/// effect is that of awaiting each in turn; within a transaction, the first failure aborts
/// the rest, and is the error reported.
#[derive(Default)]
pub(crate) struct Pipeline {
    steps: Vec<(Cow<'static, str>, Vec<Param>)>,
}

impl Pipeline {
    pub(crate) fn push(&mut self, sql: impl Into<Cow<'static, str>>, params: Vec<Param>) {
        self.steps.push((sql.into(), params));
    }

    /// Sends every statement; the first error (in order) is the answer.
    pub(crate) async fn run(self, c: &impl GenericClient) -> Result<()> {
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
    pub(crate) async fn query_each(self, c: &impl GenericClient) -> Result<Vec<Result<Vec<Row>>>> {
        let mut statements = Vec::with_capacity(self.steps.len());
        for (sql, _) in &self.steps {
            statements.push(c.prepare_cached(sql).await.map_err(map_error)?);
        }
        let params: Vec<Vec<&(dyn ToSql + Sync)>> = self
            .steps
            .iter()
            .map(|(_, params)| params.iter().map(|param| param.as_ref() as _).collect())
            .collect();
        let mut sent = Vec::with_capacity(statements.len());
        for (statement, params) in statements.iter().zip(&params) {
            let mut execution = c.query(statement, params);
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
            answers.push(answer.map_err(map_error));
        }
        Ok(answers)
    }
}

/// A statement of a pipeline, answered or not yet.
enum Sent<F, T> {
    Done(std::result::Result<T, tokio_postgres::Error>),
    Waiting(F),
}
