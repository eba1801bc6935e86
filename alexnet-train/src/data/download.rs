//! `alexnet-train --download`: fetches the official CIFAR binary archives.
//!
//! The archive is streamed to `<name>.part` next to its destination while its MD5 is computed,
//! checked against the checksum published on <https://www.cs.toronto.edu/~kriz/cifar.html>
//! (also when the URL is a mirror), renamed into place, unpacked without its top folder so the
//! `.bin` files land directly in the data folder, and removed. Unpacking refuses absolute
//! paths, `..` components and anything but plain files and folders.

use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};

use alexnet_common::cifar::CifarKind;

/// A downloadable archive and its published checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Archive<'a> {
    /// Where to fetch it.
    pub url: &'a str,
    /// Its MD5, lowercase hexadecimal.
    pub md5: &'a str,
    /// File name of the downloaded archive inside the data folder.
    pub file_name: &'a str,
}

/// The official CIFAR-10 binary archive (top folder `cifar-10-batches-bin/`).
pub const CIFAR10: Archive<'static> = Archive {
    url: "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
    md5: "c32a1d4ab5d03f1284b67883e8d87530",
    file_name: "cifar-10-binary.tar.gz",
};

/// The official CIFAR-100 binary archive (top folder `cifar-100-binary/`).
pub const CIFAR100: Archive<'static> = Archive {
    url: "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
    md5: "03b5dce01913d631647c71ecec9e9cb8",
    file_name: "cifar-100-binary.tar.gz",
};

/// The official archive of a CIFAR kind (both CIFAR-100 label sets share one).
pub fn official(kind: CifarKind) -> Archive<'static> {
    match kind {
        CifarKind::Cifar10 => CIFAR10,
        CifarKind::Cifar100Fine | CifarKind::Cifar100Coarse => CIFAR100,
    }
}

/// The record files a kind trains and validates on.
pub fn data_files(kind: CifarKind, dir: &Path) -> Vec<PathBuf> {
    let mut files = kind.split_files(dir, true);
    files.extend(kind.split_files(dir, false));
    files
}

/// The record files and the class-name file that a complete download provides.
pub fn needed_files(kind: CifarKind, dir: &Path) -> Vec<PathBuf> {
    let mut files = data_files(kind, dir);
    files.push(dir.join(kind.label_names_file()));
    files
}

/// Lowercase hexadecimal MD5 of `bytes`.
pub fn md5_hex(bytes: &[u8]) -> String {
    format!("{:x}", md5::compute(bytes))
}

/// Removes a file when dropped, unless disarmed.
struct RemoveOnDrop(Option<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn progress_bar(progress: bool, len: Option<u64>, name: &str) -> ProgressBar {
    if !progress {
        return ProgressBar::hidden();
    }
    let (bar, template) = match len {
        Some(len) => (
            ProgressBar::new(len),
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
        ),
        None => (
            ProgressBar::new_spinner(),
            "{msg} {spinner} {bytes} {bytes_per_sec}",
        ),
    };
    let style = ProgressStyle::with_template(template)
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(name.to_string());
    bar
}

/// Downloads `url` to `dest` (via `dest.part`), checking its MD5 against `expected_md5`.
///
/// Errors — HTTP status, connection, truncated transfer, checksum mismatch — are one line that
/// names the URL; no partial file is left behind.
pub fn download_url(url: &str, dest: &Path, expected_md5: &str, progress: bool) -> Result<()> {
    let file_name = dest
        .file_name()
        .with_context(|| format!("{}: not a file path", dest.display()))?;
    let mut part_name = file_name.to_os_string();
    part_name.push(".part");
    let part = dest.with_file_name(part_name);

    let agent = ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(30))
        .timeout_read(Duration::from_secs(60))
        .build();
    let response = match agent.get(url).call() {
        Ok(response) => response,
        Err(ureq::Error::Status(code, response)) => {
            bail!(
                "cannot download {url}: HTTP {code} {}",
                response.status_text()
            )
        }
        Err(ureq::Error::Transport(transport)) => {
            let mut reason = transport.kind().to_string();
            if let Some(message) = transport.message() {
                reason = format!("{reason}: {message}");
            }
            if let Some(source) = std::error::Error::source(&transport) {
                reason = format!("{reason}: {source}");
            }
            bail!("cannot download {url}: {reason}")
        }
    };
    let expected_len = response
        .header("Content-Length")
        .and_then(|v| v.trim().parse::<u64>().ok());

    let mut file = File::create(&part)
        .with_context(|| format!("cannot download {url}: cannot create {}", part.display()))?;
    let guard = RemoveOnDrop(Some(part.clone()));
    let bar = progress_bar(progress, expected_len, &file_name.to_string_lossy());
    let mut reader = response.into_reader();
    let mut context = md5::Context::new();
    let mut buffer = vec![0u8; 64 * 1024];
    let mut received: u64 = 0;
    let of_total = |received: u64| match expected_len {
        Some(len) => format!("{received} of {len} bytes"),
        None => format!("{received} bytes"),
    };
    loop {
        let n = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // ureq reports a body shorter than its Content-Length this way.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && expected_len.is_some() => break,
            Err(e) => {
                bar.abandon();
                bail!(
                    "cannot download {url}: transfer failed after {}: {e}",
                    of_total(received)
                );
            }
        };
        context.consume(&buffer[..n]);
        file.write_all(&buffer[..n])
            .with_context(|| format!("cannot download {url}: cannot write {}", part.display()))?;
        received += n as u64;
        bar.inc(n as u64);
    }
    bar.finish_and_clear();
    if let Some(len) = expected_len {
        if received != len {
            bail!("cannot download {url}: truncated transfer: received {received} of {len} bytes");
        }
    }
    file.flush()
        .and_then(|_| file.sync_all())
        .with_context(|| format!("cannot download {url}: cannot write {}", part.display()))?;
    drop(file);

    let actual = format!("{:x}", context.finalize());
    if !actual.eq_ignore_ascii_case(expected_md5.trim()) {
        bail!("{url}: MD5 checksum mismatch: expected {expected_md5}, got {actual} (download deleted)");
    }
    std::fs::rename(&part, dest).with_context(|| {
        format!(
            "cannot download {url}: cannot rename {} to {}",
            part.display(),
            dest.display()
        )
    })?;
    std::mem::forget(guard);
    Ok(())
}

/// The path of a tar entry inside `dest_dir`, or `None` for the stripped top folder itself.
fn entry_target(entry: &Path, dest_dir: &Path, strip_top_folder: bool) -> Result<Option<PathBuf>> {
    let mut parts = Vec::new();
    for component in entry.components() {
        match component {
            Component::Normal(part) => parts.push(part),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                bail!(
                    "refusing archive entry `{}`: it points outside the destination folder",
                    entry.display()
                )
            }
        }
    }
    let keep = if strip_top_folder {
        match parts.len() {
            0 | 1 => return Ok(None),
            _ => &parts[1..],
        }
    } else {
        &parts[..]
    };
    if keep.is_empty() {
        return Ok(None);
    }
    Ok(Some(
        keep.iter().fold(dest_dir.to_path_buf(), |p, c| p.join(c)),
    ))
}

/// Unpacks a `.tar.gz` into `dest_dir`, dropping the archive's top folder when
/// `strip_top_folder`. Returns the files written.
///
/// Refuses, with an error naming the entry, absolute paths, `..` components, and entries
/// that are neither plain files nor folders (symbolic and hard links, devices). Files this call
/// created are removed again when it fails.
pub fn unpack(archive: &Path, dest_dir: &Path, strip_top_folder: bool) -> Result<Vec<PathBuf>> {
    let file = File::open(archive).with_context(|| format!("cannot open {}", archive.display()))?;
    std::fs::create_dir_all(dest_dir)
        .with_context(|| format!("cannot create {}", dest_dir.display()))?;
    let mut written = Vec::new();
    let mut created = Vec::new();
    let result = unpack_into(
        BufReader::new(file),
        dest_dir,
        strip_top_folder,
        &mut written,
        &mut created,
    )
    .with_context(|| format!("cannot unpack {}", archive.display()));
    if result.is_err() {
        for file in &created {
            let _ = std::fs::remove_file(file);
        }
    }
    result.map(|()| written)
}

fn unpack_into(
    reader: impl Read,
    dest_dir: &Path,
    strip_top_folder: bool,
    written: &mut Vec<PathBuf>,
    created: &mut Vec<PathBuf>,
) -> Result<()> {
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(reader));
    for entry in tar.entries().context("not a gzip-compressed tar archive")? {
        let mut entry = entry.context("corrupt archive")?;
        let path = entry
            .path()
            .context("corrupt archive entry name")?
            .into_owned();
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() {
            continue;
        }
        let Some(target) = entry_target(&path, dest_dir, strip_top_folder)? else {
            continue;
        };
        if kind.is_dir() {
            std::fs::create_dir_all(&target)
                .with_context(|| format!("cannot create {}", target.display()))?;
        } else if kind.is_file() || kind == tar::EntryType::Continuous {
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create {}", parent.display()))?;
            }
            let existed = target.symlink_metadata().is_ok();
            if existed {
                // Replace rather than write through whatever is there (a link, say).
                std::fs::remove_file(&target)
                    .with_context(|| format!("cannot replace {}", target.display()))?;
            }
            let mut out = File::create(&target)
                .with_context(|| format!("cannot create {}", target.display()))?;
            if !existed {
                created.push(target.clone());
            }
            io::copy(&mut entry, &mut out)
                .and_then(|_| out.flush())
                .with_context(|| format!("cannot write {}", target.display()))?;
            written.push(target);
        } else {
            bail!(
                "refusing archive entry `{}`: {:?} entries are not allowed, only files and folders",
                path.display(),
                kind
            );
        }
    }
    Ok(())
}

/// Makes sure `dir` holds the CIFAR files `kind` needs, downloading the official archive
/// (from `url_override`, a mirror, when given; the published MD5 is checked either way).
pub fn ensure_cifar(
    kind: CifarKind,
    dir: &Path,
    url_override: Option<&str>,
    progress: bool,
) -> Result<()> {
    let mut archive = official(kind);
    if let Some(url) = url_override {
        archive.url = url;
    }
    ensure_archive(kind, dir, &archive, progress).map(|_| ())
}

/// [`ensure_cifar`] with any archive: returns `false` when the data was already there (and
/// nothing was fetched), `true` after a download.
pub fn ensure_archive(
    kind: CifarKind,
    dir: &Path,
    archive: &Archive<'_>,
    progress: bool,
) -> Result<bool> {
    if data_files(kind, dir).iter().all(|f| f.is_file()) {
        if progress {
            eprintln!(
                "{}: {kind:?} already present, not downloading",
                dir.display()
            );
        }
        return Ok(false);
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join(archive.file_name);
    if progress {
        eprintln!("downloading {} into {}", archive.url, dir.display());
    }
    download_url(archive.url, &path, archive.md5, progress)?;
    let unpacked = unpack(&path, dir, true);
    let _ = std::fs::remove_file(&path);
    unpacked?;
    let missing: Vec<String> = needed_files(kind, dir)
        .iter()
        .filter(|f| !f.is_file())
        .map(|f| {
            f.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    if !missing.is_empty() {
        bail!(
            "{}: the archive did not contain {}",
            archive.url,
            missing.join(", ")
        );
    }
    if progress {
        eprintln!("{kind:?} ready in {}", dir.display());
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_targets_stay_inside() {
        let dest = Path::new("/d");
        let t = |p: &str, strip| entry_target(Path::new(p), dest, strip);
        assert_eq!(t("top/a.bin", true).unwrap(), Some(dest.join("a.bin")));
        assert_eq!(
            t("./top/x/a.bin", true).unwrap(),
            Some(dest.join("x/a.bin"))
        );
        assert_eq!(t("top/", true).unwrap(), None);
        assert_eq!(t("a.bin", false).unwrap(), Some(dest.join("a.bin")));
        for bad in ["../evil", "top/../../evil", "/etc/passwd"] {
            let err = t(bad, true).unwrap_err().to_string();
            assert!(err.contains(bad), "{err}");
        }
    }

    #[test]
    fn needed_files_per_kind() {
        let names = |k| -> Vec<String> {
            needed_files(k, Path::new("d"))
                .iter()
                .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
                .collect()
        };
        assert_eq!(names(CifarKind::Cifar10).len(), 7);
        assert!(names(CifarKind::Cifar100Fine).contains(&"fine_label_names.txt".into()));
        assert!(names(CifarKind::Cifar100Coarse).contains(&"coarse_label_names.txt".into()));
        assert_eq!(official(CifarKind::Cifar100Coarse), CIFAR100);
    }
}
