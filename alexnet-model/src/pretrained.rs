//! Pretrained ImageNet weights by name, in torchvision's spirit (`AlexNet_Weights`): each
//! entry carries where the file is, how to verify it, the network it fits, the preprocessing
//! it was trained with, its classes and its published accuracy.
//!
//! | entry | network | file | acc@1 / acc@5 (center crop) |
//! |---|---|---|---|
//! | [`TorchvisionImagenet1kV1`](AlexNetWeights::TorchvisionImagenet1kV1) | torchvision variant, 224×224 | `alexnet-owt-7be5be79.pth`, 233 MB | 56.522 / 79.066 |
//! | [`CaffeBvlcImagenet`](AlexNetWeights::CaffeBvlcImagenet) | paper variant with Caffe's input (227×227, BGR, mean pixel) and LRN | `bvlc_alexnet.caffemodel`, 233 MB | 57.1 / 80.2 |
//!
//! Files are downloaded on first use into the cache folder and verified before every use (see
//! [`crate::download`] for the cache, the mirror variable and what happens offline).
//!
//! ```no_run
//! use alexnet_model::pretrained::AlexNetWeights;
//! use alexnet_model::AlexNet;
//! use burn::backend::Flex;
//!
//! let device = Default::default();
//! let model = AlexNet::<Flex>::pretrained(AlexNetWeights::TorchvisionImagenet1kV1, &device)?;
//! let spec = AlexNetWeights::TorchvisionImagenet1kV1.spec();
//! // spec.preprocessing turns a photo into the input these weights expect;
//! // spec.categories names the 1000 outputs.
//! # Ok::<(), alexnet_model::AlexNetError>(())
//! ```

use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;

use crate::checkpoint::{read_checkpoint, resolve_config};
use crate::config::{AlexNetConfig, LrnPreset};
use crate::download::{cache_dir, fetch, Checksum, RemoteFile};
use crate::error::AlexNetError;
use crate::labels::Labels;
use crate::model::AlexNet;
use crate::preprocess::Preprocessing;

/// The pretrained weights this crate knows by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlexNetWeights {
    /// torchvision's `AlexNet_Weights.IMAGENET1K_V1`: the "one weird trick" single-tower
    /// network (Krizhevsky 2014) that torchvision's variant is, trained on ILSVRC-2012.
    TorchvisionImagenet1kV1,
    /// Caffe's `bvlc_alexnet` (BVLC model zoo, trained by Evan Shelhamer): the 2012 paper's
    /// network with groups and LRN, the iteration-360,000 snapshot, loaded into the paper
    /// variant with Caffe's conventions.
    CaffeBvlcImagenet,
}

/// Everything about a set of pretrained weights: the file, the network, the input and the
/// outputs. [`AlexNetWeights::spec`] gives the built-in ones; tests and mirrors of other
/// files can build their own.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightsSpec {
    /// Short name, as the command lines take it (`torchvision`, `caffe`).
    pub name: &'static str,
    /// Where the file is and its published digest.
    pub file: RemoteFile,
    /// The network the weights fit exactly (variant, widths, LRN, input convention).
    pub config: AlexNetConfig,
    /// The inference transform the weights were trained for.
    pub preprocessing: Preprocessing,
    /// The names of the outputs, in order.
    pub categories: Labels,
    /// Published top-1 accuracy on the ILSVRC-2012 validation set, in percent (center crop).
    pub acc1: f64,
    /// Published top-5 accuracy, in percent.
    pub acc5: f64,
    /// Number of parameters.
    pub parameters: usize,
    /// Multiply-adds of one forward pass, in billions, counted as torchvision counts them.
    pub gflops: f64,
    /// Approximate size of the file in MiB (torchvision's `_file_size` convention).
    pub file_size_mib: f64,
    /// Where the numbers above are published.
    pub source: &'static str,
}

impl AlexNetWeights {
    /// Every entry.
    pub const ALL: [AlexNetWeights; 2] = [
        AlexNetWeights::TorchvisionImagenet1kV1,
        AlexNetWeights::CaffeBvlcImagenet,
    ];

    /// The short name the command lines take.
    pub fn name(self) -> &'static str {
        match self {
            AlexNetWeights::TorchvisionImagenet1kV1 => "torchvision",
            AlexNetWeights::CaffeBvlcImagenet => "caffe",
        }
    }

    /// The entry of a short name; the error lists the names.
    pub fn parse(name: &str) -> Result<Self, AlexNetError> {
        Self::ALL
            .into_iter()
            .find(|weights| weights.name() == name.trim().to_ascii_lowercase())
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|w| w.name()).collect();
                AlexNetError::Input(format!(
                    "unknown pretrained weights `{name}` (expected {})",
                    names.join(" or ")
                ))
            })
    }

    /// The entry's file, network, preprocessing, classes and published numbers.
    pub fn spec(self) -> WeightsSpec {
        match self {
            AlexNetWeights::TorchvisionImagenet1kV1 => WeightsSpec {
                name: self.name(),
                file: RemoteFile {
                    url: "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth".into(),
                    file_name: "alexnet-owt-7be5be79.pth".into(),
                    // torch hub's convention: the file name carries the digest's first digits.
                    checksum: Checksum::Sha256("7be5be79".into()),
                    size: None,
                },
                config: AlexNetConfig::torchvision(1000),
                preprocessing: Preprocessing::default(),
                categories: Labels::imagenet(),
                acc1: 56.522,
                acc5: 79.066,
                parameters: 61_100_840,
                gflops: 0.714,
                file_size_mib: 233.087,
                source: "https://pytorch.org/vision/stable/models/generated/torchvision.models.alexnet.html",
            },
            AlexNetWeights::CaffeBvlcImagenet => WeightsSpec {
                name: self.name(),
                file: RemoteFile {
                    url: "http://dl.caffe.berkeleyvision.org/bvlc_alexnet.caffemodel".into(),
                    file_name: "bvlc_alexnet.caffemodel".into(),
                    checksum: Checksum::Sha1("9116a64c0fbe4459d18f4bb6b56d647b63920377".into()),
                    size: None,
                },
                config: AlexNetConfig::paper(1000)
                    .with_caffe_input()
                    .with_lrn(Some(LrnPreset::Caffe.config())),
                preprocessing: Preprocessing::caffe(),
                // Caffe numbers its outputs in sorted WordNet-id order, as torchvision does.
                categories: Labels::imagenet(),
                acc1: 57.1,
                acc5: 80.2,
                parameters: 60_965_224,
                // conv1 105.4 M + conv2 223.9 M + conv3 149.5 M + conv4 112.1 M + conv5 74.8 M
                // + fc 58.6 M multiply-adds at 227×227.
                gflops: 0.724,
                file_size_mib: 232.6,
                source: "https://github.com/BVLC/caffe/tree/master/models/bvlc_alexnet",
            },
        }
    }
}

impl WeightsSpec {
    /// The weight file in the cache folder ([`cache_dir`]), downloaded and verified first if
    /// needed; `progress` draws a progress bar on stderr.
    pub fn fetch(&self, progress: bool) -> Result<PathBuf, AlexNetError> {
        fetch(&self.file, &cache_dir()?, progress)
    }

    /// Builds [`config`](Self::config) (fully connected layers split under
    /// `max_param_bytes`, see [`AlexNetConfig::max_param_bytes`]) and loads the file at
    /// `path` into it strictly: the file must describe exactly this network.
    pub fn load<B: Backend>(
        &self,
        path: &Path,
        max_param_bytes: Option<usize>,
        device: &B::Device,
    ) -> Result<AlexNet<B>, AlexNetError> {
        let in_file = |e: AlexNetError| e.in_file(path);
        let checkpoint = read_checkpoint(path)?;
        let (config, layout) =
            resolve_config(&checkpoint, Some(self.config.variant)).map_err(in_file)?;
        if config != self.config {
            return Err(in_file(AlexNetError::Weights(format!(
                "not the {} weights' network (its configuration differs: {config:?})",
                self.name
            ))));
        }
        config
            .with_max_param_bytes(max_param_bytes)
            .try_init::<B>(device)?
            .load_state_dict(&checkpoint.state_dict, layout)
            .map_err(in_file)
    }
}

impl<B: Backend> AlexNet<B> {
    /// The network with pretrained weights, downloaded into the cache folder on first use
    /// (with a progress bar) and verified; like torchvision's
    /// `alexnet(weights=AlexNet_Weights.IMAGENET1K_V1)`. Fully connected layers are not split
    /// (on WebGPU, use [`WeightsSpec::load`] with
    /// [`WEBGPU_MAX_BINDING_BYTES`](crate::config::WEBGPU_MAX_BINDING_BYTES)).
    pub fn pretrained(weights: AlexNetWeights, device: &B::Device) -> Result<Self, AlexNetError> {
        let spec = weights.spec();
        let path = spec.fetch(true)?;
        spec.load(&path, None, device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::LayerShapes;

    #[test]
    fn names_round_trip_and_unknown_names_list_the_choices() {
        for weights in AlexNetWeights::ALL {
            assert_eq!(AlexNetWeights::parse(weights.name()), Ok(weights));
        }
        let err = AlexNetWeights::parse("vgg").unwrap_err().to_string();
        assert!(
            err.contains("`vgg`") && err.contains("torchvision or caffe"),
            "{err}"
        );
    }

    /// The published parameter counts (torchvision's documentation, Caffe's model) against
    /// the networks the entries build.
    #[test]
    fn published_parameter_counts_match_the_networks() {
        for weights in AlexNetWeights::ALL {
            let spec = weights.spec();
            spec.config.validate().unwrap();
            let shapes = LayerShapes::compute(&spec.config, spec.config.input_size).unwrap();
            assert_eq!(shapes.total_params(), spec.parameters, "{weights:?}");
            assert_eq!(
                spec.preprocessing.crop, spec.config.input_size,
                "{weights:?}"
            );
            assert_eq!(spec.categories.len(), spec.config.num_classes);
        }
    }

    #[test]
    fn file_names_carry_their_torch_hub_digest_prefix() {
        let spec = AlexNetWeights::TorchvisionImagenet1kV1.spec();
        let Checksum::Sha256(prefix) = &spec.file.checksum else {
            panic!("torch hub files are checked by SHA-256")
        };
        assert!(spec.file.file_name.contains(prefix.as_str()));
        assert!(spec.file.url.ends_with(&spec.file.file_name));
    }
}
