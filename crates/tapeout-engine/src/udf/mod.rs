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

use datafusion::logical_expr::{AggregateUDF, ScalarUDF};
use datafusion::prelude::SessionContext;

/// Registers every tapeout function with `ctx`.
pub fn register_all(ctx: &SessionContext) {
    ctx.register_udaf(AggregateUDF::new_from_impl(hdr_histogram::HdrHistogram::new()));
    ctx.register_udaf(AggregateUDF::new_from_impl(hdr_merge::HdrMerge::new()));
    ctx.register_udaf(AggregateUDF::new_from_impl(hdr_quantile::HdrQuantile::new()));
    ctx.register_udaf(AggregateUDF::new_from_impl(hdr_summary::HdrSummary::new()));
    ctx.register_udf(ScalarUDF::new_from_impl(hdr_quantile_of::HdrQuantileOf::new()));
    ctx.register_udf(ScalarUDF::new_from_impl(lru_cache_hits::LruCacheHits::new()));
}
