//! Which format a weight file is in, from its first bytes.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use super::{file_error, WeightFormat};
use crate::error::AlexNetError;
use crate::files::{describe_kind, open_regular_file};

/// The pickled magic number that starts a legacy PyTorch file:
/// `PROTO 2, LONG1 10 bytes 0x1950a86a20f9469cfc6c, STOP`.
const LEGACY_MAGIC: [u8; 15] = [
    0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e,
];

/// The file's format, decided by its first bytes (the extension is not consulted).
pub fn detect_format(path: &Path) -> Result<WeightFormat, AlexNetError> {
    // A FIFO, device or directory is refused before anything is read.
    let metadata = std::fs::metadata(path).map_err(|e| file_error(path, e))?;
    if !metadata.is_file() {
        let kind = describe_kind(&metadata);
        return Err(file_error(path, format!("is {kind}, not a regular file")));
    }
    let (mut file, len) = open_regular_file(path)?;
    if len == 0 {
        return Err(file_error(path, "empty file"));
    }
    let mut head = [0u8; 16];
    let n = read_up_to(&mut file, &mut head).map_err(|e| file_error(path, e))?;
    let head = &head[..n];
    if head.starts_with(b"PK\x03\x04") {
        return Ok(WeightFormat::PytorchZip);
    }
    if head.starts_with(&LEGACY_MAGIC) {
        return Ok(WeightFormat::PytorchLegacy);
    }
    if head.starts_with(b"NRUB") {
        return Ok(WeightFormat::Burn);
    }
    if n >= 9 {
        let header_len = u64::from_le_bytes(head[..8].try_into().expect("8 bytes"));
        if head[8] == b'{' && header_len.checked_add(8).is_some_and(|end| end <= len) {
            return Ok(WeightFormat::Safetensors);
        }
    }
    Err(file_error(
        path,
        "not a weight file this program reads (PyTorch .pth zip or legacy, safetensors, \
         Burnpack), or a truncated one",
    ))
}

fn read_up_to(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}
