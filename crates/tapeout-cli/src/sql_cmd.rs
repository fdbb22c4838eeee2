//! `tapeout sql`: one query, a file of queries, or an interactive shell.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::Context;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::util::display::FormatOptions;
use datafusion::arrow::util::pretty::pretty_format_batches_with_options;
use tapeout_engine::{LakeSession, SessionOptions};

use crate::sql_shell::{Flow, Shell, statement_count};

/// Rows a `table` result shows in the interactive shell unless `--maxrows` says otherwise.
const SHELL_MAXROWS: usize = 40;

#[derive(clap::Args)]
pub struct SqlArgs {
    /// Lake: a directory, or a `file://` or `s3://bucket/prefix` URL (S3 credentials and
    /// endpoint from the `AWS_*` environment variables).
    #[arg(long, env = "TAPEOUT_LAKE", value_parser = crate::engine_args::parse_lake)]
    pub lake: tapeout_lake::LakeLocation,
    /// The query: one or more statements separated by `;` (the last needs no `;`). Omit it, -c
    /// and -f for the interactive shell, or pipe statements in.
    pub query: Option<String>,
    /// Run these statements and exit (the same as the positional query).
    #[arg(short = 'c', long = "command", value_name = "SQL", conflicts_with_all = ["query", "file"])]
    pub command: Option<String>,
    /// Run the statements in this file (each ends with `;`).
    #[arg(short = 'f', long = "file", conflicts_with = "query")]
    pub file: Option<PathBuf>,
    /// A script (-f, piped, -c or the query) goes on past a failing statement; it still exits
    /// 1 at the end if any failed. Without it the first failure stops the script with exit 1.
    #[arg(long)]
    pub continue_on_error: bool,
    /// Rows printed per result; `0` = all. Default: 40 for `table` output in the interactive
    /// shell, else all. A footer tells how many rows were not shown.
    #[arg(long, value_name = "N")]
    pub maxrows: Option<usize>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: OutputFormat,
    /// Allow statements that write files (COPY … TO a path outside the lake). The lake's own
    /// tables are never written by SQL: they change only through ingest.
    #[arg(long)]
    pub allow_writes: bool,
    /// Read a lake whose pinned version lacks commits or data files: answer from what is present
    /// and warn (on stderr) naming what is missing. Without it such a lake is refused (exit 1).
    #[arg(long)]
    pub allow_partial: bool,
    /// Memory limit for query execution, e.g. 512M or 2G (spilling operators spill; others fail).
    #[arg(long, value_parser = parse_size)]
    pub memory_limit: Option<usize>,
    /// A folder laid out like pipelines/ whose hardware/ profiles fill the `hardware` table
    /// (default: the built-in profiles).
    #[arg(long, env = "TAPEOUT_PIPELINES")]
    pub pipelines: Option<PathBuf>,
    #[command(flatten)]
    pub engine: crate::engine_args::EngineArgs,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Csv,
    Json,
    Ndjson,
}

/// Parses `512M`, `2G`, `1048576`.
pub fn parse_size(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m: usize = match c.to_ascii_uppercase() {
                'K' => 1 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                _ => return Err(format!("`{s}`: unknown unit (use K, M or G)")),
            };
            (&s[..i], m)
        }
        _ => (s, 1),
    };
    num.trim().parse::<usize>().map(|n| n * mult).map_err(|_| format!("`{s}`: expected a size such as 512M"))
}

pub async fn run(args: SqlArgs) -> anyhow::Result<u8> {
    let opts = SessionOptions {
        allow_writes: args.allow_writes,
        allow_partial: args.allow_partial,
        memory_limit: args.memory_limit,
        pipelines: args.pipelines.clone().map(tapeout_pipelines::Pipelines::dir),
        ..Default::default()
    };
    let query = args.command.as_ref().or(args.query.as_ref());
    let interactive = query.is_none() && args.file.is_none() && std::io::stdin().is_terminal();
    let out = Output {
        format: args.format,
        maxrows: match args.maxrows {
            Some(0) => None,
            Some(n) => Some(n),
            None if interactive && args.format == OutputFormat::Table => Some(SHELL_MAXROWS),
            None => None,
        },
        footer_to_stderr: args.format != OutputFormat::Table,
        timing: false,
    };
    let session = args.engine.open(&args.lake, opts).await?;
    if interactive {
        return repl(Shell::interactive(&session, out)).await;
    }
    let (source, text, allow_unterminated) = match (query, &args.file) {
        (Some(q), _) => (None, Some(q.clone()), true),
        (None, Some(f)) => {
            let text = std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
            (Some(f.display().to_string()), Some(text), false)
        }
        (None, None) => (Some("stdin".to_string()), None, false),
    };
    let mut shell = Shell::script(&session, out, source, args.continue_on_error);
    if query.is_some_and(|q| statement_count(q) <= 1) {
        shell = shell.plain_errors();
    }
    let lines: Box<dyn Iterator<Item = std::io::Result<String>>> = match text {
        Some(t) => Box::new(t.lines().map(|l| Ok(l.to_string())).collect::<Vec<_>>().into_iter()),
        None => Box::new(std::io::stdin().lines()),
    };
    let code = shell.run_lines(lines, allow_unterminated).await?;
    shell.summary();
    Ok(code)
}

/// How results are printed.
pub struct Output {
    pub format: OutputFormat,
    /// Rows printed per result (None: all).
    pub maxrows: Option<usize>,
    /// Whether the "rows not shown" footer goes to stderr (csv and json stay parseable).
    pub footer_to_stderr: bool,
    /// Print each statement's elapsed time (`\timing`).
    pub timing: bool,
}

/// Prints one result: `batches` hold the first rows of `total` (fewer when the row limit cut it).
pub fn print_result(
    schema: SchemaRef,
    mut batches: Vec<RecordBatch>,
    total: usize,
    out: &Output,
) -> anyhow::Result<()> {
    if schema.fields().is_empty() {
        return Ok(()); // DDL such as CREATE VIEW: nothing to show
    }
    if batches.is_empty() {
        // Keep the header (csv) and column names (table) of an empty result.
        batches.push(RecordBatch::new_empty(schema));
    }
    print_batches(&batches, out.format)?;
    let shown: usize = batches.iter().map(|b| b.num_rows()).sum();
    if shown < total {
        let footer = format!(
            "({} rows, {} shown, {} not shown; --maxrows 0 shows all)",
            thousands(total),
            thousands(shown),
            thousands(total - shown)
        );
        if out.footer_to_stderr {
            eprintln!("{footer}");
        } else {
            println!("{footer}");
        }
    }
    Ok(())
}

/// `1234567` as `1,234,567`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut s = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            s.push(',');
        }
        s.push(c);
    }
    s
}

fn print_batches(batches: &[RecordBatch], format: OutputFormat) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match format {
        OutputFormat::Table => {
            let options = FormatOptions::default().with_display_error(true).with_null("NULL");
            writeln!(out, "{}", pretty_format_batches_with_options(batches, &options)?)?
        }
        OutputFormat::Csv => {
            let mut w = datafusion::arrow::csv::WriterBuilder::new().with_header(true).build(&mut out);
            for b in batches {
                w.write(b)?;
            }
        }
        OutputFormat::Json => {
            let mut w = datafusion::arrow::json::ArrayWriter::new(&mut out);
            w.write_batches(&batches.iter().collect::<Vec<_>>())?;
            w.finish()?;
            writeln!(out)?;
        }
        OutputFormat::Ndjson => {
            let mut w = datafusion::arrow::json::LineDelimitedWriter::new(&mut out);
            w.write_batches(&batches.iter().collect::<Vec<_>>())?;
            w.finish()?;
        }
    }
    Ok(())
}

/// `\\d` (tables) or `\\d TABLE` (its columns).
pub fn describe(session: &LakeSession, table: Option<&str>) -> anyhow::Result<String> {
    match table {
        None => {
            let mut s = String::from("tables:\n");
            for name in session.table_names() {
                let about = tapeout_schema::registry().table(&name).map(|t| t.description.clone()).unwrap_or_default();
                s.push_str(&format!("  {name:<20} {about}\n"));
            }
            Ok(s)
        }
        Some(t) => {
            let schema = tapeout_engine_schema(session, t)?;
            let mut s = String::new();
            for f in schema.fields() {
                s.push_str(&format!(
                    "  {:<16} {:<32} {}\n",
                    f.name(),
                    f.data_type().to_string(),
                    if f.is_nullable() { "null" } else { "not null" }
                ));
            }
            Ok(s)
        }
    }
}

fn tapeout_engine_schema(
    session: &LakeSession,
    table: &str,
) -> anyhow::Result<datafusion::arrow::datatypes::SchemaRef> {
    let provider = session
        .context()
        .catalog("datafusion")
        .and_then(|c| c.schema("public"))
        .filter(|s| s.table_exist(table))
        .with_context(|| format!("no table `{table}`; \\d lists the tables"))?;
    let rt = tokio::runtime::Handle::current();
    let t = tokio::task::block_in_place(|| rt.block_on(provider.table(table)))?
        .with_context(|| format!("no table `{table}`"))?;
    Ok(t.schema())
}

async fn repl(mut shell: Shell<'_>) -> anyhow::Result<u8> {
    let mut rl = rustyline::DefaultEditor::new()?;
    let history = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".tapeout_history"));
    if let Some(h) = &history {
        let _ = rl.load_history(h);
    }
    eprintln!(
        "tapeout sql on {} (manifest version {}). End statements with `;`. \\? lists the commands, \\q quits.",
        shell.session().lake().display(),
        shell.session().snapshot().version
    );
    // What was typed since the shell last had nothing pending: one history entry.
    let mut typed = String::new();
    loop {
        let prompt = if shell.pending() { "     ..> " } else { "tapeout> " };
        let line = match rl.readline(prompt) {
            Ok(l) => l,
            Err(rustyline::error::ReadlineError::Interrupted) => {
                shell.clear();
                typed.clear();
                continue;
            }
            Err(rustyline::error::ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        };
        typed.push_str(&line);
        typed.push('\n');
        let flow = shell.feed(&line).await;
        if !shell.pending() {
            if !typed.trim().is_empty() {
                let _ = rl.add_history_entry(typed.trim());
            }
            typed.clear();
        }
        if flow == Flow::Stop {
            break;
        }
    }
    if let Some(h) = &history {
        let _ = rl.save_history(h);
    }
    Ok(0)
}
