//! `--download` without the internet: a tiny HTTP/1.1 server on 127.0.0.1 serves generated
//! CIFAR archives (and broken ones) to the download, checksum and unpacking code.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use alexnet_common::cifar::{CifarKind, IMAGE_BYTES};
use alexnet_train::data::download::{
    download_url, ensure_archive, ensure_cifar, md5_hex, unpack, Archive, CIFAR10, CIFAR100,
};
use alexnet_train::data::source::cifar_folder;
use common::{fails_with_all, temp_dir};

/// What the test server answers.
#[derive(Clone)]
enum Reply {
    /// 200 with this body.
    Body(Vec<u8>),
    /// 200 announcing `claimed` bytes, sending `body`, then closing.
    Truncated { body: Vec<u8>, claimed: usize },
    /// 404.
    NotFound,
}

/// A one-route HTTP/1.1 server: every request for `path` gets `reply`, others 404.
struct Server {
    base: String,
    requests: Arc<AtomicUsize>,
}

impl Server {
    fn start(path: &'static str, reply: Reply) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(AtomicUsize::new(0));
        let count = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                count.fetch_add(1, Ordering::SeqCst);
                let _ = answer(stream, path, &reply);
            }
        });
        Self { base, requests }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

fn answer(stream: TcpStream, path: &str, reply: &Reply) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
    }
    let requested = request_line.split_whitespace().nth(1).unwrap_or("");
    let reply = if requested == path {
        reply.clone()
    } else {
        Reply::NotFound
    };
    let (status, body, length) = match reply {
        Reply::Body(body) => ("200 OK", body.clone(), body.len()),
        Reply::Truncated { body, claimed } => ("200 OK", body, claimed),
        Reply::NotFound => ("404 Not Found", b"not found".to_vec(), 9),
    };
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: {length}\r\nConnection: close\r\n\r\n"
    )?;
    stream.write_all(&body)?;
    stream.flush()?;
    stream.shutdown(std::net::Shutdown::Both)
}

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

/// A `.tar.gz` of `files` under `top/` (with the folder entry), as `tar` writes it.
fn tar_gz(top: &str, files: &[(String, Vec<u8>)]) -> Vec<u8> {
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

/// A `.tar.gz` whose entries are written raw (no path checks), each `(name, type, data)`.
fn raw_tar_gz(entries: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut builder = tar::Builder::new(gz);
    for (name, kind, data) in entries {
        let mut header = tar::Header::new_old();
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_entry_type(*kind);
        header.set_mode(0o644);
        header.set_size(data.len() as u64);
        if *kind == tar::EntryType::Symlink {
            header.set_link_name("/etc/passwd").unwrap();
        }
        header.set_cksum();
        builder.append(&header, *data).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

/// The names of the entries of a folder, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn archive<'a>(url: &'a str, md5: &'a str, file_name: &'a str) -> Archive<'a> {
    Archive {
        url,
        md5,
        file_name,
    }
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
    download_url(&server.url("/big.bin"), &dest, &md5_hex(&body), false).unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), body);
    assert_eq!(listing(&tmp), ["big.bin"]);
}

#[test]
fn official_archives_and_checksums() {
    assert_eq!(
        CIFAR10.url,
        "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
    );
    assert_eq!(CIFAR10.md5, "c32a1d4ab5d03f1284b67883e8d87530");
    assert_eq!(
        CIFAR100.url,
        "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz"
    );
    assert_eq!(CIFAR100.md5, "03b5dce01913d631647c71ecec9e9cb8");
}

#[test]
fn downloads_verifies_and_unpacks_cifar10() {
    let tmp = temp_dir("dl-ok10");
    let dir = tmp.join("cifar10");
    let bytes = cifar10_archive();
    let md5 = md5_hex(&bytes);
    let server = Server::start("/cifar-10-binary.tar.gz", Reply::Body(bytes));
    let url = server.url("/cifar-10-binary.tar.gz");
    let source = archive(&url, &md5, "cifar-10-binary.tar.gz");

    assert!(ensure_archive(CifarKind::Cifar10, &dir, &source, false).unwrap());
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
    assert!(!ensure_archive(CifarKind::Cifar10, &dir, &source, false).unwrap());
    assert_eq!(server.requests(), 1);
}

#[test]
fn downloads_cifar100_for_both_label_sets() {
    let tmp = temp_dir("dl-ok100");
    let bytes = cifar100_archive();
    let md5 = md5_hex(&bytes);
    let server = Server::start("/c100.tar.gz", Reply::Body(bytes));
    let url = server.url("/c100.tar.gz");
    let source = archive(&url, &md5, "cifar-100-binary.tar.gz");
    let dir = tmp.join("c100");
    assert!(ensure_archive(CifarKind::Cifar100Coarse, &dir, &source, false).unwrap());
    let coarse = cifar_folder(&dir, CifarKind::Cifar100Coarse).unwrap();
    assert_eq!((coarse.train.len(), coarse.val.len()), (6, 2));
    assert_eq!(coarse.classes.len(), 20);
    // The fine labels use the same files.
    assert!(!ensure_archive(CifarKind::Cifar100Fine, &dir, &source, false).unwrap());
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
    let err = ensure_cifar(CifarKind::Cifar10, &dir, Some(&url), false).unwrap_err();
    let message = format!("{err:#}");
    assert!(!message.contains('\n'), "{message}");
    assert!(message.contains(&url), "{message}");
    assert!(message.contains(CIFAR10.md5), "{message}");
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
    let err = download_url(&url, &dest, &md5_hex(&body), false).unwrap_err();
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
    let err = download_url(&url, &tmp.join("x.tar.gz"), CIFAR10.md5, false).unwrap_err();
    let message = format!("{err:#}");
    assert!(
        message.contains(&url) && message.contains("404"),
        "{message}"
    );
    assert!(!message.contains('\n'), "{message}");

    // Connection refused: a port that was just freed.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/x.tar.gz");
    let err = download_url(&url, &tmp.join("x.tar.gz"), CIFAR10.md5, false).unwrap_err();
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
    let source = archive(&url, &md5, "cifar-10-binary.tar.gz");
    let err = ensure_archive(CifarKind::Cifar10, &dir, &source, false).unwrap_err();
    let message = format!("{err:#}");
    assert!(message.contains("../evil"), "{message}");
    assert!(!message.contains('\n'), "{message}");
    assert!(!tmp.join("evil").exists() && !tmp.parent().unwrap().join("evil").exists());
    // The file written before the refusal and the archive are removed again.
    assert_eq!(listing(&dir), Vec::<String>::new());
    assert_eq!(listing(&tmp), ["data"]);

    // Absolute paths and links, unpacked directly.
    let cases: [(&str, tar::EntryType); 2] = [
        ("/tmp/alexnet-absolute-evil", tar::EntryType::Regular),
        ("top/link", tar::EntryType::Symlink),
    ];
    for (name, kind) in cases {
        let file = tmp.join("evil.tar.gz");
        std::fs::write(&file, raw_tar_gz(&[(name, kind, b"")])).unwrap();
        let err = unpack(&file, &dir, true).unwrap_err();
        let message = format!("{err:#}");
        assert!(message.contains(name), "{message}");
        assert_eq!(listing(&dir), Vec::<String>::new());
    }
    assert!(!Path::new("/tmp/alexnet-absolute-evil").exists());
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
        ensure_cifar(kind, &dir, Some(&server.url("/x.tar.gz")), false).unwrap();
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
        &["MD5 checksum mismatch", CIFAR10.md5, &url],
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
