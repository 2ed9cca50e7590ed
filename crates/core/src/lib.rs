//! The vocabulary of webhookd: identifiers, the data model, the delivery status machine, the
//! retry schedule, outcome classification and Standard Webhooks signing.
//!
//! Architecture invariant: this crate does no I/O and knows nothing about async, HTTP servers or
//! databases. Everything here is a pure function of its inputs, so it is tested by unit and
//! property tests alone.

pub mod access;
pub mod cipher;
pub mod filter;
pub mod id;
pub mod latency;
pub mod model;
pub mod operational;
pub mod outcome;
pub mod retry;
pub mod signing;
pub mod ssrf;
pub mod time;
pub mod validate;

pub use id::{
    AppId, AppKey, AttemptId, EndpointId, EndpointKey, Key, MessageId, MessageKey, TaskId, TokenId,
};
