//! Device telemetry through the lake (issue 22): each format detected and routed to
//! `device_samples` (partitioned by source and UTC day), bad lines quarantined under
//! `table_name=device_samples`, `--workload` filling unlabelled samples, `--time` for samples
//! without a timestamp, and a growing scrape file appended exactly once.

use std::collections::BTreeMap;
use std::path::Path;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Float64Type, Int64Type, TimestampNanosecondType};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use tapeout_lake::{IngestOptions, IngestSummary, ingest, load_snapshot};

fn run(lake: &Path, input: &Path, opts: IngestOptions) -> IngestSummary {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(ingest(lake, &[input.display().to_string()], opts)).unwrap()
}

fn read(lake: &Path, table: &str) -> (Vec<RecordBatch>, Vec<String>) {
    let snap = load_snapshot(lake, None).unwrap();
    let mut out = Vec::new();
    let mut paths = Vec::new();
    for f in snap.table_files(table) {
        paths.push(f.path.clone());
        let file = std::fs::File::open(lake.join(&f.path)).unwrap();
        out.extend(ParquetRecordBatchReaderBuilder::try_new(file).unwrap().build().unwrap().map(|b| b.unwrap()));
    }
    (out, paths)
}

/// (time ns, metric, value, workload) of every sample, sorted.
fn samples(lake: &Path) -> Vec<(i64, String, f64, Option<String>)> {
    let (batches, _) = read(lake, "device_samples");
    let mut v = Vec::new();
    for b in &batches {
        let t = b.column_by_name("time").unwrap().as_primitive::<TimestampNanosecondType>();
        let m = b.column_by_name("metric").unwrap().as_string::<i32>();
        let x = b.column_by_name("value").unwrap().as_primitive::<Float64Type>();
        let w = b.column_by_name("workload").unwrap().as_string::<i32>();
        for i in 0..b.num_rows() {
            v.push((t.value(i), m.value(i).to_string(), x.value(i), w.is_valid(i).then(|| w.value(i).to_string())));
        }
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v
}

const T0: i64 = 1_700_143_200_000; // 2023-11-16T14:00:00Z, ms

fn scrape(t_ms: i64, util: [u32; 2]) -> String {
    format!(
        "# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).\n# TYPE DCGM_FI_DEV_GPU_UTIL gauge\n\
         DCGM_FI_DEV_GPU_UTIL{{gpu=\"0\",UUID=\"GPU-a\",modelName=\"NVIDIA H100 80GB HBM3\",Hostname=\"n1\",workload=\"code\"}} {} {t_ms}\n\
         DCGM_FI_DEV_GPU_UTIL{{gpu=\"1\",UUID=\"GPU-b\",modelName=\"NVIDIA H100 80GB HBM3\",Hostname=\"n1\"}} {} {t_ms}\n",
        util[0], util[1]
    )
}

#[test]
fn prometheus_scrapes_land_in_device_samples_and_grow_exactly_once() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = tmp.path().join("lake");
    let file = tmp.path().join("dcgm.prom");
    std::fs::write(&file, scrape(T0, [87, 0]) + "not a sample line\n").unwrap();
    let opts = || IngestOptions { workload: Some("unassigned".into()), ..IngestOptions::default() };
    let s = run(&lake, &file, opts());
    assert_eq!((s.rows, s.quarantined, s.details[0].format.as_deref()), (2, 1, Some("prometheus")), "{s:#?}");
    let ns = T0 * 1_000_000;
    // The labelled sample keeps its workload; `--workload` fills the other one.
    assert_eq!(
        samples(&lake),
        vec![
            (ns, "gpu_util".into(), 0.0, Some("unassigned".into())),
            (ns, "gpu_util".into(), 0.87, Some("code".into()))
        ]
    );
    let (_, paths) = read(&lake, "device_samples");
    assert!(paths.iter().all(|p| p.starts_with("device_samples/source=prometheus/date=2023-11-16/")), "{paths:?}");
    let (q, qpaths) = read(&lake, "quarantine");
    assert!(qpaths.iter().all(|p| p.starts_with("_quarantine/table_name=device_samples/")), "{qpaths:?}");
    assert_eq!(q[0].column_by_name("line").unwrap().as_primitive::<Int64Type>().value(0), 5);
    // The next scrape is appended: only its two samples land.
    let mut f = std::fs::OpenOptions::new().append(true).open(&file).unwrap();
    std::io::Write::write_all(&mut f, scrape(T0 + 15_000, [90, 1]).as_bytes()).unwrap();
    drop(f);
    let s = run(&lake, &file, opts());
    assert_eq!((s.rows, s.quarantined, s.details[0].status), (2, 0, tapeout_lake::InputStatus::Appended), "{s:#?}");
    let all = samples(&lake);
    assert_eq!(all.len(), 4);
    assert_eq!(all[3], (ns + 15_000_000_000, "gpu_util".into(), 0.9, Some("code".into())));
}

#[test]
fn samples_without_a_timestamp_take_time_and_nvidia_smi_and_query_range_route_by_content() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = tmp.path().join("lake");
    // No timestamps: `--time` (as TelemetrySettings::time_ns).
    let file = tmp.path().join("scrape_no_ts.prom");
    std::fs::write(&file, "DCGM_FI_DEV_POWER_USAGE{gpu=\"0\",Hostname=\"n2\"} 312.5\n").unwrap();
    let at = 1_700_150_000_000_000_000;
    let mut opts = IngestOptions::default();
    opts.telemetry.time_ns = Some(at);
    assert_eq!(run(&lake, &file, opts).rows, 1);
    assert_eq!(samples(&lake), vec![(at, "power_w".into(), 312.5, None)]);
    // nvidia-smi CSV, detected by its header.
    let smi = tmp.path().join("smi.csv");
    std::fs::write(
        &smi,
        "timestamp, index, name, utilization.gpu [%], memory.used [MiB]\n\
         2023/11/16 14:00:00.000, 0, NVIDIA H100 80GB HBM3, 50 %, 1024 MiB\n",
    )
    .unwrap();
    let s = run(&lake, &smi, IngestOptions::default());
    assert_eq!((s.rows, s.details[0].format.as_deref()), (2, Some("nvidia_smi")), "{s:#?}");
    // A query_range result, read whole.
    let qr = tmp.path().join("range.json");
    std::fs::write(
        &qr,
        r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"DCGM_FI_DEV_GPU_UTIL","gpu":"0","Hostname":"n3","workload":"train"},"values":[[1700143200,"10"],[1700143215,"20"]]}]}}"#,
    )
    .unwrap();
    let s = run(&lake, &qr, IngestOptions::default());
    assert_eq!((s.rows, s.details[0].format.as_deref()), (2, Some("prometheus_range")), "{s:#?}");
    let by_metric: BTreeMap<String, usize> = samples(&lake).into_iter().fold(BTreeMap::new(), |mut m, s| {
        *m.entry(s.1).or_default() += 1;
        m
    });
    assert_eq!(by_metric, BTreeMap::from([("fb_used_bytes".into(), 1), ("gpu_util".into(), 3), ("power_w".into(), 1)]));
    let (_, paths) = read(&lake, "device_samples");
    for src in ["prometheus", "nvidia_smi", "prometheus_range"] {
        assert!(
            paths.iter().any(|p| p.starts_with(&format!("device_samples/source={src}/date=2023-11-16/"))),
            "{paths:?}"
        );
    }
    assert!(tapeout_lake::repair::check(&lake).unwrap().healthy());
}
