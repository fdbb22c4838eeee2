//! Inline SVG charts for the HTML report.
//!
//! Each function returns one `<figure>` holding an `<svg class="chart chart-KIND" role="img"
//! aria-label="…">` (whose first child is a `<title>`) and a `<figcaption>`. The charts use no
//! script, no external font or image and no URL; text inherits the page's font through CSS.
//! Output is deterministic: coordinates are printed with at most one decimal, and every piece of
//! text goes through [`esc`].
//!
//! Kinds (the `chart-KIND` class a checker can look for): `roofline`, `categories`, `tokens`,
//! `communication`, `features`, `fleet-mix`.
//!
//! The pieces: `axis` (axis lines, titles and the roofline's log-log frame), `legend` ([`Key`]s
//! in rows or columns), `labels` (placing roof and point labels where they collide least),
//! `roofline` ([`roofline()`]) and `bars` ([`bar_chart`] and [`histogram`]).

use std::fmt::Write;

use crate::format;

mod axis;
mod bars;
mod labels;
mod legend;
mod roofline;

pub use bars::{Axis, BarChart, BarRow, bar_chart, histogram};
pub use legend::Key;
pub use roofline::roofline;

/// Marker colour of compute-bound roofline points (Okabe–Ito vermillion).
pub const COMPUTE: &str = "#D55E00";
/// Marker colour of memory-bound roofline points (Okabe–Ito blue).
pub const MEMORY: &str = "#0072B2";
/// Marker colour of points whose bound is unknown.
pub const UNKNOWN: &str = "#8C8C8C";
/// Colours of series (workloads, categories), colour-blind safe (Okabe–Ito order).
pub const SERIES: [&str; 8] = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#6E6E6E", "#F0E442"];
const INK: &str = "#1f2328";
const MUTED: &str = "#59636e";
const GRID: &str = "#e3e6ea";
const AXIS: &str = "#8c959f";

/// Escapes text for XML/HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A coordinate, one decimal at most.
fn c(v: f64) -> String {
    format::trim_zeros(format!("{v:.1}"))
}

/// Width in pixels of `s` at `size` px, estimated on the wide side (DejaVu Sans-like metrics, the
/// widest common default sans-serif), so labels placed with it do not collide in narrower fonts.
fn text_width(s: &str, size: f64) -> f64 {
    s.chars()
        .map(|ch| match ch {
            'i' | 'l' | 'j' | '.' | ',' | ':' | ';' | '|' | '!' | '\'' => 0.3,
            't' | 'f' | 'r' | ' ' | '(' | ')' | '/' | '-' => 0.4,
            'm' | 'w' | 'M' | 'W' | '%' | '@' => 0.95,
            '×' | '·' => 0.5,
            c if c.is_uppercase() => 0.72,
            c if c.is_ascii_digit() => 0.64,
            _ => 0.62,
        })
        .sum::<f64>()
        * size
}

/// Colour of the `i`-th series.
pub fn series_colour(i: usize) -> &'static str {
    SERIES[i % SERIES.len()]
}

/// Colour of a roofline point by its bound.
pub fn bound_colour(bound: &str) -> &'static str {
    match bound {
        "compute" => COMPUTE,
        "memory" => MEMORY,
        _ => UNKNOWN,
    }
}

fn open_figure(out: &mut String, kind: &str, w: f64, h: f64, title: &str) {
    let t = esc(title);
    let _ = write!(
        out,
        "<figure class=\"figure figure-{kind}\">\n<svg class=\"chart chart-{kind}\" role=\"img\" \
         aria-label=\"{t}\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" \
         font-size=\"12\" fill=\"{INK}\">\n<title>{t}</title>\n",
        w = c(w),
        h = c(h),
    );
}

fn close_figure(out: &mut String, caption: &str) {
    let _ = write!(out, "</svg>\n<figcaption>{}</figcaption>\n</figure>\n", esc(caption));
}

fn text(out: &mut String, x: f64, y: f64, attrs: &str, s: &str) {
    let _ = writeln!(out, "<text x=\"{}\" y=\"{}\"{attrs}>{}</text>", c(x), c(y), esc(s));
}

fn line(out: &mut String, x1: f64, y1: f64, x2: f64, y2: f64, attrs: &str) {
    let _ = writeln!(out, "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\"{attrs}/>", c(x1), c(y1), c(x2), c(y2));
}

fn short(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

fn min_max(v: &[f64]) -> Option<(f64, f64)> {
    let mut it = v.iter().copied().filter(|x| x.is_finite() && *x > 0.0);
    let first = it.next()?;
    Some(it.fold((first, first), |(a, b), x| (a.min(x), b.max(x))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Roofline, RooflinePoint};

    #[test]
    fn escapes_markup() {
        assert_eq!(esc("<a&b> \"q\" 'x'"), "&lt;a&amp;b&gt; &quot;q&quot; &#39;x&#39;");
    }

    #[test]
    fn roofline_is_deterministic_and_labelled() {
        let r = Roofline {
            device: "H100 SXM".into(),
            memory_roof: 3.35e12,
            compute_roofs: vec![("bf16 matrix".into(), 9.895e14), ("fp32 vector".into(), 6.7e13)],
            points: vec![RooflinePoint {
                label: "gemm <bf16>".into(),
                intensity: 400.0,
                achieved: 6e14,
                time_share: 0.5,
                bound: "compute".into(),
            }],
        };
        let a = roofline(&r, "t", "cap");
        assert_eq!(a, roofline(&r, "t", "cap"));
        assert!(a.contains("class=\"chart chart-roofline\""));
        assert!(a.contains("gemm &lt;bf16&gt;"));
        assert!(a.contains("bf16 matrix · 989.5 TFLOP/s"));
        assert!(a.contains("memory · 3.35 TB/s"));
        assert!(a.contains(">10 T<") || a.contains(">100 T<"));
        assert!(a.contains("Arithmetic intensity (FLOP/byte"));
        assert!(a.contains("Performance (FLOP/s"));
        assert!(!a.contains("NaN") && !a.contains("inf"));
    }

    #[test]
    fn roofline_survives_empty_input() {
        let r = Roofline { device: "x".into(), memory_roof: 0.0, compute_roofs: vec![], points: vec![] };
        let s = roofline(&r, "t", "c");
        assert!(s.contains("chart-roofline") && !s.contains("NaN"));
    }

    #[test]
    fn bar_chart_ticks_have_units() {
        let ch = BarChart {
            kind: "categories",
            title: "t".into(),
            caption: "c".into(),
            rows: vec![
                BarRow { label: "gemm".into(), values: vec![0.0068], note: "6.8 ms".into() },
                BarRow { label: "idle".into(), values: vec![0.001], note: "1 ms".into() },
            ],
            series: vec![("time".into(), SERIES[0])],
            axis: Axis::Duration,
            axis_title: "Time".into(),
            max: None,
        };
        let s = bar_chart(&ch);
        assert!(s.contains("Time (ms)"));
        assert!(s.contains(">8<"));
        assert!(!s.contains("NaN"));
    }
}
