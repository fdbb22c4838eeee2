//! `tapeout run` end to end on the sample traces, `tapeout report`, `tapeout mine` and
//! `tapeout recommend`, and pipeline configs that must fail before any work.

use std::path::{Path, PathBuf};

use crate::common::{real_traces, repo, sql_csv, tapeout, temp_lake, text};

/// The repository's root, canonical.
fn root() -> PathBuf {
    repo().canonicalize().unwrap()
}

/// A pipeline over every sample trace, writing into `dir`.
fn pipeline(dir: &Path, extra: &str) -> PathBuf {
    let samples = root().join("sample-traces");
    let p = dir.join("pipeline.toml");
    std::fs::write(
        &p,
        format!(
            "name = 'test'\nlake = 'lake'\nreport = 'report'\nhardware = 'h100-sxm'\n\
             [[source]]\npath = '{}'\n[[source]]\npath = '{}'\n{extra}",
            samples.join("requests").display(),
            samples.join("kineto").display()
        ),
    )
    .unwrap();
    p
}

#[test]
fn run_twice_is_idempotent_and_the_report_is_self_contained() {
    let tmp = tempfile::tempdir().unwrap();
    let p = pipeline(tmp.path(), "[fleet]\ncode = 2.0\n");
    let first = tapeout(&["run", "--json", "-q", p.to_str().unwrap()]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let s1: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    // 7 request files + 3 Kineto traces; 248 request rows, 131 kernels, 405 ops, ... all land.
    assert_eq!(s1["ingest"]["inputs"], 10);
    assert_eq!(s1["ingest"]["rejected"], 0);
    assert_eq!(s1["jobs_failed"].as_array().unwrap().len(), 0);
    assert!(s1["jobs_computed"].as_u64().unwrap() >= 16);
    let report = tmp.path().join("report");
    let html = std::fs::read_to_string(report.join("report.html")).unwrap();
    assert!(!html.contains("http://") && !html.contains("https://") && !html.contains("<script"));
    assert!(html.contains("chart chart-roofline") && html.contains("chart chart-features"));
    // Stamped with the version and the config hash.
    let recs1 = std::fs::read_to_string(report.join("recommendations.json")).unwrap();
    let r1: serde_json::Value = serde_json::from_str(&recs1).unwrap();
    assert_eq!(r1["tapeout_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(r1["config_hash"], s1["config_hash"]);
    assert!(html.contains(s1["config_hash"].as_str().unwrap()));
    assert_eq!(r1["recommendations"].as_array().unwrap().len(), 9);
    assert_eq!(r1["workloads"].as_array().unwrap().len(), 8);
    for rec in r1["recommendations"].as_array().unwrap() {
        for e in rec["evidence"].as_array().unwrap() {
            assert!(!e["job"].as_str().unwrap().is_empty());
        }
    }

    let second = tapeout(&["run", "--json", "-q", p.to_str().unwrap()]);
    assert_eq!(second.status.code(), Some(0), "{}", text(&second));
    let s2: serde_json::Value = serde_json::from_slice(&second.stdout).unwrap();
    assert_eq!(s2["ingest"]["rows"], 0, "nothing new the second time");
    assert_eq!(s2["ingest"]["skipped"], 10);
    assert_eq!(s2["jobs_computed"], 0);
    assert_eq!(s2["lake_version"], s1["lake_version"]);
    assert_eq!(std::fs::read_to_string(report.join("recommendations.json")).unwrap(), recs1, "same recommendations");

    // `tapeout report` re-renders from the lake without recomputing.
    let out = tmp.path().join("again");
    let lake = tmp.path().join("lake");
    let o = tapeout(&["report", "--lake", lake.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert_eq!(md, std::fs::read_to_string(report.join("report.md")).unwrap());

    // The mined results are tables in `tapeout sql`.
    let o = sql_csv(lake.to_str().unwrap(), "select count(*) from kernel_time_buckets");
    assert!(o.status.success(), "{}", text(&o));
    let o = sql_csv(
        lake.to_str().unwrap(),
        "select hdr_quantile(input_tokens, 0.5) from requests where workload = 'conversation'",
    );
    // 40 conversation requests; the 20th smallest prompt is 655 tokens (exact below 2048).
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().nth(1), Some("655.0"), "{}", text(&o));
}

#[test]
fn bad_pipelines_fail_before_any_work() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        ("surprise = 1\n", "unknown field `surprise`"),
        ("[serving]\nmodel = 'gpt-9'\n", "`serving.model`: unknown model `gpt-9`; known: "),
        ("[mining.params]\nnope = 3\n", "no selected job declares a parameter `nope`"),
        ("[features]\nids = ['warp_drive']\n", "`features.ids`: unknown feature `warp_drive`; known: hbm_bandwidth"),
        ("[features.cost]\nsram = -1\n", "`features.cost.sram`: must be a positive number, got -1"),
        ("[features]\nrank = 1\n", "unknown field `rank`"),
    ];
    for (extra, want) in cases {
        let p = pipeline(tmp.path(), extra);
        let o = tapeout(&["run", p.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1), "{extra}");
        assert!(text(&o).contains(want), "{extra}: {}", text(&o));
        assert!(text(&o).contains(p.to_str().unwrap()), "{extra}: the message names the file: {}", text(&o));
        assert!(!tmp.path().join("lake").exists(), "{extra}: work started");
    }
    let p = tmp.path().join("p.toml");
    let base = std::fs::read_to_string(pipeline(tmp.path(), "")).unwrap();
    std::fs::write(&p, base.replace("hardware = 'h100-sxm'", "hardware = 'h900'")).unwrap();
    let o = tapeout(&["run", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("`hardware`: unknown hardware `h900`; known: a100-sxm-80gb"), "{}", text(&o));
    std::fs::write(&p, base.replace("sample-traces/requests", "sample-traces/nowhere")).unwrap();
    let o = tapeout(&["run", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("`source[0].path`:") && text(&o).contains("does not exist"), "{}", text(&o));
    assert!(!tmp.path().join("lake").exists());
}

/// A new input between runs lands alone and the jobs rerun on the new lake version; a source
/// with quarantined records makes the run exit 2, one with a rejected input 3; `[features]`
/// limits the ranking and overrides costs.
#[test]
fn runs_are_incremental_exit_like_ingest_and_select_features() {
    let tmp = tempfile::tempdir().unwrap();
    let inbox = tmp.path().join("inbox");
    std::fs::create_dir(&inbox).unwrap();
    std::fs::copy(root().join("sample-traces/requests/AzureLLMInferenceTrace_code.csv"), inbox.join("a_code.csv"))
        .unwrap();
    let p = tmp.path().join("p.toml");
    std::fs::write(
        &p,
        format!(
            "name = 'inc'\nlake = 'lake'\nreport = 'report'\nhardware = 'a100-sxm-80gb'\n\
             [[source]]\npath = '{}'\n[[source]]\npath = '{}'\n\
             [features]\nids = ['hbm_bandwidth', 'matrix_flops', 'launch_latency']\n\
             [features.cost]\nmatrix_flops = 0.25\n",
            inbox.display(),
            root().join("sample-traces/kineto/train_2rank").display()
        ),
    )
    .unwrap();
    let run = || {
        let o = tapeout(&["run", "--json", "-q", p.to_str().unwrap()]);
        let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)));
        (o.status.code(), s)
    };
    let (code, s1) = run();
    assert_eq!(code, Some(0), "{s1}");
    assert_eq!((s1["ingest"]["inputs"].as_u64(), s1["ingest"]["rows"].as_u64().map(|r| r > 0)), (Some(3), Some(true)));
    let recs: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("report/recommendations.json")).unwrap()).unwrap();
    let mut ids: Vec<&str> =
        recs["recommendations"].as_array().unwrap().iter().map(|r| r["feature"].as_str().unwrap()).collect();
    ids.sort();
    assert_eq!(ids, ["hbm_bandwidth", "launch_latency", "matrix_flops"]);
    let mf = recs["recommendations"].as_array().unwrap().iter().find(|r| r["feature"] == "matrix_flops").unwrap();
    assert_eq!(mf["cost"], 0.25);

    // A new file with one bad line: only it lands, jobs rerun on the new version, exit 2.
    let mut text_new = std::fs::read_to_string(root().join("sample-traces/requests/AzureLLMInferenceTrace_code.csv"))
        .unwrap()
        .replace("2023-11-16", "2023-11-17");
    let good_records = text_new.lines().count() as u64 - 1;
    text_new.push_str("2023-11-17 18:30:00.0000000,-1,2\n");
    std::fs::write(inbox.join("b_code.csv"), text_new).unwrap();
    let (code, s2) = run();
    assert_eq!(code, Some(2), "{s2}");
    assert_eq!((s2["ingest"]["skipped"].as_u64(), s2["ingest"]["quarantined"].as_u64()), (Some(3), Some(1)), "{s2}");
    assert_eq!(s2["ingest"]["rows"].as_u64(), Some(good_records), "{s2}");
    assert!(s2["lake_version"].as_u64() > s1["lake_version"].as_u64());
    assert!(s2["jobs_computed"].as_u64().unwrap() >= 16, "{s2}");
    // A file that is not a trace: the rest is skipped, exit 3.
    std::fs::write(inbox.join("c_code.csv"), "what,is,this\n1,2,3\n").unwrap();
    let (code, s3) = run();
    assert_eq!(code, Some(3), "{s3}");
    assert_eq!((s3["ingest"]["rows"].as_u64(), s3["ingest"]["rejected"].as_u64()), (Some(0), Some(1)), "{s3}");
    assert_eq!(s3["jobs_computed"], 0, "no new lake version, no job reruns");
}

#[test]
fn recommend_needs_a_mined_lake_and_known_names() {
    let (tmp, lake) = temp_lake();
    let reqs = root().join("sample-traces/requests");
    assert!(tapeout(&["ingest", "-q", "--lake", lake.to_str().unwrap(), reqs.to_str().unwrap()]).status.success());
    let out = tmp.path().join("out");
    let o = tapeout(&["recommend", "--lake", lake.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("the lake was not mined yet"), "{}", text(&o));
    let o = tapeout(&["mine", "--lake", lake.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let o =
        tapeout(&["recommend", "--lake", lake.to_str().unwrap(), "--out", out.to_str().unwrap(), "--hardware", "nope"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("unknown hardware `nope`; known: "), "{}", text(&o));
    let o =
        tapeout(&["recommend", "--lake", lake.to_str().unwrap(), "--out", out.to_str().unwrap(), "--model", "nope"]);
    assert!(text(&o).contains("unknown model `nope`; known: "), "{}", text(&o));
    let o = tapeout(&[
        "recommend",
        "--lake",
        lake.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--hardware",
        "a100-sxm-80gb",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("recommendations.json")).unwrap()).unwrap();
    assert_eq!(r["hardware"]["id"], "a100-sxm-80gb");
    let recs = r["recommendations"].as_array().unwrap();
    assert_eq!(recs[0]["rank"], 1);
    for key in [
        "rank",
        "feature",
        "step",
        "fleet_speedup",
        "time_saved_fraction",
        "per_cost",
        "per_cost_rank",
        "rank_stability",
        "evidence",
    ] {
        assert!(recs[0].get(key).is_some(), "{key}");
    }
    let list = tapeout(&["recommend", "--list", "features"]);
    let l = String::from_utf8_lossy(&list.stdout);
    for f in [
        "hbm_bandwidth",
        "hbm_capacity",
        "matrix_flops",
        "low_precision",
        "vector_flops",
        "sram",
        "interconnect",
        "collective_offload",
        "launch_latency",
    ] {
        assert!(l.contains(f), "{f}");
    }
}

/// Issue "mining" and "recommender" on the real traces: every job runs, every result is a
/// table, and the H100 recommendations' evidence names rows that exist in the mined tables.
#[test]
fn real_traces_mine_and_recommend() {
    let Some(real) = real_traces() else { return };
    let (tmp, lake) = temp_lake();
    let lake_s = lake.to_str().unwrap();
    let mut args = vec!["ingest".to_string(), "-q".into(), "--lake".into(), lake_s.into()];
    for dir in ["azure_llm_2023", "mooncake", "kineto_hta", "param_dlrm_8rank", "kineto_tb_plugin"] {
        args.push(real.join(dir).display().to_string());
    }
    for dir in ["h100", "b200", "mi300", "inference"] {
        args.push(real.join("tracelens").join(dir).display().to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = tapeout(&args);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = tapeout(&["mine", "--json", "--lake", lake_s]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(summary["failed"], 0);
    let jobs: Vec<String> =
        summary["jobs"].as_array().unwrap().iter().map(|j| j["job"].as_str().unwrap().to_string()).collect();
    assert!(jobs.len() >= 20);
    // ../shared/traces holds no device telemetry: the device_* jobs run and find no rows.
    assert_eq!(jobs.iter().filter(|j| j.starts_with("device_")).count(), 4);
    for job in jobs.iter().filter(|j| !j.starts_with("device_")) {
        let o = tapeout(&["sql", "--lake", lake_s, "--format", "csv", &format!("select count(*) from {job}")]);
        assert!(o.status.success(), "{job}: {}", text(&o));
        let n: u64 = String::from_utf8_lossy(&o.stdout).lines().nth(1).unwrap().parse().unwrap();
        assert!(n > 0, "{job} has rows on the real lake");
    }
    let out = tmp.path().join("rec");
    let o = tapeout(&["recommend", "--lake", lake_s, "--hardware", "h100-sxm", "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("recommendations.json")).unwrap()).unwrap();
    let sql_f64 = |q: &str| -> Option<f64> {
        let o = sql_csv(lake_s, q);
        assert!(o.status.success(), "{q}: {}", text(&o));
        String::from_utf8_lossy(&o.stdout).lines().nth(1).and_then(|v| v.parse().ok())
    };
    let (mut checked, mut values_checked) = (0, 0);
    for rec in r["recommendations"].as_array().unwrap() {
        let evidence = rec["evidence"].as_array().unwrap();
        if rec["time_saved_fraction"].as_f64().unwrap() > 0.0 {
            assert!(!evidence.is_empty(), "{} saves time but names no evidence", rec["feature"]);
        }
        for e in evidence {
            let job = e["job"].as_str().unwrap();
            assert!(jobs.iter().any(|j| j == job), "evidence names a mined job: {job}");
            // Every part of the key is a condition on that table's rows.
            let mut cond = Vec::new();
            for part in e["key"].as_str().unwrap().split(", ") {
                if let Some((k, v)) = part.split_once('≠') {
                    cond.push(format!("{k} <> '{v}'"));
                } else if let Some((k, v)) = part.split_once('=') {
                    cond.push(format!("{k} = '{v}'"));
                }
            }
            assert!(!cond.is_empty(), "{e}");
            let filter = cond.join(" and ");
            let n = sql_f64(&format!("select count(*) from {job} where {filter}")).unwrap_or(0.0);
            assert!(n > 0.0, "no row behind evidence {e}");
            checked += 1;
            // A summed column's value is the sum over exactly those rows.
            let column = e["column"].as_str().unwrap();
            if let Some((col, how)) = column.split_once(" (Σ") {
                let want = e["value"].as_f64().unwrap();
                // "Σ over ranks": a per-rank figure repeated on each of the rank's rows.
                let q = if how.starts_with(" over ranks") {
                    format!(
                        "select cast(sum(v) as double) from (select file, rank, max({col}) as v from {job} \
                         where {filter} group by file, rank)"
                    )
                } else {
                    format!("select cast(sum({col}) as double) from {job} where {filter}")
                };
                let got = sql_f64(&q).unwrap();
                assert!((got - want).abs() <= 1e-6 * want.abs().max(1.0), "{e}: the rows sum to {got}");
                values_checked += 1;
            }
        }
    }
    assert!(checked > 10, "{checked} evidence rows checked");
    assert!(values_checked > 5, "{values_checked} evidence values recomputed");
}

/// `tapeout gen` writes traces that ingest cleanly, with the rows asked for.
#[test]
fn generated_traces_ingest_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    for (fmt, file) in [("azure", "g_conv.csv"), ("burstgpt", "BurstGPT_g.csv"), ("mooncake", "g.jsonl")] {
        let out = d.join("in").join(file);
        std::fs::create_dir_all(out.parent().unwrap()).unwrap();
        let o = tapeout(&[
            "gen",
            "requests",
            "--format",
            fmt,
            "--rows",
            "500",
            "--seed",
            "3",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", text(&o));
    }
    let o = tapeout(&["gen", "kineto", "--ranks", "3", "--copies", "2", "--out", d.join("in/k").to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let lake = d.join("lake");
    let o = tapeout(&["ingest", "--json", "-q", "--lake", lake.to_str().unwrap(), d.join("in").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s["inputs"], 6);
    let q = |sql: &str| {
        let o = sql_csv(lake.to_str().unwrap(), sql);
        String::from_utf8_lossy(&o.stdout).lines().nth(1).unwrap_or_default().to_string()
    };
    assert_eq!(q("select count(*) from requests"), "1500");
    // The template rank has 41 GPU activities; 2 copies × 3 ranks.
    assert_eq!(q("select count(*) from kernels"), "246");
    assert_eq!(q("select count(distinct rank) from kernels"), "3");
}

/// The NCCL physics property end to end, from an ingested trace rather than hand-written mined
/// rows: the 2-rank sample training trace with every non-NCCL GPU activity made 20× shorter, so
/// most kernel time is NCCL all-reduce; ingest → mine → recommend ranks `interconnect` or
/// `collective_offload` first.
#[test]
fn an_nccl_bound_training_trace_wants_interconnect_first() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("nccl_train");
    std::fs::create_dir(&dir).unwrap();
    for r in 0..2 {
        let src = root().join(format!("sample-traces/kineto/train_2rank/rank{r}.json"));
        let mut doc: serde_json::Value = serde_json::from_slice(&std::fs::read(src).unwrap()).unwrap();
        for e in doc["traceEvents"].as_array_mut().unwrap() {
            let gpu = matches!(e["cat"].as_str(), Some("kernel" | "gpu_memcpy" | "gpu_memset"));
            if gpu && !e["name"].as_str().unwrap().starts_with("nccl") {
                e["dur"] = serde_json::json!(e["dur"].as_f64().unwrap() / 20.0);
            }
        }
        std::fs::write(dir.join(format!("rank{r}.json")), serde_json::to_vec(&doc).unwrap()).unwrap();
    }
    let lake = tmp.path().join("lake");
    let l = lake.to_str().unwrap();
    assert!(tapeout(&["ingest", "-q", "--lake", l, dir.to_str().unwrap()]).status.success());
    let share = sql_csv(
        l,
        "select sum(case when category = 'communication' then dur_ns else 0 end) * 1.0 / sum(dur_ns) from kernels",
    );
    let share: f64 = String::from_utf8_lossy(&share.stdout).lines().nth(1).unwrap().parse().unwrap();
    assert!(share > 0.7, "NCCL share of kernel time {share}");
    assert!(tapeout(&["mine", "-q", "--lake", l]).status.success());
    let out = tmp.path().join("rec");
    let o = tapeout(&["recommend", "--lake", l, "--hardware", "h100-sxm", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("recommendations.json")).unwrap()).unwrap();
    let first = r["recommendations"][0]["feature"].as_str().unwrap();
    assert!(["interconnect", "collective_offload"].contains(&first), "{}", text(&o));
    // Its evidence is the measured communication of this trace.
    let ev = r["recommendations"][0]["evidence"].as_array().unwrap();
    assert!(ev.iter().any(|e| e["job"] == "comm_compute_overlap" || e["job"] == "collective_bandwidth"), "{ev:?}");
}
