//! Feasible serving configurations (issue 21, point 4) end to end: Llama-2-70B's fp16 weights
//! (138 GB) on an 80 GB H100 get tensor parallel 2, stated in the assumptions and the workload
//! descriptions; a fixed degree too small exits 1 naming model, dtype, bytes needed and bytes
//! available, in `recommend` and in `run`; a feature on whose profile the deployment no longer
//! fits is not ranked.

use std::path::{Path, PathBuf};

use crate::common::{repo, tapeout, temp_lake, text};

/// Llama-2-70B at tensor parallel 1 on an H100 (fp16: 68.98e9 params × 2 bytes = 137.96 GB of
/// weights) against 90% of 80 GB usable.
const REFUSED: &str = "llama-2-70b (fp16) does not fit on h100-sxm at tensor parallel 1: ";
const AVAILABLE: &str = "bytes needed per device, 72000000000 bytes available";

fn requests() -> PathBuf {
    repo().canonicalize().unwrap().join("sample-traces/requests")
}

/// A lake of the sample request traces, mined.
fn mined_lake(lake: &Path) {
    let l = lake.to_str().unwrap();
    let o = tapeout(&["ingest", "-q", "--lake", l, requests().to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let o = tapeout(&["mine", "-q", "--lake", l]);
    assert!(o.status.success(), "{}", text(&o));
}

fn read_json(p: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

/// The assumption lines of `r` that choose a tensor-parallel degree.
fn chosen(r: &serde_json::Value) -> Vec<String> {
    r["assumptions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a.as_str().filter(|a| a.contains(" chosen: ")).map(str::to_string))
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn recommend_chooses_a_tensor_parallel_degree_that_fits_or_refuses() {
    let (tmp, lake) = temp_lake();
    mined_lake(&lake);
    let (l, out) = (lake.to_str().unwrap(), tmp.path().join("out"));
    let o = tapeout(&["recommend", "--lake", l, "--out", out.to_str().unwrap(), "--model", "llama-2-70b"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r = read_json(&out.join("recommendations.json"));
    let lines = chosen(&r);
    assert_eq!(lines.len(), 1, "one line for every workload of the model at one degree: {lines:?}");
    assert!(
        lines[0].contains(
            "tensor parallel 2 chosen: the smallest power of two at which llama-2-70b's fp16 weights (68.98 GB per device) plus one request's KV cache at the mean context ("
        ),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains("fit h100-sxm's 72.00 GB usable per device (90% of 80.00 GB)"), "{}", lines[0]);
    assert!(r["assumptions"][0].as_str().unwrap().contains("tensor parallel chosen per workload"), "{r}");
    let workloads = r["workloads"].as_array().unwrap();
    assert!(!workloads.is_empty());
    for w in workloads.iter().filter(|w| w["kind"] == "requests") {
        let d = w["description"].as_str().unwrap();
        assert!(d.contains("modelled as llama-2-70b (fp16), tensor parallel 2, decode batch"), "{d}");
        assert!(lines[0].contains(&format!("`{}`", w["name"].as_str().unwrap())), "{} in {}", w["name"], lines[0]);
    }
    assert!(std::fs::read_to_string(out.join("recommendations.md")).unwrap().contains("tensor parallel 2 chosen"));

    // Fixed too small: exit 1 with the bytes; fixed large enough: kept, nothing chosen.
    let o = tapeout(&[
        "recommend",
        "--lake",
        l,
        "--out",
        tmp.path().join("out1").to_str().unwrap(),
        "--model",
        "llama-2-70b",
        "--tensor-parallel",
        "1",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains(REFUSED) && t.contains(AVAILABLE), "{t}");
    assert!(t.contains("tensor parallel 2 is the smallest power of two that fits"), "{t}");
    assert!(!tmp.path().join("out1/recommendations.json").exists());
    let out4 = tmp.path().join("out4");
    let o = tapeout(&[
        "recommend",
        "--lake",
        l,
        "--out",
        out4.to_str().unwrap(),
        "--model",
        "llama-2-70b",
        "--tensor-parallel",
        "4",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r4 = read_json(&out4.join("recommendations.json"));
    assert!(chosen(&r4).is_empty(), "{r4}");
    assert!(r4["assumptions"][0].as_str().unwrap().contains("tensor parallel 4,"), "{r4}");
    let o = tapeout(&["recommend", "--lake", l, "--out", out4.to_str().unwrap(), "--tensor-parallel", "0"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("invalid value '0' for '--tensor-parallel <N>'"), "{}", text(&o));

    // A feature taking capacity away (×0.4: 32 GB) is not ranked for this deployment: the
    // weights alone need 69 GB per device.
    let pipelines = tmp.path().join("pipelines");
    copy_dir(&repo().join("pipelines"), &pipelines);
    std::fs::write(
        pipelines.join("features/zz_less_hbm.toml"),
        "[[feature]]\nid = 'less_hbm'\nstep = 'HBM capacity ×0.4, bandwidth ×1.5'\ncost = 0.5\n\
         change = { hbm_capacity = 0.4, hbm_bandwidth = 1.5 }\n",
    )
    .unwrap();
    let out5 = tmp.path().join("out5");
    let o = tapeout(&[
        "recommend",
        "--lake",
        l,
        "--out",
        out5.to_str().unwrap(),
        "--model",
        "llama-2-70b",
        "--pipelines",
        pipelines.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r5 = read_json(&out5.join("recommendations.json"));
    let ranked: Vec<&str> =
        r5["recommendations"].as_array().unwrap().iter().map(|x| x["feature"].as_str().unwrap()).collect();
    assert!(!ranked.contains(&"less_hbm") && ranked.contains(&"hbm_capacity"), "{ranked:?}");
    let warnings = r5["warnings"].to_string();
    assert!(
        warnings.contains("feature `less_hbm` (HBM capacity ×0.4, bandwidth ×1.5) is not ranked")
            && warnings.contains("tensor parallel 2:")
            && warnings.contains("28800000000 available"),
        "{warnings}"
    );
    assert!(text(&o).contains("warning: feature `less_hbm`"), "{}", text(&o));
}

#[test]
fn run_takes_tensor_parallel_from_the_flag_or_chooses_it() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("p.toml");
    std::fs::write(
        &p,
        format!(
            "name = 'tp'\nlake = 'lake'\nreport = 'report'\nhardware = 'h100-sxm'\n\
             [[source]]\npath = '{}'\n[serving]\nmodel = 'llama-2-70b'\n",
            requests().join("AzureLLMInferenceTrace_code.csv").display()
        ),
    )
    .unwrap();
    let p = p.to_str().unwrap();
    let o = tapeout(&["run", "-q", p, "--tensor-parallel", "1"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains(REFUSED) && text(&o).contains(AVAILABLE), "{}", text(&o));
    // `serving.tensor_parallel` left out: chosen.
    let o = tapeout(&["run", "-q", p]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r = read_json(&tmp.path().join("report/recommendations.json"));
    let lines = chosen(&r);
    assert!(lines.len() == 1 && lines[0].starts_with("Workload `code`: tensor parallel 2 chosen"), "{lines:?}");
    // Fixed in the config and too small: the same error.
    let fixed = std::fs::read_to_string(p).unwrap() + "tensor_parallel = 1\n";
    std::fs::write(p, fixed).unwrap();
    let o = tapeout(&["run", "-q", p]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains(REFUSED), "{}", text(&o));
    // ... and the flag overrides it.
    let o = tapeout(&["run", "-q", p, "--tensor-parallel", "8"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r = read_json(&tmp.path().join("report/recommendations.json"));
    assert!(chosen(&r).is_empty() && r["assumptions"][0].as_str().unwrap().contains("tensor parallel 8,"), "{r}");
}
