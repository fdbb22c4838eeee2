//! The model-based fault test (issue 20): seeded random sequences of what a nightly pipeline
//! meets — logs written, appended to, caught mid-line, truncated, rewritten, deleted; ingest,
//! forget, compact, repair; crashes at a random point of any writer; data and commit files
//! deleted, truncated or corrupted; two writers at once — applied to a real lake and to a
//! small reference model of what the lake must hold, compared after every step.
//!
//! - The model: for each source path, the records the lake holds for it (`landed`), and the
//!   path's bytes as records (`files`). Every record has a unique id, so the lake's rows are
//!   compared as a multiset of (input_tokens, output_tokens) pairs, read through the verified
//!   read path ([`open_for_read`]) and the Parquet files the snapshot names.
//! - Crashes are injected in-process ([`tapeout_lake::fault`]): the n-th disk change of the
//!   operation is the crash, and nothing after it reaches the disk. The lake must then read as
//!   the model before or after the operation (each input lands whole or not at all); the next
//!   writer removes what the crash left.
//! - Damage (a data or commit file deleted, truncated or flipped) must make every verified
//!   read fail and `check` name it, and `check --repair` must delete no data file; the test
//!   then puts the file back and goes on.
//! - With `TAPEOUT_MODEL_KILL=1`, sequences also ingest in a child process killed with SIGKILL
//!   at a random moment (the child is this test binary, see [`model_child_ingest`]).
//!
//! A divergence prints the seed and the shortest sequence that still diverges (ops removed
//! one at a time while it does). `TAPEOUT_MODEL_SEQUENCES` (default 200) and
//! `TAPEOUT_MODEL_SEED` (first seed, default 1) set the run; docs/reliability.md has the
//! long-run command.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use tapeout_lake::compact::{CompactOptions, compact};
use tapeout_lake::fault;
use tapeout_lake::manifest::{commit_path, open_for_read};
use tapeout_lake::repair::{ProblemKind, check, forget, repair};
use tapeout_lake::{IngestOptions, ingest};

/// splitmix64: small, seedable, the same on every platform.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Source files a sequence plays with.
const FILES: u8 = 3;

#[derive(Debug, Clone)]
enum Op {
    /// Creates or rewrites the file with `lines` new records (ids from `id`).
    Write {
        file: u8,
        lines: u8,
        id: u32,
    },
    /// Completes a half-written last record, then appends `lines` new ones (creates the file
    /// if it is missing).
    Append {
        file: u8,
        lines: u8,
        id: u32,
    },
    /// Appends a new record cut inside its last field (`keep` of its 3 digits), no newline.
    AppendPartial {
        file: u8,
        id: u32,
        keep: u8,
    },
    /// Keeps the header and the first `keep` (at least 1) whole records.
    Truncate {
        file: u8,
        keep: u8,
    },
    /// Deletes the source file (the lake keeps its rows).
    Delete {
        file: u8,
    },
    /// `ingest` of one file; `final_`: no settle time; `crash`: at that disk change.
    Ingest {
        file: u8,
        final_: bool,
        crash: Option<u8>,
    },
    /// Two `ingest`s of two files at once (they take turns on the lake lock).
    Concurrent {
        a: u8,
        b: u8,
    },
    /// `ingest` in a child process killed after `after_us` microseconds.
    Kill {
        file: u8,
        after_us: u32,
    },
    Forget {
        file: u8,
        crash: Option<u8>,
    },
    Compact {
        crash: Option<u8>,
    },
    Repair {
        crash: Option<u8>,
    },
    /// Deletes (`cut` false) or truncates a committed data file, checks it is caught, puts it back.
    DamageData {
        pick: u16,
        cut: bool,
    },
    /// Deletes (`flip` false) or flips a byte of a commit file, checks it is caught, puts it back.
    DamageCommit {
        pick: u16,
        flip: bool,
    },
}

fn gen_sequence(rng: &mut Rng, len: usize, kills: bool) -> Vec<Op> {
    let mut ops = Vec::with_capacity(len);
    for i in 0..len {
        let id = (i as u32 + 1) * 16;
        let file = rng.below(FILES as u64) as u8;
        let crash = (rng.below(3) == 0).then(|| 1 + rng.below(40) as u8);
        let op = match rng.below(100) {
            0..=11 => Op::Write { file, lines: 1 + rng.below(4) as u8, id },
            12..=25 => Op::Append { file, lines: rng.below(4) as u8, id },
            26..=33 => Op::AppendPartial { file, id, keep: 1 + rng.below(2) as u8 },
            34..=39 => Op::Truncate { file, keep: 1 + rng.below(4) as u8 },
            40..=42 => Op::Delete { file },
            43..=67 => Op::Ingest { file, final_: rng.below(3) == 0, crash },
            68..=72 => Op::Concurrent { a: file, b: (file + 1 + rng.below(FILES as u64 - 1) as u8) % FILES },
            73..=77 if kills => Op::Kill { file, after_us: rng.below(40_000) as u32 },
            73..=77 => Op::Ingest { file, final_: false, crash: Some(1 + rng.below(40) as u8) },
            78..=82 => Op::Forget { file, crash },
            83..=87 => Op::Compact { crash },
            88..=91 => Op::Repair { crash },
            92..=95 => Op::DamageData { pick: rng.below(1000) as u16, cut: rng.below(2) == 0 },
            _ => Op::DamageCommit { pick: rng.below(1000) as u16, flip: rng.below(2) == 0 },
        };
        ops.push(op);
    }
    ops
}

/// One record: (id, tokens); tokens always has 3 digits.
type Row = (i64, i64);

fn record(id: u32) -> Row {
    (id as i64, 100 + (id as i64 * 37) % 900)
}

fn line(r: Row) -> String {
    let t = r.0 % 86_400;
    format!("2023-11-16 {:02}:{:02}:{:02}.0000000,{},{}\n", t / 3600, t / 60 % 60, t % 60, r.0, r.1)
}

/// A source file as the model sees it.
#[derive(Debug, Clone, Default, PartialEq)]
struct Source {
    records: Vec<Row>,
    /// A half-written last record and how many digits of its tokens are written.
    partial: Option<(Row, u8)>,
}

impl Source {
    fn bytes(&self) -> String {
        let mut s = String::from("TIMESTAMP,ContextTokens,GeneratedTokens\n");
        self.records.iter().for_each(|r| s.push_str(&line(*r)));
        if let Some((r, keep)) = self.partial {
            let full = line(r);
            s.push_str(&full[..full.len() - 1 - (3 - keep as usize)]);
        }
        s
    }

    /// What an ingest lands of it: the whole records, and with `final_` the cut one as parsed.
    fn landed(&self, final_: bool) -> Vec<Row> {
        let mut rows = self.records.clone();
        if let (true, Some((r, keep))) = (final_, self.partial) {
            rows.push((r.0, r.1 / 10i64.pow(3 - keep as u32)));
        }
        rows
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
struct Model {
    files: BTreeMap<u8, Source>,
    landed: BTreeMap<u8, Vec<Row>>,
}

impl Model {
    fn rows(&self) -> BTreeMap<Row, usize> {
        let mut m = BTreeMap::new();
        for r in self.landed.values().flatten() {
            *m.entry(*r).or_default() += 1;
        }
        m
    }

    fn ingest(&mut self, file: u8, final_: bool) {
        if let Some(s) = self.files.get(&file) {
            self.landed.insert(file, s.landed(final_));
        }
    }
}

/// What the run exercised, so a run that injected no crash cannot pass unnoticed.
#[derive(Debug, Default)]
struct Stats {
    /// Operations a crash (or kill) interrupted, and of those how many left the lake as before.
    crashed: usize,
    crashed_as_before: usize,
    /// Damage caught (every verified read failed, `check` named it, repair deleted nothing).
    damage_caught: usize,
}

static STATS: std::sync::Mutex<Stats> =
    std::sync::Mutex::new(Stats { crashed: 0, crashed_as_before: 0, damage_caught: 0 });

struct World {
    dir: PathBuf,
    lake: PathBuf,
    rt: tokio::runtime::Runtime,
    model: Model,
    /// A crash may have left files behind that no writer has removed since.
    leftovers_possible: bool,
}

fn source_path(dir: &Path, file: u8) -> PathBuf {
    dir.join(format!("src/log{file}_code.csv"))
}

/// The lake's rows as a multiset, through the verified read path.
fn lake_rows(lake: &Path) -> Result<BTreeMap<Row, usize>, String> {
    let v = open_for_read(lake, None, false).map_err(|e| e.to_string())?;
    let mut out = BTreeMap::new();
    for o in v.snapshot.inputs.values().flat_map(|e| &e.outputs).filter(|o| o.table == "requests") {
        let f = std::fs::File::open(lake.join(&o.path)).map_err(|e| format!("{}: {e}", o.path))?;
        let b = ParquetRecordBatchReaderBuilder::try_new(f).map_err(|e| format!("{}: {e}", o.path))?;
        let schema = b.parquet_schema();
        let cols: Vec<usize> = ["input_tokens", "output_tokens"]
            .iter()
            .map(|c| schema.columns().iter().position(|d| d.name() == *c).expect("column"))
            .collect();
        let mask = ProjectionMask::leaves(schema, cols);
        let (start, len) = (o.row_offset.unwrap_or(0) as usize, o.rows as usize);
        let mut i = 0usize;
        for batch in b.with_projection(mask).build().map_err(|e| e.to_string())? {
            let batch = batch.map_err(|e| format!("{}: {e}", o.path))?;
            let (a, t) = (batch.column(0).as_primitive::<Int64Type>(), batch.column(1).as_primitive::<Int64Type>());
            for k in 0..batch.num_rows() {
                if (start..start + len).contains(&(i + k)) {
                    *out.entry((a.value(k), t.value(k))).or_default() += 1;
                }
            }
            i += batch.num_rows();
        }
    }
    Ok(out)
}

/// Every `*.parquet` file under the lake (relative), for "repair deletes nothing".
fn parquet_files(lake: &Path) -> Vec<String> {
    fn walk(d: &Path, root: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, root, out);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                out.push(p.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(lake, lake, &mut out);
    out.sort();
    out
}

impl World {
    fn new(dir: PathBuf) -> Self {
        std::fs::create_dir_all(dir.join("src")).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        World { lake: dir.join("lake"), dir, rt, model: Model::default(), leftovers_possible: false }
    }

    fn write_source(&self, file: u8) {
        let p = source_path(&self.dir, file);
        match self.model.files.get(&file) {
            Some(s) => std::fs::write(p, s.bytes()).unwrap(),
            None => {
                let _ = std::fs::remove_file(p);
            }
        }
    }

    fn ingest(&self, file: u8, final_: bool) {
        let opts = IngestOptions {
            jobs: 1,
            settle: (!final_).then_some(std::time::Duration::from_secs(3600)),
            ..IngestOptions::default()
        };
        let arg = source_path(&self.dir, file).display().to_string();
        let _ = self.rt.block_on(ingest(&self.lake, &[arg], opts));
    }

    /// Runs `op` against the lake with a crash armed at `crash`; returns whether it crashed.
    fn crashing(&self, crash: Option<u8>, op: impl FnOnce()) -> bool {
        if let Some(n) = crash {
            fault::arm(n as u64);
        }
        op();
        fault::disarm()
    }

    /// Applies `op`; `Err` describes a divergence.
    fn step(&mut self, op: &Op) -> Result<(), String> {
        let before = self.model.clone();
        let mut crashed = false;
        match *op {
            Op::Write { file, lines, id } => {
                let records = (0..lines as u32).map(|k| record(id + k)).collect();
                self.model.files.insert(file, Source { records, partial: None });
                self.write_source(file);
            }
            Op::Append { file, lines, id } => {
                let s = self.model.files.entry(file).or_default();
                if let Some((r, _)) = s.partial.take() {
                    s.records.push(r);
                }
                s.records.extend((0..lines as u32).map(|k| record(id + k)));
                if s.records.is_empty() {
                    s.records.push(record(id));
                }
                self.write_source(file);
            }
            Op::AppendPartial { file, id, keep } => {
                let s = self.model.files.entry(file).or_default();
                if let Some((r, _)) = s.partial.take() {
                    s.records.push(r);
                }
                if s.records.is_empty() {
                    s.records.push(record(id + 1));
                }
                s.partial = Some((record(id), keep));
                self.write_source(file);
            }
            Op::Truncate { file, keep } => {
                if let Some(s) = self.model.files.get_mut(&file) {
                    s.records.truncate((keep as usize).max(1));
                    s.partial = None;
                    self.write_source(file);
                }
            }
            Op::Delete { file } => {
                self.model.files.remove(&file);
                self.write_source(file);
            }
            Op::Ingest { file, final_, crash } => {
                crashed = self.crashing(crash, || self.ingest(file, final_));
                self.model.ingest(file, final_);
            }
            Op::Concurrent { a, b } => {
                let opts = IngestOptions { settle: Some(std::time::Duration::from_secs(3600)), ..Default::default() };
                let arg = |f| vec![source_path(&self.dir, f).display().to_string()];
                let (x, y) = (arg(a), arg(b));
                let (r1, r2) = self.rt.block_on(async {
                    tokio::join!(ingest(&self.lake, &x, opts.clone()), ingest(&self.lake, &y, opts.clone()))
                });
                if let Err(e) = r1.and(r2) {
                    return Err(format!("a concurrent ingest failed: {e}"));
                }
                self.model.ingest(a, false);
                self.model.ingest(b, false);
            }
            Op::Kill { file, after_us } => {
                let exe = std::env::current_exe().unwrap();
                let mut child = std::process::Command::new(exe)
                    .args(["--exact", "model_child_ingest", "--nocapture", "--test-threads=1"])
                    .env(
                        "TAPEOUT_MODEL_CHILD",
                        format!("{}\n{}", self.lake.display(), source_path(&self.dir, file).display()),
                    )
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .unwrap();
                std::thread::sleep(std::time::Duration::from_micros(after_us as u64));
                let _ = child.kill();
                let status = child.wait().unwrap();
                crashed = !status.success();
                self.model.ingest(file, false);
            }
            Op::Forget { file, crash } => {
                let arg = source_path(&self.dir, file).display().to_string();
                crashed = self.crashing(crash, || {
                    let _ = forget(&self.lake, &[arg], true);
                });
                self.model.landed.remove(&file);
            }
            Op::Compact { crash } => {
                let opts = CompactOptions { small_file_bytes: 1 << 20, ..CompactOptions::default() };
                crashed = self.crashing(crash, || {
                    let _ = compact(&self.lake, &opts);
                });
            }
            Op::Repair { crash } => {
                crashed = self.crashing(crash, || {
                    let _ = repair(&self.lake, true);
                });
                if !crashed && self.lake.exists() {
                    let c = check(&self.lake).map_err(|e| format!("check after repair: {e}"))?;
                    if !c.healthy() {
                        return Err(format!("not healthy after repair: {:?}", c.problems));
                    }
                }
            }
            Op::DamageData { pick, cut } => return self.damage_data(pick, cut),
            Op::DamageCommit { pick, flip } => return self.damage_commit(pick, flip),
        }
        if crashed {
            self.leftovers_possible = true;
        } else if matches!(op, Op::Ingest { .. } | Op::Concurrent { .. } | Op::Repair { .. }) {
            self.leftovers_possible = false; // a writer that ran to the end removed them first
        }
        self.compare(&before, crashed)
    }

    /// The lake must read as the model (or, after a crash, as the model before the operation,
    /// which then becomes the model), and `check` may find only what a crash leaves behind.
    fn compare(&mut self, before: &Model, crashed: bool) -> Result<(), String> {
        if crashed {
            STATS.lock().unwrap().crashed += 1;
        }
        let got = lake_rows(&self.lake).map_err(|e| format!("verified read failed: {e}"))?;
        if got != self.model.rows() {
            if crashed && got == before.rows() {
                self.model.landed = before.landed.clone();
                STATS.lock().unwrap().crashed_as_before += 1;
            } else {
                return Err(format!(
                    "lake rows differ from the model{}\n  lake:  {:?}\n  model: {:?}",
                    if crashed { " (before or after the crash)" } else { "" },
                    got,
                    self.model.rows()
                ));
            }
        }
        if self.lake.exists() {
            let c = check(&self.lake).map_err(|e| format!("check failed: {e}"))?;
            let bad: Vec<_> = c
                .problems
                .iter()
                .filter(|p| !(self.leftovers_possible && matches!(p.kind, ProblemKind::Orphan | ProblemKind::TempFile)))
                .collect();
            if !bad.is_empty() {
                return Err(format!("check found problems nothing explains: {bad:?}"));
            }
            if c.rows != got.values().sum::<usize>() as u64 + quarantine_rows(&self.lake) {
                return Err(format!("check counts {} rows, the lake reads {}", c.rows, got.values().sum::<usize>()));
            }
        }
        Ok(())
    }

    fn damage_data(&mut self, pick: u16, cut: bool) -> Result<(), String> {
        let Ok(v) = open_for_read(&self.lake, None, false) else { return Ok(()) };
        let mut files: Vec<String> = v.snapshot.files().map(|f| f.path.clone()).collect();
        files.sort();
        files.dedup();
        if files.is_empty() {
            return Ok(());
        }
        let rel = files[pick as usize % files.len()].clone();
        let path = self.lake.join(&rel);
        let saved = std::fs::read(&path).unwrap();
        if cut {
            std::fs::write(&path, &saved[..saved.len() / 2]).unwrap();
        } else {
            std::fs::remove_file(&path).unwrap();
        }
        let result =
            self.expect_damage_caught(&rel, if cut { ProblemKind::SizeMismatch } else { ProblemKind::Missing });
        std::fs::write(&path, &saved).unwrap();
        result?;
        self.compare(&self.model.clone(), false)
    }

    fn damage_commit(&mut self, pick: u16, flip: bool) -> Result<(), String> {
        let Ok(v) = open_for_read(&self.lake, None, false) else { return Ok(()) };
        let latest = v.snapshot.version;
        if latest == 0 {
            return Ok(());
        }
        let version = 1 + pick as u64 % latest;
        let hint = std::fs::read_to_string(self.lake.join("_manifest/latest")).ok().and_then(|h| h.trim().parse().ok());
        if !flip && version == latest && hint.is_none_or(|h: u64| h < latest) {
            // The documented blind spot: a crash between a commit and its `latest` hint, then the
            // newest commit deleted before any writer refreshed the hint. Nothing tells that
            // lake from one whose newest commit was never written.
            return Ok(());
        }
        let path = commit_path(&self.lake, version);
        let rel = path.strip_prefix(&self.lake).unwrap().display().to_string();
        let saved = std::fs::read(&path).unwrap();
        if flip {
            let mut bad = saved.clone();
            let i = pick as usize * 7 % bad.len();
            bad[i] ^= 0x01;
            std::fs::write(&path, &bad).unwrap();
        } else {
            std::fs::remove_file(&path).unwrap();
        }
        let kind = if flip { ProblemKind::DamagedCommit } else { ProblemKind::MissingCommit };
        let result = self.expect_damage_caught(&rel, kind);
        std::fs::write(&path, &saved).unwrap();
        result?;
        self.compare(&self.model.clone(), false)
    }

    /// With `rel` damaged: every verified read fails, `check` names it, and repair deletes no
    /// file a commit names or may have named, and does not claim to have made the lake healthy.
    fn expect_damage_caught(&self, rel: &str, kind: ProblemKind) -> Result<(), String> {
        if let Ok(rows) = lake_rows(&self.lake) {
            return Err(format!("a verified read succeeded with {rel} damaged ({kind:?}): {} rows", rows.len()));
        }
        let found = |c: &tapeout_lake::repair::CheckReport| c.problems.iter().any(|p| p.path == rel && p.kind == kind);
        match check(&self.lake) {
            Ok(c) if found(&c) => {}
            Ok(c) => return Err(format!("check did not report {rel} as {kind:?}: {:?}", c.problems)),
            Err(e) => return Err(format!("check failed instead of reporting {rel}: {e}")),
        }
        // With a commit damaged any data file may be one it named; with the commits whole,
        // uncommitted files are leftovers of a crash and may go, committed ones never.
        let commit_damaged = matches!(kind, ProblemKind::MissingCommit | ProblemKind::DamagedCommit);
        let files: Vec<String> = if commit_damaged {
            parquet_files(&self.lake)
        } else {
            let v = open_for_read(&self.lake, None, true).map_err(|e| e.to_string())?;
            v.snapshot.files().map(|f| f.path.clone()).collect()
        };
        let repaired = repair(&self.lake, true);
        let after = parquet_files(&self.lake);
        let lost: Vec<&String> = files.iter().filter(|f| *f != rel && !after.contains(f)).collect();
        if !lost.is_empty() {
            return Err(format!("repair deleted {lost:?} while {rel} was damaged ({kind:?})"));
        }
        if let Ok((_, c)) = repaired
            && c.healthy()
        {
            return Err(format!("repair reported a healthy lake with {rel} damaged"));
        }
        STATS.lock().unwrap().damage_caught += 1;
        Ok(())
    }
}

/// Rows of the quarantine table the snapshot names (check counts them too).
fn quarantine_rows(lake: &Path) -> u64 {
    let Ok(v) = open_for_read(lake, None, false) else { return 0 };
    v.snapshot.inputs.values().flat_map(|e| &e.outputs).filter(|o| o.table == "quarantine").map(|o| o.rows).sum()
}

/// Runs `ops` in a fresh directory; the index of the first divergent op and why.
fn run_sequence(ops: &[Op]) -> Result<(), (usize, String)> {
    let tmp = tempfile::tempdir().unwrap();
    let mut w = World::new(tmp.path().to_path_buf());
    for (i, op) in ops.iter().enumerate() {
        let t = std::time::Instant::now();
        w.step(op).map_err(|e| (i, e))?;
        if std::env::var("MODEL_PROFILE").is_ok() && t.elapsed().as_millis() > 50 {
            eprintln!("slow {:?}: {op:?}", t.elapsed());
        }
    }
    Ok(())
}

/// The shortest sequence found that still diverges: ops removed one at a time while it does.
fn shrink(mut ops: Vec<Op>) -> (Vec<Op>, String) {
    let (last, mut why) = run_sequence(&ops).expect_err("diverges");
    ops.truncate(last + 1);
    loop {
        let mut progress = false;
        let mut i = 0;
        while i < ops.len() {
            let mut shorter = ops.clone();
            shorter.remove(i);
            if let Err((last, w)) = run_sequence(&shorter) {
                shorter.truncate(last + 1);
                ops = shorter;
                why = w;
                progress = true;
            } else {
                i += 1;
            }
        }
        if !progress {
            return (ops, why);
        }
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[test]
fn random_sequences_never_diverge_from_the_model() {
    let sequences = env_u64("TAPEOUT_MODEL_SEQUENCES", 200);
    let first = env_u64("TAPEOUT_MODEL_SEED", 1);
    let kills = std::env::var("TAPEOUT_MODEL_KILL").is_ok_and(|v| v == "1");
    let len = env_u64("TAPEOUT_MODEL_OPS", 30) as usize;
    let started = std::time::Instant::now();
    let mut ops_run = 0;
    for seed in first..first + sequences {
        let ops = gen_sequence(&mut Rng(seed), len, kills);
        ops_run += ops.len();
        if let Err((at, why)) = run_sequence(&ops) {
            let (short, short_why) = shrink(ops.clone());
            panic!(
                "seed {seed}: diverged at op {at} of {}: {why}\nshortest sequence ({} ops), diverging with: {short_why}\n{}",
                ops.len(),
                short.len(),
                short.iter().enumerate().map(|(i, o)| format!("  {i:3}: {o:?}")).collect::<Vec<_>>().join("\n")
            );
        }
    }
    let st = STATS.lock().unwrap();
    eprintln!(
        "{sequences} sequences (seeds {first}..{}), {ops_run} ops, kills {kills}: 0 divergences in {:.1} s; {} \
         operations interrupted ({} left the lake as before), {} damages caught",
        first + sequences - 1,
        started.elapsed().as_secs_f64(),
        st.crashed,
        st.crashed_as_before,
        st.damage_caught
    );
    // A run that interrupted nothing or caught no damage tested less than it claims.
    if sequences >= 50 {
        assert!(st.crashed > sequences as usize / 2 && st.crashed_as_before > 0, "{st:?}");
        assert!(st.damage_caught > sequences as usize / 4, "{st:?}");
    }
}

/// Not a test on its own: the child process of [`Op::Kill`] (does nothing unless
/// `TAPEOUT_MODEL_CHILD` names a lake and an input).
#[test]
fn model_child_ingest() {
    let Ok(spec) = std::env::var("TAPEOUT_MODEL_CHILD") else { return };
    let (lake, input) = spec.split_once('\n').unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let opts = IngestOptions { settle: Some(std::time::Duration::from_secs(3600)), ..IngestOptions::default() };
    let _ = rt.block_on(ingest(Path::new(lake), &[input.to_string()], opts));
}
