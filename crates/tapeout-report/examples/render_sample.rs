//! Writes the sample report as `report.html`, `report.md` and `report.json` into a folder:
//!
//! ```text
//! cargo run -p tapeout-report --example render_sample -- /tmp/report-sample
//! python3 scripts/render_report_check.py /tmp/report-sample/report.html /tmp/report-sample/report.png
//! ```

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "report-sample".into()));
    std::fs::create_dir_all(&dir)?;
    let report = tapeout_report::sample_report();
    std::fs::write(dir.join("report.html"), tapeout_report::render_html(&report))?;
    std::fs::write(dir.join("report.md"), tapeout_report::render_markdown(&report))?;
    let json = serde_json::to_string_pretty(&report).map_err(std::io::Error::other)?;
    std::fs::write(dir.join("report.json"), json + "\n")?;
    println!("wrote report.html, report.md and report.json to {}", dir.display());
    Ok(())
}
