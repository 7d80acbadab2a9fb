//! The cost-vs-accuracy plot (PNG and SVG, plotters): every family's points with a distinct
//! colour and marker, its monotone upper envelope as a line, the hindsight-optimal frontier in
//! black, and the always-weak / always-strong anchors labelled.
//!
//! PNG text is rendered with the Hack font (MIT / Bitstream Vera licence) embedded from the
//! `epaint_default_fonts` crate, so plotting needs no system fonts.

use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};
use trim_env::metrics::{Point, upper_envelope};

use super::{Kind, Suite, names};

pub(super) const FONT: &str = "sans-serif";
const SIZE: (u32, u32) = (1900, 800);

/// Register the embedded font once per process (plotters keeps a global font table).
pub(super) fn ensure_font() -> anyhow::Result<()> {
    static DONE: OnceLock<bool> = OnceLock::new();
    let ok = *DONE.get_or_init(|| {
        register_font(FONT, FontStyle::Normal, epaint_default_fonts::HACK_REGULAR).is_ok()
    });
    anyhow::ensure!(ok, "the embedded plot font could not be parsed");
    Ok(())
}

/// Marker outlines in pixels around the point: octagon, triangle, square, diamond, inverted
/// triangle, star — filled, so points stay distinguishable in greyscale too.
fn marker(shape: usize, r: i32) -> Vec<(i32, i32)> {
    let poly = |n: usize, rot: f64, rr: &dyn Fn(usize) -> f64| -> Vec<(i32, i32)> {
        (0..n)
            .map(|i| {
                let a = rot + std::f64::consts::TAU * i as f64 / n as f64;
                let rad = rr(i) * f64::from(r);
                (
                    (rad * a.cos()).round() as i32,
                    (rad * a.sin()).round() as i32,
                )
            })
            .collect()
    };
    use std::f64::consts::FRAC_PI_2;
    match shape % 6 {
        0 => poly(8, 0.0, &|_| 1.0),
        1 => poly(3, -FRAC_PI_2, &|_| 1.2),
        2 => vec![(-r, -r), (r, -r), (r, r), (-r, r)],
        3 => poly(4, 0.0, &|_| 1.3),
        4 => poly(3, FRAC_PI_2, &|_| 1.2),
        _ => poly(10, -FRAC_PI_2, &|i| if i % 2 == 0 { 1.5 } else { 0.6 }),
    }
}

/// Family colours in suite order (random, TRIM-Thr, cascade, the peer rules when the world has
/// their signals, query oracle, hindsight — always drawn in black —, then the POMDP families and
/// trained families), chosen so that neighbours on the plot
/// differ clearly; fourteen so that a full report (with the peer rules, up to thirteen families)
/// never repeats one.
const COLOURS: [RGBColor; 14] = [
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    // Black is the hindsight-optimal frontier's own colour; this slot is for whichever family
    // comes fifth on a world without it.
    RGBColor(128, 0, 0),
    RGBColor(214, 39, 40),
    RGBColor(23, 190, 207),
    RGBColor(227, 119, 194),
    RGBColor(31, 119, 180),
    RGBColor(188, 189, 34),
    RGBColor(127, 127, 127),
    RGBColor(0, 100, 0),
    RGBColor(255, 187, 120),
    RGBColor(0, 0, 139),
];

/// Largest cost shown in the zoomed panel, where the cheap operating points (and the
/// hindsight-optimal frontier) crowd together on the full [0, 1] axis.
const ZOOM_MAX_COST: f64 = 0.25;

/// The full-range panel (with the legend) on the left, the low-cost zoom on the right.
fn draw<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, suite: &Suite) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow::anyhow!("plot: {e}");
    root.fill(&WHITE).map_err(err)?;
    let (left, right) = root.split_horizontally(root.dim_in_pixel().0 * 3 / 5);
    let title = format!(
        "Accuracy vs strong-token cost — {} problems (split `{}`)",
        suite.problems, suite.split
    );
    draw_panel(&left, suite, (-0.02, 1.05), &title, true)?;
    draw_panel(
        &right,
        suite,
        (-0.005, ZOOM_MAX_COST),
        &format!("zoom: c ≤ {ZOOM_MAX_COST}"),
        false,
    )?;
    root.present().map_err(err)?;
    Ok(())
}

/// The part of a cost-sorted polyline with cost ≤ `max`, ending exactly at `max` when the line
/// continues beyond it (plotters would otherwise pin outside points to the panel's edge).
fn clip_to(line: &[Point], max: f64) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64)> = vec![];
    for w in line.windows(2) {
        let (a, b) = (w[0], w[1]);
        if a.cost > max {
            break;
        }
        out.push((a.cost, a.accuracy));
        if b.cost > max {
            let t = (max - a.cost) / (b.cost - a.cost);
            out.push((max, a.accuracy + t * (b.accuracy - a.accuracy)));
            return out;
        }
    }
    if let Some(last) = line.last().filter(|p| p.cost <= max) {
        out.push((last.cost, last.accuracy));
    }
    out
}

/// One chart of every family over the cost range `x`.
fn draw_panel<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    suite: &Suite,
    x: (f64, f64),
    title: &str,
    legend: bool,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow::anyhow!("plot: {e}");
    let all: Vec<f64> = suite
        .families
        .iter()
        .flat_map(|f| f.points.iter().map(|p| p.accuracy))
        .collect();
    let lo = all.iter().copied().fold(1.0f64, f64::min);
    let hi = all.iter().copied().fold(0.0f64, f64::max);
    let (y0, y1) = ((lo - 0.03).max(0.0), (hi + 0.03).min(1.0));
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FONT, 26))
        .margin(20)
        .x_label_area_size(60)
        .y_label_area_size(80)
        .build_cartesian_2d(x.0..x.1, y0..y1)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("cost fraction c = strong tokens ÷ always-strong's strong tokens")
        .y_desc("accuracy")
        .axis_desc_style((FONT, 20))
        .label_style((FONT, 16))
        .y_label_formatter(&|y| format!("{:.0} %", 100.0 * y))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(err)?;

    let mut series = Series {
        chart: &mut chart,
        x_max: x.1,
    };
    series.families(suite)?;
    series.anchors(suite)?;
    if legend {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .label_font((FONT, 16))
            .margin(12)
            .draw()
            .map_err(err)?;
    }
    Ok(())
}

/// The chart type every panel draws on.
type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// The series of one panel, drawn up to cost `x_max`.
struct Series<'c, 'a, DB: DrawingBackend> {
    chart: &'c mut Chart<'a, DB>,
    x_max: f64,
}

impl<'a, DB: DrawingBackend + 'a> Series<'_, 'a, DB>
where
    DB::ErrorType: 'static,
{
    /// Each non-anchor family: its upper envelope as a line and its points as markers.
    fn families(&mut self, suite: &Suite) -> anyhow::Result<()> {
        let (chart, x_max) = (&mut *self.chart, self.x_max);
        let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow::anyhow!("plot: {e}");
        let mut shape = 0;
        for f in &suite.families {
            if f.kind == Kind::Anchor {
                continue;
            }
            let hindsight = f.name == names::HINDSIGHT;
            let colour = if hindsight {
                RGBColor(0, 0, 0)
            } else {
                COLOURS[shape % COLOURS.len()]
            };
            // Dense sweeps (many points) get small, light markers so the envelopes stay readable.
            let dense = f.points.len() > 60;
            let r = if dense { 3 } else { 5 };
            let style = if dense {
                colour.mix(0.35).filled()
            } else {
                colour.filled()
            };
            let line = clip_to(&upper_envelope(&f.curve()), x_max);
            let width = if hindsight { 3 } else { 2 };
            let s = shape;
            chart
                .draw_series(LineSeries::new(line, colour.stroke_width(width)))
                .map_err(err)?
                .label(format!("{} ({} pts)", f.name, f.points.len()))
                .legend(move |(x, y)| {
                    EmptyElement::at((x + 12, y))
                        + PathElement::new(vec![(-12, 0), (12, 0)], colour.stroke_width(width))
                        + Polygon::new(marker(s, 5), colour.filled())
                });
            chart
                .draw_series(
                    f.points
                        .iter()
                        .filter(|p| p.cost_fraction <= x_max)
                        .map(|p| {
                            EmptyElement::at((p.cost_fraction, p.accuracy))
                                + Polygon::new(marker(s, r), style)
                        }),
                )
                .map_err(err)?;
            shape += 1;
        }
        Ok(())
    }

    /// The anchors: large black-outlined squares with their names.
    fn anchors(&mut self, suite: &Suite) -> anyhow::Result<()> {
        let (chart, x_max) = (&mut *self.chart, self.x_max);
        let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow::anyhow!("plot: {e}");
        for f in suite.families.iter().filter(|f| f.kind == Kind::Anchor) {
            for p in f.points.iter().filter(|p| p.cost_fraction <= x_max) {
                let c = (p.cost_fraction, p.accuracy);
                let left = p.cost_fraction > 0.5;
                let text_at = if left { (-200, 24) } else { (12, -22) };
                chart
                    .draw_series(std::iter::once(
                        EmptyElement::at(c)
                            + Rectangle::new([(-7, -7), (7, 7)], BLACK.filled())
                            + Text::new(
                                format!("{} {:.1} %", f.name, 100.0 * p.accuracy),
                                text_at,
                                (FONT, 17),
                            ),
                    ))
                    .map_err(err)?;
            }
        }
        Ok(())
    }
}

/// Draw the suite into `png` and `svg`.
pub fn plot(suite: &Suite, png: &Path, svg: &Path) -> anyhow::Result<()> {
    ensure_font()?;
    draw(BitMapBackend::new(png, SIZE).into_drawing_area(), suite)?;
    draw(SVGBackend::new(svg, SIZE).into_drawing_area(), suite)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pts(v: &[(f64, f64)]) -> Vec<Point> {
        v.iter()
            .map(|&(cost, accuracy)| Point { cost, accuracy })
            .collect()
    }

    #[test]
    fn clipping_ends_the_line_at_the_panel_edge() {
        let line = pts(&[(0.0, 0.4), (0.1, 0.6), (0.5, 0.8)]);
        // 0.25 lies 3/8 of the way from 0.1 to 0.5: 0.6 + 0.375·0.2 = 0.675.
        let c = clip_to(&line, 0.25);
        assert_eq!(c.len(), 3);
        assert_eq!(&c[..2], &[(0.0, 0.4), (0.1, 0.6)]);
        assert!((c[2].0 - 0.25).abs() < 1e-12 && (c[2].1 - 0.675).abs() < 1e-12);
        assert_eq!(clip_to(&line, 1.0).len(), 3);
        assert!(clip_to(&pts(&[(0.5, 0.8)]), 0.25).is_empty());
        assert!(clip_to(&[], 0.25).is_empty());
    }
}
