//! `tapeout ingest`: request traces and PyTorch profiler (Kineto) traces into a lake.

use anyhow::{Context, bail};
use tapeout_formats::SourceFormat;
use tapeout_lake::{IngestOptions, IngestSummary, InputStatus};

use crate::progress::IngestBar;

#[derive(clap::Args)]
pub struct IngestArgs {
    /// Lake: a directory (created if missing), or a `file://` or `s3://bucket/prefix` URL (S3
    /// credentials and endpoint from the `AWS_*` environment variables; the bucket must exist).
    #[arg(long, env = "TAPEOUT_LAKE", value_parser = crate::engine_args::parse_lake)]
    pub lake: tapeout_lake::LakeLocation,
    /// Files, directories (read recursively) or glob patterns: request traces (Azure LLM CSV,
    /// BurstGPT CSV, Mooncake JSONL) and PyTorch profiler (Kineto) traces (.json, .json.gz),
    /// each plain, .gz or .zst; the format is detected from content.
    #[arg(required = true)]
    pub inputs: Vec<String>,
    /// Force a format instead of detecting it from content: azure_llm, burstgpt, mooncake or
    /// kineto (every input is then read as that format).
    #[arg(long)]
    pub format: Option<String>,
    /// Workload name for every input (default: from each file name; for a Kineto trace, the
    /// name of its folder).
    #[arg(long)]
    pub workload: Option<String>,
    /// Origin of relative timestamps (BurstGPT, Mooncake): `YYYY-MM-DD[ HH:MM:SS[.f]][Z|±HH:MM]`.
    #[arg(long, default_value = "1970-01-01")]
    pub time_origin: String,
    /// Print the run summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Inputs processed at once.
    #[arg(long, default_value_t = 2)]
    pub jobs: usize,
    /// Fail at once if another process is writing to the lake (default: wait for it).
    #[arg(long)]
    pub no_wait: bool,
    /// Cap on resident memory, e.g. 512M or 2G: chunk sizes and parallelism are sized to fit,
    /// and an input that still goes over is rejected (nothing of it committed) with a message.
    #[arg(long, value_parser = crate::sql_cmd::parse_size, value_name = "SIZE")]
    pub memory_limit: Option<usize>,
}

/// Parses `--time-origin`: a date, or a date-time as the Azure traces write them.
pub fn parse_time_origin(s: &str) -> anyhow::Result<i64> {
    let s = s.trim();
    let full = if s.len() == 10 { format!("{s} 00:00:00") } else { s.to_string() };
    tapeout_formats::time::parse_datetime_ns(full.as_bytes()).with_context(|| {
        format!("--time-origin `{s}`: expected YYYY-MM-DD or YYYY-MM-DD HH:MM:SS[.fraction][Z|±HH:MM]")
    })
}

pub async fn run(args: IngestArgs, quiet: bool) -> anyhow::Result<u8> {
    let format = match &args.format {
        None => None,
        Some(f) => match SourceFormat::from_id(f) {
            Some(f) => Some(f),
            None => bail!("--format `{f}`: unknown format; known: {}", SourceFormat::ALL.map(|f| f.id()).join(", ")),
        },
    };
    let bar = IngestBar::new(quiet || args.json);
    let opts = IngestOptions {
        format,
        workload: args.workload.clone(),
        time_origin_ns: parse_time_origin(&args.time_origin)?,
        jobs: args.jobs.max(1),
        wait_for_lock: !args.no_wait,
        progress: Some(bar.clone()),
        ..IngestOptions::default()
    };
    let opts = match args.memory_limit {
        None => opts,
        Some(limit) => {
            let cap = tapeout_lake::memory::MemoryCap { limit_bytes: limit as u64 };
            let (jobs, parse_threads, chunk_bytes) = cap.size(opts.jobs, opts.parse_threads, opts.chunk_bytes);
            IngestOptions { jobs, parse_threads, chunk_bytes, memory_cap: Some(cap), ..opts }
        }
    };
    let summary = match &args.lake {
        tapeout_lake::LakeLocation::Local(dir) => tapeout_lake::ingest(dir, &args.inputs, opts).await,
        tapeout_lake::LakeLocation::Remote(remote) => {
            tapeout_lake::remote::ingest(remote, &args.inputs, opts).await.map(|(summary, pushed)| {
                tracing::info!(
                    commits = pushed.commits,
                    files = pushed.files,
                    bytes = pushed.bytes,
                    "pushed to {}",
                    remote.url
                );
                summary
            })
        }
    };
    bar.finish();
    let summary = summary.with_context(|| match &args.lake {
        tapeout_lake::LakeLocation::Local(_) => format!("ingest into {} failed; nothing was committed", args.lake),
        tapeout_lake::LakeLocation::Remote(_) => {
            format!("ingest into {} failed; commits pushed before the failure stay, the rest did not land", args.lake)
        }
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_human(&summary);
    }
    Ok(summary.exit_code())
}

fn print_human(s: &IngestSummary) {
    for r in &s.details {
        match r.status {
            InputStatus::Rejected => eprintln!("rejected  {}: {}", r.path, r.reason.as_deref().unwrap_or("")),
            InputStatus::Skipped => eprintln!("skipped   {}: {}", r.path, r.reason.as_deref().unwrap_or("")),
            InputStatus::Ingested | InputStatus::Appended | InputStatus::Replaced => {
                let verb = match r.status {
                    InputStatus::Appended => "appended",
                    InputStatus::Replaced => "replaced",
                    _ => "ingested",
                };
                let q = if r.quarantined > 0 { format!(", {} quarantined", r.quarantined) } else { String::new() };
                let rows = if r.tables.len() > 1 {
                    r.tables.iter().map(|(t, n)| format!("{n} {t}")).collect::<Vec<_>>().join(", ")
                } else {
                    format!("{} rows", r.rows)
                };
                let forced = if r.format_forced { ", forced" } else { "" };
                eprintln!("{verb:9} {} ({}{forced}): {rows}{q}", r.path, r.format.as_deref().unwrap_or("?"));
                if let Some(w) = &r.warning {
                    eprintln!("          warning: {w}");
                }
                for n in &r.notes {
                    eprintln!("          note: {n}");
                }
                if let Some(t) = &r.truncated {
                    eprintln!("          warning: {t}");
                }
            }
        }
    }
    println!(
        "{} inputs: {} rows landed, {} quarantined, {} skipped, {} rejected; {} files; lake version {}; {:.2} s",
        s.inputs, s.rows, s.quarantined, s.skipped, s.rejected, s.outputs, s.manifest_version, s.seconds
    );
    if s.inputs == 0 {
        eprintln!("warning: no input files found");
    }
    if s.quarantined > 0 {
        println!(
            "quarantined records: tapeout sql --lake {} \"select file, line, field, reason from quarantine\"",
            s.lake
        );
    }
}
