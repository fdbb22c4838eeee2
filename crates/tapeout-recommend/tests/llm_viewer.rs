//! The serving model against LLM-Viewer's own accounting (tests/llm_viewer_reference.json,
//! produced by scripts/llm_viewer_reference.py from hahnyuan/LLM-Viewer's model_analyzer.py and
//! checked there against LLM-Viewer's analyzer): Llama-2-7B, fp16, A100 SXM 80GB.

use serde_json::Value;
use tapeout_pipelines::{Pipelines, hardware, models};
use tapeout_recommend::machine::Machine;
use tapeout_recommend::serving::{Accounting, Serving, Stage, StepShape, layer_ops, lm_head};

fn reference() -> Value {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/llm_viewer_reference.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * b.abs().max(1e-30)
}

#[test]
fn llm_viewer_decode_and_prefill_on_a100_within_one_percent() {
    let r = reference();
    let profiles = hardware::load_all(&Pipelines::embedded()).unwrap();
    let a100 = Machine::from_profile(hardware::find(&profiles, "a100-sxm-80gb").unwrap()).unwrap();
    assert_eq!(a100.hbm_bandwidth, r["hardware"]["hbm_bandwidth"].as_f64().unwrap());
    assert_eq!(
        a100.peak(tapeout_recommend::machine::Unit::Matrix, "fp16"),
        r["hardware"]["peak_flops"].as_f64().unwrap()
    );
    let model = models::load_all(&Pipelines::embedded()).unwrap().into_iter().find(|m| m.id == "llama-2-7b").unwrap();
    let s = Serving {
        dtype: "fp16".into(),
        flash_attention: false,
        accounting: Accounting::LlmViewer,
        ..Serving::default()
    };
    let cases = r["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 3);
    for case in cases {
        let stage = if case["stage"] == "decode" { Stage::Decode } else { Stage::Prefill };
        let batch = case["batch"].as_f64().unwrap();
        let seq = case["seq_len"].as_f64().unwrap();
        let step = match stage {
            Stage::Decode => StepShape { stage, batch, tokens: 1.0, context: seq },
            Stage::Prefill => StepShape { stage, batch, tokens: seq, context: seq },
        };
        let ops = layer_ops(&model, step, "fp16", 1.0, false, Accounting::LlmViewer);
        let name = case["name"].as_str().unwrap();
        for want in case["ops"].as_array().unwrap() {
            let op_name = want["name"].as_str().unwrap();
            let got = ops.iter().find(|o| o.name == op_name).unwrap_or_else(|| panic!("{name}: no op {op_name}"));
            let (f, b, t) =
                (want["flops"].as_f64().unwrap(), want["bytes"].as_f64().unwrap(), want["time_s"].as_f64().unwrap());
            assert!(close(got.flops, f, 1e-9), "{name} {op_name} flops {} vs {f}", got.flops);
            assert!(close(got.bytes(), b, 1e-9), "{name} {op_name} bytes {} vs {b}", got.bytes());
            assert!(close(got.time(&a100, "fp16", &s), t, 1e-9), "{name} {op_name} time");
        }
        let layers = model.layers as f64;
        let head = lm_head(&model, batch, "fp16", 1.0, Accounting::LlmViewer);
        let total: f64 =
            ops.iter().map(|o| o.time(&a100, "fp16", &s)).sum::<f64>() * layers + head.time(&a100, "fp16", &s);
        let want = case["model_total"]["time_s"].as_f64().unwrap();
        assert!(close(total, want, 0.01), "{name}: {total} s vs LLM-Viewer {want} s");
        // In fact exact: the same formulas.
        assert!(close(total, want, 1e-9), "{name}: {total} s vs LLM-Viewer {want} s");
    }
}

/// tapeout's own accounting differs from LLM-Viewer's only where docs/model.md says, and by
/// the sizes it states (activation over the intermediate width, two-operand adds, fused
/// attention in prefill).
#[test]
fn tapeout_accounting_differs_by_the_documented_amounts() {
    let profiles = hardware::load_all(&Pipelines::embedded()).unwrap();
    let a100 = Machine::from_profile(hardware::find(&profiles, "a100-sxm-80gb").unwrap()).unwrap();
    let model = models::load_all(&Pipelines::embedded()).unwrap().into_iter().find(|m| m.id == "llama-2-7b").unwrap();
    let total = |acc: Accounting, flash: bool| {
        let s = Serving { dtype: "fp16".into(), flash_attention: flash, accounting: acc, ..Serving::default() };
        let step = StepShape { stage: Stage::Decode, batch: 1.0, tokens: 1.0, context: 1024.0 };
        layer_ops(&model, step, "fp16", 1.0, flash, acc).iter().map(|o| o.time(&a100, "fp16", &s)).sum::<f64>()
    };
    // Decode is weight-streaming: the accounting differences are below 0.1% of a layer.
    let (ours, theirs) = (total(Accounting::Tapeout, true), total(Accounting::LlmViewer, false));
    assert!(close(ours, theirs, 1e-3), "{ours} vs {theirs}");
}
