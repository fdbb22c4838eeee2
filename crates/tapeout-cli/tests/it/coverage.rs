//! Issue 21, points 1 and 2: coverage (modelled / attributed / unexplained) in
//! `recommendations.json`, the Markdown and the HTML report, and unexplained time in the
//! sensitivity analysis.

use std::path::Path;

use crate::common::*;

/// The 2-rank sample training trace with its GEMM kernels renamed to a name no category rule
/// matches and its ops' shapes dropped: the GEMM time is unexplained. Returns the renamed
/// kernels' GPU time (µs, both ranks) by new name, all GPU activity time and the NCCL kernels'
/// time (µs).
fn opaque_gemm_trace(dir: &Path) -> (std::collections::BTreeMap<String, f64>, f64, f64) {
    std::fs::create_dir_all(dir).unwrap();
    let mut renamed = std::collections::BTreeMap::new();
    let (mut total, mut nccl) = (0.0, 0.0);
    for r in 0..2 {
        let src = repo().join(format!("sample-traces/kineto/train_2rank/rank{r}.json"));
        let mut doc: serde_json::Value = serde_json::from_slice(&std::fs::read(src).unwrap()).unwrap();
        let mut names: Vec<String> = Vec::new();
        for e in doc["traceEvents"].as_array_mut().unwrap() {
            let cat = e["cat"].as_str().unwrap_or_default().to_string();
            if matches!(cat.as_str(), "kernel" | "gpu_memcpy" | "gpu_memset") {
                total += e["dur"].as_f64().unwrap();
                if e["name"].as_str().unwrap().starts_with("nccl") {
                    nccl += e["dur"].as_f64().unwrap();
                }
            }
            if cat == "kernel" && e["name"].as_str().unwrap().contains("gemm") {
                let old = e["name"].as_str().unwrap().to_string();
                let i = names.iter().position(|n| *n == old).unwrap_or_else(|| {
                    names.push(old.clone());
                    names.len() - 1
                });
                let new = format!("vendor_opaque_kernel_{i}");
                *renamed.entry(new.clone()).or_insert(0.0) += e["dur"].as_f64().unwrap();
                e["name"] = serde_json::json!(new);
            }
            if cat == "cpu_op"
                && let Some(args) = e["args"].as_object_mut()
            {
                args.remove("Input Dims");
                args.remove("Input type");
                args.remove("Concrete Inputs");
            }
        }
        std::fs::write(dir.join(format!("rank{r}.json")), serde_json::to_vec(&doc).unwrap()).unwrap();
    }
    (renamed, total, nccl)
}

#[test]
fn unexplained_gemm_time_is_reported_and_caps_confidence() {
    let tmp = tempfile::tempdir().unwrap();
    let traces = tmp.path().join("opaque_train");
    let (renamed, total_us, nccl_us) = opaque_gemm_trace(&traces);
    let renamed_us: f64 = renamed.values().sum();
    assert!(renamed_us / total_us > 0.4, "the GEMMs are most of the trace: {renamed_us} of {total_us} µs");
    let p = tmp.path().join("pipeline.toml");
    std::fs::write(
        &p,
        format!(
            "name = 'opaque'\nlake = 'lake'\nreport = 'report'\nhardware = 'h100-sxm'\n[[source]]\npath = '{}'\n",
            traces.display()
        ),
    )
    .unwrap();
    let o = tapeout(&["run", "--json", "-q", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let report = tmp.path().join("report");
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(report.join("recommendations.json")).unwrap()).unwrap();
    let w = &r["workloads"][0];
    assert_eq!(w["name"], "opaque_train");
    let c = &w["coverage"];
    let (modelled, attributed, unexplained) =
        (c["modelled"].as_f64().unwrap(), c["attributed"].as_f64().unwrap(), c["unexplained"].as_f64().unwrap());
    assert!((modelled + attributed + unexplained - 1.0).abs() < 1e-9, "{c}");
    // The renamed kernels are the unexplained time: their share of GPU activity time, computed
    // from the trace here (communication is sized from the same kernels' durations).
    assert!((unexplained - renamed_us / total_us).abs() < 0.01, "{unexplained} vs {}", renamed_us / total_us);
    // No op has shapes left: what is modelled is the NCCL all-reduce, sized by its message.
    assert!((modelled - nccl_us / total_us).abs() < 0.01, "{modelled} vs {}: {c}", nccl_us / total_us);
    // The largest unexplained kernels are named, with their exact time.
    let kernels = c["unexplained_kernels"].as_array().unwrap();
    let mut expected: Vec<(&String, &f64)> = renamed.iter().collect();
    expected.sort_by(|a, b| b.1.total_cmp(a.1));
    assert_eq!(kernels[0][0], expected[0].0.as_str(), "{kernels:?}");
    assert!((kernels[0][1].as_f64().unwrap() - expected[0].1 * 1e-6).abs() < 1e-9, "{kernels:?}");
    // Fleet coverage (one workload) and the sensitivity runs that bind unexplained time.
    assert!((r["coverage"]["unexplained"].as_f64().unwrap() - unexplained).abs() < 1e-12);
    let perturbations: Vec<&str> = r["perturbations"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
    for how in ["compute-bound", "memory-bound", "communication-bound"] {
        assert!(perturbations.contains(&format!("unexplained time as {how}").as_str()), "{perturbations:?}");
    }
    let tops = r["coverage"]["top_with_unexplained_as"].as_array().unwrap();
    assert_eq!(tops.len(), 3);
    // Bound to matrix FLOPs, the unexplained GEMM time makes a matrix feature the top one.
    assert_eq!(tops[0][0], "compute-bound");
    assert_eq!(tops[0][1], "matrix_flops", "{tops:?}");
    let base_top = r["recommendations"][0]["feature"].as_str().unwrap();
    let changes = tops.iter().any(|t| t[1].as_str() != Some(base_top));
    assert_eq!(r["coverage"]["unexplained_could_change_top"].as_bool(), Some(changes));
    assert!(changes, "top {base_top}, with unexplained bound: {tops:?}");
    // The report: confidence is not "high", the summary says the unexplained share in words,
    // and the HTML has the coverage bar naming the largest unexplained kernel.
    let stored: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("lake/_mined/_report/report.json")).unwrap()).unwrap();
    assert_ne!(stored["summary"]["confidence"], "high");
    let sentence = stored["summary"]["coverage"].as_str().unwrap();
    assert!(sentence.contains(&format!("{:.1}% unexplained", 100.0 * unexplained)), "{sentence}");
    assert!(sentence.contains("it could change the top rank"), "{sentence}");
    let html = std::fs::read_to_string(report.join("report.html")).unwrap();
    assert!(html.contains("chart chart-coverage"));
    assert!(html.replace("<wbr>", "").contains(expected[0].0.as_str()));
    let md = std::fs::read_to_string(report.join("report.md")).unwrap();
    assert!(md.contains(&format!("{:.1}% unexplained", 100.0 * unexplained)), "{md}");
}

/// The sample traces: every kernel workload's coverage adds up, request workloads are modelled
/// whole, and the `recommend` summary line states the fleet coverage.
#[test]
fn sample_coverage_adds_up_and_the_summary_line_says_it() {
    let (tmp, lake) = temp_lake();
    let l = lake.to_str().unwrap();
    let o = tapeout(&["ingest", "-q", "--lake", l, repo().join("sample-traces").to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(tapeout(&["mine", "-q", "--lake", l]).status.success());
    let out = tmp.path().join("rec");
    let o = tapeout(&["recommend", "--lake", l, "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("recommendations.json")).unwrap()).unwrap();
    let mut fleet = [0.0; 3];
    for w in r["workloads"].as_array().unwrap() {
        let c = &w["coverage"];
        let parts = ["modelled", "attributed", "unexplained"].map(|k| c[k].as_f64().unwrap());
        assert!((parts.iter().sum::<f64>() - 1.0).abs() < 1e-9, "{}: {c}", w["name"]);
        if w["kind"] == "requests" {
            assert_eq!(parts, [1.0, 0.0, 0.0]);
        }
        let by: f64 = c["attributed_by"].as_array().unwrap().iter().map(|a| a[1].as_f64().unwrap()).sum();
        assert!((by - parts[1]).abs() < 1e-9);
        for (f, p) in fleet.iter_mut().zip(parts) {
            *f += p * w["fleet_share"].as_f64().unwrap();
        }
    }
    for (i, k) in ["modelled", "attributed", "unexplained"].iter().enumerate() {
        assert!((r["coverage"][k].as_f64().unwrap() - fleet[i]).abs() < 1e-9, "{k}");
    }
    let line = format!("coverage: {:.1}% of fleet time is modelled", 100.0 * fleet[0]);
    assert!(stderr(&o).contains(&line), "{}", text(&o));
}
