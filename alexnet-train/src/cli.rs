//! The command line of `alexnet-train`.
//!
//! The training flags are [`TrainConfig`]'s fields (names, defaults and help written there
//! once). Flags given on the command line override `--config FILE`, which overrides the
//! defaults. With `--resume RUN_DIR` the run's own `config.json` is the base, and only
//! [`RESUMABLE_OVERRIDES`] may be given.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::parser::ValueSource;
use clap::{ArgMatches, FromArgMatches, Parser, Subcommand};
use serde_json::{Map, Value};

use crate::train::config::{TrainConfig, RESUMABLE_OVERRIDES};
use crate::train::{self, load_data, new_run_dir, run_config, Outcome, RunOptions};
use alexnet_common::bench::BenchArgs;
use alexnet_common::datasets;

/// Train AlexNet (paper, torchvision or CIFAR variant) on CIFAR-10/100, an image folder, or
/// an ImageNet subset (Imagenette, Imagewoof, Tiny ImageNet; --download fetches them).
///
/// With no arguments: the CIFAR variant on the built-in CIFAR-10 sample (1,000 training and
/// 200 validation images) for 10 epochs. Writes `artifacts/<run>/`: config.json, metrics.csv,
/// checkpoints/, model.safetensors, model.bpk, model-best.safetensors, summary.json,
/// curves.png, confusion.png.
#[derive(Parser, Debug)]
#[command(
    name = "alexnet-train",
    version,
    args_conflicts_with_subcommands = true
)]
pub struct Args {
    /// Instead of training: `bench`.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The training options.
    #[command(flatten)]
    pub train: TrainConfig,
    /// JSON file of options (the names above with `_` for `-`); flags override it. A run's
    /// config.json works too.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Continue the run in RUN_DIR from its newest checkpoint (only --epochs, --patience,
    /// --workers, --backend, --devices, --keep-checkpoints may change).
    #[arg(long, value_name = "RUN_DIR")]
    pub resume: Option<PathBuf>,
    /// Stop after epoch N as if interrupted (continue with --resume).
    #[arg(long, value_name = "N")]
    pub stop_after: Option<usize>,
    /// Fetch the dataset into its data folder when it is not there: cifar10, cifar100,
    /// cifar100-coarse (cs.toronto.edu; needs --data-dir), imagenette, imagewoof (fast.ai),
    /// tiny-imagenet (Stanford). The archive is checked against its published MD5, unpacked
    /// and deleted. `$ALEXNET_BURN_MIRROR=URL` fetches from `URL/<archive name>` instead.
    #[arg(long)]
    pub download: bool,
    /// With --download: fetch the archive from this URL instead (the published MD5 is
    /// still checked).
    #[arg(long, value_name = "URL")]
    pub download_url: Option<String>,
    /// No progress display.
    #[arg(long, short)]
    pub quiet: bool,
}

/// What `alexnet-train` does instead of training.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Time training steps (forward, backward, SGD step) on synthetic batches; print images/s.
    Bench(BenchArgs),
}

/// The parsed command line, and which training options it gave explicitly.
pub struct Invocation {
    /// Every flag, defaults filled in.
    pub args: Args,
    /// The training options given on the command line, as a JSON object of
    /// [`TrainConfig`] fields.
    pub given: Value,
}

impl Invocation {
    /// From clap's matches of [`Args`].
    pub fn from_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let args = Args::from_arg_matches(matches)?;
        let all = serde_json::to_value(&args.train).expect("options serialise");
        let given: Map<String, Value> = all
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(key, _)| matches.value_source(key) == Some(ValueSource::CommandLine))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        Ok(Self {
            args,
            given: Value::Object(given),
        })
    }
}

/// Runs the command line: trains, or runs a subcommand (then there is no [`Outcome`]).
pub fn run(invocation: Invocation) -> Result<Option<Outcome>> {
    let Invocation { args, given: flags } = invocation;
    match &args.command {
        Some(Command::Bench(bench)) => crate::train::bench::run(bench).map(|()| None),
        None => train(args, &flags).map(Some),
    }
}

/// Trains (or resumes) as the flags say.
fn train(args: Args, flags: &Value) -> Result<Outcome> {
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
        let config = TrainConfig::layered(Some((&text, &source)), flags)?;
        let data = load_data(&config)?;
        return train::run(&config, &data, run_dir, true, &options);
    }
    let file = match &args.config {
        Some(path) => Some((
            // A regular file of at most 16 MiB: a FIFO or /dev/zero is refused, never read.
            alexnet_model::files::read_text_file(path, alexnet_model::files::MAX_TEXT_BYTES)?,
            path.display().to_string(),
        )),
        None => None,
    };
    let config = TrainConfig::layered(file.as_ref().map(|(t, s)| (t.as_str(), s.as_str())), flags)?;
    if args.download {
        download_dataset(&config, args.download_url.as_deref(), !args.quiet)?;
    }
    let data = load_data(&config)?;
    // Check the network fits the data and input size, and a training step's batch the
    // memory estimate, before creating the run folder.
    let model_config = config.model_config(data.num_classes(), None)?;
    train::check_batch_memory(&config, &model_config)?;
    // A bad weights file fails before any run folder exists (--pretrained: downloaded into
    // the cache and verified now).
    if let Some(weights) = &config.initial_weights()? {
        if !weights.is_file() {
            bail!("{}: no such weights file", weights.display());
        }
        alexnet_model::checkpoint::detect_format(weights)?;
    }
    // A backend without a usable device (no GPU adapter) fails before the run folder exists.
    alexnet_common::backend::check(train::backend_kind(&config)?, config.devices.as_deref())?;
    let run_dir = new_run_dir(&config)?;
    train::run(&config, &data, &run_dir, false, &options)
}

/// `--download`: fetches the configured dataset into its data folder unless it is there.
fn download_dataset(config: &TrainConfig, url: Option<&str>, progress: bool) -> Result<()> {
    let (archive, dir) = match (config.dataset.subset(), config.dataset.cifar_kind()) {
        (Some(subset), _) => {
            let (size, dir) = config.subset_source(subset)?;
            (subset.archive(size), dir)
        }
        (None, Some(kind)) => {
            let Some(dir) = &config.data_dir else {
                bail!("--download needs --data-dir (the folder to download into)");
            };
            (datasets::cifar(kind), dir.clone())
        }
        (None, None) => bail!(
            "--download fetches cifar10, cifar100, cifar100-coarse, imagenette, imagewoof or \
             tiny-imagenet, not --dataset {}",
            config.dataset
        ),
    };
    archive.ensure(&dir, url, progress).map(|_| ())
}
