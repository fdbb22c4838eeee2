//! Scale-out: the same SQL jobs on an Apache Ballista cluster.
//!
//! A tour:
//! - [`open_session`] opens a lake as `tapeout-engine` does, but on a context that sends every
//!   plan to a Ballista scheduler (`df://host:port`). Tables are listing tables under URLs
//!   that name the lake and its manifest version (`tapeout-engine`'s `snapshot_store`), the
//!   `hardware` table is a view over `VALUES`, and mined results are listing tables: all
//!   serialize with the plan, so no table needs a custom codec.
//! - [`run_scheduler`] and [`run_executor`] are Ballista's scheduler and executor processes
//!   built with tapeout's session state ([`tapeout_engine::session_state`]): its lake
//!   object-store registry, which resolves snapshot URLs, and its UDFs and UDAFs (the HDR
//!   histograms, the LRU cache), which a stock Ballista executor does not know.
//!   `tapeout scheduler` and `tapeout executor` are these.
//!
//! What a cluster needs: every executor reads the lake's files at the paths the scheduler
//! planned, so a local lake must be at the same path on every machine (one host, or a shared
//! file system). The Ballista version is the one matching our DataFusion major (55).

use std::net::SocketAddr;
use std::sync::Arc;

use ballista::prelude::SessionContextExt;
use ballista_core::extension::{
    SessionConfigExt, ballista_aggregate_functions, ballista_scalar_functions, ballista_window_functions,
};
use ballista_core::registry::BallistaFunctionRegistry;
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::start_server;
use datafusion::error::DataFusionError;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::context::SessionState;
use datafusion::prelude::{SessionConfig, SessionContext};
use tapeout_engine::{EngineError, LakeSession, SessionOptions};
use tapeout_lake::LakeLocation;

/// Ballista's default scheduler port.
pub const DEFAULT_SCHEDULER_PORT: u16 = 50050;

/// Errors of cluster processes.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A scheduler address that is not `df://host:port` (or `host:port`).
    #[error("scheduler address {0:?}: expected df://host:port")]
    Address(String),
    /// Ballista failed to start or stopped with an error.
    #[error("ballista: {0}")]
    Ballista(String),
    /// tapeout's session state could not be built.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// `df://host:port`, `http://host:port` or `host:port` → (host, port).
pub fn parse_scheduler(address: &str) -> Result<(String, u16), ClusterError> {
    let rest = address.split_once("://").map_or(address, |(_, r)| r).trim_end_matches('/');
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().map_err(|_| ClusterError::Address(address.to_string()))?),
        None => (rest, DEFAULT_SCHEDULER_PORT),
    };
    if host.is_empty() {
        return Err(ClusterError::Address(address.to_string()));
    }
    Ok((host.to_string(), port))
}

/// Opens `location` with every query planned by the Ballista scheduler at `scheduler` and run
/// on its executors (which must be tapeout executors: they know tapeout's functions).
pub async fn open_session(
    location: &LakeLocation,
    opts: SessionOptions,
    scheduler: &str,
) -> Result<LakeSession, ClusterError> {
    let (host, port) = parse_scheduler(scheduler)?;
    let url = format!("df://{host}:{port}");
    let session = LakeSession::open_with(location, opts, |state| async move {
        let config = static_planner(state.config().clone().upgrade_for_ballista());
        let state = SessionStateBuilder::new_from_existing(state).with_config(config).build();
        let ctx = SessionContext::remote_with_state(&url, state).await?;
        // Ballista's upgrade replaces the function lists with its own: add ours back.
        Ok(SessionContext::new_with_state(tapeout_engine::with_functions(ctx.state())))
    })
    .await?;
    Ok(session)
}

/// Ballista 55's adaptive planner (AQE) gives wrong results on tapeout's jobs: a window
/// partitioned by a join's keys above a join it turns into a broadcast sums over one task's
/// rows only (`kernel_category_time`, `request_concurrency_series`; found by the test
/// `tapeout-cli/tests/it/ballista.rs`). The static distributed planner keeps DataFusion's distribution.
fn static_planner(mut config: SessionConfig) -> SessionConfig {
    config.options_mut().set("ballista.planner.adaptive.enabled", "false").expect("a Ballista option");
    config
}

/// The session a scheduler plans a job in: tapeout's state under the job's configuration,
/// with Ballista's optimizer rules and functions.
fn scheduler_session(config: SessionConfig) -> datafusion::error::Result<SessionState> {
    let state = tapeout_engine::session_state(config.upgrade_for_ballista(), None)
        .map_err(|e| DataFusionError::External(Box::new(e)))?;
    let mut builder = SessionStateBuilder::new_from_existing(state)
        .with_optimizer_rules(ballista_core::optimizer::ballista_default_optimizer_rules());
    builder.aggregate_functions().get_or_insert_default().extend(ballista_aggregate_functions());
    builder.scalar_functions().get_or_insert_default().extend(ballista_scalar_functions());
    builder.window_functions().get_or_insert_default().extend(ballista_window_functions());
    Ok(tapeout_engine::with_functions(builder.build()))
}

/// Runs a Ballista scheduler on `bind` whose sessions know tapeout's tables and functions.
/// Returns when the server stops.
pub async fn run_scheduler(bind: SocketAddr, external_host: Option<String>) -> Result<(), ClusterError> {
    let config = SchedulerConfig {
        bind_host: bind.ip().to_string(),
        bind_port: bind.port(),
        external_host: external_host.unwrap_or_else(|| bind.ip().to_string()),
        override_session_builder: Some(Arc::new(scheduler_session)),
        override_config_producer: Some(Arc::new(SessionConfig::new_with_ballista)),
        ..SchedulerConfig::default()
    };
    let cluster = BallistaCluster::new_from_config(&config).await.map_err(|e| ClusterError::Ballista(e.to_string()))?;
    start_server(cluster, bind, Arc::new(config)).await.map_err(|e| ClusterError::Ballista(e.to_string()))
}

/// How an executor runs.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    /// The scheduler, `df://host:port`.
    pub scheduler: String,
    /// Address to bind the executor's Flight service (shuffle reads) to.
    pub bind_host: String,
    /// Host other processes reach this executor at (default: `bind_host`).
    pub external_host: Option<String>,
    /// Flight port.
    pub port: u16,
    /// gRPC port.
    pub grpc_port: u16,
    /// Task slots (default: one per core).
    pub vcores: usize,
    /// Shuffle files go here (default: a temporary directory).
    pub work_dir: Option<String>,
}

/// Runs a Ballista executor with tapeout's functions and lake object-store registry until it
/// is stopped (SIGTERM, Ctrl-C, or the scheduler).
pub async fn run_executor(opts: ExecutorOptions) -> Result<(), ClusterError> {
    let (scheduler_host, scheduler_port) = parse_scheduler(&opts.scheduler)?;
    let state = scheduler_session(SessionConfig::new_with_ballista()).map_err(EngineError::from)?;
    let registry = BallistaFunctionRegistry::from(&state);
    let config = ExecutorProcessConfig {
        bind_host: opts.bind_host.clone(),
        external_host: Some(opts.external_host.clone().unwrap_or_else(|| opts.bind_host.clone())),
        port: opts.port,
        grpc_port: opts.grpc_port,
        scheduler_host,
        scheduler_port,
        scheduler_connect_timeout_seconds: 30,
        vcores: opts.vcores,
        work_dir: opts.work_dir.clone(),
        override_function_registry: Some(Arc::new(registry)),
        override_runtime_producer: Some(Arc::new(|_: &SessionConfig| {
            tapeout_engine::lake_runtime(None).map_err(|e| DataFusionError::External(Box::new(e)))
        })),
        override_config_producer: Some(Arc::new(SessionConfig::new_with_ballista)),
        ..ExecutorProcessConfig::default()
    };
    start_executor_process(Arc::new(config)).await.map_err(|e| ClusterError::Ballista(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduler_addresses_parse() {
        assert_eq!(parse_scheduler("df://127.0.0.1:50055").unwrap(), ("127.0.0.1".into(), 50055));
        assert_eq!(parse_scheduler("sched").unwrap(), ("sched".into(), DEFAULT_SCHEDULER_PORT));
        assert!(parse_scheduler("df://:12").is_err());
        assert!(parse_scheduler("df://h:port").is_err());
    }
}
