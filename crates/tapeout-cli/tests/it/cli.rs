//! The `tapeout` binary end to end: exit codes, JSON summaries, SQL output, and the real
//! public traces when `TAPEOUT_REAL_TRACES` names their folder.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::common::{bin, json, real_traces, repo, sql_csv, stderr, stdout, tapeout, temp_lake};

fn samples() -> PathBuf {
    repo().join("sample-traces/requests")
}

#[test]
fn version_and_help_on_every_subcommand() {
    let v = tapeout(&["--version"]);
    assert_eq!(stdout(&v).trim(), format!("tapeout {}", env!("CARGO_PKG_VERSION")));
    for sub in ["ingest", "sql", "schema"] {
        let h = tapeout(&[sub, "--help"]);
        assert!(h.status.success(), "{sub}");
        assert!(stdout(&h).contains("Usage: tapeout"), "{sub}");
    }
    assert!(stdout(&tapeout(&["ingest", "--help"])).contains("Exit codes: 0 clean; 2 done with quarantined records"));
}

#[test]
fn schema_command_is_the_docs_and_the_registry() {
    let md = tapeout(&["schema", "--format", "markdown"]);
    let docs = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/schema.md")).unwrap();
    assert_eq!(stdout(&md), docs);
    let j = json(&tapeout(&["schema", "requests", "--format", "json"]));
    assert_eq!(j["name"], "requests");
    let cols: Vec<&str> = j["columns"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(&cols[..4], ["source", "date", "workload", "model"]);
    let bad = tapeout(&["schema", "flows"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr(&bad).contains(
        "unknown table `flows`; known tables: requests, quarantine, kernels, ops, devices, collectives, traces"
    ));
}

#[test]
fn ingest_json_summary_exit_codes_and_sql() {
    let (tmp, lake) = temp_lake();
    let lake_s = lake.to_str().unwrap();
    let o = tapeout(&["ingest", "--lake", lake_s, "--json", samples().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let s = json(&o);
    assert_eq!((s["inputs"].as_u64(), s["rows"].as_u64(), s["skipped"].as_u64()), (Some(7), Some(248), Some(0)));
    for key in ["inputs", "skipped", "rows", "quarantined", "rejected", "outputs", "seconds"] {
        assert!(s.get(key).is_some(), "{key}");
    }
    let again = json(&tapeout(&["ingest", "--lake", lake_s, "--json", samples().to_str().unwrap()]));
    assert_eq!((again["rows"].as_u64(), again["skipped"].as_u64()), (Some(0), Some(7)));

    let count = sql_csv(lake_s, "select count(*) from requests");
    assert_eq!(stdout(&count), "count(*)\n248\n", "{}", stderr(&count));
    let nd = tapeout(&[
        "sql",
        "--lake",
        lake_s,
        "--format",
        "ndjson",
        "select source, count(*) as n from requests group by source order by source",
    ]);
    assert_eq!(
        stdout(&nd),
        "{\"source\":\"azure_llm\",\"n\":142}\n{\"source\":\"burstgpt\",\"n\":66}\n{\"source\":\"mooncake\",\"n\":40}\n"
    );
    let table = tapeout(&["sql", "--lake", lake_s, "select 1 as one"]);
    assert!(stdout(&table).contains("| one |"));
    let refused = tapeout(&["sql", "--lake", lake_s, "copy (select 1) to '/tmp/x.csv'"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(stderr(&refused).contains("read-only"));
    let file = tmp.path().join("q.sql");
    std::fs::write(
        &file,
        "select count(*) as a from requests where failed;\nselect count(*) as b from requests where cached_tokens > 0;",
    )
    .unwrap();
    let f = tapeout(&["sql", "--lake", lake_s, "--format", "csv", "-f", file.to_str().unwrap()]);
    // 4 + 3 BurstGPT rows with 0 response tokens; every Mooncake record after the first shares
    // the first one's two-block system prefix.
    assert_eq!(stdout(&f), "a\n7\nb\n39\n", "{}", stderr(&f));

    // Exit 2: quarantined rows.
    let bad_rows = tmp.path().join("rows_code.csv");
    std::fs::write(
        &bad_rows,
        "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:00:00,1,2\n2023-11-16 18:00:01,x,2\n",
    )
    .unwrap();
    let o = tapeout(&["ingest", "--lake", lake_s, bad_rows.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stdout(&o).contains("1 rows landed, 1 quarantined"));
    // Exit 3: one input rejected, another landed. Exit 1: nothing landed.
    let junk = tmp.path().join("junk.csv");
    std::fs::write(&junk, "a,b\n1,2\n").unwrap();
    let good = tmp.path().join("good_code.csv");
    std::fs::write(&good, "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:00:05,1,2\n").unwrap();
    let o = tapeout(&["ingest", "--lake", lake_s, junk.to_str().unwrap(), good.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains(&format!("rejected  {}: unrecognized format", junk.display())), "{}", stderr(&o));
    let o = tapeout(&["ingest", "--lake", lake_s, junk.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let o = tapeout(&["ingest", "--lake", lake_s, "--format", "parquet", good.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--format `parquet`: unknown format; known: azure_llm, burstgpt, mooncake"));
}

#[test]
fn time_origin_anchors_relative_traces() {
    let (_tmp, lake) = temp_lake();
    let input = samples().join("BurstGPT_1.csv");
    let o = tapeout(&[
        "ingest",
        "--lake",
        lake.to_str().unwrap(),
        "--time-origin",
        "2024-01-01 00:00:00Z",
        input.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let q = sql_csv(lake.to_str().unwrap(), "select min(arrival_time) as t, min(date) as d from requests");
    assert_eq!(stdout(&q), "t,d\n2024-01-01T00:00:01Z,2024-01-01\n", "{}", stderr(&q));
}

/// (rows, Σ input, Σ output) per file, computed from the raw files without tapeout.
fn independent_sums(paths: &[PathBuf]) -> BTreeMap<String, (u64, i64, i64)> {
    let mut out = BTreeMap::new();
    for p in paths {
        let text = std::fs::read_to_string(p).unwrap();
        let mut acc = (0u64, 0i64, 0i64);
        if p.extension().is_some_and(|e| e == "jsonl") {
            for l in text.lines().filter(|l| !l.is_empty()) {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                acc = (
                    acc.0 + 1,
                    acc.1 + v["input_length"].as_i64().unwrap(),
                    acc.2 + v["output_length"].as_i64().unwrap(),
                );
            }
        } else {
            for l in text.lines().skip(1).filter(|l| !l.is_empty()) {
                let f: Vec<&str> = l.split(',').collect();
                acc = (acc.0 + 1, acc.1 + f[1].parse::<i64>().unwrap(), acc.2 + f[2].parse::<i64>().unwrap());
            }
        }
        out.insert(std::path::absolute(p).unwrap().display().to_string(), acc);
    }
    out
}

/// The real Azure LLM code and conversation traces and the Mooncake conversation trace.
fn request_traces(root: &Path) -> [PathBuf; 3] {
    [
        root.join("azure_llm_2023/AzureLLMInferenceTrace_code.csv"),
        root.join("azure_llm_2023/AzureLLMInferenceTrace_conv.csv"),
        root.join("mooncake/conversation_trace.jsonl"),
    ]
}

#[test]
fn real_traces_land_exactly_once_with_matching_sums() {
    let Some(root) = real_traces() else { return };
    let (_tmp, lake) = temp_lake();
    let lake_s = lake.to_str().unwrap();
    let [code, conv, moon] = request_traces(&root);
    let glob = root.join("azure_llm_2023/*.csv");
    let o = tapeout(&["ingest", "--lake", lake_s, "--json", glob.to_str().unwrap(), moon.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(json(&o)["rows"].as_u64(), Some(8_819 + 19_366 + 12_031));

    let q = sql_csv(
        lake_s,
        "select file, workload, count(*) as n, sum(input_tokens) as i, sum(output_tokens) as o from requests group by file, workload order by file",
    );
    let expected = independent_sums(&[code.clone(), conv.clone(), moon.clone()]);
    let mut got = BTreeMap::new();
    let mut workloads = BTreeMap::new();
    for line in stdout(&q).lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        got.insert(f[0].to_string(), (f[2].parse().unwrap(), f[3].parse().unwrap(), f[4].parse().unwrap()));
        workloads.insert(f[0].to_string(), f[1].to_string());
    }
    assert_eq!(got, expected);
    assert_eq!(expected[&std::path::absolute(&code).unwrap().display().to_string()].0, 8_819);
    assert_eq!(workloads[&std::path::absolute(&code).unwrap().display().to_string()], "code");
    assert_eq!(workloads[&std::path::absolute(&conv).unwrap().display().to_string()], "conversation");

    let again = tapeout(&["ingest", "--lake", lake_s, "--json", glob.to_str().unwrap(), moon.to_str().unwrap()]);
    assert_eq!((json(&again)["rows"].as_u64(), json(&again)["skipped"].as_u64()), (Some(0), Some(3)));
    let count = sql_csv(lake_s, "select count(*) from requests");
    assert_eq!(stdout(&count), "count(*)\n40216\n");
}

#[test]
fn real_azure_copy_with_three_corrupted_lines() {
    let Some(root) = real_traces() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(root.join("azure_llm_2023/AzureLLMInferenceTrace_code.csv")).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    // Lines 101, 4001 and 8000 (1-based; line 1 is the header).
    lines[100] = lines[100].replacen(',', ",-", 1);
    lines[4000] = lines[4000].replace(':', "#");
    lines[7999] = lines[7999].rsplit_once(',').unwrap().0.to_string();
    let copy = tmp.path().join("AzureLLMInferenceTrace_code_corrupted.csv");
    std::fs::write(&copy, lines.join("\n") + "\n").unwrap();
    let lake = tmp.path().join("lake");
    let o = tapeout(&["ingest", "--lake", lake.to_str().unwrap(), "--json", copy.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let s = json(&o);
    assert_eq!((s["rows"].as_u64(), s["quarantined"].as_u64()), (Some(8_816), Some(3)));
    let q = sql_csv(lake.to_str().unwrap(), "select line, field, reason from quarantine order by line");
    assert_eq!(
        stdout(&q),
        "line,field,reason\n101,ContextTokens,negative value\n4001,TIMESTAMP,unparseable timestamp\n8000,,\"expected 3 fields, found 2\"\n"
    );
}

#[test]
fn check_finds_leftovers_and_damage_and_repair_removes_leftovers() {
    let (_tmp, lake) = temp_lake();
    let lake_s = lake.to_str().unwrap();
    assert_eq!(tapeout(&["ingest", "--lake", lake_s, samples().to_str().unwrap()]).status.code(), Some(0));
    let ok = tapeout(&["check", "--lake", lake_s]);
    assert_eq!(ok.status.code(), Some(0), "{}", stdout(&ok));
    assert!(stdout(&ok).ends_with("manifest version 7, 7 inputs, 8 files, 248 rows; healthy\n"), "{}", stdout(&ok));

    let part = lake.join("requests/source=burstgpt/date=1970-01-01");
    let committed: Vec<PathBuf> = std::fs::read_dir(&part).unwrap().map(|e| e.unwrap().path()).collect();
    std::fs::copy(&committed[0], part.join("part-feedfeedfeedfeed-0000.parquet")).unwrap();
    std::fs::write(part.join(".part-feedfeedfeedfeed-0001.parquet.tmp"), b"half").unwrap();
    let bad = tapeout(&["check", "--lake", lake_s, "--json"]);
    assert_eq!(bad.status.code(), Some(1));
    let j = json(&bad);
    let kinds: Vec<&str> =
        j["report"]["problems"].as_array().unwrap().iter().map(|p| p["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["temp_file", "orphan"]);

    let fixed = tapeout(&["check", "--lake", lake_s, "--repair"]);
    assert_eq!(fixed.status.code(), Some(0), "{}", stdout(&fixed));
    assert_eq!(stdout(&fixed).matches("removed ").count(), 2);
    let count = sql_csv(lake_s, "select count(*) from requests");
    assert_eq!(stdout(&count), "count(*)\n248\n");

    // Damage to a committed file is found, not "repaired" away.
    let mut bytes = std::fs::read(&committed[0]).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&committed[0], &bytes).unwrap();
    let damaged = tapeout(&["check", "--lake", lake_s, "--repair"]);
    assert_eq!(damaged.status.code(), Some(1));
    assert!(stdout(&damaged).contains("checksum_mismatch"), "{}", stdout(&damaged));
}

/// Kernel/memcpy/memset events of a Kineto trace, counted with a plain JSON scan.
fn gpu_activity_events(path: &Path) -> u64 {
    let mut text = std::fs::read(path).unwrap();
    if path.extension().is_some_and(|e| e == "gz") {
        let raw = std::mem::take(&mut text);
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&raw[..]), &mut text).unwrap();
    }
    let doc: serde_json::Value = serde_json::from_slice(&text).unwrap();
    let cats = ["kernel", "gpu_memcpy", "gpu_memset", "Kernel", "Memcpy", "Memset"];
    doc["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["ph"] == "X" && e["cat"].as_str().is_some_and(|c| cats.contains(&c)))
        .count() as u64
}

#[test]
fn real_kineto_traces_land_one_row_per_gpu_activity() {
    let Some(root) = real_traces() else { return };
    let (_tmp, lake) = temp_lake();
    let lake_s = lake.to_str().unwrap();
    let inputs = [
        root.join("param_dlrm_8rank"),
        root.join("kineto_hta/amd_trace"),
        root.join("kineto_hta/mtia_inference_trace"),
        root.join("tracelens/h100/Qwen_Qwen1.5-0.5B-Chat__1016005.json.gz"),
    ];
    let args: Vec<&str> =
        ["ingest", "--lake", lake_s, "--json"].into_iter().chain(inputs.iter().map(|p| p.to_str().unwrap())).collect();
    let o = tapeout(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let s = json(&o);
    assert_eq!(s["inputs"].as_u64(), Some(11));
    let q = sql_csv(
        lake_s,
        "select file, workload, count(*) as n from kernels where activity <> 'sync' group by file, workload order by file",
    );
    let mut got = BTreeMap::new();
    for line in stdout(&q).lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        got.insert(f[0].to_string(), (f[1].to_string(), f[2].parse::<u64>().unwrap()));
    }
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(root.join("param_dlrm_8rank")).unwrap().map(|e| e.unwrap().path()).collect();
    files.push(root.join("kineto_hta/amd_trace/mi250_minitoy_train_ROCm6_2_kineto.json.gz"));
    files.push(root.join("tracelens/h100/Qwen_Qwen1.5-0.5B-Chat__1016005.json.gz"));
    for f in &files {
        let key = std::path::absolute(f).unwrap().display().to_string();
        let expected = gpu_activity_events(f);
        assert_eq!(got.get(&key).map(|g| g.1), Some(expected), "{key}");
    }
    let dlrm0 = std::path::absolute(root.join("param_dlrm_8rank/worker0_step_12.1694128201545.pt.trace.json")).unwrap();
    assert_eq!(got[&dlrm0.display().to_string()].0, "param_dlrm_8rank");
    // The MTIA trace has no GPU activity: it lands (ops, devices) with zero kernels, and says so.
    let mtia = s["details"].as_array().unwrap().iter().find(|d| d["path"].as_str().unwrap().contains("mtia")).unwrap();
    assert_eq!(mtia["status"], "ingested");
    assert!(mtia["notes"].as_array().unwrap().iter().any(|n| n.as_str().unwrap().contains("0 kernels")), "{mtia}");
    let ranks = sql_csv(lake_s, "select count(distinct rank) from kernels where workload = 'param_dlrm_8rank'");
    assert_eq!(stdout(&ranks), "count(DISTINCT kernels.rank)\n8\n");
    // One `traces` row per trace file; `collectives` holds the NCCL kernels, counted here from
    // the raw files by name.
    let traces = sql_csv(lake_s, "select count(*), sum(kernels + memcpys + memsets) from traces");
    let gpu_rows: u64 = got.values().map(|g| g.1).sum();
    assert_eq!(stdout(&traces).lines().nth(1).unwrap(), format!("11,{gpu_rows}"));
    let nccl: u64 = std::fs::read_dir(root.join("param_dlrm_8rank"))
        .unwrap()
        .map(|e| {
            let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(e.unwrap().path()).unwrap()).unwrap();
            doc["traceEvents"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["cat"] == "kernel" && e["name"].as_str().is_some_and(|n| n.starts_with("nccl")))
                .count() as u64
        })
        .sum();
    let coll = sql_csv(lake_s, "select count(*) from collectives where workload = 'param_dlrm_8rank'");
    assert_eq!(stdout(&coll), format!("count(*)\n{nccl}\n"));
    assert_eq!(nccl, 64);
}

/// A small deterministic generator (no dependency needed for 20 random delays).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

/// Every `*.parquet` file under `dir` is a complete Parquet file (footer readable).
fn every_parquet_file_is_complete(dir: &Path) -> usize {
    use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};
    let mut n = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                let r = SerializedFileReader::new(std::fs::File::open(&p).unwrap());
                assert!(
                    r.is_ok_and(|r| r.metadata().file_metadata().num_rows() > 0),
                    "partial file visible: {}",
                    p.display()
                );
                n += 1;
            }
        }
    }
    n
}

#[test]
fn sigkill_at_random_moments_then_rerun_lands_every_row_exactly_once() {
    const FILES: usize = 6;
    const ROWS: usize = 8_000;
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("input");
    std::fs::create_dir(&input).unwrap();
    for f in 0..FILES {
        let mut s = String::from("TIMESTAMP,ContextTokens,GeneratedTokens\n");
        for i in 0..ROWS {
            let t = f * 100_000 + i;
            s.push_str(&format!(
                "2023-11-{:02} {:02}:{:02}:{:02}.{:07},{},{}\n",
                1 + t / 86_400 % 28,
                t / 3600 % 24,
                t / 60 % 60,
                t % 60,
                f,
                10 + i,
                1 + f
            ));
        }
        std::fs::write(input.join(format!("part{f}_code.csv")), s).unwrap();
    }
    let total = FILES * ROWS;
    // How long an uninterrupted run takes, to spread the kills over it.
    let probe = tmp.path().join("probe");
    let started = std::time::Instant::now();
    let o = tapeout(&["ingest", "--lake", probe.to_str().unwrap(), input.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    let full_ms = started.elapsed().as_millis().max(20) as u64;

    let mut rng = Lcg(20_261_125);
    let mut interrupted = 0;
    for trial in 0..20 {
        let lake = tmp.path().join(format!("lake{trial}"));
        let lake_s = lake.to_str().unwrap();
        let mut child = bin()
            .args(["ingest", "--quiet", "--lake", lake_s, input.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(rng.next() % full_ms));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        if lake.exists() {
            // Whatever the kill left: no partial file under a *.parquet name, and readers see
            // only whole inputs.
            every_parquet_file_is_complete(&lake);
            let q = sql_csv(lake_s, "select count(*) from requests");
            let seen: usize = stdout(&q).lines().nth(1).unwrap().parse().unwrap();
            assert_eq!(seen % ROWS, 0, "trial {trial}: a reader saw part of an input ({seen} rows)");
            interrupted += usize::from(seen < total);
        } else {
            interrupted += 1;
        }
        let o = tapeout(&["ingest", "--lake", lake_s, "--json", input.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(0), "trial {trial}: {}", stderr(&o));
        let q = sql_csv(
            lake_s,
            "select count(*) as n, count(distinct concat(file, ':', cast(line as varchar))) as d, sum(input_tokens) as i from requests",
        );
        let expected_sum: usize = FILES * (ROWS * 10 + ROWS * (ROWS - 1) / 2);
        assert_eq!(stdout(&q), format!("n,d,i\n{total},{total},{expected_sum}\n"), "trial {trial}");
        let check = tapeout(&["check", "--lake", lake_s]);
        assert_eq!(check.status.code(), Some(0), "trial {trial}: {}", stdout(&check));
        assert_eq!(every_parquet_file_is_complete(&lake), FILES);
    }
    eprintln!("{interrupted} of 20 kills landed before the run completed (uninterrupted run: {full_ms} ms)");
    // The kills are spread over the run's measured length, so most must interrupt it.
    assert!(interrupted >= 5, "only {interrupted} kills interrupted a run");
}

#[test]
fn forget_check_and_repair_on_a_real_trace_lake() {
    let Some(root) = real_traces() else { return };
    let [code, conv, moon] = request_traces(&root);
    let (_tmp, lake) = temp_lake();
    let lake_s = lake.to_str().unwrap();
    let o =
        tapeout(&["ingest", "--lake", lake_s, code.to_str().unwrap(), conv.to_str().unwrap(), moon.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    let count = || {
        let q = sql_csv(lake_s, "select count(*) from requests");
        stdout(&q).lines().nth(1).unwrap().parse::<u64>().unwrap()
    };
    assert_eq!(count(), 40_216);
    let ok = tapeout(&["check", "--lake", lake_s]);
    assert!(stdout(&ok).ends_with("manifest version 3, 3 inputs, 3 files, 40216 rows; healthy\n"), "{}", stdout(&ok));

    // forget: the conversation trace's 19,366 rows leave in one commit, its file is deleted.
    let f = tapeout(&["forget", "--lake", lake_s, "--json", conv.to_str().unwrap()]);
    assert_eq!(f.status.code(), Some(0), "{}", stderr(&f));
    let j = json(&f);
    assert_eq!(
        (j["rows"].as_u64(), j["files"].as_u64(), j["manifest_version"].as_u64()),
        (Some(19_366), Some(1), Some(4))
    );
    assert_eq!(count(), 40_216 - 19_366);
    assert_eq!(tapeout(&["check", "--lake", lake_s]).status.code(), Some(0));
    let none = tapeout(&["forget", "--lake", lake_s, conv.to_str().unwrap()]);
    assert_eq!(none.status.code(), Some(1));
    assert!(stderr(&none).contains("no ingested input matches"), "{}", stderr(&none));
    // Re-ingesting brings it back exactly.
    let again = json(&tapeout(&["ingest", "--lake", lake_s, "--json", conv.to_str().unwrap()]));
    assert_eq!(again["rows"].as_u64(), Some(19_366));
    assert_eq!(count(), 40_216);

    // check --repair: an interrupted run's leftovers next to real data are removed, rows unchanged.
    let part = lake.join("requests/source=mooncake/date=1970-01-01");
    let committed = std::fs::read_dir(&part).unwrap().next().unwrap().unwrap().path();
    std::fs::copy(&committed, part.join("part-0123456789abcdef-0000.parquet")).unwrap();
    std::fs::write(part.join(".part-0123456789abcdef-0001.parquet.tmp"), b"PAR1").unwrap();
    assert_eq!(tapeout(&["check", "--lake", lake_s]).status.code(), Some(1));
    let r = tapeout(&["check", "--lake", lake_s, "--repair"]);
    assert_eq!(r.status.code(), Some(0), "{}", stdout(&r));
    assert_eq!(stdout(&r).matches("removed ").count(), 2);
    assert_eq!(count(), 40_216);
}

#[test]
fn a_query_over_the_memory_limit_fails_clearly() {
    let (_tmp, lake) = temp_lake();
    let lake_s = lake.to_str().unwrap();
    assert_eq!(tapeout(&["ingest", "--lake", lake_s, samples().to_str().unwrap()]).status.code(), Some(0));
    let q = "select cardinality(array_agg(input_tokens)) as n from requests";
    let ok = sql_csv(lake_s, q);
    assert_eq!(stdout(&ok), "n\n248\n");
    let capped = tapeout(&["sql", "--lake", lake_s, "--format", "csv", "--memory-limit", "1K", q]);
    assert_eq!(capped.status.code(), Some(1));
    assert!(stderr(&capped).starts_with("error: Resources exhausted"), "{}", stderr(&capped));
    let bad = tapeout(&["sql", "--lake", lake_s, "--memory-limit", "lots", q]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr(&bad).contains("invalid value 'lots' for '--memory-limit"), "{}", stderr(&bad));
}

/// Two ingests into one lake at once: the lock serializes them (the second waits), both
/// complete, every row lands once, the manifest is healthy; with `--no-wait` the loser gets a
/// clear "locked" error and commits nothing.
#[test]
fn concurrent_ingests_serialize_on_the_lock() {
    let (_tmp, lake) = temp_lake();
    let l = lake.to_str().unwrap().to_string();
    let s = samples();
    let a =
        [s.join("AzureLLMInferenceTrace_code.csv"), s.join("BurstGPT_1.csv"), s.join("mooncake_conversation.jsonl")];
    let b = [s.join("AzureLLMInferenceTrace_conv_1week.csv"), s.join("BurstGPT_v1.1_sessions.csv")];
    let spawn = |files: &[PathBuf]| {
        let mut c = bin();
        c.args(["ingest", "-q", "--json", "--lake", &l]).args(files).env_remove("TAPEOUT_LAKE");
        c.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap()
    };
    for _ in 0..3 {
        let (pa, pb) = (spawn(&a), spawn(&b));
        let (oa, ob) = (pa.wait_with_output().unwrap(), pb.wait_with_output().unwrap());
        assert_eq!((oa.status.code(), ob.status.code()), (Some(0), Some(0)), "{}{}", stderr(&oa), stderr(&ob));
    }
    // 48 + 36 + 40 and 40 + 30 rows, once each however often and in whichever order they ran.
    let o = sql_csv(&l, "select count(*) from requests");
    assert_eq!(stdout(&o).lines().nth(1), Some("194"));
    let c = tapeout(&["check", "--lake", &l]);
    assert!(c.status.success(), "{}", stdout(&c));

    // --no-wait while another writer holds the lock: a clear error, nothing committed.
    let holder = tapeout_lake::lock::LakeLock::acquire(&lake, false, |_| {}).unwrap();
    let o =
        tapeout(&["ingest", "--no-wait", "--lake", &l, s.join("AzureMultimodalTrace_2025.csv.zst").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("is locked by another tapeout process"), "{}", stderr(&o));
    drop(holder);
    let o = sql_csv(&l, "select count(*) from requests");
    assert_eq!(stdout(&o).lines().nth(1), Some("194"));
}

/// `tapeout sql` while an ingest commits one input after another: every query sees whole
/// inputs only (each file's full row count or nothing: one manifest version, never a mix), and
/// the versions it sees never go backwards.
#[test]
fn queries_during_an_ingest_see_whole_inputs_only() {
    let (tmp, lake) = temp_lake();
    let l = lake.to_str().unwrap().to_string();
    let mut inputs = Vec::new();
    for seed in 1..=6u64 {
        let out = tmp.path().join(format!("gen{seed}_code.csv"));
        let rows = (40_000 + seed * 1000).to_string();
        let g = tapeout(&[
            "gen",
            "requests",
            "--profile",
            "code",
            "--rows",
            &rows,
            "--seed",
            &seed.to_string(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(g.status.success(), "{}", stderr(&g));
        inputs.push(out);
    }
    let want: BTreeMap<String, u64> =
        (0..inputs.len()).map(|i| (format!("gen{}_code.csv", i + 1), 41_000 + i as u64 * 1000)).collect();
    let mut ingest = bin();
    ingest.args(["ingest", "-q", "--jobs", "1", "--lake", &l]).args(&inputs).env_remove("TAPEOUT_LAKE");
    let mut child = ingest.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
    let q = "select file, count(*) as n from requests group by file order by file";
    let (mut seen, mut last_total, mut queries) = (Vec::new(), 0u64, 0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let done = child.try_wait().unwrap().is_some();
        if lake.join("_manifest/00000000000000000001.json").exists() {
            let o = sql_csv(&l, q);
            assert!(o.status.success(), "{}", stderr(&o));
            queries += 1;
            let mut total = 0;
            for line in stdout(&o).lines().skip(1) {
                let (file, n) = line.rsplit_once(',').unwrap();
                let n: u64 = n.parse().unwrap();
                let file = file.rsplit('/').next().unwrap();
                assert_eq!(want.get(file), Some(&n), "a query saw part of {file}: {n} rows");
                total += n;
            }
            assert!(total >= last_total, "a later query saw fewer rows ({total} < {last_total})");
            last_total = total;
            seen.push(total);
        }
        if done || std::time::Instant::now() > deadline {
            break;
        }
    }
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert!(queries > 0);
    let o = sql_csv(&l, "select count(*) from requests");
    assert_eq!(stdout(&o).lines().nth(1), Some(want.values().sum::<u64>().to_string().as_str()));
    eprintln!("{queries} queries during the ingest saw row totals {seen:?}");
}

/// `compact` on a real-trace lake (the 8-rank DLRM set and the HTA traces, each trace one file
/// per table): far fewer files, the same rows per table and the same sums, `check` healthy;
/// `forget` of one trace afterwards removes exactly its rows from the merged files.
#[test]
fn compact_on_a_real_trace_lake_keeps_every_row() {
    let Some(root) = real_traces() else { return };
    let (_tmp, lake) = temp_lake();
    let l = lake.to_str().unwrap();
    let dlrm = root.join("param_dlrm_8rank");
    let o = tapeout(&[
        "ingest",
        "-q",
        "--lake",
        l,
        dlrm.to_str().unwrap(),
        root.join("kineto_hta").to_str().unwrap(),
        root.join("azure_llm_2023").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let figures = || {
        let q = "select 'kernels', count(*), sum(dur_ns) from kernels union all \
                 select 'ops', count(*), sum(dur_ns) from ops union all \
                 select 'traces', count(*), sum(events) from traces union all \
                 select 'devices', count(*), 0 from devices union all \
                 select 'collectives', count(*), sum(dur_ns) from collectives union all \
                 select 'requests', count(*), sum(input_tokens) from requests order by 1";
        stdout(&sql_csv(l, q))
    };
    let files = |r: &serde_json::Value| r["report"]["files"].as_u64().unwrap();
    let before = figures();
    let c0 = json(&tapeout(&["check", "--lake", l, "--json"]));
    fn parquet_dirs(dir: &Path, out: &mut std::collections::BTreeSet<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() && !p.ends_with("_mined") {
                parquet_dirs(&p, out);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                out.insert(dir.to_path_buf());
            }
        }
    }
    let mut partition_dirs = std::collections::BTreeSet::new();
    parquet_dirs(&lake, &mut partition_dirs);
    assert_eq!(c0["healthy"], true);

    let dry = json(&tapeout(&["compact", "--lake", l, "--dry-run", "--json"]));
    assert_eq!(dry["files_before"].as_u64(), Some(files(&c0)));
    assert_eq!(json(&tapeout(&["check", "--lake", l, "--json"]))["report"]["files"], c0["report"]["files"]);
    let r = json(&tapeout(&["compact", "--lake", l, "--json"]));
    assert_eq!(r["files_after"], dry["files_after"], "the dry run plans what the run does");
    assert_eq!(r["rows"], c0["report"]["rows"]);
    let c1 = json(&tapeout(&["check", "--lake", l, "--json"]));
    assert_eq!(c1["healthy"], true, "{c1}");
    assert_eq!(
        (c1["report"]["rows"].clone(), files(&c1)),
        (c0["report"]["rows"].clone(), r["files_after"].as_u64().unwrap())
    );
    // Every file of these traces is small: each partition directory ends with one file.
    assert_eq!(files(&c1), partition_dirs.len() as u64, "{} files -> {}", files(&c0), files(&c1));
    assert!(files(&c1) < files(&c0));
    assert_eq!(figures(), before);

    // forget one rank of the DLRM set: its rows, per table, leave the merged files.
    let rank3 = std::fs::read_dir(&dlrm)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("worker3_"))
        .unwrap();
    let per_table = |extra: &str| {
        let q = format!(
            "select (select count(*) from kernels {extra}) as k, (select count(*) from ops {extra}) as o, \
             (select count(*) from collectives {extra}) as c"
        );
        stdout(&sql_csv(l, &q)).lines().nth(1).unwrap().to_string()
    };
    let name = rank3.file_name().unwrap().to_string_lossy().to_string();
    let all = per_table("");
    let others = per_table(&format!("where file not like '%{name}'"));
    let f = tapeout(&["forget", "--lake", l, rank3.to_str().unwrap()]);
    assert_eq!(f.status.code(), Some(0), "{}", stderr(&f));
    assert_ne!(all, others);
    assert_eq!(per_table(""), others);
    assert_eq!(json(&tapeout(&["check", "--lake", l, "--json"]))["healthy"], true);
    // And it lands again exactly.
    assert_eq!(tapeout(&["ingest", "-q", "--lake", l, rank3.to_str().unwrap()]).status.code(), Some(0));
    assert_eq!(per_table(""), all);
    assert_eq!(figures(), before);
}

/// `ingest --memory-limit`: a generous cap changes nothing; one below what the process itself
/// occupies rejects every input by name with the limit in the message, and commits nothing.
#[test]
fn ingest_honours_the_memory_limit() {
    let (_tmp, lake) = temp_lake();
    let l = lake.to_str().unwrap();
    let (requests, kineto) = (samples(), samples().join("../kineto/train_2rank"));
    let inputs = [requests.to_str().unwrap(), kineto.to_str().unwrap()];
    let tight = tapeout(&["ingest", "--json", "--memory-limit", "4M", "--lake", l, inputs[0], inputs[1]]);
    assert_eq!(tight.status.code(), Some(1), "{}", stderr(&tight));
    let s = json(&tight);
    assert_eq!((s["inputs"].as_u64(), s["rejected"].as_u64(), s["rows"].as_u64()), (Some(9), Some(9), Some(0)));
    for d in s["details"].as_array().unwrap() {
        let reason = d["reason"].as_str().unwrap();
        assert!(reason.contains("memory limit exceeded") && reason.contains("over --memory-limit 4 MiB"), "{d}");
    }
    let ok = json(&tapeout(&["ingest", "--json", "--memory-limit", "2G", "--lake", l, inputs[0], inputs[1]]));
    assert_eq!((ok["rows"].as_u64(), ok["rejected"].as_u64()), (Some(248 + 362), Some(0)), "{ok}");
    let bad = tapeout(&["ingest", "--memory-limit", "lots", "--lake", l, inputs[0]]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr(&bad).contains("invalid value 'lots' for '--memory-limit"), "{}", stderr(&bad));
}
