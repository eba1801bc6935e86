//! What the weight-using commands share: the weights flags, the preprocessing flags, the
//! image list, and turning images into batches.

use std::path::{Path, PathBuf};

use alexnet_common::args::parse_triple;
use alexnet_common::backend::BackendKind;
use alexnet_common::images::image_files_recursive;
use alexnet_common::weights::read_checked;
use alexnet_model::checkpoint::{detect_format, WeightFormat};
use alexnet_model::files::escape_control;
use alexnet_model::memory::check_views;
use alexnet_model::preprocess::{load_rgb_checked, Preprocessing, CIFAR_MEAN, CIFAR_STD};
use alexnet_model::tensor::HostTensor;
use alexnet_model::AlexNet;
use alexnet_model::{AlexNetConfig, AlexNetError, Variant};
#[cfg(feature = "pretrained")]
use alexnet_model::{AlexNetWeights, WeightsSpec};
use anyhow::{bail, Context, Result};

use crate::Format;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use clap::Args;
use image::RgbImage;

use alexnet_common::args::{parse_backend, parse_variant};

/// `--weights` or `--pretrained`, `--variant`, `--backend`.
#[derive(Args, Debug, Clone)]
pub struct WeightArgs {
    /// Weight file: PyTorch .pth/.pt (zip or legacy), safetensors, Burn's format or Caffe's
    /// .caffemodel.
    #[cfg_attr(
        feature = "pretrained",
        arg(
            long,
            required_unless_present = "pretrained",
            conflicts_with = "pretrained"
        )
    )]
    #[cfg_attr(not(feature = "pretrained"), arg(long, required = true))]
    pub weights: Option<PathBuf>,
    /// ImageNet weights by name, downloaded into the cache on first use and verified:
    /// torchvision (torchvision variant) or caffe (bvlc_alexnet in the paper variant). The
    /// preprocessing and labels come with them.
    #[cfg(feature = "pretrained")]
    #[arg(long, value_parser = parse_pretrained, conflicts_with = "variant")]
    pub pretrained: Option<AlexNetWeights>,
    /// paper, torchvision or cifar (default: detected from the weights' shapes).
    #[arg(long, value_parser = parse_variant)]
    pub variant: Option<Variant>,
    /// Backend (default: the first compiled of flex, ndarray, wgpu, cuda).
    #[arg(long, value_parser = parse_backend)]
    pub backend: Option<BackendKind>,
    /// Refuse weights holding NaN or infinite values (default: a warning naming them).
    #[arg(long)]
    pub strict_weights: bool,
}

/// `--pretrained`: a name of [`AlexNetWeights`].
#[cfg(feature = "pretrained")]
fn parse_pretrained(name: &str) -> Result<AlexNetWeights, String> {
    AlexNetWeights::parse(name).map_err(|e| e.to_string())
}

impl WeightArgs {
    /// The chosen backend, or the default one.
    pub fn backend(&self) -> Result<BackendKind> {
        match self.backend {
            Some(kind) => Ok(kind),
            None => BackendKind::default_kind(),
        }
    }

    /// The named pretrained weights' description, if `--pretrained` was given.
    #[cfg(feature = "pretrained")]
    fn spec(&self) -> Option<WeightsSpec> {
        self.pretrained.map(AlexNetWeights::spec)
    }

    /// Loads the weights into a model on `B`, within the chosen backend's buffer limit:
    /// `--pretrained` from the cache (downloaded and verified first if needed), or the file.
    pub fn load<B: Backend>(&self, device: &B::Device) -> Result<AlexNet<B>> {
        let limit = self.backend()?.max_param_bytes();
        #[cfg(feature = "pretrained")]
        if let Some(spec) = self.spec() {
            let path = spec.fetch(true)?;
            return Ok(spec.load(&path, limit, device)?);
        }
        let path = self
            .weights
            .as_ref()
            .context("--weights is required (or --pretrained)")?;
        let checkpoint = read_checked(path, self.strict_weights)?;
        let model = checkpoint.into_model::<B>(self.variant, limit, device);
        Ok(model.map_err(|e| e.in_file(path))?)
    }

    /// The preprocessing the weights expect before flags change it: the pretrained entry's;
    /// Caffe's for a `.caffemodel` (BGR, 0–255 values minus the mean pixel); else
    /// torchvision's (CIFAR's statistics at 32×32 for a cifar network). A network without an
    /// adaptive pool takes exactly its input side, so the crop is that side.
    pub fn default_preprocessing(&self, config: &AlexNetConfig) -> Preprocessing {
        #[cfg(feature = "pretrained")]
        if let Some(spec) = self.spec() {
            return spec.preprocessing;
        }
        let from_caffe = self
            .weights
            .as_deref()
            .and_then(|path| detect_format(path).ok())
            == Some(WeightFormat::Caffe);
        let mut p = if from_caffe {
            Preprocessing::caffe()
        } else {
            Preprocessing::default()
        };
        if config.variant == Variant::Cifar {
            p.resize = 32;
            p.crop = 32;
            p.mean = CIFAR_MEAN;
            p.std = CIFAR_STD;
        }
        if config.adaptive_pool.is_none() {
            p.crop = config.input_size;
            p.resize = p.resize.max(p.crop);
        }
        p
    }
}

/// `--batch-size`, `--ten-crop`, `--labels`, `--format`: how `classify` and `eval` run and
/// report.
#[derive(Args, Debug, Clone)]
pub struct ReportArgs {
    /// Images per forward pass.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Average the paper's ten views (4 corners, center, and their mirror images).
    #[arg(long)]
    pub ten_crop: bool,
    /// Class names: `index<TAB>wordnet_id<TAB>label` or one per line (default: ImageNet's
    /// for 1000 classes; for eval on a CIFAR folder, its batches.meta.txt).
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// Text for people, JSON lines for programs.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

impl ReportArgs {
    /// Images per forward pass, checked to be positive.
    pub fn batch(&self) -> Result<usize> {
        if self.batch_size == 0 {
            bail!("--batch-size must be positive");
        }
        Ok(self.batch_size)
    }

    /// Views per image: 1, or 10 with `--ten-crop`.
    pub fn views_per_image(&self) -> usize {
        if self.ten_crop {
            10
        } else {
            1
        }
    }
}

/// `--resize`, `--crop`, `--mean`, `--std`: by default the transform the weights expect
/// ([`WeightArgs::default_preprocessing`]).
#[derive(Args, Debug, Clone)]
pub struct PreprocessArgs {
    /// Resize the shorter side to this many pixels (default 256; 32 for cifar weights; both
    /// sides for Caffe's weights: --pretrained caffe or a .caffemodel).
    #[arg(long)]
    pub resize: Option<usize>,
    /// Then take the central square of this side (default 224 for torchvision weights; the
    /// network's input side otherwise: 224 or Caffe's 227 for paper weights, 32 for cifar).
    #[arg(long)]
    pub crop: Option<usize>,
    /// Per-channel mean, `R,G,B` (default ImageNet's 0.485,0.456,0.406; for Caffe's weights
    /// `B,G,R` on 0-255 values, 104,117,123).
    #[arg(long, value_parser = parse_triple)]
    pub mean: Option<[f32; 3]>,
    /// Per-channel standard deviation, `R,G,B` (default ImageNet's 0.229,0.224,0.225; 1,1,1
    /// for Caffe's weights).
    #[arg(long, value_parser = parse_triple)]
    pub std: Option<[f32; 3]>,
    /// Refuse a truncated image (a JPEG without its end) as unreadable, instead of warning
    /// and classifying what could be decoded.
    #[arg(long)]
    pub strict_images: bool,
}

impl PreprocessArgs {
    /// `defaults` with the flags given applied, validated.
    pub fn apply(&self, defaults: Preprocessing) -> Result<Preprocessing> {
        let mut p = defaults;
        p.resize = self.resize.unwrap_or(p.resize);
        p.crop = self.crop.unwrap_or(p.crop);
        p.mean = self.mean.unwrap_or(p.mean);
        p.std = self.std.unwrap_or(p.std);
        p.validate()?;
        Ok(p)
    }
}

/// Expands the PATH arguments: files as given, folders recursively (image files only,
/// sorted). A path that does not exist is an error.
pub fn collect_images(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut images = Vec::new();
    for path in paths {
        if path.is_dir() {
            images.extend(image_files_recursive(path)?);
        } else if path.exists() {
            images.push(path.clone());
        } else {
            bail!("{}: no such file or folder", path.display());
        }
    }
    if images.is_empty() {
        bail!("no images found in {}", display_list(paths));
    }
    Ok(images)
}

fn display_list(paths: &[PathBuf]) -> String {
    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    names.join(", ")
}

/// Decodes image files and preprocesses them on worker threads: see [`prepare_with`] and
/// [`load_image`].
pub fn prepare_views(
    paths: &[PathBuf],
    preprocessing: &Preprocessing,
    ten_crop: bool,
    strict: bool,
) -> Vec<Result<Vec<HostTensor>>> {
    let load = |path: &PathBuf| load_image(path, preprocessing, strict);
    prepare_with(paths, load, preprocessing, ten_crop)
}

/// Reads one image file ([`load_rgb_checked`]: regular files only, size limits, a truncated
/// JPEG an error with `strict` and a warning without), then refuses it, naming the file,
/// when its resized copy would be over the pixel limit
/// ([`Preprocessing::check_resizable`]) — before resizing.
pub fn load_image(path: &Path, preprocessing: &Preprocessing, strict: bool) -> Result<RgbImage> {
    let image = load_rgb_checked(path, strict)?;
    preprocessing
        .check_resizable(image.width(), image.height())
        .map_err(|e| match e {
            AlexNetError::Input(m) => AlexNetError::Input(format!("{}: {m}", path.display())),
            other => other,
        })?;
    Ok(image)
}

/// Refuses a batch of `batch` images (`views` views each) of `preprocessing.crop` pixels
/// whose forward pass is estimated over the memory limit (see [`alexnet_model::memory`]);
/// the error names `--crop` or `--batch-size`, the value and the limit.
pub fn check_batch_memory(
    config: &AlexNetConfig,
    preprocessing: &Preprocessing,
    batch: usize,
    views: usize,
) -> Result<()> {
    Ok(check_views(
        config,
        preprocessing.crop,
        "--crop",
        batch,
        views,
        false,
    )?)
}

/// Gets each item's image with `load` and preprocesses it, on worker threads: each result is
/// the image's views (`[3, crop, crop]` each; one, or ten with `ten_crop`) or why it failed.
/// A decoder that panics on a hostile file fails that item only.
pub fn prepare_with<T: Sync>(
    items: &[T],
    load: impl Fn(&T) -> Result<RgbImage> + Sync,
    preprocessing: &Preprocessing,
    ten_crop: bool,
) -> Vec<Result<Vec<HostTensor>>> {
    let prepare = |item: &T| -> Result<Vec<HostTensor>> {
        let views = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let image = load(item)?;
            Ok(if ten_crop {
                preprocessing.ten_crop(&image)
            } else {
                vec![preprocessing.center_view(&image)]
            })
        }));
        views.unwrap_or_else(|panic| {
            let reason = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("unknown reason");
            bail!("the image decoder failed ({reason})")
        })
    };
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = items.len().div_ceil(workers).max(1);
    std::thread::scope(|scope| {
        let prepare = &prepare;
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(prepare).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("each item's panic is caught"))
            .collect()
    })
}

/// Splits prepared results into the items that worked and all their views; each failure is
/// printed (above the progress bar) and counted.
pub fn keep_readable<'a, T>(
    items: &'a [T],
    prepared: Vec<Result<Vec<HostTensor>>>,
    bar: &indicatif::ProgressBar,
) -> (Vec<&'a T>, Vec<HostTensor>, usize) {
    let (mut kept, mut views, mut failed) = (Vec::new(), Vec::new(), 0);
    for (item, result) in items.iter().zip(prepared) {
        match result {
            Ok(v) => {
                kept.push(item);
                views.extend(v);
            }
            Err(err) => {
                let message = format!("{err:#}");
                bar.suspend(|| eprintln!("error: {}", escape_control(&message)));
                failed += 1;
            }
        }
    }
    (kept, views, failed)
}

/// Stacks `[3, H, W]` views into one `[N, 3, H, W]` tensor.
pub fn stack<B: Backend>(views: &[HostTensor], device: &B::Device) -> Tensor<B, 4> {
    let shape = &views[0].shape;
    let mut values = Vec::with_capacity(views.len() * views[0].values.len());
    for view in views {
        values.extend_from_slice(&view.values);
    }
    let data = TensorData::new(values, [views.len(), shape[0], shape[1], shape[2]]);
    Tensor::from_data(data, device)
}

/// A progress bar on stderr (drawn only when stderr is a terminal).
pub fn progress(len: usize, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len as u64);
    let style = indicatif::ProgressStyle::with_template(
        "{spinner} {msg} [{bar:30}] {pos}/{len} ({per_sec}, eta {eta})",
    )
    .expect("valid template")
    .progress_chars("=> ");
    bar.set_style(style);
    bar.set_message(what.to_string());
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A panicking decoder fails its own item; the others are still prepared.
    #[test]
    fn a_decoder_panic_fails_one_item() {
        let preprocessing = Preprocessing {
            resize: 8,
            crop: 8,
            ..Preprocessing::default()
        };
        let load = |&n: &u8| -> Result<RgbImage> {
            assert!(n != 2, "corrupt image {n}");
            Ok(RgbImage::new(8, 8))
        };
        let results = prepare_with(&[1u8, 2, 3], load, &preprocessing, false);
        assert!(results[0].is_ok() && results[2].is_ok());
        let err = results[1].as_ref().unwrap_err().to_string();
        assert!(err.contains("corrupt image 2"), "{err}");
    }
}
