//! Device telemetry parsers, sans-I/O: bytes in, `device_samples` rows
//! ([`SampleBatchBuilder`] → `RecordBatch`) out, with every record that could not be parsed
//! returned as a [`Reject`] (line, field, reason, raw text). pipelines/telemetry/README.md
//! documents each format's grammar, the units, the label mapping and the limits, with sources.
//!
//! - [`SourceFormat::Prometheus`] ([`prometheus`]): the Prometheus text exposition format as
//!   dcgm-exporter and node exporters serve it: one scrape per file or many concatenated.
//! - [`SourceFormat::PrometheusRange`] ([`query_range`]): `/api/v1/query_range` (and
//!   `/api/v1/query`) JSON results, one document per file or several concatenated; parsed whole
//!   by [`parse_query_range`].
//! - [`SourceFormat::NvidiaSmi`] ([`nvidia_smi`]): `nvidia-smi --query-gpu=… --format=csv` logs.
//! - [`SourceFormat::MetricCsv`] ([`metric_csv`]): any CSV described by a [`CsvMapping`].
//!
//! The line formats are parsed by a [`TelemetryParser`] built from the file's header line (see
//! [`SourceFormat::split_header`]); [`TelemetryParser::parse_chunk`] parses any run of whole
//! lines independently of the others, so chunks can be parsed in parallel. [`parse_file`] does
//! everything for a whole file held in memory (tests, fuzzing, small inputs).
//!
//! Metric names, units and kinds come from a [`MetricMap`] ([`MetricMap::builtin`] is
//! `pipelines/telemetry/metrics.toml`).

pub mod builder;
pub mod metric_csv;
pub mod metrics;
pub mod nvidia_smi;
pub mod prometheus;
pub mod query_range;

use std::sync::Arc;

use arrow::array::RecordBatch;

pub use builder::{SampleBatchBuilder, SampleContext};
pub use metric_csv::{CsvMapping, CsvTimeUnit};
pub use metrics::{MetricDef, MetricKind, MetricMap};
pub use query_range::parse_query_range;

use crate::rows::Reject;
use crate::{FormatError, SourceFormat};

/// Options that shape parsed samples.
#[derive(Debug, Clone)]
pub struct TelemetryOptions {
    /// Time of samples without a timestamp (Prometheus text without timestamps, nvidia-smi logs
    /// without a `timestamp` column), ns since the Unix epoch: `--time` if given, else the file's
    /// modification time (the caller decides).
    pub default_time_ns: i64,
    /// `--timezone` as a fixed offset, seconds east of UTC, for zone-less date-times (nvidia-smi
    /// timestamps, a metric CSV's `rfc3339` times without an offset).
    pub utc_offset_s: i32,
    /// Source metric → canonical metric, unit and kind.
    pub metrics: Arc<MetricMap>,
    /// The layout of a metric CSV (required for [`SourceFormat::MetricCsv`]).
    pub mapping: Option<CsvMapping>,
    /// The label that names the workload (default `workload`).
    pub workload_label: String,
}

impl Default for TelemetryOptions {
    fn default() -> Self {
        TelemetryOptions {
            default_time_ns: 0,
            utc_offset_s: 0,
            metrics: MetricMap::builtin(),
            mapping: None,
            workload_label: "workload".into(),
        }
    }
}

/// A parser for one line-based telemetry file, ready to parse chunks of whole lines in any order
/// or in parallel.
#[derive(Debug, Clone)]
pub enum TelemetryParser {
    Prometheus(prometheus::PrometheusParser),
    NvidiaSmi(nvidia_smi::NvidiaSmiParser),
    /// Boxed: the mapping's columns make it the largest parser by far.
    MetricCsv(Box<metric_csv::MetricCsvParser>),
}

impl TelemetryParser {
    /// Builds a parser; `header` is the file's header line (see [`SourceFormat::split_header`])
    /// for formats that have one (nvidia-smi, metric CSV). Query-range JSON is one document, not
    /// lines: [`parse_query_range`] parses it, and this returns [`FormatError::BadDocument`].
    pub fn new(format: SourceFormat, header: Option<&[u8]>, opts: &TelemetryOptions) -> Result<Self, FormatError> {
        let header = || header.map(crate::strip_bom).ok_or(FormatError::Empty);
        Ok(match format {
            SourceFormat::Prometheus => TelemetryParser::Prometheus(prometheus::PrometheusParser::new(opts)),
            SourceFormat::NvidiaSmi => {
                TelemetryParser::NvidiaSmi(nvidia_smi::NvidiaSmiParser::from_header(header()?, opts)?)
            }
            SourceFormat::MetricCsv => {
                let Some(mapping) = &opts.mapping else {
                    return Err(FormatError::BadConfig {
                        what: "metric_csv".into(),
                        message: "a metric CSV needs a mapping (`tapeout ingest --mapping FILE`, or `mapping` in the pipeline's source entry)".into(),
                    });
                };
                TelemetryParser::MetricCsv(Box::new(metric_csv::MetricCsvParser::from_header(
                    header()?,
                    mapping,
                    opts,
                )?))
            }
            SourceFormat::PrometheusRange => {
                return Err(FormatError::BadDocument {
                    format,
                    message: "a query_range result is one JSON document, parsed whole by parse_query_range, not in line chunks".into(),
                });
            }
            SourceFormat::AzureLlm | SourceFormat::BurstGpt | SourceFormat::Mooncake | SourceFormat::Kineto => {
                return Err(FormatError::NotTelemetry { format });
            }
        })
    }

    /// Any run of whole lines (Prometheus text, nvidia-smi, metric CSV); `first_line` is the
    /// 1-based line of chunk's first line.
    pub fn parse_chunk(&self, chunk: &[u8], first_line: u64) -> (SampleBatchBuilder, Vec<Reject>) {
        let mut out = SampleBatchBuilder::new();
        let mut rejects = Vec::new();
        match self {
            TelemetryParser::Prometheus(p) => p.parse_chunk(chunk, first_line, &mut out, &mut rejects),
            TelemetryParser::NvidiaSmi(p) => p.parse_chunk(chunk, first_line, &mut out, &mut rejects),
            TelemetryParser::MetricCsv(p) => p.parse_chunk(chunk, first_line, &mut out, &mut rejects),
        }
        (out, rejects)
    }
}

/// Result of parsing a whole telemetry file in memory.
#[derive(Debug)]
pub struct ParsedTelemetry {
    pub format: SourceFormat,
    pub batch: RecordBatch,
    pub rejects: Vec<Reject>,
}

/// Detects (unless `format` is given) and parses a whole (decompressed) telemetry file held in
/// memory; `file` fills the `file` column.
pub fn parse_file(
    bytes: &[u8],
    format: Option<SourceFormat>,
    opts: &TelemetryOptions,
    file: &str,
) -> Result<ParsedTelemetry, FormatError> {
    let format = match format {
        Some(f) => f,
        None => crate::detect(bytes)?,
    };
    if !format.is_telemetry() {
        return Err(FormatError::NotTelemetry { format });
    }
    let (rows, rejects) = if format == SourceFormat::PrometheusRange {
        parse_query_range(bytes, opts)?
    } else {
        let start = format.split_header(bytes, 1)?;
        TelemetryParser::new(format, start.header, opts)?.parse_chunk(start.body, start.body_first_line)
    };
    Ok(ParsedTelemetry { format, batch: rows.finish(file), rejects })
}

// ---- Shared by the parsers ------------------------------------------------------------------

/// Parses a sample value: a float as Go's `strconv.ParseFloat` writes and reads them (what the
/// Prometheus formats require), `NaN`, `+Inf`, `-Inf` (any case, `Infinity` too) included.
/// Hexadecimal floats and `_` digit separators, which Go also reads, are refused.
pub(crate) fn parse_value(s: &str) -> Option<f64> {
    if s.is_empty() || s.contains('_') {
        return None;
    }
    s.parse::<f64>().ok()
}

/// Whether an nvidia-smi or CSV cell says "no value": `[N/A]`, `N/A`, `[Not Supported]`,
/// `[Unknown Error]`, `[Insufficient Permissions]` and any other bracketed text (nvidia-smi
/// brackets every such marker), or an empty cell.
pub(crate) fn is_no_value(cell: &str) -> bool {
    let c = cell.trim();
    c.is_empty() || c.eq_ignore_ascii_case("N/A") || (c.starts_with('[') && c.ends_with(']'))
}

/// Parses a date-time `YYYY-MM-DD[ T]HH:MM:SS[.f]` or nvidia-smi's `YYYY/MM/DD HH:MM:SS.mmm`,
/// with an optional `Z` / `±HH:MM` offset; without one it is local time at `utc_offset_s`
/// seconds east of UTC. Returns ns since the epoch, UTC.
pub(crate) fn parse_local_datetime(s: &str, utc_offset_s: i32) -> Option<i64> {
    let b = s.trim().as_bytes();
    if b.len() < 19 {
        return None;
    }
    let mut norm = b.to_vec();
    if norm[4] == b'/' && norm[7] == b'/' {
        norm[4] = b'-';
        norm[7] = b'-';
    }
    let ns = crate::time::parse_datetime_ns(&norm)?;
    let mut rest = &norm[19..];
    if let Some(frac) = rest.strip_prefix(b".") {
        rest = &frac[frac.iter().take_while(|c| c.is_ascii_digit()).count()..];
    }
    if rest.is_empty() { ns.checked_sub(i64::from(utc_offset_s) * 1_000_000_000) } else { Some(ns) }
}

/// Parses a decimal number `[+-]digits[.digits]` (or with an exponent, through f64) of units of
/// `unit_ns` nanoseconds, to ns, exactly when no exponent is used.
pub(crate) fn parse_decimal_ns(s: &str, unit_ns: i64) -> Option<i64> {
    let s = s.trim();
    if s.contains(['e', 'E']) {
        let v = s.parse::<f64>().ok()? * unit_ns as f64;
        return (v.is_finite() && v.abs() < 9.2e18).then_some(v.round() as i64);
    }
    let (neg, digits) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty() && frac.is_empty() || !int.bytes().chain(frac.bytes()).all(|c| c.is_ascii_digit()) {
        return None;
    }
    let int_part: i64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut ns = int_part.checked_mul(unit_ns)?;
    // The fraction, digit by digit, of a unit of `unit_ns` (digits past 1 ns are dropped).
    let mut scale = unit_ns;
    for d in frac.bytes() {
        scale /= 10;
        if scale == 0 {
            break;
        }
        ns = ns.checked_add(i64::from(d - b'0') * scale)?;
    }
    Some(if neg { -ns } else { ns })
}

/// Where each label goes: [`LabelRoute::route`].
pub(crate) struct LabelRoute<'o> {
    workload_label: &'o str,
}

impl<'o> LabelRoute<'o> {
    pub fn new(workload_label: &'o str) -> Self {
        LabelRoute { workload_label }
    }

    /// Sorts `labels` into a [`SampleContext`], the dcgm-exporter way:
    /// `gpu` → device (when an integer; otherwise it stays a label), `UUID` (or `uuid`) →
    /// device_uuid, `modelName` → device_model, `Hostname` → host (else `instance` without its
    /// `:port`, `instance` staying a label too), `GPU_I_ID` with `GPU_I_PROFILE` → mig_instance
    /// `<id>:<profile>` (`<id>` without a profile), `pod` / `namespace` / `job` and the workload
    /// label → their columns; every other label → the labels map, sorted by key. A label with an
    /// empty value is no label (Prometheus semantics). Errors name a label given twice.
    pub fn route(&self, mut labels: Vec<(String, String)>) -> Result<SampleContext, String> {
        labels.retain(|(_, v)| !v.is_empty());
        labels.sort_by(|a, b| a.0.cmp(&b.0));
        if let Some(w) = labels.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(format!("label `{}` appears twice", w[0].0));
        }
        let mut ctx = SampleContext::default();
        let (mut gpu_i_id, mut gpu_i_profile, mut instance) = (None, None, None);
        let mut rest = Vec::with_capacity(labels.len());
        for (k, v) in labels {
            if k == self.workload_label {
                ctx.workload = Some(v.clone());
            }
            match k.as_str() {
                "gpu" => match v.trim().parse::<i32>() {
                    Ok(d) => ctx.device = Some(d),
                    Err(_) => rest.push((k, v)),
                },
                "UUID" | "uuid" if ctx.device_uuid.is_none() => ctx.device_uuid = Some(v),
                "modelName" => ctx.device_model = Some(v),
                "Hostname" => ctx.host = Some(v),
                "GPU_I_ID" => gpu_i_id = Some(v),
                "GPU_I_PROFILE" => gpu_i_profile = Some(v),
                "pod" => ctx.pod = Some(v),
                "namespace" => ctx.namespace = Some(v),
                "job" => ctx.job = Some(v),
                _ if k == self.workload_label => {}
                "instance" => {
                    instance = Some(v.clone());
                    rest.push((k, v));
                }
                _ => rest.push((k, v)),
            }
        }
        if ctx.host.is_none() {
            ctx.host = instance.map(|i| strip_port(&i).to_string());
        }
        ctx.mig_instance = match (gpu_i_id, gpu_i_profile) {
            (Some(id), Some(p)) => Some(format!("{id}:{p}")),
            (Some(id), None) => Some(id),
            (None, Some(p)) => {
                rest.push(("GPU_I_PROFILE".into(), p));
                rest.sort_by(|a, b| a.0.cmp(&b.0));
                None
            }
            (None, None) => None,
        };
        ctx.labels = rest;
        Ok(ctx)
    }
}

/// `host:port` → `host` (`[v6]:port` → `v6`); anything else as is.
fn strip_port(instance: &str) -> &str {
    if let Some(rest) = instance.strip_prefix('[')
        && let Some((host, port)) = rest.split_once("]:")
        && !port.is_empty()
        && port.bytes().all(|c| c.is_ascii_digit())
    {
        return host;
    }
    match instance.rsplit_once(':') {
        Some((host, port))
            if !host.is_empty()
                && !host.contains(':')
                && !port.is_empty()
                && port.bytes().all(|c| c.is_ascii_digit()) =>
        {
            host
        }
        _ => instance,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_follow_go_parse_float() {
        assert_eq!(parse_value("1.5e3"), Some(1500.0));
        assert_eq!(parse_value("+Inf"), Some(f64::INFINITY));
        assert_eq!(parse_value("-Inf"), Some(f64::NEG_INFINITY));
        assert!(parse_value("NaN").unwrap().is_nan());
        assert!(parse_value("nan").unwrap().is_nan());
        assert_eq!(parse_value("1_000"), None);
        assert_eq!(parse_value(""), None);
        assert_eq!(parse_value("0x1p-2"), None);
    }

    #[test]
    fn decimal_times_are_exact() {
        assert_eq!(parse_decimal_ns("1435781430.781", 1_000_000_000), Some(1_435_781_430_781_000_000));
        assert_eq!(parse_decimal_ns("1700000000123", 1_000_000), Some(1_700_000_000_123_000_000));
        assert_eq!(parse_decimal_ns("-1.5", 1_000_000_000), Some(-1_500_000_000));
        assert_eq!(parse_decimal_ns(".25", 1_000), Some(250));
        assert_eq!(parse_decimal_ns("1.7e9", 1_000_000_000), Some(1_700_000_000_000_000_000));
        assert_eq!(parse_decimal_ns("1.2.3", 1), None);
        assert_eq!(parse_decimal_ns(".", 1), None);
        assert_eq!(parse_decimal_ns("99999999999999999999", 1), None);
        assert_eq!(parse_decimal_ns("9999999999999", 1_000_000_000), None);
    }

    #[test]
    fn local_datetimes() {
        // 2018-10-10T13:06:03.419 at UTC+02:00 = 11:06:03.419Z.
        let utc = crate::time::parse_datetime_ns(b"2018-10-10T11:06:03.419Z").unwrap();
        assert_eq!(parse_local_datetime("2018/10/10 13:06:03.419", 7200), Some(utc));
        assert_eq!(parse_local_datetime("2018-10-10 13:06:03.419+02:00", -18000), Some(utc));
        assert_eq!(parse_local_datetime("2018/10/10 11:06:03.419", 0), Some(utc));
        assert_eq!(parse_local_datetime("2018/13/10 11:06:03.419", 0), None);
        assert_eq!(parse_local_datetime("yesterday", 0), None);
    }

    #[test]
    fn ports_are_stripped_from_instances() {
        assert_eq!(strip_port("10.0.0.7:9400"), "10.0.0.7");
        assert_eq!(strip_port("node-3:9100"), "node-3");
        assert_eq!(strip_port("[fe80::1]:9400"), "fe80::1");
        assert_eq!(strip_port("fe80::1"), "fe80::1");
        assert_eq!(strip_port("node-3"), "node-3");
    }
}
