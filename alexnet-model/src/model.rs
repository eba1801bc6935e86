//! [`AlexNet<B>`]: the network itself, for any Burn backend.
//!
//! Like torchvision's `AlexNet`, it is `features` (a sequence of conv, ReLU, LRN and max-pool
//! modules), an optional `avgpool`, a flatten and `classifier` (dropout, linear, ReLU): one
//! module for each entry of [`AlexNetConfig::layers`], in the same order.

use burn::module::{Initializer, Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{
    Dropout, DropoutConfig, Linear, LinearConfig, LocalResponseNorm, PaddingConfig2d, Relu,
};
use burn::tensor::backend::Backend;
use burn::tensor::ops::ConvOptions;
use burn::tensor::Tensor;

use crate::config::{AlexNetConfig, ConvLayerConfig, InitScheme};
use crate::error::AlexNetError;
use crate::layers::{
    linear_slices, ClassifierOp, FeatureOp, LayerShapes, ParameterKind, POOL_KERNEL, POOL_STRIDE,
};
use crate::ops::{self, AlexNetBackend};

/// Where [`AlexNet::embed`] stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeatureLayer {
    /// The flattened map that enters fc6: `[B, C5·6·6]` (after the adaptive pool if any).
    Pool5,
    /// fc6 after its ReLU: `[B, hidden]`.
    Fc6,
    /// fc7 after its ReLU: `[B, hidden]` — the classic "AlexNet feature".
    Fc7,
    /// fc8, the logits: `[B, num_classes]`.
    Logits,
}

impl FeatureLayer {
    /// Parses `pool5`, `fc6`, `fc7` or `fc8`/`logits`.
    pub fn parse(name: &str) -> Result<Self, AlexNetError> {
        match name {
            "pool5" => Ok(Self::Pool5),
            "fc6" => Ok(Self::Fc6),
            "fc7" => Ok(Self::Fc7),
            "fc8" | "logits" => Ok(Self::Logits),
            other => Err(AlexNetError::InvalidConfig(format!(
                "unknown layer `{other}` (expected pool5, fc6, fc7 or fc8)"
            ))),
        }
    }

    /// How many fully connected layers run before the output is taken (with their ReLU).
    fn linears(self) -> usize {
        match self {
            Self::Pool5 => 0,
            Self::Fc6 => 1,
            Self::Fc7 => 2,
            Self::Logits => usize::MAX,
        }
    }
}

/// A fully connected layer stored as one or more slices of its outputs.
///
/// The paper split fc6 across two GPUs; here the split keeps every weight buffer under a
/// backend's limit (WebGPU's default storage-buffer binding is 128 MiB, fc6's weight 151 MB).
/// With one part it is exactly a [`Linear`].
#[derive(Module, Debug)]
pub struct SplitLinear<B: Backend> {
    /// Output slices in order; part `k` maps `[B, in]` to `[B, out/parts]`.
    pub parts: Vec<Linear<B>>,
}

impl<B: AlexNetBackend> SplitLinear<B> {
    /// `[B, in] → [B, out]`: every part's output ([`ops::fully_connected`]), concatenated.
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let part = |p: &Linear<B>, x| {
            ops::fully_connected(x, p.weight.val(), p.bias.as_ref().map(|b| b.val()))
        };
        match self.parts.as_slice() {
            [single] => part(single, x),
            parts => Tensor::cat(parts.iter().map(|p| part(p, x.clone())).collect(), 1),
        }
    }
}

impl<B: Backend> SplitLinear<B> {
    /// `(inputs, outputs)` of the whole layer, from shapes alone.
    pub fn dims(&self) -> (usize, usize) {
        let shapes = self.parts.iter().map(|p| p.weight.lazy_shape());
        let inputs = self.parts[0].weight.lazy_shape()[0];
        (inputs, shapes.map(|s| s[1]).sum())
    }
}

/// One module of `features`: `[B, C, H, W] → [B, C', H', W']`.
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Feature<B: Backend> {
    /// A convolution, conv1 … conv5.
    Conv(Conv2d<B>),
    /// ReLU.
    Relu(Relu),
    /// Local response normalisation (paper variant).
    Lrn(LocalResponseNorm),
    /// The overlapping 3×3/2 max pool.
    MaxPool(MaxPool2d),
}

impl<B: Backend> Feature<B> {
    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        match self {
            Self::Conv(conv) => conv.forward(x),
            Self::Relu(relu) => relu.forward(x),
            Self::Lrn(lrn) => lrn.forward(x),
            Self::MaxPool(pool) => pool.forward(x),
        }
    }
}

/// `relu(conv(x))` through [`ops::conv2d_relu`] (one fused operation where the backend has
/// one); a convolution without bias or with asymmetric padding takes the plain modules.
fn conv_relu<B: AlexNetBackend>(conv: &Conv2d<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
    match (&conv.bias, &conv.padding) {
        (Some(bias), &PaddingConfig2d::Explicit(top, left, bottom, right))
            if top == bottom && left == right =>
        {
            let options = ConvOptions::new(conv.stride, [top, left], conv.dilation, conv.groups);
            ops::conv2d_relu(x, conv.weight.val(), bias.val(), options)
        }
        _ => Relu::new().forward(conv.forward(x)),
    }
}

/// One module of `classifier`: `[B, F] → [B, F']`.
#[derive(Module, Debug)]
pub enum Classifier<B: Backend> {
    /// Dropout (active only on autodiff backends).
    Dropout(Dropout),
    /// A fully connected layer, fc6 … fc8.
    Linear(SplitLinear<B>),
    /// ReLU.
    Relu(Relu),
}

impl<B: AlexNetBackend> Classifier<B> {
    fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        match self {
            Self::Dropout(dropout) => dropout.forward(x),
            Self::Linear(linear) => linear.forward(x),
            Self::Relu(relu) => relu.forward(x),
        }
    }
}

/// AlexNet: five convolutions and three fully connected layers, built from an
/// [`AlexNetConfig`] with [`AlexNetConfig::init`].
///
/// `[B, 3, H, W]` images → `features` → `[B, C5, 6, 6]` at 224 → `avgpool` (torchvision) →
/// flatten `[B, C5·6·6]` → `classifier` → `[B, num_classes]` logits.
#[derive(Module, Debug)]
pub struct AlexNet<B: Backend> {
    /// conv1 … pool5, one module per [`FeatureOp`].
    pub features: Vec<Feature<B>>,
    /// torchvision's adaptive average pool to 6×6 before fc6.
    pub avgpool: Option<AdaptiveAvgPool2d>,
    /// fc6 … fc8, one module per [`ClassifierOp`].
    pub classifier: Vec<Classifier<B>>,
    #[module(skip)]
    config: AlexNetConfig,
}

/// The paper's bias initialisation: 1 on these layers ("accelerates the early stages of
/// learning by providing the ReLUs with positive inputs"), 0 elsewhere.
const PAPER_BIAS_ONE: [&str; 5] = ["conv2", "conv4", "conv5", "fc6", "fc7"];

/// The paper's weight initialiser: N(0, 0.01).
const PAPER_WEIGHTS: Initializer = Initializer::Normal {
    mean: 0.0,
    std: 0.01,
};

impl AlexNetConfig {
    /// Builds the network with freshly initialised parameters (see [`InitScheme`]).
    ///
    /// # Panics
    /// When the configuration is invalid ([`validate`](Self::validate) says why); use
    /// [`try_init`](Self::try_init) to get the error instead.
    pub fn init<B: Backend>(&self, device: &B::Device) -> AlexNet<B> {
        self.try_init(device)
            .unwrap_or_else(|e| panic!("AlexNetConfig::init: {e}"))
    }

    /// Builds the network, or says why the configuration describes none.
    pub fn try_init<B: Backend>(&self, device: &B::Device) -> Result<AlexNet<B>, AlexNetError> {
        self.validate()?;
        let layers = self.layers();
        let mut weights = self
            .parameters()?
            .into_iter()
            .filter(|p| p.kind == ParameterKind::Weight);
        let mut next_weight = || weights.next().expect("a weight for every conv and linear");
        let mut channels = self.in_channels;
        let mut features = Vec::new();
        for op in &layers.features {
            features.push(match op {
                FeatureOp::Conv(conv) => {
                    let bias_one = self.paper_bias_one(&next_weight().layer);
                    let layer = conv_layer(conv, channels, bias_one, device);
                    channels = conv.out_channels;
                    Feature::Conv(layer)
                }
                FeatureOp::Relu => Feature::Relu(Relu::new()),
                FeatureOp::Lrn(lrn) => Feature::Lrn(lrn.burn_config().init()),
                FeatureOp::MaxPool => Feature::MaxPool(
                    MaxPool2dConfig::new([POOL_KERNEL; 2])
                        .with_strides([POOL_STRIDE; 2])
                        .init(),
                ),
            });
        }
        let mut classifier = Vec::new();
        for op in &layers.classifier {
            classifier.push(match op {
                ClassifierOp::Dropout(p) => Classifier::Dropout(DropoutConfig::new(*p).init()),
                ClassifierOp::Linear(_) => {
                    let weight = next_weight();
                    let (outputs, inputs) = (weight.shape[0], weight.shape[1]);
                    let bias_one = self.paper_bias_one(&weight.layer);
                    Classifier::Linear(self.split_linear(inputs, outputs, bias_one, device)?)
                }
                ClassifierOp::Relu => Classifier::Relu(Relu::new()),
            });
        }
        Ok(AlexNet {
            features,
            avgpool: layers
                .avgpool
                .map(|side| AdaptiveAvgPool2dConfig::new([side, side]).init()),
            classifier,
            config: self.clone(),
        })
    }

    /// `Some(bias is 1)` under the paper's initialisation, `None` under PyTorch's.
    fn paper_bias_one(&self, layer: &str) -> Option<bool> {
        (self.init == InitScheme::Paper).then(|| PAPER_BIAS_ONE.contains(&layer))
    }

    /// A fully connected layer, split into as few equal output slices as keep each weight
    /// within `max_param_bytes`.
    fn split_linear<B: Backend>(
        &self,
        inputs: usize,
        outputs: usize,
        paper_bias_one: Option<bool>,
        device: &B::Device,
    ) -> Result<SplitLinear<B>, AlexNetError> {
        let parts = linear_slices(inputs, outputs, self.max_param_bytes)?;
        let parts = (0..parts)
            .map(|_| linear_layer(inputs, outputs / parts, paper_bias_one, device))
            .collect();
        Ok(SplitLinear { parts })
    }
}

/// The paper's bias: 1 or 0.
fn paper_bias<B: Backend>(width: usize, one: bool, device: &B::Device) -> Param<Tensor<B, 1>> {
    let value = if one { 1.0 } else { 0.0 };
    Initializer::Constant { value }.init([width], device)
}

/// A convolution; `paper_bias_one` is `Some` under the paper's initialisation (bias 1 or 0),
/// `None` for PyTorch's default (which Burn's default initialiser reproduces).
fn conv_layer<B: Backend>(
    conv: &ConvLayerConfig,
    channels_in: usize,
    paper_bias_one: Option<bool>,
    device: &B::Device,
) -> Conv2d<B> {
    let p = conv.padding;
    let mut config = Conv2dConfig::new([channels_in, conv.out_channels], [conv.kernel; 2])
        .with_stride([conv.stride; 2])
        .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
        .with_groups(conv.groups);
    if paper_bias_one.is_some() {
        config = config.with_initializer(PAPER_WEIGHTS);
    }
    let mut layer = config.init(device);
    if let Some(one) = paper_bias_one {
        layer.bias = Some(paper_bias(conv.out_channels, one, device));
    }
    layer
}

/// A fully connected layer, initialised like [`conv_layer`].
fn linear_layer<B: Backend>(
    inputs: usize,
    outputs: usize,
    paper_bias_one: Option<bool>,
    device: &B::Device,
) -> Linear<B> {
    let mut config = LinearConfig::new(inputs, outputs);
    if paper_bias_one.is_some() {
        config = config.with_initializer(PAPER_WEIGHTS);
    }
    let mut layer = config.init(device);
    if let Some(one) = paper_bias_one {
        layer.bias = Some(paper_bias(outputs, one, device));
    }
    layer
}

impl<B: Backend> AlexNet<B> {
    /// The configuration this network was built from.
    pub fn config(&self) -> &AlexNetConfig {
        &self.config
    }

    /// conv1 … conv5, in order.
    pub fn convs(&self) -> Vec<&Conv2d<B>> {
        self.features
            .iter()
            .filter_map(|layer| match layer {
                Feature::Conv(conv) => Some(conv),
                _ => None,
            })
            .collect()
    }

    /// fc6 … fc8, in order.
    pub fn linears(&self) -> Vec<&SplitLinear<B>> {
        self.classifier
            .iter()
            .filter_map(|layer| match layer {
                Classifier::Linear(linear) => Some(linear),
                _ => None,
            })
            .collect()
    }

    /// conv1 … conv5 and fc6 … fc8, mutably, in order (for loading weights).
    pub(crate) fn weighted_mut(&mut self) -> (Vec<&mut Conv2d<B>>, Vec<&mut SplitLinear<B>>) {
        let convs = self
            .features
            .iter_mut()
            .filter_map(|layer| match layer {
                Feature::Conv(conv) => Some(conv),
                _ => None,
            })
            .collect();
        let linears = self
            .classifier
            .iter_mut()
            .filter_map(|layer| match layer {
                Classifier::Linear(linear) => Some(linear),
                _ => None,
            })
            .collect();
        (convs, linears)
    }

    /// Trainable parameters, counted from shapes alone: unlike `Module::num_params` it does
    /// not force Burn's lazy initialisation (61 M random draws take seconds on a CPU).
    pub fn parameter_count(&self) -> usize {
        let conv_params = self.convs().into_iter().map(|c| {
            c.weight.lazy_shape().num_elements()
                + c.bias.as_ref().map_or(0, |b| b.lazy_shape().num_elements())
        });
        let fc_params = self.linears().into_iter().map(|fc| {
            let (inputs, outputs) = fc.dims();
            inputs * outputs + outputs
        });
        conv_params.sum::<usize>() + fc_params.sum::<usize>()
    }

    /// Stops conv1..conv5 from training (fine-tuning with `--freeze-features`): their
    /// parameters no longer require gradients, so an optimizer step leaves them unchanged
    /// (weight decay included); fc6..fc8 train as before.
    pub fn freeze_features(mut self) -> Self {
        self.features = self
            .features
            .into_iter()
            .map(|layer| match layer {
                Feature::Conv(conv) => Feature::Conv(conv.no_grad()),
                other => other,
            })
            .collect();
        self
    }

    /// Checks that `[B, C, H, W]` images fit: the channel count, and every layer's window
    /// (the error names the smallest input the network accepts).
    pub fn check_input(&self, dims: [usize; 4]) -> Result<(), AlexNetError> {
        let [batch, channels, height, width] = dims;
        if batch == 0 {
            return Err(AlexNetError::Input("empty batch".into()));
        }
        if channels != self.config.in_channels {
            return Err(AlexNetError::Input(format!(
                "expected {} channels, got {channels} (shape {dims:?})",
                self.config.in_channels
            )));
        }
        LayerShapes::compute(&self.config, height)?;
        LayerShapes::compute(&self.config, width)?;
        Ok(())
    }
}

/// The forward pass, on backends with AlexNet's operations ([`AlexNetBackend`]).
impl<B: AlexNetBackend> AlexNet<B> {
    /// Class scores: `[B, 3, H, W] → [B, num_classes]` (unnormalised logits).
    ///
    /// # Panics
    /// When the images do not fit the network (wrong channel count, too small, or another
    /// size than a flatten variant was built for); [`try_forward`](Self::try_forward) returns
    /// that as an error.
    pub fn forward(&self, images: Tensor<B, 4>) -> Tensor<B, 2> {
        self.embed(images, FeatureLayer::Logits)
    }

    /// [`forward`](Self::forward), or [`AlexNetError::InputTooSmall`] /
    /// [`AlexNetError::Input`] when the images do not fit.
    pub fn try_forward(&self, images: Tensor<B, 4>) -> Result<Tensor<B, 2>, AlexNetError> {
        self.try_embed(images, FeatureLayer::Logits)
    }

    /// Activations of `layer`, flattened to `[B, features]`.
    ///
    /// # Panics
    /// As [`forward`](Self::forward); [`try_embed`](Self::try_embed) returns the error.
    pub fn embed(&self, images: Tensor<B, 4>, layer: FeatureLayer) -> Tensor<B, 2> {
        self.try_embed(images, layer)
            .unwrap_or_else(|e| panic!("AlexNet::forward: {e}"))
    }

    /// [`embed`](Self::embed), or the error when the images do not fit.
    pub fn try_embed(
        &self,
        images: Tensor<B, 4>,
        layer: FeatureLayer,
    ) -> Result<Tensor<B, 2>, AlexNetError> {
        self.check_input(images.dims())?;
        // [B, 3, 224, 224] → conv1 … pool5 → [B, C5, 6, 6]
        let mut x = images;
        let mut modules = self.features.iter().peekable();
        while let Some(module) = modules.next() {
            x = match (module, modules.peek()) {
                // conv → ReLU as one operation.
                (Feature::Conv(conv), Some(Feature::Relu(_))) => {
                    modules.next();
                    conv_relu(conv, x)
                }
                (Feature::MaxPool(_), _) => ops::max_pool(x, [POOL_KERNEL; 2], [POOL_STRIDE; 2]),
                (Feature::Lrn(_), _) => match &self.config.lrn {
                    Some(lrn) => ops::local_response_norm(x, lrn),
                    None => module.forward(x),
                },
                _ => module.forward(x),
            };
        }
        let x = match &self.avgpool {
            Some(avgpool) => avgpool.forward(x),
            None => x,
        };
        // → [B, C5·6·6] → fc6 … fc8, stopping after the ReLU of the layer asked for.
        let mut x = x.flatten::<2>(1, 3);
        let mut linears = 0;
        for module in &self.classifier {
            if linears == layer.linears() && !matches!(module, Classifier::Relu(_)) {
                break;
            }
            if matches!(module, Classifier::Linear(_)) {
                linears += 1;
            }
            x = module.forward(x);
        }
        Ok(x)
    }
}
