//! PyTorch `.pth` files, zip (`torch.save` since 1.6) and legacy
//! (`_use_new_zipfile_serialization=False`), read the way `torch.load(weights_only=True)`
//! reads them, with every size checked before it is allocated.
//!
//! The pickle is interpreted by [`super::pickle`] (allow-list, bounded); each tensor it
//! describes is a strided view of a storage, materialised exactly as PyTorch does: size,
//! stride and storage offset honoured (transposed, sliced, expanded and shared-storage
//! tensors), any view that reaches past its storage refused with its key named.
//!
//! Why not burn-store's reader: burn-store 0.21 ignores strides (a transposed tensor loads
//! wrong without a word), fills missing storages with zeros, and its pickle reader has no
//! bounds on nesting, memo or memory.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::rc::Rc;

use zip::ZipArchive;

use super::pickle::{read_pickle, Limits, PickleError, StorageRef, TensorView, Value};
use super::WeightFormat;
use crate::error::AlexNetError;
use crate::tensor::HostTensor;
use crate::weights::{decode, StateDict};

/// Largest pickle read (a real AlexNet state dict's is about 2 kB).
pub const MAX_PICKLE_BYTES: u64 = 64 << 20;
/// Most storage bytes one file may hold (torchvision's AlexNet: 244 MB in f32, 489 MB in f64).
pub const MAX_STORAGE_BYTES: u64 = 1 << 30;
/// Most elements all tensors of one file may have together, once materialised (AlexNet has
/// 61.1 million parameters; a training checkpoint with momentum buffers twice that).
pub const MAX_TENSOR_ELEMENTS: u64 = 1 << 28;

fn weights_error(message: impl Into<String>) -> AlexNetError {
    AlexNetError::Weights(message.into())
}

/// Reads a `.pth` file's tensors (any nested dict flattened with `.`), `format` being
/// [`WeightFormat::PytorchZip`] or [`WeightFormat::PytorchLegacy`].
pub(super) fn read_pytorch(path: &Path, format: WeightFormat) -> Result<StateDict, AlexNetError> {
    match format {
        WeightFormat::PytorchZip => read_zip(path),
        _ => read_legacy(path),
    }
    .map_err(|e| e.in_file(path))
}

/// Where a storage's little-endian bytes are.
trait Storages {
    /// The storage's bytes (at least `storage.bytes()` of them).
    fn bytes(&mut self, storage: &StorageRef) -> Result<Rc<[u8]>, AlexNetError>;
}

/// A zip archive: `<dir>/data.pkl`, the storages under `<dir>/data/<key>`.
fn read_zip(path: &Path) -> Result<StateDict, AlexNetError> {
    let corrupt =
        |e: zip::result::ZipError| weights_error(format!("truncated or corrupt zip archive ({e})"));
    let file = File::open(path).map_err(|e| weights_error(e.to_string()))?;
    let mut archive = ZipArchive::new(file).map_err(corrupt)?;
    // Entry names are bytes (they need not be UTF-8).
    let mut entries: HashMap<Vec<u8>, usize> = HashMap::new();
    for index in 0..archive.len() {
        let entry = archive.by_index_raw(index).map_err(corrupt)?;
        entries.insert(entry.name_raw().to_vec(), index);
    }
    let mut pickles = entries
        .keys()
        .filter(|name| name.ends_with(b"/data.pkl") || name.as_slice() == b"data.pkl");
    let (Some(pickle_name), None) = (pickles.next().cloned(), pickles.next()) else {
        return Err(weights_error(
            "a zip archive without exactly one data.pkl: not a PyTorch file",
        ));
    };
    let dir = pickle_name[..pickle_name.len() - b"data.pkl".len()].to_vec();
    if let Some(&index) = entries.get(&[&dir[..], b"byteorder"].concat()) {
        let order = read_entry(&mut archive, index, 16)?;
        if order != b"little" {
            return Err(weights_error(format!(
                "stored in `{}` byte order; only little-endian files are read",
                String::from_utf8_lossy(&order)
            )));
        }
    }
    let pickle = read_entry(&mut archive, entries[&pickle_name], MAX_PICKLE_BYTES)?;
    let shown = String::from_utf8_lossy(&pickle_name).into_owned();
    let (root, end) =
        read_pickle(&pickle, 0, Limits::DEFAULT).map_err(|e| e.in_pickle(&format!("{shown}: ")))?;
    if end != pickle.len() {
        return Err(weights_error(format!(
            "{shown}: bytes after the pickle's STOP"
        )));
    }
    let mut storages = ZipStorages {
        archive,
        entries,
        dir,
        read: 0,
    };
    materialise(&root, &mut storages)
}

struct ZipStorages {
    archive: ZipArchive<File>,
    entries: HashMap<Vec<u8>, usize>,
    dir: Vec<u8>,
    /// Storage bytes read so far.
    read: u64,
}

impl Storages for ZipStorages {
    fn bytes(&mut self, storage: &StorageRef) -> Result<Rc<[u8]>, AlexNetError> {
        let name = [&self.dir[..], b"data/", storage.key.as_bytes()].concat();
        let shown = String::from_utf8_lossy(&name).into_owned();
        let index = *self.entries.get(&name).ok_or_else(|| {
            weights_error(format!(
                "storage `{shown}` is missing (truncated or corrupt file)"
            ))
        })?;
        let needed = storage.bytes();
        self.read = self.read.saturating_add(needed);
        if self.read > MAX_STORAGE_BYTES {
            return Err(weights_error(format!(
                "the storages hold more than the reader's limit of {MAX_STORAGE_BYTES} bytes"
            )));
        }
        let bytes = read_entry(&mut self.archive, index, MAX_STORAGE_BYTES)?;
        if (bytes.len() as u64) < needed {
            return Err(weights_error(format!(
                "storage `{shown}` holds {} bytes, its {} elements need {needed} (truncated or \
                 corrupt file)",
                bytes.len(),
                storage.numel
            )));
        }
        Ok(bytes.into())
    }
}

/// An entry's bytes, refusing entries (declared or actual) larger than `limit` before
/// inflating past it.
fn read_entry(
    archive: &mut ZipArchive<File>,
    index: usize,
    limit: u64,
) -> Result<Vec<u8>, AlexNetError> {
    let mut entry = archive
        .by_index(index)
        .map_err(|e| weights_error(format!("truncated or corrupt zip archive ({e})")))?;
    let shown = String::from_utf8_lossy(entry.name_raw()).into_owned();
    let too_large = |size: u64| {
        weights_error(format!(
            "{shown}: {size} bytes, more than the reader's limit of {limit}"
        ))
    };
    let declared = entry.size();
    if declared > limit {
        return Err(too_large(declared));
    }
    let mut bytes = Vec::with_capacity(declared as usize);
    entry
        .by_ref()
        .take(declared + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| weights_error(format!("{shown}: truncated or corrupt ({e})")))?;
    if bytes.len() as u64 != declared {
        return Err(weights_error(format!(
            "{shown}: {} bytes where the archive declares {declared} (corrupt file)",
            bytes.len()
        )));
    }
    Ok(bytes)
}

/// A legacy file: magic number, protocol version, system info, the state dict and the
/// storage keys as five pickles; then each storage as an 8-byte element count and its values.
fn read_legacy(path: &Path) -> Result<StateDict, AlexNetError> {
    let file = File::open(path).map_err(|e| weights_error(e.to_string()))?;
    let limit = MAX_STORAGE_BYTES + MAX_PICKLE_BYTES;
    let mut data = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut data)
        .map_err(|e| weights_error(e.to_string()))?;
    if data.len() as u64 > limit {
        return Err(weights_error(format!(
            "a legacy PyTorch file larger than the reader's limit of {limit} bytes"
        )));
    }
    let mut pos = 0;
    let mut values = Vec::new();
    for _ in 0..5 {
        let (value, end) =
            read_pickle(&data, pos, Limits::DEFAULT).map_err(|e: PickleError| e.in_pickle(""))?;
        values.push(value);
        pos = end;
    }
    if let Value::Dict(info) = &values[2] {
        let little = Value::pairs(info).find_map(|(key, value)| match (key, value) {
            (Value::Str(key), Value::Bool(little)) if &**key == "little_endian" => Some(*little),
            _ => None,
        });
        if little == Some(false) {
            return Err(weights_error(
                "a big-endian legacy file; only little-endian files are read",
            ));
        }
    }
    let Value::List(keys) = &values[4] else {
        return Err(weights_error("malformed legacy file (no storage key list)"));
    };
    // Each storage: an 8-byte element count, then its bytes, in the key list's order.
    let sizes = storage_sizes(&values[3]);
    let mut offsets = HashMap::new();
    for key in &keys.values {
        let Value::Str(key) = key else {
            return Err(weights_error(
                "malformed legacy file (a storage key is not a string)",
            ));
        };
        let count = data
            .get(pos..pos + 8)
            .ok_or_else(|| weights_error("truncated legacy file (a storage is missing)"))?;
        let count = u64::from_le_bytes(count.try_into().expect("8 bytes"));
        offsets.insert(key.to_string(), (pos + 8, count));
        pos += 8;
        // The element size comes from the pickle; the count's bytes are found when read.
        let size = sizes.get(&**key).copied().unwrap_or(1);
        let bytes = count
            .checked_mul(size)
            .and_then(|b| usize::try_from(b).ok())
            .and_then(|b| pos.checked_add(b))
            .filter(|&end| end <= data.len())
            .ok_or_else(|| weights_error("truncated legacy file (a storage is cut short)"))?;
        pos = bytes;
    }
    if pos != data.len() {
        return Err(weights_error(format!(
            "{} bytes after the last storage (corrupt file)",
            data.len() - pos
        )));
    }
    let mut storages = LegacyStorages { data, offsets };
    materialise(&values[3], &mut storages)
}

/// Element size of every storage the value refers to, by key.
fn storage_sizes(root: &Value) -> HashMap<String, u64> {
    let mut sizes = HashMap::new();
    let mut todo = vec![root];
    while let Some(value) = todo.pop() {
        match value {
            Value::Tensor(view) => {
                let storage = &view.storage;
                sizes.insert(storage.key.clone(), storage.element_bytes() as u64);
            }
            Value::Storage(storage) => {
                sizes.insert(storage.key.clone(), storage.element_bytes() as u64);
            }
            Value::Dict(items) | Value::List(items) | Value::Tuple(items) => {
                todo.extend(items.values.iter())
            }
            _ => {}
        }
    }
    sizes
}

struct LegacyStorages {
    data: Vec<u8>,
    /// Key → (offset of the first byte, element count).
    offsets: HashMap<String, (usize, u64)>,
}

impl Storages for LegacyStorages {
    fn bytes(&mut self, storage: &StorageRef) -> Result<Rc<[u8]>, AlexNetError> {
        let &(start, count) = self.offsets.get(&storage.key).ok_or_else(|| {
            weights_error(format!(
                "storage `{}` is missing (corrupt file)",
                storage.key
            ))
        })?;
        if count != storage.numel {
            return Err(weights_error(format!(
                "storage `{}` holds {count} elements, the pickle declares {} (corrupt file)",
                storage.key, storage.numel
            )));
        }
        let end = start + storage.bytes() as usize;
        Ok(self.data[start..end].into())
    }
}

/// Every tensor under `root`'s (nested) dicts, keys joined with `.`, materialised from its
/// storage.
fn materialise(root: &Value, storages: &mut dyn Storages) -> Result<StateDict, AlexNetError> {
    let mut views = Vec::new();
    collect_tensors(root, String::new(), &mut views);
    let mut total: u64 = 0;
    let mut cache: HashMap<String, Rc<[u8]>> = HashMap::new();
    let mut dict = StateDict::new();
    for (key, view) in views {
        let numel = check_view(&view).map_err(|e| weights_error(format!("`{key}`: {e}")))?;
        total = total.saturating_add(numel);
        if total > MAX_TENSOR_ELEMENTS {
            return Err(weights_error(format!(
                "the tensors hold more than the reader's limit of {MAX_TENSOR_ELEMENTS} elements"
            )));
        }
        let bytes = match cache.get(&view.storage.key) {
            Some(bytes) => bytes.clone(),
            None => {
                let bytes = storages.bytes(&view.storage)?;
                cache.insert(view.storage.key.clone(), bytes.clone());
                bytes
            }
        };
        let values = gather(&view, &bytes)
            .ok_or_else(|| weights_error(format!("`{key}`: unsupported dtype")))?;
        let shape = view.size.iter().map(|&s| s as usize).collect();
        dict.insert(key, HostTensor { shape, values });
    }
    Ok(dict)
}

/// The tensors under nested dicts with string keys (anything else is not part of a state
/// dict and is skipped; the pickle reader bounds the nesting).
fn collect_tensors(value: &Value, prefix: String, out: &mut Vec<(String, Rc<TensorView>)>) {
    match value {
        Value::Tensor(view) => out.push((prefix, view.clone())),
        Value::Dict(items) => {
            for (key, value) in Value::pairs(items) {
                if let Value::Str(key) = key {
                    let key = if prefix.is_empty() {
                        key.to_string()
                    } else {
                        format!("{prefix}.{key}")
                    };
                    collect_tensors(value, key, out);
                }
            }
        }
        _ => {}
    }
}

/// The view's element count, once it is shown to lie inside its storage.
fn check_view(view: &TensorView) -> Result<u64, String> {
    let describe = || {
        format!(
            "a view (offset {}, size {:?}, stride {:?}) of a storage of {} elements",
            view.offset, view.size, view.stride, view.storage.numel
        )
    };
    if view.size.len() != view.stride.len()
        || view.offset < 0
        || view.size.iter().chain(&view.stride).any(|&v| v < 0)
    {
        return Err(format!("{} is malformed", describe()));
    }
    let numel = view
        .size
        .iter()
        .try_fold(1u64, |n, &s| n.checked_mul(s as u64))
        .filter(|&n| n <= MAX_TENSOR_ELEMENTS)
        .ok_or_else(|| {
            format!(
                "size {:?} is more than the reader's limit of {MAX_TENSOR_ELEMENTS} elements",
                view.size
            )
        })?;
    if numel == 0 {
        return Ok(0);
    }
    // The last element the view reaches must lie inside the storage.
    let last =
        view.size
            .iter()
            .zip(&view.stride)
            .try_fold(view.offset as u64, |at, (&size, &stride)| {
                (size as u64 - 1)
                    .checked_mul(stride as u64)
                    .and_then(|step| at.checked_add(step))
            });
    match last {
        Some(last) if last < view.storage.numel => Ok(numel),
        _ => Err(format!("{} does not fit its storage", describe())),
    }
}

/// The view's elements in row-major order, as f32 (`None`: a dtype `decode` lacks).
fn gather(view: &TensorView, bytes: &[u8]) -> Option<Vec<f32>> {
    let element = view.storage.element_bytes();
    let numel: usize = view.size.iter().map(|&s| s as usize).product();
    let contiguous = {
        let mut expected = 1;
        let mut ok = true;
        for (&size, &stride) in view.size.iter().zip(&view.stride).rev() {
            ok &= size == 1 || stride == expected;
            expected *= size;
        }
        ok
    };
    let start = view.offset as usize * element;
    if contiguous {
        return decode(view.storage.dtype, &bytes[start..start + numel * element]);
    }
    let mut raw = Vec::with_capacity(numel * element);
    let mut index = vec![0usize; view.size.len()];
    for _ in 0..numel {
        let at: usize = index
            .iter()
            .zip(&view.stride)
            .map(|(&i, &stride)| i * stride as usize)
            .sum::<usize>()
            + view.offset as usize;
        raw.extend_from_slice(&bytes[at * element..(at + 1) * element]);
        // Next index, last dimension fastest.
        for (dim, i) in index.iter_mut().enumerate().rev() {
            *i += 1;
            if *i < view.size[dim] as usize {
                break;
            }
            *i = 0;
        }
    }
    decode(view.storage.dtype, &raw)
}
