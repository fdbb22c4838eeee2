//! Model configurations: `pipelines/models/<id>.toml`, for request-level traces (which don't
//! say what model served them). Every figure has its source in the file.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{PipelineFile, Pipelines, PipelinesError, toml_error};

/// One model.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Equals the file stem, e.g. `llama-2-7b`.
    pub id: String,
    pub name: String,
    /// Total parameters.
    pub params: f64,
    /// Parameters used per token (= params for dense models).
    pub active_params: Option<f64>,
    pub layers: u32,
    pub hidden: u32,
    /// FFN size (per expert for MoE).
    pub intermediate: u32,
    pub heads: u32,
    pub kv_heads: u32,
    pub head_dim: u32,
    pub vocab: u32,
    pub max_context: Option<u64>,
    /// Native weight dtype: fp32, bf16, fp16, fp8.
    pub dtype: String,
    /// SwiGLU-style FFN (three matrices).
    #[serde(default)]
    pub gated_ffn: bool,
    /// MoE: routed experts per MoE layer.
    pub experts: Option<u32>,
    /// MoE: routed experts per token.
    pub active_experts: Option<u32>,
    /// MoE: shared (always active) experts.
    pub shared_experts: Option<u32>,
    /// MoE: layers that are MoE when not every layer is.
    pub moe_layers: Option<u32>,
    /// KV-cache elements per token and layer when not 2·kv_heads·head_dim (e.g. MLA).
    pub kv_cache_elements_per_token_per_layer: Option<u64>,
    #[serde(default)]
    pub sources: BTreeMap<String, String>,
}

impl ModelConfig {
    pub fn parse(file: &PipelineFile) -> Result<ModelConfig, PipelinesError> {
        let m: ModelConfig = toml::from_str(&file.text).map_err(|e| toml_error(file, e))?;
        if m.id != file.stem() {
            return Err(PipelinesError::Invalid {
                file: file.origin.clone(),
                key: "id".into(),
                message: format!("`{}` differs from the file name `{}`", m.id, file.stem()),
            });
        }
        Ok(m)
    }

    /// KV-cache elements per token and layer.
    pub fn kv_elements_per_token_per_layer(&self) -> u64 {
        self.kv_cache_elements_per_token_per_layer.unwrap_or(2 * self.kv_heads as u64 * self.head_dim as u64)
    }
}

/// Every model of `pipelines`, sorted by id.
pub fn load_all(pipelines: &Pipelines) -> Result<Vec<ModelConfig>, PipelinesError> {
    pipelines.files("models", "toml")?.iter().map(ModelConfig::parse).collect()
}
