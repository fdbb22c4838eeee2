//! Arrow schemas and column builders for the `kernels`, `ops` and `devices` tables.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int32Builder, Int64Builder, ListBuilder, RecordBatch, StringBuilder,
    TimestampNanosecondBuilder,
};
use arrow::datatypes::{DataType, Field, SchemaRef};

/// Arrow schema of the `kernels` table's files (declared in schemas/kernels.toml).
pub fn kernels_schema() -> SchemaRef {
    tapeout_schema::table("kernels").file_schema()
}

/// Arrow schema of the `ops` table's files (declared in schemas/ops.toml).
pub fn ops_schema() -> SchemaRef {
    tapeout_schema::table("ops").file_schema()
}

/// Arrow schema of the `devices` table's files (declared in schemas/devices.toml).
pub fn devices_schema() -> SchemaRef {
    tapeout_schema::table("devices").file_schema()
}

/// One `kernels` row; strings borrow from the input or the linking state.
#[derive(Debug, Default, Clone)]
pub struct KernelRow<'r> {
    pub event_index: i64,
    pub activity: &'r str,
    pub device: Option<i32>,
    pub stream: Option<i64>,
    pub name: &'r str,
    pub category: &'r str,
    pub hta_category: &'r str,
    pub start_ns: i64,
    pub dur_ns: i64,
    pub correlation: Option<i64>,
    pub external_id: Option<i64>,
    pub grid: Option<Vec<i64>>,
    pub block: Option<Vec<i64>>,
    pub registers_per_thread: Option<i32>,
    pub shared_memory: Option<i64>,
    pub occupancy_pct: Option<f64>,
    pub memcpy_direction: Option<&'r str>,
    pub copy_bytes: Option<i64>,
    pub op: Option<&'r str>,
    pub op_link: Option<&'r str>,
    pub op_input_dims: Option<&'r str>,
    pub op_input_types: Option<&'r str>,
    pub flops: Option<i64>,
    pub bytes: Option<i64>,
    pub dtype: Option<&'r str>,
    pub step: Option<i64>,
    pub hta_window: bool,
    pub collective: Option<&'r str>,
    pub in_msg_nelems: Option<i64>,
    pub out_msg_nelems: Option<i64>,
    pub in_msg_bytes: Option<i64>,
    pub out_msg_bytes: Option<i64>,
    pub group_size: Option<i32>,
    pub pg_name: Option<&'r str>,
    pub pg_desc: Option<&'r str>,
    pub nccl_algorithm: Option<&'r str>,
    pub nccl_protocol: Option<&'r str>,
    pub launch_start_ns: Option<i64>,
    pub launch_dur_ns: Option<i64>,
    pub op_event_index: Option<i64>,
}

fn list_builder() -> ListBuilder<Int32Builder> {
    ListBuilder::new(Int32Builder::new()).with_field(Arc::new(Field::new("item", DataType::Int32, true)))
}

fn push_list(b: &mut ListBuilder<Int32Builder>, v: Option<&[i64]>) {
    match v {
        Some(v) => {
            for &x in v {
                b.values().append_option(i32::try_from(x).ok());
            }
            b.append(true);
        }
        None => b.append(false),
    }
}

/// Accumulates [`KernelRow`]s column by column.
pub struct KernelBatchBuilder {
    rows: usize,
    event_index: Int64Builder,
    activity: StringBuilder,
    device: Int32Builder,
    stream: Int64Builder,
    name: StringBuilder,
    category: StringBuilder,
    hta_category: StringBuilder,
    start_ns: Int64Builder,
    start_time: TimestampNanosecondBuilder,
    dur_ns: Int64Builder,
    correlation: Int64Builder,
    external_id: Int64Builder,
    grid: ListBuilder<Int32Builder>,
    block: ListBuilder<Int32Builder>,
    registers: Int32Builder,
    shared_memory: Int64Builder,
    occupancy: Float64Builder,
    memcpy_direction: StringBuilder,
    copy_bytes: Int64Builder,
    op: StringBuilder,
    op_link: StringBuilder,
    op_input_dims: StringBuilder,
    op_input_types: StringBuilder,
    flops: Int64Builder,
    bytes: Int64Builder,
    dtype: StringBuilder,
    step: Int64Builder,
    hta_window: BooleanBuilder,
    collective: StringBuilder,
    in_nelems: Int64Builder,
    out_nelems: Int64Builder,
    in_bytes: Int64Builder,
    out_bytes: Int64Builder,
    group_size: Int32Builder,
    pg_name: StringBuilder,
    pg_desc: StringBuilder,
    algorithm: StringBuilder,
    protocol: StringBuilder,
    launch_start: Int64Builder,
    launch_dur: Int64Builder,
    op_event_index: Int64Builder,
}

impl Default for KernelBatchBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl KernelBatchBuilder {
    pub fn new() -> Self {
        KernelBatchBuilder {
            rows: 0,
            event_index: Int64Builder::new(),
            activity: StringBuilder::new(),
            device: Int32Builder::new(),
            stream: Int64Builder::new(),
            name: StringBuilder::new(),
            category: StringBuilder::new(),
            hta_category: StringBuilder::new(),
            start_ns: Int64Builder::new(),
            start_time: TimestampNanosecondBuilder::new().with_timezone("UTC"),
            dur_ns: Int64Builder::new(),
            correlation: Int64Builder::new(),
            external_id: Int64Builder::new(),
            grid: list_builder(),
            block: list_builder(),
            registers: Int32Builder::new(),
            shared_memory: Int64Builder::new(),
            occupancy: Float64Builder::new(),
            memcpy_direction: StringBuilder::new(),
            copy_bytes: Int64Builder::new(),
            op: StringBuilder::new(),
            op_link: StringBuilder::new(),
            op_input_dims: StringBuilder::new(),
            op_input_types: StringBuilder::new(),
            flops: Int64Builder::new(),
            bytes: Int64Builder::new(),
            dtype: StringBuilder::new(),
            step: Int64Builder::new(),
            hta_window: BooleanBuilder::new(),
            collective: StringBuilder::new(),
            in_nelems: Int64Builder::new(),
            out_nelems: Int64Builder::new(),
            in_bytes: Int64Builder::new(),
            out_bytes: Int64Builder::new(),
            group_size: Int32Builder::new(),
            pg_name: StringBuilder::new(),
            pg_desc: StringBuilder::new(),
            algorithm: StringBuilder::new(),
            protocol: StringBuilder::new(),
            launch_start: Int64Builder::new(),
            launch_dur: Int64Builder::new(),
            op_event_index: Int64Builder::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Appends a row; `base_ns` is baseTimeNanoseconds when the trace has one.
    pub fn push(&mut self, r: &KernelRow<'_>, base_ns: Option<i64>) {
        self.rows += 1;
        self.event_index.append_value(r.event_index);
        self.activity.append_value(r.activity);
        self.device.append_option(r.device);
        self.stream.append_option(r.stream);
        self.name.append_value(r.name);
        self.category.append_value(r.category);
        self.hta_category.append_value(r.hta_category);
        self.start_ns.append_value(r.start_ns);
        self.start_time.append_option(base_ns.and_then(|b| b.checked_add(r.start_ns)));
        self.dur_ns.append_value(r.dur_ns);
        self.correlation.append_option(r.correlation);
        self.external_id.append_option(r.external_id);
        push_list(&mut self.grid, r.grid.as_deref());
        push_list(&mut self.block, r.block.as_deref());
        self.registers.append_option(r.registers_per_thread);
        self.shared_memory.append_option(r.shared_memory);
        self.occupancy.append_option(r.occupancy_pct);
        self.memcpy_direction.append_option(r.memcpy_direction);
        self.copy_bytes.append_option(r.copy_bytes);
        self.op.append_option(r.op);
        self.op_link.append_option(r.op_link);
        self.op_input_dims.append_option(r.op_input_dims);
        self.op_input_types.append_option(r.op_input_types);
        self.flops.append_option(r.flops);
        self.bytes.append_option(r.bytes);
        self.dtype.append_option(r.dtype);
        self.step.append_option(r.step);
        self.hta_window.append_value(r.hta_window);
        self.collective.append_option(r.collective);
        self.in_nelems.append_option(r.in_msg_nelems);
        self.out_nelems.append_option(r.out_msg_nelems);
        self.in_bytes.append_option(r.in_msg_bytes);
        self.out_bytes.append_option(r.out_msg_bytes);
        self.group_size.append_option(r.group_size);
        self.pg_name.append_option(r.pg_name);
        self.pg_desc.append_option(r.pg_desc);
        self.algorithm.append_option(r.nccl_algorithm);
        self.protocol.append_option(r.nccl_protocol);
        self.launch_start.append_option(r.launch_start_ns);
        self.launch_dur.append_option(r.launch_dur_ns);
        self.op_event_index.append_option(r.op_event_index);
    }

    /// Builds a batch in [`kernels_schema`] and empties the builder.
    pub fn finish(&mut self, file: &str, rank: i32) -> RecordBatch {
        let n = std::mem::take(&mut self.rows);
        let columns: Vec<ArrayRef> = vec![
            constant_str(file, n),
            constant_i32(rank, n),
            Arc::new(self.event_index.finish()),
            Arc::new(self.activity.finish()),
            Arc::new(self.device.finish()),
            Arc::new(self.stream.finish()),
            Arc::new(self.name.finish()),
            Arc::new(self.category.finish()),
            Arc::new(self.hta_category.finish()),
            Arc::new(self.start_ns.finish()),
            Arc::new(self.start_time.finish()),
            Arc::new(self.dur_ns.finish()),
            Arc::new(self.correlation.finish()),
            Arc::new(self.external_id.finish()),
            Arc::new(self.grid.finish()),
            Arc::new(self.block.finish()),
            Arc::new(self.registers.finish()),
            Arc::new(self.shared_memory.finish()),
            Arc::new(self.occupancy.finish()),
            Arc::new(self.memcpy_direction.finish()),
            Arc::new(self.copy_bytes.finish()),
            Arc::new(self.op.finish()),
            Arc::new(self.op_link.finish()),
            Arc::new(self.op_input_dims.finish()),
            Arc::new(self.op_input_types.finish()),
            Arc::new(self.flops.finish()),
            Arc::new(self.bytes.finish()),
            Arc::new(self.dtype.finish()),
            Arc::new(self.step.finish()),
            Arc::new(self.hta_window.finish()),
            Arc::new(self.collective.finish()),
            Arc::new(self.in_nelems.finish()),
            Arc::new(self.out_nelems.finish()),
            Arc::new(self.in_bytes.finish()),
            Arc::new(self.out_bytes.finish()),
            Arc::new(self.group_size.finish()),
            Arc::new(self.pg_name.finish()),
            Arc::new(self.pg_desc.finish()),
            Arc::new(self.algorithm.finish()),
            Arc::new(self.protocol.finish()),
            Arc::new(self.launch_start.finish()),
            Arc::new(self.launch_dur.finish()),
            Arc::new(self.op_event_index.finish()),
        ];
        RecordBatch::try_new(kernels_schema(), columns).expect("builder columns match the kernels schema")
    }
}

fn constant_str(v: &str, n: usize) -> ArrayRef {
    Arc::new(arrow::array::StringArray::from_iter_values(std::iter::repeat_n(v, n)))
}

fn constant_i32(v: i32, n: usize) -> ArrayRef {
    Arc::new(arrow::array::Int32Array::from_iter_values(std::iter::repeat_n(v, n)))
}

/// One `ops` row.
#[derive(Debug, Clone)]
pub struct OpRow<'r> {
    pub event_index: i64,
    pub cat: &'r str,
    pub name: &'r str,
    pub pid: &'r str,
    pub tid: &'r str,
    pub start_ns: i64,
    pub dur_ns: i64,
    pub external_id: Option<i64>,
    pub input_dims: Option<&'r str>,
    pub input_types: Option<&'r str>,
    pub step: Option<i64>,
}

/// Accumulates [`OpRow`]s.
#[derive(Default)]
pub struct OpBatchBuilder {
    rows: usize,
    event_index: Int64Builder,
    cat: StringBuilder,
    name: StringBuilder,
    pid: StringBuilder,
    tid: StringBuilder,
    start_ns: Int64Builder,
    start_time: Vec<Option<i64>>,
    dur_ns: Int64Builder,
    external_id: Int64Builder,
    input_dims: StringBuilder,
    input_types: StringBuilder,
    step: Int64Builder,
}

impl OpBatchBuilder {
    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    pub fn push(&mut self, r: &OpRow<'_>, base_ns: Option<i64>) {
        self.rows += 1;
        self.event_index.append_value(r.event_index);
        self.cat.append_value(r.cat);
        self.name.append_value(r.name);
        self.pid.append_value(r.pid);
        self.tid.append_value(r.tid);
        self.start_ns.append_value(r.start_ns);
        self.start_time.push(base_ns.and_then(|b| b.checked_add(r.start_ns)));
        self.dur_ns.append_value(r.dur_ns);
        self.external_id.append_option(r.external_id);
        self.input_dims.append_option(r.input_dims);
        self.input_types.append_option(r.input_types);
        self.step.append_option(r.step);
    }

    /// Builds a batch in [`ops_schema`] and empties the builder.
    pub fn finish(&mut self, file: &str, rank: i32) -> RecordBatch {
        let n = std::mem::take(&mut self.rows);
        let start_time = arrow::array::TimestampNanosecondArray::from(std::mem::take(&mut self.start_time));
        let columns: Vec<ArrayRef> = vec![
            constant_str(file, n),
            constant_i32(rank, n),
            Arc::new(self.event_index.finish()),
            Arc::new(self.cat.finish()),
            Arc::new(self.name.finish()),
            Arc::new(self.pid.finish()),
            Arc::new(self.tid.finish()),
            Arc::new(self.start_ns.finish()),
            Arc::new(start_time.with_timezone("UTC")),
            Arc::new(self.dur_ns.finish()),
            Arc::new(self.external_id.finish()),
            Arc::new(self.input_dims.finish()),
            Arc::new(self.input_types.finish()),
            Arc::new(self.step.finish()),
        ];
        RecordBatch::try_new(ops_schema(), columns).expect("builder columns match the ops schema")
    }
}

/// One deviceProperties entry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Device {
    pub id: Option<i32>,
    pub name: Option<String>,
    pub compute_major: Option<i64>,
    pub compute_minor: Option<i64>,
    pub num_sms: Option<i64>,
    pub total_global_mem: Option<i64>,
    pub max_threads_per_block: Option<i64>,
    pub max_threads_per_sm: Option<i64>,
    pub regs_per_block: Option<i64>,
    pub regs_per_sm: Option<i64>,
    pub warp_size: Option<i64>,
    pub shared_mem_per_block: Option<i64>,
    pub shared_mem_per_sm: Option<i64>,
    pub shared_mem_per_block_optin: Option<i64>,
}

impl Device {
    /// Reads one entry; unknown keys are ignored, mistyped values become null.
    pub(crate) fn from_json(v: &serde_json::Value) -> Device {
        let int = |k: &str| v.get(k).and_then(|x| x.as_i64().or_else(|| x.as_f64().map(|f| f as i64)));
        Device {
            id: int("id").and_then(|i| i32::try_from(i).ok()),
            name: v.get("name").and_then(|n| n.as_str()).map(str::to_string),
            compute_major: int("computeMajor"),
            compute_minor: int("computeMinor"),
            num_sms: int("numSms"),
            total_global_mem: int("totalGlobalMem"),
            max_threads_per_block: int("maxThreadsPerBlock"),
            max_threads_per_sm: int("maxThreadsPerMultiprocessor"),
            regs_per_block: int("regsPerBlock"),
            regs_per_sm: int("regsPerMultiprocessor"),
            warp_size: int("warpSize"),
            shared_mem_per_block: int("sharedMemPerBlock"),
            shared_mem_per_sm: int("sharedMemPerMultiprocessor").or_else(|| int("maxSharedMemoryPerMultiProcessor")),
            shared_mem_per_block_optin: int("sharedMemPerBlockOptin"),
        }
    }
}

/// Builds the `devices` batch.
pub fn devices_batch(devices: &[Device], file: &str, rank: i32) -> RecordBatch {
    let n = devices.len();
    let i64s = |f: fn(&Device) -> Option<i64>| -> ArrayRef {
        Arc::new(arrow::array::Int64Array::from(devices.iter().map(f).collect::<Vec<_>>()))
    };
    let cc: Vec<Option<String>> =
        devices.iter().map(|d| Some(format!("{}.{}", d.compute_major?, d.compute_minor?))).collect();
    let columns: Vec<ArrayRef> = vec![
        constant_str(file, n),
        constant_i32(rank, n),
        Arc::new(arrow::array::Int32Array::from(devices.iter().map(|d| d.id).collect::<Vec<_>>())),
        Arc::new(arrow::array::StringArray::from(devices.iter().map(|d| d.name.as_deref()).collect::<Vec<_>>())),
        Arc::new(arrow::array::StringArray::from(cc)),
        i64s(|d| d.num_sms),
        i64s(|d| d.total_global_mem),
        i64s(|d| d.max_threads_per_block),
        i64s(|d| d.max_threads_per_sm),
        i64s(|d| d.regs_per_block),
        i64s(|d| d.regs_per_sm),
        i64s(|d| d.warp_size),
        i64s(|d| d.shared_mem_per_block),
        i64s(|d| d.shared_mem_per_sm),
        i64s(|d| d.shared_mem_per_block_optin),
    ];
    RecordBatch::try_new(devices_schema(), columns).expect("columns match the devices schema")
}
