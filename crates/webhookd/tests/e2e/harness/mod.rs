//! The end-to-end harness: the real server (in-process or as a child process), a scriptable
//! receiver that verifies signatures, an API client, and polling with a deadline.

mod api;
mod fixture;
mod process;
mod receiver;
mod server;
mod wait;

pub(crate) use api::{Api, expect_status};
pub(crate) use fixture::{HOOK, OneEndpoint};
pub(crate) use process::{ServerProcess, free_port, run_cli};
pub(crate) use receiver::{Received, Receiver, Reply, unix};
pub(crate) use server::{TestServer, settings};
pub(crate) use wait::{DEADLINE, eventually};
