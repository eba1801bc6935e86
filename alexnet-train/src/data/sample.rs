//! The CIFAR-10 sample built into the binary (`data/cifar-10-sample/`, see its README):
//! 5 files of 200 training records and one of 200 validation records, class-balanced, in the
//! official binary format. `alexnet-train` trains on it when no `--data-dir` is given.

use anyhow::Result;

use alexnet_common::cifar::{parse_records, CifarImage, CifarKind};

macro_rules! sample_file {
    ($name:literal) => {
        (
            $name,
            include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../data/cifar-10-sample/",
                $name
            ))
            .as_slice(),
        )
    };
}

const TRAIN: [(&str, &[u8]); 5] = [
    sample_file!("data_batch_1.bin"),
    sample_file!("data_batch_2.bin"),
    sample_file!("data_batch_3.bin"),
    sample_file!("data_batch_4.bin"),
    sample_file!("data_batch_5.bin"),
];
const TEST: (&str, &[u8]) = sample_file!("test_batch.bin");
const META: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../data/cifar-10-sample/batches.meta.txt"
));

/// The training (1,000) and validation (200) records.
pub fn records() -> Result<(Vec<CifarImage>, Vec<CifarImage>)> {
    let mut train = Vec::new();
    for (name, bytes) in TRAIN {
        train.extend(parse_records(bytes, CifarKind::Cifar10, name)?);
    }
    let val = parse_records(TEST.1, CifarKind::Cifar10, TEST.0)?;
    Ok((train, val))
}

/// CIFAR-10's class names, in label order.
pub fn class_names() -> Vec<String> {
    META.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_is_balanced_and_complete() {
        let (train, val) = records().unwrap();
        assert_eq!((train.len(), val.len()), (1000, 200));
        for (set, per_class) in [(&train, 100), (&val, 20)] {
            let mut counts = [0usize; 10];
            for r in set.iter() {
                counts[r.label] += 1;
            }
            assert_eq!(counts, [per_class; 10]);
        }
        assert_eq!(class_names().len(), 10);
        assert_eq!(class_names()[0], "airplane");
        for (_, bytes) in TRAIN.iter().chain([&TEST]) {
            assert!(bytes.len() < 1_000_000);
        }
    }
}
