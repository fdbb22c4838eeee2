//! Recommendation assembly: workloads from the mined rows and the settings, then the
//! recommender ([`tapeout_recommend::recommend`]).

use std::collections::BTreeMap;
use std::path::Path;

use tapeout_engine::LakeSession;
use tapeout_pipelines::{Pipelines, hardware, models};
use tapeout_recommend::evidence::EvidenceRef;
use tapeout_recommend::features;
use tapeout_recommend::machine::{Machine, normalize_dtype};
use tapeout_recommend::measured::{MeasuredAssumptions, MeasuredWorkload};
use tapeout_recommend::mined::Mined;
use tapeout_recommend::rank::Workload;
use tapeout_recommend::serving::{Deployment, Serving, ServingWorkload};
use tapeout_recommend::{Inputs, Recommendations, ShareSource, recommend};

use crate::RunError;
use crate::mined::{read_mined, workload_devices};

/// Settings of one recommendation run (from flags or a pipeline config).
#[derive(Debug, Clone)]
pub struct RecommendSettings {
    /// Baseline hardware profile id.
    pub hardware: String,
    /// Default model for request workloads.
    pub model: String,
    /// Per-workload model overrides.
    pub models: BTreeMap<String, String>,
    /// Fleet share per workload (missing: equal).
    pub fleet_mix: BTreeMap<String, f64>,
    /// Serving assumptions (efficiencies; its tensor-parallel degree is settled per workload
    /// from `tensor_parallel`).
    pub serving: Serving,
    /// Tensor-parallel degree of every request workload; None: per workload, the smallest power
    /// of two at which weights plus one request's KV cache at the mean context fit the baseline.
    pub tensor_parallel: Option<u32>,
    /// Decode batch for every request workload (default: measured mean concurrency).
    pub batch: Option<f64>,
    /// Assumptions of the kernel-trace model.
    pub measured: MeasuredAssumptions,
    /// Feature ids to rank (empty: all).
    pub features: Vec<String>,
    /// Relative cost overrides by feature id.
    pub feature_costs: BTreeMap<String, f64>,
}

impl RecommendSettings {
    /// Defaults for `hardware` and `model`.
    pub fn new(hardware: &str, model: &str) -> Self {
        RecommendSettings {
            hardware: hardware.into(),
            model: model.into(),
            models: BTreeMap::new(),
            fleet_mix: BTreeMap::new(),
            serving: Serving { compute_efficiency: 0.7, memory_efficiency: 0.85, ..Serving::default() },
            tensor_parallel: None,
            batch: None,
            measured: MeasuredAssumptions::default(),
            features: Vec::new(),
            feature_costs: BTreeMap::new(),
        }
    }
}

/// What a recommendation run produced, with the inputs the report needs.
pub struct Built {
    pub recommendations: Recommendations,
    pub mined: Mined,
    pub workloads: Vec<Workload>,
}

/// Request-level workloads: one per workload name, sources merged (request-weighted).
fn request_workloads(
    mined: &Mined,
    settings: &RecommendSettings,
    base: &Machine,
    find_model: &dyn Fn(&str) -> Result<tapeout_pipelines::models::ModelConfig, RunError>,
) -> Result<(Vec<Workload>, Vec<String>), RunError> {
    let mut req: BTreeMap<String, (f64, f64, f64, Vec<EvidenceRef>)> = BTreeMap::new();
    for r in &mined.request_token_stats {
        let Some(w) = r.workload.as_deref() else { continue };
        let n = r.requests.unwrap_or(0.0);
        let e = req.entry(w.to_string()).or_insert((0.0, 0.0, 0.0, vec![]));
        e.0 += n;
        e.1 += n * r.input_mean.unwrap_or(0.0);
        e.2 += n * r.output_mean.unwrap_or(0.0);
        let src = r.source.as_deref().unwrap_or("?");
        for (col, v) in [("input_mean", r.input_mean), ("output_mean", r.output_mean)] {
            if let Some(v) = v {
                e.3.push(EvidenceRef::new(
                    "request_token_stats",
                    format!("source={src}, workload={w}"),
                    col,
                    v,
                    "tokens",
                    "mean request shape",
                ));
            }
        }
    }
    let mut concurrency: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for r in &mined.request_concurrency {
        let Some(w) = r.workload.as_deref() else { continue };
        let n = r.requests.unwrap_or(0.0);
        let c = r.mean_concurrency.unwrap_or(1.0);
        let e = concurrency.entry(w.to_string()).or_default();
        e.0 += n * c;
        e.1 += n;
    }
    let mut workloads = Vec::new();
    let mut deployments: Vec<(String, String, Deployment)> = Vec::new();
    for (name, (n, input_sum, output_sum, mut evidence)) in req {
        if n <= 0.0 {
            continue;
        }
        let model_id = settings.models.get(&name).unwrap_or(&settings.model);
        let model = find_model(model_id)?;
        let measured_batch = concurrency.get(&name).map_or(1.0, |(s, k)| if *k > 0.0 { s / k } else { 1.0 }).max(1.0);
        let batch = settings.batch.unwrap_or(measured_batch).max(1.0);
        evidence.push(EvidenceRef::new(
            "request_concurrency",
            format!("workload={name}"),
            "mean_concurrency (request-weighted)",
            batch,
            "requests",
            "decode batch target",
        ));
        let dtype = normalize_dtype(&model.dtype).unwrap_or("bf16").to_string();
        let serving = Serving { dtype, batch, ..settings.serving.clone() };
        let mut serving = ServingWorkload { model, serving, input: input_sum / n, output: output_sum / n };
        let deployment = serving.deploy(base, settings.tensor_parallel)?;
        deployments.push((name.clone(), model_id.clone(), deployment));
        workloads.push(Workload::Requests {
            name: name.clone(),
            requests: n as u64,
            model_id: model_id.clone(),
            serving,
            evidence,
        });
    }
    Ok((workloads, deployment_assumptions(&deployments, base)))
}

/// What a run states about the tensor-parallel degrees: one line per model, degree and kind
/// (chosen, or not checked), naming its workloads, with the bytes of the one needing most.
fn deployment_assumptions(deployments: &[(String, String, Deployment)], base: &Machine) -> Vec<String> {
    /// Model, degree, chosen, fits.
    type Key = (String, u32, bool, Option<bool>);
    let key = |model: &str, d: &Deployment| (model.to_string(), d.tensor_parallel, d.chosen, d.memory.fits());
    let mut groups: Vec<(Key, Vec<&str>, &Deployment)> = Vec::new();
    for (name, model, d) in deployments {
        let k = key(model, d);
        match groups.iter_mut().find(|g| g.0 == k) {
            Some(g) => {
                g.1.push(name);
                if d.memory.needed_bytes > g.2.memory.needed_bytes {
                    g.2 = d;
                }
            }
            None => groups.push((k, vec![name], d)),
        }
    }
    groups
        .into_iter()
        .filter_map(|((model, ..), names, d)| {
            let names: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
            let who = if names.len() == 1 {
                format!("Workload {}", names[0])
            } else {
                format!("Workloads {} (bytes of the one needing most)", names.join(", "))
            };
            d.assumption(base, &model, &who)
        })
        .collect()
}

/// Features on whose changed profile some request workload's deployment (kept from the
/// baseline) no longer fits are not ranked: a warning names them, the workloads and the bytes.
fn drop_infeasible_features(
    feats: &mut Vec<features::Feature>,
    workloads: &[Workload],
    base: &Machine,
    warnings: &mut Vec<String>,
) {
    feats.retain(|f| {
        let m = base.with(&f.change);
        let broken: Vec<String> = workloads
            .iter()
            .filter_map(|w| match w {
                Workload::Requests { name, model_id, serving, .. } => {
                    let mem = serving.memory(&m);
                    (mem.fits() == Some(false)).then(|| {
                        format!(
                            "`{name}` ({model_id}, {}, tensor parallel {}: {:.0} bytes needed per device, {:.0} available)",
                            mem.dtype,
                            mem.tensor_parallel,
                            mem.needed_bytes.ceil(),
                            mem.available_bytes.unwrap_or(0.0).floor()
                        )
                    })
                }
                Workload::Kernels { .. } => None,
            })
            .collect();
        if !broken.is_empty() {
            warnings.push(format!(
                "feature `{}` ({}) is not ranked: on its profile the weights plus one request's KV cache at the mean context no longer fit for {} (every feature keeps the baseline's tensor-parallel degree)",
                f.id,
                f.step,
                broken.join(", ")
            ));
        }
        broken.is_empty()
    });
}

/// The assumptions every recommendation states.
fn assumptions(settings: &RecommendSettings) -> Vec<String> {
    vec![
        format!(
            "Request workloads are served by {} (per-workload overrides: {}), {} weights/KV, tensor parallel {}, efficiency {:.0}% of peak FLOP/s and {:.0}% of HBM bandwidth (assumptions).",
            settings.model,
            if settings.models.is_empty() { "none".to_string() } else { format!("{:?}", settings.models) },
            "native-dtype",
            settings.tensor_parallel.map_or_else(
                || "chosen per workload (the smallest power of two that fits; below)".to_string(),
                |t| t.to_string()
            ),
            100.0 * settings.serving.compute_efficiency,
            100.0 * settings.serving.memory_efficiency
        ),
        "A request costs a batch-1 prefill of its mean prompt plus its 1/b share of `output` decode steps at batch b = the workload's mean concurrency (capped by HBM capacity), with the mean context prompt + output/2.".into(),
        format!(
            "Kernel traces: measured kernel times are calibrated to the roofline of the trace's own device; kernels without FLOPs/bytes are attributed by category (GEMM/attention/conv → matrix peak of their dtype, unknown dtype = {}; elementwise/reduction/embedding/memset/DtoD copies → HBM bandwidth; host copies and `other` → unchanged).",
            settings.measured.default_dtype
        ),
        format!(
            "Collectives: {:.0} µs latency per call no bandwidth change helps; collectives of ≤ 8 ranks use scale-up links, larger ones scale-out.",
            settings.measured.collective_latency_s * 1e6
        ),
        "Feature costs are relative assumptions from pipelines/features (HBM bandwidth ×2 = 1.0).".into(),
        "Fleet shares come from the pipeline config; workloads it does not list weigh equally.".into(),
    ]
}

/// Builds the workloads of a mined lake and runs the recommender.
pub async fn build(
    session: &LakeSession,
    pipelines: &Pipelines,
    settings: &RecommendSettings,
) -> Result<Built, RunError> {
    let profiles = hardware::load_all(pipelines)?;
    let base_profile = hardware::find(&profiles, &settings.hardware)?;
    let base = Machine::from_profile(base_profile).map_err(tapeout_recommend::RecommendError::from)?;
    let models = models::load_all(pipelines)?;
    let find_model = |id: &str| {
        models.iter().find(|m| m.id == id).cloned().ok_or_else(|| {
            RunError::Settings(format!(
                "unknown model `{id}`; known: {}",
                models.iter().map(|m| m.id.as_str()).collect::<Vec<_>>().join(", ")
            ))
        })
    };
    find_model(&settings.model)?;
    let mut feats = features::load_all(pipelines)?;
    if !settings.features.is_empty() {
        feats.retain(|f| settings.features.contains(&f.id));
    }
    for f in &mut feats {
        if let Some(c) = settings.feature_costs.get(&f.id) {
            f.cost = *c;
        }
    }
    if feats.is_empty() {
        return Err(RunError::Settings("no candidate feature to rank (the selection matches none)".into()));
    }
    let mined = read_mined(session).await?;
    let mut warnings = Vec::new();
    let (mut workloads, deployed) = request_workloads(&mined, settings, &base, &find_model)?;
    drop_infeasible_features(&mut feats, &workloads, &base, &mut warnings);
    if feats.is_empty() {
        return Err(RunError::Settings(format!(
            "no candidate feature to rank: on every selected feature's profile some request workload no longer fits; {}",
            warnings.join("; ")
        )));
    }

    // Kernel-trace workloads, calibrated on their own device's profile.
    let devices = workload_devices(session).await?;
    let mut kernel_names: Vec<String> = mined.kernel_category_time.iter().filter_map(|r| r.workload.clone()).collect();
    kernel_names.sort();
    kernel_names.dedup();
    for name in kernel_names {
        let device = devices.get(&name);
        let matched = device.and_then(|d| hardware::match_device(&profiles, d)).is_some();
        let calib = match device.and_then(|d| hardware::match_device(&profiles, d)) {
            Some(p) => Machine::from_profile(p).unwrap_or_else(|_| base.clone()),
            None => {
                warnings.push(format!(
                    "workload `{name}`: device {} matches no hardware profile; its measured times are taken as if on the baseline `{}`",
                    device.map_or("(none in the trace)".to_string(), |d| format!("`{d}`")),
                    base.id
                ));
                base.clone()
            }
        };
        if let Some(mut w) = MeasuredWorkload::build(&name, &mined, &calib, &settings.measured) {
            if !matched {
                w.coverage.unknown_device(); // calibrated on the baseline: nothing of it is explained
            }
            workloads.push(Workload::Kernels { name, measured: w });
        }
    }
    let (shares, share_sources) = fleet_weights(&workloads, settings, &mined);
    for name in settings.fleet_mix.keys() {
        if !workloads.iter().any(|w| w.name() == name) {
            warnings.push(format!("fleet mix names workload `{name}`, which the lake does not have"));
        }
    }
    let recommendations = recommend(Inputs {
        base: &base,
        workloads: workloads.clone(),
        shares,
        share_sources,
        counter_bound_classes: counter_bound_classes(&mined),
        features: &feats,
        lake_version: session.snapshot().version,
        assumptions: {
            // The degrees right after the serving line they complete.
            let mut a = assumptions(settings);
            a.splice(1..1, deployed);
            a
        },
        warnings,
    })?;
    Ok(Built { recommendations, mined, workloads })
}

/// Writes recommendations.json and recommendations.md into `out` (atomically each).
pub fn write_outputs(out: &Path, recs: &Recommendations) -> Result<(), RunError> {
    crate::create_dir(out)?;
    let json = serde_json::to_string_pretty(recs)
        .map_err(|e| RunError::Json { path: out.join("recommendations.json"), message: e.to_string() })?;
    crate::write_atomic(&out.join("recommendations.json"), json.as_bytes())?;
    crate::write_atomic(&out.join("recommendations.md"), recs.to_markdown().as_bytes())
}

/// Each workload's fleet weight and where it comes from: the pipeline's `[fleet]` value, else
/// the device-hours device telemetry measured for it (`device_hours`), else 1 without telemetry
/// or the mean of the other weights with it. With telemetry, a `[fleet]` value is read in
/// device-hours, like the measured weights it stands beside.
pub fn fleet_weights(
    workloads: &[Workload],
    settings: &RecommendSettings,
    mined: &Mined,
) -> (Vec<f64>, Vec<ShareSource>) {
    let hours = mined.device_hours_by_workload();
    let known: Vec<Option<(f64, ShareSource)>> = workloads
        .iter()
        .map(|w| {
            if let Some(v) = settings.fleet_mix.get(w.name()) {
                Some((*v, ShareSource::Config))
            } else {
                hours.get(w.name()).filter(|h| **h > 0.0).map(|h| (*h, ShareSource::Telemetry))
            }
        })
        .collect();
    // Without telemetry, an unlisted workload weighs 1 (as the config's weights are relative);
    // with it, weights are device-hours and an unmeasured workload takes their mean.
    let given: Vec<f64> = known.iter().flatten().map(|k| k.0).collect();
    let mean = if hours.is_empty() || given.is_empty() { 1.0 } else { given.iter().sum::<f64>() / given.len() as f64 };
    known.into_iter().map(|k| k.unwrap_or((mean, ShareSource::Equal))).unzip()
}

/// The counter-based bound class per workload (device telemetry): `model: class` per device
/// model, with the counters it rests on and those missing.
fn counter_bound_classes(mined: &Mined) -> BTreeMap<String, (String, String)> {
    let mut by: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for r in &mined.device_bound_class {
        let (Some(w), Some(class)) = (&r.workload, &r.bound_class) else { continue };
        let model = r.device_model.clone().unwrap_or_else(|| "unknown device".into());
        let mut basis = r.basis.clone().unwrap_or_default();
        if let Some(m) = r.missing.as_deref().filter(|m| !m.is_empty()) {
            basis.push_str(&format!(" (missing: {m})"));
        }
        by.entry(w.clone()).or_default().push((format!("{model}: {class}"), basis));
    }
    by.into_iter()
        .map(|(w, v)| {
            let class = v.iter().map(|x| x.0.as_str()).collect::<Vec<_>>().join("; ");
            let basis = v.iter().map(|x| x.1.as_str()).collect::<Vec<_>>().join("; ");
            (w, (class, basis))
        })
        .collect()
}
