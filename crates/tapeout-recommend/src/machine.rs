//! [`Machine`]: the numbers of one hardware profile the cost model uses, and how a feature
//! changes them ([`Machine::with`]).

use serde::Serialize;
use tapeout_pipelines::hardware::HardwareProfile;

use crate::features::Change;

/// Normalizes a dtype name (`bfloat16`, `c10::BFloat16`, `float16`, `half`, `float`...) to the
/// profile keys (`bf16`, `fp16`, `fp32`, `fp8`, `int8`, ...).
pub fn normalize_dtype(d: &str) -> Option<&'static str> {
    let d = d.to_ascii_lowercase();
    let d = d.trim_start_matches("c10::").trim_start_matches("torch.");
    Some(match d {
        "bf16" | "bfloat16" => "bf16",
        "fp16" | "float16" | "half" => "fp16",
        "fp32" | "float32" | "float" => "fp32",
        "tf32" => "tf32",
        "fp64" | "float64" | "double" => "fp64",
        "int8" | "uint8" | "char" | "byte" => "int8",
        d if d.starts_with("float8") || d.starts_with("fp8") => "fp8",
        d if d.starts_with("float4") || d.starts_with("fp4") => "fp4",
        _ => return None,
    })
}

/// Bytes per element of a normalized dtype.
pub fn dtype_bytes(d: &str) -> f64 {
    match d {
        "fp64" => 8.0,
        "fp32" | "tf32" => 4.0,
        "bf16" | "fp16" => 2.0,
        "fp8" | "int8" => 1.0,
        "fp4" => 0.5,
        _ => 2.0,
    }
}

/// Which units a piece of work runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Tensor / matrix units (GEMM, attention, convolution).
    Matrix,
    /// Vector / SIMT units (elementwise, softmax, norms, reductions).
    Vector,
}

/// A hardware profile's figures plus the state a feature can change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Machine {
    pub id: String,
    pub name: String,
    pub matrix: Vec<(&'static str, f64)>,
    pub vector_fp32: Option<f64>,
    /// bytes/s
    pub hbm_bandwidth: f64,
    /// bytes
    pub hbm_capacity: Option<f64>,
    /// bytes: on-chip SRAM (L2 or software-managed, the larger)
    pub sram: Option<f64>,
    /// bytes/s, one direction
    pub scale_up: Option<f64>,
    pub scale_out: Option<f64>,
    /// Multiplier on launch overhead (1 = as measured).
    pub launch_overhead: f64,
    pub collective_offload: bool,
    /// (from, to): matrix work and stored tensors of `from` move to `to`.
    pub precision: Option<(String, String)>,
    /// Multipliers applied so far (for vector/matrix FLOPs, kept for display).
    pub matrix_scale: f64,
    pub vector_scale: f64,
}

/// Why a profile cannot be used as a baseline.
#[derive(Debug, thiserror::Error)]
#[error(
    "hardware `{id}` has no {what}; the cost model needs it (add it to pipelines/hardware/{id}.toml with its source)"
)]
pub struct MissingFigure {
    pub id: String,
    pub what: &'static str,
}

impl Machine {
    pub fn from_profile(p: &HardwareProfile) -> Result<Machine, MissingFigure> {
        let m = &p.matrix_flops;
        let matrix: Vec<(&'static str, f64)> = [
            ("fp64", m.fp64),
            ("fp32", m.fp32),
            ("tf32", m.tf32),
            ("bf16", m.bf16),
            ("fp16", m.fp16),
            ("fp8", m.fp8),
            ("fp6", m.fp6),
            ("fp4", m.fp4),
            ("int8", m.int8),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
        let hbm_bandwidth =
            p.memory.hbm_bandwidth.ok_or_else(|| MissingFigure { id: p.id.clone(), what: "memory.hbm_bandwidth" })?;
        if matrix.is_empty() && p.vector_flops.fp32.is_none() {
            return Err(MissingFigure { id: p.id.clone(), what: "FLOP/s figure (matrix_flops or vector_flops)" });
        }
        let sram = match (p.memory.l2, p.memory.sram) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        Ok(Machine {
            id: p.id.clone(),
            name: p.name.clone(),
            matrix,
            vector_fp32: p.vector_flops.fp32,
            hbm_bandwidth,
            hbm_capacity: p.memory.hbm_capacity,
            sram,
            scale_up: p.links.scale_up,
            scale_out: p.links.scale_out,
            launch_overhead: 1.0,
            collective_offload: false,
            precision: None,
            matrix_scale: 1.0,
            vector_scale: 1.0,
        })
    }

    /// The machine with `change` applied.
    pub fn with(&self, change: &Change) -> Machine {
        let mut m = self.clone();
        let x = |v: Option<f64>| v.unwrap_or(1.0);
        let f = x(change.matrix_flops);
        if f != 1.0 {
            m.matrix.iter_mut().for_each(|(_, v)| *v *= f);
            m.matrix_scale *= f;
        }
        let v = x(change.vector_flops);
        m.vector_fp32 = m.vector_fp32.map(|p| p * v);
        m.vector_scale *= v;
        m.hbm_bandwidth *= x(change.hbm_bandwidth);
        m.hbm_capacity = m.hbm_capacity.map(|c| c * x(change.hbm_capacity));
        m.sram = m.sram.map(|s| s * x(change.sram));
        m.scale_up = m.scale_up.map(|s| s * x(change.scale_up));
        m.scale_out = m.scale_out.map(|s| s * x(change.scale_out));
        m.launch_overhead *= x(change.launch_overhead);
        m.collective_offload |= change.collective_offload.unwrap_or(false);
        if let Some(p) = &change.precision {
            m.precision = Some((p.from.clone(), p.to.clone()));
        }
        m
    }

    fn matrix_raw(&self, dtype: &str) -> Option<f64> {
        self.matrix.iter().find(|(k, _)| *k == dtype).map(|(_, v)| *v)
    }

    /// The dtype work of `dtype` runs in on this machine (after a precision change).
    pub fn effective_dtype<'a>(&'a self, dtype: &'a str) -> &'a str {
        match &self.precision {
            // fp16 work moves with bf16 (same width, same peak on every profile here).
            Some((from, to)) if dtype == from || (from == "bf16" && dtype == "fp16") => to,
            _ => dtype,
        }
    }

    /// Bytes multiplier of stored tensors of `dtype` after a precision change.
    pub fn bytes_factor(&self, dtype: &str) -> f64 {
        let eff = self.effective_dtype(dtype);
        if eff == dtype { 1.0 } else { dtype_bytes(eff) / dtype_bytes(dtype) }
    }

    /// Peak FLOP/s for `dtype` on `unit`. Matrix work falls back: fp32 without a matrix fp32
    /// figure runs on the vector units (PyTorch's default, TF32 off); a dtype without a figure
    /// uses the nearest wider one (fp8 → bf16), never a guess.
    pub fn peak(&self, unit: Unit, dtype: &str) -> f64 {
        let dtype = self.effective_dtype(dtype);
        let vector = || self.vector_fp32.or_else(|| self.matrix_raw("fp32")).unwrap_or(f64::INFINITY);
        match unit {
            Unit::Vector => vector(),
            Unit::Matrix => {
                let chain: &[&str] = match dtype {
                    "fp32" => &["fp32"],
                    "tf32" => &["tf32", "fp32"],
                    "fp16" => &["fp16", "bf16"],
                    "bf16" => &["bf16", "fp16"],
                    "fp8" => &["fp8", "bf16", "fp16"],
                    "fp4" => &["fp4", "fp8", "bf16"],
                    "int8" => &["int8", "fp8", "bf16"],
                    _ => &["bf16", "fp16"],
                };
                chain.iter().find_map(|d| self.matrix_raw(d)).unwrap_or_else(vector)
            }
        }
    }

    /// Link bandwidth for a collective among `group` ranks: scale-up within a node (≤ 8 ranks,
    /// an assumption), else scale-out; bytes/s one direction.
    pub fn link_bandwidth(&self, group: u32) -> Option<f64> {
        if group <= 8 { self.scale_up.or(self.scale_out) } else { self.scale_out.or(self.scale_up) }
    }
}
