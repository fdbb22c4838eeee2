//! The HTML report: one self-contained file (inline CSS and SVG, no script, no URL).

use std::fmt::Write;

use crate::format;
use crate::model::{Communication, Report, Roofline, TokenStats, WorkloadSection};
use crate::svg::{self, Axis, BarChart, BarRow, esc};

const CSS: &str = r#"
:root {
  --ink: #1f2328; --muted: #59636e; --line: #d8dee4; --soft: #f6f8fa;
  --accent: #0969da; --warn-bg: #fff8c5; --warn-line: #d4a72c;
}
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body {
  margin: 0; background: #fff; color: var(--ink);
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", "Noto Sans",
    "Liberation Sans", Arial, sans-serif;
  font-size: 15px; line-height: 1.55;
  -webkit-print-color-adjust: exact; print-color-adjust: exact;
}
.page { max-width: 1040px; margin: 0 auto; padding: 36px 40px 72px; }
h1 { font-size: 30px; line-height: 1.2; margin: 2px 0 14px; letter-spacing: -0.01em; }
h2 { font-size: 22px; line-height: 1.3; margin: 48px 0 14px; padding-bottom: 6px;
  border-bottom: 1px solid var(--line); }
h3 { font-size: 19px; margin: 36px 0 6px; }
h4 { font-size: 12.5px; margin: 26px 0 8px; color: var(--muted); text-transform: uppercase;
  letter-spacing: .05em; }
p { margin: 8px 0; }
code, .mono { font-family: ui-monospace, SFMono-Regular, "SF Mono", Menlo, Consolas,
  "Liberation Mono", monospace; font-size: .88em; }
code { background: var(--soft); padding: 1px 5px; border-radius: 4px; }
a { color: var(--accent); text-decoration: none; }
.eyebrow { margin: 0; font-size: 12.5px; font-weight: 600; letter-spacing: .08em;
  text-transform: uppercase; color: var(--muted); }
header.report-header { border-bottom: 3px solid var(--ink); padding-bottom: 18px; }
dl.meta { display: grid; grid-template-columns: repeat(3, minmax(0, 1fr)); gap: 10px 28px;
  margin: 14px 0 0; }
dl.meta div { min-width: 0; }
dl.meta dt { font-size: 12px; color: var(--muted); }
dl.meta dd { margin: 0; font-weight: 500; overflow-wrap: anywhere; }
dl.meta .wide { grid-column: 1 / -1; }
nav.toc { margin: 18px 0 0; font-size: 14px; color: var(--muted); }
nav.toc a { margin-right: 14px; white-space: nowrap; }
.warnings { border: 1px solid var(--warn-line); background: var(--warn-bg); border-radius: 8px;
  padding: 10px 18px; margin: 22px 0 0; }
.warnings strong { display: block; margin-bottom: 2px; }
.warnings ul { margin: 4px 0; padding-left: 20px; }
.kpis { display: grid; grid-template-columns: repeat(4, minmax(0, 1fr)); gap: 12px; margin: 14px 0; }
.kpi { border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; background: var(--soft); }
.kpi .label { font-size: 12.5px; color: var(--muted); }
.kpi .value { font-size: 24px; font-weight: 650; line-height: 1.25; margin-top: 2px;
  font-variant-numeric: tabular-nums; }
.kpi .value.text { font-size: 17px; font-weight: 600; }
.kpi .sub { font-size: 12.5px; color: var(--muted); margin-top: 2px; }
ul.headlines { padding-left: 20px; margin: 10px 0 4px; font-size: 16px; }
ul.headlines li { margin: 3px 0; }
table { border-collapse: collapse; width: 100%; margin: 10px 0 18px; font-size: 14px;
  font-variant-numeric: tabular-nums; }
th, td { padding: 6px 10px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
th { font-size: 12.5px; font-weight: 600; color: var(--muted); border-bottom: 2px solid var(--line);
  vertical-align: bottom; }
td.num, th.num { text-align: right; }
td.num { white-space: nowrap; }
table.evidence td { overflow-wrap: break-word; }
table.evidence td:nth-child(-n+2) { white-space: nowrap; }
table.evidence code { font-size: .8em; }
table.evidence td:nth-child(4) { font-variant-numeric: tabular-nums; }
.peak { white-space: nowrap; }
table.token-stats { width: auto; min-width: 60%; }
table.token-stats td.num, table.token-stats th.num { padding-left: 36px; }
tbody tr:nth-child(even) td { background: #fbfcfd; }
.meter { display: inline-block; width: 56px; height: 7px; background: #e9ecef; border-radius: 4px;
  margin-left: 8px; vertical-align: middle; overflow: hidden; }
.meter > span { display: block; height: 100%; background: #2da44e; }
.meter.mid > span { background: #bf8700; }
.meter.low > span { background: #cf222e; }
.badge { display: inline-block; font-size: 12px; font-weight: 600; padding: 1px 8px;
  border-radius: 10px; background: #ddf4ff; color: #0550ae; margin-right: 6px; }
.badge.kernels { background: #fbefff; color: #8250df; }
.badge.conf-high { background: #dafbe1; color: #116329; }
.badge.conf-medium { background: #fff8c5; color: #7d4e00; }
.badge.conf-low { background: #ffebe9; color: #a40e26; }
.workload-meta { color: var(--muted); font-size: 14px; margin: 0 0 6px; }
.note { color: var(--muted); font-size: 13.5px; }
figure { margin: 14px 0 22px; }
figure svg { display: block; max-width: 100%; height: auto; }
figcaption { font-size: 13px; color: var(--muted); margin-top: 6px; }
.chart text { font-family: inherit; }
.grid2 { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 8px 28px; }
.facts { display: flex; flex-wrap: wrap; gap: 6px 26px; margin: 8px 0 4px; font-size: 14px; }
.facts b { font-variant-numeric: tabular-nums; }
footer { margin-top: 56px; padding-top: 12px; border-top: 1px solid var(--line);
  font-size: 12.5px; color: var(--muted); }
@media (max-width: 760px) {
  .page { padding: 20px 16px 48px; }
  .kpis, dl.meta { grid-template-columns: repeat(2, minmax(0, 1fr)); }
  .grid2 { grid-template-columns: 1fr; }
}
@media print {
  @page { size: A4; margin: 14mm 12mm; }
  body { font-size: 10pt; }
  .page { max-width: none; padding: 0; }
  nav.toc { display: none; }
  h2 { margin-top: 24px; }
  h2, h3, h4 { break-after: avoid; }
  figure, table, .kpis, .warnings, tr { break-inside: avoid; }
  section.workload { break-before: page; }
  tbody tr:nth-child(even) td { background: none; }
  a { color: inherit; }
}
"#;

/// Renders the whole report as one HTML document.
pub fn render(r: &Report) -> String {
    let mut o = String::with_capacity(64 * 1024);
    let colours = WorkloadColours::new(r);
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"generator\" content=\"tapeout {}\">\n<title>{}</title>\n<style>{CSS}</style>\n\
         </head>\n<body>\n<div class=\"page\">\n",
        esc(&r.tapeout_version),
        esc(&r.title)
    );
    header(&mut o, r);
    if !r.warnings.is_empty() {
        o.push_str("<aside class=\"warnings\" role=\"note\"><strong>Warnings</strong><ul>\n");
        for w in &r.warnings {
            let _ = writeln!(o, "<li>{}</li>", esc(w));
        }
        o.push_str("</ul></aside>\n");
    }
    o.push_str("<main>\n");
    summary(&mut o, r, &colours);
    recommendations(&mut o, r, &colours);
    o.push_str("<section id=\"workloads\">\n<h2>Workloads</h2>\n");
    if r.workloads.is_empty() {
        o.push_str("<p class=\"note\">No workload in the results.</p>\n");
    }
    for (i, w) in r.workloads.iter().enumerate() {
        workload(&mut o, i, w);
    }
    o.push_str("</section>\n");
    sensitivity(&mut o, r);
    evidence(&mut o, r);
    method(&mut o, r);
    o.push_str("</main>\n");
    let _ = writeln!(
        o,
        "<footer>Generated by tapeout {} from lake version {} (pipeline config {}). This file is \
         self-contained: no script, font or image is loaded from anywhere.</footer>",
        esc(&r.tapeout_version),
        r.lake_version,
        esc(&r.config_hash)
    );
    o.push_str("</div>\n</body>\n</html>\n");
    o
}

/// Colours of workloads, the same in every chart: fleet-mix order, then the order of sections.
pub(crate) struct WorkloadColours(Vec<String>);

impl WorkloadColours {
    pub(crate) fn new(r: &Report) -> Self {
        let mut names: Vec<String> = Vec::new();
        let mut add = |n: &str| {
            if !names.iter().any(|x| x == n) {
                names.push(n.to_string());
            }
        };
        r.summary.fleet_mix.iter().for_each(|(n, _)| add(n));
        r.workloads.iter().for_each(|w| add(&w.name));
        r.recommendations.iter().flat_map(|x| &x.by_workload).for_each(|(n, _)| add(n));
        Self(names)
    }
    pub(crate) fn names(&self) -> &[String] {
        &self.0
    }
    fn colour(&self, name: &str) -> &'static str {
        svg::series_colour(self.0.iter().position(|n| n == name).unwrap_or(0))
    }
}

fn header(o: &mut String, r: &Report) {
    let hw = &r.hardware;
    let _ = write!(
        o,
        "<header class=\"report-header\">\n<p class=\"eyebrow\">tapeout · chip-feature priorities</p>\n\
         <h1>{}</h1>\n<dl class=\"meta\">\n",
        esc(&r.title)
    );
    let mut item = |label: &str, value: String, class: &str| {
        let _ = writeln!(o, "<div{class}><dt>{}</dt><dd>{value}</dd></div>", esc(label));
    };
    item("Baseline hardware", format!("{} <span class=\"note\">({})</span>", esc(&hw.name), esc(&hw.id)), "");
    item("Generated", esc(&r.generated_at), "");
    item("tapeout version", esc(&r.tapeout_version), "");
    item("Pipeline config hash", format!("<span class=\"mono\">{}</span>", esc(&r.config_hash)), "");
    item("Lake version", r.lake_version.to_string(), "");
    item("Workloads", r.workloads.len().to_string(), "");
    let peaks = hardware_peaks(r);
    if !peaks.is_empty() {
        let peaks: Vec<String> = peaks.iter().map(|p| format!("<span class=\"peak\">{}</span>", esc(p))).collect();
        item("Baseline peaks", peaks.join(" · "), " class=\"wide\"");
    }
    o.push_str("</dl>\n<nav class=\"toc\" aria-label=\"Contents\">");
    for (id, t) in [
        ("summary", "Summary"),
        ("recommendations", "Recommendations"),
        ("workloads", "Workloads"),
        ("sensitivity", "Sensitivity"),
        ("evidence", "Evidence"),
        ("method", "Method and assumptions"),
    ] {
        let _ = write!(o, "<a href=\"#{id}\">{t}</a>");
    }
    o.push_str("</nav>\n</header>\n");
}

/// The baseline's peaks as human text, e.g. "bf16 matrix 989.5 TFLOP/s".
pub(crate) fn hardware_peaks(r: &Report) -> Vec<String> {
    let hw = &r.hardware;
    let mut v: Vec<String> =
        hw.matrix_flops.iter().map(|(d, f)| format!("{d} matrix {}", format::flops_peak(*f))).collect();
    if let Some(f) = hw.vector_fp32_flops {
        v.push(format!("fp32 vector {}", format::flops_peak(f)));
    }
    if let Some(b) = hw.hbm_bandwidth {
        v.push(format!("HBM {}", format::bandwidth(b)));
    }
    if let Some(b) = hw.hbm_capacity {
        v.push(format!("HBM capacity {}", format::bytes(b)));
    }
    if let Some(b) = hw.scale_up_bandwidth {
        v.push(format!("scale-up {} per direction", format::bandwidth(b)));
    }
    v
}

fn stability_class(x: f64) -> &'static str {
    if x >= 0.8 {
        "meter"
    } else if x >= 0.5 {
        "meter mid"
    } else {
        "meter low"
    }
}

fn meter(x: f64) -> String {
    format!(
        "{}<span class=\"{}\" aria-hidden=\"true\"><span style=\"width:{}%\"></span></span>",
        format::pct(x),
        stability_class(x),
        format::trim_zeros(format!("{:.0}", (x.clamp(0.0, 1.0) * 100.0)))
    )
}

fn summary(o: &mut String, r: &Report, colours: &WorkloadColours) {
    let s = &r.summary;
    o.push_str("<section id=\"summary\">\n<h2>Executive summary</h2>\n");
    if !s.headlines.is_empty() {
        o.push_str("<ul class=\"headlines\">\n");
        for h in &s.headlines {
            let _ = writeln!(o, "<li>{}</li>", esc(h));
        }
        o.push_str("</ul>\n");
    }
    o.push_str("<div class=\"kpis\">\n");
    let mut kpi = |label: &str, value: String, text: bool, sub: String| {
        let _ = writeln!(
            o,
            "<div class=\"kpi\"><div class=\"label\">{}</div><div class=\"value{}\">{value}</div>\
             <div class=\"sub\">{sub}</div></div>",
            esc(label),
            if text { " text" } else { "" }
        );
    };
    let top = r.recommendations.first();
    kpi(
        "Top priority",
        top.map_or("none".into(), |t| esc(&t.step)),
        true,
        top.map_or(String::new(), |t| format!("<code>{}</code>", esc(&t.feature))),
    );
    kpi(
        "Projected fleet speedup",
        format::speedup(s.top_speedup),
        false,
        top.map_or(String::new(), |t| format!("{} of fleet time saved", format::pct(t.time_saved_fraction))),
    );
    let conf = s.confidence.to_ascii_lowercase();
    let conf_class = match conf.as_str() {
        "high" | "medium" | "low" => conf.as_str(),
        _ => "medium",
    };
    kpi(
        "Confidence",
        format!("<span class=\"badge conf-{conf_class}\">{}</span>", esc(&s.confidence)),
        false,
        top.map_or(String::new(), |t| {
            format!("top feature kept rank 1 in {} of perturbed runs", format::pct(t.rank_stability))
        }),
    );
    kpi("Workloads", s.workloads.to_string(), false, format!("{} features ranked", r.recommendations.len()));
    o.push_str("</div>\n");

    if !s.fleet_mix.is_empty() {
        let series: Vec<(String, &'static str)> = s
            .fleet_mix
            .iter()
            .map(|(n, v)| (format!("{n} {}", format::pct(sanitize(*v))), colours.colour(n)))
            .collect();
        let ch = BarChart {
            kind: "fleet-mix",
            title: "Fleet mix: share of accelerator time per workload".into(),
            caption: "Fleet mix: each workload's share of fleet accelerator time, which weighs its savings in the \
                      fleet speedup."
                .into(),
            rows: vec![BarRow {
                label: "Fleet time".into(),
                values: s.fleet_mix.iter().map(|(_, v)| sanitize(*v)).collect(),
                note: format::pct(s.fleet_mix.iter().map(|(_, v)| sanitize(*v)).sum()),
            }],
            series,
            axis: Axis::Percent,
            axis_title: "Share of fleet accelerator time".into(),
            max: Some(1.0),
        };
        o.push_str(&svg::bar_chart(&ch));
    }
    o.push_str("</section>\n");
}

fn sanitize(v: f64) -> f64 {
    if v.is_finite() { v.max(0.0) } else { 0.0 }
}

fn recommendations(o: &mut String, r: &Report, colours: &WorkloadColours) {
    o.push_str("<section id=\"recommendations\">\n<h2>Recommendations</h2>\n");
    if r.recommendations.is_empty() {
        o.push_str("<p class=\"note\">No feature was ranked.</p>\n</section>\n");
        return;
    }
    o.push_str(
        "<p class=\"note\">Features ranked by the share of fleet accelerator time they save. Per cost divides the \
         time saved by the feature's relative cost (doubling HBM bandwidth = 1); rank stability is the share of \
         perturbed runs in which the feature kept its rank.</p>\n",
    );
    o.push_str(
        "<table class=\"recommendations\">\n<thead><tr><th class=\"num\">Rank</th><th>Feature</th><th>Step</th>\
         <th class=\"num\">Fleet speedup</th><th class=\"num\">Time saved</th><th class=\"num\">Saved per unit cost</th>\
         <th class=\"num\">Per-cost rank</th><th class=\"num\">Rank stability</th></tr></thead>\n<tbody>\n",
    );
    for x in &r.recommendations {
        let _ = writeln!(
            o,
            "<tr><td class=\"num\">{}</td><td><code>{}</code></td><td>{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            x.rank,
            esc(&x.feature),
            esc(&x.step),
            format::speedup(x.fleet_speedup),
            format::pct(x.time_saved_fraction),
            format::pct(x.per_cost),
            x.per_cost_rank,
            meter(x.rank_stability)
        );
    }
    o.push_str("</tbody>\n</table>\n");

    // Bars split by workload: a workload's part is its saving weighted by its fleet share,
    // scaled so the bar's length is the feature's fleet time saved.
    let names = colours.names();
    let share = |w: &str| {
        r.summary
            .fleet_mix
            .iter()
            .find(|(n, _)| n == w)
            .map(|(_, s)| *s)
            .or_else(|| r.workloads.iter().find(|x| x.name == w).map(|x| x.fleet_share))
            .unwrap_or(0.0)
    };
    let split = r.recommendations.iter().any(|x| !x.by_workload.is_empty());
    let rows: Vec<BarRow> = r
        .recommendations
        .iter()
        .map(|x| {
            let total = sanitize(x.time_saved_fraction);
            let values = if split {
                let parts: Vec<f64> = names
                    .iter()
                    .map(|n| x.by_workload.iter().filter(|(w, _)| w == n).map(|(_, f)| sanitize(*f) * share(n)).sum())
                    .collect();
                let sum: f64 = parts.iter().sum();
                if sum > 0.0 { parts.iter().map(|p| p / sum * total).collect() } else { vec![total] }
            } else {
                vec![total]
            };
            BarRow {
                label: format!("{}. {}", x.rank, x.feature),
                values,
                note: format!("{} · {}", format::pct(x.time_saved_fraction), format::speedup(x.fleet_speedup)),
            }
        })
        .collect();
    let series: Vec<(String, &'static str)> = if split {
        names.iter().map(|n| (n.clone(), colours.colour(n))).collect()
    } else {
        vec![("fleet time saved".into(), svg::SERIES[0])]
    };
    let caption = if split {
        "Fleet time saved by each feature, split by the workload it comes from (a workload's saving weighted by its \
         fleet share). Labels: time saved · fleet speedup."
    } else {
        "Fleet time saved by each feature. Labels: time saved · fleet speedup."
    };
    o.push_str(&svg::bar_chart(&BarChart {
        kind: "features",
        title: "Ranked features: share of fleet time saved".into(),
        caption: caption.into(),
        rows,
        series,
        axis: Axis::Percent,
        axis_title: "Fleet accelerator time saved".into(),
        max: None,
    }));
    o.push_str("</section>\n");
}

fn kind_badge(kind: &str) -> String {
    match kind {
        "requests" => "<span class=\"badge\">request log · modelled</span>".into(),
        "kernels" => "<span class=\"badge kernels\">kernel trace · measured</span>".into(),
        other => format!("<span class=\"badge\">{}</span>", esc(other)),
    }
}

fn workload(o: &mut String, i: usize, w: &WorkloadSection) {
    let _ = write!(
        o,
        "<section class=\"workload\" id=\"workload-{}\">\n<h3>{}</h3>\n<p class=\"workload-meta\">{}{} of fleet time</p>\n",
        i + 1,
        esc(&w.name),
        kind_badge(&w.kind),
        format::pct(w.fleet_share)
    );
    if !w.description.is_empty() {
        let _ = writeln!(o, "<p>{}</p>", esc(&w.description));
    }
    if let Some(rf) = &w.roofline {
        roofline(o, w, rf);
    }
    if !w.time_by_category.is_empty() {
        categories(o, w);
    }
    if let Some(t) = &w.tokens {
        tokens(o, w, t);
    }
    if let Some(c) = &w.communication {
        communication(o, w, c);
    }
    if w.roofline.is_none() && w.time_by_category.is_empty() && w.tokens.is_none() && w.communication.is_none() {
        o.push_str("<p class=\"note\">No chartable result for this workload.</p>\n");
    }
    o.push_str("</section>\n");
}

/// Achieved FLOP/s as a share of the roof at the point's intensity.
pub(crate) fn of_attainable(rf: &Roofline, intensity: f64, achieved: f64) -> Option<f64> {
    let peak = rf.compute_roofs.iter().map(|(_, v)| *v).fold(f64::NAN, f64::max);
    let mut roof = if peak.is_finite() { peak } else { f64::INFINITY };
    if rf.memory_roof > 0.0 {
        roof = roof.min(rf.memory_roof * intensity);
    }
    (roof.is_finite() && roof > 0.0).then(|| achieved / roof)
}

fn roofline(o: &mut String, w: &WorkloadSection, rf: &Roofline) {
    o.push_str("<h4>Roofline</h4>\n");
    let modelled = if w.kind == "requests" { "modelled" } else { "achieved" };
    let caption = format!(
        "{}: {modelled} FLOP/s against arithmetic intensity on {} (log-log). Lines are the device's roofs; each \
         circle is a class of work, its area its share of the workload's time, its colour its bound.",
        w.name, rf.device
    );
    o.push_str(&svg::roofline(rf, &format!("Roofline of {} on {}", w.name, rf.device), &caption));
    if rf.points.is_empty() {
        return;
    }
    o.push_str(
        "<table class=\"roofline-points\"><thead><tr><th>Work</th><th class=\"num\">Intensity</th>\
         <th class=\"num\">Performance</th><th class=\"num\">Of attainable</th><th class=\"num\">Share of time</th>\
         <th>Bound</th></tr></thead>\n<tbody>\n",
    );
    let mut pts: Vec<_> = rf.points.iter().collect();
    pts.sort_by(|a, b| b.time_share.total_cmp(&a.time_share));
    for p in pts {
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td>{}</td></tr>",
            esc(&p.label),
            format::intensity(p.intensity),
            format::flops(p.achieved),
            of_attainable(rf, p.intensity, p.achieved).map_or(format::NA.into(), format::pct),
            format::pct(p.time_share),
            esc(&p.bound)
        );
    }
    o.push_str("</tbody></table>\n");
}

fn categories(o: &mut String, w: &WorkloadSection) {
    o.push_str("<h4>Time by category</h4>\n");
    let total: f64 = w.time_by_category.iter().map(|(_, s)| sanitize(*s)).sum();
    let rows = w
        .time_by_category
        .iter()
        .map(|(cat, s)| BarRow {
            label: cat.clone(),
            values: vec![sanitize(*s)],
            note: if total > 0.0 {
                format!("{} · {}", format::duration(*s), format::pct(*s / total))
            } else {
                format::duration(*s)
            },
        })
        .collect();
    let (series, axis_title) = if w.kind == "kernels" {
        ("measured GPU time", "GPU time, summed over ranks")
    } else {
        ("modelled accelerator time", "Modelled accelerator time")
    };
    o.push_str(&svg::bar_chart(&BarChart {
        kind: "categories",
        title: format!("Time by category in {}", w.name),
        caption: format!(
            "{}: time by category, {} in total. Labels: time · share of the total.",
            w.name,
            format::duration(total)
        ),
        rows,
        series: vec![(series.into(), svg::SERIES[0])],
        axis: Axis::Duration,
        axis_title: axis_title.into(),
        max: None,
    }));
}

fn tokens(o: &mut String, w: &WorkloadSection, t: &TokenStats) {
    o.push_str("<h4>Tokens per request</h4>\n<div class=\"facts\">");
    let _ = write!(o, "<span>Requests <b>{}</b></span>", format::count(t.requests as f64));
    let _ = write!(o, "<span>Prompt (prefill) share of tokens <b>{}</b></span>", format::pct(t.prefill_share));
    if let Some(p) = t.prefix_reuse {
        let _ = write!(o, "<span>Prefix reuse of prompt tokens <b>{}</b></span>", format::pct(p));
    }
    o.push_str("</div>\n");
    let _ = writeln!(
        o,
        "<table class=\"token-stats\"><thead><tr><th>Tokens per request</th><th class=\"num\">p50</th>\
         <th class=\"num\">p90</th><th class=\"num\">p99</th></tr></thead><tbody>\n\
         <tr><td>Input (prompt)</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>\n\
         <tr><td>Output (generated)</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>\n\
         </tbody></table>",
        format::tokens(t.input_p50),
        format::tokens(t.input_p90),
        format::tokens(t.input_p99),
        format::tokens(t.output_p50),
        format::tokens(t.output_p90),
        format::tokens(t.output_p99),
    );
    if t.input_histogram.is_empty() && t.output_histogram.is_empty() {
        return;
    }
    o.push_str("<div class=\"grid2\">\n");
    if !t.input_histogram.is_empty() {
        o.push_str(&svg::histogram(
            &format!("Input tokens per request in {}", w.name),
            &format!("{}: requests by prompt length (median {}).", w.name, format::tokens(t.input_p50)),
            &t.input_histogram,
            "input (prompt) tokens",
            svg::SERIES[0],
            "Input tokens per request",
        ));
    }
    if !t.output_histogram.is_empty() {
        o.push_str(&svg::histogram(
            &format!("Output tokens per request in {}", w.name),
            &format!("{}: requests by generated length (median {}).", w.name, format::tokens(t.output_p50)),
            &t.output_histogram,
            "output (generated) tokens",
            svg::SERIES[1],
            "Output tokens per request",
        ));
    }
    o.push_str("</div>\n");
}

fn communication(o: &mut String, w: &WorkloadSection, c: &Communication) {
    o.push_str("<h4>Communication</h4>\n<div class=\"facts\">");
    let _ = write!(o, "<span>Collectives <b>{}</b></span>", format::duration(c.total));
    let exposed_share =
        if c.total > 0.0 { format!(" ({} of it)", format::pct(c.exposed / c.total)) } else { String::new() };
    let _ = write!(o, "<span>Exposed <b>{}</b>{exposed_share}</span>", format::duration(c.exposed));
    let _ = write!(o, "<span>Overlapped with compute <b>{}</b></span>", format::duration(c.overlapped));
    o.push_str("<span class=\"note\">summed over ranks</span></div>\n");
    if c.by_rank.is_empty() {
        return;
    }
    let rows = c
        .by_rank
        .iter()
        .map(|(rank, e, ov)| {
            let t = sanitize(*e) + sanitize(*ov);
            BarRow {
                label: format!("rank {rank}"),
                values: vec![sanitize(*e), sanitize(*ov)],
                note: if t > 0.0 {
                    format!("{} exposed of {} ({})", format::duration(*e), format::duration(t), format::pct(*e / t))
                } else {
                    "no communication".into()
                },
            }
        })
        .collect();
    o.push_str(&svg::bar_chart(&BarChart {
        kind: "communication",
        title: format!("Exposed and overlapped communication per rank in {}", w.name),
        caption: format!(
            "{}: collective time per rank. Exposed time runs while no compute kernel does and is what faster links or \
             collective offload can save; overlapped time is hidden behind compute.",
            w.name
        ),
        rows,
        series: vec![
            ("exposed (on the critical path)".into(), svg::COMPUTE),
            ("overlapped with compute".into(), "#9ecae1"),
        ],
        axis: Axis::Duration,
        axis_title: "Collective time".into(),
        max: None,
    }));
}

fn sensitivity(o: &mut String, r: &Report) {
    o.push_str("<section id=\"sensitivity\">\n<h2>Sensitivity</h2>\n");
    if r.sensitivity.is_empty() {
        o.push_str("<p class=\"note\">No sensitivity analysis in the results.</p>\n</section>\n");
        return;
    }
    o.push_str(
        "<p class=\"note\">Each assumption was perturbed in turn and the features re-ranked. A feature that keeps its \
         rank in most runs is a safe call; a wide best–worst range means the ranking depends on the assumptions.</p>\n\
         <table class=\"sensitivity\"><thead><tr><th>Feature</th><th class=\"num\">Rank</th>\
         <th class=\"num\">Kept rank</th><th class=\"num\">Best rank</th><th class=\"num\">Worst rank</th></tr></thead>\n<tbody>\n",
    );
    let mut rows: Vec<_> = r.sensitivity.iter().collect();
    rows.sort_by_key(|s| s.base_rank);
    for s in rows {
        let _ = writeln!(
            o,
            "<tr><td><code>{}</code></td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td></tr>",
            esc(&s.feature),
            s.base_rank,
            meter(s.kept_rank),
            s.best_rank,
            s.worst_rank
        );
    }
    o.push_str("</tbody></table>\n</section>\n");
}

fn evidence(o: &mut String, r: &Report) {
    o.push_str("<section id=\"evidence\">\n<h2>Evidence</h2>\n");
    if r.evidence.is_empty() {
        o.push_str("<p class=\"note\">No evidence rows were recorded.</p>\n</section>\n");
        return;
    }
    o.push_str(
        "<p class=\"note\">Every number the ranking uses, with the mining job (SQL file under \
         <code>pipelines/sql/</code>) and the result row it comes from. Re-run a job with <code>tapeout sql</code> \
         against the same lake version to check it.</p>\n<table class=\"evidence\"><thead><tr><th>Job</th><th>Table</th>\
         <th>Row</th><th>Value</th><th>Used for</th></tr></thead>\n<tbody>\n",
    );
    for e in &r.evidence {
        let _ = writeln!(
            o,
            "<tr><td><code>{}</code></td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&e.job),
            esc(&e.table),
            esc_wbr(&e.key),
            esc(&e.value),
            esc(&e.used_for)
        );
    }
    o.push_str("</tbody></table>\n</section>\n");
}

/// Escaped text with line-break opportunities after `_`, `=`, `,` and `/`, for identifiers and
/// keys in narrow table cells.
fn esc_wbr(s: &str) -> String {
    let mut out = String::new();
    for ch in s.chars() {
        out.push_str(&esc(ch.encode_utf8(&mut [0; 4])));
        if matches!(ch, '_' | '=' | ',' | '/') {
            out.push_str("<wbr>");
        }
    }
    out
}

fn method(o: &mut String, r: &Report) {
    o.push_str("<section id=\"method\">\n<h2>Method and assumptions</h2>\n");
    if !r.method.is_empty() {
        o.push_str("<h4>Method</h4>\n");
        for p in &r.method {
            let _ = writeln!(o, "<p>{}</p>", esc(p));
        }
    }
    if !r.assumptions.is_empty() {
        o.push_str("<h4>Assumptions</h4>\n<ul>\n");
        for a in &r.assumptions {
            let _ = writeln!(o, "<li>{}</li>", esc(a));
        }
        o.push_str("</ul>\n");
    }
    if r.method.is_empty() && r.assumptions.is_empty() {
        o.push_str("<p class=\"note\">Not recorded.</p>\n");
    }
    o.push_str("</section>\n");
}
