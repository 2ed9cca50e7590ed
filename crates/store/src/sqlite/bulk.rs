//! SQLite's side of [`crate::BulkStore`]: a message sent to one endpoint.

use rusqlite::Connection;
use webhookd_core::EndpointId;
use webhookd_core::model::Message;

use super::messages;
use crate::{Lease, Result};

/// See [`crate::BulkStore::create_message_to`].
pub(crate) fn create_message_to(
    c: &Connection,
    message: &Message,
    endpoint: &EndpointId,
    lease: Option<&Lease>,
) -> Result<()> {
    messages::insert_message(c, message)?;
    messages::insert_deliveries(c, message, std::slice::from_ref(endpoint), lease)
}
