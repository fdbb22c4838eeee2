//! A read-only object store that shows only the files one manifest version names.
//!
//! DataFusion's listing tables discover files by listing directories. Over the raw lake they
//! would also find files an ingest has published but not committed yet, or one committed after
//! the query started. This store wraps the local file system and filters every listing down to
//! the pinned [`Snapshot`]'s files, so a query reads exactly one manifest version.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path as FsPath;
use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, PutMultipartOptions,
    PutOptions, PutPayload, PutResult, Result,
};
use tapeout_lake::Snapshot;

/// The pinned, read-only view of a lake.
#[derive(Debug)]
pub struct SnapshotStore {
    inner: LocalFileSystem,
    files: Arc<BTreeSet<String>>,
    version: u64,
}

impl SnapshotStore {
    /// A view of `lake` at `snapshot`.
    pub fn new(lake: &FsPath, snapshot: &Snapshot) -> Result<Self> {
        Ok(SnapshotStore {
            inner: LocalFileSystem::new_with_prefix(lake)?,
            files: Arc::new(snapshot.files().map(|f| f.path.clone()).collect()),
            version: snapshot.version,
        })
    }

    fn has_files_under(&self, prefix: &Path) -> bool {
        let p = format!("{}/", prefix.as_ref());
        self.files.range(p.clone()..).next().is_some_and(|f| f.starts_with(&p))
    }

    fn read_only() -> object_store::Error {
        object_store::Error::NotSupported { source: "the lake snapshot is read-only".into() }
    }
}

impl fmt::Display for SnapshotStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SnapshotStore(version {}, {} files)", self.version, self.files.len())
    }
}

#[async_trait]
impl ObjectStore for SnapshotStore {
    async fn put_opts(&self, _: &Path, _: PutPayload, _: PutOptions) -> Result<PutResult> {
        Err(Self::read_only())
    }

    async fn put_multipart_opts(&self, _: &Path, _: PutMultipartOptions) -> Result<Box<dyn MultipartUpload>> {
        Err(Self::read_only())
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[std::ops::Range<u64>]) -> Result<Vec<bytes::Bytes>> {
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(&self, locations: BoxStream<'static, Result<Path>>) -> BoxStream<'static, Result<Path>> {
        locations.map(|_| Err(Self::read_only())).boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        let files = self.files.clone();
        self.inner
            .list(prefix)
            .filter(move |m| futures::future::ready(m.as_ref().map_or(true, |m| files.contains(m.location.as_ref()))))
            .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        let mut r = self.inner.list_with_delimiter(prefix).await?;
        r.objects.retain(|m| self.files.contains(m.location.as_ref()));
        r.common_prefixes.retain(|p| self.has_files_under(p));
        Ok(r)
    }

    async fn copy_opts(&self, _: &Path, _: &Path, _: CopyOptions) -> Result<()> {
        Err(Self::read_only())
    }
}
