//! The workload cost model: a workload is a list of [`Component`]s, each a piece of measured or
//! modelled accelerator time with the rule that projects it onto another [`Machine`].
//!
//! Rules ([`Scaling`]), with `P` peak FLOP/s of the unit and dtype, `W` HBM bandwidth:
//! - `Roofline { flops F, bytes B, eff η }`: t = max(F / P, B / W) / η. For measured kernels η is
//!   calibrated so the baseline reproduces the measured time exactly (η = max(F/P, B/W) / t);
//!   for modelled serving work η is an assumption (pipeline config). A precision change moves
//!   `F` to the narrower dtype's peak and scales the bytes of stored tensors by the width
//!   ratio; an SRAM change serves `B` on chip (memory term dropped) when the working set
//!   `ws` fits the new SRAM but did not fit the old.
//! - `Bound { resource }`: measured time of work whose FLOPs/bytes are unknown, attributed by
//!   category to one resource (matrix peak of its dtype, vector peak, HBM bandwidth): t' =
//!   t · old / new.
//! - `Comm { latency, bandwidth part, collective, group }`: t' = latency + bandwidth part ·
//!   (link / link') · offload, where offload = n / (2(n−1)) for all-reduce when collectives are
//!   offloaded (each device sends its data once instead of 2(n−1)/n times), else 1.
//! - `Host { launch share s }`: idle time the host causes; t' = t · (1 − s·(1 − launch')),
//!   launch' the launch-overhead multiplier.
//! - `Fixed`: time no feature here changes (host-link copies, unattributed idle).

use serde::Serialize;

use crate::machine::{Machine, Unit};

/// What a component's time depends on.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "rule")]
pub enum Scaling {
    Roofline {
        flops: f64,
        bytes: f64,
        /// Normalized dtype of the work.
        dtype: String,
        unit: Unit,
        /// Efficiency η (0–1].
        eff: f64,
        /// Per-kernel working set, bytes (for the SRAM rule); 0 = never fits.
        working_set: f64,
        /// Whether a precision change applies (matrix work and its stored tensors).
        precision_eligible: bool,
    },
    Bound {
        resource: Resource,
    },
    Comm {
        latency_s: f64,
        bandwidth_s: f64,
        /// Normalized collective name (allreduce, allgather, ...).
        collective: String,
        group: u32,
    },
    Host {
        launch_share: f64,
    },
    Fixed,
}

/// The one resource a `Bound` component is attributed to.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "dtype")]
pub enum Resource {
    Matrix(String),
    Vector,
    Hbm,
}

/// A piece of a workload's accelerator time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Component {
    /// e.g. "gemm bf16 (intensity 730 FLOP/B)".
    pub name: String,
    /// Category for the report (gemm, attention, communication, idle, ...).
    pub category: String,
    /// Seconds on the baseline machine (per request for serving, per trace window for kernels).
    pub seconds: f64,
    pub scaling: Scaling,
}

impl Component {
    /// Seconds on `m`, the component being `seconds` long on `base`.
    pub fn project(&self, base: &Machine, m: &Machine) -> f64 {
        match &self.scaling {
            Scaling::Roofline { flops, bytes, dtype, unit, eff, working_set, precision_eligible } => {
                let (m_dtype, bytes_new) = if *precision_eligible {
                    (m.effective_dtype(dtype).to_string(), bytes * m.bytes_factor(dtype))
                } else {
                    (dtype.clone(), *bytes)
                };
                let p_new = m.peak(*unit, &m_dtype);
                let fits_now = *working_set > 0.0
                    && m.sram.is_some_and(|s| *working_set <= s)
                    && !base.sram.is_some_and(|s| *working_set <= s);
                let mem = if fits_now { 0.0 } else { bytes_new / m.hbm_bandwidth };
                (flops / p_new).max(mem) / eff
            }
            Scaling::Bound { resource } => {
                let ratio = match resource {
                    Resource::Matrix(d) => base.peak(Unit::Matrix, d) / m.peak(Unit::Matrix, d),
                    Resource::Vector => base.peak(Unit::Vector, "fp32") / m.peak(Unit::Vector, "fp32"),
                    Resource::Hbm => base.hbm_bandwidth / m.hbm_bandwidth,
                };
                self.seconds * ratio
            }
            Scaling::Comm { latency_s, bandwidth_s, collective, group } => {
                let link = match (base.link_bandwidth(*group), m.link_bandwidth(*group)) {
                    (Some(b), Some(n)) => b / n,
                    _ => 1.0,
                };
                let n = (*group).max(2) as f64;
                let offload = if m.collective_offload && !base.collective_offload && collective == "allreduce" {
                    n / (2.0 * (n - 1.0))
                } else {
                    1.0
                };
                latency_s + bandwidth_s * link * offload
            }
            Scaling::Host { launch_share } => {
                let rel = m.launch_overhead / base.launch_overhead;
                self.seconds * (1.0 - launch_share.clamp(0.0, 1.0) * (1.0 - rel))
            }
            Scaling::Fixed => self.seconds,
        }
    }

    /// Roofline bound class on `m`: "compute", "memory", or "n/a".
    pub fn bound(&self, m: &Machine) -> &'static str {
        match &self.scaling {
            Scaling::Roofline { flops, bytes, dtype, unit, .. } => {
                if flops / m.peak(*unit, dtype) >= bytes / m.hbm_bandwidth { "compute" } else { "memory" }
            }
            Scaling::Bound { resource: Resource::Hbm } => "memory",
            Scaling::Bound { .. } => "compute",
            Scaling::Comm { .. } => "communication",
            Scaling::Host { .. } => "host",
            Scaling::Fixed => "n/a",
        }
    }
}

/// The shape of a piece of measured work.
#[derive(Debug, Clone, Copy)]
pub struct Work<'a> {
    pub flops: f64,
    pub bytes: f64,
    pub dtype: &'a str,
    pub unit: Unit,
    /// Bytes one kernel (op) touches, for the SRAM rule.
    pub working_set: f64,
}

/// A calibrated roofline component for measured work: η set so the baseline gives `seconds`.
pub fn calibrated(name: String, category: String, seconds: f64, work: Work, base: &Machine) -> Component {
    let Work { flops, bytes, dtype, unit, working_set } = work;
    let ideal = (flops / base.peak(unit, dtype)).max(bytes / base.hbm_bandwidth);
    let eff = if seconds > 0.0 { ideal / seconds } else { 1.0 };
    let precision_eligible = unit == Unit::Matrix;
    Component {
        name,
        category,
        seconds,
        scaling: Scaling::Roofline {
            flops,
            bytes,
            dtype: dtype.to_string(),
            unit,
            eff,
            working_set,
            precision_eligible,
        },
    }
}

/// Time of `components` on `m`.
pub fn total(components: &[Component], base: &Machine, m: &Machine) -> f64 {
    components.iter().map(|c| c.project(base, m)).sum()
}
