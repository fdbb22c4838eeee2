//! `tapeout check`: verify the lake against its manifest; `--repair` removes leftovers.

use std::path::PathBuf;

use anyhow::bail;

#[derive(clap::Args)]
pub struct CheckArgs {
    /// Lake directory.
    #[arg(long, env = "TAPEOUT_LAKE")]
    pub lake: PathBuf,
    /// Remove what interrupted runs left (uncommitted and temporary files), under the lake lock.
    #[arg(long)]
    pub repair: bool,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Exit status: 0 healthy, 1 problems remain.
pub fn run(args: CheckArgs) -> anyhow::Result<u8> {
    crate::engine_args::require_local(&args.lake, "check")?;
    if !args.lake.is_dir() {
        bail!("{}: no lake here (no such directory)", args.lake.display());
    }
    let (removed, report) = if args.repair {
        let (removed, report) = tapeout_lake::repair::repair(&args.lake, true)?;
        (Some(removed), report)
    } else {
        (None, tapeout_lake::repair::check(&args.lake)?)
    };
    if args.json {
        let v = serde_json::json!({ "healthy": report.healthy(), "removed": removed, "report": report });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        if let Some(r) = &removed {
            for f in r.temp_files.iter().chain(&r.orphans) {
                println!("removed   {f}");
            }
        }
        for p in &report.problems {
            let kind = serde_json::to_value(&p.kind)?;
            println!("{:<18} {}: {}", kind.as_str().unwrap_or("problem"), p.path, p.detail);
        }
        println!(
            "{}: manifest version {}, {} inputs, {} files, {} rows; {}",
            args.lake.display(),
            report.manifest_version,
            report.inputs,
            report.files,
            report.rows,
            if report.healthy() { "healthy".to_string() } else { format!("{} problems", report.problems.len()) }
        );
    }
    Ok(if report.healthy() { 0 } else { 1 })
}
