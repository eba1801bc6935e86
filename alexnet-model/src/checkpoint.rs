//! Weight files: format detection, PyTorch `.pth` (zip and legacy), safetensors and Burn's
//! format, in and out.
//!
//! Reading turns any supported file into a [`StateDict`] in PyTorch's conventions; the
//! configuration comes from the file when it stores one (our safetensors and Burn exports do)
//! and is otherwise inferred from the tensors' shapes ([`infer_config`]).
//!
//! | format | detected by | read | written |
//! |---|---|---|---|
//! | [`PytorchZip`](WeightFormat::PytorchZip) (`torch.save` since 1.6) | `PK\x03\x04` | yes | no |
//! | [`PytorchLegacy`](WeightFormat::PytorchLegacy) (`_use_new_zipfile_serialization=False`) | pickled magic number | yes | no |
//! | [`Safetensors`](WeightFormat::Safetensors) | 8-byte header length, then `{` | yes | Sequential (torchvision-style) keys + config |
//! | [`Burn`](WeightFormat::Burn) (Burnpack) | `NRUB` | yes | Caffe keys + config |
//!
//! Any dtype (f16, bf16, f64, integers) is converted to f32. A `{"state_dict": ...}`,
//! `{"model_state_dict": ...}` or `{"model": ...}` wrapper is unwrapped (other entries such as
//! `"epoch"` are ignored) and a DataParallel `module.` prefix is stripped.
//!
//! **Pickle safety.** A `.pth` file is a Python pickle, which may ask to import and call any
//! Python function. Rust never runs Python, but such a file is refused anyway, before
//! burn-store reads it: every pickle in the file is walked opcode by opcode and each global it
//! names (`GLOBAL`, `INST`, `STACK_GLOBAL`) must be on the tensor-rebuilding allow-list
//! (`collections.OrderedDict`, `torch._utils._rebuild_tensor_v2` and friends,
//! `torch.*Storage`, ...). Unknown opcodes, extension-registry codes and `STACK_GLOBAL`s whose
//! names cannot be resolved are refused too.
//!
//! **Burn format.** A Burnpack file (burn-store's format, `.bpk`) holding the state dict under
//! Caffe names (`conv1.weight` ... `fc8.bias`) in PyTorch's conventions, and the
//! [`AlexNetConfig`] as JSON, both in the file's metadata (`alexnet_config`) and as the U8
//! tensor [`CONFIG_TENSOR`] (burn-store 0.21 offers no public reader for the metadata).
//! Storing the state dict rather than Burn's module tree keeps a file independent of
//! `max_param_bytes`: a model saved with fc6 split into slices (wgpu) loads unsplit on a CPU.
//!
//! Writing `.pth` files is not supported: export safetensors, which PyTorch loads with
//! `safetensors.torch.load_file`.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use burn::config::{config_to_json, Config};
use burn::module::ParamId;
use burn::tensor::backend::Backend;
use burn::tensor::{DType, TensorData};
use burn_store::pytorch::PytorchReader;
use burn_store::{BurnpackStore, BurnpackWriter, ModuleStore, TensorSnapshot};

use crate::config::{AlexNetConfig, LrnPreset, Variant};
use crate::error::AlexNetError;
use crate::model::AlexNet;
use crate::shapes::LayerShapes;
use crate::weights::{key_prefixes, read_safetensors, HostTensor, KeyLayout, StateDict};

/// Metadata key (safetensors and Burnpack) holding the [`AlexNetConfig`] as JSON.
pub const CONFIG_METADATA_KEY: &str = "alexnet_config";
/// Name of the U8 tensor holding the configuration's JSON in a Burn-format file.
pub const CONFIG_TENSOR: &str = "__alexnet_config__";

/// A weight file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightFormat {
    /// `torch.save`'s zip archive (PyTorch 1.6 and later; the default today).
    PytorchZip,
    /// `torch.save(..., _use_new_zipfile_serialization=False)`: a sequence of pickles followed
    /// by the raw storages.
    PytorchLegacy,
    /// Hugging Face safetensors.
    Safetensors,
    /// Burn's Burnpack format (see the module docs for what it holds).
    Burn,
}

impl WeightFormat {
    /// Human-readable name.
    pub fn name(self) -> &'static str {
        match self {
            WeightFormat::PytorchZip => "PyTorch zip",
            WeightFormat::PytorchLegacy => "PyTorch legacy",
            WeightFormat::Safetensors => "safetensors",
            WeightFormat::Burn => "Burn (Burnpack)",
        }
    }
}

/// A weight file as read: its format, its tensors and the configuration it stores, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// The file's format.
    pub format: WeightFormat,
    /// Every tensor, PyTorch conventions, wrapper and `module.` prefix removed.
    pub state_dict: StateDict,
    /// The configuration stored with the weights (our safetensors and Burn exports).
    pub config: Option<AlexNetConfig>,
}

/// One-line error naming the file.
fn file_error(path: &Path, message: impl std::fmt::Display) -> AlexNetError {
    let message = message.to_string().replace(['\n', '\r'], " ");
    AlexNetError::Weights(format!("{}: {message}", path.display()))
}

/// The pickled magic number that starts a legacy PyTorch file:
/// `PROTO 2, LONG1 10 bytes 0x1950a86a20f9469cfc6c, STOP`.
const LEGACY_MAGIC: [u8; 15] = [
    0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e,
];

/// The file's format, decided by its first bytes (the extension is not consulted).
pub fn detect_format(path: &Path) -> Result<WeightFormat, AlexNetError> {
    let mut file = File::open(path).map_err(|e| file_error(path, e))?;
    let len = file.metadata().map_err(|e| file_error(path, e))?.len();
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

/// The output format an extension asks for: `.pth`/`.pt` (PyTorch zip), `.safetensors`,
/// `.bpk`/`.burn` (Burn). `None` for anything else.
pub fn format_from_extension(path: &Path) -> Option<WeightFormat> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    match ext.as_str() {
        "pth" | "pt" => Some(WeightFormat::PytorchZip),
        "safetensors" => Some(WeightFormat::Safetensors),
        "bpk" | "burn" => Some(WeightFormat::Burn),
        _ => None,
    }
}

/// Reads any supported file into a PyTorch-convention state dict (see the module docs).
pub fn read_state_dict(path: &Path) -> Result<StateDict, AlexNetError> {
    read_checkpoint(path).map(|checkpoint| checkpoint.state_dict)
}

/// Reads any supported file: tensors and, where the file stores one, the configuration.
pub fn read_checkpoint(path: &Path) -> Result<Checkpoint, AlexNetError> {
    let format = detect_format(path)?;
    let (dict, config) = match format {
        WeightFormat::PytorchZip | WeightFormat::PytorchLegacy => {
            check_pickles(path, format)?;
            (read_pytorch(path)?, None)
        }
        WeightFormat::Safetensors => {
            let bytes = std::fs::read(path).map_err(|e| file_error(path, e))?;
            let (dict, metadata) = read_safetensors(&bytes).map_err(|e| file_error_of(path, e))?;
            let config = metadata
                .get(CONFIG_METADATA_KEY)
                .map(|json| parse_config(path, json.as_bytes()))
                .transpose()?;
            (dict, config)
        }
        WeightFormat::Burn => read_burnpack(path)?,
    };
    let state_dict = unwrap_state_dict(dict);
    if state_dict.is_empty() {
        return Err(file_error(path, "the file holds no tensors"));
    }
    Ok(Checkpoint {
        format,
        state_dict,
        config,
    })
}

fn parse_config(path: &Path, json: &[u8]) -> Result<AlexNetConfig, AlexNetError> {
    AlexNetConfig::load_binary(json)
        .map_err(|e| file_error(path, format!("unreadable `{CONFIG_METADATA_KEY}`: {e}")))
}

/// Keeps what sits under a `state_dict.` / `model_state_dict.` / `model.` wrapper, then strips
/// a `module.` prefix that every key carries (`nn.DataParallel`).
fn unwrap_state_dict(dict: StateDict) -> StateDict {
    let mut dict = dict;
    for wrapper in ["state_dict.", "model_state_dict.", "model."] {
        if dict.keys().any(|k| k.starts_with(wrapper)) {
            dict = dict
                .into_iter()
                .filter_map(|(k, v)| k.strip_prefix(wrapper).map(|k| (k.to_string(), v)))
                .collect();
            break;
        }
    }
    if !dict.is_empty() && dict.keys().all(|k| k.starts_with("module.")) {
        dict = dict
            .into_iter()
            .map(|(k, v)| (k["module.".len()..].to_string(), v))
            .collect();
    }
    dict
}

/// A tensor's data as f32 on the host, checking that its bytes fit its shape.
fn host_tensor(name: &str, data: TensorData) -> Result<HostTensor, String> {
    let shape = data.shape.to_vec();
    if matches!(data.dtype, DType::QFloat(_)) {
        return Err(format!("`{name}`: quantized tensors are not supported"));
    }
    let count: usize = shape.iter().product();
    if data.bytes.len() != count * data.dtype.size() {
        return Err(format!(
            "`{name}`: {} bytes of data for shape {shape:?} ({:?})",
            data.bytes.len(),
            data.dtype
        ));
    }
    let values = catch_unwind(AssertUnwindSafe(|| data.convert::<f32>().to_vec::<f32>()))
        .map_err(|_| format!("`{name}`: could not convert to f32"))?
        .map_err(|e| format!("`{name}`: {e:?}"))?;
    Ok(HostTensor { shape, values })
}

/// Reads a `.pth` file (already checked by [`check_pickles`]) with burn-store.
fn read_pytorch(path: &Path) -> Result<StateDict, AlexNetError> {
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

fn read_burnpack(path: &Path) -> Result<(StateDict, Option<AlexNetConfig>), AlexNetError> {
    let snapshots = catch_unwind(|| {
        let mut store = BurnpackStore::from_file(path).auto_extension(false);
        store
            .get_all_snapshots()
            .map(|all| all.values().cloned().collect::<Vec<_>>())
    })
    .map_err(|_| file_error(path, "corrupt Burnpack file (the reader failed)"))?
    .map_err(|e| file_error(path, e))?;
    let mut dict = StateDict::new();
    let mut config = None;
    for snapshot in snapshots {
        let name = snapshot.full_path();
        let data = snapshot
            .to_data()
            .map_err(|e| file_error(path, format!("`{name}`: {e:?}")))?;
        if name == CONFIG_TENSOR {
            config = Some(parse_config(path, &data.bytes)?);
            continue;
        }
        let tensor = host_tensor(&name, data).map_err(|e| file_error(path, e))?;
        dict.insert(name, tensor);
    }
    Ok((dict, config))
}

// ---------------------------------------------------------------------------------------------
// Pickle safety

/// Globals a PyTorch state dict may name: the containers and the tensor-rebuilding functions
/// `torch.save` emits, nothing that runs code of its own.
fn allowed_global(module: &str, name: &str) -> bool {
    const STORAGES: [&str; 12] = [
        "FloatStorage",
        "DoubleStorage",
        "HalfStorage",
        "BFloat16Storage",
        "LongStorage",
        "IntStorage",
        "ShortStorage",
        "CharStorage",
        "ByteStorage",
        "BoolStorage",
        "UntypedStorage",
        "TypedStorage",
    ];
    match module {
        "collections" => name == "OrderedDict",
        "torch._utils" => matches!(
            name,
            "_rebuild_tensor"
                | "_rebuild_tensor_v2"
                | "_rebuild_parameter"
                | "_rebuild_parameter_with_state"
        ),
        "torch._tensor" => name == "_rebuild_from_type_v2",
        "torch" => STORAGES.contains(&name) || matches!(name, "Size" | "Tensor"),
        "torch.storage" => matches!(name, "UntypedStorage" | "TypedStorage"),
        "torch.nn.parameter" => name == "Parameter",
        _ => false,
    }
}

/// Checks every pickle of a `.pth` file (see the module docs), and that the storages the
/// pickle refers to are all there: burn-store 0.21 fills missing or short storages with zeros
/// instead of failing.
fn check_pickles(path: &Path, format: WeightFormat) -> Result<(), AlexNetError> {
    let refuse = |e: String| file_error(path, e);
    match format {
        WeightFormat::PytorchZip => {
            let mut file = File::open(path).map_err(|e| file_error(path, e))?;
            let zip = zip_pickles(&mut file).map_err(refuse)?;
            if !zip
                .pickles
                .iter()
                .any(|(name, _)| name.ends_with("data.pkl"))
            {
                return Err(refuse(
                    "a zip archive without data.pkl: not a PyTorch file".into(),
                ));
            }
            for (name, bytes) in &zip.pickles {
                let (end, storages) =
                    scan_pickle(bytes, 0).map_err(|e| refuse(format!("{name}: {e}")))?;
                if end != bytes.len() {
                    return Err(refuse(format!("{name}: bytes after the pickle's STOP")));
                }
                let dir = &name[..name.len() - "data.pkl".len().min(name.len())];
                for storage in storages {
                    let entry = format!("{dir}data/{}", storage.key);
                    let size = zip.sizes.get(&entry).copied().unwrap_or(0);
                    if size < storage.bytes {
                        return Err(refuse(format!(
                            "storage `{entry}` holds {size} bytes, the tensors need {} \
                             (truncated or corrupt file)",
                            storage.bytes
                        )));
                    }
                }
            }
        }
        _ => {
            // Magic number, protocol version, system info, the state dict, the storage keys;
            // then each storage: an 8-byte element count and the raw values.
            let bytes = std::fs::read(path).map_err(|e| file_error(path, e))?;
            let mut pos = 0;
            let mut storages = Vec::new();
            for _ in 0..5 {
                let (end, found) = scan_pickle(&bytes, pos).map_err(refuse)?;
                storages.extend(found);
                pos = end;
            }
            let mut needed: std::collections::BTreeMap<String, u64> = Default::default();
            for storage in storages {
                needed.insert(storage.key, 8 + storage.bytes);
            }
            let needed: u64 = needed.values().sum();
            let present = (bytes.len() - pos) as u64;
            if present != needed {
                return Err(refuse(format!(
                    "the storages need {needed} bytes after the pickles, the file has {present} \
                     (truncated or corrupt file)"
                )));
            }
        }
    }
    Ok(())
}

/// A storage a pickle refers to: its key and its size in bytes.
struct StorageRef {
    key: String,
    bytes: u64,
}

/// Bytes per element of a `torch.*Storage` type.
fn storage_element_size(name: &str) -> Option<u64> {
    let ty = name.rsplit('.').next()?;
    Some(match ty {
        "DoubleStorage" | "LongStorage" => 8,
        "FloatStorage" | "IntStorage" => 4,
        "HalfStorage" | "BFloat16Storage" | "ShortStorage" => 2,
        "CharStorage" | "ByteStorage" | "BoolStorage" | "UntypedStorage" => 1,
        _ => return None,
    })
}

/// One entry of the simulated pickle stack: a mark, a string, or any other value.
#[derive(Clone, Debug)]
enum Slot {
    Mark,
    Str(String),
    Int(u64),
    Global(String),
    Tuple(Vec<Slot>),
    Other,
}

/// Walks one pickle starting at `start` and returns the offset just after its STOP. Refuses
/// globals off the allow-list, unknown opcodes and malformed or truncated streams. Nothing is
/// constructed: the stack only tracks strings, small integers, globals and tuples, to resolve
/// `STACK_GLOBAL` and read torch's storage references (`BINPERSID` of
/// `("storage", type, key, location, numel, ...)`), which are returned.
fn scan_pickle(data: &[u8], start: usize) -> Result<(usize, Vec<StorageRef>), String> {
    let mut storages = Vec::new();
    let truncated = || "truncated pickle".to_string();
    let mut pos = start;
    let mut stack: Vec<Slot> = Vec::new();
    let mut memo: std::collections::HashMap<u64, Slot> = std::collections::HashMap::new();
    let take = |pos: &mut usize, n: usize| -> Result<&[u8], String> {
        let end = pos.checked_add(n).filter(|&e| e <= data.len());
        let end = end.ok_or_else(truncated)?;
        let slice = &data[*pos..end];
        *pos = end;
        Ok(slice)
    };
    let line = |pos: &mut usize| -> Result<String, String> {
        let rest = &data[*pos..];
        let n = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(truncated)?;
        *pos += n + 1;
        Ok(String::from_utf8_lossy(&rest[..n]).into_owned())
    };
    let uint = |bytes: &[u8]| {
        bytes
            .iter()
            .rev()
            .fold(0u64, |acc, &b| (acc << 8) | b as u64)
    };
    fn pop(stack: &mut Vec<Slot>) -> Result<Slot, String> {
        stack
            .pop()
            .ok_or_else(|| "malformed pickle (stack underflow)".into())
    }
    fn pop_mark(stack: &mut Vec<Slot>) -> Result<Vec<Slot>, String> {
        let mark = stack
            .iter()
            .rposition(|slot| matches!(slot, Slot::Mark))
            .ok_or("malformed pickle (no MARK)")?;
        let items = stack.split_off(mark + 1);
        stack.pop();
        Ok(items)
    }
    fn tuple(stack: &mut Vec<Slot>, n: usize) -> Result<Slot, String> {
        let at = stack
            .len()
            .checked_sub(n)
            .ok_or("malformed pickle (stack underflow)")?;
        Ok(Slot::Tuple(stack.split_off(at)))
    }
    fn check(module: &str, name: &str) -> Result<(), String> {
        if allowed_global(module, name) {
            Ok(())
        } else {
            Err(format!(
                "refused: the pickle asks for `{module}.{name}`, which is not on the \
                 tensor-loading allow-list (nothing was executed)"
            ))
        }
    }
    loop {
        let op = *take(&mut pos, 1)?.first().expect("one byte");
        match op {
            b'.' => return Ok((pos, storages)), // STOP
            0x80 => {
                take(&mut pos, 1)?; // PROTO
            }
            0x95 => {
                take(&mut pos, 8)?; // FRAME
            }
            b'(' => stack.push(Slot::Mark),
            // Constants and empty containers: push one value.
            b'N' | 0x88 | 0x89 | b'}' | b']' | b')' | 0x8f => stack.push(Slot::Other),
            b'K' => stack.push(Slot::Int(uint(take(&mut pos, 1)?))),
            b'M' => stack.push(Slot::Int(uint(take(&mut pos, 2)?))),
            b'J' => {
                let value = uint(take(&mut pos, 4)?);
                // Negative values are of no interest here.
                stack.push(if value < 1 << 31 {
                    Slot::Int(value)
                } else {
                    Slot::Other
                });
            }
            b'G' => {
                take(&mut pos, 8)?;
                stack.push(Slot::Other);
            }
            b'I' | b'L' | b'F' => {
                line(&mut pos)?;
                stack.push(Slot::Other);
            }
            0x8a => {
                let n = uint(take(&mut pos, 1)?) as usize; // LONG1
                let bytes = take(&mut pos, n)?;
                let small = n <= 7 || (n == 8 && bytes[7] < 0x80);
                let positive = bytes.last().is_none_or(|&b| b < 0x80);
                stack.push(if small && positive {
                    Slot::Int(uint(bytes))
                } else {
                    Slot::Other
                });
            }
            0x8b => {
                let n = uint(take(&mut pos, 4)?) as usize; // LONG4
                {
                    take(&mut pos, n)?;
                    stack.push(Slot::Other);
                }
            }
            // Strings (tracked for STACK_GLOBAL).
            b'X' | 0x8c | 0x8d | b'T' | b'U' => {
                let width = match op {
                    b'X' | b'T' => 4,
                    0x8d => 8,
                    _ => 1,
                };
                let n = usize::try_from(uint(take(&mut pos, width)?)).map_err(|_| truncated())?;
                let text = String::from_utf8_lossy(take(&mut pos, n)?).into_owned();
                stack.push(Slot::Str(text));
            }
            b'V' | b'S' => {
                let text = line(&mut pos)?;
                stack.push(Slot::Str(text.trim_matches(['\'', '"']).to_string()));
            }
            // Bytes.
            b'B' | b'C' | 0x8e | 0x96 => {
                let width = match op {
                    b'B' => 4,
                    b'C' => 1,
                    _ => 8,
                };
                let n = usize::try_from(uint(take(&mut pos, width)?)).map_err(|_| truncated())?;
                {
                    take(&mut pos, n)?;
                    stack.push(Slot::Other);
                }
            }
            // Globals.
            b'c' => {
                let module = line(&mut pos)?;
                let name = line(&mut pos)?;
                check(&module, &name)?;
                stack.push(Slot::Global(format!("{module}.{name}")));
            }
            b'i' => {
                let module = line(&mut pos)?;
                let name = line(&mut pos)?;
                check(&module, &name)?;
                pop_mark(&mut stack)?;
                stack.push(Slot::Other);
            }
            0x93 => {
                let name = pop(&mut stack)?;
                let module = pop(&mut stack)?;
                match (module, name) {
                    (Slot::Str(module), Slot::Str(name)) => {
                        check(&module, &name)?;
                        stack.push(Slot::Global(format!("{module}.{name}")));
                    }
                    _ => {
                        return Err("refused: a STACK_GLOBAL whose names are not plain \
                                    strings"
                            .into())
                    }
                }
            }
            0x82..=0x84 => {
                return Err("refused: the pickle uses the copyreg extension registry".into())
            }
            // Memo.
            b'q' | b'r' | b'p' => {
                let key = match op {
                    b'q' => uint(take(&mut pos, 1)?),
                    b'r' => uint(take(&mut pos, 4)?),
                    _ => line(&mut pos)?
                        .parse()
                        .map_err(|_| "malformed PUT".to_string())?,
                };
                let top = stack.last().cloned().ok_or("malformed pickle (PUT)")?;
                memo.insert(key, top);
            }
            0x94 => {
                let top = stack.last().cloned().ok_or("malformed pickle (MEMOIZE)")?;
                memo.insert(memo.len() as u64, top);
            }
            b'h' | b'j' | b'g' => {
                let key = match op {
                    b'h' => uint(take(&mut pos, 1)?),
                    b'j' => uint(take(&mut pos, 4)?),
                    _ => line(&mut pos)?
                        .parse()
                        .map_err(|_| "malformed GET".to_string())?,
                };
                let value = memo.get(&key).cloned().ok_or("malformed pickle (GET)")?;
                stack.push(value);
            }
            // Persistent ids (torch's storages).
            b'P' => return Err("refused: a text persistent id (torch.save writes none)".into()),
            b'Q' => {
                let storage = match pop(&mut stack)? {
                    Slot::Tuple(items) => match items.as_slice() {
                        [Slot::Str(tag), Slot::Global(ty), Slot::Str(key), _, Slot::Int(numel), ..]
                            if tag == "storage" =>
                        {
                            storage_element_size(ty).map(|size| StorageRef {
                                key: key.clone(),
                                bytes: numel.saturating_mul(size),
                            })
                        }
                        _ => None,
                    },
                    _ => None,
                };
                let storage = storage.ok_or("refused: an unreadable storage reference")?;
                storages.push(storage);
                stack.push(Slot::Other);
            }
            // Stack manipulation and building.
            b'0' => {
                pop(&mut stack)?;
            }
            b'1' => {
                pop_mark(&mut stack)?;
            }
            b'2' => {
                let top = stack.last().cloned().ok_or("malformed pickle (DUP)")?;
                stack.push(top);
            }
            b't' => {
                let items = pop_mark(&mut stack)?;
                stack.push(Slot::Tuple(items));
            }
            b'l' | b'd' | 0x91 | b'o' => {
                pop_mark(&mut stack)?;
                stack.push(Slot::Other);
            }
            b'e' | b'u' | 0x90 => {
                pop_mark(&mut stack)?;
            }
            0x85..=0x87 => {
                let items = tuple(&mut stack, (op - 0x84) as usize)?;
                stack.push(items);
            }
            b'R' | 0x81 => {
                pop(&mut stack)?;
                pop(&mut stack)?;
                stack.push(Slot::Other);
            }
            0x92 => {
                for _ in 0..3 {
                    pop(&mut stack)?;
                }
                stack.push(Slot::Other);
            }
            b'a' | b'b' => {
                pop(&mut stack)?;
            }
            b's' => {
                pop(&mut stack)?;
                pop(&mut stack)?;
            }
            other => {
                return Err(format!(
                    "refused: unknown or unsupported pickle opcode 0x{other:02x} at byte {}",
                    pos - 1
                ))
            }
        }
    }
}

/// What [`zip_pickles`] reads from a zip archive's central directory.
struct ZipContents {
    /// Every `*.pkl` entry: name, bytes.
    pickles: Vec<(String, Vec<u8>)>,
    /// Every entry's uncompressed size.
    sizes: std::collections::HashMap<String, u64>,
}

/// Every `*.pkl` entry of a zip archive and every entry's size, from its central directory.
fn zip_pickles(file: &mut File) -> Result<ZipContents, String> {
    let corrupt = |what: &str| format!("truncated or corrupt zip archive ({what})");
    let len = file.metadata().map_err(|e| e.to_string())?.len();
    let tail_len = len.min(22 + 65_535 + 20);
    let tail = read_at(file, len - tail_len, tail_len as usize)?;
    let eocd = (0..tail.len().saturating_sub(21))
        .rev()
        .find(|&i| tail[i..].starts_with(&[0x50, 0x4b, 0x05, 0x06]))
        .ok_or_else(|| corrupt("no end of central directory"))?;
    let le = |b: &[u8], at: usize, n: usize| -> u64 {
        b[at..at + n]
            .iter()
            .rev()
            .fold(0u64, |acc, &x| (acc << 8) | x as u64)
    };
    let mut entries = le(&tail, eocd + 10, 2);
    let mut cd_size = le(&tail, eocd + 12, 4);
    let mut cd_offset = le(&tail, eocd + 16, 4);
    if cd_offset == 0xffff_ffff || entries == 0xffff || cd_size == 0xffff_ffff {
        // Zip64: the locator sits just before the end record.
        let locator = eocd
            .checked_sub(20)
            .filter(|&l| tail[l..].starts_with(&[0x50, 0x4b, 0x06, 0x07]))
            .ok_or_else(|| corrupt("no zip64 locator"))?;
        let record_at = le(&tail, locator + 8, 8);
        let record = read_at(file, record_at, 56)?;
        if !record.starts_with(&[0x50, 0x4b, 0x06, 0x06]) {
            return Err(corrupt("bad zip64 record"));
        }
        entries = le(&record, 32, 8);
        cd_size = le(&record, 40, 8);
        cd_offset = le(&record, 48, 8);
    }
    if cd_offset.checked_add(cd_size).is_none_or(|end| end > len) || cd_size > 64 << 20 {
        return Err(corrupt("central directory out of bounds"));
    }
    let cd = read_at(file, cd_offset, cd_size as usize)?;
    let mut pickles = Vec::new();
    let mut sizes = std::collections::HashMap::new();
    let mut at = 0usize;
    for _ in 0..entries {
        if at + 46 > cd.len() || !cd[at..].starts_with(&[0x50, 0x4b, 0x01, 0x02]) {
            return Err(corrupt("bad central directory entry"));
        }
        let method = le(&cd, at + 10, 2);
        let mut size = le(&cd, at + 20, 4);
        let name_len = le(&cd, at + 28, 2) as usize;
        let extra_len = le(&cd, at + 30, 2) as usize;
        let comment_len = le(&cd, at + 32, 2) as usize;
        let mut offset = le(&cd, at + 42, 4);
        let next = at + 46 + name_len + extra_len + comment_len;
        if next > cd.len() {
            return Err(corrupt("bad central directory entry"));
        }
        let name = String::from_utf8_lossy(&cd[at + 46..at + 46 + name_len]).into_owned();
        // Zip64 extra field: the 8-byte values replace those saturated at 0xffffffff, in the
        // order uncompressed size, compressed size, offset.
        let uncompressed = le(&cd, at + 24, 4);
        let mut full_size = uncompressed;
        let mut extra = &cd[at + 46 + name_len..at + 46 + name_len + extra_len];
        while extra.len() >= 4 {
            let (id, n) = (le(extra, 0, 2), le(extra, 2, 2) as usize);
            let body = extra
                .get(4..4 + n)
                .ok_or_else(|| corrupt("bad extra field"))?;
            if id == 1 {
                let mut fields = body.chunks_exact(8).map(|c| le(c, 0, 8));
                if uncompressed == 0xffff_ffff {
                    full_size = fields.next().ok_or_else(|| corrupt("bad zip64 field"))?;
                }
                if size == 0xffff_ffff {
                    size = fields.next().ok_or_else(|| corrupt("bad zip64 field"))?;
                }
                if offset == 0xffff_ffff {
                    offset = fields.next().ok_or_else(|| corrupt("bad zip64 field"))?;
                }
            }
            extra = &extra[4 + n..];
        }
        sizes.insert(name.clone(), full_size);
        if name.ends_with(".pkl") {
            if method != 0 {
                return Err(format!(
                    "refused: {name} is compressed (torch.save stores it)"
                ));
            }
            let local = read_at(file, offset, 30)?;
            if !local.starts_with(&[0x50, 0x4b, 0x03, 0x04]) {
                return Err(corrupt("bad local header"));
            }
            let data_at = offset + 30 + le(&local, 26, 2) + le(&local, 28, 2);
            if size > 1 << 30 {
                return Err(corrupt("oversized pickle"));
            }
            pickles.push((name, read_at(file, data_at, size as usize)?));
        }
        at = next;
    }
    Ok(ZipContents { pickles, sizes })
}

fn read_at(file: &mut File, offset: u64, len: usize) -> Result<Vec<u8>, String> {
    let truncated = || "truncated or corrupt zip archive (entry out of bounds)".to_string();
    file.seek(SeekFrom::Start(offset))
        .map_err(|_| truncated())?;
    let mut buf = vec![0; len];
    file.read_exact(&mut buf).map_err(|_| truncated())?;
    Ok(buf)
}

// ---------------------------------------------------------------------------------------------
// Configuration from shapes

fn shape_of<'a>(dict: &'a StateDict, key: &str) -> Option<&'a [usize]> {
    dict.get(key).map(|t| t.shape.as_slice())
}

/// `KeyLayout::Caffe` if the dict has `conv1.weight`, `Sequential` if `features.0.weight`.
pub fn detect_layout(dict: &StateDict) -> Result<KeyLayout, AlexNetError> {
    if dict.contains_key("conv1.weight") {
        Ok(KeyLayout::Caffe)
    } else if dict.contains_key("features.0.weight") {
        Ok(KeyLayout::Sequential)
    } else {
        let some: Vec<&str> = dict.keys().take(4).map(String::as_str).collect();
        Err(AlexNetError::Weights(format!(
            "no AlexNet weights: expected `features.0.weight` (PyTorch layout) or \
             `conv1.weight` (Caffe names), found keys {some:?}{}",
            if dict.len() > 4 { " ..." } else { "" }
        )))
    }
}

/// The variant the shapes describe: conv1's kernel (11: paper or torchvision, 5: cifar), then
/// the classifier's first index (`classifier.1`: torchvision) or conv2's groups (paper).
fn detect_variant(dict: &StateDict, layout: KeyLayout) -> Result<Variant, AlexNetError> {
    let conv1 = if layout == KeyLayout::Caffe {
        "conv1.weight"
    } else {
        "features.0.weight"
    };
    let shape = shape_of(dict, conv1).unwrap_or_default();
    match shape {
        [_, _, 5, 5] => Ok(Variant::Cifar),
        [c1, _, 11, 11] => Ok(match layout {
            KeyLayout::Sequential if dict.contains_key("classifier.1.weight") => {
                Variant::Torchvision
            }
            KeyLayout::Sequential => Variant::Paper,
            KeyLayout::Caffe => match shape_of(dict, "conv2.weight") {
                Some([_, c, ..]) if c * 2 == *c1 => Variant::Paper,
                _ => Variant::Torchvision,
            },
        }),
        _ => Err(AlexNetError::Weights(format!(
            "`{conv1}` has shape {shape:?}: no variant has that conv1 (paper and torchvision \
             expect [_, 3, 11, 11], cifar [_, 3, 5, 5])"
        ))),
    }
}

/// The configuration and key layout a state dict describes.
///
/// Without `variant`, the variant is detected: conv1's kernel (11×11: paper or torchvision,
/// 5×5: cifar), then, for 11×11, the classifier's first index (`classifier.1`: torchvision,
/// `classifier.0`: paper) or, under Caffe names, conv2's groups (2: paper). Widths, hidden
/// width and class count come from the weights' shapes; LRN from the Sequential indices
/// (`features.4` holding conv2 means an LRN layer sits before the pool; Caffe names cannot
/// tell, so each variant's preset decides). What shapes cannot tell: the paper variant's input
/// convention (Caffe's 227 or the default 224, which give identical weights: 224 is chosen)
/// and the LRN constants (each variant's preset).
///
/// Every tensor is then checked against the configuration: a missing, unexpected or
/// wrong-shaped key is an error naming the key and both shapes (with a given `variant` that
/// the shapes contradict, the message also names the variant they fit).
pub fn infer_config(
    dict: &StateDict,
    variant: Option<Variant>,
) -> Result<(AlexNetConfig, KeyLayout), AlexNetError> {
    let layout = detect_layout(dict)?;
    let chosen = match variant {
        Some(v) => v,
        None => detect_variant(dict, layout)?,
    };
    let config = fit_config(dict, chosen, layout);
    if let Err(AlexNetError::Weights(message)) = check_shapes(dict, &config, layout) {
        let hint = match (variant, detect_variant(dict, layout)) {
            (Some(given), Ok(fits)) if fits != given => {
                format!(" (the file's shapes fit the {} variant)", fits.name())
            }
            _ => String::new(),
        };
        return Err(AlexNetError::Weights(format!("{message}{hint}")));
    }
    config.validate().map_err(|e| {
        AlexNetError::Weights(format!(
            "the weights' shapes describe no buildable {} network: {e}",
            chosen.name()
        ))
    })?;
    Ok((config, layout))
}

/// The variant's preset with widths, hidden width, class count and LRN read from the dict.
fn fit_config(dict: &StateDict, variant: Variant, layout: KeyLayout) -> AlexNetConfig {
    let mut config = variant.config(10);
    if layout == KeyLayout::Sequential && variant != Variant::Torchvision {
        if dict.contains_key("features.4.weight") && !dict.contains_key("features.3.weight") {
            if config.lrn.is_none() {
                config.lrn = Some(LrnPreset::CudaConvnet.config());
            }
        } else if dict.contains_key("features.3.weight") {
            config.lrn = None;
        }
    }
    let prefixes = key_prefixes(&config, layout);
    let first_dim = |i: usize, rank: usize| match shape_of(dict, &format!("{}.weight", prefixes[i]))
    {
        Some(shape) if shape.len() == rank => Some(shape[0]),
        _ => None,
    };
    let mut widths = config.widths();
    for (i, width) in widths.iter_mut().enumerate() {
        *width = first_dim(i, 4).unwrap_or(*width);
    }
    config = config.with_widths(widths);
    config.hidden = first_dim(5, 2).unwrap_or(config.hidden);
    config.num_classes = first_dim(7, 2).unwrap_or(config.num_classes);
    config
}

/// Every parameter's key and shape (PyTorch conventions) for `config` under `layout`.
pub fn expected_shapes(
    config: &AlexNetConfig,
    layout: KeyLayout,
) -> Result<Vec<(String, Vec<usize>)>, AlexNetError> {
    let prefixes = key_prefixes(config, layout);
    let mut shapes = Vec::new();
    let mut channels = config.in_channels;
    for (conv, prefix) in config.convs.iter().zip(&prefixes) {
        let groups = conv.groups.max(1);
        shapes.push((
            format!("{prefix}.weight"),
            vec![
                conv.out_channels,
                channels / groups,
                conv.kernel,
                conv.kernel,
            ],
        ));
        shapes.push((format!("{prefix}.bias"), vec![conv.out_channels]));
        channels = conv.out_channels;
    }
    let fc6_inputs = LayerShapes::compute(config, config.input_size)?.fc6_inputs();
    let fcs = [
        (fc6_inputs, config.hidden),
        (config.hidden, config.hidden),
        (config.hidden, config.num_classes),
    ];
    for ((inputs, outputs), prefix) in fcs.into_iter().zip(&prefixes[5..]) {
        shapes.push((format!("{prefix}.weight"), vec![outputs, inputs]));
        shapes.push((format!("{prefix}.bias"), vec![outputs]));
    }
    Ok(shapes)
}

/// Checks a state dict against a configuration: the first missing, wrong-shaped or unexpected
/// key is an error naming the key and both shapes.
pub fn check_shapes(
    dict: &StateDict,
    config: &AlexNetConfig,
    layout: KeyLayout,
) -> Result<(), AlexNetError> {
    let expected = expected_shapes(config, layout).map_err(|e| {
        AlexNetError::Weights(format!(
            "the weights' shapes describe no buildable {} network: {e}",
            config.variant.name()
        ))
    })?;
    let variant = config.variant.name();
    for (key, shape) in &expected {
        match shape_of(dict, key) {
            None => {
                return Err(AlexNetError::Weights(format!(
                    "missing key `{key}` (the {variant} network expects shape {shape:?})"
                )))
            }
            Some(found) if found != shape.as_slice() => {
                return Err(AlexNetError::Weights(format!(
                    "`{key}` has shape {found:?}, the {variant} network expects {shape:?}"
                )))
            }
            Some(_) => {}
        }
    }
    if let Some((key, tensor)) = dict
        .iter()
        .find(|(key, _)| !expected.iter().any(|(k, _)| k == *key))
    {
        return Err(AlexNetError::Weights(format!(
            "unexpected key `{key}` (shape {:?}) that the {variant} network has no place for",
            tensor.shape
        )));
    }
    Ok(())
}

/// The configuration and layout for a checkpoint: the stored configuration when the file has
/// one (checked against `variant` and the shapes), otherwise [`infer_config`].
pub fn resolve_config(
    checkpoint: &Checkpoint,
    variant: Option<Variant>,
) -> Result<(AlexNetConfig, KeyLayout), AlexNetError> {
    let Some(stored) = &checkpoint.config else {
        return infer_config(&checkpoint.state_dict, variant);
    };
    if let Some(variant) = variant.filter(|&v| v != stored.variant) {
        return Err(AlexNetError::Weights(format!(
            "the file stores a {} network, not {}",
            stored.variant.name(),
            variant.name()
        )));
    }
    let layout = detect_layout(&checkpoint.state_dict)?;
    let config = stored.clone().with_max_param_bytes(None);
    check_shapes(&checkpoint.state_dict, &config, layout)?;
    Ok((config, layout))
}

/// Reads a weight file of any supported format and builds the network it describes
/// (configuration stored in the file, or inferred from the shapes; `variant` forces one),
/// with fully connected layers split under `max_param_bytes`.
pub fn load_model<B: Backend>(
    path: &Path,
    variant: Option<Variant>,
    max_param_bytes: Option<usize>,
    device: &B::Device,
) -> Result<AlexNet<B>, AlexNetError> {
    let checkpoint = read_checkpoint(path)?;
    let (config, layout) =
        resolve_config(&checkpoint, variant).map_err(|e| file_error_of(path, e))?;
    let config = config.with_max_param_bytes(max_param_bytes);
    config
        .init::<B>(device)?
        .load_state_dict(&checkpoint.state_dict, layout)
        .map_err(|e| file_error_of(path, e))
}

/// Prefixes a `Weights` error's message with the file name.
fn file_error_of(path: &Path, error: AlexNetError) -> AlexNetError {
    match error {
        AlexNetError::Weights(message) => file_error(path, message),
        other => other,
    }
}

/// Writes `model`'s weights and configuration to `path` in `format`: safetensors with
/// Sequential (torchvision-style) keys and the configuration's JSON in the metadata
/// (`alexnet_config`), or Burn's Burnpack format (see the module docs). Writing PyTorch
/// `.pth` files is not supported.
pub fn save_model<B: Backend>(
    model: &AlexNet<B>,
    path: &Path,
    format: WeightFormat,
) -> Result<(), AlexNetError> {
    let config = model.config().clone().with_max_param_bytes(None);
    let json = config_to_json(&config);
    match format {
        WeightFormat::Safetensors => {
            let dict = model.state_dict(KeyLayout::Sequential);
            let bytes = safetensors_bytes(&dict, &json).map_err(|e| file_error(path, e))?;
            std::fs::write(path, bytes).map_err(|e| file_error(path, e))
        }
        WeightFormat::Burn => {
            let dict = model.state_dict(KeyLayout::Caffe);
            let mut snapshots: Vec<TensorSnapshot> = dict
                .into_iter()
                .map(|(key, t)| snapshot(key, TensorData::new(t.values, t.shape)))
                .collect();
            let config_bytes = json.as_bytes().to_vec();
            let len = config_bytes.len();
            snapshots.push(snapshot(
                CONFIG_TENSOR.to_string(),
                TensorData::new(config_bytes, [len]),
            ));
            BurnpackWriter::new(snapshots)
                .with_metadata("format", "burnpack")
                .with_metadata("producer", "alexnet-model")
                .with_metadata(CONFIG_METADATA_KEY, &json)
                .write_to_file(path)
                .map_err(|e| file_error(path, e))
        }
        WeightFormat::PytorchZip | WeightFormat::PytorchLegacy => Err(file_error(
            path,
            "writing PyTorch .pth files is not supported: export .safetensors (PyTorch loads \
             it with safetensors.torch.load_file)",
        )),
    }
}

fn snapshot(key: String, data: TensorData) -> TensorSnapshot {
    TensorSnapshot::from_data(data, vec![key], Vec::new(), ParamId::new())
}

/// A safetensors file of f32 tensors with the configuration JSON as the only metadata entry
/// (one entry keeps the bytes deterministic).
fn safetensors_bytes(dict: &StateDict, config_json: &str) -> Result<Vec<u8>, String> {
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = dict
        .iter()
        .map(|(key, t)| {
            let data = t.values.iter().flat_map(|v| v.to_le_bytes()).collect();
            (key.clone(), t.shape.clone(), data)
        })
        .collect();
    let views = bytes
        .iter()
        .map(|(key, shape, data)| {
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), data)
                .map(|view| (key.clone(), view))
                .map_err(|e| e.to_string())
        })
        .collect::<Result<Vec<_>, _>>()?;
    let metadata = [(CONFIG_METADATA_KEY.to_string(), config_json.to_string())];
    safetensors::serialize(views, Some(metadata.into_iter().collect())).map_err(|e| e.to_string())
}
