//! Helpers shared by the test modules: running the `tapeout` binary and reading what it printed,
//! the repository's sample traces, the real public traces, temporary lakes, free loopback ports
//! and child processes that must not outlive a test.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};

use tempfile::TempDir;

/// The `tapeout` binary under test, with this process's environment.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tapeout"))
}

/// Runs `tapeout ARGS` to its end, without `TAPEOUT_LAKE` and `TAPEOUT_PIPELINES` in its
/// environment (each test names its lake and pipelines itself).
pub fn tapeout(args: &[&str]) -> Output {
    bin().args(args).env_remove("TAPEOUT_LAKE").env_remove("TAPEOUT_PIPELINES").output().unwrap()
}

/// `tapeout sql --lake LAKE --format csv QUERY`.
pub fn sql_csv(lake: &str, query: &str) -> Output {
    tapeout(&["sql", "--lake", lake, "--format", "csv", query])
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Standard output then standard error.
pub fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// Standard output as JSON; a test failure that shows both streams otherwise.
pub fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}{}", stdout(o), stderr(o)))
}

/// The repository's root (holding `sample-traces/` and `docs/`), as `crates/tapeout-cli/../..`.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The folder of the real public traces named by `TAPEOUT_REAL_TRACES`, or None (saying that the
/// test is skipped) when it is not set.
pub fn real_traces() -> Option<PathBuf> {
    match std::env::var_os("TAPEOUT_REAL_TRACES") {
        Some(p) => Some(PathBuf::from(p)),
        None => {
            eprintln!("skipped: TAPEOUT_REAL_TRACES is not set");
            None
        }
    }
}

/// A temporary folder and the path of a lake in it (`lake`, not created): the folder is removed
/// when the first value is dropped, so keep it (`let (_tmp, lake) = ...`) for the whole test.
pub fn temp_lake() -> (TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let lake = tmp.path().join("lake");
    (tmp, lake)
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A child process killed when the test ends, whatever happens.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
