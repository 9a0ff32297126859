//! SVG plots of an audit: per-layer SQNR of every build, and accuracy against weight bytes
//! (the compression trade-off, with the Pareto front).

use super::AuditReport;
use crate::error::{Error, Result};
use plotters::prelude::*;
use std::path::Path;

const COLORS: [RGBColor; 6] = [BLUE, RED, GREEN, MAGENTA, CYAN, BLACK];

fn err(e: impl std::fmt::Display) -> Error {
    Error::Usage(format!("plot: {e}"))
}

/// Points not dominated by another (higher accuracy and fewer bytes is better).
pub fn pareto(points: &[(f64, f64)]) -> Vec<usize> {
    (0..points.len())
        .filter(|&i| {
            !points.iter().enumerate().any(|(j, q)| {
                j != i && q.0 <= points[i].0 && q.1 >= points[i].1 && (q.0 < points[i].0 || q.1 > points[i].1)
            })
        })
        .collect()
}

/// Writes the two-panel SVG to `path`.
pub fn write_svg(r: &AuditReport, path: &Path) -> Result<()> {
    let root = SVGBackend::new(path, (1100, 450)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let (left, right) = root.split_horizontally(600);
    let layers = r.builds.iter().map(|b| b.drift.layers.len()).max().unwrap_or(0).max(1);
    let top = r.builds.iter().flat_map(|b| b.drift.layers.iter().map(|l| l.sqnr_db)).fold(10.0f64, f64::max).min(120.0);
    let mut c = ChartBuilder::on(&left)
        .caption("per-layer SQNR (dB)", ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(40)
        .build_cartesian_2d(0f64..layers as f64, 0f64..top * 1.1)
        .map_err(err)?;
    c.configure_mesh().x_desc("quantized activation (graph order)").draw().map_err(err)?;
    for (k, b) in r.builds.iter().filter(|b| !b.drift.layers.is_empty()).enumerate() {
        let color = COLORS[k % COLORS.len()];
        let pts: Vec<(f64, f64)> =
            b.drift.layers.iter().enumerate().map(|(i, l)| (i as f64 + 0.5, l.sqnr_db.min(top))).collect();
        c.draw_series(LineSeries::new(pts, color))
            .map_err(err)?
            .label(b.name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], color));
    }
    c.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw().map_err(err)?;

    let mut pts: Vec<(String, f64, f64)> = vec![];
    if let Some(a) = r.float_accuracy {
        pts.push(("float".into(), r.float_weight_bytes as f64, a * 100.0));
    }
    for b in &r.builds {
        if let Some(a) = b.drift.int8_accuracy {
            pts.push((b.name.clone(), b.weight_bytes as f64, a * 100.0));
        }
    }
    // Per-layer SQNR exists for int8 builds only.
    let xmax = pts.iter().map(|p| p.1).fold(1.0, f64::max) * 1.15;
    let (ymin, ymax) = pts.iter().fold((100.0f64, 0.0f64), |(l, h), p| (l.min(p.2), h.max(p.2)));
    let mut c = ChartBuilder::on(&right)
        .caption("accuracy vs weight bytes (Pareto front)", ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(45)
        .build_cartesian_2d(0f64..xmax, (ymin - 2.0).max(0.0)..(ymax + 1.0).min(100.5))
        .map_err(err)?;
    c.configure_mesh().x_desc("weight bytes").y_desc("accuracy %").draw().map_err(err)?;
    let front = pareto(&pts.iter().map(|p| (p.1, p.2)).collect::<Vec<_>>());
    let mut line: Vec<(f64, f64)> = front.iter().map(|&i| (pts[i].1, pts[i].2)).collect();
    line.sort_by(|a, b| a.0.total_cmp(&b.0));
    c.draw_series(LineSeries::new(line, RED.mix(0.5))).map_err(err)?;
    for (k, p) in pts.iter().enumerate() {
        let color = COLORS[k % COLORS.len()];
        c.draw_series(std::iter::once(Circle::new((p.1, p.2), 5, color.filled()))).map_err(err)?;
        c.draw_series(std::iter::once(Text::new(p.0.clone(), (p.1, p.2), ("sans-serif", 12)))).map_err(err)?;
    }
    root.present().map_err(err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn pareto_keeps_only_undominated_points() {
        let pts = [(100.0, 99.0), (25.0, 98.8), (30.0, 98.0), (20.0, 90.0)];
        assert_eq!(super::pareto(&pts), vec![0, 1, 3]);
    }
}
