//! Runs the sqllogictest files in tests/slt/ against a lake built from every file under
//! `sample-traces/`, with every mining job of `pipelines/sql/` run at its default parameters,
//! so each file can query both lake tables and job results (tables named after the jobs).
//!
//! Value formatting: NULL for null, `true`/`false`, integers as digits, floats as Arrow prints
//! them (round in the query, e.g. `round(x, 3)`, for stable output), empty strings as `(empty)`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use sqllogictest::{DBOutput, DefaultColumnType};
use tapeout_engine::mine::{JobOutcome, MineOptions, run_jobs};
use tapeout_engine::{EngineError, LakeSession, SessionOptions};
use tapeout_pipelines::Pipelines;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

struct Db(Arc<LakeSession>);

#[derive(Debug)]
struct DbError(String);

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DbError {}

impl From<EngineError> for DbError {
    fn from(e: EngineError) -> Self {
        DbError(e.to_string())
    }
}

fn column_type(t: &DataType) -> DefaultColumnType {
    if t.is_integer() {
        DefaultColumnType::Integer
    } else if t.is_floating() || matches!(t, DataType::Decimal128(..)) {
        DefaultColumnType::FloatingPoint
    } else {
        DefaultColumnType::Text
    }
}

#[async_trait]
impl sqllogictest::AsyncDB for Db {
    type Error = DbError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, DbError> {
        let df = self.0.sql(sql).await?;
        let schema = df.schema().as_arrow().clone();
        let batches = df.collect().await.map_err(|e| DbError(e.to_string()))?;
        let types = schema.fields().iter().map(|f| column_type(f.data_type())).collect();
        let options = FormatOptions::default().with_null("NULL");
        let mut rows = Vec::new();
        for b in &batches {
            let fmts = b
                .columns()
                .iter()
                .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| DbError(e.to_string()))?;
            for r in 0..b.num_rows() {
                rows.push(
                    fmts.iter()
                        .map(|f| {
                            let s = f.value(r).to_string();
                            if s.is_empty() { "(empty)".to_string() } else { s }
                        })
                        .collect(),
                );
            }
        }
        Ok(DBOutput::Rows { types, rows })
    }

    async fn shutdown(&mut self) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mining_jobs_match_hand_computed_values() {
    let lake = tempfile::tempdir().unwrap();
    let input = root().join("sample-traces").display().to_string();
    let s = tapeout_lake::ingest(lake.path(), &[input], tapeout_lake::IngestOptions::default()).await.unwrap();
    assert_eq!((s.rejected, s.quarantined), (0, 0), "the sample traces ingest cleanly");

    let pipelines = Pipelines::dir(root().join("pipelines"));
    let jobs = tapeout_pipelines::jobs::load_all(&pipelines).unwrap();
    let opts = SessionOptions { without_results: true, pipelines: Some(pipelines.clone()), ..Default::default() };
    let session = LakeSession::open(lake.path(), opts).await.unwrap();
    let reports = run_jobs(&session, &jobs, &MineOptions::default(), |_| {}).await.unwrap();
    let failed: Vec<String> = reports
        .iter()
        .filter_map(|r| match &r.outcome {
            JobOutcome::Failed { error } => Some(error.clone()),
            _ => None,
        })
        .collect();
    assert!(failed.is_empty(), "jobs failed on the sample lake:\n{}", failed.join("\n"));

    let session = Arc::new(
        LakeSession::open(lake.path(), SessionOptions { pipelines: Some(pipelines), ..Default::default() })
            .await
            .unwrap(),
    );
    let mut files: Vec<PathBuf> = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slt"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "tests/slt has .slt files");
    let mut errors = Vec::new();
    for f in &files {
        let s = session.clone();
        let mut runner = sqllogictest::Runner::new(move || {
            let s = s.clone();
            async move { Ok::<_, DbError>(Db(s)) }
        });
        if let Err(e) = runner.run_file_async(f).await {
            errors.push(format!("{}: {}", f.display(), e.display(false)));
        }
    }
    assert!(errors.is_empty(), "{} of {} slt files failed:\n{}", errors.len(), files.len(), errors.join("\n\n"));
}
