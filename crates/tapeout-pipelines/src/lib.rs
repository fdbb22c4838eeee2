//! The data tapeout's pipelines run on, kept as files in `pipelines/` and embedded in the binary:
//!
//! - [`Pipelines`]: where the files come from — the embedded copy of the workspace's
//!   `pipelines/` folder ([`Pipelines::embedded`]) or a folder on disk ([`Pipelines::dir`]),
//!   which then replaces the embedded copy entirely (no silent mixing).
//! - [`jobs::Job`]: one mining job, `sql/<name>.sql`, with its header (what it finds, tables,
//!   output columns) and declared parameters; [`jobs::Job::render`] substitutes `${param}`s.
//! - [`hardware::HardwareProfile`]: one accelerator, `hardware/<id>.toml`: peak FLOP/s per dtype,
//!   memory, links, each figure with its source.
//! - [`models::ModelConfig`]: one model, `models/<id>.toml`.
//!
//! - [`config::PipelineConfig`]: a pipeline (`pipelines/*.toml`): sources, lake, jobs,
//!   baseline hardware, serving assumptions, fleet mix, report folder.
//!
//! Every loader names the file and key when something is wrong ([`PipelinesError`]).

pub mod config;
pub mod hardware;
pub mod jobs;
pub mod models;

use std::path::{Path, PathBuf};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
}

/// Errors loading pipeline files.
#[derive(Debug, thiserror::Error)]
pub enum PipelinesError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{file}: {message}")]
    Toml { file: String, message: String },
    #[error("{file}, line {line}: {message}")]
    Job { file: String, line: usize, message: String },
    #[error("{file}: `{key}`: {message}")]
    Invalid { file: String, key: String, message: String },
    #[error("unknown {kind} `{name}`; known: {known}")]
    Unknown { kind: &'static str, name: String, known: String },
}

/// A pipeline file: its path relative to the pipelines folder and its text.
#[derive(Debug, Clone)]
pub struct PipelineFile {
    /// e.g. `sql/token_distribution.sql`.
    pub rel: String,
    /// Where it came from, for messages (`embedded:…` or a path on disk).
    pub origin: String,
    pub text: String,
}

impl PipelineFile {
    /// The file name without folder and extension.
    pub fn stem(&self) -> &str {
        let name = self.rel.rsplit('/').next().unwrap_or(&self.rel);
        name.rsplit_once('.').map_or(name, |(s, _)| s)
    }
}

/// Where pipeline files come from.
#[derive(Debug, Clone)]
pub enum Pipelines {
    /// The copy of `pipelines/` built into the binary.
    Embedded,
    /// A folder laid out like `pipelines/`.
    Dir(PathBuf),
}

impl Pipelines {
    pub fn embedded() -> Pipelines {
        Pipelines::Embedded
    }

    pub fn dir(path: impl Into<PathBuf>) -> Pipelines {
        Pipelines::Dir(path.into())
    }

    /// Files of one kind (`sql`, `hardware`, `models`, `features`) with extension `ext`, sorted
    /// by name.
    pub fn files(&self, kind: &str, ext: &str) -> Result<Vec<PipelineFile>, PipelinesError> {
        let mut out = Vec::new();
        match self {
            Pipelines::Embedded => {
                for (rel, text) in embedded::EMBEDDED {
                    let Some(rest) = rel.strip_prefix(kind).and_then(|r| r.strip_prefix('/')) else { continue };
                    if !rest.contains('/') && rest.ends_with(&format!(".{ext}")) {
                        out.push(PipelineFile {
                            rel: rel.to_string(),
                            origin: format!("pipelines/{rel} (embedded)"),
                            text: text.to_string(),
                        });
                    }
                }
            }
            Pipelines::Dir(root) => {
                let dir = root.join(kind);
                let entries = match std::fs::read_dir(&dir) {
                    Ok(e) => e,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
                    Err(source) => return Err(PipelinesError::Io { path: dir, source }),
                };
                for entry in entries {
                    let entry = entry.map_err(|source| PipelinesError::Io { path: dir.clone(), source })?;
                    let path = entry.path();
                    if path.is_file() && path.extension().and_then(|e| e.to_str()) == Some(ext) {
                        let text = std::fs::read_to_string(&path)
                            .map_err(|source| PipelinesError::Io { path: path.clone(), source })?;
                        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                        out.push(PipelineFile {
                            rel: format!("{kind}/{name}"),
                            origin: path.display().to_string(),
                            text,
                        });
                    }
                }
            }
        }
        out.sort_by(|a, b| a.rel.cmp(&b.rel));
        Ok(out)
    }

    /// Describes the source for messages.
    pub fn describe(&self) -> String {
        match self {
            Pipelines::Embedded => "the built-in pipelines".into(),
            Pipelines::Dir(p) => p.display().to_string(),
        }
    }

    /// The folder, when on disk.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Pipelines::Embedded => None,
            Pipelines::Dir(p) => Some(p),
        }
    }
}

fn toml_error(file: &PipelineFile, e: toml::de::Error) -> PipelinesError {
    PipelinesError::Toml { file: file.origin.clone(), message: e.to_string().trim_end().replace('\n', " ") }
}

#[cfg(test)]
mod tests;
