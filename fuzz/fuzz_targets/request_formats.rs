//! Request-trace parsers (format detection, Azure 2023/2024/2025, BurstGPT, Mooncake): never
//! panic, and every non-blank data line is a row or a reject.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tapeout_formats::{ParseOptions, parse_all};

fuzz_target!(|input: &[u8]| {
    let opts = ParseOptions::default();
    let Ok(parsed) = parse_all(input, None, &opts, None, "fuzz.csv") else { return };
    let text_lines = input.split(|&c| c == b'\n').filter(|l| !l.trim_ascii().is_empty()).count();
    let header = usize::from(parsed.format.has_header());
    let accounted = parsed.batch.num_rows() + parsed.rejects.len();
    assert!(
        accounted + header >= text_lines.saturating_sub(1) && accounted + header <= text_lines,
        "{accounted} rows+rejects for {text_lines} lines"
    );
});
