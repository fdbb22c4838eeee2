//! Unit tests over hand-written inputs with hand-computed expectations.

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Float64Type, Int64Type, TimestampNanosecondType};

use super::*;

fn opts() -> ParseOptions {
    ParseOptions::default()
}

fn i64s(b: &RecordBatch, col: &str) -> Vec<Option<i64>> {
    b.column_by_name(col).unwrap().as_primitive::<Int64Type>().iter().collect()
}

#[test]
fn detects_every_format_from_content() {
    assert_eq!(detect(b"TIMESTAMP,ContextTokens,GeneratedTokens\n"), Ok(SourceFormat::AzureLlm));
    assert_eq!(
        detect(b"\xEF\xBB\xBFTIMESTAMP,NumImages,ContextTokens,GeneratedTokens\r\n"),
        Ok(SourceFormat::AzureLlm)
    );
    assert_eq!(
        detect(b"Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"),
        Ok(SourceFormat::BurstGpt)
    );
    assert_eq!(detect(b"{\"timestamp\": 0, \"input_length\": 10, \"output_length\": 2}\n"), Ok(SourceFormat::Mooncake));
    assert_eq!(detect(b"{\"schemaVersion\": 1, \"traceEvents\": []}"), Ok(SourceFormat::Kineto));
    assert_eq!(detect(b"  \n"), Err(FormatError::Empty));
    assert_eq!(detect(b"a,b,c\n1,2,3\n").unwrap_err(), FormatError::Unrecognized { line1: "a,b,c".into() });
}

#[test]
fn azure_2023_rows_and_values() {
    let csv = b"TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03.9799600,4808,10\n2023-11-16 18:17:04.0319600,3180,8\n";
    let p = parse_all(csv, None, &opts(), Some("code"), "a_code.csv").unwrap();
    assert_eq!(p.format, SourceFormat::AzureLlm);
    assert!(p.rejects.is_empty());
    let b = &p.batch;
    assert_eq!(b.num_rows(), 2);
    assert_eq!(i64s(b, "input_tokens"), vec![Some(4808), Some(3180)]);
    assert_eq!(i64s(b, "output_tokens"), vec![Some(10), Some(8)]);
    assert_eq!(i64s(b, "line"), vec![Some(2), Some(3)]);
    let ts = b.column_by_name("arrival_time").unwrap().as_primitive::<TimestampNanosecondType>();
    assert_eq!(ts.value(0), 1_700_158_623_979_960_000);
    assert_eq!(ts.value(1) - ts.value(0), 52_000_000);
    assert_eq!(b.column_by_name("workload").unwrap().as_string::<i32>().value(1), "code");
    assert_eq!(b.column_by_name("file").unwrap().as_string::<i32>().value(0), "a_code.csv");
    assert_eq!(b.column_by_name("cached_tokens").unwrap().null_count(), 2);
    assert_eq!(b.column_by_name("failed").unwrap().null_count(), 2);
}

#[test]
fn azure_2024_and_2025_variants() {
    let csv = b"TIMESTAMP,ContextTokens,GeneratedTokens\r\n2024-05-10 00:00:00.009930+00:00,100,5\r\n2024-05-10 00:00:01+00:00,7,1\r\n";
    let p = parse_all(csv, None, &opts(), None, "w.csv").unwrap();
    assert_eq!(p.batch.num_rows(), 2);
    let ts = p.batch.column_by_name("arrival_time").unwrap().as_primitive::<TimestampNanosecondType>();
    assert_eq!(ts.value(0), 1_715_299_200_009_930_000);
    assert_eq!(ts.value(1), 1_715_299_201_000_000_000);
    // 2025 multimodal: extra NumImages, columns matched by name whatever their order.
    let mm = b"TIMESTAMP,NumImages,ContextTokens,GeneratedTokens\n2025-03-01 10:00:00.5+00:00,2,1500,40\n";
    let p = parse_all(mm, None, &opts(), None, "m.csv").unwrap();
    assert_eq!(i64s(&p.batch, "num_images"), vec![Some(2)]);
    assert_eq!(i64s(&p.batch, "input_tokens"), vec![Some(1500)]);
    assert_eq!(i64s(&p.batch, "output_tokens"), vec![Some(40)]);
}

#[test]
fn azure_bad_rows_are_rejected_with_line_and_field() {
    let csv = b"TIMESTAMP,ContextTokens,GeneratedTokens\n\
2023-11-16 18:17:03.9799600,4808,10\n\
2023-11-16 18:17:04.0319600,-5,8\n\
not a time,1,1\n\
2023-11-16 18:17:05,1\n\
2023-11-16 18:17:06,99999999999999999999,1\n\
2023-11-16 18:17:07,1,\xff\n\
2023-11-16 18:17:08,1,2\n";
    let p = parse_all(csv, None, &opts(), None, "x.csv").unwrap();
    assert_eq!(p.batch.num_rows(), 2);
    assert_eq!(i64s(&p.batch, "line"), vec![Some(2), Some(8)]);
    let got: Vec<(u64, Option<&str>, &str)> =
        p.rejects.iter().map(|r| (r.line, r.field.as_deref(), r.reason.as_str())).collect();
    assert_eq!(
        got,
        vec![
            (3, Some("ContextTokens"), "negative value"),
            (4, Some("TIMESTAMP"), "unparseable timestamp"),
            (5, None, "expected 3 fields, found 2"),
            (6, Some("ContextTokens"), "number out of range"),
            (7, Some("GeneratedTokens"), "not a number"),
        ]
    );
    assert_eq!(p.rejects[4].raw, "2023-11-16 18:17:07,1,\u{FFFD}");
}

#[test]
fn azure_missing_column_is_a_file_error() {
    let err = RequestParser::new(SourceFormat::AzureLlm, Some(b"TIMESTAMP,ContextTokens"), &opts()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "line 1: azure_llm header has no `GeneratedTokens` column (header: `TIMESTAMP,ContextTokens`)"
    );
}

#[test]
fn burstgpt_both_releases() {
    let old = b"Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n\
5,ChatGPT,472,18,490,Conversation log\n\
45,GPT-4,1087,0,1087,API log\n";
    let origin = 1_700_000_000_000_000_000;
    let p = parse_all(old, None, &ParseOptions { time_origin_ns: origin }, None, "BurstGPT_1.csv").unwrap();
    let b = &p.batch;
    assert_eq!(b.num_rows(), 2);
    let ts = b.column_by_name("arrival_time").unwrap().as_primitive::<TimestampNanosecondType>();
    assert_eq!(ts.value(0), origin + 5_000_000_000);
    assert_eq!(ts.value(1), origin + 45_000_000_000);
    assert_eq!(b.column_by_name("model").unwrap().as_string::<i32>().value(1), "GPT-4");
    let failed = b.column_by_name("failed").unwrap().as_boolean();
    assert_eq!((failed.value(0), failed.value(1)), (false, true));
    assert_eq!(b.column_by_name("log_type").unwrap().as_string::<i32>().value(0), "Conversation log");
    assert_eq!(b.column_by_name("workload").unwrap().as_string::<i32>().value(0), "BurstGPT_1");

    let new = b"Timestamp,Session ID,Model,Request tokens,Response tokens,Total tokens,Log Type,Elapsed time\n\
1.5,s-1,ChatGPT,10,20,30,Conversation log,2.25\n";
    let p = parse_all(new, None, &opts(), None, "b.csv").unwrap();
    let b = &p.batch;
    assert_eq!(b.column_by_name("request_id").unwrap().as_string::<i32>().value(0), "s-1");
    let lat = b.column_by_name("latency_ms").unwrap().as_primitive::<Float64Type>().value(0);
    assert_eq!(lat, 2250.0);
    let ts = b.column_by_name("arrival_time").unwrap().as_primitive::<TimestampNanosecondType>();
    assert_eq!(ts.value(0), 1_500_000_000);
}

#[test]
fn mooncake_cached_tokens_in_file_order() {
    // Record 1: blocks 0,1 (700 tokens: 512 + 188). Record 2 reuses block 0 (512 cached) and
    // block 1 (its own last block: 1100 - 512 = 588 → capped at 512), block 2 new (76 tokens).
    // Record 3 repeats block 2 as its first block: 512 tokens (a full block in this prompt).
    let jsonl = b"{\"timestamp\": 0, \"input_length\": 700, \"output_length\": 5, \"hash_ids\": [0, 1]}\n\
{\"timestamp\": 1500, \"input_length\": 1100, \"output_length\": 7, \"hash_ids\": [0, 1, 2]}\n\
{\"timestamp\": 3000, \"input_length\": 600, \"output_length\": 1, \"hash_ids\": [2, 9]}\n\
{\"timestamp\": 3001, \"input_length\": -1, \"output_length\": 1, \"hash_ids\": []}\n\
{\"timestamp\": 3002, \"output_length\": 1}\n\
{not json\n";
    let p = parse_all(jsonl, None, &opts(), None, "conversation_trace.jsonl").unwrap();
    assert_eq!(p.format, SourceFormat::Mooncake);
    assert_eq!(i64s(&p.batch, "cached_tokens"), vec![Some(0), Some(1024), Some(512)]);
    let ts = p.batch.column_by_name("arrival_time").unwrap().as_primitive::<TimestampNanosecondType>();
    assert_eq!(ts.value(1), 1_500_000_000);
    let hashes = p.batch.column_by_name("block_hashes").unwrap().as_list::<i32>();
    assert_eq!(hashes.value(1).as_primitive::<Int64Type>().values().to_vec(), vec![0, 1, 2]);
    let got: Vec<(u64, Option<&str>)> = p.rejects.iter().map(|r| (r.line, r.field.as_deref())).collect();
    assert_eq!(got, vec![(4, Some("input_length")), (5, Some("input_length")), (6, None)]);
    assert!(p.rejects[2].reason.starts_with("invalid JSON record"));
    assert_eq!(p.batch.column_by_name("workload").unwrap().as_string::<i32>().value(0), "conversation_trace");
}

#[test]
fn chunks_parse_independently_and_agree_with_whole_file() {
    let mut csv = b"TIMESTAMP,ContextTokens,GeneratedTokens\n".to_vec();
    for i in 0..100 {
        csv.extend_from_slice(format!("2023-11-16 18:17:{:02}.5,{},{}\n", i % 60, i * 3, i).as_bytes());
    }
    let whole = parse_all(&csv, None, &opts(), None, "f.csv").unwrap();
    let header_end = csv.iter().position(|&c| c == b'\n').unwrap() + 1;
    let body = &csv[header_end..];
    let cut = body.iter().enumerate().filter(|(_, c)| **c == b'\n').nth(40).unwrap().0 + 1;
    let parser = RequestParser::new(SourceFormat::AzureLlm, Some(&csv[..header_end - 1]), &opts()).unwrap();
    let (a, _) = parser.parse_chunk(&body[..cut], 2);
    let (b, _) = parser.parse_chunk(&body[cut..], 2 + 41);
    let (a, b) = (a.finish(None, "f.csv"), b.finish(None, "f.csv"));
    assert_eq!(a.num_rows() + b.num_rows(), 100);
    assert_eq!(i64s(&b, "line")[0], Some(43));
    let all: Vec<Option<i64>> = i64s(&a, "input_tokens").into_iter().chain(i64s(&b, "input_tokens")).collect();
    assert_eq!(all, i64s(&whole.batch, "input_tokens"));
}

#[test]
fn workload_names() {
    assert_eq!(request_workload("/x/AzureLLMInferenceTrace_code.csv"), "code");
    assert_eq!(request_workload("AzureLLMInferenceTrace_conv.csv.gz"), "conversation");
    assert_eq!(request_workload("AzureLLMInferenceTrace_code_1week.csv.zst"), "code");
    assert_eq!(request_workload("conversation_trace.jsonl"), "conversation_trace");
    assert_eq!(request_workload("BurstGPT_without_fails_2.csv"), "BurstGPT_without_fails_2");
    assert_eq!(request_workload("codec.csv"), "codec");
}

#[test]
fn one_workload_rule_per_format() {
    let w = |f, p: &str| default_workload(f, std::path::Path::new(p));
    assert_eq!(w(SourceFormat::AzureLlm, "/x/AzureLLMInferenceTrace_code.csv"), "code");
    assert_eq!(w(SourceFormat::BurstGpt, "/t/BurstGPT_without_fails_2.csv"), "BurstGPT_without_fails_2");
    assert_eq!(w(SourceFormat::Mooncake, "conversation_trace.jsonl"), "conversation_trace");
    assert_eq!(w(SourceFormat::Kineto, "/s/kineto/train_2rank/rank0.json"), "train_2rank");
    assert_eq!(w(SourceFormat::Kineto, "/s/kineto/nccl.json.gz"), "kineto");
    assert_eq!(w(SourceFormat::Kineto, "rank0.json"), "default");
}

#[test]
fn one_header_rule() {
    let s = SourceFormat::AzureLlm.split_header(b"\xEF\xBB\xBF\n \r\nTIMESTAMP,a\r\n1,2\n", 1).unwrap();
    assert_eq!((s.header, s.body, s.body_first_line), (Some(&b"TIMESTAMP,a"[..]), &b"1,2\n"[..], 4));
    let s = SourceFormat::BurstGpt.split_header(b"Timestamp", 1).unwrap();
    assert_eq!((s.header, s.body, s.body_first_line), (Some(&b"Timestamp"[..]), &b""[..], 2));
    assert_eq!(SourceFormat::AzureLlm.split_header(b"\n  \n", 1), Err(FormatError::Empty));
    let s = SourceFormat::Mooncake.split_header(b"\xEF\xBB\xBF{}\n", 7).unwrap();
    assert_eq!((s.header, s.body, s.body_first_line), (None, &b"{}\n"[..], 7));
    let kineto = b"{\"traceEvents\": []}";
    assert_eq!(
        parse_all(kineto, None, &ParseOptions::default(), None, "t.json").unwrap_err(),
        FormatError::NotRequests { format: SourceFormat::Kineto }
    );
}
