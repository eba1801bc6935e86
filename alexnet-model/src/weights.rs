//! State dicts (name → tensor, PyTorch's conventions) in and out of an [`AlexNet`], checked
//! strictly against the parameters its configuration lists.
//!
//! A state dict holds tensors in PyTorch's conventions: conv weights `[out, in/groups, k, k]`,
//! linear weights `[out, in]` (Burn stores `[in, out]`; loading transposes). Key names follow
//! a [`KeyLayout`]: `nn.Sequential` indices of [`AlexNetConfig::layers`] (for the torchvision
//! preset torchvision's own `features.{0,3,6,8,10}`, `classifier.{1,4,6}`; for the paper
//! preset `features.{0,4,8,10,12}`, `classifier.{0,3,6}`, the layout
//! `fixtures/make_fixtures.py` defines) or the paper's names `conv1.weight` … `fc8.bias`.

use std::collections::{BTreeMap, HashMap};

use burn::module::Param;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use safetensors::{Dtype, SafeTensors};

use crate::config::AlexNetConfig;
use crate::error::AlexNetError;
use crate::layers::{KeyLayout, Parameter};
use crate::model::AlexNet;
use crate::tensor::HostTensor;

/// Parameter name → tensor, PyTorch conventions.
pub type StateDict = BTreeMap<String, HostTensor>;

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

/// Little-endian raw values of a supported dtype, as f32 (integers rounded as PyTorch's
/// `.float()` rounds them).
pub(crate) fn decode(dtype: Dtype, data: &[u8]) -> Option<Vec<f32>> {
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
        Dtype::I8 => data.iter().map(|&b| b as i8 as f32).collect(),
        Dtype::BOOL => data.iter().map(|&b| (b != 0) as u8 as f32).collect(),
        Dtype::I16 => data
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]) as f32)
            .collect(),
        Dtype::I32 => data
            .chunks_exact(4)
            .map(|b| i32::from_le_bytes(b.try_into().expect("4 bytes")) as f32)
            .collect(),
        Dtype::I64 => data
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")) as f32)
            .collect(),
        _ => return None,
    };
    Some(values)
}

/// The one strict check of a state dict against a configuration: the first missing,
/// wrong-shaped or unexpected key is an error naming the key and both shapes.
pub fn check_state_dict(
    dict: &StateDict,
    config: &AlexNetConfig,
    layout: KeyLayout,
) -> Result<(), AlexNetError> {
    let expected = config.parameters()?;
    let network = || config.variant.name().to_string();
    for parameter in &expected {
        let key = parameter.key(layout);
        match dict.get(&key) {
            None => {
                return Err(AlexNetError::MissingKey {
                    key,
                    network: network(),
                    expected: parameter.shape.clone(),
                })
            }
            Some(found) if found.shape != parameter.shape => {
                return Err(AlexNetError::ShapeMismatch {
                    key,
                    network: network(),
                    found: found.shape.clone(),
                    expected: parameter.shape.clone(),
                })
            }
            Some(_) => {}
        }
    }
    let known: Vec<String> = expected.iter().map(|p| p.key(layout)).collect();
    match dict.iter().find(|(key, _)| !known.contains(key)) {
        Some((key, tensor)) => Err(AlexNetError::UnexpectedKey {
            key: key.clone(),
            network: network(),
            shape: tensor.shape.clone(),
        }),
        None => Ok(()),
    }
}

impl<B: Backend> AlexNet<B> {
    /// Replaces every parameter with the state dict's, strictly ([`check_state_dict`]): a
    /// missing key, an unexpected key or a wrong shape is an error naming the key (and both
    /// shapes), and nothing is half-loaded.
    pub fn load_state_dict(
        mut self,
        dict: &StateDict,
        layout: KeyLayout,
    ) -> Result<Self, AlexNetError> {
        check_state_dict(dict, self.config(), layout)?;
        let parameters = self.config().parameters()?;
        let mut pairs = parameters.chunks(2).map(|pair| {
            let tensor = |p: &Parameter| &dict[&p.key(layout)];
            (tensor(&pair[0]), tensor(&pair[1]))
        });
        let device = self.convs()[0].weight.device();
        let (convs, linears) = self.weighted_mut();
        for (conv, (weight, bias)) in convs.into_iter().zip(pairs.by_ref()) {
            conv.weight = replace(conv.weight.clone(), weight, &device);
            conv.bias = conv.bias.take().map(|b| replace(b, bias, &device));
        }
        for (fc, (weight, bias)) in linears.into_iter().zip(pairs) {
            let rows = weight.shape[0] / fc.parts.len();
            for (k, part) in fc.parts.iter_mut().enumerate() {
                let weight = weight.rows(k * rows, rows).transpose();
                part.weight = replace(part.weight.clone(), &weight, &device);
                let bias = bias.rows(k * rows, rows);
                part.bias = part.bias.take().map(|b| replace(b, &bias, &device));
            }
        }
        Ok(self)
    }

    /// Every parameter under `layout`'s names, in PyTorch's conventions.
    pub fn state_dict(&self, layout: KeyLayout) -> StateDict {
        let parameters = self
            .config()
            .parameters()
            .expect("a built network has a valid configuration");
        let mut keys = parameters
            .chunks(2)
            .map(|pair| (pair[0].key(layout), pair[1].key(layout)));
        let mut dict = StateDict::new();
        for (conv, (weight, bias)) in self.convs().into_iter().zip(keys.by_ref()) {
            dict.insert(weight, HostTensor::from_tensor(conv.weight.val()));
            if let Some(b) = &conv.bias {
                dict.insert(bias, HostTensor::from_tensor(b.val()));
            }
        }
        for (fc, (weight, bias)) in self.linears().into_iter().zip(keys) {
            let weights = fc
                .parts
                .iter()
                .map(|p| HostTensor::from_tensor(p.weight.val()).transpose());
            dict.insert(weight, HostTensor::stack_rows(weights));
            let biases = fc
                .parts
                .iter()
                .filter_map(|p| p.bias.as_ref())
                .map(|b| HostTensor::from_tensor(b.val()));
            dict.insert(bias, HostTensor::stack_rows(biases));
        }
        dict
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
