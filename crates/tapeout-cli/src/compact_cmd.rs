//! `tapeout compact`: merge each partition's small files (rows unchanged, one atomic commit).

use std::path::PathBuf;

use anyhow::bail;
use tapeout_lake::compact::{CompactOptions, compact};

#[derive(clap::Args)]
pub struct CompactArgs {
    /// Lake directory.
    #[arg(long, env = "TAPEOUT_LAKE")]
    pub lake: PathBuf,
    /// Files smaller than this are merged (MiB).
    #[arg(long, default_value_t = 16, value_name = "MIB")]
    pub small_file_mib: u64,
    /// A merged file takes sources until they add up to this (MiB).
    #[arg(long, default_value_t = 128, value_name = "MIB")]
    pub target_file_mib: u64,
    /// Only this table (repeatable; default: every table and the quarantine).
    #[arg(long = "table", value_name = "TABLE")]
    pub tables: Vec<String>,
    /// Show what would be merged; write and remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Fail at once if another process is writing to the lake (default: wait for it).
    #[arg(long)]
    pub no_wait: bool,
}

/// Exit status: 0 done (or nothing to merge), 1 failure (nothing committed).
pub fn run(args: CompactArgs) -> anyhow::Result<u8> {
    crate::engine_args::require_local(&args.lake, "compact")?;
    if !args.lake.is_dir() {
        bail!("{}: no lake here (no such directory)", args.lake.display());
    }
    if args.target_file_mib == 0 || args.small_file_mib == 0 {
        bail!("--small-file-mib and --target-file-mib must be at least 1");
    }
    let opts = CompactOptions {
        small_file_bytes: args.small_file_mib << 20,
        target_file_bytes: args.target_file_mib << 20,
        tables: args.tables,
        dry_run: args.dry_run,
        wait: !args.no_wait,
    };
    let r = compact(&args.lake, &opts)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(0);
    }
    for f in r.leftovers.temp_files.iter().chain(&r.leftovers.orphans) {
        eprintln!("removed   {f} (left by an interrupted run)");
    }
    let verb = if r.dry_run { "would merge" } else { "merged" };
    for m in &r.merged {
        eprintln!("{verb:<11} {} files ({} rows, {} inputs) -> {}", m.sources.len(), m.rows, m.inputs, m.path);
    }
    println!(
        "{}: {} data files -> {}{}; {} rows; lake version {}",
        args.lake.display(),
        r.files_before,
        r.files_after,
        if r.dry_run { " (dry run, nothing written)" } else { "" },
        r.rows,
        r.manifest_version
    );
    Ok(0)
}
