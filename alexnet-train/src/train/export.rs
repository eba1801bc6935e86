//! The trained model as files: safetensors with PyTorch key names (`KeyLayout::Sequential`,
//! loadable by `alexnet-infer` and by `model.load_state_dict` in PyTorch) and Burn's
//! Burnpack format, both written by `alexnet_model::checkpoint`; and initial weights for
//! fine-tuning.

use std::path::Path;

use alexnet_common::weights::read_checked;
use alexnet_model::checkpoint::{detect_layout, save_model, WeightFormat};
use alexnet_model::weights::StateDict;
use alexnet_model::AlexNet;
use anyhow::{bail, Context, Result};
use burn::tensor::backend::Backend;

/// Writes `model` as safetensors (`KeyLayout::Sequential`, PyTorch layout, the network's
/// configuration in the metadata so `alexnet-infer` rebuilds any widths) — via
/// [`alexnet_model::checkpoint::save_model`], the one writer of the project.
pub fn save_safetensors<B: Backend>(model: &AlexNet<B>, path: &Path) -> Result<()> {
    save_model(model, path, WeightFormat::Safetensors)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Writes `model` in Burn's Burnpack format (`.bpk`, read by `alexnet-infer`).
pub fn save_burn<B: Backend>(model: &AlexNet<B>, path: &Path) -> Result<()> {
    save_model(model, path, WeightFormat::Burn)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Loads initial weights for fine-tuning from any file `alexnet-infer` reads (PyTorch
/// `.pth`, safetensors, Burn `.bpk`; torchvision or Caffe key names). When fc8's class count
/// differs from the model's, fc8 keeps its fresh initialisation and every other layer is
/// loaded; anything else that does not fit is an error naming the key and both shapes. NaN
/// or infinite values are a warning, or an error when `strict` (`--strict-weights`).
pub fn load_initial<B: Backend>(
    model: AlexNet<B>,
    path: &Path,
    strict: bool,
) -> Result<(AlexNet<B>, bool)> {
    let mut dict = read_checked(path, strict)?.state_dict;
    let layout = detect_layout(&dict).with_context(|| format!("{}", path.display()))?;
    // fc8's weight and bias: the network's last two parameters.
    let parameters = model.config().parameters()?;
    let fc8: Vec<String> = parameters[parameters.len() - 2..]
        .iter()
        .map(|p| p.key(layout))
        .collect();
    let classes = model.config().num_classes;
    let mut replaced = false;
    let Some(weight) = dict.get(&fc8[0]) else {
        bail!("{}: no `{}` tensor", path.display(), fc8[0]);
    };
    if weight.shape.first() != Some(&classes) {
        let fresh: StateDict = model.state_dict(layout);
        for key in &fc8 {
            dict.insert(key.clone(), fresh[key].clone());
        }
        replaced = true;
    }
    // `load_state_dict` keeps each parameter's require-grad flag (trainable, or frozen by
    // `--freeze-features`).
    let model = model
        .load_state_dict(&dict, layout)
        .with_context(|| format!("{}", path.display()))?;
    Ok((model, replaced))
}
