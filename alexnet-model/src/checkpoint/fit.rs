//! The configuration a state dict describes, found by fitting the layer list to its tensors.
//!
//! Each candidate — every variant's preset, as it is and with its LRN layers toggled (LRN
//! moves the `nn.Sequential` indices) — takes its convolution widths, hidden width and class
//! count from the tensors found under its own parameter keys
//! ([`AlexNetConfig::parameters`]). The first candidate that the strict check
//! ([`check_state_dict`]) accepts is the answer, so nothing here knows an index or a key.
//! What shapes cannot tell is taken from the preset: the paper variant's input convention
//! (Caffe's 227 or the default 224 give identical weights: 224), the LRN constants, and,
//! under Caffe names, whether LRN layers exist.

use crate::config::{AlexNetConfig, LrnPreset, Variant};
use crate::error::AlexNetError;
use crate::layers::{KeyLayout, Parameter, ParameterKind};
use crate::weights::{check_state_dict, StateDict};

/// The layout whose name for conv1's weight the dict has: `features.0.weight` (Sequential)
/// or `conv1.weight` (Caffe).
pub fn detect_layout(dict: &StateDict) -> Result<KeyLayout, AlexNetError> {
    let conv1 = AlexNetConfig::torchvision(10)
        .parameters()
        .expect("the torchvision preset is valid")
        .swap_remove(0);
    if let Some(layout) = KeyLayout::ALL
        .into_iter()
        .find(|&layout| dict.contains_key(&conv1.key(layout)))
    {
        return Ok(layout);
    }
    let some: Vec<&str> = dict.keys().take(4).map(String::as_str).collect();
    Err(AlexNetError::Weights(format!(
        "no AlexNet weights: expected `{}` (PyTorch layout) or `{}` (Caffe names), found keys \
         {some:?}{}",
        conv1.key(KeyLayout::Sequential),
        conv1.key(KeyLayout::Caffe),
        if dict.len() > 4 { " ..." } else { "" }
    )))
}

/// The configuration and key layout a state dict describes (see the module docs); with
/// `variant`, only that variant's candidates are tried.
///
/// When none fits, the error is the strict check's for the candidate that matched the most
/// tensors: a missing, unexpected or wrong-shaped key, named with both shapes (and, when a
/// given `variant` is contradicted by shapes that fit another variant, that variant).
pub fn infer_config(
    dict: &StateDict,
    variant: Option<Variant>,
) -> Result<(AlexNetConfig, KeyLayout), AlexNetError> {
    let layout = detect_layout(dict)?;
    let variants = variant.map_or(Variant::ALL.to_vec(), |v| vec![v]);
    let mut closest: Option<(usize, AlexNetError)> = None;
    for candidate in variants.into_iter().flat_map(candidates) {
        let config = fit(dict, candidate, layout);
        let error = match accept(dict, &config, layout) {
            Ok(()) => return Ok((config, layout)),
            Err(error) => error,
        };
        let score = matching_tensors(dict, &config, layout);
        if closest.as_ref().is_none_or(|(best, _)| score > *best) {
            closest = Some((score, error));
        }
    }
    let (_, error) = closest.expect("every variant has candidates");
    let Some(given) = variant else {
        return Err(error);
    };
    match infer_config(dict, None) {
        Ok((fits, _)) if fits.variant != given => Err(AlexNetError::OtherVariant {
            error: Box::new(error),
            fits: fits.variant.name().to_string(),
        }),
        _ => Err(error),
    }
}

/// A variant's preset as it is, then with LRN after conv1 and conv2 toggled.
fn candidates(variant: Variant) -> [AlexNetConfig; 2] {
    let preset = variant.config(10);
    let mut toggled = preset.clone();
    toggled.lrn = match toggled.lrn {
        Some(_) => None,
        None => Some(LrnPreset::CudaConvnet.config()),
    };
    [preset, toggled]
}

/// `candidate` with every width read from the first dimension of the weight under its key
/// (convolutions: their widths; linears: the hidden width from fc6, the classes from fc8).
fn fit(dict: &StateDict, candidate: AlexNetConfig, layout: KeyLayout) -> AlexNetConfig {
    let Ok(parameters) = candidate.parameters() else {
        return candidate;
    };
    let width = |p: &Parameter| {
        dict.get(&p.key(layout))
            .filter(|t| t.shape.len() == p.shape.len())
            .map(|t| t.shape[0])
    };
    let (convs, linears): (Vec<&Parameter>, Vec<&Parameter>) = parameters
        .iter()
        .filter(|p| p.kind == ParameterKind::Weight)
        .partition(|p| p.shape.len() == 4);
    let mut config = candidate.clone();
    let mut widths = config.widths();
    for (width_of, conv) in widths.iter_mut().zip(&convs) {
        *width_of = width(conv).unwrap_or(*width_of);
    }
    config = config.with_widths(widths);
    if let (Some(first), Some(last)) = (linears.first(), linears.last()) {
        config.hidden = width(first).unwrap_or(config.hidden);
        config.num_classes = width(last).unwrap_or(config.num_classes);
    }
    config
}

/// The strict check, then whether the fitted numbers make a buildable network.
fn accept(dict: &StateDict, config: &AlexNetConfig, layout: KeyLayout) -> Result<(), AlexNetError> {
    check_state_dict(dict, config, layout)?;
    config.validate().map_err(|e| {
        AlexNetError::InvalidConfig(format!(
            "the weights' shapes describe no buildable {} network: {e}",
            config.variant.name()
        ))
    })
}

/// How many of the configuration's parameters the dict has with the right shape.
fn matching_tensors(dict: &StateDict, config: &AlexNetConfig, layout: KeyLayout) -> usize {
    config.parameters().map_or(0, |parameters| {
        parameters
            .iter()
            .filter(|p| dict.get(&p.key(layout)).is_some_and(|t| t.shape == p.shape))
            .count()
    })
}
