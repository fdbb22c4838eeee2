//! `tapeout project`: every workload of a mined lake taken to another hardware profile
//! ([`tapeout_recommend::project`]): kernel traces from the device they were traced on, request
//! logs through the serving model from the baseline (`--from`).

use serde::Serialize;
use tapeout_engine::LakeSession;
use tapeout_pipelines::{Pipelines, hardware};
use tapeout_recommend::machine::Machine;
use tapeout_recommend::project::{WorkloadProjection, project_measured, project_requests};
use tapeout_recommend::rank::Workload;

use crate::RunError;
use crate::recommendations::{RecommendSettings, build};

/// What `tapeout project --json` prints.
#[derive(Debug, Clone, Serialize)]
pub struct Projection {
    pub lake_version: u64,
    /// Target hardware profile id.
    pub to: String,
    /// Baseline of the request workloads, and of kernel traces whose device matches no profile
    /// when `--from` named one.
    pub from: String,
    pub workloads: Vec<WorkloadProjection>,
    pub warnings: Vec<String>,
}

/// Projects every workload of the lake onto profile `to`. `from_given`: whether the baseline
/// (`settings.hardware`) was named by the user (`--from`); without it, a kernel trace whose
/// device matches no profile is refused.
pub async fn project(
    session: &LakeSession,
    pipelines: &Pipelines,
    settings: &RecommendSettings,
    to: &str,
    from_given: bool,
) -> Result<Projection, RunError> {
    let profiles = hardware::load_all(pipelines)?;
    let target = hardware::find(&profiles, to)
        .map_err(|e| RunError::Settings(format!("--to {to}: {e}")))
        .and_then(|p| Machine::from_profile(p).map_err(|e| RunError::Settings(format!("--to {to}: {e}"))))?;
    let base = hardware::find(&profiles, &settings.hardware)
        .map_err(|e| RunError::Settings(format!("--from {}: {e}", settings.hardware)))
        .and_then(|p| {
            Machine::from_profile(p).map_err(|e| RunError::Settings(format!("--from {}: {e}", settings.hardware)))
        })?;
    let built = build(session, pipelines, settings).await?;
    let mut workloads = Vec::new();
    for w in &built.workloads {
        match w {
            Workload::Kernels { name, measured } => {
                if measured.coverage.unknown_device && !from_given {
                    return Err(RunError::Settings(format!(
                        "workload `{name}`: its device matches no hardware profile, so there is nothing to project \
                         from; name the device it ran on with --from HARDWARE (see `tapeout recommend --list hardware`)"
                    )));
                }
                workloads.push(project_measured(measured, &target));
            }
            Workload::Requests { name, serving, .. } => {
                workloads.push(project_requests(name, serving, &base, &target));
            }
        }
    }
    Ok(Projection {
        lake_version: built.recommendations.lake_version,
        to: target.id.clone(),
        from: base.id.clone(),
        workloads,
        warnings: built.recommendations.warnings.clone(),
    })
}
