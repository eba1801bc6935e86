//! `alexnet-infer filters`: conv1's kernels as an image grid, like figure 3 of the paper.

use std::path::PathBuf;

use alexnet_common::backend::{dispatch, BackendJob};
use alexnet_model::tensor::HostTensor;
use alexnet_model::AlexNetBackend;
use anyhow::{Context, Result};
use clap::Args;
use image::{Rgb, RgbImage};

use crate::inputs::WeightArgs;

#[derive(Args, Debug)]
pub struct FiltersArgs {
    #[command(flatten)]
    weights: WeightArgs,
    /// Output PNG.
    #[arg(long, default_value = "conv1.png")]
    out: PathBuf,
    /// Pixels per kernel pixel (1 to 64).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    scale: u32,
}

/// Lays out `[C, 3, k, k]` kernels in a grid (12 columns for the paper's 96 kernels, else a
/// square-ish grid), each kernel scaled to the full 0–255 range on its own, with a 1-pixel
/// (scaled) grey border. A grid wider or taller than [`MAX_SIDE`] pixels is an error.
pub fn filter_grid(weights: &HostTensor, scale: u32) -> Result<RgbImage> {
    let (count, k) = (weights.shape[0], weights.shape[2]);
    let columns = if count == 96 {
        12
    } else {
        (count as f64).sqrt().ceil() as usize
    };
    let rows = count.div_ceil(columns);
    let side = |cells: usize| {
        let cell = (k + 1).checked_mul(scale as usize)?;
        let side = cells.checked_mul(cell)?.checked_add(scale as usize)?;
        u32::try_from(side).ok().filter(|&side| side <= MAX_SIDE)
    };
    let (Some(width), Some(height)) = (side(columns), side(rows)) else {
        anyhow::bail!(
            "--scale {scale}: {count} kernels of {k}×{k} would make an image over {MAX_SIDE} \
             pixels per side"
        );
    };
    let cell = (k as u32 + 1) * scale;
    let mut grid = RgbImage::from_pixel(width, height, Rgb([128, 128, 128]));
    let per_kernel = 3 * k * k;
    for (n, kernel) in weights.values.chunks(per_kernel).enumerate() {
        let lo = kernel.iter().copied().fold(f32::INFINITY, f32::min);
        let hi = kernel.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let range = (hi - lo).max(f32::EPSILON);
        let (x0, y0) = (
            (n % columns) as u32 * cell + scale,
            (n / columns) as u32 * cell + scale,
        );
        for y in 0..k {
            for x in 0..k {
                let channel =
                    |c: usize| (255.0 * (kernel[c * k * k + y * k + x] - lo) / range).round() as u8;
                let pixel = Rgb([channel(0), channel(1), channel(2)]);
                for dy in 0..scale {
                    for dx in 0..scale {
                        let (px, py) = (x0 + x as u32 * scale + dx, y0 + y as u32 * scale + dy);
                        grid.put_pixel(px, py, pixel);
                    }
                }
            }
        }
    }
    Ok(grid)
}

/// The largest side of the grid image, in pixels.
pub const MAX_SIDE: u32 = 16_384;

struct Filters<'a> {
    args: &'a FiltersArgs,
}

impl BackendJob for Filters<'_> {
    type Output = HostTensor;

    fn run<B: AlexNetBackend>(self, device: B::Device) -> Result<HostTensor> {
        let model = self.args.weights.load::<B>(&device)?;
        Ok(HostTensor::from_tensor(model.convs()[0].weight.val()))
    }
}

pub fn run(args: &FiltersArgs) -> Result<()> {
    let weights = dispatch(args.weights.backend()?, Filters { args })?;
    anyhow::ensure!(
        weights.shape[1] == 3,
        "conv1 has {} input channels; only RGB kernels can be drawn",
        weights.shape[1]
    );
    let grid = filter_grid(&weights, args.scale)?;
    grid.save(&args.out)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    eprintln!(
        "wrote {} conv1 kernels ({}×{}) to {}",
        weights.shape[0],
        weights.shape[2],
        weights.shape[3],
        args.out.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_places_and_scales_each_kernel() {
        // Two 2×2 kernels: the first ramps 0..11, the second is constant.
        let mut values: Vec<f32> = (0..12).map(|v| v as f32).collect();
        values.extend([5.0; 12]);
        let weights = HostTensor {
            shape: vec![2, 3, 2, 2],
            values,
        };
        let grid = filter_grid(&weights, 1).unwrap();
        // 2 columns of (2 + 1) pixels plus a border: 7 × 4.
        assert_eq!(grid.dimensions(), (7, 4));
        assert_eq!(grid.get_pixel(1, 1).0, [0, 93, 185]); // kernel 0, pixel (0,0): 0, 4, 8 of 0..11
        assert_eq!(grid.get_pixel(2, 2).0, [70, 162, 255]); // kernel 0, pixel (1,1): 3, 7, 11
        assert_eq!(grid.get_pixel(4, 1).0, [0, 0, 0]); // constant kernel → 0
        assert_eq!(grid.get_pixel(0, 0).0, [128, 128, 128]); // border
    }

    /// The paper's 96 kernels at a huge scale: an error naming --scale, not an overflow.
    #[test]
    fn huge_scales_are_refused() {
        let weights = HostTensor {
            shape: vec![96, 3, 11, 11],
            values: vec![0.0; 96 * 3 * 121],
        };
        let err = filter_grid(&weights, 1_000_000).unwrap_err().to_string();
        assert!(err.contains("--scale 1000000"), "{err}");
        assert!(filter_grid(&weights, 64).is_ok());
    }
}
