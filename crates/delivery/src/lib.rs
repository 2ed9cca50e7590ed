//! The delivery engine: it takes committed deliveries, sends each one as a signed HTTP POST,
//! records the attempt and schedules what comes next.

pub mod http;
