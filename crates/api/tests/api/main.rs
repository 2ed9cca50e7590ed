//! The API's behaviour at its boundary: requests in, JSON out, against a real SQLite store in
//! a temporary directory. One test binary; one module per resource.

#![allow(unreachable_pub, dead_code)]

mod common;

mod app_access;
mod application;
mod attempt;
mod browser;
mod endpoint;
mod endpoint_controls;
mod endpoint_options;
mod event_type;
mod limits;
mod message;
mod openapi;
mod poller;
mod query;
mod seed;
mod sessions;
mod stats;
mod token;
