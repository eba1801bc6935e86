//! Files fetched over HTTP(S), verified before use: the pretrained weights
//! ([`crate::pretrained`]) and the datasets the binaries download share this code.
//!
//! A download streams into a uniquely named temporary file beside its destination while its
//! checksum is computed, and is renamed into place only when the checksum (and the size, when
//! it is known) matches: a failed, cut-off or wrong download never leaves a file under the
//! destination name. A progress bar shows on stderr (when it is a terminal).
//!
//! [`fetch`] adds the cache: a file already in the folder is verified and reused (a corrupt
//! one is removed, with a warning, and downloaded again); `$ALEXNET_BURN_MIRROR` replaces the
//! original host by a base URL to which the file name is appended (the checksum still applies);
//! offline, the error names the URL and the exact path to place the file by hand.
//!
//! ```no_run
//! use alexnet_model::download::{cache_dir, fetch, Checksum, RemoteFile};
//!
//! let file = RemoteFile {
//!     url: "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth".into(),
//!     file_name: "alexnet-owt-7be5be79.pth".into(),
//!     checksum: Checksum::Sha256("7be5be79".into()),
//!     size: None,
//! };
//! let path = fetch(&file, &cache_dir()?, true)?;
//! # Ok::<(), alexnet_model::AlexNetError>(())
//! ```

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use indicatif::{ProgressBar, ProgressStyle};
use sha1::Digest;

use crate::error::AlexNetError;

/// Environment variable naming the cache folder (default: the platform cache folder's
/// `alexnet-burn`, e.g. `~/.cache/alexnet-burn` on Linux).
pub const CACHE_ENV: &str = "ALEXNET_BURN_CACHE";

/// Environment variable holding a mirror's base URL: files are fetched from
/// `<base>/<file name>` instead of their original URL.
pub const MIRROR_ENV: &str = "ALEXNET_BURN_MIRROR";

/// A published digest, lowercase or uppercase hexadecimal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checksum {
    /// MD5 (CIFAR's and fast.ai's archives).
    Md5(String),
    /// SHA-1 (Caffe's model zoo).
    Sha1(String),
    /// SHA-256: the full digest or, torch hub's convention, a prefix of at least 8 hexadecimal
    /// digits (the one a file name such as `alexnet-owt-7be5be79.pth` carries).
    Sha256(String),
}

impl Checksum {
    /// The algorithm's name as people write it (`MD5`, `SHA-1`, `SHA-256`).
    pub fn algorithm(&self) -> &'static str {
        match self {
            Checksum::Md5(_) => "MD5",
            Checksum::Sha1(_) => "SHA-1",
            Checksum::Sha256(_) => "SHA-256",
        }
    }

    /// The expected digest as given.
    pub fn expected(&self) -> &str {
        match self {
            Checksum::Md5(hex) | Checksum::Sha1(hex) | Checksum::Sha256(hex) => hex.trim(),
        }
    }

    /// Whether `actual` (a full hexadecimal digest) is the expected one; a SHA-256 prefix
    /// matches the digests it starts.
    pub fn matches(&self, actual: &str) -> bool {
        let expected = self.expected().to_ascii_lowercase();
        let actual = actual.to_ascii_lowercase();
        match self {
            Checksum::Sha256(_) if expected.len() >= 8 && expected.len() < 64 => {
                actual.starts_with(&expected)
            }
            _ => actual == expected,
        }
    }

    fn hasher(&self) -> Hasher {
        match self {
            Checksum::Md5(_) => Hasher::Md5(md5::Context::new()),
            Checksum::Sha1(_) => Hasher::Sha1(sha1::Sha1::new()),
            Checksum::Sha256(_) => Hasher::Sha256(sha2::Sha256::new()),
        }
    }

    /// The digest of `bytes` in this checksum's algorithm, lowercase hexadecimal.
    pub fn digest(&self, bytes: &[u8]) -> String {
        let mut hasher = self.hasher();
        hasher.update(bytes);
        hasher.hex()
    }

    /// The digest of a file's content, read in 1 MiB pieces.
    pub fn digest_file(&self, path: &Path) -> io::Result<String> {
        let mut file = File::open(path)?;
        let mut hasher = self.hasher();
        let mut buffer = vec![0u8; 1 << 20];
        loop {
            match file.read(&mut buffer) {
                Ok(0) => return Ok(hasher.hex()),
                Ok(n) => hasher.update(&buffer[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// A running digest of one of the [`Checksum`] algorithms.
enum Hasher {
    Md5(md5::Context),
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
}

impl Hasher {
    fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Md5(context) => context.consume(bytes),
            Hasher::Sha1(hasher) => hasher.update(bytes),
            Hasher::Sha256(hasher) => hasher.update(bytes),
        }
    }

    fn hex(self) -> String {
        let bytes: Vec<u8> = match self {
            Hasher::Md5(context) => context.finalize().0.to_vec(),
            Hasher::Sha1(hasher) => hasher.finalize().to_vec(),
            Hasher::Sha256(hasher) => hasher.finalize().to_vec(),
        };
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// A file on the web: where it is, what it is called in the cache, and how to verify it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteFile {
    /// The original URL.
    pub url: String,
    /// Its name in the cache folder and on a mirror.
    pub file_name: String,
    /// Its published digest.
    pub checksum: Checksum,
    /// Its size in bytes, when known: a transfer announcing or sending more is stopped.
    pub size: Option<u64>,
}

impl RemoteFile {
    /// Where to fetch it: `$ALEXNET_BURN_MIRROR/<file name>` when that is set, else its URL.
    pub fn source_url(&self) -> String {
        match std::env::var(MIRROR_ENV) {
            Ok(base) if !base.trim().is_empty() => {
                format!("{}/{}", base.trim().trim_end_matches('/'), self.file_name)
            }
            _ => self.url.clone(),
        }
    }

    /// Whether the file at `path` is this one (size, when known, and digest).
    pub fn verify(&self, path: &Path) -> Result<(), String> {
        let len = std::fs::metadata(path).map_err(|e| e.to_string())?.len();
        if let Some(size) = self.size.filter(|&size| size != len) {
            return Err(format!("{len} bytes where {size} were expected"));
        }
        let actual = self.checksum.digest_file(path).map_err(|e| e.to_string())?;
        if self.checksum.matches(&actual) {
            Ok(())
        } else {
            Err(format!(
                "{} {actual} where {} was expected",
                self.checksum.algorithm(),
                self.checksum.expected()
            ))
        }
    }
}

/// The cache folder: `$ALEXNET_BURN_CACHE`, else the platform cache folder's `alexnet-burn`.
pub fn cache_dir() -> Result<PathBuf, AlexNetError> {
    match std::env::var_os(CACHE_ENV) {
        Some(dir) if !dir.is_empty() => Ok(PathBuf::from(dir)),
        _ => dirs::cache_dir()
            .map(|dir| dir.join("alexnet-burn"))
            .ok_or_else(|| {
                AlexNetError::Download(format!(
                    "no cache folder on this platform: set {CACHE_ENV} to a folder"
                ))
            }),
    }
}

/// Files this process has verified (or downloaded), with the length and modification time
/// they had then: fetching an unchanged file again skips hashing it a second time
/// (alexnet-train fetches `--pretrained` before it makes the run folder, then to load it).
static VERIFIED: Mutex<Vec<(PathBuf, RemoteFile, u64, SystemTime)>> = Mutex::new(Vec::new());

/// A file's length and modification time, if it can be read.
fn stamp(path: &Path) -> Option<(u64, SystemTime)> {
    let metadata = std::fs::metadata(path).ok()?;
    Some((metadata.len(), metadata.modified().ok()?))
}

fn verified_before(path: &Path, file: &RemoteFile) -> bool {
    let Some((len, modified)) = stamp(path) else {
        return false;
    };
    let verified = VERIFIED.lock().unwrap_or_else(|e| e.into_inner());
    verified
        .iter()
        .any(|(p, f, l, m)| p == path && f == file && *l == len && *m == modified)
}

fn remember_verified(path: &Path, file: &RemoteFile) {
    if let Some((len, modified)) = stamp(path) {
        let mut verified = VERIFIED.lock().unwrap_or_else(|e| e.into_inner());
        verified.retain(|(p, ..)| p != path);
        verified.push((path.to_path_buf(), file.clone(), len, modified));
    }
}

/// The file in `dir`, downloaded first if it is not there (see the module docs): verified
/// before it is returned, whether it was cached or fetched (once per process while it stays
/// unchanged: same length and modification time). With `progress`, a download is
/// announced on stderr (`downloading <url> into <dir>`) and drawn as a progress bar.
pub fn fetch(file: &RemoteFile, dir: &Path, progress: bool) -> Result<PathBuf, AlexNetError> {
    let path = dir.join(&file.file_name);
    if verified_before(&path, file) {
        return Ok(path);
    }
    if path.exists() {
        match file.verify(&path) {
            Ok(()) => {
                remember_verified(&path, file);
                return Ok(path);
            }
            Err(why) => {
                eprintln!(
                    "warning: {}: {why}; removing it and downloading again",
                    path.display()
                );
                std::fs::remove_file(&path).map_err(|e| {
                    AlexNetError::Download(format!("cannot remove {}: {e}", path.display()))
                })?;
            }
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| {
        AlexNetError::Download(format!("cannot create the folder {}: {e}", dir.display()))
    })?;
    let url = file.source_url();
    if progress {
        eprintln!("downloading {url} into {}", dir.display());
    }
    download(&url, &path, &file.checksum, file.size, progress)?;
    remember_verified(&path, file);
    Ok(path)
}

/// Downloads `url` to `dest`, verifying `checksum` (and `size`, when given) before the file
/// appears under its name. Errors are one line naming the URL, and for transfer failures the
/// path where the file can be placed by hand.
pub fn download(
    url: &str,
    dest: &Path,
    checksum: &Checksum,
    size: Option<u64>,
    progress: bool,
) -> Result<(), AlexNetError> {
    let fail = |why: String| AlexNetError::Download(format!("cannot download {url}: {why}"));
    let by_hand = |why: String| {
        fail(format!(
            "{why}; without network access, place the file ({} {}) at {}",
            checksum.algorithm(),
            checksum.expected(),
            dest.display()
        ))
    };
    let dir = match dest.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = dest
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .ok_or_else(|| fail(format!("{} is not a file path", dest.display())))?;

    let agent = ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(30))
        .timeout_read(Duration::from_secs(60))
        .build();
    let response = agent.get(url).call().map_err(|e| match e {
        ureq::Error::Status(code, response) => {
            by_hand(format!("HTTP {code} {}", response.status_text()))
        }
        ureq::Error::Transport(transport) => by_hand(transport_reason(&transport)),
    })?;
    let announced = response
        .header("Content-Length")
        .and_then(|v| v.trim().parse::<u64>().ok());
    if let (Some(announced), Some(size)) = (announced, size) {
        if announced != size {
            return Err(fail(format!(
                "the server announces {announced} bytes, the file has {size}"
            )));
        }
    }
    let expected_len = announced.or(size);

    // Dropped (and so deleted) unless persisted under `dest`.
    let mut part = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".part")
        .tempfile_in(dir)
        .map_err(|e| fail(format!("cannot write in {}: {e}", dir.display())))?;
    let bar = progress_bar(progress, expected_len, &name);
    let mut reader = response.into_reader();
    let mut hasher = checksum.hasher();
    let mut buffer = vec![0u8; 64 * 1024];
    let mut received: u64 = 0;
    loop {
        let n = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // ureq reports a body shorter than its Content-Length this way.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(e) => {
                bar.abandon();
                return Err(by_hand(format!(
                    "transfer failed after {received} bytes: {e}"
                )));
            }
        };
        received += n as u64;
        if let Some(size) = size.filter(|&size| received > size) {
            bar.abandon();
            return Err(fail(format!(
                "the server sends more than the file's {size} bytes"
            )));
        }
        hasher.update(&buffer[..n]);
        part.write_all(&buffer[..n])
            .map_err(|e| fail(format!("cannot write {}: {e}", part.path().display())))?;
        bar.inc(n as u64);
    }
    bar.finish_and_clear();
    if let Some(len) = expected_len.filter(|&len| len != received) {
        return Err(by_hand(format!(
            "truncated transfer: received {received} of {len} bytes"
        )));
    }
    let actual = hasher.hex();
    if !checksum.matches(&actual) {
        return Err(fail(format!(
            "{} checksum mismatch: expected {}, got {actual} (download deleted)",
            checksum.algorithm(),
            checksum.expected()
        )));
    }
    part.as_file_mut()
        .sync_all()
        .map_err(|e| fail(format!("cannot write {}: {e}", part.path().display())))?;
    part.persist(dest).map_err(|e| {
        fail(format!(
            "cannot rename into {}: {}",
            dest.display(),
            e.error
        ))
    })?;
    Ok(())
}

/// A transport error as one line: its kind, message and cause.
fn transport_reason(transport: &ureq::Transport) -> String {
    let mut reason = transport.kind().to_string();
    if let Some(message) = transport.message() {
        reason = format!("{reason}: {message}");
    }
    if let Some(source) = std::error::Error::source(transport) {
        reason = format!("{reason}: {source}");
    }
    reason.replace(['\n', '\r'], " ")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_match_published_test_vectors() {
        // RFC 1321, FIPS 180 ("abc").
        let md5 = Checksum::Md5("900150983cd24fb0d6963f7d28e17f72".into());
        assert_eq!(md5.digest(b"abc"), md5.expected());
        let sha1 = Checksum::Sha1("a9993e364706816aba3e25717850c26c9cd0d89d".into());
        assert_eq!(sha1.digest(b"abc"), sha1.expected());
        let sha256 = Checksum::Sha256(
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".into(),
        );
        assert_eq!(sha256.digest(b"abc"), sha256.expected());
    }

    #[test]
    fn sha256_prefixes_of_eight_or_more_digits_match() {
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert!(Checksum::Sha256("BA7816BF".into()).matches(abc));
        assert!(!Checksum::Sha256("ba7816bf8f01cfeb".into()).matches(abc));
        // Shorter than 8 digits is not a usable prefix: compared whole, so it never matches.
        assert!(!Checksum::Sha256("ba78".into()).matches(abc));
        // MD5 and SHA-1 are always compared whole.
        assert!(!Checksum::Md5("9001".into()).matches("900150983cd24fb0d6963f7d28e17f72"));
    }
}
