//! CSV per RFC 4180 through the whole ingest path: quoted separators, doubled quotes and
//! newlines (LF and CRLF) inside quoted fields land as one row each, with the line number of
//! the record's first line, whatever the chunk size; an unterminated quote is quarantined.
//! Expected values are written out from the input text, not read back from tapeout.

use std::path::Path;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::Int64Type;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use tapeout_lake::{IngestOptions, IngestSummary, ingest, load_snapshot};

const HEADER: &str = "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n";

fn run_with(lake: &Path, input: &Path, opts: IngestOptions) -> IngestSummary {
    let args = vec![input.display().to_string()];
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(ingest(lake, &args, opts)).unwrap()
}

/// These inputs are whole files, some without a final newline: no settle time (`--final`).
fn complete() -> IngestOptions {
    IngestOptions { settle: None, ..IngestOptions::default() }
}

fn tiny_chunks() -> IngestOptions {
    IngestOptions { chunk_bytes: 64, parse_threads: 3, ..complete() }
}

/// Ingests `csv` (as file `file`) into a lake with one chunk and into one with 64-byte chunks;
/// `check` sees each lake (named "one" or "tiny") and its summary.
fn each_chunking(csv: &str, file: &str, mut check: impl FnMut(&str, &Path, &IngestSummary)) {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join(file);
    std::fs::write(&input, csv).unwrap();
    for (name, opts) in [("one", complete()), ("tiny", tiny_chunks())] {
        let lake = tmp.path().join(name);
        let s = run_with(&lake, &input, opts);
        check(name, &lake, &s);
    }
}

fn read_table(lake: &Path, table: &str) -> Vec<RecordBatch> {
    let snap = load_snapshot(lake, None).unwrap();
    let mut out = Vec::new();
    for f in snap.table_files(table) {
        let file = std::fs::File::open(lake.join(&f.path)).unwrap();
        out.extend(ParquetRecordBatchReaderBuilder::try_new(file).unwrap().build().unwrap().map(|b| b.unwrap()));
    }
    out
}

/// (line, text column, integer column) of every row of `table`, sorted by line.
fn rows(lake: &Path, table: &str, text: &str, int: Option<&str>) -> Vec<(i64, String, i64)> {
    let mut v = Vec::new();
    for b in read_table(lake, table) {
        let line = b.column_by_name("line").unwrap().as_primitive::<Int64Type>();
        let s = b.column_by_name(text).unwrap().as_string::<i32>();
        for i in 0..b.num_rows() {
            let n = int.map_or(0, |c| b.column_by_name(c).unwrap().as_primitive::<Int64Type>().value(i));
            v.push((line.value(i), s.value(i).to_string(), n));
        }
    }
    v.sort();
    v
}

fn row(line: i64, text: &str, n: i64) -> (i64, String, i64) {
    (line, text.to_string(), n)
}

#[test]
fn quoted_separators_quotes_and_newlines_land_as_one_row_each() {
    let csv = format!(
        "{HEADER}\
0,\"gpt,4\",10,1,11,Conversation log\n\
1,\"say \"\"hi\"\"\",20,2,22,Conversation log\n\
2,\"two\nlines\",30,3,33,\"API\r\nlog\"\r\n\
3,ChatGPT,\"40\",4,44,Conversation log\r\n\
\n\
4,\"\",50,5,55,Conversation log\n"
    );
    each_chunking(&csv, "BurstGPT_quoted.csv", |name, lake, s| {
        assert_eq!((s.rows, s.quarantined, s.exit_code()), (5, 0, 0), "{name}: {s:?}");
        // Line 4's record spans lines 4-6; the blank line 8 is skipped.
        assert_eq!(
            rows(lake, "requests", "model", Some("input_tokens")),
            vec![
                row(2, "gpt,4", 10),
                row(3, "say \"hi\"", 20),
                row(4, "two\nlines", 30),
                row(7, "ChatGPT", 40),
                row(9, "", 50),
            ],
            "{name}"
        );
        let logs: Vec<(i64, String, i64)> = rows(lake, "requests", "log_type", None);
        assert_eq!(logs[2], row(4, "API\r\nlog", 0), "{name}");
        assert_eq!(logs[3], row(7, "Conversation log", 0), "{name}");
    });
}

#[test]
fn a_record_straddling_chunk_boundaries_lands_once() {
    // Each record's model holds 3 newlines and 90 bytes: every 64-byte chunk cut falls inside
    // a quoted field unless the chunker respects quotes.
    let n = 200;
    let mut csv = HEADER.to_string();
    let mut expected = Vec::new();
    for i in 0..n {
        let model = format!("m{i:03}\n{}\n{}\n,\"end", "x".repeat(40), "y".repeat(30));
        csv.push_str(&format!("{i},\"{}\",{},1,2,Conversation log\n", model.replace('"', "\"\""), 100 + i));
        expected.push(row(2 + 4 * i as i64, &model, 100 + i as i64));
    }
    each_chunking(&csv, "BurstGPT_long_fields.csv", |name, lake, s| {
        assert_eq!((s.rows, s.quarantined), (n as u64, 0), "{name}: {s:?}");
        assert_eq!(rows(lake, "requests", "model", Some("input_tokens")), expected, "{name}");
    });
}

#[test]
fn an_unterminated_quote_at_the_end_is_quarantined_and_the_rows_before_land() {
    let csv = format!(
        "{HEADER}\
0,a,10,1,11,Conversation log\n\
1,\"b\nc\",20,2,22,Conversation log\n\
2,\"open,30,3,33,Conversation log\n\
3,d,40,4,44,Conversation log\n"
    );
    each_chunking(&csv, "BurstGPT_open_quote.csv", |name, lake, s| {
        assert_eq!((s.rows, s.quarantined, s.exit_code()), (2, 1, 2), "{name}: {s:?}");
        assert_eq!(rows(lake, "requests", "model", Some("input_tokens")), vec![row(2, "a", 10), row(3, "b\nc", 20)]);
        let q = rows(lake, "quarantine", "reason", None);
        assert_eq!(q.len(), 1, "{name}");
        assert_eq!(q[0].0, 5, "{name}: the record starts on line 5");
        assert!(q[0].1.starts_with("unterminated quoted field"), "{name}: {}", q[0].1);
        let raw = rows(lake, "quarantine", "raw", None);
        assert_eq!(raw[0].1, "2,\"open,30,3,33,Conversation log\n3,d,40,4,44,Conversation log\n", "{name}");
    });
}

#[test]
fn azure_quoted_crlf_records_keep_exact_line_numbers() {
    let csv = "TIMESTAMP,ContextTokens,GeneratedTokens\r\n\
\"2023-11-16 18:17:03.9799600\",\"4808\",10\r\n\
2023-11-16 18:17:04.0319600,\"3,180\",8\r\n\
2023-11-16 18:17:05,\"3\r\n1\",8\r\n\
2023-11-16 18:17:06,7,\"\"\"1\"\"\"\r\n\
2023-11-16 18:17:07,9,2";
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("AzureLLMInferenceTrace_code.csv");
    std::fs::write(&input, csv).unwrap();
    let lake = tmp.path().join("lake");
    let s = run_with(&lake, &input, tiny_chunks());
    assert_eq!((s.rows, s.quarantined), (2, 3), "{s:?}");
    assert_eq!(
        rows(&lake, "requests", "file", Some("input_tokens")).iter().map(|r| (r.0, r.2)).collect::<Vec<_>>(),
        [(2, 4808), (7, 9)]
    );
    let q = rows(&lake, "quarantine", "reason", None);
    assert_eq!(q, vec![row(3, "not a number", 0), row(4, "not a number", 0), row(6, "not a number", 0)]);
}
