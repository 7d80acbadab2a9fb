//! The budgeted-accuracy plot of `trim eval --budgets … --budgets-plot FILE` (PNG and SVG,
//! plotters): accuracy against the per-problem strong-token budget, one line per policy with
//! its 95 % bootstrap CI as error bars.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

/// One policy's accuracy at each budget: `(budget, accuracy, (ci_lo, ci_hi))`.
pub struct BudgetSeries {
    pub policy: String,
    pub points: Vec<(u64, f64, (f64, f64))>,
}

const SIZE: (u32, u32) = (1200, 760);

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    series: &[BudgetSeries],
) -> anyhow::Result<()> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow::anyhow!("plot: {e:?}");
    root.fill(&WHITE).map_err(err)?;
    let max_b = (series.iter().flat_map(|s| s.points.iter().map(|p| p.0)))
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Budgeted accuracy (hard strong-token budget per problem)",
            (super::plot::FONT, 26),
        )
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..max_b * 1.02, 0.3..1.0)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("budget (strong tokens per problem)")
        .y_desc("accuracy")
        .label_style((super::plot::FONT, 18))
        .draw()
        .map_err(err)?;
    for (i, s) in series.iter().enumerate() {
        let c = Palette99::pick(i).to_rgba();
        let line = s.points.iter().map(|p| (p.0 as f64, p.1));
        chart
            .draw_series(LineSeries::new(line, c.stroke_width(3)))
            .map_err(err)?
            .label(s.policy.clone())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], c.stroke_width(3)));
        // The CI as a vertical bar at each budget.
        let bars = (s.points.iter()).map(|p| {
            PathElement::new(
                [(p.0 as f64, p.2.0), (p.0 as f64, p.2.1)],
                c.stroke_width(2),
            )
        });
        chart.draw_series(bars).map_err(err)?;
        let dots = (s.points.iter()).map(|p| Circle::new((p.0 as f64, p.1), 5, c.filled()));
        chart.draw_series(dots).map_err(err)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font((super::plot::FONT, 18))
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

/// Draw `series` into `png` and `svg`.
pub fn plot_budgets(series: &[BudgetSeries], png: &Path, svg: &Path) -> anyhow::Result<()> {
    super::plot::ensure_font()?;
    draw(BitMapBackend::new(png, SIZE).into_drawing_area(), series)?;
    draw(SVGBackend::new(svg, SIZE).into_drawing_area(), series)?;
    Ok(())
}
