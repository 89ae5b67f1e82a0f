//! Small line charts drawn by the server as inline SVG: no script, no client build.

use maud::{html, Markup};

use crate::pages::layout::time;
use crate::queries::risk::ScorePoint;

/// Chart width in pixels.
const WIDTH: f64 = 160.0;
/// Chart height in pixels.
const HEIGHT: f64 = 36.0;
/// Blank margin around the line, so the end dot is not clipped.
const PAD: f64 = 3.0;

/// A line of `points` over time, scores on a fixed 0–1 scale (so charts compare at a
/// glance), with the latest score marked in the colour of `tier`.
pub fn score_chart(points: &[ScorePoint], tier: &str) -> Markup {
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return html! { span.muted { "no history yet" } };
    };
    let span = (last.at - first.at) as f64;
    let x = |index: usize, at: i64| {
        let share = if span > 0.0 {
            (at - first.at) as f64 / span
        } else if points.len() > 1 {
            index as f64 / (points.len() - 1) as f64
        } else {
            1.0
        };
        PAD + share * (WIDTH - 2.0 * PAD)
    };
    let y = |score: f64| PAD + (1.0 - score.clamp(0.0, 1.0)) * (HEIGHT - 2.0 * PAD);
    let line = points
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{:.1},{:.1}", x(i, p.at), y(p.score)))
        .collect::<Vec<_>>()
        .join(" ");
    let label = format!(
        "{} scores from {} to {}, latest {:.3}",
        points.len(),
        time(first.at),
        time(last.at),
        last.score
    );
    let mid = format!("{:.1}", y(0.5));
    html! {
        svg.spark xmlns="http://www.w3.org/2000/svg" width=(WIDTH) height=(HEIGHT)
            viewBox={"0 0 " (WIDTH) " " (HEIGHT)} role="img" aria-label=(label) data-points=(points.len()) {
            title { (label) }
            line x1="0" x2=(WIDTH) y1=(mid) y2=(mid) stroke="#e3e6ea" stroke-dasharray="2 2" {}
            polyline points=(line) fill="none" stroke="#3b6fd8" stroke-width="1.5" {}
            circle class={"dot " (tier)} cx=(format!("{:.1}", x(points.len() - 1, last.at)))
                cy=(format!("{:.1}", y(last.score))) r="2.5" {}
        }
    }
}
