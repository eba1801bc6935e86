//! torchvision-exact image preprocessing: image file → normalised `[3, H, W]` values.
//!
//! [`Preprocessing::center_view`] is torchvision's ImageNet inference transform,
//!
//! ```python
//! Compose([Resize(256), CenterCrop(224), ToTensor(), Normalize(mean, std)])
//! ```
//!
//! applied to `PIL.Image.open(path).convert("RGB")`, and gives the same numbers: the resize is
//! Pillow's own algorithm (`ImagingResample` in `libImaging/Resample.c`: separable,
//! horizontal pass then vertical pass, a triangle filter whose support widens with the
//! downscale factor, 22-bit fixed-point weights and rounding to `u8` after each pass), the crop
//! uses torchvision's offsets and the normalisation torchvision's `f32` arithmetic.
//! [`Preprocessing::ten_crop`] gives torchvision's `TenCrop` views of the resized image.
//!
//! ```
//! use alexnet_model::preprocess::Preprocessing;
//!
//! let img = image::RgbImage::from_pixel(400, 300, image::Rgb([120, 130, 140]));
//! let pre = Preprocessing::default();
//! assert_eq!(pre.resize_shorter(&img).dimensions(), (341, 256));
//! let view = pre.center_view(&img);
//! assert_eq!(view.shape, vec![3, 224, 224]);
//! ```

use std::io::Cursor;
use std::path::Path;

use image::{DynamicImage, ImageReader, RgbImage};

use crate::error::AlexNetError;

/// CIFAR-10's per-channel mean (R, G, B): the cifar variant's normalisation, in training and
/// inference alike.
pub const CIFAR_MEAN: [f32; 3] = [0.4914, 0.4822, 0.4465];
/// CIFAR-10's per-channel standard deviation.
pub const CIFAR_STD: [f32; 3] = [0.2470, 0.2435, 0.2616];
use crate::tensor::HostTensor;

/// torchvision's inference transform, with each step configurable.
///
/// Call [`validate`](Self::validate) on values that come from a user: the methods do not
/// check them (a crop larger than the image is zero-padded, as torchvision pads it).
#[derive(Debug, Clone, PartialEq)]
pub struct Preprocessing {
    /// Length the shorter side is resized to (torchvision `Resize(256)`).
    pub resize: usize,
    /// Side of the square center crop (torchvision `CenterCrop(224)`).
    pub crop: usize,
    /// Per-channel mean (R, G, B) subtracted after scaling to `[0, 1]`.
    pub mean: [f32; 3],
    /// Per-channel standard deviation (R, G, B) divided by after subtracting the mean.
    pub std: [f32; 3],
}

impl Default for Preprocessing {
    /// torchvision's ImageNet values: resize 256, crop 224, mean (0.485, 0.456, 0.406),
    /// std (0.229, 0.224, 0.225).
    fn default() -> Self {
        // Python floats rounded to f32, as `torch.as_tensor(mean, dtype=float32)` does.
        Self {
            resize: 256,
            crop: 224,
            mean: [0.485_f64 as f32, 0.456_f64 as f32, 0.406_f64 as f32],
            std: [0.229_f64 as f32, 0.224_f64 as f32, 0.225_f64 as f32],
        }
    }
}

/// Reads and decodes an image file as 8-bit RGB, like `PIL.Image.open(path).convert("RGB")`.
///
/// The format is found from the content, not the extension. Greyscale is replicated to the
/// three channels; alpha is dropped without compositing; palettes are looked up.
/// 16-bit images keep their high byte (`v >> 8`). For 16-bit RGB(A) this is what Pillow
/// does; for 16-bit greyscale Pillow differs: it opens the file as mode `I;16` and *clips*
/// to 255 on conversion, which turns almost every real 16-bit greyscale image white. We
/// scale instead, deliberately.
///
/// A missing, corrupt, truncated or non-image file is an [`AlexNetError::Input`] naming
/// the path.
pub fn load_rgb(path: &Path) -> Result<RgbImage, AlexNetError> {
    let bytes = std::fs::read(path)
        .map_err(|e| AlexNetError::Input(format!("{}: cannot read: {e}", path.display())))?;
    decode(&bytes).map_err(|e| AlexNetError::Input(format!("{}: {e}", path.display())))
}

/// [`load_rgb`] for an encoded image held in memory.
pub fn decode_rgb(bytes: &[u8]) -> Result<RgbImage, AlexNetError> {
    decode(bytes).map_err(|e| AlexNetError::Input(format!("image data: {e}")))
}

fn decode(bytes: &[u8]) -> Result<RgbImage, String> {
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| format!("cannot read: {e}"))?;
    if reader.format().is_none() {
        return Err("not an image in a known format (png, jpeg, bmp, gif, webp, tiff)".into());
    }
    let img = reader
        .decode()
        .map_err(|e| format!("cannot decode image: {e}"))?;
    Ok(to_rgb8(img))
}

/// 8-bit RGB from any decoded image; 16-bit channels keep their high byte.
fn to_rgb8(img: DynamicImage) -> RgbImage {
    let high_byte = |rgb16: image::ImageBuffer<image::Rgb<u16>, Vec<u16>>| {
        let (w, h) = rgb16.dimensions();
        let raw = rgb16
            .into_raw()
            .into_iter()
            .map(|v| (v >> 8) as u8)
            .collect();
        RgbImage::from_raw(w, h, raw).expect("same size")
    };
    match img {
        DynamicImage::ImageLuma16(_)
        | DynamicImage::ImageLumaA16(_)
        | DynamicImage::ImageRgb16(_)
        | DynamicImage::ImageRgba16(_) => high_byte(img.to_rgb16()),
        other => other.to_rgb8(),
    }
}

impl Preprocessing {
    /// Checks that the values describe a usable transform: non-zero sizes, a crop no larger
    /// than the resized shorter side, finite means and positive finite deviations.
    pub fn validate(&self) -> Result<(), AlexNetError> {
        let fail = |msg: String| Err(AlexNetError::InvalidConfig(format!("preprocessing: {msg}")));
        if self.resize == 0 || self.crop == 0 {
            return fail(format!(
                "resize ({}) and crop ({}) must be positive",
                self.resize, self.crop
            ));
        }
        if self.crop > self.resize {
            return fail(format!(
                "crop {} is larger than the resized shorter side {}",
                self.crop, self.resize
            ));
        }
        if self.mean.iter().any(|m| !m.is_finite()) {
            return fail(format!("mean {:?} must be finite", self.mean));
        }
        if self.std.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
            return fail(format!("std {:?} must be positive and finite", self.std));
        }
        Ok(())
    }

    /// Resizes so that the shorter side is `self.resize`, like torchvision's `Resize(256)` on
    /// a PIL image: Pillow's bilinear filter with antialiasing (the triangle widens by the
    /// downscale factor). The longer side becomes `int(resize * long / short)`.
    /// `[h, w]` → `[resize, ⌊resize·w/h⌋]` (landscape) or `[⌊resize·h/w⌋, resize]` (portrait).
    pub fn resize_shorter(&self, img: &RgbImage) -> RgbImage {
        let (w, h) = (img.width() as usize, img.height() as usize);
        let (short, long) = (w.min(h), w.max(h));
        if short == 0 || short == self.resize {
            return img.clone();
        }
        // Python's `int(size * long / short)`: an exact product, one rounded division.
        let new_long = ((self.resize * long) as f64 / short as f64) as usize;
        let (new_w, new_h) = if w <= h {
            (self.resize, new_long)
        } else {
            (new_long, self.resize)
        };
        resample_bilinear(img, new_w, new_h)
    }

    /// The `crop × crop` center of the image with torchvision's `CenterCrop` offsets,
    /// `int(round((h - crop) / 2))` (round half to even); a side shorter than the crop is
    /// zero-padded by `(crop - h) // 2` before it, as torchvision pads.
    pub fn center_crop(&self, img: &RgbImage) -> RgbImage {
        let offset = |size: u32| {
            let (size, crop) = (size as i64, self.crop as i64);
            if crop > size {
                -((crop - size) / 2)
            } else {
                ((size - crop) as f64 / 2.0).round_ties_even() as i64
            }
        };
        crop(img, offset(img.height()), offset(img.width()), self.crop)
    }

    /// torchvision's `ToTensor` then `Normalize`: `[3, H, W]` (CHW) with
    /// `(x / 255 - mean[c]) / std[c]`, computed in `f32` as PyTorch does.
    pub fn normalize(&self, img: &RgbImage) -> HostTensor {
        let (w, h) = (img.width() as usize, img.height() as usize);
        let raw = img.as_raw();
        let mut values = Vec::with_capacity(3 * h * w);
        for c in 0..3 {
            values.extend(
                raw[c..]
                    .iter()
                    .step_by(3)
                    .map(|&v| (v as f32 / 255.0 - self.mean[c]) / self.std[c]),
            );
        }
        HostTensor {
            shape: vec![3, h, w],
            values,
        }
    }

    /// The inference view: [`resize_shorter`](Self::resize_shorter), then
    /// [`center_crop`](Self::center_crop), then [`normalize`](Self::normalize):
    /// `[3, crop, crop]`.
    pub fn center_view(&self, img: &RgbImage) -> HostTensor {
        self.normalize(&self.center_crop(&self.resize_shorter(img)))
    }

    /// The paper's ten test views, in torchvision's `TenCrop` order: of the resized image
    /// ([`resize_shorter`](Self::resize_shorter)) the top-left, top-right, bottom-left,
    /// bottom-right and center crops, then the same five crops of the horizontally mirrored
    /// resized image (so view 5 is the mirror of view 1, view 6 of view 0). Ten `[3, crop,
    /// crop]` tensors.
    pub fn ten_crop(&self, img: &RgbImage) -> Vec<HostTensor> {
        let resized = self.resize_shorter(img);
        let mirrored = image::imageops::flip_horizontal(&resized);
        [resized, mirrored]
            .iter()
            .flat_map(|img| self.five_crop(img))
            .collect()
    }

    /// Top-left, top-right, bottom-left, bottom-right, center (torchvision `FiveCrop`).
    fn five_crop(&self, img: &RgbImage) -> Vec<HostTensor> {
        let c = self.crop as i64;
        let (h, w) = (img.height() as i64, img.width() as i64);
        let corners = [(0, 0), (0, w - c), (h - c, 0), (h - c, w - c)];
        corners
            .iter()
            .map(|&(top, left)| crop(img, top, left, self.crop))
            .chain([self.center_crop(img)])
            .map(|view| self.normalize(&view))
            .collect()
    }
}

/// The `size × size` window at (`top`, `left`); pixels outside the image are black.
pub fn crop(img: &RgbImage, top: i64, left: i64, size: usize) -> RgbImage {
    let (w, h) = (img.width() as i64, img.height() as i64);
    RgbImage::from_fn(size as u32, size as u32, |x, y| {
        let (sx, sy) = (left + x as i64, top + y as i64);
        if (0..w).contains(&sx) && (0..h).contains(&sy) {
            *img.get_pixel(sx as u32, sy as u32)
        } else {
            image::Rgb([0, 0, 0])
        }
    })
}

/// Bits of the fixed-point weights in Pillow's 8-bit resampler (`PRECISION_BITS`).
const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Pillow's `Image.resize((new_w, new_h), BILINEAR)` for RGB: a horizontal pass (when the
/// width changes) then a vertical pass (when the height changes), each rounding to `u8`.
/// `[h, w]` → `[new_h, new_w]`, antialiased when shrinking (what torchvision's `Resize` and
/// `RandomResizedCrop` do to a PIL image).
pub fn resample_bilinear(img: &RgbImage, new_w: usize, new_h: usize) -> RgbImage {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut pixels = img.as_raw().clone();
    if new_w != w {
        let coeffs = Coefficients::bilinear(w, new_w);
        let mut out = vec![0u8; h * new_w * 3];
        for y in 0..h {
            let src = &pixels[y * w * 3..(y + 1) * w * 3];
            let dst = &mut out[y * new_w * 3..(y + 1) * new_w * 3];
            for (x, px) in dst.chunks_exact_mut(3).enumerate() {
                let (first, weights) = coeffs.taps(x);
                for (c, v) in px.iter_mut().enumerate() {
                    let mut sum = 1 << (PRECISION_BITS - 1);
                    for (i, k) in weights.iter().enumerate() {
                        sum += src[(first + i) * 3 + c] as i32 * k;
                    }
                    *v = clip8(sum);
                }
            }
        }
        pixels = out;
    }
    if new_h != h {
        let coeffs = Coefficients::bilinear(h, new_h);
        let row = new_w * 3;
        let mut out = vec![0u8; new_h * row];
        for (y, dst) in out.chunks_exact_mut(row).enumerate() {
            let (first, weights) = coeffs.taps(y);
            for (i, v) in dst.iter_mut().enumerate() {
                let mut sum = 1 << (PRECISION_BITS - 1);
                for (j, k) in weights.iter().enumerate() {
                    sum += pixels[(first + j) * row + i] as i32 * k;
                }
                *v = clip8(sum);
            }
        }
        pixels = out;
    }
    RgbImage::from_raw(new_w as u32, new_h as u32, pixels).expect("buffer matches the size")
}

/// A fixed-point sum back to `u8`, rounding already added (Pillow's `clip8`).
fn clip8(sum: i32) -> u8 {
    if sum >= 1 << PRECISION_BITS << 8 {
        255
    } else if sum <= 0 {
        0
    } else {
        (sum >> PRECISION_BITS) as u8
    }
}

/// Per output index: the first input index and the fixed-point weights of the inputs it reads
/// (Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` for the bilinear filter).
struct Coefficients {
    first: Vec<usize>,
    weights: Vec<Vec<i32>>,
}

impl Coefficients {
    fn bilinear(in_size: usize, out_size: usize) -> Self {
        let scale = in_size as f64 / out_size as f64;
        let filterscale = scale.max(1.0);
        let support = filterscale; // the triangle's support is 1, widened when downscaling
        let ss = 1.0 / filterscale;
        let mut first = Vec::with_capacity(out_size);
        let mut weights = Vec::with_capacity(out_size);
        for xx in 0..out_size {
            let center = (xx as f64 + 0.5) * scale;
            // C's `(int)` truncates toward zero, as `as` does.
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let taps: Vec<f64> = (xmin..xmax)
                .map(|x| triangle((x as f64 - center + 0.5) * ss))
                .collect();
            let total: f64 = taps.iter().sum();
            let fixed = taps
                .iter()
                .map(|&k| {
                    let k = if total != 0.0 { k / total } else { k };
                    let scaled = k * (1 << PRECISION_BITS) as f64;
                    if k < 0.0 {
                        (scaled - 0.5) as i32
                    } else {
                        (scaled + 0.5) as i32
                    }
                })
                .collect();
            first.push(xmin);
            weights.push(fixed);
        }
        Self { first, weights }
    }

    fn taps(&self, out_index: usize) -> (usize, &[i32]) {
        (self.first[out_index], &self.weights[out_index])
    }
}

/// The bilinear (triangle) filter of support 1.
fn triangle(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 {
        1.0 - x
    } else {
        0.0
    }
}
