//! PostgreSQL's side of [`crate::BulkStore`]: a message sent to one endpoint, in one
//! statement, waking the other nodes when it is stored unclaimed.

use super::sql::Connection;
use webhookd_core::EndpointId;
use webhookd_core::model::{DeliveryStatus, Message};

use super::listen::notify_due;
use super::rows::{ms, opt_ms};
use super::sql::execute;
use crate::columns::MESSAGE_COLUMNS;
use crate::{Conflict, Lease, Result, claim_at_insert, first_due};

const PENDING: i16 = DeliveryStatus::Pending as i16;

/// See [`crate::BulkStore::create_message_to`].
pub(crate) async fn create_message_to(
    c: &impl Connection,
    message: &Message,
    endpoint: &EndpointId,
    lease: Option<&Lease>,
) -> Result<()> {
    let claim = claim_at_insert(message, lease);
    let due = ms(first_due(message));
    let (owner, until) = claim
        .map(|lease| (lease.owner.as_str(), ms(lease.until)))
        .unzip();
    let sql = format!(
        "WITH message AS ( \
               INSERT INTO messages ({}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
               RETURNING id, app_id) \
             INSERT INTO deliveries (msg_id, endpoint_id, app_id, status, attempts, \
               next_attempt_at, lease_owner, lease_until, created_at, updated_at) \
             SELECT message.id, $11::text, message.app_id, {PENDING}, 0, $12::bigint, \
               $13::text, $14::bigint, $8::bigint, $8::bigint FROM message",
        MESSAGE_COLUMNS.replace("m.", "")
    );
    let inserted = execute(
        c,
        &sql,
        &[
            &message.id.as_str(),
            &message.app_id.as_str(),
            &message.event_type,
            &message.event_id,
            &message.payload.as_ref(),
            &message.channels,
            &message.tags,
            &ms(message.created_at),
            &opt_ms(message.deliver_at),
            &opt_ms(message.retain_payload_until),
            &endpoint.as_str(),
            &due,
            &owner,
            &until,
        ],
    )
    .await
    .map_err(|error| error.taken_as(|| Conflict::event_id(message.event_id.as_deref())))?;
    if claim.is_none() && inserted > 0 {
        notify_due(c).await?;
    }
    Ok(())
}
