//! Progress bars on a terminal; silent when stderr is not a tty, under CI, or with --quiet.

use std::io::IsTerminal;
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tapeout_lake::{InputReport, ProgressSink};

/// Whether bars should be drawn at all.
pub fn enabled(quiet: bool) -> bool {
    !quiet && std::io::stderr().is_terminal() && std::env::var_os("CI").is_none()
}

/// An indicatif bar fed by the lake's progress events.
pub struct IngestBar {
    bar: ProgressBar,
    inputs: std::sync::atomic::AtomicUsize,
    done: std::sync::atomic::AtomicUsize,
}

impl IngestBar {
    pub fn new(quiet: bool) -> Arc<Self> {
        let bar = ProgressBar::with_draw_target(
            Some(0),
            if enabled(quiet) { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() },
        );
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} ingest [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        Arc::new(IngestBar { bar, inputs: Default::default(), done: Default::default() })
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl ProgressSink for IngestBar {
    fn start(&self, inputs: usize, total_bytes: u64) {
        self.bar.set_length(total_bytes);
        self.inputs.store(inputs, std::sync::atomic::Ordering::Relaxed);
        self.bar.set_message(format!("0/{inputs} inputs"));
    }

    fn advance(&self, bytes: u64) {
        self.bar.inc(bytes);
    }

    fn input_done(&self, _report: &InputReport) {
        self.done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let done = self.done.load(std::sync::atomic::Ordering::Relaxed);
        self.bar.set_message(format!("{done}/{} inputs", self.inputs.load(std::sync::atomic::Ordering::Relaxed)));
    }

    fn waiting_for_lock(&self, holder: Option<u32>) {
        let who = holder.map(|p| format!(" (pid {p})")).unwrap_or_default();
        self.bar.suspend(|| eprintln!("waiting for another tapeout process{who} that is writing to this lake…"));
    }
}
