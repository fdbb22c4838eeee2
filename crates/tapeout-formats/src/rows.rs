//! Column builders for the canonical `requests` table and for rejected records.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, Int64Builder, ListBuilder, RecordBatch, StringArray,
    StringBuilder, TimestampNanosecondArray,
};
use arrow::datatypes::Field;

/// One parsed request, borrowing its strings from the input bytes.
#[derive(Debug, Default, Clone)]
pub struct RequestRow<'a> {
    pub model: Option<&'a str>,
    pub request_id: Option<&'a str>,
    pub arrival_ns: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub num_images: Option<i64>,
    pub failed: Option<bool>,
    pub log_type: Option<&'a str>,
    pub latency_ms: Option<f64>,
    pub line: i64,
}

/// Accumulates [`RequestRow`]s (and Mooncake block hashes) column by column.
///
/// `workload` and `file` are the same for every row of one input, so they are given once to
/// [`RequestBatchBuilder::finish`] rather than stored per row.
#[derive(Debug)]
pub struct RequestBatchBuilder {
    model: StringBuilder,
    request_id: StringBuilder,
    arrival: Vec<i64>,
    input: Vec<i64>,
    output: Vec<i64>,
    num_images: Vec<Option<i64>>,
    block_hashes: ListBuilder<Int64Builder>,
    failed: Vec<Option<bool>>,
    log_type: StringBuilder,
    latency: Vec<Option<f64>>,
    line: Vec<i64>,
}

impl RequestBatchBuilder {
    /// A builder sized for about `capacity` rows.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            model: StringBuilder::new(),
            request_id: StringBuilder::new(),
            arrival: Vec::with_capacity(capacity),
            input: Vec::with_capacity(capacity),
            output: Vec::with_capacity(capacity),
            num_images: Vec::with_capacity(capacity),
            block_hashes: ListBuilder::new(Int64Builder::new()).with_field(Arc::new(Field::new(
                "item",
                arrow::datatypes::DataType::Int64,
                true,
            ))),
            failed: Vec::with_capacity(capacity),
            log_type: StringBuilder::new(),
            latency: Vec::with_capacity(capacity),
            line: Vec::with_capacity(capacity),
        }
    }

    /// Rows so far.
    pub fn len(&self) -> usize {
        self.arrival.len()
    }

    /// True when no row was pushed.
    pub fn is_empty(&self) -> bool {
        self.arrival.is_empty()
    }

    /// Appends one row; `hashes` is the Mooncake `hash_ids` list when the format has one.
    pub fn push(&mut self, row: &RequestRow<'_>, hashes: Option<&[i64]>) {
        self.model.append_option(row.model);
        self.request_id.append_option(row.request_id);
        self.arrival.push(row.arrival_ns);
        self.input.push(row.input_tokens);
        self.output.push(row.output_tokens);
        self.num_images.push(row.num_images);
        match hashes {
            Some(h) => {
                self.block_hashes.values().append_slice(h);
                self.block_hashes.append(true);
            }
            None => self.block_hashes.append(false),
        }
        self.failed.push(row.failed);
        self.log_type.append_option(row.log_type);
        self.latency.push(row.latency_ms);
        self.line.push(row.line);
    }

    /// Builds a batch in the `requests` file schema. `cached_tokens` is left null: it depends on
    /// every earlier record of the file, so [`crate::PrefixTracker`] fills it in file order.
    pub fn finish(mut self, workload: Option<&str>, file: &str) -> RecordBatch {
        let n = self.arrival.len();
        let schema = tapeout_schema::table("requests").file_schema();
        let constant = |v: Option<&str>| -> ArrayRef {
            match v {
                Some(v) => Arc::new(repeated(v, n)),
                None => Arc::new(StringArray::new_null(n)),
            }
        };
        let columns: Vec<ArrayRef> = vec![
            constant(workload),
            Arc::new(self.model.finish()),
            Arc::new(self.request_id.finish()),
            Arc::new(TimestampNanosecondArray::from(self.arrival).with_timezone("UTC")),
            Arc::new(Int64Array::from(self.input)),
            Arc::new(Int64Array::from(self.output)),
            Arc::new(Int64Array::from(self.num_images)),
            Arc::new(self.block_hashes.finish()),
            Arc::new(Int64Array::new_null(n)),
            Arc::new(BooleanArray::from(self.failed)),
            Arc::new(self.log_type.finish()),
            Arc::new(Float64Array::new_null(n)),
            Arc::new(Float64Array::new_null(n)),
            Arc::new(Float64Array::from(self.latency)),
            constant(Some(file)),
            Arc::new(Int64Array::from(self.line)),
        ];
        RecordBatch::try_new(schema, columns).expect("builder columns match the requests schema")
    }
}

/// `n` copies of `v`, built with one bulk copy rather than `n` appends.
pub fn repeated(v: &str, n: usize) -> StringArray {
    let offsets = arrow::buffer::OffsetBuffer::from_lengths(std::iter::repeat_n(v.len(), n));
    StringArray::new(offsets, arrow::buffer::Buffer::from(v.repeat(n).into_bytes()), None)
}

/// Why one input record was not turned into a row.
#[derive(Debug, Clone, PartialEq)]
pub struct Reject {
    /// 1-based line number in the decompressed file.
    pub line: u64,
    /// The field that failed, where one did.
    pub field: Option<String>,
    /// For people: what was wrong.
    pub reason: String,
    /// The record's text (lossy UTF-8, at most [`MAX_RAW_BYTES`] bytes).
    pub raw: String,
}

/// Longest raw text kept for a rejected record.
pub const MAX_RAW_BYTES: usize = 4096;

impl Reject {
    /// A reject for `raw` at `line`.
    pub fn new(line: u64, field: Option<&str>, reason: impl Into<String>, raw: &[u8]) -> Self {
        let cut = &raw[..raw.len().min(MAX_RAW_BYTES)];
        Reject {
            line,
            field: field.map(str::to_string),
            reason: reason.into(),
            raw: String::from_utf8_lossy(cut).into_owned(),
        }
    }
}
