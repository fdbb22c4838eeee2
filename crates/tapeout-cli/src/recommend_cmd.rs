//! `tapeout recommend`: rank candidate chip features on a mined lake.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use datafusion::arrow::json::ArrayWriter;
use serde_json::{Map, Value};
use tapeout_engine::{LakeSession, SessionOptions};
use tapeout_pipelines::{Pipelines, hardware, models};
use tapeout_recommend::evidence::EvidenceRef;
use tapeout_recommend::features;
use tapeout_recommend::machine::{Machine, normalize_dtype};
use tapeout_recommend::measured::{MeasuredAssumptions, MeasuredWorkload, Mined};
use tapeout_recommend::rank::Workload;
use tapeout_recommend::serving::{Serving, ServingWorkload};
use tapeout_recommend::{Inputs, Recommendations, recommend};

/// Mined tables the recommender reads.
pub const JOBS_READ: &[&str] = &[
    "kernel_category_time",
    "kernel_time_buckets",
    "comm_compute_overlap",
    "gpu_idle_time",
    "collective_bandwidth",
    "request_token_stats",
    "request_concurrency",
];

#[derive(clap::Args)]
pub struct RecommendArgs {
    /// Lake directory (mined with `tapeout mine`).
    #[arg(long, env = "TAPEOUT_LAKE", required_unless_present = "list")]
    pub lake: Option<PathBuf>,
    /// Baseline hardware profile id (see --list hardware).
    #[arg(long, default_value = "h100-sxm")]
    pub hardware: String,
    /// Model serving the request-level workloads (see --list models).
    #[arg(long, default_value = "llama-3.1-8b")]
    pub model: String,
    /// Output directory for recommendations.json and recommendations.md.
    #[arg(long, required_unless_present = "list")]
    pub out: Option<PathBuf>,
    /// A folder laid out like pipelines/ (hardware/, models/, features/).
    #[arg(long, env = "TAPEOUT_PIPELINES")]
    pub pipelines: Option<PathBuf>,
    /// List what is known and exit: hardware, models or features.
    #[arg(long, value_enum)]
    pub list: Option<ListKind>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum ListKind {
    Hardware,
    Models,
    Features,
}

/// Settings of one recommendation run (from flags or a pipeline config).
#[derive(Debug, Clone)]
pub struct RecommendSettings {
    pub hardware: String,
    /// Default model for request workloads.
    pub model: String,
    /// Per-workload model overrides.
    pub models: BTreeMap<String, String>,
    /// Fleet share per workload (missing: equal).
    pub fleet_mix: BTreeMap<String, f64>,
    pub serving: Serving,
    /// Decode batch for every request workload (default: measured mean concurrency).
    pub batch: Option<f64>,
    pub measured: MeasuredAssumptions,
    /// Feature ids to rank (empty: all).
    pub features: Vec<String>,
    /// Relative cost overrides by feature id.
    pub feature_costs: BTreeMap<String, f64>,
}

impl RecommendSettings {
    pub fn new(hardware: &str, model: &str) -> Self {
        RecommendSettings {
            hardware: hardware.into(),
            model: model.into(),
            models: BTreeMap::new(),
            fleet_mix: BTreeMap::new(),
            serving: Serving { compute_efficiency: 0.7, memory_efficiency: 0.85, ..Serving::default() },
            batch: None,
            measured: MeasuredAssumptions::default(),
            features: Vec::new(),
            feature_costs: BTreeMap::new(),
        }
    }
}

async fn table_rows(session: &LakeSession, sql: &str) -> anyhow::Result<Vec<Map<String, Value>>> {
    let batches = session.sql(sql).await?.collect().await?;
    let mut w = ArrayWriter::new(Vec::new());
    let refs: Vec<_> = batches.iter().collect();
    w.write_batches(&refs)?;
    w.finish()?;
    let bytes = w.into_inner();
    if bytes.is_empty() {
        return Ok(vec![]);
    }
    let v: Vec<Map<String, Value>> = serde_json::from_slice(&bytes)?;
    Ok(v)
}

/// Reads the mined tables the recommender needs; a clear error when the lake was not mined.
pub async fn read_mined(session: &LakeSession) -> anyhow::Result<Mined> {
    let names = session.table_names();
    let missing: Vec<&str> = JOBS_READ.iter().copied().filter(|j| !names.iter().any(|n| n == j)).collect();
    if !missing.is_empty() {
        bail!(
            "{}: the lake was not mined yet (no result for {}); run `tapeout mine --lake {}` first",
            session.lake().display(),
            missing.join(", "),
            session.lake().display()
        );
    }
    let mut mined = Mined::new();
    for job in JOBS_READ {
        // Binary histogram columns are not needed here.
        let cols = if *job == "request_token_stats" {
            "source, workload, requests, input_mean, output_mean, input_p50, input_p90, input_p99, output_p50, output_p90, output_p99"
        } else {
            "*"
        };
        mined.insert(job.to_string(), table_rows(session, &format!("select {cols} from {job}")).await?);
    }
    Ok(mined)
}

/// Builds the workloads and runs the recommender.
pub async fn build(
    session: &LakeSession,
    pipelines: &Pipelines,
    settings: &RecommendSettings,
) -> anyhow::Result<(Recommendations, Mined, Vec<Workload>)> {
    let profiles = hardware::load_all(pipelines)?;
    let base_profile = hardware::find(&profiles, &settings.hardware)?;
    let base = Machine::from_profile(base_profile)?;
    let models = models::load_all(pipelines)?;
    let find_model = |id: &str| {
        models.iter().find(|m| m.id == id).cloned().ok_or_else(|| {
            anyhow::anyhow!(
                "unknown model `{id}`; known: {}",
                models.iter().map(|m| m.id.as_str()).collect::<Vec<_>>().join(", ")
            )
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
        bail!("no candidate feature to rank (the selection matches none)");
    }
    let mined = read_mined(session).await?;
    let mut warnings = Vec::new();
    let mut workloads = Vec::new();

    // Request-level workloads: one per workload name, sources merged (request-weighted).
    let mut req: BTreeMap<String, (f64, f64, f64, Vec<EvidenceRef>)> = BTreeMap::new();
    for r in &mined["request_token_stats"] {
        let Some(w) = r.get("workload").and_then(Value::as_str) else { continue };
        let n = r.get("requests").and_then(Value::as_f64).unwrap_or(0.0);
        let e = req.entry(w.to_string()).or_insert((0.0, 0.0, 0.0, vec![]));
        e.0 += n;
        e.1 += n * r.get("input_mean").and_then(Value::as_f64).unwrap_or(0.0);
        e.2 += n * r.get("output_mean").and_then(Value::as_f64).unwrap_or(0.0);
        let src = r.get("source").and_then(Value::as_str).unwrap_or("?");
        for (col, v) in [("input_mean", r.get("input_mean")), ("output_mean", r.get("output_mean"))] {
            if let Some(v) = v.and_then(Value::as_f64) {
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
    for r in &mined["request_concurrency"] {
        let Some(w) = r.get("workload").and_then(Value::as_str) else { continue };
        let n = r.get("requests").and_then(Value::as_f64).unwrap_or(0.0);
        let c = r.get("mean_concurrency").and_then(Value::as_f64).unwrap_or(1.0);
        let e = concurrency.entry(w.to_string()).or_default();
        e.0 += n * c;
        e.1 += n;
    }
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
        workloads.push(Workload::Requests {
            name: name.clone(),
            requests: n as u64,
            model_id: model_id.clone(),
            serving: ServingWorkload { model, serving, input: input_sum / n, output: output_sum / n },
            evidence,
        });
    }

    // Kernel-trace workloads, calibrated on their own device's profile.
    let devices = table_rows(session, "select workload, min(name) as name from devices group by workload").await?;
    let mut kernel_names: Vec<String> = mined["kernel_category_time"]
        .iter()
        .filter_map(|r| r.get("workload").and_then(Value::as_str).map(str::to_string))
        .collect();
    kernel_names.sort();
    kernel_names.dedup();
    for name in kernel_names {
        let device = devices
            .iter()
            .find(|d| d.get("workload").and_then(Value::as_str) == Some(&name))
            .and_then(|d| d.get("name").and_then(Value::as_str))
            .map(str::to_string);
        let calib = match device.as_deref().and_then(|d| hardware::match_device(&profiles, d)) {
            Some(p) => Machine::from_profile(p).unwrap_or_else(|_| base.clone()),
            None => {
                warnings.push(format!(
                    "workload `{name}`: device {} matches no hardware profile; its measured times are taken as if on the baseline `{}`",
                    device.as_deref().map_or("(none in the trace)".to_string(), |d| format!("`{d}`")),
                    base.id
                ));
                base.clone()
            }
        };
        if let Some(w) = MeasuredWorkload::build(&name, &mined, &calib, &settings.measured) {
            workloads.push(Workload::Kernels { name, measured: w });
        }
    }
    let shares: Vec<f64> = workloads.iter().map(|w| settings.fleet_mix.get(w.name()).copied().unwrap_or(1.0)).collect();
    for name in settings.fleet_mix.keys() {
        if !workloads.iter().any(|w| w.name() == name) {
            warnings.push(format!("fleet mix names workload `{name}`, which the lake does not have"));
        }
    }
    let assumptions = vec![
        format!(
            "Request workloads are served by {} (per-workload overrides: {}), {} weights/KV, tensor parallel {}, efficiency {:.0}% of peak FLOP/s and {:.0}% of HBM bandwidth (assumptions).",
            settings.model,
            if settings.models.is_empty() { "none".to_string() } else { format!("{:?}", settings.models) },
            "native-dtype",
            settings.serving.tensor_parallel,
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
    ];
    let recs = recommend(Inputs {
        base: &base,
        workloads: workloads.clone(),
        shares,
        features: &feats,
        lake_version: session.snapshot().version,
        assumptions,
        warnings,
    })?;
    Ok((recs, mined, workloads))
}

/// Writes recommendations.json and recommendations.md into `out` (atomically each).
pub fn write_outputs(out: &Path, recs: &Recommendations) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    crate::fsx::write_atomic(&out.join("recommendations.json"), serde_json::to_string_pretty(recs)?.as_bytes())?;
    crate::fsx::write_atomic(&out.join("recommendations.md"), recs.to_markdown().as_bytes())?;
    Ok(())
}

fn list(kind: ListKind, pipelines: &Pipelines) -> anyhow::Result<()> {
    match kind {
        ListKind::Hardware => {
            for p in hardware::load_all(pipelines)? {
                println!("{:<16} {}  (device pattern: {})", p.id, p.name, p.device_pattern.as_deref().unwrap_or("-"));
            }
        }
        ListKind::Models => {
            for m in models::load_all(pipelines)? {
                println!("{:<16} {}  ({:.2}B params, {} layers, {})", m.id, m.name, m.params / 1e9, m.layers, m.dtype);
            }
        }
        ListKind::Features => {
            for f in features::load_all(pipelines)? {
                println!("{:<20} {}  (cost {})", f.id, f.step, f.cost);
            }
        }
    }
    Ok(())
}

pub async fn run(args: RecommendArgs) -> anyhow::Result<u8> {
    let pipelines = args.pipelines.clone().map_or_else(Pipelines::embedded, Pipelines::dir);
    if let Some(kind) = args.list {
        list(kind, &pipelines)?;
        return Ok(0);
    }
    let (Some(lake), Some(out)) = (args.lake.as_ref(), args.out.as_ref()) else {
        bail!("--lake and --out are required")
    };
    let session =
        LakeSession::open(lake, SessionOptions { pipelines: Some(pipelines.clone()), ..Default::default() }).await?;
    let settings = RecommendSettings::new(&args.hardware, &args.model);
    let (recs, _, _) = build(&session, &pipelines, &settings).await?;
    write_outputs(out, &recs)?;
    for w in &recs.warnings {
        eprintln!("warning: {w}");
    }
    for r in recs.recommendations.iter().take(5) {
        eprintln!(
            "{:>2}. {:<20} {:>6.1}% fleet time saved  ({})",
            r.rank,
            r.feature,
            100.0 * r.time_saved_fraction,
            r.step
        );
    }
    eprintln!("wrote {} and recommendations.md", out.join("recommendations.json").display());
    Ok(0)
}
