//! The metric map: source metric names (DCGM fields as dcgm-exporter names them, nvidia-smi
//! `--query-gpu` fields, …) → canonical metric, unit and kind, with the factor that converts a
//! value from its source unit. The shipped map is data, `pipelines/telemetry/metrics.toml`
//! (documented with its sources in `pipelines/telemetry/README.md`).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use serde::Deserialize;

use crate::FormatError;

/// The shipped map.
const BUILTIN: &str = include_str!("../../../../pipelines/telemetry/metrics.toml");

/// Whether a metric's value is a level or a running total.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricKind {
    /// A level sampled at `time` (utilization, memory used, power, a rate over the sampling
    /// interval).
    Gauge,
    /// A cumulative total since some start (resets when the device or exporter restarts).
    Counter,
}

impl MetricKind {
    /// The `kind` column's value.
    pub const fn as_str(self) -> &'static str {
        match self {
            MetricKind::Gauge => "gauge",
            MetricKind::Counter => "counter",
        }
    }
}

/// The canonical units of the `unit` column (besides `unknown`).
pub const CANONICAL_UNITS: &[&str] =
    &["ratio", "bytes", "bytes_per_s", "watts", "joules", "celsius", "hz", "seconds", "count"];

/// The unit of an unmapped metric's value, kept as written.
pub const UNKNOWN_UNIT: &str = "unknown";

/// How a value in a source unit becomes one in a canonical unit: `value × mul ÷ div` (one of
/// the two is 1, so a conversion rounds once: 87 % is exactly the f64 nearest 0.87).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Conversion {
    /// The canonical unit.
    pub unit: &'static str,
    mul: f64,
    div: f64,
}

impl Conversion {
    const fn new(unit: &'static str, mul: f64, div: f64) -> Self {
        Conversion { unit, mul, div }
    }

    /// The converted value.
    pub fn apply(self, v: f64) -> f64 {
        if self.div != 1.0 { v / self.div } else { v * self.mul }
    }

    /// The factor (`mul ÷ div`).
    pub fn factor(self) -> f64 {
        self.mul / self.div
    }
}

/// The conversion of a source unit (as metrics.toml's `source_unit`, a mapping's `unit`, or an
/// nvidia-smi header's `[unit]` spell it) to its canonical unit. Case-sensitive (`MB` is not
/// `Mb`); `None` for a unit not in this table. Decimal prefixes are powers of 1000
/// (`KB/s` = 1000 B/s), binary ones powers of 1024 (`MiB`).
pub fn conversion(source_unit: &str) -> Option<Conversion> {
    const KI: f64 = 1024.0;
    let c = Conversion::new;
    Some(match source_unit.trim() {
        "ratio" => c("ratio", 1.0, 1.0),
        "%" => c("ratio", 1.0, 100.0),
        "B" | "bytes" => c("bytes", 1.0, 1.0),
        "KiB" => c("bytes", KI, 1.0),
        "MiB" => c("bytes", KI * KI, 1.0),
        "GiB" => c("bytes", KI * KI * KI, 1.0),
        "KB" => c("bytes", 1e3, 1.0),
        "MB" => c("bytes", 1e6, 1.0),
        "GB" => c("bytes", 1e9, 1.0),
        "B/s" | "bytes_per_s" => c("bytes_per_s", 1.0, 1.0),
        "KiB/s" => c("bytes_per_s", KI, 1.0),
        "MiB/s" => c("bytes_per_s", KI * KI, 1.0),
        "GiB/s" => c("bytes_per_s", KI * KI * KI, 1.0),
        "KB/s" => c("bytes_per_s", 1e3, 1.0),
        "MB/s" => c("bytes_per_s", 1e6, 1.0),
        "GB/s" => c("bytes_per_s", 1e9, 1.0),
        "W" | "watts" => c("watts", 1.0, 1.0),
        "mW" => c("watts", 1.0, 1e3),
        "J" | "joules" => c("joules", 1.0, 1.0),
        "mJ" => c("joules", 1.0, 1e3),
        "C" | "celsius" => c("celsius", 1.0, 1.0),
        "Hz" | "hz" => c("hz", 1.0, 1.0),
        "KHz" | "kHz" => c("hz", 1e3, 1.0),
        "MHz" => c("hz", 1e6, 1.0),
        "GHz" => c("hz", 1e9, 1.0),
        "s" | "seconds" => c("seconds", 1.0, 1.0),
        "ms" => c("seconds", 1.0, 1e3),
        "us" => c("seconds", 1.0, 1e6),
        "ns" => c("seconds", 1.0, 1e9),
        "count" => c("count", 1.0, 1.0),
        _ => return None,
    })
}

/// [`conversion`] as (canonical unit, factor).
pub fn convert_unit(source_unit: &str) -> Option<(&'static str, f64)> {
    conversion(source_unit).map(|c| (c.unit, c.factor()))
}

/// One canonical metric and how a source spells it.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricDef {
    /// Canonical metric (`gpu_util`, `fb_used_bytes`, …).
    pub metric: String,
    /// Canonical unit of the converted value (one of [`CANONICAL_UNITS`]).
    pub unit: String,
    /// Gauge or counter.
    pub kind: MetricKind,
    /// The unit the source writes values in (see [`convert_unit`]).
    pub source_unit: String,
    /// Source value × `scale` = value in `unit`.
    pub scale: f64,
    /// The conversion itself (rounds once, see [`Conversion`]).
    pub conversion: Conversion,
    /// Source names mapped to this definition (as written in metrics.toml).
    pub names: Vec<String>,
    /// For people.
    pub description: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MapFile {
    version: u32,
    #[serde(default)]
    metric: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    metric: String,
    unit: String,
    kind: MetricKind,
    source_unit: String,
    names: Vec<String>,
    #[serde(default)]
    description: String,
    /// Where the name, unit and kind are documented (required: every entry cites one).
    #[allow(dead_code)]
    source: String,
}

/// Source metric name → [`MetricDef`], looked up case-insensitively.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricMap {
    defs: Vec<MetricDef>,
    by_name: HashMap<String, usize>,
}

impl MetricMap {
    /// The shipped map (`pipelines/telemetry/metrics.toml`), parsed once.
    pub fn builtin() -> Arc<MetricMap> {
        static MAP: OnceLock<Arc<MetricMap>> = OnceLock::new();
        MAP.get_or_init(|| Arc::new(MetricMap::parse(BUILTIN).expect("pipelines/telemetry/metrics.toml is valid")))
            .clone()
    }

    /// Parses a map in the format of `pipelines/telemetry/metrics.toml`: `version = 1` and
    /// `[[metric]]` tables with `metric`, `unit`, `kind` (`gauge` | `counter`), `source_unit`,
    /// `names`, `source` and an optional `description`. Every `source_unit` must convert to
    /// `unit` ([`convert_unit`]), and a name may be mapped once only.
    pub fn parse(toml: &str) -> Result<MetricMap, FormatError> {
        let bad = |message: String| FormatError::BadConfig { what: "metric map".into(), message };
        let file: MapFile = toml::from_str(toml).map_err(|e| bad(e.to_string()))?;
        if file.version != 1 {
            return Err(bad(format!("version {} is not supported (expected 1)", file.version)));
        }
        let mut defs = Vec::with_capacity(file.metric.len());
        let mut by_name = HashMap::new();
        for e in file.metric {
            let what = format!("metric `{}`", e.metric);
            if e.metric.is_empty()
                || !e.metric.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
            {
                return Err(bad(format!("{what}: canonical names are snake_case ([a-z0-9_]+)")));
            }
            if !CANONICAL_UNITS.contains(&e.unit.as_str()) {
                return Err(bad(format!("{what}: unit `{}` is not one of {}", e.unit, CANONICAL_UNITS.join(", "))));
            }
            let Some(conv) = conversion(&e.source_unit) else {
                return Err(bad(format!("{what}: unknown source_unit `{}`", e.source_unit)));
            };
            if conv.unit != e.unit {
                return Err(bad(format!(
                    "{what}: source_unit `{}` converts to {}, not {}",
                    e.source_unit, conv.unit, e.unit
                )));
            }
            if e.names.is_empty() {
                return Err(bad(format!("{what}: `names` is empty")));
            }
            for n in &e.names {
                if by_name.insert(n.to_ascii_lowercase(), defs.len()).is_some() {
                    return Err(bad(format!("{what}: name `{n}` is mapped twice")));
                }
            }
            defs.push(MetricDef {
                metric: e.metric,
                unit: e.unit,
                kind: e.kind,
                source_unit: e.source_unit,
                scale: conv.factor(),
                conversion: conv,
                names: e.names,
                description: e.description,
            });
        }
        Ok(MetricMap { defs, by_name })
    }

    /// The definition of a source metric name (case-insensitive), if mapped.
    pub fn lookup(&self, source_metric: &str) -> Option<&MetricDef> {
        let i = match self.by_name.get(source_metric) {
            Some(&i) => i,
            None => *self.by_name.get(&source_metric.to_ascii_lowercase())?,
        };
        Some(&self.defs[i])
    }

    /// Every definition, in file order.
    pub fn defs(&self) -> &[MetricDef] {
        &self.defs
    }
}

/// How one source metric becomes a canonical one: resolved once per column or series name.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Resolved {
    pub metric: String,
    pub unit: &'static str,
    pub kind: Option<MetricKind>,
    pub conversion: Conversion,
}

impl Resolved {
    /// Resolves `source` through `map`; `source_unit` (an nvidia-smi header's unit, a mapping's
    /// `unit`) overrides the map's when given. An unmapped name keeps its name, lower-cased, and
    /// its value as written in unit `unknown`, a counter when it ends in `_total` (the Prometheus
    /// naming convention for counters), else of unknown kind. A unit the converter does not know
    /// also leaves the value as written, in unit `unknown`.
    pub fn new(map: &MetricMap, source: &str, source_unit: Option<&str>) -> Resolved {
        let def = map.lookup(source);
        let kind = def.map(|d| d.kind).or_else(|| {
            let lower = source.to_ascii_lowercase();
            lower.ends_with("_total").then_some(MetricKind::Counter)
        });
        let metric = def.map_or_else(|| source.to_ascii_lowercase(), |d| d.metric.clone());
        let conv = match (source_unit, def) {
            (Some(u), Some(_)) => conversion(u),
            (None, Some(d)) => Some(d.conversion),
            (_, None) => None,
        };
        let conversion = conv.unwrap_or(Conversion::new(UNKNOWN_UNIT, 1.0, 1.0));
        Resolved { metric, unit: conversion.unit, kind, conversion }
    }

    /// The value in the canonical unit.
    pub fn apply(&self, v: f64) -> f64 {
        self.conversion.apply(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_map_parses_and_maps_the_issue_metrics() {
        let m = MetricMap::builtin();
        for (name, metric, unit, scale) in [
            ("DCGM_FI_DEV_GPU_UTIL", "gpu_util", "ratio", 0.01),
            ("DCGM_FI_PROF_SM_ACTIVE", "sm_active", "ratio", 1.0),
            ("DCGM_FI_PROF_SM_OCCUPANCY", "sm_occupancy", "ratio", 1.0),
            ("DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "tensor_active", "ratio", 1.0),
            ("DCGM_FI_PROF_PIPE_FP16_ACTIVE", "fp16_active", "ratio", 1.0),
            ("DCGM_FI_PROF_PIPE_FP32_ACTIVE", "fp32_active", "ratio", 1.0),
            ("DCGM_FI_PROF_PIPE_FP64_ACTIVE", "fp64_active", "ratio", 1.0),
            ("DCGM_FI_PROF_DRAM_ACTIVE", "dram_active", "ratio", 1.0),
            ("DCGM_FI_DEV_FB_USED", "fb_used_bytes", "bytes", 1048576.0),
            ("DCGM_FI_DEV_FB_FREE", "fb_free_bytes", "bytes", 1048576.0),
            ("DCGM_FI_PROF_NVLINK_TX_BYTES", "nvlink_tx_bytes", "bytes_per_s", 1.0),
            ("DCGM_FI_PROF_NVLINK_RX_BYTES", "nvlink_rx_bytes", "bytes_per_s", 1.0),
            ("DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL", "nvlink_bytes", "bytes_per_s", 1e6),
            ("DCGM_FI_PROF_PCIE_TX_BYTES", "pcie_tx_bytes", "bytes_per_s", 1.0),
            ("DCGM_FI_PROF_PCIE_RX_BYTES", "pcie_rx_bytes", "bytes_per_s", 1.0),
            ("DCGM_FI_DEV_POWER_USAGE", "power_w", "watts", 1.0),
            ("utilization.gpu", "gpu_util", "ratio", 0.01),
            ("memory.used", "fb_used_bytes", "bytes", 1048576.0),
            ("power.draw", "power_w", "watts", 1.0),
        ] {
            let d = m.lookup(name).unwrap_or_else(|| panic!("{name} is not mapped"));
            assert_eq!((d.metric.as_str(), d.unit.as_str(), d.scale), (metric, unit, scale), "{name}");
        }
        assert_eq!(m.lookup("dcgm_fi_dev_gpu_util").unwrap().metric, "gpu_util");
        assert_eq!(m.lookup("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION").unwrap().kind, MetricKind::Counter);
        assert!(m.lookup("node_load1").is_none());
    }

    #[test]
    fn resolution_rules() {
        let m = MetricMap::builtin();
        let r = Resolved::new(&m, "DCGM_FI_DEV_FB_USED", None);
        assert_eq!(
            (r.metric.as_str(), r.unit, r.apply(2.0), r.kind),
            ("fb_used_bytes", "bytes", 2097152.0, Some(MetricKind::Gauge))
        );
        // A header unit overrides the map's source unit.
        let r = Resolved::new(&m, "memory.used", Some("GiB"));
        assert_eq!((r.unit, r.apply(1.0)), ("bytes", 1073741824.0));
        assert_eq!(Resolved::new(&m, "utilization.gpu", Some("%")).apply(87.0), 0.87);
        let r = Resolved::new(&m, "node_network_receive_bytes_total", None);
        assert_eq!(
            (r.metric.as_str(), r.unit, r.apply(3.0), r.kind),
            ("node_network_receive_bytes_total", "unknown", 3.0, Some(MetricKind::Counter))
        );
        let r = Resolved::new(&m, "Clocks.Max.SM", Some("MHz"));
        assert_eq!((r.metric.as_str(), r.unit, r.apply(3.0), r.kind), ("clocks.max.sm", "unknown", 3.0, None));
        let r = Resolved::new(&m, "power.draw", Some("furlongs"));
        assert_eq!((r.metric.as_str(), r.unit, r.apply(3.0)), ("power_w", "unknown", 3.0));
    }

    #[test]
    fn bad_maps_are_refused_with_the_reason() {
        let err = |s: &str| MetricMap::parse(s).unwrap_err().to_string();
        let entry = |extra: &str| {
            format!(
                "version = 1\n[[metric]]\nmetric = \"x\"\nunit = \"ratio\"\nkind = \"gauge\"\nsource_unit = \"%\"\nnames = [\"A\"]\nsource = \"s\"\n{extra}"
            )
        };
        assert!(MetricMap::parse(&entry("")).is_ok());
        assert!(err(&entry("colour = 1")).contains("unknown field `colour`"));
        assert!(
            err(&entry("").replace("source_unit = \"%\"", "source_unit = \"W\""))
                .contains("converts to watts, not ratio")
        );
        assert!(err(&format!("{}\n{}", entry(""), &entry("")[12..])).contains("name `A` is mapped twice"));
        assert!(err("version = 2").contains("version 2 is not supported"));
        assert!(err(&entry("").replace("metric = \"x\"", "metric = \"X-y\"")).contains("snake_case"));
    }
}
