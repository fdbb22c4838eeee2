//! Property tests of the physics: the model must earn these orders from its formulas.

use serde_json::{Map, Value, json};
use tapeout_pipelines::{Pipelines, hardware, models};
use tapeout_recommend::features::{self, Feature};
use tapeout_recommend::machine::Machine;
use tapeout_recommend::measured::{MeasuredAssumptions, MeasuredWorkload, Mined};
use tapeout_recommend::rank::{Workload, project, ranks_desc};
use tapeout_recommend::serving::{Serving, ServingWorkload};
use tapeout_recommend::{Inputs, recommend};

fn machine(id: &str) -> Machine {
    let profiles = hardware::load_all(&Pipelines::embedded()).unwrap();
    Machine::from_profile(hardware::find(&profiles, id).unwrap()).unwrap()
}

fn feats() -> Vec<Feature> {
    features::load_all(&Pipelines::embedded()).unwrap()
}

fn serving(model: &str, input: f64, output: f64, batch: f64) -> Workload {
    let m = models::load_all(&Pipelines::embedded()).unwrap().into_iter().find(|m| m.id == model).unwrap();
    let s = Serving { dtype: "bf16".into(), batch, ..Serving::default() };
    Workload::Requests {
        name: format!("{model} {input}/{output}"),
        requests: 1,
        model_id: model.into(),
        serving: ServingWorkload { model: m, serving: s, input, output },
        evidence: vec![],
    }
}

fn order(ws: Vec<Workload>, base: &Machine) -> Vec<(String, f64)> {
    let shares = vec![1.0; ws.len()];
    let f = feats();
    let p = project(&ws, &shares, base, &f);
    let mut v: Vec<(String, f64)> = p.into_iter().map(|p| (p.feature, p.time_saved_fraction)).collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1));
    v
}

fn pos(order: &[(String, f64)], id: &str) -> usize {
    order.iter().position(|(f, _)| f == id).unwrap()
}

#[test]
fn decode_dominated_serving_wants_bytes_cut() {
    let base = machine("h100-sxm");
    // Long outputs, small batch: every decode step streams the weights for few tokens.
    let o = order(vec![serving("llama-3.1-8b", 256.0, 2048.0, 2.0)], &base);
    // The bytes-cutting feature that wins is low_precision (the model's bf16 weights and KV
    // cache stored as fp8): it halves the bytes decode is bound by, as hbm_bandwidth ×2 does,
    // and also doubles the matrix rate of the small compute-bound part, so it edges ahead;
    // hbm_bandwidth is a close second, both far above matrix_flops.
    assert_eq!((o[0].0.as_str(), o[1].0.as_str()), ("low_precision", "hbm_bandwidth"), "{o:?}");
    assert!(o[0].1 - o[1].1 < 0.01, "{o:?}");
    assert!(pos(&o, "hbm_bandwidth") < pos(&o, "matrix_flops"), "{o:?}");
    assert!(o[pos(&o, "hbm_bandwidth")].1 > 0.4, "decode is nearly all memory-bound: {o:?}");
}

#[test]
fn prefill_dominated_serving_wants_flops() {
    let base = machine("h100-sxm");
    // Long prompts, one output token, large batch.
    let o = order(vec![serving("llama-3.1-8b", 8192.0, 1.0, 64.0)], &base);
    // fp8 doubles the matrix rate (as matrix_flops ×2 does) and halves the bytes too, so
    // low_precision leads, matrix_flops next, hbm_bandwidth far behind.
    assert_eq!((o[0].0.as_str(), o[1].0.as_str()), ("low_precision", "matrix_flops"), "{o:?}");
    assert!(pos(&o, "matrix_flops") < pos(&o, "hbm_bandwidth"), "{o:?}");
}

fn row(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

/// An 8-rank training trace whose time is mostly exposed NCCL all-reduce.
fn nccl_heavy() -> Mined {
    let mut mined = std::collections::BTreeMap::new();
    let mut cat = vec![];
    let mut overlap = vec![];
    let mut buckets = vec![];
    let mut idle = vec![];
    for r in 0..8 {
        let f = format!("rank{r}.json");
        // 100 ms span, 95 ms busy: 25 ms GEMM, 70 ms exposed all-reduce.
        cat.push(row(
            json!({"workload": "train", "file": f, "rank": r, "category": "gemm", "span_ns": 100e6, "busy_ns": 95e6}),
        ));
        overlap.push(row(json!({"workload": "train", "file": f, "rank": r, "exposed_comm_ns": 70e6})));
        buckets.push(row(json!({"workload": "train", "file": f, "rank": r, "category": "gemm", "dtype": "bfloat16", "activity": "kernel",
            "intensity_bucket": 40, "kernels": 100, "total_ns": 25e6, "flops": 1.2e13, "bytes": 1.2e10, "launch_ns": 1e6})));
        buckets.push(row(json!({"workload": "train", "file": f, "rank": r, "category": "communication", "dtype": "bfloat16", "activity": "kernel",
            "intensity_bucket": null, "kernels": 10, "total_ns": 75e6, "flops": null, "bytes": null, "launch_ns": 1e5})));
        idle.push(row(json!({"workload": "train", "file": f, "rank": r, "stream": 7, "active_ns": 25e6, "host_wait_share": 0.5, "kernel_wait_share": 0.1})));
    }
    mined.insert("kernel_category_time".into(), cat);
    mined.insert("comm_compute_overlap".into(), overlap);
    mined.insert("kernel_time_buckets".into(), buckets);
    mined.insert("gpu_idle_time".into(), idle);
    // 80 calls of 256 MiB all-reduce among 8 ranks, 600 ms in all.
    mined.insert(
        "collective_bandwidth".into(),
        vec![row(json!({"workload": "train", "collective": "allreduce", "group_size": 8, "size_bucket_bytes": 268435456, "calls": 80, "bytes": 80.0 * 268435456.0, "time_ns": 600e6}))],
    );
    Mined::from_rows(mined).unwrap()
}

#[test]
fn nccl_bound_training_wants_interconnect_or_offload() {
    let base = machine("h100-sxm");
    let w = MeasuredWorkload::build("train", &nccl_heavy(), &base, &MeasuredAssumptions::default()).unwrap();
    assert_eq!(w.ranks, 8);
    assert!((w.span_s - 0.8).abs() < 1e-9 && (w.exposed_comm_s - 0.56).abs() < 1e-9, "{w:?}");
    // The baseline projection reproduces the measured time exactly (calibrated roofline).
    assert!((w.time(&base) - w.span_s).abs() < 1e-12);
    let o = order(vec![Workload::Kernels { name: "train".into(), measured: w }], &base);
    assert!(["interconnect", "collective_offload"].contains(&o[0].0.as_str()), "{o:?}");
}

#[test]
fn doubling_a_features_cost_never_raises_its_per_cost_rank() {
    let base = machine("a100-sxm-80gb");
    let w = MeasuredWorkload::build("train", &nccl_heavy(), &base, &MeasuredAssumptions::default()).unwrap();
    let ws = vec![
        serving("llama-2-7b", 512.0, 512.0, 8.0),
        serving("llama-3.1-8b", 4096.0, 16.0, 32.0),
        Workload::Kernels { name: "train".into(), measured: w },
    ];
    let shares = vec![1.0, 1.0, 1.0];
    let f = feats();
    let p = project(&ws, &shares, &base, &f);
    let before = ranks_desc(&p.iter().map(|p| p.per_cost).collect::<Vec<_>>());
    for j in 0..f.len() {
        let mut f2 = f.clone();
        f2[j].cost *= 2.0;
        let p2 = project(&ws, &shares, &base, &f2);
        let after = ranks_desc(&p2.iter().map(|p| p.per_cost).collect::<Vec<_>>());
        assert!(after[j] >= before[j], "{}: per-cost rank {} → {}", f[j].id, before[j], after[j]);
        // Benefit ranks do not depend on cost at all.
        let r1 = ranks_desc(&p.iter().map(|p| p.time_saved_fraction).collect::<Vec<_>>());
        let r2 = ranks_desc(&p2.iter().map(|p| p.time_saved_fraction).collect::<Vec<_>>());
        assert_eq!(r1, r2);
    }
    // The full recommend() output is consistent with the projections.
    let r = recommend(Inputs {
        base: &base,
        workloads: ws,
        shares,
        share_sources: vec![],
        counter_bound_classes: Default::default(),
        features: &f,
        lake_version: 1,
        assumptions: vec![],
        warnings: vec![],
    })
    .unwrap();
    assert_eq!(r.recommendations.len(), f.len());
    assert!(r.recommendations.windows(2).all(|w| w[0].time_saved_fraction >= w[1].time_saved_fraction));
    for rec in &r.recommendations {
        assert!((0.0..=1.0).contains(&rec.rank_stability));
        assert!((rec.fleet_speedup - 1.0 / (1.0 - rec.time_saved_fraction)).abs() < 1e-9);
    }
}

/// Cross-hardware projection is the feature projection with every knob turned: onto the
/// calibration device it is the identity; onto `base.with(change)` its span equals the time the
/// ranking uses for that feature; busy + projected idle = projected span; categories add up.
#[test]
fn cross_hardware_projection_shares_the_feature_code_path() {
    use tapeout_recommend::project::project_measured;
    let base = machine("h100-sxm");
    let w = MeasuredWorkload::build("train", &nccl_heavy(), &base, &MeasuredAssumptions::default()).unwrap();
    let same = project_measured(&w, &base);
    assert!((same.predicted_busy_ns - same.measured_busy_ns).abs() < 1e-3, "{same:?}");
    assert!((same.measured_busy_ns - 8.0 * 95e6).abs() < 1e-3);
    for f in feats() {
        let m = base.with(&f.change);
        let p = project_measured(&w, &m);
        assert!((p.predicted_span_ns - w.time(&m) * 1e9).abs() < 1e-3, "{}", f.id);
    }
    let to = machine("mi300x");
    let p = project_measured(&w, &to);
    let busy: f64 = p.categories.iter().map(|c| c.predicted_ns).sum();
    assert!((busy - p.predicted_busy_ns).abs() < 1e-3);
    let measured: f64 = p.categories.iter().map(|c| c.measured_ns).sum();
    assert!((measured - p.measured_busy_ns).abs() < 1e-3);
    // The all-reduce moves with the link bandwidth ratio (latency part fixed), the GEMM with the
    // matrix peak or HBM bandwidth ratio.
    assert_eq!((p.from.as_str(), p.to.as_str()), ("h100-sxm", "mi300x"));
    let comm = p.categories.iter().find(|c| c.category == "communication (exposed)").unwrap();
    let link = base.link_bandwidth(8).unwrap() / to.link_bandwidth(8).unwrap();
    let latency = 80.0 * 10e-6;
    let expected = 0.56 * (latency + (0.6 - latency) * link) / 0.6;
    assert!((comm.predicted_ns * 1e-9 - expected).abs() < 1e-9, "{} vs {expected}", comm.predicted_ns * 1e-9);
}
