//! `lru_hit(block_hash, capacity) OVER (PARTITION BY … ORDER BY …)`: whether each lookup hits
//! an LRU cache of `capacity` blocks, streamed in window order.
//!
//! One cache per window partition, replayed in the window's `ORDER BY`: the same cache as
//! [`lru_cache_hits`](super::lru_cache_hits) ([`LruSet`]), without building lists first. Returns
//! a boolean per row: `true` for a hit, `false` for a miss, null where `block_hash` is null (not
//! a lookup). Evictions follow from the counts: every miss inserts a hash, so a partition with
//! `m` misses evicted `max(0, m − capacity)`.
//!
//! `capacity` must be a positive integer, the same on every row (a literal, in practice); it is
//! read from a partition's first row.
//!
//! DataFusion evaluates it in its streaming window operator (`BoundedWindowAggExec`): the input
//! is sorted by the partition and order keys (a sort that spills under a memory limit), then each
//! row is looked up once, in order. Memory beyond the sort is one cache per partition.

use std::ops::Range;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Int64Type};
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::function::{PartitionEvaluatorArgs, WindowUDFFieldArgs};
use datafusion::logical_expr::window_state::WindowAggState;
use datafusion::logical_expr::{LimitEffect, PartitionEvaluator, Signature, Volatility, WindowUDFImpl};
use datafusion::physical_expr::PhysicalExpr;

use super::lru_cache_hits::LruSet;

/// Name the window function is registered under.
pub const NAME: &str = "lru_hit";

/// The `lru_hit` window function (see the module docs).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct LruHit {
    signature: Signature,
}

impl LruHit {
    pub fn new() -> Self {
        LruHit { signature: Signature::uniform(2, vec![DataType::Int64], Volatility::Immutable) }
    }
}

impl Default for LruHit {
    fn default() -> Self {
        Self::new()
    }
}

impl WindowUDFImpl for LruHit {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn partition_evaluator(&self, _args: PartitionEvaluatorArgs) -> Result<Box<dyn PartitionEvaluator>> {
        Ok(Box::new(LruHitEvaluator { cache: None }))
    }

    fn field(&self, args: WindowUDFFieldArgs) -> Result<FieldRef> {
        Ok(Arc::new(Field::new(args.name(), DataType::Boolean, true)))
    }

    fn limit_effect(&self, _args: &[Arc<dyn PhysicalExpr>]) -> LimitEffect {
        LimitEffect::None
    }
}

/// One partition's cache, created at its first row.
#[derive(Debug)]
struct LruHitEvaluator {
    cache: Option<LruSet>,
}

impl LruHitEvaluator {
    fn lookup(&mut self, values: &[ArrayRef], row: usize) -> Result<Option<bool>> {
        let hashes = values[0].as_primitive::<Int64Type>();
        let cache = match &mut self.cache {
            Some(c) => c,
            None => {
                let caps = values[1].as_primitive::<Int64Type>();
                let cap = caps.is_valid(row).then(|| caps.value(row));
                match cap {
                    Some(c) if c > 0 => self.cache.insert(LruSet::new(c as usize)),
                    _ => {
                        let got = cap.map_or("null".to_string(), |c| c.to_string());
                        return exec_err!("{NAME}: capacity must be a positive integer, got {got}");
                    }
                }
            }
        };
        Ok(hashes.is_valid(row).then(|| cache.lookup(hashes.value(row))))
    }
}

impl PartitionEvaluator for LruHitEvaluator {
    // Bounded (streaming) execution calls `evaluate` once per row, in window order, with the
    // range `row..row + 1`; earlier rows are never read again, so they may be pruned.
    fn memoize(&mut self, _state: &mut WindowAggState) -> Result<()> {
        Ok(())
    }

    fn is_causal(&self) -> bool {
        true
    }

    fn supports_bounded_execution(&self) -> bool {
        true
    }

    fn evaluate(&mut self, values: &[ArrayRef], range: &Range<usize>) -> Result<ScalarValue> {
        Ok(ScalarValue::Boolean(self.lookup(values, range.start)?))
    }

    fn evaluate_all(&mut self, values: &[ArrayRef], num_rows: usize) -> Result<ArrayRef> {
        let out = (0..num_rows).map(|row| self.lookup(values, row)).collect::<Result<BooleanArray>>()?;
        Ok(Arc::new(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionContext;

    fn ctx() -> SessionContext {
        SessionContext::new_with_state(crate::with_functions(SessionContext::new().state()))
    }

    async fn hits(sql: &str) -> Vec<Option<bool>> {
        let batches = ctx().sql(sql).await.unwrap().collect().await.unwrap();
        batches.iter().flat_map(|b| b.column(0).as_boolean().iter().collect::<Vec<_>>()).collect()
    }

    #[tokio::test]
    async fn hand_computed_hits_per_partition() {
        // Partition a: 1 2 1 3 2 1 with capacity 2 → miss miss hit miss(evicts 2) miss(evicts 1)
        // miss(evicts 3). Partition b: 1 null 1 → miss, not a lookup, hit (its own cache).
        let sql = "select lru_hit(h, 2) over (partition by g order by k) as hit from (values \
                   ('a', 1, 1), ('a', 2, 2), ('a', 3, 1), ('a', 4, 3), ('a', 5, 2), ('a', 6, 1), \
                   ('b', 1, 1), ('b', 2, cast(null as bigint)), ('b', 3, 1)) as v(g, k, h) order by g, k";
        let f = Some(false);
        let t = Some(true);
        assert_eq!(hits(sql).await, vec![f, f, t, f, f, f, f, None, t]);
    }

    #[tokio::test]
    async fn agrees_with_the_list_replay_over_many_batches() {
        // 20,000 lookups over 300 distinct hashes (a working set of 50 that moves every 1,000
        // lookups), capacity 64, across many input batches: the per-row hits sum to what
        // `replay` counts on the same sequence.
        let hs: Vec<i64> = (0..20_000i64).map(|i| i % 50 + 50 * ((i / 1000) % 6)).collect();
        let counts = super::super::lru_cache_hits::replay(hs.iter().copied().map(Some), &[], 64);
        let ctx = ctx();
        let sql = "select sum(case when hit then 1 else 0 end), count(hit) from (\
                   select lru_hit(cast(i % 50 + 50 * ((i / 1000) % 6) as bigint), 64) over (order by i) as hit \
                   from (select unnest(range(0, 20000)) as i))";
        let b = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        let hit = b[0].column(0).as_primitive::<Int64Type>().value(0);
        let lookups = b[0].column(1).as_primitive::<Int64Type>().value(0);
        assert_eq!((lookups, hit), (counts.lookups, counts.hit_blocks));
        // Each 1,000-lookup phase misses its 50 new hashes once (20 × 50 = 1,000 misses, the
        // rest hit); every miss after the first 64 evicts.
        assert_eq!((counts.hit_blocks, counts.evictions), (19_000, 1_000 - 64), "{counts:?}");
    }

    #[tokio::test]
    async fn a_non_positive_capacity_is_an_error() {
        let err = ctx()
            .sql("select lru_hit(h, 0) over (order by h) from (values (1), (2)) as v(h)")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap_err();
        assert!(err.to_string().contains("lru_hit: capacity must be a positive integer, got 0"), "{err}");
    }
}
