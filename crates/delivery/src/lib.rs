//! The delivery engine: it takes committed deliveries, sends each one as a signed HTTP POST,
//! records the attempt and schedules what comes next.

mod handle;
pub mod http;

pub use handle::Dispatcher;
