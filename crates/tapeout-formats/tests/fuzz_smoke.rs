//! Coverage-free fuzzing with a fixed budget (stable toolchain): seeded random mutations of real
//! inputs fed to every parser. The property: no panic, ever; and for request traces every
//! non-blank data record (a line of JSONL; an RFC 4180 record of CSV, counted by the `csv`
//! crate) is either a row or a reject (nothing is silently dropped).
//!
//! CI runs the default budget; `TAPEOUT_FUZZ_ITERS=200000 cargo test -p tapeout-formats --test
//! fuzz_smoke --release` is the longer run (see docs/performance.md).

use tapeout_formats::kineto::{CategoryRules, parse_kineto};
use tapeout_formats::{ParseOptions, parse_all};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const SEEDS: &[&[u8]] = &[
    include_bytes!("../../../sample-traces/requests/AzureLLMInferenceTrace_code.csv"),
    include_bytes!("../../../sample-traces/requests/AzureLLMInferenceTrace_conv_1week.csv"),
    include_bytes!("../../../sample-traces/requests/BurstGPT_1.csv"),
    include_bytes!("../../../sample-traces/requests/BurstGPT_v1.1_sessions.csv"),
    include_bytes!("../../../sample-traces/requests/mooncake_conversation.jsonl"),
];

const KINETO_SEED: &str = r#"{"schemaVersion": 1, "deviceProperties": [{"id": 0, "name": "GPU", "numSms": 108}],
"distributedInfo": {"rank": 1, "world_size": 2}, "baseTimeNanoseconds": 1700000000000000000,
"traceEvents": [
 {"ph": "X", "cat": "user_annotation", "name": "ProfilerStep#1", "pid": 1, "tid": 1, "ts": 100.5, "dur": 50},
 {"ph": "X", "cat": "user_annotation", "name": "ProfilerStep#2", "pid": 1, "tid": 1, "ts": 200.25, "dur": 50},
 {"ph": "X", "cat": "cpu_op", "name": "aten::addmm", "pid": 1, "tid": 1, "ts": 101, "dur": 10,
  "args": {"External id": 7, "Input Dims": [[32], [16, 64], [64, 32], [], []], "Input type": ["float", "float", "float", "Scalar", "Scalar"]}},
 {"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": 1, "tid": 1, "ts": 102, "dur": 2, "args": {"correlation": 9, "External id": 7}},
 {"ph": "X", "cat": "kernel", "name": "ampere_sgemm_64x32", "pid": 0, "tid": 7, "ts": 110.125, "dur": 3.5,
  "args": {"correlation": 9, "External id": 7, "device": 0, "stream": 7, "grid": [4, 1, 1], "block": [128, 1, 1]}},
 {"ph": "X", "cat": "kernel", "name": "ncclDevKernel_AllReduce_Sum_f32_RING_LL(x)", "pid": 0, "tid": 8, "ts": 120, "dur": 30,
  "args": {"device": 0, "stream": 8, "Collective name": "allreduce", "In msg nelems": 1024, "Out msg nelems": 1024, "dtype": "Float", "Group size": 2}},
 {"ph": "X", "cat": "gpu_memcpy", "name": "Memcpy DtoH (Device -> Pinned)", "pid": 0, "tid": 7, "ts": 130, "dur": 1, "args": {"device": 0, "stream": 7, "bytes": 4096}},
 {"ph": "X", "cat": "cuda_sync", "name": "Context Sync", "pid": 0, "tid": -1, "ts": 140, "dur": 2, "args": {"stream": 4294967295, "correlation": 11}},
 {"ph": "i", "cat": "cpu_instant_event", "name": "x", "pid": 1, "tid": 1, "ts": 150},
 {"ph": "M", "name": "process_name", "pid": 1, "args": {"name": "python"}}
]}"#;

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        if v.is_empty() {
            v.push(b'x');
        }
        let i = rng.below(v.len());
        match rng.below(9) {
            0 => v[i] = rng.next() as u8,   // random byte
            1 => v[i] ^= 1 << rng.below(8), // bit flip
            2 => v.truncate(i),             // truncation
            3 => drop(v.splice(i..i, [b',', b'"', b'\n', 0xff, b'-'].into_iter().take(1 + rng.below(5)))),
            4 => {
                // duplicate a slice (lines repeated, out of order)
                let j = (i + rng.below(200)).min(v.len());
                let piece = v[i..j].to_vec();
                let k = rng.below(v.len());
                v.splice(k..k, piece);
            }
            5 => drop(v.drain(i..(i + rng.below(64)).min(v.len()))), // deletion
            6 => v.splice(i..i, b"99999999999999999999999".iter().copied()).for_each(drop),
            7 => v.splice(i..i, "\u{feff}\r\n".bytes()).for_each(drop),
            _ => v.splice(i..i, b"-1.5e309".iter().copied()).for_each(drop),
        }
    }
    v
}

/// Non-blank records of a CSV file per RFC 4180, counted by the `csv` crate (not tapeout's reader).
fn csv_records(input: &[u8]) -> usize {
    let input = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .terminator(csv::Terminator::Any(b'\n'))
        .from_reader(input);
    let mut rec = csv::ByteRecord::new();
    let mut n = 0;
    while r.read_byte_record(&mut rec).unwrap() {
        // The position is where the reader started: before the empty lines it skipped.
        let mut start = rec.position().unwrap().byte() as usize;
        start += input[start..].iter().take_while(|&&c| c == b'\n').count();
        let first_line = input[start..].split(|&c| c == b'\n').next().unwrap();
        n += usize::from(!first_line.trim_ascii().is_empty());
    }
    n
}

fn iterations() -> usize {
    std::env::var("TAPEOUT_FUZZ_ITERS").ok().and_then(|v| v.parse().ok()).unwrap_or(3_000)
}

#[test]
fn request_parsers_never_panic_and_account_for_every_line() {
    let mut rng = Rng(0x7A9E_0017);
    let opts = ParseOptions::default();
    let n = iterations();
    for it in 0..n {
        let seed = SEEDS[it % SEEDS.len()];
        let input = mutate(&mut rng, seed);
        let Ok(parsed) = parse_all(&input, None, &opts, None, "fuzz.csv") else { continue };
        let accounted = parsed.batch.num_rows() + parsed.rejects.len();
        if tapeout_formats::csv::is_csv(parsed.format) {
            // Every record after the header is a row or a reject, exactly.
            assert_eq!(accounted + 1, csv_records(&input), "iteration {it}");
            continue;
        }
        // Every non-blank line is a row or a reject.
        let text_lines = input.split(|&c| c == b'\n').filter(|l| !l.trim_ascii().is_empty()).count();
        let header = usize::from(parsed.format.has_header());
        assert!(
            accounted + header >= text_lines.saturating_sub(1) && accounted + header <= text_lines,
            "iteration {it}: {accounted} rows+rejects for {text_lines} lines"
        );
    }
}

#[test]
fn kineto_parser_never_panics() {
    let mut rng = Rng(0x0C0F_FEE5);
    let rules = CategoryRules::default();
    let n = iterations();
    let mut ok = 0;
    for _ in 0..n {
        let input = mutate(&mut rng, KINETO_SEED.as_bytes());
        let mut rows = 0;
        let r = parse_kineto(&input, "fuzz.json", &rules, 3, &mut |b| {
            rows += match b {
                tapeout_formats::kineto::KinetoBatch::Kernels(b) => b.num_rows(),
                _ => 0,
            };
            Ok::<(), std::convert::Infallible>(())
        });
        if r.is_ok() {
            ok += 1;
            // Never more rows than events that name a category (mutations may duplicate some).
            let cats = input.windows(5).filter(|w| w == b"\"cat\"").count();
            assert!(rows <= cats, "{rows} rows from {cats} events");
        }
    }
    // Most mutations break the JSON (an error, fine); enough must still parse for the row
    // building and linking code to be exercised too (8% with the default seed).
    assert!(ok >= n / 20, "only {ok} of {n} mutated traces parsed");
}
