//! [`Store`] implemented once, over any [`Backend`]: each method says which connection it
//! needs ([`crate::backend::Access`]) and runs the statements written once (`resources`,
//! `reads`, `admin`, `operational`, `engine`, `ordered`, `retention`, `rollup`), or, where the
//! backends truly differ (the engine's claims, leases and batched records), the backend's own
//! functions by name.
//!
//! A method's arguments are copied into its job: SQLite runs the job on its own threads.

use async_trait::async_trait;
use time::OffsetDateTime;
use webhookd_core::model::{
    Application, Attempt, BackgroundTask, Delivery, Endpoint, EndpointStats, EventType, Message,
};
use webhookd_core::{
    AppId, AppKey, AttemptId, EndpointId, EndpointKey, MessageId, MessageKey, TaskId,
};

use crate::backend::{Backend, run};
use crate::db::by_backend;
use crate::operational::{self, emit, endpoint_before};
use crate::postgres as pg;
use crate::sqlite as lite;
use crate::{
    ApiTokenRecord, AttemptFilter, AttemptRecord, AttemptScope, Due, EndpointHealthCounts,
    IdempotentResponse, Lease, MessageFilter, Page, PageRequest, QueueDepth, Result,
    RetentionPurge, RollupMinute, Store, StoreError, admin, engine, reads, resources,
};

#[async_trait]
impl<B: Backend> Store for B {
    async fn create_application(
        &self,
        app: &Application,
        idempotency: Option<&IdempotentResponse>,
    ) -> Result<()> {
        let (app, idempotency) = (app.clone(), self.codec().seal_response(idempotency));
        run!(self, Transaction, |db| {
            admin::save_idempotent(db, idempotency.as_ref()).await?;
            resources::create_application(db, &app).await
        })
        .await
    }

    async fn get_application(&self, key: &AppKey) -> Result<Option<Application>> {
        let key = key.clone();
        run!(self, Read, |db| resources::get_application(db, &key).await).await
    }

    async fn list_applications(&self, page: &PageRequest) -> Result<Page<Application>> {
        let page = page.clone();
        run!(self, Read, |db| resources::list_applications(db, &page)
            .await)
        .await
    }

    async fn update_application(&self, app: &Application) -> Result<()> {
        let app = app.clone();
        run!(self, Write, |db| resources::update_application(db, &app)
            .await)
        .await
    }

    async fn delete_application(&self, id: &AppId) -> Result<bool> {
        let id = id.clone();
        run!(self, Transaction, |db| resources::delete_application(
            db, &id
        )
        .await)
        .await
    }

    async fn create_endpoint(
        &self,
        endpoint: &Endpoint,
        idempotency: Option<&IdempotentResponse>,
    ) -> Result<()> {
        let (endpoint, idempotency, codec) = (
            endpoint.clone(),
            self.codec().seal_response(idempotency),
            self.codec().clone(),
        );
        run!(self, Transaction, |db| {
            admin::save_idempotent(db, idempotency.as_ref()).await?;
            resources::create_endpoint(db, &codec, &endpoint).await?;
            let event = operational::created_event(&endpoint);
            emit(db, event, endpoint.created_at).await
        })
        .await
    }

    async fn get_endpoint(&self, app: &AppId, key: &EndpointKey) -> Result<Option<Endpoint>> {
        let (app, key, codec) = (app.clone(), key.clone(), self.codec().clone());
        run!(self, Read, |db| resources::get_endpoint(
            db, &codec, &app, &key
        )
        .await)
        .await
    }

    async fn get_endpoints(&self, ids: &[EndpointId]) -> Result<Vec<Endpoint>> {
        let (ids, codec) = (ids.to_vec(), self.codec().clone());
        run!(self, Read, |db| resources::get_endpoints(db, &codec, &ids)
            .await)
        .await
    }

    async fn list_endpoints(&self, app: &AppId, page: &PageRequest) -> Result<Page<Endpoint>> {
        let (app, page, codec) = (app.clone(), page.clone(), self.codec().clone());
        run!(self, Read, |db| {
            resources::list_endpoints(db, &codec, &app, &page).await
        })
        .await
    }

    async fn list_all_endpoints(&self, page: &PageRequest) -> Result<Page<Endpoint>> {
        let (page, codec) = (page.clone(), self.codec().clone());
        run!(self, Read, |db| resources::list_all_endpoints(
            db, &codec, &page
        )
        .await)
        .await
    }

    async fn count_unsealed_endpoints(&self) -> Result<u64> {
        let codec = self.codec().clone();
        run!(self, Read, |db| resources::count_unsealed_endpoints(
            db, &codec
        )
        .await)
        .await
    }

    async fn update_endpoint(&self, endpoint: &Endpoint) -> Result<()> {
        let (endpoint, codec) = (endpoint.clone(), self.codec().clone());
        run!(self, Transaction, |db| {
            let before = endpoint_before(db, &endpoint.app_id, &endpoint.id).await?;
            resources::update_endpoint(db, &codec, &endpoint).await?;
            let was_disabled = before.is_some_and(|(disabled, _)| disabled);
            let events = operational::update_events(was_disabled, &endpoint);
            emit(db, events, endpoint.updated_at).await
        })
        .await
    }

    async fn delete_endpoint(
        &self,
        app: &AppId,
        id: &EndpointId,
        now: OffsetDateTime,
    ) -> Result<bool> {
        let (app, id) = (app.clone(), id.clone());
        run!(self, Transaction, |db| {
            let before = endpoint_before(db, &app, &id).await?;
            let deleted = resources::delete_endpoint(db, &app, &id, now).await?;
            if let (true, Some((_, uid))) = (deleted, before) {
                let change = webhookd_core::operational::EndpointChange::Deleted;
                let event = operational::endpoint_event(change, &app, &id, uid);
                emit(db, event, now).await?;
            }
            Ok(deleted)
        })
        .await
    }

    async fn endpoint_stats(
        &self,
        endpoint: &EndpointId,
        since: Option<OffsetDateTime>,
        until: Option<OffsetDateTime>,
    ) -> Result<EndpointStats> {
        let endpoint = endpoint.clone();
        run!(self, Read, |db| {
            reads::endpoint_stats(db, &endpoint, since, until).await
        })
        .await
    }

    async fn count_endpoints(&self, app: &AppId) -> Result<u64> {
        let app = app.clone();
        run!(self, Read, |db| resources::count_endpoints(db, &app).await).await
    }

    async fn create_event_type(
        &self,
        event_type: &EventType,
        idempotency: Option<&IdempotentResponse>,
    ) -> Result<()> {
        let (event_type, idempotency) =
            (event_type.clone(), self.codec().seal_response(idempotency));
        run!(self, Transaction, |db| {
            admin::save_idempotent(db, idempotency.as_ref()).await?;
            resources::create_event_type(db, &event_type).await
        })
        .await
    }

    async fn get_event_type(&self, name: &str) -> Result<Option<EventType>> {
        let name = name.to_owned();
        run!(self, Read, |db| resources::get_event_type(db, &name).await).await
    }

    async fn list_event_types(
        &self,
        page: &PageRequest,
        include_archived: bool,
    ) -> Result<Page<EventType>> {
        let page = page.clone();
        run!(self, Read, |db| {
            resources::list_event_types(db, &page, include_archived).await
        })
        .await
    }

    async fn put_event_type(&self, event_type: &EventType) -> Result<()> {
        let event_type = event_type.clone();
        run!(self, Write, |db| resources::put_event_type(db, &event_type)
            .await)
        .await
    }

    async fn delete_event_type(
        &self,
        name: &str,
        expunge: bool,
        now: OffsetDateTime,
    ) -> Result<bool> {
        let name = name.to_owned();
        run!(self, Write, |db| {
            resources::delete_event_type(db, &name, expunge, now).await
        })
        .await
    }

    async fn create_message(
        &self,
        message: &Message,
        lease: Option<&Lease>,
        idempotency: Option<&IdempotentResponse>,
    ) -> Result<Vec<EndpointId>> {
        let idempotency = self.codec().seal_response(idempotency);
        Backend::create_message(self, message, lease, idempotency).await
    }

    async fn get_message(&self, app: &AppId, key: &MessageKey) -> Result<Option<Message>> {
        let (app, key) = (app.clone(), key.clone());
        run!(self, Read, |db| reads::get_message(db, &app, &key).await).await
    }

    async fn list_messages(
        &self,
        app: &AppId,
        filter: &MessageFilter,
        page: &PageRequest,
    ) -> Result<Page<Message>> {
        let (app, filter, page) = (app.clone(), filter.clone(), page.clone());
        run!(self, Read, |db| {
            reads::list_messages(db, &app, &filter, &page).await
        })
        .await
    }

    async fn list_attempts(
        &self,
        app: &AppId,
        scope: &AttemptScope,
        filter: &AttemptFilter,
        page: &PageRequest,
    ) -> Result<Page<Attempt>> {
        let (app, scope, filter, page) = (app.clone(), scope.clone(), filter.clone(), page.clone());
        run!(self, Read, |db| {
            reads::list_attempts(db, &app, &scope, &filter, &page).await
        })
        .await
    }

    async fn get_attempt(
        &self,
        app: &AppId,
        msg: &MessageId,
        id: &AttemptId,
    ) -> Result<Option<Attempt>> {
        let (app, msg, id) = (app.clone(), msg.clone(), id.clone());
        run!(self, Read, |db| reads::get_attempt(db, &app, &msg, &id)
            .await)
        .await
    }

    async fn list_message_deliveries(
        &self,
        app: &AppId,
        msg: &MessageId,
        page: &PageRequest,
    ) -> Result<Page<(Endpoint, Delivery)>> {
        let (app, msg, page) = (app.clone(), msg.clone(), page.clone());
        let codec = self.codec().clone();
        run!(self, Read, |db| {
            reads::list_message_deliveries(db, &codec, &app, &msg, &page).await
        })
        .await
    }

    async fn list_endpoint_deliveries(
        &self,
        app: &AppId,
        endpoint: &EndpointId,
        filter: &AttemptFilter,
        page: &PageRequest,
    ) -> Result<Page<(Message, Delivery)>> {
        let (app, endpoint) = (app.clone(), endpoint.clone());
        let (filter, page) = (filter.clone(), page.clone());
        run!(self, Read, |db| {
            reads::list_endpoint_deliveries(db, &app, &endpoint, &filter, &page).await
        })
        .await
    }

    async fn get_delivery(
        &self,
        msg: &MessageId,
        endpoint: &EndpointId,
    ) -> Result<Option<Delivery>> {
        let (msg, endpoint) = (msg.clone(), endpoint.clone());
        run!(self, Read, |db| reads::get_delivery(db, &msg, &endpoint)
            .await)
        .await
    }

    async fn claim_due(
        &self,
        lease: &Lease,
        now: OffsetDateTime,
        limit: usize,
        skip_endpoints: &[EndpointId],
    ) -> Result<Vec<Due>> {
        let (lease, skip) = (lease.clone(), skip_endpoints.to_vec());
        run!(self, Write, |db| by_backend!(db,
            c => lite::engine::claim_due(c, &lease, now, limit, &skip),
            c => pg::engine::claim_due(*c, &lease, now, limit, &skip).await))
        .await
    }

    async fn renew_leases(&self, lease: &Lease, keys: &[(MessageId, EndpointId)]) -> Result<u64> {
        let (lease, keys) = (lease.clone(), keys.to_vec());
        run!(self, Write, |db| by_backend!(db,
            c => lite::engine::renew_leases(c, &lease, &keys),
            c => pg::engine::renew_leases(*c, &lease, &keys).await))
        .await
    }

    async fn release_leases(&self, owner: &str, keys: &[(MessageId, EndpointId)]) -> Result<()> {
        let (owner, keys) = (owner.to_owned(), keys.to_vec());
        run!(self, Transaction, |db| by_backend!(db,
            c => lite::engine::release_leases(c, &owner, &keys),
            c => pg::engine::release_leases(*c, &owner, &keys).await))
        .await
    }

    async fn release_all_leases(&self) -> Result<u64> {
        run!(self, Write, |db| engine::release_all_leases(db).await).await
    }

    async fn record_attempts(&self, records: &[AttemptRecord]) -> Result<()> {
        let records = records.to_vec();
        run!(self, Transaction, |db| {
            by_backend!(&mut *db,
                c => lite::engine::record_attempts(c, &records),
                c => pg::engine::record_attempts(*c, &records).await)?;
            operational::after_attempts(db, &records).await
        })
        .await
    }

    async fn next_due_at(&self, after: OffsetDateTime) -> Result<Option<OffsetDateTime>> {
        run!(self, Read, |db| by_backend!(db,
            c => lite::engine::next_due_at(c, after),
            c => pg::engine::next_due_at(*c, after).await))
        .await
    }

    async fn recover(
        &self,
        endpoint: &EndpointId,
        since: OffsetDateTime,
        until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<u64> {
        let endpoint = endpoint.clone();
        run!(self, Transaction, |db| {
            engine::recover(db, &endpoint, since, until, now).await
        })
        .await
    }

    async fn requeue(
        &self,
        app: &AppId,
        msg: &MessageId,
        endpoint: &EndpointId,
        now: OffsetDateTime,
    ) -> Result<()> {
        let (app, msg, endpoint) = (app.clone(), msg.clone(), endpoint.clone());
        run!(self, Transaction, |db| {
            crate::ordered::requeue(db, &app, &msg, &endpoint, now).await
        })
        .await
    }

    async fn queue_depth(&self, now: OffsetDateTime) -> Result<QueueDepth> {
        run!(self, Read, |db| engine::queue_depth(db, now).await).await
    }

    async fn endpoint_health_counts(&self) -> Result<EndpointHealthCounts> {
        run!(self, Read, |db| engine::endpoint_health_counts(db).await).await
    }

    async fn rollup_minutes(&self, since: OffsetDateTime) -> Result<Vec<RollupMinute>> {
        run!(self, Read, |db| crate::rollup::read(db, since).await).await
    }

    async fn prune_rollup(&self, before: OffsetDateTime) -> Result<u64> {
        run!(self, Write, |db| crate::rollup::prune(db, before).await).await
    }

    async fn request_resend(
        &self,
        app: &AppId,
        msg: &MessageId,
        endpoint: &EndpointId,
        now: OffsetDateTime,
    ) -> Result<()> {
        let (app, msg, endpoint) = (app.clone(), msg.clone(), endpoint.clone());
        run!(self, Transaction, |db| {
            engine::request_resend(db, &app, &msg, &endpoint, now).await
        })
        .await
    }

    async fn take_resends(&self, limit: usize) -> Result<Vec<(AppId, MessageId, EndpointId)>> {
        run!(self, Write, |db| engine::take_resends(db, limit).await).await
    }

    async fn apply_retention(
        &self,
        cutoff: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<RetentionPurge> {
        run!(self, Transaction, |db| {
            crate::retention::apply_retention(db, cutoff, now).await
        })
        .await
    }

    async fn put_task(
        &self,
        task: &BackgroundTask,
        idempotency: Option<&IdempotentResponse>,
    ) -> Result<()> {
        let (task, idempotency) = (task.clone(), self.codec().seal_response(idempotency));
        run!(self, Transaction, |db| {
            admin::save_idempotent(db, idempotency.as_ref()).await?;
            admin::put_task(db, &task).await?;
            emit(db, operational::task_event(&task), task.updated_at).await
        })
        .await
    }

    async fn get_task(&self, id: &TaskId) -> Result<Option<BackgroundTask>> {
        let id = id.clone();
        run!(self, Read, |db| admin::get_task(db, &id).await).await
    }

    async fn create_token(&self, token: &ApiTokenRecord) -> Result<()> {
        let token = token.clone();
        run!(self, Transaction, |db| admin::create_token(db, &token)
            .await)
        .await
    }

    async fn had_tokens(&self) -> Result<bool> {
        run!(self, Read, |db| admin::had_tokens(db).await).await
    }

    async fn list_tokens(&self) -> Result<Vec<ApiTokenRecord>> {
        run!(self, Read, |db| admin::list_tokens(db).await).await
    }

    async fn revoke_token(&self, key: &str) -> Result<bool> {
        let key = key.to_owned();
        run!(self, Write, |db| admin::revoke_token(db, &key).await).await
    }

    async fn find_token(&self, hash: &str) -> Result<Option<ApiTokenRecord>> {
        let hash = hash.to_owned();
        run!(self, Read, |db| admin::find_token(db, &hash).await).await
    }

    async fn count_tokens(&self) -> Result<u64> {
        run!(self, Read, |db| admin::count_tokens(db).await).await
    }

    async fn get_idempotent_response(
        &self,
        key_hash: &str,
        not_before: OffsetDateTime,
    ) -> Result<Option<IdempotentResponse>> {
        let key_hash = key_hash.to_owned();
        let stored = run!(self, Read, |db| {
            admin::get_idempotent(db, &key_hash, not_before).await
        })
        .await?;
        stored
            .map(|response| {
                self.codec()
                    .open_response(response)
                    .map_err(StoreError::Internal)
            })
            .transpose()
    }

    async fn save_idempotent_response(&self, response: &IdempotentResponse) -> Result<()> {
        let response = self.codec().seal_response(Some(response));
        run!(self, Write, |db| admin::save_idempotent(
            db,
            response.as_ref()
        )
        .await)
        .await
    }

    async fn prune_idempotency(&self, before: OffsetDateTime) -> Result<u64> {
        run!(self, Write, |db| admin::prune_idempotency(db, before).await).await
    }

    async fn reseal_idempotent_responses(&self) -> Result<u64> {
        let codec = self.codec().clone();
        run!(self, Transaction, |db| admin::reseal_idempotent(db, &codec)
            .await)
        .await
    }

    async fn scrub(&self) -> Result<()> {
        Backend::scrub(self).await
    }

    async fn ping(&self) -> Result<()> {
        run!(self, Read, |db| admin::ping(db).await).await
    }

    fn due_notifications(&self) -> Option<std::sync::Arc<tokio::sync::Notify>> {
        Backend::due_notifications(self)
    }
}
