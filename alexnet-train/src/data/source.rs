//! Labelled image collections the loader draws from: CIFAR records held in memory, or image
//! files decoded on demand (on the loader's worker threads).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Result};
use image::RgbImage;

use super::sample;
use alexnet_common::cifar::{self, CifarImage, CifarKind};

/// A labelled image collection. Decoding errors are returned, never panics.
pub trait ImageSource: Send + Sync {
    /// Number of images.
    fn len(&self) -> usize;
    /// Whether there are no images.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Class index of image `i`.
    fn label(&self, i: usize) -> usize;
    /// Image `i`, decoded to 8-bit RGB.
    fn image(&self, i: usize) -> Result<RgbImage>;
    /// How errors about image `i` name it: its file, where it has one.
    fn name(&self, i: usize) -> String {
        format!("image {i}")
    }
}

/// Images already in memory.
pub struct InMemory {
    images: Vec<(RgbImage, usize)>,
}

impl InMemory {
    /// From decoded images and labels.
    pub fn new(images: Vec<(RgbImage, usize)>) -> Self {
        Self { images }
    }

    /// From CIFAR records.
    pub fn from_cifar(records: &[CifarImage]) -> Self {
        Self::new(records.iter().map(|r| (r.to_rgb(), r.label)).collect())
    }
}

impl ImageSource for InMemory {
    fn len(&self) -> usize {
        self.images.len()
    }
    fn label(&self, i: usize) -> usize {
        self.images[i].1
    }
    fn image(&self, i: usize) -> Result<RgbImage> {
        Ok(self.images[i].0.clone())
    }
}

/// Image files with labels, decoded when asked for.
pub struct Files {
    items: Vec<(PathBuf, usize)>,
}

impl Files {
    /// From `(path, label)` pairs.
    pub fn new(items: Vec<(PathBuf, usize)>) -> Self {
        Self { items }
    }
}

impl ImageSource for Files {
    fn len(&self) -> usize {
        self.items.len()
    }
    fn label(&self, i: usize) -> usize {
        self.items[i].1
    }
    fn image(&self, i: usize) -> Result<RgbImage> {
        Ok(alexnet_model::preprocess::load_rgb(&self.items[i].0)?)
    }
    fn name(&self, i: usize) -> String {
        self.items[i].0.display().to_string()
    }
}

/// A training and a validation split with their class names.
#[derive(Clone)]
pub struct Splits {
    /// Training images.
    pub train: Arc<dyn ImageSource>,
    /// Validation images.
    pub val: Arc<dyn ImageSource>,
    /// Class `i` is `classes[i]`.
    pub classes: Vec<String>,
    /// Where the data came from, for logs and `config.json`.
    pub description: String,
}

impl Splits {
    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.classes.len()
    }
}

/// The built-in CIFAR-10 sample ([`sample`]): 1,000 training and 200 validation images.
pub fn cifar_sample() -> Result<Splits> {
    let (train, val) = sample::records()?;
    Ok(Splits {
        train: Arc::new(InMemory::from_cifar(&train)),
        val: Arc::new(InMemory::from_cifar(&val)),
        classes: sample::class_names(),
        description: "built-in CIFAR-10 sample (data/cifar-10-sample)".into(),
    })
}

/// A CIFAR binary folder. Training files that are missing are skipped (so a folder with only
/// `data_batch_1.bin` works) as long as one exists; the test file must exist.
pub fn cifar_folder(dir: &Path, kind: CifarKind) -> Result<Splits> {
    if !dir.is_dir() {
        bail!("{}: not a directory", dir.display());
    }
    let existing = |train: bool| -> Vec<PathBuf> {
        kind.split_files(dir, train)
            .into_iter()
            .filter(|f| f.is_file())
            .collect()
    };
    let train_files = existing(true);
    let val_files = existing(false);
    let expected = |train: bool| {
        kind.split_files(dir, train)
            .iter()
            .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if train_files.is_empty() {
        bail!(
            "{}: no CIFAR training files (expected {})",
            dir.display(),
            expected(true)
        );
    }
    if val_files.is_empty() {
        bail!(
            "{}: no CIFAR test file (expected {})",
            dir.display(),
            expected(false)
        );
    }
    let train = cifar::read_files(&train_files, kind)?;
    let val = cifar::read_files(&val_files, kind)?;
    let classes = cifar::class_names(dir, kind);
    Ok(Splits {
        train: Arc::new(InMemory::from_cifar(&train)),
        val: Arc::new(InMemory::from_cifar(&val)),
        classes,
        description: format!("{kind:?} binary folder {}", dir.display()),
    })
}
