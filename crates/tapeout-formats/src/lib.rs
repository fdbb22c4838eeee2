//! Sans-I/O parsers for the traces tapeout reads: bytes in, Arrow `RecordBatch`es out, with every
//! record that could not be parsed returned as a [`Reject`] (line, field, reason, raw text)
//! instead of an error.
//! - Request-level serving traces (Azure LLM inference CSV, BurstGPT CSV, Mooncake JSONL) → the
//!   canonical `requests` schema.
//! - PyTorch profiler (Kineto) traces (`.json`, `.json.gz`: one Chrome trace JSON document) →
//!   `kernels`, `ops` and `devices` ([`kineto`], a two-pass streaming parser).
//! - Device telemetry (Prometheus text scrapes from dcgm-exporter / node exporters, Prometheus
//!   query_range JSON, nvidia-smi `--query-gpu` CSV logs, metric CSVs described by a mapping) →
//!   `device_samples` ([`telemetry`]).
//!
//! A tour:
//! - [`detect`] looks at the first bytes of a (decompressed) file and names its [`SourceFormat`],
//!   Kineto traces included.
//! - [`SourceFormat::split_header`] is the one header rule of the request formats (as
//!   arrow-csv's `Format`): a byte-order mark is skipped, line 1 (the first non-blank line) is
//!   the CSV header, the records follow it.
//! - [`RequestParser::new`] reads that header (formats are matched by column *name*), then
//!   [`RequestParser::parse_chunk`] parses any run of whole lines independently of the others, so
//!   the lake's workers can parse one file's chunks in parallel.
//! - [`PrefixTracker`] fills `cached_tokens`, which depends on every earlier record of the file,
//!   sequentially in file order.
//! - [`parse_all`] does all of this for a whole request file in memory (tests, fuzzing, small
//!   inputs); [`kineto::parse_kineto`] is its counterpart for a Kineto trace.
//! - [`default_workload`] names the default `workload` of a file of any format.
//! - [`telemetry::TelemetryParser`] (built from the header [`SourceFormat::split_header`] finds)
//!   parses device telemetry in line chunks the same way, [`telemetry::parse_query_range`] a
//!   query_range JSON document whole, into `device_samples` rows.
//!
//! Nothing here opens files or spawns threads; decompression and chunking live in `tapeout-lake`.

pub mod azure;
pub mod burstgpt;
pub mod csv;
pub mod kineto;
pub mod mooncake;
pub mod prefix;
pub mod rows;
pub mod synth;
pub mod telemetry;
pub mod time;

use std::path::Path;

use arrow::array::RecordBatch;

pub use prefix::PrefixTracker;
pub use rows::{Reject, RequestBatchBuilder, RequestRow};

/// A trace format tapeout can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceFormat {
    /// Azure LLM inference trace CSV (2023, 2024, 2025 multimodal).
    AzureLlm,
    /// BurstGPT CSV.
    BurstGpt,
    /// Mooncake JSONL.
    Mooncake,
    /// PyTorch profiler (Kineto) trace: one Chrome trace JSON document (see [`kineto`]).
    Kineto,
    /// Prometheus text exposition (dcgm-exporter / node-exporter scrapes; see
    /// [`telemetry::prometheus`]).
    Prometheus,
    /// Prometheus `query_range` JSON result (see [`telemetry::query_range`]).
    PrometheusRange,
    /// `nvidia-smi --query-gpu=… --format=csv` log (see [`telemetry::nvidia_smi`]).
    NvidiaSmi,
    /// A metric CSV described by a mapping (see [`telemetry::metric_csv`]); never detected,
    /// only forced.
    MetricCsv,
}

impl SourceFormat {
    /// Every format, in documentation order: the formats `--format` (and a pipeline's
    /// `format =`) can force instead of detection by content.
    pub const ALL: [SourceFormat; 8] = [
        SourceFormat::AzureLlm,
        SourceFormat::BurstGpt,
        SourceFormat::Mooncake,
        SourceFormat::Kineto,
        SourceFormat::Prometheus,
        SourceFormat::PrometheusRange,
        SourceFormat::NvidiaSmi,
        SourceFormat::MetricCsv,
    ];

    /// The format id stored in the manifest and the `source` column (`kineto` for Kineto traces).
    pub const fn id(self) -> &'static str {
        match self {
            SourceFormat::AzureLlm => "azure_llm",
            SourceFormat::BurstGpt => "burstgpt",
            SourceFormat::Mooncake => "mooncake",
            SourceFormat::Kineto => "kineto",
            SourceFormat::Prometheus => "prometheus",
            SourceFormat::PrometheusRange => "prometheus_range",
            SourceFormat::NvidiaSmi => "nvidia_smi",
            SourceFormat::MetricCsv => "metric_csv",
        }
    }

    /// Looks up a format `--format` accepts (one of [`SourceFormat::ALL`]) by id.
    pub fn from_id(id: &str) -> Option<SourceFormat> {
        Self::ALL.into_iter().find(|f| f.id() == id)
    }

    /// Whether files of this format are request traces, read line by line by [`RequestParser`]
    /// (otherwise a Kineto trace, read whole by [`kineto::parse_kineto`], or device telemetry:
    /// [`SourceFormat::is_telemetry`]).
    pub fn is_request(self) -> bool {
        matches!(self, SourceFormat::AzureLlm | SourceFormat::BurstGpt | SourceFormat::Mooncake)
    }

    /// Whether files of this format are device telemetry (`device_samples`): read line by line
    /// by [`telemetry::TelemetryParser`], except query_range JSON, read whole by
    /// [`telemetry::parse_query_range`].
    pub fn is_telemetry(self) -> bool {
        matches!(
            self,
            SourceFormat::Prometheus
                | SourceFormat::PrometheusRange
                | SourceFormat::NvidiaSmi
                | SourceFormat::MetricCsv
        )
    }

    /// Whether line 1 is a header rather than a record.
    pub fn has_header(self) -> bool {
        matches!(
            self,
            SourceFormat::AzureLlm | SourceFormat::BurstGpt | SourceFormat::NvidiaSmi | SourceFormat::MetricCsv
        )
    }

    /// The header rule of the request formats, applied to the first bytes of a decompressed
    /// file (a whole number of lines, whose first is line `first_line`): a UTF-8 byte-order mark
    /// is skipped; for a format with a header, the first non-blank line is the header (blank
    /// lines before it are skipped, and counted) and the records start on the next line; for
    /// one without, the records start at once. [`FormatError::Empty`] when a header is due and
    /// every line is blank.
    pub fn split_header(self, head: &[u8], first_line: u64) -> Result<FileStart<'_>, FormatError> {
        let head = strip_bom(head);
        if !self.has_header() {
            return Ok(FileStart { header: None, body: head, body_first_line: first_line });
        }
        let (mut start, mut header_line) = (0, first_line);
        loop {
            let end = memchr::memchr(b'\n', &head[start..]).map_or(head.len(), |i| start + i);
            let line = &head[start..end];
            if !line.trim_ascii().is_empty() {
                return Ok(FileStart {
                    header: Some(line.strip_suffix(b"\r").unwrap_or(line)),
                    body: head.get(end + 1..).unwrap_or_default(),
                    body_first_line: header_line + 1,
                });
            }
            if end >= head.len() {
                return Err(FormatError::Empty);
            }
            start = end + 1;
            header_line += 1;
        }
    }
}

/// The beginning of a request file cut by [`SourceFormat::split_header`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStart<'a> {
    /// The header line (without its line end), for formats that have one.
    pub header: Option<&'a [u8]>,
    /// The records: every line after the header.
    pub body: &'a [u8],
    /// The 1-based line number of `body`'s first line.
    pub body_first_line: u64,
}

impl std::fmt::Display for SourceFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id())
    }
}

/// Why a whole file cannot be parsed (one bad record is a [`Reject`], not this).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FormatError {
    /// The file holds no bytes (or only a byte-order mark and white space).
    #[error("file is empty")]
    Empty,
    /// The content matches no known format.
    #[error(
        "unrecognized format: line 1 is `{line1}`; expected an Azure LLM CSV header (TIMESTAMP,ContextTokens,GeneratedTokens), a BurstGPT CSV header (Timestamp,Model,Request tokens,Response tokens,...), Mooncake JSONL ({{\"timestamp\":…,\"input_length\":…}}), Prometheus text (# HELP / # TYPE / name{{labels}} value), a Prometheus query_range JSON result ({{\"status\":\"success\",\"data\":{{\"resultType\":\"matrix\",…}}}}) or an nvidia-smi --query-gpu CSV header (timestamp, index, utilization.gpu [%], ...)"
    )]
    Unrecognized { line1: String },
    /// A format the request parsers do not read (a Kineto trace: see [`kineto::parse_kineto`];
    /// device telemetry: see [`telemetry`]).
    #[error("this is a {format} trace, not a request trace; the request parsers do not read it")]
    NotRequests { format: SourceFormat },
    /// A format the telemetry parsers do not read (a request or Kineto trace).
    #[error("this is a {format} trace, not device telemetry; the telemetry parsers do not read it")]
    NotTelemetry { format: SourceFormat },
    /// A whole document cannot be read (a query_range result with `status: error`, not JSON, …).
    #[error("{format}: {message}")]
    BadDocument { format: SourceFormat, message: String },
    /// A metric map or a metric CSV mapping is invalid or missing.
    #[error("{what}: {message}")]
    BadConfig { what: String, message: String },
    /// A header lacks a column the format needs.
    #[error("line 1: {format} header has no `{column}` column (header: `{header}`)")]
    MissingColumn { format: SourceFormat, column: String, header: String },
    /// A header is not UTF-8 or names a column twice.
    #[error("line 1: bad header: {message}")]
    BadHeader { message: String },
}

/// Options that shape parsed values.
#[derive(Debug, Clone, Default)]
pub struct ParseOptions {
    /// Where relative timestamps (BurstGPT seconds, Mooncake ms) start, ns since the Unix epoch.
    pub time_origin_ns: i64,
}

/// Removes a UTF-8 byte-order mark.
pub fn strip_bom(b: &[u8]) -> &[u8] {
    b.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(b)
}

fn first_line(b: &[u8]) -> &[u8] {
    let line = memchr::memchr(b'\n', b).map_or(b, |i| &b[..i]);
    line.strip_suffix(b"\r").unwrap_or(line)
}

pub(crate) fn header_names(header: &[u8]) -> Result<Vec<String>, FormatError> {
    let mut fields = Vec::new();
    if !csv::split_fields(header, &mut fields) {
        return Err(FormatError::BadHeader { message: "unterminated quote".into() });
    }
    let names: Vec<String> = fields
        .iter()
        .map(|f| std::str::from_utf8(f).map(|s| s.trim().to_string()))
        .collect::<Result<_, _>>()
        .map_err(|_| FormatError::BadHeader { message: "not UTF-8".into() })?;
    for (i, n) in names.iter().enumerate() {
        if names[..i].iter().any(|m| m.eq_ignore_ascii_case(n)) {
            return Err(FormatError::BadHeader { message: format!("column `{n}` appears twice") });
        }
    }
    Ok(names)
}

pub(crate) fn header_index(
    names: &[String],
    want: &str,
    format: SourceFormat,
    header: &[u8],
) -> Result<usize, FormatError> {
    names.iter().position(|n| n.eq_ignore_ascii_case(want)).ok_or_else(|| FormatError::MissingColumn {
        format,
        column: want.to_string(),
        header: String::from_utf8_lossy(header).into_owned(),
    })
}

/// Names the format of a file from its first bytes (decompressed; a few KiB are plenty, and a
/// Kineto trace is recognized by `"traceEvents"` or `"schemaVersion"` in its first 64 KiB, a
/// query_range result by `"resultType": "matrix"` there). A metric CSV
/// ([`SourceFormat::MetricCsv`]) is never detected: it is forced, with its mapping.
pub fn detect(head: &[u8]) -> Result<SourceFormat, FormatError> {
    let head = strip_bom(head);
    let start = head.iter().position(|c| !c.is_ascii_whitespace()).ok_or(FormatError::Empty)?;
    let body = &head[start..];
    let line1 = first_line(body);
    if body[0] == b'{' || body[0] == b'[' {
        let window = &body[..body.len().min(64 * 1024)];
        if memchr::memmem::find(window, b"\"traceEvents\"").is_some()
            || memchr::memmem::find(window, b"\"schemaVersion\"").is_some()
        {
            return Ok(SourceFormat::Kineto);
        }
        if memchr::memmem::find(line1, b"\"input_length\"").is_some() {
            return Ok(SourceFormat::Mooncake);
        }
        if body[0] == b'{' && telemetry::query_range::looks_like_query_result(window) {
            return Ok(SourceFormat::PrometheusRange);
        }
    } else if let Ok(names) = header_names(line1) {
        let has = |n: &str| names.iter().any(|m| m.eq_ignore_ascii_case(n));
        if has("TIMESTAMP") && has("ContextTokens") && has("GeneratedTokens") {
            return Ok(SourceFormat::AzureLlm);
        }
        if has("Timestamp") && has("Request tokens") && has("Response tokens") {
            return Ok(SourceFormat::BurstGpt);
        }
        if telemetry::nvidia_smi::looks_like_header(&names) {
            return Ok(SourceFormat::NvidiaSmi);
        }
    }
    // Prometheus text: `# HELP` / `# TYPE` lines, or a first sample line (`{"quoted.name"} 1`
    // starts with `{` too). A metric CSV is never detected: it needs a mapping.
    if telemetry::prometheus::looks_like_exposition(&body[..body.len().min(64 * 1024)]) {
        return Ok(SourceFormat::Prometheus);
    }
    let shown = String::from_utf8_lossy(&line1[..line1.len().min(200)]).into_owned();
    Err(FormatError::Unrecognized { line1: shown })
}

/// A parser for one file, ready to parse chunks of whole lines in any order or in parallel.
#[derive(Debug, Clone)]
pub enum RequestParser {
    Azure(azure::AzureParser),
    BurstGpt(burstgpt::BurstGptParser),
    Mooncake(mooncake::MooncakeParser),
}

impl RequestParser {
    /// Builds a parser; `header` is the file's header line (see [`SourceFormat::split_header`])
    /// for formats that have one.
    pub fn new(format: SourceFormat, header: Option<&[u8]>, opts: &ParseOptions) -> Result<Self, FormatError> {
        let header = || header.map(strip_bom).ok_or(FormatError::Empty);
        Ok(match format {
            SourceFormat::AzureLlm => RequestParser::Azure(azure::AzureParser::from_header(header()?)?),
            SourceFormat::BurstGpt => RequestParser::BurstGpt(burstgpt::BurstGptParser::from_header(header()?, opts)?),
            SourceFormat::Mooncake => RequestParser::Mooncake(mooncake::MooncakeParser::new(opts)),
            SourceFormat::Kineto
            | SourceFormat::Prometheus
            | SourceFormat::PrometheusRange
            | SourceFormat::NvidiaSmi
            | SourceFormat::MetricCsv => return Err(FormatError::NotRequests { format }),
        })
    }

    /// Parses a run of whole lines whose first line is line number `first_line` (1-based).
    pub fn parse_chunk(&self, chunk: &[u8], first_line: u64) -> (RequestBatchBuilder, Vec<Reject>) {
        // ~36 bytes per Azure record: a good first guess that avoids most regrowth.
        let mut out = RequestBatchBuilder::with_capacity(chunk.len() / 32 + 1);
        let mut rejects = Vec::new();
        match self {
            RequestParser::Azure(p) => p.parse_chunk(chunk, first_line, &mut out, &mut rejects),
            RequestParser::BurstGpt(p) => p.parse_chunk(chunk, first_line, &mut out, &mut rejects),
            RequestParser::Mooncake(p) => p.parse_chunk(chunk, first_line, &mut out, &mut rejects),
        }
        (out, rejects)
    }
}

/// Result of parsing a whole file in memory.
#[derive(Debug)]
pub struct ParsedFile {
    pub format: SourceFormat,
    pub batch: RecordBatch,
    pub rejects: Vec<Reject>,
}

/// Detects, parses and fills `cached_tokens` for a whole (decompressed) request file held in
/// memory. `workload` defaults to [`default_workload`] of `file`.
pub fn parse_all(
    bytes: &[u8],
    format: Option<SourceFormat>,
    opts: &ParseOptions,
    workload: Option<&str>,
    file: &str,
) -> Result<ParsedFile, FormatError> {
    let format = match format {
        Some(f) => f,
        None => detect(bytes)?,
    };
    let start = format.split_header(bytes, 1)?;
    let parser = RequestParser::new(format, start.header, opts)?;
    let (rows, rejects) = parser.parse_chunk(start.body, start.body_first_line);
    let workload = workload.map_or_else(|| default_workload(format, Path::new(file)), str::to_string);
    let batch = PrefixTracker::new().apply(&rows.finish(Some(&workload), file));
    Ok(ParsedFile { format, batch, rejects })
}

/// The default `workload` of a file of `format` at `path`, when none is given:
/// - a request trace: Azure's `…_code…` → `code`, `…_conv…` → `conversation`, otherwise the file
///   stem (name without directory and without `.gz`/`.zst` and one extension):
///   `BurstGPT_without_fails_2.csv` → `BurstGPT_without_fails_2`;
/// - a Kineto trace: the name of the folder holding it, since a multi-rank run writes one trace
///   per rank into one folder (`train_2rank/rank0.json` → `train_2rank`); `default` for a path
///   without a named parent folder.
pub fn default_workload(format: SourceFormat, path: &Path) -> String {
    match format {
        SourceFormat::Kineto => {
            path.parent().and_then(|p| p.file_name()).and_then(|n| n.to_str()).unwrap_or("default").to_string()
        }
        _ => request_workload(&path.display().to_string()),
    }
}

/// The file-stem rule of [`default_workload`] for request traces.
fn request_workload(path: &str) -> String {
    let name = path.rsplit(['/', '\\']).next().unwrap_or(path);
    let name = name.strip_suffix(".gz").or_else(|| name.strip_suffix(".zst")).unwrap_or(name);
    let stem = name.rsplit_once('.').map_or(name, |(s, _)| s);
    let tokens: Vec<&str> = stem.split(['_', '-', '.']).collect();
    if tokens.iter().skip(1).any(|t| t.eq_ignore_ascii_case("code")) {
        return "code".into();
    }
    if tokens.iter().skip(1).any(|t| t.eq_ignore_ascii_case("conv")) {
        return "conversation".into();
    }
    stem.to_string()
}

#[cfg(test)]
mod tests;
