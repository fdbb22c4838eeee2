//! Issue 22: device telemetry in a run — fleet shares from measured device-hours, checked
//! against a computation from the sample files here; counter-based bound classes beside the
//! others; the report says where each share came from.

use std::collections::{BTreeMap, BTreeSet};

use crate::common::*;

/// Device-hours per workload label, from the dcgm-exporter sample scrapes: each labelled
/// device (UUID, MIG instance) holds every scrape for the scrape interval (the scrapes are
/// regular, so the last one holds one interval too).
fn device_hours_from_samples() -> BTreeMap<String, f64> {
    let dir = repo().join("sample-traces/telemetry/dcgm");
    let mut devices: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut times: BTreeSet<i64> = BTreeSet::new();
    for f in std::fs::read_dir(&dir).unwrap() {
        let text = std::fs::read_to_string(f.unwrap().path()).unwrap();
        for line in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
            let (labels, rest) = line.split_once('}').unwrap();
            let label =
                |k: &str| labels.split(&format!("{k}=\"")).nth(1).map(|v| v.split('"').next().unwrap().to_string());
            times.insert(rest.split_whitespace().nth(1).unwrap().parse().unwrap());
            if let Some(w) = label("workload") {
                let id = format!("{}/{}", label("UUID").unwrap(), label("GPU_I_ID").unwrap_or_default());
                devices.entry(w).or_default().insert(id);
            }
        }
    }
    let times: Vec<i64> = times.into_iter().collect();
    let interval_ms = times[1] - times[0];
    assert!(times.windows(2).all(|w| w[1] - w[0] == interval_ms), "regular scrapes");
    let hours_per_device = times.len() as f64 * interval_ms as f64 / 3.6e6;
    devices.into_iter().map(|(w, d)| (w, d.len() as f64 * hours_per_device)).collect()
}

#[test]
fn a_run_with_telemetry_weighs_workloads_by_measured_device_hours() {
    let hours = device_hours_from_samples();
    assert_eq!(hours.keys().collect::<Vec<_>>(), ["code", "conversation", "inference_1rank", "train_2rank"]);
    let tmp = tempfile::tempdir().unwrap();
    let samples = repo().join("sample-traces");
    let p = tmp.path().join("pipeline.toml");
    // `code` is overridden by the config; the others come from telemetry or take the mean.
    std::fs::write(
        &p,
        format!(
            "name = 't'\nlake = 'lake'\nreport = 'report'\nhardware = 'h100-sxm'\n\
             [[source]]\npath = '{}'\n[[source]]\npath = '{}'\n[[source]]\npath = '{}'\n[fleet]\ncode = 3.0\n",
            samples.join("requests").display(),
            samples.join("kineto").display(),
            samples.join("telemetry").display()
        ),
    )
    .unwrap();
    let o = tapeout(&["run", "-q", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("report/recommendations.json")).unwrap()).unwrap();
    let ws = r["workloads"].as_array().unwrap();
    // Weights: config for code, device-hours for the other measured ones, their mean for the rest.
    let mut weights: BTreeMap<String, (f64, &str)> = BTreeMap::new();
    for w in ws {
        let name = w["name"].as_str().unwrap().to_string();
        let weight = match name.as_str() {
            "code" => (3.0, "config"),
            n if hours.contains_key(n) => (hours[n], "telemetry"),
            _ => (0.0, "equal"),
        };
        weights.insert(name, weight);
    }
    let given: Vec<f64> = weights.values().filter(|w| w.1 != "equal").map(|w| w.0).collect();
    let mean = given.iter().sum::<f64>() / given.len() as f64;
    weights.values_mut().filter(|w| w.1 == "equal").for_each(|w| w.0 = mean);
    let total: f64 = weights.values().map(|w| w.0).sum();
    for w in ws {
        let (weight, source) = weights[w["name"].as_str().unwrap()];
        assert!((w["fleet_share"].as_f64().unwrap() - weight / total).abs() < 1e-12, "{w}");
        assert_eq!(w["fleet_share_source"], source, "{}", w["name"]);
    }
    // Counter-based bound classes beside the trace- and model-derived ones.
    let train = ws.iter().find(|w| w["name"] == "train_2rank").unwrap();
    let class = train["counter_bound_class"]["class"].as_str().unwrap();
    assert!(class.ends_with(": compute_bound"), "{class}");
    let conv = ws.iter().find(|w| w["name"] == "conversation").unwrap();
    assert!(conv["counter_bound_class"]["class"].as_str().unwrap().ends_with(": memory_bound"));
    // dcgm-exporter's default counters lack SM_ACTIVE: said, not assumed.
    assert!(conv["counter_bound_class"]["basis"].as_str().unwrap().contains("missing: sm_active"));
    let html = std::fs::read_to_string(tmp.path().join("report/report.html")).unwrap();
    assert!(html.contains("Fleet share measured by device telemetry (device-hours)"));
    assert!(html.contains("Device counters:"));
}

/// A pipeline source of metric CSV names its mapping (relative to the config) and time zone;
/// without a mapping the config is refused before anything runs.
#[test]
fn a_metric_csv_source_takes_its_mapping_from_the_pipeline() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("cluster")).unwrap();
    std::fs::write(
        tmp.path().join("cluster/gpus.csv"),
        "ts,machine,gpu_index,job_name,util\n\
         2023-11-16T18:00:00,m1,0,code,50\n\
         2023-11-16T18:15:00,m1,0,code,70\n",
    )
    .unwrap();
    std::fs::write(
        tmp.path().join("gpus.toml"),
        "time = 'ts'\ntime_unit = 'rfc3339'\nvalue = 'util'\nfixed_metric = 'DCGM_FI_DEV_GPU_UTIL'\n\
         host = 'machine'\ndevice = 'gpu_index'\nworkload = 'job_name'\n",
    )
    .unwrap();
    let requests = repo().join("sample-traces/requests/AzureLLMInferenceTrace_code.csv");
    let write = |extra: &str| {
        let p = tmp.path().join("p.toml");
        std::fs::write(
            &p,
            format!(
                "name = 'm'\nlake = 'lake'\nreport = 'report'\nhardware = 'h100-sxm'\n\
                 [[source]]\npath = '{}'\n[[source]]\npath = 'cluster'\nformat = 'metric_csv'\n{extra}",
                requests.display()
            ),
        )
        .unwrap();
        p
    };
    let o = tapeout(&["run", "-q", write("").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(stderr(&o).contains("`source[1].format = \"metric_csv\"` needs `source[1].mapping`"), "{}", text(&o));
    let o = tapeout(&["run", "-q", write("mapping = 'gpus.toml'\ntimezone = '+02:00'\n").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // Zone-less times read at +02:00: 18:00 local is 16:00 UTC.
    let rows = sql_csv(
        tmp.path().join("lake").to_str().unwrap(),
        "select cast(time as varchar) as t, workload, value from device_samples order by time",
    );
    assert_eq!(stdout(&rows), "t,workload,value\n2023-11-16T16:00:00Z,code,0.5\n2023-11-16T16:15:00Z,code,0.7\n");
}
