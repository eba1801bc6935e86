//! Training augmentation and evaluation views, deterministic under a seed.
//!
//! One pipeline serves every dataset and variant:
//!
//! 1. resize the shorter side to `resize` (torchvision's `Resize`, Pillow-exact, from
//!    [`alexnet_model::preprocess`]; a no-op when the image already has that side — CIFAR);
//! 2. training: zero-pad by `pad` pixels and take a random `crop × crop` window (CIFAR:
//!    `RandomCrop(32, padding=4)`; ImageNet: a random 224 crop of the 256 image, the paper's
//!    "random 224×224 patches") — or, with `random_resized`, torchvision's
//!    `RandomResizedCrop(crop)` of the original image instead of steps 1–2 (a window of 8 % to
//!    100 % of the area and aspect ratio 3/4 to 4/3, resized to `crop × crop`) — then mirror
//!    with probability ½ (`RandomHorizontalFlip`);
//!    evaluation: the center crop (torchvision's `CenterCrop` offsets), no flip;
//! 3. scale to `[0, 1]`;
//! 4. training only, when `lighting > 0`: the paper's PCA colour augmentation ("fancy PCA"):
//!    add `Σᵢ pᵢ·αᵢ·λᵢ` to every pixel, `αᵢ ~ N(0, lighting)` drawn once per image, with the
//!    ImageNet RGB eigenvectors `pᵢ` and eigenvalues `λᵢ` (values of fb.resnet.torch, on the
//!    `[0, 1]` scale);
//! 5. normalise with the per-channel mean and standard deviation.
//!
//! The random choices for one image come from a generator the caller seeds with
//! `(seed, epoch, image index)`, so the result does not depend on threads or batch order.

use alexnet_model::preprocess::{resample_bilinear, Preprocessing};
use image::RgbImage;
use serde::{Deserialize, Serialize};

use super::rng::Rng;

pub use alexnet_model::preprocess::{crop, CIFAR_MEAN, CIFAR_STD};
/// ImageNet's per-channel mean (torchvision).
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet's per-channel standard deviation (torchvision).
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// Eigenvalues of the covariance of ImageNet's RGB pixels (`[0, 1]` scale).
pub const PCA_EIGVAL: [f32; 3] = [0.2175, 0.0188, 0.0045];
/// The matching eigenvectors, one per column (`PCA_EIGVEC[channel][component]`).
pub const PCA_EIGVEC: [[f32; 3]; 3] = [
    [-0.5675, 0.7192, 0.4009],
    [-0.5808, -0.0045, -0.8140],
    [-0.5836, -0.6948, 0.4203],
];

/// The preprocessing and augmentation of one run (stored in `config.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transform {
    /// Shorter side after resizing.
    pub resize: usize,
    /// Side of the network input.
    pub crop: usize,
    /// Zero padding around the resized image before the random crop (training).
    pub pad: usize,
    /// Random horizontal mirroring (training).
    pub flip: bool,
    /// Training crops are torchvision's `RandomResizedCrop` instead of fixed-size windows of
    /// the resized image.
    #[serde(default)]
    pub random_resized: bool,
    /// Standard deviation of the PCA lighting coefficients (training); 0 turns it off.
    pub lighting: f32,
    /// Per-channel mean subtracted after scaling to `[0, 1]`.
    pub mean: [f32; 3],
    /// Per-channel standard deviation divided by.
    pub std: [f32; 3],
}

impl Transform {
    /// CIFAR: 32×32, 4-pixel zero padding, flip, CIFAR-10 statistics, no lighting.
    pub fn cifar() -> Self {
        Self {
            resize: 32,
            crop: 32,
            pad: 4,
            flip: true,
            random_resized: false,
            lighting: 0.0,
            mean: CIFAR_MEAN,
            std: CIFAR_STD,
        }
    }

    /// ImageNet as in the paper: random 224 crops of the 256 image, flip, PCA lighting 0.1,
    /// torchvision's statistics.
    pub fn imagenet() -> Self {
        Self {
            resize: 256,
            crop: 224,
            pad: 0,
            flip: true,
            random_resized: false,
            lighting: 0.1,
            mean: IMAGENET_MEAN,
            std: IMAGENET_STD,
        }
    }

    /// Checks user-supplied values.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.preprocessing().validate()?;
        if !(self.lighting.is_finite() && self.lighting >= 0.0) {
            anyhow::bail!(
                "lighting must be a non-negative number, got {}",
                self.lighting
            );
        }
        Ok(())
    }

    /// Refuses a `w`×`h` image whose resized copy would be over the pixel limit
    /// ([`Preprocessing::check_resizable`]).
    pub fn resize_check(&self, w: u32, h: u32) -> anyhow::Result<()> {
        Ok(self.preprocessing().check_resizable(w, h)?)
    }

    fn preprocessing(&self) -> Preprocessing {
        Preprocessing {
            resize: self.resize,
            crop: self.crop,
            mean: self.mean,
            std: self.std,
            ..Preprocessing::default()
        }
    }

    /// The evaluation view: resize, center crop, normalise. `[3, crop, crop]` values, CHW.
    pub fn eval(&self, img: &RgbImage) -> Vec<f32> {
        let pre = self.preprocessing();
        pre.normalize(&pre.center_crop(&pre.resize_shorter(img)))
            .values
    }

    /// A training view drawn with `rng`. `[3, crop, crop]` values, CHW.
    pub fn train(&self, img: &RgbImage, rng: &mut Rng) -> Vec<f32> {
        let mut view = if self.random_resized {
            let (left, top, w, h) = random_resized_window(img.width(), img.height(), rng);
            let window = image::imageops::crop_imm(img, left, top, w, h).to_image();
            resample_bilinear(&window, self.crop, self.crop)
        } else {
            self.random_window(img, rng)
        };
        if self.flip && rng.coin() {
            view = hflip(&view);
        }
        let mut values = scale(&view);
        if self.lighting > 0.0 {
            let alpha: [f32; 3] = std::array::from_fn(|_| rng.normal() as f32 * self.lighting);
            add_lighting(&mut values, lighting_shift(alpha));
        }
        normalize(&mut values, self.mean, self.std);
        values
    }

    /// A random `crop × crop` window of the resized, zero-padded image.
    fn random_window(&self, img: &RgbImage, rng: &mut Rng) -> RgbImage {
        let pre = self.preprocessing();
        let resized = pre.resize_shorter(img);
        let (w, h) = (resized.width() as usize, resized.height() as usize);
        // Offsets of the crop in the padded image; a side shorter than the crop (impossible
        // after validate, but harmless) is centred.
        let pick = |rng: &mut Rng, size: usize| {
            let span = size + 2 * self.pad;
            let offset = if span > self.crop {
                rng.below(span - self.crop + 1) as i64
            } else {
                -(((self.crop - span) / 2) as i64)
            };
            offset - self.pad as i64
        };
        let top = pick(rng, h);
        let left = pick(rng, w);
        crop(&resized, top, left, self.crop)
    }
}

/// `RandomResizedCrop`'s range of the window's share of the image area (torchvision default).
pub const RESIZED_CROP_SCALE: (f64, f64) = (0.08, 1.0);
/// `RandomResizedCrop`'s range of the window's aspect ratio `w / h` (torchvision default).
pub const RESIZED_CROP_RATIO: (f64, f64) = (3.0 / 4.0, 4.0 / 3.0);

/// torchvision's `RandomResizedCrop.get_params` for a `w × h` image: up to 10 tries of an
/// area share uniform in [`RESIZED_CROP_SCALE`] and a log-uniform aspect ratio in
/// [`RESIZED_CROP_RATIO`]; if none fits, the largest central window whose ratio is clamped
/// to that range. Returns `(left, top, width, height)`.
pub fn random_resized_window(w: u32, h: u32, rng: &mut Rng) -> (u32, u32, u32, u32) {
    let area = f64::from(w) * f64::from(h);
    let (log_lo, log_hi) = (RESIZED_CROP_RATIO.0.ln(), RESIZED_CROP_RATIO.1.ln());
    for _ in 0..10 {
        let share =
            RESIZED_CROP_SCALE.0 + rng.uniform() * (RESIZED_CROP_SCALE.1 - RESIZED_CROP_SCALE.0);
        let aspect = (log_lo + rng.uniform() * (log_hi - log_lo)).exp();
        let cw = (area * share * aspect).sqrt().round() as u32;
        let ch = (area * share / aspect).sqrt().round() as u32;
        if 0 < cw && cw <= w && 0 < ch && ch <= h {
            let top = rng.below((h - ch + 1) as usize) as u32;
            let left = rng.below((w - cw + 1) as usize) as u32;
            return (left, top, cw, ch);
        }
    }
    let ratio = f64::from(w) / f64::from(h);
    let (cw, ch) = if ratio < RESIZED_CROP_RATIO.0 {
        (w, (f64::from(w) / RESIZED_CROP_RATIO.0).round() as u32)
    } else if ratio > RESIZED_CROP_RATIO.1 {
        ((f64::from(h) * RESIZED_CROP_RATIO.1).round() as u32, h)
    } else {
        (w, h)
    };
    ((w - cw) / 2, (h - ch) / 2, cw, ch)
}

/// The mirror image (left ↔ right).
pub fn hflip(img: &RgbImage) -> RgbImage {
    image::imageops::flip_horizontal(img)
}

/// `[3, H, W]` values in `[0, 1]`, CHW.
pub fn scale(img: &RgbImage) -> Vec<f32> {
    let raw = img.as_raw();
    (0..3)
        .flat_map(|c| raw[c..].iter().step_by(3).map(|&v| v as f32 / 255.0))
        .collect()
}

/// `(x - mean[c]) / std[c]` on CHW values, in place.
pub fn normalize(values: &mut [f32], mean: [f32; 3], std: [f32; 3]) {
    let plane = values.len() / 3;
    for (c, chunk) in values.chunks_mut(plane).enumerate() {
        for v in chunk {
            *v = (*v - mean[c]) / std[c];
        }
    }
}

/// The RGB shift of the PCA lighting noise for coefficients `alpha`: `Σᵢ pᵢ·αᵢ·λᵢ`.
pub fn lighting_shift(alpha: [f32; 3]) -> [f32; 3] {
    std::array::from_fn(|c| {
        (0..3)
            .map(|i| PCA_EIGVEC[c][i] * alpha[i] * PCA_EIGVAL[i])
            .sum()
    })
}

/// Adds a per-channel shift to CHW values.
pub fn add_lighting(values: &mut [f32], shift: [f32; 3]) {
    let plane = values.len() / 3;
    for (c, chunk) in values.chunks_mut(plane).enumerate() {
        for v in chunk {
            *v += shift[c];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 32×32 image whose pixel (x, y) is (x, y, x + y) — every position distinguishable.
    fn ramp(side: u32) -> RgbImage {
        RgbImage::from_fn(side, side, |x, y| {
            image::Rgb([x as u8, y as u8, (x + y) as u8])
        })
    }

    fn unnormalize(t: &Transform, values: &[f32]) -> Vec<u8> {
        let plane = values.len() / 3;
        values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let c = i / plane;
                ((v * t.std[c] + t.mean[c]) * 255.0).round() as u8
            })
            .collect()
    }

    #[test]
    fn eval_is_the_plain_normalised_image() {
        let t = Transform::cifar();
        let img = ramp(32);
        let values = t.eval(&img);
        assert_eq!(values.len(), 3 * 32 * 32);
        // Pixel (x=5, y=7), red plane: (5/255 - mean) / std.
        let expected = (5.0 / 255.0 - CIFAR_MEAN[0]) / CIFAR_STD[0];
        assert!((values[7 * 32 + 5] - expected).abs() < 1e-6);
        let expected = (12.0 / 255.0 - CIFAR_MEAN[2]) / CIFAR_STD[2];
        assert!((values[2 * 1024 + 7 * 32 + 5] - expected).abs() < 1e-6);
        // Deterministic and independent of any generator.
        assert_eq!(values, t.eval(&img));
    }

    #[test]
    fn cifar_crop_is_a_shifted_window_with_zero_padding() {
        let t = Transform {
            flip: false,
            ..Transform::cifar()
        };
        let img = ramp(32);
        let mut offsets = std::collections::HashSet::new();
        for seed in 0..400 {
            let values = t.train(&img, &mut Rng::new(seed));
            assert_eq!(values.len(), 3 * 32 * 32);
            let px = unnormalize(&t, &values);
            // Find the shift from any in-image pixel: the window is the image moved by
            // (dx, dy) in -4..=4, everything outside the image is black.
            let (mut dx, mut dy) = (None, None);
            for y in 0..32usize {
                for x in 0..32usize {
                    let (r, g, b) = (px[y * 32 + x], px[1024 + y * 32 + x], px[2048 + y * 32 + x]);
                    if b != 0 || r != 0 || g != 0 {
                        dx.get_or_insert(r as i64 - x as i64);
                        dy.get_or_insert(g as i64 - y as i64);
                    }
                }
            }
            let (dx, dy) = (dx.unwrap(), dy.unwrap());
            assert!((-4..=4).contains(&dx) && (-4..=4).contains(&dy));
            for y in 0..32i64 {
                for x in 0..32i64 {
                    let (sx, sy) = (x + dx, y + dy);
                    let i = (y * 32 + x) as usize;
                    let got = [px[i], px[1024 + i], px[2048 + i]];
                    let want = if (0..32).contains(&sx) && (0..32).contains(&sy) {
                        [sx as u8, sy as u8, (sx + sy) as u8]
                    } else {
                        [0, 0, 0]
                    };
                    assert_eq!(got, want, "seed {seed} at ({x}, {y}), shift ({dx}, {dy})");
                }
            }
            offsets.insert((dx, dy));
        }
        // All 81 shifts are reachable, including the extremes.
        assert_eq!(offsets.len(), 81);
    }

    #[test]
    fn flip_mirrors_about_half_the_time_and_only_mirrors() {
        let t = Transform {
            pad: 0,
            ..Transform::cifar()
        };
        let img = ramp(32);
        let plain = t.eval(&img);
        let mirrored = t.eval(&hflip(&img));
        let mut flips = 0;
        for seed in 0..1000 {
            let values = t.train(&img, &mut Rng::new(seed));
            if values == mirrored {
                flips += 1;
            } else {
                assert_eq!(
                    values, plain,
                    "seed {seed}: neither the image nor its mirror"
                );
            }
        }
        assert!((400..600).contains(&flips), "{flips} flips in 1000");
        // Mirroring twice is the identity.
        assert_eq!(hflip(&hflip(&img)), img);
    }

    #[test]
    fn same_generator_same_view() {
        let t = Transform::cifar();
        let img = ramp(32);
        assert_eq!(
            t.train(&img, &mut Rng::new(9)),
            t.train(&img, &mut Rng::new(9))
        );
        let differ = (0..20)
            .any(|s| t.train(&img, &mut Rng::new(s)) != t.train(&img, &mut Rng::new(s + 100)));
        assert!(differ);
    }

    #[test]
    fn imagenet_crops_224_of_the_resized_image_and_lighting_shifts_channels() {
        let t = Transform {
            lighting: 0.0,
            ..Transform::imagenet()
        };
        let img = RgbImage::from_fn(300, 256, |x, y| image::Rgb([(x % 256) as u8, y as u8, 9]));
        let values = t.train(&img, &mut Rng::new(3));
        assert_eq!(values.len(), 3 * 224 * 224);
        assert_eq!(t.eval(&img).len(), 3 * 224 * 224);

        // Lighting adds one constant per channel, the same to every pixel.
        let lit = Transform {
            lighting: 0.1,
            ..t.clone()
        };
        let a = t.train(&img, &mut Rng::new(3));
        let b = lit.train(&img, &mut Rng::new(3));
        let plane = 224 * 224;
        for c in 0..3 {
            let d0 = (b[c * plane] - a[c * plane]) * t.std[c];
            for i in (0..plane).step_by(997) {
                let d = (b[c * plane + i] - a[c * plane + i]) * t.std[c];
                assert!((d - d0).abs() < 1e-5);
            }
        }
        // The shift is the eigen-decomposition's: along eigenvector 0 for alpha = (1, 0, 0).
        let shift = lighting_shift([1.0, 0.0, 0.0]);
        for c in 0..3 {
            assert!((shift[c] - PCA_EIGVEC[c][0] * PCA_EIGVAL[0]).abs() < 1e-7);
        }
    }

    #[test]
    fn imagenet_fixed_crop_is_a_window_of_the_resized_image() {
        let t = Transform {
            lighting: 0.0,
            flip: false,
            ..Transform::imagenet()
        };
        // 300×256: already 256 on the shorter side, so the resize is the identity. Pixel
        // (x, y) = (x mod 256, y, x div 256) names its position.
        let img = RgbImage::from_fn(300, 256, |x, y| {
            image::Rgb([(x % 256) as u8, y as u8, (x / 256) as u8])
        });
        let mut lefts = std::collections::HashSet::new();
        for seed in 0..50 {
            let px = unnormalize(&t, &t.train(&img, &mut Rng::new(seed)));
            let plane = 224 * 224;
            let (left, top) = (px[0] as u32 + 256 * px[2 * plane] as u32, px[plane] as u32);
            assert!(left <= 300 - 224 && top <= 256 - 224);
            for (y, x) in [(0, 0), (223, 223), (100, 17), (5, 200)] {
                let want = img.get_pixel(left + x, top + y).0;
                let i = (y * 224 + x) as usize;
                assert_eq!(
                    [px[i], px[plane + i], px[2 * plane + i]],
                    want,
                    "seed {seed}"
                );
            }
            lefts.insert(left);
        }
        assert!(lefts.len() > 10, "offsets barely vary: {lefts:?}");
    }

    #[test]
    fn random_resized_windows_follow_torchvisions_ranges() {
        let mut rng = Rng::new(5);
        let (mut smallest, mut largest) = (1.0f64, 0.0f64);
        for _ in 0..2000 {
            let (left, top, w, h) = random_resized_window(400, 300, &mut rng);
            assert!(left + w <= 400 && top + h <= 300 && w > 0 && h > 0);
            let share = f64::from(w * h) / 120_000.0;
            let aspect = f64::from(w) / f64::from(h);
            // Rounding to whole pixels moves share and ratio by a little.
            assert!((0.075..=1.0).contains(&share), "share {share}");
            assert!((0.72..=1.36).contains(&aspect), "aspect {aspect}");
            smallest = smallest.min(share);
            largest = largest.max(share);
        }
        assert!(smallest < 0.1 && largest > 0.9, "{smallest}..{largest}");
        // A 10:1 strip never fits 3/4..4/3 windows of large area often enough: the fallback
        // is the central window with the ratio clamped to 4/3 (or a fitting random one).
        let (left, top, w, h) = random_resized_window(1000, 100, &mut Rng::new(1));
        assert!(left + w <= 1000 && top + h <= 100);
        let t = Transform {
            random_resized: true,
            lighting: 0.0,
            ..Transform::imagenet()
        };
        let img = RgbImage::from_fn(400, 300, |x, y| image::Rgb([x as u8, y as u8, 7]));
        let values = t.train(&img, &mut Rng::new(2));
        assert_eq!(values.len(), 3 * 224 * 224);
        assert_eq!(values, t.train(&img, &mut Rng::new(2)));
        assert_ne!(values, t.train(&img, &mut Rng::new(3)));
    }

    #[test]
    fn bad_transforms_are_rejected() {
        let t = Transform {
            crop: 40,
            ..Transform::cifar()
        };
        assert!(t.validate().is_err());
        let t = Transform {
            lighting: -1.0,
            ..Transform::cifar()
        };
        assert!(t.validate().is_err());
        assert!(Transform::cifar().validate().is_ok());
    }
}
