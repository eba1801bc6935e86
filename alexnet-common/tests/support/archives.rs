//! Miniature dataset archives for the download tests: `.tar.gz` and `.zip` writers (well
//! formed, or raw with any entry name and type), Imagenette and Tiny ImageNet in their real
//! layouts with a few tiny JPEGs, and the environment of a run that downloads from a local
//! mirror.
//!
//! Include it with `#[path = "<relative path to>/alexnet-common/tests/support/archives.rs"]
//! mod archives;` (it needs `flate2`, `tar`, `zip` and `image`); temporary folders and their
//! listings are in `folders.rs`.

#![allow(dead_code)]

use std::io::{Cursor, Write};
use std::path::Path;

/// Three of Tiny ImageNet's classes (goldfish, Egyptian cat, lemon), sorted.
pub const TINY_WNIDS: [&str; 3] = ["n01443537", "n02124075", "n07749582"];

/// The environment variables of a run that downloads from the mirror at `base`, accepts the
/// miniature archive's `md5` instead of the published one, and caches in `cache`.
pub fn mirror_env<'a>(
    base: &'a str,
    md5: &'a str,
    cache: &'a Path,
) -> [(&'static str, &'a str); 3] {
    [
        (alexnet_model::download::MIRROR_ENV, base),
        (alexnet_common::datasets::MIRROR_MD5_ENV, md5),
        (alexnet_model::download::CACHE_ENV, cache.to_str().unwrap()),
    ]
}

/// A `.tar.gz` of `files` under `top/` (with the folder entry), as `tar` writes it.
pub fn tar_gz(top: &str, files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut builder = tar::Builder::new(gz);
    let mut dir = tar::Header::new_gnu();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_mode(0o755);
    dir.set_size(0);
    builder
        .append_data(&mut dir, format!("{top}/"), std::io::empty())
        .unwrap();
    for (name, data) in files {
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o644);
        header.set_size(data.len() as u64);
        builder
            .append_data(&mut header, format!("{top}/{name}"), data.as_slice())
            .unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

/// A `.tar.gz` whose entries are written raw (no path checks), each `(name, type, data)`;
/// links point to `/etc/passwd`.
pub fn raw_tar_gz(entries: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut builder = tar::Builder::new(gz);
    for (name, kind, data) in entries {
        let mut header = tar::Header::new_old();
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_entry_type(*kind);
        header.set_mode(0o644);
        header.set_size(data.len() as u64);
        if matches!(kind, tar::EntryType::Symlink | tar::EntryType::Link) {
            header.set_link_name("/etc/passwd").unwrap();
        }
        header.set_cksum();
        builder.append(&header, *data).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

/// A `.zip` (deflated) of `files` under `top/`, with the folder entries, as `zip -r` writes it.
pub fn zip(top: &str, files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut entries: Vec<(String, u32, Vec<u8>)> = Vec::new();
    let mut folders: Vec<String> = vec![format!("{top}/")];
    for (name, data) in files {
        let mut folder = String::new();
        for part in name
            .split('/')
            .rev()
            .skip(1)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
        {
            folder = format!("{folder}{part}/");
            if !folders.contains(&format!("{top}/{folder}")) {
                folders.push(format!("{top}/{folder}"));
            }
        }
        entries.push((format!("{top}/{name}"), 0o100_644, data.clone()));
    }
    let mut all: Vec<(String, u32, Vec<u8>)> = folders
        .into_iter()
        .map(|f| (f, 0o040_755, Vec::new()))
        .collect();
    all.extend(entries);
    let raw: Vec<(&str, u32, &[u8])> = all
        .iter()
        .map(|(n, m, d)| (n.as_str(), *m, d.as_slice()))
        .collect();
    raw_zip(&raw)
}

/// A `.zip` whose entries are written raw, each `(name, unix mode, data)`: a name ending in
/// `/` is a folder, a mode of type `0o120000` a symbolic link whose target is `data`.
pub fn raw_zip(entries: &[(&str, u32, &[u8])]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, mode, data) in entries {
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .unix_permissions(*mode & 0o777);
        if name.ends_with('/') {
            writer.add_directory(*name, options).unwrap();
        } else if mode & 0o170_000 == 0o120_000 {
            let target = String::from_utf8_lossy(data).into_owned();
            writer.add_symlink(*name, target, options).unwrap();
        } else {
            writer.start_file(*name, options).unwrap();
            writer.write_all(data).unwrap();
        }
    }
    writer.finish().unwrap().into_inner()
}

/// A 16×16 JPEG of one colour that depends on `seed`.
pub fn jpeg(seed: usize) -> Vec<u8> {
    let colour = [(seed * 70 % 256) as u8, (seed * 130 % 256) as u8, 90];
    let image = image::RgbImage::from_pixel(16, 16, image::Rgb(colour));
    let mut bytes = Cursor::new(Vec::new());
    image
        .write_to(&mut bytes, image::ImageFormat::Jpeg)
        .unwrap();
    bytes.into_inner()
}

/// Imagenette's files as its archives hold them (below the top folder): `per_class` JPEGs in
/// each of `train/<wnid>/` and `val/<wnid>/` for every class, and `noisy_imagenette.csv`.
pub fn imagenette_files(wnids: &[&str], per_class: usize) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    let mut csv = String::from("path,noisy_labels_0,is_valid\n");
    for split in ["train", "val"] {
        for (c, wnid) in wnids.iter().enumerate() {
            for i in 0..per_class {
                let path = format!("{split}/{wnid}/{wnid}_{i}.JPEG");
                csv.push_str(&format!("{path},{wnid},{}\n", split == "val"));
                files.push((path, jpeg(c * 10 + i)));
            }
        }
    }
    files.push(("noisy_imagenette.csv".into(), csv.into_bytes()));
    files
}

/// Tiny ImageNet's files as `tiny-imagenet-200.zip` holds them (below the top folder), for
/// the classes `wnids`: `wnids.txt`, `words.txt`, `train/<wnid>/images/` (`per_class` JPEGs)
/// with `<wnid>_boxes.txt`, `val/images/val_<i>.JPEG` (`per_class` of each class, listed in
/// `val/val_annotations.txt`) and `test/images/`.
pub fn tiny_imagenet_files(wnids: &[&str], per_class: usize) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    let mut annotations = String::new();
    for (c, wnid) in wnids.iter().enumerate() {
        let mut boxes = String::new();
        for i in 0..per_class {
            let name = format!("{wnid}_{i}.JPEG");
            boxes.push_str(&format!("{name}\t0\t0\t15\t15\n"));
            files.push((format!("train/{wnid}/images/{name}"), jpeg(c * 10 + i)));
            let val = format!("val_{}.JPEG", c * per_class + i);
            annotations.push_str(&format!("{val}\t{wnid}\t0\t0\t15\t15\n"));
            files.push((format!("val/images/{val}"), jpeg(c * 10 + i + 5)));
        }
        files.push((format!("train/{wnid}/{wnid}_boxes.txt"), boxes.into_bytes()));
    }
    files.push(("val/val_annotations.txt".into(), annotations.into_bytes()));
    files.push(("test/images/test_0.JPEG".into(), jpeg(99)));
    // Listed in reverse: the classes are numbered in sorted order whatever the file says.
    let list: Vec<&str> = wnids.iter().rev().copied().collect();
    files.push((
        "wnids.txt".into(),
        format!("{}\n", list.join("\n")).into_bytes(),
    ));
    let words: String = wnids.iter().map(|w| format!("{w}\tsome words\n")).collect();
    files.push(("words.txt".into(), words.into_bytes()));
    files
}

/// Lowercase hexadecimal MD5 of `bytes`.
pub fn md5_hex(bytes: &[u8]) -> String {
    alexnet_model::download::Checksum::Md5(String::new()).digest(bytes)
}
