//! DataFusion over a lake snapshot: what `tapeout sql` (and later the mining jobs) run on.
//!
//! A tour:
//! - [`LakeSession::open`] pins the newest manifest version and registers every table of the
//!   schema registry as a hive-partitioned listing table under a URL naming that version
//!   (`tapeout-lake://v<N>/<lake>/<table>/`); [`snapshot_store`] resolves such URLs to a
//!   read-only store that shows DataFusion only the files that version names.
//!   [`LakeSession::open_at`] also opens `s3://` lakes; [`LakeSession::open_with`] takes the
//!   context to build (the Ballista engine's, in `tapeout-cluster`).
//! - [`session_state`] is the state every tapeout process plans and runs with: the lake
//!   object-store registry and tapeout's functions ([`udf`]).
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
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::TableProvider;
use datafusion::catalog::view::ViewTable;
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::context::SessionState;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::logical_expr::LogicalPlanBuilder;
use datafusion::prelude::{DataFrame, SQLOptions, SessionConfig, SessionContext};
use datafusion::prelude::{col, lit};
use datafusion::sql::parser::{DFParser, Statement};
use tapeout_lake::{LakeLocation, Snapshot};

use crate::snapshot_store::{LakeObjectStoreRegistry, REMOTE_LAKE_URL, SnapshotStore, local_lake_url};

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
    /// Partitions per query (default: one per core).
    pub target_partitions: Option<usize>,
    /// Read a lake whose pinned version lacks commits or data files (missing, damaged, of
    /// another size): only what is present is read, and a warning names what is not. Without
    /// it such a lake is refused ([`tapeout_lake::LakeError::Incomplete`]).
    pub allow_partial: bool,
}

/// tapeout's session state: the lake object-store registry, a memory pool when asked, and
/// every tapeout function. A Ballista scheduler or executor of ours builds its sessions with
/// this too, so plans name nothing it does not know.
pub fn session_state(config: SessionConfig, memory_limit: Option<usize>) -> Result<SessionState, EngineError> {
    let state = SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(lake_runtime(memory_limit)?)
        .with_default_features()
        .build();
    Ok(with_functions(state))
}

/// A runtime whose object-store registry resolves lake snapshot URLs.
pub fn lake_runtime(memory_limit: Option<usize>) -> Result<Arc<RuntimeEnv>, EngineError> {
    let mut runtime = RuntimeEnvBuilder::new().with_object_store_registry(Arc::new(LakeObjectStoreRegistry::new()));
    if let Some(limit) = memory_limit {
        runtime = runtime.with_memory_limit(limit, 1.0);
    }
    Ok(runtime.build_arc()?)
}

/// `state` with tapeout's functions added, and the physical optimizer rule that evaluates
/// running sums in one pass ([`udf::running_sum`]).
pub fn with_functions(state: SessionState) -> SessionState {
    let has_rule = state.physical_optimizers().iter().any(|r| r.name() == udf::running_sum::RULE_NAME);
    let mut builder = SessionStateBuilder::new_from_existing(state);
    builder.aggregate_functions().get_or_insert_default().extend(udf::aggregate_functions());
    builder.scalar_functions().get_or_insert_default().extend(udf::scalar_functions());
    builder.window_functions().get_or_insert_default().extend(udf::window_functions());
    if !has_rule {
        builder = builder.with_physical_optimizer_rule(Arc::new(udf::running_sum::RunningSumRule::new()));
    }
    builder.build()
}

fn location_is_local(location: &LakeLocation) -> bool {
    matches!(location, LakeLocation::Local(_))
}

/// A record batch as a view over `VALUES`: unlike an in-memory table, a view serializes with
/// the plan, so Ballista's scheduler and executors get its rows with the query.
fn batch_view(batch: RecordBatch) -> Result<Arc<dyn TableProvider>, EngineError> {
    if batch.num_rows() == 0 {
        return Ok(Arc::new(MemTable::try_new(batch.schema(), vec![vec![]])?));
    }
    let rows = (0..batch.num_rows())
        .map(|r| batch.columns().iter().map(|c| ScalarValue::try_from_array(c, r).map(lit)).collect())
        .collect::<datafusion::error::Result<Vec<Vec<_>>>>()?;
    let schema = Arc::new(DFSchema::try_from(batch.schema().as_ref().clone())?);
    // VALUES names its columns column1..N whatever the schema says: name them after it.
    let batch_schema = batch.schema();
    let names = batch_schema.fields().iter().enumerate().map(|(i, f)| col(format!("column{}", i + 1)).alias(f.name()));
    let plan = LogicalPlanBuilder::values_with_schema(rows, &schema)?.project(names)?.build()?;
    Ok(Arc::new(ViewTable::new(plan, None)))
}

/// A DataFusion session with every lake table registered over one manifest version.
pub struct LakeSession {
    ctx: SessionContext,
    snapshot: Arc<Snapshot>,
    damage: tapeout_lake::manifest::Damage,
    lake: PathBuf,
    opts: SessionOptions,
}

impl LakeSession {
    /// Opens the local lake at `lake` (which must exist) on the local engine.
    pub async fn open(lake: &Path, opts: SessionOptions) -> Result<LakeSession, EngineError> {
        Self::open_at(&LakeLocation::Local(lake.to_path_buf()), opts).await
    }

    /// Opens a local or object-store lake on the local engine.
    pub async fn open_at(location: &LakeLocation, opts: SessionOptions) -> Result<LakeSession, EngineError> {
        Self::open_with(location, opts, |state| async move { Ok(SessionContext::new_with_state(state)) }).await
    }

    /// Opens a lake on the context `make_context` builds from tapeout's session state (the
    /// Ballista engine passes one that sends plans to a scheduler).
    pub async fn open_with<F, Fut>(
        location: &LakeLocation,
        opts: SessionOptions,
        make_context: F,
    ) -> Result<LakeSession, EngineError>
    where
        F: FnOnce(SessionState) -> Fut,
        Fut: std::future::Future<Output = datafusion::error::Result<SessionContext>>,
    {
        let (lake, snapshot, damage, tables_url, remote) = match location {
            LakeLocation::Local(lake) => {
                if !lake.is_dir() {
                    return Err(EngineError::NoLake(lake.to_path_buf()));
                }
                let lake = std::path::absolute(lake).unwrap_or_else(|_| lake.to_path_buf());
                let verified = tapeout_lake::manifest::open_for_read(&lake, opts.at_version, opts.allow_partial)?;
                let url = local_lake_url(&lake, verified.snapshot.version);
                (lake, verified.snapshot, verified.damage, url, None)
            }
            LakeLocation::Remote(r) => {
                let snapshot = r.snapshot(opts.at_version).await?;
                let store = SnapshotStore::fixed(r.store(), &snapshot);
                (PathBuf::from(&r.url), snapshot, Default::default(), format!("{REMOTE_LAKE_URL}/"), Some(store))
            }
        };
        if !damage.is_empty() {
            tracing::warn!(
                "{}: PARTIAL READ (--allow-partial): version {} is incomplete, answers omit what is missing: {}",
                lake.display(),
                snapshot.version,
                damage.lines().join("; ")
            );
        }
        let snapshot = Arc::new(snapshot);
        let mut config = SessionConfig::new()
            .with_information_schema(true)
            .with_target_partitions(std::thread::available_parallelism().map_or(2, |n| n.get()));
        if let Some(n) = opts.target_partitions {
            config = config.with_target_partitions(n);
        }
        let state = session_state(config, opts.memory_limit)?;
        let ctx = make_context(state).await?;
        if let Some(store) = remote {
            let url = ObjectStoreUrl::parse(REMOTE_LAKE_URL)?;
            ctx.register_object_store(url.as_ref(), Arc::new(store));
        }
        let session = LakeSession { ctx, snapshot, damage, lake, opts };
        for table in tapeout_schema::registry().tables() {
            session.register_table(&tables_url, table).await?;
        }
        let pipelines = session.opts.pipelines.clone().unwrap_or_else(tapeout_pipelines::Pipelines::embedded);
        let profiles = tapeout_pipelines::hardware::load_all(&pipelines)?;
        session.ctx.register_table("hardware", batch_view(hardware::profiles_batch(&profiles)?)?)?;
        if !session.opts.without_results && location_is_local(location) {
            mine::register_results(&session.ctx, &session.lake).await?;
        }
        Ok(session)
    }

    async fn register_table(&self, tables_url: &str, table: &tapeout_schema::TableDef) -> Result<(), EngineError> {
        let url = ListingTableUrl::parse(format!("{tables_url}{}/", table.location))?;
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

    /// What the pinned version lacks (empty unless the session was opened with
    /// `allow_partial` over an incomplete lake).
    pub fn damage(&self) -> &tapeout_lake::manifest::Damage {
        &self.damage
    }

    /// Whether answers may be partial (see [`LakeSession::damage`]).
    pub fn is_partial(&self) -> bool {
        !self.damage.is_empty()
    }

    /// The lake directory (an object-store lake's URL, as a path: such sessions have no
    /// mined results).
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
