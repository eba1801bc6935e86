//! Parity with PyTorch on every backend CI can run: LRN presets, a grouped convolution and a
//! tiny model of each variant's layout, against `fixtures/*.safetensors` written by
//! `fixtures/make_fixtures.py` (PyTorch).

use std::collections::HashMap;
use std::path::PathBuf;

use alexnet_model::config::LrnConfig;
use alexnet_model::tensor::HostTensor;
use alexnet_model::weights::{read_safetensors, StateDict};
use alexnet_model::KeyLayout;
use alexnet_model::{ops, AlexNetBackend, AlexNetConfig, LrnPreset};
use burn::nn::conv::Conv2dConfig;
use burn::nn::PaddingConfig2d;
use burn::tensor::backend::Backend;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{ElementConversion, Tensor};

fn fixture(name: &str) -> (StateDict, HashMap<String, String>) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures")
        .join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    read_safetensors(&bytes).expect("fixture parses")
}

/// The backend's default device, or `None` (with a notice) when it cannot run: a machine
/// without a Vulkan/Metal/DX12 adapter skips the wgpu tests, unless `ALEXNET_REQUIRE_WGPU=1`
/// (set by `.ci/run`, which installs a software Vulkan device) makes that a failure.
fn usable_device<B: Backend>() -> Option<B::Device> {
    let device = B::Device::default();
    match alexnet_model::device::probe::<B>(&device) {
        Ok(()) => Some(device),
        Err(e) if std::env::var_os("ALEXNET_REQUIRE_WGPU").is_some_and(|v| v == "1") => {
            panic!("no usable device ({e}) and ALEXNET_REQUIRE_WGPU=1")
        }
        Err(e) => {
            eprintln!("skipped: no usable device for this backend ({e})");
            None
        }
    }
}

fn take<'a>(dict: &'a StateDict, key: &str) -> &'a HostTensor {
    dict.get(key)
        .unwrap_or_else(|| panic!("fixture lacks `{key}`"))
}

/// Largest absolute difference, after checking the shapes agree.
fn max_abs_diff<B: Backend, const D: usize>(actual: Tensor<B, D>, expected: &HostTensor) -> f32 {
    let actual = HostTensor::from_tensor(actual);
    assert_eq!(actual.shape, expected.shape, "shape");
    actual
        .values
        .iter()
        .zip(&expected.values)
        .map(|(a, e)| (a - e).abs())
        .fold(0.0, f32::max)
}

/// LRN as the model runs it (`ops::local_response_norm`: Flex's own kernel, Burn's
/// composition elsewhere).
fn check_lrn<B: AlexNetBackend>() {
    let Some(device) = usable_device::<B>() else {
        return;
    };
    for (file, preset) in [
        ("lrn_caffe.safetensors", LrnPreset::Caffe),
        ("lrn_cuda_convnet.safetensors", LrnPreset::CudaConvnet),
        ("lrn_paper_formula.safetensors", LrnPreset::PaperFormula),
    ] {
        let (dict, meta) = fixture(file);
        let config = preset.config();
        let from_torch = LrnConfig::new(
            meta["size"].parse().unwrap(),
            meta["alpha"].parse().unwrap(),
            meta["beta"].parse().unwrap(),
            meta["k"].parse().unwrap(),
        );
        assert_eq!(
            config, from_torch,
            "{file}: preset differs from the fixture's"
        );
        let input = take(&dict, "input").to_tensor::<B, 4>(&device);
        let output = ops::local_response_norm(input, &config);
        let diff = max_abs_diff(output, take(&dict, "output"));
        assert!(diff <= 1e-5, "{preset:?}: max |Δ| = {diff}");
    }
}

/// A grouped convolution, alone (Burn's) and fused with its ReLU as the model runs it.
fn check_grouped_conv<B: AlexNetBackend>() {
    let Some(device) = usable_device::<B>() else {
        return;
    };
    let (dict, _) = fixture("grouped_conv.safetensors");
    let mut conv = Conv2dConfig::new([8, 12], [5, 5])
        .with_padding(PaddingConfig2d::Explicit(2, 2, 2, 2))
        .with_groups(2)
        .init::<B>(&device);
    conv.weight = conv
        .weight
        .map(|_| take(&dict, "weight").to_tensor(&device));
    conv.bias = conv
        .bias
        .map(|b| b.map(|_| take(&dict, "bias").to_tensor(&device)));
    let input: Tensor<B, 4> = take(&dict, "input").to_tensor(&device);
    let expected = take(&dict, "output");
    let diff = max_abs_diff(conv.forward(input.clone()), expected);
    assert!(diff <= 1e-5, "grouped conv: max |Δ| = {diff}");
    let options = ConvOptions::new([1, 1], [2, 2], [1, 1], 2);
    let bias = conv.bias.as_ref().unwrap().val();
    let fused = ops::conv2d_relu(input, conv.weight.val(), bias, options);
    let expected_relu = expected.to_tensor::<B, 4>(&device).clamp_min(0.0);
    let diff = (fused - expected_relu)
        .abs()
        .max()
        .into_scalar()
        .elem::<f32>();
    assert!(diff <= 1e-5, "grouped conv + ReLU: max |Δ| = {diff}");
}

/// Tiny models: the fixture's hyper-parameters must be the config's, its weights load strictly
/// under the Sequential layout, and the logits match PyTorch's at every stored input size.
fn check_tiny_model<B: AlexNetBackend>(file: &str, config: AlexNetConfig) {
    let Some(device) = usable_device::<B>() else {
        return;
    };
    let (mut dict, meta) = fixture(file);
    let widths: Vec<usize> = serde_json::from_str(&meta["widths"]).unwrap();
    assert_eq!(widths, config.widths());
    assert_eq!(meta["hidden"], config.hidden.to_string());
    assert_eq!(meta["num_classes"], config.num_classes.to_string());
    let sizes: Vec<usize> = serde_json::from_str(&meta["sizes"]).unwrap();
    let mut cases = Vec::new();
    for side in &sizes {
        let input = dict.remove(&format!("input_{side}")).unwrap();
        let output = dict.remove(&format!("output_{side}")).unwrap();
        cases.push((side, input, output));
    }
    let model = config
        .init::<B>(&device)
        .load_state_dict(&dict, KeyLayout::Sequential)
        .unwrap();
    for (side, input, expected) in cases {
        let images = input
            .to_tensor::<B, 4>(&device)
            .sub_scalar(128.0)
            .div_scalar(64.0);
        let logits = model.try_forward(images).unwrap();
        let diff = max_abs_diff(logits, &expected);
        assert!(diff <= 1e-4, "{file} at {side}×{side}: max |Δ| = {diff}");
    }
}

fn tiny_torchvision() -> AlexNetConfig {
    AlexNetConfig::torchvision(10)
        .with_widths([8, 16, 24, 16, 16])
        .with_hidden(32)
}

fn tiny_paper() -> AlexNetConfig {
    AlexNetConfig::paper(10)
        .with_widths([8, 16, 24, 24, 16])
        .with_hidden(32)
}

fn tiny_cifar() -> AlexNetConfig {
    AlexNetConfig::cifar(10)
        .with_widths([8, 16, 24, 24, 16])
        .with_hidden(32)
        .with_lrn(Some(LrnPreset::CudaConvnet.config()))
}

macro_rules! parity_tests {
    ($name:ident, $backend:ty) => {
        mod $name {
            use super::*;
            type B = $backend;

            #[test]
            fn lrn_presets_match_pytorch() {
                check_lrn::<B>();
            }

            #[test]
            fn grouped_conv_matches_pytorch() {
                check_grouped_conv::<B>();
            }

            #[test]
            fn tiny_torchvision_matches_pytorch() {
                check_tiny_model::<B>("tiny_torchvision.safetensors", tiny_torchvision());
            }

            /// fc6 stored as four slices, as on a backend with a small buffer limit.
            #[test]
            fn tiny_torchvision_split_fc_matches_pytorch() {
                let config = tiny_torchvision().with_max_param_bytes(Some(20_000));
                check_tiny_model::<B>("tiny_torchvision.safetensors", config);
            }

            #[test]
            fn tiny_paper_matches_pytorch() {
                check_tiny_model::<B>("tiny_paper.safetensors", tiny_paper());
            }

            #[test]
            fn tiny_paper_caffe_input_matches_pytorch() {
                check_tiny_model::<B>("tiny_paper227.safetensors", tiny_paper().with_caffe_input());
            }

            #[test]
            fn tiny_cifar_matches_pytorch() {
                check_tiny_model::<B>("tiny_cifar.safetensors", tiny_cifar());
            }
        }
    };
}

parity_tests!(ndarray, burn::backend::NdArray);
parity_tests!(flex, burn::backend::Flex);
parity_tests!(wgpu, burn::backend::Wgpu);
