//! `--format` is never sticky (issue 20, point 4): a file committed under a forced format that
//! quarantined every record says so, and the same bytes under another format (or detection)
//! land and replace that ingest in one commit, while the same choice again is still skipped.
//! Counts are read from the Parquet files on disk (every `*.parquet` a glob reader would see)
//! and checked against the input text, not against tapeout's summary alone.

use std::path::{Path, PathBuf};

use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use tapeout_formats::SourceFormat;
use tapeout_lake::compact::{CompactOptions, compact};
use tapeout_lake::{IngestOptions, IngestSummary, InputStatus, ingest, load_snapshot};

const MOONCAKE: Option<SourceFormat> = Some(SourceFormat::Mooncake);
const AZURE: Option<SourceFormat> = Some(SourceFormat::AzureLlm);

fn azure_sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sample-traces/requests/AzureLLMInferenceTrace_code.csv")
}

/// Ingests one input with `--format` set to `format` (None: detection).
fn ingest_as(lake: &Path, input: &Path, format: Option<SourceFormat>) -> IngestSummary {
    let opts = IngestOptions { format, jobs: 1, ..IngestOptions::default() };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(ingest(lake, &[input.display().to_string()], opts)).unwrap()
}

/// The non-empty lines of a CSV: (lines with the header, the sum of its second column).
fn csv_counts(text: &str) -> (u64, i64) {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let tokens = lines[1..].iter().map(|l| l.split(',').nth(1).unwrap().parse::<i64>().unwrap()).sum();
    (lines.len() as u64, tokens)
}

/// Every `*.parquet` file under `dir` of the lake, whether or not the manifest names it.
fn parquet_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut found = Vec::new();
    for e in entries.map(Result::unwrap) {
        let p = e.path();
        if p.is_dir() {
            found.extend(parquet_under(&p));
        } else if p.extension().is_some_and(|x| x == "parquet") {
            found.push(p);
        }
    }
    found
}

/// (rows, sum of `column` when given) over every Parquet file on disk under `dir` of the lake.
fn on_disk(lake: &Path, dir: &str, column: Option<&str>) -> (u64, i64) {
    let (mut rows, mut sum) = (0, 0);
    for p in parquet_under(&lake.join(dir)) {
        for batch in
            ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&p).unwrap()).unwrap().build().unwrap()
        {
            let batch = batch.unwrap();
            rows += batch.num_rows() as u64;
            if let Some(c) = column {
                sum += batch.column_by_name(c).unwrap().as_primitive::<Int64Type>().iter().flatten().sum::<i64>();
            }
        }
    }
    (rows, sum)
}

/// The live manifest entries read from `path`: (format, forced, rows, quarantined).
fn live_entries(lake: &Path, path: &Path) -> Vec<(String, bool, u64, u64)> {
    let shown = path.display().to_string();
    let snap = load_snapshot(lake, None).unwrap();
    snap.inputs
        .values()
        .filter(|e| e.path == shown)
        .map(|e| (e.format.clone(), e.format_forced, e.rows, e.quarantined))
        .collect()
}

/// The wrong forced format: every line (the header too: Mooncake has none) is quarantined, and
/// the entry, summary and `--json` say so.
fn ingest_wrongly(lake: &Path, input: &Path, lines: u64) {
    let s = ingest_as(lake, input, MOONCAKE);
    let d = &s.details[0];
    assert_eq!((d.status, d.rows, d.quarantined, s.exit_code()), (InputStatus::Ingested, 0, lines, 2), "{s:#?}");
    assert!(d.format_forced);
    let warning = d.warning.as_deref().unwrap();
    assert!(warning.starts_with("0 rows under forced format mooncake: every record quarantined"), "{warning}");
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["details"][0]["warning"], warning);
    assert_eq!(json["details"][0]["format_forced"], true);
    assert_eq!(live_entries(lake, input), vec![("mooncake".to_string(), true, 0, lines)]);
    assert_eq!(on_disk(lake, "_quarantine", None).0, lines);
    assert_eq!(on_disk(lake, "requests", None).0, 0);
}

/// After a replace under `format`: exactly the file's records, nothing of the wrong attempt, one
/// live entry; the same choice again is skipped.
fn assert_replaced(lake: &Path, input: &Path, s: &IngestSummary, format: Option<SourceFormat>) {
    let forced = format.is_some();
    let (lines, tokens) = csv_counts(&std::fs::read_to_string(input).unwrap());
    let d = &s.details[0];
    assert_eq!((d.status, d.rows, d.quarantined, s.exit_code()), (InputStatus::Replaced, lines - 1, 0, 0), "{s:#?}");
    assert_eq!(
        (d.replaced.as_deref(), d.format.as_deref(), d.format_forced),
        (Some("mooncake"), Some("azure_llm"), forced)
    );
    assert_eq!(serde_json::to_value(s).unwrap()["details"][0]["replaced"], "mooncake");
    assert_eq!(live_entries(lake, input), vec![("azure_llm".to_string(), forced, lines - 1, 0)]);
    assert_eq!(on_disk(lake, "requests", Some("input_tokens")), (lines - 1, tokens));
    assert_eq!(on_disk(lake, "_quarantine", None).0, 0);
    assert_skipped(&ingest_as(lake, input, format), s.manifest_version);
}

fn assert_skipped(s: &IngestSummary, version: u64) {
    assert_eq!((s.details[0].status, s.manifest_version, s.rows, s.exit_code()), (InputStatus::Skipped, version, 0, 0));
}

#[test]
fn a_forced_wrong_format_is_replaced_by_the_right_one() {
    let tmp = tempfile::tempdir().unwrap();
    let (lake, input) = (tmp.path().join("lake"), azure_sample());
    let (lines, _) = csv_counts(&std::fs::read_to_string(&input).unwrap());
    assert_eq!(lines, 49);
    ingest_wrongly(&lake, &input, lines);
    let again = ingest_as(&lake, &input, MOONCAKE);
    assert_skipped(&again, 1);
    assert!(again.details[0].reason.as_deref().unwrap().contains("under forced format mooncake"), "{again:#?}");
    let right = ingest_as(&lake, &input, AZURE);
    assert_eq!(right.manifest_version, 2);
    assert_replaced(&lake, &input, &right, AZURE);
}

#[test]
fn detection_after_a_forced_wrong_format_replaces_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (lake, input) = (tmp.path().join("lake"), azure_sample());
    ingest_wrongly(&lake, &input, 49);
    assert_replaced(&lake, &input, &ingest_as(&lake, &input, None), None);
    // Forcing the format detection chose parses the same: still a duplicate.
    assert_skipped(&ingest_as(&lake, &input, AZURE), 2);
}

#[test]
fn a_forced_format_that_quarantines_everything_never_replaces_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let (lake, input) = (tmp.path().join("lake"), azure_sample());
    assert_eq!(ingest_as(&lake, &input, None).rows, 48);
    let s = ingest_as(&lake, &input, MOONCAKE);
    assert_eq!((s.details[0].status, s.manifest_version, s.exit_code()), (InputStatus::Rejected, 1, 1), "{s:#?}");
    assert!(
        s.details[0].reason.as_deref().unwrap().contains("kept the earlier ingest under format azure_llm (48 rows)")
    );
    assert_eq!(live_entries(&lake, &input), vec![("azure_llm".to_string(), false, 48, 0)]);
    assert_eq!((on_disk(&lake, "requests", None).0, on_disk(&lake, "_quarantine", None).0), (48, 0));
}

#[test]
fn a_recompressed_copy_under_detection_replaces_a_forced_wrong_format() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = tmp.path().join("lake");
    let plain = tmp.path().join("AzureLLMInferenceTrace_code.csv");
    std::fs::copy(azure_sample(), &plain).unwrap();
    ingest_wrongly(&lake, &plain, 49);
    let gz = tmp.path().join("AzureLLMInferenceTrace_code.csv.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut enc, &std::fs::read(&plain).unwrap()).unwrap();
    std::fs::write(&gz, enc.finish().unwrap()).unwrap();
    let s = ingest_as(&lake, &gz, None);
    assert_eq!(
        (s.details[0].status, s.rows, s.details[0].replaced.as_deref()),
        (InputStatus::Replaced, 48, Some("mooncake"))
    );
    assert!(live_entries(&lake, &plain).is_empty());
    assert_eq!(live_entries(&lake, &gz), vec![("azure_llm".to_string(), false, 48, 0)]);
    assert_eq!(on_disk(&lake, "_quarantine", None).0, 0);
    assert_eq!(
        on_disk(&lake, "requests", Some("input_tokens")),
        (48, csv_counts(&std::fs::read_to_string(&plain).unwrap()).1)
    );
    assert_skipped(&ingest_as(&lake, &gz, None), 2);
    assert_skipped(&ingest_as(&lake, &plain, None), 2);
}

/// The sample's header and its records `from..to` (0-based), as a file of its own.
fn sample_slice(dir: &Path, name: &str, from: usize, to: usize) -> PathBuf {
    let text = std::fs::read_to_string(azure_sample()).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let body: Vec<&str> = lines.skip(from).take(to - from).collect();
    let p = dir.join(name);
    std::fs::write(&p, format!("{header}\n{}\n", body.join("\n"))).unwrap();
    p
}

#[test]
fn a_grown_file_under_another_format_lands_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = tmp.path().join("lake");
    let path = sample_slice(tmp.path(), "live_code.csv", 0, 10);
    ingest_wrongly(&lake, &path, 11);
    sample_slice(tmp.path(), "live_code.csv", 0, 15);
    let grown = ingest_as(&lake, &path, None);
    assert_replaced(&lake, &path, &grown, None);
    assert_eq!(csv_counts(&std::fs::read_to_string(&path).unwrap()).0, 16, "header and 15 records, all landed");
}

#[test]
fn a_replaced_ingest_in_a_compacted_file_leaves_the_others_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = tmp.path().join("lake");
    let a = sample_slice(tmp.path(), "a_code.csv", 0, 20);
    let b = sample_slice(tmp.path(), "b_code.csv", 20, 48);
    ingest_wrongly(&lake, &a, 21);
    assert_eq!(ingest_as(&lake, &b, MOONCAKE).quarantined, 29);
    let opts = CompactOptions { small_file_bytes: 1 << 20, ..CompactOptions::default() };
    compact(&lake, &opts).unwrap();
    assert_eq!(parquet_under(&lake.join("_quarantine")).len(), 1, "the two quarantine files were merged");
    let s = ingest_as(&lake, &a, AZURE);
    assert_eq!((s.details[0].status, s.rows), (InputStatus::Replaced, 20), "{s:#?}");
    assert_eq!(on_disk(&lake, "_quarantine", None).0, 29, "b's records stay in quarantine");
    assert_eq!(on_disk(&lake, "requests", None).0, 20);
    assert_eq!(live_entries(&lake, &b), vec![("mooncake".to_string(), true, 0, 29)]);
    assert_eq!(live_entries(&lake, &a), vec![("azure_llm".to_string(), true, 20, 0)]);
}
