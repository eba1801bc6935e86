//! The ImageNet subsets by name: Imagenette and Imagewoof (fast.ai: 10 classes each, in three
//! image sizes) and Tiny ImageNet (Stanford CS231n: 200 classes of 64×64 images).
//!
//! Their classes are ImageNet WordNet ids, numbered in sorted order (class `i` is the `i`-th
//! smallest id, as torchvision's `ImageFolder` numbers the class folders) and named by
//! ImageNet's labels ([`Labels::imagenet`]), so a model trained on a subset reports real
//! names, and a 1000-class ImageNet model can be scored on one.
//!
//! Layouts (the archives' top folders are dropped when unpacking, so these are relative to
//! the data folder):
//! * Imagenette, Imagewoof: `train/<wnid>/*.JPEG`, `val/<wnid>/*.JPEG`, and
//!   `noisy_imagenette.csv` / `noisy_imagewoof.csv` (fast.ai's noisy labels; not used here);
//! * Tiny ImageNet: `wnids.txt` (the 200 ids), `words.txt`, `train/<wnid>/images/*.JPEG`,
//!   `val/images/*.JPEG` with `val/val_annotations.txt` (`file<TAB>wnid<TAB>box`), and
//!   `test/images/` (unlabelled; not used).
//!
//! Where the facts come from:
//! * Imagenette URLs, MD5s and WordNet ids: torchvision's `torchvision/datasets/imagenette.py`
//!   (`_ARCHIVES`, `_WNID_TO_CLASS`). Catalyst's `catalyst/contrib/datasets/imagenette.py`
//!   lists the same MD5s since its July 2021 fix "change md5 checksums of Imagenette and
//!   Imagewoof datasets" (catalyst-team/catalyst#1268).
//! * Imagewoof URLs: fastai's `fastai/data/external.py` (`URLs.IMAGEWOOF*`); MD5s: that
//!   catalyst commit's `imagewoof.py` (torchvision has no Imagewoof; fastai's `checks.txt`
//!   holds the MD5 of each archive's first MiB only, not of the file); WordNet ids: the class
//!   folders in fastai/imagenette's `noisy_imagewoof.csv`.
//! * Tiny ImageNet: the URL of the CS231n course page; the MD5 as the dataset loaders that
//!   verify it list it (e.g. Avalanche's `tiny_imagenet.py`, and several `TinyImageNet`
//!   torchvision-style datasets); the 200 ids are read from the archive's `wnids.txt`.

use std::fmt;
use std::path::{Component, Path, PathBuf};

use alexnet_model::download::{cache_dir, Checksum, RemoteFile};
use alexnet_model::files::{read_text_file, MAX_TEXT_BYTES};
use alexnet_model::labels::{ClassLabel, Labels};
use anyhow::{bail, Result};
use clap::ValueEnum;
use serde::{Deserialize, Serialize};

use super::DatasetArchive;
use crate::images::{image_files, labelled_files};

/// fast.ai's bucket of the Imagenette and Imagewoof archives.
const FASTAI_BASE: &str = "https://s3.amazonaws.com/fast-ai-imageclas/";

/// Imagenette's 10 classes (tench, English springer, cassette player, chain saw, church,
/// French horn, garbage truck, gas pump, golf ball, parachute), sorted.
pub const IMAGENETTE_WNIDS: [&str; 10] = [
    "n01440764",
    "n02102040",
    "n02979186",
    "n03000684",
    "n03028079",
    "n03394916",
    "n03417042",
    "n03425413",
    "n03445777",
    "n03888257",
];

/// Imagewoof's 10 dog breeds (Shih-Tzu, Rhodesian ridgeback, beagle, English foxhound, Border
/// terrier, Australian terrier, golden retriever, Old English sheepdog, Samoyed, dingo),
/// sorted.
pub const IMAGEWOOF_WNIDS: [&str; 10] = [
    "n02086240",
    "n02087394",
    "n02088364",
    "n02089973",
    "n02093754",
    "n02096294",
    "n02099601",
    "n02105641",
    "n02111889",
    "n02115641",
];

/// An ImageNet subset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Subset {
    /// fast.ai's Imagenette: 10 easily told apart ImageNet classes, 9,469 training and 3,925
    /// validation images.
    Imagenette,
    /// fast.ai's Imagewoof: 10 dog breeds, about 9,030 training and 3,930 validation images.
    Imagewoof,
    /// Stanford's Tiny ImageNet: 200 classes, 64×64 images, 500 training and 50 validation
    /// images each.
    TinyImagenet,
}

/// The image size of an Imagenette or Imagewoof download: the shorter side resized to 160
/// or 320 pixels, or the original images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ValueEnum)]
pub enum ImageSize {
    /// Shorter side 160 pixels.
    #[value(name = "160")]
    #[serde(rename = "160")]
    Px160,
    /// Shorter side 320 pixels: the default, the smallest that the 256-pixel resize of the
    /// ImageNet variants does not have to enlarge.
    #[default]
    #[value(name = "320")]
    #[serde(rename = "320")]
    Px320,
    /// The original ImageNet images.
    #[value(name = "full")]
    #[serde(rename = "full")]
    Full,
}

/// The command-line name (`imagenette`, `imagewoof`, `tiny-imagenet`).
impl fmt::Display for Subset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = self.to_possible_value().expect("no variant is skipped");
        f.write_str(value.get_name())
    }
}

impl Subset {
    /// The image size to fetch: `size`, or the default; giving one for Tiny ImageNet, which
    /// has one size, is an error.
    pub fn size(self, size: Option<ImageSize>) -> Result<ImageSize> {
        match size {
            Some(_) if self == Subset::TinyImagenet => {
                bail!("--size applies to imagenette and imagewoof, not {self}")
            }
            size => Ok(size.unwrap_or_default()),
        }
    }

    /// The archive's URL and published MD5 (Tiny ImageNet has one size).
    fn published(self, size: ImageSize) -> (String, &'static str) {
        let fastai = |name: &str| format!("{FASTAI_BASE}{name}");
        match (self, size) {
            (Subset::Imagenette, ImageSize::Px160) => (
                fastai("imagenette2-160.tgz"),
                "e793b78cc4c9e9a4ccc0c1155377a412",
            ),
            (Subset::Imagenette, ImageSize::Px320) => (
                fastai("imagenette2-320.tgz"),
                "3df6f0d01a2c9592104656642f5e78a3",
            ),
            (Subset::Imagenette, ImageSize::Full) => (
                fastai("imagenette2.tgz"),
                "fe2fc210e6bb7c5664d602c3cd71e612",
            ),
            (Subset::Imagewoof, ImageSize::Px160) => (
                fastai("imagewoof2-160.tgz"),
                "3d200a7be99704a0d7509be2a9fbfe15",
            ),
            (Subset::Imagewoof, ImageSize::Px320) => (
                fastai("imagewoof2-320.tgz"),
                "0f46d997ec2264e97609196c95897a44",
            ),
            (Subset::Imagewoof, ImageSize::Full) => {
                (fastai("imagewoof2.tgz"), "9aafe18bcdb1632c4249a76c458465ba")
            }
            (Subset::TinyImagenet, _) => (
                "http://cs231n.stanford.edu/tiny-imagenet-200.zip".into(),
                "90528d7ca1a48142e341f4ef8d21d0de",
            ),
        }
    }

    /// The archive to download, and what a complete copy holds.
    pub fn archive(self, size: ImageSize) -> DatasetArchive {
        let (url, md5) = self.published(size);
        let file_name = url.rsplit('/').next().unwrap_or_default().to_string();
        let required = match self.fixed_wnids() {
            Some(wnids) => ["train", "val"]
                .iter()
                .flat_map(|split| wnids.iter().map(move |w| Path::new(split).join(w)))
                .collect(),
            None => [
                "wnids.txt",
                "train",
                "val/images",
                "val/val_annotations.txt",
            ]
            .iter()
            .map(PathBuf::from)
            .collect(),
        };
        DatasetArchive {
            file: RemoteFile {
                url,
                file_name,
                checksum: Checksum::Md5(md5.into()),
                size: None,
            },
            required,
        }
    }

    /// The archive's top folder, also the name of the default data folder
    /// (`imagenette2-320`, `tiny-imagenet-200`).
    pub fn folder_name(self, size: ImageSize) -> String {
        let file_name = self.archive(size).file.file_name;
        let stem = file_name.split('.').next().unwrap_or_default();
        stem.to_string()
    }

    /// The data folder: `dir` when given, else `datasets/<folder name>` in the cache folder
    /// ([`cache_dir`]: `$ALEXNET_BURN_CACHE`, else e.g. `~/.cache/alexnet-burn`).
    pub fn data_dir(self, size: ImageSize, dir: Option<&Path>) -> Result<PathBuf> {
        match dir {
            Some(dir) => Ok(dir.to_path_buf()),
            None => Ok(cache_dir()?.join("datasets").join(self.folder_name(size))),
        }
    }

    /// The WordNet ids of the classes when the subset fixes them (Tiny ImageNet's are in its
    /// `wnids.txt`).
    pub fn fixed_wnids(self) -> Option<&'static [&'static str]> {
        match self {
            Subset::Imagenette => Some(&IMAGENETTE_WNIDS),
            Subset::Imagewoof => Some(&IMAGEWOOF_WNIDS),
            Subset::TinyImagenet => None,
        }
    }
}

/// A subset's data folder, opened: its classes known.
#[derive(Debug, Clone)]
pub struct SubsetFolder {
    /// Which subset.
    pub subset: Subset,
    /// The data folder (holding `train/` and `val/`).
    pub root: PathBuf,
    /// Class `i`'s WordNet id; sorted.
    pub wnids: Vec<String>,
}

impl SubsetFolder {
    /// Opens the data folder `root` of `subset` downloaded at `size`. When it does not hold
    /// the subset, the error says how to get it (`--download`, or the folder inside `root`
    /// that does hold it).
    pub fn open(subset: Subset, size: ImageSize, root: &Path) -> Result<Self> {
        let archive = subset.archive(size);
        if !archive.is_present(root) {
            let nested = root.join(subset.folder_name(size));
            let hint = if archive.is_present(&nested) {
                format!("the data is in {}: give that folder", nested.display())
            } else {
                format!(
                    "add --download to fetch {} ({})",
                    archive.file.file_name, archive.file.url
                )
            };
            bail!(
                "{}: no complete {subset} data folder (expected {}); {hint}",
                root.display(),
                layout(subset)
            );
        }
        let wnids = match subset.fixed_wnids() {
            Some(wnids) => wnids.iter().map(|w| w.to_string()).collect(),
            None => read_wnids(&root.join("wnids.txt"))?,
        };
        Ok(Self {
            subset,
            root: root.to_path_buf(),
            wnids,
        })
    }

    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.wnids.len()
    }

    /// The classes as labels: WordNet id and ImageNet's name (the id itself for one that is
    /// not among ImageNet's 1000 classes).
    pub fn labels(&self) -> Labels {
        let imagenet = Labels::imagenet();
        let classes = self
            .wnids
            .iter()
            .map(|wnid| ClassLabel {
                wordnet_id: Some(wnid.clone()),
                name: imagenet
                    .index_of(wnid)
                    .map_or_else(|| wnid.clone(), |i| imagenet.name(i)),
            })
            .collect();
        Labels { classes }
    }

    /// The class names (ImageNet's), in class order.
    pub fn class_names(&self) -> Vec<String> {
        self.labels().classes.into_iter().map(|c| c.name).collect()
    }

    /// The labelled images of the training (`train`) or validation split, sorted by path.
    pub fn images(&self, train: bool) -> Result<Vec<(PathBuf, usize)>> {
        let split = self.root.join(if train { "train" } else { "val" });
        let mut items = match (self.subset, train) {
            (Subset::TinyImagenet, true) => labelled_files(&split, &self.wnids, "images")?,
            (Subset::TinyImagenet, false) => self.tiny_val(&split)?,
            _ => labelled_files(&split, &self.wnids, "")?,
        };
        if items.is_empty() {
            bail!("{}: no images", split.display());
        }
        items.sort();
        Ok(items)
    }

    /// Tiny ImageNet's validation images: `val/images/<file>`, labelled by
    /// `val/val_annotations.txt` (`file<TAB>wnid<TAB>x0<TAB>y0<TAB>x1<TAB>y1` lines).
    fn tiny_val(&self, split: &Path) -> Result<Vec<(PathBuf, usize)>> {
        let path = split.join("val_annotations.txt");
        let text = read_text_file(&path, MAX_TEXT_BYTES)?;
        let listed = image_files(&split.join("images"))?;
        let mut items = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let at = || format!("{} line {}", path.display(), n + 1);
            if line.trim().is_empty() {
                continue;
            }
            let mut fields = line.split('\t').map(str::trim);
            let (Some(file), Some(wnid)) = (fields.next(), fields.next()) else {
                bail!("{}: expected `file<TAB>wnid<TAB>…`", at());
            };
            if !is_plain_name(file) {
                bail!("{}: `{file}` is not a file name", at());
            }
            let Ok(label) = self.wnids.binary_search_by(|w| w.as_str().cmp(wnid)) else {
                bail!("{}: `{wnid}` is not one of the classes in wnids.txt", at());
            };
            let image = split.join("images").join(file);
            if listed.binary_search(&image).is_err() {
                bail!("{}: no image file {}", at(), image.display());
            }
            items.push((image, label));
        }
        Ok(items)
    }
}

/// The expected layout of a subset's data folder, for error messages.
fn layout(subset: Subset) -> &'static str {
    match subset {
        Subset::TinyImagenet => {
            "wnids.txt, train/<wnid>/images/ and val/images/ with val/val_annotations.txt"
        }
        _ => "train/<wnid>/ and val/<wnid>/ for each of its 10 WordNet ids",
    }
}

/// Whether `name` is one plain path component (no folder, no `..`).
fn is_plain_name(name: &str) -> bool {
    let mut components = Path::new(name).components();
    matches!(
        (components.next(), components.next()),
        (Some(Component::Normal(_)), None)
    )
}

/// Reads Tiny ImageNet's `wnids.txt`: one WordNet id per line, returned sorted.
fn read_wnids(path: &Path) -> Result<Vec<String>> {
    let text = read_text_file(path, MAX_TEXT_BYTES)?;
    let mut wnids: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(str::to_string)
        .collect();
    if let Some(bad) = wnids.iter().find(|w| !is_plain_name(w)) {
        bail!("{}: `{bad}` is not a WordNet id", path.display());
    }
    wnids.sort();
    wnids.dedup();
    if wnids.is_empty() {
        bail!("{}: no WordNet ids", path.display());
    }
    Ok(wnids)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The subsets' classes are ImageNet classes, and their names are the ones torchvision
    /// gives Imagenette (`_WNID_TO_CLASS`, first names).
    #[test]
    fn classes_are_imagenet_classes_in_sorted_order() {
        let imagenet = Labels::imagenet();
        for wnids in [IMAGENETTE_WNIDS, IMAGEWOOF_WNIDS] {
            let mut sorted = wnids;
            sorted.sort();
            assert_eq!(sorted, wnids);
            assert!(wnids.iter().all(|w| imagenet.index_of(w).is_some()));
        }
        let folder = SubsetFolder {
            subset: Subset::Imagenette,
            root: PathBuf::new(),
            wnids: IMAGENETTE_WNIDS.iter().map(|w| w.to_string()).collect(),
        };
        assert_eq!(
            folder.class_names(),
            [
                "tench",
                "English springer",
                "cassette player",
                "chain saw",
                "church",
                "French horn",
                "garbage truck",
                "gas pump",
                "golf ball",
                "parachute"
            ]
        );
    }

    #[test]
    fn archives_and_folders() {
        let file = |s: Subset, size| s.archive(size).file;
        let nette = file(Subset::Imagenette, ImageSize::Px160);
        assert_eq!(
            nette.url,
            "https://s3.amazonaws.com/fast-ai-imageclas/imagenette2-160.tgz"
        );
        assert_eq!(nette.file_name, "imagenette2-160.tgz");
        assert_eq!(Subset::Imagewoof.folder_name(ImageSize::Full), "imagewoof2");
        assert_eq!(
            Subset::TinyImagenet.folder_name(ImageSize::Px160),
            "tiny-imagenet-200"
        );
        assert_eq!(
            file(Subset::TinyImagenet, ImageSize::Full).checksum,
            Checksum::Md5("90528d7ca1a48142e341f4ef8d21d0de".into())
        );
        assert_eq!(
            Subset::Imagenette.archive(ImageSize::Px320).required.len(),
            20
        );
    }

    #[test]
    fn plain_names() {
        assert!(is_plain_name("val_0.JPEG"));
        for bad in ["", "..", "a/b", "/etc", "."] {
            assert!(!is_plain_name(bad), "{bad}");
        }
    }
}
