//! `tapeout sql` as a shell: scripts stop at the first failing statement (or go on with
//! `--continue-on-error`) and exit 1, an unterminated last statement is an error, `-c`, NULL,
//! `--maxrows` and its footer, backslash commands, and Ctrl-C cancelling a running query in
//! the interactive shell (driven through a pseudo-terminal by python3's `pty` module).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use crate::common::{bin, repo, temp_lake};

/// A lake holding the sample BurstGPT trace (36 requests).
struct Lake {
    dir: tempfile::TempDir,
    path: PathBuf,
}

impl Lake {
    fn new() -> Lake {
        let (dir, path) = temp_lake();
        let csv = repo().join("sample-traces/requests/BurstGPT_1.csv");
        let o = bin()
            .args(["ingest", "--lake"])
            .arg(&path)
            .arg(csv)
            .env_remove("TAPEOUT_LAKE")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
        Lake { dir, path }
    }

    fn path(&self) -> PathBuf {
        self.path.clone()
    }

    /// `tapeout sql --lake LAKE ARGS…` with `stdin` piped in (not a terminal: a script).
    fn sql(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = bin()
            .arg("sql")
            .arg("--lake")
            .arg(self.path())
            .args(args)
            .env_remove("TAPEOUT_LAKE")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        // A script that stops early closes its stdin: a failed write is expected then.
        let _ = input.write_all(stdin.as_bytes());
        drop(input);
        child.wait_with_output().unwrap()
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Exit code, stdout, stderr.
fn run(o: Output) -> (Option<i32>, String, String) {
    (o.status.code(), text(&o.stdout), text(&o.stderr))
}

const THREE: &str = "select 1 as first;\nselect * from no_such_table;\nselect 3 as third;\n";

#[test]
fn a_piped_script_stops_at_the_first_failing_statement() {
    let lake = Lake::new();
    let (code, out, err) = run(lake.sql(&["--format", "csv"], THREE));
    assert_eq!(code, Some(1), "{out}{err}");
    assert_eq!(out, "first\n1\n", "{err}");
    assert!(err.contains("error: statement 2 at stdin:2 (`select * from no_such_table;`): "), "{err}");
    assert!(err.contains("no_such_table"), "{err}");
}

#[test]
fn continue_on_error_runs_the_rest_and_still_exits_1() {
    let lake = Lake::new();
    let (code, out, err) = run(lake.sql(&["--format", "csv", "--continue-on-error"], THREE));
    assert_eq!(code, Some(1), "{out}{err}");
    assert_eq!(out, "first\n1\nthird\n3\n", "{err}");
    assert!(err.contains("statement 2 at stdin:2"), "{err}");
    assert!(err.contains("1 of 3 statements and commands failed"), "{err}");
    // Nothing failed: exit 0.
    let (code, out, err) = run(lake.sql(&["--format", "csv", "--continue-on-error"], "select 1 as a;\n"));
    assert_eq!((code, out.as_str()), (Some(0), "a\n1\n"), "{err}");
}

#[test]
fn a_file_script_names_the_file_and_line_of_the_failing_statement() {
    let lake = Lake::new();
    let file = lake.dir.path().join("q.sql");
    std::fs::write(
        &file,
        "-- a view, then two queries\ncreate view v as select 1 as x;\nselect x\n  from v;\n\nselect y\n  from v;\nselect 9 as never;\n",
    )
    .unwrap();
    let (code, out, err) = run(lake.sql(&["--format", "csv", "-f", file.to_str().unwrap()], ""));
    assert_eq!(code, Some(1), "{out}{err}");
    assert_eq!(out, "x\n1\n", "{err}");
    let at = format!("error: statement 3 at {}:6 (`select y`): ", file.display());
    assert!(err.contains(&at), "{err}");
    assert!(!out.contains("never"));
}

#[test]
fn an_unterminated_last_statement_is_an_error() {
    let lake = Lake::new();
    let (code, out, err) = run(lake.sql(&["--format", "csv"], "select 1 as a;\nselect 2\n  as b"));
    assert_eq!(code, Some(1), "{out}{err}");
    assert_eq!(out, "a\n1\n", "the unterminated statement did not run: {err}");
    assert!(err.contains("error: statement 2 at stdin:2 (`select 2`) is not terminated by `;`"), "{err}");
    // The same in a file, and when a string is left open.
    let file = lake.dir.path().join("open.sql");
    std::fs::write(&file, "select 1 as a;\nselect 'x;\n").unwrap();
    let (code, out, err) = run(lake.sql(&["--format", "csv", "-f", file.to_str().unwrap()], ""));
    assert_eq!((code, out.as_str()), (Some(1), "a\n1\n"), "{err}");
    assert!(err.contains(&format!("statement 2 at {}:2", file.display())), "{err}");
    assert!(err.contains("is not terminated by `;`"), "{err}");
    // Only whitespace and comments after the last `;` are fine.
    let (code, out, err) = run(lake.sql(&["--format", "csv"], "select 1 as a; -- done\n/* end */\n\n"));
    assert_eq!((code, out.as_str()), (Some(0), "a\n1\n"), "{err}");
}

#[test]
fn dash_c_and_the_positional_query_need_no_semicolon() {
    let lake = Lake::new();
    let (code, out, err) = run(lake.sql(&["--format", "csv", "-c", "select 1 as a; select 'x;y' as b"], ""));
    assert_eq!((code, out.as_str()), (Some(0), "a\n1\nb\nx;y\n"), "{err}");
    let (code, out, err) = run(lake.sql(&["--format", "csv", "select count(*) as n from requests"], ""));
    assert_eq!((code, out.as_str()), (Some(0), "n\n36\n"), "{err}");
    let (code, out, err) = run(lake.sql(&["--format", "csv", "-c", "select nope; select 2 as b"], ""));
    assert_eq!((code, out.as_str()), (Some(1), ""), "{err}");
    assert!(err.contains("error: statement 1 at line 1 (`select nope;`)"), "{err}");
    // A lone statement's error is not decorated.
    let (code, _, err) = run(lake.sql(&["-c", "select nope"], ""));
    assert_eq!(code, Some(1));
    assert!(err.starts_with("error: ") && err.contains("nope") && !err.contains("statement 1"), "{err}");
    let both = lake.sql(&["-c", "select 1", "select 2"], "");
    assert_eq!(both.status.code(), Some(1), "-c and a positional query conflict");
}

#[test]
fn null_is_shown_as_null_in_tables() {
    let lake = Lake::new();
    let (code, out, err) = run(lake.sql(&["-c", "select cast(null as int) as n, 'a' as s"], ""));
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("| n    | s |"), "{out}");
    assert!(out.contains("| NULL | a |"), "{out}");
    // csv keeps the empty field.
    let (_, out, _) = run(lake.sql(&["--format", "csv", "-c", "select cast(null as int) as n, 'a' as s"], ""));
    assert_eq!(out, "n,s\n,a\n");
}

#[test]
fn maxrows_cuts_results_and_the_footer_counts_what_was_not_shown() {
    let lake = Lake::new();
    let q = "select value from generate_series(1, 1234) order by value";
    let (code, out, err) = run(lake.sql(&["--maxrows", "3", "-c", q], ""));
    assert_eq!(code, Some(0), "{err}");
    let rows: Vec<&str> = out.lines().filter(|l| l.starts_with("| ") && !l.contains("value")).collect();
    assert_eq!(rows, ["| 1     |", "| 2     |", "| 3     |"], "{out}");
    assert!(out.ends_with("(1,234 rows, 3 shown, 1,231 not shown; --maxrows 0 shows all)\n"), "{out}");
    // Scripts print every row unless --maxrows is given; 0 means all.
    for args in [&["-c", q][..], &["--maxrows", "0", "-c", q][..]] {
        let (code, out, _) = run(lake.sql(args, ""));
        assert_eq!(code, Some(0));
        assert!(out.contains("| 1234  |") && !out.contains("not shown"), "{out}");
    }
    // csv and json: the footer goes to stderr, the output stays parseable.
    let (code, out, err) = run(lake.sql(&["--format", "csv", "--maxrows", "2", "-c", q], ""));
    assert_eq!((code, out.as_str()), (Some(0), "value\n1\n2\n"), "{err}");
    assert!(err.contains("(1,234 rows, 2 shown, 1,232 not shown"), "{err}");
    let (_, out, _) = run(lake.sql(&["--format", "csv", "-c", q], ""));
    assert_eq!(out.lines().count(), 1235);
    // The shell's \maxrows sets it for the statements that follow.
    let (code, out, err) = run(lake.sql(&[], &format!("\\maxrows 1\n{q};\n")));
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("(1,234 rows, 1 shown, 1,233 not shown"), "{out}");
}

#[test]
fn backslash_commands_work_in_scripts() {
    let lake = Lake::new();
    let script = "\\?\n\\timing\nselect 1 as a;\n\\d\n\\d requests\n\\q\nselect 2 as never;\n";
    let (code, out, err) = run(lake.sql(&["--format", "csv"], script));
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("\\timing [on|off]") && out.contains("\\maxrows [N]"), "help: {out}");
    assert!(out.contains("a\n1\n"), "{out}");
    assert!(out.contains("tables:\n") && out.contains("  requests "), "{out}");
    assert!(out.contains("  input_tokens "), "{out}");
    assert!(!out.contains("never"), "\\q stops the script: {out}");
    assert!(err.contains("Timing is on.") && err.contains("Time: "), "{err}");
    let (code, _, err) = run(lake.sql(&[], "\\bogus\nselect 1;\n"));
    assert_eq!(code, Some(1));
    assert!(err.contains("error: `\\bogus` at stdin:1: unknown command `\\bogus`; \\? lists the commands"), "{err}");
}

/// Drives the interactive shell through a pseudo-terminal: types a query that runs for minutes,
/// presses Ctrl-C (the terminal sends SIGINT), and expects the shell to say it cancelled the
/// query and to answer the next one. Also Ctrl-C while a statement is half typed drops it.
const PTY_DRIVER: &str = r#"
import os, pty, select, signal, sys, time

exe, lake, home = sys.argv[1:4]
pid, fd = pty.fork()
if pid == 0:
    os.environ["TERM"] = "xterm"
    os.environ["HOME"] = home
    os.environ.pop("TAPEOUT_LAKE", None)
    os.execv(exe, [exe, "sql", "--lake", lake])

out = b""
pos = 0

def fail(why):
    sys.stdout.write("FAIL: " + why + "\n--- transcript ---\n" + out.decode("utf-8", "replace"))
    os.kill(pid, signal.SIGKILL)
    sys.exit(1)

def read(timeout):
    global out
    r, _, _ = select.select([fd], [], [], timeout)
    if r:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            chunk = b""
        if not chunk:
            return False
        out += chunk
    return True

def expect(pat, timeout, resend=None):
    """Waits for `pat` after the last match; re-sends `resend` every 3 s meanwhile."""
    global pos
    deadline = time.time() + timeout
    last = time.time()
    while True:
        i = out.find(pat, pos)
        if i >= 0:
            pos = i + len(pat)
            return
        if time.time() > deadline:
            fail("timed out waiting for %r" % pat)
        if resend is not None and time.time() - last > 3:
            os.write(fd, resend)
            last = time.time()
        if not read(0.2):
            fail("the shell ended while waiting for %r" % pat)

expect(b"tapeout> ", 120)
os.write(fd, b"select sum(value) from generate_series(1, 1000000000000);\r")
time.sleep(1.5)
start = time.time()
os.write(fd, b"\x03")
expect(b"cancelled (Ctrl-C)", 30, resend=b"\x03")
took = time.time() - start
expect(b"tapeout> ", 30)
os.write(fd, b"select 1 as half_typed\r")
expect(b"..> ", 30)
os.write(fd, b"\x03")
time.sleep(0.5)
os.write(fd, b"select 42 as answer;\r")
expect(b"| answer |", 60)
expect(b"| 42     |", 10)
expect(b"tapeout> ", 30)
os.write(fd, b"\\q\r")
deadline = time.time() + 30
while read(0.2):
    if time.time() > deadline:
        fail("the shell did not exit on \\q")
_, status = os.waitpid(pid, 0)
sys.stdout.write("exit=%d cancel_seconds=%.1f\n--- transcript ---\n" % (os.waitstatus_to_exitcode(status), took))
sys.stdout.write(out.decode("utf-8", "replace"))
"#;

#[test]
fn ctrl_c_cancels_the_running_query_and_the_shell_goes_on() {
    let has_pty = Command::new("python3").args(["-c", "import pty"]).output().is_ok_and(|o| o.status.success());
    if !has_pty {
        eprintln!("skipped: python3 with the pty module is needed to drive the shell through a terminal");
        return;
    }
    let lake = Lake::new();
    let driver = lake.dir.path().join("pty_driver.py");
    std::fs::write(&driver, PTY_DRIVER).unwrap();
    let o = Command::new("python3")
        .arg(&driver)
        .arg(env!("CARGO_BIN_EXE_tapeout"))
        .arg(lake.path())
        .arg(lake.dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let (code, out, err) = run(o);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.starts_with("exit=0 "), "{out}");
    let took: f64 = out.split("cancel_seconds=").nth(1).unwrap().split_whitespace().next().unwrap().parse().unwrap();
    assert!(took < 15.0, "cancelling took {took} s:\n{out}");
    // The half-typed statement was dropped, not glued to the next one.
    assert!(!out.contains("half_typed |"), "{out}");
    assert!(!out.contains("error"), "{out}");
}
