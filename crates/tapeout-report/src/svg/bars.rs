//! Bar charts: horizontal (stacked) bars with a linear value axis, and the token histogram.

use std::fmt::Write;

use super::axis::{axis_line, axis_title, y_axis_title};
use super::legend::{Key, legend_row};
use super::{AXIS, GRID, INK, MUTED, c, close_figure, esc, line, open_figure, series_colour, short, text, text_width};
use crate::format;

/// One row of a horizontal bar chart: a label, one value per series (stacked), and the text shown
/// after the bar.
#[derive(Debug, Clone)]
pub struct BarRow {
    pub label: String,
    pub values: Vec<f64>,
    pub note: String,
}

/// How the value axis of a bar chart is labelled.
#[derive(Debug, Clone, Copy)]
pub enum Axis {
    /// Seconds, shown in the unit that suits the largest bar (s, ms, min…).
    Duration,
    /// Fractions 0–1, shown as percentages.
    Percent,
}

/// A horizontal bar chart, stacked when there are several series.
#[derive(Debug, Clone)]
pub struct BarChart {
    /// `chart-KIND` class.
    pub kind: &'static str,
    pub title: String,
    pub caption: String,
    pub rows: Vec<BarRow>,
    /// (name, colour) per series; the legend.
    pub series: Vec<(String, &'static str)>,
    pub axis: Axis,
    /// Axis title without its unit, e.g. "Time, summed over ranks".
    pub axis_title: String,
    /// Fixed end of the value axis (in data units), e.g. 1.0 for a 0–100% axis.
    pub max: Option<f64>,
}

/// The value axis of a bar chart: ticks every `step` display units, each `scale` data units, up
/// to `n_steps` steps, from pixel `x0` to `x1`.
struct ValueAxis {
    x0: f64,
    x1: f64,
    step: f64,
    scale: f64,
    n_steps: f64,
    unit: &'static str,
}

impl ValueAxis {
    /// The axis for `ch`'s rows (their stacked totals) between pixels `x0` and `x1`.
    fn new(ch: &BarChart, x0: f64, x1: f64) -> Self {
        let data_max = ch.rows.iter().map(total).fold(0.0, f64::max);
        let (scale, unit) = match ch.axis {
            Axis::Duration => format::duration_unit(data_max),
            Axis::Percent => (0.01, "%"),
        };
        let axis_max_units = ch.max.unwrap_or(data_max) / scale;
        let step = format::nice_step(axis_max_units.max(f64::MIN_POSITIVE), 5);
        let n_steps = (axis_max_units / step - 1e-9).ceil().max(1.0);
        Self { x0, x1, step, scale, n_steps, unit }
    }

    /// The x pixel of the data value `v` (clamped to the axis).
    fn px(&self, v: f64) -> f64 {
        let axis_end = self.n_steps * self.step * self.scale; // data units
        self.x0 + (v / axis_end).clamp(0.0, 1.0) * (self.x1 - self.x0)
    }

    /// Grid, ticks, the two axes (rows from `y0` to `y1`) and the axis title.
    fn draw(&self, out: &mut String, y0: f64, y1: f64, title: &str) {
        let (x0, x1, step, scale) = (self.x0, self.x1, self.step, self.scale);
        let _ = writeln!(out, "<g class=\"grid\" stroke=\"{GRID}\">");
        for i in 0..=(self.n_steps as i64) {
            let x = self.px(i as f64 * step * scale);
            line(out, x, y0, x, y1, "");
        }
        let _ = writeln!(out, "</g>");
        let _ = writeln!(out, "<g class=\"ticks\" fill=\"{MUTED}\">");
        for i in 0..=(self.n_steps as i64) {
            let v = i as f64 * step;
            let x = self.px(v * scale);
            line(out, x, y1, x, y1 + 5.0, &format!(" stroke=\"{AXIS}\""));
            text(out, x, y1 + 19.0, " text-anchor=\"middle\"", &format::tick(v, step));
        }
        let _ = writeln!(out, "</g>");
        axis_line(out, x0, y0, x0, y1);
        axis_line(out, x0, y1, x1, y1);
        axis_title(out, (x0 + x1) / 2.0, y1 + 42.0, "13", &format!("{title} ({})", self.unit));
    }
}

/// A row's stacked total (finite values only).
fn total(r: &BarRow) -> f64 {
    r.values.iter().filter(|v| v.is_finite()).sum::<f64>()
}

/// Renders a [`BarChart`].
pub fn bar_chart(ch: &BarChart) -> String {
    let w = 960.0;
    let label_w = ch.rows.iter().map(|r| text_width(&r.label, 13.0)).fold(60.0, f64::max).min(330.0) + 16.0;
    let note_w = ch.rows.iter().map(|r| text_width(&r.note, 12.0)).fold(0.0, f64::max) + 16.0;
    let row_h = 30.0;
    let x0 = label_w + 8.0;
    let x1 = w - note_w - 12.0;

    // Legend first, to know its height.
    let mut legend = String::new();
    let items: Vec<(Key, String)> = ch.series.iter().map(|(n, col)| (Key::Swatch(col), n.clone())).collect();
    let legend_h = legend_row(&mut legend, &items, x0, 16.0, w - x0 - 12.0);
    let y0 = 10.0 + legend_h + 4.0;
    let y1 = y0 + row_h * ch.rows.len() as f64;
    let h = y1 + 56.0;

    let axis = ValueAxis::new(ch, x0, x1);
    let mut out = String::new();
    open_figure(&mut out, ch.kind, w, h, &ch.title);
    out.push_str(&legend);
    axis.draw(&mut out, y0, y1, &ch.axis_title);
    bars(&mut out, ch, &axis, y0, row_h);
    close_figure(&mut out, &ch.caption);
    out
}

/// One bar per row, `row_h` high from `y0` down: the label before it, one segment per series
/// (with a tooltip), the note after it.
fn bars(out: &mut String, ch: &BarChart, axis: &ValueAxis, y0: f64, row_h: f64) {
    let (x0, bar_h) = (axis.x0, 18.0);
    let _ = writeln!(out, "<g class=\"bars\">");
    for (i, row) in ch.rows.iter().enumerate() {
        let top = y0 + row_h * i as f64;
        let by = top + (row_h - bar_h) / 2.0;
        text(out, x0 - 10.0, top + row_h / 2.0 + 4.5, " text-anchor=\"end\" font-size=\"13\"", &short(&row.label, 48));
        let mut acc = 0.0;
        for (s, v) in row.values.iter().enumerate() {
            if !v.is_finite() || *v <= 0.0 {
                continue;
            }
            let (xa, xb) = (axis.px(acc), axis.px(acc + v));
            acc += v;
            let (name, col) = ch.series.get(s).map(|(n, c)| (n.as_str(), *c)).unwrap_or(("", series_colour(s)));
            let tip = match ch.axis {
                Axis::Duration => format::duration(*v),
                Axis::Percent => format::pct(*v),
            };
            let _ = writeln!(
                out,
                "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{col}\"><title>{}</title></rect>",
                c(xa),
                c(by),
                c((xb - xa).max(0.5)),
                c(bar_h),
                esc(&format!("{}: {name} {tip}", row.label))
            );
        }
        text(out, axis.px(acc) + 6.0, top + row_h / 2.0 + 4.0, &format!(" fill=\"{INK}\""), &row.note);
    }
    let _ = writeln!(out, "</g>");
}

/// A histogram of (bucket upper bound, count) with one bar per bucket, equal widths (token
/// buckets are usually powers of two, so the x axis reads as a log axis).
pub fn histogram(
    title: &str,
    caption: &str,
    buckets: &[(f64, u64)],
    series: &str,
    colour: &'static str,
    x_title: &str,
) -> String {
    let (w, h) = (470.0, 300.0);
    let (ml, mr, mb) = (58.0, 14.0, 64.0);
    let mut out = String::new();
    open_figure(&mut out, "tokens", w, h, title);
    let legend_h = legend_row(&mut out, &[(Key::Swatch(colour), series.to_string())], ml, 14.0, w - ml - mr);
    let (x0, x1, y0, y1) = (ml, w - mr, 8.0 + legend_h + 8.0, h - mb);
    let max = buckets.iter().map(|b| b.1).max().unwrap_or(0) as f64;
    let step = format::nice_step(max.max(1.0), 4).max(1.0);
    let n_steps = (max / step - 1e-9).ceil().max(1.0);
    let top = n_steps * step;
    let py = |v: f64| y1 - v / top * (y1 - y0);
    let _ = writeln!(out, "<g class=\"grid\" stroke=\"{GRID}\">");
    for i in 0..=(n_steps as i64) {
        let y = py(i as f64 * step);
        line(&mut out, x0, y, x1, y, "");
    }
    let _ = writeln!(out, "</g>");
    let _ = writeln!(out, "<g class=\"ticks\" fill=\"{MUTED}\">");
    for i in 0..=(n_steps as i64) {
        let v = i as f64 * step;
        text(&mut out, x0 - 7.0, py(v) + 4.0, " text-anchor=\"end\"", &format::count(v));
    }
    let n = buckets.len().max(1) as f64;
    let bw = (x1 - x0) / n;
    let every = if bw < 22.0 { 2 } else { 1 };
    for (i, (ub, _)) in buckets.iter().enumerate() {
        if i % every == 0 {
            text(
                &mut out,
                x0 + bw * (i as f64 + 0.5),
                y1 + 16.0,
                " text-anchor=\"middle\" font-size=\"11\"",
                &format::bucket(*ub),
            );
        }
    }
    let _ = writeln!(out, "</g>");
    let _ = writeln!(out, "<g class=\"bars\" fill=\"{colour}\">");
    for (i, (ub, cnt)) in buckets.iter().enumerate() {
        let y = py(*cnt as f64);
        let lo = if i == 0 { 0.0 } else { buckets[i - 1].0 };
        let _ = writeln!(
            out,
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"><title>{}</title></rect>",
            c(x0 + bw * i as f64 + 1.0),
            c(y),
            c((bw - 2.0).max(1.0)),
            c(y1 - y),
            esc(&format!("{}–{}: {} requests", format::bucket(lo), format::bucket(*ub), format::count(*cnt as f64)))
        );
    }
    let _ = writeln!(out, "</g>");
    axis_line(&mut out, x0, y1, x1, y1);
    axis_title(&mut out, (x0 + x1) / 2.0, h - 22.0, "12.5", x_title);
    text(
        &mut out,
        (x0 + x1) / 2.0,
        h - 7.0,
        &format!(" text-anchor=\"middle\" font-size=\"11\" fill=\"{MUTED}\""),
        "bucket upper bound, log scale",
    );
    y_axis_title(&mut out, 14.0, (y0 + y1) / 2.0, "12.5", "Requests (count)");
    close_figure(&mut out, caption);
    out
}
