//! `tapeout forget`: remove inputs (their rows, quarantine records and manifest entries).

use std::path::PathBuf;

#[derive(clap::Args)]
pub struct ForgetArgs {
    /// Lake directory.
    #[arg(long, env = "TAPEOUT_LAKE")]
    pub lake: PathBuf,
    /// Inputs to remove: paths as ingested, or input hashes (at least 8 hex digits).
    #[arg(required = true)]
    pub inputs: Vec<String>,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Fail at once if another process is writing to the lake (default: wait for it).
    #[arg(long)]
    pub no_wait: bool,
}

/// Exit status: 0 removed, 1 nothing matched or failure.
pub fn run(args: ForgetArgs) -> anyhow::Result<u8> {
    crate::engine_args::require_local(&args.lake, "forget")?;
    if !args.lake.is_dir() {
        anyhow::bail!("{}: no lake here (no such directory)", args.lake.display());
    }
    let r = tapeout_lake::repair::forget(&args.lake, &args.inputs, !args.no_wait)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        for p in &r.inputs {
            eprintln!("forgot    {p}");
        }
        println!(
            "{} inputs removed: {} rows, {} quarantined records, {} files; lake version {}",
            r.inputs.len(),
            r.rows,
            r.quarantined,
            r.files,
            r.manifest_version
        );
    }
    Ok(0)
}
