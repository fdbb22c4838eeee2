//! `tapeout run`: ingest → mine → recommend → report, from one pipeline config; and
//! `tapeout report`, which re-renders the last report of a lake without recomputing.

use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::bail;
use tapeout_lake::ProgressSink;
use tapeout_run::execute::{Note, RunObserver, RunOptions, STAGES, Stage, run_pipeline};
use tapeout_run::plan::{DEFAULT_PIPELINE, plan};

use crate::progress::IngestBar;

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
    /// Mine and recommend from a lake whose pinned version lacks commits or data files (the
    /// ingest stage still refuses such a lake), warning on stderr what is missing.
    #[arg(long)]
    pub allow_partial: bool,
    /// Tensor-parallel degree of the request workloads (at least 1), overriding the pipeline's
    /// `serving.tensor_parallel`. Without either, each workload gets the smallest power of two
    /// at which the weights plus one request's KV cache at its mean context fit the baseline's
    /// usable HBM (stated in the assumptions); a degree too small to fit fails (exit 1).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub tensor_parallel: Option<u32>,
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

/// Prints stage lines and notes on stderr (none with --json) and draws ingest bars.
struct Printer {
    silent: bool,
    bars_off: bool,
    bar: RefCell<Option<Arc<IngestBar>>>,
}

impl RunObserver for Printer {
    fn ingest_progress(&self) -> Option<Arc<dyn ProgressSink>> {
        let bar = IngestBar::new(self.bars_off);
        *self.bar.borrow_mut() = Some(bar.clone());
        Some(bar)
    }

    fn ingest_source_done(&self) {
        if let Some(bar) = self.bar.borrow_mut().take() {
            bar.finish();
        }
    }

    fn stage_done(&self, number: usize, stage: &Stage) {
        if !self.silent {
            eprintln!("[{number}/{STAGES}] {:<11}{:>6.2} s  {}", stage.stage, stage.seconds, stage.detail);
        }
    }

    fn note(&self, note: Note<'_>) {
        if self.silent {
            return;
        }
        match note {
            Note::Rejected { path, reason } => eprintln!("rejected  {path}: {reason}"),
            Note::JobFailed(f) => eprintln!("      FAILED {f}"),
            Note::Warning(w) => eprintln!("      warning: {w}"),
        }
    }
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
    let mut plan = plan(&path)?;
    if let Some(tp) = args.tensor_parallel {
        plan.settings.tensor_parallel = Some(tp);
    }
    let printer = Printer { silent: args.json, bars_off: quiet || args.json, bar: RefCell::new(None) };
    let opts = RunOptions { force: args.force, engine: args.engine.engine(), allow_partial: args.allow_partial };
    let summary = run_pipeline(&plan, &path.display().to_string(), &opts, &printer).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    }
    Ok(summary.exit_code)
}

/// `tapeout report`: re-render the lake's last report.
pub fn report(args: ReportArgs) -> anyhow::Result<u8> {
    let report = tapeout_run::report::load_stored(&args.lake)?;
    tapeout_run::report::write(&args.out, &report, None)?;
    eprintln!("wrote {} and report.md", args.out.join("report.html").display());
    Ok(0)
}
