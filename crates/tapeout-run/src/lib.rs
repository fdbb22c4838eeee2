//! A tapeout run, end to end, as a library: what `tapeout run`, `tapeout recommend` and
//! `tapeout report` do between parsing their arguments and printing.
//!
//! A tour:
//! - [`plan::plan`] reads a pipeline config and checks every name in it (hardware, models,
//!   features, formats, jobs, parameters, source paths) before any work starts: a
//!   [`plan::Plan`].
//! - [`execute::run_pipeline`] runs a plan's stages — ingest each source, mine on the chosen
//!   [`execute::Engine`], recommend, write the report — and returns a
//!   [`execute::RunSummary`]; a [`execute::RunObserver`] sees each stage as it ends.
//! - [`mined::read_mined`] reads the mined tables the recommender needs from a lake session
//!   into the typed rows of [`tapeout_recommend::mined`], checking each table's columns first.
//! - [`recommendations::build`] turns those rows and [`recommendations::RecommendSettings`]
//!   into workloads and runs the recommender; [`recommendations::write_outputs`] writes
//!   `recommendations.json` and `.md`.
//! - [`report::build`] assembles the report model ([`tapeout_report::model::Report`]);
//!   [`report::write`] renders it and stores it in the lake for `tapeout report`.

pub mod execute;
pub mod mined;
pub mod plan;
pub mod project;
pub mod recommendations;
pub mod report;

use std::path::{Path, PathBuf};

/// Errors of a run; each says what it concerns (the config file, the lake, the job).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The pipeline config names something that does not exist or cannot work.
    #[error("{file}: {message}")]
    Config { file: String, message: String },
    /// Bad settings outside a config file (flags): unknown model, empty feature selection.
    #[error("{0}")]
    Settings(String),
    /// The lake has no result for some job the recommender reads.
    #[error("{lake}: the lake was not mined yet (no result for {jobs}); run `tapeout mine --lake {lake}` first")]
    NotMined { lake: String, jobs: String },
    /// Mined results that describe another lake version than the one read.
    #[error(
        "{lake}: mined results are not of the lake's version {version}, whole: {jobs}; run `tapeout mine --lake {lake}` (or `tapeout run`) first"
    )]
    StaleResults { lake: String, version: u64, jobs: String },
    /// The report stored in a lake is of an older lake version.
    #[error(
        "{lake}: the stored report is of lake version {report_version}, the lake is at version {lake_version}; run `tapeout run` to bring it up to date"
    )]
    StaleReport { lake: String, report_version: u64, lake_version: u64 },
    /// Ingesting one source failed.
    #[error("ingest of {input} into {lake} failed")]
    Ingest { input: String, lake: String, source: Box<tapeout_lake::LakeError> },
    /// Every input of a run was rejected.
    #[error("every input was rejected; nothing to mine")]
    NothingToMine,
    #[error(transparent)]
    Mined(#[from] tapeout_recommend::mined::MinedError),
    #[error(transparent)]
    Engine(#[from] tapeout_engine::EngineError),
    #[error(transparent)]
    DataFusion(#[from] datafusion::error::DataFusionError),
    #[error(transparent)]
    Pipelines(#[from] tapeout_pipelines::PipelinesError),
    #[error(transparent)]
    Recommend(#[from] tapeout_recommend::RecommendError),
    #[error(transparent)]
    Cluster(#[from] tapeout_cluster::ClusterError),
    #[error(transparent)]
    Lake(Box<tapeout_lake::LakeError>),
    /// Reading or writing a file failed.
    #[error("{what} {}", path.display())]
    Io { what: &'static str, path: PathBuf, source: std::io::Error },
    /// A query's rows could not be decoded (a bug: the engine's JSON writer and serde disagree).
    #[error("query `{query}` gave unreadable rows: {message}")]
    Rows { query: String, message: String },
    /// `tapeout report` on a lake without a stored report.
    #[error("{}: no report stored in this lake; run `tapeout run` (which stores one) first", path.display())]
    NoStoredReport { path: PathBuf, source: std::io::Error },
    /// A JSON file is not what it should be.
    #[error("{}: {message}", path.display())]
    Json { path: PathBuf, message: String },
}

impl From<tapeout_lake::LakeError> for RunError {
    fn from(e: tapeout_lake::LakeError) -> Self {
        RunError::Lake(Box::new(e))
    }
}

impl RunError {
    fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> RunError {
        let path = path.to_path_buf();
        move |source| RunError::Io { what, path, source }
    }
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename, so a
/// reader sees the old file or the new one, never a partial one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), RunError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes).map_err(RunError::io("writing", &tmp))?;
    std::fs::rename(&tmp, path).map_err(RunError::io("renaming to", path))
}

/// Creates `dir` and its parents.
fn create_dir(dir: &Path) -> Result<(), RunError> {
    std::fs::create_dir_all(dir).map_err(RunError::io("creating", dir))
}
