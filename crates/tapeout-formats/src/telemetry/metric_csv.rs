//! A metric CSV of any layout, described by a [`CsvMapping`] (a pipeline source entry's
//! `mapping`, or `tapeout ingest --mapping FILE`): cluster traces that use their own columns.
//!
//! - CSV per RFC 4180 (`,` separated, `"` quoting), line 1 the header; columns are named by the
//!   mapping and matched case-insensitively.
//! - Long layout: one sample per record, its value in `value` and its metric named by the
//!   `metric` column or fixed by `fixed_metric`. Wide layout: `values` lists columns, each a
//!   metric named by its header, one sample per non-empty cell.
//! - Times: numbers of `s`, `ms`, `us` or `ns` since the epoch (fractions allowed), plus
//!   `time_origin` when the trace counts from its own start; or `rfc3339` date-times, read at
//!   `--timezone` when they carry no offset.
//! - Metric names go through the metric map; `unit` (the values' source unit, e.g. `%`, `MiB`)
//!   overrides the map's.
//! - An empty or `N/A` value cell is no sample; a value that is not a number is rejected on its
//!   own (its column as `field`); a bad time or device rejects the record.
//!
//! ```toml
//! time = "timestamp"        # required
//! time_unit = "s"           # s | ms | us | ns | rfc3339 (default s)
//! time_origin = "2023-07-01T00:00:00Z"   # optional, for relative times
//! value = "value"           # long layout: the value column …
//! metric = "metric_name"    # … and the metric column, or:
//! # fixed_metric = "DCGM_FI_DEV_GPU_UTIL"
//! # values = ["gpu_util", "mem_used"]   # wide layout instead of value/metric
//! unit = "%"                # optional source unit of the values
//! host = "machine"          # optional: host, device, device_uuid, device_model, mig_instance,
//! device = "gpu_index"      #   workload, job, namespace, pod
//! labels = ["cluster"]      # optional: columns kept in the labels map
//! ```

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::builder::{ContextIds, SampleBatchBuilder, SampleContext, SampleMetric};
use super::metrics::{MetricMap, Resolved, conversion};
use super::{TelemetryOptions, is_no_value, parse_decimal_ns, parse_local_datetime, parse_value};
use crate::rows::Reject;
use crate::{FormatError, SourceFormat};

/// How a metric CSV writes its times.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CsvTimeUnit {
    /// Seconds since the epoch (or `time_origin`), fractions allowed.
    #[default]
    S,
    /// Milliseconds.
    Ms,
    /// Microseconds.
    Us,
    /// Nanoseconds.
    Ns,
    /// RFC 3339 / ISO 8601 date-times (`2024-05-10T13:06:03.5Z`; without an offset, local time
    /// at `--timezone`).
    Rfc3339,
}

impl CsvTimeUnit {
    /// As written in a mapping.
    pub const fn name(self) -> &'static str {
        match self {
            CsvTimeUnit::S => "s",
            CsvTimeUnit::Ms => "ms",
            CsvTimeUnit::Us => "us",
            CsvTimeUnit::Ns => "ns",
            CsvTimeUnit::Rfc3339 => "rfc3339",
        }
    }

    fn ns(self) -> i64 {
        match self {
            CsvTimeUnit::S | CsvTimeUnit::Rfc3339 => 1_000_000_000,
            CsvTimeUnit::Ms => 1_000_000,
            CsvTimeUnit::Us => 1_000,
            CsvTimeUnit::Ns => 1,
        }
    }
}

/// The layout of a metric CSV: which columns are the time, the value(s), the metric, the device
/// and the labels. Column names are matched case-insensitively against the header.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsvMapping {
    /// Column holding the sample time (required).
    pub time: String,
    /// How `time` is written (default `s`).
    #[serde(default)]
    pub time_unit: CsvTimeUnit,
    /// RFC 3339 date-time added to numeric times, for traces that count from their own start.
    #[serde(default)]
    pub time_origin: Option<String>,
    /// Long layout: the value column.
    #[serde(default)]
    pub value: Option<String>,
    /// Long layout: the column naming each record's metric.
    #[serde(default)]
    pub metric: Option<String>,
    /// Long layout: one metric for every record (instead of `metric`).
    #[serde(default)]
    pub fixed_metric: Option<String>,
    /// Wide layout: value columns, each a metric named by its header.
    #[serde(default)]
    pub values: Vec<String>,
    /// Source unit of the values (`%`, `MiB`, `W`, …; see the README's unit table); overrides
    /// the metric map's.
    #[serde(default)]
    pub unit: Option<String>,
    /// Column → `host`.
    #[serde(default)]
    pub host: Option<String>,
    /// Column → `device` (an integer index).
    #[serde(default)]
    pub device: Option<String>,
    /// Column → `device_uuid`.
    #[serde(default)]
    pub device_uuid: Option<String>,
    /// Column → `device_model`.
    #[serde(default)]
    pub device_model: Option<String>,
    /// Column → `mig_instance`.
    #[serde(default)]
    pub mig_instance: Option<String>,
    /// Column → `workload`.
    #[serde(default)]
    pub workload: Option<String>,
    /// Column → `job`.
    #[serde(default)]
    pub job: Option<String>,
    /// Column → `namespace`.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Column → `pod`.
    #[serde(default)]
    pub pod: Option<String>,
    /// Columns kept in the `labels` map, under their header names.
    #[serde(default)]
    pub labels: Vec<String>,
}

fn bad(message: String) -> FormatError {
    FormatError::BadConfig { what: "metric CSV mapping".into(), message }
}

impl CsvMapping {
    /// Parses and checks a mapping file (TOML, the fields of [`CsvMapping`]).
    pub fn parse(toml: &str) -> Result<CsvMapping, FormatError> {
        let m: CsvMapping = toml::from_str(toml).map_err(|e| bad(e.to_string()))?;
        m.validate()?;
        Ok(m)
    }

    /// Checks the layout: one of `value` (with `metric` or `fixed_metric`) or `values`; a known
    /// `unit`; a parseable `time_origin`, only with numeric times.
    pub fn validate(&self) -> Result<(), FormatError> {
        match (&self.value, self.values.is_empty()) {
            (Some(_), true) => match (&self.metric, &self.fixed_metric) {
                (Some(_), Some(_)) => return Err(bad("give `metric` (a column) or `fixed_metric`, not both".into())),
                (None, None) => {
                    return Err(bad("the long layout (`value`) needs `metric` (a column) or `fixed_metric`".into()));
                }
                _ => {}
            },
            (Some(_), false) => {
                return Err(bad("give `value` (long layout) or `values` (wide layout), not both".into()));
            }
            (None, true) => {
                return Err(bad("no value column: give `value` (long layout) or `values` (wide layout)".into()));
            }
            (None, false) => {
                if self.metric.is_some() || self.fixed_metric.is_some() {
                    return Err(bad(
                        "the wide layout (`values`) names metrics by their columns: drop `metric` / `fixed_metric`"
                            .into(),
                    ));
                }
            }
        }
        if let Some(u) = &self.unit
            && conversion(u).is_none()
        {
            return Err(bad(format!("unknown unit `{u}`")));
        }
        if self.time_origin.is_some() && self.time_unit == CsvTimeUnit::Rfc3339 {
            return Err(bad("`time_origin` applies to numeric times, not to rfc3339 ones".into()));
        }
        self.origin_ns()?;
        Ok(())
    }

    fn origin_ns(&self) -> Result<i64, FormatError> {
        match &self.time_origin {
            None => Ok(0),
            Some(o) => crate::time::parse_datetime_ns(o.trim().as_bytes())
                .ok_or_else(|| bad(format!("time_origin `{o}` is not an RFC 3339 date-time"))),
        }
    }
}

#[derive(Debug, Clone)]
enum Values {
    /// (value column, metric column)
    LongColumn(usize, usize),
    /// (value column, source name, resolution)
    LongFixed(usize, String, Resolved),
    /// (column, source name = its header, resolution) per value column.
    Wide(Vec<(usize, String, Resolved)>),
}

/// Parser for a mapped metric CSV.
#[derive(Debug, Clone)]
pub struct MetricCsvParser {
    header: Vec<String>,
    time: usize,
    time_unit: CsvTimeUnit,
    origin_ns: i64,
    utc_offset_s: i32,
    values: Values,
    unit: Option<String>,
    /// host, device, device_uuid, device_model, mig_instance, workload, job, namespace, pod.
    ctx_cols: [Option<usize>; 9],
    labels: Vec<(usize, String)>,
    metrics: Arc<MetricMap>,
}

impl MetricCsvParser {
    /// Reads the header line and resolves the mapping's columns.
    pub fn from_header(header: &[u8], mapping: &CsvMapping, opts: &TelemetryOptions) -> Result<Self, FormatError> {
        mapping.validate()?;
        let names = crate::header_names(header)?;
        let col = |want: &str| crate::header_index(&names, want, SourceFormat::MetricCsv, header);
        let opt_col = |want: &Option<String>| want.as_deref().map(col).transpose();
        let values = match (&mapping.value, &mapping.metric, &mapping.fixed_metric) {
            (Some(v), Some(m), _) => Values::LongColumn(col(v)?, col(m)?),
            (Some(v), None, Some(f)) => {
                Values::LongFixed(col(v)?, f.clone(), Resolved::new(&opts.metrics, f, mapping.unit.as_deref()))
            }
            _ => Values::Wide(
                mapping
                    .values
                    .iter()
                    .map(|v| {
                        let i = col(v)?;
                        let name = names[i].clone();
                        let r = Resolved::new(&opts.metrics, &name, mapping.unit.as_deref());
                        Ok((i, name, r))
                    })
                    .collect::<Result<_, FormatError>>()?,
            ),
        };
        let ctx_cols = [
            opt_col(&mapping.host)?,
            opt_col(&mapping.device)?,
            opt_col(&mapping.device_uuid)?,
            opt_col(&mapping.device_model)?,
            opt_col(&mapping.mig_instance)?,
            opt_col(&mapping.workload)?,
            opt_col(&mapping.job)?,
            opt_col(&mapping.namespace)?,
            opt_col(&mapping.pod)?,
        ];
        let mut labels: Vec<(usize, String)> =
            mapping.labels.iter().map(|l| col(l).map(|i| (i, names[i].clone()))).collect::<Result<_, _>>()?;
        labels.sort_by(|a, b| a.1.cmp(&b.1));
        Ok(MetricCsvParser {
            time: col(&mapping.time)?,
            time_unit: mapping.time_unit,
            origin_ns: mapping.origin_ns()?,
            utc_offset_s: opts.utc_offset_s,
            values,
            unit: mapping.unit.clone(),
            ctx_cols,
            labels,
            header: names,
            metrics: opts.metrics.clone(),
        })
    }

    fn time_ns(&self, cell: &str) -> Option<i64> {
        match self.time_unit {
            CsvTimeUnit::Rfc3339 => parse_local_datetime(cell, self.utc_offset_s),
            u => parse_decimal_ns(cell, u.ns())?.checked_add(self.origin_ns),
        }
    }

    /// Parses the records of `chunk` (after the header), the first starting on line `first_line`.
    pub fn parse_chunk(&self, chunk: &[u8], first_line: u64, out: &mut SampleBatchBuilder, rejects: &mut Vec<Reject>) {
        let mut resolved: HashMap<String, Resolved> = HashMap::new();
        let mut records = crate::csv::Records::new(chunk, first_line);
        let mut cells: Vec<String> = Vec::with_capacity(self.header.len());
        while let Some(rec) = records.next() {
            let rec = match rec {
                Ok(r) => r,
                Err(u) => {
                    rejects.push(Reject::new(u.line, None, crate::csv::UNTERMINATED, u.raw));
                    continue;
                }
            };
            let (n, raw) = (rec.line, rec.raw);
            cells.clear();
            let mut utf8 = true;
            for i in 0..rec.len() {
                match std::str::from_utf8(rec.field(i)) {
                    Ok(s) => cells.push(s.trim().to_string()),
                    Err(_) => utf8 = false,
                }
            }
            if !utf8 {
                rejects.push(Reject::new(n, None, "not UTF-8", raw));
                continue;
            }
            if cells.len() != self.header.len() {
                if cells.len() == 1 && cells[0].is_empty() {
                    continue;
                }
                let reason = format!("expected {} fields, found {}", self.header.len(), cells.len());
                rejects.push(Reject::new(n, None, reason, raw));
                continue;
            }
            if cells.iter().zip(&self.header).all(|(c, h)| c == h) {
                continue; // the header again
            }
            let Some(time_ns) = self.time_ns(&cells[self.time]) else {
                let reason = format!("unparseable time `{}` (time_unit {})", cells[self.time], self.time_unit.name());
                rejects.push(Reject::new(n, Some(&self.header[self.time]), reason, raw));
                continue;
            };
            let get = |k: usize| self.ctx_cols[k].map(|i| &cells[i]).filter(|c| !is_no_value(c)).cloned();
            let device = match self.ctx_cols[1].map(|i| (i, &cells[i])).filter(|(_, c)| !is_no_value(c)) {
                None => None,
                Some((i, c)) => match c.parse::<i32>() {
                    Ok(d) => Some(d),
                    Err(_) => {
                        let reason = format!("not a device index (an integer): `{c}`");
                        rejects.push(Reject::new(n, Some(&self.header[i]), reason, raw));
                        continue;
                    }
                },
            };
            let ctx = SampleContext {
                host: get(0),
                device,
                device_uuid: get(2),
                device_model: get(3),
                mig_instance: get(4),
                workload: get(5),
                job: get(6),
                namespace: get(7),
                pod: get(8),
                labels: self
                    .labels
                    .iter()
                    .filter(|(i, _)| !cells[*i].is_empty())
                    .map(|(i, name)| (name.clone(), cells[*i].clone()))
                    .collect(),
            };
            let ids = out.context(&ctx);
            let cell = |col: usize| Cell { line: n, raw, col, text: &cells[col] };
            match &self.values {
                Values::LongColumn(v, m) => {
                    let name = &cells[*m];
                    if name.is_empty() {
                        rejects.push(Reject::new(n, Some(&self.header[*m]), "empty metric name", raw));
                        continue;
                    }
                    let r = resolved
                        .entry(name.clone())
                        .or_insert_with(|| Resolved::new(&self.metrics, name, self.unit.as_deref()));
                    self.emit(cell(*v), name, r, &ids, time_ns, out, rejects);
                }
                Values::LongFixed(v, name, r) => self.emit(cell(*v), name, r, &ids, time_ns, out, rejects),
                Values::Wide(cols) => {
                    for (c, name, r) in cols {
                        self.emit(cell(*c), name, r, &ids, time_ns, out, rejects);
                    }
                }
            }
        }
    }

    /// One value cell → one sample, nothing (empty, `N/A`) or a reject (not a number).
    #[allow(clippy::too_many_arguments)]
    fn emit(
        &self,
        cell: Cell<'_>,
        source: &str,
        r: &Resolved,
        ids: &ContextIds,
        time_ns: i64,
        out: &mut SampleBatchBuilder,
        rejects: &mut Vec<Reject>,
    ) {
        if is_no_value(cell.text) {
            return;
        }
        let Some(v) = parse_value(cell.text) else {
            let reason = format!("not a number: `{}`", cell.text);
            rejects.push(Reject::new(cell.line, Some(&self.header[cell.col]), reason, cell.raw));
            return;
        };
        let m =
            SampleMetric { metric: &r.metric, unit: r.unit, kind: r.kind.map(|k| k.as_str()), source_metric: source };
        out.push(ids, &m, time_ns, r.apply(v), cell.line);
    }
}

/// A value cell of a record.
#[derive(Clone, Copy)]
struct Cell<'a> {
    line: u64,
    raw: &'a [u8],
    col: usize,
    text: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mappings_are_checked() {
        let err = |s: &str| CsvMapping::parse(s).unwrap_err().to_string();
        assert!(CsvMapping::parse("time = \"t\"\nvalue = \"v\"\nmetric = \"m\"").is_ok());
        assert!(CsvMapping::parse("time = \"t\"\nvalues = [\"a\", \"b\"]\ntime_unit = \"ms\"").is_ok());
        assert!(err("time = \"t\"\nvalue = \"v\"").contains("needs `metric` (a column) or `fixed_metric`"));
        assert!(err("time = \"t\"").contains("no value column"));
        assert!(err("time = \"t\"\nvalue = \"v\"\nvalues = [\"a\"]\nmetric = \"m\"").contains("not both"));
        assert!(err("time = \"t\"\nvalues = [\"a\"]\nunit = \"parsecs\"").contains("unknown unit `parsecs`"));
        assert!(
            err("time = \"t\"\nvalues = [\"a\"]\ntime_unit = \"fortnights\"").contains("unknown variant `fortnights`")
        );
        assert!(err("time = \"t\"\nvalues = [\"a\"]\ncolour = \"red\"").contains("unknown field `colour`"));
        assert!(err("time = \"t\"\nvalues = [\"a\"]\ntime_origin = \"soon\"").contains("not an RFC 3339 date-time"));
    }
}
