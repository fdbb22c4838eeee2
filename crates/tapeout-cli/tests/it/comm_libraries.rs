//! Communication beyond NCCL: the 2-rank training sample with its NCCL kernels renamed to other
//! libraries' kernel names (pipelines/categories/README.md has the survey) must rank the chip
//! features exactly as the original does, and its communication-heavy variant must still want
//! the interconnect first, whether or not anything in the trace tells the message sizes.

use std::path::{Path, PathBuf};

use crate::common::{repo, sql_csv, tapeout, text};

/// vLLM's one-stage custom all-reduce, 2 ranks of bf16, as Kineto names it
/// (vllm-project/vllm csrc/custom_all_reduce.cuh).
const VLLM_CUSTOM_ALL_REDUCE: &str = "void vllm::cross_device_reduce_1stage<__nv_bfloat16, 2>(vllm::RankData*, \
                                      vllm::RankSignals, vllm::Signal*, __nv_bfloat16*, int, int)";

/// DeepEP's low-latency combine (deepseek-ai/DeepEP csrc/kernels/internode_ll.cu).
const DEEPEP_COMBINE: &str = "void deep_ep::internode_ll::combine<false, 3, 7168, 9>(void*, void*, int*, void*, \
                              void const*, long const*, float const*, int const*, long const*, long*, int*, int*, \
                              int, int, int, int, int, int, int, int, int, bool)";

/// pplx-kernels' combine (ppl-ai/pplx-kernels csrc/all_to_all/internode_combine.cu): no
/// namespace, matched by its template arguments.
const PPLX_COMBINE: &str = "void combineKernel<__nv_bfloat16, __nv_bfloat16, 8ul, true, true>(__nv_bfloat16*, \
                            unsigned long, unsigned int*, unsigned long, unsigned long, float*, unsigned long, \
                            unsigned long, __nv_bfloat16*, unsigned long, unsigned long, unsigned long, unsigned long, \
                            unsigned long, unsigned int, unsigned int, unsigned int, unsigned long, unsigned int*, \
                            unsigned int, unsigned int*, unsigned int const*, unsigned int const*, \
                            unsigned int const*, unsigned long*, unsigned long*, std::byte*, std::byte*)";

/// MORI-EP's inter-node dispatch (ROCm/mori src/ops/dispatch_combine/internode_normal.hpp).
const MORI_DISPATCH: &str = "void mori::moe::EpDispatchInterNodeNormalKernel<__hip_bfloat16>\
                             (mori::moe::EpDispatchCombineArgs<__hip_bfloat16>)";

/// The collective args PyTorch's profiler writes on NCCL kernels (and on the `record_param_comms`
/// op of a c10d collective); a kernel of another library launched outside c10d has none of them.
const COLLECTIVE_ARGS: &[&str] = &[
    "Collective name",
    "In msg nelems",
    "Out msg nelems",
    "Group size",
    "dtype",
    "In split size",
    "Out split size",
    "Process Group Name",
    "Process Group Description",
    "Process Group Ranks",
];

/// How to rewrite the sample.
#[derive(Clone, Copy)]
struct Variant {
    /// Non-NCCL GPU activities are made this many times shorter (1 = as recorded).
    compute_divisor: f64,
    /// The name every NCCL kernel gets, without its collective args (None = NCCL as recorded).
    rename: Option<&'static str>,
    /// Also drop the collective args of the `record_param_comms` ops, so nothing in the trace
    /// tells the message sizes.
    drop_sizes: bool,
}

/// sample-traces/kineto/train_2rank rewritten per `v` into `dir`.
fn write_sample(dir: &Path, v: Variant) {
    std::fs::create_dir_all(dir).unwrap();
    for r in 0..2 {
        let src = repo().join(format!("sample-traces/kineto/train_2rank/rank{r}.json"));
        let mut doc: serde_json::Value = serde_json::from_slice(&std::fs::read(src).unwrap()).unwrap();
        let mut renamed = 0;
        for e in doc["traceEvents"].as_array_mut().unwrap() {
            let gpu = matches!(e["cat"].as_str(), Some("kernel" | "gpu_memcpy" | "gpu_memset"));
            let nccl = e["name"].as_str().is_some_and(|n| n.starts_with("nccl"));
            if gpu && nccl {
                if let Some(name) = v.rename {
                    e["name"] = name.into();
                    let args = e["args"].as_object_mut().unwrap();
                    for k in COLLECTIVE_ARGS {
                        args.remove(*k);
                    }
                    renamed += 1;
                }
            } else if gpu && v.compute_divisor != 1.0 {
                e["dur"] = serde_json::json!(e["dur"].as_f64().unwrap() / v.compute_divisor);
            }
            if v.drop_sizes && e["cat"] == "cpu_op" && e["name"] == "record_param_comms" {
                let args = e["args"].as_object_mut().unwrap();
                for k in COLLECTIVE_ARGS {
                    args.remove(*k);
                }
            }
        }
        if v.rename.is_some() {
            assert_eq!(renamed, 6, "rank {r}: the sample has six NCCL all-reduce kernels");
        }
        std::fs::write(dir.join(format!("rank{r}.json")), serde_json::to_vec(&doc).unwrap()).unwrap();
    }
}

/// What a run over one rewritten sample gives.
struct Outcome {
    /// Features, best first.
    ranking: Vec<String>,
    /// Communication's share of kernel time.
    comm_share: f64,
    /// Communication kernels in `collectives`, and how many of them have message sizes.
    collectives: (u64, u64),
    /// GPU time no category rule matched.
    other_ns: f64,
    recommendations: serde_json::Value,
    /// What `tapeout recommend` printed.
    printed: String,
}

fn number(out: &std::process::Output) -> f64 {
    let s = String::from_utf8_lossy(&out.stdout);
    let cell = s.lines().nth(1).unwrap_or_else(|| panic!("no result row: {}", text(out)));
    if cell.is_empty() { 0.0 } else { cell.parse().unwrap_or_else(|e| panic!("{e}: {cell:?}")) }
}

/// ingest → mine → recommend (h100-sxm) over the sample rewritten per `v`, in `root/name/`. The
/// traces keep their folder's name, `train_2rank`, which is the workload's name.
fn run(root: &Path, name: &str, v: Variant) -> Outcome {
    let traces = root.join(name).join("train_2rank");
    write_sample(&traces, v);
    let lake: PathBuf = root.join(name).join("lake");
    let l = lake.to_str().unwrap();
    let o = tapeout(&["ingest", "-q", "--lake", l, traces.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let comm_share = number(&sql_csv(
        l,
        "select sum(case when category = 'communication' then dur_ns else 0 end) * 1.0 / sum(dur_ns) from kernels",
    ));
    let calls = number(&sql_csv(l, "select count(*) from collectives")) as u64;
    let sized = number(&sql_csv(l, "select count(in_msg_bytes) from collectives")) as u64;
    let other_ns = number(&sql_csv(l, "select sum(other_ns) from traces"));
    let o = tapeout(&["mine", "-q", "--lake", l]);
    assert!(o.status.success(), "{}", text(&o));
    let out = root.join(name).join("rec");
    let o = tapeout(&["recommend", "--lake", l, "--hardware", "h100-sxm", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let recommendations: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("recommendations.json")).unwrap()).unwrap();
    let ranking = recommendations["recommendations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["feature"].as_str().unwrap().to_string())
        .collect();
    Outcome { ranking, comm_share, collectives: (calls, sized), other_ns, recommendations, printed: text(&o) }
}

const AS_RECORDED: Variant = Variant { compute_divisor: 1.0, rename: None, drop_sizes: false };

#[test]
fn another_librarys_kernel_names_rank_like_nccl() {
    let tmp = tempfile::tempdir().unwrap();
    let nccl = run(tmp.path(), "nccl", AS_RECORDED);
    // vLLM's custom all-reduce instead of NCCL's: the kernel args are gone, the sizes come from
    // the c10d `record_param_comms` op the kernels are linked to.
    let vllm = run(tmp.path(), "vllm", Variant { rename: Some(VLLM_CUSTOM_ALL_REDUCE), ..AS_RECORDED });
    assert!(nccl.ranking.len() >= 5, "{}", nccl.printed);
    assert_eq!(vllm.ranking, nccl.ranking, "original:\n{}\nrenamed:\n{}", nccl.printed, vllm.printed);
    assert!((vllm.comm_share - nccl.comm_share).abs() < 1e-12, "{} vs {}", vllm.comm_share, nccl.comm_share);
    assert!(nccl.comm_share > 0.1, "{}", nccl.comm_share);
    assert_eq!(nccl.collectives, (12, 12));
    assert_eq!(vllm.collectives, (12, 12));
    assert_eq!((nccl.other_ns, vllm.other_ns), (0.0, 0.0));
    // The same savings, not only the same order.
    let savings = |o: &Outcome| -> Vec<f64> {
        let recs = o.recommendations["recommendations"].as_array().unwrap();
        recs.iter().map(|r| r["time_saved_fraction"].as_f64().unwrap()).collect()
    };
    for (a, b) in savings(&vllm).iter().zip(savings(&nccl)) {
        assert!((a - b).abs() <= 1e-9 * b.abs().max(1e-9), "{:?} vs {:?}", savings(&vllm), savings(&nccl));
    }
    // pplx-kernels launched outside c10d: nothing sizes them, yet they are the same
    // communication time and the ranking stays (the interconnect's saving differs: unsized
    // communication is taken as all bandwidth, without the latency part).
    let pplx = run(tmp.path(), "pplx", Variant { rename: Some(PPLX_COMBINE), drop_sizes: true, ..AS_RECORDED });
    assert_eq!(pplx.collectives, (12, 0));
    assert_eq!(pplx.other_ns, 0.0);
    assert!((pplx.comm_share - nccl.comm_share).abs() < 1e-12);
    assert_eq!(pplx.ranking, nccl.ranking, "original:\n{}\nunsized:\n{}", nccl.printed, pplx.printed);
}

#[test]
fn a_communication_bound_trace_of_another_library_wants_interconnect_first() {
    let tmp = tempfile::tempdir().unwrap();
    // The communication-heavy variant of `an_nccl_bound_training_trace_wants_interconnect_first`
    // (run.rs): every non-NCCL GPU activity 20× shorter.
    let heavy = Variant { compute_divisor: 20.0, ..AS_RECORDED };
    let cases = [
        ("nccl", heavy),
        ("vllm", Variant { rename: Some(VLLM_CUSTOM_ALL_REDUCE), ..heavy }),
        // The motivating failure: expert-parallel kernels of a library launched outside c10d,
        // so nothing sizes them; they are still communication time, all bandwidth-bound.
        ("deepep_unsized", Variant { rename: Some(DEEPEP_COMBINE), drop_sizes: true, ..heavy }),
        ("mori_unsized", Variant { rename: Some(MORI_DISPATCH), drop_sizes: true, ..heavy }),
    ];
    for (name, v) in cases {
        let o = run(tmp.path(), name, v);
        assert!(o.comm_share > 0.7, "{name}: communication share of kernel time {}", o.comm_share);
        assert_eq!(o.other_ns, 0.0, "{name}");
        let want_sized = if v.drop_sizes { 0 } else { 12 };
        assert_eq!(o.collectives, (12, want_sized), "{name}");
        let first = o.ranking.first().map(String::as_str).unwrap_or_default();
        assert!(["interconnect", "collective_offload"].contains(&first), "{name}:\n{}", o.printed);
        // Its evidence is the measured communication: sized by `collective_bandwidth`, or the
        // communication kernel time whose message sizes are unknown.
        let ev = o.recommendations["recommendations"][0]["evidence"].as_array().unwrap();
        let unsized_comm = |e: &serde_json::Value| {
            e["job"] == "kernel_time_buckets"
                && e["key"].as_str().is_some_and(|k| k.ends_with("category=communication"))
        };
        let found = if v.drop_sizes {
            ev.iter().any(unsized_comm)
        } else {
            ev.iter().any(|e| e["job"] == "collective_bandwidth")
        };
        assert!(found, "{name}: {ev:?}");
    }
}
