//! Generated data for the tests: no downloads, no real images.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex, MutexGuard};

use alexnet_train::data::source::{InMemory, Splits};
use alexnet_train::train::TrainConfig;

/// Flags of a tiny, quiet command-line run; the epoch count comes next.
pub const TINY: [&str; 8] = [
    "--widths",
    "8,16,16,16,16",
    "--hidden",
    "32",
    "--batch-size",
    "16",
    "--quiet",
    "--epochs",
];

/// Burn's CPU backends keep one global generator (initialisation, dropout): tests that train
/// take this lock so that a parallel test cannot reseed it in the middle of a run.
pub fn train_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A fresh, empty temporary folder.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("alexnet-train-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Tiny deterministic generator for the data (independent of the crate's own).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as u32
    }
    fn byte(&mut self, lo: u8, hi: u8) -> u8 {
        lo + (self.next() % (hi - lo) as u32) as u8
    }
}

/// A 32×32 image of class `label` (0..3): channel `label` is bright, the others dark, with
/// pixel noise — linearly separable, and invariant to crops and flips.
pub fn colour_image(label: usize, rng_seed: u64) -> image::RgbImage {
    let mut rng = Lcg(rng_seed);
    image::RgbImage::from_fn(32, 32, |_, _| {
        let mut px = [0u8; 3];
        for (c, v) in px.iter_mut().enumerate() {
            *v = if c == label {
                rng.byte(150, 255)
            } else {
                rng.byte(0, 110)
            };
        }
        image::Rgb(px)
    })
}

/// `n` images of 3 classes, round robin.
pub fn colour_images(n: usize, seed: u64) -> Vec<(image::RgbImage, usize)> {
    (0..n)
        .map(|i| (colour_image(i % 3, seed * 10_000 + i as u64), i % 3))
        .collect()
}

/// Splits of the colour task.
pub fn colour_splits(train: usize, val: usize) -> Splits {
    Splits {
        train: Arc::new(InMemory::new(colour_images(train, 1))),
        val: Arc::new(InMemory::new(colour_images(val, 2))),
        classes: vec!["red".into(), "green".into(), "blue".into()],
        description: "generated colour task".into(),
    }
}

/// A tiny cifar-layout network, quiet, writing under `out`.
pub fn tiny_config(out: &Path) -> TrainConfig {
    TrainConfig {
        widths: Some([8, 16, 16, 16, 16]),
        hidden: Some(32),
        batch_size: 16,
        epochs: 3,
        lr: 0.02,
        out_dir: out.to_path_buf(),
        ..TrainConfig::default()
    }
}

/// CIFAR-10 binary records of the colour task.
pub fn cifar_records(n: usize, seed: u64) -> Vec<u8> {
    let mut bytes = Vec::new();
    for (img, label) in colour_images(n, seed) {
        bytes.push(label as u8);
        for c in 0..3 {
            bytes.extend(img.pixels().map(|p| p.0[c]));
        }
    }
    bytes
}

/// A CIFAR-10 binary folder with `data_batch_1.bin` and `test_batch.bin`.
pub fn cifar_folder(dir: &Path, train: usize, val: usize) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("data_batch_1.bin"), cifar_records(train, 1)).unwrap();
    std::fs::write(dir.join("test_batch.bin"), cifar_records(val, 2)).unwrap();
}

/// Runs the `alexnet-train` binary in `cwd`.
pub fn alexnet_train(args: &[&str], cwd: &Path) -> Output {
    alexnet_train_with(args, cwd, &[])
}

/// Runs the `alexnet-train` binary in `cwd` with these environment variables set.
pub fn alexnet_train_with(args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_alexnet-train"))
        .args(args)
        .envs(env.iter().copied())
        .current_dir(cwd)
        .output()
        .expect("run alexnet-train")
}

/// Asserts failure with exactly one line on stderr, `error: …`, that mentions every needle.
pub fn fails_with_all(args: &[&str], cwd: &Path, needles: &[&str]) {
    fails_with_env(args, cwd, &[], needles);
}

/// [`fails_with_all`] with these environment variables set.
pub fn fails_with_env(args: &[&str], cwd: &Path, env: &[(&str, &str)], needles: &[&str]) {
    let out = alexnet_train_with(args, cwd, env);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} succeeded: {stderr}");
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "{args:?}: not one line:\n{stderr}"
    );
    assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "{args:?}: `{needle}` not in: {stderr}"
        );
    }
}

/// [`fails_with_all`] with one needle.
pub fn fails_with(args: &[&str], cwd: &Path, needle: &str) {
    fails_with_all(args, cwd, &[needle]);
}
