//! AlexNet for the Burn deep-learning framework, generic over the backend.
//!
//! Three variants share one [`AlexNet`] type, built from an [`AlexNetConfig`] preset:
//! [`paper`](AlexNetConfig::paper) (Krizhevsky et al. 2012, as in Caffe's `bvlc_alexnet`),
//! [`torchvision`](AlexNetConfig::torchvision) (`torchvision.models.alexnet`) and
//! [`cifar`](AlexNetConfig::cifar) (32×32 inputs).
//!
//! ```
//! use alexnet_model::AlexNetConfig;
//! use alexnet_model::shapes::LayerShapes;
//!
//! let config = AlexNetConfig::paper(1000);
//! let shapes = LayerShapes::compute(&config, 224).unwrap();
//! assert_eq!(shapes.total_params(), 60_965_224);
//! ```

pub mod checkpoint;
pub mod config;
pub mod error;
pub mod labels;
pub mod model;
pub mod preprocess;
pub mod shapes;
pub mod weights;

pub use config::{AlexNetConfig, LrnPreset, Variant};
pub use error::AlexNetError;
pub use model::{AlexNet, FeatureLayer};
