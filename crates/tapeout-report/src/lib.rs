//! Renders tapeout's recommendation report for hardware architects: one self-contained HTML file
//! with inline SVG charts, and its Markdown twin.
//!
//! # The data
//!
//! Everything the report shows is in one [`model::Report`], filled by `tapeout run` /
//! `tapeout report` from the mined results and `recommendations.json` (and serializable, so a
//! stored `report.json` can be re-rendered without recomputing):
//!
//! - the header: [`title`](model::Report::title), tapeout version, pipeline config hash,
//!   generation time, lake version and the baseline [`model::HardwareSummary`] (peaks by dtype,
//!   HBM bandwidth and capacity, scale-up bandwidth);
//! - [`model::ExecutiveSummary`]: one headline per top priority, the top feature's projected fleet
//!   speedup, a confidence word and the fleet mix (share of accelerator time per workload);
//! - [`model::Recommendation`]s, best first: feature id, step, fleet speedup, time saved, time
//!   saved per unit cost and its rank, rank stability, and the saving per workload;
//! - one [`model::WorkloadSection`] per workload: a [`model::Roofline`] (roofs and
//!   [`model::RooflinePoint`]s), time by category, [`model::TokenStats`] for request logs and
//!   [`model::Communication`] for kernel traces with collectives;
//! - [`model::SensitivityRow`]s (how often each feature kept its rank under perturbed
//!   assumptions), [`model::Evidence`] (each number with the SQL job and row it came from), the
//!   method, the assumptions, and warnings shown at the top.
//!
//! # The output
//!
//! [`render_html`] returns one HTML document: inline CSS (system font stack, print styles), inline
//! SVG charts from [`svg`] and no script, font, image or URL of any kind, so it opens offline and
//! can be mailed or archived as is. Every chart is a `<figure>` with a `<figcaption>`, an
//! `<svg class="chart chart-KIND" role="img">` with a `<title>`, a legend and titled axes with
//! units. [`render_markdown`] returns the same sections as Markdown, each chart replaced by a
//! table of its data. Numbers are rounded for people by [`mod@format`] ("1.4 ms", "31%",
//! "989.5 TFLOP/s", "3.35 TB/s", "12.3k tokens"). Both renderers are pure and deterministic: the
//! same report gives byte-identical output.
//!
//! [`sample_report`] is a hand-made, realistic example (three workloads, nine features) used by the
//! tests, the `render_sample` example and `scripts/render_report_check.py`.

pub mod format;
mod html;
mod markdown;
pub mod model;
mod sample;
pub mod svg;

pub use sample::sample_report;

/// The report as one self-contained HTML document.
pub fn render_html(r: &model::Report) -> String {
    html::render(r)
}

/// The report as Markdown: the HTML report's sections, with tables in place of charts.
pub fn render_markdown(r: &model::Report) -> String {
    markdown::render(r)
}
