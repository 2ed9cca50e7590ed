//! Delivery latency (ingest → success) as a histogram with fixed buckets: the bounds that
//! `/metrics` exports (`webhookd_delivery_latency_seconds`) and that the store's per-minute
//! rollup counts in, so that the two agree, and the estimate of a percentile from such counts.
//!
//! A histogram with fixed bounds can be added up across nodes and across minutes (a summary
//! cannot), which is why both the metric and the rollup use one.

/// Upper bounds of the buckets, in seconds: 1 ms … 60 s, the range of a webhook from a local
/// receiver to a slow one near the request timeout. A latency falls in the first bucket whose
/// bound it does not exceed; one more bucket counts everything beyond the last.
pub const BOUNDS_SECONDS: [f64; 16] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0, 60.0,
];

/// Buckets of a histogram: one per bound and the overflow.
pub const BUCKETS: usize = BOUNDS_SECONDS.len() + 1;

/// Counts per bucket.
pub type Histogram = [u64; BUCKETS];

/// The upper bound of bucket `index` in milliseconds (`index` < `BOUNDS_SECONDS.len()`).
fn bound_ms(index: usize) -> f64 {
    BOUNDS_SECONDS[index] * 1000.0
}

/// The last bound in milliseconds: what a quantile in the overflow bucket reads as.
fn last_bound_ms() -> f64 {
    bound_ms(BOUNDS_SECONDS.len() - 1)
}

/// The bucket a latency of `ms` milliseconds is counted in.
pub fn bucket_of(ms: u64) -> usize {
    (0..BOUNDS_SECONDS.len())
        .find(|index| ms as f64 <= bound_ms(*index))
        .unwrap_or(BOUNDS_SECONDS.len())
}

/// Adds `other` into `total`, bucket by bucket.
pub fn add(total: &mut Histogram, other: &Histogram) {
    for (sum, count) in total.iter_mut().zip(other) {
        *sum += count;
    }
}

/// Estimates the `q`-quantile (0 < q ≤ 1) in milliseconds, interpolating linearly within the
/// bucket it falls in, as Prometheus' `histogram_quantile` does; a quantile in the overflow
/// bucket reads as the last bound. `None` when the histogram is empty.
pub fn quantile_ms(histogram: &Histogram, q: f64) -> Option<f64> {
    let total: u64 = histogram.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = q.clamp(0.0, 1.0) * total as f64;
    let mut below = 0u64;
    for (index, count) in histogram.iter().enumerate() {
        let above = below + count;
        if *count > 0 && above as f64 >= rank {
            if index == BOUNDS_SECONDS.len() {
                return Some(last_bound_ms());
            }
            let lower = if index == 0 { 0.0 } else { bound_ms(index - 1) };
            let within = (rank - below as f64) / *count as f64;
            return Some(lower + (bound_ms(index) - lower) * within);
        }
        below = above;
    }
    Some(last_bound_ms())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_fall_in_the_first_bucket_that_holds_them() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(1), 0);
        assert_eq!(bucket_of(2), 1);
        assert_eq!(bucket_of(3), 2);
        assert_eq!(bucket_of(60_000), 15);
        assert_eq!(bucket_of(60_001), 16);
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn quantiles_interpolate_within_a_bucket() {
        let mut histogram = [0; BUCKETS];
        assert_eq!(quantile_ms(&histogram, 0.5), None);
        // 100 latencies in (10, 25] ms.
        histogram[bucket_of(15)] = 100;
        assert_eq!(quantile_ms(&histogram, 0.5), Some(17.5));
        assert!((quantile_ms(&histogram, 0.99).unwrap() - 24.85).abs() < 1e-9);
        // One slow outlier beyond the last bound.
        histogram[BUCKETS - 1] = 1;
        assert_eq!(quantile_ms(&histogram, 1.0), Some(60_000.0));
        assert!(quantile_ms(&histogram, 0.5).unwrap() < 25.0);
    }

    #[test]
    fn histograms_add_up() {
        let mut total = [0; BUCKETS];
        let mut one = [0; BUCKETS];
        one[3] = 2;
        add(&mut total, &one);
        add(&mut total, &one);
        assert_eq!(total[3], 4);
    }
}
