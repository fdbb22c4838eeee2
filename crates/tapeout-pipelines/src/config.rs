//! Pipeline configs: `pipelines/*.toml`, what `tapeout run` does end to end. Typed, every field
//! documented, unknown keys refused; [`PipelineConfig::load`] parses, and the caller validates
//! names and paths before any work starts.
//!
//! Relative paths are relative to the config file's folder.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::PipelinesError;

/// One input of the pipeline.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// A file, a directory (read recursively) or a glob pattern.
    pub path: String,
    /// Force a request-trace format (`azure_llm`, `burstgpt`, `mooncake`) instead of detecting it.
    pub format: Option<String>,
    /// Workload name for every input of this source (default: from each file / folder name).
    pub workload: Option<String>,
    /// Model serving this source's request workloads (overrides `serving.model`).
    pub model: Option<String>,
    /// A metric CSV's mapping (TOML; relative to the config's folder): which columns hold the
    /// time, the value, the metric, the device and the labels (see pipelines/telemetry/README.md).
    /// Needed with `format = "metric_csv"`.
    pub mapping: Option<String>,
    /// Zone of timestamps without one in this source's telemetry (nvidia-smi): `UTC` or a fixed
    /// offset such as `+02:00` (default UTC).
    pub timezone: Option<String>,
}

/// Mining settings.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Mining {
    /// Job name globs to run (default: every job).
    #[serde(default)]
    pub jobs: Vec<String>,
    /// Job parameter overrides, NAME = value.
    #[serde(default)]
    pub params: BTreeMap<String, toml::Value>,
}

/// Serving assumptions for request-level workloads.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServingConfig {
    /// Model id (pipelines/models) serving request workloads unless a source says otherwise.
    #[serde(default = "default_model")]
    pub model: String,
    /// Tensor-parallel degree of every request workload (at least 1). Absent: the smallest power
    /// of two at which the weights plus one request's KV cache at the workload's mean context
    /// fit the baseline's device memory, stated in the assumptions. A degree too small to fit is
    /// an error.
    pub tensor_parallel: Option<u32>,
    /// Share of peak FLOP/s the serving stack reaches (assumption).
    #[serde(default = "default_compute_eff")]
    pub compute_efficiency: f64,
    /// Share of HBM bandwidth the serving stack reaches (assumption).
    #[serde(default = "default_memory_eff")]
    pub memory_efficiency: f64,
    /// Decode batch; default: each workload's measured mean concurrency (request_concurrency).
    pub batch: Option<f64>,
}

fn default_model() -> String {
    "llama-3.1-8b".into()
}
fn default_compute_eff() -> f64 {
    0.7
}
fn default_memory_eff() -> f64 {
    0.85
}

impl Default for ServingConfig {
    fn default() -> Self {
        ServingConfig {
            model: default_model(),
            tensor_parallel: None,
            compute_efficiency: default_compute_eff(),
            memory_efficiency: default_memory_eff(),
            batch: None,
        }
    }
}

/// `[features]`: the candidate chip features a pipeline ranks.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureSelection {
    /// Feature ids (from pipelines/features) to rank; empty or absent: every feature.
    #[serde(default)]
    pub ids: Vec<String>,
    /// Relative cost per feature id, replacing the feature file's assumption (doubling HBM
    /// bandwidth = 1.0). Changes the per-cost order only, never the benefit ranking.
    #[serde(default)]
    pub cost: BTreeMap<String, f64>,
}

/// A pipeline.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Name shown in the report.
    pub name: String,
    /// Lake directory.
    pub lake: String,
    /// Report output directory (report.html, report.md, recommendations.json/.md, summary.json).
    pub report: String,
    /// Inputs.
    #[serde(rename = "source")]
    pub sources: Vec<Source>,
    /// Baseline hardware profile id (pipelines/hardware).
    pub hardware: String,
    #[serde(default)]
    pub mining: Mining,
    #[serde(default)]
    pub serving: ServingConfig,
    /// Fleet share of accelerator time per workload (relative weights; unlisted workloads weigh 1).
    #[serde(default)]
    pub fleet: BTreeMap<String, f64>,
    /// Which candidate features to rank, and cost overrides.
    #[serde(default)]
    pub features: FeatureSelection,
    /// Folder laid out like pipelines/ (sql/, hardware/, models/, features/); default: the
    /// built-in one.
    pub pipelines: Option<String>,
}

/// A loaded config with where it came from.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    pub config: PipelineConfig,
    pub path: PathBuf,
    /// BLAKE3 of the file, first 16 hex digits.
    pub hash: String,
}

impl LoadedConfig {
    /// `p` resolved against the config file's folder.
    pub fn resolve(&self, p: &str) -> PathBuf {
        let path = Path::new(p);
        let joined = if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.path.parent().unwrap_or(Path::new(".")).join(path)
        };
        // `pipelines/../target` reads better as `target`; only existing paths can be resolved.
        std::fs::canonicalize(&joined).unwrap_or(joined)
    }
}

impl PipelineConfig {
    /// Reads and parses a config (unknown keys are errors naming the key).
    pub fn load(path: &Path) -> Result<LoadedConfig, PipelinesError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| PipelinesError::Io { path: path.to_path_buf(), source })?;
        let config: PipelineConfig = toml::from_str(&text).map_err(|e| PipelinesError::Toml {
            file: path.display().to_string(),
            message: e.to_string().trim_end().replace('\n', " "),
        })?;
        let invalid = |key: &str, message: String| PipelinesError::Invalid {
            file: path.display().to_string(),
            key: key.into(),
            message,
        };
        if config.sources.is_empty() {
            return Err(invalid("source", "at least one [[source]] is needed".into()));
        }
        for (w, share) in &config.fleet {
            if !(share.is_finite() && *share >= 0.0) {
                return Err(invalid(&format!("fleet.{w}"), "must be a non-negative number".into()));
            }
        }
        for (id, cost) in &config.features.cost {
            if !(cost.is_finite() && *cost > 0.0) {
                return Err(invalid(&format!("features.cost.{id}"), format!("must be a positive number, got {cost}")));
            }
        }
        let s = &config.serving;
        for (k, v) in
            [("serving.compute_efficiency", s.compute_efficiency), ("serving.memory_efficiency", s.memory_efficiency)]
        {
            if !(v > 0.0 && v <= 1.0) {
                return Err(invalid(k, format!("must be in (0, 1], got {v}")));
            }
        }
        if s.tensor_parallel == Some(0) {
            return Err(invalid("serving.tensor_parallel", "must be at least 1".into()));
        }
        let hash = blake3_hex16(text.as_bytes());
        Ok(LoadedConfig { config, path: path.to_path_buf(), hash })
    }
}

fn blake3_hex16(bytes: &[u8]) -> String {
    // A dependency-free stable hash would do, but the lake already uses BLAKE3 everywhere.
    let h = blake3::hash(bytes);
    h.to_hex()[..16].to_string()
}
