//! Datasets by name without the internet: miniature Imagenette (`.tgz`) and Tiny ImageNet
//! (`.zip`) archives in their real layouts, served by a local HTTP server, fetched, verified
//! and unpacked; hostile and broken archives refused with nothing left behind.

#[path = "support/archives.rs"]
mod archives;
#[path = "support/folders.rs"]
mod folders;
#[path = "support/http_server.rs"]
mod http_server;

use std::path::Path;

use alexnet_common::datasets::archive::{unpack, Limits};
use alexnet_common::datasets::subsets::{ImageSize, Subset, SubsetFolder, IMAGENETTE_WNIDS};
use alexnet_common::datasets::{DatasetArchive, UNPACKING_MARKER};
use alexnet_model::download::Checksum;
use archives::{
    imagenette_files, md5_hex, raw_tar_gz, raw_zip, tar_gz, tiny_imagenet_files, zip, TINY_WNIDS,
};
use folders::{temp_dir, tree};
use http_server::{closed_url, Reply, Server};

/// `subset`'s archive as served at `url` with the digest of `bytes`.
fn served(subset: Subset, url: &str, bytes: &[u8]) -> DatasetArchive {
    let mut archive = subset.archive(ImageSize::Px160);
    archive.file.url = url.to_string();
    archive.file.checksum = Checksum::Md5(md5_hex(bytes));
    archive
}

/// An error as the binaries print it: one line, causes joined.
fn message(err: anyhow::Error) -> String {
    let message = format!("{err:#}");
    assert!(!message.contains('\n'), "{message}");
    message
}

#[test]
fn imagenette_is_fetched_unpacked_and_then_left_alone() {
    let tmp = temp_dir("nette");
    let dir = tmp.join("imagenette2-160");
    let bytes = tar_gz("imagenette2-160", &imagenette_files(&IMAGENETTE_WNIDS, 2));
    let server = Server::start("/imagenette2-160.tgz", Reply::Body(bytes.clone()));
    let archive = served(
        Subset::Imagenette,
        &server.url("/imagenette2-160.tgz"),
        &bytes,
    );
    assert!(!archive.is_present(&dir));
    assert!(archive.ensure(&dir, None, false).unwrap());
    assert!(archive.is_present(&dir));
    // Unpacked without its top folder; the archive and the marker are gone.
    let top: Vec<String> = tree(&dir)
        .into_iter()
        .filter(|p| !p.contains('/'))
        .collect();
    assert_eq!(top, ["noisy_imagenette.csv", "train", "val"]);

    let folder = SubsetFolder::open(Subset::Imagenette, ImageSize::Px160, &dir).unwrap();
    assert_eq!(folder.class_names()[0], "tench");
    assert_eq!(folder.class_names()[9], "parachute");
    let (train, val) = (folder.images(true).unwrap(), folder.images(false).unwrap());
    assert_eq!((train.len(), val.len()), (20, 20));
    assert_eq!(val[2].1, 1);
    assert!(val[2].0.ends_with("val/n02102040/n02102040_0.JPEG"));

    // Present now: nothing is fetched again.
    assert!(!archive.ensure(&dir, None, false).unwrap());
    assert_eq!(server.requests(), 1);
}

#[test]
fn tiny_imagenet_zip_labels_validation_images_by_annotation() {
    let tmp = temp_dir("tiny");
    let dir = tmp.join("tiny");
    let bytes = zip("tiny-imagenet-200", &tiny_imagenet_files(&TINY_WNIDS, 2));
    let server = Server::start("/tiny.zip", Reply::Body(bytes.clone()));
    let archive = served(Subset::TinyImagenet, &server.url("/tiny.zip"), &bytes);
    assert!(archive.ensure(&dir, None, false).unwrap());
    assert!(!dir.join("tiny-imagenet-200.zip").exists());

    let folder = SubsetFolder::open(Subset::TinyImagenet, ImageSize::Px320, &dir).unwrap();
    assert_eq!(folder.wnids, TINY_WNIDS);
    assert_eq!(folder.class_names(), ["goldfish", "Egyptian cat", "lemon"]);
    let train = folder.images(true).unwrap();
    assert_eq!(train.len(), 6);
    assert!(train[5]
        .0
        .ends_with("train/n07749582/images/n07749582_1.JPEG"));
    let val = folder.images(false).unwrap();
    let labels: Vec<usize> = val.iter().map(|(_, l)| *l).collect();
    // val_0..val_5, sorted by path: 0, 0, 1, 1, 2, 2.
    assert_eq!(labels, [0, 0, 1, 1, 2, 2]);

    // An annotation naming a class that is not in wnids.txt, or a missing image.
    let annotations = dir.join("val/val_annotations.txt");
    std::fs::write(&annotations, "val_0.JPEG\tn99999999\t0\t0\t1\t1\n").unwrap();
    let err = message(folder.images(false).unwrap_err());
    assert!(err.contains("line 1") && err.contains("n99999999"), "{err}");
    std::fs::write(&annotations, "val_77.JPEG\tn01443537\t0\t0\t1\t1\n").unwrap();
    let err = message(folder.images(false).unwrap_err());
    assert!(err.contains("val_77.JPEG"), "{err}");
    std::fs::write(&annotations, "../../x.JPEG\tn01443537\t0\t0\t1\t1\n").unwrap();
    let err = message(folder.images(false).unwrap_err());
    assert!(err.contains("not a file name"), "{err}");
}

/// A wrong digest, a cut-off transfer, no server, and an archive that is not one: one line
/// naming the URL, and no archive, partial file or unpacked file left (the folder the call
/// made is removed; one that existed stays, empty).
#[test]
fn failed_downloads_leave_nothing_behind() {
    let tmp = temp_dir("fail");
    let good = tar_gz("imagenette2-160", &imagenette_files(&IMAGENETTE_WNIDS, 1));
    let cut = Server::start(
        "/a.tgz",
        Reply::Truncated {
            body: good[..good.len() / 2].to_vec(),
            claimed: good.len(),
        },
    );
    let garbage = b"this is not an archive".to_vec();
    let served_garbage = Server::start("/a.tgz", Reply::Body(garbage.clone()));
    let served_good = Server::start("/a.tgz", Reply::Body(good.clone()));
    let offline = closed_url("/a.tgz");
    let cases = [
        (
            served_good.url("/a.tgz"),
            md5_hex(b"other"),
            "MD5 checksum mismatch",
        ),
        (cut.url("/a.tgz"), md5_hex(&good), "truncated transfer"),
        (offline.clone(), md5_hex(&good), "place the file"),
        (
            served_garbage.url("/a.tgz"),
            md5_hex(&garbage),
            "neither a gzip-compressed tar archive nor a zip archive",
        ),
    ];
    for (i, (url, md5, needle)) in cases.iter().enumerate() {
        for existing in [false, true] {
            let dir = tmp.join(format!("d{i}{existing}"));
            if existing {
                std::fs::create_dir_all(&dir).unwrap();
            }
            let mut archive = Subset::Imagenette.archive(ImageSize::Px160);
            archive.file.url = url.clone();
            archive.file.checksum = Checksum::Md5(md5.clone());
            let err = message(archive.ensure(&dir, None, false).unwrap_err());
            assert!(err.contains(needle), "{err}");
            assert!(err.contains(url.as_str()), "{err}");
            assert_eq!(dir.exists(), existing, "{err}");
            assert_eq!(tree(&dir), Vec::<String>::new(), "{err}");
        }
    }
}

/// An archive that does not hold the dataset's layout is refused after unpacking, and what it
/// unpacked is removed.
#[test]
fn an_archive_without_the_layout_is_refused() {
    let tmp = temp_dir("layout");
    let dir = tmp.join("d");
    let bytes = tar_gz("top", &[("readme.txt".to_string(), b"hi".to_vec())]);
    let server = Server::start("/x.tgz", Reply::Body(bytes.clone()));
    let archive = served(Subset::Imagenette, &server.url("/x.tgz"), &bytes);
    let err = message(archive.ensure(&dir, None, false).unwrap_err());
    assert!(err.contains("did not contain train/n01440764"), "{err}");
    assert!(!dir.exists(), "{:?}", tree(&dir));
}

/// A folder whose unpacking was interrupted (the marker is still there) is not present.
#[test]
fn interrupted_unpacking_is_not_present() {
    let tmp = temp_dir("marker");
    let archive = Subset::Imagenette.archive(ImageSize::Px160);
    for path in &archive.required {
        std::fs::create_dir_all(tmp.join(path)).unwrap();
    }
    assert!(archive.is_present(&tmp));
    std::fs::write(tmp.join(UNPACKING_MARKER), b"").unwrap();
    assert!(!archive.is_present(&tmp));
    let err = message(SubsetFolder::open(Subset::Imagenette, ImageSize::Px160, &tmp).unwrap_err());
    assert!(
        err.contains("add --download to fetch imagenette2-160.tgz"),
        "{err}"
    );
}

#[test]
fn opening_a_folder_that_holds_none_says_what_to_do() {
    let tmp = temp_dir("open");
    let err = message(SubsetFolder::open(Subset::Imagewoof, ImageSize::Full, &tmp).unwrap_err());
    assert!(
        err.contains("no complete imagewoof data folder")
            && err.contains("https://s3.amazonaws.com/fast-ai-imageclas/imagewoof2.tgz"),
        "{err}"
    );
    // The parent of the unpacked folder: the error points at the folder inside.
    let archive = Subset::Imagewoof.archive(ImageSize::Full);
    for path in &archive.required {
        std::fs::create_dir_all(tmp.join("imagewoof2").join(path)).unwrap();
    }
    let err = message(SubsetFolder::open(Subset::Imagewoof, ImageSize::Full, &tmp).unwrap_err());
    assert!(
        err.contains("the data is in") && err.contains("imagewoof2"),
        "{err}"
    );
    // A class folder that is not one of the subset's classes.
    let dir = tmp.join("imagewoof2");
    std::fs::create_dir_all(dir.join("val/n01440764")).unwrap();
    let folder = SubsetFolder::open(Subset::Imagewoof, ImageSize::Full, &dir).unwrap();
    let err = message(folder.images(false).unwrap_err());
    assert!(err.contains("`n01440764`"), "{err}");
}

/// Entries outside the folder, links and devices are refused naming the entry, in tar and zip
/// archives alike; what was written before the refusal is removed.
#[test]
fn hostile_entries_are_refused() {
    let tmp = temp_dir("hostile");
    let dir = tmp.join("out");
    let tar_cases: [(&str, tar::EntryType); 5] = [
        ("../evil", tar::EntryType::Regular),
        ("/tmp/alexnet-absolute-evil", tar::EntryType::Regular),
        ("top/link", tar::EntryType::Symlink),
        ("top/hard", tar::EntryType::Link),
        ("top/dev", tar::EntryType::Char),
    ];
    for (name, kind) in tar_cases {
        let file = tmp.join("evil.tgz");
        let bytes = raw_tar_gz(&[
            ("top/", tar::EntryType::Directory, b""),
            ("top/sub/ok.txt", tar::EntryType::Regular, b"fine"),
            (name, kind, b""),
        ]);
        std::fs::write(&file, bytes).unwrap();
        let err = message(unpack(&file, &dir, true, Limits::DEFAULT).unwrap_err());
        assert!(err.contains(&format!("`{name}`")), "{err}");
        assert!(!dir.exists(), "{name}: {:?}", tree(&dir));
    }
    let zip_cases: [(&str, u32); 3] = [
        ("../evil", 0o100_644),
        ("/tmp/alexnet-absolute-evil", 0o100_644),
        ("top/link", 0o120_777),
    ];
    for (name, mode) in zip_cases {
        let file = tmp.join("evil.zip");
        let bytes = raw_zip(&[
            ("top/", 0o040_755, b""),
            ("top/sub/ok.txt", 0o100_644, b"fine"),
            (name, mode, b"/etc/passwd"),
        ]);
        std::fs::write(&file, bytes).unwrap();
        let err = message(unpack(&file, &dir, true, Limits::DEFAULT).unwrap_err());
        assert!(err.contains(&format!("`{name}`")), "{err}");
        assert!(!dir.exists(), "{name}: {:?}", tree(&dir));
    }
    assert!(!tmp.parent().unwrap().join("evil").exists());
    assert!(!Path::new("/tmp/alexnet-absolute-evil").exists());
}

/// Decompression bombs stop at the byte or entry limit; damaged archives are one-line errors.
#[test]
fn limits_and_damage_are_errors_that_leave_nothing() {
    let tmp = temp_dir("limits");
    let dir = tmp.join("out");
    let big = vec![0u8; 100_000];
    let files = [
        ("a.bin".to_string(), big.clone()),
        ("b.bin".to_string(), big.clone()),
    ];
    let small = Limits {
        max_bytes: 150_000,
        max_entries: 100,
    };
    let few = Limits {
        max_bytes: 1 << 30,
        max_entries: 2,
    };
    for (name, bytes) in [
        ("bomb.tgz", tar_gz("top", &files)),
        ("bomb.zip", zip("top", &files)),
    ] {
        let file = tmp.join(name);
        std::fs::write(&file, bytes).unwrap();
        let err = message(unpack(&file, &dir, true, small).unwrap_err());
        assert!(err.contains("more than 150000 bytes"), "{err}");
        assert!(!dir.exists());
        let err = message(unpack(&file, &dir, true, few).unwrap_err());
        assert!(err.contains("more than 2 entries"), "{err}");
        assert!(!dir.exists());
        let done = unpack(&file, &dir, true, Limits::DEFAULT).unwrap();
        assert_eq!(done.files.len(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }
    // Cut-off archives: the gzip stream or the zip directory ends early.
    for (name, bytes) in [
        ("cut.tgz", tar_gz("top", &files)),
        ("cut.zip", zip("top", &files)),
    ] {
        let file = tmp.join(name);
        std::fs::write(&file, &bytes[..bytes.len() * 2 / 3]).unwrap();
        let err = message(unpack(&file, &dir, true, Limits::DEFAULT).unwrap_err());
        assert!(err.contains(name), "{err}");
        assert!(!dir.exists(), "{name}: {:?}", tree(&dir));
    }
}

/// Offline, an archive placed by hand where the error says is verified and used.
#[test]
fn an_archive_placed_by_hand_is_used_offline() {
    let tmp = temp_dir("placed");
    let dir = tmp.join("nette");
    let bytes = tar_gz("imagenette2-160", &imagenette_files(&IMAGENETTE_WNIDS, 1));
    let archive = served(
        Subset::Imagenette,
        &closed_url("/imagenette2-160.tgz"),
        &bytes,
    );
    let err = message(archive.ensure(&dir, None, false).unwrap_err());
    let placed = dir.join("imagenette2-160.tgz");
    assert!(err.contains(&placed.display().to_string()), "{err}");

    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(&placed, &bytes).unwrap();
    assert!(archive.ensure(&dir, None, false).unwrap());
    assert!(archive.is_present(&dir) && !placed.exists());
}
