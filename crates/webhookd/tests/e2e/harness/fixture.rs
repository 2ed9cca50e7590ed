//! The setup most tests share: a node, a receiver, one application and one endpoint of it
//! pointing at the receiver's [`HOOK`] path. Tests script the receiver before they send.

use serde_json::{Value, json};

use super::api::TestEndpoint;
use super::database::Backend;
use super::receiver::Receiver;
use super::server::TestServer;

/// The receiver path the fixture's endpoint points at.
pub(crate) const HOOK: &str = "/hook";

pub(crate) struct OneEndpoint {
    pub(crate) server: TestServer,
    pub(crate) receiver: Receiver,
    pub(crate) app: String,
    pub(crate) endpoint: TestEndpoint,
}

impl OneEndpoint {
    /// A node on `backend` with these setting overrides, and an endpoint made of `fields`
    /// (`{}` for the defaults) with the receiver's [`HOOK`] as its URL.
    pub(crate) async fn start(backend: Backend, settings: &[(&str, &str)], fields: Value) -> Self {
        let receiver = Receiver::start().await;
        let server = TestServer::start_on(backend, settings).await;
        let app = server.create_app().await;
        let mut fields = fields;
        fields["url"] = json!(receiver.url(HOOK));
        let endpoint = server.create_endpoint(&app, fields).await;
        Self {
            server,
            receiver,
            app,
            endpoint,
        }
    }

    /// Sends a message with this payload to the application; answers its id.
    pub(crate) async fn send(&self, payload: Value) -> String {
        self.server.send_event(&self.app, payload).await
    }

    /// Waits until the message's delivery to the endpoint has this status.
    pub(crate) async fn wait_for_status(&self, msg: &str, status: i64) {
        self.server
            .wait_for_delivery_status(&self.app, msg, &self.endpoint.id, status)
            .await;
    }

    /// Waits until `count` attempts of the message are recorded; oldest first.
    pub(crate) async fn wait_for_attempts(&self, msg: &str, count: usize) -> Vec<Value> {
        self.server.wait_for_attempts(&self.app, msg, count).await
    }
}
