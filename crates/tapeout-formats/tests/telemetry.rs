//! Device telemetry parsers on hand-written files that follow each format's published grammar
//! (the Prometheus exposition spec, the Prometheus HTTP API, nvidia-smi `--query-gpu` CSV, a
//! mapped metric CSV), with exact expected rows: times in ns, values in canonical units, the
//! label map. Each format also has a corpus of bad lines, each quarantined with its reason while
//! the good lines are kept. pipelines/telemetry/README.md documents the rules tested here.

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Float64Type, Int32Type, Int64Type, TimestampNanosecondType};
use tapeout_formats::telemetry::{
    CsvMapping, MetricMap, TelemetryOptions, TelemetryParser, parse_file, parse_query_range,
};
use tapeout_formats::{FormatError, ParseOptions, RequestParser, SourceFormat, detect};

/// 2024-05-10T00:00:00Z in ms.
const T_MS: i64 = 1_715_299_200_000;
/// The same in ns.
const T: i64 = T_MS * 1_000_000;
/// `--time` for samples without a timestamp: 2024-05-10T00:01:00Z.
const DEFAULT_T: i64 = T + 60_000_000_000;

fn opts() -> TelemetryOptions {
    TelemetryOptions { default_time_ns: DEFAULT_T, ..TelemetryOptions::default() }
}

/// One `device_samples` row, every column but `file`.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    line: i64,
    time: i64,
    host: Option<String>,
    device: Option<i32>,
    uuid: Option<String>,
    model: Option<String>,
    mig: Option<String>,
    metric: String,
    /// `{:?}` of the value, so that NaN equals NaN.
    value: String,
    unit: String,
    kind: Option<String>,
    source_metric: String,
    workload: Option<String>,
    job: Option<String>,
    namespace: Option<String>,
    pod: Option<String>,
    labels: Option<Vec<(String, String)>>,
}

/// A row with only the measurement set; the rest is filled in by the test.
fn row(line: i64, time: i64, metric: &str, value: f64, unit: &str, kind: Option<&str>, source: &str) -> Row {
    Row {
        line,
        time,
        host: None,
        device: None,
        uuid: None,
        model: None,
        mig: None,
        metric: metric.into(),
        value: format!("{value:?}"),
        unit: unit.into(),
        kind: kind.map(str::to_string),
        source_metric: source.into(),
        workload: None,
        job: None,
        namespace: None,
        pod: None,
        labels: None,
    }
}

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

fn labels(pairs: &[(&str, &str)]) -> Option<Vec<(String, String)>> {
    Some(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
}

fn rows(b: &RecordBatch) -> Vec<Row> {
    assert_eq!(b.schema(), tapeout_schema::table("device_samples").file_schema());
    let str_col = |name: &str| {
        let c = b.column_by_name(name).unwrap().as_string::<i32>();
        (0..b.num_rows()).map(|i| c.is_valid(i).then(|| c.value(i).to_string())).collect::<Vec<_>>()
    };
    let (host, uuid, model, mig) =
        (str_col("host"), str_col("device_uuid"), str_col("device_model"), str_col("mig_instance"));
    let (metric, unit, kind, source) = (str_col("metric"), str_col("unit"), str_col("kind"), str_col("source_metric"));
    let (workload, job, namespace, pod) = (str_col("workload"), str_col("job"), str_col("namespace"), str_col("pod"));
    let time = b.column_by_name("time").unwrap().as_primitive::<TimestampNanosecondType>();
    let device = b.column_by_name("device").unwrap().as_primitive::<Int32Type>();
    let value = b.column_by_name("value").unwrap().as_primitive::<Float64Type>();
    let line = b.column_by_name("line").unwrap().as_primitive::<Int64Type>();
    let map = b.column_by_name("labels").unwrap().as_map();
    (0..b.num_rows())
        .map(|i| Row {
            line: line.value(i),
            time: time.value(i),
            host: host[i].clone(),
            device: device.is_valid(i).then(|| device.value(i)),
            uuid: uuid[i].clone(),
            model: model[i].clone(),
            mig: mig[i].clone(),
            metric: metric[i].clone().unwrap(),
            value: format!("{:?}", value.value(i)),
            unit: unit[i].clone().unwrap(),
            kind: kind[i].clone(),
            source_metric: source[i].clone().unwrap(),
            workload: workload[i].clone(),
            job: job[i].clone(),
            namespace: namespace[i].clone(),
            pod: pod[i].clone(),
            labels: map.is_valid(i).then(|| {
                let e = map.value(i);
                let (k, v) = (e.column(0).as_string::<i32>(), e.column(1).as_string::<i32>());
                (0..e.len()).map(|j| (k.value(j).to_string(), v.value(j).to_string())).collect()
            }),
        })
        .collect()
}

/// (line, field, reason) of each reject.
fn reasons(rejects: &[tapeout_formats::Reject]) -> Vec<(u64, Option<&str>, &str)> {
    rejects.iter().map(|r| (r.line, r.field.as_deref(), r.reason.as_str())).collect()
}

// ---- Prometheus text exposition ------------------------------------------------------------

/// A dcgm-exporter scrape (label set as dcgm-exporter writes it: gpu, UUID, pci_bus_id, device,
/// modelName, Hostname, GPU_I_PROFILE / GPU_I_ID under MIG, container / namespace / pod under
/// Kubernetes) and a node-exporter line.
const DCGM_SCRAPE: &str = r#"# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).
# TYPE DCGM_FI_DEV_GPU_UTIL gauge
DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-aaaa",pci_bus_id="00000000:07:00.0",device="nvidia0",modelName="NVIDIA H100 80GB HBM3",Hostname="node-a",container="vllm",namespace="serving",pod="vllm-0",workload="chat"} 87 1715299200000
DCGM_FI_DEV_GPU_UTIL{gpu="1",UUID="GPU-bbbb",device="nvidia1",modelName="NVIDIA H100 80GB HBM3",Hostname="node-a",container=""} 0 1715299200000

# HELP DCGM_FI_DEV_FB_USED Framebuffer memory used (in MiB).
# TYPE DCGM_FI_DEV_FB_USED gauge
DCGM_FI_DEV_FB_USED{gpu="0",UUID="GPU-aaaa",GPU_I_PROFILE="3g.40gb",GPU_I_ID="2",Hostname="node-a"} 40321 1715299200000
DCGM_FI_PROF_PIPE_TENSOR_ACTIVE{gpu="0",UUID="GPU-aaaa",GPU_I_ID="5",Hostname="node-a"} 0.425 1715299200000
DCGM_FI_DEV_POWER_USAGE{gpu="0",Hostname="node-a"} NaN 1715299200000
DCGM_FI_PROF_NVLINK_TX_BYTES{gpu="0",Hostname="node-a"} +Inf
  DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL{gpu="0",Hostname="node-a"}	1500	1715299200500
# A comment, not a sample.
DCGM_FI_DEV_XID_ERRORS{gpu="0",Hostname="node-a",err_msg="said \"no\"\\n\nC:\\DIR"} -Inf 1715299200000
node_network_receive_bytes_total{device="eth0",instance="10.0.0.7:9100",job="node"} 1.5e9
"#;

#[test]
fn prometheus_dcgm_scrape_exact_rows() {
    let p = parse_file(DCGM_SCRAPE.as_bytes(), None, &opts(), "/t/scrape.prom").unwrap();
    assert_eq!(p.format, SourceFormat::Prometheus);
    assert_eq!(reasons(&p.rejects), vec![]);
    let h100 = s("NVIDIA H100 80GB HBM3");
    let node_a = |mut r: Row| {
        r.host = s("node-a");
        r.device = Some(0);
        r
    };
    let expected = vec![
        Row {
            uuid: s("GPU-aaaa"),
            model: h100.clone(),
            workload: s("chat"),
            namespace: s("serving"),
            pod: s("vllm-0"),
            labels: labels(&[("container", "vllm"), ("device", "nvidia0"), ("pci_bus_id", "00000000:07:00.0")]),
            ..node_a(row(3, T, "gpu_util", 0.87, "ratio", Some("gauge"), "DCGM_FI_DEV_GPU_UTIL"))
        },
        // An empty label value is no label.
        Row {
            device: Some(1),
            uuid: s("GPU-bbbb"),
            model: h100,
            labels: labels(&[("device", "nvidia1")]),
            ..node_a(row(4, T, "gpu_util", 0.0, "ratio", Some("gauge"), "DCGM_FI_DEV_GPU_UTIL"))
        },
        Row {
            uuid: s("GPU-aaaa"),
            mig: s("2:3g.40gb"),
            ..node_a(row(8, T, "fb_used_bytes", 40321.0 * 1048576.0, "bytes", Some("gauge"), "DCGM_FI_DEV_FB_USED"))
        },
        Row {
            uuid: s("GPU-aaaa"),
            mig: s("5"),
            ..node_a(row(9, T, "tensor_active", 0.425, "ratio", Some("gauge"), "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE"))
        },
        node_a(row(10, T, "power_w", f64::NAN, "watts", Some("gauge"), "DCGM_FI_DEV_POWER_USAGE")),
        // No timestamp: the default time.
        node_a(row(
            11,
            DEFAULT_T,
            "nvlink_tx_bytes",
            f64::INFINITY,
            "bytes_per_s",
            Some("gauge"),
            "DCGM_FI_PROF_NVLINK_TX_BYTES",
        )),
        node_a(row(
            12,
            T + 500_000_000,
            "nvlink_bytes",
            1.5e9,
            "bytes_per_s",
            Some("gauge"),
            "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL",
        )),
        // Unmapped: the name lower-cased, the value as written, unit unknown; escapes undone.
        Row {
            labels: labels(&[("err_msg", "said \"no\"\\n\nC:\\DIR")]),
            ..node_a(row(14, T, "dcgm_fi_dev_xid_errors", f64::NEG_INFINITY, "unknown", None, "DCGM_FI_DEV_XID_ERRORS"))
        },
        // node-exporter: host from `instance` (which stays a label), `_total` → counter.
        Row {
            host: s("10.0.0.7"),
            job: s("node"),
            labels: labels(&[("device", "eth0"), ("instance", "10.0.0.7:9100")]),
            ..row(
                15,
                DEFAULT_T,
                "node_network_receive_bytes_total",
                1.5e9,
                "unknown",
                Some("counter"),
                "node_network_receive_bytes_total",
            )
        },
    ];
    assert_eq!(rows(&p.batch), expected);
    let file = p.batch.column_by_name("file").unwrap().as_string::<i32>();
    assert_eq!(file.value(0), "/t/scrape.prom");
}

#[test]
fn prometheus_escapes_in_label_values() {
    // The spec's example: `\\` → `\`, `\"` → `"`, `\n` → line feed.
    let text = r#"msdos_file_access_time_seconds{path="C:\\DIR\\FILE.TXT",error="Cannot find file:\n\"FILE.TXT\""} 1.458255915e9"#;
    let p = parse_file(text.as_bytes(), Some(SourceFormat::Prometheus), &opts(), "f").unwrap();
    let r = &rows(&p.batch)[0];
    assert_eq!(r.labels, labels(&[("error", "Cannot find file:\n\"FILE.TXT\""), ("path", "C:\\DIR\\FILE.TXT")]));
    assert_eq!((r.value.as_str(), r.time), ("1458255915.0", DEFAULT_T));
    // Quoted (UTF-8) metric and label names.
    let p = parse_file(
        br#"{"my.dotted.metric", "error.message"="Not Found"} 1 1000"#,
        Some(SourceFormat::Prometheus),
        &opts(),
        "f",
    )
    .unwrap();
    let r = &rows(&p.batch)[0];
    assert_eq!(
        (r.metric.as_str(), r.source_metric.as_str(), r.time),
        ("my.dotted.metric", "my.dotted.metric", 1_000_000_000)
    );
    assert_eq!(r.labels, labels(&[("error.message", "Not Found")]));
}

#[test]
fn prometheus_concatenated_scrapes_keep_their_timestamps_and_chunks_are_independent() {
    let mut text = String::new();
    for scrape in 0..3 {
        text.push_str("# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).\n# TYPE DCGM_FI_DEV_GPU_UTIL gauge\n");
        for gpu in 0..4 {
            let ts = T_MS + scrape * 15_000;
            text.push_str(&format!(
                "DCGM_FI_DEV_GPU_UTIL{{gpu=\"{gpu}\",Hostname=\"h\"}} {} {ts}\n",
                10 * gpu + scrape
            ));
        }
    }
    let whole = parse_file(text.as_bytes(), None, &opts(), "f").unwrap();
    assert_eq!(whole.batch.num_rows(), 12);
    let times: Vec<i64> = rows(&whole.batch).iter().map(|r| r.time).collect();
    assert_eq!(times[4], T + 15_000_000_000);
    assert_eq!(times[11], T + 30_000_000_000);
    // Any cut at line ends gives the same rows (a chunk's parse never depends on another's
    // `# TYPE` line).
    let parser = TelemetryParser::new(SourceFormat::Prometheus, None, &opts()).unwrap();
    let ends: Vec<usize> = text.match_indices('\n').map(|(i, _)| i + 1).collect();
    for cut in [ends[0], ends[2], ends[7]] {
        let (mut a, ra) = parser.parse_chunk(&text.as_bytes()[..cut], 1);
        let first = 1 + text[..cut].matches('\n').count() as u64;
        let (b, rb) = parser.parse_chunk(&text.as_bytes()[cut..], first);
        assert!(ra.is_empty() && rb.is_empty());
        a.append(b);
        assert_eq!(rows(&a.finish("f")), rows(&whole.batch), "cut at byte {cut}");
    }
}

#[test]
fn prometheus_bad_lines_are_quarantined_and_good_lines_kept() {
    let text = "\
# TYPE up gauge
up{job=\"a\"} 1 1715299200000
up{job=\"a} 1
up{job=\"a\",job=\"b\"} 1
up{job=a} 1
up{job=\"\\t\"} 1
up one
up 1 1.5
up 1 99999999999999999999
up 1 2 3
up 1 9223372036854775807
9up 1
up{job=\"a\" 1
# HELP anything at all \\ is fine in a comment
up{job=\"b\"} 0
up
\u{ff}\u{fe}
";
    let mut bytes = text.as_bytes().to_vec();
    // Line 18: not UTF-8.
    bytes.extend_from_slice(b"up{job=\"\xff\"} 1\nup{job=\"c\"} 2 1715299200001\n");
    let p = parse_file(&bytes, None, &opts(), "f").unwrap();
    assert_eq!(p.format, SourceFormat::Prometheus);
    assert_eq!(
        reasons(&p.rejects),
        vec![
            (3, Some("labels"), "unterminated quoted string (no closing `\"`)"),
            (4, Some("labels"), "label `job` appears twice"),
            (5, Some("labels"), "label `job`: expected a quoted value after `=`"),
            (6, Some("labels"), "invalid escape `\\t` (only `\\\\`, `\\\"` and `\\n` are allowed)"),
            (7, Some("value"), "not a number: `one`"),
            (8, Some("timestamp"), "timestamp is not an integer number of milliseconds since the epoch: `1.5`"),
            (9, Some("timestamp"), "timestamp out of range: `99999999999999999999`"),
            (10, Some("timestamp"), "unexpected text after the timestamp: `3`"),
            (11, Some("timestamp"), "timestamp out of range: `9223372036854775807`"),
            (12, Some("metric"), "expected a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*) or `{`"),
            (13, Some("labels"), "expected `,` or `}` after a label"),
            (16, Some("value"), "missing value"),
            (17, Some("metric"), "expected a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*) or `{`"),
            (18, None, "not UTF-8"),
        ]
    );
    assert_eq!(p.rejects[0].raw, "up{job=\"a} 1");
    let got: Vec<(i64, Option<String>, String, i64)> =
        rows(&p.batch).into_iter().map(|r| (r.line, r.job, r.value, r.time)).collect();
    assert_eq!(
        got,
        vec![
            (2, s("a"), "1.0".into(), T),
            (15, s("b"), "0.0".into(), DEFAULT_T),
            (19, s("c"), "2.0".into(), T + 1_000_000)
        ]
    );
}

#[test]
fn prometheus_workload_label_is_configurable() {
    let text = "DCGM_FI_DEV_GPU_UTIL{gpu=\"0\",app=\"search\",workload=\"w\"} 50\n";
    let o = TelemetryOptions { workload_label: "app".into(), ..opts() };
    let r = &rows(&parse_file(text.as_bytes(), None, &o, "f").unwrap().batch)[0];
    assert_eq!((r.workload.clone(), r.labels.clone()), (s("search"), labels(&[("workload", "w")])));
}

// ---- Prometheus query_range JSON -----------------------------------------------------------

const RANGE: &str = r#"{
  "status": "success",
  "data": {
    "resultType": "matrix",
    "result": [
      {
        "metric": {"__name__": "DCGM_FI_PROF_SM_ACTIVE", "gpu": "3", "UUID": "GPU-cccc", "Hostname": "node-b",
                   "GPU_I_ID": "1", "GPU_I_PROFILE": "1g.10gb", "exported_pod": "train-7", "job": "dcgm"},
        "values": [[1715299200, "0.5"], [1715299215.5, "NaN"], [1715299230.125, "+Inf"]]
      },
      {
        "metric": {"__name__": "DCGM_FI_DEV_FB_FREE", "gpu": "3", "Hostname": "node-b"},
        "values": [
          [1715299200, "1024"],
          [1715299215, "lots"],
          ["soon", "1"],
          [1715299245, 7],
          [1715299260, "-Inf"]
        ]
      },
      {"metric": {"gpu": "3"}, "values": [[1715299200, "1"]]},
      {"metric": {"__name__": "node_load1", "instance": "node-b:9100"}, "values": []}
    ]
  },
  "warnings": ["something was slow"]
}"#;

#[test]
fn query_range_matrix_exact_rows_and_rejects() {
    let p = parse_file(RANGE.as_bytes(), None, &opts(), "r.json").unwrap();
    assert_eq!(p.format, SourceFormat::PrometheusRange);
    let sm = |time: i64, v: f64| Row {
        host: s("node-b"),
        device: Some(3),
        uuid: s("GPU-cccc"),
        mig: s("1:1g.10gb"),
        job: s("dcgm"),
        labels: labels(&[("exported_pod", "train-7")]),
        ..row(6, time, "sm_active", v, "ratio", Some("gauge"), "DCGM_FI_PROF_SM_ACTIVE")
    };
    let fb = |time: i64, v: f64| Row {
        host: s("node-b"),
        device: Some(3),
        ..row(11, time, "fb_free_bytes", v, "bytes", Some("gauge"), "DCGM_FI_DEV_FB_FREE")
    };
    assert_eq!(
        rows(&p.batch),
        vec![
            sm(T, 0.5),
            sm(T + 15_500_000_000, f64::NAN),
            sm(T + 30_125_000_000, f64::INFINITY),
            fb(T, 1024.0 * 1048576.0),
            fb(T + 60_000_000_000, f64::NEG_INFINITY),
        ]
    );
    assert_eq!(
        reasons(&p.rejects),
        vec![
            (15, Some("values"), "not a number: `lots`"),
            (16, Some("values"), "bad timestamp `\"soon\"` (expected seconds since the epoch)"),
            (17, Some("values"), "expected [<unix_time>, \"<sample_value>\"]"),
            (
                21,
                Some("metric"),
                "series has no `__name__` (the query dropped it, e.g. with rate(): query the raw metric or restore the name with label_replace)"
            ),
        ]
    );
    assert_eq!(p.rejects[0].raw, "[1715299215, \"lots\"]");
}

#[test]
fn query_range_vector_several_documents_and_whole_file_errors() {
    let docs = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"up","job":"x"},"value":[1435781451.781,"1"]}]}}
{"data":{"result":[{"metric":{"__name__":"up"},"values":[[1435781451,"0"]]}],"resultType":"matrix"},"status":"success"}
"#;
    let (b, rejects) = parse_query_range(docs.as_bytes(), &opts()).unwrap();
    assert!(rejects.is_empty());
    let got: Vec<(i64, i64, String)> = rows(&b.finish("f")).into_iter().map(|r| (r.line, r.time, r.value)).collect();
    assert_eq!(got, vec![(1, 1_435_781_451_781_000_000, "1.0".into()), (2, 1_435_781_451_000_000_000, "0.0".into())]);
    let err = |doc: &str| parse_query_range(doc.as_bytes(), &opts()).unwrap_err().to_string();
    assert_eq!(
        err(r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\""}"#),
        "prometheus_range: the query failed: bad_data: invalid parameter \"query\""
    );
    assert_eq!(
        err(r#"{"status":"success","data":{"resultType":"scalar","result":[1435781451.781,"1"]}}"#),
        "prometheus_range: resultType `scalar` holds no series (expected `matrix`)"
    );
    assert!(
        err(r#"{"status":"success","data":{"resultType":"matrix","result":[{"#)
            .starts_with("prometheus_range: document 1: ")
    );
    assert_eq!(parse_query_range(b"  \n", &opts()).unwrap_err(), FormatError::Empty);
}

// ---- nvidia-smi --query-gpu CSV --------------------------------------------------------------

const SMI: &str = "\
timestamp, index, name, uuid, pci.bus_id, pstate, utilization.gpu [%], utilization.memory [%], memory.used [MiB], power.draw [W], clocks.current.sm [MHz], temperature.gpu, fan.speed [%]
2024/05/10 02:00:00.250, 0, NVIDIA H100 80GB HBM3, GPU-aaaa, 00000000:07:00.0, P0, 87 %, 45 %, 40321 MiB, 612.34 W, 1980 MHz, 61, [N/A]
2024/05/10 02:00:00.250, 1, NVIDIA H100 80GB HBM3, GPU-bbbb, 00000000:08:00.0, P8, 0 %, 0 %, 1 MiB, [Not Supported], 345 MHz, 30, [N/A]
";

#[test]
fn nvidia_smi_exact_rows_with_units_na_and_timezone() {
    // The log was written at UTC+02:00: 02:00:00.250 local = 00:00:00.250Z.
    let o = TelemetryOptions { utc_offset_s: 7200, ..opts() };
    let p = parse_file(SMI.as_bytes(), None, &o, "smi.csv").unwrap();
    assert_eq!(p.format, SourceFormat::NvidiaSmi);
    assert!(p.rejects.is_empty(), "{:?}", p.rejects);
    let t = T + 250_000_000;
    fn gpu(
        line: i64,
        t: i64,
        dev: i32,
        uuid: &'static str,
        bus: &'static str,
        pstate: &'static str,
    ) -> impl Fn(&str, f64, &str, &str) -> Row {
        move |metric, v, unit, source| Row {
            device: Some(dev),
            uuid: s(uuid),
            model: s("NVIDIA H100 80GB HBM3"),
            labels: labels(&[("pci.bus_id", bus), ("pstate", pstate)]),
            ..row(line, t, metric, v, unit, Some("gauge"), source)
        }
    }
    let g0 = gpu(2, t, 0, "GPU-aaaa", "00000000:07:00.0", "P0");
    let g1 = gpu(3, t, 1, "GPU-bbbb", "00000000:08:00.0", "P8");
    assert_eq!(
        rows(&p.batch),
        vec![
            g0("gpu_util", 0.87, "ratio", "utilization.gpu"),
            g0("mem_copy_util", 0.45, "ratio", "utilization.memory"),
            g0("fb_used_bytes", 40321.0 * 1048576.0, "bytes", "memory.used"),
            g0("power_w", 612.34, "watts", "power.draw"),
            g0("sm_clock_hz", 1.98e9, "hz", "clocks.current.sm"),
            g0("gpu_temp_c", 61.0, "celsius", "temperature.gpu"),
            // fan.speed [N/A]: no sample; power.draw [Not Supported]: no sample.
            g1("gpu_util", 0.0, "ratio", "utilization.gpu"),
            g1("mem_copy_util", 0.0, "ratio", "utilization.memory"),
            g1("fb_used_bytes", 1048576.0, "bytes", "memory.used"),
            g1("sm_clock_hz", 3.45e8, "hz", "clocks.current.sm"),
            g1("gpu_temp_c", 30.0, "celsius", "temperature.gpu"),
        ]
    );
}

#[test]
fn nvidia_smi_nounits_without_timestamp_and_unmapped_fields() {
    let log = "index, utilization.gpu [%], clocks.max.sm [MHz], power.draw [W]\n0, 12, 1980, 70.5\n";
    let p = parse_file(log.as_bytes(), None, &opts(), "f").unwrap();
    let got: Vec<(i64, String, String, String, Option<String>)> =
        rows(&p.batch).into_iter().map(|r| (r.time, r.metric, r.value, r.unit, r.kind)).collect();
    assert_eq!(
        got,
        vec![
            (DEFAULT_T, "gpu_util".into(), "0.12".into(), "ratio".into(), s("gauge")),
            // Unmapped: name lower-cased, value as written, unit unknown.
            (DEFAULT_T, "clocks.max.sm".into(), "1980.0".into(), "unknown".into(), None),
            (DEFAULT_T, "power_w".into(), "70.5".into(), "watts".into(), s("gauge")),
        ]
    );
}

#[test]
fn nvidia_smi_bad_lines_are_quarantined_and_good_cells_kept() {
    let log = "\
timestamp, index, utilization.gpu [%], memory.used [MiB]
2024/05/10 00:00:01.000, 0, 10 %, 100 MiB
2024/05/10 00:00:01.000, 0, 10 %
yesterday, 0, 10 %, 100 MiB
2024/05/10 00:00:01.000, zero, 10 %, 100 MiB
2024/05/10 00:00:01.000, 1, lots, 100 MiB
2024/05/10 00:00:01.000, 2, 10 %, 100 GiB

timestamp, index, utilization.gpu [%], memory.used [MiB]
2024/05/10 00:00:02.000, [N/A], [N/A], 5 MiB
";
    let p = parse_file(log.as_bytes(), None, &opts(), "f").unwrap();
    assert_eq!(
        reasons(&p.rejects),
        vec![
            (3, None, "expected 4 fields, found 3"),
            (4, Some("timestamp"), "unparseable timestamp `yesterday`"),
            (5, Some("index"), "not a device index: `zero`"),
            (6, Some("utilization.gpu [%]"), "not a number: `lots`"),
            (7, Some("memory.used [MiB]"), "unit `GiB` differs from the header's (`MiB`)"),
        ]
    );
    let got: Vec<(i64, Option<i32>, String)> =
        rows(&p.batch).into_iter().map(|r| (r.line, r.device, r.metric)).collect();
    assert_eq!(
        got,
        vec![
            (2, Some(0), "gpu_util".into()),
            (2, Some(0), "fb_used_bytes".into()),
            // Line 6: the bad cell is rejected, the good one lands.
            (6, Some(1), "fb_used_bytes".into()),
            (7, Some(2), "gpu_util".into()),
            // The repeated header (line 9) is skipped.
            (10, None, "fb_used_bytes".into()),
        ]
    );
}

// ---- Metric CSV with a mapping ---------------------------------------------------------------

#[test]
fn metric_csv_long_and_wide_layouts() {
    let long = CsvMapping::parse(
        r#"
time = "ts"
time_unit = "ms"
value = "val"
metric = "name"
host = "machine"
device = "gpu"
workload = "job_name"
labels = ["cluster"]
"#,
    )
    .unwrap();
    let csv = "\
ts,machine,gpu,name,val,cluster,job_name
1715299200000,m1,0,DCGM_FI_DEV_GPU_UTIL,55,west,\"train, big\"
1715299200500.5,m1,1,sm_busy,0.3,,
1715299201000,m1,1,DCGM_FI_DEV_FB_USED,,west,x
";
    let o = TelemetryOptions { mapping: Some(long), ..opts() };
    let p = parse_file(csv.as_bytes(), Some(SourceFormat::MetricCsv), &o, "f").unwrap();
    assert!(p.rejects.is_empty(), "{:?}", p.rejects);
    assert_eq!(
        rows(&p.batch),
        vec![
            Row {
                host: s("m1"),
                device: Some(0),
                workload: s("train, big"),
                labels: labels(&[("cluster", "west")]),
                ..row(2, T, "gpu_util", 0.55, "ratio", Some("gauge"), "DCGM_FI_DEV_GPU_UTIL")
            },
            Row {
                host: s("m1"),
                device: Some(1),
                ..row(3, T + 500_500_000, "sm_busy", 0.3, "unknown", None, "sm_busy")
            },
        ]
    );

    let wide = CsvMapping::parse(
        "time = \"t\"\ntime_origin = \"2024-05-10T00:00:00Z\"\nvalues = [\"utilization.gpu\", \"memory.used\"]\ndevice = \"gpu\"",
    )
    .unwrap();
    let csv = "t,gpu,utilization.gpu,memory.used\n0,0,50,2048\n1.5,0,N/A,1\n";
    let o = TelemetryOptions { mapping: Some(wide), ..opts() };
    let p = parse_file(csv.as_bytes(), Some(SourceFormat::MetricCsv), &o, "f").unwrap();
    let got: Vec<(i64, String, String)> = rows(&p.batch).into_iter().map(|r| (r.time, r.metric, r.value)).collect();
    assert_eq!(
        got,
        vec![
            (T, "gpu_util".into(), "0.5".into()),
            (T, "fb_used_bytes".into(), format!("{:?}", 2048.0 * 1048576.0)),
            (T + 1_500_000_000, "fb_used_bytes".into(), "1048576.0".into()),
        ]
    );
}

#[test]
fn metric_csv_rfc3339_times_units_and_bad_records() {
    let m = CsvMapping::parse(
        "time = \"when\"\ntime_unit = \"rfc3339\"\nvalue = \"v\"\nfixed_metric = \"mem_busy\"\nunit = \"%\"\ndevice = \"dev\"",
    )
    .unwrap();
    let csv = "\
when,dev,v
2024-05-10 03:00:00,0,40
2024-05-10T00:00:00Z,0,41
2024-05-10 03:00:00,gpu0,40
not a time,0,40
2024-05-10 03:00:00,0,many
2024-05-10 03:00:00,0
2024-05-10 03:00:00,0,\"42
";
    let o = TelemetryOptions { mapping: Some(m), utc_offset_s: 3 * 3600, ..opts() };
    let p = parse_file(csv.as_bytes(), Some(SourceFormat::MetricCsv), &o, "f").unwrap();
    assert_eq!(
        reasons(&p.rejects),
        vec![
            (4, Some("dev"), "not a device index (an integer): `gpu0`"),
            (5, Some("when"), "unparseable time `not a time` (time_unit rfc3339)"),
            (6, Some("v"), "not a number: `many`"),
            (7, None, "expected 3 fields, found 2"),
            (8, None, "unterminated quoted field (no closing `\"` before the end of the file)"),
        ]
    );
    // An unmapped fixed metric with a known unit: the name as written, unit unknown.
    let got: Vec<(i64, i64, String, String)> =
        rows(&p.batch).into_iter().map(|r| (r.line, r.time, r.value, r.unit)).collect();
    assert_eq!(got, vec![(2, T, "40.0".into(), "unknown".into()), (3, T, "41.0".into(), "unknown".into())]);
}

#[test]
fn metric_csv_needs_a_mapping_whose_columns_exist() {
    let err = TelemetryParser::new(SourceFormat::MetricCsv, Some(b"a,b"), &opts()).unwrap_err();
    assert!(matches!(err, FormatError::BadConfig { .. }), "{err}");
    let m = CsvMapping::parse("time = \"t\"\nvalue = \"v\"\nfixed_metric = \"x\"").unwrap();
    let o = TelemetryOptions { mapping: Some(m), ..opts() };
    let err = TelemetryParser::new(SourceFormat::MetricCsv, Some(b"t,value"), &o).unwrap_err();
    assert_eq!(err.to_string(), "line 1: metric_csv header has no `v` column (header: `t,value`)");
}

// ---- Formats, detection, API -----------------------------------------------------------------

#[test]
fn format_ids_kinds_and_headers() {
    for (f, id) in [
        (SourceFormat::Prometheus, "prometheus"),
        (SourceFormat::PrometheusRange, "prometheus_range"),
        (SourceFormat::NvidiaSmi, "nvidia_smi"),
        (SourceFormat::MetricCsv, "metric_csv"),
    ] {
        assert_eq!(f.id(), id);
        assert_eq!(SourceFormat::from_id(id), Some(f));
        assert!(SourceFormat::ALL.contains(&f));
        assert!(f.is_telemetry() && !f.is_request());
    }
    let request: Vec<SourceFormat> = SourceFormat::ALL.into_iter().filter(|f| f.is_request()).collect();
    assert_eq!(request, [SourceFormat::AzureLlm, SourceFormat::BurstGpt, SourceFormat::Mooncake]);
    assert!(!SourceFormat::Kineto.is_telemetry() && !SourceFormat::Kineto.is_request());
    assert!(SourceFormat::NvidiaSmi.has_header() && SourceFormat::MetricCsv.has_header());
    assert!(!SourceFormat::Prometheus.has_header() && !SourceFormat::PrometheusRange.has_header());
    let start =
        SourceFormat::NvidiaSmi.split_header(b"\n\xEF\xBB\xBFtimestamp, index\r\n2024/05/10 00:00:00.000, 0\n", 1);
    // Line 1 is blank: the header is line 2, the records start on line 3.
    assert_eq!(start.unwrap().body_first_line, 3);
}

#[test]
fn parsers_and_builders_cross_threads() {
    fn shared<T: Send + Sync + Clone>() {}
    shared::<TelemetryParser>();
    shared::<TelemetryOptions>();
    fn sent<T: Send>() {}
    sent::<tapeout_formats::telemetry::SampleBatchBuilder>();
}

#[test]
fn parsers_refuse_formats_they_do_not_read() {
    assert_eq!(
        TelemetryParser::new(SourceFormat::AzureLlm, Some(b"TIMESTAMP"), &opts()).unwrap_err(),
        FormatError::NotTelemetry { format: SourceFormat::AzureLlm }
    );
    assert!(matches!(
        TelemetryParser::new(SourceFormat::PrometheusRange, None, &opts()).unwrap_err(),
        FormatError::BadDocument { format: SourceFormat::PrometheusRange, .. }
    ));
    for f in [SourceFormat::Prometheus, SourceFormat::PrometheusRange, SourceFormat::NvidiaSmi, SourceFormat::MetricCsv]
    {
        assert_eq!(
            RequestParser::new(f, Some(b"x"), &ParseOptions::default()).unwrap_err(),
            FormatError::NotRequests { format: f }
        );
    }
    assert_eq!(
        parse_file(b"TIMESTAMP,ContextTokens,GeneratedTokens\n", None, &opts(), "f").unwrap_err(),
        FormatError::NotTelemetry { format: SourceFormat::AzureLlm }
    );
}

#[test]
fn detection_of_each_telemetry_format() {
    assert_eq!(detect(DCGM_SCRAPE.as_bytes()), Ok(SourceFormat::Prometheus));
    assert_eq!(detect(b"\n# some exporter banner\nup{job=\"x\"} 1\n"), Ok(SourceFormat::Prometheus));
    assert_eq!(detect(b"node_load1 0.5 1715299200000\n"), Ok(SourceFormat::Prometheus));
    assert_eq!(detect(b"{\"a.b\"} 1\n"), Ok(SourceFormat::Prometheus));
    assert_eq!(detect(RANGE.as_bytes()), Ok(SourceFormat::PrometheusRange));
    // Key order and white space vary between servers; `resultType` may lie past the head.
    assert_eq!(detect(b"{ \"data\" : { \"resultType\" :\n \"matrix\" } }"), Ok(SourceFormat::PrometheusRange));
    let late = format!("{{\"status\":\"success\",\"data\":{{\"result\":[{}]", "{},".repeat(40_000));
    assert_eq!(detect(late.as_bytes()), Ok(SourceFormat::PrometheusRange));
    assert_eq!(detect(SMI.as_bytes()), Ok(SourceFormat::NvidiaSmi));
    assert_eq!(detect(b"utilization.gpu [%], memory.used [MiB]\n3 %, 5 MiB\n"), Ok(SourceFormat::NvidiaSmi));
    assert_eq!(detect(b"timestamp, name, pci.bus_id, temperature.gpu\n"), Ok(SourceFormat::NvidiaSmi));
    // A metric CSV is never detected.
    assert!(matches!(detect(b"ts,machine,gpu,name,val\n1,m,0,x,1\n"), Err(FormatError::Unrecognized { .. })));
    assert!(matches!(detect(b"# only a comment\n"), Err(FormatError::Unrecognized { .. })));
    assert!(matches!(detect(b"{\"status\": \"ok\"}\n"), Err(FormatError::Unrecognized { .. })));
}

#[test]
fn sample_traces_still_detect_as_before() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../sample-traces");
    let read = |p: &str| std::fs::read(format!("{dir}/{p}")).unwrap();
    let gunzip = |b: Vec<u8>| {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&b[..]), &mut out).unwrap();
        out
    };
    for (path, format) in [
        ("requests/AzureLLMInferenceTrace_code.csv", SourceFormat::AzureLlm),
        ("requests/AzureLLMInferenceTrace_conv_1week.csv", SourceFormat::AzureLlm),
        ("requests/BurstGPT_1.csv", SourceFormat::BurstGpt),
        ("requests/BurstGPT_v1.1_sessions.csv", SourceFormat::BurstGpt),
        ("requests/mooncake_conversation.jsonl", SourceFormat::Mooncake),
        ("kineto/train_2rank/rank0.json", SourceFormat::Kineto),
        ("kineto/train_2rank/rank1.json", SourceFormat::Kineto),
    ] {
        assert_eq!(detect(&read(path)), Ok(format), "{path}");
    }
    assert_eq!(detect(&gunzip(read("requests/AzureLLMInferenceTrace_code_1week.csv.gz"))), Ok(SourceFormat::AzureLlm));
    assert_eq!(detect(&gunzip(read("kineto/inference_1rank/trace.json.gz"))), Ok(SourceFormat::Kineto));
}

#[test]
fn a_custom_metric_map_replaces_the_builtin_one() {
    let map = MetricMap::parse(
        "version = 1\n[[metric]]\nmetric = \"busy\"\nunit = \"ratio\"\nkind = \"gauge\"\nsource_unit = \"%\"\nnames = [\"up\"]\nsource = \"test\"\n",
    )
    .unwrap();
    let o = TelemetryOptions { metrics: std::sync::Arc::new(map), ..opts() };
    let r = &rows(&parse_file(b"up 50\nDCGM_FI_DEV_GPU_UTIL 50\n", None, &o, "f").unwrap().batch)[..];
    let got: Vec<(&str, &str, &str)> =
        r.iter().map(|r| (r.metric.as_str(), r.value.as_str(), r.unit.as_str())).collect();
    assert_eq!(got, vec![("busy", "0.5", "ratio"), ("dcgm_fi_dev_gpu_util", "50.0", "unknown")]);
}
