//! Reading files a user names: regular files only, within a size limit.
//!
//! A FIFO, a device such as `/dev/zero`, a socket or a directory where a file is expected is
//! refused before a byte is read, with one line naming the path and what it is (reading a
//! FIFO would wait forever for a writer; reading `/dev/zero` would never end). The check runs
//! twice: on the path (following symbolic links) before opening, and on the opened handle, so
//! a file swapped for a FIFO in between is still refused; on unix the file is opened with
//! `O_NONBLOCK`, so even that swap cannot make the open itself wait.
//!
//! ```
//! use alexnet_model::files::{read_regular_file, MAX_TEXT_BYTES};
//!
//! let err = read_regular_file(std::env::temp_dir().as_ref(), MAX_TEXT_BYTES).unwrap_err();
//! assert!(err.to_string().contains("is a directory, not a regular file"), "{err}");
//! ```

use std::fs::{File, Metadata};
use std::io::Read;
use std::path::Path;

use crate::error::AlexNetError;

/// The largest text file read (label files, JSON configurations): 16 MiB. ImageNet's label
/// file is 40 KB.
pub const MAX_TEXT_BYTES: u64 = 16 << 20;

/// The largest image file read: 256 MiB (a 50-megapixel photo is 10–30 MB as JPEG, 150 MB
/// as uncompressed TIFF).
pub const MAX_IMAGE_BYTES: u64 = 256 << 20;

/// What a file system entry is, in words ("a directory", "a FIFO (named pipe)", …).
pub fn describe_kind(metadata: &Metadata) -> &'static str {
    let kind = metadata.file_type();
    if kind.is_file() {
        return "a regular file";
    }
    if kind.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if kind.is_char_device() {
            return "a character device";
        }
        if kind.is_block_device() {
            return "a block device";
        }
        if kind.is_socket() {
            return "a socket";
        }
    }
    "not a regular file"
}

fn not_regular(path: &Path, metadata: &Metadata) -> AlexNetError {
    AlexNetError::Input(format!(
        "{}: is {}, not a regular file",
        path.display(),
        describe_kind(metadata)
    ))
}

fn io_error(path: &Path, e: std::io::Error) -> AlexNetError {
    AlexNetError::Input(format!("{}: cannot read: {e}", path.display()))
}

/// Refuses `path` unless it is a regular file (symbolic links are followed): a FIFO, device,
/// socket or directory is an [`AlexNetError::Input`] naming the path and what it is, as is a
/// path that cannot be examined. Reads nothing.
pub fn check_regular_file(path: &Path) -> Result<(), AlexNetError> {
    let metadata = std::fs::metadata(path).map_err(|e| io_error(path, e))?;
    if metadata.is_file() {
        Ok(())
    } else {
        Err(not_regular(path, &metadata))
    }
}

/// Opens `path` for reading after [`check_regular_file`], and checks the opened handle again
/// (no window in which the path could be swapped for a FIFO or device). Returns the file and
/// its length.
pub fn open_regular_file(path: &Path) -> Result<(File, u64), AlexNetError> {
    check_regular_file(path)?;
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Opening a FIFO without a writer would block; O_NONBLOCK makes it return at once
        // (and does nothing to reads of a regular file).
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path).map_err(|e| io_error(path, e))?;
    let metadata = file.metadata().map_err(|e| io_error(path, e))?;
    if !metadata.is_file() {
        return Err(not_regular(path, &metadata));
    }
    Ok((file, metadata.len()))
}

/// A size in words: "16 MiB", "256 MiB", "1.5 GiB", "300 bytes".
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if bytes >= size {
            let value = bytes as f64 / size as f64;
            return if bytes.is_multiple_of(size) {
                format!("{} {unit}", bytes / size)
            } else {
                format!("{value:.1} {unit}")
            };
        }
    }
    format!("{bytes} bytes")
}

/// Reads a whole regular file of at most `max_bytes` (see [`open_regular_file`]). A larger
/// file is an error naming the path, its size and the limit — found from its length before
/// reading, and again while reading (a file that grows is cut at the limit, not followed).
pub fn read_regular_file(path: &Path, max_bytes: u64) -> Result<Vec<u8>, AlexNetError> {
    let (file, len) = open_regular_file(path)?;
    let too_large = |size: String| {
        AlexNetError::Input(format!(
            "{}: {size} is larger than the limit of {} for this file",
            path.display(),
            format_bytes(max_bytes)
        ))
    };
    if len > max_bytes {
        return Err(too_large(format_bytes(len)));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| io_error(path, e))?;
    if bytes.len() as u64 > max_bytes {
        return Err(too_large("the file (still growing)".into()));
    }
    Ok(bytes)
}

/// [`read_regular_file`] for UTF-8 text (label files, JSON configurations) of at most
/// `max_bytes` (usually [`MAX_TEXT_BYTES`]).
pub fn read_text_file(path: &Path, max_bytes: u64) -> Result<String, AlexNetError> {
    let bytes = read_regular_file(path, max_bytes)?;
    String::from_utf8(bytes).map_err(|e| {
        AlexNetError::Input(format!(
            "{}: not UTF-8 text (invalid byte at offset {})",
            path.display(),
            e.utf8_error().valid_up_to()
        ))
    })
}

/// `text` with control characters escaped, for text output that reaches a terminal: a file
/// name's newline becomes `\n` (one record stays one line), an ANSI escape `\u{1b}` (it
/// cannot recolour or rewrite the terminal), and the bidirectional-override characters
/// (U+202A–U+202E, U+2066–U+2069) `\u{202e}` and so on. Everything else is unchanged.
pub fn escape_control(text: &str) -> std::borrow::Cow<'_, str> {
    let needs =
        |c: char| c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
    if !text.chars().any(needs) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if needs(c) {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("alexnet-files-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn regular_files_are_read_within_the_limit() {
        let dir = temp_dir("limit");
        let path = dir.join("a.txt");
        std::fs::write(&path, b"hello").unwrap();
        assert_eq!(read_regular_file(&path, 5).unwrap(), b"hello");
        let err = read_regular_file(&path, 4).unwrap_err().to_string();
        assert!(
            err.contains("a.txt: 5 bytes is larger than the limit of 4 bytes"),
            "{err}"
        );
        std::fs::write(&path, [0xff, 0xfe]).unwrap();
        let err = read_text_file(&path, 10).unwrap_err().to_string();
        assert!(err.contains("not UTF-8"), "{err}");
        let err = read_regular_file(&dir, 10).unwrap_err().to_string();
        assert!(err.contains("is a directory, not a regular file"), "{err}");
        let err = read_regular_file(&dir.join("missing"), 10)
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing: cannot read"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A FIFO is refused at once (reading it would wait for a writer forever), also through
    /// a symbolic link; /dev/zero is refused as a device (reading it would never end).
    #[cfg(unix)]
    #[test]
    fn fifo_and_devices_are_refused_without_reading() {
        let dir = temp_dir("fifo");
        let fifo = dir.join("pipe.jpg");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let start = std::time::Instant::now();
        let err = read_regular_file(&fifo, MAX_IMAGE_BYTES)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("pipe.jpg: is a FIFO (named pipe), not a regular file"),
            "{err}"
        );
        let link = dir.join("link.txt");
        std::os::unix::fs::symlink(&fifo, &link).unwrap();
        let err = read_text_file(&link, MAX_TEXT_BYTES)
            .unwrap_err()
            .to_string();
        assert!(err.contains("link.txt: is a FIFO"), "{err}");
        assert!(start.elapsed().as_secs() < 5);
        let err = check_regular_file(Path::new("/dev/zero"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "invalid input: /dev/zero: is a character device, not a regular file"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape_control("plain é.jpg"), "plain é.jpg");
        assert_eq!(
            escape_control("a\u{1b}[31mred\nb\t\u{202e}gpj.exe"),
            "a\\u{1b}[31mred\\nb\\t\\u{202e}gpj.exe"
        );
    }

    #[test]
    fn sizes_in_words() {
        assert_eq!(format_bytes(16 << 20), "16 MiB");
        assert_eq!(format_bytes(3 << 29), "1.5 GiB");
        assert_eq!(format_bytes(300), "300 bytes");
    }
}
