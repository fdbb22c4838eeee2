//! A read-only object store that shows only the files one manifest version names, and the
//! object-store registry that hands it to DataFusion (and to Ballista's scheduler and
//! executors, which see only URLs).
//!
//! DataFusion's listing tables discover files by listing directories. Over the raw lake they
//! would also find files an ingest has published but not committed yet, or one committed after
//! the query started. [`SnapshotStore`] filters every listing down to one manifest version's
//! files, so a query reads exactly one version.
//!
//! A local lake's tables are registered under `tapeout-lake://v<version>/<absolute lake
//! path>/<table>/`. The URL alone says what to show: [`LakeObjectStoreRegistry`] answers
//! `tapeout-lake://v<N>` with a store over the local file system that, when asked to list a
//! prefix, finds the lake (the nearest ancestor holding `_manifest/`) and shows the files of its
//! version `N`. A process that only reads files by name (a Ballista executor) never loads a
//! manifest; one that plans (the client, a Ballista scheduler) loads it once per lake.
//! An object-store lake is registered explicitly under [`REMOTE_LAKE_URL`], its file list
//! fixed at open.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use datafusion::execution::object_store::{DefaultObjectStoreRegistry, ObjectStoreRegistry};
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, PutMultipartOptions,
    PutOptions, PutPayload, PutResult, Result,
};
use tapeout_lake::Snapshot;
use url::Url;

/// URL scheme of lake snapshots.
pub const LAKE_SCHEME: &str = "tapeout-lake";
/// Where an object-store lake's snapshot is registered.
pub const REMOTE_LAKE_URL: &str = "tapeout-lake://remote";

/// The table URL prefix of a local lake at `version` (ends with `/`).
pub fn local_lake_url(lake: &std::path::Path, version: u64) -> String {
    let path = lake.to_string_lossy();
    format!("{LAKE_SCHEME}://v{version}/{}/", path.trim_start_matches('/').trim_end_matches('/'))
}

/// Committed files, each with its recorded size: a listed file is shown only when both match,
/// so a snapshot read with `--allow-partial` reads only the files present as committed.
type Files = Arc<BTreeMap<String, u64>>;

/// Which files a [`SnapshotStore`] shows.
#[derive(Debug)]
enum FileSet {
    /// Paths relative to the inner store's root.
    Fixed(Files),
    /// Version `version` of whichever local lake a listed path lies in; paths absolute
    /// (without the leading `/`), one set per lake root, loaded on first listing.
    LocalVersion { version: u64, lakes: Mutex<HashMap<String, Files>> },
}

/// The pinned, read-only view of a lake.
#[derive(Debug)]
pub struct SnapshotStore {
    inner: Arc<dyn ObjectStore>,
    files: FileSet,
}

impl SnapshotStore {
    /// A view of the lake rooted at `inner` (an object-store lake's prefix) at `snapshot`.
    pub fn fixed(inner: Arc<dyn ObjectStore>, snapshot: &Snapshot) -> Self {
        SnapshotStore {
            inner,
            files: FileSet::Fixed(Arc::new(snapshot.files().map(|f| (f.path.clone(), f.bytes)).collect())),
        }
    }

    /// A view of version `version` of every local lake (see the module docs).
    pub fn local_version(version: u64) -> Self {
        SnapshotStore {
            inner: Arc::new(LocalFileSystem::new()),
            files: FileSet::LocalVersion { version, lakes: Mutex::new(HashMap::new()) },
        }
    }

    /// The files shown under `prefix`.
    fn files_for(&self, prefix: Option<&Path>) -> Result<Files> {
        let (version, lakes) = match &self.files {
            FileSet::Fixed(f) => return Ok(f.clone()),
            FileSet::LocalVersion { version, lakes } => (*version, lakes),
        };
        let listed = PathBuf::from(format!("/{}", prefix.map(|p| p.as_ref()).unwrap_or_default()));
        let Some(root) = listed.ancestors().find(|a| a.join(tapeout_lake::manifest::MANIFEST_DIR).is_dir()) else {
            return Ok(Arc::default()); // not inside a lake: nothing is committed there
        };
        let key = root.to_string_lossy().trim_start_matches('/').to_string();
        if let Some(set) = lakes.lock().expect("not poisoned").get(&key) {
            return Ok(set.clone());
        }
        // The session that planned over this URL verified the snapshot (and refused damage
        // unless it allowed a partial read): here the intact commits are replayed as they are.
        let snapshot = tapeout_lake::manifest::replay(root, Some(version))
            .map_err(|e| object_store::Error::Generic { store: "tapeout-lake", source: Box::new(e) })?
            .snapshot;
        let set: Files = Arc::new(
            snapshot
                .files()
                .map(|f| (if key.is_empty() { f.path.clone() } else { format!("{key}/{}", f.path) }, f.bytes))
                .collect(),
        );
        lakes.lock().expect("not poisoned").insert(key, set.clone());
        Ok(set)
    }

    fn read_only() -> object_store::Error {
        object_store::Error::NotSupported { source: "the lake snapshot is read-only".into() }
    }
}

fn has_files_under(files: &BTreeMap<String, u64>, prefix: &Path) -> bool {
    let p = format!("{}/", prefix.as_ref());
    files.range(p.clone()..).next().is_some_and(|f| f.0.starts_with(&p))
}

/// Whether a listed object is a committed file with its recorded size.
fn shown(files: &BTreeMap<String, u64>, m: &ObjectMeta) -> bool {
    files.get(m.location.as_ref()) == Some(&m.size)
}

impl fmt::Display for SnapshotStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.files {
            FileSet::Fixed(files) => write!(f, "SnapshotStore({} files of {})", files.len(), self.inner),
            FileSet::LocalVersion { version, .. } => write!(f, "SnapshotStore(local lakes at version {version})"),
        }
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
        let files = match self.files_for(prefix) {
            Ok(f) => f,
            Err(e) => return futures::stream::once(async move { Err(e) }).boxed(),
        };
        self.inner
            .list(prefix)
            .filter(move |m| futures::future::ready(m.as_ref().map_or(true, |m| shown(&files, m))))
            .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        let files = self.files_for(prefix)?;
        let mut r = self.inner.list_with_delimiter(prefix).await?;
        r.objects.retain(|m| shown(&files, m));
        r.common_prefixes.retain(|p| has_files_under(&files, p));
        Ok(r)
    }

    async fn copy_opts(&self, _: &Path, _: &Path, _: CopyOptions) -> Result<()> {
        Err(Self::read_only())
    }
}

/// DataFusion's default registry, plus `tapeout-lake://v<N>` answered on demand with
/// [`SnapshotStore::local_version`]. Every process that plans or runs tapeout queries (the
/// local engine, a Ballista scheduler, a Ballista executor) uses it.
#[derive(Debug, Default)]
pub struct LakeObjectStoreRegistry {
    inner: DefaultObjectStoreRegistry,
    versions: Mutex<HashMap<u64, Arc<dyn ObjectStore>>>,
}

impl LakeObjectStoreRegistry {
    pub fn new() -> Self {
        Self::default()
    }
}

/// `v<N>` → N.
fn version_host(url: &Url) -> Option<u64> {
    url.host_str()?.strip_prefix('v')?.parse().ok()
}

impl ObjectStoreRegistry for LakeObjectStoreRegistry {
    fn register_store(&self, url: &Url, store: Arc<dyn ObjectStore>) -> Option<Arc<dyn ObjectStore>> {
        self.inner.register_store(url, store)
    }

    fn deregister_store(&self, url: &Url) -> datafusion::error::Result<Arc<dyn ObjectStore>> {
        self.inner.deregister_store(url)
    }

    fn get_store(&self, url: &Url) -> datafusion::error::Result<Arc<dyn ObjectStore>> {
        if url.scheme() == LAKE_SCHEME
            && let Some(version) = version_host(url)
        {
            let mut versions = self.versions.lock().expect("not poisoned");
            let store = versions.entry(version).or_insert_with(|| Arc::new(SnapshotStore::local_version(version)));
            return Ok(store.clone());
        }
        self.inner.get_store(url)
    }
}
