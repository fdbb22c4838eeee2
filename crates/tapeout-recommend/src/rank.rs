//! Projection and ranking: every feature applied to the baseline machine, every workload's time
//! re-computed, fleet time saved = Σ share_w · (1 − T'_w / T_w). `rank` orders by fleet time
//! saved (benefit only); `per_cost_rank` by time saved per unit cost. Sensitivity re-ranks
//! under perturbed assumptions, one at a time.

use serde::Serialize;

use crate::evidence::EvidenceRef;
use crate::features::Feature;
use crate::machine::Machine;
use crate::measured::MeasuredWorkload;
use crate::serving::ServingWorkload;

/// A workload the fleet runs.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Workload {
    /// A request-level serving trace, modelled.
    Requests { name: String, requests: u64, model_id: String, serving: ServingWorkload, evidence: Vec<EvidenceRef> },
    /// A measured kernel trace.
    Kernels { name: String, measured: MeasuredWorkload },
}

impl Workload {
    pub fn name(&self) -> &str {
        match self {
            Workload::Requests { name, .. } | Workload::Kernels { name, .. } => name,
        }
    }

    /// Time on `m` (seconds per request, or per trace window).
    pub fn time(&self, m: &Machine) -> f64 {
        match self {
            Workload::Requests { serving, .. } => serving.breakdown(m).seconds,
            Workload::Kernels { measured, .. } => measured.time(m),
        }
    }

    pub fn evidence(&self) -> &[EvidenceRef] {
        match self {
            Workload::Requests { evidence, .. } => evidence,
            Workload::Kernels { measured, .. } => &measured.evidence,
        }
    }

    /// Share of baseline time by bound class ("compute", "memory", "communication", "host"...).
    pub fn bound_shares(&self, base: &Machine) -> Vec<(String, f64)> {
        let mut acc: std::collections::BTreeMap<String, f64> = Default::default();
        match self {
            Workload::Requests { serving, .. } => {
                for p in serving.breakdown(base).parts {
                    *acc.entry(p.bound.to_string()).or_default() += p.seconds;
                }
            }
            Workload::Kernels { measured, .. } => {
                let compute: f64 = measured.compute.iter().map(|c| c.seconds).sum();
                for c in &measured.compute {
                    let share = if compute > 0.0 { c.seconds / compute } else { 0.0 };
                    *acc.entry(c.bound(&measured.calib).to_string()).or_default() += share * measured.compute_busy_s;
                }
                *acc.entry("communication".into()).or_default() += measured.exposed_comm_s;
                *acc.entry("idle".into()).or_default() += measured.idle_s;
            }
        }
        let total: f64 = acc.values().sum();
        acc.into_iter().filter(|(_, v)| *v > 0.0).map(|(k, v)| (k, if total > 0.0 { v / total } else { 0.0 })).collect()
    }
}

/// One feature's projection.
#[derive(Debug, Clone, Serialize)]
pub struct Projection {
    pub feature: String,
    pub step: String,
    pub cost: f64,
    /// Fleet time saved, 0–1.
    pub time_saved_fraction: f64,
    pub fleet_speedup: f64,
    pub per_cost: f64,
    /// (workload, time saved 0–1).
    pub by_workload: Vec<(String, f64)>,
}

/// Projects every feature; `shares` are fleet shares per workload (same order, sum 1).
pub fn project(workloads: &[Workload], shares: &[f64], base: &Machine, features: &[Feature]) -> Vec<Projection> {
    let baseline: Vec<f64> = workloads.iter().map(|w| w.time(base)).collect();
    features
        .iter()
        .map(|f| {
            let m = base.with(&f.change);
            let by_workload: Vec<(String, f64)> = workloads
                .iter()
                .zip(&baseline)
                .map(|(w, t0)| {
                    let t1 = w.time(&m);
                    (w.name().to_string(), if *t0 > 0.0 { 1.0 - t1 / t0 } else { 0.0 })
                })
                .collect();
            let saved: f64 = by_workload.iter().zip(shares).map(|((_, s), share)| s * share).sum();
            Projection {
                feature: f.id.clone(),
                step: f.step.clone(),
                cost: f.cost,
                time_saved_fraction: saved,
                fleet_speedup: 1.0 / (1.0 - saved).max(1e-9),
                per_cost: saved / f.cost,
                by_workload,
            }
        })
        .collect()
}

/// Ranks (1 = best) of `values` in descending order; ties keep input order.
pub fn ranks_desc(values: &[f64]) -> Vec<u32> {
    let mut idx: Vec<usize> = (0..values.len()).collect();
    idx.sort_by(|a, b| values[*b].total_cmp(&values[*a]).then(a.cmp(b)));
    let mut r = vec![0; values.len()];
    for (pos, i) in idx.into_iter().enumerate() {
        r[i] = pos as u32 + 1;
    }
    r
}
