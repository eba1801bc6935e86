//! [`AlexNetConfig`]: every hyper-parameter of the network, with the three presets.
//!
//! All variants share one layout, AlexNet's: five convolutions (conv1..conv5) with ReLU,
//! optional local response normalisation after conv1 and conv2, overlapping 3×3/2 max pools
//! after conv1, conv2 and conv5, then three fully connected layers (fc6..fc8).
//!
//! | preset | conv widths | conv1 | LRN | groups | before fc6 | hidden | params (N=1000) |
//! |---|---|---|---|---|---|---|---|
//! | [`paper`](AlexNetConfig::paper) | 96-256-384-384-256 | 11×11/4, pad 2 (224 in) | after conv1, conv2 | conv2, conv4, conv5 = 2 | flatten 256·6·6 | 4096 | 60,965,224 |
//! | [`torchvision`](AlexNetConfig::torchvision) | 64-192-384-256-256 | 11×11/4, pad 2 | none | none | adaptive avg pool 6×6 | 4096 | 61,100,840 |
//! | [`cifar`](AlexNetConfig::cifar) | 48-128-192-192-128 | 5×5/1, pad 2 (32 in) | optional | none | flatten 128·3·3 | 1024 | — |

use burn::config::Config;
use burn::nn::LocalResponseNormConfig;

use crate::error::AlexNetError;

/// One convolution of the feature extractor.
#[derive(Config, Debug, PartialEq)]
pub struct ConvLayerConfig {
    /// Output channels (kernels).
    pub out_channels: usize,
    /// Square kernel side.
    pub kernel: usize,
    /// Stride in both directions.
    #[config(default = 1)]
    pub stride: usize,
    /// Zero padding on every side.
    #[config(default = 0)]
    pub padding: usize,
    /// Channel groups (2 reproduces the paper's two-GPU split).
    #[config(default = 1)]
    pub groups: usize,
}

/// Local response normalisation, `x / (k + (alpha/size)·Σ x²)^beta` over `size` neighbouring
/// channels (zero padded). The `alpha/size` convention is PyTorch's, Caffe's and Burn's.
#[derive(Config, Debug, PartialEq)]
pub struct LrnConfig {
    /// Number of neighbouring channels summed (odd).
    pub size: usize,
    /// Scale, divided by `size` in the formula.
    pub alpha: f64,
    /// Exponent.
    pub beta: f64,
    /// Additive constant.
    pub k: f64,
}

/// Named LRN settings found in the AlexNet literature.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum LrnPreset {
    /// Caffe's `bvlc_alexnet` (and its released weights): size 5, α 1e-4, β 0.75, k 1.
    Caffe,
    /// Krizhevsky's own cuda-convnet configuration: size 5, α 1e-4, β 0.75, k 2.
    /// The paper variant's default, because it is what the 2012 network was trained with.
    CudaConvnet,
    /// The formula exactly as printed in the paper (no division by n): k 2, n 5, α 1e-4,
    /// β 0.75, which is α = 5e-4 in the `alpha/size` convention.
    PaperFormula,
}

impl LrnPreset {
    /// The preset's parameters.
    pub fn config(self) -> LrnConfig {
        match self {
            LrnPreset::Caffe => LrnConfig::new(5, 1e-4, 0.75, 1.0),
            LrnPreset::CudaConvnet => LrnConfig::new(5, 1e-4, 0.75, 2.0),
            LrnPreset::PaperFormula => LrnConfig::new(5, 5e-4, 0.75, 2.0),
        }
    }
}

impl LrnConfig {
    /// Burn's layer with these parameters (it matches `torch.nn.LocalResponseNorm` for odd
    /// sizes, which the fixtures prove).
    pub fn burn_config(&self) -> LocalResponseNormConfig {
        LocalResponseNormConfig::new(self.size)
            .with_alpha(self.alpha)
            .with_beta(self.beta)
            .with_k(self.k)
    }
}

/// How the fully connected stack places its dropout.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum DropoutPlacement {
    /// Caffe and the paper: fc6 → ReLU → dropout → fc7 → ReLU → dropout → fc8.
    AfterHidden,
    /// torchvision: dropout → fc6 → ReLU → dropout → fc7 → ReLU → fc8.
    BeforeHidden,
}

/// How the parameters are initialised.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum InitScheme {
    /// The paper: weights N(0, 0.01); biases 1 on conv2, conv4, conv5, fc6, fc7, 0 elsewhere.
    Paper,
    /// PyTorch's defaults for `nn.Conv2d` / `nn.Linear`: weights and biases
    /// U(-1/√fan_in, 1/√fan_in) (Kaiming uniform with a = √5).
    PyTorch,
}

/// Which variant a configuration describes (used for names and key layouts).
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum Variant {
    /// Krizhevsky, Sutskever & Hinton (2012), as in Caffe's `bvlc_alexnet`.
    Paper,
    /// `torchvision.models.alexnet` (Krizhevsky 2014, "one weird trick").
    Torchvision,
    /// AlexNet adapted to 32×32 CIFAR images.
    Cifar,
}

impl Variant {
    /// Every variant.
    pub const ALL: [Variant; 3] = [Variant::Torchvision, Variant::Paper, Variant::Cifar];

    /// Lower-case name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Paper => "paper",
            Variant::Torchvision => "torchvision",
            Variant::Cifar => "cifar",
        }
    }

    /// Parses `paper`, `torchvision` or `cifar`.
    pub fn parse(name: &str) -> Result<Self, AlexNetError> {
        match name {
            "paper" => Ok(Variant::Paper),
            "torchvision" => Ok(Variant::Torchvision),
            "cifar" => Ok(Variant::Cifar),
            other => Err(AlexNetError::InvalidConfig(format!(
                "unknown variant `{other}` (expected paper, torchvision or cifar)"
            ))),
        }
    }

    /// The preset of this variant.
    pub fn config(self, num_classes: usize) -> AlexNetConfig {
        match self {
            Variant::Paper => AlexNetConfig::paper(num_classes),
            Variant::Torchvision => AlexNetConfig::torchvision(num_classes),
            Variant::Cifar => AlexNetConfig::cifar(num_classes),
        }
    }
}

/// Every hyper-parameter of an AlexNet. Build one with a preset and adjust with `with_*`;
/// [`layers`](Self::layers) writes the network out as a list of layers, and
/// [`validate`](Self::validate) checks that it is buildable (both in [`crate::layers`]).
#[derive(Config, Debug, PartialEq)]
pub struct AlexNetConfig {
    /// Which variant this is.
    pub variant: Variant,
    /// Output classes (fc8's width).
    pub num_classes: usize,
    /// conv1..conv5.
    pub convs: [ConvLayerConfig; 5],
    /// LRN after the ReLU of conv1 and conv2, or none.
    pub lrn: Option<LrnConfig>,
    /// `Some(s)`: adaptive average pool to s×s before fc6 (torchvision). `None`: flatten the
    /// pool5 map as it is, which then must be exactly the side computed from `input_size`.
    pub adaptive_pool: Option<usize>,
    /// The input side the network is built for: it fixes fc6's width when there is no
    /// adaptive pool, and is the default size of `info` and `bench`.
    pub input_size: usize,
    /// Width of fc6 and fc7.
    pub hidden: usize,
    /// Dropout probability in the classifier.
    #[config(default = 0.5)]
    pub dropout: f64,
    /// Where dropout sits in the classifier.
    pub dropout_placement: DropoutPlacement,
    /// How parameters are initialised.
    pub init: InitScheme,
    /// Input channels.
    #[config(default = 3)]
    pub in_channels: usize,
    /// Largest weight buffer a backend accepts, in bytes: a fully connected layer whose weight
    /// is larger is stored as equal output slices (the paper split fc6 across two GPUs; WebGPU
    /// devices bind at most 128 MiB by default, fc6 holds 151 MB). `None`: no limit. The
    /// numbers computed do not change.
    pub max_param_bytes: Option<usize>,
}

/// WebGPU's default `maxStorageBufferBindingSize` (128 MiB), which the software Vulkan device
/// (lavapipe) and many mobile GPUs also enforce.
pub const WEBGPU_MAX_BINDING_BYTES: usize = 128 << 20;

impl AlexNetConfig {
    /// The 2012 network: 96-256-384-384-256 kernels, LRN (cuda-convnet, k = 2) after conv1 and
    /// conv2, groups = 2 on conv2, conv4, conv5, fc 4096-4096-N, dropout after fc6/fc7, the
    /// paper's initialisation. Input 224×224 with conv1 padding 2 (55×55 after conv1, as the
    /// paper states); [`with_caffe_input`](Self::with_caffe_input) switches to Caffe's 227×227
    /// without padding, which gives the same 55×55 map and the same parameters.
    pub fn paper(num_classes: usize) -> Self {
        Self::new(
            Variant::Paper,
            num_classes,
            [
                ConvLayerConfig::new(96, 11).with_stride(4).with_padding(2),
                ConvLayerConfig::new(256, 5).with_padding(2).with_groups(2),
                ConvLayerConfig::new(384, 3).with_padding(1),
                ConvLayerConfig::new(384, 3).with_padding(1).with_groups(2),
                ConvLayerConfig::new(256, 3).with_padding(1).with_groups(2),
            ],
            224,
            4096,
            DropoutPlacement::AfterHidden,
            InitScheme::Paper,
        )
        .with_lrn(Some(LrnPreset::CudaConvnet.config()))
    }

    /// `torchvision.models.alexnet(num_classes)`: 64-192-384-256-256 kernels, no LRN, no
    /// groups, adaptive average pool to 6×6 (any input from 63×63 up), dropout before fc6/fc7,
    /// PyTorch's default initialisation.
    pub fn torchvision(num_classes: usize) -> Self {
        Self::new(
            Variant::Torchvision,
            num_classes,
            [
                ConvLayerConfig::new(64, 11).with_stride(4).with_padding(2),
                ConvLayerConfig::new(192, 5).with_padding(2),
                ConvLayerConfig::new(384, 3).with_padding(1),
                ConvLayerConfig::new(256, 3).with_padding(1),
                ConvLayerConfig::new(256, 3).with_padding(1),
            ],
            224,
            4096,
            DropoutPlacement::BeforeHidden,
            InitScheme::PyTorch,
        )
        .with_adaptive_pool(Some(6))
    }

    /// AlexNet for 32×32 images. conv1 becomes 5×5 at stride 1 (an 11×11/4 kernel would leave
    /// an 8×8 map), the rest keeps AlexNet's kernels, pools and order, so the map goes
    /// 32 → 15 → 7 → 3. Widths are one tower of the paper's two (48-128-192-192-128) and the
    /// hidden layers 1024 wide, which keeps it trainable on a CPU. This follows Krizhevsky's
    /// cuda-convnet CIFAR-10 networks (5×5 convolutions at stride 1 with overlapping 3×3/2
    /// pools) and the "small AlexNet" of Zhang et al. (2017, *Understanding deep learning
    /// requires rethinking generalization*). No LRN by default
    /// ([`with_lrn`](Self::with_lrn) adds it); PyTorch's initialisation.
    pub fn cifar(num_classes: usize) -> Self {
        Self::new(
            Variant::Cifar,
            num_classes,
            [
                ConvLayerConfig::new(48, 5).with_padding(2),
                ConvLayerConfig::new(128, 5).with_padding(2),
                ConvLayerConfig::new(192, 3).with_padding(1),
                ConvLayerConfig::new(192, 3).with_padding(1),
                ConvLayerConfig::new(128, 3).with_padding(1),
            ],
            32,
            1024,
            DropoutPlacement::AfterHidden,
            InitScheme::PyTorch,
        )
    }

    /// Caffe's input convention for conv1: 227×227 and no padding (same 55×55 map).
    pub fn with_caffe_input(mut self) -> Self {
        self.convs[0].padding = 0;
        self.input_size = 227;
        self
    }

    /// Replaces the five convolution widths, keeping kernels, strides and groups.
    pub fn with_widths(mut self, widths: [usize; 5]) -> Self {
        for (conv, width) in self.convs.iter_mut().zip(widths) {
            conv.out_channels = width;
        }
        self
    }

    /// Replaces the width of fc6 and fc7.
    pub fn with_hidden(mut self, hidden: usize) -> Self {
        self.hidden = hidden;
        self
    }

    /// The five convolution widths.
    pub fn widths(&self) -> [usize; 5] {
        self.convs.clone().map(|conv| conv.out_channels)
    }
}
