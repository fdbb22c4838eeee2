//! `tapeout`: a thin shell over the tapeout crates. Parses arguments, sets up logging and the
//! runtime, calls one library entry point per subcommand, prints results, and maps outcomes to
//! documented exit codes. All real work lives in the libraries.

mod check_cmd;
mod cluster_cmd;
mod compact_cmd;
mod engine_args;
mod forget_cmd;
mod gen_cmd;
mod ingest_cmd;
mod mine_cmd;
mod progress;
mod project_cmd;
mod recommend_cmd;
mod run_cmd;
mod sql_cmd;
mod sql_shell;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit code of a failure where nothing was committed, usage errors included (clap's own 2
/// would read as "done with quarantined records").
pub const EXIT_FAILURE: u8 = 1;

#[derive(Parser)]
#[command(
    name = "tapeout",
    version,
    about = "Turn hosted-model workload traces into chip-feature priorities",
    long_about = "tapeout ingests LLM serving request logs and accelerator traces into a Parquet lake, \
                  mines them with SQL, and ranks candidate chip features by fleet time saved."
)]
struct Cli {
    /// More log output on stderr (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// No progress bars.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a pipeline end to end: ingest its sources, mine, recommend, write the report
    /// (default: pipelines/default.toml over sample-traces/). Inputs already in the lake are
    /// skipped; jobs rerun only on a new lake version.
    ///
    /// Exit codes: as ingest (0 clean; 2 quarantined records; 3 some inputs rejected; 1 failure).
    Run(run_cmd::RunArgs),
    /// Re-render the report of the lake's last `tapeout run` without recomputing anything.
    Report(run_cmd::ReportArgs),
    /// Ingest request traces (Azure LLM CSV, BurstGPT CSV, Mooncake JSONL) and PyTorch profiler
    /// (Kineto) traces (.json, .json.gz) into a lake; plain, .gz or .zst.
    ///
    /// Exit codes: 0 clean; 2 done with quarantined records; 3 some inputs rejected while the
    /// rest landed; 1 failure with nothing committed.
    Ingest(ingest_cmd::IngestArgs),
    /// Run SQL over a lake (every table registered; read-only by default). Without a query,
    /// starts an interactive shell.
    Sql(sql_cmd::SqlArgs),
    /// Run the mining jobs (pipelines/sql/*.sql) over a lake; each result is stored under
    /// LAKE/_mined/ and queryable in `tapeout sql` as a table named after the job.
    ///
    /// Exit codes: 0 every job ran or was up to date; 1 some job failed.
    Mine(mine_cmd::MineArgs),
    /// Rank candidate chip features (pipelines/features) by fleet time saved on a mined lake;
    /// writes recommendations.json and recommendations.md.
    Recommend(recommend_cmd::RecommendArgs),
    /// Project every workload of a mined lake onto another hardware profile: predicted GPU busy
    /// time per workload and per category beside the measured one (kernel traces from the
    /// device they ran on; request logs through the serving model from --from).
    Project(project_cmd::ProjectArgs),
    /// Generate seeded traces in the real formats (request logs, Kineto, device telemetry:
    /// dcgm-exporter scrapes and nvidia-smi logs) for benchmarks and load tests.
    Gen(gen_cmd::GenArgs),
    /// Print the canonical table schemas (the registry in schemas/).
    Schema(SchemaArgs),
    /// Verify a lake against its manifest (sizes, checksums, row counts, schema versions,
    /// orphans). Exit 0 healthy, 1 not. `--repair` removes what interrupted runs left.
    Check(check_cmd::CheckArgs),
    /// Remove ingested inputs from a lake: their rows, quarantine records and manifest entries
    /// (one commit). Re-ingesting the file afterwards lands it again.
    Forget(forget_cmd::ForgetArgs),
    /// Merge each partition's small files into files of about --target-file-mib (rows and
    /// values unchanged; one commit; replaced files removed after it). `forget` still removes
    /// one input's rows from a merged file.
    Compact(compact_cmd::CompactArgs),
    /// Run a Ballista scheduler whose sessions know tapeout's tables and functions (for
    /// `--engine ballista`). Runs until stopped.
    Scheduler(cluster_cmd::SchedulerArgs),
    /// Run a Ballista executor with tapeout's functions, registered with a scheduler. Runs
    /// until stopped.
    Executor(cluster_cmd::ExecutorArgs),
}

#[derive(clap::Args)]
struct SchemaArgs {
    /// One table (default: all).
    table: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "markdown")]
    format: SchemaFormat,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum SchemaFormat {
    Markdown,
    Json,
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(false)
        .init();
}

fn schema(args: SchemaArgs) -> anyhow::Result<u8> {
    let reg = tapeout_schema::registry();
    let out = match (&args.table, args.format) {
        (None, SchemaFormat::Markdown) => reg.to_markdown(),
        (None, SchemaFormat::Json) => serde_json::to_string_pretty(&reg.to_json())?,
        (Some(t), SchemaFormat::Markdown) => reg.table(t)?.to_markdown(),
        (Some(t), SchemaFormat::Json) => serde_json::to_string_pretty(&reg.table(t)?.to_json())?,
    };
    print!("{out}");
    if !out.ends_with('\n') {
        println!();
    }
    Ok(0)
}

fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Schema(a) => schema(a),
        Command::Ingest(a) => runtime()?.block_on(ingest_cmd::run(a, cli.quiet)),
        Command::Sql(a) => runtime()?.block_on(sql_cmd::run(a)),
        Command::Mine(a) => runtime()?.block_on(mine_cmd::run(a)),
        Command::Recommend(a) => runtime()?.block_on(recommend_cmd::run(a)),
        Command::Project(a) => runtime()?.block_on(project_cmd::run(a)),
        Command::Run(a) => runtime()?.block_on(run_cmd::run(a, cli.quiet)),
        Command::Report(a) => run_cmd::report(a),
        Command::Gen(a) => gen_cmd::run(a),
        Command::Check(a) => check_cmd::run(a),
        Command::Forget(a) => forget_cmd::run(a),
        Command::Compact(a) => compact_cmd::run(a),
        Command::Scheduler(a) => runtime()?.block_on(cluster_cmd::scheduler(a)),
        Command::Executor(a) => runtime()?.block_on(cluster_cmd::executor(a)),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

/// glibc gives each thread that allocates its own malloc arena (up to 8 per core) and keeps what
/// every arena freed: with ingest's many short-lived worker threads, resident memory multiplies
/// (a 15M-sample telemetry ingest: 1 GiB; docs/performance.md). One arena per core keeps it to
/// what is in use, at no measurable cost on 2 cores.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas() {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get()).max(2);
    // SAFETY: mallopt only sets an allocator tunable; called before any other thread starts.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, cores as libc::c_int);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}

fn main() -> ExitCode {
    limit_malloc_arenas();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_FAILURE } else { 0 });
        }
    };
    init_logging(cli.verbose);
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(EXIT_FAILURE)
        }
    }
}
