//! Feasible serving configurations (issue 21, point 4), as a property over every model × every
//! hardware profile of pipelines/ × a few request shapes: whatever the serving model states — a
//! chosen tensor-parallel degree, a capacity batch ("HBM fits N"), on the baseline or on a
//! feature's changed profile — the bytes, recomputed here from the model config alone, fit the
//! usable HBM; a chosen degree is the smallest power of two that fits; a fixed degree too small
//! is an error naming model, dtype, bytes needed and bytes available.

use tapeout_pipelines::hardware::HardwareProfile;
use tapeout_pipelines::models::ModelConfig;
use tapeout_pipelines::{Pipelines, hardware, models};
use tapeout_recommend::RecommendError;
use tapeout_recommend::features::{self, Change, Feature, Precision};
use tapeout_recommend::machine::Machine;
use tapeout_recommend::serving::{Serving, ServingWorkload};

/// Usable share of HBM the serving model assumes (`Serving::memory_utilization`).
const USABLE: f64 = 0.9;

/// (prompt, output) mean request shapes: tiny, chat, long prompt, long context, very long.
const SHAPES: [(f64, f64); 5] =
    [(16.0, 16.0), (1000.0, 200.0), (8000.0, 1000.0), (32768.0, 4096.0), (128000.0, 2000.0)];

/// Bytes per element, written out here rather than taken from the crate.
fn bytes_of(dtype: &str) -> f64 {
    match dtype {
        "fp32" => 4.0,
        "bf16" | "fp16" => 2.0,
        "fp8" | "int8" => 1.0,
        "fp4" => 0.5,
        other => panic!("dtype {other} not in this test's table"),
    }
}

/// The model's stored dtype, normalized as the run does (`bfloat16` → `bf16`, ...).
fn model_dtype(m: &ModelConfig) -> String {
    tapeout_recommend::machine::normalize_dtype(&m.dtype).unwrap_or("bf16").to_string()
}

/// The dtype stored tensors of `dtype` have after `change`'s precision move (fp16 moves with bf16).
fn dtype_after(dtype: &str, change: &Change) -> String {
    match &change.precision {
        Some(p) if p.from == dtype || (p.from == "bf16" && dtype == "fp16") => p.to.clone(),
        _ => dtype.to_string(),
    }
}

/// Weight bytes and KV-cache bytes per token, per device at tensor parallel `tp`: params × B / tp
/// and layers × (2 × kv_heads × head_dim, or the config's MLA figure) × B / min(tp, kv_heads).
fn bytes(m: &ModelConfig, dtype: &str, tp: u32) -> (f64, f64) {
    let b = bytes_of(dtype);
    let tp = tp as f64;
    let elements =
        m.kv_cache_elements_per_token_per_layer.map_or(2.0 * m.kv_heads as f64 * m.head_dim as f64, |e| e as f64);
    let shard = tp.min(m.kv_heads as f64).max(1.0);
    (m.params * b / tp, m.layers as f64 * elements * b / shard)
}

/// Weights plus `requests` requests of `context` tokens each, per device.
fn needed(m: &ModelConfig, dtype: &str, tp: u32, requests: f64, context: f64) -> f64 {
    let (w, kv) = bytes(m, dtype, tp);
    w + requests * kv * context
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1.0 + 1e-9 * a.abs().max(b.abs())
}

struct Case<'a> {
    model: &'a ModelConfig,
    profile: &'a HardwareProfile,
    input: f64,
    output: f64,
}

impl Case<'_> {
    fn workload(&self) -> ServingWorkload {
        let serving = Serving { dtype: model_dtype(self.model), batch: 64.0, ..Serving::default() };
        assert_eq!(serving.memory_utilization, USABLE);
        ServingWorkload { model: self.model.clone(), serving, input: self.input, output: self.output }
    }

    fn context(&self) -> f64 {
        self.input + self.output / 2.0
    }

    fn usable(&self, capacity_factor: f64) -> Option<f64> {
        self.profile.memory.hbm_capacity.map(|c| c * capacity_factor * USABLE)
    }

    fn label(&self) -> String {
        format!("{} on {} at {}/{} tokens", self.model.id, self.profile.id, self.input, self.output)
    }

    /// What a breakdown on the profile changed by `change` states about memory is true.
    fn check_breakdown(&self, w: &ServingWorkload, base: &Machine, change: &Change, what: &str) {
        let m = base.with(change);
        let b = w.breakdown(&m);
        let tp = w.serving.tensor_parallel;
        let dtype = dtype_after(&model_dtype(self.model), change);
        let usable = self.usable(change.hbm_capacity.unwrap_or(1.0));
        let need_one = needed(self.model, &dtype, tp, 1.0, self.context());
        assert!(
            close(b.memory.needed_bytes, need_one),
            "{} {what}: {} vs {need_one}",
            self.label(),
            b.memory.needed_bytes
        );
        match (b.capacity_batch, usable) {
            (Some(n), Some(usable)) => {
                assert!(n >= 1.0 && b.batch <= n, "{} {what}: batch {} of {n}", self.label(), b.batch);
                // "HBM fits n": n requests at the mean context fit, and more than one only when
                // each fits at its full length.
                let at_mean = needed(self.model, &dtype, tp, n, self.context());
                assert!(
                    at_mean <= usable * (1.0 + 1e-12),
                    "{} {what}: fits {n} stated, {at_mean} > {usable}",
                    self.label()
                );
                if n > 1.0 {
                    let full = needed(self.model, &dtype, tp, n, self.input + self.output);
                    assert!(
                        full <= usable * (1.0 + 1e-12),
                        "{} {what}: fits {n} stated, {full} > {usable}",
                        self.label()
                    );
                }
                assert_eq!(b.memory.fits(), Some(true));
            }
            (Some(n), None) => panic!("{} {what}: fits {n} stated without a capacity figure", self.label()),
            (None, Some(usable)) => {
                // No capacity batch on a profile with a figure: only when it does not fit.
                assert!(need_one > usable, "{} {what}: fits but no capacity batch", self.label());
                assert_eq!(b.memory.fits(), Some(false), "{} {what}", self.label());
                assert_eq!(b.batch, 1.0);
            }
            (None, None) => assert_eq!(b.memory.fits(), None),
        }
    }
}

/// Features of pipelines/ plus ones that take memory away: capacity ×0.5 and ×0.1, and a
/// precision move to a wider dtype.
fn changes() -> Vec<(String, Change)> {
    let mut v: Vec<(String, Change)> =
        features::load_all(&Pipelines::embedded()).unwrap().into_iter().map(|f: Feature| (f.id, f.change)).collect();
    v.push(("capacity ×0.5".into(), Change { hbm_capacity: Some(0.5), ..Change::default() }));
    v.push(("capacity ×0.1".into(), Change { hbm_capacity: Some(0.1), ..Change::default() }));
    v.push((
        "bf16 → fp32".into(),
        Change { precision: Some(Precision { from: "bf16".into(), to: "fp32".into() }), ..Change::default() },
    ));
    v
}

#[test]
fn no_output_states_a_fit_that_does_not_exist() {
    let pipelines = Pipelines::embedded();
    let profiles = hardware::load_all(&pipelines).unwrap();
    let all_models = models::load_all(&pipelines).unwrap();
    let changes = changes();
    assert!(profiles.len() >= 10 && all_models.len() >= 5, "every profile and model of pipelines/");
    let (mut chosen_above_1, mut refused, mut fixed_ok) = (0, 0, 0);
    for profile in &profiles {
        let Ok(base) = Machine::from_profile(profile) else { continue };
        for model in &all_models {
            let dtype = model_dtype(model);
            for (input, output) in SHAPES {
                let case = Case { model, profile, input, output };
                let label = case.label();
                let usable = case.usable(1.0);
                let fits = |tp: u32| usable.is_none_or(|u| needed(model, &dtype, tp, 1.0, case.context()) <= u);
                let max = (0..32).map(|k| 1u32 << k).take_while(|t| *t <= model.heads).last().unwrap();

                // The degree left open: the smallest power of two that fits, stated.
                let mut w = case.workload();
                match w.deploy(&base, None) {
                    Ok(d) => {
                        let tp = d.tensor_parallel;
                        assert!(d.chosen && tp.is_power_of_two() && tp <= max, "{label}: {tp}");
                        assert_eq!(w.serving.tensor_parallel, tp);
                        assert!(fits(tp), "{label}: tensor parallel {tp} chosen but does not fit");
                        if usable.is_some() {
                            assert!(tp == 1 || !fits(tp / 2), "{label}: {tp} is not the smallest that fits");
                        } else {
                            assert_eq!(tp, 1, "{label}: nothing to check, nothing to choose");
                        }
                        chosen_above_1 += (tp > 1) as u32;
                        let text = d.assumption(&base, &model.id, "Workload `w`").expect("a chosen degree is stated");
                        if usable.is_some() {
                            assert!(text.contains(&format!("tensor parallel {tp} chosen")), "{text}");
                            assert!(text.contains(&model.id) && text.contains(&dtype), "{text}");
                        } else {
                            assert!(text.contains("not checked") && !text.contains(" chosen"), "{text}");
                        }
                        for (what, change) in
                            std::iter::once(("baseline".to_string(), Change::default())).chain(changes.iter().cloned())
                        {
                            case.check_breakdown(&w, &base, &change, &what);
                        }
                    }
                    Err(RecommendError::Infeasible { tensor_parallel, needed_bytes, available_bytes, .. }) => {
                        assert!(!fits(max), "{label}: refused, yet tensor parallel {max} fits");
                        assert_eq!(tensor_parallel, max, "{label}");
                        assert!(needed_bytes as f64 > available_bytes as f64, "{label}");
                        refused += 1;
                    }
                    Err(e) => panic!("{label}: {e}"),
                }

                // A fixed degree: kept when it fits, else an error naming what does not fit.
                for tp in [1, 2, 8] {
                    let mut w = case.workload();
                    match w.deploy(&base, Some(tp)) {
                        Ok(d) => {
                            assert!(fits(tp), "{label}: fixed tensor parallel {tp} accepted but does not fit");
                            assert!(!d.chosen && d.tensor_parallel == tp && w.serving.tensor_parallel == tp);
                            let stated = d.assumption(&base, &model.id, "Workload `w`");
                            assert_eq!(stated.is_some(), usable.is_none(), "{label}: {stated:?}");
                            fixed_ok += 1;
                            case.check_breakdown(&w, &base, &Change::default(), "fixed");
                        }
                        Err(e) => {
                            assert!(!fits(tp), "{label}: fixed tensor parallel {tp} refused but fits: {e}");
                            let message = e.to_string();
                            let RecommendError::Infeasible {
                                model: m,
                                dtype: d,
                                hardware: h,
                                tensor_parallel,
                                needed_bytes,
                                available_bytes,
                                ..
                            } = e
                            else {
                                panic!("{label}: {message}")
                            };
                            assert_eq!(
                                (m.as_str(), d.as_str(), h.as_str(), tensor_parallel),
                                (model.id.as_str(), dtype.as_str(), profile.id.as_str(), tp)
                            );
                            let need = needed(model, &dtype, tp, 1.0, case.context());
                            assert!(close(needed_bytes as f64, need), "{label}: {needed_bytes} vs {need}");
                            assert!(close(available_bytes as f64, usable.unwrap()), "{label}: {available_bytes}");
                            for part in [
                                model.id.clone(),
                                format!("({dtype})"),
                                profile.id.clone(),
                                format!("tensor parallel {tp}"),
                                format!("{needed_bytes} bytes needed"),
                                format!("{available_bytes} bytes available"),
                            ] {
                                assert!(message.contains(&part), "{label}: `{part}` not in: {message}");
                            }
                        }
                    }
                }
            }
        }
    }
    // The property is not vacuous: degrees above 1 are chosen, fixed ones kept, and some refused.
    assert!(chosen_above_1 > 0 && fixed_ok > 0, "{chosen_above_1} {fixed_ok}");
    eprintln!("{chosen_above_1} chosen above 1, {refused} refused, {fixed_ok} fixed degrees kept");
}

/// The reproduction: Llama-2-70B's fp16 weights (138 GB) on one 80 GB H100.
#[test]
fn llama_2_70b_on_one_h100_needs_two() {
    let pipelines = Pipelines::embedded();
    let profiles = hardware::load_all(&pipelines).unwrap();
    let base = Machine::from_profile(hardware::find(&profiles, "h100-sxm").unwrap()).unwrap();
    let model = models::load_all(&pipelines).unwrap().into_iter().find(|m| m.id == "llama-2-70b").unwrap();
    let serving = Serving { dtype: "fp16".into(), batch: 4.0, ..Serving::default() };
    let w = ServingWorkload { model, serving, input: 1241.0, output: 173.0 };

    let e = w.clone().deploy(&base, Some(1)).unwrap_err().to_string();
    assert!(e.starts_with("llama-2-70b (fp16) does not fit on h100-sxm at tensor parallel 1: "), "{e}");
    assert!(e.contains("bytes needed per device, 72000000000 bytes available"), "{e}");
    assert!(e.contains("tensor parallel 2 is the smallest power of two that fits"), "{e}");

    let mut chosen = w.clone();
    let d = chosen.deploy(&base, None).unwrap();
    assert_eq!((d.tensor_parallel, d.chosen), (2, true));
    let text = d.assumption(&base, "llama-2-70b", "Workload `conversation`").unwrap();
    assert!(text.starts_with("Workload `conversation`: tensor parallel 2 chosen: the smallest power of two at which llama-2-70b's fp16 weights (68.98 GB per device)"), "{text}");
    assert!(
        text.contains(
            "fit h100-sxm's 72.00 GB usable per device (90% of 80.00 GB); at tensor parallel 1 they would need 138."
        ),
        "{text}"
    );
    let b = chosen.breakdown(&base);
    assert!(b.capacity_batch.unwrap() >= 1.0 && b.memory.fits() == Some(true));

    // On one device the model runs at batch 1 without any stated fit.
    let mut one = w.clone();
    one.serving.tensor_parallel = 1;
    let b = one.breakdown(&base);
    assert_eq!((b.capacity_batch, b.memory.fits(), b.batch), (None, Some(false), 1.0));
}

/// A profile without an HBM capacity figure: nothing is checked and nothing claims a fit.
#[test]
fn without_a_capacity_figure_nothing_is_claimed() {
    let pipelines = Pipelines::embedded();
    let profiles = hardware::load_all(&pipelines).unwrap();
    let mut base = Machine::from_profile(hardware::find(&profiles, "h100-sxm").unwrap()).unwrap();
    base.hbm_capacity = None;
    let model = models::load_all(&pipelines).unwrap().into_iter().find(|m| m.id == "llama-3.1-405b").unwrap();
    let w = ServingWorkload {
        model,
        serving: Serving { dtype: "bf16".into(), ..Serving::default() },
        input: 1000.0,
        output: 100.0,
    };
    for fixed in [None, Some(1)] {
        let mut w = w.clone();
        let d = w.deploy(&base, fixed).unwrap();
        assert_eq!(d.tensor_parallel, 1);
        assert_eq!(d.memory.fits(), None);
        let text = d.assumption(&base, "llama-3.1-405b", "Workload `w`").unwrap();
        assert!(text.contains("has no HBM capacity figure") && text.contains("is not checked"), "{text}");
        assert!(!text.contains(" chosen"), "{text}");
        let b = w.breakdown(&base);
        assert_eq!(b.capacity_batch, None);
    }
}
