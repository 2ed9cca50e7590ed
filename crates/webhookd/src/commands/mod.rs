//! Subcommands that administer a node's data rather than run it: API tokens (`webhookd token`,
//! against the database or a running server) and the sealing of secrets (`webhookd secrets`).

pub mod secrets;
pub mod token;
