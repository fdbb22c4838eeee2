//! tapeout's SQL functions, one per module, all registered by [`register_all`] (which
//! `tapeout sql` and `tapeout mine` call on every session).
//!
//! HDR histograms (precision and scaling in [`hdr`]):
//! - [`hdr_histogram::HdrHistogram`] `hdr_histogram(x)`: aggregate → a serialized, mergeable
//!   histogram (binary).
//! - [`hdr_merge::HdrMerge`] `hdr_merge(h)`: aggregate of histograms → their merge.
//! - [`hdr_quantile::HdrQuantile`] `hdr_quantile(x, q)`: aggregate → the value at quantile `q`.
//! - [`hdr_quantile_of::HdrQuantileOf`] `hdr_quantile_of(h, q)`: scalar, the quantile of a
//!   serialized histogram.
//! - [`hdr_summary::HdrSummary`] `hdr_summary(x)`: aggregate → struct {count, min, max, mean,
//!   stdev, p50, p90, p99, p999}.
//!
//! Caches:
//! - [`lru_cache_hits::LruCacheHits`] `lru_cache_hits(hashes, tokens, capacity)`: scalar, replays
//!   prefix-cache block lookups against an LRU of `capacity` blocks.
//! - [`lru_hit::LruHit`] `lru_hit(hash, capacity) OVER (…)`: window, the same cache streamed in
//!   window order (hit, miss or null per row).
//!
//! Window functions:
//! - [`running_sum::RunningSum`] `running_sum(x)`: what [`running_sum::RunningSumRule`] (a
//!   physical optimizer rule every session runs) evaluates `sum(x) OVER (… ROWS BETWEEN
//!   UNBOUNDED PRECEDING AND CURRENT ROW)` with, one addition per row.
//!
//! Every aggregate's partial state is the serialized histogram, so DataFusion's partial /
//! final aggregation merges exactly what one pass over all rows would have counted (histogram
//! addition is exact: counts per bucket add).

pub mod accumulator;
pub mod hdr;
pub mod hdr_histogram;
pub mod hdr_merge;
pub mod hdr_quantile;
pub mod hdr_quantile_of;
pub mod hdr_summary;
pub mod lru_cache_hits;
pub mod lru_hit;
pub mod running_sum;

use datafusion::logical_expr::{AggregateUDF, ScalarUDF, WindowUDF};
use datafusion::prelude::SessionContext;
use std::sync::Arc;

/// tapeout's aggregate functions.
pub fn aggregate_functions() -> Vec<Arc<AggregateUDF>> {
    vec![
        Arc::new(AggregateUDF::new_from_impl(hdr_histogram::HdrHistogram::new())),
        Arc::new(AggregateUDF::new_from_impl(hdr_merge::HdrMerge::new())),
        Arc::new(AggregateUDF::new_from_impl(hdr_quantile::HdrQuantile::new())),
        Arc::new(AggregateUDF::new_from_impl(hdr_summary::HdrSummary::new())),
    ]
}

/// tapeout's scalar functions.
pub fn scalar_functions() -> Vec<Arc<ScalarUDF>> {
    vec![
        Arc::new(ScalarUDF::new_from_impl(hdr_quantile_of::HdrQuantileOf::new())),
        Arc::new(ScalarUDF::new_from_impl(lru_cache_hits::LruCacheHits::new())),
    ]
}

/// tapeout's window functions.
pub fn window_functions() -> Vec<Arc<WindowUDF>> {
    vec![
        Arc::new(WindowUDF::new_from_impl(running_sum::RunningSum::new())),
        Arc::new(WindowUDF::new_from_impl(lru_hit::LruHit::new())),
    ]
}

/// Registers every tapeout function with `ctx` (the optimizer rule comes with
/// [`crate::with_functions`], which builds the session state).
pub fn register_all(ctx: &SessionContext) {
    for f in aggregate_functions() {
        ctx.register_udaf(f.as_ref().clone());
    }
    for f in scalar_functions() {
        ctx.register_udf(f.as_ref().clone());
    }
    for f in window_functions() {
        ctx.register_udwf(f.as_ref().clone());
    }
}
