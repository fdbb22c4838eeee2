//! Kernel-trace workloads from the mined tables: measured time, split into components the
//! cost model can project (see [`crate::model`]).
//!
//! Per workload (all its trace files and ranks):
//! - `T` = Σ over ranks of the GPU span (kernel_category_time.span_ns): busy + idle.
//! - busy = Σ busy_ns (union of activities per device); of it, `exposed` communication
//!   (comm_compute_overlap.exposed_comm_ns) and the rest compute/memory work.
//! - compute work scales by r_c = Σ projected / Σ measured over the kernel_time_buckets rows
//!   that are not communication (calibrated roofline for rows with FLOPs and bytes, category
//!   attribution for the rest); exposed communication by r_comm over collective_bandwidth rows
//!   (latency + bandwidth part); idle time by the Host rule with the launch-related share from
//!   gpu_idle_time (host wait, kernel wait) and kernel_time_buckets.launch_ns.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::evidence::EvidenceRef;
use crate::machine::{Machine, Unit, normalize_dtype};
pub use crate::mined::Mined;
use crate::model::{Component, Resource, Scaling, Work, calibrated};

/// The (file, rank) key of a per-rank row.
fn rank_key(file: &Option<String>, rank: Option<f64>) -> (String, i64) {
    (file.clone().unwrap_or_default(), rank.unwrap_or(0.0) as i64)
}

/// Assumptions of the measured model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MeasuredAssumptions {
    /// Latency of one collective call, seconds (the part of its time no bandwidth change helps).
    pub collective_latency_s: f64,
    /// Dtype assumed for matrix kernels whose dtype is unknown.
    pub default_dtype: String,
}

impl Default for MeasuredAssumptions {
    fn default() -> Self {
        MeasuredAssumptions { collective_latency_s: 10e-6, default_dtype: "bf16".into() }
    }
}

/// How much of a workload's kernel time the model explains, and how.
///
/// Every second of GPU kernel time (Σ over activities, so overlapping ones count each) is
/// - *modelled*: projected from its FLOPs and bytes (a kernel whose launching op gave shapes,
///   whatever its name: calibrated roofline) or, for communication, from message sizes;
/// - *attributed*: a category rule (or the activity type) names the resource it is bound to,
///   without FLOPs or bytes (`attributed`, by category);
/// - *unexplained*: neither — `other` kernels without FLOPs or bytes, left unchanged by every
///   feature (the sensitivity analysis re-ranks with them compute-, memory- and
///   communication-bound); or all of it when the trace's device matches no hardware profile.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Coverage {
    /// Kernel time the split is of, seconds.
    pub kernel_s: f64,
    pub modelled_s: f64,
    /// (category, seconds), largest first.
    pub attributed: Vec<(String, f64)>,
    pub unexplained_s: f64,
    /// The largest unexplained kernels: (name, seconds), from `top_kernels`, largest first.
    pub unexplained_kernels: Vec<(String, f64)>,
    /// The trace's device matched no hardware profile: its times were calibrated on the
    /// baseline as if traced there, so none of it is explained.
    pub unknown_device: bool,
}

impl Coverage {
    pub fn attributed_s(&self) -> f64 {
        self.attributed.iter().map(|a| a.1).sum()
    }

    /// (modelled, attributed, unexplained) as shares of `kernel_s` (0–1; all 0 without kernels).
    pub fn shares(&self) -> (f64, f64, f64) {
        if self.kernel_s <= 0.0 {
            return (0.0, 0.0, 0.0);
        }
        let k = self.kernel_s;
        (self.modelled_s / k, self.attributed_s() / k, self.unexplained_s / k)
    }

    /// Marks the device unknown: every second becomes unexplained.
    pub fn unknown_device(&mut self) {
        self.unknown_device = true;
        self.unexplained_s = self.kernel_s;
        self.modelled_s = 0.0;
        self.attributed.clear();
    }
}

/// How the sensitivity analysis treats unexplained time in one of its runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnexplainedAs {
    /// Bound by the matrix peak of the default dtype.
    Compute,
    /// Bound by HBM bandwidth.
    Memory,
    /// Bandwidth-bound communication in a world-size group (at most 8).
    Communication,
}

/// A kernel-trace workload.
#[derive(Debug, Clone, Serialize)]
pub struct MeasuredWorkload {
    pub name: String,
    /// The machine the trace ran on (its device's profile; the baseline when none matched):
    /// measured times are calibrated against it, then projected onto other machines.
    pub calib: Machine,
    pub ranks: usize,
    /// Σ span over ranks, seconds.
    pub span_s: f64,
    pub compute_busy_s: f64,
    pub exposed_comm_s: f64,
    pub idle_s: f64,
    /// Share of idle time that launch overhead causes (0–1).
    pub idle_launch_share: f64,
    /// Non-communication kernel work (Σ seconds = measured kernel time, overlaps counted twice).
    pub compute: Vec<Component>,
    /// Communication kernels.
    pub comm: Vec<Component>,
    /// What the model explains of the kernel time.
    pub coverage: Coverage,
    /// Dtype assumed for matrix work of unknown dtype ([`MeasuredAssumptions::default_dtype`]).
    pub default_dtype: String,
    pub evidence: Vec<EvidenceRef>,
}

fn matrix_category(c: &str) -> bool {
    matches!(c, "gemm" | "attention" | "conv")
}

impl MeasuredWorkload {
    /// Builds workload `name` from the mined rows; `None` when it has no kernel rows.
    pub fn build(name: &str, mined: &Mined, calib: &Machine, a: &MeasuredAssumptions) -> Option<MeasuredWorkload> {
        let base = calib;
        let ours = |w: &Option<String>| w.as_deref() == Some(name);
        let mut evidence = Vec::new();
        // Ranks: span and busy per (file, rank).
        let mut ranks: BTreeMap<(String, i64), (f64, f64)> = BTreeMap::new();
        for r in mined.kernel_category_time.iter().filter(|r| ours(&r.workload)) {
            let key = rank_key(&r.file, r.rank);
            ranks.insert(key, (r.span_ns.unwrap_or(0.0) * 1e-9, r.busy_ns.unwrap_or(0.0) * 1e-9));
        }
        if ranks.is_empty() {
            return None;
        }
        let span_s: f64 = ranks.values().map(|v| v.0).sum();
        let busy_s: f64 = ranks.values().map(|v| v.1).sum();
        evidence.push(EvidenceRef::new(
            "kernel_category_time",
            format!("workload={name}"),
            "span_ns (Σ over ranks)",
            span_s * 1e9,
            "ns",
            "workload time on the baseline",
        ));
        let exposed_comm_s: f64 = mined
            .comm_compute_overlap
            .iter()
            .filter(|r| ours(&r.workload))
            .filter_map(|r| r.exposed_comm_ns)
            .sum::<f64>()
            * 1e-9
            + 0.0;
        if exposed_comm_s > 0.0 {
            evidence.push(EvidenceRef::new(
                "comm_compute_overlap",
                format!("workload={name}"),
                "exposed_comm_ns (Σ)",
                exposed_comm_s * 1e9,
                "ns",
                "communication time not hidden by compute",
            ));
        }
        let idle_s = (span_s - busy_s).max(0.0);
        // Launch-related share of idle: per rank, the main stream's kernel-wait share plus its
        // host-wait share × the share of the span the host spends in launch calls.
        let mut launch_ns: BTreeMap<(String, i64), f64> = BTreeMap::new();
        let buckets: Vec<_> = mined.kernel_time_buckets.iter().filter(|r| ours(&r.workload)).collect();
        for r in &buckets {
            *launch_ns.entry(rank_key(&r.file, r.rank)).or_default() += r.launch_ns.unwrap_or(0.0);
        }
        let mut main_stream: BTreeMap<(String, i64), (f64, f64, f64)> = BTreeMap::new();
        for r in mined.gpu_idle_time.iter().filter(|r| ours(&r.workload)) {
            let active = r.active_ns.unwrap_or(0.0);
            let entry = main_stream.entry(rank_key(&r.file, r.rank)).or_insert((-1.0, 0.0, 0.0));
            if active > entry.0 {
                *entry = (active, r.host_wait_share.unwrap_or(0.0), r.kernel_wait_share.unwrap_or(0.0));
            }
        }
        let mut weighted = 0.0;
        for (key, (span, busy)) in &ranks {
            let idle = (span - busy).max(0.0);
            let (_, host, kernel) = main_stream.get(key).copied().unwrap_or((0.0, 0.0, 0.0));
            let launch_share_of_span =
                if *span > 0.0 { (launch_ns.get(key).copied().unwrap_or(0.0) * 1e-9 / span).min(1.0) } else { 0.0 };
            weighted += idle * (kernel + host * launch_share_of_span);
        }
        let idle_launch_share = if idle_s > 0.0 { (weighted / idle_s).clamp(0.0, 1.0) } else { 0.0 };
        if idle_s > 0.0 {
            evidence.push(EvidenceRef::new(
                "gpu_idle_time",
                format!("workload={name}"),
                "launch-related share of idle",
                idle_launch_share,
                "ratio",
                "idle time launch overhead causes",
            ));
        }

        // Compute kernels: one component per bucket row, merged over files and ranks.
        let mut compute = Vec::new();
        let mut comm_kernel_s = 0.0;
        // (category, dtype, activity, bucket) → (seconds, flops, bytes, units)
        type Key = (String, String, String, Option<i64>);
        let mut merged: BTreeMap<Key, (f64, f64, f64, f64)> = BTreeMap::new();
        for r in &buckets {
            let category = r.category.as_deref().unwrap_or("other").to_string();
            let seconds = r.total_ns.unwrap_or(0.0) * 1e-9;
            if category == "communication" {
                comm_kernel_s += seconds;
                continue;
            }
            let dtype = r.dtype.as_deref().and_then(normalize_dtype).unwrap_or(&a.default_dtype).to_string();
            let activity = r.activity.as_deref().unwrap_or("kernel").to_string();
            let bucket = r.intensity_bucket.map(|b| b as i64);
            let e = merged.entry((category, dtype, activity, bucket)).or_default();
            e.0 += seconds;
            e.1 += r.flops.unwrap_or(0.0);
            e.2 += r.bytes.unwrap_or(0.0);
            e.3 += r.units.or(r.kernels).unwrap_or(0.0);
        }
        for ((category, dtype, activity, bucket), (seconds, flops, bytes, kernels)) in merged {
            if seconds <= 0.0 {
                continue;
            }
            let unit = if matrix_category(&category) { Unit::Matrix } else { Unit::Vector };
            let c = match bucket {
                Some(b) if flops > 0.0 && bytes > 0.0 => calibrated(
                    format!("{category} {dtype} (intensity ≈ {:.3} FLOP/B, bucket {b})", flops / bytes),
                    category.clone(),
                    seconds,
                    Work {
                        flops,
                        bytes,
                        dtype: &dtype,
                        unit,
                        working_set: if kernels > 0.0 { bytes / kernels } else { 0.0 },
                    },
                    base,
                ),
                _ => {
                    let scaling = match (category.as_str(), activity.as_str()) {
                        (_, "memcpy") if !category.ends_with("dtod") => Scaling::Fixed,
                        (c, _) if matrix_category(c) => Scaling::Bound { resource: Resource::Matrix(dtype.clone()) },
                        ("other", _) => Scaling::Fixed,
                        _ => Scaling::Bound { resource: Resource::Hbm },
                    };
                    Component {
                        name: format!("{category} {dtype} ({activity}, FLOPs unknown)"),
                        category: category.clone(),
                        seconds,
                        scaling,
                    }
                }
            };
            compute.push(c);
        }
        let compute_s: f64 = compute.iter().map(|c| c.seconds).sum();
        evidence.push(EvidenceRef::new(
            "kernel_time_buckets",
            format!("workload={name}, category≠communication"),
            "total_ns (Σ)",
            compute_s * 1e9,
            "ns",
            "compute and memory kernel time the roofline projects",
        ));

        // Communication: latency + bandwidth part per collective_bandwidth row.
        let mut comm = Vec::new();
        for r in mined.collective_bandwidth.iter().filter(|r| ours(&r.workload)) {
            let t = r.time_ns.unwrap_or(0.0) * 1e-9;
            if t <= 0.0 {
                continue;
            }
            let calls = r.calls.unwrap_or(1.0);
            let latency = (calls * a.collective_latency_s).min(t);
            let collective = r.collective.as_deref().unwrap_or("unknown").to_string();
            let group = r.group_size.unwrap_or(2.0).max(2.0) as u32;
            comm.push(Component {
                name: format!("{collective} ×{} (group {group}, ≥{} B)", calls, r.size_bucket_bytes.unwrap_or(0.0)),
                category: "communication".into(),
                seconds: t,
                scaling: Scaling::Comm { latency_s: latency, bandwidth_s: t - latency, collective, group },
            });
        }
        let listed: f64 = comm.iter().map(|c| c.seconds).sum();
        if listed > 0.0 {
            evidence.push(EvidenceRef::new(
                "collective_bandwidth",
                format!("workload={name}"),
                "time_ns (Σ)",
                listed * 1e9,
                "ns",
                "communication kernel time with message sizes (latency + bandwidth parts)",
            ));
        }
        if comm_kernel_s > listed * 1.001 {
            // Communication kernels without message sizes: all bandwidth, world-size group.
            let group = ranks.len().max(2) as u32;
            comm.push(Component {
                name: "communication without message sizes".into(),
                category: "communication".into(),
                seconds: comm_kernel_s - listed,
                scaling: Scaling::Comm {
                    latency_s: 0.0,
                    bandwidth_s: comm_kernel_s - listed,
                    collective: "unknown".into(),
                    group: group.min(8),
                },
            });
            evidence.push(EvidenceRef::new(
                "kernel_time_buckets",
                format!("workload={name}, category=communication"),
                "total_ns (Σ)",
                comm_kernel_s * 1e9,
                "ns",
                "communication kernel time (message sizes unknown: all bandwidth-bound)",
            ));
        }
        let mut coverage = Coverage::default();
        let mut attributed: BTreeMap<String, f64> = BTreeMap::new();
        for c in compute.iter().chain(&comm) {
            coverage.kernel_s += c.seconds;
            match &c.scaling {
                Scaling::Roofline { .. } => coverage.modelled_s += c.seconds,
                Scaling::Comm { collective, .. } if collective != "unknown" => coverage.modelled_s += c.seconds,
                Scaling::Fixed if c.category == "other" => coverage.unexplained_s += c.seconds,
                _ => *attributed.entry(c.category.clone()).or_default() += c.seconds,
            }
        }
        coverage.attributed = attributed.into_iter().collect();
        coverage.attributed.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let mut unexplained: Vec<(String, f64)> = mined
            .top_kernels
            .iter()
            .filter(|r| ours(&r.workload) && r.category.as_deref().unwrap_or("other") == "other")
            .filter(|r| r.activity.as_deref().is_none_or(|a| a == "kernel"))
            .map(|r| (r.name.clone().unwrap_or_default(), r.total_ns.unwrap_or(0.0) * 1e-9))
            .collect();
        unexplained.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        unexplained.truncate(5);
        coverage.unexplained_kernels = unexplained;
        Some(MeasuredWorkload {
            name: name.to_string(),
            calib: calib.clone(),
            ranks: ranks.len(),
            span_s,
            compute_busy_s: (busy_s - exposed_comm_s).max(0.0),
            exposed_comm_s,
            idle_s,
            idle_launch_share,
            compute,
            comm,
            coverage,
            default_dtype: a.default_dtype.clone(),
            evidence,
        })
    }

    /// A copy whose unexplained time (`other` kernels without FLOPs or bytes) is bound as
    /// `how` says instead of unchanged: one run of the sensitivity analysis.
    pub fn with_unexplained_as(&self, how: UnexplainedAs) -> MeasuredWorkload {
        let mut w = self.clone();
        let group = self.ranks.clamp(2, 8) as u32;
        for c in &mut w.compute {
            if c.category == "other" && c.scaling == Scaling::Fixed {
                c.scaling = match how {
                    UnexplainedAs::Compute => Scaling::Bound { resource: Resource::Matrix(self.default_dtype.clone()) },
                    UnexplainedAs::Memory => Scaling::Bound { resource: Resource::Hbm },
                    UnexplainedAs::Communication => {
                        Scaling::Comm { latency_s: 0.0, bandwidth_s: c.seconds, collective: "unknown".into(), group }
                    }
                };
            }
        }
        w
    }

    /// Workload time on `m` (= `span_s` on the machine it was traced on).
    pub fn time(&self, m: &Machine) -> f64 {
        let base = &self.calib;
        let ratio = |cs: &[Component]| {
            let before: f64 = cs.iter().map(|c| c.seconds).sum();
            if before > 0.0 { cs.iter().map(|c| c.project(base, m)).sum::<f64>() / before } else { 1.0 }
        };
        let idle = Component {
            name: "idle".into(),
            category: "idle".into(),
            seconds: self.idle_s,
            scaling: Scaling::Host { launch_share: self.idle_launch_share },
        };
        self.compute_busy_s * ratio(&self.compute) + self.exposed_comm_s * ratio(&self.comm) + idle.project(base, m)
    }

    /// Seconds per category on the baseline (compute kernels, exposed communication, idle).
    pub fn by_category(&self) -> Vec<(String, f64)> {
        let mut m: BTreeMap<String, f64> = BTreeMap::new();
        for c in &self.compute {
            *m.entry(c.category.clone()).or_default() += c.seconds;
        }
        if self.exposed_comm_s > 0.0 {
            m.insert("communication (exposed)".into(), self.exposed_comm_s);
        }
        if self.idle_s > 0.0 {
            m.insert("idle".into(), self.idle_s);
        }
        let mut v: Vec<(String, f64)> = m.into_iter().collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1));
        v
    }
}
