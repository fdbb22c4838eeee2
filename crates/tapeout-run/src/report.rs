//! Report assembly: the report model ([`tapeout_report::model::Report`]) from the
//! recommendations, the workloads behind them and the mined rows; stored in the lake so
//! `tapeout report` can re-render without recomputing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tapeout_recommend::Recommendations;
use tapeout_recommend::machine::Unit;
use tapeout_recommend::mined::Mined;
use tapeout_recommend::model::Scaling;
use tapeout_recommend::rank::Workload;
use tapeout_report::model as r;

use crate::RunError;
use crate::mined::TokenHistogram;

/// Where the last report model is kept inside a lake.
pub fn stored_report(lake: &Path) -> PathBuf {
    lake.join("_mined").join("_report").join("report.json")
}

/// Builds the report.
pub fn build(
    title: &str,
    config_hash: &str,
    recs: &Recommendations,
    workloads: &[Workload],
    mined: &Mined,
    histograms: &TokenHistogram,
) -> r::Report {
    let m = &recs.hardware.machine;
    let hardware = r::HardwareSummary {
        id: recs.hardware.id.clone(),
        name: recs.hardware.name.clone(),
        matrix_flops: m.matrix.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        vector_fp32_flops: m.vector_fp32,
        hbm_bandwidth: Some(m.hbm_bandwidth),
        hbm_capacity: m.hbm_capacity,
        scale_up_bandwidth: m.scale_up,
    };
    let top = recs.recommendations.first();
    let confidence = match top.map(|t| t.rank_stability) {
        // Never "high" when time the model cannot explain could put another feature first.
        Some(s) if s >= 0.9 && !recs.coverage.unexplained_could_change_top => "high",
        Some(s) if s >= 0.6 => "medium",
        _ => "low",
    };
    let headlines = recs
        .recommendations
        .iter()
        .take(3)
        .map(|x| {
            format!(
                "{}: saves {:.1}% of fleet accelerator time ({:.2}× fleet speedup); kept its rank in {:.0}% of perturbed runs",
                x.step,
                100.0 * x.time_saved_fraction,
                x.fleet_speedup,
                100.0 * x.rank_stability
            )
        })
        .collect();
    let summary = r::ExecutiveSummary {
        headlines,
        top_speedup: top.map_or(1.0, |t| t.fleet_speedup),
        confidence: confidence.into(),
        workloads: recs.workloads.len(),
        fleet_mix: recs.workloads.iter().map(|w| (w.name.clone(), w.fleet_share)).collect(),
        coverage: (recs.coverage.unexplained > 0.0).then(|| recs.coverage.sentence()),
    };
    let recommendations = recs
        .recommendations
        .iter()
        .map(|x| r::Recommendation {
            rank: x.rank,
            feature: x.feature.clone(),
            step: x.step.clone(),
            fleet_speedup: x.fleet_speedup,
            time_saved_fraction: x.time_saved_fraction,
            per_cost: x.per_cost,
            per_cost_rank: x.per_cost_rank,
            rank_stability: x.rank_stability,
            by_workload: x.by_workload.iter().map(|w| (w.workload.clone(), w.time_saved_fraction)).collect(),
        })
        .collect();
    let mut sections = Vec::new();
    for (w, summary_line) in workloads.iter().zip(&recs.workloads) {
        let mut section = r::WorkloadSection {
            name: w.name().to_string(),
            kind: summary_line.kind.clone(),
            fleet_share: summary_line.fleet_share,
            description: summary_line.description.clone(),
            roofline: None,
            time_by_category: vec![],
            tokens: None,
            communication: None,
            coverage: {
                let c = &summary_line.coverage;
                Some(r::Coverage {
                    modelled: c.modelled,
                    attributed: c.attributed,
                    unexplained: c.unexplained,
                    attributed_by: c.attributed_by.clone(),
                    unexplained_kernels: c.unexplained_kernels.clone(),
                    unknown_device: c.unknown_device,
                })
            },
            share_source: Some(
                match summary_line.fleet_share_source {
                    tapeout_recommend::ShareSource::Config => "config",
                    tapeout_recommend::ShareSource::Telemetry => "telemetry",
                    tapeout_recommend::ShareSource::Equal => "equal",
                }
                .into(),
            ),
            counter_bound: summary_line.counter_bound_class.as_ref().map(|c| r::CounterBound {
                class: c.class.clone(),
                basis: c.basis.clone(),
                disagrees: c.disagrees,
            }),
        };
        match w {
            Workload::Requests { serving, .. } => {
                let b = serving.breakdown(m);
                let mut cats: BTreeMap<String, f64> = BTreeMap::new();
                let mut points: BTreeMap<(String, &str), (f64, f64, f64, &str)> = BTreeMap::new();
                for p in &b.parts {
                    *cats.entry(p.category.to_string()).or_default() += p.seconds;
                    if p.flops > 0.0 && p.bytes > 0.0 {
                        let stage = p.name.split(' ').next().unwrap_or("").to_string();
                        let e = points.entry((stage, p.category)).or_insert((0.0, 0.0, 0.0, p.bound));
                        e.0 += p.flops;
                        e.1 += p.bytes;
                        e.2 += p.seconds;
                        if p.bound == "compute" {
                            e.3 = "compute";
                        }
                    }
                }
                section.time_by_category = sorted(cats);
                let dtype = m.effective_dtype(&serving.serving.dtype).to_string();
                section.roofline = Some(r::Roofline {
                    device: format!("{} (modelled)", recs.hardware.name),
                    memory_roof: m.hbm_bandwidth,
                    compute_roofs: roofs(m, &dtype),
                    points: points
                        .into_iter()
                        .map(|((stage, cat), (fl, by, s, bound))| r::RooflinePoint {
                            label: format!("{stage} {cat}"),
                            intensity: fl / by,
                            achieved: if s > 0.0 { fl / s } else { 0.0 },
                            time_share: if b.seconds > 0.0 { s / b.seconds } else { 0.0 },
                            bound: bound.into(),
                        })
                        .collect(),
                });
                section.tokens = token_stats(w.name(), mined, histograms);
            }
            Workload::Kernels { measured, .. } => {
                section.time_by_category = measured.by_category();
                let total: f64 = measured.compute.iter().map(|c| c.seconds).sum();
                let points: Vec<r::RooflinePoint> = measured
                    .compute
                    .iter()
                    .filter_map(|c| match &c.scaling {
                        Scaling::Roofline { flops, bytes, .. } if c.seconds > 0.0 => Some(r::RooflinePoint {
                            label: c.name.split(" (").next().unwrap_or(&c.name).to_string(),
                            intensity: flops / bytes,
                            achieved: flops / c.seconds,
                            time_share: if total > 0.0 { c.seconds / total } else { 0.0 },
                            bound: c.bound(&measured.calib).into(),
                        }),
                        _ => None,
                    })
                    .collect();
                if !points.is_empty() {
                    let cal = &measured.calib;
                    section.roofline = Some(r::Roofline {
                        device: format!("{} (measured)", cal.name),
                        memory_roof: cal.hbm_bandwidth,
                        compute_roofs: roofs(cal, "bf16"),
                        points,
                    });
                }
                let ranks: Vec<(i64, f64, f64)> = mined
                    .comm_compute_overlap
                    .iter()
                    .filter(|row| row.workload.as_deref() == Some(w.name()))
                    .map(|row| {
                        (
                            row.rank.unwrap_or(0.0) as i64,
                            row.exposed_comm_ns.unwrap_or(0.0) * 1e-9,
                            row.overlapped_comm_ns.unwrap_or(0.0) * 1e-9,
                        )
                    })
                    .collect();
                if !ranks.is_empty() {
                    let exposed: f64 = ranks.iter().map(|x| x.1).sum();
                    let overlapped: f64 = ranks.iter().map(|x| x.2).sum();
                    section.communication =
                        Some(r::Communication { total: exposed + overlapped, exposed, overlapped, by_rank: ranks });
                }
            }
        }
        sections.push(section);
    }
    let sensitivity = recs
        .recommendations
        .iter()
        .map(|x| r::SensitivityRow {
            feature: x.feature.clone(),
            base_rank: x.rank,
            kept_rank: x.rank_stability,
            best_rank: x.best_rank,
            worst_rank: x.worst_rank,
        })
        .collect();
    let mut evidence: Vec<r::Evidence> = Vec::new();
    for x in &recs.recommendations {
        for e in &x.evidence {
            let item = r::Evidence {
                job: e.job.clone(),
                table: e.table.clone(),
                key: e.key.clone(),
                value: format!("{} = {} {}", e.column, human(e.value), e.unit),
                used_for: e.used_for.clone(),
            };
            if !evidence.contains(&item) {
                evidence.push(item);
            }
        }
    }
    r::Report {
        title: title.to_string(),
        tapeout_version: recs.tapeout_version.clone(),
        config_hash: config_hash.to_string(),
        generated_at: now_rfc3339(),
        lake_version: recs.lake_version,
        hardware,
        summary,
        recommendations,
        workloads: sections,
        sensitivity,
        evidence,
        method: vec![
            "Ingest: every trace lands once in a Parquet lake (exactly-once commits); mining jobs (pipelines/sql) compute the workload figures with SQL; the recommender projects each candidate feature onto them.".into(),
            "Request-level traces are modelled operator by operator as LLM-Viewer does (prefill and decode, weights, activations and KV cache through HBM, time = max(FLOPs / peak, bytes / bandwidth) per operator), with GQA, MoE and tensor parallelism; the model and serving assumptions come from the pipeline config.".into(),
            "Kernel traces are measured: each op with known FLOPs and bytes is calibrated to its device's roofline, so the baseline reproduces the measured time; features change peaks and bandwidths and the calibrated efficiency carries over. Exposed communication scales with link bandwidth (latency part fixed); idle time with launch overhead where launches cause it.".into(),
            "Ranking is by fleet time saved: Σ over workloads of fleet share × (1 − projected / baseline time). Sensitivity re-ranks under perturbed efficiency, batch, collective latency and fleet mix, one at a time. Formulas: docs/model.md.".into(),
        ],
        assumptions: recs.assumptions.clone(),
        warnings: recs.warnings.clone(),
    }
}

fn sorted(m: BTreeMap<String, f64>) -> Vec<(String, f64)> {
    let mut v: Vec<(String, f64)> = m.into_iter().collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1));
    v
}

fn roofs(m: &tapeout_recommend::machine::Machine, dtype: &str) -> Vec<(String, f64)> {
    let mut v = vec![(format!("{dtype} matrix"), m.peak(Unit::Matrix, dtype))];
    if let Some(vf) = m.vector_fp32 {
        v.push(("fp32 vector".into(), vf));
    }
    v.retain(|(_, x)| x.is_finite() && *x > 0.0);
    v
}

fn token_stats(name: &str, mined: &Mined, histograms: &TokenHistogram) -> Option<r::TokenStats> {
    let f = |v: Option<f64>| v.unwrap_or(0.0);
    let rows: Vec<_> = mined.request_token_stats.iter().filter(|row| row.workload.as_deref() == Some(name)).collect();
    let first = rows.iter().max_by(|a, b| f(a.requests).total_cmp(&f(b.requests)))?;
    let requests: f64 = rows.iter().map(|x| f(x.requests)).sum();
    let input: f64 = rows.iter().map(|x| f(x.requests) * f(x.input_mean)).sum();
    let output: f64 = rows.iter().map(|x| f(x.requests) * f(x.output_mean)).sum();
    let hist = |kind: &str| -> Vec<(f64, u64)> {
        histograms.iter().filter(|(w, k, _, _)| w == name && k == kind).map(|(_, _, b, c)| (*b, *c)).collect()
    };
    Some(r::TokenStats {
        requests: requests as u64,
        input_p50: f(first.input_p50),
        input_p90: f(first.input_p90),
        input_p99: f(first.input_p99),
        output_p50: f(first.output_p50),
        output_p90: f(first.output_p90),
        output_p99: f(first.output_p99),
        prefill_share: if input + output > 0.0 { input / (input + output) } else { 0.0 },
        prefix_reuse: None,
        input_histogram: hist("input"),
        output_histogram: hist("output"),
    })
}

fn human(v: f64) -> String {
    if v.abs() >= 1e4 || (v != 0.0 && v.abs() < 1e-2) { format!("{v:.4e}") } else { format!("{v:.4}") }
}

fn now_rfc3339() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Writes report.html, report.md and report.json (and stores the model in the lake when
/// `lake` is given).
pub fn write(out: &Path, report: &r::Report, lake: Option<&Path>) -> Result<(), RunError> {
    crate::create_dir(out)?;
    crate::write_atomic(&out.join("report.html"), tapeout_report::render_html(report).as_bytes())?;
    crate::write_atomic(&out.join("report.md"), tapeout_report::render_markdown(report).as_bytes())?;
    let json = serde_json::to_vec_pretty(report)
        .map_err(|e| RunError::Json { path: out.join("report.json"), message: e.to_string() })?;
    crate::write_atomic(&out.join("report.json"), &json)?;
    if let Some(lake) = lake {
        let stored = stored_report(lake);
        crate::create_dir(stored.parent().expect("has parent"))?;
        crate::write_atomic(&stored, &json)?;
    }
    Ok(())
}

/// The report model stored in `lake` by its last run; refused when the lake has changed
/// since (the report would describe a lake without its newest inputs).
pub fn load_stored(lake: &Path) -> Result<r::Report, RunError> {
    let stored = stored_report(lake);
    let text = std::fs::read(&stored).map_err(|source| RunError::NoStoredReport { path: stored.clone(), source })?;
    let report: r::Report = serde_json::from_slice(&text)
        .map_err(|e| RunError::Json { path: stored, message: format!("not a tapeout report: {e}") })?;
    let lake_version = tapeout_lake::load_snapshot(lake, None)?.version;
    if report.lake_version != lake_version {
        return Err(RunError::StaleReport {
            lake: lake.display().to_string(),
            report_version: report.lake_version,
            lake_version,
        });
    }
    Ok(report)
}
