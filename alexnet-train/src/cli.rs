//! The command line of `alexnet-train`.
//!
//! Every training flag is optional: unset flags fall back to `--config FILE`, then to the
//! defaults of [`TrainConfig`]. With `--resume RUN_DIR` the run's own `config.json` is the
//! base, and only [`RESUMABLE_OVERRIDES`] may be given.

use std::path::PathBuf;

use alexnet_common::args::parse_triple;
use anyhow::{bail, Result};
use clap::Parser;
use serde::Serialize;
use serde_json::Value;

use crate::train::config::{TrainConfig, RESUMABLE_OVERRIDES};
use crate::train::{self, load_data, new_run_dir, run_config, Outcome, RunOptions};

/// Train AlexNet (paper, torchvision or CIFAR variant) on CIFAR-10/100 or an image folder.
///
/// With no arguments: the CIFAR variant on the built-in CIFAR-10 sample (1,000 training and
/// 200 validation images) for 10 epochs. Writes artifacts/<run>/: config.json, metrics.csv,
/// checkpoints/, model.safetensors, model.bpk, model-best.safetensors, summary.json,
/// curves.png, confusion.png.
#[derive(Parser, Debug, Default, Serialize)]
#[command(name = "alexnet-train", version)]
pub struct Args {
    /// cifar10, cifar100, cifar100-coarse or folder [default: cifar10].
    #[arg(long)]
    pub dataset: Option<String>,
    /// Dataset folder: CIFAR binary files, or train/<class>/… [val/<class>/…] images
    /// [default for cifar10: the built-in sample].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Image folders without val/: hold out this fraction of train/ (per class, seeded).
    #[arg(long)]
    pub val_split: Option<f64>,
    /// Use a seeded random subset of at most N training images.
    #[arg(long, value_name = "N")]
    pub max_train: Option<usize>,
    /// Use a seeded random subset of at most N validation images.
    #[arg(long, value_name = "N")]
    pub max_val: Option<usize>,
    /// cifar, torchvision or paper [default: cifar].
    #[arg(long)]
    pub variant: Option<String>,
    /// Five convolution widths `C1,C2,C3,C4,C5` instead of the variant's.
    #[arg(long, value_parser = parse_widths)]
    pub widths: Option<[usize; 5]>,
    /// Width of fc6 and fc7 instead of the variant's.
    #[arg(long)]
    pub hidden: Option<usize>,
    /// Classifier dropout probability [default: 0.5].
    #[arg(long)]
    pub dropout: Option<f64>,
    /// Epochs [default: 10].
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Images per batch [default: 32].
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Initial learning rate [default: 0.02].
    #[arg(long)]
    pub lr: Option<f64>,
    /// SGD momentum, with dampening 0 [default: 0.9].
    #[arg(long)]
    pub momentum: Option<f64>,
    /// L2 weight decay [default: 5e-4].
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// constant, step (÷10 every --step-every epochs), plateau (÷10 when the validation loss
    /// stops improving for --plateau-patience epochs) or cosine [default: cosine].
    #[arg(long)]
    pub schedule: Option<String>,
    /// step: epochs between decays [default: 30].
    #[arg(long, value_name = "K")]
    pub step_every: Option<usize>,
    /// step/plateau: decay factor [default: 0.1].
    #[arg(long)]
    pub lr_gamma: Option<f64>,
    /// plateau: epochs without improvement tolerated [default: 2].
    #[arg(long)]
    pub plateau_patience: Option<usize>,
    /// Early stopping: stop after P epochs without validation-loss improvement.
    #[arg(long, value_name = "P")]
    pub patience: Option<usize>,
    /// Seed of initialisation, data order, augmentation and dropout [default: 42].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Data loader threads (decoding and augmentation) [default: 1].
    #[arg(long)]
    pub workers: Option<usize>,
    /// flex, ndarray, wgpu or cuda (among those compiled) [default: flex].
    #[arg(long)]
    pub backend: Option<String>,
    /// Shorter side after resizing [default: 32 for cifar, 256 otherwise].
    #[arg(long)]
    pub resize: Option<usize>,
    /// Network input side [default: 32 for cifar, 224 otherwise].
    #[arg(long)]
    pub crop: Option<usize>,
    /// Zero padding before the random crop [default: 4 for cifar, 0 otherwise].
    #[arg(long)]
    pub pad: Option<usize>,
    /// Random horizontal flips: true or false [default: true].
    #[arg(long)]
    pub flip: Option<bool>,
    /// Training crops by torchvision's RandomResizedCrop (8–100 % of the area, aspect 3/4–4/3,
    /// resized to --crop) instead of the paper's fixed-size windows of the resized image.
    #[arg(long, default_missing_value = "true", num_args = 0..=1)]
    pub random_resized_crop: Option<bool>,
    /// PCA lighting noise σ (the paper's 0.1) [default: 0 for cifar, 0.1 otherwise].
    #[arg(long)]
    pub lighting: Option<f32>,
    /// Normalisation mean `R,G,B` [default: CIFAR-10's for cifar, ImageNet's otherwise].
    #[arg(long, value_parser = parse_triple)]
    pub mean: Option<[f32; 3]>,
    /// Normalisation std `R,G,B` [default: as --mean].
    #[arg(long, value_parser = parse_triple)]
    pub std: Option<[f32; 3]>,
    /// Initial weights to fine-tune (.pth, .safetensors or .bpk); fc8 is re-initialised when
    /// the class count differs.
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Train only fc6..fc8, keeping conv1..conv5 as loaded (with --weights).
    #[arg(long, default_missing_value = "true", num_args = 0..=1)]
    pub freeze_features: Option<bool>,
    /// Data-parallel training on these devices, e.g. `0,1,2,3` (wgpu, cuda); the first is
    /// the main device. --batch-size stays the whole batch, split across them.
    #[arg(long, value_delimiter = ',', value_name = "I,J,...")]
    pub devices: Option<Vec<usize>>,
    /// Parent folder of run folders [default: artifacts].
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
    /// Run folder name [default: <dataset>-<variant>-<UTC time>].
    #[arg(long)]
    pub run_name: Option<String>,
    /// Checkpoints kept, newest first; 0 keeps every epoch's [default: 2].
    #[arg(long)]
    pub keep_checkpoints: Option<usize>,

    /// JSON file of options (the names above with `_` for `-`); flags override it. A run's
    /// config.json works too.
    #[arg(long, value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Continue the run in RUN_DIR from its newest checkpoint (only --epochs, --patience,
    /// --workers, --backend, --keep-checkpoints may change).
    #[arg(long, value_name = "RUN_DIR")]
    #[serde(skip)]
    pub resume: Option<PathBuf>,
    /// Stop after epoch N as if interrupted (continue with --resume).
    #[arg(long, value_name = "N")]
    #[serde(skip)]
    pub stop_after: Option<usize>,
    /// Fetch the dataset into --data-dir when it is missing there (cifar10, cifar100,
    /// cifar100-coarse): the official archive from cs.toronto.edu, MD5-checked and unpacked.
    #[arg(long)]
    #[serde(skip)]
    pub download: bool,
    /// With --download: fetch the archive from this mirror instead (the published MD5 is
    /// still checked).
    #[arg(long, value_name = "URL")]
    #[serde(skip)]
    pub download_url: Option<String>,
    /// No progress display.
    #[arg(long, short)]
    #[serde(skip)]
    pub quiet: bool,
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

impl Args {
    /// The flags actually given, as a JSON object of [`TrainConfig`] fields.
    pub fn given(&self) -> Result<Value> {
        let mut value = serde_json::to_value(self)?;
        if let Some(map) = value.as_object_mut() {
            map.retain(|_, v| !v.is_null());
        }
        Ok(value)
    }
}

/// Runs the command line.
pub fn run(args: Args) -> Result<Outcome> {
    let flags = args.given()?;
    if args.download_url.is_some() && !args.download {
        bail!("--download-url needs --download");
    }
    let options = RunOptions {
        stop_after: args.stop_after,
        quiet: args.quiet,
    };
    if let Some(run_dir) = &args.resume {
        if args.config.is_some() {
            bail!("--config and --resume cannot be combined (a run keeps its configuration)");
        }
        if args.download {
            bail!("--download cannot be combined with --resume (download without --resume first)");
        }
        if let Some(key) = flags
            .as_object()
            .into_iter()
            .flat_map(|m| m.keys())
            .find(|k| !RESUMABLE_OVERRIDES.contains(&k.as_str()))
        {
            bail!(
                "--{} cannot change when resuming (only --{} may)",
                key.replace('_', "-"),
                RESUMABLE_OVERRIDES.join(", --").replace('_', "-")
            );
        }
        let text = run_config(run_dir)?;
        let source = run_dir.join("config.json").display().to_string();
        let config = TrainConfig::layered(Some((&text, &source)), &flags)?;
        let data = load_data(&config)?;
        return train::run(&config, &data, run_dir, true, &options);
    }
    let file = match &args.config {
        Some(path) => Some((
            std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?,
            path.display().to_string(),
        )),
        None => None,
    };
    let config =
        TrainConfig::layered(file.as_ref().map(|(t, s)| (t.as_str(), s.as_str())), &flags)?;
    if args.download {
        download_dataset(&config, args.download_url.as_deref(), !args.quiet)?;
    }
    let data = load_data(&config)?;
    // Check the network fits the data and input size before creating the run folder.
    config.model_config(data.num_classes(), None)?;
    // A bad weights file fails before any run folder exists.
    if let Some(weights) = &config.weights {
        if !weights.is_file() {
            bail!("{}: no such weights file", weights.display());
        }
        alexnet_model::checkpoint::detect_format(weights)?;
    }
    let run_dir = new_run_dir(&config)?;
    train::run(&config, &data, &run_dir, false, &options)
}

/// `--download`: fetches the configured CIFAR dataset into `--data-dir` unless it is there.
fn download_dataset(config: &TrainConfig, url: Option<&str>, progress: bool) -> Result<()> {
    let Some(kind) = config.cifar_kind()? else {
        bail!("--download fetches cifar10, cifar100 or cifar100-coarse, not --dataset folder");
    };
    let Some(dir) = &config.data_dir else {
        bail!("--download needs --data-dir (the folder to download into)");
    };
    crate::data::download::ensure_cifar(kind, dir, url, progress)
}
