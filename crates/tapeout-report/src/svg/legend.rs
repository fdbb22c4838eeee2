//! Legends: [`Key`] marks with their labels, flowing in a row or stacked in a column.

use std::fmt::Write;

use super::{MUTED, c, line, text, text_width};

/// One legend entry.
#[derive(Debug, Clone)]
pub enum Key {
    /// A filled square.
    Swatch(&'static str),
    /// A filled circle of the given radius.
    Dot(&'static str, f64),
    /// A line sample; `true` = dashed.
    Line(&'static str, bool),
    /// An outlined circle of the given radius (size keys).
    Ring(f64),
}

fn key_mark(out: &mut String, key: &Key, x: f64, cy: f64) -> f64 {
    match key {
        Key::Swatch(col) => {
            let _ = writeln!(
                out,
                "<rect x=\"{}\" y=\"{}\" width=\"12\" height=\"12\" rx=\"2\" fill=\"{col}\"/>",
                c(x),
                c(cy - 6.0)
            );
            18.0
        }
        Key::Dot(col, r) => {
            let _ = writeln!(
                out,
                "<circle cx=\"{}\" cy=\"{}\" r=\"{}\" fill=\"{col}\" fill-opacity=\"0.8\" \
                 stroke=\"#fff\"/>",
                c(x + r),
                c(cy),
                c(*r)
            );
            2.0 * r + 6.0
        }
        Key::Line(col, dashed) => {
            let dash = if *dashed { " stroke-dasharray=\"6 4\"" } else { "" };
            line(out, x, cy, x + 22.0, cy, &format!(" stroke=\"{col}\" stroke-width=\"2.5\"{dash}"));
            28.0
        }
        Key::Ring(r) => {
            let _ = writeln!(
                out,
                "<circle cx=\"{}\" cy=\"{}\" r=\"{}\" fill=\"none\" stroke=\"{MUTED}\"/>",
                c(x + r),
                c(cy),
                c(*r)
            );
            2.0 * r + 6.0
        }
    }
}

/// Draws a legend flowing left to right from (x, y) (y = centre of the first row), wrapping at
/// `max_w`. Returns the height used.
pub(super) fn legend_row(out: &mut String, items: &[(Key, String)], x: f64, y: f64, max_w: f64) -> f64 {
    let _ = writeln!(out, "<g class=\"legend\">");
    let (mut cx, mut cy) = (x, y);
    for (key, label) in items {
        let w = 18.0 + text_width(label, 12.0) + 18.0;
        if cx > x && cx + w > x + max_w {
            cx = x;
            cy += 20.0;
        }
        let dx = key_mark(out, key, cx, cy);
        text(out, cx + dx, cy + 4.0, "", label);
        cx += dx + text_width(label, 12.0) + 18.0;
    }
    let _ = writeln!(out, "</g>");
    cy - y + 20.0
}

/// Draws a legend as a column at (x, y). Returns the y below it.
pub(super) fn legend_column(out: &mut String, items: &[(Key, String)], x: f64, y: f64) -> f64 {
    let _ = writeln!(out, "<g class=\"legend\">");
    let mut cy = y;
    for (key, label) in items {
        let h = match key {
            Key::Ring(r) | Key::Dot(_, r) => (2.0 * r + 6.0).max(20.0),
            _ => 20.0,
        };
        let mid = cy + h / 2.0;
        let dx = key_mark(out, key, x, mid);
        let tx = match key {
            Key::Ring(_) | Key::Dot(..) => x + dx.max(30.0),
            _ => x + dx,
        };
        text(out, tx, mid + 4.0, "", label);
        cy += h;
    }
    let _ = writeln!(out, "</g>");
    cy
}
