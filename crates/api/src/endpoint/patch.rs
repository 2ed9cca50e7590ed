//! The body of `PATCH /api/v1/app/{app}/endpoint/{ep}` and how it changes a stored endpoint.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use utoipa::ToSchema;
use webhookd_core::model::Endpoint;
use webhookd_core::validate;

use super::names::{check_names, event_types};
use super::{
    MAX_CHANNELS, check_same_kind, check_url, check_version, headers, options, parse_secret,
    secret, set_disabled,
};
use crate::error::ApiResult;
use crate::wire::{check_metadata, check_rate, check_text, check_uid, nullable};

/// The body of PATCH: absent fields are kept; `null` clears the fields that can be cleared.
/// `headers` replaces the custom headers and `secret` is adopted as on PUT.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EndpointPatch {
    #[serde(default)]
    #[schema(format = "uri", max_length = 2048)]
    url: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 1024)]
    description: Option<Option<String>>,
    #[serde(default)]
    #[schema(minimum = 1)]
    version: Option<i64>,
    #[serde(default)]
    disabled: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Vec<String>>, max_items = 100)]
    filter_types: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Vec<String>>, max_items = 100)]
    event_types: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Vec<String>>, max_items = 10)]
    channels: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<u32>, minimum = 1, maximum = 65535)]
    rate_limit: Option<Option<u32>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<u32>, minimum = 1, maximum = 65535)]
    throttle_rate: Option<Option<u32>>,
    /// Deliver in order (FIFO); kept when absent.
    #[serde(default)]
    ordered: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Object>)]
    metadata: Option<Option<Map<String, Value>>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 256)]
    #[schema(pattern = r"^[a-zA-Z0-9\-_.]{1,256}$")]
    uid: Option<Option<String>>,
    #[serde(default)]
    secret: Option<String>,
    #[serde(default)]
    headers: Option<BTreeMap<String, String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 4096)]
    payload_filter: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Vec<String>>, max_items = 20)]
    retry_schedule: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    request_timeout: Option<Option<String>>,
}

impl EndpointPatch {
    /// Applies the patch to a copy of the stored endpoint; nothing is saved on an error.
    pub(super) fn apply(
        self,
        endpoint: &mut Endpoint,
        at: OffsetDateTime,
        lease: Duration,
    ) -> ApiResult<()> {
        if let Some(url) = self.url {
            let url = check_url(&url)?;
            check_same_kind(endpoint, &url)?;
            endpoint.url = url;
        }
        if let Some(description) = self.description {
            let description = description.unwrap_or_default();
            check_text(
                "description",
                &description,
                validate::MAX_DESCRIPTION_LENGTH,
            )?;
            endpoint.description = description;
        }
        if let Some(version) = self.version {
            check_version(version)?;
            endpoint.version = version;
        }
        if let Some(disabled) = self.disabled {
            set_disabled(endpoint, disabled);
        }
        match (self.event_types, self.filter_types) {
            (Some(types), _) => {
                endpoint.event_types = event_types(Some(types.unwrap_or_default()), None)?;
            }
            (None, Some(types)) => {
                endpoint.event_types = event_types(None, Some(types.unwrap_or_default()))?;
            }
            (None, None) => {}
        }
        if let Some(channels) = self.channels {
            endpoint.channels =
                check_names("channels", channels.unwrap_or_default(), MAX_CHANNELS)?;
        }
        if let Some(throttle_rate) = self.throttle_rate.or(self.rate_limit) {
            check_rate("throttleRate", throttle_rate)?;
            endpoint.throttle_rate = throttle_rate;
        }
        if let Some(ordered) = self.ordered {
            endpoint.ordered = ordered;
        }
        if let Some(metadata) = self.metadata {
            let metadata = metadata.unwrap_or_default();
            check_metadata(&metadata)?;
            endpoint.metadata = metadata;
        }
        if let Some(uid) = self.uid {
            check_uid(uid.as_deref())?;
            endpoint.uid = uid;
        }
        if let Some(headers) = self.headers {
            endpoint.headers = headers::check_all(headers)?;
        }
        if let Some(text) = self.secret {
            secret::adopt(endpoint, parse_secret("secret", &text)?, at);
        }
        if let Some(filter) = self.payload_filter {
            endpoint.payload_filter = options::check_filter(filter)?;
        }
        if let Some(schedule) = self.retry_schedule {
            endpoint.retry_schedule = options::check_schedule(schedule)?;
        }
        if let Some(timeout) = self.request_timeout {
            endpoint.request_timeout = options::check_timeout(timeout, lease)?;
        }
        endpoint.updated_at = at;
        Ok(())
    }
}
