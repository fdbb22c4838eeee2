//! The bad-input corpus: every kind of broken input the reliability issue lists, each ingested
//! beside one good file. For each case: the exit status, the message (naming the file, and the
//! line or record and field where there is one), the quarantined records with their reasons, the
//! good rows of the bad file and every row of the good file kept, and counts that add up. No case
//! may panic (a panic would exit 101 and fail the exit-status assertion).

use std::io::Write;
use std::path::Path;

use crate::common::{sql_csv, tapeout, text};

const HEADER: &str = "TIMESTAMP,ContextTokens,GeneratedTokens\n";

/// `n` good Azure records from second `start`, input tokens 100, 101, ...
fn records(n: usize, start: usize) -> String {
    (0..n).map(|i| format!("2023-11-16 18:00:{:02}.5000000,{},{}\n", (start + i) % 60, 100 + i, 1 + i % 5)).collect()
}

/// Two good records, `bad` as line 4, two more good records.
fn with_bad_line(bad: &[u8]) -> Vec<u8> {
    let mut v = format!("{HEADER}{}", records(2, 0)).into_bytes();
    v.extend_from_slice(bad);
    v.push(b'\n');
    v.extend_from_slice(records(2, 10).as_bytes());
    v
}

/// What one case must give.
struct Expect {
    /// Exit status of `tapeout ingest CASE GOOD`.
    exit: i32,
    /// Rows of the case file that land (all tables).
    rows: u64,
    /// Quarantined records of the case file: (line or record, field, reason substring).
    quarantine: Vec<(i64, &'static str, &'static str)>,
    /// For a rejected file: a substring of the reason (printed after the file's path).
    rejected: Option<&'static str>,
}

const GOOD_ROWS: u64 = 5;

/// A case of two good records, `bad` as line 4 and two more good records: line 4 is quarantined
/// (`field`, `reason`), the other four land, and the ingest exits 2.
fn bad_line_case(
    name: &'static str,
    bad: &[u8],
    field: &'static str,
    reason: &'static str,
) -> (&'static str, Vec<u8>, Expect) {
    (name, with_bad_line(bad), Expect { exit: 2, rows: 4, quarantine: vec![(4, field, reason)], rejected: None })
}

fn ingest_case(dir: &Path, name: &str, want: &Expect) {
    let lake = dir.join(format!("lake_{name}"));
    let (l, case) = (lake.to_str().unwrap(), dir.join(name));
    let good = dir.join("good_code.csv");
    let o = tapeout(&["ingest", "-q", "--json", "--lake", l, case.to_str().unwrap(), good.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(want.exit), "{name}: {}", text(&o));
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{name}: {e} {}", text(&o)));
    let details = s["details"].as_array().unwrap();
    let detail = details.iter().find(|d| d["path"].as_str().unwrap().ends_with(name)).unwrap();
    let good_detail = details.iter().find(|d| d["path"].as_str().unwrap().ends_with("good_code.csv")).unwrap();
    assert_eq!(good_detail["rows"].as_u64(), Some(GOOD_ROWS), "{name}: the good file lands whole");
    assert_eq!(detail["rows"].as_u64(), Some(want.rows), "{name}: {detail}");
    assert_eq!(s["rows"].as_u64(), Some(want.rows + GOOD_ROWS), "{name}");
    assert_eq!(s["quarantined"].as_u64(), Some(want.quarantine.len() as u64), "{name}");
    match want.rejected {
        Some(reason) => {
            assert_eq!(detail["status"], "rejected", "{name}");
            let got = detail["reason"].as_str().unwrap();
            assert!(got.contains(reason), "{name}: reason `{got}`");
            // The text summary names the file with the reason.
            let t = tapeout(&["ingest", "-q", "--lake", l, case.to_str().unwrap()]);
            let line = format!("rejected  {}: ", case.display());
            assert!(String::from_utf8_lossy(&t.stderr).contains(&line), "{name}: {}", text(&t));
        }
        None => assert_ne!(detail["status"], "rejected", "{name}"),
    }
    // Quarantined records: in the lake, with line and field and reason, for the case file.
    let q = tapeout(&[
        "sql",
        "--lake",
        l,
        "--format",
        "ndjson",
        "select file, line, coalesce(field, '') as field, reason from quarantine order by line",
    ]);
    let got: Vec<serde_json::Value> =
        String::from_utf8_lossy(&q.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    if want.quarantine.is_empty() {
        assert!(got.is_empty() || !q.status.success(), "{name}: {got:?}");
        return;
    }
    assert!(q.status.success(), "{name}: {}", text(&q));
    assert_eq!(got.len(), want.quarantine.len(), "{name}: {got:?}");
    for (g, (line, field, reason)) in got.iter().zip(&want.quarantine) {
        assert!(g["file"].as_str().unwrap().ends_with(name), "{name}: {g}");
        assert_eq!((g["line"].as_i64(), g["field"].as_str()), (Some(*line), Some(*field)), "{name}: {g}");
        assert!(g["reason"].as_str().unwrap().contains(reason), "{name}: {g}");
    }
}

#[test]
fn every_bad_input_gets_a_clear_answer_and_every_good_row_lands() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(d.join("good_code.csv"), format!("{HEADER}{}", records(5, 0))).unwrap();

    let kineto_events = r#"{"schemaVersion": 1, "traceEvents": [
 {"ph": "X", "cat": "kernel", "name": "k_ok", "ts": 10, "dur": 5, "pid": 0, "tid": 7, "args": {"stream": 7}},
 {"ph": "X", "cat": "kernel", "name": "k_no_ts", "dur": 5, "pid": 0, "tid": 7, "args": {"stream": 7}},
 {"ph": "X", "cat": "kernel", "name": "k_no_dur", "ts": 20, "pid": 0, "tid": 7, "args": {"stream": 7}},
 {"ph": "X", "cat": "kernel", "name": "k_neg_dur", "ts": 30, "dur": -4, "pid": 0, "tid": 7, "args": {"stream": 7}},
 {"ph": "Q", "cat": "kernel", "name": "k_unknown_ph", "ts": 40, "dur": 4, "pid": 0, "tid": 7, "args": {"stream": 7}},
 {"ph": "X", "cat": "kernel", "name": "k_ok2", "ts": 50, "dur": 5, "pid": 0, "tid": 7, "args": {"stream": 7}}
]}"#;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(format!("{HEADER}{}", records(2000, 0)).as_bytes()).unwrap();
    let mut truncated_gz = gz.finish().unwrap();
    truncated_gz.truncate(truncated_gz.len() - 200);
    // What survives the break, decoded independently: whole lines land, the cut one is
    // quarantined with the break's description on the line after the last whole one.
    let mut prefix = Vec::new();
    let _ = std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&truncated_gz[..]), &mut prefix);
    let whole_records = prefix.iter().filter(|&&c| c == b'\n').count() as u64 - 1;
    let crlf = format!("{HEADER}{}", records(4, 0)).replace('\n', "\r\n");
    let mut bom = b"\xef\xbb\xbf".to_vec();
    bom.extend_from_slice(format!("{HEADER}{}", records(4, 0)).as_bytes());
    let mut huge = with_bad_line(b"");
    {
        // Line 4: one 100 MiB line (a number of 100 Mi digits), beyond the 16 MiB line limit.
        let at = format!("{HEADER}{}", records(2, 0)).len();
        let mut line = b"2023-11-16 18:00:09.5000000,".to_vec();
        line.resize(line.len() + (100 << 20), b'1');
        line.extend_from_slice(b",6");
        huge.splice(at..at, line);
    }

    let cases: Vec<(&str, Vec<u8>, Expect)> = vec![
        ("empty_code.csv", vec![], Expect { exit: 3, rows: 0, quarantine: vec![], rejected: Some("file is empty") }),
        ("header_only_code.csv", HEADER.into(), Expect { exit: 0, rows: 0, quarantine: vec![], rejected: None }),
        (
            "wrong_header_code.csv",
            b"TIME,IN,OUT\n2023-11-16 18:00:00.1,1,2\n".to_vec(),
            Expect {
                exit: 3,
                rows: 0,
                quarantine: vec![],
                rejected: Some("unrecognized format: line 1 is `TIME,IN,OUT`; expected an Azure LLM CSV header"),
            },
        ),
        bad_line_case("extra_column_code.csv", b"2023-11-16 18:00:09.5000000,5,6,7", "", "expected 3 fields, found 4"),
        bad_line_case("missing_column_code.csv", b"2023-11-16 18:00:09.5000000,5", "", "expected 3 fields, found 2"),
        bad_line_case("negative_code.csv", b"2023-11-16 18:00:09.5000000,-5,6", "ContextTokens", "negative value"),
        bad_line_case(
            "overflow_code.csv",
            b"2023-11-16 18:00:09.5000000,99999999999999999999999,6",
            "ContextTokens",
            "number out of range",
        ),
        bad_line_case(
            "bad_timestamp_code.csv",
            b"2023-13-45 99:00:09.5000000,5,6",
            "TIMESTAMP",
            "unparseable timestamp",
        ),
        (
            "out_of_order_code.csv",
            format!("{HEADER}{}{}", records(3, 30), records(3, 0)).into_bytes(),
            Expect { exit: 0, rows: 6, quarantine: vec![], rejected: None },
        ),
        bad_line_case("invalid_utf8_code.csv", b"2023-11-16 18:00:09.5000000,5\xff,6", "ContextTokens", "not a number"),
        ("crlf_code.csv", crlf.into_bytes(), Expect { exit: 0, rows: 4, quarantine: vec![], rejected: None }),
        ("bom_code.csv", bom, Expect { exit: 0, rows: 4, quarantine: vec![], rejected: None }),
        (
            "truncated_code.csv.gz",
            truncated_gz,
            Expect {
                exit: 2,
                rows: whole_records,
                quarantine: vec![(whole_records as i64 + 2, "", "(incomplete deflate stream)")],
                rejected: None,
            },
        ),
        (
            "garbage_code.csv.zst",
            [&[0x28, 0xb5, 0x2f, 0xfd][..], &[0xa7; 64]].concat(),
            Expect {
                exit: 3,
                rows: 0,
                quarantine: vec![],
                rejected: Some("unreadable: stream broke after 0 decompressed bytes"),
            },
        ),
        (
            "trailing_garbage_trace.json",
            br#"{"traceEvents": []} garbage"#.to_vec(),
            Expect { exit: 3, rows: 0, quarantine: vec![], rejected: Some("invalid trace JSON at line 1, column 21") },
        ),
        (
            "no_events_trace.json",
            br#"{"schemaVersion": 1, "deviceProperties": []}"#.to_vec(),
            Expect {
                exit: 3,
                rows: 0,
                quarantine: vec![],
                rejected: Some("not a PyTorch profiler trace: the top-level object has no `traceEvents`"),
            },
        ),
        (
            // Records are events, numbered from 1; the unknown `ph` is ignored and counted.
            "events_trace.json",
            kineto_events.into(),
            Expect {
                exit: 2,
                rows: 3, // 2 kernels + the trace's `traces` row
                quarantine: vec![
                    (2, "ts", "complete (X) event has no `ts`"),
                    (3, "dur", "complete (X) event has no `dur`"),
                    (4, "dur", "negative duration: -4000 ns"),
                ],
                rejected: None,
            },
        ),
        (
            "huge_line_code.csv",
            huge,
            Expect {
                exit: 2,
                rows: 4,
                quarantine: vec![(4, "", "line is 104857630 bytes, longer than the 16777216-byte limit")],
                rejected: None,
            },
        ),
    ];
    for (name, bytes, _) in &cases {
        std::fs::write(d.join(name), bytes).unwrap();
    }
    for (name, _, want) in &cases {
        ingest_case(d, name, want);
    }

    // Values survive: CRLF and BOM rows read exactly; out-of-order rows all land, sorted; the
    // Kineto trace's events add up (6 = 2 kernels + 3 rejects + 1 unknown `ph`).
    let first_row = |case: &str, q: &str| {
        let l = d.join(format!("lake_{case}"));
        let o = sql_csv(l.to_str().unwrap(), q);
        assert!(o.status.success(), "{case}: {}", text(&o));
        String::from_utf8_lossy(&o.stdout).lines().nth(1).unwrap_or_default().to_string()
    };
    let sums = "select sum(input_tokens), sum(output_tokens) from requests where file not like '%good%'";
    assert_eq!(first_row("crlf_code.csv", sums), "406,10");
    assert_eq!(first_row("bom_code.csv", sums), "406,10");
    let order = "select string_agg(cast(line as varchar), ' ' order by arrival_time) from requests \
                 where file like '%order%'";
    assert_eq!(first_row("out_of_order_code.csv", order), "5 6 7 2 3 4");
    let counts = "select events, unknown_ph, kernels, rejects from traces";
    assert_eq!(first_row("events_trace.json", counts), "6,1,2,3");
}

/// A FIFO, a dangling symlink and symlink loops inside an input directory: each is named with
/// what it is, nothing blocks or loops, the directory's good file lands.
#[test]
fn special_files_in_an_input_directory_are_named_and_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("in");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("ok_code.csv"), format!("{HEADER}{}", records(3, 0))).unwrap();
    let fifo = dir.join("pipe_code.csv");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc_mkfifo(c.as_ptr(), 0o644) }, 0);
    std::os::unix::fs::symlink(tmp.path().join("nowhere.csv"), dir.join("dangling_code.csv")).unwrap();
    std::os::unix::fs::symlink(dir.join("b_code.csv"), dir.join("a_code.csv")).unwrap();
    std::os::unix::fs::symlink(dir.join("a_code.csv"), dir.join("b_code.csv")).unwrap();
    std::os::unix::fs::symlink("..", dir.join("sub/up")).unwrap();
    let lake = tmp.path().join("lake");
    let o = tapeout(&["ingest", "-q", "--json", "--lake", lake.to_str().unwrap(), dir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!((s["rows"].as_u64(), s["rejected"].as_u64()), (Some(3), Some(5)), "{s}");
    let reason = |suffix: &str| -> String {
        let d = s["details"].as_array().unwrap().iter().find(|d| d["path"].as_str().unwrap().ends_with(suffix));
        d.unwrap_or_else(|| panic!("{suffix}: {s}"))["reason"].as_str().unwrap().to_string()
    };
    assert_eq!(reason("pipe_code.csv"), "not a regular file (a FIFO)");
    assert_eq!(reason("dangling_code.csv"), "dangling symbolic link");
    assert_eq!(reason("a_code.csv"), "symbolic link loop");
    assert_eq!(reason("b_code.csv"), "symbolic link loop");
    assert_eq!(reason("sub/up"), "symbolic link loop (directory already visited)");
}

unsafe extern "C" {
    #[link_name = "mkfifo"]
    fn libc_mkfifo(path: *const std::ffi::c_char, mode: u32) -> i32;
}
