//! The one error type of the model crate.

use thiserror::Error;

/// Everything that can go wrong when building, running or loading an AlexNet.
#[derive(Debug, Error, PartialEq)]
pub enum AlexNetError {
    /// The hyper-parameters do not describe a buildable network.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The input tensor does not fit the network.
    #[error("invalid input: {0}")]
    Input(String),
    /// A weight file or tensor map does not fit the network.
    #[error("weights: {0}")]
    Weights(String),
}
