//! End-to-end tests of webhookd: the real server (in-process on an ephemeral port, or the real
//! binary as a child process), a real receiver that verifies every signature, and assertions
//! on what the receiver got and what the API reports.
//!
//! All of them compile into this one binary. They use short real retry schedules
//! (`1s,1s,2s`), never sleep blindly (waits poll a condition with a deadline) and assert on
//! orderings and lower bounds only, never on how fast something went.
//!
//! - `delivery`: what one delivery looks like, fan-out, `deliverAt`, raw payloads, attempt
//!   records, Svix headers.
//! - `retries`: the outcome classes and the retry schedule (issue 3).
//! - `isolation`: a slow endpoint does not delay another.
//! - `endpoint_controls`: secret rotation, throttling, resend, recover.
//! - `crash`: SIGKILL mid-stream loses nothing acknowledged.
//! - `cli`: exit codes, refusals, tokens, SIGTERM.

mod harness;

mod cli;
mod crash;
mod delivery;
mod endpoint_controls;
mod isolation;
mod retries;
