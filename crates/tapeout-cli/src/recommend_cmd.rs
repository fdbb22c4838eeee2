//! `tapeout recommend`: rank candidate chip features on a mined lake.

use std::path::PathBuf;

use anyhow::bail;
use tapeout_engine::{LakeSession, SessionOptions};
use tapeout_pipelines::{Pipelines, hardware, models};
use tapeout_recommend::features;
use tapeout_run::recommendations::{RecommendSettings, build, write_outputs};

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
    /// Tensor-parallel degree of the request workloads (at least 1). Default: per workload, the
    /// smallest power of two at which the model's weights plus one request's KV cache at the
    /// mean context fit the baseline's usable HBM, stated in the assumptions. A degree too small
    /// to fit fails (exit 1) naming the model, dtype, bytes needed and bytes available.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub tensor_parallel: Option<u32>,
    /// Output directory for recommendations.json and recommendations.md.
    #[arg(long, required_unless_present = "list")]
    pub out: Option<PathBuf>,
    /// Read a lake whose pinned version lacks commits or data files: answer from what is present
    /// and warn (on stderr) naming what is missing. Without it such a lake is refused (exit 1).
    #[arg(long)]
    pub allow_partial: bool,
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
    let opts =
        SessionOptions { pipelines: Some(pipelines.clone()), allow_partial: args.allow_partial, ..Default::default() };
    let session = LakeSession::open(lake, opts).await?;
    let mut settings = RecommendSettings::new(&args.hardware, &args.model);
    settings.tensor_parallel = args.tensor_parallel;
    let recs = build(&session, &pipelines, &settings).await?.recommendations;
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
    eprintln!("coverage: {}", recs.coverage.sentence());
    eprintln!("wrote {} and recommendations.md", out.join("recommendations.json").display());
    Ok(0)
}
