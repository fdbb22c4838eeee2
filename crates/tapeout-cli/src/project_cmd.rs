//! `tapeout project`: a mined lake's workloads projected onto another hardware profile.

use std::path::PathBuf;

use tapeout_engine::{LakeSession, SessionOptions};
use tapeout_pipelines::Pipelines;
use tapeout_run::recommendations::RecommendSettings;

#[derive(clap::Args)]
pub struct ProjectArgs {
    /// Lake directory (mined with `tapeout mine`).
    #[arg(long, env = "TAPEOUT_LAKE")]
    pub lake: PathBuf,
    /// Target hardware profile id (see `tapeout recommend --list hardware`).
    #[arg(long)]
    pub to: String,
    /// Baseline of the request workloads (the serving model runs on it), and the device of
    /// kernel traces whose device matches no profile (refused without it). Kernel traces whose
    /// device matches a profile are projected from that profile.
    #[arg(long)]
    pub from: Option<String>,
    /// Model serving the request-level workloads (see --list models of `tapeout recommend`).
    #[arg(long, default_value = "llama-3.1-8b")]
    pub model: String,
    /// Tensor-parallel degree of the request workloads (default: the smallest power of two that
    /// fits, as in `tapeout recommend`).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub tensor_parallel: Option<u32>,
    /// Print the projection as JSON (an object whose `workloads` list holds one entry per
    /// workload).
    #[arg(long)]
    pub json: bool,
    /// Read a lake whose pinned version lacks commits or data files (warns; see `tapeout sql`).
    #[arg(long)]
    pub allow_partial: bool,
    /// A folder laid out like pipelines/ (hardware/, models/, features/).
    #[arg(long, env = "TAPEOUT_PIPELINES")]
    pub pipelines: Option<PathBuf>,
}

/// Default baseline when `--from` is not given.
const DEFAULT_FROM: &str = "h100-sxm";

pub async fn run(args: ProjectArgs) -> anyhow::Result<u8> {
    let pipelines = args.pipelines.clone().map_or_else(Pipelines::embedded, Pipelines::dir);
    let opts =
        SessionOptions { pipelines: Some(pipelines.clone()), allow_partial: args.allow_partial, ..Default::default() };
    let session = LakeSession::open(&args.lake, opts).await?;
    let mut settings = RecommendSettings::new(args.from.as_deref().unwrap_or(DEFAULT_FROM), &args.model);
    settings.tensor_parallel = args.tensor_parallel;
    let p = tapeout_run::project::project(&session, &pipelines, &settings, &args.to, args.from.is_some()).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&p)?);
        return Ok(0);
    }
    for w in &p.warnings {
        eprintln!("warning: {w}");
    }
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::UTF8_BORDERS_ONLY);
    t.set_header(["workload", "kind", "from", "to", "measured busy", "predicted busy", "speedup", "unexplained"]);
    for w in &p.workloads {
        let ms = |ns: f64| format!("{:.3} ms", ns * 1e-6);
        t.add_row([
            w.workload.clone(),
            w.kind.clone(),
            w.from.clone(),
            w.to.clone(),
            ms(w.measured_busy_ns),
            ms(w.predicted_busy_ns),
            format!("{:.2}×", w.speedup()),
            format!("{:.1}%", 100.0 * w.unexplained_share),
        ]);
    }
    println!("{t}");
    println!(
        "busy = GPU busy time (union of kernels, copies, memsets; summed over ranks); request workloads: modelled on {} per request. --json adds the split by category.",
        p.from
    );
    Ok(0)
}
