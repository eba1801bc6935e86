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
//! let model = AlexNetConfig::cifar(10).init::<NdArray>(&Default::default());
//! let logits = model.forward(Tensor::zeros([2, 3, 32, 32], &Default::default()));
//! assert_eq!(logits.dims(), [2, 10]);
//! ```
//!
//! Module dependencies run one way: `config` ← `layers` ← `model` ← `weights` ← `checkpoint`;
//! `tensor` (host tensors), `preprocess`, `labels`, `device` and `error` stand alone.

pub mod checkpoint;
pub mod config;
pub mod device;
pub mod error;
pub mod labels;
pub mod layers;
pub mod model;
pub mod preprocess;
pub mod tensor;
pub mod weights;

pub use config::{AlexNetConfig, LrnPreset, Variant};
pub use error::AlexNetError;
pub use layers::KeyLayout;
pub use model::{AlexNet, FeatureLayer};
