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
    /// Seconds an uncompressed file that does not end with a newline must have been unchanged
    /// before its last line lands; until then that line is reported as pending and the rest of
    /// the file lands. If the file grows after the line landed, its whole content lands again
    /// and replaces the earlier ingest, so a line is never counted twice.
    #[arg(long, value_name = "SECS", default_value_t = tapeout_lake::ingest::DEFAULT_SETTLE.as_secs_f64())]
    pub settle: f64,
    /// The inputs are complete: land a last line without a newline now (same as --settle 0).
    #[arg(long = "final")]
    pub final_: bool,
    /// A path whose bytes changed in place since its last ingest (rewritten, truncated; not
    /// just appended to): `replace` lands the new version and removes the earlier one in one
    /// commit; `keep` lands it beside the earlier one; `refuse` rejects it (exit 3).
    #[arg(long, value_name = "POLICY", default_value = "replace", value_parser = ["replace", "keep", "refuse"])]
    pub on_change: String,
    /// Device telemetry: the time of samples that carry none (Prometheus text without
    /// timestamps), `YYYY-MM-DD HH:MM:SS[.f][Z|±HH:MM]`. Default: each file's modification time
    /// (one file = one scrape).
    #[arg(long, value_name = "TIME")]
    pub time: Option<String>,
    /// Device telemetry: the zone of timestamps written without one (nvidia-smi logs), `UTC` or
    /// a fixed offset such as `+02:00` or `-0700`.
    #[arg(long, value_name = "ZONE", default_value = "UTC")]
    pub timezone: String,
    /// Device telemetry: a TOML file describing a metric CSV (which columns hold the time, the
    /// value, the metric, the device, the labels; the time unit). Needed for `--format
    /// metric_csv`; see pipelines/telemetry/README.md.
    #[arg(long, value_name = "FILE")]
    pub mapping: Option<std::path::PathBuf>,
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
    if !(args.settle.is_finite() && args.settle >= 0.0) {
        bail!("--settle {}: expected a number of seconds, 0 or more", args.settle);
    }
    let settle = (!args.final_ && args.settle > 0.0).then(|| std::time::Duration::from_secs_f64(args.settle));
    let on_change = tapeout_lake::ingest::OnChange::from_id(&args.on_change).expect("clap checked the value");
    let mut telemetry = tapeout_lake::ingest::TelemetrySettings {
        time_ns: match &args.time {
            Some(t) => Some(
                tapeout_formats::time::parse_datetime_ns(t.trim().as_bytes())
                    .with_context(|| format!("--time `{t}`: expected YYYY-MM-DD HH:MM:SS[.fraction][Z|±HH:MM]"))?,
            ),
            None => None,
        },
        utc_offset_s: tapeout_formats::time::parse_utc_offset(&args.timezone)
            .map_err(|e| anyhow::anyhow!("--timezone `{}`: {e}", args.timezone))?,
        ..Default::default()
    };
    if let Some(m) = &args.mapping {
        let text = std::fs::read_to_string(m).with_context(|| format!("--mapping {}", m.display()))?;
        telemetry.mapping = Some(
            tapeout_formats::telemetry::CsvMapping::parse(&text)
                .with_context(|| format!("--mapping {}", m.display()))?,
        );
    }
    let bar = IngestBar::new(quiet || args.json);
    let opts = IngestOptions {
        format,
        workload: args.workload.clone(),
        time_origin_ns: parse_time_origin(&args.time_origin)?,
        jobs: args.jobs.max(1),
        wait_for_lock: !args.no_wait,
        progress: Some(bar.clone()),
        settle,
        on_change,
        telemetry,
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
            InputStatus::Pending => eprintln!("pending   {}: {}", r.path, r.reason.as_deref().unwrap_or("")),
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
                if let Some(p) = &r.pending {
                    eprintln!(
                        "          pending: last line ({} bytes) not landed yet: the file changed {:.0} s ago; it \
                         lands once unchanged for {:.0} s, or with --final",
                        p.bytes, p.unchanged_for_seconds, p.settle_seconds
                    );
                }
            }
        }
    }
    let pending = if s.pending > 0 { format!(", {} with a last line pending", s.pending) } else { String::new() };
    println!(
        "{} inputs: {} rows landed, {} quarantined, {} skipped, {} rejected{pending}; {} files; lake version {}; {:.2} s",
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
