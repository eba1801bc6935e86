//! The `alexnet-train` binary: a tiny end-to-end run, and one-line errors on bad input.

mod common;
#[path = "../../alexnet-common/tests/support/http_server.rs"]
mod http_server;

use common::*;

#[test]
fn trains_a_cifar_folder_end_to_end_and_resumes() {
    let _lock = train_lock();
    let tmp = temp_dir("cli-run");
    cifar_folder(&tmp.join("cifar"), 48, 15);
    let mut args = vec![
        "--data-dir",
        "cifar",
        "--run-name",
        "r",
        "--stop-after",
        "1",
    ];
    args.extend(TINY);
    args.push("2");
    let out = alexnet_train(&args, &tmp);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = tmp.join("artifacts/r");
    assert!(run.join("metrics.csv").is_file() && !run.join("summary.json").exists());

    // Resuming may not change the training, only its length and the machinery.
    fails_with(
        &["--resume", "artifacts/r", "--lr", "0.5"],
        &tmp,
        "--lr cannot change when resuming",
    );
    let out = alexnet_train(&["--resume", "artifacts/r", "--quiet"], &tmp);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = std::fs::read_to_string(run.join("summary.json")).unwrap();
    assert!(summary.contains("\"epochs\": 2"), "{summary}");

    // The same name again is refused rather than overwritten.
    let mut args = vec!["--data-dir", "cifar", "--run-name", "r"];
    args.extend(TINY);
    args.push("1");
    fails_with(&args, &tmp, "run folder exists");
    let _ = std::fs::remove_dir_all(tmp);
}

#[test]
fn bad_inputs_are_one_line_errors() {
    let tmp = temp_dir("cli-errors");
    let t = tmp.as_path();
    fails_with(&["--dataset", "mnist"], t, "unknown dataset `mnist`");
    fails_with(&["--variant", "vgg"], t, "unknown variant `vgg`");
    fails_with(&["--backend", "tpu"], t, "unknown backend `tpu`");
    fails_with(&["--epochs", "0"], t, "--epochs must be at least 1");
    fails_with(&["--lr=-1"], t, "--lr must be a positive number");
    fails_with(
        &["--lr", "NaN"],
        t,
        "'--lr <LR>': `NaN` is not a finite number",
    );
    fails_with(&["--lighting", "inf"], t, "`inf` is not a finite number");
    fails_with(&["--schedule", "linear"], t, "unknown schedule `linear`");
    fails_with(&["--widths", "1,2"], t, "expected five widths");
    fails_with(&["--epochs", "many"], t, "invalid value");
    fails_with(&["--no-such-flag"], t, "--no-such-flag");
    fails_with(&["--crop", "40"], t, "crop 40 is larger");
    fails_with(&["--dataset", "folder"], t, "needs --data-dir");
    fails_with(&["--data-dir", "missing"], t, "missing: not a directory");
    fails_with(&["--resume", "missing"], t, "no such run folder");
    fails_with(&["--devices", "0,1"], t, "has one device");
    fails_with(
        &["--devices", "1,1", "--backend", "wgpu"],
        t,
        "a device twice",
    );
    fails_with(&["--weights", "missing.pth"], t, "no such weights file");
    std::fs::write(t.join("junk.pth"), b"not a checkpoint").unwrap();
    fails_with(&["--weights", "junk.pth", "--epochs", "1"], t, "junk.pth");

    // Malformed CIFAR: a partial record, a label out of range, a missing test file.
    let cifar = t.join("cifar");
    cifar_folder(&cifar, 6, 3);
    let mut bytes = cifar_records(2, 1);
    bytes.truncate(3073 + 100);
    std::fs::write(cifar.join("data_batch_1.bin"), &bytes).unwrap();
    fails_with(&["--data-dir", "cifar"], t, "record 1 is partial");
    let mut bytes = cifar_records(2, 1);
    bytes[3073] = 42;
    std::fs::write(cifar.join("data_batch_1.bin"), &bytes).unwrap();
    fails_with(&["--data-dir", "cifar"], t, "record 1 has label 42");
    std::fs::remove_file(cifar.join("test_batch.bin")).unwrap();
    fails_with(&["--data-dir", "cifar"], t, "no CIFAR test file");

    // Config files: unknown keys, invalid JSON.
    std::fs::write(t.join("c.json"), r#"{"epoch": 3}"#).unwrap();
    fails_with(&["--config", "c.json"], t, "unknown field `epoch`");
    std::fs::write(t.join("d.json"), "{epochs: 3").unwrap();
    fails_with(&["--config", "d.json"], t, "invalid JSON");

    // Image folders: no val/ without --val-split; a corrupt image names the file.
    let folder = t.join("imgs");
    for class in ["a", "b"] {
        std::fs::create_dir_all(folder.join("train").join(class)).unwrap();
        for i in 0..3 {
            colour_image(i % 3, i as u64)
                .save(folder.join("train").join(class).join(format!("{i}.png")))
                .unwrap();
        }
    }
    let base = [
        "--dataset",
        "folder",
        "--data-dir",
        "imgs",
        "--variant",
        "cifar",
        "--quiet",
    ];
    fails_with(&base, t, "no val/ folder");
    std::fs::write(folder.join("train/b/broken.png"), b"not a png at all").unwrap();
    let mut args = base.to_vec();
    args.extend([
        "--val-split",
        "0.34",
        "--widths",
        "8,16,16,16,16",
        "--hidden",
        "32",
        "--epochs",
        "1",
    ]);
    fails_with(&args, t, "broken.png");
    let _ = std::fs::remove_dir_all(tmp);
}

#[test]
fn image_folder_with_val_split_trains() {
    let _lock = train_lock();
    let tmp = temp_dir("cli-folder");
    let folder = tmp.join("imgs");
    for (label, class) in ["red", "green", "blue"].iter().enumerate() {
        std::fs::create_dir_all(folder.join("train").join(class)).unwrap();
        for i in 0..6 {
            colour_image(label, 100 + i)
                .save(folder.join("train").join(class).join(format!("{i}.png")))
                .unwrap();
        }
    }
    let mut args = vec![
        "--dataset",
        "folder",
        "--data-dir",
        "imgs",
        "--val-split",
        "0.34",
        "--run-name",
        "f",
    ];
    args.extend(TINY);
    args.push("1");
    let out = alexnet_train(&args, &tmp);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config = std::fs::read_to_string(tmp.join("artifacts/f/config.json")).unwrap();
    assert!(
        config.contains("\"train_images\": 12") && config.contains("\"val_images\": 6"),
        "{config}"
    );
    let _ = std::fs::remove_dir_all(tmp);
}

#[test]
fn bench_times_training_steps_and_reports_json() {
    let dir = temp_dir("bench");
    let out = alexnet_train(
        &[
            "bench",
            "--variant",
            "cifar",
            "--batch-size",
            "4",
            "--backend",
            "flex",
            "--warmup",
            "1",
            "--iters",
            "2",
            "--min-seconds",
            "0",
            "--format",
            "json",
        ],
        &dir,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(text.trim()).expect("one JSON line");
    assert_eq!(report["workload"], "train-step");
    assert_eq!(report["backend"], "flex");
    assert_eq!(report["variant"], "cifar");
    assert_eq!(
        (report["batch"].as_u64(), report["input_size"].as_u64()),
        (Some(4), Some(32))
    );
    assert_eq!(report["iterations"], 2);
    assert!(report["images_per_s"].as_f64().unwrap() > 0.0, "{report}");
    // Training flags do not go with `bench`.
    fails_with(&["bench", "--epochs", "2"], &dir, "--epochs");
    let _ = std::fs::remove_dir_all(dir);
}

/// Issue 10 for training: `--config` that is a device or a FIFO is refused without reading
/// (one line, at once); batch and input sizes over the memory estimate's limit name the flag
/// and the limit (bench and a real run); a long, thin image in an image folder is refused,
/// naming the file, before it is resized.
#[cfg(unix)]
#[test]
fn hostile_sizes_and_files_are_refused() {
    let tmp = temp_dir("cli-hostile");
    let t = tmp.as_path();
    fails_with(
        &["--config", "/dev/zero"],
        t,
        "/dev/zero: is a character device, not a regular file",
    );
    let made = std::process::Command::new("mkfifo")
        .arg(t.join("pipe.json"))
        .status()
        .unwrap();
    assert!(made.success());
    fails_with(
        &["--config", "pipe.json"],
        t,
        "pipe.json: is a FIFO (named pipe), not a regular file",
    );
    fails_with_all(
        &["bench", "--batch-size", "100000", "--iters", "1"],
        t,
        &[
            "--batch-size 100000: a training step on 100000 images",
            "over the limit of",
        ],
    );
    fails_with_all(
        &["bench", "--input-size", "100000", "--iters", "1"],
        t,
        &[
            "--input-size 100000: a training step on one",
            "over the limit of",
        ],
    );
    cifar_folder(&t.join("cifar"), 6, 3);
    fails_with_all(
        &["--data-dir", "cifar", "--batch-size", "100000", "--quiet"],
        t,
        &["--batch-size 100000: a training step", "over the limit of"],
    );
    assert!(!t.join("artifacts").exists(), "no run folder is made");

    let folder = t.join("imgs");
    for split in ["train", "val"] {
        for class in ["a", "b"] {
            let dir = folder.join(split).join(class);
            std::fs::create_dir_all(&dir).unwrap();
            colour_image(0, 1).save(dir.join("0.png")).unwrap();
        }
    }
    image::GrayImage::new(20_000, 1)
        .save(folder.join("train/a/thin.png"))
        .unwrap();
    fails_with_all(
        &[
            "--dataset",
            "folder",
            "--data-dir",
            "imgs",
            "--variant",
            "cifar",
            "--resize",
            "256",
            "--crop",
            "32",
            "--widths",
            "8,16,16,16,16",
            "--hidden",
            "32",
            "--epochs",
            "1",
            "--quiet",
        ],
        t,
        &[
            "thin.png",
            "would be 5120000×256",
            "over the limit of 100000000 pixels",
        ],
    );
    let _ = std::fs::remove_dir_all(tmp);
}

/// `--weights` holding a NaN: a warning naming the tensor and count, or under
/// `--strict-weights` one error line.
#[test]
fn non_finite_initial_weights_warn_or_fail_under_strict_weights() {
    let tmp = temp_dir("cli-nan-weights");
    let source = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/weights/tv.safetensors"
    );
    let mut bytes = std::fs::read(source).unwrap();
    let header = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    // The data section's first value (whichever tensor starts it) becomes NaN.
    bytes[8 + header..8 + header + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    let weights = tmp.join("nan.safetensors");
    std::fs::write(&weights, bytes).unwrap();
    let weights = weights.display().to_string();
    let args = ["--weights", weights.as_str(), "--epochs", "1", "--quiet"];
    fails_with(
        &[&args[..], &["--strict-weights"]].concat(),
        &tmp,
        "nan.safetensors: NaN or infinite values in 1 tensor: `",
    );
    // Without it: the warning, then (these are torchvision-layout weights for the default
    // cifar run) the shape error.
    let out = alexnet_train(&args, &tmp);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("warning: ") && stderr.contains("NaN or infinite values in 1 tensor"),
        "{stderr}"
    );
}

/// `--pretrained`: unusable names and combinations are one line; a download whose digest is
/// wrong fails before any training, leaving the cache folder empty and no run folder.
#[test]
fn pretrained_initial_weights_are_checked_before_training() {
    let tmp = temp_dir("cli-pretrained");
    let t = tmp.as_path();
    fails_with(
        &["--pretrained", "vgg"],
        t,
        "unknown pretrained weights `vgg`",
    );
    fails_with(
        &["--pretrained", "torchvision", "--variant", "cifar"],
        t,
        "--pretrained torchvision holds a torchvision network: add --variant torchvision",
    );
    fails_with(
        &["--pretrained", "caffe", "--variant", "paper"],
        t,
        "not Caffe's BGR 0-255 input",
    );
    fails_with(
        &["--pretrained", "torchvision", "--weights", "w.pth"],
        t,
        "--weights",
    );

    let file = "alexnet-owt-7be5be79.pth";
    let server = http_server::Server::start(
        &format!("/{file}"),
        http_server::Reply::Body(b"not the weights".to_vec()),
    );
    cifar_folder(&tmp.join("cifar"), 16, 8);
    let cache = tmp.join("cache");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_alexnet-train"))
        .args([
            "--data-dir",
            "cifar",
            "--variant",
            "torchvision",
            "--crop",
            "64",
            "--resize",
            "64",
            "--pretrained",
            "torchvision",
            "--run-name",
            "r",
        ])
        .args(TINY)
        .arg("1")
        .env("ALEXNET_BURN_CACHE", &cache)
        .env("ALEXNET_BURN_MIRROR", server.base())
        .current_dir(t)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    let lines: Vec<&str> = err.trim_end().lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(lines[0].starts_with("downloading"), "{err}");
    assert!(lines[1].contains("SHA-256 checksum mismatch"), "{err}");
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 0);
    assert!(
        !t.join("artifacts/r").exists(),
        "a run folder was left behind"
    );
    let _ = std::fs::remove_dir_all(tmp);
}
