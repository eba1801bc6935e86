//! [`AlexNet<B>`]: the network itself, for any Burn backend.

use burn::module::{Initializer, Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig, LocalResponseNorm, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use crate::config::{
    AlexNetConfig, ConvLayerConfig, DropoutPlacement, InitScheme, POOL_KERNEL, POOL_STRIDE,
};
use crate::error::AlexNetError;
use crate::shapes::LayerShapes;

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
            other => Err(AlexNetError::Config(format!(
                "unknown layer `{other}` (expected pool5, fc6, fc7 or fc8)"
            ))),
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

impl<B: Backend> SplitLinear<B> {
    /// `[B, in] → [B, out]`: every part's output, concatenated.
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        match self.parts.as_slice() {
            [single] => single.forward(x),
            parts => Tensor::cat(parts.iter().map(|p| p.forward(x.clone())).collect(), 1),
        }
    }

    /// `(inputs, outputs)` of the whole layer, from shapes alone.
    pub fn dims(&self) -> (usize, usize) {
        let shapes = self.parts.iter().map(|p| p.weight.lazy_shape());
        let inputs = self.parts[0].weight.lazy_shape()[0];
        (inputs, shapes.map(|s| s[1]).sum())
    }
}

/// AlexNet: five convolutions and three fully connected layers.
///
/// Layers are named as in the paper and Caffe (`conv1..conv5`, `fc6..fc8`); `lrn1`/`lrn2`
/// exist when the configuration has LRN, `avgpool` when it has an adaptive pool.
#[derive(Module, Debug)]
pub struct AlexNet<B: Backend> {
    /// conv1: `[B, 3, H, W] → [B, C1, H1, W1]` (paper/torchvision at 224: 55×55).
    pub conv1: Conv2d<B>,
    /// LRN after conv1's ReLU (paper variant).
    pub lrn1: Option<LocalResponseNorm>,
    /// conv2: `[B, C1, 27, 27] → [B, C2, 27, 27]` at 224 (groups 2 in the paper).
    pub conv2: Conv2d<B>,
    /// LRN after conv2's ReLU (paper variant).
    pub lrn2: Option<LocalResponseNorm>,
    /// conv3: `[B, C2, 13, 13] → [B, C3, 13, 13]` at 224.
    pub conv3: Conv2d<B>,
    /// conv4: `[B, C3, 13, 13] → [B, C4, 13, 13]` at 224 (groups 2 in the paper).
    pub conv4: Conv2d<B>,
    /// conv5: `[B, C4, 13, 13] → [B, C5, 13, 13]` at 224 (groups 2 in the paper).
    pub conv5: Conv2d<B>,
    /// The overlapping 3×3/2 max pool used after conv1, conv2 and conv5.
    pub pool: MaxPool2d,
    /// torchvision's adaptive average pool to 6×6 before fc6.
    pub avgpool: Option<AdaptiveAvgPool2d>,
    /// Dropout of the classifier (active only on autodiff backends).
    pub dropout: Dropout,
    /// fc6: `[B, C5·6·6] → [B, hidden]`.
    pub fc6: SplitLinear<B>,
    /// fc7: `[B, hidden] → [B, hidden]`.
    pub fc7: SplitLinear<B>,
    /// fc8: `[B, hidden] → [B, num_classes]`.
    pub fc8: SplitLinear<B>,
    #[module(skip)]
    config: AlexNetConfig,
}

impl AlexNetConfig {
    /// Builds the network with freshly initialised parameters (see [`InitScheme`]).
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<AlexNet<B>, AlexNetError> {
        self.validate()?;
        let paper_init = self.init == InitScheme::Paper;
        let shapes = LayerShapes::compute(self, self.input_size)?;
        let widths = self.widths();
        let inputs = [self.in_channels, widths[0], widths[1], widths[2], widths[3]];
        // The paper: bias 1 on conv2, conv4, conv5, fc6, fc7 ("accelerates the early stages
        // of learning by providing the ReLUs with positive inputs"), 0 elsewhere.
        let conv_bias_one = [false, true, false, true, true];
        let mut convs = self.convs.iter().zip(inputs).zip(conv_bias_one).map(
            |((conv, channels_in), bias_one)| {
                conv_layer(conv, channels_in, paper_init.then_some(bias_one), device)
            },
        );
        let mut next_conv = || convs.next().expect("five convolutions");
        let lrn = || self.lrn.as_ref().map(|lrn| lrn.burn_config().init());
        let hidden = self.hidden;
        Ok(AlexNet {
            conv1: next_conv(),
            lrn1: lrn(),
            conv2: next_conv(),
            lrn2: lrn(),
            conv3: next_conv(),
            conv4: next_conv(),
            conv5: next_conv(),
            pool: MaxPool2dConfig::new([POOL_KERNEL; 2])
                .with_strides([POOL_STRIDE; 2])
                .init(),
            avgpool: self
                .adaptive_pool
                .map(|side| AdaptiveAvgPool2dConfig::new([side, side]).init()),
            dropout: DropoutConfig::new(self.dropout).init(),
            fc6: self.split_linear(shapes.fc6_inputs(), hidden, Some(true), device)?,
            fc7: self.split_linear(hidden, hidden, Some(true), device)?,
            fc8: self.split_linear(hidden, self.num_classes, Some(false), device)?,
            config: self.clone(),
        })
    }
}

impl AlexNetConfig {
    /// A fully connected layer, split into as few equal output slices as keep each weight
    /// within `max_param_bytes`. `paper_bias_one` applies under the paper's initialisation.
    fn split_linear<B: Backend>(
        &self,
        inputs: usize,
        outputs: usize,
        paper_bias_one: Option<bool>,
        device: &B::Device,
    ) -> Result<SplitLinear<B>, AlexNetError> {
        let parts = self.fc_parts(inputs, outputs)?;
        let bias_one = paper_bias_one.filter(|_| self.init == InitScheme::Paper);
        let parts = (0..parts)
            .map(|_| linear_layer(inputs, outputs / parts, bias_one, device))
            .collect();
        Ok(SplitLinear { parts })
    }

    /// How many output slices an `inputs × outputs` layer needs under `max_param_bytes`.
    pub fn fc_parts(&self, inputs: usize, outputs: usize) -> Result<usize, AlexNetError> {
        let Some(limit) = self.max_param_bytes else {
            return Ok(1);
        };
        let bytes = |parts: usize| inputs * (outputs / parts) * std::mem::size_of::<f32>();
        (1..=outputs)
            .find(|&parts| outputs.is_multiple_of(parts) && bytes(parts) <= limit)
            .ok_or_else(|| {
                AlexNetError::Config(format!(
                    "a {inputs}×{outputs} layer cannot be split into buffers of at most {limit} bytes"
                ))
            })
    }
}

/// The paper's weight initialiser: N(0, 0.01).
const PAPER_WEIGHTS: Initializer = Initializer::Normal {
    mean: 0.0,
    std: 0.01,
};

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

    /// Trainable parameters, counted from shapes alone: unlike `Module::num_params` it does
    /// not force Burn's lazy initialisation (61 M random draws take seconds on a CPU).
    pub fn parameter_count(&self) -> usize {
        let convs = [
            &self.conv1,
            &self.conv2,
            &self.conv3,
            &self.conv4,
            &self.conv5,
        ];
        let conv_params = convs.iter().map(|c| {
            c.weight.lazy_shape().num_elements()
                + c.bias.as_ref().map_or(0, |b| b.lazy_shape().num_elements())
        });
        let fc_params = [&self.fc6, &self.fc7, &self.fc8].map(|fc| {
            let (inputs, outputs) = fc.dims();
            inputs * outputs + outputs
        });
        conv_params.sum::<usize>() + fc_params.iter().sum::<usize>()
    }

    /// Stops conv1..conv5 from training (fine-tuning with `--freeze-features`): their
    /// parameters no longer require gradients, so an optimizer step leaves them unchanged
    /// (weight decay included); fc6..fc8 train as before.
    pub fn freeze_features(mut self) -> Self {
        self.conv1 = self.conv1.no_grad();
        self.conv2 = self.conv2.no_grad();
        self.conv3 = self.conv3.no_grad();
        self.conv4 = self.conv4.no_grad();
        self.conv5 = self.conv5.no_grad();
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

    /// Class scores: `[B, 3, H, W] → [B, num_classes]` (unnormalised logits).
    pub fn forward(&self, images: Tensor<B, 4>) -> Result<Tensor<B, 2>, AlexNetError> {
        self.embed(images, FeatureLayer::Logits)
    }

    /// Activations of `layer`, flattened to `[B, features]`.
    pub fn embed(
        &self,
        images: Tensor<B, 4>,
        layer: FeatureLayer,
    ) -> Result<Tensor<B, 2>, AlexNetError> {
        self.check_input(images.dims())?;
        let x = self.features(images).flatten::<2>(1, 3);
        Ok(self.classifier(x, layer))
    }

    /// conv1..pool5 (and the adaptive pool): `[B, 3, H, W] → [B, C5, 6, 6]` at 224.
    /// Assumes [`check_input`](Self::check_input) passed.
    fn features(&self, images: Tensor<B, 4>) -> Tensor<B, 4> {
        // [B, 3, 224, 224] → conv1 [B, C1, 55, 55] → pool [B, C1, 27, 27]
        let x = self.local_norm(relu(self.conv1.forward(images)), &self.lrn1);
        let x = self.pool.forward(x);
        // → conv2 [B, C2, 27, 27] → pool [B, C2, 13, 13]
        let x = self.local_norm(relu(self.conv2.forward(x)), &self.lrn2);
        let x = self.pool.forward(x);
        // → conv3, conv4, conv5 [B, C5, 13, 13] → pool [B, C5, 6, 6]
        let x = relu(self.conv3.forward(x));
        let x = relu(self.conv4.forward(x));
        let x = relu(self.conv5.forward(x));
        let x = self.pool.forward(x);
        match &self.avgpool {
            Some(avgpool) => avgpool.forward(x),
            None => x,
        }
    }

    fn local_norm(&self, x: Tensor<B, 4>, lrn: &Option<LocalResponseNorm>) -> Tensor<B, 4> {
        match lrn {
            Some(lrn) => lrn.forward(x),
            None => x,
        }
    }

    /// fc6..fc8 on the flattened pool5 map `[B, C5·6·6]`, stopping after `layer`.
    fn classifier(&self, x: Tensor<B, 2>, layer: FeatureLayer) -> Tensor<B, 2> {
        if layer == FeatureLayer::Pool5 {
            return x;
        }
        let before = self.config.dropout_placement == DropoutPlacement::BeforeHidden;
        let drop_before = |x: Tensor<B, 2>| if before { self.dropout.forward(x) } else { x };
        let drop_after = |x: Tensor<B, 2>| if before { x } else { self.dropout.forward(x) };

        let x = relu(self.fc6.forward(drop_before(x)));
        if layer == FeatureLayer::Fc6 {
            return x;
        }
        let x = relu(self.fc7.forward(drop_before(drop_after(x))));
        if layer == FeatureLayer::Fc7 {
            return x;
        }
        self.fc8.forward(drop_after(x))
    }
}
