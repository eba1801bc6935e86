//! A configuration stored in a weights file (Burnpack, safetensors) goes through
//! `AlexNetConfig::validate` before anything is computed from it: a file whose configuration
//! has a stride of 0 or an even LRN size is one error naming the field, never a panic.

use std::path::{Path, PathBuf};

use alexnet_model::checkpoint::{
    load_model, read_checkpoint, resolve_config, save_model, WeightFormat,
};
use alexnet_model::{AlexNetConfig, LrnPreset};
use burn::backend::NdArray;

type B = NdArray;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "alexnet-stored-config-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A narrow cifar network with LRN, saved in `format` at `path`.
fn save_tiny(path: &Path, format: WeightFormat) {
    let config = AlexNetConfig::cifar(3)
        .with_widths([4, 8, 8, 8, 8])
        .with_hidden(8)
        .with_lrn(Some(LrnPreset::Caffe.config()));
    let model = config.try_init::<B>(&Default::default()).unwrap();
    save_model(&model, path, format).unwrap();
}

/// Replaces every `from` in the file by `to` (same length, so the file's framing holds);
/// returns how many were replaced.
fn patch(path: &Path, from: &str, to: &str) -> usize {
    assert_eq!(from.len(), to.len());
    let mut bytes = std::fs::read(path).unwrap();
    let mut count = 0;
    let mut i = 0;
    while let Some(at) = bytes[i..]
        .windows(from.len())
        .position(|w| w == from.as_bytes())
    {
        let at = i + at;
        bytes[at..at + to.len()].copy_from_slice(to.as_bytes());
        count += 1;
        i = at + to.len();
    }
    std::fs::write(path, bytes).unwrap();
    count
}

/// `key: from` → `key: to` in every JSON spelling: compact or pretty, and escaped inside a
/// JSON string (safetensors' header holds the configuration as a string).
fn patch_json(path: &Path, key: &str, from: &str, to: &str) {
    let mut count = 0;
    for quote in ["\"", "\\\""] {
        for colon in [":", ": "] {
            let spell = |value| format!("{quote}{key}{quote}{colon}{value}");
            count += patch(path, &spell(from), &spell(to));
        }
    }
    assert!(count > 0, "no `{key}` {from} in {}", path.display());
}

/// Loading the file fails (no panic) with a message containing every needle.
fn refused(path: &Path, needles: &[&str]) {
    let result = std::panic::catch_unwind(|| {
        load_model::<B>(path, None, None, &Default::default()).map(|_| ())
    });
    let message = match result {
        Ok(Err(err)) => err.to_string(),
        Ok(Ok(())) => panic!("{} loaded", path.display()),
        Err(_) => panic!("{}: loading panicked", path.display()),
    };
    for needle in needles {
        assert!(message.contains(needle), "`{needle}` not in: {message}");
    }
    // The same through the two steps a caller may take itself.
    let checkpoint = read_checkpoint(path).unwrap();
    assert!(resolve_config(&checkpoint, None).is_err());
}

#[test]
fn burnpack_with_a_zero_stride_is_refused_naming_the_field() {
    let dir = temp_dir("bpk-stride");
    let path = dir.join("m.bpk");
    save_tiny(&path, WeightFormat::Burn);
    assert!(load_model::<B>(&path, None, None, &Default::default()).is_ok());
    patch_json(&path, "stride", "1", "0");
    refused(&path, &["m.bpk", "stride must be at least 1, got 0"]);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn stored_configs_with_bad_fields_are_refused_naming_them() {
    let dir = temp_dir("fields");
    for (format, name) in [
        (WeightFormat::Burn, "m.bpk"),
        (WeightFormat::Safetensors, "m.safetensors"),
    ] {
        let cases = [
            ("size", "5", "4", "LRN size must be odd"),
            (
                "kernel",
                "5",
                "0",
                "conv1 kernel must be between 1 and 8192, got 0",
            ),
            (
                "padding",
                "2",
                "9",
                "conv1 padding must be smaller than its kernel (5), got 9",
            ),
            (
                "num_classes",
                "3",
                "0",
                "num_classes must be between 1 and 1048576, got 0",
            ),
        ];
        for (key, from, to, expected) in cases {
            let path = dir.join(name);
            save_tiny(&path, format);
            patch_json(&path, key, from, to);
            refused(&path, &[name, expected]);
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}
