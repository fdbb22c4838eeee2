//! Typed rows of the mined tables the recommender and the report read: one struct per mining
//! job (`pipelines/sql/<job>.sql`), its fields named after the job's columns.
//!
//! The struct is the single source of the columns: [`MinedTable::columns`] reads them off its
//! `Deserialize` impl, so a reader can check a mined table's schema before decoding and fail
//! with [`MinedError::MissingColumn`] (naming job and column) instead of reading a silent 0.
//! Values may be null (a column that exists but has no value in a row): numeric fields are
//! `Option<f64>` (JSON numbers; a reader casts decimal columns to double first) and the model
//! decides, per use, what a missing value means.
//!
//! Adding a job's rows to the recommender touches this file only: a row struct with its
//! [`MinedTable`] impl, a field of [`Mined`], and its line in [`Mined::tables`] and
//! [`Mined::from_rows`].

use std::collections::BTreeMap;

use serde::de::{DeserializeOwned, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Errors reading mined rows.
#[derive(Debug, thiserror::Error)]
pub enum MinedError {
    /// The mined table lacks a column the recommender reads (the job's SQL changed, or the
    /// result was mined by another version of the job).
    #[error(
        "mined table `{job}` has no column `{column}`, which the recommender reads; re-run `tapeout mine --force` with the job from pipelines/sql/{job}.sql"
    )]
    MissingColumn { job: String, column: String },
    /// A row's value has the wrong type.
    #[error("mined table `{job}`, row {row}: {message}")]
    Decode { job: String, row: usize, message: String },
}

/// Rows of one mining job's result table.
pub trait MinedTable: DeserializeOwned {
    /// The job (and result table) name.
    const JOB: &'static str;

    /// The columns read, in field order (from the `Deserialize` impl).
    fn columns() -> &'static [&'static str] {
        field_names::<Self>()
    }
}

/// `kernel_category_time`: per (workload, file, rank, category); span and busy time per rank.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct KernelCategoryTime {
    pub workload: Option<String>,
    pub file: Option<String>,
    pub rank: Option<f64>,
    pub span_ns: Option<f64>,
    pub busy_ns: Option<f64>,
}

impl MinedTable for KernelCategoryTime {
    const JOB: &'static str = "kernel_category_time";
}

/// `kernel_time_buckets`: kernel time by category, dtype, activity and intensity bucket.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct KernelTimeBucket {
    pub workload: Option<String>,
    pub file: Option<String>,
    pub rank: Option<f64>,
    pub category: Option<String>,
    pub dtype: Option<String>,
    pub activity: Option<String>,
    pub intensity_bucket: Option<f64>,
    pub units: Option<f64>,
    pub kernels: Option<f64>,
    pub total_ns: Option<f64>,
    pub flops: Option<f64>,
    pub bytes: Option<f64>,
    pub launch_ns: Option<f64>,
}

impl MinedTable for KernelTimeBucket {
    const JOB: &'static str = "kernel_time_buckets";
}

/// `comm_compute_overlap`: exposed and overlapped communication per (file, rank, device).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct CommComputeOverlap {
    pub workload: Option<String>,
    pub rank: Option<f64>,
    pub exposed_comm_ns: Option<f64>,
    pub overlapped_comm_ns: Option<f64>,
}

impl MinedTable for CommComputeOverlap {
    const JOB: &'static str = "comm_compute_overlap";
}

/// `gpu_idle_time`: per stream, active time and the idle split (host wait, kernel wait).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct GpuIdleTime {
    pub workload: Option<String>,
    pub file: Option<String>,
    pub rank: Option<f64>,
    pub active_ns: Option<f64>,
    pub host_wait_share: Option<f64>,
    pub kernel_wait_share: Option<f64>,
}

impl MinedTable for GpuIdleTime {
    const JOB: &'static str = "gpu_idle_time";
}

/// `collective_bandwidth`: collective time and calls by kind, group size and message size.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct CollectiveBandwidth {
    pub workload: Option<String>,
    pub collective: Option<String>,
    pub group_size: Option<f64>,
    pub size_bucket_bytes: Option<f64>,
    pub calls: Option<f64>,
    pub time_ns: Option<f64>,
}

impl MinedTable for CollectiveBandwidth {
    const JOB: &'static str = "collective_bandwidth";
}

/// `top_kernels`: the kernels taking the most GPU time per workload (names the largest
/// unexplained kernels in the coverage split).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct TopKernel {
    pub workload: Option<String>,
    pub name: Option<String>,
    pub category: Option<String>,
    pub activity: Option<String>,
    pub total_ns: Option<f64>,
}

impl MinedTable for TopKernel {
    const JOB: &'static str = "top_kernels";
}

/// `device_hours`: device-hours per (workload, device model) from device telemetry (a null
/// workload: devices without a workload label).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct DeviceHours {
    pub workload: Option<String>,
    pub device_model: Option<String>,
    pub device_hours: Option<f64>,
    pub idle_device_hours: Option<f64>,
}

impl MinedTable for DeviceHours {
    const JOB: &'static str = "device_hours";
}

/// `device_bound_class`: the bound class device counters give per (workload, device model).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct DeviceBoundClass {
    pub workload: Option<String>,
    pub device_model: Option<String>,
    pub bound_class: Option<String>,
    pub basis: Option<String>,
    pub missing: Option<String>,
}

impl MinedTable for DeviceBoundClass {
    const JOB: &'static str = "device_bound_class";
}

/// `request_token_stats`: request count and token shape per (source, workload).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct RequestTokenStats {
    pub source: Option<String>,
    pub workload: Option<String>,
    pub requests: Option<f64>,
    pub input_mean: Option<f64>,
    pub output_mean: Option<f64>,
    pub input_p50: Option<f64>,
    pub input_p90: Option<f64>,
    pub input_p99: Option<f64>,
    pub output_p50: Option<f64>,
    pub output_p90: Option<f64>,
    pub output_p99: Option<f64>,
}

impl MinedTable for RequestTokenStats {
    const JOB: &'static str = "request_token_stats";
}

/// `request_concurrency`: mean concurrency per (source, workload).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct RequestConcurrency {
    pub workload: Option<String>,
    pub requests: Option<f64>,
    pub mean_concurrency: Option<f64>,
}

impl MinedTable for RequestConcurrency {
    const JOB: &'static str = "request_concurrency";
}

/// Every mined table the recommender and the report read.
#[derive(Debug, Clone, Default)]
pub struct Mined {
    pub kernel_category_time: Vec<KernelCategoryTime>,
    pub kernel_time_buckets: Vec<KernelTimeBucket>,
    pub comm_compute_overlap: Vec<CommComputeOverlap>,
    pub gpu_idle_time: Vec<GpuIdleTime>,
    pub collective_bandwidth: Vec<CollectiveBandwidth>,
    pub request_token_stats: Vec<RequestTokenStats>,
    pub request_concurrency: Vec<RequestConcurrency>,
    pub top_kernels: Vec<TopKernel>,
    pub device_hours: Vec<DeviceHours>,
    pub device_bound_class: Vec<DeviceBoundClass>,
}

/// One mined table as JSON rows (column → value; a null may be left out).
pub type JsonRows = Vec<Map<String, Value>>;

impl Mined {
    /// Device-hours per labelled workload (Σ over device models), from `device_hours`.
    pub fn device_hours_by_workload(&self) -> BTreeMap<String, f64> {
        let mut m = BTreeMap::new();
        for r in &self.device_hours {
            if let (Some(w), Some(h)) = (&r.workload, r.device_hours) {
                *m.entry(w.clone()).or_insert(0.0) += h;
            }
        }
        m
    }

    /// The tables read: (job, columns).
    pub fn tables() -> Vec<(&'static str, &'static [&'static str])> {
        fn t<T: MinedTable>() -> (&'static str, &'static [&'static str]) {
            (T::JOB, T::columns())
        }
        vec![
            t::<KernelCategoryTime>(),
            t::<KernelTimeBucket>(),
            t::<CommComputeOverlap>(),
            t::<GpuIdleTime>(),
            t::<CollectiveBandwidth>(),
            t::<RequestTokenStats>(),
            t::<RequestConcurrency>(),
            t::<TopKernel>(),
            t::<DeviceHours>(),
            t::<DeviceBoundClass>(),
        ]
    }

    /// The job names of [`Mined::tables`].
    pub fn jobs() -> Vec<&'static str> {
        Self::tables().into_iter().map(|(job, _)| job).collect()
    }

    /// Decodes JSON rows by job; a job absent from `rows` has no rows. The caller checks the
    /// columns against [`Mined::tables`] first (JSON rows leave nulls out, so a missing
    /// column cannot be told from a null here).
    pub fn from_rows(mut rows: BTreeMap<String, JsonRows>) -> Result<Mined, MinedError> {
        fn take<T: MinedTable>(rows: &mut BTreeMap<String, JsonRows>) -> Result<Vec<T>, MinedError> {
            let json = rows.remove(T::JOB).unwrap_or_default();
            json.into_iter()
                .enumerate()
                .map(|(i, row)| {
                    serde_json::from_value(Value::Object(row)).map_err(|e| MinedError::Decode {
                        job: T::JOB.into(),
                        row: i + 1,
                        message: e.to_string(),
                    })
                })
                .collect()
        }
        Ok(Mined {
            kernel_category_time: take(&mut rows)?,
            kernel_time_buckets: take(&mut rows)?,
            comm_compute_overlap: take(&mut rows)?,
            gpu_idle_time: take(&mut rows)?,
            collective_bandwidth: take(&mut rows)?,
            request_token_stats: take(&mut rows)?,
            request_concurrency: take(&mut rows)?,
            top_kernels: take(&mut rows)?,
            device_hours: take(&mut rows)?,
            device_bound_class: take(&mut rows)?,
        })
    }
}

/// The field names of a derived `Deserialize` struct: serde hands them to
/// `deserialize_struct`, which this deserializer records and then stops.
fn field_names<T: DeserializeOwned>() -> &'static [&'static str] {
    struct Names(&'static [&'static str]);
    impl<'de> Deserializer<'de> for &mut Names {
        type Error = serde::de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(serde::de::Error::custom("not a struct"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            self.0 = fields;
            Err(serde::de::Error::custom("names recorded"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
            unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
        }
    }
    let mut names = Names(&[]);
    let _ = T::deserialize(&mut names);
    names.0
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn columns_come_from_the_struct() {
        assert_eq!(KernelCategoryTime::columns(), ["workload", "file", "rank", "span_ns", "busy_ns"]);
        assert_eq!(RequestConcurrency::columns(), ["workload", "requests", "mean_concurrency"]);
        assert_eq!(Mined::jobs().len(), 10);
    }

    #[test]
    fn numbers_and_nulls_decode() {
        let mut rows = BTreeMap::new();
        let row = json!({"workload": "w", "requests": 12.5, "mean_concurrency": null, "extra": 1});
        rows.insert("request_concurrency".to_string(), vec![row.as_object().unwrap().clone()]);
        let m = Mined::from_rows(rows).unwrap();
        assert_eq!(m.request_concurrency[0].requests, Some(12.5));
        assert_eq!(m.request_concurrency[0].mean_concurrency, None);
        assert!(m.kernel_category_time.is_empty());
    }

    #[test]
    fn a_wrong_type_names_job_and_row() {
        let mut rows = BTreeMap::new();
        let row = json!({"workload": 3});
        rows.insert("request_concurrency".to_string(), vec![row.as_object().unwrap().clone()]);
        let e = Mined::from_rows(rows).unwrap_err().to_string();
        assert!(e.starts_with("mined table `request_concurrency`, row 1: invalid type"), "{e}");
    }
}
