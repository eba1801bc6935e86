//! `curves.png` and `confusion.png`, drawn with the `image` crate (no plotting dependency).
//!
//! `curves.png`: left panel loss (train blue, validation orange; y from 0 to the largest
//! loss), right panel accuracy (train top-1 blue, validation top-1 orange, validation top-5
//! green; y from 0 to 100 %, grid every 10 %); x is the epoch. `confusion.png`: one cell per
//! (true class row, predicted class column), darker for a larger share of the row.

use std::path::Path;

use anyhow::Result;
use image::{Rgb, RgbImage};

use super::metrics::EpochMetrics;

const BLUE: Rgb<u8> = Rgb([31, 119, 180]);
const ORANGE: Rgb<u8> = Rgb([255, 127, 14]);
const GREEN: Rgb<u8> = Rgb([44, 160, 44]);
const GRID: Rgb<u8> = Rgb([225, 225, 225]);
const AXIS: Rgb<u8> = Rgb([90, 90, 90]);

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

    fn frame(&self, img: &mut RgbImage, grid_lines: usize) {
        for i in 0..=grid_lines {
            let (_, y) = self.point(0.0, i as f64 / grid_lines as f64);
            line(img, (self.x0, y), (self.x0 + self.w, y), GRID, 1);
        }
        line(
            img,
            (self.x0, self.y0),
            (self.x0, self.y0 + self.h),
            AXIS,
            1,
        );
        let bottom = self.y0 + self.h;
        line(img, (self.x0, bottom), (self.x0 + self.w, bottom), AXIS, 1);
    }

    fn series(&self, img: &mut RgbImage, values: &[f64], top: f64, color: Rgb<u8>) {
        let n = values.len();
        let fx = |i: usize| {
            if n > 1 {
                i as f64 / (n - 1) as f64
            } else {
                0.5
            }
        };
        let points: Vec<(i64, i64)> = values
            .iter()
            .enumerate()
            .map(|(i, v)| self.point(fx(i), v / top))
            .collect();
        for pair in points.windows(2) {
            line(img, pair[0], pair[1], color, 2);
        }
        for &p in &points {
            dot(img, p, color);
        }
    }
}

fn put(img: &mut RgbImage, x: i64, y: i64, color: Rgb<u8>) {
    if x >= 0 && y >= 0 && (x as u32) < img.width() && (y as u32) < img.height() {
        img.put_pixel(x as u32, y as u32, color);
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
    for dy in -2..=2 {
        for dx in -2..=2 {
            put(img, x + dx, y + dy, color);
        }
    }
}

/// Loss and accuracy curves per epoch.
pub fn curves(path: &Path, history: &[EpochMetrics]) -> Result<()> {
    let mut img = RgbImage::from_pixel(800, 320, Rgb([255, 255, 255]));
    let loss = Panel {
        x0: 30,
        y0: 20,
        w: 340,
        h: 270,
    };
    let acc = Panel {
        x0: 430,
        y0: 20,
        w: 340,
        h: 270,
    };
    loss.frame(&mut img, 4);
    acc.frame(&mut img, 10);
    let pick = |f: fn(&EpochMetrics) -> f64| history.iter().map(f).collect::<Vec<_>>();
    let (train_loss, val_loss) = (pick(|m| m.train_loss), pick(|m| m.val_loss));
    let top = train_loss
        .iter()
        .chain(&val_loss)
        .copied()
        .filter(|v| v.is_finite())
        .fold(1e-9, f64::max);
    loss.series(&mut img, &train_loss, top, BLUE);
    loss.series(&mut img, &val_loss, top, ORANGE);
    acc.series(&mut img, &pick(|m| m.train_top1), 1.0, BLUE);
    acc.series(&mut img, &pick(|m| m.val_top1), 1.0, ORANGE);
    acc.series(&mut img, &pick(|m| m.val_top5), 1.0, GREEN);
    img.save(path)?;
    Ok(())
}

/// The confusion matrix `[truth][guess]`, rows normalised.
pub fn confusion(path: &Path, counts: &[Vec<usize>]) -> Result<()> {
    let n = counts.len().max(1);
    let cell = (600 / n).clamp(1, 40) as u32;
    let side = cell * n as u32;
    let mut img = RgbImage::from_pixel(side + 2, side + 2, Rgb([255, 255, 255]));
    for (t, row) in counts.iter().enumerate() {
        let total = row.iter().sum::<usize>().max(1) as f64;
        for (g, &c) in row.iter().enumerate() {
            let share = c as f64 / total;
            let v = (255.0 * (1.0 - share)).round() as u8;
            let color = if t == g {
                Rgb([v, v, 255])
            } else {
                Rgb([255, v, v])
            };
            for y in 0..cell {
                for x in 0..cell {
                    img.put_pixel(1 + g as u32 * cell + x, 1 + t as u32 * cell + y, color);
                }
            }
        }
    }
    img.save(path)?;
    Ok(())
}
