//! Cross-hardware projection: a measured workload taken from the device it was traced on to
//! another hardware profile, with every difference of the profile at once.
//!
//! It is the same projection a feature makes — a feature is a one-knob change of the baseline
//! ([`crate::machine::Machine::with`]), a hardware profile changes every knob — and goes through
//! the same code: [`MeasuredWorkload::time`] and [`crate::model::Component::project`]. Only the
//! split by category is added here.
//!
//! Busy time is GPU busy time as TraceLens defines it: the union of kernel, memcpy and memset
//! intervals (`kernel_category_time.busy_ns`, summed over ranks). Projected busy time is compute
//! busy time × the projected/measured ratio of the compute components, plus exposed
//! communication × that ratio of the communication components; idle time is projected apart.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::machine::Machine;
use crate::measured::MeasuredWorkload;
use crate::serving::ServingWorkload;

/// One category's time, measured on the source device and predicted on the target.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CategoryProjection {
    pub category: String,
    pub measured_ns: f64,
    pub predicted_ns: f64,
}

/// One workload projected onto another hardware profile.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkloadProjection {
    pub workload: String,
    /// "kernels" (a measured trace) or "requests" (the serving model on `from`).
    pub kind: String,
    /// Hardware profile ids.
    pub from: String,
    pub to: String,
    /// GPU busy time (kernels, copies, memsets; their union), summed over ranks: measured on
    /// `from` (modelled, for request workloads), and predicted on `to`.
    pub measured_busy_ns: f64,
    pub predicted_busy_ns: f64,
    /// The traced window (busy + idle), summed over ranks.
    pub measured_span_ns: f64,
    pub predicted_span_ns: f64,
    /// Busy time by category (compute categories; `communication (exposed)`), largest measured
    /// first. Category shares of busy time follow the kernel-time shares (overlaps spread).
    pub categories: Vec<CategoryProjection>,
    /// Share of the measured time the model cannot explain (left unchanged by the projection).
    pub unexplained_share: f64,
}

impl WorkloadProjection {
    /// predicted / measured busy time.
    pub fn speedup(&self) -> f64 {
        if self.predicted_busy_ns > 0.0 { self.measured_busy_ns / self.predicted_busy_ns } else { 1.0 }
    }
}

/// Projects a measured workload from its own device (`w.calib`) onto `to`.
pub fn project_measured(w: &MeasuredWorkload, to: &Machine) -> WorkloadProjection {
    let base = &w.calib;
    let mut cats: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    let compute_s: f64 = w.compute.iter().map(|c| c.seconds).sum();
    // Kernel time counts overlapping kernels each; busy time is their union: spread compute busy
    // time over the components by their kernel time.
    let scale = if compute_s > 0.0 { w.compute_busy_s / compute_s } else { 0.0 };
    for c in &w.compute {
        let e = cats.entry(c.category.clone()).or_default();
        e.0 += c.seconds * scale;
        e.1 += c.project(base, to) * scale;
    }
    let comm_s: f64 = w.comm.iter().map(|c| c.seconds).sum();
    if w.exposed_comm_s > 0.0 && comm_s > 0.0 {
        let ratio = w.comm.iter().map(|c| c.project(base, to)).sum::<f64>() / comm_s;
        cats.insert("communication (exposed)".into(), (w.exposed_comm_s, w.exposed_comm_s * ratio));
    } else if w.exposed_comm_s > 0.0 {
        cats.insert("communication (exposed)".into(), (w.exposed_comm_s, w.exposed_comm_s));
    }
    let categories = sorted(cats);
    let measured_busy = w.compute_busy_s + w.exposed_comm_s;
    let predicted_busy: f64 = categories.iter().map(|c| c.predicted_ns).sum::<f64>() * 1e-9;
    let predicted_span = w.time(to);
    WorkloadProjection {
        workload: w.name.clone(),
        kind: "kernels".into(),
        from: base.id.clone(),
        to: to.id.clone(),
        measured_busy_ns: measured_busy * 1e9,
        predicted_busy_ns: predicted_busy * 1e9,
        measured_span_ns: w.span_s * 1e9,
        predicted_span_ns: predicted_span * 1e9,
        categories,
        unexplained_share: w.coverage.shares().2,
    }
}

/// Projects a request workload, modelled by the serving model on `from`, onto `to` (per
/// request: the "measured" side is the model on `from`).
pub fn project_requests(name: &str, s: &ServingWorkload, from: &Machine, to: &Machine) -> WorkloadProjection {
    let (b0, b1) = (s.breakdown(from), s.breakdown(to));
    let mut cats: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for (p0, p1) in b0.parts.iter().zip(&b1.parts) {
        let e = cats.entry(p0.category.to_string()).or_default();
        e.0 += p0.seconds;
        e.1 += p1.seconds;
    }
    let categories = sorted(cats);
    WorkloadProjection {
        workload: name.to_string(),
        kind: "requests".into(),
        from: from.id.clone(),
        to: to.id.clone(),
        measured_busy_ns: b0.seconds * 1e9,
        predicted_busy_ns: b1.seconds * 1e9,
        measured_span_ns: b0.seconds * 1e9,
        predicted_span_ns: b1.seconds * 1e9,
        categories,
        unexplained_share: 0.0,
    }
}

/// (category → (measured s, predicted s)) as rows in ns, largest measured first.
fn sorted(cats: BTreeMap<String, (f64, f64)>) -> Vec<CategoryProjection> {
    let mut v: Vec<CategoryProjection> = cats
        .into_iter()
        .map(|(category, (m, p))| CategoryProjection { category, measured_ns: m * 1e9, predicted_ns: p * 1e9 })
        .collect();
    v.sort_by(|a, b| b.measured_ns.total_cmp(&a.measured_ns).then(a.category.cmp(&b.category)));
    v
}
