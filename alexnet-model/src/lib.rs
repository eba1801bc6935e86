//! AlexNet for the Burn deep-learning framework, generic over the backend.
//!
//! Three variants share one [`AlexNet`] type, built from an [`AlexNetConfig`] preset:
//! [`paper`](AlexNetConfig::paper) (Krizhevsky et al. 2012, as in Caffe's `bvlc_alexnet`),
//! [`torchvision`](AlexNetConfig::torchvision) (`torchvision.models.alexnet`) and
//! [`cifar`](AlexNetConfig::cifar) (32×32 inputs). [`AlexNetConfig::layers`] is the network
//! written out as one list of layers, from which the modules, the forward pass, the shape
//! table and the PyTorch key names are all computed.
//!
//! ```
//! use alexnet_model::layers::LayerShapes;
//! use alexnet_model::AlexNetConfig;
//! use burn::backend::NdArray;
//! use burn::tensor::Tensor;
//!
//! let config = AlexNetConfig::paper(1000);
//! let shapes = LayerShapes::compute(&config, 224).unwrap();
//! assert_eq!(shapes.total_params(), 60_965_224);
//!
//! let device = Default::default();
//! let small = AlexNetConfig::torchvision(10).with_widths([8, 16, 24, 24, 16]).with_hidden(32);
//! let model = small.init::<NdArray>(&device);
//! let logits = model.forward(Tensor::zeros([2, 3, 63, 63], &device));
//! assert_eq!(logits.dims(), [2, 10]);
//!
//! // Too small an input: `forward` would panic, `try_forward` says what fits.
//! match model.try_forward(Tensor::zeros([1, 3, 32, 32], &device)) {
//!     Err(alexnet_model::AlexNetError::InputTooSmall { hint, .. }) => {
//!         assert!(hint.contains("63×63"), "{hint}")
//!     }
//!     other => panic!("{other:?}"),
//! }
//! ```
//!
//! The forward pass needs a backend with AlexNet's operations, [`AlexNetBackend`]: Flex
//! (fused CPU kernels), NdArray, Wgpu and Cuda (the plain Burn composition), each behind the
//! cargo feature of its name, and `Autodiff` of any of them (feature `autodiff`).
//!
//! Module dependencies run one way: `config` ← `layers` ← `model` ← `weights` ← `checkpoint`;
//! `ops` (the backend extension) ← `model`;
//! `layers` ← `memory` (batch memory estimates); `files` (regular files within a size limit)
//! ← `preprocess`, `labels`; `tensor` (host tensors), `device` and `error` stand alone.
//! `download` (feature `download`: verified downloads and the cache folder) ← `pretrained`
//! (feature `pretrained`: [`pretrained::AlexNetWeights`], torchvision's and Caffe's ImageNet
//! weights by name, which also needs `checkpoint` and `preprocess`).

pub mod checkpoint;
pub mod config;
pub mod device;
#[cfg(feature = "download")]
pub mod download;
pub mod error;
pub mod files;
pub mod labels;
pub mod layers;
pub mod memory;
pub mod model;
pub mod ops;
pub mod preprocess;
#[cfg(feature = "pretrained")]
pub mod pretrained;
pub mod tensor;
pub mod weights;

pub use config::{AlexNetConfig, LrnPreset, Variant};
pub use error::AlexNetError;
pub use files::{check_regular_file, read_regular_file};
pub use layers::KeyLayout;
pub use model::{AlexNet, FeatureLayer};
pub use ops::{AlexNetAutodiffBackend, AlexNetBackend};
#[cfg(feature = "pretrained")]
pub use pretrained::{AlexNetWeights, WeightsSpec};
