//! CIFAR-10 and CIFAR-100 in the official binary format.
//!
//! A CIFAR-10 record is 1 label byte and 3,072 image bytes (1,024 red, 1,024 green, 1,024
//! blue, each 32×32 row-major); CIFAR-100 records carry a coarse and a fine label byte first.
//! Files hold any whole number of records (the official ones 10,000 a batch): a partial
//! record is an error naming the file and the record.

use std::path::{Path, PathBuf};

use alexnet_model::files::{read_regular_file, read_text_file, MAX_TEXT_BYTES};
use anyhow::{bail, Result};

/// Side of a CIFAR image.
pub const SIDE: usize = 32;
/// Bytes of one image (3 planes of 32×32).
pub const IMAGE_BYTES: usize = 3 * SIDE * SIDE;

/// The largest CIFAR binary file read: 256 MiB (the largest official file, CIFAR-100's
/// `train.bin`, is 154 MB). Only regular files are read: a FIFO or device is refused.
pub const MAX_FILE_BYTES: u64 = 256 << 20;

/// Which CIFAR and, for CIFAR-100, which label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CifarKind {
    /// 10 classes: `data_batch_1..5.bin`, `test_batch.bin`.
    Cifar10,
    /// 100 fine classes: `train.bin`, `test.bin`.
    Cifar100Fine,
    /// 20 coarse superclasses of CIFAR-100.
    Cifar100Coarse,
}

impl CifarKind {
    /// Number of classes.
    pub fn num_classes(self) -> usize {
        match self {
            Self::Cifar10 => 10,
            Self::Cifar100Fine => 100,
            Self::Cifar100Coarse => 20,
        }
    }

    fn label_bytes(self) -> usize {
        match self {
            Self::Cifar10 => 1,
            _ => 2,
        }
    }

    /// The files of the training or test split inside a CIFAR binary folder.
    pub fn split_files(self, dir: &Path, train: bool) -> Vec<PathBuf> {
        let names: Vec<String> = match (self, train) {
            (Self::Cifar10, true) => (1..=5).map(|i| format!("data_batch_{i}.bin")).collect(),
            (Self::Cifar10, false) => vec!["test_batch.bin".into()],
            (_, true) => vec!["train.bin".into()],
            (_, false) => vec!["test.bin".into()],
        };
        names.into_iter().map(|n| dir.join(n)).collect()
    }

    /// The file of a CIFAR folder that names the classes, one per line in label order.
    pub fn label_names_file(self) -> &'static str {
        match self {
            Self::Cifar10 => "batches.meta.txt",
            Self::Cifar100Fine => "fine_label_names.txt",
            Self::Cifar100Coarse => "coarse_label_names.txt",
        }
    }

    /// Guesses the kind of a folder from its file names (CIFAR-10 or CIFAR-100 fine labels).
    pub fn detect(dir: &Path) -> Option<Self> {
        if dir.join("test_batch.bin").is_file() || dir.join("data_batch_1.bin").is_file() {
            Some(Self::Cifar10)
        } else if dir.join("test.bin").is_file() || dir.join("train.bin").is_file() {
            Some(Self::Cifar100Fine)
        } else {
            None
        }
    }
}

/// One image: its label and its planar RGB bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CifarImage {
    /// Class index.
    pub label: usize,
    /// `[3, 32, 32]` bytes, planar.
    pub pixels: Vec<u8>,
}

impl CifarImage {
    /// The image as an interleaved RGB image.
    pub fn to_rgb(&self) -> image::RgbImage {
        let plane = SIDE * SIDE;
        image::RgbImage::from_fn(SIDE as u32, SIDE as u32, |x, y| {
            let i = y as usize * SIDE + x as usize;
            image::Rgb([
                self.pixels[i],
                self.pixels[plane + i],
                self.pixels[2 * plane + i],
            ])
        })
    }
}

/// Parses one file's bytes; `name` appears in errors.
pub fn parse_records(bytes: &[u8], kind: CifarKind, name: &str) -> Result<Vec<CifarImage>> {
    let record = kind.label_bytes() + IMAGE_BYTES;
    if bytes.is_empty() {
        bail!("{name}: empty file, expected {record}-byte CIFAR records");
    }
    if !bytes.len().is_multiple_of(record) {
        bail!(
            "{name}: truncated or malformed: record {} is partial ({} of {record} bytes)",
            bytes.len() / record,
            bytes.len() % record
        );
    }
    let classes = kind.num_classes();
    bytes
        .chunks_exact(record)
        .enumerate()
        .map(|(i, chunk)| {
            let label = match kind {
                CifarKind::Cifar100Fine => chunk[1],
                _ => chunk[0],
            } as usize;
            if label >= classes {
                bail!("{name}: record {i} has label {label}, but {kind:?} has {classes} classes");
            }
            Ok(CifarImage {
                label,
                pixels: chunk[kind.label_bytes()..].to_vec(),
            })
        })
        .collect()
}

/// Class names from the folder's [`label_names_file`](CifarKind::label_names_file) when it is
/// present with the right count, else `class0`, `class1`, ….
pub fn class_names(dir: &Path, kind: CifarKind) -> Vec<String> {
    // Best effort: a missing, unreadable, oversized or non-regular file (a FIFO is never
    // opened for reading) gives the numbered names.
    let names: Vec<String> = read_text_file(&dir.join(kind.label_names_file()), MAX_TEXT_BYTES)
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    if names.len() == kind.num_classes() {
        names
    } else {
        (0..kind.num_classes())
            .map(|i| format!("class{i}"))
            .collect()
    }
}

/// Reads every record of the given files, in order.
pub fn read_files(files: &[PathBuf], kind: CifarKind) -> Result<Vec<CifarImage>> {
    let mut images = Vec::new();
    for file in files {
        let bytes = read_regular_file(file, MAX_FILE_BYTES)?;
        images.extend(parse_records(&bytes, kind, &file.display().to_string())?);
    }
    Ok(images)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(label: u8, fill: u8) -> Vec<u8> {
        let mut r = vec![label];
        r.extend(std::iter::repeat_n(fill, IMAGE_BYTES));
        r
    }

    #[test]
    fn reads_whole_records() {
        let mut bytes = record(3, 7);
        bytes.extend(record(9, 200));
        let images = parse_records(&bytes, CifarKind::Cifar10, "x.bin").unwrap();
        assert_eq!(images.len(), 2);
        assert_eq!((images[0].label, images[1].label), (3, 9));
        assert_eq!(images[1].to_rgb().get_pixel(31, 31).0, [200, 200, 200]);
    }

    #[test]
    fn planes_become_pixels() {
        let mut bytes = vec![0u8];
        bytes.extend((0..3).flat_map(|c| std::iter::repeat_n(10 * (c + 1), SIDE * SIDE)));
        let images = parse_records(&bytes, CifarKind::Cifar10, "x").unwrap();
        assert_eq!(images[0].to_rgb().get_pixel(5, 7).0, [10, 20, 30]);
    }

    #[test]
    fn cifar100_uses_fine_or_coarse_labels() {
        let mut bytes = vec![4u8, 77];
        bytes.extend(std::iter::repeat_n(0, IMAGE_BYTES));
        let fine = parse_records(&bytes, CifarKind::Cifar100Fine, "t").unwrap();
        let coarse = parse_records(&bytes, CifarKind::Cifar100Coarse, "t").unwrap();
        assert_eq!((fine[0].label, coarse[0].label), (77, 4));
    }

    #[test]
    fn malformed_files_name_file_and_record() {
        let mut bytes = record(1, 0);
        bytes.extend(&record(2, 0)[..100]);
        let err = parse_records(&bytes, CifarKind::Cifar10, "b.bin").unwrap_err();
        assert!(err.to_string().contains("b.bin") && err.to_string().contains("record 1"));
        let err = parse_records(&record(12, 0), CifarKind::Cifar10, "c.bin").unwrap_err();
        assert!(err.to_string().contains("record 0 has label 12"), "{err}");
        assert!(parse_records(&[], CifarKind::Cifar10, "e.bin").is_err());
    }

    /// A CIFAR file that is a FIFO or a device is refused at once (never read), and a FIFO
    /// as the label-names file gives the numbered names instead of waiting.
    #[cfg(unix)]
    #[test]
    fn cifar_fifo_and_devices_are_refused() {
        let dir = std::env::temp_dir().join(format!("alexnet-cifar-fifo-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for name in ["test_batch.bin", "batches.meta.txt"] {
            let made = std::process::Command::new("mkfifo")
                .arg(dir.join(name))
                .status()
                .unwrap();
            assert!(made.success());
        }
        let err = read_files(&[dir.join("test_batch.bin")], CifarKind::Cifar10)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("test_batch.bin: is a FIFO (named pipe), not a regular file"),
            "{err}"
        );
        let err = read_files(&[PathBuf::from("/dev/zero")], CifarKind::Cifar10)
            .unwrap_err()
            .to_string();
        assert!(err.contains("/dev/zero: is a character device"), "{err}");
        assert_eq!(class_names(&dir, CifarKind::Cifar10)[0], "class0");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
