//! The per-layer memory plot of `modelless inspect --memory-plot`: for every node, the arena
//! bytes live while it runs (values and in-place scratch), against the planned arena size.

use crate::error::{Error, Result};
use crate::ir::Graph;
use crate::passes::MemoryPlan;
use plotters::prelude::*;
use std::path::Path;

fn err(e: impl std::fmt::Display) -> Error {
    Error::Usage(format!("memory plot: {e}"))
}

/// Writes the SVG to `path`: one bar per node (in-place nodes in green), a line at the
/// arena size and one at the liveness lower bound.
pub fn write_svg(g: &Graph, plan: &MemoryPlan, path: &Path) -> Result<()> {
    let root = SVGBackend::new(path, (1000, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let n = plan.live_bytes.len().max(1);
    let kib = |b: usize| b as f64 / 1024.0;
    let top = kib(plan.arena_bytes.max(plan.live_peak()).max(1)) * 1.15;
    let mut c = ChartBuilder::on(&root)
        .caption(
            format!(
                "arena {} B, lower bound {} B, {} nodes in place",
                plan.arena_bytes,
                plan.live_peak(),
                plan.in_place.len()
            ),
            ("sans-serif", 18),
        )
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..n as f64, 0f64..top)
        .map_err(err)?;
    c.configure_mesh().x_desc("node (graph order)").y_desc("live KiB").draw().map_err(err)?;
    c.draw_series(plan.live_bytes.iter().enumerate().map(|(i, &b)| {
        let color = if plan.in_place(i).is_some() { GREEN } else { BLUE };
        Rectangle::new([(i as f64 + 0.1, 0.0), (i as f64 + 0.9, kib(b))], color.mix(0.7).filled())
    }))
    .map_err(err)?;
    for (y, color, label) in [(plan.arena_bytes, RED, "arena"), (plan.live_peak(), BLACK, "lower bound")] {
        c.draw_series(LineSeries::new(vec![(0.0, kib(y)), (n as f64, kib(y))], color))
            .map_err(err)?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], color));
    }
    c.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw().map_err(err)?;
    root.present().map_err(err)?;
    debug_assert_eq!(g.nodes.len(), plan.live_bytes.len());
    Ok(())
}
