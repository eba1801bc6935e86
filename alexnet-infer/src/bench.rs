//! `alexnet-infer bench`: forward throughput on one backend, after warm-up.

use std::time::{Duration, Instant};

use alexnet_common::backend::{dispatch, BackendJob, BackendKind};
use alexnet_model::AlexNetConfig;
use anyhow::Result;
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor};
use clap::Args;
use serde::Serialize;

use crate::{Format, ModelArgs};
use alexnet_common::args::parse_backend;

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
    /// Untimed passes first (kernel compilation, caches, autotune).
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Timed passes: at least this many, and at least --min-seconds.
    #[arg(long, default_value_t = 5)]
    iters: usize,
    /// Keep timing until this many seconds have passed.
    #[arg(long, default_value_t = 3.0)]
    min_seconds: f64,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Serialize)]
struct BenchReport {
    backend: String,
    variant: String,
    batch: usize,
    input_size: usize,
    iterations: usize,
    seconds: f64,
    images_per_s: f64,
}

struct Bench<'a> {
    args: &'a BenchArgs,
    config: AlexNetConfig,
    input_size: usize,
}

impl BackendJob for Bench<'_> {
    type Output = (usize, Duration);

    fn run<B: Backend>(self, device: B::Device) -> Result<Self::Output> {
        let model = self.config.try_init::<B>(&device)?;
        let side = self.input_size;
        let images = Tensor::<B, 4>::random(
            [self.args.batch_size, 3, side, side],
            Distribution::Default,
            &device,
        );
        model.check_input(images.dims())?;
        // Reading the logits back waits for asynchronous backends to finish.
        let pass = || -> Result<()> {
            model.try_forward(images.clone())?.into_data();
            Ok(())
        };
        for _ in 0..self.args.warmup {
            pass()?;
        }
        let start = Instant::now();
        let mut iterations = 0;
        while iterations < self.args.iters || start.elapsed().as_secs_f64() < self.args.min_seconds
        {
            pass()?;
            iterations += 1;
        }
        Ok((iterations, start.elapsed()))
    }
}

pub fn run(args: &BenchArgs) -> Result<()> {
    anyhow::ensure!(args.batch_size > 0, "--batch-size must be positive");
    anyhow::ensure!(args.iters > 0, "--iters must be positive");
    let (config, input_size) = args.model.config()?;
    let backend = match args.backend {
        Some(kind) => kind,
        None => BackendKind::default_kind()?,
    };
    let config = config.with_max_param_bytes(backend.max_param_bytes());
    let variant = config.variant.name().to_string();
    let (iterations, elapsed) = dispatch(
        backend,
        Bench {
            args,
            config,
            input_size,
        },
    )?;
    let seconds = elapsed.as_secs_f64();
    let report = BenchReport {
        backend: backend.name().into(),
        variant,
        batch: args.batch_size,
        input_size,
        iterations,
        seconds,
        images_per_s: (iterations * args.batch_size) as f64 / seconds,
    };
    match args.format {
        Format::Json => println!("{}", serde_json::to_string(&report)?),
        Format::Text => println!(
            "{} {} batch {} input {}: {:.2} images/s ({} passes in {:.2} s)",
            report.backend,
            report.variant,
            report.batch,
            report.input_size,
            report.images_per_s,
            report.iterations,
            report.seconds
        ),
    }
    Ok(())
}
