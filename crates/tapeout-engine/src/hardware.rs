//! The `hardware` table: one row per hardware profile (pipelines/hardware/*.toml), so mining
//! jobs can join a trace's device to its peaks (`regexp_like(devices.name, device_pattern, 'i')`).

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::error::ArrowError;
use tapeout_pipelines::hardware::HardwareProfile;

type Getter = fn(&HardwareProfile) -> Option<f64>;

/// Numeric columns: name, unit and how to read it from a profile.
pub const NUMERIC_COLUMNS: &[(&str, &str, Getter)] = &[
    ("matrix_fp64", "FLOP/s", |p| p.matrix_flops.fp64),
    ("matrix_fp32", "FLOP/s", |p| p.matrix_flops.fp32),
    ("matrix_tf32", "FLOP/s", |p| p.matrix_flops.tf32),
    ("matrix_bf16", "FLOP/s", |p| p.matrix_flops.bf16),
    ("matrix_fp16", "FLOP/s", |p| p.matrix_flops.fp16),
    ("matrix_fp8", "FLOP/s", |p| p.matrix_flops.fp8),
    ("matrix_fp6", "FLOP/s", |p| p.matrix_flops.fp6),
    ("matrix_fp4", "FLOP/s", |p| p.matrix_flops.fp4),
    ("matrix_int8", "OP/s", |p| p.matrix_flops.int8),
    ("vector_fp64", "FLOP/s", |p| p.vector_flops.fp64),
    ("vector_fp32", "FLOP/s", |p| p.vector_flops.fp32),
    ("vector_bf16", "FLOP/s", |p| p.vector_flops.bf16),
    ("vector_fp16", "FLOP/s", |p| p.vector_flops.fp16),
    ("hbm_bandwidth", "bytes/s", |p| p.memory.hbm_bandwidth),
    ("hbm_capacity", "bytes", |p| p.memory.hbm_capacity),
    ("l2_bytes", "bytes", |p| p.memory.l2),
    ("sram_bytes", "bytes", |p| p.memory.sram),
    ("scale_up_bandwidth", "bytes/s, one direction", |p| p.links.scale_up),
    ("scale_out_bandwidth", "bytes/s, one direction", |p| p.links.scale_out),
    ("host_bandwidth", "bytes/s", |p| p.links.host),
    ("tdp_watts", "W", |p| p.power.tdp_watts),
];

/// The table's rows.
pub fn profiles_batch(profiles: &[HardwareProfile]) -> Result<RecordBatch, ArrowError> {
    let mut fields = vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("vendor", DataType::Utf8, false),
        Field::new("device_pattern", DataType::Utf8, true),
    ];
    let text = |f: fn(&HardwareProfile) -> Option<&str>| -> ArrayRef {
        Arc::new(profiles.iter().map(f).collect::<StringArray>())
    };
    let mut columns: Vec<ArrayRef> = vec![
        text(|p| Some(p.id.as_str())),
        text(|p| Some(p.name.as_str())),
        text(|p| Some(p.vendor.as_str())),
        text(|p| p.device_pattern.as_deref()),
    ];
    for (name, _, get) in NUMERIC_COLUMNS {
        fields.push(Field::new(*name, DataType::Float64, true));
        columns.push(Arc::new(profiles.iter().map(get).collect::<Float64Array>()));
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
}
