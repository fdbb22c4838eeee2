//! Column builder for the canonical `device_samples` table (schemas/device_samples.toml).
//!
//! Telemetry repeats the same few strings on every sample (host, UUID, model, metric, unit, label
//! sets), so the builder interns them: a row holds small ids, and every distinct string (and
//! every distinct label set) is stored once per builder until [`SampleBatchBuilder::finish`]
//! writes the plain `Utf8` / `Map<Utf8, Utf8>` columns of the file schema.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{
    ArrayBuilder, ArrayRef, Float64Array, Int32Array, Int64Array, MapArray, RecordBatch, StringArray, StringBuilder,
    StructArray, TimestampNanosecondArray,
};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::datatypes::DataType;

/// Id of an absent (null) string or label set.
const NONE: u32 = u32::MAX;

/// The string columns of a row, in this order.
const HOST: usize = 0;
const DEVICE_UUID: usize = 1;
const DEVICE_MODEL: usize = 2;
const MIG_INSTANCE: usize = 3;
const METRIC: usize = 4;
const UNIT: usize = 5;
const KIND: usize = 6;
const SOURCE_METRIC: usize = 7;
const WORKLOAD: usize = 8;
const JOB: usize = 9;
const NAMESPACE: usize = 10;
const POD: usize = 11;
const N_STR: usize = 12;

/// Where a sample is from: the device and attribution columns, shared by every sample of one
/// Prometheus series, one nvidia-smi line or one CSV record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SampleContext {
    pub host: Option<String>,
    pub device: Option<i32>,
    pub device_uuid: Option<String>,
    pub device_model: Option<String>,
    pub mig_instance: Option<String>,
    pub workload: Option<String>,
    pub job: Option<String>,
    pub namespace: Option<String>,
    pub pod: Option<String>,
    /// Every other label, sorted by key, keys unique (the `labels` map; empty → null).
    pub labels: Vec<(String, String)>,
}

/// What a sample measures, resolved through the metric map.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleMetric<'a> {
    pub metric: &'a str,
    pub unit: &'a str,
    pub kind: Option<&'a str>,
    pub source_metric: &'a str,
}

#[derive(Debug, Default, Clone)]
struct Interner {
    strings: Vec<Arc<str>>,
    ids: HashMap<Arc<str>, u32>,
}

impl Interner {
    fn id(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = u32::try_from(self.strings.len()).expect("fewer than 4 billion distinct strings per batch");
        let s: Arc<str> = Arc::from(s);
        self.strings.push(s.clone());
        self.ids.insert(s, id);
        id
    }

    fn opt(&mut self, s: Option<&str>) -> u32 {
        s.map_or(NONE, |s| self.id(s))
    }

    fn get(&self, id: u32) -> Option<&str> {
        (id != NONE).then(|| &*self.strings[id as usize])
    }
}

/// Interned context ids: the string columns of a [`SampleContext`] and its label set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ContextIds {
    strs: [u32; N_STR],
    device: Option<i32>,
    labels: u32,
}

/// Accumulates `device_samples` rows column by column. `file` is the same for every row of one
/// input, so it is given once to [`SampleBatchBuilder::finish`].
#[derive(Debug, Default, Clone)]
pub struct SampleBatchBuilder {
    strings: Interner,
    label_sets: Vec<Vec<(u32, u32)>>,
    label_set_ids: HashMap<Vec<(u32, u32)>, u32>,
    time: Vec<i64>,
    device: Vec<Option<i32>>,
    value: Vec<f64>,
    line: Vec<i64>,
    strs: Vec<[u32; N_STR]>,
    labels: Vec<u32>,
}

impl SampleBatchBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rows so far.
    pub fn len(&self) -> usize {
        self.time.len()
    }

    /// True when no row was pushed.
    pub fn is_empty(&self) -> bool {
        self.time.is_empty()
    }

    fn label_set(&mut self, pairs: Vec<(u32, u32)>) -> u32 {
        if pairs.is_empty() {
            return NONE;
        }
        if let Some(&id) = self.label_set_ids.get(&pairs) {
            return id;
        }
        let id = u32::try_from(self.label_sets.len()).expect("fewer than 4 billion label sets per batch");
        self.label_sets.push(pairs.clone());
        self.label_set_ids.insert(pairs, id);
        id
    }

    /// Interns a context once for the many samples that share it.
    pub(crate) fn context(&mut self, ctx: &SampleContext) -> ContextIds {
        let mut strs = [NONE; N_STR];
        strs[HOST] = self.strings.opt(ctx.host.as_deref());
        strs[DEVICE_UUID] = self.strings.opt(ctx.device_uuid.as_deref());
        strs[DEVICE_MODEL] = self.strings.opt(ctx.device_model.as_deref());
        strs[MIG_INSTANCE] = self.strings.opt(ctx.mig_instance.as_deref());
        strs[WORKLOAD] = self.strings.opt(ctx.workload.as_deref());
        strs[JOB] = self.strings.opt(ctx.job.as_deref());
        strs[NAMESPACE] = self.strings.opt(ctx.namespace.as_deref());
        strs[POD] = self.strings.opt(ctx.pod.as_deref());
        let pairs: Vec<(u32, u32)> = ctx.labels.iter().map(|(k, v)| (self.strings.id(k), self.strings.id(v))).collect();
        let labels = self.label_set(pairs);
        ContextIds { strs, device: ctx.device, labels }
    }

    /// Appends one sample of an interned context.
    pub(crate) fn push(&mut self, ctx: &ContextIds, m: &SampleMetric<'_>, time_ns: i64, value: f64, line: u64) {
        let mut strs = ctx.strs;
        strs[METRIC] = self.strings.id(m.metric);
        strs[UNIT] = self.strings.id(m.unit);
        strs[KIND] = self.strings.opt(m.kind);
        strs[SOURCE_METRIC] = self.strings.id(m.source_metric);
        self.strs.push(strs);
        self.device.push(ctx.device);
        self.labels.push(ctx.labels);
        self.time.push(time_ns);
        self.value.push(value);
        self.line.push(i64::try_from(line).unwrap_or(i64::MAX));
    }

    /// Moves every row of `other` to the end of this builder (rows keep their order).
    pub fn append(&mut self, other: SampleBatchBuilder) {
        if self.is_empty() {
            *self = other;
            return;
        }
        let map: Vec<u32> = other.strings.strings.iter().map(|s| self.strings.id(s)).collect();
        let remap = |id: u32| if id == NONE { NONE } else { map[id as usize] };
        let sets: Vec<u32> = other
            .label_sets
            .iter()
            .map(|pairs| {
                // Ids differ between builders; the key order (by string) does not.
                self.label_set(pairs.iter().map(|&(k, v)| (remap(k), remap(v))).collect())
            })
            .collect();
        self.strs.extend(other.strs.iter().map(|s| s.map(remap)));
        self.labels.extend(other.labels.iter().map(|&l| if l == NONE { NONE } else { sets[l as usize] }));
        self.time.extend(other.time);
        self.device.extend(other.device);
        self.value.extend(other.value);
        self.line.extend(other.line);
    }

    fn string_column(&self, col: usize) -> StringArray {
        let mut b = StringBuilder::with_capacity(self.len(), self.len() * 8);
        for s in &self.strs {
            b.append_option(self.strings.get(s[col]));
        }
        b.finish()
    }

    fn labels_column(&self, data_type: &DataType) -> MapArray {
        let DataType::Map(entries_field, ordered) = data_type else {
            unreachable!("device_samples.labels is declared map_utf8")
        };
        let DataType::Struct(entry_fields) = entries_field.data_type() else {
            unreachable!("a map's entries are a struct")
        };
        let mut keys = StringBuilder::new();
        let mut values = StringBuilder::new();
        let mut offsets = Vec::with_capacity(self.len() + 1);
        offsets.push(0i32);
        let mut valid = Vec::with_capacity(self.len());
        for &set in &self.labels {
            if set != NONE {
                for &(k, v) in &self.label_sets[set as usize] {
                    keys.append_value(self.strings.get(k).unwrap_or_default());
                    values.append_value(self.strings.get(v).unwrap_or_default());
                }
            }
            valid.push(set != NONE);
            let end = i32::try_from(keys.len()).expect("fewer than 2^31 label entries per batch");
            offsets.push(end);
        }
        let entries = StructArray::new(
            entry_fields.clone(),
            vec![Arc::new(keys.finish()) as ArrayRef, Arc::new(values.finish())],
            None,
        );
        let nulls = valid.iter().any(|v| !v).then(|| NullBuffer::from(valid));
        MapArray::try_new(entries_field.clone(), OffsetBuffer::new(offsets.into()), entries, nulls, *ordered)
            .expect("label entries match the declared map type")
    }

    /// Builds a batch in the `device_samples` file schema
    /// (`tapeout_schema::table("device_samples").file_schema()`).
    pub fn finish(self, file: &str) -> RecordBatch {
        let n = self.len();
        let schema = tapeout_schema::table("device_samples").file_schema();
        let columns: Vec<ArrayRef> = schema
            .fields()
            .iter()
            .map(|f| -> ArrayRef {
                match f.name().as_str() {
                    "time" => Arc::new(TimestampNanosecondArray::from(self.time.clone()).with_timezone("UTC")),
                    "host" => Arc::new(self.string_column(HOST)),
                    "device" => Arc::new(Int32Array::from(self.device.clone())),
                    "device_uuid" => Arc::new(self.string_column(DEVICE_UUID)),
                    "device_model" => Arc::new(self.string_column(DEVICE_MODEL)),
                    "mig_instance" => Arc::new(self.string_column(MIG_INSTANCE)),
                    "metric" => Arc::new(self.string_column(METRIC)),
                    "value" => Arc::new(Float64Array::from(self.value.clone())),
                    "unit" => Arc::new(self.string_column(UNIT)),
                    "kind" => Arc::new(self.string_column(KIND)),
                    "source_metric" => Arc::new(self.string_column(SOURCE_METRIC)),
                    "workload" => Arc::new(self.string_column(WORKLOAD)),
                    "job" => Arc::new(self.string_column(JOB)),
                    "namespace" => Arc::new(self.string_column(NAMESPACE)),
                    "pod" => Arc::new(self.string_column(POD)),
                    "labels" => Arc::new(self.labels_column(f.data_type())),
                    "file" => Arc::new(crate::rows::repeated(file, n)),
                    "line" => Arc::new(Int64Array::from(self.line.clone())),
                    other => panic!("device_samples column `{other}` has no builder"),
                }
            })
            .collect();
        RecordBatch::try_new(schema, columns).expect("builder columns match the device_samples schema")
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Array, AsArray};

    use super::*;

    fn ctx(host: &str, labels: &[(&str, &str)]) -> SampleContext {
        SampleContext {
            host: Some(host.into()),
            labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ..Default::default()
        }
    }

    fn metric(m: &str) -> SampleMetric<'_> {
        SampleMetric { metric: m, unit: "ratio", kind: Some("gauge"), source_metric: m }
    }

    #[test]
    fn empty_batch_has_the_schema() {
        let b = SampleBatchBuilder::new().finish("f");
        assert_eq!(b.num_rows(), 0);
        assert_eq!(b.schema(), tapeout_schema::table("device_samples").file_schema());
    }

    #[test]
    fn append_remaps_strings_and_label_sets() {
        let mut a = SampleBatchBuilder::new();
        let c = a.context(&ctx("h1", &[("a", "1"), ("b", "2")]));
        a.push(&c, &metric("x"), 10, 1.0, 3);
        let mut b = SampleBatchBuilder::new();
        let c2 = b.context(&ctx("h2", &[("b", "2"), ("c", "3")]));
        let c3 = b.context(&ctx("h1", &[]));
        b.push(&c2, &metric("y"), 20, 2.0, 4);
        b.push(&c3, &metric("x"), 30, 3.0, 5);
        a.append(b);
        let batch = a.finish("/f");
        assert_eq!(batch.num_rows(), 3);
        let host = batch.column_by_name("host").unwrap().as_string::<i32>();
        assert_eq!((host.value(0), host.value(1), host.value(2)), ("h1", "h2", "h1"));
        let labels = batch.column_by_name("labels").unwrap().as_map();
        assert!(labels.is_null(2));
        let row1 = labels.value(1);
        let keys: Vec<&str> = row1.column(0).as_string::<i32>().iter().map(|k| k.unwrap()).collect();
        assert_eq!(keys, ["b", "c"]);
        let line = batch.column_by_name("line").unwrap().as_primitive::<arrow::datatypes::Int64Type>();
        assert_eq!(line.values().to_vec(), vec![3, 4, 5]);
    }
}
