//! The stages of a run — ingest, mine, recommend, report — over a checked [`Plan`].

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use tapeout_engine::mine::{JobOutcome, JobReport, MineOptions, run_jobs};
use tapeout_engine::{LakeSession, SessionOptions};
use tapeout_formats::SourceFormat;
use tapeout_lake::{IngestOptions, InputStatus, LakeLocation, ProgressSink};
use tapeout_pipelines::jobs::Job;

use crate::RunError;
use crate::mined::token_histograms;
use crate::plan::Plan;
use crate::recommendations::{Built, build, write_outputs};

/// Where mining queries run (recommendations read the mined results locally).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Engine {
    /// DataFusion in this process.
    Local,
    /// A Ballista cluster of tapeout executors behind this scheduler (`df://host:port`).
    Ballista { scheduler: String },
}

impl Engine {
    /// Opens `location` on this engine.
    pub async fn open(&self, location: &LakeLocation, opts: SessionOptions) -> Result<LakeSession, RunError> {
        Ok(match self {
            Engine::Local => LakeSession::open_at(location, opts).await?,
            Engine::Ballista { scheduler } => tapeout_cluster::open_session(location, opts, scheduler).await?,
        })
    }
}

/// Runs mining `jobs` over `location` on `engine`. On Ballista, a job whose plan is too deep
/// for Ballista 55 to ship to its executors (the plan decoder's recursion limit,
/// `RecursionLimitReached`; `device_hours`) runs again on the local engine, pinned to the same
/// lake version, and a warning says so; any other failure stays a failure. `on_done` sees each
/// job's final outcome, in job order.
pub async fn mine_jobs(
    engine: &Engine,
    location: &LakeLocation,
    opts: SessionOptions,
    jobs: &[Job],
    mine_opts: &MineOptions,
    mut on_done: impl FnMut(&JobReport),
) -> Result<(LakeSession, Vec<JobReport>), RunError> {
    let session = engine.open(location, opts.clone()).await?;
    if let Engine::Local = engine {
        let reports = run_jobs(&session, jobs, mine_opts, on_done).await?;
        return Ok((session, reports));
    }
    let mut reports = run_jobs(&session, jobs, mine_opts, |_| {}).await?;
    let too_deep =
        |r: &JobReport| matches!(&r.outcome, JobOutcome::Failed { error } if error.contains("RecursionLimitReached"));
    let deep: Vec<Job> = jobs.iter().zip(&reports).filter(|(_, r)| too_deep(r)).map(|(j, _)| j.clone()).collect();
    if !deep.is_empty() {
        let local_opts = SessionOptions { at_version: Some(session.snapshot().version), ..opts };
        let local = LakeSession::open_at(location, local_opts).await?;
        let again = run_jobs(&local, &deep, mine_opts, |_| {}).await?;
        for r in again {
            tracing::warn!(job = %r.job, "plan too deep for Ballista's plan decoding; ran on the local engine");
            if let Some(slot) = reports.iter_mut().find(|x| x.job == r.job) {
                *slot = r;
            }
        }
    }
    reports.iter().for_each(&mut on_done);
    Ok((session, reports))
}

/// Options of one run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Recompute mining results that are up to date.
    pub force: bool,
    /// Engine of the mining stage.
    pub engine: Engine,
    /// Mine and recommend from an incomplete lake (`SessionOptions::allow_partial`).
    pub allow_partial: bool,
}

/// What a caller sees of a run while it goes.
pub trait RunObserver {
    /// A progress sink for the next source's ingest (`None`: no progress).
    fn ingest_progress(&self) -> Option<Arc<dyn ProgressSink>> {
        None
    }
    /// The source whose ingest began last has ended.
    fn ingest_source_done(&self) {}
    /// A stage ended; `number` counts from 1 of [`STAGES`].
    fn stage_done(&self, _number: usize, _stage: &Stage) {}
    /// Something worth telling as it happens.
    fn note(&self, _note: Note<'_>) {}
}

/// What a run tells as it happens, besides the stage lines.
#[derive(Debug, Clone, Copy)]
pub enum Note<'a> {
    /// An input the ingest rejected, with the reason.
    Rejected { path: &'a str, reason: &'a str },
    /// A mining job that failed (`job: error`).
    JobFailed(&'a str),
    /// A recommender warning.
    Warning(&'a str),
}

/// The number of stages of a run.
pub const STAGES: usize = 4;

/// One stage's line in the summary.
#[derive(Debug, Serialize)]
pub struct Stage {
    pub stage: &'static str,
    pub seconds: f64,
    pub detail: String,
}

/// `summary.json` and `tapeout run --json`.
#[derive(Debug, Serialize)]
pub struct RunSummary {
    pub tapeout_version: &'static str,
    pub pipeline: String,
    pub config_hash: String,
    pub lake: String,
    pub lake_version: u64,
    pub report: String,
    pub exit_code: u8,
    pub ingest: IngestTotals,
    pub jobs_computed: usize,
    pub jobs_up_to_date: usize,
    pub jobs_failed: Vec<String>,
    pub top_recommendations: Vec<String>,
    pub stages: Vec<Stage>,
}

/// Ingest counts over every source of a run.
#[derive(Debug, Default, Serialize)]
pub struct IngestTotals {
    pub inputs: usize,
    pub skipped: usize,
    pub rows: u64,
    pub quarantined: u64,
    pub rejected: usize,
    /// Inputs whose last line is pending (still being written; lands on a later run).
    #[serde(skip_serializing_if = "is_zero")]
    pub pending: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl IngestTotals {
    /// The exit code `tapeout ingest` would give for these inputs together: 0 clean; 2
    /// quarantined records; 3 some inputs rejected; 1 every input rejected.
    pub fn exit_code(&self) -> u8 {
        if self.rejected > 0 && self.rejected == self.inputs {
            1
        } else if self.rejected > 0 {
            3
        } else if self.quarantined > 0 {
            2
        } else {
            0
        }
    }
}

/// Ingests every source of the plan, one call each (each has its own workload/format).
async fn ingest(plan: &Plan, observer: &dyn RunObserver) -> Result<IngestTotals, RunError> {
    let mut totals = IngestTotals::default();
    for (i, s) in plan.loaded.config.sources.iter().enumerate() {
        let opts = IngestOptions {
            format: s.format.as_deref().and_then(SourceFormat::from_id),
            workload: s.workload.clone(),
            progress: observer.ingest_progress(),
            telemetry: plan.telemetry.get(i).cloned().unwrap_or_default(),
            ..IngestOptions::default()
        };
        let input = plan.loaded.resolve(&s.path).display().to_string();
        let summary = tapeout_lake::ingest(&plan.lake, std::slice::from_ref(&input), opts).await.map_err(|source| {
            RunError::Ingest { input: input.clone(), lake: plan.lake.display().to_string(), source: Box::new(source) }
        })?;
        observer.ingest_source_done();
        totals.inputs += summary.inputs;
        totals.skipped += summary.skipped;
        totals.rows += summary.rows;
        totals.quarantined += summary.quarantined;
        totals.rejected += summary.rejected;
        totals.pending += summary.pending;
        for d in summary.details.iter().filter(|d| d.status == InputStatus::Rejected) {
            observer.note(Note::Rejected { path: &d.path, reason: d.reason.as_deref().unwrap_or_default() });
        }
    }
    Ok(totals)
}

/// Runs a plan's stages and writes `summary.json` beside the report. The summary's
/// `exit_code` is the ingest's over all sources together, or 1 when a job failed.
pub async fn run_pipeline(
    plan: &Plan,
    pipeline: &str,
    opts: &RunOptions,
    observer: &dyn RunObserver,
) -> Result<RunSummary, RunError> {
    let c = &plan.loaded.config;
    let mut stages = Vec::new();
    let finish = |stages: &mut Vec<Stage>, stage: &'static str, started: Instant, detail: String| {
        let stage = Stage { stage, seconds: started.elapsed().as_secs_f64(), detail };
        observer.stage_done(stages.len() + 1, &stage);
        stages.push(stage);
    };

    // 1. Ingest.
    let started = Instant::now();
    let totals = ingest(plan, observer).await?;
    let mut exit = totals.exit_code();
    let detail = format!(
        "{} inputs: {} rows landed, {} already in the lake, {} quarantined, {} rejected",
        totals.inputs, totals.rows, totals.skipped, totals.quarantined, totals.rejected
    ) + &if totals.pending > 0 {
        format!(", {} with a last line pending (still being written; it lands on a later run)", totals.pending)
    } else {
        String::new()
    };
    finish(&mut stages, "ingest", started, detail);
    if exit == 1 {
        return Err(RunError::NothingToMine);
    }

    // 2. Mine.
    let started = Instant::now();
    let mine_opts = MineOptions { params: plan.params.clone(), force: opts.force };
    let (session, reports) = mine_jobs(
        &opts.engine,
        &LakeLocation::Local(plan.lake.clone()),
        SessionOptions {
            pipelines: Some(plan.pipelines.clone()),
            without_results: true,
            allow_partial: opts.allow_partial,
            ..Default::default()
        },
        &plan.jobs,
        &mine_opts,
        |_| {},
    )
    .await?;
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
    finish(&mut stages, "mine", started, detail);
    for f in &failed {
        observer.note(Note::JobFailed(f));
    }
    if !failed.is_empty() {
        exit = 1;
    }

    // 3. Recommend.
    let started = Instant::now();
    let recommend_opts = SessionOptions {
        pipelines: Some(plan.pipelines.clone()),
        allow_partial: opts.allow_partial,
        ..Default::default()
    };
    let session = LakeSession::open(&plan.lake, recommend_opts).await?;
    let Built { recommendations: mut recs, mined, workloads } =
        build(&session, &plan.pipelines, &plan.settings).await?;
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
    finish(&mut stages, "recommend", started, detail);
    for w in &recs.warnings {
        observer.note(Note::Warning(w));
    }

    // 4. Report.
    let started = Instant::now();
    let hist = token_histograms(&session).await?;
    let report = crate::report::build(&c.name, &plan.loaded.hash, &recs, &workloads, &mined, &hist);
    crate::report::write(&plan.report, &report, Some(session.lake()))?;
    finish(&mut stages, "report", started, plan.report.join("report.html").display().to_string());

    let summary = RunSummary {
        tapeout_version: env!("CARGO_PKG_VERSION"),
        pipeline: pipeline.to_string(),
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
    let text = serde_json::to_string_pretty(&summary)
        .map_err(|e| RunError::Json { path: plan.report.join("summary.json"), message: e.to_string() })?;
    crate::write_atomic(&plan.report.join("summary.json"), text.as_bytes())?;
    Ok(summary)
}
