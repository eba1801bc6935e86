//! Weight files: format detection, PyTorch `.pth` (zip and legacy), safetensors, Burn's
//! format and Caffe's `.caffemodel`, in and out.
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
//! | [`Caffe`](WeightFormat::Caffe) (`.caffemodel`, bvlc_alexnet) | no magic: the first protobuf field (`format.rs`) | yes, with the config its layers describe | no |
//!
//! Any dtype (f16, bf16, f64, integers) is converted to f32. A `{"state_dict": ...}`,
//! `{"model_state_dict": ...}` or `{"model": ...}` wrapper is unwrapped (other entries such as
//! `"epoch"` are ignored) and a DataParallel `module.` prefix is stripped.
//!
//! Inside: `format` (detection), `pytorch` and `pickle` (`.pth`: a bounded pickle reader that
//! accepts nothing off the tensor-rebuilding allow-list, and tensors materialised with their
//! strides and storage offsets, as `torch.load` does), `burnpack` (Burn's format), `caffe`
//! (`.caffemodel`: Caffe's protobuf, read into the paper variant with Caffe's input), `fit`
//! (the configuration a state dict describes).
//!
//! Writing `.pth` and `.caffemodel` files is not supported: export safetensors, which
//! PyTorch loads with `safetensors.torch.load_file`.

mod burnpack;
mod caffe;
mod fit;
mod format;
mod pickle;
mod pytorch;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use burn::config::{config_to_json, Config};
use burn::tensor::backend::Backend;
use burn::tensor::{DType, TensorData};

use crate::config::{AlexNetConfig, Variant};
use crate::error::AlexNetError;
use crate::files::read_regular_file;
use crate::layers::KeyLayout;
use crate::model::AlexNet;
use crate::tensor::HostTensor;
use crate::weights::{check_state_dict, read_safetensors, StateDict};
pub use burnpack::CONFIG_TENSOR;
pub use fit::{detect_layout, infer_config};
pub use format::detect_format;
pub use pickle::Limits as PickleLimits;
pub use pytorch::{MAX_PICKLE_BYTES, MAX_STORAGE_BYTES, MAX_TENSOR_ELEMENTS};

/// Largest safetensors file read: the `.pth` reader's storage limit plus room for the header.
pub const MAX_SAFETENSORS_BYTES: u64 = pytorch::MAX_STORAGE_BYTES + pytorch::MAX_PICKLE_BYTES;

/// Metadata key (safetensors and Burnpack) holding the [`AlexNetConfig`] as JSON.
pub const CONFIG_METADATA_KEY: &str = "alexnet_config";

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
    /// Caffe's `.caffemodel` (a serialized `NetParameter`) of the paper network, such as the
    /// released `bvlc_alexnet.caffemodel`; read only.
    Caffe,
}

impl WeightFormat {
    /// Human-readable name.
    pub fn name(self) -> &'static str {
        match self {
            WeightFormat::PytorchZip => "PyTorch zip",
            WeightFormat::PytorchLegacy => "PyTorch legacy",
            WeightFormat::Safetensors => "safetensors",
            WeightFormat::Burn => "Burn (Burnpack)",
            WeightFormat::Caffe => "Caffe .caffemodel",
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
    /// The configuration stored with the weights (our safetensors and Burn exports) or
    /// described by the file's layers (Caffe).
    pub config: Option<AlexNetConfig>,
}

/// One-line error naming the file.
fn file_error(path: &Path, message: impl std::fmt::Display) -> AlexNetError {
    AlexNetError::Weights(message.to_string()).in_file(path)
}

/// The output format an extension asks for: `.pth`/`.pt` (PyTorch zip), `.safetensors`,
/// `.bpk`/`.burn` (Burn), `.caffemodel` (Caffe; [`save_model`] refuses the two read-only
/// formats). `None` for anything else.
pub fn format_from_extension(path: &Path) -> Option<WeightFormat> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    match ext.as_str() {
        "pth" | "pt" => Some(WeightFormat::PytorchZip),
        "safetensors" => Some(WeightFormat::Safetensors),
        "bpk" | "burn" => Some(WeightFormat::Burn),
        "caffemodel" => Some(WeightFormat::Caffe),
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
            (pytorch::read_pytorch(path, format)?, None)
        }
        WeightFormat::Safetensors => {
            let bytes = read_regular_file(path, MAX_SAFETENSORS_BYTES)?;
            let (dict, metadata) = read_safetensors(&bytes).map_err(|e| e.in_file(path))?;
            let config = metadata
                .get(CONFIG_METADATA_KEY)
                .map(|json| parse_config(path, json.as_bytes()))
                .transpose()?;
            (dict, config)
        }
        WeightFormat::Burn => burnpack::read_burnpack(path)?,
        WeightFormat::Caffe => caffe::read_caffemodel(path).map(|(dict, c)| (dict, Some(c)))?,
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
    config.validate()?;
    check_state_dict(&checkpoint.state_dict, &config, layout)?;
    Ok((config, layout))
}

impl Checkpoint {
    /// Tensors holding NaN or infinite values, with how many, in key order (PyTorch loads
    /// them as they are; a network built from them answers NaN, or worse, plausible numbers).
    pub fn non_finite(&self) -> Vec<(&str, usize)> {
        self.state_dict
            .iter()
            .map(|(key, t)| {
                (
                    key.as_str(),
                    t.values.iter().filter(|v| !v.is_finite()).count(),
                )
            })
            .filter(|&(_, count)| count > 0)
            .collect()
    }

    /// Builds the network these weights describe (configuration stored in the file, or
    /// inferred from the shapes; `variant` forces one) and loads them strictly, with fully
    /// connected layers split under `max_param_bytes`.
    pub fn into_model<B: Backend>(
        &self,
        variant: Option<Variant>,
        max_param_bytes: Option<usize>,
        device: &B::Device,
    ) -> Result<AlexNet<B>, AlexNetError> {
        let (config, layout) = resolve_config(self, variant)?;
        config
            .with_max_param_bytes(max_param_bytes)
            .try_init::<B>(device)?
            .load_state_dict(&self.state_dict, layout)
    }
}

/// Reads a weight file of any supported format and builds the network it describes
/// ([`read_checkpoint`], then [`Checkpoint::into_model`]).
pub fn load_model<B: Backend>(
    path: &Path,
    variant: Option<Variant>,
    max_param_bytes: Option<usize>,
    device: &B::Device,
) -> Result<AlexNet<B>, AlexNetError> {
    read_checkpoint(path)?
        .into_model(variant, max_param_bytes, device)
        .map_err(|e| e.in_file(path))
}

/// Writes `model`'s weights and configuration to `path` in `format`: safetensors with
/// Sequential (torchvision-style) keys and the configuration's JSON in the metadata
/// (`alexnet_config`), or Burn's Burnpack format (see the module docs). Writing PyTorch
/// `.pth` and Caffe files is not supported.
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
            burnpack::write_burnpack(path, model.state_dict(KeyLayout::Caffe), &json)
        }
        WeightFormat::PytorchZip | WeightFormat::PytorchLegacy => Err(file_error(
            path,
            "writing PyTorch .pth files is not supported: export .safetensors (PyTorch loads \
             it with safetensors.torch.load_file)",
        )),
        WeightFormat::Caffe => Err(file_error(
            path,
            "writing Caffe .caffemodel files is not supported: export .safetensors or .bpk",
        )),
    }
}

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
