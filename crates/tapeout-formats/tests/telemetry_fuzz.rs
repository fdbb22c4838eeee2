//! Coverage-free fuzzing of the telemetry parsers with a fixed budget (stable toolchain): seeded
//! random mutations of hand-written inputs of each format (fuzz/fuzz_targets/telemetry.rs is
//! the coverage-guided twin). Properties: no panic, ever; every Prometheus sample line (not
//! blank, not a comment) is exactly one row or one reject; a Prometheus file cut into two
//! chunks at any line end parses to the same rows as whole; every row's line is a line of the
//! input.
//!
//! `TAPEOUT_FUZZ_ITERS=200000 cargo test -p tapeout-formats --test telemetry_fuzz --release` is
//! the longer run.

use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use tapeout_formats::SourceFormat;
use tapeout_formats::telemetry::{CsvMapping, TelemetryOptions, TelemetryParser, parse_file};

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

const PROMETHEUS: &str = r#"# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).
# TYPE DCGM_FI_DEV_GPU_UTIL gauge
DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-a",device="nvidia0",modelName="NVIDIA H100",Hostname="h",GPU_I_PROFILE="1g.10gb",GPU_I_ID="3",pod="p",namespace="n",container="c"} 87 1715299200000
DCGM_FI_DEV_FB_USED{gpu="1",Hostname="h",err_msg="a\"b\\c\nd"} 40321
DCGM_FI_PROF_PIPE_TENSOR_ACTIVE{gpu="1"} NaN 1715299200000
{"my.dotted", "x.y"="z",} +Inf -3982045
node_network_receive_bytes_total{device="eth0",instance="10.0.0.7:9100",job="node"} 1.5e9
"#;

const RANGE: &str = r#"{"status":"success","data":{"resultType":"matrix","result":[
{"metric":{"__name__":"DCGM_FI_PROF_SM_ACTIVE","gpu":"3","UUID":"GPU-c","Hostname":"b","GPU_I_ID":"1"},
 "values":[[1715299200,"0.5"],[1715299215.5,"NaN"],[1715299230.125,"+Inf"]]},
{"metric":{"__name__":"DCGM_FI_DEV_FB_FREE","gpu":"3"},"values":[[1715299200,"1024"],["x","1"]]},
{"metric":{"gpu":"3"},"value":[1715299200,"1"]}]}}
"#;

const SMI: &str = "\
timestamp, index, name, uuid, pci.bus_id, utilization.gpu [%], memory.used [MiB], power.draw [W], fan.speed [%]
2024/05/10 02:00:00.250, 0, NVIDIA H100 80GB HBM3, GPU-a, 00000000:07:00.0, 87 %, 40321 MiB, 612.34 W, [N/A]
2024/05/10 02:00:01.250, 1, NVIDIA H100 80GB HBM3, GPU-b, 00000000:08:00.0, 0 %, 1 MiB, [Not Supported], 30 %
";

const METRIC_CSV: &str = "ts,machine,gpu,name,val,cluster\n1715299200000,m1,0,DCGM_FI_DEV_GPU_UTIL,55,west\n1715299200500.5,m1,1,x,\"0.3\",\n";

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        if v.is_empty() {
            v.push(b'x');
        }
        let i = rng.below(v.len());
        match rng.below(10) {
            0 => v[i] = rng.next() as u8,
            1 => v[i] ^= 1 << rng.below(8),
            2 => v.truncate(i),
            3 => drop(
                v.splice(i..i, [b'"', b'\\', b'\n', 0xff, b'{', b'}', b',', b'='].into_iter().take(1 + rng.below(8))),
            ),
            4 => {
                let j = (i + rng.below(200)).min(v.len());
                let piece = v[i..j].to_vec();
                let k = rng.below(v.len());
                v.splice(k..k, piece);
            }
            5 => drop(v.drain(i..(i + rng.below(64)).min(v.len()))),
            6 => v.splice(i..i, b"99999999999999999999999".iter().copied()).for_each(drop),
            7 => v.splice(i..i, "\u{feff}\r\n#".bytes()).for_each(drop),
            8 => v.splice(i..i, b" [N/A] ".iter().copied()).for_each(drop),
            _ => v.splice(i..i, b"-1.5e309".iter().copied()).for_each(drop),
        }
    }
    v
}

fn iterations() -> usize {
    std::env::var("TAPEOUT_FUZZ_ITERS").ok().and_then(|v| v.parse().ok()).unwrap_or(3_000)
}

fn max_line(b: &arrow::array::RecordBatch) -> i64 {
    b.column_by_name("line").unwrap().as_primitive::<Int64Type>().values().iter().copied().max().unwrap_or(0)
}

#[test]
fn telemetry_parsers_never_panic_and_account_for_every_sample_line() {
    let mut rng = Rng(0x7E1E_3E7A);
    let mapping =
        CsvMapping::parse("time = \"ts\"\ntime_unit = \"ms\"\nvalue = \"val\"\nmetric = \"name\"\nhost = \"machine\"\ndevice = \"gpu\"\nlabels = [\"cluster\"]")
            .unwrap();
    let opts = TelemetryOptions { mapping: Some(mapping), utc_offset_s: 3600, ..TelemetryOptions::default() };
    let seeds: [(&str, SourceFormat); 4] = [
        (PROMETHEUS, SourceFormat::Prometheus),
        (RANGE, SourceFormat::PrometheusRange),
        (SMI, SourceFormat::NvidiaSmi),
        (METRIC_CSV, SourceFormat::MetricCsv),
    ];
    let (mut parsed, n) = ([0usize; 4], iterations());
    for it in 0..n {
        let k = it % seeds.len();
        let (seed, format) = seeds[k];
        let input = mutate(&mut rng, seed.as_bytes());
        // Detection must not panic either; a metric CSV is only ever forced.
        let detected = tapeout_formats::detect(&input).ok();
        let forced = if format == SourceFormat::MetricCsv || rng.below(2) == 0 { Some(format) } else { detected };
        let Some(f) = forced.filter(|f| f.is_telemetry()) else { continue };
        let Ok(p) = parse_file(&input, Some(f), &opts, "fuzz") else { continue };
        parsed[k] += 1;
        let lines = input.split(|&c| c == b'\n').count() as i64;
        assert!(max_line(&p.batch) <= lines, "iteration {it}: a row beyond the last line");
        assert!(p.rejects.iter().all(|r| r.line as i64 <= lines), "iteration {it}: a reject beyond the last line");
        if f != SourceFormat::Prometheus {
            continue;
        }
        let body = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&input);
        let sample_lines =
            body.split(|&c| c == b'\n').map(|l| l.trim_ascii()).filter(|l| !l.is_empty() && l[0] != b'#').count();
        assert_eq!(p.batch.num_rows() + p.rejects.len(), sample_lines, "iteration {it}");
        // Two chunks, cut at a line end, give the same rows as the whole.
        let ends: Vec<usize> = body.iter().enumerate().filter(|(_, c)| **c == b'\n').map(|(i, _)| i + 1).collect();
        if let Some(&cut) = ends.get(rng.below(ends.len())) {
            let parser = TelemetryParser::new(f, None, &opts).unwrap();
            let (mut a, ra) = parser.parse_chunk(&body[..cut], 1);
            let first = 1 + body[..cut].iter().filter(|&&c| c == b'\n').count() as u64;
            let (b, rb) = parser.parse_chunk(&body[cut..], first);
            a.append(b);
            assert_eq!(ra.len() + rb.len(), p.rejects.len(), "iteration {it}");
            assert_eq!(a.finish("fuzz"), p.batch, "iteration {it}");
        }
    }
    // Enough mutated inputs must still parse for the row building to be exercised (most
    // mutations break a JSON document: 6% of them parse with the default seed).
    for (k, count) in parsed.iter().enumerate() {
        let share = if seeds[k].1 == SourceFormat::PrometheusRange { 25 } else { 5 };
        assert!(*count >= n / seeds.len() / share, "{:?}: only {count} parsed", seeds[k].1);
    }
}
