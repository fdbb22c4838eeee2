//! `compact`: small files of a partition merge into one, rows and values unchanged; the merged
//! file is shared by its inputs, and `forget` and a replacing (grown) input still remove exactly
//! one input's rows from it. Expected values come from the generated input text.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use tapeout_lake::compact::{CompactOptions, compact};
use tapeout_lake::repair::{check, forget};
use tapeout_lake::{IngestOptions, IngestSummary, ingest, load_snapshot};

fn run(lake: &Path, inputs: &[PathBuf]) -> IngestSummary {
    run_with(lake, inputs, IngestOptions::default())
}

fn run_with(lake: &Path, inputs: &[PathBuf], opts: IngestOptions) -> IngestSummary {
    let args: Vec<String> = inputs.iter().map(|p| p.display().to_string()).collect();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(ingest(lake, &args, opts)).unwrap()
}

/// An Azure 2023 code trace: `rows` records on 2023-11-16 from second `start`, input tokens
/// `base + i`.
fn azure_csv(rows: usize, start: usize, base: i64) -> String {
    let mut s = String::from("TIMESTAMP,ContextTokens,GeneratedTokens\n");
    for i in 0..rows {
        let t = start + i;
        s.push_str(&format!(
            "2023-11-16 {:02}:{:02}:{:02}.5000000,{},{}\n",
            t / 3600 % 24,
            t / 60 % 60,
            t % 60,
            base + i as i64,
            1 + i % 5
        ));
    }
    s
}

/// (file, line) → input_tokens over the lake's `requests` files, each data file read once.
fn rows_by_file_line(lake: &Path) -> BTreeMap<(String, i64), i64> {
    let snap = load_snapshot(lake, None).unwrap();
    let mut out = BTreeMap::new();
    for f in snap.data_files().iter().filter(|f| f.table == "requests") {
        let reader =
            ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(lake.join(&f.path)).unwrap()).unwrap().build();
        for b in reader.unwrap() {
            let b = b.unwrap();
            let file = b.column_by_name("file").unwrap().as_string::<i32>().clone();
            let line = b.column_by_name("line").unwrap().as_primitive::<Int64Type>().clone();
            let tokens = b.column_by_name("input_tokens").unwrap().as_primitive::<Int64Type>().clone();
            for i in 0..b.num_rows() {
                let key = (file.value(i).rsplit('/').next().unwrap().to_string(), line.value(i));
                assert!(out.insert(key.clone(), tokens.value(i)).is_none(), "row {key:?} is in the lake twice");
            }
        }
    }
    out
}

fn expected(files: &[(&str, usize, i64)]) -> BTreeMap<(String, i64), i64> {
    let mut m = BTreeMap::new();
    for (name, rows, base) in files {
        for i in 0..*rows {
            m.insert((name.to_string(), i as i64 + 2), base + i as i64);
        }
    }
    m
}

fn parquet_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".parquet"))
        .collect();
    v.sort();
    v
}

fn small() -> CompactOptions {
    CompactOptions { small_file_bytes: 1 << 20, target_file_bytes: 64 << 20, ..CompactOptions::default() }
}

#[test]
fn compact_merges_small_files_and_forget_still_removes_one_input() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = tmp.path().join("lake");
    let specs =
        [("a_code.csv", 30, 1000), ("b_code.csv", 20, 2000), ("c_code.csv", 40, 3000), ("d_code.csv", 10, 4000)];
    let paths: Vec<PathBuf> = specs
        .iter()
        .enumerate()
        .map(|(k, (name, rows, base))| {
            let p = tmp.path().join(name);
            std::fs::write(&p, azure_csv(*rows, k * 100, *base)).unwrap();
            p
        })
        .collect();
    assert_eq!(run(&lake, &paths).rows, 100);
    let part = lake.join("requests/source=azure_llm/date=2023-11-16");
    assert_eq!(parquet_files(&part).len(), 4);
    let before = rows_by_file_line(&lake);
    assert_eq!(before, expected(&specs));

    // A dry run plans one merge and changes nothing.
    let dry = compact(&lake, &CompactOptions { dry_run: true, ..small() }).unwrap();
    assert_eq!((dry.files_before, dry.files_after, dry.merged.len(), dry.manifest_version), (4, 1, 1, 4));
    assert_eq!(parquet_files(&part).len(), 4);

    let r = compact(&lake, &small()).unwrap();
    assert_eq!((r.files_before, r.files_after, r.rows, r.manifest_version), (4, 1, 100, 5));
    assert_eq!((r.merged[0].sources.len(), r.merged[0].inputs, r.merged[0].rows), (4, 4, 100));
    let files = parquet_files(&part);
    assert_eq!(files.len(), 1);
    assert!(files[0].starts_with("part-c"), "{files:?}");
    assert_eq!(rows_by_file_line(&lake), before);
    let snap = load_snapshot(&lake, None).unwrap();
    let shared = snap.data_files();
    assert_eq!(shared.len(), 1);
    // Each input owns one run of its own row count; the runs tile the file.
    let mut next = 0;
    for (hash, offset, rows) in &shared[0].owners {
        let name = snap.inputs[hash].path.rsplit('/').next().unwrap().to_string();
        let spec = specs.iter().find(|s| s.0 == name).unwrap();
        assert_eq!((*offset, *rows), (next, spec.1 as u64), "{name}");
        next += rows;
    }
    assert_eq!(next, 100);
    let healthy = check(&lake).unwrap();
    assert!(healthy.healthy(), "{:#?}", healthy.problems);
    assert_eq!((healthy.files, healthy.rows, healthy.inputs), (1, 100, 4));
    // The commit that shares files is format 2; ingest's are format 1.
    let commit1: serde_json::Value =
        serde_json::from_slice(&std::fs::read(lake.join("_manifest/00000000000000000001.json")).unwrap()).unwrap();
    assert_eq!(commit1["format"].as_u64(), Some(1));
    let commit2: serde_json::Value =
        serde_json::from_slice(&std::fs::read(lake.join("_manifest/00000000000000000005.json")).unwrap()).unwrap();
    assert_eq!((commit2["format"].as_u64(), commit2["operation"].as_str()), (Some(2), Some("compact")));

    // Nothing left to merge: a second run commits nothing.
    let again = compact(&lake, &small()).unwrap();
    assert_eq!((again.merged.len(), again.manifest_version), (0, 5));

    // Re-ingesting changes nothing: exactly-once still knows the inputs.
    assert_eq!(run(&lake, &paths).rows, 0);

    // forget b: its 20 rows leave, the other 80 stay with exact values, in one commit.
    let f = forget(&lake, &[paths[1].display().to_string()], true).unwrap();
    assert_eq!((f.rows, f.manifest_version), (20, 6));
    let rest = [specs[0], specs[2], specs[3]];
    assert_eq!(rows_by_file_line(&lake), expected(&rest));
    let c = check(&lake).unwrap();
    assert!(c.healthy(), "{:#?}", c.problems);
    assert_eq!((c.files, c.rows, c.inputs), (1, 80, 3));
    assert_eq!(parquet_files(&part).len(), 1);

    // Landing b again and forgetting every input empties the lake.
    assert_eq!(run(&lake, &paths).rows, 20);
    assert_eq!(rows_by_file_line(&lake), before);
    let all: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    assert_eq!(forget(&lake, &all, true).unwrap().rows, 100);
    assert!(rows_by_file_line(&lake).is_empty());
    assert!(parquet_files(&part).is_empty());
    assert!(check(&lake).unwrap().healthy());
}

#[test]
fn a_grown_input_in_a_compacted_file_is_replaced_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = tmp.path().join("lake");
    let steady = tmp.path().join("steady_code.csv");
    std::fs::write(&steady, azure_csv(25, 0, 500)).unwrap();
    // A live file read mid-line with --final (no settle time): 5 whole records and a cut 6th
    // (quarantined).
    let live = tmp.path().join("live_code.csv");
    let full = azure_csv(9, 1000, 700);
    let cut = full.match_indices('\n').nth(5).unwrap().0 + 1 + 20;
    std::fs::write(&live, &full[..cut]).unwrap();
    let first = run_with(&lake, &[steady.clone(), live.clone()], IngestOptions { settle: None, ..Default::default() });
    assert_eq!((first.rows, first.quarantined), (30, 1));
    let r = compact(&lake, &CompactOptions { tables: vec!["requests".into()], ..small() }).unwrap();
    assert_eq!((r.files_before, r.files_after), (3, 2), "the quarantine file is not a requests file");

    // The file grows: its earlier 5 rows are dropped from the shared file, all 9 land.
    std::fs::write(&live, &full).unwrap();
    let grown = run(&lake, std::slice::from_ref(&live));
    assert_eq!(grown.rows, 9, "{grown:#?}");
    assert_eq!(rows_by_file_line(&lake), expected(&[("steady_code.csv", 25, 500), ("live_code.csv", 9, 700)]));
    let c = check(&lake).unwrap();
    assert!(c.healthy(), "{:#?}", c.problems);
    assert_eq!(c.inputs, 2);
    // Merging again takes the rewritten file and the new one: rows unchanged.
    let r = compact(&lake, &CompactOptions { tables: vec!["requests".into()], ..small() }).unwrap();
    assert_eq!((r.files_before, r.files_after), (2, 1));
    assert_eq!(rows_by_file_line(&lake), expected(&[("steady_code.csv", 25, 500), ("live_code.csv", 9, 700)]));
    assert!(check(&lake).unwrap().healthy());
}

#[test]
fn an_unknown_table_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = tmp.path().join("lake");
    std::fs::create_dir_all(&lake).unwrap();
    let e = compact(&lake, &CompactOptions { tables: vec!["nope".into()], ..small() }).unwrap_err();
    assert!(e.to_string().contains("--table nope"), "{e}");
}
