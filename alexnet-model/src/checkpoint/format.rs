//! Which format a weight file is in, from its first bytes.
//!
//! Protobuf has no magic number, and a `.caffemodel` is a bare serialized `NetParameter`, so
//! Caffe files are recognised last, by their first field ([`looks_like_caffe`]); the extension
//! is never consulted, for this format as for the others.

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
    if looks_like_caffe(head, len) {
        return Ok(WeightFormat::Caffe);
    }
    Err(file_error(
        path,
        "not a weight file this program reads (PyTorch .pth zip or legacy, safetensors, \
         Burnpack, Caffe .caffemodel), or a truncated one",
    ))
}

/// Protobuf wire types.
const VARINT: u64 = 0;
const LENGTH_DELIMITED: u64 = 2;

/// Whether `head`, the first bytes of a file of `len` bytes, starts a Caffe file. Caffe
/// writes a message's fields in number order, the net's `name` first, so a `.caffemodel`
/// starts with the length-delimited field `name` (1), V1 `layers` (2), `input` (3) or `layer`
/// (100), whose length must fit in the file. A mean image (a `BlobProto`, legacy `num` (1)
/// then `channels` (2), or `data` (5)) is taken too, so that the Caffe reader can say what
/// it is. A file that starts like this by chance is refused by the reader, with the
/// protobuf decoder's reason.
fn looks_like_caffe(head: &[u8], len: u64) -> bool {
    let Some(((field, wire), rest)) = key(head) else {
        return false;
    };
    match (field, wire) {
        (1 | 2 | 3 | 5 | 100, LENGTH_DELIMITED) => varint(rest).is_some_and(|(n, rest)| {
            let start = (head.len() - rest.len()) as u64;
            start.checked_add(n).is_some_and(|end| end <= len)
        }),
        (1, VARINT) => varint(rest)
            .and_then(|(_, rest)| key(rest))
            .is_some_and(|(key, _)| key == (2, VARINT)),
        _ => false,
    }
}

/// A protobuf field key (field number, wire type) at the start of `bytes`, and what follows.
fn key(bytes: &[u8]) -> Option<((u64, u64), &[u8])> {
    varint(bytes).map(|(key, rest)| ((key >> 3, key & 7), rest))
}

/// A protobuf varint at the start of `bytes`, and what follows (`None` if it does not end
/// within `bytes` or its 10 bytes).
fn varint(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let mut value = 0u64;
    for (i, &byte) in bytes.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            return Some((value, &bytes[i + 1..]));
        }
    }
    None
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
