//! `tapeout sql`: one query, a file of queries, or an interactive shell.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::pretty::pretty_format_batches;
use tapeout_engine::{LakeSession, SessionOptions};

#[derive(clap::Args)]
pub struct SqlArgs {
    /// Lake: a directory, or a `file://` or `s3://bucket/prefix` URL (S3 credentials and
    /// endpoint from the `AWS_*` environment variables).
    #[arg(long, env = "TAPEOUT_LAKE", value_parser = crate::engine_args::parse_lake)]
    pub lake: tapeout_lake::LakeLocation,
    /// The query (omit it, and -f, for an interactive shell).
    pub query: Option<String>,
    /// Run the statements in this file.
    #[arg(short = 'f', long = "file", conflicts_with = "query")]
    pub file: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: OutputFormat,
    /// Allow statements that write files (COPY … TO a path outside the lake). The lake's own
    /// tables are never written by SQL: they change only through ingest.
    #[arg(long)]
    pub allow_writes: bool,
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
        memory_limit: args.memory_limit,
        pipelines: args.pipelines.clone().map(tapeout_pipelines::Pipelines::dir),
        ..Default::default()
    };
    let session = args.engine.open(&args.lake, opts).await?;
    if let Some(q) = &args.query {
        run_statements(&session, q, args.format).await?;
        return Ok(0);
    }
    if let Some(f) = &args.file {
        let text = std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        run_statements(&session, &text, args.format).await.with_context(|| format!("in {}", f.display()))?;
        return Ok(0);
    }
    repl(&session, args.format).await
}

/// Splits `text` into statements with DataFusion's parser and runs each, printing results.
async fn run_statements(session: &LakeSession, text: &str, format: OutputFormat) -> anyhow::Result<()> {
    for st in session.parse_script(text)? {
        let df = session.statement(st).await?;
        let schema = std::sync::Arc::new(df.schema().as_arrow().clone());
        let mut batches = df.collect().await?;
        if batches.is_empty() && !schema.fields().is_empty() {
            // Keep the header (csv) and column names (table) of an empty result.
            batches.push(RecordBatch::new_empty(schema));
        }
        print_batches(&batches, format)?;
    }
    Ok(())
}

fn print_batches(batches: &[RecordBatch], format: OutputFormat) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match format {
        OutputFormat::Table => writeln!(out, "{}", pretty_format_batches(batches)?)?,
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

fn describe(session: &LakeSession, table: Option<&str>) -> anyhow::Result<String> {
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

async fn repl(session: &LakeSession, format: OutputFormat) -> anyhow::Result<u8> {
    let mut rl = rustyline::DefaultEditor::new()?;
    let history = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".tapeout_history"));
    if let Some(h) = &history {
        let _ = rl.load_history(h);
    }
    eprintln!(
        "tapeout sql on {} (manifest version {}). End statements with `;`. \\d lists tables, \\d TABLE its columns, \\q quits.",
        session.lake().display(),
        session.snapshot().version
    );
    let mut buf = String::new();
    loop {
        let prompt = if buf.is_empty() { "tapeout> " } else { "     ..> " };
        let line = match rl.readline(prompt) {
            Ok(l) => l,
            Err(rustyline::error::ReadlineError::Interrupted) => {
                buf.clear();
                continue;
            }
            Err(rustyline::error::ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        };
        let trimmed = line.trim();
        if buf.is_empty() && trimmed.starts_with('\\') {
            let _ = rl.add_history_entry(trimmed);
            let mut parts = trimmed.split_whitespace();
            match (parts.next(), parts.next()) {
                (Some("\\q"), _) => break,
                (Some("\\d"), t) => match describe(session, t) {
                    Ok(s) => print!("{s}"),
                    Err(e) => eprintln!("error: {e}"),
                },
                _ => eprintln!("unknown command; \\d, \\d TABLE, \\q"),
            }
            continue;
        }
        buf.push_str(&line);
        buf.push('\n');
        if !trimmed.ends_with(';') {
            continue;
        }
        let _ = rl.add_history_entry(buf.trim());
        if let Err(e) = run_statements(session, &buf, format).await {
            eprintln!("error: {e:#}");
        }
        buf.clear();
    }
    if let Some(h) = &history {
        let _ = rl.save_history(h);
    }
    Ok(0)
}
