//! `curves.png` and `confusion.png`, drawn with `plotters` into an RGB buffer and saved as PNG
//! by the `image` crate (plotters' own PNG encoder would pull in a second `image` version).
//!
//! Text is DejaVu Sans, embedded from the `dejavu` crate and rasterised by plotters'
//! `ab_glyph` feature, so drawing needs no system font and no fontconfig. The font is under
//! the Bitstream Vera licence (SPDX `Bitstream-Vera`, with the Arev additions under the same
//! terms; DejaVu's changes are public domain): free to use, embed and redistribute, with the
//! notice kept beside distributed copies; the crate ships it in
//! `assets/dejavu-fonts-ttf-2.37/LICENSE`.
//!
//! `curves.png` (1000 × 400): two panels over the epoch (x axis titled "epoch", integer ticks
//! that plotters spaces 1, 2, 5, 10, 20, … epochs apart so that the numbers never collide;
//! the y labels share one number of decimals).
//! * "loss": train (blue) and validation (orange) loss; y from 0 (or the lowest loss, if
//!   negative) to a little above the largest loss. Losses beyond ±10⁹ stay out of that range
//!   and are drawn at its edge.
//! * "accuracy (%)": train top-1 (blue), validation top-1 (orange) and validation top-5
//!   (green); y from 0 to 100 %.
//!
//! Each panel has a y axis title and a legend (upper right for the loss, which falls, lower
//! right for the accuracy, which rises). Non-finite values (NaN, ±∞) are left out: the line
//! breaks there. Each value has a dot (smaller beyond 40 epochs), so a lone value between
//! gaps still shows. An empty history draws the two empty panels (axes, titles, legends)
//! rather than failing.
//!
//! `confusion.png`: one cell per (true class row, predicted class column), coloured by the
//! cell's share of its row (blue on the diagonal, red elsewhere; darker is larger). Around it:
//! a title with the overall top-1 accuracy and image count, the axis titles "true class"
//! (rows) and "predicted class" (columns), row labels `<name> <index>` (names cut to 12
//! characters) and column indices. With at most 20 classes every row and column is labelled
//! and each cell shows its count (white on dark cells, dark on light ones, zeros in grey);
//! with more, every k-th row and column is labelled, k the smallest of 1, 2, 5, 10, 20, …
//! that keeps the labels apart. The matrix is at most 1200 px square (cells are 1 to 64 px;
//! beyond 1200 classes several share a cell), so the image stays under 1600 px per side.

use std::ops::Range;
use std::path::Path;
use std::sync::OnceLock;

use anyhow::{ensure, Context, Result};
use plotters::chart::{ChartBuilder, SeriesLabelPosition};
use plotters::coord::ranged1d::Ranged;
use plotters::coord::Shift;
use plotters::drawing::{DrawingArea, IntoDrawingArea};
use plotters::element::{Circle, PathElement, Rectangle, Text};
use plotters::prelude::BitMapBackend;
use plotters::series::LineSeries;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{register_font, Color, FontStyle, IntoFont, RGBColor, TextStyle};

use super::metrics::EpochMetrics;

const BLUE: RGBColor = RGBColor(31, 119, 180);
const ORANGE: RGBColor = RGBColor(255, 127, 14);
const GREEN: RGBColor = RGBColor(44, 160, 44);
const GRID: RGBColor = RGBColor(225, 225, 225);
const AXIS: RGBColor = RGBColor(90, 90, 90);
const WHITE: RGBColor = RGBColor(255, 255, 255);
/// Text on a light background.
const INK: RGBColor = RGBColor(25, 25, 25);
/// Counts of zero, so that they do not crowd the non-zero ones.
const FAINT: RGBColor = RGBColor(175, 175, 175);

/// The family the bundled font is registered as (plotters' default family).
const FAMILY: &str = "sans-serif";
/// Text sizes in pixels: titles, axis titles, tick labels and legends.
const TITLE_PX: f64 = 20.0;
const DESC_PX: f64 = 16.0;
const LABEL_PX: f64 = 14.0;

/// `curves.png`'s size.
const CURVES_SIZE: (u32, u32) = (1000, 400);
/// Losses beyond ± this are left out of the loss axis's range (and drawn at its edge).
const LOSS_LIMIT: f64 = 1e9;
/// Epochs up to which each value gets a dot of radius 3 (beyond, radius 1).
const BIG_DOTS: usize = 40;

/// The confusion matrix's largest side, in pixels.
const MATRIX_MAX: usize = 1200;
/// A confusion cell's largest side, in pixels.
const CELL_MAX: usize = 64;
/// Classes up to which every row and column is labelled and every cell shows its count.
const FULL_LABELS: usize = 20;
/// Characters of a class name shown.
const NAME_CHARS: usize = 12;
/// `confusion.png`'s outer margin, title strip, column label strip and footer strip.
const MARGIN: u32 = 16;
const TITLE_H: u32 = 44;
const BOTTOM_H: u32 = 52;
const FOOTER_H: u32 = 26;
const FOOTER: &str = "colour: share of the true class's images (blue: correct)";

type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// Registers DejaVu Sans as [`FAMILY`] (once per process).
fn load_font() -> Result<()> {
    static LOADED: OnceLock<bool> = OnceLock::new();
    let ok = *LOADED
        .get_or_init(|| register_font(FAMILY, FontStyle::Normal, dejavu::sans::regular()).is_ok());
    ensure!(ok, "the bundled DejaVu Sans font does not load");
    Ok(())
}

/// The font at `px` pixels, in [`INK`].
fn font(px: f64) -> TextStyle<'static> {
    (FAMILY, px).into_font().color(&INK)
}

/// Width of `s` at `px` pixels.
fn text_width(s: &str, px: f64) -> u32 {
    font(px).font.box_size(s).map_or(0, |(w, _)| w)
}

/// Draws a `w × h` white picture with `draw` and saves it as the PNG `path`.
fn render(path: &Path, (w, h): (u32, u32), draw: impl FnOnce(&Area) -> Result<()>) -> Result<()> {
    load_font()?;
    let mut pixels = vec![0; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (w, h)).into_drawing_area();
        root.fill(&WHITE)?;
        draw(&root)?;
        root.present()?;
    }
    let img = image::RgbImage::from_raw(w, h, pixels).context("pixel buffer of the wrong size")?;
    img.save(path)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// One line of a panel: its legend name, colour and one value per epoch.
struct Series {
    name: &'static str,
    colour: RGBColor,
    values: Vec<f64>,
}

/// One panel of `curves.png`.
struct Panel {
    /// The panel's title, which also names its y axis.
    title: &'static str,
    /// The y axis and how many grid lines it has at most.
    y: Range<f64>,
    y_lines: usize,
    legend: SeriesLabelPosition,
    series: Vec<Series>,
}

/// Loss and accuracy curves per epoch.
pub fn curves(path: &Path, history: &[EpochMetrics]) -> Result<()> {
    let epochs: Vec<f64> = history.iter().map(|m| m.epoch as f64).collect();
    let series = |name, colour, f: fn(&EpochMetrics) -> f64| Series {
        name,
        colour,
        values: history.iter().map(f).collect(),
    };
    let loss = vec![
        series("train loss", BLUE, |m| m.train_loss),
        series("val loss", ORANGE, |m| m.val_loss),
    ];
    let accuracy = vec![
        series("train top-1", BLUE, |m| 100.0 * m.train_top1),
        series("val top-1", ORANGE, |m| 100.0 * m.val_top1),
        series("val top-5", GREEN, |m| 100.0 * m.val_top5),
    ];
    let sane = loss.iter().flat_map(|s| &s.values);
    let sane = sane.filter(|v| v.abs() <= LOSS_LIMIT);
    let (low, high) = sane.fold((0.0f64, 0.0f64), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let top = if high > low {
        high + 0.08 * (high - low)
    } else {
        low + 1.0
    };
    let panels = [
        Panel {
            title: "loss",
            y: low..top,
            y_lines: 6,
            legend: SeriesLabelPosition::UpperRight,
            series: loss,
        },
        Panel {
            title: "accuracy (%)",
            y: 0.0..100.0,
            y_lines: 11,
            legend: SeriesLabelPosition::LowerRight,
            series: accuracy,
        },
    ];
    render(path, CURVES_SIZE, |root| {
        let areas = root.split_evenly((1, panels.len()));
        for (panel, area) in panels.iter().zip(&areas) {
            panel.draw(area, &epochs)?;
        }
        Ok(())
    })
}

/// Decimals that every one of `ticks` needs (at most 6), so that labels line up (`0.5`,
/// `1.0`, `1.5`).
fn decimals(ticks: &[f64]) -> usize {
    let needed = |v: &f64| {
        let s = format!("{v:.6}");
        let fraction = s
            .trim_end_matches('0')
            .rsplit_once('.')
            .map_or("", |(_, f)| f);
        fraction.len()
    };
    ticks.iter().map(needed).max().unwrap_or(0)
}

impl Panel {
    /// Draws the panel over `epochs` (x, with half an epoch of room either side). Values are
    /// clamped into the y range; non-finite ones are left out.
    fn draw(&self, area: &Area, epochs: &[f64]) -> Result<()> {
        let lo = epochs.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = epochs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let (lo, hi) = if lo <= hi { (lo, hi) } else { (1.0, 1.0) };
        let y = self.y.clone();
        let mut chart = ChartBuilder::on(area)
            .caption(self.title, font(TITLE_PX))
            .margin(12)
            .x_label_area_size(46)
            .y_label_area_size(64)
            .build_cartesian_2d(lo - 0.5..hi + 0.5, y.clone())?;
        // At most one label per epoch, so that every label is a whole epoch.
        let x_lines = ((hi - lo) as usize + 1).min(10);
        let spec = chart.as_coord_spec();
        let x_decimals = decimals(&spec.x_spec().key_points(x_lines));
        let y_decimals = decimals(&spec.y_spec().key_points(self.y_lines));
        chart
            .configure_mesh()
            .x_desc("epoch")
            .y_desc(self.title)
            .x_labels(x_lines)
            .y_labels(self.y_lines)
            .x_label_formatter(&|x| format!("{:.*}", x_decimals, x + 0.0))
            .y_label_formatter(&|y| format!("{:.*}", y_decimals, y + 0.0))
            .label_style(font(LABEL_PX))
            .axis_desc_style(font(DESC_PX))
            .axis_style(AXIS)
            .bold_line_style(GRID)
            .light_line_style(WHITE)
            .draw()?;
        let radius = if epochs.len() <= BIG_DOTS { 3 } else { 1 };
        for s in &self.series {
            let colour = s.colour;
            let points: Vec<Option<(f64, f64)>> = epochs
                .iter()
                .zip(&s.values)
                .map(|(&e, &v)| v.is_finite().then(|| (e, v.clamp(y.start, y.end))))
                .collect();
            // The legend entry, then one line per run of finite values, then the dots.
            let swatch =
                move |(x, y)| PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2));
            chart
                .draw_series(LineSeries::new(None, colour))?
                .label(s.name)
                .legend(swatch);
            for run in points.split(Option::is_none) {
                let run = run.iter().flatten().copied();
                chart.draw_series(LineSeries::new(run, colour.stroke_width(2)))?;
            }
            let dots = points.iter().flatten();
            chart.draw_series(dots.map(|&p| Circle::new(p, radius, colour.filled())))?;
        }
        chart
            .configure_series_labels()
            .position(self.legend.clone())
            .label_font(font(LABEL_PX))
            .background_style(WHITE.mix(0.85))
            .border_style(AXIS)
            .draw()?;
        Ok(())
    }
}

/// What `confusion.png` says and where it goes, in pixels.
#[derive(Debug, Clone)]
struct ConfusionLayout {
    /// Classes.
    n: usize,
    /// "validation: … % top-1 (… images)".
    title: String,
    /// `<name> <index>` per class.
    row_labels: Vec<String>,
    /// Classes per cell along each side (1 unless there are more than 1200 classes).
    bin: usize,
    /// Cells along each side.
    cells: usize,
    /// A cell's side.
    cell: u32,
    /// The matrix's top-left corner.
    x0: u32,
    y0: u32,
    /// Width of the row label area left of the matrix (labels and "true class").
    label_w: u32,
    /// Most row and column labels that stay apart.
    max_rows: usize,
    max_cols: usize,
    width: u32,
    height: u32,
}

impl ConfusionLayout {
    /// The chart of `matrix` (`[truth][guess]`, rows may be ragged) with classes named
    /// `classes`. Needs the font.
    fn new(matrix: &[Vec<usize>], classes: &[String]) -> Self {
        let n = matrix
            .iter()
            .map(Vec::len)
            .max()
            .unwrap_or(0)
            .max(matrix.len());
        let total: usize = matrix.iter().flatten().sum();
        let correct: usize = (0..n).filter_map(|i| matrix.get(i)?.get(i)).sum();
        let title = if total > 0 {
            format!(
                "validation: {:.1} % top-1 ({total} images)",
                100.0 * correct as f64 / total as f64
            )
        } else {
            "validation: no images".to_string()
        };
        let row_labels: Vec<String> = (0..n)
            .map(|class| match classes.get(class) {
                Some(name) => format!(
                    "{} {class}",
                    name.chars().take(NAME_CHARS).collect::<String>()
                ),
                None => class.to_string(),
            })
            .collect();

        let bin = n.div_ceil(MATRIX_MAX).max(1);
        let cells = n.div_ceil(bin).max(1);
        let cell = (MATRIX_MAX / cells).clamp(1, CELL_MAX);
        let side = (cell * cells) as u32;
        let widest = row_labels.iter().map(|l| text_width(l, LABEL_PX)).max();
        // Labels, tick and gap, then "true class" turned up.
        let label_w = widest.unwrap_or(0) + 12 + 2 * DESC_PX as u32;
        let digits = n.saturating_sub(1).to_string();
        let max_rows = side as usize / (LABEL_PX as usize + 4);
        let max_cols = side as usize / (text_width(&digits, LABEL_PX) as usize + 16);
        let content = [
            label_w + side,
            text_width(&title, TITLE_PX),
            text_width(FOOTER, LABEL_PX),
        ];
        let width = content.into_iter().max().unwrap_or(0) + 2 * MARGIN;
        // Centre the matrix and its labels when the title or footer is wider.
        let x0 = (width - label_w - side) / 2 + label_w;
        Self {
            n,
            title,
            row_labels,
            bin,
            cells,
            cell: cell as u32,
            x0,
            y0: TITLE_H,
            label_w,
            max_rows: max_rows.clamp(1, cells),
            max_cols: max_cols.clamp(1, cells),
            width,
            height: TITLE_H + side + BOTTOM_H + FOOTER_H,
        }
    }

    /// The matrix's side.
    fn side(&self) -> u32 {
        self.cell * self.cells as u32
    }
}

/// `n` as wide as `room` pixels at `px` allows: in full, or shortened (`12345` → `12k`).
fn fit_count(n: usize, room: u32, px: f64) -> Option<String> {
    let units = [(1_000, "k"), (1_000_000, "M"), (1_000_000_000, "G")];
    std::iter::once(n.to_string())
        .chain(units.map(|(unit, suffix)| format!("{}{suffix}", n / unit)))
        .find(|s| text_width(s, px) <= room)
}

/// A colour's luma (0–255).
fn luma(RGBColor(r, g, b): RGBColor) -> f64 {
    0.299 * f64::from(r) + 0.587 * f64::from(g) + 0.114 * f64::from(b)
}

/// The confusion matrix `[truth][guess]`, rows normalised; `classes` names class `i`
/// (missing names are left out of the labels).
pub fn confusion(path: &Path, matrix: &[Vec<usize>], classes: &[String]) -> Result<()> {
    load_font()?;
    let layout = ConfusionLayout::new(matrix, classes);
    let count = |t: usize, g: usize| matrix.get(t).and_then(|r| r.get(g)).copied().unwrap_or(0);
    let n = layout.n;
    let (bin, cells) = (layout.bin, layout.cells);

    // Each cell's count and share of its row (cells pool `bin × bin` classes).
    let classes_of = |c: usize| c * bin..((c + 1) * bin).min(n);
    let pooled = |row: usize, column: usize| -> usize {
        classes_of(row)
            .flat_map(|t| classes_of(column).map(move |g| count(t, g)))
            .sum()
    };
    let grid: Vec<Vec<usize>> = (0..cells)
        .map(|row| (0..cells).map(|column| pooled(row, column)).collect())
        .collect();
    let row_totals: Vec<usize> = grid
        .iter()
        .map(|r| r.iter().sum::<usize>().max(1))
        .collect();
    let colour = |row: usize, column: usize| {
        let share = grid[row][column] as f64 / row_totals[row] as f64;
        let v = (255.0 * (1.0 - share)).round() as u8;
        if row == column {
            RGBColor(v, v, 255)
        } else {
            RGBColor(255, v, v)
        }
    };
    // A label at a cell's centre, for cell indices only.
    let class_at = |v: f64| {
        let c = v.round();
        ((v - c).abs() < 1e-6 && c >= 0.0).then(|| c as usize * bin)
    };
    let row_label = |v: &f64| {
        class_at(*v)
            .and_then(|class| layout.row_labels.get(class).cloned())
            .unwrap_or_default()
    };
    let column_label = |v: &f64| {
        class_at(*v)
            .filter(|&class| class < n)
            .map(|class| class.to_string())
            .unwrap_or_default()
    };

    let size = (layout.width, layout.height);
    render(path, size, |root| {
        let centre = Pos::new(HPos::Center, VPos::Center);
        let (top, rest) = root.split_vertically(layout.y0);
        let (body, foot) = rest.split_vertically(layout.side() + BOTTOM_H);
        let title_at = ((layout.width / 2) as i32, (TITLE_H / 2) as i32);
        top.draw(&Text::new(
            layout.title.as_str(),
            title_at,
            font(TITLE_PX).pos(centre),
        ))?;
        let footer_at = ((layout.width / 2) as i32, (FOOTER_H / 2) as i32);
        let footer_style = font(LABEL_PX).color(&AXIS).pos(centre);
        foot.draw(&Text::new(FOOTER, footer_at, footer_style))?;

        // Cell c spans c ± 0.5 on both axes; row 0 at the top.
        let span = cells as f64 - 0.5;
        let mut chart = ChartBuilder::on(&body)
            .margin_left(layout.x0 - layout.label_w)
            .margin_right(layout.width - layout.x0 - layout.side())
            .y_label_area_size(layout.label_w)
            .x_label_area_size(BOTTOM_H)
            .build_cartesian_2d(-0.5..span, span..-0.5)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("predicted class")
            .y_desc("true class")
            .x_labels(layout.max_cols)
            .y_labels(layout.max_rows)
            .x_label_formatter(&column_label)
            .y_label_formatter(&row_label)
            .label_style(font(LABEL_PX))
            .axis_desc_style(font(DESC_PX))
            .axis_style(AXIS)
            .draw()?;
        let at = |row: usize, column: usize| (column as f64, row as f64);
        let all = || (0..cells).flat_map(|row| (0..cells).map(move |column| (row, column)));
        chart.draw_series(all().map(|(row, column)| {
            let (x, y) = at(row, column);
            let corners = [(x - 0.5, y - 0.5), (x + 0.5, y + 0.5)];
            Rectangle::new(corners, colour(row, column).filled())
        }))?;
        if n <= FULL_LABELS {
            let px = (f64::from(layout.cell) * 0.3).clamp(10.0, 18.0);
            let counts = all().filter_map(|(row, column)| {
                let c = grid[row][column];
                let ink = if c == 0 {
                    &FAINT
                } else if luma(colour(row, column)) < 140.0 {
                    &WHITE
                } else {
                    &INK
                };
                let s = fit_count(c, layout.cell.saturating_sub(6), px)?;
                Some(Text::new(
                    s,
                    at(row, column),
                    font(px).color(ink).pos(centre),
                ))
            });
            chart.draw_series(counts)?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use image::{Rgb, RgbImage};

    use super::*;

    /// A fresh folder for one test's files.
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("alexnet-plot-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn epoch(e: usize, loss: f64, acc: f64) -> EpochMetrics {
        EpochMetrics {
            epoch: e,
            train_loss: loss,
            train_top1: acc,
            train_top5: (acc * 1.4).min(1.0),
            val_loss: loss * 1.1,
            val_top1: acc * 0.9,
            val_top5: (acc * 1.5).min(1.0),
            lr: 0.01,
            seconds: 1.0,
            train_seconds: 0.8,
            train_images: 100,
        }
    }

    fn history(epochs: usize) -> Vec<EpochMetrics> {
        (1..=epochs)
            .map(|e| {
                let t = e as f64 / epochs as f64;
                epoch(e, 2.3 * (1.0 - 0.7 * t), 0.1 + 0.6 * t)
            })
            .collect()
    }

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("class number {i}")).collect()
    }

    /// A matrix with `right` on the diagonal and 1 everywhere else.
    fn matrix(n: usize, right: usize) -> Vec<Vec<usize>> {
        (0..n)
            .map(|t| (0..n).map(|g| if t == g { right } else { 1 }).collect())
            .collect()
    }

    fn rgb(RGBColor(r, g, b): RGBColor) -> Rgb<u8> {
        Rgb([r, g, b])
    }

    /// Pixels of `colour` in a rectangle.
    fn count_in(img: &RgbImage, (x, y, w, h): (u32, u32, u32, u32), colour: RGBColor) -> usize {
        (y..y + h)
            .flat_map(|yy| (x..x + w).map(move |xx| (xx, yy)))
            .filter(|&(xx, yy)| *img.get_pixel(xx, yy) == rgb(colour))
            .count()
    }

    /// Dark (text-like) pixels in a rectangle.
    fn dark_in(img: &RgbImage, (x, y, w, h): (u32, u32, u32, u32)) -> usize {
        (y..y + h)
            .flat_map(|yy| (x..x + w).map(move |xx| img.get_pixel(xx, yy)))
            .filter(|p| p.0.iter().all(|&c| c < 110))
            .count()
    }

    fn whole(img: &RgbImage) -> (u32, u32, u32, u32) {
        (0, 0, img.width(), img.height())
    }

    fn draw_curves(dir: &Path, name: &str, h: &[EpochMetrics]) -> RgbImage {
        let path = dir.join(name);
        curves(&path, h).unwrap();
        image::open(&path).unwrap().to_rgb8()
    }

    fn draw_confusion(dir: &Path, name: &str, m: &[Vec<usize>], classes: &[String]) -> RgbImage {
        let path = dir.join(name);
        confusion(&path, m, classes).unwrap();
        image::open(&path).unwrap().to_rgb8()
    }

    /// Runs `f`, failing if it takes more than `secs` seconds (or panics).
    fn within(secs: u64, f: impl FnOnce() + Send + 'static) {
        let (done, wait) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            f();
            done.send(()).unwrap();
        });
        let limit = std::time::Duration::from_secs(secs);
        wait.recv_timeout(limit)
            .unwrap_or_else(|e| panic!("not done within {secs} s: {e}"));
    }

    fn layout_of(m: &[Vec<usize>], classes: &[String]) -> ConfusionLayout {
        load_font().unwrap();
        ConfusionLayout::new(m, classes)
    }

    /// A pixel inside cell `(row, column)`, clear of its count.
    fn cell_pixel(img: &RgbImage, layout: &ConfusionLayout, row: usize, column: usize) -> Rgb<u8> {
        let c = layout.cell;
        *img.get_pixel(
            layout.x0 + column as u32 * c + c / 4,
            layout.y0 + row as u32 * c + c / 4,
        )
    }

    #[test]
    fn the_bundled_font_draws_text() {
        load_font().unwrap();
        assert!(text_width("epoch", LABEL_PX) > 20);
        assert!(text_width("epoch epoch", LABEL_PX) > text_width("epoch", LABEL_PX));
        assert!(text_width("epoch", TITLE_PX) > text_width("epoch", LABEL_PX));
    }

    #[test]
    fn curves_png_for_1_3_and_150_epochs() {
        let dir = scratch("curves");
        let mut pictures = Vec::new();
        for epochs in [1, 3, 150] {
            let img = draw_curves(&dir, &format!("curves-{epochs}.png"), &history(epochs));
            assert_eq!(img.dimensions(), CURVES_SIZE, "{epochs}");
            for colour in [BLUE, ORANGE, GREEN] {
                assert!(
                    count_in(&img, whole(&img), colour) > 20,
                    "{epochs}: {colour:?}"
                );
            }
            // Titles above both panels, tick labels and axis titles under both.
            for x in [0, 500] {
                assert!(dark_in(&img, (x + 150, 0, 200, 36)) > 40, "{epochs}: title");
                assert!(
                    dark_in(&img, (x + 60, 340, 430, 60)) > 80,
                    "{epochs}: x axis"
                );
            }
            pictures.push(img);
        }
        // The x tick numbers differ between 3 and 150 epochs.
        let strip = |img: &RgbImage| image::imageops::crop_imm(img, 0, 330, 1000, 30).to_image();
        assert_ne!(strip(&pictures[1]), strip(&pictures[2]));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn curves_leave_out_non_finite_values() {
        let dir = scratch("curves-nan");
        let plain = draw_curves(&dir, "plain.png", &history(8));
        let mut gaps = history(8);
        for m in &mut gaps {
            m.val_top5 = f64::NAN;
        }
        gaps[3].train_loss = f64::INFINITY;
        gaps[5].val_loss = f64::NEG_INFINITY;
        let holed = draw_curves(&dir, "holed.png", &gaps);
        // val top-5 (green) is left out but for its legend swatch.
        let green = |img: &RgbImage| count_in(img, whole(img), GREEN);
        assert!(green(&holed) > 0 && green(&holed) * 4 < green(&plain));
        assert_ne!(plain, holed);
        // Nothing finite, huge, or nothing at all: still a chart, quickly.
        let all_bad: Vec<EpochMetrics> = (1..=4)
            .map(|e| {
                epoch(
                    e,
                    if e % 2 == 0 { f64::NAN } else { f64::INFINITY },
                    f64::NAN,
                )
            })
            .collect();
        let huge = vec![
            epoch(1, 1e300, 0.5),
            epoch(2, f64::MAX, 0.5),
            epoch(3, -1e300, 0.5),
        ];
        for (name, h) in [("bad", all_bad), ("huge", huge), ("empty", vec![])] {
            let path = dir.join(format!("{name}.png"));
            within(20, move || curves(&path, &h).unwrap());
            let img = image::open(dir.join(format!("{name}.png")))
                .unwrap()
                .to_rgb8();
            assert_eq!(img.dimensions(), CURVES_SIZE, "{name}");
            assert!(dark_in(&img, whole(&img)) > 500, "{name}: titles and ticks");
        }
        assert_eq!(decimals(&[0.0, 0.5, 1.0]), 1);
        assert_eq!(decimals(&[0.1 + 0.2, 0.25]), 2);
        assert_eq!(decimals(&[0.0, 20.0, 100.0]), 0);
        assert_eq!(decimals(&[]), 0);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn confusion_png_for_1_2_10_100_and_1000_classes() {
        let dir = scratch("confusion");
        for n in [1, 2, 10, 100, 1000] {
            let path = dir.join(format!("{n}.png"));
            within(20, move || {
                confusion(&path, &matrix(n, 10 * n), &names(n)).unwrap()
            });
            let img = image::open(dir.join(format!("{n}.png"))).unwrap().to_rgb8();
            let layout = layout_of(&matrix(n, 10 * n), &names(n));
            assert_eq!(img.dimensions(), (layout.width, layout.height), "{n}");
            assert!(img.width() <= 1600 && img.height() <= 1600, "{n}");
            assert_eq!(img.height(), layout.height, "{n}");
            assert!(layout.side() as usize >= n && layout.x0 + layout.side() <= img.width());
            // A diagonal cell is blue-ish, an off-diagonal one red-ish.
            let Rgb([r, _, b]) = cell_pixel(&img, &layout, 0, 0);
            assert!(b == 255 && r < 255, "{n}");
            if n > 1 {
                let Rgb([r, g, b]) = cell_pixel(&img, &layout, 1, 0);
                assert!(r == 255 && g == b && (n > 10 || b < 255), "{n}");
            }
            // Title, axis titles and labels are there.
            assert!(dark_in(&img, (0, 0, img.width(), TITLE_H)) > 100, "{n}");
            let under = (0, layout.y0 + layout.side(), img.width(), BOTTOM_H);
            assert!(dark_in(&img, under) > 100, "{n}");
            assert!(
                dark_in(&img, (0, layout.y0, layout.x0, layout.side())) > 50,
                "{n}"
            );
        }
        let ten = layout_of(&matrix(10, 1), &names(10));
        assert_eq!((ten.cell, ten.max_rows, ten.max_cols), (64, 10, 10));
        let hundred = layout_of(&matrix(100, 1), &names(100));
        assert_eq!(hundred.cell, 12);
        assert!(hundred.max_rows < 100 && hundred.max_cols < 50);
        let thousand = layout_of(&matrix(1000, 1), &names(1000));
        assert_eq!(thousand.cell, 1);
        let many = layout_of(&vec![vec![]; 3000], &[]);
        assert_eq!((many.bin, many.cells), (3, 1000));
        assert!(many.width <= 1600 && many.height <= 1600);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn confusion_of_nothing_is_a_chart_too() {
        let dir = scratch("confusion-empty");
        for (name, m) in [("none", vec![]), ("zeros", vec![vec![0, 0], vec![0, 0]])] {
            let img = draw_confusion(&dir, &format!("{name}.png"), &m, &[]);
            assert!(dark_in(&img, (0, 0, img.width(), TITLE_H)) > 100, "{name}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn confusion_cells_show_legible_counts() {
        let dir = scratch("confusion-counts");
        let classes = names(2);
        // Same shares (so the same colours), different counts.
        let a = draw_confusion(&dir, "a.png", &[vec![10, 0], vec![0, 10]], &classes);
        let b = draw_confusion(&dir, "b.png", &[vec![20, 0], vec![0, 20]], &classes);
        let layout = layout_of(&[vec![10, 0], vec![0, 10]], &classes);
        let cell = |img: &RgbImage, r: usize, c: usize| {
            let s = layout.cell;
            let (x, y) = (layout.x0 + c as u32 * s + 2, layout.y0 + r as u32 * s + 2);
            image::imageops::crop_imm(img, x, y, s - 4, s - 4).to_image()
        };
        assert_ne!(cell(&a, 0, 0), cell(&b, 0, 0));
        assert_ne!(cell(&a, 1, 1), cell(&b, 1, 1));
        assert_eq!(cell(&a, 0, 1), cell(&b, 0, 1));
        // White digits on the dark diagonal cells, grey zeros on the white ones.
        let dark = cell(&a, 0, 0);
        assert!(dark.pixels().any(|&p| p == Rgb([0, 0, 255])));
        assert!(dark.pixels().any(|&p| p == rgb(WHITE)));
        assert!(cell(&a, 0, 1).pixels().any(|&p| p == rgb(FAINT)));
        // Dark digits on a light cell: 1 of 4 is a quarter of the row.
        let light = draw_confusion(&dir, "c.png", &[vec![1, 3], vec![0, 4]], &classes);
        let c = cell(&light, 0, 0);
        assert!(c.pixels().any(|&p| p == rgb(INK)) && !c.pixels().any(|&p| p == rgb(WHITE)));
        // The title's accuracy differs: 10/20 vs 20/40 are both 100 %, 5/8 is not.
        let title = |img: &RgbImage| image::imageops::crop_imm(img, 0, 0, 300, TITLE_H).to_image();
        assert_ne!(title(&a), title(&light));
        assert_eq!(fit_count(123, 1000, LABEL_PX).as_deref(), Some("123"));
        let room = text_width("12k", LABEL_PX);
        assert_eq!(fit_count(12_345, room, LABEL_PX).as_deref(), Some("12k"));
        assert_eq!(fit_count(12_345, 1, LABEL_PX), None);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn confusion_rows_name_their_classes_cut_to_12_characters() {
        let dir = scratch("confusion-names");
        let m = matrix(3, 4);
        let draw = |name: &str, classes: &[&str]| {
            let classes: Vec<String> = classes.iter().map(|c| c.to_string()).collect();
            draw_confusion(&dir, name, &m, &classes)
        };
        let a = draw("a.png", &["abcdefghijkl-one", "b", "c"]);
        let b = draw("b.png", &["abcdefghijkl-two", "b", "c"]);
        let c = draw("c.png", &["abcdefghijkx-one", "b", "c"]);
        assert_eq!(a, b, "only the first 12 characters are drawn");
        assert_ne!(a, c);
        // Without names the rows carry their indices only, so the label area is narrower.
        let bare = layout_of(&m, &[]);
        let named = layout_of(&m, &names(3));
        assert_eq!(bare.row_labels, ["0", "1", "2"]);
        assert_eq!(named.row_labels[2], "class number 2");
        assert!(bare.label_w < named.label_w);
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// Writes example images to /tmp/plot-check for a look.
    #[test]
    #[ignore]
    fn write_examples() {
        let dir = PathBuf::from("/tmp/plot-check");
        std::fs::create_dir_all(&dir).unwrap();
        for epochs in [1, 3, 10, 150] {
            curves(&dir.join(format!("curves-{epochs}.png")), &history(epochs)).unwrap();
        }
        let mut h = history(12);
        h[4].val_loss = f64::NAN;
        h[7].train_top1 = f64::INFINITY;
        curves(&dir.join("curves-nan.png"), &h).unwrap();
        curves(&dir.join("curves-empty.png"), &[]).unwrap();
        let huge = [
            epoch(1, 1e300, 0.5),
            epoch(2, f64::MAX, 0.5),
            epoch(3, 2.0, 0.5),
        ];
        curves(&dir.join("curves-huge.png"), &huge).unwrap();
        // A CIFAR-10 run: train loss, val loss, train top-1, val top-1, val top-5.
        let run = [
            (2.05, 1.87, 0.24, 0.31, 0.84),
            (1.72, 1.58, 0.37, 0.42, 0.90),
            (1.55, 1.49, 0.44, 0.46, 0.92),
            (1.42, 1.36, 0.49, 0.51, 0.93),
            (1.31, 1.33, 0.53, 0.52, 0.94),
            (1.22, 1.21, 0.56, 0.57, 0.95),
            (1.13, 1.19, 0.60, 0.58, 0.95),
            (1.05, 1.08, 0.63, 0.62, 0.96),
            (0.98, 1.06, 0.65, 0.63, 0.96),
            (0.93, 1.02, 0.67, 0.65, 0.97),
        ];
        let real: Vec<EpochMetrics> = (1..)
            .zip(run)
            .map(|(e, (tl, vl, t1, v1, v5))| EpochMetrics {
                val_loss: vl,
                val_top1: v1,
                val_top5: v5,
                ..epoch(e, tl, t1)
            })
            .collect();
        curves(&dir.join("curves-real.png"), &real).unwrap();
        let cifar: Vec<String> = [
            "airplane",
            "automobile",
            "bird",
            "cat",
            "deer",
            "dog",
            "frog",
            "horse",
            "ship",
            "truck",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let m: Vec<Vec<usize>> = (0..10)
            .map(|t| {
                (0..10)
                    .map(|g| {
                        if t == g {
                            120 + 13 * t
                        } else {
                            (t * 7 + g * 3) % 11
                        }
                    })
                    .collect()
            })
            .collect();
        confusion(&dir.join("confusion-10.png"), &m, &cifar).unwrap();
        confusion(
            &dir.join("confusion-2.png"),
            &[vec![930, 70], vec![145, 855]],
            &cifar[..2],
        )
        .unwrap();
        for n in [20, 100, 1000] {
            let m: Vec<Vec<usize>> = (0..n)
                .map(|t| {
                    (0..n)
                        .map(|g| if t == g { 30 } else { (t * g) % 3 / 2 })
                        .collect()
                })
                .collect();
            let words = [
                "apple",
                "aquarium_fish",
                "maple_tree",
                "sweet_pepper",
                "a very long class name",
            ];
            let classes: Vec<String> = (0..n).map(|i| format!("{}{i}", words[i % 5])).collect();
            confusion(&dir.join(format!("confusion-{n}.png")), &m, &classes).unwrap();
        }
    }
}
