//! BurstGPT traces: `Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type`, and
//! the later releases' `Session ID` and `Elapsed time` columns (matched by header name, in any
//! order). `Timestamp` is seconds relative to the trace start; a request with 0 response tokens
//! is a failure, as BurstGPT's README documents.

use crate::csv::{for_each_record, parse_count, parse_nonneg_f64};
use crate::rows::{Reject, RequestBatchBuilder, RequestRow};
use crate::{FormatError, ParseOptions, SourceFormat, header_index};

/// Column positions found in a BurstGPT header.
#[derive(Debug, Clone)]
pub struct BurstGptParser {
    n_fields: usize,
    timestamp: usize,
    model: usize,
    request: usize,
    response: usize,
    log_type: Option<usize>,
    session: Option<usize>,
    elapsed: Option<usize>,
    origin_ns: i64,
}

fn text<'a>(b: &'a [u8], field: &str, n: u64, line: &[u8], rejects: &mut Vec<Reject>) -> Result<Option<&'a str>, ()> {
    match std::str::from_utf8(b.trim_ascii()) {
        Ok("") => Ok(None),
        Ok(s) => Ok(Some(s)),
        Err(_) => {
            rejects.push(Reject::new(n, Some(field), "invalid UTF-8", line));
            Err(())
        }
    }
}

impl BurstGptParser {
    /// Reads the header line.
    pub fn from_header(header: &[u8], opts: &ParseOptions) -> Result<Self, FormatError> {
        let names = crate::header_names(header)?;
        let need = |name: &str| header_index(&names, name, SourceFormat::BurstGpt, header);
        Ok(BurstGptParser {
            n_fields: names.len(),
            timestamp: need("Timestamp")?,
            model: need("Model")?,
            request: need("Request tokens")?,
            response: need("Response tokens")?,
            log_type: need("Log Type").ok(),
            session: need("Session ID").ok(),
            elapsed: need("Elapsed time").ok(),
            origin_ns: opts.time_origin_ns,
        })
    }

    /// Parses records (no header) whose first line is line `first_line`.
    pub fn parse_chunk(&self, chunk: &[u8], first_line: u64, out: &mut RequestBatchBuilder, rejects: &mut Vec<Reject>) {
        for_each_record(chunk, first_line, self.n_fields, rejects, |rec, rejects| {
            let (n, line) = (rec.line, rec.raw);
            let secs = match parse_nonneg_f64(rec.field(self.timestamp)) {
                Ok(v) if v < 9.0e9 => v,
                Ok(_) => {
                    rejects.push(Reject::new(n, Some("Timestamp"), "number out of range", line));
                    return;
                }
                Err(e) => {
                    rejects.push(Reject::new(n, Some("Timestamp"), e.describe(), line));
                    return;
                }
            };
            let Some(arrival_ns) = self.origin_ns.checked_add((secs * 1e9).round() as i64) else {
                rejects.push(Reject::new(n, Some("Timestamp"), "timestamp overflows with --time-origin", line));
                return;
            };
            let count = |i: usize, name: &str, rejects: &mut Vec<Reject>| match parse_count(rec.field(i)) {
                Ok(v) => Some(v),
                Err(e) => {
                    rejects.push(Reject::new(n, Some(name), e.describe(), line));
                    None
                }
            };
            let Some(input_tokens) = count(self.request, "Request tokens", rejects) else {
                return;
            };
            let Some(output_tokens) = count(self.response, "Response tokens", rejects) else {
                return;
            };
            let latency_ms = match self.elapsed.map(|i| rec.field(i)) {
                Some(f) if !f.trim_ascii().is_empty() => match parse_nonneg_f64(f) {
                    Ok(v) => Some(v * 1000.0),
                    Err(e) => {
                        rejects.push(Reject::new(n, Some("Elapsed time"), e.describe(), line));
                        return;
                    }
                },
                _ => None,
            };
            let Ok(model) = text(rec.field(self.model), "Model", n, line, rejects) else {
                return;
            };
            let log_type = match self.log_type {
                Some(i) => match text(rec.field(i), "Log Type", n, line, rejects) {
                    Ok(v) => v,
                    Err(()) => return,
                },
                None => None,
            };
            let request_id = match self.session {
                Some(i) => match text(rec.field(i), "Session ID", n, line, rejects) {
                    Ok(v) => v,
                    Err(()) => return,
                },
                None => None,
            };
            let row = RequestRow {
                model,
                request_id,
                arrival_ns,
                input_tokens,
                output_tokens,
                failed: Some(output_tokens == 0),
                log_type,
                latency_ms,
                line: n as i64,
                ..Default::default()
            };
            out.push(&row, None);
        });
    }
}
