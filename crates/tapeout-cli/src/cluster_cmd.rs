//! `tapeout scheduler` and `tapeout executor`: a Ballista cluster that knows tapeout's tables
//! and functions.

use std::net::SocketAddr;

use tapeout_cluster::ExecutorOptions;

#[derive(clap::Args)]
pub struct SchedulerArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:50050")]
    pub bind: SocketAddr,
    /// Host name executors and clients reach this scheduler at (default: the bind address).
    #[arg(long)]
    pub external_host: Option<String>,
}

#[derive(clap::Args)]
pub struct ExecutorArgs {
    /// The scheduler to register with.
    #[arg(long, env = "TAPEOUT_SCHEDULER", default_value = "df://localhost:50050", value_name = "df://HOST:PORT")]
    pub scheduler: String,
    /// Address to bind the executor's services to.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind_host: String,
    /// Host name other processes reach this executor at (default: --bind-host).
    #[arg(long)]
    pub external_host: Option<String>,
    /// Arrow Flight port (shuffle reads).
    #[arg(long, default_value_t = 50051)]
    pub port: u16,
    /// gRPC port.
    #[arg(long, default_value_t = 50052)]
    pub grpc_port: u16,
    /// Concurrent tasks (default: one per core).
    #[arg(long, default_value_t = 0)]
    pub vcores: usize,
    /// Directory for shuffle files (default: a temporary directory).
    #[arg(long)]
    pub work_dir: Option<String>,
}

pub async fn scheduler(args: SchedulerArgs) -> anyhow::Result<u8> {
    eprintln!("tapeout scheduler listening on {}", args.bind);
    tapeout_cluster::run_scheduler(args.bind, args.external_host).await?;
    Ok(0)
}

pub async fn executor(args: ExecutorArgs) -> anyhow::Result<u8> {
    eprintln!("tapeout executor on {}:{} for scheduler {}", args.bind_host, args.port, args.scheduler);
    let work_dir = match args.work_dir {
        Some(d) => Some(d),
        None => {
            let dir = std::env::temp_dir().join(format!("tapeout-executor-{}", std::process::id()));
            std::fs::create_dir_all(&dir)?;
            Some(dir.to_string_lossy().into_owned())
        }
    };
    tapeout_cluster::run_executor(ExecutorOptions {
        scheduler: args.scheduler,
        bind_host: args.bind_host,
        external_host: args.external_host,
        port: args.port,
        grpc_port: args.grpc_port,
        vcores: args.vcores,
        work_dir,
    })
    .await?;
    Ok(0)
}
