//! webhookd: a self-hosted webhook dispatching service in one binary.
//!
//! This crate is the binary's library: the command line ([`cli`]), configuration ([`config`])
//! and [`run::run`], which assembles a node from the workspace's parts (`webhookd-store`,
//! `webhookd-delivery`, `webhookd-api`). Tests and `webhookd bench` call [`run::run`] with a
//! listener of their own, so they start the real server in-process.

pub mod cli;
pub mod commands;
pub mod config;
pub mod heartbeat;
pub mod metrics;
pub mod run;
pub mod serve;
pub mod telemetry;
pub mod tls;
pub mod tools;
pub mod walk;
