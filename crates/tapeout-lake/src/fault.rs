//! Simulated crashes, for the model-based fault test (`tests/model.rs`).
//!
//! Every change the lake makes to disk — creating, writing, renaming, linking or removing a
//! file, creating a directory — goes through the functions here, and each is one *step*. A test
//! [`arm`]s a countdown; the step it reaches is the crash: that step does nothing (a write
//! writes half its buffer: a torn write) and it and every later step fail with an injected
//! I/O error, as if the process had been killed there. Nothing after the crash point reaches
//! the disk, so the cleanup code an operation runs on its way out cannot tidy up what a real
//! kill would leave. Reads are not steps: they change nothing.
//!
//! Disarmed (the default, and always outside that test) a step is one relaxed atomic load.
//! The countdown is process-wide: a test that arms it runs its operations one at a time.

use std::fs;
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

/// Steps left before the crash; negative when disarmed.
static COUNTDOWN: AtomicI64 = AtomicI64::new(-1);
/// Set once the crash step is reached; every later step fails.
static CRASHED: AtomicBool = AtomicBool::new(false);

/// Crashes at the `n`-th step from now (1: the next one).
pub fn arm(n: u64) {
    CRASHED.store(false, Ordering::SeqCst);
    COUNTDOWN.store(n.max(1) as i64, Ordering::SeqCst);
}

/// Disarms; returns whether the crash happened since [`arm`].
pub fn disarm() -> bool {
    COUNTDOWN.store(-1, Ordering::SeqCst);
    CRASHED.swap(false, Ordering::SeqCst)
}

fn injected() -> io::Error {
    io::Error::other("simulated crash (fault injection)")
}

/// One step: `Ok(true)` to go on, `Ok(false)` when this step is the crash (the caller does
/// nothing, or a torn part of it, and fails), `Err` after the crash.
fn step() -> io::Result<bool> {
    if CRASHED.load(Ordering::Relaxed) {
        return Err(injected());
    }
    if COUNTDOWN.load(Ordering::Relaxed) < 0 {
        return Ok(true);
    }
    if COUNTDOWN.fetch_sub(1, Ordering::SeqCst) == 1 {
        CRASHED.store(true, Ordering::SeqCst);
        return Ok(false);
    }
    Ok(true)
}

/// A step that does nothing at the crash.
fn whole_step() -> io::Result<()> {
    if step()? { Ok(()) } else { Err(injected()) }
}

pub(crate) fn create_dir_all(p: &Path) -> io::Result<()> {
    whole_step()?;
    fs::create_dir_all(p)
}

pub(crate) fn rename(from: &Path, to: &Path) -> io::Result<()> {
    whole_step()?;
    fs::rename(from, to)
}

pub(crate) fn hard_link(from: &Path, to: &Path) -> io::Result<()> {
    whole_step()?;
    fs::hard_link(from, to)
}

pub(crate) fn remove_file(p: &Path) -> io::Result<()> {
    whole_step()?;
    fs::remove_file(p)
}

/// Creates (truncating) a file whose every write is a step.
pub(crate) fn create(p: &Path) -> io::Result<StepFile> {
    whole_step()?;
    fs::File::create(p).map(StepFile)
}

/// Writes a whole file (each call one step; torn at the crash).
pub(crate) fn write(p: &Path, body: &[u8]) -> io::Result<()> {
    let mut f = create(p)?;
    f.write_all(body)?;
    f.sync_all()
}

/// A file whose writes are steps: at the crash a write puts half its buffer on disk.
pub struct StepFile(fs::File);

impl StepFile {
    pub(crate) fn sync_all(&self) -> io::Result<()> {
        whole_step()?;
        self.0.sync_all()
    }
}

impl Write for StepFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !step()? {
            let _ = self.0.write_all(&buf[..buf.len() / 2]);
            return Err(injected());
        }
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}
