//! `alexnet-infer convert IN OUT`: between PyTorch `.pth`, safetensors and Burn's format.

use std::path::PathBuf;

use alexnet_common::backend::{dispatch, BackendJob, BackendKind};
use alexnet_common::weights::read_checked;
use alexnet_model::checkpoint::{format_from_extension, save_model};
use alexnet_model::AlexNetBackend;
use alexnet_model::Variant;
use anyhow::{bail, Result};
use clap::Args;

use alexnet_common::args::parse_variant;

#[derive(Args, Debug)]
pub struct ConvertArgs {
    /// Input weights: .pth/.pt (zip or legacy), safetensors, Burn's format or Caffe's
    /// .caffemodel (by content).
    input: PathBuf,
    /// Output; the format follows the extension: `.safetensors` (torchvision key names) or
    /// `.bpk` (Burn's format).
    output: PathBuf,
    /// paper, torchvision or cifar (default: detected from the weights' shapes).
    #[arg(long, value_parser = parse_variant)]
    variant: Option<Variant>,
}

struct Convert<'a> {
    args: &'a ConvertArgs,
}

impl BackendJob for Convert<'_> {
    type Output = ();

    fn run<B: AlexNetBackend>(self, device: B::Device) -> Result<()> {
        let args = self.args;
        let Some(format) = format_from_extension(&args.output) else {
            bail!(
                "{}: unknown output format (use .safetensors or .bpk)",
                args.output.display()
            );
        };
        let checkpoint = read_checked(&args.input, false)?;
        let model = checkpoint
            .into_model::<B>(args.variant, None, &device)
            .map_err(|e| e.in_file(&args.input))?;
        save_model(&model, &args.output, format)?;
        eprintln!(
            "wrote {} ({} variant, {} classes, {:?})",
            args.output.display(),
            model.config().variant.name(),
            model.config().num_classes,
            format
        );
        Ok(())
    }
}

pub fn run(args: &ConvertArgs) -> Result<()> {
    dispatch(BackendKind::default_kind()?, Convert { args })
}
