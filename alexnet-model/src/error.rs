//! The one error type of the model crate, with variants a caller can match.

use std::path::PathBuf;

use thiserror::Error;

/// Everything that can go wrong when building, running or loading an AlexNet.
#[derive(Debug, Error, PartialEq)]
pub enum AlexNetError {
    /// The hyper-parameters do not describe a buildable network.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// An image is smaller than the network accepts, or (flatten variants) another size than
    /// the network was built for.
    #[error(
        "invalid input: a {size}×{size} image is too small or the wrong size at {layer}; {hint}"
    )]
    InputTooSmall {
        /// The input side.
        size: usize,
        /// The first layer it does not fit.
        layer: String,
        /// What would fit.
        hint: String,
    },
    /// Any other input that does not fit: channel count, empty batch, an image that cannot
    /// be decoded, bad preprocessing values.
    #[error("invalid input: {0}")]
    Input(String),
    /// A parameter the network needs is not in the state dict.
    #[error("missing key `{key}` (the {network} network expects shape {expected:?})")]
    MissingKey {
        /// The state-dict key.
        key: String,
        /// The variant's name.
        network: String,
        /// The shape it would need.
        expected: Vec<usize>,
    },
    /// A tensor of the state dict has another shape than the network's parameter.
    #[error("`{key}` has shape {found:?}, the {network} network expects {expected:?}")]
    ShapeMismatch {
        /// The state-dict key.
        key: String,
        /// The variant's name.
        network: String,
        /// The file's shape.
        found: Vec<usize>,
        /// The network's shape.
        expected: Vec<usize>,
    },
    /// The state dict holds a tensor the network has no parameter for.
    #[error(
        "unexpected key `{key}` (shape {shape:?}) that the {network} network has no place for"
    )]
    UnexpectedKey {
        /// The state-dict key.
        key: String,
        /// The variant's name.
        network: String,
        /// The tensor's shape.
        shape: Vec<usize>,
    },
    /// The shapes do not fit the variant asked for, but do fit another.
    #[error("{error} (the file's shapes fit the {fits} variant)")]
    OtherVariant {
        /// Why the variant asked for does not fit.
        error: Box<AlexNetError>,
        /// The variant the shapes fit.
        fits: String,
    },
    /// A `.pth` pickle asks for something outside the tensor-loading allow-list (nothing was
    /// executed).
    #[error("refused: {0}")]
    UnsafePickle(String),
    /// A weight file that cannot be read: unknown format, truncated or corrupt data,
    /// unsupported dtype, I/O errors.
    #[error("{0}")]
    Weights(String),
    /// A download that failed: connection, HTTP status, cut-off transfer, checksum mismatch,
    /// or a cache folder that cannot be written. One line naming the URL or path.
    #[error("{0}")]
    Download(String),
    /// An error about the weight file at `path`.
    #[error("{}: {error}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        error: Box<AlexNetError>,
    },
}

impl AlexNetError {
    /// The error itself, without the file it was found in ([`AlexNetError::File`]).
    pub fn cause(&self) -> &AlexNetError {
        match self {
            Self::File { error, .. } => error.cause(),
            other => other,
        }
    }

    /// This error, as found in `path` (one line: newlines in messages become spaces).
    pub fn in_file(self, path: impl Into<PathBuf>) -> Self {
        let error = match self {
            Self::Weights(message) => Self::Weights(message.replace(['\n', '\r'], " ")),
            Self::File { error, .. } => *error,
            other => other,
        };
        Self::File {
            path: path.into(),
            error: Box::new(error),
        }
    }
}
