//! Prometheus HTTP API query results: how data leaves a Prometheus, Thanos or Mimir server
//! (`/api/v1/query_range`, and `/api/v1/query` too). The envelope (prometheus.io
//! `docs/prometheus/latest/querying/api`, "Format overview" and "Expression query result
//! formats"):
//!
//! ```text
//! { "status": "success" | "error", "data": { "resultType": "matrix", "result": [
//!     { "metric": { "<label_name>": "<label_value>", … }, "values": [ [ <unix_time>, "<sample_value>" ], … ] },
//!     … ] },
//!   "errorType": "…", "error": "…", "warnings": […], "infos": […] }
//! ```
//!
//! - `resultType` `matrix` (range queries: `values`) and `vector` (instant queries: one
//!   `value`) are read; `scalar` and `string` hold no series and are a file error, as is
//!   `status: "error"` (its `errorType` and `error` are the message).
//! - `<unix_time>` is seconds since the epoch as a JSON number (ms precision); it is converted
//!   to ns exactly. `<sample_value>` is a string: a Go float, `NaN`, `+Inf`, `-Inf`.
//! - A series' metric name is its `__name__` label; a series without one (the query applied a
//!   function such as `rate()`, which drops it) is rejected: query the raw metric, or give the
//!   name back with `label_replace`.
//! - Native-histogram samples (`histogram`, `histograms`) are not read (counted as rejects).
//! - Several documents may follow each other in one file (one per query, or JSON lines).
//! - Rows carry the line their series starts on; a rejected point carries its own line.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;

use super::builder::{SampleBatchBuilder, SampleMetric};
use super::metrics::Resolved;
use super::{LabelRoute, TelemetryOptions, parse_decimal_ns, parse_value};
use crate::rows::Reject;
use crate::{FormatError, SourceFormat};

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct Envelope<'a> {
    #[serde(borrow)]
    status: Option<Cow<'a, str>>,
    #[serde(borrow)]
    data: Option<Data<'a>>,
    errorType: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct Data<'a> {
    #[serde(borrow)]
    resultType: Option<Cow<'a, str>>,
    #[serde(borrow)]
    result: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Series<'a> {
    #[serde(borrow)]
    metric: Option<BTreeMap<Cow<'a, str>, Cow<'a, str>>>,
    #[serde(borrow)]
    values: Option<Vec<&'a RawValue>>,
    #[serde(borrow)]
    value: Option<&'a RawValue>,
    histograms: Option<IgnoredAny>,
    histogram: Option<IgnoredAny>,
}

/// Line numbers of byte offsets in a document, computed incrementally (offsets must not
/// decrease).
struct Lines<'a> {
    doc: &'a str,
    pos: usize,
    line: u64,
}

impl Lines<'_> {
    fn of(&mut self, offset: usize) -> u64 {
        let offset = offset.min(self.doc.len());
        if offset >= self.pos {
            self.line += memchr::memchr_iter(b'\n', &self.doc.as_bytes()[self.pos..offset]).count() as u64;
        } else {
            self.line -= memchr::memchr_iter(b'\n', &self.doc.as_bytes()[offset..self.pos]).count() as u64;
        }
        self.pos = offset;
        self.line
    }
}

fn offset_in(doc: &str, part: &str) -> usize {
    (part.as_ptr() as usize).saturating_sub(doc.as_ptr() as usize)
}

/// query_range JSON: a whole document (not line-chunked).
pub fn parse_query_range(
    doc: &[u8],
    opts: &TelemetryOptions,
) -> Result<(SampleBatchBuilder, Vec<Reject>), FormatError> {
    let bad = |message: String| FormatError::BadDocument { format: SourceFormat::PrometheusRange, message };
    let doc = crate::strip_bom(doc);
    if doc.trim_ascii().is_empty() {
        return Err(FormatError::Empty);
    }
    let doc = std::str::from_utf8(doc).map_err(|e| bad(format!("not UTF-8 ({e})")))?;
    let mut out = SampleBatchBuilder::new();
    let mut rejects = Vec::new();
    let mut lines = Lines { doc, pos: 0, line: 1 };
    let route = LabelRoute::new(&opts.workload_label);
    for (i, env) in serde_json::Deserializer::from_str(doc).into_iter::<Envelope<'_>>().enumerate() {
        let env = env.map_err(|e| bad(format!("document {}: {e}", i + 1)))?;
        let which = || if i == 0 { String::new() } else { format!("document {}: ", i + 1) };
        match env.status.as_deref() {
            Some("success") => {}
            Some("error") => {
                return Err(bad(format!(
                    "{}the query failed: {}: {}",
                    which(),
                    env.errorType.as_deref().unwrap_or("error"),
                    env.error.as_deref().unwrap_or("(no message)")
                )));
            }
            Some(s) => return Err(bad(format!("{}status is `{s}`, not `success`", which()))),
            None => return Err(bad(format!("{}no `status` (not a Prometheus API response)", which()))),
        }
        let Some(data) = env.data else { return Err(bad(format!("{}no `data`", which()))) };
        let instant = match data.resultType.as_deref() {
            Some("matrix") => false,
            Some("vector") => true,
            Some(t) => return Err(bad(format!("{}resultType `{t}` holds no series (expected `matrix`)", which()))),
            None => return Err(bad(format!("{}no `data.resultType`", which()))),
        };
        let Some(result) = data.result else { return Err(bad(format!("{}no `data.result`", which()))) };
        let series: Vec<&RawValue> =
            serde_json::from_str(result.get()).map_err(|e| bad(format!("{}data.result: {e}", which())))?;
        for raw in series {
            let line = lines.of(offset_in(doc, raw.get()));
            parse_series(raw, instant, line, &route, opts, doc, &mut lines, &mut out, &mut rejects);
        }
    }
    Ok((out, rejects))
}

#[allow(clippy::too_many_arguments)]
fn parse_series(
    raw: &RawValue,
    instant: bool,
    line: u64,
    route: &LabelRoute<'_>,
    opts: &TelemetryOptions,
    doc: &str,
    lines: &mut Lines<'_>,
    out: &mut SampleBatchBuilder,
    rejects: &mut Vec<Reject>,
) {
    let text = raw.get();
    let reject = |field: &str, reason: String| Reject::new(line, Some(field), reason, text.as_bytes());
    let s: Series<'_> = match serde_json::from_str(text) {
        Ok(s) => s,
        Err(e) => {
            rejects.push(Reject::new(line, None, format!("invalid series: {e}"), text.as_bytes()));
            return;
        }
    };
    let mut labels: Vec<(String, String)> =
        s.metric.unwrap_or_default().into_iter().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    let Some(at) = labels.iter().position(|(k, _)| k == "__name__") else {
        rejects.push(reject(
            "metric",
            "series has no `__name__` (the query dropped it, e.g. with rate(): query the raw metric or restore the name with label_replace)".into(),
        ));
        return;
    };
    let (_, name) = labels.remove(at);
    let ctx = match route.route(labels) {
        Ok(c) => c,
        Err(reason) => {
            rejects.push(reject("metric", reason));
            return;
        }
    };
    if s.histograms.is_some() || s.histogram.is_some() {
        rejects.push(reject("histograms", "native histogram samples are not read".into()));
    }
    let has_histograms = s.histograms.is_some() || s.histogram.is_some();
    let points: Vec<&RawValue> = match (instant, s.value, s.values) {
        (true, Some(p), _) => vec![p],
        (false, _, Some(ps)) => ps,
        _ => {
            let field = if instant { "value" } else { "values" };
            if !has_histograms {
                rejects.push(reject(field, format!("series has no `{field}`")));
            }
            return;
        }
    };
    let r = Resolved::new(&opts.metrics, &name, None);
    let m = SampleMetric { metric: &r.metric, unit: r.unit, kind: r.kind.map(|k| k.as_str()), source_metric: &name };
    let ids = out.context(&ctx);
    for p in points {
        let ptext = p.get();
        let pline = lines.of(offset_in(doc, ptext));
        let field = if instant { "value" } else { "values" };
        let bad_point = |reason: String| Reject::new(pline, Some(field), reason, ptext.as_bytes());
        let (t, v): (&RawValue, Cow<'_, str>) = match serde_json::from_str(ptext) {
            Ok(x) => x,
            Err(_) => {
                rejects.push(bad_point("expected [<unix_time>, \"<sample_value>\"]".into()));
                continue;
            }
        };
        let Some(time_ns) = parse_decimal_ns(t.get(), 1_000_000_000) else {
            rejects.push(bad_point(format!("bad timestamp `{}` (expected seconds since the epoch)", t.get())));
            continue;
        };
        let Some(value) = parse_value(v.trim()) else {
            rejects.push(bad_point(format!("not a number: `{v}`")));
            continue;
        };
        out.push(&ids, &m, time_ns, r.apply(value), line);
    }
}

/// Whether `head` (a file's first bytes, starting with `{`) looks like a Prometheus API query
/// result: a `"resultType"` of `"matrix"` or `"vector"`, or, when that key lies beyond the head,
/// the `"status"`, `"success"`, `"data"` and `"result"` keys all present.
pub fn looks_like_query_result(head: &[u8]) -> bool {
    for at in memchr::memmem::find_iter(head, b"\"resultType\"") {
        let rest = head[at + 12..].trim_ascii_start();
        if let Some(rest) = rest.strip_prefix(b":") {
            let rest = rest.trim_ascii_start();
            if rest.starts_with(b"\"matrix\"") || rest.starts_with(b"\"vector\"") {
                return true;
            }
        }
    }
    [&b"\"status\""[..], b"\"success\"", b"\"data\"", b"\"result\""]
        .iter()
        .all(|n| memchr::memmem::find(head, n).is_some())
}
