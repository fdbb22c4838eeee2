//! Hand-written traces with hand-computed expectations, plus an opt-in pass over the real traces
//! in `/work/shared/traces` (set `TAPEOUT_REAL_TRACES`).

use std::convert::Infallible;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Float64Type, Int32Type, Int64Type, TimestampNanosecondType};

use super::*;

const T0: &str = "4458676522"; // µs prefix: events sit at ~4.46e12 µs, like nccl_data.json.gz

fn tiny_trace() -> String {
    let t = |offset: &str| format!("{T0}{offset}");
    format!(
        r#"{{
  "schemaVersion": 1,
  "traceEvents": [
    {{"ph": "X", "cat": "user_annotation", "name": "ProfilerStep#4", "pid": 10, "tid": 10, "ts": {s4}, "dur": 100}},
    {{"ph": "X", "cat": "user_annotation", "name": "ProfilerStep#5", "pid": 10, "tid": 10, "ts": {s5}, "dur": 100}},
    {{"ph": "X", "cat": "cpu_op", "name": "aten::linear", "pid": 10, "tid": 10, "ts": {lin}, "dur": 20, "args": {{"External id": 1}}}},
    {{"ph": "X", "cat": "cpu_op", "name": "aten::addmm", "pid": 10, "tid": 10, "ts": {mm}, "dur": 10,
      "args": {{"External id": 2, "Input Dims": [[32], [16, 64], [64, 32], [], []],
               "Input type": ["float", "float", "float", "Scalar", "Scalar"]}}}},
    {{"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": 10, "tid": 10, "ts": {launch}, "dur": 2,
      "args": {{"correlation": 100, "External id": 2}}}},
    {{"ph": "X", "cat": "kernel", "name": "ampere_sgemm_64x32_nn", "pid": 0, "tid": 7, "ts": {k}, "dur": 2.5005,
      "args": {{"device": 0, "stream": 7, "correlation": 100, "External id": 2, "grid": [2, 4, 1], "block": [128, 1, 1],
               "registers per thread": 64, "shared memory": 1024, "est. achieved occupancy %": 50}}}},
    {{"ph": "X", "cat": "cpu_op", "name": "aten::copy_", "pid": 10, "tid": 10, "ts": {cp}, "dur": 5,
      "args": {{"External id": 3, "Input Dims": [[1024], [1024], []], "Input type": ["float", "float", "Scalar"]}}}},
    {{"ph": "X", "cat": "cuda_runtime", "name": "cudaMemcpyAsync", "pid": 10, "tid": 10, "ts": {cpl}, "dur": 1,
      "args": {{"correlation": 101}}}},
    {{"ph": "X", "cat": "gpu_memcpy", "name": "Memcpy DtoH (Device -> Pageable)", "pid": 0, "tid": 7, "ts": {mc}, "dur": 1,
      "args": {{"device": 0, "stream": 7, "correlation": 101, "bytes": 4096}}}},
    {{"ph": "X", "cat": "kernel", "name": "ncclDevKernel_AllReduce_Sum_f32_RING_LL(ncclDevKernelArgsStorage<4096ul>)",
      "pid": 0, "tid": 20, "ts": {nc}, "dur": 30,
      "args": {{"device": 0, "stream": 20, "correlation": 102, "Collective name": "allreduce", "In msg nelems": 1024,
               "Out msg nelems": 1024, "Group size": 8, "dtype": "Float", "Process Group Name": "0",
               "Process Group Description": "default_pg"}}}},
    {{"ph": "X", "cat": "kernel", "name": "no_dur_kernel", "pid": 0, "tid": 7, "ts": {nc}}},
    {{"ph": "X", "cat": "kernel", "name": "string_ts", "pid": 0, "tid": 7, "ts": "abc", "dur": 1}},
    {{"ph": "Z", "cat": "mystery", "name": "unknown phase"}},
    {{"ph": "X", "cat": "kernel", "name": "negative", "pid": 0, "tid": 7, "ts": {nc}, "dur": -1}},
    {{"ph": "X", "cat": "gpu_user_annotation", "name": "ProfilerStep#5", "pid": 0, "tid": 20, "ts": {g5}, "dur": 100}},
    {{"ph": "X", "cat": "Runtime", "name": "cudaLaunchKernel", "pid": "10", "tid": "10", "ts": {old}, "dur": 1,
      "args": {{"correlation": 103, "external id": 3}}}},
    {{"ph": "X", "cat": "Kernel", "name": "void at::native::vectorized_elementwise_kernel<4, at::native::FillFunctor<float>>()",
      "pid": 0, "tid": "stream 7", "ts": {fk}, "dur": 1, "args": {{"device": 0, "stream": 7, "correlation": 103, "external id": 3}}}}
  ],
  "deviceProperties": [{{"id": 0, "name": "NVIDIA A100", "computeMajor": 8, "computeMinor": 0, "numSms": 108,
                         "totalGlobalMem": 42297524224}}],
  "distributedInfo": {{"backend": "nccl", "rank": 3, "world_size": 8}},
  "baseTimeNanoseconds": 1711964646000000000
}}"#,
        s4 = t("000"),
        s5 = t("100"),
        lin = t("010"),
        mm = t("012"),
        launch = t("015.5"),
        k = t("690.655"),
        cp = t("150"),
        cpl = t("151"),
        mc = t("700"),
        nc = t("810"),
        g5 = t("800"),
        old = t("152"),
        fk = t("720"),
    )
}

fn collect(bytes: &[u8], batch_rows: usize) -> (Vec<KinetoBatch>, KinetoReport) {
    let mut out = Vec::new();
    let report = parse_kineto(bytes, "tiny.json", &CategoryRules::default(), batch_rows, &mut |b| {
        out.push(b);
        Ok::<(), Infallible>(())
    })
    .unwrap();
    (out, report)
}

fn kernels(batches: &[KinetoBatch]) -> RecordBatch {
    let parts: Vec<RecordBatch> =
        batches.iter().filter_map(|b| if let KinetoBatch::Kernels(k) = b { Some(k.clone()) } else { None }).collect();
    arrow::compute::concat_batches(&kernels_schema(), &parts).unwrap()
}

fn strs(b: &RecordBatch, col: &str) -> Vec<Option<String>> {
    b.column_by_name(col).unwrap().as_string::<i32>().iter().map(|s| s.map(str::to_string)).collect()
}

fn i64s(b: &RecordBatch, col: &str) -> Vec<Option<i64>> {
    b.column_by_name(col).unwrap().as_primitive::<Int64Type>().iter().collect()
}

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

#[test]
fn tiny_trace_rows_links_and_values() {
    let text = tiny_trace();
    let (batches, report) = collect(text.as_bytes(), 2);
    let sizes: Vec<(char, usize)> = batches
        .iter()
        .map(|b| match b {
            KinetoBatch::Devices(d) => ('d', d.num_rows()),
            KinetoBatch::Kernels(k) => ('k', k.num_rows()),
            KinetoBatch::Ops(o) => ('o', o.num_rows()),
        })
        .collect();
    // 4 GPU rows in batches of 2; 5 CPU-side ops (2 steps, linear, addmm, copy_) in 2 + 2 + 1.
    // Pass 2 writes each table's batch when it fills, so the order follows the file's events:
    // four ops come before the first kernel (event 6).
    assert_eq!(sizes, vec![('d', 1), ('o', 2), ('o', 2), ('k', 2), ('k', 2), ('o', 1)]);
    let k = kernels(&batches);
    assert_eq!(i64s(&k, "event_index"), vec![Some(6), Some(9), Some(10), Some(17)]);
    assert_eq!(strs(&k, "category"), vec![s("gemm"), s("memcpy_dtoh"), s("communication"), s("elementwise")]);
    // The third is an `ncclDevKernel_*`: HTA 0.5's `^nccl.*Kernel` makes it COMMUNICATION too.
    assert_eq!(strs(&k, "hta_category"), vec![s("COMPUTATION"), s("MEMORY"), s("COMMUNICATION"), s("COMPUTATION")]);
    // Exact ns: 4458676522690.655 µs, dur 2.5005 µs rounds half away from zero.
    assert_eq!(i64s(&k, "start_ns")[0], Some(4_458_676_522_690_655));
    assert_eq!(i64s(&k, "dur_ns"), vec![Some(2_501), Some(1_000), Some(30_000), Some(1_000)]);
    let st = k.column_by_name("start_time").unwrap().as_primitive::<TimestampNanosecondType>();
    assert_eq!(st.value(0), 1_711_964_646_000_000_000 + 4_458_676_522_690_655);
    // Linking: gemm via correlation to the innermost op (addmm, not linear); the 2021 kernel via
    // a `Runtime` event whose tid is the string "10".
    assert_eq!(strs(&k, "op"), vec![s("aten::addmm"), s("aten::copy_"), None, s("aten::copy_")]);
    assert_eq!(strs(&k, "op_link"), vec![s("correlation"), s("correlation"), None, s("correlation")]);
    assert_eq!(i64s(&k, "external_id"), vec![Some(2), None, None, Some(3)]);
    // addmm M=16 K=64 N=32: 2·16·32·64 FLOPs + 16·32 bias adds; (32 + 16·64 + 64·32 + 16·32)·4 bytes. copy_'s cost
    // lands on its first activity (the memcpy), not on the fill kernel.
    assert_eq!(i64s(&k, "flops"), vec![Some(65_536 + 16 * 32), Some(0), None, None]);
    assert_eq!(i64s(&k, "bytes"), vec![Some(14_464), Some(8_192), None, None]);
    assert_eq!(strs(&k, "dtype"), vec![s("float32"), s("float32"), s("float32"), s("float32")]);
    // Steps: launches at +15.5 (step 4), +151 and +152 (step 5); the NCCL kernel has no launch, so
    // the GPU-side annotation window [+800, +900] gives 5.
    assert_eq!(i64s(&k, "step"), vec![Some(4), Some(5), Some(5), Some(5)]);
    // Two ProfilerStep names → HTA keeps launches before the last step's start. HTA's "CPU side"
    // is every event that is not a GPU activity, so the gpu_user_annotation ProfilerStep#5 at
    // +800 is that last start: launches at +15.5, +151 and +152 are kept; the NCCL kernel has no
    // launch and is dropped, as in HTA.
    let w: Vec<Option<bool>> = k.column_by_name("hta_window").unwrap().as_boolean().iter().collect();
    assert_eq!(w, vec![Some(true), Some(true), Some(false), Some(true)]);
    assert_eq!(strs(&k, "memcpy_direction"), vec![None, s("DtoH"), None, None]);
    assert_eq!(i64s(&k, "copy_bytes"), vec![None, Some(4096), None, None]);
    // Collective columns.
    assert_eq!(strs(&k, "collective")[2], s("allreduce"));
    assert_eq!(i64s(&k, "in_msg_nelems")[2], Some(1024));
    assert_eq!(i64s(&k, "out_msg_bytes")[2], Some(4096));
    assert_eq!(k.column_by_name("group_size").unwrap().as_primitive::<Int32Type>().value(2), 8);
    assert_eq!(strs(&k, "pg_desc")[2], s("default_pg"));
    assert_eq!(strs(&k, "nccl_algorithm")[2], s("RING"));
    assert_eq!(strs(&k, "nccl_protocol")[2], s("LL"));
    // Kernel args.
    let grid = k.column_by_name("grid").unwrap().as_list::<i32>();
    assert_eq!(grid.value(0).as_primitive::<Int32Type>().values().to_vec(), vec![2, 4, 1]);
    assert!(grid.is_null(1));
    assert_eq!(k.column_by_name("registers_per_thread").unwrap().as_primitive::<Int32Type>().value(0), 64);
    assert_eq!(k.column_by_name("occupancy_pct").unwrap().as_primitive::<Float64Type>().value(0), 50.0);
    assert_eq!(k.column_by_name("rank").unwrap().as_primitive::<Int32Type>().value(0), 3);
    assert_eq!(strs(&k, "file")[3], s("tiny.json"));

    // Rejects: a kernel without dur, a string ts, a negative dur; records are event indexes.
    let r: Vec<(u64, Option<&str>)> = report.rejects.iter().map(|r| (r.line, r.field.as_deref())).collect();
    assert_eq!(r, vec![(11, Some("dur")), (12, Some("ts")), (14, Some("dur"))]);
    assert!(report.rejects[2].reason.contains("negative"));

    let sm = &report.summary;
    assert_eq!(sm.header.rank, 3);
    assert_eq!(sm.header.world_size, Some(8));
    assert_eq!(sm.header.base_time_ns, Some(1_711_964_646_000_000_000));
    assert_eq!(sm.header.schema_version.as_deref(), Some("1"));
    assert!(sm.header.warnings.is_empty());
    assert_eq!(sm.header.devices[0].name.as_deref(), Some("NVIDIA A100"));
    assert_eq!((sm.events, sm.unknown_ph, sm.rejects), (17, 1, 3));
    assert_eq!((sm.kernels, sm.memcpys, sm.memsets), (3, 1, 0));
    assert_eq!(sm.profiler_steps, vec![4, 5]);
    assert_eq!(sm.span_start_ns, Some(4_458_676_522_000_000));
    assert_eq!(sm.span_end_ns, Some(4_458_676_522_900_000));
    assert_eq!(sm.other_share(), Some(0.0));
    assert!(sm.events_by_cat.contains(&("cpu_op".to_string(), 3)));
    assert_eq!(
        sm.ns_by_category,
        vec![
            ("communication".to_string(), 30_000),
            ("gemm".to_string(), 2_501),
            ("elementwise".to_string(), 1_000),
            ("memcpy_dtoh".to_string(), 1_000)
        ]
    );
}

#[test]
fn ops_and_devices_tables() {
    let text = tiny_trace();
    let (batches, _) = collect(text.as_bytes(), 100);
    let ops = batches.iter().find_map(|b| if let KinetoBatch::Ops(o) = b { Some(o.clone()) } else { None }).unwrap();
    assert_eq!(
        strs(&ops, "name"),
        vec![s("ProfilerStep#4"), s("ProfilerStep#5"), s("aten::linear"), s("aten::addmm"), s("aten::copy_")]
    );
    assert_eq!(i64s(&ops, "dur_ns")[3], Some(10_000));
    assert_eq!(i64s(&ops, "step"), vec![Some(4), Some(5), Some(4), Some(4), Some(5)]);
    assert_eq!(strs(&ops, "input_dims")[3], s("[[32], [16, 64], [64, 32], [], []]"));
    assert_eq!(strs(&ops, "tid")[0], s("10"));
    let dev =
        batches.iter().find_map(|b| if let KinetoBatch::Devices(d) = b { Some(d.clone()) } else { None }).unwrap();
    assert_eq!(strs(&dev, "compute_capability"), vec![s("8.0")]);
    assert_eq!(i64s(&dev, "num_sms"), vec![Some(108)]);
    assert_eq!(i64s(&dev, "total_global_mem"), vec![Some(42_297_524_224)]);
}

#[test]
fn header_defaults_and_single_step() {
    // No distributedInfo, no baseTimeNanoseconds, one ProfilerStep: rank 0 with a warning,
    // start_time null, every row in HTA's window, step from the CPU window.
    let text = br#"{"traceEvents": [
        {"ph": "X", "cat": "cpu_op", "name": "ProfilerStep#7", "pid": 1, "tid": 1, "ts": 0, "dur": 50},
        {"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": 1, "tid": 1, "ts": 60, "dur": 1, "args": {"correlation": 5}},
        {"ph": "X", "cat": "kernel", "name": "k", "pid": 0, "tid": 7, "ts": 70, "dur": 1, "args": {"correlation": 5}},
        {"ph": "X", "cat": "gpu_memset", "name": "Memset (Device)", "pid": 0, "tid": 7, "ts": 71, "dur": 1, "args": {"bytes": 64}}
    ]}"#;
    let (batches, report) = collect(text, 10);
    let k = kernels(&batches);
    assert_eq!(report.summary.header.rank, 0);
    assert_eq!(report.summary.header.warnings, vec!["no distributedInfo; rank defaults to 0".to_string()]);
    assert_eq!(k.column_by_name("start_time").unwrap().null_count(), 2);
    let w: Vec<Option<bool>> = k.column_by_name("hta_window").unwrap().as_boolean().iter().collect();
    assert_eq!(w, vec![Some(true), Some(true)]);
    assert_eq!(i64s(&k, "step"), vec![None, None]);
    assert_eq!(strs(&k, "category"), vec![s("other"), s("memset")]);
    assert_eq!(report.summary.other_kernels, vec![("k".to_string(), 1_000, 1)]);
    assert_eq!(report.summary.other_share(), Some(0.5));
}

#[test]
fn kernels_before_their_ops_in_the_file() {
    // GPU activities first, the launching CPU side last: pass 2 reaches each kernel before its
    // op, so the op is read again from the document at the offset pass 1 kept. Linking by
    // correlation (k1 → aten::mm), by external id (k2 → aten::bmm, no launch), and a thread
    // whose op does not enclose the launch (k3: none).
    let text = br#"{"traceEvents": [
        {"ph": "X", "cat": "kernel", "name": "sm90_gemm", "pid": 0, "tid": 7, "ts": 30, "dur": 4, "args": {"correlation": 9}},
        {"ph": "X", "cat": "kernel", "name": "sm90_gemm", "pid": 0, "tid": 7, "ts": 40, "dur": 4, "args": {"External id": 22}},
        {"ph": "X", "cat": "kernel", "name": "sm90_gemm", "pid": 0, "tid": 7, "ts": 50, "dur": 4, "args": {"correlation": 10}},
        {"ph": "X", "cat": "kernel", "name": "sm90_gemm", "pid": 0, "tid": 7, "ts": 60, "dur": 4, "args": {"correlation": 9}},
        {"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": 1, "tid": 2, "ts": 12, "dur": 1, "args": {"correlation": 9}},
        {"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": 1, "tid": 3, "ts": 12, "dur": 1, "args": {"correlation": 10}},
        {"ph": "X", "cat": "cpu_op", "name": "aten::mm", "pid": 1, "tid": 2, "ts": 10, "dur": 5,
         "args": {"External id": 21, "Input Dims": [[8, 16], [16, 4]], "Input type": ["float", "float"]}},
        {"ph": "X", "cat": "cpu_op", "name": "aten::bmm", "pid": 1, "tid": 2, "ts": 20, "dur": 5,
         "args": {"External id": 22, "Input Dims": [[2, 8, 16], [2, 16, 4]], "Input type": ["c10::BFloat16", "c10::BFloat16"]}},
        {"ph": "X", "cat": "cpu_op", "name": "aten::add", "pid": 1, "tid": 3, "ts": 13, "dur": 5}
    ]}"#;
    let (batches, _) = collect(text, 10);
    let k = kernels(&batches);
    assert_eq!(strs(&k, "op"), vec![s("aten::mm"), s("aten::bmm"), None, s("aten::mm")]);
    assert_eq!(strs(&k, "op_link"), vec![s("correlation"), s("external_id"), None, s("correlation")]);
    assert_eq!(i64s(&k, "op_event_index"), vec![Some(7), Some(8), None, Some(7)]);
    // 2·M·N·K on the op's first kernel only.
    assert_eq!(i64s(&k, "flops"), vec![Some(2 * 8 * 4 * 16), Some(2 * 2 * 8 * 4 * 16), None, None]);
    assert_eq!(strs(&k, "dtype"), vec![s("float32"), s("bfloat16"), None, s("float32")]);
    assert_eq!(strs(&k, "op_input_dims")[1], s("[[2, 8, 16], [2, 16, 4]]"));
    let ops = batches.iter().find_map(|b| if let KinetoBatch::Ops(o) = b { Some(o.clone()) } else { None }).unwrap();
    assert_eq!(i64s(&ops, "event_index"), vec![Some(7), Some(8), Some(9)]);
}

#[test]
fn not_traces_and_broken_json_are_errors_never_panics() {
    let rules = CategoryRules::default();
    let run = |b: &[u8]| parse_kineto(b, "x", &rules, 3, &mut |_| Ok::<(), Infallible>(())).map_err(KinetoError::from);
    assert!(matches!(run(br#"{"schemaVersion": 1}"#), Err(KinetoError::NotATrace { .. })));
    assert!(matches!(run(b"[1, 2]"), Err(KinetoError::NotATrace { .. })));
    assert!(matches!(run(b"   "), Err(KinetoError::NotATrace { .. })));
    assert!(matches!(run(br#"{"traceEvents": [{"ph": "X"}"#), Err(KinetoError::Json { .. })));
    assert!(matches!(run(br#"{"traceEvents": 5}"#), Err(KinetoError::Json { .. })));
    assert!(matches!(run(br#"{"traceEvents": []} trailing"#), Err(KinetoError::Json { .. })));
    let deep = format!("{{\"traceEvents\": [{}]}}", "[".repeat(10_000));
    assert!(matches!(run(deep.as_bytes()), Err(KinetoError::Json { .. })));
    // A non-object event is a reject, not an error.
    let r = run(br#"{"traceEvents": [7, {"ph": "X", "cat": "kernel", "name": "k", "ts": 1, "dur": 1}]}"#).unwrap();
    assert_eq!((r.rejects.len(), r.rejects[0].line, r.summary.kernels), (1, 1, 1));
    // Every truncation of a real-looking trace, and some garbage.
    let text = tiny_trace();
    for cut in 0..text.len() {
        let _ = run(&text.as_bytes()[..cut]);
    }
    let mut x: u32 = 12345;
    let garbage: Vec<u8> = (0..4096)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 16) as u8
        })
        .collect();
    let _ = run(&garbage);
    let mut g2 = b"{\"traceEvents\":[".to_vec();
    g2.extend_from_slice(&garbage);
    let _ = run(&g2);
    // The sink can stop the walk.
    let stop = parse_kineto(text.as_bytes(), "x", &rules, 1, &mut |_| Err("disk full"));
    assert_eq!(stop.unwrap_err(), EmitError::Sink("disk full"));
}

/// A sink with its own error type, stopping the parse from its progress reports.
#[test]
fn sink_progress_and_its_own_error() {
    #[derive(Debug, PartialEq)]
    struct OverBudget(usize);
    struct Budget {
        offsets: Vec<usize>,
        rows: usize,
        limit: usize,
    }
    impl KinetoSink for Budget {
        type Error = OverBudget;
        fn batch(&mut self, b: KinetoBatch) -> Result<(), OverBudget> {
            if let KinetoBatch::Kernels(k) = b {
                self.rows += k.num_rows();
            }
            Ok(())
        }
        fn progress(&mut self, offset: usize) -> Result<(), OverBudget> {
            self.offsets.push(offset);
            if offset > self.limit { Err(OverBudget(offset)) } else { Ok(()) }
        }
    }
    let event = r#"{"ph": "X", "cat": "kernel", "name": "k", "ts": 1, "dur": 1},"#;
    let doc = format!("{{\"traceEvents\": [{}{}]}}", event.repeat(20_000), &event[..event.len() - 1]);
    let rules = CategoryRules::default();
    let mut ok = Budget { offsets: Vec::new(), rows: 0, limit: usize::MAX };
    let report = parse_kineto(doc.as_bytes(), "x", &rules, 1024, &mut ok).unwrap();
    assert_eq!((report.summary.kernels, ok.rows), (20_001, 20_001));
    // Two reports per pass (events 8192 and 16384), offsets restarting for pass 2.
    assert_eq!(ok.offsets.len(), 4);
    assert!(ok.offsets[0] < ok.offsets[1] && ok.offsets[2] == ok.offsets[0] && ok.offsets[3] == ok.offsets[1]);
    let mut tight = Budget { offsets: Vec::new(), rows: 0, limit: 10 };
    let stop = parse_kineto(doc.as_bytes(), "x", &rules, 1024, &mut tight).unwrap_err();
    assert_eq!(stop, EmitError::Sink(OverBudget(ok.offsets[0])));
    assert_eq!(tight.rows, 0, "stopped in pass 1");
}

#[test]
fn real_traces_row_counts() {
    let Ok(root) = std::env::var("TAPEOUT_REAL_TRACES") else {
        println!("skipped: set TAPEOUT_REAL_TRACES=1 (or a traces directory) to parse /work/shared/traces");
        return;
    };
    let root = if std::path::Path::new(&root).is_dir() { root } else { "/work/shared/traces".to_string() };
    let mut files = Vec::new();
    for dir in ["kineto_hta", "param_dlrm_8rank", "kineto_tb_plugin", "tracelens"] {
        walk_dir(&std::path::Path::new(&root).join(dir), &mut files);
    }
    files.sort();
    assert!(!files.is_empty(), "no traces under {root}");
    let rules = CategoryRules::default();
    let gpu_cats = ["kernel", "gpu_memcpy", "gpu_memset", "Kernel", "Memcpy", "Memset", "cuda_sync"];
    for f in files {
        let raw = std::fs::read(&f).unwrap();
        let bytes = if f.extension().is_some_and(|e| e == "gz") {
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&raw[..]), &mut out).unwrap();
            out
        } else {
            raw
        };
        let doc: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let expected = doc["traceEvents"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["cat"].as_str().is_some_and(|c| gpu_cats.contains(&c)))
            .count();
        drop(doc);
        // rows, with op, with step, with flops, in HTA's window
        let mut n = [0usize; 5];
        let report = parse_kineto(&bytes, &f.to_string_lossy(), &rules, DEFAULT_BATCH_ROWS, &mut |b| {
            if let KinetoBatch::Kernels(k) = b {
                n[0] += k.num_rows();
                for (i, col) in [(1, "op"), (2, "step"), (3, "flops")] {
                    let c = k.column_by_name(col).unwrap();
                    n[i] += c.len() - c.null_count();
                }
                n[4] += k.column_by_name("hta_window").unwrap().as_boolean().true_count();
            }
            Ok::<(), Infallible>(())
        })
        .unwrap();
        let rows = n[0];
        let sm = &report.summary;
        println!(
            "{}: rows {rows} (expected {expected}), op {} step {} flops {} hta_window {}, rejects {}, rank {}, other {:.2}% {:?}",
            f.strip_prefix(&root).unwrap_or(&f).display(),
            n[1],
            n[2],
            n[3],
            n[4],
            report.rejects.len(),
            sm.header.rank,
            100.0 * sm.other_share().unwrap_or(0.0),
            sm.other_kernels.iter().take(2).map(|o| &o.0[..o.0.len().min(60)]).collect::<Vec<_>>()
        );
        assert_eq!(rows, expected, "{}", f.display());
        assert_eq!(sm.gpu_rows() as usize, expected);
        assert!(sm.other_share().unwrap_or(0.0) < 0.05, "{}: too much `other`", f.display());
    }
}

fn walk_dir(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk_dir(&p, out);
        } else if p.to_string_lossy().ends_with(".json") || p.to_string_lossy().ends_with(".json.gz") {
            out.push(p);
        }
    }
}
