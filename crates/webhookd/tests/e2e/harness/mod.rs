//! The end-to-end harness: the real server (in-process or as a child process), a scriptable
//! receiver that verifies signatures, an API client, polling with a deadline, and the database
//! on either backend.

mod api;
mod database;
mod fixture;
mod process;
mod receiver;
mod server;
mod wait;

pub(crate) use api::{Api, TestEndpoint, expect_status};
pub(crate) use database::{Backend, TestDatabase, on_both_backends, postgres_enabled};
pub(crate) use fixture::{HOOK, OneEndpoint};
pub(crate) use process::{ServerProcess, free_port, run_cli, webhookd_with_open_files};
pub(crate) use receiver::{Received, Receiver, Reply, unix};
pub(crate) use server::{TestServer, settings};
pub(crate) use wait::{DEADLINE, eventually, eventually_within};
