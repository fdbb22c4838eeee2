//! End-to-end tests of the lake writer: counts, exactly-once, quarantine, truncation, growth,
//! leftovers of interrupted runs, locking. Expected values are computed independently from the
//! input bytes in the test, never read back from tapeout's own summary alone.

use std::io::Write;
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Int64Type, TimestampNanosecondType};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use tapeout_lake::{IngestOptions, IngestSummary, InputStatus, LakeError, ingest, load_snapshot};

fn sample_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sample-traces/requests")
}

fn run(lake: &Path, inputs: &[&Path]) -> IngestSummary {
    run_with(lake, inputs, IngestOptions::default())
}

fn run_with(lake: &Path, inputs: &[&Path], opts: IngestOptions) -> IngestSummary {
    let args: Vec<String> = inputs.iter().map(|p| p.display().to_string()).collect();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(ingest(lake, &args, opts)).unwrap()
}

/// Every batch of one table, read from the files the newest manifest version names.
fn read_table(lake: &Path, table: &str) -> Vec<RecordBatch> {
    let snap = load_snapshot(lake, None).unwrap();
    let mut out = Vec::new();
    for f in snap.table_files(table) {
        let file = std::fs::File::open(lake.join(&f.path)).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(file).unwrap().build().unwrap();
        out.extend(reader.map(|b| b.unwrap()));
    }
    out
}

fn col_i64(batches: &[RecordBatch], name: &str) -> Vec<i64> {
    batches
        .iter()
        .flat_map(|b| b.column_by_name(name).unwrap().as_primitive::<Int64Type>().iter().flatten().collect::<Vec<_>>())
        .collect()
}

/// Decompressed bytes of a sample file (independent of tapeout's reader).
fn decoded(path: &Path) -> Vec<u8> {
    let raw = std::fs::read(path).unwrap();
    if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&raw[..]), &mut out).unwrap();
        out
    } else if path.extension().is_some_and(|e| e == "zst") {
        zstd::decode_all(&raw[..]).unwrap()
    } else {
        raw
    }
}

/// (records, sum of input-token column, sum of output-token column) computed from raw text.
fn expected_sums(path: &Path) -> (usize, i64, i64) {
    let text = String::from_utf8(decoded(path)).unwrap();
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    if text.starts_with('{') {
        let (mut n, mut i, mut o) = (0, 0, 0);
        for l in lines {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            n += 1;
            i += v["input_length"].as_i64().unwrap();
            o += v["output_length"].as_i64().unwrap();
        }
        return (n, i, o);
    }
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let pos = |names: &[&str]| header.iter().position(|h| names.contains(h)).unwrap();
    let (ci, co) = (pos(&["ContextTokens", "Request tokens"]), pos(&["GeneratedTokens", "Response tokens"]));
    let (mut n, mut i, mut o) = (0, 0, 0);
    for l in lines {
        let f: Vec<&str> = l.split(',').collect();
        n += 1;
        i += f[ci].parse::<i64>().unwrap();
        o += f[co].parse::<i64>().unwrap();
    }
    (n, i, o)
}

#[test]
fn sample_traces_land_exactly_with_per_file_sums() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = tmp.path().join("lake");
    let s = run(&lake, &[&sample_dir()]);
    assert_eq!(s.exit_code(), 0, "{s:#?}");
    assert_eq!((s.inputs, s.skipped, s.rejected, s.quarantined), (7, 0, 0, 0));
    let batches = read_table(&lake, "requests");
    let total: usize = batches.iter().map(|b| b.num_rows()).sum();
    assert_eq!(total as u64, s.rows);
    let mut expected_total = 0;
    for entry in std::fs::read_dir(sample_dir()).unwrap() {
        let path = entry.unwrap().path();
        let (n, i, o) = expected_sums(&path);
        expected_total += n;
        let abs = std::path::absolute(&path).unwrap().display().to_string();
        let mut got = (0usize, 0i64, 0i64);
        for b in &batches {
            let file = b.column_by_name("file").unwrap().as_string::<i32>();
            let inp = b.column_by_name("input_tokens").unwrap().as_primitive::<Int64Type>();
            let out = b.column_by_name("output_tokens").unwrap().as_primitive::<Int64Type>();
            for r in 0..b.num_rows() {
                if file.value(r) == abs {
                    got.0 += 1;
                    got.1 += inp.value(r);
                    got.2 += out.value(r);
                }
            }
        }
        assert_eq!(got, (n, i, o), "{}", path.display());
    }
    assert_eq!(total, expected_total);
    assert_eq!(total, 248);
}

#[test]
fn files_are_partitioned_sorted_and_versioned() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = tmp.path().join("lake");
    run(&lake, &[&sample_dir()]);
    let snap = load_snapshot(&lake, None).unwrap();
    let mut partitions: Vec<String> =
        snap.table_files("requests").map(|f| f.path.rsplit_once('/').unwrap().0.to_string()).collect();
    partitions.sort();
    partitions.dedup();
    assert_eq!(
        partitions,
        [
            "requests/source=azure_llm/date=2023-11-16",
            "requests/source=azure_llm/date=2024-05-10",
            "requests/source=azure_llm/date=2024-05-11",
            "requests/source=azure_llm/date=2025-03-01",
            "requests/source=burstgpt/date=1970-01-01",
            "requests/source=mooncake/date=1970-01-01",
        ]
    );
    for f in snap.table_files("requests") {
        let file = std::fs::File::open(lake.join(&f.path)).unwrap();
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
        let kv = builder.metadata().file_metadata().key_value_metadata().unwrap();
        assert!(kv.iter().any(|k| k.key == "tapeout.schema_version" && k.value.as_deref() == Some("1")));
        let schema = builder.schema().clone();
        assert!(schema.field_with_name("source").is_err() && schema.field_with_name("date").is_err());
        let rows: Vec<RecordBatch> = builder.build().unwrap().map(|b| b.unwrap()).collect();
        let ts: Vec<i64> = rows
            .iter()
            .flat_map(|b| {
                b.column_by_name("arrival_time").unwrap().as_primitive::<TimestampNanosecondType>().values().to_vec()
            })
            .collect();
        assert!(ts.windows(2).all(|w| w[0] <= w[1]), "{} not sorted", f.path);
        assert_eq!(ts.len() as u64, f.rows);
        assert_eq!(std::fs::metadata(lake.join(&f.path)).unwrap().len(), f.bytes);
        assert_eq!(tapeout_lake::fsutil::hash_file(&lake.join(&f.path)).unwrap(), f.blake3);
    }
}

#[test]
fn second_ingest_and_recompressed_copies_add_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = tmp.path().join("lake");
    let first = run(&lake, &[&sample_dir()]);
    assert_eq!(first.rows, 248);
    let again = run(&lake, &[&sample_dir()]);
    assert_eq!((again.rows, again.skipped, again.outputs, again.exit_code()), (0, 7, 0, 0));
    assert_eq!(again.manifest_version, first.manifest_version);
    // Same bytes under another name, and the same trace gzipped: both skipped.
    let copy = tmp.path().join("renamed.csv");
    std::fs::copy(sample_dir().join("BurstGPT_1.csv"), &copy).unwrap();
    let gz = tmp.path().join("mooncake_again.jsonl.gz");
    let mut enc = flate2::write::GzEncoder::new(std::fs::File::create(&gz).unwrap(), flate2::Compression::fast());
    enc.write_all(&std::fs::read(sample_dir().join("mooncake_conversation.jsonl")).unwrap()).unwrap();
    enc.finish().unwrap();
    let s = run(&lake, &[&copy, &gz]);
    assert_eq!((s.rows, s.skipped), (0, 2), "{s:#?}");
    assert!(s.details.iter().all(|d| d.status == InputStatus::Skipped));
    let total: usize = read_table(&lake, "requests").iter().map(|b| b.num_rows()).sum();
    assert_eq!(total, 248);
}

fn azure_csv(rows: usize, start_sec: usize) -> String {
    let mut s = String::from("TIMESTAMP,ContextTokens,GeneratedTokens\n");
    for i in 0..rows {
        let t = start_sec + i;
        s.push_str(&format!(
            "2023-11-16 {:02}:{:02}:{:02}.1234567,{},{}\n",
            t / 3600 % 24,
            t / 60 % 60,
            t % 60,
            100 + i,
            1 + i % 7
        ));
    }
    s
}

#[test]
fn three_corrupted_lines_are_quarantined_and_everything_else_lands() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = tmp.path().join("lake");
    let mut lines: Vec<String> = azure_csv(500, 0).lines().map(str::to_string).collect();
    lines[10] = "2023-11-16 00:00:09.1234567,abc,3".into(); // line 11
    lines[200] = "2023-11-16 00:03:19.1234567,5".into(); // line 201
    lines[450] = "yesterday,1,1".into(); // line 451
    let path = tmp.path().join("AzureLLMInferenceTrace_code.csv");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let s = run(&lake, &[&path]);
    assert_eq!((s.rows, s.quarantined, s.exit_code()), (497, 3, 2));
    let q = read_table(&lake, "quarantine");
    let got_lines = col_i64(&q, "line");
    assert_eq!(got_lines, vec![11, 201, 451]);
    let reasons: Vec<String> = q
        .iter()
        .flat_map(|b| {
            b.column_by_name("reason")
                .unwrap()
                .as_string::<i32>()
                .iter()
                .flatten()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(reasons, ["not a number", "expected 3 fields, found 2", "unparseable timestamp"]);
    let raw: Vec<String> = q
        .iter()
        .flat_map(|b| {
            b.column_by_name("raw").unwrap().as_string::<i32>().iter().flatten().map(str::to_string).collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(raw[2], "yesterday,1,1");
    let landed = col_i64(&read_table(&lake, "requests"), "line");
    assert_eq!(landed.len(), 497);
    assert!(!landed.contains(&11) && !landed.contains(&201) && !landed.contains(&451));
}

#[test]
fn truncated_gzip_keeps_the_rows_before_the_break() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = tmp.path().join("lake");
    let csv = azure_csv(20_000, 0);
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(csv.as_bytes()).unwrap();
    let gz = enc.finish().unwrap();
    let path = tmp.path().join("cut_code.csv.gz");
    std::fs::write(&path, &gz[..gz.len() * 6 / 10]).unwrap();
    let opts = IngestOptions { chunk_bytes: 64 * 1024, ..IngestOptions::default() };
    let s = run_with(&lake, &[&path], opts);
    let d = &s.details[0];
    assert_eq!(d.status, InputStatus::Ingested);
    assert!(d.truncated.as_deref().unwrap().contains("stream broke"), "{d:?}");
    assert_eq!(s.quarantined, 1);
    assert_eq!(s.exit_code(), 2);
    let mut lines = col_i64(&read_table(&lake, "requests"), "line");
    lines.sort();
    // Every row before the break, in order, none after it: lines 2..=n+1 exactly.
    let n = lines.len() as i64;
    assert!(n > 1_000 && n < 20_000, "{n}");
    assert_eq!(lines, (2..n + 2).collect::<Vec<_>>());
    let q = read_table(&lake, "quarantine");
    assert_eq!(col_i64(&q, "line"), vec![n + 2]);
}

#[test]
fn a_grown_file_ingests_only_the_appended_records() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = tmp.path().join("lake");
    let path = tmp.path().join("live_code.csv");
    let all = azure_csv(15, 0);
    let cut = all.match_indices('\n').nth(10).unwrap().0 + 1; // header + 10 records
    std::fs::write(&path, &all[..cut]).unwrap();
    assert_eq!(run(&lake, &[&path]).rows, 10);
    std::fs::write(&path, &all).unwrap();
    let s = run(&lake, &[&path]);
    assert_eq!((s.details[0].status, s.rows), (InputStatus::Appended, 5), "{s:#?}");
    let mut lines = col_i64(&read_table(&lake, "requests"), "line");
    lines.sort();
    assert_eq!(lines, (2..=16).collect::<Vec<_>>());
    assert_eq!(run(&lake, &[&path]).rows, 0);
}

/// No settle time: a last line without a newline lands at once (`--final`).
fn final_opts() -> IngestOptions {
    IngestOptions { settle: None, ..IngestOptions::default() }
}

/// The sorted (line, input_tokens) pairs of the lake's requests.
fn line_tokens(lake: &Path) -> Vec<(i64, i64)> {
    let b = read_table(lake, "requests");
    let mut got: Vec<(i64, i64)> = col_i64(&b, "line").into_iter().zip(col_i64(&b, "input_tokens")).collect();
    got.sort();
    got
}

#[test]
fn a_file_read_mid_line_with_final_is_replaced_whole_when_it_grows() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = tmp.path().join("lake");
    let path = tmp.path().join("live_code.csv");
    let all = azure_csv(6, 0);
    // The writer had written 3 records and half of the 4th ("…,103,4" cut to "…,10"), which
    // is quarantined (2 fields) under --final; the grown file replaces rows and quarantine alike.
    let cut = all.match_indices('\n').nth(3).unwrap().0 + 1 + 30;
    std::fs::write(&path, &all[..cut]).unwrap();
    let first = run_with(&lake, &[&path], final_opts());
    assert_eq!((first.rows, first.quarantined, first.pending), (3, 1, 0), "{first:#?}");
    std::fs::write(&path, &all).unwrap();
    let s = run(&lake, &[&path]);
    assert_eq!((s.details[0].status, s.rows), (InputStatus::Replaced, 6), "{s:#?}");
    assert_eq!(s.details[0].replaced_because, Some(tapeout_lake::ingest::ReplaceCause::GrownMidLine));
    assert_eq!(line_tokens(&lake), (0..6).map(|i| (i + 2, 100 + i)).collect::<Vec<_>>());
    assert_eq!(load_snapshot(&lake, None).unwrap().inputs.len(), 1);
    assert!(read_table(&lake, "quarantine").is_empty());
}

/// Issue 20's live-log reproduction: ingested, caught mid-line (`…,10` of `…,103`), then
/// completed. Before, the half line landed as a row and the third run left lines 2 and 3
/// twice while `check` said healthy. Now the half line is pending until it is complete.
#[test]
fn a_live_log_caught_mid_line_lands_each_record_once() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = tmp.path().join("lake");
    let path = tmp.path().join("live_code.csv");
    let all = azure_csv(6, 0);
    let line_end = |n: usize| all.match_indices('\n').nth(n).unwrap().0 + 1;
    std::fs::write(&path, &all[..line_end(2)]).unwrap(); // header + 2 records
    assert_eq!(run(&lake, &[&path]).rows, 2);
    let cut = line_end(2) + 30; // half of record 3: "2023-11-16 00:00:02.1234567,10"
    std::fs::write(&path, &all[..cut]).unwrap();
    let s = run(&lake, &[&path]);
    assert_eq!((s.details[0].status, s.rows, s.pending), (InputStatus::Pending, 0, 1), "{s:#?}");
    let tail = s.details[0].pending.clone().unwrap();
    assert_eq!((tail.offset, tail.bytes), (line_end(2) as u64, 30));
    assert_eq!(s.exit_code(), 0, "a pending line is not an error");
    // Still pending, still nothing new: the run is idempotent.
    assert_eq!(run(&lake, &[&path]).details[0].status, InputStatus::Pending);
    std::fs::write(&path, &all[..line_end(4)]).unwrap(); // completed, and one more record
    let s = run(&lake, &[&path]);
    assert_eq!((s.details[0].status, s.rows, s.pending), (InputStatus::Appended, 2, 0), "{s:#?}");
    assert_eq!(line_tokens(&lake), (0..4).map(|i| (i + 2, 100 + i)).collect::<Vec<_>>());
    assert!(read_table(&lake, "quarantine").is_empty());
    let c = tapeout_lake::repair::check(&lake).unwrap();
    assert_eq!((c.rows, c.healthy()), (4, true));
}

#[test]
fn a_last_line_without_newline_lands_once_the_file_has_settled_or_with_final() {
    let tmp = tempfile::tempdir().unwrap();
    let all = azure_csv(3, 0);
    let body = all.strip_suffix('\n').unwrap(); // a finished file that ends without a newline
    let path = tmp.path().join("done_code.csv");
    std::fs::write(&path, body).unwrap();
    // Just written: the last record waits for the settle time.
    let lake = tmp.path().join("lake");
    let s = run(&lake, &[&path]);
    assert_eq!((s.rows, s.pending, s.details[0].status), (2, 1, InputStatus::Ingested), "{s:#?}");
    // Unchanged for longer than the settle time: it lands, appended.
    let f = std::fs::File::options().write(true).open(&path).unwrap();
    f.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(3600)).unwrap();
    let s = run(&lake, &[&path]);
    assert_eq!((s.rows, s.pending, s.details[0].status), (1, 0, InputStatus::Appended), "{s:#?}");
    assert_eq!(line_tokens(&lake), vec![(2, 100), (3, 101), (4, 102)]);
    // --final lands it at once, whatever the file's age.
    std::fs::write(&path, body).unwrap();
    let lake2 = tmp.path().join("lake2");
    let s = run_with(&lake2, &[&path], final_opts());
    assert_eq!((s.rows, s.pending), (3, 0));
    assert_eq!(line_tokens(&lake2), line_tokens(&lake));
    // A compressed file is whole or broken, never pending.
    let gz = tmp.path().join("done2_code.csv.gz");
    let mut e = flate2::write::GzEncoder::new(std::fs::File::create(&gz).unwrap(), flate2::Compression::fast());
    e.write_all(azure_csv(3, 100).strip_suffix('\n').unwrap().as_bytes()).unwrap();
    e.finish().unwrap();
    let s = run(&tmp.path().join("lake3"), &[&gz]);
    assert_eq!((s.rows, s.pending), (3, 0), "{s:#?}");
}

/// Issue 20: a file truncated between runs (10 records, then its first 5) landed again as a new
/// input: 15 rows for 10 lines. A changed path is a new version of it: `--on-change` decides.
#[test]
fn a_file_changed_in_place_is_replaced_kept_or_refused_as_asked() {
    use tapeout_lake::ingest::{OnChange, ReplaceCause};
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("rotated_code.csv");
    let all = azure_csv(10, 0);
    let first5 = &all[..all.match_indices('\n').nth(5).unwrap().0 + 1];
    let on = |c: OnChange| IngestOptions { on_change: c, ..IngestOptions::default() };

    // Default (replace): the lake holds what the path holds now, in one commit.
    let lake = tmp.path().join("replace");
    std::fs::write(&path, &all).unwrap();
    assert_eq!(run(&lake, &[&path]).rows, 10);
    std::fs::write(&path, first5).unwrap();
    let s = run(&lake, &[&path]);
    assert_eq!((s.details[0].status, s.rows, s.manifest_version), (InputStatus::Replaced, 5, 2), "{s:#?}");
    assert_eq!(s.details[0].replaced_because, Some(ReplaceCause::PathChanged));
    assert_eq!(line_tokens(&lake), (0..5).map(|i| (i + 2, 100 + i)).collect::<Vec<_>>());
    // Back to the full content (bytes the lake held before, under the old version): replaced again.
    std::fs::write(&path, &all).unwrap();
    let s = run(&lake, &[&path]);
    assert_eq!(s.rows, 5, "the first 5 stay, 5 appended: {s:#?}");
    assert_eq!(line_tokens(&lake), (0..10).map(|i| (i + 2, 100 + i)).collect::<Vec<_>>());
    // Truncated back to bytes the lake holds as the first part of a longer version: replaced.
    std::fs::write(&path, first5).unwrap();
    let s = run(&lake, &[&path]);
    assert_eq!((s.details[0].status, s.rows), (InputStatus::Replaced, 5), "{s:#?}");
    assert_eq!(line_tokens(&lake), (0..5).map(|i| (i + 2, 100 + i)).collect::<Vec<_>>());
    assert!(tapeout_lake::repair::check(&lake).unwrap().healthy());

    // keep: both versions stay, and the summary says so.
    let lake = tmp.path().join("keep");
    std::fs::write(&path, &all).unwrap();
    run(&lake, &[&path]);
    std::fs::write(&path, first5).unwrap();
    let s = run_with(&lake, &[&path], on(OnChange::Keep));
    assert_eq!((s.details[0].status, s.rows), (InputStatus::Ingested, 5));
    assert!(s.details[0].notes[0].contains("earlier version (10 rows) stays"), "{:?}", s.details[0].notes);
    assert_eq!(line_tokens(&lake).len(), 15);

    // refuse: rejected (exit 3 beside other inputs, 1 alone), the lake unchanged.
    let lake = tmp.path().join("refuse");
    std::fs::write(&path, &all).unwrap();
    run(&lake, &[&path]);
    std::fs::write(&path, first5).unwrap();
    let s = run_with(&lake, &[&path], on(OnChange::Refuse));
    assert_eq!((s.details[0].status, s.rows, s.exit_code()), (InputStatus::Rejected, 0, 1));
    assert!(s.details[0].reason.as_deref().unwrap().contains("changed since it was ingested"), "{s:#?}");
    assert_eq!(line_tokens(&lake).len(), 10);
}

#[test]
fn leftovers_of_an_interrupted_run_are_removed_before_the_next() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = tmp.path().join("lake");
    run(&lake, &[&sample_dir().join("BurstGPT_1.csv")]);
    let part = lake.join("requests/source=burstgpt/date=1970-01-01");
    let committed = std::fs::read_dir(&part).unwrap().next().unwrap().unwrap().path();
    // What a kill leaves: a half-written temp file, and a published but uncommitted file.
    std::fs::write(part.join(".part-deadbeefdeadbeef-0000.parquet.tmp"), b"PAR1 half").unwrap();
    std::fs::copy(&committed, part.join("part-deadbeefdeadbeef-0000.parquet")).unwrap();
    let s = run(&lake, &[&sample_dir().join("BurstGPT_v1.1_sessions.csv")]);
    assert_eq!(s.rows, 30);
    let on_disk: Vec<String> = tapeout_lake::repair::lake_files(&lake)
        .unwrap()
        .into_iter()
        .filter(|f| f.starts_with("requests/") || f.starts_with("_quarantine/"))
        .collect();
    let snap = load_snapshot(&lake, None).unwrap();
    let mut named: Vec<String> = snap.files().map(|f| f.path.clone()).collect();
    named.sort();
    assert_eq!(on_disk, named);
    let total: usize = read_table(&lake, "requests").iter().map(|b| b.num_rows()).sum();
    assert_eq!(total, 36 + 30);
}

#[test]
fn bad_inputs_are_rejected_by_name_while_the_rest_lands() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = tmp.path().join("lake");
    let dir = tmp.path().join("in");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("a_notes.dat"), "hello,world\n1,2\n").unwrap();
    // Documentation beside traces is skipped when walking a directory (not counted as an input).
    std::fs::write(dir.join("README.md"), "# notes\n").unwrap();
    std::fs::write(dir.join("b_empty.csv"), "").unwrap();
    std::fs::write(dir.join("c_trace.json"), "{\"schemaVersion\": 1, \"traceEvents\": 7}").unwrap();
    std::fs::copy(sample_dir().join("BurstGPT_1.csv"), dir.join("d_BurstGPT_1.csv")).unwrap();
    let missing = tmp.path().join("nope.csv");
    let s = run(&lake, &[&dir, &missing]);
    assert_eq!((s.inputs, s.rejected, s.rows, s.exit_code()), (5, 4, 36, 3), "{s:#?}");
    let reason = |suffix: &str| s.details.iter().find(|d| d.path.ends_with(suffix)).unwrap().reason.clone().unwrap();
    assert!(reason("nope.csv").contains("no such file"));
    assert!(reason("a_notes.dat").contains("unrecognized format: line 1 is `hello,world`"));
    assert!(reason("b_empty.csv").contains("file is empty"));
    let r = reason("c_trace.json");
    assert!(r.starts_with("invalid trace JSON") || r.starts_with("not a PyTorch profiler trace"), "{r}");
    // Nothing was committed for them: a later fix of the file ingests it.
    assert_eq!(load_snapshot(&lake, None).unwrap().inputs.len(), 1);
    let only_bad = run(&lake, &[&dir.join("a_notes.dat")]);
    assert_eq!(only_bad.exit_code(), 1);
}

#[test]
fn tiny_chunks_give_the_same_rows_as_one_chunk() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let input = sample_dir().join("mooncake_conversation.jsonl");
    run_with(&a, &[&input], IngestOptions { chunk_bytes: 1 << 20, ..IngestOptions::default() });
    run_with(&b, &[&input], IngestOptions { chunk_bytes: 64, parse_threads: 3, ..IngestOptions::default() });
    for col in ["line", "input_tokens", "cached_tokens"] {
        assert_eq!(col_i64(&read_table(&a, "requests"), col), col_i64(&read_table(&b, "requests"), col), "{col}");
    }
    // cached_tokens computed independently: blocks whose hash appeared in an earlier record.
    let text = std::fs::read_to_string(&input).unwrap();
    let mut seen = std::collections::HashSet::new();
    let mut expected = 0i64;
    for l in text.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        let input_len = v["input_length"].as_i64().unwrap();
        let hashes: Vec<i64> = v["hash_ids"].as_array().unwrap().iter().map(|h| h.as_i64().unwrap()).collect();
        for (i, h) in hashes.iter().enumerate() {
            if seen.contains(h) {
                expected += (input_len - 512 * i as i64).clamp(0, 512);
            }
        }
        seen.extend(hashes);
    }
    assert_eq!(col_i64(&read_table(&b, "requests"), "cached_tokens").iter().sum::<i64>(), expected);
    assert!(expected > 0);
}

#[test]
fn a_locked_lake_is_refused_without_wait() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = tmp.path().join("lake");
    std::fs::create_dir_all(&lake).unwrap();
    let _held = tapeout_lake::lock::LakeLock::acquire(&lake, false, |_| {}).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let args = vec![sample_dir().join("BurstGPT_1.csv").display().to_string()];
    let err = rt.block_on(ingest(&lake, &args, IngestOptions { wait_for_lock: false, ..IngestOptions::default() }));
    match err {
        Err(LakeError::Locked { holder, .. }) => assert_eq!(holder, Some(std::process::id())),
        other => panic!("expected Locked, got {other:?}"),
    }
}

#[test]
fn null_columns_for_formats_without_them() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = tmp.path().join("lake");
    run(&lake, &[&sample_dir().join("AzureMultimodalTrace_2025.csv.zst")]);
    let b = read_table(&lake, "requests");
    let images: i64 = col_i64(&b, "num_images").iter().sum();
    // Independent sum of the NumImages column.
    let text = String::from_utf8(decoded(&sample_dir().join("AzureMultimodalTrace_2025.csv.zst"))).unwrap();
    let expected: i64 = text.lines().skip(1).map(|l| l.split(',').nth(1).unwrap().parse::<i64>().unwrap()).sum();
    assert_eq!(images, expected);
    assert!(b.iter().all(|b| b.column_by_name("cached_tokens").unwrap().null_count() == b.num_rows()));
}

#[test]
fn identical_new_files_in_one_run_land_once() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = tmp.path().join("lake");
    let (a, b) = (tmp.path().join("a_code.csv"), tmp.path().join("b_code.csv"));
    std::fs::write(&a, azure_csv(300, 0)).unwrap();
    std::fs::write(&b, azure_csv(300, 0)).unwrap();
    let s = run(&lake, &[&a, &b]);
    assert_eq!((s.rows, s.skipped), (300, 1), "{s:#?}");
    let skipped = s.details.iter().find(|d| d.status == InputStatus::Skipped).unwrap();
    assert_eq!(skipped.reason.as_deref(), Some("same content as another input of this run"));
    assert_eq!(read_table(&lake, "requests").iter().map(|b| b.num_rows()).sum::<usize>(), 300);
    // Files are named after the input's hash, whoever computed it.
    let snap = load_snapshot(&lake, None).unwrap();
    let entry = snap.inputs.values().next().unwrap();
    assert!(entry.outputs.iter().all(|o| o.path.contains(&format!("/part-{}-", &entry.input_hash[..16]))));
}

/// Kineto traces are recognized by content and named after their folder; with a request
/// format forced they go through the request pipeline and are rejected.
#[test]
fn kineto_traces_are_detected_and_named_after_their_folder() {
    let kineto = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sample-traces/kineto");
    let lake = tempfile::tempdir().unwrap();
    let inputs = [kineto.join("train_2rank/rank0.json"), kineto.join("inference_1rank/trace.json.gz")];
    let s = run(lake.path(), &[&inputs[0], &inputs[1]]);
    assert_eq!(s.rejected, 0, "{:?}", s.details);
    assert!(s.details.iter().all(|d| d.format.as_deref() == Some("kineto") && d.tables.contains_key("kernels")));
    let snap = load_snapshot(lake.path(), None).unwrap();
    let mut workloads: Vec<_> = snap.inputs.values().map(|e| e.workload.clone().unwrap_or_default()).collect();
    workloads.sort();
    assert_eq!(workloads, ["inference_1rank", "train_2rank"]);
    let forced = tempfile::tempdir().unwrap();
    let opts = IngestOptions { format: tapeout_formats::SourceFormat::from_id("azure_llm"), ..Default::default() };
    let s = run_with(forced.path(), &[&inputs[0]], opts);
    assert_eq!(s.details[0].status, InputStatus::Rejected);
}
