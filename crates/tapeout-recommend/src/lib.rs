//! tapeout's recommender: which chip features would buy the fleet the most time.
//!
//! A tour:
//! - [`machine::Machine`]: a hardware profile's figures (peak FLOP/s per dtype and unit, HBM,
//!   SRAM, links) and [`machine::Machine::with`] applying a feature's [`features::Change`].
//! - [`features::Feature`]: candidate features from `pipelines/features/*.toml`.
//! - [`model::Component`]: a piece of accelerator time and the rule projecting it onto another
//!   machine (calibrated roofline, bound resource, communication, host launch, fixed).
//! - [`serving::ServingWorkload`]: request-level traces, modelled operator by operator the way
//!   LLM-Viewer does (prefill + decode, KV cache, GQA, MoE, tensor parallelism).
//! - [`measured::MeasuredWorkload`]: kernel traces, built from the mined tables.
//! - [`rank`]: projection of every feature on every workload, fleet-weighted, and ranking;
//!   [`recommend`] adds sensitivity and evidence and returns [`Recommendations`], which
//!   serializes to `recommendations.json` and renders to `recommendations.md`
//!   ([`Recommendations::to_markdown`]).
//!
//! Formulas and assumptions: docs/model.md.

pub mod evidence;
pub mod features;
pub mod machine;
pub mod measured;
pub mod mined;
pub mod model;
pub mod project;
pub mod rank;
pub mod serving;

use serde::Serialize;

use crate::evidence::EvidenceRef;
use crate::features::Feature;
use crate::machine::Machine;
use crate::model::Scaling;
use crate::rank::{Workload, project, ranks_desc};

/// Format version of `recommendations.json`.
pub const FORMAT_VERSION: u32 = 1;

/// Errors of the recommender.
#[derive(Debug, thiserror::Error)]
pub enum RecommendError {
    #[error(transparent)]
    Pipelines(#[from] tapeout_pipelines::PipelinesError),
    #[error(transparent)]
    Hardware(#[from] machine::MissingFigure),
    #[error("{0}")]
    Input(String),
    /// Weights plus one request's KV cache at the mean context exceed the usable device memory
    /// at the tensor-parallel degree ([`serving::ServingWorkload::deploy`]).
    #[error(
        "{model} ({dtype}) does not fit on {hardware} at tensor parallel {tensor_parallel}: {needed_bytes} bytes needed per device, {available_bytes} bytes available{detail}"
    )]
    Infeasible {
        model: String,
        dtype: String,
        hardware: String,
        tensor_parallel: u32,
        needed_bytes: u64,
        available_bytes: u64,
        /// What the bytes are made of, and which degree would fit.
        detail: String,
    },
}

/// Where a workload's fleet share comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ShareSource {
    /// The pipeline's `[fleet]` table (or a test's input).
    Config,
    /// Device-hours measured by device telemetry (`device_hours`).
    Telemetry,
    /// Neither: weight 1 without telemetry, the mean of the other weights with it.
    Equal,
}

/// A workload's line in the output.
#[derive(Debug, Clone, Serialize)]
pub struct WorkloadSummary {
    pub name: String,
    /// "requests" | "kernels".
    pub kind: String,
    pub fleet_share: f64,
    /// Where `fleet_share` comes from.
    pub fleet_share_source: ShareSource,
    /// The bound class device counters give for the workload (`device_bound_class`), when
    /// telemetry covers it, and whether it disagrees with the trace- or model-derived classes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counter_bound_class: Option<CounterBoundClass>,
    /// Baseline time and its unit.
    pub baseline_seconds: f64,
    pub unit: String,
    /// Share of baseline time by bound class.
    pub bound_classes: Vec<(String, f64)>,
    /// What was assumed or measured (model, batch, ranks...).
    pub description: String,
    /// What the model explains of the workload's time.
    pub coverage: CoverageLine,
}

/// The counter-based bound class of a workload, beside the trace- or model-derived one.
#[derive(Debug, Clone, Serialize)]
pub struct CounterBoundClass {
    /// `memory_bound`, `compute_bound`, `underutilized`, `latency_bound`, `low_activity`,
    /// `idle`, `unknown` (per device model: `device_model: class`, joined by `; ` when several).
    pub class: String,
    /// The counters the class rests on, and those missing.
    pub basis: String,
    /// The counters disagree with the dominant trace- or model-derived class (memory vs
    /// compute).
    pub disagrees: bool,
}

/// A workload's coverage: shares (0–1) of its GPU kernel time that the model projects from
/// FLOPs and bytes (or message sizes), attributes by a category rule, or cannot explain
/// ([`measured::Coverage`]). A request workload is modelled whole by the serving model.
#[derive(Debug, Clone, Serialize)]
pub struct CoverageLine {
    pub modelled: f64,
    pub attributed: f64,
    /// (category, share), largest first.
    pub attributed_by: Vec<(String, f64)>,
    pub unexplained: f64,
    /// The largest unexplained kernels: (name, seconds of kernel time), largest first.
    pub unexplained_kernels: Vec<(String, f64)>,
    /// The trace's device matched no hardware profile (then all of it is unexplained).
    pub unknown_device: bool,
}

impl CoverageLine {
    fn of(w: &Workload) -> CoverageLine {
        match w {
            Workload::Requests { .. } => CoverageLine {
                modelled: 1.0,
                attributed: 0.0,
                attributed_by: Vec::new(),
                unexplained: 0.0,
                unexplained_kernels: Vec::new(),
                unknown_device: false,
            },
            Workload::Kernels { measured, .. } => {
                let c = &measured.coverage;
                let (modelled, attributed, unexplained) = c.shares();
                let k = c.kernel_s.max(1e-300);
                CoverageLine {
                    modelled,
                    attributed,
                    attributed_by: c.attributed.iter().map(|(n, s)| (n.clone(), s / k)).collect(),
                    unexplained,
                    unexplained_kernels: c.unexplained_kernels.clone(),
                    unknown_device: c.unknown_device,
                }
            }
        }
    }
}

/// Coverage over the fleet (each workload's shares weighted by its fleet share), and what
/// unexplained time could do to the ranking.
#[derive(Debug, Clone, Serialize)]
pub struct FleetCoverage {
    pub modelled: f64,
    pub attributed: f64,
    pub unexplained: f64,
    /// The top feature when unexplained time is treated as compute-, memory- or
    /// communication-bound instead of unchanged: (treatment, feature). Empty without
    /// unexplained time.
    pub top_with_unexplained_as: Vec<(String, String)>,
    /// Some treatment of unexplained time puts another feature first.
    pub unexplained_could_change_top: bool,
}

/// One ranked feature.
#[derive(Debug, Clone, Serialize)]
pub struct Recommendation {
    pub rank: u32,
    pub feature: String,
    pub step: String,
    pub cost: f64,
    pub fleet_speedup: f64,
    pub time_saved_fraction: f64,
    pub per_cost: f64,
    pub per_cost_rank: u32,
    /// Share of perturbed runs in which the feature kept its rank (0–1).
    pub rank_stability: f64,
    pub best_rank: u32,
    pub worst_rank: u32,
    /// Share of perturbed cost runs (each feature's cost ×0.5 and ×2) in which it kept its
    /// per-cost rank.
    pub per_cost_rank_stability: f64,
    /// (workload, time saved 0–1).
    pub by_workload: Vec<WorkloadSaving>,
    /// Share of baseline fleet time in work this feature changes.
    pub share_of_time_affected: f64,
    pub evidence: Vec<EvidenceItem>,
}

#[derive(Debug, Clone, Serialize)]
pub struct WorkloadSaving {
    pub workload: String,
    pub time_saved_fraction: f64,
}

/// Evidence as `recommendations.json` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct EvidenceItem {
    pub job: String,
    pub table: String,
    pub key: String,
    pub value: f64,
    pub column: String,
    pub unit: String,
    pub used_for: String,
}

impl From<&EvidenceRef> for EvidenceItem {
    fn from(e: &EvidenceRef) -> Self {
        EvidenceItem {
            job: e.job.clone(),
            table: e.table.clone(),
            key: e.key.clone(),
            value: e.value,
            column: e.column.clone(),
            unit: e.unit.clone(),
            used_for: e.used_for.clone(),
        }
    }
}

/// The hardware baseline as listed in the output.
#[derive(Debug, Clone, Serialize)]
pub struct HardwareLine {
    pub id: String,
    pub name: String,
    pub machine: Machine,
}

/// `recommendations.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Recommendations {
    pub format_version: u32,
    pub tapeout_version: String,
    pub lake_version: u64,
    /// BLAKE3 (16 hex) of the pipeline config the run used, when there was one.
    pub config_hash: Option<String>,
    pub hardware: HardwareLine,
    pub workloads: Vec<WorkloadSummary>,
    /// What the model explains of the fleet's time.
    pub coverage: FleetCoverage,
    pub recommendations: Vec<Recommendation>,
    /// Perturbations the sensitivity analysis ran.
    pub perturbations: Vec<String>,
    pub assumptions: Vec<String>,
    pub warnings: Vec<String>,
}

/// Inputs of [`recommend`].
pub struct Inputs<'a> {
    pub base: &'a Machine,
    pub workloads: Vec<Workload>,
    /// Fleet share per workload (same order; normalized here).
    pub shares: Vec<f64>,
    /// Where each share comes from (same order; empty: all from the config).
    pub share_sources: Vec<ShareSource>,
    /// Counter-based bound class per workload name (device telemetry), if any.
    pub counter_bound_classes: std::collections::BTreeMap<String, (String, String)>,
    pub features: &'a [Feature],
    pub lake_version: u64,
    pub assumptions: Vec<String>,
    pub warnings: Vec<String>,
}

fn normalize(shares: &[f64]) -> Vec<f64> {
    let total: f64 = shares.iter().sum();
    if total > 0.0 {
        shares.iter().map(|s| s / total).collect()
    } else {
        vec![1.0 / shares.len().max(1) as f64; shares.len()]
    }
}

/// The sensitivity runs that bind unexplained time: this prefix, then `compute-bound`,
/// `memory-bound` or `communication-bound`.
const UNEXPLAINED_AS: &str = "unexplained time as ";

/// A perturbed copy of the workloads and shares.
fn perturbed(inputs: &Inputs, which: &str) -> (Vec<Workload>, Vec<f64>) {
    let mut ws = inputs.workloads.clone();
    let mut shares = normalize(&inputs.shares);
    let (kind, factor) =
        which.rsplit_once('×').map(|(k, f)| (k.trim(), f.parse::<f64>().unwrap_or(1.0))).unwrap_or((which, 1.0));
    match kind {
        "serving efficiency" => ws.iter_mut().for_each(|w| {
            if let Workload::Requests { serving, .. } = w {
                serving.serving.compute_efficiency = (serving.serving.compute_efficiency * factor).min(1.0);
                serving.serving.memory_efficiency = (serving.serving.memory_efficiency * factor).min(1.0);
            }
        }),
        "serving batch" => ws.iter_mut().for_each(|w| {
            if let Workload::Requests { serving, .. } = w {
                serving.serving.batch = (serving.serving.batch * factor).max(1.0);
            }
        }),
        "collective latency" => ws.iter_mut().for_each(|w| {
            if let Workload::Kernels { measured, .. } = w {
                for c in &mut measured.comm {
                    if let Scaling::Comm { latency_s, bandwidth_s, .. } = &mut c.scaling {
                        let t = *latency_s + *bandwidth_s;
                        *latency_s = (*latency_s * factor).min(t);
                        *bandwidth_s = t - *latency_s;
                    }
                }
            }
        }),
        k if k.starts_with(UNEXPLAINED_AS) => {
            let how = match &k[UNEXPLAINED_AS.len()..] {
                "compute-bound" => measured::UnexplainedAs::Compute,
                "memory-bound" => measured::UnexplainedAs::Memory,
                _ => measured::UnexplainedAs::Communication,
            };
            ws.iter_mut().for_each(|w| {
                if let Workload::Kernels { measured, .. } = w {
                    *measured = measured.with_unexplained_as(how);
                }
            })
        }
        k if k.starts_with("fleet share of ") => {
            let name = &k["fleet share of ".len()..];
            if let Some(i) = ws.iter().position(|w| w.name() == name) {
                shares[i] *= factor;
                shares = normalize(&shares);
            }
        }
        _ => {}
    }
    (ws, shares)
}

/// Projects, ranks, runs the sensitivity analysis and gathers evidence.
pub fn recommend(inputs: Inputs) -> Result<Recommendations, RecommendError> {
    if inputs.workloads.is_empty() {
        return Err(RecommendError::Input(
            "no workload to project: the lake has no mined request or kernel workloads".into(),
        ));
    }
    if inputs.features.is_empty() {
        return Err(RecommendError::Input("no candidate features (pipelines/features/*.toml)".into()));
    }
    let base = inputs.base;
    let shares = normalize(&inputs.shares);
    let projections = project(&inputs.workloads, &shares, base, inputs.features);
    let saved: Vec<f64> = projections.iter().map(|p| p.time_saved_fraction).collect();
    let ranks = ranks_desc(&saved);
    let per_cost_ranks = ranks_desc(&projections.iter().map(|p| p.per_cost).collect::<Vec<_>>());

    let mut perturbations: Vec<String> = vec![
        "serving efficiency ×0.8".into(),
        "serving efficiency ×1.25".into(),
        "serving batch ×0.5".into(),
        "serving batch ×2".into(),
        "collective latency ×0.5".into(),
        "collective latency ×2".into(),
    ];
    if inputs.workloads.len() > 1 {
        for w in &inputs.workloads {
            perturbations.push(format!("fleet share of {} ×0.5", w.name()));
            perturbations.push(format!("fleet share of {} ×2", w.name()));
        }
    }
    let lines: Vec<CoverageLine> = inputs.workloads.iter().map(CoverageLine::of).collect();
    let fleet = |f: fn(&CoverageLine) -> f64| lines.iter().zip(&shares).map(|(l, s)| f(l) * s).sum::<f64>();
    let mut coverage = FleetCoverage {
        modelled: fleet(|l| l.modelled),
        attributed: fleet(|l| l.attributed),
        unexplained: fleet(|l| l.unexplained),
        top_with_unexplained_as: Vec::new(),
        unexplained_could_change_top: false,
    };
    // Unexplained time that features leave unchanged could be any kind of work: re-rank with it
    // bound each way (a device that matches no profile is reported, not re-bound).
    let rebindable = inputs.workloads.iter().any(|w| {
        matches!(w, Workload::Kernels { measured, .. }
            if measured.compute.iter().any(|c| c.category == "other" && c.scaling == Scaling::Fixed))
    });
    if rebindable {
        for how in ["compute-bound", "memory-bound", "communication-bound"] {
            perturbations.push(format!("{UNEXPLAINED_AS}{how}"));
        }
    }
    let mut kept = vec![0u32; projections.len()];
    let mut best = ranks.clone();
    let mut worst = ranks.clone();
    for p in &perturbations {
        let (ws, sh) = perturbed(&inputs, p);
        let pr = project(&ws, &sh, base, inputs.features);
        let r = ranks_desc(&pr.iter().map(|p| p.time_saved_fraction).collect::<Vec<_>>());
        if let Some(how) = p.strip_prefix(UNEXPLAINED_AS)
            && let Some(top) = r.iter().position(|&x| x == 1)
        {
            let top = inputs.features[top].id.clone();
            let base_top = ranks.iter().position(|&x| x == 1).map(|i| inputs.features[i].id.clone());
            coverage.unexplained_could_change_top |= Some(&top) != base_top.as_ref();
            coverage.top_with_unexplained_as.push((how.to_string(), top));
        }
        for i in 0..r.len() {
            kept[i] += (r[i] == ranks[i]) as u32;
            best[i] = best[i].min(r[i]);
            worst[i] = worst[i].max(r[i]);
        }
    }
    // Cost perturbations: one feature's cost ×0.5 or ×2 at a time.
    let mut cost_kept = vec![0u32; projections.len()];
    let mut cost_runs = 0u32;
    for j in 0..projections.len() {
        for factor in [0.5, 2.0] {
            cost_runs += 1;
            let pc: Vec<f64> = projections
                .iter()
                .enumerate()
                .map(|(i, p)| if i == j { p.per_cost / factor } else { p.per_cost })
                .collect();
            let r = ranks_desc(&pc);
            for i in 0..r.len() {
                cost_kept[i] += (r[i] == per_cost_ranks[i]) as u32;
            }
        }
    }

    let baseline: Vec<f64> = inputs.workloads.iter().map(|w| w.time(base)).collect();
    let mut recs: Vec<Recommendation> = projections
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let f = &inputs.features[i];
            let m = base.with(&f.change);
            // Share of fleet time in work the feature changes: per workload, the time of the
            // components (or operators) whose projection moves.
            let mut affected = 0.0;
            let mut evidence: Vec<EvidenceItem> = Vec::new();
            for (k, w) in inputs.workloads.iter().enumerate() {
                let share_changed = match w {
                    Workload::Requests { serving, .. } => {
                        let b0 = serving.breakdown(base);
                        let b1 = serving.breakdown(&m);
                        let changed: f64 = b0
                            .parts
                            .iter()
                            .zip(&b1.parts)
                            .filter(|(a, b)| (a.seconds - b.seconds).abs() > 1e-12 * a.seconds.max(1e-30))
                            .map(|(a, _)| a.seconds)
                            .sum();
                        if b0.seconds > 0.0 { changed / b0.seconds } else { 0.0 }
                    }
                    Workload::Kernels { measured, .. } => {
                        let compute: f64 = measured.compute.iter().map(|c| c.seconds).sum();
                        let mut changed = 0.0;
                        let calib = &measured.calib;
                        for c in &measured.compute {
                            if (c.project(calib, &m) - c.project(calib, base)).abs() > 1e-9 * c.seconds {
                                changed +=
                                    if compute > 0.0 { c.seconds / compute * measured.compute_busy_s } else { 0.0 };
                            }
                        }
                        let comm: f64 = measured.comm.iter().map(|c| c.seconds).sum();
                        for c in &measured.comm {
                            if (c.project(calib, &m) - c.project(calib, base)).abs() > 1e-9 * c.seconds {
                                changed += if comm > 0.0 { c.seconds / comm * measured.exposed_comm_s } else { 0.0 };
                            }
                        }
                        if f.change.launch_overhead.is_some() {
                            changed += measured.idle_s * measured.idle_launch_share;
                        }
                        if measured.span_s > 0.0 { changed / measured.span_s } else { 0.0 }
                    }
                };
                affected += shares[k] * share_changed;
                if p.by_workload[k].1.abs() > 1e-6 {
                    evidence.extend(w.evidence().iter().map(EvidenceItem::from));
                }
            }
            let _ = &baseline;
            let runs = perturbations.len().max(1) as f64;
            Recommendation {
                rank: ranks[i],
                feature: p.feature.clone(),
                step: p.step.clone(),
                cost: p.cost,
                fleet_speedup: p.fleet_speedup,
                time_saved_fraction: p.time_saved_fraction,
                per_cost: p.per_cost,
                per_cost_rank: per_cost_ranks[i],
                rank_stability: kept[i] as f64 / runs,
                best_rank: best[i],
                worst_rank: worst[i],
                per_cost_rank_stability: cost_kept[i] as f64 / cost_runs.max(1) as f64,
                by_workload: p
                    .by_workload
                    .iter()
                    .map(|(w, s)| WorkloadSaving { workload: w.clone(), time_saved_fraction: *s })
                    .collect(),
                share_of_time_affected: affected,
                evidence,
            }
        })
        .collect();
    recs.sort_by_key(|r| r.rank);

    let workloads = inputs
        .workloads
        .iter()
        .zip(&shares)
        .zip(&baseline)
        .zip(lines)
        .enumerate()
        .map(|(i, (((w, share), t), coverage))| {
            let (kind, unit, description) = match w {
                Workload::Requests { requests, model_id, serving, .. } => {
                    let b = serving.breakdown(base);
                    (
                        "requests",
                        "s of accelerator time per request",
                        format!(
                            "{requests} requests, mean {:.0} prompt / {:.0} output tokens; modelled as {model_id} ({}), tensor parallel {}, decode batch {:.1}{}",
                            serving.input,
                            serving.output,
                            serving.serving.dtype,
                            serving.serving.tensor_parallel,
                            b.batch,
                            b.capacity_batch.map(|c| format!(" (HBM fits {c:.0})")).unwrap_or_default()
                        ),
                    )
                }
                Workload::Kernels { measured, .. } => (
                    "kernels",
                    "s of GPU time in the traced window, summed over ranks",
                    format!(
                        "{} rank(s); {:.1}% compute/memory busy, {:.1}% exposed communication, {:.1}% idle",
                        measured.ranks,
                        100.0 * measured.compute_busy_s / measured.span_s.max(1e-30),
                        100.0 * measured.exposed_comm_s / measured.span_s.max(1e-30),
                        100.0 * measured.idle_s / measured.span_s.max(1e-30)
                    ),
                ),
            };
            WorkloadSummary {
                name: w.name().to_string(),
                kind: kind.into(),
                fleet_share: *share,
                baseline_seconds: *t,
                unit: unit.into(),
                bound_classes: w.bound_shares(base),
                description,
                coverage,
                fleet_share_source: inputs.share_sources.get(i).copied().unwrap_or(ShareSource::Config),
                counter_bound_class: inputs.counter_bound_classes.get(w.name()).map(|(class, basis)| {
                    let classes = w.bound_shares(base);
                    let dominant = classes.iter().max_by(|a, b| a.1.total_cmp(&b.1)).map(|c| c.0.as_str());
                    let says = |k: &str| class.contains(k);
                    let disagrees = match dominant {
                        Some("memory") => says("compute_bound") && !says("memory_bound"),
                        Some("compute") => says("memory_bound") && !says("compute_bound"),
                        _ => false,
                    };
                    CounterBoundClass { class: class.clone(), basis: basis.clone(), disagrees }
                }),
            }
        })
        .collect();
    Ok(Recommendations {
        format_version: FORMAT_VERSION,
        tapeout_version: env!("CARGO_PKG_VERSION").into(),
        lake_version: inputs.lake_version,
        config_hash: None,
        hardware: HardwareLine { id: base.id.clone(), name: base.name.clone(), machine: base.clone() },
        workloads,
        coverage,
        recommendations: recs,
        perturbations,
        assumptions: inputs.assumptions,
        warnings: inputs.warnings,
    })
}

impl FleetCoverage {
    /// One sentence for people: the fleet split and, when there is unexplained time, whether
    /// it could change the top feature.
    pub fn sentence(&self) -> String {
        let mut s = format!(
            "{:.1}% of fleet time is modelled from FLOPs and bytes, {:.1}% attributed by category rules, {:.1}% unexplained",
            100.0 * self.modelled,
            100.0 * self.attributed,
            100.0 * self.unexplained
        );
        if !self.top_with_unexplained_as.is_empty() {
            let tops: Vec<String> = self.top_with_unexplained_as.iter().map(|(how, f)| format!("{how}: {f}")).collect();
            s.push_str(&format!(
                "; with the unexplained time bound instead of unchanged, the top feature is {} — {}",
                tops.join(", "),
                if self.unexplained_could_change_top { "it could change the top rank" } else { "the top rank holds" }
            ));
        }
        s
    }
}

impl Recommendations {
    fn coverage_markdown(&self) -> String {
        let mut s = String::from("\n## Coverage\n\n");
        s.push_str(&self.coverage.sentence());
        s.push_str(".\n\n| workload | modelled | attributed (by rule) | unexplained | largest unexplained kernels |\n|---|---:|---|---:|---|\n");
        for w in &self.workloads {
            let c = &w.coverage;
            let by: Vec<String> = c.attributed_by.iter().map(|(k, v)| format!("{k} {:.1}%", 100.0 * v)).collect();
            let mut kernels: Vec<String> = c
                .unexplained_kernels
                .iter()
                .map(|(n, t)| format!("`{}` ({:.3} ms)", n.replace('|', "\\|"), t * 1e3))
                .collect();
            if c.unknown_device {
                kernels.insert(0, "device matches no hardware profile".into());
            }
            s.push_str(&format!(
                "| {} | {:.1}% | {:.1}%{} | {:.1}% | {} |\n",
                w.name,
                100.0 * c.modelled,
                100.0 * c.attributed,
                if by.is_empty() { String::new() } else { format!(" ({})", by.join(", ")) },
                100.0 * c.unexplained,
                kernels.join(", ")
            ));
        }
        s
    }

    /// `recommendations.md`.
    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        s.push_str(&format!(
            "# Chip-feature priorities on {} ({})\n\ntapeout {}, lake version {}, recommendations format {}.\n\n",
            self.hardware.name, self.hardware.id, self.tapeout_version, self.lake_version, self.format_version
        ));
        for w in &self.warnings {
            s.push_str(&format!("> **Warning:** {w}\n\n"));
        }
        s.push_str("| rank | feature | step | fleet speedup | time saved | per cost (rank) | rank stability |\n|---:|---|---|---:|---:|---:|---:|\n");
        for r in &self.recommendations {
            s.push_str(&format!(
                "| {} | `{}` | {} | {:.3}× | {:.1}% | {:.3} ({}) | {:.0}% |\n",
                r.rank,
                r.feature,
                r.step,
                r.fleet_speedup,
                100.0 * r.time_saved_fraction,
                r.per_cost,
                r.per_cost_rank,
                100.0 * r.rank_stability
            ));
        }
        s.push_str("\n## Workloads\n\n| workload | kind | fleet share | baseline | bound classes | description |\n|---|---|---:|---:|---|---|\n");
        for w in &self.workloads {
            let classes: Vec<String> = w.bound_classes.iter().map(|(k, v)| format!("{k} {:.0}%", 100.0 * v)).collect();
            let source = match w.fleet_share_source {
                ShareSource::Config => "",
                ShareSource::Telemetry => " (telemetry)",
                ShareSource::Equal => " (equal)",
            };
            let classes = match &w.counter_bound_class {
                Some(c) => format!(
                    "{}; counters: {}{}",
                    classes.join(", "),
                    c.class,
                    if c.disagrees { " (**disagrees**)" } else { "" }
                ),
                None => classes.join(", "),
            };
            s.push_str(&format!(
                "| {} | {} | {:.0}%{source} | {:.4} {} | {} | {} |\n",
                w.name,
                w.kind,
                100.0 * w.fleet_share,
                w.baseline_seconds,
                w.unit,
                classes,
                w.description
            ));
        }
        s.push_str(&self.coverage_markdown());
        s.push_str("\n## Sensitivity\n\nPerturbations, one at a time: ");
        s.push_str(&self.perturbations.join("; "));
        s.push_str(".\n\n| feature | rank | kept rank | best | worst |\n|---|---:|---:|---:|---:|\n");
        for r in &self.recommendations {
            s.push_str(&format!(
                "| `{}` | {} | {:.0}% | {} | {} |\n",
                r.feature,
                r.rank,
                100.0 * r.rank_stability,
                r.best_rank,
                r.worst_rank
            ));
        }
        s.push_str("\n## Assumptions\n\n");
        for a in &self.assumptions {
            s.push_str(&format!("- {a}\n"));
        }
        s
    }
}
