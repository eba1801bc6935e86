//! Image-folder datasets: `ROOT/train/<class>/<image>` and `ROOT/val/<class>/<image>`
//! (ImageNet's layout, torchvision's `ImageFolder`). Without `val/`, a seeded, per-class
//! fraction of the training images is held out (`--val-split`). Classes are the training
//! sub-folders in sorted order; files are found by extension and decoded on the loader's
//! threads — a corrupt file is an error naming it, not a panic.
//!
//! The ImageNet subsets ([`subset_folder`]) are image folders too, whose classes the dataset
//! fixes (WordNet ids, named by ImageNet's labels) instead of the folders that exist.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use alexnet_common::datasets::subsets::SubsetFolder;
use alexnet_common::images::{class_folders, labelled_files, IMAGE_EXTENSIONS};
use anyhow::{bail, Result};

use super::rng::{mix, Rng};
use super::source::{Files, Splits};

/// Reads `root`. `val_split` is the held-out fraction when there is no `val/` folder.
pub fn image_folder(root: &Path, val_split: f64, seed: u64) -> Result<Splits> {
    if !root.is_dir() {
        bail!("{}: not a directory", root.display());
    }
    let train_dir = root.join("train");
    if !train_dir.is_dir() {
        bail!(
            "{}: no train/ folder (expected train/<class>/<image> and optionally val/<class>/<image>)",
            root.display()
        );
    }
    let classes: Vec<String> = class_folders(&train_dir)?
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    if classes.is_empty() {
        bail!("{}: no class sub-folders", train_dir.display());
    }
    let mut train = labelled_files(&train_dir, &classes, "")?;
    for (label, name) in classes.iter().enumerate() {
        if !train.iter().any(|(_, l)| *l == label) {
            bail!(
                "{}: class folder `{name}` holds no images ({})",
                train_dir.display(),
                IMAGE_EXTENSIONS.join(", ")
            );
        }
    }
    let val_dir = root.join("val");
    let (val, how) = if val_dir.is_dir() {
        let val = labelled_files(&val_dir, &classes, "")?;
        (val, "val/".to_string())
    } else {
        if !(val_split > 0.0 && val_split < 1.0) {
            bail!(
                "{}: no val/ folder; give --val-split F (0 < F < 1) to hold out a fraction of train/",
                root.display()
            );
        }
        let (kept, held) = hold_out(train, classes.len(), val_split, seed);
        train = kept;
        (
            held,
            format!("{:.0}% of train/ held out", val_split * 100.0),
        )
    };
    if val.is_empty() {
        bail!("{}: the validation split is empty", root.display());
    }
    Ok(Splits {
        description: format!(
            "image folder {} ({} classes, {} training images, validation: {how}, {} images)",
            root.display(),
            classes.len(),
            train.len(),
            val.len()
        ),
        train: Arc::new(Files::new(train)),
        val: Arc::new(Files::new(val)),
        classes,
    })
}

/// An ImageNet subset's data folder: its train/ and val/ splits and its classes, named by
/// ImageNet's labels.
pub fn subset_folder(folder: &SubsetFolder) -> Result<Splits> {
    let train = folder.images(true)?;
    let val = folder.images(false)?;
    Ok(Splits {
        description: format!(
            "{} folder {} ({} classes, {} training images, {} validation images)",
            folder.subset,
            folder.root.display(),
            folder.num_classes(),
            train.len(),
            val.len()
        ),
        train: Arc::new(Files::new(train)),
        val: Arc::new(Files::new(val)),
        classes: folder.class_names(),
    })
}

/// Splits per class: of each class's `n` images, `round(n·fraction)` (at least one when the
/// class has two or more) are drawn at random under `seed` for validation.
type Items = Vec<(PathBuf, usize)>;

fn hold_out(items: Items, classes: usize, fraction: f64, seed: u64) -> (Items, Items) {
    let mut by_class: Vec<Items> = vec![Vec::new(); classes];
    for item in items {
        by_class[item.1].push(item);
    }
    let (mut kept, mut held) = (Vec::new(), Vec::new());
    for (label, mut group) in by_class.into_iter().enumerate() {
        Rng::new(mix(seed, 0x5E11D, label as u64)).shuffle(&mut group);
        let n = group.len();
        let mut k = (n as f64 * fraction).round() as usize;
        if n >= 2 {
            k = k.clamp(1, n - 1);
        } else {
            k = 0;
        }
        held.extend(group.drain(..k));
        kept.extend(group);
    }
    kept.sort();
    held.sort();
    (kept, held)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hold_out_is_per_class_and_seeded() {
        let items: Items = (0..30)
            .map(|i| (PathBuf::from(format!("{i:02}.png")), i % 3))
            .collect();
        let (kept, held) = hold_out(items.clone(), 3, 0.2, 1);
        assert_eq!((kept.len(), held.len()), (24, 6));
        for c in 0..3 {
            assert_eq!(held.iter().filter(|(_, l)| *l == c).count(), 2);
        }
        assert_eq!(hold_out(items.clone(), 3, 0.2, 1).1, held);
        assert_ne!(hold_out(items, 3, 0.2, 2).1, held);
    }
}
