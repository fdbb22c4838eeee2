//! The ingest memory cap (`tapeout ingest --memory-limit`).
//!
//! Ingest's memory is bounded by design (a few parse chunks in flight, bounded writer buffers, a
//! memory-mapped Kineto document whose pages are released as the parser advances), but a Kineto
//! trace's linking state grows with its CPU ops. The cap makes the bound a promise: the
//! pipeline sizes its chunks and parallelism from it ([`MemoryCap::size`]), and checks the
//! process's resident memory (`/proc/self/statm`, 4 KiB pages) after every parsed chunk of a
//! request trace and every few thousand events of a Kineto trace. An input that goes over is
//! stopped with an error naming the limit and where it was reached, and is not committed
//! (exactly as any rejected input: nothing of it lands, the other inputs go on). Resident
//! memory is the whole process's, so inputs ingested at once share the cap.

use serde::Serialize;

/// A cap on the ingest process's resident memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MemoryCap {
    /// Bytes.
    pub limit_bytes: u64,
}

/// Page size `/proc/self/statm` counts in (4 KiB on x86-64 and most arm64 Linux kernels).
const PAGE: u64 = 4096;

/// Resident memory of this process, when the platform tells (Linux).
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * PAGE)
}

impl MemoryCap {
    /// `Err` with a message for people when the process is over the cap; `at` says where.
    pub fn check(&self, at: impl FnOnce() -> String) -> Result<(), String> {
        match resident_bytes() {
            Some(rss) if rss > self.limit_bytes => Err(format!(
                "memory limit exceeded: {} MiB resident, over --memory-limit {} MiB ({}); nothing of this input was committed",
                rss >> 20,
                self.limit_bytes >> 20,
                at()
            )),
            _ => Ok(()),
        }
    }

    /// (inputs at once, parse chunks at once, chunk bytes) that fit the cap: each chunk in
    /// flight costs about 4× its size (raw text, parsed columns, the batch being written), and
    /// every input its writer buffers (up to 64 MiB).
    pub fn size(&self, jobs: usize, parse_threads: usize, chunk_bytes: usize) -> (usize, usize, usize) {
        let limit = self.limit_bytes as usize;
        let chunk = chunk_bytes.min(limit / 64).max(64 << 10);
        let threads = parse_threads.min(limit / (16 * chunk)).max(1);
        let jobs = if limit < (1 << 30) { 1 } else { jobs };
        (jobs, threads, chunk)
    }
}
