//! Issue 21, point 5: `tapeout project` — every workload onto another hardware profile.

use std::path::Path;

use crate::common::*;

/// The 2-rank sample training trace, its device renamed to `device` when given.
fn train_trace(dir: &Path, device: Option<&str>) {
    std::fs::create_dir_all(dir).unwrap();
    for r in 0..2 {
        let src = repo().join(format!("sample-traces/kineto/train_2rank/rank{r}.json"));
        let mut doc: serde_json::Value = serde_json::from_slice(&std::fs::read(src).unwrap()).unwrap();
        if let Some(d) = device {
            for p in doc["deviceProperties"].as_array_mut().unwrap() {
                p["name"] = serde_json::json!(d);
            }
        }
        std::fs::write(dir.join(format!("rank{r}.json")), serde_json::to_vec(&doc).unwrap()).unwrap();
    }
}

fn mined_lake(tmp: &Path, inputs: &[&Path]) -> String {
    let lake = tmp.join("lake").display().to_string();
    let mut args = vec!["ingest", "-q", "--lake", lake.as_str()];
    let inputs: Vec<String> = inputs.iter().map(|p| p.display().to_string()).collect();
    args.extend(inputs.iter().map(String::as_str));
    assert!(tapeout(&args).status.success());
    assert!(tapeout(&["mine", "-q", "--lake", &lake]).status.success());
    lake
}

#[test]
fn project_takes_each_workload_to_the_target_and_onto_its_own_device_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let train = tmp.path().join("train");
    train_trace(&train, None);
    let code = repo().join("sample-traces/requests/AzureLLMInferenceTrace_code.csv");
    let lake = mined_lake(tmp.path(), &[&train, &code]);
    let o = tapeout(&["project", "--lake", &lake, "--to", "mi300x", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let p = json(&o);
    assert_eq!(p["to"], "mi300x");
    let ws = p["workloads"].as_array().unwrap();
    assert_eq!(ws.len(), 2);
    let t = ws.iter().find(|w| w["workload"] == "train").unwrap();
    assert_eq!(
        (t["kind"].as_str(), t["from"].as_str(), t["to"].as_str()),
        (Some("kernels"), Some("h100-sxm"), Some("mi300x"))
    );
    // Measured busy time is the union of GPU activities summed over ranks, as mined.
    let busy = stdout(&sql_csv(
        &lake,
        "select sum(b) from (select distinct file, rank, busy_ns as b from kernel_category_time where workload = 'train')",
    ));
    let busy: f64 = busy.lines().nth(1).unwrap().parse().unwrap();
    assert!((t["measured_busy_ns"].as_f64().unwrap() - busy).abs() < 1e-3, "{t}");
    // The MI300X's compute and memory roofs are higher than the H100's: every compute category is
    // predicted faster or equal. (Communication is not: two MI300X talk over one Infinity Fabric
    // link, a fraction of the H100's NVLink bandwidth.)
    let cats = t["categories"].as_array().unwrap();
    let sum = |k: &str| cats.iter().map(|c| c[k].as_f64().unwrap()).sum::<f64>();
    assert!((sum("measured_ns") - busy).abs() < 1e-3);
    assert!((sum("predicted_ns") - t["predicted_busy_ns"].as_f64().unwrap()).abs() < 1e-3);
    for c in cats.iter().filter(|c| c["category"] != "communication (exposed)") {
        assert!(c["predicted_ns"].as_f64().unwrap() <= c["measured_ns"].as_f64().unwrap() * (1.0 + 1e-9), "{c}");
    }
    let r = ws.iter().find(|w| w["workload"] == "code").unwrap();
    assert_eq!((r["kind"].as_str(), r["from"].as_str()), (Some("requests"), Some("h100-sxm")));
    // Onto the device it was traced on, a trace is predicted exactly as measured.
    let same = json(&tapeout(&["project", "--lake", &lake, "--to", "h100-sxm", "--json"]));
    let t = same["workloads"].as_array().unwrap().iter().find(|w| w["workload"] == "train").unwrap().clone();
    assert!((t["predicted_busy_ns"].as_f64().unwrap() - busy).abs() < 1e-3, "{t}");
    // The human table.
    let o = tapeout(&["project", "--lake", &lake, "--to", "mi300x"]);
    assert!(stdout(&o).contains("train") && stdout(&o).contains("mi300x"), "{}", text(&o));
}

#[test]
fn a_trace_of_an_unknown_device_is_refused_unless_from_names_one() {
    let tmp = tempfile::tempdir().unwrap();
    let train = tmp.path().join("train");
    train_trace(&train, Some("Contoso Accelerator X1"));
    let lake = mined_lake(tmp.path(), &[&train]);
    let o = tapeout(&["project", "--lake", &lake, "--to", "mi300x"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(stderr(&o).contains("workload `train`: its device matches no hardware profile"), "{}", text(&o));
    assert!(stderr(&o).contains("--from"), "{}", text(&o));
    let o = tapeout(&["project", "--lake", &lake, "--to", "mi300x", "--from", "a100-sxm-80gb", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(json(&o)["workloads"][0]["from"], "a100-sxm-80gb");
    let o = tapeout(&["project", "--lake", &lake, "--to", "no-such-chip"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--to no-such-chip"), "{}", text(&o));
}
