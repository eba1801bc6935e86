//! Weights in and out: PyTorch-style state dicts (name → tensor) and their key layouts.
//!
//! A state dict holds tensors in PyTorch's conventions: conv weights `[out, in/groups, k, k]`,
//! linear weights `[out, in]` (Burn stores `[in, out]`; the loader transposes).
//!
//! Key layouts:
//! * [`KeyLayout::Sequential`]: the `nn.Sequential` indices you get by writing the
//!   configuration out in PyTorch (conv, ReLU, [LRN], [pool] ...). For the torchvision preset
//!   this is torchvision's own layout, `features.{0,3,6,8,10}` and `classifier.{1,4,6}`; for
//!   the paper preset (LRN, dropout after fc6/fc7) it is `features.{0,4,8,10,12}` and
//!   `classifier.{0,3,6}` — the layout `fixtures/make_fixtures.py` defines.
//! * [`KeyLayout::Caffe`]: `conv1.weight` ... `fc8.bias`, Caffe's blob names.

use std::collections::{BTreeMap, HashMap};

use burn::module::Param;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use safetensors::{Dtype, SafeTensors};

use crate::config::{AlexNetConfig, DropoutPlacement};
use crate::error::AlexNetError;
use crate::model::{AlexNet, SplitLinear};

/// A tensor on the host in f32, PyTorch's layout.
#[derive(Debug, Clone, PartialEq)]
pub struct HostTensor {
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub values: Vec<f32>,
}

impl HostTensor {
    /// A Burn tensor with the same shape and values (`D` must equal the rank).
    pub fn to_tensor<B: Backend, const D: usize>(&self, device: &B::Device) -> Tensor<B, D> {
        Tensor::from_data(
            TensorData::new(self.values.clone(), self.shape.clone()),
            device,
        )
    }

    /// `count` rows (slices of the first dimension) from `start`.
    pub fn rows(&self, start: usize, count: usize) -> Self {
        let row: usize = self.shape[1..].iter().product();
        let mut shape = self.shape.clone();
        shape[0] = count;
        let values = self.values[start * row..(start + count) * row].to_vec();
        Self { shape, values }
    }

    /// Concatenates tensors along the first dimension.
    pub fn stack_rows(parts: impl IntoIterator<Item = HostTensor>) -> Self {
        let mut parts = parts.into_iter();
        let mut out = parts.next().expect("at least one part");
        for part in parts {
            out.shape[0] += part.shape[0];
            out.values.extend(part.values);
        }
        out
    }

    /// Copies a Burn tensor to the host.
    pub fn from_tensor<B: Backend, const D: usize>(tensor: Tensor<B, D>) -> Self {
        let shape = tensor.dims().to_vec();
        let values = tensor
            .into_data()
            .convert::<f32>()
            .to_vec::<f32>()
            .expect("converted to f32");
        Self { shape, values }
    }
}

/// Parameter name → tensor, PyTorch conventions.
pub type StateDict = BTreeMap<String, HostTensor>;

/// How parameter names are spelled; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyLayout {
    /// `features.N` / `classifier.N`, as `nn.Sequential` numbers the layers.
    Sequential,
    /// `conv1..conv5`, `fc6..fc8`.
    Caffe,
}

/// The eight layers with parameters, in order.
pub const LAYER_NAMES: [&str; 8] = [
    "conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8",
];

/// Key prefix of each of [`LAYER_NAMES`] under `layout` for this configuration.
pub fn key_prefixes(config: &AlexNetConfig, layout: KeyLayout) -> [String; 8] {
    if layout == KeyLayout::Caffe {
        return LAYER_NAMES.map(String::from);
    }
    let mut prefixes = Vec::with_capacity(8);
    let mut index = 0;
    for n in 1..=5 {
        prefixes.push(format!("features.{index}"));
        index += 2; // conv, ReLU
        if n <= 2 && config.lrn.is_some() {
            index += 1;
        }
        if matches!(n, 1 | 2 | 5) {
            index += 1;
        }
    }
    let classifier = match config.dropout_placement {
        // Dropout, fc6, ReLU, Dropout, fc7, ReLU, fc8
        DropoutPlacement::BeforeHidden => [1, 4, 6],
        // fc6, ReLU, Dropout, fc7, ReLU, Dropout, fc8
        DropoutPlacement::AfterHidden => [0, 3, 6],
    };
    prefixes.extend(classifier.map(|i| format!("classifier.{i}")));
    prefixes.try_into().expect("eight layers")
}

/// Reads a safetensors file's bytes: its tensors (converted to f32) and its metadata.
pub fn read_safetensors(
    bytes: &[u8],
) -> Result<(StateDict, HashMap<String, String>), AlexNetError> {
    let bad = |e: safetensors::SafeTensorError| {
        AlexNetError::Weights(format!("not a valid safetensors file: {e}"))
    };
    let (_, metadata) = SafeTensors::read_metadata(bytes).map_err(bad)?;
    let tensors = SafeTensors::deserialize(bytes).map_err(bad)?;
    let mut dict = StateDict::new();
    for (name, view) in tensors.tensors() {
        let values = decode(view.dtype(), view.data()).ok_or_else(|| {
            AlexNetError::Weights(format!("{name}: unsupported dtype {:?}", view.dtype()))
        })?;
        dict.insert(
            name,
            HostTensor {
                shape: view.shape().to_vec(),
                values,
            },
        );
    }
    Ok((dict, metadata.metadata().clone().unwrap_or_default()))
}

/// Little-endian raw values of a supported dtype, as f32.
fn decode(dtype: Dtype, data: &[u8]) -> Option<Vec<f32>> {
    let values = match dtype {
        Dtype::F32 => data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        Dtype::F64 => data
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32)
            .collect(),
        Dtype::F16 => data
            .chunks_exact(2)
            .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        Dtype::BF16 => data
            .chunks_exact(2)
            .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        Dtype::U8 => data.iter().map(|&b| b as f32).collect(),
        _ => return None,
    };
    Some(values)
}

/// Takes one tensor out of `dict`, checking its shape against what the model expects.
fn take(dict: &mut StateDict, key: &str, expected: &[usize]) -> Result<HostTensor, AlexNetError> {
    let tensor = dict.remove(key).ok_or_else(|| {
        AlexNetError::Weights(format!("missing key `{key}` (expected shape {expected:?})"))
    })?;
    if tensor.shape != expected {
        return Err(AlexNetError::Weights(format!(
            "`{key}` has shape {:?}, the model expects {expected:?}",
            tensor.shape
        )));
    }
    Ok(tensor)
}

/// Transposes a row-major `[rows, cols]` matrix.
fn transpose(t: &HostTensor) -> HostTensor {
    let (rows, cols) = (t.shape[0], t.shape[1]);
    let mut values = vec![0.0; t.values.len()];
    for r in 0..rows {
        for c in 0..cols {
            values[c * rows + r] = t.values[r * cols + c];
        }
    }
    HostTensor {
        shape: vec![cols, rows],
        values,
    }
}

impl<B: Backend> AlexNet<B> {
    /// Replaces every parameter with the state dict's, strictly: a missing key, an unexpected
    /// key or a wrong shape is an error naming the key (and both shapes); nothing is half-loaded
    /// because the model is only returned when everything matched.
    pub fn load_state_dict(
        mut self,
        dict: &StateDict,
        layout: KeyLayout,
    ) -> Result<Self, AlexNetError> {
        let mut dict = dict.clone();
        let prefixes = key_prefixes(self.config(), layout);
        let device = self.conv1.weight.device();
        for (i, prefix) in prefixes.iter().enumerate() {
            if i < 5 {
                let conv = self.conv_mut(i);
                let weight = take(&mut dict, &format!("{prefix}.weight"), &conv.weight.dims())?;
                conv.weight = replace(conv.weight.clone(), &weight, &device);
                load_bias(&mut conv.bias, &mut dict, prefix, &device)?;
            } else {
                let fc = self.fc_mut(i - 5);
                let (inputs, outputs) = fc.dims();
                let weight = take(&mut dict, &format!("{prefix}.weight"), &[outputs, inputs])?;
                let bias = take(&mut dict, &format!("{prefix}.bias"), &[outputs])?;
                let rows = outputs / fc.parts.len();
                for (k, part) in fc.parts.iter_mut().enumerate() {
                    let weight = transpose(&weight.rows(k * rows, rows));
                    part.weight = replace(part.weight.clone(), &weight, &device);
                    let bias = bias.rows(k * rows, rows);
                    part.bias = part.bias.take().map(|b| replace(b, &bias, &device));
                }
            }
        }
        if let Some((key, tensor)) = dict.iter().next() {
            return Err(AlexNetError::Weights(format!(
                "unexpected key `{key}` (shape {:?}) that this model has no place for",
                tensor.shape
            )));
        }
        Ok(self)
    }

    /// Every parameter under `layout`'s names, in PyTorch's conventions.
    pub fn state_dict(&self, layout: KeyLayout) -> StateDict {
        let prefixes = key_prefixes(self.config(), layout);
        let mut dict = StateDict::new();
        for (i, prefix) in prefixes.iter().enumerate() {
            if i < 5 {
                let conv = self.conv(i);
                dict.insert(
                    format!("{prefix}.weight"),
                    HostTensor::from_tensor(conv.weight.val()),
                );
                if let Some(bias) = &conv.bias {
                    dict.insert(
                        format!("{prefix}.bias"),
                        HostTensor::from_tensor(bias.val()),
                    );
                }
            } else {
                let parts = &self.fc(i - 5).parts;
                let weights = parts
                    .iter()
                    .map(|p| transpose(&HostTensor::from_tensor(p.weight.val())));
                dict.insert(format!("{prefix}.weight"), HostTensor::stack_rows(weights));
                let biases = parts
                    .iter()
                    .filter_map(|p| p.bias.as_ref())
                    .map(|b| HostTensor::from_tensor(b.val()));
                dict.insert(format!("{prefix}.bias"), HostTensor::stack_rows(biases));
            }
        }
        dict
    }

    fn conv(&self, i: usize) -> &burn::nn::conv::Conv2d<B> {
        [
            &self.conv1,
            &self.conv2,
            &self.conv3,
            &self.conv4,
            &self.conv5,
        ][i]
    }

    fn conv_mut(&mut self, i: usize) -> &mut burn::nn::conv::Conv2d<B> {
        match i {
            0 => &mut self.conv1,
            1 => &mut self.conv2,
            2 => &mut self.conv3,
            3 => &mut self.conv4,
            _ => &mut self.conv5,
        }
    }

    fn fc(&self, i: usize) -> &SplitLinear<B> {
        [&self.fc6, &self.fc7, &self.fc8][i]
    }

    fn fc_mut(&mut self, i: usize) -> &mut SplitLinear<B> {
        match i {
            0 => &mut self.fc6,
            1 => &mut self.fc7,
            _ => &mut self.fc8,
        }
    }
}

/// A parameter with new values, keeping its id and whether it requires gradients (so that a
/// model loaded on an autodiff backend still trains).
fn replace<B: Backend, const D: usize>(
    param: Param<Tensor<B, D>>,
    values: &HostTensor,
    device: &B::Device,
) -> Param<Tensor<B, D>> {
    param.map(|old| {
        let trainable = old.is_require_grad();
        values.to_tensor(device).set_require_grad(trainable)
    })
}

fn load_bias<B: Backend>(
    bias: &mut Option<Param<Tensor<B, 1>>>,
    dict: &mut StateDict,
    prefix: &str,
    device: &B::Device,
) -> Result<(), AlexNetError> {
    if let Some(param) = bias.take() {
        let values = take(dict, &format!("{prefix}.bias"), &param.dims())?;
        *bias = Some(replace(param, &values, device));
    }
    Ok(())
}
