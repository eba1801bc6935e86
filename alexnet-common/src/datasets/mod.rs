//! Datasets fetched by name — CIFAR's binary archives ([`cifar`]) and the ImageNet subsets
//! ([`subsets`]: Imagenette, Imagewoof, Tiny ImageNet) — for `alexnet-train --download` and
//! `alexnet-infer eval --download`.
//!
//! [`DatasetArchive::ensure`] leaves a data folder alone when it already holds the dataset;
//! otherwise it downloads the archive into it with [`alexnet_model::download`] (progress bar;
//! the published checksum checked before the file appears under its name; one-line errors
//! naming the URL), unpacks it there without its top folder ([`archive`]: refuses paths
//! outside the folder, links and devices; capped size), and deletes the archive. On any
//! failure nothing is left behind: no archive, no partial file, no half-unpacked files.
//!
//! A mirror: `$ALEXNET_BURN_MIRROR` (a base URL; the file name is appended) or a full URL
//! given by the caller (`--download-url`). The published checksum still applies, unless
//! `$ALEXNET_BURN_MIRROR_MD5` gives the MD5 of the file the mirror serves (a repacked archive;
//! the tests' miniature archives).

pub mod archive;
pub mod subsets;

use std::path::{Path, PathBuf};

use alexnet_model::download::{download, Checksum, RemoteFile};
use anyhow::{bail, Context, Result};

use crate::cifar::CifarKind;
use archive::Limits;

/// Environment variable holding the MD5 that an archive fetched from a mirror
/// (`$ALEXNET_BURN_MIRROR` or a URL given on the command line) is checked against, instead of
/// the published one.
pub const MIRROR_MD5_ENV: &str = "ALEXNET_BURN_MIRROR_MD5";

/// Written into the data folder while an archive is being unpacked and removed when it is
/// complete: a folder holding it (an interrupted run) does not count as present.
pub const UNPACKING_MARKER: &str = ".alexnet-unpacking";

/// A dataset published as one archive whose entries share a top folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetArchive {
    /// The archive and its published checksum.
    pub file: RemoteFile,
    /// Paths, relative to the data folder, that a complete copy has.
    pub required: Vec<PathBuf>,
}

impl DatasetArchive {
    /// Whether `dir` holds the dataset: every required path, and no unfinished unpacking.
    pub fn is_present(&self, dir: &Path) -> bool {
        self.required.iter().all(|p| dir.join(p).exists()) && !dir.join(UNPACKING_MARKER).exists()
    }

    /// Makes sure `dir` holds the dataset (see the module docs), fetching the archive from
    /// `url` (a mirror) when given. Returns `false` when it was already there and nothing was
    /// fetched.
    pub fn ensure(&self, dir: &Path, url: Option<&str>, progress: bool) -> Result<bool> {
        if self.is_present(dir) {
            if progress {
                eprintln!("{}: already present, not downloading", dir.display());
            }
            return Ok(false);
        }
        let url = url.map_or_else(|| self.file.source_url(), str::to_string);
        let checksum = self.checksum_for(&url, progress)?;
        let made_dir = !dir.exists();
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the folder {}", dir.display()))?;
        let result = self.fetch_and_unpack(dir, &url, &checksum, progress);
        if result.is_err() && made_dir {
            // Only when empty: everything this call wrote is already removed.
            let _ = std::fs::remove_dir(dir);
        }
        result.map(|()| true)
    }

    /// The checksum a download from `url` must have: the published one, or for a mirror
    /// `$ALEXNET_BURN_MIRROR_MD5` when that is set.
    fn checksum_for(&self, url: &str, progress: bool) -> Result<Checksum> {
        match std::env::var(MIRROR_MD5_ENV) {
            Ok(md5) if !md5.trim().is_empty() && url != self.file.url => {
                let md5 = md5.trim();
                if md5.len() != 32 || !md5.bytes().all(|b| b.is_ascii_hexdigit()) {
                    bail!("{MIRROR_MD5_ENV} must be 32 hexadecimal digits, got `{md5}`");
                }
                if progress {
                    eprintln!(
                        "note: checking {url} against {MIRROR_MD5_ENV} ({md5}), not the published MD5"
                    );
                }
                Ok(Checksum::Md5(md5.to_string()))
            }
            _ => Ok(self.file.checksum.clone()),
        }
    }

    fn fetch_and_unpack(
        &self,
        dir: &Path,
        url: &str,
        checksum: &Checksum,
        progress: bool,
    ) -> Result<()> {
        let path = dir.join(&self.file.file_name);
        // An archive placed by hand (as the offline error suggests) is used when it verifies.
        let placed = RemoteFile {
            checksum: checksum.clone(),
            ..self.file.clone()
        };
        match placed.verify(&path) {
            Ok(()) => {
                if progress {
                    eprintln!("{}: verified, not downloading", path.display());
                }
            }
            Err(why) => {
                if path.exists() {
                    eprintln!("warning: {}: {why}; downloading again", path.display());
                }
                if progress {
                    eprintln!("downloading {url} into {}", dir.display());
                }
                download(url, &path, checksum, self.file.size, progress)?;
            }
        }
        let marker = dir.join(UNPACKING_MARKER);
        let result = std::fs::write(&marker, b"")
            .with_context(|| format!("cannot write in {}", dir.display()))
            .and_then(|()| self.unpack(&path, dir, url, progress));
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(&marker);
        result
    }

    /// Unpacks the downloaded archive at `path` into `dir` and checks that the required
    /// paths are there (else removes what it unpacked).
    fn unpack(&self, path: &Path, dir: &Path, url: &str, progress: bool) -> Result<()> {
        if progress {
            eprintln!("unpacking {} into {}", self.file.file_name, dir.display());
        }
        let unpacked =
            archive::unpack(path, dir, true, Limits::DEFAULT).with_context(|| url.to_string())?;
        let missing: Vec<String> = self
            .required
            .iter()
            .filter(|p| !dir.join(p).exists())
            .map(|p| p.display().to_string())
            .collect();
        if let Some(first) = missing.first() {
            unpacked.remove_created();
            let more = match missing.len() {
                1 => String::new(),
                n => format!(
                    " and {} more of the {} paths expected",
                    n - 1,
                    self.required.len()
                ),
            };
            bail!("{url}: the archive did not contain {first}{more}");
        }
        Ok(())
    }
}

/// The official CIFAR binary archive of a kind (both CIFAR-100 label sets share one), from
/// <https://www.cs.toronto.edu/~kriz/cifar.html>, which publishes the MD5s. A complete copy
/// has the kind's record files.
pub fn cifar(kind: CifarKind) -> DatasetArchive {
    let (file_name, md5) = match kind {
        CifarKind::Cifar10 => ("cifar-10-binary.tar.gz", "c32a1d4ab5d03f1284b67883e8d87530"),
        CifarKind::Cifar100Fine | CifarKind::Cifar100Coarse => (
            "cifar-100-binary.tar.gz",
            "03b5dce01913d631647c71ecec9e9cb8",
        ),
    };
    let mut required = kind.split_files(Path::new(""), true);
    required.extend(kind.split_files(Path::new(""), false));
    DatasetArchive {
        file: RemoteFile {
            url: format!("https://www.cs.toronto.edu/~kriz/{file_name}"),
            file_name: file_name.into(),
            checksum: Checksum::Md5(md5.into()),
            size: None,
        },
        required,
    }
}
