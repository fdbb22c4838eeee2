//! Candidate chip features: `pipelines/features/*.toml`, each one [`Change`] to the baseline
//! profile with its step and a relative cost (an assumption of the file).

use serde::{Deserialize, Serialize};
use tapeout_pipelines::{Pipelines, PipelinesError};

/// A precision move.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Precision {
    pub from: String,
    pub to: String,
}

/// What a feature changes (multipliers on the baseline unless said otherwise).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Change {
    pub matrix_flops: Option<f64>,
    pub vector_flops: Option<f64>,
    pub hbm_bandwidth: Option<f64>,
    pub hbm_capacity: Option<f64>,
    pub sram: Option<f64>,
    pub scale_up: Option<f64>,
    pub scale_out: Option<f64>,
    pub launch_overhead: Option<f64>,
    pub collective_offload: Option<bool>,
    pub precision: Option<Precision>,
}

/// One candidate feature.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Feature {
    /// e.g. `hbm_bandwidth`.
    pub id: String,
    /// The step, e.g. "HBM bandwidth ×2".
    pub step: String,
    /// Relative cost (assumption; doubling HBM bandwidth = 1.0).
    pub cost: f64,
    pub change: Change,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FeatureFile {
    feature: Vec<Feature>,
}

/// Every feature of `pipelines/features/*.toml`, in file order.
pub fn load_all(pipelines: &Pipelines) -> Result<Vec<Feature>, PipelinesError> {
    let mut out: Vec<Feature> = Vec::new();
    for f in pipelines.files("features", "toml")? {
        let parsed: FeatureFile = toml::from_str(&f.text)
            .map_err(|e| PipelinesError::Toml { file: f.origin.clone(), message: e.to_string().replace('\n', " ") })?;
        for feat in parsed.feature {
            let invalid = |key: &str, message: String| PipelinesError::Invalid {
                file: f.origin.clone(),
                key: format!("{}.{key}", feat.id),
                message,
            };
            if !(feat.cost.is_finite() && feat.cost > 0.0) {
                return Err(invalid("cost", "must be a positive number".into()));
            }
            if out.iter().any(|o| o.id == feat.id) {
                return Err(invalid("id", "is defined twice".into()));
            }
            if feat.change == Change::default() {
                return Err(invalid("change", "changes nothing".into()));
            }
            out.push(feat);
        }
    }
    Ok(out)
}
