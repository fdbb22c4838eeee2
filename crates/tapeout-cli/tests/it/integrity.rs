//! Issue 20, points 2 and 3: reads verify the snapshot (commits and data files), `check`
//! reports damage precisely, `check --repair` never deletes what a missing commit may name, and
//! tapeout refuses folders that are not lakes and never deletes files it did not write.

use std::path::{Path, PathBuf};

use crate::common::*;

/// Rows of the sample request traces.
const SAMPLE_ROWS: u64 = 248;

fn commit_file(lake: &Path, v: u64) -> PathBuf {
    lake.join(format!("_manifest/{v:020}.json"))
}

/// A lake of the sample request traces (7 commits, 8 Parquet files, 248 rows).
fn sample_lake() -> (tempfile::TempDir, PathBuf) {
    let (tmp, lake) = temp_lake();
    let o =
        tapeout(&["ingest", "--lake", lake.to_str().unwrap(), repo().join("sample-traces/requests").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(parquet_files(&lake).len(), 8);
    (tmp, lake)
}

fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else if e.path().extension().is_some_and(|x| x == "parquet") {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

/// Every file and folder under `dir`, relative.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            out.push(e.path().strip_prefix(dir).unwrap().to_string_lossy().into_owned());
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            }
        }
    }
    out.sort();
    out
}

/// `requests` rows a commit adds.
fn commit_request_rows(lake: &Path, v: u64) -> u64 {
    let c: serde_json::Value = serde_json::from_slice(&std::fs::read(commit_file(lake, v)).unwrap()).unwrap();
    c["add"].as_array().unwrap().iter().map(|i| i["tables"]["requests"].as_u64().unwrap_or(0)).sum()
}

fn count(lake: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["sql", "--lake", lake.to_str().unwrap(), "--format", "csv"];
    args.extend_from_slice(extra);
    args.push("select count(*) from requests");
    tapeout(&args)
}

#[test]
fn a_missing_commit_is_refused_reported_and_never_repaired_away() {
    let (_tmp, lake) = sample_lake();
    let lost = commit_request_rows(&lake, 2);
    assert!(lost > 0);
    std::fs::remove_file(commit_file(&lake, 2)).unwrap();
    let l = lake.to_str().unwrap();

    let o = count(&lake, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(stdout(&o), "");
    assert!(
        stderr(&o).contains("the lake is incomplete: commit 2 (_manifest/00000000000000000002.json) is missing."),
        "{}",
        text(&o)
    );

    let o = count(&lake, &["--allow-partial"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(stdout(&o), format!("count(*)\n{}\n", SAMPLE_ROWS - lost));
    assert!(
        stderr(&o).contains("PARTIAL READ (--allow-partial): version 7 is incomplete, answers omit what is missing: commit 2 (_manifest/00000000000000000002.json) is missing"),
        "{}",
        text(&o)
    );

    let o = tapeout(&["check", "--lake", l]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        stdout(&o).contains("missing_commit     _manifest/00000000000000000002.json: commit 2 is missing"),
        "{}",
        text(&o)
    );
    assert!(stdout(&o).contains("a missing or damaged commit may name it (repair keeps it)"), "{}", text(&o));

    let before = parquet_files(&lake);
    let o = tapeout(&["check", "--lake", l, "--repair"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(!stdout(&o).contains("removed"), "{}", text(&o));
    assert_eq!(parquet_files(&lake), before);
    assert_eq!(before.len(), 8);

    // A writer refuses too: it would otherwise remove the files commit 2 names.
    let o = tapeout(&["ingest", "--lake", l, repo().join("sample-traces/requests").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(parquet_files(&lake), before);
}

#[test]
fn a_missing_data_file_is_refused_unless_partial() {
    let (_tmp, lake) = sample_lake();
    let l = lake.to_str().unwrap();
    let c: serde_json::Value = serde_json::from_slice(&std::fs::read(commit_file(&lake, 1)).unwrap()).unwrap();
    let out = c["add"][0]["outputs"].as_array().unwrap().iter().find(|o| o["table"] == "requests").unwrap().clone();
    let rel = out["path"].as_str().unwrap();
    let rows = out["rows"].as_u64().unwrap();
    std::fs::remove_file(lake.join(rel)).unwrap();

    let o = count(&lake, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(stderr(&o).contains(&format!("the lake is incomplete: data file {rel} is missing.")), "{}", text(&o));

    let o = tapeout(&["mine", "--lake", l]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(stderr(&o).contains(&format!("data file {rel} is missing")), "{}", text(&o));
    assert!(!lake.join("_mined").exists());

    let o = count(&lake, &["--allow-partial"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(stdout(&o), format!("count(*)\n{}\n", SAMPLE_ROWS - rows));
    assert!(stderr(&o).contains(&format!("PARTIAL READ (--allow-partial): version 7 is incomplete, answers omit what is missing: data file {rel} is missing")), "{}", text(&o));

    let o = tapeout(&["mine", "--lake", l, "--allow-partial"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(stderr(&o).contains("PARTIAL READ"), "{}", text(&o));
    // Results of a partial read say so, and the recommender refuses them even when partial
    // reads are allowed: its figures would look whole.
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(lake.join("_mined/request_token_stats/latest.json")).unwrap()).unwrap();
    assert_eq!(meta["partial"], true);
    let out_dir = lake.parent().unwrap().join("rec");
    let o = tapeout(&["recommend", "--lake", l, "--allow-partial", "--out", out_dir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(stderr(&o).contains("request_token_stats (mined from a partial read, --allow-partial)"), "{}", text(&o));
    assert!(!out_dir.join("recommendations.json").exists());

    // A committed file of another size is shown to no query, and named.
    let (_tmp2, lake2) = sample_lake();
    let victim = parquet_files(&lake2).into_iter().find(|p| p.to_string_lossy().contains("/requests/")).unwrap();
    let len = std::fs::metadata(&victim).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&victim).unwrap().set_len(len - 1).unwrap();
    let o = count(&lake2, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(stderr(&o).contains(&format!("has {} bytes, its commit records {len}", len - 1)), "{}", text(&o));
}

#[test]
fn a_flipped_byte_in_a_commit_is_named_by_check_and_sql() {
    let (_tmp, lake) = sample_lake();
    let l = lake.to_str().unwrap();
    let p = commit_file(&lake, 3);
    let mut bytes = std::fs::read(&p).unwrap();
    // Inside the input's path: still valid JSON, so only the checksum can tell.
    let at = bytes.windows(8).position(|w| w == b"\"path\": ").unwrap() + 10;
    bytes[at] ^= 1;
    std::fs::write(&p, &bytes).unwrap();

    let o = tapeout(&["check", "--lake", l]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        stdout(&o).contains("damaged_commit     _manifest/00000000000000000003.json: commit 3 is damaged: checksum mismatch: its bytes hash to blake3:"),
        "{}",
        text(&o)
    );
    let o = count(&lake, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        stderr(&o).contains(
            "the lake is incomplete: commit 3 (_manifest/00000000000000000003.json) is damaged: checksum mismatch"
        ),
        "{}",
        text(&o)
    );
    let before = parquet_files(&lake);
    let o = tapeout(&["check", "--lake", l, "--repair"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(parquet_files(&lake), before);

    // Damage that breaks the JSON is named the same way, not as a parse error of some file.
    let mut bytes = std::fs::read(&p).unwrap();
    bytes[0] = b'[';
    std::fs::write(&p, &bytes).unwrap();
    let o = count(&lake, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        stderr(&o).contains("commit 3 (_manifest/00000000000000000003.json) is damaged: checksum mismatch"),
        "{}",
        text(&o)
    );
}

#[test]
fn a_folder_that_is_not_a_lake_is_refused_and_left_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mine");
    std::fs::create_dir_all(dir.join("requests")).unwrap();
    std::fs::write(dir.join("requests/mine.parquet"), b"PAR1 the user's own file").unwrap();
    let d = dir.to_str().unwrap();
    let before = tree(&dir);
    let sample = repo().join("sample-traces/requests");
    for args in [
        vec!["sql", "--lake", d, "select count(*) from requests"],
        vec!["mine", "--lake", d],
        vec!["check", "--lake", d],
        vec!["check", "--lake", d, "--repair"],
        vec!["ingest", "--lake", d, sample.to_str().unwrap()],
    ] {
        let o = tapeout(&args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", text(&o));
        assert!(
            stderr(&o).contains(
                ": not a tapeout lake: it holds requests but neither _tapeout_lake.json nor a tapeout _manifest/"
            ),
            "{args:?}: {}",
            text(&o)
        );
        assert_eq!(tree(&dir), before, "{args:?} wrote into the folder");
    }
}

#[test]
fn a_foreign_file_in_a_lake_survives_ingest_and_repair_and_is_reported() {
    let (_tmp, lake) = sample_lake();
    let l = lake.to_str().unwrap();
    let foreign = lake.join("requests/mine.parquet");
    std::fs::write(&foreign, b"PAR1 the user's own file").unwrap();
    let o = tapeout(&["ingest", "--lake", l, repo().join("sample-traces/requests").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(stderr(&o).contains("not a file tapeout writes: left alone file=requests/mine.parquet"), "{}", text(&o));
    assert!(foreign.exists());
    let o = tapeout(&["check", "--lake", l, "--repair"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        stdout(&o).contains("foreign            requests/mine.parquet: not a file tapeout writes; left alone"),
        "{}",
        text(&o)
    );
    assert!(foreign.exists());
    // Queries never see it.
    assert_eq!(stdout(&count(&lake, &[])), format!("count(*)\n{SAMPLE_ROWS}\n"));
}

#[test]
fn a_lake_made_before_markers_and_checksums_is_upgraded_once() {
    let (_tmp, lake) = sample_lake();
    let l = lake.to_str().unwrap();
    // Make it look like a lake of an earlier tapeout: no marker, commits without checksums.
    std::fs::remove_file(lake.join("_tapeout_lake.json")).unwrap();
    for v in 1..=7 {
        let p = commit_file(&lake, v);
        let text = std::fs::read_to_string(&p).unwrap();
        let at = text.rfind(",\n  \"checksum\": \"blake3:").unwrap();
        std::fs::write(&p, format!("{}\n}}", &text[..at])).unwrap();
    }
    let o = count(&lake, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(stdout(&o), format!("count(*)\n{SAMPLE_ROWS}\n"));
    assert!(
        stderr(&o)
            .contains(&format!("{l}: a lake made before lake markers; upgraded: wrote _tapeout_lake.json (format 1)")),
        "{}",
        text(&o)
    );
    let marker: serde_json::Value =
        serde_json::from_slice(&std::fs::read(lake.join("_tapeout_lake.json")).unwrap()).unwrap();
    assert_eq!(marker["format"], 1);
    assert_eq!(marker["upgraded"], true);
    let o = count(&lake, &[]);
    assert_eq!(stderr(&o), "", "upgraded twice");
    let o = tapeout(&["check", "--lake", l]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

/// Issue 20, point 1, through the CLI: a live log caught mid-line (its half line pending, said
/// in the summary and `--json`), completed, then truncated in place (replaced by default,
/// refused with `--on-change refuse`, exit 1).
#[test]
fn live_logs_land_each_record_once_and_changed_files_follow_on_change() {
    let (tmp, lake) = temp_lake();
    let lake_s = lake.to_str().unwrap();
    let sample =
        std::fs::read_to_string(repo().join("sample-traces/requests/AzureLLMInferenceTrace_code.csv")).unwrap();
    let lines: Vec<&str> = sample.lines().collect();
    let log = tmp.path().join("live_code.csv");
    let log_s = log.to_str().unwrap();
    let upto = |n: usize| lines[..n].iter().map(|l| format!("{l}\n")).collect::<String>();
    std::fs::write(&log, upto(3)).unwrap(); // header + 2 records
    assert_eq!(json(&tapeout(&["ingest", "--lake", lake_s, "--json", log_s]))["rows"], 2);
    // The writer is half-way through record 3: "…,10" of "…,1038".
    let half = &lines[3][..lines[3].len() - 2];
    std::fs::write(&log, upto(3) + half).unwrap();
    let o = tapeout(&["ingest", "--lake", lake_s, "--json", log_s]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let s = json(&o);
    assert_eq!((s["rows"].as_u64(), s["pending"].as_u64()), (Some(0), Some(1)), "{s}");
    assert_eq!(s["details"][0]["status"], "pending");
    assert_eq!(s["details"][0]["pending"]["bytes"].as_u64(), Some(half.len() as u64));
    let human = tapeout(&["ingest", "--lake", lake_s, log_s]);
    assert!(
        stderr(&human).contains("pending   ") && stdout(&human).contains("1 with a last line pending"),
        "{}",
        text(&human)
    );
    // Completed, with two more records: 3 appended, each record once.
    std::fs::write(&log, upto(6)).unwrap();
    assert_eq!(json(&tapeout(&["ingest", "--lake", lake_s, "--json", log_s]))["rows"], 3);
    let sums =
        |lake: &str| stdout(&sql_csv(lake, "select count(*), sum(input_tokens), sum(output_tokens) from requests"));
    let expect = |n: usize| {
        let recs: Vec<Vec<i64>> =
            lines[1..n].iter().map(|l| l.split(',').skip(1).map(|v| v.parse().unwrap()).collect()).collect();
        format!(
            "count(*),sum(requests.input_tokens),sum(requests.output_tokens)\n{},{},{}\n",
            recs.len(),
            recs.iter().map(|r| r[0]).sum::<i64>(),
            recs.iter().map(|r| r[1]).sum::<i64>()
        )
    };
    assert_eq!(sums(lake_s), expect(6));
    // Truncated in place to its first 2 records: refused on request (the lake unchanged)...
    std::fs::write(&log, upto(3)).unwrap();
    let o = tapeout(&["ingest", "--lake", lake_s, "--on-change", "refuse", log_s]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(stderr(&o).contains("changed since it was ingested"), "{}", text(&o));
    assert_eq!(sums(lake_s), expect(6));
    // ...and by default replaced: 2 rows for the 2 lines the file holds, not 7.
    let o = tapeout(&["ingest", "--lake", lake_s, "--json", log_s]);
    let s = json(&o);
    assert_eq!(
        (s["details"][0]["status"].as_str(), s["details"][0]["replaced_because"].as_str()),
        (Some("replaced"), Some("path_changed"))
    );
    assert_eq!(sums(lake_s), expect(3));
    assert!(stdout(&tapeout(&["check", "--lake", lake_s])).contains("healthy"));
}
