//! PNG plots of a run (plotters, bitmap backend): the alpha evolution of every edge of a DARTS
//! cell, and loss, accuracy and reward curves against the step.
//!
//! Text is drawn with DejaVu Sans compiled into the binary (assets/, with its licence), so the
//! plots need no system font library or font file at run time.

use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};
use wgpu_nas::{Error, Result};

/// The family name the embedded font is registered under (any name works; this one is honest).
const FONT: &str = "DejaVu Sans";
static FONT_BYTES: &[u8] = include_bytes!("../../../assets/DejaVuSans.ttf");

/// Matplotlib's "tab10": ten colours that stay distinct for people with the common colour
/// blindnesses and on grey-scale prints better than a rainbow.
const COLOURS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

fn colour(i: usize) -> RGBColor {
    COLOURS[i % COLOURS.len()]
}

fn font_ready() -> Result<()> {
    static REGISTER: Once = Once::new();
    let mut ok = true;
    REGISTER.call_once(|| {
        ok = register_font(FONT, FontStyle::Normal, FONT_BYTES).is_ok();
    });
    if ok {
        Ok(())
    } else {
        Err(Error::Config("the embedded plot font could not be read".into()))
    }
}

fn plot_error(path: &Path) -> impl Fn(String) -> Error + '_ {
    move |msg| Error::File { path: path.display().to_string(), msg: format!("plotting failed: {msg}") }
}

/// Turns any plotters error into this crate's, naming the file being drawn.
macro_rules! tried {
    ($path:expr, $e:expr) => {
        $e.map_err(|e| plot_error($path)(e.to_string()))?
    };
}

/// The name of input `j` of a cell node: the two previous cells' outputs, then earlier nodes.
fn input_name(j: usize) -> String {
    match j {
        0 => "c_{k-2}".into(),
        1 => "c_{k-1}".into(),
        _ => format!("node {}", j - 2),
    }
}

/// A value range with a little room above and below, never empty.
fn padded(lo: f64, hi: f64) -> (f64, f64) {
    if !(lo.is_finite() && hi.is_finite()) {
        return (0.0, 1.0);
    }
    let span = (hi - lo).max(1e-3);
    (lo - 0.05 * span, hi + 0.05 * span)
}

/// Enough decimals for tick labels `span` apart over the axis to differ (early in a search all
/// alphas sit near 1/8, and two decimals would label every tick "0.13").
fn decimals(span: f64) -> usize {
    (2.0 - (span.max(1e-6) * 10.0).log10().floor()).clamp(1.0, 5.0) as usize
}

fn step_range(steps: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let lo = steps.clone().fold(f64::INFINITY, f64::min);
    let hi = steps.fold(f64::NEG_INFINITY, f64::max);
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    (lo, if hi > lo { hi } else { lo + 1.0 })
}

/// Pixels a legend entry takes: the sample line, the name (about 11 px a character at 20 px
/// DejaVu Sans) and a gap; at least a column of the operation grid so that short names align.
fn legend_item_width(name: &str) -> i32 {
    (60 + 11 * name.chars().count() as i32).max(195)
}

/// Where each legend entry goes, flowing left to right and wrapping at `width`; and the rows.
fn legend_layout(names: &[String], width: u32) -> (Vec<(i32, i32)>, u32) {
    let (mut x, mut row, mut at) = (20, 0, Vec::with_capacity(names.len()));
    for name in names {
        let w = legend_item_width(name);
        if x > 20 && x + w > width as i32 - 20 {
            (x, row) = (20, row + 1);
        }
        at.push((x, 14 + 30 * row));
        x += w;
    }
    (at, row as u32 + 1)
}

/// A legend drawn in its own strip below the panels, so it never covers a line: a short line
/// in the series' colour, then its name.
fn legend_strip(area: &DrawingArea<BitMapBackend<'_>, Shift>, names: &[String], path: &Path) -> Result<()> {
    let (width, _) = area.dim_in_pixel();
    let style = (FONT, 20).into_font().color(&BLACK);
    for (i, (name, (x, y))) in names.iter().zip(legend_layout(names, width).0).enumerate() {
        tried!(path, area.draw(&PathElement::new(vec![(x, y + 11), (x + 34, y + 11)], colour(i).stroke_width(4))));
        tried!(path, area.draw(&Text::new(name.clone(), (x + 42, y), style.clone())));
    }
    Ok(())
}

fn legend_rows(names: &[String], width: u32) -> u32 {
    legend_layout(names, width).1
}

/// One cell type's alpha evolution: `history[(step, rows)]` with `rows[edge][op]` the softmax
/// weights. One panel per edge, laid out one row per node and one column per input, a line per
/// operation, all panels on the same y scale so that edges compare at a glance.
pub fn alphas(path: &Path, title: &str, history: &[(u64, &[Vec<f32>])], ops: &[String], steps: usize) -> Result<()> {
    alphas_of(path, title, history, ops, steps, 2)
}

/// [`alphas`] of a cell with `inputs` cell inputs: 2 in DARTS (node i has i + 2 edges), 1 in
/// NAS-Bench-201 (node i + 1 has i + 1, named as the benchmark names them).
pub fn alphas_of(
    path: &Path,
    title: &str,
    history: &[(u64, &[Vec<f32>])],
    ops: &[String],
    steps: usize,
    inputs: usize,
) -> Result<()> {
    font_ready()?;
    let cols = steps + inputs - 1;
    let (panel_w, panel_h) = (330u32, 250u32);
    let width = (cols as u32 * panel_w).max(900);
    let legend_h = 20 + 30 * legend_rows(ops, width);
    let height = 70 + steps as u32 * panel_h + legend_h;
    let root = BitMapBackend::new(path, (width, height)).into_drawing_area();
    tried!(path, root.fill(&WHITE));
    let root = tried!(path, root.margin(10, 0, 0, 0).titled(title, (FONT, 28)));
    let (grid, legend) = root.split_vertically(height - 70 - legend_h);
    let (x_lo, x_hi) = step_range(history.iter().map(|(s, _)| *s as f64));
    let all = history.iter().flat_map(|(_, rows)| rows.iter().flatten().map(|&v| v as f64));
    let (y_lo, y_hi) = padded(all.clone().fold(f64::INFINITY, f64::min), all.fold(f64::NEG_INFINITY, f64::max));
    let (y_lo, y_hi) = (y_lo.max(0.0), y_hi.min(1.0));
    let cells = grid.split_evenly((steps, cols));
    let mut edge = 0;
    for node in 0..steps {
        for j in 0..cols {
            let area = &cells[node * cols + j];
            if j >= node + inputs {
                continue; // node i has i + inputs inputs; the rest of its row stays empty
            }
            let caption = match inputs {
                2 => format!("node {node} <- {}", input_name(j)),
                _ => format!("node {} <- {j}", node + 1),
            };
            let mut chart = tried!(
                path,
                ChartBuilder::on(area)
                    .caption(caption, (FONT, 19))
                    .margin(6)
                    .x_label_area_size(if node + 1 == steps { 38 } else { 24 })
                    .y_label_area_size(48)
                    .build_cartesian_2d(x_lo..x_hi, y_lo..y_hi)
            );
            let mut mesh = chart.configure_mesh();
            mesh.x_labels(4).y_labels(5).label_style((FONT, 14)).light_line_style(WHITE.mix(0.0));
            let digits = decimals(y_hi - y_lo);
            let y_format = move |v: &f64| format!("{v:.digits$}");
            mesh.y_label_formatter(&y_format);
            mesh.x_label_formatter(&|v| format!("{v:.0}"));
            if node + 1 == steps {
                mesh.x_desc("step");
            }
            tried!(path, mesh.draw());
            for (o, _) in ops.iter().enumerate() {
                let points = history.iter().filter_map(|(s, rows)| Some((*s as f64, *rows.get(edge)?.get(o)? as f64)));
                let series = LineSeries::new(points, colour(o).stroke_width(2));
                // A single record would draw no line; the markers keep it visible.
                let series = if history.len() < 3 { series.point_size(3) } else { series };
                tried!(path, chart.draw_series(series));
            }
            edge += 1;
        }
    }
    legend_strip(&legend, ops, path)?;
    tried!(path, root.present());
    Ok(())
}

/// A named series of (step, value) points; `markers` draws a dot at every point (for per-epoch
/// values, few and far apart).
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub markers: bool,
}

impl Series {
    pub fn new(name: &str, points: Vec<(f64, f64)>, markers: bool) -> Series {
        Series { name: name.into(), points, markers }
    }
}

/// One chart of a figure: its title, y axis and series.
pub struct Panel<'a> {
    pub title: &'a str,
    pub y_desc: &'a str,
    pub series: &'a [Series],
}

/// Curves against the step (or update), one colour per series, the legend in its own strip below.
pub fn curves(path: &Path, title: &str, x_desc: &str, y_desc: &str, series: &[Series]) -> Result<()> {
    panels(path, x_desc, &[Panel { title, y_desc, series }])
}

/// Charts stacked top to bottom on one x axis, each with its own y scale and its legend strip
/// below it.
pub fn panels(path: &Path, x_desc: &str, panels: &[Panel<'_>]) -> Result<()> {
    font_ready()?;
    let width = 1000u32;
    let names = |p: &Panel<'_>| p.series.iter().map(|s| s.name.clone()).collect::<Vec<String>>();
    let legend_h = |p: &Panel<'_>| 20 + 30 * legend_rows(&names(p), width);
    let height: u32 = panels.iter().map(|p| 560 + legend_h(p)).sum();
    let root = BitMapBackend::new(path, (width, height)).into_drawing_area();
    tried!(path, root.fill(&WHITE));
    let mut rest = root.clone();
    for p in panels {
        let (area, below) = rest.split_vertically(560 + legend_h(p));
        rest = below;
        let (plot, legend) = area.split_vertically(560);
        chart(&plot, path, p.title, x_desc, p.y_desc, p.series)?;
        legend_strip(&legend, &names(p), path)?;
    }
    tried!(path, root.present());
    Ok(())
}

fn chart(
    plot: &DrawingArea<BitMapBackend<'_>, Shift>,
    path: &Path,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    series: &[Series],
) -> Result<()> {
    let points = || series.iter().flat_map(|s| s.points.iter()).filter(|(x, y)| x.is_finite() && y.is_finite());
    let (x_lo, x_hi) = step_range(points().map(|p| p.0));
    let (y_lo, y_hi) = padded(
        points().map(|p| p.1).fold(f64::INFINITY, f64::min),
        points().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max),
    );
    let mut chart = tried!(
        path,
        ChartBuilder::on(plot)
            .caption(title, (FONT, 28))
            .margin(16)
            .x_label_area_size(50)
            .y_label_area_size(95)
            .build_cartesian_2d(x_lo..x_hi, y_lo..y_hi)
    );
    // x is a step, update or epoch count: on a short axis, one tick per integer (finer ticks
    // would repeat labels).
    let x_ticks = if x_hi - x_lo < 10.0 { (x_hi - x_lo) as usize + 1 } else { 10 };
    tried!(
        path,
        chart
            .configure_mesh()
            .x_labels(x_ticks)
            .x_desc(x_desc)
            .y_desc(y_desc)
            .label_style((FONT, 18))
            .axis_desc_style((FONT, 20))
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_label_formatter(&|v| format!("{v:.digits$}", digits = decimals(y_hi - y_lo)))
            .light_line_style(WHITE.mix(0.0))
            .draw()
    );
    for (i, s) in series.iter().enumerate() {
        let line = LineSeries::new(s.points.iter().copied(), colour(i).stroke_width(2));
        let line = if s.markers || s.points.len() < 3 { line.point_size(4) } else { line };
        tried!(path, chart.draw_series(line));
    }
    Ok(())
}

/// Writes alphas_normal.png, alphas_reduce.png, loss.png, accuracy.png and collapse.png of a
/// DARTS-family search (DARTS, GDAS).
pub fn darts<R: wgpu_nas::darts::Relaxation>(
    dir: &Path,
    search: &wgpu_nas::run_loop::RunLoop<wgpu_nas::darts::SupernetSearch<R>>,
) -> Result<()> {
    let method = R::KIND.to_uppercase();
    let ops = search.method.net.config.space.primitives.clone();
    let steps = search.method.net.config.space.steps;
    let normal: Vec<(u64, &[Vec<f32>])> = search.method.alpha_history.iter().map(|r| (r.step, &r.normal[..])).collect();
    let reduce: Vec<(u64, &[Vec<f32>])> = search.method.alpha_history.iter().map(|r| (r.step, &r.reduce[..])).collect();
    if search.method.net.config.space.is_nas_bench_201() {
        let title = "NAS-Bench-201 cell: softmax(alpha) per edge against step";
        alphas_of(&dir.join("alphas_normal.png"), title, &normal, &ops, steps, 1)?;
    } else {
        alphas(
            &dir.join("alphas_normal.png"),
            "Normal cell: softmax(alpha) per edge against step",
            &normal,
            &ops,
            steps,
        )?;
    }
    // NAS-Bench-201 has one alpha matrix for every cell: no reduction cell to plot.
    if search.method.net.alphas_reduce.is_some() {
        alphas(
            &dir.join("alphas_reduce.png"),
            "Reduction cell: softmax(alpha) per edge against step",
            &reduce,
            &ops,
            steps,
        )?;
    }
    let m = &search.metrics;
    let at = |f: fn(&wgpu_nas::darts::DartsStep) -> f32, scale: f64| {
        m.iter().map(|s| (s.step as f64, f(s) as f64 * scale)).collect::<Vec<_>>()
    };
    curves(
        &dir.join("loss.png"),
        &format!("{method} search: cross-entropy loss"),
        "step",
        "loss",
        &[
            Series::new("train (weights' batch)", at(|s| s.train_loss, 1.0), false),
            Series::new("validation (alphas' batch)", at(|s| s.val_loss, 1.0), false),
        ],
    )?;
    curves(
        &dir.join("accuracy.png"),
        &format!("{method} search: accuracy"),
        "step",
        "accuracy (%)",
        &[
            Series::new("train (weights' batch)", at(|s| s.train_acc, 100.0), false),
            Series::new("validation (alphas' batch)", at(|s| s.val_acc, 100.0), false),
        ],
    )?;
    collapse(&dir.join("collapse.png"), &search.epochs)
}

/// The collapse diagnostics against the epoch (RobustDARTS): the dominant Hessian eigenvalue
/// (when computed), the mean softmax entropy of each cell type's edges, and the parameter-free
/// operations of the derived cells.
fn collapse(path: &Path, epochs: &[wgpu_nas::darts::DartsEpoch]) -> Result<()> {
    let per_epoch = |f: &dyn Fn(&wgpu_nas::darts::diagnostics::Collapse) -> Option<f64>| {
        epochs.iter().filter_map(|e| Some((e.epoch as f64, f(&e.collapse)?))).collect::<Vec<_>>()
    };
    let eigen = [Series::new(
        "dominant eigenvalue of the validation loss's Hessian in the alphas",
        per_epoch(&|c| c.hessian_eigenvalue.map(f64::from)),
        true,
    )];
    let entropy = [
        Series::new("normal cell", per_epoch(&|c| Some(c.entropy_normal as f64)), true),
        Series::new("reduction cell", per_epoch(&|c| Some(c.entropy_reduce as f64)), true),
    ];
    let free = [Series::new(
        "parameter-free operations in the derived cells",
        per_epoch(&|c| Some(c.parameter_free as f64)),
        true,
    )];
    let mut shown = vec![];
    if eigen[0].points.iter().any(|p| p.1.is_finite()) {
        shown.push(Panel {
            title: "Collapse: Hessian eigenvalue (grows as the search collapses)",
            y_desc: "eigenvalue",
            series: &eigen,
        });
    }
    shown.push(Panel {
        title: "Mean entropy of the edges' softmax(alpha)",
        y_desc: "entropy (nats)",
        series: &entropy,
    });
    shown.push(Panel {
        title: "Parameter-free operations in the derived genotype",
        y_desc: "operations",
        series: &free,
    });
    panels(path, "epoch", &shown)
}

/// Writes reward.png (mean reward and baseline per controller update), loss.png and
/// accuracy.png (the shared weights' steps) of an ENAS search.
pub fn enas(dir: &Path, search: &wgpu_nas::enas::search::EnasSearch) -> Result<()> {
    let c = &search.method.controller_metrics;
    let per_update = |f: fn(&wgpu_nas::enas::search::ControllerMetrics) -> f32| {
        c.iter().map(|u| (u.update as f64, f(u) as f64)).collect::<Vec<_>>()
    };
    let few = c.len() < 20;
    curves(
        &dir.join("reward.png"),
        "ENAS controller: reward and baseline per update",
        "controller update",
        "reward",
        &[
            Series::new("reward (mean of the update's samples)", per_update(|u| u.stats.reward), few),
            Series::new("baseline (moving average)", per_update(|u| u.stats.baseline), few),
        ],
    )?;
    let m = &search.metrics;
    let few = m.len() < 20;
    let at = |f: fn(&wgpu_nas::enas::EnasStep) -> f32, scale: f64| {
        m.iter().map(|s| (s.step as f64, f(s) as f64 * scale)).collect::<Vec<_>>()
    };
    curves(
        &dir.join("loss.png"),
        "ENAS shared weights: training loss",
        "step",
        "loss",
        &[Series::new("train (sampled architectures)", at(|s| s.loss, 1.0), few)],
    )?;
    curves(
        &dir.join("accuracy.png"),
        "ENAS shared weights: training accuracy",
        "step",
        "accuracy (%)",
        &[Series::new("train (sampled architectures)", at(|s| s.acc, 100.0), few)],
    )
}

/// Writes loss.png and accuracy.png of a retraining run: every step's training values, and the
/// test set's after each epoch (placed at the epoch's last step).
pub fn train(dir: &Path, trainer: &wgpu_nas::train::Trainer) -> Result<()> {
    let m = &trainer.metrics;
    let per_epoch = trainer.steps_per_epoch() as f64;
    let test = |f: fn(&wgpu_nas::train::TrainEpoch) -> f32, scale: f64| {
        trainer.epochs.iter().map(|e| ((e.epoch + 1) as f64 * per_epoch - 1.0, f(e) as f64 * scale)).collect::<Vec<_>>()
    };
    let at = |f: fn(&wgpu_nas::train::TrainStep) -> f32, scale: f64| {
        m.iter().map(|s| (s.step as f64, f(s) as f64 * scale)).collect::<Vec<_>>()
    };
    curves(
        &dir.join("loss.png"),
        "Retraining: cross-entropy loss",
        "step",
        "loss",
        &[
            Series::new("train (incl. auxiliary)", at(|s| s.train_loss, 1.0), false),
            Series::new("test (after each epoch)", test(|e| e.test_loss, 1.0), true),
        ],
    )?;
    curves(
        &dir.join("accuracy.png"),
        "Retraining: accuracy",
        "step",
        "accuracy (%)",
        &[
            Series::new("train", at(|s| s.train_acc, 100.0), false),
            Series::new("test (after each epoch)", test(|e| e.test_acc, 100.0), true),
        ],
    )
}

/// A strip plot: one column per group (`columns[(name, values)]`), every value a dot (spread
/// sideways by its rank in the column so that equal values stay visible), the column's mean a
/// short bar. Drawn to a temporary file beside `path`, then renamed over it.
pub fn strips(path: &Path, title: &str, y_desc: &str, columns: &[(String, Vec<f64>)]) -> Result<()> {
    font_ready()?;
    let tmp = path.with_extension("tmp.png");
    let drawn = (|| -> Result<()> {
        let width = (220 * columns.len() as u32 + 200).max(800);
        let root = BitMapBackend::new(&tmp, (width, 600)).into_drawing_area();
        tried!(path, root.fill(&WHITE));
        let all = || columns.iter().flat_map(|(_, v)| v.iter().copied()).filter(|v| v.is_finite());
        let (lo, hi) = (all().fold(f64::INFINITY, f64::min), all().fold(f64::NEG_INFINITY, f64::max));
        // At least one unit of the axis (a percentage point), so that equal values sit mid-plot.
        let (y_lo, y_hi) = padded(lo.min((lo + hi) / 2.0 - 0.5), hi.max((lo + hi) / 2.0 + 0.5));
        let n = columns.len().max(1);
        let mut chart = tried!(
            path,
            ChartBuilder::on(&root)
                .caption(title, (FONT, 28))
                .margin(16)
                .x_label_area_size(50)
                .y_label_area_size(95)
                .build_cartesian_2d(-0.5..n as f64 - 0.5, y_lo..y_hi)
        );
        let names: Vec<String> = columns.iter().map(|(name, _)| name.clone()).collect();
        tried!(
            path,
            chart
                .configure_mesh()
                .x_labels(n)
                .y_desc(y_desc)
                .label_style((FONT, 18))
                .axis_desc_style((FONT, 20))
                .x_label_formatter(&|v| {
                    let i = v.round();
                    let near = (v - i).abs() < 1e-6 && i >= 0.0;
                    near.then(|| names.get(i as usize).cloned()).flatten().unwrap_or_default()
                })
                .y_label_formatter(&|v| format!("{v:.digits$}", digits = decimals(y_hi - y_lo)))
                .disable_x_mesh()
                .light_line_style(WHITE.mix(0.0))
                .draw()
        );
        for (i, (_, values)) in columns.iter().enumerate() {
            let x = i as f64;
            let k = values.len().max(1) as f64;
            let dots = values.iter().enumerate().map(|(j, &v)| {
                let dx = if k > 1.0 { 0.3 * (j as f64 / (k - 1.0) - 0.5) } else { 0.0 };
                Circle::new((x + dx, v), 6, colour(i).filled())
            });
            tried!(path, chart.draw_series(dots));
            let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
            if !finite.is_empty() {
                let mean = finite.iter().sum::<f64>() / finite.len() as f64;
                let bar = PathElement::new(vec![(x - 0.25, mean), (x + 0.25, mean)], BLACK.stroke_width(3));
                tried!(path, chart.draw_series(std::iter::once(bar)));
            }
        }
        tried!(path, root.present());
        Ok(())
    })();
    if let Err(e) = drawn {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, path).map_err(|e| Error::File { path: path.display().to_string(), msg: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Draws every kind of plot from made-up data (no GPU) and checks the files are PNGs. The
    /// files stay in the temporary directory for a person to look at.
    #[test]
    fn plots_are_pngs() {
        let dir = std::env::temp_dir().join("wgpu-nas-plot-test");
        std::fs::create_dir_all(&dir).unwrap();
        let ops: Vec<String> = ["none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let rows: Vec<(u64, Vec<Vec<f32>>)> = (0..30u64)
            .map(|s| {
                let edges = (0..5)
                    .map(|e| {
                        let raw: Vec<f32> = (0..5).map(|o| ((o + e) as f32 * 0.3 - 0.5) * s as f32 / 30.0).collect();
                        let z: f32 = raw.iter().map(|v| v.exp()).sum();
                        raw.iter().map(|v| v.exp() / z).collect()
                    })
                    .collect();
                (s, edges)
            })
            .collect();
        let history: Vec<(u64, &[Vec<f32>])> = rows.iter().map(|(s, r)| (*s, &r[..])).collect();
        alphas(&dir.join("alphas.png"), "test: 2 nodes", &history, &ops, 2).unwrap();
        let curve = |k: f64| (0..40).map(|i| (i as f64, k / (1.0 + i as f64))).collect::<Vec<_>>();
        curves(
            &dir.join("curves.png"),
            "test curves",
            "step",
            "loss",
            &[
                Series::new("train", curve(2.0), false),
                Series::new("test (after each epoch)", vec![(9.0, 0.5), (19.0, 0.3), (39.0, 0.2)], true),
            ],
        )
        .unwrap();
        let columns = vec![("DARTS".to_string(), vec![81.0, 82.5, 80.2]), ("random".to_string(), vec![79.0, 83.0])];
        strips(&dir.join("strips.png"), "test strips", "test accuracy (%)", &columns).unwrap();
        assert!(!dir.join("strips.tmp.png").exists());
        for f in ["alphas.png", "curves.png", "strips.png"] {
            let bytes = std::fs::read(dir.join(f)).unwrap();
            assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{f}");
            assert!(bytes.len() > 10_000, "{f}: {} bytes", bytes.len());
        }
    }
}
