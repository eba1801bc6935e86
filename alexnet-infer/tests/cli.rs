//! The command-line contracts of `alexnet-infer info` and `bench`, run as a user would.

#[path = "../../alexnet-common/tests/support/folders.rs"]
mod folders;
#[path = "../../alexnet-common/tests/support/http_server.rs"]
mod http_server;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use folders::listing;
use http_server::{closed_url, Reply, Server};

fn infer(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_alexnet-infer"))
        .args(args)
        .output()
        .expect("alexnet-infer runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs a command that must succeed and returns its stdout.
fn succeed(args: &[&str]) -> String {
    let out = infer(args);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    stdout(&out)
}

/// Runs a command that must succeed and parses its one JSON object.
fn json_report(args: &[&str]) -> serde_json::Value {
    serde_json::from_str(succeed(args).trim()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn info_prints_layers_and_the_paper_total() {
    let out = infer(&["info", "--variant", "paper"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("total parameters: 60,965,224"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("conv1") && l.contains("96×55×55")),
        "{text}"
    );
    assert!(text.lines().any(|l| l.starts_with("lrn2")), "{text}");
}

#[test]
fn info_torchvision_total_and_class_count() {
    let text = succeed(&["info", "--variant", "torchvision"]);
    assert!(text.contains("total parameters: 61,100,840"), "{text}");
    let text = succeed(&["info", "--variant", "torchvision", "--num-classes", "10"]);
    assert!(
        text.lines()
            .any(|l| l.starts_with("fc8") && l.contains("40,970")),
        "{text}"
    );
}

#[test]
fn info_caffe_input_of_the_paper() {
    let text = succeed(&["info", "--variant", "paper", "--caffe-input"]);
    assert!(text.contains("input 3×227×227"), "{text}");
    assert!(text.contains("total parameters: 60,965,224"), "{text}");
}

#[test]
fn too_small_input_is_one_line_and_nonzero_exit() {
    let out = infer(&["info", "--variant", "torchvision", "--input-size", "62"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("63×63"), "{err}");
}

#[test]
fn bench_json_contract() {
    let report = json_report(&[
        "bench",
        "--variant",
        "cifar",
        "--batch-size",
        "2",
        "--backend",
        "ndarray",
        "--warmup",
        "0",
        "--iters",
        "1",
        "--min-seconds",
        "0",
        "--format",
        "json",
    ]);
    assert_eq!(report["workload"], "forward");
    assert_eq!(report["backend"], "ndarray");
    assert_eq!(report["variant"], "cifar");
    assert_eq!(report["batch"], 2);
    assert_eq!(report["iterations"], 1);
    assert!(report["images_per_s"].as_f64().unwrap() > 0.0, "{report}");
}

#[test]
fn unknown_backend_and_variant_are_errors() {
    let out = infer(&["bench", "--backend", "tpu"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("unknown backend `tpu`"),
        "{}",
        stderr(&out)
    );
    let out = infer(&["info", "--variant", "vgg"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("unknown variant `vgg`"),
        "{}",
        stderr(&out)
    );
}

fn repo(path: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
        .display()
        .to_string()
}

/// A fresh scratch folder for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("alexnet-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn json_lines(output: &Output) -> Vec<serde_json::Value> {
    stdout(output)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

/// classify's JSON lines give PyTorch's top-5 (indices and probabilities ≤ 1e-4) for the
/// lossless test images, through the tiny torchvision-layout `.pth`.
#[test]
fn classify_matches_pytorch_top5() {
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo("fixtures/classify_top5.json")).unwrap(),
    )
    .unwrap();
    let expected = expected.as_object().unwrap();
    let images: Vec<String> = expected
        .keys()
        .map(|n| repo(&format!("fixtures/preprocess/{n}")))
        .collect();
    let mut args = vec!["classify", "--weights"];
    let weights = repo("fixtures/weights/tv.pth");
    args.push(&weights);
    args.extend([
        "--format",
        "json",
        "--backend",
        "ndarray",
        "--batch-size",
        "4",
    ]);
    args.extend(images.iter().map(String::as_str));
    let out = infer(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines = json_lines(&out);
    assert_eq!(lines.len(), expected.len());
    for line in lines {
        let path = line["path"].as_str().unwrap();
        let name = Path::new(path).file_name().unwrap().to_str().unwrap();
        let want = expected[name].as_array().unwrap();
        let got = line["top"].as_array().unwrap();
        assert_eq!(got.len(), 5);
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g["index"], w["index"], "{name}");
            let (gp, wp) = (g["prob"].as_f64().unwrap(), w["prob"].as_f64().unwrap());
            assert!((gp - wp).abs() <= 1e-4, "{name}: {gp} vs {wp}");
            assert_eq!(g["label"], format!("class {}", w["index"]));
        }
    }
}

/// A folder with one unreadable file: the rest are still classified, the bad one is named on
/// stderr, and the exit code is non-zero.
#[test]
fn classify_folder_reports_unreadable_images() {
    let dir = scratch("classify");
    std::fs::copy(repo("fixtures/preprocess/landscape.png"), dir.join("a.png")).unwrap();
    std::fs::create_dir(dir.join("sub")).unwrap();
    std::fs::copy(
        repo("fixtures/preprocess/palette.png"),
        dir.join("sub/b.png"),
    )
    .unwrap();
    std::fs::write(dir.join("broken.jpg"), b"not a jpeg").unwrap();
    let labels = repo("fixtures/cifar10-labels.txt");
    let out = infer(&[
        "classify",
        "--weights",
        &repo("fixtures/weights/tv.safetensors"),
        "--labels",
        &labels,
        "--top-k",
        "2",
        "--ten-crop",
        "--backend",
        "flex",
        dir.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let text = stdout(&out);
    assert!(text.contains("a.png") && text.contains("b.png"), "{text}");
    assert!(text.contains("deer"), "labels from --labels: {text}");
    let err = stderr(&out);
    assert!(err.contains("broken.jpg"), "{err}");
    assert!(err.contains("1 of 3 images could not be read"), "{err}");
}

#[test]
fn bad_weights_are_one_line_errors() {
    for (file, needle) in [
        ("hostile_os_system.pth", "posix.system"),
        ("truncated.pth", "truncated.pth"),
        ("garbage.pth", "garbage.pth"),
        ("does-not-exist.pth", "does-not-exist.pth"),
    ] {
        let out = infer(&[
            "classify",
            "--weights",
            &repo(&format!("fixtures/weights/{file}")),
            &repo("fixtures/preprocess/landscape.png"),
        ]);
        assert!(!out.status.success(), "{file}");
        let err = stderr(&out);
        assert_eq!(err.trim_end().lines().count(), 1, "{file}: {err}");
        assert!(err.contains(needle), "{file}: {err}");
    }
    let out = infer(&[
        "classify",
        "--weights",
        &repo("fixtures/weights/tv.pth"),
        "--variant",
        "paper",
        &repo("fixtures/preprocess/landscape.png"),
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("torchvision"), "{}", stderr(&out));
}

/// Writes a CIFAR-10 binary test split of `n` records with labels 0, 1, 2, ...
fn cifar_folder(name: &str, n: usize) -> PathBuf {
    let dir = scratch(name);
    let mut bytes = Vec::new();
    for i in 0..n {
        bytes.push((i % 10) as u8);
        bytes.extend((0..3072).map(|j| ((i * 31 + j * 7) % 256) as u8));
    }
    std::fs::write(dir.join("test_batch.bin"), bytes).unwrap();
    dir
}

#[test]
fn eval_on_a_cifar_folder() {
    let dir = cifar_folder("eval", 20);
    let report = json_report(&[
        "eval",
        "--weights",
        &repo("fixtures/weights/cifar_f64.pth"),
        "--data",
        dir.to_str().unwrap(),
        "--format",
        "json",
        "--backend",
        "ndarray",
    ]);
    assert_eq!(report["n"], 20);
    let (top1, top5) = (
        report["top1"].as_f64().unwrap(),
        report["top5"].as_f64().unwrap(),
    );
    assert!(
        (0.0..=1.0).contains(&top1) && top1 <= top5 && top5 <= 1.0,
        "{report}"
    );
    assert_eq!(report["per_class"].as_array().unwrap().len(), 10);

    std::fs::write(dir.join("test_batch.bin"), vec![0u8; 3073 + 10]).unwrap();
    let out = infer(&[
        "eval",
        "--weights",
        &repo("fixtures/weights/cifar_f64.pth"),
        "--data",
        dir.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("record 1 is partial"),
        "{}",
        stderr(&out)
    );
}

/// An image folder whose class folders are named by label: every image is counted once.
#[test]
fn eval_on_an_image_folder() {
    let dir = scratch("eval-folder");
    for (class, image) in [
        ("cat", "landscape.png"),
        ("dog", "palette.png"),
        ("ship", "large.png"),
    ] {
        std::fs::create_dir(dir.join(class)).unwrap();
        std::fs::copy(
            repo(&format!("fixtures/preprocess/{image}")),
            dir.join(class).join(image),
        )
        .unwrap();
    }
    let report = json_report(&[
        "eval",
        "--weights",
        &repo("fixtures/weights/tv.pth"),
        "--data",
        dir.to_str().unwrap(),
        "--labels",
        &repo("fixtures/cifar10-labels.txt"),
        "--format",
        "json",
    ]);
    assert_eq!(report["n"], 3);
    let classes: Vec<&str> = report["per_class"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["label"].as_str().unwrap())
        .collect();
    assert_eq!(classes, ["cat", "dog", "ship"]);
}

#[test]
fn embed_writes_csv_and_safetensors() {
    let dir = scratch("embed");
    let images = [
        repo("fixtures/preprocess/landscape.png"),
        repo("fixtures/preprocess/large.png"),
    ];
    let embed = |layer: &str, out: &std::path::Path| {
        infer(&[
            "embed",
            "--weights",
            &repo("fixtures/weights/tv.pth"),
            "--layer",
            layer,
            "--out",
            out.to_str().unwrap(),
            &images[0],
            &images[1],
        ])
    };
    let csv = dir.join("f.csv");
    let out = embed("fc7", &csv);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0].split(',').count(), 1 + 16, "path + hidden 16");
    assert!(lines[1].contains("landscape.png"));

    let st = dir.join("f.safetensors");
    let out = embed("pool5", &st);
    assert!(out.status.success(), "{}", stderr(&out));
    let bytes = std::fs::read(&st).unwrap();
    let (dict, meta) = alexnet_model::weights::read_safetensors(&bytes).unwrap();
    assert_eq!(dict["features"].shape, [2, 4 * 6 * 6]);
    let paths: Vec<String> = serde_json::from_str(&meta["paths"]).unwrap();
    assert!(paths[1].ends_with("large.png"));
}

#[test]
fn filters_draws_a_grid_of_conv1_kernels() {
    let out_png = scratch("filters").join("conv1.png");
    let out = infer(&[
        "filters",
        "--weights",
        &repo("fixtures/weights/paper.pth"),
        "--out",
        out_png.to_str().unwrap(),
        "--scale",
        "2",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let image = image::open(&out_png).unwrap();
    // 4 kernels of 11×11 in a 2×2 grid, (11 + 1)·2 px per cell plus a 2 px border.
    assert_eq!((image.width(), image.height()), (2 * 24 + 2, 2 * 24 + 2));
}

/// .pth → Burn → safetensors → classify gives the same answer as the .pth itself.
#[test]
fn convert_round_trip_keeps_predictions() {
    let dir = scratch("convert");
    let (bpk, st) = (dir.join("m.bpk"), dir.join("m.safetensors"));
    let pth = repo("fixtures/weights/tv_legacy.pth");
    succeed(&["convert", &pth, bpk.to_str().unwrap()]);
    succeed(&["convert", bpk.to_str().unwrap(), st.to_str().unwrap()]);
    let image = repo("fixtures/preprocess/large.png");
    let classify = |w: &str| succeed(&["classify", "--weights", w, "--format", "json", &image]);
    assert_eq!(classify(&pth), classify(st.to_str().unwrap()));
    let out = infer(&["convert", &pth, dir.join("m.onnx").to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("unknown output format"),
        "{}",
        stderr(&out)
    );
}

/// Writes a grey `w`×`h` PNG.
fn write_png(path: &Path, w: u32, h: u32) {
    image::GrayImage::new(w, h).save(path).unwrap();
}

/// Issue 10, hostile image inputs, each one line on stderr and a non-zero exit, none
/// waiting: a FIFO named `*.jpg` and `/dev/zero` given as images, `/dev/zero` as `--labels`,
/// a 5,000,000×1 PNG (over the side limit, refused from its header) and a 20,000×1 PNG
/// (5,120,000×256 once resized: refused before resizing). In a folder the FIFO is skipped
/// (never opened) and the good image still classified.
#[cfg(unix)]
#[test]
fn hostile_image_files_are_refused_without_waiting() {
    let dir = scratch("hostile-images");
    let fifo = dir.join("pipe.jpg");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    write_png(&dir.join("long.png"), 5_000_000, 1);
    write_png(&dir.join("thin.png"), 20_000, 1);
    let weights = repo("fixtures/weights/tv.safetensors");
    let classify = |extra: &[&str], images: &[&str]| {
        let mut args = vec!["classify", "--weights", &weights, "--backend", "ndarray"];
        args.extend(extra);
        args.extend(images);
        let start = std::time::Instant::now();
        let out = infer(&args);
        assert!(start.elapsed().as_secs() < 60, "{args:?} took too long");
        out
    };
    let fifo_name = fifo.to_str().unwrap();
    for (images, needle) in [
        (
            fifo_name,
            "pipe.jpg: is a FIFO (named pipe), not a regular file",
        ),
        (
            "/dev/zero",
            "/dev/zero: is a character device, not a regular file",
        ),
        (
            &*dir.join("long.png").display().to_string(),
            "long.png: a 5000000×1 image is over the limit of 32768 pixels per side",
        ),
        (
            &*dir.join("thin.png").display().to_string(),
            "thin.png: a 20000×1 image resized to 256 on its shorter side would be \
             5120000×256 (1310720000 pixels), over the limit of 100000000 pixels",
        ),
    ] {
        let out = classify(&[], &[images]);
        assert!(!out.status.success(), "{images}");
        let err = stderr(&out);
        assert!(err.contains(needle), "{images}: {err}");
        assert!(
            err.contains("1 of 1 images could not be read"),
            "{images}: {err}"
        );
    }
    let out = classify(
        &["--labels", "/dev/zero"],
        &[&repo("fixtures/preprocess/landscape.png")],
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("labels /dev/zero: is a character device"),
        "{err}"
    );

    // In a folder: the FIFO is not an image file (never opened); the rest are read.
    let folder = dir.join("folder");
    std::fs::create_dir(&folder).unwrap();
    assert!(Command::new("mkfifo")
        .arg(folder.join("pipe.jpg"))
        .status()
        .unwrap()
        .success());
    std::fs::copy(
        repo("fixtures/preprocess/landscape.png"),
        folder.join("a.png"),
    )
    .unwrap();
    let out = classify(&[], &[folder.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("a.png"), "{}", stdout(&out));
    assert!(!stdout(&out).contains("pipe.jpg"), "{}", stdout(&out));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A folder holding two symbolic links to itself: one line naming the loop, at once.
#[cfg(unix)]
#[test]
fn self_linked_folders_end_at_once() {
    let dir = scratch("self-links");
    std::os::unix::fs::symlink(".", dir.join("a")).unwrap();
    std::os::unix::fs::symlink(".", dir.join("b")).unwrap();
    let start = std::time::Instant::now();
    let out = infer(&[
        "classify",
        "--weights",
        &repo("fixtures/weights/tv.safetensors"),
        dir.to_str().unwrap(),
    ]);
    assert!(start.elapsed().as_secs() < 30);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("a symbolic link loops back to"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A JPEG cut in half: classified with a warning naming it; refused under --strict-images.
#[test]
fn truncated_jpegs_warn_or_fail_under_strict_images() {
    let dir = scratch("truncated-jpeg");
    let img = image::RgbImage::from_fn(320, 240, |x, y| {
        image::Rgb([((x * 7) ^ (y * 3)) as u8, (x * y) as u8, (x + y * 5) as u8])
    });
    let mut jpeg = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut jpeg),
        image::ImageFormat::Jpeg,
    )
    .unwrap();
    let path = dir.join("half.jpg");
    std::fs::write(&path, &jpeg[..jpeg.len() / 2]).unwrap();
    let weights = repo("fixtures/weights/tv.safetensors");
    let args = ["classify", "--weights", &weights, "--backend", "ndarray"];
    let out = infer(&[&args[..], &[path.to_str().unwrap()]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("warning: "), "{err}");
    assert!(err.contains("half.jpg: truncated JPEG"), "{err}");
    let out = infer(&[&args[..], &["--strict-images", path.to_str().unwrap()]].concat());
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("half.jpg: truncated JPEG"), "{err}");
    assert!(err.contains("--strict-images refuses it"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Sizes over the memory estimate's limit: one line naming the flag, its value and the
/// limit, before anything is allocated.
#[test]
fn sizes_over_the_memory_limit_name_the_flag() {
    for (args, needle) in [
        (
            vec!["bench", "--batch-size", "100000", "--iters", "1"],
            "--batch-size 100000: a forward pass on 100000 images of 224×224 needs about",
        ),
        (
            vec!["bench", "--input-size", "100000", "--iters", "1"],
            "--input-size 100000: a forward pass on one 100000×100000 image needs about",
        ),
    ] {
        let out = infer(&args);
        assert!(!out.status.success(), "{args:?}");
        let err = stderr(&out);
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(err.contains("over the limit of"), "{args:?}: {err}");
    }
    let weights = repo("fixtures/weights/tv.safetensors");
    let image = repo("fixtures/preprocess/landscape.png");
    for (flags, needle) in [
        (
            vec!["--resize", "60000"],
            "--resize 60000: every image would be resized",
        ),
        (
            vec!["--batch-size", "100000"],
            "--batch-size 100000: a forward pass on 100000",
        ),
        (
            vec!["--batch-size", "10000", "--ten-crop"],
            "--batch-size 10000: a forward pass on 10000 images (10 views each)",
        ),
    ] {
        let mut args = vec!["classify", "--weights", &weights, "--backend", "ndarray"];
        args.extend(&flags);
        args.push(&image);
        let out = infer(&args);
        assert!(!out.status.success(), "{flags:?}");
        let err = stderr(&out);
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains(needle), "{flags:?}: {err}");
    }
    let out = infer(&["filters", "--weights", &weights, "--scale", "1000000"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("1000000"), "{}", stderr(&out));
}

/// A file name holding an ANSI escape and a newline: text output shows them escaped (one
/// record, no raw escape reaches the terminal); JSON escapes them as JSON does.
#[cfg(unix)]
#[test]
fn control_characters_in_file_names_are_escaped_in_text_output() {
    let dir = scratch("control-names");
    let name = "red\u{1b}[31m\nsplit.png";
    std::fs::copy(repo("fixtures/preprocess/landscape.png"), dir.join(name)).unwrap();
    let weights = repo("fixtures/weights/tv.safetensors");
    let path = dir.join(name);
    let path = path.to_str().unwrap();
    let classify = |flags: &[&str]| {
        let common = ["classify", "--weights", &weights, "--backend", "ndarray"];
        infer(&[&common[..], flags, &[path]].concat())
    };
    let out = classify(&["--top-k", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(!text.contains('\u{1b}'), "{text:?}");
    assert!(text.contains("red\\u{1b}[31m\\nsplit.png"), "{text}");
    assert_eq!(
        text.lines().count(),
        2,
        "one path line and one class: {text}"
    );
    let out = classify(&["--format", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1);
    assert!(lines[0]["path"].as_str().unwrap().ends_with(name));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Weights holding a NaN load with a warning naming the tensor and the count, and are
/// refused under `--strict-weights` (one line, non-zero exit).
#[test]
fn non_finite_weights_warn_or_fail_under_strict_weights() {
    let dir = scratch("nan-weights");
    let mut bytes = std::fs::read(repo("fixtures/weights/tv.safetensors")).unwrap();
    let header = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    // The first value of the data section (whichever tensor starts it) becomes NaN.
    bytes[8 + header..8 + header + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    let weights = dir.join("nan.safetensors");
    std::fs::write(&weights, bytes).unwrap();
    let weights = weights.display().to_string();
    let image = repo("fixtures/preprocess/landscape.png");
    let args = [
        "classify",
        "--backend",
        "ndarray",
        "--weights",
        &weights,
        &image,
    ];
    let out = infer(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.starts_with("warning: ") && err.contains("NaN or infinite values in 1 tensor: `"),
        "{err}"
    );
    let out = infer(&[&args[..], &["--strict-weights"]].concat());
    assert!(!out.status.success());
    let err = stderr(&out);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("nan.safetensors: NaN or infinite values in 1 tensor: `"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Every number flag refuses NaN and infinities in one line naming the flag; so do the
/// sizes of a configuration (`--num-classes` is bounded by the network's own checks).
#[test]
fn bad_numbers_are_one_line_errors_naming_the_flag() {
    let weights = repo("fixtures/weights/does-not-matter.bpk");
    let cases: [(&[&str], &str); 6] = [
        (
            &["bench", "--min-seconds", "NaN"],
            "'--min-seconds <MIN_SECONDS>': `NaN` is not a finite number",
        ),
        (
            &["bench", "--min-seconds", "inf"],
            "`inf` is not a finite number",
        ),
        (
            &[
                "classify",
                "--weights",
                &weights,
                "--mean",
                "0.5,NaN,0.5",
                "x.png",
            ],
            "'--mean <MEAN>'",
        ),
        (
            &[
                "classify",
                "--weights",
                &weights,
                "--std",
                "1,1,-inf",
                "x.png",
            ],
            "`-inf` is not a finite number",
        ),
        (
            &["info", "--num-classes", "2000000"],
            "num_classes must be between 1 and 1048576, got 2000000",
        ),
        (
            &["info", "--num-classes", "0"],
            "num_classes must be between 1 and 1048576, got 0",
        ),
    ];
    for (args, needle) in cases {
        let out = infer(args);
        let err = stderr(&out);
        assert!(!out.status.success(), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.starts_with("error: ") && err.contains(needle),
            "{args:?}: {err}"
        );
    }
}

/// `alexnet-infer` with the cache folder and mirror variables set (and nothing inherited).
fn infer_with_cache(args: &[&str], cache: &Path, mirror: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_alexnet-infer"))
        .args(args)
        .env("ALEXNET_BURN_CACHE", cache)
        .env("ALEXNET_BURN_MIRROR", mirror)
        .output()
        .expect("alexnet-infer runs")
}

/// `--pretrained` through a mirror that serves a file of the right name but the wrong
/// content, through an unreachable mirror, and over a corrupt cache entry: each is one error
/// line (after a warning for the corrupt entry), exit 1, and an empty cache folder.
#[test]
fn pretrained_weights_are_verified_and_failures_leave_the_cache_clean() {
    let dir = scratch("pretrained");
    let image = dir.join("photo.png");
    write_png(&image, 40, 30);
    let image = image.display().to_string();
    let cache = dir.join("cache");
    let wrong = std::fs::read(repo("fixtures/weights/tv.pth")).unwrap();
    let cases = [
        (
            "torchvision",
            "alexnet-owt-7be5be79.pth",
            "SHA-256 checksum mismatch: expected 7be5be79",
        ),
        (
            "caffe",
            "bvlc_alexnet.caffemodel",
            "SHA-1 checksum mismatch: expected 9116a64c0fbe4459d18f4bb6b56d647b63920377",
        ),
    ];
    for (name, file, expected) in cases {
        let server = Server::start(&format!("/{file}"), Reply::Body(wrong.clone()));
        let args = [
            "classify",
            "--pretrained",
            name,
            "--backend",
            "ndarray",
            &image,
        ];
        let out = infer_with_cache(&args, &cache, server.base());
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{name}: {err}");
        // The announcement, then the error.
        let lines: Vec<&str> = err.trim_end().lines().collect();
        assert_eq!(lines.len(), 2, "{name}: {err}");
        assert!(
            lines[0].starts_with("downloading http://127.0.0.1:"),
            "{err}"
        );
        assert!(err.contains(expected), "{name}: {err}");
        assert!(
            err.contains(&server.url(&format!("/{file}"))),
            "{name}: {err}"
        );
        assert_eq!(server.requests(), 1);
        assert!(listing(&cache).is_empty(), "{name}: {:?}", listing(&cache));
    }

    // Offline, with a corrupt file left in the cache: removed with a warning, then the error
    // names the URL and where to put the file by hand.
    let file = "alexnet-owt-7be5be79.pth";
    std::fs::write(cache.join(file), b"not the weights").unwrap();
    let offline = closed_url("");
    let args = ["classify", "--pretrained", "torchvision", &image];
    let out = infer_with_cache(&args, &cache, &offline);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let lines: Vec<&str> = err.trim_end().lines().collect();
    assert_eq!(lines.len(), 3, "{err}");
    assert!(
        lines[0].starts_with("warning:") && lines[0].contains("removing it"),
        "{err}"
    );
    assert!(lines[1].starts_with("downloading"), "{err}");
    let lines = &lines[1..];
    let by_hand = format!(
        "place the file (SHA-256 7be5be79) at {}",
        cache.join(file).display()
    );
    assert!(lines[1].contains(&format!("{offline}/{file}")), "{err}");
    assert!(lines[1].contains(&by_hand), "{err}");
    assert!(listing(&cache).is_empty(), "{:?}", listing(&cache));
}

#[test]
fn pretrained_names_and_conflicting_flags_are_one_line_errors() {
    let cases: [&[&str]; 3] = [
        &["classify", "--pretrained", "vgg", "x.png"],
        &[
            "classify",
            "--pretrained",
            "caffe",
            "--weights",
            "w.pth",
            "x.png",
        ],
        &[
            "classify",
            "--pretrained",
            "caffe",
            "--variant",
            "paper",
            "x.png",
        ],
    ];
    let expected = [
        "unknown pretrained weights `vgg` (expected torchvision or caffe)",
        "--weights",
        "--variant",
    ];
    for (args, expected) in cases.iter().zip(expected) {
        let out = infer(args);
        let err = stderr(&out);
        assert!(!out.status.success(), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
    }
}
