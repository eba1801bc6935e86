//! `alexnet-train --dataset imagenette|tiny-imagenet --download` as a user runs it, with the
//! local HTTP server as the mirror (`$ALEXNET_BURN_MIRROR`; `$ALEXNET_BURN_MIRROR_MD5` for the
//! miniature archives): one tiny epoch that stores ImageNet's class names, and every failed
//! download one error line with nothing left behind.

#[path = "../../alexnet-common/tests/support/archives.rs"]
mod archives;
mod common;
#[path = "../../alexnet-common/tests/support/folders.rs"]
mod folders;
#[path = "../../alexnet-common/tests/support/http_server.rs"]
mod http_server;

use std::path::Path;

use alexnet_common::datasets::subsets::{ImageSize, Subset, IMAGENETTE_WNIDS};
use alexnet_common::datasets::MIRROR_MD5_ENV;
use alexnet_model::download::{CACHE_ENV, MIRROR_ENV};
use archives::{
    imagenette_files, md5_hex, mirror_env, tar_gz, tiny_imagenet_files, zip, TINY_WNIDS,
};
use common::{alexnet_train_with, fails_with_env, temp_dir, train_lock, TINY};
use http_server::{closed_url, Reply, Server};

/// The classes a run stored in its `config.json`.
fn stored_classes(run_dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(run_dir.join("config.json")).unwrap();
    let config: serde_json::Value = serde_json::from_str(&text).unwrap();
    serde_json::from_value(config["resolved"]["classes"].clone()).unwrap()
}

/// The flags of a one-epoch tiny run named `name` on `dataset`, then `extra`.
fn run_args<'a>(dataset: &'a str, name: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["--dataset", dataset, "--run-name", name];
    args.extend(TINY);
    args.push("1");
    args.extend(extra);
    args
}

#[test]
fn imagenette_is_downloaded_once_and_trained_with_imagenet_names() {
    let _lock = train_lock();
    let tmp = temp_dir("subset-nette");
    let bytes = tar_gz("imagenette2-160", &imagenette_files(&IMAGENETTE_WNIDS, 2));
    let server = Server::start("/imagenette2-160.tgz", Reply::Body(bytes.clone()));
    let (md5, cache) = (md5_hex(&bytes), tmp.join("cache"));
    let env = mirror_env(server.base(), &md5, &cache);
    let flags = ["--size", "160", "--data-dir", "nette", "--download"];
    let out = alexnet_train_with(&run_args("imagenette", "a", &flags), &tmp, &env);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let classes = stored_classes(&tmp.join("artifacts/a"));
    assert_eq!(classes.len(), 10);
    assert_eq!(
        (classes[0].as_str(), classes[1].as_str()),
        ("tench", "English springer")
    );
    assert!(tmp.join("artifacts/a/confusion.png").is_file());
    // Unpacked in place, archive deleted.
    assert!(tmp.join("nette/train/n01440764").is_dir());
    assert!(!tmp.join("nette/imagenette2-160.tgz").exists());

    // Already there: trained on without a second request.
    let out = alexnet_train_with(&run_args("imagenette", "b", &flags), &tmp, &env);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(server.requests(), 1);
}

/// Without `--data-dir`, the data folder is `datasets/tiny-imagenet-200` in the cache; the
/// validation labels come from `val_annotations.txt`.
#[test]
fn tiny_imagenet_goes_to_the_cache_folder() {
    let _lock = train_lock();
    let tmp = temp_dir("subset-tiny");
    let bytes = zip("tiny-imagenet-200", &tiny_imagenet_files(&TINY_WNIDS, 2));
    let server = Server::start("/tiny-imagenet-200.zip", Reply::Body(bytes.clone()));
    let (md5, cache) = (md5_hex(&bytes), tmp.join("cache"));
    let env = mirror_env(server.base(), &md5, &cache);
    let out = alexnet_train_with(&run_args("tiny-imagenet", "t", &["--download"]), &tmp, &env);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(cache.join("datasets/tiny-imagenet-200/wnids.txt").is_file());
    assert_eq!(
        stored_classes(&tmp.join("artifacts/t")),
        ["goldfish", "Egyptian cat", "lemon"]
    );
    let config = std::fs::read_to_string(tmp.join("artifacts/t/config.json")).unwrap();
    assert!(config.contains("\"val_images\": 6"), "{config}");
}

/// A wrong digest (the mirror serves another file than the published one), a cut-off
/// transfer, no server, and a corrupt archive: one line, non-zero exit, no data folder, no
/// run folder.
#[test]
fn failed_downloads_are_one_line_and_leave_nothing() {
    let tmp = temp_dir("subset-fail");
    let good = tar_gz("imagenette2-160", &imagenette_files(&IMAGENETTE_WNIDS, 1));
    let garbage = b"<html>not found</html>".to_vec();
    let published = Subset::Imagenette.archive(ImageSize::Px160).file;
    let served = Server::start("/imagenette2-160.tgz", Reply::Body(good.clone()));
    let cut = Server::start(
        "/imagenette2-160.tgz",
        Reply::Truncated {
            body: good[..100].to_vec(),
            claimed: good.len(),
        },
    );
    let corrupt = Server::start("/imagenette2-160.tgz", Reply::Body(garbage.clone()));
    let offline = closed_url("");
    let (good_md5, garbage_md5) = (md5_hex(&good), md5_hex(&garbage));
    let cases: [(&str, &str, &[&str]); 4] = [
        (
            served.base(),
            "",
            &["MD5 checksum mismatch", published.checksum.expected()],
        ),
        (
            cut.base(),
            &good_md5,
            &["truncated transfer", "place the file"],
        ),
        (
            &offline,
            &good_md5,
            &["Connection refused", "place the file"],
        ),
        (
            corrupt.base(),
            &garbage_md5,
            &["neither a gzip-compressed tar"],
        ),
    ];
    for (base, md5, needles) in cases {
        let env = [(MIRROR_ENV, base), (MIRROR_MD5_ENV, md5)];
        let args = run_args(
            "imagenette",
            "r",
            &["--size", "160", "--data-dir", "d", "--download"],
        );
        let url = format!("{base}/imagenette2-160.tgz");
        fails_with_env(&args, &tmp, &env, &[needles, &[url.as_str()]].concat());
        assert!(!tmp.join("d").exists(), "{needles:?}");
        assert!(!tmp.join("artifacts").exists(), "{needles:?}");
    }
    assert_eq!(served.requests() + cut.requests() + corrupt.requests(), 3);
}

#[test]
fn missing_data_and_misplaced_flags_are_one_line() {
    let tmp = temp_dir("subset-flags");
    let env = [(CACHE_ENV, tmp.to_str().unwrap())];
    fails_with_env(
        &run_args("imagenette", "r", &["--data-dir", "none"]),
        &tmp,
        &env,
        &[
            "no complete imagenette data folder",
            "add --download to fetch imagenette2-320.tgz",
        ],
    );
    fails_with_env(
        &run_args("tiny-imagenet", "r", &["--size", "160"]),
        &tmp,
        &env,
        &["--size applies to imagenette and imagewoof, not tiny-imagenet"],
    );
    fails_with_env(
        &run_args("cifar10", "r", &["--size", "full"]),
        &tmp,
        &env,
        &["--size applies to imagenette and imagewoof, not cifar10"],
    );
    assert!(!tmp.join("artifacts").exists());
}
