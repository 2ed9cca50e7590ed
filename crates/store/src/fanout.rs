//! The part of fan-out both backends share: the payload filters of the endpoints a message's
//! event type and channels already select. SQL cannot run CEL, so each backend hands the
//! candidates it found to a [`FilterPass`], which evaluates every filter once per (message,
//! endpoint) against the message converted once, with the filters compiled once per process
//! (`webhookd_core::filter::FilterCache`, keyed by their text, so a changed filter is compiled
//! anew and an unchanged one never again).

use std::sync::LazyLock;

use webhookd_core::filter::{FilterCache, FilterInput};
use webhookd_core::model::Message;

/// The compiled filters of this process. It holds only what a filter's text compiles to, the
/// same for every store and node, so one cache serves them all.
static FILTERS: LazyLock<FilterCache> = LazyLock::new(FilterCache::default);

/// One message's trip through its candidates' filters.
pub(crate) struct FilterPass<'m> {
    message: &'m Message,
    /// The message as filters see it, made at the first filter met.
    input: Option<FilterInput>,
}

impl<'m> FilterPass<'m> {
    pub(crate) fn new(message: &'m Message) -> Self {
        Self {
            message,
            input: None,
        }
    }

    /// Whether an endpoint with this filter (none lets everything through) takes the message.
    /// A filter that does not evaluate to `true` does not match.
    pub(crate) fn accepts(&mut self, filter: Option<&str>) -> bool {
        let Some(filter) = filter else {
            return true;
        };
        let message = self.message;
        let input = self.input.get_or_insert_with(|| {
            FilterInput::new(&message.payload, &message.event_type, &message.channels)
        });
        FILTERS.matches(filter, input)
    }
}

/// Whether a stored message passes an endpoint's filter (none lets everything through): for
/// replays, which fill in what fan-out would have made, and for polling readers, which apply
/// the filter when they read.
pub fn passes(filter: Option<&str>, payload: &[u8], event_type: &str, channels: &[String]) -> bool {
    filter.is_none_or(|filter| {
        FILTERS.matches(filter, &FilterInput::new(payload, event_type, channels))
    })
}
