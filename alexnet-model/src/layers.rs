//! The network as one declarative list of layers, and everything computed from it.
//!
//! [`AlexNetConfig::layers`] writes AlexNet out the way torchvision's `alexnet.py` does: a
//! `features` list (conv, ReLU, optional LRN, optional max pool, …), an optional adaptive average pool, a
//! flatten, and a `classifier` list (dropout, linear, ReLU, …). It is the only place the
//! layer order is written. From it alone come:
//! * [`AlexNet`](crate::AlexNet)'s modules and its forward pass (one module per entry);
//! * the shape table of `info` ([`LayerShapes`]);
//! * the name of every parameter under each [`KeyLayout`]: `nn.Sequential`'s indices
//!   (`features.3.weight`) or the paper's layer names (`conv2.weight`), and its PyTorch shape
//!   ([`AlexNetConfig::parameters`]);
//! * the configuration a state dict describes (`checkpoint::infer_config`), by fitting the
//!   widths of each parameter entry to the tensors found under its key.

use crate::config::{AlexNetConfig, ConvLayerConfig, DropoutPlacement, LrnConfig};
use crate::error::AlexNetError;

/// Side of the overlapping max pools ("s = 2, z = 3" in the paper).
pub const POOL_KERNEL: usize = 3;
/// Stride of the overlapping max pools.
pub const POOL_STRIDE: usize = 2;

/// One entry of the `features` list: `[B, C, H, W] → [B, C', H', W']`.
#[derive(Debug, Clone, PartialEq)]
pub enum FeatureOp {
    /// A convolution (its input channels follow from the previous convolution).
    Conv(ConvLayerConfig),
    /// `max(x, 0)`.
    Relu,
    /// Local response normalisation across channels.
    Lrn(LrnConfig),
    /// The overlapping [`POOL_KERNEL`]×[`POOL_KERNEL`] max pool of stride [`POOL_STRIDE`].
    MaxPool,
}

/// One entry of the `classifier` list: `[B, F] → [B, F']`.
#[derive(Debug, Clone, PartialEq)]
pub enum ClassifierOp {
    /// Dropout with this probability (active only while training).
    Dropout(f64),
    /// A fully connected layer with this many outputs (its inputs follow from the shapes).
    Linear(usize),
    /// `max(x, 0)`.
    Relu,
}

/// The whole network, in forward order: `features`, then the adaptive average pool to
/// `avgpool`×`avgpool` if any, then flatten, then `classifier`.
#[derive(Debug, Clone, PartialEq)]
pub struct Layers {
    /// conv1 … pool5.
    pub features: Vec<FeatureOp>,
    /// torchvision's `AdaptiveAvgPool2d((6, 6))`: the side, or `None` to flatten pool5 as is.
    pub avgpool: Option<usize>,
    /// fc6 … fc8 with their ReLUs and dropouts.
    pub classifier: Vec<ClassifierOp>,
}

/// How parameter names are spelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyLayout {
    /// `features.N` / `classifier.N`, as `nn.Sequential` numbers the entries of
    /// [`Layers`] (torchvision's own keys for the torchvision preset).
    Sequential,
    /// The paper's and Caffe's layer names: `conv1` … `conv5`, `fc6` … `fc8`.
    Caffe,
}

impl KeyLayout {
    /// Both layouts.
    pub const ALL: [KeyLayout; 2] = [KeyLayout::Sequential, KeyLayout::Caffe];
}

impl AlexNetConfig {
    /// The network as a list of layers: AlexNet's order, written once.
    ///
    /// conv1 → ReLU → (LRN) → pool, conv2 → ReLU → (LRN) → pool, conv3 → ReLU, conv4 → ReLU,
    /// conv5 → ReLU → pool; then fc6, fc7 (each with ReLU and dropout, before or after as
    /// [`DropoutPlacement`] says) and fc8.
    pub fn layers(&self) -> Layers {
        let mut features = Vec::new();
        for (i, conv) in self.convs.iter().enumerate() {
            features.extend([FeatureOp::Conv(conv.clone()), FeatureOp::Relu]);
            if let Some(lrn) = self.lrn.as_ref().filter(|_| i < 2) {
                features.push(FeatureOp::Lrn(lrn.clone()));
            }
            if matches!(i, 0 | 1 | 4) {
                features.push(FeatureOp::MaxPool);
            }
        }
        use ClassifierOp::{Dropout, Linear, Relu};
        let (p, hidden) = (self.dropout, self.hidden);
        let classifier = match self.dropout_placement {
            DropoutPlacement::BeforeHidden => vec![
                Dropout(p),
                Linear(hidden),
                Relu,
                Dropout(p),
                Linear(hidden),
                Relu,
                Linear(self.num_classes),
            ],
            DropoutPlacement::AfterHidden => vec![
                Linear(hidden),
                Relu,
                Dropout(p),
                Linear(hidden),
                Relu,
                Dropout(p),
                Linear(self.num_classes),
            ],
        };
        Layers {
            features,
            avgpool: self.adaptive_pool,
            classifier,
        }
    }

    /// Every parameter tensor the network has, in forward order, with its names and its
    /// PyTorch shape (conv `[out, in/groups, k, k]`, linear `[out, in]`).
    pub fn parameters(&self) -> Result<Vec<Parameter>, AlexNetError> {
        let walk = self
            .walk(self.input_size)
            .map_err(|e| LayerShapes::too_small(self, self.input_size, e.layer))?;
        Ok(walk
            .steps
            .into_iter()
            .flat_map(|step| step.parameters)
            .collect())
    }

    /// Every layer's output for an `input_size`×`input_size` image, or the name of the first
    /// layer that does not fit.
    fn walk(&self, input_size: usize) -> Result<Walk, InputError> {
        let layers = self.layers();
        let mut steps = Vec::new();
        let mut names = Names::default();
        let (mut channels, mut side) = (self.in_channels, input_size);
        for (index, op) in layers.features.iter().enumerate() {
            let key = format!("features.{index}");
            let (name, parameters) = match op {
                FeatureOp::Conv(conv) => {
                    let name = names.next_conv();
                    side = window_output(side, conv.kernel, conv.stride, conv.padding)
                        .ok_or_else(|| InputError::at(&name))?;
                    let group_inputs = channels
                        .checked_div(conv.groups)
                        .ok_or_else(|| InputError::at(&name))?;
                    let weight = [conv.out_channels, group_inputs, conv.kernel, conv.kernel];
                    channels = conv.out_channels;
                    let parameters = Parameter::pair(&name, &key, weight.to_vec(), channels);
                    (Some(name), parameters)
                }
                FeatureOp::Relu => (None, Vec::new()),
                FeatureOp::Lrn(_) => (Some(names.after_conv("lrn")), Vec::new()),
                FeatureOp::MaxPool => {
                    let name = names.after_conv("pool");
                    side = window_output(side, POOL_KERNEL, POOL_STRIDE, 0)
                        .ok_or_else(|| InputError::at(&name))?;
                    (Some(name), Vec::new())
                }
            };
            steps.push(Step::new(name, vec![channels, side, side], parameters));
        }
        if let Some(out) = layers.avgpool {
            side = out;
            steps.push(Step::new(
                Some("avgpool".into()),
                vec![channels, out, out],
                Vec::new(),
            ));
        }
        let pool5_side = side;
        let mut features = channels.saturating_mul(side).saturating_mul(side);
        for (index, op) in layers.classifier.iter().enumerate() {
            let key = format!("classifier.{index}");
            let (name, parameters) = match op {
                ClassifierOp::Linear(outputs) => {
                    let name = names.next_linear();
                    let parameters =
                        Parameter::pair(&name, &key, vec![*outputs, features], *outputs);
                    features = *outputs;
                    (Some(name), parameters)
                }
                ClassifierOp::Dropout(_) | ClassifierOp::Relu => (None, Vec::new()),
            };
            steps.push(Step::new(name, vec![features], parameters));
        }
        Ok(Walk { steps, pool5_side })
    }
}

/// The paper's layer names, handed out in forward order: `conv1` …, then `fc6` … (numbered
/// on after the convolutions); LRN and pool layers take the number of the conv before them.
#[derive(Default)]
struct Names {
    convs: usize,
    linears: usize,
}

impl Names {
    fn next_conv(&mut self) -> String {
        self.convs += 1;
        format!("conv{}", self.convs)
    }

    fn after_conv(&self, kind: &str) -> String {
        format!("{kind}{}", self.convs)
    }

    fn next_linear(&mut self) -> String {
        self.linears += 1;
        format!("fc{}", self.convs + self.linears)
    }
}

/// The list evaluated at an input size.
struct Walk {
    /// One step per entry, in forward order.
    steps: Vec<Step>,
    /// Side of the map that is flattened into fc6 (after the adaptive pool, if any).
    pool5_side: usize,
}

/// One entry of the list, evaluated at an input size.
struct Step {
    /// The paper's name, for layers the shape table shows (not ReLU or dropout).
    name: Option<String>,
    /// Output shape without the batch dimension.
    output: Vec<usize>,
    parameters: Vec<Parameter>,
}

impl Step {
    fn new(name: Option<String>, output: Vec<usize>, parameters: Vec<Parameter>) -> Self {
        Self {
            name,
            output,
            parameters,
        }
    }
}

/// One parameter tensor: its names under both layouts and its PyTorch shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Parameter {
    /// The layer's paper name: `conv1` … `fc8`.
    pub layer: String,
    /// The layer's `nn.Sequential` key: `features.0` … `classifier.6`.
    pub sequential: String,
    /// `weight` or `bias`.
    pub kind: ParameterKind,
    /// PyTorch's shape.
    pub shape: Vec<usize>,
}

/// Which tensor of a layer a [`Parameter`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParameterKind {
    /// Conv `[out, in/groups, k, k]` or linear `[out, in]`.
    Weight,
    /// `[out]`.
    Bias,
}

impl Parameter {
    /// A layer's weight and bias.
    fn pair(layer: &str, sequential: &str, weight: Vec<usize>, outputs: usize) -> Vec<Self> {
        let make = |kind, shape| Self {
            layer: layer.to_string(),
            sequential: sequential.to_string(),
            kind,
            shape,
        };
        vec![
            make(ParameterKind::Weight, weight),
            make(ParameterKind::Bias, vec![outputs]),
        ]
    }

    /// The state-dict key under `layout`: `features.0.weight` or `conv1.weight`.
    pub fn key(&self, layout: KeyLayout) -> String {
        let prefix = match layout {
            KeyLayout::Sequential => &self.sequential,
            KeyLayout::Caffe => &self.layer,
        };
        let suffix = match self.kind {
            ParameterKind::Weight => "weight",
            ParameterKind::Bias => "bias",
        };
        format!("{prefix}.{suffix}")
    }

    /// Number of values (saturating at `usize::MAX`).
    pub fn len(&self) -> usize {
        self.checked_len().unwrap_or(usize::MAX)
    }

    /// Number of values, or `None` when it overflows `usize`.
    fn checked_len(&self) -> Option<usize> {
        self.shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))
    }

    /// Whether the tensor is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Output side of a convolution or pool, or `None` when the window does not fit (or the
/// stride is 0, which [`AlexNetConfig::validate`] refuses).
fn window_output(side: usize, kernel: usize, stride: usize, padding: usize) -> Option<usize> {
    let padded = side.checked_add(padding.checked_mul(2)?)?;
    let span = padded.checked_sub(kernel)?;
    Some(span.checked_div(stride)? + 1)
}

/// The first layer an input does not fit.
struct InputError {
    layer: String,
}

impl InputError {
    fn at(layer: &str) -> Self {
        Self {
            layer: layer.to_string(),
        }
    }
}

/// One row of the layer table: name, output shape `[C, H, W]` or `[features]`, parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerShape {
    /// The paper's layer name: `conv1`, `lrn1`, `pool1`, `avgpool`, `fc6`, …
    pub name: String,
    /// Output shape without the batch dimension.
    pub shape: Vec<usize>,
    /// Trainable parameters of this layer.
    pub params: usize,
}

/// The layer table of a configuration at a given square input side: every named layer of
/// [`AlexNetConfig::layers`] (ReLU and dropout change no shape and are left out).
#[derive(Debug, Clone, PartialEq)]
pub struct LayerShapes {
    /// Layers in forward order.
    pub layers: Vec<LayerShape>,
}

impl LayerShapes {
    /// Computes every layer's output for an `input_size`×`input_size` image, or explains why
    /// the image does not fit (naming the smallest input that does).
    pub fn compute(config: &AlexNetConfig, input_size: usize) -> Result<Self, AlexNetError> {
        Self::try_compute(config, input_size)
            .map_err(|layer| Self::too_small(config, input_size, layer))
    }

    /// The error for an input that does not fit at `layer`.
    fn too_small(config: &AlexNetConfig, input_size: usize, layer: String) -> AlexNetError {
        let hint = match Self::minimum_input(config) {
            Some(min) if config.adaptive_pool.is_some() => {
                format!("the smallest input this network accepts is {min}×{min}")
            }
            _ => format!(
                "this network is built for {0}×{0} inputs",
                config.input_size
            ),
        };
        AlexNetError::InputTooSmall {
            size: input_size,
            layer,
            hint,
        }
    }

    /// The smallest square input side for which every layer fits.
    pub fn minimum_input(config: &AlexNetConfig) -> Option<usize> {
        (1..=4096).find(|&side| Self::try_compute(config, side).is_ok())
    }

    /// The layer table, or the name of the first layer that does not fit. Without an
    /// adaptive pool, fc6's width is fixed by the configured `input_size`, so any other size
    /// must give the same pool5 map.
    fn try_compute(config: &AlexNetConfig, input_size: usize) -> Result<Self, String> {
        let walk = config.walk(input_size).map_err(|e| e.layer)?;
        if config.adaptive_pool.is_none() {
            let built_for = config
                .walk(config.input_size)
                .map_err(|e| format!("{} at the configured input_size", e.layer))?;
            let (expected, side) = (built_for.pool5_side, walk.pool5_side);
            if side != expected {
                return Err(format!(
                    "fc6 (it expects a {expected}×{expected} pool5 map, this input gives {side}×{side})"
                ));
            }
        }
        let layers = walk
            .steps
            .into_iter()
            .filter_map(|step| {
                let params = step
                    .parameters
                    .iter()
                    .map(Parameter::len)
                    .fold(0, usize::saturating_add);
                step.name.map(|name| LayerShape {
                    name,
                    shape: step.output,
                    params,
                })
            })
            .collect();
        Ok(Self { layers })
    }

    /// Total trainable parameters.
    pub fn total_params(&self) -> usize {
        self.layers
            .iter()
            .map(|l| l.params)
            .fold(0, usize::saturating_add)
    }
}

/// How many equal output slices an `inputs × outputs` f32 weight needs so that each holds
/// at most `max_bytes` (`None`: no limit, one slice).
pub fn linear_slices(
    inputs: usize,
    outputs: usize,
    max_bytes: Option<usize>,
) -> Result<usize, AlexNetError> {
    let Some(limit) = max_bytes else {
        return Ok(1);
    };
    let bytes = |parts: usize| {
        inputs
            .saturating_mul(outputs / parts)
            .saturating_mul(std::mem::size_of::<f32>())
    };
    (1..=outputs)
        .find(|&parts| outputs.is_multiple_of(parts) && bytes(parts) <= limit)
        .ok_or_else(|| {
            AlexNetError::InvalidConfig(format!(
                "a {inputs}×{outputs} layer cannot be split into buffers of at most {limit} bytes"
            ))
        })
}

/// Largest number of channels a layer may have (conv widths, `in_channels`, `hidden`):
/// 16× the widest AlexNet layer (fc6/fc7's 4096), so a configuration read from a file cannot
/// ask for absurd amounts of memory.
pub const MAX_CHANNELS: usize = 65_536;
/// Largest class count (fc8's width): about a million, 48× ImageNet-21k's 21,841 classes.
pub const MAX_CLASSES: usize = 1 << 20;
/// Largest input side, kernel side and adaptive-pool side of a configuration (8192; the
/// presets use 224, 227 and 32).
pub const MAX_SIDE: usize = 8192;
/// Largest LRN window (channels summed); the presets use 5.
pub const MAX_LRN_SIZE: usize = 1023;
/// Largest number of trainable parameters (2^31, 8 GiB of f32): 35× torchvision's
/// AlexNet (61.1 M).
pub const MAX_PARAMETERS: usize = 1 << 31;

impl AlexNetConfig {
    /// Checks that the hyper-parameters describe a buildable network of bounded size, before
    /// any arithmetic on them: class count 1..=[`MAX_CLASSES`]; `in_channels`, `hidden` and
    /// every conv width 1..=[`MAX_CHANNELS`]; kernels 1..=[`MAX_SIDE`], strides ≥ 1, padding
    /// smaller than the kernel, groups dividing the channels; an odd LRN size up to
    /// [`MAX_LRN_SIZE`] with finite α ≥ 0, β ≥ 0 and k > 0; dropout in [0, 1); an
    /// `input_size` (1..=[`MAX_SIDE`]) every layer fits; at most [`MAX_PARAMETERS`]
    /// parameters; and fully connected layers that can be split under `max_param_bytes`.
    /// Every message names the field.
    pub fn validate(&self) -> Result<(), AlexNetError> {
        let bad = |msg: String| Err(AlexNetError::InvalidConfig(msg));
        let count = |name: &str, value: usize, max: usize| {
            if value == 0 || value > max {
                bad(format!("{name} must be between 1 and {max}, got {value}"))
            } else {
                Ok(())
            }
        };
        count("num_classes", self.num_classes, MAX_CLASSES)?;
        count("hidden", self.hidden, MAX_CHANNELS)?;
        count("in_channels", self.in_channels, MAX_CHANNELS)?;
        count("input_size", self.input_size, MAX_SIDE)?;
        if !(0.0..1.0).contains(&self.dropout) {
            return bad(format!("dropout must be in [0, 1), got {}", self.dropout));
        }
        let mut channels_in = self.in_channels;
        for (i, conv) in self.convs.iter().enumerate() {
            let name = format!("conv{}", i + 1);
            count(
                &format!("{name} out_channels"),
                conv.out_channels,
                MAX_CHANNELS,
            )?;
            count(&format!("{name} kernel"), conv.kernel, MAX_SIDE)?;
            if conv.stride == 0 {
                return bad(format!("{name} stride must be at least 1, got 0"));
            }
            if conv.padding >= conv.kernel {
                return bad(format!(
                    "{name} padding must be smaller than its kernel ({}), got {}",
                    conv.kernel, conv.padding
                ));
            }
            if conv.groups == 0 {
                return bad(format!("{name} groups must be at least 1, got 0"));
            }
            if !channels_in.is_multiple_of(conv.groups)
                || !conv.out_channels.is_multiple_of(conv.groups)
            {
                return bad(format!(
                    "{name}: {channels_in} input and {} output channels are not divisible by {} groups",
                    conv.out_channels, conv.groups
                ));
            }
            channels_in = conv.out_channels;
        }
        if let Some(lrn) = &self.lrn {
            if lrn.size.is_multiple_of(2) || lrn.size > MAX_LRN_SIZE {
                return bad(format!(
                    "LRN size must be odd and at most {MAX_LRN_SIZE}, got {}",
                    lrn.size
                ));
            }
            for (field, value, ok) in [
                ("alpha", lrn.alpha, lrn.alpha >= 0.0),
                ("beta", lrn.beta, lrn.beta >= 0.0),
                ("k", lrn.k, lrn.k > 0.0),
            ] {
                if !(value.is_finite() && ok) {
                    let rule = if field == "k" {
                        "positive"
                    } else {
                        "non-negative"
                    };
                    return bad(format!(
                        "LRN {field} must be a finite {rule} number, got {value}"
                    ));
                }
            }
        }
        if let Some(side) = self.adaptive_pool {
            count("adaptive_pool", side, MAX_SIDE)?;
        }
        LayerShapes::compute(self, self.input_size)?;
        let parameters = self.parameters()?;
        let total = parameters
            .iter()
            .try_fold(0usize, |sum, p| sum.checked_add(p.checked_len()?))
            .filter(|&n| n <= MAX_PARAMETERS);
        if total.is_none() {
            return bad(format!(
                "the network would have more than {MAX_PARAMETERS} parameters (2^31)"
            ));
        }
        for weight in parameters {
            if weight.kind == ParameterKind::Weight && weight.shape.len() == 2 {
                linear_slices(weight.shape[1], weight.shape[0], self.max_param_bytes)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torchvision_keys_are_torchvisions() {
        let keys: Vec<String> = AlexNetConfig::torchvision(1000)
            .parameters()
            .unwrap()
            .iter()
            .filter(|p| p.kind == ParameterKind::Weight)
            .map(|p| p.key(KeyLayout::Sequential))
            .collect();
        assert_eq!(
            keys,
            [
                "features.0.weight",
                "features.3.weight",
                "features.6.weight",
                "features.8.weight",
                "features.10.weight",
                "classifier.1.weight",
                "classifier.4.weight",
                "classifier.6.weight"
            ]
        );
    }

    #[test]
    fn zero_stride_or_huge_padding_is_no_arithmetic_panic() {
        assert_eq!(window_output(10, 3, 0, 0), None);
        assert_eq!(window_output(2, 5, 1, 0), None);
        assert_eq!(window_output(1, 3, 1, usize::MAX), None);
        let mut config = AlexNetConfig::cifar(10);
        config.convs[1].stride = 0;
        assert!(matches!(
            config.validate(),
            Err(AlexNetError::InvalidConfig(_))
        ));
        assert!(LayerShapes::compute(&config, 32).is_err());
    }

    /// The message of `validate` for the cifar preset changed by `change`.
    fn refusal(change: impl FnOnce(&mut AlexNetConfig)) -> String {
        let mut config = AlexNetConfig::cifar(10);
        change(&mut config);
        match config.validate() {
            Err(error) => error.to_string(),
            Ok(()) => panic!("{config:?}: accepted"),
        }
    }

    /// A change to a valid configuration.
    type Change = Box<dyn FnOnce(&mut AlexNetConfig)>;

    #[test]
    fn validate_names_the_field_it_refuses() {
        let lrn = || Some(crate::LrnPreset::Caffe.config());
        let cases: Vec<(Change, &str)> = vec![
            (
                Box::new(|c| c.convs[1].stride = 0),
                "conv2 stride must be at least 1, got 0",
            ),
            (
                Box::new(|c| c.convs[0].kernel = 0),
                "conv1 kernel must be between 1 and 8192, got 0",
            ),
            (
                Box::new(|c| c.convs[4].kernel = 1 << 40),
                "conv5 kernel must be between 1 and 8192",
            ),
            (
                Box::new(|c| c.convs[2].padding = 3),
                "conv3 padding must be smaller than its kernel (3), got 3",
            ),
            (
                Box::new(|c| c.convs[2].padding = usize::MAX),
                "conv3 padding must be smaller",
            ),
            (
                Box::new(|c| c.convs[3].groups = 0),
                "conv4 groups must be at least 1",
            ),
            (
                Box::new(|c| c.convs[3].out_channels = 0),
                "conv4 out_channels must be between 1 and 65536, got 0",
            ),
            (
                Box::new(|c| c.convs[0].out_channels = usize::MAX),
                "conv1 out_channels must be between 1 and 65536",
            ),
            (
                Box::new(|c| c.num_classes = 0),
                "num_classes must be between 1 and 1048576, got 0",
            ),
            (
                Box::new(|c| c.num_classes = 1 << 40),
                "num_classes must be between 1 and 1048576",
            ),
            (
                Box::new(|c| c.hidden = 1 << 20),
                "hidden must be between 1 and 65536",
            ),
            (
                Box::new(|c| c.in_channels = 0),
                "in_channels must be between 1 and 65536, got 0",
            ),
            (
                Box::new(|c| c.input_size = usize::MAX),
                "input_size must be between 1 and 8192",
            ),
            (
                Box::new(|c| c.input_size = 0),
                "input_size must be between 1 and 8192, got 0",
            ),
            (
                Box::new(|c| c.adaptive_pool = Some(0)),
                "adaptive_pool must be between 1 and 8192, got 0",
            ),
            (
                Box::new(|c| c.dropout = f64::NAN),
                "dropout must be in [0, 1), got NaN",
            ),
            (
                Box::new(|c| c.dropout = 1.0),
                "dropout must be in [0, 1), got 1",
            ),
            (
                Box::new(move |c| c.lrn = lrn().map(|l| LrnConfig { size: 4, ..l })),
                "LRN size must be odd and at most 1023, got 4",
            ),
            (
                Box::new(move |c| c.lrn = lrn().map(|l| LrnConfig { size: 0, ..l })),
                "LRN size must be odd",
            ),
            (
                Box::new(move |c| c.lrn = lrn().map(|l| LrnConfig { size: 1025, ..l })),
                "LRN size must be odd and at most 1023, got 1025",
            ),
            (
                Box::new(move |c| {
                    c.lrn = lrn().map(|l| LrnConfig {
                        alpha: f64::NAN,
                        ..l
                    })
                }),
                "LRN alpha must be a finite non-negative number, got NaN",
            ),
            (
                Box::new(move |c| {
                    c.lrn = lrn().map(|l| LrnConfig {
                        beta: f64::INFINITY,
                        ..l
                    })
                }),
                "LRN beta must be a finite non-negative number, got inf",
            ),
            (
                Box::new(move |c| c.lrn = lrn().map(|l| LrnConfig { k: 0.0, ..l })),
                "LRN k must be a finite positive number, got 0",
            ),
            (
                Box::new(move |c| c.lrn = lrn().map(|l| LrnConfig { alpha: -1.0, ..l })),
                "LRN alpha must be a finite non-negative number, got -1",
            ),
            // Shapes that collapse: conv1 of stride 40 leaves a 1×1 map, which pool1 cannot take.
            (Box::new(|c| c.convs[0].stride = 40), "pool1"),
            // Within every per-field bound, but fc6 alone would hold 65536·(128·3·3)… weights.
            (
                Box::new(|c| {
                    c.hidden = 65_536;
                    c.convs[4].out_channels = 65_536;
                }),
                "more than 2147483648 parameters",
            ),
        ];
        for (change, expected) in cases {
            let message = refusal(change);
            assert!(
                message.contains(expected),
                "`{expected}` not in `{message}`"
            );
        }
        assert_eq!(AlexNetConfig::cifar(10).validate(), Ok(()));
        let mut with_lrn = AlexNetConfig::cifar(10);
        with_lrn.lrn = lrn();
        assert_eq!(with_lrn.validate(), Ok(()));
        for variant in crate::Variant::ALL {
            assert_eq!(variant.config(1000).validate(), Ok(()), "{variant:?}");
        }
        assert_eq!(
            AlexNetConfig::paper(1000).with_caffe_input().validate(),
            Ok(())
        );
    }
}
