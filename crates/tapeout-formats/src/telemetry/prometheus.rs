//! The Prometheus text exposition format (version 0.0.4), as dcgm-exporter and node exporters
//! serve it on `/metrics`. Grammar (prometheus/docs `docs/instrumenting/exposition_formats.md`,
//! "Text format details"):
//!
//! ```text
//! metric_name_or_labels value [ timestamp ]
//! metric_name_or_labels = metric_name [ "{" labels "}" ] | "{" quoted_metric_name [ "," labels ] "}"
//! labels      = [ label_pair { "," label_pair } [ "," ] ]
//! label_pair  = label_name "=" `"` escaped_string `"`
//! label_name  = identifier | `"` escaped_string `"`
//! ```
//!
//! - Lines end at `\n`; empty lines are ignored; tokens are separated by blanks or tabs, and
//!   leading and trailing white space is ignored.
//! - A line whose first non-blank character is `#` is a comment: `# HELP` and `# TYPE` lines are
//!   metadata, not samples, and are never rejected (nor used: a chunk's parse must not depend on
//!   a `# TYPE` line in another chunk, so `kind` comes from the metric map or the `_total`
//!   suffix).
//! - Metric names match `[a-zA-Z_:][a-zA-Z0-9_:]*` and label names `[a-zA-Z_][a-zA-Z0-9_]*`,
//!   unless quoted (`{"my.dotted.metric", "error.message"="Not Found"} 1`).
//! - In a quoted string (label values, quoted names) `\\`, `\"` and `\n` are the only escapes
//!   (another, like `\t`, is an error, as in Prometheus' own parser `expfmt`).
//! - `value` is a Go `ParseFloat` float: `NaN`, `+Inf` and `-Inf` are kept as written.
//! - `timestamp` is an int64 of milliseconds since the epoch. A sample without one takes
//!   [`TelemetryOptions::default_time_ns`]; so many scrapes concatenated into one file need
//!   timestamps (or one file per scrape), or all their samples get the same time.
//! - A label with an empty value is the same as no label.

use std::borrow::Cow;
use std::sync::Arc;

use super::builder::{SampleBatchBuilder, SampleMetric};
use super::metrics::{MetricMap, Resolved};
use super::{LabelRoute, TelemetryOptions, parse_value};
use crate::rows::Reject;

/// Parser for Prometheus text expositions.
#[derive(Debug, Clone)]
pub struct PrometheusParser {
    metrics: Arc<MetricMap>,
    default_time_ns: i64,
    workload_label: String,
}

/// One parsed sample line, borrowing from the line where no escape was unescaped.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample<'a> {
    pub name: Cow<'a, str>,
    pub labels: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    pub value: f64,
    /// Milliseconds since the epoch, as written.
    pub timestamp_ms: Option<i64>,
}

/// Why a sample line is not a sample: the field (`metric`, `labels`, `value`, `timestamp`) and
/// the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub field: Option<&'static str>,
    pub reason: String,
}

fn err<T>(field: &'static str, reason: impl Into<String>) -> Result<T, LineError> {
    Err(LineError { field: Some(field), reason: reason.into() })
}

fn is_blank(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

struct Cursor<'a> {
    s: &'a str,
    i: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.i).copied()
    }

    fn skip_blanks(&mut self) -> bool {
        let start = self.i;
        while self.peek().is_some_and(is_blank) {
            self.i += 1;
        }
        self.i > start
    }

    fn identifier(&mut self, colons: bool) -> &'a str {
        let start = self.i;
        let ok_first = |c: u8| c.is_ascii_alphabetic() || c == b'_' || (colons && c == b':');
        if self.peek().is_some_and(ok_first) {
            self.i += 1;
            while self.peek().is_some_and(|c| ok_first(c) || c.is_ascii_digit()) {
                self.i += 1;
            }
        }
        &self.s[start..self.i]
    }

    /// A `"…"` string with `\\`, `\"` and `\n` escapes; the cursor is on the opening quote.
    fn quoted(&mut self, field: &'static str) -> Result<Cow<'a, str>, LineError> {
        debug_assert_eq!(self.peek(), Some(b'"'));
        self.i += 1;
        let start = self.i;
        let bytes = self.s.as_bytes();
        let mut owned: Option<String> = None;
        let mut run = start;
        loop {
            match bytes.get(self.i) {
                None => return err(field, "unterminated quoted string (no closing `\"`)"),
                Some(b'"') => {
                    let out = match owned {
                        None => Cow::Borrowed(&self.s[start..self.i]),
                        Some(mut o) => {
                            o.push_str(&self.s[run..self.i]);
                            Cow::Owned(o)
                        }
                    };
                    self.i += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    let o = owned.get_or_insert_with(String::new);
                    o.push_str(&self.s[run..self.i]);
                    match bytes.get(self.i + 1) {
                        Some(b'\\') => o.push('\\'),
                        Some(b'"') => o.push('"'),
                        Some(b'n') => o.push('\n'),
                        Some(_) => {
                            let c = self.s[self.i + 1..].chars().next().unwrap_or('?');
                            return err(
                                field,
                                format!("invalid escape `\\{c}` (only `\\\\`, `\\\"` and `\\n` are allowed)"),
                            );
                        }
                        None => return err(field, "unterminated quoted string (no closing `\"`)"),
                    }
                    self.i += 2;
                    run = self.i;
                }
                Some(_) => self.i += 1,
            }
        }
    }

    /// The next blank-separated token.
    fn token(&mut self) -> &'a str {
        let start = self.i;
        while self.peek().is_some_and(|c| !is_blank(c)) {
            self.i += 1;
        }
        &self.s[start..self.i]
    }
}

/// Parses one sample line (not blank, not a comment; leading and trailing white space allowed).
pub fn parse_sample(line: &str) -> Result<Sample<'_>, LineError> {
    let mut c = Cursor { s: line, i: 0 };
    c.skip_blanks();
    let mut name: Option<Cow<'_, str>> = None;
    // Whether the value is separated from what precedes it (blanks, or a closing `}`).
    let mut separated = false;
    if c.peek() != Some(b'{') {
        let id = c.identifier(true);
        if id.is_empty() {
            return err("metric", "expected a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*) or `{`");
        }
        name = Some(Cow::Borrowed(id));
        separated = c.skip_blanks();
    }
    let mut labels = Vec::new();
    if c.peek() == Some(b'{') {
        separated = true;
        c.i += 1;
        loop {
            c.skip_blanks();
            match c.peek() {
                Some(b'}') => {
                    c.i += 1;
                    break;
                }
                None => return err("labels", "unterminated label set (no closing `}`)"),
                _ => {}
            }
            let (key, quoted_key) = if c.peek() == Some(b'"') {
                (c.quoted("labels")?, true)
            } else {
                let id = c.identifier(false);
                if id.is_empty() {
                    let at = line[c.i..].chars().next().unwrap_or(' ');
                    return err("labels", format!("expected a label name, found `{at}`"));
                }
                (Cow::Borrowed(id), false)
            };
            c.skip_blanks();
            match c.peek() {
                Some(b'=') => {
                    c.i += 1;
                    c.skip_blanks();
                    if c.peek() != Some(b'"') {
                        return err("labels", format!("label `{key}`: expected a quoted value after `=`"));
                    }
                    let value = c.quoted("labels")?;
                    labels.push((key, value));
                }
                // `{"quoted.metric.name", …}`: a quoted name without `=`, first in the braces.
                Some(b',' | b'}') if quoted_key && name.is_none() && labels.is_empty() => name = Some(key),
                _ => return err("labels", format!("label `{key}`: expected `=`")),
            }
            c.skip_blanks();
            match c.peek() {
                Some(b',') => c.i += 1,
                Some(b'}') => {}
                None => return err("labels", "unterminated label set (no closing `}`)"),
                Some(_) => return err("labels", "expected `,` or `}` after a label"),
            }
        }
    }
    let Some(name) = name else {
        return err("metric", "no metric name (a `{` label set must start with a quoted name)");
    };
    if name.is_empty() {
        return err("metric", "empty metric name");
    }
    separated |= c.skip_blanks();
    if !separated && c.peek().is_some() {
        return err("metric", "expected a blank between the metric name and the value");
    }
    let value_tok = c.token();
    if value_tok.is_empty() {
        return err("value", "missing value");
    }
    let Some(value) = parse_value(value_tok) else {
        return err("value", format!("not a number: `{value_tok}`"));
    };
    c.skip_blanks();
    let ts_tok = c.token();
    let timestamp_ms = if ts_tok.is_empty() {
        None
    } else {
        match ts_tok.parse::<i64>() {
            Ok(t) => Some(t),
            Err(_) if ts_tok.bytes().all(|b| b.is_ascii_digit() || b == b'-' || b == b'+') => {
                return err("timestamp", format!("timestamp out of range: `{ts_tok}`"));
            }
            Err(_) => {
                return err(
                    "timestamp",
                    format!("timestamp is not an integer number of milliseconds since the epoch: `{ts_tok}`"),
                );
            }
        }
    };
    c.skip_blanks();
    if c.peek().is_some() {
        let extra = c.token();
        return err("timestamp", format!("unexpected text after the timestamp: `{extra}`"));
    }
    Ok(Sample { name, labels, value, timestamp_ms })
}

/// Whether `head` (the first bytes of a file) looks like a Prometheus text exposition: among its
/// first non-blank lines, a `# HELP` or `# TYPE` line, or a first non-comment line that is a
/// sample.
pub fn looks_like_exposition(head: &[u8]) -> bool {
    let mut lines = head.split(|&c| c == b'\n').peekable();
    let mut seen = 0;
    while let Some(line) = lines.next() {
        // The last piece may be a line cut by the end of the head: judge it only if it is alone.
        if lines.peek().is_none() && seen > 0 {
            break;
        }
        let t = line.trim_ascii();
        if t.is_empty() {
            continue;
        }
        seen += 1;
        if seen > 64 {
            break;
        }
        if let Some(comment) = t.strip_prefix(b"#") {
            let comment = comment.trim_ascii_start();
            if comment.starts_with(b"HELP ") || comment.starts_with(b"TYPE ") {
                return true;
            }
            continue;
        }
        return std::str::from_utf8(t).is_ok_and(|s| parse_sample(s).is_ok());
    }
    false
}

impl PrometheusParser {
    /// A parser with these options.
    pub fn new(opts: &TelemetryOptions) -> Self {
        PrometheusParser {
            metrics: opts.metrics.clone(),
            default_time_ns: opts.default_time_ns,
            workload_label: opts.workload_label.clone(),
        }
    }

    /// Parses the lines of `chunk`, the first being line `first_line`.
    pub fn parse_chunk(&self, chunk: &[u8], first_line: u64, out: &mut SampleBatchBuilder, rejects: &mut Vec<Reject>) {
        let route = LabelRoute::new(&self.workload_label);
        let map: &MetricMap = &self.metrics;
        // Consecutive samples of one metric share its resolution.
        let mut last: Option<(String, Resolved)> = None;
        for (n, raw) in crate::csv::lines(chunk, first_line) {
            let t = raw.trim_ascii();
            if t.is_empty() || t[0] == b'#' {
                continue;
            }
            let Ok(line) = std::str::from_utf8(t) else {
                rejects.push(Reject::new(n, None, "not UTF-8", raw));
                continue;
            };
            let sample = match parse_sample(line) {
                Ok(s) => s,
                Err(e) => {
                    rejects.push(Reject::new(n, e.field, e.reason, raw));
                    continue;
                }
            };
            let time_ns = match sample.timestamp_ms {
                None => self.default_time_ns,
                Some(ms) => match ms.checked_mul(1_000_000) {
                    Some(ns) => ns,
                    None => {
                        rejects.push(Reject::new(n, Some("timestamp"), format!("timestamp out of range: `{ms}`"), raw));
                        continue;
                    }
                },
            };
            let labels = sample.labels.into_iter().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
            let ctx = match route.route(labels) {
                Ok(c) => c,
                Err(reason) => {
                    rejects.push(Reject::new(n, Some("labels"), reason, raw));
                    continue;
                }
            };
            if last.as_ref().is_none_or(|(name, _)| *name != sample.name) {
                last = Some((sample.name.to_string(), Resolved::new(map, &sample.name, None)));
            }
            let (_, r) = last.as_ref().expect("set above");
            let m = SampleMetric {
                metric: &r.metric,
                unit: r.unit,
                kind: r.kind.map(|k| k.as_str()),
                source_metric: &sample.name,
            };
            let ids = out.context(&ctx);
            out.push(&ids, &m, time_ns, r.apply(sample.value), n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(line: &str) -> Sample<'_> {
        parse_sample(line).unwrap_or_else(|e| panic!("{line}: {e:?}"))
    }

    fn reason(line: &str) -> (Option<&'static str>, String) {
        let e = parse_sample(line).unwrap_err();
        (e.field, e.reason)
    }

    #[test]
    fn spec_examples() {
        let s = ok("http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000");
        assert_eq!(s.name, "http_requests_total");
        assert_eq!(s.labels, vec![("method".into(), "post".into()), ("code".into(), "200".into())]);
        assert_eq!((s.value, s.timestamp_ms), (1027.0, Some(1395066363000)));
        let s = ok("http_requests_total{method=\"post\",code=\"400\"}    3 1395066363000");
        assert_eq!(s.value, 3.0);
        let s = ok(
            r#"msdos_file_access_time_seconds{path="C:\\DIR\\FILE.TXT",error="Cannot find file:\n\"FILE.TXT\""} 1.458255915e9"#,
        );
        assert_eq!(s.labels[0].1, "C:\\DIR\\FILE.TXT");
        assert_eq!(s.labels[1].1, "Cannot find file:\n\"FILE.TXT\"");
        assert_eq!((s.value, s.timestamp_ms), (1.458255915e9, None));
        let s = ok("metric_without_timestamp_and_labels 12.47");
        assert_eq!((s.name.as_ref(), s.labels.len(), s.value), ("metric_without_timestamp_and_labels", 0, 12.47));
        let s = ok("something_weird{problem=\"division by zero\"} +Inf -3982045");
        assert_eq!((s.value, s.timestamp_ms), (f64::INFINITY, Some(-3982045)));
        let s = ok(r#"{"my.dotted.metric", "error.message"="Not Found"} 1"#);
        assert_eq!(s.name, "my.dotted.metric");
        assert_eq!(s.labels, vec![("error.message".into(), "Not Found".into())]);
        let s = ok("http_request_duration_seconds_bucket{le=\"+Inf\"} 144320");
        assert_eq!(s.labels[0].1, "+Inf");
        let s = ok("rpc_duration_seconds_sum 1.7560473e+07");
        assert_eq!(s.value, 1.7560473e7);
    }

    #[test]
    fn white_space_trailing_commas_and_colons() {
        let s = ok("\t job:request_rate:5m { a = \"1\" , b=\"2\", }\t-0.5\t 17 \t");
        assert_eq!(s.name, "job:request_rate:5m");
        assert_eq!(s.labels.len(), 2);
        assert_eq!((s.value, s.timestamp_ms), (-0.5, Some(17)));
        assert_eq!(ok("m{} 1").labels.len(), 0);
        assert!(ok("m NaN").value.is_nan());
        assert_eq!(ok("m{a=\"x\"}1").value, 1.0);
    }

    #[test]
    fn malformed_lines_say_why() {
        assert_eq!(reason("m{a=\"x} 1"), (Some("labels"), "unterminated quoted string (no closing `\"`)".into()));
        assert_eq!(
            reason(r#"m{a="\t"} 1"#),
            (Some("labels"), "invalid escape `\\t` (only `\\\\`, `\\\"` and `\\n` are allowed)".into())
        );
        assert_eq!(reason("m{a=x} 1"), (Some("labels"), "label `a`: expected a quoted value after `=`".into()));
        assert_eq!(reason("m{a=\"1\" b=\"2\"} 1"), (Some("labels"), "expected `,` or `}` after a label".into()));
        assert_eq!(reason("m{a=\"1\""), (Some("labels"), "unterminated label set (no closing `}`)".into()));
        assert_eq!(reason("m{1a=\"1\"} 1").0, Some("labels"));
        assert_eq!(reason("m"), (Some("value"), "missing value".into()));
        assert_eq!(reason("m one"), (Some("value"), "not a number: `one`".into()));
        assert_eq!(reason("m 1 2.5").0, Some("timestamp"));
        assert_eq!(
            reason("m 1 99999999999999999999"),
            (Some("timestamp"), "timestamp out of range: `99999999999999999999`".into())
        );
        assert_eq!(reason("m 1 2 3"), (Some("timestamp"), "unexpected text after the timestamp: `3`".into()));
        assert_eq!(reason("9m 1").0, Some("metric"));
        assert_eq!(reason("{a=\"1\"} 1").0, Some("metric"));
        assert_eq!(reason("m{\"x\"} 1").0, Some("labels"));
    }

    #[test]
    fn detection() {
        assert!(looks_like_exposition(b"# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).\n# TYPE x gauge\n"));
        assert!(looks_like_exposition(b"# a comment\n\nup{job=\"x\"} 1\n"));
        assert!(looks_like_exposition(b"up 1"));
        assert!(!looks_like_exposition(b"a,b,c\n1,2,3\n"));
        assert!(!looks_like_exposition(b"# just a comment\n"));
        assert!(!looks_like_exposition(b"{\"timestamp\": 0}\n"));
    }
}
