//! PyTorch `.pth` files, zip (`torch.save` since 1.6) and legacy: checked with the pickle
//! scanner ([`super::pickle`]), then read with burn-store.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::Read;
use std::panic::catch_unwind;
use std::path::Path;

use burn_store::pytorch::PytorchReader;
use zip::{CompressionMethod, ZipArchive};

use super::pickle::{scan_pickle, PickleError, StorageRef};
use super::{file_error, host_tensor, WeightFormat};
use crate::error::AlexNetError;
use crate::weights::StateDict;

/// Largest pickle read from a zip archive (a real AlexNet state dict's is about 2 kB).
const MAX_PICKLE_BYTES: u64 = 1 << 30;

/// Reads a `.pth` file (already checked by [`check_pickles`]) with burn-store.
pub(super) fn read_pytorch(path: &Path) -> Result<StateDict, AlexNetError> {
    let reader = catch_unwind(|| PytorchReader::new(path))
        .map_err(|_| file_error(path, "corrupt PyTorch file (the reader failed)"))?
        .map_err(|e| file_error(path, e))?;
    let mut dict = StateDict::new();
    for (name, snapshot) in reader.tensors() {
        let data = snapshot
            .to_data()
            .map_err(|e| file_error(path, format!("`{name}`: {e:?} (truncated file?)")))?;
        let tensor = host_tensor(name, data).map_err(|e| file_error(path, e))?;
        dict.insert(name.clone(), tensor);
    }
    Ok(dict)
}

/// Checks every pickle of a `.pth` file ([`super::pickle`]), and that the storages the
/// pickle refers to are all there: burn-store 0.21 fills missing or short storages with zeros
/// instead of failing.
pub(super) fn check_pickles(path: &Path, format: WeightFormat) -> Result<(), AlexNetError> {
    match format {
        WeightFormat::PytorchZip => check_zip(path),
        _ => check_legacy(path),
    }
    .map_err(|e| e.in_file(path))
}

/// A zip archive: every `…data.pkl` is scanned and its storages `…data/<key>` must hold the
/// bytes the tensors need. Entry names are compared as bytes (they need not be UTF-8).
fn check_zip(path: &Path) -> Result<(), AlexNetError> {
    let corrupt = |e: zip::result::ZipError| {
        AlexNetError::Weights(format!("truncated or corrupt zip archive ({e})"))
    };
    let file = File::open(path).map_err(|e| AlexNetError::Weights(e.to_string()))?;
    let mut archive = ZipArchive::new(file).map_err(corrupt)?;
    let mut sizes: HashMap<Vec<u8>, u64> = HashMap::new();
    let mut pickles: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for index in 0..archive.len() {
        let mut entry = archive.by_index_raw(index).map_err(corrupt)?;
        let name = entry.name_raw().to_vec();
        sizes.insert(name.clone(), entry.size());
        if !name.ends_with(b".pkl") {
            continue;
        }
        let shown = String::from_utf8_lossy(&name).into_owned();
        if entry.compression() != CompressionMethod::Stored {
            return Err(AlexNetError::UnsafePickle(format!(
                "{shown} is compressed (torch.save stores it)"
            )));
        }
        if entry.size() > MAX_PICKLE_BYTES {
            return Err(AlexNetError::Weights(format!(
                "{shown}: a {} byte pickle, more than the {MAX_PICKLE_BYTES} this reader takes",
                entry.size()
            )));
        }
        let mut bytes = Vec::new();
        entry
            .by_ref()
            .take(MAX_PICKLE_BYTES)
            .read_to_end(&mut bytes)
            .map_err(|e| AlexNetError::Weights(format!("{shown}: truncated or corrupt ({e})")))?;
        pickles.push((name, bytes));
    }
    if !pickles.iter().any(|(name, _)| name.ends_with(b"data.pkl")) {
        return Err(AlexNetError::Weights(
            "a zip archive without data.pkl: not a PyTorch file".into(),
        ));
    }
    for (name, bytes) in &pickles {
        let shown = String::from_utf8_lossy(name);
        let context = format!("{shown}: ");
        let (end, storages) = scan_pickle(bytes, 0).map_err(|e| e.in_pickle(&context))?;
        if end != bytes.len() {
            return Err(AlexNetError::Weights(format!(
                "{shown}: bytes after the pickle's STOP"
            )));
        }
        let dir = name.strip_suffix(b"data.pkl").unwrap_or_default();
        for storage in storages {
            let entry = [dir, b"data/", storage.key.as_bytes()].concat();
            let size = sizes.get(&entry).copied().unwrap_or(0);
            if size < storage.bytes {
                return Err(AlexNetError::Weights(format!(
                    "storage `{}` holds {size} bytes, the tensors need {} (truncated or corrupt \
                     file)",
                    String::from_utf8_lossy(&entry),
                    storage.bytes
                )));
            }
        }
    }
    Ok(())
}

/// A legacy file: magic number, protocol version, system info, the state dict and the
/// storage keys as five pickles; then each storage as an 8-byte element count and its values.
fn check_legacy(path: &Path) -> Result<(), AlexNetError> {
    let bytes = std::fs::read(path).map_err(|e| AlexNetError::Weights(e.to_string()))?;
    let mut pos = 0;
    let mut storages: Vec<StorageRef> = Vec::new();
    for _ in 0..5 {
        let (end, found) = scan_pickle(&bytes, pos).map_err(|e: PickleError| e.in_pickle(""))?;
        storages.extend(found);
        pos = end;
    }
    let needed: BTreeMap<String, u64> = storages
        .into_iter()
        .map(|storage| (storage.key, 8 + storage.bytes))
        .collect();
    let needed: u64 = needed.values().sum();
    let present = (bytes.len() - pos) as u64;
    if present != needed {
        return Err(AlexNetError::Weights(format!(
            "the storages need {needed} bytes after the pickles, the file has {present} \
             (truncated or corrupt file)"
        )));
    }
    Ok(())
}
