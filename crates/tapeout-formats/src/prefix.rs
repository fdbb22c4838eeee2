//! `cached_tokens`: prompt tokens whose 512-token block hash appeared in an earlier record of
//! the same file. It depends on every earlier record, so it is computed here, sequentially, in
//! file order, after chunks were parsed in parallel.

use std::collections::HashSet;
use std::sync::Arc;

use arrow::array::{Array, AsArray, Int64Array, RecordBatch};
use arrow::datatypes::Int64Type;

use crate::mooncake::BLOCK_TOKENS;

/// Remembers every block hash seen so far in one file.
#[derive(Debug, Default)]
pub struct PrefixTracker {
    seen: HashSet<i64>,
}

impl PrefixTracker {
    /// A tracker that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Tokens of block `i` of a prompt of `input_tokens` tokens: min(512, input − 512·i), ≥ 0.
    pub fn block_tokens(input_tokens: i64, i: usize) -> i64 {
        (input_tokens - BLOCK_TOKENS * i as i64).clamp(0, BLOCK_TOKENS)
    }

    /// Fills `cached_tokens` of a `requests` batch whose rows come right after every row this
    /// tracker has seen. Rows without block hashes keep a null.
    pub fn apply(&mut self, batch: &RecordBatch) -> RecordBatch {
        let schema = batch.schema();
        let (Ok(hashes_idx), Ok(input_idx), Ok(cached_idx)) =
            (schema.index_of("block_hashes"), schema.index_of("input_tokens"), schema.index_of("cached_tokens"))
        else {
            return batch.clone();
        };
        let hashes = batch.column(hashes_idx).as_list::<i32>();
        if hashes.null_count() == hashes.len() {
            return batch.clone();
        }
        let input = batch.column(input_idx).as_primitive::<Int64Type>();
        let mut cached = Vec::with_capacity(batch.num_rows());
        for row in 0..batch.num_rows() {
            if hashes.is_null(row) {
                cached.push(None);
                continue;
            }
            let list = hashes.value(row);
            let list = list.as_primitive::<Int64Type>();
            let mut c = 0;
            for (i, h) in list.iter().enumerate() {
                if let Some(h) = h
                    && self.seen.contains(&h)
                {
                    c += Self::block_tokens(input.value(row), i);
                }
            }
            self.seen.extend(list.iter().flatten());
            cached.push(Some(c));
        }
        let mut columns = batch.columns().to_vec();
        columns[cached_idx] = Arc::new(Int64Array::from(cached));
        RecordBatch::try_new(schema, columns).expect("same schema")
    }
}
