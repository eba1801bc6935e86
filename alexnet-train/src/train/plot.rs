//! `curves.png` and `confusion.png`, drawn with the `image` crate and the public-domain 8×8
//! bitmap font of `font8x8` (no plotting dependency).
//!
//! `curves.png` (1000 × 400): two panels over the epoch (x axis titled "epoch", integer
//! ticks at a spacing of 1, 2, 5, 10, 20, … epochs so that the numbers never collide).
//! * "loss": train (blue) and validation (orange) loss; y from 0 to a round value above the
//!   largest finite loss, with 4 to 6 labelled grid lines.
//! * "accuracy (%)": train top-1 (blue), validation top-1 (orange) and validation top-5
//!   (green); y from 0 to 100 %, grid every 10 %, labelled every 20 %.
//!
//! Each panel has a legend with the series' colours under its x axis. Non-finite values
//! (NaN, ±∞) are left out of the lines.
//!
//! `confusion.png`: one cell per (true class row, predicted class column), coloured by the
//! cell's share of its row (blue on the diagonal, red elsewhere; darker is larger). Around it:
//! a title with the overall top-1 accuracy and image count, the axis titles "true class"
//! (rows) and "predicted class" (columns), row labels `<name> <index>` (names cut to 12
//! characters) and column indices. With at most 20 classes every row and column is labelled
//! and each cell shows its count (white on dark cells, dark on light ones, zeros in grey);
//! with more, the rows and the columns each label every k-th index, k the smallest of 1, 2, 5,
//! 10, 20, … that keeps the numbers apart (when k > 1, a tick marks each labelled one). The
//! matrix is at most 1200 px square (more than 1200 classes share pixels), so the image stays
//! under 1600 px per side.

use std::path::Path;

use anyhow::Result;
use font8x8::UnicodeFonts;
use image::{Rgb, RgbImage};

use super::metrics::EpochMetrics;

const BLUE: Rgb<u8> = Rgb([31, 119, 180]);
const ORANGE: Rgb<u8> = Rgb([255, 127, 14]);
const GREEN: Rgb<u8> = Rgb([44, 160, 44]);
const GRID: Rgb<u8> = Rgb([225, 225, 225]);
const AXIS: Rgb<u8> = Rgb([90, 90, 90]);
const WHITE: Rgb<u8> = Rgb([255, 255, 255]);
/// Text on a light background.
const INK: Rgb<u8> = Rgb([25, 25, 25]);
/// Counts of zero, so that they do not crowd the non-zero ones.
const FAINT: Rgb<u8> = Rgb([175, 175, 175]);

/// Glyph height and advance at scale 1, in pixels.
const GLYPH: i64 = 8;

/// `curves.png`'s size.
const CURVES_W: u32 = 1000;
const CURVES_H: u32 = 400;

/// The confusion matrix's largest side, in pixels.
const MATRIX_MAX: usize = 1200;
/// A confusion cell's largest side, in pixels.
const CELL_MAX: usize = 64;
/// Classes up to which every row and column is labelled and every cell shows its count.
const FULL_LABELS: usize = 20;
/// Characters of a class name shown.
const NAME_CHARS: usize = 12;

/// Which point of the text `x` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Align {
    Left,
    Centre,
    Right,
}

/// The 8 rows of `c`'s glyph (bit 0 is the leftmost pixel); `?` for characters the font
/// lacks.
fn glyph(c: char) -> [u8; 8] {
    font8x8::BASIC_FONTS
        .get(c)
        .or_else(|| font8x8::LATIN_FONTS.get(c))
        .or_else(|| font8x8::GREEK_FONTS.get(c))
        .or_else(|| font8x8::BASIC_FONTS.get('?'))
        .unwrap_or([0; 8])
}

/// Width of `s` in pixels.
fn text_width(s: &str, scale: u32) -> i64 {
    s.chars().count() as i64 * GLYPH * i64::from(scale.max(1))
}

/// Draws `s` with its top edge at `y` (it is `8 × scale` pixels tall); `x` is its left edge,
/// centre or right edge as `align` says.
fn text(img: &mut RgbImage, x: i64, y: i64, s: &str, color: Rgb<u8>, scale: u32, align: Align) {
    let k = i64::from(scale.max(1));
    let left = match align {
        Align::Left => x,
        Align::Centre => x - text_width(s, scale) / 2,
        Align::Right => x - text_width(s, scale),
    };
    for (i, c) in s.chars().enumerate() {
        let gx = left + i as i64 * GLYPH * k;
        for (row, bits) in (0i64..).zip(glyph(c)) {
            for col in 0..GLYPH {
                if bits >> col & 1 == 1 {
                    fill(img, gx + col * k, y + row * k, k, k, color);
                }
            }
        }
    }
}

/// Draws `s` turned a quarter turn anticlockwise (read bottom to top), its top edge at `x`
/// and its middle at `y`.
fn text_up(img: &mut RgbImage, x: i64, y: i64, s: &str, color: Rgb<u8>, scale: u32) {
    let k = i64::from(scale.max(1));
    let bottom = y + text_width(s, scale) / 2;
    for (i, c) in (0i64..).zip(s.chars()) {
        for (row, bits) in (0i64..).zip(glyph(c)) {
            for col in 0..GLYPH {
                if bits >> col & 1 == 1 {
                    fill(
                        img,
                        x + row * k,
                        bottom - (i * GLYPH + col + 1) * k,
                        k,
                        k,
                        color,
                    );
                }
            }
        }
    }
}

fn put(img: &mut RgbImage, x: i64, y: i64, color: Rgb<u8>) {
    if x >= 0 && y >= 0 && (x as u32) < img.width() && (y as u32) < img.height() {
        img.put_pixel(x as u32, y as u32, color);
    }
}

fn fill(img: &mut RgbImage, x: i64, y: i64, w: i64, h: i64, color: Rgb<u8>) {
    for dy in 0..h {
        for dx in 0..w {
            put(img, x + dx, y + dy, color);
        }
    }
}

fn line(img: &mut RgbImage, a: (i64, i64), b: (i64, i64), color: Rgb<u8>, width: i64) {
    let steps = (b.0 - a.0).abs().max((b.1 - a.1).abs()).max(1);
    for s in 0..=steps {
        let x = a.0 + (b.0 - a.0) * s / steps;
        let y = a.1 + (b.1 - a.1) * s / steps;
        for d in 0..width {
            put(img, x, y + d, color);
        }
    }
}

fn dot(img: &mut RgbImage, (x, y): (i64, i64), color: Rgb<u8>) {
    fill(img, x - 2, y - 2, 5, 5, color);
}

/// The smallest of 1, 2, 5, 10, 20, 50, … that is at least `min`.
fn int_step(min: f64) -> usize {
    let mut step = 1usize;
    loop {
        for m in [1, 2, 5] {
            if (step * m) as f64 >= min {
                return step * m;
            }
        }
        match step.checked_mul(10) {
            Some(next) => step = next,
            None => return step,
        }
    }
}

/// The smallest of …, 0.1, 0.2, 0.5, 1, 2, 5, 10, … that is at least `min` (> 0).
fn real_step(min: f64) -> f64 {
    if !(min.is_finite() && min > 0.0) {
        return 1.0;
    }
    let mag = 10f64.powf(min.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|&s| s >= min * (1.0 - 1e-9))
        .unwrap_or(10.0 * mag)
}

/// A y tick's number: as many decimals as `step` needs, or an exponent when that is long.
fn tick_label(value: f64, step: f64) -> String {
    if value == 0.0 {
        return "0".into();
    }
    if !(1e-3..1e5).contains(&step) {
        return format!("{value:.0e}");
    }
    let decimals = (-(step.log10() + 1e-9).floor()).max(0.0) as usize;
    format!("{value:.decimals$}")
}

/// A plot area (inside the axes) of `curves.png`.
struct Panel {
    x0: i64,
    y0: i64,
    w: i64,
    h: i64,
}

impl Panel {
    fn point(&self, fx: f64, fy: f64) -> (i64, i64) {
        let x = self.x0 + (fx.clamp(0.0, 1.0) * self.w as f64).round() as i64;
        let y = self.y0 + self.h - (fy.clamp(0.0, 1.0) * self.h as f64).round() as i64;
        (x, y)
    }

    /// Title, grid lines at the fractions `grid`, y labels `(fraction, text)`, the axes.
    fn frame(&self, img: &mut RgbImage, title: &str, grid: &[f64], labels: &[(f64, String)]) {
        text(img, self.x0 + self.w / 2, 12, title, INK, 2, Align::Centre);
        for &f in grid {
            let (_, y) = self.point(0.0, f);
            line(img, (self.x0, y), (self.x0 + self.w, y), GRID, 1);
        }
        for (f, label) in labels {
            let (_, y) = self.point(0.0, *f);
            line(img, (self.x0 - 4, y), (self.x0 - 1, y), AXIS, 1);
            text(img, self.x0 - 7, y - GLYPH / 2, label, INK, 1, Align::Right);
        }
        let bottom = self.y0 + self.h;
        line(img, (self.x0, self.y0), (self.x0, bottom), AXIS, 1);
        line(img, (self.x0, bottom), (self.x0 + self.w, bottom), AXIS, 1);
    }

    /// x tick labels `(fraction, text)` and the x axis title.
    fn x_axis(&self, img: &mut RgbImage, ticks: &[(f64, String)]) {
        let bottom = self.y0 + self.h;
        for (f, label) in ticks {
            let (x, _) = self.point(*f, 0.0);
            line(img, (x, bottom + 1), (x, bottom + 4), AXIS, 1);
            text(img, x, bottom + 7, label, INK, 1, Align::Centre);
        }
        text(
            img,
            self.x0 + self.w / 2,
            bottom + 22,
            "epoch",
            INK,
            1,
            Align::Centre,
        );
    }

    /// Colour swatches and names in one row, centred under the panel.
    fn legend(&self, img: &mut RgbImage, entries: &[(&str, Rgb<u8>)]) {
        const SWATCH: i64 = 20;
        const GAP: i64 = 24;
        let widths: Vec<i64> = entries
            .iter()
            .map(|(name, _)| SWATCH + 6 + text_width(name, 1))
            .collect();
        let total = widths.iter().sum::<i64>() + GAP * (entries.len() as i64 - 1).max(0);
        let y = self.y0 + self.h + 44;
        let mut x = self.x0 + (self.w - total) / 2;
        for ((name, color), w) in entries.iter().zip(widths) {
            line(img, (x, y + 3), (x + SWATCH, y + 3), *color, 2);
            dot(img, (x + SWATCH / 2, y + 4), *color);
            text(img, x + SWATCH + 6, y, name, INK, 1, Align::Left);
            x += w + GAP;
        }
    }

    /// One series: points at x fractions `xs`, y `value / top`; non-finite values break the
    /// line.
    fn series(&self, img: &mut RgbImage, xs: &[f64], values: &[f64], top: f64, color: Rgb<u8>) {
        let points: Vec<Option<(i64, i64)>> = xs
            .iter()
            .zip(values)
            .map(|(&fx, &v)| v.is_finite().then(|| self.point(fx, v / top)))
            .collect();
        for pair in points.windows(2) {
            if let [Some(a), Some(b)] = pair {
                line(img, *a, *b, color, 2);
            }
        }
        for p in points.iter().flatten() {
            dot(img, *p, color);
        }
    }
}

/// Each epoch's x fraction, and the x ticks: integers at a spacing that leaves room for
/// their numbers.
fn epoch_axis(history: &[EpochMetrics], width: i64) -> (Vec<f64>, Vec<(f64, String)>) {
    let (Some(lo), Some(hi)) = (
        history.iter().map(|m| m.epoch).min(),
        history.iter().map(|m| m.epoch).max(),
    ) else {
        return (Vec::new(), Vec::new());
    };
    if hi == lo {
        return (vec![0.5; history.len()], vec![(0.5, lo.to_string())]);
    }
    let span = (hi - lo) as f64;
    let xs = history
        .iter()
        .map(|m| (m.epoch - lo) as f64 / span)
        .collect();
    let label_w = text_width(&hi.to_string(), 1);
    let min_gap = label_w + 16;
    let step = int_step(min_gap as f64 * span / width as f64);
    let px = |e: usize| (e - lo) as f64 / span * width as f64;
    let mut ticks: Vec<usize> = (lo.div_ceil(step) * step..=hi).step_by(step).collect();
    if ticks
        .first()
        .is_none_or(|&t| px(t) - px(lo) >= (label_w + 8) as f64)
    {
        ticks.insert(0, lo);
    }
    if ticks
        .last()
        .is_some_and(|&t| px(hi) - px(t) >= (label_w + 8) as f64)
    {
        ticks.push(hi);
    }
    let ticks = ticks
        .into_iter()
        .map(|e| ((e - lo) as f64 / span, e.to_string()))
        .collect();
    (xs, ticks)
}

/// Loss and accuracy curves per epoch.
pub fn curves(path: &Path, history: &[EpochMetrics]) -> Result<()> {
    let mut img = RgbImage::from_pixel(CURVES_W, CURVES_H, WHITE);
    let loss = Panel {
        x0: 64,
        y0: 44,
        w: 400,
        h: 280,
    };
    let acc = Panel {
        x0: 564,
        y0: 44,
        w: 400,
        h: 280,
    };
    let pick = |f: fn(&EpochMetrics) -> f64| history.iter().map(f).collect::<Vec<_>>();
    let (train_loss, val_loss) = (pick(|m| m.train_loss), pick(|m| m.val_loss));
    let largest = train_loss
        .iter()
        .chain(&val_loss)
        .copied()
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    let largest = if largest > 0.0 && largest < f64::MAX / 10.0 {
        largest
    } else {
        1.0
    };
    let step = real_step(largest / 5.0);
    let ticks = (largest / step - 1e-9).ceil().max(1.0) as usize;
    let top = step * ticks as f64;
    let fractions: Vec<f64> = (0..=ticks).map(|i| i as f64 / ticks as f64).collect();
    let labels: Vec<(f64, String)> = (0..=ticks)
        .map(|i| (i as f64 / ticks as f64, tick_label(i as f64 * step, step)))
        .collect();
    loss.frame(&mut img, "loss", &fractions, &labels);
    let grid: Vec<f64> = (0..=10).map(|i| f64::from(i) / 10.0).collect();
    let labels: Vec<(f64, String)> = (0..=5)
        .map(|i| (f64::from(i) / 5.0, (i * 20).to_string()))
        .collect();
    acc.frame(&mut img, "accuracy (%)", &grid, &labels);

    let (xs, x_ticks) = epoch_axis(history, loss.w);
    for panel in [&loss, &acc] {
        panel.x_axis(&mut img, &x_ticks);
    }
    loss.series(&mut img, &xs, &train_loss, top, BLUE);
    loss.series(&mut img, &xs, &val_loss, top, ORANGE);
    acc.series(&mut img, &xs, &pick(|m| m.train_top1), 1.0, BLUE);
    acc.series(&mut img, &xs, &pick(|m| m.val_top1), 1.0, ORANGE);
    acc.series(&mut img, &xs, &pick(|m| m.val_top5), 1.0, GREEN);
    loss.legend(&mut img, &[("train loss", BLUE), ("val loss", ORANGE)]);
    acc.legend(
        &mut img,
        &[
            ("train top-1", BLUE),
            ("val top-1", ORANGE),
            ("val top-5", GREEN),
        ],
    );
    img.save(path)?;
    Ok(())
}

/// Where everything of `confusion.png` goes.
#[derive(Debug, Clone)]
struct ConfusionLayout {
    /// Classes per cell along each side (1 unless there are more than 1200 classes).
    bin: usize,
    /// Cells along each side.
    cells: usize,
    /// A cell's side in pixels.
    cell: i64,
    /// The matrix's top-left corner.
    x0: i64,
    y0: i64,
    /// Label every `row_step`-th row and `col_step`-th column (multiples of `bin`).
    row_step: usize,
    col_step: usize,
    width: u32,
    height: u32,
}

impl ConfusionLayout {
    fn new(n: usize, classes: &[String]) -> Self {
        let bin = n.div_ceil(MATRIX_MAX).max(1);
        let cells = n.div_ceil(bin).max(1);
        let cell = (MATRIX_MAX / cells).clamp(1, CELL_MAX) as i64;
        let side = cell * cells as i64;
        let digits = n.saturating_sub(1).to_string().len();
        let name_chars = classes
            .iter()
            .take(n)
            .map(|c| c.chars().count().min(NAME_CHARS))
            .max()
            .unwrap_or(0);
        let label_chars = digits + if name_chars > 0 { 1 + name_chars } else { 0 };
        // Rows: 3 px between labels; columns: three glyphs between numbers.
        let row_step = bin * int_step((GLYPH + 3) as f64 / cell as f64);
        let col_step =
            bin * int_step((text_width(&"0".repeat(digits), 1) + 3 * GLYPH) as f64 / cell as f64);
        // Left: margin, "true class" turned up, gap, row labels, gap, tick.
        let x0 = 10 + GLYPH + 10 + label_chars as i64 * GLYPH + 6 + 4;
        // Top: margin, title (scale 2), gap, "predicted class", gap, column labels, gap, tick.
        let y0 = 10 + 2 * GLYPH + 12 + GLYPH + 8 + GLYPH + 4 + 4;
        let width = (x0 + side + 16).max(480);
        // Bottom: gap, note, margin.
        let height = y0 + side + 10 + GLYPH + 10;
        Self {
            bin,
            cells,
            cell,
            x0,
            y0,
            row_step,
            col_step,
            width: width as u32,
            height: height as u32,
        }
    }

    /// The top-left pixel of cell `(row, column)` (cell indices, not classes).
    fn cell_origin(&self, row: usize, column: usize) -> (i64, i64) {
        (
            self.x0 + column as i64 * self.cell,
            self.y0 + row as i64 * self.cell,
        )
    }
}

/// `n` in at most `max_chars` characters (`12345` → `12k`).
fn compact_count(n: usize, max_chars: usize) -> Option<String> {
    let full = n.to_string();
    if full.len() <= max_chars {
        return Some(full);
    }
    [(1_000, "k"), (1_000_000, "M"), (1_000_000_000, "G")]
        .into_iter()
        .map(|(unit, suffix)| format!("{}{suffix}", n / unit))
        .find(|s| s.len() <= max_chars)
}

/// A colour's luma (0–255).
fn luma(Rgb([r, g, b]): Rgb<u8>) -> f64 {
    0.299 * f64::from(r) + 0.587 * f64::from(g) + 0.114 * f64::from(b)
}

/// The confusion matrix `[truth][guess]`, rows normalised; `classes` names class `i`
/// (missing names are left out of the labels).
pub fn confusion(path: &Path, matrix: &[Vec<usize>], classes: &[String]) -> Result<()> {
    let n = matrix
        .iter()
        .map(Vec::len)
        .max()
        .unwrap_or(0)
        .max(matrix.len());
    let layout = ConfusionLayout::new(n, classes);
    let mut img = RgbImage::from_pixel(layout.width, layout.height, WHITE);
    let count = |t: usize, g: usize| matrix.get(t).and_then(|r| r.get(g)).copied().unwrap_or(0);

    // Title.
    let total: usize = matrix.iter().flatten().sum();
    let correct: usize = (0..n).map(|i| count(i, i)).sum();
    let title = if total > 0 {
        format!(
            "validation: {:.1} % top-1 ({total} images)",
            100.0 * correct as f64 / total as f64
        )
    } else {
        "validation: no images".to_string()
    };
    let title_scale = if text_width(&title, 2) + 20 <= i64::from(layout.width) {
        2
    } else {
        1
    };
    text(
        &mut img,
        i64::from(layout.width) / 2,
        10,
        &title,
        INK,
        title_scale,
        Align::Centre,
    );

    // Cells.
    let bin = layout.bin;
    let classes_of = |c: usize| c * bin..((c + 1) * bin).min(n);
    for row in 0..layout.cells {
        let row_total: usize = classes_of(row)
            .flat_map(|t| matrix.get(t).into_iter().flatten())
            .sum();
        let row_total = row_total.max(1) as f64;
        for column in 0..layout.cells {
            let c: usize = classes_of(row)
                .flat_map(|t| classes_of(column).map(move |g| (t, g)))
                .map(|(t, g)| count(t, g))
                .sum();
            let v = (255.0 * (1.0 - c as f64 / row_total)).round() as u8;
            let color = if row == column {
                Rgb([v, v, 255])
            } else {
                Rgb([255, v, v])
            };
            let (x, y) = layout.cell_origin(row, column);
            fill(&mut img, x, y, layout.cell, layout.cell, color);
            if n <= FULL_LABELS {
                let ink = if c == 0 {
                    FAINT
                } else if luma(color) < 140.0 {
                    WHITE
                } else {
                    INK
                };
                let room = layout.cell - 6;
                let max_chars = (room / GLYPH).max(0) as usize;
                if let Some(s) = compact_count(c, max_chars) {
                    let scale = if text_width(&s, 2) <= room && 2 * GLYPH <= room {
                        2
                    } else {
                        1
                    };
                    let h = GLYPH * i64::from(scale);
                    let (cx, cy) = (x + layout.cell / 2, y + (layout.cell - h) / 2);
                    text(&mut img, cx, cy, &s, ink, scale, Align::Centre);
                }
            }
        }
    }

    // Axis titles.
    let side = layout.cell * layout.cells as i64;
    text(
        &mut img,
        layout.x0 + side / 2,
        10 + 2 * GLYPH + 12,
        "predicted class",
        INK,
        1,
        Align::Centre,
    );
    text_up(&mut img, 10, layout.y0 + side / 2, "true class", INK, 1);

    // Row labels "<name> <index>" and column indices.
    let digits = n.saturating_sub(1).to_string().len();
    for class in (0..n).step_by(layout.row_step) {
        let name: String = classes
            .get(class)
            .map(|c| c.chars().take(NAME_CHARS).collect())
            .unwrap_or_default();
        let label = format!("{name} {class:>digits$}");
        let (_, y) = layout.cell_origin(class / bin, 0);
        let centre = y + layout.cell / 2;
        if layout.row_step > 1 {
            line(
                &mut img,
                (layout.x0 - 4, centre),
                (layout.x0 - 1, centre),
                AXIS,
                1,
            );
        }
        let label = label.trim_start();
        text(
            &mut img,
            layout.x0 - 8,
            centre - GLYPH / 2,
            label,
            INK,
            1,
            Align::Right,
        );
    }
    for class in (0..n).step_by(layout.col_step) {
        let (x, _) = layout.cell_origin(0, class / bin);
        let centre = x + layout.cell / 2;
        if layout.col_step > 1 {
            line(
                &mut img,
                (centre, layout.y0 - 4),
                (centre, layout.y0 - 1),
                AXIS,
                1,
            );
        }
        let y = layout.y0 - 8 - GLYPH;
        text(
            &mut img,
            centre,
            y,
            &class.to_string(),
            INK,
            1,
            Align::Centre,
        );
    }

    text(
        &mut img,
        10,
        i64::from(layout.height) - 10 - GLYPH,
        "colour: share of the true class's images (blue: correct)",
        AXIS,
        1,
        Align::Left,
    );
    img.save(path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

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
                epoch(e, 4.6 * (1.0 - 0.8 * t), 0.05 + 0.6 * t)
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

    fn ink(img: &RgbImage) -> usize {
        img.pixels().filter(|&&p| p != WHITE).count()
    }

    fn has(img: &RgbImage, color: Rgb<u8>) -> bool {
        img.pixels().any(|&p| p == color)
    }

    /// The pixels of a rectangle.
    fn crop(img: &RgbImage, x: i64, y: i64, w: i64, h: i64) -> Vec<Rgb<u8>> {
        let mut out = Vec::new();
        for yy in y..y + h {
            for xx in x..x + w {
                out.push(*img.get_pixel(xx as u32, yy as u32));
            }
        }
        out
    }

    #[test]
    fn text_draws_the_font_glyph_inside_its_box_only() {
        let mut img = RgbImage::from_pixel(40, 30, WHITE);
        text(&mut img, 5, 7, "A", INK, 2, Align::Left);
        let a = font8x8::legacy::BASIC_LEGACY['A' as usize];
        let mut set = 0;
        for (x, y, &p) in img.enumerate_pixels() {
            let (x, y) = (i64::from(x), i64::from(y));
            let inside = (5..21).contains(&x) && (7..23).contains(&y);
            let expected = inside && a[((y - 7) / 2) as usize] >> ((x - 5) / 2) & 1 == 1;
            assert_eq!(p == INK, expected, "pixel ({x}, {y})");
            assert!(p == INK || p == WHITE);
            set += usize::from(expected);
        }
        // 'A' has a fair number of set bits, each a 2×2 block.
        assert!(set >= 4 * 15, "{set}");
    }

    #[test]
    fn text_alignment_moves_the_box() {
        let draw = |x, align| {
            let mut img = RgbImage::from_pixel(64, 10, WHITE);
            text(&mut img, x, 1, "ab", INK, 1, align);
            img
        };
        let left = draw(34, Align::Left);
        assert_eq!(left, draw(50, Align::Right));
        assert_eq!(left, draw(42, Align::Centre));
        assert_ne!(left, draw(33, Align::Left));
        assert!(ink(&left) > 10);
        for (x, y, &p) in left.enumerate_pixels() {
            if p != WHITE {
                assert!((34..50).contains(&x) && (1..9).contains(&y), "({x}, {y})");
            }
        }
        // Different strings give different pixels.
        let mut other = RgbImage::from_pixel(64, 10, WHITE);
        text(&mut other, 34, 1, "ba", INK, 1, Align::Left);
        assert_ne!(left, other);
        assert_eq!(text_width("ab", 1), 16);
        assert_eq!(text_width("ab", 2), 32);
    }

    #[test]
    fn text_up_turns_the_glyphs_a_quarter() {
        let mut img = RgbImage::from_pixel(20, 40, WHITE);
        text_up(&mut img, 4, 20, "A", INK, 1);
        let a = glyph('A');
        for (x, y, &p) in img.enumerate_pixels() {
            let (x, y) = (i64::from(x), i64::from(y));
            // Glyph row r, column c lands at (4 + r, 24 - c - 1).
            let inside = (4..12).contains(&x) && (16..24).contains(&y);
            let expected = inside && a[(x - 4) as usize] >> (23 - y) & 1 == 1;
            assert_eq!(p == INK, expected, "pixel ({x}, {y})");
        }
        assert!(ink(&img) > 10);
    }

    #[test]
    fn glyphs_cover_ascii_and_latin_and_fall_back_to_a_question_mark() {
        assert_eq!(glyph('A'), font8x8::legacy::BASIC_LEGACY[65]);
        assert_ne!(glyph('e'), glyph('é'));
        assert_ne!(glyph('é'), glyph('?'));
        assert_eq!(glyph('\u{4e00}'), glyph('?'));
        assert_ne!(glyph('?'), [0; 8]);
        assert_eq!(glyph(' '), [0; 8]);
    }

    #[test]
    fn steps_and_tick_labels() {
        assert_eq!(int_step(0.3), 1);
        assert_eq!(int_step(1.0), 1);
        assert_eq!(int_step(3.0), 5);
        assert_eq!(int_step(14.9), 20);
        assert_eq!(int_step(101.0), 200);
        assert_eq!(real_step(0.46), 0.5);
        assert_eq!(real_step(1.38), 2.0);
        assert_eq!(real_step(f64::NAN), 1.0);
        assert_eq!(tick_label(0.0, 0.5), "0");
        assert_eq!(tick_label(1.5, 0.5), "1.5");
        assert_eq!(tick_label(0.04, 0.02), "0.04");
        assert_eq!(tick_label(6.0, 2.0), "6");
        assert_eq!(tick_label(2e6, 1e6), "2e6");
        assert_eq!(compact_count(123, 7).as_deref(), Some("123"));
        assert_eq!(compact_count(12_345, 3).as_deref(), Some("12k"));
        assert_eq!(compact_count(12_345, 1), None);
    }

    #[test]
    fn epoch_ticks_are_integers_that_do_not_crowd() {
        let labels = |n: usize| -> Vec<String> {
            epoch_axis(&history(n), 400)
                .1
                .into_iter()
                .map(|t| t.1)
                .collect()
        };
        assert_eq!(labels(1), ["1"]);
        assert_eq!(labels(3), ["1", "2", "3"]);
        let (xs, ticks) = epoch_axis(&history(150), 400);
        assert_eq!(xs.len(), 150);
        assert_eq!((xs[0], xs[149]), (0.0, 1.0));
        let want: Vec<String> = std::iter::once(1)
            .chain((20..=140).step_by(20))
            .map(|e: usize| e.to_string())
            .collect();
        assert_eq!(ticks.iter().map(|t| t.1.clone()).collect::<Vec<_>>(), want);
        for pair in ticks.windows(2) {
            let gap = (pair[1].0 - pair[0].0) * 400.0;
            assert!(gap >= 3.0 * 8.0 + 8.0, "{pair:?}");
        }
        assert!(epoch_axis(&[], 400).1.is_empty());
    }

    #[test]
    fn curves_png_for_1_3_and_150_epochs() {
        let dir = scratch("curves");
        for epochs in [1, 3, 150] {
            let path = dir.join(format!("curves-{epochs}.png"));
            curves(&path, &history(epochs)).unwrap();
            let img = image::open(&path).unwrap().to_rgb8();
            assert_eq!(img.dimensions(), (CURVES_W, CURVES_H), "{epochs}");
            for color in [BLUE, ORANGE, GREEN, INK] {
                assert!(has(&img, color), "{epochs}: {color:?}");
            }
            // Titles above both panels.
            assert!(crop(&img, 64, 10, 400, 20).contains(&INK));
            assert!(crop(&img, 564, 10, 400, 20).contains(&INK));
        }
        // The x tick numbers differ between 3 and 150 epochs.
        let ticks = |e: usize| {
            let img = image::open(dir.join(format!("curves-{e}.png")))
                .unwrap()
                .to_rgb8();
            crop(&img, 40, 44 + 280 + 6, 440, 10)
        };
        assert_ne!(ticks(3), ticks(150));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn curves_png_survives_nan_and_infinity() {
        let dir = scratch("curves-nan");
        let mut h = history(5);
        h[1].train_loss = f64::NAN;
        h[2].val_loss = f64::INFINITY;
        h[3].val_top1 = f64::NEG_INFINITY;
        h[4].train_top1 = f64::NAN;
        let all_bad: Vec<EpochMetrics> = (1..=4)
            .map(|e| {
                epoch(
                    e,
                    if e % 2 == 0 { f64::NAN } else { f64::INFINITY },
                    f64::NAN,
                )
            })
            .collect();
        let huge = vec![epoch(1, 1e300, 0.5), epoch(2, f64::MAX, 0.5)];
        for (name, h) in [
            ("mixed", h),
            ("bad", all_bad),
            ("huge", huge),
            ("empty", vec![]),
        ] {
            let path = dir.join(format!("{name}.png"));
            curves(&path, &h).unwrap();
            let img = image::open(&path).unwrap().to_rgb8();
            assert_eq!(img.dimensions(), (CURVES_W, CURVES_H), "{name}");
            assert!(has(&img, INK), "{name}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn confusion_png_for_2_10_100_and_1000_classes() {
        let dir = scratch("confusion");
        for n in [2, 10, 100, 1000] {
            let path = dir.join(format!("confusion-{n}.png"));
            confusion(&path, &matrix(n, 10 * n), &names(n)).unwrap();
            let img = image::open(&path).unwrap().to_rgb8();
            let layout = ConfusionLayout::new(n, &names(n));
            assert_eq!(img.dimensions(), (layout.width, layout.height), "{n}");
            assert!(img.width() <= 1600 && img.height() <= 1600, "{n}");
            let side = layout.cell * layout.cells as i64;
            assert!(side >= n as i64 && layout.x0 + side <= i64::from(img.width()));
            // A diagonal cell is blue-ish, an off-diagonal one red-ish.
            let (x, y) = layout.cell_origin(0, 0);
            let Rgb([r, _, b]) = *img.get_pixel(x as u32, y as u32);
            assert!(b == 255 && r < 255, "{n}");
            let (x, y) = layout.cell_origin(1, 0);
            let Rgb([r, g, b]) = *img.get_pixel(x as u32, y as u32);
            assert!(r == 255 && g == b && (n > 10 || b < 255), "{n}");
            // Title text.
            assert!(crop(&img, 0, 10, i64::from(img.width()), 16).contains(&INK));
        }
        let ten = ConfusionLayout::new(10, &names(10));
        assert_eq!((ten.cell, ten.row_step, ten.col_step), (64, 1, 1));
        assert_eq!((ten.width, ten.height), (806, 738));
        let hundred = ConfusionLayout::new(100, &names(100));
        assert_eq!(
            (hundred.cell, hundred.row_step, hundred.col_step),
            (12, 1, 5)
        );
        let thousand = ConfusionLayout::new(1000, &names(1000));
        assert_eq!((thousand.cell, thousand.row_step), (1, 20));
        let many = ConfusionLayout::new(3000, &[]);
        assert_eq!((many.bin, many.cells), (3, 1000));
        assert!(many.width <= 1600 && many.height <= 1600);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn confusion_cells_show_legible_counts() {
        let dir = scratch("confusion-counts");
        let classes = names(2);
        let draw = |name: &str, m: Vec<Vec<usize>>| {
            let path = dir.join(name);
            confusion(&path, &m, &classes).unwrap();
            image::open(&path).unwrap().to_rgb8()
        };
        // Same shares (so the same colours), different counts.
        let a = draw("a.png", vec![vec![10, 0], vec![0, 10]]);
        let b = draw("b.png", vec![vec![20, 0], vec![0, 20]]);
        let layout = ConfusionLayout::new(2, &classes);
        let cell = |img: &RgbImage, r, c| {
            let (x, y) = layout.cell_origin(r, c);
            crop(img, x, y, layout.cell, layout.cell)
        };
        assert_ne!(cell(&a, 0, 0), cell(&b, 0, 0));
        assert_ne!(cell(&a, 1, 1), cell(&b, 1, 1));
        assert_eq!(cell(&a, 0, 1), cell(&b, 0, 1));
        // White digits on the dark diagonal cells, faint zeros on the white ones.
        let dark = cell(&a, 0, 0);
        assert!(dark.contains(&Rgb([0, 0, 255])) && dark.contains(&WHITE));
        assert!(cell(&a, 0, 1).contains(&FAINT));
        // Dark digits on a light cell: 1 of 4 is a quarter of the row.
        let light = draw("c.png", vec![vec![1, 3], vec![0, 4]]);
        let c = cell(&light, 0, 0);
        assert!(c.contains(&INK) && !c.contains(&WHITE));
        // The title's accuracy differs: 10/20 vs 20/40 are both 100 %, 5/8 is not.
        let title = |img: &RgbImage| crop(img, 0, 10, i64::from(img.width()), 16);
        assert_ne!(title(&a), title(&light));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn confusion_rows_name_their_classes_cut_to_12_characters() {
        let dir = scratch("confusion-names");
        let m = matrix(3, 4);
        let draw = |name: &str, classes: &[&str]| {
            let classes: Vec<String> = classes.iter().map(|c| c.to_string()).collect();
            let path = dir.join(name);
            confusion(&path, &m, &classes).unwrap();
            image::open(&path).unwrap().to_rgb8()
        };
        let long = ["abcdefghijkl-one", "b", "c"];
        let a = draw("a.png", &long);
        let b = draw("b.png", &["abcdefghijkl-two", "b", "c"]);
        let c = draw("c.png", &["abcdefghijkx-one", "b", "c"]);
        assert_eq!(a, b, "only the first 12 characters are drawn");
        assert_ne!(a, c);
        // Without names the rows carry their indices only, so the label column is narrower.
        let bare = draw("d.png", &[]);
        assert!(ConfusionLayout::new(3, &[]).x0 < ConfusionLayout::new(3, &names(3)).x0);
        assert!(has(&bare, INK));
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// Writes example images to /tmp/alexnet-plot-examples for a look.
    #[test]
    #[ignore]
    fn write_examples() {
        let dir = PathBuf::from("/tmp/alexnet-plot-examples");
        std::fs::create_dir_all(&dir).unwrap();
        for epochs in [1, 3, 150] {
            curves(&dir.join(format!("curves-{epochs}.png")), &history(epochs)).unwrap();
        }
        let mut h = history(12);
        h[4].val_loss = f64::NAN;
        h[7].train_top1 = f64::INFINITY;
        curves(&dir.join("curves-nan.png"), &h).unwrap();
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
