//! [`TrainConfig`]: every option of a run, as command-line flags and as `config.json`,
//! written once.
//!
//! Each field is a flag (`batch_size` ↔ `--batch-size`) whose doc comment is its help text and
//! whose `#[arg]` holds its default, and a JSON key of the same name ([`Default`] parses an
//! empty command line, so a JSON file falls back to the same defaults). Values come from three
//! layers, later ones winning: the defaults, a `--config FILE` (JSON, any subset of the
//! fields), then the flags given on the command line ([`TrainConfig::layered`]).

use std::fmt;
use std::path::PathBuf;

use alexnet_common::args::{
    choice, parse_backend, parse_finite, parse_finite_f32, parse_triple, parse_variant,
};
use alexnet_common::backend::BackendKind;
use alexnet_common::cifar::CifarKind;
use alexnet_common::datasets::subsets::{ImageSize, Subset};
use alexnet_model::{AlexNetConfig, Variant};
use anyhow::{bail, Context, Result};
use clap::{ArgAction, Args, FromArgMatches, ValueEnum};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::schedule::{Schedule, ScheduleKind};
use crate::data::augment::Transform;

/// What to train on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Dataset {
    /// CIFAR-10 (binary files, or the built-in sample without `--data-dir`).
    Cifar10,
    /// CIFAR-100, fine labels.
    Cifar100,
    /// CIFAR-100, the 20 coarse labels.
    Cifar100Coarse,
    /// An image folder: `train/<class>/…` and optionally `val/<class>/…`.
    Folder,
    /// fast.ai's Imagenette (10 ImageNet classes; `--size`).
    Imagenette,
    /// fast.ai's Imagewoof (10 ImageNet dog breeds; `--size`).
    Imagewoof,
    /// Stanford's Tiny ImageNet (200 ImageNet classes, 64×64 images).
    TinyImagenet,
}

impl Dataset {
    /// The CIFAR kind of a CIFAR dataset.
    pub fn cifar_kind(self) -> Option<CifarKind> {
        match self {
            Self::Cifar10 => Some(CifarKind::Cifar10),
            Self::Cifar100 => Some(CifarKind::Cifar100Fine),
            Self::Cifar100Coarse => Some(CifarKind::Cifar100Coarse),
            _ => None,
        }
    }

    /// The ImageNet subset of a subset dataset.
    pub fn subset(self) -> Option<Subset> {
        match self {
            Self::Imagenette => Some(Subset::Imagenette),
            Self::Imagewoof => Some(Subset::Imagewoof),
            Self::TinyImagenet => Some(Subset::TinyImagenet),
            _ => None,
        }
    }
}

impl fmt::Display for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = self.to_possible_value().expect("no variant is skipped");
        f.write_str(value.get_name())
    }
}

fn parse_dataset(text: &str) -> Result<Dataset, String> {
    choice("dataset", text)
}

fn parse_size(text: &str) -> Result<ImageSize, String> {
    choice("size", text)
}

fn parse_schedule(text: &str) -> Result<ScheduleKind, String> {
    choice("schedule", text)
}

fn parse_widths(text: &str) -> Result<[usize; 5], String> {
    let values: Vec<usize> = text
        .split(',')
        .map(|v| v.trim().parse::<usize>())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("expected five widths `C1,C2,C3,C4,C5`: {e}"))?;
    values
        .try_into()
        .map_err(|v: Vec<usize>| format!("expected five widths, got {}", v.len()))
}

/// `variant` in JSON: its command-line name (`"cifar"`).
mod variant_name {
    use alexnet_model::Variant;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(variant: &Variant, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(variant.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Variant, D::Error> {
        let name = String::deserialize(d)?;
        Variant::parse(&name).map_err(serde::de::Error::custom)
    }
}

/// Every option of a training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Args)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// cifar10, cifar100, cifar100-coarse, folder, or an ImageNet subset: imagenette,
    /// imagewoof or tiny-imagenet (classes named by ImageNet's labels; see --download).
    #[arg(long, default_value = "cifar10", value_parser = parse_dataset)]
    pub dataset: Dataset,
    /// Dataset folder: CIFAR binary files, `train/<class>/…` (and optionally `val/<class>/…`)
    /// images, or an ImageNet subset as its archive unpacks [default for cifar10: the built-in
    /// sample; for the subsets: `datasets/imagenette2-320` (etc.) in the cache folder,
    /// `$ALEXNET_BURN_CACHE` or `~/.cache/alexnet-burn`].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// imagenette, imagewoof: which download, 160 or 320 (shorter side in pixels) or full
    /// [default: 320].
    #[arg(long, value_parser = parse_size)]
    pub size: Option<ImageSize>,
    /// Image folders without val/: hold out this fraction of train/ (per class, seeded).
    #[arg(long, value_parser = parse_finite)]
    pub val_split: Option<f64>,
    /// Use a seeded random subset of at most N training images.
    #[arg(long, value_name = "N")]
    pub max_train: Option<usize>,
    /// Use a seeded random subset of at most N validation images.
    #[arg(long, value_name = "N")]
    pub max_val: Option<usize>,
    /// cifar, torchvision or paper.
    #[arg(long, default_value = "cifar", value_parser = parse_variant)]
    #[serde(with = "variant_name")]
    pub variant: Variant,
    /// Five convolution widths `C1,C2,C3,C4,C5` instead of the variant's.
    #[arg(long, value_parser = parse_widths)]
    pub widths: Option<[usize; 5]>,
    /// Width of fc6 and fc7 instead of the variant's.
    #[arg(long)]
    pub hidden: Option<usize>,
    /// Classifier dropout probability [default: the variant's, 0.5].
    #[arg(long, value_parser = parse_finite)]
    pub dropout: Option<f64>,
    /// Epochs.
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    /// Images per batch.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Initial learning rate.
    #[arg(long, default_value_t = 0.02, value_parser = parse_finite)]
    pub lr: f64,
    /// SGD momentum, with dampening 0 (as PyTorch and the paper).
    #[arg(long, default_value_t = 0.9, value_parser = parse_finite)]
    pub momentum: f64,
    /// L2 weight decay.
    #[arg(long, default_value_t = 5e-4, value_parser = parse_finite)]
    pub weight_decay: f64,
    /// constant, step (÷10 every --step-every epochs), plateau (÷10 when the validation loss
    /// stops improving for --plateau-patience epochs) or cosine.
    #[arg(long, default_value = "cosine", value_parser = parse_schedule)]
    pub schedule: ScheduleKind,
    /// step: epochs between decays.
    #[arg(long, value_name = "K", default_value_t = 30)]
    pub step_every: usize,
    /// step/plateau: decay factor.
    #[arg(long, default_value_t = 0.1, value_parser = parse_finite)]
    pub lr_gamma: f64,
    /// plateau: epochs without validation-loss improvement tolerated before decaying.
    #[arg(long, default_value_t = 2)]
    pub plateau_patience: usize,
    /// Early stopping: stop after P epochs without validation-loss improvement.
    #[arg(long, value_name = "P")]
    pub patience: Option<usize>,
    /// Seed of initialisation, data order, augmentation and dropout.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Data loader threads (decoding and augmentation).
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// flex, ndarray, wgpu or cuda, among those compiled [default: the first compiled of
    /// flex, ndarray, wgpu, cuda].
    #[arg(long, value_parser = parse_backend)]
    pub backend: Option<BackendKind>,
    /// Shorter side after resizing [default: 32 for cifar, 256 otherwise].
    #[arg(long)]
    pub resize: Option<usize>,
    /// Network input side [default: 32 for cifar, 224 otherwise].
    #[arg(long)]
    pub crop: Option<usize>,
    /// Zero padding before the random crop [default: 4 for cifar, 0 otherwise].
    #[arg(long)]
    pub pad: Option<usize>,
    /// Random horizontal flips: true or false.
    #[arg(long, default_value_t = true, action = ArgAction::Set)]
    pub flip: bool,
    /// Training crops by torchvision's RandomResizedCrop (8–100 % of the area, aspect 3/4–4/3,
    /// resized to --crop) instead of the paper's fixed-size windows of the resized image.
    #[arg(long, default_value_t = false, default_missing_value = "true", num_args = 0..=1, action = ArgAction::Set)]
    pub random_resized_crop: bool,
    /// PCA lighting noise σ (the paper's 0.1) [default: 0 for cifar, 0.1 otherwise].
    #[arg(long, value_parser = parse_finite_f32)]
    pub lighting: Option<f32>,
    /// Normalisation mean `R,G,B` [default: CIFAR-10's for cifar, ImageNet's otherwise].
    #[arg(long, value_parser = parse_triple)]
    pub mean: Option<[f32; 3]>,
    /// Normalisation std `R,G,B` [default: as --mean].
    #[arg(long, value_parser = parse_triple)]
    pub std: Option<[f32; 3]>,
    /// Initial weights to fine-tune (.pth, .safetensors or .bpk, any key layout alexnet-infer
    /// reads); fc8 is re-initialised when the class count differs.
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// ImageNet weights by name to fine-tune instead of --weights: `torchvision` (with
    /// --variant torchvision), downloaded into the cache on first use and verified; fc8 is
    /// re-initialised when the class count differs.
    #[arg(long, conflicts_with = "weights")]
    pub pretrained: Option<String>,
    /// Refuse --weights holding NaN or infinite values (default: a warning naming them).
    #[arg(long, default_value_t = false, default_missing_value = "true", num_args = 0..=1, action = ArgAction::Set)]
    pub strict_weights: bool,
    /// Train only fc6..fc8, keeping conv1..conv5 as loaded (with --weights).
    #[arg(long, default_value_t = false, default_missing_value = "true", num_args = 0..=1, action = ArgAction::Set)]
    pub freeze_features: bool,
    /// Data-parallel training on these devices, e.g. `0,1,2,3` (wgpu, cuda); the first is
    /// the main device (optimizer, validation). --batch-size stays the whole batch, split
    /// across them.
    #[arg(long, value_delimiter = ',', value_name = "I,J,...")]
    pub devices: Option<Vec<usize>>,
    /// Parent folder of run folders.
    #[arg(long, default_value = "artifacts")]
    pub out_dir: PathBuf,
    /// Run folder name (default: `<dataset>-<variant>-<UTC time>`).
    #[arg(long)]
    pub run_name: Option<String>,
    /// Checkpoints kept, newest first; 0 keeps every epoch's.
    #[arg(long, default_value_t = 2)]
    pub keep_checkpoints: usize,
}

impl Default for TrainConfig {
    /// The defaults of the flags: an empty command line, parsed.
    fn default() -> Self {
        let command = Self::augment_args(clap::Command::new("alexnet-train"));
        let matches = command
            .try_get_matches_from(["alexnet-train"])
            .expect("the defaults parse");
        Self::from_arg_matches(&matches).expect("the defaults parse")
    }
}

/// Most data loader threads (`--workers`): each holds a batch in flight, and 256 is more
/// than any machine this trains on has cores.
pub const MAX_WORKERS: usize = 256;

/// Options that may change when a run is resumed (the rest would change what is computed).
pub const RESUMABLE_OVERRIDES: [&str; 6] = [
    "epochs",
    "patience",
    "workers",
    "backend",
    "devices",
    "keep_checkpoints",
];

/// Overlays the keys of `top` on `base` (both JSON objects).
pub fn overlay(base: &mut Value, top: &Value) {
    if let (Some(base), Some(top)) = (base.as_object_mut(), top.as_object()) {
        for (k, v) in top {
            base.insert(k.clone(), v.clone());
        }
    }
}

impl TrainConfig {
    /// Defaults ← `file` (JSON text, `source` names it in errors) ← `flags`.
    pub fn layered(file: Option<(&str, &str)>, flags: &Value) -> Result<Self> {
        let mut value = serde_json::to_value(Self::default())?;
        if let Some((text, source)) = file {
            let parsed: Value =
                serde_json::from_str(text).with_context(|| format!("{source}: invalid JSON"))?;
            if !parsed.is_object() {
                bail!("{source}: expected a JSON object of training options");
            }
            // `config.json` of a run nests the options under "config".
            let parsed = match parsed.get("config") {
                Some(inner) if inner.is_object() => inner.clone(),
                _ => parsed,
            };
            Self::from_value(parsed.clone()).with_context(|| source.to_string())?;
            overlay(&mut value, &parsed);
        }
        overlay(&mut value, flags);
        let config = Self::from_value(value)?;
        config.validate()?;
        Ok(config)
    }

    /// An ImageNet subset's image size (`--size`) and data folder (`--data-dir`, else its
    /// default folder in the cache).
    pub fn subset_source(&self, subset: Subset) -> Result<(ImageSize, PathBuf)> {
        let size = subset.size(self.size)?;
        Ok((size, subset.data_dir(size, self.data_dir.as_deref())?))
    }

    fn from_value(value: Value) -> Result<Self> {
        serde_json::from_value(value).map_err(|e| anyhow::anyhow!("invalid option: {e}"))
    }

    /// The schedule.
    pub fn schedule(&self) -> Result<Schedule> {
        Schedule::new(
            self.schedule,
            self.step_every,
            self.plateau_patience,
            self.lr_gamma,
        )
    }

    /// The variant's preprocessing with this run's overrides.
    pub fn transform(&self) -> Result<Transform> {
        let mut t = if self.variant == Variant::Cifar {
            Transform::cifar()
        } else {
            Transform::imagenet()
        };
        t.resize = self.resize.unwrap_or(t.resize);
        t.crop = self.crop.unwrap_or(t.crop);
        t.pad = self.pad.unwrap_or(t.pad);
        t.flip = self.flip;
        t.random_resized = self.random_resized_crop;
        t.lighting = self.lighting.unwrap_or(t.lighting);
        t.mean = self.mean.unwrap_or(t.mean);
        t.std = self.std.unwrap_or(t.std);
        if t.pad > t.crop {
            // Wider padding only adds windows of zeros, and memory: (resize + 2·pad)² a view.
            bail!(
                "--pad must be at most the crop side ({}), got {}",
                t.crop,
                t.pad
            );
        }
        t.validate()?;
        Ok(t)
    }

    /// The network for `num_classes` classes. `max_param_bytes`: the backend's buffer limit.
    pub fn model_config(
        &self,
        num_classes: usize,
        max_param_bytes: Option<usize>,
    ) -> Result<AlexNetConfig> {
        let mut config = self.variant.config(num_classes);
        if let Some(widths) = self.widths {
            config = config.with_widths(widths);
        }
        if let Some(hidden) = self.hidden {
            config = config.with_hidden(hidden);
        }
        if let Some(dropout) = self.dropout {
            config.dropout = dropout;
        }
        // The network is built for the crop side (flatten variants fix fc6 from it).
        config.input_size = self.transform()?.crop;
        config.max_param_bytes = max_param_bytes;
        config.validate()?;
        Ok(config)
    }

    /// Refuses `--pretrained` weights this run cannot start from: both --weights and
    /// --pretrained, an unknown name, another variant than the weights', or Caffe's weights
    /// (their BGR, 0–255 input is not what training feeds).
    fn check_pretrained(&self, name: &str) -> Result<()> {
        if self.weights.is_some() {
            bail!("--pretrained and --weights both name initial weights: give one");
        }
        #[cfg(feature = "pretrained")]
        {
            let weights = alexnet_model::AlexNetWeights::parse(name)?;
            if weights == alexnet_model::AlexNetWeights::CaffeBvlcImagenet {
                bail!(
                    "--pretrained caffe: training feeds RGB values in [0, 1], not Caffe's BGR \
                     0-255 input; fine-tune --pretrained torchvision, or classify with caffe"
                );
            }
            let variant = weights.spec().config.variant;
            if variant != self.variant {
                bail!(
                    "--pretrained {name} holds a {} network: add --variant {}",
                    variant.name(),
                    variant.name()
                );
            }
            Ok(())
        }
        #[cfg(not(feature = "pretrained"))]
        bail!("--pretrained {name}: this alexnet-train was built without the `pretrained` feature")
    }

    /// The file of the initial weights: --weights, or --pretrained's in the cache
    /// (downloaded and verified first if needed).
    pub fn initial_weights(&self) -> Result<Option<PathBuf>> {
        let Some(name) = &self.pretrained else {
            return Ok(self.weights.clone());
        };
        self.check_pretrained(name)?;
        #[cfg(feature = "pretrained")]
        {
            let spec = alexnet_model::AlexNetWeights::parse(name)?.spec();
            Ok(Some(spec.fetch(true)?))
        }
        #[cfg(not(feature = "pretrained"))]
        unreachable!("check_pretrained refuses --pretrained without the feature")
    }

    /// Checks values that serde cannot.
    pub fn validate(&self) -> Result<()> {
        let kind = self.dataset.cifar_kind();
        if self.dataset == Dataset::Folder && self.data_dir.is_none() {
            bail!("--dataset folder needs --data-dir");
        }
        match self.dataset.subset() {
            Some(subset) => {
                subset.size(self.size)?;
            }
            None if self.size.is_some() => bail!(
                "--size applies to imagenette and imagewoof, not {}",
                self.dataset
            ),
            None => {}
        }
        if kind.is_some_and(|k| k != CifarKind::Cifar10) && self.data_dir.is_none() {
            bail!(
                "--dataset {} needs --data-dir (only CIFAR-10 has a built-in sample)",
                self.dataset
            );
        }
        if let Some(f) = self.val_split {
            if !(f > 0.0 && f < 1.0) {
                bail!("--val-split must be between 0 and 1 (exclusive), got {f}");
            }
        }
        if let Some(name) = &self.pretrained {
            self.check_pretrained(name)?;
        }
        if self.epochs == 0 {
            bail!("--epochs must be at least 1");
        }
        if self.batch_size == 0 {
            bail!("--batch-size must be at least 1");
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            bail!("--lr must be a positive number, got {}", self.lr);
        }
        if !(0.0..1.0).contains(&self.momentum) {
            bail!("--momentum must be in [0, 1), got {}", self.momentum);
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            bail!(
                "--weight-decay must be non-negative, got {}",
                self.weight_decay
            );
        }
        if self.workers == 0 || self.workers > MAX_WORKERS {
            bail!(
                "--workers must be between 1 and {MAX_WORKERS}, got {}",
                self.workers
            );
        }
        if matches!(self.max_train, Some(0)) || matches!(self.max_val, Some(0)) {
            bail!("--max-train / --max-val must be at least 1");
        }
        if let Some(name) = &self.run_name {
            if name.is_empty() || name.contains(['/', '\\']) || name == "." || name == ".." {
                bail!("--run-name must be a plain folder name, got `{name}`");
            }
        }
        if let Some(devices) = &self.devices {
            if devices.is_empty() {
                bail!("--devices needs at least one device index");
            }
            if let Some(d) = devices.iter().find(|&&d| d > u16::MAX as usize) {
                bail!("--devices: index {d} is out of range");
            }
            let mut unique = devices.clone();
            unique.sort_unstable();
            unique.dedup();
            if unique.len() != devices.len() {
                bail!("--devices lists a device twice: {devices:?}");
            }
            super::backend_kind(self)?.check_devices(devices)?;
        }
        super::backend_kind(self)?;
        self.schedule()?;
        self.transform()?;
        // The network's own checks (widths, hidden, dropout, the crop it must fit) before any
        // data is read; the class count comes from the data later, so any count will do here.
        self.model_config(1, None)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flags_override_file_override_defaults() {
        let file = r#"{"epochs": 3, "lr": 0.05, "schedule": "step"}"#;
        let c = TrainConfig::layered(Some((file, "f.json")), &json!({"lr": 0.02})).unwrap();
        assert_eq!((c.epochs, c.lr, c.schedule), (3, 0.02, ScheduleKind::Step));
        assert_eq!(c.batch_size, TrainConfig::default().batch_size);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        let err = TrainConfig::layered(Some((r#"{"epoch": 3}"#, "f.json")), &json!({}));
        assert!(format!("{:#}", err.unwrap_err()).contains("epoch"));
        assert!(TrainConfig::layered(Some(("[1]", "f.json")), &json!({})).is_err());
        assert!(TrainConfig::layered(None, &json!({"epochs": 0})).is_err());
        assert!(TrainConfig::layered(None, &json!({"variant": "vgg"})).is_err());
        assert!(TrainConfig::layered(None, &json!({"dataset": "folder"})).is_err());
        assert!(TrainConfig::layered(None, &json!({"lr": -1.0})).is_err());
    }

    #[test]
    fn a_run_config_can_be_reused() {
        let c = TrainConfig::layered(None, &json!({"epochs": 7})).unwrap();
        let run = json!({"config": c, "resolved": {}}).to_string();
        let again = TrainConfig::layered(Some((&run, "config.json")), &json!({})).unwrap();
        assert_eq!(again, c);
    }

    /// The defaults are the flags' (an empty command line), and JSON names them as the
    /// flags do.
    #[test]
    fn defaults_and_names() {
        let c = TrainConfig::default();
        assert_eq!((c.epochs, c.batch_size, c.lr, c.seed), (10, 32, 0.02, 42));
        assert!(c.flip && !c.random_resized_crop && c.backend.is_none());
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["dataset"], "cifar10");
        assert_eq!(json["variant"], "cifar");
        assert_eq!(json["schedule"], "cosine");
        let c = TrainConfig::layered(
            None,
            &json!({"dataset": "cifar100-coarse", "data_dir": "d", "backend": "flex"}),
        )
        .unwrap();
        assert_eq!(c.dataset, Dataset::Cifar100Coarse);
        assert_eq!(c.backend, Some(BackendKind::Flex));
    }

    #[test]
    fn cifar_defaults() {
        let c = TrainConfig::default();
        assert_eq!(c.transform().unwrap(), Transform::cifar());
        let m = c.model_config(10, None).unwrap();
        assert_eq!(m.input_size, 32);
        assert_eq!(m.num_classes, 10);
    }

    /// The message of a configuration that `layered` refuses.
    fn refused(file: Option<&str>, flags: Value) -> String {
        let err = TrainConfig::layered(file.map(|text| (text, "f.json")), &flags).unwrap_err();
        format!("{err:#}")
    }

    /// Values that size threads or memory are bounded, from flags, `--config` files and a
    /// run's `config.json` alike.
    #[test]
    fn workers_and_padding_are_bounded_wherever_they_come_from() {
        let workers = "--workers must be between 1 and 256, got 100000";
        assert!(refused(None, json!({"workers": 100_000})).contains(workers));
        assert!(refused(Some(r#"{"workers": 100000}"#), json!({})).contains(workers));
        let run = r#"{"config": {"workers": 100000}, "resolved": {}}"#;
        assert!(refused(Some(run), json!({})).contains(workers));
        assert!(refused(None, json!({"workers": 0})).contains("got 0"));
        assert_eq!(
            TrainConfig::layered(None, &json!({"workers": MAX_WORKERS}))
                .unwrap()
                .workers,
            MAX_WORKERS
        );

        let pad = "--pad must be at most the crop side (32), got 100000";
        assert!(refused(None, json!({"pad": 100_000})).contains(pad));
        assert!(refused(Some(r#"{"pad": 100000}"#), json!({})).contains(pad));
        assert_eq!(
            TrainConfig::layered(None, &json!({"pad": 32}))
                .unwrap()
                .transform()
                .unwrap()
                .pad,
            32
        );
    }

    /// JSON has no NaN; a number out of `f64`'s range is an error too, and an `f32` option
    /// that overflows to infinity is refused by the range check.
    #[test]
    fn numbers_from_files_are_finite() {
        for file in [
            r#"{"lr": 1e999}"#,
            r#"{"lr": NaN}"#,
            r#"{"momentum": "NaN"}"#,
        ] {
            assert!(
                TrainConfig::layered(Some((file, "f.json")), &json!({})).is_err(),
                "{file}"
            );
        }
        let message = refused(Some(r#"{"lighting": 1e39}"#), json!({}));
        assert!(
            message.contains("lighting must be a non-negative number, got inf"),
            "{message}"
        );
        let message = refused(Some(r#"{"dropout": 1.5}"#), json!({}));
        assert!(
            message.contains("dropout must be in [0, 1), got 1.5"),
            "{message}"
        );
    }

    /// Every number flag refuses NaN and infinities, naming the flag: each flag that takes
    /// `0.5` (or `0.5,0.5,0.5`) as a JSON number is tried with NaN, inf and -inf.
    #[test]
    fn every_float_flag_refuses_non_finite_values() {
        let command = || TrainConfig::augment_args(clap::Command::new("alexnet-train"));
        let parse = |flag: &str, value: &str| {
            let arg = format!("--{flag}={value}");
            command()
                .try_get_matches_from(["alexnet-train", arg.as_str()])
                .map_err(|e| e.to_string())
                .and_then(|m| TrainConfig::from_arg_matches(&m).map_err(|e| e.to_string()))
        };
        let mut checked = Vec::new();
        for arg in command().get_arguments() {
            let Some(flag) = arg.get_long() else { continue };
            let key = arg.get_id().as_str().to_string();
            for sample in ["0.5", "0.5,0.5,0.5"] {
                let Ok(config) = parse(flag, sample) else {
                    continue;
                };
                let value = serde_json::to_value(&config).unwrap()[&key].clone();
                let numeric = value.is_f64()
                    || value
                        .as_array()
                        .is_some_and(|a| a.iter().all(Value::is_f64));
                if !numeric {
                    continue;
                }
                for bad in ["NaN", "inf", "-inf", "1e999"] {
                    let text = sample.replace("0.5", bad);
                    let message = parse(flag, &text).expect_err(&format!("--{flag} {text}"));
                    assert!(
                        message.contains(&format!("--{flag}")) && message.contains("finite"),
                        "--{flag} {text}: {message}"
                    );
                }
                checked.push(flag.to_string());
                break;
            }
        }
        checked.sort();
        let expected = [
            "dropout",
            "lighting",
            "lr",
            "lr-gamma",
            "mean",
            "momentum",
            "std",
            "val-split",
            "weight-decay",
        ];
        assert_eq!(checked, expected);
    }
}
