//! Upkeep: removing what an interrupted writer left, and checking the lake against its manifest.
//!
//! Leftovers are (a) temporary files (`*.tmp`) and (b) published `*.parquet` files that no
//! manifest version names (a writer died between rename and commit). Both are removed only by
//! a process holding the lake lock, so an ingest in progress is never disturbed. The directories
//! of tapeout's tables are tapeout's own: foreign Parquet files placed there count as leftovers.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::LakeError;
use crate::manifest::{MANIFEST_DIR, Snapshot};

/// What [`remove_leftovers`] removed.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Leftovers {
    /// Temporary files removed.
    pub temp_files: Vec<String>,
    /// Published but uncommitted data files removed.
    pub orphans: Vec<String>,
}

/// Every file under the lake's table directories and manifest directory, relative paths.
pub fn lake_files(lake: &Path) -> Result<Vec<String>, LakeError> {
    let mut out = Vec::new();
    let mut roots: Vec<PathBuf> = tapeout_schema::registry().tables().iter().map(|t| lake.join(&t.location)).collect();
    roots.push(lake.join(MANIFEST_DIR));
    for root in roots {
        walk(&root, lake, &mut out)?;
    }
    out.sort();
    Ok(out)
}

fn walk(dir: &Path, lake: &Path, out: &mut Vec<String>) -> Result<(), LakeError> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(LakeError::io(dir, e)),
    };
    for e in rd {
        let e = e.map_err(|e| LakeError::io(dir, e))?;
        let p = e.path();
        let ft = e.file_type().map_err(|e| LakeError::io(&p, e))?;
        if ft.is_dir() {
            walk(&p, lake, out)?;
        } else if let Ok(rel) = p.strip_prefix(lake) {
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
    Ok(())
}

/// Removes temporary files and uncommitted data files. Call only while holding the lake lock.
pub fn remove_leftovers(lake: &Path, snapshot: &Snapshot) -> Result<Leftovers, LakeError> {
    let committed: HashSet<&str> = snapshot.files().map(|f| f.path.as_str()).collect();
    let mut report = Leftovers::default();
    for rel in lake_files(lake)? {
        let is_tmp = rel.ends_with(".tmp");
        let is_orphan = rel.ends_with(".parquet") && !committed.contains(rel.as_str());
        if is_tmp || is_orphan {
            let p = lake.join(&rel);
            fs::remove_file(&p).map_err(|e| LakeError::io(&p, e))?;
            tracing::info!(file = %rel, "removed leftover of an interrupted run");
            if is_tmp { report.temp_files.push(rel) } else { report.orphans.push(rel) }
        }
    }
    Ok(report)
}
