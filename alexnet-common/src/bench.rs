//! What both `bench` commands share (`alexnet-infer bench`: the forward pass;
//! `alexnet-train bench`: a training step): the timing rule and the report.
//!
//! The rule is the one `bench/compare.py` applies to every other engine: `--warmup` untimed
//! passes, then timed passes until at least `--iters` passes *and* `--min-seconds` have gone
//! by; images/s = batch × passes / seconds.

use std::time::Instant;

use alexnet_model::memory::check_batch;
use alexnet_model::AlexNetConfig;
use anyhow::{ensure, Result};
use clap::{Args, ValueEnum};
use serde::Serialize;

use crate::args::{parse_backend, ModelArgs};
use crate::backend::BackendKind;

/// The flags of both `bench` commands.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Which network.
    #[command(flatten)]
    pub model: ModelArgs,
    /// Images per pass.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Backend (default: the first compiled of flex, ndarray, wgpu, cuda).
    #[arg(long, value_parser = parse_backend)]
    pub backend: Option<BackendKind>,
    /// How long to time.
    #[command(flatten)]
    pub timing: Timing,
    /// Text or JSON.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// What a benchmark runs on: the backend, the network (within the backend's buffer limit)
/// and the input side.
pub struct BenchSetup {
    /// The backend to dispatch to.
    pub backend: BackendKind,
    /// The network.
    pub config: AlexNetConfig,
    /// Square input side.
    pub input_size: usize,
}

impl BenchArgs {
    /// Checks the flags and resolves the defaults. `training`: the benchmark runs training
    /// steps, whose memory estimate is larger ([`alexnet_model::memory`]).
    pub fn setup(&self, training: bool) -> Result<BenchSetup> {
        ensure!(self.batch_size > 0, "--batch-size must be positive");
        let (config, input_size) = self.model.config()?;
        // Sizes are checked against a memory estimate before anything is allocated.
        check_batch(
            &config,
            input_size,
            "--input-size",
            self.batch_size,
            training,
        )?;
        let backend = match self.backend {
            Some(kind) => kind,
            None => BackendKind::default_kind()?,
        };
        let config = config.with_max_param_bytes(backend.max_param_bytes());
        Ok(BenchSetup {
            backend,
            config,
            input_size,
        })
    }

    /// Prints the report of `measured` (passes, seconds) of `workload` under `setup`.
    pub fn report(
        &self,
        workload: &'static str,
        setup: &BenchSetup,
        measured: (usize, f64),
    ) -> Result<()> {
        BenchReport::new(
            workload,
            setup.backend,
            setup.config.variant.name(),
            (self.batch_size, setup.input_size),
            measured,
        )
        .print(self.format)
    }
}

/// Text for people, JSON for programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One readable line.
    Text,
    /// One JSON object on one line.
    Json,
}

/// How long to time.
#[derive(Args, Debug, Clone)]
pub struct Timing {
    /// Untimed passes first (kernel compilation, caches, autotune).
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    /// Timed passes: at least this many, and at least --min-seconds.
    #[arg(long, default_value_t = 5)]
    pub iters: usize,
    /// Keep timing until this many seconds have passed.
    #[arg(long, default_value_t = 3.0, value_parser = crate::args::parse_finite)]
    pub min_seconds: f64,
}

impl Timing {
    /// Runs `pass` `warmup` times untimed, then timed by the rule above: the number of timed
    /// passes and their seconds. `pass` must wait for the backend to finish (read a result
    /// back), or asynchronous backends would be timed queueing work.
    pub fn measure(&self, mut pass: impl FnMut() -> Result<()>) -> Result<(usize, f64)> {
        ensure!(self.iters > 0, "--iters must be positive");
        ensure!(
            self.min_seconds >= 0.0,
            "--min-seconds must not be negative"
        );
        for _ in 0..self.warmup {
            pass()?;
        }
        let start = Instant::now();
        let mut passes = 0;
        while passes < self.iters || start.elapsed().as_secs_f64() < self.min_seconds {
            pass()?;
            passes += 1;
        }
        Ok((passes, start.elapsed().as_secs_f64()))
    }
}

/// One benchmark's result; `--format json` prints it as one line.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// `forward` (inference) or `train-step` (forward, backward, optimizer step).
    pub workload: &'static str,
    /// The backend's `--backend` name.
    pub backend: String,
    /// The variant's name.
    pub variant: String,
    /// Images per pass.
    pub batch: usize,
    /// Square input side.
    pub input_size: usize,
    /// Timed passes.
    pub iterations: usize,
    /// Seconds of the timed passes.
    pub seconds: f64,
    /// `batch × iterations / seconds`.
    pub images_per_s: f64,
}

impl BenchReport {
    /// The report of `iterations` passes of `batch` images in `seconds`.
    pub fn new(
        workload: &'static str,
        backend: BackendKind,
        variant: &str,
        (batch, input_size): (usize, usize),
        (iterations, seconds): (usize, f64),
    ) -> Self {
        Self {
            workload,
            backend: backend.name().into(),
            variant: variant.into(),
            batch,
            input_size,
            iterations,
            seconds,
            images_per_s: (iterations * batch) as f64 / seconds,
        }
    }

    /// Prints the report to stdout.
    pub fn print(&self, format: Format) -> Result<()> {
        match format {
            Format::Json => println!("{}", serde_json::to_string(self)?),
            Format::Text => println!(
                "{} {} {} batch {} input {}: {:.2} images/s ({} passes in {:.2} s)",
                self.backend,
                self.variant,
                self.workload,
                self.batch,
                self.input_size,
                self.images_per_s,
                self.iterations,
                self.seconds
            ),
        }
        Ok(())
    }
}
