//! DataFusion over a lake snapshot: what `tapeout sql` (and later the mining jobs) run on.
//!
//! A tour:
//! - [`LakeSession::open`] pins the newest manifest version, registers a read-only
//!   [`snapshot_store::SnapshotStore`] that shows DataFusion only the files that version names,
//!   and registers every table of the schema registry as a hive-partitioned listing table.
//!   Readers therefore never see an uncommitted file, and an ingest that commits while a query
//!   runs does not change what that query reads (old version or new, never a mix).
//! - [`LakeSession::sql`] runs one statement, refusing statements that write (`COPY`,
//!   `INSERT`) unless the session was opened with `allow_writes`.

pub mod hardware;
pub mod mine;
pub mod snapshot_store;
pub mod udf;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{DataFrame, SQLOptions, SessionConfig, SessionContext};
use datafusion::sql::parser::{DFParser, Statement};
use tapeout_lake::Snapshot;

use crate::snapshot_store::SnapshotStore;

/// URL under which the pinned lake snapshot is registered.
pub const LAKE_URL: &str = "tapeout-lake://snapshot";

/// Errors of the SQL engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The lake could not be read.
    #[error(transparent)]
    Lake(#[from] tapeout_lake::LakeError),
    /// The lake directory does not exist.
    #[error("{}: no lake here (no such directory); create one with `tapeout ingest --lake {} FILES`", .0.display(), .0.display())]
    NoLake(PathBuf),
    /// A statement that writes, in a read-only session.
    #[error("tapeout sql is read-only: {0} statements are refused (pass --allow-writes to run them)")]
    ReadOnly(String),
    /// DataFusion planning or execution failed.
    #[error(transparent)]
    DataFusion(#[from] datafusion::error::DataFusionError),
    /// Arrow failed (writing a result).
    #[error(transparent)]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
    /// Writing a result's Parquet failed.
    #[error(transparent)]
    Parquet(#[from] datafusion::parquet::errors::ParquetError),
    /// A pipeline file (job, hardware profile) is invalid.
    #[error(transparent)]
    Pipelines(#[from] tapeout_pipelines::PipelinesError),
    /// A mining run cannot start.
    #[error("{0}")]
    Mine(String),
}

/// How a session is opened.
#[derive(Debug, Clone, Default)]
pub struct SessionOptions {
    /// Allow DML (`COPY … TO`, `INSERT`).
    pub allow_writes: bool,
    /// Memory pool limit in bytes (operators that can spill do; others fail with a clear error).
    pub memory_limit: Option<usize>,
    /// Pin this manifest version instead of the newest.
    pub at_version: Option<u64>,
    /// Where hardware profiles come from (default: the built-in pipelines).
    pub pipelines: Option<tapeout_pipelines::Pipelines>,
    /// Do not register mined results as tables (what jobs themselves run on).
    pub without_results: bool,
}

/// A DataFusion session with every lake table registered over one manifest version.
pub struct LakeSession {
    ctx: SessionContext,
    snapshot: Arc<Snapshot>,
    lake: PathBuf,
    opts: SessionOptions,
}

impl LakeSession {
    /// Opens the lake at `lake` (which must exist).
    pub async fn open(lake: &Path, opts: SessionOptions) -> Result<LakeSession, EngineError> {
        if !lake.is_dir() {
            return Err(EngineError::NoLake(lake.to_path_buf()));
        }
        let lake = std::path::absolute(lake).unwrap_or_else(|_| lake.to_path_buf());
        let snapshot = Arc::new(tapeout_lake::load_snapshot(&lake, opts.at_version)?);
        let mut runtime = RuntimeEnvBuilder::new();
        if let Some(limit) = opts.memory_limit {
            runtime = runtime.with_memory_limit(limit, 1.0);
        }
        let config = SessionConfig::new()
            .with_information_schema(true)
            .with_target_partitions(std::thread::available_parallelism().map_or(2, |n| n.get()));
        let ctx = SessionContext::new_with_config_rt(config, runtime.build_arc()?);
        let store = SnapshotStore::new(&lake, &snapshot).map_err(datafusion::error::DataFusionError::from)?;
        let url = ObjectStoreUrl::parse(LAKE_URL)?;
        ctx.register_object_store(url.as_ref(), Arc::new(store));
        let session = LakeSession { ctx, snapshot, lake, opts };
        for table in tapeout_schema::registry().tables() {
            session.register_table(table).await?;
        }
        udf::register_all(&session.ctx);
        let pipelines = session.opts.pipelines.clone().unwrap_or_else(tapeout_pipelines::Pipelines::embedded);
        let profiles = tapeout_pipelines::hardware::load_all(&pipelines)?;
        session.ctx.register_batch("hardware", hardware::profiles_batch(&profiles)?)?;
        if !session.opts.without_results {
            mine::register_results(&session.ctx, &session.lake).await?;
        }
        Ok(session)
    }

    async fn register_table(&self, table: &tapeout_schema::TableDef) -> Result<(), EngineError> {
        let url = ListingTableUrl::parse(format!("{LAKE_URL}/{}/", table.location))?;
        let partition_cols: Vec<(String, DataType)> =
            table.partition_columns().map(|c| (c.name.clone(), c.ty.arrow_type())).collect();
        let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
            .with_file_extension(".parquet")
            .with_table_partition_cols(partition_cols);
        let config = ListingTableConfig::new(url).with_listing_options(options).with_schema(table.file_schema());
        let provider = ListingTable::try_new(config)?;
        self.ctx.register_table(table.name.as_str(), Arc::new(provider))?;
        Ok(())
    }

    /// The DataFusion context (to register functions or more tables).
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// The pinned manifest version.
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// The lake directory.
    pub fn lake(&self) -> &Path {
        &self.lake
    }

    /// Plans one SQL statement (read-only unless the session allows writes).
    pub async fn sql(&self, query: &str) -> Result<DataFrame, EngineError> {
        let options = SQLOptions::new().with_allow_dml(self.opts.allow_writes);
        match self.ctx.sql_with_options(query, options).await {
            Ok(df) => Ok(df),
            Err(e) if !self.opts.allow_writes && e.to_string().contains("DML not supported") => {
                let kind = query.split_whitespace().next().unwrap_or("DML").to_uppercase();
                Err(EngineError::ReadOnly(kind))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Splits a script into statements (DataFusion's parser, generic dialect).
    pub fn parse_script(&self, text: &str) -> Result<Vec<Statement>, EngineError> {
        Ok(DFParser::parse_sql(text)?.into_iter().collect())
    }

    /// Plans one parsed statement under the session's read-only rule. Plan each statement of a
    /// script only after the previous one ran: it may use a view the previous one created.
    pub async fn statement(&self, statement: Statement) -> Result<DataFrame, EngineError> {
        let kind = statement.to_string().split_whitespace().next().unwrap_or("DML").to_uppercase();
        let plan = self.ctx.state().statement_to_plan(statement).await?;
        let options = SQLOptions::new().with_allow_dml(self.opts.allow_writes);
        if let Err(e) = options.verify_plan(&plan) {
            return Err(if e.to_string().contains("DML not supported") {
                EngineError::ReadOnly(kind)
            } else {
                e.into()
            });
        }
        Ok(self.ctx.execute_logical_plan(plan).await?)
    }

    /// Names of the registered tables, sorted.
    pub fn table_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .ctx
            .catalog("datafusion")
            .and_then(|c| c.schema("public"))
            .map(|s| s.table_names())
            .unwrap_or_default();
        names.sort();
        names
    }
}

#[cfg(test)]
mod tests;
