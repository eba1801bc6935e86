//! Unpacking downloaded dataset archives safely: `.tar.gz` (CIFAR, Imagenette, Imagewoof) and
//! `.zip` (Tiny ImageNet), recognised by their first bytes.
//!
//! Both are streamed entry by entry (nothing is held in memory whole) and:
//! * entries with an absolute path or a `..` component are refused, as are entries that are
//!   neither plain files nor folders (symbolic and hard links, devices, FIFOs);
//! * the bytes written and the entry count are capped ([`Limits`]), so a decompression bomb
//!   stops with an error instead of filling the disk;
//! * a failure removes every file and (empty) folder this call created again.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};

/// Caps on what one archive may unpack to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Total bytes of all files.
    pub max_bytes: u64,
    /// Entries (files and folders).
    pub max_entries: usize,
}

impl Limits {
    /// 16 GiB and 2^20 entries: ten times the largest archive here (Imagenette's full-size
    /// one unpacks to about 1.6 GB; Tiny ImageNet has about 120,600 entries).
    pub const DEFAULT: Limits = Limits {
        max_bytes: 16 << 30,
        max_entries: 1 << 20,
    };
}

/// What an archive entry is.
enum EntryKind {
    File,
    Folder,
    /// Anything else, described for the refusal (`symbolic link`, `device`, ...).
    Other(String),
}

/// What [`unpack`] wrote.
#[derive(Debug, Default)]
pub struct Unpacked {
    /// Every file written, in archive order.
    pub files: Vec<PathBuf>,
    /// The files that did not exist before.
    created_files: Vec<PathBuf>,
    /// The folders that did not exist before, parents first.
    created_dirs: Vec<PathBuf>,
}

impl Unpacked {
    /// Removes the files, then the (then empty) folders that unpacking created; files it
    /// replaced stay replaced.
    pub fn remove_created(&self) {
        for file in &self.created_files {
            let _ = std::fs::remove_file(file);
        }
        for dir in self.created_dirs.iter().rev() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// Unpacks the `.tar.gz` or `.zip` at `archive` into `dest_dir` (created if needed), dropping
/// each entry's first path component (the archive's top folder) when `strip_top_folder`.
///
/// Errors name the archive and, for refused entries, the entry; the files and folders this
/// call created are removed again first.
pub fn unpack(
    archive: &Path,
    dest_dir: &Path,
    strip_top_folder: bool,
    limits: Limits,
) -> Result<Unpacked> {
    let mut unpacker = Unpacker {
        dest_dir,
        strip_top_folder,
        limits,
        bytes: 0,
        entries: 0,
        done: Unpacked::default(),
    };
    let result = unpacker
        .create_dir(dest_dir)
        .and_then(|()| unpack_any(archive, &mut unpacker))
        .with_context(|| format!("cannot unpack {}", archive.display()));
    match result {
        Ok(()) => Ok(unpacker.done),
        Err(e) => {
            unpacker.done.remove_created();
            Err(e)
        }
    }
}

/// Opens `archive` and feeds its entries to `unpacker`, by format.
fn unpack_any(archive: &Path, unpacker: &mut Unpacker<'_>) -> Result<()> {
    let mut file = File::open(archive).context("cannot open it")?;
    let mut magic = [0u8; 4];
    let n = file.read(&mut magic).context("cannot read it")?;
    file.seek(SeekFrom::Start(0)).context("cannot read it")?;
    match &magic[..n] {
        [0x1f, 0x8b, ..] => unpack_tar_gz(BufReader::new(file), unpacker),
        [b'P', b'K', 3, 4] | [b'P', b'K', 5, 6] => unpack_zip(BufReader::new(file), unpacker),
        _ => bail!("neither a gzip-compressed tar archive nor a zip archive"),
    }
}

fn unpack_tar_gz(reader: impl Read, unpacker: &mut Unpacker<'_>) -> Result<()> {
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(reader));
    for entry in tar.entries().context("corrupt archive")? {
        let mut entry = entry.context("corrupt archive")?;
        let path = entry
            .path()
            .context("corrupt archive entry name")?
            .into_owned();
        let kind = entry.header().entry_type();
        let kind = if kind.is_pax_global_extensions() {
            continue;
        } else if kind.is_dir() {
            EntryKind::Folder
        } else if kind.is_file() || kind == tar::EntryType::Continuous {
            EntryKind::File
        } else {
            EntryKind::Other(match kind {
                tar::EntryType::Symlink => "symbolic link".into(),
                tar::EntryType::Link => "hard link".into(),
                tar::EntryType::Char | tar::EntryType::Block => "device".into(),
                tar::EntryType::Fifo => "FIFO".into(),
                other => format!("{other:?}"),
            })
        };
        unpacker.entry(&path, kind, &mut entry)?;
    }
    Ok(())
}

fn unpack_zip(reader: impl Read + Seek, unpacker: &mut Unpacker<'_>) -> Result<()> {
    let mut zip = zip::ZipArchive::new(reader).context("corrupt zip archive")?;
    if zip.len() > unpacker.limits.max_entries {
        bail!(
            "more than {} entries (the limit)",
            unpacker.limits.max_entries
        );
    }
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).context("corrupt zip archive")?;
        let path = PathBuf::from(entry.name());
        // The Unix file type, where the archive records one (zip made on Unix).
        let kind = match entry.unix_mode().map(|mode| mode & 0o170_000) {
            _ if entry.is_dir() => EntryKind::Folder,
            None | Some(0) | Some(0o100_000) => EntryKind::File,
            Some(0o040_000) => EntryKind::Folder,
            Some(0o120_000) => EntryKind::Other("symbolic link".into()),
            Some(_) => EntryKind::Other("device, FIFO or socket".into()),
        };
        if entry.encrypted() {
            bail!("entry `{}` is encrypted", path.display());
        }
        unpacker.entry(&path, kind, &mut entry)?;
    }
    Ok(())
}

/// Writes entries under `dest_dir` within the limits, remembering what it created.
struct Unpacker<'a> {
    dest_dir: &'a Path,
    strip_top_folder: bool,
    limits: Limits,
    bytes: u64,
    entries: usize,
    done: Unpacked,
}

impl Unpacker<'_> {
    fn entry(&mut self, name: &Path, kind: EntryKind, data: &mut dyn Read) -> Result<()> {
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            bail!("more than {} entries (the limit)", self.limits.max_entries);
        }
        let Some(target) = entry_target(name, self.dest_dir, self.strip_top_folder)? else {
            return Ok(());
        };
        match kind {
            EntryKind::Folder => self.create_dir(&target),
            EntryKind::File => self.write_file(name, &target, data),
            EntryKind::Other(what) => bail!(
                "refusing archive entry `{}`: {what} entries are not allowed, only files and folders",
                name.display()
            ),
        }
    }

    /// Creates `dir` and its missing parents, remembering the ones it created.
    fn create_dir(&mut self, dir: &Path) -> Result<()> {
        let missing: Vec<&Path> = dir.ancestors().take_while(|d| !d.exists()).collect();
        for d in missing.into_iter().rev() {
            std::fs::create_dir(d).with_context(|| format!("cannot create {}", d.display()))?;
            self.done.created_dirs.push(d.to_path_buf());
        }
        Ok(())
    }

    /// Writes entry `name`'s data to `target`.
    fn write_file(&mut self, name: &Path, target: &Path, data: &mut dyn Read) -> Result<()> {
        if let Some(parent) = target.parent() {
            self.create_dir(parent)?;
        }
        let existed = target.symlink_metadata().is_ok();
        if existed {
            // Replace rather than write through whatever is there (a link, say).
            std::fs::remove_file(target)
                .with_context(|| format!("cannot replace {}", target.display()))?;
        }
        let mut out =
            File::create(target).with_context(|| format!("cannot create {}", target.display()))?;
        if !existed {
            self.done.created_files.push(target.to_path_buf());
        }
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let n = match data.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => bail!("corrupt archive: {e} (in `{}`)", name.display()),
            };
            self.bytes += n as u64;
            if self.bytes > self.limits.max_bytes {
                bail!(
                    "unpacks to more than {} bytes (the limit)",
                    self.limits.max_bytes
                );
            }
            out.write_all(&buffer[..n])
                .with_context(|| format!("cannot write {}", target.display()))?;
        }
        self.done.files.push(target.to_path_buf());
        Ok(())
    }
}

/// The path of an archive entry inside `dest_dir`, or `None` for the stripped top folder
/// itself. Absolute paths and `..` components are refused.
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
    let keep = match (strip_top_folder, parts.len()) {
        (true, 0 | 1) | (false, 0) => return Ok(None),
        (true, _) => &parts[1..],
        (false, _) => &parts[..],
    };
    Ok(Some(
        keep.iter().fold(dest_dir.to_path_buf(), |p, c| p.join(c)),
    ))
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
}
