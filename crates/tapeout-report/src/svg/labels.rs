//! Label placement: each roof's and point's label goes where it covers the fewest points,
//! labels, roofs and leader lines, judged on estimated text boxes.

use std::fmt::Write;

use super::axis::LogFrame;
use super::{AXIS, MUTED, c, esc, line, text, text_width};
use crate::format;
use crate::model::RooflinePoint;

/// A line segment (x1, y1, x2, y2), in pixels.
pub(super) type Segment = (f64, f64, f64, f64);

/// What a label should not cover: the points' circles (by their bounding boxes, in point order;
/// a point's own circle is not in the way of its label), the labels placed so far, the roofs and
/// the ridge line of the top roof (when there is a memory roof).
#[derive(Debug, Clone)]
pub(super) struct Obstacles {
    circles: Vec<Rect>,
    labels: Vec<Rect>,
    segments: Vec<Segment>,
    ridge: Option<Segment>,
}

impl Obstacles {
    /// No label placed yet.
    pub fn new(circles: Vec<Rect>, segments: Vec<Segment>, ridge: Option<Segment>) -> Self {
        Self { circles, labels: Vec::new(), segments, ridge }
    }
}

/// The roofs' labels: each compute roof's at its right end, the memory roof's along its slope
/// where it covers no point, and the top roof's ridge (a dotted line down to the x axis).
pub(super) fn roof_labels(
    out: &mut String,
    f: &LogFrame,
    roofs: &[(&str, f64)],
    bw: Option<f64>,
    mem_seg: Option<Segment>,
    obstacles: &mut Obstacles,
) {
    let (x1, y1) = (f.x1, f.y1);
    let (px, py) = (|v: f64| f.px(v), |v: f64| f.py(v));
    let Obstacles { circles, labels, .. } = obstacles;
    let _ = writeln!(out, "<g class=\"roof-labels\" font-size=\"12\">");
    let mut last_y = f64::NEG_INFINITY;
    for (name, v) in roofs {
        let label = format!("{name} · {}", format::flops_peak(*v));
        let mut y = py(*v) - 7.0;
        if (y - last_y).abs() < 16.0 {
            y = py(*v) + 16.0;
        }
        last_y = y;
        let tw = text_width(&label, 12.0);
        labels.push(Rect::new(x1 - 6.0 - tw, y - 11.0, tw, 14.0));
        text(out, x1 - 6.0, y, " text-anchor=\"end\" font-weight=\"600\"", &label);
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
        line(out, rx, py(top.1), rx, y1, &format!(" stroke=\"{AXIS}\" stroke-dasharray=\"2 4\""));
        let rl = format!("ridge {}", format::intensity(ridge));
        let rw = text_width(&rl, 11.0);
        let (rlx, anchor) = if rx + 5.0 + rw <= x1 { (rx + 5.0, "start") } else { (rx - 5.0, "end") };
        let left = if anchor == "start" { rlx } else { rlx - rw };
        labels.push(Rect::new(left, y1 - 18.0, rw, 14.0));
        text(out, rlx, y1 - 8.0, &format!(" text-anchor=\"{anchor}\" fill=\"{MUTED}\" font-size=\"11\""), &rl);
    }
    let _ = writeln!(out, "</g>");
}

/// Point labels: beside their circle, or a little away with a leader line, at the candidate
/// spot that overlaps least and is nearest its own circle. `marks` are the circles (centre and
/// radius) of `pts`, labelled in `order`.
pub(super) fn point_labels(
    out: &mut String,
    f: &LogFrame,
    pts: &[&RooflinePoint],
    marks: &[(f64, f64, f64)],
    order: &[usize],
    obstacles: &mut Obstacles,
) {
    let (x0, x1, y0, y1) = (f.x0, f.x1, f.y0, f.y1);
    let Obstacles { circles, labels, segments, ridge: ridge_seg } = obstacles;
    let (mut leaders, mut texts) = (String::new(), String::new());
    for &i in order {
        let p = pts[i];
        let (cx, cy, rr) = marks[i];
        let tw = text_width(&p.label, 12.0);
        let cands = candidates(cx, cy, rr);
        let rect_of = |(tx, ty, anchor, _): Candidate| {
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
        let cost = |k: usize, cand: Candidate| {
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
}

/// A label spot: text anchor position (x, y), `text-anchor`, and whether it is away from the
/// circle (with a leader line).
type Candidate = (f64, f64, &'static str, bool);

/// The spots tried for the label of a circle at (`cx`, `cy`) of radius `rr`, nearest first:
/// eight around the circle, then the same eight further and further away.
fn candidates(cx: f64, cy: f64, rr: f64) -> Vec<Candidate> {
    let mut cands: Vec<Candidate> = Vec::new();
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
    cands
}

/// An axis-aligned box, in pixels: top-left corner and size.
#[derive(Debug, Clone, Copy)]
pub(super) struct Rect {
    x: f64,
    y: f64,
    w: f64,
    h: f64,
}

impl Rect {
    pub fn new(x: f64, y: f64, w: f64, h: f64) -> Self {
        Self { x, y, w, h }
    }
    fn overlaps(&self, o: &Rect) -> bool {
        self.x < o.x + o.w && o.x < self.x + self.w && self.y < o.y + o.h && o.y < self.y + self.h
    }
    fn grow(&self, dx: f64, dy: f64) -> Rect {
        Rect::new(self.x - dx, self.y - dy, self.w + 2.0 * dx, self.h + 2.0 * dy)
    }
    /// Whether the segment (ax, ay)–(bx, by) crosses this rectangle (Liang–Barsky clipping).
    fn hits_segment(&self, (ax, ay, bx, by): Segment) -> bool {
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
