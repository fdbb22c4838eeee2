//! Small file-system helpers whose guarantees the rest of the crate relies on.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

/// Syncs a directory so a rename or link inside it survives a power loss. Best effort: some
/// file systems refuse to open directories for sync, and a crash there loses nothing visible.
pub fn sync_dir(dir: &Path) {
    if let Ok(f) = fs::File::open(dir) {
        let _ = f.sync_all();
    }
}

/// A `Write` that hashes (BLAKE3) and counts what passes through, over a buffered file.
pub struct HashingFile {
    inner: io::BufWriter<crate::fault::StepFile>,
    hasher: blake3::Hasher,
    bytes: u64,
}

impl HashingFile {
    /// Creates (truncating) `path`.
    pub fn create(path: &Path) -> io::Result<Self> {
        Ok(HashingFile {
            inner: io::BufWriter::with_capacity(1 << 20, crate::fault::create(path)?),
            hasher: blake3::Hasher::new(),
            bytes: 0,
        })
    }

    /// Flushes and fsyncs, returning (bytes written, BLAKE3 hex).
    pub fn finish(self) -> io::Result<(u64, String)> {
        let f = self.inner.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        Ok((self.bytes, self.hasher.finalize().to_hex().to_string()))
    }
}

impl Write for HashingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// BLAKE3 of a whole file, hex.
pub fn hash_file(path: &Path) -> io::Result<String> {
    let mut h = blake3::Hasher::new();
    h.update_reader(fs::File::open(path)?)?;
    Ok(h.finalize().to_hex().to_string())
}
