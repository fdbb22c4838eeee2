//! Hardware profiles: `pipelines/hardware/<id>.toml`, one accelerator each. Units are base SI
//! (FLOP/s, bytes/s, bytes); every figure carries its public source in a comment of the file
//! and the `[sources]` table. A missing figure is absent (`None`), never guessed.

use std::collections::BTreeMap;

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};

use crate::{PipelineFile, Pipelines, PipelinesError, toml_error};

/// Dense peak FLOP/s (OPS for int8) per data type.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DtypeFlops {
    pub fp64: Option<f64>,
    pub fp32: Option<f64>,
    pub tf32: Option<f64>,
    pub bf16: Option<f64>,
    pub fp16: Option<f64>,
    pub fp8: Option<f64>,
    pub fp6: Option<f64>,
    pub fp4: Option<f64>,
    pub int8: Option<f64>,
}

impl DtypeFlops {
    /// The peak for a normalized dtype name (`bf16`, `fp32`, ...).
    pub fn get(&self, dtype: &str) -> Option<f64> {
        match dtype {
            "fp64" => self.fp64,
            "fp32" => self.fp32,
            "tf32" => self.tf32,
            "bf16" => self.bf16,
            "fp16" => self.fp16,
            "fp8" | "fp8_e4m3" | "fp8_e5m2" => self.fp8,
            "fp6" => self.fp6,
            "fp4" => self.fp4,
            "int8" => self.int8,
            _ => None,
        }
    }
}

/// Memory figures.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Memory {
    /// HBM (device memory) bandwidth, bytes/s.
    pub hbm_bandwidth: Option<f64>,
    /// HBM capacity, bytes.
    pub hbm_capacity: Option<f64>,
    /// Last-level on-chip cache, bytes.
    pub l2: Option<f64>,
    /// Other software-managed on-chip SRAM (e.g. Trainium SBUF), bytes.
    pub sram: Option<f64>,
}

/// Link bandwidths, bytes/s per device, one direction.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Links {
    /// Scale-up (NVLink, Infinity Fabric, NeuronLink, ICI).
    pub scale_up: Option<f64>,
    /// Scale-out NIC.
    pub scale_out: Option<f64>,
    /// Host link (PCIe, C2C).
    pub host: Option<f64>,
}

/// Power figures.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Power {
    pub tdp_watts: Option<f64>,
}

/// One accelerator.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HardwareProfile {
    /// Equals the file stem, e.g. `h100-sxm`.
    pub id: String,
    /// Marketing name.
    pub name: String,
    pub vendor: String,
    /// Regex matched case-insensitively (unanchored) against `deviceProperties[].name`.
    pub device_pattern: Option<String>,
    /// Matrix / tensor-unit peaks.
    #[serde(default)]
    pub matrix_flops: DtypeFlops,
    /// Vector / SIMT-unit peaks.
    #[serde(default)]
    pub vector_flops: DtypeFlops,
    #[serde(default)]
    pub memory: Memory,
    #[serde(default)]
    pub links: Links,
    #[serde(default)]
    pub power: Power,
    /// Source id → URL.
    #[serde(default)]
    pub sources: BTreeMap<String, String>,
}

impl HardwareProfile {
    /// Parses one profile file and checks its id and pattern.
    pub fn parse(file: &PipelineFile) -> Result<HardwareProfile, PipelinesError> {
        let p: HardwareProfile = toml::from_str(&file.text).map_err(|e| toml_error(file, e))?;
        let invalid = |key: &str, message: String| PipelinesError::Invalid {
            file: file.origin.clone(),
            key: key.into(),
            message,
        };
        if p.id != file.stem() {
            return Err(invalid("id", format!("`{}` differs from the file name `{}`", p.id, file.stem())));
        }
        if let Some(pat) = &p.device_pattern {
            RegexBuilder::new(pat)
                .case_insensitive(true)
                .build()
                .map_err(|e| invalid("device_pattern", e.to_string()))?;
        }
        let figures = [
            ("memory.hbm_bandwidth", p.memory.hbm_bandwidth),
            ("memory.hbm_capacity", p.memory.hbm_capacity),
            ("matrix_flops.bf16", p.matrix_flops.bf16),
            ("matrix_flops.fp16", p.matrix_flops.fp16),
            ("matrix_flops.fp32", p.matrix_flops.fp32),
            ("vector_flops.fp32", p.vector_flops.fp32),
            ("links.scale_up", p.links.scale_up),
        ];
        for (key, v) in figures {
            if v.is_some_and(|v| !(v.is_finite() && v > 0.0)) {
                return Err(invalid(key, "must be a positive number".into()));
            }
        }
        Ok(p)
    }

    /// The compiled device-name pattern.
    pub fn device_regex(&self) -> Option<Regex> {
        self.device_pattern.as_ref().and_then(|p| RegexBuilder::new(p).case_insensitive(true).build().ok())
    }
}

/// Every profile of `pipelines`, sorted by id.
pub fn load_all(pipelines: &Pipelines) -> Result<Vec<HardwareProfile>, PipelinesError> {
    pipelines.files("hardware", "toml")?.iter().map(HardwareProfile::parse).collect()
}

/// The profile called `id`, or an error listing the known ones.
pub fn find<'p>(profiles: &'p [HardwareProfile], id: &str) -> Result<&'p HardwareProfile, PipelinesError> {
    profiles.iter().find(|p| p.id == id).ok_or_else(|| PipelinesError::Unknown {
        kind: "hardware",
        name: id.into(),
        known: profiles.iter().map(|p| p.id.as_str()).collect::<Vec<_>>().join(", "),
    })
}

/// The profile whose `device_pattern` matches a trace's device name (the first by id).
pub fn match_device<'p>(profiles: &'p [HardwareProfile], device_name: &str) -> Option<&'p HardwareProfile> {
    profiles.iter().find(|p| p.device_regex().is_some_and(|r| r.is_match(device_name)))
}
