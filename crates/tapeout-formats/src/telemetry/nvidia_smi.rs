//! `nvidia-smi --query-gpu=<fields> --format=csv[,nounits]` logs (nvidia-smi(1), "SELECTIVE QUERY
//! OPTIONS"; fields and their units from `nvidia-smi --help-query-gpu`):
//!
//! ```text
//! timestamp, index, name, uuid, utilization.gpu [%], memory.used [MiB], power.draw [W], clocks.current.sm [MHz]
//! 2024/05/10 13:06:03.419, 0, NVIDIA H100 80GB HBM3, GPU-…, 87 %, 40321 MiB, 612.34 W, 1980 MHz
//! ```
//!
//! - Line 1 is the header: the queried field names, `, `-separated, each numeric one followed by
//!   its unit in brackets (`noheader` logs cannot be read: the header names the columns). With
//!   `nounits` the cells hold bare numbers; without it each number is followed by its unit,
//!   which must be the header's.
//! - `timestamp` (`YYYY/MM/DD HH:MM:SS.mmm`) is local time without a zone: it is read at
//!   [`TelemetryOptions::utc_offset_s`] (`--timezone`). A log without a `timestamp` column takes
//!   [`TelemetryOptions::default_time_ns`] for every line.
//! - `index` → device, `uuid` / `gpu_uuid` → device_uuid, `name` / `gpu_name` → device_model;
//!   text fields (`pci.bus_id`, `driver_version`, `pstate`, `serial`, …) → the labels map;
//!   every other column is a metric: one sample per cell, converted by the header's unit
//!   (`[%]` → ratio, `[MiB]` → bytes, `[W]` → watts, `[MHz]` → hz) and named through the
//!   metric map.
//! - A cell nvidia-smi could not fill (`[N/A]`, `[Not Supported]`, `[Unknown Error]`, …) is no
//!   sample; the line's other cells still land. A cell that is not a number is rejected on its
//!   own (its column as `field`), the other cells still land.
//! - A repeated header line (logs appended by several runs) is skipped.

use super::builder::{SampleBatchBuilder, SampleContext, SampleMetric};
use super::metrics::Resolved;
use super::{TelemetryOptions, is_no_value, parse_local_datetime, parse_value};
use crate::FormatError;
use crate::rows::Reject;

/// `--query-gpu` fields whose values are text, kept as labels (prefixes end with `.`).
const TEXT_FIELDS: &[&str] = &[
    "pci.bus_id",
    "gpu_bus_id",
    "pci.domain",
    "pci.bus",
    "pci.device",
    "pci.device_id",
    "pci.sub_device_id",
    "driver_version",
    "vbios_version",
    "serial",
    "gpu_serial",
    "pstate",
    "compute_mode",
    "compute_cap",
    "persistence_mode",
    "display_mode",
    "display_active",
    "accounting.mode",
    "mig.mode.current",
    "mig.mode.pending",
    "ecc.mode.current",
    "ecc.mode.pending",
    "power.management",
    "gom.current",
    "gom.pending",
    "driver_model.current",
    "driver_model.pending",
    "vgpu_driver_capability.heterogenous_multivgpu",
    "addressing_mode",
    "inforom.",
    "clocks_throttle_reasons.",
    "clocks_event_reasons.",
    "fabric.",
    "platform.",
];

fn is_text_field(base: &str) -> bool {
    TEXT_FIELDS.iter().any(|f| if f.ends_with('.') { base.starts_with(f) } else { base == *f })
}

#[derive(Debug, Clone)]
enum Role {
    Time,
    Index,
    Uuid,
    Name,
    Label(String),
    Metric { source: String, unit: Option<String>, resolved: Resolved },
}

/// Parser for nvidia-smi `--query-gpu` CSV logs.
#[derive(Debug, Clone)]
pub struct NvidiaSmiParser {
    names: Vec<String>,
    roles: Vec<Role>,
    default_time_ns: i64,
    utc_offset_s: i32,
}

/// Splits a header cell `utilization.gpu [%]` into (`utilization.gpu`, `Some("%")`).
pub fn split_unit(cell: &str) -> (&str, Option<&str>) {
    let cell = cell.trim();
    if let Some(open) = cell.rfind(" [")
        && let Some(unit) = cell[open + 2..].strip_suffix(']')
    {
        return (cell[..open].trim_end(), Some(unit));
    }
    (cell, None)
}

fn is_field_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_lowercase()
        && !s.ends_with('.')
        && !s.contains("..")
        && b.iter().all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'.')
}

/// Whether a header's cells (trimmed) look like an nvidia-smi `--query-gpu` header: every cell
/// a lower-case field name with an optional ` [unit]`, and some cell with a bracketed unit, or
/// a dotted field beside an identity field (`timestamp`, `index`, `name`, `uuid`, …).
pub fn looks_like_header(names: &[String]) -> bool {
    let cells: Vec<(&str, Option<&str>)> = names.iter().map(|n| split_unit(n)).collect();
    if cells.is_empty() || !cells.iter().all(|(b, u)| is_field_name(b) && u.is_none_or(|u| !u.is_empty())) {
        return false;
    }
    let unit = cells.iter().any(|(_, u)| u.is_some());
    let dotted = cells.iter().any(|(b, _)| b.contains('.'));
    let identity = cells
        .iter()
        .any(|(b, _)| matches!(*b, "timestamp" | "index" | "name" | "gpu_name" | "uuid" | "gpu_uuid" | "pci.bus_id"));
    unit || (dotted && identity)
}

impl NvidiaSmiParser {
    /// Reads the header line (the queried fields).
    pub fn from_header(header: &[u8], opts: &TelemetryOptions) -> Result<Self, FormatError> {
        let names = crate::header_names(header)?;
        let mut roles = Vec::with_capacity(names.len());
        for n in &names {
            let (base, unit) = split_unit(n);
            if base.is_empty() {
                return Err(FormatError::BadHeader { message: "an empty column name".into() });
            }
            let role = match base {
                "timestamp" => Role::Time,
                "index" => Role::Index,
                "uuid" | "gpu_uuid" => Role::Uuid,
                "name" | "gpu_name" => Role::Name,
                b if is_text_field(b) => Role::Label(b.to_string()),
                b => Role::Metric {
                    source: b.to_string(),
                    unit: unit.map(str::to_string),
                    resolved: Resolved::new(&opts.metrics, b, unit),
                },
            };
            roles.push(role);
        }
        Ok(NvidiaSmiParser { names, roles, default_time_ns: opts.default_time_ns, utc_offset_s: opts.utc_offset_s })
    }

    /// Parses the lines of `chunk` (after the header), the first being line `first_line`.
    pub fn parse_chunk(&self, chunk: &[u8], first_line: u64, out: &mut SampleBatchBuilder, rejects: &mut Vec<Reject>) {
        let mut cells: Vec<&str> = Vec::with_capacity(self.roles.len());
        for (n, raw) in crate::csv::lines(chunk, first_line) {
            if raw.trim_ascii().is_empty() {
                continue;
            }
            let Ok(line) = std::str::from_utf8(raw) else {
                rejects.push(Reject::new(n, None, "not UTF-8", raw));
                continue;
            };
            let line = line.strip_prefix('\u{feff}').unwrap_or(line);
            cells.clear();
            cells.extend(line.split(',').map(str::trim));
            if cells.len() == self.names.len() && cells.iter().zip(&self.names).all(|(c, h)| c == h) {
                continue; // the header again
            }
            if cells.len() != self.roles.len() {
                let reason = format!("expected {} fields, found {}", self.roles.len(), cells.len());
                rejects.push(Reject::new(n, None, reason, raw));
                continue;
            }
            let mut ctx = SampleContext::default();
            let mut time_ns = self.default_time_ns;
            let mut bad = None;
            for (role, cell) in self.roles.iter().zip(&cells) {
                let missing = is_no_value(cell);
                match role {
                    Role::Time => match parse_local_datetime(cell, self.utc_offset_s) {
                        Some(t) => time_ns = t,
                        None => {
                            bad = Some(("timestamp", format!("unparseable timestamp `{cell}`")));
                            break;
                        }
                    },
                    Role::Index if !missing => match cell.parse::<i32>() {
                        Ok(d) => ctx.device = Some(d),
                        Err(_) => {
                            bad = Some(("index", format!("not a device index: `{cell}`")));
                            break;
                        }
                    },
                    Role::Uuid if !missing => ctx.device_uuid = Some(cell.to_string()),
                    Role::Name if !missing => ctx.device_model = Some(cell.to_string()),
                    Role::Label(k) if !missing => ctx.labels.push((k.clone(), cell.to_string())),
                    _ => {}
                }
            }
            if let Some((field, reason)) = bad {
                rejects.push(Reject::new(n, Some(field), reason, raw));
                continue;
            }
            ctx.labels.sort_by(|a, b| a.0.cmp(&b.0));
            let ids = out.context(&ctx);
            for ((role, cell), name) in self.roles.iter().zip(&cells).zip(&self.names) {
                let Role::Metric { source, unit, resolved } = role else { continue };
                if is_no_value(cell) {
                    continue;
                }
                let (number, suffix) = cell.split_once(' ').map_or((*cell, ""), |(a, b)| (a, b.trim()));
                if !suffix.is_empty() && unit.as_deref() != Some(suffix) {
                    let expected = unit.as_deref().map_or("no unit".to_string(), |u| format!("`{u}`"));
                    let reason = format!("unit `{suffix}` differs from the header's ({expected})");
                    rejects.push(Reject::new(n, Some(name), reason, raw));
                    continue;
                }
                let Some(v) = parse_value(number) else {
                    rejects.push(Reject::new(n, Some(name), format!("not a number: `{cell}`"), raw));
                    continue;
                };
                let m = SampleMetric {
                    metric: &resolved.metric,
                    unit: resolved.unit,
                    kind: resolved.kind.map(|k| k.as_str()),
                    source_metric: source,
                };
                out.push(&ids, &m, time_ns, resolved.apply(v), n);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(h: &str) -> Vec<String> {
        crate::header_names(h.as_bytes()).unwrap()
    }

    #[test]
    fn header_detection() {
        assert!(looks_like_header(&names("timestamp, index, name, utilization.gpu [%], memory.used [MiB]")));
        assert!(looks_like_header(&names("utilization.gpu [%]")));
        assert!(looks_like_header(&names("timestamp, name, pci.bus_id, temperature.gpu")));
        assert!(!looks_like_header(&names("time,host,gpu,metric,value")));
        assert!(!looks_like_header(&names("TIMESTAMP,ContextTokens,GeneratedTokens")));
        assert!(!looks_like_header(&names("a.b, c")));
        assert!(!looks_like_header(&names("x [], y")));
    }

    #[test]
    fn units_split_from_names() {
        assert_eq!(split_unit(" memory.used [MiB] "), ("memory.used", Some("MiB")));
        assert_eq!(split_unit("temperature.gpu"), ("temperature.gpu", None));
        assert_eq!(
            split_unit("clocks_event_reasons_counters.sw_power_cap [us]"),
            ("clocks_event_reasons_counters.sw_power_cap", Some("us"))
        );
    }
}
