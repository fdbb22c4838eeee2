//! What a report shows: filled by `tapeout run` / `tapeout report` from the mined results and
//! `recommendations.json`, rendered by [`crate::render_html`] and [`crate::render_markdown`].
//! Serializable so `tapeout report` can re-render from a stored `report.json`.

use serde::{Deserialize, Serialize};

/// The whole report.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Report {
    pub title: String,
    /// tapeout version that produced it.
    pub tapeout_version: String,
    /// BLAKE3 (16 hex) of the pipeline config, or "none".
    pub config_hash: String,
    /// RFC 3339 UTC.
    pub generated_at: String,
    /// Lake manifest version the results come from.
    pub lake_version: u64,
    /// Baseline hardware profile.
    pub hardware: HardwareSummary,
    pub summary: ExecutiveSummary,
    /// Ranked features, best first.
    pub recommendations: Vec<Recommendation>,
    pub workloads: Vec<WorkloadSection>,
    /// Sensitivity: how often each feature kept its rank under perturbed assumptions.
    pub sensitivity: Vec<SensitivityRow>,
    /// Every number with the SQL job (and row) that produced it.
    pub evidence: Vec<Evidence>,
    /// Method and assumptions, as paragraphs of plain text.
    pub method: Vec<String>,
    pub assumptions: Vec<String>,
    /// Warnings to show prominently (unmatched devices, skipped jobs...).
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HardwareSummary {
    pub id: String,
    pub name: String,
    /// Peak dense matrix FLOP/s by dtype, e.g. [("bf16", 9.895e14)].
    pub matrix_flops: Vec<(String, f64)>,
    pub vector_fp32_flops: Option<f64>,
    /// bytes/s
    pub hbm_bandwidth: Option<f64>,
    /// bytes
    pub hbm_capacity: Option<f64>,
    /// bytes/s, one direction
    pub scale_up_bandwidth: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ExecutiveSummary {
    /// One sentence per top priority, e.g. "HBM bandwidth ×2 saves 31% of fleet time".
    pub headlines: Vec<String>,
    /// Projected fleet speedup of the top-ranked feature (e.g. 1.45).
    pub top_speedup: f64,
    /// "high" | "medium" | "low", from the top feature's rank stability.
    pub confidence: String,
    pub workloads: usize,
    /// Share of fleet accelerator time per workload, (name, share 0–1).
    pub fleet_mix: Vec<(String, f64)>,
    /// In words: what share of fleet time the model cannot explain and whether it could change
    /// the top rank. Absent when everything is explained.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Recommendation {
    pub rank: u32,
    /// Feature id, e.g. `hbm_bandwidth`.
    pub feature: String,
    /// The step, e.g. "HBM bandwidth ×2".
    pub step: String,
    pub fleet_speedup: f64,
    /// 0–1.
    pub time_saved_fraction: f64,
    pub per_cost: f64,
    pub per_cost_rank: u32,
    /// 0–1.
    pub rank_stability: f64,
    /// Time saved per workload, (workload, fraction 0–1).
    pub by_workload: Vec<(String, f64)>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WorkloadSection {
    pub name: String,
    /// "requests" (serving log, modelled) or "kernels" (measured kernel trace).
    pub kind: String,
    /// Share of fleet time, 0–1.
    pub fleet_share: f64,
    /// Short description (model served, ranks, device...).
    pub description: String,
    /// Roofline chart points (empty when nothing is known).
    pub roofline: Option<Roofline>,
    /// Time by category, (category, seconds), largest first.
    pub time_by_category: Vec<(String, f64)>,
    /// Token distributions (request workloads).
    pub tokens: Option<TokenStats>,
    /// Communication (kernel workloads with collectives).
    pub communication: Option<Communication>,
    /// What the model explains of the workload's time (absent in reports made before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage: Option<Coverage>,
    /// Where `fleet_share` comes from: "config", "telemetry" (measured device-hours) or
    /// "equal" (neither; the mean of the others).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_source: Option<String>,
    /// The bound class device counters give, beside the trace- or model-derived one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counter_bound: Option<CounterBound>,
}

/// A workload's counter-based bound class (device telemetry).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CounterBound {
    /// e.g. "NVIDIA H100 80GB HBM3: memory_bound".
    pub class: String,
    /// The counters it rests on (and those missing).
    pub basis: String,
    /// It disagrees with the trace- or model-derived class.
    pub disagrees: bool,
}

/// Shares (0–1) of a workload's GPU kernel time: modelled from FLOPs and bytes, attributed by
/// a category rule, unexplained.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Coverage {
    pub modelled: f64,
    pub attributed: f64,
    pub unexplained: f64,
    /// (category, share), largest first.
    pub attributed_by: Vec<(String, f64)>,
    /// The largest unexplained kernels, (name, seconds), largest first.
    pub unexplained_kernels: Vec<(String, f64)>,
    /// The trace's device matched no hardware profile.
    pub unknown_device: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Roofline {
    /// Device name the peaks belong to.
    pub device: String,
    /// bytes/s
    pub memory_roof: f64,
    /// (label, FLOP/s), e.g. ("bf16 matrix", 9.895e14), ("fp32 vector", 6.7e13).
    pub compute_roofs: Vec<(String, f64)>,
    pub points: Vec<RooflinePoint>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RooflinePoint {
    /// e.g. "gemm bf16".
    pub label: String,
    /// Arithmetic intensity, FLOP/byte.
    pub intensity: f64,
    /// Achieved FLOP/s.
    pub achieved: f64,
    /// Share of the workload's time this point stands for, 0–1 (marker size).
    pub time_share: f64,
    /// "compute" | "memory" | "unknown".
    pub bound: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TokenStats {
    pub requests: u64,
    pub input_p50: f64,
    pub input_p90: f64,
    pub input_p99: f64,
    pub output_p50: f64,
    pub output_p90: f64,
    pub output_p99: f64,
    /// Share of tokens that are prompt (prefill) tokens, 0–1.
    pub prefill_share: f64,
    /// Infinite-cache prefix reuse share of prompt tokens, when block hashes are known.
    pub prefix_reuse: Option<f64>,
    /// Histogram of input tokens: (bucket upper bound, count), ascending.
    pub input_histogram: Vec<(f64, u64)>,
    pub output_histogram: Vec<(f64, u64)>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Communication {
    /// Seconds, summed over ranks.
    pub total: f64,
    pub exposed: f64,
    pub overlapped: f64,
    /// Per rank: (rank, exposed s, overlapped s).
    pub by_rank: Vec<(i64, f64, f64)>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SensitivityRow {
    pub feature: String,
    pub base_rank: u32,
    /// 0–1: share of perturbed runs in which the feature kept its rank.
    pub kept_rank: f64,
    /// Best and worst rank seen.
    pub best_rank: u32,
    pub worst_rank: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Evidence {
    /// Mining job (SQL file) name.
    pub job: String,
    /// Result table (usually = job).
    pub table: String,
    /// Row key, e.g. "workload=code, category=gemm".
    pub key: String,
    /// The number and its unit, as text.
    pub value: String,
    /// What the number is used for.
    pub used_for: String,
}
