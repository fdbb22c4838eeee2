//! A lake on an object store (`tapeout_lake::remote`), here object_store's in-memory store
//! (conditional put as S3's): exactly-once across reruns, commits visible only after their
//! files, and a lost commit race that loses nothing. The CLI test `s3.rs` runs the same
//! against a local S3-compatible server.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::TryStreamExt;
use object_store::memory::InMemory;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use tapeout_lake::remote::{self, RemoteLake};
use tapeout_lake::{IngestOptions, InputStatus, LakeError};

fn sample(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sample-traces/requests").join(name).display().to_string()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// Data lines of a CSV sample (its records), counted from the raw text.
fn csv_records(name: &str) -> u64 {
    let text = std::fs::read_to_string(sample(name)).unwrap();
    text.lines().skip(1).filter(|l| !l.trim().is_empty()).count() as u64
}

async fn keys(store: &Arc<dyn ObjectStore>, prefix: &str) -> Vec<String> {
    let mut k: Vec<String> =
        store.list(Some(&ObjectPath::from(prefix))).map_ok(|m| m.location.to_string()).try_collect().await.unwrap();
    k.sort();
    k
}

#[test]
fn ingest_into_an_object_store_lake_lands_each_input_once() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let lake = RemoteLake::with_store("memory://bucket/lakes/a", store.clone(), "lakes/a");
    let rt = rt();
    let code = sample("AzureLLMInferenceTrace_code.csv");
    let burst = sample("BurstGPT_1.csv");
    let (summary, pushed) =
        rt.block_on(remote::ingest(&lake, &[code.clone(), burst.clone()], IngestOptions::default())).unwrap();
    let expected = csv_records("AzureLLMInferenceTrace_code.csv") + csv_records("BurstGPT_1.csv");
    assert_eq!(summary.rows + summary.quarantined, expected);
    assert_eq!(summary.lake, "memory://bucket/lakes/a");
    assert_eq!((pushed.commits, pushed.version, summary.manifest_version), (2, 2, 2));
    assert_eq!(pushed.files, summary.outputs);

    // Two commits, and every file they name is in the store under the prefix.
    let manifest = rt.block_on(keys(&store, "lakes/a/_manifest"));
    assert_eq!(
        manifest,
        ["lakes/a/_manifest/00000000000000000001.json", "lakes/a/_manifest/00000000000000000002.json"]
    );
    let snapshot = rt.block_on(lake.snapshot(None)).unwrap();
    assert_eq!(snapshot.version, 2);
    let named: Vec<String> = snapshot.files().map(|f| format!("lakes/a/{}", f.path)).collect();
    let all = rt.block_on(keys(&store, "lakes/a"));
    for n in &named {
        assert!(all.contains(n), "{n} is named by the manifest but not uploaded");
    }
    assert_eq!(all.len(), named.len() + 2, "nothing but the named files and the commits: {all:?}");
    assert_eq!(snapshot.files().map(|f| f.rows).sum::<u64>(), expected);

    // Rerun: both skipped, no commit.
    let (again, pushed) = rt.block_on(remote::ingest(&lake, &[code, burst], IngestOptions::default())).unwrap();
    assert_eq!((again.skipped, again.rows, pushed.commits, again.manifest_version), (2, 0, 0, 2));
    assert!(again.details.iter().all(|d| d.status == InputStatus::Skipped));
    assert_eq!(rt.block_on(keys(&store, "lakes/a")).len(), all.len());
}

#[test]
fn a_lost_commit_race_is_reported_and_the_rerun_lands_the_input() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let lake = RemoteLake::with_store("memory://b/l", store.clone(), "l");
    let rt = rt();
    rt.block_on(remote::ingest(&lake, &[sample("BurstGPT_1.csv")], IngestOptions::default())).unwrap();

    // Writer A mirrors version 1 and ingests locally; writer B commits version 2 meanwhile.
    let mirror: PathBuf = tempfile::tempdir().unwrap().keep();
    let base = rt.block_on(lake.pull_manifest(&mirror)).unwrap();
    assert_eq!(base, 1);
    let conv = sample("AzureLLMInferenceTrace_conv_1week.csv");
    rt.block_on(tapeout_lake::ingest(&mirror, std::slice::from_ref(&conv), IngestOptions::default())).unwrap();
    rt.block_on(remote::ingest(&lake, &[sample("AzureLLMInferenceTrace_code.csv")], IngestOptions::default())).unwrap();
    let err = rt.block_on(lake.push_commits(&mirror, base)).unwrap_err();
    assert!(matches!(err, LakeError::CommitConflict { version: 2 }), "{err}");
    // B's commit stands: version 2 is the code trace, and A's input is not in the lake.
    let snap = rt.block_on(lake.snapshot(None)).unwrap();
    assert_eq!(snap.version, 2);
    assert!(snap.inputs.values().all(|i| !i.path.ends_with("conv_1week.csv")));

    // A's rerun lands it as version 3, its rows counted once.
    let (summary, pushed) = rt.block_on(remote::ingest(&lake, &[conv], IngestOptions::default())).unwrap();
    assert_eq!((pushed.commits, pushed.version), (1, 3));
    assert_eq!(summary.rows + summary.quarantined, csv_records("AzureLLMInferenceTrace_conv_1week.csv"));
    let snap = rt.block_on(lake.snapshot(None)).unwrap();
    assert_eq!(snap.inputs.len(), 3);
    let expected = ["BurstGPT_1.csv", "AzureLLMInferenceTrace_code.csv", "AzureLLMInferenceTrace_conv_1week.csv"]
        .iter()
        .map(|n| csv_records(n))
        .sum::<u64>();
    assert_eq!(snap.files().map(|f| f.rows).sum::<u64>(), expected);
    // Every named file is readable from the store.
    for f in snap.files() {
        let bytes = rt.block_on(async { store.get(&ObjectPath::from(format!("l/{}", f.path))).await?.bytes().await });
        assert_eq!(bytes.unwrap().len() as u64, f.bytes, "{}", f.path);
    }
    std::fs::remove_dir_all(&mirror).unwrap();
}
