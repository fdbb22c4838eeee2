//! Mooncake (FAST'25) JSONL traces: one object per line with `timestamp` (ms since the trace
//! start), `input_length`, `output_length` and `hash_ids` (one hash per 512-token prompt block).

use serde::Deserialize;

use crate::ParseOptions;
use crate::rows::{Reject, RequestBatchBuilder, RequestRow};

/// Tokens per Mooncake prompt block.
pub const BLOCK_TOKENS: i64 = 512;

#[derive(Deserialize)]
struct Record {
    timestamp: Option<f64>,
    input_length: Option<i64>,
    output_length: Option<i64>,
    hash_ids: Option<Vec<i64>>,
}

/// Parser for Mooncake JSONL.
#[derive(Debug, Clone)]
pub struct MooncakeParser {
    origin_ns: i64,
}

impl MooncakeParser {
    /// A parser anchoring relative timestamps at `opts.time_origin_ns`.
    pub fn new(opts: &ParseOptions) -> Self {
        MooncakeParser { origin_ns: opts.time_origin_ns }
    }

    /// Parses lines starting at line `first_line`.
    pub fn parse_chunk(&self, chunk: &[u8], first_line: u64, out: &mut RequestBatchBuilder, rejects: &mut Vec<Reject>) {
        for (n, line) in crate::csv::lines(chunk, first_line) {
            if line.trim_ascii().is_empty() {
                continue;
            }
            let rec: Record = match serde_json::from_slice(line) {
                Ok(r) => r,
                Err(e) => {
                    rejects.push(Reject::new(n, None, format!("invalid JSON record: {e}"), line));
                    continue;
                }
            };
            let missing = |f: &str| Reject::new(n, Some(f), format!("missing field `{f}`"), line);
            let negative = |f: &str| Reject::new(n, Some(f), "negative value", line);
            let Some(ts) = rec.timestamp else {
                rejects.push(missing("timestamp"));
                continue;
            };
            if !(0.0..9.0e12).contains(&ts) {
                rejects.push(Reject::new(
                    n,
                    Some("timestamp"),
                    if ts < 0.0 { "negative value" } else { "number out of range" },
                    line,
                ));
                continue;
            }
            let Some(arrival_ns) = self.origin_ns.checked_add((ts * 1e6).round() as i64) else {
                rejects.push(Reject::new(n, Some("timestamp"), "timestamp overflows with --time-origin", line));
                continue;
            };
            let (Some(input), Some(output)) = (rec.input_length, rec.output_length) else {
                rejects.push(missing(if rec.input_length.is_none() { "input_length" } else { "output_length" }));
                continue;
            };
            if input < 0 {
                rejects.push(negative("input_length"));
                continue;
            }
            if output < 0 {
                rejects.push(negative("output_length"));
                continue;
            }
            let row = RequestRow {
                arrival_ns,
                input_tokens: input,
                output_tokens: output,
                line: n as i64,
                ..Default::default()
            };
            out.push(&row, rec.hash_ids.as_deref());
        }
    }
}
