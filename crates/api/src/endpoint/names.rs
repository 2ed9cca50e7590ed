//! The name lists of an endpoint: the event types it filters on and its channels, each a set
//! of valid names (event type names up to 256 characters, channels up to 128).

use webhookd_core::validate;

use crate::error::{ApiError, ApiResult};

/// The most event types an endpoint may filter on.
const MAX_EVENT_TYPES: usize = 100;

/// The event types to filter on, from whichever of the two names was given (`eventTypes`
/// wins). Empty means every type.
pub(super) fn event_types(
    event_types: Option<Vec<String>>,
    filter_types: Option<Vec<String>>,
) -> ApiResult<Vec<String>> {
    match (event_types, filter_types) {
        (Some(types), _) => check_names("eventTypes", types, MAX_EVENT_TYPES),
        (None, Some(types)) => check_names("filterTypes", types, MAX_EVENT_TYPES),
        (None, None) => Ok(Vec::new()),
    }
}

/// Checks a list of event type names or channels, and drops repeats (they are sets).
pub(super) fn check_names(field: &str, names: Vec<String>, max: usize) -> ApiResult<Vec<String>> {
    if names.len() > max {
        return Err(ApiError::invalid(
            &["body", field],
            format!("must hold at most {max} items"),
        ));
    }
    let mut unique: Vec<String> = Vec::with_capacity(names.len());
    let rule = if field == "channels" {
        validate::channel
    } else {
        validate::name
    };
    for (index, name) in names.into_iter().enumerate() {
        rule(&name).map_err(|msg| ApiError::invalid(&["body", field, &index.to_string()], msg))?;
        if !unique.contains(&name) {
            unique.push(name);
        }
    }
    Ok(unique)
}
