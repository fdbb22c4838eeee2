//! The lake lock: one writer at a time.
//!
//! Writers (ingest, repair, compact, forget) hold an exclusive advisory lock (`flock`) on
//! `_manifest/lock` for their whole run; the holder's pid is written into the file so a
//! waiting process can say who holds it. The OS drops the lock when the holder exits, even on
//! SIGKILL, so a crashed writer never leaves the lake locked. Readers take no lock: they read
//! a manifest version and only the files it names.

use std::fs;
use std::io::{Read, Seek, Write};
use std::path::Path;

use crate::LakeError;
use crate::manifest::MANIFEST_DIR;

/// An acquired lake lock; released on drop.
pub struct LakeLock {
    file: fs::File,
}

impl LakeLock {
    /// Takes the lock. When another process holds it: with `wait`, calls `on_wait` with the
    /// holder's pid (if known) and blocks until it is free; without, fails with
    /// [`LakeError::Locked`].
    ///
    /// First makes sure `lake` is a lake ([`crate::manifest::check_marker`]): a new or empty
    /// directory becomes one (its marker is written), a lake made before markers is upgraded,
    /// and a folder with other content is refused before anything is written into it.
    pub fn acquire(lake: &Path, wait: bool, on_wait: impl FnOnce(Option<u32>)) -> Result<LakeLock, LakeError> {
        crate::manifest::check_marker(lake, true)?;
        let dir = lake.join(MANIFEST_DIR);
        fs::create_dir_all(&dir).map_err(|e| LakeError::io(&dir, e))?;
        let path = dir.join("lock");
        let mut file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| LakeError::io(&path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                let mut s = String::new();
                let _ = file.read_to_string(&mut s);
                let holder = s.trim().parse().ok();
                if !wait {
                    return Err(LakeError::Locked { lake: lake.to_path_buf(), holder });
                }
                on_wait(holder);
                file.lock().map_err(|e| LakeError::io(&path, e))?;
            }
            Err(fs::TryLockError::Error(e)) => return Err(LakeError::io(&path, e)),
        }
        let _ = file.set_len(0);
        let _ = file.rewind();
        let _ = write!(file, "{}", std::process::id());
        let _ = file.flush();
        Ok(LakeLock { file })
    }
}

impl Drop for LakeLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}
