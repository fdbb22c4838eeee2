//! `tapeout mine`: run the mining jobs over a lake and store their results.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context;
use tapeout_engine::SessionOptions;
use tapeout_engine::mine::{JobOutcome, MineOptions};
use tapeout_pipelines::Pipelines;

use crate::sql_cmd::parse_size;

#[derive(clap::Args)]
pub struct MineArgs {
    /// Lake directory (results are stored in it, so it must be local).
    #[arg(long, env = "TAPEOUT_LAKE", required_unless_present = "list", value_parser = crate::engine_args::parse_lake)]
    pub lake: Option<tapeout_lake::LakeLocation>,
    /// Only jobs whose name matches this glob (e.g. `kernel_*`); repeatable.
    #[arg(long = "jobs", value_name = "GLOB")]
    pub jobs: Vec<String>,
    /// Override a job parameter, NAME=VALUE (applies to every job declaring NAME); repeatable.
    #[arg(long = "set", value_name = "NAME=VALUE", value_parser = parse_assignment)]
    pub set: Vec<(String, String)>,
    /// A folder laid out like pipelines/ (sql/, hardware/) to use instead of the built-in one.
    #[arg(long, env = "TAPEOUT_PIPELINES")]
    pub pipelines: Option<PathBuf>,
    /// Recompute results that are up to date.
    #[arg(long)]
    pub force: bool,
    /// Print a JSON summary on stdout instead of a table.
    #[arg(long)]
    pub json: bool,
    /// List the jobs (name, what it finds, parameters) and exit.
    #[arg(long)]
    pub list: bool,
    /// Memory limit for query execution, e.g. 512M or 2G.
    #[arg(long, value_parser = parse_size)]
    pub memory_limit: Option<usize>,
    /// Read a lake whose pinned version lacks commits or data files: answer from what is present
    /// and warn (on stderr) naming what is missing. Without it such a lake is refused (exit 1).
    #[arg(long)]
    pub allow_partial: bool,
    #[command(flatten)]
    pub engine: crate::engine_args::EngineArgs,
}

fn parse_assignment(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("`{s}`: expected NAME=VALUE")),
    }
}

fn glob_match(pattern: &str, name: &str) -> bool {
    glob::Pattern::new(pattern).is_ok_and(|p| p.matches(name))
}

/// Exit codes: 0 every job ran (or was up to date); 1 some job failed or nothing could run.
pub async fn run(args: MineArgs) -> anyhow::Result<u8> {
    let pipelines = args.pipelines.clone().map_or_else(Pipelines::embedded, Pipelines::dir);
    let mut jobs = tapeout_pipelines::jobs::load_all(&pipelines)?;
    if !args.jobs.is_empty() {
        for g in &args.jobs {
            glob::Pattern::new(g).with_context(|| format!("--jobs {g}: not a valid glob"))?;
        }
        jobs.retain(|j| args.jobs.iter().any(|g| glob_match(g, &j.name)));
        if jobs.is_empty() {
            anyhow::bail!("--jobs {}: no job matches (see `tapeout mine --list`)", args.jobs.join(" "));
        }
    }
    if args.list {
        for j in &jobs {
            println!("{}\n    {}", j.name, j.finds);
            for p in &j.params {
                println!("    --set {}={}  ({})", p.name, p.default.display(), p.description);
            }
        }
        return Ok(0);
    }
    if jobs.is_empty() {
        anyhow::bail!("no jobs in {}", pipelines.describe());
    }
    let opts = SessionOptions {
        memory_limit: args.memory_limit,
        pipelines: Some(pipelines.clone()),
        without_results: true,
        allow_partial: args.allow_partial,
        ..Default::default()
    };
    let Some(lake) = args.lake.as_ref() else { anyhow::bail!("--lake is required") };
    lake.local("mine")?;
    let mine_opts = MineOptions { params: args.set.iter().cloned().collect::<BTreeMap<_, _>>(), force: args.force };
    let started = std::time::Instant::now();
    let json = args.json;
    let (session, reports) =
        tapeout_run::execute::mine_jobs(&args.engine.engine(), lake, opts, &jobs, &mine_opts, |r| {
            if !json {
                match &r.outcome {
                    JobOutcome::Computed { rows, elapsed_ms } => {
                        eprintln!("computed  {:<32} {rows:>8} rows  {elapsed_ms:>6} ms", r.job)
                    }
                    JobOutcome::UpToDate { rows } => eprintln!("current   {:<32} {rows:>8} rows", r.job),
                    JobOutcome::Failed { error } => eprintln!("FAILED    {:<32} {error}", r.job),
                }
            }
        })
        .await?;
    let failed = reports.iter().filter(|r| matches!(r.outcome, JobOutcome::Failed { .. })).count();
    let computed = reports.iter().filter(|r| matches!(r.outcome, JobOutcome::Computed { .. })).count();
    let elapsed = started.elapsed();
    if json {
        let summary = serde_json::json!({
            "tapeout_version": env!("CARGO_PKG_VERSION"),
            "lake": session.lake(),
            "lake_version": session.snapshot().version,
            "jobs": reports,
            "computed": computed,
            "up_to_date": reports.len() - computed - failed,
            "failed": failed,
            "elapsed_ms": elapsed.as_millis() as u64,
        });
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        eprintln!(
            "{} jobs on lake version {}: {computed} computed, {} up to date, {failed} failed; {:.2} s",
            reports.len(),
            session.snapshot().version,
            reports.len() - computed - failed,
            elapsed.as_secs_f64()
        );
    }
    Ok(if failed > 0 { crate::EXIT_FAILURE } else { 0 })
}
