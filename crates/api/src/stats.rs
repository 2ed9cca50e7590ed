//! `GET /api/v1/stats/overview`: what the console's overview charts show, for the operator.
//!
//! The charts come from the delivery rollup in the store (per-minute counts and a latency
//! histogram that every node adds into as it records attempts), so they are right on any
//! number of nodes. The last hour is shown in 60 one-minute buckets, the last day in 96
//! quarter-hour buckets; every bucket is present, with zeros where nothing happened, so a
//! chart is continuous. p50 and p99 are estimated from the histogram as Prometheus does
//! (`histogram_quantile`); `null` when nothing was delivered. The queue and endpoint counts
//! are read at the time of the request.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use webhookd_core::latency;
use webhookd_core::time::{now, serde_rfc3339};
use webhookd_store::RollupMinute;
use webhookd_store::rollup::{buckets, window_start};

use crate::ApiState;
use crate::error::{ApiResult, ValidationErrorBody};
use crate::query::Query;
use crate::wire::JsonBytes;

pub(crate) fn router() -> Router<ApiState> {
    Router::new().route("/stats/overview", get(overview))
}

/// The query of `overview`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct OverviewQuery {
    /// `1h` (the default: 60 one-minute buckets) or `1d` (96 quarter-hour buckets).
    #[serde(default)]
    #[param(inline)]
    period: Period,
}

/// A period of the overview: the last hour or the last day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
pub(crate) enum Period {
    #[default]
    #[serde(rename = "1h")]
    Hour,
    #[serde(rename = "1d")]
    Day,
}

impl Period {
    fn name(self) -> &'static str {
        match self {
            Self::Hour => "1h",
            Self::Day => "1d",
        }
    }

    fn width(self) -> time::Duration {
        match self {
            Self::Hour => time::Duration::minutes(1),
            Self::Day => time::Duration::minutes(15),
        }
    }

    fn count(self) -> usize {
        match self {
            Self::Hour => 60,
            Self::Day => 96,
        }
    }
}

/// The overview.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OverviewOut {
    /// `1h` or `1d`.
    #[schema(example = "1h")]
    period: &'static str,
    /// Oldest first, one per minute (`1h`) or quarter hour (`1d`), the last one holding now.
    buckets: Vec<BucketOut>,
    queue: QueueOut,
    endpoints: EndpointsOut,
}

/// One bucket of the overview, on every node together.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BucketOut {
    /// The start of the bucket.
    #[serde(with = "serde_rfc3339")]
    start: OffsetDateTime,
    /// Delivery attempts made, scheduled and manual.
    attempts: u64,
    /// Attempts that succeeded.
    delivered: u64,
    /// Attempts that ended their delivery in failure (after the last retry, or a failed
    /// manual resend).
    failed: u64,
    /// Attempts that failed and were scheduled again.
    retried: u64,
    /// Median time from ingest to a successful delivery, in milliseconds, estimated from a
    /// histogram (1 ms … 60 s); `null` when nothing was delivered.
    #[schema(required)]
    p50_ms: Option<f64>,
    /// The 99th percentile of the same.
    #[schema(required)]
    p99_ms: Option<f64>,
}

impl From<&RollupMinute> for BucketOut {
    fn from(bucket: &RollupMinute) -> Self {
        Self {
            start: bucket.start,
            attempts: bucket.attempts,
            delivered: bucket.delivered,
            failed: bucket.failed,
            retried: bucket.retried,
            p50_ms: latency::quantile_ms(&bucket.latency, 0.5).map(round),
            p99_ms: latency::quantile_ms(&bucket.latency, 0.99).map(round),
        }
    }
}

/// To a tenth of a millisecond: the estimate is no finer than that.
fn round(ms: f64) -> f64 {
    (ms * 10.0).round() / 10.0
}

/// Deliveries waiting in the store now.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct QueueOut {
    /// Pending and due now.
    due: u64,
    /// Pending, with a later next attempt (retries, `deliverAt`).
    scheduled: u64,
    /// Being worked on by a node.
    leased: u64,
}

/// Endpoints by health now.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EndpointsOut {
    /// Enabled, with every attempt failing since some time.
    failing: u64,
    disabled: u64,
}

#[utoipa::path(
    get,
    path = "/api/v1/stats/overview",
    operation_id = "v1.stats.overview",
    tag = "Statistics",
    params(OverviewQuery),
    responses(
        (status = 200, description = "Deliveries over the period, the queue and endpoint health", body = OverviewOut),
        (status = 422, description = "`period` is neither `1h` nor `1d`", body = ValidationErrorBody),
    )
)]
pub(crate) async fn overview(
    State(state): State<ApiState>,
    Query(OverviewQuery { period }): Query<OverviewQuery>,
) -> ApiResult<JsonBytes> {
    let at = now();
    let store = state.store();
    let since = window_start(at, period.width(), period.count());
    let (minutes, queue, endpoints) = tokio::try_join!(
        store.rollup_minutes(since),
        store.queue_depth(at),
        store.endpoint_health_counts(),
    )?;
    let overview = OverviewOut {
        period: period.name(),
        buckets: buckets(&minutes, at, period.width(), period.count())
            .iter()
            .map(BucketOut::from)
            .collect(),
        queue: QueueOut {
            due: queue.due,
            scheduled: queue.scheduled,
            leased: queue.leased,
        },
        endpoints: EndpointsOut {
            failing: endpoints.failing,
            disabled: endpoints.disabled,
        },
    };
    JsonBytes::new(StatusCode::OK, &overview)
}
