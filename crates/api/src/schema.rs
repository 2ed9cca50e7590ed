//! Schemas of the OpenAPI document that a derive cannot say: values that come from the model
//! (delivery statuses, task statuses), used by the wire types through `schema_with`. The
//! document itself (`openapi`) lists the handlers; this module knows none of them.

use utoipa::openapi::Object;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use webhookd_core::model::{DeliveryStatus, TaskStatus};

/// `statusText`: a delivery status by name.
pub(crate) fn status_text() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(DeliveryStatus::ALL.map(DeliveryStatus::text)))
        .build()
}

/// `status`: a delivery status by number (0 success, 1 pending, 2 fail, 3 sending, 4 canceled).
pub(crate) fn status_code() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .enum_values(Some(DeliveryStatus::ALL.map(DeliveryStatus::code)))
        .description(Some("0 success, 1 pending, 2 fail, 3 sending, 4 canceled"))
        .build()
}

/// A background task's `status`.
pub(crate) fn task_status() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(
            [
                TaskStatus::Running,
                TaskStatus::Finished,
                TaskStatus::Failed,
            ]
            .map(TaskStatus::text),
        ))
        .build()
}
