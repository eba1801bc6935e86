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
use crate::files::{escape_control, read_regular_file, MAX_IMAGE_BYTES};

/// CIFAR-10's per-channel mean (R, G, B): the cifar variant's normalisation, in training and
/// inference alike.
pub const CIFAR_MEAN: [f32; 3] = [0.4914, 0.4822, 0.4465];
/// CIFAR-10's per-channel standard deviation.
pub const CIFAR_STD: [f32; 3] = [0.2470, 0.2435, 0.2616];
use crate::tensor::HostTensor;

/// torchvision's inference transform, with each step configurable (and Caffe's, see
/// [`caffe`](Self::caffe)).
///
/// Call [`validate`](Self::validate) on values that come from a user: the methods do not
/// check them (a crop larger than the image is zero-padded, as torchvision pads it).
#[derive(Debug, Clone, PartialEq)]
pub struct Preprocessing {
    /// Length the shorter side is resized to (torchvision `Resize(256)`), or both sides with
    /// [`ResizeMode::Square`].
    pub resize: usize,
    /// Side of the square center crop (torchvision `CenterCrop(224)`).
    pub crop: usize,
    /// Per-channel mean, in [`channel_order`](Self::channel_order) and
    /// [`pixel_range`](Self::pixel_range), subtracted first.
    pub mean: [f32; 3],
    /// Per-channel standard deviation (same order) divided by after subtracting the mean.
    pub std: [f32; 3],
    /// How the image is resized before cropping.
    pub resize_mode: ResizeMode,
    /// The order of the channels the network expects.
    pub channel_order: ChannelOrder,
    /// The range pixel values are expressed in before normalising.
    pub pixel_range: PixelRange,
}

/// How [`Preprocessing::resize`] resizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResizeMode {
    /// The shorter side to `resize`, keeping the aspect ratio (torchvision `Resize(256)`).
    #[default]
    ShorterSide,
    /// Both sides to `resize`, ignoring the aspect ratio (Caffe's `256×256` ImageNet images).
    Square,
}

/// The order of the three channels in the network's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChannelOrder {
    /// Red, green, blue (PyTorch, torchvision).
    #[default]
    Rgb,
    /// Blue, green, red (Caffe, which reads images with OpenCV).
    Bgr,
}

/// The range 8-bit pixel values are mapped to before the mean is subtracted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PixelRange {
    /// `v / 255` (torchvision's `ToTensor`).
    #[default]
    Unit,
    /// `v` itself, 0–255 (Caffe, whose mean pixel is `(104, 117, 123)` in BGR).
    Byte,
}

impl Default for Preprocessing {
    /// torchvision's ImageNet values: resize 256, crop 224, mean (0.485, 0.456, 0.406),
    /// std (0.229, 0.224, 0.225), RGB in `[0, 1]`.
    fn default() -> Self {
        // Python floats rounded to f32, as `torch.as_tensor(mean, dtype=float32)` does.
        Self {
            resize: 256,
            crop: 224,
            mean: [0.485_f64 as f32, 0.456_f64 as f32, 0.406_f64 as f32],
            std: [0.229_f64 as f32, 0.224_f64 as f32, 0.225_f64 as f32],
            resize_mode: ResizeMode::ShorterSide,
            channel_order: ChannelOrder::Rgb,
            pixel_range: PixelRange::Unit,
        }
    }
}

impl Preprocessing {
    /// Caffe's ImageNet inference transform for `bvlc_alexnet`: resize to 256×256, center
    /// crop 227, BGR, 0–255 values minus the mean pixel (104, 117, 123), no scaling (the
    /// resize uses Pillow's bilinear filter, where Caffe's Python interface uses scikit-image's).
    pub fn caffe() -> Self {
        Self {
            resize: 256,
            crop: 227,
            mean: [104.0, 117.0, 123.0],
            std: [1.0; 3],
            resize_mode: ResizeMode::Square,
            channel_order: ChannelOrder::Bgr,
            pixel_range: PixelRange::Byte,
        }
    }
}

/// The longest image side decoded, in pixels: 32,768 (a 50-megapixel photo is about
/// 8,700×5,800). Checked from the file's header, before any pixel is decoded.
pub const MAX_IMAGE_SIDE: u32 = 32_768;

/// The most pixels an image may hold, decoded or after [`Preprocessing::resize`]:
/// 100,000,000 (300 MB as 8-bit RGB).
pub const MAX_IMAGE_PIXELS: u64 = 100_000_000;

/// The most the image decoder may allocate for one image (`image::Limits::max_alloc`):
/// 1 GiB (a 100-megapixel 16-bit RGBA image is 800 MB).
pub const MAX_DECODE_BYTES: u64 = 1 << 30;

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
/// the path, as is one that is not a regular file (a FIFO, a device, a directory), one larger
/// than [`MAX_IMAGE_BYTES`], or one whose header declares a
/// side over [`MAX_IMAGE_SIDE`] or more than [`MAX_IMAGE_PIXELS`] (refused before decoding).
/// A JPEG cut short (no end-of-image marker) still decodes, as far as it goes, with a warning
/// on stderr: see [`load_rgb_checked`] to refuse it.
pub fn load_rgb(path: &Path) -> Result<RgbImage, AlexNetError> {
    load_rgb_checked(path, false)
}

/// [`load_rgb`]; a JPEG cut short is an error with `strict` (`--strict-images`), a warning
/// on stderr naming the file without.
pub fn load_rgb_checked(path: &Path, strict: bool) -> Result<RgbImage, AlexNetError> {
    let bytes = read_regular_file(path, MAX_IMAGE_BYTES)?;
    let in_file = |e: String| AlexNetError::Input(format!("{}: {e}", path.display()));
    let (img, truncated) = decode(&bytes).map_err(in_file)?;
    if let Some(what) = truncated {
        if strict {
            return Err(in_file(format!("{what} (--strict-images refuses it)")));
        }
        let name = path.display().to_string();
        eprintln!(
            "warning: {}: {what}; decoded as far as it goes",
            escape_control(&name)
        );
    }
    Ok(img)
}

/// [`load_rgb`] for an encoded image held in memory (the same size limits; a JPEG cut short
/// is decoded as far as it goes).
pub fn decode_rgb(bytes: &[u8]) -> Result<RgbImage, AlexNetError> {
    decode(bytes)
        .map(|(img, _)| img)
        .map_err(|e| AlexNetError::Input(format!("image data: {e}")))
}

/// A decoder's message on one line (some span several).
fn one_line(error: &impl std::fmt::Display) -> String {
    error
        .to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The decoded image, and why it is incomplete when it is (a JPEG without its end).
fn decode(bytes: &[u8]) -> Result<(RgbImage, Option<&'static str>), String> {
    let reader = || -> Result<ImageReader<Cursor<&[u8]>>, String> {
        let reader = ImageReader::new(Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| format!("cannot read: {e}"))?;
        if reader.format().is_none() {
            return Err("not an image in a known format (png, jpeg, bmp, gif, webp, tiff)".into());
        }
        Ok(reader)
    };
    let (w, h) = reader()?
        .into_dimensions()
        .map_err(|e| format!("cannot decode image: {}", one_line(&e)))?;
    check_image_size(w, h)?;
    let mut reader = reader()?;
    let format = reader.format();
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let img = reader
        .decode()
        .map_err(|e| format!("cannot decode image: {}", one_line(&e)))?;
    let truncated = (format == Some(image::ImageFormat::Jpeg) && jpeg_is_truncated(bytes))
        .then_some("truncated JPEG (the data ends before the end-of-image marker)");
    Ok((to_rgb8(img), truncated))
}

/// Refuses a `w`×`h` image with a side over [`MAX_IMAGE_SIDE`] or more than
/// [`MAX_IMAGE_PIXELS`] pixels.
fn check_image_size(w: u32, h: u32) -> Result<(), String> {
    let pixels = w as u64 * h as u64;
    if w > MAX_IMAGE_SIDE || h > MAX_IMAGE_SIDE {
        return Err(format!(
            "a {w}×{h} image is over the limit of {MAX_IMAGE_SIDE} pixels per side"
        ));
    }
    if pixels > MAX_IMAGE_PIXELS {
        return Err(format!(
            "a {w}×{h} image ({pixels} pixels) is over the limit of {MAX_IMAGE_PIXELS} pixels"
        ));
    }
    Ok(())
}

/// Whether a JPEG stream ends before its end-of-image marker (`FF D9`): the segments are
/// walked by their lengths, entropy-coded data is scanned for the next marker (`FF 00`
/// stuffing and restart markers `FF D0`–`FF D7` are data), until `FF D9` or the end of the
/// bytes. Anything after the marker (zero padding, appended data) is ignored, as decoders do.
pub fn jpeg_is_truncated(bytes: &[u8]) -> bool {
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return false; // not a JPEG stream: nothing to say
    }
    let mut i = 2;
    loop {
        // Find the next marker: FF (fill bytes FF allowed) then a non-zero, non-FF byte.
        while i < bytes.len() && bytes[i] != 0xFF {
            i += 1;
        }
        while i < bytes.len() && bytes[i] == 0xFF {
            i += 1;
        }
        let Some(&marker) = bytes.get(i) else {
            return true;
        };
        i += 1;
        match marker {
            0xD9 => return false,
            // Stuffed zero byte, restart markers, TEM, stray SOI: no length follows.
            0x00 | 0xD0..=0xD8 | 0x01 => continue,
            _ => {
                let (Some(&hi), Some(&lo)) = (bytes.get(i), bytes.get(i + 1)) else {
                    return true;
                };
                // The segment's length counts its own two bytes; after SOS (DA) the
                // entropy-coded data follows, scanned by the loop above.
                i += usize::from(u16::from_be_bytes([hi, lo]));
                if i > bytes.len() {
                    return true;
                }
            }
        }
    }
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
        let square = self.resize as u128 * self.resize as u128;
        if square > MAX_IMAGE_PIXELS as u128 {
            return fail(format!(
                "--resize {0}: every image would be resized to at least {0}×{0} pixels, over \
                 the limit of {MAX_IMAGE_PIXELS} pixels",
                self.resize
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

    /// The `(width, height)` [`resize`](Self::resize) gives a `w`×`h` image (in `u64`, so
    /// that no size overflows).
    pub fn resized_size(&self, w: u32, h: u32) -> (u64, u64) {
        let (w, h, resize) = (w as u64, h as u64, self.resize as u64);
        if self.resize_mode == ResizeMode::Square {
            return (resize, resize);
        }
        let (short, long) = (w.min(h), w.max(h));
        if short == 0 || short == resize {
            return (w, h);
        }
        let new_long = ((resize as u128 * long as u128) as f64 / short as f64) as u64;
        if w <= h {
            (resize, new_long)
        } else {
            (new_long, resize)
        }
    }

    /// Refuses a `w`×`h` image whose resized copy ([`resize`](Self::resize))
    /// would hold more than [`MAX_IMAGE_PIXELS`]: a very long, thin image (20,000×1 resized to
    /// 256 on its shorter side is 5,120,000×256). Call it before resizing; the error names
    /// both sizes and the limit (the caller adds the file).
    pub fn check_resizable(&self, w: u32, h: u32) -> Result<(), AlexNetError> {
        let (new_w, new_h) = self.resized_size(w, h);
        let pixels = new_w as u128 * new_h as u128;
        if pixels > MAX_IMAGE_PIXELS as u128 {
            return Err(AlexNetError::Input(format!(
                "a {w}×{h} image resized to {} on its shorter side would be {new_w}×{new_h} \
                 ({pixels} pixels), over the limit of {MAX_IMAGE_PIXELS} pixels",
                self.resize
            )));
        }
        Ok(())
    }

    /// Resizes as [`resize_mode`](Self::resize_mode) says: [`resize_shorter`](Self::resize_shorter)
    /// or both sides to `resize` with the same filter.
    pub fn resize(&self, img: &RgbImage) -> RgbImage {
        match self.resize_mode {
            ResizeMode::ShorterSide => self.resize_shorter(img),
            ResizeMode::Square if img.dimensions() == (self.resize as u32, self.resize as u32) => {
                img.clone()
            }
            ResizeMode::Square => resample_bilinear(img, self.resize, self.resize),
        }
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
    /// `(x / 255 - mean[c]) / std[c]`, computed in `f32` as PyTorch does; with
    /// [`PixelRange::Byte`] `x` itself, with [`ChannelOrder::Bgr`] the channels reversed.
    pub fn normalize(&self, img: &RgbImage) -> HostTensor {
        let (w, h) = (img.width() as usize, img.height() as usize);
        let raw = img.as_raw();
        let mut values = Vec::with_capacity(3 * h * w);
        for c in 0..3 {
            let source = match self.channel_order {
                ChannelOrder::Rgb => c,
                ChannelOrder::Bgr => 2 - c,
            };
            let (mean, std) = (self.mean[c], self.std[c]);
            let pixels = raw[source..].iter().step_by(3);
            match self.pixel_range {
                PixelRange::Unit => {
                    values.extend(pixels.map(|&v| (v as f32 / 255.0 - mean) / std));
                }
                PixelRange::Byte => values.extend(pixels.map(|&v| (v as f32 - mean) / std)),
            }
        }
        HostTensor {
            shape: vec![3, h, w],
            values,
        }
    }

    /// The inference view: [`resize`](Self::resize), then
    /// [`center_crop`](Self::center_crop), then [`normalize`](Self::normalize):
    /// `[3, crop, crop]`.
    pub fn center_view(&self, img: &RgbImage) -> HostTensor {
        self.normalize(&self.center_crop(&self.resize(img)))
    }

    /// The paper's ten test views, in torchvision's `TenCrop` order: of the resized image
    /// ([`resize`](Self::resize)) the top-left, top-right, bottom-left,
    /// bottom-right and center crops, then the same five crops of the horizontally mirrored
    /// resized image (so view 5 is the mirror of view 1, view 6 of view 0). Ten `[3, crop,
    /// crop]` tensors.
    pub fn ten_crop(&self, img: &RgbImage) -> Vec<HostTensor> {
        let resized = self.resize(img);
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

#[cfg(test)]
mod limits {
    use super::*;

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("alexnet-pre-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn png(w: u32, h: u32) -> Vec<u8> {
        let mut bytes = Vec::new();
        image::GrayImage::new(w, h)
            .write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Png)
            .unwrap();
        bytes
    }

    /// A 5,000,000×1 PNG is refused from its header; a 20,000×1 PNG decodes, but resizing
    /// its shorter side to 256 (5,120,000×256) is refused before resizing.
    #[test]
    fn huge_images_are_refused_before_allocating() {
        let err = decode_rgb(&png(5_000_000, 1)).unwrap_err().to_string();
        assert!(
            err.contains("a 5000000×1 image is over the limit of 32768 pixels per side"),
            "{err}"
        );
        let err = decode_rgb(&png(20_000, 6_000)).unwrap_err().to_string();
        assert!(err.contains("over the limit of 100000000 pixels"), "{err}");
        let img = decode_rgb(&png(20_000, 1)).unwrap();
        let pre = Preprocessing::default();
        let err = pre.check_resizable(img.width(), img.height()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid input: a 20000×1 image resized to 256 on its shorter side would be \
             5120000×256 (1310720000 pixels), over the limit of 100000000 pixels"
        );
        assert!(pre.check_resizable(8_000, 6_000).is_ok());
        assert_eq!(pre.resized_size(400, 300), (341, 256));
        let big = Preprocessing {
            resize: 60_000,
            ..Preprocessing::default()
        };
        let err = big.validate().unwrap_err().to_string();
        assert!(
            err.contains("--resize 60000: every image would be resized"),
            "{err}"
        );
    }

    /// A JPEG cut in half: a warning by default (decoded as far as it goes), an error under
    /// `strict`; the whole file, also with zero padding after it, is not truncated.
    #[test]
    fn truncated_jpegs_are_detected() {
        // Big enough that half the file is well into the compressed data.
        let img = RgbImage::from_fn(320, 240, |x, y| {
            image::Rgb([((x * 7) ^ (y * 3)) as u8, (x * y) as u8, (x + y * 5) as u8])
        });
        let mut jpeg = Vec::new();
        img.write_to(&mut Cursor::new(&mut jpeg), image::ImageFormat::Jpeg)
            .unwrap();
        assert!(!jpeg_is_truncated(&jpeg));
        let mut padded = jpeg.clone();
        padded.extend([0u8; 32]);
        assert!(!jpeg_is_truncated(&padded));
        let half = &jpeg[..jpeg.len() / 2];
        assert!(jpeg_is_truncated(half));
        assert!(jpeg_is_truncated(&jpeg[..jpeg.len() - 2]));
        let fixture = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fixtures/preprocess/portrait_odd.jpg"
        ))
        .unwrap();
        assert!(!jpeg_is_truncated(&fixture));
        assert!(jpeg_is_truncated(&fixture[..fixture.len() * 2 / 3]));

        let dir = temp_dir("jpeg");
        let path = dir.join("half.jpg");
        std::fs::write(&path, half).unwrap();
        let partial = load_rgb_checked(&path, false).unwrap();
        assert_eq!(partial.dimensions(), (320, 240));
        let err = load_rgb_checked(&path, true).unwrap_err().to_string();
        assert!(err.contains("half.jpg: truncated JPEG"), "{err}");
        assert!(err.contains("--strict-images"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A FIFO named `*.jpg` and /dev/zero as an image are refused at once, never read.
    #[cfg(unix)]
    #[test]
    fn fifo_images_are_refused_without_waiting() {
        let dir = temp_dir("fifo");
        let fifo = dir.join("pipe.jpg");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        let err = load_rgb(&fifo).unwrap_err().to_string();
        assert!(
            err.contains("pipe.jpg: is a FIFO (named pipe), not a regular file"),
            "{err}"
        );
        let err = load_rgb(Path::new("/dev/zero")).unwrap_err().to_string();
        assert!(err.contains("/dev/zero: is a character device"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
