//! A lake on S3-compatible object storage (`--lake s3://bucket/prefix`).
//!
//! The object layout is the local lake's (see the crate docs) under the URL's prefix, so
//! DuckDB, Spark and pyarrow read it the same way. What differs is how a commit becomes
//! visible, since object stores have no rename and no hard link:
//!
//! 1. [`RemoteLake::pull_manifest`] copies the commit log (`_manifest/*.json`, small) into a
//!    local mirror directory.
//! 2. The ordinary local [`crate::ingest()`] runs against that mirror: it parses, writes
//!    Parquet files and commits each input locally, with every local guarantee.
//! 3. [`RemoteLake::push_commits`] uploads, for each new local commit in version order, the
//!    files the commit names, and only then the commit itself, with a **conditional put**
//!    (`If-None-Match: *`, S3's `PutMode::Create`). A single PUT is atomic on S3, so a reader
//!    sees a commit whole or not at all, and a commit never names a file not yet uploaded.
//!
//! Guarantees relied on: atomic single-object PUT; list-after-write consistency (S3 has been
//! strongly consistent since 2020; MinIO and moto are); conditional create. Where a store has
//! no conditional create, two concurrent writers could both create the same version: tapeout
//! refuses to push unless the store answered the conditional put (object_store's default
//! `S3ConditionalPut::ETagMatch`).
//!
//! Failure behaviour: a crash or a lost race between uploading files and putting the commit
//! leaves uploaded files that no commit names. Readers never list them (they read only files
//! the manifest names), and file names derive from the input's hash, so the next run of the
//! same inputs overwrites them and lands each input exactly once. A concurrent writer that
//! committed the same version first makes the push stop with [`LakeError::CommitConflict`]:
//! the inputs already pushed have landed, the others land on the next run.
//!
//! Not supported on remote lakes yet: `compact`, `forget`, `check` and `mine` (results are
//! stored beside a local lake); the CLI says so.
//!
//! Credentials and endpoint come from the usual `AWS_*` environment variables
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT`,
//! `AWS_ALLOW_HTTP=true` for a plain-HTTP endpoint such as a local test server).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use crate::LakeError;
use crate::manifest::{self, MANIFEST_DIR};

/// Where a lake lives.
#[derive(Debug, Clone)]
pub enum LakeLocation {
    /// A directory on this machine.
    Local(PathBuf),
    /// A prefix of an S3-compatible bucket.
    Remote(RemoteLake),
}

impl LakeLocation {
    /// Parses `--lake`: a path, a `file://` URL or an `s3://bucket[/prefix]` URL.
    pub fn parse(text: &str) -> Result<LakeLocation, LakeError> {
        if let Some(rest) = text.strip_prefix("file://") {
            if !rest.starts_with('/') {
                return Err(LakeError::Location {
                    url: text.to_string(),
                    message: "a file:// lake URL needs an absolute path (file:///...)".into(),
                });
            }
            return Ok(LakeLocation::Local(PathBuf::from(rest)));
        }
        if text.starts_with("s3://") || text.starts_with("s3a://") {
            return RemoteLake::open(text).map(LakeLocation::Remote);
        }
        if let Some((scheme, _)) = text.split_once("://")
            && scheme.chars().all(|c| c.is_ascii_alphanumeric())
        {
            return Err(LakeError::Location {
                url: text.to_string(),
                message: format!("lakes on {scheme}:// are not supported (use a path, file:// or s3://)"),
            });
        }
        Ok(LakeLocation::Local(PathBuf::from(text)))
    }

    /// The local directory, for operations only a local lake supports.
    pub fn local(&self, operation: &str) -> Result<&Path, LakeError> {
        match self {
            LakeLocation::Local(p) => Ok(p),
            LakeLocation::Remote(r) => Err(LakeError::Location {
                url: r.url.clone(),
                message: format!("{operation} is not supported on object-store lakes yet (only ingest and sql)"),
            }),
        }
    }
}

impl std::fmt::Display for LakeLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LakeLocation::Local(p) => write!(f, "{}", p.display()),
            LakeLocation::Remote(r) => f.write_str(&r.url),
        }
    }
}

/// A lake under a prefix of an S3-compatible bucket.
#[derive(Debug, Clone)]
pub struct RemoteLake {
    /// The URL as given, without a trailing `/`.
    pub url: String,
    /// The store rooted at the lake's prefix: paths are lake-relative (`_manifest/...`).
    store: Arc<dyn ObjectStore>,
}

/// What [`RemoteLake::push_commits`] landed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pushed {
    /// Commits created on the remote lake.
    pub commits: usize,
    /// Data and quarantine files uploaded.
    pub files: usize,
    /// Bytes uploaded (files and commits).
    pub bytes: u64,
    /// Files deleted because a pushed commit removed their input.
    pub deleted: usize,
    /// Remote manifest version after the push.
    pub version: u64,
}

impl RemoteLake {
    /// Opens `s3://bucket[/prefix]` with credentials and endpoint from the environment.
    pub fn open(url: &str) -> Result<RemoteLake, LakeError> {
        let url = url.trim_end_matches('/').to_string();
        let rest = url.split_once("://").map(|(_, r)| r).unwrap_or_default();
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(LakeError::Location { url, message: "no bucket name".into() });
        }
        let s3 = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .build()
            .map_err(|source| LakeError::ObjectStore { url: url.clone(), source })?;
        let store: Arc<dyn ObjectStore> = Arc::new(s3);
        Ok(RemoteLake::with_store(&url, store, prefix))
    }

    /// A lake under `prefix` of `store` (tests use an in-memory store).
    pub fn with_store(url: &str, store: Arc<dyn ObjectStore>, prefix: &str) -> RemoteLake {
        let store: Arc<dyn ObjectStore> =
            if prefix.is_empty() { store } else { Arc::new(PrefixStore::new(store, ObjectPath::from(prefix))) };
        RemoteLake { url: url.trim_end_matches('/').to_string(), store }
    }

    /// The store rooted at the lake (read by the SQL engine through the manifest's file list).
    pub fn store(&self) -> Arc<dyn ObjectStore> {
        self.store.clone()
    }

    fn err(&self, source: object_store::Error) -> LakeError {
        LakeError::ObjectStore { url: self.url.clone(), source }
    }

    /// Copies the commit log into `into/_manifest/`; returns the newest version present.
    pub async fn pull_manifest(&self, into: &Path) -> Result<u64, LakeError> {
        let dir = into.join(MANIFEST_DIR);
        std::fs::create_dir_all(&dir).map_err(|e| LakeError::io(&dir, e))?;
        let prefix = ObjectPath::from(MANIFEST_DIR);
        let listed: Vec<_> = self.store.list(Some(&prefix)).try_collect().await.map_err(|e| self.err(e))?;
        let mut newest = 0;
        for meta in listed {
            let Some(name) = meta.location.filename() else { continue };
            let Some(version) = commit_version(name) else { continue };
            let bytes = self
                .store
                .get(&meta.location)
                .await
                .map_err(|e| self.err(e))?
                .bytes()
                .await
                .map_err(|e| self.err(e))?;
            let path = dir.join(name);
            std::fs::write(&path, &bytes).map_err(|e| LakeError::io(&path, e))?;
            newest = newest.max(version);
        }
        Ok(newest)
    }

    /// Uploads every commit of the local mirror `local` newer than `after`, in order: each
    /// commit's new files first, the commit last, created only if absent.
    pub async fn push_commits(&self, local: &Path, after: u64) -> Result<Pushed, LakeError> {
        let newest = manifest::load(local, None)?.version;
        let mut pushed = Pushed { version: after, ..Pushed::default() };
        for version in after + 1..=newest {
            let before = manifest::load(local, Some(version - 1))?;
            let path = manifest::commit_path(local, version);
            let commit = manifest::read_commit(&path)?;
            for output in commit.add.iter().flat_map(|i| &i.outputs) {
                if before.inputs.values().flat_map(|i| &i.outputs).any(|o| o.path == output.path) {
                    continue; // already on the remote lake (a re-committed owner of a shared file)
                }
                let file = local.join(&output.path);
                let bytes = std::fs::read(&file).map_err(|e| LakeError::io(&file, e))?;
                pushed.bytes += bytes.len() as u64;
                self.store
                    .put(&ObjectPath::from(output.path.as_str()), PutPayload::from(bytes))
                    .await
                    .map_err(|e| self.err(e))?;
                pushed.files += 1;
            }
            let body = std::fs::read(&path).map_err(|e| LakeError::io(&path, e))?;
            pushed.bytes += body.len() as u64;
            let key = ObjectPath::from(format!("{MANIFEST_DIR}/{version:020}.json"));
            let create = PutOptions { mode: PutMode::Create, ..PutOptions::default() };
            match self.store.put_opts(&key, PutPayload::from(body), create).await {
                Ok(_) => {}
                Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }) => {
                    return Err(LakeError::CommitConflict { version });
                }
                Err(e) => return Err(self.err(e)),
            }
            pushed.commits += 1;
            pushed.version = version;
            // Files of inputs this commit removed are no longer named: delete them (best
            // effort; a leftover is invisible to readers).
            let after_commit = manifest::load(local, Some(version))?;
            let kept: std::collections::BTreeSet<&str> = after_commit.files().map(|o| o.path.as_str()).collect();
            for old in before.files().filter(|o| !kept.contains(o.path.as_str())) {
                if self.store.delete(&ObjectPath::from(old.path.as_str())).await.is_ok() {
                    pushed.deleted += 1;
                }
            }
        }
        Ok(pushed)
    }

    /// Downloads the manifest into a temporary mirror (removed on return) and loads the
    /// snapshot at `at`, or the newest.
    pub async fn snapshot(&self, at: Option<u64>) -> Result<manifest::Snapshot, LakeError> {
        let mirror = tempfile::tempdir().map_err(|e| LakeError::io(Path::new("(temporary directory)"), e))?;
        self.pull_manifest(mirror.path()).await?;
        manifest::load(mirror.path(), at)
    }
}

/// The version of a commit file name (`<20 digits>.json`).
fn commit_version(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".json")?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.parse().ok()).flatten()
}

/// Ingests `args` into a remote lake: a local ingest into a mirror of its manifest, then a
/// push of the new commits. The summary is the local ingest's, its `lake` the URL.
pub async fn ingest(
    lake: &RemoteLake,
    args: &[String],
    opts: crate::IngestOptions,
) -> Result<(crate::IngestSummary, Pushed), LakeError> {
    let mirror = tempfile::Builder::new()
        .prefix("tapeout-s3-mirror-")
        .tempdir()
        .map_err(|e| LakeError::io(Path::new("(temporary directory)"), e))?;
    let base = lake.pull_manifest(mirror.path()).await?;
    let mut summary = crate::ingest(mirror.path(), args, opts).await?;
    let pushed = lake.push_commits(mirror.path(), base).await?;
    summary.lake = lake.url.clone();
    summary.manifest_version = pushed.version;
    Ok((summary, pushed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse() {
        assert!(matches!(LakeLocation::parse("lake").unwrap(), LakeLocation::Local(p) if p == Path::new("lake")));
        assert!(
            matches!(LakeLocation::parse("file:///tmp/l").unwrap(), LakeLocation::Local(p) if p == Path::new("/tmp/l"))
        );
        let e = LakeLocation::parse("gs://b/p").unwrap_err().to_string();
        assert!(e.contains("gs:// are not supported"), "{e}");
        let e = LakeLocation::parse("file://rel").unwrap_err().to_string();
        assert!(e.contains("absolute path"), "{e}");
        assert_eq!(commit_version("00000000000000000012.json"), Some(12));
        assert_eq!(commit_version(".00000000000000000012.1.json.tmp"), None);
    }
}
