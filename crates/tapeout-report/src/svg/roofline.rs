//! The roofline chart: log-log axes, the roofs, one circle per point, labels and the legend.

use std::fmt::Write;

use super::axis::LogFrame;
use super::labels::{Obstacles, Rect, Segment, point_labels, roof_labels};
use super::legend::{Key, legend_column};
use super::{COMPUTE, INK, MEMORY, UNKNOWN, bound_colour, c, close_figure, esc, line, open_figure, short, text};
use crate::format;
use crate::model::{Roofline, RooflinePoint};

/// Log-log roofline: achieved FLOP/s against arithmetic intensity, with the memory roof
/// (slope = bandwidth) up to the highest ridge, one horizontal roof per compute roof from its
/// ridge on, and one circle per point, its area proportional to the point's share of time and
/// its colour its bound.
pub fn roofline(r: &Roofline, title: &str, caption: &str) -> String {
    let (w, h) = (960.0, 500.0);
    let (ml, mr, mt, mb) = (82.0, 220.0, 22.0, 62.0);
    let (x0, x1, y0, y1) = (ml, w - mr, mt, h - mb);

    let bw = (r.memory_roof.is_finite() && r.memory_roof > 0.0).then_some(r.memory_roof);
    let mut roofs: Vec<(&str, f64)> =
        r.compute_roofs.iter().filter(|(_, v)| v.is_finite() && *v > 0.0).map(|(l, v)| (l.as_str(), *v)).collect();
    roofs.sort_by(|a, b| b.1.total_cmp(&a.1));
    let pts: Vec<_> = r
        .points
        .iter()
        .filter(|p| p.intensity.is_finite() && p.intensity > 0.0 && p.achieved.is_finite() && p.achieved > 0.0)
        .collect();

    let mut xs: Vec<f64> = pts.iter().map(|p| p.intensity).collect();
    let mut ys: Vec<f64> = pts.iter().map(|p| p.achieved).collect();
    if let Some(bw) = bw {
        xs.extend(roofs.iter().map(|(_, v)| v / bw));
    }
    ys.extend(roofs.iter().map(|(_, v)| *v));
    let f = LogFrame::fit((x0, x1, y0, y1), &xs, &ys, bw);

    let mut out = String::new();
    open_figure(&mut out, "roofline", w, h, title);
    f.draw(&mut out, h - 16.0, "Arithmetic intensity (FLOP/byte, log scale)", "Performance (FLOP/s, log scale)");

    let (mem_seg, segments) = draw_roofs(&mut out, &f, bw, &roofs);
    // Each point's circle: centre and radius.
    let marks: Vec<(f64, f64, f64)> =
        pts.iter().map(|p| (f.px(p.intensity), f.py(p.achieved), radius(p.time_share))).collect();
    let circles = marks.iter().map(|&(cx, cy, rr)| Rect::new(cx - rr, cy - rr, 2.0 * rr, 2.0 * rr)).collect();
    let ridge = match (bw, roofs.first()) {
        (Some(bw), Some(top)) => Some((f.px(top.1 / bw), f.py(top.1), f.px(top.1 / bw), y1)),
        _ => None,
    };
    let mut obstacles = Obstacles::new(circles, segments, ridge);
    roof_labels(&mut out, &f, &roofs, bw, mem_seg, &mut obstacles);

    // Points: largest first so small ones stay visible on top.
    let mut order: Vec<usize> = (0..pts.len()).collect();
    order.sort_by(|&a, &b| pts[b].time_share.total_cmp(&pts[a].time_share).then(a.cmp(&b)));
    draw_points(&mut out, &pts, &marks, &order);
    point_labels(&mut out, &f, &pts, &marks, &order, &mut obstacles);

    legend(&mut out, r, &pts, roofs.len(), x1 + 22.0, y0);
    close_figure(&mut out, caption);
    out
}

/// Radius of a point's circle: its area is proportional to the share of time.
fn radius(share: f64) -> f64 {
    (26.0 * share.clamp(0.0, 1.0).sqrt()).max(3.5)
}

/// Roofs, as segments (also obstacles for labels): returns the memory roof's segment, if drawn,
/// and every roof's.
fn draw_roofs(
    out: &mut String,
    f: &LogFrame,
    bw: Option<f64>,
    roofs: &[(&str, f64)],
) -> (Option<Segment>, Vec<Segment>) {
    let mut segments: Vec<Segment> = Vec::new();
    let mem_seg = match (bw, roofs.first()) {
        (Some(bw), Some(top)) => {
            let xa = 10f64.powf(f.lx0).max(10f64.powf(f.ly0) / bw);
            let ridge = top.1 / bw;
            Some((f.px(xa), f.py(bw * xa), f.px(ridge), f.py(top.1)))
        }
        _ => None,
    };
    segments.extend(mem_seg);
    let _ = writeln!(
        out,
        "<g class=\"roofs\" fill=\"none\" stroke=\"{INK}\" stroke-width=\"2.5\" stroke-linecap=\"round\">"
    );
    if let Some((ax, ay, bx, by)) = mem_seg {
        line(out, ax, ay, bx, by, "");
    }
    for (i, (_, v)) in roofs.iter().enumerate() {
        let xa = bw.map_or(f.x0, |bw| f.px(v / bw).max(f.x0));
        let dash = if i == 0 { "" } else { " stroke-dasharray=\"7 5\" stroke-width=\"2\"" };
        line(out, xa, f.py(*v), f.x1, f.py(*v), dash);
        segments.push((xa, f.py(*v), f.x1, f.py(*v)));
    }
    let _ = writeln!(out, "</g>");
    (mem_seg, segments)
}

/// One circle per point, in `order`, with a tooltip.
fn draw_points(out: &mut String, pts: &[&RooflinePoint], marks: &[(f64, f64, f64)], order: &[usize]) {
    let _ = writeln!(out, "<g class=\"points\">");
    for &i in order {
        let p = pts[i];
        let (cx, cy, rr) = marks[i];
        let _ = writeln!(
            out,
            "<circle cx=\"{}\" cy=\"{}\" r=\"{}\" fill=\"{}\" fill-opacity=\"0.72\" stroke=\"#fff\" \
             stroke-width=\"1.5\"><title>{}</title></circle>",
            c(cx),
            c(cy),
            c(rr),
            bound_colour(&p.bound),
            esc(&format!(
                "{}: {} at {}, {} of time, {}-bound",
                p.label,
                format::flops(p.achieved),
                format::intensity(p.intensity),
                format::pct(p.time_share),
                p.bound
            ))
        );
    }
    let _ = writeln!(out, "</g>");
}

/// Legend, in the right margin from (`lx`, `y0`): the bounds, the roofs and the marker sizes.
fn legend(out: &mut String, r: &Roofline, pts: &[&RooflinePoint], n_roofs: usize, lx: f64, y0: f64) {
    let mut items: Vec<(Key, String)> = vec![
        (Key::Dot(COMPUTE, 6.0), "compute-bound".to_string()),
        (Key::Dot(MEMORY, 6.0), "memory-bound".to_string()),
    ];
    if pts.iter().any(|p| p.bound != "compute" && p.bound != "memory") {
        items.push((Key::Dot(UNKNOWN, 6.0), "bound unknown".to_string()));
    }
    items.push((Key::Line(INK, false), "roof (device peak)".to_string()));
    if n_roofs > 1 {
        items.push((Key::Line(INK, true), "lower compute roof".to_string()));
    }
    text(out, lx, y0 + 10.0, " font-weight=\"600\"", &format!("{} peaks", short(&r.device, 24)));
    let below = legend_column(out, &items, lx, y0 + 18.0);
    text(out, lx, below + 22.0, " font-weight=\"600\"", "Marker area = share of time");
    let sizes = [(0.05, "5%"), (0.2, "20%"), (0.5, "50%")];
    let size_items: Vec<(Key, String)> = sizes.iter().map(|(s, l)| (Key::Ring(radius(*s)), l.to_string())).collect();
    legend_column(out, &size_items, lx, below + 30.0);
}
