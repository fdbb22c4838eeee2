//! `tapeout run`: ingest → mine → recommend → report, from one pipeline config; and
//! `tapeout report`, which re-renders the last report of a lake without recomputing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use serde::Serialize;
use serde_json::Value;
use tapeout_engine::mine::{JobOutcome, MineOptions, run_jobs, validate};
use tapeout_engine::{LakeSession, SessionOptions};
use tapeout_formats::SourceFormat;
use tapeout_lake::{IngestOptions, IngestSummary};
use tapeout_pipelines::config::{LoadedConfig, PipelineConfig};
use tapeout_pipelines::{Pipelines, hardware, jobs, models};
use tapeout_recommend::features;
use tapeout_recommend::serving::Serving;

use crate::progress::IngestBar;
use crate::recommend_cmd::{RecommendSettings, build as build_recommendations, write_outputs};
use crate::report_build::{self, TokenHistogram};

/// Default pipeline, relative to the current directory.
pub const DEFAULT_PIPELINE: &str = "pipelines/default.toml";

#[derive(clap::Args)]
pub struct RunArgs {
    /// Pipeline config (default: pipelines/default.toml, the sample traces).
    pub pipeline: Option<PathBuf>,
    /// Print the run summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Recompute mining results that are up to date.
    #[arg(long)]
    pub force: bool,
    /// Engine of the mining stage (recommendations read the mined results locally).
    #[command(flatten)]
    pub engine: crate::engine_args::EngineArgs,
}

#[derive(clap::Args)]
pub struct ReportArgs {
    /// Lake whose last run's report is re-rendered.
    #[arg(long, env = "TAPEOUT_LAKE")]
    pub lake: PathBuf,
    /// Output directory for report.html and report.md.
    #[arg(long)]
    pub out: PathBuf,
}

/// One stage's line in the summary.
#[derive(Debug, Serialize)]
struct Stage {
    stage: &'static str,
    seconds: f64,
    detail: String,
}

/// `summary.json` and `--json`.
#[derive(Debug, Serialize)]
struct RunSummary {
    tapeout_version: &'static str,
    pipeline: String,
    config_hash: String,
    lake: String,
    lake_version: u64,
    report: String,
    exit_code: u8,
    ingest: IngestTotals,
    jobs_computed: usize,
    jobs_up_to_date: usize,
    jobs_failed: Vec<String>,
    top_recommendations: Vec<String>,
    stages: Vec<Stage>,
}

#[derive(Debug, Default, Serialize)]
struct IngestTotals {
    inputs: usize,
    skipped: usize,
    rows: u64,
    quarantined: u64,
    rejected: usize,
}

/// Everything checked before any work starts.
struct Plan {
    loaded: LoadedConfig,
    pipelines: Pipelines,
    lake: PathBuf,
    report: PathBuf,
    jobs: Vec<jobs::Job>,
    params: BTreeMap<String, String>,
    settings: RecommendSettings,
}

fn plan(path: &Path) -> anyhow::Result<Plan> {
    let loaded = PipelineConfig::load(path)?;
    let c = &loaded.config;
    let file = path.display().to_string();
    let pipelines = match &c.pipelines {
        Some(p) => {
            let dir = loaded.resolve(p);
            if !dir.is_dir() {
                bail!("{file}: `pipelines`: {} is not a directory", dir.display());
            }
            Pipelines::dir(dir)
        }
        None => Pipelines::embedded(),
    };
    // Names: hardware, models, features, jobs and their parameters.
    let profiles = hardware::load_all(&pipelines)?;
    hardware::find(&profiles, &c.hardware).map_err(|e| anyhow::anyhow!("{file}: `hardware`: {e}"))?;
    let known_models = models::load_all(&pipelines)?;
    let check_model = |key: &str, id: &str| -> anyhow::Result<()> {
        if known_models.iter().any(|m| m.id == id) {
            Ok(())
        } else {
            bail!(
                "{file}: `{key}`: unknown model `{id}`; known: {}",
                known_models.iter().map(|m| m.id.as_str()).collect::<Vec<_>>().join(", ")
            )
        }
    };
    check_model("serving.model", &c.serving.model)?;
    let mut model_by_workload = BTreeMap::new();
    for (i, s) in c.sources.iter().enumerate() {
        let key = format!("source[{i}]");
        if let Some(m) = &s.model {
            check_model(&format!("{key}.model"), m)?;
            let Some(w) = &s.workload else {
                bail!("{file}: `{key}.model` needs `{key}.workload` (the model serves that workload)");
            };
            model_by_workload.insert(w.clone(), m.clone());
        }
        if let Some(fmt) = &s.format
            && SourceFormat::from_id(fmt).is_none()
        {
            bail!(
                "{file}: `{key}.format`: unknown format `{fmt}`; known: {}",
                SourceFormat::ALL.map(|f| f.id()).join(", ")
            );
        }
        let p = loaded.resolve(&s.path);
        let exists = p.exists() || glob::glob(&p.to_string_lossy()).map(|mut g| g.any(|e| e.is_ok())).unwrap_or(false);
        if !exists {
            bail!("{file}: `{key}.path`: {} does not exist (no file, directory or glob match)", p.display());
        }
    }
    let known_features = features::load_all(&pipelines)?;
    let feature_ids: Vec<&str> = known_features.iter().map(|f| f.id.as_str()).collect();
    for (key, id) in
        c.features.ids.iter().map(|i| ("features.ids", i)).chain(c.features.cost.keys().map(|i| ("features.cost", i)))
    {
        if !feature_ids.contains(&id.as_str()) {
            bail!("{file}: `{key}`: unknown feature `{id}`; known: {}", feature_ids.join(", "));
        }
    }
    let mut all_jobs = jobs::load_all(&pipelines)?;
    if !c.mining.jobs.is_empty() {
        for g in &c.mining.jobs {
            glob::Pattern::new(g).with_context(|| format!("{file}: `mining.jobs`: `{g}` is not a valid glob"))?;
        }
        all_jobs.retain(|j| c.mining.jobs.iter().any(|g| glob::Pattern::new(g).is_ok_and(|p| p.matches(&j.name))));
    }
    // The recommender needs its jobs whatever the selection says.
    let needed = crate::recommend_cmd::JOBS_READ;
    let every = jobs::load_all(&pipelines)?;
    for n in needed {
        if !all_jobs.iter().any(|j| j.name == *n)
            && let Some(j) = every.iter().find(|j| j.name == *n)
        {
            all_jobs.push(j.clone());
        }
    }
    let params: BTreeMap<String, String> = c
        .mining
        .params
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_string)))
        .collect();
    validate(&all_jobs, &MineOptions { params: params.clone(), force: false })
        .map_err(|e| anyhow::anyhow!("{file}: `mining.params`: {e}"))?;
    let mut settings = RecommendSettings::new(&c.hardware, &c.serving.model);
    settings.models = model_by_workload;
    settings.fleet_mix = c.fleet.clone();
    settings.serving = Serving {
        tensor_parallel: c.serving.tensor_parallel,
        compute_efficiency: c.serving.compute_efficiency,
        memory_efficiency: c.serving.memory_efficiency,
        ..settings.serving
    };
    settings.batch = c.serving.batch;
    settings.features = c.features.ids.clone();
    settings.feature_costs = c.features.cost.clone();
    Ok(Plan {
        lake: loaded.resolve(&c.lake),
        report: loaded.resolve(&c.report),
        loaded,
        pipelines,
        jobs: all_jobs,
        params,
        settings,
    })
}

async fn token_histograms(session: &LakeSession) -> anyhow::Result<TokenHistogram> {
    let sql = "select workload, kind, b, count(*) as n from (\
        select workload, 'input' as kind, power(2.0, ceil(log2(cast(greatest(input_tokens, 1) as double)))) as b from requests \
        union all \
        select workload, 'output' as kind, power(2.0, ceil(log2(cast(greatest(output_tokens, 1) as double)))) as b from requests) \
        where workload is not null group by workload, kind, b order by workload, kind, b";
    let batches = session.sql(sql).await?.collect().await?;
    let mut out = Vec::new();
    for b in &batches {
        use datafusion::arrow::array::AsArray;
        use datafusion::arrow::datatypes::{Float64Type, Int64Type};
        let w = b.column(0).as_string::<i32>();
        let k = b.column(1).as_string::<i32>();
        let x = b.column(2).as_primitive::<Float64Type>();
        let n = b.column(3).as_primitive::<Int64Type>();
        for i in 0..b.num_rows() {
            out.push((w.value(i).to_string(), k.value(i).to_string(), x.value(i), n.value(i) as u64));
        }
    }
    Ok(out)
}

pub async fn run(args: RunArgs, quiet: bool) -> anyhow::Result<u8> {
    let path = args.pipeline.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_PIPELINE));
    if !path.is_file() {
        bail!(
            "{}: no pipeline config here{}",
            path.display(),
            if args.pipeline.is_none() { " (run from the repository root, or name a pipeline file)" } else { "" }
        );
    }
    let plan = plan(&path)?;
    let c = &plan.loaded.config;
    let say = |s: String| {
        if !args.json {
            eprintln!("{s}");
        }
    };
    let mut stages = Vec::new();

    // 1. Ingest, one call per source (each has its own workload/format options).
    let started = Instant::now();
    let mut totals = IngestTotals::default();
    let mut exit: u8;
    for s in &c.sources {
        let bar = IngestBar::new(quiet || args.json);
        let opts = IngestOptions {
            format: s.format.as_deref().and_then(SourceFormat::from_id),
            workload: s.workload.clone(),
            progress: Some(bar.clone()),
            ..IngestOptions::default()
        };
        let input = plan.loaded.resolve(&s.path).display().to_string();
        let summary: IngestSummary = tapeout_lake::ingest(&plan.lake, std::slice::from_ref(&input), opts)
            .await
            .with_context(|| format!("ingest of {input} into {} failed", plan.lake.display()))?;
        bar.finish();
        totals.inputs += summary.inputs;
        totals.skipped += summary.skipped;
        totals.rows += summary.rows;
        totals.quarantined += summary.quarantined;
        totals.rejected += summary.rejected;
        for d in summary.details.iter().filter(|d| d.status == tapeout_lake::InputStatus::Rejected) {
            say(format!("rejected  {}: {}", d.path, d.reason.as_deref().unwrap_or_default()));
        }
    }
    // The run's exit code is the ingest's over all sources together (as one `tapeout ingest`).
    exit = if totals.rejected > 0 && totals.rejected == totals.inputs {
        1
    } else if totals.rejected > 0 {
        3
    } else if totals.quarantined > 0 {
        2
    } else {
        0
    };
    let detail = format!(
        "{} inputs: {} rows landed, {} already in the lake, {} quarantined, {} rejected",
        totals.inputs, totals.rows, totals.skipped, totals.quarantined, totals.rejected
    );
    say(format!("[1/4] ingest     {:>6.2} s  {detail}", started.elapsed().as_secs_f64()));
    stages.push(Stage { stage: "ingest", seconds: started.elapsed().as_secs_f64(), detail });
    if exit == 1 {
        bail!("every input was rejected; nothing to mine");
    }

    // 2. Mine.
    let started = Instant::now();
    let session = args
        .engine
        .open(
            &tapeout_lake::LakeLocation::Local(plan.lake.clone()),
            SessionOptions { pipelines: Some(plan.pipelines.clone()), without_results: true, ..Default::default() },
        )
        .await?;
    let reports =
        run_jobs(&session, &plan.jobs, &MineOptions { params: plan.params.clone(), force: args.force }, |_| {}).await?;
    let computed = reports.iter().filter(|r| matches!(r.outcome, JobOutcome::Computed { .. })).count();
    let failed: Vec<String> = reports
        .iter()
        .filter_map(|r| match &r.outcome {
            JobOutcome::Failed { error } => Some(format!("{}: {error}", r.job)),
            _ => None,
        })
        .collect();
    let detail = format!(
        "{} jobs on lake version {}: {computed} computed, {} up to date, {} failed",
        reports.len(),
        session.snapshot().version,
        reports.len() - computed - failed.len(),
        failed.len()
    );
    say(format!("[2/4] mine       {:>6.2} s  {detail}", started.elapsed().as_secs_f64()));
    for f in &failed {
        say(format!("      FAILED {f}"));
    }
    stages.push(Stage { stage: "mine", seconds: started.elapsed().as_secs_f64(), detail });
    if !failed.is_empty() {
        exit = 1;
    }

    // 3. Recommend.
    let started = Instant::now();
    let session =
        LakeSession::open(&plan.lake, SessionOptions { pipelines: Some(plan.pipelines.clone()), ..Default::default() })
            .await?;
    let (mut recs, mined, workloads) = build_recommendations(&session, &plan.pipelines, &plan.settings).await?;
    recs.config_hash = Some(plan.loaded.hash.clone());
    write_outputs(&plan.report, &recs)?;
    let top: Vec<String> = recs
        .recommendations
        .iter()
        .take(3)
        .map(|r| format!("{} ({:.1}% fleet time saved)", r.feature, 100.0 * r.time_saved_fraction))
        .collect();
    let detail =
        format!("{} workloads, {} features; top: {}", recs.workloads.len(), recs.recommendations.len(), top.join(", "));
    say(format!("[3/4] recommend  {:>6.2} s  {detail}", started.elapsed().as_secs_f64()));
    for w in &recs.warnings {
        say(format!("      warning: {w}"));
    }
    stages.push(Stage { stage: "recommend", seconds: started.elapsed().as_secs_f64(), detail });

    // 4. Report.
    let started = Instant::now();
    let hist = token_histograms(&session).await?;
    let report = report_build::build(&c.name, &plan.loaded.hash, &recs, &workloads, &mined, &hist);
    report_build::write(&plan.report, &report, Some(session.lake()))?;
    let detail = format!("{}", plan.report.join("report.html").display());
    say(format!("[4/4] report     {:>6.2} s  {detail}", started.elapsed().as_secs_f64()));
    stages.push(Stage { stage: "report", seconds: started.elapsed().as_secs_f64(), detail });

    let summary = RunSummary {
        tapeout_version: env!("CARGO_PKG_VERSION"),
        pipeline: path.display().to_string(),
        config_hash: plan.loaded.hash.clone(),
        lake: plan.lake.display().to_string(),
        lake_version: session.snapshot().version,
        report: plan.report.display().to_string(),
        exit_code: exit,
        ingest: totals,
        jobs_computed: computed,
        jobs_up_to_date: reports.len() - computed - failed.len(),
        jobs_failed: failed,
        top_recommendations: top,
        stages,
    };
    let text = serde_json::to_string_pretty(&summary)?;
    crate::fsx::write_atomic(&plan.report.join("summary.json"), text.as_bytes())?;
    if args.json {
        println!("{text}");
    }
    Ok(exit)
}

/// `tapeout report`: re-render the lake's last report.
pub fn report(args: ReportArgs) -> anyhow::Result<u8> {
    let stored = report_build::stored_report(&args.lake);
    let text = std::fs::read(&stored).with_context(|| {
        format!("{}: no report stored in this lake; run `tapeout run` (which stores one) first", stored.display())
    })?;
    let report: tapeout_report::model::Report =
        serde_json::from_slice(&text).with_context(|| format!("{}: not a tapeout report", stored.display()))?;
    report_build::write(&args.out, &report, None)?;
    let _: Option<Value> = None;
    eprintln!("wrote {} and report.md", args.out.join("report.html").display());
    Ok(0)
}
