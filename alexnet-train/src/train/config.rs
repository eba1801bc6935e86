//! [`TrainConfig`]: every option of a run, as written to `config.json`.
//!
//! Values come from three layers, later ones winning: the defaults below, a `--config FILE`
//! (JSON, any subset of the fields), then the flags given on the command line. The merge works
//! on JSON values, so a file and the flags use the same names (`batch_size` ↔ `--batch-size`).

use std::path::PathBuf;

use alexnet_model::{AlexNetConfig, Variant};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::schedule::Schedule;
use crate::data::augment::Transform;
use alexnet_common::cifar::CifarKind;

/// Every option of a training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// `cifar10`, `cifar100`, `cifar100-coarse` or `folder`.
    pub dataset: String,
    /// Dataset folder; none with `cifar10` means the built-in sample.
    pub data_dir: Option<PathBuf>,
    /// Fraction of `train/` held out for validation when an image folder has no `val/`.
    pub val_split: Option<f64>,
    /// Use at most this many training images (a seeded random subset).
    pub max_train: Option<usize>,
    /// Use at most this many validation images (a seeded random subset).
    pub max_val: Option<usize>,
    /// `cifar`, `torchvision` or `paper`.
    pub variant: String,
    /// Convolution widths instead of the variant's.
    pub widths: Option<[usize; 5]>,
    /// Width of fc6/fc7 instead of the variant's.
    pub hidden: Option<usize>,
    /// Classifier dropout instead of the variant's 0.5.
    pub dropout: Option<f64>,
    /// Epochs to train.
    pub epochs: usize,
    /// Images per batch.
    pub batch_size: usize,
    /// Initial learning rate.
    pub lr: f64,
    /// SGD momentum (dampening is always 0, as in PyTorch and the paper).
    pub momentum: f64,
    /// L2 weight decay.
    pub weight_decay: f64,
    /// `constant`, `step`, `plateau` or `cosine`.
    pub schedule: String,
    /// `step`: epochs between decays.
    pub step_every: usize,
    /// `step`/`plateau`: decay factor.
    pub lr_gamma: f64,
    /// `plateau`: epochs without validation-loss improvement before decaying.
    pub plateau_patience: usize,
    /// Early stopping: stop after this many epochs without validation-loss improvement.
    pub patience: Option<usize>,
    /// Seed of initialisation, order, augmentation and dropout.
    pub seed: u64,
    /// Data loader threads.
    pub workers: usize,
    /// `flex`, `ndarray`, `wgpu` or `cuda`; none: the default compiled backend.
    pub backend: Option<String>,
    /// Shorter side after resizing (default: 32 for cifar, 256 otherwise).
    pub resize: Option<usize>,
    /// Network input side (default: 32 for cifar, 224 otherwise).
    pub crop: Option<usize>,
    /// Zero padding before the random crop (default: 4 for cifar, 0 otherwise).
    pub pad: Option<usize>,
    /// Random horizontal flips.
    pub flip: bool,
    /// Training crops by torchvision's `RandomResizedCrop` instead of fixed windows.
    pub random_resized_crop: bool,
    /// PCA lighting noise σ (default: 0 for cifar, 0.1 otherwise).
    pub lighting: Option<f32>,
    /// Normalisation mean (default: CIFAR-10's for cifar, ImageNet's otherwise).
    pub mean: Option<[f32; 3]>,
    /// Normalisation std (default: as `mean`).
    pub std: Option<[f32; 3]>,
    /// Initial weights for fine-tuning (PyTorch `.pth`, safetensors or Burn `.bpk`, any key
    /// layout `alexnet-infer` reads); fc8 is re-initialised when the class count differs.
    pub weights: Option<PathBuf>,
    /// Train only fc6..fc8: conv1..conv5 keep their (usually `--weights`) values.
    pub freeze_features: bool,
    /// Device indices for data-parallel training (wgpu/cuda); none: the backend's default
    /// device. The first is the main device (optimizer, validation).
    pub devices: Option<Vec<usize>>,
    /// Parent folder of run folders.
    pub out_dir: PathBuf,
    /// Run folder name (default: `<dataset>-<variant>-<UTC time>`).
    pub run_name: Option<String>,
    /// Checkpoints kept (the newest); 0 keeps all.
    pub keep_checkpoints: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            dataset: "cifar10".into(),
            data_dir: None,
            val_split: None,
            max_train: None,
            max_val: None,
            variant: "cifar".into(),
            widths: None,
            hidden: None,
            dropout: None,
            epochs: 10,
            batch_size: 32,
            lr: 0.02,
            momentum: 0.9,
            weight_decay: 5e-4,
            schedule: "cosine".into(),
            step_every: 30,
            lr_gamma: 0.1,
            plateau_patience: 2,
            patience: None,
            seed: 42,
            workers: 1,
            backend: None,
            resize: None,
            crop: None,
            pad: None,
            flip: true,
            random_resized_crop: false,
            lighting: None,
            mean: None,
            std: None,
            weights: None,
            freeze_features: false,
            devices: None,
            out_dir: PathBuf::from("artifacts"),
            run_name: None,
            keep_checkpoints: 2,
        }
    }
}

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

    fn from_value(value: Value) -> Result<Self> {
        serde_json::from_value(value).map_err(|e| anyhow::anyhow!("invalid option: {e}"))
    }

    /// The variant.
    pub fn variant(&self) -> Result<Variant> {
        Ok(Variant::parse(&self.variant)?)
    }

    /// The CIFAR kind of a CIFAR dataset, `None` for `folder`.
    pub fn cifar_kind(&self) -> Result<Option<CifarKind>> {
        Ok(match self.dataset.as_str() {
            "cifar10" => Some(CifarKind::Cifar10),
            "cifar100" => Some(CifarKind::Cifar100Fine),
            "cifar100-coarse" => Some(CifarKind::Cifar100Coarse),
            "folder" => None,
            other => bail!(
                "unknown dataset `{other}` (expected cifar10, cifar100, cifar100-coarse or folder)"
            ),
        })
    }

    /// The schedule.
    pub fn schedule(&self) -> Result<Schedule> {
        Schedule::parse(
            &self.schedule,
            self.step_every,
            self.plateau_patience,
            self.lr_gamma,
        )
    }

    /// The variant's preprocessing with this run's overrides.
    pub fn transform(&self) -> Result<Transform> {
        let mut t = if self.variant()? == Variant::Cifar {
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
        t.validate()?;
        Ok(t)
    }

    /// The network for `num_classes` classes. `max_param_bytes`: the backend's buffer limit.
    pub fn model_config(
        &self,
        num_classes: usize,
        max_param_bytes: Option<usize>,
    ) -> Result<AlexNetConfig> {
        let mut config = self.variant()?.config(num_classes);
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

    /// Checks values that serde cannot.
    pub fn validate(&self) -> Result<()> {
        self.variant()?;
        let kind = self.cifar_kind()?;
        if kind.is_none() && self.data_dir.is_none() {
            bail!("--dataset folder needs --data-dir");
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
        if self.workers == 0 {
            bail!("--workers must be at least 1");
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
        self.schedule()?;
        self.transform()?;
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
        assert_eq!((c.epochs, c.lr, c.schedule.as_str()), (3, 0.02, "step"));
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

    #[test]
    fn cifar_defaults() {
        let c = TrainConfig::default();
        assert_eq!(c.transform().unwrap(), Transform::cifar());
        let m = c.model_config(10, None).unwrap();
        assert_eq!(m.input_size, 32);
        assert_eq!(m.num_classes, 10);
    }
}
