//! `--download` of CIFAR without the internet: the local HTTP server
//! (`alexnet-common/tests/support/http_server.rs`) serves generated CIFAR archives (and broken
//! ones) to the download, checksum and unpacking code of `alexnet_common::datasets`.

#[path = "../../alexnet-common/tests/support/archives.rs"]
mod archives;
mod common;
#[path = "../../alexnet-common/tests/support/folders.rs"]
mod folders;
#[path = "../../alexnet-common/tests/support/http_server.rs"]
mod http_server;

use std::path::PathBuf;

use alexnet_common::cifar::{CifarKind, IMAGE_BYTES};
use alexnet_common::datasets::{self, DatasetArchive};
use alexnet_model::download::{download, Checksum};
use alexnet_train::data::source::cifar_folder;
use archives::{md5_hex, raw_tar_gz, tar_gz};
use common::{fails_with_all, temp_dir};
use folders::listing;
use http_server::{closed_url, Reply, Server};

/// `n` CIFAR records with `label_bytes` label bytes (labels below `classes`).
fn records(n: usize, label_bytes: usize, classes: usize, seed: u8) -> Vec<u8> {
    let mut bytes = Vec::new();
    for i in 0..n {
        let label = (i % classes) as u8;
        bytes.extend(std::iter::repeat_n(label, label_bytes));
        bytes.extend((0..IMAGE_BYTES).map(|p| (p as u8).wrapping_mul(7) ^ seed ^ i as u8));
    }
    bytes
}

/// A miniature `cifar-10-binary.tar.gz`: 5 training batches of 4 records, a test batch of 3.
fn cifar10_archive() -> Vec<u8> {
    let mut files: Vec<(String, Vec<u8>)> = (1..=5)
        .map(|i| (format!("data_batch_{i}.bin"), records(4, 1, 10, i)))
        .collect();
    files.push(("test_batch.bin".into(), records(3, 1, 10, 9)));
    let names: String = (0..10).map(|i| format!("name{i}\n")).collect();
    files.push(("batches.meta.txt".into(), names.into_bytes()));
    files.push(("readme.html".into(), b"<p>tiny</p>".to_vec()));
    tar_gz("cifar-10-batches-bin", &files)
}

/// A miniature `cifar-100-binary.tar.gz`.
fn cifar100_archive() -> Vec<u8> {
    let fine: String = (0..100).map(|i| format!("fine{i}\n")).collect();
    let coarse: String = (0..20).map(|i| format!("coarse{i}\n")).collect();
    let files = vec![
        ("train.bin".to_string(), records(6, 2, 20, 1)),
        ("test.bin".to_string(), records(2, 2, 20, 2)),
        ("fine_label_names.txt".to_string(), fine.into_bytes()),
        ("coarse_label_names.txt".to_string(), coarse.into_bytes()),
    ];
    tar_gz("cifar-100-binary", &files)
}

/// The official archive of `kind`, but served at `url` with the MD5 `md5`.
fn served(kind: CifarKind, url: &str, md5: &str) -> DatasetArchive {
    let mut archive = datasets::cifar(kind);
    archive.file.url = url.to_string();
    archive.file.checksum = Checksum::Md5(md5.to_string());
    archive
}

/// The published MD5 of `kind`'s archive.
fn published_md5(kind: CifarKind) -> String {
    datasets::cifar(kind).file.checksum.expected().to_string()
}

#[test]
fn md5_matches_independent_published_digests() {
    // RFC 1321 test suite.
    assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
    assert_eq!(md5_hex(b"abc"), "900150983cd24fb0d6963f7d28e17f72");
    assert_eq!(
        md5_hex(b"abcdefghijklmnopqrstuvwxyz"),
        "c3fcd3d76192e4007dfb496cca67e13b"
    );
    // The streamed digest (64 KiB chunks) equals the one-shot digest.
    let tmp = temp_dir("dl-md5");
    let body: Vec<u8> = (0..200_000u32).map(|i| (i * 31 % 251) as u8).collect();
    let server = Server::start("/big.bin", Reply::Body(body.clone()));
    let dest = tmp.join("big.bin");
    let md5 = Checksum::Md5(md5_hex(&body));
    download(&server.url("/big.bin"), &dest, &md5, None, false).unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), body);
    assert_eq!(listing(&tmp), ["big.bin"]);
}

#[test]
fn official_archives_and_checksums() {
    let cifar10 = datasets::cifar(CifarKind::Cifar10).file;
    assert_eq!(
        cifar10.url,
        "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
    );
    assert_eq!(
        published_md5(CifarKind::Cifar10),
        "c32a1d4ab5d03f1284b67883e8d87530"
    );
    // Both CIFAR-100 label sets use one archive.
    for kind in [CifarKind::Cifar100Fine, CifarKind::Cifar100Coarse] {
        assert_eq!(
            datasets::cifar(kind).file.url,
            "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz"
        );
        assert_eq!(published_md5(kind), "03b5dce01913d631647c71ecec9e9cb8");
    }
}

#[test]
fn downloads_verifies_and_unpacks_cifar10() {
    let tmp = temp_dir("dl-ok10");
    let dir = tmp.join("cifar10");
    let bytes = cifar10_archive();
    let md5 = md5_hex(&bytes);
    let server = Server::start("/cifar-10-binary.tar.gz", Reply::Body(bytes));
    let url = server.url("/cifar-10-binary.tar.gz");
    let source = served(CifarKind::Cifar10, &url, &md5);

    assert!(source.ensure(&dir, None, false).unwrap());
    assert_eq!(server.requests(), 1);
    // The .bin files sit directly in the folder; the archive and the partial file are gone.
    assert_eq!(
        listing(&dir),
        [
            "batches.meta.txt",
            "data_batch_1.bin",
            "data_batch_2.bin",
            "data_batch_3.bin",
            "data_batch_4.bin",
            "data_batch_5.bin",
            "readme.html",
            "test_batch.bin",
        ]
    );
    let splits = cifar_folder(&dir, CifarKind::Cifar10).unwrap();
    assert_eq!((splits.train.len(), splits.val.len()), (20, 3));
    assert_eq!(splits.classes[3], "name3");

    // Present now: a second call fetches nothing.
    assert!(!source.ensure(&dir, None, false).unwrap());
    assert_eq!(server.requests(), 1);
}

#[test]
fn downloads_cifar100_for_both_label_sets() {
    let tmp = temp_dir("dl-ok100");
    let bytes = cifar100_archive();
    let md5 = md5_hex(&bytes);
    let server = Server::start("/c100.tar.gz", Reply::Body(bytes));
    let url = server.url("/c100.tar.gz");
    let dir = tmp.join("c100");
    let source = served(CifarKind::Cifar100Coarse, &url, &md5);
    assert!(source.ensure(&dir, None, false).unwrap());
    let coarse = cifar_folder(&dir, CifarKind::Cifar100Coarse).unwrap();
    assert_eq!((coarse.train.len(), coarse.val.len()), (6, 2));
    assert_eq!(coarse.classes.len(), 20);
    // The fine labels use the same files.
    let fine = served(CifarKind::Cifar100Fine, &url, &md5);
    assert!(!fine.ensure(&dir, None, false).unwrap());
    assert_eq!(server.requests(), 1);
    assert!(!dir.join("cifar-100-binary.tar.gz").exists());
}

#[test]
fn wrong_checksum_fails_and_leaves_nothing() {
    let tmp = temp_dir("dl-md5-bad");
    let dir = tmp.join("cifar10");
    let bytes = cifar10_archive();
    let actual = md5_hex(&bytes);
    let server = Server::start("/mirror.tar.gz", Reply::Body(bytes));
    let url = server.url("/mirror.tar.gz");
    // A mirror is still held to the published checksum.
    let err = datasets::cifar(CifarKind::Cifar10)
        .ensure(&dir, Some(&url), false)
        .unwrap_err();
    let message = format!("{err:#}");
    assert!(!message.contains('\n'), "{message}");
    assert!(message.contains(&url), "{message}");
    assert!(
        message.contains(&published_md5(CifarKind::Cifar10)),
        "{message}"
    );
    assert!(message.contains(&actual), "{message}");
    assert_eq!(listing(&dir), Vec::<String>::new());
}

#[test]
fn truncated_transfer_fails() {
    let tmp = temp_dir("dl-trunc");
    let body = vec![7u8; 10_000];
    let server = Server::start(
        "/short.tar.gz",
        Reply::Truncated {
            body: body.clone(),
            claimed: 50_000,
        },
    );
    let url = server.url("/short.tar.gz");
    let dest = tmp.join("short.tar.gz");
    let md5 = Checksum::Md5(md5_hex(&body));
    let err = download(&url, &dest, &md5, None, false).unwrap_err();
    let message = format!("{err:#}");
    assert!(message.contains(&url), "{message}");
    assert!(
        message.contains("truncated") && message.contains("received 10000 of 50000 bytes"),
        "{message}"
    );
    assert_eq!(listing(&tmp), Vec::<String>::new());
}

#[test]
fn http_errors_name_the_url() {
    let tmp = temp_dir("dl-404");
    let server = Server::start("/there.tar.gz", Reply::Body(vec![1, 2, 3]));
    let url = server.url("/missing.tar.gz");
    let md5 = datasets::cifar(CifarKind::Cifar10).file.checksum;
    let err = download(&url, &tmp.join("x.tar.gz"), &md5, None, false).unwrap_err();
    let message = format!("{err:#}");
    assert!(
        message.contains(&url) && message.contains("404"),
        "{message}"
    );
    assert!(!message.contains('\n'), "{message}");

    // Connection refused: a port that was just freed.
    let url = closed_url("/x.tar.gz");
    let err = download(&url, &tmp.join("x.tar.gz"), &md5, None, false).unwrap_err();
    let message = format!("{err:#}");
    assert!(message.contains(&url), "{message}");
    assert!(!message.contains('\n'), "{message}");
    assert_eq!(listing(&tmp), Vec::<String>::new());
}

#[test]
fn hostile_archives_are_refused() {
    let tmp = temp_dir("dl-evil");
    let dir = tmp.join("data");
    let good = records(1, 1, 10, 0);
    let bytes = raw_tar_gz(&[
        ("cifar-10-batches-bin/", tar::EntryType::Directory, b""),
        (
            "cifar-10-batches-bin/data_batch_1.bin",
            tar::EntryType::Regular,
            &good,
        ),
        ("../evil", tar::EntryType::Regular, b"gotcha"),
    ]);
    let md5 = md5_hex(&bytes);
    let server = Server::start("/evil.tar.gz", Reply::Body(bytes));
    let url = server.url("/evil.tar.gz");
    let source = served(CifarKind::Cifar10, &url, &md5);
    let err = source.ensure(&dir, None, false).unwrap_err();
    let message = format!("{err:#}");
    assert!(message.contains("../evil"), "{message}");
    assert!(!message.contains('\n'), "{message}");
    assert!(!tmp.join("evil").exists() && !tmp.parent().unwrap().join("evil").exists());
    // The file written before the refusal, the archive and the folder the call made are
    // removed again (absolute paths, links and zip archives: alexnet-common's datasets tests).
    assert!(!dir.exists());
    assert_eq!(listing(&tmp), Vec::<String>::new());
}

#[test]
fn present_data_makes_no_request() {
    let tmp = temp_dir("dl-present");
    for (kind, names) in [
        (
            CifarKind::Cifar10,
            &[
                "data_batch_1.bin",
                "data_batch_2.bin",
                "data_batch_3.bin",
                "data_batch_4.bin",
                "data_batch_5.bin",
                "test_batch.bin",
            ][..],
        ),
        (CifarKind::Cifar100Fine, &["train.bin", "test.bin"][..]),
    ] {
        let dir = tmp.join(format!("{kind:?}"));
        std::fs::create_dir_all(&dir).unwrap();
        for name in names {
            std::fs::write(dir.join(name), records(1, 2, 10, 0)).unwrap();
        }
        let server = Server::start("/x.tar.gz", Reply::Body(vec![0; 10]));
        let fetched = datasets::cifar(kind)
            .ensure(&dir, Some(&server.url("/x.tar.gz")), false)
            .unwrap();
        assert!(!fetched);
        assert_eq!(server.requests(), 0, "{kind:?}");
        assert_eq!(listing(&dir).len(), names.len());
    }
}

#[test]
fn cli_download_checks_the_published_checksum() {
    let tmp = temp_dir("dl-cli");
    let server = Server::start("/x.tar.gz", Reply::Body(cifar10_archive()));
    let url = server.url("/x.tar.gz");
    fails_with_all(
        &[
            "--download",
            "--download-url",
            &url,
            "--data-dir",
            "data",
            "--quiet",
        ],
        &tmp,
        &[
            "MD5 checksum mismatch",
            &published_md5(CifarKind::Cifar10),
            &url,
        ],
    );
    assert_eq!(server.requests(), 1);
    assert_eq!(listing(&tmp.join("data")), Vec::<String>::new());
    assert!(!tmp.join("artifacts").exists());
}

#[test]
fn cli_download_refuses_what_it_cannot_fetch() {
    let tmp = temp_dir("dl-cli-bad");
    let data: PathBuf = tmp.join("images");
    std::fs::create_dir_all(&data).unwrap();
    fails_with_all(
        &["--download", "--dataset", "folder", "--data-dir", "images"],
        &tmp,
        &["--download", "folder"],
    );
    fails_with_all(&["--download", "--quiet"], &tmp, &["--data-dir"]);
    fails_with_all(
        &["--download-url", "http://127.0.0.1:9/x.tar.gz"],
        &tmp,
        &["--download"],
    );
    fails_with_all(
        &["--download", "--resume", "artifacts/r"],
        &tmp,
        &["--resume"],
    );
}
