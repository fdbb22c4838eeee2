//! `lru_cache_hits(hashes, tokens, capacity)`: replays prefix-cache lookups against an LRU cache
//! of `capacity` blocks and counts the hits.
//!
//! `hashes` (list of int64) are block hashes in access order; `tokens` (list of int64, same
//! length) the tokens each block holds; `capacity` a positive integer. A lookup that finds its
//! hash is a hit and makes the block most recent; a miss inserts it as most recent and, when
//! the cache then holds more than `capacity` blocks, evicts the least recent one. Returns
//! struct {lookups, hit_blocks, hit_tokens, evictions} (int64s); a null list gives a null.
//! With `capacity` ≥ the number of distinct hashes it equals an infinite cache.
//!
//! Cost: O(n log n) per list (a hash map of last use plus an ordered map of use times). The
//! lists must be built first (`array_agg(… ORDER BY …)`), which holds every lookup of a group in
//! memory: over millions of lookups use the streaming window function
//! [`lru_hit`](super::lru_hit) instead, as the `request_prefix_reuse_lru` job does.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Builder, StructArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Fields, Int64Type};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility};

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct LruCacheHits {
    signature: Signature,
}

impl LruCacheHits {
    pub fn new() -> Self {
        LruCacheHits { signature: Signature::any(3, Volatility::Immutable) }
    }
}

impl Default for LruCacheHits {
    fn default() -> Self {
        Self::new()
    }
}

const FIELDS: [&str; 4] = ["lookups", "hit_blocks", "hit_tokens", "evictions"];

fn fields() -> Fields {
    Fields::from(FIELDS.iter().map(|n| Field::new(*n, DataType::Int64, false)).collect::<Vec<_>>())
}

/// Counts of one replay.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LruCounts {
    pub lookups: i64,
    pub hit_blocks: i64,
    pub hit_tokens: i64,
    pub evictions: i64,
}

/// An LRU set of block hashes: the cache both [`replay`] and the `lru_hit` window function
/// ([`super::lru_hit`]) simulate. A lookup that finds its hash is a hit and makes it most recent;
/// a miss inserts it as most recent and evicts the least recent hash when the set then holds
/// more than `capacity`. O(log capacity) per lookup.
#[derive(Debug)]
pub struct LruSet {
    capacity: usize,
    tick: u64,
    last_use: HashMap<i64, u64>,
    by_use: BTreeMap<u64, i64>,
    /// Hashes evicted so far.
    pub evictions: i64,
}

impl LruSet {
    /// An empty set holding at most `capacity` (≥ 1) hashes.
    pub fn new(capacity: usize) -> Self {
        LruSet { capacity: capacity.max(1), tick: 0, last_use: HashMap::new(), by_use: BTreeMap::new(), evictions: 0 }
    }

    /// Looks `hash` up: `true` on a hit.
    pub fn lookup(&mut self, hash: i64) -> bool {
        let tick = self.tick;
        self.tick += 1;
        let hit = match self.last_use.insert(hash, tick) {
            Some(prev) => {
                self.by_use.remove(&prev);
                true
            }
            None => false,
        };
        self.by_use.insert(tick, hash);
        if self.by_use.len() > self.capacity
            && let Some((_, old)) = self.by_use.pop_first()
        {
            self.last_use.remove(&old);
            self.evictions += 1;
        }
        hit
    }
}

/// Replays `hashes` (with their `tokens`) against an LRU cache of `capacity` blocks.
pub fn replay(hashes: impl Iterator<Item = Option<i64>>, tokens: &[Option<i64>], capacity: usize) -> LruCounts {
    let mut set = LruSet::new(capacity);
    let mut c = LruCounts::default();
    for (i, h) in hashes.enumerate() {
        let Some(h) = h else { continue };
        c.lookups += 1;
        if set.lookup(h) {
            c.hit_blocks += 1;
            c.hit_tokens += tokens.get(i).copied().flatten().unwrap_or(0);
        }
    }
    c.evictions = set.evictions;
    c
}

fn list_values(array: &ArrayRef, row: usize) -> Result<Vec<Option<i64>>> {
    let inner = match array.data_type() {
        DataType::List(_) => array.as_list::<i32>().value(row),
        DataType::LargeList(_) => array.as_list::<i64>().value(row),
        other => return exec_err!("lru_cache_hits: expected a list, got {other}"),
    };
    let ints = cast(&inner, &DataType::Int64)?;
    Ok(ints.as_primitive::<Int64Type>().iter().collect())
}

impl ScalarUDFImpl for LruCacheHits {
    fn name(&self) -> &str {
        "lru_cache_hits"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        for (i, what) in [(0, "hashes"), (1, "tokens")] {
            if !matches!(arg_types[i], DataType::List(_) | DataType::LargeList(_) | DataType::Null) {
                return plan_err!("lru_cache_hits: `{what}` must be a list of integers, got {}", arg_types[i]);
            }
        }
        if !arg_types[2].is_integer() {
            return plan_err!("lru_cache_hits: `capacity` must be an integer, got {}", arg_types[2]);
        }
        Ok(DataType::Struct(fields()))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = args.number_rows;
        let hashes = args.args[0].to_array(n)?;
        let tokens = args.args[1].to_array(n)?;
        let caps = cast(&args.args[2].to_array(n)?, &DataType::Int64)?;
        let caps = caps.as_primitive::<Int64Type>();
        let mut builders: Vec<Int64Builder> = FIELDS.iter().map(|_| Int64Builder::with_capacity(n)).collect();
        let mut nulls = Vec::with_capacity(n);
        for row in 0..n {
            if hashes.is_null(row) || caps.is_null(row) {
                builders.iter_mut().for_each(|b| b.append_value(0));
                nulls.push(false);
                continue;
            }
            let cap = caps.value(row);
            if cap <= 0 {
                return exec_err!("lru_cache_hits: capacity must be positive, got {cap}");
            }
            let hs = list_values(&hashes, row)?;
            let ts = if tokens.is_null(row) { vec![] } else { list_values(&tokens, row)? };
            if !ts.is_empty() && ts.len() != hs.len() {
                return exec_err!("lru_cache_hits: {} hashes but {} token counts", hs.len(), ts.len());
            }
            let c = replay(hs.into_iter(), &ts, cap as usize);
            for (b, v) in builders.iter_mut().zip([c.lookups, c.hit_blocks, c.hit_tokens, c.evictions]) {
                b.append_value(v);
            }
            nulls.push(true);
        }
        let arrays: Vec<ArrayRef> = builders.into_iter().map(|mut b| Arc::new(b.finish()) as ArrayRef).collect();
        let array = StructArray::try_new(fields(), arrays, Some(nulls.into()))?;
        if args.args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_))) {
            return Ok(ColumnarValue::Scalar(ScalarValue::Struct(Arc::new(array))));
        }
        Ok(ColumnarValue::Array(Arc::new(array)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lru_by_hand() {
        // capacity 2: a b a c b a → a miss, b miss, a hit, c miss (evicts b), b miss (evicts a),
        // a miss (evicts c).
        let hs = [1, 2, 1, 3, 2, 1].map(Some);
        let tokens = vec![Some(512), Some(512), Some(512), Some(100), Some(512), Some(512)];
        let c = replay(hs.into_iter(), &tokens, 2);
        assert_eq!(c, LruCounts { lookups: 6, hit_blocks: 1, hit_tokens: 512, evictions: 3 });
        // Large enough: the infinite cache (a hit, b hit, a hit).
        let c = replay(hs.into_iter(), &tokens, 100);
        assert_eq!(c, LruCounts { lookups: 6, hit_blocks: 3, hit_tokens: 1536, evictions: 0 });
    }
}
