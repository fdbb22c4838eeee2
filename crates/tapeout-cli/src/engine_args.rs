//! `--engine local|ballista` and `--scheduler`, shared by `sql`, `mine` and `run`.

use tapeout_engine::{LakeSession, SessionOptions};
use tapeout_lake::LakeLocation;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Engine {
    /// DataFusion in this process.
    Local,
    /// A Ballista cluster of tapeout executors (`tapeout scheduler`, `tapeout executor`).
    Ballista,
}

#[derive(clap::Args, Clone, Debug)]
pub struct EngineArgs {
    /// Where queries run.
    #[arg(long, value_enum, env = "TAPEOUT_ENGINE", default_value = "local")]
    pub engine: Engine,
    /// The Ballista scheduler (with --engine ballista).
    #[arg(long, env = "TAPEOUT_SCHEDULER", default_value = "df://localhost:50050", value_name = "df://HOST:PORT")]
    pub scheduler: String,
}

impl EngineArgs {
    /// The engine these flags choose.
    pub fn engine(&self) -> tapeout_run::execute::Engine {
        match self.engine {
            Engine::Local => tapeout_run::execute::Engine::Local,
            Engine::Ballista => tapeout_run::execute::Engine::Ballista { scheduler: self.scheduler.clone() },
        }
    }

    /// Opens `location` on the chosen engine.
    pub async fn open(&self, location: &LakeLocation, opts: SessionOptions) -> anyhow::Result<LakeSession> {
        Ok(self.engine().open(location, opts).await?)
    }
}

/// Parses `--lake` (a path, `file://` or `s3://` URL).
pub fn parse_lake(text: &str) -> Result<LakeLocation, String> {
    LakeLocation::parse(text).map_err(|e| e.to_string())
}

/// Refuses an object-store URL given to a command that needs a local lake, with the reason.
pub fn require_local(lake: &std::path::Path, operation: &str) -> anyhow::Result<()> {
    let text = lake.to_string_lossy();
    if text.contains("://") {
        LakeLocation::parse(&text)?.local(operation)?;
    }
    Ok(())
}
