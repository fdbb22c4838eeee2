//! Pipeline planning: a pipeline config read and every name in it checked before any work
//! starts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tapeout_engine::mine::{MineOptions, validate};
use tapeout_formats::SourceFormat;
use tapeout_pipelines::config::{LoadedConfig, PipelineConfig};
use tapeout_pipelines::{Pipelines, hardware, jobs, models};
use tapeout_recommend::features;
use tapeout_recommend::mined::Mined;
use tapeout_recommend::serving::Serving;

use crate::RunError;
use crate::recommendations::RecommendSettings;

/// Default pipeline, relative to the current directory.
pub const DEFAULT_PIPELINE: &str = "pipelines/default.toml";

/// A pipeline config with everything checked before any work starts.
pub struct Plan {
    /// The config, its folder and its hash.
    pub loaded: LoadedConfig,
    /// Hardware, models, features, jobs and categories the run uses.
    pub pipelines: Pipelines,
    /// The lake directory.
    pub lake: PathBuf,
    /// The report directory.
    pub report: PathBuf,
    /// Mining jobs to run: the config's selection plus every job the recommender reads.
    pub jobs: Vec<jobs::Job>,
    /// Job parameters.
    pub params: BTreeMap<String, String>,
    /// Recommendation settings.
    pub settings: RecommendSettings,
    /// Telemetry settings per source (same order as the config's sources).
    pub telemetry: Vec<tapeout_lake::ingest::TelemetrySettings>,
}

/// Reads the pipeline config at `path` and checks it.
pub fn plan(path: &Path) -> Result<Plan, RunError> {
    let loaded = PipelineConfig::load(path)?;
    let c = &loaded.config;
    let file = path.display().to_string();
    let config = |message: String| RunError::Config { file: file.clone(), message };
    let pipelines = match &c.pipelines {
        Some(p) => {
            let dir = loaded.resolve(p);
            if !dir.is_dir() {
                return Err(config(format!("`pipelines`: {} is not a directory", dir.display())));
            }
            Pipelines::dir(dir)
        }
        None => Pipelines::embedded(),
    };
    // Names: hardware, models, features, jobs and their parameters.
    let profiles = hardware::load_all(&pipelines)?;
    hardware::find(&profiles, &c.hardware).map_err(|e| config(format!("`hardware`: {e}")))?;
    let known_models = models::load_all(&pipelines)?;
    let check_model = |key: &str, id: &str| -> Result<(), RunError> {
        if known_models.iter().any(|m| m.id == id) {
            Ok(())
        } else {
            Err(config(format!(
                "`{key}`: unknown model `{id}`; known: {}",
                known_models.iter().map(|m| m.id.as_str()).collect::<Vec<_>>().join(", ")
            )))
        }
    };
    check_model("serving.model", &c.serving.model)?;
    let mut model_by_workload = BTreeMap::new();
    let mut telemetry = Vec::new();
    for (i, s) in c.sources.iter().enumerate() {
        let key = format!("source[{i}]");
        if let Some(m) = &s.model {
            check_model(&format!("{key}.model"), m)?;
            let Some(w) = &s.workload else {
                return Err(config(format!("`{key}.model` needs `{key}.workload` (the model serves that workload)")));
            };
            model_by_workload.insert(w.clone(), m.clone());
        }
        if let Some(fmt) = &s.format
            && SourceFormat::from_id(fmt).is_none()
        {
            return Err(config(format!(
                "`{key}.format`: unknown format `{fmt}`; known: {}",
                SourceFormat::ALL.map(|f| f.id()).join(", ")
            )));
        }
        let mut tel = tapeout_lake::ingest::TelemetrySettings::default();
        if let Some(tz) = &s.timezone {
            tel.utc_offset_s = tapeout_formats::time::parse_utc_offset(tz)
                .map_err(|e| config(format!("`{key}.timezone`: `{tz}`: {e}")))?;
        }
        if let Some(m) = &s.mapping {
            let mp = loaded.resolve(m);
            let text =
                std::fs::read_to_string(&mp).map_err(|e| config(format!("`{key}.mapping`: {}: {e}", mp.display())))?;
            tel.mapping = Some(
                tapeout_formats::telemetry::CsvMapping::parse(&text)
                    .map_err(|e| config(format!("`{key}.mapping`: {}: {e}", mp.display())))?,
            );
        } else if s.format.as_deref() == Some(SourceFormat::MetricCsv.id()) {
            return Err(config(format!("`{key}.format = \"metric_csv\"` needs `{key}.mapping` (a TOML mapping file)")));
        }
        telemetry.push(tel);
        let p = loaded.resolve(&s.path);
        let exists = p.exists() || glob::glob(&p.to_string_lossy()).map(|mut g| g.any(|e| e.is_ok())).unwrap_or(false);
        if !exists {
            return Err(config(format!(
                "`{key}.path`: {} does not exist (no file, directory or glob match)",
                p.display()
            )));
        }
    }
    let known_features = features::load_all(&pipelines)?;
    let feature_ids: Vec<&str> = known_features.iter().map(|f| f.id.as_str()).collect();
    for (key, id) in
        c.features.ids.iter().map(|i| ("features.ids", i)).chain(c.features.cost.keys().map(|i| ("features.cost", i)))
    {
        if !feature_ids.contains(&id.as_str()) {
            return Err(config(format!("`{key}`: unknown feature `{id}`; known: {}", feature_ids.join(", "))));
        }
    }
    let mut all_jobs = jobs::load_all(&pipelines)?;
    if !c.mining.jobs.is_empty() {
        for g in &c.mining.jobs {
            glob::Pattern::new(g).map_err(|e| config(format!("`mining.jobs`: `{g}` is not a valid glob ({e})")))?;
        }
        all_jobs.retain(|j| c.mining.jobs.iter().any(|g| glob::Pattern::new(g).is_ok_and(|p| p.matches(&j.name))));
    }
    // The recommender needs its jobs whatever the selection says.
    let needed = Mined::jobs();
    let every = jobs::load_all(&pipelines)?;
    for n in needed {
        if !all_jobs.iter().any(|j| j.name == n)
            && let Some(j) = every.iter().find(|j| j.name == n)
        {
            all_jobs.push(j.clone());
        }
    }
    let params: BTreeMap<String, String> = c
        .mining
        .params
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_string)))
        .collect();
    validate(&all_jobs, &MineOptions { params: params.clone(), force: false })
        .map_err(|e| config(format!("`mining.params`: {e}")))?;
    let mut settings = RecommendSettings::new(&c.hardware, &c.serving.model);
    settings.models = model_by_workload;
    settings.fleet_mix = c.fleet.clone();
    settings.tensor_parallel = c.serving.tensor_parallel;
    settings.serving = Serving {
        compute_efficiency: c.serving.compute_efficiency,
        memory_efficiency: c.serving.memory_efficiency,
        ..settings.serving
    };
    settings.batch = c.serving.batch;
    settings.features = c.features.ids.clone();
    settings.feature_costs = c.features.cost.clone();
    Ok(Plan {
        lake: loaded.resolve(&c.lake),
        report: loaded.resolve(&c.report),
        loaded,
        pipelines,
        jobs: all_jobs,
        params,
        settings,
        telemetry,
    })
}
