//! The tapeout lake: a directory of hive-partitioned, zstd-compressed Parquet files named by
//! an append-only manifest, written exactly once per input.
//!
//! A tour:
//! - [`ingest::ingest`] resolves inputs ([`source`]), parses them on worker tasks with the
//!   sans-I/O parsers of `tapeout-formats`, writes sorted Parquet per partition
//!   ([`writer::TableWriter`]) and commits each input to the [`manifest`].
//! - [`manifest`] is the source of truth: a file is part of the lake only once a commit names
//!   it. [`manifest::load`] gives the [`manifest::Snapshot`] readers pin.
//! - [`lock::LakeLock`] serializes writers; [`repair`] removes what an interrupted one left
//!   and checks the lake; [`compact`] merges small files (files then shared by several inputs).
//!
//! - [`remote`] keeps a lake on S3-compatible object storage: an ingest runs against a local
//!   mirror of the manifest, then uploads the new files and, last, each commit with a
//!   conditional put ([`LakeLocation`] tells a local lake from an `s3://` one).
//!
//! Layout:
//! ```text
//! LAKE/requests/source=<format>/date=<YYYY-MM-DD>/part-<input hash>-<n>.parquet
//! LAKE/_quarantine/table_name=<table>/part-<input hash>-<n>.parquet
//! LAKE/_manifest/<version, 20 digits>.json   one commit each
//! LAKE/_manifest/lock                          writers' advisory lock
//! ```

pub mod compact;
pub mod fsutil;
pub mod ingest;
pub mod kineto;
pub mod lock;
pub mod manifest;
pub mod memory;
pub mod remote;
pub mod repair;
pub mod source;
pub mod writer;

use std::path::{Path, PathBuf};

pub use ingest::{IngestOptions, IngestSummary, InputReport, InputStatus, ProgressSink, ingest};
pub use manifest::{Snapshot, load as load_snapshot};
pub use remote::{LakeLocation, RemoteLake};

/// Errors of lake operations; each names the file concerned.
#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    /// A file-system operation failed.
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    /// A manifest commit file is unreadable or inconsistent.
    #[error("manifest {}: {message}", path.display())]
    Manifest { path: PathBuf, message: String },
    /// Another writer created the same manifest version first.
    #[error("manifest version {version} was committed by another writer")]
    CommitConflict { version: u64 },
    /// The lake is locked by another writer and waiting was not allowed.
    #[error("lake {} is locked by another tapeout process{}", lake.display(), holder.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    Locked { lake: PathBuf, holder: Option<u32> },
    /// The input is not a trace tapeout reads.
    #[error("{}: {source}", path.display())]
    Format { path: PathBuf, source: tapeout_formats::FormatError },
    /// The input cannot be used.
    #[error("{}: {message}", path.display())]
    Input { path: PathBuf, message: String },
    /// Writing Parquet failed.
    #[error("{}: parquet: {source}", path.display())]
    Parquet { path: PathBuf, source: parquet::errors::ParquetError },
    /// An Arrow kernel failed (a bug or resource exhaustion).
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// A worker task panicked or was cancelled.
    #[error("worker task failed: {0}")]
    Join(String),
    /// An object-store operation on a remote lake failed.
    #[error("{url}: {source}")]
    ObjectStore { url: String, source: object_store::Error },
    /// A lake URL tapeout cannot use.
    #[error("{url}: {message}")]
    Location { url: String, message: String },
}

impl LakeError {
    /// The message without the input's path, for places that print the path already.
    pub fn reason(&self) -> String {
        match self {
            LakeError::Format { source, .. } => source.to_string(),
            LakeError::Input { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        LakeError::Io { path: path.to_path_buf(), source }
    }
    pub(crate) fn parquet(path: &Path, source: parquet::errors::ParquetError) -> Self {
        LakeError::Parquet { path: path.to_path_buf(), source }
    }
    pub(crate) fn arrow(e: arrow::error::ArrowError) -> Self {
        LakeError::Arrow(e)
    }
    pub(crate) fn join(e: tokio::task::JoinError) -> Self {
        LakeError::Join(e.to_string())
    }
}
