//! `alexnet-train bench`: training-step throughput on one backend — forward, cross-entropy,
//! backward and the SGD step of a real run ([`sgd`], [`batch_gradients`]), on a synthetic
//! batch, without data loading.

use alexnet_common::args::{parse_backend, ModelArgs};
use alexnet_common::backend::{dispatch, BackendJob, BackendKind};
use alexnet_common::bench::{BenchReport, Format, Timing};
use alexnet_model::AlexNetBackend;
use alexnet_model::{AlexNet, AlexNetConfig};
use anyhow::{ensure, Result};
use burn::backend::Autodiff;
use burn::optim::Optimizer;
use clap::Args;

use super::fit::sgd;
use super::parallel::batch_gradients;
use super::TrainConfig;
use crate::data::loader::Batch;
use crate::data::rng::Rng;

/// `alexnet-train bench`'s flags.
#[derive(Args, Debug)]
pub struct TrainBenchArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Images per training step.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Backend (default: the first compiled of flex, ndarray, wgpu, cuda).
    #[arg(long, value_parser = parse_backend)]
    backend: Option<BackendKind>,
    #[command(flatten)]
    timing: Timing,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

struct TrainBench<'a> {
    args: &'a TrainBenchArgs,
    config: AlexNetConfig,
    batch: Batch,
}

impl BackendJob for TrainBench<'_> {
    type Output = (usize, f64);

    fn run<B: AlexNetBackend>(self, device: B::Device) -> Result<Self::Output> {
        let initial: AlexNet<Autodiff<B>> = self.config.try_init(&device)?;
        let side = self.batch.side;
        initial.check_input([1, 3, side, side])?;
        // The optimizer takes the model by value: it is out of this slot during a step.
        let mut model = Some(initial);
        // The defaults of a real run: lr 0.02, momentum 0.9, weight decay 5e-4.
        let train = TrainConfig::default();
        let mut optim = sgd::<Autodiff<B>>(&train);
        let devices = [device];
        self.args.timing.measure(|| {
            let current = model
                .take()
                .expect("the model is put back after every step");
            // The step reads the loss and logits back, so the backend has finished.
            let step = batch_gradients(&current, &self.batch, &devices)?;
            model = Some(optim.step(train.lr, current, step.grads));
            Ok(())
        })
    }
}

/// Runs `alexnet-train bench`.
pub fn run(args: &TrainBenchArgs) -> Result<()> {
    ensure!(args.batch_size > 0, "--batch-size must be positive");
    let (config, input_size) = args.model.config()?;
    let backend = match args.backend {
        Some(kind) => kind,
        None => BackendKind::default_kind()?,
    };
    let config = config.with_max_param_bytes(backend.max_param_bytes());
    let variant = config.variant.name();
    let batch = synthetic_batch(args.batch_size, input_size, config.num_classes);
    let measured = dispatch(
        backend,
        TrainBench {
            args,
            config,
            batch,
        },
    )?;
    BenchReport::new(
        "train-step",
        backend,
        variant,
        (args.batch_size, input_size),
        measured,
    )
    .print(args.format)
}

/// `n` images of uniform noise in [-1, 1) and uniformly drawn labels (fixed seed).
fn synthetic_batch(n: usize, side: usize, classes: usize) -> Batch {
    let mut rng = Rng::new(0);
    Batch {
        images: (0..n * 3 * side * side)
            .map(|_| (2.0 * rng.uniform() - 1.0) as f32)
            .collect(),
        labels: (0..n).map(|_| rng.below(classes)).collect(),
        side,
    }
}
