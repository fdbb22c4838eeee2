//! Device telemetry parsers (detection, Prometheus text, query_range JSON, nvidia-smi CSV, a
//! mapped metric CSV): never panic; every Prometheus sample line (not blank, not a comment) is a
//! row or a reject; every reject's line is a line of the input.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tapeout_formats::SourceFormat;
use tapeout_formats::telemetry::{CsvMapping, TelemetryOptions, parse_file};

fn opts() -> &'static TelemetryOptions {
    static OPTS: OnceLock<TelemetryOptions> = OnceLock::new();
    OPTS.get_or_init(|| {
        let mapping = CsvMapping::parse(
            "time = \"ts\"\ntime_unit = \"ms\"\nvalue = \"val\"\nmetric = \"name\"\nhost = \"machine\"\ndevice = \"gpu\"\nlabels = [\"cluster\"]",
        )
        .expect("valid mapping");
        TelemetryOptions { mapping: Some(mapping), utc_offset_s: 3600, ..TelemetryOptions::default() }
    })
}

fuzz_target!(|input: &[u8]| {
    // The first byte picks a forced format (or detection); the rest is the file.
    let Some((&pick, input)) = input.split_first() else { return };
    let format = match pick % 5 {
        0 => match tapeout_formats::detect(input) {
            Ok(f) if f.is_telemetry() => f,
            _ => return,
        },
        1 => SourceFormat::Prometheus,
        2 => SourceFormat::PrometheusRange,
        3 => SourceFormat::NvidiaSmi,
        _ => SourceFormat::MetricCsv,
    };
    let Ok(p) = parse_file(input, Some(format), opts(), "fuzz") else { return };
    let lines = input.split(|&c| c == b'\n').count() as u64;
    assert!(p.rejects.iter().all(|r| r.line <= lines), "a reject beyond the last line");
    if format == SourceFormat::Prometheus {
        let body = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
        let sample_lines =
            body.split(|&c| c == b'\n').map(|l| l.trim_ascii()).filter(|l| !l.is_empty() && l[0] != b'#').count();
        assert_eq!(p.batch.num_rows() + p.rejects.len(), sample_lines, "a sample line neither a row nor a reject");
    }
});
