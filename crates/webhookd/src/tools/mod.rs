//! Tools around a running server, apart from the node itself: the benchmark (`webhookd bench`),
//! the local receiver that prints what it gets (`webhookd bin`), the forwarder of a polling
//! endpoint to a local URL (`webhookd listen`), and the API client they share.

pub mod bench;
pub mod bin;
pub mod client;
pub mod listen;
