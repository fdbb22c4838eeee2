//! Axes: axis lines and titles shared by every chart, and the roofline's log-log frame (decade
//! ranges, grid, ticks).

use std::fmt::Write;

use super::{AXIS, GRID, MUTED, c, esc, line, min_max, text};
use crate::format;

/// An axis line.
pub(super) fn axis_line(out: &mut String, x1: f64, y1: f64, x2: f64, y2: f64) {
    line(out, x1, y1, x2, y2, &format!(" stroke=\"{AXIS}\" stroke-width=\"1.2\""));
}

/// A horizontal axis title centred on `x`, in a font of `size` px.
pub(super) fn axis_title(out: &mut String, x: f64, y: f64, size: &str, s: &str) {
    text(
        out,
        x,
        y,
        &format!(" class=\"axis-title\" text-anchor=\"middle\" font-size=\"{size}\" font-weight=\"600\""),
        s,
    );
}

/// A vertical axis title (reading upwards) centred on (`x`, `y`), in a font of `size` px.
pub(super) fn y_axis_title(out: &mut String, x: f64, y: f64, size: &str, s: &str) {
    let _ = writeln!(
        out,
        "<text class=\"axis-title\" transform=\"translate({} {}) rotate(-90)\" \
         text-anchor=\"middle\" font-size=\"{size}\" font-weight=\"600\">{}</text>",
        c(x),
        c(y),
        esc(s)
    );
}

/// The plot area of a log-log chart: pixels (`x0`..`x1` left to right, `y0`..`y1` top to bottom)
/// and the decades shown (log10 of the values at the edges).
#[derive(Debug, Clone, Copy)]
pub(super) struct LogFrame {
    pub x0: f64,
    pub x1: f64,
    pub y0: f64,
    pub y1: f64,
    pub lx0: f64,
    pub lx1: f64,
    pub ly0: f64,
    pub ly1: f64,
}

impl LogFrame {
    /// Axis ranges for the values `xs` and `ys`, in decades, snapped to half decades with some
    /// room around the data; with a memory roof of bandwidth `bw`, low enough to show where it
    /// enters at the left edge.
    pub fn fit((x0, x1, y0, y1): (f64, f64, f64, f64), xs: &[f64], ys: &[f64], bw: Option<f64>) -> Self {
        let (xmin, xmax) = min_max(xs).unwrap_or((0.1, 1000.0));
        let half_down = |l: f64| (l * 2.0).floor() / 2.0;
        let half_up = |l: f64| (l * 2.0).ceil() / 2.0;
        let mut lx0 = half_down(xmin.log10() - 0.25);
        let mut lx1 = half_up(xmax.log10() + 0.25);
        while lx1 - lx0 < 3.0 {
            lx0 -= 0.5;
            lx1 += 0.5;
        }
        let (ymin_data, ymax) = min_max(ys).unwrap_or((1e12, 1e15));
        let mut ymin = ymin_data;
        if let Some(bw) = bw {
            ymin = ymin.min(bw * 10f64.powf(lx0));
        }
        let ly1 = half_up(ymax.log10() + 0.2);
        // At most 7 decades (points further down are still drawn, on the bottom edge).
        let ly0 = half_down(ymin.log10() - 0.2).max(ly1 - 7.0).min(ly1 - 3.0);
        Self { x0, x1, y0, y1, lx0, lx1, ly0, ly1 }
    }

    /// The x pixel of the value `v`.
    pub fn px(&self, v: f64) -> f64 {
        self.x0 + (v.log10() - self.lx0) / (self.lx1 - self.lx0) * (self.x1 - self.x0)
    }

    /// The y pixel of the value `v` (on the bottom edge when below it).
    pub fn py(&self, v: f64) -> f64 {
        (self.y1 - (v.log10() - self.ly0) / (self.ly1 - self.ly0) * (self.y1 - self.y0)).min(self.y1)
    }

    /// Grid and ticks at whole decades, the two axes and their titles (the x title at `title_y`).
    pub fn draw(&self, out: &mut String, title_y: f64, x_title: &str, y_title: &str) {
        let Self { x0, x1, y0, y1, lx0, lx1, ly0, ly1 } = *self;
        let (dx0, dx1) = (lx0.ceil() as i32, lx1.floor() as i32);
        let (dy0, dy1) = (ly0.ceil() as i32, ly1.floor() as i32);
        let xstep = if dx1 - dx0 > 8 { 2 } else { 1 };
        let ystep = if dy1 - dy0 > 8 { 2 } else { 1 };
        let _ = writeln!(out, "<g class=\"grid\" stroke=\"{GRID}\">");
        for d in dx0..=dx1 {
            let x = self.px(10f64.powi(d));
            line(out, x, y0, x, y1, "");
        }
        for d in dy0..=dy1 {
            let y = self.py(10f64.powi(d));
            line(out, x0, y, x1, y, "");
        }
        let _ = writeln!(out, "</g>");
        let _ = writeln!(out, "<g class=\"ticks\" fill=\"{MUTED}\" font-size=\"12\">");
        for d in dx0..=dx1 {
            let v = 10f64.powi(d);
            let x = self.px(v);
            line(out, x, y1, x, y1 + 5.0, &format!(" stroke=\"{AXIS}\""));
            if (d - dx0) % xstep == 0 {
                text(out, x, y1 + 19.0, " text-anchor=\"middle\"", &format::decade(v));
            }
        }
        for d in dy0..=dy1 {
            let v = 10f64.powi(d);
            let y = self.py(v);
            line(out, x0 - 5.0, y, x0, y, &format!(" stroke=\"{AXIS}\""));
            if (d - dy0) % ystep == 0 {
                text(out, x0 - 9.0, y + 4.0, " text-anchor=\"end\"", &format::decade(v));
            }
        }
        let _ = writeln!(out, "</g>");
        axis_line(out, x0, y1, x1, y1);
        axis_line(out, x0, y0, x0, y1);
        axis_title(out, (x0 + x1) / 2.0, title_y, "13", x_title);
        y_axis_title(out, 18.0, (y0 + y1) / 2.0, "13", y_title);
    }
}
