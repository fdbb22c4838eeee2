//! Commit checksums, verified reads and the names leftover removal may delete (issue 20).

use std::path::Path;

use tapeout_lake::LakeError;
use tapeout_lake::commit::{TapeoutFile, tapeout_file};
use tapeout_lake::manifest::{self, MarkerState};

fn one_commit(lake: &Path) {
    manifest::check_marker(lake, true).unwrap();
    assert_eq!(manifest::commit(lake, 1, "ingest", vec![], vec![]).unwrap(), 1);
}

#[test]
fn commits_are_sealed_and_damage_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = tmp.path();
    one_commit(lake);
    let p = manifest::commit_path(lake, 1);
    let c = manifest::read_commit(&p).unwrap();
    assert!(c.checksum.as_deref().unwrap().starts_with("blake3:"));
    let text = std::fs::read_to_string(&p).unwrap();
    // Still valid JSON after the flip ("ingest" → "ingesu"): only the checksum tells.
    std::fs::write(&p, text.replace("\"ingest\"", "\"ingesu\"")).unwrap();
    let e = manifest::read_commit(&p).unwrap_err();
    assert!(matches!(e, LakeError::DamagedCommit { version: 1, .. }), "{e}");
    assert!(e.to_string().contains("manifest commit 1 ("), "{e}");
    assert!(e.to_string().contains(") is damaged: checksum mismatch: its bytes hash to blake3:"), "{e}");
    let r = manifest::replay(lake, None).unwrap();
    assert_eq!(r.snapshot.version, 1);
    assert_eq!(r.damage.damaged_commits.len(), 1);
    let e = manifest::load(lake, None).unwrap_err().to_string();
    assert!(e.contains("the lake is incomplete: commit 1 (_manifest/00000000000000000001.json) is damaged"), "{e}");
}

#[test]
fn commits_without_a_checksum_stay_readable() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = tmp.path();
    one_commit(lake);
    let p = manifest::commit_path(lake, 1);
    let text = std::fs::read_to_string(&p).unwrap();
    let at = text.rfind(",\n  \"checksum\"").unwrap();
    std::fs::write(&p, format!("{}\n}}", &text[..at])).unwrap();
    let c = manifest::read_commit(&p).unwrap();
    assert_eq!(c.checksum, None);
    assert_eq!(manifest::load(lake, None).unwrap().version, 1);
}

#[test]
fn versions_are_dense_and_a_gap_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = tmp.path();
    one_commit(lake);
    manifest::commit(lake, 2, "ingest", vec![], vec![]).unwrap();
    manifest::commit(lake, 3, "ingest", vec![], vec![]).unwrap();
    std::fs::remove_file(manifest::commit_path(lake, 2)).unwrap();
    let r = manifest::replay(lake, None).unwrap();
    assert_eq!((r.snapshot.version, r.damage.missing_commits.clone()), (3, vec![2]));
    assert!(!r.damage.commits_whole());
    // A version before the gap is whole.
    assert_eq!(manifest::load(lake, Some(1)).unwrap().version, 1);
    let e = manifest::open_for_read(lake, None, false).unwrap_err().to_string();
    assert!(e.contains("commit 2 (_manifest/00000000000000000002.json) is missing"), "{e}");
    let v = manifest::open_for_read(lake, None, true).unwrap();
    assert_eq!(v.damage.missing_commits, vec![2]);
}

#[test]
fn markers_are_written_once_and_foreign_folders_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = tmp.path().join("lake");
    assert_eq!(manifest::check_marker(&lake, false).unwrap(), MarkerState::Empty);
    assert!(!lake.exists(), "a reader writes nothing");
    assert_eq!(manifest::check_marker(&lake, true).unwrap(), MarkerState::Created);
    assert_eq!(manifest::check_marker(&lake, true).unwrap(), MarkerState::Marked);
    let other = tmp.path().join("other");
    std::fs::create_dir_all(other.join("notes")).unwrap();
    let e = manifest::check_marker(&other, true).unwrap_err().to_string();
    assert!(e.ends_with("not a tapeout lake: it holds notes but neither _tapeout_lake.json nor a tapeout _manifest/; tapeout reads and writes only lakes it made (use an empty or new directory)"), "{e}");
    assert_eq!(std::fs::read_dir(&other).unwrap().count(), 1);
}

#[test]
fn only_names_tapeout_writes_are_its_own() {
    assert_eq!(
        tapeout_file("requests/source=azure_llm/date=2024-06-01/part-1dcbb162af9d38c7-0000.parquet"),
        Some(TapeoutFile::Data)
    );
    assert_eq!(tapeout_file("kernels/workload=w/part-c1dcbb162af9d38c7-0012.parquet"), Some(TapeoutFile::Data));
    assert_eq!(tapeout_file("requests/x/.part-staging12x3-0000.parquet.tmp"), Some(TapeoutFile::Temp));
    assert_eq!(tapeout_file("_manifest/.00000000000000000003.77.json.tmp"), Some(TapeoutFile::Temp));
    assert_eq!(tapeout_file("_manifest/00000000000000000003.json"), Some(TapeoutFile::Manifest));
    assert_eq!(tapeout_file("_tmp/kineto-abc-12.json.tmp"), Some(TapeoutFile::Temp));
    for foreign in [
        "requests/mine.parquet",
        "requests/part-1dcbb162af9d38c7.parquet",
        "requests/part-XYZbb162af9d38c7-0000.parquet",
        "requests/notes.tmp",
        "_manifest/notes.json",
    ] {
        assert_eq!(tapeout_file(foreign), None, "{foreign}");
    }
}

/// Writers creating the same new lake at once all see a lake: one's marker appearing between
/// another's read of it and its listing of the folder is not "a folder that is not a lake".
#[test]
fn writers_creating_one_lake_at_once_all_succeed() {
    for _ in 0..50 {
        let tmp = tempfile::tempdir().unwrap();
        let lake = tmp.path().join("lake");
        let states: Vec<MarkerState> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8).map(|_| s.spawn(|| manifest::check_marker(&lake, true))).collect();
            handles.into_iter().map(|h| h.join().unwrap().unwrap()).collect()
        });
        assert!(states.iter().all(|m| matches!(m, MarkerState::Created | MarkerState::Marked)), "{states:?}");
        assert_eq!(manifest::check_marker(&lake, false).unwrap(), MarkerState::Marked);
    }
}
