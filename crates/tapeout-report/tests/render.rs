//! Renders the sample report and checks what a reader (and CI's Chromium check) relies on.

use tapeout_report::model::{Report, Roofline, RooflinePoint};
use tapeout_report::{render_html, render_markdown, sample_report};

fn count(hay: &str, needle: &str) -> usize {
    hay.matches(needle).count()
}

/// The `<svg class="chart ...">…</svg>` bodies, with their kind.
fn charts(html: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find("<svg class=\"chart chart-") {
        let after = &rest[i + "<svg class=\"chart chart-".len()..];
        let kind = after[..after.find('"').unwrap()].to_string();
        let end = after.find("</svg>").expect("svg closed");
        out.push((kind, after[..end].to_string()));
        rest = &after[end..];
    }
    out
}

#[test]
fn html_is_self_contained() {
    let html = render_html(&sample_report());
    assert!(html.starts_with("<!DOCTYPE html>"));
    for banned in
        ["http://", "https://", "src=", "<script", "@import", "url(", "<link", "<img", "xlink:href", "//fonts"]
    {
        assert!(!html.contains(banned), "HTML contains {banned:?}");
    }
    // Only in-page anchors.
    for (i, _) in html.match_indices("href=\"") {
        let v = &html[i + 6..];
        assert!(v.starts_with('#'), "non-fragment href: {}", &v[..v.find('"').unwrap()]);
    }
    assert!(!html.contains("NaN") && !html.contains("inf\""));
}

#[test]
fn one_roofline_per_workload_with_one() {
    let mut r = sample_report();
    let html = render_html(&r);
    let with = r.workloads.iter().filter(|w| w.roofline.is_some()).count();
    assert_eq!(with, 3);
    assert_eq!(count(&html, "<svg class=\"chart chart-roofline\""), with);
    r.workloads[2].roofline = None;
    assert_eq!(count(&render_html(&r), "<svg class=\"chart chart-roofline\""), 2);
}

#[test]
fn every_chart_has_title_legend_axis_and_caption() {
    let html = render_html(&sample_report());
    let cs = charts(&html);
    let kinds: Vec<&str> = cs.iter().map(|(k, _)| k.as_str()).collect();
    for k in ["roofline", "categories", "tokens", "communication", "features", "fleet-mix"] {
        assert!(kinds.contains(&k), "no {k} chart");
    }
    for (kind, body) in &cs {
        assert!(body.contains("role=\"img\"") && body.contains("aria-label=\""), "{kind}: no role/aria-label");
        assert!(body.contains("<title>"), "{kind}: no <title>");
        assert!(body.contains("class=\"legend\""), "{kind}: no legend");
        assert!(body.contains("class=\"axis-title\""), "{kind}: no axis title");
    }
    assert_eq!(count(&html, "<figure"), cs.len());
    assert_eq!(count(&html, "<figcaption>"), cs.len());
}

#[test]
fn legends_and_axis_units() {
    let html = render_html(&sample_report());
    for text in [
        // Roofline legend and axes.
        "compute-bound",
        "memory-bound",
        "bound unknown",
        "roof (device peak)",
        "lower compute roof",
        "Marker area = share of time",
        "Arithmetic intensity (FLOP/byte, log scale)",
        "Performance (FLOP/s, log scale)",
        ">10 T<",
        ">1 P<",
        "bf16 matrix · 989.5 TFLOP/s",
        "fp32 vector · 67 TFLOP/s",
        "memory · 3.35 TB/s",
        "ridge 295 FLOP/B",
        // Other charts.
        "measured GPU time",
        "GPU time, summed over ranks (s)",
        "Modelled accelerator time (min)",
        "exposed (on the critical path)",
        "overlapped with compute",
        "Collective time (s)",
        "input (prompt) tokens",
        "Requests (count)",
        "Input tokens per request",
        "Fleet accelerator time saved (%)",
        "Share of fleet accelerator time (%)",
        // Rounded numbers.
        "6.82 s · 50%",
        "12.3k",
        "1.02k tokens",
        "1.45×",
    ] {
        assert!(html.contains(text), "HTML lacks {text:?}");
    }
}

const RANKED: [&str; 9] = [
    "hbm_bandwidth",
    "low_precision",
    "matrix_flops",
    "interconnect",
    "collective_offload",
    "launch_latency",
    "sram",
    "vector_flops",
    "hbm_capacity",
];

#[test]
fn features_in_rank_order() {
    let r = sample_report();
    let ids: Vec<&str> = r.recommendations.iter().map(|x| x.feature.as_str()).collect();
    assert_eq!(ids, RANKED);

    let html = render_html(&r);
    let table = &html[html.find("<table class=\"recommendations\">").unwrap()..];
    let table = &table[..table.find("</table>").unwrap()];
    let pos: Vec<usize> = RANKED.iter().map(|f| table.find(&format!("<code>{f}</code>")).unwrap()).collect();
    assert!(pos.windows(2).all(|w| w[0] < w[1]), "HTML table out of rank order");
    let chart = charts(&html).into_iter().find(|(k, _)| k == "features").unwrap().1;
    let pos: Vec<usize> =
        RANKED.iter().enumerate().map(|(i, f)| chart.find(&format!(">{}. {f}<", i + 1)).unwrap()).collect();
    assert!(pos.windows(2).all(|w| w[0] < w[1]), "feature chart out of rank order");

    let md = render_markdown(&r);
    let rows: Vec<&str> = md.lines().filter(|l| l.starts_with("| ") && l.contains("× |")).collect();
    assert_eq!(rows.len(), 9);
    for (i, (row, f)) in rows.iter().zip(RANKED).enumerate() {
        assert!(row.starts_with(&format!("| {} | `{f}` |", i + 1)), "markdown row {i}: {row}");
    }
    assert!(md.contains("| 1 | `hbm_bandwidth` | HBM bandwidth ×2 | 1.45× | 31% | 31% | 2 | 94% |"));
}

#[test]
fn markdown_has_every_section() {
    let md = render_markdown(&sample_report());
    for h in [
        "# Chip-feature priorities for the sample fleet",
        "> **Warnings**",
        "## Executive summary",
        "### Fleet mix",
        "## Recommendations",
        "### Time saved by workload",
        "## Workloads",
        "### conversation",
        "### train_2rank",
        "### code",
        "#### Roofline",
        "#### Time by category",
        "#### Tokens per request",
        "#### Communication",
        "## Sensitivity",
        "## Evidence",
        "## Method and assumptions",
        "| `comm_compute_overlap` |",
        "| `gpu_idle_time` |",
    ] {
        assert!(md.contains(h), "markdown lacks {h:?}");
    }
    assert!(!md.contains("<svg"));
}

#[test]
fn text_is_escaped() {
    let mut r = sample_report();
    r.title = "Fleet <script>alert(1)</script>".into();
    r.workloads[0].name = "<a&b>".into();
    r.summary.fleet_mix[0].0 = "<a&b>".into();
    r.workloads[0].description = "uses \"quotes\" & 'apostrophes' | pipes".into();
    if let Some(rf) = r.workloads[0].roofline.as_mut() {
        rf.points[0].label = "gemm <bf16>".into();
    }
    r.evidence[0].key = "workload=<a&b>".into();
    let html = render_html(&r);
    assert!(html.contains("&lt;a&amp;b&gt;"));
    assert!(!html.contains("<a&b>"));
    assert!(!html.contains("<script>"));
    assert!(html.contains("gemm &lt;bf16&gt;"));
    assert!(html.contains("&quot;quotes&quot; &amp; &#39;apostrophes&#39;"));
    let md = render_markdown(&r);
    assert!(md.contains("### \\<a\\&b\\>"));
    assert!(!md.contains("<a&b>") && !md.contains("<script>"));
    assert!(md.contains("\\| pipes"));
}

#[test]
fn output_is_deterministic_and_json_round_trips() {
    let r = sample_report();
    assert_eq!(render_html(&r), render_html(&r));
    assert_eq!(render_markdown(&r), render_markdown(&r));
    // A stored report.json re-renders to the same bytes (floats may differ in the last bit after
    // a JSON round trip; the rounding for people hides that).
    let back: Report = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
    assert_eq!(render_html(&back), render_html(&r));
    assert_eq!(render_markdown(&back), render_markdown(&r));
}

#[test]
fn degenerate_reports_render() {
    let mut r = sample_report();
    r.recommendations.clear();
    r.sensitivity.clear();
    r.evidence.clear();
    r.warnings.clear();
    r.method.clear();
    r.assumptions.clear();
    r.summary.fleet_mix.clear();
    r.summary.headlines.clear();
    r.workloads[0].roofline = Some(Roofline {
        device: "x".into(),
        memory_roof: f64::NAN,
        compute_roofs: vec![("bad".into(), -1.0)],
        points: vec![RooflinePoint {
            label: "zero".into(),
            intensity: 0.0,
            achieved: f64::INFINITY,
            time_share: f64::NAN,
            bound: "memory".into(),
        }],
    });
    r.workloads[1].time_by_category = vec![("nan".into(), f64::NAN), ("zero".into(), 0.0)];
    r.workloads[1].communication.as_mut().unwrap().by_rank = vec![(0, 0.0, 0.0)];
    r.workloads[2].tokens.as_mut().unwrap().input_histogram.clear();
    let html = render_html(&r);
    let md = render_markdown(&r);
    assert!(!html.contains("NaN") && !html.contains("inf\""), "NaN leaked into the HTML");
    assert!(!html.contains("class=\"warnings\""));
    assert!(html.contains("No feature was ranked."));
    assert!(md.contains("No feature was ranked."));

    let empty = Report { workloads: vec![], ..r };
    let html = render_html(&empty);
    assert!(html.contains("No workload in the results."));
    assert!(render_markdown(&empty).contains("No workload in the results."));
}

#[test]
fn warnings_are_at_the_top() {
    let html = render_html(&sample_report());
    let w = html.find("class=\"warnings\"").expect("warnings box");
    assert!(w < html.find("id=\"summary\"").unwrap());
}

#[test]
fn markdown_snapshot() {
    insta::assert_snapshot!("sample_report_md", render_markdown(&sample_report()));
}
