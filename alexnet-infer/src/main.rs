//! `alexnet-infer`: AlexNet inference from the command line.
//!
//! Subcommands: `classify`, `eval`, `embed`, `filters`, `convert` (with weights), `info`
//! (layer table and parameter count) and `bench` (forward throughput).

mod bench;
mod classify;
mod convert;
mod embed;
mod eval;
mod filters;
mod info;
mod inputs;

use std::process::ExitCode;

use alexnet_common::args::parse_variant;
use alexnet_model::{AlexNetConfig, Variant};
use anyhow::Result;
use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(name = "alexnet-infer", version, about = "AlexNet inference on Burn")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Top-k ImageNet (or --labels) classes of images or folders of images.
    Classify(classify::ClassifyArgs),
    /// Top-1 / top-5 accuracy on an image folder (a sub-folder per class) or CIFAR folder.
    Eval(eval::EvalArgs),
    /// Write pool5 / fc6 / fc7 features of images to safetensors or CSV.
    Embed(embed::EmbedArgs),
    /// Draw conv1's kernels as an image grid (the paper's figure 3).
    Filters(filters::FiltersArgs),
    /// Convert weights between .pth, safetensors and Burn's format.
    Convert(convert::ConvertArgs),
    /// Print every layer with its output shape and parameter count, and the total.
    Info(info::InfoArgs),
    /// Time the forward pass after warm-up and print images/s.
    Bench(bench::BenchArgs),
}

/// Text for people, JSON for programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// Which network: variant, classes and input side.
#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// paper, torchvision or cifar.
    #[arg(long, default_value = "torchvision", value_parser = parse_variant)]
    pub variant: Variant,
    /// Output classes (default: 1000, or 10 for cifar).
    #[arg(long)]
    pub num_classes: Option<usize>,
    /// Square input side (default: the variant's: 224, or 32 for cifar).
    #[arg(long)]
    pub input_size: Option<usize>,
    /// Paper variant only: Caffe's 227×227 input without conv1 padding.
    #[arg(long)]
    pub caffe_input: bool,
}

impl ModelArgs {
    /// The configuration and the input side these flags describe.
    pub fn config(&self) -> Result<(AlexNetConfig, usize)> {
        let default_classes = if self.variant == Variant::Cifar {
            10
        } else {
            1000
        };
        let mut config = self
            .variant
            .config(self.num_classes.unwrap_or(default_classes));
        if self.caffe_input {
            anyhow::ensure!(
                self.variant == Variant::Paper,
                "--caffe-input applies to the paper variant only"
            );
            config = config.with_caffe_input();
        }
        config.validate()?;
        let input_size = self.input_size.unwrap_or(config.input_size);
        Ok((config, input_size))
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Classify(args) => classify::run(&args),
        Command::Eval(args) => eval::run(&args),
        Command::Embed(args) => embed::run(&args),
        Command::Filters(args) => filters::run(&args),
        Command::Convert(args) => convert::run(&args),
        Command::Info(args) => info::run(&args),
        Command::Bench(args) => bench::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
