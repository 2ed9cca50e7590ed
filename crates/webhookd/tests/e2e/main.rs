//! End-to-end tests of webhookd: the real server (in-process on an ephemeral port, or the real
//! binary as a child process), a real receiver that verifies every signature, and assertions
//! on what the receiver got and what the API reports.
//!
//! All of them compile into this one binary. They use short real retry schedules
//! (`1s,1s,2s`), never sleep blindly (waits poll a condition with a deadline) and assert on
//! orderings and lower bounds only, never on how fast something went.
//!
//! Tests of what the store carries run on both backends, as `<module>::sqlite::<test>` and
//! `<module>::postgres::<test>`; each gets a fresh database. PostgreSQL runs when
//! `WEBHOOKD_TEST_DATABASE_URL` names a server (e.g.
//! `WEBHOOKD_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test`), and is required under
//! `CI=true` (see `harness::database`).
//!
//! - `delivery`: what one delivery looks like, fan-out, `deliverAt`, raw payloads, attempt
//!   records, Svix headers.
//! - `retries`: the outcome classes and the retry schedule.
//! - `isolation`: a slow endpoint does not delay another.
//! - `shutdown`: SIGTERM gives back the leases of queued work before the process exits.
//! - `starvation`: endpoints that never answer do not starve the ones that do.
//! - `endpoint_controls`: secret rotation, throttling, resend, recover.
//! - `endpoint_options`: payload filters, and an endpoint's own retry schedule and request
//!   timeout.
//! - `crash`: SIGKILL mid-stream loses nothing acknowledged.
//! - `multinode`: several nodes on one PostgreSQL database: round-robin ingest, takeover of a
//!   killed node's work, API and worker roles, idempotency and `eventId` across nodes.
//! - `frozen_database`: a database that stops answering gets 503 with `Retry-After` within the
//!   store deadline; readiness follows it, liveness does not.
//! - `clock_skew`: two nodes with clocks 60 s apart (libfaketime) share leases correctly.
//! - `ordered`: ordered endpoints keep send order through retries, a restart and two nodes.
//! - `operational`: operational webhooks, every event at a verifying operational endpoint.
//! - `metrics`: every series of `/metrics` on a fresh node and a busy one.
//! - `overview`: the console's overview and endpoint health after real deliveries.
//! - `cli`: exit codes, refusals, tokens, SIGTERM.
//! - `data_at_rest`: the start-up warning about plain secrets under a key.
//! - `token_lifecycle`: the local-mode opt-in, tokens managed on running nodes, weak tokens.
//! - `listen`: `webhookd listen` forwards a polling endpoint's messages, signed, and resumes.
//! - `connections`: a crowd of idle and slow clients under a low limit on open files, and a
//!   hostile request stream over one keep-alive connection.

mod harness;

mod cli;
mod clock_skew;
mod connections;
mod crash;
mod data_at_rest;
mod delivery;
mod endpoint_controls;
mod endpoint_options;
mod frozen_database;
mod isolation;
mod listen;
mod metrics;
mod multinode;
mod operational;
mod ordered;
mod overview;
mod retries;
mod shutdown;
mod starvation;
mod token_lifecycle;
