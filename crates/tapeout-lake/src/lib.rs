//! The tapeout lake: a directory of hive-partitioned, zstd-compressed Parquet files named by
//! an append-only manifest, written exactly once per input.
//!
//! A tour, laid out like delta-rs's `operations/` over one transaction module — operations on
//! top, each in its own module, never importing one another; everything they share is in the
//! layers under them (a test, `tests/layering.rs`, checks this):
//!
//! ```text
//! operations   ingest/ (mod, identity, lines, kineto, telemetry, land)   forget   compact   check
//!                 │            │            │            │
//! transaction  commit: leftovers of interrupted writers, publish-then-commit, release of
//!              files shared with replaced inputs
//!                 │
//! layers       manifest   writer   source   lock   fsutil   memory
//! ```
//!
//! - [`ingest()`] ([`ingest`]) resolves inputs ([`source`]), parses them on worker tasks with
//!   the sans-I/O parsers of `tapeout-formats` (request traces and line-oriented telemetry in `ingest::lines`, Kineto
//!   traces in [`ingest::kineto`]), writes sorted Parquet per partition ([`writer::TableWriter`])
//!   and commits each input ([`commit`], [`manifest`]).
//! - [`forget`] removes inputs, [`compact`] merges small files (files then shared by several
//!   inputs), [`check`] verifies the lake against its manifest and repairs what interrupted
//!   writers left. (`repair` keeps the older paths of `check`, `repair` and `forget`.)
//! - [`commit`] is the transaction layer every operation writes through: recovery from an
//!   interrupted writer, publish-then-commit, and releasing rows from shared files.
//! - [`manifest`] is the source of truth: a file is part of the lake only once a commit names
//!   it. [`manifest::load`] gives the [`manifest::Snapshot`] readers pin.
//! - [`lock::LakeLock`] serializes writers; [`memory`] caps an ingest's resident memory;
//!   [`fsutil`] holds the file-system helpers the guarantees rely on.
//!
//! - [`remote`] keeps a lake on S3-compatible object storage: an ingest runs against a local
//!   mirror of the manifest, then uploads the new files and, last, each commit with a
//!   conditional put ([`LakeLocation`] tells a local lake from an `s3://` one).
//!
//! Layout:
//! ```text
//! LAKE/_tapeout_lake.json                      the lake marker (format version)
//! LAKE/requests/source=<format>/date=<YYYY-MM-DD>/part-<input hash>-<n>.parquet
//! LAKE/kernels/workload=<workload>/part-<input hash>-<n>.parquet   (and ops, devices, ...)
//! LAKE/device_samples/source=<format>/date=<YYYY-MM-DD>/part-<input hash>-<n>.parquet
//! LAKE/_quarantine/table_name=<table>/part-<input hash>-<n>.parquet
//! LAKE/_manifest/<version, 20 digits>.json   one commit each
//! LAKE/_manifest/lock                          writers' advisory lock
//! LAKE/_manifest/latest                        the newest version committed (a hint)
//! LAKE/_tmp/                                   decompressed Kineto traces while parsed
//! ```

// Operations.
pub mod check;
pub mod compact;
pub mod forget;
pub mod ingest;
// The transaction layer and the layers under it.
pub mod commit;
pub mod fault;
pub mod fsutil;
pub mod lock;
pub mod manifest;
pub mod memory;
pub mod source;
pub mod writer;
// Lakes on object storage (wraps `ingest`).
pub mod remote;

/// The earlier home of `check`, `repair` and `forget` (and the leftover helpers), kept so
/// `tapeout_lake::repair::…` paths keep working.
pub mod repair {
    pub use crate::check::{CheckReport, Problem, ProblemKind, check, repair};
    pub use crate::commit::{Leftovers, lake_files, remove_leftovers};
    pub use crate::forget::{Forgotten, forget};
}
/// The earlier path of the Kineto ingest.
pub use ingest::kineto;

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
    /// A commit file's checksum does not match its bytes, or it is not a commit.
    #[error("manifest commit {version} ({}) is damaged: {message}", path.display())]
    DamagedCommit { path: PathBuf, version: u64, message: String },
    /// Commits or data files the pinned version needs are missing or damaged.
    #[error("{}: the lake is incomplete: {summary}. `tapeout check --lake {}` lists the damage; docs/architecture.md (\"Guarantees\") says how to recover; readers (`sql`, `mine`, `recommend`, `run`) accept --allow-partial to read what is present", lake.display(), lake.display())]
    Incomplete { lake: PathBuf, summary: String },
    /// The directory is not a tapeout lake.
    #[error("{}: not a tapeout lake: {why}", lake.display())]
    NotALake { lake: PathBuf, why: String },
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
