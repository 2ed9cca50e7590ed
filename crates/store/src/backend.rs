//! What a backend lends the statements written once ([`crate::db`]): a connection to read on,
//! one to write on, and a transaction. The stores' traits are implemented once over it
//! (e.g. [`crate::AccessStore`]); each backend implements only [`Backend`].

use std::future::Future;
use std::pin::Pin;

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::Notify;
use webhookd_core::EndpointId;
use webhookd_core::model::Message;

use crate::db::Db;
use crate::{IdempotentResponse, Lease, Result, SecretCodec};

/// A future that may cross threads, borrowing for `'a`.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Work on a lent connection. It owns what it needs, so that SQLite can run it on its own
/// threads.
pub(crate) type Job<T> =
    Box<dyn for<'c, 'd> FnOnce(&'c mut Db<'d>) -> BoxFuture<'c, Result<T>> + Send>;

/// Boxes a closure as a [`Job`], so that its signature is inferred.
pub(crate) fn job<T, F>(work: F) -> Job<T>
where
    F: for<'c, 'd> FnOnce(&'c mut Db<'d>) -> BoxFuture<'c, Result<T>> + Send + 'static,
{
    Box::new(work)
}

/// How a job uses its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Reads only (SQLite: a read connection, beside the writer).
    Read,
    /// Writes: one statement, or several that may commit apart.
    Write,
    /// Writes that commit together or not at all (SQLite's writes always do: each runs in the
    /// group commit's savepoint).
    Transaction,
}

#[async_trait]
pub(crate) trait Backend: Send + Sync + 'static {
    /// Runs `job` on a connection lent for `access`, and answers once its writes are durable.
    async fn run<T: Send + 'static>(&self, access: Access, job: Job<T>) -> Result<T>;

    /// What seals endpoint secrets and stored answers.
    fn codec(&self) -> &SecretCodec;

    /// [`crate::Store::create_message`], with the idempotency record already sealed: each
    /// backend group-commits ingest its own way.
    async fn create_message(
        &self,
        message: &Message,
        lease: Option<&Lease>,
        idempotency: Option<IdempotentResponse>,
    ) -> Result<Vec<EndpointId>>;

    /// [`crate::Store::scrub`].
    async fn scrub(&self) -> Result<()> {
        Ok(())
    }

    /// [`crate::Store::due_notifications`].
    fn due_notifications(&self) -> Option<Arc<Notify>> {
        None
    }
}

/// Runs `$body` (which may `.await`, and names the lent [`Db`] `$db`) on `$store`'s backend
/// with the given [`Access`]. What the body uses must be owned (moved in).
macro_rules! run {
    ($store:expr, $access:ident, |$db:ident| $body:expr) => {
        $crate::backend::Backend::run(
            $store,
            $crate::backend::Access::$access,
            $crate::backend::job(move |$db| Box::pin(async move { $body })),
        )
    };
}
pub(crate) use run;
