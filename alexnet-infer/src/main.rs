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

use clap::error::ErrorKind;
use clap::{Parser, Subcommand};

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
    Bench(alexnet_common::bench::BenchArgs),
}

pub use alexnet_common::args::ModelArgs;
pub use alexnet_common::bench::Format;

/// mimalloc, keeping freed memory for reuse (see [`alexnet_common::allocator`]).
#[global_allocator]
static ALLOCATOR: alexnet_common::allocator::MiMalloc = alexnet_common::allocator::MiMalloc;

fn main() -> ExitCode {
    alexnet_common::allocator::keep_freed_memory();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err)
            if matches!(
                err.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) =>
        {
            err.exit()
        }
        Err(err) => {
            // clap adds usage lines; keep the one that says what is wrong (as alexnet-train).
            let text = err.render().to_string();
            let line = text.lines().next().unwrap_or("error: invalid arguments");
            eprintln!("{}", alexnet_model::files::escape_control(line));
            return ExitCode::FAILURE;
        }
    };
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
            // One line, whatever a file name in the message holds (newlines, ANSI escapes).
            let message = format!("{err:#}");
            eprintln!("error: {}", alexnet_model::files::escape_control(&message));
            ExitCode::FAILURE
        }
    }
}
