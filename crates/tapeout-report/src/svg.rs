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

use std::fmt::Write;

use crate::format;
use crate::model::Roofline;

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
fn legend_row(out: &mut String, items: &[(Key, String)], x: f64, y: f64, max_w: f64) -> f64 {
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
fn legend_column(out: &mut String, items: &[(Key, String)], x: f64, y: f64) -> f64 {
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

    // Axis ranges, in decades, snapped to half decades with some room around the data.
    let mut xs: Vec<f64> = pts.iter().map(|p| p.intensity).collect();
    let mut ys: Vec<f64> = pts.iter().map(|p| p.achieved).collect();
    if let Some(bw) = bw {
        xs.extend(roofs.iter().map(|(_, v)| v / bw));
    }
    ys.extend(roofs.iter().map(|(_, v)| *v));
    let (xmin, xmax) = min_max(&xs).unwrap_or((0.1, 1000.0));
    let half_down = |l: f64| (l * 2.0).floor() / 2.0;
    let half_up = |l: f64| (l * 2.0).ceil() / 2.0;
    let mut lx0 = half_down(xmin.log10() - 0.25);
    let mut lx1 = half_up(xmax.log10() + 0.25);
    while lx1 - lx0 < 3.0 {
        lx0 -= 0.5;
        lx1 += 0.5;
    }
    let (ymin_data, ymax) = min_max(&ys).unwrap_or((1e12, 1e15));
    let mut ymin = ymin_data;
    if let Some(bw) = bw {
        ymin = ymin.min(bw * 10f64.powf(lx0));
    }
    let ly1 = half_up(ymax.log10() + 0.2);
    // At most 7 decades (points further down are still drawn, on the bottom edge).
    let ly0 = half_down(ymin.log10() - 0.2).max(ly1 - 7.0).min(ly1 - 3.0);

    let px = |v: f64| x0 + (v.log10() - lx0) / (lx1 - lx0) * (x1 - x0);
    let py = |v: f64| (y1 - (v.log10() - ly0) / (ly1 - ly0) * (y1 - y0)).min(y1);

    let mut out = String::new();
    open_figure(&mut out, "roofline", w, h, title);
    // Grid and ticks at whole decades.
    let (dx0, dx1) = (lx0.ceil() as i32, lx1.floor() as i32);
    let (dy0, dy1) = (ly0.ceil() as i32, ly1.floor() as i32);
    let xstep = if dx1 - dx0 > 8 { 2 } else { 1 };
    let ystep = if dy1 - dy0 > 8 { 2 } else { 1 };
    let _ = writeln!(out, "<g class=\"grid\" stroke=\"{GRID}\">");
    for d in dx0..=dx1 {
        let x = px(10f64.powi(d));
        line(&mut out, x, y0, x, y1, "");
    }
    for d in dy0..=dy1 {
        let y = py(10f64.powi(d));
        line(&mut out, x0, y, x1, y, "");
    }
    let _ = writeln!(out, "</g>");
    let _ = writeln!(out, "<g class=\"ticks\" fill=\"{MUTED}\" font-size=\"12\">");
    for d in dx0..=dx1 {
        let v = 10f64.powi(d);
        let x = px(v);
        line(&mut out, x, y1, x, y1 + 5.0, &format!(" stroke=\"{AXIS}\""));
        if (d - dx0) % xstep == 0 {
            text(&mut out, x, y1 + 19.0, " text-anchor=\"middle\"", &format::decade(v));
        }
    }
    for d in dy0..=dy1 {
        let v = 10f64.powi(d);
        let y = py(v);
        line(&mut out, x0 - 5.0, y, x0, y, &format!(" stroke=\"{AXIS}\""));
        if (d - dy0) % ystep == 0 {
            text(&mut out, x0 - 9.0, y + 4.0, " text-anchor=\"end\"", &format::decade(v));
        }
    }
    let _ = writeln!(out, "</g>");
    line(&mut out, x0, y1, x1, y1, &format!(" stroke=\"{AXIS}\" stroke-width=\"1.2\""));
    line(&mut out, x0, y0, x0, y1, &format!(" stroke=\"{AXIS}\" stroke-width=\"1.2\""));
    text(
        &mut out,
        (x0 + x1) / 2.0,
        h - 16.0,
        " class=\"axis-title\" text-anchor=\"middle\" font-size=\"13\" font-weight=\"600\"",
        "Arithmetic intensity (FLOP/byte, log scale)",
    );
    let _ = writeln!(
        out,
        "<text class=\"axis-title\" transform=\"translate(18 {}) rotate(-90)\" \
         text-anchor=\"middle\" font-size=\"13\" font-weight=\"600\">{}</text>",
        c((y0 + y1) / 2.0),
        esc("Performance (FLOP/s, log scale)")
    );

    // Roofs, as segments (also obstacles for labels).
    let mut segments: Vec<(f64, f64, f64, f64)> = Vec::new();
    let mem_seg = match (bw, roofs.first()) {
        (Some(bw), Some(top)) => {
            let xa = 10f64.powf(lx0).max(10f64.powf(ly0) / bw);
            let ridge = top.1 / bw;
            Some((px(xa), py(bw * xa), px(ridge), py(top.1)))
        }
        _ => None,
    };
    segments.extend(mem_seg);
    let _ = writeln!(
        out,
        "<g class=\"roofs\" fill=\"none\" stroke=\"{INK}\" stroke-width=\"2.5\" stroke-linecap=\"round\">"
    );
    if let Some((ax, ay, bx, by)) = mem_seg {
        line(&mut out, ax, ay, bx, by, "");
    }
    for (i, (_, v)) in roofs.iter().enumerate() {
        let xa = bw.map_or(x0, |bw| px(v / bw).max(x0));
        let dash = if i == 0 { "" } else { " stroke-dasharray=\"7 5\" stroke-width=\"2\"" };
        line(&mut out, xa, py(*v), x1, py(*v), dash);
        segments.push((xa, py(*v), x1, py(*v)));
    }
    let _ = writeln!(out, "</g>");

    let radius = |share: f64| (26.0 * share.clamp(0.0, 1.0).sqrt()).max(3.5);
    let circles: Vec<Rect> = pts
        .iter()
        .map(|p| {
            let rr = radius(p.time_share);
            Rect::new(px(p.intensity) - rr, py(p.achieved) - rr, 2.0 * rr, 2.0 * rr)
        })
        .collect();
    let mut labels: Vec<Rect> = Vec::new();
    let ridge_seg = match (bw, roofs.first()) {
        (Some(bw), Some(top)) => Some((px(top.1 / bw), py(top.1), px(top.1 / bw), y1)),
        _ => None,
    };

    let _ = writeln!(out, "<g class=\"roof-labels\" font-size=\"12\">");
    let mut last_y = f64::NEG_INFINITY;
    for (name, v) in &roofs {
        let label = format!("{name} · {}", format::flops_peak(*v));
        let mut y = py(*v) - 7.0;
        if (y - last_y).abs() < 16.0 {
            y = py(*v) + 16.0;
        }
        last_y = y;
        let tw = text_width(&label, 12.0);
        labels.push(Rect::new(x1 - 6.0 - tw, y - 11.0, tw, 14.0));
        text(&mut out, x1 - 6.0, y, " text-anchor=\"end\" font-weight=\"600\"", &label);
    }
    if let (Some(bw), Some(top), Some((ax, ay, bx, by))) = (bw, roofs.first(), mem_seg) {
        // Memory roof label along the slope, where it covers no point.
        let angle = ((by - ay) / (bx - ax)).atan();
        let label = format!("memory · {}", format::bandwidth(bw));
        let tw = text_width(&label, 12.0);
        let (cos, sin) = (angle.cos(), angle.sin());
        let boxes_at = |t: f64| -> Vec<Rect> {
            let (lx, ly) = (ax + (bx - ax) * t, ay + (by - ay) * t);
            (0..8)
                .map(|k| {
                    let d = tw * (k as f64 + 0.5) / 8.0;
                    // Centre of the text band: along the line by d, 12 px above it.
                    let (cx, cy) = (lx + d * cos + 12.0 * sin, ly + d * sin - 12.0 * cos);
                    Rect::new(cx - tw / 16.0, cy - 7.0, tw / 8.0, 14.0)
                })
                .collect()
        };
        let seg_len = ((bx - ax).powi(2) + (by - ay).powi(2)).sqrt();
        let t_max = ((seg_len - tw - 8.0) / seg_len).max(0.0);
        let ts = [0.06, 0.12, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7];
        let t = ts
            .iter()
            .copied()
            .filter(|t| *t <= t_max)
            .find(|t| boxes_at(*t).iter().all(|b| !circles.iter().any(|c| c.overlaps(b))))
            .unwrap_or(0.06_f64.min(t_max));
        labels.extend(boxes_at(t));
        let (lx, ly) = (ax + (bx - ax) * t, ay + (by - ay) * t);
        let _ = writeln!(
            out,
            "<text transform=\"translate({} {}) rotate({})\" dy=\"-8\" font-weight=\"600\">{}</text>",
            c(lx),
            c(ly),
            c(angle.to_degrees()),
            esc(&label)
        );
        // Ridge of the top roof.
        let ridge = top.1 / bw;
        let rx = px(ridge);
        line(&mut out, rx, py(top.1), rx, y1, &format!(" stroke=\"{AXIS}\" stroke-dasharray=\"2 4\""));
        let rl = format!("ridge {}", format::intensity(ridge));
        let rw = text_width(&rl, 11.0);
        let (rlx, anchor) = if rx + 5.0 + rw <= x1 { (rx + 5.0, "start") } else { (rx - 5.0, "end") };
        let left = if anchor == "start" { rlx } else { rlx - rw };
        labels.push(Rect::new(left, y1 - 18.0, rw, 14.0));
        text(&mut out, rlx, y1 - 8.0, &format!(" text-anchor=\"{anchor}\" fill=\"{MUTED}\" font-size=\"11\""), &rl);
    }
    let _ = writeln!(out, "</g>");

    // Points: largest first so small ones stay visible on top.
    let mut order: Vec<usize> = (0..pts.len()).collect();
    order.sort_by(|&a, &b| pts[b].time_share.total_cmp(&pts[a].time_share).then(a.cmp(&b)));
    let _ = writeln!(out, "<g class=\"points\">");
    for &i in &order {
        let p = pts[i];
        let (cx, cy, rr) = (px(p.intensity), py(p.achieved), radius(p.time_share));
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

    // Point labels: beside their circle, or a little away with a leader line, at the candidate
    // spot that overlaps least and is nearest its own circle.
    let (mut leaders, mut texts) = (String::new(), String::new());
    for &i in &order {
        let p = pts[i];
        let (cx, cy, rr) = (px(p.intensity), py(p.achieved), radius(p.time_share));
        let tw = text_width(&p.label, 12.0);
        let mut cands: Vec<(f64, f64, &str, bool)> = Vec::new();
        for (gap, far) in [(0.0, false), (16.0, true), (34.0, true), (52.0, true)] {
            let (r1, d) = (rr + gap, (rr + gap) * std::f64::consts::FRAC_1_SQRT_2);
            cands.extend([
                (cx + r1 + 5.0, cy + 4.0, "start", far),
                (cx - r1 - 5.0, cy + 4.0, "end", far),
                (cx + d + 3.0, cy + d + 12.0, "start", far),
                (cx + d + 3.0, cy - d - 3.0, "start", far),
                (cx - d - 3.0, cy + d + 12.0, "end", far),
                (cx - d - 3.0, cy - d - 3.0, "end", far),
                (cx, cy + r1 + 15.0, "middle", far),
                (cx, cy - r1 - 6.0, "middle", far),
            ]);
        }
        let rect_of = |(tx, ty, anchor, _): (f64, f64, &str, bool)| {
            let left = match anchor {
                "start" => tx,
                "end" => tx - tw,
                _ => tx - tw / 2.0,
            };
            Rect::new(left - 1.0, ty - 11.0, tw + 2.0, 14.0)
        };
        // Leader from the circle's edge towards the nearest point of the label.
        let leader = |rc: &Rect| {
            let (nx, ny) = (cx.clamp(rc.x, rc.x + rc.w), cy.clamp(rc.y, rc.y + rc.h));
            let len = ((nx - cx).powi(2) + (ny - cy).powi(2)).sqrt().max(1e-9);
            let (ux, uy) = ((nx - cx) / len, (ny - cy) / len);
            (cx + ux * (rr + 1.0), cy + uy * (rr + 1.0), nx - ux * 2.0, ny - uy * 2.0)
        };
        let cost = |k: usize, cand: (f64, f64, &str, bool)| {
            let rc = rect_of(cand);
            let outside = rc.x < x0 + 2.0 || rc.x + rc.w > x1 - 2.0 || rc.y < y0 || rc.y + rc.h > y1 - 2.0;
            let others = circles.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, cr)| cr);
            let label_hits = labels.iter().filter(|l| l.overlaps(&rc)).count();
            let circle_hits = others.clone().filter(|cr| cr.overlaps(&rc)).count();
            // A label close to another point reads as that point's.
            let near = others.clone().filter(|cr| cr.grow(16.0, 6.0).overlaps(&rc)).count();
            let crossings = segments.iter().filter(|s| rc.hits_segment(**s)).count();
            let ridge = ridge_seg.is_some_and(|s| rc.hits_segment(s)) as usize;
            let (leader_labels, leader_circles) = if cand.3 {
                let l = leader(&rc);
                (labels.iter().filter(|r| r.hits_segment(l)).count(), others.filter(|r| r.hits_segment(l)).count())
            } else {
                (0, 0)
            };
            (outside as usize * 1000
                + label_hits * 300
                + circle_hits * 100
                + leader_labels * 60
                + near * 40
                + leader_circles * 30
                + crossings * 10
                + ridge * 3
                + cand.3 as usize * 25) as f64
                + k as f64 * 0.5
        };
        let chosen = cands
            .iter()
            .copied()
            .enumerate()
            .min_by(|(ka, a), (kb, b)| cost(*ka, *a).total_cmp(&cost(*kb, *b)))
            .map(|(_, cand)| cand)
            .unwrap_or(cands[0]);
        let rc = rect_of(chosen);
        labels.push(rc);
        if chosen.3 {
            let (ax, ay, bx, by) = leader(&rc);
            line(&mut leaders, ax, ay, bx, by, "");
        }
        let _ = writeln!(
            texts,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"{}\" paint-order=\"stroke\" stroke=\"#fff\" \
             stroke-width=\"3\" stroke-linejoin=\"round\">{}</text>",
            c(chosen.0),
            c(chosen.1),
            chosen.2,
            esc(&p.label)
        );
    }
    let _ = writeln!(out, "<g class=\"leaders\" stroke=\"{MUTED}\" stroke-width=\"1\">\n{leaders}</g>");
    let _ = writeln!(out, "<g class=\"point-labels\" font-size=\"12\">\n{texts}</g>");

    // Legend, in the right margin.
    let mut items: Vec<(Key, String)> = vec![
        (Key::Dot(COMPUTE, 6.0), "compute-bound".to_string()),
        (Key::Dot(MEMORY, 6.0), "memory-bound".to_string()),
    ];
    if pts.iter().any(|p| p.bound != "compute" && p.bound != "memory") {
        items.push((Key::Dot(UNKNOWN, 6.0), "bound unknown".to_string()));
    }
    items.push((Key::Line(INK, false), "roof (device peak)".to_string()));
    if roofs.len() > 1 {
        items.push((Key::Line(INK, true), "lower compute roof".to_string()));
    }
    let lx = x1 + 22.0;
    text(&mut out, lx, y0 + 10.0, " font-weight=\"600\"", &format!("{} peaks", short(&r.device, 24)));
    let below = legend_column(&mut out, &items, lx, y0 + 18.0);
    text(&mut out, lx, below + 22.0, " font-weight=\"600\"", "Marker area = share of time");
    let sizes = [(0.05, "5%"), (0.2, "20%"), (0.5, "50%")];
    let size_items: Vec<(Key, String)> = sizes.iter().map(|(s, l)| (Key::Ring(radius(*s)), l.to_string())).collect();
    legend_column(&mut out, &size_items, lx, below + 30.0);
    close_figure(&mut out, caption);
    out
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

#[derive(Debug, Clone, Copy)]
struct Rect {
    x: f64,
    y: f64,
    w: f64,
    h: f64,
}

impl Rect {
    fn new(x: f64, y: f64, w: f64, h: f64) -> Self {
        Self { x, y, w, h }
    }
    fn overlaps(&self, o: &Rect) -> bool {
        self.x < o.x + o.w && o.x < self.x + self.w && self.y < o.y + o.h && o.y < self.y + self.h
    }
    fn grow(&self, dx: f64, dy: f64) -> Rect {
        Rect::new(self.x - dx, self.y - dy, self.w + 2.0 * dx, self.h + 2.0 * dy)
    }
    /// Whether the segment (ax, ay)–(bx, by) crosses this rectangle (Liang–Barsky clipping).
    fn hits_segment(&self, (ax, ay, bx, by): (f64, f64, f64, f64)) -> bool {
        let (dx, dy) = (bx - ax, by - ay);
        let (mut t0, mut t1) = (0.0f64, 1.0f64);
        for (p, q) in [(-dx, ax - self.x), (dx, self.x + self.w - ax), (-dy, ay - self.y), (dy, self.y + self.h - ay)] {
            if p == 0.0 {
                if q < 0.0 {
                    return false;
                }
            } else {
                let t = q / p;
                if p < 0.0 {
                    t0 = t0.max(t);
                } else {
                    t1 = t1.min(t);
                }
                if t0 > t1 {
                    return false;
                }
            }
        }
        true
    }
}

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

/// Renders a [`BarChart`].
pub fn bar_chart(ch: &BarChart) -> String {
    let w = 960.0;
    let label_w = ch.rows.iter().map(|r| text_width(&r.label, 13.0)).fold(60.0, f64::max).min(330.0) + 16.0;
    let note_w = ch.rows.iter().map(|r| text_width(&r.note, 12.0)).fold(0.0, f64::max) + 16.0;
    let (row_h, bar_h) = (30.0, 18.0);
    let x0 = label_w + 8.0;
    let x1 = w - note_w - 12.0;

    // Legend first, to know its height.
    let mut legend = String::new();
    let items: Vec<(Key, String)> = ch.series.iter().map(|(n, col)| (Key::Swatch(col), n.clone())).collect();
    let legend_h = legend_row(&mut legend, &items, x0, 16.0, w - x0 - 12.0);
    let y0 = 10.0 + legend_h + 4.0;
    let y1 = y0 + row_h * ch.rows.len() as f64;
    let h = y1 + 56.0;

    let total = |r: &BarRow| r.values.iter().filter(|v| v.is_finite()).sum::<f64>();
    let data_max = ch.rows.iter().map(total).fold(0.0, f64::max);
    let (scale, unit) = match ch.axis {
        Axis::Duration => format::duration_unit(data_max),
        Axis::Percent => (0.01, "%"),
    };
    let axis_max_units = ch.max.unwrap_or(data_max) / scale;
    let step = format::nice_step(axis_max_units.max(f64::MIN_POSITIVE), 5);
    let n_steps = (axis_max_units / step - 1e-9).ceil().max(1.0);
    let axis_end = n_steps * step * scale; // data units
    let pxv = |v: f64| x0 + (v / axis_end).clamp(0.0, 1.0) * (x1 - x0);

    let mut out = String::new();
    open_figure(&mut out, ch.kind, w, h, &ch.title);
    out.push_str(&legend);
    let _ = writeln!(out, "<g class=\"grid\" stroke=\"{GRID}\">");
    for i in 0..=(n_steps as i64) {
        let x = pxv(i as f64 * step * scale);
        line(&mut out, x, y0, x, y1, "");
    }
    let _ = writeln!(out, "</g>");
    let _ = writeln!(out, "<g class=\"ticks\" fill=\"{MUTED}\">");
    for i in 0..=(n_steps as i64) {
        let v = i as f64 * step;
        let x = pxv(v * scale);
        line(&mut out, x, y1, x, y1 + 5.0, &format!(" stroke=\"{AXIS}\""));
        text(&mut out, x, y1 + 19.0, " text-anchor=\"middle\"", &format::tick(v, step));
    }
    let _ = writeln!(out, "</g>");
    line(&mut out, x0, y0, x0, y1, &format!(" stroke=\"{AXIS}\" stroke-width=\"1.2\""));
    line(&mut out, x0, y1, x1, y1, &format!(" stroke=\"{AXIS}\" stroke-width=\"1.2\""));
    text(
        &mut out,
        (x0 + x1) / 2.0,
        y1 + 42.0,
        " class=\"axis-title\" text-anchor=\"middle\" font-size=\"13\" font-weight=\"600\"",
        &format!("{} ({unit})", ch.axis_title),
    );

    let _ = writeln!(out, "<g class=\"bars\">");
    for (i, row) in ch.rows.iter().enumerate() {
        let top = y0 + row_h * i as f64;
        let by = top + (row_h - bar_h) / 2.0;
        text(
            &mut out,
            x0 - 10.0,
            top + row_h / 2.0 + 4.5,
            " text-anchor=\"end\" font-size=\"13\"",
            &short(&row.label, 48),
        );
        let mut acc = 0.0;
        for (s, v) in row.values.iter().enumerate() {
            if !v.is_finite() || *v <= 0.0 {
                continue;
            }
            let (xa, xb) = (pxv(acc), pxv(acc + v));
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
        text(&mut out, pxv(acc) + 6.0, top + row_h / 2.0 + 4.0, &format!(" fill=\"{INK}\""), &row.note);
    }
    let _ = writeln!(out, "</g>");
    close_figure(&mut out, &ch.caption);
    out
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
    line(&mut out, x0, y1, x1, y1, &format!(" stroke=\"{AXIS}\" stroke-width=\"1.2\""));
    text(
        &mut out,
        (x0 + x1) / 2.0,
        h - 22.0,
        " class=\"axis-title\" text-anchor=\"middle\" font-size=\"12.5\" font-weight=\"600\"",
        x_title,
    );
    text(
        &mut out,
        (x0 + x1) / 2.0,
        h - 7.0,
        &format!(" text-anchor=\"middle\" font-size=\"11\" fill=\"{MUTED}\""),
        "bucket upper bound, log scale",
    );
    let _ = writeln!(
        out,
        "<text class=\"axis-title\" transform=\"translate(14 {}) rotate(-90)\" \
         text-anchor=\"middle\" font-size=\"12.5\" font-weight=\"600\">Requests (count)</text>",
        c((y0 + y1) / 2.0)
    );
    close_figure(&mut out, caption);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RooflinePoint;

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
