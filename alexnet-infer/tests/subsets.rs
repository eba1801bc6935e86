//! `alexnet-infer eval --dataset imagenette|tiny-imagenet` on miniature copies in the real
//! layouts: fetched from the local HTTP server as a mirror (`--download`), or unpacked by the
//! test; scored against ImageNet's class indices with a 1000-class model and against the
//! subset's own classes with a model trained on it.

#[path = "../../alexnet-common/tests/support/archives.rs"]
mod archives;
#[path = "../../alexnet-common/tests/support/folders.rs"]
mod folders;
#[path = "../../alexnet-common/tests/support/http_server.rs"]
mod http_server;

use std::path::Path;
use std::process::{Command, Output};

use alexnet_common::datasets::archive::{unpack, Limits};
use alexnet_common::datasets::subsets::IMAGENETTE_WNIDS;
use alexnet_model::checkpoint::{save_model, WeightFormat};
use alexnet_model::AlexNetConfig;
use archives::{
    imagenette_files, md5_hex, mirror_env, tar_gz, tiny_imagenet_files, zip, TINY_WNIDS,
};
use folders::temp_dir;
use http_server::{Reply, Server};

/// A torchvision-layout network for 10 classes (tiny widths), as trained on Imagenette.
const TEN_CLASSES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../fixtures/weights/tv.safetensors"
);

/// Runs `alexnet-infer` with these environment variables.
fn infer(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_alexnet-infer"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("alexnet-infer runs")
}

/// `eval --format json` with `weights` and then `args`; its report.
fn eval_report(weights: &str, args: &[&str], env: &[(&str, &str)]) -> serde_json::Value {
    let mut all = vec!["eval", "--weights", weights, "--format", "json"];
    all.extend(args);
    let out = infer(&all, env);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{all:?}: {stderr}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The `(index, label, n)` of each class in a report.
fn per_class(report: &serde_json::Value) -> Vec<(u64, String, u64)> {
    report["per_class"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let label = c["label"].as_str().unwrap().to_string();
            (
                c["index"].as_u64().unwrap(),
                label,
                c["n"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// A tiny torchvision-layout network for 1000 classes, saved as safetensors in `dir`.
fn imagenet_weights(dir: &Path) -> String {
    let model = AlexNetConfig::torchvision(1000)
        .with_widths([4, 8, 8, 8, 4])
        .with_hidden(16)
        .init::<burn::backend::NdArray>(&Default::default());
    let path = dir.join("imagenet-tiny.safetensors");
    save_model(&model, &path, WeightFormat::Safetensors).unwrap();
    path.display().to_string()
}

/// `archive` unpacked into `dir` as a download leaves it; `dir` as text.
fn unpacked(dir: &Path, archive: Vec<u8>) -> String {
    let file = dir.with_extension("archive");
    std::fs::write(&file, archive).unwrap();
    unpack(&file, dir, true, Limits::DEFAULT).unwrap();
    dir.display().to_string()
}

/// `--download` from the mirror, then a model trained on the subset (10 classes) is scored
/// against its own classes, named by ImageNet's labels.
#[test]
fn eval_downloads_imagenette_and_scores_a_subset_model() {
    let tmp = temp_dir("subset-nette");
    let bytes = tar_gz("imagenette2-160", &imagenette_files(&IMAGENETTE_WNIDS, 1));
    let server = Server::start("/imagenette2-160.tgz", Reply::Body(bytes.clone()));
    let (md5, cache) = (md5_hex(&bytes), tmp.join("cache"));
    let env = mirror_env(server.base(), &md5, &cache);
    let args = ["--dataset", "imagenette", "--size", "160", "--download"];
    let report = eval_report(TEN_CLASSES, &args, &env);
    assert_eq!(report["n"], 10);
    let classes = per_class(&report);
    assert_eq!(classes[0], (0, "tench".to_string(), 1));
    assert_eq!(classes[9], (9, "parachute".to_string(), 1));
    assert!(cache
        .join("datasets/imagenette2-160/val/n03888257")
        .is_dir());

    // Present now: no second request; `--data-dir` names the same folder.
    let data = cache.join("datasets/imagenette2-160");
    let args = [
        "--dataset",
        "imagenette",
        "--size",
        "160",
        "--download",
        "--data-dir",
    ];
    let report = eval_report(
        TEN_CLASSES,
        &[&args[..], &[data.to_str().unwrap()]].concat(),
        &env,
    );
    assert_eq!(report["n"], 10);
    assert_eq!(server.requests(), 1);
}

/// A 1000-class model is scored against each image's ImageNet index.
#[test]
fn eval_scores_imagenet_models_against_imagenet_indices() {
    let tmp = temp_dir("subset-imagenet");
    let weights = imagenet_weights(&tmp);
    let nette = unpacked(
        &tmp.join("nette"),
        tar_gz("imagenette2-320", &imagenette_files(&IMAGENETTE_WNIDS, 2)),
    );
    let report = eval_report(
        &weights,
        &["--dataset", "imagenette", "--data-dir", &nette],
        &[],
    );
    assert_eq!(report["n"], 20);
    let indices: Vec<u64> = per_class(&report).iter().map(|c| c.0).collect();
    assert_eq!(indices, [0, 217, 482, 491, 497, 566, 569, 571, 574, 701]);

    let tiny = unpacked(
        &tmp.join("tiny"),
        zip("tiny-imagenet-200", &tiny_imagenet_files(&TINY_WNIDS, 2)),
    );
    let report = eval_report(
        &weights,
        &["--dataset", "tiny-imagenet", "--data", &tiny],
        &[],
    );
    assert_eq!(report["n"], 6);
    assert_eq!(
        per_class(&report),
        [
            (1, "goldfish".to_string(), 2),
            (285, "Egyptian cat".to_string(), 2),
            (951, "lemon".to_string(), 2)
        ]
    );
}

/// A model of another class count, and a folder without the data: one line each.
#[test]
fn eval_refusals_are_one_line() {
    let tmp = temp_dir("subset-refused");
    let tiny = unpacked(
        &tmp.join("tiny"),
        zip("tiny-imagenet-200", &tiny_imagenet_files(&TINY_WNIDS, 1)),
    );
    let empty = tmp.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let cases: [(&[&str], &str); 3] = [
        (
            &["--dataset", "tiny-imagenet", "--data-dir", &tiny],
            "the model has 10 classes; tiny-imagenet is scored with 1000-class ImageNet models or 3-class models",
        ),
        (
            &["--dataset", "imagewoof", "--data-dir", empty.to_str().unwrap()],
            "add --download to fetch imagewoof2-320.tgz",
        ),
        (
            &["--dataset", "tiny-imagenet", "--size", "160", "--data-dir", &tiny],
            "--size applies to imagenette and imagewoof, not tiny-imagenet",
        ),
    ];
    for (args, needle) in cases {
        let mut all = vec!["eval", "--weights", TEN_CLASSES];
        all.extend(args);
        let out = infer(&all, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{all:?}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(needle), "{stderr}");
    }
}
