//! `alexnet-infer bench`: forward throughput on one backend, after warm-up.

use alexnet_common::args::parse_backend;
use alexnet_common::backend::{dispatch, BackendJob, BackendKind};
use alexnet_common::bench::{BenchReport, Format, Timing};
use alexnet_model::AlexNetBackend;
use alexnet_model::AlexNetConfig;
use anyhow::Result;
use burn::tensor::{Distribution, Tensor};
use clap::Args;

use crate::ModelArgs;

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Images per forward pass.
    #[arg(long, default_value_t = 1)]
    batch_size: usize,
    /// Backend (default: the first compiled of flex, ndarray, wgpu, cuda).
    #[arg(long, value_parser = parse_backend)]
    backend: Option<BackendKind>,
    #[command(flatten)]
    timing: Timing,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

struct Bench<'a> {
    args: &'a BenchArgs,
    config: AlexNetConfig,
    input_size: usize,
}

impl BackendJob for Bench<'_> {
    type Output = (usize, f64);

    fn run<B: AlexNetBackend>(self, device: B::Device) -> Result<Self::Output> {
        let model = self.config.try_init::<B>(&device)?;
        let side = self.input_size;
        let images = Tensor::<B, 4>::random(
            [self.args.batch_size, 3, side, side],
            Distribution::Default,
            &device,
        );
        model.check_input(images.dims())?;
        // Reading the logits back waits for asynchronous backends to finish.
        self.args.timing.measure(|| {
            model.try_forward(images.clone())?.into_data();
            Ok(())
        })
    }
}

pub fn run(args: &BenchArgs) -> Result<()> {
    anyhow::ensure!(args.batch_size > 0, "--batch-size must be positive");
    let (config, input_size) = args.model.config()?;
    let backend = match args.backend {
        Some(kind) => kind,
        None => BackendKind::default_kind()?,
    };
    let config = config.with_max_param_bytes(backend.max_param_bytes());
    let variant = config.variant.name();
    let measured = dispatch(
        backend,
        Bench {
            args,
            config,
            input_size,
        },
    )?;
    BenchReport::new(
        "forward",
        backend,
        variant,
        (args.batch_size, input_size),
        measured,
    )
    .print(args.format)
}
