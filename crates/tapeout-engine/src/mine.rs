//! `tapeout mine`: runs the SQL jobs of `pipelines/sql/` over a pinned lake snapshot and keeps
//! each result, so the recommender and `tapeout sql` read mined tables instead of recomputing.
//!
//! Layout, per job:
//! ```text
//! LAKE/_mined/<job>/result-<lake version>-<run key>.parquet   the rows
//! LAKE/_mined/<job>/result-<lake version>-<run key>.json      ResultMeta (+ rows when small)
//! LAKE/_mined/<job>/latest.json                                ResultMeta of the current result
//! ```
//! The run key hashes the rendered SQL (so parameters are part of it). A job whose latest result
//! was computed from the same lake version and run key is skipped ("up to date"), so reruns are
//! idempotent and cheap.
//!
//! Guarantees and what they rely on: every file is written to a `.tmp` name in the same folder
//! and renamed into place (rename is atomic on POSIX file systems), the data file before its
//! metadata and `latest.json` last; so a reader that follows `latest.json` always finds a
//! complete Parquet file. The previous result is kept until the next one replaces it (readers
//! that opened it keep working); older ones are removed.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::json::ArrayWriter;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::properties::WriterProperties;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use serde::{Deserialize, Serialize};
use tapeout_pipelines::jobs::Job;

use crate::{EngineError, LakeSession};

/// Folder of mined results inside a lake.
pub const MINED_DIR: &str = "_mined";

/// Results of at most this many rows also get their rows in the JSON metadata file.
pub const JSON_ROWS_LIMIT: usize = 10_000;

/// What a stored result is: written beside it and as `latest.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ResultMeta {
    /// Format of this record.
    pub format_version: u32,
    pub job: String,
    /// What the job finds (its header).
    pub finds: String,
    /// Output columns and units (its header).
    pub output: String,
    /// The lake manifest version the result was computed from.
    pub lake_version: u64,
    /// Parameter values used.
    pub params: BTreeMap<String, String>,
    /// BLAKE3 (first 16 hex digits) of the rendered SQL.
    pub run_key: String,
    /// Data file name, in the job's folder.
    pub file: String,
    pub rows: u64,
    pub columns: Vec<String>,
    pub tapeout_version: String,
    /// Unix time, seconds.
    pub computed_at: i64,
    pub elapsed_ms: u64,
    /// Computed from an incomplete snapshot (`--allow-partial`): never up to date, and refused
    /// by the recommender.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub partial: bool,
    /// The rows, when at most [`JSON_ROWS_LIMIT`] (only in the per-result file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
}

/// What happened to one job.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum JobOutcome {
    /// Ran and stored a result.
    Computed { rows: u64, elapsed_ms: u64 },
    /// The stored result is already for this lake version and SQL.
    UpToDate { rows: u64 },
    /// Failed; other jobs still ran.
    Failed { error: String },
}

/// One job's line of the run summary.
#[derive(Debug, Clone, Serialize)]
pub struct JobReport {
    pub job: String,
    #[serde(flatten)]
    pub outcome: JobOutcome,
}

/// Options of a mining run.
#[derive(Debug, Clone, Default)]
pub struct MineOptions {
    /// Parameter overrides, NAME → VALUE; applied to every job that declares NAME.
    pub params: BTreeMap<String, String>,
    /// Recompute even when up to date.
    pub force: bool,
}

fn tapeout_version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

fn io(path: &Path, e: std::io::Error) -> EngineError {
    EngineError::Lake(tapeout_lake::LakeError::Io { path: path.to_path_buf(), source: e })
}

/// Checks the overrides name declared parameters and the job names don't shadow lake tables.
pub fn validate(jobs: &[Job], opts: &MineOptions) -> Result<(), EngineError> {
    for name in opts.params.keys() {
        if !jobs.iter().any(|j| j.params.iter().any(|p| &p.name == name)) {
            let mut known: Vec<&str> = jobs.iter().flat_map(|j| j.params.iter().map(|p| p.name.as_str())).collect();
            known.sort();
            known.dedup();
            return Err(EngineError::Mine(format!(
                "--set {name}: no selected job declares a parameter `{name}`; parameters: {}",
                known.join(", ")
            )));
        }
    }
    for job in jobs {
        if tapeout_schema::registry().tables().iter().any(|t| t.name == job.name) || job.name == "hardware" {
            return Err(EngineError::Mine(format!(
                "{}: job `{}` would shadow the lake table of the same name; rename the file",
                job.origin, job.name
            )));
        }
    }
    Ok(())
}

/// Runs `jobs` in order over `session`'s snapshot, storing each result; a failing job is
/// reported and the others still run.
pub async fn run_jobs(
    session: &LakeSession,
    jobs: &[Job],
    opts: &MineOptions,
    mut on_done: impl FnMut(&JobReport),
) -> Result<Vec<JobReport>, EngineError> {
    validate(jobs, opts)?;
    let mined = session.lake().join(MINED_DIR);
    let mut reports = Vec::new();
    for job in jobs {
        let outcome = match run_one(session, job, opts, &mined).await {
            Ok(o) => o,
            Err(e) => JobOutcome::Failed { error: format!("{}: {e}", job.origin) },
        };
        let report = JobReport { job: job.name.clone(), outcome };
        on_done(&report);
        reports.push(report);
    }
    Ok(reports)
}

async fn run_one(
    session: &LakeSession,
    job: &Job,
    opts: &MineOptions,
    mined: &Path,
) -> Result<JobOutcome, EngineError> {
    let (sql, values) = job.render(&opts.params).map_err(|e| EngineError::Mine(e.to_string()))?;
    let run_key = blake3::hash(sql.as_bytes()).to_hex()[..16].to_string();
    let version = session.snapshot().version;
    let dir = mined.join(&job.name);
    if !opts.force
        && let Some(latest) = read_latest(&dir)
        && latest.lake_version == version
        && latest.run_key == run_key
        && !latest.partial
        && !session.is_partial()
        && dir.join(&latest.file).is_file()
    {
        return Ok(JobOutcome::UpToDate { rows: latest.rows });
    }
    let started = Instant::now();
    let df = session.sql(&sql).await?;
    let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
    let batches = df.collect().await?;
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
    let stem = format!("result-{version:020}-{run_key}");
    let file = format!("{stem}.parquet");
    write_parquet(&dir.join(&file), &schema, &batches)?;
    let mut meta = ResultMeta {
        format_version: 1,
        job: job.name.clone(),
        finds: job.finds.clone(),
        output: job.output.clone(),
        lake_version: version,
        params: values.iter().map(|(k, v)| (k.clone(), v.display())).collect(),
        run_key,
        file: file.clone(),
        rows: rows as u64,
        columns: schema.fields().iter().map(|f| f.name().clone()).collect(),
        tapeout_version: tapeout_version(),
        computed_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64),
        elapsed_ms: started.elapsed().as_millis() as u64,
        partial: session.is_partial(),
        data: None,
    };
    let latest_text = serde_json::to_vec_pretty(&meta).expect("serializable");
    if rows <= JSON_ROWS_LIMIT {
        meta.data = Some(rows_json(&batches)?);
    }
    write_atomic(&dir.join(format!("{stem}.json")), &serde_json::to_vec_pretty(&meta).expect("serializable"))?;
    write_atomic(&dir.join("latest.json"), &latest_text)?;
    prune(&dir, &stem, read_previous(&dir, &stem).as_deref());
    Ok(JobOutcome::Computed { rows: rows as u64, elapsed_ms: meta.elapsed_ms })
}

fn rows_json(batches: &[RecordBatch]) -> Result<serde_json::Value, EngineError> {
    let mut w = ArrayWriter::new(Vec::new());
    let refs: Vec<&RecordBatch> = batches.iter().collect();
    w.write_batches(&refs)?;
    w.finish()?;
    let bytes = w.into_inner();
    if bytes.is_empty() {
        return Ok(serde_json::Value::Array(vec![]));
    }
    serde_json::from_slice(&bytes).map_err(|e| EngineError::Mine(format!("result rows as JSON: {e}")))
}

fn write_parquet(path: &Path, schema: &SchemaRef, batches: &[RecordBatch]) -> Result<(), EngineError> {
    let tmp = tmp_name(path);
    let file = fs::File::create(&tmp).map_err(|e| io(&tmp, e))?;
    let props = WriterProperties::builder().set_compression(Compression::ZSTD(ZstdLevel::try_new(1)?)).build();
    let mut w = ArrowWriter::try_new(file, schema.clone(), Some(props))?;
    for b in batches {
        w.write(b)?;
    }
    let file = w.into_inner()?;
    file.sync_all().map_err(|e| io(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| io(path, e))
}

fn tmp_name(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}.tmp", std::process::id()));
    path.with_file_name(name)
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), EngineError> {
    let tmp = tmp_name(path);
    fs::write(&tmp, bytes).map_err(|e| io(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| io(path, e))
}

/// The current result of a job folder.
pub fn read_latest(dir: &Path) -> Option<ResultMeta> {
    let text = fs::read(dir.join("latest.json")).ok()?;
    serde_json::from_slice(&text).ok()
}

/// The newest result stem other than `current` (the one readers may still hold).
fn read_previous(dir: &Path, current: &str) -> Option<String> {
    let mut stems: Vec<String> = fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_suffix(".parquet")).map(str::to_string))
        .filter(|s| s.starts_with("result-") && s != current)
        .collect();
    stems.sort();
    stems.pop()
}

/// Removes results other than `current` and `keep`, and stale temporary files.
fn prune(dir: &Path, current: &str, keep: Option<&str>) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let stem = name.strip_suffix(".parquet").or_else(|| name.strip_suffix(".json"));
        let stale_result = stem.is_some_and(|s| s.starts_with("result-") && s != current && Some(s) != keep);
        // Another process's temporary file may be in use: only remove ones an hour old.
        let old = e.metadata().and_then(|m| m.modified()).is_ok_and(|t| t.elapsed().is_ok_and(|d| d.as_secs() > 3600));
        let stale_tmp = name.ends_with(".tmp") && old;
        if stale_result || stale_tmp {
            let _ = fs::remove_file(e.path());
        }
    }
}

/// Registers the latest result of every mined job as a table named after the job (unless a
/// table of that name exists). Returns the names registered.
pub async fn register_results(ctx: &SessionContext, lake: &Path) -> Result<Vec<String>, EngineError> {
    let mined = lake.join(MINED_DIR);
    let Ok(entries) = fs::read_dir(&mined) else { return Ok(vec![]) };
    let mut names = Vec::new();
    let mut dirs: Vec<PathBuf> = entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect();
    dirs.sort();
    for dir in dirs {
        let Some(meta) = read_latest(&dir) else { continue };
        let name = meta.job.clone();
        if ctx.table_exist(name.as_str())? {
            continue;
        }
        let path = dir.join(&meta.file);
        let Some(path_str) = path.to_str() else { continue };
        ctx.register_parquet(name.as_str(), path_str, ParquetReadOptions::default()).await?;
        names.push(name);
    }
    Ok(names)
}
