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
        let mut features = channels * side * side;
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

    /// Number of values.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
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
                let params = step.parameters.iter().map(Parameter::len).sum();
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
        self.layers.iter().map(|l| l.params).sum()
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

impl AlexNetConfig {
    /// Checks that the hyper-parameters describe a buildable network: positive sizes,
    /// channel counts divisible by the groups, odd LRN sizes, an `input_size` every layer
    /// fits, and fully connected layers that can be split under `max_param_bytes`.
    pub fn validate(&self) -> Result<(), AlexNetError> {
        let bad = |msg: String| Err(AlexNetError::InvalidConfig(msg));
        if self.num_classes == 0 || self.hidden == 0 || self.in_channels == 0 {
            return bad("num_classes, hidden and in_channels must be positive".into());
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return bad(format!("dropout must be in [0, 1), got {}", self.dropout));
        }
        let mut channels_in = self.in_channels;
        for (i, conv) in self.convs.iter().enumerate() {
            let name = format!("conv{}", i + 1);
            if conv.out_channels == 0 || conv.kernel == 0 || conv.stride == 0 || conv.groups == 0 {
                return bad(format!(
                    "{name}: widths, kernel, stride and groups must be positive"
                ));
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
            if lrn.size.is_multiple_of(2) {
                return bad(format!("LRN size must be odd, got {}", lrn.size));
            }
        }
        if self.adaptive_pool == Some(0) {
            return bad("adaptive pool size must be positive".into());
        }
        LayerShapes::compute(self, self.input_size)?;
        for weight in self.parameters()? {
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
}
